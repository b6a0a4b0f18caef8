/*
 * Structure-aware fuzzing of qcow2 images: a corpus of images qemu-img
 * made (backing file, zlib and zstd compressed clusters, extended L2,
 * internal snapshots, the dirty bit, preallocated metadata, 512-byte and
 * 2 MiB clusters, 1- to 64-bit refcounts, version 2) is parsed, and each
 * iteration changes a few header fields, header extensions, L1/L2/refcount
 * entries, compressed descriptors, snapshot entries or the backing name to
 * values that point at metadata, past the file, off alignment or to
 * extremes, shares clusters or moves tables far into a sparse file.  The image is
 * then opened and read, written, discarded, zeroed and flushed through the
 * block API.  Whatever the image, nothing may crash or hang; when qemu-img
 * check finds the mutated image consistent, every request must succeed,
 * reads must return what QEMU reads plus what was written since, and
 * qemu-img check must still find it consistent afterwards (no write landed
 * on metadata).
 *
 * VIREO_QCOW2_FUZZ_ITERS and VIREO_QCOW2_FUZZ_SEED run longer campaigns
 * (the default is a fixed, bounded run); VIREO_QCOW2_FUZZ_VERBOSE prints
 * each iteration's seed first, to replay a crash or a hang, and
 * VIREO_QCOW2_FUZZ_KEEP=file keeps a copy of the (last) mutated image.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "test_block_util.h"

#define MAXSIZE (8u << 20)	/* virtual size up to which data is compared */

struct img {
	const char *name;
	uint8_t *buf;
	gsize len;
	unsigned cb;
	uint64_t cs, size, l1_off, rt_off, snap_off;
	uint32_t l1_size, rt_clusters, hlen, nb_snap, order;
	bool ro_only;
	GArray *meta;		/* host offsets of metadata clusters */
	GArray *l2e;		/* file positions of non-zero L2 entries */
	GArray *comp;		/* file positions of compressed L2 entries */
	GArray *guest;		/* guest offsets those entries map */
	GArray *rbs;		/* refcount block offsets */
	GArray *ext;		/* file positions of header extensions */
	GArray *snap;		/* file positions of snapshot table entries */
};

static char *corpus_dir;
static struct img corpus[16];
static unsigned ncorpus;
static bool verbose;

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void add64(GArray *a, uint64_t v)
{
	g_array_append_val(a, v);
}

static uint64_t pick(GArray *a, uint32_t r)
{
	return g_array_index(a, uint64_t, r % a->len);
}

/* Where everything is in a valid image (qemu-img made it). */
static void parse(struct img *m)
{
	const uint8_t *h = m->buf;
	uint64_t l2n;

	m->cb = be32(h + 20);
	m->cs = 1ull << m->cb;
	m->size = tb_get64(h + 24);
	m->l1_size = be32(h + 36);
	m->l1_off = tb_get64(h + 40);
	m->rt_off = tb_get64(h + 48);
	m->rt_clusters = be32(h + 56);
	m->nb_snap = be32(h + 60);
	m->snap_off = tb_get64(h + 64);
	m->order = be32(h + 96);
	m->hlen = be32(h + 100);
	l2n = m->cs / 8;
	m->meta = g_array_new(false, false, 8);
	m->l2e = g_array_new(false, false, 8);
	m->comp = g_array_new(false, false, 8);
	m->guest = g_array_new(false, false, 8);
	m->rbs = g_array_new(false, false, 8);
	m->ext = g_array_new(false, false, 8);
	m->snap = g_array_new(false, false, 8);
	add64(m->meta, 0);
	add64(m->meta, m->l1_off);
	add64(m->meta, m->rt_off);
	for (uint64_t p = m->hlen; p + 8 <= m->cs && p + 8 <= m->len;) {
		uint32_t type = be32(h + p), len = be32(h + p + 4);

		add64(m->ext, p);
		if (!type)
			break;
		p += 8 + ((len + 7ull) & ~7ull);
	}
	for (uint32_t i = 0; i < m->l1_size; i++) {
		uint64_t l2 = tb_get64(h + m->l1_off + 8ull * i) & 0x00fffffffffffe00ull;

		if (!l2 || l2 + m->cs > m->len)
			continue;
		add64(m->meta, l2);
		for (uint64_t j = 0; j < l2n; j++) {
			uint64_t e = tb_get64(h + l2 + 8 * j);

			if (!e)
				continue;
			add64(m->l2e, l2 + 8 * j);
			add64(m->guest, ((uint64_t)i * l2n + j) * m->cs);
			if (e & (1ull << 62))
				add64(m->comp, l2 + 8 * j);
		}
	}
	for (uint64_t i = 0; i < (uint64_t)m->rt_clusters * m->cs / 8; i++) {
		uint64_t rb = tb_get64(h + m->rt_off + 8 * i);

		if (rb && rb + m->cs <= m->len) {
			add64(m->rbs, rb);
			add64(m->meta, rb);
		}
	}
	if (m->nb_snap) {
		uint64_t p = m->snap_off;

		add64(m->meta, m->snap_off);
		for (uint32_t i = 0; i < m->nb_snap && p + 40 <= m->len; i++) {
			add64(m->snap, p);
			add64(m->meta, tb_get64(h + p));
			p += 40 + be32(h + p + 36) + (h[p + 12] << 8 | h[p + 13]) +
			     (h[p + 14] << 8 | h[p + 15]);
			p = (p + 7) & ~7ull;
		}
	}
}

static void corpus_add(const char *name, bool ro_only, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void corpus_add(const char *name, bool ro_only, const char *fmt, ...)
{
	struct img *m = &corpus[ncorpus];
	char *cmd, *path = g_build_filename(corpus_dir, name, NULL), *out = NULL;
	va_list ap;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* Every command runs in the corpus directory; %s in them is not used. */
	if (tb_sh(&out, "cd %s && %s", corpus_dir, cmd) != 0) {
		/* an option this qemu-img lacks: the image is just not in the corpus */
		g_test_message("corpus: %s not made: %s", name, out);
		goto out;
	}
	m->name = name;
	m->ro_only = ro_only;
	g_assert_true(g_file_get_contents(path, (char **)&m->buf, &m->len, NULL));
	parse(m);
	ncorpus++;
out:
	g_free(out);
	g_free(cmd);
	g_free(path);
}

#define QIO "qemu-io -f qcow2 "

static void corpus_init(void)
{
	corpus_dir = tb_tmpdir();
	corpus_add("plain.qcow2", false,
		   "qemu-img create -q -f qcow2 -o cluster_size=4096 plain.qcow2 4M && "
		   QIO "-c 'write -P 0xab 0 64k' -c 'write -P 0xcd 1M 8k' -c 'write -z 2M 4k' "
		   "-c 'write -c -P 0x77 3M 4k' plain.qcow2 >/dev/null");
	corpus_add("back.qcow2", false,
		   "qemu-img create -q -f qcow2 base.qcow2 4M && "
		   QIO "-c 'write -P 0x11 0 1M' -c 'write -P 0x22 3M 1M' base.qcow2 >/dev/null && "
		   "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 back.qcow2 4M && "
		   QIO "-c 'write -P 0x33 64k 64k' -c 'write -z 3M 64k' -c 'write -P 0x44 200k 4k' "
		   "back.qcow2 >/dev/null");
	corpus_add("zlib.qcow2", false,
		   "head -c 2M /dev/urandom > r.raw && "
		   QIO "-f raw -c 'write -P 0x5a 2M 1M' -c 'write -P 0 3M 512k' r.raw >/dev/null "
		   "2>&1; truncate -s 4M r.raw && "
		   "qemu-img convert -c -O qcow2 -o cluster_size=2048 -f raw r.raw zlib.qcow2");
	corpus_add("zstd.qcow2", false,
		   "qemu-img convert -c -O qcow2 -o compression_type=zstd -f raw r.raw zstd.qcow2");
	corpus_add("extl2.qcow2", true,
		   "qemu-img create -q -f qcow2 -o extended_l2=on extl2.qcow2 4M && "
		   QIO "-c 'write -P 0x66 0 100k' extl2.qcow2 >/dev/null");
	corpus_add("snap.qcow2", true,
		   "qemu-img create -q -f qcow2 snap.qcow2 4M && "
		   QIO "-c 'write -P 0x01 0 128k' snap.qcow2 >/dev/null && "
		   "qemu-img snapshot -c s1 snap.qcow2 && "
		   QIO "-c 'write -P 0x02 64k 128k' snap.qcow2 >/dev/null && "
		   "qemu-img snapshot -c second-snapshot snap.qcow2");
	corpus_add("dirty.qcow2", false,
		   "qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M && "
		   "(" QIO "-c 'write -P 0x99 0 300k' -c 'write -P 0x98 2M 64k' -c abort "
		   "dirty.qcow2 >/dev/null 2>&1; true)");
	corpus_add("c512.qcow2", false,
		   "qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 c512.qcow2 1M && "
		   QIO "-c 'write -P 0x21 0 20k' -c 'write -P 0x22 500k 3k' -c 'write -z 8k 2k' "
		   "c512.qcow2 >/dev/null");
	corpus_add("c2m.qcow2", false,
		   "qemu-img create -q -f qcow2 -o cluster_size=2M,refcount_bits=64 c2m.qcow2 8M && "
		   QIO "-c 'write -P 0x31 0 4k' -c 'write -P 0x32 6M 4k' c2m.qcow2 >/dev/null");
	corpus_add("r8.qcow2", false,
		   "qemu-img create -q -f qcow2 -o refcount_bits=8,cluster_size=16k r8.qcow2 6M && "
		   QIO "-c 'write -P 0x41 0 100k' -c 'write -P 0x42 5M 16k' "
		   "-c 'write -c -P 0x43 1M 16k' r8.qcow2 >/dev/null");
	corpus_add("prealloc.qcow2", false,
		   "qemu-img create -q -f qcow2 -o preallocation=metadata,cluster_size=4096 "
		   "prealloc.qcow2 2M && "
		   QIO "-c 'write -P 0x61 0 8k' -c 'write -z 64k 16k' -c 'write -P 0x62 1M 4k' "
		   "prealloc.qcow2 >/dev/null");
	/* a refcount table of 64 blocks of 32 KiB each: writes past 2 MiB grow it */
	corpus_add("c512r64.qcow2", false,
		   "qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 "
		   "c512r64.qcow2 4M && "
		   QIO "-c 'write -P 0x71 0 600k' -c 'write -z 700k 8k' -c 'write -P 0x72 1M 100k' "
		   "c512r64.qcow2 >/dev/null");
	corpus_add("v2.qcow2", true,
		   "qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 2M && "
		   QIO "-c 'write -P 0x51 0 70k' v2.qcow2 >/dev/null");
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static uint64_t rnd64(uint32_t *s)
{
	return (uint64_t)rnd(s) << 32 | rnd(s);
}

/* A value an offset or size field should refuse or survive. */
static uint64_t interesting(const struct img *m, uint32_t *s)
{
	uint64_t cs = m->cs, v;

	switch (rnd(s) % 8) {
	case 0: {
		static const uint64_t k[] = { 0, 1, 7, 8, 511, 512, 0x7fffffff, 0x80000000,
					      0xffffffff, 1ull << 40, 1ull << 55, 1ull << 56,
					      1ull << 62, 1ull << 63, ~0ull, ~0ull >> 1 };

		return k[rnd(s) % G_N_ELEMENTS(k)];
	}
	case 1:
		return rnd64(s) >> (rnd(s) % 64);
	case 2:
		v = m->len + (int64_t)(rnd(s) % 5 - 2) * cs;
		break;
	case 3:
		v = (rnd(s) % 8) * cs;
		break;
	default:
		v = pick(m->meta, rnd(s));
		break;
	}
	switch (rnd(s) % 6) {
	case 0:
		return v + 512;
	case 1:
		return v | 1ull << 63;	/* COPIED */
	case 2:
		return v - cs;
	default:
		return v;
	}
}

/* A compressed descriptor: into metadata, past the end, or huge. */
static uint64_t compressed_desc(const struct img *m, uint32_t *s)
{
	unsigned shift = 62 - (m->cb - 8);
	uint64_t nmask = (1ull << (m->cb - 8)) - 1;
	uint64_t off = rnd(s) % 2 ? pick(m->meta, rnd(s)) + (rnd(s) % 3) * 200 :
		       interesting(m, s) & ((1ull << shift) - 1);
	uint64_t n = rnd(s) % 2 ? nmask : rnd(s) & nmask;

	return 1ull << 62 | n << shift | off;
}

static void mutate_header(struct img *m, uint8_t *b, uint32_t *s)
{
	static const struct { unsigned off, width; } f[] = {
		{ 4, 4 }, { 8, 8 }, { 16, 4 }, { 20, 4 }, { 24, 8 }, { 32, 4 }, { 36, 4 },
		{ 40, 8 }, { 48, 8 }, { 56, 4 }, { 60, 4 }, { 64, 8 }, { 72, 8 }, { 80, 8 },
		{ 88, 8 }, { 96, 4 }, { 100, 4 }, { 104, 1 },
	};
	unsigned i = rnd(s) % G_N_ELEMENTS(f);
	uint64_t v = interesting(m, s);

	if (f[i].off == 20 || f[i].off == 96 || f[i].off == 104 || f[i].off == 4)
		v = rnd(s) % 3 ? rnd(s) % 40 : v;	/* small fields: near the range */
	else if (f[i].off >= 72 && f[i].off <= 88)
		v = rnd(s) % 2 ? 1ull << (rnd(s) % 64) : v;	/* feature bits */
	if (f[i].off == 36 || f[i].off == 56 || f[i].off == 60)
		v = rnd(s) % 2 ? v : rnd(s) % 5 + (f[i].off == 36 ? m->l1_size : 0);
	if (f[i].width == 8)
		tb_put64(b + f[i].off, v);
	else if (f[i].width == 4)
		tb_put32(b + f[i].off, v);
	else
		b[f[i].off] = v;
}

/* Header extensions: an existing one's type or length, or a new one. */
static void mutate_ext(struct img *m, uint8_t *b, uint32_t *s)
{
	static const uint32_t types[] = { 0, 0xe2792aca, 0x6803f857, 0x0537be77,
					  0x23852875, 0x44415441, 0x4c554b53, 0x12345678 };
	uint64_t p = m->ext->len ? pick(m->ext, rnd(s)) : m->hlen;

	if (p + 8 > m->cs)
		return;
	switch (rnd(s) % 3) {
	case 0:
		tb_put32(b + p, types[rnd(s) % G_N_ELEMENTS(types)]);
		break;
	case 1:
		tb_put32(b + p + 4, rnd(s) % 2 ? rnd(s) % 64 : (uint32_t)interesting(m, s));
		break;
	default:
		/* a new extension where the list ended, its data random */
		tb_put32(b + p, types[rnd(s) % G_N_ELEMENTS(types)]);
		tb_put32(b + p + 4, rnd(s) % 48);
		for (unsigned k = 8; k < 56 && p + k + 8 <= m->cs; k += 8)
			tb_put64(b + p + k, rnd(s) % 2 ? interesting(m, s) : 0);
		break;
	}
}

static void mutate_backing(struct img *m, uint8_t *b, uint32_t *s)
{
	static const char *const names[] = { "v.qcow2", "base.qcow2", "plain.qcow2",
					     "missing.qcow2", "/dev/null", "..", "" };
	const char *n = names[rnd(s) % G_N_ELEMENTS(names)];
	uint64_t off = rnd(s) % 2 ? m->cs - 64 : 0x200;

	if (off + 64 > m->len || off < m->hlen)
		off = m->hlen + 256;
	memset(b + off, 0, 64);
	memcpy(b + off, n, strlen(n));
	tb_put64(b + 8, rnd(s) % 4 ? off : interesting(m, s));
	tb_put32(b + 16, rnd(s) % 4 ? strlen(n) : (uint32_t)interesting(m, s));
	if (rnd(s) % 2) {
		/* and a backing format extension saying what it is */
		const char *f = rnd(s) % 2 ? "raw" : "qcow2";

		tb_put32(b + m->hlen, 0xe2792aca);
		tb_put32(b + m->hlen + 4, strlen(f));
		memset(b + m->hlen + 8, 0, 8);
		memcpy(b + m->hlen + 8, f, strlen(f));
		tb_put32(b + m->hlen + 16, 0);
		tb_put32(b + m->hlen + 20, 0);
	}
}

static void mutate_snapshot(struct img *m, uint8_t *b, uint32_t *s)
{
	uint64_t p;

	if (!m->snap->len) {
		tb_put32(b + 60, 1 + rnd(s) % 3);
		tb_put64(b + 64, interesting(m, s));
		return;
	}
	p = pick(m->snap, rnd(s));
	switch (rnd(s) % 4) {
	case 0:
		tb_put64(b + p, interesting(m, s));
		break;
	case 1:
		tb_put32(b + p + 8, rnd(s) % 2 ? 0xffffffff : rnd(s) % 4096);
		break;
	case 2:
		put16(b + p + 12 + 2 * (rnd(s) % 2), rnd(s));
		break;
	default:
		tb_put32(b + p + 36, rnd(s) % 2 ? 0xffffffff : rnd(s) % 1024);
		break;
	}
}

/* Add one to the refcount of host cluster c, in the image's width. */
static bool rc_bump(const struct img *m, uint8_t *b, uint64_t c)
{
	unsigned bits = 1u << m->order;
	uint64_t rbe = m->cs * 8 / bits, rb, bit, v = 0;

	if (bits < 2 || c / rbe >= (uint64_t)m->rt_clusters * m->cs / 8)
		return false;
	rb = tb_get64(b + m->rt_off + 8 * (c / rbe));
	bit = (c % rbe) * bits;
	if (!rb || rb + m->cs > m->len)
		return false;
	if (bits < 8) {
		v = (b[rb + bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
		if (v + 1 >= 1u << bits)
			return false;
		b[rb + bit / 8] += 1u << (bit % 8);
		return true;
	}
	/* big-endian, bits / 8 bytes: add one at the last byte with carry */
	for (int k = bits / 8 - 1; k >= 0; k--)
		if (++b[rb + bit / 8 + k])
			return true;
	return false;
}

/*
 * What QEMU leaves after a snapshot is deleted badly, and what it still
 * calls consistent (a leak): a cluster or L2 table with refcount 2 and no
 * COPIED flag.  A write must copy it, not write in place.
 */
static void share_cluster(const struct img *m, uint8_t *b, uint32_t *s)
{
	uint64_t p, e;

	if (rnd(s) % 2 && m->l2e->len) {
		p = pick(m->l2e, rnd(s));
		e = tb_get64(b + p);
		if (!(e & 1ull << 63) || (e & 1ull << 62))
			return;
		if (rc_bump(m, b, (e & 0x00fffffffffffe00ull) >> m->cb))
			tb_put64(b + p, e & ~(1ull << 63));
	} else {
		p = m->l1_off + 8ull * (rnd(s) % m->l1_size);
		e = tb_get64(b + p);
		if (!(e & 1ull << 63))
			return;
		if (rc_bump(m, b, (e & 0x00fffffffffffe00ull) >> m->cb))
			tb_put64(b + p, e & ~(1ull << 63));
	}
}

/*
 * None (one run in six: the requests alone, checked against QEMU) to four
 * changes; returns the (possibly shorter) length.
 */
static gsize mutate(struct img *m, uint8_t *b, gsize len, uint32_t *s)
{
	unsigned n = rnd(s) % 6 ? 1 + rnd(s) % 4 : 0;

	for (unsigned k = 0; k < n; k++) {
		uint64_t p;

		switch (rnd(s) % 16) {
		case 0:
		case 1:
			mutate_header(m, b, s);
			break;
		case 2:
			mutate_ext(m, b, s);
			break;
		case 3:
			tb_put64(b + m->l1_off + 8ull * (rnd(s) % m->l1_size), interesting(m, s));
			break;
		case 4:
		case 5:
			if (!m->l2e->len)
				break;
			p = pick(m->l2e, rnd(s));
			tb_put64(b + p, rnd(s) % 3 ? interesting(m, s) :
				     tb_get64(b + p) ^ 1ull << (rnd(s) % 64));
			break;
		case 6:
			if (m->comp->len)
				tb_put64(b + pick(m->comp, rnd(s)), compressed_desc(m, s));
			else if (m->l2e->len)
				tb_put64(b + pick(m->l2e, rnd(s)), compressed_desc(m, s));
			break;
		case 7:
			tb_put64(b + m->rt_off + 8 * (rnd(s) % (m->rbs->len + 1)), interesting(m, s));
			break;
		case 8:
			if (m->rbs->len) {
				/* a refcount: 0, 1, 2 or all ones, in the image's width */
				uint64_t rb = pick(m->rbs, rnd(s));
				unsigned bits = 1u << m->order, i = rnd(s) % 64;
				uint64_t bit = (uint64_t)i * bits;

				for (unsigned k2 = 0; k2 < bits; k2++, bit++) {
					uint8_t mask = 0x80 >> (bit % 8);

					if (bits < 8)
						mask = 1u << (bit % 8);
					if (rnd(s) % 2)
						b[rb + bit / 8] |= mask;
					else
						b[rb + bit / 8] &= ~mask;
				}
			}
			break;
		case 9:
			mutate_backing(m, b, s);
			break;
		case 10:
			mutate_snapshot(m, b, s);
			break;
		case 11:
			/* a bit flip in some metadata cluster */
			p = pick(m->meta, rnd(s)) + rnd(s) % m->cs;
			if (p < len)
				b[p] ^= 1u << (rnd(s) % 8);
			break;
		case 12:
			/* cut the file short */
			p = (rnd(s) % 4 + 1) * m->cs;
			len = len > 2 * p ? len - p : len / 2;
			break;
		case 13:
			/* dirty bit: writable opens rebuild the refcounts */
			b[79] |= 1;
			break;
		default:
			share_cluster(m, b, s);
			break;
		}
	}
	return len;
}

struct model {
	uint8_t *data;		/* guest content, as QEMU reads it */
	uint8_t *known;		/* per byte: 0 after a discard (content undefined) */
	uint64_t size;
};

/* QEMU's view of the image's content; false if it cannot read it. */
static bool model_load(const char *path, struct model *md, uint64_t size)
{
	char *raw = g_strconcat(path, ".raw", NULL), *out = NULL;
	gchar *data;
	gsize len;
	bool ok;

	ok = tb_sh(&out, "timeout -s KILL 20 qemu-img convert -f qcow2 -O raw '%s' '%s'",
		   path, raw) == 0 &&
	     g_file_get_contents(raw, &data, &len, NULL);
	if (ok) {
		g_assert_cmpuint(len, ==, size);
		md->data = (uint8_t *)data;
		md->known = g_malloc(size);
		memset(md->known, 1, size);
		md->size = size;
	}
	g_unlink(raw);
	g_free(raw);
	g_free(out);
	return ok;
}

static void model_free(struct model *md)
{
	g_free(md->data);
	g_free(md->known);
	memset(md, 0, sizeof(*md));
}

static void model_compare(const struct model *md, uint64_t off, const uint8_t *got,
			  uint64_t len, const char *what)
{
	for (uint64_t i = 0; i < len; i++) {
		if (md->known[off + i] && md->data[off + i] != got[i]) {
			g_test_message("%s: byte %#llx is %#x, QEMU reads %#x", what,
				       (unsigned long long)(off + i), got[i], md->data[off + i]);
			g_assert_not_reached();
		}
	}
}

/*
 * qemu-img check: 0 clean, 3 leaks only (both consistent), 2 corrupt.
 * Some hostile images keep it busy for minutes: those are not consistent.
 */
static bool consistent(const char *path)
{
	char *out = NULL;
	int r = tb_sh(&out, "timeout -s KILL 10 qemu-img check -f qcow2 '%s'", path);

	g_free(out);
	return r == 0 || r == 3;
}

/*
 * qemu-img check counts references, so a data cluster that is also an
 * L2 table (refcount 2, referenced twice) passes it; vireo refuses to
 * serve it.  Such an image is not consistent for the model.  Only called
 * on images qemu-img check accepted, but every field is checked anyway.
 */
static bool data_overlaps_meta(const uint8_t *b, gsize len)
{
	unsigned cb = be32(b + 20);
	uint64_t cs, l1 = tb_get64(b + 40), rt = tb_get64(b + 48), nl1 = be32(b + 36);
	uint64_t nrt = (uint64_t)be32(b + 56);
	GHashTable *meta;
	bool bad = false;

	if (cb < 9 || cb > 21)
		return true;
	cs = 1ull << cb;
	nrt = nrt * cs / 8;
	if (l1 > len || nl1 * 8 > len - l1 || rt > len || nrt * 8 > len - rt)
		return true;
	meta = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
#define MARK(off, n) do {							\
		for (uint64_t c_ = (off) >> cb; c_ <= ((off) + (n) - 1) >> cb; c_++) {	\
			uint64_t *k_ = g_new(uint64_t, 1);			\
			*k_ = c_;						\
			g_hash_table_add(meta, k_);				\
		}								\
	} while (0)
	MARK(0, cs);
	MARK(rt, nrt * 8);
	if (nl1)
		MARK(l1, nl1 * 8);
	for (uint64_t i = 0; i < nrt; i++)
		if (tb_get64(b + rt + 8 * i))
			MARK(tb_get64(b + rt + 8 * i), cs);
	for (uint64_t i = 0; i < nl1; i++) {
		uint64_t l2 = tb_get64(b + l1 + 8 * i) & 0x00fffffffffffe00ull;

		if (l2)
			MARK(l2, cs);
	}
	for (uint64_t i = 0; i < nl1 && !bad; i++) {
		uint64_t l2 = tb_get64(b + l1 + 8 * i) & 0x00fffffffffffe00ull;

		if (!l2 || l2 > len || cs > len - l2)
			continue;
		for (uint64_t j = 0; j < cs / 8 && !bad; j++) {
			uint64_t e = tb_get64(b + l2 + 8 * j), first, last;

			if (e & 1ull << 62) {
				unsigned shift = 62 - (cb - 8);

				first = e & ((1ull << shift) - 1);
				last = first + (((e >> shift) & ((1ull << (cb - 8)) - 1)) + 1) * 512 - 1;
			} else {
				first = e & 0x00fffffffffffe00ull;
				last = first + cs - 1;
			}
			if (!first)
				continue;
			for (uint64_t c = first >> cb; c <= last >> cb && !bad; c++)
				bad = g_hash_table_contains(meta, &c);
		}
	}
#undef MARK
	g_hash_table_destroy(meta);
	return bad;
}

/* A guest range worth touching: mapped clusters, their edges, the end. */
static void pick_range(const struct img *m, uint64_t size, uint32_t *s, uint64_t *off,
		       uint64_t *len)
{
	uint64_t o;

	switch (rnd(s) % 5) {
	case 0:
	case 1:
		o = m->guest->len ? pick(m->guest, rnd(s)) + (rnd(s) % 2 ? 0 : rnd(s) % m->cs) :
		    rnd64(s) % size;
		break;
	case 2:
		o = size - (rnd(s) % 4 + 1) * 512;
		break;
	default:
		o = rnd64(s) % size;
		break;
	}
	o = rnd(s) % 8 ? o & ~511ull : o;
	o = MIN(o, size - 1);
	*len = rnd(s) % 3 ? 512 * (1 + rnd(s) % 16) : 1 + rnd(s) % (256 * 1024);
	*len = MIN(*len, size - o);
	*off = o;
}

struct stats {
	unsigned refused, opened, checked, ops, failed;
};

/* The requests of one iteration; a consistent image must serve them all. */
static void run_ops(const struct img *m, struct blk *b, bool ro, struct model *md,
		    uint32_t *s, struct stats *st)
{
	uint64_t size = blk_size(b);
	unsigned n = 4 + rnd(s) % 12;
	uint8_t *buf = g_malloc(256 * 1024);
	char err[256];
	struct blk_queue *q = blk_queue_new(b, err, sizeof(err));

	g_assert_nonnull(q);
	for (unsigned k = 0; k < n && size; k++) {
		unsigned op = rnd(s) % 10;
		uint64_t off, len;
		int64_t r;

		pick_range(m, size, s, &off, &len);
		if (ro && op >= 4)
			op = 0;
		if (op < 4) {
			r = tb_pread(q, off, buf, len);
			if (r >= 0 && md->data)
				model_compare(md, off, buf, len, "read");
		} else if (op < 7) {
			memset(buf, 0xe0 + k, len);
			r = tb_pwrite(q, off, buf, len);
			if (md->data) {
				memcpy(md->data + off, buf, len);
				memset(md->known + off, 1, len);
			}
		} else if (op == 7) {
			r = tb_discard(q, off, len);
			if (md->data)
				memset(md->known + off, 0, len);
		} else if (op == 8) {
			r = tb_zeroes(q, off, len, rnd(s) % 2);
			if (md->data) {
				memset(md->data + off, 0, len);
				memset(md->known + off, 1, len);
			}
		} else {
			r = tb_flush(q);
		}
		st->ops++;
		if (r < 0) {
			st->failed++;
			/* a consistent image serves every request */
			if (md->data || verbose)
				fprintf(stderr, "  op %u at %#llx+%llu: %s\n", op,
					(unsigned long long)off, (unsigned long long)len,
					strerror((int)-r));
			g_assert_true(!md->data);
			g_assert_true(r == -EIO || r == -ENOSPC || r == -ENOMEM || r == -EINVAL);
		}
	}
	blk_queue_free(q);
	g_free(buf);
}

/*
 * Up to 24 requests in flight at once on one queue (frees wait for the
 * data I/O of the clusters they drop, corruption is found mid-batch); the
 * queue is freed, which waits for them, or polled until they end.  The
 * ranges written become unknown to the model: their order is not defined.
 */
static void run_batch(const struct img *m, struct blk *b, bool ro, struct model *md,
		      uint32_t *s, struct stats *st)
{
	enum { MAXB = 24, BUFLEN = 64 * 1024 };
	uint64_t size = blk_size(b);
	unsigned n = 2 + rnd(s) % (MAXB - 1), pending = 0;
	struct tb_wait w[MAXB] = { 0 };
	struct iovec iov[MAXB];
	uint8_t *buf = g_malloc(MAXB * BUFLEN);
	char err[256];
	struct blk_queue *q = blk_queue_new(b, err, sizeof(err));

	g_assert_nonnull(q);
	for (unsigned k = 0; k < n && size; k++) {
		unsigned op = ro ? 0 : rnd(s) % 5;
		uint64_t off, len;
		int r;

		pick_range(m, size, s, &off, &len);
		len = MIN(len, BUFLEN);
		iov[k] = (struct iovec){ buf + k * BUFLEN, len };
		memset(iov[k].iov_base, 0xa0 + k, len);
		if (op == 0)
			r = blk_preadv(q, off, &iov[k], 1, tb_cb, &w[k]);
		else if (op == 1)
			r = blk_pwritev(q, off, &iov[k], 1, tb_cb, &w[k]);
		else if (op == 2)
			r = blk_discard(q, off, len, tb_cb, &w[k]);
		else if (op == 3)
			r = blk_write_zeroes(q, off, len, rnd(s) % 2, tb_cb, &w[k]);
		else
			r = blk_flush(q, tb_cb, &w[k]);
		if (op && md->data)
			memset(md->known + off, 0, len);
		g_assert_cmpint(r, ==, 0);
		pending++;
		st->ops++;
	}
	if (rnd(s) % 2) {
		blk_queue_free(q);	/* runs every callback first */
		q = NULL;
	}
	for (unsigned k = 0; k < pending; k++) {
		while (q && !w[k].done) {
			struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

			poll(&p, 1, 1000);
			blk_queue_poll(q);
		}
		g_assert_true(w[k].done);
		if (w[k].ret < 0) {
			st->failed++;
			if (md->data)
				fprintf(stderr, "  batch request %u: %s\n", k,
					strerror((int)-w[k].ret));
			g_assert_true(!md->data);
		}
	}
	blk_queue_free(q);
	g_free(buf);
}

/*
 * Move an L2 table or refcount block (or the L1 or refcount table) up to
 * 4 TiB into the file, which becomes sparse, and point at the copy.
 */
static bool relocate_far(const struct img *m, const uint8_t *b, const char *path, uint32_t *s)
{
	uint64_t far = (1ull << (30 + rnd(s) % 13)) + (rnd(s) % 4) * m->cs, ptr, from, n = m->cs;
	unsigned what = rnd(s) % 4;
	uint8_t v[8];
	bool ok;
	int fd;

	if (what == 0 && m->l2e->len) {
		ptr = m->l1_off;	/* the first L2 table */
		from = tb_get64(b + ptr) & 0x00fffffffffffe00ull;
		tb_put64(v, far | 1ull << 63);
	} else if (what == 1 && m->rbs->len) {
		ptr = m->rt_off;
		from = tb_get64(b + ptr);
		tb_put64(v, far);
	} else if (what == 2) {
		ptr = 40;
		from = m->l1_off;
		n = MAX(8ull * m->l1_size, 8);
		tb_put64(v, far);
	} else {
		ptr = 48;
		from = m->rt_off;
		n = (uint64_t)m->rt_clusters * m->cs;
		tb_put64(v, far);
	}
	if (!from || from > m->len || n > m->len - from)
		return false;
	fd = open(path, O_WRONLY);
	g_assert_cmpint(fd, >=, 0);
	/* a file system without room for it: no relocation */
	ok = pwrite(fd, b + from, n, far) == (ssize_t)n;
	if (ok)
		g_assert_cmpint(pwrite(fd, v, 8, ptr), ==, 8);
	close(fd);
	if (verbose && ok)
		fprintf(stderr, "  moved %#llx to %#llx\n", (unsigned long long)from,
			(unsigned long long)far);
	return ok;
}

static void fuzz_one(uint32_t seed, struct stats *st)
{
	uint32_t s = seed * 2654435761u + 0x9e3779b9u;
	struct img *m = &corpus[rnd(&s) % ncorpus];
	uint8_t *b = g_memdup2(m->buf, m->len);
	char *p = g_build_filename(corpus_dir, "v.qcow2", NULL), err[512] = "";
	struct model md = { 0 };
	bool ro = m->ro_only || rnd(&s) % 4 == 0;
	bool cmp = rnd(&s) % 2 == 0;
	struct blk_config cfg = { .file = p, .format = "qcow2", .aio = BLK_AIO_THREADS,
				  .readonly = ro, .discard_unmap = rnd(&s) % 4 != 0 };
	gsize len = mutate(m, b, m->len, &s);
	struct blk *bk;
	uint64_t vsize;
	int cr;

	if (verbose)
		fprintf(stderr, "iter seed %u image %s ro %d\n", seed, m->name, ro);
	cfg.cache = rnd(&s) % 3 == 0 ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK;
	/* every engine; Linux AIO only with O_DIRECT, as QEMU has it */
	cfg.aio = rnd(&s) % 3;
	if (cfg.aio == BLK_AIO_NATIVE)
		cfg.cache = BLK_CACHE_NONE;
	g_assert_true(g_file_set_contents(p, (const char *)b, len, NULL));
	if (rnd(&s) % 12 == 0 && relocate_far(m, b, p, &s))
		cmp = false;	/* qemu-img check takes a count per cluster of the file */
	if (g_getenv("VIREO_QCOW2_FUZZ_KEEP"))	/* a copy of the image, to look at */
		g_assert_cmpint(tb_sh(NULL, "cp --sparse=always %s %s", p,
				      g_getenv("VIREO_QCOW2_FUZZ_KEEP")), ==, 0);
	/*
	 * QEMU's view first, when the image is consistent and small enough
	 * (QEMU rounds the size down to a sector: no model for odd sizes)
	 */
	vsize = tb_get64(b + 24);
	if (cmp && vsize && vsize <= MAXSIZE && vsize % 512 == 0 && consistent(p) &&
	    !data_overlaps_meta(b, len) && !model_load(p, &md, vsize))
		model_free(&md);
	/* sometimes as a migration destination does: peek, then activate */
	cfg.inactive = rnd(&s) % 8 == 0;
	bk = blk_open(&cfg, err, sizeof(err));
	if (bk && cfg.inactive && blk_activate(bk, err, sizeof(err)) < 0) {
		blk_close(bk);
		bk = NULL;
	}
	if (!bk) {
		/* refused, with a message naming the file (or the backing file) */
		if (!strstr(err, corpus_dir) && !strstr(err, "could not open '"))
			g_error("refused without naming the file: '%s'", err);
		if (verbose)
			fprintf(stderr, "  refused%s: %s\n", md.data ? " (consistent)" : "", err);
		st->refused++;
		goto out;
	}
	st->opened++;
	if (md.data)
		g_assert_cmpuint(blk_size(bk), ==, md.size);
	run_ops(m, bk, ro, &md, &s, st);
	if (rnd(&s) % 3 == 0)
		run_batch(m, bk, ro, &md, &s, st);
	cr = blk_close(bk);
	if (md.data)
		g_assert_cmpint(cr, ==, 0);
	if (md.data) {
		struct model after = { 0 };

		st->checked++;
		/* nothing vireo wrote landed on metadata, and the data is right */
		g_assert_true(consistent(p));
		g_assert_true(model_load(p, &after, md.size));
		model_compare(&md, 0, after.data, md.size, "after close");
		model_free(&after);
	}
out:
	model_free(&md);
	g_free(p);
	g_free(b);
}

static void test_structured(void)
{
	const char *e = g_getenv("VIREO_QCOW2_FUZZ_ITERS");
	unsigned iters = e ? strtoul(e, NULL, 0) : 100;
	uint32_t seed0 = g_getenv("VIREO_QCOW2_FUZZ_SEED") ?
			 strtoul(g_getenv("VIREO_QCOW2_FUZZ_SEED"), NULL, 0) : 1;
	struct stats st = { 0 };

	if (!tb_have_qemu_img()) {
		g_test_skip("qemu-img/qemu-io (qemu-utils) not installed");
		return;
	}
	verbose = g_getenv("VIREO_QCOW2_FUZZ_VERBOSE") != NULL;
	corpus_init();
	g_assert_cmpuint(ncorpus, >=, 6);
	for (uint32_t i = 0; i < iters; i++)
		fuzz_one(seed0 + i, &st);
	g_test_message("%u iterations: %u refused, %u opened, %u compared with QEMU; "
		       "%u requests, %u failed", iters, st.refused, st.opened, st.checked,
		       st.ops, st.failed);
	if (verbose)
		fprintf(stderr, "%u iterations: %u refused, %u opened, %u compared with QEMU; "
			"%u requests, %u failed\n", iters, st.refused, st.opened, st.checked,
			st.ops, st.failed);
	/* the mutations reach both sides, and the model is used (not in a replay) */
	if (iters >= 100) {
		g_assert_cmpuint(st.refused, >, iters / 10);
		g_assert_cmpuint(st.opened, >, iters / 10);
		g_assert_cmpuint(st.checked, >, iters / 30);
	}
	for (unsigned i = 0; i < ncorpus; i++) {
		g_free(corpus[i].buf);
		g_array_free(corpus[i].meta, true);
		g_array_free(corpus[i].l2e, true);
		g_array_free(corpus[i].comp, true);
		g_array_free(corpus[i].guest, true);
		g_array_free(corpus[i].rbs, true);
		g_array_free(corpus[i].ext, true);
		g_array_free(corpus[i].snap, true);
	}
	tb_rmdir(corpus_dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qcow2/fuzz/structured", test_structured);
	return g_test_run();
}
