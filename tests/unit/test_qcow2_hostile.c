/*
 * Hostile qcow2 images: header fields and table entries that point outside
 * the file or into metadata are refused with a message naming the problem;
 * so are backing chains that loop or run too deep and backing files that
 * are not files; tables far into a sparse file cost no memory in
 * proportion; a few hundred deterministic mutations of a valid image
 * either fail to open with a message or run I/O without crashing
 * (test_qcow2_fuzz.c goes further).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "block/blk-int.h"
#include "test_block_util.h"

#define CS 4096u

struct base {
	char *dir, *path;
	uint8_t *img;
	gsize len;
	uint64_t l1_off, rt_off, l2_off, rb_off;
	uint32_t l1_size;
};

static struct base base;

static bool base_init(void)
{
	if (base.img)
		return true;
	if (!tb_have_qemu_img())
		return false;
	base.dir = tb_tmpdir();
	base.path = g_build_filename(base.dir, "base.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -o cluster_size=%u %s 4M && "
			      "qemu-io -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 1M 8k' "
			      "-c 'write -z 2M 4k' %s && qemu-io -c 'write -c -P 0x77 3M 4k' %s",
			      CS, base.path, base.path, base.path), ==, 0);
	g_assert_true(g_file_get_contents(base.path, (char **)&base.img, &base.len, NULL));
	base.l1_off = tb_get64(base.img + 40);
	base.l1_size = GUINT32_FROM_BE(*(uint32_t *)(base.img + 36));
	base.rt_off = tb_get64(base.img + 48);
	base.l2_off = tb_get64(base.img + base.l1_off) & 0x00fffffffffffe00ull;
	base.rb_off = tb_get64(base.img + base.rt_off);
	g_assert_cmpuint(base.l2_off, !=, 0);
	g_assert_cmpuint(base.rb_off, !=, 0);
	return true;
}

static char *write_variant(const uint8_t *img, gsize len)
{
	char *p = g_build_filename(base.dir, "v.qcow2", NULL);

	g_assert_true(g_file_set_contents(p, (const char *)img, len, NULL));
	return p;
}

static struct blk *open_variant(const char *p, bool ro, char *err, size_t errlen)
{
	struct blk_config cfg = { .file = p, .format = "qcow2", .aio = BLK_AIO_THREADS,
				  .readonly = ro, .discard_unmap = true };

	err[0] = 0;
	return blk_open(&cfg, err, errlen);
}

/* Mutate a copy of the base image; expect open to fail naming `want`. */
static void expect_refused(void (*mutate)(uint8_t *img), bool ro, const char *want)
{
	uint8_t *img = g_memdup2(base.img, base.len);
	char err[512], *p;
	struct blk *b;

	mutate(img);
	p = write_variant(img, base.len);
	b = open_variant(p, ro, err, sizeof(err));
	if (b)
		blk_close(b);
	g_assert_null(b);
	g_test_message("refused: %s", err);
	g_assert_nonnull(strstr(err, want));
	g_assert_nonnull(strstr(err, "v.qcow2"));
	g_free(p);
	g_free(img);
}

static void m_magic(uint8_t *i) { i[0] = 'X'; }
static void m_version(uint8_t *i) { tb_put32(i + 4, 4); }
static void m_cbits(uint8_t *i) { tb_put32(i + 20, 30); }
static void m_l1_far(uint8_t *i) { tb_put64(i + 40, 1ull << 40); }
static void m_l1_huge(uint8_t *i) { tb_put32(i + 36, 0x10000000); }
static void m_l1_small(uint8_t *i) { tb_put32(i + 36, 0); }
static void m_rt_misaligned(uint8_t *i) { tb_put64(i + 48, base.rt_off + 8); }
static void m_rt_zero(uint8_t *i) { tb_put32(i + 56, 0); }
static void m_rt_on_header(uint8_t *i) { tb_put64(i + 48, 0); }
static void m_incompat(uint8_t *i) { i[79] |= 1 << 5; }
static void m_corrupt(uint8_t *i) { i[79] |= 1 << 1; }
static void m_dirty(uint8_t *i) { i[79] |= 1 << 0; }
static void m_refbits(uint8_t *i) { tb_put32(i + 96, 7); }
static void m_hlen(uint8_t *i) { tb_put32(i + 100, CS * 2); }
static void m_crypt(uint8_t *i) { tb_put32(i + 32, 1); }
static void m_ctype(uint8_t *i) { i[104] = 1; }
static void m_l2_far(uint8_t *i) { tb_put64(i + base.l1_off, (1ull << 40) | (1ull << 63)); }
static void m_l2_misaligned(uint8_t *i) { tb_put64(i + base.l1_off, base.l2_off + 512); }
static void m_l2_on_rt(uint8_t *i) { tb_put64(i + base.l1_off, base.rt_off | (1ull << 63)); }
static void m_rb_on_l1(uint8_t *i) { tb_put64(i + base.rt_off, base.l1_off); }
static void m_rb_far(uint8_t *i) { tb_put64(i + base.rt_off, 1ull << 45); }
static void m_backing_far(uint8_t *i) { tb_put64(i + 8, CS - 4); tb_put32(i + 16, 100); }
static void m_ext_long(uint8_t *i)
{
	/* a header extension (right after the 112-byte header) running off */
	tb_put32(i + 112, 0x12345678);
	tb_put32(i + 116, CS);
}

static void test_refused(void)
{
	if (!base_init()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	expect_refused(m_magic, true, "bad magic");
	expect_refused(m_version, true, "version 4");
	expect_refused(m_cbits, true, "cluster_bits 30");
	expect_refused(m_l1_far, true, "L1 table");
	expect_refused(m_l1_huge, true, "L1 table");
	expect_refused(m_l1_small, true, "too small for the virtual size");
	expect_refused(m_rt_misaligned, true, "refcount table");
	expect_refused(m_rt_zero, true, "refcount table");
	expect_refused(m_rt_on_header, true, "refcount table");
	expect_refused(m_incompat, true, "unsupported incompatible features 0x20");
	expect_refused(m_corrupt, false, "marked corrupt");
	expect_refused(m_refbits, true, "refcount_order 7");
	expect_refused(m_hlen, true, "header_length");
	expect_refused(m_crypt, true, "encrypted");
	expect_refused(m_ctype, true, "compression type");
	expect_refused(m_l2_far, true, "L2 table 0");
	expect_refused(m_l2_misaligned, true, "not cluster-aligned");
	expect_refused(m_l2_on_rt, true, "overlaps");
	expect_refused(m_rb_on_l1, true, "overlaps");
	expect_refused(m_rb_far, true, "outside the file");
	expect_refused(m_backing_far, true, "backing file name");
	expect_refused(m_ext_long, true, "header extension");
}

/* A corrupt image opens read-only; a dirty one too. */
static void test_readonly_allowed(void)
{
	uint8_t *img;
	char err[512], *p;
	struct blk *b;

	if (!base_init()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	img = g_memdup2(base.img, base.len);
	m_corrupt(img);
	m_dirty(img);
	p = write_variant(img, base.len);
	b = open_variant(p, true, err, sizeof(err));
	g_assert_nonnull(b);
	blk_close(b);
	g_free(p);
	g_free(img);
}

/*
 * Data pointers are checked when used: reading fails with EIO, and a
 * writable image gets the corrupt bit so it is not written again.
 */
static void test_bad_l2_entries(void)
{
	const uint64_t bad[] = {
		(1ull << 63) | (1ull << 40),			/* past the end */
		(1ull << 63) | 0,				/* header: metadata */
		(1ull << 63),					/* (placeholder: L1) */
		(1ull << 63) | 4096 | 512,			/* misaligned */
		(1ull << 62) | (1ull << 50),			/* compressed, past the end */
		(1ull << 63) | (1ull << 57) | 8192,		/* reserved bits */
	};
	uint8_t buf[4096];
	char err[512];

	if (!base_init()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	for (size_t k = 0; k < G_N_ELEMENTS(bad); k++) {
		uint8_t *img = g_memdup2(base.img, base.len);
		uint64_t e = k == 2 ? bad[k] | base.l1_off : bad[k];
		struct blk_queue *q;
		struct blk *b;
		char *p;

		if (k == 1)
			e = (1ull << 63) | base.rt_off;
		tb_put64(img + base.l2_off, e);		/* guest cluster 0 */
		p = write_variant(img, base.len);
		b = open_variant(p, false, err, sizeof(err));
		g_assert_nonnull(b);
		q = blk_queue_new(b, err, sizeof(err));
		g_assert_cmpint(tb_pread(q, 0, buf, sizeof(buf)), ==, -EIO);
		/* and everything after it fails too */
		g_assert_cmpint(tb_pread(q, 1 << 20, buf, sizeof(buf)), ==, -EIO);
		g_assert_cmpint(tb_pwrite(q, 1 << 20, buf, sizeof(buf)), ==, -EIO);
		blk_queue_free(q);
		blk_close(b);
		b = open_variant(p, false, err, sizeof(err));
		g_assert_null(b);
		g_assert_nonnull(strstr(err, "marked corrupt"));
		g_free(p);
		g_free(img);
	}
}

/*
 * A compressed descriptor starting just before an L2 table and ending
 * after it covers three clusters, the middle one metadata: discarding it
 * would drop that table's refcount to zero.  Both ends are plain data.
 */
static void test_compressed_spanning_metadata(void)
{
	uint8_t *img, buf[CS];
	uint64_t l2b, e, nb;
	struct blk_queue *q;
	struct blk *b;
	char err[512], *p;

	if (!base_init()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	img = g_memdup2(base.img, base.len);
	l2b = tb_get64(img + base.l1_off + 8) & 0x00fffffffffffe00ull;	/* for 2M-4M */
	g_assert_cmpuint(l2b, >, base.l2_off);
	g_assert_cmpuint(l2b + CS, <, base.len);
	/* from 512 bytes before it into the cluster after it, inside the file */
	nb = MIN(16, (base.len - l2b + 1024) / 512);
	g_assert_cmpuint(nb, >, 1 + CS / 512);
	e = 1ull << 62 | (nb - 1) << (62 - (12 - 8)) | (l2b - 512);
	tb_put64(img + base.l2_off, e);
	p = write_variant(img, base.len);
	b = open_variant(p, false, err, sizeof(err));
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_cmpint(tb_discard(q, 0, CS), ==, -EIO);
	g_assert_cmpint(tb_pread(q, 0, buf, CS), ==, -EIO);
	blk_queue_free(q);
	blk_close(b);
	g_free(p);
	g_free(img);
}

/*
 * A dirty image where a data cluster has refcount 2 and no COPIED flag
 * (what QEMU calls a leak): the rebuilt refcount is 1, so the flag must
 * be set again, or qemu-img check reports an OFLAG_COPIED error.
 */
static void test_dirty_rebuild_copied(void)
{
	uint8_t *img;
	uint64_t e, host;
	char err[512], *p, *out = NULL;
	struct blk *b;

	if (!base_init()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	img = g_memdup2(base.img, base.len);
	e = tb_get64(img + base.l2_off);			/* guest cluster 0 */
	g_assert_true(e & 1ull << 63);
	host = e & 0x00fffffffffffe00ull;
	tb_put64(img + base.l2_off, e & ~(1ull << 63));
	img[base.rb_off + 2 * (host / CS) + 1]++;	/* 16-bit refcount 1 -> 2 */
	m_dirty(img);
	p = write_variant(img, base.len);
	b = open_variant(p, false, err, sizeof(err));
	g_assert_nonnull(b);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_assert_cmpint(tb_sh(&out, "qemu-img check %s", p), ==, 0);
	g_free(out);
	g_free(p);
	g_free(img);
}

/*
 * A 1 MiB image of cs-byte clusters with 4 KiB of pattern at 0, in a new
 * directory; returns a read-write descriptor of it.
 */
/*
 * A 1 MiB qcow2 of cs-byte clusters whose first 4 KiB hold pattern, open
 * read-write; its header in hdr[512] and the host offset of its one L2
 * table in *l2.  -1 (the test skipped) without qemu-img.
 */
static int small_image(unsigned cs, int pattern, char **dir, char **path, uint8_t *hdr,
		       uint64_t *l2)
{
	uint8_t e[8];
	int fd;

	if (!tb_have_qemu_img()) {
		g_test_skip("qemu-img not installed");
		return -1;
	}
	*dir = tb_tmpdir();
	*path = g_build_filename(*dir, "small.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -o cluster_size=%u %s 1M && "
			      "qemu-io -c 'write -P %d 0 4k' %s", cs, *path, pattern, *path), ==, 0);
	fd = open(*path, O_RDWR);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pread(fd, hdr, 512, 0), ==, 512);
	g_assert_cmpint(pread(fd, e, 8, tb_get64(hdr + 40)), ==, 8);
	*l2 = tb_get64(e) & 0x00fffffffffffe00ull;
	return fd;
}

/*
 * Metadata clusters are kept in a bitmap up to cluster 2^27 and in a tree
 * past it.  A refcount table straddling that limit (512-byte clusters: at
 * 64 GiB) with an L2 table just below it: an L2 entry pointing into the
 * refcount table must still be found overlapping metadata, however the
 * bitmap grew in between.
 */
static void test_meta_map_boundary(void)
{
	const uint64_t lim = 1ull << 27, cs = 512;
	uint8_t hdr[512], blk[512], v[8], buf[512];
	uint64_t rt, l1, l2;
	char *dir, *p, err[512];
	struct blk_queue *q;
	struct blk *b;
	int fd;

	fd = small_image(cs, 0x5e, &dir, &p, hdr, &l2);
	if (fd < 0)
		return;
	rt = tb_get64(hdr + 48);
	l1 = tb_get64(hdr + 40);
	/* the refcount table, 2 clusters, at clusters lim - 1 and lim */
	g_assert_cmpint(pread(fd, blk, cs, rt), ==, cs);
	if (pwrite(fd, blk, cs, (lim - 1) * cs) != (ssize_t)cs) {
		g_test_skip("the file system holds no 64 GiB sparse file");
		goto out;
	}
	memset(blk, 0, cs);
	g_assert_cmpint(pwrite(fd, blk, cs, lim * cs), ==, cs);
	tb_put64(hdr + 48, (lim - 1) * cs);
	tb_put32(hdr + 56, 2);
	g_assert_cmpint(pwrite(fd, hdr, sizeof(hdr), 0), ==, sizeof(hdr));
	/* the L2 table at cluster lim - 2; guest cluster 1 maps the refcount table */
	g_assert_cmpint(pread(fd, blk, cs, l2), ==, cs);
	tb_put64(blk + 8, 1ull << 63 | (lim - 1) * cs);
	g_assert_cmpint(pwrite(fd, blk, cs, (lim - 2) * cs), ==, cs);
	tb_put64(v, 1ull << 63 | (lim - 2) * cs);
	g_assert_cmpint(pwrite(fd, v, 8, l1), ==, 8);
	b = open_variant(p, true, err, sizeof(err));
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	memset(blk, 0x5e, sizeof(blk));
	g_assert_cmpint(tb_pread(q, 2 * cs, buf, cs), ==, cs);	/* still fine */
	g_assert_cmpmem(buf, cs, blk, cs);
	g_assert_cmpint(tb_pread(q, cs, buf, cs), ==, -EIO);
	blk_queue_free(q);
	blk_close(b);
out:
	close(fd);
	g_free(p);
	tb_rmdir(dir);
}

static long max_rss_kib(void)
{
	struct rusage ru;

	g_assert_cmpint(getrusage(RUSAGE_SELF, &ru), ==, 0);
	return ru.ru_maxrss;
}

/*
 * An L2 table 4 TiB into a sparse file: opening it must not cost
 * memory in proportion to the file's length (with 512-byte clusters a
 * bitmap of its 2^33 clusters was 1 GiB), nor must rebuilding the
 * refcounts of such a file when it is dirty (with 64 KiB clusters that
 * took 384 MiB and wrote 128 MiB of refcount blocks), which is refused.
 */
static void test_sparse_far_metadata(gconstpointer data)
{
	const unsigned cs = GPOINTER_TO_UINT(data);
	const uint64_t far = 1ull << 42;
	uint8_t hdr[512], *l2 = g_malloc0(cs), buf[4096], want[4096];
	char *dir, *p, err[512];
	struct blk_queue *q;
	struct blk *b;
	uint64_t l1, e;
	long rss;
	int fd;

	fd = small_image(cs, 0x3c, &dir, &p, hdr, &e);
	if (fd < 0) {
		g_free(l2);
		return;
	}
	l1 = tb_get64(hdr + 40);
	g_assert_cmpint(pread(fd, l2, cs, e), ==, cs);
	if (pwrite(fd, l2, cs, far) != cs) {
		g_test_skip("the file system holds no sparse file this long");
		goto out;
	}
	tb_put64((uint8_t *)&e, far | 1ull << 63);
	g_assert_cmpint(pwrite(fd, &e, 8, l1), ==, 8);
	rss = max_rss_kib();
	b = open_variant(p, true, err, sizeof(err));
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	memset(want, 0x3c, sizeof(want));
	g_assert_cmpint(tb_pread(q, 0, buf, sizeof(buf)), ==, sizeof(buf));
	g_assert_cmpmem(buf, sizeof(buf), want, sizeof(want));
	blk_queue_free(q);
	blk_close(b);
	/* writable: a new cluster mapped through the far table */
	b = open_variant(p, false, err, sizeof(err));
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	memset(want, 0x3d, sizeof(want));
	g_assert_cmpint(tb_pwrite(q, 8192, want, sizeof(want)), ==, sizeof(want));
	g_assert_cmpint(tb_pread(q, 8192, buf, sizeof(buf)), ==, sizeof(buf));
	g_assert_cmpmem(buf, sizeof(buf), want, sizeof(want));
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	/* dirty: a writable open would rebuild refcounts for 2^33 or 2^27 clusters */
	hdr[79] |= 1;
	g_assert_cmpint(pwrite(fd, hdr + 72, 8, 72), ==, 8);
	b = open_variant(p, false, err, sizeof(err));
	g_assert_null(b);
	g_test_message("refused: %s", err);
	g_assert_nonnull(strstr(err, "rebuild"));
	if (cs == 65536)
		g_assert_nonnull(strstr(err, "qemu-img check -r all"));
	g_assert_cmpint(max_rss_kib() - rss, <, 64 * 1024);
out:
	g_free(l2);
	close(fd);
	g_free(p);
	tb_rmdir(dir);
}

static void test_backing_errors(void)
{
	char *dir, *a, err[512];
	struct blk *b;

	if (!tb_have_qemu_img()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	dir = tb_tmpdir();
	g_assert_cmpint(tb_sh(NULL, "cd %s && "
			      "qemu-img create -q -f qcow2 -u -b b.qcow2 -F qcow2 a.qcow2 1M && "
			      "qemu-img create -q -f qcow2 -u -b a.qcow2 -F qcow2 b.qcow2 1M && "
			      "qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 c.qcow2 1M",
			      dir), ==, 0);
	a = g_build_filename(dir, "a.qcow2", NULL);
	b = open_variant(a, false, err, sizeof(err));
	g_assert_null(b);
	g_assert_nonnull(strstr(err, "loop"));
	g_free(a);
	a = g_build_filename(dir, "c.qcow2", NULL);
	b = open_variant(a, false, err, sizeof(err));
	g_assert_null(b);
	g_assert_nonnull(strstr(err, "gone.qcow2"));
	g_free(a);
	tb_rmdir(dir);
}

/*
 * Loops through a symlink or of an image onto itself, and chains one
 * image deeper than BLK_MAX_BACKING_DEPTH, are refused; a chain exactly
 * that deep opens and reads the bottom image through every level.
 */
static void test_backing_chains(void)
{
	static const char *const loops[] = { "self.qcow2", "x.qcow2" };
	char *dir, *top, err[512];
	uint8_t buf[4096], want[4096];
	struct blk_queue *q;
	struct blk *b;

	if (!tb_have_qemu_img()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	dir = tb_tmpdir();
	g_assert_cmpint(tb_sh(NULL, "cd %s && "
			      "qemu-img create -q -f qcow2 -u -b ./self.qcow2 -F qcow2 self.qcow2 1M && "
			      "qemu-img create -q -f qcow2 -u -b y.qcow2 -F qcow2 x.qcow2 1M && "
			      "qemu-img create -q -f qcow2 -u -b lnk.qcow2 -F qcow2 y.qcow2 1M && "
			      "ln -s x.qcow2 lnk.qcow2", dir), ==, 0);
	for (size_t i = 0; i < G_N_ELEMENTS(loops); i++) {
		top = g_build_filename(dir, loops[i], NULL);
		b = open_variant(top, true, err, sizeof(err));
		g_assert_null(b);
		g_test_message("refused: %s", err);
		g_assert_nonnull(strstr(err, "backing file loop"));
		g_free(top);
	}
	/* c0 (data) <- c1 <- ... <- c65: 66 images, one more than allowed */
	g_assert_cmpint(tb_sh(NULL, "cd %s && qemu-img create -q -f qcow2 c0.qcow2 1M && "
			      "qemu-io -c 'write -P 0x6b 4k 4k' c0.qcow2 >/dev/null && "
			      "for i in $(seq 1 %d); do qemu-img create -q -f qcow2 -u "
			      "-b c$((i - 1)).qcow2 -F qcow2 c$i.qcow2 1M || exit 1; done",
			      dir, BLK_MAX_BACKING_DEPTH + 1), ==, 0);
	top = g_strdup_printf("%s/c%d.qcow2", dir, BLK_MAX_BACKING_DEPTH + 1);
	b = open_variant(top, false, err, sizeof(err));
	g_assert_null(b);
	g_test_message("refused: %s", err);
	g_assert_nonnull(strstr(err, "deeper than"));
	g_free(top);
	top = g_strdup_printf("%s/c%d.qcow2", dir, BLK_MAX_BACKING_DEPTH);
	b = open_variant(top, false, err, sizeof(err));
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	memset(want, 0x6b, sizeof(want));
	g_assert_cmpint(tb_pread(q, 4096, buf, sizeof(buf)), ==, sizeof(buf));
	g_assert_cmpmem(buf, sizeof(buf), want, sizeof(want));
	blk_queue_free(q);
	blk_close(b);
	g_free(top);
	tb_rmdir(dir);
}

/*
 * A backing file name that is a directory, a FIFO (whose open would block
 * until a writer came) or a character device is refused at open.
 */
static void test_backing_not_a_file(void)
{
	static const char *const names[] = { "sub", "fifo", "/dev/null", "/dev/zero" };
	char *dir, *top, *fifo, err[512];
	struct blk *b;

	if (!tb_have_qemu_img()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	dir = tb_tmpdir();
	top = g_build_filename(dir, "top.qcow2", NULL);
	fifo = g_build_filename(dir, "fifo", NULL);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "mkdir %s/sub", dir), ==, 0);
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -u -b %s -F raw %s 1M",
				      names[i], top), ==, 0);
		b = open_variant(top, i % 2, err, sizeof(err));
		g_assert_null(b);
		g_test_message("refused: %s", err);
		g_assert_nonnull(strstr(err, "not a regular file or block device"));
		g_assert_nonnull(strstr(err, names[i]));
	}
	g_free(fifo);
	g_free(top);
	tb_rmdir(dir);
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static uint64_t interesting(uint32_t *s)
{
	const uint64_t v[] = { 0, 1, 511, 512, CS, CS - 1, 0xffffffffull, 0x7fffffffull,
			       ~0ull, 1ull << 63, 1ull << 62, base.len, base.len - CS,
			       base.len + CS, base.l1_off, base.rt_off, base.l2_off, base.rb_off };

	if (rnd(s) % 3 == 0)
		return ((uint64_t)rnd(s) << 32) | rnd(s);
	return v[rnd(s) % G_N_ELEMENTS(v)];
}

static void mutate(uint8_t *img, uint32_t seed)
{
	static const struct { unsigned off, width; } fields[] = {
		{ 8, 8 }, { 16, 4 }, { 20, 4 }, { 24, 8 }, { 32, 4 }, { 36, 4 }, { 40, 8 },
		{ 48, 8 }, { 56, 4 }, { 60, 4 }, { 64, 8 }, { 72, 8 }, { 80, 8 }, { 88, 8 },
		{ 96, 4 }, { 100, 4 },
	};
	uint32_t s = seed * 2654435761u + 1;
	int n = 1 + rnd(&s) % 3;

	for (int k = 0; k < n; k++) {
		uint64_t v = interesting(&s);
		unsigned idx;

		switch (rnd(&s) % 6) {
		case 0:
			idx = rnd(&s) % G_N_ELEMENTS(fields);
			if (fields[idx].width == 8)
				tb_put64(img + fields[idx].off, v);
			else
				tb_put32(img + fields[idx].off, v);
			break;
		case 1:
			tb_put64(img + base.l1_off + 8 * (rnd(&s) % base.l1_size), v);
			break;
		case 2:	/* the L2 entries that map data */
			idx = rnd(&s) % 20;
			idx = idx < 16 ? idx : 256 + idx;
			tb_put64(img + base.l2_off + 8 * (idx % (CS / 8)), v);
			break;
		case 3:
			tb_put64(img + base.rt_off + 8 * (rnd(&s) % 4), v);
			break;
		case 4:	/* 16-bit refcounts */
			idx = rnd(&s) % 64;
			img[base.rb_off + 2 * idx] = v >> 8;
			img[base.rb_off + 2 * idx + 1] = v;
			break;
		default:
			img[rnd(&s) % 512] ^= 1 << (rnd(&s) % 8);
			break;
		}
	}
}

static void test_fuzz(void)
{
	uint8_t *rbuf = g_malloc(1 << 20), wbuf[8192];
	int opened = 0, refused = 0;

	if (!base_init()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	memset(wbuf, 0x5c, sizeof(wbuf));
	for (uint32_t seed = 0; seed < 300; seed++) {
		uint8_t *img = g_memdup2(base.img, base.len);
		bool ro = seed % 3 == 0;
		struct blk_queue *q;
		struct blk *b;
		char err[512], *p;

		mutate(img, seed);
		if (seed % 5 == 1)
			m_dirty(img);	/* read-write opens rebuild the refcounts */
		p = write_variant(img, base.len);
		b = open_variant(p, ro, err, sizeof(err));
		if (!b) {
			/* refused, with a message that names the file */
			g_assert_cmpuint(strlen(err), >, 0);
			g_assert_nonnull(strstr(err, "v.qcow2"));
			refused++;
			goto next;
		}
		opened++;
		q = blk_queue_new(b, err, sizeof(err));
		g_assert_nonnull(q);
		for (uint64_t off = 0; off < blk_size(b) && off < (8u << 20); off += 1 << 20) {
			int64_t r = tb_pread(q, off, rbuf, MIN((uint64_t)1 << 20, blk_size(b) - off));

			g_assert_true(r >= 0 || r == -EIO || r == -ENOMEM);
		}
		if (!ro && blk_size(b) >= (4u << 20)) {
			int64_t r = tb_pwrite(q, 4096, wbuf, sizeof(wbuf));

			g_assert_true(r >= 0 || r == -EIO || r == -ENOSPC || r == -EFBIG);
			tb_pwrite(q, (3u << 20) + 100, wbuf, 5000);
			tb_discard(q, 1u << 20, 64 * 1024);
			tb_zeroes(q, 0, 64 * 1024, false);
			tb_flush(q);
		}
		blk_queue_free(q);
		blk_close(b);
next:
		g_free(p);
		g_free(img);
	}
	g_test_message("%d opened, %d refused", opened, refused);
	/* the mutations hit both sides */
	g_assert_cmpint(opened, >, 20);
	g_assert_cmpint(refused, >, 20);
	g_free(rbuf);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qcow2/hostile/refused", test_refused);
	g_test_add_func("/qcow2/hostile/readonly-allowed", test_readonly_allowed);
	g_test_add_func("/qcow2/hostile/bad-l2-entries", test_bad_l2_entries);
	g_test_add_func("/qcow2/hostile/compressed-spanning-metadata",
			test_compressed_spanning_metadata);
	g_test_add_data_func("/qcow2/hostile/sparse-far-metadata/c512", GUINT_TO_POINTER(512),
			     test_sparse_far_metadata);
	g_test_add_data_func("/qcow2/hostile/sparse-far-metadata/c64k", GUINT_TO_POINTER(65536),
			     test_sparse_far_metadata);
	g_test_add_func("/qcow2/hostile/dirty-rebuild-copied", test_dirty_rebuild_copied);
	g_test_add_func("/qcow2/hostile/meta-map-boundary", test_meta_map_boundary);
	g_test_add_func("/qcow2/hostile/backing-errors", test_backing_errors);
	g_test_add_func("/qcow2/hostile/backing-not-a-file", test_backing_not_a_file);
	g_test_add_func("/qcow2/hostile/backing-chains", test_backing_chains);
	g_test_add_func("/qcow2/hostile/fuzz", test_fuzz);
	ret = g_test_run();
	if (base.dir)
		tb_rmdir(base.dir);
	g_free(base.path);
	g_free(base.img);
	return ret;
}
