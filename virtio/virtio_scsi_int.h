/*
 * virtio-scsi internals shared by virtio_scsi.c (queues, requests, task
 * management, events), virtio_scsi_err.c (werror=/rerror=: requests parked
 * until the VM runs again), virtio_scsi_state.c (migration) and
 * virtio_scsi_dev.c (the -device types and the host-side operations:
 * hot-plug, unplug, media change).
 */
#ifndef VIREO_VIRTIO_VIRTIO_SCSI_INT_H
#define VIREO_VIRTIO_VIRTIO_SCSI_INT_H

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block.h"
#include "machine.h"
#include "scsi.h"
#include "virtio-pci.h"
#include "virtio.h"

struct drive;
struct blk;
struct virtio_scsi;

/* A scsi-hd / scsi-cd / scsi-block on the controller. */
struct vscsi_dev {
	char *id;			/* -device id=, or NULL */
	const char *type;		/* "scsi-hd"... */
	unsigned target, lun;
	struct scsi_lun *sl;		/* owned by the bus while attached */
	struct virtio_scsi *s;		/* the controller */
	/*
	 * The claimed -drive, or NULL.  A CD unit keeps it, and is named by
	 * it, whatever disc is in, as QEMU keeps the unit's BlockBackend;
	 * once its image is out of the unit the drive has none (blk NULL).
	 */
	struct drive *drive;
	struct blk *own_blk;		/* a disc inserted by change_medium */
	/*
	 * What the discs that left the unit did (query-blockstats counts on
	 * across medium changes, as QEMU's BlockBackend does); main thread,
	 * under vp.lock.
	 */
	struct blk_stats stats_past;
	uint32_t an_subscribed;		/* AN classes, under the controller lock */
	struct vscsi_dev *next;
};

/* The largest sense_size and cdb_size a driver may set (5.6.4). */
#define VSCSI_CONFIG_SIZE_MAX	4096

/* The asynchronous notification classes a unit offers. */
static inline uint32_t vscsi_an_supported(const struct vscsi_dev *d)
{
	return scsi_lun_type(d->sl) == SCSI_LUN_CDROM ? VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE : 0;
}

/* One virtqueue and the thread that serves it. */
struct vscsi_queue {
	struct virtio_scsi *s;
	struct virtq *vq;		/* the request queue, or the control queue */
	bool ctrl;			/* serves the control and event queues */
	int stop_fd;
	int wake_fd;			/* the VM runs again, a parked request was aborted... */
	pthread_t thread;
	bool running;
	bool stopping;			/* the thread drains for a stop */
	unsigned inflight;		/* submitted to the target, parked ones not */
	bool completed;			/* pushed since the last interrupt decision */
	int ep;				/* epoll of the thread */
	GHashTable *bqs;		/* struct blk * -> this thread's blk_queue */
	pthread_mutex_t lock;		/* reqs, for task management */
	struct vscsi_req *reqs;		/* between pop and push, parked ones too */
	/* Owned by the thread while it runs (werror/rerror=stop). */
	GQueue parked;			/* by seq */
	uint64_t next_seq;
	unsigned seen_gen;		/* resume_gen whose retries the thread ran */
	/* Heads parked on a migration source, submitted first on resume; held. */
	uint16_t *replay;
	unsigned nr_replay;
};

struct vscsi_req {
	struct virtq_elem elem;		/* first: virtq_pop allocates the request */
	struct vscsi_queue *q;
	struct scsi_req sreq;
	struct virtio_scsi_cmd_req hdr;
	uint8_t cdb[SCSI_CDB_MAX];
	struct iovec *data;		/* data-out, then data-in */
	struct iovec inline_iov[8];	/* data, when the chain is short */
	unsigned target, lun;
	bool aborted, responding;	/* under the queue's lock */
	bool held;			/* parked or retried: counted in s->held */
	uint64_t seq;			/* pop order on its queue */
	struct vscsi_req *prev, *next;
};

struct virtio_scsi {
	struct device dev;
	struct virtio_pci vp;
	struct virtio_dev vd;
	struct virtio_scsi_config cfg;
	struct machine *m;
	struct scsi_bus bus;
	unsigned nr_req_queues;
	unsigned queue_size;
	struct vscsi_queue *q;		/* [0]: control + events, [1..]: requests */
	/* Held for a migration: no thread, no event; set under vp.lock, atomic. */
	bool quiesced;
	uint32_t cdb_size, sense_size;	/* as the driver set them, at DRIVER_OK */

	/* Requests a task management function aborted and waits for. */
	pthread_mutex_t abort_lock;
	pthread_cond_t abort_cond;
	unsigned abort_pending;

	/* Atomic: requests parked or being retried; while not 0 nothing is popped. */
	unsigned held;
	/* Atomic: bumped by the main thread each time the VM runs again. */
	unsigned resume_gen;
	/* A device reset stops the threads: a failing request is reported. */
	bool resetting;
	struct machine_listener ml;

	/* The device list, AN subscriptions and the event queue. */
	pthread_mutex_t lock;
	struct vscsi_dev *devs;
	bool running;			/* between DRIVER_OK and reset */
	bool events_dropped;
};

/* virtio_scsi.c */
extern const struct virtio_dev_ops vscsi_ops;
/* Stop/start the queue threads (requests drain first); under vp.lock. */
void vscsi_threads_stop(struct virtio_scsi *s);
int vscsi_threads_start(struct virtio_scsi *s);
/* Post an event if the driver runs and wants it; under s->lock. */
void vscsi_event_locked(struct virtio_scsi *s, uint32_t event, unsigned target, unsigned lun,
			uint32_t reason);
/* Parse a popped command and submit it (a replayed one too). */
void vscsi_handle_cmd(struct vscsi_queue *q, struct vscsi_req *r);
/* Hand a parsed command to its LUN, again for a retry. */
void vscsi_submit(struct vscsi_queue *q, struct vscsi_req *r);
/* Push r with response (ABORTED if a TMF aborted it) and free it. */
void vscsi_req_end(struct vscsi_req *r, uint8_t response);
/* Free r that never reached the driver's ring again (bad chain, reset). */
void vscsi_req_free(struct vscsi_req *r);
void vscsi_req_unlink(struct vscsi_req *r);
void vscsi_wake_all(struct virtio_scsi *s);

/* virtio_scsi_err.c */
/* The scsi_req io_error hook: the unit's drive's werror/rerror policy. */
enum scsi_io_action vscsi_io_error(struct scsi_req *sr, bool write, int err);
/* r stopped on an error: park it in order on its queue. */
void vscsi_park(struct vscsi_req *r);
/* A task management function aborted r (read under its queue's lock). */
bool vscsi_req_aborted(struct vscsi_req *r);
/* r no longer holds the queues back. */
void vscsi_unhold(struct vscsi_req *r);
/* On the thread, after a wake: end aborted parked requests, retry after a resume. */
void vscsi_parked_run(struct vscsi_queue *q);
/* Device reset: the parked requests go, unanswered (the rings are the driver's). */
void vscsi_parked_drop(struct virtio_scsi *s);
/* The parked requests as ring heads, per request queue, in order. */
void vscsi_parked_save(struct virtio_scsi *s, struct vmstate_out *o);
int vscsi_parked_load(struct virtio_scsi *s, struct vmstate_in *in);
void vscsi_err_init(struct virtio_scsi *s);
void vscsi_err_fini(struct virtio_scsi *s);

/* virtio_scsi_state.c: the device's part of the virtio-pci section. */
int vscsi_save(struct virtio_dev *vd, struct vmstate_out *o);
int vscsi_load(struct virtio_dev *vd, struct vmstate_in *in);
/* Initialise and release the request tracking and queue state. */
int vscsi_queues_init(struct virtio_scsi *s, char *err, size_t errlen);
void vscsi_queues_free(struct virtio_scsi *s);

#endif
