"""block_resize on a running VM (QMP and HMP), as virsh blockresize sends it:
a raw drive on virtio-blk and a qcow2 drive grow (query-block, the file,
qemu-img info), by device or by node-name; the same size is a no-op; every
refusal (unknown drive, both or neither name, negative, unaligned or smaller
size, read-only drive) leaves the size alone; and while a migration is
active or has completed (until cont) the command is refused."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.migtest import counter_vm, wait_count, wait_migration
from tests.integration.vireotest import image, requires_kvm

MiB = 1 << 20
SLOW = 256 << 10	# bytes/s: the first pass takes many seconds


def have_qemu_img():
    return shutil.which("qemu-img") is not None


@requires_kvm
@unittest.skipUnless(have_qemu_img(), "qemu-img not installed")
class BlockResize(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-resize-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.raw = image(os.path.join(self.dir, "disk.raw"), size=4 * MiB)
        self.qcow2 = os.path.join(self.dir, "disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512",
                        self.qcow2, "2M"], check=True)
        self.ro = image(os.path.join(self.dir, "ro.raw"), size=MiB)
        self.uri = "unix:" + os.path.join(self.dir, "mig.sock")

    def vm(self, incoming=None):
        extra = ["-drive", "file=%s,format=raw,if=virtio,id=d0" % self.raw,
                 "-drive", "file=%s,format=qcow2,if=none,id=d1" % self.qcow2,
                 "-device", "virtio-blk-pci,drive=d1,id=blk1",
                 "-drive", "file=%s,format=raw,if=none,id=d2,readonly=on" % self.ro]
        return counter_vm(incoming=incoming, extra=extra)

    def sizes(self, q):
        return {b["device"]: b["inserted"]["image-size"] for b in q.ok("query-block")}

    def info_size(self, path):
        out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)["virtual-size"]

    def test_grow(self):
        with self.vm() as vm, vm.qmp() as q:
            wait_count(vm, 3)
            self.assertEqual(self.sizes(q), {"d0": 4 * MiB, "d1": 2 * MiB, "d2": MiB})
            self.assertEqual(q.ok("block_resize", {"device": "d0", "size": 16 * MiB}), {})
            self.assertEqual(os.path.getsize(self.raw), 16 * MiB)
            # libvirt names the node; a drive's node is named by its id.
            self.assertEqual(q.ok("block_resize", {"node-name": "d1", "size": 10 * MiB}), {})
            self.assertEqual(self.info_size(self.qcow2), 10 * MiB)
            # The same size again: nothing to do, and no error.
            self.assertEqual(q.ok("block_resize", {"device": "d1", "size": 10 * MiB}), {})
            self.assertEqual(q.hmp("block_resize d0 32M"), "")
            self.assertEqual(self.sizes(q), {"d0": 32 * MiB, "d1": 10 * MiB, "d2": MiB})
            self.assertEqual(os.path.getsize(self.raw), 32 * MiB)
            self.assertTrue(q.ok("query-status")["running"])
            wait_count(vm, 10)
            q.ok("quit")
            vm.wait(30)
        r = subprocess.run(["qemu-img", "check", "-q", self.qcow2])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(self.info_size(self.qcow2), 10 * MiB)

    def test_refusals(self):
        with self.vm() as vm, vm.qmp() as q:
            cases = [
                ({"device": "nope", "size": 8 * MiB}, "Cannot find device='nope' nor node-name=''"),
                ({"node-name": "nope", "size": 8 * MiB},
                 "Cannot find device='' nor node-name='nope'"),
                ({"size": 8 * MiB}, "Cannot find device='' nor node-name=''"),
                ({"device": "d0", "node-name": "d0", "size": 8 * MiB},
                 "Only one of device and node-name may be given"),
                ({"device": "d0", "size": -512}, "Parameter 'size' expects a >0 size"),
                ({"device": "d0", "size": 8 * MiB + 100},
                 "The new size must be a multiple of 512"),
                ({"device": "d0", "size": 2 * MiB}, "Shrinking is not supported"),
                ({"device": "d1", "size": MiB}, "Shrinking is not supported"),
                ({"device": "d2", "size": 8 * MiB}, "Block node is read-only"),
            ]
            for args, want in cases:
                e = q.cmd("block_resize", args)["error"]
                self.assertEqual(e["class"], "GenericError", (args, e))
                self.assertIn(want, e["desc"], args)
            e = q.cmd("block_resize", {"device": "d0"})["error"]
            self.assertIn("size", e["desc"])
            e = q.cmd("block_resize", {"device": "d0", "size": "8M"})["error"]
            self.assertIn("size", e["desc"])
            self.assertIn("Error: Block node is read-only", q.hmp("block_resize d2 8M"))
            self.assertIn("Error: Cannot find device='x'", q.hmp("block_resize x 8M"))
            self.assertIn("Error: invalid size", q.hmp("block_resize d0 lots"))
            self.assertEqual(self.sizes(q), {"d0": 4 * MiB, "d1": 2 * MiB, "d2": MiB})
            self.assertEqual(os.path.getsize(self.raw), 4 * MiB)
            self.assertTrue(q.ok("query-status")["running"])

    def assert_refused(self, q, why):
        e = q.cmd("block_resize", {"device": "d0", "size": 8 * MiB})["error"]
        self.assertEqual(e["class"], "GenericError")
        self.assertIn("block_resize not allowed while migrating", e["desc"])
        self.assertIn(why, e["desc"])
        self.assertIn("not allowed while migrating", q.hmp("block_resize d1 8M"))

    def test_migration(self):
        with self.vm() as src, src.qmp() as qs:
            wait_count(src, 5)
            qs.ok("migrate-set-parameters", {"max-bandwidth": SLOW})
            with self.vm(incoming=self.uri) as dst, dst.qmp() as qd:
                self.assert_refused(qd, "an incoming migration is awaited")
                qs.ok("migrate", {"uri": self.uri})
                self.assertEqual(wait_migration(qs, states=("active", "completed", "failed",
                                                            "cancelled"))["status"], "active")
                self.assert_refused(qs, "a migration is active")
                qs.ok("migrate-set-parameters", {"max-bandwidth": 1 << 30})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                # The destination owns the image now; the source must not touch it.
                self.assert_refused(qs, "the migration completed")
                self.assertEqual(qd.ok("block_resize", {"device": "d0", "size": 8 * MiB}), {})
                self.assertEqual(self.sizes(qd)["d0"], 8 * MiB)
            self.assertEqual(os.path.getsize(self.raw), 8 * MiB)


if __name__ == "__main__":
    unittest.main()
