/*
 * The guest side of a virtio-blk-pci device for the unit tests: a machine
 * with one drive (raw or qcow2, 8 MiB) and the device, rings laid out in
 * guest RAM, and requests built, published and waited for.
 */
#ifndef VIREO_TEST_VBLK_UTIL_H
#define VIREO_TEST_VBLK_UTIL_H

#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"

#define DISK		(8ull << 20)
#define HDR(q)		(0x300000ull + (q) * 0x2000)	/* headers by head, statuses at +0x1000 */
#define STATUS(q, head)	(HDR(q) + 0x1000 + (head))
#define TABLE(q)	(0x380000ull + (q) * 0x10000)	/* indirect tables, 256 bytes per head */
#define DATA(q)		(0x400000ull + (q) * 0x100000)	/* 1 MiB of buffers per queue */
#define QSIZE		128

static const uint64_t base_features = 1ull << VIRTIO_F_VERSION_1 |
	1ull << VIRTIO_BLK_F_MQ | 1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
	1ull << VIRTIO_BLK_F_WRITE_ZEROES | 1ull << VIRTIO_BLK_F_BLK_SIZE |
	1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_SIZE_MAX |
	1ull << VIRTIO_BLK_F_TOPOLOGY;

struct bt {
	struct vh_machine h;
	struct vh_dev d;
	char *dir, *img;
	const char *fmt;
};

/*
 * -device virtio-blk-pci registers itself from virtio/blk.c, which the
 * linker takes from libvireo.a only for a symbol a test uses: this one.
 */
static int (*const bt_link_virtio_blk)(struct machine *, char *, size_t)
	__attribute__((used)) = virtio_blk_create_for_drives;

/* Called on the new image before the drive opens it (a test that edits it). */
static void (*bt_prepare)(const char *img);

/* Image of fmt; drive d0 with drive_opts; device with dev_opts. */
static inline bool bt_init(struct bt *t, const char *fmt, const char *drive_opts,
			   const char *dev_opts, unsigned smp, bool fds)
{
	char err[256], *opt;

	memset(t, 0, sizeof(*t));
	t->fmt = fmt;
	t->dir = g_dir_make_tmp("vireo-vblk-XXXXXX", NULL);
	g_assert_nonnull(t->dir);
	t->img = g_build_filename(t->dir, "disk.img", NULL);
	if (!strcmp(fmt, "qcow2")) {
		char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", t->img, "8M", NULL };
		int status = -1;

		if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
				  &status, NULL) || status) {
			g_test_skip("qemu-img is not available to create a qcow2 image");
			return false;
		}
	} else {
		FILE *f = fopen(t->img, "w");

		g_assert_nonnull(f);
		g_assert_cmpint(ftruncate(fileno(f), DISK), ==, 0);
		fclose(f);
	}
	if (bt_prepare)
		bt_prepare(t->img);
	vh_machine_init(&t->h, smp, fds);
	opt = g_strdup_printf("file=%s,format=%s,if=none,id=d0%s%s", t->img, fmt,
			      drive_opts ? "," : "", drive_opts ? drive_opts : "");
	if (drive_add(&t->h.m, opt, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	g_free(opt);
	opt = g_strdup_printf("virtio-blk-pci,drive=d0%s%s", dev_opts ? "," : "",
			      dev_opts ? dev_opts : "");
	if (machine_add_device(&t->h.m, opt, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	g_free(opt);
	g_assert_true(vh_dev_find(&t->h, VIRTIO_ID_BLOCK, 0, &t->d));
	vh_msix_enable(&t->d);
	return true;
}

static inline void bt_up(struct bt *t, uint64_t features, unsigned nq)
{
	g_assert_cmphex(vh_dev_setup(&t->d, features, nq, QSIZE), ==,
			VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Tear down the machine (drives flushed and closed) and read the disk back. */
static inline guint8 *bt_finish(struct bt *t)
{
	char *raw = g_build_filename(t->dir, "out.raw", NULL);
	guint8 *contents = NULL;
	gsize len = 0;

	vh_machine_destroy(&t->h);
	if (!strcmp(t->fmt, "qcow2")) {
		char *check[] = { "qemu-img", "check", "-q", t->img, NULL };
		char *conv[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "raw", t->img, raw,
				 NULL };
		int status = -1;

		/* The image must stay valid as qemu-img sees it. */
		g_assert_true(g_spawn_sync(NULL, check, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
					   NULL, NULL, &status, NULL));
		g_assert_cmpint(status, ==, 0);
		g_assert_true(g_spawn_sync(NULL, conv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
					   NULL, NULL, &status, NULL));
		g_assert_cmpint(status, ==, 0);
		g_assert_true(g_file_get_contents(raw, (gchar **)&contents, &len, NULL));
		g_unlink(raw);
	} else {
		g_assert_true(g_file_get_contents(t->img, (gchar **)&contents, &len, NULL));
	}
	g_assert_cmpuint(len, ==, DISK);
	g_unlink(t->img);
	g_rmdir(t->dir);
	g_free(raw);
	g_free(t->img);
	g_free(t->dir);
	return contents;
}

static inline void *gp(struct bt *t, uint64_t gpa, uint64_t len)
{
	return vh_ptr(&t->h.m.mem, gpa, len);
}

/* Publish [header, data..., status] on queue q; returns the head. */
static inline uint16_t submit(struct bt *t, unsigned q, uint32_t type, uint64_t sector,
			      const struct vh_buf *data, unsigned n, bool indirect)
{
	uint16_t head = t->d.ring[q].next_desc;
	struct virtio_blk_req_hdr *h = gp(t, HDR(q) + 16 * head, 16);
	struct vh_buf b[16];

	g_assert_cmpuint(n, <=, 14);
	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	b[0] = (struct vh_buf){ HDR(q) + 16 * head, 16, false };
	if (n)
		memcpy(b + 1, data, n * sizeof(*data));
	b[n + 1] = (struct vh_buf){ STATUS(q, head), 1, true };
	*(uint8_t *)gp(t, b[n + 1].gpa, 1) = 0xff;
	return vh_ring_add(&t->d.ring[q], b, n + 2, indirect ? TABLE(q) + 256 * head : 0);
}

static inline uint8_t status_of(struct bt *t, unsigned q, uint16_t head)
{
	return *(uint8_t *)gp(t, STATUS(q, head), 1);
}

static inline uint8_t req(struct bt *t, unsigned q, uint32_t type, uint64_t sector,
			  const struct vh_buf *data, unsigned n, bool indirect, uint32_t *used)
{
	uint16_t head = submit(t, q, type, sector, data, n, indirect);
	uint32_t id, len;

	vh_kick(&t->d, q);
	g_assert_true(vh_wait_used(&t->d, q, &id, &len));
	g_assert_cmpuint(id, ==, head);
	if (used)
		*used = len;
	return status_of(t, q, head);
}

static inline uint8_t rw(struct bt *t, unsigned q, bool write, uint64_t sector,
			 uint64_t gpa, uint32_t len)
{
	struct vh_buf b = { gpa, len, !write };

	return req(t, q, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, &b, 1, false, NULL);
}

static inline uint8_t dz(struct bt *t, unsigned q, uint32_t type, uint64_t sector,
			 uint32_t n, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes *s = gp(t, DATA(q) + 0xff000, sizeof(*s));
	struct vh_buf b = { DATA(q) + 0xff000, sizeof(*s), false };

	s->sector = sector;
	s->num_sectors = n;
	s->flags = flags;
	return req(t, q, type, 0, &b, 1, false, NULL);
}

static inline void fill(void *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)p)[i] = seed + i * 7 + (i >> 9);
}

static inline bool is_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

#endif
