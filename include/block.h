/*
 * The block layer that devices use: one asynchronous backend API over a
 * format (raw, qcow2) over an engine (io_uring, Linux AIO, thread pool).
 *
 * Threading: a device thread that submits requests owns a struct blk_queue;
 * completions of the requests it submitted run on that thread, from
 * blk_queue_poll(), when its fd (blk_queue_fd) becomes readable.  Callbacks
 * never run inside the submitting call.
 */
#ifndef VIREO_BLOCK_H
#define VIREO_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk;
struct blk_queue;
struct opts;

enum blk_cache { BLK_CACHE_WRITEBACK, BLK_CACHE_NONE, BLK_CACHE_WRITETHROUGH,
		 BLK_CACHE_DIRECTSYNC, BLK_CACHE_UNSAFE };
enum blk_aio { BLK_AIO_IO_URING, BLK_AIO_NATIVE, BLK_AIO_THREADS };
/*
 * -drive file.locking=: auto (the default) takes QEMU's image locks where
 * the file system has OFD locks and goes without them elsewhere; on
 * refuses such a file system; off neither takes nor checks them (shared
 * storage whose users coordinate some other way).
 */
enum blk_locking { BLK_LOCK_AUTO, BLK_LOCK_ON, BLK_LOCK_OFF };
/*
 * -drive detect-zeroes=: a write whose data is all zeroes becomes a write
 * of zeroes (qcow2 zero clusters, a fallocate on raw); with unmap (and
 * discard=unmap) the space is given back as well.
 */
enum blk_detect_zeroes { BLK_DZ_OFF, BLK_DZ_ON, BLK_DZ_UNMAP };

/*
 * I/O limits (-drive throttling.*, QMP block_set_io_throttle), QEMU's
 * leaky buckets: a bucket fills with the bytes or operations of each
 * request it admits and drains at avg per second; a request waits while
 * its bucket holds more than avg/10, or, with a burst rate max, more than
 * max * max_len (the guest may run at max for max_len seconds, then at
 * avg).  Reads count in the total and read buckets, writes in the total
 * and write ones.  Flushes and discards are never limited.
 */
enum blk_thr { BLK_THR_BPS_TOTAL, BLK_THR_BPS_READ, BLK_THR_BPS_WRITE,
	       BLK_THR_IOPS_TOTAL, BLK_THR_IOPS_READ, BLK_THR_IOPS_WRITE, BLK_THR_NR };
/* Largest accepted rate or burst, as QEMU's. */
#define BLK_THR_VALUE_MAX 1000000000000000ull
struct blk_throttle_limits {
	uint64_t avg[BLK_THR_NR];	/* per second; 0: no limit */
	uint64_t max[BLK_THR_NR];	/* burst rate per second; 0: bursts of avg/10 */
	uint64_t max_len[BLK_THR_NR];	/* seconds a burst may last; 0 means 1 */
	uint64_t iops_size;		/* a request of n * iops_size bytes is n operations */
};
/*
 * Whether l can be set; err names the first bad field in QMP's spelling
 * (bps_rd_max) or, with drive_opts, -drive's (throttling.bps-read-max).
 */
int blk_throttle_check(const struct blk_throttle_limits *l, bool drive_opts, char *err,
		       size_t errlen);
/*
 * Bucket i's name in QMP (bps_rd) or -drive (throttling.bps-read); its
 * burst rate and length add _max and _max_length, or -max and -max-length.
 */
const char *blk_throttle_name(enum blk_thr i, bool drive_opts);
/* Any limit set. */
bool blk_throttle_enabled(const struct blk_throttle_limits *l);

struct blk_config {
	const char *file;
	const char *format;		/* "raw", "qcow2", or NULL to probe */
	enum blk_cache cache;
	enum blk_aio aio;
	bool readonly;
	bool discard_unmap;		/* discard=unmap (default ignore) */
	enum blk_locking locking;	/* file.locking= */
	enum blk_detect_zeroes detect_zeroes;
	struct blk_throttle_limits throttle;
	/*
	 * Open without the image locks and without keeping any metadata:
	 * another process (a migration source) still writes the image.
	 * blk_activate makes it usable.
	 */
	bool inactive;
};

/*
 * -drive snapshot=on: cfg's image, read-only, under a new qcow2 overlay in
 * $TMPDIR (else /var/tmp) that takes the writes and is deleted at once
 * (it lives on through its open file, and is gone when vireo exits).
 */
struct blk *blk_open_snapshot(const struct blk_config *cfg, char *err, size_t errlen);

/* Per-operation statistics for query-blockstats. */
enum blk_op { BLK_OP_READ, BLK_OP_WRITE, BLK_OP_FLUSH, BLK_OP_DISCARD, BLK_OP_NR };
struct blk_stats {
	uint64_t ops[BLK_OP_NR];
	uint64_t bytes[BLK_OP_NR];
	uint64_t total_ns[BLK_OP_NR];
	uint64_t failed[BLK_OP_NR];
};

/* ret is the byte count (reads/writes) or 0 on success, -errno on failure. */
typedef void blk_cb(void *opaque, int64_t ret);

/* What QMP's query-block reports; strings belong to the blk. */
struct blk_info {
	const char *file;		/* as given */
	const char *format;		/* "raw", "qcow2" */
	uint64_t size;			/* virtual size in bytes */
	bool readonly;
	enum blk_cache cache;
	enum blk_aio aio;
	bool discard_unmap;
	const char *backing_file;	/* as the image names it, or NULL */
	const char *backing_format;	/* format of the image below, or NULL */
	int backing_depth;		/* images below the top one */
};

struct blk *blk_open(const struct blk_config *cfg, char *err, size_t errlen);
/* Flush and close. */
int blk_close(struct blk *b);
/*
 * Shared storage handover (live migration).  Inactivate: flush, write the
 * metadata back, drop every cache and release the image locks; requests
 * then fail with -EPERM until blk_activate, which takes the locks (failing
 * if another process holds the image) and reads the header and metadata
 * again from the file.  Main thread, no request in flight.  Both return 0
 * when already in that state.  A failed flush leaves the blk active, a
 * failed activation leaves it inactive.
 */
int blk_inactivate(struct blk *b);
int blk_activate(struct blk *b, char *err, size_t errlen);
bool blk_is_active(const struct blk *b);
uint64_t blk_size(const struct blk *b);
bool blk_is_readonly(const struct blk *b);
/*
 * Grow the virtual size to size bytes (QMP block_resize): raw files grow
 * with ftruncate, a raw block device only "grows" to the size it already
 * has, qcow2 grows its L1 table as needed, crash-safe (docs/images.md).
 * Main thread, with no request in flight and none submitted meanwhile
 * (the device using the image quiesced: drive_resize does that).  0 for
 * the same size.  Refused, with err set: a size not a multiple of 512
 * (-EINVAL), smaller (-ENOTSUP: vireo never shrinks), a read-only
 * (-EACCES) or inactive (-EPERM) image.
 */
int blk_resize(struct blk *b, uint64_t size, char *err, size_t errlen);
/*
 * External snapshot (QMP blockdev-snapshot-sync), in two steps so that a
 * transaction over several drives is all or nothing.  Prepare creates
 * file (which must not exist), a new qcow2 image backed by the current
 * top image (by its absolute path and format), and opens it over the top;
 * then exactly one of commit (the new image becomes the top: writes go
 * there, the old top is only read from then on) or abort (the drive as
 * it was, file gone).  Main thread, no request in flight (the device
 * quiesced: drive_snapshot does that).  Prepare fails (NULL, err set)
 * with the drive as it was and no file.
 */
struct blk_snapshot;
struct blk_snapshot *blk_snapshot_prepare(struct blk *b, const char *file, char *err,
					  size_t errlen);
void blk_snapshot_commit(struct blk_snapshot *s);
void blk_snapshot_abort(struct blk_snapshot *s);
void blk_get_stats(const struct blk *b, struct blk_stats *out);
void blk_get_info(const struct blk *b, struct blk_info *out);
/*
 * New I/O limits (any thread), checked by blk_throttle_check first.  The
 * buckets start empty.  Requests already waiting are looked at again
 * when their wait ends.
 */
int blk_set_throttle(struct blk *b, const struct blk_throttle_limits *l, char *err,
		     size_t errlen);
void blk_get_throttle(struct blk *b, struct blk_throttle_limits *out);
/*
 * Throttle groups (-drive throttling.group=NAME): drives that share one
 * set of buckets, so that their limits hold for all of them together.
 * blk_throttle_group is b's group's name (NULL: b's limits are its own);
 * blk_name_throttle_group names b's group; blk_share_throttle puts b in
 * from's group, leaving its own.  Main thread, with none of b's
 * requests in flight (drive_add: before a device uses the drive).
 */
const char *blk_throttle_group(const struct blk *b);
int blk_name_throttle_group(struct blk *b, const char *name);
void blk_share_throttle(struct blk *b, struct blk *from);

struct blk_queue *blk_queue_new(struct blk *b, char *err, size_t errlen);
/* Waits for the requests still in flight, running their callbacks, first. */
void blk_queue_free(struct blk_queue *q);
int blk_queue_fd(struct blk_queue *q);
/* Run the completions that are ready; returns how many ran. */
int blk_queue_poll(struct blk_queue *q);
/*
 * Whether blk_queue_poll would run a completion now: for a thread that
 * busy-polls its queues before sleeping on blk_queue_fd.  With aio=io_uring
 * it only reads the completion ring (no system call); the other engines
 * look at the fd.
 */
bool blk_queue_ready(struct blk_queue *q);
/*
 * The queue's engine as its owner thread's event loop, for a thread that
 * serves this queue only (aio=io_uring; -EOPNOTSUPP otherwise: sleep on
 * blk_queue_fd).  blk_queue_watch adds an eventfd (at most 8) and returns
 * its index; from then on blk_queue_fd stays silent and the thread calls
 * blk_queue_wait, which pushes queued submissions, sleeps until a
 * completion or a write to a watched fd, runs the completions (as
 * blk_queue_poll does) and sets bit i of *fired for each watched fd
 * written since the last call.  It never reads the fds: counters keep
 * growing, read them only to clear a level-triggered wait elsewhere.
 * blk_queue_unwatch (also done by blk_queue_free) drops every watch and
 * goes back to blk_queue_fd.
 */
int blk_queue_watch(struct blk_queue *q, int fd);
int blk_queue_wait(struct blk_queue *q, uint64_t *fired);
void blk_queue_unwatch(struct blk_queue *q);
/*
 * While watching: add 1 to eventfd fd in the system call of the next
 * blk_queue_wait, which also submits and then sleeps.  A device raises
 * its interrupt this way after a batch of completions: the woken vCPU
 * finds the I/O thread already asleep instead of preempting it between
 * two system calls.  -EOPNOTSUPP when not watching: write the fd.
 */
int blk_queue_signal(struct blk_queue *q, int fd);
/*
 * Between plug and unplug, submissions are queued and reach the kernel in
 * one system call at the unplug (plugs nest); while watching, in the one
 * of the next blk_queue_wait, which comes next anyway.  A device plugs
 * while it pops a batch of guest requests, and calls blk_queue_push to
 * send what it has so far before it goes on popping.
 */
/*
 * Reads and writes over the drive's I/O limits wait in their queue, in
 * order, and are submitted from blk_queue_poll when the buckets allow:
 * the queue's fd (or blk_queue_wait) wakes for that as for a completion.
 * blk_queue_limit(q, false) exempts the queue's requests from the limits
 * and submits what waits at once: a device does so while it stops (reset,
 * migration: it must not wait the limits out) and turns them on again
 * when it starts; the block layer's own work runs without them.  On by
 * default; blk_queue_free submits what waits.
 */
void blk_queue_limit(struct blk_queue *q, bool on);
void blk_queue_plug(struct blk_queue *q);
void blk_queue_unplug(struct blk_queue *q);
void blk_queue_push(struct blk_queue *q);

/* Submission: 0, or -errno without calling cb. */
int blk_preadv(struct blk_queue *q, uint64_t off, const struct iovec *iov, int iovcnt,
	       blk_cb *cb, void *opaque);
int blk_pwritev(struct blk_queue *q, uint64_t off, const struct iovec *iov, int iovcnt,
		blk_cb *cb, void *opaque);
int blk_flush(struct blk_queue *q, blk_cb *cb, void *opaque);
int blk_discard(struct blk_queue *q, uint64_t off, uint64_t len, blk_cb *cb, void *opaque);
int blk_write_zeroes(struct blk_queue *q, uint64_t off, uint64_t len, bool may_unmap,
		     blk_cb *cb, void *opaque);

/*
 * werror=/rerror=: what a device does with a request that failed (QEMU's
 * BlockdevOnError).  ENOSPC stops on a full host disk and reports any other
 * error; it is the default for writes and is not accepted for reads.
 */
enum blk_error_policy { BLK_ERR_REPORT, BLK_ERR_IGNORE, BLK_ERR_STOP, BLK_ERR_ENOSPC };
/* query-block's io-status: why a request is waiting for the VM to resume. */
enum blk_io_status { BLK_IOSTATUS_OK, BLK_IOSTATUS_FAILED, BLK_IOSTATUS_NOSPACE };

/* -drive: the drives of one machine, by id. */
struct drive {
	char *id;
	char *iface;			/* "virtio", "none" */
	struct blk_config cfg;
	struct blk *blk;
	bool claimed;			/* a device uses it */
	bool snapshot;			/* snapshot=on: writes go to a temporary overlay */
	enum blk_error_policy werror;	/* default BLK_ERR_ENOSPC */
	enum blk_error_policy rerror;	/* default BLK_ERR_REPORT */
	/*
	 * enum blk_io_status; the device's I/O threads set it and the main
	 * thread reads and clears it, so both use __atomic accesses.
	 */
	int io_status;
	/*
	 * Set by the device that claimed the drive, cleared when it lets go
	 * (main thread): run fn(d, arg) while the device's I/O threads are
	 * quiesced (no request in flight, none submitted meanwhile), then
	 * tell the guest of what fn changed (a new size).  block_resize and
	 * snapshots go through it (drive_quiesced).
	 */
	int (*quiesced)(struct drive *d, int (*fn)(struct drive *d, void *arg), void *arg);
	void *quiesced_opaque;
	/* What the hook stops (a controller's drives share it): quiesce it once. */
	const void *quiesce_key;
	struct drive *next;
};

struct machine;
/*
 * Parse one -drive option string, open its image and append it to
 * m->drives.  if=virtio drives without id= are named "virtio0", "virtio1"...
 * Errors name the option and value, or the file.
 */
int drive_add(struct machine *m, const char *optstr, char *err, size_t errlen);
struct drive *drive_find(struct machine *m, const char *id);
/*
 * The action for a request of the drive that failed with error (positive
 * errno): BLK_ERR_REPORT, BLK_ERR_IGNORE or BLK_ERR_STOP, never ENOSPC.
 * Flushes, discards and write-zeroes count as writes, as in QEMU.
 */
enum blk_error_policy drive_error_action(const struct drive *d, bool write, int error);
/*
 * block_resize of one drive (main thread): blk_resize with the device
 * quiesced, which then tells the guest.  Errors as blk_resize;
 * -ENOMEDIUM for a drive without an image (an ejected CD).
 */
int drive_resize(struct drive *d, uint64_t size, char *err, size_t errlen);
/*
 * Snapshots of n drives, file[i] over d[i], all or none (blockdev-
 * snapshot-sync, and a transaction of them), with all their devices
 * quiesced at once (main thread); each drive's file is its new image from
 * then on.  Refused for a drive twice, without an image, with snapshot=on,
 * or whose device cannot quiesce for it (a CD, a passthrough unit).
 */
int drive_snapshot(struct drive *const *d, const char *const *file, unsigned n, char *err,
		   size_t errlen);
/* query-block shows io-status only for a drive whose errors can stop the VM. */
bool drive_can_stop(const struct drive *d);
/* Flush and close every drive of the machine (at exit). */
void drive_close_all(struct machine *m);

#endif
