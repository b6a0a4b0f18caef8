/*
 * io_uring engine (aio=io_uring): one ring per queue, its completions
 * signalled on the queue's eventfd.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

#define URING_ENTRIES 256

struct uring_state {
	struct io_uring ring;
	struct eio *backlog, *backlog_tail;	/* no free SQE when submitted */
	unsigned unsubmitted;
};

static int uring_init(void **state, int efd, char *err, size_t errlen)
{
	struct uring_state *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	ret = io_uring_queue_init(URING_ENTRIES, &u->ring, 0);
	if (ret < 0) {
		snprintf(err, errlen, "aio=io_uring: io_uring_queue_init: %s", strerror(-ret));
		free(u);
		return ret;
	}
	ret = io_uring_register_eventfd(&u->ring, efd);
	if (ret < 0) {
		snprintf(err, errlen, "aio=io_uring: register eventfd: %s", strerror(-ret));
		io_uring_queue_exit(&u->ring);
		free(u);
		return ret;
	}
	*state = u;
	return 0;
}

static void uring_fini(void *state)
{
	struct uring_state *u = state;

	io_uring_queue_exit(&u->ring);
	free(u);
}

static void uring_prep(struct io_uring_sqe *sqe, struct eio *io)
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
	}
	io_uring_sqe_set_data(sqe, io);
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
	uring_prep(sqe, io);
	u->unsubmitted++;
	return 0;
}

static void uring_kick(void *state)
{
	struct uring_state *u = state;

	if (u->unsubmitted) {
		io_uring_submit(&u->ring);
		u->unsubmitted = 0;
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

			io_uring_cqe_seen(&u->ring, cqe);
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
			uring_prep(sqe, io);
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

const struct engine_ops engine_io_uring = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.kick = uring_kick,
	.reap = uring_reap,
	.ready = uring_ready,
};
