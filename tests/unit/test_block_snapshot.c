/*
 * -drive snapshot=on: the overlay qcow2_create_overlay writes is an image
 * qemu-img accepts, over the right backing file; blk_open_snapshot reads
 * the image through it, keeps every write in it, leaves the image as it
 * was and leaves no file behind.
 */
#include <errno.h>
#include <fcntl.h>

#include "block/blk-int.h"
#include "test_block_util.h"

#define MiB (1024ull * 1024)

static void test_overlay_is_qcow2(void)
{
	char *dir, *base, *top, err[256] = "";
	int fd;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	base = g_build_filename(dir, "base.raw", NULL);
	top = g_build_filename(dir, "top.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f raw %s 3G && "
			      "qemu-io -f raw -c 'write -P 0x33 1M 64k' %s", base, base), ==, 0);
	fd = open(top, O_RDWR | O_CREAT | O_TRUNC, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(qcow2_create_overlay(fd, 3ull << 30, base, "raw", err, sizeof(err)),
			==, 0);
	close(fd);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", top), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img info %s | grep -q 'backing file: %s'", top, base),
			==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img info %s | grep -q 'virtual size: 3 GiB'", top),
			==, 0);
	/* Reads fall through to the base; a write lands in the overlay. */
	g_assert_cmpint(tb_sh(NULL, "qemu-io -f qcow2 -c 'read -P 0x33 1M 64k' "
			      "-c 'write -P 0x44 2G 4k' -c 'read -P 0x44 2G 4k' %s", top), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", top), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-io -f raw -c 'read -P 0 2G 4k' %s", base), ==, 0);
	/* A name that does not fit the first cluster is refused, not cut. */
	fd = open(top, O_RDWR | O_TRUNC);
	{
		char *longname = g_strnfill(2000, 'x');

		g_assert_cmpint(qcow2_create_overlay(fd, 1 << 20, longname, "raw", err,
						     sizeof(err)), ==, -ENAMETOOLONG);
		g_free(longname);
	}
	close(fd);
	g_free(base);
	g_free(top);
	tb_rmdir(dir);
}

static void test_writes_stay_in_overlay(void)
{
	char *dir, *base, *old_tmp = g_strdup(g_getenv("TMPDIR")), err[256] = "";
	struct blk_config cfg = { .format = "qcow2", .aio = BLK_AIO_IO_URING };
	struct blk_queue *q;
	struct blk_info info;
	uint8_t buf[4096];
	struct blk *b;
	GDir *d;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	base = g_build_filename(dir, "base.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 64M && "
			      "qemu-io -f qcow2 -c 'write -P 0x11 0 1M' %s", base, base), ==, 0);
	cfg.file = base;
	/* The overlay goes to $TMPDIR: here, to see that it is gone at once. */
	g_setenv("TMPDIR", dir, TRUE);
	b = blk_open_snapshot(&cfg, err, sizeof(err));
	g_assert_nonnull(b);
	d = g_dir_open(dir, 0, NULL);
	g_assert_cmpstr(g_dir_read_name(d), ==, "base.qcow2");
	g_assert_null(g_dir_read_name(d));
	g_dir_close(d);
	blk_get_info(b, &info);
	g_assert_cmpuint(info.size, ==, 64 * MiB);
	g_assert_false(info.readonly);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_nonnull(q);
	tb_expect_fill(q, 0, 1 * MiB, 0x11);
	memset(buf, 0x22, sizeof(buf));
	g_assert_cmpint(tb_pwrite(q, 4096, buf, sizeof(buf)), ==, 4096);
	g_assert_cmpint(tb_pwrite(q, 32 * MiB, buf, sizeof(buf)), ==, 4096);
	g_assert_cmpint(tb_flush(q), ==, 0);
	tb_expect_fill(q, 4096, 4096, 0x22);
	tb_expect_fill(q, 0, 4096, 0x11);
	blk_queue_free(q);
	/* While it runs the image is only read: qemu-io may read it too. */
	g_assert_cmpint(tb_sh(NULL, "qemu-io -r -f qcow2 -c 'read -P 0x11 4k 4k' %s", base), ==, 0);
	g_assert_cmpint(blk_close(b), ==, 0);
	/* The image never saw a write, and is clean. */
	g_assert_cmpint(tb_sh(NULL, "qemu-io -f qcow2 -c 'read -P 0x11 0 1M' "
			      "-c 'read -P 0 32M 4k' %s", base), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", base), ==, 0);
	/* A missing image: the error names it, and no overlay is made. */
	cfg.file = "/nonexistent/disk.qcow2";
	g_assert_null(blk_open_snapshot(&cfg, err, sizeof(err)));
	g_assert_nonnull(strstr(err, "/nonexistent/disk.qcow2"));
	if (old_tmp)
		g_setenv("TMPDIR", old_tmp, TRUE);
	else
		g_unsetenv("TMPDIR");
	g_free(old_tmp);
	g_free(base);
	tb_rmdir(dir);
}

/*
 * blockdev-snapshot-sync's two steps: an aborted snapshot gives the drive
 * back its image, writable (its locks and metadata taken back), and
 * leaves no file; a committed one sends writes to the new image only.
 */
static void test_live_abort_commit(void)
{
	char *dir, *img, *ovl;
	uint8_t buf[4096], back[4096];
	struct blk_snapshot *s;
	struct blk_queue *q;
	struct blk *b;
	char err[256];

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "base.qcow2", NULL);
	ovl = g_build_filename(dir, "ovl.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 1M", img), ==, 0);
	b = tb_open(img, "qcow2", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, false);
	q = blk_queue_new(b, err, sizeof(err));
	tb_fill(buf, sizeof(buf), 1);
	g_assert_cmpint(tb_pwrite(q, 0, buf, sizeof(buf)), ==, 4096);

	s = blk_snapshot_prepare(b, ovl, err, sizeof(err));
	g_assert_nonnull(s);
	g_assert_true(g_file_test(ovl, G_FILE_TEST_EXISTS));
	blk_snapshot_abort(s);
	g_assert_false(g_file_test(ovl, G_FILE_TEST_EXISTS));
	tb_fill(buf, sizeof(buf), 2);
	g_assert_cmpint(tb_pwrite(q, 4096, buf, sizeof(buf)), ==, 4096);
	/* Another process may not write the image: vireo holds it again. */
	g_assert_cmpint(tb_sh(NULL, "qemu-io -c 'write 0 512' %s 2>/dev/null", img), !=, 0);

	s = blk_snapshot_prepare(b, ovl, err, sizeof(err));
	g_assert_nonnull(s);
	blk_snapshot_commit(s);
	tb_fill(buf, sizeof(buf), 3);
	g_assert_cmpint(tb_pwrite(q, 0, buf, sizeof(buf)), ==, 4096);
	g_assert_cmpint(tb_pread(q, 4096, back, sizeof(back)), ==, 4096);
	tb_fill(buf, sizeof(buf), 2);
	g_assert_cmpmem(back, sizeof(back), buf, sizeof(buf));
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);

	/* The base has blocks 1 and 2; the overlay only the last write. */
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s && qemu-img check -q %s", img, ovl),
			==, 0);
	b = tb_open(img, "qcow2", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, true);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_cmpint(tb_pread(q, 0, back, sizeof(back)), ==, 4096);
	tb_fill(buf, sizeof(buf), 1);
	g_assert_cmpmem(back, sizeof(back), buf, sizeof(buf));
	blk_queue_free(q);
	blk_close(b);
	g_assert_cmpint(tb_sh(NULL, "qemu-img map --output=json %s | grep '\"depth\": 0,' | "
			      "grep -c '\"data\": true' | grep -qx 1", ovl), ==, 0);
	g_free(img);
	g_free(ovl);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/block/snapshot/overlay-is-qcow2", test_overlay_is_qcow2);
	g_test_add_func("/block/snapshot/writes-stay-in-overlay", test_writes_stay_in_overlay);
	g_test_add_func("/block/snapshot/live-abort-commit", test_live_abort_commit);
	return g_test_run();
}
