/*
 * virtio-scsi-pci played from the guest side: the test is the driver.  It
 * finds the controller in config space, negotiates, lays out the control,
 * event and request queues in guest RAM and sends CDBs to scsi-hd/scsi-cd
 * units: data round trips on raw and qcow2 (qemu-img check clean), sense
 * data in the response, bad targets, 1,024 LUNs on one controller, task
 * management with I/O in flight, hot-plug, unplug and media-change events,
 * the driver-set CDB size, and malformed chains (NEEDS_RESET, then a reset
 * brings the device back), the target state across a migration, and a
 * held load (quiesce, load, resume) into a controller that exists, and an
 * eject while the controller is quiesced.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "test_vscsi_util.h"
#include "vmstate.h"

/* ---- tests ---- */

static void test_config(void)
{
	struct st t;

	st_init(&t, 3, false);
	st_find(&t);
	g_assert_cmpuint(t.d.nr_queues, ==, 5);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, num_queues), 4), ==,
			 3);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, sense_size), 4), ==,
			 96);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, cdb_size), 4), ==,
			 32);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, max_target), 2), ==,
			 255);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, max_lun), 4), ==,
			 16383);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, event_info_size),
				     4), ==, 16);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, seg_max), 4), ==,
			 254);
	{
		uint64_t f = 0;

		for (unsigned sel = 0; sel < 2; sel++) {
			vh_common_write(&t.d, VIRTIO_PCI_COMMON_DFSELECT, 4, sel);
			f |= vh_common_read(&t.d, VIRTIO_PCI_COMMON_DF, 4) << (32 * sel);
		}
		g_assert_true(f & 1ull << VIRTIO_F_VERSION_1);
		g_assert_true(f & 1ull << VIRTIO_F_EVENT_IDX);
		g_assert_true(f & 1ull << VIRTIO_F_INDIRECT_DESC);
		g_assert_true(f & 1ull << VIRTIO_SCSI_F_HOTPLUG);
		g_assert_false(f & 1ull << VIRTIO_SCSI_F_INOUT);
	}
	st_fini(&t);
}

static void test_options(void)
{
	struct st t;
	char err[256], *img;

	st_init(&t, 1, false);
	img = st_image(&t, "a.img", "raw", 1 << 20);
	st_drive(&t, "d0", img, "raw", NULL);
	g_free(img);
	img = st_image(&t, "b.img", "raw", 1 << 20);
	st_drive(&t, "d1", img, "raw", "readonly=on");
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,bus=nope.0", err,
					   sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "nope.0"));
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,bus=scsi0", err,
					   sizeof(err)), <, 0);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,channel=1", err,
					   sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "channel"));
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,lun=16384", err,
					   sizeof(err)), <, 0);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,scsi-id=256", err,
					   sizeof(err)), <, 0);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=zz", err, sizeof(err)), <, 0);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd", err, sizeof(err)), <, 0);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,wwn=xyz", err, sizeof(err)),
			<, 0);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,bogus=1", err, sizeof(err)),
			<, 0);
	g_assert_nonnull(strstr(err, "bogus"));
	g_assert_cmpint(machine_add_device(&t.h.m, "virtio-scsi-pci,num_queues=0", err,
					   sizeof(err)), <, 0);
	g_assert_cmpint(machine_add_device(&t.h.m, "virtio-scsi-pci,virtqueue_size=100", err,
					   sizeof(err)), <, 0);
	/* Two disks without scsi-id land on targets 0 and 1. */
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0,rotation_rate=5", err,
					   sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "rotation_rate"));
	/* What libvirt writes. */
	st_device(&t, "scsi-hd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,device_id=drive-scsi0-0-0-0,"
		  "drive=d0,id=hd0,bootindex=1,rotation_rate=7200");
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=d0", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "in use"));
	st_device(&t, "scsi-hd,drive=d1,id=hd1");
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-cd,id=hd1", err, sizeof(err)), <, 0);
	st_device(&t, "scsi-cd,id=cd0,scsi-id=1,lun=1");
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-cd,scsi-id=1,lun=1", err, sizeof(err)),
			<, 0);
	g_assert_nonnull(strstr(err, "in use"));
	/* scsi-block needs a host SCSI device; an image file is not one. */
	g_free(img);
	img = st_image(&t, "c.img", "raw", 1 << 20);
	st_drive(&t, "d2", img, "raw", NULL);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-block,drive=d2", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "SG_IO"));

	st_find(&t);
	st_up(&t);
	/* hd0 at 0:0, hd1 at 1:0 (read-only), cd0 at 1:1 (empty). */
	{
		uint8_t *b = gp(&t, DATA(0), 4096);

		st_clear_ua(&t, 0, 0);
		st_clear_ua(&t, 1, 0);
		st_clear_ua(&t, 1, 1);
		g_assert_cmpuint(CMD(&t, 1, 0, DATA(0), 512, 0, 0, SCSI_WRITE_10, 0, B4(0), 0, B2(1),
				     0), ==, 0);
		g_assert_cmphex(st_sense(&t), ==, SENSE(7, 0x27, 0));
		g_assert_cmpuint(CMD(&t, 1, 1, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==,
				 0);
		g_assert_cmphex(st_sense(&t), ==, SENSE(2, 0x3a, 0));
		g_assert_cmpuint(CMD(&t, 1, 1, 0, 0, DATA(0), 36, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==,
				 0);
		g_assert_cmphex(b[0], ==, 0x05);
		/* device_id names the disk in VPD 0x83; rotation_rate in 0xB1. */
		g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 255, SCSI_INQUIRY, 1, 0x83, 0, 255, 0),
				 ==, 0);
		g_assert_cmpmem(b + 8, 8 + 17, "VIREO   drive-scsi0-0-0-0", 8 + 17);
		g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 64, SCSI_INQUIRY, 1, 0xb1, 0, 64, 0),
				 ==, 0);
		g_assert_cmpuint(b[4] << 8 | b[5], ==, 7200);
	}
	g_assert_cmpint(virtio_scsi_device_del(&t.h.m, "nope", err, sizeof(err)), ==, -ENOENT);
	st_fini(&t);
	g_free(img);
}

/* Commands through the device on one format; the image checked after. */
static void requests(const char *fmt)
{
	struct st t;
	char *img;
	uint8_t *b;
	uint32_t used;

	st_init(&t, 2, true);
	img = st_image(&t, "disk.img", fmt, DISK);
	if (!img) {
		g_test_skip("qemu-img is not available to create a qcow2 image");
		st_fini(&t);
		return;
	}
	st_drive(&t, "d0", img, fmt, "discard=unmap");
	st_device(&t, "scsi-hd,drive=d0,bus=scsi0.0,scsi-id=2,lun=5,serial=SN42,"
		  "wwn=0x5000000000000042");
	st_find(&t);
	st_up(&t);
	b = gp(&t, DATA(0), 1 << 20);

	/* The first command sees the power-on attention, with its sense. */
	g_assert_cmpuint(CMD(&t, 2, 5, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_OK);
	g_assert_cmpuint(t.resp.status, ==, SCSI_STATUS_CHECK_CONDITION);
	g_assert_cmpuint(t.resp.sense_len, ==, 18);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x29, 0));
	g_assert_cmpuint(CMD(&t, 2, 5, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	g_assert_cmpuint(t.resp.sense_len, ==, 0);

	/* INQUIRY and VPD through the device; residual of a big buffer. */
	g_assert_cmpuint(st_cmd_q(&t, 0, 2, 5, CDB(SCSI_INQUIRY, 1, 0x80, 0, 255, 0), 6, 0, 0,
				  DATA(0), 255, &used), ==, 0);
	g_assert_cmpuint(t.resp.resid, ==, 255 - 8);
	g_assert_cmpuint(used, ==, sizeof(t.resp) + 96 + 8);
	g_assert_cmpmem(b + 4, 4, "SN42", 4);
	/* A LUN that is not there on a target that is; a target that is not. */
	g_assert_cmpuint(CMD(&t, 2, 0, 0, 0, DATA(0), 36, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==, 0);
	g_assert_cmphex(b[0], ==, 0x7f);
	g_assert_cmpuint(CMD(&t, 2, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(5, 0x25, 0));
	g_assert_cmpuint(CMD(&t, 3, 5, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_BAD_TARGET);
	g_assert_cmpuint(CMD(&t, 2, 5, 0, 0, DATA(0), 64, SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, B4(64),
			     0, 0), ==, 0);
	g_assert_cmpuint(b[3], ==, 8);
	g_assert_cmphex(b[9], ==, 5);

	/* WRITE (10) from queue 0, READ (16) from queue 1, through indirect tables. */
	for (unsigned i = 0; i < 65536; i++)
		b[i] = i * 7 + (i >> 9);
	{
		uint16_t h;
		uint32_t id, len;

		h = st_submit(&t, 0, 2, 5, 7, CDB(SCSI_WRITE_10, 0, B4(100), 0, B2(128), 0), 10,
			      DATA(0), 65536, 0, 0, true);
		vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
		g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_REQ, &id, &len));
		g_assert_cmpuint(id, ==, h);
		g_assert_cmpuint(st_result(&t, 0, h), ==, 0);
		g_assert_cmpuint(t.resp.status, ==, 0);
		memset(gp(&t, DATA(1), 65536), 0, 65536);
		h = st_submit(&t, 1, 2, 5, 8, CDB(SCSI_READ_16, 0, 0, 0, 0, 0, B4(100), B4(128), 0,
						  0), 16, 0, 0, DATA(1), 65536, true);
		vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ + 1);
		g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_REQ + 1, &id, &len));
		g_assert_cmpuint(st_result(&t, 1, h), ==, 0);
		g_assert_cmpuint(len, ==, sizeof(t.resp) + 96 + 65536);
		g_assert_cmpmem(gp(&t, DATA(1), 65536), 65536, b, 65536);
	}
	/* WRITE SAME with UNMAP, UNMAP, SYNCHRONIZE CACHE. */
	memset(b, 0, 512);
	g_assert_cmpuint(CMD(&t, 2, 5, DATA(0), 512, 0, 0, SCSI_WRITE_SAME_10, 0x08, B4(110), 0,
			     B2(8), 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	g_assert_cmpuint(CMD(&t, 2, 5, 0, 0, 0, 0, SCSI_SYNCHRONIZE_CACHE_10, 0, B4(0), 0, B2(0),
			     0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	/* Errors come back as CHECK CONDITION with sense, the queue goes on. */
	g_assert_cmpuint(CMD(&t, 2, 5, 0, 0, DATA(0), 512, SCSI_READ_10, 0, B4(DISK / 512), 0,
			     B2(1), 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(t.resp.resid, ==, 512);
	g_assert_cmpuint(CMD(&t, 2, 5, 0, 0, DATA(0), 100, SCSI_READ_10, 0, B4(0), 0, B2(1), 0),
			 ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(CMD(&t, 2, 5, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(5, 0x20, 0));
	g_assert_false(vh_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	g_assert_cmpuint(vh_msi_count(&t.h, 3), >, 0);
	g_assert_cmpuint(vh_msi_count(&t.h, 4), >, 0);

	vh_machine_destroy(&t.h);
	/* Read the image back: qemu-img sees a clean image with our data. */
	{
		char *raw = g_build_filename(t.dir, "out.raw", NULL);
		guint8 *disk = NULL;
		gsize len = 0;
		int status = -1;

		if (!strcmp(fmt, "qcow2")) {
			char *check[] = { "qemu-img", "check", "-q", img, NULL };
			char *conv[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "raw", img,
					 raw, NULL };

			g_assert_true(g_spawn_sync(NULL, check, NULL, G_SPAWN_SEARCH_PATH, NULL,
						   NULL, NULL, NULL, &status, NULL));
			g_assert_cmpint(status, ==, 0);
			g_assert_true(g_spawn_sync(NULL, conv, NULL, G_SPAWN_SEARCH_PATH, NULL,
						   NULL, NULL, NULL, &status, NULL));
			g_assert_cmpint(status, ==, 0);
			g_assert_true(g_file_get_contents(raw, (gchar **)&disk, &len, NULL));
		} else {
			g_assert_true(g_file_get_contents(img, (gchar **)&disk, &len, NULL));
		}
		g_assert_cmpuint(len, ==, DISK);
		for (unsigned i = 0; i < 65536; i++) {
			uint8_t want = (i >= 10 * 512 && i < 18 * 512) ? 0 : (uint8_t)(i * 7 + (i >> 9));

			if (disk[100 * 512 + i] != want)
				g_assert_cmpuint(disk[100 * 512 + i], ==, want);
		}
		g_free(disk);
		g_free(raw);
	}
	st_rmdir(&t);
	g_free(img);
}

/*
 * A drive's I/O limits hold a scsi-hd's reads in the block layer; a reset
 * with reads waiting does not wait the limits out (the I/O thread sends
 * them at once as it stops).
 */
static void test_throttle(void)
{
	enum { N = 20 };
	struct blk_throttle_limits slow = { .avg[BLK_THR_IOPS_TOTAL] = 1 };
	uint32_t id, len;
	struct st t;
	gint64 t0;
	char *img;

	st_init(&t, 1, true);
	img = st_image(&t, "disk.img", "raw", DISK);
	st_drive(&t, "d0", img, "raw", "throttling.iops-total=50");
	g_free(img);
	st_device(&t, "scsi-hd,drive=d0,bus=scsi0.0,scsi-id=1,lun=0");
	st_find(&t);
	st_up(&t);
	st_clear_ua(&t, 1, 0);
	/* 6 at once (50/10 over the empty bucket, and one), then 20 ms each. */
	t0 = g_get_monotonic_time();
	for (unsigned i = 0; i < N; i++)
		st_submit(&t, 0, 1, 0, i, CDB(SCSI_READ_10, 0, B4(i * 8), 0, B2(8), 0), 10, 0, 0,
			  DATA(0) + i * 4096, 4096, false);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
	for (unsigned i = 0; i < N; i++) {
		g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_REQ, &id, &len));
		g_assert_cmpuint(st_result(&t, 0, id), ==, VIRTIO_SCSI_S_OK);
		g_assert_cmpuint(t.resp.status, ==, 0);
	}
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 270000);

	/* At 1 a second, 8 reads would take 7 s more than the first. */
	g_assert_cmpint(blk_set_throttle(drive_find(&t.h.m, "d0")->blk, &slow, NULL, 0), ==, 0);
	for (unsigned i = 0; i < 8; i++)
		st_submit(&t, 0, 1, 0, i, CDB(SCSI_READ_10, 0, B4(i * 8), 0, B2(8), 0), 10, 0, 0,
			  DATA(0) + i * 4096, 4096, false);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
	g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_REQ, &id, &len));
	t0 = g_get_monotonic_time();
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	g_assert_cmpuint(vh_status(&t.d), ==, 0);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
	st_fini(&t);
}

static void test_requests_raw(void)
{
	requests("raw");
}

static void test_requests_qcow2(void)
{
	requests("qcow2");
}

/* 1,024 LUNs on one controller, each its own image. */
static void test_many_luns(void)
{
	enum { N = 1024 };
	struct st t;
	uint8_t *b;

	st_init(&t, 1, true);
	for (unsigned i = 0; i < N; i++) {
		char name[32], id[16];
		char *img;

		snprintf(name, sizeof(name), "l%u.img", i);
		snprintf(id, sizeof(id), "d%u", i);
		img = st_image(&t, name, "raw", 64 * 1024);
		st_drive(&t, id, img, "raw", "aio=threads");
		st_device(&t, "scsi-hd,drive=%s,bus=scsi0.0,scsi-id=0,lun=%u,serial=S%04u", id, i,
			  i);
		g_free(img);
	}
	st_find(&t);
	st_up(&t);
	b = gp(&t, DATA(0), 8 + 8 * 2048);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 8 + 8 * 2048, SCSI_REPORT_LUNS, 0, 0, 0, 0,
			     0, B4(8 + 8 * 2048), 0, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	g_assert_cmpuint((b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]), ==, 8 * N);
	g_assert_cmphex(b[8 + 8 * 1023], ==, 0x43);	/* flat addressing */
	g_assert_cmphex(b[8 + 8 * 1023 + 1], ==, 0xff);
	/* Each LUN: its serial, then a block of its own, read back. */
	for (unsigned i = 0; i < N; i++) {
		uint8_t *w = gp(&t, DATA(1), 512), *r = gp(&t, DATA(2), 512);
		char want[8];

		g_assert_cmpuint(CMD(&t, 0, i, 0, 0, DATA(0), 64, SCSI_INQUIRY, 1, 0x80, 0, 64, 0),
				 ==, 0);
		g_assert_cmpuint(t.resp.status, ==, 0);
		snprintf(want, sizeof(want), "S%04u", i);
		g_assert_cmpmem(b + 4, 5, want, 5);
		memset(w, i & 0xff, 512);
		w[0] = i >> 8;
		st_clear_ua(&t, 0, i);
		g_assert_cmpuint(CMD(&t, 0, i, DATA(1), 512, 0, 0, SCSI_WRITE_10, 0, B4(i % 128), 0,
				     B2(1), 0), ==, 0);
		g_assert_cmpuint(t.resp.status, ==, 0);
		memset(r, 0, 512);
		g_assert_cmpuint(CMD(&t, 0, i, 0, 0, DATA(2), 512, SCSI_READ_10, 0, B4(i % 128), 0,
				     B2(1), 0), ==, 0);
		g_assert_cmpmem(r, 512, w, 512);
	}
	st_fini(&t);
}

/*
 * A read the LUN reset did not abort: good, or (LUN 0 only) the reset's
 * attention when the read reached the device after the reset.  Returns 1
 * for the attention.
 */
static unsigned tmf_late_status(struct st *t, unsigned i)
{
	if (t->resp.status == SCSI_STATUS_GOOD)
		return 0;
	g_assert_cmpuint(i % 8, !=, 7);
	g_assert_cmphex(st_sense(t), ==, SENSE(6, 0x29, 0x03));
	return 1;
}

/* Task management, with reads in flight on two queues. */
static void test_tmf(void)
{
	enum { N = 24 };
	struct st t;
	char *img;
	uint16_t heads[2][N];
	bool seen[2][N];
	unsigned aborted = 0, ok = 0, ua_late = 0;

	st_init(&t, 2, true);
	img = st_image(&t, "disk.img", "raw", 64ull << 20);
	st_drive(&t, "d0", img, "raw", "aio=threads");
	st_device(&t, "scsi-hd,drive=d0,scsi-id=0,lun=0");
	g_free(img);
	img = st_image(&t, "other.img", "raw", 1 << 20);
	st_drive(&t, "d1", img, "raw", NULL);
	st_device(&t, "scsi-hd,drive=d1,scsi-id=0,lun=1");
	g_free(img);
	st_find(&t);
	st_up(&t);
	st_clear_ua(&t, 0, 0);
	st_clear_ua(&t, 0, 1);

	/* Functions on what is not there, and without I/O. */
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 0, 99), ==,
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0, 99), ==,
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_CLEAR_ACA, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_FUNCTION_REJECTED);
	g_assert_cmpuint(st_tmf(&t, 77, 0, 0, 0), ==, VIRTIO_SCSI_S_FUNCTION_REJECTED);
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 9, 0, 0), ==,
			 VIRTIO_SCSI_S_BAD_TARGET);
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 7, 0), ==,
			 VIRTIO_SCSI_S_INCORRECT_LUN);
	/* I_T nexus reset: every LUN of the target reports 29/07. */
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	g_assert_cmpuint(CMD(&t, 0, 1, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x29, 0x07));
	st_clear_ua(&t, 0, 0);

	/*
	 * 2 x 24 reads of 512 KiB on LUN 0 and a few on LUN 1, each into its
	 * own buffer, then a LUN reset of LUN 0.
	 */
	for (unsigned q = 0; q < 2; q++)
		for (unsigned i = 0; i < N; i++) {
			unsigned lun = i % 8 == 7;

			heads[q][i] = st_submit(&t, q, 0, lun, 1000 * q + i,
						CDB(SCSI_READ_10, 0, B4(lun ? 0 : i * 1024), 0,
						    B2(lun ? 1 : 1024), 0), 10, 0, 0,
						DATA(0) + (q * N + i) * 0x80000ull,
						lun ? 512 : 0x80000, true);
			seen[q][i] = false;
		}
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ + 1);
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	/*
	 * Whatever the reset aborted was returned before the reset completed:
	 * requests still to come back were not aborted.
	 */
	for (unsigned q = 0; q < 2; q++) {
		uint32_t id, len;

		while (vh_used_get(&t.d.ring[VIRTIO_SCSI_VQ_REQ + q], &id, &len)) {
			for (unsigned i = 0; i < N; i++) {
				if (heads[q][i] != id)
					continue;
				g_assert_false(seen[q][i]);
				seen[q][i] = true;
				if (st_result(&t, q, id) == VIRTIO_SCSI_S_ABORTED) {
					g_assert_cmpuint(i % 8, !=, 7);	/* only LUN 0 */
					aborted++;
				} else {
					g_assert_cmpuint(t.resp.response, ==, VIRTIO_SCSI_S_OK);
					ua_late += tmf_late_status(&t, i);
					ok++;
				}
			}
		}
	}
	for (unsigned q = 0; q < 2; q++) {
		unsigned left = 0;

		for (unsigned i = 0; i < N; i++)
			left += !seen[q][i];
		while (left--) {
			uint32_t id, len;

			g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_REQ + q, &id, &len));
			for (unsigned j = 0; j < N; j++) {
				if (heads[q][j] != id)
					continue;
				g_assert_false(seen[q][j]);
				seen[q][j] = true;
				g_assert_cmpuint(st_result(&t, q, id), ==, VIRTIO_SCSI_S_OK);
				ua_late += tmf_late_status(&t, j);
				ok++;
			}
		}
	}
	g_assert_cmpuint(aborted + ok, ==, 2 * N);
	g_test_message("LUN reset: %u of %u requests aborted in flight", aborted, 2 * N);
	/*
	 * The reset is reported once, to the next command of LUN 0: one that
	 * reached the device only after the reset, or else this one.
	 */
	g_assert_cmpuint(ua_late, <=, 1);
	g_assert_cmpuint(CMD(&t, 0, 1, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, ua_late ? 0 : SENSE(6, 0x29, 0x03));
	/* ABORT TASK SET and a query with nothing in flight. */
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_ABORT_TASK_SET, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	g_assert_cmpuint(st_tmf(&t, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	st_fini(&t);
}

/* Hot-plug and unplug events, dropped events, REPORTED LUNS DATA HAS CHANGED. */
static void test_hotplug(void)
{
	struct st t;
	struct virtio_scsi_event ev;
	char err[256], *img;

	st_init(&t, 1, true);
	img = st_image(&t, "a.img", "raw", 1 << 20);
	st_drive(&t, "d0", img, "raw", NULL);
	g_free(img);
	img = st_image(&t, "b.img", "raw", 1 << 20);
	st_drive(&t, "d1", img, "raw", NULL);
	st_device(&t, "scsi-hd,drive=d0,scsi-id=4,lun=0,id=hd0");
	st_find(&t);
	st_up(&t);
	st_clear_ua(&t, 4, 0);
	st_event_bufs(&t, 0, 2);

	st_device(&t, "scsi-hd,drive=d1,scsi-id=4,lun=300,id=hd1");
	ev = st_event(&t);
	g_assert_cmphex(ev.event, ==, VIRTIO_SCSI_T_TRANSPORT_RESET);
	g_assert_cmpuint(ev.reason, ==, VIRTIO_SCSI_EVT_RESET_RESCAN);
	g_assert_cmpuint(ev.lun[0], ==, 1);
	g_assert_cmpuint(ev.lun[1], ==, 4);
	g_assert_cmpuint((ev.lun[2] << 8 | ev.lun[3]) & 0x3fff, ==, 300);
	g_assert_cmpuint(CMD(&t, 4, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x3f, 0x0e));
	g_assert_cmpuint(CMD(&t, 4, 300, 0, 0, DATA(0), 36, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);

	g_assert_cmpint(virtio_scsi_device_del(&t.h.m, "hd1", err, sizeof(err)), ==, 0);
	ev = st_event(&t);
	g_assert_cmphex(ev.event, ==, VIRTIO_SCSI_T_TRANSPORT_RESET);
	g_assert_cmpuint(ev.reason, ==, VIRTIO_SCSI_EVT_RESET_REMOVED);
	g_assert_cmpuint(CMD(&t, 4, 300, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(5, 0x25, 0));
	/* The drive is free again. */
	g_assert_false(drive_find(&t.h.m, "d1")->claimed);

	/* No buffer: the event is dropped, and said so once buffers come. */
	st_device(&t, "scsi-hd,drive=d1,scsi-id=5,id=hd2");
	st_event_bufs(&t, 2, 1);
	ev = st_event(&t);
	g_assert_cmphex(ev.event, ==, VIRTIO_SCSI_T_NO_EVENT | VIRTIO_SCSI_T_EVENTS_MISSED);
	/* The removed target answers BAD_TARGET. */
	g_assert_cmpint(virtio_scsi_device_del(&t.h.m, "hd2", err, sizeof(err)), ==, 0);
	g_assert_cmpuint(CMD(&t, 5, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_BAD_TARGET);
	st_fini(&t);
	g_free(img);
}

/* A CD-ROM: AN subscription, media change events and UNIT ATTENTION. */
static void test_cdrom(void)
{
	struct st t;
	struct virtio_scsi_event ev;
	struct blk_config bc = { .format = "raw" };
	char err[256], *iso, *iso2;
	uint32_t actual;
	uint8_t *b;

	st_init(&t, 1, false);
	iso = st_image(&t, "a.iso", "raw", 2048 * 100);
	iso2 = st_image(&t, "b.iso", "raw", 2048 * 300);
	st_drive(&t, "cd", iso, "raw", "readonly=on");
	st_device(&t, "scsi-cd,drive=cd,id=cd0");
	st_find(&t);
	st_up(&t);
	b = gp(&t, DATA(0), 4096);
	st_clear_ua(&t, 0, 0);
	g_assert_cmpuint(st_an(&t, false, 0, 0, 0xfe, &actual), ==, 0);
	g_assert_cmpuint(actual, ==, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE);
	g_assert_cmpuint(st_an(&t, true, 0, 0, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE |
			       VIRTIO_SCSI_EVT_ASYNC_POWER_MGMT, &actual), ==, 0);
	g_assert_cmpuint(actual, ==, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE);
	g_assert_cmpuint(st_an(&t, true, 0, 3, 16, &actual), ==, VIRTIO_SCSI_S_INCORRECT_LUN);
	g_assert_cmpuint(st_an(&t, true, 8, 0, 16, &actual), ==, VIRTIO_SCSI_S_BAD_TARGET);
	st_event_bufs(&t, 0, 4);

	/* The guest locks the tray: eject fails without force. */
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", false, err, sizeof(err)), ==, -EBUSY);
	g_assert_nonnull(strstr(err, "locked"));
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 8, SCSI_GET_EVENT_STATUS, 1, 0, 0, 0x10, 0,
			     0, 0, 8, 0), ==, 0);
	g_assert_cmpuint(b[4], ==, 1);			/* eject request */
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", true, err, sizeof(err)), ==, 0);
	ev = st_event(&t);
	g_assert_cmphex(ev.event, ==, VIRTIO_SCSI_T_ASYNC_NOTIFY);
	g_assert_cmpuint(ev.reason, ==, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(2, 0x3a, 0x02));
	/* The unit keeps its drive, whose image is closed (see test_virtio_scsi_media.c). */
	g_assert_true(drive_find(&t.h.m, "cd")->claimed);
	g_assert_null(drive_find(&t.h.m, "cd")->blk);

	/* A new disc: event, UNIT ATTENTION 28/00, its capacity, its data. */
	bc.file = iso2;
	bc.readonly = true;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	ev = st_event(&t);
	g_assert_cmphex(ev.event, ==, VIRTIO_SCSI_T_ASYNC_NOTIFY);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x28, 0));
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 8, SCSI_READ_CAPACITY_10, 0, B4(0), 0, 0, 0,
			     0), ==, 0);
	g_assert_cmpuint(b[2] << 8 | b[3], ==, 299);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 2048, SCSI_READ_10, 0, B4(299), 0, B2(1),
			     0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	/* And another, replacing ours (which the controller closes). */
	bc.file = iso;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "nope", &bc, err, sizeof(err)), <, 0);
	/* A device reset is a hard reset of the units: the lock goes. */
	st_clear_ua(&t, 0, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	st_up(&t);
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", false, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x29, 0));
	st_fini(&t);
	g_free(iso);
	g_free(iso2);
}

/* The driver may shrink the CDB field before DRIVER_OK. */
static void test_cdb_size(void)
{
	struct st t;
	char *img;
	uint8_t s;

	st_init(&t, 1, false);
	img = st_image(&t, "a.img", "raw", 1 << 20);
	st_drive(&t, "d0", img, "raw", NULL);
	st_device(&t, "scsi-hd,drive=d0");
	st_find(&t);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	/* What a driver writes, through the device config window. */
	bus_write(&t.h.m.mmio, t.d.devcfg + offsetof(struct virtio_scsi_config, cdb_size), 4, 16);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_scsi_config, cdb_size), 4), ==,
			 16);
	s = vh_dev_setup(&t.d, features, 3, QSIZE);
	g_assert_true(s & VIRTIO_STATUS_DRIVER_OK);
	t.cdb_size = 16;
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 16 * 1, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0,
			     0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x29, 0));
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 8, SCSI_READ_CAPACITY_10, 0, 0, 0, 0, 0,
			     0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	g_assert_cmpuint(*(uint8_t *)gp(&t, DATA(0) + 2, 1), ==, 0x07);	/* 2047 */
	st_fini(&t);
	g_free(img);
}

/* Chains that cannot hold a request: NEEDS_RESET, and a reset recovers. */
static void test_malformed(void)
{
	struct st t;
	char *img;
	struct vh_buf b[2];

	st_init(&t, 1, false);
	img = st_image(&t, "a.img", "raw", 1 << 20);
	st_drive(&t, "d0", img, "raw", NULL);
	st_device(&t, "scsi-hd,drive=d0");
	st_find(&t);
	st_up(&t);
	/* A request header cut short. */
	b[0] = (struct vh_buf){ REQ(2, 0), 20, false };
	b[1] = (struct vh_buf){ RESP(2, 0), 108, true };
	vh_ring_add(&t.d.ring[VIRTIO_SCSI_VQ_REQ], b, 2, 0);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
	g_assert_true(vh_wait_status(&t.d, VIRTIO_STATUS_NEEDS_RESET));
	st_up(&t);
	g_assert_false(vh_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	/* A response too small for the sense field. */
	b[0] = (struct vh_buf){ REQ(2, 0), 51, false };
	b[1] = (struct vh_buf){ RESP(2, 0), 12, true };
	vh_ring_add(&t.d.ring[VIRTIO_SCSI_VQ_REQ], b, 2, 0);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
	g_assert_true(vh_wait_status(&t.d, VIRTIO_STATUS_NEEDS_RESET));
	st_up(&t);
	/* A control request shorter than a TMF. */
	b[0] = (struct vh_buf){ REQ(0, 0), 8, false };
	b[1] = (struct vh_buf){ RESP(0, 0), 1, true };
	*(uint32_t *)gp(&t, REQ(0, 0), 4) = VIRTIO_SCSI_T_TMF;
	vh_ring_add(&t.d.ring[VIRTIO_SCSI_VQ_CTRL], b, 2, 0);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_CTRL);
	g_assert_true(vh_wait_status(&t.d, VIRTIO_STATUS_NEEDS_RESET));
	st_up(&t);
	/* After the resets, the power-on attention, then normal service. */
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x29, 0));
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	st_fini(&t);
	g_free(img);
}

/*
 * A migration of the controller from a to b: quiesce, the virtio-pci
 * section (which carries the device's state) and guest RAM.  b then
 * serves the rings a's driver set up.  Returns the load's result.
 */
static int st_migrate(struct st *a, struct st *b, char *err, size_t errlen)
{
	return vh_migrate_dev(&a->d, &b->h, &b->d, false, NULL, err, errlen);
}

/* A disk at 0:0 and a CD-ROM (id cd0) at 1:0, on images of t's own. */
static void st_units(struct st *t)
{
	char *img = st_image(t, "d.raw", "raw", DISK), *iso = st_image(t, "c.iso", "raw", 2048 * 100);

	st_drive(t, "d0", img, "raw", NULL);
	st_device(t, "scsi-hd,drive=d0,scsi-id=0,lun=0");
	st_drive(t, "cd", iso, "raw", "readonly=on");
	st_device(t, "scsi-cd,drive=cd,id=cd0,scsi-id=1,lun=0");
	g_free(img);
	g_free(iso);
}

/* What the disk's initiator set: no UA pending, descriptor sense. */
static void st_check_disk_state(struct st *t)
{
	g_assert_cmpuint(CMD(t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(t->resp.status, ==, SCSI_STATUS_GOOD);
	g_assert_cmpuint(CMD(t, 0, 0, 0, 0, DATA(0), 512, SCSI_READ_10, 0, B4(DISK / 512), 0,
			     B2(1), 0), ==, 0);
	g_assert_cmpuint(t->resp.status, ==, SCSI_STATUS_CHECK_CONDITION);
	g_assert_cmphex(t->sense[0], ==, 0x72);
}

/*
 * The target state the guest set travels: the disk's cleared unit
 * attention and D_SENSE, the CD's medium lock; a failed migration resumes
 * the source without resetting any of it; a destination without the same
 * units refuses the state.
 */
static void test_migration(void)
{
	struct st a, b, c;
	char err[512] = "";
	uint8_t *sel;

	st_init(&a, 1, false);
	st_units(&a);
	st_find(&a);
	st_up(&a);
	st_clear_ua(&a, 0, 0);
	st_clear_ua(&a, 1, 0);
	sel = gp(&a, DATA(1), 64);
	memset(sel, 0, 64);
	sel[8] = 0x0a;			/* control mode page, D_SENSE */
	sel[9] = 10;
	sel[10] = 0x04;
	sel[11] = 0x10;			/* as MODE SENSE reports them */
	sel[16] = 0xff;
	sel[17] = 0xff;
	g_assert_cmpuint(CMD(&a, 0, 0, DATA(1), 20, 0, 0, SCSI_MODE_SELECT_10, 0x10, 0, 0, 0, 0,
			     0, B2(20), 0), ==, 0);
	g_assert_cmpuint(a.resp.status, ==, SCSI_STATUS_GOOD);
	g_assert_cmpuint(CMD(&a, 1, 0, 0, 0, 0, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_cmpuint(a.resp.status, ==, SCSI_STATUS_GOOD);

	st_init(&b, 1, false);
	st_units(&b);
	if (st_migrate(&a, &b, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	/* A fresh unit would report POWER ON and fixed-format sense. */
	st_check_disk_state(&b);
	g_assert_cmpint(virtio_scsi_eject(&b.h.m, "cd0", false, err, sizeof(err)), ==, -EBUSY);
	g_assert_nonnull(strstr(err, "locked"));

	/* The migration failed after all: the source runs on, nothing reset. */
	vmstate_find(&a.h.m, "virtio-pci", a.d.devfn)->resume(
		vmstate_find(&a.h.m, "virtio-pci", a.d.devfn)->opaque);
	st_check_disk_state(&a);
	g_assert_cmpint(virtio_scsi_eject(&a.h.m, "cd0", false, err, sizeof(err)), ==, -EBUSY);

	/* A destination without the CD-ROM. */
	st_init(&c, 1, false);
	{
		char *img = st_image(&c, "d.raw", "raw", DISK);

		st_drive(&c, "d0", img, "raw", NULL);
		st_device(&c, "scsi-hd,drive=d0,scsi-id=0,lun=0");
		g_free(img);
	}
	g_assert_cmpint(st_migrate(&a, &c, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "2 SCSI units"));
	st_fini(&c);
	st_fini(&b);
	st_fini(&a);
}

/* Where stderr goes while a test watches the device's log: a file of dir's. */
static int st_log_begin(struct st *t, char **path)
{
	int saved = dup(STDERR_FILENO), fd;

	*path = g_build_filename(t->dir, "log", NULL);
	fd = open(*path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(saved, >=, 0);
	g_assert_cmpint(fd, >=, 0);
	fflush(stderr);
	g_assert_cmpint(dup2(fd, STDERR_FILENO), ==, STDERR_FILENO);
	close(fd);
	return saved;
}

/* Back to the real stderr; returns what was logged meanwhile. */
static char *st_log_end(int saved, char *path)
{
	char *text = NULL;

	fflush(stderr);
	g_assert_cmpint(dup2(saved, STDERR_FILENO), ==, STDERR_FILENO);
	close(saved);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_free(path);
	g_test_message("device log: %s", text);
	return text;
}

/*
 * a's controller handed to b with b's device held (quiesced) around the
 * load and resumed after it, as a snapshot restored into a VM that exists
 * does.  Then both request queues and the control queue serve b's driver,
 * which has the rings a's driver left.
 */
static void st_held_load(struct st *a, struct st *b, uint8_t fill)
{
	uint8_t *buf = gp(b, DATA(1), 512);
	char err[512] = "";

	if (vh_migrate_dev(&a->d, &b->h, &b->d, true, NULL, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	for (unsigned rq = 0; rq < 2; rq++) {
		memset(buf, fill + rq, 512);
		g_assert_cmpuint(st_cmd_q(b, rq, 0, 0, CDB(SCSI_WRITE_10, 0, B4(rq), 0, B2(1), 0),
					  10, DATA(1), 512, 0, 0, NULL), ==, VIRTIO_SCSI_S_OK);
		g_assert_cmpuint(b->resp.status, ==, SCSI_STATUS_GOOD);
		memset(gp(b, DATA(2), 512), 0, 512);
		g_assert_cmpuint(st_cmd_q(b, rq, 0, 0, CDB(SCSI_READ_10, 0, B4(rq), 0, B2(1), 0),
					  10, 0, 0, DATA(2), 512, NULL), ==, VIRTIO_SCSI_S_OK);
		g_assert_cmpuint(b->resp.status, ==, SCSI_STATUS_GOOD);
		g_assert_true(memcmp(gp(b, DATA(2), 512), buf, 512) == 0);
	}
	g_assert_cmpuint(st_tmf(b, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0, 0), ==,
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
}

/* An eject stops the queue threads and starts them again: it must return. */
static void st_eject_then_read(struct st *t)
{
	char err[512] = "";

	g_assert_cmpint(virtio_scsi_eject(&t->h.m, "cd0", false, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(CMD(t, 0, 0, 0, 0, DATA(0), 512, SCSI_READ_10, 0, B4(0), 0, B2(1), 0),
			 ==, VIRTIO_SCSI_S_OK);
	g_assert_cmpuint(t->resp.status, ==, SCSI_STATUS_GOOD);
}

/*
 * Quiesce, load, resume on a controller that exists already must leave
 * one set of queue threads, whatever the controller did before: on one
 * whose driver runs (twice: the second time its threads are those the
 * first resume started) and on one no driver has set up.  Nothing logs an
 * epoll_ctl failure (a second thread's EEXIST), and an eject, which waits
 * for the threads it stops, returns.
 */
static void test_load_held(void)
{
	struct st a, b, c;
	char *log, *path;
	int saved;

	st_init(&a, 2, false);
	st_units(&a);
	st_find(&a);
	st_up(&a);
	st_clear_ua(&a, 0, 0);
	st_clear_ua(&a, 1, 0);
	st_init(&b, 2, false);
	st_units(&b);
	st_find(&b);
	st_up(&b);
	st_init(&c, 2, false);
	st_units(&c);
	st_find(&c);

	saved = st_log_begin(&b, &path);
	st_held_load(&a, &b, 0x10);
	st_held_load(&a, &b, 0x20);
	st_held_load(&a, &c, 0x30);
	log = st_log_end(saved, path);
	g_assert_null(strstr(log, "epoll_ctl"));
	g_free(log);
	/* b and c serve, each with one thread per queue; a stays quiesced. */
	g_assert_cmpuint(vh_thread_count("virtio-scsi io"), ==, 2 * 2);
	g_assert_cmpuint(vh_thread_count("virtio-scsi ctl"), ==, 2);
	st_eject_then_read(&b);
	st_eject_then_read(&c);
	g_assert_cmpuint(vh_thread_count("virtio-scsi io"), ==, 2 * 2);
	st_fini(&c);
	st_fini(&b);
	st_fini(&a);
}

/*
 * An eject (or a medium change, a unit's removal) while the controller is
 * quiesced for a migration, between the switch-over and the end of the
 * migration (QMP is served meanwhile): the threads stay stopped and the
 * media event waits, since the guest's RAM and disks may be on their way
 * to the destination.  The resume starts one set of threads, which serves
 * what the driver queued and reports the event as missed.
 */
static void test_eject_held(void)
{
	struct virtio_scsi_event ev;
	struct vmstate_section *sec;
	char err[512] = "";
	uint32_t id, len, actual;
	struct st t;
	uint16_t head;

	st_init(&t, 2, false);
	st_units(&t);
	st_find(&t);
	st_up(&t);
	st_clear_ua(&t, 0, 0);
	g_assert_cmpuint(st_an(&t, true, 1, 0, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE, &actual), ==,
			 VIRTIO_SCSI_S_OK);
	g_assert_cmpuint(actual, ==, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE);
	st_event_bufs(&t, 0, 2);
	sec = vmstate_find(&t.h.m, "virtio-pci", t.d.devfn);
	g_assert_cmpint(sec->quiesce(sec->opaque), ==, 0);
	g_assert_cmpuint(vh_thread_count("virtio-scsi io"), ==, 0);
	/* A command the driver queued as the VM stopped. */
	head = st_submit(&t, 0, 0, 0, 1, CDB(SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), 6, 0, 0, 0, 0,
			 false);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", false, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(vh_thread_count("virtio-scsi io"), ==, 0);
	g_assert_cmpuint(vh_thread_count("virtio-scsi ctl"), ==, 0);
	g_assert_false(vh_used_get(&t.d.ring[VIRTIO_SCSI_VQ_REQ], &id, &len));
	g_assert_false(vh_used_get(&t.d.ring[VIRTIO_SCSI_VQ_EVENT], &id, &len));

	sec->resume(sec->opaque);
	g_assert_cmpuint(vh_thread_count("virtio-scsi io"), ==, 2);
	g_assert_cmpuint(vh_thread_count("virtio-scsi ctl"), ==, 1);
	ev = st_event(&t);
	g_assert_cmphex(ev.event, ==, VIRTIO_SCSI_T_NO_EVENT | VIRTIO_SCSI_T_EVENTS_MISSED);
	g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_REQ, &id, &len));
	g_assert_cmpuint(id, ==, head);
	g_assert_cmpuint(st_result(&t, 0, head), ==, VIRTIO_SCSI_S_OK);
	g_assert_cmpuint(t.resp.status, ==, SCSI_STATUS_GOOD);
	st_eject_then_read(&t);
	g_assert_cmpuint(vh_thread_count("virtio-scsi io"), ==, 2);
	st_fini(&t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-scsi/config", test_config);
	g_test_add_func("/virtio-scsi/options", test_options);
	g_test_add_func("/virtio-scsi/requests-raw", test_requests_raw);
	g_test_add_func("/virtio-scsi/requests-qcow2", test_requests_qcow2);
	g_test_add_func("/virtio-scsi/1024-luns", test_many_luns);
	g_test_add_func("/virtio-scsi/tmf", test_tmf);
	g_test_add_func("/virtio-scsi/throttle", test_throttle);
	g_test_add_func("/virtio-scsi/hotplug", test_hotplug);
	g_test_add_func("/virtio-scsi/cdrom", test_cdrom);
	g_test_add_func("/virtio-scsi/cdb-size", test_cdb_size);
	g_test_add_func("/virtio-scsi/malformed", test_malformed);
	g_test_add_func("/virtio-scsi/migration", test_migration);
	g_test_add_func("/virtio-scsi/load-held", test_load_held);
	g_test_add_func("/virtio-scsi/eject-held", test_eject_held);
	return g_test_run();
}
