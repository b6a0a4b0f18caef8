/*
 * virtio-scsi internals shared by virtio_scsi.c (queues, requests, task
 * management, events) and virtio_scsi_dev.c (the -device types and the
 * host-side operations: hot-plug, unplug, media change).
 */
#ifndef VIREO_VIRTIO_VIRTIO_SCSI_INT_H
#define VIREO_VIRTIO_VIRTIO_SCSI_INT_H

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

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
	struct drive *drive;		/* the claimed -drive, or NULL */
	struct blk *own_blk;		/* a disc inserted by change_medium */
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
	pthread_t thread;
	bool running;
	unsigned inflight;
	bool completed;			/* pushed since the last interrupt decision */
	int ep;				/* epoll of the thread */
	GHashTable *bqs;		/* struct blk * -> this thread's blk_queue */
	pthread_mutex_t lock;		/* reqs, for task management */
	struct vscsi_req *reqs;		/* between pop and push */
};

struct vscsi_req;

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
/* virtio_scsi_state.c: the device's part of the virtio-pci section. */
int vscsi_save(struct virtio_dev *vd, struct vmstate_out *o);
int vscsi_load(struct virtio_dev *vd, struct vmstate_in *in);
/* Initialise and release the request tracking and queue state. */
int vscsi_queues_init(struct virtio_scsi *s, char *err, size_t errlen);
void vscsi_queues_free(struct virtio_scsi *s);

#endif
