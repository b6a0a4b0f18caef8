/*
 * qcow2 guest-to-host mapping: reads, in-place writes (data to the
 * engine), allocating writes (copy-on-write done here, synchronously,
 * under the image lock), compressed clusters, discard and zero clusters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "log.h"
#include "qcow2.h"

enum qtype { Q_UNALLOC, Q_ZERO, Q_NORMAL, Q_COMPRESSED };

static enum qtype qtype(const struct qcow2 *s, uint64_t e)
{
	if (e & QCOW_OFLAG_COMPRESSED)
		return Q_COMPRESSED;
	if (s->version >= 3 && (e & QCOW_OFLAG_ZERO))
		return Q_ZERO;
	if (!(e & L2E_OFFSET_MASK))
		return Q_UNALLOC;
	return Q_NORMAL;
}

static uint64_t l2_entry(const uint8_t *t, uint64_t i)
{
	return qcow2_be64(t + i * 8);
}

static void l2_set(struct qcow2 *s, uint64_t l2off, uint8_t *t, uint64_t i, uint64_t e)
{
	qcow2_put_be64(t + i * 8, e);
	qcow2_l2_dirty(s, l2off);
}

/* A standard or zero entry's host cluster must be data we may touch. */
static int check_host(struct qcow2 *s, uint64_t off, uint64_t e)
{
	uint64_t host = e & L2E_OFFSET_MASK;

	if (e & 0x3f000000000001feull)
		return qcow2_corruption(s, "L2 entry %#llx for guest offset %#llx has reserved bits set",
					(unsigned long long)e, (unsigned long long)off);
	if (!host)
		return 0;
	if (host & (s->cluster_size - 1))
		return qcow2_corruption(s, "L2 entry for guest offset %#llx: data cluster %#llx "
					"is not aligned", (unsigned long long)off,
					(unsigned long long)host);
	if (host >= s->file_end)
		return qcow2_corruption(s, "L2 entry for guest offset %#llx: data cluster %#llx "
					"is past the end of the file", (unsigned long long)off,
					(unsigned long long)host);
	if (qcow2_is_meta(s, host >> s->cluster_bits))
		return qcow2_corruption(s, "L2 entry for guest offset %#llx: data cluster %#llx "
					"overlaps metadata", (unsigned long long)off,
					(unsigned long long)host);
	return 0;
}

static void compressed_range(const struct qcow2 *s, uint64_t e, uint64_t *coff, uint64_t *csize)
{
	uint64_t nb = ((e >> s->csize_shift) & s->csize_mask) + 1;

	*coff = e & s->coffset_mask;
	*csize = nb * 512 - (*coff & 511);
}

static int check_compressed(struct qcow2 *s, uint64_t off, uint64_t e)
{
	uint64_t coff, csize;

	compressed_range(s, e, &coff, &csize);
	/* The sector count rounds up: the last cluster may end early. */
	if (coff >= s->file_end || coff + csize > s->file_end + 512)
		goto bad;
	/*
	 * Up to two clusters of data starting mid-cluster span three: each
	 * one is read, and loses a reference when the entry is freed.
	 */
	for (uint64_t c = coff >> s->cluster_bits; c <= (coff + csize - 1) >> s->cluster_bits; c++)
		if (qcow2_is_meta(s, c))
			goto bad;
	return 0;
bad:
	return qcow2_corruption(s, "compressed cluster for guest offset %#llx at %#llx "
				"(%llu bytes) is outside the file or overlaps metadata",
				(unsigned long long)off, (unsigned long long)coff,
				(unsigned long long)csize);
}

static int inflate_zlib(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	z_stream z = { 0 };
	int ret;

	/* Raw deflate with a 4 KiB window, as QEMU writes it. */
	if (inflateInit2(&z, -12) != Z_OK)
		return -EIO;
	z.next_in = (uint8_t *)in;
	z.avail_in = inlen;
	z.next_out = out;
	z.avail_out = outlen;
	ret = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0)
		return 0;
	return -EIO;
}

static int inflate_zstd(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };
	size_t r = 0;
	int ret = 0;

	if (!d)
		return -ENOMEM;
	/* The sector padding after the frame is not part of it: stop when full. */
	while (ob.pos < ob.size) {
		size_t in0 = ib.pos, out0 = ob.pos;

		r = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(r) || (ib.pos == in0 && ob.pos == out0)) {
			ret = -EIO;
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return ret;
}

/* Decompress the cluster described by L2 entry e into out (cluster_size). */
static int decompress(struct qcow2 *s, uint64_t e, uint8_t *out)
{
	uint64_t coff, csize;
	uint8_t *in;
	int ret;

	compressed_range(s, e, &coff, &csize);
	in = malloc(csize);
	if (!in)
		return -ENOMEM;
	ret = qcow2_pread(s, in, csize, coff);
	if (!ret)
		ret = s->compression_type ? inflate_zstd(in, csize, out, s->cluster_size) :
			inflate_zlib(in, csize, out, s->cluster_size);
	if (ret == -EIO)
		log_once("qcow2 '%s': compressed cluster at %#llx does not decompress",
			 s->bs->filename, (unsigned long long)coff);
	free(in);
	return ret;
}

/*
 * The L2 table for guest offset off.  *l2off is 0 when there is none and
 * alloc is false; with alloc, a new zeroed table is made and hooked into
 * the L1 (written back after it, see qcow2.h).
 */
static int l2_lookup(struct qcow2 *s, uint64_t off, bool alloc, uint64_t *l2off,
		     uint8_t **t, uint64_t *idx)
{
	uint64_t l1i = off >> (s->cluster_bits + s->cluster_bits - 3);
	uint64_t o;
	int ret;

	*idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
	if (l1i >= s->l1_size)
		return qcow2_corruption(s, "guest offset %#llx beyond the L1 table",
					(unsigned long long)off);
	o = s->l1[l1i] & L1E_OFFSET_MASK;
	if (!o && alloc) {
		ret = qcow2_alloc_cluster(s, &o);
		if (ret < 0)
			return ret;
		ret = qcow2_mark_meta(s, o, s->cluster_size, true);
		if (ret < 0)
			return qcow2_corruption(s, "new L2 table at %#llx overlaps metadata",
						(unsigned long long)o);
		ret = qcow2_l2_new(s, o, t);
		if (ret < 0)
			return ret;
		s->l1[l1i] = o | QCOW_OFLAG_COPIED;
		if (s->l1_dirty_hi == s->l1_dirty_lo) {
			s->l1_dirty_lo = l1i;
			s->l1_dirty_hi = l1i + 1;
		} else {
			s->l1_dirty_lo = BLK_MIN(s->l1_dirty_lo, l1i);
			s->l1_dirty_hi = BLK_MAX(s->l1_dirty_hi, l1i + 1);
		}
		*l2off = o;
		return 0;
	}
	*l2off = o;
	if (!o)
		return 0;
	return qcow2_l2_get(s, o, t);
}

static int qcow2_map_read_locked(struct qcow2 *s, uint64_t off, uint64_t len, struct bmap *m)
{
	uint64_t cs = s->cluster_size, in = off & (cs - 1), l2off, idx, e, n;
	/* guest end of the range this L2 table maps */
	uint64_t table_end = (((off >> s->cluster_bits) | (s->l2_entries - 1)) + 1)
			     << s->cluster_bits;
	enum qtype t;
	uint8_t *tab;
	int ret;

	ret = l2_lookup(s, off, false, &l2off, &tab, &idx);
	if (ret < 0)
		return ret;
	if (!l2off) {
		m->kind = s->bs->backing ? BMAP_BACKING : BMAP_ZERO;
		m->len = BLK_MIN(len, table_end - off);
		return 0;
	}
	e = l2_entry(tab, idx);
	t = qtype(s, e);
	n = BLK_MIN(len, cs - in);
	if (t == Q_COMPRESSED) {
		ret = check_compressed(s, off, e);
		if (ret < 0)
			return ret;
		m->kind = BMAP_COMPRESSED;
		m->aux = e;
		m->len = n;
		m->counted = true;
		return 0;
	}
	ret = check_host(s, off, e);
	if (ret < 0)
		return ret;
	/* Extend over following entries that map the same way. */
	while (n < len && idx + 1 < s->l2_entries) {
		uint64_t e2 = l2_entry(tab, idx + 1);

		if (qtype(s, e2) != t)
			break;
		if (t == Q_NORMAL) {
			if ((e2 & L2E_OFFSET_MASK) != (e & L2E_OFFSET_MASK) + ((n + in) & ~(cs - 1)))
				break;
			ret = check_host(s, off + n, e2);
			if (ret < 0)
				return ret;
		}
		idx++;
		n += BLK_MIN(len - n, cs);
	}
	m->len = n;
	if (t == Q_NORMAL) {
		m->kind = BMAP_DATA;
		m->host = (e & L2E_OFFSET_MASK) + in;
		m->counted = true;
	} else if (t == Q_ZERO) {
		m->kind = BMAP_ZERO;
	} else {
		m->kind = s->bs->backing ? BMAP_BACKING : BMAP_ZERO;
	}
	return 0;
}

static int qcow2_map_read(struct bimg *bs, uint64_t off, uint64_t len, struct bmap *m)
{
	struct qcow2 *s = bs->priv;
	int ret = -EIO;

	pthread_mutex_lock(&s->lock);
	if (!s->corrupt)
		ret = qcow2_map_read_locked(s, off, len, m);
	if (ret == 0 && m->counted) {
		m->epoch = s->epoch & 1;
		__atomic_add_fetch(&s->inflight[m->epoch], 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int qcow2_read_compressed(struct bimg *bs, const struct bmap *m, uint64_t off,
				 void *buf, uint64_t len)
{
	struct qcow2 *s = bs->priv;
	int ret = 0;

	pthread_mutex_lock(&s->zlock);
	if (!s->zbuf)
		s->zbuf = malloc(s->cluster_size);
	if (!s->zbuf) {
		ret = -ENOMEM;
	} else if (s->zentry != m->aux) {
		s->zentry = 0;
		ret = decompress(s, m->aux, s->zbuf);
		if (!ret)
			s->zentry = m->aux;
	}
	if (!ret)
		memcpy(buf, s->zbuf + (off & (s->cluster_size - 1)), len);
	pthread_mutex_unlock(&s->zlock);
	return ret;
}

/* Release the host clusters an L2 entry held (after the next flush). */
static int free_entry(struct qcow2 *s, uint64_t e)
{
	enum qtype t = qtype(s, e);

	if (t == Q_COMPRESSED) {
		uint64_t nb = ((e >> s->csize_shift) & s->csize_mask) + 1;

		pthread_mutex_lock(&s->zlock);
		if (s->zentry == e)
			s->zentry = 0;
		pthread_mutex_unlock(&s->zlock);

		return qcow2_free_deferred(s, (e & s->coffset_mask) & ~511ull, nb * 512);
	}
	if ((t == Q_NORMAL || t == Q_ZERO) && (e & L2E_OFFSET_MASK))
		return qcow2_free_deferred(s, e & L2E_OFFSET_MASK, s->cluster_size);
	return 0;
}

/*
 * The data of a new cluster: with cache=none it bypasses the host page
 * cache like every other data write (the buffer is aligned for it).
 */
static int write_cluster(struct qcow2 *s, const uint8_t *buf, uint64_t host)
{
	uint64_t done = 0;

	if (s->bs->dfd < 0 || s->cluster_size % BLK_DIO_ALIGN)
		return qcow2_pwrite(s, buf, s->cluster_size, host);
	while (done < s->cluster_size) {
		ssize_t r = pwrite(s->bs->dfd, buf + done, s->cluster_size - done, host + done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += r;
	}
	if (host + s->cluster_size > s->file_end)
		s->file_end = host + s->cluster_size;
	return 0;
}

/* Copy-on-write of one cluster: everything here is synchronous. */
static int alloc_write(struct qcow2 *s, uint64_t off, uint64_t n, uint64_t l2off, uint64_t idx,
		       const struct iovec *iov, int iovcnt, size_t iov_off)
{
	uint64_t cs = s->cluster_size, in = off & (cs - 1), e, host;
	uint8_t *tab, *buf;
	enum qtype t;
	bool reuse;
	int ret;

	ret = qcow2_l2_get(s, l2off, &tab);
	if (ret < 0)
		return ret;
	e = l2_entry(tab, idx);
	t = qtype(s, e);
	ret = t == Q_COMPRESSED ? check_compressed(s, off, e) : check_host(s, off, e);
	if (ret < 0)
		return ret;
	/* A preallocated zero cluster that is ours alone can be written in place. */
	reuse = t == Q_ZERO && (e & L2E_OFFSET_MASK) && (e & QCOW_OFLAG_COPIED);
	if (posix_memalign((void **)&buf, BLK_DIO_ALIGN, cs))
		return -ENOMEM;
	if (n < cs) {
		uint64_t base = off - in;

		if (t == Q_UNALLOC)
			ret = s->bs->backing ? bimg_pread(s->bs->backing, base, buf, cs) : 0;
		if (t == Q_UNALLOC && !s->bs->backing)
			memset(buf, 0, cs);
		else if (t == Q_ZERO)
			memset(buf, 0, cs);
		else if (t == Q_COMPRESSED)
			ret = decompress(s, e, buf);
		else if (t == Q_NORMAL)
			ret = qcow2_pread(s, buf, cs, e & L2E_OFFSET_MASK);
		if (ret < 0)
			goto out;
	}
	if (iov)
		iov_copy_from(iov, iovcnt, iov_off, buf + in, n);
	else
		memset(buf + in, 0, n);
	if (reuse) {
		host = e & L2E_OFFSET_MASK;
	} else {
		ret = qcow2_alloc_cluster(s, &host);
		if (ret < 0)
			goto out;
	}
	ret = write_cluster(s, buf, host);
	if (ret < 0) {
		if (!reuse)
			qcow2_free_deferred(s, host, cs);
		goto out;
	}
	/* The refcount block may have evicted nothing of ours, but look again. */
	ret = qcow2_l2_get(s, l2off, &tab);
	if (ret < 0)
		goto out;
	l2_set(s, l2off, tab, idx, host | QCOW_OFLAG_COPIED);
	if (!reuse)
		ret = free_entry(s, e);
out:
	free(buf);
	return ret;
}

static int qcow2_map_write_locked(struct qcow2 *s, uint64_t off, uint64_t len,
				  const struct iovec *iov, int iovcnt, size_t iov_off,
				  struct bmap *m)
{
	uint64_t cs = s->cluster_size, in = off & (cs - 1), l2off, idx, e, n;
	uint8_t *tab;
	int ret;

	ret = l2_lookup(s, off, true, &l2off, &tab, &idx);
	if (ret < 0)
		return ret;
	e = l2_entry(tab, idx);
	n = BLK_MIN(len, cs - in);
	if (qtype(s, e) == Q_NORMAL && (e & QCOW_OFLAG_COPIED)) {
		ret = check_host(s, off, e);
		if (ret < 0)
			return ret;
		while (n < len && idx + 1 < s->l2_entries) {
			uint64_t e2 = l2_entry(tab, idx + 1);

			if (qtype(s, e2) != Q_NORMAL || !(e2 & QCOW_OFLAG_COPIED) ||
			    (e2 & L2E_OFFSET_MASK) != (e & L2E_OFFSET_MASK) + ((n + in) & ~(cs - 1)))
				break;
			ret = check_host(s, off + n, e2);
			if (ret < 0)
				return ret;
			idx++;
			n += BLK_MIN(len - n, cs);
		}
		m->kind = BMAP_DATA;
		m->host = (e & L2E_OFFSET_MASK) + in;
		m->len = n;
		m->counted = true;
		return 0;
	}
	ret = alloc_write(s, off, n, l2off, idx, iov, iovcnt, iov_off);
	m->kind = BMAP_DONE;
	m->len = n;
	return ret;
}

static int qcow2_map_write(struct bimg *bs, uint64_t off, uint64_t len,
			   const struct iovec *iov, int iovcnt, size_t iov_off, struct bmap *m)
{
	struct qcow2 *s = bs->priv;
	int ret = -EIO;

	pthread_mutex_lock(&s->lock);
	if (!s->corrupt)
		ret = qcow2_map_write_locked(s, off, len, iov, iovcnt, iov_off, m);
	if (ret == 0 && m->counted) {
		m->epoch = s->epoch & 1;
		__atomic_add_fetch(&s->inflight[m->epoch], 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Does entry e (or no table at all, e == 0) read as zeroes already? */
static bool reads_zero(struct qcow2 *s, uint64_t e)
{
	enum qtype t = qtype(s, e);

	return t == Q_ZERO || (t == Q_UNALLOC && !s->bs->backing);
}

/*
 * Whole clusters of [off, off+len) within one L2 table become `zero`
 * entries (zero flag) or unallocated; partial clusters are left to the
 * caller.  Returns the bytes handled in m.
 */
static int clear_clusters(struct qcow2 *s, uint64_t off, uint64_t len, bool discard,
			  struct bmap *m)
{
	uint64_t cs = s->cluster_size, in = off & (cs - 1), l2off, idx, n = 0;
	uint64_t size = s->bs->size;
	uint8_t *tab;
	int ret;

	m->kind = BMAP_DONE;
	if (in || (len < cs && off + len != size)) {
		/* Partial cluster (the image's last cluster may be short). */
		m->len = BLK_MIN(len, cs - in);
		if (discard)
			return 0;
		ret = l2_lookup(s, off, false, &l2off, &tab, &idx);
		if (ret < 0)
			return ret;
		if (l2off ? !reads_zero(s, l2_entry(tab, idx)) : !!s->bs->backing)
			m->kind = BMAP_FALLBACK;
		return 0;
	}
	ret = l2_lookup(s, off, false, &l2off, &tab, &idx);
	if (ret < 0)
		return ret;
	if (!l2off && (discard || !s->bs->backing)) {
		/* Nothing allocated here, and it reads as it should. */
		uint64_t table_end = (((off >> s->cluster_bits) | (s->l2_entries - 1)) + 1)
				     << s->cluster_bits;

		m->len = BLK_MIN(len, table_end - off);
		m->len = m->len >= cs || off + m->len == size ? m->len & ~(cs - 1) : m->len;
		if (!m->len)
			m->len = BLK_MIN(len, cs);
		return 0;
	}
	if (!l2off) {
		ret = l2_lookup(s, off, true, &l2off, &tab, &idx);
		if (ret < 0)
			return ret;
	}
	while (idx < s->l2_entries && n < len && (len - n >= cs || off + len == size)) {
		uint64_t e = l2_entry(tab, idx), ne;

		if (discard)
			ne = s->bs->backing ? QCOW_OFLAG_ZERO : 0;
		else
			ne = QCOW_OFLAG_ZERO;
		if (qtype(s, e) == Q_COMPRESSED)
			ret = check_compressed(s, off + n, e);
		else
			ret = check_host(s, off + n, e);
		if (ret < 0)
			return ret;
		if (!(discard && qtype(s, e) == Q_UNALLOC) && !(qtype(s, e) == Q_ZERO &&
							       !(e & L2E_OFFSET_MASK))) {
			l2_set(s, l2off, tab, idx, ne);
			ret = free_entry(s, e);
			if (ret < 0)
				return ret;
			/* free_entry may flush; the table stays cached but look again */
			ret = qcow2_l2_get(s, l2off, &tab);
			if (ret < 0)
				return ret;
		}
		n += BLK_MIN(cs, len - n);
		idx++;
	}
	m->len = n;
	return 0;
}

static int qcow2_discard(struct bimg *bs, uint64_t off, uint64_t len, struct bmap *m)
{
	struct qcow2 *s = bs->priv;
	int ret = -EIO;

	pthread_mutex_lock(&s->lock);
	if (!s->corrupt)
		ret = clear_clusters(s, off, len, true, m);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int qcow2_write_zeroes(struct bimg *bs, uint64_t off, uint64_t len, bool may_unmap,
			      struct bmap *m)
{
	struct qcow2 *s = bs->priv;
	int ret = -EIO;

	pthread_mutex_lock(&s->lock);
	if (!s->corrupt)
		ret = clear_clusters(s, off, len, false, m);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void qcow2_io_done(struct bimg *bs, unsigned epoch)
{
	struct qcow2 *s = bs->priv;

	__atomic_sub_fetch(&s->inflight[epoch], 1, __ATOMIC_ACQ_REL);
}

static int qcow2_flush_meta(struct bimg *bs)
{
	struct qcow2 *s = bs->priv;
	int ret = -EIO;

	pthread_mutex_lock(&s->lock);
	if (!s->corrupt)
		ret = qcow2_meta_flush(s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static bool qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && buf[0] == 'Q' && buf[1] == 'F' && buf[2] == 'I' && buf[3] == 0xfb;
}

const struct fmt_ops fmt_qcow2 = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open_image,
	.close = qcow2_close_image,
	.map_read = qcow2_map_read,
	.read_compressed = qcow2_read_compressed,
	.map_write = qcow2_map_write,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.io_done = qcow2_io_done,
	.flush_meta = qcow2_flush_meta,
	.resize = qcow2_resize,
};
