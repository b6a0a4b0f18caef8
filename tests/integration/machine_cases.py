"""Whole-machine test cases, written once and run per accelerator: every
boot format, serial output, exit status through isa-debug-exit, SMP
bring-up and vCPU threads, the memory map, the PCI bus and the LAPIC timer.

The classes here are mixins with no TestCase base, so nothing runs them
directly; test_machine.py (KVM) and test_machine_tcg.py (TCG) combine them
with unittest.TestCase and set ACCEL ("kvm", "tcg") and THREAD_SUFFIX (the
vCPU thread name suffix, "KVM", "TCG").
"""
import re

from tests.integration.vireotest import (
    EXIT_FAIL, EXIT_PASS, Vm, e820_entries, guest, machine_args, run_vireo)

GiB = 1 << 30
MiB = 1 << 20


def ram_ranges(entries):
    return [(b, b + s) for b, s, t in entries if t == 1]


class MachineCase:
    ACCEL = None
    THREAD_SUFFIX = None

    def args(self, kernel, **kw):
        return machine_args(kernel, accel=self.ACCEL, **kw)


class BootFormats(MachineCase):
    """The same guest code through each loader: the guest says which
    protocol it was entered by and echoes the command line it found."""

    def boot(self, kernel, proto):
        r = run_vireo(self.args(guest(kernel), append="alpha beta=2") +
                      ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("Hello from vireo guest\n", r.stdout, r)
        self.assertIn("boot=%s\n" % proto, r.stdout, r)

    def test_multiboot(self):
        self.boot("hello.mb.elf", "multiboot")

    def test_pvh(self):
        self.boot("hello.pvh.elf", "pvh")

    def test_bzimage_64bit_entry(self):
        self.boot("hello64.bzimage", "linux")

    def cmdline(self, kernel):
        r = run_vireo(self.args(guest(kernel), append="alpha beta=2") +
                      ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        m = re.search(r"^cmdline=(.*)$", r.stdout, re.M)
        self.assertIsNotNone(m, r)
        return m.group(1)

    def test_multiboot_cmdline(self):
        # Multiboot loaders may put the kernel's name first (QEMU does).
        self.assertTrue(self.cmdline("memmap.mb.elf").endswith("alpha beta=2"))

    def test_pvh_cmdline(self):
        self.assertEqual(self.cmdline("memmap.pvh.elf"), "alpha beta=2")

    def test_bzimage_cmdline(self):
        self.assertEqual(self.cmdline("memmap64.bzimage"), "alpha beta=2")


class ExitAndSerial(MachineCase):
    def test_guest_failure_status(self):
        # The timer guest refuses ticks=0 and writes 0x11: status 35, not 33.
        r = run_vireo(self.args(guest("timer.mb.elf"), append="ticks=0") +
                      ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_FAIL, r)
        self.assertIn("FAIL: ticks=0", r.stdout, r)

    def test_unused_port_writes(self):
        # Writes to a port nobody claimed are dropped; the guest goes on.
        r = run_vireo(self.args(guest("ioloop.pvh.elf"), append="n=1000") +
                      ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertRegex(r.stdout, r"(?m)^ioloop n=1000 port=0x3000 cycles=\d+$")

    def test_serial_file(self):
        with Vm(self.args(guest("hello.pvh.elf")), serial="file") as vm:
            self.assertEqual(vm.wait(30), EXIT_PASS, vm.stderr())
            self.assertIn("Hello from vireo guest\n", vm.output())

    def test_serial_pipe(self):
        with Vm(self.args(guest("hello.mb.elf"))) as vm:
            vm.wait_for(r"^Hello from vireo guest$")
            self.assertEqual(vm.wait(30), EXIT_PASS)


class Smp(MachineCase):
    def apic_ids(self, text):
        return [int(x) for x in re.findall(r"^cpu apic_id=(\d+)$", text, re.M)]

    def test_four_cpus_from_madt(self):
        r = run_vireo(self.args(guest("smp.mb.elf"), smp=4) + ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("smp: expecting 4 cpus (MADT)", r.stdout, r)
        ids = self.apic_ids(r.stdout)
        self.assertEqual(len(ids), 4, r)
        self.assertEqual(len(set(ids)), 4, r)

    def test_two_cpus_pvh_cmdline_count(self):
        r = run_vireo(self.args(guest("smp.pvh.elf"), smp=2, append="cpus=2") +
                      ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertEqual(sorted(set(self.apic_ids(r.stdout))), sorted(self.apic_ids(r.stdout)))
        self.assertEqual(len(self.apic_ids(r.stdout)), 2, r)

    def test_vcpu_threads(self):
        with Vm(self.args(guest("smp.mb.elf"), smp=4, append="wait")) as vm:
            vm.wait_for(r"^smp: 4 cpus up, waiting$")
            self.assertEqual(len(set(self.apic_ids(vm.output()))), 4, vm.output())
            names = vm.thread_names()
            vcpus = sorted(n for n in names if n.startswith("CPU "))
            self.assertEqual(vcpus, ["CPU %d/%s" % (i, self.THREAD_SUFFIX)
                                     for i in range(4)], names)


class MemoryMap(MachineCase):
    def memmap(self, kernel, mem):
        r = run_vireo(self.args(guest(kernel), mem=mem) + ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        entries = e820_entries(r.stdout)
        self.assertTrue(entries, r)
        return entries, r

    def check_no_ram_in_legacy_hole(self, entries):
        for lo, hi in ram_ranges(entries):
            self.assertFalse(lo < 0x100000 and hi > 0xA0000,
                             "RAM [%#x, %#x) overlaps the VGA/BIOS hole" % (lo, hi))

    def test_128m(self):
        for kernel in ("memmap.mb.elf", "memmap.pvh.elf", "memmap64.bzimage"):
            entries, r = self.memmap(kernel, "128M")
            self.check_no_ram_in_legacy_hole(entries)
            ram = ram_ranges(entries)
            self.assertIn(0, [lo for lo, hi in ram], r)
            self.assertIn(0x100000, [lo for lo, hi in ram], r)
            total = sum(hi - lo for lo, hi in ram)
            # All of -m except the 384 KiB hole and the EBDA.
            self.assertLessEqual(total, 128 * MiB, r)
            self.assertGreaterEqual(total, 128 * MiB - MiB, r)
            self.assertLessEqual(max(hi for lo, hi in ram), 128 * MiB, r)

    def test_4g_split_around_pci_hole(self):
        entries, r = self.memmap("memmap.pvh.elf", "4G")
        self.check_no_ram_in_legacy_hole(entries)
        ram = ram_ranges(entries)
        for lo, hi in ram:
            self.assertTrue(hi <= 0xC0000000 or lo >= 4 * GiB,
                            "RAM [%#x, %#x) in the PCI hole\n%r" % (lo, hi, r))
        low = sum(hi - lo for lo, hi in ram if hi <= 4 * GiB)
        high = [(lo, hi) for lo, hi in ram if lo >= 4 * GiB]
        self.assertEqual([lo for lo, hi in high], [4 * GiB], r)
        self.assertEqual(max(hi for lo, hi in ram if hi <= 4 * GiB), 0xC0000000, r)
        total = low + sum(hi - lo for lo, hi in high)
        self.assertLessEqual(total, 4 * GiB, r)
        self.assertGreaterEqual(total, 4 * GiB - MiB, r)


class Devices(MachineCase):
    def test_pci_bus0(self):
        r = run_vireo(self.args(guest("pciscan.mb.elf")) + ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        funcs = re.findall(r"^pci 00:([0-9a-f]{2})\.([0-7]) vendor=([0-9a-f]{4}) "
                           r"device=([0-9a-f]{4}) class=([0-9a-f]{6})$", r.stdout, re.M)
        m = re.search(r"^pciscan: (\d+) functions$", r.stdout, re.M)
        self.assertIsNotNone(m, r)
        self.assertEqual(int(m.group(1)), len(funcs), r)
        # A host bridge at 00:00.0, as every PC has.
        self.assertIn("00", [d for d, f, v, i, c in funcs if f == "0"], r)
        host = [c for d, f, v, i, c in funcs if d == "00" and f == "0"][0]
        self.assertEqual(host, "060000", r)

    def test_lapic_timer(self):
        r = run_vireo(self.args(guest("timer.mb.elf"), append="ticks=20") +
                      ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("timer ticks=20\n", r.stdout, r)

    def test_lapic_timer_pvh_smp(self):
        # The BSP's timer with APs present (and parked in wait-for-SIPI).
        r = run_vireo(self.args(guest("timer.pvh.elf"), smp=2, append="ticks=5") +
                      ["-serial", "stdio"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("timer ticks=5\n", r.stdout, r)
