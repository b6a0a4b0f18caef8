/*
 * Decoding of the implemented SSE/SSE2 instructions and x87 control
 * instructions into helper micro-ops (sse.c, sse_fp.c).  The mandatory
 * prefix (none, 66, f3, f2) selects the instruction; the MMX forms (no
 * prefix on the integer opcodes) run on mm0-7 (mmx.c).  x87 opcodes go to
 * tcg_x87 (x87.c), which raises #NM when CR0.EM or CR0.TS is set.
 */
#include "accel/tcg/decode.h"
#include "accel/tcg/sse.h"

enum { P_NONE, P_66, P_F2, P_F3 };

static unsigned mandatory(const struct insn *i)
{
	return i->rep == 0xf3 ? P_F3 : i->rep == 0xf2 ? P_F2 : i->p66 ? P_66 : P_NONE;
}

/* A helper whose source is the r/m operand (register or memory). */
static struct uop *sse_rm(struct tctx *t, tcg_helper fn, unsigned kind, unsigned dst)
{
	struct insn *i = t->i;

	if (i->mem)
		return gen_helper(t, fn, kind, dst, gen_ea(t), SSE_MEM, gen_seg(t), false);
	return gen_helper(t, fn, kind, dst, 0, i->rm, 0, false);
}

static bool tr_x87(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned r = i->reg & 7;

	if (i->op == 0xdb && i->modrm == 0xe3) {
		gen_helper(t, tcg_fpu_ctl, 0, 0, 0, 0, FC_INIT, false);
	} else if (i->op == 0xdb && i->modrm == 0xe2) {
		gen_helper(t, tcg_fpu_ctl, 0, 0, 0, 0, FC_CLEX, false);
	} else if (i->op == 0xdf && i->modrm == 0xe0) {
		gen_helper(t, tcg_fpu_ctl, 0, 0, 0, 0, FC_STSW_AX, false);
	} else if (i->mem && ((i->op == 0xd9 && (r == 5 || r == 7)) || (i->op == 0xdd && r == 7))) {
		unsigned fc = i->op == 0xdd ? FC_STSW : r == 5 ? FC_LDCW : FC_STCW;

		gen_helper(t, tcg_fpu_ctl, 0, 0, gen_ea(t), gen_seg(t), fc, false);
	} else if (i->mem) {
		gen_helper(t, tcg_x87, 0, i->op & 7, gen_ea(t), i->osz, gen_seg(t), false)->aux |=
			i->modrm << 8;
	} else {
		gen_helper(t, tcg_x87, 0, i->op & 7, 0, i->osz, 0, false)->aux |= i->modrm << 8;
	}
	return true;
}

static bool tr_grp15(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned r = i->reg & 7;

	if (!i->mem || mandatory(i) != P_NONE || r > 3)
		return false;
	if (r == 0 || r == 1)
		gen_helper(t, r ? tcg_fxrstor : tcg_fxsave, i->osz == 3 ? 3 : 2, 0, gen_ea(t), 0,
			   gen_seg(t), false);
	else
		gen_helper(t, tcg_sse_mxcsr, 0, 0, gen_ea(t), gen_seg(t), r == 3, false);
	return true;
}

/* 66 0f 71/72/73: shifts of the r/m register by an immediate. */
static bool tr_shift_imm(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned r = i->reg & 7, w = i->op - 0x170, kind;

	if (i->mem || (mandatory(i) != P_66 && mandatory(i) != P_NONE))
		return false;
	if (mandatory(i) == P_NONE) {
		/* MMX: no double-quadword byte shifts */
		if (r == 3 || r == 7)
			return false;
		kind = r == 2 ? SS_SRL : r == 4 ? SS_SRA : SS_SLL;
		if ((r != 2 && r != 4 && r != 6) || (r == 4 && w == 3))
			return false;
		gen_helper(t, tcg_mmx_shift, (kind << 2) | w, i->rm & 7, 0, 0, SSE_IMM, false)->aux |=
			(i->imm & 0xff) << 8;
		return true;
	}
	switch (r) {
	case 2: kind = SS_SRL; break;
	case 4: if (w == 3) return false; kind = SS_SRA; break;
	case 6: kind = SS_SLL; break;
	case 3: if (w != 3) return false; kind = SS_SRLDQ; break;
	case 7: if (w != 3) return false; kind = SS_SLLDQ; break;
	default: return false;
	}
	gen_helper(t, tcg_sse_shift, (kind << 2) | w, i->rm, 0, 0, SSE_IMM, false)->aux |=
		(i->imm & 0xff) << 8;
	return true;
}

/* A helper on mm registers: dst mm (reg & 7), source mm or m64. */
static struct uop *mmx_rm(struct tctx *t, tcg_helper fn, unsigned kind)
{
	struct insn *i = t->i;

	if (i->mem)
		return gen_helper(t, fn, kind, i->reg & 7, gen_ea(t), SSE_MEM, gen_seg(t), false);
	return gen_helper(t, fn, kind, i->reg & 7, 0, i->rm & 7, 0, false);
}

/* The MMX forms (no prefix) of 0f 60-76 and d1-ff; e: the tcg_sse_int op. */
static bool tr_mmx_int(struct tctx *t, unsigned e)
{
	struct insn *i = t->i;
	unsigned b = i->op & 0xff;

	if (e) {
		mmx_rm(t, tcg_mmx_int, e & 0x7f);
		return true;
	}
	switch (b) {
	case 0x60: case 0x61: case 0x62:
		mmx_rm(t, tcg_mmx_shuf, SU_PUNPCKL | ((b - 0x60) << 4));
		return true;
	case 0x68: case 0x69: case 0x6a:
		mmx_rm(t, tcg_mmx_shuf, SU_PUNPCKH | ((b - 0x68) << 4));
		return true;
	case 0x63: mmx_rm(t, tcg_mmx_shuf, SU_PACKSSWB); return true;
	case 0x67: mmx_rm(t, tcg_mmx_shuf, SU_PACKUSWB); return true;
	case 0x6b: mmx_rm(t, tcg_mmx_shuf, SU_PACKSSDW); return true;
	case 0xd1: case 0xd2: case 0xd3:
		mmx_rm(t, tcg_mmx_shift, (SS_SRL << 2) | (b - 0xd0));
		return true;
	case 0xe1: case 0xe2:
		mmx_rm(t, tcg_mmx_shift, (SS_SRA << 2) | (b - 0xe0));
		return true;
	case 0xf1: case 0xf2: case 0xf3:
		mmx_rm(t, tcg_mmx_shift, (SS_SLL << 2) | (b - 0xf0));
		return true;
	case 0xf5: mmx_rm(t, tcg_mmx_special, SP_PMADDWD); return true;
	case 0xf4: mmx_rm(t, tcg_mmx_special, SP_PMULUDQ); return true;
	case 0xf6: mmx_rm(t, tcg_mmx_special, SP_PSADBW); return true;
	}
	return false;
}

/* 66 0f d0-ff and 60-76: integer SIMD through tcg_sse_int / shuf / shift. */
static bool tr_int(struct tctx *t)
{
	static const uint8_t ops[256] = {
		[0x74] = SI(SK_CMPEQ, 0, 0) | 0x80, [0x75] = SI(SK_CMPEQ, 1, 0) | 0x80,
		[0x76] = SI(SK_CMPEQ, 2, 0) | 0x80,
		[0x64] = SI(SK_CMPGT, 0, 1) | 0x80, [0x65] = SI(SK_CMPGT, 1, 1) | 0x80,
		[0x66] = SI(SK_CMPGT, 2, 1) | 0x80,
		[0xd4] = SI(SK_ADD, 3, 0) | 0x80, [0xd5] = SI(SK_MULLO, 1, 1) | 0x80,
		[0xd8] = SI(SK_SUBS, 0, 0) | 0x80, [0xd9] = SI(SK_SUBS, 1, 0) | 0x80,
		[0xda] = SI(SK_MIN, 0, 0) | 0x80, [0xdb] = SI(SK_AND, 3, 0) | 0x80,
		[0xdc] = SI(SK_ADDS, 0, 0) | 0x80, [0xdd] = SI(SK_ADDS, 1, 0) | 0x80,
		[0xde] = SI(SK_MAX, 0, 0) | 0x80, [0xdf] = SI(SK_ANDN, 3, 0) | 0x80,
		[0xe0] = SI(SK_AVG, 0, 0) | 0x80, [0xe3] = SI(SK_AVG, 1, 0) | 0x80,
		[0xe4] = SI(SK_MULHI, 1, 0) | 0x80, [0xe5] = SI(SK_MULHI, 1, 1) | 0x80,
		[0xe8] = SI(SK_SUBS, 0, 1) | 0x80, [0xe9] = SI(SK_SUBS, 1, 1) | 0x80,
		[0xea] = SI(SK_MIN, 1, 1) | 0x80, [0xeb] = SI(SK_OR, 3, 0) | 0x80,
		[0xec] = SI(SK_ADDS, 0, 1) | 0x80, [0xed] = SI(SK_ADDS, 1, 1) | 0x80,
		[0xee] = SI(SK_MAX, 1, 1) | 0x80, [0xef] = SI(SK_XOR, 3, 0) | 0x80,
		[0xf8] = SI(SK_SUB, 0, 0) | 0x80, [0xf9] = SI(SK_SUB, 1, 0) | 0x80,
		[0xfa] = SI(SK_SUB, 2, 0) | 0x80, [0xfb] = SI(SK_SUB, 3, 0) | 0x80,
		[0xfc] = SI(SK_ADD, 0, 0) | 0x80, [0xfd] = SI(SK_ADD, 1, 0) | 0x80,
		[0xfe] = SI(SK_ADD, 2, 0) | 0x80,
	};
	struct insn *i = t->i;
	unsigned b = i->op & 0xff, e = ops[b];

	if (mandatory(i) == P_NONE)
		return tr_mmx_int(t, e);
	if (mandatory(i) != P_66)
		return false;
	if (e) {
		sse_rm(t, tcg_sse_int, e & 0x7f, i->reg);
		return true;
	}
	switch (b) {
	case 0xf5: sse_rm(t, tcg_sse_special, SP_PMADDWD, i->reg); return true;
	case 0xf4: sse_rm(t, tcg_sse_special, SP_PMULUDQ, i->reg); return true;
	case 0xf6: sse_rm(t, tcg_sse_special, SP_PSADBW, i->reg); return true;
	case 0xf7:		/* maskmovdqu: to DS:rDI (override allowed) */
		if (i->mem)
			return false;
		gen_helper(t, tcg_sse_maskmov, i->asz, i->reg, gen_ld_reg(t, R_RDI, i->asz), i->rm,
			   i->seg != S_NONE ? i->seg : S_DS, false);
		return true;
	}
	switch (b) {
	case 0x60: case 0x61: case 0x62: case 0x6c:
		sse_rm(t, tcg_sse_shuf, SU_PUNPCKL | ((b == 0x6c ? 3 : b - 0x60) << 4), i->reg);
		return true;
	case 0x68: case 0x69: case 0x6a: case 0x6d:
		sse_rm(t, tcg_sse_shuf, SU_PUNPCKH | ((b == 0x6d ? 3 : b - 0x68) << 4), i->reg);
		return true;
	case 0x63: sse_rm(t, tcg_sse_shuf, SU_PACKSSWB, i->reg); return true;
	case 0x67: sse_rm(t, tcg_sse_shuf, SU_PACKUSWB, i->reg); return true;
	case 0x6b: sse_rm(t, tcg_sse_shuf, SU_PACKSSDW, i->reg); return true;
	case 0xd1: case 0xd2: case 0xd3:
		sse_rm(t, tcg_sse_shift, (SS_SRL << 2) | (b - 0xd0), i->reg);
		return true;
	case 0xe1: case 0xe2:
		sse_rm(t, tcg_sse_shift, (SS_SRA << 2) | (b - 0xe0), i->reg);
		return true;
	case 0xf1: case 0xf2: case 0xf3:
		sse_rm(t, tcg_sse_shift, (SS_SLL << 2) | (b - 0xf0), i->reg);
		return true;
	}
	return false;
}

static bool tr_mmx_mov(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned v, w = i->osz == 3 ? 3 : 2;

	switch (i->op) {
	case 0x16e:		/* movd/movq mm, r/m */
		v = gen_ld_rm(t, w);
		gen_helper(t, tcg_mmx_movd, w, i->reg & 7, v, 0, 0, false);
		return true;
	case 0x17e:		/* movd/movq r/m, mm */
		v = tcg_tmp(t);
		gen_helper(t, tcg_mmx_movd, w, i->reg & 7, v, 0, 1, false);
		gen_st_rm(t, w, v);
		return true;
	case 0x16f:
		mmx_rm(t, tcg_mmx_mov, 0);
		return true;
	case 0x17f:
		mmx_rm(t, tcg_mmx_mov, 1);
		return true;
	case 0x1e7:
		if (!i->mem)
			return false;
		mmx_rm(t, tcg_mmx_mov, 4);
		return true;
	case 0x1d7:
		if (i->mem)
			return false;
		v = tcg_tmp(t);
		gen_helper(t, tcg_mmx_movmsk, 0, 0, v, i->rm & 7, 0, false);
		gen_st_reg(t, i->reg, 2, v);
		return true;
	case 0x170:		/* pshufw */
		mmx_rm(t, tcg_mmx_shuf, SU_PSHUFLW)->aux |= (i->imm & 0xff) << 8;
		return true;
	case 0x177:
		gen_helper(t, tcg_mmx_emms, 0, 0, 0, 0, 0, false);
		return true;
	}
	return false;
}

static bool tr_mov(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned p = mandatory(i), v;

	if (p == P_NONE && tr_mmx_mov(t))
		return true;
	switch (i->op) {
	case 0x110: case 0x111: {
		static const uint8_t k[2][4] = {
			{ SM_LOAD_U, SM_LOAD_U, SM_LOAD_SD, SM_LOAD_SS },
			{ SM_STORE_U, SM_STORE_U, SM_STORE_SD, SM_STORE_SS },
		};

		sse_rm(t, tcg_sse_mov, k[i->op & 1][p], i->reg);
		return true;
	}
	case 0x128: case 0x129:
		if (p > P_66)
			return false;
		sse_rm(t, tcg_sse_mov, i->op & 1 ? SM_STORE_A : SM_LOAD_A, i->reg);
		return true;
	case 0x112: case 0x116:
		if (p == P_F3 || (p == P_F2 && i->op == 0x112)) {	/* SSE3 dups */
			sse_rm(t, tcg_sse3_dup, i->op == 0x116 ? SD_MOVSHDUP :
			       p == P_F3 ? SD_MOVSLDUP : SD_MOVDDUP, i->reg);
			return true;
		}
		if (p > P_66 || (p == P_66 && !i->mem))
			return false;
		sse_rm(t, tcg_sse_mov, i->op == 0x112 ? SM_LOAD_LO : SM_LOAD_HI, i->reg);
		return true;
	case 0x113: case 0x117:
		if (p > P_66 || !i->mem)
			return false;
		sse_rm(t, tcg_sse_mov, i->op == 0x113 ? SM_STORE_LO : SM_STORE_HI, i->reg);
		return true;
	case 0x12b: case 0x1e7:
		if (!i->mem || (i->op == 0x12b ? p > P_66 : p != P_66))
			return false;
		sse_rm(t, tcg_sse_mov, SM_STORE_A, i->reg);
		return true;
	case 0x1f0:		/* lddqu (SSE3) */
		if (p != P_F2 || !i->mem)
			return false;
		sse_rm(t, tcg_sse_mov, SM_LOAD_U, i->reg);
		return true;
	case 0x16f: case 0x17f:
		if (p != P_66 && p != P_F3)
			return false;
		sse_rm(t, tcg_sse_mov, (i->op == 0x17f ? SM_STORE_U : SM_LOAD_U) + (p == P_66), i->reg);
		return true;
	case 0x16e:		/* movd/movq xmm, r/m */
		if (p != P_66)
			return false;
		v = gen_ld_rm(t, i->osz == 3 ? 3 : 2);
		gen_helper(t, tcg_sse_movd, i->osz == 3 ? 3 : 2, i->reg, v, 0, 0, false);
		return true;
	case 0x17e:
		if (p == P_F3) {
			sse_rm(t, tcg_sse_mov, SM_LOAD_Q, i->reg);
			return true;
		}
		if (p != P_66)
			return false;
		v = tcg_tmp(t);
		gen_helper(t, tcg_sse_movd, i->osz == 3 ? 3 : 2, i->reg, v, 0, 1, false);
		gen_st_rm(t, i->osz == 3 ? 3 : 2, v);
		return true;
	case 0x1d6:
		if (i->mem ? p != P_66 : p == P_NONE)
			return false;
		if (p == P_F3)		/* movq2dq xmm, mm */
			gen_helper(t, tcg_mmx_mov, 2, i->reg, 0, i->rm & 7, 0, false);
		else if (p == P_F2)	/* movdq2q mm, xmm */
			gen_helper(t, tcg_mmx_mov, 3, i->reg & 7, 0, i->rm, 0, false);
		else
			sse_rm(t, tcg_sse_mov, SM_STORE_Q, i->reg);
		return true;
	case 0x1c5:		/* pextrw r32, mm/xmm, imm8 */
		if (i->mem || p > P_66)
			return false;
		v = tcg_tmp(t);
		if (p == P_66) {
			gen_helper(t, tcg_sse_pextrw, 0, 0, v, i->rm, 0, false)->aux |=
				(i->imm & 0xff) << 8;
		} else {
			gen_helper(t, tcg_mmx_pextrw, 0, 0, v, i->rm & 7, 0, false)->aux |=
				(i->imm & 0xff) << 8;
		}
		gen_st_reg(t, i->reg, 2, v);
		return true;
	case 0x1c4:		/* pinsrw mm/xmm, r32/m16, imm8 */
		if (p > P_66)
			return false;
		v = gen_ld_rm(t, 1);
		gen_helper(t, p == P_66 ? tcg_sse_pinsrw : tcg_mmx_pinsrw, 0,
			   p == P_66 ? i->reg : (i->reg & 7u), v, 0, 0, false)->aux |= (i->imm & 0xff) << 8;
		return true;
	case 0x1f7:		/* maskmovq mm, mm */
		if (i->mem || p != P_NONE)
			return false;
		gen_helper(t, tcg_mmx_maskmov, i->asz, i->reg & 7, gen_ld_reg(t, R_RDI, i->asz),
			   i->rm & 7, i->seg != S_NONE ? i->seg : S_DS, false);
		return true;
	case 0x150: case 0x1d7:	/* movmskps/pd, pmovmskb */
		if (i->mem || (i->op == 0x150 ? p > P_66 : p != P_66))
			return false;
		v = tcg_tmp(t);
		gen_helper(t, tcg_sse_movmsk, i->op == 0x1d7 ? 0 : p == P_66 ? 3 : 2, 0, v, i->rm,
			   0, false);
		gen_st_reg(t, i->reg, 2, v);
		return true;
	}
	return false;
}

static const uint8_t form_of[4] = { [P_NONE] = FORM_PS, [P_66] = FORM_PD,
				     [P_F3] = FORM_SS, [P_F2] = FORM_SD };

static bool tr_fp(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned p = mandatory(i), op, w = i->osz == 3 ? 0x20 : 0, v;

	switch (i->op) {
	case 0x151: op = FO_SQRT; break;
	case 0x152: op = FO_RSQRT; break;
	case 0x153: op = FO_RCP; break;
	case 0x158: op = FO_ADD; break;
	case 0x159: op = FO_MUL; break;
	case 0x15c: op = FO_SUB; break;
	case 0x15d: op = FO_MIN; break;
	case 0x15e: op = FO_DIV; break;
	case 0x15f: op = FO_MAX; break;
	case 0x1c2: op = FO_CMP; break;
	case 0x17c: case 0x17d: case 0x1d0:	/* SSE3: hadd, hsub, addsub */
		if (p != P_66 && p != P_F2)
			return false;
		sse_rm(t, tcg_sse3_fp, (i->op == 0x17c ? S3_HADD : i->op == 0x17d ? S3_HSUB : S3_ADDSUB) |
		       ((p == P_66) << 4), i->reg);
		return true;
	case 0x12e: case 0x12f:
		if (p > P_66)
			return false;
		/* aux bit 8: comis (signals on QNaN) rather than ucomis */
		sse_rm(t, tcg_sse_comis, p == P_66 ? 3 : 2, i->reg)->aux |= (i->op & 1) << 8;
		return true;
	case 0x12a:
		if (p == P_NONE || p == P_66) {	/* cvtpi2ps / cvtpi2pd xmm, mm/m64 */
			if (i->mem)
				gen_helper(t, tcg_sse_cvt, p ? CV_PI2PD : CV_PI2PS, i->reg, gen_ea(t),
					   SSE_MEM, gen_seg(t), false);
			else
				gen_helper(t, tcg_sse_cvt, p ? CV_PI2PD : CV_PI2PS, i->reg, 0,
					   i->rm & 7, 0, false);
			return true;
		}
		v = gen_ld_rm(t, w ? 3 : 2);
		gen_helper(t, tcg_sse_cvt, (p == P_F3 ? CV_SI2SS : CV_SI2SD) | w, i->reg, v, 0, 0,
			   false);
		return true;
	case 0x12c: case 0x12d: {
		unsigned k;

		if (p == P_NONE || p == P_66) {	/* cvt(t)ps2pi / cvt(t)pd2pi mm, xmm/m */
			k = p == P_NONE ? (i->op & 1 ? CV_PS2PI : CV_TPS2PI) :
					  (i->op & 1 ? CV_PD2PI : CV_TPD2PI);
			sse_rm(t, tcg_sse_cvt, k, i->reg & 7);
			return true;
		}
		if (p != P_F3 && p != P_F2)
			return false;
		k = p == P_F3 ? (i->op & 1 ? CV_SS2SI : CV_TSS2SI) : (i->op & 1 ? CV_SD2SI : CV_TSD2SI);
		if (i->mem) {
			v = gen_ea(t);
			gen_helper(t, tcg_sse_cvt, k | w, 0, v, SSE_MEM, gen_seg(t), false);
		} else {
			v = tcg_tmp(t);
			gen_helper(t, tcg_sse_cvt, k | w, 0, v, i->rm, 0, false);
		}
		gen_st_reg(t, i->reg, w ? 3 : 2, v);
		return true;
	}
	case 0x15a: {
		static const uint8_t k[4] = { [P_NONE] = CV_PS2PD, [P_66] = CV_PD2PS,
					      [P_F3] = CV_SS2SD, [P_F2] = CV_SD2SS };

		sse_rm(t, tcg_sse_cvt, k[p], i->reg);
		return true;
	}
	case 0x15b:
		if (p == P_F2)
			return false;
		sse_rm(t, tcg_sse_cvt, p == P_NONE ? CV_DQ2PS : p == P_66 ? CV_PS2DQ : CV_TPS2DQ,
		       i->reg);
		return true;
	case 0x1e6:
		if (p == P_NONE)
			return false;
		sse_rm(t, tcg_sse_cvt, p == P_F3 ? CV_DQ2PD : p == P_F2 ? CV_PD2DQ : CV_TPD2DQ,
		       i->reg);
		return true;
	default:
		return false;
	}
	if ((op == FO_RCP || op == FO_RSQRT) && (p == P_66 || p == P_F2))
		return false;
	sse_rm(t, tcg_sse_fp, op | (form_of[p] << 4), i->reg)->aux |= (i->imm & 0xff) << 8;
	return true;
}

/* SSSE3: 0f 38 00-0b, 1c-1e and 0f 3a 0f, on mm (no prefix) or xmm (66h). */
static bool tr_ssse3(struct tctx *t)
{
	static const int8_t kinds[32] = {
		[0x00] = S3X_PSHUFB, [0x01] = S3X_PHADDW, [0x02] = S3X_PHADDD,
		[0x03] = S3X_PHADDSW, [0x04] = S3X_PMADDUBSW, [0x05] = S3X_PHSUBW,
		[0x06] = S3X_PHSUBD, [0x07] = S3X_PHSUBSW, [0x08] = S3X_PSIGNB,
		[0x09] = S3X_PSIGNW, [0x0a] = S3X_PSIGND, [0x0b] = S3X_PMULHRSW,
		[0x1c] = S3X_PABSB, [0x1d] = S3X_PABSW, [0x1e] = S3X_PABSD,
	};
	struct insn *i = t->i;
	unsigned p = mandatory(i), kind, b = i->op & 0xff;
	struct uop *u;

	if (i->op == 0x30f)
		kind = S3X_PALIGNR;
	else if ((i->op >> 8) == 2 && b < 32 && (b <= 0x0b || (b >= 0x1c && b <= 0x1e)))
		kind = kinds[b];
	else
		return false;
	if (p == P_66)
		u = sse_rm(t, tcg_ssse3, kind, i->reg);
	else if (p == P_NONE)
		u = mmx_rm(t, tcg_ssse3, kind);
	else
		return false;
	u->aux |= (p == P_NONE ? AUX_MMX : 0) | (kind == S3X_PALIGNR ? (i->imm & 0xff) << 8 : 0);
	return true;
}

/* SSE4.1 (and pcmpgtq, crc32 of SSE4.2) in the 0f 38 and 0f 3a maps. */
static bool tr_sse41(struct tctx *t)
{
	static const uint8_t int_ops[256] = {
		[0x29] = SI(SK_CMPEQ, 3, 0) | 0x80, [0x37] = SI(SK_CMPGT, 3, 1) | 0x80,
		[0x38] = SI(SK_MIN, 0, 1) | 0x80, [0x39] = SI(SK_MIN, 2, 1) | 0x80,
		[0x3a] = SI(SK_MIN, 1, 0) | 0x80, [0x3b] = SI(SK_MIN, 2, 0) | 0x80,
		[0x3c] = SI(SK_MAX, 0, 1) | 0x80, [0x3d] = SI(SK_MAX, 2, 1) | 0x80,
		[0x3e] = SI(SK_MAX, 1, 0) | 0x80, [0x3f] = SI(SK_MAX, 2, 0) | 0x80,
		[0x40] = SI(SK_MULLO, 2, 1) | 0x80,
	};
	struct insn *i = t->i;
	unsigned p = mandatory(i), b = i->op & 0xff, imm = (i->imm & 0xff) << 8, v, w;

	if (i->op >> 8 == 2 && p == P_F2 && (b == 0xf0 || b == 0xf1)) {	/* crc32 */
		unsigned size = b == 0xf0 ? 0 : i->osz;

		v = gen_ld_reg(t, i->reg, 2);
		gen_helper(t, tcg_crc32, size, v, gen_ld_rm(t, size), 0, 0, false);
		gen_st_reg(t, i->reg, i->osz == 3 ? 3 : 2, v);
		return true;
	}
	if (p != P_66)
		return false;
	if (i->op >> 8 == 2) {
		if (int_ops[b]) {
			sse_rm(t, tcg_sse_int, int_ops[b] & 0x7f, i->reg);
			return true;
		}
		switch (b) {
		case 0x10: sse_rm(t, tcg_sse41, S41_PBLENDVB, i->reg); return true;
		case 0x14: sse_rm(t, tcg_sse41, S41_BLENDVPS, i->reg); return true;
		case 0x15: sse_rm(t, tcg_sse41, S41_BLENDVPD, i->reg); return true;
		case 0x17: sse_rm(t, tcg_sse41, S41_PTEST, i->reg); return true;
		case 0x20 ... 0x25: case 0x30 ... 0x35:
			sse_rm(t, tcg_sse41, S41_PMOVSXBW + 2 * (b & 7) + (b >= 0x30), i->reg);
			return true;
		case 0x28: sse_rm(t, tcg_sse41, S41_PMULDQ, i->reg); return true;
		case 0x2a:
			if (!i->mem)
				return false;
			sse_rm(t, tcg_sse41, S41_MOVNTDQA, i->reg);
			return true;
		case 0x2b: sse_rm(t, tcg_sse41, S41_PACKUSDW, i->reg); return true;
		case 0x41: sse_rm(t, tcg_sse41, S41_PHMINPOSUW, i->reg); return true;
		}
		return false;
	}
	switch (b) {
	case 0x08: case 0x09: case 0x0a: case 0x0b: {
		static const uint8_t form[4] = { FORM_PS, FORM_PD, FORM_SS, FORM_SD };

		sse_rm(t, tcg_sse41_round, form[b - 8], i->reg)->aux |= imm;
		return true;
	}
	case 0x0c: sse_rm(t, tcg_sse41, S41_BLENDPS, i->reg)->aux |= imm; return true;
	case 0x0d: sse_rm(t, tcg_sse41, S41_BLENDPD, i->reg)->aux |= imm; return true;
	case 0x0e: sse_rm(t, tcg_sse41, S41_PBLENDW, i->reg)->aux |= imm; return true;
	case 0x42: sse_rm(t, tcg_sse41, S41_MPSADBW, i->reg)->aux |= imm; return true;
	case 0x40: case 0x41:
		sse_rm(t, tcg_sse41_dp, b - 0x40, i->reg)->aux |= imm;
		return true;
	case 0x60: case 0x61: case 0x62: case 0x63:	/* pcmpestrm/i, pcmpistrm/i */
		/* size bit 0: index; bit 1: explicit lengths; AUX_MMX: REX.W lengths */
		sse_rm(t, tcg_pcmpstr, (b & 1) | (b < 0x62 ? 2 : 0), i->reg)->aux |=
			imm | (i->osz == 3 ? AUX_MMX : 0);
		return true;
	case 0x14: case 0x15: case 0x16: case 0x17:	/* pextrb/w/d/q, extractps */
		w = b == 0x14 ? 0 : b == 0x15 ? 1 : (b == 0x16 && i->osz == 3) ? 3 : 2;
		v = tcg_tmp(t);
		gen_helper(t, tcg_sse41_extract, w, 0, v, i->reg, 0, false)->aux |= imm;
		if (i->mem)
			gen_st_rm(t, w, v);
		else
			gen_st_reg(t, i->rm, w == 3 ? 3 : 2, v);
		return true;
	case 0x20: case 0x22:				/* pinsrb, pinsrd/q */
		w = b == 0x20 ? 0 : i->osz == 3 ? 3 : 2;
		v = gen_ld_rm(t, i->mem ? w : (w == 3 ? 3 : 2));
		gen_helper(t, tcg_sse41_insert, w, i->reg, v, 0, 0, false)->aux |= imm;
		return true;
	case 0x21:					/* insertps */
		if (i->mem) {
			v = gen_ld_rm(t, 2);
		} else {
			v = tcg_tmp(t);
			gen_helper(t, tcg_sse41_insertps_src, 0, 0, v, i->rm, 0, false)->aux |= imm;
		}
		gen_helper(t, tcg_sse41_insert, 2, i->reg, v, 0, 1, false)->aux |= imm;
		return true;
	}
	return false;
}

bool tcg_tr_sse(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned p = mandatory(i);

	if (i->op >= 0x200)
		return tr_ssse3(t) || tr_sse41(t);

	if (i->op >= 0xd8 && i->op <= 0xdf)
		return tr_x87(t);
	if (i->op == 0x1ae)
		return tr_grp15(t);
	if (tr_mov(t) || tr_fp(t))
		return true;
	switch (i->op) {
	case 0x114: case 0x115:
		if (p > P_66)
			return false;
		sse_rm(t, tcg_sse_shuf, (i->op == 0x114 ? SU_PUNPCKL : SU_PUNPCKH) |
		       ((p == P_66 ? 3 : 2) << 4), i->reg);
		return true;
	case 0x154: case 0x155: case 0x156: case 0x157: {
		static const uint8_t k[4] = { SK_AND, SK_ANDN, SK_OR, SK_XOR };

		if (p > P_66)
			return false;
		sse_rm(t, tcg_sse_int, SI(k[i->op - 0x154], 3, 0), i->reg);
		return true;
	}
	case 0x170:
		if (p == P_NONE)
			return false;
		sse_rm(t, tcg_sse_shuf, p == P_66 ? SU_PSHUFD : p == P_F2 ? SU_PSHUFLW : SU_PSHUFHW,
		       i->reg)->aux |= (i->imm & 0xff) << 8;
		return true;
	case 0x1c6:
		if (p > P_66)
			return false;
		sse_rm(t, tcg_sse_shuf, p == P_66 ? SU_SHUFPD : SU_SHUFPS, i->reg)->aux |=
			(i->imm & 0xff) << 8;
		return true;
	case 0x171: case 0x172: case 0x173:
		return tr_shift_imm(t);
	}
	if ((i->op >= 0x160 && i->op <= 0x16d) || (i->op >= 0x174 && i->op <= 0x176) ||
	    (i->op >= 0x1d1 && i->op <= 0x1ff))
		return tr_int(t);
	return false;
}
