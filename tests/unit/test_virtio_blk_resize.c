/*
 * block_resize as a virtio-blk driver sees it (drive_resize): capacity in
 * config space and config_generation change, the configuration change
 * interrupt arrives (MSI-X config vector, or INTx with ISR bit 1), and I/O
 * past the old end, refused before, now succeeds.  Requests in flight
 * across the resize all complete.
 */
#include <errno.h>

#include "test_vblk_util.h"

#define NEW_DISK	(24ull << 20)

static struct drive *d0(struct bt *t)
{
	struct drive *d = drive_find(&t->h.m, "d0");

	g_assert_nonnull(d);
	return d;
}

static uint64_t capacity(struct bt *t)
{
	return vh_cfg_read(&t->d, offsetof(struct virtio_blk_config, capacity), 8);
}

static uint8_t generation(struct bt *t)
{
	return vh_common_read(&t->d, VIRTIO_PCI_COMMON_CFGGEN, 1);
}

static void teardown(struct bt *t, uint64_t want_size)
{
	char *cmd;

	vh_machine_destroy(&t->h);
	if (!strcmp(t->fmt, "qcow2")) {
		cmd = g_strdup_printf("qemu-img check -q %s", t->img);
		g_assert_cmpint(system(cmd), ==, 0);
		g_free(cmd);
	} else {
		GStatBuf st;

		g_assert_cmpint(g_stat(t->img, &st), ==, 0);
		g_assert_cmpuint(st.st_size, ==, want_size);
	}
	g_unlink(t->img);
	g_rmdir(t->dir);
	g_free(t->img);
	g_free(t->dir);
}

static void grow_msix(const char *fmt)
{
	struct bt t;
	uint8_t *buf, gen;
	char err[256];
	unsigned irqs;

	if (!bt_init(&t, fmt, NULL, NULL, 1, false))
		return;
	bt_up(&t, base_features, 1);
	g_assert_cmpuint(capacity(&t), ==, DISK / 512);
	gen = generation(&t);
	irqs = vh_msi_count(&t.h, 0);	/* vh_dev_setup: config on vector 0 */
	buf = gp(&t, DATA(0), 8192);
	fill(buf, 8192, 0x31);
	/* Past the old end: IOERR, as any request outside the disk. */
	g_assert_cmpuint(rw(&t, 0, true, DISK / 512, DATA(0), 4096), ==, VIRTIO_BLK_S_IOERR);
	g_assert_cmpuint(rw(&t, 0, true, DISK / 512 - 8, DATA(0), 4096), ==, VIRTIO_BLK_S_OK);

	g_assert_cmpint(drive_resize(d0(&t), NEW_DISK, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(capacity(&t), ==, NEW_DISK / 512);
	g_assert_cmpuint(generation(&t), ==, (uint8_t)(gen + 1));
	g_assert_cmpuint(vh_msi_count(&t.h, 0), ==, irqs + 1);
	g_assert_cmpuint(blk_size(d0(&t)->blk), ==, NEW_DISK);

	/* The new range: zeroes, then what the driver writes. */
	g_assert_cmpuint(rw(&t, 0, false, DISK / 512, DATA(0) + 8192, 4096), ==, VIRTIO_BLK_S_OK);
	g_assert_true(is_zero(gp(&t, DATA(0) + 8192, 4096), 4096));
	g_assert_cmpuint(rw(&t, 0, true, NEW_DISK / 512 - 8, DATA(0) + 4096, 4096), ==,
			 VIRTIO_BLK_S_OK);
	g_assert_cmpuint(rw(&t, 0, false, NEW_DISK / 512 - 8, DATA(0) + 8192, 4096), ==,
			 VIRTIO_BLK_S_OK);
	g_assert_cmpmem(gp(&t, DATA(0) + 8192, 4096), 4096, buf + 4096, 4096);
	/* The data from before is where it was. */
	g_assert_cmpuint(rw(&t, 0, false, DISK / 512 - 8, DATA(0) + 8192, 4096), ==,
			 VIRTIO_BLK_S_OK);
	g_assert_cmpmem(gp(&t, DATA(0) + 8192, 4096), 4096, buf, 4096);
	/* Still past the end: refused. */
	g_assert_cmpuint(rw(&t, 0, false, NEW_DISK / 512, DATA(0), 512), ==, VIRTIO_BLK_S_IOERR);

	/* The same size again: nothing changes, no interrupt. */
	g_assert_cmpint(drive_resize(d0(&t), NEW_DISK, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(generation(&t), ==, (uint8_t)(gen + 1));
	g_assert_cmpuint(vh_msi_count(&t.h, 0), ==, irqs + 1);
	/* Shrinking is refused and changes nothing the guest sees. */
	g_assert_cmpint(drive_resize(d0(&t), DISK, err, sizeof(err)), ==, -ENOTSUP);
	g_assert_cmpuint(capacity(&t), ==, NEW_DISK / 512);
	g_assert_cmpuint(generation(&t), ==, (uint8_t)(gen + 1));
	teardown(&t, NEW_DISK);
}

static void test_grow_raw(void)
{
	grow_msix("raw");
}

static void test_grow_qcow2(void)
{
	grow_msix("qcow2");
}

/* MSI-X off: the ISR's configuration bit and the INTx line. */
static void test_grow_intx(void)
{
	unsigned raised = 0, after = 0;
	struct bt t;
	char err[256];

	if (!bt_init(&t, "raw", NULL, NULL, 1, false))
		return;
	vh_pci_write(&t.h, t.d.devfn, t.d.msix_cap + 2, 2, 0);
	bt_up(&t, base_features, 1);
	for (unsigned g = 0; g < 32; g++)
		raised += vh_gsi_raised(&t.h, g);
	g_assert_cmphex(bus_read(&t.h.m.mmio, t.d.isr, 1), ==, 0);
	g_assert_cmpint(drive_resize(d0(&t), NEW_DISK, err, sizeof(err)), ==, 0);
	for (unsigned g = 0; g < 32; g++)
		after += vh_gsi_raised(&t.h, g);
	g_assert_cmpuint(after, ==, raised + 1);
	g_assert_cmphex(bus_read(&t.h.m.mmio, t.d.isr, 1), ==, VIRTIO_PCI_ISR_CONFIG);
	g_assert_cmpuint(capacity(&t), ==, NEW_DISK / 512);
	teardown(&t, NEW_DISK);
}

/* Before DRIVER_OK: the new capacity, and no interrupt for a driver not up. */
static void test_grow_before_driver(void)
{
	struct bt t;
	char err[256];

	if (!bt_init(&t, "raw", NULL, NULL, 1, false))
		return;
	g_assert_cmpint(drive_resize(d0(&t), NEW_DISK, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(capacity(&t), ==, NEW_DISK / 512);
	g_assert_cmpuint(vh_msi_count(&t.h, 0), ==, 0);
	bt_up(&t, base_features, 1);
	g_assert_cmpuint(rw(&t, 0, true, NEW_DISK / 512 - 8, DATA(0), 4096), ==, VIRTIO_BLK_S_OK);
	teardown(&t, NEW_DISK);
}

/*
 * Requests published and kicked, then resized at once, with 4 queues and
 * their I/O threads: every request completes OK, and the threads serve
 * the new range afterwards.
 */
static void test_grow_inflight(void)
{
	struct bt t;
	char err[256];
	uint16_t heads[4][32];

	if (!bt_init(&t, "qcow2", NULL, "num-queues=4", 4, false))
		return;
	bt_up(&t, base_features, 4);
	for (int round = 0; round < 3; round++) {
		uint64_t size = NEW_DISK + round * (8ull << 20);

		for (unsigned q = 0; q < 4; q++) {
			for (unsigned i = 0; i < 32; i++) {
				struct vh_buf b = { DATA(q) + i * 4096, 4096, false };

				heads[q][i] = submit(&t, q, VIRTIO_BLK_T_OUT, (q * 32 + i) * 8 +
						     round, &b, 1, false);
			}
			vh_kick(&t.d, q);
		}
		g_assert_cmpint(drive_resize(d0(&t), size, err, sizeof(err)), ==, 0);
		for (unsigned q = 0; q < 4; q++) {
			for (unsigned i = 0; i < 32; i++) {
				uint32_t id, len;

				g_assert_true(vh_wait_used(&t.d, q, &id, &len));
				g_assert_cmpuint(status_of(&t, q, id), ==, VIRTIO_BLK_S_OK);
			}
			g_assert_cmpuint(status_of(&t, q, heads[q][31]), ==, VIRTIO_BLK_S_OK);
			g_assert_cmpuint(rw(&t, q, true, size / 512 - 8 * (q + 1), DATA(q), 4096),
					 ==, VIRTIO_BLK_S_OK);
		}
		g_assert_cmpuint(capacity(&t), ==, size / 512);
	}
	teardown(&t, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-blk/resize/raw", test_grow_raw);
	g_test_add_func("/virtio-blk/resize/qcow2", test_grow_qcow2);
	g_test_add_func("/virtio-blk/resize/intx", test_grow_intx);
	g_test_add_func("/virtio-blk/resize/before-driver-ok", test_grow_before_driver);
	g_test_add_func("/virtio-blk/resize/inflight", test_grow_inflight);
	return g_test_run();
}
