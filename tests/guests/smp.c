/*
 * SMP bring-up: the BSP starts every AP with INIT-SIPI-SIPI, each CPU
 * prints "cpu apic_id=N" once, and the BSP waits until the number of CPUs
 * it expects ("cpus=N" on the command line, else the enabled LAPICs of the
 * MADT) have reported.  With "wait" on the command line every CPU then
 * halts instead of exiting, so a test can look at the VMM's threads.
 */
#include "rt/rt.h"

#define TRAMP_ADDR	0x3000		/* below 1 MiB, clear of the boot data */
#define ICR_INIT	0x00000500
#define ICR_STARTUP	0x00000600
#define ICR_ASSERT	0x00004000
#define ICR_ALL_BUT_SELF 0x000c0000
#define ICR_BUSY	0x00001000

extern char tramp_start[], tramp_end[];
void ap_main(void);

static struct spinlock print_lock;
static volatile unsigned cpus_up;

static void cpu_report(void)
{
	spin_lock(&print_lock);
	printf("cpu apic_id=%u\n", lapic_id());
	__atomic_add_fetch(&cpus_up, 1, __ATOMIC_SEQ_CST);
	spin_unlock(&print_lock);
}

void ap_main(void)
{
	cpu_report();
	halt_forever();
}

static void delay_cycles(uint64_t n)
{
	uint64_t t0 = rdtsc();

	while (rdtsc() - t0 < n)
		cpu_relax();
}

static void send_ipi(uint32_t icr)
{
	lapic_write(LAPIC_ICR_HI, 0);
	lapic_write(LAPIC_ICR_LO, icr);
	while (lapic_read(LAPIC_ICR_LO) & ICR_BUSY)
		cpu_relax();
}

/* Enabled local APICs (and x2APICs) listed in the MADT; 0 without one. */
static unsigned madt_count_cpus(const struct bootinfo *bi)
{
	uintptr_t madt = acpi_find_table(bi, "APIC");
	uint32_t len, off, flags;
	unsigned n = 0;

	if (!madt)
		return 0;
	len = *(const uint32_t *)(madt + 4);
	for (off = 44; off + 2 <= len;) {
		const uint8_t *e = (const uint8_t *)(madt + off);

		if (e[1] < 2)
			fail("MADT entry at offset %u has length %u", off, e[1]);
		if (e[0] == 0 && e[1] >= 8) {
			memcpy(&flags, e + 4, 4);
			n += flags & 1;
		} else if (e[0] == 9 && e[1] >= 16) {
			memcpy(&flags, e + 8, 4);
			n += flags & 1;
		}
		off += e[1];
	}
	return n;
}

static int tramp_page_is_ram(const struct bootinfo *bi)
{
	unsigned i;

	for (i = 0; i < bi->nr_mmap; i++) {
		const struct mmap_entry *e = &bi->mmap[i];

		if (e->type == 1 && e->base <= TRAMP_ADDR &&
		    e->base + e->size >= TRAMP_ADDR + 0x1000)
			return 1;
	}
	return 0;
}

void guest_main(struct bootinfo *bi)
{
	unsigned expected = cmdline_uint(bi->cmdline, "cpus", 0);
	const char *source = "command line";
	uint64_t t0;

	if (!expected) {
		expected = madt_count_cpus(bi);
		source = "MADT";
	}
	if (!expected)
		fail("no cpus=N on the command line and no CPU in a MADT");
	if (!tramp_page_is_ram(bi))
		fail("trampoline page 0x%x is not RAM in the memory map", TRAMP_ADDR);
	printf("smp: expecting %u cpus (%s)\n", expected, source);

	cpu_report();
	if (expected > 1) {
		memcpy((void *)TRAMP_ADDR, tramp_start, tramp_end - tramp_start);
		lapic_write(LAPIC_SVR, 0x1ff);	/* software-enable, spurious 0xff */
		send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
		delay_cycles(10000000);
		send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (TRAMP_ADDR >> 12));
		delay_cycles(200000);
		send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (TRAMP_ADDR >> 12));
	}
	/* ~10 s at a few GHz: long enough for any VMM, short of the test's timeout. */
	t0 = rdtsc();
	while (cpus_up < expected) {
		if (rdtsc() - t0 > 30000000000ull)
			fail("only %u of %u cpus came up", cpus_up, expected);
		cpu_relax();
	}
	delay_cycles(1000000);
	spin_lock(&print_lock);
	if (cpus_up != expected)
		fail("%u cpus came up, expected %u", cpus_up, expected);
	spin_unlock(&print_lock);
	if (cmdline_has(bi->cmdline, "wait")) {
		printf("smp: %u cpus up, waiting\n", expected);
		halt_forever();
	}
	printf("smp: %u cpus up\n", expected);
	guest_exit(EXIT_PASS);
}
