"""I/O limits as libvirt sets them: -drive throttling.* at start, QMP
block_set_io_throttle (virsh blkdeviotune) at run time, both shown by
query-block; every bad value is refused with the option's name and
changes nothing; and a guest's I/O really waits (the bare-metal virtio-blk
guest, under KVM and TCG, run with and without a bandwidth limit)."""
import os
import shutil
import tempfile
import time
import unittest

from tests.integration.migtest import counter_vm
from tests.integration.vireotest import (EXIT_PASS, guest, image, kvm_available,
                                         machine_args, run_vireo)

MiB = 1 << 20
RATES = ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr")


def limits(**kw):
    args = {r: 0 for r in RATES}
    args.update(kw)
    return args


class Throttle(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-throttle-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.raw = image(os.path.join(self.dir, "disk.raw"), size=4 * MiB)
        self.accel = "kvm" if kvm_available() else "tcg"

    def inserted(self, q, dev):
        for b in q.ok("query-block"):
            if b["device"] == dev:
                return b["inserted"]
        self.fail("no drive %s" % dev)

    def test_drive_and_qmp(self):
        extra = ["-drive", "file=%s,format=raw,if=none,id=d0,throttling.iops-total=200,"
                 "throttling.iops-total-max=400,throttling.iops-total-max-length=5,"
                 "throttling.bps-read=%d,throttling.iops-size=8192" % (self.raw, 4 * MiB),
                 "-device", "virtio-blk-pci,drive=d0"]
        with counter_vm(extra=extra, accel=self.accel) as vm, vm.qmp() as q:
            i = self.inserted(q, "d0")
            self.assertEqual((i["iops"], i["iops_max"], i["iops_max_length"]), (200, 400, 5))
            self.assertEqual((i["bps_rd"], i["bps"], i["bps_wr"]), (4 * MiB, 0, 0))
            self.assertEqual((i["bps_rd_max"], i["bps_rd_max_length"], i["iops_size"]),
                             (0, 1, 8192))

            q.ok("block_set_io_throttle", dict(limits(bps_wr=MiB, iops_rd=50),
                                               device="d0", iops_rd_max=100))
            i = self.inserted(q, "d0")
            self.assertEqual((i["bps_wr"], i["iops_rd"], i["iops_rd_max"], i["iops"]),
                             (MiB, 50, 100, 0))

            refused = [
                (limits(bps=1, bps_rd=1), "bps_rd cannot be used together with bps"),
                (dict(limits(iops=10), iops_max=5), "iops_max (5) cannot be lower than iops"),
                (dict(limits(), bps_wr_max=5), "bps_wr_max requires bps_wr"),
                (dict(limits(iops=10, iops_max=20), iops_max_length=-1),
                 "iops_max_length must be between 0 and"),
                (dict(limits(iops=10), iops_max_length=3), "iops_max_length requires iops_max"),
                (limits(bps=10 ** 16), "must be at most 1000000000000000"),
                (dict(limits(), group="g0"),
                 "drive 'd0' is in no throttle group; moving a drive between throttle"),
            ]
            for args, want in refused:
                with self.subTest(args=args):
                    e = q.cmd("block_set_io_throttle", dict(args, device="d0"))["error"]
                    self.assertIn(want, e["desc"])
            e = q.cmd("block_set_io_throttle", dict(limits(), device="nope"))["error"]
            self.assertEqual(e["class"], "DeviceNotFound")
            e = q.cmd("block_set_io_throttle", {"device": "d0", "bps": 1})["error"]
            self.assertIn("bps_rd", e["desc"])		# the rates are all required
            e = q.cmd("block_set_io_throttle", dict(limits(), id="virtio-disk0"))["error"]
            self.assertIn("'device'", e["desc"])
            # Nothing changed, and zero everywhere lifts the limits.
            i = self.inserted(q, "d0")
            self.assertEqual((i["bps_wr"], i["iops_rd"]), (MiB, 50))
            # HMP's form: the six rates in QMP's order.
            self.assertEqual(q.hmp("block_set_io_throttle d0 0 0 %d 0 70 0" % MiB), "")
            i = self.inserted(q, "d0")
            self.assertEqual((i["bps_wr"], i["iops_rd"], i["iops_rd_max"]), (MiB, 70, 0))
            self.assertIn("Error: invalid iops '-1'",
                          q.hmp("block_set_io_throttle d0 0 0 0 -1 0 0"))
            self.assertIn("Error: bps_rd cannot be used together with bps",
                          q.hmp("block_set_io_throttle d0 1 1 0 0 0 0"))
            self.assertIn("Error: Device 'nope' not found",
                          q.hmp("block_set_io_throttle nope 0 0 0 0 0 0"))
            q.ok("block_set_io_throttle", dict(limits(), device="d0"))
            i = self.inserted(q, "d0")
            self.assertEqual([i[r] for r in RATES], [0] * 6)
            self.assertNotIn("iops_size", i)
            q.ok("quit")
            vm.wait(30)

    def test_legacy_names(self):
        """QEMU's older -drive spellings, which old scripts still use."""
        extra = ["-drive", "file=%s,format=raw,if=virtio,id=d0,bps_wr=%d,iops_rd=30,"
                 "iops_rd_max=60,iops_size=4096" % (self.raw, 2 * MiB)]
        with counter_vm(extra=extra, accel=self.accel) as vm, vm.qmp() as q:
            i = self.inserted(q, "d0")
            self.assertEqual((i["bps_wr"], i["iops_rd"], i["iops_rd_max"], i["iops_size"]),
                             (2 * MiB, 30, 60, 4096))
            q.ok("quit")
            vm.wait(30)

    def test_group(self):
        """Drives of one throttling.group share its limits: the first gives
        them, the next joins with none or the same, block_set_io_throttle on
        either changes both, and a drive with other limits is refused."""
        other = image(os.path.join(self.dir, "other.raw"), size=MiB)
        extra = ["-drive", "file=%s,format=raw,if=virtio,id=d0,throttling.group=tenant1,"
                 "throttling.iops-total=100" % self.raw,
                 "-drive", "file=%s,format=raw,if=virtio,id=d1,throttling.group=tenant1" % other]
        with counter_vm(extra=extra, accel=self.accel) as vm, vm.qmp() as q:
            for dev in ("d0", "d1"):
                i = self.inserted(q, dev)
                self.assertEqual((i["iops"], i["group"]), (100, "tenant1"))
            q.ok("block_set_io_throttle", dict(limits(iops=300), device="d1", group="tenant1"))
            self.assertEqual(self.inserted(q, "d0")["iops"], 300)
            q.ok("block_set_io_throttle", dict(limits(bps=MiB), device="d0"))
            self.assertEqual((self.inserted(q, "d1")["bps"], self.inserted(q, "d1")["iops"]),
                             (MiB, 0))
            e = q.cmd("block_set_io_throttle", dict(limits(), device="d0", group="t2"))["error"]
            self.assertIn("drive 'd0' is in throttle group 'tenant1'", e["desc"])
            q.ok("quit")
            vm.wait(30)
        args = machine_args(guest("hello.mb.elf"), accel=self.accel) + [
            "-drive", "file=%s,format=raw,if=virtio,throttling.group=g,throttling.bps-total=5"
            % self.raw,
            "-drive", "file=%s,format=raw,if=virtio,throttling.group=g,throttling.bps-total=6"
            % other]
        r = run_vireo(args, timeout=30)
        self.assertNotEqual(r.status, 0, r)
        self.assertIn("throttling.group=g has other limits (set by drive 'virtio0')", r.stderr)

    def test_bad_drive_options(self):
        cases = [
            ("throttling.bps-total=1,throttling.bps-read=1",
             "throttling.bps-read cannot be used together with throttling.bps-total"),
            ("throttling.iops-write=5,throttling.iops-write-max=1",
             "throttling.iops-write-max (1) cannot be lower than throttling.iops-write (5)"),
            ("throttling.iops-total=lots", "throttling.iops-total='lots' is not a number"),
            ("throttling.bps-total-max-length=2", "throttling.bps-total-max-length requires"),
            ("throttling.group=", "throttling.group is empty"),
            ("throttling.bps-totl=5", "throttling.bps-totl"),
            ("throttling.iops-total=5,iops=6",
             "throttling.iops-total and iops are the same limit"),
        ]
        for opts, want in cases:
            with self.subTest(opts=opts):
                args = machine_args(guest("hello.mb.elf"), accel=self.accel) + [
                    "-drive", "file=%s,format=raw,if=virtio,%s" % (self.raw, opts)]
                r = run_vireo(args, timeout=30)
                self.assertNotEqual(r.status, 0, r)
                self.assertIn(want, r.stderr)

    def timed_guest(self, accel, drive_opts):
        args = machine_args(guest("virtioblk.mb.elf"), accel=accel, append="sectors=64") + [
            "-drive", "file=%s,format=raw,if=none,id=d0%s" % (self.raw, drive_opts),
            "-device", "virtio-blk-pci,drive=d0", "-serial", "stdio"]
        t0 = time.monotonic()
        r = run_vireo(args, timeout=120)
        took = time.monotonic() - t0
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("wrote and read back 64 sectors", r.stdout)
        return took

    def test_guest_waits(self):
        """The guest writes 32 KiB, then reads them back: at 8 KiB/s the
        read waits about 4 s for the write to drain from the bucket (2.5 s is
        asked, for a loaded host)."""
        for accel in (["kvm"] if kvm_available() else []) + ["tcg"]:
            with self.subTest(accel=accel):
                free = self.timed_guest(accel, "")
                limited = self.timed_guest(accel, ",throttling.bps-total=8192")
                self.assertGreater(limited - free, 2.5, (free, limited))


if __name__ == "__main__":
    unittest.main()
