"""QMP on devices of a running VM: device_add/device_del of SCSI units on a
virtio-scsi controller, eject / blockdev-change-medium of a CD-ROM, and
what query-block says of the CD-ROM before and after."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import Vm, guest, image, machine_args, requires_kvm


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


if __name__ == "__main__":
    unittest.main()
