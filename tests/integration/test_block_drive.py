"""-drive through the vireo binary: bad options and hostile images end the
process with status 1 and a message naming the option or the file; a good
qcow2 drive is opened, attached and closed cleanly (qemu-img check)."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import (EXIT_PASS, Vm, guest, machine_args,
                                         requires_kvm, run_vireo)


def have_qemu_img():
    return shutil.which("qemu-img") is not None


@requires_kvm
class DriveOnCommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-drive-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_with(self, *drives):
        args = machine_args(guest("hello.mb.elf"))
        for d in drives:
            args += ["-drive", d]
        return run_vireo(args + ["-serial", "stdio"], timeout=60)

    def expect_error(self, drive, *words):
        r = self.run_with(drive)
        self.assertEqual(r.status, 1, r)
        for w in words:
            self.assertIn(w, r.stderr, r)

    def raw(self, name="d.raw", size=1 << 20):
        p = self.path(name)
        with open(p, "wb") as f:
            f.truncate(size)
        return p

    def test_bad_cache_value(self):
        self.expect_error("file=%s,format=raw,cache=foo" % self.raw(), "cache='foo'",
                          "writeback")

    def test_unknown_option(self):
        self.expect_error("file=%s,format=raw,nosuchkey=1" % self.raw(), "nosuchkey")

    def test_missing_file(self):
        p = self.path("nope.qcow2")
        self.expect_error("file=%s,format=qcow2" % p, p)

    def test_native_needs_direct(self):
        self.expect_error("file=%s,format=raw,aio=native" % self.raw(),
                          "aio=native requires cache=none")

    def test_not_qcow2(self):
        p = self.raw("fake.qcow2")
        self.expect_error("file=%s,format=qcow2" % p, p, "bad magic")

    @unittest.skipUnless(have_qemu_img(), "qemu-img not installed")
    def test_corrupt_bit(self):
        p = self.path("c.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", p, "1M"], check=True)
        with open(p, "r+b") as f:
            f.seek(79)
            f.write(bytes([2]))
        self.expect_error("file=%s,format=qcow2" % p, p, "corrupt")

    @unittest.skipUnless(have_qemu_img(), "qemu-img not installed")
    def test_good_drives_open_and_close_clean(self):
        q = self.path("g.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", q, "16M"], check=True)
        r = self.run_with("file=%s,format=qcow2,if=none,id=d0" % q,
                          "file=%s,format=raw,if=none,id=d1,cache=none,aio=threads"
                          % self.raw())
        self.assertEqual(r.status, EXIT_PASS, r)
        c = subprocess.run(["qemu-img", "check", q], capture_output=True, text=True)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(have_qemu_img(), "qemu-img (qemu-utils) not installed")
class Locking(unittest.TestCase):
    """file.locking=: QEMU's image locks, taken unless it is off."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-lock-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.disk = os.path.join(self.dir, "d.raw")
        with open(self.disk, "wb") as f:
            f.truncate(1 << 20)

    def qemu_io_write(self):
        return subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 512", self.disk],
                              capture_output=True, text=True)

    def test_locking(self):
        for mode, locked in (("", True), (",file.locking=auto", True),
                             (",file.locking=on", True), (",file.locking=off", False)):
            drive = "file=%s,format=raw,if=virtio%s" % (self.disk, mode)
            with Vm(["-S", "-accel", "tcg", "-kernel", guest("hello.mb.elf"),
                     "-drive", drive], qmp=True) as vm, vm.qmp() as q:
                q.ok("query-status")		# up, the drive open
                r = self.qemu_io_write()
                if locked:
                    self.assertNotEqual(r.returncode, 0, (mode, r.stdout))
                    self.assertIn('Failed to get "write" lock', r.stderr, mode)
                else:
                    self.assertEqual(r.returncode, 0, (mode, r.stderr))
                # A second vireo on the image: refused while it is locked.
                r = run_vireo(machine_args(guest("hello.mb.elf"), accel="tcg",
                                           extra=["-drive", drive]) + ["-serial", "stdio"],
                              timeout=60)
                if locked:
                    self.assertEqual(r.status, 1, (mode, r))
                    self.assertIn("is another process using the image?", r.stderr)
                else:
                    self.assertEqual(r.status, EXIT_PASS, (mode, r))

    def test_bad_value(self):
        r = run_vireo(machine_args(guest("hello.mb.elf"), accel="tcg", extra=[
            "-drive", "file=%s,format=raw,file.locking=maybe" % self.disk]))
        self.assertEqual(r.status, 1, r)
        self.assertIn("file.locking='maybe' is not one of: auto, on, off", r.stderr)


class Snapshot(unittest.TestCase):
    """snapshot=on keeps the guest's writes in a file of this host alone."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-snap-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.disk = os.path.join(self.dir, "d.raw")
        with open(self.disk, "wb") as f:
            f.truncate(1 << 20)

    def test_no_migration(self):
        drive = "file=%s,format=raw,if=virtio,id=d0,snapshot=on" % self.disk
        with Vm(["-S", "-accel", "tcg", "-kernel", guest("hello.mb.elf"),
                 "-drive", drive], qmp=True) as vm, vm.qmp() as q:
            e = q.cmd("migrate", {"uri": "unix:" + os.path.join(self.dir, "m.sock")})["error"]
            self.assertIn("drive d0 has snapshot=on", e["desc"])
            self.assertEqual(q.ok("query-migrate"), {})
        r = run_vireo(machine_args(guest("hello.mb.elf"), accel="tcg", extra=[
            "-drive", drive, "-incoming", "defer"]))
        self.assertEqual(r.status, 1, r)
        self.assertIn("snapshot=on cannot take an incoming migration", r.stderr)
