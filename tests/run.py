#!/usr/bin/env python3
"""Run every vireo test and print one summary line.

Unit tests are GTest binaries in BUILD/tests/unit (run with --tap);
integration tests are Python unittest modules in tests/integration.  The
last line is "N passed, N failed, N skipped", as CI expects.

    python3 tests/run.py [--build DIR] [-k SUBSTRING] [--timeout S]

Tests start vireo (and QEMU, fio, ...) in sessions of their own, so that a
test can kill a VM with its children; a test module that times out or is
killed would leave them running.  Every process a run starts inherits
VIREO_TEST_RUN=<token> in its environment; after each test file, and when
the run itself is ended by SIGTERM, SIGINT or SIGHUP, whatever still
carries the token is killed and named.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_VAR = "VIREO_TEST_RUN"


def kill_strays(token, what):
    """SIGKILL every process whose environment holds RUN_VAR=token.

    A process caught between fork and exec (one its dying parent was just
    starting) may show no environment for a moment, so the scan runs again
    until one finds nothing, at least twice.
    """
    mark = ("%s=%s" % (RUN_VAR, token)).encode()
    killed = []
    for rnd in range(10):
        found = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
                with open("/proc/%s/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                continue		# gone, or not ours to read
            if mark in env:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append("%s %s" % (pid, comm))
                    found = True
                except ProcessLookupError:
                    pass
        if rnd and not found:
            break
        time.sleep(0.05)
    if killed:
        print("     killed %d process(es) left by %s: %s" % (len(killed), what, ", ".join(killed)))


def run_unit(path, counts, timeout):
    name = os.path.relpath(path, ROOT)
    try:
        p = subprocess.run([path, "--tap"], capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT)
        out = p.stdout + p.stderr
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += "\nTIMEOUT after %ds" % timeout
        rc = -1
    passed = failed = skipped = 0
    for line in out.splitlines():
        m = re.match(r"^(not ok|ok) \d+ (.*)", line)
        if not m:
            continue
        if m.group(1) == "not ok":
            failed += 1
            print("FAIL %s: %s" % (name, m.group(2)))
        elif "# SKIP" in m.group(2):
            skipped += 1
            print("SKIP %s: %s" % (name, m.group(2)))
        else:
            passed += 1
    if rc != 0 and failed == 0:
        failed += 1
        print("FAIL %s: exit status %d" % (name, rc))
    if failed:
        print("---- output of %s ----\n%s\n----" % (name, out[-6000:]))
    return passed, failed, skipped


def run_integration(path, counts, timeout):
    rel = os.path.relpath(path, ROOT)
    env = dict(os.environ)
    if rel.startswith(".."):
        # A module from --dir: imported by its own name, from its folder.
        mod = os.path.splitext(os.path.basename(path))[0]
        env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(path), ROOT])
    else:
        mod = os.path.splitext(rel)[0].replace("/", ".")
    t0 = time.time()
    try:
        p = subprocess.run([sys.executable, "-m", "unittest", "-v", mod],
                           capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                           env=env)
        out = p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        print("FAIL %s: TIMEOUT after %ds\n%s" % (mod, timeout, err[-6000:]))
        return 0, 1, 0
    ran = re.search(r"^Ran (\d+) tests?", out, re.M)
    total = int(ran.group(1)) if ran else 0
    failed = skipped = 0
    m = re.search(r"^FAILED \((.*)\)", out, re.M)
    if m:
        for kv in m.group(1).split(","):
            k, v = kv.strip().split("=")
            if k in ("failures", "errors", "unexpected successes"):
                failed += int(v)
            elif k == "skipped":
                skipped += int(v)
    m = re.search(r"^OK \((.*)\)", out, re.M)
    if m:
        s = re.search(r"skipped=(\d+)", m.group(1))
        skipped = int(s.group(1)) if s else 0
    if not ran:
        failed = max(failed, 1)
    for line in out.splitlines():
        if re.search(r"\.\.\. (FAIL|ERROR)$", line):
            print("FAIL %s: %s" % (mod, line))
        elif re.search(r"\.\.\. skipped", line):
            print("SKIP %s: %s" % (mod, line))
    if failed:
        print("---- output of %s ----\n%s\n----" % (mod, out[-8000:]))
    passed = total - failed - skipped
    print("     %s: %d tests in %.1fs" % (mod, total, time.time() - t0))
    return passed, failed, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", default="", help="only tests whose file name contains this")
    ap.add_argument("--timeout", type=int, default=900,
                    help="seconds a test file may run before it is killed")
    ap.add_argument("--dir", default=os.path.join(ROOT, "tests", "integration"),
                    help="where the integration modules are (the runner's own test)")
    a = ap.parse_args()
    build = os.path.abspath(os.path.join(ROOT, a.build))
    os.environ["VIREO_BUILD"] = build
    token = "%d.%d" % (os.getpid(), time.time_ns())
    os.environ[RUN_VAR] = token

    def ended(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, ended)
    try:
        total = run_all(a, build, token)
    finally:
        # On a signal, subprocess.run has killed the test file's process.
        kill_strays(token, "the run")
    # Last, as CI reads it.
    print("%d passed, %d failed, %d skipped" % tuple(total))
    return 1 if total[1] else 0


def run_all(a, build, token):
    total = [0, 0, 0]
    unit_dir = os.path.join(build, "tests", "unit")
    # One binary per tests/unit/test_*.c: a binary whose source is gone (a
    # renamed or removed test, still in an old build/) is not run.
    src_dir = os.path.join(ROOT, "tests", "unit")
    units = sorted(os.path.join(unit_dir, f[:-2]) for f in os.listdir(src_dir)
                   if f.startswith("test_") and f.endswith(".c")
                   and os.path.exists(os.path.join(unit_dir, f[:-2])))
    integ_dir = os.path.abspath(a.dir)
    integs = sorted(os.path.join(integ_dir, f) for f in os.listdir(integ_dir)
                    if f.startswith("test_") and f.endswith(".py"))
    for path in units:
        if a.k in os.path.basename(path):
            r = run_unit(path, total, a.timeout)
            kill_strays(token, os.path.basename(path))
            total = [x + y for x, y in zip(total, r)]
    for path in integs:
        if a.k in os.path.basename(path):
            r = run_integration(path, total, a.timeout)
            kill_strays(token, os.path.basename(path))
            total = [x + y for x, y in zip(total, r)]
    return total


if __name__ == "__main__":
    sys.exit(main())
