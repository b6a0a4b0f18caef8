/*
 * The I/O thread's event loop on its io_uring (blk_queue_watch/wait): the
 * block layer delivers writes to watched eventfds and request completions
 * through one wait, engines that cannot do it refuse cleanly, and after
 * unwatch the queue's fd signals completions again; blk_queue_signal's
 * eventfd writes go out with the next wait; a ring setup flag the
 * kernel refuses falls back to the next.  The virtio-blk device
 * runs this loop by default (aio=io_uring, one queue per I/O thread); its
 * requests, resets and EVENT_IDX behaviour are covered in test_virtio_blk.c
 * and test_werror.c, which run on it too.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block/blk-int.h"
#include "test_block_util.h"

#define DISK	(1024 * 1024)

struct lt {
	char *dir, *file;
	struct blk *b;
	struct blk_queue *q;
};

static bool lt_init(struct lt *t, enum blk_aio aio)
{
	char err[256];
	int fd;

	memset(t, 0, sizeof(*t));
	t->dir = tb_tmpdir();
	t->file = g_build_filename(t->dir, "disk.raw", NULL);
	fd = open(t->file, O_CREAT | O_RDWR | O_TRUNC, 0644);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(ftruncate(fd, DISK), ==, 0);
	close(fd);
	/* aio=native needs O_DIRECT. */
	t->b = tb_open(t->file, "raw", aio,
		       aio == BLK_AIO_NATIVE ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK, false);
	if (!t->b && aio == BLK_AIO_NATIVE) {
		g_test_skip("O_DIRECT not supported on the temporary directory");
		return false;
	}
	g_assert_nonnull(t->b);
	t->q = blk_queue_new(t->b, err, sizeof(err));
	g_assert_nonnull(t->q);
	return true;
}

static void lt_fini(struct lt *t)
{
	if (t->q)
		blk_queue_free(t->q);
	if (t->b)
		g_assert_cmpint(blk_close(t->b), ==, 0);
	g_unlink(t->file);
	g_rmdir(t->dir);
	g_free(t->file);
	g_free(t->dir);
}

static void efd_write(int fd)
{
	g_assert_cmpint(eventfd_write(fd, 1), ==, 0);
}

/* Wait until every bit of want fired (completions run meanwhile); all bits seen. */
static uint64_t lt_wait_for(struct lt *t, uint64_t want)
{
	uint64_t all = 0;

	for (int i = 0; i < 1000 && (all & want) != want; i++) {
		uint64_t fired;

		g_assert_cmpint(blk_queue_wait(t->q, &fired), ==, 0);
		all |= fired;
	}
	g_assert_cmphex(all & want, ==, want);
	return all;
}

/* Writes to watched eventfds come back as their bits, every time. */
static void test_watch_fds(void)
{
	int fd[3];
	struct lt t;

	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	for (int i = 0; i < 3; i++) {
		fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		g_assert_cmpint(fd[i], >=, 0);
		g_assert_cmpint(blk_queue_watch(t.q, fd[i]), ==, i);
	}
	/* Each write is seen, also with the counter never read in between. */
	for (int round = 0; round < 5; round++) {
		efd_write(fd[1]);
		g_assert_cmphex(lt_wait_for(&t, 1 << 1) & (1 << 0 | 1 << 2), ==, 0);
		efd_write(fd[2]);
		efd_write(fd[0]);
		g_assert_cmphex(lt_wait_for(&t, 1 << 0 | 1 << 2) & (1 << 1), ==, 0);
	}
	blk_queue_unwatch(t.q);
	/* Unwatched: a write no longer reaches the queue's engine. */
	efd_write(fd[1]);
	{
		struct pollfd p = { .fd = blk_queue_fd(t.q), .events = POLLIN };

		g_assert_cmpint(poll(&p, 1, 100), ==, 0);
	}
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	lt_fini(&t);
}

struct lt_req {
	bool done;
	int64_t ret;
};

static void lt_cb(void *opaque, int64_t ret)
{
	struct lt_req *r = opaque;

	r->done = true;
	r->ret = ret;
}

/*
 * Requests submitted while watching reach the kernel in the wait and
 * complete from it (no blk_queue_poll, no fd), with the right data; the
 * queue's fd stays silent meanwhile and signals again after unwatch.
 */
static void test_wait_completions(void)
{
	static uint8_t wbuf[64][512], rbuf[64][512];
	struct lt_req w[64] = { 0 }, r[64] = { 0 }, last = { 0 };
	struct pollfd p;
	unsigned n;
	struct lt t;
	int kick;

	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g_assert_cmpint(blk_queue_watch(t.q, kick), ==, 0);
	for (unsigned i = 0; i < 64; i++) {
		struct iovec iov = { wbuf[i], sizeof(wbuf[i]) };

		tb_fill(wbuf[i], sizeof(wbuf[i]), i + 1);
		g_assert_cmpint(blk_pwritev(t.q, i * 4096, &iov, 1, lt_cb, &w[i]), ==, 0);
		g_assert_false(w[i].done);
	}
	for (n = 0; n < 64;) {
		uint64_t fired;

		g_assert_cmpint(blk_queue_wait(t.q, &fired), ==, 0);
		g_assert_cmphex(fired, ==, 0);
		n = 0;
		for (unsigned i = 0; i < 64; i++)
			n += w[i].done;
	}
	for (unsigned i = 0; i < 64; i++) {
		struct iovec iov = { rbuf[i], sizeof(rbuf[i]) };

		g_assert_cmpint(w[i].ret, ==, 512);
		g_assert_cmpint(blk_preadv(t.q, i * 4096, &iov, 1, lt_cb, &r[i]), ==, 0);
	}
	/* A kick among the completions is reported with them. */
	efd_write(kick);
	lt_wait_for(&t, 1);
	for (unsigned i = 0; i < 64; i++) {
		while (!r[i].done) {
			uint64_t fired;

			g_assert_cmpint(blk_queue_wait(t.q, &fired), ==, 0);
		}
		g_assert_cmpint(r[i].ret, ==, 512);
		g_assert_cmpmem(rbuf[i], 512, wbuf[i], 512);
	}
	p = (struct pollfd){ .fd = blk_queue_fd(t.q), .events = POLLIN };
	g_assert_cmpint(poll(&p, 1, 0), ==, 0);

	/* Back to the fd: a completion makes it readable again. */
	blk_queue_unwatch(t.q);
	{
		struct iovec iov = { rbuf[0], sizeof(rbuf[0]) };

		g_assert_cmpint(blk_preadv(t.q, 0, &iov, 1, lt_cb, &last), ==, 0);
	}
	g_assert_cmpint(poll(&p, 1, 10000), ==, 1);
	while (!last.done) {
		poll(&p, 1, 1000);
		blk_queue_poll(t.q);
	}
	g_assert_cmpint(last.ret, ==, 512);
	close(kick);
	lt_fini(&t);
}

/*
 * While watching, an unplug leaves its submissions to the next wait; an
 * unwatch that comes first pushes them, or they would never complete.
 */
static void test_unplug_unwatch(void)
{
	static uint8_t buf[8][4096];
	struct lt_req r[8] = { 0 };
	struct pollfd p;
	struct lt t;
	int kick;

	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g_assert_cmpint(blk_queue_watch(t.q, kick), ==, 0);
	blk_queue_plug(t.q);
	for (unsigned i = 0; i < 8; i++) {
		struct iovec iov = { buf[i], sizeof(buf[i]) };

		g_assert_cmpint(blk_preadv(t.q, i * 4096, &iov, 1, lt_cb, &r[i]), ==, 0);
	}
	blk_queue_unplug(t.q);
	blk_queue_unwatch(t.q);
	p = (struct pollfd){ .fd = blk_queue_fd(t.q), .events = POLLIN };
	for (unsigned i = 0; i < 8; i++) {
		while (!r[i].done) {
			g_assert_cmpint(poll(&p, 1, 10000), ==, 1);
			blk_queue_poll(t.q);
		}
		g_assert_cmpint(r[i].ret, ==, 4096);
	}
	close(kick);
	lt_fini(&t);
}

struct lt_owner {
	struct lt *t;
	uint8_t (*buf)[4096];
	struct lt_req *r;
	unsigned n;
};

/*
 * A thread watches (on its own ring, where the kernel has one), writes,
 * and unwatches with its writes still in flight.
 */
static void *lt_owner_run(void *opaque)
{
	struct lt_owner *o = opaque;
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	g_assert_cmpint(blk_queue_watch(o->t->q, kick), ==, 0);
	for (unsigned i = 0; i < o->n; i++) {
		struct iovec iov = { o->buf[i], 4096 };

		tb_fill(o->buf[i], 4096, 0x40 + i);
		g_assert_cmpint(blk_pwritev(o->t->q, i * 4096, &iov, 1, lt_cb, &o->r[i]), ==, 0);
	}
	blk_queue_unwatch(o->t->q);
	close(kick);
	return NULL;
}

struct lt_writer {
	int fd;
	bool stop;
};

static void *lt_writer_run(void *opaque)
{
	struct lt_writer *w = opaque;

	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
		efd_write(w->fd);
	return NULL;
}

/*
 * Unwatch while the watched fd is written all the time: the kernel may
 * answer a POLL_REMOVE with -EALREADY (the poll is busy posting a wakeup)
 * and leave the poll armed; unwatch must ask again, or it sleeps for a CQE
 * that never comes (this hung a virtio-blk reset 1 time in ~300).  A hang
 * ends the test by SIGALRM.
 */
static void test_unwatch_firing(void)
{
	struct lt_writer w = { .fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	pthread_t th;
	struct lt t;

	g_assert_cmpint(w.fd, >=, 0);
	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	g_assert_cmpint(pthread_create(&th, NULL, lt_writer_run, &w), ==, 0);
	alarm(60);
	for (int i = 0; i < 2000; i++) {
		g_assert_cmpint(blk_queue_watch(t.q, w.fd), ==, 0);
		lt_wait_for(&t, 1);
		blk_queue_unwatch(t.q);
	}
	alarm(0);
	__atomic_store_n(&w.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	close(w.fd);
	lt_fini(&t);
}

/*
 * After its watching thread is gone, the queue serves any thread on its
 * fd: the writes the thread left in flight completed at its unwatch, and
 * reads from this thread see them.
 */
static void test_owner_gone(void)
{
	static uint8_t wbuf[16][4096], rbuf[16][4096];
	struct lt_req w[16] = { 0 }, r[16] = { 0 };
	struct lt_owner o = { .buf = wbuf, .r = w, .n = 16 };
	struct pollfd p;
	pthread_t th;
	struct lt t;

	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	o.t = &t;
	for (int round = 0; round < 3; round++) {
		memset(w, 0, sizeof(w));
		g_assert_cmpint(pthread_create(&th, NULL, lt_owner_run, &o), ==, 0);
		g_assert_cmpint(pthread_join(th, NULL), ==, 0);
		for (unsigned i = 0; i < 16; i++) {
			g_assert_true(w[i].done);
			g_assert_cmpint(w[i].ret, ==, 4096);
		}
	}
	p = (struct pollfd){ .fd = blk_queue_fd(t.q), .events = POLLIN };
	for (unsigned i = 0; i < 16; i++) {
		struct iovec iov = { rbuf[i], sizeof(rbuf[i]) };

		g_assert_cmpint(blk_preadv(t.q, i * 4096, &iov, 1, lt_cb, &r[i]), ==, 0);
	}
	for (unsigned i = 0; i < 16; i++) {
		while (!r[i].done) {
			g_assert_cmpint(poll(&p, 1, 10000), ==, 1);
			blk_queue_poll(t.q);
		}
		g_assert_cmpint(r[i].ret, ==, 4096);
		g_assert_cmpmem(rbuf[i], 4096, wbuf[i], 4096);
	}
	lt_fini(&t);
}

/* Free while watching, requests in flight: they complete, nothing leaks. */
static void test_free_watching(void)
{
	static uint8_t buf[16][4096];
	struct lt_req r[16] = { 0 };
	struct lt t;
	int kick;

	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g_assert_cmpint(blk_queue_watch(t.q, kick), ==, 0);
	for (unsigned i = 0; i < 16; i++) {
		struct iovec iov = { buf[i], sizeof(buf[i]) };

		g_assert_cmpint(blk_preadv(t.q, i * 4096, &iov, 1, lt_cb, &r[i]), ==, 0);
	}
	blk_queue_free(t.q);
	t.q = NULL;
	for (unsigned i = 0; i < 16; i++) {
		g_assert_true(r[i].done);
		g_assert_cmpint(r[i].ret, ==, 4096);
	}
	close(kick);
	lt_fini(&t);
}

/* The other engines refuse, and the queue still works on its fd. */
static void test_refused(gconstpointer data)
{
	enum blk_aio aio = GPOINTER_TO_INT(data);
	uint64_t fired = 1;
	uint8_t buf[512];
	struct lt t;
	int fd;

	if (!lt_init(&t, aio)) {
		lt_fini(&t);
		return;
	}
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g_assert_cmpint(blk_queue_watch(t.q, fd), ==, -EOPNOTSUPP);
	g_assert_cmpint(blk_queue_wait(t.q, &fired), ==, -EINVAL);
	g_assert_cmphex(fired, ==, 0);
	blk_queue_unwatch(t.q);
	g_assert_cmpint(tb_pread(t.q, 0, buf, sizeof(buf)), ==, sizeof(buf));
	close(fd);
	lt_fini(&t);
}

/*
 * blk_queue_signal: the eventfd write goes out with the next wait, once per
 * call; not watching, it is refused and the caller writes the fd itself.
 */
static void test_signal(void)
{
	int watched = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	eventfd_t v = 0;
	struct lt t;

	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	g_assert_cmpint(blk_queue_signal(t.q, irq), ==, -EOPNOTSUPP);
	g_assert_cmpint(blk_queue_watch(t.q, watched), ==, 0);
	/* Signalling a watched fd wakes the very wait that writes it. */
	g_assert_cmpint(blk_queue_signal(t.q, watched), ==, 0);
	g_assert_cmpint(eventfd_read(watched, &v), <, 0);	/* not yet */
	lt_wait_for(&t, 1 << 0);
	g_assert_cmpint(eventfd_read(watched, &v), ==, 0);
	g_assert_cmpuint(v, ==, 1);
	/* An unwatched fd: written by the wait, three signals add three. */
	for (int i = 0; i < 3; i++)
		g_assert_cmpint(blk_queue_signal(t.q, irq), ==, 0);
	g_assert_cmpint(blk_queue_signal(t.q, watched), ==, 0);
	lt_wait_for(&t, 1 << 0);
	g_assert_cmpint(eventfd_read(irq, &v), ==, 0);
	g_assert_cmpuint(v, ==, 3);
	/* A bad fd fails in the kernel: logged, the loop goes on. */
	g_assert_cmpint(blk_queue_signal(t.q, 1000000), ==, 0);
	g_assert_cmpint(blk_queue_signal(t.q, watched), ==, 0);
	lt_wait_for(&t, 1 << 0);
	blk_queue_unwatch(t.q);
	g_assert_cmpint(blk_queue_signal(t.q, irq), ==, -EOPNOTSUPP);
	close(watched);
	close(irq);
	lt_fini(&t);
}

/* More watches than the ring keeps: refused, the first ones still work. */
static void test_watch_limit(void)
{
	int fd[9];
	struct lt t;

	g_assert_true(lt_init(&t, BLK_AIO_IO_URING));
	for (int i = 0; i < 9; i++) {
		fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		g_assert_cmpint(blk_queue_watch(t.q, fd[i]), ==, i < 8 ? i : -ENOSPC);
	}
	efd_write(fd[7]);
	lt_wait_for(&t, 1 << 7);
	for (int i = 0; i < 9; i++)
		close(fd[i]);
	lt_fini(&t);
}

/* A setup flag the kernel refuses falls back to the next set of flags. */
static void test_setup_fallback(void)
{
	const unsigned unknown = 1u << 31;	/* no kernel knows it */
	const unsigned flags[] = { unknown, IORING_SETUP_COOP_TASKRUN, 0 };
	struct io_uring ring;
	struct io_uring_cqe *cqe;

	g_assert_cmpint(uring_queue_init(&ring, 8, flags, 1), ==, -EINVAL);
	g_assert_cmpint(uring_queue_init(&ring, 8, flags, 3), ==, 0);
	/* COOP_TASKRUN from Linux 5.19 on, else no flag at all. */
	g_assert_true(ring.flags == IORING_SETUP_COOP_TASKRUN || ring.flags == 0);
	g_test_message("ring flags 0x%x", ring.flags);
	io_uring_prep_nop(io_uring_get_sqe(&ring));
	g_assert_cmpint(io_uring_submit_and_wait(&ring, 1), ==, 1);
	g_assert_cmpint(io_uring_peek_cqe(&ring, &cqe), ==, 0);
	g_assert_cmpint(cqe->res, ==, 0);
	io_uring_queue_exit(&ring);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/blk-loop/watch-fds", test_watch_fds);
	g_test_add_func("/blk-loop/wait-completions", test_wait_completions);
	g_test_add_func("/blk-loop/free-watching", test_free_watching);
	g_test_add_func("/blk-loop/unplug-unwatch", test_unplug_unwatch);
	g_test_add_func("/blk-loop/owner-gone", test_owner_gone);
	g_test_add_func("/blk-loop/unwatch-firing", test_unwatch_firing);
	g_test_add_func("/blk-loop/watch-limit", test_watch_limit);
	g_test_add_func("/blk-loop/signal", test_signal);
	g_test_add_func("/blk-loop/setup-fallback", test_setup_fallback);
	g_test_add_data_func("/blk-loop/refused/native", GINT_TO_POINTER(BLK_AIO_NATIVE),
			     test_refused);
	g_test_add_data_func("/blk-loop/refused/threads", GINT_TO_POINTER(BLK_AIO_THREADS),
			     test_refused);
	return g_test_run();
}
