"""Power-off, reset and RAM backing: the guest powers off through ACPI S5
(exit 0), reboots through each reset line (or exits under -no-reboot),
stays under -no-shutdown, and runs from -mem-path RAM."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import (EXIT_PASS, Vm, guest, machine_args,
                                         requires_kvm, run_vireo)


def power_args(append, no_reboot=True, extra=()):
    args = machine_args(guest("power.mb.elf"), append=append, extra=extra)
    if not no_reboot:
        args.remove("-no-reboot")
    return args + ["-serial", "stdio"]


@requires_kvm
class PowerAndReset(unittest.TestCase):
    def test_acpi_poweroff_exits_zero(self):
        r = run_vireo(power_args("off=acpi"), timeout=30)
        self.assertEqual(r.status, 0, r)
        self.assertIn("entering S5 (SLP_TYP 5)", r.stdout)
        self.assertNotIn("still running", r.stdout)

    def test_reset_lines_reboot(self):
        for how in ["kbd", "port92", "cf9"]:
            r = run_vireo(power_args("reset=" + how, no_reboot=False), timeout=30)
            self.assertEqual(r.status, EXIT_PASS, r)
            self.assertIn("rebooted", r.stdout, how)

    def test_reset_lines_exit_with_no_reboot(self):
        for how in ["kbd", "port92", "cf9"]:
            r = run_vireo(power_args("reset=" + how), timeout=30)
            self.assertEqual(r.status, 0, r)
            self.assertNotIn("rebooted", r.stdout, how)
            self.assertNotIn("still running", r.stdout, how)

    def test_no_shutdown_keeps_the_vm(self):
        args = machine_args(guest("power.mb.elf"), append="off=acpi",
                            extra=["-no-shutdown", "-S"])
        with Vm(args, qmp=True) as vm:
            q = vm.qmp()
            q.ok("cont")		# connected before the guest can power off
            vm.wait_for("entering S5")
            e = q.event("SHUTDOWN")
            self.assertEqual(e["data"], {"guest": True, "reason": "guest-shutdown"})
            q.event("STOP")
            self.assertEqual(q.ok("query-status")["status"], "shutdown")
            self.assertIn("error", q.cmd("cont"))
            q.ok("system_reset")
            self.assertEqual(q.ok("query-status")["status"], "paused")
            q.ok("cont")
            q.event("SHUTDOWN")		# the guest powered off a second time
            vm.wait_for(r"entering S5[^\n]*\n(.|\n)*entering S5")
            self.assertIsNone(vm.proc.poll())
            q.close()


@requires_kvm
class MemPath(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-mem-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_hello(self, extra):
        return run_vireo(machine_args(guest("hello.mb.elf"), mem="64M", extra=extra) +
                         ["-serial", "stdio"], timeout=30)

    def test_file_backed_ram(self):
        r = self.run_hello(["-mem-path", self.dir, "-mem-prealloc"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("not on hugetlbfs", r.stderr)
        self.assertEqual(os.listdir(self.dir), [], "the RAM file is never left behind")

    def test_hugetlbfs(self):
        if os.getuid() != 0:
            self.skipTest("needs root to reserve huge pages and mount hugetlbfs")
        with open("/proc/sys/vm/nr_hugepages") as f:
            before = int(f.read())
        try:
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(before + 40))
            mounted = subprocess.run(["mount", "-t", "hugetlbfs", "none", self.dir],
                                     capture_output=True).returncode == 0
        except OSError:
            mounted = False
        if not mounted:
            self.skipTest("this host cannot reserve huge pages or mount hugetlbfs")
        try:
            with open("/proc/meminfo") as f:
                free_before = [l for l in f if l.startswith("HugePages_Free")][0]
            r = self.run_hello(["-mem-path", self.dir, "-mem-prealloc"])
            self.assertEqual(r.status, EXIT_PASS, r)
            self.assertNotIn("not on hugetlbfs", r.stderr)
            self.assertIn("Hello from vireo guest", r.stdout)
            with open("/proc/meminfo") as f:
                free_after = [l for l in f if l.startswith("HugePages_Free")][0]
            self.assertEqual(free_before, free_after, "huge pages are given back")
        finally:
            subprocess.run(["umount", self.dir])
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(before))

    def test_bad_mem_path(self):
        r = self.run_hello(["-mem-path", os.path.join(self.dir, "nope")])
        self.assertEqual(r.status, 1, r)
        self.assertIn("-mem-path", r.stderr)
        self.assertIn("nope", r.stderr)


if __name__ == "__main__":
    unittest.main()
