/*
 * What CPUID tells the guest about itself: the topology that -smp set
 * (leaf 1 logical count and APIC ID, leaf 4 cores per package, leaf 0xB
 * levels), the hypervisor leaves, and the raw feature words that -cpu
 * can change.  One line each, for a test to check.
 */
#include "rt/rt.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
		     : "a"(leaf), "c"(sub));
}

void guest_main(struct bootinfo *bi)
{
	uint32_t r[4], max, sig[4] = { 0 };

	(void)bi;
	cpuid(0, 0, r);
	max = r[0];
	cpuid(1, 0, r);
	printf("cpuid.1 apic_id=%u logical=%u htt=%u hypervisor=%u\n", r[1] >> 24,
	       (r[1] >> 16) & 0xff, (r[3] >> 28) & 1, r[2] >> 31);
	if (max >= 4) {
		cpuid(4, 0, r);
		printf("cpuid.4 cores=%u\n", (r[0] >> 26) + 1);
	}
	if (max >= 0xb) {
		for (uint32_t sub = 0; sub < 4; sub++) {
			cpuid(0xb, sub, r);
			if (((r[2] >> 8) & 0xff) == 0)
				break;
			printf("cpuid.b level=%u type=%u count=%u shift=%u x2apic_id=%u\n", sub,
			       (r[2] >> 8) & 0xff, r[1] & 0xffff, r[0] & 0x1f, r[3]);
		}
	}
	/* The feature words -cpu can change, raw. */
	cpuid(1, 0, r);
	printf("cpuid.raw 1 ecx=%x edx=%x\n", r[2], r[3]);
	if (max >= 7) {
		cpuid(7, 0, r);
		printf("cpuid.raw 7 ebx=%x ecx=%x edx=%x\n", r[1], r[2], r[3]);
	}
	cpuid(0x80000000, 0, r);
	if (r[0] >= 0x80000007) {
		cpuid(0x80000001, 0, r);
		printf("cpuid.raw 80000001 ecx=%x edx=%x\n", r[2], r[3]);
		cpuid(0x80000007, 0, r);
		printf("cpuid.raw 80000007 edx=%x\n", r[3]);
	}
	cpuid(0x40000000, 0, r);
	sig[0] = r[1];
	sig[1] = r[2];
	sig[2] = r[3];
	printf("cpuid.hv signature=%s\n", (const char *)sig);
	guest_exit(EXIT_PASS);
}
