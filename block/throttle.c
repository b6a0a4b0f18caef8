/*
 * I/O limits: the leaky buckets behind -drive throttling.* and QMP
 * block_set_io_throttle (block.h says what the limits mean), and the
 * groups of drives that share them.  The arithmetic takes the time as an
 * argument; blk.c makes requests wait in their queue and wakes the queue
 * when they may go.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

/* Each bucket's names: QMP's, then -drive's. */
static const char *const thr_qmp[BLK_THR_NR] = {
	"bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr",
};
static const char *const thr_drive[BLK_THR_NR] = {
	"throttling.bps-total", "throttling.bps-read", "throttling.bps-write",
	"throttling.iops-total", "throttling.iops-read", "throttling.iops-write",
};

const char *blk_throttle_name(enum blk_thr i, bool drive_opts)
{
	return drive_opts ? thr_drive[i] : thr_qmp[i];
}

bool blk_throttle_enabled(const struct blk_throttle_limits *l)
{
	for (int i = 0; i < BLK_THR_NR; i++)
		if (l->avg[i])
			return true;
	return false;
}

int blk_throttle_check(const struct blk_throttle_limits *l, bool drive_opts, char *err,
		       size_t errlen)
{
	const char *const *name = drive_opts ? thr_drive : thr_qmp;
	const char *max = drive_opts ? "-max" : "_max";
	const char *len = drive_opts ? "-max-length" : "_max_length";

	for (int i = 0; i < BLK_THR_NR; i++) {
		int total = i < BLK_THR_IOPS_TOTAL ? BLK_THR_BPS_TOTAL : BLK_THR_IOPS_TOTAL;

		if (l->avg[i] > BLK_THR_VALUE_MAX || l->max[i] > BLK_THR_VALUE_MAX) {
			snprintf(err, errlen, "%s and %s%s must be at most %llu", name[i], name[i],
				 max, BLK_THR_VALUE_MAX);
			return -EINVAL;
		}
		/* A total limit and a read or write one would count twice. */
		if (i != total && (l->avg[i] || l->max[i]) && (l->avg[total] || l->max[total])) {
			snprintf(err, errlen, "%s cannot be used together with %s", name[i],
				 name[total]);
			return -EINVAL;
		}
		if (l->max[i] && !l->avg[i]) {
			snprintf(err, errlen, "%s%s requires %s", name[i], max, name[i]);
			return -EINVAL;
		}
		if (l->max[i] && l->max[i] < l->avg[i]) {
			snprintf(err, errlen, "%s%s (%llu) cannot be lower than %s (%llu)",
				 name[i], max, (unsigned long long)l->max[i], name[i],
				 (unsigned long long)l->avg[i]);
			return -EINVAL;
		}
		if (l->max_len[i] > BLK_THR_VALUE_MAX) {
			snprintf(err, errlen, "%s%s must be at most %llu", name[i], len,
				 BLK_THR_VALUE_MAX);
			return -EINVAL;
		}
		if (l->max_len[i] > 1 && !l->max[i]) {
			snprintf(err, errlen, "%s%s requires %s%s", name[i], len, name[i], max);
			return -EINVAL;
		}
	}
	if (l->iops_size > BLK_THR_VALUE_MAX) {
		snprintf(err, errlen, "%s must be at most %llu",
			 drive_opts ? "throttling.iops-size" : "iops_size", BLK_THR_VALUE_MAX);
		return -EINVAL;
	}
	return 0;
}

void throttle_reset(struct throttle *t, const struct blk_throttle_limits *l, uint64_t now)
{
	struct blk_throttle_limits lim = *l;	/* l may be &t->lim */

	memset(t, 0, sizeof(*t));
	t->lim = lim;
	t->t = now;
}

/* The buckets drain for the time since the last call. */
static void throttle_drain(struct throttle *t, uint64_t now)
{
	double dt = now > t->t ? (now - t->t) / 1e9 : 0;

	t->t = BLK_MAX(now, t->t);
	for (int i = 0; i < BLK_THR_NR; i++) {
		t->level[i] = fmax(0, t->level[i] - t->lim.avg[i] * dt);
		t->burst[i] = fmax(0, t->burst[i] - t->lim.max[i] * dt);
	}
}

/* Seconds until bucket i takes another request (0: now). */
static double throttle_bucket_wait(const struct throttle *t, int i)
{
	const struct blk_throttle_limits *l = &t->lim;
	double over;

	if (!l->avg[i])
		return 0;
	if (!l->max[i]) {
		over = t->level[i] - l->avg[i] / 10.0;
		return over > 0 ? over / l->avg[i] : 0;
	}
	over = t->level[i] - (double)l->max[i] * BLK_MAX(l->max_len[i], 1);
	if (over > 0)
		return over / l->avg[i];
	/* A burst longer than a second still may not exceed max per second. */
	if (l->max_len[i] > 1) {
		over = t->burst[i] - l->max[i] / 10.0;
		if (over > 0)
			return over / l->max[i];
	}
	return 0;
}

uint64_t throttle_admit(struct throttle *t, bool write, uint64_t bytes, uint64_t now)
{
	const int dir = write ? 2 : 1;	/* BLK_THR_*_WRITE or *_READ after *_TOTAL */
	const int buckets[] = { BLK_THR_BPS_TOTAL, BLK_THR_BPS_TOTAL + dir,
				BLK_THR_IOPS_TOTAL, BLK_THR_IOPS_TOTAL + dir };
	double ops = 1, wait = 0;

	throttle_drain(t, now);
	for (int k = 0; k < 4; k++)
		wait = fmax(wait, throttle_bucket_wait(t, buckets[k]));
	/* A year at most: a 4 GiB request at 1 byte/s must not overflow. */
	if (wait > 0)
		return BLK_MAX((uint64_t)ceil(fmin(wait, 365 * 86400.0) * 1e9), 1);
	if (t->lim.iops_size && bytes > t->lim.iops_size)
		ops = (double)bytes / t->lim.iops_size;
	for (int k = 0; k < 4; k++) {
		double units = k < 2 ? (double)bytes : ops;
		int i = buckets[k];

		if (t->lim.avg[i])
			t->level[i] += units;
		if (t->lim.max[i])
			t->burst[i] += units;
	}
	return 0;
}

struct blk_tgroup *tgroup_new(const struct blk_throttle_limits *l, uint64_t now)
{
	struct blk_tgroup *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->refs = 1;
	pthread_mutex_init(&g->lock, NULL);
	throttle_reset(&g->thr, l, now);
	g->throttled = blk_throttle_enabled(l);
	return g;
}

void tgroup_put(struct blk_tgroup *g)
{
	if (!g || --g->refs)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g->name);
	free(g);
}

uint64_t tgroup_admit(struct blk_tgroup *g, bool write, uint64_t bytes, uint64_t now)
{
	uint64_t wait;

	if (!__atomic_load_n(&g->throttled, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&g->lock);
	wait = throttle_admit(&g->thr, write, bytes, now);
	pthread_mutex_unlock(&g->lock);
	return wait;
}
