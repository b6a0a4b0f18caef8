"""Online disk growth as a Linux guest sees it, under -accel tcg: QMP
block_resize of a raw virtio-blk disk and of a qcow2 scsi-hd while the guest
runs; Linux's virtio_blk takes the configuration change interrupt and logs
"new size", virtio_scsi takes the parameter change event and rescans the
disk; /sys/block/*/size shows the new sizes and a write past the old end
lands in the image."""
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
class LinuxSeesResize(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-linux-resize-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_grow_vda_and_sda(self):
        raw = os.path.join(self.dir, "vd.raw")
        with open(raw, "wb") as f:
            f.truncate(16 * MiB)
        qcow = os.path.join(self.dir, "sd.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", qcow, "16M"], check=True)
        cmd = """
for i in $(seq 100); do [ -e /dev/sda ] && [ -e /dev/vda ] && break; sleep 0.2; done
echo "BEFORE $(cat /sys/block/vda/size) $(cat /sys/block/sda/size)"
for i in $(seq 3000); do
  [ "$(cat /sys/block/vda/size)" != 32768 ] && [ "$(cat /sys/block/sda/size)" != 32768 ] && break
  sleep 0.1
done
echo "AFTER $(cat /sys/block/vda/size) $(cat /sys/block/sda/size)"
dd if=/dev/urandom of=/tmp/blk bs=4k count=1 2>/dev/null
echo "blk $(md5sum < /tmp/blk)"
dd if=/tmp/blk of=/dev/vda bs=4k seek=$((48 * 256 - 1)) conv=fsync 2>/dev/null
dd if=/tmp/blk of=/dev/sda bs=4k seek=$((40 * 256 - 1)) conv=fsync 2>/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches
echo "vda-tail $(dd if=/dev/vda bs=4k skip=$((48 * 256 - 1)) count=1 2>/dev/null | md5sum)"
echo "sda-tail $(dd if=/dev/sda bs=4k skip=$((40 * 256 - 1)) count=1 2>/dev/null | md5sum)"
dmesg | grep -i -e "new size" -e "capacity change"
"""
        extra = ["-drive", "file=%s,format=raw,if=virtio,id=vd0" % raw,
                 "-device", "virtio-scsi-pci,id=scsi0",
                 "-drive", "file=%s,format=qcow2,if=none,id=sd0" % qcow,
                 "-device", "scsi-hd,drive=sd0,bus=scsi0.0"]
        with Vm(linux_args(cmd, extra=extra), qmp=True) as vm, vm.qmp() as q:
            vm.wait_for(r"BEFORE 32768 32768", timeout=BOOT_TIMEOUT)
            q.ok("block_resize", {"device": "vd0", "size": 48 * MiB})
            q.ok("block_resize", {"node-name": "sd0", "size": 40 * MiB})
            vm.wait_for(r"VIREO-CMD-EXIT", timeout=300)
            out = vm.output()
            self.assertEqual(vm.wait(60), 0)
        self.assertIn("AFTER %d %d" % (48 * 2048, 40 * 2048), out)
        self.assertRegex(out, r"virtio_blk virtio\d+: \[vda\] new size: %d 512-byte logical "
                              r"blocks" % (48 * 2048))
        self.assertRegex(out, r"sda: detected capacity change from %d to %d" %
                         (32768, 40 * 2048))
        sums = dict(re.findall(r"(?m)^(blk|vda-tail|sda-tail) ([0-9a-f]{32})", out))
        self.assertEqual(set(sums), {"blk", "vda-tail", "sda-tail"}, out)
        self.assertEqual(sums["vda-tail"], sums["blk"])
        self.assertEqual(sums["sda-tail"], sums["blk"])
        # On the host: the grown images hold the write past the old end.
        self.assertEqual(os.path.getsize(raw), 48 * MiB)
        with open(raw, "rb") as f:
            f.seek(48 * MiB - 4096)
            self.assertEqual(hashlib.md5(f.read()).hexdigest(), sums["blk"])
        chk = subprocess.run(["qemu-img", "check", qcow], capture_output=True, text=True)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        flat = qcow + ".raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", qcow, flat], check=True)
        self.assertEqual(os.path.getsize(flat), 40 * MiB)
        with open(flat, "rb") as f:
            f.seek(40 * MiB - 4096)
            self.assertEqual(hashlib.md5(f.read()).hexdigest(), sums["blk"])


if __name__ == "__main__":
    unittest.main()
