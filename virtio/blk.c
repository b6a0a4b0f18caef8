/*
 * virtio-blk-pci (virtio 1.2, 5.2) on the block layer.
 *
 * Each virtqueue has its own blk_queue and, by default, its own I/O thread
 * (iothread-per-queue=off: one thread serves all queues of the device).  A
 * thread that serves one queue on aio=io_uring without polling sleeps in
 * that queue's ring (vblk_thread_ring: kicks, wake-ups and completions in
 * one io_uring_enter); otherwise it waits in epoll on its queues' kick
 * eventfds (signalled by an ioeventfd or the notify MMIO handler), their
 * blk_queue completion fds and a stop eventfd.  Requests are submitted
 * asynchronously; their completions run on the same thread, push to the
 * used ring and raise the queue's interrupt.  A device reset stops the threads, and each thread first waits
 * for its in-flight requests, so no completion writes into rings the
 * driver has taken back.  Before it sleeps, a thread may poll its avail
 * rings and completion rings for a self-tuned window of up to poll-max-ns,
 * with kicks suppressed meanwhile (docs/virtio.md).
 *
 * A chain whose layout does not fit the request (no status byte, a header
 * that is not device-readable, data in the wrong direction) breaks the
 * queue with NEEDS_RESET; a well-formed request the device cannot serve
 * (bad sector range, unknown type) completes with IOERR or UNSUPP.
 *
 * A request the backend fails is handled by the drive's werror=/rerror=
 * policy: report (IOERR), ignore (OK), or stop.  A stopped request is
 * parked on its queue, in pop order, and the main thread is asked to
 * pause the VM.  While any request of the device is parked or being
 * retried, no queue pops new requests, so nothing the guest submits later
 * overtakes it.  When the VM runs again the main thread bumps resume_gen
 * and wakes the I/O threads, which resubmit their parked requests first.
 */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "log.h"
#include "machine.h"
#include "options.h"
#include "virtio-pci.h"
#include "virtio.h"

#define VBLK_QUEUE_SIZE		256
#define VBLK_SIZE_MAX		(1u << 20)
#define VBLK_MAX_DZ_SECTORS	(1u << 22)	/* 2 GiB per discard/write-zeroes */
#define VBLK_POLL_MAX_NS	0		/* poll-max-ns default: off (docs/benchmarks.md) */
#define VBLK_POLL_START_NS	4096		/* first window after a short sleep */
#define VBLK_POLL_LIMIT_NS	(1000ull * 1000 * 1000)	/* poll-max-ns: at most 1 s */
#define VBLK_SUBMIT_BATCH	8		/* requests per submission (docs/benchmarks.md) */
#define PCI_CLASS_STORAGE_SCSI	0x010000

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

struct virtio_blk;

struct vblk_worker;

/* Owned by the I/O thread that serves it while the device runs. */
struct vblk_queue {
	struct virtio_blk *dev;
	struct vblk_worker *w;
	struct virtq *vq;
	struct blk_queue *bq;
	unsigned inflight;
	bool completed;			/* pushed since the last interrupt decision */
	GQueue parked;			/* failed with action stop, by seq */
	uint64_t next_seq;
	/*
	 * Heads of requests parked on the migration source, in order: read
	 * again from the ring and submitted when the VM runs.  Counted in held.
	 */
	uint16_t *replay;
	unsigned nr_replay;
};

/* One I/O thread, serving queues [first, first + count). */
struct vblk_worker {
	struct virtio_blk *dev;
	unsigned first, count;
	uint64_t poll_max_ns;		/* 0: never poll, sleep at once */
	uint64_t poll_ns;		/* current polling window, self-tuned */
	int stop_fd;
	int wake_fd;			/* the VM resumed, or the device may pop again */
	unsigned seen_gen;		/* resume_gen whose retries this thread ran */
	bool stopping;			/* draining for a device reset */
	pthread_t thread;
	bool running;
};

struct virtio_blk {
	struct device dev;
	struct virtio_pci vp;
	struct virtio_dev vd;
	struct virtio_blk_config cfg;
	struct machine *m;
	struct drive *drive;
	struct blk *blk;
	uint64_t capacity;		/* bytes */
	uint32_t lbs;
	bool readonly;
	char serial[VIRTIO_BLK_ID_BYTES];
	unsigned nr_queues;
	struct vblk_queue *q;
	unsigned nr_workers;		/* one per queue, or one per device */
	struct vblk_worker *w;
	/* Atomic: requests parked or being retried; while not 0 nothing is popped. */
	unsigned held;
	/* Atomic: bumped by the main thread each time the VM runs again. */
	unsigned resume_gen;
	/* Stopping for a migration: a request failing meanwhile parks as usual. */
	bool quiescing;
	struct machine_listener ml;
};

/* What to submit to the backend; kept so that a parked request can be retried. */
struct vblk_req {
	struct virtq_elem elem;		/* first: virtq_pop allocates the request */
	struct vblk_queue *q;
	uint8_t *status;
	uint32_t used;			/* bytes written to the driver on success */
	uint32_t type;			/* VIRTIO_BLK_T_IN, _OUT, _FLUSH, ... */
	uint64_t off, len;		/* bytes */
	struct iovec *iov;		/* data, for reads and writes */
	unsigned cnt;
	bool unmap;			/* write-zeroes may unmap */
	bool held;			/* counted in dev->held */
	uint64_t seq;			/* pop order on its queue */
};

static void vblk_wake_all(struct virtio_blk *b)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < b->nr_workers; i++)
		if (write(b->w[i].wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_once("%s: cannot wake I/O thread: %s", b->vd.name, strerror(errno));
}

/* r no longer waits: when it was the last, every queue may pop again. */
static void vblk_unhold(struct vblk_req *r)
{
	struct virtio_blk *b = r->q->dev;

	if (!r->held)
		return;
	r->held = false;
	if (!__atomic_sub_fetch(&b->held, 1, __ATOMIC_ACQ_REL))
		vblk_wake_all(b);
}

/*
 * Give r back to the driver.  A held request (parked, retried, carried
 * over a migration) no longer holds the queues back, whatever its end.
 */
static void vblk_complete(struct vblk_req *r, uint8_t status)
{
	struct vblk_queue *q = r->q;

	vblk_unhold(r);
	*r->status = status;
	virtq_push(q->vq, &r->elem, status == VIRTIO_BLK_S_OK ? r->used : 1);
	q->completed = true;
	g_free(r);
}

/* Into the queue's parked list, which stays in pop order. */
static void vblk_park(struct vblk_req *r, int error)
{
	struct vblk_queue *q = r->q;
	struct virtio_blk *b = q->dev;
	GList *l;

	if (!r->held) {
		r->held = true;
		__atomic_add_fetch(&b->held, 1, __ATOMIC_ACQ_REL);
	}
	for (l = q->parked.tail; l; l = l->prev)
		if (((struct vblk_req *)l->data)->seq < r->seq)
			break;
	if (l)
		g_queue_insert_after(&q->parked, l, r);
	else
		g_queue_push_head(&q->parked, r);
	__atomic_store_n(&b->drive->io_status,
			 error == ENOSPC ? BLK_IOSTATUS_NOSPACE : BLK_IOSTATUS_FAILED,
			 __ATOMIC_RELEASE);
}

/* The backend failed r: apply the drive's werror=/rerror= policy. */
static void vblk_failed(struct vblk_req *r, int error)
{
	struct vblk_queue *q = r->q;
	struct virtio_blk *b = q->dev;
	struct machine_io_error e = {
		.device = b->drive->id,
		.write = r->type != VIRTIO_BLK_T_IN,
		.error = error,
	};

	switch (drive_error_action(b->drive, e.write, error)) {
	case BLK_ERR_IGNORE:
		e.action = MACHINE_IO_IGNORE;
		vblk_complete(r, VIRTIO_BLK_S_OK);
		break;
	case BLK_ERR_STOP:
		/* A device reset is taking the rings back: nothing to wait for. */
		if (!q->w->stopping || __atomic_load_n(&b->quiescing, __ATOMIC_ACQUIRE)) {
			e.action = MACHINE_IO_STOP;
			vblk_park(r, error);
			break;
		}
		/* fall through */
	default:
		e.action = MACHINE_IO_REPORT;
		vblk_complete(r, VIRTIO_BLK_S_IOERR);
		break;
	}
	machine_report_io_error(b->m, &e);
}

static void vblk_io_done(void *opaque, int64_t ret)
{
	struct vblk_req *r = opaque;
	struct vblk_queue *q = r->q;

	q->inflight--;
	if (ret < 0)
		vblk_failed(r, -ret);
	else
		vblk_complete(r, VIRTIO_BLK_S_OK);
}

static int vblk_submit(struct vblk_req *r)
{
	struct blk_queue *bq = r->q->bq;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return blk_preadv(bq, r->off, r->iov, r->cnt, vblk_io_done, r);
	case VIRTIO_BLK_T_OUT:
		return blk_pwritev(bq, r->off, r->iov, r->cnt, vblk_io_done, r);
	case VIRTIO_BLK_T_FLUSH:
		return blk_flush(bq, vblk_io_done, r);
	case VIRTIO_BLK_T_DISCARD:
		return blk_discard(bq, r->off, r->len, vblk_io_done, r);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_write_zeroes(bq, r->off, r->len, r->unmap, vblk_io_done, r);
	}
	return -EINVAL;
}

/* Submit r; a submission that fails goes through the error policy too. */
static void vblk_start_io(struct vblk_req *r)
{
	int ret;

	r->q->inflight++;
	ret = vblk_submit(r);
	if (ret < 0)
		vblk_io_done(r, ret);
}

static void vblk_handle(struct vblk_queue *q, struct vblk_req *r);

/* One fewer held request that never became a struct vblk_req. */
static void vblk_unhold_head(struct virtio_blk *b)
{
	if (!__atomic_sub_fetch(&b->held, 1, __ATOMIC_ACQ_REL))
		vblk_wake_all(b);
}

/*
 * Requests the migration source had parked: the destination reads their
 * chains again from the ring (guest RAM came along) and submits them, in
 * their order, before anything new.  A head whose chain is no longer valid
 * (the guest rewrote it meanwhile) breaks the queue, as a bad chain does.
 */
static void vblk_replay(struct vblk_queue *q)
{
	for (unsigned i = 0; i < q->nr_replay; i++) {
		struct vblk_req *r;

		if (virtq_pop_head(q->vq, q->replay[i], sizeof(*r), (void **)&r)) {
			log_once("%s: queue %u: request at head %u carried over a migration is "
				 "not valid any more", q->dev->vd.name, q->vq->index, q->replay[i]);
			vblk_unhold_head(q->dev);
			virtq_fail(q->vq);
			continue;
		}
		r->held = true;
		vblk_handle(q, r);
	}
	g_free(q->replay);
	q->replay = NULL;
	q->nr_replay = 0;
}

/*
 * The VM runs again: resubmit the parked requests in order.  If one fails
 * again at once and parks, the later ones stay parked behind it.
 */
static void vblk_retry(struct vblk_queue *q)
{
	GQueue todo = q->parked;
	struct vblk_req *r;

	vblk_replay(q);
	g_queue_init(&q->parked);
	while ((r = g_queue_pop_head(&todo))) {
		if (!g_queue_is_empty(&q->parked))
			g_queue_push_tail(&q->parked, r);
		else
			vblk_start_io(r);
	}
}

/* A device reset: parked requests belong to rings the driver took back. */
static void vblk_drop_parked(struct vblk_queue *q)
{
	struct vblk_req *r;

	while ((r = g_queue_pop_head(&q->parked))) {
		if (r->held)
			__atomic_sub_fetch(&q->dev->held, 1, __ATOMIC_ACQ_REL);
		g_free(r);
	}
	__atomic_sub_fetch(&q->dev->held, q->nr_replay, __ATOMIC_ACQ_REL);
	g_free(q->replay);
	q->replay = NULL;
	q->nr_replay = 0;
}

/* Drop the first skip bytes of iov (in place); returns the new count. */
static unsigned vblk_iov_skip(struct iovec *iov, unsigned cnt, size_t skip, struct iovec **out)
{
	while (cnt && skip >= iov->iov_len) {
		skip -= iov->iov_len;
		iov++;
		cnt--;
	}
	if (cnt) {
		iov->iov_base = (char *)iov->iov_base + skip;
		iov->iov_len -= skip;
	}
	*out = iov;
	return cnt;
}

/* A byte range of the disk the request may touch: aligned, inside. */
static bool vblk_range_ok(struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t off;

	if (sector > UINT64_MAX / 512)
		return false;
	off = sector * 512;
	if (off % b->lbs || bytes % b->lbs)
		return false;
	return off <= b->capacity && bytes <= b->capacity - off;
}

static void vblk_rw(struct vblk_req *r, const struct virtio_blk_req_hdr *h, bool write)
{
	struct vblk_queue *q = r->q;
	struct virtio_blk *b = q->dev;
	struct virtq_elem *e = &r->elem;
	struct iovec *iov;
	unsigned cnt;
	size_t len;

	if (write) {
		cnt = vblk_iov_skip(e->iov, e->out_num, sizeof(*h), &iov);
		len = e->out_len - sizeof(*h);
	} else {
		/* The status byte was trimmed off the end of the in part. */
		cnt = e->in_num;
		iov = e->iov + e->out_num;
		len = e->in_len - 1;
		while (cnt && !iov[cnt - 1].iov_len)
			cnt--;
	}
	if (!vblk_range_ok(b, h->sector, len) || (write && b->readonly)) {
		vblk_complete(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (!len) {
		vblk_complete(r, VIRTIO_BLK_S_OK);
		return;
	}
	r->used = write ? 1 : len + 1;
	r->off = h->sector * 512;
	r->len = len;
	r->iov = iov;
	r->cnt = cnt;
	vblk_start_io(r);
}

static void vblk_discard_zeroes(struct vblk_req *r, uint32_t type)
{
	struct vblk_queue *q = r->q;
	struct virtio_blk *b = q->dev;
	struct virtio_blk_discard_write_zeroes seg;
	struct virtq_elem *e = &r->elem;
	uint32_t allowed = type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	uint64_t len;

	/* Only with the feature, and one segment per request, as
	 * max_discard_seg and max_write_zeroes_seg say. */
	if (!virtio_has_feature(&b->vd, type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD :
				VIRTIO_BLK_F_WRITE_ZEROES) ||
	    e->out_len - sizeof(struct virtio_blk_req_hdr) != sizeof(seg)) {
		vblk_complete(r, VIRTIO_BLK_S_UNSUPP);
		return;
	}
	virtio_iov_to_buf(e->iov, e->out_num, sizeof(struct virtio_blk_req_hdr), &seg, sizeof(seg));
	if (seg.flags & ~allowed) {
		vblk_complete(r, VIRTIO_BLK_S_UNSUPP);
		return;
	}
	len = (uint64_t)seg.num_sectors * 512;
	if (seg.num_sectors > VBLK_MAX_DZ_SECTORS || !vblk_range_ok(b, seg.sector, len) ||
	    b->readonly) {
		vblk_complete(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->off = seg.sector * 512;
	r->len = len;
	r->unmap = seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	vblk_start_io(r);
}

/* Which parts must be exactly the header / exactly the status byte. */
static bool vblk_layout_ok(const struct virtq_elem *e, uint32_t type)
{
	size_t hdr = sizeof(struct virtio_blk_req_hdr);

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		return e->out_len == hdr;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return e->in_len == 1;
	case VIRTIO_BLK_T_FLUSH:
		return e->out_len == hdr && e->in_len == 1;
	}
	return true;
}

static void vblk_handle(struct vblk_queue *q, struct vblk_req *r)
{
	struct virtio_blk *b = q->dev;
	struct virtq_elem *e = &r->elem;
	struct virtio_blk_req_hdr h;
	struct iovec *last;

	r->q = q;
	r->used = 1;
	r->seq = q->next_seq++;
	if (e->out_len < sizeof(h) || e->in_len < 1) {
		log_once("%s: request without a readable header and a writable status byte",
			 b->vd.name);
		goto bad;
	}
	virtio_iov_to_buf(e->iov, e->out_num, 0, &h, sizeof(h));
	r->type = h.type;
	if (!vblk_layout_ok(e, h.type)) {
		log_once("%s: request type %u with buffers in the wrong direction",
			 b->vd.name, h.type);
		goto bad;
	}
	/* The status is the last byte of the chain; trim it off the data. */
	last = &e->iov[e->out_num + e->in_num - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	last->iov_len--;

	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		vblk_rw(r, &h, false);
		return;
	case VIRTIO_BLK_T_OUT:
		vblk_rw(r, &h, true);
		return;
	case VIRTIO_BLK_T_FLUSH:
		vblk_start_io(r);
		return;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = MIN(e->in_len - 1, (size_t)VIRTIO_BLK_ID_BYTES);

		virtio_iov_from_buf(e->iov + e->out_num, e->in_num, 0, b->serial, n);
		r->used = n + 1;
		vblk_complete(r, VIRTIO_BLK_S_OK);
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		vblk_discard_zeroes(r, h.type);
		return;
	}
	vblk_complete(r, VIRTIO_BLK_S_UNSUPP);
	return;
bad:
	vblk_unhold(r);
	g_free(r);
	virtq_fail(q->vq);
}

static bool vblk_held(struct virtio_blk *b)
{
	return __atomic_load_n(&b->held, __ATOMIC_ACQUIRE) != 0;
}

/*
 * Pop and start everything available (up to one ring's worth in flight).
 * While a request is held nothing is popped, and notifications stay off:
 * the wake-up when the last one completes serves the queue again.  With
 * arm false notifications stay off too: the thread is polling the ring,
 * and must arm every queue before it sleeps (vblk_worker_arm).
 */
static void vblk_serve(struct vblk_queue *q, bool arm)
{
	struct virtq *vq = q->vq;
	unsigned popped = 0;
	void *r;

	/*
	 * What is popped goes to the kernel in submissions of up to
	 * VBLK_SUBMIT_BATCH requests: one per request costs a system call
	 * (and a notify of the host's disk) each, one for a whole ring's
	 * worth leaves the disk idle until the last request is prepared.
	 */
	blk_queue_plug(q->bq);
	do {
		virtq_disable_notify(vq);
		while (q->inflight < vq->size && !vblk_held(q->dev) &&
		       virtq_pop(vq, sizeof(struct vblk_req), &r) == 1) {
			vblk_handle(q, r);
			if (++popped % VBLK_SUBMIT_BATCH == 0)
				blk_queue_push(q->bq);
		}
		if (q->inflight >= vq->size || vblk_held(q->dev))
			break;	/* resumed from a completion or a wake-up */
	} while (arm && virtq_enable_notify(vq));
	blk_queue_unplug(q->bq);
}

static void vblk_maybe_notify(struct vblk_queue *q)
{
	if (q->completed) {
		q->completed = false;
		if (virtq_should_notify(q->vq))
			q->dev->vd.notify(&q->dev->vd, q->vq->index);
	}
}

static void vblk_drain_fd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_once("virtio-blk: eventfd read failed: %s", strerror(errno));
}

/* Serve q as the worker's mode says: arm at once unless it polls. */
static void vblk_worker_serve(struct vblk_worker *w, struct vblk_queue *q)
{
	vblk_serve(q, !w->poll_max_ns);
}

static void vblk_worker_notify(struct vblk_worker *w)
{
	for (unsigned i = w->first; i < w->first + w->count; i++)
		vblk_maybe_notify(&w->dev->q[i]);
}

static unsigned vblk_worker_inflight(struct vblk_worker *w)
{
	unsigned n = 0;

	for (unsigned i = w->first; i < w->first + w->count; i++)
		n += w->dev->q[i].inflight;
	return n;
}

/*
 * epoll data: the stop fd, the wake fd, or a queue's kick fd (2i) or
 * completion fd (2i+1).
 */
#define VBLK_EV_STOP	UINT64_MAX
#define VBLK_EV_WAKE	(UINT64_MAX - 1)

/* The drive's I/O limits apply while the thread serves, not while it stops. */
static void vblk_worker_limit(struct vblk_worker *w, bool on)
{
	for (unsigned i = w->first; i < w->first + w->count; i++)
		blk_queue_limit(w->dev->q[i].bq, on);
}

static int vblk_worker_watch(struct vblk_worker *w, int ep)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = VBLK_EV_STOP };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->stop_fd, &ev) < 0)
		return -errno;
	ev.data.u64 = VBLK_EV_WAKE;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
		return -errno;
	for (unsigned i = w->first; i < w->first + w->count; i++) {
		struct vblk_queue *q = &w->dev->q[i];

		if (!q->vq->enabled)
			continue;
		ev.data.u64 = 2ull * i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, q->vq->kick_fd, &ev) < 0)
			return -errno;
		ev.data.u64 = 2ull * i + 1;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, blk_queue_fd(q->bq), &ev) < 0)
			return -errno;
	}
	return 0;
}

/* The VM resumed (retry what is parked, first) or the device may pop again. */
static void vblk_worker_wake(struct vblk_worker *w, bool stopping)
{
	struct virtio_blk *b = w->dev;
	unsigned gen = __atomic_load_n(&b->resume_gen, __ATOMIC_ACQUIRE);

	vblk_drain_fd(w->wake_fd);
	if (stopping)
		return;
	if (gen != w->seen_gen) {
		w->seen_gen = gen;
		for (unsigned i = w->first; i < w->first + w->count; i++)
			vblk_retry(&b->q[i]);
	}
	for (unsigned i = w->first; i < w->first + w->count; i++)
		vblk_worker_serve(w, &b->q[i]);
}

static uint64_t vblk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Did the driver publish requests that q would pop now?  Shared memory only. */
static bool vblk_avail_pending(struct vblk_queue *q)
{
	struct virtq *vq = q->vq;

	return vq->enabled && !vq->broken && q->inflight < vq->size && !vblk_held(q->dev) &&
	       __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
}

/*
 * One look at the worker's rings and completion queues, without sleeping
 * (and, with aio=io_uring, without a system call unless there is work);
 * serves what it finds.  True when it found something.
 */
static bool vblk_worker_poll_once(struct vblk_worker *w)
{
	bool progress = false;

	for (unsigned i = w->first; i < w->first + w->count; i++) {
		struct vblk_queue *q = &w->dev->q[i];

		if (!q->vq->enabled)
			continue;
		if (q->inflight && blk_queue_ready(q->bq)) {
			blk_queue_poll(q->bq);
			progress = true;
		}
		if (vblk_avail_pending(q)) {
			vblk_serve(q, false);
			progress = true;
		}
	}
	if (progress)
		vblk_worker_notify(w);
	return progress;
}

/* Poll for up to w->poll_ns; true when something was served. */
static bool vblk_worker_poll(struct vblk_worker *w, uint64_t t0)
{
	do {
		if (vblk_worker_poll_once(w))
			return true;
	} while (vblk_now_ns() - t0 < w->poll_ns);
	return false;
}

/*
 * Before sleeping: turn notifications back on for every queue (which
 * serves what slipped in meanwhile).  Completions need nothing: the block
 * layer always signals its fd.
 */
static void vblk_worker_arm(struct vblk_worker *w)
{
	for (unsigned i = w->first; i < w->first + w->count; i++)
		if (w->dev->q[i].vq->enabled)
			vblk_serve(&w->dev->q[i], true);
	vblk_worker_notify(w);
}

/*
 * Adapt the polling window to how long the thread just waited (from the
 * start of its poll to the wake-up), as QEMU's iothreads do: a wait that
 * polling would have covered, had the window been up to poll-max-ns,
 * doubles it; a wait longer than poll-max-ns halves it, so a device that
 * goes idle stops polling after a few sleeps.  Unlike QEMU, a long wait
 * with requests in flight does not count: that is the disk's latency,
 * which no window covers, and it says nothing about how soon the driver
 * answers a completion, the wait polling is for.
 */
static void vblk_worker_tune(struct vblk_worker *w, uint64_t block_ns, bool busy)
{
	if (block_ns <= w->poll_ns)
		return;
	if (block_ns > w->poll_max_ns) {
		if (!busy)
			w->poll_ns = w->poll_ns > VBLK_POLL_START_NS ? w->poll_ns / 2 : 0;
	} else if (w->poll_ns < w->poll_max_ns) {
		w->poll_ns = MIN(w->poll_ns ? w->poll_ns * 2 : VBLK_POLL_START_NS,
				 w->poll_max_ns);
	}
}

/*
 * vblk_maybe_notify for the ring loop: an interrupt that is one eventfd
 * write goes into the ring, with the wait that follows.
 */
static void vblk_ring_notify(struct vblk_queue *q)
{
	struct virtio_dev *vd = &q->dev->vd;
	int fd;

	if (!q->completed)
		return;
	q->completed = false;
	if (!virtq_should_notify(q->vq))
		return;
	fd = vd->notify_fd ? vd->notify_fd(vd, q->vq->index) : -1;
	if (fd < 0 || blk_queue_signal(q->bq, fd) < 0)
		vd->notify(vd, q->vq->index);
}

/* Bits of blk_queue_wait's fired mask, in the order vblk_ring_watch adds them. */
#define VBLK_RING_STOP	(1ull << 0)
#define VBLK_RING_WAKE	(1ull << 1)
#define VBLK_RING_KICK	(1ull << 2)

static int vblk_ring_watch(struct vblk_worker *w, struct blk_queue *bq)
{
	int fds[] = { w->stop_fd, w->wake_fd, w->dev->q[w->first].vq->kick_fd };

	for (unsigned i = 0; i < G_N_ELEMENTS(fds); i++) {
		int ret = blk_queue_watch(bq, fds[i]);

		if (ret < 0)
			return ret;
		if (ret != (int)i)
			return -EINVAL;
	}
	return 0;
}

/*
 * The loop of a thread that serves one queue on an engine that can wait
 * (aio=io_uring, no polling): it sleeps in one place, the io_uring_enter
 * that also submits what the last pass popped, and wakes for completions
 * and for writes to its kick, wake and stop eventfds alike, without an
 * epoll_wait or an eventfd read per wake-up.  After every wake-up it runs
 * the completions, looks at the avail ring (arming notifications again,
 * so a kick can only be missed if it is not needed) and decides on one
 * interrupt.  -EOPNOTSUPP (before anything was served) when the engine
 * cannot: the epoll loop takes over.
 */
static int vblk_thread_ring(struct vblk_worker *w)
{
	struct virtio_blk *b = w->dev;
	struct vblk_queue *q = &b->q[w->first];
	bool stopping = false;
	int ret;

	if (w->count != 1 || w->poll_max_ns)
		return -EOPNOTSUPP;
	ret = vblk_ring_watch(w, q->bq);
	if (ret < 0) {
		blk_queue_unwatch(q->bq);
		return ret;
	}
	w->stopping = false;
	vblk_serve(q, true);
	vblk_ring_notify(q);
	while (!stopping || q->inflight) {
		uint64_t fired;

		ret = blk_queue_wait(q->bq, &fired);
		if (ret < 0) {
			log_error("%s: I/O thread cannot wait: %s", b->vd.name, strerror(-ret));
			virtio_dev_set_needs_reset(&b->vd);
			break;
		}
		if (fired & VBLK_RING_STOP) {
			/* The counter must not stop the next thread at once. */
			vblk_drain_fd(w->stop_fd);
			stopping = w->stopping = true;
			vblk_worker_limit(w, false);
		}
		if (fired & VBLK_RING_WAKE)
			vblk_worker_wake(w, stopping);
		if (!stopping)
			vblk_serve(q, true);
		vblk_ring_notify(q);
	}
	blk_queue_unwatch(q->bq);
	return 0;
}

static void *vblk_thread(void *opaque)
{
	struct vblk_worker *w = opaque;
	struct virtio_blk *b = w->dev;
	struct epoll_event ev[16];
	bool stopping = false;
	int ep, ret;

	vblk_worker_limit(w, true);
	if (vblk_thread_ring(w) != -EOPNOTSUPP)
		return NULL;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ret = ep < 0 ? -errno : vblk_worker_watch(w, ep);
	if (ret < 0) {
		log_error("%s: I/O thread cannot poll: %s", b->vd.name, strerror(-ret));
		virtio_dev_set_needs_reset(&b->vd);
		if (ep >= 0)
			close(ep);
		return NULL;
	}

	w->stopping = false;
	w->poll_ns = 0;
	/* Kicks that came before the thread started. */
	for (unsigned i = w->first; i < w->first + w->count; i++)
		vblk_serve(&b->q[i], true);
	vblk_worker_notify(w);
	while (!stopping || vblk_worker_inflight(w)) {
		uint64_t t0 = 0;
		int n, timeout = -1;
		bool busy = false;

		if (w->poll_max_ns && !stopping) {
			/* Work found by polling: look at the fds without sleeping. */
			t0 = vblk_now_ns();
			if (w->poll_ns && vblk_worker_poll(w, t0))
				timeout = 0;
			else
				vblk_worker_arm(w);
			busy = vblk_worker_inflight(w) != 0;
		}
		n = epoll_wait(ep, ev, G_N_ELEMENTS(ev), timeout);
		if (t0 && timeout)
			vblk_worker_tune(w, vblk_now_ns() - t0, busy);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: epoll_wait: %s", b->vd.name, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct vblk_queue *q;

			if (ev[i].data.u64 == VBLK_EV_STOP) {
				vblk_drain_fd(w->stop_fd);
				stopping = w->stopping = true;
				vblk_worker_limit(w, false);
				continue;
			}
			if (ev[i].data.u64 == VBLK_EV_WAKE) {
				vblk_worker_wake(w, stopping);
				continue;
			}
			q = &b->q[ev[i].data.u64 / 2];
			if (ev[i].data.u64 & 1)
				blk_queue_poll(q->bq);
			else
				vblk_drain_fd(q->vq->kick_fd);
			if (!stopping)
				vblk_worker_serve(w, q);
		}
		vblk_worker_notify(w);
	}
	close(ep);
	return NULL;
}

static int vblk_start(struct virtio_dev *vd)
{
	struct virtio_blk *b = container_of(vd, struct virtio_blk, vd);
	int ret;

	for (unsigned i = 0; i < b->nr_workers; i++) {
		struct vblk_worker *w = &b->w[i];
		bool any = false;

		for (unsigned k = w->first; k < w->first + w->count; k++)
			any |= b->q[k].vq->enabled;
		/* A load started it already, and now the resume does. */
		if (!any || w->running)
			continue;
		/*
		 * Here, not in the thread: a resume right after this start (a
		 * failed migration resuming the VM) must still retry what is
		 * parked.
		 */
		w->seen_gen = __atomic_load_n(&b->resume_gen, __ATOMIC_ACQUIRE);
		ret = pthread_create(&w->thread, NULL, vblk_thread, w);
		if (ret) {
			log_error("%s: cannot start I/O thread: %s", vd->name, strerror(ret));
			return -ret;
		}
		pthread_setname_np(w->thread, "virtio-blk io");
		w->running = true;
	}
	return 0;
}

/* Every I/O thread ends once its requests in flight completed. */
static void vblk_threads_stop(struct virtio_blk *b)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < b->nr_workers; i++) {
		struct vblk_worker *w = &b->w[i];

		if (!w->running)
			continue;
		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			log_error("%s: cannot stop I/O thread: %s", b->vd.name, strerror(errno));
		pthread_join(w->thread, NULL);
		w->running = false;
	}
}

/* Migration: the parked requests stay, for the save and for a resume here. */
static void vblk_quiesce(struct virtio_dev *vd)
{
	struct virtio_blk *b = container_of(vd, struct virtio_blk, vd);

	__atomic_store_n(&b->quiescing, true, __ATOMIC_RELEASE);
	vblk_threads_stop(b);
	__atomic_store_n(&b->quiescing, false, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < b->nr_queues; i++) {
		b->q[i].inflight = 0;
		b->q[i].completed = false;
	}
}

static void vblk_stop(struct virtio_dev *vd)
{
	struct virtio_blk *b = container_of(vd, struct virtio_blk, vd);

	vblk_threads_stop(b);
	for (unsigned i = 0; i < b->nr_queues; i++) {
		vblk_drop_parked(&b->q[i]);
		b->q[i].inflight = 0;
		b->q[i].completed = false;
	}
	/* Nothing waits any more (a retry's wake-up can no longer come). */
	if (!vblk_held(b))
		__atomic_store_n(&b->drive->io_status, BLK_IOSTATUS_OK, __ATOMIC_RELEASE);
}

/*
 * The requests waiting for cont (werror/rerror=stop), per queue, as ring
 * heads in their order: the chains themselves are in guest RAM.
 */
static int vblk_save(struct virtio_dev *vd, struct vmstate_out *o)
{
	struct virtio_blk *b = container_of(vd, struct virtio_blk, vd);

	for (unsigned i = 0; i < b->nr_queues; i++)
		virtq_save_held(o, b->q[i].replay, b->q[i].nr_replay, &b->q[i].parked,
				offsetof(struct vblk_req, elem));
	/* Why they wait, for query-block on the destination (version 3). */
	vmstate_put_u8(o, "io-status", __atomic_load_n(&b->drive->io_status, __ATOMIC_ACQUIRE));
	return 0;
}

static int vblk_load(struct virtio_dev *vd, struct vmstate_in *in)
{
	struct virtio_blk *b = container_of(vd, struct virtio_blk, vd);
	g_autofree uint16_t **heads = g_new0(uint16_t *, b->nr_queues);
	g_autofree unsigned *nr = g_new0(unsigned, b->nr_queues);
	uint8_t st = __atomic_load_n(&b->drive->io_status, __ATOMIC_ACQUIRE);
	int ret = 0;

	/* Every queue's list is checked before any replaces what the queue had. */
	for (unsigned i = 0; i < b->nr_queues && !ret; i++) {
		char qname[32];

		snprintf(qname, sizeof(qname), "queue %u", i);
		ret = virtq_load_held(in, b->q[i].vq, qname, &heads[i], &nr[i]);
	}
	if (!ret && in->version >= 3 && !(ret = vmstate_get_u8(in, "io-status", &st)) &&
	    st > BLK_IOSTATUS_NOSPACE)
		ret = vmstate_fail(in, "io-status %u is not one of ok, failed, nospace", st);
	if (ret) {
		for (unsigned i = 0; i < b->nr_queues; i++)
			g_free(heads[i]);
		return ret;
	}
	for (unsigned i = 0; i < b->nr_queues; i++) {
		struct vblk_queue *q = &b->q[i];

		/* held counts the heads to replay: those replaced go out of it. */
		__atomic_sub_fetch(&b->held, q->nr_replay, __ATOMIC_ACQ_REL);
		g_free(q->replay);
		q->replay = heads[i];
		q->nr_replay = nr[i];
		__atomic_add_fetch(&b->held, nr[i], __ATOMIC_ACQ_REL);
	}
	__atomic_store_n(&b->drive->io_status, st, __ATOMIC_RELEASE);
	return 0;
}

static const struct virtio_dev_ops vblk_ops = {
	.start = vblk_start,
	.stop = vblk_stop,
	.quiesce = vblk_quiesce,
	.save = vblk_save,
	.load = vblk_load,
};

/*
 * block_resize, snapshots (main thread).  The I/O threads stop first,
 * their requests in flight completed, so that no range check or mapping
 * runs while fn changes the image; they start again after.  vp.lock keeps
 * a guest's reset or DRIVER_OK from starting or stopping them meanwhile,
 * as for a migration.  A new size reaches the guest (5.2.4, 4.1.4.3): the
 * capacity in config space, a new config_generation (read under vp.lock
 * too), and the configuration change interrupt once the driver is up.
 * Linux's virtio_blk rereads the capacity and logs "new size".
 */
static int vblk_quiesced(struct drive *d, int (*fn)(struct drive *d, void *arg), void *arg)
{
	struct virtio_blk *b = d->quiesced_opaque;
	bool running;
	uint64_t cap;
	int ret;

	pthread_mutex_lock(&b->vp.lock);
	running = b->vp.started && !b->vp.held;
	if (running)
		vblk_quiesce(&b->vd);
	ret = fn(d, arg);
	cap = blk_size(b->blk) & ~(uint64_t)(b->lbs - 1);
	if (!ret && cap != b->capacity) {
		b->capacity = cap;
		b->cfg.capacity = cap / 512;
		__atomic_add_fetch(&b->vd.config_generation, 1, __ATOMIC_RELEASE);
		if (virtio_dev_status(&b->vd) & VIRTIO_STATUS_DRIVER_OK)
			b->vd.notify(&b->vd, -1);
	}
	if (running && vblk_start(&b->vd) < 0)
		virtio_dev_set_needs_reset(&b->vd);
	pthread_mutex_unlock(&b->vp.lock);
	return ret;
}

/* ---- creation ---- */

struct vblk_params {
	const char *id;
	const char *serial;
	uint64_t num_queues;
	uint64_t queue_size;
	uint64_t lbs, pbs;
	int slot;
	bool thread_per_queue;
	uint64_t poll_max_ns;
};

static void vblk_fill_config(struct virtio_blk *b, const struct vblk_params *p)
{
	struct virtio_blk_config *c = &b->cfg;

	memset(c, 0, sizeof(*c));
	c->capacity = b->capacity / 512;
	c->size_max = VBLK_SIZE_MAX;
	c->seg_max = p->queue_size - 2;	/* room for header and status */
	c->blk_size = p->lbs;
	c->physical_block_exp = __builtin_ctzll(p->pbs / p->lbs);
	c->min_io_size = 1;
	c->opt_io_size = 0;
	c->writeback = b->drive->cfg.cache == BLK_CACHE_WRITEBACK ||
		       b->drive->cfg.cache == BLK_CACHE_NONE ||
		       b->drive->cfg.cache == BLK_CACHE_UNSAFE;
	c->num_queues = b->nr_queues;
	c->max_discard_sectors = VBLK_MAX_DZ_SECTORS;
	c->max_discard_seg = 1;
	c->discard_sector_alignment = p->lbs / 512;
	c->max_write_zeroes_sectors = VBLK_MAX_DZ_SECTORS;
	c->max_write_zeroes_seg = 1;
	c->write_zeroes_may_unmap = 1;
	b->vd.config = (uint8_t *)c;
	b->vd.config_len = sizeof(*c);
	b->vd.host_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC |
			      1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_BLK_F_SIZE_MAX |
			      1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			      1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_TOPOLOGY |
			      1ull << VIRTIO_BLK_F_MQ | 1ull << VIRTIO_BLK_F_DISCARD |
			      1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	if (b->readonly)
		b->vd.host_features |= 1ull << VIRTIO_BLK_F_RO;
}

static void vblk_free(struct virtio_blk *b)
{
	for (unsigned i = 0; i < b->nr_queues; i++) {
		if (b->q[i].bq)
			blk_queue_free(b->q[i].bq);
		/* Heads a migration brought that the VM never ran to replay. */
		g_free(b->q[i].replay);
		virtq_cleanup(&b->vd.vqs[i]);
	}
	for (unsigned i = 0; i < b->nr_workers; i++) {
		if (b->w[i].stop_fd >= 0)
			close(b->w[i].stop_fd);
		if (b->w[i].wake_fd >= 0)
			close(b->w[i].wake_fd);
	}
	g_free(b->w);
	machine_remove_listener(b->m, &b->ml);
	if (b->drive && b->drive->quiesced_opaque == b) {
		b->drive->quiesced = NULL;
		b->drive->quiesced_opaque = NULL;
		b->drive->quiesce_key = NULL;
	}
	if (b->drive)
		b->drive->claimed = false;
	g_free(b->q);
	g_free(b->vd.vqs);
	g_free(b->dev.id);
	g_free(b);
}

static void vblk_destroy(struct device *dev)
{
	struct virtio_blk *b = container_of(dev, struct virtio_blk, dev);

	virtio_pci_destroy(&b->vp);
	vblk_free(b);
}

static void vblk_reset(struct device *dev)
{
	struct virtio_blk *b = container_of(dev, struct virtio_blk, dev);

	virtio_pci_reset(&b->vp);
}

/*
 * Main thread: the VM runs again, as after cont following a stop for an
 * I/O error.  The I/O threads retry what they parked before anything new.
 */
static void vblk_runstate(void *opaque, enum machine_runstate s, const char *reason)
{
	struct virtio_blk *b = opaque;

	if (s != RUNSTATE_RUNNING)
		return;
	/* As QEMU's cont: the error is forgotten; a retry that fails sets it again. */
	__atomic_store_n(&b->drive->io_status, BLK_IOSTATUS_OK, __ATOMIC_RELEASE);
	__atomic_add_fetch(&b->resume_gen, 1, __ATOMIC_ACQ_REL);
	vblk_wake_all(b);
}

static struct drive *vblk_find_drive(struct machine *m, const char *id)
{
	for (struct drive *d = m->drives; d; d = d->next)
		if (d->id && !strcmp(d->id, id))
			return d;
	return NULL;
}

static int vblk_new(struct machine *m, struct drive *drv, const struct vblk_params *p,
		    char *err, size_t errlen)
{
	const char *name = drv->id ? drv->id : drv->cfg.file;
	struct virtio_blk *b;
	int ret;

	if (drv->claimed) {
		snprintf(err, errlen, "virtio-blk-pci: drive '%s' is already in use", name);
		return -EBUSY;
	}
	if (!drv->blk) {
		snprintf(err, errlen, "virtio-blk-pci: drive '%s' is not open", name);
		return -ENODEV;
	}
	b = g_new0(struct virtio_blk, 1);
	b->m = m;
	b->drive = drv;
	b->blk = drv->blk;
	b->capacity = blk_size(drv->blk) & ~(uint64_t)(p->lbs - 1);
	b->lbs = p->lbs;
	b->readonly = blk_is_readonly(drv->blk) || drv->cfg.readonly;
	b->nr_queues = p->num_queues;
	/* 20 bytes, NUL-padded but not terminated when all are used. */
	if (p->serial)
		memcpy(b->serial, p->serial, MIN(strlen(p->serial), sizeof(b->serial)));
	b->dev.type = "virtio-blk-pci";
	b->dev.id = p->id ? g_strdup(p->id) : NULL;
	b->dev.reset = vblk_reset;
	b->dev.destroy = vblk_destroy;
	b->vd.name = "virtio-blk-pci";
	b->vd.device_id = VIRTIO_ID_BLOCK;
	b->vd.mem = &m->mem;
	b->vd.ops = &vblk_ops;
	b->vd.nr_vqs = b->nr_queues;
	b->vd.vqs = g_new0(struct virtq, b->nr_queues);
	b->q = g_new0(struct vblk_queue, b->nr_queues);
	b->nr_workers = p->thread_per_queue ? b->nr_queues : 1;
	b->w = g_new0(struct vblk_worker, b->nr_workers);
	for (unsigned i = 0; i < b->nr_workers; i++)
		b->w[i].stop_fd = b->w[i].wake_fd = -1;
	for (unsigned i = 0; i < b->nr_workers; i++) {
		struct vblk_worker *w = &b->w[i];

		w->dev = b;
		w->first = p->thread_per_queue ? i : 0;
		w->count = p->thread_per_queue ? 1 : b->nr_queues;
		w->poll_max_ns = p->poll_max_ns;
		w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->stop_fd < 0 || w->wake_fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "virtio-blk-pci: eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	for (unsigned i = 0; i < b->nr_queues; i++) {
		struct vblk_queue *q = &b->q[i];

		q->dev = b;
		q->w = &b->w[p->thread_per_queue ? i : 0];
		g_queue_init(&q->parked);
		q->vq = &b->vd.vqs[i];
		virtq_init(q->vq, &b->vd, i, p->queue_size);
		q->bq = blk_queue_new(drv->blk, err, errlen);
		if (!q->bq) {
			ret = -EIO;
			goto fail;
		}
	}
	vblk_fill_config(b, p);
	drv->claimed = true;
	drv->quiesced = vblk_quiesced;
	drv->quiesced_opaque = b;
	drv->quiesce_key = b;
	ret = virtio_pci_init(&b->vp, m, &b->vd, PCI_CLASS_STORAGE_SCSI, p->slot, err, errlen);
	if (ret < 0)
		goto fail;
	machine_add_device_obj(m, &b->dev);
	b->ml.runstate_changed = vblk_runstate;
	b->ml.opaque = b;
	machine_add_listener(m, &b->ml);
	return 0;
fail:
	vblk_free(b);
	return ret;
}

static unsigned vblk_default_queues(struct machine *m)
{
	unsigned n = m->cfg.smp ? m->cfg.smp : 1;

	return MIN(n, VIRTIO_PCI_MAX_QUEUES);
}

static bool vblk_is_block_size(uint64_t v)
{
	return v >= 512 && v <= 32768 && !(v & (v - 1));
}

static int vblk_create(struct machine *m, struct opts *o, char *err, size_t errlen)
{
	struct vblk_params p = { .slot = -1 };
	const char *drive_id;
	uint64_t bootindex;
	struct drive *drv;
	int ret;

	opts_get(o, "driver");
	p.id = opts_get(o, "id");
	p.serial = opts_get(o, "serial");
	drive_id = opts_get(o, "drive");
	if ((ret = opts_get_uint(o, "num-queues", vblk_default_queues(m), &p.num_queues,
				 err, errlen)) < 0 ||
	    (ret = opts_get_uint(o, "queue-size", VBLK_QUEUE_SIZE, &p.queue_size, err, errlen)) < 0 ||
	    (ret = opts_get_size(o, "logical_block_size", 512, &p.lbs, err, errlen)) < 0 ||
	    (ret = opts_get_size(o, "physical_block_size", 512, &p.pbs, err, errlen)) < 0)
		return ret;
	if ((ret = opts_get_bool(o, "iothread-per-queue", true, &p.thread_per_queue,
				 err, errlen)) < 0 ||
	    (ret = opts_get_uint(o, "poll-max-ns", VBLK_POLL_MAX_NS, &p.poll_max_ns,
				 err, errlen)) < 0)
		return ret;
	/* libvirt always passes one; vireo boots the kernel directly, so the
	 * firmware boot order it sets has nothing to act on. */
	if ((ret = opts_get_uint(o, "bootindex", 0, &bootindex, err, errlen)) < 0)
		return ret;
	if ((ret = pci_parse_location(o, "virtio-blk-pci", &p.slot, err, errlen)) < 0 ||
	    (ret = opts_check_all_used(o, err, errlen)) < 0)
		return ret;
	if (!drive_id) {
		snprintf(err, errlen, "virtio-blk-pci: drive property not set");
		return -EINVAL;
	}
	if (!p.num_queues || p.num_queues > VIRTIO_PCI_MAX_QUEUES) {
		snprintf(err, errlen, "virtio-blk-pci: num-queues=%" PRIu64 ": must be 1 to %u",
			 p.num_queues, VIRTIO_PCI_MAX_QUEUES);
		return -EINVAL;
	}
	if (p.queue_size < 4 || p.queue_size > VIRTQ_MAX_SIZE ||
	    (p.queue_size & (p.queue_size - 1))) {
		snprintf(err, errlen, "virtio-blk-pci: queue-size=%" PRIu64
			 ": must be a power of two from 4 to %u", p.queue_size, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	if (!vblk_is_block_size(p.lbs) || !vblk_is_block_size(p.pbs) || p.pbs < p.lbs) {
		snprintf(err, errlen, "virtio-blk-pci: logical_block_size=%" PRIu64
			 ",physical_block_size=%" PRIu64 ": powers of two from 512 to 32768,"
			 " physical not below logical", p.lbs, p.pbs);
		return -EINVAL;
	}
	if (p.poll_max_ns > VBLK_POLL_LIMIT_NS) {
		snprintf(err, errlen, "virtio-blk-pci: poll-max-ns=%" PRIu64 ": at most %llu",
			 p.poll_max_ns, VBLK_POLL_LIMIT_NS);
		return -EINVAL;
	}
	if (p.serial && strlen(p.serial) > VIRTIO_BLK_ID_BYTES) {
		snprintf(err, errlen, "virtio-blk-pci: serial=%s: at most %d characters",
			 p.serial, VIRTIO_BLK_ID_BYTES);
		return -EINVAL;
	}
	drv = vblk_find_drive(m, drive_id);
	if (!drv) {
		snprintf(err, errlen, "virtio-blk-pci: drive=%s: no such drive", drive_id);
		return -ENOENT;
	}
	return vblk_new(m, drv, &p, err, errlen);
}

DEVICE_TYPE(virtio_blk_pci,
	.name = "virtio-blk-pci",
	.help = "virtio block device: drive=ID[,num-queues=N][,queue-size=N][,serial=S]"
		"[,logical_block_size=N][,physical_block_size=N][,iothread-per-queue=on|off]"
		"[,poll-max-ns=N][,addr=SLOT]",
	.create = vblk_create,
)

int virtio_blk_create_for_drives(struct machine *m, char *err, size_t errlen)
{
	struct vblk_params p = {
		.num_queues = vblk_default_queues(m),
		.queue_size = VBLK_QUEUE_SIZE,
		.lbs = 512,
		.pbs = 512,
		.slot = -1,
		.thread_per_queue = true,
		.poll_max_ns = VBLK_POLL_MAX_NS,
	};

	for (struct drive *d = m->drives; d; d = d->next) {
		int ret;

		if (!d->iface || strcmp(d->iface, "virtio") || d->claimed)
			continue;
		ret = vblk_new(m, d, &p, err, errlen);
		if (ret < 0)
			return ret;
	}
	return 0;
}
