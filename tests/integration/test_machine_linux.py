"""The Debian cloud kernel booted as a bzImage under KVM, up to the command
line it prints.

On the CI host KVM is nested on PVM, which runs a non-PVM guest through an
instruction emulator: the kernel never finishes booting, so the test stops
at "Command line:" and kills the VM.  vireo unpacks the kernel's payload
itself and gets there in seconds; a kernel left to decompress itself takes
minutes (about 200 s here), hence the long wait.  The test has a module of
its own so that this wait cannot eat the other machine tests' budget.
"""
import base64
import shutil
import subprocess
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



@unittest.skipUnless(shutil.which("qemu-system-x86_64"), "no qemu-system-x86_64 installed")
class LinuxGuestOnQemu(unittest.TestCase):
    """The Linux test guest itself (tests/guests/linux/build.sh), checked on
    QEMU's TCG as the reference, so that a broken initramfs shows up here
    and not as a puzzling failure of some device's test on vireo."""

    def test_init_runs_command_and_powers_off(self):
        vmlinuz, initrd = linux_guest()
        script = "echo 'two  spaces'; ls /sys/bus/virtio/drivers; exit 3"
        cmd = base64.b64encode(script.encode()).decode()
        p = subprocess.run(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "512M", "-nodefaults",
             "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
             "-kernel", vmlinuz, "-initrd", initrd,
             "-append", "console=ttyS0 quiet panic=-1 vireo.cmd=" + cmd],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
        out = p.stdout.decode(errors="replace").replace("\r\n", "\n")
        self.assertEqual(p.returncode, 0, out[-4000:])
        self.assertRegex(out, r"(?m)^VIREO-INIT uptime=\d+\.\d+$")
        self.assertIn("\ntwo  spaces\n", out)
        # Every virtio driver the tests rely on was loaded from the initramfs.
        self.assertRegex(out, r"virtio_blk\s+virtio_scsi")
        self.assertRegex(out, r"(?m)^VIREO-CMD-EXIT 3$")
        self.assertNotIn("insmod", out)


if __name__ == "__main__":
    unittest.main()
