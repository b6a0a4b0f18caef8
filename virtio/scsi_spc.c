/*
 * SPC-4 commands every LUN type shares: INQUIRY with the standard data and
 * the VPD pages guests use for names and limits (0x00, 0x80, 0x83, and for
 * disks 0xB0, 0xB1, 0xB2), and MODE SENSE / MODE SELECT over the caching,
 * control and (CD-ROM) capabilities pages.
 *
 * MODE SELECT accepts exactly the bits MODE SENSE reports as changeable
 * (WCE, D_SENSE); anything else in a page is INVALID FIELD IN PARAMETER
 * LIST with the field pointer at the offending byte.
 */
#include <glib.h>
#include <string.h>

#include "block.h"
#include "scsi_int.h"

#define VPD_SUPPORTED	0x00
#define VPD_SERIAL	0x80
#define VPD_DEVICE_ID	0x83
#define VPD_BLOCK_LIMITS 0xb0
#define VPD_BLOCK_CHARS	0xb1
#define VPD_PROVISIONING 0xb2

#define MODE_CACHING	0x08
#define MODE_CONTROL	0x0a
#define MODE_CAPS	0x2a	/* MM capabilities and mechanical status */
#define MODE_ALL	0x3f

static void spc_standard_inquiry(struct scsi_req *r, uint16_t alloc)
{
	struct scsi_lun *l = r->lun;
	uint8_t d[36] = { 0 };

	d[0] = l->type;
	d[1] = l->type == SCSI_LUN_CDROM ? 0x80 : 0;	/* RMB */
	d[2] = 5;			/* SPC-3 */
	d[3] = 0x10 | 2;		/* HISUP, response data format 2 */
	d[4] = sizeof(d) - 5;
	d[7] = 0x02;			/* CMDQUE */
	memcpy(d + 8, l->vendor, 8);
	memcpy(d + 16, l->product, 16);
	memcpy(d + 32, l->revision, 4);
	scsi_req_reply(r, d, sizeof(d), alloc);
}

static bool spc_has_page(const struct scsi_lun *l, uint8_t page)
{
	switch (page) {
	case VPD_SUPPORTED:
	case VPD_DEVICE_ID:
		return true;
	case VPD_SERIAL:
		return l->serial != NULL;
	case VPD_BLOCK_LIMITS:
	case VPD_BLOCK_CHARS:
	case VPD_PROVISIONING:
		return l->type == SCSI_LUN_DISK;
	}
	return false;
}

/* One designation descriptor (SPC-4 7.8.6.1) at p; returns its length. */
static unsigned spc_designator(uint8_t *p, uint8_t code_set, uint8_t type, const void *id,
			       unsigned len)
{
	p[0] = code_set;
	p[1] = type;		/* association: the logical unit */
	p[2] = 0;
	p[3] = len;
	memcpy(p + 4, id, len);
	return 4 + len;
}

static unsigned spc_vpd_device_id(const struct scsi_lun *l, uint8_t *p)
{
	unsigned n = 0;
	uint8_t t10[8 + 64];
	const char *id = l->serial ? l->serial : l->name;
	unsigned idlen = MIN(strlen(id), 64u);

	/* T10 vendor ID: vendor, then the serial (or drive name) that names the disk. */
	memcpy(t10, l->vendor, 8);
	memcpy(t10 + 8, id, idlen);
	n += spc_designator(p + n, 0x02, 0x01, t10, 8 + idlen);
	if (l->wwn) {
		uint8_t naa[8];

		for (int i = 0; i < 8; i++)
			naa[i] = l->wwn >> (56 - 8 * i);
		n += spc_designator(p + n, 0x01, 0x03, naa, 8);
	}
	return n;
}

static unsigned spc_vpd_block_limits(const struct scsi_lun *l, uint8_t *p)
{
	uint64_t maxx = scsi_sbc_max_xfer_blocks(l);
	uint32_t gran = 1u << l->pbs_exp;

	memset(p, 0, 0x3c);
	p[0] = 1;			/* WSNZ: WRITE SAME of 0 blocks is an error */
	put_be16(p + 2, gran);		/* optimal transfer length granularity */
	put_be32(p + 4, maxx);		/* maximum transfer length */
	put_be32(p + 8, maxx);		/* optimal transfer length */
	if (l->discard) {
		put_be32(p + 16, SCSI_MAX_UNMAP_BLOCKS);
		put_be32(p + 20, SCSI_MAX_UNMAP_DESC);
		put_be32(p + 24, gran);
	}
	put_be64(p + 32, SCSI_MAX_WS_BLOCKS);
	return 0x3c;
}

static void spc_vpd(struct scsi_req *r, uint8_t page, uint16_t alloc)
{
	struct scsi_lun *l = r->lun;
	uint8_t d[4 + 255] = { 0 };
	unsigned n = 0;

	if (!spc_has_page(l, page)) {
		scsi_req_bad_field(r, true, 2, -1);
		return;
	}
	d[0] = l->type;
	d[1] = page;
	switch (page) {
	case VPD_SUPPORTED: {
		static const uint8_t pages[] = { VPD_SUPPORTED, VPD_SERIAL, VPD_DEVICE_ID,
						 VPD_BLOCK_LIMITS, VPD_BLOCK_CHARS,
						 VPD_PROVISIONING };

		for (unsigned i = 0; i < sizeof(pages); i++)
			if (spc_has_page(l, pages[i]))
				d[4 + n++] = pages[i];
		break;
	}
	case VPD_SERIAL:
		n = strlen(l->serial);
		memcpy(d + 4, l->serial, n);
		break;
	case VPD_DEVICE_ID:
		n = spc_vpd_device_id(l, d + 4);
		break;
	case VPD_BLOCK_LIMITS:
		n = spc_vpd_block_limits(l, d + 4);
		break;
	case VPD_BLOCK_CHARS:
		put_be16(d + 4, l->rotation_rate);
		n = 0x3c;
		break;
	case VPD_PROVISIONING:
		/* LBPU, LBPWS, LBPWS10 and thin provisioning when the drive unmaps. */
		d[5] = l->discard ? 0xe0 : 0;
		d[6] = l->discard ? 2 : 0;
		n = 4;
		break;
	}
	put_be16(d + 2, n);
	scsi_req_reply(r, d, 4 + n, alloc);
}

void scsi_spc_inquiry(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	uint16_t alloc = get_be16(c + 3);

	if (c[1] & 0xfe) {		/* CMDDT (obsolete) and reserved bits */
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	if (c[1] & 1) {
		spc_vpd(r, c[2], alloc);
		return;
	}
	if (c[2]) {			/* a page code without EVPD */
		scsi_req_bad_field(r, true, 2, -1);
		return;
	}
	spc_standard_inquiry(r, alloc);
}

/* ---- mode pages ---- */

enum mode_pc { PC_CURRENT, PC_CHANGEABLE, PC_DEFAULT, PC_SAVED };

/* Build page at p for pc; returns its length, or 0 if the LUN lacks it. */
static unsigned spc_mode_page(struct scsi_lun *l, uint8_t page, enum mode_pc pc, uint8_t *p)
{
	bool wce, dsense;

	pthread_mutex_lock(&l->lock);
	wce = pc == PC_DEFAULT ? l->wce_default : l->wce;
	dsense = pc == PC_DEFAULT ? false : l->dsense;
	pthread_mutex_unlock(&l->lock);
	switch (page) {
	case MODE_CACHING:
		if (l->type != SCSI_LUN_DISK)
			return 0;
		memset(p, 0, 20);
		p[0] = MODE_CACHING;
		p[1] = 18;
		if (pc == PC_CHANGEABLE)
			p[2] = 0x04;
		else
			p[2] = wce ? 0x04 : 0;
		return 20;
	case MODE_CONTROL:
		memset(p, 0, 12);
		p[0] = MODE_CONTROL;
		p[1] = 10;
		if (pc == PC_CHANGEABLE)
			return p[2] = 0x04, 12;
		p[2] = dsense ? 0x04 : 0;
		p[3] = 0x10;		/* unrestricted reordering */
		put_be16(p + 8, 0xffff); /* busy timeout: unlimited */
		return 12;
	case MODE_CAPS:
		if (l->type != SCSI_LUN_CDROM)
			return 0;
		memset(p, 0, 22);
		p[0] = MODE_CAPS;
		p[1] = 20;
		if (pc == PC_CHANGEABLE)
			return 22;
		p[2] = 0x3b;		/* reads CD-R, CD-RW, DVD-ROM, DVD-R */
		p[4] = 0x71;		/* multi-session, mode 2 forms, audio play */
		p[5] = 0x00;
		pthread_mutex_lock(&l->lock);
		/* Tray, eject, lock; the lock state. */
		p[6] = 0x29 | (l->prevent ? 0x02 : 0);
		pthread_mutex_unlock(&l->lock);
		put_be16(p + 8, 706 * 8);	/* maximum read speed, kB/s */
		put_be16(p + 12, 2048);		/* buffer size, KB */
		put_be16(p + 14, 706 * 8);	/* current read speed */
		return 22;
	}
	return 0;
}

void scsi_spc_mode_sense(struct scsi_req *r)
{
	struct scsi_lun *l = r->lun;
	const uint8_t *c = r->cdb;
	bool ten = c[0] == SCSI_MODE_SENSE_10;
	bool dbd = c[1] & 0x08, llba = ten && (c[1] & 0x10);
	enum mode_pc pc = c[2] >> 6;
	uint8_t page = c[2] & 0x3f, sub = c[3];
	uint16_t alloc = ten ? get_be16(c + 7) : c[4];
	unsigned hdr = ten ? 8 : 4, n, bd = 0;
	uint8_t d[512] = { 0 };
	uint64_t nb;

	if (c[1] & (ten ? 0xe7 : 0xf7)) {
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	if (pc == PC_SAVED) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	if (sub && !(page == MODE_ALL && sub == 0xff)) {
		scsi_req_bad_field(r, true, 3, -1);
		return;
	}
	n = hdr;
	pthread_mutex_lock(&l->lock);
	nb = l->blk && !l->tray_open ? l->nb : 0;
	pthread_mutex_unlock(&l->lock);
	if (!dbd) {
		uint8_t *b = d + n;

		if (llba) {
			put_be64(b, nb);
			put_be32(b + 12, l->bs);
			bd = 16;
		} else {
			put_be32(b, nb > 0xffffffff ? 0xffffffff : nb);
			put_be32(b + 4, l->bs & 0xffffff);
			bd = 8;
		}
		n += bd;
	}
	if (page == MODE_ALL) {
		static const uint8_t all[] = { MODE_CACHING, MODE_CONTROL, MODE_CAPS };

		for (unsigned i = 0; i < sizeof(all); i++)
			n += spc_mode_page(l, all[i], pc, d + n);
	} else {
		unsigned len = spc_mode_page(l, page, pc, d + n);

		if (!len) {
			scsi_req_bad_field(r, true, 2, 5);
			return;
		}
		n += len;
	}
	/* Device-specific parameter: WP, and DPOFUA for disks. */
	if (ten) {
		put_be16(d, n - 2);
		d[3] = (l->readonly ? 0x80 : 0) | (l->type == SCSI_LUN_DISK ? 0x10 : 0);
		d[4] = llba ? 1 : 0;
		put_be16(d + 6, bd);
	} else {
		d[0] = n - 1;
		d[2] = (l->readonly ? 0x80 : 0) | (l->type == SCSI_LUN_DISK ? 0x10 : 0);
		d[3] = bd;
	}
	scsi_req_reply(r, d, n, alloc);
}

/* Check one page against what may change, and apply it; false: r completed. */
static bool spc_select_page(struct scsi_req *r, const uint8_t *p, unsigned off, unsigned left)
{
	struct scsi_lun *l = r->lun;
	uint8_t cur[32], mask[32];
	unsigned len;

	if (p[0] & 0x40 || left < 2) {	/* sub-page format: we have none */
		scsi_req_bad_field(r, false, off, -1);
		return false;
	}
	len = spc_mode_page(l, p[0] & 0x3f, PC_CURRENT, cur);
	if (!len || p[0] & 0x80) {	/* unknown page, or PS set */
		scsi_req_bad_field(r, false, off, -1);
		return false;
	}
	if (p[1] != len - 2) {
		scsi_req_bad_field(r, false, off + 1, -1);
		return false;
	}
	if (left < len) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return false;
	}
	spc_mode_page(l, p[0] & 0x3f, PC_CHANGEABLE, mask);
	for (unsigned i = 2; i < len; i++) {
		if ((p[i] ^ cur[i]) & ~mask[i]) {
			scsi_req_bad_field(r, false, off + i, -1);
			return false;
		}
	}
	return true;
}

static void spc_select_apply(struct scsi_lun *l, const uint8_t *p)
{
	pthread_mutex_lock(&l->lock);
	if ((p[0] & 0x3f) == MODE_CACHING)
		l->wce = p[2] & 0x04;
	else if ((p[0] & 0x3f) == MODE_CONTROL)
		l->dsense = p[2] & 0x04;
	pthread_mutex_unlock(&l->lock);
}

void scsi_spc_mode_select(struct scsi_req *r)
{
	struct scsi_lun *l = r->lun;
	const uint8_t *c = r->cdb;
	bool ten = c[0] == SCSI_MODE_SELECT_10;
	unsigned plen = ten ? get_be16(c + 7) : c[4];
	unsigned hdr = ten ? 8 : 4, bd, off;
	uint8_t d[512];

	if ((c[1] & ~0x10) || (ten && (c[2] | c[3] | c[4] | c[5] | c[6]))) {
		/* SP (save) and reserved bits; PF may be either. */
		scsi_req_bad_field(r, true, 1, c[1] & 1 ? 0 : -1);
		return;
	}
	if (!plen) {
		scsi_req_good(r);
		return;
	}
	if (plen > r->out_len) {
		scsi_req_bad_field(r, true, ten ? 7 : 4, -1);
		return;
	}
	if (plen < hdr || plen > sizeof(d)) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	virtio_iov_to_buf(r->out, r->out_cnt, 0, d, plen);
	bd = ten ? get_be16(d + 6) : d[3];
	if (bd && bd != 8 && !(ten && (d[4] & 1) && bd == 16)) {
		scsi_req_bad_field(r, false, ten ? 6 : 3, -1);
		return;
	}
	if (hdr + bd > plen) {
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	/* A block descriptor may restate, never change, the block size. */
	if (bd && (bd == 8 ? get_be24(d + hdr + 5) : get_be32(d + hdr + 12)) != l->bs) {
		scsi_req_bad_field(r, false, hdr + (bd == 8 ? 5 : 12), -1);
		return;
	}
	/* Validate every page before applying any, so a bad list changes nothing. */
	for (off = hdr + bd; off < plen; off += d[off + 1] + 2)
		if (!spc_select_page(r, d + off, off, plen - off))
			return;
	for (off = hdr + bd; off < plen; off += d[off + 1] + 2)
		spc_select_apply(l, d + off);
	r->residual = r->out_len - plen;
	scsi_req_good(r);
}
