/*
 * Ends the VM through a fault, for the final-register checks of
 * test_regdump.py; the command line picks how:
 *   ud      ud2 with the runtime's IDT: the #UD handler reports the
 *           unexpected exception and fails (status 35)
 *   triple  ud2 with an empty IDT: neither the #UD nor the #GP and #DF
 *           that follow can be delivered, so the CPU shuts down (a triple
 *           fault; under -no-reboot the VMM exits 0)
 *   frame   ud2 with a #UD gate of its own that prints the EFLAGS image
 *           the CPU pushed ("fault: #UD frame eflags=0x..."; a fault sets
 *           RF in it) and passes
 * Before the ud2 the general registers hold known values, so the final
 * register dump shows what the fault path kept of them.
 */
#include "rt/rt.h"

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

/* The #UD gate of "frame": [esp] EIP, [esp+4] CS, [esp+8] EFLAGS. */
void ud_frame_stub(void);
void ud_frame_report(uint32_t eflags);
asm(".text\n"
    ".globl ud_frame_stub\n"
    "ud_frame_stub:\n\t"
    "pushl 8(%esp)\n\t"
    "call ud_frame_report\n");

void ud_frame_report(uint32_t eflags)
{
	printf("fault: #UD frame eflags=0x%x\n", eflags);
	guest_exit(EXIT_PASS);
}

static void set_ud_gate(void (*fn)(void))
{
	struct idt_desc d;
	uint8_t *gate;
	uint32_t off = (uint32_t)(uintptr_t)fn;

	asm volatile("sidt %0" : "=m"(d));
	gate = (uint8_t *)(uintptr_t)d.base + 6 * 8;
	gate[0] = off & 0xff;
	gate[1] = (off >> 8) & 0xff;
	gate[6] = (off >> 16) & 0xff;
	gate[7] = off >> 24;
}

static void __attribute__((noreturn)) ud2_with_marks(void)
{
	asm volatile("mov $0x11111111, %%eax\n\t"
		     "mov $0x22222222, %%ebx\n\t"
		     "mov $0x33333333, %%ecx\n\t"
		     "mov $0x44444444, %%edx\n\t"
		     "mov $0x55555555, %%esi\n\t"
		     "mov $0x66666666, %%edi\n\t"
		     "ud2"
		     : : : "eax", "ebx", "ecx", "edx", "esi", "edi", "memory");
	__builtin_unreachable();
}

void guest_main(struct bootinfo *bi)
{
	if (cmdline_has(bi->cmdline, "ud")) {
		idt_init();
		printf("fault: ud2\n");
		ud2_with_marks();
	}
	if (cmdline_has(bi->cmdline, "frame")) {
		idt_init();
		set_ud_gate(ud_frame_stub);
		printf("fault: ud2, own gate\n");
		ud2_with_marks();
	}
	if (cmdline_has(bi->cmdline, "triple")) {
		static const struct idt_desc empty = { 0, 0 };

		printf("fault: triple\n");
		asm volatile("lidt %0" : : "m"(empty));
		ud2_with_marks();
	}
	fail("fault: say ud, frame or triple");
}
