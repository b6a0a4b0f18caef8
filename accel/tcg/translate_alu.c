/*
 * Integer arithmetic and logic: the eight ALU operations in all their
 * forms, inc/dec, not/neg, test, multiply and divide, shifts and
 * rotates, double shifts, bit tests and scans, cmpxchg, xadd, bswap.
 *
 * A lock prefix turns a memory read-modify-write into U_LDL ... U_STC:
 * the store succeeds only if memory still holds what was loaded, else
 * the instruction restarts, so it is atomic against other vCPU threads.
 */
#include "accel/tcg/decode.h"

static unsigned opsize(struct tctx *t)
{
	return (t->i->op & 1) ? t->i->osz : 0;
}

/* A lock prefix is legal only on a memory destination. */
static bool lock_bad(struct tctx *t, bool allowed)
{
	if (t->i->lock && !(allowed && t->i->mem)) {
		gen_exc(t, EXC_UD, 0);
		return true;
	}
	return false;
}

static unsigned rmw_load(struct tctx *t, unsigned size)
{
	unsigned r;

	if (!t->i->mem || !t->i->lock)
		return gen_ld_rm(t, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_LDL, size, r, gen_ea(t), 0, gen_seg(t), 0);
	return r;
}

static void rmw_store(struct tctx *t, unsigned size, unsigned old, unsigned val)
{
	if (!t->i->mem || !t->i->lock) {
		gen_st_rm(t, size, val);
		return;
	}
	tcg_emit(t, U_STC, size, old, gen_ea(t), val, gen_seg(t), 0);
}

/* An immediate of the given byte count sign-extended to the operand size. */
static unsigned simm(struct tctx *t, unsigned size, unsigned bytes)
{
	return gen_imm(t, tcg_sized(tcg_sext(t->i->imm, bytes == 1 ? 0 : bytes == 2 ? 1 : 2), size));
}

static bool tr_alu_op(struct tctx *t, unsigned op, unsigned form)
{
	struct insn *i = t->i;
	unsigned size = (form & 1) ? i->osz : 0, a, b, r;

	switch (form) {
	case 0: case 1:		/* r/m op= reg */
		if (lock_bad(t, op != ALU_CMP))
			return true;
		b = gen_ld_reg(t, i->reg, size);
		a = rmw_load(t, size);
		r = tcg_tmp(t);
		tcg_emit(t, U_ALU, size, r, a, b, op, 0);
		if (op != ALU_CMP)
			rmw_store(t, size, a, r);
		return true;
	case 2: case 3:		/* reg op= r/m */
		if (lock_bad(t, false))
			return true;
		b = gen_ld_rm(t, size);
		a = gen_ld_reg(t, i->reg, size);
		r = tcg_tmp(t);
		tcg_emit(t, U_ALU, size, r, a, b, op, 0);
		if (op != ALU_CMP)
			gen_st_reg(t, i->reg, size, r);
		return true;
	case 4: case 5:		/* al/ax op= imm */
		if (lock_bad(t, false))
			return true;
		b = simm(t, size, size ? (i->osz == 1 ? 2 : 4) : 1);
		a = gen_ld_reg(t, R_RAX, size);
		r = tcg_tmp(t);
		tcg_emit(t, U_ALU, size, r, a, b, op, 0);
		if (op != ALU_CMP)
			gen_st_reg(t, R_RAX, size, r);
		return true;
	}
	return false;
}

static bool tr_grp1(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned op = i->reg & 7, size = opsize(t), a, b, r;

	if (i->op == 0x82 && i->mode == 3)
		return false;
	if (lock_bad(t, op != ALU_CMP))
		return true;
	b = simm(t, size, i->op == 0x81 ? (i->osz == 1 ? 2 : 4) : 1);
	a = rmw_load(t, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_ALU, size, r, a, b, op, 0);
	if (op != ALU_CMP)
		rmw_store(t, size, a, r);
	return true;
}

static void tr_incdec(struct tctx *t, unsigned size, bool dec)
{
	unsigned a, r;

	a = rmw_load(t, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_INCDEC, size, r, a, 0, dec, 0);
	rmw_store(t, size, a, r);
}

static bool tr_shift(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = opsize(t), a, n, r;
	struct uop *u;

	if (lock_bad(t, false))
		return true;
	if (i->op == 0xd0 || i->op == 0xd1)
		n = gen_imm(t, 1);
	else if (i->op == 0xd2 || i->op == 0xd3)
		n = gen_ld_reg(t, R_RCX, 0);
	else
		n = gen_imm(t, i->imm & 0xff);
	a = gen_ld_rm(t, size);
	r = tcg_tmp(t);
	u = tcg_emit(t, U_SHIFT, size, r, a, n, i->reg & 7, 0);
	if (i->op != 0xd2 && i->op != 0xd3 &&
	    ((i->op == 0xd0 || i->op == 0xd1) || (i->imm & (size == 3 ? 0x3f : 0x1f))))
		u->aux |= UF_CNT_NZ;
	gen_st_rm(t, size, r);
	return true;
}

static bool tr_grp3(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = opsize(t), op = i->reg & 7, a, r;

	if (lock_bad(t, op == 2 || op == 3))
		return true;
	switch (op) {
	case 0: case 1:		/* test r/m, imm */
		a = gen_ld_rm(t, size);
		r = tcg_tmp(t);
		tcg_emit(t, U_ALU, size, r, a, simm(t, size, size ? (i->osz == 1 ? 2 : 4) : 1),
			 ALU_AND, 0);
		return true;
	case 2:			/* not */
		a = rmw_load(t, size);
		r = tcg_tmp(t);
		tcg_emit(t, U_NOT, size, r, a, 0, 0, 0);
		rmw_store(t, size, a, r);
		return true;
	case 3:			/* neg */
		a = rmw_load(t, size);
		r = tcg_tmp(t);
		tcg_emit(t, U_NEG, size, r, a, 0, 0, 0);
		rmw_store(t, size, a, r);
		return true;
	case 4: case 5:		/* mul, imul: rDX:rAX = rAX * r/m */
		a = gen_ld_rm(t, size);
		tcg_emit(t, U_MUL, size, 0, a, 0, op == 5, 0);
		return true;
	default:		/* div, idiv */
		a = gen_ld_rm(t, size);
		tcg_emit(t, U_DIV, size, 0, a, 0, op == 7, 0);
		return true;
	}
}

static bool tr_imul(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = i->osz, a, b, r;

	if (lock_bad(t, false))
		return true;
	a = gen_ld_rm(t, size);
	if (i->op == 0x1af)
		b = gen_ld_reg(t, i->reg, size);
	else
		b = simm(t, size, i->op == 0x6b ? 1 : (i->osz == 1 ? 2 : 4));
	r = tcg_tmp(t);
	tcg_emit(t, U_IMUL2, size, r, a, b, 0, 0);
	gen_st_reg(t, i->reg, size, r);
	return true;
}

static bool tr_shd(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = i->osz, a, b, n, r;

	if (lock_bad(t, false))
		return true;
	n = (i->op & 1) ? gen_ld_reg(t, R_RCX, 0) : gen_imm(t, i->imm & 0xff);
	b = gen_ld_reg(t, i->reg, size);
	a = gen_ld_rm(t, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_SHD, size, r, a, b, i->op >= 0x1ac, 0)->aux = n;
	gen_st_rm(t, size, r);
	return true;
}

/* bt/bts/btr/btc: with a register bit offset and a memory operand, the
 * offset also selects the word, signed, relative to the address. */
static bool tr_bt(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = i->osz, kind, n, a, r;

	if (i->op == 0x1ba) {
		if ((i->reg & 7) < 4)
			return false;
		kind = (i->reg & 7) - 4;
		n = gen_imm(t, i->imm & (tcg_bits(size) - 1));
	} else {
		kind = (i->op >> 3) & 3;
		n = gen_ld_reg(t, i->reg, size);
		if (i->mem) {
			unsigned ea = gen_ea(t), off = tcg_tmp(t);

			tcg_emit(t, U_SEXT, size, off, n, 0, 0, 0);
			/* arithmetic shift right by log2(bits), then scale to bytes */
			tcg_emit(t, U_SARI, 3, off, off, 0, 0, 3 + size);
			tcg_emit(t, U_SHLI, 3, off, off, 0, 0, size);
			tcg_emit(t, U_ADD, i->asz, ea, ea, off, 0, 0);
		}
	}
	if (lock_bad(t, kind != 0))
		return true;
	a = kind ? rmw_load(t, size) : gen_ld_rm(t, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_BT, size, r, a, n, kind, 0);
	if (kind)
		rmw_store(t, size, a, r);
	return true;
}

static bool tr_bitscan(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = i->osz, a, r, op, wsize;

	switch (i->op) {
	/* Without BMI1 in CPUID, f3 0f bc is bsf (as on such CPUs). */
	case 0x1bc: op = U_BSF; break;
	case 0x1bd: op = i->rep == 0xf3 ? U_LZCNT : U_BSR; break;
	default:
		if (i->rep != 0xf3)
			return false;
		op = U_POPCNT;
	}
	if (lock_bad(t, false))
		return true;
	a = gen_ld_rm(t, size);
	/* bsf/bsr of zero leave all 64 bits of the destination alone, even
	 * with a 32-bit operand: read and write it whole in that case. */
	wsize = (op == U_BSF || op == U_BSR) && size == 2 ? 3 : size;
	r = gen_ld_reg(t, i->reg, wsize);
	tcg_emit(t, op, size, r, a, 0, 0, 0);
	gen_st_reg(t, i->reg, wsize, r);
	return true;
}

/* cmpxchg r/m, reg: compare with rAX.  A memory destination is always
 * written (with its own value on mismatch), as the SDM describes; a
 * 32-bit register destination, and rAX, keep their upper half when they
 * are not the one written, as Intel cores do. */
static bool tr_cmpxchg(struct tctx *t)
{
	unsigned size = opsize(t), wsize = size == 2 ? 3 : size;
	unsigned acc, old, src, r, eq, val;

	if (lock_bad(t, true))
		return true;
	src = gen_ld_reg(t, t->i->reg, size);
	acc = gen_ld_reg(t, R_RAX, size);
	old = rmw_load(t, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_ALU, size, r, acc, old, ALU_CMP, 0);
	eq = tcg_tmp(t);
	tcg_emit(t, U_GETCC, 0, eq, 0, 0, CC_E, 0);
	val = tcg_tmp(t);
	if (t->i->mem) {
		tcg_emit(t, U_SELECT, size, val, src, old, eq, 0);
		rmw_store(t, size, old, val);
	} else {
		tcg_emit(t, U_SELECT, wsize, val, src, gen_ld_reg(t, t->i->rm, wsize), eq, 0);
		gen_st_reg(t, t->i->rm, wsize, val);
	}
	/* rAX receives the old value only on mismatch. */
	tcg_emit(t, U_SELECT, wsize, val, gen_ld_reg(t, R_RAX, wsize), old, eq, 0);
	gen_st_reg(t, R_RAX, wsize, val);
	return true;
}

static bool tr_xadd(struct tctx *t)
{
	unsigned size = opsize(t), a, b, r;

	if (lock_bad(t, true))
		return true;
	b = gen_ld_reg(t, t->i->reg, size);
	a = rmw_load(t, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_ALU, size, r, a, b, ALU_ADD, 0);
	if (!t->i->mem) {
		/*
		 * SRC <- DEST, then DEST <- SUM (SDM): with one register as
		 * both, the sum is what stays.
		 */
		gen_st_reg(t, t->i->reg, size, a);
		rmw_store(t, size, a, r);
		return true;
	}
	/* Memory first: if the store faults, the register is untouched. */
	rmw_store(t, size, a, r);
	gen_st_reg(t, t->i->reg, size, a);
	return true;
}

bool tcg_tr_alu(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned op = i->op, a, r;

	if (op < 0x40 && (op & 7) < 6)
		return tr_alu_op(t, op >> 3, op & 7);
	if (op >= 0x40 && op < 0x50) {	/* inc/dec reg (not REX in 64-bit) */
		if (lock_bad(t, false))
			return true;
		a = gen_ld_reg(t, op & 7, i->osz);
		r = tcg_tmp(t);
		tcg_emit(t, U_INCDEC, i->osz, r, a, 0, (op >> 3) & 1, 0);
		gen_st_reg(t, op & 7, i->osz, r);
		return true;
	}
	switch (op) {
	case 0x80: case 0x81: case 0x82: case 0x83:
		return tr_grp1(t);
	case 0x84: case 0x85:
		if (lock_bad(t, false))
			return true;
		a = gen_ld_rm(t, opsize(t));
		r = tcg_tmp(t);
		tcg_emit(t, U_ALU, opsize(t), r, a, gen_ld_reg(t, i->reg, opsize(t)), ALU_AND, 0);
		return true;
	case 0xa8: case 0xa9:
		if (lock_bad(t, false))
			return true;
		a = gen_ld_reg(t, R_RAX, opsize(t));
		r = tcg_tmp(t);
		tcg_emit(t, U_ALU, opsize(t), r, a,
			 simm(t, opsize(t), opsize(t) ? (i->osz == 1 ? 2 : 4) : 1), ALU_AND, 0);
		return true;
	case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		return tr_shift(t);
	case 0xf6: case 0xf7:
		return tr_grp3(t);
	case 0xfe: case 0xff:
		if ((i->reg & 7) > 1)
			return false;
		if (lock_bad(t, true))
			return true;
		tr_incdec(t, opsize(t), i->reg & 1);
		return true;
	case 0x69: case 0x6b: case 0x1af:
		return tr_imul(t);
	case 0x1a4: case 0x1a5: case 0x1ac: case 0x1ad:
		return tr_shd(t);
	case 0x1a3: case 0x1ab: case 0x1b3: case 0x1bb: case 0x1ba:
		return tr_bt(t);
	case 0x1bc: case 0x1bd: case 0x1b8:
		return tr_bitscan(t);
	case 0x1b0: case 0x1b1:
		return tr_cmpxchg(t);
	case 0x1c0: case 0x1c1:
		return tr_xadd(t);
	case 0x1c8 ... 0x1cf:
		if (lock_bad(t, false))
			return true;
		a = gen_ld_reg(t, (op & 7) | ((i->rex & 1) << 3), i->osz);
		tcg_emit(t, U_BSWAP, i->osz, a, a, 0, 0, 0);
		gen_st_reg(t, (op & 7) | ((i->rex & 1) << 3), i->osz, a);
		return true;
	}
	return false;
}
