/*
 * virtio-scsi next to virtio-blk on the same file: 4 KiB random reads at a
 * fixed queue depth on one request queue, the benchmark playing the guest
 * driver through the unit tests' virtio harness (a machine with a PCI
 * host, ioeventfd kicks, MSI-X through irqfds the benchmark sleeps on).
 * Run by scsi_bench.sh.
 *
 *   scsi_bench FILE SECONDS DEPTH [CACHE]
 *
 * CACHE is the -drive cache mode (default none: the disk is measured too;
 * writeback with a file in the page cache measures the devices alone).
 *
 * Prints one line per device and the ratio scsi/blk.
 */
#include <glib.h>
#include <poll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "block.h"
#include "scsi.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "tests/unit/virtio_harness.h"

#define QSIZE		128
#define MAXDEPTH	64
#define HDR(i)		(0x300000ull + (i) * 0x200ull)	/* request header, response at +0x100 */
#define TABLE(i)	(0x340000ull + (i) * 0x100ull)
#define DATA(i)		(0x400000ull + (i) * 0x1000ull)

struct run {
	struct vh_machine h;
	struct vh_dev d;
	bool scsi;
	unsigned q;		/* request queue index */
	uint64_t blocks;	/* 4 KiB blocks in the file */
	uint32_t seed;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *gp(struct run *r, uint64_t gpa, uint64_t len)
{
	return vh_ptr(&r->h.m.mem, gpa, len);
}

static uint64_t next_block(struct run *r)
{
	r->seed ^= r->seed << 13;
	r->seed ^= r->seed >> 17;
	r->seed ^= r->seed << 5;
	return r->seed % r->blocks;
}

/* Slot i always uses descriptor i, through its own indirect table. */
static void submit(struct run *r, unsigned i)
{
	struct vh_ring *ring = &r->d.ring[r->q];
	struct virtq_desc *t = gp(r, TABLE(i), 16 * 3);
	uint64_t blk = next_block(r);
	unsigned n;

	if (r->scsi) {
		struct virtio_scsi_cmd_req *h = gp(r, HDR(i), sizeof(*h) + 32);
		uint8_t *cdb = (uint8_t *)(h + 1);
		uint32_t lba = blk * 8;

		memset(h, 0, sizeof(*h) + 32);
		h->lun[0] = 1;
		h->id = i;
		cdb[0] = SCSI_READ_10;
		cdb[2] = lba >> 24;
		cdb[3] = lba >> 16;
		cdb[4] = lba >> 8;
		cdb[5] = lba;
		cdb[8] = 8;
		t[0] = (struct virtq_desc){ HDR(i), sizeof(*h) + 32, VIRTQ_DESC_F_NEXT, 1 };
		t[1] = (struct virtq_desc){ HDR(i) + 0x100, sizeof(struct virtio_scsi_cmd_resp) + 96,
					    VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2 };
		t[2] = (struct virtq_desc){ DATA(i), 4096, VIRTQ_DESC_F_WRITE, 0 };
	} else {
		struct virtio_blk_req_hdr *h = gp(r, HDR(i), sizeof(*h));

		h->type = VIRTIO_BLK_T_IN;
		h->ioprio = 0;
		h->sector = blk * 8;
		t[0] = (struct virtq_desc){ HDR(i), sizeof(*h), VIRTQ_DESC_F_NEXT, 1 };
		t[1] = (struct virtq_desc){ DATA(i), 4096, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2 };
		t[2] = (struct virtq_desc){ HDR(i) + 0x100, 1, VIRTQ_DESC_F_WRITE, 0 };
	}
	n = 3;
	vh_desc_set(ring, i, TABLE(i), 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	vh_avail_publish(ring, i);
}

static bool ok(struct run *r, unsigned i)
{
	if (r->scsi) {
		struct virtio_scsi_cmd_resp *p = gp(r, HDR(i) + 0x100, sizeof(*p));

		return p->response == VIRTIO_SCSI_S_OK && p->status == SCSI_STATUS_GOOD;
	}
	return *(uint8_t *)gp(r, HDR(i) + 0x100, 1) == VIRTIO_BLK_S_OK;
}

static void kick(struct run *r)
{
	/*
	 * A driver kicks only when the device asks for kicks; the fence orders
	 * our avail->idx store before the flags load, as virtio_mb() does.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(vh_used_flags(&r->d.ring[r->q]) & VIRTQ_USED_F_NO_NOTIFY))
		vh_kick(&r->d, r->q);
}

/*
 * The irqfd of the queue's MSI-X vector (q + 1, as vh_dev_setup programs
 * it): the benchmark sleeps on it like a guest in HLT, rather than
 * spinning on the used ring, so that on a busy host it does not take the
 * CPU the device's I/O thread needs.
 */
static int queue_irqfd(struct run *r)
{
	for (unsigned i = 0; i < r->h.nr_irqfd; i++)
		if (r->h.irqfd[i].data == VH_MSI_DATA + r->q + 1)
			return r->h.irqfd[i].fd;
	fprintf(stderr, "no irqfd for queue %u\n", r->q);
	exit(1);
}

static void wait_irq(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	/* The timeout covers an interrupt the device decided not to send. */
	if (poll(&p, 1, 1) > 0 && read(fd, &v, sizeof(v)) < 0)
		perror("irqfd");
}

static double measure(struct run *r, double secs, unsigned depth, bool report)
{
	struct vh_ring *ring = &r->d.ring[r->q];
	uint64_t ops = 0, errors = 0;
	double t0, end;

	int irq = queue_irqfd(r);

	for (unsigned i = 0; i < depth; i++)
		submit(r, i);
	kick(r);
	t0 = now();
	end = t0 + secs;
	for (;;) {
		uint32_t id, len;
		bool any = false;

		while (vh_used_get(ring, &id, &len)) {
			any = true;
			if (!ok(r, id))
				errors++;
			ops++;
			submit(r, id);
		}
		if (any)
			kick(r);
		else
			wait_irq(irq);
		if (!(ops & 255) && now() >= end)
			break;
	}
	/* Let the requests still in flight come back before the reset. */
	for (unsigned left = depth; left;) {
		uint32_t id, len;

		if (vh_used_get(ring, &id, &len))
			left--;
	}
	if (errors && report)
		fprintf(stderr, "%s: %llu requests failed\n", r->scsi ? "virtio-scsi" : "virtio-blk",
			(unsigned long long)errors);
	return ops / (now() - t0);
}

static double bench(const char *file, const char *cache, bool scsi, double secs,
		    unsigned depth)
{
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC;
	struct run r = { .scsi = scsi, .seed = 2463534242u };
	char err[256], *opt;
	struct stat st;
	double iops;

	if (stat(file, &st) < 0 || st.st_size < 4096) {
		fprintf(stderr, "%s: missing or smaller than 4 KiB\n", file);
		exit(1);
	}
	r.blocks = st.st_size / 4096;
	if (r.blocks > 0xffffffffull / 8)
		r.blocks = 0xffffffffull / 8;	/* what READ (10) can address */
	vh_machine_init(&r.h, 1, true);
	opt = g_strdup_printf("file=%s,format=raw,if=none,id=d0,cache=%s,aio=io_uring", file,
			      cache);
	if (drive_add(&r.h.m, opt, err, sizeof(err)) ||
	    machine_add_device(&r.h.m, scsi ? "virtio-scsi-pci,id=s0,num_queues=1" :
				"virtio-blk-pci,drive=d0,num-queues=1", err, sizeof(err)) ||
	    (scsi && machine_add_device(&r.h.m, "scsi-hd,drive=d0,bus=s0.0", err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	g_free(opt);
	if (!vh_dev_find(&r.h, scsi ? VIRTIO_ID_SCSI : VIRTIO_ID_BLOCK, 0, &r.d)) {
		fprintf(stderr, "device not found\n");
		exit(1);
	}
	vh_msix_enable(&r.d);
	vh_dev_setup(&r.d, want, scsi ? 3 : 1, QSIZE);
	r.q = scsi ? VIRTIO_SCSI_VQ_REQ : 0;
	if (scsi) {
		/* The power-on unit attention goes to the first command. */
		measure(&r, 0.1, 1, false);
	}
	iops = measure(&r, secs, depth, true);
	vh_machine_destroy(&r.h);
	return iops;
}

int main(int argc, char **argv)
{
	double secs = argc > 2 ? atof(argv[2]) : 5, blk = 0, scsi = 0;
	unsigned depth = argc > 3 ? atoi(argv[3]) : 32;
	const char *cache = argc > 4 ? argv[4] : "none";

	if (argc < 2 || depth < 1 || depth > MAXDEPTH) {
		fprintf(stderr, "usage: %s FILE [SECONDS] [DEPTH<=%d] [CACHE]\n", argv[0], MAXDEPTH);
		return 2;
	}
	/*
	 * Alternate, best of three each: neither device gets the colder cache,
	 * and a busy host's scheduling noise hits both alike.
	 */
	for (int round = 0; round < 3; round++) {
		double b = bench(argv[1], cache, false, secs, depth);
		double s = bench(argv[1], cache, true, secs, depth);

		fprintf(stderr, "round %d: virtio-blk %.0f, virtio-scsi %.0f IOPS\n", round, b, s);
		blk = MAX(blk, b);
		scsi = MAX(scsi, s);
	}
	printf("virtio-blk  4k randread qd%u cache=%s: %10.0f IOPS\n", depth, cache, blk);
	printf("virtio-scsi 4k randread qd%u cache=%s: %10.0f IOPS\n", depth, cache, scsi);
	printf("ratio scsi/blk: %.2f (target >= 0.90)\n", scsi / blk);
	return 0;
}
