#!/usr/bin/env python3
"""vireo's translator next to QEMU's, both with -accel tcg, on the same guests.

Run by hand (not part of `make check`), after `make tests`:

    python3 tests/bench/tcg_bench.py [--runs N] [--iters N] [--skip-linux]
                                     [--vireo-accel tcg,jit=off]

Measures, for each VMM:
  linux boot   wall time from process start to the "VIREO-INIT uptime=<s>"
               line of the Linux test guest (tests/guests/linux: Debian's
               cloud kernel, busybox initramfs; same vmlinuz, initrd.gz and
               command line for both, 512 MiB, 1 vCPU), and the guest's own
               uptime at that point, and the CPU time (user + system) the
               VMM's process used until then; medians of N runs
  cpu loop     iterations per second of the spin guest (tests/guests/spin.c:
               multiply, add, rotate, decrement, test, two branches per
               iteration), from (wall time of iters=N - wall time of
               iters=0) / N, so boot and exit costs cancel; median of N runs

and prints each pair with the ratio vireo/qemu (for times: above 1 means
vireo is slower; for iterations/s: below 1 means vireo is slower).  QEMU
runs with -nodefaults -display none -serial stdio -monitor none, so both
get a serial port and little else; QEMU's boot time includes its firmware
(SeaBIOS), which vireo does not have.  The runs of the two VMMs alternate,
so a noisy neighbour hits both.
"""
import argparse
import base64
import os
import statistics
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.integration.vireotest import (  # noqa: E402
    DEBUG_EXIT, EXIT_PASS, VIREO, guest, linux_guest)

LINUX_APPEND = "console=ttyS0 quiet vireo.cmd=" + base64.b64encode(b"true").decode()
MARKER = b"VIREO-INIT uptime="


VIREO_ACCEL = "tcg"


def vmm_cmd(vmm, binary, kernel, append, mem="128M", initrd=None):
    if vmm == "vireo":
        args = [binary, "-accel", VIREO_ACCEL, "-nographic", "-serial", "stdio"]
    else:
        args = [binary, "-accel", "tcg", "-nodefaults", "-display", "none",
                "-serial", "stdio", "-monitor", "none"]
    args += ["-m", mem, "-smp", "1", "-kernel", kernel, "-no-reboot"]
    if initrd:
        args += ["-initrd", initrd]
    if append:
        args += ["-append", append]
    return args + DEBUG_EXIT


def time_to_marker(cmd, timeout):
    """(seconds from start to the marker line, guest uptime it printed,
    CPU seconds the VMM used until then)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    seen = None
    try:
        for line in p.stdout:
            if MARKER in line:
                seen = time.monotonic() - t0
                uptime = float(line.split(MARKER)[1].split()[0])
                break
            if time.monotonic() - t0 > timeout:
                break
    finally:
        p.kill()
        # its user + system time, for a host where waiting for a CPU
        # makes up much of the wall time
        ru = os.wait4(p.pid, 0)[2]
        p.stdout.close()
    if seen is None:
        sys.exit("%s: no %r within %ds" % (" ".join(cmd), MARKER.decode(), timeout))
    return seen, uptime, ru.ru_utime + ru.ru_stime


def run_spin(cmd, timeout):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    wall = time.monotonic() - t0
    if p.returncode != EXIT_PASS or b"spin iters=" not in p.stdout:
        sys.exit("%s: status %d\n%s" % (" ".join(cmd), p.returncode,
                                        p.stdout.decode(errors="replace")[-2000:]))
    return wall


def bench(vmms, runs, iters, linux):
    res = {v: {"boot": [], "uptime": [], "cpu": [], "ips": []} for v in vmms}
    spin = guest("spin.mb.elf")
    for _ in range(runs):
        for vmm, binary in vmms.items():
            if linux:
                kernel, initrd = linux
                wall, up, cpu = time_to_marker(vmm_cmd(vmm, binary, kernel, LINUX_APPEND,
                                                       mem="512M", initrd=initrd), 900)
                res[vmm]["boot"].append(wall)
                res[vmm]["uptime"].append(up)
                res[vmm]["cpu"].append(cpu)
            full = run_spin(vmm_cmd(vmm, binary, spin, "iters=%d" % iters), 1800)
            empty = run_spin(vmm_cmd(vmm, binary, spin, "iters=0"), 120)
            res[vmm]["ips"].append(iters / max(full - empty, 1e-6))
    return {v: {k: statistics.median(x) if x else None for k, x in r.items()}
            for v, r in res.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iters", type=int, default=200000000,
                    help="iterations of the spin guest's loop")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--skip-linux", action="store_true")
    ap.add_argument("--vireo-accel", default="tcg",
                    help="vireo's -accel, e.g. tcg,jit=off for the interpreter")
    a = ap.parse_args()
    global VIREO_ACCEL
    VIREO_ACCEL = a.vireo_accel
    if not os.access(VIREO, os.X_OK):
        sys.exit("%s is missing: run `make tests` first" % VIREO)
    linux = None
    if not a.skip_linux:
        try:
            linux = linux_guest()
        except unittest.SkipTest as e:
            sys.exit("%s (or use --skip-linux)" % e)
    r = bench({"vireo": VIREO, "qemu": a.qemu}, a.runs, a.iters, linux)
    v, q = r["vireo"], r["qemu"]
    print("vireo (-accel %s) vs %s (-accel tcg), median of %d runs" % (
        a.vireo_accel, a.qemu, a.runs))
    print("%-28s %14s %14s %12s" % ("", "vireo", "qemu", "vireo/qemu"))
    if linux:
        print("%-28s %14.2f %14.2f %12.2f" % ("linux to /init, wall s", v["boot"],
                                              q["boot"], v["boot"] / q["boot"]))
        print("%-28s %14.2f %14.2f %12.2f" % ("linux to /init, uptime s", v["uptime"],
                                              q["uptime"], v["uptime"] / q["uptime"]))
        print("%-28s %14.2f %14.2f %12.2f" % ("linux to /init, CPU s", v["cpu"],
                                              q["cpu"], v["cpu"] / q["cpu"]))
    print("%-28s %14.3g %14.3g %12.3f" % ("cpu loop, iterations/s", v["ips"],
                                          q["ips"], v["ips"] / q["ips"]))


if __name__ == "__main__":
    main()
