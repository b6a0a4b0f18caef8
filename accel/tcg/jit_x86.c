/*
 * The code generator for x86-64 hosts: each micro-op of a block becomes a
 * short load-op-store sequence on struct tcg_cpu, or a call of
 * tcg_uop_exec, which runs it with the interpreter's own code.
 *
 * Conventions of the generated function int f(struct tcg_cpu *c):
 * rbx holds c for its whole life (callee-saved, so calls keep it); guest
 * registers, temporaries and the lazy flags stay in c, so there is no
 * register allocation; rax, rcx, rdx, rsi, rdi are scratch.  The one push
 * of rbx leaves the stack 16-byte aligned for the calls.  An exception
 * inside a call longjmps to the run loop, which drops this frame: nothing
 * in it needs unwinding.
 *
 * Inline: the moves, register accesses, plain arithmetic, the ALU ops
 * other than adc/sbb with their lazy-flag stores exactly as interp.c's
 * alu() does them, inc/dec and imul whose flags are dead, rotates and
 * shifts in the common forms, every block exit (with the jump to a
 * linked block), and in 64-bit code the loads and stores that hit the
 * TLB (jit_mem.c).  The rest is a call.
 *
 * The buffer is W^X: one memfd mapped twice, written through a read-write
 * view and executed through a read-execute one.
 */
#include "accel/tcg/jit.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/tcg/interp.h"
#include "accel/tcg/jit_emit.h"

#if defined(__x86_64__)

#define JIT_SIZE	(64u << 20)
/* Bytes a micro-op's code may take at most (the longest, a 64-bit
 * store, about 300). */
#define JIT_UOP_MAX	384
#define JIT_FIXED	160	/* prologue, chained entry, end of a cut block */

struct tcg_jit {
	uint8_t *w, *x;		/* the two views of the buffer */
	size_t used;
};

struct tcg_jit *tcg_jit_create(void)
{
	struct tcg_jit *j = calloc(1, sizeof(*j));
	int fd, err;

	if (!j)
		return NULL;
	fd = memfd_create("vireo-tcg-jit", MFD_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (ftruncate(fd, JIT_SIZE) < 0)
		goto fail_fd;
	j->w = mmap(NULL, JIT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (j->w == MAP_FAILED)
		goto fail_fd;
	j->x = mmap(NULL, JIT_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	if (j->x == MAP_FAILED)
		goto fail_w;
	close(fd);
	return j;
fail_w:
	err = errno;
	munmap(j->w, JIT_SIZE);
	errno = err;
fail_fd:
	err = errno;
	close(fd);
	errno = err;
fail:
	free(j);
	return NULL;
}

void tcg_jit_destroy(struct tcg_jit *j)
{
	if (!j)
		return;
	munmap(j->w, JIT_SIZE);
	munmap(j->x, JIT_SIZE);
	free(j);
}

void tcg_jit_reset(struct tcg_jit *j)
{
	j->used = 0;
}

bool tcg_jit_room(const struct tcg_jit *j, unsigned nr_uops)
{
	return j->used + JIT_FIXED + (size_t)nr_uops * JIT_UOP_MAX <= JIT_SIZE;
}

/* rip = imm; return code (-1: an exit that is never linked) */
static void leave_to(struct emit *e, uint64_t rip, int code)
{
	st64i(e, OFF(rip), rip);
	ret(e, code);
}

/* Return exit code >= 0, saying which block took it (tcg_jit_run). */
static void gen_ret(struct emit *e, const struct tb *tb, int code)
{
	movi(e, RAX, (uintptr_t)tb);
	st(e, OFF(jit_last), RAX);
	ret(e, code);
}

/*
 * A direct jump (exit 0) or taken branch (exit 1) to target: rip =
 * target, then straight into the block linked to this exit when
 * tcg_tb_next and tb_chained would chain to it, else return.  What they
 * look at, here:
 *
 * - pending events, a TLB flush since the chain began: chain_stop;
 * - a store into code since the link was made: link_gen == code_gen;
 * - a linked block, still cached, for this target (several branches
 *   share exit 1): link[code], invalid, eip;
 * - the fetch's CS limit check outside 64-bit code;
 * - the mode and CS base: equal to this block's, which it was entered
 *   with (tb_link links only such blocks, and whatever changes the mode
 *   or CS ends a block by exit -1);
 * - single-step: a TF block is never left this way.
 *
 * The linked block's host_chain does what enter_tb does.  The frame
 * (the one push of rbx) stays: the last block of the chain returns.
 */
static void gen_goto(struct emit *e, const struct tb *tb, uint64_t target, int code)
{
	uint8_t *out[6];
	unsigned n = 0, k;

	st64i(e, OFF(rip), target);
	if (!tb->cacheable || (tb->flags & TBF_TF)) {
		gen_ret(e, tb, code);
		return;
	}
	e8(e, 0x83); mem_rbx(e, 7, OFF(chain_stop)); e8(e, 0);	/* cmp dword, 0 */
	out[n++] = skip32(e, X_NE);
	ld(e, RAX, OFF(vm));
	e8(e, 0x48); e8(e, 0x8b);				/* mov rax, [code_gen] */
	mem_at(e, RAX, RAX, (int32_t)offsetof(struct tcg_vm, code_gen));
	movi(e, RCX, (uintptr_t)tb);
	e8(e, 0x48); e8(e, 0x3b);				/* cmp rax, [link_gen] */
	mem_at(e, RAX, RCX, (int32_t)offsetof(struct tb, link_gen));
	out[n++] = skip32(e, X_NE);
	e8(e, 0x48); e8(e, 0x8b);				/* mov rcx, [link[code]] */
	mem_at(e, RCX, RCX, (int32_t)(offsetof(struct tb, link) + code * sizeof(tb->link[0])));
	alu_rr(e, OP_TEST, RCX, RCX);
	out[n++] = skip32(e, X_E);
	e8(e, 0x80);						/* cmp byte [invalid], 0 */
	mem_at(e, 7, RCX, (int32_t)offsetof(struct tb, invalid));
	e8(e, 0);
	out[n++] = skip32(e, X_NE);
	if ((int64_t)target == (int32_t)target) {
		e8(e, 0x48); e8(e, 0x81);			/* cmp qword [eip], imm32 */
		mem_at(e, 7, RCX, (int32_t)offsetof(struct tb, eip));
		e32(e, (uint32_t)target);
	} else {
		movi(e, RDX, target);
		e8(e, 0x48); e8(e, 0x3b);			/* cmp rdx, [eip] */
		mem_at(e, RDX, RCX, (int32_t)offsetof(struct tb, eip));
	}
	out[n++] = skip32(e, X_NE);
	if (!(tb->flags & TBF_CS64)) {
		e8(e, 0x81);					/* cmp dword [CS limit], target */
		mem_rbx(e, 7, OFF(seg[S_CS].limit));
		e32(e, (uint32_t)target);
		out[n++] = skip32(e, X_B);
	}
	e8(e, 0xff);						/* jmp [host_chain] */
	mem_at(e, 4, RCX, (int32_t)offsetof(struct tb, host_chain));
	for (k = 0; k < n; k++)
		land32(e, out[k]);
	gen_ret(e, tb, code);
}

/* The micro-op through the interpreter's code; stop if it says so. */
static void gen_call(struct emit *e, const struct uop *u)
{
	uint8_t *s;

	alu_rr(e, OP_MOV, RDI, RBX);
	movi(e, RSI, (uintptr_t)u);
	call(e, tcg_uop_exec);
	e8(e, 0x84);		/* test al, al */
	e8(e, 0xc0);
	s = skip(e, JZ);
	ret(e, -1);
	land(e, s);
}

/* A micro-op whose handler cannot stop the block: call it directly. */
static void gen_direct(struct emit *e, const struct uop *u, void (*fn)(struct tcg_cpu *, const struct uop *))
{
	alu_rr(e, OP_MOV, RDI, RBX);
	movi(e, RSI, (uintptr_t)u);
	call(e, fn);
}

/* T[d] = rax truncated to size */
static void put_t(struct emit *e, const struct uop *u, unsigned reg, bool sized)
{
	if (sized)
		zext(e, reg, u->size);
	st(e, OFF_T(u->d), reg);
}

static void gen_str(struct emit *e, const struct uop *u)
{
	ld(e, RAX, OFF_T(u->a));
	switch (u->size) {
	case 0:			/* mov [gpr], al */
		e8(e, 0x88);
		mem_rbx(e, RAX, OFF_GPR(u->d));
		break;
	case 1:			/* mov [gpr], ax */
		e8(e, 0x66);
		e8(e, 0x89);
		mem_rbx(e, RAX, OFF_GPR(u->d));
		break;
	case 2:			/* 32-bit writes clear the upper half */
		zext(e, RAX, 2);
		/* fallthrough */
	default:
		st(e, OFF_GPR(u->d), RAX);
	}
}

/* operand b of u into rcx */
static void get_b(struct emit *e, const struct uop *u)
{
	if (u->aux & UF_BIMM)
		movi(e, RCX, u->imm);
	else
		ld(e, RCX, OFF_T(u->b));
}

static void gen_alu(struct emit *e, const struct uop *u)
{
	static const uint8_t ops[8] = {
		[ALU_ADD] = OP_ADD, [ALU_OR] = OP_OR, [ALU_AND] = OP_AND,
		[ALU_SUB] = OP_SUB, [ALU_XOR] = OP_XOR, [ALU_CMP] = OP_SUB,
	};
	static const uint32_t cc[8] = {
		[ALU_ADD] = CC_ADD, [ALU_OR] = CC_LOGIC, [ALU_AND] = CC_LOGIC,
		[ALU_SUB] = CC_SUB, [ALU_XOR] = CC_LOGIC, [ALU_CMP] = CC_SUB,
	};

	ld(e, RAX, OFF_T(u->a));
	get_b(e, u);
	alu_rr(e, OP_MOV, RDX, RAX);
	alu_rr(e, ops[u->x & 7], RDX, RCX);
	put_t(e, u, RDX, true);
	if (u->aux & UF_NOFLAGS)
		return;
	st32i(e, OFF(cc_op), cc[u->x & 7]);
	st32i(e, OFF(cc_size), u->size);
	st(e, OFF(cc_a), RAX);
	st(e, OFF(cc_b), RCX);
	st(e, OFF(cc_res), RDX);
}

/*
 * rol/ror by a constant whose flags are dead (UF_NOFLAGS) or that leaves
 * only CF and OF for later (UF_KEEP_DEAD): interp_alu.c's set_cf_of.
 * Returns false if u is not such a rotate.
 */
static bool gen_rot(struct emit *e, const struct uop *u)
{
	unsigned w = tcg_bits(u->size), msb = w - 1, n, k;

	if ((u->x != SH_ROL && u->x != SH_ROR) || !(u->aux & UF_BIMM) ||
	    !(u->aux & (UF_NOFLAGS | UF_KEEP_DEAD)))
		return false;
	n = u->imm & (u->size == 3 ? 0x3f : 0x1f);
	k = n % w;
	if (!k)
		return false;	/* the rare counts that change nothing */
	ld(e, RAX, OFF_T(u->a));
	zext(e, RAX, u->size);
	if (u->size == 1)
		e8(e, 0x66);
	if (u->size == 3)
		e8(e, 0x48);
	e8(e, u->size == 0 ? 0xc0 : 0xc1);	/* rol/ror r/m, imm8 */
	e8(e, u->x == SH_ROL ? 0xc0 : 0xc8);
	e8(e, k);
	put_t(e, u, RAX, true);
	if (u->aux & UF_NOFLAGS)
		return true;
	/* rcx = CF, rdx = the bit that OF compares it with */
	alu_rr(e, OP_MOV, RCX, RAX);
	if (u->x == SH_ROR) {
		e8(e, 0x48); e8(e, 0xc1); e8(e, 0xe9); e8(e, msb);	/* shr rcx, msb */
	}
	e8(e, 0x83); e8(e, 0xe1); e8(e, 1);				/* and ecx, 1 */
	alu_rr(e, OP_MOV, RDX, RAX);
	e8(e, 0x48); e8(e, 0xc1); e8(e, 0xea);				/* shr rdx, */
	e8(e, u->x == SH_ROL ? msb : msb - 1);
	e8(e, 0x83); e8(e, 0xe2); e8(e, 1);				/* and edx, 1 */
	e8(e, 0x31); e8(e, 0xca);					/* xor edx, ecx */
	e8(e, 0xc1); e8(e, 0xe2); e8(e, 11);				/* shl edx, 11: OF */
	e8(e, 0x09); e8(e, 0xd1);					/* or ecx, edx */
	st32i(e, OFF(cc_op), CC_EFLAGS);
	st(e, OFF(cc_res), RCX);
	return true;
}

/*
 * shl/sal/shr/sar whose flags are dead (UF_NOFLAGS), by a constant or a
 * register: the host's shift of the same operand size gives what
 * tcg_exec_shift does for every count, as both mask it to 5 bits (6 for
 * 64-bit operands) and shift in zeroes or copies of the sign past the
 * width.  Returns false if u is not such a shift.
 */
static const uint8_t shift_digit[8] = {	/* ModRM reg field of C0/C1/D2/D3 */
	[SH_SHL] = 4, [SH_SAL] = 4, [SH_SHR] = 5, [SH_SAR] = 7,
};

static bool gen_shift(struct emit *e, const struct uop *u)
{
	const uint8_t *digit = shift_digit;
	bool imm = u->aux & UF_BIMM;

	if (!(u->aux & UF_NOFLAGS) || !digit[u->x & 7])
		return false;
	ld(e, RAX, OFF_T(u->a));
	if (!imm)
		ld(e, RCX, OFF_T(u->b));
	if (u->size == 1)
		e8(e, 0x66);
	if (u->size == 3)
		e8(e, 0x48);
	e8(e, (imm ? 0xc0 : 0xd2) | (u->size ? 1 : 0));	/* shift al/ax/eax/rax */
	e8(e, 0xc0 | digit[u->x & 7] << 3);
	if (imm)
		e8(e, (uint8_t)u->imm);
	put_t(e, u, RAX, true);
	return true;
}

/*
 * shl/sal/shr/sar by a constant count 1 <= n < width whose flags are
 * read: the host's shift sets CF, PF, ZF and SF as tcg_exec_shift
 * defines them (the SDM defines them for such counts); OF as
 * tcg_exec_shift makes it: the host's for n = 1 (msb(r) ^ CF for shl,
 * msb(a) for shr, 0 for sar), for larger counts msb(r) ^ CF after shl
 * and 0 otherwise; AF 0.  Stored as tcg_set_flags does with the full
 * mask (CC_EFLAGS).  Returns false if u is not such a shift.
 */
static bool gen_shift_flags(struct emit *e, const struct uop *u)
{
	unsigned w = tcg_bits(u->size), n = u->imm & (u->size == 3 ? 0x3f : 0x1f);
	uint32_t keep = F_CF | F_PF | F_ZF | F_SF;

	if (!(u->aux & UF_BIMM) || !shift_digit[u->x & 7] || !n || n >= w)
		return false;
	ld(e, RAX, OFF_T(u->a));
	if (u->size == 1)
		e8(e, 0x66);
	if (u->size == 3)
		e8(e, 0x48);
	e8(e, u->size ? 0xc1 : 0xc0);
	e8(e, 0xc0 | shift_digit[u->x & 7] << 3);
	e8(e, n);
	e8(e, 0x9c);						/* pushfq */
	e8(e, 0x59);						/* pop rcx */
	if (n == 1)
		keep |= F_OF;
	e8(e, 0x81); e8(e, 0xe1); e32(e, keep);			/* and ecx, keep */
	put_t(e, u, RAX, true);
	if (n > 1 && (u->x == SH_SHL || u->x == SH_SAL)) {
		/* OF = msb(r) ^ CF */
		alu_rr(e, OP_MOV, RDX, RAX);
		e8(e, 0x48); e8(e, 0xc1); e8(e, 0xea); e8(e, w - 1);	/* shr rdx, msb */
		alu_rr(e, OP_XOR, RDX, RCX);
		e8(e, 0x83); e8(e, 0xe2); e8(e, 1);			/* and edx, 1 */
		e8(e, 0xc1); e8(e, 0xe2); e8(e, 11);			/* shl edx, 11 */
		e8(e, 0x09); e8(e, 0xd1);				/* or ecx, edx */
	}
	st32i(e, OFF(cc_op), CC_EFLAGS);
	st(e, OFF(cc_res), RCX);
	return true;
}

/* if (taken) leave through exit 1; skip_op (JZ, JNZ) skips the exit */
static void gen_branch(struct emit *e, const struct tb *tb, const struct uop *u,
		       uint8_t skip_op)
{
	uint8_t *s = skip32(e, skip_op & 0xf);	/* the jcc's condition code */

	gen_goto(e, tb, u->imm, 1);
	land32(e, s);
}

/*
 * CF into rcx, as tcg_cf computes it, for the lazy states the code knows
 * at translation time (cc: the cc_op the last inline flag write left, or
 * -1).  Returns false if it cannot.
 */
static bool gen_cf(struct emit *e, int cc)
{
	switch (cc) {
	case CC_EFLAGS:
		ld(e, RCX, OFF(cc_res));
		e8(e, 0x83); e8(e, 0xe1); e8(e, 1);	/* and ecx, 1 */
		return true;
	case CC_LOGIC:
		e8(e, 0x31); e8(e, 0xc9);		/* xor ecx, ecx */
		return true;
	case CC_SUB:
		ld(e, RDX, OFF(cc_a));
		e8(e, 0x31); e8(e, 0xc9);		/* xor ecx, ecx */
		e8(e, 0x48); e8(e, 0x3b);		/* cmp rdx, [cc_b] */
		mem_rbx(e, RDX, OFF(cc_b));
		e8(e, 0x0f); e8(e, 0x92); e8(e, 0xc1);	/* setb cl */
		return true;
	}
	return false;
}

/* inc/dec unless CF must be kept from a lazy state unknown here. */
static bool gen_incdec(struct emit *e, const struct uop *u, int cc)
{
	bool keep = !(u->aux & (UF_NOFLAGS | UF_KEEP_DEAD));

	if (keep && !gen_cf(e, cc))
		return false;
	if (keep)
		st(e, OFF(cc_cin), RCX);
	ld(e, RAX, OFF_T(u->a));
	alu_rr(e, OP_MOV, RDX, RAX);
	e8(e, 0x48);		/* add/sub rdx, 1 */
	e8(e, 0x83);
	e8(e, u->x ? 0xea : 0xc2);
	e8(e, 1);
	put_t(e, u, RDX, true);
	if (u->aux & UF_NOFLAGS)
		return true;
	/* UF_KEEP_DEAD: the carry it keeps is never read */
	if (!keep)
		st64i(e, OFF(cc_cin), 0);
	st32i(e, OFF(cc_op), u->x ? CC_DEC : CC_INC);
	st32i(e, OFF(cc_size), u->size);
	st(e, OFF(cc_a), RAX);
	st64i(e, OFF(cc_b), 1);
	st(e, OFF(cc_res), RDX);
	return true;
}

/*
 * jz/jnz (U_JCC with CC_E or CC_NE) after a flag write this block made
 * inline: interp.c's jcc_taken without the call.  Returns false if the
 * lazy state is not known here.
 */
static bool gen_jcc_known(struct emit *e, const struct tb *tb, const struct uop *u, int cc)
{
	bool ne = u->x & 1;

	if ((u->x >> 1) != (CC_E >> 1))
		return false;
	if (cc == CC_LOGIC) {
		/* cc_res is stored truncated to cc_size already */
		ld(e, RAX, OFF(cc_res));
		alu_rr(e, OP_TEST, RAX, RAX);
	} else if (cc == CC_SUB) {
		ld(e, RAX, OFF(cc_a));
		e8(e, 0x48); e8(e, 0x3b);		/* cmp rax, [cc_b] */
		mem_rbx(e, RAX, OFF(cc_b));
	} else {
		return false;
	}
	gen_branch(e, tb, u, ne ? JZ : JNZ);
	return true;
}

/*
 * Any other jcc: tcg_uop_cond decides, except after a sub or cmp (the
 * lazy state CC_SUB, known here or tested at run time) for the
 * conditions that are a compare of its operands: cc_a and cc_b are
 * zero-extended to the operand size, so CF is cc_a < cc_b and ZF
 * cc_a == cc_b (cpu.c's arith_flags), and b, ae, e, ne, be and a are
 * the host's conditions of the same number after cmp cc_a, cc_b.
 */
static void gen_jcc_sub(struct emit *e, const struct tb *tb, const struct uop *u, int cc)
{
	uint8_t *slow = NULL, *test = NULL;
	bool cmp = u->x >= CC_B && u->x <= CC_A && (cc == CC_SUB || cc < 0);

	if (cmp && cc < 0) {
		e8(e, 0x83); mem_rbx(e, 7, OFF(cc_op)); e8(e, CC_SUB);	/* cmp dword */
		slow = skip32(e, X_NE);
	}
	if (cmp) {
		ld(e, RAX, OFF(cc_a));
		e8(e, 0x48); e8(e, 0x3b);				/* cmp rax, [cc_b] */
		mem_rbx(e, RAX, OFF(cc_b));
		if (!slow) {
			gen_branch(e, tb, u, 0x70 | (u->x ^ 1));	/* skip if not */
			return;
		}
		e8(e, 0x0f); e8(e, 0x90 | u->x); e8(e, 0xc0);		/* setcc al */
		test = skip32(e, -1);
		land32(e, slow);
	}
	alu_rr(e, OP_MOV, RDI, RBX);
	e8(e, 0xbe);	/* mov esi, cc */
	e32(e, u->x);
	call(e, tcg_uop_cond);
	if (test)
		land32(e, test);
	e8(e, 0x84);	/* test al, al */
	e8(e, 0xc0);
	gen_branch(e, tb, u, JZ);
}

/*
 * Code for u of tb.  *cc tracks the cc_op that the inline flag writes of
 * this block left (-1: unknown, after anything that may change it).
 */
static void gen_uop(struct emit *e, const struct tb *tb, const struct uop *u,
		    uint64_t emask, int *cc)
{
	bool cs64 = tb->flags & TBF_CS64;
	uint8_t *s;
	int known = *cc;

	*cc = -1;

	switch (u->op) {
	case U_INSN:
		*cc = known;
		e8(e, 0x80);	/* cmp byte [brk], 0 */
		mem_rbx(e, 7, OFF(brk));
		e8(e, 0);
		s = skip(e, JZ);
		e8(e, 0xc6);	/* mov byte [brk], 0 */
		mem_rbx(e, 0, OFF(brk));
		e8(e, 0);
		leave_to(e, u->imm, -1);
		land(e, s);
		st64i(e, OFF(insn_eip), u->imm);
		st64i(e, OFF(insn_next), (u->imm + u->a) & emask);
		return;
	case U_MOVI:
		*cc = known;
		movi(e, RAX, u->imm);
		put_t(e, u, RAX, false);
		return;
	case U_MOV:
		*cc = known;
		ld(e, RAX, OFF_T(u->a));
		put_t(e, u, RAX, false);
		return;
	case U_LDR:
		*cc = known;
		if (u->a & 0x30)
			break;	/* high byte or segment register */
		ld(e, RAX, OFF_GPR(u->a));
		put_t(e, u, RAX, true);
		return;
	case U_STR:
		*cc = known;
		if (u->d & 0x10)
			break;
		gen_str(e, u);
		return;
	case U_ADD: case U_SUB: case U_AND: case U_OR: case U_XOR: {
		*cc = known;
		static const uint8_t ops[] = { OP_ADD, OP_SUB, OP_AND, OP_OR, OP_XOR };

		ld(e, RAX, OFF_T(u->a));
		ld(e, RCX, OFF_T(u->b));
		alu_rr(e, ops[u->op - U_ADD], RAX, RCX);
		put_t(e, u, RAX, u->op == U_ADD || u->op == U_SUB);
		return;
	}
	case U_ADDI:
		*cc = known;
		ld(e, RAX, OFF_T(u->a));
		movi(e, RCX, u->imm);
		alu_rr(e, OP_ADD, RAX, RCX);
		put_t(e, u, RAX, true);
		return;
	case U_SHLI: case U_SARI:
		*cc = known;
		ld(e, RAX, OFF_T(u->a));
		e8(e, 0x48);	/* shl/sar rax, imm8 */
		e8(e, 0xc1);
		e8(e, u->op == U_SHLI ? 0xe0 : 0xf8);
		e8(e, u->imm & 63);
		put_t(e, u, RAX, u->op == U_SHLI);
		return;
	case U_SEXT:
		*cc = known;
		ld(e, RAX, OFF_T(u->a));
		switch (u->size) {
		case 0: e8(e, 0x48); e8(e, 0x0f); e8(e, 0xbe); e8(e, 0xc0); break;
		case 1: e8(e, 0x48); e8(e, 0x0f); e8(e, 0xbf); e8(e, 0xc0); break;
		case 2: e8(e, 0x48); e8(e, 0x63); e8(e, 0xc0); break;
		}
		put_t(e, u, RAX, false);
		return;
	case U_ZEXT:
		*cc = known;
		ld(e, RAX, OFF_T(u->a));
		put_t(e, u, RAX, true);
		return;
	case U_NOT:
		*cc = known;
		ld(e, RAX, OFF_T(u->a));
		e8(e, 0x48);	/* not rax */
		e8(e, 0xf7);
		e8(e, 0xd0);
		put_t(e, u, RAX, true);
		return;
	case U_ALU:
		if (u->x == ALU_ADC || u->x == ALU_SBB)
			break;
		gen_alu(e, u);
		*cc = (u->aux & UF_NOFLAGS) ? known :
		      u->x == ALU_ADD ? CC_ADD :
		      u->x == ALU_SUB || u->x == ALU_CMP ? CC_SUB : CC_LOGIC;
		return;
	case U_INCDEC:
		if (!gen_incdec(e, u, known))
			break;
		*cc = (u->aux & UF_NOFLAGS) ? known : u->x ? CC_DEC : CC_INC;
		return;
	case U_LD: case U_ST:
		*cc = known;	/* the soft-MMU leaves the flags alone */
		tcg_jit_gen_mem(e, u, cs64);
		return;
	case U_SHIFT:
		if (gen_shift(e, u))
			*cc = known;	/* UF_NOFLAGS: they are not written */
		else if (gen_shift_flags(e, u))
			*cc = CC_EFLAGS;
		else if (gen_rot(e, u))
			*cc = (u->aux & UF_NOFLAGS) ? known : CC_EFLAGS;
		else
			gen_direct(e, u, tcg_exec_shift);
		return;
	case U_SHD: gen_direct(e, u, tcg_exec_shd); return;
	case U_MUL: gen_direct(e, u, tcg_exec_mul); return;
	case U_DIV: gen_direct(e, u, tcg_exec_div); return;
	case U_BT: gen_direct(e, u, tcg_exec_bt); return;
	case U_BSF: case U_BSR: case U_POPCNT: case U_TZCNT: case U_LZCNT:
		gen_direct(e, u, tcg_exec_bitscan);
		return;
	case U_IMUL2:
		if (!(u->aux & UF_NOFLAGS)) {
			gen_direct(e, u, tcg_exec_imul2);
			return;
		}
		ld(e, RAX, OFF_T(u->a));
		get_b(e, u);
		e8(e, 0x48);	/* imul rax, rcx */
		e8(e, 0x0f);
		e8(e, 0xaf);
		e8(e, 0xc1);
		put_t(e, u, RAX, true);
		return;
	case U_JMP:
		ld(e, RAX, OFF_T(u->a));
		st(e, OFF(rip), RAX);
		gen_ret(e, tb, 2);
		return;
	case U_JMPI:
		gen_goto(e, tb, u->imm, 0);
		return;
	case U_JCC:
		*cc = known;	/* a branch not taken changes nothing */
		if (gen_jcc_known(e, tb, u, known))
			return;
		gen_jcc_sub(e, tb, u, known);
		return;
	case U_JNZ: case U_JZ:
		*cc = known;
		ld(e, RAX, OFF_T(u->a));
		zext(e, RAX, u->size);
		alu_rr(e, OP_TEST, RAX, RAX);
		gen_branch(e, tb, u, u->op == U_JNZ ? JZ : JNZ);
		return;
	}
	gen_call(e, u);
}

void *tcg_jit_gen(struct tcg_jit *j, const struct tb *tb, void **chain)
{
	struct emit e = { j->w + j->used };
	uint64_t emask = (tb->flags & TBF_CS64) ? ~0ull :
			 (tb->flags & TBF_CS32) ? 0xffffffffull : 0xffff;
	void *entry = j->x + j->used;
	int cc = -1;

	*chain = NULL;
	if (!tcg_jit_room(j, tb->nr_uops))
		return NULL;
	e8(&e, 0x53);		/* push rbx */
	alu_rr(&e, OP_MOV, RBX, RDI);
	/* A direct jump from another block enters here: what enter_tb
	 * does, which the run loop has done already for the entry above. */
	*chain = j->x + (e.p - j->w);
	e8(&e, 0xc6); mem_rbx(&e, 0, OFF(shadow)); e8(&e, 0);	/* mov byte, 0 */
	e8(&e, 0x48); e8(&e, 0x81);				/* and qword, ~RF */
	mem_rbx(&e, 4, OFF(rflags));
	e32(&e, ~(uint32_t)F_RF);
	st64i(&e, OFF(cur_phys), tb->phys);
	st64i(&e, OFF(cur_end), tb->phys + tb->size);
	e8(&e, 0xc6); mem_rbx(&e, 0, OFF(brk)); e8(&e, 0);
	for (unsigned i = 0; i < tb->nr_uops; i++)
		gen_uop(&e, tb, &tb->uops[i], emask, &cc);
	/* Cut short (every block ends in a jump otherwise): go on after
	 * the last instruction. */
	ld(&e, RAX, OFF(insn_next));
	st(&e, OFF(rip), RAX);
	ret(&e, -1);
	j->used = (size_t)(e.p - j->w + 15) & ~(size_t)15;
	return entry;
}

void tcg_jit_run(struct tcg_cpu *c, struct tb *tb)
{
	for (;;) {
		int exit = ((int (*)(struct tcg_cpu *))tb->host)(c);

		if (exit < 0) {
			c->chain_from = NULL;	/* not an exit that may be linked */
			return;
		}
		/* not tb if it jumped on to other blocks by itself */
		tb = tcg_tb_next(c, c->jit_last, exit);
		if (!tb)
			return;
		if (!tb->host) {
			tcg_interp(c, tb);
			return;
		}
	}
}

#else	/* not an x86-64 host: the interpreter runs everything */

struct tcg_jit *tcg_jit_create(void)
{
	errno = ENOSYS;
	return NULL;
}

void tcg_jit_destroy(struct tcg_jit *j)
{
}

void tcg_jit_reset(struct tcg_jit *j)
{
}

bool tcg_jit_room(const struct tcg_jit *j, unsigned nr_uops)
{
	return false;
}

void *tcg_jit_gen(struct tcg_jit *j, const struct tb *tb, void **chain)
{
	*chain = NULL;
	return NULL;
}

void tcg_jit_run(struct tcg_cpu *c, struct tb *tb)
{
	tcg_interp(c, tb);
}

#endif
