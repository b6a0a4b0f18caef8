"""The whole machine on vireo's own translator: the same cases as under
KVM (machine_cases.py), so a guest cannot tell the accelerators apart.
Needs no /dev/kvm."""
import unittest

from tests.integration import machine_cases as mc


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


class Interp:
    """The portable interpreter (-accel tcg,jit=off) on the same cases."""
    ACCEL = "tcg,jit=off"
    THREAD_SUFFIX = "TCG"


class InterpBootFormats(Interp, mc.BootFormats, unittest.TestCase):
    pass


class InterpSmp(Interp, mc.Smp, unittest.TestCase):
    pass


class InterpDevices(Interp, mc.Devices, unittest.TestCase):
    pass



if __name__ == "__main__":
    unittest.main()
