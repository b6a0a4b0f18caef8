/*
 * The scaffolding of the werror=/rerror= device tests (test_werror.c for
 * virtio-blk, test_scsi_werror.c for virtio-scsi): a machine with one
 * drive "d0" on a raw image in a temporary folder, a listener that counts
 * the BLOCK_IO_ERROR events, and a disk that is broken for real in the
 * host.  The image's descriptor is swapped (dup2) for a read-only one so
 * that writes fail with EBADF, or a write-only one for reads; swapping
 * the saved read-write descriptor back repairs the disk.
 *
 * A test file adds its device: we_init(), then the device's creation,
 * then we_attach() once the drive's image is open.
 */
#ifndef VIREO_TEST_WERROR_UTIL_H
#define VIREO_TEST_WERROR_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "machine.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"
#include "vmstate.h"

#define WE_DISK		(1ull << 20)
#define WE_QSIZE	16

struct we {
	struct vh_machine h;
	struct vh_dev d;
	struct machine_listener ml;
	char *dir, *img;
	int img_fd;			/* the blk's descriptor of the image */
	int saved_fd;			/* a copy of it, to repair the disk */
	unsigned nr_errors;
	struct machine_io_error last;
};

static inline void *gp(struct we *t, uint64_t gpa, uint64_t len)
{
	return vh_ptr(&t->h.m.mem, gpa, len);
}

/* An empty raw image of WE_DISK bytes in a new temporary folder *dir. */
static inline char *we_image(const char *dir_tmpl, char **dir)
{
	char *img;

	*dir = g_dir_make_tmp(dir_tmpl, NULL);
	g_assert_nonnull(*dir);
	img = g_build_filename(*dir, "disk.raw", NULL);
	g_assert_true(g_file_set_contents(img, "", 0, NULL));
	g_assert_cmpint(truncate(img, WE_DISK), ==, 0);
	return img;
}

static inline void we_image_remove(char *dir, char *img)
{
	g_unlink(img);
	g_rmdir(dir);
	g_free(img);
	g_free(dir);
}

static inline void we_on_io_error(void *opaque, const struct machine_io_error *e)
{
	struct we *t = opaque;

	t->nr_errors++;
	t->last = *e;
	t->last.device = NULL;		/* only valid during the call */
	g_assert_cmpstr(e->device, ==, "d0");
}

/* The descriptor the block layer opened on the image (aio=threads uses it as is). */
static inline int we_find_image_fd(const char *img)
{
	char *real = realpath(img, NULL);
	GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
	const char *name;
	int found = -1;

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

/*
 * The machine, listening for I/O errors, and drive d0 (if=iface, aio=threads
 * so that the image's descriptor is the one pread/pwrite use) with opts.
 */
static inline void we_init(struct we *t, const char *dir_tmpl, const char *iface,
			   const char *opts)
{
	char err[256], *opt;

	memset(t, 0, sizeof(*t));
	t->img = we_image(dir_tmpl, &t->dir);
	t->saved_fd = -1;
	vh_machine_init(&t->h, 1, false);
	t->h.m.ctx = g_main_context_new();
	/* The harness has no vCPUs: pausing only moves the runstate. */
	t->h.m.runstate = RUNSTATE_RUNNING;
	t->ml.io_error = we_on_io_error;
	t->ml.opaque = t;
	machine_add_listener(&t->h.m, &t->ml);
	opt = g_strdup_printf("file=%s,format=raw,if=%s,id=d0,aio=threads,%s", t->img, iface,
			      opts);
	g_assert_cmpint(drive_add(&t->h.m, opt, err, sizeof(err)), ==, 0);
	g_free(opt);
}

/* The driver's setup of the device with nq queues of WE_QSIZE. */
static inline void we_setup(struct we *t, unsigned nq)
{
	g_assert_cmphex(vh_dev_setup(&t->d, 1ull << VIRTIO_F_VERSION_1, nq, WE_QSIZE), ==,
			VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* The created device of type virtio_id, set up; the image's descriptor found. */
static inline void we_attach(struct we *t, uint16_t virtio_id, unsigned nq)
{
	g_assert_true(vh_dev_find(&t->h, virtio_id, 0, &t->d));
	vh_msix_enable(&t->d);
	we_setup(t, nq);
	t->img_fd = we_find_image_fd(t->img);
}

static inline void we_finish(struct we *t)
{
	machine_remove_listener(&t->h.m, &t->ml);
	vh_machine_destroy(&t->h);
	g_main_context_unref(t->h.m.ctx);
	if (t->saved_fd >= 0)
		close(t->saved_fd);
	we_image_remove(t->dir, t->img);
}

/* I/O of the given direction on the image fails from now on (EBADF). */
static inline void we_break(struct we *t, bool writes)
{
	int fd = open(t->img, (writes ? O_RDONLY : O_WRONLY) | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	t->saved_fd = dup(t->img_fd);
	g_assert_cmpint(t->saved_fd, >=, 0);
	g_assert_cmpint(dup2(fd, t->img_fd), ==, t->img_fd);
	close(fd);
}

static inline void we_repair(struct we *t)
{
	g_assert_cmpint(dup2(t->saved_fd, t->img_fd), ==, t->img_fd);
	close(t->saved_fd);
	t->saved_fd = -1;
}

/* Run the main loop (as the main thread would) until n errors were told. */
static inline void we_wait_errors(struct we *t, unsigned n)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (t->nr_errors < n) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		if (!g_main_context_iteration(t->h.m.ctx, FALSE))
			g_usleep(1000);
	}
}

static inline int we_io_status(struct we *t)
{
	return __atomic_load_n(&t->h.m.drives->io_status, __ATOMIC_ACQUIRE);
}

static inline void we_fill(void *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)p)[i] = seed + i * 7 + (i >> 9);
}

/* to's disk holds what from's does (shared storage, here a copy). */
static inline void we_copy_disk(struct we *from, struct we *to)
{
	gchar *data;
	gsize len;
	int fd = open(to->img, O_WRONLY | O_CLOEXEC);

	/* In place: to's drive has the file open already. */
	g_assert_true(g_file_get_contents(from->img, &data, &len, NULL));
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, data, len, 0), ==, (ssize_t)len);
	close(fd);
	g_free(data);
}

/* Hostile edits of a saved virtio-pci section, for vh_migrate_dev. */
static inline void we_bad_parked(struct vmstate_out *o)	/* the first parked head: 0xffff */
{
	uint8_t *f = memmem(o->buf, o->len, "\x06parked", 7);

	g_assert_nonnull(f);
	g_assert_cmpuint(f[7], ==, 2);		/* one head */
	f[11] = f[12] = 0xff;
}

static inline void we_bad_io_status(struct vmstate_out *o)	/* an io-status of 7 */
{
	uint8_t *f = memmem(o->buf, o->len, "\x09io-status", 10);

	g_assert_nonnull(f);
	g_assert_cmpuint(f[10], ==, 1);		/* one byte */
	f[14] = 7;
}

/* b, a paused destination, takes over a's device as a migration does. */
static inline void we_migrate(struct we *a, struct we *b)
{
	char err[512] = "";

	/* b's device ran its own driver setup: held still around the load. */
	b->h.m.runstate = RUNSTATE_PAUSED;
	if (vh_migrate_dev(&a->d, &b->h, &b->d, true, NULL, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
}

/* c, a paused destination, refuses a's state edited by edit, saying msg. */
static inline void we_migrate_refused(struct we *a, struct we *c,
				      void (*edit)(struct vmstate_out *o), const char *msg)
{
	char err[512] = "";

	c->h.m.runstate = RUNSTATE_PAUSED;
	g_assert_cmpint(vh_migrate_dev(&a->d, &c->h, &c->d, true, edit, err, sizeof(err)), ==,
			-EINVAL);
	g_assert_nonnull(strstr(err, msg));
}

/*
 * a's state, with a request parked, edited as a hostile source would: a
 * destination made by init(opts) refuses each stream.
 */
static inline void we_migrate_hostile(struct we *a, void (*init)(struct we *t, const char *opts),
				      const char *opts)
{
	struct we c;

	/* A stream whose parked head is out of the ring is refused. */
	init(&c, opts);
	we_migrate_refused(a, &c, we_bad_parked, "parked head 65535");
	we_finish(&c);
	/* So is one with an io-status that does not exist. */
	init(&c, opts);
	we_migrate_refused(a, &c, we_bad_io_status, "io-status 7");
	we_finish(&c);
}

#endif
