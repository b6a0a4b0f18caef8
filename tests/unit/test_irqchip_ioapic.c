/* User-space IOAPIC: edge and level pins, remote IRR, EOI, masks, routing. */
#include "irqchip_fixture.h"

#define RTE_LEVEL	(1ull << 15)
#define RTE_MASKED	(1ull << 16)
#define RTE_LOGICAL	(1ull << 11)
#define RTE_REMOTE_IRR	(1u << 14)
#define DEST(d)		((uint64_t)(d) << 56)

static struct fix *setup(void)
{
	struct fix *f = fix_new(2);

	apic_enable(f, 0);
	apic_enable(f, 1);
	return f;
}

static void test_registers(void)
{
	struct fix *f = setup();

	/* Version 0x20, 24 pins. */
	g_assert_cmphex(ioapic_rd(f, 1), ==, 0x170020);
	ioapic_wr(f, 0, 0x05000000);
	g_assert_cmphex(ioapic_rd(f, 0), ==, 0x05000000);
	/* Every pin starts masked. */
	for (unsigned pin = 0; pin < 24; pin++)
		g_assert_cmphex(ioapic_rd(f, 0x10 + 2 * pin), ==, RTE_MASKED);
	ioapic_route(f, 7, DEST(0xab) | RTE_LEVEL | (1 << 13) | 0x37);
	g_assert_cmphex(ioapic_rd(f, 0x10 + 14), ==, RTE_LEVEL | (1 << 13) | 0x37);
	g_assert_cmphex(ioapic_rd(f, 0x11 + 14), ==, 0xab000000);
	fix_free(f);
}

static void test_edge(void)
{
	struct fix *f = setup();

	ioapic_route(f, 4, DEST(1) | 0x34);
	irqchip_set_irq(f->c, 4, 1);
	g_assert_true(apic_bit(f, 1, APIC_IRR, 0x34));
	g_assert_false(apic_bit(f, 1, APIC_TMR, 0x34));
	g_assert_false(apic_bit(f, 0, APIC_IRR, 0x34));
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 1), ==, 0x34);
	apic_eoi(f, 1);
	/* Still high: no new edge. */
	irqchip_set_irq(f->c, 4, 1);
	g_assert_false(irqchip_has_interrupt(f->c, 1));
	irqchip_set_irq(f->c, 4, 0);
	irqchip_set_irq(f->c, 4, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 1), ==, 0x34);
	fix_free(f);
}

static void test_level_remote_irr(void)
{
	struct fix *f = setup();

	ioapic_route(f, 10, DEST(0) | RTE_LEVEL | 0x3a);
	irqchip_set_irq(f->c, 10, 1);
	g_assert_true(ioapic_rd(f, 0x10 + 20) & RTE_REMOTE_IRR);
	g_assert_true(apic_bit(f, 0, APIC_TMR, 0x3a));
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x3a);
	/* Remote IRR holds back re-delivery until the EOI... */
	irqchip_set_irq(f->c, 10, 1);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	/* ...which re-delivers because the line is still asserted. */
	apic_eoi(f, 0);
	g_assert_true(ioapic_rd(f, 0x10 + 20) & RTE_REMOTE_IRR);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x3a);
	irqchip_set_irq(f->c, 10, 0);
	apic_eoi(f, 0);
	g_assert_false(ioapic_rd(f, 0x10 + 20) & RTE_REMOTE_IRR);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	fix_free(f);
}

static void test_eoi_register(void)
{
	struct fix *f = setup();

	ioapic_route(f, 16, DEST(1) | RTE_LEVEL | 0x46);
	irqchip_set_irq(f->c, 16, 1);
	g_assert_true(ioapic_rd(f, 0x10 + 32) & RTE_REMOTE_IRR);
	irqchip_set_irq(f->c, 16, 0);
	/* Directed EOI through the IOAPIC's own register (version 0x20). */
	bus_write(&f->m.mmio, MEM_IOAPIC_BASE + 0x40, 4, 0x46);
	g_assert_false(ioapic_rd(f, 0x10 + 32) & RTE_REMOTE_IRR);
	fix_free(f);
}

static void test_masked(void)
{
	struct fix *f = setup();

	/* A masked edge is lost. */
	ioapic_route(f, 5, DEST(0) | RTE_MASKED | 0x35);
	irqchip_set_irq(f->c, 5, 1);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	ioapic_route(f, 5, DEST(0) | 0x35);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	/* A masked level is delivered when unmasked. */
	ioapic_route(f, 9, DEST(0) | RTE_LEVEL | RTE_MASKED | 0x39);
	irqchip_set_irq(f->c, 9, 1);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	ioapic_route(f, 9, DEST(0) | RTE_LEVEL | 0x39);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x39);
	fix_free(f);
}

static void test_isa_routing(void)
{
	struct fix *f = setup();

	/* IRQ 0 (PIT) arrives on pin 2, as the MADT override says. */
	ioapic_route(f, 2, DEST(1) | 0x30);
	ioapic_route(f, 0, DEST(1) | 0x20);
	irqchip_set_irq(f->c, 0, 0);	/* the idle PIT holds it high */
	irqchip_set_irq(f->c, 0, 1);
	g_assert_true(apic_bit(f, 1, APIC_IRR, 0x30));
	g_assert_false(apic_bit(f, 1, APIC_IRR, 0x20));
	/* Lines outside the IOAPIC are ignored. */
	irqchip_set_irq(f->c, 24, 1);
	irqchip_set_irq(f->c, 1000, 1);
	fix_free(f);
}

static void test_logical(void)
{
	struct fix *f = setup();

	apic_wr(f, 0, 0xd0, 1u << 24);
	apic_wr(f, 1, 0xd0, 2u << 24);
	ioapic_route(f, 11, DEST(0x02) | RTE_LOGICAL | 0x3b);
	irqchip_set_irq(f->c, 11, 1);
	g_assert_true(apic_bit(f, 1, APIC_IRR, 0x3b));
	g_assert_false(apic_bit(f, 0, APIC_IRR, 0x3b));
	/* Lowest priority among both: exactly one takes it. */
	ioapic_route(f, 12, DEST(0x03) | RTE_LOGICAL | (1 << 8) | 0x3c);
	irqchip_set_irq(f->c, 12, 1);
	g_assert_cmpint(apic_bit(f, 0, APIC_IRR, 0x3c) + apic_bit(f, 1, APIC_IRR, 0x3c), ==, 1);
	fix_free(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/irqchip/ioapic/registers", test_registers);
	g_test_add_func("/irqchip/ioapic/edge", test_edge);
	g_test_add_func("/irqchip/ioapic/level-remote-irr", test_level_remote_irr);
	g_test_add_func("/irqchip/ioapic/eoi-register", test_eoi_register);
	g_test_add_func("/irqchip/ioapic/masked", test_masked);
	g_test_add_func("/irqchip/ioapic/isa-routing", test_isa_routing);
	g_test_add_func("/irqchip/ioapic/logical", test_logical);
	return g_test_run();
}
