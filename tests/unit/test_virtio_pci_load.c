/*
 * virtio-pci loads with a real device behind them (virtio-blk, with its I/O
 * threads): a held load into a device that never ran starts no thread
 * before the resume, and a load into a device that serves, with requests
 * in flight and nobody holding it, neither crashes nor leaves the device
 * unable to serve.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"

#define NQ		2
#define QSIZE		64
#define DISK_BYTES	(4ull << 20)
#define REQ_HDR(q)	(0x200000ull + (q) * 0x2000)	/* 16 bytes per head, status at +0x1000 */
#define REQ_DATA(q)	(0x400000ull + (q) * 0x100000)	/* 1 MiB per queue */
#define CHUNK		0x4000

/* A reference into virtio/blk.c, so that its -device type is linked in (Makefile). */
static int (*const link_blk)(struct machine *, char *, size_t) __attribute__((used)) =
	virtio_blk_create_for_drives;

static const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_BLK_F_MQ;

struct lt {
	struct vh_machine h;
	struct vh_dev d;
	char *dir, *img;
};

/* A machine with one virtio-blk of NQ queues on a raw image of its own. */
static void lt_init(struct lt *t)
{
	char err[256], *opt;
	FILE *f;

	memset(t, 0, sizeof(*t));
	t->dir = g_dir_make_tmp("vireo-vpload-XXXXXX", NULL);
	g_assert_nonnull(t->dir);
	t->img = g_build_filename(t->dir, "disk.raw", NULL);
	f = fopen(t->img, "w");
	g_assert_nonnull(f);
	g_assert_cmpint(ftruncate(fileno(f), DISK_BYTES), ==, 0);
	fclose(f);
	vh_machine_init(&t->h, NQ, true);
	opt = g_strdup_printf("file=%s,format=raw,if=none,id=d0", t->img);
	g_assert_cmpint(drive_add(&t->h.m, opt, err, sizeof(err)), ==, 0);
	g_free(opt);
	g_assert_cmpint(machine_add_device(&t->h.m, "virtio-blk-pci,drive=d0,num-queues=2", err,
					   sizeof(err)), ==, 0);
	g_assert_true(vh_dev_find(&t->h, VIRTIO_ID_BLOCK, 0, &t->d));
	vh_msix_enable(&t->d);
}

static void lt_up(struct lt *t)
{
	g_assert_cmphex(vh_dev_setup(&t->d, features, NQ, QSIZE), ==, 0xf);
}

static void lt_finish(struct lt *t)
{
	vh_machine_destroy(&t->h);
	g_unlink(t->img);
	g_rmdir(t->dir);
	g_free(t->img);
	g_free(t->dir);
}

/* Publish a read or write of len bytes at sector on queue q; returns the head. */
static uint16_t lt_submit(struct lt *t, unsigned q, bool write, uint64_t sector, uint64_t gpa,
			  uint32_t len)
{
	struct vh_ring *r = &t->d.ring[q];
	uint16_t head = r->next_desc;
	struct virtio_blk_req_hdr *h = vh_ptr(&t->h.m.mem, REQ_HDR(q) + 16 * head, 16);
	struct vh_buf b[3] = {
		{ REQ_HDR(q) + 16 * head, 16, false },
		{ gpa, len, !write },
		{ REQ_HDR(q) + 0x1000 + head, 1, true },
	};

	h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = sector;
	*(uint8_t *)vh_ptr(&t->h.m.mem, b[2].gpa, 1) = 0xff;
	return vh_ring_add(r, b, 3, 0);
}

/* One request, waited for; returns its status byte. */
static uint8_t lt_rw(struct lt *t, unsigned q, bool write, uint64_t sector, uint64_t gpa,
		     uint32_t len)
{
	uint16_t head = lt_submit(t, q, write, sector, gpa, len);
	uint32_t id, used;

	vh_kick(&t->d, q);
	g_assert_true(vh_wait_used(&t->d, q, &id, &used));
	g_assert_cmpuint(id, ==, head);
	return *(uint8_t *)vh_ptr(&t->h.m.mem, REQ_HDR(q) + 0x1000 + head, 1);
}

/* Write a pattern through each queue and read it back. */
static void lt_check_io(struct lt *t, uint8_t seed)
{
	for (unsigned q = 0; q < NQ; q++) {
		uint8_t *p = vh_ptr(&t->h.m.mem, REQ_DATA(q), CHUNK);
		uint8_t want[CHUNK];

		for (unsigned i = 0; i < CHUNK; i++)
			want[i] = seed + q + i * 13;
		memcpy(p, want, CHUNK);
		g_assert_cmpuint(lt_rw(t, q, true, q * 64, REQ_DATA(q), CHUNK), ==,
				 VIRTIO_BLK_S_OK);
		memset(p, 0, CHUNK);
		g_assert_cmpuint(lt_rw(t, q, false, q * 64, REQ_DATA(q), CHUNK), ==,
				 VIRTIO_BLK_S_OK);
		g_assert_cmpint(memcmp(p, want, CHUNK), ==, 0);
	}
}

static void no_io_thread(void *opaque)
{
	g_assert_cmpuint(vh_thread_count("virtio-blk io"), ==, 0);
}

/*
 * A destination's device never ran: between the load and the resume (the
 * rest of the stream still loading) no I/O thread may run, and after the
 * resume there is one per queue, serving.
 */
static void test_held_into_never_started(void)
{
	struct lt a, b;
	char err[512] = "";

	lt_init(&a);
	lt_init(&b);
	lt_up(&a);
	lt_check_io(&a, 1);
	if (vh_migrate_dev_held(&a.d, &b.h, &b.d, no_io_thread, NULL, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	g_assert_cmpuint(vh_thread_count("virtio-blk io"), ==, NQ);
	lt_check_io(&b, 2);
	lt_finish(&b);
	lt_finish(&a);
	g_assert_cmpuint(vh_thread_count("virtio-blk io"), ==, 0);
}

/*
 * A load with nobody quiescing the device first, while its I/O threads
 * serve a full ring of requests: the transport stops them before it
 * rewrites the rings, and the device serves the stream's rings after.
 */
static void test_unheld_into_serving(void)
{
	struct lt a, b;
	char err[512] = "";

	lt_init(&a);
	lt_init(&b);
	lt_up(&a);
	lt_up(&b);
	lt_check_io(&a, 3);
	for (unsigned round = 0; round < 8; round++) {
		long old[2 * NQ], now[NQ];
		unsigned nr_old;

		/* b's own driver keeps both queues busy until the load. */
		for (unsigned q = 0; q < NQ; q++) {
			for (unsigned i = 0; i < QSIZE / 3; i++)
				lt_submit(&b, q, i & 1, i * 32, REQ_DATA(q) + i * CHUNK, CHUNK);
			vh_kick(&b.d, q);
		}
		nr_old = vh_thread_ids("virtio-blk io", old, G_N_ELEMENTS(old));
		if (vh_migrate_dev(&a.d, &b.h, &b.d, false, NULL, err, sizeof(err))) {
			g_test_message("%s", err);
			g_assert_not_reached();
		}
		/*
		 * The threads that walked b's old rings are gone (the load
		 * stopped them before it rewrote the rings); new ones serve.
		 */
		g_assert_cmpuint(vh_thread_ids("virtio-blk io", now, NQ), ==, NQ);
		for (unsigned i = 0; i < NQ; i++)
			for (unsigned k = 0; k < MIN(nr_old, G_N_ELEMENTS(old)); k++)
				g_assert_cmpint(now[i], !=, old[k]);
		g_assert_false(vh_status(&b.d) & VIRTIO_STATUS_NEEDS_RESET);
		/*
		 * The harness copied a's RAM while b's old threads still wrote
		 * used entries into it (a real destination's RAM is the
		 * loader's alone): copy it again now that b serves a's rings,
		 * idle, so the driver's view and RAM agree.
		 */
		memcpy(vh_ptr(&b.h.m.mem, 0, VH_RAM), vh_ptr(&a.h.m.mem, 0, VH_RAM), VH_RAM);
		lt_check_io(&b, 4 + round);
		/* Next round: b's driver view goes back to b's own rings. */
		lt_finish(&b);
		lt_init(&b);
		lt_up(&b);
	}
	lt_finish(&b);
	lt_finish(&a);
	g_assert_cmpuint(vh_thread_count("virtio-blk io"), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-pci-load/blk/held-into-never-started",
			test_held_into_never_started);
	g_test_add_func("/virtio-pci-load/blk/unheld-into-serving", test_unheld_into_serving);
	return g_test_run();
}
