/*
 * qcow2: opening (every header field and table entry checked against the
 * file before use), the corrupt bit, and closing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "qcow2.h"

#define EXT_BACKING_FMT		0xe2792acau
#define EXT_DATA_FILE		0x44415441u

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

int qcow2_pread(struct qcow2 *s, void *buf, uint64_t len, uint64_t off)
{
	return blk_pread_full(s->bs->fd, buf, len, off);
}

int qcow2_pwrite(struct qcow2 *s, const void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(s->bs->fd, (const char *)buf + done, len - done, off + done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += r;
	}
	if (off + len > s->file_end)
		s->file_end = off + len;
	return 0;
}

int qcow2_sync(struct qcow2 *s)
{
	return bimg_sync(s->bs);
}

/*
 * Bad metadata found while running: fail every later request, and mark
 * the image corrupt on disk (as QEMU does) so nothing writes through it
 * until it is repaired.
 */
int qcow2_corruption(struct qcow2 *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->corrupt)
		return -EIO;
	s->corrupt = true;
	log_error("qcow2 '%s': corrupt image: %s%s", s->bs->filename, msg,
		  s->bs->readonly ? "" : "; marked corrupt, further I/O fails");
	if (!s->bs->readonly) {
		uint8_t v[8];

		qcow2_put_be64(v, s->incompat | QCOW2_INCOMPAT_CORRUPT);
		if (qcow2_pwrite(s, v, 8, QCOW2_HDR_INCOMPAT) == 0)
			qcow2_sync(s);
	}
	return -EIO;
}

static void qcow2_free_state(struct qcow2 *s)
{
	qcache_fini(&s->l2c);
	qcache_fini(&s->rbc);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->zlock);
	free(s->zbuf);
	free(s->l1);
	free(s->rt);
	free(s->meta);
	if (s->meta_far)
		g_tree_destroy(s->meta_far);
	free(s->pending);
	free(s);
}

#define FAIL(...) do {							\
	int n_ = snprintf(err, errlen, "qcow2 '%s': ", bs->filename);	\
	if (n_ >= 0 && (size_t)n_ < errlen)				\
		snprintf(err + n_, errlen - n_, __VA_ARGS__);		\
	ret = -EINVAL;							\
	goto fail;							\
} while (0)

static int read_tables(struct qcow2 *s, uint64_t file_size, char *err, size_t errlen)
{
	struct bimg *bs = s->bs;
	uint64_t cs = s->cluster_size;
	uint8_t *buf;
	int ret = 0;

	s->rt_size = (uint64_t)s->rt_clusters * cs / 8;
	s->rt = calloc(s->rt_size, 8);
	buf = malloc(BLK_MAX((uint64_t)s->rt_clusters * cs, (uint64_t)s->l1_size * 8));
	if (!s->rt || !buf)
		FAIL("out of memory");
	if (qcow2_pread(s, buf, s->rt_size * 8, s->rt_offset) < 0)
		FAIL("cannot read the refcount table: %s", strerror(errno));
	for (uint64_t i = 0; i < s->rt_size; i++) {
		uint64_t e = qcow2_be64(buf + i * 8), off = e & REFT_OFFSET_MASK;

		if (e & ~REFT_OFFSET_MASK)
			FAIL("refcount table entry %llu (%#llx) has reserved bits set",
			     (unsigned long long)i, (unsigned long long)e);
		if (off & (cs - 1))
			FAIL("refcount block %llu at %#llx is not cluster-aligned",
			     (unsigned long long)i, (unsigned long long)off);
		if (off && (off > file_size || cs > file_size - off))
			FAIL("refcount block %llu at %#llx is outside the file (%llu bytes)",
			     (unsigned long long)i, (unsigned long long)off,
			     (unsigned long long)file_size);
		if (off && qcow2_mark_meta(s, off, cs, true) < 0)
			FAIL("refcount block %llu at %#llx overlaps other metadata",
			     (unsigned long long)i, (unsigned long long)off);
		s->rt[i] = off;
	}
	s->l1 = calloc(s->l1_size ? s->l1_size : 1, 8);
	if (!s->l1)
		FAIL("out of memory");
	if (s->l1_size && qcow2_pread(s, buf, s->l1_size * 8ull, s->l1_offset) < 0)
		FAIL("cannot read the L1 table: %s", strerror(errno));
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t e = qcow2_be64(buf + i * 8ull), off = e & L1E_OFFSET_MASK;

		if (e & ~(L1E_OFFSET_MASK | QCOW_OFLAG_COPIED))
			FAIL("L1 entry %u (%#llx) has reserved bits set", i, (unsigned long long)e);
		if (off & (cs - 1))
			FAIL("L2 table %u at %#llx is not cluster-aligned", i, (unsigned long long)off);
		if (off && (off > file_size || cs > file_size - off))
			FAIL("L2 table %u at %#llx is outside the file (%llu bytes)", i,
			     (unsigned long long)off, (unsigned long long)file_size);
		if (off && qcow2_mark_meta(s, off, cs, true) < 0)
			FAIL("L2 table %u at %#llx overlaps other metadata", i,
			     (unsigned long long)off);
		s->l1[i] = e;
	}
fail:
	free(buf);
	return ret;
}

/* Header extensions: the backing format; everything else is skipped. */
static int read_extensions(struct qcow2 *s, const uint8_t *h, uint64_t start, uint64_t end,
			   char *err, size_t errlen)
{
	struct bimg *bs = s->bs;
	uint64_t off = start;
	int ret = 0;

	while (off + 8 <= end) {
		uint32_t type = be32(h + off), len = be32(h + off + 4);

		off += 8;
		if (len > end - off)
			FAIL("header extension %#x (%u bytes) runs past the header", type, len);
		if (type == 0)
			break;
		if (type == EXT_BACKING_FMT) {
			if (len == 0 || len > 1023)
				FAIL("backing format extension of %u bytes", len);
			free(bs->backing_fmt);
			bs->backing_fmt = strndup((const char *)h + off, len);
		}
		off += (len + 7ull) & ~7ull;
	}
fail:
	return ret;
}

int qcow2_open_image(struct bimg *bs, char *err, size_t errlen)
{
	struct qcow2 *s = calloc(1, sizeof(*s));
	uint64_t file_size, cs, backing_off, size, l1_off, rt_off, snap_off, hlen;
	uint32_t backing_len, cluster_bits, crypt, l1_size, rt_clusters;
	off_t end = lseek(bs->fd, 0, SEEK_END);
	uint8_t *h = NULL;
	int ret = 0;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->bs = bs;
	bs->priv = s;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->zlock, NULL);
	if (end < 0)
		FAIL("cannot find its size: %s", strerror(errno));
	file_size = end;
	h = calloc(1, 1u << 21);
	if (!h)
		FAIL("out of memory");
	if (file_size < 72)
		FAIL("file too small for a qcow2 header (%llu bytes)", (unsigned long long)file_size);
	if (qcow2_pread(s, h, BLK_MIN(file_size, 1u << 21), 0) < 0)
		FAIL("cannot read the header: %s", strerror(errno));
	if (be32(h) != QCOW2_MAGIC)
		FAIL("bad magic, not a qcow2 image");
	s->version = be32(h + 4);
	if (s->version != 2 && s->version != 3)
		FAIL("unsupported qcow2 version %u", s->version);
	backing_off = qcow2_be64(h + 8);
	backing_len = be32(h + 16);
	cluster_bits = be32(h + 20);
	size = qcow2_be64(h + 24);
	crypt = be32(h + 32);
	l1_size = be32(h + 36);
	l1_off = qcow2_be64(h + 40);
	rt_off = qcow2_be64(h + 48);
	rt_clusters = be32(h + 56);
	s->nb_snapshots = be32(h + 60);
	snap_off = qcow2_be64(h + 64);
	if (s->version == 3) {
		if (file_size < 104)
			FAIL("file too small for a version 3 header");
		s->incompat = qcow2_be64(h + 72);
		s->compat = qcow2_be64(h + 80);
		s->autoclear = qcow2_be64(h + 88);
		s->refcount_order = be32(h + 96);
		hlen = be32(h + 100);
	} else {
		s->refcount_order = 4;
		hlen = 72;
	}
	if (cluster_bits < 9 || cluster_bits > 21)
		FAIL("cluster_bits %u out of range (9-21)", cluster_bits);
	cs = s->cluster_size = 1ull << cluster_bits;
	s->cluster_bits = cluster_bits;
	if (s->version == 3 && (hlen < 104 || hlen > cs || hlen > file_size))
		FAIL("header_length %llu out of range", (unsigned long long)hlen);
	if (s->incompat & ~QCOW2_INCOMPAT_KNOWN)
		FAIL("unsupported incompatible features %#llx%s%s",
		     (unsigned long long)(s->incompat & ~QCOW2_INCOMPAT_KNOWN),
		     s->incompat & QCOW2_INCOMPAT_DATAFILE ? " (external data file)" : "",
		     s->incompat & QCOW2_INCOMPAT_EXTL2 ? " (extended L2 entries)" : "");
	if (hlen > 104)
		s->compression_type = h[104];
	if (s->compression_type > 1)
		FAIL("unknown compression type %d", s->compression_type);
	if (!!s->compression_type != !!(s->incompat & QCOW2_INCOMPAT_COMPRESS))
		FAIL("compression type %d does not match the compression-type feature bit",
		     s->compression_type);
	if ((s->incompat & QCOW2_INCOMPAT_CORRUPT) && !bs->readonly)
		FAIL("image is marked corrupt; repair it with 'qemu-img check -r all' "
		     "or open it with readonly=on");
	if (crypt)
		FAIL("encrypted images (crypt_method %u) are not supported", crypt);
	if (s->refcount_order > 6)
		FAIL("refcount_order %u out of range (0-6)", s->refcount_order);
	if (s->version == 2 && !bs->readonly)
		FAIL("version 2 images are read-only here; upgrade with "
		     "'qemu-img amend -o compat=1.1'");
	if (s->nb_snapshots > 65536 ||
	    (s->nb_snapshots && ((snap_off & (cs - 1)) || snap_off >= file_size)))
		FAIL("snapshot table (%u entries at %#llx) is invalid", s->nb_snapshots,
		     (unsigned long long)snap_off);
	if (s->nb_snapshots && !bs->readonly)
		FAIL("image has %u internal snapshots; writing to it is not supported "
		     "(open it with readonly=on)", s->nb_snapshots);
	s->l2_entries = cs / 8;
	if ((uint64_t)l1_size * 8 > QCOW2_MAX_L1_BYTES)
		FAIL("L1 table of %u entries is too large", l1_size);
	if (size > (uint64_t)l1_size * s->l2_entries * cs)
		FAIL("L1 table (%u entries) too small for the virtual size %llu", l1_size,
		     (unsigned long long)size);
	if (l1_size && ((l1_off & (cs - 1)) || l1_off == 0 || l1_off > file_size ||
			l1_size * 8ull > file_size - l1_off))
		FAIL("L1 table at %#llx (%u entries) is outside the file or misaligned",
		     (unsigned long long)l1_off, l1_size);
	if (rt_clusters == 0 || (uint64_t)rt_clusters * cs > QCOW2_MAX_REFTABLE_BYTES ||
	    (rt_off & (cs - 1)) || rt_off == 0 || rt_off > file_size ||
	    (uint64_t)rt_clusters * cs > file_size - rt_off)
		FAIL("refcount table at %#llx (%u clusters) is outside the file, misaligned "
		     "or too large", (unsigned long long)rt_off, rt_clusters);
	if (backing_off) {
		if (backing_len == 0 || backing_len > 1023 || backing_off > cs ||
		    backing_len > cs - backing_off || backing_off + backing_len > file_size)
			FAIL("backing file name (%u bytes at %#llx) is outside the header cluster",
			     backing_len, (unsigned long long)backing_off);
		bs->backing_name = strndup((const char *)h + backing_off, backing_len);
		if (!bs->backing_name || strlen(bs->backing_name) != backing_len)
			FAIL("backing file name contains a NUL byte");
	}
	ret = read_extensions(s, h, hlen, backing_off ? backing_off : BLK_MIN(cs, file_size),
			      err, errlen);
	if (ret < 0)
		goto fail;
	s->l1_offset = l1_off;
	s->l1_size = l1_size;
	s->rt_offset = rt_off;
	s->rt_clusters = rt_clusters;
	s->rb_entries = (cs * 8) >> s->refcount_order;
	s->rc_max = s->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << s->refcount_order)) - 1;
	s->csize_shift = 62 - (cluster_bits - 8);
	s->csize_mask = (1ull << (cluster_bits - 8)) - 1;
	s->coffset_mask = (1ull << s->csize_shift) - 1;
	s->file_end = file_size;
	if (qcow2_mark_meta(s, 0, cs, true) < 0 ||
	    qcow2_mark_meta(s, rt_off, (uint64_t)rt_clusters * cs, true) < 0)
		FAIL("out of memory");
	if (l1_size && qcow2_mark_meta(s, l1_off, l1_size * 8ull, true) < 0)
		FAIL("L1 table at %#llx overlaps the header or the refcount table",
		     (unsigned long long)l1_off);
	ret = read_tables(s, file_size, err, errlen);
	if (ret < 0)
		goto fail;
	if (qcache_init(&s->l2c, BLK_MAX(4, BLK_MIN(2048, (4u << 20) >> cluster_bits)), cs) < 0 ||
	    qcache_init(&s->rbc, BLK_MAX(4, BLK_MIN(512, (1u << 20) >> cluster_bits)), cs) < 0)
		FAIL("out of memory for the metadata caches");
	if (!bs->readonly && s->autoclear) {
		/* Bitmaps and the like are not kept up to date here: drop them. */
		uint8_t zero[8] = { 0 };

		if (qcow2_pwrite(s, zero, 8, QCOW2_HDR_AUTOCLEAR) < 0 || qcow2_sync(s) < 0)
			FAIL("cannot clear the autoclear features: %s", strerror(errno));
		s->autoclear = 0;
	}
	if (!bs->readonly && (s->incompat & QCOW2_INCOMPAT_DIRTY)) {
		/* Lazy refcounts and a crash: the counts on disk may be too low. */
		ret = qcow2_rebuild_refcounts(s, err, errlen);
		if (ret < 0)
			goto fail;
	}
	bs->size = size;
	free(h);
	return 0;
fail:
	free(h);
	free(bs->backing_name);
	free(bs->backing_fmt);
	bs->backing_name = bs->backing_fmt = NULL;
	qcow2_free_state(s);
	bs->priv = NULL;
	return ret;
}

int qcow2_close_image(struct bimg *bs)
{
	struct qcow2 *s = bs->priv;
	int ret = 0;

	if (!s)
		return 0;
	if (!bs->readonly && !s->corrupt) {
		pthread_mutex_lock(&s->lock);
		ret = qcow2_meta_flush(s);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			log_error("qcow2 '%s': writing metadata back: %s", bs->filename,
				  strerror(-ret));
	}
	qcow2_free_state(s);
	bs->priv = NULL;
	return ret;
}
