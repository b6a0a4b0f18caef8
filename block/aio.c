/*
 * Linux AIO engine (aio=native, libaio).  Reads and writes go through
 * io_submit with the queue's eventfd attached; fdatasync too when the
 * kernel takes IOCB_CMD_FDSYNC.  fallocate has no AIO command, so it runs
 * synchronously and completes through the queue like any other request.
 */
#include <errno.h>
#include <poll.h>
#include <libaio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

#define AIO_MAX 256

struct aio_state {
	io_context_t ctx;
	int efd;
	unsigned inflight;
	bool no_fdsync;
	struct eio *backlog, *backlog_tail;
};

struct aio_cb {
	struct iocb cb;
	struct eio *io;
};

static int aio_init(void **state, int efd, char *err, size_t errlen)
{
	struct aio_state *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	ret = io_setup(AIO_MAX, &a->ctx);
	if (ret < 0) {
		snprintf(err, errlen, "aio=native: io_setup: %s", strerror(-ret));
		free(a);
		return ret;
	}
	a->efd = efd;
	*state = a;
	return 0;
}

static void aio_fini(void *state)
{
	struct aio_state *a = state;

	io_destroy(a->ctx);
	free(a);
}

/* 0 submitted, -EAGAIN no room, other -errno failure. */
static int aio_start(struct aio_state *a, struct eio *io)
{
	struct aio_cb *c = calloc(1, sizeof(*c));
	struct iocb *p = &c->cb;
	int ret;

	if (!c)
		return -ENOMEM;
	c->io = io;
	if (io->op == EIO_READ)
		io_prep_preadv(p, io->fd, io->iov, io->iovcnt, io->off);
	else if (io->op == EIO_WRITE)
		io_prep_pwritev(p, io->fd, io->iov, io->iovcnt, io->off);
	else if (io->op == EIO_POLL)
		io_prep_poll(p, io->fd, POLLIN);	/* Linux 4.18 */
	else
		io_prep_fdsync(p, io->fd);
	io_set_eventfd(p, a->efd);
	p->data = c;
	ret = io_submit(a->ctx, 1, &p);
	if (ret == 1) {
		a->inflight++;
		return 0;
	}
	free(c);
	return ret < 0 ? ret : -EAGAIN;
}

static int aio_submit(void *state, struct eio *io)
{
	struct aio_state *a = state;
	int ret;

	if (io->op == EIO_FALLOCATE || (io->op == EIO_FSYNC && a->no_fdsync)) {
		io->res = eio_run_sync(io);
		return 1;
	}
	if (!a->backlog && a->inflight < AIO_MAX) {
		ret = aio_start(a, io);
		if (ret == -EINVAL && io->op == EIO_FSYNC) {
			/* Kernels before 4.18 have no AIO fsync. */
			a->no_fdsync = true;
			io->res = eio_run_sync(io);
			return 1;
		}
		if (ret != -EAGAIN)
			return ret;
	}
	io->next = NULL;
	if (a->backlog_tail)
		a->backlog_tail->next = io;
	else
		a->backlog = io;
	a->backlog_tail = io;
	return 0;
}

static void aio_kick(void *state)
{
}

static int aio_reap(void *state)
{
	struct aio_state *a = state;
	struct io_event ev[64];
	struct timespec zero = { 0, 0 };
	int n = 0, got;

	do {
		got = io_getevents(a->ctx, 0, 64, ev, &zero);
		for (int i = 0; i < got; i++) {
			struct aio_cb *c = ev[i].data;
			struct eio *io = c->io;
			int64_t res = (long)ev[i].res;

			free(c);
			a->inflight--;
			io->done(io, res);
			n++;
		}
		while (a->backlog && a->inflight < AIO_MAX) {
			struct eio *io = a->backlog;
			int ret = aio_start(a, io);

			if (ret == -EAGAIN)
				break;
			a->backlog = io->next;
			if (!a->backlog)
				a->backlog_tail = NULL;
			if (ret < 0) {
				io->done(io, ret);
				n++;
			}
		}
	} while (got == 64);
	return n;
}

const struct engine_ops engine_aio = {
	.name = "native",
	.init = aio_init,
	.fini = aio_fini,
	.submit = aio_submit,
	.kick = aio_kick,
	.reap = aio_reap,
};
