/*
 * -drive detect-zeroes=: a write of all-zero data becomes a write of
 * zeroes.  On qcow2 the range turns into zero clusters instead of
 * allocated data (qemu-img map shows it); on raw with unmap and
 * discard=unmap the file gives its blocks back.  The write still answers
 * with its byte count, as any write; data that is not all zero is written
 * as it is.
 */
#include <json-glib/json-glib.h>
#include <sys/stat.h>

#include "test_block_util.h"

#define KiB 1024ull

static struct blk *open_dz(const char *file, const char *fmt, enum blk_detect_zeroes dz,
			   bool unmap)
{
	struct blk_config cfg = { .file = file, .format = fmt, .aio = BLK_AIO_IO_URING,
				  .discard_unmap = unmap, .detect_zeroes = dz };
	char err[256] = "";
	struct blk *b = blk_open(&cfg, err, sizeof(err));

	g_assert_nonnull(b);
	return b;
}

/* Write the 64 KiB clusters 0 (data), 1 (zeroes) and 2 (mostly zeroes). */
static void write_three(struct blk *b)
{
	uint8_t *buf = g_malloc0(64 * KiB);
	struct blk_queue *q = blk_queue_new(b, (char[64]){ 0 }, 64);

	memset(buf, 0x55, 64 * KiB);
	g_assert_cmpint(tb_pwrite(q, 0, buf, 64 * KiB), ==, 64 * KiB);
	memset(buf, 0, 64 * KiB);
	g_assert_cmpint(tb_pwrite(q, 64 * KiB, buf, 64 * KiB), ==, 64 * KiB);
	buf[64 * KiB - 1] = 1;
	g_assert_cmpint(tb_pwrite(q, 128 * KiB, buf, 64 * KiB), ==, 64 * KiB);
	tb_expect_fill(q, 64 * KiB, 64 * KiB, 0);
	g_assert_cmpint(tb_flush(q), ==, 0);
	blk_queue_free(q);
	g_free(buf);
}

/* qemu-img map's entry that covers off says "data": want_data. */
static void expect_mapped(const char *img, uint64_t off, bool want_data)
{
	JsonParser *p = json_parser_new();
	char *out = NULL;
	JsonArray *a;
	bool found = false;

	g_assert_cmpint(tb_sh(&out, "qemu-img map -U --output=json %s", img), ==, 0);
	g_assert_true(json_parser_load_from_data(p, out, -1, NULL));
	a = json_node_get_array(json_parser_get_root(p));
	for (unsigned i = 0; i < json_array_get_length(a); i++) {
		JsonObject *e = json_array_get_object_element(a, i);
		uint64_t start = json_object_get_int_member(e, "start");
		uint64_t len = json_object_get_int_member(e, "length");

		if (off >= start && off < start + len) {
			g_assert_cmpint(json_object_get_boolean_member(e, "data"), ==, want_data);
			found = true;
		}
	}
	g_assert_true(found);
	g_object_unref(p);
	g_free(out);
}

static void test_qcow2(void)
{
	char *dir, *img;
	struct blk *b;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "d.qcow2", NULL);
	for (int dz = BLK_DZ_OFF; dz <= BLK_DZ_ON; dz++) {
		g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 4M", img), ==, 0);
		b = open_dz(img, "qcow2", dz, false);
		write_three(b);
		g_assert_cmpint(blk_close(b), ==, 0);
		g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
		expect_mapped(img, 0, true);
		/* The zero cluster is data only without detect-zeroes. */
		expect_mapped(img, 64 * KiB, dz == BLK_DZ_OFF);
		expect_mapped(img, 128 * KiB, true);
	}
	g_free(img);
	tb_rmdir(dir);
}

static uint64_t blocks(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return st.st_blocks;
}

static void test_raw_unmap(void)
{
	char *dir = tb_tmpdir(), *img = g_build_filename(dir, "d.raw", NULL);
	uint8_t *buf = g_malloc(1024 * KiB);
	struct blk_queue *q;
	struct blk *b;
	uint64_t full;

	g_assert_cmpint(tb_sh(NULL, "truncate -s 4M %s", img), ==, 0);
	b = open_dz(img, "raw", BLK_DZ_UNMAP, true);
	q = blk_queue_new(b, (char[64]){ 0 }, 64);
	memset(buf, 0x77, 1024 * KiB);
	g_assert_cmpint(tb_pwrite(q, 0, buf, 1024 * KiB), ==, 1024 * KiB);
	g_assert_cmpint(tb_flush(q), ==, 0);
	full = blocks(img);
	g_assert_cmpuint(full * 512, >=, 1024 * KiB);
	/* All zero: the blocks go back to the file system. */
	memset(buf, 0, 1024 * KiB);
	g_assert_cmpint(tb_pwrite(q, 0, buf, 1024 * KiB), ==, 1024 * KiB);
	g_assert_cmpint(tb_flush(q), ==, 0);
	g_assert_cmpuint(blocks(img) * 512, <, full * 512 - 512 * KiB);
	tb_expect_fill(q, 0, 1024 * KiB, 0);
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_free(buf);
	g_free(img);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/block/detect-zeroes/qcow2", test_qcow2);
	g_test_add_func("/block/detect-zeroes/raw-unmap", test_raw_unmap);
	return g_test_run();
}
