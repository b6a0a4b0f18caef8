/*
 * Private interfaces of the block layer: the image (one file of a backing
 * chain with its format driver) and the engines that run data I/O.
 *
 * A request from a device is cut into pieces by asking the format to map
 * guest ranges to host ranges (map_read/map_write).  Data pieces go to the
 * queue's engine asynchronously; metadata work (qcow2 allocation, zero
 * flags) happens synchronously inside the format, under its own lock.
 */
#ifndef VIREO_BLOCK_BLK_INT_H
#define VIREO_BLOCK_BLK_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block.h"

#define BLK_MAX_BACKING_DEPTH 64
#define BLK_DIO_ALIGN 4096

/* ---- I/O limits (throttle.c) ---- */

struct throttle {
	struct blk_throttle_limits lim;
	double level[BLK_THR_NR];	/* units in each bucket */
	double burst[BLK_THR_NR];	/* units in each burst bucket (max set) */
	uint64_t t;			/* when they last drained, ns */
};

/* New limits, empty buckets. */
void throttle_reset(struct throttle *t, const struct blk_throttle_limits *l, uint64_t now);
/*
 * A read or write of bytes at time now (ns): 0 when the buckets take it
 * (and it is counted), else how many ns to wait before asking again.
 */
uint64_t throttle_admit(struct throttle *t, bool write, uint64_t bytes, uint64_t now);

/*
 * The buckets of one drive, or of the drives of one throttling.group,
 * shared by their queues.  throttled is read without the lock, so that
 * a drive without limits never takes it.
 */
struct blk_tgroup {
	char *name;		/* throttling.group=, or NULL: one drive's own */
	int refs;		/* drives in it; changed on the main thread */
	pthread_mutex_t lock;
	bool throttled;
	struct throttle thr;
};

struct blk_tgroup *tgroup_new(const struct blk_throttle_limits *l, uint64_t now);
void tgroup_put(struct blk_tgroup *g);
/* throttle_admit under the group's lock; 0 at once without limits. */
uint64_t tgroup_admit(struct blk_tgroup *g, bool write, uint64_t bytes, uint64_t now);

/* ---- the drive (blk.c), whole-drive operations (blk_drive.c) ---- */

struct blk {
	struct bimg *top;
	char *file;
	enum blk_aio aio;
	bool discard_unmap;
	enum blk_detect_zeroes detect_zeroes;
	int nqueues;
	/* query-blockstats counters, updated atomically by every queue */
	struct blk_stats stats;
	struct blk_tgroup *tg;	/* I/O limits, the drive's own or its group's */
};

/* Handed over to a migration destination: no I/O, no metadata. */
bool blk_inactive(const struct blk *b);

/* ---- engines ---- */

/* EIO_POLL: wait until fd is readable (a queue's throttle timerfd). */
enum eio_op { EIO_READ, EIO_WRITE, EIO_FSYNC, EIO_FALLOCATE, EIO_POLL };

struct eio;
typedef void eio_done_fn(struct eio *io, int64_t res);

struct eio {
	enum eio_op op;
	int fd;
	uint64_t off;
	uint64_t len;		/* bytes of the iovec, or the fallocate range */
	int mode;		/* fallocate mode */
	struct iovec *iov;
	int iovcnt;
	int64_t res;		/* result of a synchronous completion */
	eio_done_fn *done;
	struct eio *next;	/* engine and queue lists */
};

struct engine_ops {
	const char *name;
	int (*init)(void **state, int efd, char *err, size_t errlen);
	void (*fini)(void *state);
	/*
	 * Queue io: 0 when it will complete from reap, 1 when it completed
	 * synchronously (io->res set), -errno when it could not be started.
	 * Never calls io->done.
	 */
	int (*submit)(void *state, struct eio *io);
	/* Push queued submissions to the kernel (end of one API call). */
	void (*kick)(void *state);
	/* Run io->done for every finished io; returns how many. */
	int (*reap)(void *state);
	/* Optional: reap would run a done, known without a system call. */
	bool (*ready)(void *state);
	/*
	 * Optional, together (io_uring): the engine as its thread's event
	 * loop.  watch adds an eventfd, whose writes reap then reports (bit
	 * i of fired for the i-th watch) without reading the fd; wait pushes
	 * queued submissions and sleeps until reap has something to do, in
	 * one system call; unwatch asks to drop every watch and returns how
	 * many are still armed or in flight (call wait and reap until it
	 * returns 0).
	 */
	int (*watch)(void *state, int fd);
	int (*wait)(void *state);
	uint64_t (*fired)(void *state);
	int (*unwatch)(void *state);
	/* Optional, while watching: write 1 to eventfd fd with the next wait. */
	int (*signal)(void *state, int fd);
};

extern const struct engine_ops engine_io_uring, engine_aio, engine_threads;

struct io_uring;
/*
 * io_uring_queue_init with the first of flags[0..n) the kernel accepts
 * (it refuses unknown ones with -EINVAL); the engine's own setup.
 */
int uring_queue_init(struct io_uring *ring, unsigned entries, const unsigned *flags,
		     unsigned n);

/* Synchronous execution of one eio, shared by the thread pool and fallbacks. */
int64_t eio_run_sync(struct eio *io);

/* ---- images and formats ---- */

enum bmap_kind {
	BMAP_DATA,		/* host range in this image's file */
	BMAP_ZERO,		/* reads as zeroes */
	BMAP_BACKING,		/* look in the backing image, same offset */
	BMAP_COMPRESSED,	/* read through fmt->read_compressed */
	BMAP_DONE,		/* the format did the work itself */
	BMAP_FALLBACK,		/* write zeroes: do it as a write of zeroes */
};

struct bmap {
	enum bmap_kind kind;
	uint64_t host;
	uint64_t len;
	uint64_t aux;		/* format-private (compressed descriptor) */
	bool counted;		/* fmt->io_done must be called when it ends */
	unsigned epoch;		/* format-private, handed back to io_done */
};

struct bimg;

struct fmt_ops {
	const char *name;
	bool (*probe)(const uint8_t *buf, size_t len);
	int (*open)(struct bimg *bs, char *err, size_t errlen);
	/* Write back metadata (if writable) and free the state. */
	int (*close)(struct bimg *bs);
	int (*map_read)(struct bimg *bs, uint64_t off, uint64_t len, struct bmap *m);
	int (*read_compressed)(struct bimg *bs, const struct bmap *m, uint64_t off,
			       void *buf, uint64_t len);
	/* data == NULL means zeroes. */
	int (*map_write)(struct bimg *bs, uint64_t off, uint64_t len,
			 const struct iovec *iov, int iovcnt, size_t iov_off,
			 struct bmap *m);
	int (*discard)(struct bimg *bs, uint64_t off, uint64_t len, struct bmap *m);
	int (*write_zeroes)(struct bimg *bs, uint64_t off, uint64_t len, bool may_unmap,
			    struct bmap *m);
	void (*io_done)(struct bimg *bs, unsigned epoch);
	int (*flush_meta)(struct bimg *bs);
	/*
	 * Grow the virtual size to size (> bs->size) on disk; the caller sets
	 * bs->size after.  !publish: make room for size bytes (qcow2: the L1
	 * table) but keep the size the image records, so the caller can make
	 * the grown range read as it should first, then call again with
	 * publish.  err says why not, without the file name.
	 */
	int (*resize)(struct bimg *bs, uint64_t size, bool publish, char *err, size_t errlen);
};

extern const struct fmt_ops fmt_raw, fmt_qcow2;

/* Write a new, empty qcow2 v3 image over backing into fd (-drive snapshot=on). */
int qcow2_create_overlay(int fd, uint64_t size, const char *backing, const char *backing_fmt,
			 char *err, size_t errlen);

struct bimg {
	const struct fmt_ops *fmt;
	void *priv;
	char *filename;
	int fd;			/* buffered (O_DSYNC for writethrough) */
	int dfd;		/* O_DIRECT twin for aligned data I/O, or -1 */
	uint64_t size;		/* guest-visible bytes */
	bool readonly;
	bool discard_unmap;
	/*
	 * Not ours for now (live migration): no locks, no format state (priv
	 * NULL); only the size and backing names read when it was opened.
	 */
	bool inactive;
	bool probed;		/* format guessed, not given (raw: guard block 0) */
	enum blk_cache cache;
	enum blk_locking locking;
	int depth;		/* 0 for the top image */
	struct bimg *backing;
	char *backing_name;	/* set by the format's open */
	char *backing_fmt;
};

/* How bimg_open opens an image; a backing file gets the chain's cache and locking. */
struct bimg_opts {
	enum blk_cache cache;
	bool readonly;
	bool discard_unmap;
	bool inactive;
	enum blk_locking locking;
};

struct bimg *bimg_open(const char *file, const char *format, const struct bimg_opts *o,
		       int depth, char **chain, char *err, size_t errlen);
int bimg_close(struct bimg *bs);
/* Write back, forget the metadata, unlock (the top image of a chain). */
int bimg_inactivate(struct bimg *bs);
/* Lock and read the format again from the file; stays inactive on failure. */
int bimg_activate(struct bimg *bs, char *err, size_t errlen);
/* Synchronous read through the chain (qcow2 copy-on-write, tests). */
int bimg_pread(struct bimg *bs, uint64_t off, void *buf, uint64_t len);
/*
 * pread until len bytes are in or the file ends; what lies past the end
 * (allocated, not yet written) reads as zeroes.
 */
int blk_pread_full(int fd, void *buf, uint64_t len, uint64_t off);
/* Flush of the host file unless cache=unsafe. */
int bimg_sync(struct bimg *bs);

/* ---- iovec helpers ---- */
void iov_copy_to(const struct iovec *iov, int iovcnt, size_t off, const void *buf, size_t len);
void iov_copy_from(const struct iovec *iov, int iovcnt, size_t off, void *buf, size_t len);
void iov_zero(const struct iovec *iov, int iovcnt, size_t off, size_t len);
/*
 * Bytes [off, off+len) of iov as a vector in dst, which has room for
 * iovcnt entries; returns its length.
 */
int iov_slice(struct iovec *dst, const struct iovec *iov, int iovcnt, size_t off, size_t len);

#define BLK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BLK_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
