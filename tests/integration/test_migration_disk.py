"""Migration with a virtio-blk disk on storage both ends open (a file):
the virtio-pci and PCI state travel, the source flushes at switch-over,
and the disk reads back the same on the destination."""
import hashlib
import os
import shutil
import tempfile
import time
import unittest

from tests.integration.migtest import (check_counter, counter_vm, last_count, wait_count,
                                       wait_migration)
from tests.integration.vireotest import (DEBUG_EXIT, EXIT_PASS, Vm, guest, machine_args,
                                         requires_kvm)

SECTORS = 64


def pattern(sectors):
    return bytes((s * 31 + i * 7 + 1) & 0xff for s in range(sectors) for i in range(512))


@requires_kvm
class DiskMigration(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migdisk-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.disk = os.path.join(self.dir, "disk.raw")
        with open(self.disk, "wb") as f:
            f.write(os.urandom(1 << 20))
            f.truncate(4 << 20)

    def drive(self):
        return ["-drive", "file=%s,format=raw,if=none,id=d0" % self.disk,
                "-device", "virtio-blk-pci,drive=d0,serial=MIG-1"]

    def digest(self):
        with open(self.disk, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def test_counter_with_disk(self):
        """The PCI and virtio-pci sections load, the counter continues, and
        the image is byte for byte what it was."""
        before = self.digest()
        uri = "unix:" + os.path.join(self.dir, "mig.sock")
        with counter_vm(extra=self.drive()) as src, \
                counter_vm(incoming=uri, extra=self.drive()) as dst:
            wait_count(src, 10)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": uri})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                handed = last_count(src)
                wait_count(dst, handed + 10)
                self.assertEqual([b["device"] for b in qd.ok("query-block")], ["d0"])
            check_counter(self, src.output() + dst.output(), min_count=handed + 10)
        self.assertEqual(self.digest(), before)

    def test_block_guest_finishes_on_destination(self):
        """A virtio-blk guest moved before it starts runs its whole
        write/flush/read-back on the destination, through the device and
        MSI-X routes the destination rebuilt, and the data is on the disk."""
        uri = "unix:" + os.path.join(self.dir, "mig.sock")
        args = machine_args(guest("virtioblk.mb.elf"), append="sectors=%d" % SECTORS,
                            extra=self.drive())
        with Vm(args + ["-S"], serial="file", qmp=True) as src, \
                Vm(args + ["-incoming", uri], serial="file", qmp=True) as dst:
            with dst.qmp() as qd:
                qd.ok("query-status")
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": uri})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertFalse(qd.ok("query-status")["running"])
                qd.ok("cont")
                self.assertEqual(dst.wait(60), EXIT_PASS, dst._describe())
            self.assertIn("wrote and read back %d sectors, serial 'MIG-1'" % SECTORS,
                          dst.output())
            self.assertEqual(src.output(), "")
        with open(self.disk, "rb") as f:
            self.assertEqual(f.read(SECTORS * 512), pattern(SECTORS))


if __name__ == "__main__":
    unittest.main()
