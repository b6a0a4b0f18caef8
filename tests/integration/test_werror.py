"""werror=/rerror= on -drive, with a real full disk: the image lives on a
small tmpfs that a filler file has filled, so the guest's 32 KiB write
fails with ENOSPC in the host.  With werror=stop (and the default,
enospc) the VM pauses with BLOCK_IO_ERROR and STOP, query-block shows
io-status "nospace", and after the filler is deleted `cont` retries the
write: the bare-metal virtioblk guest reads its data back and passes, and
the image holds it.  werror=report gives the guest IOERR; werror=ignore
tells it the write succeeded (so its read-back finds zeros).  Mounting
the tmpfs needs root (CI runs as root); the test skips without it.

FullDiskScsi runs the same cases on a scsi-hd behind virtio-scsi-pci (the
same guest, driving the controller with WRITE (10), SYNCHRONIZE CACHE and
READ (10)): CHECK CONDITION is its "status 1".

rerror= is checked here only for its parsing: no honest way to make a
read fail on this host was found (no device-mapper), so the read path of
the policy is covered by tests/unit/test_werror.c and test_scsi_werror.c.
"""
import errno
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import (EXIT_FAIL, EXIT_PASS, Vm, guest, kvm_available,
                                         machine_args, run_vireo)

SECTORS = 64		# the guest writes 32 KiB at sector 0


def pattern(sectors):
    return bytes((s * 31 + i * 7 + 1) & 0xff for s in range(sectors) for i in range(512))


def accel():
    return "kvm" if kvm_available() else "tcg"


def accels():
    return (["kvm"] if kvm_available() else []) + ["tcg"]


class FullDisk(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-werror-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M,mode=0700", "tmpfs",
                            self.dir], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs root): %s" % p.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", self.dir], check=False)
        self.image = os.path.join(self.dir, "disk.raw")
        self.filler = os.path.join(self.dir, "filler")
        self.prepare()

    def prepare(self):
        """An empty image on a full tmpfs."""
        with open(self.image, "wb") as f:
            f.truncate(4 << 20)		# sparse: it takes no space until written
        self.fill()

    def fill(self):
        """Take every free page of the tmpfs."""
        with open(self.filler, "wb", buffering=0) as f:
            chunk = b"\xaa" * 4096
            while True:
                try:
                    if f.write(chunk) < len(chunk):
                        break
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        st = os.statvfs(self.dir)
        self.assertLess(st.f_bavail * st.f_frsize, SECTORS * 512, "the tmpfs is not full")

    # The guest's options and the device that serves the drive.
    GUEST_OPTS = ""
    DEVICES = ["-device", "virtio-blk-pci,drive=d0,serial=VIREO-SN-1"]

    def start(self, drive_opts, accel_name=None):
        """The guest, paused (-S) until a QMP client is there to see the events."""
        args = machine_args(guest("virtioblk.mb.elf"), accel=accel_name or accel(),
                            append="sectors=%d%s" % (SECTORS, self.GUEST_OPTS)) + [
            "-S",
            "-drive", "file=%s,format=raw,if=none,id=d0%s" % (self.image, drive_opts)
        ] + self.DEVICES
        vm = Vm(args, qmp=True)
        self.addCleanup(vm.close)
        q = vm.qmp()
        self.addCleanup(q.close)
        q.ok("cont")
        return vm, q

    def image_head(self):
        with open(self.image, "rb") as f:
            return f.read(SECTORS * 512)

    def io_status(self, q):
        for b in q.ok("query-block"):
            if b["device"] == "d0":
                return b.get("io-status")
        self.fail("query-block has no d0")

    def check_stop_and_retry(self, drive_opts, accel_name=None):
        vm, q = self.start(drive_opts, accel_name)
        ev = q.event("BLOCK_IO_ERROR", timeout=60)["data"]
        self.assertEqual(ev["device"], "d0")
        self.assertEqual(ev["operation"], "write")
        self.assertEqual(ev["action"], "stop")
        self.assertIs(ev["nospace"], True)
        self.assertEqual(ev["reason"], os.strerror(errno.ENOSPC))
        q.event("STOP")
        st = q.ok("query-status")
        self.assertEqual(st["status"], "io-error")
        self.assertIs(st["running"], False)
        self.assertEqual(self.io_status(q), "nospace")
        # Still paused and waiting: the guest has not been told anything.
        self.assertNotIn("write: status", vm.output())
        self.assertNotEqual(self.image_head(), pattern(SECTORS))

        os.unlink(self.filler)
        q.ok("cont")
        self.assertEqual(vm.wait(60), EXIT_PASS, vm._describe())
        self.assertIn("wrote and read back %d sectors" % SECTORS, vm.output())
        self.assertEqual(self.image_head(), pattern(SECTORS))

    def test_werror_stop_retries_on_cont(self):
        for i, a in enumerate(accels()):
            with self.subTest(accel=a):
                if i:
                    self.prepare()
                self.check_stop_and_retry(",werror=stop", a)

    def test_default_is_enospc_which_stops(self):
        self.check_stop_and_retry("")

    def test_werror_report(self):
        vm, q = self.start(",werror=report")
        ev = q.event("BLOCK_IO_ERROR", timeout=60)["data"]
        self.assertEqual((ev["operation"], ev["action"], ev["nospace"]),
                         ("write", "report", True))
        self.assertEqual(vm.wait(60), EXIT_FAIL, vm._describe())
        self.assertIn("FAIL: write: status 1", vm.output())	# VIRTIO_BLK_S_IOERR

    def test_werror_ignore(self):
        vm, q = self.start(",werror=ignore")
        ev = q.event("BLOCK_IO_ERROR", timeout=60)["data"]
        self.assertEqual((ev["operation"], ev["action"]), ("write", "ignore"))
        self.assertEqual(vm.wait(60), EXIT_FAIL, vm._describe())
        # The write was reported done; only the read-back shows it was not.
        out = vm.output()
        self.assertNotIn("write: status", out)
        self.assertIn("FAIL: sector 0 byte 0: read back 0x0", out)


class FullDiskScsi(FullDisk):
    """The same full disk under a scsi-hd: the policy is the drive's, whatever the device."""
    GUEST_OPTS = " scsi"
    DEVICES = ["-device", "virtio-scsi-pci,id=scsi0",
               "-device", "scsi-hd,drive=d0,bus=scsi0.0,scsi-id=0,lun=0"]


class BadValues(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-werror-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.image = os.path.join(self.dir, "d.raw")
        with open(self.image, "wb") as f:
            f.truncate(1 << 20)

    def expect_refused(self, opt, *words):
        args = machine_args(guest("hello.mb.elf"), accel=accel()) + [
            "-drive", "file=%s,format=raw,%s" % (self.image, opt), "-serial", "stdio"]
        r = run_vireo(args, timeout=60)
        self.assertEqual(r.status, 1, r)
        for w in words:
            self.assertIn(w, r.stderr, r)

    def test_werror_sometimes(self):
        self.expect_refused("werror=sometimes", "werror='sometimes'", "enospc")

    def test_rerror_bad(self):
        self.expect_refused("rerror=sometimes", "rerror='sometimes'", "stop")

    def test_rerror_enospc(self):
        # As QEMU: ENOSPC is a write condition.
        self.expect_refused("rerror=enospc", "rerror='enospc'")


if __name__ == "__main__":
    unittest.main()
