"""QMP on devices of a running VM: device_add/device_del of SCSI units on a
virtio-scsi controller, and eject / blockdev-change-medium of a CD-ROM."""
import os
import shutil
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


if __name__ == "__main__":
    unittest.main()
