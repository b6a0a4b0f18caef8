/*
 * werror=/rerror=: the -drive values and defaults, the policy's choice for
 * each errno, and virtio-blk's read path under rerror=, played from the
 * guest side with the virtio harness.  A read is made to fail for real in
 * the host: the image's descriptor is swapped (dup2) for a write-only one
 * on the same file, so pread fails with EBADF while writes still work;
 * swapping the read-write descriptor back "repairs the disk".  The write
 * path under werror= is tested end to end on a full tmpfs by
 * tests/integration/test_werror.py.  A parked read carried across a
 * migration (its ring head in the device state) is retried on the
 * destination; a stream naming a bad head is refused.
 */
#include "werror_util.h"

#define HDR		0x300000ull	/* request headers, 16 bytes per head */
#define STATUS		0x301000ull	/* status bytes, one per head */
#define DATA		0x400000ull	/* 4 KiB of data per head */

/* ---- -drive parsing and the policy ---- */

static struct drive *parse(struct machine *m, const char *img, const char *opts, char *err,
			   size_t errlen)
{
	char *s = g_strdup_printf("file=%s,format=raw,if=none,%s", img, opts);
	int ret = drive_add(m, s, err, errlen);

	g_free(s);
	return ret ? NULL : drive_find(m, "d0");
}

static void test_parse(void)
{
	char *dir, *img = we_image("vireo-werror-XXXXXX", &dir);
	struct machine m;
	struct drive *d;
	char err[256];

	memset(&m, 0, sizeof(m));
	d = parse(&m, img, "id=d0", err, sizeof(err));
	g_assert_nonnull(d);
	/* QEMU's defaults. */
	g_assert_cmpint(d->werror, ==, BLK_ERR_ENOSPC);
	g_assert_cmpint(d->rerror, ==, BLK_ERR_REPORT);
	g_assert_cmpint(d->io_status, ==, BLK_IOSTATUS_OK);
	g_assert_true(drive_can_stop(d));
	drive_close_all(&m);

	d = parse(&m, img, "id=d0,werror=ignore,rerror=stop", err, sizeof(err));
	g_assert_nonnull(d);
	g_assert_cmpint(d->werror, ==, BLK_ERR_IGNORE);
	g_assert_cmpint(d->rerror, ==, BLK_ERR_STOP);
	drive_close_all(&m);

	d = parse(&m, img, "id=d0,werror=report,rerror=ignore", err, sizeof(err));
	g_assert_nonnull(d);
	g_assert_false(drive_can_stop(d));	/* query-block shows no io-status */
	drive_close_all(&m);

	g_assert_null(parse(&m, img, "id=d0,werror=sometimes", err, sizeof(err)));
	g_assert_nonnull(strstr(err, "werror='sometimes'"));
	g_assert_null(parse(&m, img, "id=d0,rerror=enospc", err, sizeof(err)));
	g_assert_nonnull(strstr(err, "rerror='enospc'"));
	g_assert_null(m.drives);
	we_image_remove(dir, img);
}

static void test_policy(void)
{
	struct drive d = { .werror = BLK_ERR_ENOSPC, .rerror = BLK_ERR_REPORT };

	g_assert_cmpint(drive_error_action(&d, true, ENOSPC), ==, BLK_ERR_STOP);
	g_assert_cmpint(drive_error_action(&d, true, EIO), ==, BLK_ERR_REPORT);
	g_assert_cmpint(drive_error_action(&d, false, ENOSPC), ==, BLK_ERR_REPORT);
	d.werror = BLK_ERR_STOP;
	d.rerror = BLK_ERR_IGNORE;
	g_assert_cmpint(drive_error_action(&d, true, EIO), ==, BLK_ERR_STOP);
	g_assert_cmpint(drive_error_action(&d, false, EIO), ==, BLK_ERR_IGNORE);
	d.werror = BLK_ERR_IGNORE;
	d.rerror = BLK_ERR_STOP;
	g_assert_cmpint(drive_error_action(&d, true, ENOSPC), ==, BLK_ERR_IGNORE);
	g_assert_cmpint(drive_error_action(&d, false, EBADF), ==, BLK_ERR_STOP);
}

/* ---- virtio-blk reads under rerror= ---- */

/* virtio-blk on d0 (if=virtio), one queue: the harness machine has one vCPU. */
static void wt_init(struct we *t, const char *drive_opts)
{
	char err[256];

	we_init(t, "vireo-werror-XXXXXX", "virtio", drive_opts);
	g_assert_cmpint(virtio_blk_create_for_drives(&t->h.m, err, sizeof(err)), ==, 0);
	we_attach(t, VIRTIO_ID_BLOCK, 1);
}

/* Publish [header, 4 KiB at sector, status] and kick; returns the head. */
static uint16_t submit(struct we *t, bool write, uint64_t sector)
{
	uint16_t head = t->d.ring[0].next_desc;
	struct virtio_blk_req_hdr *h = gp(t, HDR + 16 * head, 16);
	struct vh_buf b[3] = {
		{ HDR + 16 * head, 16, false },
		{ DATA + 4096 * head, 4096, !write },
		{ STATUS + head, 1, true },
	};

	h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = sector;
	*(uint8_t *)gp(t, STATUS + head, 1) = 0xff;
	g_assert_cmpuint(vh_ring_add(&t->d.ring[0], b, 3, 0), ==, head);
	vh_kick(&t->d, 0);
	return head;
}

/* Wait for the next used entry: it must be head's, with status. */
static void expect_used(struct we *t, uint16_t head, uint8_t status)
{
	uint32_t id, len;

	g_assert_true(vh_wait_used(&t->d, 0, &id, &len));
	g_assert_cmpuint(id, ==, head);
	g_assert_cmpuint(*(uint8_t *)gp(t, STATUS + head, 1), ==, status);
}

/*
 * rerror=stop: the failed read is held and the VM pauses; a write to the
 * same sectors submitted while it waits is not served before it; on resume
 * the read is retried first and sees the old data, then the write runs.
 */
static void test_rerror_stop(void)
{
	struct we t;
	guint8 want_old[4096], want_new[4096];
	uint16_t rd, wr;

	wt_init(&t, "rerror=stop");
	we_fill(want_old, 4096, 1);
	we_fill(want_new, 4096, 2);
	memcpy(gp(&t, DATA + 4096 * t.d.ring[0].next_desc, 4096), want_old, 4096);
	expect_used(&t, submit(&t, true, 8), VIRTIO_BLK_S_OK);

	we_break(&t, false);
	rd = t.d.ring[0].next_desc;
	memset(gp(&t, DATA + 4096 * rd, 4096), 0, 4096);
	g_assert_cmpuint(submit(&t, false, 8), ==, rd);
	we_wait_errors(&t, 1);
	g_assert_false(t.last.write);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	g_assert_cmpint(t.last.error, ==, EBADF);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_FAILED);
	g_assert_cmpuint(*(uint8_t *)gp(&t, STATUS + rd, 1), ==, 0xff);	/* not completed */

	/* The guest (say, another vCPU) writes the same sectors meanwhile. */
	wr = t.d.ring[0].next_desc;
	memcpy(gp(&t, DATA + 4096 * wr, 4096), want_new, 4096);
	g_assert_cmpuint(submit(&t, true, 8), ==, wr);

	we_repair(&t);
	machine_resume(&t.h.m);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_OK);
	expect_used(&t, rd, VIRTIO_BLK_S_OK);
	g_assert_true(memcmp(gp(&t, DATA + 4096 * rd, 4096), want_old, 4096) == 0);
	expect_used(&t, wr, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(t.nr_errors, ==, 1);

	/* And the write did land after the read. */
	rd = t.d.ring[0].next_desc;
	expect_used(&t, submit(&t, false, 8), VIRTIO_BLK_S_OK);
	g_assert_true(memcmp(gp(&t, DATA + 4096 * rd, 4096), want_new, 4096) == 0);
	we_finish(&t);
}

/* A retry that fails again parks again, and pauses again. */
static void test_rerror_stop_twice(void)
{
	struct we t;
	uint16_t rd;

	wt_init(&t, "rerror=stop");
	we_break(&t, false);
	rd = submit(&t, false, 0);
	we_wait_errors(&t, 1);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	machine_resume(&t.h.m);
	we_wait_errors(&t, 2);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_FAILED);
	we_repair(&t);
	machine_resume(&t.h.m);
	expect_used(&t, rd, VIRTIO_BLK_S_OK);
	we_finish(&t);
}

static void test_rerror_report_and_ignore(void)
{
	struct we t;

	wt_init(&t, "rerror=report");
	we_break(&t, false);
	expect_used(&t, submit(&t, false, 0), VIRTIO_BLK_S_IOERR);
	we_wait_errors(&t, 1);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_REPORT);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_RUNNING);
	we_repair(&t);
	we_finish(&t);

	wt_init(&t, "rerror=ignore");
	we_break(&t, false);
	expect_used(&t, submit(&t, false, 0), VIRTIO_BLK_S_OK);
	we_wait_errors(&t, 1);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_IGNORE);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_RUNNING);
	we_repair(&t);
	we_finish(&t);
}

/*
 * rerror=stop and a migration: the read parked on a (and the write the
 * guest queued behind it) complete on b once it runs, the read first and
 * with the data on b's disk; a's copy of the request is left alone.
 */
static void test_rerror_stop_migrates(void)
{
	struct we a, b;
	guint8 want_old[4096], want_new[4096];
	uint16_t rd, wr;

	wt_init(&a, "rerror=stop");
	we_fill(want_old, 4096, 3);
	we_fill(want_new, 4096, 4);
	memcpy(gp(&a, DATA + 4096 * a.d.ring[0].next_desc, 4096), want_old, 4096);
	expect_used(&a, submit(&a, true, 8), VIRTIO_BLK_S_OK);
	we_break(&a, false);
	rd = submit(&a, false, 8);
	we_wait_errors(&a, 1);
	g_assert_cmpint(a.h.m.runstate, ==, RUNSTATE_PAUSED);
	wr = a.d.ring[0].next_desc;
	memcpy(gp(&a, DATA + 4096 * wr, 4096), want_new, 4096);
	g_assert_cmpuint(submit(&a, true, 8), ==, wr);

	wt_init(&b, "rerror=stop");
	we_copy_disk(&a, &b);
	we_migrate(&a, &b);
	g_assert_cmpuint(*(uint8_t *)gp(&b, STATUS + rd, 1), ==, 0xff);
	/* b's query-block says why the read waits, as a's did. */
	g_assert_cmpint(we_io_status(&b), ==, BLK_IOSTATUS_FAILED);
	machine_resume(&b.h.m);
	expect_used(&b, rd, VIRTIO_BLK_S_OK);
	g_assert_true(memcmp(gp(&b, DATA + 4096 * rd, 4096), want_old, 4096) == 0);
	expect_used(&b, wr, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(b.nr_errors, ==, 0);
	we_finish(&b);

	we_migrate_hostile(&a, wt_init, "rerror=stop");
	we_repair(&a);
	we_finish(&a);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/werror/parse", test_parse);
	g_test_add_func("/werror/policy", test_policy);
	g_test_add_func("/werror/rerror-stop", test_rerror_stop);
	g_test_add_func("/werror/rerror-stop-twice", test_rerror_stop_twice);
	g_test_add_func("/werror/rerror-report-ignore", test_rerror_report_and_ignore);
	g_test_add_func("/werror/rerror-stop-migrates", test_rerror_stop_migrates);
	return g_test_run();
}
