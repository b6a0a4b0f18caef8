/*
 * I/O limits (-drive throttling.*, QMP block_set_io_throttle): the leaky
 * buckets on a clock the test moves, then requests that wait in a real
 * queue on every engine and are woken by its timer.  The timed cases
 * assert lower bounds a limit guarantees (a slow host only waits longer)
 * and, where a request must not wait the limits out, a bound ten times
 * above what it takes.
 */
#include <time.h>

#include "block/blk-int.h"
#include "test_block_util.h"

#define NS 1000000000ull

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS + ts.tv_nsec;
}

/*
 * Requests of bytes each, as fast as the buckets take them, from t=0 for
 * secs seconds of the test's clock: how many went.
 */
static unsigned admitted(struct throttle *t, bool write, uint64_t bytes, double secs)
{
	uint64_t now = 0, end = secs * NS;
	unsigned n = 0;

	throttle_reset(t, &t->lim, 0);
	while (now < end) {
		uint64_t wait = throttle_admit(t, write, bytes, now);

		if (wait)
			now += wait;
		else
			n++;
	}
	return n;
}

static void test_rates(void)
{
	struct throttle t = { 0 };

	/* 10/s, and a first burst of avg/10 = 1 over the empty bucket. */
	t.lim.avg[BLK_THR_IOPS_TOTAL] = 10;
	g_assert_cmpuint(admitted(&t, false, 4096, 10), >=, 100);
	g_assert_cmpuint(admitted(&t, false, 4096, 10), <=, 102);
	/* Reads and writes both count in the total. */
	g_assert_cmpuint(admitted(&t, true, 4096, 10), <=, 102);

	/* A read limit leaves writes alone. */
	memset(&t.lim, 0, sizeof(t.lim));
	t.lim.avg[BLK_THR_BPS_READ] = 1 << 20;
	g_assert_cmpuint(admitted(&t, false, 64 << 10, 4), <=, 4 * 16 + 2);
	g_assert_cmpuint(admitted(&t, false, 64 << 10, 4), >=, 4 * 16);
	throttle_reset(&t, &t.lim, 0);
	for (int i = 0; i < 1000; i++)
		g_assert_cmpuint(throttle_admit(&t, true, 64 << 10, 0), ==, 0);

	/* iops-size: a 16 KiB request counts as four 4 KiB operations. */
	memset(&t.lim, 0, sizeof(t.lim));
	t.lim.avg[BLK_THR_IOPS_WRITE] = 40;
	t.lim.iops_size = 4096;
	g_assert_cmpuint(admitted(&t, true, 16384, 10), >=, 100);
	g_assert_cmpuint(admitted(&t, true, 16384, 10), <=, 102);
	g_assert_cmpuint(admitted(&t, true, 4096, 10), >=, 400);
}

static void test_burst(void)
{
	struct throttle t = { 0 };

	/* 10/s, bursts of 100/s for 3 s: 300 in the first 3 s, then 10/s. */
	t.lim.avg[BLK_THR_IOPS_TOTAL] = 10;
	t.lim.max[BLK_THR_IOPS_TOTAL] = 100;
	t.lim.max_len[BLK_THR_IOPS_TOTAL] = 3;
	g_assert_cmpuint(admitted(&t, false, 512, 1), <=, 112);
	g_assert_cmpuint(admitted(&t, false, 512, 3), >=, 300);
	g_assert_cmpuint(admitted(&t, false, 512, 3), <=, 340);
	g_assert_cmpuint(admitted(&t, false, 512, 13), >=, 400);
	g_assert_cmpuint(admitted(&t, false, 512, 13), <=, 450);
}

static void expect_refused(const struct blk_throttle_limits *l, bool drive_opts,
			   const char *want)
{
	char err[256] = "";

	g_assert_cmpint(blk_throttle_check(l, drive_opts, err, sizeof(err)), ==, -EINVAL);
	if (!strstr(err, want))
		g_error("expected '%s' in '%s'", want, err);
}

static void test_check(void)
{
	struct blk_throttle_limits l = { 0 };
	char err[256];

	g_assert_cmpint(blk_throttle_check(&l, false, err, sizeof(err)), ==, 0);
	g_assert_false(blk_throttle_enabled(&l));
	l.avg[BLK_THR_BPS_TOTAL] = 1 << 20;
	l.avg[BLK_THR_BPS_WRITE] = 1 << 20;
	expect_refused(&l, false, "bps_wr cannot be used together with bps");
	expect_refused(&l, true, "throttling.bps-write cannot be used together with "
			   "throttling.bps-total");
	memset(&l, 0, sizeof(l));
	l.max[BLK_THR_IOPS_READ] = 100;
	expect_refused(&l, false, "iops_rd_max requires iops_rd");
	l.avg[BLK_THR_IOPS_READ] = 200;
	expect_refused(&l, false, "iops_rd_max (100) cannot be lower than iops_rd (200)");
	l.max[BLK_THR_IOPS_READ] = 400;
	g_assert_cmpint(blk_throttle_check(&l, false, err, sizeof(err)), ==, 0);
	g_assert_true(blk_throttle_enabled(&l));
	l.max_len[BLK_THR_IOPS_WRITE] = 5;
	expect_refused(&l, true, "throttling.iops-write-max-length requires "
			   "throttling.iops-write-max");
	memset(&l, 0, sizeof(l));
	l.avg[BLK_THR_BPS_READ] = BLK_THR_VALUE_MAX + 1;
	expect_refused(&l, false, "must be at most 1000000000000000");
}

struct counter {
	unsigned done;
	int64_t last;
};

static void count_cb(void *opaque, int64_t ret)
{
	struct counter *c = opaque;

	c->last = ret;
	c->done++;
}

static void wait_count(struct blk_queue *q, struct counter *c, unsigned n)
{
	while (c->done < n) {
		struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

		poll(&p, 1, 1000);
		blk_queue_poll(q);
	}
}

/* A new 1 MiB raw file, opened with limit i at avg, and a queue on it in *q. */
static struct blk *open_limited(const char *file, enum blk_aio aio, enum blk_thr i,
				uint64_t avg, struct blk_queue **q)
{
	struct blk_config cfg = { .file = file, .format = "raw", .aio = aio,
				  .cache = BLK_CACHE_NONE };
	char err[256] = "";
	struct blk *b;

	g_assert_cmpint(tb_sh(NULL, "truncate -s 1M %s", file), ==, 0);
	cfg.throttle.avg[i] = avg;
	b = blk_open(&cfg, err, sizeof(err));
	if (!b)
		g_error("blk_open: %s", err);
	*q = blk_queue_new(b, err, sizeof(err));
	g_assert_nonnull(*q);
	return b;
}

/*
 * 25 writes of 4 KiB at 50 IOPS: the first 6 go at once (avg/10 = 5 over
 * the bucket, plus the one that finds it empty), the other 19 take at
 * 0.38 s after the first.  Each write's vector is reused by the caller right after
 * the call, as a device does: a waiting write keeps a copy.
 */
static void queue_case(enum blk_aio aio)
{
	char *dir = tb_tmpdir(), *img = g_build_filename(dir, "t.raw", NULL);
	uint8_t *buf = g_malloc(25 * 4096), *back = g_malloc(4096);
	struct counter c = { 0 };
	struct blk_stats st;
	struct blk_queue *q;
	struct blk *b;
	uint64_t t0;

	b = open_limited(img, aio, BLK_THR_IOPS_TOTAL, 50, &q);
	tb_fill(buf, 25 * 4096, 7);
	t0 = mono_ns();
	for (int i = 0; i < 25; i++) {
		struct iovec iov = { buf + i * 4096, 4096 };

		g_assert_cmpint(blk_pwritev(q, i * 4096, &iov, 1, count_cb, &c), ==, 0);
		iov = (struct iovec){ back, 4096 };	/* the caller's vector changes */
	}
	g_assert_cmpuint(c.done, ==, 0);
	wait_count(q, &c, 25);
	g_assert_cmpuint(mono_ns() - t0, >=, 370000000ull);
	g_assert_cmpint(c.last, ==, 4096);
	/* Latency counts the wait, as the guest sees it: the k-th of 19 waited k/50 s. */
	blk_get_stats(b, &st);
	g_assert_cmpuint(st.ops[BLK_OP_WRITE], ==, 25);
	g_assert_cmpuint(st.total_ns[BLK_OP_WRITE], >=, 3 * NS);
	/* Lifted: reads go at once, and every write landed where it should. */
	g_assert_cmpint(blk_set_throttle(b, &(struct blk_throttle_limits){ 0 }, NULL, 0), ==, 0);
	for (int i = 0; i < 25; i++) {
		g_assert_cmpint(tb_pread(q, i * 4096, back, 4096), ==, 4096);
		g_assert_cmpmem(back, 4096, buf + i * 4096, 4096);
	}
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_free(buf);
	g_free(back);
	g_free(img);
	tb_rmdir(dir);
}

static void test_queue_io_uring(void)
{
	queue_case(BLK_AIO_IO_URING);
}

static void test_queue_native(void)
{
	queue_case(BLK_AIO_NATIVE);
}

static void test_queue_threads(void)
{
	queue_case(BLK_AIO_THREADS);
}

/*
 * At 1 read per second, 8 reads would take 7 s: blk_queue_limit(false)
 * (a device that stops) sends them at once, and blk_queue_free with reads
 * waiting completes them all before it returns.  The order is kept.
 */
static void test_release(void)
{
	char *dir = tb_tmpdir(), *img = g_build_filename(dir, "t.raw", NULL);
	uint8_t *buf = g_malloc(8 * 4096);
	struct counter c = { 0 };
	struct blk_queue *q;
	struct blk *b;
	uint64_t t0;

	b = open_limited(img, BLK_AIO_IO_URING, BLK_THR_IOPS_READ, 1, &q);
	t0 = mono_ns();
	for (int i = 0; i < 8; i++) {
		struct iovec iov = { buf + i * 4096, 4096 };

		g_assert_cmpint(blk_preadv(q, i * 4096, &iov, 1, count_cb, &c), ==, 0);
	}
	wait_count(q, &c, 1);
	blk_queue_limit(q, false);
	wait_count(q, &c, 8);
	g_assert_cmpuint(mono_ns() - t0, <, 5 * NS);
	/* Writes are not limited by a read limit; limits back on. */
	blk_queue_limit(q, true);
	g_assert_cmpint(tb_pwrite(q, 0, buf, 4096), ==, 4096);

	c.done = 0;
	t0 = mono_ns();
	for (int i = 0; i < 8; i++) {
		struct iovec iov = { buf + i * 4096, 4096 };

		g_assert_cmpint(blk_preadv(q, i * 4096, &iov, 1, count_cb, &c), ==, 0);
	}
	blk_queue_free(q);
	g_assert_cmpuint(c.done, ==, 8);
	g_assert_cmpuint(mono_ns() - t0, <, 5 * NS);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_free(buf);
	g_free(img);
	tb_rmdir(dir);
}

/*
 * A throttle group: two drives share 50 IOPS, so 15 writes on each take
 * what 30 on one would, at least 0.48 s, where each alone would take 0.18.
 */
static void test_group(void)
{
	char *dir = tb_tmpdir(), *img[2];
	uint8_t buf[4096] = { 0 };
	struct blk_queue *q[2];
	struct counter c = { 0 };
	struct blk *b[2];
	uint64_t t0;

	for (int k = 0; k < 2; k++) {
		img[k] = g_strdup_printf("%s/t%d.raw", dir, k);
		b[k] = open_limited(img[k], BLK_AIO_IO_URING, BLK_THR_IOPS_TOTAL, k ? 0 : 50,
				    &q[k]);
	}
	g_assert_null(blk_throttle_group(b[0]));
	g_assert_cmpint(blk_name_throttle_group(b[0], "g"), ==, 0);
	blk_share_throttle(b[1], b[0]);
	g_assert_cmpstr(blk_throttle_group(b[1]), ==, "g");
	t0 = mono_ns();
	for (int i = 0; i < 15; i++) {
		for (int k = 0; k < 2; k++) {
			struct iovec iov = { buf, sizeof(buf) };

			g_assert_cmpint(blk_pwritev(q[k], i * 4096, &iov, 1, count_cb, &c), ==, 0);
		}
	}
	while (c.done < 30) {
		struct pollfd p[2] = { { .fd = blk_queue_fd(q[0]), .events = POLLIN },
				       { .fd = blk_queue_fd(q[1]), .events = POLLIN } };

		poll(p, 2, 1000);
		blk_queue_poll(q[0]);
		blk_queue_poll(q[1]);
	}
	g_assert_cmpuint(mono_ns() - t0, >=, 460000000ull);
	for (int k = 0; k < 2; k++) {
		blk_queue_free(q[k]);
		g_assert_cmpint(blk_close(b[k]), ==, 0);
		g_free(img[k]);
	}
	tb_rmdir(dir);
}

/* New limits apply to the next requests; bad ones are refused and change nothing. */
static void test_set(void)
{
	char *dir = tb_tmpdir(), *img = g_build_filename(dir, "t.raw", NULL);
	struct blk_throttle_limits l = { 0 }, got;
	uint8_t buf[4096];
	struct blk_queue *q;
	struct blk *b;
	uint64_t t0;
	char err[256];

	b = open_limited(img, BLK_AIO_IO_URING, BLK_THR_BPS_TOTAL, 0, &q);
	l.avg[BLK_THR_BPS_WRITE] = 40960;	/* ten 4 KiB writes a second */
	g_assert_cmpint(blk_set_throttle(b, &l, err, sizeof(err)), ==, 0);
	blk_get_throttle(b, &got);
	g_assert_cmpmem(&got, sizeof(got), &l, sizeof(l));
	t0 = mono_ns();
	for (int i = 0; i < 6; i++)
		g_assert_cmpint(tb_pwrite(q, 0, buf, sizeof(buf)), ==, 4096);
	/* 1 + 1 at once (4096 over 4096), then 4 at 0.1 s each. */
	g_assert_cmpuint(mono_ns() - t0, >=, 350000000ull);
	l.avg[BLK_THR_BPS_TOTAL] = 1;
	g_assert_cmpint(blk_set_throttle(b, &l, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "bps_wr cannot be used together with bps"));
	blk_get_throttle(b, &got);
	g_assert_cmpuint(got.avg[BLK_THR_BPS_TOTAL], ==, 0);
	g_assert_cmpuint(got.avg[BLK_THR_BPS_WRITE], ==, 40960);
	blk_queue_free(q);
	g_assert_cmpint(blk_close(b), ==, 0);
	g_free(img);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/block/throttle/rates", test_rates);
	g_test_add_func("/block/throttle/burst", test_burst);
	g_test_add_func("/block/throttle/check", test_check);
	g_test_add_func("/block/throttle/queue/io_uring", test_queue_io_uring);
	g_test_add_func("/block/throttle/queue/native", test_queue_native);
	g_test_add_func("/block/throttle/queue/threads", test_queue_threads);
	g_test_add_func("/block/throttle/release", test_release);
	g_test_add_func("/block/throttle/set", test_set);
	g_test_add_func("/block/throttle/group", test_group);
	return g_test_run();
}
