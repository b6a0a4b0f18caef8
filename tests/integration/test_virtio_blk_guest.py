"""A bare-metal guest with its own virtio-pci block driver: PCI scan,
feature negotiation, a queue with an MSI-X vector, write, flush, read back,
GET_ID.  Under KVM the kick goes through an ioeventfd and the completion
through an irqfd; under TCG through the bus and the user-space LAPIC.  The
host then checks the image: the bytes the guest wrote, and for qcow2 a
clean `qemu-img check`."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import (EXIT_PASS, guest, kvm_available, machine_args,
                                         run_vireo)

SECTORS = 64


def pattern(sectors):
    return bytes((s * 31 + i * 7 + 1) & 0xff for s in range(sectors) for i in range(512))


class VirtioBlkGuest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-vblk-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_guest(self, image, fmt, accel, append="", device_opts="", drive_opts="", env=None):
        args = machine_args(guest("virtioblk.mb.elf"), accel=accel,
                            append="sectors=%d %s" % (SECTORS, append)) + [
            "-drive", "file=%s,format=%s,if=none,id=d0%s" % (image, fmt, drive_opts),
            "-device", "virtio-blk-pci,drive=d0,serial=VIREO-SN-1" + device_opts,
            "-serial", "stdio"]
        r = run_vireo(args, timeout=120, env=env)
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("wrote and read back %d sectors, serial 'VIREO-SN-1', irqs 5" % SECTORS,
                      r.stdout)
        self.assertIn("past-the-end read status 1", r.stdout)	# VIRTIO_BLK_S_IOERR
        return r

    def raw_image(self):
        path = os.path.join(self.dir, "disk.raw")
        with open(path, "wb") as f:
            f.truncate(4 << 20)
        return path

    def check_raw(self, path):
        with open(path, "rb") as f:
            self.assertEqual(f.read(SECTORS * 512), pattern(SECTORS))

    def accels(self):
        return (["kvm"] if kvm_available() else []) + ["tcg"]

    def test_snapshot_on(self):
        """snapshot=on: the guest reads back what it wrote, the image is
        untouched, and nothing is left in $TMPDIR."""
        tmp = os.path.join(self.dir, "tmp")
        os.mkdir(tmp)
        for accel in self.accels():
            with self.subTest(accel=accel):
                img = self.raw_image()
                self.run_guest(img, "raw", accel, drive_opts=",snapshot=on", env={"TMPDIR": tmp})
                with open(img, "rb") as f:
                    self.assertEqual(f.read(), bytes(4 << 20))
                self.assertEqual(os.listdir(tmp), [])

    def test_raw(self):
        for accel in self.accels():
            with self.subTest(accel=accel):
                img = self.raw_image()
                r = self.run_guest(img, "raw", accel)
                self.assertIn("capacity 8192 sectors", r.stdout)
                self.check_raw(img)

    def test_event_idx_and_multiqueue(self):
        for accel in self.accels():
            with self.subTest(accel=accel):
                img = self.raw_image()
                r = self.run_guest(img, "raw", accel, append="event_idx",
                                   device_opts=",num-queues=4")
                self.assertIn("virtio-blk: 4 queues", r.stdout)
                self.check_raw(img)

    def test_qcow2(self):
        if not shutil.which("qemu-img"):
            self.skipTest("qemu-img (qemu-utils) is not installed")
        for accel in self.accels():
            with self.subTest(accel=accel):
                img = os.path.join(self.dir, "disk-%s.qcow2" % accel)
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, "4M"], check=True)
                self.run_guest(img, "qcow2", accel)
                chk = subprocess.run(["qemu-img", "check", img], capture_output=True, text=True)
                self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
                raw = os.path.join(self.dir, "out.raw")
                subprocess.run(["qemu-img", "convert", "-O", "raw", img, raw], check=True)
                self.check_raw(raw)


if __name__ == "__main__":
    unittest.main()
