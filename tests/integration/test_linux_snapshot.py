"""A live snapshot and I/O limits as a Linux guest meets them, under -accel
tcg: the guest writes a block to its virtio-blk disk, the host takes a
blockdev-snapshot-sync (and grows the new image, which tells the guest
when), the guest rewrites that block and writes the next; the base image
keeps the first write only, the chain holds the last ones, and qemu-img
finds it clean.  The disk is limited to 1 MiB/s: the guest's 2 MiB read
takes it about two seconds by its own clock."""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.test_linux_tcg import BOOT_TIMEOUT, linux_args
from tests.integration.vireotest import Vm

MiB = 1 << 20


@unittest.skipUnless(shutil.which("qemu-img"), "qemu-img (qemu-utils) not installed")
class LinuxSnapshot(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-linux-snap-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_snapshot_and_limits(self):
        raw = os.path.join(self.dir, "vd.raw")
        with open(raw, "wb") as f:
            f.write(b"A" * 16 * MiB)
        ovl = os.path.join(self.dir, "vd-after.qcow2")
        cmd = """
for i in $(seq 100); do [ -e /dev/vda ] && break; sleep 0.2; done
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/vda of=/dev/null bs=64k count=32 iflag=direct 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
echo "READ2M $t0 $t1"
dd if=/dev/urandom of=/tmp/b1 bs=4k count=1 2>/dev/null
dd if=/tmp/b1 of=/dev/vda bs=4k conv=fsync 2>/dev/null
echo "b1 $(md5sum < /tmp/b1)"
echo PHASE1
for i in $(seq 3000); do [ "$(cat /sys/block/vda/size)" != 32768 ] && break; sleep 0.1; done
echo "SIZE $(cat /sys/block/vda/size)"
dd if=/dev/urandom of=/tmp/b2 bs=4k count=2 2>/dev/null
dd if=/tmp/b2 of=/dev/vda bs=4k count=2 conv=fsync 2>/dev/null
echo "b2 $(md5sum < /tmp/b2)"
sync; echo 3 > /proc/sys/vm/drop_caches
echo "back $(dd if=/dev/vda bs=4k count=2 2>/dev/null | md5sum)"
"""
        extra = ["-drive", "file=%s,format=raw,if=virtio,id=vd0,cache=none,"
                 "throttling.bps-total=%d" % (raw, MiB)]
        with Vm(linux_args(cmd, extra=extra), qmp=True) as vm, vm.qmp() as q:
            vm.wait_for(r"PHASE1", timeout=BOOT_TIMEOUT)
            q.ok("blockdev-snapshot-sync", {"device": "vd0", "snapshot-file": ovl})
            q.ok("block_resize", {"device": "vd0", "size": 32 * MiB})
            vm.wait_for(r"VIREO-CMD-EXIT", timeout=300)
            out = vm.output()
            self.assertEqual(vm.wait(60), 0)

        t0, t1 = map(float, re.search(r"READ2M ([\d.]+) ([\d.]+)", out).groups())
        self.assertGreater(t1 - t0, 1.5, out)		# 2 MiB at 1 MiB/s, 0.1 s of burst
        self.assertIn("SIZE %d" % (32 * 2048), out)
        sums = dict(re.findall(r"(?m)^(b1|b2|back) ([0-9a-f]{32})", out))
        self.assertEqual(set(sums), {"b1", "b2", "back"}, out)
        self.assertEqual(sums["back"], sums["b2"])
        # The base: the write from before the snapshot, the rest untouched.
        with open(raw, "rb") as f:
            self.assertEqual(hashlib.md5(f.read(4096)).hexdigest(), sums["b1"])
            self.assertEqual(f.read(4096), b"A" * 4096)
        self.assertEqual(os.path.getsize(raw), 16 * MiB)
        # The chain: the writes from after it, over the base.
        chk = subprocess.run(["qemu-img", "check", ovl], capture_output=True, text=True)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        flat = os.path.join(self.dir, "flat.raw")
        subprocess.run(["qemu-img", "convert", "-O", "raw", ovl, flat], check=True)
        with open(flat, "rb") as f:
            self.assertEqual(hashlib.md5(f.read(8192)).hexdigest(), sums["b2"])
            self.assertEqual(f.read(4096), b"A" * 4096)
        self.assertEqual(os.path.getsize(flat), 32 * MiB)


if __name__ == "__main__":
    unittest.main()
