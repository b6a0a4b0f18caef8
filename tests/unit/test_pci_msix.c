/*
 * MSI-X: the capability, table and PBA as the guest sees them through the
 * BAR, delivery, per-vector and function masking with pending bits, and
 * the vector_changed callback.
 */
#include <errno.h>
#include <glib.h>
#include <stddef.h>
#include <string.h>

#include "accel/accel.h"
#include "bus.h"
#include "machine.h"
#include "memory.h"
#include "pci.h"

#define NR_VEC 4
#define PCI_MSIX_FLAGS_ENABLE_TEST 0x8000
#define TABLE_OFF 0x0
#define PBA_OFF 0x1000

struct msi {
	uint64_t addr;
	uint32_t data;
};

struct fx {
	struct machine m;
	GArray *msis;
	int level[32];
	struct pci_device d;
	unsigned changed[NR_VEC];
	bool routable[NR_VEC];		/* pci_msix_message at the last change */
	uint64_t bar;			/* BAR0 guest address */
	unsigned cap;
};

static struct fx *fx_of(struct machine *m)
{
	return (struct fx *)((char *)m - offsetof(struct fx, m));
}

static int fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	fx_of(m)->level[gsi] = level;
	return 0;
}

static int fake_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	struct msi x = { addr, data };

	g_array_append_val(fx_of(m)->msis, x);
	return 0;
}

static const struct accel_ops fake_accel = {
	.name = "fake", .set_irq = fake_set_irq, .send_msi = fake_send_msi,
};

/* The device's BAR0 holds nothing but the table and the PBA. */
static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_msix_read(opaque, off, size);
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_msix_write(opaque, off, size, val);
}

static const struct bus_ops bar_ops = { .read = bar_read, .write = bar_write };

static void vector_changed(struct pci_device *d, unsigned v)
{
	struct fx *f = (struct fx *)((char *)d - offsetof(struct fx, d));

	uint64_t addr;
	uint32_t data;

	g_assert_cmpuint(v, <, NR_VEC);
	f->changed[v]++;
	/* What a transport does here: fetch the new route (the lock is recursive). */
	f->routable[v] = pci_msix_message(d, v, &addr, &data);
}

static struct fx *fx_new(void)
{
	struct fx *f = g_new0(struct fx, 1);
	char err[256];

	pthread_mutex_init(&f->m.lock, NULL);
	bus_init(&f->m.pio, "pio");
	bus_init(&f->m.mmio, "mmio");
	f->m.nr_irq_pins = 24;
	f->m.accel = &fake_accel;
	f->msis = g_array_new(FALSE, FALSE, sizeof(struct msi));
	g_assert_cmpint(guest_mem_init(&f->m.mem, 64 << 20, NULL, false, err, sizeof(err)), ==, 0);
	g_assert_cmpint(pci_host_init(&f->m, err, sizeof(err)), ==, 0);

	pci_device_init(&f->d, "msix-dev", 0x1AF4, 0x1042, 0x018000, 1);
	pci_set_bar(&f->d, 0, PCI_BAR_MEM32, 0x2000, false, &bar_ops, &f->d);
	g_assert_cmpint(pci_msix_init(&f->d, NR_VEC, 0, TABLE_OFF, PBA_OFF), ==, 0);
	f->d.msix.vector_changed = vector_changed;
	g_assert_cmpint(pci_device_register(&f->m, &f->d, 3, err, sizeof(err)), ==, 0);
	f->bar = f->d.bar[0].addr;
	f->cap = f->d.msix.cap;
	return f;
}

static void fx_free(struct fx *f)
{
	pci_device_unregister(&f->d);
	pci_host_destroy(&f->m);
	guest_mem_destroy(&f->m.mem);
	bus_destroy(&f->m.pio);
	bus_destroy(&f->m.mmio);
	g_array_free(f->msis, TRUE);
	g_free(f);
}

static uint32_t cfg_read(struct fx *f, unsigned reg, unsigned size)
{
	return bus_read(&f->m.mmio, MEM_PCI_ECAM_BASE + (3 << 15) + reg, size);
}

static void cfg_write(struct fx *f, unsigned reg, unsigned size, uint32_t v)
{
	bus_write(&f->m.mmio, MEM_PCI_ECAM_BASE + (3 << 15) + reg, size, v);
}

static void msix_ctrl(struct fx *f, uint16_t v)
{
	cfg_write(f, f->cap + 2, 2, v);
}

static uint64_t tbl(struct fx *f, unsigned v, unsigned field, unsigned size)
{
	return bus_read(&f->m.mmio, f->bar + TABLE_OFF + 16 * v + field, size);
}

static void tbl_set(struct fx *f, unsigned v, unsigned field, unsigned size, uint64_t val)
{
	bus_write(&f->m.mmio, f->bar + TABLE_OFF + 16 * v + field, size, val);
}

static uint64_t pba(struct fx *f)
{
	return bus_read(&f->m.mmio, f->bar + PBA_OFF, 8);
}

/* Program vector v with a 64-bit write of the address and a data dword. */
static void program(struct fx *f, unsigned v, uint64_t addr, uint32_t data)
{
	tbl_set(f, v, 0, 8, addr);
	tbl_set(f, v, 8, 4, data);
}

static void test_capability(void)
{
	struct fx *f = fx_new();
	unsigned cap = cfg_read(f, 0x34, 1);

	g_assert_cmphex(cfg_read(f, 6, 2) & PCI_STATUS_CAP_LIST, !=, 0);
	g_assert_cmpuint(cap, ==, f->cap);
	g_assert_cmphex(cfg_read(f, cap, 1), ==, PCI_CAP_ID_MSIX);
	g_assert_cmphex(cfg_read(f, cap + 1, 1), ==, 0);		/* end of list */
	g_assert_cmphex(cfg_read(f, cap + 2, 2), ==, NR_VEC - 1);	/* off, unmasked */
	g_assert_cmphex(cfg_read(f, cap + 4, 4), ==, TABLE_OFF | 0);	/* BIR 0 */
	g_assert_cmphex(cfg_read(f, cap + 8, 4), ==, PBA_OFF | 0);
	/* Only enable and function mask are writable. */
	msix_ctrl(f, 0xFFFF);
	g_assert_cmphex(cfg_read(f, cap + 2, 2), ==, 0xC000 | (NR_VEC - 1));
	g_assert_true(f->d.msix.enabled);
	g_assert_true(f->d.msix.masked);
	cfg_write(f, cap + 4, 4, 0x12345678);
	g_assert_cmphex(cfg_read(f, cap + 4, 4), ==, TABLE_OFF);
	/* Every vector starts masked, with nothing pending. */
	for (unsigned v = 0; v < NR_VEC; v++)
		g_assert_cmphex(tbl(f, v, 12, 4), ==, 1);
	g_assert_cmphex(pba(f), ==, 0);
	fx_free(f);
}

static void test_table_access(void)
{
	struct fx *f = fx_new();

	program(f, 2, 0x00000001FEE01000ull, 0x4041);
	g_assert_cmphex(tbl(f, 2, 0, 4), ==, 0xFEE01000);
	g_assert_cmphex(tbl(f, 2, 4, 4), ==, 1);
	g_assert_cmphex(tbl(f, 2, 0, 8), ==, 0x00000001FEE01000ull);
	g_assert_cmphex(tbl(f, 2, 8, 8), ==, 0x0000000100004041ull);	/* data | ctrl */
	/* Reserved vector control bits stay zero. */
	tbl_set(f, 2, 12, 4, 0xFFFFFFFE);
	g_assert_cmphex(tbl(f, 2, 12, 4), ==, 0);
	/* The PBA is read-only; beyond table and PBA nothing answers. */
	bus_write(&f->m.mmio, f->bar + PBA_OFF, 8, ~0ull);
	g_assert_cmphex(pba(f), ==, 0);
	g_assert_cmphex(bus_read(&f->m.mmio, f->bar + 16 * NR_VEC, 4), ==, 0xFFFFFFFF);
	g_assert_cmphex(bus_read(&f->m.mmio, f->bar + 0x1F00, 4), ==, 0xFFFFFFFF);
	/* Neighbouring vectors are untouched. */
	g_assert_cmphex(tbl(f, 1, 0, 8), ==, 0);
	g_assert_cmphex(tbl(f, 3, 12, 4), ==, 1);
	g_assert_cmpuint(f->changed[2], >, 0);
	g_assert_cmpuint(f->changed[1], ==, 0);
	fx_free(f);
}

static void test_delivery_and_pending(void)
{
	struct fx *f = fx_new();
	uint64_t addr;
	uint32_t data;

	program(f, 1, 0xFEE00000, 0x4031);
	tbl_set(f, 1, 12, 4, 0);			/* unmask vector 1 */
	/* MSI-X off: nothing is sent, nothing is pending. */
	pci_msix_notify(&f->d, 1);
	g_assert_cmpuint(f->msis->len, ==, 0);
	g_assert_false(pci_msix_message(&f->d, 1, &addr, &data));

	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST);
	pci_msix_notify(&f->d, 1);
	g_assert_cmpuint(f->msis->len, ==, 1);
	g_assert_cmphex(g_array_index(f->msis, struct msi, 0).addr, ==, 0xFEE00000);
	g_assert_cmphex(g_array_index(f->msis, struct msi, 0).data, ==, 0x4031);
	g_assert_true(pci_msix_message(&f->d, 1, &addr, &data));
	g_assert_cmphex(data, ==, 0x4031);

	/* Masked vector: held back in the PBA, sent on unmask. */
	tbl_set(f, 1, 12, 4, 1);
	g_assert_false(pci_msix_message(&f->d, 1, &addr, &data));
	pci_msix_notify(&f->d, 1);
	pci_msix_notify(&f->d, 1);
	g_assert_cmpuint(f->msis->len, ==, 1);
	g_assert_cmphex(pba(f), ==, 1 << 1);
	g_assert_cmphex(bus_read(&f->m.mmio, f->bar + PBA_OFF, 4), ==, 1 << 1);
	tbl_set(f, 1, 12, 4, 0);
	g_assert_cmpuint(f->msis->len, ==, 2);
	g_assert_cmphex(pba(f), ==, 0);

	/* Function mask: the same, for every vector at once. */
	program(f, 0, 0xFEE00000, 0x4030);
	tbl_set(f, 0, 12, 4, 0);
	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST | 0x4000);
	pci_msix_notify(&f->d, 0);
	pci_msix_notify(&f->d, 1);
	pci_msix_notify(&f->d, 3);			/* still individually masked */
	g_assert_cmpuint(f->msis->len, ==, 2);
	g_assert_cmphex(pba(f), ==, 0xB);
	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST);
	g_assert_cmpuint(f->msis->len, ==, 4);
	g_assert_cmphex(pba(f), ==, 0x8);
	g_assert_cmphex(g_array_index(f->msis, struct msi, 2).data, ==, 0x4030);
	g_assert_cmphex(g_array_index(f->msis, struct msi, 3).data, ==, 0x4031);

	/* Out-of-range vectors are refused without harm. */
	pci_msix_notify(&f->d, NR_VEC);
	pci_msix_notify(&f->d, ~0u);
	g_assert_cmpuint(f->msis->len, ==, 4);
	fx_free(f);
}

static void test_vector_changed(void)
{
	struct fx *f = fx_new();
	unsigned before[NR_VEC];

	memcpy(before, f->changed, sizeof(before));
	tbl_set(f, 3, 8, 4, 0x55);
	g_assert_cmpuint(f->changed[3], ==, before[3] + 1);
	g_assert_cmpuint(f->changed[0], ==, before[0]);
	/* Enable and function mask change every vector's message. */
	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST);
	for (unsigned v = 0; v < NR_VEC; v++)
		g_assert_cmpuint(f->changed[v], >, before[v] + (v == 3));
	g_assert_false(f->routable[3]);		/* still masked */
	tbl_set(f, 3, 12, 4, 0);
	g_assert_true(f->routable[3]);
	tbl_set(f, 3, 12, 4, 1);
	g_assert_false(f->routable[3]);
	/* Rewriting the same control word is no change. */
	memcpy(before, f->changed, sizeof(before));
	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST);
	g_assert_cmpmem(before, sizeof(before), f->changed, sizeof(before));
	fx_free(f);
}

static void test_intx_and_reset(void)
{
	struct fx *f = fx_new();
	unsigned gsi = f->d.gsi;

	/* While MSI-X is on the function may not use INTx. */
	pci_set_irq(&f->d, 1);
	g_assert_cmpint(f->level[gsi], ==, 1);
	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST);
	g_assert_cmpint(f->level[gsi], ==, 0);
	msix_ctrl(f, 0);
	g_assert_cmpint(f->level[gsi], ==, 1);
	pci_set_irq(&f->d, 0);

	/* System reset: MSI-X off, vectors masked, nothing pending. */
	program(f, 0, 0xFEE00000, 0x4030);
	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST | 0x4000);
	pci_msix_notify(&f->d, 0);
	g_assert_cmphex(pba(f), ==, 1);
	for (struct device *d = f->m.devices; d; d = d->next)
		if (d->reset)
			d->reset(d);
	g_assert_false(f->d.msix.enabled);
	g_assert_cmphex(cfg_read(f, f->cap + 2, 2), ==, NR_VEC - 1);
	g_assert_cmphex(pba(f), ==, 0);
	g_assert_cmphex(tbl(f, 0, 0, 8), ==, 0);
	g_assert_cmphex(tbl(f, 0, 12, 4), ==, 1);
	fx_free(f);
}

struct stress {
	struct fx *f;
	unsigned iterations;
};

/* The guest moves the BAR and flips MSI-X masks through ECAM and CF8/CFC. */
static gpointer stress_guest(gpointer opaque)
{
	struct stress *st = opaque;
	struct fx *f = st->f;

	for (unsigned i = 0; i < st->iterations; i++) {
		uint64_t to = f->bar + ((i & 1) ? 0x100000 : 0);

		cfg_write(f, 0x10, 4, to);
		bus_write(&f->m.pio, 0xCF8, 4, 0x80000000u | 3 << 11 | (f->cap & 0xFC));
		bus_write(&f->m.pio, 0xCFC + 2, 2, PCI_MSIX_FLAGS_ENABLE_TEST | ((i & 2) ? 0x4000 : 0));
		bus_write(&f->m.mmio, to + TABLE_OFF + 12, 4, i & 4 ? 1 : 0);
		bus_read(&f->m.mmio, to + PBA_OFF, 8);
	}
	cfg_write(f, 0x10, 4, f->bar);
	return NULL;
}

/* A device thread notifies while the guest does all that. */
static gpointer stress_device(gpointer opaque)
{
	struct stress *st = opaque;

	for (unsigned i = 0; i < st->iterations; i++)
		pci_msix_notify(&st->f->d, 0);
	return NULL;
}

static void test_concurrency(void)
{
	struct fx *f = fx_new();
	struct stress st = { .f = f, .iterations = 20000 };
	GThread *a, *b;
	unsigned before;

	program(f, 0, 0xFEE00000, 0x4030);
	a = g_thread_new("guest", stress_guest, &st);
	b = g_thread_new("device", stress_device, &st);
	g_thread_join(a);
	g_thread_join(b);
	/* Back where it started, still decoding, and the state is consistent. */
	g_assert_cmphex(f->d.bar[0].addr, ==, f->bar);
	g_assert_cmphex(tbl(f, 0, 8, 4), ==, 0x4030);
	msix_ctrl(f, PCI_MSIX_FLAGS_ENABLE_TEST);
	tbl_set(f, 0, 12, 4, 0);
	g_assert_cmphex(pba(f), ==, 0);
	before = f->msis->len;
	pci_msix_notify(&f->d, 0);
	g_assert_cmpuint(f->msis->len, ==, before + 1);
	fx_free(f);
}

static void test_init_errors(void)
{
	struct pci_device d = { 0 };

	pci_device_init(&d, "bad", 1, 2, 0, 0);
	pci_set_bar(&d, 0, PCI_BAR_MEM32, 0x100, false, &bar_ops, &d);
	pci_set_bar(&d, 1, PCI_BAR_IO, 0x100, false, &bar_ops, &d);
	/* Table past the BAR, PBA overlapping the table, an I/O BAR, no vectors. */
	g_assert_cmpint(pci_msix_init(&d, 32, 0, 0, 0x80), ==, -EINVAL);
	g_assert_cmpint(pci_msix_init(&d, 4, 0, 0, 0x20), ==, -EINVAL);
	g_assert_cmpint(pci_msix_init(&d, 4, 1, 0, 0x80), ==, -EINVAL);
	g_assert_cmpint(pci_msix_init(&d, 0, 0, 0, 0x80), ==, -EINVAL);
	g_assert_cmpint(pci_msix_init(&d, 4, 0, 0, 0x80), ==, 0);
	g_assert_cmpint(pci_msix_init(&d, 4, 0, 0, 0x80), ==, -EINVAL);	/* twice */
	g_free(d.msix.table);
	g_free(d.msix.pba);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pci_msix/capability", test_capability);
	g_test_add_func("/pci_msix/table_access", test_table_access);
	g_test_add_func("/pci_msix/delivery_and_pending", test_delivery_and_pending);
	g_test_add_func("/pci_msix/vector_changed", test_vector_changed);
	g_test_add_func("/pci_msix/intx_and_reset", test_intx_and_reset);
	g_test_add_func("/pci_msix/init_errors", test_init_errors);
	g_test_add_func("/pci_msix/concurrency", test_concurrency);
	return g_test_run();
}
