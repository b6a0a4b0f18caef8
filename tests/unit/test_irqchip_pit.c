/*
 * User-space 8254: counts read back (latch, read-back, access modes),
 * channel 2 gate and output through port 0x61 as Linux's TSC calibration
 * uses them, and channel 0 ticking IRQ 0 through the 8259 and the IOAPIC.
 * Waits are generous; only counts and output bits are asserted.
 */
#include "irqchip_fixture.h"

static uint16_t latch_read(struct fix *f, unsigned ch)
{
	uint16_t lo, hi;

	outb(f, 0x43, ch << 6);		/* counter latch */
	lo = inb(f, 0x40 + ch);
	hi = inb(f, 0x40 + ch);
	return lo | hi << 8;
}

static void test_mode2_period(void)
{
	struct fix *f = fix_new(1);
	uint16_t v;

	/* 8259 set up as Linux does, IRQ 0 unmasked. */
	outb(f, 0x20, 0x11);
	outb(f, 0x21, 0x30);
	outb(f, 0x21, 0x04);
	outb(f, 0x21, 0x01);
	outb(f, 0x21, 0xfe);

	outb(f, 0x43, 0x34);		/* channel 0, LSB then MSB, mode 2 */
	outb(f, 0x40, 1193 & 0xff);	/* 1 ms */
	outb(f, 0x40, 1193 >> 8);
	v = latch_read(f, 0);
	g_assert_cmpuint(v, >=, 1);
	g_assert_cmpuint(v, <=, 1193);
	/* Read-back of the status: output, access mode 3, mode 2, binary. */
	outb(f, 0x43, 0xe2);
	g_assert_cmphex(inb(f, 0x40) & 0x3f, ==, 0x34);
	/* Several periods, each one interrupt. */
	for (int i = 0; i < 3; i++) {
		g_assert_true(wait_interrupt(f, 0));
		g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x30);
		outb(f, 0x20, 0x60);
	}
	fix_free(f);
}

static void test_ioapic_pin2(void)
{
	struct fix *f = fix_new(1);

	apic_enable(f, 0);
	apic_wr(f, 0, 0x350, 0x10700);	/* 8259 out of the way */
	ioapic_route(f, 2, 0x31);
	outb(f, 0x43, 0x30);		/* channel 0, mode 0: one interrupt */
	outb(f, 0x40, 0x00);
	outb(f, 0x40, 0x10);		/* 4096 counts, ~3.4 ms */
	g_assert_true(wait_interrupt(f, 0));
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x31);
	apic_eoi(f, 0);
	/* Terminal count reached: the output is high in the status byte. */
	outb(f, 0x43, 0xe2);
	g_assert_cmphex(inb(f, 0x40) & 0x80, ==, 0x80);
	fix_free(f);
}

static void test_channel2_gate(void)
{
	struct fix *f = fix_new(1);
	uint16_t a, b;
	unsigned i;

	outb(f, 0x61, inb(f, 0x61) & ~0x03);	/* gate off */
	outb(f, 0x43, 0xb0);			/* channel 2, mode 0 */
	outb(f, 0x42, 0xff);
	outb(f, 0x42, 0xff);
	g_assert_cmphex(inb(f, 0x61) & 0x20, ==, 0);	/* mode 0: output low */
	a = latch_read(f, 2);
	g_usleep(2000);
	b = latch_read(f, 2);
	g_assert_cmphex(a, ==, 0xffff);			/* gate low: not counting */
	g_assert_cmphex(b, ==, 0xffff);

	outb(f, 0x61, (inb(f, 0x61) & ~0x02) | 0x01);	/* gate on, speaker off */
	g_usleep(2000);
	a = latch_read(f, 2);
	g_assert_cmpuint(a, <, 0xffff);
	g_assert_cmphex(inb(f, 0x61) & 0x01, ==, 0x01);

	/* Gate off again: the count holds. */
	outb(f, 0x61, inb(f, 0x61) & ~0x01);
	a = latch_read(f, 2);
	g_usleep(2000);
	g_assert_cmphex(latch_read(f, 2), ==, a);

	/* A short count: OUT2 (bit 5) rises at terminal count. */
	outb(f, 0x61, inb(f, 0x61) | 0x01);
	outb(f, 0x43, 0xb0);
	outb(f, 0x42, 100);
	outb(f, 0x42, 0);
	for (i = 0; i < 10000 && !(inb(f, 0x61) & 0x20); i++)
		g_usleep(1000);
	g_assert_cmphex(inb(f, 0x61) & 0x20, ==, 0x20);
	fix_free(f);
}

static void test_access_modes(void)
{
	struct fix *f = fix_new(1);

	outb(f, 0x61, 0x00);		/* channel 2 held */
	outb(f, 0x43, 0x90);		/* channel 2, LSB only, mode 0 */
	outb(f, 0x42, 0x5a);
	outb(f, 0x43, 0x80);
	g_assert_cmphex(inb(f, 0x42), ==, 0x5a);
	outb(f, 0x43, 0xa0);		/* MSB only */
	outb(f, 0x42, 0x12);
	outb(f, 0x43, 0x80);
	g_assert_cmphex(inb(f, 0x42), ==, 0x12);
	/* Read-back: status then count of channel 2. */
	outb(f, 0x43, 0xc8);
	g_assert_cmphex(inb(f, 0x42), ==, 0x20);	/* out low, MSB, mode 0 */
	g_assert_cmphex(inb(f, 0x42), ==, 0x12);
	/* A latched count stays until read, even across new latches. */
	outb(f, 0x43, 0xb4);		/* LSB then MSB, mode 2 */
	outb(f, 0x42, 0x34);
	outb(f, 0x42, 0x12);
	outb(f, 0x43, 0x80);
	outb(f, 0x43, 0x80);
	g_assert_cmphex(inb(f, 0x42), ==, 0x34);
	g_assert_cmphex(inb(f, 0x42), ==, 0x12);
	fix_free(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/irqchip/pit/mode2-period", test_mode2_period);
	g_test_add_func("/irqchip/pit/ioapic-pin2", test_ioapic_pin2);
	g_test_add_func("/irqchip/pit/channel2-gate", test_channel2_gate);
	g_test_add_func("/irqchip/pit/access-modes", test_access_modes);
	return g_test_run();
}
