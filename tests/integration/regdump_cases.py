#!/usr/bin/env python3
"""The final-register cases of test_regdump.py, and the recorder of their
expected dumps.

Each case runs a bare-metal guest with `-d cpu_exit` until the guest ends
the VM (isa-debug-exit, ACPI power-off, a reset or a triple fault under
-no-reboot) and parses the register dump of every vCPU.  KVM and TCG must
print the same dump, except for the registers a case masks, each with the
reason.  The KVM dumps are also recorded in
tests/integration/data/regdump_<name>.txt, so a host without /dev/kvm still
compares TCG with hardware.  After changing a guest or the dump format,
record them again (needs /dev/kvm, a few seconds):

    make tests && python3 tests/integration/regdump_cases.py
"""
import os
import re
import shutil
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.integration.vireotest import (  # noqa: E402
    EXIT_FAIL, EXIT_PASS, guest, kvm_available, machine_args, run_vireo)

DATA_DIR = os.path.join(ROOT, "tests", "integration", "data")

RF = 1 << 16


class Case:
    """kernel: the guest image; image: the ELF its code comes from (for
    reading the instruction bytes around RIP).  mask: {register: bits that
    may differ} (None: the whole register), applied to every vCPU;
    bsp_mask: the same for the BSP (CPU#0) alone.  aps_unordered: the
    APs' dumps are compared as a multiset."""

    def __init__(self, kernel, append=None, smp=1, mem="128M", status=EXIT_PASS,
                 image=None, mask=None, bsp_mask=None, aps_unordered=False):
        self.kernel = kernel
        self.append = append
        self.smp = smp
        self.mem = mem
        self.status = status
        self.image = image or kernel
        self.mask = mask or {}
        self.bsp_mask = dict(self.mask, **(bsp_mask or {}))
        self.aps_unordered = aps_unordered


# Every bare-metal guest and command line of machine_cases.py, the power
# paths of test_power.py that end the VM, and the fault guest.
CASES = {
    "hello_mb": Case("hello.mb.elf", "alpha beta=2"),
    "hello_pvh": Case("hello.pvh.elf", "alpha beta=2"),
    "hello_bz64": Case("hello64.bzimage", "alpha beta=2", image="hello64.elf"),
    "memmap_mb": Case("memmap.mb.elf", "alpha beta=2"),
    "memmap_pvh": Case("memmap.pvh.elf", "alpha beta=2"),
    "memmap_bz64": Case("memmap64.bzimage", "alpha beta=2", image="memmap64.elf"),
    "memmap_pvh_4g": Case("memmap.pvh.elf", mem="4G"),
    "pciscan_mb": Case("pciscan.mb.elf"),
    "timer_mb": Case("timer.mb.elf", "ticks=20"),
    "timer_mb_fail": Case("timer.mb.elf", "ticks=0", status=EXIT_FAIL),
    "timer_pvh_smp2": Case("timer.pvh.elf", "ticks=5", smp=2),
    # ioloop prints the TSC cycles its outb loop took; the difference of
    # the two rdtsc reads is still in ESI when it exits.
    "ioloop_pvh": Case("ioloop.pvh.elf", "n=1000", mask={"RSI": None}),
    # The APs take their stacks in the order they win the trampoline's
    # lock, which is a race between host threads, not an accelerator
    # property: compare them as a set.  Whether the BSP's wait for the APs
    # loops at all is the same race, and that loop leaves EBX and ESI
    # holding other values than the path around it.
    "smp_mb_4": Case("smp.mb.elf", smp=4, aps_unordered=True,
                     bsp_mask={"RBX": None, "RSI": None}),
    "smp_pvh_2": Case("smp.pvh.elf", "cpus=2", smp=2, bsp_mask={"RBX": None, "RSI": None}),
    "power_acpi_off": Case("power.mb.elf", "off=acpi", status=0),
    "power_reset_port92": Case("power.mb.elf", "reset=port92", status=0),
    # #UD with the runtime's IDT: its handler prints FAIL and exits.
    "fault_ud": Case("fault.mb.elf", "ud", status=EXIT_FAIL),
    # #UD into a gate of the guest's own, which prints the pushed EFLAGS
    # (a fault sets RF in that image).
    "fault_frame": Case("fault.mb.elf", "frame"),
    # A triple fault ends the VM under -no-reboot.  The CPU is then in the
    # shutdown state, whose registers the architecture leaves undefined;
    # KVM reports RFLAGS.RF set, which it sets to inject #UD as a fault
    # (so the pushed image carries it) and which stays when that delivery
    # fails.
    "fault_triple": Case("fault.mb.elf", "triple", status=0, mask={"RFL": RF}),
}

DUMP_HEADER = re.compile(r"^CPU#(\d+)$")
FIELD = re.compile(r"([A-Z][A-Z0-9 ]*?)\s*=\s*([0-9a-f]+(?: [0-9a-f]+)*)(?= [A-Z\[]|$)")


def parse_dump(text):
    """{cpu index: {register: value}} from a -d cpu_exit log.  Segment
    registers are (selector, base, limit, flags); the rest are ints."""
    cpus, cur = {}, None
    for line in text.splitlines():
        m = DUMP_HEADER.match(line)
        if m:
            cur = cpus.setdefault(int(m.group(1)), {})
            continue
        if cur is None:
            raise ValueError("register line before a CPU#n header: %r" % line)
        line = re.sub(r" \[[-A-Z]*\]", "", line)
        for name, value in FIELD.findall(line):
            words = value.split()
            cur[name.strip()] = tuple(int(w, 16) for w in words) if len(words) > 1 \
                else int(words[0], 16)
    return cpus


def apply_mask(regs, mask):
    out = dict(regs)
    for name, bits in mask.items():
        if name in out:
            out[name] = None if bits is None else out[name] & ~bits
    return out


def comparable(case, cpus):
    """What must be equal between two runs of the case: the BSP's masked
    registers, and the APs' in order or as a sorted list."""
    masked = {i: apply_mask(r, case.mask if i else case.bsp_mask) for i, r in cpus.items()}
    aps = [sorted(masked[i].items(), key=lambda kv: kv[0]) for i in sorted(masked) if i]
    if case.aps_unordered:
        aps = sorted(aps, key=repr)
    return masked.get(0), aps


def run_case(name, accel, timeout=120):
    """(the dump text, the serial output) of one case under accel; fails
    on an unexpected exit status or a missing dump."""
    case = CASES[name]
    tmp = tempfile.mkdtemp(prefix="vireo-regdump-")
    try:
        log = os.path.join(tmp, "regs.log")
        args = machine_args(guest(case.kernel), mem=case.mem, smp=case.smp,
                            append=case.append, accel=accel)
        r = run_vireo(args + ["-serial", "stdio", "-d", "cpu_exit", "-D", log],
                      timeout=timeout)
        if r.status != case.status:
            raise AssertionError("%s under %s: status %s, expected %s\n%r" % (
                name, accel, r.status, case.status, r))
        with open(log) as f:
            text = f.read()
    finally:
        shutil.rmtree(tmp)
    if len(parse_dump(text)) != case.smp:
        raise AssertionError("%s under %s: %d vCPU dumps, expected %d\n%s" % (
            name, accel, len(parse_dump(text)), case.smp, text))
    return text, r.stdout


def expected_path(name):
    return os.path.join(DATA_DIR, "regdump_%s.txt" % name)


def image_bytes(name, addr, count):
    """count bytes of the guest image at virtual address addr (its ELF
    program headers say where each segment is loaded)."""
    with open(guest(CASES[name].image), "rb") as f:
        elf = f.read()
    is64 = elf[4] == 2
    if is64:
        phoff, = struct.unpack_from("<Q", elf, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    else:
        phoff, = struct.unpack_from("<I", elf, 0x1c)
        phentsize, phnum = struct.unpack_from("<HH", elf, 0x2a)
    for i in range(phnum):
        off = phoff + i * phentsize
        if is64:
            ptype, _, poff, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", elf, off)
        else:
            ptype, poff, vaddr, _, filesz = struct.unpack_from("<IIIII", elf, off)
        if ptype == 1 and vaddr <= addr and addr + count <= vaddr + filesz:
            return elf[poff + addr - vaddr:poff + addr - vaddr + count]
    raise AssertionError("%#x is in no loaded segment of %s" % (addr, CASES[name].image))


def record():
    if not kvm_available():
        sys.exit("recording needs /dev/kvm (the dumps must come from hardware)")
    os.makedirs(DATA_DIR, exist_ok=True)
    for name in CASES:
        text, _ = run_case(name, "kvm")
        with open(expected_path(name), "w") as f:
            f.write(text)
        print(expected_path(name))


if __name__ == "__main__":
    record()
