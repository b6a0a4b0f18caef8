/*
 * The micro-op interpreter: the portable execution path (stage 1).  It
 * runs one translation block and returns with c->rip set to where the
 * guest continues; exceptions leave through tcg_raise's longjmp.
 */
#include "accel/tcg/interp.h"
#include "machine.h"
#include "tsan.h"

/* Per operand size: the bits a write replaces (32-bit writes clear the
 * upper half, 8- and 16-bit ones merge). */
static const uint64_t st_mask[4] = { 0xff, 0xffff, ~0ull, ~0ull };
static const uint64_t val_mask[4] = { 0xff, 0xffff, 0xffffffff, ~0ull };

static void st_reg(struct tcg_cpu *c, unsigned r, unsigned size, uint64_t v)
{
	if (__builtin_expect(r & 0x10, 0)) {
		r &= 0xf;
		c->gpr[r] = (c->gpr[r] & ~0xff00ull) | ((v & 0xff) << 8);
		return;
	}
	c->gpr[r] = (c->gpr[r] & ~st_mask[size & 3]) | (v & val_mask[size & 3]);
}

static uint64_t ld_reg(struct tcg_cpu *c, unsigned r, unsigned size)
{
	if (__builtin_expect(r & 0x30, 0)) {
		if (r & 0x20)
			return c->seg[r & 7].selector;
		return (c->gpr[r & 0xf] >> 8) & 0xff;
	}
	return c->gpr[r] & val_mask[size & 3];
}

/* Locked read-modify-write: a host atomic on the guest page when the
 * operand is in RAM within one page, else the machine's atomic lock. */
static TSAN_GUEST_ACCESS uint64_t ld_locked(struct tcg_cpu *c, const struct uop *u)
{
	unsigned bytes = 1u << u->size;
	uint8_t *p = tcg_lock_hva(c, u->x, c->t[u->a], bytes);

	c->locked_hva = p;
	if (p) {
		switch (u->size) {
		case 0: return __atomic_load_n(p, __ATOMIC_SEQ_CST);
		case 1: return __atomic_load_n((uint16_t *)p, __ATOMIC_SEQ_CST);
		case 2: return __atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST);
		default: return __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
		}
	}
	pthread_mutex_lock(&c->vm->atomic_lock);
	c->locked_global = true;
	return tcg_load(c, u->x, c->t[u->a], bytes);
}

/*
 * Returns false if memory changed since ld_locked: restart.  Both are the
 * guest's own atomics on its RAM (TSAN_GUEST_ACCESS: see tsan.h).
 */
static TSAN_GUEST_ACCESS bool st_cond(struct tcg_cpu *c, const struct uop *u)
{
	uint8_t *p = c->locked_hva;
	uint64_t old = c->t[u->d], nv = c->t[u->b];
	bool ok;

	if (!p) {
		tcg_store(c, u->x, c->t[u->a], 1u << u->size, nv);
		c->locked_global = false;
		pthread_mutex_unlock(&c->vm->atomic_lock);
		return true;
	}
	c->locked_hva = NULL;
	switch (u->size) {
	case 0: {
		uint8_t e = old;
		ok = __atomic_compare_exchange_n(p, &e, (uint8_t)nv, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		break;
	}
	case 1: {
		uint16_t e = old;
		ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)nv, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		break;
	}
	case 2: {
		uint32_t e = old;
		ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)nv, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		break;
	}
	default: {
		uint64_t e = old;
		ok = __atomic_compare_exchange_n((uint64_t *)p, &e, nv, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		break;
	}
	}
	/* After the store, so a dirty-log sync in between cannot lose it. */
	tcg_dirty_hva(c, p);
	return ok;
}

static void alu(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t a = c->t[u->a], b = UOP_B(c, u), r;
	unsigned size = u->size, op = CC_LOGIC;

	switch (u->x) {
	case ALU_ADD: r = a + b; op = CC_ADD; break;
	case ALU_OR: r = a | b; break;
	case ALU_ADC:
		c->cc_cin = tcg_cf(c);
		r = a + b + c->cc_cin;
		op = CC_ADC;
		break;
	case ALU_SBB:
		c->cc_cin = tcg_cf(c);
		r = a - b - c->cc_cin;
		op = CC_SBB;
		break;
	case ALU_AND: r = a & b; break;
	case ALU_XOR: r = a ^ b; break;
	default: r = a - b; op = CC_SUB; break;
	}
	r = tcg_sized(r, size);
	c->t[u->d] = r;
	if (u->aux & UF_NOFLAGS)
		return;
	c->cc_op = op;
	c->cc_size = size;
	c->cc_a = a;
	c->cc_b = b;
	c->cc_res = r;
}

/* tcg_cond, with jz/jnz after test, and, cmp or sub answered inline. */
static inline bool jcc_taken(struct tcg_cpu *c, unsigned cc)
{
	if ((cc >> 1) == (CC_E >> 1)) {
		if (c->cc_op == CC_LOGIC)
			return !tcg_sized(c->cc_res, c->cc_size) ^ (cc & 1);
		if (c->cc_op == CC_SUB)
			return (c->cc_a == c->cc_b) ^ (cc & 1);
	}
	return tcg_cond(c, cc);
}

static inline void ex_ldr(struct tcg_cpu *c, const struct uop *u)
{
	c->t[u->d] = ld_reg(c, u->a, u->size);
}

static inline void ex_str(struct tcg_cpu *c, const struct uop *u)
{
	st_reg(c, u->d, u->size, c->t[u->a]);
}

static inline void ex_ld(struct tcg_cpu *c, const struct uop *u)
{
	c->t[u->d] = tcg_load(c, u->x, c->t[u->a], 1u << u->size);
}

static inline void ex_st(struct tcg_cpu *c, const struct uop *u)
{
	tcg_store(c, u->x, c->t[u->a], 1u << u->size, c->t[u->b]);
}

static inline void ex_select(struct tcg_cpu *c, const struct uop *u)
{
	c->t[u->d] = tcg_sized(c->t[u->x] ? c->t[u->a] : c->t[u->b], u->size);
}

static inline void ex_incdec(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t a = c->t[u->a];

	if (u->aux & UF_NOFLAGS) {
		c->t[u->d] = tcg_sized(u->x ? a - 1 : a + 1, u->size);
		return;
	}
	/* CF is kept: remember it, unless nothing reads it. */
	c->cc_cin = (u->aux & UF_KEEP_DEAD) ? 0 : tcg_cf(c);
	c->cc_op = u->x ? CC_DEC : CC_INC;
	c->cc_size = u->size;
	c->cc_a = a;
	c->cc_b = 1;
	c->cc_res = tcg_sized(u->x ? a - 1 : a + 1, u->size);
	c->t[u->d] = c->cc_res;
}

static inline void ex_neg(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t a = c->t[u->a];

	if (u->aux & UF_NOFLAGS) {
		c->t[u->d] = tcg_sized(-a, u->size);
		return;
	}
	c->cc_op = CC_SUB;
	c->cc_size = u->size;
	c->cc_a = 0;
	c->cc_b = a;
	c->cc_res = tcg_sized(-a, u->size);
	c->t[u->d] = c->cc_res;
}

static inline void ex_imul2(struct tcg_cpu *c, const struct uop *u)
{
	if (u->aux & UF_NOFLAGS) {
		/* The low half of a product does not depend on signedness. */
		c->t[u->d] = tcg_sized(c->t[u->a] * UOP_B(c, u), u->size);
		return;
	}
	tcg_exec_imul2(c, u);
}

static inline void ex_bswap(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t a = c->t[u->a];

	c->t[u->d] = u->size == 3 ? __builtin_bswap64(a) :
		     u->size == 2 ? __builtin_bswap32(a) : 0;
}

static inline void ex_setcf(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t cf = u->x == 2 ? !tcg_cond(c, CC_B) : u->x;

	tcg_set_flags(c, cf ? F_CF : 0, F_CF);
}

/* Returns true if the block must stop: memory changed, restart the insn. */
static inline bool ex_stc(struct tcg_cpu *c, const struct uop *u)
{
	if (st_cond(c, u))
		return false;
	c->rip = c->insn_eip;
	return true;
}

/* Returns true if the helper ends the block. */
static inline bool ex_helper(struct tcg_cpu *c, const struct uop *u)
{
	c->rip = c->insn_next;
	((tcg_helper)(uintptr_t)u->imm)(c, u);
	if (c->end_tb || (u->aux & 1)) {
		c->end_tb = false;
		return true;
	}
	return false;
}

static inline void __attribute__((noreturn)) ex_exc(struct tcg_cpu *c, const struct uop *u)
{
	c->rip = c->insn_eip;
	tcg_raise(c, u->x, u->imm);
}

#define T	c->t

/*
 * One micro-op that is not control flow, for the code generator
 * (jit_x86.c), with the interpreter's semantics: the cases below are the
 * interpreter's handlers.  Returns true if the block must stop (rip set).
 */
bool tcg_uop_exec(struct tcg_cpu *c, const struct uop *u)
{
	switch (u->op) {
	case U_LDR: ex_ldr(c, u); break;
	case U_STR: ex_str(c, u); break;
	case U_LD: ex_ld(c, u); break;
	case U_ST: ex_st(c, u); break;
	case U_LDL: T[u->d] = ld_locked(c, u); break;
	case U_STC: return ex_stc(c, u);
	case U_ALU: alu(c, u); break;
	case U_INCDEC: ex_incdec(c, u); break;
	case U_NEG: ex_neg(c, u); break;
	case U_SHIFT: tcg_exec_shift(c, u); break;
	case U_SHD: tcg_exec_shd(c, u); break;
	case U_MUL: tcg_exec_mul(c, u); break;
	case U_DIV: tcg_exec_div(c, u); break;
	case U_IMUL2: ex_imul2(c, u); break;
	case U_BT: tcg_exec_bt(c, u); break;
	case U_BSF: case U_BSR: case U_POPCNT: case U_TZCNT: case U_LZCNT:
		tcg_exec_bitscan(c, u);
		break;
	case U_BSWAP: ex_bswap(c, u); break;
	case U_GETCC: T[u->d] = tcg_cond(c, u->x); break;
	case U_GETCF: T[u->d] = tcg_cf(c); break;
	case U_SETCF: ex_setcf(c, u); break;
	case U_GETF: T[u->d] = tcg_get_flags(c); break;
	case U_SELECT: ex_select(c, u); break;
	case U_HELPER: return ex_helper(c, u);
	case U_EXC: ex_exc(c, u);
	}
	return false;
}

#undef T

bool tcg_uop_cond(struct tcg_cpu *c, unsigned cc)
{
	return jcc_taken(c, cc);
}

/*
 * Threaded dispatch (a computed goto per micro-op, GCC and Clang): each
 * handler ends in its own indirect jump, which the host predicts far
 * better than the one shared jump of a switch.
 */
#define NEXT	do { if (++u >= end) goto cut; goto *lbl[u->op]; } while (0)

void tcg_interp(struct tcg_cpu *c, struct tb *tb)
{
	static const void *const lbl[U_NR] = {
		[U_INSN] = &&l_insn, [U_MOVI] = &&l_movi, [U_MOV] = &&l_mov,
		[U_LDR] = &&l_ldr, [U_STR] = &&l_str, [U_ADD] = &&l_add,
		[U_SUB] = &&l_sub, [U_AND] = &&l_and, [U_OR] = &&l_or,
		[U_XOR] = &&l_xor, [U_ADDI] = &&l_addi, [U_SHLI] = &&l_shli,
		[U_SARI] = &&l_sari, [U_SEXT] = &&l_sext, [U_ZEXT] = &&l_zext,
		[U_LD] = &&l_ld, [U_ST] = &&l_st, [U_LDL] = &&l_ldl,
		[U_STC] = &&l_stc, [U_ALU] = &&l_alu, [U_INCDEC] = &&l_incdec,
		[U_NEG] = &&l_neg, [U_NOT] = &&l_not, [U_SHIFT] = &&l_shift,
		[U_SHD] = &&l_shd, [U_MUL] = &&l_mul, [U_DIV] = &&l_div,
		[U_IMUL2] = &&l_imul2, [U_BT] = &&l_bt, [U_BSF] = &&l_bitscan,
		[U_BSR] = &&l_bitscan, [U_POPCNT] = &&l_bitscan,
		[U_TZCNT] = &&l_bitscan, [U_LZCNT] = &&l_bitscan,
		[U_BSWAP] = &&l_bswap, [U_GETCC] = &&l_getcc, [U_GETCF] = &&l_getcf,
		[U_SETCF] = &&l_setcf, [U_GETF] = &&l_getf, [U_SELECT] = &&l_select,
		[U_JMP] = &&l_jmp, [U_JMPI] = &&l_jmpi, [U_JCC] = &&l_jcc,
		[U_JNZ] = &&l_jnz, [U_JZ] = &&l_jz, [U_HELPER] = &&l_helper,
		[U_EXC] = &&l_exc,
	};
	const struct uop *u, *end;
	uint64_t *T = c->t, emask;
	int exit;

next_tb:
	u = tb->uops;
	end = tb->uops + tb->nr_uops;
	emask = (tb->flags & TBF_CS64) ? ~0ull : (tb->flags & TBF_CS32) ? 0xffffffffull : 0xffff;
	if (u >= end)
		goto cut;
	goto *lbl[u->op];
l_insn:
	if (c->brk) {
		/* The block rewrote itself (translate again), a device
		 * access made an interrupt pending, or the machine wants
		 * this vCPU to stop. */
		c->brk = false;
		c->rip = u->imm;
		goto stop;
	}
	c->insn_eip = u->imm;
	c->insn_next = (u->imm + u->a) & emask;
	NEXT;
l_movi: T[u->d] = u->imm; NEXT;
l_mov: T[u->d] = T[u->a]; NEXT;
l_ldr: ex_ldr(c, u); NEXT;
l_str: ex_str(c, u); NEXT;
l_add: T[u->d] = tcg_sized(T[u->a] + T[u->b], u->size); NEXT;
l_sub: T[u->d] = tcg_sized(T[u->a] - T[u->b], u->size); NEXT;
l_and: T[u->d] = T[u->a] & T[u->b]; NEXT;
l_or: T[u->d] = T[u->a] | T[u->b]; NEXT;
l_xor: T[u->d] = T[u->a] ^ T[u->b]; NEXT;
l_addi: T[u->d] = tcg_sized(T[u->a] + u->imm, u->size); NEXT;
l_shli: T[u->d] = tcg_sized(T[u->a] << u->imm, u->size); NEXT;
l_sari: T[u->d] = (uint64_t)((int64_t)T[u->a] >> u->imm); NEXT;
l_sext: T[u->d] = tcg_sext(T[u->a], u->size); NEXT;
l_zext: T[u->d] = tcg_sized(T[u->a], u->size); NEXT;
l_ld: ex_ld(c, u); NEXT;
l_st: ex_st(c, u); NEXT;
l_ldl: T[u->d] = ld_locked(c, u); NEXT;
l_stc:
	if (ex_stc(c, u))
		goto stop;
	NEXT;
l_alu: alu(c, u); NEXT;
l_incdec: ex_incdec(c, u); NEXT;
l_neg: ex_neg(c, u); NEXT;
l_not: T[u->d] = tcg_sized(~T[u->a], u->size); NEXT;
l_shift: tcg_exec_shift(c, u); NEXT;
l_shd: tcg_exec_shd(c, u); NEXT;
l_mul: tcg_exec_mul(c, u); NEXT;
l_div: tcg_exec_div(c, u); NEXT;
l_imul2: ex_imul2(c, u); NEXT;
l_bt: tcg_exec_bt(c, u); NEXT;
l_bitscan: tcg_exec_bitscan(c, u); NEXT;
l_bswap: ex_bswap(c, u); NEXT;
l_getcc: T[u->d] = tcg_cond(c, u->x); NEXT;
l_getcf: T[u->d] = tcg_cf(c); NEXT;
l_setcf: ex_setcf(c, u); NEXT;
l_getf: T[u->d] = tcg_get_flags(c); NEXT;
l_select: ex_select(c, u); NEXT;
l_jmp:
	c->rip = T[u->a];
	exit = 2;
	goto chain;
l_jmpi:
	c->rip = u->imm;
	exit = 0;
	goto chain;
l_jcc:
	if (jcc_taken(c, u->x)) {
		c->rip = u->imm;
		exit = 1;
		goto chain;
	}
	NEXT;
l_jnz:
	if (tcg_sized(T[u->a], u->size)) {
		c->rip = u->imm;
		exit = 1;
		goto chain;
	}
	NEXT;
l_jz:
	if (!tcg_sized(T[u->a], u->size)) {
		c->rip = u->imm;
		exit = 1;
		goto chain;
	}
	NEXT;
l_helper:
	if (ex_helper(c, u))
		goto stop;
	NEXT;
l_exc:
	ex_exc(c, u);
chain:
	tb = tcg_tb_next(c, tb, exit);
	if (tb)
		goto next_tb;
	return;
cut:
	/* Every block ends in a jump; this is only reached if it was cut. */
	c->rip = c->insn_next;
stop:
	c->chain_from = NULL;	/* not an exit that may be linked */
}
