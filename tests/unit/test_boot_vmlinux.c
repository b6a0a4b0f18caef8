/*
 * bzImages whose payload vireo unpacks itself (gzip, LZ4 legacy, zstd):
 * the vmlinux inside is loaded at its physical address and entered at its
 * ELF entry; a corrupt or oversized payload is refused with a message; a
 * format vireo leaves to the guest (xz) is loaded as is, entered at +0x200.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <lz4.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "boot.h"
#include "machine.h"

#define ENTRY 0x1000000u
#define KOFF 1024			/* setup_sects = 1 */

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v); put32(p + 4, v >> 32); }

/* An x86-64 ELF with one PT_LOAD of a recognisable pattern at ENTRY. */
static GByteArray *make_vmlinux(void)
{
	GByteArray *b = g_byte_array_new();
	uint8_t h[64 + 56] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	uint8_t body[8192];

	for (unsigned i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7 + 3);
	put16(h + 16, 2);			/* ET_EXEC */
	put16(h + 18, 62);			/* EM_X86_64 */
	put32(h + 20, 1);
	put64(h + 24, ENTRY);			/* e_entry, physical */
	put64(h + 32, 64);			/* e_phoff */
	put16(h + 52, 64);
	put16(h + 54, 56);
	put16(h + 56, 1);
	put32(h + 64, 1);			/* PT_LOAD */
	put32(h + 68, 7);
	put64(h + 72, sizeof(h));		/* p_offset */
	put64(h + 80, 0xffffffff81000000ull);	/* p_vaddr */
	put64(h + 88, ENTRY);			/* p_paddr */
	put64(h + 96, sizeof(body));
	put64(h + 104, sizeof(body) + 4096);	/* memsz: some bss */
	g_byte_array_append(b, h, sizeof(h));
	g_byte_array_append(b, body, sizeof(body));
	return b;
}

static GByteArray *pack(const char *fmt, const GByteArray *in)
{
	GByteArray *out = g_byte_array_new();
	uint8_t size[4];

	if (!strcmp(fmt, "gzip")) {
		z_stream z = { 0 };
		uint8_t buf[65536];

		g_assert_cmpint(deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
		z.next_in = in->data;
		z.avail_in = in->len;
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
		g_byte_array_append(out, buf, z.total_out);
		deflateEnd(&z);
	} else if (!strcmp(fmt, "lz4")) {
		char buf[65536];
		int n = LZ4_compress_default((const char *)in->data, buf, in->len, sizeof(buf));
		uint8_t hdr[8];

		g_assert_cmpint(n, >, 0);
		put32(hdr, 0x184C2102);
		put32(hdr + 4, n);
		g_byte_array_append(out, hdr, 8);
		g_byte_array_append(out, (uint8_t *)buf, n);
	} else if (!strcmp(fmt, "zstd")) {
		uint8_t buf[65536];
		ZSTD_CCtx *cc = ZSTD_createCCtx();
		size_t n;

		/* With a checksum, as the zstd tool (and so the kernel build) writes it. */
		ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
		n = ZSTD_compress2(cc, buf, sizeof(buf), in->data, in->len);
		ZSTD_freeCCtx(cc);
		g_assert_false(ZSTD_isError(n));
		g_byte_array_append(out, buf, n);
	} else {	/* xz: only the magic matters, vireo does not unpack it */
		static const uint8_t xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3, 4, 5, 6 };

		g_byte_array_append(out, xz, sizeof(xz));
	}
	put32(size, in->len);
	g_byte_array_append(out, size, 4);
	return out;
}

/* A bzImage (protocol 2.15) around the payload; returns its path. */
static char *make_bzimage(const GByteArray *payload)
{
	uint8_t *f = g_malloc0(KOFF + 0x400 + payload->len);
	uint32_t ksize = 0x400 + payload->len;
	char *path = g_strdup("/tmp/vireo-bzimage-XXXXXX");
	int fd = g_mkstemp(path);

	f[0x1f1] = 1;					/* setup_sects */
	put32(f + 0x1f4, ksize / 16);			/* syssize, in 16-byte units */
	f[0x201] = 0x268 - 0x202;			/* header through handover_offset */
	memcpy(f + 0x202, "HdrS", 4);
	put16(f + 0x206, 0x020f);
	f[0x211] = 1;					/* LOADED_HIGH */
	put32(f + 0x22c, 0x7fffffff);			/* initrd_addr_max */
	put32(f + 0x230, 0x200000);			/* kernel_alignment */
	f[0x234] = 1;					/* relocatable */
	put16(f + 0x236, 1);				/* XLF_KERNEL_64 */
	put32(f + 0x238, 2048);				/* cmdline_size */
	put32(f + 0x248, 0x400);			/* payload_offset */
	put32(f + 0x24c, payload->len);
	put64(f + 0x258, ENTRY);			/* pref_address */
	put32(f + 0x260, 0x400000);			/* init_size */
	memcpy(f + KOFF + 0x400, payload->data, payload->len);
	g_assert_cmpint(write(fd, f, KOFF + ksize), ==, KOFF + ksize);
	close(fd);
	g_free(f);
	return path;
}

struct rig {
	struct machine m;
	struct cpu_state s;
	char err[512];
};

static int boot(struct rig *r, const char *kernel)
{
	memset(r, 0, sizeof(*r));
	r->m.cfg.smp = 1;
	r->m.nr_vcpus = 1;
	r->m.cfg.kernel = kernel;
	r->m.cfg.append = "console=ttyS0";
	g_assert_cmpint(guest_mem_init(&r->m.mem, 64 << 20, NULL, false, r->err, sizeof(r->err)), ==, 0);
	return boot_load(&r->m, &r->s, r->err, sizeof(r->err));
}

static void test_unpacked(gconstpointer fmt)
{
	GByteArray *elf = make_vmlinux(), *payload = pack(fmt, elf);
	char *path = make_bzimage(payload);
	struct rig r;

	if (boot(&r, path))
		g_error("%s", r.err);
	g_assert_cmphex(r.s.rip, ==, ENTRY);
	g_assert_cmphex(r.s.gpr[R_RSI], ==, BOOT_PARAMS_ADDR);
	/* The segment is in RAM at its physical address, its bss zeroed. */
	g_assert_cmpmem(r.m.mem.base + ENTRY, 8192, elf->data + 120, 8192);
	g_assert_cmpuint(r.m.mem.base[ENTRY + 8192 + 100], ==, 0);
	guest_mem_destroy(&r.m.mem);
	unlink(path);
	g_free(path);
	g_byte_array_unref(payload);
	g_byte_array_unref(elf);
}

static void test_corrupt(gconstpointer fmt)
{
	GByteArray *elf = make_vmlinux(), *payload = pack(fmt, elf);
	char *path;
	struct rig r;

	/*
	 * gzip and zstd carry checksums: damage the middle of the stream.
	 * LZ4's legacy frame has none, so only a broken structure can be
	 * seen: a block size running past the end.
	 */
	if (!strcmp(fmt, "lz4"))
		put32(payload->data + 4, 0x7fffff00);
	else
		for (unsigned i = payload->len / 3; i < payload->len / 3 + 16; i++)
			payload->data[i] ^= 0x5a;
	path = make_bzimage(payload);
	g_assert_cmpint(boot(&r, path), <, 0);
	g_assert_nonnull(strstr(r.err, path));
	g_assert_nonnull(strstr(r.err, "compressed kernel"));
	guest_mem_destroy(&r.m.mem);
	unlink(path);
	g_free(path);
	g_byte_array_unref(payload);
	g_byte_array_unref(elf);
}

static void test_oversized_claim(void)
{
	GByteArray *elf = make_vmlinux(), *payload = pack("gzip", elf);
	char *path;
	struct rig r;

	put32(payload->data + payload->len - 4, 0xfffffff0u);	/* "4 GiB unpacked" */
	path = make_bzimage(payload);
	g_assert_cmpint(boot(&r, path), <, 0);
	g_assert_nonnull(strstr(r.err, "unpacked size"));
	guest_mem_destroy(&r.m.mem);
	unlink(path);
	g_free(path);
	g_byte_array_unref(payload);
	g_byte_array_unref(elf);
}

static void test_left_to_the_guest(void)
{
	GByteArray *elf = make_vmlinux(), *payload = pack("xz", elf);
	char *path = make_bzimage(payload);
	struct rig r;

	if (boot(&r, path))
		g_error("%s", r.err);
	/* Loaded as is at pref_address, entered at the 64-bit entry. */
	g_assert_cmphex(r.s.rip, ==, ENTRY + 0x200);
	g_assert_cmpmem(r.m.mem.base + ENTRY + 0x400, 6, payload->data, 6);
	guest_mem_destroy(&r.m.mem);
	unlink(path);
	g_free(path);
	g_byte_array_unref(payload);
	g_byte_array_unref(elf);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/boot/vmlinux/gzip", "gzip", test_unpacked);
	g_test_add_data_func("/boot/vmlinux/lz4", "lz4", test_unpacked);
	g_test_add_data_func("/boot/vmlinux/zstd", "zstd", test_unpacked);
	g_test_add_data_func("/boot/vmlinux/gzip-corrupt", "gzip", test_corrupt);
	g_test_add_data_func("/boot/vmlinux/lz4-corrupt", "lz4", test_corrupt);
	g_test_add_data_func("/boot/vmlinux/zstd-corrupt", "zstd", test_corrupt);
	g_test_add_func("/boot/vmlinux/oversized", test_oversized_claim);
	g_test_add_func("/boot/vmlinux/xz-left-to-guest", test_left_to_the_guest);
	return g_test_run();
}
