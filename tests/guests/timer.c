/*
 * LAPIC timer: periodic mode, divide by 16, vector 0x40, through an IDT.
 * Takes "ticks=N" interrupts (default 10), EOIs each, prints
 * "timer ticks=N" and exits.  Any other vector fails the test.
 */
#include "rt/rt.h"

#define TIMER_VECTOR	0x40
#define SPURIOUS_VECTOR	0xff
#define LVT_PERIODIC	(1u << 17)
#define LVT_MASKED	(1u << 16)
#define DCR_DIV16	0x3
#define TIMER_COUNT	100000

static volatile unsigned ticks;

static void timer_irq(unsigned vector)
{
	(void)vector;
	ticks++;
	lapic_write(LAPIC_EOI, 0);
}

static void spurious_irq(unsigned vector)
{
	(void)vector;			/* no EOI for a spurious interrupt */
}

void guest_main(struct bootinfo *bi)
{
	unsigned want = cmdline_uint(bi->cmdline, "ticks", 10);
	uint32_t ccr0, ccr1;

	if (!want)
		fail("ticks=0: nothing to wait for");
	/* Firmware may have left the 8259 unmasked with the PIT on vector 8. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	idt_init();
	idt_set_handler(TIMER_VECTOR, timer_irq);
	idt_set_handler(SPURIOUS_VECTOR, spurious_irq);
	lapic_write(LAPIC_SVR, 0x100 | SPURIOUS_VECTOR);
	lapic_write(LAPIC_TIMER_DCR, DCR_DIV16);
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | TIMER_VECTOR);
	lapic_write(LAPIC_TIMER_ICR, TIMER_COUNT);

	/* The counter must run down from the initial count. */
	ccr0 = lapic_read(LAPIC_TIMER_CCR);
	while ((ccr1 = lapic_read(LAPIC_TIMER_CCR)) == ccr0)
		cpu_relax();
	if (ccr0 > TIMER_COUNT || ccr1 > TIMER_COUNT)
		fail("current count 0x%x/0x%x above the initial count 0x%x",
		     ccr0, ccr1, TIMER_COUNT);

	asm volatile("sti");
	while (ticks < want)
		asm volatile("hlt");
	asm volatile("cli");
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | TIMER_VECTOR);
	printf("timer ticks=%u\n", ticks);
	guest_exit(EXIT_PASS);
}
