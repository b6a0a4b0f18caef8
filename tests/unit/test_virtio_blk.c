/*
 * virtio-blk-pci played from the guest side, as QEMU's qtest does: the test
 * finds the device in config space, negotiates features, lays out rings in
 * guest RAM, kicks and checks completions and the image contents, for each
 * request type on raw and qcow2, with 4 queues at once, with EVENT_IDX and
 * indirect descriptors, and with each malformed chain (NEEDS_RESET, and the
 * device comes back after a reset).
 */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/syscall.h>
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

/* Called on the new image before the drive opens it (a test that edits it). */
static void (*bt_prepare)(const char *img);

/* Image of fmt; drive d0 with drive_opts; device with dev_opts. */
static bool bt_init(struct bt *t, const char *fmt, const char *drive_opts, const char *dev_opts,
		    unsigned smp, bool fds)
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

static void bt_up(struct bt *t, uint64_t features, unsigned nq)
{
	g_assert_cmphex(vh_dev_setup(&t->d, features, nq, QSIZE), ==,
			VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Tear down the machine (drives flushed and closed) and read the disk back. */
static guint8 *bt_finish(struct bt *t)
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

static void *gp(struct bt *t, uint64_t gpa, uint64_t len)
{
	return vh_ptr(&t->h.m.mem, gpa, len);
}

/* Publish [header, data..., status] on queue q; returns the head. */
static uint16_t submit(struct bt *t, unsigned q, uint32_t type, uint64_t sector,
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

static uint8_t status_of(struct bt *t, unsigned q, uint16_t head)
{
	return *(uint8_t *)gp(t, STATUS(q, head), 1);
}

static uint8_t req(struct bt *t, unsigned q, uint32_t type, uint64_t sector,
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

static uint8_t rw(struct bt *t, unsigned q, bool write, uint64_t sector, uint64_t gpa,
		  uint32_t len)
{
	struct vh_buf b = { gpa, len, !write };

	return req(t, q, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, &b, 1, false, NULL);
}

static uint8_t dz(struct bt *t, unsigned q, uint32_t type, uint64_t sector, uint32_t n,
		  uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes *s = gp(t, DATA(q) + 0xff000, sizeof(*s));
	struct vh_buf b = { DATA(q) + 0xff000, sizeof(*s), false };

	s->sector = sector;
	s->num_sectors = n;
	s->flags = flags;
	return req(t, q, type, 0, &b, 1, false, NULL);
}

static void fill(void *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)p)[i] = seed + i * 7 + (i >> 9);
}

static bool is_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void test_config(void)
{
	struct bt t;
	uint64_t f;

	if (!bt_init(&t, "raw", NULL, "num-queues=3,logical_block_size=4096,"
		     "physical_block_size=16384,serial=abc", 2, false))
		return;
	f = t.d.features = 0;
	for (unsigned sel = 0; sel < 2; sel++) {
		vh_common_write(&t.d, VIRTIO_PCI_COMMON_DFSELECT, 4, sel);
		f |= vh_common_read(&t.d, VIRTIO_PCI_COMMON_DF, 4) << (32 * sel);
	}
	g_assert_cmphex(f & base_features, ==, base_features);
	g_assert_true(f & 1ull << VIRTIO_F_EVENT_IDX);
	g_assert_true(f & 1ull << VIRTIO_F_INDIRECT_DESC);
	g_assert_false(f & 1ull << VIRTIO_BLK_F_RO);
	g_assert_cmpuint(t.d.nr_queues, ==, 3);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config, capacity), 8), ==,
			 DISK / 512);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config, blk_size), 4), ==,
			 4096);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config,
						    physical_block_exp), 1), ==, 2);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config, seg_max), 4), ==,
			 256 - 2);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config, size_max), 4), >,
			 0);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config, num_queues), 2),
			 ==, 3);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config,
						    max_discard_seg), 4), ==, 1);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config,
						    discard_sector_alignment), 4), ==, 8);
	g_assert_cmpuint(vh_cfg_read(&t.d, offsetof(struct virtio_blk_config,
						    max_write_zeroes_sectors), 4), >, 0);
	g_free(bt_finish(&t));

	/* num-queues defaults to the vCPU count; a read-only drive says so. */
	if (!bt_init(&t, "raw", "readonly=on", NULL, 5, false))
		return;
	g_assert_cmpuint(t.d.nr_queues, ==, 5);
	bt_up(&t, base_features | 1ull << VIRTIO_BLK_F_RO, 5);
	g_assert_true(t.h.m.drives->blk != NULL);
	fill(gp(&t, DATA(0), 4096), 4096, 1);
	g_assert_cmpuint(rw(&t, 0, true, 0, DATA(0), 4096), ==, VIRTIO_BLK_S_IOERR);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), ==, VIRTIO_BLK_S_IOERR);
	g_assert_cmpuint(rw(&t, 0, false, 0, DATA(0), 4096), ==, VIRTIO_BLK_S_OK);
	g_assert_true(is_zero(gp(&t, DATA(0), 4096), 4096));
	g_free(bt_finish(&t));
}

static void test_options(void)
{
	struct vh_machine h;
	char err[256];
	char *dir = g_dir_make_tmp("vireo-vblk-XXXXXX", NULL);
	char *img = g_build_filename(dir, "d.img", NULL);
	char *opt = g_strdup_printf("file=%s,format=raw,if=virtio", img);
	FILE *f = fopen(img, "w");

	g_assert_cmpint(ftruncate(fileno(f), 1 << 20), ==, 0);
	fclose(f);
	vh_machine_init(&h, 2, false);
	g_assert_cmpint(drive_add(&h.m, opt, err, sizeof(err)), ==, 0);
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=nope", err, sizeof(err)),
			<, 0);
	g_assert_nonnull(strstr(err, "nope"));
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=virtio0,num-queues=0",
					   err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "num-queues"));
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=virtio0,"
					   "logical_block_size=1000", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "logical_block_size"));
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=virtio0,serial="
					   "0123456789abcdefghijk", err, sizeof(err)), <, 0);
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=virtio0,"
					   "iothread-per-queue=maybe", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "iothread-per-queue"));
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=virtio0,"
					   "poll-max-ns=2000000000", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "poll-max-ns"));
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=virtio0,bogus=1",
					   err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "bogus"));
	/* libvirt's spelling is accepted. */
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,bus=pci.0,addr=0x6,"
					   "drive=virtio0,id=virtio-disk0,bootindex=1", err,
					   sizeof(err)), ==, 0);
	{
		struct vh_dev d;

		g_assert_true(vh_dev_find(&h, VIRTIO_ID_BLOCK, 0, &d));
		g_assert_cmpuint(d.devfn, ==, 6 << 3);
		g_assert_nonnull(machine_find_device(&h.m, "virtio-disk0"));
	}
	{
		/* Unplug it again (it is the newest device) to free the drive. */
		struct device *dev = h.m.devices;

		h.m.devices = dev->next;
		dev->destroy(dev);
	}
	/* -drive if=virtio gets its device from the machine, once. */
	g_assert_cmpint(virtio_blk_create_for_drives(&h.m, err, sizeof(err)), ==, 0);
	g_assert_cmpint(virtio_blk_create_for_drives(&h.m, err, sizeof(err)), ==, 0);
	{
		struct vh_dev d;

		g_assert_true(vh_dev_find(&h, VIRTIO_ID_BLOCK, 0, &d));
		g_assert_false(vh_dev_find(&h, VIRTIO_ID_BLOCK, 1, &d));
		g_assert_cmpuint(d.nr_queues, ==, 2);
	}
	g_assert_cmpint(machine_add_device(&h.m, "virtio-blk-pci,drive=virtio0", err,
					   sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "in use"));
	vh_machine_destroy(&h);
	g_unlink(img);
	g_rmdir(dir);
	g_free(opt);
	g_free(img);
	g_free(dir);
}

/* Every request type on one format. */
static void all_requests(const char *fmt)
{
	struct bt t;
	struct vh_buf b[3];
	uint32_t used;
	guint8 *disk;
	uint8_t *id;

	if (!bt_init(&t, fmt, "discard=unmap", "num-queues=2,serial=vireo-serial-0001", 1, true))
		return;
	bt_up(&t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, 2);

	/* OUT of 12 KiB in three buffers, at sector 64; IN back in two. */
	fill(gp(&t, DATA(0), 12288), 12288, 3);
	b[0] = (struct vh_buf){ DATA(0), 4096, false };
	b[1] = (struct vh_buf){ DATA(0) + 4096, 512, false };
	b[2] = (struct vh_buf){ DATA(0) + 4608, 12288 - 4608, false };
	g_assert_cmpuint(req(&t, 0, VIRTIO_BLK_T_OUT, 64, b, 3, false, &used), ==,
			 VIRTIO_BLK_S_OK);
	g_assert_cmpuint(used, ==, 1);
	b[0] = (struct vh_buf){ DATA(1), 1024, true };
	b[1] = (struct vh_buf){ DATA(1) + 1024, 12288 - 1024, true };
	g_assert_cmpuint(req(&t, 1, VIRTIO_BLK_T_IN, 64, b, 2, false, &used), ==,
			 VIRTIO_BLK_S_OK);
	g_assert_cmpuint(used, ==, 12288 + 1);
	g_assert_cmpint(memcmp(gp(&t, DATA(0), 12288), gp(&t, DATA(1), 12288), 12288), ==, 0);

	/* The same through an indirect table. */
	fill(gp(&t, DATA(0), 4096), 4096, 9);
	b[0] = (struct vh_buf){ DATA(0), 4096, false };
	g_assert_cmpuint(req(&t, 0, VIRTIO_BLK_T_OUT, 2048, b, 1, true, NULL), ==,
			 VIRTIO_BLK_S_OK);

	g_assert_cmpuint(req(&t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &used), ==,
			 VIRTIO_BLK_S_OK);

	/* GET_ID: 20 bytes of serial. */
	id = gp(&t, DATA(1), 32);
	memset(id, 0xee, 32);
	b[0] = (struct vh_buf){ DATA(1), 32, true };
	g_assert_cmpuint(req(&t, 1, VIRTIO_BLK_T_GET_ID, 0, b, 1, false, &used), ==,
			 VIRTIO_BLK_S_OK);
	g_assert_cmpuint(used, ==, 21);
	g_assert_cmpint(memcmp(id, "vireo-serial-0001\0\0\0", 20), ==, 0);
	g_assert_cmpuint(id[20], ==, 0xee);

	/* WRITE_ZEROES over part of the data, with and without unmap. */
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 66, 4, 0), ==, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 72, 2,
			    VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), ==, VIRTIO_BLK_S_OK);
	/* DISCARD of 128 KiB, cluster aligned, written before. */
	fill(gp(&t, DATA(0), 131072), 131072, 5);
	g_assert_cmpuint(rw(&t, 0, true, 4096, DATA(0), 131072), ==, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_DISCARD, 4096, 256, 0), ==, VIRTIO_BLK_S_OK);
	memset(gp(&t, DATA(1), 131072), 0xaa, 131072);
	g_assert_cmpuint(rw(&t, 1, false, 4096, DATA(1), 131072), ==, VIRTIO_BLK_S_OK);
	g_assert_true(is_zero(gp(&t, DATA(1), 131072), 131072));

	/* Well-formed requests the device refuses: the queue keeps going. */
	b[0] = (struct vh_buf){ DATA(1), 512, true };
	g_assert_cmpuint(req(&t, 1, 99, 0, b, 1, false, NULL), ==, VIRTIO_BLK_S_UNSUPP);
	g_assert_cmpuint(rw(&t, 1, false, DISK / 512, DATA(1), 512), ==, VIRTIO_BLK_S_IOERR);
	g_assert_cmpuint(rw(&t, 1, false, DISK / 512 - 1, DATA(1), 1024), ==,
			 VIRTIO_BLK_S_IOERR);
	g_assert_cmpuint(rw(&t, 1, true, ~0ull / 256, DATA(1), 512), ==, VIRTIO_BLK_S_IOERR);
	g_assert_cmpuint(rw(&t, 1, false, 0, DATA(1), 100), ==, VIRTIO_BLK_S_IOERR);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_DISCARD, 0, 8, 1), ==, VIRTIO_BLK_S_UNSUPP);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), ==, VIRTIO_BLK_S_UNSUPP);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_WRITE_ZEROES, DISK / 512 - 4, 8, 0), ==,
			 VIRTIO_BLK_S_IOERR);
	g_assert_false(vh_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	/* Interrupts came through each queue's vector (irqfd here). */
	g_assert_cmpuint(vh_msi_count(&t.h, 1), >, 0);
	g_assert_cmpuint(vh_msi_count(&t.h, 2), >, 0);

	disk = bt_finish(&t);
	{
		/* What the disk must hold now, byte for byte. */
		guint8 *want = g_malloc0(DISK);

		fill(want + 64 * 512, 12288, 3);
		memset(want + 66 * 512, 0, 4 * 512);
		memset(want + 72 * 512, 0, 2 * 512);
		fill(want + 2048 * 512, 4096, 9);
		g_assert_true(memcmp(disk, want, DISK) == 0);
		g_free(want);
	}
	g_free(disk);
}

static void test_requests_raw(void)
{
	all_requests("raw");
}

static void test_requests_qcow2(void)
{
	all_requests("qcow2");
}

/* Threads of this process named like the device's I/O threads. */
static unsigned io_threads(void)
{
	GDir *d = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;
	unsigned n = 0;

	g_assert_nonnull(d);
	while ((tid = g_dir_read_name(d))) {
		char *path = g_strdup_printf("/proc/self/task/%s/comm", tid), *comm = NULL;

		if (g_file_get_contents(path, &comm, NULL, NULL) &&
		    g_str_has_prefix(comm, "virtio-blk io"))
			n++;
		g_free(comm);
		g_free(path);
	}
	g_dir_close(d);
	return n;
}

/* CPU time (clock ticks) used so far by the device's I/O threads. */
static uint64_t io_thread_ticks(void)
{
	GDir *d = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;
	uint64_t ticks = 0;

	g_assert_nonnull(d);
	while ((tid = g_dir_read_name(d))) {
		char *path = g_strdup_printf("/proc/self/task/%s/stat", tid), *stat = NULL;
		unsigned long ut, st;
		char *p;

		if (g_file_get_contents(path, &stat, NULL, NULL) &&
		    g_strstr_len(stat, -1, "(virtio-blk io)") && (p = strrchr(stat, ')'))) {
			g_assert_cmpint(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
					       "%lu %lu", &ut, &st), ==, 2);
			ticks += ut + st;
		}
		g_free(stat);
		g_free(path);
	}
	g_dir_close(d);
	return ticks;
}

/*
 * Polling (here up to 100 ms per wait) must not outlive the work: after a
 * burst of requests, an idle device's I/O threads use no CPU.  A thread
 * that kept polling would use all of the idle second (100 ticks).
 */
static void test_poll_idle(void)
{
	enum { NQ = 2, N = 200 };
	uint64_t before;
	struct bt t;

	if (!bt_init(&t, "raw", NULL, "num-queues=2,poll-max-ns=100000000", 2, true))
		return;
	bt_up(&t, base_features | 1ull << VIRTIO_F_EVENT_IDX, NQ);
	/* One request at a time: each wait is short, so the window grows. */
	for (unsigned i = 0; i < N; i++)
		g_assert_cmpuint(rw(&t, i % NQ, i & 1, i % 64, DATA(i % NQ), 4096), ==,
				 VIRTIO_BLK_S_OK);
	/* At most one more window of polling; then the thread sleeps. */
	g_usleep(G_USEC_PER_SEC);
	before = io_thread_ticks();
	g_usleep(G_USEC_PER_SEC);
	g_assert_cmpuint(io_thread_ticks() - before, <=, 5);
	/* Asleep, it still answers a kick. */
	g_assert_cmpuint(rw(&t, 1, false, 0, DATA(1), 4096), ==, VIRTIO_BLK_S_OK);
	g_free(bt_finish(&t));
}

/*
 * Polling with kicks suppressed: once the window has grown (each sleep
 * shorter than poll-max-ns doubles it), a request published right after a
 * completion is served without a kick, and the device's avail_event says
 * that none is wanted (2.7.10: the driver has already passed it).
 */
static void test_poll_no_kick(void)
{
	struct vh_buf b = { DATA(0), 4096, true };
	struct vh_ring *r;
	struct bt t;

	if (!bt_init(&t, "raw", NULL, "num-queues=1,poll-max-ns=1000000000", 1, true))
		return;
	bt_up(&t, base_features | 1ull << VIRTIO_F_EVENT_IDX, 1);
	r = &t.d.ring[0];
	/* 50 ms between requests: the window doubles past 4 us * 2^14 = 67 ms,
	 * far longer than the driver below takes to publish the next one. */
	for (unsigned i = 0; i < 20; i++) {
		g_assert_cmpuint(rw(&t, 0, false, i, DATA(0), 4096), ==, VIRTIO_BLK_S_OK);
		g_usleep(50000);
	}
	for (unsigned i = 0; i < 10; i++) {
		uint16_t old = r->avail_idx, ev, head;
		uint32_t id, len;

		head = submit(&t, 0, VIRTIO_BLK_T_IN, i, &b, 1, false);
		ev = vh_get_avail_event(r);
		/* Not within (old, new]: a Linux driver would not kick. */
		g_assert_cmpuint((uint16_t)(r->avail_idx - ev - 1), >=, (uint16_t)(r->avail_idx - old));
		g_assert_true(vh_wait_used(&t.d, 0, &id, &len));
		g_assert_cmpuint(id, ==, head);
		g_assert_cmpuint(status_of(&t, 0, head), ==, VIRTIO_BLK_S_OK);
	}
	g_free(bt_finish(&t));
}

/* 4 queues, each with a batch of writes in flight at once, then reads. */
/* The system call a thread of this process sleeps in, or -1 (running). */
static long task_syscall(const char *tid)
{
	char *path = g_strdup_printf("/proc/self/task/%s/syscall", tid), *buf = NULL;
	long nr = -1;

	/* "running", or the number of the call it sleeps in, then its arguments */
	if (g_file_get_contents(path, &buf, NULL, NULL) && g_ascii_isdigit(buf[0]))
		nr = strtol(buf, NULL, 10);
	g_free(buf);
	g_free(path);
	return nr;
}

/*
 * Wait up to 10 s for a thread named like the device's I/O threads to
 * sleep in one of the system calls of want (the thread pool's workers,
 * named after the thread that made them, sleep in futex).
 */
static bool io_thread_blocked_in(const long *want, unsigned n)
{
	for (unsigned tries = 0; tries < 10000; tries++) {
		GDir *d = g_dir_open("/proc/self/task", 0, NULL);
		const char *tid;
		bool found = false;

		g_assert_nonnull(d);
		while (!found && (tid = g_dir_read_name(d))) {
			char *path = g_strdup_printf("/proc/self/task/%s/comm", tid), *comm = NULL;

			if (g_file_get_contents(path, &comm, NULL, NULL) &&
			    g_str_has_prefix(comm, "virtio-blk io")) {
				long nr = task_syscall(tid);

				for (unsigned i = 0; i < n; i++)
					found |= nr == want[i];
			}
			g_free(comm);
			g_free(path);
		}
		g_dir_close(d);
		if (found)
			return true;
		g_usleep(1000);
	}
	return false;
}

/*
 * With aio=io_uring the I/O thread sleeps in io_uring_enter (kicks and
 * completions both arrive on its ring); with aio=threads, polling on, or
 * one thread for several queues, in epoll.  Requests go through either way, before and after a reset.
 */
static void io_thread_loop(const char *drive_opts, const char *dev_opts, const long *want,
			   unsigned n)
{
	struct bt t;
	guint8 *disk;

	if (!bt_init(&t, "raw", drive_opts, dev_opts, 1, true))
		return;
	for (unsigned round = 0; round < 2; round++) {
		bt_up(&t, base_features | 1ull << VIRTIO_F_EVENT_IDX, 1);
		g_assert_true(io_thread_blocked_in(want, n));
		for (unsigned i = 0; i < 20; i++) {
			fill(gp(&t, DATA(0), 4096), 4096, i + round);
			g_assert_cmpuint(rw(&t, 0, true, i * 8, DATA(0), 4096), ==, VIRTIO_BLK_S_OK);
			g_assert_cmpuint(rw(&t, 0, false, i * 8, DATA(0) + 4096, 4096), ==,
					 VIRTIO_BLK_S_OK);
			g_assert_cmpint(memcmp(gp(&t, DATA(0), 4096), gp(&t, DATA(0) + 4096, 4096),
					       4096), ==, 0);
		}
		/* Between requests, the thread is back in the same wait. */
		g_assert_true(io_thread_blocked_in(want, n));
		vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
		g_assert_cmpuint(vh_status(&t.d), ==, 0);
	}
	disk = bt_finish(&t);
	for (unsigned i = 0; i < 20; i++) {
		guint8 want_data[4096];

		fill(want_data, 4096, i + 1);
		g_assert_cmpint(memcmp(disk + i * 4096, want_data, 4096), ==, 0);
	}
	g_free(disk);
}

static void test_io_thread_ring(void)
{
	const long want[] = { SYS_io_uring_enter };

	io_thread_loop("aio=io_uring", NULL, want, 1);
}

static void test_io_thread_epoll(void)
{
	const long want[] = { SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2 };

	io_thread_loop("aio=threads", NULL, want, 3);
	io_thread_loop("aio=io_uring", "poll-max-ns=1000", want, 3);
	/* One thread for two queues (the driver enables one of them). */
	io_thread_loop("aio=io_uring", "num-queues=2,iothread-per-queue=off", want, 3);
}

static void multiqueue(const char *fmt, const char *extra)
{
	enum { NQ = 4, PER = 16, LEN = 8192 };
	char *opts = g_strdup_printf("num-queues=4%s%s", extra ? "," : "", extra ? extra : "");
	struct bt t;
	guint8 *disk;
	bool ok = bt_init(&t, fmt, NULL, opts, 4, true);

	g_free(opts);
	if (!ok)
		return;
	bt_up(&t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, NQ);
	/* pthread_setname_np runs right after pthread_create: wait for it. */
	for (unsigned i = 0; i < 10000 && io_threads() != (extra ? 1 : NQ); i++)
		g_usleep(1000);
	g_assert_cmpuint(io_threads(), ==, extra ? 1 : NQ);
	for (unsigned q = 0; q < NQ; q++) {
		for (unsigned i = 0; i < PER; i++) {
			uint64_t gpa = DATA(q) + i * LEN;
			struct vh_buf b = { gpa, LEN, false };

			fill(gp(&t, gpa, LEN), LEN, q * PER + i);
			submit(&t, q, VIRTIO_BLK_T_OUT, (q * PER + i) * (LEN / 512), &b, 1, i & 1);
		}
	}
	/* All queues kicked before any completion is awaited. */
	for (unsigned q = 0; q < NQ; q++)
		vh_kick(&t.d, q);
	for (unsigned q = 0; q < NQ; q++) {
		for (unsigned i = 0; i < PER; i++) {
			uint32_t id, len;

			g_assert_true(vh_wait_used(&t.d, q, &id, &len));
			g_assert_cmpuint(status_of(&t, q, id), ==, VIRTIO_BLK_S_OK);
		}
		/* The device publishes the used entry before it signals: wait for the MSI. */
		for (unsigned i = 0; i < 5000 && !vh_msi_count(&t.h, q + 1); i++)
			g_usleep(1000);
		g_assert_cmpuint(vh_msi_count(&t.h, q + 1), >, 0);
	}
	/* Read everything back through other queues than wrote it. */
	for (unsigned q = 0; q < NQ; q++) {
		for (unsigned i = 0; i < PER; i++) {
			uint64_t gpa = DATA((q + 1) % NQ) + 0x80000;
			guint8 want[LEN];

			g_assert_cmpuint(rw(&t, (q + 1) % NQ, false, (q * PER + i) * (LEN / 512),
					    gpa, LEN), ==, VIRTIO_BLK_S_OK);
			fill(want, LEN, q * PER + i);
			g_assert_cmpint(memcmp(gp(&t, gpa, LEN), want, LEN), ==, 0);
		}
	}
	disk = bt_finish(&t);
	g_assert_cmpuint(io_threads(), ==, 0);
	for (unsigned n = 0; n < NQ * PER; n++) {
		guint8 want[LEN];

		fill(want, LEN, n);
		g_assert_cmpint(memcmp(disk + (uint64_t)n * LEN, want, LEN), ==, 0);
	}
	g_free(disk);
}

static void test_multiqueue_raw(void)
{
	multiqueue("raw", NULL);
}

static void test_multiqueue_qcow2(void)
{
	multiqueue("qcow2", NULL);
}

/* The same with one I/O thread for the whole device. */
static void test_multiqueue_one_thread(void)
{
	multiqueue("raw", "iothread-per-queue=off");
}

/* One thread polling four queues and their completions (1 ms windows). */
static void test_multiqueue_poll(void)
{
	multiqueue("raw", "iothread-per-queue=off,poll-max-ns=1000000");
}

/* VIRTIO_F_EVENT_IDX: interrupts only when used_event is crossed. */
static void test_event_idx(void)
{
	struct bt t;
	struct vh_ring *r;
	unsigned base;

	if (!bt_init(&t, "raw", NULL, "num-queues=1", 1, false))
		return;
	/* Without the features, discard and write zeroes are not served. */
	bt_up(&t, base_features & ~(1ull << VIRTIO_BLK_F_DISCARD |
				    1ull << VIRTIO_BLK_F_WRITE_ZEROES), 1);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_DISCARD, 0, 8, 0), ==, VIRTIO_BLK_S_UNSUPP);
	g_assert_cmpuint(dz(&t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), ==, VIRTIO_BLK_S_UNSUPP);

	bt_up(&t, base_features | 1ull << VIRTIO_F_EVENT_IDX, 1);
	r = &t.d.ring[0];
	base = vh_msi_count(&t.h, 1);
	/* The first completion after enable always interrupts. */
	vh_set_used_event(r, 1000);
	g_assert_cmpuint(rw(&t, 0, false, 0, DATA(0), 512), ==, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(vh_msi_count(&t.h, 1), ==, base + 1);
	/* used_event far ahead: completions arrive without interrupts. */
	for (unsigned i = 0; i < 3; i++)
		g_assert_cmpuint(rw(&t, 0, false, i, DATA(0), 512), ==, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(vh_msi_count(&t.h, 1), ==, base + 1);
	/* The device asks for a kick only past what it consumed (once it
	 * stops polling the ring: until then no kick is wanted at all). */
	for (unsigned i = 0; i < 5000 && vh_get_avail_event(r) != 4; i++)
		g_usleep(1000);
	g_assert_cmpuint(vh_get_avail_event(r), ==, 4);
	/* used_event = 4: the 5th completion crosses it. */
	vh_set_used_event(r, 4);
	g_assert_cmpuint(rw(&t, 0, false, 0, DATA(0), 512), ==, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(vh_msi_count(&t.h, 1), ==, base + 2);
	g_free(bt_finish(&t));
}

/* Reset with requests in flight: the device drains them, then comes back. */
static void test_reset_inflight(void)
{
	struct bt t;

	if (!bt_init(&t, "raw", NULL, "num-queues=2", 1, true))
		return;
	for (unsigned round = 0; round < 3; round++) {
		bt_up(&t, base_features, 2);
		for (unsigned q = 0; q < 2; q++) {
			for (unsigned i = 0; i < 32; i++) {
				struct vh_buf b = { DATA(q) + i * 4096, 4096, false };

				submit(&t, q, VIRTIO_BLK_T_OUT, i * 8, &b, 1, false);
			}
			vh_kick(&t.d, q);
		}
		vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
		g_assert_cmpuint(vh_status(&t.d), ==, 0);
	}
	bt_up(&t, base_features, 2);
	g_assert_cmpuint(rw(&t, 1, false, 0, DATA(1), 4096), ==, VIRTIO_BLK_S_OK);
	g_free(bt_finish(&t));
}

/* ---- malformed chains: NEEDS_RESET, a config interrupt, and recovery ---- */

static void expect_needs_reset(struct bt *t, unsigned q)
{
	struct vh_buf b = { DATA(0), 512, true };

	vh_kick(&t->d, q);
	g_assert_true(vh_wait_status(&t->d, VIRTIO_STATUS_NEEDS_RESET));
	for (unsigned i = 0; i < 10000 && !vh_msi_count(&t->h, 0); i++)
		g_usleep(1000);
	g_assert_cmpuint(vh_msi_count(&t->h, 0), ==, 1);	/* config vector */
	/* The driver resets; the device serves again. */
	bt_up(t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, t->d.nr_queues);
	g_assert_cmpuint(req(t, q, VIRTIO_BLK_T_IN, 0, &b, 1, false, NULL), ==, VIRTIO_BLK_S_OK);
	g_assert_false(vh_status(&t->d) & VIRTIO_STATUS_NEEDS_RESET);
	t->h.msi[0] = 0;
}

static struct bt *bad_begin(void)
{
	struct bt *t = g_new(struct bt, 1);

	if (!bt_init(t, "raw", NULL, "num-queues=2", 1, false)) {
		g_free(t);
		return NULL;
	}
	bt_up(t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, 2);
	return t;
}

static void bad_end(struct bt *t)
{
	g_free(bt_finish(t));
	g_free(t);
}

static void set_desc(struct bt *t, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	vh_desc_set(&t->d.ring[q], i, addr, len, flags, next);
}

static void test_bad_loop(void)
{
	struct bt *t = bad_begin();

	if (!t)
		return;
	/* header -> 1 -> 2 -> 1 ... all well-ordered, just endless. */
	set_desc(t, 1, 0, HDR(1), 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(t, 1, 1, DATA(1), 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	set_desc(t, 1, 2, DATA(1), 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	vh_avail_publish(&t->d.ring[1], 0);
	expect_needs_reset(t, 1);
	bad_end(t);
}

static void test_bad_overlong(void)
{
	struct bt *t = bad_begin();

	if (!t)
		return;
	/* All QSIZE descriptors chained, the last pointing past the table. */
	set_desc(t, 0, 0, HDR(0), 16, VIRTQ_DESC_F_NEXT, 1);
	for (unsigned i = 1; i < QSIZE; i++)
		set_desc(t, 0, i, DATA(0), 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, i + 1);
	vh_avail_publish(&t->d.ring[0], 0);
	expect_needs_reset(t, 0);
	bad_end(t);
}

static void bad_data(uint64_t gpa, uint32_t len)
{
	struct bt *t = bad_begin();
	struct vh_buf b = { gpa, len, true };

	if (!t)
		return;
	submit(t, 0, VIRTIO_BLK_T_IN, 0, &b, 1, false);
	expect_needs_reset(t, 0);
	bad_end(t);
}

static void test_bad_outside_ram(void)
{
	bad_data(VH_RAM, 512);			/* just past RAM */
	bad_data(VH_RAM - 256, 512);		/* straddling its end */
	bad_data(MEM_PCI_MMIO32_BASE, 512);	/* the device's own BARs */
}

static void test_bad_wrap(void)
{
	bad_data(~0ull - 255, 512);
}

/* The header in a device-writable buffer. */
static void test_bad_header_writable(void)
{
	struct bt *t = bad_begin();
	struct vh_buf b[2] = { { HDR(0), 16, true }, { STATUS(0, 0), 1, true } };

	if (!t)
		return;
	vh_ring_add(&t->d.ring[0], b, 2, 0);
	expect_needs_reset(t, 0);
	bad_end(t);
}

/* No device-writable byte for the status. */
static void test_bad_status_readonly(void)
{
	struct bt *t = bad_begin();
	struct vh_buf b[2] = { { HDR(0), 16, false }, { STATUS(0, 0), 1, false } };

	if (!t)
		return;
	((struct virtio_blk_req_hdr *)gp(t, HDR(0), 16))->type = VIRTIO_BLK_T_FLUSH;
	vh_ring_add(&t->d.ring[0], b, 2, 0);
	expect_needs_reset(t, 0);
	bad_end(t);
}

/* A read whose data buffer is device-readable, a write whose is writable. */
static void test_bad_data_direction(void)
{
	for (unsigned w = 0; w < 2; w++) {
		struct bt *t = bad_begin();
		struct vh_buf b = { DATA(0), 512, !!w };

		if (!t)
			return;
		submit(t, 0, w ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, 0, &b, 1, false);
		/* submit() set the direction of a correct request: flip it. */
		set_desc(t, 0, 1, DATA(0), 512, VIRTQ_DESC_F_NEXT | (w ? VIRTQ_DESC_F_WRITE : 0),
			 2);
		expect_needs_reset(t, 0);
		bad_end(t);
	}
}

static void test_bad_indirect_in_indirect(void)
{
	struct bt *t = bad_begin();
	struct virtq_desc *tab;

	if (!t)
		return;
	tab = gp(t, TABLE(0), 3 * 16);
	tab[0] = (struct virtq_desc){ HDR(0), 16, VIRTQ_DESC_F_NEXT, 1 };
	tab[1] = (struct virtq_desc){ TABLE(0) + 0x100, 32, VIRTQ_DESC_F_INDIRECT, 0 };
	set_desc(t, 0, 0, TABLE(0), 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	vh_avail_publish(&t->d.ring[0], 0);
	expect_needs_reset(t, 0);
	bad_end(t);
}

static void test_bad_indirect_empty(void)
{
	struct bt *t = bad_begin();

	if (!t)
		return;
	set_desc(t, 0, 0, TABLE(0), 0, VIRTQ_DESC_F_INDIRECT, 0);
	vh_avail_publish(&t->d.ring[0], 0);
	expect_needs_reset(t, 0);
	bad_end(t);
}

static void test_bad_queue_size(void)
{
	struct bt t;
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;

	if (!bt_init(&t, "raw", NULL, "num-queues=1", 1, false))
		return;
	g_assert_cmphex(vh_dev_setup(&t.d, base_features, 0, 0), ==, s | VIRTIO_STATUS_DRIVER_OK);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 3);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_GF, 4, 1);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, s);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 100);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	g_assert_true(vh_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	g_assert_cmpuint(vh_common_read(&t.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 0);
	/* DRIVER_OK anyway: nothing is served on the queue, nothing breaks. */
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, s | VIRTIO_STATUS_DRIVER_OK);
	vh_kick(&t.d, 0);
	bt_up(&t, base_features, 1);
	g_assert_cmpuint(rw(&t, 0, false, 0, DATA(0), 512), ==, VIRTIO_BLK_S_OK);
	g_free(bt_finish(&t));
}


/*
 * Random requests from a driver that gets the layout right but not the
 * rest: random types, sectors, lengths, directions and segment contents.
 * Each completes with some status, or the device asks for a reset (then
 * the driver resets it); nothing else may happen.
 */
static void test_fuzz_requests(void)
{
	GRand *g = g_rand_new_with_seed(0xb10c);
	static const uint32_t types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
					  VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD,
					  VIRTIO_BLK_T_WRITE_ZEROES, 2, 10, 14, 0xffffffff };
	unsigned resets = 0, done = 0;
	struct bt t;

	if (!bt_init(&t, "raw", "discard=unmap", "num-queues=1", 1, false))
		return;
	bt_up(&t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, 1);
	for (unsigned i = 0; i < 400; i++) {
		struct vh_buf b[3];
		unsigned n = g_rand_int_range(g, 0, 4);
		uint64_t sector = g_rand_boolean(g) ? (uint64_t)g_rand_int_range(g, 0, DISK / 512 + 8) :
				  (uint64_t)g_rand_int(g) << 32 | g_rand_int(g);
		uint32_t type = types[g_rand_int_range(g, 0, G_N_ELEMENTS(types))];
		uint16_t head;
		uint32_t id, len;
		unsigned wait = 0;

		for (unsigned k = 0; k < n; k++) {
			b[k].gpa = DATA(0) + g_rand_int_range(g, 0, 0x80000);
			b[k].len = g_rand_boolean(g) ? 512 * g_rand_int_range(g, 0, 16) :
				   g_rand_int_range(g, 0, 0x8000);
			b[k].write = g_rand_boolean(g);
			fill(gp(&t, b[k].gpa, b[k].len), b[k].len, i);
		}
		/* Readable buffers first, as the ring requires. */
		for (unsigned k = 1; k < n; k++)
			if (!b[k].write && b[k - 1].write)
				b[k].write = true;
		head = submit(&t, 0, type, sector, b, n, g_rand_boolean(g));
		vh_kick(&t.d, 0);
		while (!vh_used_get(&t.d.ring[0], &id, &len) &&
		       !(vh_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET)) {
			g_assert_cmpuint(++wait, <, 100000);
			g_usleep(100);
		}
		if (vh_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET) {
			resets++;
			bt_up(&t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, 1);
			continue;
		}
		g_assert_cmpuint(id, ==, head);
		g_assert_cmpuint(status_of(&t, 0, head), <=, VIRTIO_BLK_S_UNSUPP);
		done++;
	}
	g_assert_cmpuint(done, >, 50);
	g_assert_cmpuint(resets, >, 10);
	g_free(bt_finish(&t));
	g_rand_free(g);
}

/*
 * Model-checked fuzzing on qcow2 and raw: reads and writes at the edges
 * of the disk and of uint64 (sector + length overflowing), lengths that
 * are not a multiple of a sector, data split over descriptors; discard
 * and write-zeroes with 0 to 60000 segments, with huge, zero-length,
 * overlapping or unknown-flag ranges; GET_ID into buffers of 1 to 29
 * bytes (status included); unknown types; and bursts of requests cut
 * short by a device reset.  Each status is the one the request deserves,
 * the used length is exact, no byte of guest RAM outside the request's
 * writable buffers changes (also after a reset returned), reads return
 * what the model holds, and the image ends consistent and equal to the
 * model.  VIREO_VBLK_FUZZ_ITERS and VIREO_VBLK_FUZZ_SEED run longer
 * campaigns.
 */
#define FZ_RAM	0x100000ull		/* the DATA(0) area the buffers live in */

struct fz {
	struct bt t;
	GRand *g;
	uint8_t *disk, *known;		/* the model; known is 0 after a discard */
	uint8_t *before;		/* guest RAM copy, before a request */
	unsigned done[4];		/* OK, IOERR, UNSUPP, resets */
};

static uint64_t fz_sector(struct fz *f)
{
	uint64_t cap = DISK / 512;

	switch (g_rand_int_range(f->g, 0, 9)) {
	case 0:
		return cap - g_rand_int_range(f->g, 0, 9);
	case 1:
		return cap + g_rand_int_range(f->g, 0, 2);
	case 2:
		return UINT64_MAX / 512 - g_rand_int_range(f->g, 0, 2);
	case 3:
		return UINT64_MAX - g_rand_int_range(f->g, 0, 2);
	case 4:
		/* times 512 wraps around to a sector inside the disk */
		return (1ull << 55) + g_rand_int_range(f->g, 0, cap);
	default:
		return g_rand_int_range(f->g, 0, cap);
	}
}

/* Cut [gpa, gpa + len) into 1-3 buffers of direction write; returns the count. */
static unsigned fz_split(struct fz *f, struct vh_buf *b, uint64_t gpa, uint32_t len, bool write)
{
	unsigned n = len ? g_rand_int_range(f->g, 1, 4) : 1, k = 0;

	while (k < n - 1 && len > 1) {
		uint32_t piece = g_rand_int_range(f->g, 1, len);

		b[k++] = (struct vh_buf){ gpa, piece, write };
		gpa += piece;
		len -= piece;
	}
	b[k++] = (struct vh_buf){ gpa, len, write };
	return k;
}

static bool fz_range_ok(uint64_t sector, uint64_t bytes)
{
	return sector <= DISK / 512 && bytes % 512 == 0 && bytes <= DISK - sector * 512;
}

/* Publish header + bufs + status, wait, and return the status and used length. */
static uint8_t fz_run(struct fz *f, uint32_t type, uint64_t sector, struct vh_buf *b, unsigned n,
		      uint32_t *used)
{
	uint16_t head = submit(&f->t, 0, type, sector, b, n, g_rand_boolean(f->g));
	uint32_t id;

	memcpy(f->before, gp(&f->t, DATA(0), FZ_RAM), FZ_RAM);
	vh_kick(&f->t.d, 0);
	g_assert_true(vh_wait_used(&f->t.d, 0, &id, used));
	g_assert_cmpuint(id, ==, head);
	g_assert_false(vh_status(&f->t.d) & VIRTIO_STATUS_NEEDS_RESET);
	return status_of(&f->t, 0, head);
}

/* Only bytes of writable buffers may have changed in guest RAM. */
static void fz_check_ram(struct fz *f, const struct vh_buf *b, unsigned n)
{
	const uint8_t *now = gp(&f->t, DATA(0), FZ_RAM);

	for (uint64_t i = 0; i < FZ_RAM; i++) {
		bool writable = false;

		if (now[i] == f->before[i])
			continue;
		for (unsigned k = 0; k < n; k++)
			writable |= b[k].write && DATA(0) + i >= b[k].gpa &&
				    DATA(0) + i < b[k].gpa + b[k].len;
		if (!writable)
			g_test_message("guest byte %#llx changed outside the request's buffers",
				       (unsigned long long)(DATA(0) + i));
		g_assert_true(writable);
	}
}

static void fz_rw(struct fz *f, bool write)
{
	uint64_t sector = fz_sector(f);
	uint32_t len = 512 * g_rand_int_range(f->g, 0, 65), used;
	uint64_t gpa = DATA(0) + 512 * g_rand_int_range(f->g, 0, 64);
	struct vh_buf b[4];
	unsigned n;
	uint8_t st;

	if (g_rand_int_range(f->g, 0, 6) == 0)
		len += g_rand_int_range(f->g, 1, 512);
	if (len && g_rand_boolean(f->g))
		sector = g_rand_int_range(f->g, 0, (DISK - len) / 512 + 1);
	n = fz_split(f, b, gpa, len, !write);
	if (write)
		fill(gp(&f->t, gpa, len), len, g_rand_int(f->g));
	st = fz_run(f, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, b, len ? n : 0, &used);
	fz_check_ram(f, b, len ? n : 0);
	g_assert_cmpuint(st, ==, fz_range_ok(sector, len) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
	if (st != VIRTIO_BLK_S_OK || !len) {
		g_assert_cmpuint(used, ==, 1);
		return;
	}
	g_assert_cmpuint(used, ==, write ? 1 : len + 1);
	if (write) {
		memcpy(f->disk + sector * 512, gp(&f->t, gpa, len), len);
		memset(f->known + sector * 512, 1, len);
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		if (f->known[sector * 512 + i])
			g_assert_cmpuint(((uint8_t *)gp(&f->t, gpa, len))[i], ==,
					 f->disk[sector * 512 + i]);
}

static void fz_discard_zeroes(struct fz *f, uint32_t type)
{
	unsigned nseg = g_rand_int_range(f->g, 0, 8), n;
	struct virtio_blk_discard_write_zeroes *seg = gp(&f->t, DATA(0) + 0xf0000, 64);
	uint32_t allowed = type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	struct vh_buf b[4];
	uint32_t used;
	uint8_t st, want;

	nseg = nseg < 5 ? 1 : nseg - 5;		/* mostly one, as max_*_seg says */
	for (unsigned k = 0; k < nseg; k++) {
		static const uint32_t big[] = { 0, 1u << 22, (1u << 22) + 1, UINT32_MAX };

		seg[k].sector = g_rand_boolean(f->g) ? fz_sector(f) :
				(uint64_t)g_rand_int_range(f->g, 0, DISK / 512);
		seg[k].num_sectors = g_rand_int_range(f->g, 0, 5) ?
				     (uint32_t)g_rand_int_range(f->g, 0, 4096) :
				     big[g_rand_int_range(f->g, 0, G_N_ELEMENTS(big))];
		seg[k].flags = g_rand_int_range(f->g, 0, 4) ? 0 :
			       g_rand_boolean(f->g) ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP :
			       g_rand_int(f->g);
	}
	/* overlapping segments: the second repeats the first, shifted */
	if (nseg > 1 && g_rand_boolean(f->g))
		seg[1].sector = seg[0].sector + seg[0].num_sectors / 2;
	if (g_rand_int_range(f->g, 0, 10) == 0) {
		/* thousands of segments (whatever the data area holds) */
		nseg = g_rand_int_range(f->g, 4, 0xf0000 / sizeof(*seg));
		n = fz_split(f, b, DATA(0), nseg * sizeof(*seg), false);
	} else {
		n = fz_split(f, b, DATA(0) + 0xf0000, nseg * sizeof(*seg), false);
	}
	st = fz_run(f, type, 0, b, nseg ? n : 0, &used);
	fz_check_ram(f, b, nseg ? n : 0);
	g_assert_cmpuint(used, ==, 1);
	if (nseg != 1 || (seg[0].flags & ~allowed))
		want = VIRTIO_BLK_S_UNSUPP;
	else if (seg[0].num_sectors > (1u << 22) ||
		 !fz_range_ok(seg[0].sector, (uint64_t)seg[0].num_sectors * 512))
		want = VIRTIO_BLK_S_IOERR;
	else
		want = VIRTIO_BLK_S_OK;
	g_assert_cmpuint(st, ==, want);
	if (st == VIRTIO_BLK_S_OK) {
		uint64_t off = seg[0].sector * 512, len = (uint64_t)seg[0].num_sectors * 512;

		if (type == VIRTIO_BLK_T_DISCARD) {
			memset(f->known + off, 0, len);
		} else {
			memset(f->disk + off, 0, len);
			memset(f->known + off, 1, len);
		}
	}
}

static void fz_get_id(struct fz *f)
{
	uint32_t len = g_rand_int_range(f->g, 1, 30), used;
	uint64_t gpa = DATA(0) + 0xe0000 + g_rand_int_range(f->g, 0, 64);
	struct vh_buf b[4];
	unsigned n = fz_split(f, b, gpa, len, true);
	uint32_t want = MIN(len - 1, VIRTIO_BLK_ID_BYTES);
	uint8_t st, *id;

	/* the status byte is the last byte of the last buffer: no separate one */
	b[n - 1].len--;
	if (!b[n - 1].len)
		n--;
	st = fz_run(f, VIRTIO_BLK_T_GET_ID, 0, b, n, &used);
	b[n] = (struct vh_buf){ gpa + len - 1, 1, true };
	fz_check_ram(f, b, n + 1);
	g_assert_cmpuint(st, ==, VIRTIO_BLK_S_OK);
	g_assert_cmpuint(used, ==, want + 1);
	id = gp(&f->t, gpa, len);
	g_assert_cmpint(memcmp(id, "fz-serial\0\0\0\0\0\0\0\0\0\0\0", want), ==, 0);
	/* nothing past the 20 bytes of serial */
	for (uint32_t i = want; i + 1 < len; i++)
		g_assert_cmpuint(id[i], ==, f->before[gpa - DATA(0) + i]);
}

/*
 * Requests in flight when the driver resets: afterwards the device writes
 * nothing into guest RAM, and what they wrote to the disk is unknown.
 */
static void fz_reset_burst(struct fz *f)
{
	unsigned n = g_rand_int_range(f->g, 1, 24);
	uint8_t *after = g_malloc(FZ_RAM);

	for (unsigned i = 0; i < n; i++) {
		uint32_t len = 512 * g_rand_int_range(f->g, 1, 64);
		uint64_t sector = g_rand_int_range(f->g, 0, (DISK - len) / 512 + 1);
		uint32_t type = g_rand_int_range(f->g, 0, 4);
		struct vh_buf b = { DATA(0) + 0x8000 * (i % 30), len, type == 0 };

		if (type >= 2) {
			struct virtio_blk_discard_write_zeroes *seg =
				gp(&f->t, DATA(0) + 0xf0000 + 16 * i, 16);

			seg->sector = sector;
			seg->num_sectors = len / 512;
			seg->flags = 0;
			b = (struct vh_buf){ DATA(0) + 0xf0000 + 16 * i, 16, false };
			type = type == 2 ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES;
		}
		submit(&f->t, 0, type, sector, &b, 1, false);
		if (type != VIRTIO_BLK_T_IN)
			memset(f->known + sector * 512, 0, len);
	}
	vh_kick(&f->t.d, 0);
	if (g_rand_boolean(f->g))
		g_usleep(g_rand_int_range(f->g, 0, 300));
	vh_common_write(&f->t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	g_assert_cmpuint(vh_status(&f->t.d), ==, 0);
	memcpy(after, gp(&f->t, DATA(0), FZ_RAM), FZ_RAM);
	g_usleep(2000);
	g_assert_cmpint(memcmp(after, gp(&f->t, DATA(0), FZ_RAM), FZ_RAM), ==, 0);
	bt_up(&f->t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, 1);
	f->done[3]++;
	g_free(after);
}

static void test_fuzz_model(gconstpointer fmt)
{
	const char *e = g_getenv("VIREO_VBLK_FUZZ_ITERS");
	unsigned iters = e ? strtoul(e, NULL, 0) : 1500;
	static const uint32_t unknown[] = { 2, 3, 10, 12, 14, 0x80000000, UINT32_MAX };
	struct fz f = { 0 };
	guint8 *disk;

	if (!bt_init(&f.t, fmt, "discard=unmap", "num-queues=1,serial=fz-serial", 1, true))
		return;
	f.g = g_rand_new_with_seed(g_getenv("VIREO_VBLK_FUZZ_SEED") ?
				   strtoul(g_getenv("VIREO_VBLK_FUZZ_SEED"), NULL, 0) : 0xf22);
	f.disk = g_malloc0(DISK);
	f.known = g_malloc(DISK);
	memset(f.known, 1, DISK);
	f.before = g_malloc(FZ_RAM);
	bt_up(&f.t, base_features | 1ull << VIRTIO_F_INDIRECT_DESC, 1);
	for (unsigned i = 0; i < iters; i++) {
		unsigned kind = g_rand_int_range(f.g, 0, 40);
		struct vh_buf b = { DATA(0), 512, true };
		uint32_t used;

		if (kind < 12) {
			fz_rw(&f, false);
		} else if (kind < 24) {
			fz_rw(&f, true);
		} else if (kind < 28) {
			fz_discard_zeroes(&f, VIRTIO_BLK_T_DISCARD);
		} else if (kind < 32) {
			fz_discard_zeroes(&f, VIRTIO_BLK_T_WRITE_ZEROES);
		} else if (kind < 35) {
			fz_get_id(&f);
		} else if (kind < 37) {
			g_assert_cmpuint(fz_run(&f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &used), ==,
					 VIRTIO_BLK_S_OK);
		} else if (kind < 39) {
			uint32_t type = unknown[g_rand_int_range(f.g, 0, G_N_ELEMENTS(unknown))];

			g_assert_cmpuint(fz_run(&f, type, fz_sector(&f), &b, 1, &used), ==,
					 VIRTIO_BLK_S_UNSUPP);
			fz_check_ram(&f, &b, 1);
		} else {
			fz_reset_burst(&f);
		}
	}
	g_test_message("%u requests, %u resets with requests in flight", iters, f.done[3]);
	g_assert_cmpuint(f.done[3], >, iters / 80);
	disk = bt_finish(&f.t);	/* qemu-img check passes */
	for (uint64_t i = 0; i < DISK; i++)
		if (f.known[i] && disk[i] != f.disk[i])
			g_assert_cmphex(disk[i], ==, f.disk[i]);
	g_free(disk);
	g_free(f.disk);
	g_free(f.known);
	g_free(f.before);
	g_rand_free(f.g);
}

static uint64_t be64_at(int fd, uint64_t off)
{
	uint64_t v = 0;

	g_assert_cmpint(pread(fd, &v, 8, off), ==, 8);
	return GUINT64_FROM_BE(v);
}

/* Guest cluster 0 of the qcow2 image maps 1 TiB past the end of the file. */
static void corrupt_cluster0(const char *img)
{
	char *cmd = g_strdup_printf("qemu-io -f qcow2 -c 'write -P 7 0 64k' %s >/dev/null", img);
	uint64_t l2, e = GUINT64_TO_BE(1ull << 63 | 1ull << 40);
	int fd;

	g_assert_cmpint(system(cmd), ==, 0);
	g_free(cmd);
	fd = open(img, O_RDWR);
	g_assert_cmpint(fd, >=, 0);
	l2 = be64_at(fd, be64_at(fd, 40)) & 0x00fffffffffffe00ull;
	g_assert_cmpint(pwrite(fd, &e, 8, l2), ==, 8);
	close(fd);
}

/*
 * A hostile image under werror=stop,rerror=stop: requests that meet its
 * bad L2 entry (and every one after, the image being marked corrupt)
 * park; a device reset drops them, and the device serves the driver
 * again (GET_ID, which touches no disk).  Nothing completes into the
 * rings after the reset, and nothing leaks (ASan).
 */
static void test_corrupt_image_parked_reset(void)
{
	struct vh_buf b = { DATA(0), 4096, true };
	uint32_t id, len, used;
	struct bt t;
	bool ok;

	bt_prepare = corrupt_cluster0;
	ok = bt_init(&t, "qcow2", "werror=stop,rerror=stop", "num-queues=1,serial=hostile", 1,
		     true);
	bt_prepare = NULL;
	if (!ok)
		return;
	for (unsigned round = 0; round < 3; round++) {
		bt_up(&t, base_features, 1);
		submit(&t, 0, VIRTIO_BLK_T_IN, 0, &b, 1, false);
		submit(&t, 0, VIRTIO_BLK_T_IN, 2048, &b, 1, false);
		b.write = false;
		submit(&t, 0, VIRTIO_BLK_T_OUT, 4096, &b, 1, false);
		b.write = true;
		vh_kick(&t.d, 0);
		/* parked, not completed: the VM would be stopped */
		for (unsigned i = 0; i < 10000 && __atomic_load_n(&t.h.m.drives->io_status,
								  __ATOMIC_ACQUIRE) != BLK_IOSTATUS_FAILED; i++)
			g_usleep(1000);
		g_assert_cmpuint(__atomic_load_n(&t.h.m.drives->io_status, __ATOMIC_ACQUIRE), ==,
				 BLK_IOSTATUS_FAILED);
		g_usleep(20000);
		g_assert_false(vh_used_get(&t.d.ring[0], &id, &len));
		vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
		g_assert_cmpuint(vh_status(&t.d), ==, 0);
		g_usleep(2000);
		g_assert_false(vh_used_get(&t.d.ring[0], &id, &len));
	}
	bt_up(&t, base_features, 1);
	g_assert_cmpuint(req(&t, 0, VIRTIO_BLK_T_GET_ID, 0, &b, 1, false, &used), ==,
			 VIRTIO_BLK_S_OK);
	g_assert_cmpuint(used, ==, 21);
	g_assert_cmpint(memcmp(gp(&t, DATA(0), 8), "hostile", 8), ==, 0);
	/* the image is marked corrupt: no bt_finish, whose qemu-img check would fail */
	vh_machine_destroy(&t.h);
	g_unlink(t.img);
	g_rmdir(t.dir);
	g_free(t.img);
	g_free(t.dir);
}

/*
 * A held load (quiesce, load, resume) into a device whose driver reset it
 * after it had run: the load starts the device as the stream says, the
 * resume starts it again, and that must leave one thread per queue, not
 * two racing on the same rings (the machine's teardown then hung).
 */
static void test_load_into_reset(void)
{
	enum { NQ = 2 };
	struct bt a, b;
	char err[512] = "";

	if (!bt_init(&a, "raw", NULL, "num-queues=2", 2, true))
		return;
	g_assert_true(bt_init(&b, "raw", NULL, "num-queues=2", 2, true));
	bt_up(&a, base_features, NQ);
	bt_up(&b, base_features, NQ);
	vh_common_write(&b.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	if (vh_migrate_dev(&a.d, &b.h, &b.d, true, NULL, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	/* a stays quiesced: its threads are gone, b has one per queue. */
	g_assert_cmpuint(vh_thread_count("virtio-blk io"), ==, NQ);
	for (unsigned q = 0; q < NQ; q++) {
		fill(gp(&b, DATA(q), 4096), 4096, q + 1);
		g_assert_cmpuint(rw(&b, q, true, q * 8, DATA(q), 4096), ==, VIRTIO_BLK_S_OK);
		memset(gp(&b, DATA(q), 4096), 0, 4096);
		g_assert_cmpuint(rw(&b, q, false, q * 8, DATA(q), 4096), ==, VIRTIO_BLK_S_OK);
		{
			guint8 want[4096];

			fill(want, sizeof(want), q + 1);
			g_assert_cmpint(memcmp(gp(&b, DATA(q), 4096), want, 4096), ==, 0);
		}
	}
	g_free(bt_finish(&b));
	g_free(bt_finish(&a));
	g_assert_cmpuint(vh_thread_count("virtio-blk io"), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-blk/config", test_config);
	g_test_add_func("/virtio-blk/options", test_options);
	g_test_add_func("/virtio-blk/requests/raw", test_requests_raw);
	g_test_add_func("/virtio-blk/requests/qcow2", test_requests_qcow2);
	g_test_add_func("/virtio-blk/multiqueue/raw", test_multiqueue_raw);
	g_test_add_func("/virtio-blk/multiqueue/qcow2", test_multiqueue_qcow2);
	g_test_add_func("/virtio-blk/multiqueue/one-thread", test_multiqueue_one_thread);
	g_test_add_func("/virtio-blk/event-idx", test_event_idx);
	g_test_add_func("/virtio-blk/io-thread/ring", test_io_thread_ring);
	g_test_add_func("/virtio-blk/io-thread/epoll", test_io_thread_epoll);
	g_test_add_func("/virtio-blk/reset-inflight", test_reset_inflight);
	g_test_add_func("/virtio-blk/poll-idle", test_poll_idle);
	g_test_add_func("/virtio-blk/poll-no-kick", test_poll_no_kick);
	g_test_add_func("/virtio-blk/multiqueue/poll", test_multiqueue_poll);
	g_test_add_func("/virtio-blk/bad/loop", test_bad_loop);
	g_test_add_func("/virtio-blk/bad/overlong", test_bad_overlong);
	g_test_add_func("/virtio-blk/bad/outside-ram", test_bad_outside_ram);
	g_test_add_func("/virtio-blk/bad/wrap", test_bad_wrap);
	g_test_add_func("/virtio-blk/bad/header-writable", test_bad_header_writable);
	g_test_add_func("/virtio-blk/bad/status-readonly", test_bad_status_readonly);
	g_test_add_func("/virtio-blk/bad/data-direction", test_bad_data_direction);
	g_test_add_func("/virtio-blk/bad/indirect-in-indirect", test_bad_indirect_in_indirect);
	g_test_add_func("/virtio-blk/bad/indirect-empty", test_bad_indirect_empty);
	g_test_add_func("/virtio-blk/bad/queue-size", test_bad_queue_size);
	g_test_add_func("/virtio-blk/fuzz", test_fuzz_requests);
	g_test_add_data_func("/virtio-blk/fuzz-model/qcow2", "qcow2", test_fuzz_model);
	g_test_add_data_func("/virtio-blk/fuzz-model/raw", "raw", test_fuzz_model);
	g_test_add_func("/virtio-blk/corrupt-image-parked-reset", test_corrupt_image_parked_reset);
	g_test_add_func("/virtio-blk/load-into-reset", test_load_into_reset);
	return g_test_run();
}
