/*
 * virtio-blk next to fio on the host, on the same file.
 *
 * The vireo side is the unit-test harness (tests/unit/virtio_harness.c): a
 * struct machine with guest RAM, the PCI host and a fake accelerator that
 * offers ioeventfd and irqfd, a virtio-blk-pci on -drive
 * cache=none,aio=io_uring, and one driver thread per queue that plays the
 * guest: it keeps QD requests in flight (fixed descriptor triples, one per
 * slot), publishes and kicks the way Linux does with EVENT_IDX (kick only
 * when avail_event is crossed, sleep on the queue's irqfd only after
 * re-arming used_event), and counts completions for a fixed time.  The
 * peer is fio --ioengine=io_uring --direct=1 --iodepth=QD with numjobs equal
 * to the queue count and the same pattern, on the same file, run next to
 * each vireo run (with -r N rounds, alternating which goes first) so that
 * both see the same machine load; rows show medians and the median
 * (min-max) of the per-round ratios.  The benchmark prints ratios, never
 * pass/fail: the host is shared and noisy.  docs/benchmarks.md has the
 * figures and the profile.
 *
 * PROPS are added to the -device virtio-blk-pci line (poll-max-ns=32768).
 * Build (not part of `make check`):
 *     make -f Makefile -f tests/bench/bench.mk bench
 *   or, once the Makefile includes tests/bench/bench.mk, `make bench`.
 * Run:
 *     build/tests/bench/virtio_blk_bench [-t SECONDS] [-r ROUNDS] [-f FILE]
 *         [-s MIB] [-q 1,4] [-o WORKLOAD] [-d PROPS] [--qcow2] [--no-fio] [-v]
 * FILE (default build/bench/vblk-bench.raw, 1024 MiB) is created and
 * filled with data on first use (fully written, so reads hit the disk, not
 * unwritten extents); it must not be on tmpfs, which has no O_DIRECT.  A
 * block device is used as it is: zram, or a loop device over a file on
 * /dev/shm, is a disk that never throttles, so the rows show the VMM's own
 * overhead (docs/benchmarks.md has the recipes).
 * --qcow2 also converts it to FILE.qcow2 (qemu-img convert, every cluster
 * allocated) and adds rows for vireo on the qcow2 image next to fio on the
 * raw file: informative, the formats differ.
 *
 * Columns: IOPS and MB/s (10^6 bytes/s) for each side, the ratio
 * vireo/fio of the IOPS, and the CPU time per I/O of each side: for vireo
 * the device's I/O threads and the process's io_uring workers (the driver
 * threads that play the guest are not counted), for fio its usr+sys time.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "../unit/virtio_harness.h"

#define QD		32			/* requests in flight per queue */
#define QSIZE		128			/* ring entries: 3 descriptors per slot */
#define MAX_Q		4
#define MAX_BS		(1u << 20)
#define MAX_ROUNDS	15
#define RAM		(256ull << 20)
#define HDR(q)		(0x200000ull + (q) * 0x1000)	/* 16 bytes per slot */
#define STATUS(q, s)	(HDR(q) + 0x800 + (s))
#define DATA(q, s)	(0x1000000ull + ((q) * QD + (s)) * (uint64_t)MAX_BS)

struct workload {
	const char *name;
	const char *fio_rw;
	bool write, random;
	uint32_t bs;
};

static const struct workload workloads[] = {
	{ "4k randread", "randread", false, true, 4096 },
	{ "4k randwrite", "randwrite", true, true, 4096 },
	{ "1M read", "read", false, false, MAX_BS },
	{ "1M write", "write", true, false, MAX_BS },
};

struct result {
	double iops, mbps;
	double cpu_us_per_io;		/* < 0: unknown */
	bool ok;
};

/* One queue as the guest driver sees it; owned by its driver thread. */
struct vb_queue {
	struct vh_dev *d;
	const struct workload *wl;
	unsigned q;
	struct vh_ring *r;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t *used_event, *avail_event;
	struct virtio_blk_req_hdr *hdr[QD];
	uint8_t *status[QD];
	int kick_fd, irq_fd;
	uint64_t region_off, region_len, seq, rng;
	uint64_t deadline_ns;
	uint64_t done;			/* completions inside the window */
	uint64_t end_ns;
	unsigned inflight;
	bool failed;
	pthread_t thread;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t vb_rand(struct vb_queue *v)
{
	/* xorshift64: enough for uniform block offsets. */
	v->rng ^= v->rng << 13;
	v->rng ^= v->rng >> 7;
	v->rng ^= v->rng << 17;
	return v->rng;
}

static uint64_t vb_next_off(struct vb_queue *v)
{
	uint64_t off;

	if (v->wl->random)
		return v->region_off + vb_rand(v) % (v->region_len / v->wl->bs) * v->wl->bs;
	off = v->region_off + v->seq;
	v->seq += v->wl->bs;
	if (v->seq + v->wl->bs > v->region_len)
		v->seq = 0;
	return off;
}

/* Refill slot s with the next request and put it in the avail ring. */
static void vb_queue_slot(struct vb_queue *v, unsigned s)
{
	struct vh_ring *r = v->r;

	v->hdr[s]->sector = vb_next_off(v) / 512;
	*v->status[s] = 0xff;
	v->avail->ring[r->avail_idx % r->size] = 3 * s;
	r->avail_idx++;
	v->inflight++;
}

/* Publish avail->idx and kick if the device asked for it (2.7.10). */
static void vb_publish(struct vb_queue *v, uint16_t old)
{
	uint16_t new = v->r->avail_idx, ev;

	__atomic_store_n(&v->avail->idx, new, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ev = __atomic_load_n(v->avail_event, __ATOMIC_RELAXED);
	if ((uint16_t)(new - ev - 1) < (uint16_t)(new - old))
		eventfd_write(v->kick_fd, 1);
}

/* Take the used entries there are; resubmit their slots while refill. */
static unsigned vb_harvest(struct vb_queue *v, bool refill, bool count)
{
	struct vh_ring *r = v->r;
	uint16_t old = r->avail_idx, idx;
	unsigned n = 0;

	while ((idx = __atomic_load_n(&v->used->idx, __ATOMIC_ACQUIRE)) != r->used_seen) {
		while (r->used_seen != idx) {
			uint32_t id = v->used->ring[r->used_seen % r->size].id;
			unsigned s = id / 3;

			r->used_seen++;
			if (id % 3 || s >= QD || *v->status[s] != VIRTIO_BLK_S_OK) {
				v->failed = true;
				continue;
			}
			v->inflight--;
			if (count)
				v->done++;
			n++;
			if (refill)
				vb_queue_slot(v, s);
		}
	}
	if (refill && r->avail_idx != old)
		vb_publish(v, old);
	return n;
}

/* Sleep until the device signals the queue's irqfd (or 100 ms pass). */
static void vb_wait_irq(struct vb_queue *v)
{
	struct pollfd p = { .fd = v->irq_fd, .events = POLLIN };
	uint64_t cnt;

	/* Ask for an interrupt at the next used entry, then look once more:
	 * a completion that raced with the store would get no interrupt. */
	__atomic_store_n(v->used_event, v->r->used_seen, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&v->used->idx, __ATOMIC_ACQUIRE) != v->r->used_seen)
		return;
	if (poll(&p, 1, 100) == 1 && read(v->irq_fd, &cnt, sizeof(cnt)) < 0)
		v->failed = true;
}

static void *vb_driver(void *opaque)
{
	struct vb_queue *v = opaque;
	uint64_t drain_end;

	for (unsigned s = 0; s < QD; s++)
		vb_queue_slot(v, s);
	vb_publish(v, 0);
	while (!v->failed) {
		if (!vb_harvest(v, true, true))
			vb_wait_irq(v);
		if (now_ns() >= v->deadline_ns)
			break;
	}
	v->end_ns = now_ns();
	/* Let the requests still in flight finish before the device stops. */
	drain_end = v->end_ns + 10000000000ull;
	while (v->inflight && !v->failed && now_ns() < drain_end) {
		if (!vb_harvest(v, false, false))
			vb_wait_irq(v);
	}
	if (v->inflight)
		v->failed = true;
	return NULL;
}

static int vb_find_fd_ioev(struct vh_machine *h, uint64_t addr)
{
	for (unsigned i = 0; i < h->nr_ioev; i++)
		if (h->ioev[i].addr == addr)
			return h->ioev[i].fd;
	return -1;
}

static int vb_find_fd_irq(struct vh_machine *h, uint32_t data)
{
	for (unsigned i = 0; i < h->nr_irqfd; i++)
		if (h->irqfd[i].fd >= 0 && h->irqfd[i].data == data)
			return h->irqfd[i].fd;
	return -1;
}

static void vb_queue_init(struct vb_queue *v, struct vh_dev *d, unsigned q, unsigned nq,
			  const struct workload *wl, uint64_t disk)
{
	const struct guest_mem *mem = &d->h->m.mem;
	struct vh_ring *r = &d->ring[q];

	memset(v, 0, sizeof(*v));
	v->d = d;
	v->wl = wl;
	v->q = q;
	v->r = r;
	v->avail = vh_ptr(mem, r->avail, VIRTQ_AVAIL_BYTES(r->size));
	v->used = vh_ptr(mem, r->used, VIRTQ_USED_BYTES(r->size));
	v->used_event = &v->avail->ring[r->size];
	v->avail_event = (uint16_t *)&v->used->ring[r->size];
	/* Random: the whole disk from every queue; sequential: a slice each,
	 * as fio's offset_increment gives each job. */
	v->region_off = wl->random ? 0 : disk / nq * q;
	v->region_len = wl->random ? disk : disk / nq;
	v->rng = 0x9e3779b97f4a7c15ull * (q + 1) ^ now_ns();
	for (unsigned s = 0; s < QD; s++) {
		uint16_t h = 3 * s;

		v->hdr[s] = vh_ptr(mem, HDR(q) + 16 * s, 16);
		v->hdr[s]->type = wl->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
		v->hdr[s]->ioprio = 0;
		v->status[s] = vh_ptr(mem, STATUS(q, s), 1);
		vh_desc_set(r, h, HDR(q) + 16 * s, 16, VIRTQ_DESC_F_NEXT, h + 1);
		vh_desc_set(r, h + 1, DATA(q, s), wl->bs,
			    VIRTQ_DESC_F_NEXT | (wl->write ? 0 : VIRTQ_DESC_F_WRITE), h + 2);
		vh_desc_set(r, h + 2, STATUS(q, s), 1, VIRTQ_DESC_F_WRITE, 0);
	}
	v->kick_fd = vb_find_fd_ioev(d->h, d->notify + (uint64_t)q * d->notify_mult);
	v->irq_fd = vb_find_fd_irq(d->h, VH_MSI_DATA + q + 1);
}

/* CPU ticks of this process's tasks that do the device's work. */
static uint64_t vb_device_ticks(void)
{
	GDir *dir = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;
	uint64_t ticks = 0;

	if (!dir)
		return 0;
	while ((tid = g_dir_read_name(dir))) {
		char *path = g_strdup_printf("/proc/self/task/%s/stat", tid), *stat = NULL;
		unsigned long ut, st;
		char *p;

		if (g_file_get_contents(path, &stat, NULL, NULL) &&
		    (g_strstr_len(stat, -1, "(virtio-blk io)") || g_strstr_len(stat, -1, "(iou-") ||
		     g_strstr_len(stat, -1, "(blk worker)")) &&
		    (p = strrchr(stat, ')')) &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			   &ut, &st) == 2)
			ticks += ut + st;
		g_free(stat);
		g_free(path);
	}
	g_dir_close(dir);
	return ticks;
}

static struct result vireo_run(const char *img, const char *fmt, const char *props,
			       const struct workload *wl, unsigned nq, unsigned secs)
{
	const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX |
				  1ull << VIRTIO_BLK_F_MQ | 1ull << VIRTIO_BLK_F_FLUSH |
				  1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_SEG_MAX |
				  1ull << VIRTIO_BLK_F_SIZE_MAX;
	struct result res = { .cpu_us_per_io = -1 };
	struct vh_machine *h = g_new0(struct vh_machine, 1);
	struct vh_dev *d = g_new0(struct vh_dev, 1);
	struct vb_queue v[MAX_Q];
	char err[256], *opt;
	uint64_t t0, t_end = 0, done = 0, ticks;
	bool failed = false;
	uint8_t st;

	vh_machine_init(h, nq, true);
	/* The harness's 64 MiB do not hold 4 x 32 one-MiB buffers. */
	guest_mem_destroy(&h->m.mem);
	h->m.cfg.ram_size = RAM;
	if (guest_mem_init(&h->m.mem, RAM, NULL, false, err, sizeof(err)) < 0) {
		fprintf(stderr, "guest RAM: %s\n", err);
		exit(1);
	}
	opt = g_strdup_printf("file=%s,format=%s,if=none,id=d0,cache=none,aio=io_uring", img, fmt);
	if (drive_add(&h->m, opt, err, sizeof(err)) < 0) {
		fprintf(stderr, "-drive %s: %s\n", opt, err);
		exit(1);
	}
	g_free(opt);
	opt = g_strdup_printf("virtio-blk-pci,drive=d0,num-queues=%u%s%s", nq, props ? "," : "",
			      props ? props : "");
	if (machine_add_device(&h->m, opt, err, sizeof(err)) < 0) {
		fprintf(stderr, "-device %s: %s\n", opt, err);
		exit(1);
	}
	g_free(opt);
	g_assert_true(vh_dev_find(h, VIRTIO_ID_BLOCK, 0, d));
	vh_msix_enable(d);
	st = vh_dev_setup(d, features, nq, QSIZE);
	g_assert_cmphex(st, ==, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	g_assert_true(d->features & 1ull << VIRTIO_F_EVENT_IDX);

	/* Data that no page repeats, as fio's: a compressing device (zram)
	 * stores a page of one repeated word without compressing it. */
	for (unsigned q = 0; q < MAX_Q; q++) {
		uint64_t *w = vh_ptr(&h->m.mem, DATA(q, 0), (uint64_t)QD * MAX_BS);

		for (uint64_t i = 0; i < (uint64_t)QD * MAX_BS / 8; i++)
			w[i] = (i + 1 + ((uint64_t)q << 40)) * 0x9e3779b97f4a7c15ull;
	}
	for (unsigned q = 0; q < nq; q++) {
		vb_queue_init(&v[q], d, q, nq, wl, vh_cfg_read(d, 0, 8) * 512);
		g_assert_cmpint(v[q].kick_fd, >=, 0);
		g_assert_cmpint(v[q].irq_fd, >=, 0);
	}
	ticks = vb_device_ticks();
	t0 = now_ns();
	for (unsigned q = 0; q < nq; q++) {
		v[q].deadline_ns = t0 + secs * 1000000000ull;
		g_assert_cmpint(pthread_create(&v[q].thread, NULL, vb_driver, &v[q]), ==, 0);
	}
	for (unsigned q = 0; q < nq; q++) {
		pthread_join(v[q].thread, NULL);
		done += v[q].done;
		failed |= v[q].failed;
		t_end = MAX(t_end, v[q].end_ns);
	}
	ticks = vb_device_ticks() - ticks;
	vh_machine_destroy(h);
	g_free(d);
	g_free(h);
	if (failed || !done) {
		fprintf(stderr, "vireo %s, %u queue(s): a request failed or the run hung\n",
			wl->name, nq);
		return res;
	}
	res.ok = true;
	res.iops = done / ((t_end - t0) / 1e9);
	res.mbps = res.iops * wl->bs / 1e6;
	res.cpu_us_per_io = ticks * 1e6 / sysconf(_SC_CLK_TCK) / done;
	return res;
}

/* jobs[0].<dir>.iops and .bw_bytes and the job's CPU from fio's JSON. */
static struct result fio_parse(const char *out, const struct workload *wl, unsigned nq)
{
	struct result res = { .cpu_us_per_io = -1 };
	const char *start = strchr(out, '{');
	JsonParser *p = json_parser_new();
	JsonObject *job, *dir;
	JsonArray *jobs;

	if (!start || !json_parser_load_from_data(p, start, -1, NULL))
		goto out;
	jobs = json_object_get_array_member(json_node_get_object(json_parser_get_root(p)), "jobs");
	if (!jobs || !json_array_get_length(jobs))
		goto out;
	job = json_array_get_object_element(jobs, 0);
	dir = json_object_get_object_member(job, wl->write ? "write" : "read");
	res.iops = json_object_get_double_member(dir, "iops");
	res.mbps = json_object_get_int_member(dir, "bw_bytes") / 1e6;
	if (res.iops > 0) {
		/* usr_cpu/sys_cpu: percent of one job's run time, averaged
		 * over the group's nq jobs. */
		double cpu = json_object_get_double_member(job, "usr_cpu") +
			     json_object_get_double_member(job, "sys_cpu");

		res.cpu_us_per_io = cpu / 100 * nq * 1e6 / res.iops;
		res.ok = true;
	}
out:
	g_object_unref(p);
	return res;
}

static char **fio_argv(const char *file, uint64_t disk, const struct workload *wl, unsigned nq,
		       unsigned secs)
{
	GPtrArray *a = g_ptr_array_new();

	g_ptr_array_add(a, g_strdup("fio"));
	g_ptr_array_add(a, g_strdup("--name=vblk"));
	g_ptr_array_add(a, g_strdup_printf("--filename=%s", file));
	g_ptr_array_add(a, g_strdup("--ioengine=io_uring"));
	g_ptr_array_add(a, g_strdup("--direct=1"));
	g_ptr_array_add(a, g_strdup_printf("--iodepth=%u", QD));
	g_ptr_array_add(a, g_strdup_printf("--numjobs=%u", nq));
	g_ptr_array_add(a, g_strdup_printf("--rw=%s", wl->fio_rw));
	g_ptr_array_add(a, g_strdup_printf("--bs=%u", wl->bs));
	g_ptr_array_add(a, g_strdup("--time_based"));
	g_ptr_array_add(a, g_strdup_printf("--runtime=%u", secs));
	g_ptr_array_add(a, g_strdup("--group_reporting"));
	g_ptr_array_add(a, g_strdup("--output-format=json"));
	/* fio fills its buffers with random bytes and by default rewrites a
	 * few of them before each write, which zram then stores compressed
	 * at more than twice the cost; the vireo side writes the same
	 * incompressible buffers every time, and so does fio with this. */
	g_ptr_array_add(a, g_strdup("--scramble_buffers=0"));
	if (wl->random) {
		/* Uniform over the whole file, as the vireo driver picks. */
		g_ptr_array_add(a, g_strdup("--norandommap"));
		g_ptr_array_add(a, g_strdup("--randrepeat=0"));
	} else {
		g_ptr_array_add(a, g_strdup_printf("--size=%" G_GUINT64_FORMAT, disk / nq));
		g_ptr_array_add(a, g_strdup_printf("--offset_increment=%" G_GUINT64_FORMAT,
						   disk / nq));
	}
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

static struct result fio_run(const char *file, uint64_t disk, const struct workload *wl,
			     unsigned nq, unsigned secs, bool verbose)
{
	char **argv = fio_argv(file, disk, wl, nq, secs), *out = NULL, *errout = NULL;
	struct result res = { .cpu_us_per_io = -1 };
	GError *e = NULL;
	int status = -1;

	if (verbose) {
		char *line = g_strjoinv(" ", argv);

		printf("# %s\n", line);
		g_free(line);
	}
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &errout,
			  &status, &e) || !g_spawn_check_wait_status(status, NULL)) {
		fprintf(stderr, "fio %s: %s%s\n", wl->name, e ? e->message : "failed: ",
			errout ? errout : "");
	} else {
		res = fio_parse(out, wl, nq);
	}
	g_clear_error(&e);
	g_free(out);
	g_free(errout);
	g_strfreev(argv);
	return res;
}

/* The file, written end to end once (not sparse, no unwritten extents). */
static int prepare_raw(const char *file, uint64_t size)
{
	struct statfs sfs;
	struct stat sb;
	char *dir = g_path_get_dirname(file);
	void *buf;
	int fd, ret = 0;

	/* A block device (a loop device on tmpfs, say) is used as it is. */
	if (stat(file, &sb) == 0 && S_ISBLK(sb.st_mode)) {
		g_free(dir);
		return 0;
	}
	g_mkdir_with_parents(dir, 0755);
	if (statfs(dir, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC)) {
		fprintf(stderr, "%s: on tmpfs/ramfs, which has no O_DIRECT; use -f on a disk\n",
			dir);
		g_free(dir);
		return -EINVAL;
	}
	g_free(dir);
	if (stat(file, &sb) == 0 && (uint64_t)sb.st_size == size)
		return 0;
	printf("# writing %" G_GUINT64_FORMAT " MiB to %s\n", size >> 20, file);
	fd = open(file, O_CREAT | O_TRUNC | O_WRONLY | O_DIRECT, 0644);
	if (fd < 0 || posix_memalign(&buf, 4096, MAX_BS)) {
		fprintf(stderr, "%s: %s\n", file, strerror(errno));
		return -errno;
	}
	for (uint64_t off = 0; off < size && !ret; off += MAX_BS) {
		for (size_t i = 0; i < MAX_BS / 8; i++)
			((uint64_t *)buf)[i] = (off + 8 * i) * 0x9e3779b97f4a7c15ull;
		if (pwrite(fd, buf, MAX_BS, off) != MAX_BS)
			ret = -EIO;
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	free(buf);
	close(fd);
	if (ret)
		fprintf(stderr, "%s: cannot fill: %s\n", file, strerror(-ret));
	return ret;
}

/* qcow2 copy of the raw file, every cluster allocated. */
static int prepare_qcow2(const char *raw, const char *qcow2)
{
	char *argv[] = { "qemu-img", "convert", "-f", "raw", "-O", "qcow2", (char *)raw,
			 (char *)qcow2, NULL };
	struct stat a, b;
	int status = -1;

	if (stat(qcow2, &b) == 0 && stat(raw, &a) == 0 && b.st_mtime >= a.st_mtime)
		return 0;
	printf("# qemu-img convert -f raw -O qcow2 %s %s\n", raw, qcow2);
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
			  &status, NULL) || !g_spawn_check_wait_status(status, NULL)) {
		fprintf(stderr, "qemu-img convert failed\n");
		return -EIO;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *x, unsigned n)
{
	qsort(x, n, sizeof(*x), cmp_double);
	return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

/* Medians over the rounds that succeeded; not ok if any failed. */
static struct result summarize(const struct result *r, unsigned n)
{
	struct result s = { .ok = n > 0, .cpu_us_per_io = -1 };
	double iops[MAX_ROUNDS], mbps[MAX_ROUNDS], cpu[MAX_ROUNDS];
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!r[i].ok) {
			s.ok = false;
			return s;
		}
		iops[i] = r[i].iops;
		mbps[i] = r[i].mbps;
		if (r[i].cpu_us_per_io >= 0)
			cpu[k++] = r[i].cpu_us_per_io;
	}
	if (n) {
		s.iops = median(iops, n);
		s.mbps = median(mbps, n);
	}
	if (k)
		s.cpu_us_per_io = median(cpu, k);
	return s;
}

/* One table row: medians of each side, and the median (min-max) of the
 * per-round ratios, each taken against the fio run next to it. */
static void print_row(const char *fmt, const struct workload *wl, unsigned nq,
		      const struct result *vr, const struct result *fr, unsigned rounds)
{
	struct result v = summarize(vr, rounds), f = summarize(fr, rounds);
	char ratio[32] = "-", vc[16] = "-", fc[16] = "-";
	double rt[MAX_ROUNDS], mid;

	if (v.ok && f.ok) {
		for (unsigned i = 0; i < rounds; i++)
			rt[i] = vr[i].iops / fr[i].iops;
		/* median() sorts: min and max only after it. */
		mid = median(rt, rounds);
		if (rounds == 1)
			snprintf(ratio, sizeof(ratio), "%.2f", mid);
		else
			snprintf(ratio, sizeof(ratio), "%.2f (%.2f-%.2f)", mid, rt[0],
				 rt[rounds - 1]);
	}
	if (v.ok && v.cpu_us_per_io >= 0)
		snprintf(vc, sizeof(vc), "%.1f", v.cpu_us_per_io);
	if (f.ok && f.cpu_us_per_io >= 0)
		snprintf(fc, sizeof(fc), "%.1f", f.cpu_us_per_io);
	printf("%-6s %-13s %2u | %9.0f %8.1f | %9.0f %8.1f | %-17s | %6s %6s\n", fmt, wl->name,
	       nq, v.ok ? v.iops : 0, v.ok ? v.mbps : 0, f.ok ? f.iops : 0, f.ok ? f.mbps : 0,
	       ratio, vc, fc);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	gint secs = 10, size_mib = 1024, rounds = 1;
	gchar *file = NULL, *queues = NULL, *only = NULL, *props = NULL;
	gboolean qcow2 = FALSE, verbose = FALSE, no_fio = FALSE;
	GOptionEntry entries[] = {
		{ "time", 't', 0, G_OPTION_ARG_INT, &secs, "seconds per run (10)", "S" },
		{ "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds,
		  "runs of each side, alternating which goes first (1)", "N" },
		{ "file", 'f', 0, G_OPTION_ARG_FILENAME, &file,
		  "raw file to use (build/bench/vblk-bench.raw)", "FILE" },
		{ "size", 's', 0, G_OPTION_ARG_INT, &size_mib, "file size in MiB (1024)", "MIB" },
		{ "queues", 'q', 0, G_OPTION_ARG_STRING, &queues, "queue counts (1,4)", "N,N" },
		{ "only", 'o', 0, G_OPTION_ARG_STRING, &only,
		  "workloads whose name contains this", "TEXT" },
		{ "device", 'd', 0, G_OPTION_ARG_STRING, &props,
		  "more virtio-blk-pci properties (poll-max-ns=0)", "PROPS" },
		{ "qcow2", 0, 0, G_OPTION_ARG_NONE, &qcow2,
		  "also vireo on a qcow2 copy (vs fio on the raw file)", NULL },
		{ "no-fio", 0, 0, G_OPTION_ARG_NONE, &no_fio,
		  "vireo only (to run under perf or strace)", NULL },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "print each fio command", NULL },
		{ NULL }
	};
	GOptionContext *ctx = g_option_context_new("- virtio-blk vs fio io_uring on one file");
	GError *e = NULL;
	char **nqs, *q2 = NULL;
	uint64_t disk;

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &e) || secs <= 0 || size_mib < 64 ||
	    rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "%s\n", e ? e->message :
			"need -t > 0, -s >= 64 and -r from 1 to " G_STRINGIFY(MAX_ROUNDS));
		return 2;
	}
	g_option_context_free(ctx);
	if (!file)
		file = g_strdup("build/bench/vblk-bench.raw");
	disk = (uint64_t)size_mib << 20;
	if (!no_fio && !g_find_program_in_path("fio")) {
		fprintf(stderr, "fio is not installed (apt-get install fio)\n");
		return 2;
	}
	if (prepare_raw(file, disk) < 0)
		return 1;
	if (qcow2) {
		q2 = g_strdup_printf("%s.qcow2", file);
		if (prepare_qcow2(file, q2) < 0)
			return 1;
	}
	nqs = g_strsplit(queues ? queues : "1,4", ",", -1);
	printf("# file %s (%d MiB), cache=none aio=io_uring, QD %d per queue, %d s per run, "
	       "%d round(s)%s%s\n", file, size_mib, QD, secs, rounds, props ? ", -device ...," : "",
	       props ? props : "");
	printf("%-6s %-13s %2s | %9s %8s | %9s %8s | %-17s | %6s %6s\n", "format", "workload", "q",
	       "vireo IOPS", "MB/s", "fio IOPS", "MB/s", "ratio", "vCPUus", "fCPUus");
	for (char **n = nqs; *n; n++) {
		unsigned nq = atoi(*n);

		if (nq < 1 || nq > MAX_Q) {
			fprintf(stderr, "queue count %s: 1 to %d\n", *n, MAX_Q);
			return 2;
		}
		for (unsigned i = 0; i < G_N_ELEMENTS(workloads); i++) {
			const struct workload *wl = &workloads[i];
			struct result v[MAX_ROUNDS], f[MAX_ROUNDS] = { 0 }, c[MAX_ROUNDS];

			if (only && !strstr(wl->name, only))
				continue;
			/* Alternate the order so that neither side always runs
			 * right after the other's writes or cache effects. */
			for (int r = 0; r < rounds; r++) {
				if (r % 2 && !no_fio)
					f[r] = fio_run(file, disk, wl, nq, secs, verbose && !r);
				v[r] = vireo_run(file, "raw", props, wl, nq, secs);
				if (qcow2)
					c[r] = vireo_run(q2, "qcow2", props, wl, nq, secs);
				if (!(r % 2) && !no_fio)
					f[r] = fio_run(file, disk, wl, nq, secs, verbose && !r);
			}
			print_row("raw", wl, nq, v, f, rounds);
			if (qcow2)
				print_row("qcow2", wl, nq, c, f, rounds);
		}
	}
	g_strfreev(nqs);
	g_free(q2);
	g_free(file);
	g_free(queues);
	g_free(only);
	g_free(props);
	return 0;
}
