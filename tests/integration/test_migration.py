"""Live migration of the running counter guest under KVM between two vireo
processes: over TCP on loopback, over a unix socket, and with -incoming
defer.  The counter continues on the destination without a gap or a
repeat, and every checksum matches a model of the guest's pages."""
import os
import shutil
import tempfile
import time
import unittest

from tests.integration.migtest import (assert_handed_over, check_counter, counter_vm, enable_events,
                                       last_count, migration_events, wait_count,
                                       wait_migration)
from tests.integration.vireotest import free_port, requires_kvm


@requires_kvm
class LiveMigration(unittest.TestCase):
    def tmp_path(self, name):
        """NAME in a directory of its own, removed when the test ends."""
        d = tempfile.mkdtemp(prefix="vireo-mig-")
        self.addCleanup(shutil.rmtree, d, True)
        return os.path.join(d, name)

    def migrate_and_check(self, uri, defer=False, multifd=0):
        with counter_vm() as src, counter_vm(incoming="defer" if defer else uri) as dst:
            wait_count(src, 30)
            with src.qmp() as qs, dst.qmp() as qd:
                if defer:
                    self.assertEqual(qd.ok("query-status")["status"], "inmigrate")
                    qd.ok("migrate-incoming", {"uri": uri})
                enable_events(qs)
                if multifd:
                    qs.ok("migrate-set-capabilities", {"capabilities": [
                        {"capability": "multifd", "state": True}]})
                    qs.ok("migrate-set-parameters", {"multifd-channels": multifd})
                qs.ok("migrate", {"uri": uri})
                self.assertEqual(migration_events(qs),
                                 ["setup", "active", "device", "completed"])
                info = wait_migration(qs)
                self.assertEqual(info["status"], "completed")
                for key in ("total-time", "downtime", "setup-time"):
                    self.assertIn(key, info)
                ram = info["ram"]
                self.assertEqual(ram["total"], 128 << 20)
                if multifd:
                    self.assertGreater(ram["multifd-bytes"], 0)
                else:
                    self.assertEqual(ram["multifd-bytes"], 0)
                self.assertEqual(ram["remaining"], 0)
                # Zero pages went as a flag: far fewer bytes than RAM.
                self.assertLess(ram["transferred"], 32 << 20)
                self.assertGreater(ram["duplicate"], 20000)
                handed = assert_handed_over(self, src, dst, qs, qd)
            # The source's serial output and the destination's join into one
            # unbroken run: no count lost, none repeated, every sum right.
            last = check_counter(self, src.output() + dst.output(), min_count=handed + 40)
            self.assertGreater(last, handed)

    def test_tcp(self):
        self.migrate_and_check("tcp:127.0.0.1:%d" % free_port())

    def test_unix(self):
        path = self.tmp_path("mig.sock")
        self.migrate_and_check("unix:" + path)

    def test_multifd(self):
        path = self.tmp_path("mig.sock")
        self.migrate_and_check("unix:" + path, multifd=4)

    def test_multifd_tcp(self):
        self.migrate_and_check("tcp:127.0.0.1:%d" % free_port(), multifd=2)

    def test_incoming_defer(self):
        path = self.tmp_path("mig.sock")
        self.migrate_and_check("unix:" + path, defer=True)

    def test_paused_guest_stays_paused(self):
        path = self.tmp_path("mig.sock")
        with counter_vm() as src, counter_vm(incoming="unix:" + path) as dst:
            wait_count(src, 10)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("stop")
                handed = last_count(src)
                qs.ok("migrate", {"uri": "unix:" + path})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                # Paused as it was on the source; the source handed it over.
                self.assertEqual(qd.ok("query-status")["status"], "paused")
                self.assertEqual(qs.ok("query-status")["status"], "postmigrate")
                self.assertEqual(qs.hmp("info status"), "VM status: paused (postmigrate)\r\n")
                time.sleep(0.3)
                self.assertEqual(last_count(dst), 0)
                # Nothing resumed it: no RESUME (events come before the reply).
                qd.ok("query-status")
                self.assertNotIn("RESUME", [e["event"] for e in qd.events])
                qd.ok("cont")
                wait_count(dst, handed + 10)
            check_counter(self, src.output() + dst.output(), min_count=handed + 10)

    def test_stop_resume_events(self):
        """The source says STOP when it stops the guest for the switch-over,
        the destination RESUME when it starts it: their timestamps bound
        the time the guest did not run (what the bench reports as "guest
        pause" for vireo and QEMU alike)."""
        port = free_port()
        uri = "tcp:127.0.0.1:%d" % port
        with counter_vm() as src, counter_vm(incoming=uri) as dst:
            wait_count(src, 10)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": uri})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                stop = qs.event("STOP", timeout=30)
                resume = qd.event("RESUME", timeout=30)
                self.assertFalse(qs.ok("query-status")["running"])
                self.assertTrue(qd.ok("query-status")["running"])

                def t(e):
                    return e["timestamp"]["seconds"] * 1000000 + e["timestamp"]["microseconds"]
                self.assertGreaterEqual(t(resume), t(stop))
                # One each: no stray RESUME on the source, STOP on the destination.
                self.assertNotIn("RESUME", [e["event"] for e in qs.events])
                self.assertNotIn("STOP", [e["event"] for e in qd.events])
                wait_count(dst, last_count(src) + 5)

    def test_smp_and_high_ram(self):
        """Four vCPUs (three waiting for SIPI in the in-kernel LAPIC) and RAM
        above 4 GiB (a second RAM region): every vCPU section and both
        regions load."""
        path = self.tmp_path("mig.sock")
        with counter_vm(smp=4, mem="3200M") as src, \
                counter_vm(incoming="unix:" + path, smp=4, mem="3200M") as dst:
            wait_count(src, 10)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": "unix:" + path})
                info = wait_migration(qs)
                self.assertEqual(info["status"], "completed", info)
                self.assertEqual(info["ram"]["total"], 3200 << 20)
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertEqual(len(qd.ok("query-cpus-fast")), 4)
                handed = last_count(src)
                wait_count(dst, handed + 10)
            check_counter(self, src.output() + dst.output(), min_count=handed + 10)

    def test_capabilities_and_parameters(self):
        with counter_vm() as vm, vm.qmp() as q:
            caps = {c["capability"]: c["state"] for c in q.ok("query-migrate-capabilities")}
            self.assertEqual(set(caps), {"multifd", "mapped-ram", "auto-converge", "events",
                                         "pause-before-switchover"})
            self.assertFalse(any(caps.values()))
            enable_events(q)
            caps = {c["capability"]: c["state"] for c in q.ok("query-migrate-capabilities")}
            self.assertTrue(caps["events"])
            r = q.cmd("migrate-set-capabilities",
                      {"capabilities": [{"capability": "no-such", "state": True}]})
            self.assertIn("no-such", r["error"]["desc"])
            p = q.ok("query-migrate-parameters")
            self.assertEqual(p["downtime-limit"], 300)
            q.ok("migrate-set-parameters", {"downtime-limit": 50, "max-bandwidth": 1 << 20})
            p = q.ok("query-migrate-parameters")
            self.assertEqual((p["downtime-limit"], p["max-bandwidth"]), (50, 1 << 20))
            r = q.cmd("migrate-set-parameters", {"downtime-limit": 3000000})
            self.assertIn("downtime_limit", r["error"]["desc"])
            self.assertEqual(q.ok("query-migrate"), {})
            r = q.cmd("migrate", {"uri": "bogus:x"})
            self.assertIn("unknown migration URI", r["error"]["desc"])
            r = q.cmd("migrate-incoming", {"uri": "tcp:127.0.0.1:1"})
            self.assertIn("-incoming", r["error"]["desc"])
            self.assertTrue(q.ok("query-status")["running"])

    def test_pause_before_switchover(self):
        path = self.tmp_path("mig.sock")
        with counter_vm() as src, counter_vm(incoming="unix:" + path) as dst:
            wait_count(src, 10)
            with src.qmp() as qs, dst.qmp() as qd:
                enable_events(qs)
                qs.ok("migrate-set-capabilities", {"capabilities": [
                    {"capability": "pause-before-switchover", "state": True}]})
                qs.ok("migrate", {"uri": "unix:" + path})
                self.assertEqual(migration_events(qs, until="pre-switchover"),
                                 ["setup", "active", "pre-switchover"])
                self.assertEqual(qs.ok("query-status")["status"], "finish-migrate")
                handed = last_count(src)
                qs.ok("migrate-continue", {"state": "pre-switchover"})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                wait_count(dst, handed + 10)
            check_counter(self, src.output() + dst.output(), min_count=handed + 10)

    def test_named_fd(self):
        """libvirt's way: each side gets its end of a socket pair with getfd
        and migrates over fd:NAME."""
        import socket
        a, b = socket.socketpair()
        with counter_vm() as src, counter_vm(incoming="defer") as dst:
            wait_count(src, 30)
            with src.qmp() as qs, dst.qmp() as qd:
                qd.cmd_fds("getfd", {"fdname": "migin"}, [b.fileno()])
                qs.cmd_fds("getfd", {"fdname": "migout"}, [a.fileno()])
                a.close()
                b.close()
                qd.ok("migrate-incoming", {"uri": "fd:migin"})
                qs.ok("migrate", {"uri": "fd:migout"})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                handed = assert_handed_over(self, src, dst, qs, qd)
                # The name was used up by the migration.
                e = qs.cmd("closefd", {"fdname": "migout"})["error"]
                self.assertIn("not found", e["desc"])
            last = check_counter(self, src.output() + dst.output(), min_count=handed + 40)
            self.assertGreater(last, handed)

    def test_exec(self):
        """exec: on both ends, through a file the two commands share."""
        path = self.tmp_path("stream")
        with counter_vm() as src, src.qmp() as qs:
            wait_count(src, 10)
            qs.ok("migrate", {"uri": "exec:cat > %s" % path})
            self.assertEqual(wait_migration(qs)["status"], "completed")
            handed = last_count(src)
            out = src.output()
        with counter_vm(incoming="exec:cat %s" % path) as dst, dst.qmp() as qd:
            self.assertEqual(wait_migration(qd)["status"], "completed")
            wait_count(dst, handed + 10)
            check_counter(self, out + dst.output(), min_count=handed + 10)

    def test_auto_converge(self):
        """auto-converge on a slow link with a guest that dirties a page every
        step without pause: whether or not the throttle engages (that
        depends on this host's speed; test_migration_throttle checks the
        schedule), the result is a consistent guest, and a throttle that
        engaged has ended (the destination's guest runs at full speed)."""
        path = self.tmp_path("mig.sock")
        with counter_vm(extra=["-append", "delay=0"]) as src, \
                counter_vm(incoming="unix:" + path, extra=["-append", "delay=0"]) as dst:
            wait_count(src, 10)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate-set-capabilities", {"capabilities": [
                    {"capability": "auto-converge", "state": True}]})
                qs.ok("migrate-set-parameters", {"downtime-limit": 0, "max-bandwidth": 2 << 20})
                qs.ok("migrate", {"uri": "unix:" + path})
                info = wait_migration(qs, timeout=300)
                self.assertEqual(info["status"], "completed", info)
                self.assertNotIn("mig/throttle", src.thread_names())
                self.assertEqual(wait_migration(qd)["status"], "completed")
                handed = last_count(src)
                wait_count(dst, handed + 10)
            check_counter(self, src.output() + dst.output(), min_count=handed + 10)


if __name__ == "__main__":
    unittest.main()
