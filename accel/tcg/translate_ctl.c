/*
 * Control transfer: near jumps, calls and returns (direct, indirect,
 * conditional), loop/jcxz, far jumps, calls and returns, software
 * interrupts and iret.  Every one of them ends the translation block.
 */
#include "accel/tcg/decode.h"

/* Near branches are 64-bit in long mode whatever the prefixes say. */
static unsigned branch_size(struct tctx *t)
{
	return t->i->mode == 3 ? 3 : t->i->osz;
}

static uint64_t rel_target(struct tctx *t, int64_t rel)
{
	return tcg_sized(next_eip(t) + rel, branch_size(t));
}

static void helper_far(struct tcg_cpu *c, const struct uop *u);
static void helper_retf(struct tcg_cpu *c, const struct uop *u);

static void helper_int(struct tcg_cpu *c, const struct uop *u)
{
	/* x: vector; b: 1 for int3/into (breakpoint-like), 2 for int1 */
	tcg_do_interrupt(c, u->x, false, 0, u->b == 2 ? INT_EXC : INT_SOFT, c->insn_next);
	c->end_tb = true;
}

static void helper_into(struct tcg_cpu *c, const struct uop *u)
{
	if (tcg_cond(c, CC_O)) {
		tcg_do_interrupt(c, EXC_OF, false, 0, INT_SOFT, c->insn_next);
		c->end_tb = true;
	}
}

static void helper_iret(struct tcg_cpu *c, const struct uop *u)
{
	tcg_iret(c, u->size);
	c->end_tb = true;
}

static void gen_jmp_temp(struct tctx *t, unsigned v)
{
	tcg_emit(t, U_ZEXT, branch_size(t), v, v, 0, 0, 0);
	tcg_emit(t, U_JMP, 0, 0, v, 0, 0, 0);
	t->end = true;
}

static bool tr_near(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned bs = branch_size(t), v, cnt, z;
	int64_t rel8 = (int8_t)i->imm;
	int64_t relz = i->osz == 1 && i->mode != 3 ? (int16_t)i->imm : (int32_t)i->imm;

	switch (i->op) {
	case 0x70 ... 0x7f:
		/* The block goes on with the fall-through path: a loop
		 * whose exit test is at the top is then one block. */
		tcg_emit(t, U_JCC, 0, 0, 0, 0, i->op & 15, rel_target(t, rel8));
		return true;
	case 0x180 ... 0x18f:
		tcg_emit(t, U_JCC, 0, 0, 0, 0, i->op & 15, rel_target(t, relz));
		return true;
	case 0xeb:
		tcg_emit(t, U_JMPI, 0, 0, 0, 0, 0, rel_target(t, rel8));
		t->end = true;
		return true;
	case 0xe9:
		tcg_emit(t, U_JMPI, 0, 0, 0, 0, 0, rel_target(t, relz));
		t->end = true;
		return true;
	case 0xe8:
		gen_push(t, bs, gen_imm(t, next_eip(t)));
		tcg_emit(t, U_JMPI, 0, 0, 0, 0, 0, rel_target(t, relz));
		t->end = true;
		return true;
	case 0xc3: case 0xc2:
		v = gen_pop(t, bs);
		if (i->op == 0xc2) {
			unsigned sp = gen_ld_reg(t, R_RSP, 3);

			tcg_emit(t, U_ADDI, stack_size(t), sp, sp, 0, 0, i->imm);
			tcg_emit(t, U_STR, stack_size(t), R_RSP, sp, 0, 0, 0);
		}
		gen_jmp_temp(t, v);
		return true;
	case 0xe0: case 0xe1: case 0xe2:	/* loopne, loope, loop */
		cnt = gen_ld_reg(t, R_RCX, i->asz);
		tcg_emit(t, U_ADDI, i->asz, cnt, cnt, 0, 0, -1ull);
		tcg_emit(t, U_STR, i->asz, R_RCX, cnt, 0, 0, 0);
		if (i->op != 0xe2) {
			z = tcg_tmp(t);
			tcg_emit(t, U_GETCC, 0, z, 0, 0, i->op == 0xe1 ? CC_E : CC_NE, 0);
			tcg_emit(t, U_SELECT, 3, cnt, cnt, gen_imm(t, 0), z, 0);
		}
		tcg_emit(t, U_JNZ, 3, 0, cnt, 0, 0, rel_target(t, rel8));
		tcg_emit(t, U_JMPI, 0, 0, 0, 0, 0, next_eip(t));
		t->end = true;
		return true;
	case 0xe3:
		cnt = gen_ld_reg(t, R_RCX, i->asz);
		tcg_emit(t, U_JZ, i->asz, 0, cnt, 0, 0, rel_target(t, rel8));
		tcg_emit(t, U_JMPI, 0, 0, 0, 0, 0, next_eip(t));
		t->end = true;
		return true;
	}
	return false;
}

/* Far pointer in memory for call/jmp m16:16/32/64. */
static void gen_far_mem(struct tctx *t, unsigned kind)
{
	struct insn *i = t->i;
	unsigned off = tcg_tmp(t), sel = tcg_tmp(t), a2 = tcg_tmp(t), ea = gen_ea(t);

	tcg_emit(t, U_LD, i->osz, off, ea, 0, gen_seg(t), 0);
	tcg_emit(t, U_ADDI, i->asz, a2, ea, 0, 0, 1ull << i->osz);
	tcg_emit(t, U_LD, 1, sel, a2, 0, gen_seg(t), 0);
	gen_helper(t, helper_far, i->osz, 0, sel, off, kind, true);
}

static bool tr_grp5(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned bs = branch_size(t), v;

	switch (i->reg & 7) {
	case 2:			/* call r/m */
		v = gen_ld_rm(t, bs);
		gen_push(t, bs, gen_imm(t, next_eip(t)));
		gen_jmp_temp(t, v);
		return true;
	case 4:			/* jmp r/m */
		gen_jmp_temp(t, gen_ld_rm(t, bs));
		return true;
	case 3: case 5:		/* call/jmp far m */
		if (!i->mem)
			return false;
		gen_far_mem(t, (i->reg & 7) == 3);
		return true;
	case 6:			/* push r/m */
		v = gen_ld_rm(t, i->mode == 3 ? (i->p66 ? 1 : 3) : i->osz);
		gen_push(t, i->mode == 3 ? (i->p66 ? 1 : 3) : i->osz, v);
		return true;
	}
	return false;
}

bool tcg_tr_ctl(struct tctx *t)
{
	struct insn *i = t->i;

	if (tr_near(t))
		return true;
	switch (i->op) {
	case 0xff:
		return tr_grp5(t);
	case 0x9a: case 0xea:
		if (i->mode == 3)
			return false;
		gen_helper(t, helper_far, i->osz, 0, gen_imm(t, i->imm2), gen_imm(t, i->imm),
			   i->op == 0x9a, true);
		return true;
	case 0xca: case 0xcb:
		gen_helper(t, helper_retf, i->osz, 0, gen_imm(t, i->op == 0xca ? i->imm : 0),
			   0, 0, true);
		return true;
	case 0xcc:
		gen_helper(t, helper_int, 0, 0, 0, 1, EXC_BP, true);
		return true;
	case 0xf1:
		gen_helper(t, helper_int, 0, 0, 0, 2, EXC_DB, true);
		return true;
	case 0xcd:
		gen_helper(t, helper_int, 0, 0, 0, 0, i->imm & 0xff, true);
		return true;
	case 0xce:
		if (i->mode == 3)
			return false;
		gen_helper(t, helper_into, 0, 0, 0, 0, 0, true);
		return true;
	case 0xcf:
		gen_helper(t, helper_iret, i->osz, 0, 0, 0, 0, true);
		return true;
	}
	return false;
}

/* Far jmp/call through a selector: x = 1 for call.  The new CS comes
 * from tcg_load_seg's checks; call gates and task switches are not
 * implemented and raise #GP. */
static void helper_far(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t sel = c->t[u->a];
	uint64_t off = c->t[u->b], old_cs = c->seg[S_CS].selector, next = c->insn_next;
	unsigned size = u->size, bytes = 1u << size;

	if (u->x) {
		unsigned ss = tcg_code64(c) ? 3 : c->seg[S_SS].db ? 2 : 1;
		uint64_t mask = ss == 3 ? ~0ull : ss == 2 ? 0xffffffffull : 0xffff;
		uint64_t sp = c->gpr[R_RSP];

		/* The stores can fault: do them before loading CS. */
		tcg_store(c, S_SS, (sp - bytes) & mask, bytes, old_cs);
		tcg_store(c, S_SS, (sp - 2 * bytes) & mask, bytes, next);
		sp = (sp - 2 * bytes) & mask;
		tcg_load_cs(c, sel, c->cpl);
		c->gpr[R_RSP] = ss == 3 ? sp : ss == 2 ? (uint32_t)sp :
				(c->gpr[R_RSP] & ~0xffffull) | sp;
	} else {
		tcg_load_cs(c, sel, c->cpl);
	}
	c->rip = tcg_sized(off, size);
	c->end_tb = true;
}

static void helper_retf(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, bytes = 1u << size;
	unsigned ss = (c->efer & EFER_LMA) && c->seg[S_CS].l ? 3 : c->seg[S_SS].db ? 2 : 1;
	uint64_t mask = ss == 3 ? ~0ull : ss == 2 ? 0xffffffffull : 0xffff;
	uint64_t sp = c->gpr[R_RSP], ip, cs, nsp = 0, nss = 0;
	unsigned rpl;

	ip = tcg_load(c, S_SS, sp & mask, bytes);
	cs = tcg_load(c, S_SS, (sp + bytes) & mask, bytes) & 0xffff;
	sp = (sp + 2 * bytes + c->t[u->a]) & mask;
	rpl = cs & 3;
	if ((c->cr0 & CR0_PE) && !(c->rflags & F_VM) && rpl > c->cpl) {
		/* Return to an outer level: the stack pointer follows. */
		nsp = tcg_load(c, S_SS, sp & mask, bytes);
		nss = tcg_load(c, S_SS, (sp + bytes) & mask, bytes) & 0xffff;
		tcg_load_cs(c, cs, rpl);
		tcg_load_seg(c, S_SS, nss);
		c->gpr[R_RSP] = tcg_sized(nsp + c->t[u->a], size == 1 ? 1 : 3);
		tcg_null_outer_segs(c);
	} else {
		tcg_load_cs(c, cs, (c->cr0 & CR0_PE) ? c->cpl : 0);
		c->gpr[R_RSP] = ss == 3 ? sp : ss == 2 ? (uint32_t)sp :
				(c->gpr[R_RSP] & ~0xffffull) | sp;
	}
	c->rip = tcg_sized(ip, size);
	c->end_tb = true;
}
