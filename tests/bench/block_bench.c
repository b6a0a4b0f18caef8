/*
 * Block layer throughput harness: keeps `depth` requests in flight on one
 * queue for `seconds` and prints IOPS and MiB/s.  Run by block_bench.sh,
 * which compares it with fio on the same file.
 *
 *   block_bench FILE FORMAT AIO CACHE randread|randwrite|read|write BS DEPTH SECONDS
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block.h"

struct bench {
	struct blk_queue *q;
	uint64_t size, bs, next_seq, ops, bytes;
	bool rnd, write, stop;
	uint32_t seed;
	int inflight, errors;
};

struct slot {
	struct bench *b;
	struct iovec iov;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void submit(struct slot *s);

static void done(void *opaque, int64_t ret)
{
	struct slot *s = opaque;
	struct bench *b = s->b;

	b->inflight--;
	if (ret < 0) {
		b->errors++;
		return;
	}
	b->ops++;
	b->bytes += ret;
	if (!b->stop)
		submit(s);
}

static void submit(struct slot *s)
{
	struct bench *b = s->b;
	uint64_t blocks = b->size / b->bs, off;
	int ret;

	if (b->rnd) {
		b->seed = b->seed * 1103515245u + 12345u;
		off = (((uint64_t)b->seed << 16) ^ (b->seed >> 8)) % blocks * b->bs;
	} else {
		off = b->next_seq;
		b->next_seq = (b->next_seq + b->bs) % (blocks * b->bs);
	}
	ret = b->write ? blk_pwritev(b->q, off, &s->iov, 1, done, s)
		       : blk_preadv(b->q, off, &s->iov, 1, done, s);
	if (ret < 0)
		b->errors++;
	else
		b->inflight++;
}

int main(int argc, char **argv)
{
	static const char *const caches[] = { "writeback", "none", "writethrough",
					      "directsync", "unsafe" };
	static const char *const aios[] = { "io_uring", "native", "threads" };
	struct blk_config cfg = { 0 };
	struct bench b = { .seed = 1 };
	struct slot *slots;
	double t0, secs;
	char err[512];
	struct blk *blk;
	int depth;

	if (argc != 9) {
		fprintf(stderr, "usage: %s FILE FORMAT AIO CACHE PATTERN BS DEPTH SECONDS\n", argv[0]);
		return 2;
	}
	cfg.file = argv[1];
	cfg.format = argv[2];
	for (int i = 0; i < 3; i++)
		if (!strcmp(argv[3], aios[i]))
			cfg.aio = i;
	for (int i = 0; i < 5; i++)
		if (!strcmp(argv[4], caches[i]))
			cfg.cache = i;
	b.rnd = !strncmp(argv[5], "rand", 4);
	b.write = strstr(argv[5], "write") != NULL;
	b.bs = strtoull(argv[6], NULL, 0);
	depth = atoi(argv[7]);
	secs = atof(argv[8]);
	blk = blk_open(&cfg, err, sizeof(err));
	if (!blk) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	b.size = blk_size(blk);
	b.q = blk_queue_new(blk, err, sizeof(err));
	if (!b.q) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	slots = calloc(depth, sizeof(*slots));
	for (int i = 0; i < depth; i++) {
		void *buf;

		if (posix_memalign(&buf, 4096, b.bs))
			return 1;
		memset(buf, 0x5a, b.bs);
		slots[i] = (struct slot){ &b, { buf, b.bs } };
	}
	t0 = now();
	for (int i = 0; i < depth; i++)
		submit(&slots[i]);
	while (b.inflight) {
		struct pollfd p = { .fd = blk_queue_fd(b.q), .events = POLLIN };

		if (!b.stop && now() - t0 >= secs)
			b.stop = true;
		poll(&p, 1, 100);
		blk_queue_poll(b.q);
	}
	secs = now() - t0;
	printf("iops=%.0f mibps=%.1f errors=%d\n", b.ops / secs, b.bytes / secs / 1048576.0,
	       b.errors);
	blk_queue_free(b.q);
	blk_close(blk);
	return b.errors ? 1 : 0;
}
