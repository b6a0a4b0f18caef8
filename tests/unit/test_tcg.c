/*
 * TCG: instructions in real, 32-bit and 64-bit mode, string operations,
 * port I/O, exceptions through the IDT, self-modifying code, and locked
 * instructions from two vCPU threads.
 */
#include "test_tcg_harness.h"

/* Integer basics in 64-bit mode: arithmetic, flags, stack, calls. */
static void test_long_basic(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c;

	tm_load_asm(t, 0x1000,
		".code64\n"
		"mov $0x123456789abcdef0, %rax\n"
		"mov %rax, %rbx\n"
		"add $1, %rbx\n"
		"mov $-1, %ecx\n"			/* zero-extends */
		"inc %ecx\n"				/* ZF=1 */
		"setz %dl\n"
		"push %rbx\n"
		"pop %r9\n"
		"call 1f\n"
		"mov $7, %r10\n"
		"jmp 2f\n"
		"1: mov $5, %r11\n"
		"ret\n"
		"2: lea 0x10(%r9,%rdx,8), %r12\n"
		"movb $0x80, %ah\n"			/* high byte register */
		"mov $0x3000, %esi\n"
		"mov $0x1122334455667788, %r15\n"
		"mov %r15, (%rsi)\n"
		"addl $1, 4(%rsi)\n"
		"movzbl 7(%rsi), %r13d\n"
		"movsbq 7(%rsi), %r14\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	c = t->c[0];
	/* The mode under test ran: the first block cached has host code
	 * with jit=on and none with jit=off. */
	g_assert_cmpuint(c->tb_arena_used, >, 0);
	g_assert_cmpint(((struct tb *)c->tb_arena)->host != NULL, ==, tm_jit);
	g_assert_cmphex(c->gpr[R_RAX], ==, 0x123456789abc80f0);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x123456789abcdef1);
	g_assert_cmphex(c->gpr[R_RCX], ==, 0);
	g_assert_cmphex(c->gpr[R_RDX] & 0xff, ==, 1);
	g_assert_cmphex(c->gpr[R_R9], ==, 0x123456789abcdef1);
	g_assert_cmphex(c->gpr[R_R10], ==, 7);
	g_assert_cmphex(c->gpr[R_R11], ==, 5);
	g_assert_cmphex(c->gpr[R_R12], ==, 0x123456789abcdef1 + 0x10 + 8);
	g_assert_cmphex(tm_rd(t, 0x3000, 8), ==, 0x1122334555667788);
	g_assert_cmphex(c->gpr[R_R13], ==, 0x11);
	g_assert_cmphex(c->gpr[R_R14], ==, 0x11);
	g_assert_cmphex(c->gpr[R_RSP], ==, 0x80000);
	tm_free(t);
}

/* A loop with a conditional branch, and rep string operations. */
static void test_long_loop_string(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c;

	for (unsigned k = 0; k < 100; k++)
		tm_wr(t, 0x4000 + k, k, 1);
	tm_load_asm(t, 0x1000,
		".code64\n"
		"xor %eax, %eax\n"
		"mov $1000, %ecx\n"
		"1: add %rcx, %rax\n"
		"dec %rcx\n"
		"jnz 1b\n"
		"mov %rax, %r8\n"
		"cld\n"
		"mov $0x4000, %esi\n"
		"mov $0x5000, %edi\n"
		"mov $100, %ecx\n"
		"rep movsb\n"
		"mov $0x6000, %edi\n"
		"mov $0xabcd1234, %eax\n"
		"mov $10, %ecx\n"
		"rep stosl\n"
		"mov $0x4000, %esi\n"
		"mov $0x5000, %edi\n"
		"mov $100, %ecx\n"
		"repe cmpsb\n"				/* all equal: rcx = 0 */
		"mov %rcx, %r9\n"
		"movb $0x55, 0x5032\n"
		"mov $0x4000, %esi\n"
		"mov $0x5000, %edi\n"
		"mov $100, %ecx\n"
		"repe cmpsb\n"				/* stops after byte 0x32 */
		"mov %rcx, %r10\n"
		"std\n"
		"mov $0x6024, %esi\n"
		"lodsl\n"
		"mov %rax, %r11\n"
		"mov %rsi, %r12\n"
		"cld\n"
		"mov $0x4000, %edi\n"
		"mov $40, %al\n"
		"mov $100, %ecx\n"
		"repne scasb\n"
		"mov %rdi, %r13\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	c = t->c[0];
	g_assert_cmpuint(c->gpr[R_R8], ==, 500500);
	for (unsigned k = 0; k < 100; k++)
		g_assert_cmpuint(tm_rd(t, 0x5000 + k, 1), ==, k == 0x32 ? 0x55 : k);
	for (unsigned k = 0; k < 10; k++)
		g_assert_cmphex(tm_rd(t, 0x6000 + 4 * k, 4), ==, 0xabcd1234);
	g_assert_cmpuint(c->gpr[R_R9], ==, 0);
	g_assert_cmpuint(c->gpr[R_R10], ==, 100 - 0x33);
	g_assert_cmphex(c->gpr[R_R11], ==, 0xabcd1234);
	g_assert_cmphex(c->gpr[R_R12], ==, 0x6020);
	g_assert_cmphex(c->gpr[R_R13], ==, 0x4000 + 41);
	tm_free(t);
}

/* Real mode: 16-bit code, segments, the IVT, int/iret, far jumps. */
static void test_real_mode(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c;

	/* handler for int 0x21 at 0x0000:0x0800 */
	tm_wr(t, 0x21 * 4, 0x00000800, 4);
	tm_load_asm(t, 0x800,
		".code16\n"
		"mov $0x4242, %bx\n"
		"iret\n");
	tm_load_asm(t, 0x10000,
		".code16\n"
		"start: mov $0x2000, %ax\n"
		"mov %ax, %ds\n"
		"movw $0xbeef, 0x10\n"			/* 0x20010 */
		"mov $0x1234, %cx\n"
		"add $0x10, %cx\n"
		"push %cx\n"
		"pop %dx\n"
		"int $0x21\n"
		"mov $0x12345678, %esi\n"		/* 66h prefix */
		"ljmp $0x0ff0, $(2f - start + 0x100)\n"
		"2: mov %cs, %di\n"
		"hlt\n");
	tm_real(t, 0, 0x1000, 0);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	c = t->c[0];
	g_assert_cmphex(tm_rd(t, 0x20010, 2), ==, 0xbeef);
	g_assert_cmphex(c->gpr[R_RDX] & 0xffff, ==, 0x1244);
	g_assert_cmphex(c->gpr[R_RBX] & 0xffff, ==, 0x4242);
	g_assert_cmphex(c->gpr[R_RSI], ==, 0x12345678);
	g_assert_cmphex(c->gpr[R_RDI] & 0xffff, ==, 0x0ff0);
	g_assert_cmphex(c->gpr[R_RSP] & 0xffff, ==, 0x7000);
	tm_free(t);
}

/* 32-bit protected mode, and port I/O through the bus. */
static void test_flat32_pio(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c;

	t->in_value = 0x5a;
	tm_load_asm(t, 0x1000,
		".code32\n"
		"mov $0x11223344, %eax\n"
		"mov $0x3000, %ebx\n"
		"mov %eax, (%ebx)\n"
		"movw $0x99, 2(%ebx)\n"
		"mov $0xf5, %dx\n"
		"outb %al, %dx\n"
		"out %eax, $0xf5\n"
		"in $0xf5, %al\n"
		"mov %eax, %ecx\n"
		"mov $0x3000, %esi\n"
		"mov $2, %ecx\n"
		"rep outsb\n"
		"hlt\n");
	tm_flat32(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	c = t->c[0];
	g_assert_cmphex(tm_rd(t, 0x3000, 4), ==, 0x00993344);
	g_assert_cmpuint(t->nr_out, ==, 4);
	g_assert_cmphex(t->out[0], ==, 0x44);
	g_assert_cmphex(t->out[1], ==, 0x11223344);
	g_assert_cmphex(t->out[2], ==, 0x44);
	g_assert_cmphex(t->out[3], ==, 0x33);
	g_assert_cmphex(c->gpr[R_RAX], ==, 0x1122335a);
	tm_free(t);
}

/* arpl raises a selector's RPL to the source's (ZF set) or leaves it. */
static void test_arpl32(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c;

	tm_load_asm(t, 0x1000,
		".code32\n"
		"mov $0x12340010, %eax\n"
		"mov $0x2b, %ebx\n"
		"arpl %bx, %ax\n"			/* 0x10 -> 0x13, ZF=1 */
		"setz %cl\n"
		"mov $0x1b, %edx\n"
		"mov $0x09, %esi\n"
		"arpl %si, %dx\n"			/* RPL 3 >= 1: unchanged, ZF=0 */
		"setz %ch\n"
		"movl $0x55550022, 0x3000\n"
		"mov $0x3, %edi\n"
		"arpl %di, 0x3000\n"			/* memory: 0x22 -> 0x23 */
		"setz %bl\n"
		"hlt\n");
	tm_flat32(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	c = t->c[0];
	g_assert_cmphex(c->gpr[R_RAX], ==, 0x12340013);
	g_assert_cmphex(c->gpr[R_RCX] & 0xffff, ==, 0x0001);
	g_assert_cmphex(c->gpr[R_RDX], ==, 0x1b);
	g_assert_cmphex(tm_rd(t, 0x3000, 4), ==, 0x55550023);
	g_assert_cmphex(c->gpr[R_RBX] & 0xff, ==, 1);
	tm_free(t);
}

/* Build a 64-bit IDT at 0x30000 whose entries all point at handler. */
static void idt64(struct tvm *t, struct tcg_cpu *c, uint64_t handler, unsigned ist)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t lo = (handler & 0xffff) | (0x10ull << 16) | ((uint64_t)ist << 32) |
			      (0x8eull << 40) | ((handler >> 16 & 0xffff) << 48);

		tm_wr(t, 0x30000 + v * 16, lo, 8);
		tm_wr(t, 0x30000 + v * 16 + 8, handler >> 32, 8);
	}
	c->idt.base = 0x30000;
	c->idt.limit = 256 * 16 - 1;
}

/* #UD, #DE and #GP are delivered through the IDT with the right frame. */
static void test_exceptions64(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	/* The handler records the frame, skips 2 bytes and returns. */
	tm_load_asm(t, 0x2000,
		".code64\n"
		"mov (%rsp), %r8\n"
		"mov 8(%rsp), %r9\n"
		"addq $2, (%rsp)\n"
		"iretq\n");
	tm_load_asm(t, 0x1000,
		".code64\n"
		"mov $1, %ecx\n"
		"ud2\n"
		"mov %r8, %r10\n"
		"xor %ecx, %ecx\n"
		"div %ecx\n"				/* 2 bytes: f7 f1 */
		"mov %r8, %r11\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	idt64(t, c, 0x2000, 0);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_R10], ==, 0x1005);	/* rip of ud2 */
	g_assert_cmphex(c->gpr[R_R11], ==, 0x100c);	/* rip of div */
	g_assert_cmphex(c->gpr[R_R9], ==, 0x10);	/* CS in the frame */
	g_assert_cmphex(c->gpr[R_RSP], ==, 0x80000);
	tm_free(t);
}

/* An undefined opcode with no IDT ends in a triple fault. */
static void test_triple_fault(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);

	tm_load_asm(t, 0x1000, ".code64\nud2\n");
	tm_long64(t, 0, 0x1000);
	t->c[0]->idt.limit = 0;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_SHUTDOWN);
	tm_free(t);
}

/* Code that rewrites an instruction later in its own block, and code
 * rewritten between two runs of the same block. */
static void test_smc(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x1000,
		".code64\n"
		"start: xor %ebx, %ebx\n"
		"mov $0x1000, %edi\n"
		"movb $2, 1f - start + 1(%rdi)\n"	/* mov $1 -> mov $2 */
		"1: mov $1, %al\n"
		"add %al, %bl\n"
		"call 2f\n"
		"call 2f\n"
		"hlt\n"
		"2: mov $0x10, %cl\n"
		"add %cl, %bl\n"
		"movb $0x20, 2b - start + 1(%rdi)\n"	/* patch the next call's block */
		"ret\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RBX] & 0xff, ==, 2 + 0x10 + 0x20);
	tm_free(t);
}

/*
 * A block chained to the next one in its page (1: -> 2:) runs without a
 * lookup; a store from code in another page into the linked block must
 * still be seen the next time round (tcg_vm.code_gen).
 */
static void test_chain_invalidate(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x1000,
		".code64\n"
		"start: xor %ecx, %ecx\n"
		"xor %ebx, %ebx\n"
		"mov $0x1000, %edi\n"
		"1: inc %ecx\n"
		"jmp 2f\n"
		"2: add $1, %ebx\n"
		"cmp $2, %ecx\n"
		"jne 3f\n"
		"call patch\n"
		"3: cmp $4, %ecx\n"
		"jb 1b\n"
		"hlt\n"
		".org 0x1000\n"
		"patch: movb $0x10, 2b - start + 2(%rdi)\n"	/* add $1 -> add $0x10 */
		"ret\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RBX], ==, 1 + 1 + 0x10 + 0x10);
	tm_free(t);
}

/* lock add, xadd and cmpxchg from two vCPU threads do not lose updates. */
struct racer {
	struct tvm *t;
	unsigned i;
	int reason;
};

static void *race_thread(void *opaque)
{
	struct racer *r = opaque;

	r->reason = tm_run(r->t, r->i);
	return NULL;
}

static void test_locked_two_threads(void)
{
	struct tvm *t = tm_new(16 << 20, 2, false);
	struct racer r[2];
	pthread_t th[2];

	tm_load_asm(t, 0x1000,
		".code64\n"
		"mov $200000, %ecx\n"
		"1: lock addq $1, 0x3000\n"
		"mov $1, %eax\n"
		"lock xadd %eax, 0x3008\n"
		"2: mov 0x3010, %eax\n"
		"lea 1(%rax), %edx\n"
		"lock cmpxchg %edx, 0x3010\n"
		"jnz 2b\n"
		"mov $1, %eax\n"
		"xchg %eax, 0x3018\n"			/* implicitly locked */
		"dec %ecx\n"
		"jnz 1b\n"
		"hlt\n");
	/* Both set up before either runs: tm_long64 rewrites the page tables
	 * they share, which a running vCPU walks (and sets A/D bits in). */
	for (unsigned i = 0; i < 2; i++) {
		tm_long64(t, i, 0x1000);
		t->c[i]->gpr[R_RSP] = 0x80000 - i * 0x1000;
		r[i].t = t;
		r[i].i = i;
	}
	for (unsigned i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, race_thread, &r[i]);
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		g_assert_cmpint(r[i].reason, ==, ACCEL_EXIT_HALT);
	}
	g_assert_cmpuint(tm_rd(t, 0x3000, 8), ==, 400000);
	g_assert_cmpuint(tm_rd(t, 0x3008, 4), ==, 400000);
	g_assert_cmpuint(tm_rd(t, 0x3010, 4), ==, 400000);
	tm_free(t);
}

/* cpuid advertises long mode, NX, syscall, x87, MMX, FXSR, SSE, SSE2;
 * nothing later (SSE3, AVX, XSAVE). */
static void test_cpuid(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x1000,
		".code64\n"
		"mov $0x80000001, %eax\n"
		"cpuid\n"
		"mov %rdx, %r8\n"
		"mov $1, %eax\n"
		"cpuid\n"
		"mov %rdx, %r9\n"
		"mov %rcx, %r10\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_true(c->gpr[R_R8] & (1u << 29));	/* LM */
	g_assert_true(c->gpr[R_R8] & (1u << 20));	/* NX */
	g_assert_true(c->gpr[R_R8] & (1u << 11));	/* SYSCALL */
	g_assert_true(c->gpr[R_R9] & (1u << 6));	/* PAE */
	g_assert_true(c->gpr[R_R9] & (1u << 0));	/* FPU */
	g_assert_true(c->gpr[R_R9] & (1u << 26));	/* SSE2 */
	g_assert_true(c->gpr[R_R10] & (1u << 0));	/* SSE3 */
	g_assert_false(c->gpr[R_R10] & (1u << 26));	/* no XSAVE */
	tm_free(t);
}

/* The instructions only legacy modes have: BCD, salc, bound, arpl. */
static void test_legacy32(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);

	tm_wr(t, 0x3100, 0x00000010, 4);		/* bound: lower 16 */
	tm_wr(t, 0x3104, 0x00000020, 4);		/* upper 32 */
	tm_load_asm(t, 0x1000,
		".code32\n"
		"mov $0x79, %al; add $0x35, %al; daa; mov %eax, 0x3000\n"
		"pushf; pop 0x3004\n"
		"mov $0x35, %al; sub $0x47, %al; das; mov %eax, 0x3008\n"
		"mov $5, %ax; add $8, %al; aaa; mov %eax, 0x300c\n"
		"mov $0x100, %ax; sub $1, %al; aas; mov %eax, 0x3010\n"
		"mov $73, %al; aam; mov %eax, 0x3014\n"
		"mov $0x0703, %ax; aad; mov %eax, 0x3018\n"
		"stc; .byte 0xd6; mov %eax, 0x301c\n"
		"mov $0x18, %ecx; bound %ecx, 0x3100\n"
		"mov $0x10, %ax; mov $3, %bx; arpl %bx, %ax; mov %eax, 0x3020\n"
		"setz 0x3024\n"
		"hlt\n");
	tm_flat32(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(tm_rd(t, 0x3000, 1), ==, 0x14);
	g_assert_cmphex(tm_rd(t, 0x3004, 4) & F_CF, ==, F_CF);
	g_assert_cmphex(tm_rd(t, 0x3008, 1), ==, 0x88);
	g_assert_cmphex(tm_rd(t, 0x300c, 2), ==, 0x0103);
	g_assert_cmphex(tm_rd(t, 0x3010, 2), ==, 0x0009);
	g_assert_cmphex(tm_rd(t, 0x3014, 2), ==, 0x0703);
	g_assert_cmphex(tm_rd(t, 0x3018, 2), ==, 0x0049);
	g_assert_cmphex(tm_rd(t, 0x301c, 1), ==, 0xff);
	g_assert_cmphex(tm_rd(t, 0x3020, 2), ==, 0x13);
	g_assert_cmphex(tm_rd(t, 0x3024, 1), ==, 1);
	tm_free(t);
}

/* Single-step: TF traps after each instruction it was set for. */
static void test_single_step(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x2000, ".code64\n"
		"incq 0x5000\n"
		"iretq\n");
	tm_load_asm(t, 0x1000, ".code64\n"
		"pushfq; orq $0x100, (%rsp); popfq\n"
		"nop; nop; nop\n"
		"pushfq; andq $~0x100, (%rsp); popfq\n"
		"mov 0x5000, %rax\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	idt64(t, c, 0x2000, 0);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmpuint(c->gpr[R_RAX], ==, 6);
	g_assert_true(c->dr[6] & (1u << 14));
	tm_free(t);
}

/* Code outside RAM, behind the MMIO bus, runs uncached. */
static const uint8_t rom_code[] = {
	0xb8, 0x42, 0, 0, 0,		/* mov $0x42, %eax */
	0xbb, 0x43, 0, 0, 0,		/* mov $0x43, %ebx */
	0xf4,				/* hlt */
};

static uint64_t rom_read(void *opaque, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < size; k++)
		if (off + k < sizeof(rom_code))
			v |= (uint64_t)rom_code[off + k] << (8 * k);
	return v;
}

static void rom_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
}

static const struct bus_ops rom_ops = { .read = rom_read, .write = rom_write };

static void test_exec_mmio(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	g_assert_cmpint(bus_register(&t->m.mmio, 0xd0000000, 0x1000, &rom_ops, t, "rom"), ==, 0);
	tm_load_asm(t, 0x1000, ".code32\n"
		"mov $0xd0000000, %ecx\n"
		"jmp *%ecx\n");
	tm_flat32(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_RAX], ==, 0x42);
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x43);
	g_assert_cmphex(c->rip, ==, 0xd000000b);
	tm_free(t);
}

/* get_state/set_state carry registers, flags and the MSRs of cpu_state. */
static void test_state_roundtrip(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct cpu_state s;

	tm_load_asm(t, 0x1000, ".code64\n"
		"mov $0xc0000082, %ecx; rdmsr; shl $32, %rdx; or %rdx, %rax; mov %rax, %r8\n"
		"mov $0x176, %ecx; rdmsr; mov %rax, %r9\n"
		"mov $-1, %rbx; add $1, %rbx\n"		/* ZF, CF */
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tcg_accel_ops.vcpu_get_state(&t->v[0], &s), ==, 0);
	s.msrs.lstar = 0xffffffff81000000ull;
	s.msrs.sysenter_eip = 0x12345678;
	g_assert_cmpint(tcg_accel_ops.vcpu_set_state(&t->v[0], &s), ==, 0);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmpint(tcg_accel_ops.vcpu_get_state(&t->v[0], &s), ==, 0);
	g_assert_cmphex(s.gpr[R_R8], ==, 0xffffffff81000000ull);
	g_assert_cmphex(s.gpr[R_R9], ==, 0x12345678);
	g_assert_cmphex(s.rflags & (F_ZF | F_CF | F_SF), ==, F_ZF | F_CF);
	g_assert_cmphex(s.rip, ==, t->c[0]->rip);
	g_assert_cmphex(s.msrs.lstar, ==, 0xffffffff81000000ull);
	g_assert_cmpuint(s.cs.l, ==, 1);
	g_assert_cmphex(s.efer & EFER_LMA, ==, EFER_LMA);
	tm_free(t);
}

/*
 * Linux reads IA32_FEATURE_CONTROL (0x3a) on every boot: it reads as
 * locked with nothing enabled (so Linux does not try to write it) rather
 * than raising #GP.
 */
static void test_rdmsr_feature_control(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);

	tm_load_asm(t, 0x1000, ".code64\n"
		"mov $-1, %rax; mov $-1, %rdx\n"
		"mov $0x3a, %ecx; rdmsr\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(t->c[0]->gpr[R_RAX], ==, 1);
	g_assert_cmphex(t->c[0]->gpr[R_RDX], ==, 0);
	tm_free(t);
}

/* x87 control words, MXCSR, fxsave/fxrstor, and the #NM/#GP/#UD rules
 * of CR0.TS, MXCSR reserved bits and alignment. */
static void test_fxsave(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	/* The #GP handler counts and skips %r15 bytes. */
	tm_load_asm(t, 0x2000, ".code64\n"
		"incq 0x5000\n"
		"add %r15, 8(%rsp)\n"			/* #GP has an error code */
		"add $8, %rsp\n"
		"iretq\n");
	tm_load_asm(t, 0x2100, ".code64\n"
		"incq 0x5008\n"
		"clts\n"				/* #NM: allow the FPU and retry */
		"iretq\n");
	tm_load_asm(t, 0x1000, ".code64\n"
		"fninit\n"
		"fnstcw 0x3000\n"
		"fnstsw %ax\n"
		"mov %eax, 0x3002\n"
		"movl $0x1fc0, 0x3008\n"
		"ldmxcsr 0x3008\n"
		"stmxcsr 0x300c\n"
		"movl $0x10000, 0x3010\n"
		"mov $8, %r15\n"
		"ldmxcsr 0x3010\n"			/* reserved bit: #GP; 8 bytes long */
		"mov $0x1122334455667788, %rax; movq %rax, %xmm5\n"
		"mov $0x99, %eax; movq %rax, %xmm12\n"
		"fxsave64 0x3100\n"
		"pxor %xmm5, %xmm5\n"
		"fxrstor64 0x3100\n"
		"movq %xmm5, %rbx\n"
		"mov %cr0, %rax; or $8, %rax; mov %rax, %cr0\n"	/* TS */
		"fxsave64 0x3400\n"			/* #NM, then retried */
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	idt64(t, c, 0x2000, 0);
	tm_wr(t, 0x30000 + 7 * 16, (0x2100 & 0xffff) | (0x10ull << 16) | (0x8eull << 40), 8);
	c->cr4 |= CR4_OSFXSR;
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(tm_rd(t, 0x3000, 2), ==, 0x37f);
	g_assert_cmphex(tm_rd(t, 0x3002, 2), ==, 0);
	g_assert_cmphex(tm_rd(t, 0x300c, 4), ==, 0x1fc0);
	g_assert_cmpuint(tm_rd(t, 0x5000, 8), ==, 1);		/* one #GP */
	g_assert_cmpuint(tm_rd(t, 0x5008, 8), ==, 1);		/* one #NM */
	g_assert_cmphex(c->gpr[R_RBX], ==, 0x1122334455667788);
	g_assert_cmphex(tm_rd(t, 0x3100, 2), ==, 0x37f);	/* FCW */
	g_assert_cmphex(tm_rd(t, 0x3100 + 24, 4), ==, 0x1fc0);	/* MXCSR */
	g_assert_cmphex(tm_rd(t, 0x3100 + 160 + 5 * 16, 8), ==, 0x1122334455667788);
	g_assert_cmphex(tm_rd(t, 0x3100 + 160 + 12 * 16, 8), ==, 0x99);
	g_assert_cmphex(tm_rd(t, 0x3400 + 160 + 12 * 16, 8), ==, 0x99);
	tm_free(t);
}

/* Without CR4.OSFXSR, SSE instructions are undefined. */
static void test_sse_disabled(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];

	tm_load_asm(t, 0x2000, ".code64\n"
		"mov (%rsp), %r8\n"
		"hlt\n");
	tm_load_asm(t, 0x1000, ".code64\n"
		"nop\n"
		"pxor %xmm0, %xmm0\n"
		"hlt\n");
	tm_long64(t, 0, 0x1000);
	idt64(t, c, 0x2000, 0);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	g_assert_cmphex(c->gpr[R_R8], ==, 0x1001);
	tm_free(t);
}

/*
 * Conditional branches no longer end a block: a loop with its exit test
 * at the top is one block, the taken branch leaves from the middle and
 * the fall-through goes on in the same block, with the flags of the
 * compare before it.
 */
static void test_jcc_in_block(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c;

	tm_load_asm(t, 0x1000,
		".code64\n"
		"mov $10, %ecx\n"
		"xor %eax, %eax\n"
		"xor %ebx, %ebx\n"
		"1: test %ecx, %ecx\n"
		"jz 2f\n"
		"add %ecx, %eax\n"
		"dec %ecx\n"
		"jmp 1b\n"
		"2: cmp $55, %eax\n"
		"jne 3f\n"			/* not taken: falls through */
		"mov $1, %ebx\n"
		"cmp $54, %eax\n"
		"jne 3f\n"			/* taken from the middle */
		"mov $2, %ebx\n"
		"3: hlt\n");
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	c = t->c[0];
	g_assert_cmphex(c->gpr[R_RAX], ==, 55);
	g_assert_cmphex(c->gpr[R_RBX], ==, 1);
	g_assert_cmphex(c->gpr[R_RCX], ==, 0);
	tm_free(t);
}

/*
 * Shifts by a constant whose flags are read: generated code (which does
 * them inline) and the interpreter leave the same RFLAGS, including the
 * flags the SDM leaves undefined (OF of multi-bit shifts), for each
 * operand size and counts from 1 to width - 1.
 */
static void run_shifts(const char *src, bool jit, uint64_t *out, unsigned n)
{
	struct tvm *t;

	tm_jit = jit;
	t = tm_new(16 << 20, 1, false);
	tm_jit = true;
	tm_load_asm(t, 0x1000, src);
	tm_long64(t, 0, 0x1000);
	g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
	for (unsigned k = 0; k < n; k++)
		out[k] = tm_rd(t, 0x8000 + 8 * k, 8);
	tm_free(t);
}

static void test_shift_flags(void)
{
	static const char *const ops[] = { "shl", "shr", "sar" };
	static const char *const regs[] = { "%dl", "%dx", "%edx", "%rdx" };
	static const char sfx[] = "bwlq";
	static const uint64_t vals[] = { 0x8123456789abcdefull, 0x40000000c0004080ull };
	GString *src = g_string_new(".code64\nmov $0x8000, %edi\n");
	uint64_t jit[512], interp[512];
	unsigned n = 0;

	for (unsigned sz = 0; sz < 4; sz++) {
		unsigned w = 8u << sz, counts[] = { 1, 2, w / 2 + 1, w - 1 };

		for (unsigned o = 0; o < 3; o++)
			for (unsigned k = 0; k < 4; k++)
				for (unsigned v = 0; v < 2; v++) {
					g_string_append_printf(src,
						"mov $0x%llx, %%rdx\n%s%c $%u, %s\n"
						"pushfq\npop %%rax\nmov %%rax, (%%rdi)\n"
						"mov %%rdx, 8(%%rdi)\nadd $16, %%rdi\n",
						(unsigned long long)vals[v], ops[o], sfx[sz],
						counts[k], regs[sz]);
					n += 2;
				}
	}
	g_string_append(src, "hlt\n");
	g_assert_cmpuint(n, <=, 512);
	run_shifts(src->str, true, jit, n);
	run_shifts(src->str, false, interp, n);
	for (unsigned k = 0; k < n; k++)
		g_assert_cmphex(jit[k], ==, interp[k]);
	g_string_free(src, true);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	tm_add_both("/tcg", "long/basic", test_long_basic);
	tm_add_both("/tcg", "long/loop-string", test_long_loop_string);
	tm_add_both("/tcg", "long/jcc-in-block", test_jcc_in_block);
	tm_add_both("/tcg", "real/basic", test_real_mode);
	tm_add_both("/tcg", "chain/invalidate", test_chain_invalidate);
	tm_add_both("/tcg", "flat32/pio", test_flat32_pio);
	tm_add_both("/tcg", "flat32/arpl", test_arpl32);
	tm_add_both("/tcg", "excp/idt64", test_exceptions64);
	tm_add_both("/tcg", "excp/triple", test_triple_fault);
	tm_add_both("/tcg", "smc", test_smc);
	tm_add_both("/tcg", "lock/two-threads", test_locked_two_threads);
	tm_add_both("/tcg", "sse/fxsave", test_fxsave);
	tm_add_both("/tcg", "sse/disabled", test_sse_disabled);
	tm_add_both("/tcg", "cpuid", test_cpuid);
	tm_add_both("/tcg", "state", test_state_roundtrip);
	tm_add_both("/tcg", "rdmsr-feature-control", test_rdmsr_feature_control);
	tm_add_both("/tcg", "flat32/legacy", test_legacy32);
	tm_add_both("/tcg", "flat32/exec-mmio", test_exec_mmio);
	tm_add_both("/tcg", "excp/single-step", test_single_step);
	g_test_add_func("/tcg/jit-vs-interp/shift-flags", test_shift_flags);
	return g_test_run();
}
