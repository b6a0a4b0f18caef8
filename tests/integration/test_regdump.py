"""Differential test of the final vCPU state: every bare-metal guest of
machine_cases.py (and the power and fault paths that end a VM) runs with
`-d cpu_exit` under TCG and must leave exactly the registers it leaves
under KVM, on every vCPU -- compared with a KVM run where /dev/kvm opens,
and always with the KVM dumps recorded in tests/integration/data/
(regdump_cases.py records them again).  The cases and the registers each
may legitimately differ in are in regdump_cases.py.

The serial output of the same guests is compared by test_machine.py and
test_machine_tcg.py.
"""
import os
import re
import shutil
import tempfile
import unittest

from tests.integration.regdump_cases import (
    CASES, RF, comparable, expected_path, image_bytes, parse_dump, run_case)
from tests.integration.vireotest import (
    EXIT_FAIL, EXIT_PASS, Vm, guest, kvm_available, machine_args, run_vireo)

OUT_EAX_F4 = b"\xe7\xf4"	# out %eax, $0xf4: the isa-debug-exit write
UD2 = b"\x0f\x0b"


def describe(a, b, what):
    """The registers that differ, one line each."""
    lines = []
    for cpu, (ra, rb) in enumerate(zip(a, b)):
        if ra == rb:
            continue
        if isinstance(ra, dict):
            for reg in sorted(set(ra) | set(rb)):
                if ra.get(reg) != rb.get(reg):
                    lines.append("CPU#%d %s: %s %s, %s %s" % (
                        cpu, reg, what[0], fmt(ra.get(reg)), what[1], fmt(rb.get(reg))))
        else:
            lines.append("APs: %s %r\n      %s %r" % (what[0], ra, what[1], rb))
    return "\n".join(lines)


def fmt(v):
    if isinstance(v, tuple):
        return " ".join("%x" % w for w in v)
    return "%x" % v if isinstance(v, int) else repr(v)


class FinalRegisters(unittest.TestCase):
    def assert_same(self, name, a_text, b_text, what):
        case = CASES[name]
        a = comparable(case, parse_dump(a_text))
        b = comparable(case, parse_dump(b_text))
        if a != b:
            self.fail("%s: the final registers differ\n%s" % (
                name, describe(a, b, what)))

    def check(self, name):
        case = CASES[name]
        tcg, _ = run_case(name, "tcg")
        with open(expected_path(name)) as f:
            self.assert_same(name, f.read(), tcg, ("kvm (recorded)", "tcg"))
        if case.status in (EXIT_PASS, EXIT_FAIL):
            # The exit is the OUT to isa-debug-exit: the dump is the state
            # after it retired, with RIP past it.
            rip = parse_dump(tcg)[0]["RIP"]
            self.assertEqual(image_bytes(name, rip - 2, 2), OUT_EAX_F4,
                             "%s: RIP %#x is not right after the exit's OUT" % (name, rip))
        if kvm_available():
            kvm, _ = run_case(name, "kvm")
            self.assert_same(name, kvm, tcg, ("kvm", "tcg"))
        return parse_dump(tcg)


def add_case(name):
    def test(self):
        self.check(name)
    test.__name__ = "test_" + name
    test.__doc__ = "%s %s" % (CASES[name].kernel, CASES[name].append or "")
    setattr(FinalRegisters, test.__name__, test)


for _name in CASES:
    add_case(_name)


class FaultEnds(unittest.TestCase):
    """What the dump says where the guest dies of a fault, beyond the two
    accelerators agreeing."""

    MARKS = {"RAX": 0x11111111, "RBX": 0x22222222, "RCX": 0x33333333,
             "RDX": 0x44444444, "RSI": 0x55555555, "RDI": 0x66666666}

    def test_triple_fault_stops_at_the_faulting_instruction(self):
        for accel in ("tcg", "kvm") if kvm_available() else ("tcg",):
            text, out = run_case("fault_triple", accel)
            self.assertIn("fault: triple", out)
            regs = parse_dump(text)[0]
            self.assertEqual(image_bytes("fault_triple", regs["RIP"], 2), UD2,
                             "%s: RIP %#x is not at the ud2" % (accel, regs["RIP"]))
            for reg, value in self.MARKS.items():
                self.assertEqual(regs[reg], value, "%s: %s" % (accel, reg))
            self.assertEqual(regs["IDT"], (0, 0), accel)

    def test_undefined_opcode_ends_in_its_handler(self):
        for accel in ("tcg", "kvm") if kvm_available() else ("tcg",):
            text, out = run_case("fault_ud", accel)
            self.assertIn("FAIL: unexpected exception vector 6", out)
            regs = parse_dump(text)[0]
            # The handler ran (the runtime's 256-gate IDT) and exited with
            # EXIT_FAIL's value in EAX, right after the OUT.
            self.assertEqual(regs["IDT"][1], 256 * 8 - 1, accel)
            self.assertEqual(regs["RAX"], 0x11, accel)
            self.assertEqual(image_bytes("fault_ud", regs["RIP"] - 2, 2), OUT_EAX_F4, accel)


    def test_fault_pushes_rf(self):
        # A fault-class exception sets RF in the EFLAGS image it pushes
        # (TCG once pushed RFLAGS as it was); RFLAGS itself keeps RF clear.
        for accel in ("tcg", "kvm") if kvm_available() else ("tcg",):
            text, out = run_case("fault_frame", accel)
            m = re.search(r"^fault: #UD frame eflags=0x([0-9a-f]+)$", out, re.M)
            self.assertIsNotNone(m, out)
            self.assertTrue(int(m.group(1), 16) & RF, (accel, out))
            self.assertFalse(parse_dump(text)[0]["RFL"] & RF, (accel, text))


class Option(unittest.TestCase):
    def test_help_and_unknown_item(self):
        r = run_vireo(["-d", "help"])
        self.assertEqual(r.status, 0, r)
        self.assertRegex(r.stdout, r"(?m)^cpu_exit +\S")
        r = run_vireo(["-d", "cpu_exit,frob", "-kernel", guest("hello.mb.elf")])
        self.assertEqual(r.status, 1, r)
        self.assertIn("unknown log item 'frob'", r.stderr)

    def test_default_is_stderr_and_nothing_without_d(self):
        args = machine_args(guest("hello.pvh.elf"), accel="tcg") + ["-serial", "null"]
        r = run_vireo(args + ["-d", "cpu_exit"])
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertEqual(list(parse_dump(r.stderr)), [0], r)
        r = run_vireo(args)
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertNotIn("CPU#0", r.stderr)

    def test_same_layout_as_info_registers(self):
        # HMP and -d cpu_exit share one formatter: the same lines, in the
        # same order, for the boot state and for the final state.
        tmp = tempfile.mkdtemp(prefix="vireo-regdump-")
        try:
            log = os.path.join(tmp, "regs.log")
            args = machine_args(guest("hello.mb.elf"), accel="tcg")
            with Vm(args + ["-S", "-d", "cpu_exit", "-D", log], qmp=True) as vm, \
                    vm.qmp() as q:
                hmp = q.hmp("info registers")
                q.ok("cont")
                self.assertEqual(vm.wait(30), EXIT_PASS, vm.stderr())
            with open(log) as f:
                dump = f.read()
        finally:
            shutil.rmtree(tmp)
        self.assertTrue(hmp.endswith("\r\n"), hmp)
        hmp = hmp.replace("\r\n", "\n")
        names = [[w.split("=")[0] for w in line.split() if "=" in w]
                 for text in (hmp, dump) for line in text.splitlines()]
        half = len(names) // 2
        self.assertEqual(names[:half], names[half:], (hmp, dump))
        boot, final = parse_dump(hmp)[0], parse_dump(dump)[0]
        self.assertEqual(set(boot), set(final))
        self.assertNotEqual(boot["RIP"], final["RIP"])

    def test_log_file_unwritable(self):
        r = run_vireo(["-D", os.path.join("/nonexistent", "x.log"), "-kernel",
                       guest("hello.mb.elf")])
        self.assertEqual(r.status, 1, r)
        self.assertIn("-D /nonexistent/x.log", r.stderr)


if __name__ == "__main__":
    unittest.main()
