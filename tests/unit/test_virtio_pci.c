/*
 * The virtio-pci modern transport with a minimal device behind it: the test
 * is the guest driver (config space through ECAM, BAR accesses through the
 * MMIO bus) and, where it says so, the device (popping and pushing on the
 * virtqueue, raising interrupts).  Covers capabilities, feature
 * negotiation, queue setup, status and reset, notifications through MMIO
 * and ioeventfd, and interrupts through MSI, irqfd, masking and INTx.
 */
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "pci.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"

#define NQ 3
#define QMAX 64
#define TEST_FEATURE 5		/* a device feature bit to negotiate */

struct testdev {
	struct virtio_pci vp;		/* first: freed through it */
	struct virtio_dev vd;
	struct virtq vqs[NQ];
	uint8_t config[8];
	unsigned starts, stops;
	bool serving;			/* between a start and a stop or quiesce */
	unsigned quiesces;
	bool rings_at_quiesce;		/* queue 0 was still enabled when quiesced */
	unsigned cfg_writes;
	uint64_t cfg_written;
};

static int td_start(struct virtio_dev *vd)
{
	struct testdev *t = (struct testdev *)((char *)vd - offsetof(struct testdev, vd));

	t->starts++;
	t->serving = true;
	return 0;
}

static void td_stop(struct virtio_dev *vd)
{
	struct testdev *t = (struct testdev *)((char *)vd - offsetof(struct testdev, vd));

	t->stops++;
	t->serving = false;
}

static void td_quiesce(struct virtio_dev *vd)
{
	struct testdev *t = (struct testdev *)((char *)vd - offsetof(struct testdev, vd));

	t->quiesces++;
	t->rings_at_quiesce = t->vqs[0].enabled && t->vqs[0].desc;
	t->serving = false;
}

static void td_config_write(struct virtio_dev *vd, unsigned off, unsigned size, uint64_t val)
{
	struct testdev *t = (struct testdev *)((char *)vd - offsetof(struct testdev, vd));

	t->cfg_writes++;
	t->cfg_written = val;
}

static const struct virtio_dev_ops td_ops = {
	.start = td_start,
	.stop = td_stop,
	.quiesce = td_quiesce,
	.config_write = td_config_write,
};

struct fx {
	struct vh_machine h;
	struct testdev *t;
	struct vh_dev d;
};

static void fx_init(struct fx *f, bool fds)
{
	char err[256];
	struct testdev *t;

	vh_machine_init(&f->h, 1, fds);
	t = f->t = g_new0(struct testdev, 1);
	t->vd.name = "virtio-test";
	t->vd.device_id = 63;
	t->vd.mem = &f->h.m.mem;
	t->vd.ops = &td_ops;
	t->vd.host_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX |
			      1ull << TEST_FEATURE;
	memcpy(t->config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	t->vd.config = t->config;
	t->vd.config_len = sizeof(t->config);
	t->vd.vqs = t->vqs;
	t->vd.nr_vqs = NQ;
	for (unsigned i = 0; i < NQ; i++)
		g_assert_cmpint(virtq_init(&t->vqs[i], &t->vd, i, QMAX), ==, 0);
	if (virtio_pci_init(&t->vp, &f->h.m, &t->vd, 0xff0000, -1, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	g_assert_true(vh_dev_find(&f->h, 63, 0, &f->d));
}

static void fx_destroy(struct fx *f)
{
	virtio_pci_destroy(&f->t->vp);
	for (unsigned i = 0; i < NQ; i++)
		virtq_cleanup(&f->t->vqs[i]);
	g_free(f->t);
	vh_machine_destroy(&f->h);
}

static bool kicked(struct fx *f, unsigned q)
{
	uint64_t v;

	return read(f->t->vqs[q].kick_fd, &v, sizeof(v)) == sizeof(v) && v > 0;
}

static void test_identity(void)
{
	struct fx f;

	fx_init(&f, false);
	g_assert_cmphex(vh_pci_read(&f.h, f.d.devfn, PCI_DEVICE_ID, 2), ==, 0x1040 + 63);
	g_assert_cmphex(vh_pci_read(&f.h, f.d.devfn, PCI_REVISION_ID, 1), ==, 1);
	g_assert_cmphex(vh_pci_read(&f.h, f.d.devfn, PCI_SUBSYSTEM_VENDOR_ID, 2), ==, 0x1af4);
	g_assert_cmphex(vh_pci_read(&f.h, f.d.devfn, PCI_SUBSYSTEM_ID, 2), >=, 0x40);
	g_assert_cmpuint(vh_pci_read(&f.h, f.d.devfn, PCI_INTERRUPT_PIN, 1), ==, 1);
	/* 64-bit memory BAR for the virtio structures. */
	g_assert_cmphex(vh_pci_read(&f.h, f.d.devfn, PCI_BASE_ADDRESS_0 + 16, 4) & 7, ==, 4);
	g_assert_cmpuint(f.d.notify_mult, ==, VIRTIO_PCI_NOTIFY_MULT);
	g_assert_cmpuint(f.d.nr_queues, ==, NQ);
	/* MSI-X: one vector per queue and one for config changes. */
	g_assert_cmpuint((vh_pci_read(&f.h, f.d.devfn, f.d.msix_cap + 2, 2) & 0x7ff) + 1, ==,
			 NQ + 1);
	/* Device config window, and writes reach the device. */
	g_assert_cmphex(vh_cfg_read(&f.d, 0, 4), ==, 0x44332211);
	g_assert_cmphex(vh_cfg_read(&f.d, 6, 2), ==, 0x8877);
	g_assert_cmphex(vh_cfg_read(&f.d, 8, 4), ==, 0);
	bus_write(&f.h.m.mmio, f.d.devcfg + 4, 2, 0xbeef);
	g_assert_cmpuint(f.t->cfg_writes, ==, 1);
	g_assert_cmphex(f.t->cfg_written, ==, 0xbeef);
	fx_destroy(&f);
}

static void test_features(void)
{
	struct fx f;
	uint64_t ver = 1ull << VIRTIO_F_VERSION_1;

	fx_init(&f, false);
	/* A bit we did not offer: FEATURES_OK does not stick. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 3);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GF, 4, 1u << 7);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GF, 4, 1);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 3 | VIRTIO_STATUS_FEATURES_OK);
	g_assert_cmpuint(vh_status(&f.d), ==, 3);

	/* No VERSION_1 (a legacy driver): refused too. */
	g_assert_false(vh_dev_setup(&f.d, 1ull << TEST_FEATURE, 0, 0) &
		       VIRTIO_STATUS_FEATURES_OK);

	/* Offered bits only: accepted, and the device sees them. */
	g_assert_true(vh_dev_setup(&f.d, ver | 1ull << TEST_FEATURE, 0, 0) &
		      VIRTIO_STATUS_FEATURES_OK);
	g_assert_cmphex(f.d.features, ==, f.t->vd.host_features);
	g_assert_cmphex(f.t->vd.guest_features, ==, ver | 1ull << TEST_FEATURE);
	/* Feature writes after FEATURES_OK are ignored. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GF, 4, 0);
	g_assert_cmphex(f.t->vd.guest_features, ==, ver | 1ull << TEST_FEATURE);
	g_assert_cmpuint(f.t->starts, ==, 1);

	/* Reset clears everything and stops the device. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	g_assert_cmpuint(vh_status(&f.d), ==, 0);
	g_assert_cmpuint(f.t->stops, ==, 1);
	g_assert_cmphex(f.t->vd.guest_features, ==, 0);
	fx_destroy(&f);
}

static void test_queue_config(void)
{
	struct fx f;

	fx_init(&f, false);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, QMAX);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x12345000);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0x1);
	g_assert_cmphex(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_DESCLO, 8), ==, 0x112345000ull);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_USEDLO, 8, 0xabcdef000ull);
	g_assert_cmphex(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_USEDLO, 4), ==, 0xbcdef000);
	g_assert_cmphex(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_USEDHI, 4), ==, 0xa);
	/* Vectors the table does not have read back as NO_VECTOR. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_MSIX, 2, NQ);
	g_assert_cmphex(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_MSIX, 2), ==, NQ);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_MSIX, 2, NQ + 1);
	g_assert_cmphex(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_MSIX, 2), ==, 0xffff);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_MSIX, 2, 200);
	g_assert_cmphex(vh_common_read(&f.d, VIRTIO_PCI_COMMON_MSIX, 2), ==, 0xffff);
	/* A queue that does not exist has size 0 and ignores writes. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_SELECT, 2, NQ);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 0);
	/* Misaligned and wrong-width accesses do nothing. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_SIZE, 4, 8);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, QMAX);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_SIZE + 1, 1), ==, 0);
	fx_destroy(&f);
}

/* The device side: complete the one chain on queue q and interrupt. */
static void device_complete(struct fx *f, unsigned q)
{
	struct virtq *vq = &f->t->vqs[q];
	struct virtq_elem *e;
	void *p;

	g_assert_cmpint(virtq_pop(vq, sizeof(*e), &p), ==, 1);
	e = p;
	virtq_push(vq, e, 1);
	g_free(e);
	if (virtq_should_notify(vq))
		f->t->vd.notify(&f->t->vd, q);
}

static void one_request(struct fx *f, unsigned q)
{
	struct vh_buf b = { 0x200000, 1, true };
	uint32_t id, len;

	vh_ring_add(&f->d.ring[q], &b, 1, 0);
	vh_kick(&f->d, q);
	g_assert_true(kicked(f, q));
	device_complete(f, q);
	g_assert_true(vh_wait_used(&f->d, q, &id, &len));
	g_assert_cmpuint(len, ==, 1);
}

static void run_queues_msix(bool fds)
{
	struct fx f;
	uint64_t want = 1ull << VIRTIO_F_VERSION_1;

	fx_init(&f, fds);
	vh_msix_enable(&f.d);
	g_assert_cmphex(vh_dev_setup(&f.d, want, NQ, 16), ==, 0xf);
	g_assert_cmpuint(f.t->starts, ==, 1);
	if (fds) {
		/* Notifications bypass the MMIO handler. */
		g_assert_cmpuint(f.h.nr_ioev, ==, NQ);
		for (unsigned q = 0; q < NQ; q++)
			g_assert_cmphex(f.h.ioev[q].addr, ==, f.d.notify + 4 * q);
		g_assert_cmpuint(f.h.nr_irqfd, ==, NQ + 1);
	}
	for (unsigned q = 0; q < NQ; q++) {
		one_request(&f, q);
		g_assert_cmpuint(vh_msi_count(&f.h, q + 1), ==, 1);
	}
	/* Masked: no delivery, the PBA holds it; unmasking delivers it. */
	vh_msix_mask(&f.d, 2, true);
	one_request(&f, 1);
	g_assert_cmpuint(vh_msi_count(&f.h, 2), ==, 1);
	g_assert_cmphex(bus_read(&f.h.m.mmio, f.d.msix_table + VIRTIO_PCI_MSIX_PBA, 8), ==, 1 << 2);
	vh_msix_mask(&f.d, 2, false);
	g_assert_cmpuint(vh_msi_count(&f.h, 2), ==, 2);
	one_request(&f, 1);
	g_assert_cmpuint(vh_msi_count(&f.h, 2), ==, 3);
	/* The guest retargets vector 1: the next interrupt uses the new message. */
	bus_write(&f.h.m.mmio, f.d.msix_table + 16 * 1 + 8, 4, VH_MSI_DATA + 10);
	one_request(&f, 0);
	g_assert_cmpuint(vh_msi_count(&f.h, 10), ==, 1);
	g_assert_cmpuint(vh_msi_count(&f.h, 1), ==, 1);
	bus_write(&f.h.m.mmio, f.d.msix_table + 16 * 1 + 8, 4, VH_MSI_DATA + 1);
	/* Function-wide mask holds every vector back until it is lifted. */
	vh_pci_write(&f.h, f.d.devfn, f.d.msix_cap + 2, 2, 0xc000);
	one_request(&f, 2);
	g_assert_cmpuint(vh_msi_count(&f.h, 3), ==, 1);
	vh_pci_write(&f.h, f.d.devfn, f.d.msix_cap + 2, 2, 0x8000);
	g_assert_cmpuint(vh_msi_count(&f.h, 3), ==, 2);
	/* No INTx while MSI-X is on. */
	g_assert_cmpuint(vh_gsi_raised(&f.h, f.t->vp.pci.gsi), ==, 0);

	/* Reset: device stopped, ioeventfds gone, queues back to defaults. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	g_assert_cmpuint(f.t->stops, ==, 1);
	g_assert_cmpuint(f.h.nr_ioev, ==, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 0);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, QMAX);
	g_assert_cmphex(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_MSIX, 2), ==, 0xffff);
	/* And the driver can bring it up again. */
	g_assert_cmphex(vh_dev_setup(&f.d, want, NQ, 16), ==, 0xf);
	one_request(&f, 0);
	g_assert_cmpuint(vh_msi_count(&f.h, 1), ==, 2);
	fx_destroy(&f);
}

static void test_msix_mmio(void)
{
	run_queues_msix(false);
}

static void test_msix_fds(void)
{
	run_queues_msix(true);
}

/* The guest moves BAR 4: the ioeventfds follow. */
static void test_bar_move(void)
{
	struct vh_ring rings[NQ];
	struct fx f;
	uint64_t old;

	fx_init(&f, true);
	vh_msix_enable(&f.d);
	g_assert_cmphex(vh_dev_setup(&f.d, 1ull << VIRTIO_F_VERSION_1, NQ, 16), ==, 0xf);
	old = f.d.notify;
	vh_pci_write(&f.h, f.d.devfn, PCI_BASE_ADDRESS_0 + 16, 4, 0xd0000000);
	vh_pci_write(&f.h, f.d.devfn, PCI_BASE_ADDRESS_0 + 20, 4, 0);
	memcpy(rings, f.d.ring, sizeof(rings));
	g_assert_true(vh_dev_find(&f.h, 63, 0, &f.d));
	memcpy(f.d.ring, rings, sizeof(rings));
	g_assert_cmphex(f.d.notify, !=, old);
	g_assert_cmpuint(f.h.nr_ioev, ==, NQ);
	for (unsigned q = 0; q < NQ; q++) {
		bool found = false;

		for (unsigned i = 0; i < f.h.nr_ioev; i++)
			found |= f.h.ioev[i].addr == f.d.notify + 4 * q;
		g_assert_true(found);
	}
	one_request(&f, 2);
	g_assert_cmpuint(vh_msi_count(&f.h, 3), ==, 1);
	fx_destroy(&f);
}

static void test_intx(void)
{
	struct fx f;
	unsigned gsi;

	fx_init(&f, false);
	gsi = f.t->vp.pci.gsi;
	g_assert_cmphex(vh_dev_setup(&f.d, 1ull << VIRTIO_F_VERSION_1, NQ, 16), ==, 0xf);
	one_request(&f, 0);
	g_assert_cmpuint(vh_gsi_raised(&f.h, gsi), ==, 1);
	g_assert_cmpint(f.h.gsi_level[gsi], ==, 1);
	/* Reading the ISR returns the cause, clears it and lowers the line. */
	g_assert_cmphex(bus_read(&f.h.m.mmio, f.d.isr, 1), ==, VIRTIO_PCI_ISR_QUEUE);
	g_assert_cmpint(f.h.gsi_level[gsi], ==, 0);
	g_assert_cmphex(bus_read(&f.h.m.mmio, f.d.isr, 1), ==, 0);
	fx_destroy(&f);
}

/* A broken queue set up through the transport: NEEDS_RESET + config irq. */
static void test_needs_reset_via_pci(void)
{
	struct fx f;
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;

	fx_init(&f, false);
	vh_msix_enable(&f.d);
	g_assert_cmphex(vh_dev_setup(&f.d, 1ull << VIRTIO_F_VERSION_1, 0, 0), ==,
			s | VIRTIO_STATUS_DRIVER_OK);
	/* Too late to enable a queue now: ignored, no harm. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 0);

	/* Queue size 48 is not a power of two. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 3);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_GF, 4, 1);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, s);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 48);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	g_assert_cmpuint(vh_common_read(&f.d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 0);
	g_assert_true(vh_status(&f.d) & VIRTIO_STATUS_NEEDS_RESET);
	/* Later status writes keep NEEDS_RESET; only a reset clears it. */
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, s | VIRTIO_STATUS_DRIVER_OK);
	g_assert_cmphex(vh_status(&f.d), ==, s | VIRTIO_STATUS_DRIVER_OK |
			VIRTIO_STATUS_NEEDS_RESET);
	vh_common_write(&f.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	g_assert_cmphex(vh_status(&f.d), ==, 0);

	/* Broken while running: the config vector fires once. */
	g_assert_cmphex(vh_dev_setup(&f.d, 1ull << VIRTIO_F_VERSION_1, 1, 16), ==, 0xf);
	vh_avail_publish(&f.d.ring[0], 16);	/* head out of range */
	vh_kick(&f.d, 0);
	g_assert_cmpint(virtq_pop(&f.t->vqs[0], sizeof(struct virtq_elem), &(void *){ NULL }),
			==, -EIO);
	g_assert_cmphex(vh_status(&f.d), ==, 0xf | VIRTIO_STATUS_NEEDS_RESET);
	g_assert_cmpuint(vh_msi_count(&f.h, 0), ==, 1);
	g_assert_cmpint(virtq_pop(&f.t->vqs[0], sizeof(struct virtq_elem), &(void *){ NULL }),
			==, -EIO);
	g_assert_cmpuint(vh_msi_count(&f.h, 0), ==, 1);
	fx_destroy(&f);
}

/*
 * A load into a device that serves, with nobody holding it: the transport
 * quiesces it before the rings change under it, and starts it again as the
 * stream says.
 */
static void test_load_unheld_into_started(void)
{
	struct fx a, b;
	char err[256] = "";

	fx_init(&a, false);
	fx_init(&b, false);
	g_assert_cmphex(vh_dev_setup(&a.d, 1ull << VIRTIO_F_VERSION_1, NQ, 16), ==, 0xf);
	g_assert_cmphex(vh_dev_setup(&b.d, 1ull << VIRTIO_F_VERSION_1, NQ, 32), ==, 0xf);
	g_assert_cmpuint(b.t->starts, ==, 1);
	g_assert_cmpint(vh_migrate_dev(&a.d, &b.h, &b.d, false, NULL, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(b.t->quiesces, ==, 1);
	g_assert_true(b.t->rings_at_quiesce);
	g_assert_true(b.t->serving);
	g_assert_cmpuint(b.t->starts, ==, 2);
	g_assert_cmpuint(b.t->vqs[0].size, ==, 16);	/* a's rings now */
	fx_destroy(&b);
	fx_destroy(&a);
}

/* The stream's device never started: one that served here stops, as on a reset. */
static void test_load_unstarted_into_started(void)
{
	struct fx a, b;
	char err[256] = "";

	fx_init(&a, false);
	fx_init(&b, false);
	g_assert_cmphex(vh_dev_setup(&b.d, 1ull << VIRTIO_F_VERSION_1, NQ, 32), ==, 0xf);
	g_assert_cmpint(vh_migrate_dev(&a.d, &b.h, &b.d, false, NULL, err, sizeof(err)), ==, 0);
	g_assert_false(b.t->serving);
	g_assert_false(b.t->vp.started);
	g_assert_cmpuint(b.t->starts, ==, 1);
	/* The driver can set it up again. */
	g_assert_cmphex(vh_dev_setup(&b.d, 1ull << VIRTIO_F_VERSION_1, NQ, 32), ==, 0xf);
	g_assert_true(b.t->serving);
	fx_destroy(&b);
	fx_destroy(&a);
}

static void td_not_serving(void *opaque)
{
	struct testdev *t = opaque;

	g_assert_false(t->serving);
	g_assert_cmpuint(t->starts, ==, 0);
}

/* A held load into a device that never ran starts it at the resume, not before. */
static void test_held_load_into_never_started(void)
{
	struct fx a, b;
	char err[256] = "";

	fx_init(&a, false);
	fx_init(&b, false);
	g_assert_cmphex(vh_dev_setup(&a.d, 1ull << VIRTIO_F_VERSION_1, NQ, 16), ==, 0xf);
	g_assert_cmpint(vh_migrate_dev_held(&a.d, &b.h, &b.d, td_not_serving, b.t, err,
					    sizeof(err)), ==, 0);
	g_assert_true(b.t->serving);
	g_assert_cmpuint(b.t->starts, ==, 1);
	fx_destroy(&b);
	fx_destroy(&a);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-pci/identity", test_identity);
	g_test_add_func("/virtio-pci/features", test_features);
	g_test_add_func("/virtio-pci/queue-config", test_queue_config);
	g_test_add_func("/virtio-pci/msix-mmio", test_msix_mmio);
	g_test_add_func("/virtio-pci/msix-ioeventfd-irqfd", test_msix_fds);
	g_test_add_func("/virtio-pci/bar-move", test_bar_move);
	g_test_add_func("/virtio-pci/intx", test_intx);
	g_test_add_func("/virtio-pci/needs-reset", test_needs_reset_via_pci);
	g_test_add_func("/virtio-pci/load/unheld-into-started", test_load_unheld_into_started);
	g_test_add_func("/virtio-pci/load/unstarted-into-started",
			test_load_unstarted_into_started);
	g_test_add_func("/virtio-pci/load/held-into-never-started",
			test_held_load_into_never_started);
	return g_test_run();
}
