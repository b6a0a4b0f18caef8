"""Helpers for vireo's whole-process tests.

Paths come from VIREO_BUILD (tests/run.py sets it; default build/ in the
source tree).  `run_vireo` runs the VMM to completion; `Vm` starts it in the
background, collects its serial output and waits for patterns in it; with
qmp=True it also gets a QMP socket, and Vm.qmp() connects to it (qmp.py).
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("VIREO_BUILD", os.path.join(ROOT, "build")))
VIREO = os.path.join(BUILD, "vireo")
GUEST_DIR = os.path.join(BUILD, "tests", "guests")
LINUX_BUILD_SH = os.path.join(ROOT, "tests", "guests", "linux", "build.sh")
LINUX_DIR = os.path.join(BUILD, "guests", "linux")

# isa-debug-exit at 0xf4: the test guests write 0x10 for a pass and 0x11
# for a failure, and the VMM exits with (value << 1) | 1.
DEBUG_EXIT = ["-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
EXIT_PASS = (0x10 << 1) | 1
EXIT_FAIL = (0x11 << 1) | 1


def kvm_available():
    """True when /dev/kvm opens read-write (what an accelerator needs)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


requires_kvm = unittest.skipUnless(kvm_available(), "no /dev/kvm on this host")


def vireo_binary():
    if not os.access(VIREO, os.X_OK):
        raise AssertionError("%s is missing: run `make tests` first" % VIREO)
    return VIREO


def guest(name):
    """Path of a test guest built by `make guests` (e.g. "hello.mb.elf")."""
    path = os.path.join(GUEST_DIR, name)
    if not os.path.isfile(path):
        raise AssertionError("%s is missing: run `make guests` first" % path)
    return path


def machine_args(kernel, mem="128M", smp=1, append=None, initrd=None,
                 accel="kvm", extra=()):
    """A vireo command line in QEMU spelling, without -serial."""
    args = ["-accel", accel, "-m", str(mem), "-smp", str(smp), "-nographic",
            "-kernel", kernel]
    if initrd is not None:
        args += ["-initrd", initrd]
    if append is not None:
        args += ["-append", append]
    return args + ["-no-reboot"] + DEBUG_EXIT + list(extra)


class Result:
    def __init__(self, status, stdout, stderr):
        self.status = status
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        return "status %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.status, self.stdout[-4000:], self.stderr[-4000:])


def run_vireo(args, timeout=60, env=None, cwd=None, uid=None):
    """Run vireo to completion; the timeout kills it and fails the test.

    uid: run as that user, with the same gid and no supplementary groups
    (so membership of the kvm group does not come along); needs root.  It
    runs a copy of the binary from a directory anyone may enter, as the
    checkout may sit in one that user cannot (a 0700 mktemp -d).
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    creds = {}
    binary = vireo_binary()
    if uid is not None:
        creds = dict(user=uid, group=uid, extra_groups=[])
        bindir = tempfile.mkdtemp(prefix="vireo-bin-")
        os.chmod(bindir, 0o755)
        binary = shutil.copy(binary, bindir)
        os.chmod(binary, 0o755)
    try:
        return _run(binary, args, timeout, full_env, cwd, creds)
    finally:
        if uid is not None:
            shutil.rmtree(bindir, True)


def _run(binary, args, timeout, full_env, cwd, creds):
    p = subprocess.Popen([binary] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=full_env, cwd=cwd, start_new_session=True, **creds)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError("vireo %s: no exit after %ds\n%r" % (
            " ".join(args), timeout,
            Result(None, out.decode(errors="replace"), err.decode(errors="replace"))))
    return Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on, for vireo to bind.

    Not from the kernel's ephemeral range (bind to port 0): any process's
    outgoing connection may take such a port before vireo binds it.  A
    random port below that range is taken only by another test doing the
    same.
    """
    lo = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            hi = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        hi = 32768
    for _ in range(100):
        port = random.randrange(lo, max(hi, lo + 1000))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port in %d-%d" % (lo, hi))


class Vm:
    """vireo running in the background.

    serial="pipe": COM1 on vireo's stdout (-serial stdio), read by a thread;
    serial="file": COM1 in a file (-serial file:PATH) that is polled.
    Use as a context manager: leaving it kills and reaps the process and
    removes its temporary directory.
    """

    def __init__(self, args, serial="pipe", env=None, qmp=False):
        binary = vireo_binary()
        if serial not in ("pipe", "file"):
            raise ValueError("serial must be 'pipe' or 'file'")
        self.tmpdir = tempfile.mkdtemp(prefix="vireo-test-")
        self.qmp_path = os.path.join(self.tmpdir, "qmp.sock")
        if qmp:
            args = list(args) + ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.serial_path = None
        self._buf = []
        self._lock = threading.Lock()
        self._reader = None
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._stderr = open(os.path.join(self.tmpdir, "stderr"), "w+b")
        if serial == "file":
            self.serial_path = os.path.join(self.tmpdir, "serial.out")
            args = list(args) + ["-serial", "file:" + self.serial_path]
            stdout = open(os.path.join(self.tmpdir, "stdout"), "w+b")
        else:
            args = list(args) + ["-serial", "stdio"]
            stdout = subprocess.PIPE
        self.args = args
        self.proc = subprocess.Popen([binary] + args, stdin=subprocess.DEVNULL,
                                     stdout=stdout, stderr=self._stderr,
                                     env=full_env, start_new_session=True)
        if serial == "pipe":
            self._reader = threading.Thread(target=self._read_pipe, daemon=True)
            self._reader.start()
        else:
            stdout.close()

    @property
    def pid(self):
        return self.proc.pid

    def _read_pipe(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            with self._lock:
                self._buf.append(chunk)

    def output(self):
        """Serial output so far, decoded, with CR LF folded to LF."""
        if self.serial_path is not None:
            try:
                with open(self.serial_path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = b""
        else:
            with self._lock:
                data = b"".join(self._buf)
        return data.decode(errors="replace").replace("\r\n", "\n")

    def stderr(self):
        self._stderr.flush()
        with open(self._stderr.name, "rb") as f:
            return f.read().decode(errors="replace")

    def _describe(self):
        return "vireo %s\n--- serial ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.args), self.output()[-4000:], self.stderr()[-4000:])

    def wait_for(self, pattern, timeout=30):
        """Wait until the serial output matches the regex; returns the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                if self._reader:
                    self._reader.join(5)
                m = rx.search(self.output())
                if m:
                    return m
                raise AssertionError("vireo exited with status %s before %r appeared\n%s" % (
                    self.proc.returncode, pattern, self._describe()))
            if time.monotonic() > deadline:
                raise AssertionError("%r did not appear within %ds\n%s" % (
                    pattern, timeout, self._describe()))
            time.sleep(0.05)

    def wait(self, timeout=30):
        """Wait for vireo to exit by itself; returns its status."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("vireo did not exit within %ds\n%s" % (
                timeout, self._describe()))
        if self._reader:
            self._reader.join(5)
        return status

    def qmp(self, negotiate=True):
        """A new QMP connection to this VM (started with qmp=True)."""
        from tests.integration.qmp import QMP
        return QMP(self.qmp_path, negotiate=negotiate)

    def thread_names(self):
        """comm of every thread of the vireo process."""
        names = []
        task_dir = "/proc/%d/task" % self.pid
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "comm")) as f:
                    names.append(f.read().rstrip("\n"))
            except FileNotFoundError:
                pass		# the thread ended meanwhile
        return names

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        if self._reader:
            self._reader.join(5)

    def close(self):
        self.kill()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_linux_guest = None


def image(path, size=1 << 20, fill=b"\0"):
    """A raw disk (or ISO) image of size bytes of fill at path; returns path."""
    with open(path, "wb") as f:
        f.write(fill * size)
    return path


def linux_guest():
    """(vmlinuz, initrd.gz) of the Linux test guest, built once and cached.

    Skips the test when the guest cannot be built here (no package list,
    no network to Debian's archive).
    """
    global _linux_guest
    if _linux_guest is None:
        p = subprocess.run(["bash", LINUX_BUILD_SH, LINUX_DIR], capture_output=True,
                           text=True, timeout=900)
        if p.returncode != 0:
            raise unittest.SkipTest("cannot build the Linux guest: %s" %
                                    (p.stderr.strip().splitlines() or ["?"])[-1])
        _linux_guest = (os.path.join(LINUX_DIR, "vmlinuz"),
                        os.path.join(LINUX_DIR, "initrd.gz"))
    return _linux_guest


def e820_entries(text):
    """[(base, size, type)] from the memmap guest's output."""
    return [(int(b, 16), int(s, 16), int(t)) for b, s, t in
            re.findall(r"^e820 base=0x([0-9a-f]+) size=0x([0-9a-f]+) type=(\d+)$",
                       text, re.M)]
