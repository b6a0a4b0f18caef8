/*
 * TCG's CPU state and its conversion to and from the machine's struct
 * cpu_state, and the mode bits a translation block depends on.
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

/* Recompute the block flags after anything that changes CS, SS, CR0 or EFER. */
void tcg_update_mode(struct tcg_cpu *c)
{
	uint32_t f = 0;

	if (c->cr0 & CR0_PE)
		f |= TBF_PE;
	if (c->rflags & F_VM)
		f |= TBF_VM;
	if (c->rflags & F_TF)
		f |= TBF_TF;
	if (tcg_code64(c))
		f |= TBF_CS64;
	else if (c->seg[S_CS].db)
		f |= TBF_CS32;
	if (c->seg[S_SS].db)
		f |= TBF_SS32;
	c->tb_flags = f;
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
