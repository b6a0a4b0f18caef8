/*
 * A guest that dirties memory at a set rate, for auto-converge: it writes
 * one word into each page of a buffer in turn, "pages=N" pages (default
 * 512, at most 4096), and waits "delay=N" thousand TSC cycles after each
 * page (default 1000, about 0.5 ms: ~8 MB/s of dirty pages).  Prints
 * "dirty ready" and then "dirty sweep N" after every sweep over the
 * buffer, so a test sees it running.  The rate is in TSC time, so a guest
 * held still by the migration throttle dirties proportionally less.  Each
 * page must still hold the previous sweep's number when its turn comes: a
 * page a migration lost or sent stale fails the guest.
 */
#include "rt/rt.h"

#define MAX_PAGES 4096
#define PAGE 4096

static volatile uint32_t buf[MAX_PAGES * PAGE / 4] __attribute__((aligned(PAGE)));

void guest_main(struct bootinfo *bi)
{
	unsigned long pages = cmdline_uint(bi->cmdline, "pages", 512);
	uint64_t delay = cmdline_uint(bi->cmdline, "delay", 1000) * 1000;

	if (!pages || pages > MAX_PAGES)
		fail("pages=%lu: 1 to %u", pages, MAX_PAGES);
	printf("dirty ready\n");
	for (uint32_t sweep = 1;; sweep++) {
		for (unsigned long p = 0; p < pages; p++) {
			uint64_t until = rdtsc() + delay;

			if (buf[p * PAGE / 4] != sweep - 1)
				fail("page %lu holds %u in sweep %u", p, buf[p * PAGE / 4], sweep);
			buf[p * PAGE / 4] = sweep;
			while (rdtsc() < until)
				cpu_relax();
		}
		printf("dirty sweep %u\n", sweep);
	}
}
