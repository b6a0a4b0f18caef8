/*
 * virtio 1.2: the split virtqueue, the device model shared by the virtio
 * devices (feature bits, status, reset), and the entry point that creates a
 * virtio-blk-pci device for each `-drive if=virtio`.
 *
 * Every guest address a virtqueue touches is translated through
 * gpa_to_hva() with its full length.  A malformed ring or chain never
 * reaches host memory outside guest RAM: the queue stops, the device sets
 * VIRTIO_STATUS_NEEDS_RESET, raises a configuration interrupt and logs once.
 *
 * Threads: a virtqueue is served by one thread at a time (its I/O thread);
 * virtq_pop/virtq_push/virtq_should_notify are not thread-safe against each
 * other on the same queue.  The guest driver writes the rings concurrently;
 * the barriers needed for that are inside these functions.
 */
#ifndef VIREO_VIRTIO_H
#define VIREO_VIRTIO_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory.h"

struct machine;
struct vmstate_out;
struct vmstate_in;

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	0x01
#define VIRTIO_STATUS_DRIVER		0x02
#define VIRTIO_STATUS_DRIVER_OK		0x04
#define VIRTIO_STATUS_FEATURES_OK	0x08
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

/* Device-independent feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC		28
#define VIRTIO_F_EVENT_IDX		29
#define VIRTIO_F_VERSION_1		32

/* Device types (5). */
#define VIRTIO_ID_BLOCK			2
#define VIRTIO_ID_SCSI			8

/* Split ring layout (2.7). */
#define VIRTQ_DESC_F_NEXT		1
#define VIRTQ_DESC_F_WRITE		2
#define VIRTQ_DESC_F_INDIRECT		4
#define VIRTQ_AVAIL_F_NO_INTERRUPT	1
#define VIRTQ_USED_F_NO_NOTIFY		1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];	/* size entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];	/* size entries, then avail_event (le16) */
};

#define VIRTQ_MAX_SIZE		1024	/* largest queue a device offers */
#define VIRTQ_MAX_INDIRECT	1024	/* entries of one indirect table */
#define VIRTQ_MAX_IOV		1024	/* buffers of one chain */

/* Sizes of the three ring areas for a queue of n entries (with event idx). */
#define VIRTQ_DESC_BYTES(n)	((uint64_t)(n) * 16)
#define VIRTQ_AVAIL_BYTES(n)	(6 + (uint64_t)(n) * 2)
#define VIRTQ_USED_BYTES(n)	(6 + (uint64_t)(n) * 8)

struct virtio_dev;

struct virtq {
	struct virtio_dev *vd;
	unsigned index;
	uint16_t max_size;

	/* Set by the driver through the transport while the queue is off. */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool enabled;

	/* Valid while enabled: host views of the rings, checked at enable. */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	bool event_idx, indirect;	/* negotiated */

	uint16_t last_avail;		/* next avail entry to pop */
	uint16_t used_idx;		/* our copy of used->idx */
	uint16_t signalled_used;	/* used_idx at the last interrupt */
	bool signalled_valid;
	bool broken;			/* malformed input seen: serve no more */

	int kick_fd;			/* eventfd the guest's notify signals, or -1 */
	struct iovec *scratch;		/* VIRTQ_MAX_IOV entries, for virtq_pop */
};

/*
 * A popped chain.  virtq_pop allocates the caller's request structure of
 * sz bytes, which must begin with this, and the iovec array behind it in
 * one block: release it with g_free().
 */
struct virtq_elem {
	uint16_t head;
	unsigned out_num, in_num;	/* iov[0..out_num) readable, then in_num writable */
	size_t out_len, in_len;		/* bytes of each part */
	struct iovec *iov;
};

/* What a device provides to the core and its transport. */
struct virtio_dev_ops {
	/* DRIVER_OK was set: start serving the enabled queues. */
	int (*start)(struct virtio_dev *vd);
	/* Reset: stop serving, wait for every in-flight request to finish. */
	void (*stop)(struct virtio_dev *vd);
	/* Optional: the driver wrote size bytes of device config at off. */
	void (*config_write)(struct virtio_dev *vd, unsigned off, unsigned size, uint64_t val);
	/*
	 * Optional, for migration: stop serving as stop does (every in-flight
	 * request finished) but keep what a reset would clear (target state,
	 * requests waiting for cont), so that save sees it and start serves
	 * on.  Without it the transport calls stop.
	 */
	void (*quiesce)(struct virtio_dev *vd);
	/*
	 * Optional: the device's own state, saved after the transport's with
	 * the device quiesced, and loaded before start on the destination.
	 */
	int (*save)(struct virtio_dev *vd, struct vmstate_out *o);
	int (*load)(struct virtio_dev *vd, struct vmstate_in *in);
};

struct virtio_dev {
	const char *name;		/* for messages: "virtio-blk-pci" */
	uint16_t device_id;		/* VIRTIO_ID_* */
	const struct guest_mem *mem;
	const struct virtio_dev_ops *ops;

	uint64_t host_features;		/* offered */
	uint64_t guest_features;	/* accepted at FEATURES_OK */
	uint8_t status;			/* atomic: I/O threads set NEEDS_RESET */
	uint8_t config_generation;
	uint8_t *config;		/* device config space, little-endian */
	unsigned config_len;

	struct virtq *vqs;
	unsigned nr_vqs;

	/* Set by the transport: raise the interrupt of a queue, or of a config
	 * change when queue < 0.  Any thread. */
	void (*notify)(struct virtio_dev *vd, int queue);
	/* Optional, set by the transport: the eventfd a queue's interrupt is
	 * raised by writing to right now (an MSI-X irqfd), or -1 when notify
	 * must be called.  An I/O thread hands the write to its io_uring, to
	 * go with the submission that puts it to sleep.  Any thread. */
	int (*notify_fd)(struct virtio_dev *vd, int queue);
	void *transport;
};

/* Queue lifecycle (transport side). */
int virtq_init(struct virtq *vq, struct virtio_dev *vd, unsigned index, uint16_t max_size);
void virtq_cleanup(struct virtq *vq);
/* Back to the power-on state: off, size = max_size, addresses 0. */
void virtq_reset(struct virtq *vq);
/*
 * The driver enabled the queue: check size and ring placement and map the
 * rings.  -EINVAL (and NEEDS_RESET) when they are not acceptable.
 */
int virtq_enable(struct virtq *vq);

/*
 * Take the next available chain.  Returns 1 and *out, 0 if the ring is
 * empty, -EIO if the queue is (or just became) broken.
 */
int virtq_pop(struct virtq *vq, size_t sz, void **out);
/*
 * Map again the chain at head, popped before (a request carried across a
 * migration): as virtq_pop, without moving last_avail.  -EIO if head or
 * the chain is not valid (the queue is not broken: the caller decides).
 */
int virtq_pop_head(struct virtq *vq, uint16_t head, size_t sz, void **out);
/* Return a chain to the driver with len bytes written into its in part. */
void virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len);
/* After pushes: does the driver want an interrupt now (EVENT_IDX aware)? */
bool virtq_should_notify(struct virtq *vq);
/* Tell the driver not to kick while we are polling anyway. */
void virtq_disable_notify(struct virtq *vq);
/* Ask for kicks again; true if chains arrived meanwhile (poll again). */
bool virtq_enable_notify(struct virtq *vq);

/* The device cannot use a popped chain: break the queue (NEEDS_RESET). */
void virtq_fail(struct virtq *vq);

/*
 * Migration of the requests a device holds for cont (werror/rerror=stop):
 * one field "parked" per queue, the ring heads in order, those still to
 * replay (loaded from a stream, not read again yet) then those parked.
 * parked holds the device's requests, each with its struct virtq_elem at
 * elem_off.
 */
void virtq_save_held(struct vmstate_out *o, const uint16_t *replay, unsigned nr_replay,
		     const GQueue *parked, size_t elem_off);
/*
 * Read one queue's "parked" field into *heads (g_free'd by the caller;
 * NULL when empty) and *nr, refused (naming queue qname) unless it fits
 * vq: at most vq->size heads, each in range and only once, none for a
 * queue that is off.
 */
int virtq_load_held(struct vmstate_in *in, const struct virtq *vq, const char *qname,
		    uint16_t **heads, unsigned *nr);

/* Copy between a buffer and an iovec array, starting off bytes in. */
size_t virtio_iov_to_buf(const struct iovec *iov, unsigned cnt, size_t off, void *buf,
			 size_t len);
size_t virtio_iov_from_buf(const struct iovec *iov, unsigned cnt, size_t off,
			   const void *buf, size_t len);

/* Device side. */
static inline bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
	return vd->guest_features & (1ull << bit);
}
/* Mark the device broken: NEEDS_RESET, config interrupt (first time only). */
void virtio_dev_set_needs_reset(struct virtio_dev *vd);
uint8_t virtio_dev_status(const struct virtio_dev *vd);

/* virtio-blk (5.2). */
#define VIRTIO_BLK_F_SIZE_MAX		1
#define VIRTIO_BLK_F_SEG_MAX		2
#define VIRTIO_BLK_F_RO			5
#define VIRTIO_BLK_F_BLK_SIZE		6
#define VIRTIO_BLK_F_FLUSH		9
#define VIRTIO_BLK_F_TOPOLOGY		10
#define VIRTIO_BLK_F_MQ			12
#define VIRTIO_BLK_F_DISCARD		13
#define VIRTIO_BLK_F_WRITE_ZEROES	14

#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_T_DISCARD		11
#define VIRTIO_BLK_T_WRITE_ZEROES	13

#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2

#define VIRTIO_BLK_ID_BYTES		20
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;		/* 512-byte units, whatever the block size */
};

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct virtio_blk_config {
	uint64_t capacity;		/* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/*
 * Create a virtio-blk-pci device for each -drive if=virtio that no -device
 * claimed.  The machine calls it after it parsed the drives.
 */
int virtio_blk_create_for_drives(struct machine *m, char *err, size_t errlen);

#endif
