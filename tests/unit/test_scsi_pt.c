/*
 * Passthrough LUNs (scsi-block) with a stand-in for the host device: an
 * emulated disk behind the scsi_pt_ops interface, so the test sees exactly
 * what a host device would receive and what the guest gets back (status,
 * sense, residual, data both ways).  The SG_IO backend itself needs a host
 * SCSI device; here it is only checked to refuse what is not one.
 */
#include <errno.h>

#include "test_scsi_util.h"

/* The "host device": an emulated LUN with its own queue, driven synchronously. */
struct fake_dev {
	struct ts inner;
	unsigned calls, closed;
	int fail;		/* exec returns this when nonzero */
	uint8_t last_cdb[16];
	enum scsi_pt_dir last_dir;
	size_t last_len;
};

static int fake_exec(void *opaque, struct scsi_pt_cmd *c)
{
	struct fake_dev *f = opaque;
	struct ts *t = &f->inner;
	struct iovec none = { 0 };

	f->calls++;
	memcpy(f->last_cdb, c->cdb, MIN(c->cdb_len, 16u));
	f->last_dir = c->dir;
	f->last_len = c->len;
	if (f->fail)
		return f->fail;
	memset(&t->r, 0, sizeof(t->r));
	t->r.cdb = c->cdb;
	t->r.cdb_len = c->cdb_len;
	t->r.out = c->dir == SCSI_PT_TO_DEV ? c->iov : &none;
	t->r.out_cnt = c->dir == SCSI_PT_TO_DEV ? c->iov_cnt : 0;
	t->r.in = c->dir == SCSI_PT_FROM_DEV ? c->iov : &none;
	t->r.in_cnt = c->dir == SCSI_PT_FROM_DEV ? c->iov_cnt : 0;
	t->r.bq = t->bq;
	t->r.done = ts_done;
	t->r.opaque = t;
	t->done = false;
	scsi_req_submit(t->lun, &t->r);
	ts_wait(t, t->bq);
	c->status = t->r.status;
	c->sense_len = t->r.sense_len;
	memcpy(c->sense, t->r.sense, t->r.sense_len);
	c->resid = t->r.residual;
	return 0;
}

static void fake_close(void *opaque)
{
	struct fake_dev *f = opaque;

	f->closed++;
}

static const struct scsi_pt_ops fake_ops = { .exec = fake_exec, .close = fake_close };

static void test_passthrough(void)
{
	struct fake_dev f = { 0 };
	struct scsi_bus bus;
	struct ts t;
	uint8_t *w = g_malloc(8192), *r = g_malloc0(8192 + 64);

	ts_init(&f.inner, SCSI_LUN_DISK, 1 << 20, NULL);
	/* The outer "LUN" shares nothing with the inner one but the fake device. */
	memset(&t, 0, sizeof(t));
	t.bq = f.inner.bq;
	t.lun = scsi_lun_new_passthrough(&fake_ops, &f);
	g_assert_nonnull(t.lun);

	/* The device's own power-on attention reaches the guest unchanged. */
	g_assert_cmpuint(CMD(&t, NULL, 0, NULL, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(6, 0x29, 0));
	g_assert_cmpuint(f.last_dir, ==, SCSI_PT_NONE);
	/* Data out and in, through split buffers; the CDB goes as it is. */
	ts_fill(w, 8192, 3);
	g_assert_cmpuint(CMD(&t, w, 8192, NULL, 0, SCSI_WRITE_10, 0x08, B4(40), 0, B2(16), 0), ==,
			 0);
	g_assert_cmpuint(f.last_dir, ==, SCSI_PT_TO_DEV);
	g_assert_cmpuint(f.last_len, ==, 8192);
	g_assert_cmpmem(f.last_cdb, 10, CDB(SCSI_WRITE_10, 0x08, B4(40), 0, B2(16), 0), 10);
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 8192 + 64, SCSI_READ_10, 0, B4(40), 0, B2(16), 0), ==,
			 0);
	g_assert_cmpuint(f.last_dir, ==, SCSI_PT_FROM_DEV);
	g_assert_cmpuint(t.r.in_xfer, ==, 8192);
	g_assert_cmpuint(t.r.residual, ==, 64);
	g_assert_cmpmem(r, 8192, w, 8192);
	/* The device's errors, with its sense data. */
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 512, SCSI_READ_10, 0, B4(1 << 20), 0, B2(1), 0), ==,
			 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x21, 0));
	g_assert_cmpuint(t.r.in_xfer, ==, 0);
	/* Data both ways is never passed on; nor is a CDB longer than 16 bytes. */
	f.calls = 0;
	g_assert_cmpuint(CMD(&t, w, 512, r, 512, SCSI_READ_10, 0, B4(0), 0, B2(1), 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(5, 0x24, 0));
	g_assert_cmpuint(ts_cmd(&t, CDB(0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					0, 0), 20, NULL, 0, r, 64), ==, 2);
	g_assert_cmpuint(f.calls, ==, 0);
	/* A command the host could not deliver. */
	f.fail = -EIO;
	g_assert_cmpuint(CMD(&t, NULL, 0, r, 36, SCSI_INQUIRY, 0, 0, 0, 36, 0), ==, 2);
	g_assert_cmphex(ts_sense(&t), ==, SENSE(4, 0x44, 0));
	f.fail = 0;

	/* On a bus, REPORT LUNS is the bus's; everything else is the device's. */
	scsi_bus_init(&bus);
	g_assert_cmpint(scsi_bus_attach(&bus, 0, 7, t.lun), ==, 0);
	f.calls = 0;
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 0, 7, CDB(SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, B4(64), 0,
						       0), 12, NULL, 0, r, 64), ==, 0);
	g_assert_cmpuint(r[3], ==, 8);
	g_assert_cmpuint(r[9], ==, 7);
	g_assert_cmpuint(f.calls, ==, 0);
	g_assert_cmpuint(ts_cmd_to(&t, &bus, 0, 7, CDB(SCSI_INQUIRY, 0, 0, 0, 36, 0), 6, NULL, 0,
				   r, 36), ==, 0);
	g_assert_cmpuint(f.calls, ==, 1);
	g_assert_cmpmem(r + 16, 16, "VIREO HARDDISK  ", 16);
	/* The bus frees the LUN, which closes the device. */
	scsi_bus_destroy(&bus);
	g_assert_cmpuint(f.closed, ==, 1);
	ts_fini(&f.inner);
	g_free(w);
	g_free(r);
}

/* Without a host SCSI device, the SG_IO backend says why. */
static void test_sg_refuses_files(void)
{
	const struct scsi_pt_ops *ops;
	void *opaque;
	char err[256];
	struct ts t;

	ts_image(&t, 4096);
	g_assert_cmpint(scsi_pt_sg_open(t.img, false, &ops, &opaque, err, sizeof(err)), ==,
			-ENOTSUP);
	g_assert_nonnull(strstr(err, "SG_IO"));
	g_assert_cmpint(scsi_pt_sg_open("/dev/null", true, &ops, &opaque, err, sizeof(err)), ==,
			-ENOTSUP);
	g_assert_cmpint(scsi_pt_sg_open("/nonexistent/sg0", false, &ops, &opaque, err,
					sizeof(err)), ==, -ENOENT);
	g_assert_nonnull(strstr(err, "/nonexistent/sg0"));
	g_unlink(t.img);
	g_rmdir(t.dir);
	g_free(t.img);
	g_free(t.dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/scsi/passthrough/fake-device", test_passthrough);
	g_test_add_func("/scsi/passthrough/sg-refuses-files", test_sg_refuses_files);
	return g_test_run();
}
