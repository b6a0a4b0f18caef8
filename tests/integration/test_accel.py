"""-accel: each accelerator that cannot be used says why in one line and the
next in the list is tried; an unknown one is named."""
import os
import shutil
import tempfile
import unittest

from tests.integration.vireotest import EXIT_PASS, guest, machine_args, run_vireo


def hello(accel, kernel=None, **kw):
    return run_vireo(machine_args(kernel or guest("hello.mb.elf"), accel=accel) +
                     ["-serial", "stdio"], timeout=60, **kw)


class AccelSelection(unittest.TestCase):
    def test_tcg(self):
        r = hello("tcg")
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("Hello from vireo guest", r.stdout)

    def test_tcg_jit_property(self):
        for accel in ("tcg,jit=on", "tcg,jit=off", "xen:tcg,jit=off"):
            r = hello(accel)
            self.assertEqual(r.status, EXIT_PASS, (accel, r))
            self.assertIn("Hello from vireo guest", r.stdout)

    def test_bad_properties(self):
        r = hello("tcg,jit=maybe")
        self.assertEqual(r.status, 1, r)
        self.assertIn("tcg: unknown property 'jit=maybe' (known: jit=on|off)", r.stderr)
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return
        # A property the chosen accelerator does not know is an error, not
        # a reason to fall back to the next one.
        r = hello("kvm,jit=on:tcg")
        self.assertEqual(r.status, 1, r)
        self.assertIn("-accel kvm: unknown option 'jit=on' (known: dirty-ring-size)", r.stderr)

    def test_unknown(self):
        r = hello("warp")
        self.assertEqual(r.status, 1, r)
        self.assertIn("warp: unknown accelerator", r.stderr)

    def test_xen_not_in_this_build(self):
        r = hello("xen")
        self.assertEqual(r.status, 1, r)
        self.assertIn("xen: not available in this build", r.stderr)

    def test_fallback_says_why(self):
        r = hello("xen:tcg")
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("-accel xen: not available in this build of vireo; trying tcg", r.stderr)

    def test_kvm_unopenable_falls_back_to_tcg(self):
        if os.getuid() != 0:
            self.skipTest("needs root to run vireo as an unprivileged user")
        cwd = tempfile.mkdtemp(prefix="vireo-accel-")
        self.addCleanup(shutil.rmtree, cwd, True)
        os.chmod(cwd, 0o755)
        # A kernel that user can read wherever the checkout is.
        kernel = shutil.copy(guest("hello.mb.elf"), cwd)
        os.chmod(kernel, 0o644)
        r = hello("kvm:tcg", kernel=kernel, cwd=cwd, uid=65534)
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("cannot open /dev/kvm", r.stderr)
        self.assertIn("trying tcg", r.stderr)


if __name__ == "__main__":
    unittest.main()
