/*
 * Helpers of the SCSI target tests: a LUN over a temporary image, and a
 * synchronous "send this CDB with these buffers" that waits on the LUN's
 * blk_queue the way a transport thread does.
 */
#ifndef VIREO_TEST_SCSI_UTIL_H
#define VIREO_TEST_SCSI_UTIL_H

#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "scsi.h"

struct ts {
	char *dir, *img;
	struct blk *blk;
	struct blk_queue *bq;
	struct scsi_lun *lun;
	struct scsi_req r;	/* the last command's results */
	bool done;
};

static inline void ts_image(struct ts *t, uint64_t size)
{
	FILE *f;

	t->dir = g_dir_make_tmp("vireo-scsi-XXXXXX", NULL);
	g_assert_nonnull(t->dir);
	t->img = g_build_filename(t->dir, "disk.img", NULL);
	f = fopen(t->img, "w");
	g_assert_nonnull(f);
	g_assert_cmpint(ftruncate(fileno(f), size), ==, 0);
	fclose(f);
}

static inline struct blk *ts_open(const char *file, bool discard)
{
	struct blk_config c = { .file = file, .format = "raw", .aio = BLK_AIO_THREADS,
				.discard_unmap = discard };
	char err[256];
	struct blk *b = blk_open(&c, err, sizeof(err));

	if (!b)
		g_test_message("%s", err);
	g_assert_nonnull(b);
	return b;
}

/* A LUN of type over an image of size bytes; cfg may tweak the config. */
static inline void ts_init(struct ts *t, enum scsi_lun_type type, uint64_t size,
			   const struct scsi_lun_config *tweak)
{
	struct scsi_lun_config cfg = { .type = type };
	char err[256];

	memset(t, 0, sizeof(*t));
	if (tweak)
		cfg = *tweak;
	cfg.type = type;
	ts_image(t, size);
	t->blk = ts_open(t->img, cfg.discard);
	cfg.blk = t->blk;
	t->bq = blk_queue_new(t->blk, err, sizeof(err));
	g_assert_nonnull(t->bq);
	t->lun = scsi_lun_new(&cfg, err, sizeof(err));
	if (!t->lun)
		g_test_message("%s", err);
	g_assert_nonnull(t->lun);
}

static inline void ts_fini(struct ts *t)
{
	scsi_lun_free(t->lun);
	blk_queue_free(t->bq);
	blk_close(t->blk);
	g_unlink(t->img);
	g_rmdir(t->dir);
	g_free(t->img);
	g_free(t->dir);
}

static inline void ts_done(struct scsi_req *r)
{
	struct ts *t = r->opaque;

	g_assert_false(t->done);	/* exactly once */
	t->done = true;
}

static inline void ts_wait(struct ts *t, struct blk_queue *bq)
{
	while (!t->done) {
		struct pollfd p = { .fd = blk_queue_fd(bq), .events = POLLIN };

		poll(&p, 1, 1000);
		blk_queue_poll(bq);
	}
}

/*
 * Send cdb (len bytes) with a data-out buffer and/or a data-in buffer,
 * each split in two iovecs at half, to the LUN (or to the bus at
 * target/lun when bus is set).  Returns the status.
 */
static inline uint8_t ts_cmd_to(struct ts *t, struct scsi_bus *bus, unsigned target,
				unsigned lunid, const uint8_t *cdb, unsigned len, const void *out,
				size_t out_len, void *in, size_t in_len)
{
	struct iovec oi[2] = { { (void *)out, out_len / 2 },
			       { (uint8_t *)out + out_len / 2, out_len - out_len / 2 } };
	struct iovec ii[2] = { { in, in_len / 2 },
			       { (uint8_t *)in + in_len / 2, in_len - in_len / 2 } };

	memset(&t->r, 0, sizeof(t->r));
	t->r.cdb = cdb;
	t->r.cdb_len = len;
	t->r.out = oi;
	t->r.out_cnt = out_len ? 2 : 0;
	t->r.in = ii;
	t->r.in_cnt = in_len ? 2 : 0;
	t->r.bq = t->bq;
	t->r.done = ts_done;
	t->r.opaque = t;
	t->done = false;
	if (bus)
		scsi_bus_submit(bus, target, lunid, &t->r);
	else
		scsi_req_submit(t->lun, &t->r);
	ts_wait(t, t->bq);
	g_assert_cmpuint(t->r.in_xfer, <=, in_len);
	g_assert_cmpuint(t->r.in_xfer + t->r.residual, <=, in_len ? in_len : out_len);
	if (t->r.status == SCSI_STATUS_CHECK_CONDITION) {
		g_assert_cmpuint(t->r.sense_len, >=, 8);
		g_assert_true(t->r.sense[0] == 0x70 || t->r.sense[0] == 0x72);
	} else {
		g_assert_cmpuint(t->r.status, ==, SCSI_STATUS_GOOD);
		g_assert_cmpuint(t->r.sense_len, ==, 0);
	}
	return t->r.status;
}

static inline uint8_t ts_cmd(struct ts *t, const uint8_t *cdb, unsigned len, const void *out,
			     size_t out_len, void *in, size_t in_len)
{
	return ts_cmd_to(t, NULL, 0, 0, cdb, len, out, out_len, in, in_len);
}

/* Sense key and ASC/ASCQ of the last command, whatever the format. */
static inline unsigned ts_sense(struct ts *t)
{
	const uint8_t *s = t->r.sense;

	if (t->r.status != SCSI_STATUS_CHECK_CONDITION)
		return 0;
	if (s[0] == 0x72)
		return s[1] << 16 | s[2] << 8 | s[3];
	return (s[2] & 0xf) << 16 | s[12] << 8 | s[13];
}

#define SENSE(key, asc, ascq)	((key) << 16 | (asc) << 8 | (ascq))

/* CDB builders. */
#define CDB(...)		((const uint8_t[]){ __VA_ARGS__ })
#define B4(v)			(uint8_t)((v) >> 24), (uint8_t)((v) >> 16), (uint8_t)((v) >> 8), (uint8_t)(v)
#define B2(v)			(uint8_t)((v) >> 8), (uint8_t)(v)
#define B8(v)			B4((uint64_t)(v) >> 32), B4((uint64_t)(v) & 0xffffffff)

/* Send a CDB given as bytes, e.g. CMD(t, NULL, 0, buf, 36, SCSI_INQUIRY, 0, 0, 0, 36, 0). */
#define CMD(t, out, olen, in, ilen, ...)					\
	ts_cmd((t), CDB(__VA_ARGS__), sizeof(CDB(__VA_ARGS__)), (out), (olen), (in), (ilen))

/* Clear the power-on unit attention. */
static inline void ts_clear_ua(struct ts *t)
{
	uint8_t s[18];

	g_assert_cmpuint(CMD(t, NULL, 0, s, 18, SCSI_REQUEST_SENSE, 0, 0, 0, 18, 0), ==, 0);
}

static inline void ts_fill(void *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)p)[i] = seed + i * 13 + (i >> 9);
}

static inline bool ts_is(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static inline uint32_t ts_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static inline uint64_t ts_be64(const uint8_t *p)
{
	return (uint64_t)ts_be32(p) << 32 | ts_be32(p + 4);
}

#endif
