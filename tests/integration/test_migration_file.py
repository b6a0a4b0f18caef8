"""Migration to a file and back: the plain stream and the mapped-ram
layout (pages at fixed offsets, bounded file size), with multifd writers
and direct-io, for a running and a paused guest; corrupted and truncated
files are refused without starting the guest."""
import os
import re
import shutil
import tempfile
import time
import unittest

from tests.integration.migtest import (check_counter, counter_vm, last_count, wait_count,
                                       wait_migration)
from tests.integration.vireotest import Vm, guest, machine_args, requires_kvm

RAM = 128 << 20


def set_caps(q, **caps):
    q.ok("migrate-set-capabilities", {"capabilities": [
        {"capability": k.replace("_", "-"), "state": v} for k, v in caps.items()]})


@requires_kvm
class FileMigration(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-migfile-", dir=os.environ.get("TMPDIR", "/var/tmp"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "vm.state")

    def save(self, mapped=True, multifd=0, direct_io=False, paused=False, uri=None):
        """Save a counting guest; returns its serial output and last count."""
        with counter_vm() as src, src.qmp() as q:
            wait_count(src, 15)
            if mapped:
                set_caps(q, mapped_ram=True, multifd=bool(multifd))
            if multifd:
                q.ok("migrate-set-parameters", {"multifd-channels": multifd})
            if direct_io:
                q.ok("migrate-set-parameters", {"direct-io": True})
            if paused:
                q.ok("stop")
            q.ok("migrate", {"uri": uri or "file:" + self.path})
            info = wait_migration(q)
            self.assertEqual(info["status"], "completed", info)
            self.assertFalse(q.ok("query-status")["running"])
            return src.output(), last_count(src), info

    def restore(self, out, handed, paused=False, uri=None):
        with counter_vm(incoming=uri or "file:" + self.path) as dst, dst.qmp() as q:
            self.assertEqual(wait_migration(q)["status"], "completed")
            if paused:
                self.assertFalse(q.ok("query-status")["running"])
                self.assertEqual(last_count(dst), 0)
                q.ok("cont")
            wait_count(dst, handed + 10)
            check_counter(self, out + dst.output(), min_count=handed + 10)

    def test_mapped_ram_running(self):
        out, handed, _ = self.save()
        size = os.path.getsize(self.path)
        # RAM plus metadata (bitmaps, headers, device state), never more.
        self.assertLessEqual(size, RAM + (4 << 20))
        # Zero pages are holes: far less is allocated than RAM.
        self.assertLess(os.stat(self.path).st_blocks * 512, 64 << 20)
        self.restore(out, handed)

    def test_mapped_ram_paused(self):
        out, handed, _ = self.save(paused=True)
        self.assertLessEqual(os.path.getsize(self.path), RAM + (4 << 20))
        self.restore(out, handed, paused=True)

    def test_mapped_ram_multifd(self):
        out, handed, info = self.save(multifd=4)
        self.assertGreater(info["ram"]["multifd-bytes"], 0)
        self.restore(out, handed)

    def test_mapped_ram_direct_io(self):
        probe = os.path.join(self.dir, "probe")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
            os.close(fd)
        except OSError as e:
            self.skipTest("%s does not support O_DIRECT: %s" % (self.dir, e))
        out, handed, _ = self.save(direct_io=True)
        self.restore(out, handed)

    def test_mapped_ram_offset(self):
        uri = "file:%s,offset=0x10000" % self.path
        out, handed, _ = self.save(uri=uri)
        self.restore(out, handed, uri=uri)

    def test_plain_stream_file(self):
        out, handed, _ = self.save(mapped=False)
        self.restore(out, handed)

    def test_mapped_ram_max_bandwidth(self):
        """max-bandwidth caps mapped-ram's page writers too, all channels
        together: the first pass alone is 16 MiB of data pages, 8 s at
        2 MiB/s, so a second into it the save is still active (uncapped,
        it completes in well under that); cancelled, the guest runs on with
        every page intact."""
        args = machine_args(guest("dirty.mb.elf"), mem="64M", append="pages=4096 delay=0")
        with Vm(args, serial="file", qmp=True) as vm, vm.qmp() as q:
            vm.wait_for("^dirty sweep 2$", 60)
            set_caps(q, mapped_ram=True, multifd=True)
            q.ok("migrate-set-parameters", {"multifd-channels": 2, "max-bandwidth": 2 << 20})
            q.ok("migrate", {"uri": "file:" + self.path})
            time.sleep(1)
            info = q.ok("query-migrate")
            self.assertEqual(info["status"], "active", info)
            self.assertLess(info["ram"]["transferred"], 12 << 20, info)
            q.ok("migrate_cancel")
            self.assertEqual(wait_migration(q)["status"], "cancelled")
            self.assertTrue(q.ok("query-status")["running"])
            n = max(int(x) for x in re.findall(r"^dirty sweep (\d+)$", vm.output(), re.M))
            vm.wait_for("^dirty sweep %d$" % (n + 2), 60)
            self.assertNotIn("FAIL", vm.output())

    def test_mapped_ram_needs_file(self):
        with counter_vm() as vm, vm.qmp() as q:
            set_caps(q, mapped_ram=True)
            r = q.cmd("migrate", {"uri": "unix:/nonexistent"})
            self.assertIn("mapped-ram needs a file: URI", r["error"]["desc"])
            set_caps(q, mapped_ram=False, multifd=True)
            r = q.cmd("migrate", {"uri": "file:" + self.path})
            self.assertIn("multifd", r["error"]["desc"])
            self.assertTrue(q.ok("query-status")["running"])

    def refused(self, message):
        with counter_vm(incoming=None, extra=["-incoming", "file:" + self.path]) as dst:
            self.assertEqual(dst.wait(60), 1)
            self.assertIn(message, dst.stderr())
            self.assertEqual(dst.output(), "")

    def first_data_page(self):
        """Offset of a non-zero page in the pages area (past the 1 MiB-aligned start)."""
        with open(self.path, "rb") as f:
            data = f.read()
        for off in range(1 << 20, len(data), 4096):
            if any(data[off:off + 4096]):
                return off
        self.fail("no page data in the file")

    def test_corrupt_page_refused(self):
        self.save()
        off = self.first_data_page() + 123
        with open(self.path, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x40]))
        self.refused("corrupt")

    def test_corrupt_stream_refused(self):
        self.save(mapped=False)
        with open(self.path, "r+b") as f:
            f.seek(-100, os.SEEK_END)
            b = f.read(1)
            f.seek(-100, os.SEEK_END)
            f.write(bytes([b[0] ^ 0x01]))
        self.refused("incoming migration failed")

    def test_old_stream_version_refused(self):
        """A version 1 stream (CRC-32, before XXH3) is refused by name."""
        self.save(mapped=False)
        with open(self.path, "r+b") as f:
            self.assertEqual(f.read(12), b"VIREOMIG" + (2).to_bytes(4, "little"))
            f.seek(8)
            f.write((1).to_bytes(4, "little"))
        self.refused("migration stream version 1, this vireo reads version 2")

    def test_truncated_refused(self):
        for mapped in (True, False):
            with self.subTest(mapped=mapped):
                self.save(mapped=mapped)
                with open(self.path, "rb") as f:
                    data = f.read()
                for cut in (len(data) // 2, len(data) - 10):
                    with open(self.path, "wb") as f:
                        f.write(data[:cut])
                    self.refused("truncated")


if __name__ == "__main__":
    unittest.main()
