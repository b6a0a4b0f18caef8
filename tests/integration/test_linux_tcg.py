"""Debian's cloud kernel with the busybox initramfs under -accel tcg (the
way a full Linux guest runs on hosts without a usable KVM, this one among
them): it boots to /init with one and two vCPUs and powers off; its own
virtio_blk, virtio_scsi, sd_mod and sr_mod drivers find the disks and the
CD-ROM, and what it writes is on the host's images byte for byte; QMP
system_powerdown shuts it down cleanly."""
import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.vireotest import Vm, linux_guest, run_vireo

BOOT_TIMEOUT = 600		# a boot takes about a minute here; leave room on a slow runner


def linux_args(cmd, smp=1, extra=()):
    kernel, initrd = linux_guest()
    append = "console=ttyS0 quiet vireo.cmd=" + base64.b64encode(cmd.encode()).decode()
    return ["-accel", "tcg", "-m", "512M", "-smp", str(smp), "-nographic",
            "-kernel", kernel, "-initrd", initrd, "-append", append] + list(extra)


class LinuxOnTcg(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-linux-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def boot(self, cmd, smp=1, extra=()):
        r = run_vireo(linux_args(cmd, smp, extra) + ["-serial", "stdio"], timeout=BOOT_TIMEOUT)
        self.assertEqual(r.status, 0, r)		# it powered itself off
        self.assertIn("VIREO-INIT uptime=", r.stdout)
        self.assertIn("VIREO-CMD-EXIT 0", r.stdout, r)
        return r.stdout

    def test_two_vcpus(self):
        out = self.boot("grep -c ^processor /proc/cpuinfo; dmesg", smp=2)
        self.assertRegex(out, r"(?m)^2\r?$")
        # The kernel met nothing it had to warn about with a backtrace
        # (an MSR that faults, a bad CPU feature, a lockup).
        for bad in ("Call Trace", "unchecked MSR access", "WARNING:", "BUG:"):
            self.assertNotIn(bad, out)

    def test_smbios(self):
        """The guest's DMI data is what -uuid and -smbios say: what
        cloud-init (serial ds=...) and systemd (OEM credentials) read."""
        fields = ("bios_vendor", "sys_vendor", "product_name", "product_serial",
                  "product_uuid", "chassis_serial", "chassis_asset_tag", "board_vendor")
        out = self.boot("cd /sys/class/dmi/id && for f in %s; do echo \"dmi $f=$(cat $f)\"; "
                        "done; cat /sys/firmware/dmi/entries/11-0/raw | tr '\\0' '|'; echo"
                        % " ".join(fields),
                        extra=["-uuid", "12345678-9abc-def0-1122-334455667788",
                               "-smbios", "type=1,serial=ds=nocloud,,s=http://10.0.0.1/",
                               "-smbios", "type=3,serial=CH-1,asset=A-7",
                               "-smbios", "type=11,value=io.systemd.credential:foo=bar",
                               "-smbios", "type=11,value=second"])
        dmi = dict(re.findall(r"(?m)^dmi (\w+)=(.*?)\r?$", out))
        self.assertEqual(dmi, {
            "bios_vendor": "vireo", "sys_vendor": "vireo",
            "product_name": "vireo virtual machine (q35)",
            "product_serial": "ds=nocloud,s=http://10.0.0.1/",
            "product_uuid": "12345678-9abc-def0-1122-334455667788",
            "chassis_serial": "CH-1", "chassis_asset_tag": "A-7", "board_vendor": "vireo"})
        # Type 11: type, length 5, handle 0x0b00 (NUL shown as |), 2
        # strings, then the set, each string and the set NUL-terminated.
        self.assertIn("\x0b\x05|\x0b\x02io.systemd.credential:foo=bar|second||", out)

    def test_disks_and_cdrom(self):
        if not shutil.which("qemu-img") or not shutil.which("genisoimage"):
            self.skipTest("needs qemu-img (qemu-utils) and genisoimage")
        raw = os.path.join(self.dir, "vd.raw")
        with open(raw, "wb") as f:
            f.truncate(16 << 20)
        qcow_blk = os.path.join(self.dir, "vd.qcow2")
        qcow_scsi = os.path.join(self.dir, "sd.qcow2")
        for q in (qcow_blk, qcow_scsi):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", q, "16M"], check=True)
        src = os.path.join(self.dir, "iso")
        os.mkdir(src)
        with open(os.path.join(src, "hello.txt"), "w") as f:
            f.write("vireo cdrom\n" * 1000)
        iso = os.path.join(self.dir, "cd.iso")
        subprocess.run(["genisoimage", "-quiet", "-o", iso, src], check=True)
        iso_sectors = os.path.getsize(iso) // 2048

        cmd = """
for i in $(seq 100); do [ -e /dev/sda ] && [ -e /dev/sr0 ] && [ -e /dev/vdb ] && break; sleep 0.2; done
dd if=/dev/urandom of=/tmp/src bs=64k count=16 2>/dev/null
echo "src $(md5sum < /tmp/src)"
for d in vda vdb sda; do dd if=/tmp/src of=/dev/$d bs=64k conv=fsync 2>/dev/null; done
sync; echo 3 > /proc/sys/vm/drop_caches
for d in vda vdb sda; do echo "$d $(dd if=/dev/$d bs=64k count=16 2>/dev/null | md5sum)"; done
echo "sr0 $(dd if=/dev/sr0 bs=2048 count=%d 2>/dev/null | md5sum)"
echo "sizes $(cat /sys/block/vda/size) $(cat /sys/block/sda/size)"
""" % iso_sectors
        extra = ["-drive", "file=%s,format=raw,if=virtio" % raw,
                 "-drive", "file=%s,format=qcow2,if=virtio" % qcow_blk,
                 "-device", "virtio-scsi-pci,id=scsi0",
                 "-drive", "file=%s,format=qcow2,if=none,id=sd0" % qcow_scsi,
                 "-device", "scsi-hd,drive=sd0,bus=scsi0.0",
                 "-drive", "file=%s,format=raw,if=none,id=cd0,media=cdrom" % iso,
                 "-device", "scsi-cd,drive=cd0,bus=scsi0.0,scsi-id=1"]
        out = self.boot(cmd, extra=extra)
        sums = dict(re.findall(r"(?m)^(src|vda|vdb|sda|sr0) ([0-9a-f]{32})", out))
        self.assertEqual(set(sums), {"src", "vda", "vdb", "sda", "sr0"}, out)
        for d in ("vda", "vdb", "sda"):
            self.assertEqual(sums[d], sums["src"], "guest read-back of /dev/" + d)
        self.assertIn("sizes 32768 32768", out)
        with open(iso, "rb") as f:
            self.assertEqual(sums["sr0"], hashlib.md5(f.read()).hexdigest())
        # On the host: the images hold what the guest wrote; qcow2 checks clean.
        with open(raw, "rb") as f:
            self.assertEqual(hashlib.md5(f.read(1 << 20)).hexdigest(), sums["src"])
        for q in (qcow_blk, qcow_scsi):
            chk = subprocess.run(["qemu-img", "check", q], capture_output=True, text=True)
            self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
            flat = q + ".raw"
            subprocess.run(["qemu-img", "convert", "-O", "raw", q, flat], check=True)
            with open(flat, "rb") as f:
                self.assertEqual(hashlib.md5(f.read(1 << 20)).hexdigest(), sums["src"], q)

    def test_system_powerdown(self):
        with Vm(linux_args("echo READY-FOR-BUTTON; sleep 600"), qmp=True) as vm:
            q = vm.qmp()
            vm.wait_for("READY-FOR-BUTTON", timeout=BOOT_TIMEOUT)
            q.ok("system_powerdown")
            q.event("POWERDOWN")
            e = q.event("SHUTDOWN", timeout=120)
            self.assertEqual(e["data"], {"guest": True, "reason": "guest-shutdown"})
            self.assertEqual(vm.wait(60), 0)
            self.assertIn("VIREO-POWER-BUTTON: shutting down", vm.output())
            self.assertNotIn("VIREO-CMD-EXIT", vm.output())	# the button, not the command
            q.close()


if __name__ == "__main__":
    unittest.main()
