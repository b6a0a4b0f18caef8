/* User-space LAPIC: IPIs, INIT/SIPI, priorities, TPR, timer, MSI, NMI. */
#include <errno.h>

#include "irqchip_fixture.h"

#define ICR_LO 0x300
#define ICR_HI 0x310

static void send_ipi(struct fix *f, unsigned from, uint8_t dest, uint32_t lo)
{
	apic_wr(f, from, ICR_HI, (uint32_t)dest << 24);
	apic_wr(f, from, ICR_LO, lo);
}

static void enable_all(struct fix *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		apic_enable(f, i);
}

static void test_registers(void)
{
	struct fix *f = fix_new(2);

	g_assert_cmphex(apic_rd(f, 0, 0x20), ==, 0);
	g_assert_cmphex(apic_rd(f, 1, 0x20), ==, 1u << 24);
	g_assert_cmphex(apic_rd(f, 1, 0x30), ==, 0x50014);
	g_assert_cmphex(apic_rd(f, 0, 0xe0), ==, 0xffffffff);
	g_assert_cmphex(apic_rd(f, 0, 0xf0), ==, 0xff);
	/* BSP starts in virtual-wire mode: LINT0 unmasked ExtINT. */
	g_assert_cmphex(apic_rd(f, 0, 0x350), ==, 0x700);
	g_assert_cmphex(apic_rd(f, 1, 0x350), ==, 0x10000);
	g_assert_cmphex(irqchip_get_apic_base(f->c, 0), ==, 0xfee00900);
	g_assert_cmphex(irqchip_get_apic_base(f->c, 1), ==, 0xfee00800);
	/* No x2APIC. */
	g_assert_cmpint(irqchip_set_apic_base(f->c, 1, 0xfee00c00), ==, -EINVAL);
	/* Banked per vCPU. */
	apic_wr(f, 0, 0x80, 0x20);
	apic_wr(f, 1, 0x80, 0x30);
	g_assert_cmphex(apic_rd(f, 0, 0x80), ==, 0x20);
	g_assert_cmphex(apic_rd(f, 1, 0x80), ==, 0x30);
	g_assert_cmpuint(irqchip_get_cr8(f->c, 1), ==, 3);
	fix_free(f);
}

static void test_ipi_fixed(void)
{
	struct fix *f = fix_new(2);
	unsigned k = fix_kicks(f, 1);

	enable_all(f, 2);
	send_ipi(f, 0, 1, 0x40);
	g_assert_cmpuint(fix_kicks(f, 1), >, k);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	g_assert_true(irqchip_has_interrupt(f->c, 1));
	g_assert_true(apic_bit(f, 1, APIC_IRR, 0x40));
	/* Delivery status reads idle. */
	g_assert_cmphex(apic_rd(f, 0, ICR_LO) & (1u << 12), ==, 0);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 1), ==, 0x40);
	g_assert_false(apic_bit(f, 1, APIC_IRR, 0x40));
	g_assert_true(apic_bit(f, 1, APIC_ISR, 0x40));
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 1), ==, -1);
	apic_eoi(f, 1);
	g_assert_false(apic_bit(f, 1, APIC_ISR, 0x40));
	/* A software-disabled APIC drops fixed interrupts. */
	apic_wr(f, 1, 0xf0, 0xff);
	send_ipi(f, 0, 1, 0x41);
	g_assert_false(irqchip_has_interrupt(f->c, 1));
	fix_free(f);
}

static void test_ipi_shorthands(void)
{
	struct fix *f = fix_new(4);
	int i;

	enable_all(f, 4);
	send_ipi(f, 2, 0, 0x40000 | 0x41);	/* self */
	for (i = 0; i < 4; i++)
		g_assert_cmpint(apic_bit(f, i, APIC_IRR, 0x41), ==, i == 2);
	send_ipi(f, 1, 0, 0xc0000 | 0x42);	/* all but self */
	for (i = 0; i < 4; i++)
		g_assert_cmpint(apic_bit(f, i, APIC_IRR, 0x42), ==, i != 1);
	send_ipi(f, 1, 0, 0x80000 | 0x43);	/* all including self */
	for (i = 0; i < 4; i++)
		g_assert_true(apic_bit(f, i, APIC_IRR, 0x43));
	/* Physical broadcast 0xff. */
	send_ipi(f, 0, 0xff, 0x44);
	for (i = 0; i < 4; i++)
		g_assert_true(apic_bit(f, i, APIC_IRR, 0x44));
	fix_free(f);
}

static void test_ipi_logical_flat(void)
{
	struct fix *f = fix_new(4);

	enable_all(f, 4);
	for (unsigned i = 0; i < 4; i++)
		apic_wr(f, i, 0xd0, 1u << (24 + i));
	send_ipi(f, 0, 0x06, (1u << 11) | 0x50);
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(apic_bit(f, i, APIC_IRR, 0x50), ==, i == 1 || i == 2);
	fix_free(f);
}

static void test_ipi_logical_cluster(void)
{
	static const uint8_t ldr[4] = { 0x01, 0x02, 0x11, 0x12 };
	struct fix *f = fix_new(4);

	enable_all(f, 4);
	for (unsigned i = 0; i < 4; i++) {
		apic_wr(f, i, 0xe0, 0x0fffffff);
		apic_wr(f, i, 0xd0, (uint32_t)ldr[i] << 24);
	}
	g_assert_cmphex(apic_rd(f, 2, 0xe0), ==, 0x0fffffff);
	send_ipi(f, 0, 0x11, (1u << 11) | 0x51);	/* cluster 1, member 0 */
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(apic_bit(f, i, APIC_IRR, 0x51), ==, i == 2);
	send_ipi(f, 0, 0x03, (1u << 11) | 0x52);	/* cluster 0, members 0 and 1 */
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(apic_bit(f, i, APIC_IRR, 0x52), ==, i < 2);
	send_ipi(f, 0, 0xf2, (1u << 11) | 0x53);	/* every cluster, member 1 */
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(apic_bit(f, i, APIC_IRR, 0x53), ==, i == 1 || i == 3);
	fix_free(f);
}

static void test_init_sipi(void)
{
	struct fix *f = fix_new(2);

	enable_all(f, 2);
	apic_wr(f, 1, 0x80, 0x40);
	/* Linux: INIT assert (level), INIT de-assert, then two SIPIs. */
	send_ipi(f, 0, 1, 0xc500);
	g_assert_cmpuint(f->inits[1], ==, 1);
	g_assert_cmpuint(f->inits[0], ==, 0);
	/* INIT reset the target's APIC but kept its ID. */
	g_assert_cmphex(apic_rd(f, 1, 0x80), ==, 0);
	g_assert_cmphex(apic_rd(f, 1, 0xf0), ==, 0xff);
	g_assert_cmphex(apic_rd(f, 1, 0x20), ==, 1u << 24);
	send_ipi(f, 0, 1, 0x8500);
	g_assert_cmpuint(f->inits[1], ==, 1);
	send_ipi(f, 0, 1, 0x600 | 0x9a);
	g_assert_cmpuint(f->sipis[1], ==, 1);
	g_assert_cmphex(f->sipi_vector[1], ==, 0x9a);
	send_ipi(f, 0, 1, 0x600 | 0x9a);
	g_assert_cmpuint(f->sipis[1], ==, 1);	/* already running */
	g_assert_cmpuint(f->sipis[0], ==, 0);
	fix_free(f);
}

static void test_priority_eoi(void)
{
	struct fix *f = fix_new(1);

	apic_enable(f, 0);
	send_ipi(f, 0, 0, 0x40000 | 0x31);
	send_ipi(f, 0, 0, 0x40000 | 0x51);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x51);
	g_assert_cmphex(apic_rd(f, 0, 0xa0), ==, 0x50);	/* PPR */
	/* Lower and equal classes wait for the EOI... */
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	send_ipi(f, 0, 0, 0x40000 | 0x55);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	/* ...a higher class nests. */
	send_ipi(f, 0, 0, 0x40000 | 0x61);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x61);
	apic_eoi(f, 0);
	g_assert_false(apic_bit(f, 0, APIC_ISR, 0x61));
	g_assert_true(apic_bit(f, 0, APIC_ISR, 0x51));
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	apic_eoi(f, 0);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x55);
	apic_eoi(f, 0);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x31);
	apic_eoi(f, 0);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, -1);
	fix_free(f);
}

static void test_tpr(void)
{
	struct fix *f = fix_new(1);

	apic_enable(f, 0);
	apic_wr(f, 0, 0x80, 0x50);
	send_ipi(f, 0, 0, 0x40000 | 0x45);
	send_ipi(f, 0, 0, 0x40000 | 0x5f);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	irqchip_set_cr8(f->c, 0, 4);
	g_assert_cmphex(apic_rd(f, 0, 0x80), ==, 0x40);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x5f);
	apic_eoi(f, 0);
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	irqchip_set_cr8(f->c, 0, 0);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x45);
	fix_free(f);
}

static void test_esr(void)
{
	struct fix *f = fix_new(1);

	apic_enable(f, 0);
	send_ipi(f, 0, 0, 0x40000 | 0x03);	/* illegal vector */
	g_assert_false(irqchip_has_interrupt(f->c, 0));
	apic_wr(f, 0, 0x280, 0);
	g_assert_cmphex(apic_rd(f, 0, 0x280), ==, 1u << 5);
	apic_wr(f, 0, 0x280, 0);
	g_assert_cmphex(apic_rd(f, 0, 0x280), ==, 0);
	fix_free(f);
}

static void test_nmi(void)
{
	struct fix *f = fix_new(2);

	enable_all(f, 2);
	send_ipi(f, 0, 1, 0x400);
	g_assert_false(irqchip_take_nmi(f->c, 0));
	g_assert_true(irqchip_take_nmi(f->c, 1));
	g_assert_false(irqchip_take_nmi(f->c, 1));
	fix_free(f);
}

static void test_timer_oneshot(void)
{
	struct fix *f = fix_new(1);
	uint32_t cc;

	apic_enable(f, 0);
	apic_wr(f, 0, 0x3e0, 0xb);		/* divide by 1 */
	apic_wr(f, 0, 0x320, 0x70);		/* one-shot, vector 0x70 */
	apic_wr(f, 0, 0x380, 0xffffffff);	/* about 4.3 s */
	cc = apic_rd(f, 0, 0x390);
	g_assert_cmpuint(cc, >, 0);
	g_assert_cmpuint(cc, <=, 0xffffffff);
	apic_wr(f, 0, 0x3e0, 0x3);		/* divide by 16: count keeps going */
	g_assert_cmpuint(apic_rd(f, 0, 0x390), <=, cc);
	apic_wr(f, 0, 0x3e0, 0xb);
	apic_wr(f, 0, 0x380, 1000000);		/* 1 ms */
	g_assert_true(wait_interrupt(f, 0));
	g_assert_cmpuint(fix_kicks(f, 0), >, 0);
	g_assert_cmpuint(apic_rd(f, 0, 0x390), ==, 0);
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x70);
	apic_eoi(f, 0);
	fix_free(f);
}

static void test_timer_periodic(void)
{
	struct fix *f = fix_new(1);

	apic_enable(f, 0);
	apic_wr(f, 0, 0x3e0, 0x0);		/* divide by 2 */
	apic_wr(f, 0, 0x320, 0x20000 | 0x71);	/* periodic */
	apic_wr(f, 0, 0x380, 500000);		/* 1 ms */
	for (int i = 0; i < 3; i++) {
		g_assert_true(wait_interrupt(f, 0));
		g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x71);
		apic_eoi(f, 0);
	}
	g_assert_cmpuint(apic_rd(f, 0, 0x390), <=, 500000);
	/* Masked: counting goes on, no interrupt reaches the IRR. */
	apic_wr(f, 0, 0x320, 0x30000 | 0x71);
	g_assert_cmpuint(apic_rd(f, 0, 0x380), ==, 500000);
	fix_free(f);
}

static void test_timer_tsc_deadline(void)
{
	struct fix *f = fix_new(1);
	uint64_t t0 = irqchip_read_tsc(f->c);

	apic_enable(f, 0);
	/* Deadline writes are ignored outside TSC-deadline mode. */
	irqchip_set_tsc_deadline(f->c, 0, t0 + 1);
	g_assert_cmpuint(irqchip_get_tsc_deadline(f->c, 0), ==, 0);
	apic_wr(f, 0, 0x320, 0x40000 | 0x72);
	irqchip_set_tsc_deadline(f->c, 0, t0 + IRQCHIP_TSC_KHZ);	/* 1 ms */
	g_assert_true(wait_interrupt(f, 0));
	g_assert_cmpint(irqchip_ack_interrupt(f->c, 0), ==, 0x72);
	g_assert_cmpuint(irqchip_get_tsc_deadline(f->c, 0), ==, 0);
	g_assert_cmpuint(irqchip_read_tsc(f->c), >=, t0 + IRQCHIP_TSC_KHZ);
	fix_free(f);
}

static void test_msi(void)
{
	struct fix *f = fix_new(2);
	int n;

	enable_all(f, 2);
	/* Physical destination 1. */
	irqchip_send_msi(f->c, 0xfee01000, 0x4055);
	g_assert_true(apic_bit(f, 1, APIC_IRR, 0x55));
	g_assert_false(apic_bit(f, 0, APIC_IRR, 0x55));
	g_assert_false(apic_bit(f, 1, APIC_TMR, 0x55));
	/* Logical flat destination 0x01 = CPU 0. */
	apic_wr(f, 0, 0xd0, 1u << 24);
	apic_wr(f, 1, 0xd0, 2u << 24);
	irqchip_send_msi(f->c, 0xfee01004, 0x56);
	g_assert_true(apic_bit(f, 0, APIC_IRR, 0x56));
	g_assert_false(apic_bit(f, 1, APIC_IRR, 0x56));
	/* Redirection hint: one of the two, not both. */
	irqchip_send_msi(f->c, 0xfee0300c, 0x57);
	n = apic_bit(f, 0, APIC_IRR, 0x57) + apic_bit(f, 1, APIC_IRR, 0x57);
	g_assert_cmpint(n, ==, 1);
	/* NMI delivery mode. */
	irqchip_send_msi(f->c, 0xfee01000, 0x400);
	g_assert_true(irqchip_take_nmi(f->c, 1));
	/* Lowest priority picks the APIC with the lowest TPR. */
	apic_wr(f, 0, 0x80, 0x80);
	apic_wr(f, 1, 0x80, 0x10);
	for (int i = 0; i < 2; i++) {
		send_ipi(f, 0, 0x03, (1u << 11) | 0x100 | 0x59);
		g_assert_true(apic_bit(f, 1, APIC_IRR, 0x59));
		g_assert_false(apic_bit(f, 0, APIC_IRR, 0x59));
	}
	/* Not an interrupt address: dropped. */
	irqchip_send_msi(f->c, 0xfec01000, 0x58);
	g_assert_false(apic_bit(f, 1, APIC_IRR, 0x58));
	fix_free(f);
}

struct stress {
	struct fix *f;
	unsigned cpu;
	bool stop;
	unsigned taken;
};

static void *stress_vcpu(void *opaque)
{
	struct stress *st = opaque;
	struct fix *f = st->f;
	unsigned n = 0;

	current_vcpu = &f->v[st->cpu];
	while (!__atomic_load_n(&st->stop, __ATOMIC_SEQ_CST)) {
		if (irqchip_ack_interrupt(f->c, st->cpu) >= 0) {
			__atomic_add_fetch(&st->taken, 1, __ATOMIC_SEQ_CST);
			apic_eoi(f, st->cpu);
		}
		if (++n % 64 == 0)
			send_ipi(f, st->cpu, !st->cpu, 0x50);
	}
	return NULL;
}

/*
 * Devices, two vCPUs and kick handlers that call back into the irqchip,
 * all at once: nothing deadlocks and everything ends acknowledged.
 */
static void test_concurrent(void)
{
	struct fix *f = fix_new(2);
	struct stress st[2] = { { .f = f, .cpu = 0 }, { .f = f, .cpu = 1 } };
	pthread_t t[2];

	enable_all(f, 2);
	ioapic_route(f, 10, (1ull << 15) | 0x3a);	/* level, CPU 0 */
	__atomic_store_n(&f->reenter, true, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 2; i++)
		g_assert_cmpint(pthread_create(&t[i], NULL, stress_vcpu, &st[i]), ==, 0);
	for (int i = 0; i < 20000; i++) {
		irqchip_send_msi(f->c, 0xfee00000 | (i & 1) << 12, 0x60 + (i & 15));
		irqchip_set_irq(f->c, 10, i & 1);
	}
	irqchip_set_irq(f->c, 10, 0);
	for (int i = 0; i < 2; i++) {
		/* Whatever the scheduling, each vCPU gets to take something. */
		for (int w = 0; w < 10000 && !__atomic_load_n(&st[i].taken, __ATOMIC_SEQ_CST); w++)
			g_usleep(1000);
		__atomic_store_n(&st[i].stop, true, __ATOMIC_SEQ_CST);
		pthread_join(t[i], NULL);
	}
	for (unsigned cpu = 0; cpu < 2; cpu++) {
		g_assert_cmpuint(st[cpu].taken, >, 0);
		while (irqchip_ack_interrupt(f->c, cpu) >= 0)
			apic_eoi(f, cpu);
		for (unsigned r = 0; r < 8; r++) {
			g_assert_cmphex(apic_rd(f, cpu, APIC_IRR + r * 0x10), ==, 0);
			g_assert_cmphex(apic_rd(f, cpu, APIC_ISR + r * 0x10), ==, 0);
		}
	}
	g_assert_false(ioapic_rd(f, 0x10 + 20) & (1u << 14));
	fix_free(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/irqchip/lapic/registers", test_registers);
	g_test_add_func("/irqchip/lapic/ipi-fixed", test_ipi_fixed);
	g_test_add_func("/irqchip/lapic/ipi-shorthands", test_ipi_shorthands);
	g_test_add_func("/irqchip/lapic/ipi-logical-flat", test_ipi_logical_flat);
	g_test_add_func("/irqchip/lapic/ipi-logical-cluster", test_ipi_logical_cluster);
	g_test_add_func("/irqchip/lapic/init-sipi", test_init_sipi);
	g_test_add_func("/irqchip/lapic/priority-eoi", test_priority_eoi);
	g_test_add_func("/irqchip/lapic/tpr", test_tpr);
	g_test_add_func("/irqchip/lapic/esr", test_esr);
	g_test_add_func("/irqchip/lapic/nmi", test_nmi);
	g_test_add_func("/irqchip/lapic/timer-oneshot", test_timer_oneshot);
	g_test_add_func("/irqchip/lapic/timer-periodic", test_timer_periodic);
	g_test_add_func("/irqchip/lapic/timer-tsc-deadline", test_timer_tsc_deadline);
	g_test_add_func("/irqchip/lapic/msi", test_msi);
	g_test_add_func("/irqchip/lapic/concurrent", test_concurrent);
	return g_test_run();
}
