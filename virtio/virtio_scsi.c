/*
 * virtio-scsi (virtio 1.2, 5.6): the control, event and request queues of
 * the controller, over the SCSI target layer (scsi.h).
 *
 * Threads: each request queue has an I/O thread, as in virtio-blk; it
 * waits in epoll on its kick eventfd, its stop eventfd and the completion
 * fd of every blk_queue it opened (one per medium it has sent I/O to,
 * created on first use).  One more thread serves the control queue and
 * the event queue's kicks.  Task management runs there: it marks the
 * matching in-flight requests aborted and waits until their I/O has
 * finished and they have been returned with VIRTIO_SCSI_S_ABORTED, so the
 * driver never reuses a buffer the device still writes.
 *
 * A chain too short for the request header and the response breaks the
 * queue (NEEDS_RESET); anything inside a well-formed chain (an unknown LUN,
 * a malformed CDB) is answered with a response code or CHECK CONDITION.
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block.h"
#include "log.h"
#include "virtio_scsi_int.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* epoll tags; anything else is a struct blk_queue *. */
#define EP_STOP		0
#define EP_KICK		1
#define EP_EVENT_KICK	2
#define EP_WAKE		3

/* ---- addressing ---- */

/* The virtio LUN field: 1, target, then a SAM single-level LUN. */
static bool vscsi_decode_lun(const uint8_t *l, unsigned *target, unsigned *lun)
{
	if (l[0] != 1)
		return false;
	*target = l[1];
	switch (l[2] >> 6) {
	case 0:			/* peripheral: bus 0 only */
		*lun = l[2] ? SCSI_MAX_LUN : l[3];
		break;
	case 1:			/* flat space */
		*lun = (l[2] & 0x3f) << 8 | l[3];
		break;
	default:
		*lun = SCSI_MAX_LUN;
	}
	if (l[4] | l[5] | l[6] | l[7])
		*lun = SCSI_MAX_LUN;	/* a second level: no such LUN */
	return true;
}

/*
 * An event's LUN, in the encoding REPORT LUNS uses (as QEMU does): flat
 * space (0x40) only from LUN 256 on.  Linux reads bytes 2-3 as the LUN
 * number itself, so 0x40 on a LUN below 256 names a LUN that does not
 * exist: it would not rescan the unit, or add a wrong one on hot-plug.
 */
static void vscsi_encode_lun(uint8_t *l, unsigned target, unsigned lun)
{
	memset(l, 0, 8);
	l[0] = 1;
	l[1] = target;
	l[2] = lun < 256 ? 0 : 0x40 | lun >> 8;
	l[3] = lun;
}

/* ---- request queues ---- */

static struct iovec *vscsi_iov_skip(struct iovec *dst, const struct iovec *src, unsigned cnt,
				    size_t skip, unsigned *out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cnt; i++) {
		if (skip >= src[i].iov_len) {
			skip -= src[i].iov_len;
			continue;
		}
		dst[n].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[n++].iov_len = src[i].iov_len - skip;
		skip = 0;
	}
	*out = n;
	return dst;
}

static void vscsi_complete(struct vscsi_req *r, uint8_t response)
{
	struct vscsi_queue *q = r->q;
	struct virtio_scsi *s = q->s;
	struct scsi_req *sr = &r->sreq;
	struct virtio_scsi_cmd_resp resp = { 0 };
	uint32_t sense = 0;

	resp.response = response;
	if (response == VIRTIO_SCSI_S_OK) {
		sense = MIN((uint32_t)sr->sense_len, s->sense_size);
		resp.sense_len = sense;
		resp.resid = sr->residual;
		resp.status = sr->status;
	}
	virtio_iov_from_buf(r->elem.iov + r->elem.out_num, r->elem.in_num, 0, &resp, sizeof(resp));
	virtio_iov_from_buf(r->elem.iov + r->elem.out_num, r->elem.in_num, sizeof(resp),
			    sr->sense, sense);
	virtq_push(q->vq, &r->elem, sizeof(resp) + s->sense_size +
		   (response == VIRTIO_SCSI_S_OK ? sr->in_xfer : 0));
	q->completed = true;
}

static void vscsi_inflight_add(struct vscsi_queue *q, struct vscsi_req *r)
{
	pthread_mutex_lock(&q->lock);
	r->prev = NULL;
	r->next = q->reqs;
	if (q->reqs)
		q->reqs->prev = r;
	q->reqs = r;
	pthread_mutex_unlock(&q->lock);
}

void vscsi_req_free(struct vscsi_req *r)
{
	vscsi_unhold(r);
	if (r->data && r->data != r->inline_iov)
		g_free(r->data);
	g_free(r);
}

/*
 * Take r off its queue's list of live requests; a task management
 * function that counted on r's abort may complete now.
 */
void vscsi_req_unlink(struct vscsi_req *r)
{
	struct vscsi_queue *q = r->q;
	struct virtio_scsi *s = q->s;
	bool aborted;

	pthread_mutex_lock(&q->lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		q->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	aborted = r->aborted;
	pthread_mutex_unlock(&q->lock);
	if (aborted) {
		pthread_mutex_lock(&s->abort_lock);
		if (!--s->abort_pending)
			pthread_cond_broadcast(&s->abort_cond);
		pthread_mutex_unlock(&s->abort_lock);
	}
}

void vscsi_req_end(struct vscsi_req *r, uint8_t response)
{
	struct vscsi_queue *q = r->q;
	bool aborted;

	pthread_mutex_lock(&q->lock);
	aborted = r->aborted;
	r->responding = true;
	pthread_mutex_unlock(&q->lock);

	vscsi_complete(r, aborted ? VIRTIO_SCSI_S_ABORTED : response);

	/* Only now may a task management function waiting on r complete. */
	vscsi_req_unlink(r);
	vscsi_req_free(r);
}

static void vscsi_cmd_done(struct scsi_req *sr)
{
	struct vscsi_req *r = container_of(sr, struct vscsi_req, sreq);

	r->q->inflight--;
	/*
	 * An abort that came while the I/O ran waits for it: answered now,
	 * as parking it would keep the abort (and a reset after it) waiting.
	 */
	if (sr->stopped && !vscsi_req_aborted(r))
		vscsi_park(r);
	else
		vscsi_req_end(r, VIRTIO_SCSI_S_OK);
}

/* This thread's queue on blk, opened on first use. */
static struct blk_queue *vscsi_bq(struct vscsi_queue *q, struct blk *blk)
{
	struct blk_queue *bq;
	struct epoll_event ev;
	char err[256];

	if (!blk)
		return NULL;
	bq = g_hash_table_lookup(q->bqs, blk);
	if (bq)
		return bq;
	bq = blk_queue_new(blk, err, sizeof(err));
	if (!bq) {
		log_once("virtio-scsi: %s", err);
		return NULL;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = bq };
	if (epoll_ctl(q->ep, EPOLL_CTL_ADD, blk_queue_fd(bq), &ev) < 0) {
		log_once("virtio-scsi: epoll_ctl: %s", strerror(errno));
		blk_queue_free(bq);
		return NULL;
	}
	g_hash_table_insert(q->bqs, blk, bq);
	return bq;
}

void vscsi_handle_cmd(struct vscsi_queue *q, struct vscsi_req *r)
{
	struct virtio_scsi *s = q->s;
	struct virtq_elem *e = &r->elem;
	size_t hdr_len = sizeof(r->hdr) + s->cdb_size;
	size_t resp_len = sizeof(struct virtio_scsi_cmd_resp) + s->sense_size;
	struct scsi_req *sr = &r->sreq;
	unsigned n_out, n_in;

	r->q = q;
	r->seq = q->next_seq++;
	if (e->out_len < hdr_len || e->in_len < resp_len) {
		log_once("virtio-scsi: request without its header (%zu bytes) or response (%zu)",
			 hdr_len, resp_len);
		vscsi_req_free(r);
		virtq_fail(q->vq);
		return;
	}
	virtio_iov_to_buf(e->iov, e->out_num, 0, &r->hdr, sizeof(r->hdr));
	memset(r->cdb, 0, sizeof(r->cdb));
	virtio_iov_to_buf(e->iov, e->out_num, sizeof(r->hdr), r->cdb,
			  MIN(s->cdb_size, (uint32_t)SCSI_CDB_MAX));
	if (!vscsi_decode_lun(r->hdr.lun, &r->target, &r->lun)) {
		vscsi_complete(r, VIRTIO_SCSI_S_BAD_TARGET);
		vscsi_req_free(r);
		return;
	}
	r->data = e->out_num + e->in_num <= G_N_ELEMENTS(r->inline_iov) ? r->inline_iov :
		  g_new(struct iovec, e->out_num + e->in_num);
	memset(sr, 0, sizeof(*sr));
	sr->out = vscsi_iov_skip(r->data, e->iov, e->out_num, hdr_len, &n_out);
	sr->out_cnt = n_out;
	sr->in = vscsi_iov_skip(r->data + n_out, e->iov + e->out_num, e->in_num, resp_len, &n_in);
	sr->in_cnt = n_in;
	sr->cdb = r->cdb;
	sr->cdb_len = MIN(s->cdb_size, (uint32_t)SCSI_CDB_MAX);
	sr->done = vscsi_cmd_done;
	sr->io_error = vscsi_io_error;
	vscsi_inflight_add(q, r);
	vscsi_submit(q, r);
}

/*
 * The LUN and this thread's queue on its medium are looked up at each
 * submission: a retried command may find its unit unplugged or its disc
 * changed, and the thread's blk queues closed by a stop meanwhile.
 */
void vscsi_submit(struct vscsi_queue *q, struct vscsi_req *r)
{
	struct virtio_scsi *s = q->s;
	struct scsi_req *sr = &r->sreq;
	struct scsi_lun *sl = scsi_bus_find(&s->bus, r->target, r->lun);

	if (!sl && !scsi_bus_target_luns(&s->bus, r->target)) {
		vscsi_req_end(r, VIRTIO_SCSI_S_BAD_TARGET);
		return;
	}
	sr->bq = sl ? vscsi_bq(q, scsi_lun_blk(sl)) : NULL;
	if (sl && scsi_lun_blk(sl) && !sr->bq) {
		vscsi_req_end(r, VIRTIO_SCSI_S_FAILURE);
		return;
	}
	q->inflight++;
	/* The bus answers REPORT LUNS and the LUNs that are not there. */
	if (sl && r->cdb[0] != SCSI_REPORT_LUNS)
		scsi_req_submit(sl, sr);
	else
		scsi_bus_submit(&s->bus, r->target, r->lun, sr);
}

/* ---- control queue: task management and asynchronous notification ---- */

static bool vscsi_match(const struct vscsi_req *r, unsigned target, int lun, int64_t tag)
{
	return r->target == target && (lun < 0 || r->lun == (unsigned)lun) &&
	       (tag < 0 || r->hdr.id == (uint64_t)tag);
}

/*
 * Abort the matching requests and wait until each has been returned.  The
 * count is raised under abort_lock while each queue's list is marked, so a
 * completion (which drops it under abort_lock, after its queue lock) can
 * never get there first.
 */
static unsigned vscsi_abort(struct virtio_scsi *s, unsigned target, int lun, int64_t tag)
{
	unsigned n = 0;

	pthread_mutex_lock(&s->abort_lock);
	for (unsigned i = 1; i <= s->nr_req_queues; i++) {
		struct vscsi_queue *q = &s->q[i];

		pthread_mutex_lock(&q->lock);
		for (struct vscsi_req *r = q->reqs; r; r = r->next) {
			if (!vscsi_match(r, target, lun, tag) || r->aborted)
				continue;
			r->aborted = true;
			s->abort_pending++;
			n++;
		}
		pthread_mutex_unlock(&q->lock);
	}
	/* A parked request ends on its thread, which a wake-up sends to it. */
	if (n)
		vscsi_wake_all(s);
	while (s->abort_pending)
		pthread_cond_wait(&s->abort_cond, &s->abort_lock);
	pthread_mutex_unlock(&s->abort_lock);
	return n;
}

static bool vscsi_query(struct virtio_scsi *s, unsigned target, int lun, int64_t tag)
{
	bool found = false;

	for (unsigned i = 1; i <= s->nr_req_queues && !found; i++) {
		struct vscsi_queue *q = &s->q[i];

		pthread_mutex_lock(&q->lock);
		for (struct vscsi_req *r = q->reqs; r && !found; r = r->next)
			found = vscsi_match(r, target, lun, tag) && !r->responding;
		pthread_mutex_unlock(&q->lock);
	}
	return found;
}

struct vscsi_nexus {
	unsigned target;
};

static void vscsi_nexus_loss(struct scsi_lun *l, unsigned target, unsigned lun, void *opaque)
{
	const struct vscsi_nexus *n = opaque;

	if (target == n->target)
		scsi_lun_set_ua(l, SCSI_UA_NEXUS_LOSS);
}

static uint8_t vscsi_tmf(struct virtio_scsi *s, const struct virtio_scsi_ctrl_tmf_req *t)
{
	unsigned target, lun;
	struct scsi_lun *sl;

	if (!vscsi_decode_lun(t->lun, &target, &lun) || !scsi_bus_target_luns(&s->bus, target))
		return VIRTIO_SCSI_S_BAD_TARGET;
	sl = scsi_bus_find(&s->bus, target, lun);
	switch (t->subtype) {
	case VIRTIO_SCSI_T_TMF_ABORT_TASK:
	case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
	case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
	case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
		if (!sl)
			return VIRTIO_SCSI_S_INCORRECT_LUN;
		break;
	}
	switch (t->subtype) {
	case VIRTIO_SCSI_T_TMF_ABORT_TASK:
		vscsi_abort(s, target, lun, t->id);
		return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
	case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
		vscsi_abort(s, target, lun, -1);
		return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
		vscsi_abort(s, target, lun, -1);
		scsi_lun_reset(sl, SCSI_UA_LUN_RESET);
		return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET: {
		struct vscsi_nexus n = { target };

		vscsi_abort(s, target, -1, -1);
		scsi_bus_foreach(&s->bus, vscsi_nexus_loss, &n);
		return VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	}
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
		return vscsi_query(s, target, lun, t->id) ? VIRTIO_SCSI_S_FUNCTION_SUCCEEDED :
							    VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
		return vscsi_query(s, target, lun, -1) ? VIRTIO_SCSI_S_FUNCTION_SUCCEEDED :
							 VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	}
	/* CLEAR ACA (we have no ACA) and unknown functions. */
	return VIRTIO_SCSI_S_FUNCTION_REJECTED;
}

static struct vscsi_dev *vscsi_dev_at_locked(struct virtio_scsi *s, unsigned target,
					     unsigned lun)
{
	for (struct vscsi_dev *d = s->devs; d; d = d->next)
		if (d->target == target && d->lun == lun)
			return d;
	return NULL;
}

/* Asynchronous notification: we report media changes of removable units. */
static void vscsi_an(struct virtio_scsi *s, const struct virtio_scsi_ctrl_an_req *a,
		     bool subscribe, struct virtio_scsi_ctrl_an_resp *resp)
{
	unsigned target, lun;
	struct vscsi_dev *d;
	uint32_t supported;

	if (!vscsi_decode_lun(a->lun, &target, &lun) || !scsi_bus_target_luns(&s->bus, target)) {
		resp->response = VIRTIO_SCSI_S_BAD_TARGET;
		return;
	}
	pthread_mutex_lock(&s->lock);
	d = vscsi_dev_at_locked(s, target, lun);
	if (!d) {
		pthread_mutex_unlock(&s->lock);
		resp->response = VIRTIO_SCSI_S_INCORRECT_LUN;
		return;
	}
	supported = vscsi_an_supported(d);
	if (subscribe)
		d->an_subscribed = a->event_requested & supported;
	resp->event_actual = subscribe ? d->an_subscribed : a->event_requested & supported;
	pthread_mutex_unlock(&s->lock);
	resp->response = VIRTIO_SCSI_S_OK;
}

static void vscsi_handle_ctrl(struct vscsi_queue *q, struct virtq_elem *e)
{
	struct virtio_scsi *s = q->s;
	uint32_t type;
	uint32_t used;

	if (e->out_len < sizeof(type))
		goto bad;
	virtio_iov_to_buf(e->iov, e->out_num, 0, &type, sizeof(type));
	if (type == VIRTIO_SCSI_T_TMF) {
		struct virtio_scsi_ctrl_tmf_req t;
		uint8_t resp;

		if (e->out_len < sizeof(t) || e->in_len < 1)
			goto bad;
		virtio_iov_to_buf(e->iov, e->out_num, 0, &t, sizeof(t));
		resp = vscsi_tmf(s, &t);
		virtio_iov_from_buf(e->iov + e->out_num, e->in_num, 0, &resp, 1);
		used = 1;
	} else if (type == VIRTIO_SCSI_T_AN_QUERY || type == VIRTIO_SCSI_T_AN_SUBSCRIBE) {
		struct virtio_scsi_ctrl_an_req a;
		struct virtio_scsi_ctrl_an_resp resp = { 0 };

		if (e->out_len < sizeof(a) || e->in_len < sizeof(resp))
			goto bad;
		virtio_iov_to_buf(e->iov, e->out_num, 0, &a, sizeof(a));
		vscsi_an(s, &a, type == VIRTIO_SCSI_T_AN_SUBSCRIBE, &resp);
		virtio_iov_from_buf(e->iov + e->out_num, e->in_num, 0, &resp, sizeof(resp));
		used = sizeof(resp);
	} else {
		/* Unknown type: the response layout is unknown, say so in byte 0. */
		uint8_t resp = VIRTIO_SCSI_S_FAILURE;

		if (e->in_len < 1)
			goto bad;
		log_once("virtio-scsi: unknown control request type %u", type);
		virtio_iov_from_buf(e->iov + e->out_num, e->in_num, 0, &resp, 1);
		used = 1;
	}
	virtq_push(q->vq, e, used);
	q->completed = true;
	g_free(e);
	return;
bad:
	log_once("virtio-scsi: control request with buffers too short for its type");
	g_free(e);
	virtq_fail(q->vq);
}

/* ---- event queue ---- */

void vscsi_event_locked(struct virtio_scsi *s, uint32_t event, unsigned target, unsigned lun,
			uint32_t reason)
{
	struct virtq *vq = &s->vd.vqs[VIRTIO_SCSI_VQ_EVENT];
	struct virtio_scsi_event ev = { 0 };
	struct virtq_elem *e;
	int ret;

	if (!s->running || !vq->enabled)
		return;
	/*
	 * Held for a migration (a hot-plug or an eject from the monitor):
	 * guest RAM may be sent already.  The driver hears of it as missed:
	 * from the resume here, or on the destination if the flag is saved.
	 */
	if (__atomic_load_n(&s->quiesced, __ATOMIC_RELAXED)) {
		s->events_dropped = true;
		return;
	}
	ret = virtq_pop(vq, sizeof(*e), (void **)&e);
	if (ret <= 0) {
		/* No buffer: the driver learns of it with the next event. */
		s->events_dropped = true;
		return;
	}
	if (e->out_len || e->in_len < sizeof(ev)) {
		log_once("virtio-scsi: event buffer of %zu bytes", e->in_len);
		g_free(e);
		virtq_fail(vq);
		return;
	}
	ev.event = event | (s->events_dropped ? VIRTIO_SCSI_T_EVENTS_MISSED : 0);
	vscsi_encode_lun(ev.lun, target, lun);
	ev.reason = reason;
	s->events_dropped = false;
	virtio_iov_from_buf(e->iov, e->in_num, 0, &ev, sizeof(ev));
	virtq_push(vq, e, sizeof(ev));
	g_free(e);
	if (virtq_should_notify(vq))
		s->vd.notify(&s->vd, VIRTIO_SCSI_VQ_EVENT);
}

/* The driver added event buffers: report what was dropped meanwhile. */
static void vscsi_event_kick(struct virtio_scsi *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->events_dropped)
		vscsi_event_locked(s, VIRTIO_SCSI_T_NO_EVENT, 0, 0, 0);
	pthread_mutex_unlock(&s->lock);
}

/* ---- threads ---- */

static void vscsi_serve(struct vscsi_queue *q)
{
	struct virtq *vq = q->vq;
	void *r;

	do {
		virtq_disable_notify(vq);
		if (q->ctrl) {
			while (virtq_pop(vq, sizeof(struct virtq_elem), &r) == 1)
				vscsi_handle_ctrl(q, r);
			continue;
		}
		/*
		 * Nothing overtakes a parked request, not even one parked by a
		 * submission that failed at once: vscsi_unhold wakes us.
		 */
		while (!__atomic_load_n(&q->s->held, __ATOMIC_ACQUIRE) && q->inflight < vq->size &&
		       virtq_pop(vq, sizeof(struct vscsi_req), &r) == 1)
			vscsi_handle_cmd(q, r);
		if (__atomic_load_n(&q->s->held, __ATOMIC_ACQUIRE))
			return;
		if (q->inflight >= vq->size)
			return;	/* resumed from the next completion */
	} while (virtq_enable_notify(vq));
}

static void vscsi_maybe_notify(struct vscsi_queue *q)
{
	if (q->completed) {
		q->completed = false;
		if (virtq_should_notify(q->vq))
			q->s->vd.notify(&q->s->vd, q->vq->index);
	}
}

static void vscsi_drain_fd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_once("virtio-scsi: eventfd read failed: %s", strerror(errno));
}

static void vscsi_ep_add(struct vscsi_queue *q, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	if (epoll_ctl(q->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_error("virtio-scsi: epoll_ctl: %s", strerror(errno));
}

/* The drives' I/O limits apply while the thread serves, not while it stops. */
static void vscsi_queue_limit(struct vscsi_queue *q, bool on)
{
	GHashTableIter it;
	gpointer key, bq;

	g_hash_table_iter_init(&it, q->bqs);
	while (g_hash_table_iter_next(&it, &key, &bq))
		blk_queue_limit(bq, on);
}

static void *vscsi_thread(void *opaque)
{
	struct vscsi_queue *q = opaque;
	struct virtio_scsi *s = q->s;
	struct virtq *evq = &s->vd.vqs[VIRTIO_SCSI_VQ_EVENT];
	struct epoll_event ev[16];
	bool stopping = false;

	vscsi_ep_add(q, q->stop_fd, EP_STOP);
	vscsi_ep_add(q, q->vq->kick_fd, EP_KICK);
	if (q->ctrl)
		vscsi_ep_add(q, evq->kick_fd, EP_EVENT_KICK);
	else
		vscsi_ep_add(q, q->wake_fd, EP_WAKE);
	q->stopping = false;
	vscsi_queue_limit(q, true);
	/* A resume or an abort while no thread ran, then kicks from before. */
	if (!q->ctrl)
		vscsi_parked_run(q);
	vscsi_serve(q);
	if (q->ctrl)
		vscsi_event_kick(s);
	vscsi_maybe_notify(q);
	while (!stopping || q->inflight) {
		int n = epoll_wait(q->ep, ev, G_N_ELEMENTS(ev), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("virtio-scsi: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = ev[i].data.u64;

			if (tag == EP_STOP) {
				vscsi_drain_fd(q->stop_fd);
				stopping = true;
				__atomic_store_n(&q->stopping, true, __ATOMIC_RELEASE);
				vscsi_queue_limit(q, false);
			} else if (tag == EP_WAKE) {
				vscsi_drain_fd(q->wake_fd);
				if (!stopping) {
					vscsi_parked_run(q);
					vscsi_serve(q);
				}
			} else if (tag == EP_KICK) {
				vscsi_drain_fd(q->vq->kick_fd);
				if (!stopping)
					vscsi_serve(q);
			} else if (tag == EP_EVENT_KICK) {
				vscsi_drain_fd(evq->kick_fd);
				if (!stopping)
					vscsi_event_kick(s);
			} else {
				blk_queue_poll(ev[i].data.ptr);
				if (!stopping)
					vscsi_serve(q);
			}
		}
		vscsi_maybe_notify(q);
	}
	return NULL;
}

static void vscsi_queue_release(struct vscsi_queue *q)
{
	GHashTableIter it;
	gpointer key, bq;

	g_hash_table_iter_init(&it, q->bqs);
	while (g_hash_table_iter_next(&it, &key, &bq)) {
		epoll_ctl(q->ep, EPOLL_CTL_DEL, blk_queue_fd(bq), NULL);
		blk_queue_free(bq);
		g_hash_table_iter_remove(&it);
	}
	epoll_ctl(q->ep, EPOLL_CTL_DEL, q->stop_fd, NULL);
	epoll_ctl(q->ep, EPOLL_CTL_DEL, q->vq->kick_fd, NULL);
	if (q->ctrl)
		epoll_ctl(q->ep, EPOLL_CTL_DEL, q->s->vd.vqs[VIRTIO_SCSI_VQ_EVENT].kick_fd, NULL);
	else
		epoll_ctl(q->ep, EPOLL_CTL_DEL, q->wake_fd, NULL);
}

void vscsi_wake_all(struct virtio_scsi *s)
{
	uint64_t one = 1;

	for (unsigned i = 1; i <= s->nr_req_queues; i++)
		if (write(s->q[i].wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_once("virtio-scsi: cannot wake I/O thread: %s", strerror(errno));
}

void vscsi_threads_stop(struct virtio_scsi *s)
{
	uint64_t one = 1;

	/*
	 * The control queue first: a task management function it runs may
	 * wait for a request of a request queue (one in flight, or a parked
	 * one its thread ends when woken), so those threads must still run.
	 */
	for (unsigned i = 0; i <= s->nr_req_queues; i++) {
		struct vscsi_queue *q = &s->q[i];

		if (!q->running)
			continue;
		if (write(q->stop_fd, &one, sizeof(one)) < 0)
			log_error("virtio-scsi: cannot stop I/O thread: %s", strerror(errno));
		pthread_join(q->thread, NULL);
		q->running = false;
		q->inflight = 0;
		q->completed = false;
		/* The queues of old media go now, before anyone closes them. */
		vscsi_queue_release(q);
	}
}

/* Whether a queue thread serves; under vp.lock, as start and stop are. */
static bool vscsi_threads_running(struct virtio_scsi *s)
{
	for (unsigned i = 0; i <= s->nr_req_queues; i++)
		if (s->q[i].running)
			return true;
	return false;
}

int vscsi_threads_start(struct virtio_scsi *s)
{
	for (unsigned i = 0; i <= s->nr_req_queues; i++) {
		struct vscsi_queue *q = &s->q[i];
		int ret;

		/* One thread per queue: a second would share its epoll and fds. */
		if (!q->vq->enabled || q->running)
			continue;
		ret = pthread_create(&q->thread, NULL, vscsi_thread, q);
		if (ret) {
			log_error("virtio-scsi: cannot start I/O thread: %s", strerror(ret));
			return -ret;
		}
		pthread_setname_np(q->thread, q->ctrl ? "virtio-scsi ctl" : "virtio-scsi io");
		q->running = true;
	}
	return 0;
}

/* A hard reset of the unit: lock released, mode pages back to defaults. */
static void vscsi_power_on(struct scsi_lun *l, unsigned target, unsigned lun, void *opaque)
{
	scsi_lun_reset(l, SCSI_UA_POWER_ON);
}

static int vscsi_start(struct virtio_dev *vd)
{
	struct virtio_scsi *s = container_of(vd, struct virtio_scsi, vd);
	uint32_t cdb, sense;

	/* A resume ends the hold of a quiesce, and so does a load that starts. */
	__atomic_store_n(&s->quiesced, false, __ATOMIC_RELAXED);
	/*
	 * Started already: a load into a device held by quiesce starts it
	 * (the transport was not started), and the resume that ends the hold
	 * starts it again.  The threads that serve go on, with the sizes they
	 * use; only a queue without its thread (one that failed to start)
	 * gets one.
	 */
	if (vscsi_threads_running(s))
		return vscsi_threads_start(s);
	/* The sizes the driver wrote (5.6.4); they hold until the next reset. */
	memcpy(&cdb, vd->config + offsetof(struct virtio_scsi_config, cdb_size), 4);
	memcpy(&sense, vd->config + offsetof(struct virtio_scsi_config, sense_size), 4);
	s->cdb_size = cdb;
	s->sense_size = sense;
	pthread_mutex_lock(&s->lock);
	s->running = true;
	pthread_mutex_unlock(&s->lock);
	return vscsi_threads_start(s);
}

/* Migration: the queues drain, the driver's settings and the units' state stay. */
static void vscsi_quiesce(struct virtio_dev *vd)
{
	struct virtio_scsi *s = container_of(vd, struct virtio_scsi, vd);

	vscsi_threads_stop(s);
	__atomic_store_n(&s->quiesced, true, __ATOMIC_RELAXED);
}

static void vscsi_stop(struct virtio_dev *vd)
{
	struct virtio_scsi *s = container_of(vd, struct virtio_scsi, vd);

	__atomic_store_n(&s->resetting, true, __ATOMIC_RELEASE);
	vscsi_threads_stop(s);
	__atomic_store_n(&s->resetting, false, __ATOMIC_RELEASE);
	vscsi_parked_drop(s);
	__atomic_store_n(&s->quiesced, false, __ATOMIC_RELAXED);
	pthread_mutex_lock(&s->lock);
	s->running = false;
	s->events_dropped = false;
	for (struct vscsi_dev *d = s->devs; d; d = d->next)
		d->an_subscribed = 0;
	pthread_mutex_unlock(&s->lock);
	/* A device reset is a reset of every unit on the bus. */
	scsi_bus_foreach(&s->bus, vscsi_power_on, NULL);
	s->cfg.cdb_size = VIRTIO_SCSI_CDB_DEFAULT;
	s->cfg.sense_size = VIRTIO_SCSI_SENSE_DEFAULT;
}

/* The driver may set sense_size and cdb_size (5.6.4); nothing else. */
static void vscsi_config_write(struct virtio_dev *vd, unsigned off, unsigned size, uint64_t val)
{
	struct virtio_scsi *s = container_of(vd, struct virtio_scsi, vd);

	if (size != 4 || (off != offsetof(struct virtio_scsi_config, sense_size) &&
			  off != offsetof(struct virtio_scsi_config, cdb_size))) {
		log_once("virtio-scsi: write of %u bytes to read-only config at %u", size, off);
		return;
	}
	/* Bounded so a request header stays a sane size. */
	if (val > VSCSI_CONFIG_SIZE_MAX) {
		log_once("virtio-scsi: %s of %llu refused", off == 20 ? "sense_size" : "cdb_size",
			 (unsigned long long)val);
		return;
	}
	if (off == offsetof(struct virtio_scsi_config, sense_size))
		s->cfg.sense_size = val;
	else
		s->cfg.cdb_size = val;
}

const struct virtio_dev_ops vscsi_ops = {
	.start = vscsi_start,
	.stop = vscsi_stop,
	.config_write = vscsi_config_write,
	.quiesce = vscsi_quiesce,
	.save = vscsi_save,
	.load = vscsi_load,
};

int vscsi_queues_init(struct virtio_scsi *s, char *err, size_t errlen)
{
	unsigned nvq = VIRTIO_SCSI_VQ_REQ + s->nr_req_queues;

	pthread_mutex_init(&s->abort_lock, NULL);
	pthread_cond_init(&s->abort_cond, NULL);
	pthread_mutex_init(&s->lock, NULL);
	s->vd.nr_vqs = nvq;
	s->vd.vqs = g_new0(struct virtq, nvq);
	for (unsigned i = 0; i < nvq; i++)
		virtq_init(&s->vd.vqs[i], &s->vd, i, s->queue_size);
	s->q = g_new0(struct vscsi_queue, 1 + s->nr_req_queues);
	for (unsigned i = 0; i <= s->nr_req_queues; i++) {
		s->q[i].stop_fd = s->q[i].wake_fd = s->q[i].ep = -1;
		pthread_mutex_init(&s->q[i].lock, NULL);
		g_queue_init(&s->q[i].parked);
	}
	for (unsigned i = 0; i <= s->nr_req_queues; i++) {
		struct vscsi_queue *q = &s->q[i];

		q->s = s;
		q->ctrl = i == 0;
		q->vq = &s->vd.vqs[i ? VIRTIO_SCSI_VQ_REQ + i - 1 : VIRTIO_SCSI_VQ_CTRL];
		q->bqs = g_hash_table_new(g_direct_hash, g_direct_equal);
		q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->ep = epoll_create1(EPOLL_CLOEXEC);
		if (q->stop_fd < 0 || q->wake_fd < 0 || q->ep < 0) {
			snprintf(err, errlen, "virtio-scsi-pci: eventfd/epoll: %s", strerror(errno));
			return -errno;
		}
	}
	vscsi_err_init(s);
	return 0;
}

void vscsi_queues_free(struct virtio_scsi *s)
{
	vscsi_err_fini(s);
	if (s->q) {
		for (unsigned i = 0; i <= s->nr_req_queues; i++) {
			struct vscsi_queue *q = &s->q[i];

			if (q->bqs)
				g_hash_table_destroy(q->bqs);
			if (q->stop_fd >= 0)
				close(q->stop_fd);
			if (q->wake_fd >= 0)
				close(q->wake_fd);
			if (q->ep >= 0)
				close(q->ep);
			pthread_mutex_destroy(&q->lock);
		}
	}
	for (unsigned i = 0; s->vd.vqs && i < s->vd.nr_vqs; i++)
		virtq_cleanup(&s->vd.vqs[i]);
	g_free(s->q);
	g_free(s->vd.vqs);
	pthread_mutex_destroy(&s->abort_lock);
	pthread_cond_destroy(&s->abort_cond);
	pthread_mutex_destroy(&s->lock);
}
