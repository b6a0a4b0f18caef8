"""virtio-scsi through the vireo binary: a controller with disks and a
CD-ROM on the command line starts, runs a guest and closes its images clean
(qemu-img check); bad unit options end the process with status 1 and a
message naming the option, and scsi-block says why it cannot pass a file
through."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import (EXIT_PASS, guest, machine_args,
                                         requires_kvm, run_vireo)


@requires_kvm
class VirtioScsiOnCommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-vscsi-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def raw(self, name, size=1 << 20):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            f.truncate(size)
        return p

    def run_with(self, *opts):
        args = machine_args(guest("hello.mb.elf")) + list(opts)
        return run_vireo(args + ["-serial", "stdio"], timeout=60)

    def expect_error(self, *opts_and_words):
        opts = [o for o in opts_and_words if isinstance(o, tuple)]
        words = [w for w in opts_and_words if isinstance(w, str)]
        flat = [x for o in opts for x in o]
        r = self.run_with(*flat)
        self.assertEqual(r.status, 1, r)
        for w in words:
            self.assertIn(w, r.stderr, r)

    @unittest.skipUnless(shutil.which("qemu-img"), "qemu-img not installed")
    def test_controller_with_units(self):
        q = os.path.join(self.dir, "d.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", q, "16M"], check=True)
        iso = self.raw("cd.iso", 2048 * 100)
        r = self.run_with(
            "-drive", "file=%s,format=qcow2,if=none,id=d0,discard=unmap" % q,
            "-drive", "file=%s,format=raw,if=none,id=cd0,readonly=on" % iso,
            "-device", "virtio-scsi-pci,id=scsi0,num_queues=2",
            "-device", "scsi-hd,drive=d0,bus=scsi0.0,scsi-id=0,lun=0,serial=S1,"
                       "wwn=0x5000000000000001",
            "-device", "scsi-cd,drive=cd0,bus=scsi0.0,scsi-id=1,lun=3",
            "-device", "scsi-cd,bus=scsi0.0,scsi-id=1,lun=4")
        self.assertEqual(r.status, EXIT_PASS, r)
        c = subprocess.run(["qemu-img", "check", "-q", q], capture_output=True, text=True)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)

    def test_unit_without_controller(self):
        self.expect_error(("-drive", "file=%s,format=raw,if=none,id=d0" % self.raw("a"),
                           "-device", "scsi-hd,drive=d0"), "no virtio-scsi-pci")

    def test_bad_bus(self):
        self.expect_error(("-drive", "file=%s,format=raw,if=none,id=d0" % self.raw("a"),
                           "-device", "virtio-scsi-pci,id=scsi0",
                           "-device", "scsi-hd,drive=d0,bus=scsi1.0"), "bus=scsi1.0")

    def test_lun_out_of_range(self):
        self.expect_error(("-drive", "file=%s,format=raw,if=none,id=d0" % self.raw("a"),
                           "-device", "virtio-scsi-pci",
                           "-device", "scsi-hd,drive=d0,lun=20000"), "lun")

    def test_same_address_twice(self):
        self.expect_error(("-drive", "file=%s,format=raw,if=none,id=d0" % self.raw("a"),
                           "-drive", "file=%s,format=raw,if=none,id=d1" % self.raw("b"),
                           "-device", "virtio-scsi-pci",
                           "-device", "scsi-hd,drive=d0,scsi-id=3",
                           "-device", "scsi-hd,drive=d1,scsi-id=3"), "already in use")

    def test_scsi_block_needs_sg(self):
        self.expect_error(("-drive", "file=%s,format=raw,if=none,id=d0" % self.raw("a"),
                           "-device", "virtio-scsi-pci",
                           "-device", "scsi-block,drive=d0"), "SG_IO", "scsi-hd")

    def test_device_help_lists_types(self):
        r = run_vireo(["-device", "help"], timeout=30)
        out = r.stdout + r.stderr
        for t in ("virtio-scsi-pci", "scsi-hd", "scsi-cd", "scsi-block"):
            self.assertIn(t, out, r)


if __name__ == "__main__":
    unittest.main()
