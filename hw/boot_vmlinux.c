/*
 * A bzImage's payload decompressed by the VMM.
 *
 * The protected-mode part of a bzImage is a decompressor wrapped around
 * the real kernel (an ELF vmlinux, compressed).  Run inside the guest, the
 * decompressor touches every page of its output for the first time, which
 * costs a VM exit per page under nested or shadow paging: on such hosts it
 * takes minutes.  For the formats the host has libraries for (gzip, LZ4,
 * zstd) vireo decompresses the payload at host speed and enters vmlinux
 * at startup_64 directly, through the same 64-bit boot protocol; other
 * formats fall back to the guest's own decompressor.
 */
#include <inttypes.h>
#include <lz4.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include <glib.h>

#include "hw/boot_priv.h"

#define LZ4_LEGACY_MAGIC	0x184C2102u
#define PT_LOAD			1
#define EM_X86_64		62
#define MAX_VMLINUX		(1ull << 30)

enum payload_fmt { PAYLOAD_OTHER, PAYLOAD_GZIP, PAYLOAD_LZ4, PAYLOAD_ZSTD };

static enum payload_fmt payload_format(const uint8_t *p, uint64_t len)
{
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return PAYLOAD_GZIP;
	if (len >= 4 && p[0] == 0x02 && p[1] == 0x21 && p[2] == 0x4c && p[3] == 0x18)
		return PAYLOAD_LZ4;
	if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		return PAYLOAD_ZSTD;
	return PAYLOAD_OTHER;
}

static uint64_t gunzip(const uint8_t *src, uint64_t len, uint8_t *dst, uint64_t cap)
{
	z_stream z = { .next_in = (Bytef *)src, .avail_in = len, .next_out = dst,
		       .avail_out = cap };
	uint64_t out = 0;

	if (len > UINT32_MAX || cap > UINT32_MAX || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return 0;
	if (inflate(&z, Z_FINISH) == Z_STREAM_END)
		out = z.total_out;
	inflateEnd(&z);
	return out;
}

/* LZ4 "legacy" frames: magic, then blocks of (le32 compressed size, data). */
static uint64_t unlz4(const uint8_t *src, uint64_t len, uint8_t *dst, uint64_t cap)
{
	uint64_t in = 0, out = 0;

	while (in + 4 <= len) {
		uint32_t n = src[in] | src[in + 1] << 8 | src[in + 2] << 16 | (uint32_t)src[in + 3] << 24;
		int got;

		in += 4;
		if (n == LZ4_LEGACY_MAGIC)
			continue;
		if (n > len - in || n > INT32_MAX)
			return 0;
		got = LZ4_decompress_safe((const char *)src + in, (char *)dst + out, n,
					  (int)MIN(cap - out, (uint64_t)INT32_MAX));
		if (got < 0)
			return 0;
		in += n;
		out += got;
	}
	return out;
}

static uint64_t unzstd(const uint8_t *src, uint64_t len, uint8_t *dst, uint64_t cap)
{
	size_t n = ZSTD_decompress(dst, cap, src, len);

	return ZSTD_isError(n) ? 0 : n;
}

/*
 * Returns the decompressed vmlinux (g_free it) and its size, or NULL with
 * *ret = 0 when the payload is in a format left to the guest, or NULL with
 * *ret < 0 (message set) when it is broken.
 */
static uint8_t *payload_decompress(struct boot_ctx *c, uint64_t koff, uint64_t *size, int *ret)
{
	uint32_t poff, plen, usize;
	const uint8_t *p;
	enum payload_fmt fmt;
	uint8_t *out;
	uint64_t got = 0;

	*ret = 0;
	if (!boot_rd32(c, 0x248, &poff) || !boot_rd32(c, 0x24C, &plen) || plen < 8 ||
	    !boot_in_file(c, koff + poff, plen))
		return NULL;
	p = c->buf + koff + poff;
	fmt = payload_format(p, plen);
	if (fmt == PAYLOAD_OTHER)
		return NULL;
	/*
	 * The payload ends with the unpacked size as a little-endian u32: the
	 * gzip trailer's ISIZE, or for the other formats a copy the kernel
	 * build appends after the stream.
	 */
	usize = p[plen - 4] | p[plen - 3] << 8 | p[plen - 2] << 16 | (uint32_t)p[plen - 1] << 24;
	if (!usize || usize > MAX_VMLINUX || usize > c->mem->ram_size) {
		*ret = boot_fail(c, "the compressed kernel claims an unpacked size of %u bytes", usize);
		return NULL;
	}
	out = g_try_malloc(usize);
	if (!out) {
		*ret = boot_fail(c, "cannot allocate %u bytes to unpack the kernel", usize);
		return NULL;
	}
	switch (fmt) {
	case PAYLOAD_GZIP:
		/* The size is part of the gzip stream, which inflate checks. */
		got = gunzip(p, plen, out, usize);
		break;
	case PAYLOAD_LZ4:
		got = unlz4(p + 4, plen - 8, out, usize);
		break;
	case PAYLOAD_ZSTD:
		got = unzstd(p, plen - 4, out, usize);
		break;
	case PAYLOAD_OTHER:
		break;
	}
	if (got != usize) {
		g_free(out);
		*ret = boot_fail(c, "the compressed kernel is corrupt (unpacked %" PRIu64
				 " of %u bytes)", got, usize);
		return NULL;
	}
	*size = usize;
	return out;
}

/*
 * vmlinux runs where it is linked (LOAD_PHYSICAL_ADDR, 16 MiB by default);
 * a guest with too little RAM for that boots through the decompressor,
 * which relocates the kernel.
 */
static bool vmlinux_fits(const struct boot_ctx *c, const struct boot_elf *e)
{
	struct boot_phdr ph;
	unsigned i;

	for (i = 0; i < e->phnum; i++) {
		boot_elf_phdr(c, e, i, &ph);
		if (ph.type != PT_LOAD || !ph.memsz)
			continue;
		if (ph.paddr < BOOT_LOW_END || !boot_is_ram(c, ph.paddr, ph.memsz))
			return false;
	}
	return true;
}

int boot_vmlinux_load(struct boot_ctx *c, uint64_t koff, uint64_t *entry, uint64_t *lo,
		      uint64_t *hi, bool *loaded)
{
	struct boot_ctx vc;
	struct boot_elf e;
	uint64_t size;
	uint8_t *vmlinux;
	int ret;

	*loaded = false;
	vmlinux = payload_decompress(c, koff, &size, &ret);
	if (!vmlinux)
		return ret;
	/* The ELF loader reads from the context's buffer; messages still name -kernel. */
	vc = *c;
	vc.buf = vmlinux;
	vc.size = size;
	ret = boot_elf_parse(&vc, &e);
	if (ret == 0 || (ret > 0 && (!e.is64 || e.machine != EM_X86_64)))
		ret = boot_fail(c, "the compressed kernel does not unpack to an x86-64 ELF vmlinux");
	if (ret > 0 && !vmlinux_fits(&vc, &e)) {
		ret = 0;
		goto out;
	}
	if (ret > 0)
		ret = boot_elf_load(&vc, &e, e.entry, true, entry, lo, hi);
	*loaded = ret == 0;
out:
	g_free(vmlinux);
	return ret;
}
