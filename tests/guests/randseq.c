/*
 * Random instruction sequences for the KVM-versus-TCG differential test
 * (tests/integration/test_tcg_diff.py).  "seed=N count=M" on the command
 * line: the guest generates M sequences of machine code from the seed,
 * runs each with known registers, flags and scratch memory, and prints
 *
 *	seq K: HHHHHHHH
 *
 * per sequence (FNV-1a over the seven general registers, ESP, the
 * arithmetic flags and the scratch memory afterwards) and at the end one
 * "regs ..." line with the registers of the last sequence.  "dump" prints
 * that register line after every sequence (for finding which instruction
 * of a mismatching sequence differs).  The output depends only on the seed
 * and count, so it can be compared between accelerators and with results
 * recorded on another host.
 *
 * For finding the instruction behind a mismatch: "first=K" starts at
 * sequence K, "len=N" runs only the first N instructions of each sequence
 * (the same prefix: the pops of a pending push follow), "code" prints the
 * bytes of each generated instruction (its setup included).
 *
 * Generator (fixed: changing it invalidates tests/integration/data/):
 * xorshift32 (13, 17, 5), state seeded per sequence from
 * (seed * 0x9e3779b9) ^ (K * 0x85ebca6b) ^ 0x2545f491, never 0.  A
 * sequence is 8 to 39 instructions, each drawn from: the eight ALU
 * operations in every operand form and size, inc/dec/neg/not, test,
 * shifts and rotates (by 1, imm8 and CL), mul/imul in every form, div/idiv
 * (divisor and dividend guarded so #DE cannot happen), bt/bts/btr/btc,
 * shld/shrd, cmovcc/setcc, push/pop/pushf, string ops with and without
 * rep/repe/repne and either direction, xchg/xadd/cmpxchg (lock prefix on
 * some memory forms), mov/movzx/movsx/lea/bswap/cbw/cwd, lahf/sahf and
 * clc/stc/cmc.  Memory operands address a 512-byte scratch area at
 * 0x300000 (its last 64 bytes are the sequence's stack) through every
 * addressing form: disp32, [base], [base+disp8], [base+disp32],
 * [base+index*scale+disp8] and [index*scale+disp32]; the base and index
 * registers are loaded just before the instruction.  An instruction that leaves a flag undefined by the SDM
 * (logical ops' AF, shifts, mul, div, bt, shld) is followed by an add, sub
 * or cmp of two registers, so no undefined flag is ever read or hashed.
 */
#include "rt/rt.h"

#define SCRATCH		512
#define DATA		448	/* memory operands stay below; the stack above */
#define CODE_MAX	4096
#define ARITH_FLAGS	0x8d5	/* CF PF AF ZF SF OF */

/*
 * The scratch area sits at a fixed address, away from the image (loaded at
 * 1 MiB): its addresses end up in registers and memory, so the recorded
 * results must not move when the guest or its runtime is relinked.
 */
#define scratch		((uint8_t *)0x300000)

enum { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI };

struct regs {
	uint32_t r[8];		/* by encoding: eax ecx edx ebx esp ebp esi edi */
	uint32_t eflags;
};

/* Used by the asm below: the state in and out, and the caller's stack. */
struct regs seq_regs;
uint32_t seq_saved_esp;
uint8_t seq_code[CODE_MAX] __attribute__((aligned(4096)));

void seq_run(void);
void seq_return(void);

/*
 * seq_run loads every register and EFLAGS from seq_regs, switches to the
 * scratch stack and jumps to the generated code, which ends with a jump to
 * seq_return; that stores the registers back and returns to C.
 */
asm(".text\n"
    ".globl seq_run\n"
    "seq_run:\n"
    "	pushl %ebp\n	pushl %ebx\n	pushl %esi\n	pushl %edi\n"
    "	movl %esp, seq_saved_esp\n"
    "	movl seq_regs+16, %esp\n"
    "	pushl seq_regs+32\n"
    "	popfl\n"
    "	movl seq_regs+4, %ecx\n"
    "	movl seq_regs+8, %edx\n"
    "	movl seq_regs+12, %ebx\n"
    "	movl seq_regs+20, %ebp\n"
    "	movl seq_regs+24, %esi\n"
    "	movl seq_regs+28, %edi\n"
    "	movl seq_regs+0, %eax\n"
    "	jmp seq_code\n"
    ".globl seq_return\n"
    "seq_return:\n"
    "	movl %eax, seq_regs+0\n"
    "	movl %ecx, seq_regs+4\n"
    "	movl %edx, seq_regs+8\n"
    "	movl %ebx, seq_regs+12\n"
    "	movl %esp, seq_regs+16\n"
    "	movl %ebp, seq_regs+20\n"
    "	movl %esi, seq_regs+24\n"
    "	movl %edi, seq_regs+28\n"
    "	movl seq_saved_esp, %esp\n"
    "	pushfl\n"
    "	popl seq_regs+32\n"
    "	cld\n"
    "	popl %edi\n	popl %esi\n	popl %ebx\n	popl %ebp\n"
    "	ret\n");

struct gen {
	uint32_t rng;
	uint8_t *p;
	int depth;		/* dwords pushed and not yet popped */
	int print;		/* print each instruction's bytes */
};

/* A register or memory operand, already set up when it was picked. */
struct rm {
	int mem;
	int reg;		/* register: its number; memory: unused */
	uint8_t mod, rmf, sib;
	int has_sib, disp_size;
	int32_t disp;
};

static uint32_t rnd(struct gen *g)
{
	uint32_t x = g->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	g->rng = x;
	return x;
}

static uint32_t rn(struct gen *g, uint32_t n)
{
	return rnd(g) % n;
}

static void b1(struct gen *g, uint8_t v)
{
	*g->p++ = v;
}

static void b4(struct gen *g, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b1(g, v >> (8 * i));
}

static void imm(struct gen *g, int size, uint32_t v)
{
	b1(g, v);
	if (size >= 2)
		b1(g, v >> 8);
	if (size == 4) {
		b1(g, v >> 16);
		b1(g, v >> 24);
	}
}

/* A general register other than ESP. */
static int gpr(struct gen *g)
{
	static const int regs[] = { EAX, ECX, EDX, EBX, EBP, ESI, EDI };

	return regs[rn(g, 7)];
}

static int gpr_except(struct gen *g, int a, int b)
{
	int r;

	do
		r = gpr(g);
	while (r == a || r == b);
	return r;
}

static int pick_size(struct gen *g)
{
	static const int sizes[] = { 1, 2, 4, 4 };

	return sizes[rn(g, 4)];
}

static void mov_imm32(struct gen *g, int reg, uint32_t v)
{
	b1(g, 0xb8 + reg);
	b4(g, v);
}

/*
 * A memory operand of size bytes inside scratch[0, limit): the base and
 * index registers it uses are loaded here, before the instruction.
 * absolute: only the disp32 form (no register is changed).
 */
static void pick_mem(struct gen *g, struct rm *o, int size, int limit, int absolute)
{
	uint32_t t = (uint32_t)scratch + rn(g, limit - size + 1);
	int form = absolute ? 0 : rn(g, 6);
	int base = gpr(g), index = gpr_except(g, base, base);
	uint32_t scale = rn(g, 4), iv = rn(g, 16);

	o->mem = 1;
	o->has_sib = 0;
	switch (form) {
	case 0:		/* [disp32] */
		o->mod = 0;
		o->rmf = 5;
		o->disp = t;
		o->disp_size = 4;
		return;
	case 1:		/* [base]; EBP needs a displacement */
		base = gpr_except(g, EBP, EBP);
		mov_imm32(g, base, t);
		o->mod = 0;
		o->rmf = base;
		o->disp_size = 0;
		return;
	case 2:		/* [base+disp8] */
	case 3:		/* [base+disp32] */
		o->disp = form == 2 ? (int8_t)rn(g, 256) : (int32_t)rnd(g);
		mov_imm32(g, base, t - o->disp);
		o->mod = form == 2 ? 1 : 2;
		o->rmf = base;
		o->disp_size = form == 2 ? 1 : 4;
		return;
	case 4:		/* [base+index*scale+disp8] */
		o->disp = (int8_t)rn(g, 256);
		mov_imm32(g, index, iv);
		mov_imm32(g, base, t - (iv << scale) - o->disp);
		o->mod = 1;
		o->rmf = 4;
		o->has_sib = 1;
		o->sib = scale << 6 | index << 3 | base;
		o->disp_size = 1;
		return;
	default:	/* [index*scale+disp32] */
		mov_imm32(g, index, iv);
		o->disp = t - (iv << scale);
		o->mod = 0;
		o->rmf = 4;
		o->has_sib = 1;
		o->sib = scale << 6 | index << 3 | 5;
		o->disp_size = 4;
		return;
	}
}

/* Register (any of the eight byte registers for size 1) or memory. */
static void pick_rm(struct gen *g, struct rm *o, int size)
{
	if (rn(g, 2)) {
		pick_mem(g, o, size, DATA, 0);
		return;
	}
	o->mem = 0;
	o->reg = size == 1 ? (int)rn(g, 8) : gpr(g);
}

static int pick_reg(struct gen *g, int size)
{
	return size == 1 ? (int)rn(g, 8) : gpr(g);
}

static void modrm(struct gen *g, const struct rm *o, int regf)
{
	if (!o->mem) {
		b1(g, 0xc0 | regf << 3 | o->reg);
		return;
	}
	b1(g, o->mod << 6 | regf << 3 | o->rmf);
	if (o->has_sib)
		b1(g, o->sib);
	if (o->disp_size == 1)
		b1(g, o->disp);
	else if (o->disp_size == 4)
		b4(g, o->disp);
}

static void opsize(struct gen *g, int size)
{
	if (size == 2)
		b1(g, 0x66);
}

/* Opcode of the byte form, +1 for the word/dword form. */
static uint8_t wbit(uint8_t op, int size)
{
	return size == 1 ? op : op + 1;
}

/* Add, sub or cmp of two registers: defines every arithmetic flag. */
static void gen_flags_define(struct gen *g)
{
	static const uint8_t ops[] = { 0x00, 0x28, 0x38 };
	int size = pick_size(g);

	opsize(g, size);
	b1(g, wbit(ops[rn(g, 3)], size));
	b1(g, 0xc0 | pick_reg(g, size) << 3 | pick_reg(g, size));
}

static void maybe_lock(struct gen *g, const struct rm *o)
{
	if (o->mem && !rn(g, 6))
		b1(g, 0xf0);
}

/* Returns 1 when the instruction left a flag undefined. */
static int gen_alu(struct gen *g)
{
	int op = rn(g, 8), size = pick_size(g), form = rn(g, 4), reg;
	uint32_t v = rnd(g);
	struct rm o;

	switch (form) {
	case 0:		/* op r/m, r */
	case 1:		/* op r, r/m */
		pick_rm(g, &o, size);
		reg = pick_reg(g, size);
		if (form == 0 && op != 7)
			maybe_lock(g, &o);
		opsize(g, size);
		b1(g, wbit(op * 8 + (form == 0 ? 0 : 2), size));
		modrm(g, &o, reg);
		break;
	case 2:		/* op r/m, imm */
		pick_rm(g, &o, size);
		if (op != 7)
			maybe_lock(g, &o);
		opsize(g, size);
		if (size > 1 && rn(g, 2)) {
			b1(g, 0x83);
			modrm(g, &o, op);
			b1(g, v);
		} else {
			b1(g, wbit(0x80, size));
			modrm(g, &o, op);
			imm(g, size, v);
		}
		break;
	default:	/* op al/ax/eax, imm */
		opsize(g, size);
		b1(g, wbit(op * 8 + 4, size));
		imm(g, size, v);
		break;
	}
	return op == 1 || op == 4 || op == 6;	/* or, and, xor: AF */
}

static int gen_unary(struct gen *g)
{
	int size = pick_size(g), kind = rn(g, 5);
	struct rm o;

	if (kind == 4 && size > 1) {	/* inc/dec r16/r32, short form */
		opsize(g, size);
		b1(g, (rn(g, 2) ? 0x40 : 0x48) + gpr(g));
		return 0;
	}
	pick_rm(g, &o, size);
	maybe_lock(g, &o);
	opsize(g, size);
	if (kind < 2) {			/* inc, dec */
		b1(g, wbit(0xfe, size));
		modrm(g, &o, kind);
	} else {			/* not, neg */
		b1(g, wbit(0xf6, size));
		modrm(g, &o, kind == 2 ? 2 : 3);
	}
	return 0;
}

static int gen_test(struct gen *g)
{
	int size = pick_size(g), form = rn(g, 3);
	struct rm o;

	if (form == 2) {
		opsize(g, size);
		b1(g, wbit(0xa8, size));
		imm(g, size, rnd(g));
		return 1;
	}
	pick_rm(g, &o, size);
	opsize(g, size);
	if (form == 0) {
		b1(g, wbit(0x84, size));
		modrm(g, &o, pick_reg(g, size));
	} else {
		b1(g, wbit(0xf6, size));
		modrm(g, &o, 0);
		imm(g, size, rnd(g));
	}
	return 1;
}

static int gen_shift(struct gen *g)
{
	int size = pick_size(g), op = rn(g, 8), form = rn(g, 3);
	struct rm o;

	if (op == 6)		/* the undocumented SAL alias: use SHL */
		op = 4;
	pick_rm(g, &o, size);
	opsize(g, size);
	if (form == 0) {
		b1(g, wbit(0xd0, size));
		modrm(g, &o, op);
	} else if (form == 1) {
		b1(g, wbit(0xc0, size));
		modrm(g, &o, op);
		b1(g, rn(g, 4) ? rn(g, 33) : rnd(g));
	} else {
		b1(g, wbit(0xd2, size));
		modrm(g, &o, op);
	}
	return 1;
}

static int gen_mul(struct gen *g)
{
	int size = pick_size(g), form = rn(g, 3);
	struct rm o;

	if (size == 1)
		form = 0;
	pick_rm(g, &o, size);
	opsize(g, size);
	if (form == 0) {		/* mul/imul r/m: edx:eax */
		b1(g, wbit(0xf6, size));
		modrm(g, &o, rn(g, 2) ? 4 : 5);
	} else if (form == 1) {		/* imul r, r/m */
		b1(g, 0x0f);
		b1(g, 0xaf);
		modrm(g, &o, gpr(g));
	} else if (rn(g, 2)) {		/* imul r, r/m, imm8 */
		b1(g, 0x6b);
		modrm(g, &o, gpr(g));
		b1(g, rnd(g));
	} else {			/* imul r, r/m, imm */
		b1(g, 0x69);
		modrm(g, &o, gpr(g));
		imm(g, size, rnd(g));
	}
	return 1;
}

/*
 * div/idiv whose quotient always fits: the divisor (not in EAX or EDX, or
 * memory) gets bit 0 set and, for idiv, bit 1 cleared (so it is neither 0
 * nor -1); the dividend's high half is zeroed (div) or the sign extension
 * of the low half (idiv), so |quotient| <= |low half|, which fits unless
 * the low half is the most negative value and the divisor is -1.
 */
static int gen_div(struct gen *g)
{
	static const int byte_divs[] = { 1, 2, 3, 5, 6, 7 };	/* cl dl bl ch dh bh */
	int size = pick_size(g), sgn = rn(g, 2);
	struct rm o;

	if (rn(g, 2)) {
		pick_mem(g, &o, size, DATA, 1);
	} else {
		o.mem = 0;
		o.reg = size == 1 ? byte_divs[rn(g, 6)] : gpr_except(g, EAX, EDX);
	}
	opsize(g, size);		/* or r/m, 1 */
	b1(g, size == 1 ? 0x80 : 0x83);
	modrm(g, &o, 1);
	b1(g, 1);
	if (sgn) {			/* and r/m, ~2 */
		opsize(g, size);
		b1(g, size == 1 ? 0x80 : 0x83);
		modrm(g, &o, 4);
		b1(g, 0xfd);
	}
	if (size == 1) {
		if (sgn) {		/* cbw */
			b1(g, 0x66);
			b1(g, 0x98);
		} else {		/* mov ah, 0 */
			b1(g, 0xb4);
			b1(g, 0);
		}
	} else {
		opsize(g, size);
		if (sgn) {		/* cwd/cdq */
			b1(g, 0x99);
		} else {		/* xor edx, edx */
			b1(g, 0x31);
			b1(g, 0xd2);
		}
	}
	opsize(g, size);
	b1(g, wbit(0xf6, size));
	modrm(g, &o, sgn ? 7 : 6);
	return 1;
}

/*
 * bt/bts/btr/btc.  With a register bit offset and a memory operand the
 * offset is first masked to 0..63 and the operand is an absolute address,
 * so the bit stays inside the scratch area.
 */
static int gen_bt(struct gen *g)
{
	int size = rn(g, 2) ? 4 : 2, op = rn(g, 4), reg;
	struct rm o;

	if (rn(g, 2)) {			/* bt* r/m, imm8 */
		pick_rm(g, &o, size);
		if (op)
			maybe_lock(g, &o);
		opsize(g, size);
		b1(g, 0x0f);
		b1(g, 0xba);
		modrm(g, &o, 4 + op);
		b1(g, rnd(g));
		return 1;
	}
	reg = gpr(g);
	if (rn(g, 2)) {
		b1(g, 0x83);		/* and reg, 63 */
		b1(g, 0xe0 | reg);
		b1(g, 63);
		pick_mem(g, &o, 8 + size, DATA, 1);
		if (op)
			maybe_lock(g, &o);
	} else {
		o.mem = 0;
		o.reg = gpr(g);
	}
	opsize(g, size);
	b1(g, 0x0f);
	b1(g, 0xa3 + 8 * op);
	modrm(g, &o, reg);
	return 1;
}

/* shld/shrd: 32-bit, or 16-bit with an immediate count below 16. */
static int gen_shxd(struct gen *g)
{
	int size = rn(g, 2) ? 4 : 2, cl = size == 4 && rn(g, 2);
	uint8_t op = rn(g, 2) ? 0xa4 : 0xac;
	struct rm o;

	pick_rm(g, &o, size);
	opsize(g, size);
	b1(g, 0x0f);
	b1(g, op + cl);
	modrm(g, &o, gpr(g));
	if (!cl)
		b1(g, rn(g, size == 4 ? 32 : 16));
	return 1;
}

static int gen_cond(struct gen *g)
{
	struct rm o;
	int size;

	if (rn(g, 2)) {			/* setcc r/m8 */
		pick_rm(g, &o, 1);
		b1(g, 0x0f);
		b1(g, 0x90 + rn(g, 16));
		modrm(g, &o, 0);
	} else {			/* cmovcc r, r/m */
		size = rn(g, 2) ? 4 : 2;
		pick_rm(g, &o, size);
		opsize(g, size);
		b1(g, 0x0f);
		b1(g, 0x40 + rn(g, 16));
		modrm(g, &o, gpr(g));
	}
	return 0;
}

static int gen_stack(struct gen *g)
{
	struct rm o;

	if (g->depth > 0 && (g->depth >= 8 || rn(g, 2))) {
		g->depth--;
		if (rn(g, 2)) {
			b1(g, 0x58 + gpr(g));
		} else {
			pick_rm(g, &o, 4);
			b1(g, 0x8f);
			modrm(g, &o, 0);
		}
		return 0;
	}
	g->depth++;
	switch (rn(g, 5)) {
	case 0:
		b1(g, 0x50 + rn(g, 8));		/* push esp included */
		break;
	case 1:
		b1(g, 0x6a);
		b1(g, rnd(g));
		break;
	case 2:
		b1(g, 0x68);
		b4(g, rnd(g));
		break;
	case 3:
		pick_rm(g, &o, 4);
		b1(g, 0xff);
		modrm(g, &o, 6);
		break;
	default:
		b1(g, 0x9c);			/* pushf */
		break;
	}
	return 0;
}

/* movs/cmps/stos/lods/scas with up to 8 elements in either direction. */
static int gen_string(struct gen *g)
{
	static const uint8_t ops[] = { 0xa4, 0xa6, 0xaa, 0xac, 0xae };
	int size = pick_size(g), k = rn(g, 5), rep = rn(g, 3);

	mov_imm32(g, ESI, (uint32_t)scratch + 40 + rn(g, DATA - 80));
	mov_imm32(g, EDI, (uint32_t)scratch + 40 + rn(g, DATA - 80));
	mov_imm32(g, ECX, rn(g, 9));
	b1(g, rn(g, 2) ? 0xfc : 0xfd);		/* cld / std */
	if (rep == 1)
		b1(g, 0xf3);
	else if (rep == 2)
		b1(g, (ops[k] == 0xa6 || ops[k] == 0xae) ? 0xf2 : 0xf3);
	opsize(g, size);
	b1(g, wbit(ops[k], size));
	return 0;
}

/* xchg/xadd/cmpxchg, "xadd r, r" on one register included. */
static int gen_xchg(struct gen *g)
{
	int size = pick_size(g), k = rn(g, 4), reg;
	struct rm o;

	if (k == 3 && size > 1) {		/* xchg eax, r */
		opsize(g, size);
		b1(g, 0x90 + gpr_except(g, EAX, EAX));
		return 0;
	}
	pick_rm(g, &o, size);
	if (k != 0)
		maybe_lock(g, &o);	/* xchg locks anyway */
	opsize(g, size);
	if (k == 0 || k == 3) {
		b1(g, wbit(0x86, size));
	} else {
		b1(g, 0x0f);
		b1(g, wbit(k == 1 ? 0xc0 : 0xb0, size));	/* xadd, cmpxchg */
	}
	reg = pick_reg(g, size);
	modrm(g, &o, reg);
	return 0;
}

/* lea with any registers: it computes, never touches memory. */
static void gen_lea(struct gen *g)
{
	int size = rn(g, 2) ? 4 : 2, base = rn(g, 8), index = rn(g, 8);
	int mod = rn(g, 3);

	opsize(g, size);
	b1(g, 0x8d);
	b1(g, mod << 6 | gpr(g) << 3 | 4);
	if (mod == 0 && base == 5)
		mod = 2;		/* no base: disp32 follows */
	b1(g, rn(g, 4) << 6 | index << 3 | base);
	if (mod == 1)
		b1(g, rnd(g));
	else if (mod == 2)
		b4(g, rnd(g));
}

static int gen_move(struct gen *g)
{
	int size = pick_size(g), k = rn(g, 10);
	struct rm o;

	switch (k) {
	case 0:		/* mov r/m, r and mov r, r/m */
	case 1:
		pick_rm(g, &o, size);
		opsize(g, size);
		b1(g, wbit(k ? 0x8a : 0x88, size));
		modrm(g, &o, pick_reg(g, size));
		break;
	case 2:		/* mov r/m, imm */
		pick_rm(g, &o, size);
		opsize(g, size);
		b1(g, wbit(0xc6, size));
		modrm(g, &o, 0);
		imm(g, size, rnd(g));
		break;
	case 3:		/* movzx/movsx r, r/m8 or r/m16 */
		size = rn(g, 2) ? 1 : 2;
		pick_rm(g, &o, size);
		if (rn(g, 2))
			b1(g, 0x66);
		b1(g, 0x0f);
		b1(g, (rn(g, 2) ? 0xb6 : 0xbe) + (size == 2));
		modrm(g, &o, gpr(g));
		break;
	case 4:
		gen_lea(g);
		break;
	case 5:		/* bswap */
		b1(g, 0x0f);
		b1(g, 0xc8 + gpr(g));
		break;
	case 6:		/* cbw/cwde/cwd/cdq */
		if (rn(g, 2))
			b1(g, 0x66);
		b1(g, rn(g, 2) ? 0x98 : 0x99);
		break;
	case 7:		/* lahf/sahf */
		b1(g, rn(g, 2) ? 0x9f : 0x9e);
		break;
	case 8:		/* clc/stc/cmc */
		b1(g, (const uint8_t[]){ 0xf8, 0xf9, 0xf5 }[rn(g, 3)]);
		break;
	default:	/* mov r, imm */
		if (size == 1) {
			b1(g, 0xb0 + rn(g, 8));
			b1(g, rnd(g));
		} else {
			opsize(g, size);
			b1(g, 0xb8 + gpr(g));
			imm(g, size, rnd(g));
		}
		break;
	}
	return 0;
}

static void gen_insn(struct gen *g)
{
	int undef;

	switch (rn(g, 16)) {
	case 0: case 1: case 2:
		undef = gen_alu(g);
		break;
	case 3:
		undef = gen_unary(g);
		break;
	case 4:
		undef = gen_test(g);
		break;
	case 5: case 6:
		undef = gen_shift(g);
		break;
	case 7:
		undef = gen_mul(g);
		break;
	case 8:
		undef = gen_div(g);
		break;
	case 9:
		undef = gen_bt(g);
		break;
	case 10:
		undef = gen_shxd(g);
		break;
	case 11:
		undef = gen_cond(g);
		break;
	case 12:
		undef = gen_stack(g);
		break;
	case 13:
		undef = gen_string(g);
		break;
	case 14:
		undef = gen_xchg(g);
		break;
	default:
		undef = gen_move(g);
		break;
	}
	if (undef)
		gen_flags_define(g);
}

static void print_code(const uint8_t *p, const uint8_t *end)
{
	printf("code");
	while (p < end)
		printf(" %02x", *p++);
	printf("\n");
}

/* max_len: generate only the first max_len instructions (a prefix). */
static void gen_sequence(struct gen *g, unsigned long max_len)
{
	unsigned long n = 8 + rn(g, 32);
	int32_t rel;

	g->p = seq_code;
	g->depth = 0;
	for (unsigned long i = 0; i < n && i < max_len; i++) {
		uint8_t *start = g->p;

		gen_insn(g);
		if (g->print)
			print_code(start, g->p);
	}
	while (g->depth > 0) {
		b1(g, 0x58 + gpr(g));
		g->depth--;
	}
	rel = (int32_t)((uint32_t)seq_return - ((uint32_t)g->p + 5));
	b1(g, 0xe9);
	b4(g, rel);
}

static uint32_t fnv(uint32_t h, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 16777619u;
	}
	return h;
}

static void print_regs(const struct regs *r)
{
	printf("regs eax=%08x ecx=%08x edx=%08x ebx=%08x esp=%08x ebp=%08x "
	       "esi=%08x edi=%08x flags=%03x\n", r->r[EAX], r->r[ECX], r->r[EDX],
	       r->r[EBX], r->r[ESP], r->r[EBP], r->r[ESI], r->r[EDI],
	       r->eflags & ARITH_FLAGS);
}

void guest_main(struct bootinfo *bi)
{
	unsigned long seed = cmdline_uint(bi->cmdline, "seed", 1);
	unsigned long count = cmdline_uint(bi->cmdline, "count", 16);
	unsigned long first = cmdline_uint(bi->cmdline, "first", 0);
	unsigned long len = cmdline_uint(bi->cmdline, "len", 64);
	int dump = cmdline_has(bi->cmdline, "dump");
	struct gen g;

	g.print = cmdline_has(bi->cmdline, "code");
	idt_init();
	for (unsigned long k = first; k < first + count; k++) {
		uint32_t h = 2166136261u;

		g.rng = (seed * 0x9e3779b9u) ^ (k * 0x85ebca6bu) ^ 0x2545f491u;
		if (!g.rng)
			g.rng = 1;
		for (int i = 0; i < 8; i++)
			seq_regs.r[i] = rnd(&g);
		seq_regs.r[ESP] = (uint32_t)scratch + SCRATCH;
		seq_regs.eflags = 0x2 | (rnd(&g) & ARITH_FLAGS);
		for (int i = 0; i < SCRATCH; i += 4) {
			uint32_t v = rnd(&g);

			memcpy(&scratch[i], &v, 4);
		}
		gen_sequence(&g, len);
		seq_run();
		for (int i = 0; i < 8; i++)
			h = fnv(h, seq_regs.r[i]);
		h = fnv(h, seq_regs.eflags & ARITH_FLAGS);
		for (int i = 0; i < SCRATCH; i += 4) {
			uint32_t v;

			memcpy(&v, &scratch[i], 4);
			h = fnv(h, v);
		}
		printf("seq %lu: %08x\n", k, h);
		if (dump)
			print_regs(&seq_regs);
	}
	print_regs(&seq_regs);
	guest_exit(EXIT_PASS);
}
