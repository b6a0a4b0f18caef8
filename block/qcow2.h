/*
 * qcow2 private state, shared by qcow2.c (open, header, validation),
 * qcow2_refcount.c (metadata caches, refcounts, allocation, ordered
 * write-back) and qcow2_cluster.c (guest-to-host mapping, writes).
 *
 * Crash consistency: metadata lives in write-back caches and reaches the
 * file only in qcow2_meta_flush (FLUSH, cache eviction, close), in this
 * order, with a host flush between steps: refcount blocks, L2 tables, the
 * L1 table, then the refcount decrements of clusters freed since the last
 * flush.  So a refcount is never lower on disk than the references to it;
 * a crash only leaks clusters.  Data of an allocating write is written
 * before its L2 entry is even set in the cache.
 */
#ifndef VIREO_BLOCK_QCOW2_H
#define VIREO_BLOCK_QCOW2_H

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blk-int.h"

#define QCOW2_MAGIC		0x514649fbu
#define QCOW2_INCOMPAT_DIRTY	(1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT	(1ull << 1)
#define QCOW2_INCOMPAT_DATAFILE	(1ull << 2)
#define QCOW2_INCOMPAT_COMPRESS	(1ull << 3)
#define QCOW2_INCOMPAT_EXTL2	(1ull << 4)
#define QCOW2_INCOMPAT_KNOWN	(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
				 QCOW2_INCOMPAT_COMPRESS)

#define QCOW_OFLAG_COPIED	(1ull << 63)
#define QCOW_OFLAG_COMPRESSED	(1ull << 62)
#define QCOW_OFLAG_ZERO		1ull
#define L1E_OFFSET_MASK		0x00fffffffffffe00ull
#define L2E_OFFSET_MASK		0x00fffffffffffe00ull
#define REFT_OFFSET_MASK	0xfffffffffffffe00ull

#define QCOW2_HDR_INCOMPAT	72
#define QCOW2_HDR_AUTOCLEAR	88
#define QCOW2_HDR_REFTABLE	48

#define QCOW2_MAX_L1_BYTES	(32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_PENDING_FREES	4096
#define QCOW2_MAX_REBUILD_BYTES	(256ull << 20)	/* refcount rebuild: counts + blocks */
#define QCOW2_META_FLAT_BITS	(1ull << 27)	/* 16 MiB of bitmap at most */

struct qcache_ent {
	uint64_t off;		/* host offset of the table, 0 when unused */
	uint8_t *buf;		/* cluster_size bytes, on-disk (big-endian) layout */
	bool dirty;
	uint64_t lru;
};

struct qcache {
	struct qcache_ent *e;
	unsigned n;
	GHashTable *idx;	/* host offset -> entry + 1 */
	uint64_t tick;
};

struct qfree {
	uint64_t off, len;	/* host range whose clusters lose one reference */
	uint64_t epoch;		/* s->epoch when it was freed */
};

struct qcow2 {
	struct bimg *bs;
	pthread_mutex_t lock;

	uint32_t version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	uint64_t l2_entries;		/* entries per L2 table */
	unsigned csize_shift;
	uint64_t csize_mask;
	uint64_t coffset_mask;

	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1;			/* host-endian */
	uint32_t l1_dirty_lo, l1_dirty_hi;	/* [lo, hi) of dirty entries */

	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_size;		/* entries */
	uint64_t *rt;			/* host-endian */

	unsigned refcount_order;
	uint64_t rb_entries;		/* refcounts per refcount block */
	uint64_t rc_max;

	uint64_t incompat, compat, autoclear;
	int compression_type;		/* 0 zlib, 1 zstd */
	uint32_t nb_snapshots;

	struct qcache l2c, rbc;

	uint64_t file_end;		/* bytes: file size, grown by allocations */
	uint64_t free_hint;		/* first cluster that may be free */
	struct qfree *pending;
	size_t npending, pending_cap;
	/*
	 * Data I/O to host clusters in flight, by epoch parity.  A request
	 * mapped before a cluster was freed may still write to it, so frees
	 * of epoch e wait until every request of epochs <= e has ended; a
	 * flush moves to the next epoch once the one before has drained.
	 */
	uint64_t epoch;
	uint64_t inflight[2];

	/*
	 * Clusters holding metadata: a bitmap for the first
	 * QCOW2_META_FLAT_BITS clusters, a tree (cluster -> 1) past them, so
	 * that a table placed far into a sparse file costs one node, not a
	 * bitmap as large as the file.
	 */
	uint8_t *meta;
	uint64_t meta_bits;
	GTree *meta_far;

	bool corrupt;			/* found bad metadata: every request fails */

	/* The last cluster decompressed: sequential reads hit it 16 times. */
	pthread_mutex_t zlock;
	uint64_t zentry;		/* its L2 entry, 0 when empty */
	uint8_t *zbuf;
};

static inline uint64_t qcow2_be64(const uint8_t *p)
{
	uint64_t v;

	__builtin_memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

static inline void qcow2_put_be64(uint8_t *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	__builtin_memcpy(p, &v, 8);
}

/* qcow2.c */
int qcow2_corruption(struct qcow2 *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int qcow2_pread(struct qcow2 *s, void *buf, uint64_t len, uint64_t off);
int qcow2_pwrite(struct qcow2 *s, const void *buf, uint64_t len, uint64_t off);
int qcow2_sync(struct qcow2 *s);

/* qcow2_refcount.c */
int qcache_init(struct qcache *c, unsigned n, uint64_t cluster_size);
void qcache_fini(struct qcache *c);
int qcow2_l2_get(struct qcow2 *s, uint64_t off, uint8_t **table);
int qcow2_l2_new(struct qcow2 *s, uint64_t off, uint8_t **table);
void qcow2_l2_dirty(struct qcow2 *s, uint64_t off);
bool qcow2_is_meta(struct qcow2 *s, uint64_t cluster);
int qcow2_mark_meta(struct qcow2 *s, uint64_t off, uint64_t len, bool set);
int qcow2_alloc_cluster(struct qcow2 *s, uint64_t *off);
/* n contiguous clusters with refcount 1; -EFBIG past half a refcount block's range. */
int qcow2_alloc_run(struct qcow2 *s, uint64_t n, uint64_t *off);
int qcow2_free_deferred(struct qcow2 *s, uint64_t off, uint64_t len);
int qcow2_meta_flush(struct qcow2 *s);
int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc);
/* Entry i of a refcount block buffer, in the image's refcount width. */
void qcow2_rc_set(const struct qcow2 *s, uint8_t *block, uint64_t i, uint64_t v);
/* Write a new refcount structure and switch the header to it. */
int qcow2_reftable_install(struct qcow2 *s, const uint8_t *blocks, uint64_t B,
			   const uint8_t *table, uint64_t T, uint64_t E);
/* Drop every cached refcount block (the refcount structure moved). */
void qcow2_rbc_reset(struct qcow2 *s);

/* qcow2_repair.c */
int qcow2_rebuild_refcounts(struct qcow2 *s, char *err, size_t errlen);

/* qcow2_resize.c */
int qcow2_resize(struct bimg *bs, uint64_t size, bool publish, char *err, size_t errlen);

/* qcow2_cluster.c */
extern const struct fmt_ops fmt_qcow2;
int qcow2_open_image(struct bimg *bs, char *err, size_t errlen);
int qcow2_close_image(struct bimg *bs);

#endif
