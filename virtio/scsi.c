/*
 * SCSI target core: logical units, command dispatch, sense data, unit
 * attention conditions, REQUEST SENSE, TEST UNIT READY, and the bus that
 * answers REPORT LUNS and the LUNs that do not exist.
 *
 * Every command passes the same gate before its handler runs: a CDB long
 * enough for its group, no NACA (we do not support ACA), the LUN type
 * knows the opcode, a pending unit attention is reported (except to the
 * commands SPC-4 and MMC-6 exempt), and commands that read the medium find
 * one.  Handlers then validate their own fields and end the request with
 * exactly one of scsi_req_good/fail/reply, or scsi_req_io_failed.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "log.h"
#include "scsi_int.h"
#include "vmstate.h"

/* ---- iovec helpers ---- */

size_t scsi_iov_size(const struct iovec *iov, unsigned cnt)
{
	size_t n = 0;

	for (unsigned i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* ---- completion and sense ---- */

void scsi_req_finish(struct scsi_req *r)
{
	if (r->in_len)
		r->residual = r->in_len - r->in_xfer;
	else if (r->status != SCSI_STATUS_GOOD)
		r->residual = r->out_len;
	g_free(r->iov);
	g_free(r->buf);
	r->iov = NULL;
	r->buf = NULL;
	r->done(r);
}

/* Sense data in fixed (0x70) or descriptor (0x72) format; sks is SKSV|field. */
static unsigned scsi_build_sense(uint8_t *s, bool desc, uint8_t key, unsigned asc_ascq,
				 uint32_t sks)
{
	if (desc) {
		memset(s, 0, 16);
		s[0] = 0x72;
		s[1] = key;
		s[2] = asc_ascq >> 8;
		s[3] = asc_ascq;
		if (!sks)
			return 8;
		s[7] = 8;
		s[8] = 0x02;	/* sense key specific descriptor */
		s[9] = 0x06;
		s[12] = sks >> 16;
		s[13] = sks >> 8;
		s[14] = sks;
		return 16;
	}
	memset(s, 0, 18);
	s[0] = 0x70;
	s[2] = key;
	s[7] = 10;
	s[12] = asc_ascq >> 8;
	s[13] = asc_ascq;
	s[15] = sks >> 16;
	s[16] = sks >> 8;
	s[17] = sks;
	return 18;
}

static bool scsi_lun_dsense(struct scsi_lun *l)
{
	bool d;

	if (!l)
		return false;
	pthread_mutex_lock(&l->lock);
	d = l->dsense;
	pthread_mutex_unlock(&l->lock);
	return d;
}

static void scsi_req_sense(struct scsi_req *r, uint8_t key, unsigned asc_ascq, uint32_t sks)
{
	r->status = SCSI_STATUS_CHECK_CONDITION;
	r->sense_len = scsi_build_sense(r->sense, scsi_lun_dsense(r->lun), key, asc_ascq, sks);
	r->in_xfer = 0;
}

void scsi_req_check(struct scsi_req *r, uint8_t key, uint8_t asc, uint8_t ascq)
{
	scsi_req_sense(r, key, asc << 8 | ascq, 0);
}

void scsi_req_fail(struct scsi_req *r, uint8_t key, unsigned asc_ascq)
{
	scsi_req_sense(r, key, asc_ascq, 0);
	scsi_req_finish(r);
}

void scsi_req_bad_field(struct scsi_req *r, bool cdb, unsigned byte, int bit)
{
	uint32_t sks = 0x800000 | (cdb ? 0x400000 : 0) | (byte & 0xffff);

	if (bit >= 0)
		sks |= 0x080000 | (bit & 7) << 16;
	scsi_req_sense(r, SCSI_SK_ILLEGAL_REQUEST,
		       cdb ? ASC_INVALID_FIELD_CDB : ASC_INVALID_FIELD_PARAM, sks);
	scsi_req_finish(r);
}

void scsi_req_good(struct scsi_req *r)
{
	r->status = SCSI_STATUS_GOOD;
	r->sense_len = 0;
	scsi_req_finish(r);
}

void scsi_req_reply(struct scsi_req *r, const void *buf, size_t len, size_t alloc)
{
	size_t n = MIN(len, alloc);

	if (n > r->in_len) {
		/* The initiator asked for more than its buffers hold. */
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
		return;
	}
	r->in_xfer = virtio_iov_from_buf(r->in, r->in_cnt, 0, buf, n);
	scsi_req_good(r);
}

/* CHECK CONDITION with the sense matching a block layer error. */
static void scsi_req_io_sense(struct scsi_req *r, int err)
{
	switch (err) {
	case -ENOSPC:
		scsi_req_fail(r, SCSI_SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED);
		break;
	case -EROFS:
	case -EPERM:
	case -EACCES:
		scsi_req_fail(r, SCSI_SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		break;
	case -EIO:
	case -ENODATA:
		scsi_req_fail(r, SCSI_SK_MEDIUM_ERROR,
			      r->write ? ASC_WRITE_ERROR : ASC_UNRECOVERED_READ);
		break;
	default:
		scsi_req_fail(r, SCSI_SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		break;
	}
}

bool scsi_req_io_failed(struct scsi_req *r, int err)
{
	enum scsi_io_action a = r->io_error ? r->io_error(r, r->write, -err) : SCSI_IO_REPORT;

	switch (a) {
	case SCSI_IO_IGNORE:
		return false;
	case SCSI_IO_STOP:
		/* Nothing of this attempt stays: the retry starts over. */
		r->stopped = true;
		r->status = SCSI_STATUS_GOOD;
		r->sense_len = 0;
		r->in_xfer = 0;
		scsi_req_finish(r);
		return true;
	default:
		scsi_req_io_sense(r, err);
		return true;
	}
}

bool scsi_lun_check_ready(struct scsi_req *r)
{
	struct scsi_lun *l = r->lun;
	bool open, present;

	pthread_mutex_lock(&l->lock);
	open = l->tray_open;
	present = l->blk != NULL;
	pthread_mutex_unlock(&l->lock);
	if (present && !open)
		return true;
	scsi_req_fail(r, SCSI_SK_NOT_READY,
		      open ? ASC_MEDIUM_NOT_PRESENT_OPEN : ASC_MEDIUM_NOT_PRESENT);
	return false;
}

/* ---- unit attention ---- */

static const struct { unsigned bit, asc; } scsi_ua_order[] = {
	{ SCSI_UA_POWER_ON, ASC_POWER_ON_RESET },
	{ SCSI_UA_LUN_RESET, ASC_LUN_RESET },
	{ SCSI_UA_NEXUS_LOSS, ASC_NEXUS_LOSS },
	{ SCSI_UA_MEDIUM_CHANGED, ASC_MEDIUM_CHANGED },
	{ SCSI_UA_CAPACITY_CHANGED, ASC_CAPACITY_CHANGED },
	{ SCSI_UA_REPORTED_LUNS, ASC_REPORTED_LUNS_CHANGED },
};

/* Take the highest-precedence pending UA: its ASC/ASCQ, or 0. */
static unsigned scsi_lun_take_ua(struct scsi_lun *l)
{
	unsigned asc = 0;

	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < G_N_ELEMENTS(scsi_ua_order); i++) {
		if (l->ua & scsi_ua_order[i].bit) {
			__atomic_and_fetch(&l->ua, ~scsi_ua_order[i].bit, __ATOMIC_RELAXED);
			asc = scsi_ua_order[i].asc;
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return asc;
}

void scsi_lun_set_ua(struct scsi_lun *l, unsigned ua)
{
	pthread_mutex_lock(&l->lock);
	/* A reset supersedes the reset conditions reported before it. */
	if (ua & (SCSI_UA_POWER_ON | SCSI_UA_LUN_RESET | SCSI_UA_NEXUS_LOSS))
		__atomic_and_fetch(&l->ua, ~(SCSI_UA_POWER_ON | SCSI_UA_LUN_RESET | SCSI_UA_NEXUS_LOSS),
				   __ATOMIC_RELAXED);
	__atomic_or_fetch(&l->ua, ua, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&l->lock);
}

void scsi_lun_capacity_changed(struct scsi_lun *l)
{
	pthread_mutex_lock(&l->lock);
	if (l->blk) {
		l->nb = blk_size(l->blk) / l->bs;
		__atomic_or_fetch(&l->ua, SCSI_UA_CAPACITY_CHANGED, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&l->lock);
}

void scsi_lun_reset(struct scsi_lun *l, unsigned ua)
{
	pthread_mutex_lock(&l->lock);
	l->prevent = false;
	l->wce = l->wce_default;
	l->dsense = false;
	pthread_mutex_unlock(&l->lock);
	scsi_lun_set_ua(l, ua);
}

/* ---- simple commands ---- */

static void scsi_test_unit_ready(struct scsi_req *r)
{
	if (scsi_lun_check_ready(r))
		scsi_req_good(r);
}

/* REQUEST SENSE (SPC-4 6.39): a pending UA, no medium, or no sense. */
static void scsi_request_sense(struct scsi_req *r)
{
	struct scsi_lun *l = r->lun;
	bool desc = r->cdb[1] & 1;
	uint8_t s[18];
	unsigned len, asc = 0;
	uint8_t key = SCSI_SK_NO_SENSE;

	if (r->cdb[1] & 0xfe) {
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	if (!l) {
		key = SCSI_SK_ILLEGAL_REQUEST;
		asc = ASC_LUN_NOT_SUPPORTED;
	} else if ((asc = scsi_lun_take_ua(l))) {
		key = SCSI_SK_UNIT_ATTENTION;
	} else {
		pthread_mutex_lock(&l->lock);
		if (!l->blk || l->tray_open) {
			key = SCSI_SK_NOT_READY;
			asc = l->tray_open ? ASC_MEDIUM_NOT_PRESENT_OPEN : ASC_MEDIUM_NOT_PRESENT;
		}
		pthread_mutex_unlock(&l->lock);
	}
	len = scsi_build_sense(s, desc, key, asc, 0);
	scsi_req_reply(r, s, len, r->cdb[4]);
}

/* ---- dispatch ---- */

enum {
	F_NO_UA = 1 << 0,	/* not failed by a pending unit attention */
	F_DISK = 1 << 1,	/* direct-access only */
	F_CD = 1 << 2,		/* MMC only */
	F_OUT = 1 << 3,		/* may carry data-out */
	F_IN = 1 << 4,		/* may carry data-in */
};

struct scsi_cmd {
	uint8_t opcode;
	uint8_t flags;
	void (*fn)(struct scsi_req *r);
};

static const struct scsi_cmd scsi_cmds[] = {
	{ SCSI_TEST_UNIT_READY, 0, scsi_test_unit_ready },
	{ SCSI_REQUEST_SENSE, F_NO_UA | F_IN, scsi_request_sense },
	{ SCSI_INQUIRY, F_NO_UA | F_IN, scsi_spc_inquiry },
	{ SCSI_MODE_SENSE_6, F_IN, scsi_spc_mode_sense },
	{ SCSI_MODE_SENSE_10, F_IN, scsi_spc_mode_sense },
	{ SCSI_MODE_SELECT_6, F_OUT, scsi_spc_mode_select },
	{ SCSI_MODE_SELECT_10, F_OUT, scsi_spc_mode_select },
	{ SCSI_START_STOP_UNIT, 0, scsi_sbc_start_stop },
	{ SCSI_PREVENT_ALLOW, 0, scsi_sbc_prevent_allow },
	{ SCSI_READ_CAPACITY_10, F_IN, scsi_sbc_read_capacity },
	{ SCSI_SERVICE_ACTION_IN_16, F_IN, scsi_sbc_read_capacity },
	{ SCSI_READ_6, F_IN, scsi_sbc_rw },
	{ SCSI_READ_10, F_IN, scsi_sbc_rw },
	{ SCSI_READ_12, F_IN, scsi_sbc_rw },
	{ SCSI_READ_16, F_IN, scsi_sbc_rw },
	{ SCSI_WRITE_6, F_OUT, scsi_sbc_rw },
	{ SCSI_WRITE_10, F_OUT, scsi_sbc_rw },
	{ SCSI_WRITE_12, F_OUT, scsi_sbc_rw },
	{ SCSI_WRITE_16, F_OUT, scsi_sbc_rw },
	{ SCSI_WRITE_SAME_10, F_DISK | F_OUT, scsi_sbc_write_same },
	{ SCSI_WRITE_SAME_16, F_DISK | F_OUT, scsi_sbc_write_same },
	{ SCSI_UNMAP, F_DISK | F_OUT, scsi_sbc_unmap },
	{ SCSI_SYNCHRONIZE_CACHE_10, 0, scsi_sbc_sync_cache },
	{ SCSI_SYNCHRONIZE_CACHE_16, 0, scsi_sbc_sync_cache },
	{ SCSI_VERIFY_10, F_OUT, scsi_sbc_verify },
	{ SCSI_VERIFY_12, F_OUT, scsi_sbc_verify },
	{ SCSI_VERIFY_16, F_OUT, scsi_sbc_verify },
	{ SCSI_READ_TOC, F_CD | F_IN, scsi_mmc_read_toc },
	{ SCSI_GET_CONFIGURATION, F_CD | F_NO_UA | F_IN, scsi_mmc_get_configuration },
	{ SCSI_GET_EVENT_STATUS, F_CD | F_NO_UA | F_IN, scsi_mmc_get_event_status },
	{ SCSI_READ_DISC_INFORMATION, F_CD | F_IN, scsi_mmc_read_disc_info },
};

static const struct scsi_cmd *scsi_cmd_find(uint8_t opcode)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(scsi_cmds); i++)
		if (scsi_cmds[i].opcode == opcode)
			return &scsi_cmds[i];
	return NULL;
}

/* CDB length from the group code (SPC-4 4.2.5.1); 0 for groups we lack. */
static unsigned scsi_cdb_len(uint8_t opcode)
{
	static const uint8_t len[8] = { 6, 10, 10, 0, 16, 12, 0, 0 };

	return len[opcode >> 5];
}

static void scsi_req_start(struct scsi_req *r, struct scsi_lun *l)
{
	r->lun = l;
	r->status = SCSI_STATUS_GOOD;
	r->sense_len = 0;
	r->in_xfer = 0;
	r->residual = 0;
	r->out_len = scsi_iov_size(r->out, r->out_cnt);
	r->in_len = scsi_iov_size(r->in, r->in_cnt);
	r->iov = NULL;
	r->iov_cnt = 0;
	r->buf = NULL;
	r->err = 0;
	r->stopped = false;
	r->write = false;
	r->fua = false;
}

/* The checks common to all commands; false when r was completed. */
static bool scsi_req_gate(struct scsi_req *r, unsigned *flags)
{
	unsigned need = r->cdb_len ? scsi_cdb_len(r->cdb[0]) : 0;
	const struct scsi_cmd *c;

	if (!need || r->cdb_len < need) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return false;
	}
	c = scsi_cmd_find(r->cdb[0]);
	if (!c || (c->flags & F_DISK && r->lun && r->lun->type != SCSI_LUN_DISK) ||
	    (c->flags & F_CD && r->lun && r->lun->type != SCSI_LUN_CDROM)) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return false;
	}
	/* NACA set asks for ACA, which we do not offer (SAM-5 5.9.1.3). */
	if (r->cdb[need - 1] & 0x04) {
		scsi_req_bad_field(r, true, need - 1, 2);
		return false;
	}
	/* Data in a direction the command never moves is a transport error. */
	if ((r->out_len && !(c->flags & F_OUT)) || (r->in_len && r->out_len)) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
		return false;
	}
	*flags = c->flags;
	return true;
}

void scsi_req_submit(struct scsi_lun *l, struct scsi_req *r)
{
	const struct scsi_cmd *c;
	unsigned flags, asc;

	scsi_req_start(r, l);
	if (l->pt) {
		scsi_pt_submit(r);
		return;
	}
	if (!scsi_req_gate(r, &flags))
		return;
	/* Unlocked peek first: attentions are rare, commands are not. */
	if (!(flags & F_NO_UA) && __atomic_load_n(&l->ua, __ATOMIC_RELAXED) &&
	    (asc = scsi_lun_take_ua(l))) {
		scsi_req_fail(r, SCSI_SK_UNIT_ATTENTION, asc);
		return;
	}
	c = scsi_cmd_find(r->cdb[0]);
	c->fn(r);
}

/* ---- logical units ---- */

static void scsi_copy_id(char *dst, size_t size, const char *src)
{
	/* Space padded, as INQUIRY wants; the caller NUL-terminates. */
	size_t n = MIN(strlen(src), size - 1);

	memset(dst, ' ', size - 1);
	memcpy(dst, src, n);
	dst[size - 1] = 0;
}

static bool scsi_is_block_size(uint32_t v, uint32_t min)
{
	return v >= min && v <= 32768 && !(v & (v - 1));
}

struct scsi_lun *scsi_lun_new(const struct scsi_lun_config *cfg, char *err, size_t errlen)
{
	bool cd = cfg->type == SCSI_LUN_CDROM;
	uint32_t bs = cfg->block_size ? cfg->block_size : cd ? 2048 : 512;
	uint32_t pbs = cfg->physical_block_size ? cfg->physical_block_size : bs;
	struct scsi_lun *l;

	if (cfg->type != SCSI_LUN_DISK && !cd) {
		snprintf(err, errlen, "scsi: unsupported device type %d", cfg->type);
		return NULL;
	}
	if (!scsi_is_block_size(bs, 512) || !scsi_is_block_size(pbs, bs) || (cd && bs != 2048)) {
		snprintf(err, errlen, "scsi: logical_block_size=%u,physical_block_size=%u: "
			 "powers of two from 512 to 32768, physical not below logical"
			 "%s", bs, pbs, cd ? " (2048 for a CD-ROM)" : "");
		return NULL;
	}
	if (!cd && !cfg->blk) {
		snprintf(err, errlen, "scsi: a disk needs a drive");
		return NULL;
	}
	if (cfg->serial && strlen(cfg->serial) > 36) {
		snprintf(err, errlen, "scsi: serial=%s: at most 36 characters", cfg->serial);
		return NULL;
	}
	l = g_new0(struct scsi_lun, 1);
	l->type = cfg->type;
	l->bs = bs;
	l->pbs_exp = __builtin_ctz(pbs / bs);
	l->readonly = cd || cfg->readonly;
	l->discard = cfg->discard && !cd;
	l->serial = g_strdup(cfg->serial);
	l->name = g_strdup(cfg->name ? cfg->name : "");
	l->wwn = cfg->wwn;
	scsi_copy_id(l->vendor, sizeof(l->vendor), cfg->vendor ? cfg->vendor : "VIREO");
	scsi_copy_id(l->product, sizeof(l->product), cfg->product ? cfg->product :
		     cd ? "VIREO CD-ROM" : "VIREO HARDDISK");
	scsi_copy_id(l->revision, sizeof(l->revision), cfg->revision ? cfg->revision : "1.0");
	l->wce_default = cfg->write_cache;
	l->rotation_rate = cfg->rotation_rate;
	l->tray_moved = cfg->tray_moved;
	l->tray_opaque = cfg->tray_opaque;
	pthread_mutex_init(&l->lock, NULL);
	l->wce = l->wce_default;
	l->blk = cfg->blk;
	l->nb = cfg->blk ? blk_size(cfg->blk) / bs : 0;
	l->ua = SCSI_UA_POWER_ON;
	return l;
}

void scsi_lun_free(struct scsi_lun *l)
{
	if (!l)
		return;
	if (l->pt && l->pt->close)
		l->pt->close(l->pt_opaque);
	pthread_mutex_destroy(&l->lock);
	g_free(l->serial);
	g_free(l->name);
	g_free(l);
}

enum scsi_lun_type scsi_lun_type(const struct scsi_lun *l)
{
	return l->type;
}

struct blk *scsi_lun_blk(const struct scsi_lun *l)
{
	return l->blk;
}

bool scsi_lun_medium_locked(struct scsi_lun *l)
{
	bool p;

	pthread_mutex_lock(&l->lock);
	p = l->prevent;
	pthread_mutex_unlock(&l->lock);
	return p;
}

void scsi_lun_get_medium(struct scsi_lun *l, struct scsi_medium_state *st)
{
	pthread_mutex_lock(&l->lock);
	st->blk = l->blk;
	st->tray_open = l->tray_open;
	st->locked = l->prevent;
	pthread_mutex_unlock(&l->lock);
}

void scsi_lun_tray_moved(struct scsi_lun *l, bool open)
{
	if (l->tray_moved)
		l->tray_moved(l->tray_opaque, open);
}

int scsi_lun_change_medium(struct scsi_lun *l, struct blk *blk, bool force, struct blk **old)
{
	bool was_open;

	if (l->type != SCSI_LUN_CDROM)
		return -ENOTSUP;
	pthread_mutex_lock(&l->lock);
	if (l->prevent && !force) {
		/* Ask the guest to let go, as a real drive's eject button does. */
		l->media_event = MEC_EJECT_REQUEST;
		pthread_mutex_unlock(&l->lock);
		return -EBUSY;
	}
	if (old)
		*old = l->blk;
	was_open = l->tray_open;
	l->blk = blk;
	l->nb = blk ? blk_size(blk) / l->bs : 0;
	l->tray_open = !blk;
	l->prevent = false;
	l->media_event = blk ? MEC_NEW_MEDIA : MEC_MEDIA_REMOVAL;
	if (blk)
		__atomic_or_fetch(&l->ua, SCSI_UA_MEDIUM_CHANGED, __ATOMIC_RELAXED);
	/* The old disc comes out of an open tray, the new one goes in and it closes. */
	if (!was_open)
		scsi_lun_tray_moved(l, true);
	if (blk)
		scsi_lun_tray_moved(l, false);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* ---- migration ---- */

#define SCSI_UA_ALL	(SCSI_UA_POWER_ON | SCSI_UA_LUN_RESET | SCSI_UA_NEXUS_LOSS | \
			 SCSI_UA_MEDIUM_CHANGED | SCSI_UA_REPORTED_LUNS | \
			 SCSI_UA_CAPACITY_CHANGED)

void scsi_lun_save(struct scsi_lun *l, struct vmstate_out *o)
{
	pthread_mutex_lock(&l->lock);
	vmstate_put_u32(o, "ua", __atomic_load_n(&l->ua, __ATOMIC_RELAXED));
	vmstate_put_bool(o, "wce", l->wce);
	vmstate_put_bool(o, "dsense", l->dsense);
	vmstate_put_bool(o, "prevent", l->prevent);
	vmstate_put_bool(o, "tray-open", l->tray_open);
	vmstate_put_u8(o, "media-event", l->media_event);
	vmstate_put_bool(o, "medium", l->blk != NULL);
	pthread_mutex_unlock(&l->lock);
}

int scsi_lun_load(struct scsi_lun *l, struct vmstate_in *in)
{
	bool wce, dsense, prevent, tray_open, medium;
	uint8_t media_event;
	uint32_t ua;
	int ret;

	if ((ret = vmstate_get_u32(in, "ua", &ua)) ||
	    (ret = vmstate_get_bool(in, "wce", &wce)) ||
	    (ret = vmstate_get_bool(in, "dsense", &dsense)) ||
	    (ret = vmstate_get_bool(in, "prevent", &prevent)) ||
	    (ret = vmstate_get_bool(in, "tray-open", &tray_open)) ||
	    (ret = vmstate_get_u8(in, "media-event", &media_event)) ||
	    (ret = vmstate_get_bool(in, "medium", &medium)))
		return ret;
	if (ua & ~SCSI_UA_ALL || media_event > MEC_MEDIA_REMOVAL)
		return vmstate_fail(in, "unit attentions 0x%x or media event %u unknown", ua,
				    media_event);
	pthread_mutex_lock(&l->lock);
	if (medium != (l->blk != NULL)) {
		pthread_mutex_unlock(&l->lock);
		return vmstate_fail(in, "the source's unit %s a medium, this one %s", medium ?
				    "has" : "has no", medium ? "has none" : "has one");
	}
	__atomic_store_n(&l->ua, ua, __ATOMIC_RELAXED);
	l->wce = wce;
	l->dsense = dsense;
	l->prevent = prevent;
	l->tray_open = tray_open;
	l->media_event = media_event;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* ---- the bus ---- */

void scsi_lun_encode(unsigned lun, uint8_t out[8])
{
	memset(out, 0, 8);
	if (lun < 256) {
		out[1] = lun;		/* peripheral device addressing */
	} else {
		out[0] = 0x40 | (lun >> 8);	/* flat space addressing */
		out[1] = lun;
	}
}

void scsi_bus_init(struct scsi_bus *b)
{
	memset(b, 0, sizeof(*b));
	pthread_rwlock_init(&b->lock, NULL);
}

void scsi_bus_destroy(struct scsi_bus *b)
{
	for (unsigned t = 0; t < SCSI_MAX_TARGET; t++) {
		if (!b->targets[t])
			continue;
		for (unsigned i = 0; i < SCSI_MAX_LUN; i++)
			scsi_lun_free(b->targets[t][i]);
		g_free(b->targets[t]);
	}
	pthread_rwlock_destroy(&b->lock);
}

int scsi_bus_attach(struct scsi_bus *b, unsigned target, unsigned lun, struct scsi_lun *l)
{
	int ret = 0;

	if (target >= SCSI_MAX_TARGET || lun >= SCSI_MAX_LUN)
		return -ERANGE;
	pthread_rwlock_wrlock(&b->lock);
	if (!b->targets[target])
		b->targets[target] = g_new0(struct scsi_lun *, SCSI_MAX_LUN);
	if (b->targets[target][lun]) {
		ret = -EEXIST;
	} else {
		b->targets[target][lun] = l;
		b->target_luns[target]++;
		b->nr_luns++;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

struct scsi_lun *scsi_bus_detach(struct scsi_bus *b, unsigned target, unsigned lun)
{
	struct scsi_lun *l = NULL;

	if (target >= SCSI_MAX_TARGET || lun >= SCSI_MAX_LUN)
		return NULL;
	pthread_rwlock_wrlock(&b->lock);
	if (b->targets[target] && b->targets[target][lun]) {
		l = b->targets[target][lun];
		b->targets[target][lun] = NULL;
		b->target_luns[target]--;
		b->nr_luns--;
	}
	pthread_rwlock_unlock(&b->lock);
	return l;
}

struct scsi_lun *scsi_bus_find(struct scsi_bus *b, unsigned target, unsigned lun)
{
	struct scsi_lun *l = NULL;

	if (target >= SCSI_MAX_TARGET || lun >= SCSI_MAX_LUN)
		return NULL;
	pthread_rwlock_rdlock(&b->lock);
	if (b->targets[target])
		l = b->targets[target][lun];
	pthread_rwlock_unlock(&b->lock);
	return l;
}

void scsi_bus_foreach(struct scsi_bus *b, void (*fn)(struct scsi_lun *l, unsigned target,
						     unsigned lun, void *opaque), void *opaque)
{
	pthread_rwlock_rdlock(&b->lock);
	for (unsigned t = 0; t < SCSI_MAX_TARGET; t++) {
		if (!b->targets[t])
			continue;
		for (unsigned i = 0; i < SCSI_MAX_LUN; i++)
			if (b->targets[t][i])
				fn(b->targets[t][i], t, i, opaque);
	}
	pthread_rwlock_unlock(&b->lock);
}

unsigned scsi_bus_target_luns(struct scsi_bus *b, unsigned target)
{
	unsigned n;

	if (target >= SCSI_MAX_TARGET)
		return 0;
	pthread_rwlock_rdlock(&b->lock);
	n = b->target_luns[target];
	pthread_rwlock_unlock(&b->lock);
	return n;
}

/* REPORT LUNS (SPC-4 6.33): every LUN of the target, for select 0-2. */
static void scsi_report_luns(struct scsi_bus *b, unsigned target, struct scsi_req *r)
{
	uint32_t alloc = get_be32(r->cdb + 6);
	uint8_t select = r->cdb[2];
	unsigned n = 0;
	uint8_t *buf;

	if (select > 2) {
		scsi_req_bad_field(r, true, 2, -1);
		return;
	}
	if (alloc < 16) {
		scsi_req_bad_field(r, true, 6, -1);
		return;
	}
	pthread_rwlock_rdlock(&b->lock);
	buf = g_malloc0(8 + 8 * (size_t)SCSI_MAX_LUN);
	/* select 1 asks for well-known LUNs only; we have none. */
	if (select != 1 && b->targets[target])
		for (unsigned i = 0; i < SCSI_MAX_LUN; i++)
			if (b->targets[target][i])
				scsi_lun_encode(i, buf + 8 + 8 * n++);
	pthread_rwlock_unlock(&b->lock);
	put_be32(buf, 8 * n);
	r->buf = buf;		/* freed at completion */
	scsi_req_reply(r, buf, 8 + 8 * (size_t)n, alloc);
}

/* INQUIRY to a LUN that does not exist (SPC-4 6.6.2: qualifier 011b). */
static void scsi_inquiry_no_lun(struct scsi_req *r)
{
	uint8_t d[36] = { 0x7f, 0, 5, 0x12, 31 };

	if (r->cdb[1] & 0x01) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
		return;
	}
	memcpy(d + 8, "VIREO   ", 8);
	memset(d + 16, ' ', 20);
	scsi_req_reply(r, d, sizeof(d), get_be16(r->cdb + 3));
}

void scsi_bus_submit(struct scsi_bus *b, unsigned target, unsigned lun, struct scsi_req *r)
{
	struct scsi_lun *l = scsi_bus_find(b, target, lun);

	if (l && (!r->cdb_len || r->cdb[0] != SCSI_REPORT_LUNS)) {
		scsi_req_submit(l, r);
		return;
	}
	scsi_req_start(r, l);
	if (r->cdb_len && r->cdb[0] == SCSI_REPORT_LUNS) {
		if (r->cdb_len < 12 || (r->cdb[11] & 0x04)) {
			scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
			return;
		}
		if (r->out_len) {
			scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
			return;
		}
		/* REPORT LUNS reports the change, so it clears that condition. */
		if (l) {
			pthread_mutex_lock(&l->lock);
			__atomic_and_fetch(&l->ua, ~SCSI_UA_REPORTED_LUNS, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&l->lock);
		}
		scsi_report_luns(b, target, r);
		return;
	}
	/* SPC-4 3.1.73: an incorrect LUN answers only INQUIRY and REQUEST SENSE. */
	if (r->cdb_len >= 6 && r->cdb[0] == SCSI_INQUIRY && !r->out_len)
		scsi_inquiry_no_lun(r);
	else if (r->cdb_len >= 6 && r->cdb[0] == SCSI_REQUEST_SENSE && !r->out_len)
		scsi_request_sense(r);
	else
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
}
