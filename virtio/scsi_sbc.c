/*
 * SBC-3 block commands on the block layer: READ CAPACITY, READ/WRITE in
 * all four CDB sizes, WRITE SAME (with UNMAP), UNMAP, SYNCHRONIZE CACHE,
 * VERIFY, and the medium commands START STOP UNIT and PREVENT ALLOW
 * MEDIUM REMOVAL (which act on the tray of a CD-ROM).
 *
 * Ranges are checked as "lba > blocks || count > blocks - lba" so that no
 * LBA/count pair can overflow.  A transfer must fit the initiator's
 * buffers; bigger buffers are fine and leave a residual.  Requests that
 * need several block operations (pattern WRITE SAME, UNMAP lists, FUA and
 * write-through flushes) chain them from the completions, one at a time.
 */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "block.h"
#include "scsi_int.h"

#define WS_CHUNK	(1u << 20)	/* pattern buffer of WRITE SAME */
#define VERIFY_CHUNK	(1u << 20)	/* medium read per step of VERIFY */

uint64_t scsi_sbc_max_xfer_blocks(const struct scsi_lun *l)
{
	return SCSI_MAX_XFER_BYTES / l->bs;
}

/* Blocks of the medium, or fail NOT READY; -1 when r was completed. */
static int64_t sbc_blocks(struct scsi_req *r)
{
	struct scsi_lun *l = r->lun;
	bool ready;
	int64_t nb;

	pthread_mutex_lock(&l->lock);
	ready = l->blk && !l->tray_open;
	nb = l->nb;
	pthread_mutex_unlock(&l->lock);
	if (!ready)
		return scsi_lun_check_ready(r) ? nb : -1;
	return nb;
}

static bool sbc_range_ok(struct scsi_req *r, uint64_t total, uint64_t lba, uint64_t n)
{
	if (lba > total || n > total - lba) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return false;
	}
	return true;
}

static bool sbc_writable(struct scsi_req *r)
{
	if (r->lun->readonly) {
		scsi_req_fail(r, SCSI_SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return false;
	}
	return true;
}

static bool sbc_wce(struct scsi_lun *l)
{
	bool wce;

	pthread_mutex_lock(&l->lock);
	wce = l->wce;
	pthread_mutex_unlock(&l->lock);
	return wce;
}

/* A new vector over the first len bytes of iov. */
static struct iovec *sbc_iov_slice(const struct iovec *iov, unsigned cnt, size_t len, int *out)
{
	struct iovec *v = g_new(struct iovec, cnt ? cnt : 1);
	int n = 0;

	for (unsigned i = 0; i < cnt && len; i++) {
		size_t take = MIN(iov[i].iov_len, len);

		if (!take)
			continue;
		v[n].iov_base = iov[i].iov_base;
		v[n++].iov_len = take;
		len -= take;
	}
	*out = n;
	return v;
}

/* ---- READ CAPACITY ---- */

void scsi_sbc_read_capacity(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;
	uint8_t d[32] = { 0 };
	int64_t nb;
	uint64_t last;

	if (c[0] == SCSI_SERVICE_ACTION_IN_16) {
		if ((c[1] & 0x1f) != SCSI_SAI_READ_CAPACITY_16 || c[1] & 0xe0) {
			scsi_req_bad_field(r, true, 1, 4);
			return;
		}
		if (!(c[14] & 1) && get_be64(c + 2)) {
			scsi_req_bad_field(r, true, 2, -1);
			return;
		}
	} else if (c[1] || (c[8] & 0xfe) || (!(c[8] & 1) && get_be32(c + 2))) {
		scsi_req_bad_field(r, true, c[1] ? 1 : 2, -1);
		return;
	}
	if ((nb = sbc_blocks(r)) < 0)
		return;
	last = nb ? nb - 1 : 0;
	if (c[0] == SCSI_READ_CAPACITY_10) {
		/* 0xffffffff tells the initiator to use READ CAPACITY (16). */
		put_be32(d, last > 0xffffffff ? 0xffffffff : last);
		put_be32(d + 4, l->bs);
		scsi_req_reply(r, d, 8, 8);
		return;
	}
	put_be64(d, last);
	put_be32(d + 8, l->bs);
	d[13] = l->pbs_exp;
	d[14] = l->discard ? 0x80 : 0;	/* LBPME */
	scsi_req_reply(r, d, 32, get_be32(c + 10));
}

/* ---- READ / WRITE ---- */

static void sbc_flush_done(void *opaque, int64_t ret)
{
	struct scsi_req *r = opaque;

	if (ret < 0 && scsi_req_io_failed(r, ret))
		return;
	scsi_req_good(r);
}

/* The data is written: make it durable first when FUA or WCE=0 asks. */
static void sbc_write_finish(struct scsi_req *r)
{
	int ret;

	if (r->fua || !sbc_wce(r->lun)) {
		ret = blk_flush(r->bq, sbc_flush_done, r);
		if (ret < 0)
			sbc_flush_done(r, ret);
		return;
	}
	scsi_req_good(r);
}

static void sbc_rw_done(void *opaque, int64_t ret)
{
	struct scsi_req *r = opaque;

	/* An ignored error (rerror/werror=ignore) counts as a full transfer. */
	if (ret < 0 && scsi_req_io_failed(r, ret))
		return;
	if (!r->write) {
		r->in_xfer = r->nb * r->lun->bs;
		scsi_req_good(r);
		return;
	}
	r->residual = r->out_len - r->nb * r->lun->bs;
	sbc_write_finish(r);
}

void scsi_sbc_rw(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;
	const struct iovec *iov;
	unsigned len_byte;
	uint64_t lba, n, bytes;
	int64_t total;
	int ret, cnt;

	switch (c[0]) {
	case SCSI_READ_6:
	case SCSI_WRITE_6:
		lba = get_be24(c + 1) & 0x1fffff;
		n = c[4] ? c[4] : 256;	/* 0 means 256 blocks in the 6-byte CDB */
		len_byte = 4;
		break;
	case SCSI_READ_10:
	case SCSI_WRITE_10:
		lba = get_be32(c + 2);
		n = get_be16(c + 7);
		len_byte = 7;
		break;
	case SCSI_READ_12:
	case SCSI_WRITE_12:
		lba = get_be32(c + 2);
		n = get_be32(c + 6);
		len_byte = 6;
		break;
	default:
		lba = get_be64(c + 2);
		n = get_be32(c + 10);
		len_byte = 10;
		break;
	}
	r->write = c[0] == SCSI_WRITE_6 || c[0] == SCSI_WRITE_10 || c[0] == SCSI_WRITE_12 ||
		   c[0] == SCSI_WRITE_16;
	if (c[0] != SCSI_READ_6 && c[0] != SCSI_WRITE_6) {
		/* RD/WRPROTECT needs protection information, which we lack. */
		if (c[1] & 0xe0) {
			scsi_req_bad_field(r, true, 1, 7);
			return;
		}
		if (c[1] & 0x01) {
			scsi_req_bad_field(r, true, 1, 0);
			return;
		}
		r->fua = c[1] & 0x08;
	}
	if (r->write && !sbc_writable(r))
		return;
	if (n > scsi_sbc_max_xfer_blocks(l)) {
		scsi_req_bad_field(r, true, len_byte, -1);
		return;
	}
	if ((total = sbc_blocks(r)) < 0 || !sbc_range_ok(r, total, lba, n))
		return;
	bytes = n * l->bs;
	if (bytes > (r->write ? r->out_len : r->in_len)) {
		/* The buffers cannot hold what the CDB asks to move. */
		scsi_req_bad_field(r, true, len_byte, -1);
		return;
	}
	if (!n) {
		r->residual = r->out_len;
		scsi_req_good(r);
		return;
	}
	r->lba = lba;
	r->nb = n;
	/* Buffers of exactly the transfer (the usual case) go as they are. */
	if (bytes == (r->write ? r->out_len : r->in_len)) {
		iov = r->write ? r->out : r->in;
		cnt = r->write ? r->out_cnt : r->in_cnt;
	} else {
		r->iov = sbc_iov_slice(r->write ? r->out : r->in, r->write ? r->out_cnt : r->in_cnt,
				       bytes, &r->iov_cnt);
		iov = r->iov;
		cnt = r->iov_cnt;
	}
	if (r->write)
		ret = blk_pwritev(r->bq, lba * l->bs, iov, cnt, sbc_rw_done, r);
	else
		ret = blk_preadv(r->bq, lba * l->bs, iov, cnt, sbc_rw_done, r);
	if (ret < 0)
		sbc_rw_done(r, ret);
}

/* ---- WRITE SAME ---- */

/* A loop, not a recursion: every submission may fail at once and be ignored. */
static void sbc_ws_next(void *opaque, int64_t ret)
{
	struct scsi_req *r = opaque;
	uint64_t end = (r->lba + r->nb) * r->lun->bs;
	struct iovec iov;

	for (;;) {
		if (ret < 0 && scsi_req_io_failed(r, ret))
			return;
		if (r->pos >= end) {
			sbc_write_finish(r);
			return;
		}
		iov.iov_base = r->buf;
		iov.iov_len = MIN((uint64_t)WS_CHUNK, end - r->pos);
		r->pos += iov.iov_len;
		/* blk_pwritev copies nothing: the vector must outlive the call. */
		r->iov = r->iov ? r->iov : g_new(struct iovec, 1);
		r->iov[0] = iov;
		ret = blk_pwritev(r->bq, r->pos - iov.iov_len, r->iov, 1, sbc_ws_next, r);
		if (ret >= 0)
			return;
	}
}

static bool sbc_is_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

void scsi_sbc_write_same(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;
	bool sixteen = c[0] == SCSI_WRITE_SAME_16;
	bool unmap = c[1] & 0x08, ndob = sixteen && (c[1] & 0x01);
	uint64_t lba = sixteen ? get_be64(c + 2) : get_be32(c + 2);
	uint64_t n = sixteen ? get_be32(c + 10) : get_be16(c + 7);
	unsigned len_byte = sixteen ? 10 : 7;
	int64_t total;
	uint8_t *block;
	int ret;

	/* Protection, ANCHOR, and the obsolete PBDATA/LBDATA. */
	if (c[1] & (sixteen ? 0xf6 : 0xf7)) {
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	if (!sbc_writable(r) || (total = sbc_blocks(r)) < 0)
		return;
	if (!n || n > SCSI_MAX_WS_BLOCKS) {
		scsi_req_bad_field(r, true, len_byte, -1);
		return;
	}
	if (!sbc_range_ok(r, total, lba, n))
		return;
	if (!ndob && r->out_len < l->bs) {
		scsi_req_bad_field(r, true, len_byte, -1);
		return;
	}
	r->lba = lba;
	r->nb = n;
	r->write = true;
	r->residual = ndob ? r->out_len : r->out_len - l->bs;
	block = g_malloc0(l->bs);
	if (!ndob)
		virtio_iov_to_buf(r->out, r->out_cnt, 0, block, l->bs);
	if (sbc_is_zero(block, l->bs)) {
		g_free(block);
		r->pos = (lba + n) * l->bs;	/* nothing left to write after it */
		ret = blk_write_zeroes(r->bq, lba * l->bs, n * l->bs, unmap, sbc_ws_next, r);
		if (ret < 0)
			sbc_ws_next(r, ret);
		return;
	}
	/* A pattern: repeat the block through a buffer of up to WS_CHUNK. */
	{
		size_t blen = MIN((uint64_t)WS_CHUNK, n * l->bs);

		r->buf = g_malloc(blen);
		for (size_t off = 0; off < blen; off += l->bs)
			memcpy(r->buf + off, block, l->bs);
		g_free(block);
	}
	r->pos = lba * l->bs;
	sbc_ws_next(r, 0);
}

/* ---- UNMAP ---- */

static void sbc_unmap_next(void *opaque, int64_t ret)
{
	struct scsi_req *r = opaque;
	struct scsi_lun *l = r->lun;
	const uint8_t *d;

	for (;;) {
		if (ret < 0 && scsi_req_io_failed(r, ret))
			return;
		/* Skip empty descriptors; r->nb counts the list. */
		while (r->step < r->nb && !get_be32(r->buf + 8 + 16 * r->step + 8))
			r->step++;
		if (r->step >= r->nb) {
			scsi_req_good(r);
			return;
		}
		d = r->buf + 8 + 16 * r->step++;
		ret = blk_discard(r->bq, get_be64(d) * l->bs, (uint64_t)get_be32(d + 8) * l->bs,
				  sbc_unmap_next, r);
		if (ret >= 0)
			return;
	}
}

void scsi_sbc_unmap(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	unsigned plen = get_be16(c + 7), bdl, n;
	int64_t total;

	if (c[1]) {		/* ANCHOR and reserved bits */
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	if (!sbc_writable(r) || (total = sbc_blocks(r)) < 0)
		return;
	if (!plen) {
		r->residual = r->out_len;
		scsi_req_good(r);
		return;
	}
	if (plen > r->out_len) {
		scsi_req_bad_field(r, true, 7, -1);
		return;
	}
	if (plen < 8) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	r->buf = g_malloc(plen);
	virtio_iov_to_buf(r->out, r->out_cnt, 0, r->buf, plen);
	bdl = get_be16(r->buf + 2);
	if (get_be16(r->buf) + 2u > plen || bdl + 8u > plen) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	n = bdl / 16;
	if (n > SCSI_MAX_UNMAP_DESC) {
		scsi_req_bad_field(r, false, 2, -1);
		return;
	}
	/* Check every descriptor before unmapping anything. */
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *d = r->buf + 8 + 16 * i;
		uint32_t cnt = get_be32(d + 8);

		if (cnt > SCSI_MAX_UNMAP_BLOCKS) {
			scsi_req_bad_field(r, false, 8 + 16 * i + 8, -1);
			return;
		}
		if (!sbc_range_ok(r, total, get_be64(d), cnt))
			return;
	}
	r->nb = n;
	r->step = 0;
	r->write = true;
	r->residual = r->out_len - plen;
	sbc_unmap_next(r, 0);
}

/* ---- SYNCHRONIZE CACHE, VERIFY ---- */

void scsi_sbc_sync_cache(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	bool sixteen = c[0] == SCSI_SYNCHRONIZE_CACHE_16;
	uint64_t lba = sixteen ? get_be64(c + 2) : get_be32(c + 2);
	uint64_t n = sixteen ? get_be32(c + 10) : get_be16(c + 7);
	int64_t total;
	int ret;

	if (c[1] & ~0x06) {	/* IMMED and the obsolete SYNC_NV are fine */
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	if ((total = sbc_blocks(r)) < 0)
		return;
	/* 0 blocks means "to the end of the medium". */
	if (!sbc_range_ok(r, total, lba, n ? n : (lba <= (uint64_t)total ? total - lba : 1)))
		return;
	r->write = true;
	ret = blk_flush(r->bq, sbc_flush_done, r);
	if (ret < 0)
		sbc_flush_done(r, ret);
}

/*
 * Compare what was read (r->iov[0]) with what the initiator sent, then read
 * the next piece: a chunk at a time, so a VERIFY costs at most 2 MiB.
 */
static void sbc_verify_next(void *opaque, int64_t ret)
{
	struct scsi_req *r = opaque;
	uint32_t bs = r->lun->bs;
	uint64_t total = r->nb * bs;
	size_t got = r->iov[0].iov_len, chunk;
	uint8_t *want = r->buf + VERIFY_CHUNK;

	for (;;) {
		/* A chunk whose read failed and was ignored compares as equal. */
		bool compare = ret >= 0;

		if (ret < 0 && scsi_req_io_failed(r, ret))
			return;
		/* BYTCHK 1 sent one block per block; BYTCHK 3 one block for all. */
		if (compare && got && r->step == 1)
			virtio_iov_to_buf(r->out, r->out_cnt, r->pos, want, got);
		for (size_t off = 0; compare && off < got; off += bs) {
			if (memcmp(r->buf + off, r->step == 3 ? want : want + off, bs)) {
				scsi_req_fail(r, SCSI_SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY);
				return;
			}
		}
		r->pos += got;
		if (r->pos >= total) {
			scsi_req_good(r);
			return;
		}
		chunk = MIN((uint64_t)VERIFY_CHUNK, total - r->pos);
		r->iov[0] = (struct iovec){ r->buf, chunk };
		ret = blk_preadv(r->bq, r->lba * bs + r->pos, r->iov, 1, sbc_verify_next, r);
		if (ret >= 0)
			return;
		got = chunk;
	}
}

void scsi_sbc_verify(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;
	unsigned bytchk = (c[1] >> 1) & 3, len_byte;
	uint64_t lba, n, sent;
	int64_t total;

	if (c[0] == SCSI_VERIFY_10) {
		lba = get_be32(c + 2);
		n = get_be16(c + 7);
		len_byte = 7;
	} else if (c[0] == SCSI_VERIFY_12) {
		lba = get_be32(c + 2);
		n = get_be32(c + 6);
		len_byte = 6;
	} else {
		lba = get_be64(c + 2);
		n = get_be32(c + 10);
		len_byte = 10;
	}
	if (c[1] & 0xe1 || bytchk == 2) {	/* VRPROTECT, reserved, BYTCHK 10b */
		scsi_req_bad_field(r, true, 1, c[1] & 0xe1 ? -1 : 2);
		return;
	}
	if (n > scsi_sbc_max_xfer_blocks(l)) {
		scsi_req_bad_field(r, true, len_byte, -1);
		return;
	}
	if ((total = sbc_blocks(r)) < 0 || !sbc_range_ok(r, total, lba, n))
		return;
	sent = bytchk == 1 ? n * l->bs : bytchk == 3 ? l->bs : 0;
	if (!n)
		sent = 0;
	if (sent > r->out_len) {
		scsi_req_bad_field(r, true, len_byte, -1);
		return;
	}
	r->residual = r->out_len - sent;
	if (!bytchk || !n) {
		/* Medium verification: the blocks exist, nothing to compare. */
		scsi_req_good(r);
		return;
	}
	r->lba = lba;
	r->nb = n;
	r->step = bytchk;
	r->pos = 0;
	/* A chunk of medium data, then a chunk (or the one block) sent. */
	r->buf = g_malloc(VERIFY_CHUNK + (bytchk == 1 ? VERIFY_CHUNK : l->bs));
	if (bytchk == 3)
		virtio_iov_to_buf(r->out, r->out_cnt, 0, r->buf + VERIFY_CHUNK, l->bs);
	r->iov = g_new0(struct iovec, 1);
	sbc_verify_next(r, 0);
}

/* ---- START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL ---- */

void scsi_sbc_start_stop(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;
	bool loej = c[4] & 0x02, start = c[4] & 0x01;

	if (c[1] & 0xfe || c[4] & 0x08) {
		scsi_req_bad_field(r, true, c[1] & 0xfe ? 1 : 4, -1);
		return;
	}
	/* A power condition overrides LOEJ and START (SBC-3 5.25). */
	if (c[4] >> 4 || !loej) {
		scsi_req_good(r);
		return;
	}
	if (l->type != SCSI_LUN_CDROM) {
		scsi_req_bad_field(r, true, 4, 1);
		return;
	}
	pthread_mutex_lock(&l->lock);
	if (!start && l->prevent) {
		pthread_mutex_unlock(&l->lock);
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_MEDIUM_REMOVAL_PREVENTED);
		return;
	}
	if (l->tray_open == start) {
		l->tray_open = !start;
		if (l->blk)
			l->media_event = start ? MEC_NEW_MEDIA : MEC_MEDIA_REMOVAL;
		scsi_lun_tray_moved(l, !start);
	}
	pthread_mutex_unlock(&l->lock);
	scsi_req_good(r);
}

void scsi_sbc_prevent_allow(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;

	if (c[4] & 0xfe) {	/* medium changer bit and reserved bits */
		scsi_req_bad_field(r, true, 4, -1);
		return;
	}
	pthread_mutex_lock(&l->lock);
	l->prevent = l->type == SCSI_LUN_CDROM && (c[4] & 1);
	pthread_mutex_unlock(&l->lock);
	scsi_req_good(r);
}
