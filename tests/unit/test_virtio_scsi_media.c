/*
 * The media of virtio-scsi CD units as the host sees them: what
 * query-block and query-blockstats read (lock, tray, the disc now in,
 * counters across discs), the tray movements QMP reports as
 * DEVICE_TRAY_MOVED (host and guest), and that a disc which leaves the
 * unit is closed with its image lock, so another process may open it.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "test_vscsi_util.h"

/* The removable unit named qdev in a query-block snapshot. */
static const struct virtio_scsi_medium_info *st_medium(const struct virtio_scsi_medium_info *v,
						       size_t n, const char *qdev)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].qdev && !strcmp(v[i].qdev, qdev))
			return &v[i];
	g_test_message("no removable unit %s", qdev);
	g_assert_not_reached();
}

/*
 * What query-block and query-blockstats read of CD units: the guest's
 * lock and tray, the disc a medium change put in, none after an eject,
 * the drive kept across both, counters that go on across discs, and only
 * CD units listed.
 */
static void test_media_info(void)
{
	struct st t;
	struct virtio_scsi_medium_info *v;
	const struct virtio_scsi_medium_info *mi;
	struct blk_config bc = { .format = "raw", .readonly = true };
	char err[256], *iso, *iso2, *disk;
	size_t n;

	st_init(&t, 1, false);
	iso = st_image(&t, "a.iso", "raw", 2048 * 100);
	iso2 = st_image(&t, "b.iso", "qcow2", 2048 * 300);
	disk = st_image(&t, "d.raw", "raw", DISK);
	st_drive(&t, "cd", iso, "raw", "readonly=on");
	st_drive(&t, "d0", disk, "raw", NULL);
	st_device(&t, "scsi-cd,drive=cd,id=cd0");
	st_device(&t, "scsi-cd,id=cd9,scsi-id=1");
	st_device(&t, "scsi-hd,drive=d0,id=hd0,scsi-id=2");
	st_find(&t);
	st_up(&t);
	st_clear_ua(&t, 0, 0);

	v = virtio_scsi_media(&t.h.m, &n);
	g_assert_cmpuint(n, ==, 2);
	mi = st_medium(v, n, "cd0");
	g_assert_cmpstr(mi->drive, ==, "cd");
	g_assert_true(mi->inserted);
	g_assert_cmpstr(mi->file, ==, iso);
	g_assert_cmpstr(mi->format, ==, "raw");
	g_assert_true(mi->readonly);
	g_assert_cmpuint(mi->size, ==, 2048 * 100);
	g_assert_false(mi->locked);
	g_assert_false(mi->tray_open);
	mi = st_medium(v, n, "cd9");
	g_assert_null(mi->drive);
	g_assert_false(mi->inserted);
	g_assert_null(mi->file);
	virtio_scsi_media_free(v, n);

	/* The guest reads a block: the unit's counters. */
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 2048, SCSI_READ_10, 0, B4(3), 0, B2(1), 0),
			 ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	v = virtio_scsi_media(&t.h.m, &n);
	mi = st_medium(v, n, "cd0");
	g_assert_cmpuint(mi->stats.ops[BLK_OP_READ], ==, 1);
	g_assert_cmpuint(mi->stats.bytes[BLK_OP_READ], ==, 2048);
	virtio_scsi_media_free(v, n);

	/* The guest locks the tray, then unlocks and opens it: the disc stays in. */
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	v = virtio_scsi_media(&t.h.m, &n);
	g_assert_true(st_medium(v, n, "cd0")->locked);
	virtio_scsi_media_free(v, n);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	v = virtio_scsi_media(&t.h.m, &n);
	mi = st_medium(v, n, "cd0");
	g_assert_false(mi->locked);
	g_assert_true(mi->tray_open);
	g_assert_true(mi->inserted);
	virtio_scsi_media_free(v, n);

	/* The host ejects: no disc, still named by its drive. */
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", false, err, sizeof(err)), ==, 0);
	v = virtio_scsi_media(&t.h.m, &n);
	mi = st_medium(v, n, "cd0");
	g_assert_false(mi->inserted);
	g_assert_true(mi->tray_open);
	g_assert_cmpstr(mi->drive, ==, "cd");
	/* The counters stay with the unit, as QEMU's with the BlockBackend. */
	g_assert_cmpuint(mi->stats.ops[BLK_OP_READ], ==, 1);
	virtio_scsi_media_free(v, n);

	/* A new disc (qcow2, probed): its file, format and size; tray closed. */
	bc.file = iso2;
	bc.format = NULL;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	v = virtio_scsi_media(&t.h.m, &n);
	mi = st_medium(v, n, "cd0");
	g_assert_true(mi->inserted);
	g_assert_cmpstr(mi->file, ==, iso2);
	g_assert_cmpstr(mi->format, ==, "qcow2");
	g_assert_cmpuint(mi->size, ==, 2048 * 300);
	g_assert_false(mi->tray_open);
	g_assert_cmpstr(mi->drive, ==, "cd");
	virtio_scsi_media_free(v, n);
	/* Reads of the new disc add to the old one's. */
	st_clear_ua(&t, 0, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 4096, SCSI_READ_10, 0, B4(5), 0, B2(2), 0),
			 ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	v = virtio_scsi_media(&t.h.m, &n);
	mi = st_medium(v, n, "cd0");
	g_assert_cmpuint(mi->stats.ops[BLK_OP_READ], ==, 2);
	g_assert_cmpuint(mi->stats.bytes[BLK_OP_READ], ==, 2048 + 4096);
	virtio_scsi_media_free(v, n);

	/* The unit keeps its drive: no other unit may take it, as in QEMU. */
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-cd,drive=cd,id=cd2,scsi-id=3", err,
					    sizeof(err)), ==, -EBUSY);
	g_assert_nonnull(strstr(err, "in use"));
	v = virtio_scsi_media(&t.h.m, &n);
	g_assert_cmpuint(n, ==, 2);
	virtio_scsi_media_free(v, n);

	st_fini(&t);
	g_free(iso);
	g_free(iso2);
	g_free(disk);
}

/* ---- tray movements ---- */

struct tray_log {
	struct machine_listener ml;
	unsigned n;
	struct {
		char device[32], id[32];
		bool open;
	} ev[16];
};

static void on_tray(void *opaque, const struct machine_tray_event *e)
{
	struct tray_log *log = opaque;

	g_assert_cmpuint(log->n, <, G_N_ELEMENTS(log->ev));
	g_strlcpy(log->ev[log->n].device, e->device, sizeof(log->ev[0].device));
	g_strlcpy(log->ev[log->n].id, e->id, sizeof(log->ev[0].id));
	log->ev[log->n].open = e->tray_open;
	log->n++;
}

/*
 * The movements reported since the last call, as "device/id:open|closed"
 * joined by spaces.  Each was queued on the main loop before the command
 * that made it completed, so one pass of the loop hears them all.
 */
static char *tray_moves(struct st *t, struct tray_log *log)
{
	GString *s = g_string_new(NULL);

	while (g_main_context_iteration(t->h.m.ctx, FALSE))
		;
	for (unsigned i = 0; i < log->n; i++)
		g_string_append_printf(s, "%s%s/%s:%s", i ? " " : "", log->ev[i].device,
				       log->ev[i].id, log->ev[i].open ? "open" : "closed");
	log->n = 0;
	return g_string_free(s, FALSE);
}

#define ASSERT_MOVES(t, log, want) do {					\
		char *got_ = tray_moves((t), (log));			\
		g_assert_cmpstr(got_, ==, (want));			\
		g_free(got_);						\
	} while (0)

/*
 * DEVICE_TRAY_MOVED as QEMU sends it: an eject opens a closed tray; a
 * medium change opens it (if closed) and closes it; the guest's START
 * STOP UNIT with LoEj moves it from an I/O thread, each time it really
 * moves; a move the guest's lock refuses, or an eject into an open tray,
 * says nothing.
 */
static void test_tray_moved(void)
{
	struct st t;
	struct tray_log log = { .ml = { .tray_moved = on_tray } };
	struct blk_config bc = { .format = "raw", .readonly = true };
	char err[256], *iso, *iso2;

	st_init(&t, 1, false);
	t.h.m.ctx = g_main_context_new();
	log.ml.opaque = &log;
	machine_add_listener(&t.h.m, &log.ml);
	iso = st_image(&t, "a.iso", "raw", 2048 * 100);
	iso2 = st_image(&t, "b.iso", "raw", 2048 * 300);
	st_drive(&t, "cd", iso, "raw", "readonly=on");
	st_device(&t, "scsi-cd,drive=cd,id=cd0");
	st_device(&t, "scsi-cd,scsi-id=1");
	st_find(&t);
	st_up(&t);
	st_clear_ua(&t, 0, 0);
	ASSERT_MOVES(&t, &log, "");

	/* The guest opens the tray, again (no move), then closes it. */
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 0);
	ASSERT_MOVES(&t, &log, "cd/cd0:open");
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x03, 0), ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);
	ASSERT_MOVES(&t, &log, "cd/cd0:closed");

	/* Locked: the guest's own eject is refused, and nothing moved. */
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0), ==, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(5, 0x53, 0x02));
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", false, err, sizeof(err)), ==, -EBUSY);
	ASSERT_MOVES(&t, &log, "");

	/* The host: eject (forced) opens, a change into the open tray closes. */
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", true, err, sizeof(err)), ==, 0);
	ASSERT_MOVES(&t, &log, "cd/cd0:open");
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", false, err, sizeof(err)), ==, 0);
	ASSERT_MOVES(&t, &log, "");
	bc.file = iso2;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	ASSERT_MOVES(&t, &log, "cd/cd0:closed");
	/* A change into a closed tray opens it, then closes it. */
	bc.file = iso;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	ASSERT_MOVES(&t, &log, "cd/cd0:open cd/cd0:closed");
	/* A failed change moves nothing. */
	bc.file = "/nonexistent/x.iso";
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), <, 0);
	ASSERT_MOVES(&t, &log, "");

	/* A unit with neither drive nor id: both names empty. */
	st_clear_ua(&t, 1, 0);
	g_assert_cmpuint(CMD(&t, 1, 0, 0, 0, 0, 0, SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0), ==, 0);
	ASSERT_MOVES(&t, &log, "/:open");

	machine_remove_listener(&t.h.m, &log.ml);
	st_fini(&t);
	g_main_context_unref(t.h.m.ctx);
	g_free(iso);
	g_free(iso2);
}

/* ---- a disc that leaves the unit is closed ---- */

/* Open descriptors of this process on path. */
static unsigned fds_on(const char *path)
{
	char *real = realpath(path, NULL);
	GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
	const char *name;
	unsigned n = 0;

	g_assert_nonnull(real);
	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir))) {
		char *p = g_build_filename("/proc/self/fd", name, NULL);
		char *target = g_file_read_link(p, NULL);

		n += target && !strcmp(target, real);
		g_free(target);
		g_free(p);
	}
	g_dir_close(dir);
	free(real);
	return n;
}

/*
 * Whether someone forbids others to write path, as a read-only user of
 * the image does with QEMU's lock bytes (200 + write): what makes
 * qemu-img refuse to write an ISO that a VM has open.
 */
static bool write_forbidden(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 201, .l_len = 1 };
	int fd = open(path, O_RDONLY);
	bool held;

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(fcntl(fd, F_OFD_GETLK, &fl), ==, 0);
	held = fl.l_type != F_UNLCK;
	close(fd);
	return held;
}

/*
 * Eject and change-medium close the disc they take out (the drive's image
 * or an inserted one) and let go of its lock, as QEMU closes a removed
 * medium; the unit keeps its drive, now empty.  Unplugged, it gives the
 * drive back: a new CD unit on it has an empty tray, a disk is refused.
 */
static void test_eject_closes(void)
{
	struct st t;
	struct blk_config bc = { .format = "raw", .readonly = true };
	char err[256], *iso, *iso2;
	struct drive *d;

	st_init(&t, 1, false);
	iso = st_image(&t, "a.iso", "raw", 2048 * 100);
	iso2 = st_image(&t, "b.iso", "raw", 2048 * 300);
	st_drive(&t, "cd", iso, "raw", "readonly=on");
	st_device(&t, "scsi-cd,drive=cd,id=cd0");
	st_find(&t);
	st_up(&t);
	st_clear_ua(&t, 0, 0);
	d = drive_find(&t.h.m, "cd");
	g_assert_cmpuint(fds_on(iso), ==, 1);
	g_assert_true(write_forbidden(iso));
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 2048, SCSI_READ_10, 0, B4(7), 0, B2(1), 0),
			 ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);

	/* Eject: the drive's image is closed, its lock gone; the unit keeps the drive. */
	g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", false, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(fds_on(iso), ==, 0);
	g_assert_false(write_forbidden(iso));
	g_assert_null(d->blk);
	g_assert_true(d->claimed);

	/* An inserted disc replaced by another is closed too. */
	bc.file = iso2;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(fds_on(iso2), ==, 1);
	g_assert_true(write_forbidden(iso2));
	bc.file = iso;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(fds_on(iso2), ==, 0);
	g_assert_false(write_forbidden(iso2));
	g_assert_cmpuint(fds_on(iso), ==, 1);
	/* The guest reads the new disc: its threads took no stale queue along. */
	st_clear_ua(&t, 0, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, DATA(0), 2048, SCSI_READ_10, 0, B4(99), 0, B2(1), 0),
			 ==, 0);
	g_assert_cmpuint(t.resp.status, ==, 0);

	/* Unplugged: the drive is free and empty. */
	g_assert_cmpint(virtio_scsi_device_del(&t.h.m, "cd0", err, sizeof(err)), ==, 0);
	g_assert_cmpuint(fds_on(iso), ==, 0);
	g_assert_false(d->claimed);
	g_assert_cmpint(machine_add_device(&t.h.m, "scsi-hd,drive=cd,id=hd1", err, sizeof(err)),
			==, -ENODEV);
	g_assert_nonnull(strstr(err, "no medium"));
	st_device(&t, "scsi-cd,drive=cd,id=cd1");
	st_clear_ua(&t, 0, 0);
	g_assert_cmpuint(CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0), ==, 0);
	g_assert_cmphex(st_sense(&t), ==, SENSE(2, 0x3a, 0));
	bc.file = iso2;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd1", &bc, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(fds_on(iso2), ==, 1);

	st_fini(&t);
	g_free(iso);
	g_free(iso2);
}

/*
 * A drive's I/O limits hold for a disc put in by the monitor too: 12 reads
 * at 20 IOPS, 3 at once (20/10 over the empty bucket, and one), take at
 * least 0.45 s; without the limits they take milliseconds.
 */
static void test_new_disc_keeps_limits(void)
{
	struct blk_config bc = { .format = "raw", .readonly = true };
	char err[256], *iso, *iso2;
	uint32_t id, len;
	struct st t;
	gint64 t0;

	st_init(&t, 1, true);
	iso = st_image(&t, "a.iso", "raw", 2048 * 100);
	iso2 = st_image(&t, "b.iso", "raw", 2048 * 100);
	st_drive(&t, "cd", iso, "raw", "readonly=on,throttling.iops-total=20");
	st_device(&t, "scsi-cd,drive=cd,id=cd0");
	st_find(&t);
	st_up(&t);
	bc.file = iso2;
	g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err, sizeof(err)), ==, 0);
	/* Power-on, then the medium change: each reported once. */
	for (unsigned i = 0; i < 4 && (CMD(&t, 0, 0, 0, 0, 0, 0, SCSI_TEST_UNIT_READY, 0, 0, 0, 0,
					   0) || t.resp.status); i++)
		;
	g_assert_cmpuint(t.resp.status, ==, 0);
	t0 = g_get_monotonic_time();
	for (unsigned i = 0; i < 12; i++)
		st_submit(&t, 0, 0, 0, i, CDB(SCSI_READ_10, 0, B4(i), 0, B2(1), 0), 10, 0, 0,
			  DATA(0) + i * 2048, 2048, false);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_REQ);
	for (unsigned i = 0; i < 12; i++) {
		g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_REQ, &id, &len));
		g_assert_cmpuint(st_result(&t, 0, id), ==, VIRTIO_SCSI_S_OK);
		g_assert_cmpuint(t.resp.status, ==, 0);
	}
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 450000);
	st_fini(&t);
	g_free(iso);
	g_free(iso2);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-scsi/media-info", test_media_info);
	g_test_add_func("/virtio-scsi/tray-moved", test_tray_moved);
	g_test_add_func("/virtio-scsi/eject-closes", test_eject_closes);
	g_test_add_func("/virtio-scsi/new-disc-keeps-limits", test_new_disc_keeps_limits);
	return g_test_run();
}
