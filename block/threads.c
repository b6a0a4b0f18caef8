/*
 * Thread-pool engine (aio=threads): workers run the system calls and hand
 * finished requests back to the queue's thread through a list and the
 * queue's eventfd.  Also home of eio_run_sync, used by every engine for
 * what it cannot do asynchronously.
 */
#include <errno.h>
#include <poll.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "blk-int.h"

#define THREADS_MAX 16

/* Full preadv/pwritev: a short read means end of file (the caller pads). */
static int64_t rw_full(struct eio *io)
{
	struct iovec local[64], *v, *heap = NULL;
	int cnt = io->iovcnt;
	uint64_t done = 0;

	if (cnt <= 64) {
		memcpy(local, io->iov, cnt * sizeof(*v));
		v = local;
	} else {
		v = heap = malloc(cnt * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memcpy(v, io->iov, cnt * sizeof(*v));
	}
	while (done < io->len) {
		ssize_t r;

		if (io->op == EIO_READ)
			r = preadv(io->fd, v, BLK_MIN(cnt, IOV_MAX), io->off + done);
		else
			r = pwritev(io->fd, v, BLK_MIN(cnt, IOV_MAX), io->off + done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			done = -errno;
			break;
		}
		if (r == 0) {
			if (io->op == EIO_WRITE)
				done = -EIO;
			break;
		}
		done += r;
		/* Advance the vector past what was transferred. */
		while (r > 0 && cnt > 0) {
			if ((size_t)r >= v->iov_len) {
				r -= v->iov_len;
				v++;
				cnt--;
			} else {
				v->iov_base = (char *)v->iov_base + r;
				v->iov_len -= r;
				r = 0;
			}
		}
	}
	free(heap);
	return (int64_t)done;
}

int64_t eio_run_sync(struct eio *io)
{
	switch (io->op) {
	case EIO_READ:
	case EIO_WRITE:
		return rw_full(io);
	case EIO_FSYNC:
		return fdatasync(io->fd) < 0 ? -errno : 0;
	case EIO_FALLOCATE:
		return fallocate(io->fd, io->mode, io->off, io->len) < 0 ? -errno : 0;
	case EIO_POLL: {
		struct pollfd p = { .fd = io->fd, .events = POLLIN };
		int n;

		while ((n = poll(&p, 1, -1)) < 0 && errno == EINTR)
			;
		return n < 0 ? -errno : p.revents;
	}
	}
	return -EINVAL;
}

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct eio *todo, *todo_tail;
	struct eio *done, *done_tail;
	int efd;
	int nthreads, idle;
	bool stop;
	pthread_t th[THREADS_MAX];
};

static void *pool_worker(void *opaque)
{
	struct pool *p = opaque;
	uint64_t one = 1;

	/* Not the name of the device thread that happened to start it. */
	pthread_setname_np(pthread_self(), "blk worker");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct eio *io;

		while (!p->todo && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
		}
		if (!p->todo)
			break;
		io = p->todo;
		p->todo = io->next;
		if (!p->todo)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);

		io->res = eio_run_sync(io);

		pthread_mutex_lock(&p->lock);
		io->next = NULL;
		if (p->done_tail)
			p->done_tail->next = io;
		else
			p->done = io;
		p->done_tail = io;
		if (write(p->efd, &one, sizeof(one)) < 0) {
			/* eventfd cannot overflow at these counts */
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int pool_init(void **state, int efd, char *err, size_t errlen)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->efd = efd;
	*state = p;
	return 0;
}

static void pool_fini(void *state)
{
	struct pool *p = state;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int pool_submit(void *state, struct eio *io)
{
	struct pool *p = state;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	io->next = NULL;
	if (p->todo_tail)
		p->todo_tail->next = io;
	else
		p->todo = io;
	p->todo_tail = io;
	if (p->idle == 0 && p->nthreads < THREADS_MAX) {
		if (pthread_create(&p->th[p->nthreads], NULL, pool_worker, p) == 0)
			p->nthreads++;
		else if (p->nthreads == 0)
			ret = -EAGAIN;
	}
	if (ret) {
		/* No worker at all: take it back out, the caller fails it. */
		p->todo = p->todo_tail = NULL;
	} else {
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static void pool_kick(void *state)
{
}

static int pool_reap(void *state)
{
	struct pool *p = state;
	struct eio *list;
	int n = 0;

	pthread_mutex_lock(&p->lock);
	list = p->done;
	p->done = p->done_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	while (list) {
		struct eio *io = list;

		list = io->next;
		io->done(io, io->res);
		n++;
	}
	return n;
}

const struct engine_ops engine_threads = {
	.name = "threads",
	.init = pool_init,
	.fini = pool_fini,
	.submit = pool_submit,
	.kick = pool_kick,
	.reap = pool_reap,
};
