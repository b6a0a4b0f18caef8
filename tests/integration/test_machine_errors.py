"""Bad input on vireo's command line: each case must exit with status 1, say
what was wrong (naming the option or file), and leave no file behind.

The cases run with -accel kvm:tcg, so they need no /dev/kvm; the one about
an unopenable /dev/kvm asks for kvm alone."""
import os
import shutil
import tempfile
import unittest

from tests.integration.vireotest import guest, machine_args, run_vireo


def vm_args(kernel, accel="kvm:tcg", **kw):
    return machine_args(kernel, accel=accel, **kw)


class BadInput(unittest.TestCase):
    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="vireo-bad-")
        self.addCleanup(shutil.rmtree, self.cwd, True)

    def expect_error(self, args, *words, env=None, keep=(), uid=None):
        """status 1, every word in stderr, nothing new in the working dir."""
        r = run_vireo(args + ["-serial", "stdio"], timeout=30, env=env, cwd=self.cwd, uid=uid)
        self.assertEqual(r.status, 1, r)
        for w in words:
            self.assertIn(w, r.stderr, r)
        self.assertEqual(sorted(set(os.listdir(self.cwd)) - set(keep)), [], r)
        return r

    def test_bad_memory_size_zero(self):
        self.expect_error(vm_args(guest("hello.mb.elf"), mem="0"), "-m", "0")

    def test_bad_memory_size_word(self):
        self.expect_error(vm_args(guest("hello.mb.elf"), mem="abc"), "-m", "abc")

    def test_too_many_vcpus(self):
        self.expect_error(vm_args(guest("hello.mb.elf"), smp=1000), "-smp", "1000")

    def test_unknown_option(self):
        self.expect_error(vm_args(guest("hello.mb.elf")) + ["-frobnicate"],
                          "-frobnicate")

    def test_missing_kernel(self):
        path = os.path.join(self.cwd, "no-such-kernel")
        self.expect_error(vm_args(path), path)

    def truncated(self, name, size):
        src = guest(name)
        dst = os.path.join(self.cwd, "trunc-" + name)
        with open(src, "rb") as f:
            data = f.read()
        self.assertLess(size, len(data))
        with open(dst, "wb") as f:
            f.write(data[:size])
        return dst

    def test_truncated_bzimage(self):
        # The setup header promises syssize paragraphs the file lacks.
        k = self.truncated("hello64.bzimage", 3000)
        self.expect_error(vm_args(k), k, keep=[os.path.basename(k)])

    def test_truncated_elf(self):
        # Program headers point past the end of the file.
        k = self.truncated("hello.pvh.elf", 4200)
        self.expect_error(vm_args(k), k, keep=[os.path.basename(k)])

    def test_truncated_multiboot(self):
        # The multiboot header survives; the loadable segment does not.
        k = self.truncated("hello.mb.elf", 4200)
        self.expect_error(vm_args(k), k, keep=[os.path.basename(k)])

    def write_kernel(self, name, data):
        path = os.path.join(self.cwd, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_empty_kernel(self):
        k = self.write_kernel("empty", b"")
        self.expect_error(vm_args(k), k, keep=["empty"])

    def test_not_a_kernel(self):
        k = self.write_kernel("notes.txt", b"not a kernel\n" * 1000)
        self.expect_error(vm_args(k), k, keep=["notes.txt"])

    def test_unknown_device(self):
        self.expect_error(vm_args(guest("hello.mb.elf")) +
                          ["-device", "no-such-device"], "no-such-device")

    def test_kvm_device_unopenable(self):
        # An accelerator that cannot open /dev/kvm: run as nobody, whom the
        # device's mode (0600 or 0660 root:kvm) keeps out.
        nobody = 65534
        if os.geteuid() != 0:
            self.skipTest("needs root to run vireo as an unprivileged user")
        if os.path.exists("/dev/kvm") and os.stat("/dev/kvm").st_mode & 0o006:
            self.skipTest("/dev/kvm is open to every user on this host")
        # A kernel that user can read, so only the device can be the cause.
        kernel = os.path.join(self.cwd, "hello.mb.elf")
        shutil.copyfile(guest("hello.mb.elf"), kernel)
        os.chmod(kernel, 0o644)
        os.chmod(self.cwd, 0o755)
        self.expect_error(vm_args(kernel, accel="kvm"), "/dev/kvm", uid=nobody,
                          keep=["hello.mb.elf"])


if __name__ == "__main__":
    unittest.main()
