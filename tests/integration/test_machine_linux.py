"""The Debian cloud kernel booted as a bzImage under KVM, up to the command
line it prints.

On the CI host KVM is nested on PVM, which runs a non-PVM guest through an
instruction emulator: the kernel never finishes booting, so the test stops
at "Command line:" and kills the VM.  vireo unpacks the kernel's payload
itself and gets there in seconds; a kernel left to decompress itself takes
minutes (about 200 s here), hence the long wait.  The test has a module of
its own so that this wait cannot eat the other machine tests' budget.
"""
import unittest

from tests.integration.vireotest import Vm, linux_guest, machine_args, requires_kvm


@requires_kvm
class DebianKernel(unittest.TestCase):
    def test_linux_command_line(self):
        vmlinuz, initrd = linux_guest()
        append = "earlyprintk=ttyS0 console=ttyS0 vireo.test=a,b panic=-1"
        with Vm(machine_args(vmlinuz, mem="512M", initrd=initrd, append=append)) as vm:
            vm.wait_for(r"Linux version \d+\.\d+\.\d+", timeout=700)
            m = vm.wait_for(r"Command line: (.*)\n", timeout=120)
            self.assertEqual(m.group(1), append)


if __name__ == "__main__":
    unittest.main()
