/*
 * The SCSI target as a disk (SBC-3), driven with CDB byte arrays against a
 * raw temporary image: every command, the data it moves checked against
 * the file, and each error with its sense key and ASC/ASCQ.
 */
#include "test_scsi_util.h"
#include "virtio/scsi_int.h"

#define DISK		(4ull << 20)
#define NB		(DISK / 512)

static uint8_t *file_read(struct ts *t)
{
	gchar *data;
	gsize len;

	g_assert_true(g_file_get_contents(t->img, &data, &len, NULL));
	g_assert_cmpuint(len, ==, DISK);
	return (uint8_t *)data;
}

static void disk(struct ts *t)
{
	struct scsi_lun_config c = { .serial = "SER-0001", .wwn = 0x5000c500a1b2c3d4ull,
				     .name = "d0", .discard = true, .write_cache = true,
				     .rotation_rate = 1 };

	ts_init(t, SCSI_LUN_DISK, DISK, &c);
}

static void test_unit_attention(void)
{
	struct ts t;
	uint8_t buf[96];

	disk(&t);
	/* INQUIRY does not report or clear the power-on condition... */
	g_assert_cmpuint(CMD(&t, NULL, 0, buf, 36, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==, 0);
	/* ...TEST UNIT READY reports it once. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, 0, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(6, 0x29, 0x00));
	g_assert_cmpuint(t.r.sense_len, ==, 18);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, 0, 0, 0, 0, 0, 0), ==, 0);

	/* LUN reset: 29/03, then REQUEST SENSE returns it and clears it. */
	scsi_lun_reset(t.lun, SCSI_UA_LUN_RESET);
	memset(buf, 0xee, sizeof(buf));
	g_assert_cmpuint(CMD(&t, NULL, 0, buf, 96, SCSI_REQUEST_SENSE, 0, 0, 0, 96, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 18);
	g_assert_cmpuint(t.r.residual, ==, 96 - 18);
	g_assert_cmphex(buf[0], ==, 0x70);
	g_assert_cmphex(buf[2], ==, 6);
	g_assert_cmphex(buf[12], ==, 0x29);
	g_assert_cmphex(buf[13], ==, 0x03);
	g_assert_cmphex(buf[18], ==, 0xee);
	/* Descriptor format on request; nothing pending: NO SENSE. */
	g_assert_cmpuint(CMD(&t, NULL, 0, buf, 96, SCSI_REQUEST_SENSE, 1, 0, 0, 96, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 8);
	g_assert_cmphex(buf[0], ==, 0x72);
	g_assert_cmphex(buf[1] | buf[2] | buf[3], ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, 0, 0, 0, 0, 0, 0), ==, 0);

	/* An I_T nexus loss supersedes an unreported LUN reset. */
	scsi_lun_set_ua(t.lun, SCSI_UA_LUN_RESET);
	scsi_lun_set_ua(t.lun, SCSI_UA_NEXUS_LOSS);
	g_assert_cmpuint(CMD(&t, NULL, 0, buf, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(6, 0x29, 0x07));
	g_assert_cmpuint(CMD(&t, NULL, 0, buf, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 0);
	ts_fini(&t);
}

static void test_inquiry(void)
{
	struct ts t;
	uint8_t b[256];

	disk(&t);
	memset(b, 0xee, sizeof(b));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 96, SCSI_INQUIRY, 0, 0, 0, 96, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 36);
	g_assert_cmpuint(t.r.residual, ==, 60);
	g_assert_cmphex(b[0], ==, 0x00);
	g_assert_cmphex(b[1], ==, 0x00);
	g_assert_cmpuint(b[4], ==, 31);
	g_assert_cmpmem(b + 8, 8, "VIREO   ", 8);
	g_assert_cmpmem(b + 16, 16, "VIREO HARDDISK  ", 16);
	/* Allocation length cuts the data. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 96, SCSI_INQUIRY, 0, 0, 0, 5, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 5);

	/* VPD 0x00 lists every page. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0x00, 0, 255, 0), ==, 0);
	g_assert_cmpuint(b[1], ==, 0);
	g_assert_cmpuint(b[3], ==, 6);
	g_assert_cmpmem(b + 4, 6, ((uint8_t[]){ 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 }), 6);
	/* 0x80: the serial. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0x80, 0, 255, 0), ==, 0);
	g_assert_cmpuint(b[3], ==, 8);
	g_assert_cmpmem(b + 4, 8, "SER-0001", 8);
	/* 0x83: T10 vendor ID with the serial, and the NAA WWN. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0x83, 0, 255, 0), ==, 0);
	g_assert_cmpuint(b[3], ==, 4 + 16 + 4 + 8);
	g_assert_cmphex(b[4], ==, 0x02);
	g_assert_cmphex(b[5], ==, 0x01);
	g_assert_cmpuint(b[7], ==, 16);
	g_assert_cmpmem(b + 8, 16, "VIREO   SER-0001", 16);
	g_assert_cmphex(b[24], ==, 0x01);
	g_assert_cmphex(b[25], ==, 0x03);
	g_assert_cmpuint(b[27], ==, 8);
	g_assert_cmphex(ts_be64(b + 28), ==, 0x5000c500a1b2c3d4ull);
	/* 0xB0: limits. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0xb0, 0, 255, 0), ==, 0);
	g_assert_cmpuint(b[3], ==, 0x3c);
	g_assert_cmpuint(b[4] & 1, ==, 1);
	g_assert_cmpuint(ts_be32(b + 8), ==, SCSI_MAX_XFER_BYTES / 512);
	g_assert_cmpuint(ts_be32(b + 20), >, 0);
	g_assert_cmpuint(ts_be32(b + 24), >, 0);
	g_assert_cmpuint(ts_be64(b + 36), >, 0);
	/* 0xB1: non-rotating. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0xb1, 0, 255, 0), ==, 0);
	g_assert_cmpuint(b[4] << 8 | b[5], ==, 1);
	/* 0xB2: thin, UNMAP and WRITE SAME with UNMAP. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0xb2, 0, 255, 0), ==, 0);
	g_assert_cmphex(b[5], ==, 0xe0);
	g_assert_cmpuint(b[6] & 7, ==, 2);

	/* Errors: unknown page, page without EVPD, CMDDT, short buffer. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0x99, 0, 255, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmphex(t.r.sense[15], ==, 0xc0);	/* SKSV, in the CDB */
	g_assert_cmpuint(t.r.sense[17], ==, 2);		/* byte 2 */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 0, 0x80, 0, 255, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 2, 0, 0, 255, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 20, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	ts_fini(&t);

	/* Without a serial there is no page 0x80; 0x83 names the drive. */
	{
		struct scsi_lun_config c = { .name = "drive-7" };

		ts_init(&t, SCSI_LUN_DISK, DISK, &c);
		g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0, 0, 255, 0), ==, 0);
		g_assert_cmpuint(b[3], ==, 5);
		g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0x80, 0, 255, 0), ==, 2);
		g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0x83, 0, 255, 0), ==, 0);
		g_assert_cmpuint(b[7], ==, 15);
		g_assert_cmpmem(b + 8, 15, "VIREO   drive-7", 15);
		/* No discard: no LBPME, no unmap limits. */
		g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_INQUIRY, 1, 0xb2, 0, 255, 0), ==, 0);
		g_assert_cmphex(b[5], ==, 0);
		ts_fini(&t);
	}
}

static void test_read_capacity(void)
{
	struct ts t;
	uint8_t b[32];
	struct scsi_lun_config c = { .block_size = 4096, .physical_block_size = 16384,
				     .discard = true };

	ts_init(&t, SCSI_LUN_DISK, DISK, &c);
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 0);
	g_assert_cmpuint(ts_be32(b), ==, DISK / 4096 - 1);
	g_assert_cmpuint(ts_be32(b + 4), ==, 4096);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 32, SCSI_SERVICE_ACTION_IN_16, 0x10, 0, 0, 0, 0, 0,
			     0, 0, 0, 0, 0, 0, 32, 0, 0), ==, 0);
	g_assert_cmpuint(ts_be64(b), ==, DISK / 4096 - 1);
	g_assert_cmpuint(ts_be32(b + 8), ==, 4096);
	g_assert_cmpuint(b[13], ==, 2);			/* 4 logical per physical */
	g_assert_cmphex(b[14] & 0x80, ==, 0x80);	/* LBPME */
	/* Errors: LBA without PMI, other service action, reserved bits. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0,
			     0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 1,
			     0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 32, SCSI_SERVICE_ACTION_IN_16, 0x11, 0, 0, 0, 0, 0,
			     0, 0, 0, 0, 0, 0, 32, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	/* Data-out to a data-in command. */
	g_assert_cmpuint(CMD(&t, b, 8, NULL, 0, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 2);
	ts_fini(&t);
}

/* Past 2^32 blocks READ CAPACITY (10) says 0xffffffff. */
static void test_read_capacity_huge(void)
{
	struct ts t;
	uint8_t b[512];
	uint64_t size = (1ull << 32) * 512 + (1ull << 20);
	FILE *f;

	t.dir = g_dir_make_tmp("vireo-scsi-XXXXXX", NULL);
	t.img = g_build_filename(t.dir, "big.img", NULL);
	f = fopen(t.img, "w");
	if (ftruncate(fileno(f), size) < 0) {
		fclose(f);
		g_unlink(t.img);
		g_rmdir(t.dir);
		g_test_skip("the temporary file system does not hold a 2 TiB sparse file");
		return;
	}
	fclose(f);
	g_unlink(t.img);
	g_rmdir(t.dir);
	g_free(t.img);
	g_free(t.dir);
	ts_init(&t, SCSI_LUN_DISK, size, NULL);
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0,
			     0), ==, 0);
	g_assert_cmphex(ts_be32(b), ==, 0xffffffff);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 32, SCSI_SERVICE_ACTION_IN_16, 0x10, 0, 0, 0, 0, 0,
			     0, 0, 0, 0, 0, 0, 32, 0, 0), ==, 0);
	g_assert_cmpuint(ts_be64(b), ==, size / 512 - 1);
	/* READ (16) reaches the last block; READ (10) cannot name it. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_16, 0, B8(size / 512 - 1), B4(1),
			     0, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_16, 0, B8(size / 512), B4(1), 0,
			     0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	ts_fini(&t);
}

static void test_read_write(void)
{
	struct ts t;
	uint8_t *w = g_malloc(256 * 512), *r = g_malloc(256 * 512 + 100), *disk_data;

	disk(&t);
	ts_clear_ua(&t);
	/* WRITE (6) of 0 blocks means 256. */
	ts_fill(w, 256 * 512, 1);
	g_assert_cmpuint(CMD(&t, w, 256 * 512, NULL, 0, SCSI_WRITE_6, 0, 0, 16, 0, 0), ==, 0);
	g_assert_cmpuint(t.r.residual, ==, 0);
	memset(r, 0, 256 * 512 + 100);
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 256 * 512 + 100, SCSI_READ_6, 0, 0, 16, 0, 0), ==,
			 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 256 * 512);
	g_assert_cmpuint(t.r.residual, ==, 100);
	g_assert_cmpmem(r, 256 * 512, w, 256 * 512);

	/* 10, 12, 16 at different places, with FUA on some. */
	ts_fill(w, 8 * 512, 2);
	g_assert_cmpuint(CMD(&t, w, 8 * 512, NULL, 0, SCSI_WRITE_10, 0x08, B4(1000), 0, B2(8),
			     0), ==, 0);
	ts_fill(w + 4096, 3 * 512, 3);
	g_assert_cmpuint(CMD(&t, w + 4096, 3 * 512, NULL, 0, SCSI_WRITE_12, 0, B4(2000), B4(3),
			     0, 0), ==, 0);
	ts_fill(w + 8192, 512, 4);
	g_assert_cmpuint(CMD(&t, w + 8192, 1024, NULL, 0, SCSI_WRITE_16, 0x08, B8(NB - 1), B4(1),
			     0, 0), ==, 0);
	g_assert_cmpuint(t.r.residual, ==, 512);
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 8 * 512, SCSI_READ_16, 0, B8(1000), B4(8), 0, 0),
			 ==, 0);
	g_assert_cmpmem(r, 8 * 512, w, 8 * 512);
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 3 * 512, SCSI_READ_10, 0, B4(2000), 0, B2(3), 0),
			 ==, 0);
	g_assert_cmpmem(r, 3 * 512, w + 4096, 3 * 512);
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 512, SCSI_READ_12, 0, B4(NB - 1), B4(1), 0, 0), ==,
			 0);
	g_assert_cmpmem(r, 512, w + 8192, 512);
	/* A transfer of 0 blocks moves nothing and succeeds, even at the end. */
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 512, SCSI_READ_10, 0, B4(NB), 0, B2(0), 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 0);

	/* What the image holds, byte for byte. */
	blk_queue_poll(t.bq);
	disk_data = file_read(&t);
	ts_fill(w, 256 * 512, 1);
	g_assert_cmpmem(disk_data + 16 * 512, 256 * 512, w, 256 * 512);
	ts_fill(w, 8 * 512, 2);
	g_assert_cmpmem(disk_data + 1000 * 512, 8 * 512, w, 8 * 512);
	ts_fill(w, 512, 4);
	g_assert_cmpmem(disk_data + (NB - 1) * 512, 512, w, 512);
	g_free(disk_data);
	ts_fini(&t);
	g_free(w);
	g_free(r);
}

static void test_rw_errors(void)
{
	struct ts t;
	uint8_t *b = g_malloc0(1 << 20);

	disk(&t);
	ts_clear_ua(&t);
	/* LBA past the end, each CDB size, and an LBA+count that wraps. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_6, 0x1f, 0xff, 0xff, 1, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 1024, SCSI_READ_10, 0, B4(NB - 1), 0, B2(2), 0), ==,
			 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(CMD(&t, b, 512, NULL, 0, SCSI_WRITE_12, 0, B4(NB), B4(1), 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 1024, SCSI_READ_16, 0, B8(~0ull), B4(2), 0, 0), ==,
			 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_16, 0, B8(NB + 1), B4(0), 0, 0), ==,
			 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	/* Transfer length vs buffers: short data-in, short data-out. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 1000, SCSI_READ_10, 0, B4(0), 0, B2(2), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(t.r.sense[17], ==, 7);		/* points at the length */
	g_assert_cmpuint(t.r.in_xfer, ==, 0);
	g_assert_cmpuint(CMD(&t, b, 511, NULL, 0, SCSI_WRITE_10, 0, B4(0), 0, B2(1), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	/* Data in both directions, data-out to a read. */
	g_assert_cmpuint(CMD(&t, b, 512, b + 4096, 512, SCSI_READ_10, 0, B4(0), 0, B2(1), 0), ==,
			 2);
	g_assert_cmpuint(CMD(&t, b, 512, NULL, 0, SCSI_READ_10, 0, B4(0), 0, B2(1), 0), ==, 2);
	/* Longer than the maximum transfer. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_16, 0, B8(0),
			     B4(SCSI_MAX_XFER_BYTES / 512 + 1), 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	/* Protection information we do not have; a reserved bit. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_10, 0x20, B4(0), 0, B2(1), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_10, 0x01, B4(0), 0, B2(1), 0), ==, 2);
	/* Unknown opcodes, a CDB shorter than its group, NACA. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, 0xc0, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x20, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x20, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_16, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x20, 0));
	g_assert_cmpuint(ts_cmd(&t, CDB(0), 0, NULL, 0, NULL, 0), ==, 2);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, 0, 0, 0, 0, 0, 0x04), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmphex(t.r.sense[15], ==, 0xca);	/* SKSV, C/D, BPV, bit 2 */
	g_assert_cmpuint(t.r.sense[17], ==, 5);
	/* MMC commands on a disk. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 12, SCSI_READ_TOC, 0, 0, 0, 0, 0, 0, 0, 12, 0), ==,
			 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x20, 0));
	ts_fini(&t);

	/* A read-only disk refuses every write. */
	{
		struct scsi_lun_config c = { .readonly = true, .discard = true };
		uint8_t u[24] = { 0, 22, 0, 16 };

		ts_init(&t, SCSI_LUN_DISK, DISK, &c);
		ts_clear_ua(&t);
		g_assert_cmpuint(CMD(&t, b, 512, NULL, 0, SCSI_WRITE_10, 0, B4(0), 0, B2(1), 0),
				 ==, 2);
		g_assert_cmphex(ts_sense(&t), ==, SENSE(7, 0x27, 0));
		g_assert_cmpuint(CMD(&t, b, 512, NULL, 0, SCSI_WRITE_SAME_10, 0, B4(0), 0, B2(1),
				     0), ==, 2);
		g_assert_cmphex(ts_sense(&t), ==, SENSE(7, 0x27, 0));
		g_assert_cmpuint(CMD(&t, u, 24, NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0, B2(24), 0),
				 ==, 2);
		g_assert_cmphex(ts_sense(&t), ==, SENSE(7, 0x27, 0));
		g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_10, 0, B4(0), 0, B2(1), 0),
				 ==, 0);
		/* MODE SENSE reports write protection. */
		g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0, 0x3f, 0, 255, 0),
				 ==, 0);
		g_assert_cmphex(b[2] & 0x80, ==, 0x80);
		ts_fini(&t);
	}
	g_free(b);
}

static void test_write_same_unmap(void)
{
	struct ts t;
	uint8_t *b = g_malloc0(1 << 20), *d;
	uint8_t pat[512], zero[512] = { 0 }, u[8 + 3 * 16] = { 0 };

	disk(&t);
	ts_clear_ua(&t);
	/* Fill 3000 blocks with data, then pattern, zero and unmap parts. */
	ts_fill(b, 1 << 20, 9);
	for (unsigned lba = 0; lba < 4096; lba += 2048)
		g_assert_cmpuint(CMD(&t, b, 1 << 20, NULL, 0, SCSI_WRITE_10, 0, B4(lba), 0,
				     B2(2048), 0), ==, 0);
	ts_fill(pat, 512, 77);
	/* A pattern over 3000 blocks: more than one internal chunk. */
	g_assert_cmpuint(CMD(&t, pat, 512, NULL, 0, SCSI_WRITE_SAME_16, 0, B8(100), B4(3000), 0,
			     0), ==, 0);
	/* Zeroes without and with UNMAP, NDOB. */
	g_assert_cmpuint(CMD(&t, zero, 512, NULL, 0, SCSI_WRITE_SAME_10, 0, B4(10), 0, B2(5), 0),
			 ==, 0);
	g_assert_cmpuint(CMD(&t, zero, 512, NULL, 0, SCSI_WRITE_SAME_10, 0x08, B4(20), 0, B2(8),
			     0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_WRITE_SAME_16, 0x09, B8(40), B4(8), 0, 0),
			 ==, 0);
	/* UNMAP of two ranges (and an empty descriptor). */
	u[1] = 6 + 3 * 16;
	u[3] = 3 * 16;
	u[8 + 7] = 60;
	u[8 + 11] = 4;
	u[24 + 7] = 80;
	u[24 + 11] = 0;
	u[40 + 6] = 0x0c;		/* LBA 3200 */
	u[40 + 7] = 0x80;
	u[40 + 11] = 16;
	g_assert_cmpuint(CMD(&t, u, sizeof(u), NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0,
			     B2(sizeof(u)), 0), ==, 0);
	blk_queue_poll(t.bq);
	d = file_read(&t);
	ts_fill(b, 1 << 20, 9);
	g_assert_cmpmem(d, 10 * 512, b, 10 * 512);
	g_assert_true(ts_is(d + 10 * 512, 5 * 512, 0));
	g_assert_cmpmem(d + 15 * 512, 512, b + 15 * 512, 512);
	g_assert_true(ts_is(d + 20 * 512, 8 * 512, 0));
	g_assert_true(ts_is(d + 40 * 512, 8 * 512, 0));
	g_assert_true(ts_is(d + 60 * 512, 4 * 512, 0));
	g_assert_cmpmem(d + 64 * 512, 512, b + 64 * 512, 512);
	for (unsigned i = 100; i < 3100; i++)
		g_assert_cmpmem(d + i * 512, 512, pat, 512);
	g_assert_true(ts_is(d + 3200 * 512, 16 * 512, 0));
	g_assert_cmpmem(d + 3216 * 512, 512, b + (3216 - 2048) * 512, 512);
	g_assert_cmpmem(d + 3100 * 512, 512, b + (3100 % 2048) * 512, 512);
	g_free(d);

	/* Errors. */
	g_assert_cmpuint(CMD(&t, pat, 512, NULL, 0, SCSI_WRITE_SAME_10, 0, B4(0), 0, B2(0), 0),
			 ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, pat, 512, NULL, 0, SCSI_WRITE_SAME_10, 0x02, B4(0), 0, B2(1),
			     0), ==, 2);
	g_assert_cmpuint(CMD(&t, pat, 100, NULL, 0, SCSI_WRITE_SAME_10, 0, B4(0), 0, B2(1), 0),
			 ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, pat, 512, NULL, 0, SCSI_WRITE_SAME_16, 0, B8(NB - 1), B4(2), 0,
			     0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(CMD(&t, pat, 512, NULL, 0, SCSI_WRITE_SAME_16, 0, B8(0),
			     B4(SCSI_MAX_WS_BLOCKS + 1), 0, 0), ==, 2);
	/* UNMAP: no list is fine; a short one, lengths past the list, a range past the end. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0, B2(0), 0), ==, 0);
	g_assert_cmpuint(CMD(&t, u, 6, NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0, B2(6), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x1a, 0));
	g_assert_cmpuint(CMD(&t, u, 24, NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0, B2(24), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x1a, 0));
	g_assert_cmpuint(CMD(&t, u, 24, NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0, B2(56), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	u[1] = 22;
	u[3] = 16;
	u[8 + 2] = 0xff;
	g_assert_cmpuint(CMD(&t, u, 24, NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0, B2(24), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	u[8 + 2] = 0;
	u[8 + 8] = 0xff;
	g_assert_cmpuint(CMD(&t, u, 24, NULL, 0, SCSI_UNMAP, 0, 0, 0, 0, 0, 0, B2(24), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x26, 0));
	g_assert_cmphex(t.r.sense[15], ==, 0x80);	/* SKSV, in the parameter list */
	g_assert_cmpuint(t.r.sense[17], ==, 16);
	g_assert_cmpuint(CMD(&t, u, 24, NULL, 0, SCSI_UNMAP, 1, 0, 0, 0, 0, 0, B2(24), 0), ==, 2);
	ts_fini(&t);
	g_free(b);
}

static void test_sync_verify(void)
{
	struct ts t;
	uint8_t *b = g_malloc0(64 * 512), *v = g_malloc0(64 * 512);

	disk(&t);
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_SYNCHRONIZE_CACHE_10, 0, B4(0), 0, B2(0),
			     0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_SYNCHRONIZE_CACHE_16, 0x02, B8(10),
			     B4(100), 0, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_SYNCHRONIZE_CACHE_16, 0, B8(NB), B4(1),
			     0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_SYNCHRONIZE_CACHE_10, 0, B4(NB + 1), 0,
			     B2(0), 0), ==, 2);

	ts_fill(b, 64 * 512, 5);
	g_assert_cmpuint(CMD(&t, b, 64 * 512, NULL, 0, SCSI_WRITE_10, 0, B4(300), 0, B2(64), 0),
			 ==, 0);
	/* BYTCHK 0: the range exists. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_VERIFY_10, 0, B4(300), 0, B2(64), 0), ==,
			 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_VERIFY_16, 0, B8(NB - 1), B4(2), 0, 0),
			 ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	/* BYTCHK 1: equal, then one byte off. */
	memcpy(v, b, 64 * 512);
	g_assert_cmpuint(CMD(&t, v, 64 * 512, NULL, 0, SCSI_VERIFY_12, 0x02, B4(300), B4(64), 0,
			     0), ==, 0);
	v[40 * 512 + 3] ^= 1;
	g_assert_cmpuint(CMD(&t, v, 64 * 512, NULL, 0, SCSI_VERIFY_16, 0x02, B8(300), B4(64), 0,
			     0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(0xe, 0x1d, 0));
	g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_VERIFY_10, 0x02, B4(300), 0, B2(64), 0),
			 ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	/* BYTCHK 3: one block against each. */
	memset(v, 0x5a, 512);
	g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_WRITE_SAME_10, 0, B4(500), 0, B2(10), 0),
			 ==, 0);
	g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_VERIFY_10, 0x06, B4(500), 0, B2(10), 0),
			 ==, 0);
	g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_VERIFY_10, 0x06, B4(500), 0, B2(11), 0),
			 ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(0xe, 0x1d, 0));
	/* Over several internal chunks: 3000 blocks, a difference near the end. */
	{
		uint8_t *big = g_malloc(3000 * 512);

		memset(v, 0x6b, 512);
		g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_WRITE_SAME_16, 0, B8(1000), B4(3000),
				     0, 0), ==, 0);
		g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_VERIFY_16, 0x06, B8(1000), B4(3000),
				     0, 0), ==, 0);
		g_assert_cmpuint(CMD(&t, NULL, 0, big, 3000 * 512, SCSI_READ_16, 0, B8(1000),
				     B4(3000), 0, 0), ==, 0);
		g_assert_cmpuint(CMD(&t, big, 3000 * 512, NULL, 0, SCSI_VERIFY_16, 0x02, B8(1000),
				     B4(3000), 0, 0), ==, 0);
		big[2900 * 512 + 7] ^= 0x10;
		g_assert_cmpuint(CMD(&t, big, 3000 * 512, NULL, 0, SCSI_VERIFY_16, 0x02, B8(1000),
				     B4(3000), 0, 0), ==, 2);
		g_assert_cmphex(ts_sense(&t), ==, SENSE(0xe, 0x1d, 0));
		g_assert_cmpuint(CMD(&t, big + 2900 * 512, 512, NULL, 0, SCSI_WRITE_10, 0,
				     B4(1000 + 2950), 0, B2(1), 0), ==, 0);
		g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_VERIFY_16, 0x06, B8(1000), B4(3000),
				     0, 0), ==, 2);
		g_assert_cmphex(ts_sense(&t), ==, SENSE(0xe, 0x1d, 0));
		g_free(big);
	}
	/* BYTCHK 2 is reserved. */
	g_assert_cmpuint(CMD(&t, v, 512, NULL, 0, SCSI_VERIFY_10, 0x04, B4(500), 0, B2(1), 0),
			 ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	ts_fini(&t);
	g_free(b);
	g_free(v);
}

static void test_mode_pages(void)
{
	struct ts t;
	uint8_t b[256], sel[64];

	disk(&t);
	ts_clear_ua(&t);
	/* MODE SENSE (6), all pages: header, block descriptor, caching, control. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0, 0x3f, 0, 255, 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 4 + 8 + 20 + 12);
	g_assert_cmpuint(b[0], ==, t.r.in_xfer - 1);
	g_assert_cmpuint(b[3], ==, 8);
	g_assert_cmpuint(ts_be32(b + 4), ==, NB);
	g_assert_cmpuint(ts_be32(b + 8) & 0xffffff, ==, 512);
	g_assert_cmphex(b[12], ==, 0x08);
	g_assert_cmphex(b[14] & 0x04, ==, 0x04);	/* WCE from write_cache */
	g_assert_cmphex(b[32], ==, 0x0a);
	/* MODE SENSE (10), LLBAA, caching only, no block descriptors. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_10, 0x10, 0x08, 0, 0, 0, 0,
			     B2(255), 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 8 + 16 + 20);
	g_assert_cmpuint(b[7], ==, 16);
	g_assert_cmpuint(ts_be64(b + 8), ==, NB);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_10, 0x08, 0x08, 0, 0, 0, 0,
			     B2(255), 0), ==, 0);
	g_assert_cmpuint(t.r.in_xfer, ==, 8 + 20);
	/* Changeable values: WCE only; saved values are not supported. */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0x08, 0x48, 0, 255, 0), ==,
			 0);
	g_assert_cmphex(b[6], ==, 0x04);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0, 0xc8, 0, 255, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x39, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0, 0x19, 0, 255, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0, 0x08, 1, 255, 0), ==, 2);

	/* MODE SELECT (6): turn WCE off, and back through (10). */
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0x08, 0x08, 0, 255, 0), ==,
			 0);
	memset(sel, 0, sizeof(sel));
	memcpy(sel + 4, b + 4, 20);
	sel[4 + 2] &= ~0x04;
	g_assert_cmpuint(CMD(&t, sel, 24, NULL, 0, SCSI_MODE_SELECT_6, 0x10, 0, 0, 24, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0x08, 0x08, 0, 255, 0), ==,
			 0);
	g_assert_cmphex(b[6] & 0x04, ==, 0);
	/* Writes go through with WCE off (each is flushed). */
	{
		uint8_t w[512] = { 1, 2, 3 };

		g_assert_cmpuint(CMD(&t, w, 512, NULL, 0, SCSI_WRITE_10, 0, B4(9), 0, B2(1), 0),
				 ==, 0);
	}
	/* A change to a bit that is not changeable: error at that byte. */
	memcpy(sel + 4, b + 4, 20);
	sel[4 + 3] = 0x01;
	g_assert_cmpuint(CMD(&t, sel, 24, NULL, 0, SCSI_MODE_SELECT_6, 0x10, 0, 0, 24, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x26, 0));
	g_assert_cmpuint(t.r.sense[17], ==, 7);
	/* Wrong page length, truncated page, save bit, unknown page, length past data. */
	memcpy(sel + 4, b + 4, 20);
	sel[5] = 10;
	g_assert_cmpuint(CMD(&t, sel, 24, NULL, 0, SCSI_MODE_SELECT_6, 0x10, 0, 0, 24, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x26, 0));
	sel[5] = 18;
	g_assert_cmpuint(CMD(&t, sel, 20, NULL, 0, SCSI_MODE_SELECT_6, 0x10, 0, 0, 20, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x1a, 0));
	g_assert_cmpuint(CMD(&t, sel, 24, NULL, 0, SCSI_MODE_SELECT_6, 0x11, 0, 0, 24, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	sel[4] = 0x19;
	g_assert_cmpuint(CMD(&t, sel, 24, NULL, 0, SCSI_MODE_SELECT_6, 0x10, 0, 0, 24, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x26, 0));
	g_assert_cmpuint(CMD(&t, sel, 10, NULL, 0, SCSI_MODE_SELECT_6, 0x10, 0, 0, 24, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));

	/* Control page D_SENSE: sense data switches to descriptor format. */
	memset(sel, 0, sizeof(sel));
	sel[7] = 8;				/* block descriptor restating 512 */
	sel[8 + 6] = 0x02;
	sel[16] = 0x0a;
	sel[17] = 10;
	sel[18] = 0x04;
	sel[19] = 0x10;
	sel[24] = 0xff;
	sel[25] = 0xff;
	g_assert_cmpuint(CMD(&t, sel, 28, NULL, 0, SCSI_MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, B2(28),
			     0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_10, 0, B4(NB), 0, B2(1), 0), ==, 2);
	g_assert_cmphex(t.r.sense[0], ==, 0x72);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 512, SCSI_READ_10, 0, B4(0), 0, B2(2), 0), ==, 2);
	g_assert_cmphex(t.r.sense[0], ==, 0x72);
	g_assert_cmpuint(t.r.sense_len, ==, 16);
	g_assert_cmphex(t.r.sense[8], ==, 0x02);		/* sense key specific descriptor */
	g_assert_cmphex(t.r.sense[12], ==, 0xc0);
	g_assert_cmpuint(t.r.sense[14], ==, 7);
	/* A block descriptor with another block size is refused. */
	sel[8 + 6] = 0x10;
	g_assert_cmpuint(CMD(&t, sel, 28, NULL, 0, SCSI_MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, B2(28),
			     0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x26, 0));

	/* LUN reset restores the defaults: fixed sense, WCE on. */
	scsi_lun_reset(t.lun, SCSI_UA_LUN_RESET);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, 0, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(t.r.sense[0], ==, 0x70);
	g_assert_cmpuint(CMD(&t, NULL, 0, b, 255, SCSI_MODE_SENSE_6, 0x08, 0x08, 0, 255, 0), ==,
			 0);
	g_assert_cmphex(b[6] & 0x04, ==, 0x04);
	ts_fini(&t);
}

static void test_start_stop_prevent(void)
{
	struct ts t;

	disk(&t);
	ts_clear_ua(&t);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_START_STOP_UNIT, 1, 0, 0, 0x01, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x00, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x30, 0), ==, 0);
	/* A fixed disk has nothing to eject. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_false(scsi_lun_medium_locked(t.lun));
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 2, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	ts_fini(&t);
}

/* Random CDBs for every opcode: always a status, never a crash. */
static void test_fuzz(void)
{
	struct ts t;
	uint8_t *out = g_malloc(1 << 16), *in = g_malloc(1 << 16);
	GRand *rnd = g_rand_new_with_seed(7);
	unsigned good = 0, check = 0;

	disk(&t);
	for (unsigned i = 0; i < 20000; i++) {
		uint8_t cdb[16];
		unsigned len = g_rand_int_range(rnd, 0, 17);
		size_t ol = 0, il = 0;

		for (unsigned j = 0; j < sizeof(cdb); j++)
			cdb[j] = g_rand_int(rnd);
		cdb[0] = i & 0xff;
		/* Keep transfers small so the fuzz stays quick. */
		if (g_rand_boolean(rnd))
			cdb[1] &= 0x1f;
		if (g_rand_boolean(rnd))
			memset(cdb + 2, 0, 4);
		if (g_rand_int_range(rnd, 0, 3) == 0)
			ol = g_rand_int_range(rnd, 0, 1 << 16);
		else
			il = g_rand_int_range(rnd, 0, 1 << 16);
		for (size_t j = 0; j < ol; j++)
			out[j] = g_rand_int(rnd);
		if (ts_cmd(&t, cdb, len, out, ol, in, il) == SCSI_STATUS_GOOD)
			good++;
		else
			check++;
	}
	g_assert_cmpuint(good, >, 0);
	g_assert_cmpuint(check, >, 0);
	g_rand_free(rnd);
	ts_fini(&t);
	g_free(out);
	g_free(in);
}

static void test_config_errors(void)
{
	struct scsi_lun_config c = { .type = SCSI_LUN_DISK };
	char err[256];

	g_assert_null(scsi_lun_new(&c, err, sizeof(err)));
	g_assert_nonnull(strstr(err, "drive"));
	c.blk = (struct blk *)1;	/* never dereferenced before the checks */
	c.block_size = 1000;
	g_assert_null(scsi_lun_new(&c, err, sizeof(err)));
	g_assert_nonnull(strstr(err, "logical_block_size"));
	c.block_size = 4096;
	c.physical_block_size = 512;
	g_assert_null(scsi_lun_new(&c, err, sizeof(err)));
	c.physical_block_size = 0;
	c.serial = "0123456789012345678901234567890123456789";
	g_assert_null(scsi_lun_new(&c, err, sizeof(err)));
	g_assert_nonnull(strstr(err, "serial"));
	c.type = 3;
	g_assert_null(scsi_lun_new(&c, err, sizeof(err)));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/scsi/disk/unit-attention", test_unit_attention);
	g_test_add_func("/scsi/disk/inquiry", test_inquiry);
	g_test_add_func("/scsi/disk/read-capacity", test_read_capacity);
	g_test_add_func("/scsi/disk/read-capacity-huge", test_read_capacity_huge);
	g_test_add_func("/scsi/disk/read-write", test_read_write);
	g_test_add_func("/scsi/disk/rw-errors", test_rw_errors);
	g_test_add_func("/scsi/disk/write-same-unmap", test_write_same_unmap);
	g_test_add_func("/scsi/disk/sync-verify", test_sync_verify);
	g_test_add_func("/scsi/disk/mode-pages", test_mode_pages);
	g_test_add_func("/scsi/disk/start-stop-prevent", test_start_stop_prevent);
	g_test_add_func("/scsi/disk/fuzz", test_fuzz);
	g_test_add_func("/scsi/disk/config-errors", test_config_errors);
	return g_test_run();
}
