/*
 * TCG soft-MMU and privilege: 4-level, PAE and 32-bit page walks with
 * accessed/dirty bits, #PF error codes and CR2 (not present, write
 * protect, NX, reserved bit, user/supervisor), restart of the faulting
 * instruction, interrupts with a privilege change through the TSS (RSP0
 * and IST), syscall/sysret, and the dirty log.
 */
#include "test_tcg_harness.h"

#define PML4 0x10000
#define PDPT 0x11000
#define PD 0x12000
#define PT 0x13000
#define LOG 0x5000		/* count, then (error code, cr2, rsp) triples */

#define P 1ull
#define W 2ull
#define U 4ull
#define A 0x20ull
#define D 0x40ull
#define NX (1ull << 63)

/*
 * iretq to user code at 0x108000, stack at 0x90000 (SS 0x2b), with code
 * segment cs (0x33: 64-bit, 0x23: 32-bit) and rflags (0x3202: IOPL 3,
 * for port I/O).
 */
#define TO_USER(cs, rflags)						\
	"pushq $0x2b\n"							\
	"pushq $0x90000\n"						\
	"pushq $" #rflags "\n"						\
	"pushq $" #cs "\n"						\
	"pushq $0x108000\n"						\
	"iretq\n"

/* Page tables: 0-2 MiB in 4 KiB pages (supervisor read/write), the rest
 * of the first GiB in 2 MiB pages. */
static void map4(struct tvm *t)
{
	tm_wr(t, PML4, PDPT | P | W | U, 8);
	tm_wr(t, PDPT, PD | P | W | U, 8);
	tm_wr(t, PD, PT | P | W | U, 8);
	for (uint64_t k = 1; k < 512; k++)
		tm_wr(t, PD + k * 8, (k << 21) | 0x83, 8);
	for (uint64_t k = 0; k < 512; k++)
		tm_wr(t, PT + k * 8, (k << 12) | P | W, 8);
}

static void gate64(struct tvm *t, unsigned vec, uint64_t h, unsigned dpl, unsigned ist)
{
	uint64_t lo = (h & 0xffff) | (0x10ull << 16) | ((uint64_t)ist << 32) |
		      ((0x8eull | (dpl << 5)) << 40) | ((h >> 16 & 0xffff) << 48);

	tm_wr(t, 0x30000 + vec * 16, lo, 8);
	tm_wr(t, 0x30000 + vec * 16 + 8, h >> 32, 8);
}

/* #PF handler: log (error code, cr2, rsp), map the page identity,
 * present, writable, user and executable, and retry the instruction. */
static const char pf_handler[] =
	".code64\n"
	"push %rax; push %rbx\n"
	"mov LOG, %rbx\n"
	"imul $24, %rbx\n"
	"mov 16(%rsp), %rax; mov %rax, LOG+8(%rbx)\n"
	"mov %cr2, %rax; mov %rax, LOG+16(%rbx)\n"
	"mov %rsp, LOG+24(%rbx)\n"
	"incq LOG\n"
	"shr $12, %rax; and $511, %eax\n"
	"lea PT(,%rax,8), %rbx\n"
	"mov %cr2, %rax; and $-4096, %rax\n"	/* identity frame, no NX */
	"or $7, %rax\n"
	"mov %rax, (%rbx)\n"
	"mov %cr2, %rax; invlpg (%rax)\n"
	"pop %rbx; pop %rax\n"
	"add $8, %rsp\n"
	"iretq\n";

static char *with_syms(const char *src)
{
	return g_strdup_printf(".set LOG, %#x\n.set PT, %#x\n%s", LOG, PT, src);
}

static void setup64(struct tvm *t, const char *kernel)
{
	struct tcg_cpu *c = t->c[0];
	char *s;

	tm_long64(t, 0, 0x1000);
	map4(t);
	c->cr3 = PML4;
	c->cr0 |= CR0_WP;
	c->efer |= EFER_NXE;
	/* TSS: RSP0 0x70000, IST1 0x60000; loaded as TR 0x38 */
	tm_wr(t, 0x20100 + 4, 0x70000, 8);
	tm_wr(t, 0x20100 + 0x24, 0x60000, 8);
	c->tr.selector = 0x38;
	c->tr.base = 0x20100;
	c->tr.limit = 0x67;
	c->tr.type = 0xb;
	c->tr.present = 1;
	c->tr.unusable = 0;
	c->idt.base = 0x30000;
	c->idt.limit = 0xfff;
	s = with_syms(pf_handler);
	tm_load_asm(t, 0x2000, s);
	g_free(s);
	gate64(t, 14, 0x2000, 0, 0);
	s = with_syms(kernel);
	tm_load_asm(t, 0x1000, s);
	g_free(s);
}

static uint64_t log_at(struct tvm *t, unsigned k, unsigned field)
{
	return tm_rd(t, LOG + 8 + k * 24 + field * 8, 8);
}

/* The handler logged exactly one #PF: error code err at CR2 addr. */
static void assert_one_pf(struct tvm *t, uint64_t err, uint64_t addr)
{
	g_assert_cmpuint(tm_rd(t, LOG, 8), ==, 1);
	g_assert_cmphex(log_at(t, 0, 0), ==, err);
	g_assert_cmphex(log_at(t, 0, 1), ==, addr);
}

static void test_pf_codes64(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"mov 0x100000, %rax\n"		/* read: sets A only */
		"movq $5, 0x101000\n"		/* write: sets A and D */
		"mov 0x102008, %rbx\n"		/* not present, read */
		"movl $7, 0x103010\n"		/* not present, write */
		"movb $1, 0x104000\n"		/* read-only, CR0.WP: write fault */
		"mov $0x105000, %edx; call *%rdx\n"	/* NX: fetch fault */
		"mov 0x106000, %rcx\n"		/* reserved bit */
		"hlt\n");
	tm_wr(t, PT + 0x102 * 8, 0, 8);
	tm_wr(t, PT + 0x103 * 8, 0, 8);
	tm_wr(t, PT + 0x104 * 8, 0x104000 | P, 8);
	tm_wr(t, PT + 0x105 * 8, 0x105000 | P | W | NX, 8);
	tm_wr(t, PT + 0x106 * 8, 0x106000 | P | W | (1ull << 45), 8);
	tm_wr(t, 0x105000, 0xc3, 1);		/* ret */
	tm_wr(t, 0x100000, 0x1234, 8);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);

	g_assert_cmphex(c->gpr[R_RAX], ==, 0x1234);
	g_assert_cmphex(tm_rd(t, 0x101000, 8), ==, 5);
	g_assert_cmphex(tm_rd(t, 0x103010, 4), ==, 7);
	g_assert_cmphex(tm_rd(t, 0x104000, 1), ==, 1);
	g_assert_cmphex(tm_rd(t, PT + 0x100 * 8, 8) & (A | D), ==, A);
	g_assert_cmphex(tm_rd(t, PT + 0x101 * 8, 8) & (A | D), ==, A | D);
	g_assert_true(tm_rd(t, PML4, 8) & A);
	g_assert_true(tm_rd(t, PD, 8) & A);
	for (unsigned k = 0; k < tm_rd(t, LOG, 8); k++)
		g_test_message("fault %u: err %#lx cr2 %#lx", k, (unsigned long)log_at(t, k, 0),
			       (unsigned long)log_at(t, k, 1));
	g_assert_cmpuint(tm_rd(t, LOG, 8), ==, 5);
	/* error codes: P=1 W=2 U=4 RSVD=8 I/D=16 */
	g_assert_cmphex(log_at(t, 0, 0), ==, 0);
	g_assert_cmphex(log_at(t, 0, 1), ==, 0x102008);
	g_assert_cmphex(log_at(t, 1, 0), ==, 2);
	g_assert_cmphex(log_at(t, 1, 1), ==, 0x103010);
	g_assert_cmphex(log_at(t, 2, 0), ==, 3);
	g_assert_cmphex(log_at(t, 2, 1), ==, 0x104000);
	g_assert_cmphex(log_at(t, 3, 0), ==, 0x11);
	g_assert_cmphex(log_at(t, 3, 1), ==, 0x105000);
	g_assert_cmphex(log_at(t, 4, 0), ==, 9);
	g_assert_cmphex(log_at(t, 4, 1), ==, 0x106000);
	/* same privilege, no IST: the handler ran on the interrupted stack */
	g_assert_cmphex(log_at(t, 0, 2), ==, 0x80000 - 6 * 8 - 16);
	tm_free(t);
}

/* User mode: iretq to CPL 3, a user access to a supervisor page faults
 * with U set and the handler runs on IST1; int $0x80 through a DPL 3 gate
 * switches to RSP0; syscall and sysret. */
static void test_user_mode64(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"mov $0x2b, %eax; mov %eax, %ds\n"
		TO_USER(0x33, 0x202));
	gate64(t, 14, 0x2000, 0, 1);		/* #PF on IST1 */
	gate64(t, 0x80, 0x3000, 3, 0);
	tm_load_asm(t, 0x3000, ".code64\n"
		"mov %rsp, %r12\n"
		"mov 8(%rsp), %r13\n"		/* CS pushed */
		"mov 24(%rsp), %r14\n"		/* user RSP pushed */
		"mov $0x107000, %rax\n"
		"mov %rax, %rcx\n"
		"jmp *%rax\n");
	/* kernel syscall entry after int $0x80 returns to user via sysret */
	tm_load_asm(t, 0x107000, ".code64\n"
		"mov $0x33, %r9\n"
		"mov $0x108100, %rcx\n"
		"mov $0x202, %r11\n"
		"swapgs; swapgs\n"
		"mov %rsp, %rbp\n"
		"mov $0x90000, %rsp\n"
		"sysretq\n");
	tm_load_asm(t, 0x108000, ".code64\n"
		"mov 0x109000, %rax\n"		/* supervisor page: #PF with U */
		"mov %rax, %rbx\n"
		"int $0x80\n");
	tm_load_asm(t, 0x108100, ".code64\n"
		"mov %cs, %r10\n"
		"mov $0x10a000, %r8\n"
		"syscall\n");
	tm_load_asm(t, 0x10a000, ".code64\n"
		"mov %cs, %r11\n"
		"hlt\n");
	for (unsigned pg = 0x107; pg <= 0x10a; pg++)
		tm_wr(t, PT + pg * 8, ((uint64_t)pg << 12) | P | W | U, 8);
	tm_wr(t, PT + 0x109 * 8, 0x109000 | P | W, 8);
	tm_wr(t, PT + 0x90 * 8, 0x90000 | P | W | U, 8);
	tm_wr(t, PT + 0x8f * 8, 0x8f000 | P | W | U, 8);
	tm_wr(t, 0x109000, 0xfeed, 8);
	c->efer |= EFER_SCE;
	c->star = (0x23ull << 48) | (0x10ull << 32);
	c->lstar = 0x10a000;
	c->sfmask = 0x200;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);

	/* #PF from user mode: U set, handler on IST1 */
	assert_one_pf(t, 5, 0x109000);
	g_assert_cmphex(log_at(t, 0, 2), ==, 0x60000 - 6 * 8 - 16);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0xfeed);
	/* int $0x80: RSP0, user CS and RSP in the frame */
	g_assert_cmphex(c->gpr[R_R12], ==, 0x70000 - 5 * 8);
	g_assert_cmphex(c->gpr[R_R13], ==, 0x33);
	g_assert_cmphex(c->gpr[R_R14], ==, 0x90000);
	/* sysret to CPL 3, syscall back to CPL 0 */
	g_assert_cmphex(c->gpr[R_R10], ==, 0x33);
	g_assert_cmphex(c->gpr[R_R11] & 0xffff, ==, 0x10);
	g_assert_cmphex(c->gpr[R_RCX], ==, 0x108100 + 12);
	g_assert_cmpuint(c->cpl, ==, 0);
	g_assert_false(tcg_get_flags(c) & F_IF);	/* SFMASK cleared IF */
	tm_free(t);
}

/*
 * The kernel calls a function on a supervisor page, then user code calls
 * the same address: the fetch must fault with U and I set although the
 * block is in the jump cache from the call at CPL 0 (run.c: jc_lookup).
 */
static void test_user_fetch_after_kernel(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);

	setup64(t, ".code64\n"
		"mov $0x109000, %rax\n"
		"call *%rax\n"
		"mov $0x2b, %eax; mov %eax, %ds\n"
		TO_USER(0x33, 0x202));
	gate64(t, 0x80, 0x3000, 3, 0);
	tm_load_asm(t, 0x3000, ".code64\nhlt\n");
	tm_load_asm(t, 0x108000, ".code64\n"
		"mov $0x109000, %rax\n"
		"call *%rax\n"			/* #PF, mapped user, retried */
		"int $0x80\n");
	tm_load_asm(t, 0x109000, ".code64\nret\n");
	tm_wr(t, PT + 0x108 * 8, 0x108000 | P | W | U, 8);
	tm_wr(t, PT + 0x109 * 8, 0x109000 | P | W, 8);
	tm_wr(t, PT + 0x90 * 8, 0x90000 | P | W | U, 8);
	tm_wr(t, PT + 0x8f * 8, 0x8f000 | P | W | U, 8);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmpuint(tm_rd(t, LOG, 8), ==, 1);
	g_assert_cmphex(log_at(t, 0, 0) & 0x14, ==, 0x14);	/* U, I */
	g_assert_cmphex(log_at(t, 0, 1), ==, 0x109000);
	tm_free(t);
}

/* A 32-bit (compatibility mode) user process under a 64-bit kernel:
 * iretq to CS 0x23, 32-bit code with 32-bit addressing, int $0x80 back
 * through a 64-bit gate, then sysenter from compatibility mode. */
static void test_compat_mode(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"mov $0x2b, %eax; mov %eax, %ds; mov %eax, %es\n"
		TO_USER(0x23, 0x202));
	gate64(t, 0x80, 0x3000, 3, 0);
	tm_load_asm(t, 0x3000, ".code64\n"
		"mov 8(%rsp), %r13\n"			/* CS */
		"mov 24(%rsp), %r14\n"			/* ESP */
		"mov %rbx, %r12\n"
		"mov $0x108100, %ecx\n"
		"mov %rcx, (%rsp)\n"			/* resume the process elsewhere */
		"iretq\n");
	tm_load_asm(t, 0x108000, ".code32\n"
		"mov $0x10a000, %eax\n"
		"movl $0x12345678, (%eax)\n"
		"push %eax\n"				/* 32-bit push */
		"pop %ebx\n"
		"add (%ebx), %ebx\n"
		"int $0x80\n");
	tm_load_asm(t, 0x108100, ".code32\n"
		"mov %esp, %ebp\n"
		"sysenter\n");
	tm_load_asm(t, 0x10b000, ".code64\n"
		"mov %cs, %r11\n"
		"hlt\n");
	for (unsigned pg = 0x108; pg <= 0x10b; pg++)
		tm_wr(t, PT + pg * 8, ((uint64_t)pg << 12) | P | W | U, 8);
	tm_wr(t, PT + 0x8f * 8, 0x8f000 | P | W | U, 8);
	c->sysenter_cs = 0x10;
	c->sysenter_eip = 0x10b000;
	c->sysenter_esp = 0x70000;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_R12], ==, 0x10a000 + 0x12345678);
	g_assert_cmphex(c->gpr[R_R13], ==, 0x23);
	g_assert_cmphex(c->gpr[R_R14], ==, 0x90000);
	g_assert_cmphex(c->gpr[R_R11], ==, 0x10);
	g_assert_cmphex(c->gpr[R_RBP], ==, 0x90000);
	g_assert_cmphex(c->gpr[R_RSP], ==, 0x70000);
	g_assert_cmpuint(c->cpl, ==, 0);
	tm_free(t);
}

/* invlpg drops the translation of its page, including every 4 KiB piece
 * of a 2 MiB page cached from another address in it. */
static void test_invlpg(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"mov 0x100000, %rax\n"			/* 4 KiB page -> 0x100000 */
		"movq $0x101003, PT + 0x100 * 8\n"	/* remap it to 0x101000 */
		"invlpg 0x100000\n"
		"mov 0x100000, %rbx\n"
		"mov 0x600008, %rcx\n"			/* 2 MiB page 3 -> 0x600000 */
		"movq $0x800083, 0x12000 + 3 * 8\n"	/* remap it to 0x800000 */
		"invlpg 0x7ff000\n"			/* another address in it */
		"mov 0x600008, %rdx\n"
		"hlt\n");
	tm_wr(t, 0x100000, 0x1111, 8);
	tm_wr(t, 0x101000, 0x2222, 8);
	tm_wr(t, 0x600008, 0x3333, 8);
	tm_wr(t, 0x800008, 0x4444, 8);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RAX], ==, 0x1111);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x2222);
	g_assert_cmphex(c->gpr[R_RCX], ==, 0x3333);
	g_assert_cmphex(c->gpr[R_RDX], ==, 0x4444);
	tm_free(t);
}

/* 32-bit paging with a 4 MiB page and 4 KiB pages, and a 32-bit IDT. */
static void test_paging32(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];
	uint64_t pd = 0x10000, pt = 0x11000;

	tm_wr(t, pd, 0x000083 | (0 << 22), 4);			/* 0-4M: 4 MiB page */
	tm_wr(t, pd + 4, pt | 7, 4);				/* 4-8M: page table */
	for (unsigned k = 0; k < 1024; k++)
		tm_wr(t, pt + 4 * k, (0x400000 + k * 4096) | 3, 4);
	tm_wr(t, pt + 4 * 5, 0, 4);				/* 0x405000 absent */
	/* interrupt gate for #PF at 0x2000, 32-bit */
	tm_wr(t, 0x30000 + 14 * 8, 0x00082000 | (0x2000 & 0xffff), 4);
	tm_wr(t, 0x30000 + 14 * 8 + 4, 0x00008e00, 4);
	tm_load_asm(t, 0x2000, ".code32\n"
		"pop %esi\n"				/* error code */
		"mov %cr2, %edi\n"
		"movl $0x405003, 0x11000 + 5 * 4\n"
		"iret\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"mov %cr4, %eax; or $0x10, %eax; mov %eax, %cr4\n"	/* PSE */
		"mov $0x10000, %eax; mov %eax, %cr3\n"
		"mov %cr0, %eax; or $0x80000000, %eax; mov %eax, %cr0\n"
		"movl $0xabcd, 0x405010\n"
		"mov 0x405010, %ebx\n"
		"hlt\n");
	tm_flat32(t, 0, 0x1000);
	c->idt.base = 0x30000;
	c->idt.limit = 0x7ff;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RSI], ==, 2);
	g_assert_cmphex(c->gpr[R_RDI], ==, 0x405010);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0xabcd);
	g_assert_cmphex(tm_rd(t, 0x405010, 4), ==, 0xabcd);
	g_assert_cmphex(tm_rd(t, pt + 4 * 5, 4) & 0x60, ==, 0x60);	/* A and D */
	g_assert_cmphex(tm_rd(t, pd, 4) & 0x20, ==, 0x20);
	tm_free(t);
}

/* PAE paging with a 2 MiB page and NX. */
static void test_paging_pae(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_wr(t, 0x10000, 0x11000 | 1, 8);			/* PDPTE 0 */
	tm_wr(t, 0x11000, 0x000000 | 0x83, 8);			/* 0-2M, 2 MiB */
	tm_wr(t, 0x11008, 0x12000 | 3, 8);			/* 2-4M: table */
	for (unsigned k = 0; k < 512; k++)
		tm_wr(t, 0x12000 + 8 * k, (0x200000 + k * 4096) | 3, 8);
	tm_wr(t, 0x12000 + 8 * 1, 0x201000 | 3 | NX, 8);
	tm_wr(t, 0x201000, 0xc3, 1);
	tm_wr(t, 0x30000 + 14 * 8, 0x00082000, 4);
	tm_wr(t, 0x30000 + 14 * 8 + 4, 0x00008e00, 4);
	tm_load_asm(t, 0x2000, ".code32\n"
		"pop %esi\n"
		"mov %cr2, %edi\n"
		"hlt\n");
	tm_load_asm(t, 0x1000, ".code32\n"
		"mov %cr4, %eax; or $0x20, %eax; mov %eax, %cr4\n"	/* PAE */
		"mov $0xc0000080, %ecx; rdmsr; or $0x800, %eax; wrmsr\n"	/* NXE */
		"mov $0x10000, %eax; mov %eax, %cr3\n"
		"mov %cr0, %eax; or $0x80000000, %eax; mov %eax, %cr0\n"
		"movl $0x99, 0x200100\n"
		"mov $0x201000, %eax; call *%eax\n"
		"hlt\n");
	tm_flat32(t, 0, 0x1000);
	c->idt.base = 0x30000;
	c->idt.limit = 0x7ff;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RSI], ==, 0x11);
	g_assert_cmphex(c->gpr[R_RDI], ==, 0x201000);
	g_assert_cmphex(tm_rd(t, 0x200100, 4), ==, 0x99);
	g_assert_cmphex(tm_rd(t, 0x12000, 8) & 0x60, ==, 0x60);
	tm_free(t);
}

/*
 * The dirty log sees every guest RAM write, and sync clears it: plain and
 * page-crossing stores, the accessed/dirty bits the page walk sets in the
 * page tables (0x10000-0x12000), a locked read-modify-write and a rep
 * string store that crosses a page.
 */
static void test_dirty_log(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];
	unsigned long bitmap[(16 << 20) / 4096 / (8 * sizeof(long))];
	const struct ram_region *r = &t->m.mem.r[0];

	tm_load_asm(t, 0x1000, ".code64\n"
		"movb $1, 0x203000\n"
		"movl $2, 0x205ffe\n"			/* crosses into 0x206000 */
		"hlt\n"
		"movq $3, 0x300000\n"
		"lock incq 0x301000\n"
		"mov $0x302ff0, %edi\n"
		"mov $32, %ecx\n"
		"rep stosb\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tcg_accel_ops.dirty_log_start(&t->m), ==, 0);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	memset(bitmap, 0, sizeof(bitmap));
	g_assert_cmpint(tcg_accel_ops.dirty_log_sync(&t->m, r, bitmap), ==, 0);
	for (unsigned pg = 0; pg < (16 << 20) / 4096; pg++) {
		bool set = bitmap[pg / (8 * sizeof(long))] & (1ul << (pg % (8 * sizeof(long))));

		g_assert_cmpint(set, ==, pg == 0x203 || pg == 0x205 || pg == 0x206 ||
				(pg >= 0x10 && pg <= 0x12));
	}
	c->halted = false;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	memset(bitmap, 0, sizeof(bitmap));
	g_assert_cmpint(tcg_accel_ops.dirty_log_sync(&t->m, r, bitmap), ==, 0);
	for (unsigned pg = 0; pg < (16 << 20) / 4096; pg++) {
		bool set = bitmap[pg / (8 * sizeof(long))] & (1ul << (pg % (8 * sizeof(long))));

		g_assert_cmpint(set, ==, pg >= 0x300 && pg <= 0x303);
	}
	g_assert_cmpint(tcg_accel_ops.dirty_log_stop(&t->m), ==, 0);
	tm_free(t);
}

/*
 * Generated code does TLB hits of 64-bit loads and stores inline
 * (jit_mem.c); each test below makes one case that must leave that path
 * hit the TLB entry first, so that a wrong inline check shows.  They run
 * with the interpreter too, which must agree.
 */

/* Accesses that cross from a page whose entry is cached into another
 * frame, and into a page that is not present. */
static void test_tlb_hit_page_cross(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"movq $0, 0x110800; movq $0, 0x111800\n"	/* entries with W and D */
		"mov 0x110ffc, %rbx\n"
		"mov $0x1122334455667788, %rcx; mov %rcx, 0x110ffe\n"
		"mov 0x111ffc, %rdx\n"				/* 0x112000 absent */
		"hlt\n");
	tm_wr(t, PT + 0x110 * 8, 0x120000 | P | W, 8);		/* frames apart */
	tm_wr(t, PT + 0x111 * 8, 0x130000 | P | W, 8);
	tm_wr(t, PT + 0x112 * 8, 0, 8);
	tm_wr(t, 0x120ffc, 0xaabbccdd, 4);
	tm_wr(t, 0x130000, 0x11223344, 4);
	tm_wr(t, 0x130ffc, 0x55667788, 4);
	tm_wr(t, 0x112000, 0x99aabbcc, 4);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x11223344aabbccddull);
	g_assert_cmphex(tm_rd(t, 0x120ffe, 2), ==, 0x7788);
	g_assert_cmphex(tm_rd(t, 0x130000, 8) & 0xffffffffffffull, ==, 0x112233445566ull);
	g_assert_cmphex(tm_rd(t, 0x121000, 8), ==, 0);		/* the next frame */
	g_assert_cmphex(c->gpr[R_RDX], ==, 0x99aabbcc55667788ull);
	assert_one_pf(t, 0, 0x112000);
	tm_free(t);
}

/*
 * Stores through a writable entry into a page of translated code: into
 * another block (f), which must be translated again, and, after the
 * page's code mark is gone, into the next instruction of the running
 * block, which must stop before it.
 */
static void test_tlb_hit_smc(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"movb $0, 0x1f00\n"		/* the code page's entry gets W and D */
		"call f\n"
		"mov %eax, %ebx\n"
		"movl $2, f+1(%rip)\n"
		"call f\n"
		"mov %eax, %ecx\n"
		"movb $0, 0x1f00\n"		/* drops the page's code mark */
		"movl $3, 2f+1(%rip)\n"
		"2: mov $1, %edx\n"
		"hlt\n"
		"f: mov $1, %eax\n"
		"ret\n");
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RBX], ==, 1);
	g_assert_cmphex(c->gpr[R_RCX], ==, 2);
	g_assert_cmphex(c->gpr[R_RDX], ==, 3);
	tm_free(t);
}

/*
 * What an entry filled by a read does not grant: the first store must
 * walk to set the dirty bit, a store to a read-only page faults (CR0.WP);
 * and a mov to CR3 drops the entries of a remapped page.
 */
static void test_tlb_hit_perms_cr3(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"mov 0x102000, %rsi\n"
		"movq $5, 0x102008\n"
		"movq $6, 0x102010\n"
		"mov 0x104000, %rsi\n"
		"movb $1, 0x104000\n"		/* read-only: #PF, the handler maps it */
		"mov 0x100000, %rax\n"
		"movq $0x101003, PT + 0x100 * 8\n"
		"mov %cr3, %rdx; mov %rdx, %cr3\n"
		"mov 0x100000, %rbx\n"
		"hlt\n");
	/* read-only but dirty, as a copy-on-write page may be: the read
	 * gives the entry D but not W */
	tm_wr(t, PT + 0x104 * 8, 0x104000 | P | D, 8);
	tm_wr(t, 0x100000, 0x1111, 8);
	tm_wr(t, 0x101000, 0x2222, 8);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(tm_rd(t, PT + 0x102 * 8, 8) & (A | D), ==, A | D);
	g_assert_cmphex(tm_rd(t, 0x102008, 8), ==, 5);
	g_assert_cmphex(tm_rd(t, 0x102010, 8), ==, 6);
	assert_one_pf(t, 3, 0x104000);
	g_assert_cmphex(tm_rd(t, 0x104000, 1), ==, 1);
	g_assert_cmphex(c->gpr[R_RAX], ==, 0x1111);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x2222);
	tm_free(t);
}

/* A user read of a supervisor page whose entry a kernel read filled. */
static void test_tlb_hit_user(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);

	setup64(t, ".code64\n"
		"mov 0x109000, %rax\n"
		TO_USER(0x33, 0x3202));
	tm_load_asm(t, 0x108000, ".code64\n"
		"mov 0x109000, %rax\n"		/* #PF with U, then mapped for user */
		"out %eax, $0xf4\n");
	tm_wr(t, PT + 0x108 * 8, 0x108000 | P | U, 8);
	tm_wr(t, 0x109000, 0xfeed, 8);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_KICK);
	assert_one_pf(t, 5, 0x109000);
	g_assert_cmpuint(t->nr_out, ==, 1);
	g_assert_cmphex(t->out[0], ==, 0xfeed);
	tm_free(t);
}

/* Loads and stores through a cached entry of a page that is not RAM
 * still reach the device. */
static void test_tlb_hit_mmio(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	setup64(t, ".code64\n"
		"mov 0x20000008, %rax\n"
		"mov 0x20000008, %rbx\n"
		"movq $7, 0x20000010\n"
		"movq $9, 0x20000010\n"
		"hlt\n");
	g_assert_cmpint(bus_register(&t->m.mmio, 0x20000000, 0x1000, &tm_port_ops, t, "dev"),
			==, 0);
	t->in_value = 0x5a5a;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RAX], ==, 0x5a5a);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x5a5a);
	g_assert_cmpuint(t->nr_out, ==, 2);
	g_assert_cmphex(t->out[0], ==, 7);
	g_assert_cmphex(t->out[1], ==, 9);
	tm_free(t);
}

/* A store through a cached entry after a sync is logged again. */
static void test_tlb_hit_dirty_log(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];
	unsigned long bitmap[(16 << 20) / 4096 / (8 * sizeof(long))];
	const struct ram_region *r = &t->m.mem.r[0];
	size_t w = 8 * sizeof(long);

	tm_load_asm(t, 0x1000, ".code64\n"
		"movq $1, 0x300000\n"
		"hlt\n"
		"movq $2, 0x300008\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tcg_accel_ops.dirty_log_start(&t->m), ==, 0);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	memset(bitmap, 0, sizeof(bitmap));
	g_assert_cmpint(tcg_accel_ops.dirty_log_sync(&t->m, r, bitmap), ==, 0);
	g_assert_true(bitmap[0x300 / w] & (1ul << (0x300 % w)));
	c->halted = false;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	memset(bitmap, 0, sizeof(bitmap));
	g_assert_cmpint(tcg_accel_ops.dirty_log_sync(&t->m, r, bitmap), ==, 0);
	g_assert_true(bitmap[0x300 / w] & (1ul << (0x300 % w)));
	g_assert_cmphex(tm_rd(t, 0x300008, 8), ==, 2);
	g_assert_cmpint(tcg_accel_ops.dirty_log_stop(&t->m), ==, 0);
	tm_free(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tcg/mmu/pf-codes64", test_pf_codes64);
	g_test_add_func("/tcg/mmu/user-mode64", test_user_mode64);
	g_test_add_func("/tcg/mmu/user-fetch-after-kernel", test_user_fetch_after_kernel);
	g_test_add_func("/tcg/mmu/compat-mode", test_compat_mode);
	g_test_add_func("/tcg/mmu/invlpg", test_invlpg);
	g_test_add_func("/tcg/mmu/paging32", test_paging32);
	g_test_add_func("/tcg/mmu/pae", test_paging_pae);
	g_test_add_func("/tcg/mmu/dirty-log", test_dirty_log);
	tm_add_both("/tcg/mmu", "tlb-hit/page-cross", test_tlb_hit_page_cross);
	tm_add_both("/tcg/mmu", "tlb-hit/smc", test_tlb_hit_smc);
	tm_add_both("/tcg/mmu", "tlb-hit/perms-cr3", test_tlb_hit_perms_cr3);
	tm_add_both("/tcg/mmu", "tlb-hit/user", test_tlb_hit_user);
	tm_add_both("/tcg/mmu", "tlb-hit/mmio", test_tlb_hit_mmio);
	tm_add_both("/tcg/mmu", "tlb-hit/dirty-log", test_tlb_hit_dirty_log);
	return g_test_run();
}
