/*
 * SCSI target internals shared by scsi.c (dispatch, sense, unit
 * attentions, REPORT LUNS), scsi_spc.c (INQUIRY, mode pages), scsi_sbc.c
 * (block commands) and scsi_mmc.c (CD-ROM commands).
 */
#ifndef VIREO_VIRTIO_SCSI_INT_H
#define VIREO_VIRTIO_SCSI_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "scsi.h"
#include "virtio.h"

/* ASC/ASCQ pairs, as (asc << 8 | ascq). */
#define ASC_NO_ADDITIONAL		0x0000
#define ASC_WRITE_ERROR			0x0c00
#define ASC_UNRECOVERED_READ		0x1100
#define ASC_PARAM_LIST_LENGTH		0x1a00
#define ASC_INVALID_OPCODE		0x2000
#define ASC_LBA_OUT_OF_RANGE		0x2100
#define ASC_INVALID_FIELD_CDB		0x2400
#define ASC_LUN_NOT_SUPPORTED		0x2500
#define ASC_INVALID_FIELD_PARAM		0x2600
#define ASC_WRITE_PROTECTED		0x2700
#define ASC_SPACE_ALLOC_FAILED		0x2707
#define ASC_MEDIUM_CHANGED		0x2800
#define ASC_CAPACITY_CHANGED		0x2a09
#define ASC_POWER_ON_RESET		0x2900
#define ASC_LUN_RESET			0x2903
#define ASC_NEXUS_LOSS			0x2907
#define ASC_SAVING_NOT_SUPPORTED	0x3900
#define ASC_MEDIUM_NOT_PRESENT		0x3a00
#define ASC_MEDIUM_NOT_PRESENT_OPEN	0x3a02
#define ASC_REPORTED_LUNS_CHANGED	0x3f0e
#define ASC_INTERNAL_TARGET_FAILURE	0x4400
#define ASC_MEDIUM_REMOVAL_PREVENTED	0x5302
#define ASC_MISCOMPARE_VERIFY		0x1d00

/* GET EVENT STATUS NOTIFICATION media event codes (MMC-6 6.7.2.6). */
#define MEC_NO_CHANGE		0
#define MEC_EJECT_REQUEST	1
#define MEC_NEW_MEDIA		2
#define MEC_MEDIA_REMOVAL	3

struct scsi_lun {
	enum scsi_lun_type type;
	uint32_t bs;			/* logical block size */
	uint32_t pbs_exp;		/* log2(physical / logical) */
	bool readonly, discard;
	char *serial, *name;
	uint64_t wwn;
	char vendor[9], product[17], revision[5];
	bool wce_default;
	uint16_t rotation_rate;
	void (*tray_moved)(void *opaque, bool open);
	void *tray_opaque;
	const struct scsi_pt_ops *pt;	/* passthrough: every CDB goes here */
	void *pt_opaque;

	pthread_mutex_t lock;		/* everything below */
	struct blk *blk;
	uint64_t nb;			/* blocks of the medium */
	unsigned ua;			/* SCSI_UA_* pending; atomic, peeked unlocked */
	bool wce;			/* caching mode page */
	bool dsense;			/* control mode page D_SENSE */
	bool prevent;			/* PREVENT ALLOW MEDIUM REMOVAL */
	bool tray_open;
	uint8_t media_event;		/* MEC_*, reported once by GESN */
};

/* Direction and length of a command's data, from its CDB. */
enum scsi_dir { SCSI_DIR_NONE, SCSI_DIR_IN, SCSI_DIR_OUT };

static inline uint16_t get_be16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static inline uint32_t get_be24(const uint8_t *p)
{
	return p[0] << 16 | p[1] << 8 | p[2];
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, v);
}

/* scsi.c */
void scsi_req_fail(struct scsi_req *r, uint8_t key, unsigned asc_ascq);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB (or PARAMETER LIST) pointing at byte/bit. */
void scsi_req_bad_field(struct scsi_req *r, bool cdb, unsigned byte, int bit);
void scsi_req_good(struct scsi_req *r);
/* Complete r with the status and sense already in it. */
void scsi_req_finish(struct scsi_req *r);
/*
 * Answer a data-in command with len bytes of buf, cut to the allocation
 * length; fails the command if the buffers cannot hold the result.
 */
void scsi_req_reply(struct scsi_req *r, const void *buf, size_t len, size_t alloc);
/*
 * A block operation of r failed with err (-errno): apply the transport's
 * policy.  true: r was ended (CHECK CONDITION, or stopped for a retry);
 * false: ignore the error and go on as if the operation had succeeded.
 */
bool scsi_req_io_failed(struct scsi_req *r, int err);
/* Tell cfg->tray_moved, if any; under l->lock. */
void scsi_lun_tray_moved(struct scsi_lun *l, bool open);
/* The LUN has a readable medium; otherwise fail with NOT READY. */
bool scsi_lun_check_ready(struct scsi_req *r);
size_t scsi_iov_size(const struct iovec *iov, unsigned cnt);

/* scsi_spc.c */
void scsi_spc_inquiry(struct scsi_req *r);
void scsi_spc_mode_sense(struct scsi_req *r);
void scsi_spc_mode_select(struct scsi_req *r);

/* scsi_sbc.c */
void scsi_sbc_read_capacity(struct scsi_req *r);
void scsi_sbc_rw(struct scsi_req *r);
void scsi_sbc_write_same(struct scsi_req *r);
void scsi_sbc_unmap(struct scsi_req *r);
void scsi_sbc_sync_cache(struct scsi_req *r);
void scsi_sbc_verify(struct scsi_req *r);
void scsi_sbc_start_stop(struct scsi_req *r);
void scsi_sbc_prevent_allow(struct scsi_req *r);
uint64_t scsi_sbc_max_xfer_blocks(const struct scsi_lun *l);
#define SCSI_MAX_UNMAP_BLOCKS	(1u << 22)
#define SCSI_MAX_UNMAP_DESC	64
#define SCSI_MAX_WS_BLOCKS	(1u << 22)

/* scsi_pt.c */
void scsi_pt_submit(struct scsi_req *r);

/* scsi_mmc.c */
void scsi_mmc_read_toc(struct scsi_req *r);
void scsi_mmc_get_configuration(struct scsi_req *r);
void scsi_mmc_get_event_status(struct scsi_req *r);
void scsi_mmc_read_disc_info(struct scsi_req *r);
/* Largest CD image, in 2048-byte blocks (80 minutes); bigger is a DVD. */
#define SCSI_CD_MAX_BLOCKS	(80u * 60 * 75)

#endif
