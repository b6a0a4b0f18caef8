"""Migration with a virtio-blk disk on storage both ends open (a file):
the virtio-pci and PCI state travel, the source flushes at switch-over,
and the disk reads back the same on the destination.

The image is locked by whichever vireo has it active (QEMU-compatible
locking in block/).  A destination started with -incoming opens its drives
inactive; at switch-over the source flushes, writes its metadata back and
lets go of the images, and the destination takes them (re-reading every
table) only once the whole stream is in.  The first tests move the VM
through a state file, the SharedStorage ones live over a unix socket with
both processes holding the same qcow2 image."""
import fcntl
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

from tests.integration import test_werror
from tests.integration.migtest import (check_counter, counter_vm, last_count, wait_count,
                                       wait_migration)
from tests.integration.vireotest import EXIT_FAIL, EXIT_PASS, Vm, guest, machine_args, requires_kvm

SECTORS = 64


def pattern(sectors):
    return bytes((s * 31 + i * 7 + 1) & 0xff for s in range(sectors) for i in range(512))


@requires_kvm
class DiskMigration(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migdisk-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.disk = os.path.join(self.dir, "disk.raw")
        with open(self.disk, "wb") as f:
            f.write(os.urandom(1 << 20))
            f.truncate(4 << 20)

    def drive(self):
        return ["-drive", "file=%s,format=raw,if=none,id=d0" % self.disk,
                "-device", "virtio-blk-pci,drive=d0,serial=MIG-1"]

    def digest(self):
        with open(self.disk, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def save_and_quit(self, args, paused=False):
        state = os.path.join(self.dir, "vm.state")
        with Vm(args, serial="file", qmp=True) as src:
            with src.qmp() as qs:
                if paused:
                    qs.ok("stop")
                else:
                    wait_count(src, 10)
                qs.ok("migrate", {"uri": "file:" + state})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                qs.ok("quit")
            src.wait(30)
            return src.output(), last_count(src), state

    def test_counter_with_disk(self):
        """The PCI and virtio-pci sections load, the counter continues, and
        the image is byte for byte what it was."""
        before = self.digest()
        args = machine_args(guest("counter.mb.elf"), extra=self.drive())
        out, handed, state = self.save_and_quit(args)
        with Vm(args + ["-incoming", "file:" + state], serial="file", qmp=True) as dst:
            with dst.qmp() as qd:
                self.assertEqual(wait_migration(qd)["status"], "completed")
                wait_count(dst, handed + 10)
                self.assertEqual([b["device"] for b in qd.ok("query-block")], ["d0"])
            check_counter(self, out + dst.output(), min_count=handed + 10)
        self.assertEqual(self.digest(), before)

    def test_destination_serves_only_after_the_stream(self):
        """The destination's virtio-blk starts its I/O thread when the
        whole stream is in and the drive is its own, not when the device's
        section loads: with the stream held back just before its end
        marker (9 bytes: tag and checksum), no I/O thread runs; once the
        end is in, the device serves the guest again."""
        args = machine_args(guest("virtioblk.mb.elf"), append="sectors=%d wait" % SECTORS,
                            extra=self.drive())
        state = os.path.join(self.dir, "vm.state")
        with Vm(args, serial="file", qmp=True) as src:
            src.wait_for("virtio-blk: wrote and read back %d sectors" % SECTORS, 60)
            with src.qmp() as qs:
                qs.ok("migrate", {"uri": "file:" + state})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                qs.ok("quit")
            src.wait(30)
        with open(state, "rb") as f:
            stream = f.read()
        fifo = os.path.join(self.dir, "stream.fifo")
        os.mkfifo(fifo)
        with Vm(args + ["-incoming", "exec:cat " + fifo], serial="file", qmp=True) as dst:
            with open(fifo, "wb") as w, dst.qmp() as qd:
                w.write(stream[:-9])
                w.flush()
                # Time for the loader to get through every section.
                time.sleep(1.5)
                self.assertEqual(qd.ok("query-migrate")["status"], "active")
                self.assertNotIn("virtio-blk io", dst.thread_names())
                w.write(stream[-9:])
                w.close()
                self.assertEqual(wait_migration(qd)["status"], "completed")
                deadline = time.monotonic() + 10
                while "virtio-blk io" not in dst.thread_names():
                    self.assertLess(time.monotonic(), deadline, dst.thread_names())
                    time.sleep(0.05)

    def test_block_guest_finishes_on_destination(self):
        """A virtio-blk guest moved before it starts runs its whole
        write/flush/read-back on the destination, through the device and
        MSI-X routes the destination rebuilt, and the data is on the disk."""
        args = machine_args(guest("virtioblk.mb.elf"), append="sectors=%d" % SECTORS,
                            extra=self.drive())
        out, _, state = self.save_and_quit(args + ["-S"], paused=True)
        self.assertEqual(out, "")
        with Vm(args + ["-incoming", "file:" + state], serial="file", qmp=True) as dst:
            with dst.qmp() as qd:
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertFalse(qd.ok("query-status")["running"])
                qd.ok("cont")
                self.assertEqual(dst.wait(60), EXIT_PASS, dst._describe())
            self.assertIn("wrote and read back %d sectors, serial 'MIG-1'" % SECTORS,
                          dst.output())
        with open(self.disk, "rb") as f:
            self.assertEqual(f.read(SECTORS * 512), pattern(SECTORS))


def qemu_img(*args):
    return subprocess.run(["qemu-img"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)


@requires_kvm
@unittest.skipUnless(shutil.which("qemu-img"), "qemu-img is not installed")
class SharedStorage(unittest.TestCase):
    """Live migration over a unix socket, both vireos on one qcow2 image."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migshared-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.disk = os.path.join(self.dir, "disk.qcow2")
        self.sock = os.path.join(self.dir, "mig.sock")
        self.assertEqual(qemu_img("create", "-q", "-f", "qcow2", self.disk, "4M").returncode, 0)

    def args(self, append):
        return machine_args(guest("virtioblk.mb.elf"), append=append, extra=[
            "-drive", "file=%s,format=qcow2,if=none,id=d0" % self.disk,
            "-device", "virtio-blk-pci,drive=d0,serial=MIG-1"])

    def check_image(self, sectors):
        """qemu-img agrees the image is clean (so nobody holds it for
        writing) and reads the guest's pattern from it."""
        r = qemu_img("check", "-q", self.disk)
        self.assertEqual(r.returncode, 0, r.stdout)
        raw = os.path.join(self.dir, "disk.raw")
        self.assertEqual(qemu_img("convert", "-O", "raw", self.disk, raw).returncode, 0)
        with open(raw, "rb") as f:
            self.assertEqual(f.read(sectors * 512), pattern(sectors))

    def digest(self):
        with open(self.disk, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def assert_locked(self):
        r = qemu_img("check", self.disk)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("lock", r.stdout)

    def test_written_on_source_read_on_destination(self):
        """The guest writes and flushes on the source; after the live
        migration the destination owns the image, the source (still alive)
        holds nothing, and the data on disk is the guest's."""
        args = self.args("sectors=%d wait" % SECTORS)
        with Vm(args, serial="file", qmp=True) as src, \
                Vm(args + ["-incoming", "unix:" + self.sock], serial="file", qmp=True) as dst:
            src.wait_for("virtio-blk: wrote and read back %d sectors" % SECTORS, 60)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": "unix:" + self.sock})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                self.assertTrue(qd.ok("query-status")["running"])
                self.assertFalse(qs.ok("query-status")["running"])
                self.assert_locked()
                qd.ok("quit")
            dst.wait(30)
            # The source is alive but inactive: no lock, and what it wrote
            # (data and qcow2 metadata) is all on disk.
            self.check_image(SECTORS)
            before = self.digest()
            with src.qmp() as qs:
                qs.ok("quit")
            src.wait(30)
            # An inactive source writes nothing back when it closes.
            self.assertEqual(self.digest(), before)

    def test_destination_writes_source_cannot(self):
        """A guest moved before it starts does its I/O on the destination;
        cont on the old source is refused while the destination holds the
        image (as QEMU: it cannot re-take the locks), the guest stays
        paused and the image is left alone."""
        args = self.args("sectors=%d wait" % SECTORS)
        with Vm(args + ["-S"], serial="file", qmp=True) as src, \
                Vm(args + ["-incoming", "unix:" + self.sock], serial="file", qmp=True) as dst:
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": "unix:" + self.sock})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                qd.ok("cont")
                dst.wait_for("wrote and read back %d sectors, serial 'MIG-1'" % SECTORS, 60)
                before = self.digest()
                err = qs.cmd("cont")["error"]
                self.assertIn("cannot activate drive d0", err["desc"])
                self.assertFalse(qs.ok("query-status")["running"])
                self.assertEqual(src.output(), "")
                self.assertEqual(self.digest(), before)
                qd.ok("quit")
            dst.wait(30)
        self.check_image(SECTORS)

    def image_round(self):
        """The round number the loop guest last wrote to sector 0."""
        raw = os.path.join(self.dir, "round.raw")
        self.assertEqual(qemu_img("convert", "-O", "raw", self.disk, raw).returncode, 0)
        with open(raw, "rb") as f:
            head = f.read(SECTORS * 512)
        self.assertEqual(head[4:], pattern(SECTORS)[4:])
        return struct.unpack("<I", head[:4])[0]

    def test_cont_after_completed_takes_disk_back(self):
        """The destination is killed after a completed live migration:
        cont on the source takes the image back (locks, metadata re-read),
        restarts the device the switch-over stopped, and the rounds the
        guest writes afterwards reach the image."""
        args = self.args("sectors=%d loop" % SECTORS)
        with Vm(args, serial="file", qmp=True) as src, \
                Vm(args + ["-incoming", "unix:" + self.sock], serial="file", qmp=True) as dst:
            src.wait_for("virtio-blk: round 16", 60)
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("migrate", {"uri": "unix:" + self.sock})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
            dst.kill()
            rounds = [int(n) for n in re.findall(r"round (\d+)", src.output() + dst.output())]
            # The destination may have written up to 15 rounds it did not print.
            target = max(rounds) + 32
            with src.qmp() as qs:
                qs.ok("cont")
                self.assertTrue(qs.ok("query-status")["running"])
                src.wait_for("virtio-blk: round %d\n" % target, 60)
                self.assert_locked()
                qs.ok("quit")
            src.wait(30)
            self.assertNotIn("FAIL", src.output())
        self.assertGreaterEqual(self.image_round(), target)
        self.assertEqual(qemu_img("check", "-q", self.disk).returncode, 0)

    def test_failed_migration_source_keeps_disk(self):
        """The destination dies after the source handed the image over:
        the migration fails, the source takes the image back and its guest
        does all its I/O there."""
        args = self.args("sectors=%d" % SECTORS)
        with Vm(args + ["-S"], serial="file", qmp=True) as src, \
                Vm(args + ["-incoming", "unix:" + self.sock], serial="file", qmp=True) as dst:
            # The destination's monitor greets once its main loop runs,
            # after it listens for the stream.
            with dst.qmp():
                pass
            with src.qmp() as qs:
                qs.ok("migrate-set-capabilities", {"capabilities": [
                    {"capability": "pause-before-switchover", "state": True}]})
                qs.ok("migrate", {"uri": "unix:" + self.sock})
                wait_migration(qs, states=("pre-switchover",))
                # Handed over: neither vireo holds the image now.
                self.assertEqual(qemu_img("check", "-q", self.disk).returncode, 0)
                dst.kill()
                qs.ok("migrate-continue", {"state": "pre-switchover"})
                self.assertEqual(wait_migration(qs)["status"], "failed")
                self.assert_locked()
                qs.ok("cont")
                self.assertEqual(src.wait(60), EXIT_PASS, src._describe())
            self.assertIn("wrote and read back %d sectors" % SECTORS, src.output())
        self.check_image(SECTORS)

    def test_destination_cannot_take_image(self):
        """A third process grabs the image while the source has let go of
        it: the destination refuses the stream, naming the drive, and the
        source, unable to take its image back, keeps its guest paused."""
        args = self.args("sectors=%d wait" % SECTORS)
        with Vm(args, serial="file", qmp=True) as src, \
                Vm(args + ["-incoming", "unix:" + self.sock], serial="file", qmp=True) as dst:
            src.wait_for("virtio-blk: wrote and read back", 60)
            with dst.qmp():
                pass		# listening for the stream, as above
            with src.qmp() as qs:
                qs.ok("migrate-set-capabilities", {"capabilities": [
                    {"capability": "pause-before-switchover", "state": True}]})
                qs.ok("migrate", {"uri": "unix:" + self.sock})
                wait_migration(qs, states=("pre-switchover",))
                # QEMU's "write" permission byte, taken and not shared.
                fd = os.open(self.disk, os.O_RDWR)
                for byte in (101, 201):
                    fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                                struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, byte, 1, 0))
                qs.ok("migrate-continue", {"state": "pre-switchover"})
                self.assertEqual(dst.wait(60), 1)
                self.assertIn("cannot activate drive d0", dst.stderr())
                self.assertEqual(wait_migration(qs)["status"], "failed")
                # The source tries to take its image back after it said failed.
                deadline = time.monotonic() + 30
                while "the VM stays paused" not in src.stderr():
                    self.assertLess(time.monotonic(), deadline, src._describe())
                    time.sleep(0.05)
                self.assertIn("cannot activate drive d0", src.stderr())
                self.assertFalse(qs.ok("query-status")["running"])
                # cont cannot take it either while the third process holds it ...
                self.assertIn("cannot activate drive d0", qs.cmd("cont")["error"]["desc"])
                self.assertFalse(qs.ok("query-status")["running"])
                # ... and can once it let go.
                os.close(fd)
                qs.ok("cont")
                self.assertTrue(qs.ok("query-status")["running"])
                self.assert_locked()


@requires_kvm
class ParkedWrite(unittest.TestCase):
    """werror=stop and migration: the guest's 32 KiB write fails with ENOSPC
    on a full tmpfs (test_werror's setup), the VM stops with the request
    parked, and the paused VM migrates.  The parked request travels as its
    ring head; on the destination, once the disk has room, cont re-reads
    the chain from guest RAM and submits it: the guest sees success and
    the data is on disk."""
    setUp = test_werror.FullDisk.setUp
    prepare = test_werror.FullDisk.prepare
    fill = test_werror.FullDisk.fill
    image_head = test_werror.FullDisk.image_head
    io_status = test_werror.FullDisk.io_status
    GUEST_OPTS = test_werror.FullDisk.GUEST_OPTS
    DEVICES = ["-device", "virtio-blk-pci,drive=d0,serial=MIG-1"]

    def test_parked_write_completes_on_destination(self):
        sockdir = tempfile.mkdtemp(prefix="vireo-migpark-")
        self.addCleanup(shutil.rmtree, sockdir, True)
        sock = os.path.join(sockdir, "mig.sock")
        args = machine_args(guest("virtioblk.mb.elf"),
                            append="sectors=%d%s" % (SECTORS, self.GUEST_OPTS),
                            extra=["-drive", "file=%s,format=raw,if=none,id=d0,werror=stop"
                                   % self.image] + self.DEVICES)
        with Vm(args + ["-S"], qmp=True) as src, \
                Vm(args + ["-incoming", "unix:" + sock], qmp=True) as dst:
            with src.qmp() as qs, dst.qmp() as qd:
                qs.ok("cont")
                ev = qs.event("BLOCK_IO_ERROR", timeout=60)["data"]
                self.assertEqual((ev["operation"], ev["action"]), ("write", "stop"))
                qs.event("STOP")
                qs.ok("migrate", {"uri": "unix:" + sock})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                # The source was paused, so the destination is too.
                self.assertFalse(qd.ok("query-status")["running"])
                # ... and says why: the write waits for room on the disk.
                self.assertEqual(self.io_status(qd), "nospace")
                self.assertNotEqual(self.image_head(), pattern(SECTORS))
                os.unlink(self.filler)
                qd.ok("cont")
                self.assertEqual(self.io_status(qd), "ok")
                self.assertEqual(dst.wait(60), EXIT_PASS, dst._describe())
            self.assertIn("wrote and read back %d sectors" % SECTORS, dst.output())
            self.assertNotIn("write: status", src.output() + dst.output())
        self.assertEqual(self.image_head(), pattern(SECTORS))


class ParkedWriteScsi(ParkedWrite):
    """The same on a scsi-hd: virtio-scsi carries its parked commands too."""
    GUEST_OPTS = test_werror.FullDiskScsi.GUEST_OPTS
    DEVICES = test_werror.FullDiskScsi.DEVICES


if __name__ == "__main__":
    unittest.main()
