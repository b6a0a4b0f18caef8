/*
 * The micro-op interpreter: the portable execution path (stage 1).  It
 * runs one translation block and returns with c->rip set to where the
 * guest continues; exceptions leave through tcg_raise's longjmp.
 */
#include "accel/tcg/interp.h"
#include "machine.h"

static void st_reg(struct tcg_cpu *c, unsigned r, unsigned size, uint64_t v)
{
	if (r & 0x10) {
		r &= 0xf;
		c->gpr[r] = (c->gpr[r] & ~0xff00ull) | ((v & 0xff) << 8);
		return;
	}
	switch (size) {
	case 0: c->gpr[r] = (c->gpr[r] & ~0xffull) | (v & 0xff); break;
	case 1: c->gpr[r] = (c->gpr[r] & ~0xffffull) | (v & 0xffff); break;
	case 2: c->gpr[r] = (uint32_t)v; break;
	default: c->gpr[r] = v; break;
	}
}

static uint64_t ld_reg(struct tcg_cpu *c, unsigned r, unsigned size)
{
	if (r & 0x20)
		return c->seg[r & 7].selector;
	if (r & 0x10)
		return (c->gpr[r & 0xf] >> 8) & 0xff;
	return tcg_sized(c->gpr[r], size);
}

/* Locked read-modify-write: a host atomic on the guest page when the
 * operand is in RAM within one page, else the machine's atomic lock. */
static uint64_t ld_locked(struct tcg_cpu *c, const struct uop *u)
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

/* Returns false if memory changed since ld_locked: restart. */
static bool st_cond(struct tcg_cpu *c, const struct uop *u)
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
	uint64_t a = c->t[u->a], b = c->t[u->b], r;
	unsigned size = u->size, op = CC_LOGIC;

	switch (u->x) {
	case ALU_ADD: r = a + b; op = CC_ADD; break;
	case ALU_OR: r = a | b; break;
	case ALU_ADC:
		c->cc_cin = tcg_cond(c, CC_B);
		r = a + b + c->cc_cin;
		op = CC_ADC;
		break;
	case ALU_SBB:
		c->cc_cin = tcg_cond(c, CC_B);
		r = a - b - c->cc_cin;
		op = CC_SBB;
		break;
	case ALU_AND: r = a & b; break;
	case ALU_XOR: r = a ^ b; break;
	default: r = a - b; op = CC_SUB; break;
	}
	r = tcg_sized(r, size);
	c->cc_op = op;
	c->cc_size = size;
	c->cc_a = a;
	c->cc_b = b;
	c->cc_res = r;
	c->t[u->d] = r;
}

void tcg_interp(struct tcg_cpu *c, const struct tb *tb)
{
	const struct uop *u = tb->uops, *end = tb->uops + tb->nr_uops;
	uint64_t *T = c->t;
	uint64_t emask = (tb->flags & TBF_CS64) ? ~0ull :
			 (tb->flags & TBF_CS32) ? 0xffffffffull : 0xffff;

	for (; u < end; u++) {
		switch (u->op) {
		case U_INSN:
			if (c->brk) {
				/* The block rewrote itself (translate again), a
				 * device access made an interrupt pending, or the
				 * machine wants this vCPU to stop. */
				c->brk = false;
				c->rip = u->imm;
				return;
			}
			c->insn_eip = u->imm;
			c->insn_next = (u->imm + u->a) & emask;
			break;
		case U_MOVI: T[u->d] = u->imm; break;
		case U_MOV: T[u->d] = T[u->a]; break;
		case U_LDR: T[u->d] = ld_reg(c, u->a, u->size); break;
		case U_STR: st_reg(c, u->d, u->size, T[u->a]); break;
		case U_ADD: T[u->d] = tcg_sized(T[u->a] + T[u->b], u->size); break;
		case U_SUB: T[u->d] = tcg_sized(T[u->a] - T[u->b], u->size); break;
		case U_AND: T[u->d] = T[u->a] & T[u->b]; break;
		case U_OR: T[u->d] = T[u->a] | T[u->b]; break;
		case U_XOR: T[u->d] = T[u->a] ^ T[u->b]; break;
		case U_ADDI: T[u->d] = tcg_sized(T[u->a] + u->imm, u->size); break;
		case U_SHLI: T[u->d] = tcg_sized(T[u->a] << u->imm, u->size); break;
		case U_SARI: T[u->d] = (uint64_t)((int64_t)T[u->a] >> u->imm); break;
		case U_SEXT: T[u->d] = tcg_sext(T[u->a], u->size); break;
		case U_ZEXT: T[u->d] = tcg_sized(T[u->a], u->size); break;
		case U_LD: T[u->d] = tcg_load(c, u->x, T[u->a], 1u << u->size); break;
		case U_ST: tcg_store(c, u->x, T[u->a], 1u << u->size, T[u->b]); break;
		case U_LDL: T[u->d] = ld_locked(c, u); break;
		case U_STC:
			if (!st_cond(c, u)) {
				c->rip = c->insn_eip;
				return;
			}
			break;
		case U_ALU: alu(c, u); break;
		case U_INCDEC: {
			uint64_t a = T[u->a];

			c->cc_cin = tcg_cond(c, CC_B);
			c->cc_op = u->x ? CC_DEC : CC_INC;
			c->cc_size = u->size;
			c->cc_a = a;
			c->cc_b = 1;
			c->cc_res = tcg_sized(u->x ? a - 1 : a + 1, u->size);
			T[u->d] = c->cc_res;
			break;
		}
		case U_NEG: {
			uint64_t a = T[u->a];

			c->cc_op = CC_SUB;
			c->cc_size = u->size;
			c->cc_a = 0;
			c->cc_b = a;
			c->cc_res = tcg_sized(-a, u->size);
			T[u->d] = c->cc_res;
			break;
		}
		case U_NOT: T[u->d] = tcg_sized(~T[u->a], u->size); break;
		case U_SHIFT: tcg_exec_shift(c, u); break;
		case U_SHD: tcg_exec_shd(c, u); break;
		case U_MUL: tcg_exec_mul(c, u); break;
		case U_DIV: tcg_exec_div(c, u); break;
		case U_IMUL2: tcg_exec_imul2(c, u); break;
		case U_BT: tcg_exec_bt(c, u); break;
		case U_BSF: case U_BSR: case U_POPCNT: case U_TZCNT: case U_LZCNT:
			tcg_exec_bitscan(c, u);
			break;
		case U_BSWAP:
			T[u->d] = u->size == 3 ? __builtin_bswap64(T[u->a]) :
				  u->size == 2 ? __builtin_bswap32(T[u->a]) : 0;
			break;
		case U_GETCC: T[u->d] = tcg_cond(c, u->x); break;
		case U_GETCF: T[u->d] = tcg_cond(c, CC_B); break;
		case U_SETCF: {
			uint64_t cf = u->x == 2 ? !tcg_cond(c, CC_B) : u->x;

			tcg_set_flags(c, cf ? F_CF : 0, F_CF);
			break;
		}
		case U_GETF: T[u->d] = tcg_get_flags(c); break;
		case U_SELECT: T[u->d] = tcg_sized(T[u->x] ? T[u->a] : T[u->b], u->size); break;
		case U_JMP: c->rip = T[u->a]; return;
		case U_JMPI: c->rip = u->imm; return;
		case U_JCC:
			if (tcg_cond(c, u->x)) {
				c->rip = u->imm;
				return;
			}
			break;
		case U_JNZ:
			if (tcg_sized(T[u->a], u->size)) {
				c->rip = u->imm;
				return;
			}
			break;
		case U_JZ:
			if (!tcg_sized(T[u->a], u->size)) {
				c->rip = u->imm;
				return;
			}
			break;
		case U_HELPER:
			c->rip = c->insn_next;
			((tcg_helper)(uintptr_t)u->imm)(c, u);
			if (c->end_tb || (u->aux & 1)) {
				c->end_tb = false;
				return;
			}
			break;
		case U_EXC:
			c->rip = c->insn_eip;
			tcg_raise(c, u->x, u->imm);
		}
	}
	/* Every block ends in a jump; this is only reached if it was cut. */
	c->rip = c->insn_next;
}
