/*
 * Port-I/O exit cost: "n=N" (default 200000) `out`s to an unused port
 * ("port=0x..." to change it, default 0x3000), timed with rdtsc.  Prints
 * "ioloop n=N port=0x... cycles=C" so a benchmark can divide, or subtract
 * the wall time of an n=0 run.
 */
#include "rt/rt.h"

void guest_main(struct bootinfo *bi)
{
	unsigned long n = cmdline_uint(bi->cmdline, "n", 200000);
	uint16_t port = (uint16_t)cmdline_uint(bi->cmdline, "port", 0x3000);
	uint64_t t0, t1;
	unsigned long i;

	t0 = rdtsc();
	for (i = 0; i < n; i++)
		outb(port, 0);
	t1 = rdtsc();
	printf("ioloop n=%lu port=0x%x cycles=%llu\n", n, port,
	       (unsigned long long)(t1 - t0));
	guest_exit(EXIT_PASS);
}
