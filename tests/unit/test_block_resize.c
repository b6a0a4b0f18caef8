/*
 * blk_resize (QMP block_resize): raw files and qcow2 images qemu-img made
 * grow, keep their data, read zeroes in the new range and take writes
 * there; qemu-img check stays clean and qemu-img info shows the new size.
 * Small clusters make the qcow2 L1 table grow; a backing file bigger than
 * the old size must not show through.  Refusals: shrinking, an unaligned
 * size, a read-only image.  A SIGKILL during a series of L1-growing
 * resizes leaves an image qemu-img check accepts, with a size the series
 * reached.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "test_block_util.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static void write_fill(struct blk_queue *q, uint64_t off, uint64_t len, int pat)
{
	uint8_t *buf = g_malloc(len);

	memset(buf, pat, len);
	g_assert_cmpint(tb_pwrite(q, off, buf, len), ==, (int64_t)len);
	g_free(buf);
}

/* qemu-img info's virtual size of img. */
static uint64_t info_size(const char *img)
{
	char *out = NULL, *p;
	uint64_t v = 0;

	g_assert_cmpint(tb_sh(&out, "qemu-img info -U --output=json %s", img), ==, 0);
	p = strstr(out, "\"virtual-size\":");
	g_assert_nonnull(p);
	v = g_ascii_strtoull(p + strlen("\"virtual-size\":"), NULL, 10);
	g_free(out);
	return v;
}

/* The header's l1_size of a qcow2 image. */
static uint32_t l1_entries(const char *img)
{
	gchar *data = NULL;
	gsize len = 0;
	uint32_t v;

	g_assert_true(g_file_get_contents(img, &data, &len, NULL));
	g_assert_cmpuint(len, >=, 40);
	memcpy(&v, data + 36, 4);
	g_free(data);
	return GUINT32_FROM_BE(v);
}

static int resize(struct blk *b, uint64_t size)
{
	char err[512] = "";
	int ret = blk_resize(b, size, err, sizeof(err));

	if (ret < 0)
		g_test_message("blk_resize(%llu): %s", (unsigned long long)size, err);
	return ret;
}

/*
 * Grow img (format fmt, old bytes, data 0x5a in its first 64 KiB and last
 * 4 KiB) to new bytes: everything the guest had is there, the rest reads
 * zeroes and takes writes, also after closing and opening again.
 */
static void grow_and_check(const char *img, const char *fmt, uint64_t old, uint64_t new)
{
	char err[256], sector[512];
	struct blk_queue *q;
	struct blk *b = tb_open(img, fmt, BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);

	g_assert_nonnull(b);
	g_assert_cmpuint(blk_size(b), ==, old);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_nonnull(q);
	write_fill(q, 0, 64 * KiB, 0x5a);
	write_fill(q, old - 4 * KiB, 4 * KiB, 0x5a);
	/* Past the old end: refused before, as a device's range check does. */
	g_assert_cmpint(blk_preadv(q, old, &(struct iovec){ sector, 512 }, 1, tb_cb, NULL), ==,
			-EINVAL);
	blk_queue_free(q);
	g_assert_cmpint(resize(b, new), ==, 0);
	g_assert_cmpuint(blk_size(b), ==, new);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 0, 64 * KiB, 0x5a);
	tb_expect_fill(q, old - 4 * KiB, 4 * KiB, 0x5a);
	tb_expect_fill(q, old, 64 * KiB, 0);
	tb_expect_fill(q, new - 64 * KiB, 64 * KiB, 0);
	write_fill(q, new - 8 * KiB, 8 * KiB, 0xc3);
	write_fill(q, old, 4 * KiB, 0x3c);
	g_assert_cmpint(tb_flush(q), ==, 0);
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);

	if (!strcmp(fmt, "qcow2"))
		g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
	g_assert_cmpuint(info_size(img), ==, new);
	g_assert_cmpint(tb_sh(NULL, "qemu-io -f %s -c 'read -P 0x5a 0 64k' -c 'read -P 0x3c %llu 4k' "
			      "-c 'read -P 0 %llu 4k' -c 'read -P 0xc3 %llu 8k' %s", fmt,
			      (unsigned long long)old, (unsigned long long)(old + 4 * KiB),
			      (unsigned long long)(new - 8 * KiB), img), ==, 0);
	/* Opened again: the size and the data came from the file. */
	b = tb_open(img, fmt, BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, true);
	g_assert_nonnull(b);
	g_assert_cmpuint(blk_size(b), ==, new);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, new - 8 * KiB, 8 * KiB, 0xc3);
	tb_expect_fill(q, old - 4 * KiB, 4 * KiB, 0x5a);
	blk_queue_free(q);
	blk_close(b);
}

static void test_raw(void)
{
	char *dir, *img;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "r.raw", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f raw %s 4M", img), ==, 0);
	grow_and_check(img, "raw", 4 * MiB, 12 * MiB + 512 * 3);
	g_free(img);
	tb_rmdir(dir);
}

/* Within the L1 table's reach (64 KiB clusters: 512 MiB per entry). */
static void test_qcow2_header_only(void)
{
	char *dir, *img;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "q.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 8M", img), ==, 0);
	grow_and_check(img, "qcow2", 8 * MiB, 40 * MiB);
	g_assert_cmpuint(l1_entries(img), ==, 1);
	g_free(img);
	tb_rmdir(dir);
}

/*
 * 512-byte clusters: one L1 entry covers 32 KiB, so 2 MiB -> 8 MiB takes
 * the table from 64 to 256 entries (one cluster to four): a new table.
 */
static void test_qcow2_l1_grows(void)
{
	char *dir, *img;
	char *out = NULL;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "s.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -o cluster_size=512 %s 2M",
			      img), ==, 0);
	g_assert_cmpuint(l1_entries(img), ==, 64);
	grow_and_check(img, "qcow2", 2 * MiB, 8 * MiB);
	g_assert_cmpuint(l1_entries(img), ==, 256);
	g_assert_cmpint(tb_sh(&out, "qemu-img check --output=json %s", img), ==, 0);
	g_assert_null(strstr(out, "\"leaks\""));
	g_free(out);
	/* And again from there, with data in the old tables. */
	grow_and_check(img, "qcow2", 8 * MiB, 33 * MiB);
	g_assert_cmpuint(l1_entries(img), ==, 33 * 32);
	g_free(img);
	tb_rmdir(dir);
}

/*
 * A backing file of 16 MiB under an 8 MiB overlay: grown to 24 MiB, the
 * range 8-16 MiB reads zeroes, not the backing file's 0x77.
 */
static void test_qcow2_backing(void)
{
	char *dir, *base, *img, err[256];
	struct blk_queue *q;
	struct blk *b;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	base = g_build_filename(dir, "base.raw", NULL);
	img = g_build_filename(dir, "top.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f raw %s 16M && "
			      "qemu-io -f raw -c 'write -P 0x77 0 16M' %s && "
			      "qemu-img create -q -f qcow2 -o cluster_size=4096 -b %s -F raw %s 8M",
			      base, base, base, img), ==, 0);
	b = tb_open(img, "qcow2", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 8 * MiB - 4 * KiB, 4 * KiB, 0x77);
	blk_queue_free(q);
	/* Not cluster-aligned: the partial cluster is copied and zeroed too. */
	g_assert_cmpint(resize(b, 24 * MiB), ==, 0);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 0, 4 * KiB, 0x77);
	tb_expect_fill(q, 8 * MiB - 4 * KiB, 4 * KiB, 0x77);
	tb_expect_fill(q, 8 * MiB, 8 * MiB, 0);
	tb_expect_fill(q, 16 * MiB, 8 * MiB, 0);
	write_fill(q, 20 * MiB, 4 * KiB, 0x42);
	g_assert_cmpint(tb_flush(q), ==, 0);
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
	g_assert_cmpuint(info_size(img), ==, 24 * MiB);
	g_assert_cmpint(tb_sh(NULL, "qemu-io -f qcow2 -c 'read -P 0x77 0 8M' -c 'read -P 0 8M 12M' "
			      "-c 'read -P 0x42 20M 4k' %s", img), ==, 0);
	g_free(base);
	g_free(img);
	tb_rmdir(dir);
}

/* A smaller backing file: past its end the chain reads zeroes anyway. */
static void test_qcow2_small_backing(void)
{
	char *dir, *base, *img, err[256];
	struct blk_queue *q;
	struct blk *b;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	base = g_build_filename(dir, "base.qcow2", NULL);
	img = g_build_filename(dir, "top.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 1M && "
			      "qemu-io -f qcow2 -c 'write -P 0x66 0 1M' %s && "
			      "qemu-img create -q -f qcow2 -b %s -F qcow2 %s 4M",
			      base, base, base, img), ==, 0);
	b = tb_open(img, "qcow2", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	g_assert_cmpint(resize(b, 64 * MiB), ==, 0);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 0, 1 * MiB, 0x66);
	tb_expect_fill(q, 1 * MiB, 3 * MiB, 0);
	tb_expect_fill(q, 60 * MiB, 4 * MiB, 0);
	/* A write straddling the backing file's end copies what is below. */
	write_fill(q, 1 * MiB - 512, 1024, 0x99);
	tb_expect_fill(q, 1 * MiB - 64 * KiB, 64 * KiB - 512, 0x66);
	tb_expect_fill(q, 1 * MiB + 512, 64 * KiB, 0);
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
	g_assert_cmpuint(info_size(img), ==, 64 * MiB);
	g_free(base);
	g_free(img);
	tb_rmdir(dir);
}

static void test_refusals(void)
{
	const char *fmts[] = { "raw", "qcow2" };
	char *dir, *raw, *qc, err[512];

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	raw = g_build_filename(dir, "r.raw", NULL);
	qc = g_build_filename(dir, "q.qcow2", NULL);
	const char *imgs[] = { raw, qc };
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f raw %s 4M && "
			      "qemu-img create -q -f qcow2 %s 4M", raw, qc), ==, 0);
	for (int i = 0; i < 2; i++) {
		struct blk *b = tb_open(imgs[i], fmts[i], BLK_AIO_THREADS, BLK_CACHE_WRITEBACK,
					false);

		g_assert_nonnull(b);
		g_assert_cmpint(blk_resize(b, 2 * MiB, err, sizeof(err)), ==, -ENOTSUP);
		g_assert_nonnull(strstr(err, "Shrinking is not supported"));
		g_assert_cmpint(blk_resize(b, 4 * MiB + 100, err, sizeof(err)), ==, -EINVAL);
		g_assert_cmpstr(err, ==, "The new size must be a multiple of 512");
		g_assert_cmpuint(blk_size(b), ==, 4 * MiB);
		/* The same size: nothing to do, and no error. */
		g_assert_cmpint(blk_resize(b, 4 * MiB, err, sizeof(err)), ==, 0);
		g_assert_cmpint(blk_close(b), ==, 0);
		b = tb_open(imgs[i], fmts[i], BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, true);
		g_assert_cmpint(blk_resize(b, 8 * MiB, err, sizeof(err)), ==, -EACCES);
		g_assert_cmpstr(err, ==, "Block node is read-only");
		g_assert_cmpuint(blk_size(b), ==, 4 * MiB);
		blk_close(b);
		g_assert_cmpuint(info_size(imgs[i]), ==, 4 * MiB);
	}
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", qc), ==, 0);
	g_free(raw);
	g_free(qc);
	tb_rmdir(dir);
}

/* An image handed over to a migration destination is not ours to grow. */
static void test_inactive(void)
{
	char *dir, *img;
	char err[512];
	struct blk *b;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "q.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 4M", img), ==, 0);
	b = tb_open(img, "qcow2", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	g_assert_cmpint(blk_inactivate(b), ==, 0);
	g_assert_cmpint(blk_resize(b, 8 * MiB, err, sizeof(err)), ==, -EPERM);
	g_assert_nonnull(strstr(err, "inactive"));
	g_assert_cmpint(blk_activate(b, err, sizeof(err)), ==, 0);
	g_assert_cmpint(resize(b, 8 * MiB), ==, 0);
	blk_close(b);
	g_assert_cmpuint(info_size(img), ==, 8 * MiB);
	g_free(img);
	tb_rmdir(dir);
}

/*
 * A raw block device (a loop device here): its owner grows it; block_resize
 * then only takes the size it has.  Skipped where loop devices cannot be
 * set up (no root, no loop driver).
 */
static void test_block_device(void)
{
	char *dir = tb_tmpdir(), *file = g_build_filename(dir, "backing", NULL);
	char *out = NULL, *dev, err[512];
	struct blk *b;

	if (tb_sh(&out, "truncate -s 4M %s && losetup -f --show %s", file, file)) {
		g_test_skip("no loop device here (needs root and the loop driver)");
		goto out;
	}
	dev = g_strstrip(out);
	b = tb_open(dev, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	g_assert_cmpint(blk_resize(b, 8 * MiB, err, sizeof(err)), ==, -ENOTSUP);
	g_assert_nonnull(strstr(err, "a block device cannot be resized here; it has 4194304 bytes"));
	g_assert_cmpuint(blk_size(b), ==, 4 * MiB);
	/* The owner grows the device; then vireo follows. */
	g_assert_cmpint(tb_sh(NULL, "truncate -s 8M %s && losetup -c %s", file, dev), ==, 0);
	g_assert_cmpint(resize(b, 8 * MiB), ==, 0);
	g_assert_cmpuint(blk_size(b), ==, 8 * MiB);
	g_assert_cmpint(blk_resize(b, 12 * MiB, err, sizeof(err)), ==, -ENOTSUP);
	g_assert_cmpuint(blk_size(b), ==, 8 * MiB);
	blk_close(b);
	tb_sh(NULL, "losetup -d %s", dev);
out:
	g_free(out);
	g_free(file);
	tb_rmdir(dir);
}

#define CRASH_STEP (2 * MiB)	/* 64 more L1 entries of 512-byte clusters: a new table */

/* Child: grow by CRASH_STEP again and again, saying which size comes next. */
static void __attribute__((noreturn)) crash_child(const char *img, int fd)
{
	struct blk *b;
	char err[256];

	alarm(60);	/* never outlive a parent that died */
	b = tb_open(img, "qcow2", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	if (!b)
		_exit(2);
	for (;;) {
		uint64_t next = blk_size(b) + CRASH_STEP;

		if (write(fd, &next, sizeof(next)) != sizeof(next))
			_exit(3);
		if (blk_resize(b, next, err, sizeof(err)) < 0)
			_exit(4);
	}
}

static void test_crash(void)
{
	char *dir, *img;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "c.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "cd %s && qemu-img create -q -f raw base.raw 32M && "
			      "qemu-io -f raw -c 'write -P 0x77 0 32M' base.raw", dir), ==, 0);
	for (int round = 0; round < 24; round++) {
		uint64_t next = 0, prev = 0, size;
		int fds[2], status, n = 0, ret;
		pid_t pid;

		/*
		 * Odd rounds over a bigger backing file: its 0x77 must never
		 * show in a grown range, whenever the kill comes.
		 */
		g_assert_cmpint(tb_sh(NULL, "rm -f %s && qemu-img create -q -f qcow2 -o "
				      "cluster_size=512 %s %s 1M && qemu-io -f qcow2 -c "
				      "'write -P 0x21 0 1M' %s", img,
				      round % 2 ? "-b base.raw -F raw" : "", img, img), ==, 0);
		g_assert_cmpint(pipe(fds), ==, 0);
		pid = fork();
		g_assert_cmpint(pid, >=, 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(img, fds[1]);
		}
		close(fds[1]);
		/* Kill it in a different resize, and a different place in it, each round. */
		while (n <= round / 2 && read(fds[0], &next, sizeof(next)) == sizeof(next)) {
			prev = n ? next - CRASH_STEP : 1 * MiB;
			n++;
		}
		g_usleep(round / 2 * 150);
		kill(pid, SIGKILL);
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status));
		/* Later sizes it announced before dying are candidates too. */
		while (read(fds[0], &next, sizeof(next)) == sizeof(next))
			;
		close(fds[0]);
		/* 0: clean, 3: leaked clusters only */
		ret = tb_sh(NULL, "qemu-img check -q %s", img);
		g_assert_true(ret == 0 || ret == 3);
		size = info_size(img);
		g_assert_cmpuint(size, >=, prev);
		g_assert_cmpuint(size, <=, next);
		g_assert_cmpuint(size % CRASH_STEP, ==, 1 * MiB);
		g_assert_cmpint(tb_sh(NULL, "qemu-io -f qcow2 -c 'read -P 0x21 0 1M' "
				      "-c 'read -P 0 1M %llu' %s", (unsigned long long)(size - MiB),
				      img), ==, 0);
	}
	g_free(img);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/block/resize/raw", test_raw);
	g_test_add_func("/block/resize/qcow2-header-only", test_qcow2_header_only);
	g_test_add_func("/block/resize/qcow2-l1-grows", test_qcow2_l1_grows);
	g_test_add_func("/block/resize/qcow2-backing-bigger", test_qcow2_backing);
	g_test_add_func("/block/resize/qcow2-backing-smaller", test_qcow2_small_backing);
	g_test_add_func("/block/resize/refusals", test_refusals);
	g_test_add_func("/block/resize/inactive", test_inactive);
	g_test_add_func("/block/resize/block-device", test_block_device);
	g_test_add_func("/block/resize/crash", test_crash);
	return g_test_run();
}
