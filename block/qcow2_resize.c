/*
 * qcow2: growing the virtual size (block_resize).
 *
 * Within the L1 table's reach only the header's size field changes.  Past
 * it the L1 table grows: the metadata cached so far goes to disk, a new
 * table (the old entries, then zeroes) is written to newly allocated,
 * already counted clusters, and one header write switches size,
 * l1_size and l1_table_offset together (bytes 24-47 of the header, with
 * crypt_method, which is 0).  A crash before that write leaves the old
 * image with the new table's clusters leaked; after it, the new image with
 * the old table's clusters leaked until the deferred free reaches the disk.
 * Both are images qemu-img check accepts.  Over a bigger backing file the
 * table grows first with the old size kept (publish false), and the size
 * is written once the grown range reads as zeroes (block/blk.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "qcow2.h"

#define QCOW2_HDR_SIZE		24	/* size, crypt_method, l1_size, l1_table_offset */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static int write_header(struct qcow2 *s, uint64_t size, uint32_t l1_size, uint64_t l1_off)
{
	uint8_t h[24] = { 0 };
	int ret;

	qcow2_put_be64(h, size);
	put_be32(h + 12, l1_size);
	qcow2_put_be64(h + 16, l1_off);
	ret = qcow2_pwrite(s, h, sizeof(h), QCOW2_HDR_SIZE);
	if (!ret)
		ret = qcow2_sync(s);
	return ret;
}

/* A new L1 table of l1_size entries: the old entries, zeroes after them. */
static int grow_l1(struct qcow2 *s, uint64_t hdr_size, uint32_t l1_size, char *err,
		   size_t errlen)
{
	uint64_t cs = s->cluster_size, bytes = (uint64_t)l1_size * 8;
	uint64_t n = (bytes + cs - 1) / cs, off, old_off = s->l1_offset;
	uint64_t old_bytes = (uint64_t)s->l1_size * 8;
	uint64_t *l1 = NULL;
	uint8_t *buf = NULL;
	int ret;

	/* Every L2 table the old entries name is on disk before the copy is. */
	ret = qcow2_meta_flush(s);
	if (!ret)
		ret = qcow2_sync(s);
	if (ret < 0) {
		snprintf(err, errlen, "writing metadata back: %s", strerror(-ret));
		return ret;
	}
	ret = qcow2_alloc_run(s, n, &off);
	if (ret == -EFBIG) {
		snprintf(err, errlen, "an L1 table of %u entries needs %llu contiguous clusters; "
			 "the cluster size (%llu) is too small for that", l1_size,
			 (unsigned long long)n, (unsigned long long)cs);
		return ret;
	}
	if (ret < 0)
		goto fail_io;
	ret = qcow2_mark_meta(s, off, n * cs, true);
	if (ret < 0) {
		snprintf(err, errlen, "new L1 table at %#llx overlaps metadata",
			 (unsigned long long)off);
		return qcow2_corruption(s, "new L1 table at %#llx overlaps metadata",
					(unsigned long long)off);
	}
	/* Counted on disk before anything points at them. */
	ret = qcow2_meta_flush(s);
	buf = calloc(n, cs);
	l1 = calloc(l1_size, 8);
	if (!ret && (!buf || !l1))
		ret = -ENOMEM;
	if (ret < 0)
		goto fail_unmark;
	memcpy(l1, s->l1, old_bytes);
	for (uint32_t i = 0; i < s->l1_size; i++)
		qcow2_put_be64(buf + i * 8ull, s->l1[i]);
	ret = qcow2_pwrite(s, buf, n * cs, off);
	if (!ret)
		ret = qcow2_sync(s);
	if (!ret)
		ret = write_header(s, hdr_size, l1_size, off);
	if (ret < 0)
		goto fail_unmark;
	/* The header names the new table: the old one is garbage from here on. */
	free(s->l1);
	s->l1 = l1;
	s->l1_size = l1_size;
	s->l1_offset = off;
	s->l1_dirty_lo = s->l1_dirty_hi = 0;
	free(buf);
	if (old_bytes) {
		qcow2_mark_meta(s, old_off, old_bytes, false);
		/* Only leaks if this fails: the header no longer names it. */
		if (qcow2_free_deferred(s, old_off & ~(cs - 1),
					(old_bytes + (old_off & (cs - 1)) + cs - 1) & ~(cs - 1)) < 0)
			log_warn("qcow2 '%s': old L1 table at %#llx leaked", s->bs->filename,
				 (unsigned long long)old_off);
	}
	return 0;
fail_unmark:
	/* The new clusters stay counted and unused: a leak, nothing worse. */
	qcow2_mark_meta(s, off, n * cs, false);
	free(buf);
	free(l1);
fail_io:
	snprintf(err, errlen, "growing the L1 table: %s", strerror(-ret));
	return ret;
}

int qcow2_resize(struct bimg *bs, uint64_t size, bool publish, char *err, size_t errlen)
{
	struct qcow2 *s = bs->priv;
	uint64_t reach = s->l2_entries << s->cluster_bits;	/* guest bytes per L1 entry */
	uint64_t need = (size + reach - 1) / reach;
	uint64_t hdr_size = publish ? size : bs->size;
	int ret;

	if (need * 8 > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen, "%llu bytes need an L1 table of %llu entries, more than "
			 "the %u bytes allowed", (unsigned long long)size,
			 (unsigned long long)need, QCOW2_MAX_L1_BYTES);
		return -EFBIG;
	}
	pthread_mutex_lock(&s->lock);
	if (s->corrupt) {
		snprintf(err, errlen, "the image is marked corrupt");
		ret = -EIO;
	} else if (need > s->l1_size) {
		ret = grow_l1(s, hdr_size, need, err, errlen);
	} else if (!publish) {
		ret = 0;	/* room enough, and nothing to record yet */
	} else {
		ret = write_header(s, size, s->l1_size, s->l1_offset);
		if (ret < 0)
			snprintf(err, errlen, "writing the header: %s", strerror(-ret));
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}
