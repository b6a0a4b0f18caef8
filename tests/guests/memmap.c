/*
 * Print what the boot protocol handed over: the command line and one line
 * per memory map entry ("e820 base=0x... size=0x... type=N").
 */
#include "rt/rt.h"

void guest_main(struct bootinfo *bi)
{
	unsigned i;

	printf("boot=%s\n", bi->proto);
	printf("cmdline=%s\n", bi->cmdline);
	if (!bi->nr_mmap)
		fail("no memory map from the %s boot protocol", bi->proto);
	for (i = 0; i < bi->nr_mmap; i++)
		printf("e820 base=0x%llx size=0x%llx type=%u\n",
		       (unsigned long long)bi->mmap[i].base,
		       (unsigned long long)bi->mmap[i].size, bi->mmap[i].type);
	printf("memmap: %u entries\n", bi->nr_mmap);
	guest_exit(EXIT_PASS);
}
