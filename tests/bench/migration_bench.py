#!/usr/bin/env python3
"""Migration: vireo next to qemu-system-x86_64 (7.2), both on KVM, with the
same running guest (counter.mb.elf, which rewrites a page and prints a
checksum every ~10 ms) and the same RAM size.

Run by hand (not part of `make check`), after `make tests`:

    python3 tests/bench/migration_bench.py [--mem 1G] [--runs N] [--live-only]

(VIREO_BUILD=DIR measures the vireo in DIR/vireo, e.g. an older build.)

Measures, for each VMM, medians of N runs:
  live tcp     total time and downtime of a live migration over TCP on
               loopback, as each VMM's query-migrate reports them, with
               downtime-limit 300 ms and no bandwidth cap
  loaded tcp   the same while the guest dirties memory flat out (dirty.mb.elf
               pages=4096 delay=0: one word into each of 4096 pages, over
               and over)
  guest pause  for both: the destination's RESUME event timestamp minus the
               source's STOP event timestamp (QMP event timestamps, both
               processes on the host's real-time clock): how long the guest
               did not run, measured the same way for both VMMs, whatever
               each one's query-migrate "downtime" covers
  file save    wall time to save the running guest to a file and its
               throughput (RAM size / time): vireo with mapped-ram to
               file:, QEMU 7.2 (which has neither file: nor mapped-ram) with
               exec:cat > FILE; vireo also with multifd 4 channels, and each
               with direct-io (O_DIRECT); the qemu column repeats exec:cat
  file restore wall time from starting the destination until its
               query-migrate says completed, and throughput; plus the size
               on disk of the file

Both VMMs get a serial port (to a file), isa-debug-exit and a QMP socket.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.integration.qmp import QMP  # noqa: E402
from tests.integration.vireotest import DEBUG_EXIT, VIREO, free_port, guest, kvm_available  # noqa: E402

QEMU = shutil.which("qemu-system-x86_64")


COUNTER = ("counter.mb.elf", None, b"count ")
DIRTY = ("dirty.mb.elf", "pages=4096 delay=0", b"dirty sweep ")


class Proc:
    def __init__(self, vmm, mem, workdir, name, incoming=None, load=COUNTER):
        kernel, append, self.marker = load
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        self.serial = os.path.join(workdir, name + ".serial")
        if vmm == "vireo":
            args = [VIREO, "-accel", "kvm", "-nographic"]
        else:
            args = [QEMU, "-accel", "kvm", "-nodefaults", "-display", "none",
                    "-monitor", "none"]
        if append:
            args += ["-append", append]
        args += ["-m", mem, "-kernel", guest(kernel), "-no-reboot",
                 "-serial", "file:" + self.serial,
                 "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path] + DEBUG_EXIT
        if incoming:
            args += ["-incoming", incoming]
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.q = QMP(self.qmp_path, timeout=30)

    def count(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read().count(self.marker)
        except FileNotFoundError:
            return 0

    def wait_count(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline or self.p.poll() is not None:
                sys.exit("guest did not reach count %d: %s" % (
                    n, self.p.stderr.read().decode(errors="replace") if self.p.poll()
                    is not None else "timeout"))
            time.sleep(0.05)

    def wait_migration(self, timeout=600):
        deadline = time.monotonic() + timeout
        while True:
            r = self.q.ok("query-migrate")
            if r.get("status") == "completed":
                return r
            if r.get("status") in ("failed", "cancelled") or time.monotonic() > deadline:
                sys.exit("migration %r" % r)
            time.sleep(0.01)

    def close(self):
        self.q.close()
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()


def params(q, vmm):
    # No cap: both VMMs go as fast as loopback allows.
    q.ok("migrate-set-parameters", {"downtime-limit": 300, "max-bandwidth": 1 << 40})


def event_time(q, name):
    ts = q.event(name, timeout=30)["timestamp"]
    return ts["seconds"] + ts["microseconds"] / 1e6


def live(vmm, mem, workdir, load=COUNTER):
    port = free_port()
    src = Proc(vmm, mem, workdir, "src", load=load)
    dst = Proc(vmm, mem, workdir, "dst", incoming="tcp:127.0.0.1:%d" % port, load=load)
    try:
        src.wait_count(50 if load is COUNTER else 5)
        params(src.q, vmm)
        src.q.ok("migrate", {"uri": "tcp:127.0.0.1:%d" % port})
        r = src.wait_migration()
        pause = event_time(dst.q, "RESUME") - event_time(src.q, "STOP")
        n = dst.count()
        dst.wait_count(n + 2)
        return r["total-time"], r["downtime"], pause * 1000
    finally:
        src.close()
        dst.close()


def file_round(vmm, mem, workdir, channels=1, direct=False):
    path = os.path.join(workdir, "state")
    src = Proc(vmm, mem, workdir, "fsrc")
    try:
        src.wait_count(50)
        params(src.q, vmm)
        if vmm == "vireo":
            caps = [{"capability": "mapped-ram", "state": True}]
            if channels > 1:
                caps.append({"capability": "multifd", "state": True})
                src.q.ok("migrate-set-parameters", {"multifd-channels": channels})
            src.q.ok("migrate-set-capabilities", {"capabilities": caps})
            if direct:
                src.q.ok("migrate-set-parameters", {"direct-io": True})
            uri = "file:" + path
        else:
            uri = "exec:cat > " + path
        t0 = time.monotonic()
        src.q.ok("migrate", {"uri": uri})
        src.wait_migration()
        save = time.monotonic() - t0
    finally:
        src.close()
    size = os.stat(path).st_blocks * 512
    incoming = "file:" + path if vmm == "vireo" else "exec:cat " + path
    dst = Proc(vmm, mem, workdir, "fdst", incoming=incoming)
    try:
        dst.wait_migration()
        restore = time.monotonic() - dst.t0
        n = dst.count()
        dst.wait_count(n + 5)
    finally:
        dst.close()
    os.unlink(path)
    return save, restore, size


def parse_size(s):
    units = {"M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem", default="1G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--live-only", action="store_true", help="skip the file save/restore rows")
    a = ap.parse_args()
    if not kvm_available():
        sys.exit("needs /dev/kvm")
    vmms = ["vireo"] + (["qemu"] if QEMU else [])
    ram = parse_size(a.mem)
    res = {}
    # Not /tmp: direct-io needs a file system with O_DIRECT (tmpfs has none).
    os.makedirs(os.path.join(ROOT, "build", "bench"), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="migbench-", dir=os.path.join(ROOT, "build", "bench"))
    mib = ram / (1 << 20)
    try:
        for vmm in vmms:
            lv = [live(vmm, a.mem, workdir) for _ in range(a.runs)]
            ld = [live(vmm, a.mem, workdir, DIRTY) for _ in range(a.runs)]
            res[vmm] = {
                "live total ms": statistics.median(x[0] for x in lv),
                "live downtime ms": statistics.median(x[1] for x in lv),
                "live guest pause ms": statistics.median(x[2] for x in lv),
                "loaded total ms": statistics.median(x[0] for x in ld),
                "loaded downtime ms": statistics.median(x[1] for x in ld),
                "loaded guest pause ms": statistics.median(x[2] for x in ld),
            }
            variants = [] if a.live_only else [("", 1, False)]
            if vmm == "vireo" and not a.live_only:
                variants += [(" 4ch", 4, False), (" dio", 1, True), (" 4ch dio", 4, True)]
            for tag, ch, dio in variants:
                fr = [file_round(vmm, a.mem, workdir, ch, dio) for _ in range(a.runs)]
                save = statistics.median(x[0] for x in fr)
                restore = statistics.median(x[1] for x in fr)
                res[vmm]["save MiB/s" + tag] = mib / save
                res[vmm]["restore MiB/s" + tag] = mib / restore
                if not tag:
                    res[vmm]["file on disk MiB"] = statistics.median(x[2] for x in fr) / (1 << 20)
        if "qemu" in res:
            # One exec:cat figure to set each vireo variant against.
            for k in res["vireo"]:
                if k not in res["qemu"]:
                    res["qemu"][k] = res["qemu"][k.split(" MiB/s")[0] + " MiB/s"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("guest RAM %s, %d runs, medians" % (a.mem, a.runs))
    print("%-20s" % "" + "".join("%14s" % v for v in vmms) +
          ("%10s" % "ratio" if len(vmms) == 2 else ""))
    for k in res["vireo"]:
        row = "%-20s" % k + "".join("%14.1f" % res[v][k] for v in vmms)
        if len(vmms) == 2 and res["qemu"][k]:
            row += "%10.2f" % (res["vireo"][k] / res["qemu"][k])
        print(row)
    print("(qemu 7.2 saves with exec:cat, it has no mapped-ram; its restore includes "
          "SeaBIOS start-up)")


if __name__ == "__main__":
    main()
