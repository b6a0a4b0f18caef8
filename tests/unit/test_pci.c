/*
 * PCI host: config space through CF8/CFC and ECAM, BAR sizing and moves
 * (the bus mapping must follow), wmask, INTx wiring and the disable bit,
 * BARs placed where they cannot be decoded, system reset.
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

#define CF8 0xCF8
#define CFC 0xCFC

struct fx {
	struct machine m;
	int level[32];			/* last level per GSI */
	unsigned irq_calls;
};

static struct fx *fx_of(struct machine *m)
{
	return (struct fx *)((char *)m - offsetof(struct fx, m));
}

static int fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct fx *f = fx_of(m);

	g_assert_cmpuint(gsi, <, 32);
	f->level[gsi] = level;
	f->irq_calls++;
	return 0;
}

static int fake_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	return 0;
}

static const struct accel_ops fake_accel = {
	.name = "fake", .set_irq = fake_set_irq, .send_msi = fake_send_msi,
};

static struct fx *fx_new(void)
{
	struct fx *f = g_new0(struct fx, 1);
	char err[256];

	pthread_mutex_init(&f->m.lock, NULL);
	bus_init(&f->m.pio, "pio");
	bus_init(&f->m.mmio, "mmio");
	f->m.nr_irq_pins = 24;
	f->m.nr_vcpus = 1;
	f->m.accel = &fake_accel;
	g_assert_cmpint(guest_mem_init(&f->m.mem, 64 << 20, NULL, false, err, sizeof(err)), ==, 0);
	g_assert_cmpint(pci_host_init(&f->m, err, sizeof(err)), ==, 0);
	return f;
}

static void fx_free(struct fx *f)
{
	pci_host_destroy(&f->m);
	guest_mem_destroy(&f->m.mem);
	bus_destroy(&f->m.pio);
	bus_destroy(&f->m.mmio);
	g_free(f);
}

/* Config access through mechanism #1. */
static uint32_t cf8_read(struct fx *f, unsigned slot, unsigned reg, unsigned size)
{
	bus_write(&f->m.pio, CF8, 4, 0x80000000u | slot << 11 | (reg & 0xFC));
	return bus_read(&f->m.pio, CFC + (reg & 3), size);
}

static void cf8_write(struct fx *f, unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
	bus_write(&f->m.pio, CF8, 4, 0x80000000u | slot << 11 | (reg & 0xFC));
	bus_write(&f->m.pio, CFC + (reg & 3), size, v);
}

static uint64_t ecam_addr(unsigned bus, unsigned slot, unsigned reg)
{
	return MEM_PCI_ECAM_BASE + ((uint64_t)bus << 20 | slot << 15 | reg);
}

static uint32_t ecam_read(struct fx *f, unsigned slot, unsigned reg, unsigned size)
{
	return bus_read(&f->m.mmio, ecam_addr(0, slot, reg), size);
}

static void ecam_write(struct fx *f, unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
	bus_write(&f->m.mmio, ecam_addr(0, slot, reg), size, v);
}

/* A device whose BARs answer with a tag and the offset. */
struct tdev {
	struct pci_device pci;
	unsigned tag;
	uint64_t last_write;
};

static uint64_t tdev_read(void *opaque, uint64_t off, unsigned size)
{
	struct tdev *t = opaque;

	return (uint64_t)t->tag << 16 | off;
}

static void tdev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct tdev *t = opaque;

	t->last_write = val;
}

static const struct bus_ops tdev_ops = { .read = tdev_read, .write = tdev_write };

/* BAR0 4 KiB memory, BAR1 32 ports, BAR2+3 a 16 KiB 64-bit prefetchable BAR. */
static struct tdev *tdev_new(struct fx *f, int slot, unsigned tag)
{
	struct tdev *t = g_new0(struct tdev, 1);
	char err[256];

	t->tag = tag;
	pci_device_init(&t->pci, "tdev", 0x1234, 0x5678, 0xFF0000, 3);
	pci_set_bar(&t->pci, 0, PCI_BAR_MEM32, 0x1000, false, &tdev_ops, t);
	pci_set_bar(&t->pci, 1, PCI_BAR_IO, 32, false, &tdev_ops, t);
	pci_set_bar(&t->pci, 2, PCI_BAR_MEM64, 0x4000, true, &tdev_ops, t);
	g_assert_cmpint(pci_device_register(&f->m, &t->pci, slot, err, sizeof(err)), ==, 0);
	return t;
}

static void tdev_free(struct tdev *t)
{
	pci_device_unregister(&t->pci);
	g_free(t);
}

static void test_host_bridge(void)
{
	struct fx *f = fx_new();

	g_assert_cmphex(cf8_read(f, 0, 0, 4), ==, 0x29C08086);
	g_assert_cmphex(cf8_read(f, 0, 8, 4) >> 8, ==, 0x060000);
	g_assert_cmphex(ecam_read(f, 0, 0, 4), ==, 0x29C08086);
	/* The address register reads back what was written. */
	bus_write(&f->m.pio, CF8, 4, 0x80001234);
	g_assert_cmphex(bus_read(&f->m.pio, CF8, 4), ==, 0x80001234);
	/* Nothing in slot 7, no function 1, no bus 1. */
	g_assert_cmphex(cf8_read(f, 7, 0, 4), ==, 0xFFFFFFFF);
	bus_write(&f->m.pio, CF8, 4, 0x80000100);
	g_assert_cmphex(bus_read(&f->m.pio, CFC, 4), ==, 0xFFFFFFFF);
	g_assert_cmphex(bus_read(&f->m.mmio, ecam_addr(1, 0, 0), 4), ==, 0xFFFFFFFF);
	g_assert_cmphex(bus_read(&f->m.mmio, ecam_addr(0, 0, 0) | 1 << 12, 4), ==, 0xFFFFFFFF);
	/* With the enable bit clear, CFC decodes nothing. */
	bus_write(&f->m.pio, CF8, 4, 0x00000000);
	g_assert_cmphex(bus_read(&f->m.pio, CFC, 4), ==, 0xFFFFFFFF);
	/* Hostile accesses: unaligned ECAM, a word straddling CFF. */
	g_assert_cmphex(bus_read(&f->m.mmio, ecam_addr(0, 0, 1), 2), ==, 0xFFFF);
	bus_write(&f->m.pio, CF8, 4, 0x80000000);
	g_assert_cmphex(bus_read(&f->m.pio, CFC + 3, 2), ==, 0xFFFF);
	fx_free(f);
}

static void test_cf8_ecam_agree(void)
{
	struct fx *f = fx_new();
	struct tdev *t = tdev_new(f, 3, 1);

	cf8_write(f, 3, 0x3C, 1, 0x5A);		/* interrupt line */
	ecam_write(f, 3, 0x0D, 1, 0x40);	/* latency timer */
	cf8_write(f, 3, 0x0C, 1, 0x10);		/* cache line size */
	for (unsigned reg = 0; reg < 256; reg += 4)
		g_assert_cmphex(cf8_read(f, 3, reg, 4), ==, ecam_read(f, 3, reg, 4));
	for (unsigned reg = 0; reg < 64; reg++) {
		g_assert_cmphex(cf8_read(f, 3, reg, 1), ==, ecam_read(f, 3, reg, 1));
		if (!(reg & 1))
			g_assert_cmphex(cf8_read(f, 3, reg, 2), ==, ecam_read(f, 3, reg, 2));
	}
	g_assert_cmphex(ecam_read(f, 3, 0x3C, 1), ==, 0x5A);
	g_assert_cmphex(cf8_read(f, 3, 0x0C, 2), ==, 0x4010);
	g_assert_cmphex(ecam_read(f, 3, 0, 4), ==, 0x56781234);
	g_assert_cmphex(ecam_read(f, 3, 8, 4), ==, 0xFF000003);
	tdev_free(t);
	fx_free(f);
}

static void test_wmask(void)
{
	struct fx *f = fx_new();
	struct tdev *t = tdev_new(f, 2, 1);
	uint32_t status_cmd = ecam_read(f, 2, 4, 4);

	ecam_write(f, 2, 0, 4, 0xFFFFFFFF);		/* IDs are read-only */
	g_assert_cmphex(ecam_read(f, 2, 0, 4), ==, 0x56781234);
	ecam_write(f, 2, 8, 4, 0);			/* class and revision too */
	g_assert_cmphex(ecam_read(f, 2, 8, 4), ==, 0xFF000003);
	ecam_write(f, 2, 0x3D, 1, 3);			/* interrupt pin */
	g_assert_cmphex(ecam_read(f, 2, 0x3D, 1), ==, 1);
	ecam_write(f, 2, 0x3C, 1, 0x77);		/* interrupt line is scratch */
	g_assert_cmphex(ecam_read(f, 2, 0x3C, 1), ==, 0x77);
	/* Status is read-only here; of the command word only the defined bits stick. */
	ecam_write(f, 2, 4, 4, 0xFFFFFFFF);
	g_assert_cmphex(ecam_read(f, 2, 6, 2), ==, status_cmd >> 16);
	g_assert_cmphex(ecam_read(f, 2, 4, 2), ==, 0x0547);
	ecam_write(f, 2, 4, 2, status_cmd & 0xFFFF);
	g_assert_cmphex(ecam_read(f, 2, 4, 2), ==, status_cmd & 0xFFFF);
	/* No expansion ROM: its BAR is hard-wired to zero. */
	ecam_write(f, 2, 0x30, 4, 0xFFFFFFFF);
	g_assert_cmphex(ecam_read(f, 2, 0x30, 4), ==, 0);
	tdev_free(t);
	fx_free(f);
}

static void test_bar_assignment(void)
{
	struct fx *f = fx_new();
	struct tdev *a = tdev_new(f, -1, 1), *b = tdev_new(f, -1, 2);

	/* First free slots after the host bridge. */
	g_assert_cmpuint(a->pci.devfn, ==, 1 << 3);
	g_assert_cmpuint(b->pci.devfn, ==, 2 << 3);
	/* Firmware-like placement: naturally aligned, decoding and mastering on. */
	g_assert_cmphex(a->pci.bar[0].addr, ==, MEM_PCI_MMIO32_BASE);
	g_assert_cmphex(a->pci.bar[2].addr, ==, MEM_PCI_MMIO32_BASE + 0x4000);
	g_assert_cmphex(a->pci.bar[1].addr, ==, 0xC000);
	g_assert_cmphex(b->pci.bar[0].addr, ==, MEM_PCI_MMIO32_BASE + 0x8000);
	g_assert_cmphex(b->pci.bar[1].addr, ==, 0xC020);
	g_assert_cmphex(ecam_read(f, 1, 4, 2) & 7, ==, 7);
	g_assert_cmphex(ecam_read(f, 1, 0x10, 4), ==, MEM_PCI_MMIO32_BASE);
	g_assert_cmphex(ecam_read(f, 1, 0x14, 4), ==, 0xC001);
	g_assert_cmphex(ecam_read(f, 1, 0x18, 4), ==, (MEM_PCI_MMIO32_BASE + 0x4000) | 0xC);
	g_assert_cmphex(ecam_read(f, 1, 0x1C, 4), ==, 0);
	/* And the guest reaches each device through them. */
	g_assert_cmphex(bus_read(&f->m.mmio, MEM_PCI_MMIO32_BASE + 0x10, 4), ==, 0x10010);
	g_assert_cmphex(bus_read(&f->m.mmio, MEM_PCI_MMIO32_BASE + 0x8004, 4), ==, 0x20004);
	g_assert_cmphex(bus_read(&f->m.pio, 0xC021, 1), ==, 0x20001);
	bus_write(&f->m.mmio, MEM_PCI_MMIO32_BASE + 0x4008, 4, 0xABCD);
	g_assert_cmphex(a->last_write, ==, 0xABCD);
	tdev_free(b);
	tdev_free(a);
	fx_free(f);
}

static void test_bar_sizing_and_move(void)
{
	struct fx *f = fx_new();
	struct tdev *t = tdev_new(f, 4, 9);
	uint64_t old = t->pci.bar[0].addr, moved = MEM_PCI_MMIO32_BASE + 0x100000;

	/* Sizing: all ones in, size mask and type bits out. */
	cf8_write(f, 4, 0x10, 4, 0xFFFFFFFF);
	g_assert_cmphex(cf8_read(f, 4, 0x10, 4), ==, 0xFFFFF000);
	cf8_write(f, 4, 0x14, 4, 0xFFFFFFFF);
	g_assert_cmphex(cf8_read(f, 4, 0x14, 4), ==, 0xFFFFFFE1);
	cf8_write(f, 4, 0x18, 4, 0xFFFFFFFF);
	cf8_write(f, 4, 0x1C, 4, 0xFFFFFFFF);
	g_assert_cmphex(cf8_read(f, 4, 0x18, 4), ==, 0xFFFFC00C);
	g_assert_cmphex(cf8_read(f, 4, 0x1C, 4), ==, 0xFFFFFFFF);
	/* While the register holds the size mask, nothing is decoded. */
	g_assert_cmphex(t->pci.bar[0].addr, ==, 0);
	g_assert_cmphex(bus_read(&f->m.mmio, old, 4), ==, 0xFFFFFFFF);

	/* Move BAR0 (ECAM), BAR1 (CFC), BAR2 high above 4G. */
	ecam_write(f, 4, 0x10, 4, moved);
	cf8_write(f, 4, 0x14, 4, 0xD000);
	ecam_write(f, 4, 0x18, 4, 0);
	ecam_write(f, 4, 0x1C, 4, 0x10);
	g_assert_cmphex(t->pci.bar[0].addr, ==, moved);
	g_assert_cmphex(bus_read(&f->m.mmio, moved + 0x20, 4), ==, 0x90020);
	g_assert_cmphex(bus_read(&f->m.mmio, old + 0x20, 4), ==, 0xFFFFFFFF);
	g_assert_cmphex(bus_read(&f->m.pio, 0xD004, 2), ==, 0x90004);
	g_assert_cmphex(bus_read(&f->m.pio, 0xC004, 2), ==, 0xFFFF);
	g_assert_cmphex(t->pci.bar[2].addr, ==, 0x1000000000ull);
	g_assert_cmphex(bus_read(&f->m.mmio, 0x1000000008ull, 8), ==, 0x90008);

	/* Memory decoding off: gone; on again: back where the BAR says. */
	ecam_write(f, 4, 4, 2, PCI_COMMAND_IO);
	g_assert_cmphex(bus_read(&f->m.mmio, moved, 4), ==, 0xFFFFFFFF);
	g_assert_cmphex(bus_read(&f->m.pio, 0xD000, 1), ==, 0x90000);
	ecam_write(f, 4, 4, 2, PCI_COMMAND_MEMORY);
	g_assert_cmphex(bus_read(&f->m.mmio, moved, 4), ==, 0x90000);
	g_assert_cmphex(bus_read(&f->m.pio, 0xD000, 1), ==, 0xFF);
	g_assert_cmphex(t->pci.bar[1].addr, ==, 0);
	tdev_free(t);
	fx_free(f);
}

static void test_bar_conflicts(void)
{
	struct fx *f = fx_new();
	struct tdev *a = tdev_new(f, 1, 1), *b = tdev_new(f, 2, 2);
	uint64_t a0 = a->pci.bar[0].addr, b0 = b->pci.bar[0].addr;

	/* Over RAM: not mapped, and RAM is untouched. */
	ecam_write(f, 1, 0x10, 4, 0x100000);
	g_assert_cmphex(a->pci.bar[0].addr, ==, 0);
	g_assert_cmphex(ecam_read(f, 1, 0x10, 4), ==, 0x100000);
	/* Over the other device's BAR: not mapped, b keeps decoding. */
	ecam_write(f, 1, 0x10, 4, b0);
	g_assert_cmphex(a->pci.bar[0].addr, ==, 0);
	g_assert_cmphex(bus_read(&f->m.mmio, b0, 4), ==, 0x20000);
	/* b leaves: a, still programmed there, now decodes. */
	ecam_write(f, 2, 0x10, 4, a0);
	g_assert_cmphex(b->pci.bar[0].addr, ==, a0);
	g_assert_cmphex(a->pci.bar[0].addr, ==, b0);
	g_assert_cmphex(bus_read(&f->m.mmio, b0, 4), ==, 0x10000);
	g_assert_cmphex(bus_read(&f->m.mmio, a0, 4), ==, 0x20000);
	/* Over ECAM, over the config ports, past 64 KiB of ports. */
	ecam_write(f, 1, 0x10, 4, MEM_PCI_ECAM_BASE);
	g_assert_cmphex(a->pci.bar[0].addr, ==, 0);
	g_assert_cmphex(ecam_read(f, 1, 0, 4), ==, 0x56781234);
	ecam_write(f, 1, 0x14, 4, 0xCE0);
	g_assert_cmphex(a->pci.bar[1].addr, ==, 0);
	g_assert_cmphex(bus_read(&f->m.pio, CF8, 4), !=, 0xFFFFFFFF);
	ecam_write(f, 1, 0x14, 4, 0x1FFE0);
	g_assert_cmphex(a->pci.bar[1].addr, ==, 0);
	/* A 64-bit BAR half-way through sizing decodes nothing; then it lands high. */
	ecam_write(f, 1, 0x1C, 4, 0xFFFFFFFFu);
	g_assert_cmphex(a->pci.bar[2].addr, ==, 0);
	ecam_write(f, 1, 0x18, 4, 0);
	ecam_write(f, 1, 0x1C, 4, 0x20);
	g_assert_cmphex(a->pci.bar[2].addr, ==, 0x2000000000ull);
	tdev_free(b);
	tdev_free(a);
	fx_free(f);
}

static void test_intx(void)
{
	struct fx *f = fx_new();
	struct tdev *a = tdev_new(f, 1, 1), *b = tdev_new(f, 5, 2), *c = tdev_new(f, 2, 3);

	/* INTA of slot n goes to GSI 16 + (n & 3), and the line register says so. */
	g_assert_cmpuint(a->pci.gsi, ==, 17);
	g_assert_cmpuint(b->pci.gsi, ==, 17);
	g_assert_cmpuint(c->pci.gsi, ==, 18);
	g_assert_cmphex(ecam_read(f, 1, 0x3C, 2), ==, 0x0111);
	g_assert_cmphex(ecam_read(f, 2, 0x3C, 1), ==, 18);

	pci_set_irq(&a->pci, 1);
	g_assert_cmpint(f->level[17], ==, 1);
	g_assert_cmphex(ecam_read(f, 1, 6, 2) & PCI_STATUS_INTERRUPT, !=, 0);
	/* The line is shared: it stays up until the last device lowers it. */
	pci_set_irq(&b->pci, 1);
	pci_set_irq(&a->pci, 0);
	g_assert_cmpint(f->level[17], ==, 1);
	g_assert_cmphex(ecam_read(f, 1, 6, 2) & PCI_STATUS_INTERRUPT, ==, 0);
	pci_set_irq(&b->pci, 0);
	g_assert_cmpint(f->level[17], ==, 0);
	g_assert_cmpint(f->level[18], ==, 0);

	/* INTX_DISABLE masks the output, not the status. */
	pci_set_irq(&c->pci, 1);
	g_assert_cmpint(f->level[18], ==, 1);
	ecam_write(f, 2, 4, 2, ecam_read(f, 2, 4, 2) | PCI_COMMAND_INTX_DISABLE);
	g_assert_cmpint(f->level[18], ==, 0);
	g_assert_cmphex(ecam_read(f, 2, 6, 2) & PCI_STATUS_INTERRUPT, !=, 0);
	pci_set_irq(&c->pci, 0);
	pci_set_irq(&c->pci, 1);
	g_assert_cmpint(f->level[18], ==, 0);
	ecam_write(f, 2, 4, 2, ecam_read(f, 2, 4, 2) & ~PCI_COMMAND_INTX_DISABLE);
	g_assert_cmpint(f->level[18], ==, 1);
	/* Unplugging an asserting device releases its share of the line. */
	tdev_free(c);
	g_assert_cmpint(f->level[18], ==, 0);
	tdev_free(b);
	tdev_free(a);
	fx_free(f);
}

static void test_reset(void)
{
	struct fx *f = fx_new();
	struct tdev *t = tdev_new(f, 1, 1);
	uint64_t bar0 = t->pci.bar[0].addr;

	ecam_write(f, 1, 0x10, 4, MEM_PCI_MMIO32_BASE + 0x200000);
	ecam_write(f, 1, 4, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	ecam_write(f, 1, 0x3C, 1, 0x33);
	pci_set_irq(&t->pci, 1);
	for (struct device *d = f->m.devices; d; d = d->next)
		if (d->reset)
			d->reset(d);
	/* As registered: BAR back, decoding and INTx as the VMM set them up. */
	g_assert_cmphex(t->pci.bar[0].addr, ==, bar0);
	g_assert_cmphex(bus_read(&f->m.mmio, bar0, 4), ==, 0x10000);
	g_assert_cmphex(bus_read(&f->m.mmio, MEM_PCI_MMIO32_BASE + 0x200000, 4), ==, 0xFFFFFFFF);
	g_assert_cmphex(ecam_read(f, 1, 4, 2), ==, 7);
	g_assert_cmphex(ecam_read(f, 1, 0x3C, 1), ==, 17);
	g_assert_cmphex(ecam_read(f, 1, 6, 2) & PCI_STATUS_INTERRUPT, ==, 0);
	tdev_free(t);
	fx_free(f);
}

static void test_register_errors(void)
{
	struct fx *f = fx_new();
	struct tdev *a = tdev_new(f, 6, 1);
	struct pci_device d = { 0 };
	char err[256];

	pci_device_init(&d, "bad", 1, 2, 0, 0);
	g_assert_cmpint(pci_device_register(&f->m, &d, 6, err, sizeof(err)), ==, -EBUSY);
	g_assert_nonnull(strstr(err, "slot 6"));
	g_assert_cmpint(pci_device_register(&f->m, &d, 32, err, sizeof(err)), ==, -EINVAL);
	pci_set_bar(&d, 0, PCI_BAR_MEM32, 0x3000, false, &tdev_ops, NULL);
	g_assert_cmpint(pci_device_register(&f->m, &d, -1, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "BAR0"));
	tdev_free(a);
	fx_free(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pci/host_bridge", test_host_bridge);
	g_test_add_func("/pci/cf8_ecam_agree", test_cf8_ecam_agree);
	g_test_add_func("/pci/wmask", test_wmask);
	g_test_add_func("/pci/bar_assignment", test_bar_assignment);
	g_test_add_func("/pci/bar_sizing_and_move", test_bar_sizing_and_move);
	g_test_add_func("/pci/bar_conflicts", test_bar_conflicts);
	g_test_add_func("/pci/intx", test_intx);
	g_test_add_func("/pci/reset", test_reset);
	g_test_add_func("/pci/register_errors", test_register_errors);
	return g_test_run();
}
