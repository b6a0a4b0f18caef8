/*
 * Ends the VM through a fault, for the final-register checks of
 * test_regdump.py; the command line picks how:
 *   ud      ud2 with the runtime's IDT: the #UD handler reports the
 *           unexpected exception and fails (status 35)
 *   triple  ud2 with an empty IDT: neither the #UD nor the #GP and #DF
 *           that follow can be delivered, so the CPU shuts down (a triple
 *           fault; under -no-reboot the VMM exits 0)
 * Before the ud2 the general registers hold known values, so the final
 * register dump shows what the fault path kept of them.
 */
#include "rt/rt.h"

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

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
	if (cmdline_has(bi->cmdline, "triple")) {
		static const struct idt_desc empty = { 0, 0 };

		printf("fault: triple\n");
		asm volatile("lidt %0" : : "m"(empty));
		ud2_with_marks();
	}
	fail("fault: say ud or triple");
}
