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
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "machine.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"
#include "vmstate.h"

#define DISK		(1ull << 20)
#define HDR		0x300000ull	/* request headers, 16 bytes per head */
#define STATUS		0x301000ull	/* status bytes, one per head */
#define DATA		0x400000ull	/* 4 KiB of data per head */
#define QSIZE		16

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
	char *dir = g_dir_make_tmp("vireo-werror-XXXXXX", NULL);
	char *img = g_build_filename(dir, "d.raw", NULL);
	struct machine m;
	struct drive *d;
	char err[256];

	g_assert_true(g_file_set_contents(img, "", 0, NULL));
	g_assert_cmpint(truncate(img, DISK), ==, 0);

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

	g_unlink(img);
	g_rmdir(dir);
	g_free(img);
	g_free(dir);
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

struct wt {
	struct vh_machine h;
	struct vh_dev d;
	struct machine_listener ml;
	char *dir, *img;
	int img_fd;			/* the blk's descriptor of the image */
	int saved_fd;			/* a copy of it, to repair the disk */
	unsigned nr_errors;
	struct machine_io_error last;
};

static void on_io_error(void *opaque, const struct machine_io_error *e)
{
	struct wt *t = opaque;

	t->nr_errors++;
	t->last = *e;
	t->last.device = NULL;		/* only valid during the call */
	g_assert_cmpstr(e->device, ==, "d0");
}

/* The descriptor the block layer opened on the image (aio=threads uses it as is). */
static int find_image_fd(const char *img)
{
	char *real = realpath(img, NULL);
	int found = -1;
	GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
	const char *name;

	g_assert_nonnull(real);
	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir))) {
		char *path = g_build_filename("/proc/self/fd", name, NULL);
		char *target = g_file_read_link(path, NULL);

		if (target && !strcmp(target, real)) {
			g_assert_cmpint(found, ==, -1);	/* exactly one */
			found = atoi(name);
		}
		g_free(target);
		g_free(path);
	}
	g_dir_close(dir);
	free(real);
	g_assert_cmpint(found, >=, 0);
	return found;
}

static void wt_init(struct wt *t, const char *drive_opts)
{
	char err[256], *opt;

	memset(t, 0, sizeof(*t));
	t->dir = g_dir_make_tmp("vireo-werror-XXXXXX", NULL);
	t->img = g_build_filename(t->dir, "disk.raw", NULL);
	g_assert_true(g_file_set_contents(t->img, "", 0, NULL));
	g_assert_cmpint(truncate(t->img, DISK), ==, 0);
	vh_machine_init(&t->h, 1, false);
	t->h.m.ctx = g_main_context_new();
	/* The harness has no vCPUs: pausing only moves the runstate. */
	t->h.m.runstate = RUNSTATE_RUNNING;
	t->ml.io_error = on_io_error;
	t->ml.opaque = t;
	machine_add_listener(&t->h.m, &t->ml);
	opt = g_strdup_printf("file=%s,format=raw,if=virtio,id=d0,aio=threads,%s", t->img,
			      drive_opts);
	g_assert_cmpint(drive_add(&t->h.m, opt, err, sizeof(err)), ==, 0);
	g_free(opt);
	/* One queue: the harness machine has one vCPU. */
	g_assert_cmpint(virtio_blk_create_for_drives(&t->h.m, err, sizeof(err)), ==, 0);
	g_assert_true(vh_dev_find(&t->h, VIRTIO_ID_BLOCK, 0, &t->d));
	vh_msix_enable(&t->d);
	g_assert_cmphex(vh_dev_setup(&t->d, 1ull << VIRTIO_F_VERSION_1, 1, QSIZE), ==,
			VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	t->img_fd = find_image_fd(t->img);
	t->saved_fd = -1;
}

static void wt_finish(struct wt *t)
{
	machine_remove_listener(&t->h.m, &t->ml);
	vh_machine_destroy(&t->h);
	g_main_context_unref(t->h.m.ctx);
	if (t->saved_fd >= 0)
		close(t->saved_fd);
	g_unlink(t->img);
	g_rmdir(t->dir);
	g_free(t->img);
	g_free(t->dir);
}

/* Reads of the image fail from now on (EBADF); writes still land. */
static void break_reads(struct wt *t)
{
	int wfd = open(t->img, O_WRONLY | O_CLOEXEC);

	g_assert_cmpint(wfd, >=, 0);
	t->saved_fd = dup(t->img_fd);
	g_assert_cmpint(t->saved_fd, >=, 0);
	g_assert_cmpint(dup2(wfd, t->img_fd), ==, t->img_fd);
	close(wfd);
}

static void repair_reads(struct wt *t)
{
	g_assert_cmpint(dup2(t->saved_fd, t->img_fd), ==, t->img_fd);
	close(t->saved_fd);
	t->saved_fd = -1;
}

static void *gp(struct wt *t, uint64_t gpa, uint64_t len)
{
	return vh_ptr(&t->h.m.mem, gpa, len);
}

/* Publish [header, 4 KiB at sector, status] and kick; returns the head. */
static uint16_t submit(struct wt *t, bool write, uint64_t sector)
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
static void expect_used(struct wt *t, uint16_t head, uint8_t status)
{
	uint32_t id, len;

	g_assert_true(vh_wait_used(&t->d, 0, &id, &len));
	g_assert_cmpuint(id, ==, head);
	g_assert_cmpuint(*(uint8_t *)gp(t, STATUS + head, 1), ==, status);
}

/* Run the main loop (as the main thread would) until n errors were told. */
static void wait_errors(struct wt *t, unsigned n)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (t->nr_errors < n) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		if (!g_main_context_iteration(t->h.m.ctx, FALSE))
			g_usleep(1000);
	}
}

static void fill(void *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)p)[i] = seed + i * 7 + (i >> 9);
}

/*
 * rerror=stop: the failed read is held and the VM pauses; a write to the
 * same sectors submitted while it waits is not served before it; on resume
 * the read is retried first and sees the old data, then the write runs.
 */
static void test_rerror_stop(void)
{
	struct wt t;
	guint8 want_old[4096], want_new[4096];
	uint16_t rd, wr;

	wt_init(&t, "rerror=stop");
	fill(want_old, 4096, 1);
	fill(want_new, 4096, 2);
	memcpy(gp(&t, DATA + 4096 * t.d.ring[0].next_desc, 4096), want_old, 4096);
	expect_used(&t, submit(&t, true, 8), VIRTIO_BLK_S_OK);

	break_reads(&t);
	rd = t.d.ring[0].next_desc;
	memset(gp(&t, DATA + 4096 * rd, 4096), 0, 4096);
	g_assert_cmpuint(submit(&t, false, 8), ==, rd);
	wait_errors(&t, 1);
	g_assert_false(t.last.write);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	g_assert_cmpint(t.last.error, ==, EBADF);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	g_assert_cmpint(__atomic_load_n(&t.h.m.drives->io_status, __ATOMIC_ACQUIRE), ==,
			BLK_IOSTATUS_FAILED);
	g_assert_cmpuint(*(uint8_t *)gp(&t, STATUS + rd, 1), ==, 0xff);	/* not completed */

	/* The guest (say, another vCPU) writes the same sectors meanwhile. */
	wr = t.d.ring[0].next_desc;
	memcpy(gp(&t, DATA + 4096 * wr, 4096), want_new, 4096);
	g_assert_cmpuint(submit(&t, true, 8), ==, wr);

	repair_reads(&t);
	machine_resume(&t.h.m);
	g_assert_cmpint(t.h.m.drives->io_status, ==, BLK_IOSTATUS_OK);
	expect_used(&t, rd, VIRTIO_BLK_S_OK);
	g_assert_true(memcmp(gp(&t, DATA + 4096 * rd, 4096), want_old, 4096) == 0);
	expect_used(&t, wr, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(t.nr_errors, ==, 1);

	/* And the write did land after the read. */
	rd = t.d.ring[0].next_desc;
	expect_used(&t, submit(&t, false, 8), VIRTIO_BLK_S_OK);
	g_assert_true(memcmp(gp(&t, DATA + 4096 * rd, 4096), want_new, 4096) == 0);
	wt_finish(&t);
}

/* A retry that fails again parks again, and pauses again. */
static void test_rerror_stop_twice(void)
{
	struct wt t;
	uint16_t rd;

	wt_init(&t, "rerror=stop");
	break_reads(&t);
	rd = submit(&t, false, 0);
	wait_errors(&t, 1);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	machine_resume(&t.h.m);
	wait_errors(&t, 2);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	g_assert_cmpint(t.h.m.drives->io_status, ==, BLK_IOSTATUS_FAILED);
	repair_reads(&t);
	machine_resume(&t.h.m);
	expect_used(&t, rd, VIRTIO_BLK_S_OK);
	wt_finish(&t);
}

static void test_rerror_report_and_ignore(void)
{
	struct wt t;

	wt_init(&t, "rerror=report");
	break_reads(&t);
	expect_used(&t, submit(&t, false, 0), VIRTIO_BLK_S_IOERR);
	wait_errors(&t, 1);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_REPORT);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_RUNNING);
	repair_reads(&t);
	wt_finish(&t);

	wt_init(&t, "rerror=ignore");
	break_reads(&t);
	expect_used(&t, submit(&t, false, 0), VIRTIO_BLK_S_OK);
	wait_errors(&t, 1);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_IGNORE);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_RUNNING);
	repair_reads(&t);
	wt_finish(&t);
}

/* Hostile edits of a saved virtio-pci section, for vh_migrate_dev. */
static void bad_parked(struct vmstate_out *o)	/* the first parked head: 0xffff */
{
	uint8_t *f = memmem(o->buf, o->len, "\x06parked", 7);

	g_assert_nonnull(f);
	g_assert_cmpuint(f[7], ==, 2);		/* one head */
	f[11] = f[12] = 0xff;
}

static void bad_io_status(struct vmstate_out *o)	/* an io-status of 7 */
{
	uint8_t *f = memmem(o->buf, o->len, "\x09io-status", 10);

	g_assert_nonnull(f);
	g_assert_cmpuint(f[10], ==, 1);		/* one byte */
	f[14] = 7;
}

/* Hand a's virtio-blk over to b as a migration does (vh_migrate_dev). */
static int wt_migrate(struct wt *a, struct wt *b, void (*edit)(struct vmstate_out *o),
		      char *err, size_t errlen)
{
	/* b's device ran its own driver setup: held still around the load. */
	return vh_migrate_dev(&a->d, &b->h, &b->d, true, edit, err, errlen);
}

/*
 * rerror=stop and a migration: the read parked on a (and the write the
 * guest queued behind it) complete on b once it runs, the read first and
 * with the data on b's disk; a's copy of the request is left alone.
 */
static void test_rerror_stop_migrates(void)
{
	struct wt a, b, c;
	guint8 want_old[4096], want_new[4096];
	char err[512] = "";
	uint16_t rd, wr;

	wt_init(&a, "rerror=stop");
	fill(want_old, 4096, 3);
	fill(want_new, 4096, 4);
	memcpy(gp(&a, DATA + 4096 * a.d.ring[0].next_desc, 4096), want_old, 4096);
	expect_used(&a, submit(&a, true, 8), VIRTIO_BLK_S_OK);
	break_reads(&a);
	rd = submit(&a, false, 8);
	wait_errors(&a, 1);
	g_assert_cmpint(a.h.m.runstate, ==, RUNSTATE_PAUSED);
	wr = a.d.ring[0].next_desc;
	memcpy(gp(&a, DATA + 4096 * wr, 4096), want_new, 4096);
	g_assert_cmpuint(submit(&a, true, 8), ==, wr);

	/* b's disk holds what a's does (shared storage, here a copy). */
	wt_init(&b, "rerror=stop");
	{
		gchar *data;
		gsize len;

		int fd = open(b.img, O_WRONLY | O_CLOEXEC);

		/* In place: b's drive has the file open already. */
		g_assert_true(g_file_get_contents(a.img, &data, &len, NULL));
		g_assert_cmpint(fd, >=, 0);
		g_assert_cmpint(pwrite(fd, data, len, 0), ==, (ssize_t)len);
		close(fd);
		g_free(data);
	}
	b.h.m.runstate = RUNSTATE_PAUSED;
	if (wt_migrate(&a, &b, NULL, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	g_assert_cmpuint(*(uint8_t *)gp(&b, STATUS + rd, 1), ==, 0xff);
	/* b's query-block says why the read waits, as a's did. */
	g_assert_cmpint(__atomic_load_n(&b.h.m.drives->io_status, __ATOMIC_ACQUIRE), ==,
			BLK_IOSTATUS_FAILED);
	machine_resume(&b.h.m);
	expect_used(&b, rd, VIRTIO_BLK_S_OK);
	g_assert_true(memcmp(gp(&b, DATA + 4096 * rd, 4096), want_old, 4096) == 0);
	expect_used(&b, wr, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(b.nr_errors, ==, 0);

	/* A stream whose parked head is out of the ring is refused. */
	wt_init(&c, "rerror=stop");
	c.h.m.runstate = RUNSTATE_PAUSED;
	g_assert_cmpint(wt_migrate(&a, &c, bad_parked, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "parked head 65535"));
	wt_finish(&c);
	/* So is one with an io-status that does not exist. */
	wt_init(&c, "rerror=stop");
	c.h.m.runstate = RUNSTATE_PAUSED;
	g_assert_cmpint(wt_migrate(&a, &c, bad_io_status, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "io-status 7"));
	wt_finish(&c);
	wt_finish(&b);
	repair_reads(&a);
	wt_finish(&a);
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
