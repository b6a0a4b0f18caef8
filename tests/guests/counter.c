/*
 * A guest that keeps working until it is stopped: every step it rewrites
 * one page of a 4 MiB buffer and prints "count N sum S", where S is a
 * checksum of the whole buffer.  A test can pause and resume it (the count
 * continues without a gap or a repeat) and, later, move it between hosts
 * (the checksum proves the pages came along).  "steps=N" on the command
 * line exits after N steps; "delay=N" sets the busy-wait between steps in
 * thousands of TSC cycles (default 20000, about 10 ms).
 */
#include "rt/rt.h"

#define BUF_PAGES 1024
#define PAGE 4096

static uint32_t buf[BUF_PAGES * PAGE / 4] __attribute__((aligned(PAGE)));

static uint32_t checksum(void)
{
	uint32_t s = 0;

	for (unsigned i = 0; i < sizeof(buf) / 4; i += 16)
		s = s * 31 + buf[i];
	return s;
}

void guest_main(struct bootinfo *bi)
{
	unsigned long steps = cmdline_uint(bi->cmdline, "steps", 0);
	uint64_t delay = cmdline_uint(bi->cmdline, "delay", 20000) * 1000;
	uint32_t n;

	printf("counter ready\n");
	for (n = 1; !steps || n <= steps; n++) {
		uint32_t page = (n * 2654435761u) % BUF_PAGES;
		uint64_t until = rdtsc() + delay;

		for (unsigned i = 0; i < PAGE / 4; i += 16)
			buf[page * PAGE / 4 + i] = n ^ i;
		printf("count %u sum %08x\n", n, checksum());
		while (rdtsc() < until)
			cpu_relax();
	}
	guest_exit(EXIT_PASS);
}
