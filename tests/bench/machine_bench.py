#!/usr/bin/env python3
"""vireo next to qemu-system-x86_64, both on KVM, with the same guests.

Run by hand (not part of `make check`), after `make tests`:

    python3 tests/bench/machine_bench.py [--runs N] [--io-count N]

Measures, for each VMM:
  boot+exit    whole-process wall time of the trivial multiboot guest
               (hello.mb.elf), median of N runs
  pio exit     cost of one port-I/O exit: the ioloop guest does --io-count
               `out`s to an unused port; reported as the guest's own rdtsc
               cycles per `out` and as (wall time - wall time of an n=0
               run) / count, medians of N runs
  RSS          VmRSS and VmHWM of the VMM process with a 128 MiB guest that
               has booted and sits halted (smp.mb.elf "cpus=1 wait")

and prints each pair with the ratio vireo/qemu.  QEMU runs with
-nodefaults -display none -serial stdio -monitor none (no VGA, no NIC), so
both processes get a serial port and isa-debug-exit and little else; QEMU's
time still includes its firmware (SeaBIOS), which vireo does not have.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.integration.vireotest import (  # noqa: E402
    DEBUG_EXIT, EXIT_PASS, VIREO, guest, kvm_available)


def vmm_cmd(vmm, binary, kernel, append, mem="128M", smp=1):
    if vmm == "vireo":
        args = [binary, "-accel", "kvm", "-nographic", "-serial", "stdio"]
    else:
        args = [binary, "-accel", "kvm", "-nodefaults", "-display", "none",
                "-serial", "stdio", "-monitor", "none"]
    args += ["-m", mem, "-smp", str(smp), "-kernel", kernel, "-no-reboot"]
    if append:
        args += ["-append", append]
    return args + DEBUG_EXIT


def run_once(cmd, timeout):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    wall = time.monotonic() - t0
    out = p.stdout.decode(errors="replace")
    if p.returncode != EXIT_PASS:
        sys.exit("%s: status %d\n%s\n%s" % (" ".join(cmd), p.returncode, out[-2000:],
                                             p.stderr.decode(errors="replace")[-2000:]))
    return wall, out


def bench_boot(vmm, binary, runs):
    cmd = vmm_cmd(vmm, binary, guest("hello.mb.elf"), None)
    return statistics.median(run_once(cmd, 120)[0] for _ in range(runs))


def bench_pio(vmm, binary, runs, count):
    kernel = guest("ioloop.mb.elf")
    cycles, walls, empty = [], [], []
    for _ in range(runs):
        wall, out = run_once(vmm_cmd(vmm, binary, kernel, "n=%d" % count), 600)
        m = re.search(r"ioloop n=\d+ port=0x[0-9a-f]+ cycles=(\d+)", out)
        if not m:
            sys.exit("%s: no ioloop line in\n%s" % (vmm, out[-2000:]))
        cycles.append(int(m.group(1)) / count)
        walls.append(wall)
        empty.append(run_once(vmm_cmd(vmm, binary, kernel, "n=0"), 120)[0])
    per_exit_ns = (statistics.median(walls) - statistics.median(empty)) / count * 1e9
    return statistics.median(cycles), per_exit_ns


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s in /proc/%d/status" % (field, pid))


def bench_rss(vmm, binary):
    cmd = vmm_cmd(vmm, binary, guest("smp.mb.elf"), "cpus=1 wait")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        out = b""
        deadline = time.monotonic() + 120
        while b"cpus up, waiting" not in out:
            chunk = p.stdout.read1(4096)
            if not chunk or time.monotonic() > deadline:
                sys.exit("%s: the smp guest did not reach 'waiting':\n%s" %
                         (vmm, out.decode(errors="replace")[-2000:]))
            out += chunk
        time.sleep(0.5)		# let the VMM settle after the last output
        return status_kib(p.pid, "VmRSS"), status_kib(p.pid, "VmHWM")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def row(name, unit, v, q):
    ratio = "%.2f" % (v / q) if q else "-"
    print("%-28s %14.2f %14.2f %8s  %s" % (name, v, q, ratio, unit))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--io-count", type=int, default=200000)
    ap.add_argument("--vireo", default=VIREO)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    a = ap.parse_args()
    if not kvm_available():
        sys.exit("no /dev/kvm on this host")
    vmms = (("vireo", a.vireo), ("qemu", a.qemu))

    boot = {v: bench_boot(v, b, a.runs) for v, b in vmms}
    pio = {v: bench_pio(v, b, a.runs, a.io_count) for v, b in vmms}
    rss = {v: bench_rss(v, b) for v, b in vmms}

    print("%-28s %14s %14s %8s" % ("", "vireo", "qemu", "ratio"))
    row("boot+exit wall time", "ms (median of %d)" % a.runs,
        boot["vireo"] * 1e3, boot["qemu"] * 1e3)
    row("pio exit, guest rdtsc", "cycles per out", pio["vireo"][0], pio["qemu"][0])
    row("pio exit, wall time", "ns per out (n=%d minus n=0)" % a.io_count,
        pio["vireo"][1], pio["qemu"][1])
    row("VmRSS, 128 MiB guest", "MiB", rss["vireo"][0] / 1024, rss["qemu"][0] / 1024)
    row("VmHWM, 128 MiB guest", "MiB", rss["vireo"][1] / 1024, rss["qemu"][1] / 1024)


if __name__ == "__main__":
    main()
