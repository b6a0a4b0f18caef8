/* The smallest guest: one line on COM1, then a passing exit (status 33). */
#include "rt/rt.h"

void guest_main(struct bootinfo *bi)
{
	printf("Hello from vireo guest\n");
	printf("boot=%s\n", bi->proto);
	guest_exit(EXIT_PASS);
}
