"""The whole machine on vireo's own translator: the same cases as under
KVM (machine_cases.py), so a guest cannot tell the accelerators apart.
Needs no /dev/kvm."""
import os
import shutil
import tempfile
import unittest

from tests.integration import machine_cases as mc
from tests.integration.vireotest import EXIT_PASS, guest, machine_args, run_vireo


class Tcg:
    ACCEL = "tcg"
    THREAD_SUFFIX = "TCG"


class BootFormats(Tcg, mc.BootFormats, unittest.TestCase):
    pass


class ExitAndSerial(Tcg, mc.ExitAndSerial, unittest.TestCase):
    pass


class Smp(Tcg, mc.Smp, unittest.TestCase):
    pass


class MemoryMap(Tcg, mc.MemoryMap, unittest.TestCase):
    pass


class Devices(Tcg, mc.Devices, unittest.TestCase):
    pass



class AccelFallback(unittest.TestCase):
    def test_kvm_then_tcg(self):
        # -accel kvm:tcg where /dev/kvm cannot be opened (as nobody): a
        # warning naming the device, then the guest runs on TCG.
        if os.geteuid() != 0:
            self.skipTest("needs root to run vireo as an unprivileged user")
        if os.path.exists("/dev/kvm") and os.stat("/dev/kvm").st_mode & 0o006:
            self.skipTest("/dev/kvm is open to every user on this host")
        tmp = tempfile.mkdtemp(prefix="vireo-fallback-")
        self.addCleanup(shutil.rmtree, tmp, True)
        kernel = os.path.join(tmp, "hello.mb.elf")
        shutil.copyfile(guest("hello.mb.elf"), kernel)
        os.chmod(kernel, 0o644)
        os.chmod(tmp, 0o755)
        r = run_vireo(machine_args(kernel, accel="kvm:tcg") + ["-serial", "stdio"],
                      cwd=tmp, uid=65534)
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("Hello from vireo guest\n", r.stdout, r)
        self.assertIn("/dev/kvm", r.stderr, r)


if __name__ == "__main__":
    unittest.main()
