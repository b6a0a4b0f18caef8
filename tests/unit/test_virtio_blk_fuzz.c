/*
 * virtio-blk from a hostile guest and on a hostile image, beyond the
 * malformed chains of test_virtio_blk.c: requests checked against a model
 * of the disk, and requests parked on a corrupt image when the driver
 * resets the device.
 */
#include <fcntl.h>
#include <stdlib.h>

#include "test_vblk_util.h"

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
	uint16_t head;
	uint32_t id;

	/*
	 * The snapshot comes first: once submit() publishes the request the
	 * I/O thread may already be writing the buffers.  submit() itself
	 * writes nothing in DATA(0) (headers, statuses and tables are apart).
	 */
	memcpy(f->before, gp(&f->t, DATA(0), FZ_RAM), FZ_RAM);
	head = submit(&f->t, 0, type, sector, b, n, g_rand_boolean(f->g));
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

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/virtio-blk/fuzz-model/qcow2", "qcow2", test_fuzz_model);
	g_test_add_data_func("/virtio-blk/fuzz-model/raw", "raw", test_fuzz_model);
	g_test_add_func("/virtio-blk/corrupt-image-parked-reset", test_corrupt_image_parked_reset);
	return g_test_run();
}
