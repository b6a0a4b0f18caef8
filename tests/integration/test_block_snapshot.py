"""QMP blockdev-snapshot-sync on a running VM, as backup tools send it: a raw
drive on virtio-blk and a qcow2 drive on a virtio-scsi disk each get a new
qcow2 overlay (named by device, or by node-name), query-block and qemu-img
see the chain, the guest runs on; every refusal (an existing file, another
format or mode, a node name, no such drive, a read-only drive, a drive
with snapshot=on, a CD) leaves the drive and the file system as they were.
(The data path through the overlay is tested in test_virtio_blk's
/virtio-blk/live-snapshot.)"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.migtest import counter_vm, wait_count
from tests.integration.vireotest import image, kvm_available

MiB = 1 << 20


@unittest.skipUnless(shutil.which("qemu-img"), "qemu-img not installed")
class BlockSnapshot(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-bsnap-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.raw = image(os.path.join(self.dir, "disk.raw"), size=4 * MiB, fill=b"\x5a")
        self.qcow2 = os.path.join(self.dir, "disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", self.qcow2, "2M"],
                       check=True)
        self.ro = image(os.path.join(self.dir, "ro.raw"), size=MiB)
        self.cd = image(os.path.join(self.dir, "cd.iso"), size=MiB)
        self.accel = "kvm" if kvm_available() else "tcg"

    def path(self, name):
        return os.path.join(self.dir, name)

    def info(self, path):
        out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def files(self, q):
        return {b["device"]: b["inserted"]["file"] for b in q.ok("query-block")
                if "inserted" in b}

    def chain(self, q, dev):
        i = [b["inserted"] for b in q.ok("query-block") if b["device"] == dev][0]
        return i.get("backing_file"), i["backing_file_depth"]

    def test_snapshot(self):
        extra = ["-drive", "file=%s,format=raw,if=virtio,id=d0" % self.raw,
                 "-device", "virtio-scsi-pci,id=scsi0",
                 "-drive", "file=%s,format=qcow2,if=none,id=d1" % self.qcow2,
                 "-device", "scsi-hd,drive=d1,bus=scsi0.0",
                 "-drive", "file=%s,format=raw,if=none,id=d2,readonly=on" % self.ro,
                 "-drive", "file=%s,format=raw,if=none,id=d3,snapshot=on" % self.ro,
                 "-drive", "file=%s,format=raw,if=none,id=cd,media=cdrom" % self.cd,
                 "-device", "scsi-cd,drive=cd,bus=scsi0.0"]
        with counter_vm(extra=extra, accel=self.accel) as vm, vm.qmp() as q:
            wait_count(vm, 3)
            q.ok("blockdev-snapshot-sync", {"device": "d0", "snapshot-file": self.path("s0.qcow2")})
            q.ok("blockdev-snapshot-sync", {"node-name": "d1", "format": "qcow2",
                                            "mode": "absolute-paths",
                                            "snapshot-file": self.path("s1.qcow2")})
            files = self.files(q)
            self.assertEqual((files["d0"], files["d1"]),
                             (self.path("s0.qcow2"), self.path("s1.qcow2")))
            self.assertEqual(self.chain(q, "d0"), (self.raw, 1))
            self.assertEqual(self.chain(q, "d1"), (self.qcow2, 1))
            self.assertEqual(self.chain(q, "d2"), (None, 0))

            refused = [
                ({"device": "d0", "snapshot-file": self.path("s1.qcow2")},
                 "Could not create '%s': File exists" % self.path("s1.qcow2")),
                ({"device": "d0", "snapshot-file": self.path("x"), "format": "raw"},
                 "only qcow2 overlays"),
                ({"device": "d0", "snapshot-file": self.path("x"), "mode": "existing"},
                 "only absolute-paths"),
                ({"device": "d0", "snapshot-file": self.path("x"), "snapshot-node-name": "n"},
                 "snapshot-node-name"),
                ({"device": "nope", "snapshot-file": self.path("x")},
                 "Cannot find device='nope' nor node-name=''"),
                ({"device": "d0", "node-name": "d0", "snapshot-file": self.path("x")},
                 "Only one of device and node-name"),
                ({"device": "d2", "snapshot-file": self.path("x")}, "Block node is read-only"),
                ({"device": "d3", "snapshot-file": self.path("x")}, "snapshot=on"),
                ({"device": "cd", "snapshot-file": self.path("x")}, "cannot take a snapshot"),
                ({"device": "d0", "snapshot-file": self.path("nodir/x")},
                 "No such file or directory"),
            ]
            for args, want in refused:
                with self.subTest(args=args):
                    e = q.cmd("blockdev-snapshot-sync", args)["error"]
                    self.assertIn(want, e["desc"])
            self.assertFalse(os.path.exists(self.path("x")))
            self.assertEqual(self.files(q), files)
            # A snapshot of the snapshot, by HMP: a chain of three.
            self.assertIn("Error: only qcow2",
                          q.hmp("snapshot_blkdev d0 %s raw" % self.path("t0.qcow2")))
            self.assertEqual(q.hmp("snapshot_blkdev d0 %s qcow2" % self.path("t0.qcow2")), "")
            self.assertEqual(self.chain(q, "d0"), (self.path("s0.qcow2"), 2))
            self.assertIn("Error: Block node is read-only",
                          q.hmp("snapshot_blkdev d2 %s" % self.path("x")))
            self.assertTrue(q.ok("query-status")["running"])
            wait_count(vm, 6)
            q.ok("quit")
            vm.wait(30)

        top = self.info(self.path("t0.qcow2"))
        self.assertEqual(top["backing-filename"], self.path("s0.qcow2"))
        self.assertEqual(top["backing-filename-format"], "qcow2")
        s0 = self.info(self.path("s0.qcow2"))
        self.assertEqual((s0["backing-filename"], s0["backing-filename-format"]),
                         (self.raw, "raw"))
        self.assertEqual(s0["virtual-size"], 4 * MiB)
        s1 = self.info(self.path("s1.qcow2"))
        self.assertEqual((s1["backing-filename"], s1["backing-filename-format"]),
                         (self.qcow2, "qcow2"))
        for img in ("t0.qcow2", "s0.qcow2", "s1.qcow2"):
            r = subprocess.run(["qemu-img", "check", "-q", self.path(img)])
            self.assertEqual(r.returncode, 0, img)
        # Nothing was written: the chain reads as the base.
        r = subprocess.run(["qemu-img", "compare", "-q", self.path("t0.qcow2"), self.raw])
        self.assertEqual(r.returncode, 0)

    def test_transaction(self):
        """Snapshots of three drives (two on one SCSI controller, which
        quiesces once) all at once; a transaction with one bad action
        changes no drive and leaves no file."""
        d4 = image(self.path("d4.raw"), size=MiB)
        extra = ["-drive", "file=%s,format=raw,if=virtio,id=d0" % self.raw,
                 "-device", "virtio-scsi-pci,id=scsi0",
                 "-drive", "file=%s,format=qcow2,if=none,id=d1" % self.qcow2,
                 "-device", "scsi-hd,drive=d1,bus=scsi0.0,scsi-id=1",
                 "-drive", "file=%s,format=raw,if=none,id=d4" % d4,
                 "-device", "scsi-hd,drive=d4,bus=scsi0.0,scsi-id=4"]

        def snap(dev, name):
            return {"type": "blockdev-snapshot-sync",
                    "data": {"device": dev, "snapshot-file": self.path(name)}}

        with counter_vm(extra=extra, accel=self.accel) as vm, vm.qmp() as q:
            wait_count(vm, 3)
            self.assertEqual(q.ok("transaction", {"actions": []}), {})
            q.ok("transaction", {"actions": [snap("d0", "a0"), snap("d1", "a1"), snap("d4", "a4")],
                                 "properties": {"completion-mode": "individual"}})
            want = {"d0": self.path("a0"), "d1": self.path("a1"), "d4": self.path("a4")}
            self.assertEqual(self.files(q), want)

            refused = [
                ([snap("d0", "b0"), snap("d1", "a1")], "Could not create '%s'" % self.path("a1")),
                ([snap("d0", "b0"), snap("d0", "b1")], "Drive 'd0' is named twice"),
                ([snap("d0", "b0"), {"type": "drive-backup", "data": {}}],
                 "action 1: type 'drive-backup' is not supported"),
                ([{"type": "blockdev-snapshot-sync",
                   "data": {"device": "d0", "snapshot-file": self.path("b0"), "x": "1"}}],
                 "action 0: Parameter 'x' is unexpected"),
                ([{"type": "blockdev-snapshot-sync", "data": {"device": "d0"}}],
                 "action 0: Parameter 'snapshot-file' is missing"),
                ([snap("nope", "b0")], "action 0: Cannot find device='nope'"),
                ([5], "action 0: needs 'type'"),
            ]
            for actions, want_err in refused:
                with self.subTest(actions=actions):
                    e = q.cmd("transaction", {"actions": actions})["error"]
                    self.assertIn(want_err, e["desc"])
            e = q.cmd("transaction", {"actions": [snap("d0", "b0")],
                                      "properties": {"completion-mode": "grouped"}})["error"]
            self.assertIn("completion-mode", e["desc"])
            e = q.cmd("transaction", {"actions": {}})["error"]
            self.assertIn("expected: array", e["desc"])
            self.assertEqual(self.files(q), want)
            self.assertFalse(os.path.exists(self.path("b0")))
            self.assertFalse(os.path.exists(self.path("b1")))
            self.assertTrue(q.ok("query-status")["running"])
            wait_count(vm, 6)
            q.ok("quit")
            vm.wait(30)
        for name, base, fmt in (("a0", self.raw, "raw"), ("a1", self.qcow2, "qcow2"),
                                ("a4", d4, "raw")):
            info = self.info(self.path(name))
            self.assertEqual((info["backing-filename"], info["backing-filename-format"]),
                             (base, fmt))
            self.assertEqual(subprocess.run(["qemu-img", "check", "-q", self.path(name)])
                             .returncode, 0)


if __name__ == "__main__":
    unittest.main()
