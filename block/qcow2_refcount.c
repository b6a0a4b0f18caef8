/*
 * qcow2 metadata caches, refcounts and cluster allocation, and the ordered
 * write-back described in qcow2.h.  Everything here runs under s->lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "qcow2.h"

int qcache_init(struct qcache *c, unsigned n, uint64_t cluster_size)
{
	c->n = n;
	c->e = calloc(n, sizeof(*c->e));
	c->idx = g_hash_table_new(g_int64_hash, g_int64_equal);
	if (!c->e)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		c->e[i].buf = malloc(cluster_size);
		if (!c->e[i].buf)
			return -ENOMEM;
	}
	return 0;
}

void qcache_fini(struct qcache *c)
{
	for (unsigned i = 0; c->e && i < c->n; i++)
		free(c->e[i].buf);
	free(c->e);
	if (c->idx)
		g_hash_table_destroy(c->idx);
	memset(c, 0, sizeof(*c));
}

static int write_dirty(struct qcow2 *s, struct qcache *c, bool *wrote)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct qcache_ent *e = &c->e[i];
		int ret;

		if (!e->off || !e->dirty)
			continue;
		ret = qcow2_pwrite(s, e->buf, s->cluster_size, e->off);
		if (ret < 0)
			return ret;
		e->dirty = false;
		*wrote = true;
	}
	return 0;
}

/* Steps 1-3 of the ordered write-back: refcounts, L2 tables, L1. */
static int meta_write(struct qcow2 *s)
{
	bool wrote = false;
	int ret;

	ret = write_dirty(s, &s->rbc, &wrote);
	if (!ret && wrote)
		ret = qcow2_sync(s);
	wrote = false;
	if (!ret)
		ret = write_dirty(s, &s->l2c, &wrote);
	if (!ret && wrote)
		ret = qcow2_sync(s);
	if (!ret && s->l1_dirty_hi > s->l1_dirty_lo) {
		uint32_t lo = s->l1_dirty_lo, n = s->l1_dirty_hi - lo;
		uint8_t *buf = malloc(n * 8ull);

		if (!buf)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++)
			qcow2_put_be64(buf + i * 8ull, s->l1[lo + i]);
		ret = qcow2_pwrite(s, buf, n * 8ull, s->l1_offset + lo * 8ull);
		free(buf);
		if (!ret)
			s->l1_dirty_lo = s->l1_dirty_hi = 0;
	}
	return ret;
}

static int cache_get(struct qcow2 *s, struct qcache *c, uint64_t off, bool fresh,
		     uint8_t **out)
{
	gpointer v = g_hash_table_lookup(c->idx, &off);
	struct qcache_ent *e;
	int ret;

	if (v) {
		e = &c->e[GPOINTER_TO_UINT(v) - 1];
	} else {
		e = &c->e[0];
		for (unsigned i = 0; i < c->n; i++) {
			if (!c->e[i].off) {
				e = &c->e[i];
				break;
			}
			if (c->e[i].lru < e->lru)
				e = &c->e[i];
		}
		if (e->off && e->dirty) {
			ret = meta_write(s);
			if (ret < 0)
				return ret;
		}
		if (e->off)
			g_hash_table_remove(c->idx, &e->off);
		e->off = 0;
		if (!fresh) {
			ret = qcow2_pread(s, e->buf, s->cluster_size, off);
			if (ret < 0)
				return ret;
		}
		e->off = off;
		e->dirty = false;
		g_hash_table_insert(c->idx, &e->off, GUINT_TO_POINTER(e - c->e + 1));
	}
	if (fresh) {
		memset(e->buf, 0, s->cluster_size);
		e->dirty = true;
	}
	e->lru = ++c->tick;
	*out = e->buf;
	return 0;
}

static void cache_dirty(struct qcache *c, uint64_t off)
{
	gpointer v = g_hash_table_lookup(c->idx, &off);

	if (v)
		c->e[GPOINTER_TO_UINT(v) - 1].dirty = true;
}

int qcow2_l2_get(struct qcow2 *s, uint64_t off, uint8_t **table)
{
	return cache_get(s, &s->l2c, off, false, table);
}

int qcow2_l2_new(struct qcow2 *s, uint64_t off, uint8_t **table)
{
	return cache_get(s, &s->l2c, off, true, table);
}

void qcow2_l2_dirty(struct qcow2 *s, uint64_t off)
{
	cache_dirty(&s->l2c, off);
}

static gint cmp_cluster(gconstpointer a, gconstpointer b)
{
	uint64_t x = GPOINTER_TO_SIZE(a), y = GPOINTER_TO_SIZE(b);

	return x < y ? -1 : x > y;
}

bool qcow2_is_meta(struct qcow2 *s, uint64_t cluster)
{
	if (cluster < s->meta_bits)
		return s->meta[cluster / 8] & (1u << (cluster % 8));
	return s->meta_far && g_tree_lookup(s->meta_far, GSIZE_TO_POINTER(cluster));
}

/*
 * Room to mark clusters [first, last]: the bitmap grown over the part
 * below QCOW2_META_FLAT_BITS, the tree for the part above.  So the tree
 * only ever holds clusters past the bitmap's limit, and growing the
 * bitmap never hides one of them.
 */
static int meta_grow(struct qcow2 *s, uint64_t first, uint64_t last)
{
	uint64_t flat_last = BLK_MIN(last, QCOW2_META_FLAT_BITS - 1);
	uint64_t bits = BLK_MIN(BLK_MAX(flat_last + 1, s->meta_bits * 2), QCOW2_META_FLAT_BITS);
	uint8_t *m;

	if (first < QCOW2_META_FLAT_BITS && flat_last >= s->meta_bits) {
		m = realloc(s->meta, (bits + 7) / 8);
		if (!m)
			return -ENOMEM;
		memset(m + (s->meta_bits + 7) / 8, 0, (bits + 7) / 8 - (s->meta_bits + 7) / 8);
		s->meta = m;
		s->meta_bits = (bits + 7) / 8 * 8;
	}
	if (last >= QCOW2_META_FLAT_BITS && !s->meta_far)
		s->meta_far = g_tree_new(cmp_cluster);
	return 0;
}

/* Mark (or clear) clusters as metadata; -EEXIST if one already was. */
int qcow2_mark_meta(struct qcow2 *s, uint64_t off, uint64_t len, bool set)
{
	uint64_t first = off >> s->cluster_bits;
	uint64_t last = (off + len - 1) >> s->cluster_bits;

	if (set && meta_grow(s, first, last) < 0)
		return -ENOMEM;
	for (uint64_t c = first; c <= last; c++) {
		if (set && qcow2_is_meta(s, c))
			return -EEXIST;
		if (c < s->meta_bits) {
			if (set)
				s->meta[c / 8] |= 1u << (c % 8);
			else
				s->meta[c / 8] &= ~(1u << (c % 8));
		} else if (set) {
			g_tree_insert(s->meta_far, GSIZE_TO_POINTER(c), GSIZE_TO_POINTER(1));
		} else if (s->meta_far) {
			g_tree_remove(s->meta_far, GSIZE_TO_POINTER(c));
		}
	}
	return 0;
}

static uint64_t rc_read(const struct qcow2 *s, const uint8_t *b, uint64_t i)
{
	switch (s->refcount_order) {
	case 0: case 1: case 2: {
		unsigned bits = 1u << s->refcount_order;
		uint64_t bit = i * bits;

		return (b[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	case 3:
		return b[i];
	case 4:
		return (uint16_t)(b[2 * i] << 8 | b[2 * i + 1]);
	case 5:
		return (uint32_t)b[4 * i] << 24 | b[4 * i + 1] << 16 | b[4 * i + 2] << 8 | b[4 * i + 3];
	default:
		return qcow2_be64(b + 8 * i);
	}
}

static void rc_write(const struct qcow2 *s, uint8_t *b, uint64_t i, uint64_t v)
{
	switch (s->refcount_order) {
	case 0: case 1: case 2: {
		unsigned bits = 1u << s->refcount_order;
		uint64_t bit = i * bits;
		uint8_t mask = ((1u << bits) - 1) << (bit % 8);

		b[bit / 8] = (b[bit / 8] & ~mask) | ((v << (bit % 8)) & mask);
		break;
	}
	case 3:
		b[i] = v;
		break;
	case 4:
		b[2 * i] = v >> 8;
		b[2 * i + 1] = v;
		break;
	case 5:
		b[4 * i] = v >> 24;
		b[4 * i + 1] = v >> 16;
		b[4 * i + 2] = v >> 8;
		b[4 * i + 3] = v;
		break;
	default:
		qcow2_put_be64(b + 8 * i, v);
		break;
	}
}

void qcow2_rc_set(const struct qcow2 *s, uint8_t *block, uint64_t i, uint64_t v)
{
	rc_write(s, block, i, v);
}

void qcow2_rbc_reset(struct qcow2 *s)
{
	g_hash_table_remove_all(s->rbc.idx);
	for (unsigned i = 0; i < s->rbc.n; i++) {
		s->rbc.e[i].off = 0;
		s->rbc.e[i].dirty = false;
	}
}

static int rb_get(struct qcow2 *s, uint64_t r, uint8_t **blk)
{
	return cache_get(s, &s->rbc, s->rt[r], false, blk);
}

int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc)
{
	uint64_t r = cluster / s->rb_entries;
	uint8_t *blk;
	int ret;

	*rc = 0;
	if (r >= s->rt_size || !s->rt[r])
		return 0;
	ret = rb_get(s, r, &blk);
	if (ret < 0)
		return ret;
	*rc = rc_read(s, blk, cluster % s->rb_entries);
	return 0;
}

static int update_refcount(struct qcow2 *s, uint64_t cluster, int delta, uint64_t *newrc)
{
	uint64_t r = cluster / s->rb_entries, v;
	uint8_t *blk;
	int ret;

	if (r >= s->rt_size || !s->rt[r])
		return qcow2_corruption(s, "cluster %#llx has no refcount block",
					(unsigned long long)cluster << s->cluster_bits);
	ret = rb_get(s, r, &blk);
	if (ret < 0)
		return ret;
	v = rc_read(s, blk, cluster % s->rb_entries);
	if ((delta < 0 && v == 0) || (delta > 0 && v >= s->rc_max))
		return qcow2_corruption(s, "refcount of cluster %#llx would %s",
					(unsigned long long)cluster << s->cluster_bits,
					delta < 0 ? "drop below zero" : "overflow");
	v += delta;
	rc_write(s, blk, cluster % s->rb_entries, v);
	cache_dirty(&s->rbc, s->rt[r]);
	*newrc = v;
	return 0;
}

static void grow_end(struct qcow2 *s, uint64_t cluster_end)
{
	uint64_t end = cluster_end << s->cluster_bits;

	if (end > s->file_end)
		s->file_end = end;
}

/*
 * A refcount block for range r, placed in the first free cluster of its
 * own range from c on, and counting itself.  Written and flushed before the
 * refcount table points at it.
 */
static int new_refblock(struct qcow2 *s, uint64_t r, uint64_t c)
{
	uint64_t end = (r + 1) * s->rb_entries;
	uint8_t *buf, ent[8];
	int ret;

	while (c < end && qcow2_is_meta(s, c))
		c++;
	if (c == end)
		return qcow2_corruption(s, "no room for refcount block %llu", (unsigned long long)r);
	buf = calloc(1, s->cluster_size);
	if (!buf)
		return -ENOMEM;
	rc_write(s, buf, c % s->rb_entries, 1);
	ret = qcow2_pwrite(s, buf, s->cluster_size, c << s->cluster_bits);
	free(buf);
	if (!ret)
		ret = qcow2_sync(s);
	if (ret < 0)
		return ret;
	qcow2_put_be64(ent, c << s->cluster_bits);
	ret = qcow2_pwrite(s, ent, 8, s->rt_offset + r * 8);
	if (ret < 0)
		return ret;
	s->rt[r] = c << s->cluster_bits;
	grow_end(s, c + 1);
	return qcow2_mark_meta(s, c << s->cluster_bits, s->cluster_size, true);
}

/*
 * Write B refcount blocks at cluster E and the T-cluster table after them,
 * then switch the header to the new table in one 12-byte write: a crash
 * before that write leaves the old structure in use, after it the new one.
 */
int qcow2_reftable_install(struct qcow2 *s, const uint8_t *blocks, uint64_t B,
			   const uint8_t *table, uint64_t T, uint64_t E)
{
	uint64_t cs = s->cluster_size;
	uint8_t hdr[12];
	int ret;

	ret = qcow2_pwrite(s, blocks, B * cs, E * cs);
	if (!ret)
		ret = qcow2_pwrite(s, table, T * cs, (E + B) * cs);
	if (!ret)
		ret = qcow2_sync(s);
	if (ret < 0)
		return ret;
	qcow2_put_be64(hdr, (E + B) * cs);
	hdr[8] = T >> 24;
	hdr[9] = T >> 16;
	hdr[10] = T >> 8;
	hdr[11] = T;
	ret = qcow2_pwrite(s, hdr, 12, QCOW2_HDR_REFTABLE);
	if (!ret)
		ret = qcow2_sync(s);
	return ret;
}

/*
 * A bigger refcount table, at a refcount-block boundary past everything:
 * new blocks first (counting themselves and the table), then the table,
 * then the header switches to it in one write.
 */
static int grow_reftable(struct qcow2 *s)
{
	uint64_t cs = s->cluster_size, rbe = s->rb_entries;
	uint64_t end_c = (s->file_end + cs - 1) / cs;
	uint64_t E = BLK_MAX(end_c, s->rt_size * rbe);
	uint64_t B = 1, T = 0, n = 0, r0;
	uint8_t *blocks = NULL, *table = NULL;
	uint64_t *rt;
	int ret = -ENOMEM;

	E = (E + rbe - 1) / rbe * rbe;
	r0 = E / rbe;
	for (int iter = 0; iter < 16; iter++) {
		uint64_t nb;

		n = BLK_MAX(s->rt_size * 2, (E + B + T) / rbe + 1);
		T = (n * 8 + cs - 1) / cs;
		nb = (B + T + rbe - 1) / rbe;
		if (nb == B && (E + B + T - 1) / rbe < n)
			break;
		B = nb;
	}
	n = T * cs / 8;
	if (T * cs > QCOW2_MAX_REFTABLE_BYTES) {
		/* The image is full as qcow2 can describe it: not corruption. */
		log_once("qcow2 '%s': refcount table would exceed %u bytes; image full",
			 s->bs->filename, QCOW2_MAX_REFTABLE_BYTES);
		return -ENOSPC;
	}
	blocks = calloc(B, cs);
	table = calloc(T, cs);
	rt = calloc(n, 8);
	if (!blocks || !table || !rt)
		goto out;
	for (uint64_t k = 0; k < B + T; k++)
		rc_write(s, blocks + (k / rbe) * cs, k % rbe, 1);
	memcpy(rt, s->rt, s->rt_size * 8);
	for (uint64_t j = 0; j < B; j++)
		rt[r0 + j] = (E + j) * cs;
	for (uint64_t i = 0; i < n; i++)
		qcow2_put_be64(table + i * 8, rt[i]);
	ret = qcow2_reftable_install(s, blocks, B, table, T, E);
	if (ret < 0)
		goto out;
	qcow2_mark_meta(s, s->rt_offset, (uint64_t)s->rt_clusters * cs, false);
	ret = qcow2_free_deferred(s, s->rt_offset, (uint64_t)s->rt_clusters * cs);
	free(s->rt);
	s->rt = rt;
	rt = NULL;
	s->rt_offset = (E + B) * cs;
	s->rt_clusters = T;
	s->rt_size = n;
	grow_end(s, E + B + T);
	if (!ret)
		ret = qcow2_mark_meta(s, E * cs, (B + T) * cs, true);
out:
	free(blocks);
	free(table);
	free(rt);
	return ret;
}

/* One cluster with refcount 1; its host offset in *off. */
int qcow2_alloc_cluster(struct qcow2 *s, uint64_t *off)
{
	uint64_t c = s->free_hint;
	int ret;

	for (;;) {
		uint64_t r = c / s->rb_entries, i;
		uint8_t *blk;

		if (r >= s->rt_size) {
			ret = grow_reftable(s);
			if (ret < 0)
				return ret;
			continue;
		}
		if (!s->rt[r]) {
			ret = new_refblock(s, r, c);
			if (ret < 0)
				return ret;
			continue;
		}
		ret = rb_get(s, r, &blk);
		if (ret < 0)
			return ret;
		for (i = c % s->rb_entries; i < s->rb_entries; i++, c++) {
			if (rc_read(s, blk, i) == 0 && !qcow2_is_meta(s, c))
				break;
		}
		if (i == s->rb_entries)
			continue;
		rc_write(s, blk, i, 1);
		cache_dirty(&s->rbc, s->rt[r]);
		s->free_hint = c + 1;
		grow_end(s, c + 1);
		*off = c << s->cluster_bits;
		return 0;
	}
}

/*
 * n contiguous clusters with refcount 1 (a table that must be in one
 * piece).  A candidate run restarts past any cluster that is in use; a
 * missing refcount block is made first, in its own range, which may break
 * the run too.  Each restart moves the start or adds a refcount structure,
 * so this ends; a run longer than a refcount block's range could never
 * fit next to the block that counts it, so it is refused.
 */
int qcow2_alloc_run(struct qcow2 *s, uint64_t n, uint64_t *off)
{
	uint64_t c = s->free_hint, k = 0;
	int ret;

	if (n == 0 || n > s->rb_entries / 2)
		return -EFBIG;
	while (k < n) {
		uint64_t cl = c + k, r = cl / s->rb_entries, rc;
		uint8_t *blk;

		if (r >= s->rt_size) {
			ret = grow_reftable(s);
		} else if (!s->rt[r]) {
			ret = new_refblock(s, r, cl);
		} else {
			ret = rb_get(s, r, &blk);
			if (ret < 0)
				return ret;
			rc = rc_read(s, blk, cl % s->rb_entries);
			if (rc || qcow2_is_meta(s, cl)) {
				c = cl + 1;
				k = 0;
			} else {
				k++;
			}
			continue;
		}
		if (ret < 0)
			return ret;
		k = 0;		/* the new structure may sit inside the run */
	}
	for (k = 0; k < n; k++) {
		uint64_t rc;

		ret = update_refcount(s, c + k, 1, &rc);
		if (ret < 0)
			return ret;
	}
	grow_end(s, c + n);
	*off = c << s->cluster_bits;
	return 0;
}

int qcow2_free_deferred(struct qcow2 *s, uint64_t off, uint64_t len)
{
	if (s->npending == s->pending_cap) {
		size_t cap = s->pending_cap ? s->pending_cap * 2 : 64;
		struct qfree *p = realloc(s->pending, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;	/* the clusters leak, nothing worse */
		s->pending = p;
		s->pending_cap = cap;
	}
	s->pending[s->npending].off = off;
	s->pending[s->npending].len = len;
	s->pending[s->npending].epoch = s->epoch;
	s->npending++;
	if (s->npending >= QCOW2_MAX_PENDING_FREES)
		return qcow2_meta_flush(s);
	return 0;
}

/*
 * Step 4: the L2 tables that referenced freed clusters are on disk; the
 * frees of epochs before `upto` have no request left that mapped them.
 */
static int apply_frees(struct qcow2 *s, uint64_t upto)
{
	size_t keep = 0;
	int ret = 0;

	for (size_t k = 0; k < s->npending && !ret; k++) {
		uint64_t first = s->pending[k].off >> s->cluster_bits;
		uint64_t last = (s->pending[k].off + s->pending[k].len - 1) >> s->cluster_bits;

		if (s->pending[k].epoch >= upto) {
			s->pending[keep++] = s->pending[k];
			continue;
		}
		for (uint64_t c = first; c <= last && !ret; c++) {
			uint64_t rc = 0;

			ret = update_refcount(s, c, -1, &rc);
			if (ret || rc)
				continue;
			if (c < s->free_hint)
				s->free_hint = c;
			if (s->bs->discard_unmap)
				fallocate(s->bs->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  c << s->cluster_bits, s->cluster_size);
		}
	}
	s->npending = ret ? 0 : keep;
	return ret;
}

int qcow2_meta_flush(struct qcow2 *s)
{
	bool wrote = false;
	int ret;

	if (s->bs->readonly)
		return 0;
	ret = meta_write(s);
	if (ret)
		return ret;
	/*
	 * Requests of the epoch before this one have all ended: so have all
	 * that could have mapped a cluster freed before this epoch began.
	 * Move on, and the parity slot of the drained epoch is free again.
	 */
	if (__atomic_load_n(&s->inflight[(s->epoch - 1) & 1], __ATOMIC_ACQUIRE) == 0) {
		uint64_t upto = s->epoch;

		if (__atomic_load_n(&s->inflight[s->epoch & 1], __ATOMIC_ACQUIRE) == 0)
			upto = s->epoch + 1;	/* nothing in flight at all */
		s->epoch++;
		if (s->npending && s->pending[0].epoch < upto) {
			ret = qcow2_sync(s);
			if (!ret)
				ret = apply_frees(s, upto);
			if (!ret)
				ret = write_dirty(s, &s->rbc, &wrote);
		}
	}
	return ret;
}
