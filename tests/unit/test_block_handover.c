/*
 * Shared storage handover (live migration): two struct blk on one image in
 * one process stand for the source and the destination, since OFD locks
 * belong to the open file description, not the process.  What one side
 * wrote must be exactly what the other reads after the handover, with no
 * metadata cached from before surviving it, and the image must stay clean.
 */
#include <errno.h>
#include <fcntl.h>

#include "test_block_util.h"

#define MiB (1024 * 1024ull)
#define IMG_SIZE (8 * MiB)
#define CHUNK (192 * 1024)

/* Offsets of the writes of each round: each allocates new qcow2 clusters. */
static const uint64_t round_off[3][2] = {
	{ 0, 3 * MiB },
	{ 1 * MiB + 4096, 5 * MiB },
	{ 2 * MiB, 7 * MiB - CHUNK },
};

static char *make_image(const char *dir, const char *fmt)
{
	char *f = g_build_filename(dir, fmt, NULL);

	if (!strcmp(fmt, "qcow2")) {
		g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s %llu", f,
				      (unsigned long long)IMG_SIZE), ==, 0);
	} else {
		int fd = open(f, O_CREAT | O_RDWR | O_TRUNC, 0644);

		g_assert_cmpint(fd, >=, 0);
		g_assert_cmpint(ftruncate(fd, IMG_SIZE), ==, 0);
		close(fd);
	}
	return f;
}

static struct blk *open_side(const char *f, const char *fmt, bool inactive)
{
	struct blk_config cfg = { .file = f, .format = fmt, .aio = BLK_AIO_THREADS,
				  .cache = BLK_CACHE_WRITEBACK, .inactive = inactive };
	char err[512] = "";
	struct blk *b = blk_open(&cfg, err, sizeof(err));

	if (!b)
		g_test_message("blk_open(%s, inactive=%d): %s", f, inactive, err);
	g_assert_nonnull(b);
	return b;
}

/* Write round r's data through b (and flush, as a guest would). */
static void write_round(struct blk *b, int r, uint8_t *img)
{
	struct blk_queue *q = blk_queue_new(b, NULL, 0);

	g_assert_nonnull(q);
	for (int i = 0; i < 2; i++) {
		uint64_t off = round_off[r][i];

		tb_fill(img + off, CHUNK, 1000 * r + i + 1);
		g_assert_cmpint(tb_pwrite(q, off, img + off, CHUNK), ==, CHUNK);
	}
	g_assert_cmpint(tb_flush(q), ==, 0);
	blk_queue_free(q);
}

/* b reads the whole disk: exactly what every round so far wrote. */
static void check_all(struct blk *b, const uint8_t *img)
{
	struct blk_queue *q = blk_queue_new(b, NULL, 0);
	uint8_t *buf = g_malloc(IMG_SIZE);

	g_assert_nonnull(q);
	g_assert_cmpint(tb_pread(q, 0, buf, IMG_SIZE), ==, IMG_SIZE);
	g_assert_true(memcmp(buf, img, IMG_SIZE) == 0);
	blk_queue_free(q);
	g_free(buf);
}

/* Every kind of request of an inactive blk fails without being run. */
static void check_inactive(struct blk *b)
{
	struct blk_queue *q = blk_queue_new(b, NULL, 0);
	uint8_t buf[512];

	g_assert_nonnull(q);
	g_assert_false(blk_is_active(b));
	g_assert_cmpint(tb_pread(q, 0, buf, sizeof(buf)), ==, -EPERM);
	g_assert_cmpint(tb_pwrite(q, 0, buf, sizeof(buf)), ==, -EPERM);
	g_assert_cmpint(tb_flush(q), ==, -EPERM);
	g_assert_cmpint(tb_discard(q, 0, 65536), ==, -EPERM);
	g_assert_cmpint(tb_zeroes(q, 0, 65536, false), ==, -EPERM);
	blk_queue_free(q);
}

static void test_handover(gconstpointer data)
{
	const char *fmt = data;
	char *dir = tb_tmpdir(), *f, err[512] = "";
	uint8_t *img = g_malloc0(IMG_SIZE);
	struct blk *a, *b, *c;

	if (!strcmp(fmt, "qcow2") && !tb_have_qemu_img()) {
		g_test_skip("qemu-img is not installed");
		goto out;
	}
	f = make_image(dir, fmt);

	/* The destination opens while the source holds the image. */
	a = open_side(f, fmt, false);
	b = open_side(f, fmt, true);
	g_assert_true(blk_is_active(a));
	g_assert_cmpuint(blk_size(b), ==, IMG_SIZE);
	check_inactive(b);
	/* An inactive blk holds no lock: it cannot activate while a has it. */
	g_assert_cmpint(blk_activate(b, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "another process"));
	check_inactive(b);

	/* Round 0: a writes (b's open read the image empty), hands over. */
	write_round(a, 0, img);
	g_assert_cmpint(blk_inactivate(a), ==, 0);
	check_inactive(a);
	g_assert_cmpint(blk_activate(b, err, sizeof(err)), ==, 0);
	g_assert_true(blk_is_active(b));
	check_all(b, img);

	/* Round 1: b writes; a cannot take the image back meanwhile. */
	write_round(b, 1, img);
	err[0] = 0;
	g_assert_cmpint(blk_activate(a, err, sizeof(err)), ==, -EBUSY);
	g_assert_nonnull(strstr(err, "lock"));
	check_inactive(a);
	check_all(b, img);

	/*
	 * Back to a, which had tables cached before round 1: it must see b's
	 * allocations, and its own (round 2) must not reuse b's clusters.
	 */
	g_assert_cmpint(blk_inactivate(b), ==, 0);
	g_assert_cmpint(blk_activate(a, err, sizeof(err)), ==, 0);
	check_all(a, img);
	write_round(a, 2, img);
	check_all(a, img);
	g_assert_cmpint(blk_close(a), ==, 0);
	/* Closing an inactive blk writes nothing back. */
	g_assert_cmpint(blk_close(b), ==, 0);

	if (!strcmp(fmt, "qcow2"))
		g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", f), ==, 0);
	c = open_side(f, fmt, false);
	check_all(c, img);
	g_assert_cmpint(blk_close(c), ==, 0);
	g_free(f);
out:
	g_free(img);
	tb_rmdir(dir);
}

/*
 * qemu-img, as a third party, is refused only while the blk is active, and
 * an inactivated image is complete on disk: its metadata is written back.
 */
static void test_inactive_unlocked(void)
{
	char *dir = tb_tmpdir(), *f, *out = NULL, err[512] = "";
	uint8_t *img = g_malloc0(IMG_SIZE);
	struct blk *a;

	if (!tb_have_qemu_img()) {
		g_test_skip("qemu-img is not installed");
		goto out;
	}
	f = make_image(dir, "qcow2");
	a = open_side(f, "qcow2", false);
	write_round(a, 0, img);
	g_assert_cmpint(tb_sh(&out, "qemu-img check %s", f), !=, 0);
	g_assert_nonnull(strstr(out, "lock"));
	g_free(out);
	g_assert_cmpint(blk_inactivate(a), ==, 0);
	g_assert_cmpint(blk_inactivate(a), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", f), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-io -f qcow2 -c 'read -P 0 1M 64k' "
			      "-c 'write -P 0x5a 8323072 64k' %s >/dev/null", f), ==, 0);
	g_assert_cmpint(blk_activate(a, err, sizeof(err)), ==, 0);
	g_assert_cmpint(blk_activate(a, err, sizeof(err)), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s 2>/dev/null", f), !=, 0);
	/* qemu-io's write, made while a was inactive, is visible to a. */
	memset(img + IMG_SIZE - 65536, 0x5a, 65536);
	check_all(a, img);
	g_assert_cmpint(blk_close(a), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", f), ==, 0);
	g_free(f);
out:
	g_free(img);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/block/handover/raw", "raw", test_handover);
	g_test_add_data_func("/block/handover/qcow2", "qcow2", test_handover);
	g_test_add_func("/block/handover/unlocked", test_inactive_unlocked);
	return g_test_run();
}
