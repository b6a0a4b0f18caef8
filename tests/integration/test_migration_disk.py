"""Migration with a virtio-blk disk on storage both ends open (a file):
the virtio-pci and PCI state travel, the source flushes at switch-over,
and the disk reads back the same on the destination.

The image is locked by whichever vireo has it open (QEMU-compatible
locking in block/), and the block layer cannot yet hand the lock over at
switch-over, so these tests move the VM through a state file: the source
saves and quits, then the destination opens the same image and restores.
Live socket migration with a disk waits for that block-layer hand-over."""
import hashlib
import os
import shutil
import tempfile
import unittest

from tests.integration.migtest import (check_counter, counter_vm, last_count, wait_count,
                                       wait_migration)
from tests.integration.vireotest import EXIT_PASS, Vm, guest, machine_args, requires_kvm

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

    def save_and_quit(self, args, paused=False):
        state = os.path.join(self.dir, "vm.state")
        with Vm(args, serial="file", qmp=True) as src:
            with src.qmp() as qs:
                if paused:
                    qs.ok("stop")
                else:
                    wait_count(src, 10)
                qs.ok("migrate", {"uri": "file:" + state})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                qs.ok("quit")
            src.wait(30)
            return src.output(), last_count(src), state

    def test_counter_with_disk(self):
        """The PCI and virtio-pci sections load, the counter continues, and
        the image is byte for byte what it was."""
        before = self.digest()
        args = machine_args(guest("counter.mb.elf"), extra=self.drive())
        out, handed, state = self.save_and_quit(args)
        with Vm(args + ["-incoming", "file:" + state], serial="file", qmp=True) as dst:
            with dst.qmp() as qd:
                self.assertEqual(wait_migration(qd)["status"], "completed")
                wait_count(dst, handed + 10)
                self.assertEqual([b["device"] for b in qd.ok("query-block")], ["d0"])
            check_counter(self, out + dst.output(), min_count=handed + 10)
        self.assertEqual(self.digest(), before)

    def test_block_guest_finishes_on_destination(self):
        """A virtio-blk guest moved before it starts runs its whole
        write/flush/read-back on the destination, through the device and
        MSI-X routes the destination rebuilt, and the data is on the disk."""
        args = machine_args(guest("virtioblk.mb.elf"), append="sectors=%d" % SECTORS,
                            extra=self.drive())
        out, _, state = self.save_and_quit(args + ["-S"], paused=True)
        self.assertEqual(out, "")
        with Vm(args + ["-incoming", "file:" + state], serial="file", qmp=True) as dst:
            with dst.qmp() as qd:
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertFalse(qd.ok("query-status")["running"])
                qd.ok("cont")
                self.assertEqual(dst.wait(60), EXIT_PASS, dst._describe())
            self.assertIn("wrote and read back %d sectors, serial 'MIG-1'" % SECTORS,
                          dst.output())
        with open(self.disk, "rb") as f:
            self.assertEqual(f.read(SECTORS * 512), pattern(SECTORS))


if __name__ == "__main__":
    unittest.main()
