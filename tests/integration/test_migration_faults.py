"""Migration faults: a destination killed or refusing mid-way, a source
killed mid-way, migrate_cancel at each stage, garbage and mismatched
streams.  The source guest must never be harmed and must keep counting;
a destination must never start a guest from a bad stream."""
import os
import shutil
import socket
import tempfile
import time
import unittest

from tests.integration.migtest import (check_counter, counter_vm, enable_events,
                                       last_count, migration_events, wait_count,
                                       wait_migration)
from tests.integration.vireotest import requires_kvm

SLOW = 256 << 10	# bytes/s: the first pass takes many seconds


def wait_status(q, status, timeout=30):
    return wait_migration(q, states=(status, "completed", "failed", "cancelled"),
                          timeout=timeout)


@requires_kvm
class Faults(unittest.TestCase):
    def sock_uri(self):
        """A unix socket in a directory of its own, removed when the test ends."""
        d = tempfile.mkdtemp(prefix="vireo-mig-")
        self.addCleanup(shutil.rmtree, d, True)
        return "unix:" + os.path.join(d, "mig.sock")

    def second_migration_succeeds(self, src, qs):
        """After a failed or cancelled attempt, migrating again works and
        the counter runs on unbroken across source and new destination."""
        uri = self.sock_uri()
        qs.ok("migrate-set-parameters", {"max-bandwidth": 0})
        with counter_vm(incoming=uri) as dst:
            qs.ok("migrate", {"uri": uri})
            self.assertEqual(wait_migration(qs)["status"], "completed")
            handed = last_count(src)
            wait_count(dst, handed + 10)
            check_counter(self, src.output() + dst.output(), min_count=handed + 10)

    def test_destination_killed(self):
        self.destination_killed(multifd=False)

    def test_destination_killed_multifd(self):
        self.destination_killed(multifd=True)

    def destination_killed(self, multifd):
        uri = self.sock_uri()
        with counter_vm() as src, src.qmp() as qs:
            wait_count(src, 5)
            qs.ok("migrate-set-parameters", {"max-bandwidth": SLOW})
            qs.ok("migrate-set-capabilities", {"capabilities": [
                {"capability": "multifd", "state": multifd}]})
            with counter_vm(incoming=uri) as dst:
                qs.ok("migrate", {"uri": uri})
                self.assertEqual(wait_status(qs, "active")["status"], "active")
                time.sleep(0.5)
                dst.kill()
                info = wait_migration(qs)
            self.assertEqual(info["status"], "failed")
            self.assertIn("error-desc", info)
            self.assertTrue(qs.ok("query-status")["running"])
            n = last_count(src)
            wait_count(src, n + 10)
            check_counter(self, src.output(), min_count=n + 10)
            self.second_migration_succeeds(src, qs)

    def test_source_killed(self):
        uri = self.sock_uri()
        with counter_vm() as src, counter_vm(incoming=uri) as dst:
            wait_count(src, 5)
            with src.qmp() as qs:
                qs.ok("migrate-set-parameters", {"max-bandwidth": SLOW})
                qs.ok("migrate", {"uri": uri})
                wait_status(qs, "active")
                time.sleep(0.5)
            src.kill()
            self.assertEqual(dst.wait(30), 1)
            self.assertIn("incoming migration failed", dst.stderr())
            self.assertIn("truncated", dst.stderr())
            self.assertEqual(last_count(dst), 0)

    def test_cancel_active(self):
        uri = self.sock_uri()
        with counter_vm() as src, src.qmp() as qs:
            wait_count(src, 5)
            enable_events(qs)
            qs.ok("migrate-set-parameters", {"max-bandwidth": SLOW})
            with counter_vm(incoming=uri) as dst:
                qs.ok("migrate", {"uri": uri})
                wait_status(qs, "active")
                qs.ok("migrate_cancel")
                self.assertEqual(migration_events(qs, until="cancelled"),
                                 ["setup", "active", "cancelling", "cancelled"])
                self.assertEqual(dst.wait(30), 1)
                self.assertEqual(last_count(dst), 0)
            self.assertEqual(wait_migration(qs)["status"], "cancelled")
            self.assertTrue(qs.ok("query-status")["running"])
            n = last_count(src)
            wait_count(src, n + 10)
            self.second_migration_succeeds(src, qs)

    def test_cancel_before_any_migration(self):
        with counter_vm() as src, src.qmp() as qs:
            qs.ok("migrate_cancel")
            self.assertTrue(qs.ok("query-status")["running"])

    def test_cancel_at_switchover(self):
        uri = self.sock_uri()
        with counter_vm() as src, src.qmp() as qs:
            wait_count(src, 5)
            qs.ok("migrate-set-capabilities", {"capabilities": [
                {"capability": "pause-before-switchover", "state": True}]})
            with counter_vm(incoming=uri) as dst:
                qs.ok("migrate", {"uri": uri})
                self.assertEqual(wait_status(qs, "pre-switchover")["status"],
                                 "pre-switchover")
                self.assertFalse(qs.ok("query-status")["running"])
                qs.ok("migrate_cancel")
                self.assertEqual(wait_migration(qs)["status"], "cancelled")
                self.assertEqual(dst.wait(30), 1)
            # The guest that was stopped for the switch-over runs again.
            self.assertTrue(qs.ok("query-status")["running"])
            n = last_count(src)
            wait_count(src, n + 10)
            check_counter(self, src.output(), min_count=n + 10)
            qs.ok("migrate-set-capabilities", {"capabilities": [
                {"capability": "pause-before-switchover", "state": False}]})
            self.second_migration_succeeds(src, qs)

    def test_garbage_stream(self):
        uri = self.sock_uri()
        with counter_vm(incoming=uri) as dst:
            deadline = time.monotonic() + 10
            while not os.path.exists(uri[5:]) and time.monotonic() < deadline:
                time.sleep(0.05)
            s = socket.socket(socket.AF_UNIX)
            s.connect(uri[5:])
            s.sendall(b"GARBAGE!" + bytes(100))
            s.close()
            self.assertEqual(dst.wait(30), 1)
            self.assertIn("bad magic", dst.stderr())
            self.assertEqual(dst.output(), "")

    def refused_by(self, dst_extra, dst_mem, message):
        uri = self.sock_uri()
        with counter_vm() as src, src.qmp() as qs:
            wait_count(src, 5)
            with counter_vm(incoming=uri, extra=dst_extra, mem=dst_mem) as dst:
                qs.ok("migrate", {"uri": uri})
                info = wait_migration(qs)
                self.assertEqual(dst.wait(30), 1)
                self.assertIn(message, dst.stderr())
                self.assertEqual(last_count(dst), 0)
            self.assertEqual(info["status"], "failed")
            self.assertIn("did not accept", info["error-desc"])
            self.assertTrue(qs.ok("query-status")["running"])
            n = last_count(src)
            wait_count(src, n + 5)
            check_counter(self, src.output(), min_count=n + 5)

    def test_refused_ram_size(self):
        self.refused_by([], "256M", "give both the same -m")

    def test_refused_missing_section(self):
        # The destination has a COM2 the source lacks.
        self.refused_by(["-serial", "null"], "128M", "no section 'serial' instance 1")


if __name__ == "__main__":
    unittest.main()
