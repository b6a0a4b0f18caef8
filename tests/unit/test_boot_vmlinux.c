/*
 * bzImage payloads unpacked by vireo (hw/boot_vmlinux.c): a synthetic
 * vmlinux ELF compressed with gzip, zstd and LZ4 (legacy frames, as the
 * kernel build writes them) inside a bzImage must be entered at its ELF
 * entry with its segments in place; other payload formats, and guests too
 * small for the kernel's link address, take the decompressor's 64-bit
 * entry; a corrupt payload is refused with a message.
 */
#include <fcntl.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <glib.h>

#include "boot.h"
#include "cpu.h"
#include "machine.h"
#include "memory.h"

#define MiB		(1ull << 20)
#define VM_SIZE		0x2800
#define VM_TEXT		0x1000000	/* LOAD_PHYSICAL_ADDR */
#define VM_DATA		0x1001000
#define SETUP		(5 * 512)
#define STUB		0x200		/* "decompressor" before the payload */
#define INIT_SIZE	0x400000

enum fmt { GZIP, ZSTD, LZ4, XZ };

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v); put32(p + 4, v >> 32); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* ELF64 x86-64: text at 16 MiB, data + bss after it; entry = text. */
static uint8_t *vmlinux_make(void)
{
	uint8_t *b = g_malloc0(VM_SIZE), *ph = b + 64;
	unsigned i;

	memcpy(b, "\x7f" "ELF\x02\x01\x01", 7);
	put16(b + 16, 2);
	put16(b + 18, 62);
	put32(b + 20, 1);
	put64(b + 24, VM_TEXT);
	put64(b + 32, 64);
	put16(b + 52, 64);
	put16(b + 54, 56);
	put16(b + 56, 2);
	put32(ph, 1);
	put64(ph + 8, 0x1000);
	put64(ph + 16, 0xffffffff81000000ull);
	put64(ph + 24, VM_TEXT);
	put64(ph + 32, 0x1000);
	put64(ph + 40, 0x1000);
	ph += 56;
	put32(ph, 1);
	put64(ph + 8, 0x2000);
	put64(ph + 16, 0xffffffff81001000ull);
	put64(ph + 24, VM_DATA);
	put64(ph + 32, 0x800);
	put64(ph + 40, 0x3000);
	for (i = 0x1000; i < VM_SIZE; i++)
		b[i] = (i % 251) + 1;
	return b;
}

/* Compress in the kernel build's layout; returns the payload and its length. */
static uint8_t *payload_make(enum fmt f, const uint8_t *src, size_t len, size_t *plen)
{
	size_t cap = len * 2 + 1024, n = 0;
	uint8_t *out = g_malloc0(cap);
	z_stream z = { 0 };
	int blk;

	switch (f) {
	case GZIP:	/* the stream's trailer carries the size */
		g_assert_cmpint(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
					     Z_DEFAULT_STRATEGY), ==, Z_OK);
		z.next_in = (Bytef *)src;
		z.avail_in = len;
		z.next_out = out;
		z.avail_out = cap;
		g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
		n = z.total_out;
		deflateEnd(&z);
		*plen = n;
		return out;
	case ZSTD: {
		/* With a checksum, as the zstd tool (and so the kernel build) writes it. */
		ZSTD_CCtx *cc = ZSTD_createCCtx();

		ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
		n = ZSTD_compress2(cc, out, cap, src, len);
		ZSTD_freeCCtx(cc);
		g_assert_false(ZSTD_isError(n));
		break;
	}
	case LZ4:
		put32(out, 0x184C2102);
		blk = LZ4_compress_default((const char *)src, (char *)out + 8, len, cap - 12);
		g_assert_cmpint(blk, >, 0);
		put32(out + 4, blk);
		n = 8 + blk;
		break;
	case XZ:
		memcpy(out, "\xfd" "7zXZ", 6);
		n = 64;
		break;
	}
	put32(out + n, len);	/* size_append */
	*plen = n + 4;
	return out;
}

/* A relocatable protocol 2.15 bzImage around the payload. */
static uint8_t *bz_wrap(const uint8_t *payload, size_t plen, size_t *size)
{
	size_t ksize = (STUB + plen + 15) & ~(size_t)15;
	uint8_t *b = g_malloc0(SETUP + ksize);

	b[0x1F1] = 4;
	put32(b + 0x1F4, ksize / 16);
	b[0x200] = 0xEB;
	b[0x201] = 0x268 - 0x202;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, 0x020F);
	b[0x211] = 1;
	put32(b + 0x22C, 0x7FFFFFFF);
	put32(b + 0x230, 0x200000);
	b[0x234] = 1;
	put16(b + 0x236, 1);
	put32(b + 0x238, 2047);
	put32(b + 0x248, STUB);
	put32(b + 0x24C, plen);
	put64(b + 0x258, 0x1000000);
	put32(b + 0x260, INIT_SIZE);
	memset(b + SETUP, 0x90, STUB);
	memcpy(b + SETUP + STUB, payload, plen);
	*size = SETUP + ksize;
	return b;
}

struct tb {
	struct machine m;
	struct cpu_state s;
	char err[512], *kernel, *initrd;
};

static char *tmp_write(const void *data, size_t len)
{
	char *path = g_build_filename(g_get_tmp_dir(), "vireo-vmlinux-XXXXXX", NULL);
	int fd = g_mkstemp(path);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, data, len), ==, (ssize_t)len);
	close(fd);
	return path;
}

static int tb_boot(struct tb *t, uint64_t ram, const uint8_t *img, size_t len, bool initrd)
{
	memset(t, 0, sizeof(*t));
	g_assert_cmpint(guest_mem_init(&t->m.mem, ram, NULL, false, t->err, sizeof(t->err)), ==, 0);
	t->m.nr_vcpus = 1;
	t->kernel = tmp_write(img, len);
	t->m.cfg.kernel = t->kernel;
	t->m.cfg.append = "console=ttyS0";
	if (initrd) {
		t->initrd = tmp_write("initrd", 6);
		t->m.cfg.initrd = t->initrd;
	}
	/* Unpacked bss must come out zeroed. */
	if (ram > VM_DATA + 0x3000)
		memset(gpa_to_hva(&t->m.mem, VM_DATA, 0x3000), 0xEE, 0x3000);
	return boot_load(&t->m, &t->s, t->err, sizeof(t->err));
}

static void tb_destroy(struct tb *t)
{
	unlink(t->kernel);
	g_free(t->kernel);
	if (t->initrd)
		unlink(t->initrd);
	g_free(t->initrd);
	guest_mem_destroy(&t->m.mem);
}

static void check_unpacked(enum fmt f)
{
	uint8_t *vm = vmlinux_make(), *pl, *bz, *ram, *zp;
	size_t plen, size;
	struct tb t;
	unsigned i;

	pl = payload_make(f, vm, VM_SIZE, &plen);
	bz = bz_wrap(pl, plen, &size);
	if (tb_boot(&t, 64 * MiB, bz, size, true))
		g_error("%s", t.err);
	g_assert_cmphex(t.s.rip, ==, VM_TEXT);
	g_assert_cmphex(t.s.gpr[R_RSI], ==, BOOT_PARAMS_ADDR);
	g_assert_cmpuint(t.s.cs.l, ==, 1);
	ram = gpa_to_hva(&t.m.mem, VM_TEXT, 0x4000);
	g_assert_cmpmem(ram, 0x1000, vm + 0x1000, 0x1000);
	g_assert_cmpmem(ram + 0x1000, 0x800, vm + 0x2000, 0x800);
	for (i = 0x1800; i < 0x4000; i++)
		g_assert_cmpuint(ram[i], ==, 0);
	zp = gpa_to_hva(&t.m.mem, BOOT_PARAMS_ADDR, 0x1000);
	g_assert_cmpmem(zp + 0x202, 4, "HdrS", 4);
	/* The initrd stays clear of the kernel and the init_size it needs. */
	g_assert_cmphex(get32(zp + 0x218), >=, VM_TEXT + INIT_SIZE);
	g_assert_cmpuint(get32(zp + 0x21C), ==, 6);
	tb_destroy(&t);
	g_free(bz);
	g_free(pl);
	g_free(vm);
}

static void test_gzip(void) { check_unpacked(GZIP); }
static void test_zstd(void) { check_unpacked(ZSTD); }
static void test_lz4(void) { check_unpacked(LZ4); }

/* Formats without a host library, and small guests: the 64-bit entry. */
static void test_fallbacks(void)
{
	uint8_t *vm = vmlinux_make(), *pl, *bz;
	size_t plen, size;
	struct tb t;

	pl = payload_make(XZ, vm, VM_SIZE, &plen);
	bz = bz_wrap(pl, plen, &size);
	g_assert_cmpint(tb_boot(&t, 64 * MiB, bz, size, false), ==, 0);
	/* Loaded as is at pref_address, entered at the 64-bit entry. */
	g_assert_cmphex(t.s.rip, ==, 0x1000000 + 0x200);
	g_assert_cmpmem(gpa_to_hva(&t.m.mem, 0x1000000 + STUB, 6), 6, pl, 6);
	tb_destroy(&t);
	g_free(bz);
	g_free(pl);

	/* 16 MiB: vmlinux is linked at 16 MiB, the decompressor relocates. */
	pl = payload_make(GZIP, vm, VM_SIZE, &plen);
	bz = bz_wrap(pl, plen, &size);
	g_assert_cmpint(tb_boot(&t, 16 * MiB, bz, size, false), ==, 0);
	g_assert_cmphex(t.s.rip, ==, 0x200000 + 0x200);
	tb_destroy(&t);
	g_free(bz);
	g_free(pl);
	g_free(vm);
}

static void expect_fail(const uint8_t *img, size_t len, const char *what)
{
	struct tb t;

	if (!tb_boot(&t, 64 * MiB, img, len, false))
		g_error("loaded, expected an error containing \"%s\"", what);
	if (!strstr(t.err, t.kernel) || !strstr(t.err, what))
		g_error("error \"%s\" does not name the file or \"%s\"", t.err, what);
	tb_destroy(&t);
}

static void test_bad_payloads(void)
{
	uint8_t *vm = vmlinux_make(), *pl, *bz, junk[VM_SIZE];
	size_t plen, size;

	/* A flipped byte in the deflate stream: the CRC or the stream fails. */
	pl = payload_make(GZIP, vm, VM_SIZE, &plen);
	pl[plen / 2] ^= 0x55;
	bz = bz_wrap(pl, plen, &size);
	expect_fail(bz, size, "corrupt");
	g_free(bz);
	g_free(pl);

	/* An unpacked size larger than guest RAM. */
	pl = payload_make(ZSTD, vm, VM_SIZE, &plen);
	put32(pl + plen - 4, 0xFFFFFFF0);
	bz = bz_wrap(pl, plen, &size);
	expect_fail(bz, size, "unpacked size");
	g_free(bz);
	/* A size that does not match what the stream holds. */
	put32(pl + plen - 4, VM_SIZE + 1);
	bz = bz_wrap(pl, plen, &size);
	expect_fail(bz, size, "corrupt");
	g_free(bz);
	g_free(pl);

	/* zstd's content checksum catches damage the format does not. */
	pl = payload_make(ZSTD, vm, VM_SIZE, &plen);
	pl[plen / 2] ^= 0x55;
	bz = bz_wrap(pl, plen, &size);
	expect_fail(bz, size, "corrupt");
	g_free(bz);
	g_free(pl);

	/* An LZ4 block length past the end of the payload. */
	pl = payload_make(LZ4, vm, VM_SIZE, &plen);
	put32(pl + 4, 0x7FFFFFF0);
	bz = bz_wrap(pl, plen, &size);
	expect_fail(bz, size, "corrupt");
	g_free(bz);
	g_free(pl);

	/* A payload that is not an x86-64 ELF. */
	memset(junk, 0x61, sizeof(junk));
	pl = payload_make(ZSTD, junk, sizeof(junk), &plen);
	bz = bz_wrap(pl, plen, &size);
	expect_fail(bz, size, "x86-64 ELF vmlinux");
	g_free(bz);
	g_free(pl);
	g_free(vm);
}

/* Random damage to the payload and to the ELF inside must not crash. */
static void test_fuzz(void)
{
	GRand *r = g_rand_new_with_seed(99);
	uint8_t *vm = vmlinux_make(), *c = g_malloc(VM_SIZE), *pl, *bz;
	enum fmt f;
	size_t plen, size;
	struct tb t;
	unsigned k;

	for (k = 0; k < 240; k++) {
		f = k % 3;
		memcpy(c, vm, VM_SIZE);
		c[g_rand_int_range(r, 0, 0x100)] = g_rand_int(r);
		pl = payload_make(f, c, VM_SIZE, &plen);
		if (k & 1)
			pl[g_rand_int_range(r, 0, plen)] ^= 1 << g_rand_int_range(r, 0, 8);
		bz = bz_wrap(pl, plen, &size);
		if (tb_boot(&t, 64 * MiB, bz, size, false))
			g_assert_cmpstr(t.err, !=, "");
		tb_destroy(&t);
		g_free(bz);
		g_free(pl);
	}
	g_rand_free(r);
	g_free(c);
	g_free(vm);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/boot_vmlinux/gzip", test_gzip);
	g_test_add_func("/boot_vmlinux/zstd", test_zstd);
	g_test_add_func("/boot_vmlinux/lz4", test_lz4);
	g_test_add_func("/boot_vmlinux/fallbacks", test_fallbacks);
	g_test_add_func("/boot_vmlinux/bad_payloads", test_bad_payloads);
	g_test_add_func("/boot_vmlinux/fuzz", test_fuzz);
	return g_test_run();
}
