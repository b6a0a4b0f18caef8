/*
 * io_uring engine (aio=io_uring): one ring per queue, its completions
 * signalled on the queue's eventfd.
 *
 * The ring can also be its thread's event loop (blk_queue_watch): eventfds
 * the thread waits for get a multishot POLL_ADD on the ring, and the
 * thread sleeps in io_uring_enter, which submits and waits in one call.
 * The queue's eventfd is unregistered meanwhile: nobody sleeps on it.
 * For that time the thread also gets a ring of its own, made by it with
 * SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1): completions wait, without an
 * interrupt or a task-work signal each, for the io_uring_enter in which
 * the thread sleeps or submits anyway.  Such a ring only ever answers its
 * maker, so the shared ring is kept aside and comes back at unwatch, once
 * everything submitted on the own ring has completed.
 * CQEs of watches carry an odd user_data (eio pointers are aligned):
 * (index << 1) | 1 for the poll, URING_UD_REMOVE(index) for the answer to
 * its POLL_REMOVE, or URING_UD_SIGNAL for an eventfd write that failed
 * (uring_signal).
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"
#include "log.h"
#include "tsan.h"

#define URING_ENTRIES 256
#define URING_MAX_WATCH 8
#define URING_UD_WATCH(i) (((uint64_t)(i) << 1) | 1)
#define URING_UD_REMOVE(i) URING_UD_WATCH(URING_MAX_WATCH + (i))
#define URING_UD_SIGNAL (UINT64_MAX - 2)

struct uring_watch {
	int fd;
	bool armed;		/* a multishot poll is in the kernel */
	bool removing;		/* its POLL_REMOVE is queued or was taken */
};

struct uring_state {
	struct io_uring ring;
	struct io_uring shared;	/* set aside while ring is the owner's own */
	bool owned;
	struct eio *backlog, *backlog_tail;	/* no free SQE when submitted */
	unsigned unsubmitted;
	unsigned inflight;	/* eios in SQEs, their CQE not reaped yet */
	int efd;
	struct uring_watch watch[URING_MAX_WATCH];
	unsigned nwatch;
	uint64_t fired;
};

/*
 * Setup flags, best first.  COOP_TASKRUN (Linux 5.19): a completion does
 * not interrupt the queue's thread with an IPI while it runs in user space
 * (it is picked up at its next io_uring_enter, which the I/O thread makes
 * soon, to submit or to sleep); a sleeping thread is still woken.  In
 * alternating runs of the 4k randread bench it was ahead in 3 of 4 pairs
 * (~3%).  The queue's thread ring, while it watches, has better ones.
 */
static const unsigned uring_flags[] = { IORING_SETUP_COOP_TASKRUN, 0 };
static const unsigned uring_own_flags[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
};

/*
 * liburing maps and unmaps a ring's memory with its own system calls,
 * which ThreadSanitizer does not see: a ring mapped where one another
 * thread used and exited was looks to it like memory both threads share
 * unordered.  The kernel orders that unmap before this map; tell TSan,
 * keyed by the addresses themselves (no-ops in other builds).
 */
static void uring_tsan_ring(struct io_uring *ring, bool mapped)
{
	void *p[] = { ring->sq.ring_ptr, ring->cq.ring_ptr, ring->sq.sqes };

	for (unsigned i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		if (mapped)
			tsan_acquire(p[i]);
		else
			tsan_release(p[i]);
	}
}

int uring_queue_init(struct io_uring *ring, unsigned entries, const unsigned *flags,
		     unsigned n)
{
	int ret = -EINVAL;

	/* An older kernel refuses a flag it does not know with EINVAL. */
	for (unsigned i = 0; i < n; i++) {
		ret = io_uring_queue_init(entries, ring, flags[i]);
		if (ret != -EINVAL)
			break;
	}
	if (!ret)
		uring_tsan_ring(ring, true);
	return ret;
}

static void uring_queue_exit(struct io_uring *ring)
{
	uring_tsan_ring(ring, false);
	io_uring_queue_exit(ring);
}

static int uring_init(void **state, int efd, char *err, size_t errlen)
{
	struct uring_state *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	ret = uring_queue_init(&u->ring, URING_ENTRIES, uring_flags,
			       sizeof(uring_flags) / sizeof(uring_flags[0]));
	if (ret < 0) {
		snprintf(err, errlen, "aio=io_uring: io_uring_queue_init: %s", strerror(-ret));
		free(u);
		return ret;
	}
	ret = io_uring_register_eventfd(&u->ring, efd);
	if (ret < 0) {
		snprintf(err, errlen, "aio=io_uring: register eventfd: %s", strerror(-ret));
		uring_queue_exit(&u->ring);
		free(u);
		return ret;
	}
	u->efd = efd;
	*state = u;
	return 0;
}

static void uring_fini(void *state)
{
	struct uring_state *u = state;

	uring_queue_exit(&u->ring);
	if (u->owned)
		uring_queue_exit(&u->shared);
	free(u);
}

static void uring_prep(struct uring_state *u, struct io_uring_sqe *sqe, struct eio *io)
{
	switch (io->op) {
	case EIO_READ:
		io_uring_prep_readv(sqe, io->fd, io->iov, io->iovcnt, io->off);
		break;
	case EIO_WRITE:
		io_uring_prep_writev(sqe, io->fd, io->iov, io->iovcnt, io->off);
		break;
	case EIO_FSYNC:
		io_uring_prep_fsync(sqe, io->fd, IORING_FSYNC_DATASYNC);
		break;
	case EIO_FALLOCATE:
		io_uring_prep_fallocate(sqe, io->fd, io->mode, io->off, io->len);
		break;
	case EIO_POLL:
		io_uring_prep_poll_add(sqe, io->fd, POLLIN);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	u->inflight++;
}

static int uring_submit(void *state, struct eio *io)
{
	struct uring_state *u = state;
	struct io_uring_sqe *sqe = NULL;

	if (!u->backlog) {
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe) {
			io_uring_submit(&u->ring);
			u->unsubmitted = 0;
			sqe = io_uring_get_sqe(&u->ring);
		}
	}
	if (!sqe) {
		/* Ring full: keep order, retry when completions free slots. */
		io->next = NULL;
		if (u->backlog_tail)
			u->backlog_tail->next = io;
		else
			u->backlog = io;
		u->backlog_tail = io;
		return 0;
	}
	uring_prep(u, sqe, io);
	u->unsubmitted++;
	return 0;
}

/* An SQE for the engine's own use: submit what is queued when full. */
static struct io_uring_sqe *uring_own_sqe(struct uring_state *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		io_uring_submit(&u->ring);
		u->unsubmitted = 0;
		sqe = io_uring_get_sqe(&u->ring);
	}
	if (sqe)
		u->unsubmitted++;
	return sqe;
}

static void uring_kick(void *state)
{
	struct uring_state *u = state;

	if (u->unsubmitted) {
		io_uring_submit(&u->ring);
		u->unsubmitted = 0;
	}
}

static void uring_watch_cqe(struct uring_state *u, const struct io_uring_cqe *cqe)
{
	uint64_t i = cqe->user_data >> 1;
	struct uring_watch *w;

	/* A signal answers only when it failed; a full counter wakes anyway. */
	if (cqe->user_data == URING_UD_SIGNAL && cqe->res != -EAGAIN)
		log_once("io_uring: eventfd write failed: %s", strerror(-cqe->res));
	if (cqe->user_data == URING_UD_SIGNAL)
		return;
	if (i >= URING_MAX_WATCH && i - URING_MAX_WATCH < u->nwatch) {
		/*
		 * -EALREADY: the poll was busy posting a wakeup and stays
		 * armed; unwatch asks again.  Else the poll ends with its own
		 * CQE (or already did: -ENOENT).
		 */
		if (cqe->res == -EALREADY)
			u->watch[i - URING_MAX_WATCH].removing = false;
		return;
	}
	if (i >= u->nwatch)
		return;
	w = &u->watch[i];
	if (cqe->res > 0)
		u->fired |= 1ull << i;
	else if (cqe->res < 0 && cqe->res != -ECANCELED)
		/* The poll failed: report it as fired, the owner reads the fd. */
		u->fired |= 1ull << i;
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		/* The kernel ended the multishot poll: wait arms it again. */
		w->armed = false;
		if (!w->removing)
			u->fired |= 1ull << i;
	}
}

static int uring_reap(void *state)
{
	struct uring_state *u = state;
	struct io_uring_cqe *cqe;
	int n = 0;

	for (;;) {
		while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
			struct eio *io = io_uring_cqe_get_data(cqe);
			int64_t res = cqe->res;

			if (cqe->user_data & 1) {
				uring_watch_cqe(u, cqe);
				io_uring_cqe_seen(&u->ring, cqe);
				continue;
			}
			io_uring_cqe_seen(&u->ring, cqe);
			u->inflight--;
			io->done(io, res);
			n++;
		}
		if (!u->backlog)
			break;
		/* Move what fits of the backlog into the ring. */
		while (u->backlog) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
			struct eio *io = u->backlog;

			if (!sqe)
				break;
			u->backlog = io->next;
			if (!u->backlog)
				u->backlog_tail = NULL;
			uring_prep(u, sqe, io);
			u->unsubmitted++;
		}
		uring_kick(u);
		if (u->backlog || io_uring_cq_ready(&u->ring) == 0)
			break;
	}
	uring_kick(u);
	return n;
}

static bool uring_ready(void *state)
{
	struct uring_state *u = state;

	return io_uring_cq_ready(&u->ring) > 0;
}

/*
 * The calling thread's own ring replaces the shared one, if nothing is on
 * the shared one and the kernel can (else the shared one serves).
 */
static void uring_own(struct uring_state *u)
{
	struct io_uring own;

	if (u->owned || u->inflight || u->unsubmitted || u->backlog)
		return;
	if (uring_queue_init(&own, URING_ENTRIES, uring_own_flags,
			     sizeof(uring_own_flags) / sizeof(uring_own_flags[0])) < 0)
		return;
	u->shared = u->ring;
	u->ring = own;
	u->owned = true;
}

static int uring_watch(void *state, int fd)
{
	struct uring_state *u = state;
	int ret;

	if (u->nwatch == URING_MAX_WATCH)
		return -ENOSPC;
	if (!u->nwatch) {
		ret = io_uring_unregister_eventfd(&u->ring);
		if (ret < 0)
			return ret;
		uring_own(u);
	}
	u->watch[u->nwatch] = (struct uring_watch){ .fd = fd };
	return u->nwatch++;
}

static void uring_arm(struct uring_state *u)
{
	for (unsigned i = 0; i < u->nwatch; i++) {
		struct uring_watch *w = &u->watch[i];
		struct io_uring_sqe *sqe;

		if (w->armed || w->removing)
			continue;
		sqe = uring_own_sqe(u);
		if (!sqe)
			return;
		/* Multishot: a CQE for every write, the counter never read. */
		io_uring_prep_poll_multishot(sqe, w->fd, POLLIN);
		io_uring_sqe_set_data64(sqe, URING_UD_WATCH(i));
		w->armed = true;
	}
}

static int uring_wait(void *state)
{
	struct uring_state *u = state;
	int ret;

	uring_arm(u);
	/* Returns at once when a CQE is already there. */
	ret = io_uring_submit_and_wait(&u->ring, 1);
	u->unsubmitted = 0;
	return ret < 0 ? ret : 0;
}

/*
 * An eventfd write as an SQE, answered only on failure.  The kernel copies
 * the 8 bytes when it issues the write, maybe later from a worker: they
 * live in the read-only data, not on a stack.
 */
static const uint64_t uring_one = 1;

static int uring_signal(void *state, int fd)
{
	struct uring_state *u = state;
	struct io_uring_sqe *sqe = uring_own_sqe(u);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_write(sqe, fd, &uring_one, sizeof(uring_one), 0);
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	io_uring_sqe_set_data64(sqe, URING_UD_SIGNAL);
	return 0;
}

static uint64_t uring_fired(void *state)
{
	struct uring_state *u = state;
	uint64_t f = u->fired;

	u->fired = 0;
	return f;
}

static int uring_unwatch(void *state)
{
	struct uring_state *u = state;
	unsigned armed = 0;

	for (unsigned i = 0; i < u->nwatch; i++) {
		struct uring_watch *w = &u->watch[i];
		struct io_uring_sqe *sqe;

		if (!w->armed)
			continue;
		armed++;
		if (w->removing)
			continue;
		sqe = uring_own_sqe(u);
		if (!sqe)
			continue;
		io_uring_prep_poll_remove(sqe, URING_UD_WATCH(i));
		io_uring_sqe_set_data64(sqe, URING_UD_REMOVE(i));
		w->removing = true;
	}
	if (armed)
		return armed;
	if (u->owned) {
		/* Only this thread can see these complete: wait for them here. */
		if (u->inflight || u->unsubmitted || u->backlog)
			return u->inflight + !!u->unsubmitted + !!u->backlog;
		uring_queue_exit(&u->ring);
		u->ring = u->shared;
		u->owned = false;
	}
	if (u->nwatch) {
		u->nwatch = 0;
		u->fired = 0;
		/* Back to sleeping on the eventfd. */
		if (io_uring_register_eventfd(&u->ring, u->efd) < 0)
			return -EIO;
	}
	return 0;
}

const struct engine_ops engine_io_uring = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.kick = uring_kick,
	.reap = uring_reap,
	.ready = uring_ready,
	.watch = uring_watch,
	.wait = uring_wait,
	.fired = uring_fired,
	.unwatch = uring_unwatch,
	.signal = uring_signal,
};
