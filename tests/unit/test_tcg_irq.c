/*
 * TCG with the user-space irqchip: a LAPIC self-IPI delivered through the
 * IDT, an IOAPIC interrupt raised by set_irq from another thread waking a
 * halted vCPU, vcpu_kick ending vcpu_run while the vCPU sleeps in hlt,
 * and an AP started by INIT and SIPI.
 */
#include "test_tcg_harness.h"

/* Wait (bounded) until the guest has written n values to the test ports. */
static void wait_outputs(struct tvm *t, unsigned n)
{
	for (unsigned k = 0; k < 20000 && __atomic_load_n(&t->nr_out, __ATOMIC_SEQ_CST) < n; k++)
		g_usleep(1000);
	g_assert_cmpuint(__atomic_load_n(&t->nr_out, __ATOMIC_SEQ_CST), >=, n);
}

/* 32-bit interrupt gate for vector vec at handler h (code selector 0x08). */
static void gate32(struct tvm *t, unsigned vec, uint32_t h)
{
	tm_wr(t, 0x30000 + vec * 8, (h & 0xffff) | (0x08u << 16), 4);
	tm_wr(t, 0x30000 + vec * 8 + 4, (h & 0xffff0000) | 0x8e00, 4);
}

static void setup32(struct tvm *t, unsigned i, uint32_t eip)
{
	tm_flat32(t, i, eip);
	t->c[i]->idt.base = 0x30000;
	t->c[i]->idt.limit = 0x7ff;
	t->c[i]->gpr[R_RSP] = 0x80000 - i * 0x1000;
}

static void test_self_ipi(void)
{
	struct tvm *t = tm_new(16 << 20, 1, true);

	gate32(t, 0x40, 0x2000);
	tm_load_asm(t, 0x2000, ".code32\n"
		"incl 0x5000\n"
		"movl $0, 0xfee000b0\n"			/* EOI */
		"iret\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"orl $0x100, 0xfee000f0\n"		/* software-enable the LAPIC */
		"sti\n"
		"movl $0x44040, 0xfee00300\n"		/* self IPI, fixed, vector 0x40 */
		"nop\n"
		"mov 0x5000, %eax\n"
		"out %eax, $0xf4\n");			/* report, and stop */
	setup32(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_KICK);
	g_assert_cmpuint(t->nr_out, ==, 1);
	g_assert_cmpuint(t->out[0], ==, 1);
	tm_free(t);
}

static void test_ioapic_wakes_hlt(void)
{
	struct tvm *t = tm_new(16 << 20, 1, true);
	struct runner r;

	gate32(t, 0x41, 0x2000);
	tm_load_asm(t, 0x2000, ".code32\n"
		"movl $0, 0xfee000b0\n"
		"mov $0x41, %eax\n"
		"out %eax, $0xf4\n"			/* stop here */
		"iret\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"orl $0x100, 0xfee000f0\n"
		"movl $0x1a, 0xfec00000\n"		/* redirection entry 5, low */
		"movl $0x41, 0xfec00010\n"		/* vector 0x41, edge, unmasked */
		"movl $0x1b, 0xfec00000\n"
		"movl $0, 0xfec00010\n"			/* to APIC 0 */
		"out %eax, $0xf5\n"			/* ready */
		"sti\n"
		"1: hlt\n"
		"jmp 1b\n");
	setup32(t, 0, 0x1000);
	runner_start(&r, t, 0);
	wait_outputs(t, 1);
	/* The vCPU sleeps in hlt (or is about to): the IRQ must wake it. */
	g_assert_cmpint(tcg_accel_ops.set_irq(&t->m, 5, 1), ==, 0);
	g_assert_cmpint(tcg_accel_ops.set_irq(&t->m, 5, 0), ==, 0);
	pthread_join(r.th, NULL);
	g_assert_cmpint(r.reason, ==, ACCEL_EXIT_KICK);
	g_assert_cmpuint(t->nr_out, ==, 2);
	g_assert_cmphex(t->out[1], ==, 0x41);
	tm_free(t);
}

static void test_kick_in_hlt(void)
{
	struct tvm *t = tm_new(16 << 20, 1, true);
	struct runner r;

	tm_load_asm(t, 0x1000, ".code32\n"
		"cli\n"
		"out %eax, $0xf5\n"
		"hlt\n"
		"mov $7, %ebx\n"
		"hlt\n");
	setup32(t, 0, 0x1000);
	runner_start(&r, t, 0);
	wait_outputs(t, 1);
	tcg_accel_ops.vcpu_kick(&t->v[0]);
	pthread_join(r.th, NULL);
	g_assert_cmpint(r.reason, ==, ACCEL_EXIT_KICK);
	/* Kicked, not woken: the vCPU is still in its first hlt. */
	g_assert_cmphex(t->c[0]->gpr[R_RBX], !=, 7);
	tm_free(t);
}

/* The BSP starts the AP with INIT and SIPI; the AP runs real-mode code
 * at the SIPI vector's page. */
static void test_init_sipi(void)
{
	struct tvm *t = tm_new(16 << 20, 2, true);
	struct runner ap;

	tm_load_asm(t, 0x8000, ".code16\n"
		"mov $0x1234, %ax\n"
		"mov %ax, %ds:0x6000\n"
		"out %ax, $0xf4\n"
		"1: hlt\n"
		"jmp 1b\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"orl $0x100, 0xfee000f0\n"
		"movl $0x01000000, 0xfee00310\n"	/* destination APIC 1 */
		"movl $0x00004500, 0xfee00300\n"	/* INIT */
		"movl $0x00004608, 0xfee00300\n"	/* SIPI, vector 8: 0x8000 */
		"mov $0x99, %eax\n"
		"out %eax, $0xf4\n");
	setup32(t, 0, 0x1000);
	g_assert_cmpint(tcg_accel_ops.vcpu_reset(&t->v[1], NULL), ==, 0);
	runner_start(&ap, t, 1);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_KICK);
	pthread_join(ap.th, NULL);
	g_assert_cmpint(ap.reason, ==, ACCEL_EXIT_KICK);
	g_assert_cmphex(tm_rd(t, 0x6000, 2), ==, 0x1234);
	g_assert_cmphex(t->c[1]->seg[S_CS].selector, ==, 0x0800);
	tm_free(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tcg/irq/self-ipi", test_self_ipi);
	g_test_add_func("/tcg/irq/ioapic-wakes-hlt", test_ioapic_wakes_hlt);
	g_test_add_func("/tcg/irq/kick-in-hlt", test_kick_in_hlt);
	g_test_add_func("/tcg/irq/init-sipi", test_init_sipi);
	return g_test_run();
}
