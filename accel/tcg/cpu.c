/*
 * TCG's CPU state: conversion to and from the machine's struct cpu_state,
 * the mode bits a translation block depends on, and lazy arithmetic
 * flags.
 *
 * Flag-setting micro-ops record the operation, its size, operands and
 * result (cc_op/cc_a/cc_b/cc_res) instead of computing six flag bits;
 * they are computed only when something reads them (Jcc, pushf,
 * interrupts).  Operations whose flags are awkward to recompute (shifts,
 * multiply) store CC_EFLAGS with the bits themselves.
 */
#include <string.h>

#include "accel/tcg/tcg.h"

bool tcg_long_mode(const struct tcg_cpu *c)
{
	return c->efer & EFER_LMA;
}

bool tcg_code64(const struct tcg_cpu *c)
{
	return (c->efer & EFER_LMA) && c->seg[S_CS].l;
}

void tcg_cpu_reset_state(struct tcg_cpu *c, const struct cpu_state *s)
{
	memcpy(c->gpr, s->gpr, sizeof(c->gpr));
	c->rip = s->rip;
	c->rflags = s->rflags | RFLAGS_RESERVED1;
	c->cc_op = CC_EFLAGS;
	c->cc_res = s->rflags & F_ARITH;
	c->rflags &= ~(uint64_t)F_ARITH;
	c->seg[S_ES] = s->es;
	c->seg[S_CS] = s->cs;
	c->seg[S_SS] = s->ss;
	c->seg[S_DS] = s->ds;
	c->seg[S_FS] = s->fs;
	c->seg[S_GS] = s->gs;
	c->ldt = s->ldt;
	c->tr = s->tr;
	c->gdt = s->gdt;
	c->idt = s->idt;
	c->cr0 = s->cr0 | CR0_ET;
	c->cr2 = s->cr2;
	c->cr3 = s->cr3;
	c->cr4 = s->cr4;
	c->efer = s->efer;
	c->apic_base = s->apic_base;
	/* CPL is the RPL of CS in protected mode, 0 in real mode. */
	c->cpl = (c->cr0 & CR0_PE) ? s->cs.selector & 3 : 0;
	if (s->rflags & F_VM)
		c->cpl = 3;
	tcg_tlb_flush(c, true);
	tcg_update_mode(c);
}

void tcg_cpu_get_state(struct tcg_cpu *c, struct cpu_state *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->gpr, c->gpr, sizeof(c->gpr));
	s->rip = c->rip;
	s->rflags = tcg_get_flags(c);
	s->es = c->seg[S_ES];
	s->cs = c->seg[S_CS];
	s->ss = c->seg[S_SS];
	s->ds = c->seg[S_DS];
	s->fs = c->seg[S_FS];
	s->gs = c->seg[S_GS];
	s->ldt = c->ldt;
	s->tr = c->tr;
	s->gdt = c->gdt;
	s->idt = c->idt;
	s->cr0 = c->cr0;
	s->cr2 = c->cr2;
	s->cr3 = c->cr3;
	s->cr4 = c->cr4;
	s->efer = c->efer;
	s->apic_base = c->apic_base;
}

static unsigned parity(uint64_t res)
{
	return __builtin_parity((unsigned)(res & 0xff)) ? 0 : F_PF;
}

static uint64_t arith_flags(const struct tcg_cpu *c)
{
	unsigned size = c->cc_size, msb = tcg_bits(size) - 1;
	uint64_t a = c->cc_a, b = c->cc_b, r = tcg_sized(c->cc_res, size);
	uint64_t f = 0;

	switch (c->cc_op) {
	case CC_EFLAGS:
		return c->cc_res & F_ARITH;
	case CC_ADD:
		f |= r < a ? F_CF : 0;
		f |= (((a ^ r) & (b ^ r)) >> msb) & 1 ? F_OF : 0;
		f |= (a ^ b ^ r) & F_AF;
		break;
	case CC_ADC:
		f |= (r < a || (c->cc_cin && r == a)) ? F_CF : 0;
		f |= (((a ^ r) & (b ^ r)) >> msb) & 1 ? F_OF : 0;
		f |= (a ^ b ^ r) & F_AF;
		break;
	case CC_SUB:
		f |= a < b ? F_CF : 0;
		f |= (((a ^ b) & (a ^ r)) >> msb) & 1 ? F_OF : 0;
		f |= (a ^ b ^ r) & F_AF;
		break;
	case CC_SBB:
		f |= (a < b || (c->cc_cin && a == b)) ? F_CF : 0;
		f |= (((a ^ b) & (a ^ r)) >> msb) & 1 ? F_OF : 0;
		f |= (a ^ b ^ r) & F_AF;
		break;
	case CC_LOGIC:
		break;
	case CC_INC:
		f |= c->cc_cin ? F_CF : 0;
		f |= r == (1ull << msb) ? F_OF : 0;
		f |= (a ^ 1 ^ r) & F_AF;
		break;
	case CC_DEC:
		f |= c->cc_cin ? F_CF : 0;
		f |= r == (1ull << msb) - 1 ? F_OF : 0;
		f |= (a ^ 1 ^ r) & F_AF;
		break;
	}
	f |= r == 0 ? F_ZF : 0;
	f |= (r >> msb) & 1 ? F_SF : 0;
	f |= parity(r);
	return f;
}

uint64_t tcg_get_flags(struct tcg_cpu *c)
{
	return (c->rflags & ~(uint64_t)F_ARITH) | arith_flags(c) | RFLAGS_RESERVED1;
}

/* Replace the bits of mask in RFLAGS by those of f. */
void tcg_set_flags(struct tcg_cpu *c, uint64_t f, uint64_t mask)
{
	/* Writing every arithmetic flag: no need to compute the old ones. */
	uint64_t cur = (mask & F_ARITH) == F_ARITH ? c->rflags : tcg_get_flags(c);

	cur = (cur & ~mask) | (f & mask);
	c->cc_op = CC_EFLAGS;
	c->cc_res = cur & F_ARITH;
	c->rflags = (cur & ~(uint64_t)F_ARITH) | RFLAGS_RESERVED1;
}

bool tcg_cond(struct tcg_cpu *c, unsigned cc)
{
	uint64_t f;
	bool r;

	/* The common test-and-branch cases without building RFLAGS. */
	if (c->cc_op == CC_LOGIC) {
		uint64_t res = tcg_sized(c->cc_res, c->cc_size);
		bool sf = (res >> (tcg_bits(c->cc_size) - 1)) & 1;

		switch (cc >> 1) {
		case CC_O >> 1: case CC_B >> 1: r = false; goto out;
		case CC_E >> 1: case CC_BE >> 1: r = res == 0; goto out;
		case CC_S >> 1: case CC_L >> 1: r = sf; goto out;
		case CC_LE >> 1: r = res == 0 || sf; goto out;
		}
	}
	/* The common compare-and-branch cases without building RFLAGS. */
	if (c->cc_op == CC_SUB) {
		uint64_t a = c->cc_a, b = c->cc_b;
		int64_t sa = tcg_sext(a, c->cc_size), sb = tcg_sext(b, c->cc_size);

		switch (cc >> 1) {
		case CC_E >> 1: r = a == b; goto out;
		case CC_B >> 1: r = a < b; goto out;
		case CC_BE >> 1: r = a <= b; goto out;
		case CC_L >> 1: r = sa < sb; goto out;
		case CC_LE >> 1: r = sa <= sb; goto out;
		}
	}
	f = arith_flags(c);
	switch (cc >> 1) {
	case 0: r = f & F_OF; break;
	case 1: r = f & F_CF; break;
	case 2: r = f & F_ZF; break;
	case 3: r = f & (F_CF | F_ZF); break;
	case 4: r = f & F_SF; break;
	case 5: r = f & F_PF; break;
	case 6: r = !(f & F_SF) != !(f & F_OF); break;
	default: r = (f & F_ZF) || (!(f & F_SF) != !(f & F_OF)); break;
	}
out:
	return (cc & 1) ? !r : r;
}
