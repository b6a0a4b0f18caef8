/*
 * A CPU-bound loop for tests/bench/tcg_bench.py: "iters=N" runs N rounds
 * of a small integer loop body (a multiply-add, a rotate, a compare and a
 * branch: the kind of code a translator spends its life in), prints
 * "spin iters=N sum=S" and exits.  The benchmark times it by wall clock
 * against an iters=0 run, so boot and exit costs cancel out.
 */
#include "rt/rt.h"

void guest_main(struct bootinfo *bi)
{
	unsigned long iters = cmdline_uint(bi->cmdline, "iters", 1000000);
	uint32_t sum = 1, n = iters;

	/* asm keeps the compiler from folding the loop away */
	asm volatile("1:	test %1, %1\n"
		     "	jz 2f\n"
		     "	imul $1103515245, %0, %0\n"
		     "	add $12345, %0\n"
		     "	rol $7, %0\n"
		     "	dec %1\n"
		     "	jmp 1b\n"
		     "2:"
		     : "+r"(sum), "+r"(n) : : "cc");
	printf("spin iters=%lu sum=%08x\n", iters, sum);
	guest_exit(EXIT_PASS);
}
