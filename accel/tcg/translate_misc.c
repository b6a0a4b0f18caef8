/*
 * Data movement: mov in all forms, lea, movzx/movsx/movsxd, xchg, cmov,
 * setcc, sign extensions, push/pop (registers, immediates, memory,
 * segment registers, pusha/popa, pushf/popf), enter/leave, lahf/sahf,
 * the flag instructions, xlat, far pointer loads and the hint nops.
 *
 * And the instructions that exist only outside 64-bit mode: the BCD
 * adjustments (daa, das, aaa, aas, aam, aad), salc, bound and arpl; and
 * fwait, which without an FPU only checks CR0.MP/TS.  Flags follow the
 * SDM's pseudo-code; flags it leaves undefined are cleared.
 */
#include "accel/tcg/decode.h"

static unsigned opsize(struct tctx *t)
{
	return (t->i->op & 1) ? t->i->osz : 0;
}

/* Push and pop default to 64 bits in long mode (16 with 66h). */
static unsigned push_size(struct tctx *t)
{
	if (t->i->mode == 3)
		return t->i->p66 ? 1 : 3;
	return t->i->osz;
}

static void helper_load_seg(struct tcg_cpu *c, const struct uop *u)
{
	tcg_load_seg(c, u->x, c->t[u->a]);
	if (u->x == S_SS) {
		/* mov ss / pop ss block interrupts for one instruction. */
		c->shadow = true;
		c->end_tb = true;
	}
}

static void helper_popf(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t mask = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID;
	unsigned iopl = (c->rflags & F_IOPL) >> 12;

	if (!(c->cr0 & CR0_PE) || c->cpl == 0)
		mask |= F_IOPL;
	if (!(c->cr0 & CR0_PE) || c->cpl <= iopl)
		mask |= F_IF;
	if (u->size == 1)
		mask &= 0xffff;
	tcg_set_flags(c, c->t[u->a], mask);
}

/* cld/std: u->x is the new DF. */
static void helper_setdf(struct tcg_cpu *c, const struct uop *u)
{
	tcg_set_flags(c, u->x ? F_DF : 0, F_DF);
}

static void helper_sahf(struct tcg_cpu *c, const struct uop *u)
{
	tcg_set_flags(c, c->t[u->a], F_SF | F_ZF | F_AF | F_PF | F_CF);
}

/* enter imm16, imm8: the nesting level copies frame pointers. */
static void helper_enter(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, bytes = 1u << size, ss = u->b;
	unsigned level = c->t[u->a] & 31, frame = (c->t[u->a] >> 16) & 0xffff;
	uint64_t mask = ss == 3 ? ~0ull : ss == 2 ? 0xffffffffull : 0xffff;
	uint64_t sp = c->gpr[R_RSP], bp = c->gpr[R_RBP], ft;

	sp = (sp - bytes) & mask;
	tcg_store(c, S_SS, sp, bytes, bp);
	ft = sp;
	for (unsigned k = 1; k < level; k++) {
		uint64_t v;

		bp = (bp - bytes) & mask;
		v = tcg_load(c, S_SS, bp, bytes);
		sp = (sp - bytes) & mask;
		tcg_store(c, S_SS, sp, bytes, v);
	}
	if (level) {
		sp = (sp - bytes) & mask;
		tcg_store(c, S_SS, sp, bytes, ft);
	}
	sp = (sp - frame) & mask;
	/* Probe the new stack top as the CPU does before committing. */
	if (frame)
		(void)tcg_lin(c, S_SS, sp, 1, ACC_W);
	/* All stores done: commit rBP and rSP with the stack's width. */
	c->gpr[R_RBP] = ss == 3 ? ft : ss == 2 ? (uint32_t)ft : (c->gpr[R_RBP] & ~0xffffull) | ft;
	c->gpr[R_RSP] = ss == 3 ? sp : ss == 2 ? (uint32_t)sp : (c->gpr[R_RSP] & ~0xffffull) | sp;
}

static bool tr_mov(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = opsize(t), v, r;

	switch (i->op) {
	case 0x88: case 0x89:
		gen_st_rm(t, size, gen_ld_reg(t, i->reg, size));
		return true;
	case 0x8a: case 0x8b:
		gen_st_reg(t, i->reg, size, gen_ld_rm(t, size));
		return true;
	case 0xc6: case 0xc7:
		if (i->reg & 7)
			return false;
		v = gen_imm(t, tcg_sized(size && i->osz != 1 ? tcg_sext(i->imm, 2) : i->imm, size));
		gen_st_rm(t, size, v);
		return true;
	case 0xb0 ... 0xb7:
		gen_st_reg(t, (i->op & 7) | ((i->rex & 1) << 3), 0, gen_imm(t, i->imm));
		return true;
	case 0xb8 ... 0xbf:
		gen_st_reg(t, (i->op & 7) | ((i->rex & 1) << 3), i->osz, gen_imm(t, i->imm));
		return true;
	case 0xa0: case 0xa1:
		gen_st_reg(t, R_RAX, size, gen_ld_rm(t, size));
		return true;
	case 0xa2: case 0xa3:
		gen_st_rm(t, size, gen_ld_reg(t, R_RAX, size));
		return true;
	case 0x8c:		/* mov r/m, sreg: 16 bits to memory, zero-extended to a register */
		if ((i->reg & 7) > 5)
			return false;
		r = tcg_tmp(t);
		tcg_emit(t, U_LDR, 1, r, 0x20 | (i->reg & 7), 0, 0, 0);
		if (i->mem)
			gen_st_rm(t, 1, r);
		else
			gen_st_reg(t, i->rm, i->osz, r);
		return true;
	case 0x8e:
		if ((i->reg & 7) == S_CS || (i->reg & 7) > 5)
			return false;
		v = gen_ld_rm(t, 1);
		gen_helper(t, helper_load_seg, 0, 0, v, 0, i->reg & 7, (i->reg & 7) == S_SS);
		return true;
	case 0x8d:
		if (!i->mem)
			return false;
		v = gen_ea(t);
		gen_st_reg(t, i->reg, i->osz, v);
		return true;
	}
	return false;
}

static bool tr_ext(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned v;

	switch (i->op) {
	case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf:
		v = gen_ld_rm(t, i->op & 1);
		if (i->op >= 0x1be)
			tcg_emit(t, U_SEXT, i->op & 1, v, v, 0, 0, 0);
		gen_st_reg(t, i->reg, i->osz, v);
		return true;
	case 0x63:
		if (i->mode != 3)
			return false;	/* arpl outside 64-bit mode: tcg_tr_legacy */
		v = gen_ld_rm(t, 2);
		tcg_emit(t, U_SEXT, 2, v, v, 0, 0, 0);
		gen_st_reg(t, i->reg, i->osz, v);
		return true;
	case 0x98:		/* cbw / cwde / cdqe */
		v = gen_ld_reg(t, R_RAX, i->osz - 1);
		tcg_emit(t, U_SEXT, i->osz - 1, v, v, 0, 0, 0);
		gen_st_reg(t, R_RAX, i->osz, v);
		return true;
	case 0x99:		/* cwd / cdq / cqo */
		v = gen_ld_reg(t, R_RAX, i->osz);
		tcg_emit(t, U_SEXT, i->osz, v, v, 0, 0, 0);
		tcg_emit(t, U_SARI, 3, v, v, 0, 0, 63);
		gen_st_reg(t, R_RDX, i->osz, v);
		return true;
	case 0x140 ... 0x14f: {	/* cmov: a 32-bit destination is written either way */
		unsigned src = gen_ld_rm(t, i->osz), dst = gen_ld_reg(t, i->reg, i->osz);
		unsigned cc = tcg_tmp(t);

		tcg_emit(t, U_GETCC, 0, cc, 0, 0, i->op & 15, 0);
		tcg_emit(t, U_SELECT, i->osz, dst, src, dst, cc, 0);
		gen_st_reg(t, i->reg, i->osz, dst);
		return true;
	}
	case 0x190 ... 0x19f:
		v = tcg_tmp(t);
		tcg_emit(t, U_GETCC, 0, v, 0, 0, i->op & 15, 0);
		gen_st_rm(t, 0, v);
		return true;
	}
	return false;
}

static bool tr_xchg(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size, a, b, r;

	if (i->op >= 0x90 && i->op <= 0x97) {
		r = (i->op & 7) | ((i->rex & 1) << 3);
		if (r == 0)
			return true;	/* nop, pause */
		a = gen_ld_reg(t, R_RAX, i->osz);
		b = gen_ld_reg(t, r, i->osz);
		gen_st_reg(t, R_RAX, i->osz, b);
		gen_st_reg(t, r, i->osz, a);
		return true;
	}
	size = opsize(t);
	b = gen_ld_reg(t, i->reg, size);
	if (i->mem) {
		/* xchg with memory is always locked. */
		a = tcg_tmp(t);
		tcg_emit(t, U_LDL, size, a, gen_ea(t), 0, gen_seg(t), 0);
		tcg_emit(t, U_STC, size, a, gen_ea(t), b, gen_seg(t), 0);
	} else {
		a = gen_ld_reg(t, i->rm, size);
		gen_st_reg(t, i->rm, size, b);
	}
	gen_st_reg(t, i->reg, size, a);
	return true;
}

static void pop_seg(struct tctx *t, unsigned sreg)
{
	unsigned size = push_size(t), ss = stack_size(t), sp = tcg_tmp(t), v = tcg_tmp(t);

	tcg_emit(t, U_LDR, 3, sp, R_RSP, 0, 0, 0);
	tcg_emit(t, U_LD, size, v, sp, 0, S_SS, 0);
	gen_helper(t, helper_load_seg, 0, 0, v, 0, sreg, sreg == S_SS);
	tcg_emit(t, U_ADDI, ss, sp, sp, 0, 0, 1ull << size);
	tcg_emit(t, U_STR, ss, R_RSP, sp, 0, 0, 0);
}

static void push_seg(struct tctx *t, unsigned sreg)
{
	unsigned v = tcg_tmp(t);

	tcg_emit(t, U_LDR, 1, v, 0x20 | sreg, 0, 0, 0);
	gen_push(t, push_size(t), v);
}

static bool tr_stack(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = push_size(t), v, sp, ss = stack_size(t);

	switch (i->op) {
	case 0x50 ... 0x57:
		gen_push(t, size, gen_ld_reg(t, (i->op & 7) | ((i->rex & 1) << 3), 3));
		return true;
	case 0x58 ... 0x5f:
		v = gen_pop(t, size);
		gen_st_reg(t, (i->op & 7) | ((i->rex & 1) << 3), size, v);
		return true;
	case 0x68:
		gen_push(t, size, gen_imm(t, i->osz == 1 ? i->imm : tcg_sext(i->imm, 2)));
		return true;
	case 0x6a:
		gen_push(t, size, gen_imm(t, tcg_sext(i->imm, 0)));
		return true;
	case 0x8f:		/* pop r/m: the address uses the incremented rSP */
		if (i->reg & 7)
			return false;
		sp = tcg_tmp(t);
		v = tcg_tmp(t);
		tcg_emit(t, U_LDR, 3, sp, R_RSP, 0, 0, 0);
		tcg_emit(t, U_LD, size, v, sp, 0, S_SS, 0);
		tcg_emit(t, U_ADDI, ss, sp, sp, 0, 0, 1ull << size);
		if (i->mem) {
			unsigned old = tcg_tmp(t), ea;

			/* Compute the address with the new rSP, but put the
			 * old one back until the store has succeeded. */
			tcg_emit(t, U_LDR, 3, old, R_RSP, 0, 0, 0);
			tcg_emit(t, U_STR, ss, R_RSP, sp, 0, 0, 0);
			ea = gen_ea(t);
			tcg_emit(t, U_STR, 3, R_RSP, old, 0, 0, 0);
			tcg_emit(t, U_ST, size, 0, ea, v, gen_seg(t), 0);
			tcg_emit(t, U_STR, ss, R_RSP, sp, 0, 0, 0);
		} else {
			tcg_emit(t, U_STR, ss, R_RSP, sp, 0, 0, 0);
			gen_st_reg(t, i->rm, size, v);
		}
		return true;
	case 0x06: case 0x0e: case 0x16: case 0x1e:
		if (i->mode == 3)
			return false;
		push_seg(t, i->op >> 3);
		return true;
	case 0x07: case 0x17: case 0x1f:
		if (i->mode == 3)
			return false;
		pop_seg(t, i->op >> 3);
		return true;
	case 0x1a0: case 0x1a8:
		push_seg(t, i->op == 0x1a0 ? S_FS : S_GS);
		return true;
	case 0x1a1: case 0x1a9:
		pop_seg(t, i->op == 0x1a1 ? S_FS : S_GS);
		return true;
	case 0x60:		/* pusha: the pushed rSP is the original */
		if (i->mode == 3)
			return false;
		v = gen_ld_reg(t, R_RSP, 3);
		for (unsigned r = 0; r < 8; r++)
			gen_push(t, i->osz, r == R_RSP ? v : gen_ld_reg(t, r, 3));
		return true;
	case 0x61:		/* popa: the stored rSP is skipped */
		if (i->mode == 3)
			return false;
		for (int r = 7; r >= 0; r--) {
			v = gen_pop(t, i->osz);
			if (r != R_RSP)
				gen_st_reg(t, r, i->osz, v);
			t->ntemp = 0;
		}
		return true;
	case 0x9c:
		v = tcg_tmp(t);
		tcg_emit(t, U_GETF, 0, v, 0, 0, 0, 0);
		/* VM and RF are never pushed */
		tcg_emit(t, U_AND, 3, v, v, gen_imm(t, ~(uint64_t)(F_VM | F_RF)), 0, 0);
		gen_push(t, size, v);
		return true;
	case 0x9d:
		v = gen_pop(t, size);
		gen_helper(t, helper_popf, size, 0, v, 0, 0, true);
		return true;
	case 0xc8:
		v = gen_imm(t, (i->imm << 16) | (i->imm2 & 31));
		gen_helper(t, helper_enter, size, 0, v, ss, 0, false);
		return true;
	case 0xc9:		/* leave */
		sp = gen_ld_reg(t, R_RBP, 3);
		v = tcg_tmp(t);
		tcg_emit(t, U_LD, size, v, sp, 0, S_SS, 0);
		tcg_emit(t, U_ADDI, ss, sp, sp, 0, 0, 1ull << size);
		tcg_emit(t, U_STR, ss, R_RSP, sp, 0, 0, 0);
		gen_st_reg(t, R_RBP, size, v);
		return true;
	}
	return false;
}

/* les/lds/lss/lfs/lgs: offset then selector; the register is written
 * only after the segment load has succeeded. */
static bool tr_farptr(struct tctx *t, unsigned sreg)
{
	struct insn *i = t->i;
	unsigned off, sel, ea = gen_ea(t), a2 = tcg_tmp(t);

	off = tcg_tmp(t);
	tcg_emit(t, U_LD, i->osz, off, ea, 0, gen_seg(t), 0);
	tcg_emit(t, U_ADDI, i->asz, a2, ea, 0, 0, 1ull << i->osz);
	sel = tcg_tmp(t);
	tcg_emit(t, U_LD, 1, sel, a2, 0, gen_seg(t), 0);
	gen_helper(t, helper_load_seg, 0, 0, sel, 0, sreg, sreg == S_SS);
	gen_st_reg(t, i->reg, i->osz, off);
	return true;
}

bool tcg_tr_misc(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned v, a;

	if (tr_mov(t) || tr_ext(t) || tr_stack(t))
		return true;
	switch (i->op) {
	case 0x86: case 0x87: case 0x90 ... 0x97:
		if (i->op == 0x90 && i->rep == 0xf3)
			return true;	/* pause */
		return tr_xchg(t);
	case 0xf5:
		tcg_emit(t, U_SETCF, 0, 0, 0, 0, 2, 0);
		return true;
	case 0xf8: case 0xf9:
		tcg_emit(t, U_SETCF, 0, 0, 0, 0, i->op & 1, 0);
		return true;
	case 0xfc: case 0xfd:
		gen_helper(t, helper_setdf, 0, 0, 0, 0, i->op & 1, false);
		return true;
	case 0x9e:
		gen_helper(t, helper_sahf, 0, 0, gen_ld_reg(t, 4, 0), 0, 0, false);
		return true;
	case 0x9f:
		v = tcg_tmp(t);
		tcg_emit(t, U_GETF, 0, v, 0, 0, 0, 0);
		gen_st_reg(t, 0x10 | R_RAX, 0, v);
		return true;
	case 0xd7:		/* xlat: al = [rBX + al] */
		a = gen_ld_reg(t, R_RBX, 3);
		v = gen_ld_reg(t, R_RAX, 0);
		tcg_emit(t, U_ADD, i->asz, a, a, v, 0, 0);
		tcg_emit(t, U_LD, 0, v, a, 0, i->seg != S_NONE ? i->seg : S_DS, 0);
		gen_st_reg(t, R_RAX, 0, v);
		return true;
	case 0x10d: case 0x118 ... 0x11f:	/* prefetch and hint nops */
		return true;
	case 0xc4: case 0xc5:
		if (i->mode == 3 || !i->mem)
			return false;	/* VEX: no AVX */
		return tr_farptr(t, i->op == 0xc4 ? S_ES : S_DS);
	case 0x1b2: case 0x1b4: case 0x1b5:
		if (!i->mem)
			return false;
		return tr_farptr(t, i->op == 0x1b2 ? S_SS : i->op == 0x1b4 ? S_FS : S_GS);
	case 0x1c3:		/* movnti */
		if (!i->mem || i->osz < 2)
			return false;
		gen_st_rm(t, i->osz, gen_ld_reg(t, i->reg, i->osz));
		return true;
	}
	return false;
}

static uint64_t szp(uint8_t v)
{
	return (v ? 0 : F_ZF) | ((v & 0x80) ? F_SF : 0) |
	       (__builtin_parity(v) ? 0 : F_PF);
}

static void set_al(struct tcg_cpu *c, uint8_t al)
{
	c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffull) | al;
}

/* u->x: 0 daa, 1 das, 2 aaa, 3 aas */
static void helper_bcd(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t f = tcg_get_flags(c);
	uint8_t al = c->gpr[R_RAX], old = al, ah = c->gpr[R_RAX] >> 8;
	bool cf = f & F_CF, af = f & F_AF, adj = (al & 0xf) > 9 || af;
	uint64_t nf;

	switch (u->x) {
	case 0:
		nf = 0;
		if (adj) {
			nf |= F_AF | (cf || al > 0xf9 ? F_CF : 0);
			al += 6;
		}
		if (old > 0x99 || cf) {
			al += 0x60;
			nf |= F_CF;
		} else {
			nf &= ~(uint64_t)F_CF;
		}
		set_al(c, al);
		tcg_set_flags(c, nf | szp(al), F_ARITH);
		return;
	case 1:
		nf = 0;
		if (adj) {
			nf |= F_AF | (cf || al < 6 ? F_CF : 0);
			al -= 6;
		}
		if (old > 0x99 || cf) {
			al -= 0x60;
			nf |= F_CF;
		}
		set_al(c, al);
		tcg_set_flags(c, nf | szp(al), F_ARITH);
		return;
	case 2: case 3:
		if (adj) {
			if (u->x == 2) {
				uint16_t ax = (uint16_t)((ah << 8) | al) + 0x106;

				al = ax;
				ah = ax >> 8;
			} else {
				uint16_t ax = (uint16_t)((ah << 8) | al) - 6;

				al = ax;
				ah = (ax >> 8) - 1;
			}
		}
		al &= 0xf;
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | ((uint64_t)ah << 8) | al;
		tcg_set_flags(c, adj ? F_AF | F_CF : 0, F_ARITH);
		return;
	}
}

/* aam (x = 0) / aad (x = 1) with base T[a] */
static void helper_aam(struct tcg_cpu *c, const struct uop *u)
{
	uint8_t base = c->t[u->a], al = c->gpr[R_RAX], ah = c->gpr[R_RAX] >> 8;

	if (u->x == 0) {
		if (!base)
			tcg_raise(c, EXC_DE, 0);
		ah = al / base;
		al = al % base;
	} else {
		al = al + ah * base;
		ah = 0;
	}
	c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | ((uint64_t)ah << 8) | al;
	tcg_set_flags(c, szp(al), F_ARITH);
}

/* bound: T[a] index, T[b] offset of the bounds in segment x. */
static void helper_bound(struct tcg_cpu *c, const struct uop *u)
{
	unsigned bytes = 1u << u->size;
	int64_t idx = tcg_sext(c->t[u->a], u->size);
	int64_t lo = tcg_sext(tcg_load(c, u->x, c->t[u->b], bytes), u->size);
	int64_t hi = tcg_sext(tcg_load(c, u->x, tcg_sized(c->t[u->b] + bytes, u->d), bytes), u->size);

	if (idx < lo || idx > hi)
		tcg_raise(c, EXC_BR, 0);
}

/* arpl: T[d] = T[a] with its RPL raised to that of T[b]; ZF if raised. */
static void helper_arpl(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t dst = c->t[u->a], src = c->t[u->b];
	bool raise = (dst & 3) < (src & 3);

	c->t[u->d] = raise ? (dst & ~3) | (src & 3) : dst;
	tcg_set_flags(c, raise ? F_ZF : 0, F_ZF);
}

static void helper_fwait(struct tcg_cpu *c, const struct uop *u)
{
	if ((c->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
		tcg_raise(c, EXC_NM, 0);
}

bool tcg_tr_legacy(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned a, r;

	if (i->op == 0x9b) {
		gen_helper(t, helper_fwait, 0, 0, 0, 0, 0, false);
		return true;
	}
	if (i->mode == 3)
		return false;
	switch (i->op) {
	case 0x27: case 0x2f: case 0x37: case 0x3f:
		gen_helper(t, helper_bcd, 0, 0, 0, 0, (i->op >> 3) - 4, false);
		return true;
	case 0xd4: case 0xd5:
		gen_helper(t, helper_aam, 0, 0, gen_imm(t, i->imm & 0xff), 0, i->op & 1, false);
		return true;
	case 0xd6:		/* salc */
		a = tcg_tmp(t);
		tcg_emit(t, U_GETCF, 0, a, 0, 0, 0, 0);
		tcg_emit(t, U_SELECT, 0, a, gen_imm(t, 0xff), gen_imm(t, 0), a, 0);
		gen_st_reg(t, R_RAX, 0, a);
		return true;
	case 0x62:
		if (!i->mem)
			return false;
		gen_helper(t, helper_bound, i->osz, i->asz, gen_ld_reg(t, i->reg, i->osz),
			   gen_ea(t), gen_seg(t), false);
		return true;
	case 0x63:		/* arpl r/m16, r16 */
		if (!(t->flags & TBF_PE) || (t->flags & TBF_VM))
			return false;
		a = gen_ld_rm(t, 1);
		r = tcg_tmp(t);
		gen_helper(t, helper_arpl, 0, r, a, gen_ld_reg(t, i->reg, 1), 0, false);
		gen_st_rm(t, 1, r);
		return true;
	}
	return false;
}
