/*
 * virtio-scsi against a hostile or busy driver: random request chains
 * (LUN fields, CDBs, buffer layouts) and random control requests, where
 * every request either completes with a well-formed response or the device
 * asks for a reset; and I/O on two queues from a driver thread while the
 * host hot-plugs, unplugs and changes discs underneath.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "scsi.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"

#define QSIZE		64
#define REQ(q)		(0x300000ull + (q) * 0x10000ull)
#define DATA(q)		(0x800000ull + (q) * 0x200000ull)
#define RESP_LEN	(sizeof(struct virtio_scsi_cmd_resp) + 96)

static const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_SCSI_F_HOTPLUG |
	1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;

struct ft {
	struct vh_machine h;
	struct vh_dev d;
	char *dir;
	unsigned nimg;
};

static void *gp(struct ft *t, uint64_t gpa, uint64_t len)
{
	return vh_ptr(&t->h.m.mem, gpa, len);
}

static void ft_opt(struct ft *t, bool drive, const char *fmt, ...)
{
	char err[256];
	va_list ap;
	char *o;
	int ret;

	va_start(ap, fmt);
	o = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	ret = drive ? drive_add(&t->h.m, o, err, sizeof(err)) :
		      machine_add_device(&t->h.m, o, err, sizeof(err));
	if (ret) {
		g_test_message("%s: %s", o, err);
		g_assert_not_reached();
	}
	g_free(o);
}

static char *ft_image(struct ft *t, uint64_t size)
{
	char *p = g_strdup_printf("%s/i%u.img", t->dir, t->nimg++);
	FILE *f = fopen(p, "w");

	g_assert_nonnull(f);
	g_assert_cmpint(ftruncate(fileno(f), size), ==, 0);
	fclose(f);
	return p;
}

static void ft_init(struct ft *t, unsigned nq)
{
	char *img;

	memset(t, 0, sizeof(*t));
	t->dir = g_dir_make_tmp("vireo-vscsi-fuzz-XXXXXX", NULL);
	vh_machine_init(&t->h, 2, true);
	ft_opt(t, false, "virtio-scsi-pci,id=scsi0,num_queues=%u,virtqueue_size=%u", nq, QSIZE);
	img = ft_image(t, 1 << 20);
	ft_opt(t, true, "file=%s,format=raw,if=none,id=hd,discard=unmap", img);
	g_free(img);
	img = ft_image(t, 2048 * 64);
	ft_opt(t, true, "file=%s,format=raw,if=none,id=cd,readonly=on", img);
	g_free(img);
	ft_opt(t, false, "scsi-hd,drive=hd,scsi-id=0,lun=0,id=hd0");
	ft_opt(t, false, "scsi-cd,drive=cd,scsi-id=0,lun=1,id=cd0");
	g_assert_true(vh_dev_find(&t->h, VIRTIO_ID_SCSI, 0, &t->d));
	vh_msix_enable(&t->d);
}

static void ft_up(struct ft *t, unsigned nq)
{
	g_assert_true(vh_dev_setup(&t->d, features, 2 + nq, QSIZE) & VIRTIO_STATUS_DRIVER_OK);
}

static void ft_fini(struct ft *t)
{
	vh_machine_destroy(&t->h);
	for (unsigned i = 0; i < t->nimg; i++) {
		char *p = g_strdup_printf("%s/i%u.img", t->dir, i);

		g_unlink(p);
		g_free(p);
	}
	g_rmdir(t->dir);
	g_free(t->dir);
}

/* Wait for queue q's next used entry, or for NEEDS_RESET (false). */
static bool ft_wait(struct ft *t, unsigned q, uint32_t *id, uint32_t *len)
{
	for (unsigned wait = 0; !vh_used_get(&t->d.ring[q], id, len); wait++) {
		if (vh_status(&t->d) & VIRTIO_STATUS_NEEDS_RESET)
			return false;
		g_assert_cmpuint(wait, <, 100000);
		g_usleep(100);
	}
	return true;
}

static const uint8_t opcodes[] = {
	SCSI_TEST_UNIT_READY, SCSI_REQUEST_SENSE, SCSI_READ_6, SCSI_WRITE_6, SCSI_INQUIRY,
	SCSI_MODE_SELECT_6, SCSI_MODE_SENSE_6, SCSI_START_STOP_UNIT, SCSI_PREVENT_ALLOW,
	SCSI_READ_CAPACITY_10, SCSI_READ_10, SCSI_WRITE_10, SCSI_VERIFY_10,
	SCSI_SYNCHRONIZE_CACHE_10, SCSI_WRITE_SAME_10, SCSI_UNMAP, SCSI_READ_TOC,
	SCSI_GET_CONFIGURATION, SCSI_GET_EVENT_STATUS, SCSI_READ_DISC_INFORMATION,
	SCSI_MODE_SELECT_10, SCSI_MODE_SENSE_10, SCSI_READ_16, SCSI_WRITE_16, SCSI_VERIFY_16,
	SCSI_SYNCHRONIZE_CACHE_16, SCSI_WRITE_SAME_16, SCSI_SERVICE_ACTION_IN_16,
	SCSI_REPORT_LUNS, SCSI_READ_12, SCSI_WRITE_12, SCSI_VERIFY_12, 0x7f, 0xff,
};

static void fill_random(GRand *g, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = g_rand_int(g);
}

/*
 * VIREO_VSCSI_FUZZ_ITERS multiplies the runs of both fuzz tests and
 * VIREO_VSCSI_FUZZ_SEED changes their seeds: longer campaigns (under
 * ASan) than the default, fixed and bounded, run.
 */
static unsigned fuzz_scale(void)
{
	const char *e = g_getenv("VIREO_VSCSI_FUZZ_ITERS");

	return e ? MAX(1, strtoul(e, NULL, 0)) : 1;
}

static uint32_t fuzz_seed(uint32_t seed)
{
	const char *e = g_getenv("VIREO_VSCSI_FUZZ_SEED");

	return e ? seed ^ strtoul(e, NULL, 0) : seed;
}

static void test_fuzz_requests(void)
{
	GRand *g = g_rand_new_with_seed(fuzz_seed(0x5c51));
	const unsigned iters = 1500 * fuzz_scale();
	unsigned resets = 0, done = 0, check = 0;
	const unsigned q = VIRTIO_SCSI_VQ_REQ;
	struct ft t;

	ft_init(&t, 1);
	ft_up(&t, 1);
	for (unsigned i = 0; i < iters; i++) {
		struct virtio_scsi_cmd_req *h = gp(&t, REQ(q), sizeof(*h) + 32);
		uint8_t *cdb = (uint8_t *)(h + 1);
		struct vh_buf b[6];
		unsigned n = 0;
		uint32_t out_len, in_len, id, len;
		uint16_t head;
		bool bad = g_rand_int_range(g, 0, 20) == 0;

		/* Mostly valid LUN fields, so that CDBs reach the units. */
		fill_random(g, (uint8_t *)h, sizeof(*h) + 32);
		if (g_rand_int_range(g, 0, 8)) {
			memset(h->lun, 0, 8);
			h->lun[0] = 1;
			h->lun[1] = g_rand_int_range(g, 0, 8) ? 0 : g_rand_int_range(g, 0, 256);
			h->lun[3] = g_rand_int_range(g, 0, 3);
		}
		if (g_rand_int_range(g, 0, 4)) {
			cdb[0] = opcodes[g_rand_int_range(g, 0, sizeof(opcodes))];
			if (g_rand_boolean(g))
				memset(cdb + 1, 0, 5);		/* small LBAs */
			if (g_rand_boolean(g))
				cdb[1] = 0;
		}
		out_len = g_rand_int_range(g, 0, 4) ? 0 : g_rand_int_range(g, 0, 0x4000);
		in_len = g_rand_int_range(g, 0, 3) ? g_rand_int_range(g, 0, 0x10000) : 0;
		/*
		 * Buffer boundaries mean nothing in virtio: a short header buffer
		 * followed by data is a header.  A chain is only too short
		 * without data behind its short part.
		 */
		if (bad)
			out_len = in_len = 0;
		fill_random(g, gp(&t, DATA(0), out_len ? out_len : 1), out_len ? out_len : 1);
		b[n++] = (struct vh_buf){ REQ(q), bad ? (uint32_t)g_rand_int_range(g, 0, 51) :
					  sizeof(*h) + 32, false };
		if (out_len) {
			uint32_t cut = g_rand_int_range(g, 0, out_len + 1);

			if (cut)
				b[n++] = (struct vh_buf){ DATA(0), cut, false };
			if (out_len - cut)
				b[n++] = (struct vh_buf){ DATA(0) + cut, out_len - cut, false };
		}
		b[n++] = (struct vh_buf){ REQ(q) + 0x100, bad ? (uint32_t)g_rand_int_range(g, 0, RESP_LEN) :
					  RESP_LEN, true };
		if (in_len)
			b[n++] = (struct vh_buf){ DATA(1), in_len, true };
		head = vh_ring_add(&t.d.ring[q], b, n, g_rand_boolean(g) ? REQ(q) + 0x1000 : 0);
		vh_kick(&t.d, q);
		if (!ft_wait(&t, q, &id, &len)) {
			g_assert_true(bad);
			resets++;
			ft_up(&t, 1);
			continue;
		}
		g_assert_false(bad);
		g_assert_cmpuint(id, ==, head);
		g_assert_cmpuint(len, >=, RESP_LEN);
		g_assert_cmpuint(len, <=, RESP_LEN + in_len);
		{
			struct virtio_scsi_cmd_resp *r = gp(&t, REQ(q) + 0x100, sizeof(*r));

			g_assert_cmpuint(r->response, <=, VIRTIO_SCSI_S_INCORRECT_LUN);
			if (r->response == VIRTIO_SCSI_S_OK) {
				g_assert_true(r->status == SCSI_STATUS_GOOD ||
					      r->status == SCSI_STATUS_CHECK_CONDITION);
				g_assert_cmpuint(r->sense_len, <=, 96);
				g_assert_cmpuint(r->resid, <=, in_len ? in_len : out_len);
				/* Data-in moved plus residual is the whole buffer. */
				if (in_len)
					g_assert_cmpuint(len - RESP_LEN + r->resid, ==, in_len);
				if (r->status == SCSI_STATUS_CHECK_CONDITION) {
					g_assert_cmpuint(r->sense_len, >=, 8);
					check++;
				}
			}
		}
		done++;
	}
	g_test_message("%u completed (%u CHECK CONDITION), %u resets", done, check, resets);
	g_assert_cmpuint(done, >, iters * 2 / 3);
	g_assert_cmpuint(check, >, iters / 15);
	g_assert_cmpuint(resets, >, iters / 150);
	g_rand_free(g);
	ft_fini(&t);
}

static void test_fuzz_control(void)
{
	GRand *g = g_rand_new_with_seed(fuzz_seed(0xc7));
	const unsigned iters = 600 * fuzz_scale();
	unsigned resets = 0, done = 0;
	const unsigned q = VIRTIO_SCSI_VQ_CTRL;
	struct ft t;

	ft_init(&t, 1);
	ft_up(&t, 1);
	for (unsigned i = 0; i < iters; i++) {
		uint8_t *req = gp(&t, REQ(q), 64);
		struct vh_buf b[2];
		uint32_t id, len;
		uint16_t head;

		fill_random(g, req, 64);
		*(uint32_t *)req = g_rand_int_range(g, 0, 4);
		if (g_rand_int_range(g, 0, 4)) {
			memset(req + (*(uint32_t *)req ? 4 : 8), 0, 8);
			req[*(uint32_t *)req ? 4 : 8] = 1;
			*(uint32_t *)(req + 4) = *(uint32_t *)req ? *(uint32_t *)(req + 4) :
						 (uint32_t)g_rand_int_range(g, 0, 9);
		}
		b[0] = (struct vh_buf){ REQ(q), g_rand_int_range(g, 0, 40), false };
		b[1] = (struct vh_buf){ REQ(q) + 0x100, g_rand_int_range(g, 0, 8), true };
		head = vh_ring_add(&t.d.ring[q], b, 2, 0);
		vh_kick(&t.d, q);
		if (!ft_wait(&t, q, &id, &len)) {
			resets++;
			ft_up(&t, 1);
			continue;
		}
		g_assert_cmpuint(id, ==, head);
		g_assert_cmpuint(len, <=, b[1].len);
		done++;
	}
	g_test_message("%u completed, %u resets", done, resets);
	g_assert_cmpuint(done, >, iters / 12);
	g_assert_cmpuint(resets, >, iters / 12);
	g_rand_free(g);
	ft_fini(&t);
}

/* ---- I/O while the host changes the bus ---- */

struct io_thread {
	struct ft *t;
	unsigned rq;
	bool stop;		/* atomic */
	unsigned ok, not_ready, gone;
};

static void *io_thread(void *opaque)
{
	struct io_thread *io = opaque;
	struct ft *t = io->t;
	unsigned q = VIRTIO_SCSI_VQ_REQ + io->rq;
	unsigned i = 0;

	while (!__atomic_load_n(&io->stop, __ATOMIC_ACQUIRE)) {
		struct virtio_scsi_cmd_req *h = gp(t, REQ(q), sizeof(*h) + 32);
		uint8_t *cdb = (uint8_t *)(h + 1);
		struct virtio_scsi_cmd_resp *r = gp(t, REQ(q) + 0x100, sizeof(*r));
		unsigned lun = i++ % 3;		/* disk, CD, and a LUN that comes and goes */
		uint32_t bs = lun == 1 ? 2048 : 512;
		struct vh_buf b[3] = {
			{ REQ(q), sizeof(*h) + 32, false },
			{ REQ(q) + 0x100, RESP_LEN, true },
			{ DATA(q), 8 * bs, true },
		};
		uint32_t id, len;

		memset(h, 0, sizeof(*h) + 32);
		h->lun[0] = 1;
		h->lun[3] = lun;
		cdb[0] = SCSI_READ_10;
		cdb[5] = i % 8;
		cdb[8] = 8;
		vh_ring_add(&t->d.ring[q], b, 3, 0);
		vh_kick(&t->d, q);
		g_assert_true(vh_wait_used(&t->d, q, &id, &len));
		g_assert_cmpuint(r->response, ==, VIRTIO_SCSI_S_OK);
		if (r->status == SCSI_STATUS_GOOD)
			io->ok++;
		else if (lun == 2)
			io->gone++;	/* LUN NOT SUPPORTED while unplugged, or its UA */
		else
			io->not_ready++;	/* the CD between discs, or a UA */
	}
	return NULL;
}

static void test_hotplug_under_io(void)
{
	struct io_thread io[2];
	pthread_t th[2];
	struct blk_config bc = { .format = "raw", .readonly = true };
	char err[256], *cd2, *hd2;
	struct ft t;

	ft_init(&t, 2);
	cd2 = ft_image(&t, 2048 * 32);
	hd2 = ft_image(&t, 1 << 20);
	ft_opt(&t, true, "file=%s,format=raw,if=none,id=hd2", hd2);
	ft_up(&t, 2);
	for (unsigned k = 0; k < 2; k++) {
		io[k] = (struct io_thread){ .t = &t, .rq = k };
		g_assert_cmpint(pthread_create(&th[k], NULL, io_thread, &io[k]), ==, 0);
	}
	for (unsigned round = 0; round < 40; round++) {
		ft_opt(&t, false, "scsi-hd,drive=hd2,scsi-id=0,lun=2,id=hot");
		bc.file = round & 1 ? cd2 : NULL;
		if (bc.file)
			g_assert_cmpint(virtio_scsi_change_medium(&t.h.m, "cd0", &bc, err,
								  sizeof(err)), ==, 0);
		else
			g_assert_cmpint(virtio_scsi_eject(&t.h.m, "cd0", true, err, sizeof(err)),
					==, 0);
		g_usleep(2000);
		g_assert_cmpint(virtio_scsi_device_del(&t.h.m, "hot", err, sizeof(err)), ==, 0);
	}
	for (unsigned k = 0; k < 2; k++) {
		__atomic_store_n(&io[k].stop, true, __ATOMIC_RELEASE);
		pthread_join(th[k], NULL);
		g_test_message("queue %u: %u good, %u not ready, %u on the hot LUN", k, io[k].ok,
			       io[k].not_ready, io[k].gone);
		g_assert_cmpuint(io[k].ok, >, 0);
	}
	g_assert_false(vh_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	g_free(cd2);
	g_free(hd2);
	ft_fini(&t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-scsi/fuzz/requests", test_fuzz_requests);
	g_test_add_func("/virtio-scsi/fuzz/control", test_fuzz_control);
	g_test_add_func("/virtio-scsi/hotplug-under-io", test_hotplug_under_io);
	return g_test_run();
}
