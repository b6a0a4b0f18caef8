"""Device and medium changes over QMP (device_add, device_del, eject,
blockdev-change-medium) while a migration carries the device state: refused
with a GenericError naming the command on a source whose migration runs or
completed (until cont), and on a destination that waits for or loads its
stream; accepted again after a cancelled migration, on a resumed source and
on a destination once the stream is in."""
import os
import shutil
import tempfile
import unittest

from tests.integration.migtest import counter_vm, wait_count, wait_migration
from tests.integration.vireotest import image, requires_kvm

SLOW = 256 << 10	# bytes/s: the first pass takes many seconds


@requires_kvm
class DeviceChangesWhileMigrating(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migguard-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.disk = image(os.path.join(self.dir, "disk.raw"))
        self.iso1 = image(os.path.join(self.dir, "one.iso"), fill=b"1")
        self.iso2 = image(os.path.join(self.dir, "two.iso"), fill=b"2")
        self.uri = "unix:" + os.path.join(self.dir, "mig.sock")

    def vm(self, incoming=None):
        """A counter guest with a SCSI CD-ROM (cd1) and a spare drive (d1) for
        hot-plug; source and destination are set up alike."""
        extra = ["-device", "virtio-scsi-pci,id=scsi0",
                 "-drive", "file=%s,format=raw,if=none,id=d1" % self.disk,
                 "-drive", "file=%s,format=raw,if=none,id=cd0,media=cdrom" % self.iso1,
                 "-device", "scsi-cd,drive=cd0,bus=scsi0.0,scsi-id=2,id=cd1"]
        return counter_vm(incoming=incoming, extra=extra)

    def changes(self):
        return [("device_add", {"driver": "scsi-hd", "drive": "d1", "bus": "scsi0.0",
                                "scsi-id": 1, "id": "hd1"}),
                ("device_del", {"id": "cd1"}),
                ("eject", {"id": "cd1", "force": True}),
                ("blockdev-change-medium", {"id": "cd1", "filename": self.iso2,
                                            "format": "raw"})]

    def assert_refused(self, q, why):
        for name, args in self.changes():
            e = q.cmd(name, args)["error"]
            self.assertEqual(e["class"], "GenericError", (name, e))
            self.assertIn("%s not allowed while migrating" % name, e["desc"])
            self.assertIn(why, e["desc"])

    def assert_accepted(self, q):
        """Each change goes through, in an order where each one can."""
        q.ok("eject", {"id": "cd1", "force": True})
        q.ok("blockdev-change-medium", {"id": "cd1", "filename": self.iso2, "format": "raw"})
        q.ok("device_add", {"driver": "scsi-hd", "drive": "d1", "bus": "scsi0.0",
                            "scsi-id": 1, "id": "hd1"})
        q.ok("device_del", {"id": "cd1"})
        # cd1 was there until now: none of the refused commands took it away.
        self.assertEqual(q.cmd("device_del", {"id": "cd1"})["error"]["class"], "DeviceNotFound")

    def test_active_then_cancelled(self):
        with self.vm() as src, src.qmp() as qs:
            wait_count(src, 5)
            qs.ok("migrate-set-parameters", {"max-bandwidth": SLOW})
            with self.vm(incoming=self.uri) as dst, dst.qmp() as qd:
                # Listening: the stream may come any moment.
                self.assert_refused(qd, "an incoming migration is awaited")
                qs.ok("migrate", {"uri": self.uri})
                self.assertEqual(wait_migration(qs, states=("active", "completed", "failed",
                                                            "cancelled"))["status"], "active")
                self.assert_refused(qs, "a migration is active")
                # The destination takes the connection on its own main loop.
                self.assertEqual(wait_migration(qd, states=("active", "completed",
                                                            "failed"))["status"], "active")
                self.assert_refused(qd, "an incoming migration is loading")
                qs.ok("migrate_cancel")
                self.assertEqual(wait_migration(qs)["status"], "cancelled")
                self.assertEqual(dst.wait(30), 1)
            self.assertTrue(qs.ok("query-status")["running"])
            self.assert_accepted(qs)

    def test_completed_source_until_cont(self):
        with self.vm() as src, src.qmp() as qs:
            wait_count(src, 5)
            with self.vm(incoming=self.uri) as dst, dst.qmp() as qd:
                qs.ok("migrate", {"uri": self.uri})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertEqual(qs.ok("query-status")["status"], "postmigrate")
                self.assert_refused(qs, "the migration completed")
                # The destination runs the guest now: its devices are its own.
                self.assert_accepted(qd)
            # The destination is gone: the source takes the guest back.
            qs.ok("cont")
            self.assertTrue(qs.ok("query-status")["running"])
            self.assert_accepted(qs)

    def test_destination_set_up_before_migrate_incoming(self):
        """-incoming defer: changes before migrate-incoming are how the
        destination is set up; from migrate-incoming on they are refused."""
        with self.vm(incoming="defer") as dst, dst.qmp() as q:
            q.ok("device_add", {"driver": "scsi-hd", "drive": "d1", "bus": "scsi0.0",
                                "scsi-id": 1, "id": "hd1"})
            q.ok("migrate-incoming", {"uri": self.uri})
            e = q.cmd("device_del", {"id": "hd1"})["error"]
            self.assertIn("device_del not allowed while migrating: an incoming migration is "
                          "awaited", e["desc"])


if __name__ == "__main__":
    unittest.main()
