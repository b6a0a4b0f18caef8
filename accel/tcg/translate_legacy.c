/*
 * Instructions that exist only outside 64-bit mode: the BCD adjustments
 * (daa, das, aaa, aas, aam, aad), salc, bound and arpl; and fwait, which
 * without an FPU only checks CR0.MP/TS.  Flags follow the SDM's
 * pseudo-code; flags it leaves undefined are cleared.
 */
#include "accel/tcg/decode.h"

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
