/*
 * qcow2 against qemu-img: images qemu-img made (plain, backing chains,
 * compressed with zlib and zstd) read back what qemu-io wrote; after
 * vireo writes, qemu-img check is clean and qemu-img compare matches a raw
 * file that received the same writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

#include "test_block_util.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static const enum blk_aio engines[] = { BLK_AIO_IO_URING, BLK_AIO_NATIVE, BLK_AIO_THREADS };
static const char *const engine_names[] = { "io_uring", "native", "threads" };

static enum blk_cache cache_for(enum blk_aio aio)
{
	/* Linux AIO is only asynchronous with O_DIRECT (QEMU insists on it). */
	return aio == BLK_AIO_NATIVE ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK;
}

static void test_read_qemu_image(gconstpointer data)
{
	enum blk_aio aio = engines[GPOINTER_TO_INT(data)];
	char *dir, *img, err[256];
	struct blk_queue *q;
	struct blk *b;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "a.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 64M && "
			      "qemu-io -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 1052672 8k' "
			      "-c 'write -P 0x11 33554432 1M' -c 'write -z 33619968 64k' %s",
			      img, img), ==, 0);
	b = tb_open(img, "qcow2", aio, cache_for(aio), true);
	g_assert_nonnull(b);
	g_assert_cmpuint(blk_size(b), ==, 64 * MiB);
	q = blk_queue_new(b, err, sizeof(err));
	g_assert_nonnull(q);
	tb_expect_fill(q, 0, 64 * KiB, 0xab);
	tb_expect_fill(q, 64 * KiB, 64 * KiB, 0);
	tb_expect_fill(q, 1052672, 8 * KiB, 0xcd);
	tb_expect_fill(q, 1052672 - 4096, 4096, 0);
	tb_expect_fill(q, 32 * MiB, 64 * KiB, 0x11);
	tb_expect_fill(q, 33619968, 64 * KiB, 0);	/* zero cluster */
	tb_expect_fill(q, 33619968 + 64 * KiB, 512 * KiB, 0x11);
	tb_expect_fill(q, 64 * MiB - 4096, 4096, 0);
	blk_queue_free(q);
	blk_close(b);
	/* probing finds qcow2 without format= */
	b = tb_open(img, NULL, aio, cache_for(aio), true);
	g_assert_nonnull(b);
	g_assert_cmpuint(blk_size(b), ==, 64 * MiB);
	blk_close(b);
	g_free(img);
	tb_rmdir(dir);
}

/* base (raw) <- mid (qcow2) <- low (qcow2) <- top (qcow2): depth 3 */
static void test_backing_chain(void)
{
	char *dir, *top, *mirror, err[256];
	uint8_t *buf = g_malloc(128 * KiB);
	struct blk_queue *q, *mq;
	struct blk *b, *m;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	g_assert_cmpint(tb_sh(NULL, "cd %s && qemu-img create -q -f raw base.raw 8M && "
			      "qemu-io -f raw -c 'write -P 0x01 0 1M' base.raw && "
			      "qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 && "
			      "qemu-io -c 'write -P 0x02 64k 64k' mid.qcow2 && "
			      "qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 low.qcow2 12M && "
			      "qemu-io -c 'write -P 0x03 128k 64k' -c 'write -z 0 4k' low.qcow2 && "
			      "qemu-img create -q -f qcow2 -b low.qcow2 -F qcow2 top.qcow2 && "
			      "qemu-io -c 'write -P 0x04 192k 4k' top.qcow2 && "
			      "qemu-img convert -O raw top.qcow2 mirror.raw", dir), ==, 0);
	top = g_build_filename(dir, "top.qcow2", NULL);
	mirror = g_build_filename(dir, "mirror.raw", NULL);
	b = tb_open(top, "qcow2", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	g_assert_cmpuint(blk_size(b), ==, 12 * MiB);
	{
		struct blk_info info;

		blk_get_info(b, &info);
		g_assert_cmpstr(info.file, ==, top);
		g_assert_cmpstr(info.format, ==, "qcow2");
		g_assert_cmpuint(info.size, ==, 12 * MiB);
		g_assert_false(info.readonly);
		g_assert_cmpint(info.aio, ==, BLK_AIO_IO_URING);
		g_assert_cmpstr(info.backing_file, ==, "low.qcow2");
		g_assert_cmpstr(info.backing_format, ==, "qcow2");
		g_assert_cmpint(info.backing_depth, ==, 3);
	}
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 0, 4 * KiB, 0);		/* zero in low */
	tb_expect_fill(q, 4 * KiB, 60 * KiB, 0x01);	/* from base */
	tb_expect_fill(q, 64 * KiB, 64 * KiB, 0x02);	/* from mid */
	tb_expect_fill(q, 128 * KiB, 64 * KiB, 0x03);	/* from low */
	tb_expect_fill(q, 192 * KiB, 4 * KiB, 0x04);	/* top */
	tb_expect_fill(q, 196 * KiB, 60 * KiB, 0x01);
	tb_expect_fill(q, 8 * MiB - 4096, 4 * KiB, 0);	/* past the raw base */
	tb_expect_fill(q, 8 * MiB, 4 * MiB, 0);

	/* Partial writes copy the rest of the cluster up from the chain. */
	m = tb_open(mirror, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	mq = blk_queue_new(m, err, sizeof(err));
	tb_fill(buf, 128 * KiB, 7);
	struct { uint64_t off, len; } w[] = {
		{ 64 * KiB + 512, 4096 }, { 130 * KiB, 100 }, { 8 * MiB - 1000, 2000 },
		{ 300 * KiB, 128 * KiB }, { 12 * MiB - 512, 512 },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(w); i++) {
		g_assert_cmpint(tb_pwrite(q, w[i].off, buf, w[i].len), ==, (int64_t)w[i].len);
		g_assert_cmpint(tb_pwrite(mq, w[i].off, buf, w[i].len), ==, (int64_t)w[i].len);
	}
	/* write_zeroes over backing data reads zeroes; so does discard */
	g_assert_cmpint(tb_zeroes(q, 512 * KiB, 128 * KiB, false), ==, 0);
	g_assert_cmpint(tb_zeroes(mq, 512 * KiB, 128 * KiB, false), ==, 0);
	g_assert_cmpint(tb_zeroes(q, 700 * KiB, 1000, false), ==, 0);
	g_assert_cmpint(tb_zeroes(mq, 700 * KiB, 1000, false), ==, 0);
	g_assert_cmpint(tb_discard(q, 640 * KiB, 64 * KiB), ==, 0);
	g_assert_cmpint(tb_zeroes(mq, 640 * KiB, 64 * KiB, false), ==, 0);
	tb_expect_fill(q, 512 * KiB, 192 * KiB, 0);
	tb_expect_fill(q, 64 * KiB, 512, 0x02);
	g_assert_cmpint(tb_pread(q, 64 * KiB + 512, buf + 64 * KiB, 4096), ==, 4096);
	g_assert_cmpmem(buf + 64 * KiB, 4096, buf, 4096);
	g_assert_cmpint(tb_flush(q), ==, 0);
	blk_queue_free(q);
	blk_queue_free(mq);
	g_assert_cmpint(blk_close(b), ==, 0);
	blk_close(m);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", top), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img compare -q -f qcow2 -F raw %s %s", top, mirror), ==, 0);
	/* the backing files were not touched */
	g_assert_cmpint(tb_sh(NULL, "cd %s && qemu-io -c 'read -P 0x03 128k 64k' low.qcow2 "
			      ">/dev/null && qemu-img check -q mid.qcow2", dir), ==, 0);
	g_free(top);
	g_free(mirror);
	g_free(buf);
	tb_rmdir(dir);
}

static void test_compressed(gconstpointer data)
{
	const char *ctype = data;
	char *dir, *img, *raw, *mirror, err[256];
	uint8_t *got, *want, *buf;
	struct blk_queue *q, *mq;
	struct blk *b, *m;
	gsize rawlen;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	g_assert_cmpint(tb_sh(NULL, "cd %s && qemu-img create -q -f qcow2 src.qcow2 4M && "
			      "qemu-io -c 'write -P 0xab 0 64k' -c 'write -P 0x5a 100k 300k' "
			      "-c 'write -P 0x33 3M 1M' src.qcow2 && "
			      "dd if=/dev/urandom of=rnd bs=64k count=2 2>/dev/null && "
			      "qemu-io -f qcow2 -c 'write -P 0x00 1M 0' src.qcow2 >/dev/null && "
			      "qemu-img convert -O raw src.qcow2 src.raw && "
			      "dd if=rnd of=src.raw bs=64k seek=24 conv=notrunc 2>/dev/null && "
			      "qemu-img convert -c -f raw -O qcow2 -o compression_type=%s src.raw c.qcow2 && "
			      "cp src.raw mirror.raw", dir, ctype), ==, 0);
	img = g_build_filename(dir, "c.qcow2", NULL);
	raw = g_build_filename(dir, "src.raw", NULL);
	mirror = g_build_filename(dir, "mirror.raw", NULL);
	/* really compressed: the image is smaller than its data */
	g_assert_true(g_file_get_contents(raw, (char **)&want, &rawlen, NULL));
	g_assert_cmpuint(rawlen, ==, 4 * MiB);
	b = tb_open(img, "qcow2", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	got = g_malloc(4 * MiB);
	g_assert_cmpint(tb_pread(q, 0, got, 4 * MiB), ==, 4 * MiB);
	g_assert_cmpmem(got, 4 * MiB, want, 4 * MiB);
	g_assert_cmpint(tb_pread(q, 100 * KiB + 3, got, 5000), ==, 5000);
	g_assert_cmpmem(got, 5000, want + 100 * KiB + 3, 5000);

	/* Writing into compressed clusters decompresses them first. */
	m = tb_open(mirror, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	mq = blk_queue_new(m, err, sizeof(err));
	buf = g_malloc(200 * KiB);
	tb_fill(buf, 200 * KiB, 99);
	uint64_t offs[] = { 10, 130 * KiB, 3 * MiB + 60 * KiB, 24 * 64 * KiB + 1 };
	for (size_t i = 0; i < G_N_ELEMENTS(offs); i++) {
		g_assert_cmpint(tb_pwrite(q, offs[i], buf, 70 * KiB), ==, 70 * KiB);
		g_assert_cmpint(tb_pwrite(mq, offs[i], buf, 70 * KiB), ==, 70 * KiB);
	}
	g_assert_cmpint(tb_discard(q, 3 * MiB + 192 * KiB, 128 * KiB), ==, 0);
	g_assert_cmpint(tb_zeroes(mq, 3 * MiB + 192 * KiB, 128 * KiB, false), ==, 0);
	blk_queue_free(q);
	blk_queue_free(mq);
	g_assert_cmpint(blk_close(b), ==, 0);
	blk_close(m);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img compare -q -f qcow2 -F raw %s %s", img, mirror), ==, 0);
	g_free(buf);
	g_free(got);
	g_free(want);
	g_free(img);
	g_free(raw);
	g_free(mirror);
	tb_rmdir(dir);
}

struct layout {
	const char *name;
	const char *opts;	/* qemu-img create -o */
	uint64_t size;
	uint64_t span;		/* bytes the writes spread over */
	bool grows;		/* the refcount table must move */
};

static uint64_t reftable_offset(const char *img)
{
	uint8_t h[56];
	FILE *f = fopen(img, "rb");

	g_assert_nonnull(f);
	g_assert_cmpuint(fread(h, 1, sizeof(h), f), ==, sizeof(h));
	fclose(f);
	return GUINT64_FROM_BE(*(uint64_t *)(h + 48));
}

static const struct layout layouts[] = {
	{ "default", "cluster_size=65536", 64 * MiB, 64 * MiB },
	/* 64 refcount blocks of 64 entries: the refcount table must grow */
	{ "c512-ref64", "cluster_size=512,refcount_bits=64", 8 * MiB, 6 * MiB, true },
	{ "c4k-ref1", "cluster_size=4096,refcount_bits=1", 16 * MiB, 16 * MiB },
	{ "c2m-ref8", "cluster_size=2M,refcount_bits=8", 64 * MiB, 64 * MiB },
};

/* Random writes, zeroes and discards, mirrored to a raw file. */
static void run_writes(struct blk_queue *q, struct blk_queue *mq, const struct layout *l,
		       uint32_t seed, int n)
{
	uint8_t *buf = g_malloc(256 * KiB);

	for (int i = 0; i < n; i++) {
		uint64_t len, off;
		int kind;

		seed = seed * 1103515245u + 12345u;
		kind = (seed >> 8) % 10;
		len = 1 + (seed >> 12) % (kind < 7 ? 256 * KiB : 1 * MiB);
		if ((seed >> 4) & 1)
			len = (len + 511) & ~511ull;
		seed = seed * 1103515245u + 12345u;
		off = ((uint64_t)seed * 2654435761u) % (l->span - len);
		if ((seed >> 3) & 1)
			off &= ~4095ull;
		if (kind < 7) {
			len = len > 256 * KiB ? 256 * KiB : len;
			tb_fill(buf, len, seed);
			g_assert_cmpint(tb_pwrite(q, off, buf, len), ==, (int64_t)len);
			g_assert_cmpint(tb_pwrite(mq, off, buf, len), ==, (int64_t)len);
		} else if (kind < 9) {
			g_assert_cmpint(tb_zeroes(q, off, len, kind == 8), ==, 0);
			g_assert_cmpint(tb_zeroes(mq, off, len, false), ==, 0);
		} else {
			/* discard leaves partial clusters: mirror with what qcow2 reads */
			uint8_t *a = g_malloc(len);

			g_assert_cmpint(tb_discard(q, off, len), ==, 0);
			g_assert_cmpint(tb_pread(q, off, a, len), ==, (int64_t)len);
			g_assert_cmpint(tb_pwrite(mq, off, a, len), ==, (int64_t)len);
			g_free(a);
		}
		if (i % 16 == 15)
			g_assert_cmpint(tb_flush(q), ==, 0);
	}
	g_free(buf);
}

static void test_write_check_compare(gconstpointer data)
{
	const struct layout *l = data;
	char *dir, *img, *mirror, err[256];
	uint64_t rt0;
	struct blk_queue *q, *mq;
	struct blk *b, *m;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "w.qcow2", NULL);
	mirror = g_build_filename(dir, "w.raw", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -o %s %s %llu && "
			      "qemu-img create -q -f raw %s %llu", l->opts, img,
			      (unsigned long long)l->size, mirror,
			      (unsigned long long)l->size), ==, 0);
	rt0 = reftable_offset(img);
	for (size_t e = 0; e < G_N_ELEMENTS(engines); e++) {
		b = tb_open(img, "qcow2", engines[e], cache_for(engines[e]), false);
		g_assert_nonnull(b);
		q = blk_queue_new(b, err, sizeof(err));
		g_assert_nonnull(q);
		m = tb_open(mirror, "raw", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
		mq = blk_queue_new(m, err, sizeof(err));
		run_writes(q, mq, l, 1234 + e, 120);
		blk_queue_free(q);
		blk_queue_free(mq);
		g_assert_cmpint(blk_close(b), ==, 0);
		blk_close(m);
		g_test_message("engine %s", engine_names[e]);
		g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
		g_assert_cmpint(tb_sh(NULL, "qemu-img compare -q -f qcow2 -F raw %s %s", img,
				      mirror), ==, 0);
	}
	if (l->grows)
		g_assert_cmpuint(reftable_offset(img), !=, rt0);
	g_free(img);
	g_free(mirror);
	tb_rmdir(dir);
}

struct worker {
	struct blk *b;
	uint64_t base;
	uint32_t seed;
	uint8_t *expect;	/* 4 MiB region image */
};

static void *worker_run(void *opaque)
{
	struct worker *w = opaque;
	char err[256];
	struct blk_queue *q = blk_queue_new(w->b, err, sizeof(err));
	struct tb_wait waits[16];
	struct iovec iov[16];
	uint8_t *bufs = g_malloc(16 * 8 * KiB);

	g_assert_nonnull(q);
	/* 16 writes in flight at a time, to clusters that may be unallocated */
	for (int round = 0; round < 20; round++) {
		int done = 0;

		for (int i = 0; i < 16; i++) {
			uint64_t off = ((w->seed = w->seed * 1103515245u + 12345u) >> 8) % 512 * 8 * KiB;

			tb_fill(bufs + i * 8 * KiB, 8 * KiB, w->seed);
			iov[i] = (struct iovec){ bufs + i * 8 * KiB, 8 * KiB };
			waits[i] = (struct tb_wait){ 0 };
			/* the same 8 KiB twice in one round would race: skip */
			for (int j = 0; j < i; j++)
				if (iov[j].iov_len && waits[j].ret == (int64_t)off)
					iov[i].iov_len = 0;
			waits[i].ret = off;
			if (!iov[i].iov_len) {
				waits[i].done = true;
				done++;
				continue;
			}
			memcpy(w->expect + off, bufs + i * 8 * KiB, 8 * KiB);
			g_assert_cmpint(blk_pwritev(q, w->base + off, &iov[i], 1, tb_cb, &waits[i]), ==, 0);
		}
		while (done < 16) {
			struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

			poll(&p, 1, 1000);
			blk_queue_poll(q);
			done = 0;
			for (int i = 0; i < 16; i++)
				done += waits[i].done;
		}
		for (int i = 0; i < 16; i++)
			if (iov[i].iov_len)
				g_assert_cmpint(waits[i].ret, ==, 8 * KiB);
	}
	g_assert_cmpint(tb_flush(q), ==, 0);
	blk_queue_free(q);
	g_free(bufs);
	return NULL;
}

/* Two threads, two queues, one image: metadata stays consistent. */
static void test_concurrent_queues(void)
{
	char *dir, *img, err[256];
	struct worker w[2];
	pthread_t th[2];
	struct blk_queue *q;
	struct blk *b;
	uint8_t *got = g_malloc(4 * MiB);

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "c.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -o cluster_size=4096 %s 8M", img), ==, 0);
	b = tb_open(img, "qcow2", BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker){ b, i * 4 * MiB, 77 + i, g_malloc0(4 * MiB) };
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	q = blk_queue_new(b, err, sizeof(err));
	for (int i = 0; i < 2; i++) {
		g_assert_cmpint(tb_pread(q, i * 4 * MiB, got, 4 * MiB), ==, 4 * MiB);
		g_assert_cmpmem(got, 4 * MiB, w[i].expect, 4 * MiB);
		g_free(w[i].expect);
	}
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
	g_free(got);
	g_free(img);
	tb_rmdir(dir);
}

/*
 * A discarded cluster is returned to the free pool only when no request
 * that might have mapped it is still in flight: not at the FLUSH that has
 * an older read outstanding (the on-disk image then shows a leak), but at
 * the next one.
 */
static void test_free_waits_for_inflight(void)
{
	char *dir, *img, err[256];
	uint8_t *buf = g_malloc(64 * KiB), *rbuf = g_malloc(64 * KiB);
	struct tb_wait rw = { 0 }, dw = { 0 }, fw = { 0 };
	struct iovec riov = { rbuf, 64 * KiB };
	struct blk_queue *q;
	struct blk *b;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "f.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 4M", img), ==, 0);
	b = tb_open(img, "qcow2", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	q = blk_queue_new(b, err, sizeof(err));
	memset(buf, 0x61, 64 * KiB);
	g_assert_cmpint(tb_pwrite(q, 0, buf, 64 * KiB), ==, 64 * KiB);
	g_assert_cmpint(tb_pwrite(q, 1 * MiB, buf, 64 * KiB), ==, 64 * KiB);
	g_assert_cmpint(tb_flush(q), ==, 0);
	/*
	 * A read of cluster 1 MiB stays in flight across the discard and the
	 * FLUSH: nothing is polled (so nothing completes) until both are in.
	 */
	g_assert_cmpint(blk_preadv(q, 1 * MiB, &riov, 1, tb_cb, &rw), ==, 0);
	g_assert_cmpint(blk_discard(q, 0, 64 * KiB, tb_cb, &dw), ==, 0);
	g_assert_cmpint(blk_flush(q, tb_cb, &fw), ==, 0);
	while (!rw.done || !dw.done || !fw.done) {
		struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

		poll(&p, 1, 1000);
		blk_queue_poll(q);
	}
	g_assert_cmpint(dw.ret, ==, 0);
	g_assert_cmpint(fw.ret, ==, 0);
	g_assert_cmpint(tb_sh(NULL, "cp %s %s.1", img, img), ==, 0);
	g_assert_cmpint(tb_flush(q), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "cp %s %s.2", img, img), ==, 0);
	/* 3: leaked clusters only; 0: clean */
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s.1", img), ==, 3);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s.2", img), ==, 0);
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s", img), ==, 0);
	g_free(buf);
	g_free(rbuf);
	g_free(img);
	tb_rmdir(dir);
}

/*
 * QEMU with lazy refcounts crashed (qemu-io's abort): the dirty bit is set
 * and refcounts are missing.  Read-only, the image is read as it is; read-
 * write, the refcounts are rebuilt first and then it is clean and usable.
 */
static void test_dirty_rebuilt(void)
{
	char *dir, *img, *out, err[256];
	uint8_t hdr[80], buf[4096];
	struct blk_queue *q;
	struct blk *b;
	FILE *f;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "lazy.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -o lazy_refcounts=on %s 8M && "
			      "qemu-io -c 'write -c -P 0x33 4M 64k' %s >/dev/null && "
			      "(qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 2M 64k' "
			      "-c abort %s >/dev/null 2>&1; true)", img, img, img), ==, 0);
	g_assert_cmpint(tb_sh(&out, "qemu-img check -q %s", img), ==, 2);
	g_free(out);

	b = tb_open(img, "qcow2", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, true);
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 1 * MiB - 4096, 4096, 0x11);
	blk_queue_free(q);
	blk_close(b);
	/* read-only changed nothing */
	g_assert_cmpint(tb_sh(&out, "qemu-img check -q %s", img), ==, 2);
	g_free(out);

	b = tb_open(img, "qcow2", BLK_AIO_THREADS, BLK_CACHE_WRITEBACK, false);
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 0, 1 * MiB, 0x11);
	tb_expect_fill(q, 2 * MiB, 64 * KiB, 0x22);
	tb_expect_fill(q, 4 * MiB, 64 * KiB, 0x33);
	memset(buf, 0x44, sizeof(buf));
	g_assert_cmpint(tb_pwrite(q, 6 * MiB, buf, sizeof(buf)), ==, 4096);
	g_assert_cmpint(tb_pwrite(q, 4 * MiB, buf, sizeof(buf)), ==, 4096);
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);

	f = fopen(img, "rb");
	g_assert_cmpuint(fread(hdr, 1, sizeof(hdr), f), ==, sizeof(hdr));
	fclose(f);
	g_assert_cmpint(hdr[79] & 1, ==, 0);	/* dirty bit cleared */
	g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s && qemu-io -c 'read -P 0x11 0 1M' "
			      "-c 'read -P 0x22 2M 64k' -c 'read -P 0x44 4M 4k' "
			      "-c 'read -P 0x33 4100k 60k' -c 'read -P 0x44 6M 4k' %s >/dev/null",
			      img, img), ==, 0);
	g_free(img);
	tb_rmdir(dir);
}

/* qemu-img create options vireo must handle, or refuse with a reason. */
static void test_create_variants(void)
{
	static const struct {
		const char *opts;
		const char *refused;	/* NULL: read-write works */
		bool ro_ok;
	} v[] = {
		{ "preallocation=metadata", NULL, true },
		{ "preallocation=falloc", NULL, true },
		{ "preallocation=full", NULL, true },
		{ "lazy_refcounts=on", NULL, true },
		{ "compression_type=zstd", NULL, true },
		{ "compat=0.10", "version 2", true },
		{ "extended_l2=on", "extended L2", false },
		{ "data_file=ext.raw", "external data file", false },
	};
	char *dir;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
		char *img = g_strdup_printf("%s/v%zu.qcow2", dir, i), err[512];
		struct blk_config cfg = { .file = img, .format = "qcow2" };
		uint8_t buf[8192];
		struct blk_queue *q;
		struct blk *b;

		g_test_message("%s", v[i].opts);
		g_assert_cmpint(tb_sh(NULL, "cd %s && qemu-img create -q -f qcow2 -o %s %s 8M && "
				      "qemu-io -c 'write -P 0x42 64k 64k' %s", dir, v[i].opts, img,
				      img), ==, 0);
		b = blk_open(&cfg, err, sizeof(err));
		if (v[i].refused) {
			g_assert_null(b);
			g_assert_nonnull(strstr(err, v[i].refused));
		} else {
			g_assert_nonnull(b);
			q = blk_queue_new(b, err, sizeof(err));
			tb_expect_fill(q, 64 * KiB, 64 * KiB, 0x42);
			memset(buf, 0x17, sizeof(buf));
			g_assert_cmpint(tb_pwrite(q, 64 * KiB + 4096, buf, 8192), ==, 8192);
			g_assert_cmpint(tb_pwrite(q, 5 * MiB + 100, buf, 8192), ==, 8192);
			tb_expect_fill(q, 64 * KiB, 4096, 0x42);
			tb_expect_fill(q, 64 * KiB + 4096, 8192, 0x17);
			blk_queue_free(q);
			g_assert_cmpint(blk_close(b), ==, 0);
			g_assert_cmpint(tb_sh(NULL, "qemu-img check -q %s && qemu-io -c "
					      "'read -P 0x17 5242980 8k' -c 'read -P 0x42 126976 4k' %s "
					      ">/dev/null", img, img), ==, 0);
		}
		cfg.readonly = true;
		b = blk_open(&cfg, err, sizeof(err));
		g_assert_true(v[i].ro_ok ? b != NULL : b == NULL);
		if (b) {
			q = blk_queue_new(b, err, sizeof(err));
			tb_expect_fill(q, 128 * KiB - 4096, 4096, 0x42);
			blk_queue_free(q);
			blk_close(b);
		}
		g_free(img);
	}
	tb_rmdir(dir);
}

/* Internal snapshots: readable, not writable. */
static void test_snapshots_readonly(void)
{
	char *dir, *img, err[512];
	struct blk_config cfg = { .format = "qcow2" };
	struct blk_queue *q;
	struct blk *b;

	TB_SKIP_WITHOUT_QEMU_IMG();
	dir = tb_tmpdir();
	img = g_build_filename(dir, "s.qcow2", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 %s 4M && "
			      "qemu-io -c 'write -P 0x01 0 64k' %s && qemu-img snapshot -c s1 %s && "
			      "qemu-io -c 'write -P 0x02 0 4k' %s", img, img, img, img), ==, 0);
	cfg.file = img;
	b = blk_open(&cfg, err, sizeof(err));
	g_assert_null(b);
	g_assert_nonnull(strstr(err, "internal snapshots"));
	cfg.readonly = true;
	b = blk_open(&cfg, err, sizeof(err));
	g_assert_nonnull(b);
	q = blk_queue_new(b, err, sizeof(err));
	tb_expect_fill(q, 0, 4096, 0x02);
	tb_expect_fill(q, 4096, 60 * KiB, 0x01);
	blk_queue_free(q);
	blk_close(b);
	g_free(img);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(engines); i++) {
		char *p = g_strdup_printf("/qcow2/read-qemu-image/%s", engine_names[i]);

		g_test_add_data_func(p, GINT_TO_POINTER(i), test_read_qemu_image);
		g_free(p);
	}
	g_test_add_func("/qcow2/backing-chain", test_backing_chain);
	g_test_add_data_func("/qcow2/compressed/zlib", "zlib", test_compressed);
	g_test_add_data_func("/qcow2/compressed/zstd", "zstd", test_compressed);
	for (size_t i = 0; i < G_N_ELEMENTS(layouts); i++) {
		char *p = g_strdup_printf("/qcow2/write-check-compare/%s", layouts[i].name);

		g_test_add_data_func(p, &layouts[i], test_write_check_compare);
		g_free(p);
	}
	g_test_add_func("/qcow2/concurrent-queues", test_concurrent_queues);
	g_test_add_func("/qcow2/create-variants", test_create_variants);
	g_test_add_func("/qcow2/dirty-rebuilt", test_dirty_rebuilt);
	g_test_add_func("/qcow2/free-waits-for-inflight", test_free_waits_for_inflight);
	g_test_add_func("/qcow2/snapshots-readonly", test_snapshots_readonly);
	return g_test_run();
}
