/*
 * MMC-6 commands of a read-only CD/DVD-ROM drive holding one data track:
 * READ TOC/PMA/ATIP (formatted TOC and session info, LBA or MSF), GET
 * CONFIGURATION (profile list, core, removable medium, CD/DVD read),
 * GET EVENT STATUS NOTIFICATION (media class, polled) and READ DISC
 * INFORMATION.  An image larger than an 80-minute CD is reported as a
 * DVD-ROM.
 */
#include <glib.h>
#include <string.h>

#include "block.h"
#include "scsi_int.h"

#define PROFILE_CD_ROM		0x0008
#define PROFILE_DVD_ROM		0x0010

#define FEAT_PROFILE_LIST	0x0000
#define FEAT_CORE		0x0001
#define FEAT_REMOVABLE		0x0003
#define FEAT_CD_READ		0x001e
#define FEAT_DVD_READ		0x001f

static void mmc_addr(uint8_t *p, uint64_t lba, bool msf)
{
	if (!msf) {
		put_be32(p, lba > 0xffffffff ? 0xffffffff : lba);
		return;
	}
	/* MSF counts from the 2-second pregap: LBA 0 is 00:02:00. */
	lba += 150;
	p[0] = 0;
	p[1] = lba / (60 * 75) > 0xff ? 0xff : lba / (60 * 75);
	p[2] = (lba / 75) % 60;
	p[3] = lba % 75;
}

static void mmc_track(uint8_t *p, uint8_t track, uint64_t lba, bool msf)
{
	p[0] = 0;
	p[1] = 0x14;		/* ADR 1 (position), control: data track */
	p[2] = track;
	p[3] = 0;
	mmc_addr(p + 4, lba, msf);
}

static uint64_t mmc_blocks(struct scsi_lun *l)
{
	uint64_t nb;

	pthread_mutex_lock(&l->lock);
	nb = l->nb;
	pthread_mutex_unlock(&l->lock);
	return nb;
}

void scsi_mmc_read_toc(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	bool msf = c[1] & 0x02;
	uint8_t format = c[2] & 0x0f ? c[2] & 0x0f : c[9] >> 6;
	uint8_t track = c[6], d[20] = { 0 };
	unsigned n = 4;

	if (c[1] & ~0x02 || c[2] & 0xf0) {
		scsi_req_bad_field(r, true, c[1] & ~0x02 ? 1 : 2, -1);
		return;
	}
	if (!scsi_lun_check_ready(r))
		return;
	switch (format) {
	case 0:
		/* Track 1 from LBA 0, and the lead-out after the last block. */
		if (track > 1 && track != 0xaa) {
			scsi_req_bad_field(r, true, 6, -1);
			return;
		}
		if (track <= 1) {
			mmc_track(d + n, 1, 0, msf);
			n += 8;
		}
		mmc_track(d + n, 0xaa, mmc_blocks(r->lun), msf);
		n += 8;
		break;
	case 1:
		/* Session info: one complete session starting at track 1. */
		mmc_track(d + n, 1, 0, msf);
		n += 8;
		break;
	default:
		scsi_req_bad_field(r, true, 2, 3);
		return;
	}
	put_be16(d, n - 2);
	d[2] = 1;		/* first track (session) */
	d[3] = 1;		/* last */
	scsi_req_reply(r, d, n, get_be16(c + 7));
}

/* ---- GET CONFIGURATION ---- */

struct mmc_feat {
	uint16_t code;
	bool current;
	uint8_t len;		/* additional length */
	uint8_t data[8];
};

void scsi_mmc_get_configuration(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;
	uint8_t rt = c[1] & 0x03, d[128] = { 0 };
	uint16_t start = get_be16(c + 2), profile = 0;
	bool present, dvd;
	unsigned n = 8;

	if (rt == 3 || c[1] & 0xfc) {
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	pthread_mutex_lock(&l->lock);
	present = l->blk && !l->tray_open;
	dvd = l->nb > SCSI_CD_MAX_BLOCKS;
	pthread_mutex_unlock(&l->lock);
	if (present)
		profile = dvd ? PROFILE_DVD_ROM : PROFILE_CD_ROM;

	const struct mmc_feat feats[] = {
		{ FEAT_PROFILE_LIST, true, 8,
		  { PROFILE_DVD_ROM >> 8, PROFILE_DVD_ROM & 0xff, profile == PROFILE_DVD_ROM, 0,
		    PROFILE_CD_ROM >> 8, PROFILE_CD_ROM & 0xff, profile == PROFILE_CD_ROM, 0 } },
		/* Physical interface 1 (SCSI family), DBE. */
		{ FEAT_CORE, true, 8, { 0, 0, 0, 1, 0x01, 0, 0, 0 } },
		/* Tray loading, eject, lock. */
		{ FEAT_REMOVABLE, true, 4, { 0x29, 0, 0, 0 } },
		{ FEAT_CD_READ, profile == PROFILE_CD_ROM, 4, { 0, 0, 0, 0 } },
		{ FEAT_DVD_READ, profile == PROFILE_DVD_ROM, 4, { 0, 0, 0, 0 } },
	};

	for (unsigned i = 0; i < G_N_ELEMENTS(feats); i++) {
		const struct mmc_feat *f = &feats[i];

		if (f->code < start || (rt == 1 && !f->current) || (rt == 2 && f->code != start))
			continue;
		put_be16(d + n, f->code);
		/* Version 0 (1 for core: DBE), persistent for the always-current ones. */
		d[n + 2] = (f->code == FEAT_CORE ? 0x04 : 0) |
			   (f->code <= FEAT_REMOVABLE ? 0x02 : 0) | f->current;
		d[n + 3] = f->len;
		memcpy(d + n + 4, f->data, f->len);
		n += 4 + f->len;
	}
	put_be32(d, n - 4);
	put_be16(d + 6, profile);
	scsi_req_reply(r, d, n, get_be16(c + 7));
}

/* ---- GET EVENT STATUS NOTIFICATION ---- */

void scsi_mmc_get_event_status(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *l = r->lun;
	uint8_t d[8] = { 0 };
	unsigned n;

	/* Only polled operation: asynchronous notification is the transport's. */
	if (!(c[1] & 1) || c[1] & 0xfe) {
		scsi_req_bad_field(r, true, 1, c[1] & 1 ? -1 : 0);
		return;
	}
	d[3] = 0x10;		/* supported: media class */
	if (c[4] & 0x10) {
		put_be16(d, 6);
		d[2] = 4;	/* media class */
		pthread_mutex_lock(&l->lock);
		d[4] = l->media_event;
		/*
		 * A disc in an open tray is not present, as QEMU reports it:
		 * Linux's sr takes "present" for a closed drive it can read,
		 * and closes an open tray (autoclose) only when not present.
		 */
		d[5] = l->tray_open ? 0x01 : l->blk ? 0x02 : 0;
		/* Reported once; the next poll sees no change. */
		l->media_event = MEC_NO_CHANGE;
		pthread_mutex_unlock(&l->lock);
		n = 8;
	} else {
		put_be16(d, 2);
		d[2] = 0x80;	/* NEA: none of the requested classes */
		n = 4;
	}
	scsi_req_reply(r, d, n, get_be16(c + 7));
}

void scsi_mmc_read_disc_info(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	uint8_t d[34] = { 0 };

	if (c[1]) {	/* data type 0 (standard disc information) only */
		scsi_req_bad_field(r, true, 1, -1);
		return;
	}
	if (!scsi_lun_check_ready(r))
		return;
	put_be16(d, sizeof(d) - 2);
	d[2] = 0x0e;		/* last session complete, disc finalized */
	d[3] = 1;		/* first track */
	d[4] = 1;		/* sessions */
	d[5] = 1;		/* first track of the last session */
	d[6] = 1;		/* last track of the last session */
	d[7] = 0x20;		/* unrestricted use */
	memset(d + 16, 0xff, 8); /* no next-session lead-in / lead-out */
	scsi_req_reply(r, d, sizeof(d), get_be16(c + 7));
}
