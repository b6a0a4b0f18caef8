/*
 * The backend API devices use (block.h): requests are cut into pieces by
 * the image's format and the data pieces run on the submitting queue's
 * engine.  A request completes when its last piece does, always from
 * blk_queue_poll on the queue's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "blk-int.h"
#include "block.h"
#include "log.h"


struct breq {
	struct blk_queue *q;
	enum blk_op op;
	blk_cb *cb;
	void *opaque;
	uint64_t t0;
	uint64_t bytes;
	int refs;		/* pieces in flight + 1 while submitting */
	int64_t err;
	bool zeroes;		/* write_zeroes: counted as a write, returns 0 */
	struct breq *next;
};

/* Vectors of up to this many pieces need no allocation of their own. */
#define BSUB_IOV	4
/* Finished breqs and bsubs a queue keeps for its next requests. */
#define BLK_CACHE_MAX	64

struct bsub {
	struct eio io;		/* first: the engine hands back &io */
	struct iovec iov[BSUB_IOV];	/* io.iov, unless it needs more */
	struct breq *r;
	struct bimg *counted;	/* call counted->fmt->io_done at the end */
	unsigned epoch;
	void *buf;		/* owned buffer (zeroes) */
	bool zero_fallback;	/* fallocate failed: write zeroes instead */
	bool advisory;		/* discard: failure is not an error */
};

/*
 * A read or write over the drive's I/O limits, waiting in its queue.  The
 * vector is a copy (the caller's may be gone); the data stays where the
 * caller put it until the callback, as for any request.
 */
struct bpark {
	enum blk_op op;		/* BLK_OP_READ or BLK_OP_WRITE */
	bool zeroes;		/* a write of zeroes: as_write, may_unmap apply */
	bool as_write;
	bool may_unmap;
	uint64_t t0;		/* when it came: its latency counts the wait */
	uint64_t off;
	uint64_t len;
	struct iovec *iov;
	int iovcnt;
	blk_cb *cb;
	void *opaque;
	struct bpark *next;
};

struct blk_queue {
	struct blk *b;
	int efd;
	const struct engine_ops *eng;
	void *es;
	struct eio *sync_done, *sync_tail;
	struct breq *done, *done_tail;
	unsigned plugged;	/* > 0: submissions wait for one kick at unplug */
	unsigned nreqs;		/* submitted and not yet completed */
	/*
	 * The clock, read once per plug and per poll: requests started or
	 * completed in one batch share it (statistics need no finer grain
	 * than a batch, and two clock reads per request showed in profiles).
	 */
	uint64_t now;
	bool watching;		/* blk_queue_watch: efd silent, the engine waits */
	/*
	 * Freed breqs and bsubs (linked by next, io.next), reused before
	 * malloc: every request needs one of each, on this queue's thread.
	 */
	struct breq *req_cache;
	struct eio *sub_cache;
	unsigned nreq_cache, nsub_cache;
	/*
	 * I/O limits: the requests waiting for them, oldest first, and the
	 * timer that wakes the queue when the first may go: a timerfd that
	 * the engine polls (EIO_POLL), so every engine, watching or not,
	 * wakes its thread for it as for a completion.
	 */
	bool unlimited;		/* blk_queue_limit(q, false) */
	struct bpark *parked, *parked_tail;
	int tfd;		/* -1 until a request first waits */
	struct eio timer;
	bool timer_armed;	/* timer is in the engine */
};

static struct breq *req_alloc(struct blk_queue *q)
{
	struct breq *r = q->req_cache;

	if (!r)
		return calloc(1, sizeof(*r));
	q->req_cache = r->next;
	q->nreq_cache--;
	memset(r, 0, sizeof(*r));
	return r;
}

static void req_release(struct blk_queue *q, struct breq *r)
{
	if (q->nreq_cache == BLK_CACHE_MAX) {
		free(r);
		return;
	}
	r->next = q->req_cache;
	q->req_cache = r;
	q->nreq_cache++;
}

static struct bsub *sub_alloc(struct blk_queue *q)
{
	struct bsub *s = (struct bsub *)q->sub_cache;

	if (!s)
		return calloc(1, sizeof(*s));
	q->sub_cache = s->io.next;
	q->nsub_cache--;
	memset(s, 0, sizeof(*s));
	return s;
}

static void sub_release(struct blk_queue *q, struct bsub *s)
{
	if (s->io.iov != s->iov)
		free(s->io.iov);
	free(s->buf);
	if (q->nsub_cache == BLK_CACHE_MAX) {
		free(s);
		return;
	}
	s->io.next = q->sub_cache;
	q->sub_cache = &s->io;
	q->nsub_cache++;
}

static void queue_cache_free(struct blk_queue *q)
{
	while (q->req_cache) {
		struct breq *r = q->req_cache;

		q->req_cache = r->next;
		free(r);
	}
	while (q->sub_cache) {
		struct eio *io = q->sub_cache;

		q->sub_cache = io->next;
		free(io);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

struct blk *blk_open(const struct blk_config *cfg, char *err, size_t errlen)
{
	struct blk_queue *q;
	char qerr[256];
	struct blk *b;

	if (!cfg->file || !*cfg->file) {
		snprintf(err, errlen, "block: no file name given");
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "block: out of memory");
		return NULL;
	}
	b->top = bimg_open(cfg->file, cfg->format, &(struct bimg_opts){
				   .cache = cfg->cache, .readonly = cfg->readonly,
				   .discard_unmap = cfg->discard_unmap, .inactive = cfg->inactive,
				   .locking = cfg->locking }, 0, NULL, err, errlen);
	if (!b->top) {
		free(b);
		return NULL;
	}
	b->file = strdup(cfg->file);
	b->tg = tgroup_new(&cfg->throttle, now_ns());
	if (!b->tg) {
		snprintf(err, errlen, "block: out of memory");
		blk_close(b);
		return NULL;
	}
	b->aio = cfg->aio;
	b->discard_unmap = cfg->discard_unmap;
	b->detect_zeroes = cfg->detect_zeroes;
	/* An engine the host lacks fails here, naming the drive, not later. */
	q = blk_queue_new(b, qerr, sizeof(qerr));
	if (!q) {
		snprintf(err, errlen, "'%s': %s", cfg->file, qerr);
		blk_close(b);
		return NULL;
	}
	blk_queue_free(q);
	return b;
}

int blk_close(struct blk *b)
{
	int ret;

	if (!b)
		return 0;
	if (b->nqueues)
		log_warn("block: '%s' closed with %d queue(s) still open", b->file, b->nqueues);
	ret = bimg_close(b->top);
	if (ret < 0)
		log_error("block: closing '%s': %s", b->file, strerror(-ret));
	tgroup_put(b->tg);
	free(b->file);
	free(b);
	return ret;
}

/*
 * The inactive flag is read by device threads (requests) and changed by
 * the main thread while the VM is stopped and the devices quiesced.
 */
bool blk_inactive(const struct blk *b)
{
	return __atomic_load_n(&b->top->inactive, __ATOMIC_ACQUIRE);
}

int blk_inactivate(struct blk *b)
{
	int ret;

	if (blk_inactive(b))
		return 0;
	ret = bimg_inactivate(b->top);
	if (ret < 0)
		log_error("block: inactivating '%s': %s", b->file, strerror(-ret));
	return ret;
}

int blk_activate(struct blk *b, char *err, size_t errlen)
{
	if (!blk_inactive(b))
		return 0;
	return bimg_activate(b->top, err, errlen);
}

bool blk_is_active(const struct blk *b)
{
	return !blk_inactive(b);
}

uint64_t blk_size(const struct blk *b)
{
	return b->top->size;
}

bool blk_is_readonly(const struct blk *b)
{
	return b->top->readonly;
}

void blk_get_stats(const struct blk *b, struct blk_stats *out)
{
	for (int i = 0; i < BLK_OP_NR; i++) {
		out->ops[i] = __atomic_load_n(&b->stats.ops[i], __ATOMIC_RELAXED);
		out->bytes[i] = __atomic_load_n(&b->stats.bytes[i], __ATOMIC_RELAXED);
		out->total_ns[i] = __atomic_load_n(&b->stats.total_ns[i], __ATOMIC_RELAXED);
		out->failed[i] = __atomic_load_n(&b->stats.failed[i], __ATOMIC_RELAXED);
	}
}

void blk_get_info(const struct blk *b, struct blk_info *out)
{
	const struct bimg *bs = b->top;

	*out = (struct blk_info){
		.file = b->file,
		.format = bs->fmt->name,
		.size = bs->size,
		.readonly = bs->readonly,
		.cache = bs->cache,
		.aio = b->aio,
		.discard_unmap = b->discard_unmap,
		.backing_file = bs->backing_name,
		.backing_format = bs->backing ? bs->backing->fmt->name : NULL,
	};
	for (bs = bs->backing; bs; bs = bs->backing)
		out->backing_depth++;
}

int blk_set_throttle(struct blk *b, const struct blk_throttle_limits *l, char *err,
		     size_t errlen)
{
	int ret = blk_throttle_check(l, false, err, errlen);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&b->tg->lock);
	throttle_reset(&b->tg->thr, l, now_ns());
	__atomic_store_n(&b->tg->throttled, blk_throttle_enabled(l), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->tg->lock);
	return 0;
}

void blk_get_throttle(struct blk *b, struct blk_throttle_limits *out)
{
	pthread_mutex_lock(&b->tg->lock);
	*out = b->tg->thr.lim;
	pthread_mutex_unlock(&b->tg->lock);
}

const char *blk_throttle_group(const struct blk *b)
{
	return b->tg->name;
}

int blk_name_throttle_group(struct blk *b, const char *name)
{
	char *copy = strdup(name);

	if (!copy)
		return -ENOMEM;
	free(b->tg->name);
	b->tg->name = copy;
	return 0;
}

void blk_share_throttle(struct blk *b, struct blk *from)
{
	tgroup_put(b->tg);
	b->tg = from->tg;
	b->tg->refs++;
}

struct blk_queue *blk_queue_new(struct blk *b, char *err, size_t errlen)
{
	struct blk_queue *q = calloc(1, sizeof(*q));
	int ret;

	if (!q) {
		snprintf(err, errlen, "block: out of memory");
		return NULL;
	}
	q->b = b;
	q->tfd = -1;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0) {
		snprintf(err, errlen, "block: eventfd: %s", strerror(errno));
		free(q);
		return NULL;
	}
	q->eng = b->aio == BLK_AIO_IO_URING ? &engine_io_uring :
		 b->aio == BLK_AIO_NATIVE ? &engine_aio : &engine_threads;
	ret = q->eng->init(&q->es, q->efd, err, errlen);
	if (ret < 0) {
		close(q->efd);
		free(q);
		return NULL;
	}
	__atomic_add_fetch(&b->nqueues, 1, __ATOMIC_RELAXED);
	return q;
}

void blk_queue_free(struct blk_queue *q)
{
	if (!q)
		return;
	blk_queue_limit(q, false);
	blk_queue_unwatch(q);
	/* Requests still in flight would complete into freed memory. */
	while (q->nreqs || q->timer_armed) {
		struct pollfd p = { .fd = q->efd, .events = POLLIN };

		poll(&p, 1, 1000);
		blk_queue_poll(q);
	}
	q->eng->fini(q->es);
	queue_cache_free(q);
	if (q->tfd >= 0)
		close(q->tfd);
	close(q->efd);
	__atomic_sub_fetch(&q->b->nqueues, 1, __ATOMIC_RELAXED);
	free(q);
}

int blk_queue_fd(struct blk_queue *q)
{
	return q->efd;
}

static void signal_efd(struct blk_queue *q)
{
	uint64_t one = 1;

	/* A watching owner looks at q->done before it sleeps. */
	if (q->watching)
		return;
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN only at a counter of 2^64-2: already readable */
	}
}

static void req_complete(struct breq *r)
{
	struct blk *b = r->q->b;
	uint64_t dt = r->q->now - r->t0;
	int64_t ret;

	if (r->err) {
		__atomic_add_fetch(&b->stats.failed[r->op], 1, __ATOMIC_RELAXED);
		ret = r->err;
	} else {
		__atomic_add_fetch(&b->stats.ops[r->op], 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&b->stats.bytes[r->op], r->bytes, __ATOMIC_RELAXED);
		__atomic_add_fetch(&b->stats.total_ns[r->op], dt, __ATOMIC_RELAXED);
		ret = (r->op == BLK_OP_READ || r->op == BLK_OP_WRITE) && !r->zeroes ?
		      (int64_t)r->bytes : 0;
	}
	r->q->nreqs--;
	r->cb(r->opaque, ret);
	req_release(r->q, r);
}

/* From blk_queue_poll only: may run the callback. */
static void req_put(struct breq *r)
{
	if (--r->refs == 0)
		req_complete(r);
}

static void req_fail(struct breq *r, int64_t err)
{
	if (!r->err)
		r->err = err;
}

/* The batch's clock while plugged, else the clock. */
static uint64_t queue_now(struct blk_queue *q)
{
	return q->plugged ? q->now : now_ns();
}

/* t0: when the request came, which its latency counts from. */
static struct breq *req_new(struct blk_queue *q, uint64_t t0, enum blk_op op, uint64_t bytes,
			    blk_cb *cb, void *opaque)
{
	struct breq *r = req_alloc(q);

	if (!r)
		return NULL;
	r->q = q;
	r->op = op;
	r->cb = cb;
	r->opaque = opaque;
	r->bytes = bytes;
	r->refs = 1;
	r->t0 = t0;
	q->nreqs++;
	return r;
}

/* End of submission: completions, if everything is done, go through poll. */
static void req_submitted(struct breq *r)
{
	struct blk_queue *q = r->q;

	if (!q->plugged)
		q->eng->kick(q->es);
	if (--r->refs == 0) {
		r->next = NULL;
		if (q->done_tail)
			q->done_tail->next = r;
		else
			q->done = r;
		q->done_tail = r;
	}
	if (q->done || q->sync_done)
		signal_efd(q);
}

static void sub_done(struct eio *io, int64_t res)
{
	struct bsub *s = (struct bsub *)io;
	struct breq *r = s->r;

	if (io->op == EIO_READ && res >= 0 && (uint64_t)res < io->len) {
		/* Short read: end of the host file, which reads as zeroes. */
		iov_zero(io->iov, io->iovcnt, res, io->len - res);
		res = io->len;
	} else if (io->op == EIO_WRITE && res >= 0 && (uint64_t)res < io->len) {
		res = -ENOSPC;
	}
	if (io->op == EIO_FALLOCATE && s->zero_fallback &&
	    (res == -EOPNOTSUPP || res == -EINVAL || res == -ENODEV)) {
		/* No ZERO_RANGE here: write the zeroes. */
		static const char zeroes[65536];
		uint64_t done = 0;

		res = 0;
		while (done < io->len) {
			size_t n = BLK_MIN(sizeof(zeroes), io->len - done);
			ssize_t w = pwrite(io->fd, zeroes, n, io->off + done);

			if (w <= 0) {
				res = w < 0 ? -errno : -EIO;
				break;
			}
			done += w;
		}
	}
	if (s->advisory && res < 0)
		res = 0;
	if (s->counted)
		s->counted->fmt->io_done(s->counted, s->epoch);
	if (res < 0)
		req_fail(r, res);
	sub_release(r->q, s);
	req_put(r);
}

/*
 * Hand io to the engine; one that completed at once, or could not start,
 * waits for the next poll with its result (true then).
 */
static bool queue_submit(struct blk_queue *q, struct eio *io)
{
	int ret = q->eng->submit(q->es, io);

	if (ret == 0)
		return false;
	if (ret < 0)
		io->res = ret;
	io->next = NULL;
	if (q->sync_tail)
		q->sync_tail->next = io;
	else
		q->sync_done = io;
	q->sync_tail = io;
	return true;
}

static int sub_submit(struct breq *r, struct bsub *s)
{
	struct blk_queue *q = r->q;

	s->r = r;
	s->io.done = sub_done;
	r->refs++;
	queue_submit(q, &s->io);
	return 0;
}

static bool iov_aligned(const struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (BLK_DIO_ALIGN - 1))
			return false;
	return true;
}

/* One data piece on the engine; the vector is a slice of the caller's. */
static int sub_rw(struct breq *r, struct bimg *bs, enum eio_op op, const struct bmap *m,
		  const struct iovec *iov, int iovcnt, size_t iov_off, void *buf)
{
	struct bsub *s = sub_alloc(r->q);
	int cnt;

	if (!s)
		goto nomem;
	s->io.iov = s->iov;
	if (buf) {
		s->iov[0] = (struct iovec){ buf, m->len };
		cnt = 1;
		s->buf = buf;
	} else {
		if (iovcnt > BSUB_IOV) {
			s->io.iov = malloc(sizeof(struct iovec) * iovcnt);
			if (!s->io.iov)
				goto nomem;
		}
		cnt = iov_slice(s->io.iov, iov, iovcnt, iov_off, m->len);
	}
	s->io.iovcnt = cnt;
	s->io.op = op;
	s->io.off = m->host;
	s->io.len = m->len;
	s->io.fd = bs->fd;
	if (bs->dfd >= 0 && !((m->host | m->len) & (BLK_DIO_ALIGN - 1)) &&
	    iov_aligned(s->io.iov, cnt))
		s->io.fd = bs->dfd;
	s->counted = m->counted ? bs : NULL;
	s->epoch = m->epoch;
	return sub_submit(r, s);
nomem:
	free(s);
	free(buf);
	if (m->counted)
		bs->fmt->io_done(bs, m->epoch);
	return -ENOMEM;
}

static int sub_simple(struct breq *r, struct bimg *bs, enum eio_op op, int mode,
		      uint64_t off, uint64_t len, bool zero_fallback, bool advisory)
{
	struct bsub *s = sub_alloc(r->q);

	if (!s)
		return -ENOMEM;
	s->io.op = op;
	s->io.fd = bs->fd;
	s->io.mode = mode;
	s->io.off = off;
	s->io.len = len;
	s->zero_fallback = zero_fallback;
	s->advisory = advisory;
	return sub_submit(r, s);
}

static int do_read(struct breq *r, struct bimg *bs, uint64_t off, uint64_t len,
		   const struct iovec *iov, int iovcnt, size_t iov_off)
{
	while (len) {
		struct bmap m = { 0 };
		int ret;

		if (!bs || off >= bs->size) {
			iov_zero(iov, iovcnt, iov_off, len);
			return 0;
		}
		ret = bs->fmt->map_read(bs, off, BLK_MIN(len, bs->size - off), &m);
		if (ret < 0)
			return ret;
		switch (m.kind) {
		case BMAP_DATA:
			ret = sub_rw(r, bs, EIO_READ, &m, iov, iovcnt, iov_off, NULL);
			break;
		case BMAP_BACKING:
			ret = do_read(r, bs->backing, off, m.len, iov, iovcnt, iov_off);
			break;
		case BMAP_COMPRESSED: {
			void *buf = malloc(m.len);

			ret = buf ? bs->fmt->read_compressed(bs, &m, off, buf, m.len) : -ENOMEM;
			if (ret >= 0)
				iov_copy_to(iov, iovcnt, iov_off, buf, m.len);
			free(buf);
			if (m.counted)
				bs->fmt->io_done(bs, m.epoch);
			break;
		}
		default:
			iov_zero(iov, iovcnt, iov_off, m.len);
			break;
		}
		if (ret < 0)
			return ret;
		off += m.len;
		iov_off += m.len;
		len -= m.len;
	}
	return 0;
}

/* iov == NULL writes zeroes. */
static int do_write(struct breq *r, struct bimg *bs, uint64_t off, uint64_t len,
		    const struct iovec *iov, int iovcnt, size_t iov_off)
{
	while (len) {
		struct bmap m = { 0 };
		int ret = bs->fmt->map_write(bs, off, len, iov, iovcnt, iov_off, &m);

		if (ret < 0)
			return ret;
		if (m.kind == BMAP_DATA) {
			void *zero = NULL;

			if (!iov) {
				zero = calloc(1, m.len);
				if (!zero) {
					if (m.counted)
						bs->fmt->io_done(bs, m.epoch);
					return -ENOMEM;
				}
			}
			ret = sub_rw(r, bs, EIO_WRITE, &m, iov, iovcnt, iov_off, zero);
			if (ret < 0)
				return ret;
		}
		off += m.len;
		iov_off += m.len;
		len -= m.len;
	}
	return 0;
}

static int check_range(struct blk *b, uint64_t off, uint64_t len, bool write)
{
	/* Another process owns the image: the VM is not running. */
	if (blk_inactive(b))
		return -EPERM;
	if (write && b->top->readonly)
		return -EROFS;
	if (off > b->top->size || len > b->top->size - off)
		return -EINVAL;
	return 0;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* ---- I/O limits: requests wait in their queue for the buckets ---- */

static void throttle_timer_done(struct eio *io, int64_t res);

/* Wake the queue in ns (at least 1) through its timer; -errno if it cannot. */
static int throttle_arm(struct blk_queue *q, uint64_t ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = ns / 1000000000,
						.tv_nsec = ns % 1000000000 } };

	if (q->tfd < 0) {
		q->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (q->tfd < 0)
			return -errno;
	}
	if (timerfd_settime(q->tfd, 0, &its, NULL) < 0)
		return -errno;
	if (q->timer_armed)
		return 0;	/* the poll in the engine now waits for the new time */
	q->timer = (struct eio){ .op = EIO_POLL, .fd = q->tfd, .done = throttle_timer_done };
	q->timer_armed = true;
	/* Could not start: its done says so, from the next poll. */
	if (queue_submit(q, &q->timer))
		signal_efd(q);
	if (!q->plugged)
		q->eng->kick(q->es);
	return 0;
}

/* Requests that would have waited for a broken timer go now, and later ones too. */
static void throttle_broken(struct blk_queue *q, int err)
{
	log_error("block: '%s': cannot time the I/O limits (%s): one of its queues ignores them",
		  q->b->file, strerror(-err));
	q->unlimited = true;
}

/*
 * Whether a request must wait: others wait before it, or the limits do
 * not take it now (the timer is then set for when they may).
 */
static bool throttle_hold(struct blk_queue *q, bool write, uint64_t bytes)
{
	uint64_t wait;
	int ret;

	if (q->unlimited)
		return false;
	if (q->parked)
		return true;
	/* Before the clock: a drive without limits pays nothing more. */
	if (!__atomic_load_n(&q->b->tg->throttled, __ATOMIC_RELAXED))
		return false;
	wait = tgroup_admit(q->b->tg, write, bytes, queue_now(q));
	if (!wait)
		return false;
	ret = throttle_arm(q, wait);
	if (ret < 0) {
		throttle_broken(q, ret);
		return false;
	}
	return true;
}

static int park(struct blk_queue *q, const struct bpark *tmpl, const struct iovec *iov)
{
	struct bpark *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	*p = *tmpl;
	p->iov = NULL;
	if (iov) {
		p->iov = malloc(sizeof(*iov) * tmpl->iovcnt);
		if (!p->iov) {
			free(p);
			return -ENOMEM;
		}
		memcpy(p->iov, iov, sizeof(*iov) * tmpl->iovcnt);
	}
	p->next = NULL;
	if (q->parked_tail)
		q->parked_tail->next = p;
	else
		q->parked = p;
	q->parked_tail = p;
	return 0;
}

static int start_rw(struct blk_queue *q, uint64_t t0, enum blk_op op, uint64_t off,
		    uint64_t len, const struct iovec *iov, int iovcnt, blk_cb *cb, void *opaque);
static int start_zeroes(struct blk_queue *q, uint64_t t0, uint64_t off, uint64_t len,
			bool may_unmap, bool as_write, blk_cb *cb, void *opaque);

/* From poll: submit what the limits take now, oldest first; time the rest. */
static void throttle_release(struct blk_queue *q)
{
	while (q->parked) {
		struct bpark *p = q->parked;
		uint64_t wait = q->unlimited ? 0 :
				tgroup_admit(q->b->tg, p->op == BLK_OP_WRITE, p->len, q->now);
		int ret;

		if (wait) {
			ret = throttle_arm(q, wait);
			if (!ret)
				return;
			throttle_broken(q, ret);
		}
		q->parked = p->next;
		if (!q->parked)
			q->parked_tail = NULL;
		ret = p->zeroes ? start_zeroes(q, p->t0, p->off, p->len, p->may_unmap,
					       p->as_write, p->cb, p->opaque) :
				  start_rw(q, p->t0, p->op, p->off, p->len, p->iov, p->iovcnt,
					   p->cb, p->opaque);
		if (ret < 0)
			p->cb(p->opaque, ret);	/* the submission was answered 0 */
		free(p->iov);
		free(p);
	}
}

static void throttle_timer_done(struct eio *io, int64_t res)
{
	struct blk_queue *q = (struct blk_queue *)((char *)io - offsetof(struct blk_queue, timer));
	uint64_t n;

	q->timer_armed = false;
	if (res < 0)
		throttle_broken(q, res);
	if (read(q->tfd, &n, sizeof(n)) < 0) {
		/* EAGAIN: set off early by blk_queue_limit */
	}
	throttle_release(q);
}

void blk_queue_limit(struct blk_queue *q, bool on)
{
	static const struct itimerspec now = { .it_value = { .tv_nsec = 1 } };

	q->unlimited = !on;
	/* What waits goes from the next poll, which the timer brings at once. */
	if (!on && q->timer_armed && timerfd_settime(q->tfd, 0, &now, NULL) < 0)
		log_error("block: '%s': timerfd_settime: %s", q->b->file, strerror(errno));
}

/* ---- submission ---- */

/* The common path of blk_preadv and blk_pwritev, past the limits. */
static int start_rw(struct blk_queue *q, uint64_t t0, enum blk_op op, uint64_t off,
		    uint64_t len, const struct iovec *iov, int iovcnt, blk_cb *cb, void *opaque)
{
	struct breq *r = req_new(q, t0, op, len, cb, opaque);
	int ret;

	if (!r)
		return -ENOMEM;
	if (op == BLK_OP_WRITE)
		ret = do_write(r, q->b->top, off, len, iov, iovcnt, 0);
	else
		ret = do_read(r, q->b->top, off, len, iov, iovcnt, 0);
	if (ret < 0)
		req_fail(r, ret);
	req_submitted(r);
	return 0;
}

static int submit_rw(struct blk_queue *q, enum blk_op op, uint64_t off,
		     const struct iovec *iov, int iovcnt, blk_cb *cb, void *opaque)
{
	size_t len = iov_total(iov, iovcnt);
	int ret = check_range(q->b, off, len, op == BLK_OP_WRITE);

	if (ret < 0)
		return ret;
	if (throttle_hold(q, op == BLK_OP_WRITE, len))
		return park(q, &(struct bpark){ .op = op, .t0 = queue_now(q), .off = off,
						.len = len, .iovcnt = iovcnt, .cb = cb,
						.opaque = opaque }, iov);
	return start_rw(q, queue_now(q), op, off, len, iov, iovcnt, cb, opaque);
}

int blk_preadv(struct blk_queue *q, uint64_t off, const struct iovec *iov, int iovcnt,
	       blk_cb *cb, void *opaque)
{
	return submit_rw(q, BLK_OP_READ, off, iov, iovcnt, cb, opaque);
}

static int write_zeroes(struct blk_queue *q, uint64_t off, uint64_t len, bool may_unmap,
			bool as_write, blk_cb *cb, void *opaque);

/* detect-zeroes: the byte count of iov when it is all zeroes, else 0. */
static uint64_t iov_zero_len(const struct iovec *iov, int iovcnt)
{
	uint64_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;

		/* The first byte rules out most data at once. */
		if (n && (p[0] || memcmp(p, p + 1, n - 1)))
			return 0;
		len += n;
	}
	return len;
}

int blk_pwritev(struct blk_queue *q, uint64_t off, const struct iovec *iov, int iovcnt,
		blk_cb *cb, void *opaque)
{
	uint64_t zlen;

	if (q->b->detect_zeroes != BLK_DZ_OFF && off % 512 == 0 &&
	    (zlen = iov_zero_len(iov, iovcnt)) && zlen % 512 == 0)
		return write_zeroes(q, off, zlen, q->b->detect_zeroes == BLK_DZ_UNMAP, true,
				    cb, opaque);
	return submit_rw(q, BLK_OP_WRITE, off, iov, iovcnt, cb, opaque);
}

int blk_flush(struct blk_queue *q, blk_cb *cb, void *opaque)
{
	struct bimg *bs = q->b->top;
	struct breq *r;
	int ret = 0;

	if (blk_inactive(q->b))
		return -EPERM;
	r = req_new(q, queue_now(q), BLK_OP_FLUSH, 0, cb, opaque);
	if (!r)
		return -ENOMEM;
	if (!bs->readonly) {
		ret = bs->fmt->flush_meta(bs);
		if (ret >= 0 && bs->cache != BLK_CACHE_UNSAFE)
			ret = sub_simple(r, bs, EIO_FSYNC, 0, 0, 0, false, false);
	}
	if (ret < 0)
		req_fail(r, ret);
	req_submitted(r);
	return 0;
}

int blk_discard(struct blk_queue *q, uint64_t off, uint64_t len, blk_cb *cb, void *opaque)
{
	struct bimg *bs = q->b->top;
	struct breq *r;
	int ret = check_range(q->b, off, len, true);

	if (ret < 0)
		return ret;
	r = req_new(q, queue_now(q), BLK_OP_DISCARD, len, cb, opaque);
	if (!r)
		return -ENOMEM;
	/* discard=ignore: the request succeeds and does nothing, as in QEMU. */
	while (q->b->discard_unmap && len) {
		struct bmap m = { 0 };

		ret = bs->fmt->discard(bs, off, len, &m);
		if (ret < 0)
			break;
		if (m.kind == BMAP_DATA)
			ret = sub_simple(r, bs, EIO_FALLOCATE,
					 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 m.host, m.len, false, true);
		if (ret < 0)
			break;
		off += m.len;
		len -= m.len;
	}
	if (ret < 0)
		req_fail(r, ret);
	req_submitted(r);
	return 0;
}

int blk_write_zeroes(struct blk_queue *q, uint64_t off, uint64_t len, bool may_unmap,
		     blk_cb *cb, void *opaque)
{
	return write_zeroes(q, off, len, may_unmap, false, cb, opaque);
}

/* as_write: a detected zero write, which answers with its byte count. */
static int write_zeroes(struct blk_queue *q, uint64_t off, uint64_t len, bool may_unmap,
			bool as_write, blk_cb *cb, void *opaque)
{
	int ret = check_range(q->b, off, len, true);

	if (ret < 0)
		return ret;
	if (throttle_hold(q, true, len))
		return park(q, &(struct bpark){ .op = BLK_OP_WRITE, .zeroes = true,
						.as_write = as_write, .may_unmap = may_unmap,
						.t0 = queue_now(q), .off = off, .len = len, .cb = cb,
						.opaque = opaque }, NULL);
	return start_zeroes(q, queue_now(q), off, len, may_unmap, as_write, cb, opaque);
}

static int start_zeroes(struct blk_queue *q, uint64_t t0, uint64_t off, uint64_t len,
			bool may_unmap, bool as_write, blk_cb *cb, void *opaque)
{
	struct bimg *bs = q->b->top;
	struct breq *r = req_new(q, t0, BLK_OP_WRITE, len, cb, opaque);
	int ret = 0;

	if (!r)
		return -ENOMEM;
	r->zeroes = !as_write;
	/* Unmapping is allowed only where the drive has discard=unmap. */
	may_unmap = may_unmap && q->b->discard_unmap;
	while (len) {
		struct bmap m = { 0 };

		ret = bs->fmt->write_zeroes(bs, off, len, may_unmap, &m);
		if (ret < 0)
			break;
		if (m.kind == BMAP_DATA) {
			int mode = may_unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
				   FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

			ret = sub_simple(r, bs, EIO_FALLOCATE, mode, m.host, m.len, true, false);
		} else if (m.kind == BMAP_FALLBACK) {
			ret = do_write(r, bs, off, m.len, NULL, 0, 0);
		}
		if (ret < 0)
			break;
		off += m.len;
		len -= m.len;
	}
	if (ret < 0)
		req_fail(r, ret);
	req_submitted(r);
	return 0;
}

int blk_queue_poll(struct blk_queue *q)
{
	uint64_t cnt;
	int n = 0;

	if (!q->watching && read(q->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing signalled, poll anyway */
	}
	/* What completion callbacks submit goes to the kernel in one batch. */
	blk_queue_plug(q);
	q->now = now_ns();	/* also when nested: completions end now */
	n += q->eng->reap(q->es);
	while (q->sync_done) {
		struct eio *io = q->sync_done;

		q->sync_done = io->next;
		if (!q->sync_done)
			q->sync_tail = NULL;
		io->done(io, io->res);
		n++;
	}
	while (q->done) {
		struct breq *r = q->done;

		q->done = r->next;
		if (!q->done)
			q->done_tail = NULL;
		req_complete(r);
		n++;
	}
	blk_queue_unplug(q);
	return n;
}

bool blk_queue_ready(struct blk_queue *q)
{
	struct pollfd p = { .fd = q->efd, .events = POLLIN };

	if (q->done || q->sync_done)
		return true;
	if (q->eng->ready)
		return q->eng->ready(q->es);
	return poll(&p, 1, 0) == 1;
}

int blk_queue_watch(struct blk_queue *q, int fd)
{
	int ret;

	if (!q->eng->watch)
		return -EOPNOTSUPP;
	ret = q->eng->watch(q->es, fd);
	if (ret >= 0)
		q->watching = true;
	return ret;
}

int blk_queue_wait(struct blk_queue *q, uint64_t *fired)
{
	int ret = 0;

	*fired = 0;
	if (!q->watching)
		return -EINVAL;
	/* Completions the submissions already finished need no sleep. */
	if (!q->done && !q->sync_done) {
		ret = q->eng->wait(q->es);
		if (ret == -EINTR)
			ret = 0;
	} else {
		q->eng->kick(q->es);	/* signals queued by blk_queue_signal */
	}
	blk_queue_poll(q);
	*fired = q->eng->fired(q->es);
	return ret;
}

int blk_queue_signal(struct blk_queue *q, int fd)
{
	if (!q->watching || !q->eng->signal)
		return -EOPNOTSUPP;
	return q->eng->signal(q->es, fd);
}

void blk_queue_unwatch(struct blk_queue *q)
{
	int ret;

	if (!q->watching)
		return;
	while ((ret = q->eng->unwatch(q->es)) > 0) {
		ret = q->eng->wait(q->es);
		if (ret < 0 && ret != -EINTR)
			break;
		blk_queue_poll(q);
	}
	if (ret < 0)
		log_error("block: '%s': cannot stop watching fds: %s", q->b->file, strerror(-ret));
	q->watching = false;
	blk_queue_push(q);	/* what an unplug left for the next wait */
	/* Completions queued while watching were not announced on the fd. */
	if (q->done || q->sync_done)
		signal_efd(q);
}

void blk_queue_plug(struct blk_queue *q)
{
	if (!q->plugged++)
		q->now = now_ns();
}

void blk_queue_unplug(struct blk_queue *q)
{
	/* A watching owner is about to wait, which submits: no system call. */
	if (--q->plugged == 0 && !q->watching)
		q->eng->kick(q->es);
}

void blk_queue_push(struct blk_queue *q)
{
	q->eng->kick(q->es);
}
