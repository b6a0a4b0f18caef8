/*
 * SCSI target emulation, independent of the transport: logical units
 * (disks per SBC-3, CD/DVD-ROM per MMC-6) on top of the block layer, and a
 * bus that addresses them by target and LUN and answers for the LUNs that
 * do not exist (REPORT LUNS, INQUIRY with peripheral qualifier 3).
 *
 * A transport (virtio-scsi) hands a CDB and the initiator's buffers to
 * scsi_req_submit(); the target validates every field, moves the data
 * through the block layer and fills status, sense data (fixed or
 * descriptor format, as the D_SENSE bit of the control mode page or the
 * DESC bit of REQUEST SENSE asks) and the residual.  A malformed CDB, an
 * LBA outside the medium or a transfer that does not fit the buffers ends
 * in CHECK CONDITION, never in a crash.
 *
 * Threads: a LUN may be used by several transport threads at once; each
 * passes its own struct blk_queue for the LUN's medium (scsi_lun_blk()).
 * Completions run on the submitting thread: either inside scsi_req_submit
 * (commands that need no I/O) or later from blk_queue_poll() of r->bq.
 * scsi_lun_change_medium() may only be called while no request of the LUN
 * is in flight and no thread is about to submit one (the transport
 * quiesces its queues around it), because queues are bound to one blk.
 */
#ifndef VIREO_SCSI_H
#define VIREO_SCSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block.h"

struct blk;
struct blk_queue;
struct vmstate_in;
struct vmstate_out;

/* Status (SAM-5). */
#define SCSI_STATUS_GOOD		0x00
#define SCSI_STATUS_CHECK_CONDITION	0x02
#define SCSI_STATUS_BUSY		0x08
#define SCSI_STATUS_TASK_ABORTED	0x40

/* Sense keys (SPC-4 4.5.6). */
#define SCSI_SK_NO_SENSE		0x0
#define SCSI_SK_NOT_READY		0x2
#define SCSI_SK_MEDIUM_ERROR		0x3
#define SCSI_SK_HARDWARE_ERROR		0x4
#define SCSI_SK_ILLEGAL_REQUEST		0x5
#define SCSI_SK_UNIT_ATTENTION		0x6
#define SCSI_SK_DATA_PROTECT		0x7
#define SCSI_SK_ABORTED_COMMAND		0xb
#define SCSI_SK_MISCOMPARE		0xe

/* Operation codes. */
#define SCSI_TEST_UNIT_READY		0x00
#define SCSI_REQUEST_SENSE		0x03
#define SCSI_READ_6			0x08
#define SCSI_WRITE_6			0x0a
#define SCSI_INQUIRY			0x12
#define SCSI_MODE_SELECT_6		0x15
#define SCSI_MODE_SENSE_6		0x1a
#define SCSI_START_STOP_UNIT		0x1b
#define SCSI_PREVENT_ALLOW		0x1e
#define SCSI_READ_CAPACITY_10		0x25
#define SCSI_READ_10			0x28
#define SCSI_WRITE_10			0x2a
#define SCSI_VERIFY_10			0x2f
#define SCSI_SYNCHRONIZE_CACHE_10	0x35
#define SCSI_WRITE_SAME_10		0x41
#define SCSI_UNMAP			0x42
#define SCSI_READ_TOC			0x43
#define SCSI_GET_CONFIGURATION		0x46
#define SCSI_GET_EVENT_STATUS		0x4a
#define SCSI_READ_DISC_INFORMATION	0x51
#define SCSI_MODE_SELECT_10		0x55
#define SCSI_MODE_SENSE_10		0x5a
#define SCSI_READ_16			0x88
#define SCSI_WRITE_16			0x8a
#define SCSI_VERIFY_16			0x8f
#define SCSI_SYNCHRONIZE_CACHE_16	0x91
#define SCSI_WRITE_SAME_16		0x93
#define SCSI_SERVICE_ACTION_IN_16	0x9e	/* service action 0x10: READ CAPACITY (16) */
#define SCSI_SAI_READ_CAPACITY_16	0x10
#define SCSI_REPORT_LUNS		0xa0
#define SCSI_READ_12			0xa8
#define SCSI_WRITE_12			0xaa
#define SCSI_VERIFY_12			0xaf

/* Largest sense data the target produces; virtio-scsi's default sense_size. */
#define SCSI_SENSE_LEN			96
#define SCSI_CDB_MAX			32
/* LUNs per target: what the flat addressing method of SAM can name. */
#define SCSI_MAX_LUN			16384
#define SCSI_MAX_TARGET			256
/* Largest READ/WRITE/VERIFY (VPD page 0xB0). */
#define SCSI_MAX_XFER_BYTES		(32u << 20)

enum scsi_lun_type { SCSI_LUN_DISK = 0x00, SCSI_LUN_CDROM = 0x05 };

struct scsi_lun_config {
	enum scsi_lun_type type;
	struct blk *blk;		/* medium; NULL: CD-ROM without a disc */
	uint32_t block_size;		/* 0: 512 (disk), 2048 (CD-ROM) */
	uint32_t physical_block_size;	/* 0: block_size */
	bool readonly;			/* a CD-ROM is always read-only */
	bool discard;			/* the drive unmaps (discard=unmap): LBPME */
	bool write_cache;		/* WCE at power-on */
	const char *serial;		/* VPD 0x80; NULL: none */
	uint64_t wwn;			/* NAA designator in VPD 0x83; 0: none */
	const char *name;		/* vendor-specific designator (drive id) */
	const char *vendor;		/* INQUIRY; NULL: "VIREO" */
	const char *product;		/* NULL: "VIREO HARDDISK" / "VIREO CD-ROM" */
	const char *revision;		/* NULL: "1.0" */
	uint16_t rotation_rate;		/* VPD 0xB1: 0 = not reported, 1 = SSD (default), rpm */
	/*
	 * A CD-ROM's tray opened or closed: by the initiator (START STOP UNIT
	 * with LoEj, on the submitting thread) or by scsi_lun_change_medium
	 * (on its caller's).  Called under the LUN's lock, so the moves are
	 * told in the order they happen: it must not call into the LUN.
	 * NULL: not told.
	 */
	void (*tray_moved)(void *opaque, bool open);
	void *tray_opaque;
};

/* Unit attention conditions, in the order they are reported. */
enum scsi_ua {
	SCSI_UA_POWER_ON = 1 << 0,	/* 29/00 */
	SCSI_UA_LUN_RESET = 1 << 1,	/* 29/03 */
	SCSI_UA_NEXUS_LOSS = 1 << 2,	/* 29/07 */
	SCSI_UA_MEDIUM_CHANGED = 1 << 3, /* 28/00 */
	SCSI_UA_REPORTED_LUNS = 1 << 4,	/* 3F/0E */
	SCSI_UA_CAPACITY_CHANGED = 1 << 5, /* 2A/09 */
};

struct scsi_lun;
struct scsi_req;

typedef void scsi_req_done(struct scsi_req *r);

/*
 * What the target does when the block layer fails an I/O of a command
 * (the drive's werror=/rerror= policy, chosen by the transport): answer
 * CHECK CONDITION, go on as if the I/O had succeeded, or stop: the
 * command ends without a result (r->stopped) and the transport submits it
 * again, from the start, to retry it.
 */
enum scsi_io_action { SCSI_IO_REPORT, SCSI_IO_IGNORE, SCSI_IO_STOP };
/* err is a positive errno; write counts flushes, unmaps and WRITE SAME. */
typedef enum scsi_io_action scsi_req_io_policy(struct scsi_req *r, bool write, int err);

struct scsi_req {
	/* Set by the transport. */
	const uint8_t *cdb;
	unsigned cdb_len;
	const struct iovec *out;	/* data-out: initiator to target */
	unsigned out_cnt;
	const struct iovec *in;		/* data-in: target to initiator */
	unsigned in_cnt;
	struct blk_queue *bq;		/* this thread's queue on scsi_lun_blk() */
	scsi_req_done *done;
	void *opaque;
	scsi_req_io_policy *io_error;	/* NULL: every failed I/O is reported */

	/* Results, valid when done runs. */
	bool stopped;			/* SCSI_IO_STOP: no result, submit r again */
	uint8_t status;
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_LEN];
	size_t in_xfer;			/* bytes written into the data-in buffers */
	size_t residual;		/* buffer bytes the command did not use */

	/* Target private, from submit to done. */
	struct scsi_lun *lun;
	size_t out_len, in_len;
	struct iovec *iov;
	int iov_cnt;
	uint8_t *buf;
	uint64_t lba, nb, pos;
	uint32_t step;
	int err;
	bool write, fua;
};

/* A logical unit.  Returns NULL and a message in err on a bad config. */
struct scsi_lun *scsi_lun_new(const struct scsi_lun_config *cfg, char *err, size_t errlen);
void scsi_lun_free(struct scsi_lun *l);
enum scsi_lun_type scsi_lun_type(const struct scsi_lun *l);
/* The current medium (NULL: none); see the threading note above. */
struct blk *scsi_lun_blk(const struct scsi_lun *l);
/* Pending unit attention conditions (SCSI_UA_* bits). */
void scsi_lun_set_ua(struct scsi_lun *l, unsigned ua);
/*
 * The medium grew (block_resize): READ CAPACITY reports its size from now
 * on and CAPACITY DATA HAS CHANGED is the next unit attention.  No
 * request of the LUN may be in flight.
 */
void scsi_lun_capacity_changed(struct scsi_lun *l);
/*
 * Logical unit reset (SAM-5 6.3.3): the medium lock goes, the mode
 * parameters return to their defaults and ua is reported next.
 */
void scsi_lun_reset(struct scsi_lun *l, unsigned ua);
/*
 * Removable media: insert blk (NULL: eject).  -EBUSY when the guest
 * prevents removal and !force; then an eject request event is queued for
 * GET EVENT STATUS NOTIFICATION.  Returns the previous medium through old.
 * The tray moves as QEMU moves it: an eject opens a closed tray; an
 * insert opens it (if closed), then closes it, each move told to
 * cfg->tray_moved.
 */
int scsi_lun_change_medium(struct scsi_lun *l, struct blk *blk, bool force, struct blk **old);
bool scsi_lun_medium_locked(struct scsi_lun *l);
/*
 * The medium, the tray and the guest's lock in one consistent snapshot
 * (the guest moves the tray and the lock from its I/O threads).  blk is
 * the medium in the unit, also while the tray is open; it stays valid
 * only as long as the caller keeps scsi_lun_change_medium from running.
 */
struct scsi_medium_state {
	struct blk *blk;		/* NULL: no disc */
	bool tray_open;
	bool locked;			/* PREVENT ALLOW MEDIUM REMOVAL */
};
void scsi_lun_get_medium(struct scsi_lun *l, struct scsi_medium_state *st);
/*
 * Migration: what the initiator set or has yet to be told (pending unit
 * attentions, caching and control mode parameters, the medium lock, tray
 * and media event).  Load checks that both ends have a medium or neither
 * (the destination names the same images) and refuses unknown values.
 * No request of the LUN may be in flight.
 */
void scsi_lun_save(struct scsi_lun *l, struct vmstate_out *o);
int scsi_lun_load(struct scsi_lun *l, struct vmstate_in *in);

/*
 * Passthrough (scsi-block): the LUN hands every CDB, unchanged, to a host
 * SCSI device through ops.  exec blocks until the device answers; it runs
 * on the submitting thread, so a passthrough LUN serves one command at a
 * time per transport queue.
 */
enum scsi_pt_dir { SCSI_PT_NONE, SCSI_PT_TO_DEV, SCSI_PT_FROM_DEV };

struct scsi_pt_cmd {
	const uint8_t *cdb;
	unsigned cdb_len;
	enum scsi_pt_dir dir;
	const struct iovec *iov;	/* the data, in dir */
	unsigned iov_cnt;
	size_t len;
	/* Filled by exec. */
	uint8_t status;
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_LEN];
	size_t resid;
};

struct scsi_pt_ops {
	/* 0 with the device's status, or -errno if the host could not deliver it. */
	int (*exec)(void *opaque, struct scsi_pt_cmd *c);
	void (*close)(void *opaque);
};

struct scsi_lun *scsi_lun_new_passthrough(const struct scsi_pt_ops *ops, void *opaque);
/*
 * The SG_IO backend on a host device node (/dev/sgN, or a SCSI block
 * device).  -ENOTSUP with a message when the node does not answer SG_IO.
 */
int scsi_pt_sg_open(const char *path, bool readonly, const struct scsi_pt_ops **ops,
		    void **opaque, char *err, size_t errlen);

/*
 * Execute one command.  done runs exactly once, inside this call or from
 * blk_queue_poll(r->bq).
 */
void scsi_req_submit(struct scsi_lun *l, struct scsi_req *r);

/* Fill r's sense data (format per the LUN's D_SENSE) with CHECK CONDITION. */
void scsi_req_check(struct scsi_req *r, uint8_t key, uint8_t asc, uint8_t ascq);

/*
 * A bus: the LUNs of one initiator port (a virtio-scsi controller), by
 * target and LUN.  Lookups may run concurrently with each other; adding
 * and removing are serialized against them by the bus lock.
 */
struct scsi_bus {
	pthread_rwlock_t lock;
	struct scsi_lun **targets[SCSI_MAX_TARGET];	/* SCSI_MAX_LUN each, on demand */
	unsigned target_luns[SCSI_MAX_TARGET];
	unsigned nr_luns;
};

void scsi_bus_init(struct scsi_bus *b);
/* Frees the LUNs still attached. */
void scsi_bus_destroy(struct scsi_bus *b);
/* -EEXIST, -ERANGE or 0.  The bus owns l from now on. */
int scsi_bus_attach(struct scsi_bus *b, unsigned target, unsigned lun, struct scsi_lun *l);
/* Detach and return the LUN (the caller frees it), or NULL. */
struct scsi_lun *scsi_bus_detach(struct scsi_bus *b, unsigned target, unsigned lun);
struct scsi_lun *scsi_bus_find(struct scsi_bus *b, unsigned target, unsigned lun);
/* Call fn for every LUN (under the read lock). */
void scsi_bus_foreach(struct scsi_bus *b, void (*fn)(struct scsi_lun *l, unsigned target,
						     unsigned lun, void *opaque), void *opaque);
/*
 * Execute a command addressed to target/lun: REPORT LUNS is answered by
 * the bus for any LUN of an existing target, other commands go to the LUN,
 * and a LUN that does not exist answers INQUIRY with peripheral qualifier
 * 3, REQUEST SENSE and everything else with LOGICAL UNIT NOT SUPPORTED.
 */
void scsi_bus_submit(struct scsi_bus *b, unsigned target, unsigned lun, struct scsi_req *r);
/* Number of LUNs on the target (0: no such target). */
unsigned scsi_bus_target_luns(struct scsi_bus *b, unsigned target);

/* The 8-byte SAM LUN field of REPORT LUNS for a LUN number (< 16384). */
void scsi_lun_encode(unsigned lun, uint8_t out[8]);

/* ---- virtio-scsi (virtio 1.2, 5.6) ---- */

#define VIRTIO_SCSI_F_INOUT		0
#define VIRTIO_SCSI_F_HOTPLUG		1
#define VIRTIO_SCSI_F_CHANGE		2

#define VIRTIO_SCSI_CDB_DEFAULT		32
#define VIRTIO_SCSI_SENSE_DEFAULT	96

/* Responses. */
#define VIRTIO_SCSI_S_OK		0
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE	0
#define VIRTIO_SCSI_S_OVERRUN		1
#define VIRTIO_SCSI_S_ABORTED		2
#define VIRTIO_SCSI_S_BAD_TARGET	3
#define VIRTIO_SCSI_S_RESET		4
#define VIRTIO_SCSI_S_BUSY		5
#define VIRTIO_SCSI_S_TRANSPORT_FAILURE	6
#define VIRTIO_SCSI_S_TARGET_FAILURE	7
#define VIRTIO_SCSI_S_NEXUS_FAILURE	8
#define VIRTIO_SCSI_S_FAILURE		9
#define VIRTIO_SCSI_S_FUNCTION_SUCCEEDED 10
#define VIRTIO_SCSI_S_FUNCTION_REJECTED	11
#define VIRTIO_SCSI_S_INCORRECT_LUN	12

/* Control queue request types and task management functions. */
#define VIRTIO_SCSI_T_TMF		0
#define VIRTIO_SCSI_T_AN_QUERY		1
#define VIRTIO_SCSI_T_AN_SUBSCRIBE	2

#define VIRTIO_SCSI_T_TMF_ABORT_TASK		0
#define VIRTIO_SCSI_T_TMF_ABORT_TASK_SET	1
#define VIRTIO_SCSI_T_TMF_CLEAR_ACA		2
#define VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET	3
#define VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET	4
#define VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET	5
#define VIRTIO_SCSI_T_TMF_QUERY_TASK		6
#define VIRTIO_SCSI_T_TMF_QUERY_TASK_SET	7

/* Events. */
#define VIRTIO_SCSI_T_NO_EVENT		0
#define VIRTIO_SCSI_T_TRANSPORT_RESET	1
#define VIRTIO_SCSI_T_ASYNC_NOTIFY	2
#define VIRTIO_SCSI_T_PARAM_CHANGE	3
#define VIRTIO_SCSI_T_EVENTS_MISSED	0x80000000u

#define VIRTIO_SCSI_EVT_RESET_HARD	0
#define VIRTIO_SCSI_EVT_RESET_RESCAN	1
#define VIRTIO_SCSI_EVT_RESET_REMOVED	2

/* Asynchronous notification classes (event_requested / reason bits). */
#define VIRTIO_SCSI_EVT_ASYNC_OPERATIONAL_CHANGE 2
#define VIRTIO_SCSI_EVT_ASYNC_POWER_MGMT	4
#define VIRTIO_SCSI_EVT_ASYNC_EXTERNAL_REQUEST	8
#define VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE	16
#define VIRTIO_SCSI_EVT_ASYNC_MULTI_HOST	32
#define VIRTIO_SCSI_EVT_ASYNC_DEVICE_BUSY	64

/* Queue 0 is the control queue, 1 the event queue, requests from 2. */
#define VIRTIO_SCSI_VQ_CTRL		0
#define VIRTIO_SCSI_VQ_EVENT		1
#define VIRTIO_SCSI_VQ_REQ		2

/* Little-endian, as every structure below. */
struct virtio_scsi_config {
	uint32_t num_queues;
	uint32_t seg_max;
	uint32_t max_sectors;
	uint32_t cmd_per_lun;
	uint32_t event_info_size;
	uint32_t sense_size;		/* driver-writable */
	uint32_t cdb_size;		/* driver-writable */
	uint16_t max_channel;
	uint16_t max_target;
	uint32_t max_lun;
} __attribute__((packed));

/* Request queue: this header, then cdb_size bytes of CDB, then data-out. */
struct virtio_scsi_cmd_req {
	uint8_t lun[8];
	uint64_t id;
	uint8_t task_attr;
	uint8_t prio;
	uint8_t crn;
} __attribute__((packed));

/* Response: this header, then sense_size bytes of sense, then data-in. */
struct virtio_scsi_cmd_resp {
	uint32_t sense_len;
	uint32_t resid;
	uint16_t status_qualifier;
	uint8_t status;
	uint8_t response;
} __attribute__((packed));

struct virtio_scsi_ctrl_tmf_req {
	uint32_t type;
	uint32_t subtype;
	uint8_t lun[8];
	uint64_t id;
} __attribute__((packed));

struct virtio_scsi_ctrl_an_req {
	uint32_t type;
	uint8_t lun[8];
	uint32_t event_requested;
} __attribute__((packed));

struct virtio_scsi_ctrl_an_resp {
	uint32_t event_actual;
	uint8_t response;
} __attribute__((packed));

struct virtio_scsi_event {
	uint32_t event;
	uint8_t lun[8];
	uint32_t reason;
} __attribute__((packed));

struct machine;
struct blk_config;

/*
 * Host-side operations on the SCSI devices of a machine, by the id= of the
 * scsi-hd / scsi-cd / scsi-block device (for QMP device_del, eject and
 * blockdev-change-medium).  Each returns 0 or -errno with a message.
 *
 * Removing a device pauses the controller's queues until its requests
 * are done, then reports the removal on the event queue.
 */
int virtio_scsi_device_del(struct machine *m, const char *id, char *err, size_t errlen);
/* Open the tray (and drop the disc); -EBUSY if the guest locked it and !force. */
int virtio_scsi_eject(struct machine *m, const char *id, bool force, char *err, size_t errlen);
/* Insert a disc from cfg (the controller owns the image from then on). */
int virtio_scsi_change_medium(struct machine *m, const char *id, const struct blk_config *cfg,
			      char *err, size_t errlen);

/*
 * What QMP query-block shows of each removable unit (scsi-cd), taken
 * under the controller locks that medium changes and unplugs hold, so an
 * entry is consistent and its disc is not closed while it is read.
 * Strings are copies.
 */
struct virtio_scsi_medium_info {
	char *qdev;			/* the unit's id=, or NULL */
	/*
	 * The id of the -drive the unit was created with, or NULL.  The unit
	 * keeps it whatever disc is in, as QEMU keeps its BlockBackend.
	 */
	char *drive;
	bool locked;			/* the guest prevents medium removal */
	bool tray_open;
	bool inserted;			/* a disc is in (the tray may be open) */
	/* The disc, when inserted. */
	char *file;			/* its image, as given */
	char *format;			/* "raw", "qcow2" */
	bool readonly;
	uint64_t size;			/* bytes */
	/*
	 * Every disc's requests since the unit was created, counted on across
	 * medium changes as QEMU counts a BlockBackend's (query-blockstats).
	 */
	struct blk_stats stats;
};
/* Every removable unit of m; *n of them.  Free with virtio_scsi_media_free. */
struct virtio_scsi_medium_info *virtio_scsi_media(struct machine *m, size_t *n);
void virtio_scsi_media_free(struct virtio_scsi_medium_info *v, size_t n);

#endif
