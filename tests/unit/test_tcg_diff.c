/*
 * Differential test of TCG against the host CPU.  The same stub (load
 * registers and flags from a struct, run one instruction, store them
 * back) runs natively in an executable page and as a TCG guest in 64-bit
 * mode, with fixed-seed random operands; registers, memory and the flags
 * the SDM defines for the instruction must agree.
 */
#include <math.h>
#include <sys/mman.h>

#include "test_tcg_harness.h"

struct regs {
	uint64_t r[13];		/* rax rcx rdx rbx rsi rdi r8..r14 */
	uint64_t flags;
	uint64_t mem;		/* a memory operand at 0x70(%r15) */
};

static const char *const reg_names[13] = {
	"rax", "rcx", "rdx", "rbx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14"
};

#define ALLF (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

struct tmpl {
	const char *insn;	/* printf format: %s is the size suffix operand set */
	uint64_t undef;		/* flags the SDM leaves undefined */
	int fix;		/* operand constraints, FIX_* */
};

enum { FIX_NONE, FIX_DIV, FIX_IDIV, FIX_SHIFT8, FIX_SHIFT16, FIX_SHD16 };

static const struct tmpl tmpls[] = {
	/* ALU, every size, register and memory forms */
	{ "add %bl, %al" }, { "add %bx, %ax" }, { "add %ebx, %eax" }, { "add %rbx, %rax" },
	{ "adc %bl, %al" }, { "adc %bx, %ax" }, { "adc %ebx, %eax" }, { "adc %rbx, %rax" },
	{ "sub %bl, %al" }, { "sub %bx, %ax" }, { "sub %ebx, %eax" }, { "sub %rbx, %rax" },
	{ "sbb %bl, %al" }, { "sbb %bx, %ax" }, { "sbb %ebx, %eax" }, { "sbb %rbx, %rax" },
	{ "cmp %bl, %al" }, { "cmp %bx, %ax" }, { "cmp %ebx, %eax" }, { "cmp %rbx, %rax" },
	{ "and %bl, %al", F_AF }, { "and %rbx, %rax", F_AF },
	{ "or %bx, %ax", F_AF }, { "or %ebx, %eax", F_AF },
	{ "xor %bl, %ah", F_AF }, { "xor %rbx, %rax", F_AF },
	{ "test %cl, %dh", F_AF }, { "test %rcx, %rdx", F_AF },
	{ "add %rbx, 0x70(%r15)" }, { "sub 0x70(%r15), %ecx" }, { "adc %dl, 0x70(%r15)" },
	{ "sbbw $-3, 0x70(%r15)" }, { "addl $0x7fffffff, 0x70(%r15)" },
	{ "add $-128, %r9b" }, { "sub $1, %r10w" }, { "cmp $0x80, %r11d" }, { "and $-2, %r12" },
	{ "inc %al" }, { "inc %bx" }, { "dec %ecx" }, { "dec %rdx" }, { "incb 0x70(%r15)" },
	{ "neg %al" }, { "neg %si" }, { "neg %edi" }, { "neg %r8" },
	{ "not %al" }, { "not %r9" },
	/* shifts and rotates */
	{ "shl %cl, %al", F_AF | F_OF, FIX_SHIFT8 }, { "shl %cl, %bx", F_AF | F_OF, FIX_SHIFT16 },
	{ "shl %cl, %edx", F_AF | F_OF }, { "shl %cl, %rsi", F_AF | F_OF },
	{ "shr %cl, %al", F_AF | F_OF, FIX_SHIFT8 }, { "shr %cl, %bx", F_AF | F_OF, FIX_SHIFT16 },
	{ "shr %cl, %edx", F_AF | F_OF }, { "shr %cl, %rsi", F_AF | F_OF },
	{ "sar %cl, %al", F_AF | F_OF, FIX_SHIFT8 }, { "sar %cl, %bx", F_AF | F_OF, FIX_SHIFT16 },
	{ "sar %cl, %edx", F_AF | F_OF }, { "sar %cl, %rsi", F_AF | F_OF },
	{ "shl $1, %eax", F_AF }, { "shr $1, %ax", F_AF }, { "sar $1, %rax", F_AF },
	{ "shl $7, %rdx", F_AF | F_OF }, { "sar $31, %edx", F_AF | F_OF },
	{ "rol %cl, %al", F_OF }, { "rol %cl, %bx", F_OF }, { "rol %cl, %edx", F_OF },
	{ "rol %cl, %rsi", F_OF }, { "ror %cl, %al", F_OF }, { "ror %cl, %rsi", F_OF },
	{ "rol $1, %eax" }, { "ror $1, %rax" },
	{ "rcl %cl, %al", F_OF }, { "rcl %cl, %bx", F_OF }, { "rcl %cl, %edx", F_OF },
	{ "rcl %cl, %rsi", F_OF }, { "rcr %cl, %al", F_OF }, { "rcr %cl, %bx", F_OF },
	{ "rcr %cl, %edx", F_OF }, { "rcr %cl, %rsi", F_OF },
	{ "rcl $1, %r8d" }, { "rcr $1, %r9w" },
	{ "shld %cl, %ebx, %eax", F_AF | F_OF }, { "shld %cl, %rbx, %rax", F_AF | F_OF },
	{ "shrd %cl, %ebx, %eax", F_AF | F_OF }, { "shrd %cl, %rbx, %rax", F_AF | F_OF },
	{ "shld %cl, %bx, %ax", F_AF | F_OF, FIX_SHD16 }, { "shrd %cl, %bx, %ax", F_AF | F_OF, FIX_SHD16 },
	{ "shld $1, %rbx, %rax", F_AF }, { "shrd $5, %ebx, %eax", F_AF | F_OF },
	/* multiply and divide */
	{ "mul %bl", F_SF | F_ZF | F_AF | F_PF }, { "mul %bx", F_SF | F_ZF | F_AF | F_PF },
	{ "mul %ebx", F_SF | F_ZF | F_AF | F_PF }, { "mul %rbx", F_SF | F_ZF | F_AF | F_PF },
	{ "imul %bl", F_SF | F_ZF | F_AF | F_PF }, { "imul %bx", F_SF | F_ZF | F_AF | F_PF },
	{ "imul %ebx", F_SF | F_ZF | F_AF | F_PF }, { "imul %rbx", F_SF | F_ZF | F_AF | F_PF },
	{ "imul %bx, %cx", F_SF | F_ZF | F_AF | F_PF }, { "imul %rbx, %rcx", F_SF | F_ZF | F_AF | F_PF },
	{ "imul $-7, %ebx, %ecx", F_SF | F_ZF | F_AF | F_PF },
	{ "imul $0x12345, %rbx, %rcx", F_SF | F_ZF | F_AF | F_PF },
	{ "div %bl", ALLF, FIX_DIV }, { "div %bx", ALLF, FIX_DIV }, { "div %ebx", ALLF, FIX_DIV },
	{ "div %rbx", ALLF, FIX_DIV },
	{ "cbw; idiv %bl", ALLF, FIX_IDIV }, { "cwd; idiv %bx", ALLF, FIX_IDIV },
	{ "cdq; idiv %ebx", ALLF, FIX_IDIV }, { "cqo; idiv %rbx", ALLF, FIX_IDIV },
	/* bit operations */
	{ "bt %ebx, %eax", F_OF | F_SF | F_AF | F_PF }, { "bts %rbx, %rax", F_OF | F_SF | F_AF | F_PF },
	{ "btr %bx, %ax", F_OF | F_SF | F_AF | F_PF }, { "btc %rbx, %rax", F_OF | F_SF | F_AF | F_PF },
	{ "btl $9, 0x70(%r15)", F_OF | F_SF | F_AF | F_PF },
	{ "btsq $63, 0x70(%r15)", F_OF | F_SF | F_AF | F_PF },
	{ "btc $17, %ecx", F_OF | F_SF | F_AF | F_PF },
	{ "bsf %rbx, %rax", F_CF | F_OF | F_SF | F_AF | F_PF },
	{ "bsr %ebx, %eax", F_CF | F_OF | F_SF | F_AF | F_PF },
	{ "bsf %bx, %ax", F_CF | F_OF | F_SF | F_AF | F_PF },
	{ "popcnt %rbx, %rax" }, { "popcnt %bx, %ax" },
	{ "lzcnt %rbx, %rax", F_OF | F_SF | F_AF | F_PF }, { "lzcnt %ebx, %eax", F_OF | F_SF | F_AF | F_PF },
	{ "lzcnt %bx, %ax", F_OF | F_SF | F_AF | F_PF },
	{ "bswap %eax" }, { "bswap %r9" },
	/* data movement with flag inputs */
	{ "cmpxchg %bl, %cl" }, { "cmpxchg %ebx, %ecx" }, { "cmpxchg %rbx, 0x70(%r15)" },
	{ "xadd %bx, %cx" }, { "xadd %rbx, %rcx" },
	{ "movsbw %bl, %ax" }, { "movzwl %bx, %eax" }, { "movslq %ebx, %rax" }, { "movsbl %bh, %eax" },
	{ "cbw" }, { "cwde" }, { "cdqe" }, { "cwd" }, { "cdq" }, { "cqo" },
	{ "xchg %bl, %ch" }, { "xchg %rbx, 0x70(%r15)" },
	{ "lea 0x10(%rax,%rbx,4), %ecx" }, { "lea -8(%rsi,%rdi,8), %r8" }, { "lea (%ebx,%ecx), %dx" },
	{ "seto %al; setno %bl; setb %cl; setae %dl; sete %sil; setne %dil; setbe %r8b; seta %r9b" },
	{ "sets %al; setns %bl; setp %cl; setnp %dl; setl %sil; setge %dil; setle %r8b; setg %r9b" },
	{ "cmovo %rbx, %rax; cmovb %ebx, %ecx; cmovz %bx, %dx; cmovbe %rsi, %rdi" },
	{ "cmovs %rbx, %rax; cmovp %ebx, %ecx; cmovl %bx, %dx; cmovle %rsi, %rdi" },
	{ "cmovno %ebx, %eax; cmovae %ebx, %ecx; cmovnz %ebx, %edx; cmova %esi, %edi" },
	{ "lahf" }, { "sahf" }, { "cmc" }, { "clc; adc %rbx, %rax" }, { "stc; sbb %ebx, %eax" },
	{ "sub %rbx, %rax; jb 1f; inc %rcx; 1: jle 2f; inc %rdx; 2: jo 3f; inc %rsi; 3: js 4f; inc %rdi; 4:" },
	{ "cmp %ebx, %eax; jae 1f; inc %rcx; 1: jg 2f; inc %rdx; 2: jnp 3f; inc %rsi; 3: ja 4f; inc %rdi; 4:" },
	{ "add %al, %bl; jc 1f; inc %rcx; 1: jge 2f; inc %rdx; 2: jno 3f; inc %rsi; 3: jns 4f; inc %rdi; 4:" },
	{ "movzbl %bl, %ecx; inc %ecx; 1: inc %rax; loop 1b" },
	/* flags across instructions of one block (opt.c's liveness) */
	{ "imul $1103515245, %eax, %eax; add $12345, %eax; rol $7, %eax; dec %ecx" },
	{ "add %rbx, %rax; rol $1, %rcx" }, { "sub %ebx, %eax; ror $5, %edx", F_OF },
	{ "sub %ebx, %eax; ror $3, %edx; adc %esi, %edi" },
	{ "neg %rax; inc %rbx; setc %cl; dec %rdx" }, { "add %ebx, %eax; inc %ecx; dec %edx" },
	{ "add %esi, %edi; rcl $3, %eax; add %ebx, %ecx" },
	{ "sub %esi, %edi; rcr $1, %al; sub %bl, %cl" },
	{ "add %ebx, %eax; shl $0, %ecx" }, { "add %ebx, %eax; shl %cl, %edx", F_OF | F_AF, FIX_SHIFT8 },
	/* shifts whose flags the next instruction overwrites (inline in
	 * generated code), counts past the operand width included */
	{ "shl $3, %al; add %ebx, %esi" }, { "shl $9, %bl; sub %eax, %esi" },
	{ "shr $5, %dx; add %ebx, %esi" }, { "shr $17, %di; xor %eax, %esi" },
	{ "sar $7, %cl; add %ebx, %esi" }, { "sar $20, %al; and %ebx, %esi" },
	{ "shl $31, %eax; add %ebx, %esi" }, { "shr $1, %ebx; or %eax, %esi" },
	{ "sar $13, %edx; add %ebx, %esi" }, { "shl $33, %rdx; add %ebx, %esi" },
	{ "shr $63, %rax; sub %ebx, %esi" }, { "sar $40, %r8; add %ebx, %esi" },
	{ "shl %cl, %al; add %ebx, %esi" }, { "shr %cl, %bx; add %ebx, %esi" },
	{ "sar %cl, %dl; add %ebx, %esi" }, { "sar %cl, %di; xor %eax, %esi" },
	{ "shl %cl, %edx; add %ebx, %esi" }, { "sar %cl, %eax; add %ebx, %esi" },
	{ "shr %cl, %rdx; add %ebx, %esi" }, { "sal %cl, %r9; add %ebx, %esi" },
	{ "imul %rbx, %rax; test %ecx, %ecx; jz 1f; inc %rsi; 1: js 2f; inc %rdi; 2:" },
	/* the flags of a compare from the block before (generated code
	 * tests the lazy state at run time) */
	{ "cmp %ebx, %eax; jmp 1f; 1: jb 2f; inc %rcx; 2: jbe 3f; inc %rdx; 3: ja 4f; inc %rsi; 4: jae 5f; inc %rdi; 5:" },
	{ "cmp %bl, %al; jmp 1f; 1: jb 2f; inc %rcx; 2: jne 3f; inc %rdx; 3: ja 4f; inc %rsi; 4: je 5f; inc %rdi; 5:" },
	{ "sub %bx, %ax; jmp 1f; 1: jae 2f; inc %rcx; 2: jbe 3f; inc %rdx; 3: jl 4f; inc %rsi; 4:" },
	{ "cmp %rbx, %rax; jmp 1f; 1: jb 2f; inc %rcx; 2: ja 3f; inc %rdx; 3: jge 4f; inc %rsi; 4:" },
	{ "add %ebx, %eax; jmp 1f; 1: jb 2f; inc %rcx; 2: jbe 3f; inc %rdx; 3: jne 4f; inc %rsi; 4:" },
	{ "cmp %ebx, %eax; jb 1f; inc %rcx; 1: jae 2f; inc %rdx; 2: jbe 3f; inc %rsi; 3: ja 4f; inc %rdi; 4:" },
	{ "and %ebx, %eax; jle 1f; inc %rsi; 1: jl 2f; inc %rdi; 2: jbe 3f; inc %rdx; 3:" },
	{ "or %bl, %al; jo 1f; inc %rsi; 1: jb 2f; inc %rdi; 2: jp 3f; inc %rdx; 3:" },
	{ "mov %bl, %cl; xor %ch, %ch; jrcxz 1f; inc %rax; 1:" },
};

#define STUB_PRE							\
	".code64\n"							\
	"push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n" \
	"mov %rdi, %r15\n"						\
	"pushq 0x68(%r15); popfq\n"					\
	"mov 0x00(%r15), %rax; mov 0x08(%r15), %rcx; mov 0x10(%r15), %rdx\n" \
	"mov 0x18(%r15), %rbx; mov 0x20(%r15), %rsi; mov 0x28(%r15), %rdi\n" \
	"mov 0x30(%r15), %r8; mov 0x38(%r15), %r9; mov 0x40(%r15), %r10\n" \
	"mov 0x48(%r15), %r11; mov 0x50(%r15), %r12; mov 0x58(%r15), %r13\n" \
	"mov 0x60(%r15), %r14\n"
#define STUB_POST							\
	"\nmov %rax, 0x00(%r15); mov %rcx, 0x08(%r15); mov %rdx, 0x10(%r15)\n" \
	"mov %rbx, 0x18(%r15); mov %rsi, 0x20(%r15); mov %rdi, 0x28(%r15)\n" \
	"mov %r8, 0x30(%r15); mov %r9, 0x38(%r15); mov %r10, 0x40(%r15)\n" \
	"mov %r11, 0x48(%r15); mov %r12, 0x50(%r15); mov %r13, 0x58(%r15)\n" \
	"mov %r14, 0x60(%r15)\n"					\
	"pushfq; popq 0x68(%r15)\n"					\
	"pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"	\
	"ret\n"

static uint64_t rnd_value(GRand *r)
{
	static const uint64_t special[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
		0xffffffff, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, ~1ull,
	};
	uint64_t v = ((uint64_t)g_rand_int(r) << 32) | g_rand_int(r);

	switch (g_rand_int_range(r, 0, 4)) {
	case 0: return special[g_rand_int_range(r, 0, G_N_ELEMENTS(special))];
	case 1: return v & 0xff;
	case 2: return v ^ special[g_rand_int_range(r, 0, G_N_ELEMENTS(special))];
	default: return v;
	}
}

static void fixup(struct regs *x, int fix, GRand *r)
{
	switch (fix) {
	case FIX_DIV:
		/* quotient must fit: rdx:rax < divisor << width */
		for (unsigned w = 8; w <= 64; w *= 2) {
			uint64_t m = w == 64 ? ~0ull : (1ull << w) - 1;

			if (!(x->r[3] & m))
				x->r[3] |= 1;
			(void)m;
		}
		x->r[2] = 0;
		x->r[0] &= ~0xff00ull;		/* AH = 0 for div r/m8 */
		break;
	case FIX_IDIV:
		if (!(x->r[3] & 0xff))
			x->r[3] |= 1;
		if ((x->r[3] & 0xff) == 0xff)
			x->r[3] ^= 2;		/* avoid -1 with the minimum dividend */
		if ((x->r[3] & 0xffff) == 0xffff || (uint32_t)x->r[3] == 0xffffffff || x->r[3] == ~0ull)
			x->r[3] ^= 2;
		break;
	case FIX_SHIFT8:
		x->r[1] = (x->r[1] & ~0xffull) | g_rand_int_range(r, 0, 8);
		break;
	case FIX_SHIFT16:
		x->r[1] = (x->r[1] & ~0xffull) | g_rand_int_range(r, 0, 16);
		break;
	case FIX_SHD16:
		x->r[1] = (x->r[1] & ~0xffull) | g_rand_int_range(r, 0, 17);
		break;
	}
}

static void test_diff(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];
	uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	GRand *r = g_rand_new_with_seed(0x5eed);
	unsigned checked = 0;

	g_assert_true(page != MAP_FAILED);
	tm_long64(t, 0, 0x1000);
	tm_wr(t, 0x2000, 0xf4, 1);		/* hlt, the stub's return address */
	for (size_t k = 0; k < G_N_ELEMENTS(tmpls); k++) {
		char *src = g_strconcat(STUB_PRE, tmpls[k].insn, STUB_POST, NULL);
		size_t n;
		uint8_t *code = tm_asm(src, &n);

		g_assert_cmpuint(n, <=, 4096);
		memcpy(page, code, n);
		g_assert_cmpint(guest_write(&t->m.mem, 0x1000, code, n), ==, 0);
		for (unsigned it = 0; it < 300; it++) {
			struct regs in, host, guest;
			uint64_t mask = ALLF & ~tmpls[k].undef;

			for (unsigned q = 0; q < 13; q++)
				in.r[q] = rnd_value(r);
			in.mem = rnd_value(r);
			in.flags = (g_rand_int(r) & ALLF) | 0x202;
			fixup(&in, tmpls[k].fix, r);

			host = in;
			((void (*)(struct regs *))page)(&host);

			g_assert_cmpint(guest_write(&t->m.mem, 0x3000, &in, sizeof(in)), ==, 0);
			c->rip = 0x1000;
			c->gpr[R_RDI] = 0x3000;
			c->gpr[R_RSP] = 0x80000 - 8;
			tm_wr(t, 0x80000 - 8, 0x2000, 8);
			c->halted = false;
			g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
			g_assert_cmpint(guest_read(&t->m.mem, 0x3000, &guest, sizeof(guest)), ==, 0);

			for (unsigned q = 0; q < 13; q++) {
				if (host.r[q] != guest.r[q])
					g_error("%s: %s = %#lx, host %#lx (in: rax %#lx rbx %#lx "
						"rcx %#lx rdx %#lx flags %#lx)", tmpls[k].insn,
						reg_names[q], (unsigned long)guest.r[q],
						(unsigned long)host.r[q], (unsigned long)in.r[0],
						(unsigned long)in.r[3], (unsigned long)in.r[1],
						(unsigned long)in.r[2], (unsigned long)in.flags);
			}
			if (host.mem != guest.mem)
				g_error("%s: mem = %#lx, host %#lx", tmpls[k].insn,
					(unsigned long)guest.mem, (unsigned long)host.mem);
			if ((host.flags ^ guest.flags) & mask)
				g_error("%s: flags %#lx, host %#lx (in: rax %#lx rbx %#lx rcx %#lx "
					"flags %#lx)", tmpls[k].insn, (unsigned long)guest.flags & mask,
					(unsigned long)host.flags & mask, (unsigned long)in.r[0],
					(unsigned long)in.r[3], (unsigned long)in.r[1],
					(unsigned long)in.flags);
			checked++;
		}
		g_free(code);
		g_free(src);
	}
	g_assert_cmpuint(checked, ==, 300 * G_N_ELEMENTS(tmpls));
	g_rand_free(r);
	munmap(page, 4096);
	tm_free(t);
}

/*
 * SSE/SSE2 and MMX: the same differential test
 * with xmm0-3 loaded from and stored to the register block.
 */
struct vregs {
	uint64_t r[13];
	uint64_t flags;
	uint64_t mem, mem2;	/* memory operands at 0x70 and 0x78 */
	uint64_t x[4][2];	/* xmm0-3 at 0x80 */
	uint64_t m128[2];	/* an aligned memory operand at 0xc0 */
	uint32_t mxcsr_in, mxcsr_out;	/* at 0xd0, 0xd4 */
	uint64_t mm[4];			/* mm0-3 at 0xd8 */
} __attribute__((aligned(16)));

#define XPRE "movdqu 0x80(%r15), %xmm0; movdqu 0x90(%r15), %xmm1\n" \
	     "movdqu 0xa0(%r15), %xmm2; movdqu 0xb0(%r15), %xmm3\n" \
	     "ldmxcsr 0xd0(%r15)\n"
#define XPOST "\nstmxcsr 0xd4(%r15)\n" \
	      "movdqu %xmm0, 0x80(%r15); movdqu %xmm1, 0x90(%r15)\n" \
	      "movdqu %xmm2, 0xa0(%r15); movdqu %xmm3, 0xb0(%r15)\n" \
	      "movl $0x1f80, -8(%rsp); ldmxcsr -8(%rsp)\n"
#define MPRE "movq 0xd8(%r15), %mm0; movq 0xe0(%r15), %mm1\n" \
	     "movq 0xe8(%r15), %mm2; movq 0xf0(%r15), %mm3\n"
#define MPOST "\nmovq %mm0, 0xd8(%r15); movq %mm1, 0xe0(%r15)\n" \
	      "movq %mm2, 0xe8(%r15); movq %mm3, 0xf0(%r15); emms\n"

static const char *const sse_tmpls[] = {
	"paddb %xmm1, %xmm0", "paddw %xmm1, %xmm0", "paddd %xmm1, %xmm0", "paddq %xmm1, %xmm0",
	"psubb %xmm1, %xmm0", "psubw %xmm1, %xmm0", "psubd %xmm1, %xmm0", "psubq %xmm1, %xmm0",
	"paddsb %xmm1, %xmm0", "paddsw %xmm1, %xmm0", "paddusb %xmm1, %xmm0", "paddusw %xmm1, %xmm0",
	"psubsb %xmm1, %xmm0", "psubsw %xmm1, %xmm0", "psubusb %xmm1, %xmm0", "psubusw %xmm1, %xmm0",
	"pcmpeqb %xmm1, %xmm0", "pcmpeqw %xmm1, %xmm0", "pcmpeqd %xmm1, %xmm0",
	"pcmpgtb %xmm1, %xmm0", "pcmpgtw %xmm1, %xmm0", "pcmpgtd %xmm1, %xmm0",
	"pminub %xmm1, %xmm0", "pmaxub %xmm1, %xmm0", "pminsw %xmm1, %xmm0", "pmaxsw %xmm1, %xmm0",
	"pavgb %xmm1, %xmm0", "pavgw %xmm1, %xmm0",
	"pmullw %xmm1, %xmm0", "pmulhw %xmm1, %xmm0", "pmulhuw %xmm1, %xmm0",
	"pand %xmm1, %xmm0", "pandn %xmm1, %xmm0", "por %xmm1, %xmm0", "pxor %xmm1, %xmm0",
	"andps %xmm1, %xmm0", "andnps %xmm1, %xmm0", "orps %xmm1, %xmm0", "xorps %xmm1, %xmm0",
	"andpd %xmm1, %xmm0", "xorpd %xmm1, %xmm0",
	"punpcklbw %xmm1, %xmm0", "punpcklwd %xmm1, %xmm0", "punpckldq %xmm1, %xmm0",
	"punpcklqdq %xmm1, %xmm0", "punpckhbw %xmm1, %xmm0", "punpckhwd %xmm1, %xmm0",
	"punpckhdq %xmm1, %xmm0", "punpckhqdq %xmm1, %xmm0",
	"packsswb %xmm1, %xmm0", "packuswb %xmm1, %xmm0", "packssdw %xmm1, %xmm0",
	"unpcklps %xmm1, %xmm0", "unpckhps %xmm1, %xmm0", "unpcklpd %xmm1, %xmm0",
	"unpckhpd %xmm1, %xmm0",
	"pshufd $0x1b, %xmm1, %xmm0", "pshuflw $0x93, %xmm1, %xmm0", "pshufhw $0x4e, %xmm1, %xmm0",
	"shufps $0x39, %xmm1, %xmm0", "shufpd $1, %xmm1, %xmm0", "shufpd $2, %xmm1, %xmm0",
	"psllw $3, %xmm0", "psrlw $15, %xmm0", "psraw $4, %xmm0", "psraw $20, %xmm0",
	"pslld $17, %xmm0", "psrld $31, %xmm0", "psrad $33, %xmm0", "psllq $63, %xmm0",
	"psrlq $1, %xmm0", "pslldq $5, %xmm0", "psrldq $17, %xmm0", "psrldq $9, %xmm0",
	"psllw %xmm1, %xmm0", "psrad %xmm1, %xmm0", "psrlq %xmm1, %xmm0", "pslld %xmm1, %xmm0",
	"pmovmskb %xmm1, %eax", "movmskps %xmm1, %eax", "movmskpd %xmm1, %ecx",
	"movd %xmm1, %eax", "movd %ebx, %xmm0", "movq %rbx, %xmm0", "movq %xmm1, %rax",
	"movq %xmm1, %xmm0", "movss %xmm1, %xmm0", "movsd %xmm1, %xmm0",
	"movhlps %xmm1, %xmm0", "movlhps %xmm1, %xmm0", "movaps %xmm1, %xmm0",
	"movapd %xmm2, %xmm3", "movdqa %xmm3, %xmm1",
	"movdqa 0xc0(%r15), %xmm2", "movups 0x70(%r15), %xmm1", "paddd 0xc0(%r15), %xmm3",
	"movlps 0x78(%r15), %xmm0", "movhps %xmm1, 0x70(%r15)", "movhps 0x70(%r15), %xmm2",
	"movss 0x70(%r15), %xmm2", "movsd %xmm1, 0x70(%r15)", "movsd 0x78(%r15), %xmm3",
	"movq 0x70(%r15), %xmm1", "movq %xmm2, 0x78(%r15)", "movd 0x74(%r15), %xmm0",
	"movd %xmm3, 0x70(%r15)", "movdqu %xmm2, 0x71(%r15)", "movaps %xmm0, 0xc0(%r15)",
	"pxor %xmm0, %xmm0; pcmpeqb 0xc0(%r15), %xmm0; pmovmskb %xmm0, %edx",
	"movshdup %xmm1, %xmm0", "movsldup %xmm1, %xmm0", "movddup %xmm1, %xmm0",
	"movddup 0x70(%r15), %xmm2", "lddqu 0x71(%r15), %xmm3", "movshdup 0xc0(%r15), %xmm1",
	/* SSE4.1, and pcmpgtq/crc32 of SSE4.2 */
	"pblendvb %xmm0, %xmm1, %xmm2", "blendvps %xmm0, %xmm1, %xmm2",
	"blendvpd %xmm0, %xmm3, %xmm1", "ptest %xmm1, %xmm0", "ptest %xmm0, %xmm0",
	"pmovsxbw %xmm1, %xmm0", "pmovzxbd %xmm1, %xmm0", "pmovsxbq %xmm1, %xmm0",
	"pmovzxwd %xmm1, %xmm0", "pmovsxwq %xmm1, %xmm0", "pmovzxdq %xmm1, %xmm0",
	"pmovsxdq 0x70(%r15), %xmm2", "pmovzxbq 0x74(%r15), %xmm3", "pmovsxbd 0x72(%r15), %xmm1",
	"pmuldq %xmm1, %xmm0", "pcmpeqq %xmm1, %xmm0", "pcmpgtq %xmm1, %xmm0",
	"movntdqa 0xc0(%r15), %xmm1", "packusdw %xmm1, %xmm0",
	"pminsb %xmm1, %xmm0", "pminsd %xmm1, %xmm0", "pminuw %xmm1, %xmm0", "pminud %xmm1, %xmm0",
	"pmaxsb %xmm1, %xmm0", "pmaxsd %xmm1, %xmm0", "pmaxuw %xmm1, %xmm0", "pmaxud %xmm1, %xmm0",
	"pmulld %xmm1, %xmm0", "phminposuw %xmm1, %xmm0",
	"blendps $5, %xmm1, %xmm0", "blendpd $2, %xmm1, %xmm0", "pblendw $0x96, %xmm1, %xmm0",
	"mpsadbw $5, %xmm1, %xmm0", "mpsadbw $2, %xmm1, %xmm0",
	"pextrb $9, %xmm1, %eax", "pextrw $5, %xmm1, 0x70(%r15)", "pextrd $3, %xmm1, %ecx",
	"pextrq $1, %xmm1, %rdx", "extractps $2, %xmm1, %eax", "pextrb $3, %xmm2, 0x71(%r15)",
	"pinsrb $7, %ebx, %xmm0", "pinsrd $2, %ebx, %xmm0", "pinsrq $1, %rbx, %xmm0",
	"pinsrb $3, 0x70(%r15), %xmm1", "insertps $0x9c, %xmm1, %xmm0",
	"insertps $0x35, 0x70(%r15), %xmm2",
	"crc32b %bl, %eax", "crc32w %bx, %eax", "crc32l %ebx, %eax", "crc32q %rbx, %rax",
	"crc32l 0x70(%r15), %edx",
	"pcmpestri $0x00, %xmm1, %xmm0", "pcmpestri $0x04, %xmm1, %xmm0",
	"pcmpestri $0x08, %xmm1, %xmm0", "pcmpestri $0x0c, %xmm1, %xmm0",
	"pcmpestri $0x45, %xmm1, %xmm0", "pcmpestri $0x1a, %xmm1, %xmm0",
	"pcmpestri $0x3b, %xmm1, %xmm0", "pcmpestrm $0x00, %xmm1, %xmm2",
	"pcmpestrm $0x44, %xmm1, %xmm2", "pcmpestrm $0x1d, %xmm1, %xmm3",
	"pcmpistri $0x00, %xmm1, %xmm0", "pcmpistri $0x04, %xmm1, %xmm0",
	"pcmpistri $0x08, %xmm1, %xmm0", "pcmpistri $0x4c, %xmm1, %xmm0",
	"pcmpistri $0x31, %xmm1, %xmm0", "pcmpistri $0x0e, %xmm1, %xmm0",
	"pcmpistrm $0x40, %xmm1, %xmm2", "pcmpistrm $0x3a, %xmm1, %xmm2",
	"pcmpistri $0x0c, 0xc0(%r15), %xmm1", "pcmpestrm $0x08, 0x71(%r15), %xmm1",
	"mov $5, %eax; mov $12, %edx; pcmpestri $0x0c, %xmm1, %xmm0",
	"mov $-3, %rax; mov $7, %rdx; pcmpestri $0x39, %xmm1, %xmm0",
	"mov $3, %eax; mov $9, %edx; pcmpestrm $0x45, %xmm1, %xmm2",
	"pxor %xmm3, %xmm3; punpcklbw %xmm3, %xmm1; pcmpistri $0x08, %xmm1, %xmm0",
};

static const char *const fp_tmpls[] = {
	"addps %xmm1, %xmm0", "addpd %xmm1, %xmm0", "addss %xmm1, %xmm0", "addsd %xmm1, %xmm0",
	"subps %xmm1, %xmm0", "subpd %xmm1, %xmm0", "subss %xmm1, %xmm0", "subsd %xmm1, %xmm0",
	"mulps %xmm1, %xmm0", "mulpd %xmm1, %xmm0", "mulss %xmm1, %xmm0", "mulsd %xmm1, %xmm0",
	"divps %xmm1, %xmm0", "divpd %xmm1, %xmm0", "divss %xmm1, %xmm0", "divsd %xmm1, %xmm0",
	"minps %xmm1, %xmm0", "minpd %xmm1, %xmm0", "minss %xmm1, %xmm0", "minsd %xmm1, %xmm0",
	"maxps %xmm1, %xmm0", "maxpd %xmm1, %xmm0", "maxss %xmm1, %xmm0", "maxsd %xmm1, %xmm0",
	"sqrtps %xmm1, %xmm0", "sqrtpd %xmm1, %xmm0", "sqrtss %xmm1, %xmm0", "sqrtsd %xmm1, %xmm0",
	"cmpps $0, %xmm1, %xmm0", "cmpps $1, %xmm1, %xmm0", "cmpps $2, %xmm1, %xmm0",
	"cmpps $3, %xmm1, %xmm0", "cmpps $4, %xmm1, %xmm0", "cmpps $5, %xmm1, %xmm0",
	"cmpps $6, %xmm1, %xmm0", "cmpps $7, %xmm1, %xmm0",
	"cmppd $1, %xmm1, %xmm0", "cmpsd $2, %xmm1, %xmm0", "cmpss $4, %xmm1, %xmm0",
	"cmpsd $7, %xmm1, %xmm0",
	"comiss %xmm1, %xmm0", "ucomiss %xmm1, %xmm0", "comisd %xmm1, %xmm0", "ucomisd %xmm1, %xmm0",
	"cvtsi2ss %eax, %xmm0", "cvtsi2ss %rax, %xmm0", "cvtsi2sd %eax, %xmm0", "cvtsi2sd %rax, %xmm0",
	"cvtss2si %xmm1, %eax", "cvtss2si %xmm1, %rax", "cvttss2si %xmm1, %eax", "cvttss2si %xmm1, %rax",
	"cvtsd2si %xmm1, %eax", "cvtsd2si %xmm1, %rax", "cvttsd2si %xmm1, %eax", "cvttsd2si %xmm1, %rax",
	"cvtss2sd %xmm1, %xmm0", "cvtsd2ss %xmm1, %xmm0", "cvtps2pd %xmm1, %xmm0",
	"cvtpd2ps %xmm1, %xmm0", "cvtdq2ps %xmm1, %xmm0", "cvtps2dq %xmm1, %xmm0",
	"cvttps2dq %xmm1, %xmm0", "cvtdq2pd %xmm1, %xmm0", "cvtpd2dq %xmm1, %xmm0",
	"cvttpd2dq %xmm1, %xmm0",
	"roundps $0, %xmm1, %xmm0", "roundps $1, %xmm1, %xmm0", "roundpd $2, %xmm1, %xmm0",
	"roundss $3, %xmm1, %xmm0", "roundsd $4, %xmm1, %xmm0", "roundps $9, %xmm1, %xmm0",
	"roundsd $0xc, 0x78(%r15), %xmm2",
	"dpps $0xff, %xmm1, %xmm0", "dpps $0x71, %xmm1, %xmm0", "dppd $0x31, %xmm1, %xmm0",
	"dppd $0x12, %xmm1, %xmm0",
	"haddps %xmm1, %xmm0", "haddpd %xmm1, %xmm0", "hsubps %xmm1, %xmm0", "hsubpd %xmm1, %xmm0",
	"addsubps %xmm1, %xmm0", "addsubpd %xmm1, %xmm0", "haddps 0xc0(%r15), %xmm1",
	"addsd 0x70(%r15), %xmm2", "mulps 0xc0(%r15), %xmm1", "cvtss2sd 0x74(%r15), %xmm3",
	"ucomisd 0x78(%r15), %xmm0", "cvttsd2si 0x70(%r15), %rdx", "cvtsi2ssl 0x70(%r15), %xmm1",
};

/* Mostly ordinary numbers, with zeros, infinities, NaNs, denormals. */
static uint64_t rnd_fp(GRand *r, bool dbl)
{
	static const uint64_t sd[] = { 0, 1ull << 63, 0x7ff0000000000000ull, 0xfff0000000000000ull,
				       0x7ff8000000000000ull, 0x7ff4000000000000ull, 1, 0x000fffffffffffffull,
				       0x3ff0000000000000ull, 0x7fefffffffffffffull };
	static const uint32_t sf[] = { 0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000,
				       1, 0x007fffff, 0x3f800000, 0x7f7fffff };
	double d = (g_rand_double(r) - 0.5) * pow(2.0, g_rand_int_range(r, -140, 140));
	float f = d;
	uint64_t v = 0;

	if (g_rand_int_range(r, 0, 4) == 0)
		return dbl ? sd[g_rand_int_range(r, 0, G_N_ELEMENTS(sd))] :
			     sf[g_rand_int_range(r, 0, G_N_ELEMENTS(sf))];
	if (dbl)
		memcpy(&v, &d, 8);
	else
		memcpy(&v, &f, 4);
	return v;
}

static void run_vec_diff(const char *const *tmpls, size_t nt, bool fp, bool mmx, uint32_t seed)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];
	uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	GRand *r = g_rand_new_with_seed(seed);

	g_assert_true(page != MAP_FAILED);
	tm_long64(t, 0, 0x1000);
	c->cr4 |= CR4_OSFXSR;
	tm_wr(t, 0x2000, 0xf4, 1);
	for (size_t k = 0; k < nt; k++) {
		char *src = g_strconcat(STUB_PRE, XPRE, mmx ? MPRE : "", tmpls[k], mmx ? MPOST : "",
					XPOST, STUB_POST, NULL);
		size_t n;
		uint8_t *code = tm_asm(src, &n);

		memcpy(page, code, n);
		g_assert_cmpint(guest_write(&t->m.mem, 0x1000, code, n), ==, 0);
		for (unsigned it = 0; it < 200; it++) {
			struct vregs in, host, guest;
			bool dbl = g_rand_boolean(r);

			memset(&in, 0, sizeof(in));
			for (unsigned q = 0; q < 13; q++)
				in.r[q] = rnd_value(r);
			in.flags = (g_rand_int(r) & ALLF) | 0x202;
			in.mem = rnd_value(r);
			in.mem2 = rnd_value(r);
			for (unsigned x = 0; x < 4; x++)
				for (unsigned h = 0; h < 2; h++)
					in.x[x][h] = rnd_value(r);
			in.m128[0] = rnd_value(r);
			in.m128[1] = rnd_value(r);
			for (unsigned q = 0; q < 4; q++)
				in.mm[q] = rnd_value(r);
			if (mmx && (it & 1))
				in.mm[1] = g_rand_int_range(r, 0, 70);	/* shift counts */
			in.mxcsr_in = 0x1f80;
			if (fp) {
				for (unsigned x = 0; x < 4; x++)
					for (unsigned h = 0; h < 2; h++)
						in.x[x][h] = dbl ? rnd_fp(r, true) :
							rnd_fp(r, false) | rnd_fp(r, false) << 32;
				in.mem = dbl ? rnd_fp(r, true) : rnd_fp(r, false) | rnd_fp(r, false) << 32;
				in.mem2 = rnd_fp(r, true);
				/* rounding mode, DAZ, FTZ; exceptions stay masked */
				in.mxcsr_in |= (g_rand_int_range(r, 0, 4) << 13) |
					       (g_rand_boolean(r) ? 0x40 : 0) |
					       (g_rand_boolean(r) ? 0x8000 : 0);
			} else if (it & 1) {
				in.x[1][0] = g_rand_int_range(r, 0, 70);	/* shift counts */
			}
			host = in;
			((void (*)(struct vregs *))page)(&host);
			g_assert_cmpint(guest_write(&t->m.mem, 0x3000, &in, sizeof(in)), ==, 0);
			c->rip = 0x1000;
			c->gpr[R_RDI] = 0x3000;
			c->gpr[R_RSP] = 0x80000 - 8;
			tm_wr(t, 0x80000 - 8, 0x2000, 8);
			c->halted = false;
			g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
			g_assert_cmpint(guest_read(&t->m.mem, 0x3000, &guest, sizeof(guest)), ==, 0);
			if (memcmp(host.r, guest.r, sizeof(host.r)) || host.mem != guest.mem ||
			    host.mem2 != guest.mem2 || memcmp(host.x, guest.x, sizeof(host.x)) ||
			    memcmp(host.m128, guest.m128, sizeof(host.m128)) ||
			    host.mxcsr_out != guest.mxcsr_out ||
			    memcmp(host.mm, guest.mm, sizeof(host.mm)) ||
			    ((host.flags ^ guest.flags) & ALLF))
				g_error("%s: differs: xmm0 %016lx%016lx host %016lx%016lx "
					"(in %016lx%016lx, xmm1 %016lx%016lx), rax %#lx host %#lx, "
					"mxcsr %#x host %#x (in %#x), flags %#lx host %#lx", tmpls[k],
					(unsigned long)guest.x[0][1], (unsigned long)guest.x[0][0],
					(unsigned long)host.x[0][1], (unsigned long)host.x[0][0],
					(unsigned long)in.x[0][1], (unsigned long)in.x[0][0],
					(unsigned long)in.x[1][1], (unsigned long)in.x[1][0],
					(unsigned long)guest.r[0], (unsigned long)host.r[0],
					guest.mxcsr_out, host.mxcsr_out, in.mxcsr_in,
					(unsigned long)(guest.flags & ALLF), (unsigned long)(host.flags & ALLF));
		}
		g_free(code);
		g_free(src);
	}
	g_rand_free(r);
	munmap(page, 4096);
	tm_free(t);
}

static void test_diff_sse(void)
{
	run_vec_diff(sse_tmpls, G_N_ELEMENTS(sse_tmpls), false, false, 0x55e2);
}

static void test_diff_sse_fp(void)
{
	run_vec_diff(fp_tmpls, G_N_ELEMENTS(fp_tmpls), true, false, 0xf10a7);
}

static const char *const mmx_tmpls[] = {
	"paddb %mm1, %mm0", "paddw %mm1, %mm0", "paddd %mm1, %mm0", "paddq %mm1, %mm0",
	"psubb %mm1, %mm0", "psubq %mm1, %mm0", "paddsb %mm1, %mm0", "paddusw %mm1, %mm0",
	"psubsw %mm1, %mm0", "psubusb %mm1, %mm0", "pcmpeqb %mm1, %mm0", "pcmpgtw %mm1, %mm0",
	"pcmpgtd %mm1, %mm0", "pminub %mm1, %mm0", "pmaxsw %mm1, %mm0", "pavgb %mm1, %mm0",
	"pavgw %mm1, %mm0", "pmullw %mm1, %mm0", "pmulhw %mm1, %mm0", "pmulhuw %mm1, %mm0",
	"pand %mm1, %mm0", "pandn %mm1, %mm0", "por %mm1, %mm0", "pxor %mm1, %mm0",
	"punpcklbw %mm1, %mm0", "punpcklwd %mm1, %mm0", "punpckldq %mm1, %mm0",
	"punpckhbw %mm1, %mm0", "punpckhwd %mm1, %mm0", "punpckhdq %mm1, %mm0",
	"packsswb %mm1, %mm0", "packuswb %mm1, %mm0", "packssdw %mm1, %mm0",
	"pshufw $0x1b, %mm1, %mm0", "psllw $3, %mm0", "psrad $7, %mm2", "psrlq $33, %mm3",
	"psllw %mm1, %mm0", "psrlq %mm1, %mm0", "psrad %mm1, %mm0",
	"pmaddwd %mm1, %mm0", "pmuludq %mm1, %mm0", "psadbw %mm1, %mm0",
	"pmovmskb %mm1, %eax", "movd %mm1, %eax", "movd %ebx, %mm0", "movq %rbx, %mm0",
	"movq %mm1, %rax", "movq %mm1, %mm2", "movq 0x70(%r15), %mm2", "movq %mm1, 0x78(%r15)",
	"paddd 0x70(%r15), %mm3", "pextrw $2, %mm1, %eax", "pinsrw $3, %ebx, %mm0",
	"pinsrw $1, 0x72(%r15), %mm1", "movq2dq %mm1, %xmm0", "movdq2q %xmm1, %mm0",
	"movntq %mm2, 0x70(%r15)",
	"pmaddwd %xmm1, %xmm0", "pmuludq %xmm1, %xmm0", "psadbw %xmm1, %xmm0",
	"pextrw $5, %xmm1, %eax", "pinsrw $6, %ebx, %xmm0", "pinsrw $1, 0x70(%r15), %xmm2",
	"cvtpi2ps %mm1, %xmm0", "cvtpi2ps 0x70(%r15), %xmm1", "cvtps2pi %xmm1, %mm0",
	"cvttps2pi %xmm1, %mm2", "cvtpi2pd %mm1, %xmm0", "cvtpd2pi %xmm1, %mm0",
	"cvttpd2pi %xmm2, %mm3", "cvtps2pi 0x78(%r15), %mm1",
	/* SSSE3, both forms */
	"pshufb %xmm1, %xmm0", "pshufb %mm1, %mm0", "pshufb 0xc0(%r15), %xmm2",
	"phaddw %xmm1, %xmm0", "phaddd %mm1, %mm0", "phaddsw %xmm1, %xmm0", "phaddsw %mm1, %mm0",
	"phsubw %mm1, %mm0", "phsubd %xmm1, %xmm0", "phsubsw %xmm1, %xmm0",
	"pmaddubsw %xmm1, %xmm0", "pmaddubsw %mm1, %mm0", "pmulhrsw %xmm1, %xmm0",
	"pmulhrsw %mm1, %mm0", "psignb %xmm1, %xmm0", "psignw %mm1, %mm0", "psignd %xmm1, %xmm0",
	"pabsb %xmm1, %xmm0", "pabsw %mm1, %mm0", "pabsd %xmm1, %xmm0",
	"palignr $5, %xmm1, %xmm0", "palignr $3, %mm1, %mm0", "palignr $20, %xmm1, %xmm0",
	"palignr $12, %mm1, %mm0",
};

static void test_diff_mmx(void)
{
	run_vec_diff(mmx_tmpls, G_N_ELEMENTS(mmx_tmpls), false, true, 0x3377);
}

/* x87: four values on the stack, one
 * instruction, then fnsave; control word, status word, tags and all eight
 * registers must agree (the instruction and data pointers are not
 * compared: they hold host addresses natively). */
struct x87regs {
	uint64_t r[13];
	uint64_t flags;
	uint64_t mem, mem2;		/* 0x70, 0x78 */
	uint64_t st[4][2];		/* 0x80: 80-bit values in 16-byte slots */
	uint16_t cw;			/* 0xc0 */
	uint8_t pad[0x3e];
	uint8_t save[108];		/* 0x100: fnsave image */
} __attribute__((aligned(16)));

#define X87PRE "fninit; fldcw 0xc0(%r15)\n" \
	"fldt 0xb0(%r15); fldt 0xa0(%r15); fldt 0x90(%r15); fldt 0x80(%r15)\n"
#define X87POST "\nfnsave 0x100(%r15); fninit\n"

static const char *const x87_tmpls[] = {
	"fadd %st(1), %st", "fadd %st, %st(2)", "faddp", "fsub %st(1), %st", "fsubr %st(1), %st",
	"fsubp", "fsubrp", "fmul %st(3), %st", "fmulp", "fdiv %st(1), %st", "fdivr %st(2), %st",
	"fdivp", "fdivrp", "fdiv %st, %st(1)",
	"fadds 0x70(%r15)", "faddl 0x78(%r15)", "fiaddl 0x70(%r15)", "fimuls 0x70(%r15)",
	"fdivl 0x78(%r15)", "fsubrs 0x74(%r15)", "fidivrl 0x74(%r15)",
	"fcoms 0x70(%r15)", "fcompl 0x78(%r15)", "ficoml 0x70(%r15)",
	"fcom %st(1)", "fcomp %st(2)", "fcompp", "fucom %st(1)", "fucomp %st(3)", "fucompp",
	"fcomi %st(1), %st", "fucomi %st(2), %st", "fcomip %st(1), %st", "fucomip %st(3), %st",
	"ftst", "fxam", "fchs", "fabs", "fsqrt", "frndint", "fscale", "fxtract", "fprem", "fprem1",
	"fxch %st(2)", "ffree %st(1)", "fincstp", "fdecstp", "fld %st(2)", "fst %st(3)",
	"fstp %st(1)", "fld1", "fldz", "fldpi", "fldl2e", "fldl2t", "fldlg2", "fldln2", "fnop",
	"flds 0x70(%r15)", "fldl 0x78(%r15)", "fildl 0x70(%r15)", "filds 0x72(%r15)",
	"fildll 0x78(%r15)", "fsts 0x70(%r15)", "fstpl 0x78(%r15)", "fistl 0x70(%r15)",
	"fistps 0x70(%r15)", "fistpll 0x78(%r15)", "fstpt 0x70(%r15)", "fbstp 0x70(%r15)",
	"fcmovb %st(1), %st", "fcmove %st(2), %st", "fcmovnbe %st(1), %st", "fcmovu %st(3), %st",
	"fcmovnb %st(2), %st", "fcmovne %st(1), %st",
	"fld %st(0); fmul %st(0), %st; fsqrt; fcomip %st(1), %st",
	"fisttpl 0x70(%r15)", "fisttps 0x70(%r15)", "fisttpll 0x78(%r15)",
};

/* 80-bit values: normal numbers of every size, zeros, infinities, NaNs,
 * denormals. */
static void rnd_x87(GRand *r, uint64_t out[2])
{
	uint64_t m = ((uint64_t)g_rand_int(r) << 32) | g_rand_int(r);
	unsigned e;

	switch (g_rand_int_range(r, 0, 10)) {
	case 0: e = 0; m = 0; break;
	case 1: e = 0x7fff; m = 1ull << 63; break;
	case 2: e = 0x7fff; m |= 3ull << 62; break;		/* QNaN */
	case 3: e = 0; m &= ~(1ull << 63); break;		/* denormal */
	case 4: e = 0x3fff + g_rand_int_range(r, 0, 64); m |= 1ull << 63; break;
	default: e = 0x3fff + g_rand_int_range(r, -200, 200); m |= 1ull << 63; break;
	}
	if (g_rand_boolean(r))
		e |= 0x8000;
	out[0] = m;
	out[1] = e;
}

/* The registers of two fnsave images that are not empty (an empty
 * register keeps stale contents, which differ between host and guest). */
static bool same_stack(const uint8_t *h, const uint8_t *g)
{
	unsigned top = (h[5] >> 3) & 7, tw = h[8] | h[9] << 8;

	for (unsigned i = 0; i < 8; i++)
		if (((tw >> (2 * ((top + i) & 7))) & 3) != 3 &&
		    memcmp(h + 28 + 10 * i, g + 28 + 10 * i, 10))
			return false;
	return true;
}

static void test_diff_x87(void)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct tcg_cpu *c = t->c[0];
	uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	GRand *r = g_rand_new_with_seed(0x87);
	static const uint16_t pc[3] = { 0x000, 0x200, 0x300 };

	g_assert_true(page != MAP_FAILED);
	tm_long64(t, 0, 0x1000);
	tm_wr(t, 0x2000, 0xf4, 1);
	for (size_t k = 0; k < G_N_ELEMENTS(x87_tmpls); k++) {
		char *src = g_strconcat(STUB_PRE, X87PRE, x87_tmpls[k], X87POST, STUB_POST, NULL);
		size_t n;
		uint8_t *code = tm_asm(src, &n);

		memcpy(page, code, n);
		g_assert_cmpint(guest_write(&t->m.mem, 0x1000, code, n), ==, 0);
		for (unsigned it = 0; it < 200; it++) {
			struct x87regs in, host, guest;

			memset(&in, 0, sizeof(in));
			for (unsigned q = 0; q < 13; q++)
				in.r[q] = rnd_value(r);
			in.flags = (g_rand_int(r) & ALLF) | 0x202;
			in.mem = rnd_fp(r, false) | (rnd_fp(r, false) << 32);
			in.mem2 = g_rand_boolean(r) ? rnd_fp(r, true) : rnd_value(r);
			for (unsigned q = 0; q < 4; q++)
				rnd_x87(r, in.st[q]);
			in.cw = 0x7f | pc[g_rand_int_range(r, 0, 3)] |
				(g_rand_int_range(r, 0, 4) << 10);
			host = in;
			((void (*)(struct x87regs *))page)(&host);
			g_assert_cmpint(guest_write(&t->m.mem, 0x3000, &in, sizeof(in)), ==, 0);
			c->rip = 0x1000;
			c->gpr[R_RDI] = 0x3000;
			c->gpr[R_RSP] = 0x80000 - 8;
			tm_wr(t, 0x80000 - 8, 0x2000, 8);
			c->halted = false;
			g_assert_cmpint(tm_run(t, 0), ==, ACCEL_EXIT_HALT);
			g_assert_cmpint(guest_read(&t->m.mem, 0x3000, &guest, sizeof(guest)), ==, 0);
			if (memcmp(host.r, guest.r, sizeof(host.r)) || host.mem != guest.mem ||
			    host.mem2 != guest.mem2 || memcmp(host.save, guest.save, 12) ||
			    !same_stack(host.save, guest.save) ||
			    ((host.flags ^ guest.flags) & ALLF)) {
				uint16_t hsw, gsw, htw, gtw;

				memcpy(&hsw, host.save + 4, 2);
				memcpy(&gsw, guest.save + 4, 2);
				memcpy(&htw, host.save + 8, 2);
				memcpy(&gtw, guest.save + 8, 2);
				g_error("%s: differs: sw %#x host %#x, tw %#x host %#x, "
					"st0 %016lx:%04x host %016lx:%04x (in st0 %016lx:%04x st1 "
					"%016lx:%04x cw %#x), mem %#lx host %#lx", x87_tmpls[k], gsw, hsw,
					gtw, htw, *(unsigned long *)(guest.save + 28),
					*(uint16_t *)(guest.save + 36), *(unsigned long *)(host.save + 28),
					*(uint16_t *)(host.save + 36), (unsigned long)in.st[0][0],
					(unsigned)in.st[0][1], (unsigned long)in.st[1][0],
					(unsigned)in.st[1][1], in.cw, (unsigned long)guest.mem,
					(unsigned long)host.mem);
			}
		}
		g_free(code);
		g_free(src);
	}
	g_rand_free(r);
	munmap(page, 4096);
	tm_free(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	tm_add_both("/tcg/diff", "integer", test_diff);
	tm_add_both("/tcg/diff", "sse", test_diff_sse);
	tm_add_both("/tcg/diff", "sse-fp", test_diff_sse_fp);
	tm_add_both("/tcg/diff", "mmx", test_diff_mmx);
	tm_add_both("/tcg/diff", "x87", test_diff_x87);
	return g_test_run();
}
