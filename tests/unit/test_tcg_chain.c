/*
 * TCG: blocks that jump to each other without the run loop.  Generated
 * code follows a link between two blocks of one page by itself
 * (jit_x86.c: gen_goto); each case below breaks if one of the things it
 * checks before doing so is dropped: a kick or interrupt from another
 * thread, an interrupt held back by sti's shadow, a block dropped from
 * the cache, several branches sharing one exit, the CS limit, and the
 * running block's bounds for self-modifying code.  The interpreter runs
 * the same cases through tcg_tb_next.
 */
#include <pthread.h>
#include <time.h>

#include "test_tcg_harness.h"

#define FLAG	0x5000		/* the guest spins until this is nonzero */

/* Wait (bounded) until the guest has written n values to the test ports. */
static bool wait_outputs(struct tvm *t, unsigned n)
{
	for (unsigned k = 0; k < 10000; k++) {
		if (__atomic_load_n(&t->nr_out, __ATOMIC_SEQ_CST) >= n)
			return true;
		g_usleep(1000);
	}
	return false;
}

/*
 * Join the runner; if it has not returned within 10 s, end its spin
 * through FLAG first (so a broken build fails the assertions after
 * this instead of hanging).
 */
static void runner_join(struct runner *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	if (pthread_timedjoin_np(r->th, NULL, &ts)) {
		tm_wr(r->t, FLAG, 1, 4);
		pthread_join(r->th, NULL);
	}
}

/* The guest's spin loop: one block linked to itself. */
#define SPIN	"1: cmpl $0, 0x5000\n" \
		"je 1b\n"

/* vcpu_kick ends a loop of blocks that jump to each other. */
static void test_kick_spin(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct runner r;

	tm_load_asm(t, 0x1000, ".code64\n"
		"out %eax, $0xf5\n"		/* spinning now */
		SPIN
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	runner_start(&r, t, 0);
	g_assert_true(wait_outputs(t, 1));
	g_usleep(20000);		/* well into the loop (not needed to pass) */
	tcg_accel_ops.vcpu_kick(&t->v[0]);
	runner_join(&r);
	g_assert_cmpint(r.reason, ==, ACCEL_EXIT_KICK);
	g_assert_cmphex(tm_rd(t, FLAG, 4), ==, 0);
	tm_free(t);
}

/* 32-bit interrupt gate for vector vec at handler h (code selector 0x08). */
static void gate32(struct tvm *t, unsigned vec, uint32_t h)
{
	tm_wr(t, 0x30000 + vec * 8, (h & 0xffff) | (0x08u << 16), 4);
	tm_wr(t, 0x30000 + vec * 8 + 4, (h & 0xffff0000) | 0x8e00, 4);
}

static void setup32(struct tvm *t, uint32_t eip)
{
	tm_flat32(t, 0, eip);
	t->c[0]->idt.base = 0x30000;
	t->c[0]->idt.limit = 0x7ff;
}

/* An IOAPIC interrupt from another thread reaches a vCPU in such a loop. */
static void test_irq_spin(void)
{
	struct tvm *t = tm_new(16 << 20, 1, true);
	struct runner r;

	gate32(t, 0x41, 0x2000);
	tm_load_asm(t, 0x2000, ".code32\n"
		"movl $1, 0x5000\n"
		"movl $0, 0xfee000b0\n"		/* EOI */
		"iret\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"orl $0x100, 0xfee000f0\n"
		"movl $0x1a, 0xfec00000\n"	/* redirection entry 5 */
		"movl $0x41, 0xfec00010\n"	/* vector 0x41, edge, unmasked */
		"movl $0x1b, 0xfec00000\n"
		"movl $0, 0xfec00010\n"		/* to APIC 0 */
		"sti\n"
		"out %eax, $0xf5\n"		/* spinning now */
		SPIN
		"mov $0x41, %eax\n"
		"out %eax, $0xf4\n");		/* stops the vCPU */
	setup32(t, 0x1000);
	runner_start(&r, t, 0);
	g_assert_true(wait_outputs(t, 1));
	g_usleep(20000);
	g_assert_cmpint(tcg_accel_ops.set_irq(&t->m, 5, 1), ==, 0);
	g_assert_cmpint(tcg_accel_ops.set_irq(&t->m, 5, 0), ==, 0);
	/* Delivered while spinning: the loop ends by itself. */
	g_assert_true(wait_outputs(t, 2));
	runner_join(&r);
	g_assert_cmpint(r.reason, ==, ACCEL_EXIT_KICK);
	g_assert_cmphex(t->out[1], ==, 0x41);
	tm_free(t);
}

/*
 * An interrupt that became pending with IF = 0 is taken right after the
 * instruction following sti, also when the next block is linked to
 * itself: the run loop, which holds it back for sti's shadow, must not
 * let that block jump on.  The handler records how far the loop got.
 */
static void test_sti_shadow(void)
{
	struct tvm *t = tm_new(16 << 20, 1, true);

	gate32(t, 0x40, 0x2000);
	tm_load_asm(t, 0x2000, ".code32\n"
		"mov %ecx, 0x5004\n"
		"movl $0, 0xfee000b0\n"
		"iret\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"orl $0x100, 0xfee000f0\n"
		"xor %ebx, %ebx\n"
		"mov $3, %ecx\n"
		"jmp 2f\n"			/* first pass: link 2: to itself */
		"1: cli\n"
		"movl $0x44040, 0xfee00300\n"	/* self IPI, vector 0x40: pending */
		"nop\n"
		"mov $1000000, %ecx\n"
		"sti\n"
		"2: dec %ecx\n"
		"jnz 2b\n"			/* the block's only exit 1 */
		"jmp 3f\n"
		"3: inc %ebx\n"
		"cmp $1, %ebx\n"
		"je 1b\n"
		"out %eax, $0xf4\n");
	setup32(t, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_KICK);
	/* after one dec in the shadow, not after the whole loop */
	g_assert_cmpuint(tm_rd(t, 0x5004, 4), ==, 1000000 - 1);
	tm_free(t);
}

/*
 * A link to a block that a lookup has since dropped (its bytes changed
 * under it, as by DMA, which no generation tracks) is not followed.
 */
static void test_dropped_block(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x1000, ".code64\n"
		"inc %ecx\n"
		"jmp 1f\n"
		".org 0x100\n"
		"1: add $1, %ebx\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);	/* links 0x1000 -> 0x1100 */
	g_assert_cmphex(c->gpr[R_RBX], ==, 1);
	tm_wr(t, 0x1102, 0x10, 1);				/* add $1 -> add $0x10 */
	c->rip = 0x1100;
	c->halted = false;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);	/* drops the old block */
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x11);
	c->rip = 0x1000;
	c->halted = false;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x21);
	tm_free(t);
}

/*
 * Two conditional branches of one block leave by the same exit to
 * different blocks: the link of that exit holds only the last one.
 */
static void test_shared_exit(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x1000, ".code64\n"
		"xor %ecx, %ecx\n"
		"xor %ebx, %ebx\n"
		"1: inc %ecx\n"
		"test $1, %cl\n"
		"jnz 2f\n"			/* odd */
		"cmp $100, %ecx\n"
		"jb 3f\n"			/* even, below 100 */
		"hlt\n"
		"2: add $1, %ebx\n"
		"jmp 1b\n"
		"3: add $0x100, %ebx\n"
		"jmp 1b\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RBX], ==, 50 + 49 * 0x100);
	tm_free(t);
}

/*
 * Outside 64-bit code the target of a link must be within the CS limit:
 * with a lower limit (as after loading CS from a descriptor with the
 * same base), the jump that was linked raises #GP.
 */
static void test_cs_limit(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	gate32(t, EXC_GP, 0x2000);
	tm_load_asm(t, 0x2000, ".code32\n"
		"mov $0xbad, %esi\n"
		"hlt\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"inc %ecx\n"
		"jmp 1f\n"
		".org 0x800\n"
		"1: inc %edi\n"
		"hlt\n");
	setup32(t, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);	/* links 0x1000 -> 0x1800 */
	g_assert_cmphex(c->gpr[R_RDI], ==, 1);
	c->seg[S_CS].limit = 0x17ff;
	c->rip = 0x1000;
	c->halted = false;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RSI], ==, 0xbad);
	g_assert_cmphex(c->gpr[R_RDI], ==, 1);
	tm_free(t);
}

/*
 * A block entered by a jump from another one stores into its own code:
 * it stops after the store and the patched instruction runs as patched
 * (the soft-MMU compares the store with the bounds of the running block,
 * which the jump must set).  Each pass ends in another page, so the next
 * one starts from the run loop at 1:, which jumps to 2: by itself from
 * pass 3 on; pass 3 stores into the block, the others into data.
 */
static void test_smc_linked(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x1000, ".code64\n"
		"xor %ecx, %ecx\n"
		"xor %r8d, %r8d\n"
		"1: inc %ecx\n"
		"jmp 2f\n"
		"2: lea 3f+1(%rip), %rdi\n"
		"mov $0x5000, %esi\n"
		"cmp $3, %ecx\n"
		"cmovne %rsi, %rdi\n"		/* pass 3 only: into the block */
		"movb $7, (%rdi)\n"
		"3: mov $1, %eax\n"		/* mov $7 from pass 3 on */
		"add %eax, %r8d\n"
		"cmp $4, %ecx\n"
		"jb 4f\n"
		"hlt\n"
		".org 0x1000\n"
		"4: jmp 1b\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_R8], ==, 1 + 1 + 7 + 7);
	tm_free(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	tm_add_both("/tcg/chain", "kick-spin", test_kick_spin);
	tm_add_both("/tcg/chain", "irq-spin", test_irq_spin);
	tm_add_both("/tcg/chain", "sti-shadow", test_sti_shadow);
	tm_add_both("/tcg/chain", "dropped-block", test_dropped_block);
	tm_add_both("/tcg/chain", "shared-exit", test_shared_exit);
	tm_add_both("/tcg/chain", "cs-limit", test_cs_limit);
	tm_add_both("/tcg/chain", "smc-linked", test_smc_linked);
	return g_test_run();
}
