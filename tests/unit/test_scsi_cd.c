/*
 * The SCSI target as a CD/DVD-ROM (MMC-6) and the bus: TOC, configuration,
 * event status, disc information, media change with UNIT ATTENTION, the
 * tray and its lock, a DVD-sized image; REPORT LUNS over 1,024 LUNs and
 * the answers of LUNs that do not exist.
 */
#include <errno.h>
#include <fcntl.h>

#include "test_scsi_util.h"

#define CD_SIZE		(2048ull * 1000)

static void cd(struct ts *t)
{
	ts_init(t, SCSI_LUN_CDROM, CD_SIZE, NULL);
}

static void test_cd_inquiry_capacity(void)
{
	struct ts t;
	uint8_t b[256];

	cd(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 36, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==, 0);
	g_assert_cmphex(b[0], ==, 0x05);
	g_assert_cmphex(b[1], ==, 0x80);		/* removable */
	g_assert_cmpmem(b + 16, 16, "VIREO CD-ROM    ", 16);
	/* Only the common VPD pages. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0, 0, 255, 0), ==, 0);
	g_assert_cmpuint(b[3], ==, 2);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0xb0, 0, 255, 0), ==, 2);
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 0);
	g_assert_cmpuint(ts_be32(b), ==, 999);
	g_assert_cmpuint(ts_be32(b + 4), ==, 2048);
	/* Read-only medium; no UNMAP or WRITE SAME on a CD. */
	{
		uint8_t *blk = g_malloc0(2048);

		g_assert_cmpuint(CMD(&t, blk, 2048, NULL, 0, SCSI_WRITE_10, 0, B4(0), 0, B2(1),
				     0), ==, 2);
		g_assert_cmphex(ts_sense(&t), ==, SENSE(7, 0x27, 0));
		g_assert_cmpuint(CMD(&t, blk, 2048, NULL, 0, SCSI_WRITE_SAME_10, 0, B4(0), 0,
				     B2(1), 0), ==, 2);
		g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x20, 0));
		g_assert_cmpuint(CMD(&t, NULL, 0, blk, 2048, SCSI_READ_12, 0, B4(999), B4(1), 0,
				     0), ==, 0);
		g_free(blk);
	}
	/* MODE SENSE: capabilities page, lock state follows PREVENT. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_10, 0x08, 0x2a, 0, 0, 0, 0,
			     B2(255), 0), ==, 0);
	g_assert_cmphex(b[8], ==, 0x2a);
	g_assert_cmpuint(b[9], ==, 20);
	g_assert_cmphex(b[8 + 6] & 0x03, ==, 0x03);
	g_assert_cmphex(b[3] & 0x80, ==, 0x80);		/* write protected */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0, 0x08, 0, 255, 0), ==, 2);
	ts_fini(&t);
}

static void test_read_toc(void)
{
	struct ts t;
	uint8_t b[64];

	cd(&t);
	ts_clear_ua(&t);
	/* Formatted TOC, LBA: track 1 at 0, lead-out at 1000. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 0, 0, 0, 0, 0, 0, 64, 0), ==,
			 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 20);
	g_assert_cmpuint(b[0] << 8 | b[1], ==, 18);
	g_assert_cmpuint(b[2], ==, 1);
	g_assert_cmpuint(b[3], ==, 1);
	g_assert_cmphex(b[5], ==, 0x14);
	g_assert_cmpuint(b[6], ==, 1);
	g_assert_cmpuint(ts_be32(b + 8), ==, 0);
	g_assert_cmphex(b[14], ==, 0xaa);
	g_assert_cmpuint(ts_be32(b + 16), ==, 1000);
	/* MSF: 00:02:00 and 1000 + 150 frames = 00:15:25. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 2, 0, 0, 0, 0, 0, 0, 64, 0), ==,
			 0);
	g_assert_cmpmem(b + 8, 4, ((uint8_t[]){ 0, 0, 2, 0 }), 4);
	g_assert_cmpmem(b + 16, 4, ((uint8_t[]){ 0, 0, 15, 25 }), 4);
	/* Starting at the lead-out; a track that does not exist. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 0, 0, 0, 0, 0xaa, 0, 64, 0),
			 ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 12);
	g_assert_cmphex(b[6], ==, 0xaa);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 0, 0, 0, 0, 2, 0, 64, 0), ==,
			 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	/* Session info, also through the old format field in the control byte. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 1, 0, 0, 0, 0, 0, 64, 0), ==,
			 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 12);
	g_assert_cmpuint(b[1], ==, 10);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 0, 0, 0, 0, 0, 0, 64, 0x40),
			 ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 12);
	/* Unsupported format; allocation length cuts. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 5, 0, 0, 0, 0, 0, 64, 0), ==,
			 2);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 0, 0, 0, 0, 0, 0, 4, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 4);
	ts_fini(&t);
}

static void test_configuration_disc_info(void)
{
	struct ts t;
	uint8_t b[256];

	cd(&t);
	/* GET CONFIGURATION is not failed by the power-on attention. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 1, 0,
			     0), ==, 0);
	g_assert_cmpuint(ts_be32(b), ==, t.r.in_xfer - 4);
	g_assert_cmphex(b[6] << 8 | b[7], ==, 0x0008);	/* CD-ROM */
	/* Profile list first: DVD-ROM not current, CD-ROM current. */
	g_assert_cmphex(b[8] << 8 | b[9], ==, 0x0000);
	g_assert_cmpuint(b[11], ==, 8);
	g_assert_cmphex(b[12] << 8 | b[13], ==, 0x0010);
	g_assert_cmpuint(b[14] & 1, ==, 0);
	g_assert_cmphex(b[16] << 8 | b[17], ==, 0x0008);
	g_assert_cmpuint(b[18] & 1, ==, 1);
	/* RT=2: just the removable medium feature. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_GET_CONFIGURATION, 2, 0, 3, 0, 0, 0, 1, 0,
			     0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 8 + 8);
	g_assert_cmphex(b[8] << 8 | b[9], ==, 0x0003);
	/* RT=1 from feature 0x10: CD Read only (DVD Read is not current). */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_GET_CONFIGURATION, 1, 0, 0x10, 0, 0, 0,
			     1, 0, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 8 + 8);
	g_assert_cmphex(b[8] << 8 | b[9], ==, 0x001e);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_GET_CONFIGURATION, 3, 0, 0, 0, 0, 0, 1, 0,
			     0), ==, 2);
	/* READ DISC INFORMATION: complete disc, one session. */
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_READ_DISC_INFORMATION, 0, 0, 0, 0, 0, 0,
			     0, 34, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 34);
	g_assert_cmpuint(b[0] << 8 | b[1], ==, 32);
	g_assert_cmphex(b[2], ==, 0x0e);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_READ_DISC_INFORMATION, 1, 0, 0, 0, 0, 0,
			     0, 34, 0), ==, 2);
	ts_fini(&t);
}

/* A DVD-sized image: DVD-ROM profile, reads far beyond 4 GiB. */
static void test_dvd(void)
{
	struct ts t;
	uint64_t size = 5ull << 30;
	uint64_t last = size / 2048 - 1;
	uint8_t b[2048 * 2];
	int fd;

	cd(&t);
	ts_fini(&t);
	ts_init(&t, SCSI_LUN_CDROM, size, NULL);
	/* Mark the last block so the read can be checked. */
	fd = open(t.img, O_WRONLY);
	g_assert_cmpint(fd, >=, 0);
	memset(b, 0x3c, 2048);
	g_assert_cmpint(pwrite(fd, b, 2048, last * 2048), ==, 2048);
	close(fd);
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_GET_CONFIGURATION, 1, 0, 0, 0, 0, 0, 1, 0,
			     0), ==, 0);
	g_assert_cmphex(b[6] << 8 | b[7], ==, 0x0010);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 0);
	g_assert_cmpuint(ts_be32(b), ==, last);
	memset(b, 0, sizeof(b));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 2048, SCSI_READ_12, 0, B4(last), B4(1), 0, 0), ==, 0);
	g_assert_true(ts_is(b, 2048, 0x3c));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 4096, SCSI_READ_10, 0, B4(last), 0, B2(2), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	ts_fini(&t);
}

static uint8_t gesn(struct ts *t, uint8_t *status)
{
	uint8_t b[8];

	g_assert_cmpuint(CMD(t, NULL, 0, b, 8, SCSI_GET_EVENT_STATUS, 1, 0, 0, 0x10, 0, 0, 0, 8,
			     0), ==, 0);
	g_assert_cmpuint(t->r.in_xfer, ==, 8);
	g_assert_cmpuint(b[2], ==, 4);
	if (status)
		*status = b[5];
	return b[4];
}

static void test_media_change(void)
{
	struct ts t;
	struct blk *other, *old = NULL;
	uint8_t b[2048], st;
	char *img2;
	FILE *f;

	cd(&t);
	ts_clear_ua(&t);
	img2 = g_build_filename(t.dir, "second.iso", NULL);
	f = fopen(img2, "w");
	g_assert_cmpint(ftruncate(fileno(f), 2048 * 50), ==, 0);
	fclose(f);
	other = ts_open(img2, false);

	g_assert_cmpuint(gesn(&t, &st), ==, 0);
	g_assert_cmphex(st, ==, 0x02);			/* present, tray closed */
	/* Only polled GESN; other classes say NEA. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_GET_EVENT_STATUS, 0, 0, 0, 0x10, 0, 0, 0, 8,
			     0), ==, 2);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_GET_EVENT_STATUS, 1, 0, 0, 0x02, 0, 0, 0, 8,
			     0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 4);
	g_assert_cmphex(b[2], ==, 0x80);

	/* Locked by the guest: the host's eject fails and asks the guest. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_cmpint(scsi_lun_change_medium(t.lun, NULL, false, &old), ==, -EBUSY);
	g_assert_cmpuint(gesn(&t, NULL), ==, 1);	/* eject request */
	g_assert_cmpuint(gesn(&t, NULL), ==, 0);
	/* The guest cannot eject a locked tray either. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x53, 0x02));
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 0, 0), ==, 0);

	/* Host eject: no medium, NOT READY, removal event. */
	g_assert_cmpint(scsi_lun_change_medium(t.lun, NULL, false, &old), ==, 0);
	g_assert_true(old == t.blk);
	g_assert_null(scsi_lun_blk(t.lun));
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(2, 0x3a, 0x02));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 2048, SCSI_READ_10, 0, B4(0), 0, B2(1), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(2, 0x3a, 0x02));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 64, SCSI_READ_TOC, 0, 0, 0, 0, 0, 0, 0, 64, 0), ==, 2);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 18, SCSI_REQUEST_SENSE, 0, 0, 0, 18, 0), ==, 0);
	g_assert_cmphex(b[2], ==, 2);
	g_assert_cmphex(b[12], ==, 0x3a);
	g_assert_cmpuint(gesn(&t, &st), ==, 3);
	g_assert_cmphex(st, ==, 0x01);			/* no medium, tray open */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 256, SCSI_GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 1, 0,
			     0), ==, 0);
	g_assert_cmphex(b[6] << 8 | b[7], ==, 0);

	/* Insert another disc: UNIT ATTENTION 28/00, then the new capacity. */
	blk_queue_free(t.bq);
	t.bq = blk_queue_new(other, (char[64]){ 0 }, 64);
	g_assert_cmpint(scsi_lun_change_medium(t.lun, other, false, &old), ==, 0);
	g_assert_null(old);
	g_assert_cmpuint(gesn(&t, &st), ==, 2);
	g_assert_cmphex(st, ==, 0x02);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(6, 0x28, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 0);
	g_assert_cmpuint(ts_be32(b), ==, 49);

	/* Guest eject and load through START STOP UNIT. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(2, 0x3a, 0x02));
	g_assert_cmpuint(gesn(&t, &st), ==, 3);
	g_assert_cmphex(st, ==, 0x01);			/* open tray: no disc in the drive */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x03, 0), ==, 0);
	g_assert_cmpuint(gesn(&t, NULL), ==, 2);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);

	/* A forced change ignores the lock; a disk has no medium to change. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_cmpint(scsi_lun_change_medium(t.lun, t.blk, true, &old), ==, 0);
	g_assert_true(old == other);
	g_assert_false(scsi_lun_medium_locked(t.lun));
	blk_queue_free(t.bq);
	t.bq = blk_queue_new(t.blk, (char[64]){ 0 }, 64);
	blk_close(other);
	g_unlink(img2);
	g_free(img2);
	ts_fini(&t);
}

/* A CD-ROM created empty. */
static void test_cd_empty(void)
{
	struct scsi_lun_config c = { .type = SCSI_LUN_CDROM };
	struct ts t;
	uint8_t b[64];
	char err[128];

	cd(&t);
	scsi_lun_free(t.lun);
	t.lun = scsi_lun_new(&c, err, sizeof(err));
	g_assert_nonnull(t.lun);
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(2, 0x3a, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0),
			 ==, 2);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 34, SCSI_READ_DISC_INFORMATION, 0, 0, 0, 0, 0, 0, 0,
			     34, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(2, 0x3a, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 36, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==, 0);
	ts_fini(&t);
}

/* ---- the bus ---- */

static void test_bus_luns(void)
{
	struct scsi_lun_config c = { 0 };
	struct scsi_bus bus;
	struct ts t;
	uint8_t *b = g_malloc0(8 + 8 * 2048);
	char err[128];

	ts_init(&t, SCSI_LUN_DISK, 1 << 20, NULL);
	scsi_bus_init(&bus);
	c.type = SCSI_LUN_DISK;
	c.blk = t.blk;
	/* 1,024 LUNs on target 3 (sharing one image), plus LUN 0 of target 0. */
	for (unsigned i = 0; i < 1024; i++) {
		struct scsi_lun *l = scsi_lun_new(&c, err, sizeof(err));

		g_assert_nonnull(l);
		g_assert_cmpint(scsi_bus_attach(&bus, 3, i * 16, l), ==, 0);
	}
	g_assert_cmpint(scsi_bus_attach(&bus, 0, 0, t.lun), ==, 0);
	g_assert_cmpint(scsi_bus_attach(&bus, 0, 0, t.lun), ==, -EEXIST);
	g_assert_cmpint(scsi_bus_attach(&bus, 0, SCSI_MAX_LUN, t.lun), ==, -ERANGE);
	g_assert_cmpuint(scsi_bus_target_luns(&bus, 3), ==, 1024);
	g_assert_cmpuint(scsi_bus_target_luns(&bus, 5), ==, 0);

	/* REPORT LUNS, sent to a LUN that does not exist: all 1,024. */
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 1, CDB(SCSI_REPORT_LUNS, 0, 0, 0, 0, 0,
						       B4(8 + 8 * 2048), 0, 0), 12,
				   NULL, 0, b, 8 + 8 * 2048), ==, 0);
	g_assert_cmpuint(ts_be32(b), ==, 8 * 1024);
	g_assert_cmpuint(t.r.in_xfer, ==, 8 + 8 * 1024);
	for (unsigned i = 0; i < 1024; i++) {
		uint8_t want[8];

		scsi_lun_encode(i * 16, want);
		g_assert_cmpmem(b + 8 + 8 * i, 8, want, 8);
	}
	/* LUN 16 uses peripheral, LUN 4080 flat addressing. */
	g_assert_cmphex(b[8 + 8 * 1 + 1], ==, 16);
	g_assert_cmphex(b[8 + 8 * 255], ==, 0x4f);
	g_assert_cmphex(b[8 + 8 * 255 + 1], ==, 0xf0);
	/* Cut by the allocation length; too small an allocation; bad select. */
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 0, CDB(SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, B4(24), 0,
						       0), 12, NULL, 0, b, 24), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 24);
	g_assert_cmpuint(ts_be32(b), ==, 8 * 1024);
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 0, CDB(SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, B4(8), 0,
						       0), 12, NULL, 0, b, 8), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 0, CDB(SCSI_REPORT_LUNS, 0, 3, 0, 0, 0, B4(64), 0,
						       0), 12, NULL, 0, b, 64), ==, 2);
	/* Well-known LUNs only: none. */
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 0, CDB(SCSI_REPORT_LUNS, 0, 1, 0, 0, 0, B4(64), 0,
						       0), 12, NULL, 0, b, 64), ==, 0);
	g_assert_cmpuint(ts_be32(b), ==, 0);

	/* A LUN that does not exist: INQUIRY says so, others fail with 25/00. */
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 1, CDB(SCSI_INQUIRY, 0, 0, 0, 36, 0), 6, NULL, 0,
				   b, 36), ==, 0);
	g_assert_cmphex(b[0], ==, 0x7f);
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 1, CDB(SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), 6,
				   NULL, 0, NULL, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x25, 0));
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 1, CDB(SCSI_REQUEST_SENSE, 0, 0, 0, 18, 0), 6,
				   NULL, 0, b, 18), ==, 0);
	g_assert_cmphex(b[2], ==, 5);
	g_assert_cmphex(b[12], ==, 0x25);
	/* An existing one answers, through the bus, with its own state. */
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 16 * 1023, CDB(SCSI_TEST_UNIT_READY, 0, 0, 0, 0,
							      0), 6, NULL, 0, NULL, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(6, 0x29, 0));
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 3, 16 * 1023, CDB(SCSI_READ_10, 0, B4(2047), 0,
							      B2(1), 0), 10, NULL, 0, b, 512),
			 ==, 0);

	/* Detach: the LUN leaves the report. */
	{
		struct scsi_lun *l = scsi_bus_detach(&bus, 3, 16);

		g_assert_nonnull(l);
		scsi_lun_free(l);
		g_assert_null(scsi_bus_detach(&bus, 3, 16));
		g_assert_null(scsi_bus_find(&bus, 3, 16));
		g_assert_cmpuint(scsi_bus_target_luns(&bus, 3), ==, 1023);
	}
	/* The bus frees the LUNs it holds, t.lun included. */
	scsi_bus_destroy(&bus);
	t.lun = NULL;
	ts_fini(&t);
	g_free(b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/scsi/cd/inquiry-capacity", test_cd_inquiry_capacity);
	g_test_add_func("/scsi/cd/read-toc", test_read_toc);
	g_test_add_func("/scsi/cd/configuration-disc-info", test_configuration_disc_info);
	g_test_add_func("/scsi/cd/dvd", test_dvd);
	g_test_add_func("/scsi/cd/media-change", test_media_change);
	g_test_add_func("/scsi/cd/empty", test_cd_empty);
	g_test_add_func("/scsi/bus/luns", test_bus_luns);
	return g_test_run();
}
