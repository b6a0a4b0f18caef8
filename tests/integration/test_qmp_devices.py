"""QMP on devices of a running VM: device_add/device_del of SCSI units on a
virtio-scsi controller, eject / blockdev-change-medium of a CD-ROM, what
query-block and query-blockstats say of the CD-ROM before and after, the
DEVICE_TRAY_MOVED events of the host's and of a Linux guest's tray moves,
the image lock an ejected disc lets go of, and the probed format of a
drive given without format=."""
import base64
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import (Vm, guest, image, linux_guest, machine_args,
                                         requires_kvm)


@requires_kvm
class HotplugAndMedia(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-qdev-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        disk = image(os.path.join(self.dir, "disk.raw"))
        self.iso1 = image(os.path.join(self.dir, "one.iso"), fill=b"1")
        self.iso2 = image(os.path.join(self.dir, "two.iso"), fill=b"2")
        extra = ["-device", "virtio-scsi-pci,id=scsi0",
                 "-drive", "file=%s,format=raw,if=none,id=d1" % disk,
                 "-drive", "file=%s,format=raw,if=none,id=cd0,media=cdrom" % self.iso1,
                 "-device", "scsi-cd,drive=cd0,bus=scsi0.0,scsi-id=2,id=cd1"]
        self.vm = Vm(machine_args(guest("counter.mb.elf"), extra=extra), qmp=True)
        self.addCleanup(self.vm.close)
        self.q = self.vm.qmp()
        self.addCleanup(self.q.close)

    def test_device_add_del(self):
        q = self.q
        self.assertEqual(q.ok("device_add", {"driver": "scsi-hd", "drive": "d1", "bus": "scsi0.0",
                                             "scsi-id": 1, "lun": 0, "id": "hd1",
                                             "serial": "a,b"}), {})
        e = q.cmd("device_add", {"driver": "scsi-hd", "drive": "d1", "bus": "scsi0.0",
                                 "scsi-id": 1, "id": "hd2"})["error"]
        self.assertEqual(e["class"], "GenericError")
        e = q.cmd("device_add", {"driver": "virtio-blk-pci", "drive": "d1"})["error"]
        self.assertIn("cannot be hot-plugged", e["desc"])
        e = q.cmd("device_add", {"driver": "no-such-device"})["error"]
        self.assertIn("not a valid device model", e["desc"])
        e = q.cmd("device_add", {"driver": "scsi-hd", "drive": ["d1"]})["error"]
        self.assertIn("drive", e["desc"])
        self.assertEqual(q.ok("device_del", {"id": "hd1"}), {})
        e = q.cmd("device_del", {"id": "hd1"})["error"]
        self.assertEqual(e["class"], "DeviceNotFound")
        # The drive is free again: it can be attached once more.
        q.ok("device_add", {"driver": "scsi-hd", "drive": "d1", "bus": "scsi0.0",
                            "scsi-id": 3, "id": "hd3"})
        self.assertTrue(q.ok("query-status")["running"])

    def test_eject_and_change_medium(self):
        q = self.q
        cd = [b for b in q.ok("query-block") if b["device"] == "cd0"][0]
        self.assertTrue(cd["inserted"]["ro"], "media=cdrom is read-only")
        self.assertEqual(q.ok("eject", {"id": "cd1"}), {})
        self.assertEqual(q.ok("blockdev-change-medium",
                              {"id": "cd1", "filename": self.iso2, "format": "raw"}), {})
        e = q.cmd("blockdev-change-medium", {"id": "cd1", "filename": self.iso2,
                                             "format": "vmdk"})["error"]
        self.assertIn("vmdk", e["desc"])
        e = q.cmd("blockdev-change-medium", {"id": "cd1", "filename": self.iso2,
                                             "read-only-mode": "sometimes"})["error"]
        self.assertIn("read-only-mode", e["desc"])
        # A CD is never written: a read-write disc would hold the write lock.
        e = q.cmd("blockdev-change-medium", {"id": "cd1", "filename": self.iso2,
                                             "read-only-mode": "read-write"})["error"]
        self.assertIn("read-only", e["desc"])
        self.assertIn("cd1", e["desc"])
        subprocess.run(["qemu-img", "info", "-U", self.iso2], check=True, capture_output=True)
        q.ok("blockdev-change-medium", {"id": "cd1", "filename": self.iso2,
                                        "read-only-mode": "read-only"})
        # Not write-locked: another writer (qemu-img without -U) may open it.
        subprocess.run(["qemu-img", "info", self.iso2], check=True, capture_output=True)
        e = q.cmd("blockdev-change-medium",
                  {"id": "cd1", "filename": os.path.join(self.dir, "missing.iso")})["error"]
        self.assertIn("missing.iso", e["desc"])
        e = q.cmd("eject", {"id": "nope"})["error"]
        self.assertIn("nope", e["desc"])
        e = q.cmd("eject", {})["error"]
        self.assertIn("'id' is missing", e["desc"])

    def block(self, device, qdev=None):
        """query-block's entry for device (and qdev, when given)."""
        blocks = self.q.ok("query-block")
        for b in blocks:
            if b["device"] == device and (qdev is None or b.get("qdev") == qdev):
                return b
        self.fail("no %r/%r in query-block: %r" % (device, qdev, blocks))

    @unittest.skipUnless(shutil.which("qemu-img"), "qemu-img not installed")
    def test_query_block_media(self):
        """libvirt checks an eject or a medium change with query-block."""
        q = self.q
        cd = self.block("cd0")
        self.assertEqual(cd["qdev"], "cd1")
        self.assertTrue(cd["removable"])
        self.assertFalse(cd["locked"])
        self.assertFalse(cd["tray_open"])
        self.assertEqual(cd["inserted"]["file"], self.iso1)
        self.assertEqual(cd["inserted"]["drv"], "raw")
        self.assertTrue(cd["inserted"]["ro"])
        self.assertEqual(cd["inserted"]["image-size"], os.path.getsize(self.iso1))
        # A plain drive is not removable and has no tray.
        disk = self.block("d1")
        self.assertFalse(disk["removable"])
        self.assertFalse(disk["locked"])
        self.assertNotIn("tray_open", disk)
        self.assertEqual(disk["inserted"]["file"], os.path.join(self.dir, "disk.raw"))

        q.ok("eject", {"id": "cd1"})
        cd = self.block("cd0")
        self.assertNotIn("inserted", cd)
        self.assertTrue(cd["removable"])
        self.assertTrue(cd["tray_open"])
        self.assertEqual(cd["qdev"], "cd1")

        # The new disc, not the drive's image: its file, format and size.
        iso3 = os.path.join(self.dir, "three.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", iso3, "3M"], check=True)
        q.ok("blockdev-change-medium", {"id": "cd1", "filename": iso3})
        cd = self.block("cd0")
        self.assertEqual(cd["inserted"]["file"], iso3)
        self.assertEqual(cd["inserted"]["drv"], "qcow2")
        self.assertTrue(cd["inserted"]["ro"], "read-only-mode retain: read-only")
        self.assertEqual(cd["inserted"]["image-size"], 3 << 20)
        self.assertFalse(cd["tray_open"])
        self.assertFalse(self.block("d1")["removable"])

        # A unit without a drive is listed by its id, as QEMU lists its
        # anonymous backend; every named entry is listed once.
        q.ok("device_add", {"driver": "scsi-cd", "bus": "scsi0.0", "scsi-id": 4, "id": "cd4"})
        empty = self.block("", qdev="cd4")
        self.assertTrue(empty["removable"])
        self.assertFalse(empty["tray_open"])
        self.assertNotIn("inserted", empty)
        names = [b["device"] for b in q.ok("query-block") if b["device"]]
        self.assertEqual(sorted(names), ["cd0", "d1"])

    def test_tray_moved(self):
        """libvirt follows the tray by DEVICE_TRAY_MOVED, one per real move, in order."""
        q = self.q
        q.ok("eject", {"id": "cd1"})
        q.ok("eject", {"id": "cd1"})			# open already: no move
        q.ok("blockdev-change-medium", {"id": "cd1", "filename": self.iso2, "format": "raw"})
        # Into a closed tray: it opens, then closes.
        q.ok("blockdev-change-medium", {"id": "cd1", "filename": self.iso1, "format": "raw"})
        moves = [q.event("DEVICE_TRAY_MOVED")["data"] for _ in range(4)]
        self.assertEqual([m["tray-open"] for m in moves], [True, False, True, False])
        for m in moves:
            self.assertEqual((m["device"], m["id"]), ("cd0", "cd1"))
        self.assertIn("DEVICE_TRAY_MOVED",
                      [e["name"] for e in q.ok("query-qmp-schema") if e["meta-type"] == "event"])

    @unittest.skipUnless(shutil.which("qemu-img"), "qemu-img not installed")
    def test_eject_lets_go_of_the_image(self):
        """An ejected or replaced disc is closed: another process may write it."""
        q = self.q

        def resize(img):
            return subprocess.run(["qemu-img", "resize", "-q", "-f", "raw", img, "2M"],
                                  capture_output=True, text=True)

        r = resize(self.iso1)
        self.assertNotEqual(r.returncode, 0, "the VM holds one.iso")
        self.assertIn("lock", r.stderr)
        q.ok("eject", {"id": "cd1"})
        r = resize(self.iso1)
        self.assertEqual(r.returncode, 0, r.stderr)
        q.ok("blockdev-change-medium", {"id": "cd1", "filename": self.iso2, "format": "raw"})
        self.assertNotEqual(resize(self.iso2).returncode, 0, "the VM holds two.iso")
        q.ok("blockdev-change-medium", {"id": "cd1", "filename": self.iso1, "format": "raw"})
        r = resize(self.iso2)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.block("cd0")["inserted"]["image-size"], 2 << 20)
        # The unit keeps its drive, as QEMU keeps its BlockBackend.
        e = q.cmd("device_add", {"driver": "scsi-cd", "drive": "cd0", "bus": "scsi0.0",
                                 "scsi-id": 5, "id": "cd5"})["error"]
        self.assertIn("in use", e["desc"])

    def test_blockstats_media(self):
        """query-blockstats lists a CD unit as query-block does."""
        q = self.q
        q.ok("eject", {"id": "cd1"})
        q.ok("device_add", {"driver": "scsi-cd", "bus": "scsi0.0", "scsi-id": 4, "id": "cd4"})
        stats = q.ok("query-blockstats")
        by_name = {(s["device"], s.get("qdev")): s for s in stats}
        self.assertEqual(sorted(by_name), [("", "cd4"), ("cd0", "cd1"), ("d1", None)])
        self.assertEqual(by_name[("cd0", "cd1")]["stats"]["rd_operations"], 0)
        self.assertIn("cd0: rd_bytes=0 ", q.hmp("info blockstats"))


class ProbedFormat(unittest.TestCase):
    @requires_kvm
    @unittest.skipUnless(shutil.which("qemu-img"), "qemu-img not installed")
    def test_probed_format(self):
        """query-block names the format the open found, not the one -drive gave."""
        d = tempfile.mkdtemp(prefix="vireo-probe-")
        self.addCleanup(shutil.rmtree, d, True)
        qc = os.path.join(d, "disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", qc, "4M"], check=True)
        qc2 = os.path.join(d, "disk2.qcow2")
        shutil.copy(qc, qc2)
        raw = image(os.path.join(d, "disk.raw"))
        extra = ["-drive", "file=%s,if=none,id=p0" % qc,
                 "-drive", "file=%s,if=none,id=p1" % raw,
                 "-drive", "file=%s,if=none,id=p2,format=raw" % qc2]
        with Vm(machine_args(guest("counter.mb.elf"), extra=extra), qmp=True) as vm:
            q = vm.qmp()
            info = {b["device"]: b["inserted"] for b in q.ok("query-block")}
            q.close()
        self.assertEqual(info["p0"]["drv"], "qcow2")
        self.assertEqual(info["p0"]["image-size"], 4 << 20)
        self.assertEqual(info["p1"]["drv"], "raw")
        self.assertEqual(info["p2"]["drv"], "raw")
        self.assertEqual(info["p2"]["image-size"], os.path.getsize(qc2))


BOOT_TIMEOUT = 600		# a TCG boot takes about a minute here; room for a slow runner


class GuestTray(unittest.TestCase):
    """A Linux guest moves the tray itself: its sr driver opens it when the
    last user of an autoeject drive closes it, and closes it on the next
    open; each move is a DEVICE_TRAY_MOVED from the controller's I/O thread."""

    def test_guest_moves_the_tray(self):
        kernel, initrd = linux_guest()
        d = tempfile.mkdtemp(prefix="vireo-gtray-")
        self.addCleanup(shutil.rmtree, d, True)
        iso1 = image(os.path.join(d, "one.iso"), fill=b"1")
        iso2 = image(os.path.join(d, "two.iso"), fill=b"2")
        cmd = """
for i in $(seq 100); do [ -e /dev/sr0 ] && break; sleep 0.2; done
echo 1 > /proc/sys/dev/cdrom/autoeject
dd if=/dev/sr0 of=/dev/null bs=2048 count=8 2>/dev/null
dd if=/dev/sr0 of=/dev/null bs=2048 count=8 2>/dev/null
echo 0 > /proc/sys/dev/cdrom/autoeject
echo VIREO-TRAY-DONE
sleep 600
"""
        append = "console=ttyS0 quiet vireo.cmd=" + base64.b64encode(cmd.encode()).decode()
        args = ["-accel", "tcg", "-m", "512M", "-nographic", "-kernel", kernel,
                "-initrd", initrd, "-append", append,
                "-device", "virtio-scsi-pci,id=scsi0",
                "-drive", "file=%s,format=raw,if=none,id=cd0,media=cdrom" % iso1,
                "-device", "scsi-cd,drive=cd0,bus=scsi0.0,scsi-id=1,id=cd1"]
        with Vm(args, qmp=True) as vm:
            q = vm.qmp()
            vm.wait_for("VIREO-TRAY-DONE", timeout=BOOT_TIMEOUT)
            moves = [q.event("DEVICE_TRAY_MOVED", timeout=30)["data"] for _ in range(3)]
            self.assertEqual([m["tray-open"] for m in moves], [True, False, True])
            for m in moves:
                self.assertEqual((m["device"], m["id"]), ("cd0", "cd1"))
            cd = [b for b in q.ok("query-block") if b["device"] == "cd0"][0]
            self.assertTrue(cd["tray_open"])
            self.assertEqual(cd["inserted"]["file"], iso1, "the disc stays in the open tray")
            reads = self.rd_ops(q)
            self.assertGreater(reads, 0)
            # The stats belong to the unit: an eject and a new disc keep them.
            q.ok("eject", {"id": "cd1"})
            self.assertEqual(self.rd_ops(q), reads)
            q.ok("blockdev-change-medium", {"id": "cd1", "filename": iso2, "format": "raw"})
            self.assertFalse(q.event("DEVICE_TRAY_MOVED")["data"]["tray-open"])
            self.assertEqual(self.rd_ops(q), reads)
            q.close()

    @staticmethod
    def rd_ops(q):
        return [s for s in q.ok("query-blockstats") if s["device"] == "cd0"][0]["stats"][
            "rd_operations"]


if __name__ == "__main__":
    unittest.main()
