"""Helpers for the migration tests: a model of the counter guest's memory,
so that every "count N sum S" line can be checked against what the pages
must hold, and a checker for output split between a source and a
destination."""
import re
import time

from tests.integration.vireotest import Vm, guest, machine_args

BUF_PAGES = 1024
WORDS_PER_PAGE = 1024
STRIDE = 16
MASK = 0xffffffff


class CounterModel:
    """The words the counter guest's checksum reads (every 16th of its
    buffer), and the checksum kept up to date incrementally: it is the
    polynomial sum of w[k] * 31^(N-1-k), so a changed word moves it by
    (new - old) * 31^(N-1-k)."""

    def __init__(self):
        nwords = BUF_PAGES * WORDS_PER_PAGE // STRIDE
        self.words = [0] * nwords
        self.pow = [0] * nwords
        p = 1
        for k in range(nwords - 1, -1, -1):
            self.pow[k] = p
            p = (p * 31) & MASK
        self.sum = 0
        self.n = 0

    def step(self):
        self.n += 1
        n = self.n
        page = ((n * 2654435761) & MASK) % BUF_PAGES
        base = page * WORDS_PER_PAGE // STRIDE
        for k in range(WORDS_PER_PAGE // STRIDE):
            new = n ^ (k * STRIDE)
            self.sum = (self.sum + (new - self.words[base + k]) * self.pow[base + k]) & MASK
            self.words[base + k] = new
        return self.sum


LINE = re.compile(r"^count (\d+) sum ([0-9a-f]{8})$", re.M)


def check_counter(test, text, min_count=1):
    """Every count from 1 on, once each, in order, with the sum the model
    computes; returns the last count."""
    found = LINE.findall(text)
    test.assertGreaterEqual(len(found), min_count, "too few counter lines:\n" + text[-2000:])
    model = CounterModel()
    for n, s in found:
        want = model.step()
        test.assertEqual(int(n), model.n, "count gap or repeat at line %r" % ((n, s),))
        test.assertEqual(int(s, 16), want, "checksum of count %s differs" % n)
    return model.n


def counter_args(mem="128M", extra=(), smp=1, accel="kvm"):
    return machine_args(guest("counter.mb.elf"), mem=mem, smp=smp, accel=accel,
                        extra=list(extra))


def counter_vm(incoming=None, extra=(), mem="128M", smp=1, accel="kvm"):
    extra = list(extra)
    if incoming is not None:
        extra += ["-incoming", incoming]
    vm = Vm(counter_args(mem, extra, smp, accel), serial="file", qmp=True)
    if incoming is not None:
        # QMP answers only from the main loop, which runs once -incoming listens.
        try:
            with vm.qmp() as q:
                q.ok("query-status")
        except Exception:
            vm.close()
            raise
    return vm


def last_count(vm):
    found = LINE.findall(vm.output())
    return int(found[-1][0]) if found else 0


def wait_count(vm, n, timeout=60):
    """Wait until the guest has printed count n; fail when it exits, or
    prints no new count for timeout seconds.

    A bound on progress, not on the whole wait: a step takes about 10 ms
    on a bare-metal host but 0.5-2 s under the nested KVM of the test
    hosts, slower the busier the host (30 steps took 55 s at load 21).
    """
    seen, deadline = -1, 0
    while True:
        count = last_count(vm)
        if count >= n:
            return
        if count != seen:
            seen, deadline = count, time.monotonic() + timeout
        if vm.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("count %d did not appear (the guest is at %d)\n%s" % (
                n, count, vm._describe()))
        time.sleep(0.05)


def wait_migration(q, states=("completed", "failed", "cancelled"), timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        r = q.ok("query-migrate")
        if r.get("status") in states:
            return r
        if time.monotonic() > deadline:
            raise AssertionError("migration still %r after %ds" % (r, timeout))
        time.sleep(0.05)


def assert_handed_over(test, src, dst, qs, qd, more=40):
    """After a completed live migration: the source is paused and stays
    where it stopped, the destination completes and counts on by more.
    Returns the source's last count."""
    test.assertEqual(qs.ok("query-status")["status"], "postmigrate")
    test.assertEqual(wait_migration(qd)["status"], "completed")
    handed = last_count(src)
    wait_count(dst, handed + more)
    test.assertTrue(qd.ok("query-status")["running"])
    # The source stays stopped: its output ends where the destination's starts.
    time.sleep(0.3)
    test.assertEqual(last_count(src), handed)
    return handed


def enable_events(q):
    q.ok("migrate-set-capabilities",
         {"capabilities": [{"capability": "events", "state": True}]})


def migration_events(q, until="completed", timeout=60):
    """MIGRATION event statuses up to and including until."""
    seen = []
    while not seen or seen[-1] != until:
        seen.append(q.event("MIGRATION", timeout=timeout)["data"]["status"])
        if seen[-1] in ("failed", "cancelled") and until not in ("failed", "cancelled"):
            break
    return seen
