"""Migration of guests running under -accel tcg: the counter guest live over
TCP and to a mapped-ram file and back (the count continues without a gap
or a repeat, every checksum matches the model of its pages), a guest in
the middle of a LAPIC periodic timer run and two vCPUs with an AP waiting
for SIPI, the Linux guest writing a virtio-blk disk while it migrates
(its shell answers on the destination, the disk holds what it wrote), and
a stream of the other accelerator refused with a clear error."""
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest

from tests.integration.migtest import (assert_handed_over, check_counter, counter_vm, last_count, wait_count,
                                       wait_migration)
from tests.integration.vireotest import (EXIT_PASS, Vm, free_port, guest, linux_guest, machine_args,
                                         requires_kvm)

RAM = 128 << 20


def tcg_vm(incoming=None, **kw):
    return counter_vm(incoming=incoming, accel="tcg", **kw)


class TcgMigration(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migtcg-",
                                    dir=os.environ.get("TMPDIR", "/var/tmp"))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_tcp_live(self):
        uri = "tcp:127.0.0.1:%d" % free_port()
        with tcg_vm() as src, tcg_vm(incoming=uri) as dst:
            wait_count(src, 30)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": uri})
                info = wait_migration(qs)
                self.assertEqual(info["status"], "completed", info)
                self.assertEqual(info["ram"]["total"], RAM)
                self.assertEqual(info["ram"]["remaining"], 0)
                self.assertIn("downtime", info)
                # The TSC went on from where it was: the guest's rdtsc
                # busy-wait between steps does not stall, and it counts on.
                handed = assert_handed_over(self, src, dst, qs, qd)
            last = check_counter(self, src.output() + dst.output(), min_count=handed + 40)
            self.assertGreater(last, handed)

    def test_mapped_ram_file(self):
        path = os.path.join(self.dir, "vm.state")
        with tcg_vm() as src, src.qmp() as q:
            wait_count(src, 15)
            q.ok("migrate-set-capabilities", {"capabilities": [
                {"capability": "mapped-ram", "state": True}]})
            q.ok("migrate", {"uri": "file:" + path})
            info = wait_migration(q)
            self.assertEqual(info["status"], "completed", info)
            self.assertFalse(q.ok("query-status")["running"])
            out, handed = src.output(), last_count(src)
        self.assertLessEqual(os.path.getsize(path), RAM + (4 << 20))
        with tcg_vm(incoming="file:" + path) as dst, dst.qmp() as q:
            self.assertEqual(wait_migration(q)["status"], "completed")
            wait_count(dst, handed + 10)
            check_counter(self, out + dst.output(), min_count=handed + 10)

    def test_bad_cpu_field_refused(self):
        """A stream whose tcg-cpu section sets a CR4 bit TCG does not have
        (SMEP) is refused naming the field; the guest never starts."""
        path = os.path.join(self.dir, "vm.state")
        with tcg_vm() as src, src.qmp() as q:
            wait_count(src, 5)
            q.ok("migrate", {"uri": "file:" + path})
            self.assertEqual(wait_migration(q)["status"], "completed")
        with open(path, "r+b") as f:
            data = f.read()
            key = b"\x03cr4" + (8).to_bytes(4, "little")
            off = data.index(key) + len(key)
            self.assertEqual(data.count(key), 1)
            f.seek(off)
            f.write((int.from_bytes(data[off:off + 8], "little") | 1 << 20).to_bytes(8, "little"))
        with tcg_vm(extra=["-incoming", "file:" + path]) as dst:
            self.assertEqual(dst.wait(60), 1)
            err = dst.stderr()
            self.assertIn("cr4", err)
            self.assertIn("bits this CPU does not have", err)
            self.assertEqual(dst.output(), "")

    def test_smp_ap_waiting_for_sipi(self):
        """Two vCPUs; the AP never gets a SIPI from the counter guest, so it
        must still wait for one on the destination, not run from garbage."""
        path = os.path.join(self.dir, "mig.sock")
        with tcg_vm(smp=2) as src, tcg_vm(incoming="unix:" + path, smp=2) as dst:
            wait_count(src, 10)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": "unix:" + path})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertEqual(len(qd.ok("query-cpus-fast")), 2)
                handed = last_count(src)
                wait_count(dst, handed + 10)
            check_counter(self, src.output() + dst.output(), min_count=handed + 10)

    def test_lapic_timer_mid_run(self):
        """A guest taking periodic LAPIC timer interrupts through its IDT
        moves in the middle of its run: the timer, its vector and the IDT
        come along and it finishes its ticks on the destination."""
        path = os.path.join(self.dir, "mig.sock")
        ticks = 3000

        def timer_vm(extra=()):
            return Vm(machine_args(guest("timer.mb.elf"), accel="tcg",
                                   append="ticks=%d" % ticks, extra=list(extra)),
                      serial="file", qmp=True)

        with timer_vm() as src, timer_vm(["-incoming", "unix:" + path]) as dst:
            with dst.qmp() as qd:
                qd.ok("query-status")
            time.sleep(0.5)
            with src.qmp() as qs:
                qs.ok("migrate", {"uri": "unix:" + path})
                info = wait_migration(qs)
            if "timer ticks=" in src.output():
                self.skipTest("the guest finished before the migration did")
            self.assertEqual(info["status"], "completed", info)
            self.assertEqual(dst.wait(120), EXIT_PASS, dst._describe())
            self.assertIn("timer ticks=%d" % ticks, dst.output())
            self.assertNotIn("timer ticks=", src.output())


class AcceleratorMismatch(unittest.TestCase):
    """A stream carries its accelerator's own sections ("kvm-cpu",
    "tcg-cpu"): a destination of the other kind refuses it by name."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migtcg-",
                                    dir=os.environ.get("TMPDIR", "/var/tmp"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "vm.state")

    def cross(self, src_accel, dst_accel):
        with counter_vm(accel=src_accel) as src, src.qmp() as q:
            wait_count(src, 5)
            q.ok("migrate", {"uri": "file:" + self.path})
            self.assertEqual(wait_migration(q)["status"], "completed")
        with counter_vm(accel=dst_accel, extra=["-incoming", "file:" + self.path]) as dst:
            self.assertEqual(dst.wait(60), 1)
            err = dst.stderr()
            self.assertIn("'%s-vm'" % src_accel, err)
            self.assertIn("runs under %s" % dst_accel, err)
            self.assertEqual(dst.output(), "")

    @requires_kvm
    def test_kvm_stream_into_tcg(self):
        self.cross("kvm", "tcg")

    @requires_kvm
    def test_tcg_stream_into_kvm(self):
        self.cross("tcg", "kvm")


class SerialSocket:
    """COM1 on a unix socket: what the guest prints, and a way to type."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.buf += chunk

    def text(self):
        with self.lock:
            return self.buf.decode(errors="replace").replace("\r\n", "\n")

    def type(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def wait_for(self, pattern, vm, timeout=120):
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.text())
            if m:
                return m
            if vm.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("%r did not appear\n--- serial ---\n%s\n%s" % (
                    pattern, self.text()[-3000:], vm._describe()))
            time.sleep(0.1)

    def close(self):
        self.sock.close()


BLOCK = 4096

# Block i of the disk gets "blk <i>" lines: each iteration writes one whole
# 4 KiB block (no read-modify-write through the page cache), syncs it and
# reports, until /tmp/stop appears.
LOOP = ("(i=0; while [ ! -e /tmp/stop ]; do "
        "yes \"blk $i\" | head -c %d | dd of=/dev/vda bs=%d seek=$i conv=notrunc,fsync "
        "2>/dev/null; echo \"PROG $i\"; i=$((i+1)); done; echo \"LOOP-DONE $i\") &"
        % (BLOCK, BLOCK))


# A line may start after the shell's prompt ("~ # PROG 0").
PROG = r"PROG %d$"
PROGS = r"(?m)PROG (\d+)$"


def block_of(i):
    line = ("blk %d\n" % i).encode()
    return (line * (BLOCK // len(line) + 1))[:BLOCK]


class LinuxTcgMigration(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migtcg-",
                                    dir=os.environ.get("TMPDIR", "/var/tmp"))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def linux_vm(self, disk, console, incoming=None):
        kernel, initrd = linux_guest()
        args = ["-accel", "tcg", "-m", "512M", "-smp", "1", "-nographic",
                "-kernel", kernel, "-initrd", initrd,
                "-append", "console=ttyS0 quiet vireo.shell=1",
                "-drive", "file=%s,format=raw,if=virtio" % disk,
                "-serial", "unix:%s,server=on,wait=off" % console]
        if incoming:
            args += ["-incoming", incoming]
        # COM1 is the socket; the harness's own -serial becomes COM2.
        return Vm(args, serial="pipe", qmp=True)

    def test_linux_disk_writer(self):
        disk = os.path.join(self.dir, "vd.raw")
        with open(disk, "wb") as f:
            f.truncate(16 << 20)
        uri = "unix:" + os.path.join(self.dir, "mig.sock")
        src_con = os.path.join(self.dir, "src.con")
        dst_con = os.path.join(self.dir, "dst.con")
        with self.linux_vm(disk, src_con) as src:
            s = SerialSocket(src_con)
            self.addCleanup(s.close)
            s.wait_for(r"VIREO-SHELL", src, timeout=600)
            s.type(LOOP)
            s.wait_for(PROG % 5, src)
            with self.linux_vm(disk, dst_con, incoming=uri) as dst:
                d = SerialSocket(dst_con)
                self.addCleanup(d.close)
                with src.qmp() as qs, dst.qmp() as qd:
                    qs.ok("migrate", {"uri": uri})
                    info = wait_migration(qs, timeout=300)
                    self.assertEqual(info["status"], "completed", (info, dst.stderr()))
                    self.assertEqual(wait_migration(qd)["status"], "completed")
                    self.assertTrue(qd.ok("query-status")["running"])
                handed = max(int(n) for n in re.findall(PROGS, s.text()))
                # The writer goes on where it was on the source.
                d.wait_for(PROG % (handed + 3), dst)
                # The shell answers what is typed on the destination's console.
                d.type("echo ANSWER-$((6 * 7))")
                d.wait_for(r"^ANSWER-42$", dst)
                d.type("touch /tmp/stop")
                n = int(d.wait_for(r"LOOP-DONE (\d+)$", dst).group(1))
                want = hashlib.md5(b"".join(block_of(i) for i in range(n))).hexdigest()
                d.type("echo SUM-$(dd if=/dev/vda bs=%d count=%d 2>/dev/null | md5sum)"
                       % (BLOCK, n))
                got = d.wait_for(r"^SUM-([0-9a-f]{32})", dst).group(1)
                self.assertEqual(got, want, "the guest reads back other data than it wrote")
                # Every PROG line once, in order, across the two hosts.
                progs = [int(x) for x in re.findall(PROGS, s.text() + d.text())]
                self.assertEqual(progs, list(range(n)))
        # What reached the image is what the guest wrote, block by block.
        with open(disk, "rb") as f:
            data = f.read(n * BLOCK)
        for i in range(n):
            self.assertEqual(data[i * BLOCK:(i + 1) * BLOCK], block_of(i),
                             "disk block %d differs" % i)


if __name__ == "__main__":
    unittest.main()
