"""A saved stream with a hostile value and a checksum that matches again
(as an attacker who edits the file would make it), loaded by `vireo
-incoming`: the destination exits with status 1 and a message naming the
section and the field, never crashes and never starts the guest.  The
values are ones the unit fuzzer (tests/unit/test_migration_fuzz.c) found
crashing or overflowing a loader before it refused them."""
import ctypes
import os
import shutil
import struct
import tempfile
import unittest

from tests.integration.migtest import counter_vm, wait_count, wait_migration

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

TAG_LAYOUT, TAG_PAGE, TAG_SECTION, TAG_END = 0x01, 0x02, 0x03, 0xEE


def fields(data):
    """(section, instance, field) -> offset of its value, for a plain
    stream (migration/stream.h); and the offset of the END tag."""
    out, pos = {}, 12
    while True:
        tag = data[pos]
        pos += 1
        if tag == TAG_END:
            return out, pos - 1
        if tag == TAG_LAYOUT:
            pos += 4 + 16 * struct.unpack_from("<I", data, pos)[0]
        elif tag == TAG_PAGE:
            addr = struct.unpack_from("<Q", data, pos)[0]
            pos += 8 + (0 if addr & 1 else 4096)
        elif tag == TAG_SECTION:
            nl = data[pos]
            name = data[pos + 1:pos + 1 + nl].decode()
            inst, _, plen = struct.unpack_from("<III", data, pos + 1 + nl)
            pos += 1 + nl + 12
            end = pos + plen
            seen = {}
            while pos < end:
                fl = data[pos]
                fname = data[pos + 1:pos + 1 + fl].decode()
                size = struct.unpack_from("<I", data, pos + 1 + fl)[0]
                nth = seen.get(fname, 0)
                seen[fname] = nth + 1
                out[(name, inst, fname, nth)] = (pos + 1 + fl + 4, size)
                pos += 1 + fl + 4 + size
        else:
            raise ValueError("record 0x%02x at %d" % (tag, pos - 1))


class HostileFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vireo-mighostile-",
                                   dir=os.environ.get("TMPDIR", "/var/tmp"))
        cls.saved = os.path.join(cls.dir, "vm.state")
        with counter_vm(accel="tcg") as src, src.qmp() as q:
            wait_count(src, 5)
            q.ok("migrate", {"uri": "exec:cat > " + cls.saved})
            info = wait_migration(q)
            assert info["status"] == "completed", info
        with open(cls.saved, "rb") as f:
            cls.data = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def load(self, key, value, want):
        data = bytearray(self.data)
        where, end = fields(data)
        off, size = where[key]
        data[off:off + size] = value.to_bytes(size, "little")
        data[end + 1:end + 9] = struct.pack("<Q", _xxh.XXH3_64bits(bytes(data[:end + 1]),
                                                                   end + 1))
        path = os.path.join(self.dir, "hostile.state")
        with open(path, "wb") as f:
            f.write(data)
        with counter_vm(accel="tcg", extra=["-incoming", "file:" + path]) as dst:
            self.assertEqual(dst.wait(60), 1, dst.stderr())
            err = dst.stderr()
            self.assertIn("incoming migration failed: section '%s'" % key[0], err)
            self.assertIn(want, err)
            self.assertNotIn("checksum", err)
            self.assertNotIn("Sanitizer", err)
            self.assertEqual(dst.output(), "")

    def test_unchanged_loads(self):
        """The parser and checksum here are right: unchanged, it loads."""
        path = os.path.join(self.dir, "same.state")
        data = bytearray(self.data)
        _, end = fields(data)
        self.assertEqual(struct.unpack_from("<Q", data, end + 1)[0],
                         _xxh.XXH3_64bits(bytes(data[:end + 1]), end + 1))
        with open(path, "wb") as f:
            f.write(data)
        with counter_vm(accel="tcg", extra=["-incoming", "file:" + path]) as dst, dst.qmp() as q:
            self.assertEqual(wait_migration(q)["status"], "completed")

    def test_rtc_offset(self):
        self.load(("mc146818rtc", 0, "offset-ns", 0), (1 << 63) - 1,
                  "offset-ns 9223372036854775807 is more than 2^62 ns")

    def test_pit_running_without_count(self):
        self.load(("tcg-vm", 0, "pit.running", 1), 1, "PIT channel 1: running without a count")
