/*
 * Rebuilding the refcounts of a dirty image, as QEMU does when it opens
 * one for writing: with lazy refcounts the counts on disk may be too low,
 * so they are recomputed from what the L1 and L2 tables reference and
 * written as a new refcount structure at the end of the file; the header
 * switches to it in one write, the COPIED flags are set where a count is
 * one (and cleared elsewhere), then the dirty bit is cleared.  The old
 * refcount table and blocks are simply no longer referenced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "qcow2.h"

struct counts {
	uint16_t *v;		/* more references than this in a valid image: none */
	uint64_t n;		/* clusters */
};

static int count(struct qcow2 *s, struct counts *c, uint64_t off, uint64_t len,
		 char *err, size_t errlen)
{
	uint64_t first = off >> s->cluster_bits, last = (off + len - 1) >> s->cluster_bits;

	if (last >= c->n) {
		snprintf(err, errlen, "qcow2 '%s': cluster %#llx referenced past the end of the file",
			 s->bs->filename, (unsigned long long)off);
		return -EINVAL;
	}
	for (uint64_t i = first; i <= last; i++) {
		if (c->v[i] == UINT16_MAX) {
			snprintf(err, errlen, "qcow2 '%s': cluster %#llx referenced too often",
				 s->bs->filename, (unsigned long long)(i << s->cluster_bits));
			return -EINVAL;
		}
		c->v[i]++;
	}
	return 0;
}

static int count_l2(struct qcow2 *s, struct counts *c, const uint8_t *t, char *err, size_t errlen)
{
	uint64_t cs = s->cluster_size;
	int ret = 0;

	for (uint64_t i = 0; i < s->l2_entries && !ret; i++) {
		uint64_t e = qcow2_be64(t + i * 8);

		if (e & QCOW_OFLAG_COMPRESSED) {
			uint64_t nb = ((e >> s->csize_shift) & s->csize_mask) + 1;
			uint64_t coff = (e & s->coffset_mask) & ~511ull;

			ret = count(s, c, coff, nb * 512, err, errlen);
		} else if (e & L2E_OFFSET_MASK) {
			if (e & (cs - 1) & L2E_OFFSET_MASK) {
				snprintf(err, errlen, "qcow2 '%s': L2 entry %#llx is not cluster-aligned",
					 s->bs->filename, (unsigned long long)e);
				return -EINVAL;
			}
			ret = count(s, c, e & L2E_OFFSET_MASK, cs, err, errlen);
		}
	}
	return ret;
}

/* COPIED on an entry whose cluster has exactly one reference, else not. */
static uint64_t with_copied(const struct counts *c, unsigned cluster_bits, uint64_t e,
			    uint64_t mask)
{
	uint64_t off = e & mask;

	if (!off || (e & QCOW_OFLAG_COMPRESSED) || (off >> cluster_bits) >= c->n)
		return e;
	return c->v[off >> cluster_bits] == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
}

/*
 * The COPIED flags of the L1 and L2 tables follow the new counts, as
 * QEMU's repair does: a write goes in place exactly where the cluster is
 * ours alone.  t is a cluster-sized buffer.
 */
static int fix_copied(struct qcow2 *s, const struct counts *c, uint8_t *t)
{
	uint64_t cs = s->cluster_size;
	bool l1_changed = false;
	int ret = 0;

	for (uint32_t i = 0; i < s->l1_size && !ret; i++) {
		uint64_t l2 = s->l1[i] & L1E_OFFSET_MASK, e = with_copied(c, s->cluster_bits,
									   s->l1[i], L1E_OFFSET_MASK);
		bool changed = false;

		l1_changed |= e != s->l1[i];
		s->l1[i] = e;
		if (!l2)
			continue;
		ret = qcow2_pread(s, t, cs, l2);
		for (uint64_t j = 0; j < s->l2_entries && !ret; j++) {
			uint64_t old = qcow2_be64(t + j * 8);
			uint64_t ne = with_copied(c, s->cluster_bits, old, L2E_OFFSET_MASK);

			if (ne != old) {
				qcow2_put_be64(t + j * 8, ne);
				changed = true;
			}
		}
		if (!ret && changed)
			ret = qcow2_pwrite(s, t, cs, l2);
	}
	if (!ret && l1_changed) {
		uint8_t *buf = malloc(s->l1_size * 8ull);

		if (!buf)
			return -ENOMEM;
		for (uint32_t i = 0; i < s->l1_size; i++)
			qcow2_put_be64(buf + i * 8ull, s->l1[i]);
		ret = qcow2_pwrite(s, buf, s->l1_size * 8ull, s->l1_offset);
		free(buf);
	}
	return ret;
}

int qcow2_rebuild_refcounts(struct qcow2 *s, char *err, size_t errlen)
{
	uint64_t cs = s->cluster_size, rbe = s->rb_entries;
	uint64_t E, B = 1, T = 0, n = 0;
	uint8_t *t = malloc(cs), *blocks = NULL, *table = NULL, hdr[12];
	struct counts c = { 0 };
	uint64_t *rt = NULL;
	int ret = -ENOMEM;

	/* New blocks and table after everything, sized to cover themselves. */
	c.n = (s->file_end + cs - 1) >> s->cluster_bits;
	E = c.n;
	for (int iter = 0; iter < 16; iter++) {
		uint64_t nb;

		n = (E + B + T + rbe - 1) / rbe;
		T = (n * 8 + cs - 1) / cs;
		nb = (E + B + T + rbe - 1) / rbe;
		if (nb <= B)
			break;
		B = nb;
	}
	n = T * cs / 8;
	ret = -ENOSPC;
	if (T * cs > QCOW2_MAX_REFTABLE_BYTES) {
		snprintf(err, errlen, "qcow2 '%s': refcount table too large to rebuild",
			 s->bs->filename);
		goto out;
	}
	/*
	 * A count per cluster of the file and the new blocks, all in memory:
	 * sized by the file's length, which a sparse file makes anything.
	 */
	if (c.n * sizeof(*c.v) + B * cs > QCOW2_MAX_REBUILD_BYTES) {
		snprintf(err, errlen, "qcow2 '%s': image was not closed cleanly and is too large "
			 "(%llu bytes) to rebuild its refcounts here; repair it with "
			 "'qemu-img check -r all'", s->bs->filename,
			 (unsigned long long)s->file_end);
		ret = -EFBIG;
		goto out;
	}
	c.v = calloc(c.n ? c.n : 1, sizeof(*c.v));
	if (!t || !c.v)
		goto nomem;
	ret = count(s, &c, 0, cs, err, errlen);
	if (!ret && s->l1_size)
		ret = count(s, &c, s->l1_offset, s->l1_size * 8ull, err, errlen);
	for (uint32_t i = 0; i < s->l1_size && !ret; i++) {
		uint64_t l2 = s->l1[i] & L1E_OFFSET_MASK;

		if (!l2)
			continue;
		ret = count(s, &c, l2, cs, err, errlen);
		if (!ret)
			ret = qcow2_pread(s, t, cs, l2);
		if (!ret)
			ret = count_l2(s, &c, t, err, errlen);
	}
	if (ret < 0)
		goto out;

	blocks = calloc(B, cs);
	table = calloc(T, cs);
	rt = calloc(n, 8);
	if (!blocks || !table || !rt)
		goto nomem;
	for (uint64_t i = 0; i < E + B + T; i++) {
		uint64_t v = i < E ? c.v[i] : 1;

		if (v > s->rc_max) {
			snprintf(err, errlen, "qcow2 '%s': cluster %#llx has %llu references, more "
				 "than %u-bit refcounts hold", s->bs->filename,
				 (unsigned long long)(i * cs), (unsigned long long)v,
				 1u << s->refcount_order);
			ret = -EINVAL;
			goto out;
		}
		if (v)
			qcow2_rc_set(s, blocks + (i / rbe) * cs, i % rbe, v);
	}
	for (uint64_t j = 0; j < B; j++) {
		rt[j] = (E + j) * cs;
		qcow2_put_be64(table + j * 8, rt[j]);
	}
	ret = qcow2_reftable_install(s, blocks, B, table, T, E);
	if (ret < 0) {
		snprintf(err, errlen, "qcow2 '%s': writing rebuilt refcounts: %s", s->bs->filename,
			 strerror(-ret));
		goto out;
	}

	/* The old structure is unreferenced now: forget it, use the new one. */
	qcow2_mark_meta(s, s->rt_offset, (uint64_t)s->rt_clusters * cs, false);
	for (uint64_t i = 0; i < s->rt_size; i++)
		if (s->rt[i])
			qcow2_mark_meta(s, s->rt[i], cs, false);
	qcow2_rbc_reset(s);
	free(s->rt);
	s->rt = rt;
	rt = NULL;
	s->rt_offset = (E + B) * cs;
	s->rt_clusters = T;
	s->rt_size = n;
	s->free_hint = 0;
	ret = qcow2_mark_meta(s, E * cs, (B + T) * cs, true);
	if (ret < 0) {
		snprintf(err, errlen, "qcow2 '%s': out of memory", s->bs->filename);
		goto out;
	}

	/* The flags before the dirty bit goes: a crash in between rebuilds again. */
	ret = fix_copied(s, &c, t);
	if (ret < 0) {
		snprintf(err, errlen, "qcow2 '%s': writing the COPIED flags: %s", s->bs->filename,
			 strerror(-ret));
		goto out;
	}
	s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
	qcow2_put_be64(hdr, s->incompat);
	ret = qcow2_pwrite(s, hdr, 8, QCOW2_HDR_INCOMPAT);
	if (!ret)
		ret = qcow2_sync(s);
	if (ret < 0)
		snprintf(err, errlen, "qcow2 '%s': clearing the dirty bit: %s", s->bs->filename,
			 strerror(-ret));
	else
		log_info("qcow2 '%s': image was not closed cleanly; refcounts rebuilt",
			 s->bs->filename);
	goto out;
nomem:
	ret = -ENOMEM;
	snprintf(err, errlen, "qcow2 '%s': out of memory rebuilding refcounts", s->bs->filename);
out:
	free(t);
	free(c.v);
	free(blocks);
	free(table);
	free(rt);
	return ret;
}
