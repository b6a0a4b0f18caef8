"""Differential test of the translator against hardware: the randseq guest
(tests/guests/randseq.c) generates fixed-seed random instruction sequences
(integer ALU in every operand form, shifts, mul/div, bt*, cmov/setcc,
push/pop, string ops, xadd/cmpxchg, ...) and prints a hash of registers,
arithmetic flags and scratch memory after each.  TCG must print exactly
what KVM prints, and exactly the results recorded under KVM in
tests/integration/data/ (randseq_cases.py records them again), so hosts
without /dev/kvm still compare TCG with hardware.

The bare-metal guests of machine_cases.py run under both accelerators in
test_machine.py and test_machine_tcg.py.
"""
import difflib
import unittest

from tests.integration.randseq_cases import CASES, expected_path, run_case
from tests.integration.vireotest import requires_kvm


def first_difference(a, b, what):
    diff = list(difflib.unified_diff(a.splitlines(), b.splitlines(), what[0],
                                     what[1], lineterm="", n=0))
    return "\n".join(diff[:12]) + (
        "\n(find the instruction: randseq's first=K count=1 len=N code dump)")


class RandomSequences(unittest.TestCase):
    def check_recorded(self, name, accel="tcg"):
        with open(expected_path(name)) as f:
            expected = f.read()
        out = run_case(name, accel)
        self.assertGreater(out.count("\nseq "), 100, out[-2000:])
        if out != expected:
            self.fail("TCG differs from the recorded KVM results (%s):\n%s" % (
                CASES[name], first_difference(expected, out, ("kvm (recorded)", "tcg"))))

    @requires_kvm
    def check_kvm(self, name):
        kvm = run_case(name, "kvm")
        tcg = run_case(name, "tcg")
        if kvm != tcg:
            self.fail("TCG differs from KVM (%s):\n%s" % (
                CASES[name], first_difference(kvm, tcg, ("kvm", "tcg"))))

    def test_recorded_seed1(self):
        self.check_recorded("seed1")

    def test_recorded_seed2(self):
        self.check_recorded("seed2")

    def test_recorded_seed3(self):
        self.check_recorded("seed3")

    def test_recorded_seed4(self):
        self.check_recorded("seed4")

    # The same with the interpreter (-accel tcg,jit=off): the default
    # above runs host code.
    def test_interp_seed1(self):
        self.check_recorded("seed1", "tcg,jit=off")

    def test_interp_seed2(self):
        self.check_recorded("seed2", "tcg,jit=off")

    def test_interp_seed3(self):
        self.check_recorded("seed3", "tcg,jit=off")

    def test_interp_seed4(self):
        self.check_recorded("seed4", "tcg,jit=off")

    def test_kvm_seed1(self):
        self.check_kvm("seed1")

    def test_kvm_seed2(self):
        self.check_kvm("seed2")

    def test_kvm_seed3(self):
        self.check_kvm("seed3")

    def test_kvm_seed4(self):
        self.check_kvm("seed4")

if __name__ == "__main__":
    unittest.main()
