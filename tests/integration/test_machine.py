"""The whole machine under KVM (the cases are in machine_cases.py; the
Debian kernel is in test_machine_linux.py)."""
import unittest

from tests.integration import machine_cases as mc
from tests.integration.vireotest import requires_kvm


class Kvm:
    ACCEL = "kvm"
    THREAD_SUFFIX = "KVM"


@requires_kvm
class BootFormats(Kvm, mc.BootFormats, unittest.TestCase):
    pass


@requires_kvm
class ExitAndSerial(Kvm, mc.ExitAndSerial, unittest.TestCase):
    pass


@requires_kvm
class Smp(Kvm, mc.Smp, unittest.TestCase):
    pass


@requires_kvm
class MemoryMap(Kvm, mc.MemoryMap, unittest.TestCase):
    pass


@requires_kvm
class Devices(Kvm, mc.Devices, unittest.TestCase):
    pass


if __name__ == "__main__":
    unittest.main()
