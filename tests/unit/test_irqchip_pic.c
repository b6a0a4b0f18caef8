/* User-space 8259 pair: Linux's init sequence, cascade, priorities, EOI, ELCR. */
#include "irqchip_fixture.h"

/* What Linux's init_8259A() writes (vectors 0x30 and 0x38). */
static void pic_init_linux(struct fix *f, bool auto_eoi)
{
	outb(f, 0x21, 0xff);
	outb(f, 0xa1, 0xff);
	outb(f, 0x20, 0x11);
	outb(f, 0x21, 0x30);
	outb(f, 0x21, 0x04);
	outb(f, 0x21, auto_eoi ? 0x03 : 0x01);
	outb(f, 0xa0, 0x11);
	outb(f, 0xa1, 0x38);
	outb(f, 0xa1, 0x02);
	outb(f, 0xa1, 0x01);
	outb(f, 0x21, 0xfb);	/* everything masked but the cascade */
	outb(f, 0xa1, 0xff);
}

static uint8_t read_isr(struct fix *f, uint16_t port)
{
	uint8_t v;

	outb(f, port, 0x0b);
	v = inb(f, port);
	outb(f, port, 0x0a);
	return v;
}

static void test_irq0_vector(void)
{
	struct fix *f = fix_new(1);

	pic_init_linux(f, false);
	g_assert_cmphex(inb(f, 0x21), ==, 0xfb);
	irqchip_set_irq(f->c, 0, 0);
	irqchip_set_irq(f->c, 0, 1);
	/* Masked: in IRR (OCW3 read IRR), but no INT. */
	g_assert_cmphex(inb(f, 0x20) & 1, ==, 1);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	outb(f, 0x21, 0xfa);
	g_assert_true(irqchip_has_interrupt(f->c, 0));
	g_assert_cmpuint(fix_kicks(f, 0), >, 0);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x30);
	g_assert_cmphex(read_isr(f, 0x20), ==, 0x01);
	g_assert_cmphex(inb(f, 0x20) & 1, ==, 0);
	outb(f, 0x20, 0x60);	/* specific EOI, IRQ 0 */
	g_assert_cmphex(read_isr(f, 0x20), ==, 0);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	fix_free(f);
}

/* Without a guest init: BIOS-like vectors, all masked, nothing pending. */
static void test_power_on(void)
{
	struct fix *f = fix_new(1);

	g_assert_cmphex(inb(f, 0x21), ==, 0xfb);
	g_assert_cmphex(inb(f, 0xa1), ==, 0xff);
	g_assert_cmphex(inb(f, 0x20), ==, 0);	/* IRR */
	outb(f, 0x21, 0xf8);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	irqchip_set_irq(f->c, 1, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x09);
	fix_free(f);
}

static void test_cascade(void)
{
	struct fix *f = fix_new(1);

	pic_init_linux(f, false);
	outb(f, 0xa1, 0xfe);	/* unmask IRQ 8 (the RTC) */
	irqchip_set_irq(f->c, 8, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x38);
	g_assert_cmphex(read_isr(f, 0xa0), ==, 0x01);
	g_assert_cmphex(read_isr(f, 0x20), ==, 0x04);
	outb(f, 0xa0, 0x60);
	outb(f, 0x20, 0x62);
	g_assert_cmphex(read_isr(f, 0xa0), ==, 0);
	g_assert_cmphex(read_isr(f, 0x20), ==, 0);
	fix_free(f);
}

static void test_priority(void)
{
	struct fix *f = fix_new(1);

	pic_init_linux(f, false);
	outb(f, 0x21, 0xf1);	/* IRQ 1, 2, 3 unmasked */
	irqchip_set_irq(f->c, 3, 1);
	irqchip_set_irq(f->c, 1, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x31);
	/* IRQ 3 is of lower priority than the one in service. */
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	outb(f, 0x20, 0x20);	/* non-specific EOI */
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x33);
	outb(f, 0x20, 0x20);
	g_assert_cmphex(read_isr(f, 0x20), ==, 0);
	/* Nothing pending: nothing to take. */
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, -1);
	fix_free(f);
}

static void test_auto_eoi(void)
{
	struct fix *f = fix_new(1);

	pic_init_linux(f, true);
	outb(f, 0x21, 0xef);
	irqchip_set_irq(f->c, 4, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x34);
	g_assert_cmphex(read_isr(f, 0x20), ==, 0);
	irqchip_set_irq(f->c, 4, 0);
	irqchip_set_irq(f->c, 4, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x34);
	fix_free(f);
}

static void test_elcr_level(void)
{
	struct fix *f = fix_new(1);

	pic_init_linux(f, false);
	outb(f, 0x4d1, 0xff);
	g_assert_cmphex(inb(f, 0x4d1), ==, 0xde);	/* IRQ 8 and 13 stay edge */
	outb(f, 0x4d0, 0xff);
	g_assert_cmphex(inb(f, 0x4d0), ==, 0xf8);
	outb(f, 0xa1, 0xfd);	/* IRQ 9 */
	irqchip_set_irq(f->c, 9, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x39);
	outb(f, 0xa0, 0x20);
	outb(f, 0x20, 0x20);
	/* Level: still asserted, so still requesting. */
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x39);
	outb(f, 0xa0, 0x20);
	outb(f, 0x20, 0x20);
	irqchip_set_irq(f->c, 9, 0);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	fix_free(f);
}

static void test_lint0(void)
{
	struct fix *f = fix_new(2);

	pic_init_linux(f, false);
	outb(f, 0x21, 0xf9);
	apic_enable(f, 0);
	/* LINT0 masked: the 8259 no longer reaches the BSP. */
	apic_wr(f, 0, 0x350, 0x10700);
	irqchip_set_irq(f->c, 1, 1);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	g_assert_false(irqchip_has_interrupt(f->c, 1));
	apic_wr(f, 0, 0x350, 0x700);
	g_assert_true(irqchip_has_interrupt(f->c, 0));
	g_assert_false(irqchip_has_interrupt(f->c, 1));
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x31);
	outb(f, 0x20, 0x20);
	/* APIC globally disabled: INTR goes straight to the CPU. */
	apic_wr(f, 0, 0x350, 0x10700);
	g_assert_cmpint(irqchip_set_apic_base(f->c, 0, 0xfee00100), ==, 0);
	irqchip_set_irq(f->c, 1, 0);
	irqchip_set_irq(f->c, 1, 1);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x31);
	fix_free(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/irqchip/pic/irq0-vector", test_irq0_vector);
	g_test_add_func("/irqchip/pic/power-on", test_power_on);
	g_test_add_func("/irqchip/pic/cascade", test_cascade);
	g_test_add_func("/irqchip/pic/priority", test_priority);
	g_test_add_func("/irqchip/pic/auto-eoi", test_auto_eoi);
	g_test_add_func("/irqchip/pic/elcr-level", test_elcr_level);
	g_test_add_func("/irqchip/pic/lint0", test_lint0);
	return g_test_run();
}
