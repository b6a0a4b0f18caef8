#!/usr/bin/env python3
"""The random-instruction-sequence cases of test_tcg_diff.py, and the
recorder of their expected results.

Each case runs the randseq guest (tests/guests/randseq.c) with a fixed
command line; its serial output (one hash line per sequence and a final
register line) is what KVM and TCG must agree on.  The expected outputs in
tests/integration/data/randseq_<name>.txt were recorded under KVM, so a
host without /dev/kvm still checks TCG against hardware results.  After
changing the generator in randseq.c, record them again (needs /dev/kvm,
takes about a minute):

    make tests && python3 tests/integration/randseq_cases.py
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.integration.vireotest import (  # noqa: E402
    EXIT_PASS, guest, kvm_available, machine_args, run_vireo)

DATA_DIR = os.path.join(ROOT, "tests", "integration", "data")

# name -> guest command line.  Kept small: KVM on the CI host runs this
# guest through its instruction emulator, about 70 sequences a second.
CASES = {
    "seed1": "seed=1 count=250",
    "seed2": "seed=2 count=250",
    "seed3": "seed=3 count=250",
    "seed4": "seed=4 count=250",
}


def expected_path(name):
    return os.path.join(DATA_DIR, "randseq_%s.txt" % name)


def run_case(name, accel, timeout=300):
    """The guest's serial output for one case; fails on a bad exit."""
    r = run_vireo(machine_args(guest("randseq.mb.elf"), append=CASES[name],
                               accel=accel) + ["-serial", "stdio"],
                  timeout=timeout)
    if r.status != EXIT_PASS:
        raise AssertionError("randseq %s under %s: %r" % (CASES[name], accel, r))
    return r.stdout


def record():
    if not kvm_available():
        sys.exit("recording needs /dev/kvm (the results must come from hardware)")
    os.makedirs(DATA_DIR, exist_ok=True)
    for name in CASES:
        out = run_case(name, "kvm")
        with open(expected_path(name), "w") as f:
            f.write(out)
        print("%s: %d lines" % (expected_path(name), out.count("\n")))


if __name__ == "__main__":
    record()
