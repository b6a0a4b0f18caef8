/*
 * block_resize of a scsi-hd's drive as the initiator sees it: READ
 * CAPACITY reports the new size, a CAPACITY DATA HAS CHANGED unit
 * attention (2A/09) is pending, writes past the old end succeed, and a
 * driver that negotiated VIRTIO_SCSI_F_CHANGE gets a parameter change
 * event (reason 0x2a | 0x09 << 8) for that LUN; one that did not gets none.
 */
#include <errno.h>
#include <stdarg.h>

#include "block.h"
#include "test_vscsi_util.h"

#define NEW_DISK	(20ull << 20)

/*
 * The -device types register from virtio/virtio_scsi_dev.c, which the
 * linker takes from libvireo.a only for a symbol a test uses: this one.
 */
static int (*const link_virtio_scsi)(struct machine *, const char *, char *, size_t)
	__attribute__((used)) = virtio_scsi_device_del;

static uint32_t last_lba(struct st *t)
{
	uint8_t *b = gp(t, DATA(0), 8);

	g_assert_cmpuint(CMD(t, 0, 0, 0, 0, DATA(0), 8, SCSI_READ_CAPACITY_10, 0, B4(0), 0, 0, 0,
			     0), ==, VIRTIO_SCSI_S_OK);
	g_assert_cmpuint(t->resp.status, ==, 0);
	return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
}

static uint8_t write_at(struct st *t, uint32_t lba)
{
	g_assert_cmpuint(CMD(t, 0, 0, DATA(1), 4096, 0, 0, SCSI_WRITE_10, 0, B4(lba), 0, B2(8), 0),
			 ==, VIRTIO_SCSI_S_OK);
	return t->resp.status;
}

static void grow(const char *fmt, bool change)
{
	uint64_t feat = features | (change ? 1ull << VIRTIO_SCSI_F_CHANGE : 0);
	struct virtio_scsi_event ev;
	uint32_t id, len;
	char err[256], *img;
	struct st t;

	st_init(&t, 1, false);
	img = st_image(&t, "d.img", fmt, DISK);
	if (!img) {
		g_test_skip("qemu-img is not available to create a qcow2 image");
		st_fini(&t);
		return;
	}
	st_drive(&t, "d1", img, fmt, NULL);
	st_device(&t, "scsi-hd,drive=d1,scsi-id=0,id=hd0");
	st_find(&t);
	g_assert_cmphex(vh_dev_setup(&t.d, feat, 2 + t.nq, QSIZE), ==, 0xf);
	st_clear_ua(&t, 0, 0);
	st_event_bufs(&t, 0, 2);
	g_assert_cmpuint(last_lba(&t), ==, DISK / 512 - 1);
	g_assert_cmpuint(write_at(&t, DISK / 512), ==, SCSI_STATUS_CHECK_CONDITION);
	g_assert_cmphex(st_sense(&t), ==, SENSE(5, 0x21, 0));

	g_assert_cmpint(drive_resize(drive_find(&t.h.m, "d1"), NEW_DISK, err, sizeof(err)), ==, 0);
	if (change) {
		ev = st_event(&t);
		g_assert_cmphex(ev.event, ==, VIRTIO_SCSI_T_PARAM_CHANGE);
		g_assert_cmphex(ev.reason, ==, 0x092a);
		g_assert_cmpuint(ev.lun[0], ==, 1);
		g_assert_cmpuint(ev.lun[1], ==, 0);
		/* What Linux reads as the LUN: no flat-space bit below 256. */
		g_assert_cmpuint(ev.lun[2] << 8 | ev.lun[3], ==, 0);
	} else {
		/* Posted synchronously, had there been one. */
		g_assert_false(vh_used_get(&t.d.ring[VIRTIO_SCSI_VQ_EVENT], &id, &len));
	}
	/* The next command meets the unit attention, once. */
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(6, 0x2a, 0x09));
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	g_assert_cmpuint(last_lba(&t), ==, NEW_DISK / 512 - 1);
	memset(gp(&t, DATA(1), 4096), 0x5c, 4096);
	g_assert_cmpuint(write_at(&t, DISK / 512), ==, 0);
	g_assert_cmpuint(write_at(&t, NEW_DISK / 512 - 8), ==, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(2), 4096, SCSI_READ_10, 0, B4(NEW_DISK / 512 - 8),
			     0, B2(8), 0), ==, VIRTIO_SCSI_S_OK);
	g_assert_cmpmem(gp(&t, DATA(2), 4096), 4096, gp(&t, DATA(1), 4096), 4096);
	g_assert_cmpuint(write_at(&t, NEW_DISK / 512), ==, SCSI_STATUS_CHECK_CONDITION);

	/* Refused (shrinking): no event, no unit attention. */
	g_assert_cmpint(drive_resize(drive_find(&t.h.m, "d1"), DISK, err, sizeof(err)), ==,
			-ENOTSUP);
	g_assert_false(vh_used_get(&t.d.ring[VIRTIO_SCSI_VQ_EVENT], &id, &len));
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	st_fini(&t);
	g_free(img);
}

static void test_raw_change(void)
{
	grow("raw", true);
}

static void test_qcow2_change(void)
{
	grow("qcow2", true);
}

static void test_raw_no_change(void)
{
	grow("raw", false);
}

/* A CD's image is read-only: the drive has no resize path through the unit. */
static void test_cd_refused(void)
{
	char err[256], *img;
	struct st t;

	st_init(&t, 1, false);
	img = st_image(&t, "cd.iso", "raw", 1 << 20);
	st_drive(&t, "cd", img, "raw", "media=cdrom");
	st_device(&t, "scsi-cd,drive=cd,scsi-id=0,id=cd0");
	g_assert_cmpint(drive_resize(drive_find(&t.h.m, "cd"), 2 << 20, err, sizeof(err)), ==,
			-EACCES);
	g_assert_cmpstr(err, ==, "Block node is read-only");
	st_fini(&t);
	g_free(img);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-scsi/resize/raw", test_raw_change);
	g_test_add_func("/virtio-scsi/resize/qcow2", test_qcow2_change);
	g_test_add_func("/virtio-scsi/resize/no-change-feature", test_raw_no_change);
	g_test_add_func("/virtio-scsi/resize/cd", test_cd_refused);
	return g_test_run();
}
