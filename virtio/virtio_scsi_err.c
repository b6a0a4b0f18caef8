/*
 * virtio-scsi under werror=/rerror=: what a scsi-hd or scsi-cd does when
 * the block layer fails an I/O of a command, as virtio-blk does (blk.c).
 *
 * The target (scsi.h) asks vscsi_io_error, on the queue's thread, for the
 * drive's policy.  report: CHECK CONDITION with the sense of the error;
 * ignore: the command goes on as if the I/O had succeeded; stop: the
 * command ends without a result, is parked on its queue in pop order, the
 * drive's io-status says why, and the main thread is asked to pause the VM
 * (BLOCK_IO_ERROR, then STOP).  While any request of the controller is
 * parked or being retried, no request queue pops, so nothing the guest
 * submits later overtakes it.  When the VM runs again the main thread
 * bumps resume_gen and wakes the threads, which submit their parked
 * commands again, from the start, before anything new.
 *
 * A parked command stays on its queue's task list: QUERY TASK finds it,
 * and an abort ends it (ABORTED) on its thread, which the abort wakes.  A
 * device reset drops the parked commands unanswered: the rings are the
 * driver's again.  A migration carries them as ring heads (the chains are
 * in guest RAM); the destination reads them again and submits them first
 * when its VM runs.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "block.h"
#include "log.h"
#include "virtio/virtio_scsi_int.h"
#include "vmstate.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static struct drive *vscsi_req_drive(struct virtio_scsi *s, const struct vscsi_req *r)
{
	struct drive *drv = NULL;

	pthread_mutex_lock(&s->lock);
	for (struct vscsi_dev *d = s->devs; d; d = d->next) {
		if (d->target == r->target && d->lun == r->lun) {
			drv = d->drive;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return drv;
}

enum scsi_io_action vscsi_io_error(struct scsi_req *sr, bool write, int err)
{
	struct vscsi_req *r = container_of(sr, struct vscsi_req, sreq);
	struct vscsi_queue *q = r->q;
	struct virtio_scsi *s = q->s;
	struct drive *drv = vscsi_req_drive(s, r);
	struct machine_io_error e = { .write = write, .error = err };
	enum scsi_io_action a;

	/* The drives stay until the machine goes; a unit without one reports. */
	if (!drv || !drv->id)
		return SCSI_IO_REPORT;
	e.device = drv->id;
	switch (drive_error_action(drv, write, err)) {
	case BLK_ERR_IGNORE:
		e.action = MACHINE_IO_IGNORE;
		a = SCSI_IO_IGNORE;
		break;
	case BLK_ERR_STOP:
		/* A device reset is taking the rings back: nothing to wait for. */
		if (!__atomic_load_n(&q->stopping, __ATOMIC_ACQUIRE) ||
		    !__atomic_load_n(&s->resetting, __ATOMIC_ACQUIRE)) {
			e.action = MACHINE_IO_STOP;
			a = SCSI_IO_STOP;
			__atomic_store_n(&drv->io_status, err == ENOSPC ? BLK_IOSTATUS_NOSPACE :
					 BLK_IOSTATUS_FAILED, __ATOMIC_RELEASE);
			break;
		}
		/* fall through */
	default:
		e.action = MACHINE_IO_REPORT;
		a = SCSI_IO_REPORT;
		break;
	}
	machine_report_io_error(s->m, &e);
	return a;
}

void vscsi_unhold(struct vscsi_req *r)
{
	struct virtio_scsi *s = r->q->s;

	if (!r->held)
		return;
	r->held = false;
	if (!__atomic_sub_fetch(&s->held, 1, __ATOMIC_ACQ_REL))
		vscsi_wake_all(s);
}

void vscsi_park(struct vscsi_req *r)
{
	struct vscsi_queue *q = r->q;
	GList *l;

	if (!r->held) {
		r->held = true;
		__atomic_add_fetch(&q->s->held, 1, __ATOMIC_ACQ_REL);
	}
	for (l = q->parked.tail; l; l = l->prev)
		if (((struct vscsi_req *)l->data)->seq < r->seq)
			break;
	if (l)
		g_queue_insert_after(&q->parked, l, r);
	else
		g_queue_push_head(&q->parked, r);
}

bool vscsi_req_aborted(struct vscsi_req *r)
{
	bool aborted;

	pthread_mutex_lock(&r->q->lock);
	aborted = r->aborted;
	pthread_mutex_unlock(&r->q->lock);
	return aborted;
}

/*
 * Requests the migration source had parked: read their chains again from
 * the ring and submit them, in order.  A head whose chain is no longer
 * valid (the guest rewrote it) breaks the queue, as a bad chain does.
 */
static void vscsi_replay(struct vscsi_queue *q)
{
	struct virtio_scsi *s = q->s;

	for (unsigned i = 0; i < q->nr_replay; i++) {
		struct vscsi_req *r;

		if (virtq_pop_head(q->vq, q->replay[i], sizeof(*r), (void **)&r)) {
			log_once("virtio-scsi: queue %u: request at head %u carried over a "
				 "migration is not valid any more", q->vq->index, q->replay[i]);
			if (!__atomic_sub_fetch(&s->held, 1, __ATOMIC_ACQ_REL))
				vscsi_wake_all(s);
			virtq_fail(q->vq);
			continue;
		}
		r->held = true;
		vscsi_handle_cmd(q, r);
	}
	g_free(q->replay);
	q->replay = NULL;
	q->nr_replay = 0;
}

void vscsi_parked_run(struct vscsi_queue *q)
{
	unsigned gen = __atomic_load_n(&q->s->resume_gen, __ATOMIC_ACQUIRE);
	GQueue todo = G_QUEUE_INIT;
	struct vscsi_req *r;

	/* Aborted while parked: answered now, the abort waits for it. */
	while ((r = g_queue_pop_head(&q->parked))) {
		if (vscsi_req_aborted(r))
			vscsi_req_end(r, VIRTIO_SCSI_S_OK);
		else
			g_queue_push_tail(&todo, r);
	}
	q->parked = todo;
	if (gen == q->seen_gen)
		return;
	/* The VM runs again: retry in order; one that parks again keeps the rest behind it. */
	q->seen_gen = gen;
	todo = q->parked;
	g_queue_init(&q->parked);
	vscsi_replay(q);
	while ((r = g_queue_pop_head(&todo))) {
		if (!g_queue_is_empty(&q->parked))
			vscsi_park(r);
		else
			vscsi_submit(q, r);
	}
}

static void vscsi_parked_free(struct virtio_scsi *s)
{
	for (unsigned i = 1; i <= s->nr_req_queues; i++) {
		struct vscsi_queue *q = &s->q[i];
		struct vscsi_req *r;

		while ((r = g_queue_pop_head(&q->parked))) {
			vscsi_req_unlink(r);
			r->held = false;
			vscsi_req_free(r);
		}
		g_free(q->replay);
		q->replay = NULL;
		q->nr_replay = 0;
	}
	/* The threads are stopped: nothing is parked, replayed or retried any more. */
	__atomic_store_n(&s->held, 0, __ATOMIC_RELEASE);
}

/* No unit's drive has an error waiting any more (query-block's io-status). */
static void vscsi_io_status_ok(struct virtio_scsi *s)
{
	pthread_mutex_lock(&s->lock);
	for (struct vscsi_dev *d = s->devs; d; d = d->next) {
		struct drive *drv = d->drive;

		if (drv)
			__atomic_store_n(&drv->io_status, BLK_IOSTATUS_OK, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&s->lock);
}

void vscsi_parked_drop(struct virtio_scsi *s)
{
	vscsi_parked_free(s);
	vscsi_io_status_ok(s);
}

/* Section version 4 and later; the threads are quiesced. */
void vscsi_parked_save(struct virtio_scsi *s, struct vmstate_out *o)
{
	for (unsigned i = 1; i <= s->nr_req_queues; i++)
		virtq_save_held(o, s->q[i].replay, s->q[i].nr_replay, &s->q[i].parked,
				offsetof(struct vscsi_req, elem));
}

/*
 * Checked whole before anything changes: a refused stream leaves the
 * device as it was.  Requests parked here belong to rings the stream has
 * just replaced: they go, unanswered.
 */
int vscsi_parked_load(struct virtio_scsi *s, struct vmstate_in *in)
{
	g_autofree uint16_t **heads = g_new0(uint16_t *, s->nr_req_queues + 1);
	g_autofree unsigned *nr = g_new0(unsigned, s->nr_req_queues + 1);
	unsigned total = 0;
	int ret = 0;

	for (unsigned i = 1; i <= s->nr_req_queues && !ret; i++) {
		char qname[32];

		snprintf(qname, sizeof(qname), "request queue %u", i - 1);
		ret = virtq_load_held(in, s->q[i].vq, qname, &heads[i], &nr[i]);
		total += nr[i];
	}
	if (ret) {
		for (unsigned i = 1; i <= s->nr_req_queues; i++)
			g_free(heads[i]);
		return ret;
	}
	vscsi_parked_free(s);
	for (unsigned i = 1; i <= s->nr_req_queues; i++) {
		s->q[i].replay = heads[i];
		s->q[i].nr_replay = nr[i];
	}
	__atomic_store_n(&s->held, total, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Main thread: the VM runs again, as after cont following a stop for an
 * I/O error.  The queue threads retry what they parked before anything new.
 */
static void vscsi_runstate(void *opaque, enum machine_runstate st, const char *reason)
{
	struct virtio_scsi *s = opaque;

	if (st != RUNSTATE_RUNNING)
		return;
	/* As QEMU's cont: the error is forgotten; a retry that fails sets it again. */
	vscsi_io_status_ok(s);
	__atomic_add_fetch(&s->resume_gen, 1, __ATOMIC_ACQ_REL);
	vscsi_wake_all(s);
}

void vscsi_err_init(struct virtio_scsi *s)
{
	s->ml.runstate_changed = vscsi_runstate;
	s->ml.opaque = s;
	machine_add_listener(s->m, &s->ml);
}

void vscsi_err_fini(struct virtio_scsi *s)
{
	machine_remove_listener(s->m, &s->ml);
	if (!s->q)
		return;
	for (unsigned i = 1; i <= s->nr_req_queues; i++) {
		g_free(s->q[i].replay);
		s->q[i].replay = NULL;
		s->q[i].nr_replay = 0;
	}
}
