/*
 * Block layer over raw images: round trips through a queue on every
 * engine and cache mode, many requests in flight, statistics, errors,
 * and -drive parsing.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "machine.h"
#include "test_block_util.h"

#define MiB (1024 * 1024)

struct mode {
	const char *name;
	enum blk_aio aio;
	enum blk_cache cache;
};

static const struct mode modes[] = {
	{ "io_uring-writeback", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK },
	{ "io_uring-none", BLK_AIO_IO_URING, BLK_CACHE_NONE },
	{ "native-none", BLK_AIO_NATIVE, BLK_CACHE_NONE },
	{ "native-directsync", BLK_AIO_NATIVE, BLK_CACHE_DIRECTSYNC },
	{ "threads-writeback", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK },
	{ "threads-writethrough", BLK_AIO_THREADS, BLK_CACHE_WRITETHROUGH },
	{ "threads-unsafe", BLK_AIO_THREADS, BLK_CACHE_UNSAFE },
};

static char *make_raw(const char *dir, uint64_t size)
{
	char *f = g_build_filename(dir, "disk.raw", NULL);
	int fd = open(f, O_CREAT | O_RDWR | O_TRUNC, 0644);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(ftruncate(fd, size), ==, 0);
	close(fd);
	return f;
}

static void test_raw_roundtrip(gconstpointer data)
{
	const struct mode *md = data;
	char *dir = tb_tmpdir(), *f = make_raw(dir, 4 * MiB);
	struct blk *b = tb_open(f, "raw", md->aio, md->cache, false);
	struct blk_queue *q;
	struct blk_stats st;
	uint8_t *wbuf = NULL, *rbuf = NULL, *zero;
	gint64 t_start = g_get_monotonic_time();
	char err[256];
	int fd;

	if (!b && (md->cache == BLK_CACHE_NONE || md->cache == BLK_CACHE_DIRECTSYNC)) {
		g_test_skip("O_DIRECT not supported on the temporary directory");
		goto out;
	}
	g_assert_nonnull(b);
	g_assert_cmpuint(blk_size(b), ==, 4 * MiB);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_nonnull(q);
	g_assert_cmpint(posix_memalign((void **)&wbuf, 4096, MiB), ==, 0);
	g_assert_cmpint(posix_memalign((void **)&rbuf, 4096, MiB), ==, 0);
	zero = g_malloc0(MiB);
	tb_fill(wbuf, MiB, 1);

	/* aligned (O_DIRECT path when cache=none) */
	g_assert_cmpint(tb_pwrite(q, 0, wbuf, 64 * 1024), ==, 64 * 1024);
	g_assert_cmpint(tb_pread(q, 0, rbuf, 64 * 1024), ==, 64 * 1024);
	g_assert_cmpmem(rbuf, 64 * 1024, wbuf, 64 * 1024);
	/* unaligned offset and length (buffered twin) */
	g_assert_cmpint(tb_pwrite(q, 1 * MiB + 512, wbuf + 7, 3000), ==, 3000);
	g_assert_cmpint(tb_pread(q, 1 * MiB + 512, rbuf, 3000), ==, 3000);
	g_assert_cmpmem(rbuf, 3000, wbuf + 7, 3000);
	/* a scattered vector */
	{
		struct iovec iov[3] = { { wbuf, 4096 }, { wbuf + 8192, 512 }, { wbuf + 65536, 8192 } };
		struct iovec riov[2] = { { rbuf, 4608 }, { rbuf + 4608, 8192 } };
		struct tb_wait w = { 0 };

		g_assert_cmpint(blk_pwritev(q, 2 * MiB, iov, 3, tb_cb, &w), ==, 0);
		g_assert_cmpint(tb_wait(q, &w), ==, 4096 + 512 + 8192);
		memset(&w, 0, sizeof(w));
		g_assert_cmpint(blk_preadv(q, 2 * MiB, riov, 2, tb_cb, &w), ==, 0);
		g_assert_cmpint(tb_wait(q, &w), ==, 4096 + 512 + 8192);
		g_assert_cmpmem(rbuf, 4096, wbuf, 4096);
		g_assert_cmpmem(rbuf + 4096, 512, wbuf + 8192, 512);
		g_assert_cmpmem(rbuf + 4608, 8192, wbuf + 65536, 8192);
	}
	g_assert_cmpint(tb_flush(q), ==, 0);

	/* write_zeroes and discard read back as zeroes */
	g_assert_cmpint(tb_zeroes(q, 4096, 8192, false), ==, 0);
	g_assert_cmpint(tb_pread(q, 0, rbuf, 16384), ==, 16384);
	g_assert_cmpmem(rbuf, 4096, wbuf, 4096);
	g_assert_cmpmem(rbuf + 4096, 8192, zero, 8192);
	g_assert_cmpmem(rbuf + 12288, 4096, wbuf + 12288, 4096);
	g_assert_cmpint(tb_discard(q, 0, 65536), ==, 0);
	g_assert_cmpint(tb_pread(q, 0, rbuf, 65536), ==, 65536);
	g_assert_cmpmem(rbuf, 65536, zero, 65536);

	/* errors: out of range fails at submission, without a callback */
	{
		struct iovec iov = { rbuf, 4096 };

		g_assert_cmpint(blk_preadv(q, 4 * MiB - 512, &iov, 1, tb_cb, NULL), ==, -EINVAL);
		g_assert_cmpint(blk_pwritev(q, UINT64_MAX - 100, &iov, 1, tb_cb, NULL), ==, -EINVAL);
	}

	blk_get_stats(b, &st);
	g_assert_cmpuint(st.ops[BLK_OP_READ], ==, 5);
	g_assert_cmpuint(st.ops[BLK_OP_WRITE], ==, 4);
	g_assert_cmpuint(st.ops[BLK_OP_FLUSH], ==, 1);
	g_assert_cmpuint(st.ops[BLK_OP_DISCARD], ==, 1);
	g_assert_cmpuint(st.bytes[BLK_OP_READ], ==, 65536 + 3000 + 12800 + 16384 + 65536);
	g_assert_cmpuint(st.bytes[BLK_OP_WRITE], ==, 65536 + 3000 + 12800 + 8192);
	g_assert_cmpuint(st.total_ns[BLK_OP_READ], >, 0);
	g_assert_cmpuint(st.total_ns[BLK_OP_FLUSH], >, 0);
	/* Latencies are taken per batch: none may come out negative (huge). */
	for (int op = 0; op < BLK_OP_NR; op++)
		g_assert_cmpuint(st.total_ns[op], <=,
				 (uint64_t)(g_get_monotonic_time() - t_start) * 1000);

	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);

	/* What went through the block layer is in the file. */
	fd = open(f, O_RDONLY);
	g_assert_cmpint(pread(fd, rbuf, 3000, 1 * MiB + 512), ==, 3000);
	g_assert_cmpmem(rbuf, 3000, wbuf + 7, 3000);
	close(fd);

	/* readonly refuses writes */
	b = tb_open(f, "raw", md->aio, md->cache, true);
	g_assert_nonnull(b);
	g_assert_true(blk_is_readonly(b));
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_cmpint(tb_pwrite(q, 0, wbuf, 512), ==, -EROFS);
	blk_queue_free(q);
	blk_close(b);
	free(wbuf);
	free(rbuf);
	g_free(zero);
out:
	g_free(f);
	tb_rmdir(dir);
}

struct inflight {
	int done;
	int64_t ret[64];
};

struct slot {
	struct inflight *in;
	int i;
};

static void slot_cb(void *opaque, int64_t ret)
{
	struct slot *s = opaque;

	s->in->ret[s->i] = ret;
	s->in->done++;
}

/* 64 requests in flight at once on one queue, completions in any order. */
static void test_raw_queue_depth(gconstpointer data)
{
	const struct mode *md = data;
	char *dir = tb_tmpdir(), *f = make_raw(dir, 8 * MiB);
	struct blk *b = tb_open(f, "raw", md->aio, md->cache, false);
	struct inflight in = { 0 };
	struct slot slots[64];
	struct iovec iov[64];
	struct blk_queue *q;
	uint8_t *buf = NULL, *rbuf = NULL;
	char err[256];

	if (!b) {
		g_test_skip("O_DIRECT not supported on the temporary directory");
		goto out;
	}
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_cmpint(posix_memalign((void **)&buf, 4096, 64 * 4096), ==, 0);
	g_assert_cmpint(posix_memalign((void **)&rbuf, 4096, 4096), ==, 0);
	tb_fill(buf, 64 * 4096, 42);
	for (int i = 0; i < 64; i++) {
		slots[i] = (struct slot){ &in, i };
		iov[i] = (struct iovec){ buf + i * 4096, 4096 };
		/* spread over the disk, in a scrambled order */
		g_assert_cmpint(blk_pwritev(q, ((i * 37) % 64) * 128 * 1024, &iov[i], 1,
					    slot_cb, &slots[i]), ==, 0);
	}
	g_assert_cmpint(in.done, ==, 0);
	while (in.done < 64) {
		struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

		poll(&p, 1, 1000);
		blk_queue_poll(q);
	}
	for (int i = 0; i < 64; i++) {
		g_assert_cmpint(in.ret[i], ==, 4096);
		g_assert_cmpint(tb_pread(q, ((i * 37) % 64) * 128 * 1024, rbuf, 4096), ==, 4096);
		g_assert_cmpmem(rbuf, 4096, buf + i * 4096, 4096);
	}
	blk_queue_free(q);
	blk_close(b);
	free(buf);
	free(rbuf);
out:
	g_free(f);
	tb_rmdir(dir);
}

static void test_drive_options(void)
{
	char *dir = tb_tmpdir(), *f = make_raw(dir, MiB), *opt, err[512];
	char *f1 = g_strdup_printf("%s.1", f), *f2 = g_strdup_printf("%s.2", f);
	struct machine m;
	struct drive *d;

	/* one file per drive: the same image twice is refused (locking) */
	g_assert_cmpint(tb_sh(NULL, "cp %s %s && cp %s %s", f, f1, f, f2), ==, 0);
	memset(&m, 0, sizeof(m));
	opt = g_strdup_printf("file=%s,format=raw,if=virtio", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), ==, 0);
	g_free(opt);
	opt = g_strdup_printf("%s,format=raw,cache=none,aio=native,readonly=on,discard=unmap", f1);
	if (drive_add(&m, opt, err, sizeof(err)) < 0) {
		/* O_DIRECT missing on this file system: the message says so */
		g_assert_nonnull(strstr(err, "O_DIRECT"));
		g_free(opt);
		opt = g_strdup_printf("%s,format=raw,aio=threads,readonly=on,discard=unmap", f1);
		g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), ==, 0);
	}
	g_free(opt);
	opt = g_strdup_printf("file=%s,format=raw,if=none,id=disk1,aio=threads,cache=unsafe", f2);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), ==, 0);
	g_free(opt);

	d = drive_find(&m, "virtio0");
	g_assert_nonnull(d);
	g_assert_cmpstr(d->iface, ==, "virtio");
	g_assert_cmpint(d->cfg.aio, ==, BLK_AIO_IO_URING);
	g_assert_cmpint(d->cfg.cache, ==, BLK_CACHE_WRITEBACK);
	g_assert_false(d->cfg.readonly);
	g_assert_false(d->cfg.discard_unmap);
	g_assert_cmpuint(blk_size(d->blk), ==, MiB);
	d = drive_find(&m, "virtio1");
	g_assert_nonnull(d);
	g_assert_true(d->cfg.readonly);
	g_assert_true(d->cfg.discard_unmap);
	g_assert_true(blk_is_readonly(d->blk));
	d = drive_find(&m, "disk1");
	g_assert_nonnull(d);
	{
		struct blk_info info;

		blk_get_info(d->blk, &info);
		g_assert_cmpstr(info.file, ==, f2);
		g_assert_cmpstr(info.format, ==, "raw");
		g_assert_cmpint(info.cache, ==, BLK_CACHE_UNSAFE);
		g_assert_null(info.backing_file);
		g_assert_cmpint(info.backing_depth, ==, 0);
	}
	g_assert_cmpstr(d->iface, ==, "none");
	g_assert_cmpint(d->cfg.cache, ==, BLK_CACHE_UNSAFE);
	g_assert_cmpint(d->cfg.aio, ==, BLK_AIO_THREADS);
	g_assert_null(drive_find(&m, "nope"));

	/* each bad value is named */
	opt = g_strdup_printf("file=%s,cache=foo", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), ==, -EINVAL);
	g_assert_cmpstr(err, ==, "-drive: cache='foo' is not one of: writeback, none, "
			"writethrough, directsync, unsafe");
	g_free(opt);
	opt = g_strdup_printf("file=%s,aio=posix", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "aio='posix'"));
	g_free(opt);
	opt = g_strdup_printf("file=%s,format=vmdk", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "format='vmdk'"));
	g_free(opt);
	opt = g_strdup_printf("file=%s,if=ide", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "if='ide'"));
	g_free(opt);
	opt = g_strdup_printf("file=%s,readonly=maybe", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "readonly"));
	g_free(opt);
	opt = g_strdup_printf("file=%s,nosuchkey=1", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "nosuchkey"));
	g_free(opt);
	opt = g_strdup_printf("file=%s,aio=native", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "aio=native requires cache=none"));
	g_free(opt);
	opt = g_strdup_printf("file=%s,id=disk1,format=raw", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "duplicate id 'disk1'"));
	g_free(opt);
	opt = g_strdup_printf("file=%s,id=again,format=raw", f);
	g_assert_cmpint(drive_add(&m, opt, err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "lock"));
	g_free(opt);
	g_assert_cmpint(drive_add(&m, "format=raw", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "file"));
	g_assert_cmpint(drive_add(&m, "file=/nonexistent/x.img,format=raw", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "/nonexistent/x.img"));

	drive_close_all(&m);
	g_assert_null(m.drives);
	g_free(f1);
	g_free(f2);
	g_free(f);
	tb_rmdir(dir);
}

/* A probed raw image refuses to become a qcow2 one; a declared one does not. */
static void test_probed_raw_block0(void)
{
	char *dir = tb_tmpdir(), *f = make_raw(dir, MiB), err[256];
	uint8_t magic[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 }, other[512] = { 'x' };
	struct blk_queue *q;
	struct blk *b;

	b = tb_open(f, NULL, BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_cmpint(tb_pwrite(q, 0, magic, sizeof(magic)), ==, -EPERM);
	g_assert_cmpint(tb_pwrite(q, 2, magic + 2, 6), ==, 6);	/* half a magic: fine */
	g_assert_cmpint(tb_pwrite(q, 0, magic, 2), ==, -EPERM);	/* completes the magic */
	g_assert_cmpint(tb_pwrite(q, 0, other, sizeof(other)), ==, 512);
	g_assert_cmpint(tb_pwrite(q, 512, magic, sizeof(magic)), ==, 512);
	blk_queue_free(q);
	blk_close(b);
	b = tb_open(f, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_cmpint(tb_pwrite(q, 0, magic, sizeof(magic)), ==, 512);
	blk_queue_free(q);
	blk_close(b);
	g_free(f);
	tb_rmdir(dir);
}

/* Freeing a queue completes what is still in flight, callbacks included. */
/*
 * discard=ignore (the -drive default): a discard succeeds, is counted, and
 * leaves the data in place; the same discard with discard=unmap reads back
 * as zeroes.
 */
static void test_discard_ignore(void)
{
	char *dir = tb_tmpdir(), *f = make_raw(dir, MiB), err[256];
	uint8_t *wbuf = g_malloc(65536), *rbuf = g_malloc(65536);
	struct blk_config cfg = { .file = f, .format = "raw", .aio = BLK_AIO_IO_URING,
				  .cache = BLK_CACHE_WRITEBACK };

	tb_fill(wbuf, 65536, 7);
	for (int unmap = 0; unmap < 2; unmap++) {
		struct blk *b;
		struct blk_queue *q;
		struct blk_stats st;

		cfg.discard_unmap = unmap;
		b = blk_open(&cfg, err, sizeof(err));
		g_assert_nonnull(b);
		q = blk_queue_new(b, err, sizeof(err));
		g_assert_nonnull(q);
		g_assert_cmpint(tb_pwrite(q, 0, wbuf, 65536), ==, 65536);
		g_assert_cmpint(tb_discard(q, 0, 65536), ==, 0);
		g_assert_cmpint(tb_pread(q, 0, rbuf, 65536), ==, 65536);
		if (unmap) {
			for (unsigned i = 0; i < 65536; i++)
				g_assert_cmpuint(rbuf[i], ==, 0);
		} else {
			g_assert_cmpmem(rbuf, 65536, wbuf, 65536);
		}
		blk_get_stats(b, &st);
		g_assert_cmpuint(st.ops[BLK_OP_DISCARD], ==, 1);
		blk_queue_free(q);
		blk_close(b);
	}
	g_free(wbuf);
	g_free(rbuf);
	g_free(f);
	tb_rmdir(dir);
}

static void test_queue_free_drains(void)
{
	char *dir = tb_tmpdir(), *f = make_raw(dir, MiB), err[256];
	struct blk *b = tb_open(f, "raw", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, false);
	struct tb_wait w[4] = { 0 };
	uint8_t buf[4096] = { 1 };
	struct iovec iov = { buf, sizeof(buf) };
	struct blk_queue *q = blk_queue_new(b, err, sizeof(err));

	for (int i = 0; i < 3; i++)
		g_assert_cmpint(blk_pwritev(q, i * 4096, &iov, 1, tb_cb, &w[i]), ==, 0);
	g_assert_cmpint(blk_flush(q, tb_cb, &w[3]), ==, 0);
	blk_queue_free(q);
	for (int i = 0; i < 4; i++) {
		g_assert_true(w[i].done);
		g_assert_cmpint(w[i].ret, ==, i < 3 ? 4096 : 0);
	}
	blk_close(b);
	g_free(f);
	tb_rmdir(dir);
}

/*
 * QEMU's lock bytes: a process holding "write" (101) and not sharing it
 * (201), as qemu-system does, keeps vireo out, and vireo keeps qemu-img out.
 */
static void test_image_locking(void)
{
	char *dir = tb_tmpdir(), *f = make_raw(dir, MiB), *out = NULL;
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_len = 1 };
	struct blk *b;
	int fd;

	fd = open(f, O_RDWR);
	fl.l_start = 101;
	g_assert_cmpint(fcntl(fd, F_OFD_SETLK, &fl), ==, 0);
	fl.l_start = 201;
	g_assert_cmpint(fcntl(fd, F_OFD_SETLK, &fl), ==, 0);
	g_assert_null(tb_open(f, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false));
	g_assert_null(tb_open(f, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, true));
	close(fd);
	b = tb_open(f, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	blk_close(b);
	if (tb_have_qemu_img()) {
		char *q = g_build_filename(dir, "l.qcow2", NULL);

		g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 1M", q), ==, 0);
		b = tb_open(q, "qcow2", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
		g_assert_nonnull(b);
		g_assert_cmpint(tb_sh(&out, "qemu-img check %s", q), !=, 0);
		g_assert_nonnull(strstr(out, "Failed to get shared \"write\" lock"));
		g_free(out);
		g_assert_cmpint(tb_sh(&out, "qemu-io -c 'write 0 4k' %s", q), !=, 0);
		g_assert_nonnull(strstr(out, "lock"));
		g_free(out);
		g_assert_cmpint(tb_sh(NULL, "qemu-img info -U %s >/dev/null", q), ==, 0);
		blk_close(b);
		g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", q), ==, 0);
		g_free(q);
	}
	g_free(f);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
		char *p = g_strdup_printf("/block/raw/roundtrip/%s", modes[i].name);

		g_test_add_data_func(p, &modes[i], test_raw_roundtrip);
		g_free(p);
		p = g_strdup_printf("/block/raw/queue-depth/%s", modes[i].name);
		g_test_add_data_func(p, &modes[i], test_raw_queue_depth);
		g_free(p);
	}
	g_test_add_func("/block/drive/options", test_drive_options);
	g_test_add_func("/block/image-locking", test_image_locking);
	g_test_add_func("/block/queue-free-drains", test_queue_free_drains);
	g_test_add_func("/block/discard-ignore", test_discard_ignore);
	g_test_add_func("/block/probed-raw-block0", test_probed_raw_block0);
	return g_test_run();
}
