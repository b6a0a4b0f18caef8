/*
 * 32-bit IDT: every vector goes to a stub in isr32.S; a vector without a
 * handler is reported and fails the test, so a stray exception or
 * interrupt can never pass silently.
 */
#include "rt.h"

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t zero, type;
	uint16_t off_hi;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

#define ISR_STUB_SIZE 16

extern char isr_stubs[];
static struct idt_gate idt[256] __attribute__((aligned(8)));
static void (*handlers[256])(unsigned vector);

void isr_dispatch(unsigned vector);

void isr_dispatch(unsigned vector)
{
	if (vector < 256 && handlers[vector]) {
		handlers[vector](vector);
		return;
	}
	fail("unexpected %s vector %u on apic_id=%u",
	     vector < 32 ? "exception" : "interrupt", vector, lapic_id());
}

void idt_init(void)
{
	struct idt_desc d = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };
	unsigned i;

	for (i = 0; i < 256; i++) {
		uint32_t off = (uint32_t)(uintptr_t)(isr_stubs + i * ISR_STUB_SIZE);

		idt[i].off_lo = off & 0xffff;
		idt[i].sel = 0x08;
		idt[i].zero = 0;
		idt[i].type = 0x8e;	/* present, ring 0, 32-bit interrupt gate */
		idt[i].off_hi = off >> 16;
	}
	asm volatile("lidt %0" : : "m"(d));
}

void idt_set_handler(unsigned vector, void (*fn)(unsigned vector))
{
	handlers[vector & 0xff] = fn;
}
