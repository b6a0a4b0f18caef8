"""auto-converge shown on a guest that dirties memory faster than the link
drains it: the dirty guest rewrites 512 pages (2 MiB) at ~8 MB/s while
max-bandwidth allows 1 MiB/s, so the dirty set never shrinks below what
downtime-limit allows.  With auto-converge the throttle rises
(cpu-throttle-initial 50, increment 25: 50, 75, 99) until the guest, held
still 99% of the time, dirties less than the link sends, and the
migration completes; without it the same setup is still `active` after
many passes, unthrottled.  Assertions are on states and percentages, not
on speed."""
import os
import re
import shutil
import tempfile
import time
import unittest

from tests.integration.migtest import wait_migration
from tests.integration.vireotest import Vm, guest, machine_args, requires_kvm

PARAMS = {"max-bandwidth": 1 << 20, "downtime-limit": 300,
          "cpu-throttle-initial": 50, "cpu-throttle-increment": 25}
PASSES = 10


def sweeps(vm):
    return [int(n) for n in re.findall(r"^dirty sweep (\d+)$", vm.output(), re.M)]


@requires_kvm
class AutoConverge(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migconv-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sock = os.path.join(self.dir, "mig.sock")
        self.args = machine_args(guest("dirty.mb.elf"), mem="32M", append="pages=512")

    def start(self, src, converge):
        src.wait_for("dirty sweep 2", 60)
        qs = src.qmp()
        self.addCleanup(qs.close)
        qs.ok("migrate-set-capabilities", {"capabilities": [
            {"capability": "auto-converge", "state": converge}]})
        qs.ok("migrate-set-parameters", PARAMS)
        params = qs.ok("query-migrate-parameters")
        self.assertEqual((params["cpu-throttle-initial"], params["cpu-throttle-increment"]),
                         (50, 25))
        qs.ok("migrate", {"uri": "unix:" + self.sock})
        return qs

    def test_throttle_rises_and_migration_completes(self):
        with Vm(self.args, serial="file", qmp=True) as src, \
                Vm(self.args + ["-incoming", "unix:" + self.sock], serial="file",
                   qmp=True) as dst:
            qs = self.start(src, True)
            seen = []
            deadline = time.monotonic() + 240
            while True:
                info = qs.ok("query-migrate")
                pct = info.get("cpu-throttle-percentage", 0)
                if info["status"] == "active" and (not seen or seen[-1] != pct):
                    seen.append(pct)
                if info["status"] not in ("setup", "active", "device"):
                    break
                self.assertLess(time.monotonic(), deadline, (info, seen))
                time.sleep(0.05)
            self.assertEqual(info["status"], "completed", (info, seen))
            # Rising in the configured steps, up to what made it converge.
            rising = [p for p in seen if p]
            self.assertEqual(rising, sorted(set(rising)), seen)
            self.assertGreaterEqual(len(rising), 2, seen)
            self.assertEqual(rising[0], 50, seen)
            self.assertTrue(set(rising) <= {50, 75, 99}, seen)
            self.assertNotIn("mig/throttle", src.thread_names())
            # The guest goes on on the destination, unthrottled.
            with dst.qmp() as qd:
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertTrue(qd.ok("query-status")["running"])
            handed = max(sweeps(src))
            dst.wait_for("^dirty sweep %d$" % (handed + 3), 60)

    def test_without_auto_converge_stays_active(self):
        with Vm(self.args, serial="file", qmp=True) as src:
            with Vm(self.args + ["-incoming", "unix:" + self.sock], serial="file",
                    qmp=True):
                qs = self.start(src, False)
                deadline = time.monotonic() + 240
                while True:
                    info = qs.ok("query-migrate")
                    self.assertIn(info["status"], ("setup", "active") if
                                  not info["ram"]["dirty-sync-count"] else ("active",), info)
                    self.assertNotIn("cpu-throttle-percentage", info)
                    if info["ram"]["dirty-sync-count"] >= PASSES:
                        break
                    self.assertLess(time.monotonic(), deadline, info)
                    time.sleep(0.1)
                self.assertNotIn("mig/throttle", src.thread_names())
                # Still dirtying more than the link drains after all those passes.
                self.assertGreater(info["ram"]["remaining"], 76 * 4096, info)
                before = max(sweeps(src))
                qs.ok("migrate_cancel")
                self.assertEqual(wait_migration(qs)["status"], "cancelled")
                self.assertTrue(qs.ok("query-status")["running"])
                src.wait_for("^dirty sweep %d$" % (before + 2), 60)


if __name__ == "__main__":
    unittest.main()
