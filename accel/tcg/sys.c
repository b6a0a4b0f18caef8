/*
 * Segment descriptors and segment register loads, control registers,
 * MSRs and CPUID.
 *
 * CPUID advertises exactly what this translator implements; see
 * docs/tcg.md for the list.  Anything not listed raises #UD (opcodes) or
 * #GP (MSRs), as on a CPU without the feature.
 */
#include <string.h>

#include "accel/tcg/tcg.h"
#include "irqchip.h"
#include "log.h"
#include "machine.h"
#include "vcpu.h"

bool tcg_read_desc(struct tcg_cpu *c, uint16_t sel, uint32_t d[2])
{
	const struct cpu_dtable *t;
	struct cpu_dtable ldt;
	uint64_t v;

	if (sel & 4) {
		if (c->ldt.unusable || !c->ldt.present)
			return false;
		ldt.base = c->ldt.base;
		ldt.limit = c->ldt.limit > 0xffff ? 0xffff : c->ldt.limit;
		t = &ldt;
		if ((sel & ~7u) + 7 > c->ldt.limit)
			return false;
	} else {
		t = &c->gdt;
		if ((sel & ~7u) + 7u > t->limit)
			return false;
	}
	v = tcg_ld_sys(c, t->base + (sel & ~7u), 8);
	d[0] = v;
	d[1] = v >> 32;
	return true;
}

/* Set the accessed bit the way the CPU does: only if it is clear (Linux
 * maps its GDT read-only and presets the bit). */
static void set_accessed(struct tcg_cpu *c, uint16_t sel, uint32_t d[2])
{
	uint64_t base = (sel & 4) ? c->ldt.base : c->gdt.base;

	if (d[1] & (1u << 8))
		return;
	d[1] |= 1u << 8;
	tcg_st_sys(c, base + (sel & ~7u) + 5, 1, d[1] >> 8);
}

void tcg_desc_to_seg(struct cpu_segment *s, uint16_t sel, const uint32_t d[2])
{
	uint32_t limit = (d[0] & 0xffff) | (d[1] & 0xf0000);

	s->selector = sel;
	s->base = (d[0] >> 16) | ((d[1] & 0xff) << 16) | (d[1] & 0xff000000);
	s->g = (d[1] >> 23) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->type = (d[1] >> 8) & 0xf;
	s->s = (d[1] >> 12) & 1;
	s->dpl = (d[1] >> 13) & 3;
	s->present = (d[1] >> 15) & 1;
	s->avl = (d[1] >> 20) & 1;
	s->l = (d[1] >> 21) & 1;
	s->db = (d[1] >> 22) & 1;
	s->unusable = 0;
}

void tcg_seg_load_real(struct tcg_cpu *c, int sreg, uint16_t sel)
{
	struct cpu_segment *s = &c->seg[sreg];

	s->selector = sel;
	s->base = (uint64_t)sel << 4;
	s->unusable = 0;
	s->present = 1;
	if (c->rflags & F_VM) {
		s->limit = 0xffff;
		s->type = sreg == S_CS ? 0xb : 3;
		s->s = 1;
		s->dpl = 3;
		s->db = s->l = s->g = 0;
	}
	if (sreg == S_CS || sreg == S_SS)
		tcg_update_mode(c);
}

void tcg_load_seg(struct tcg_cpu *c, int sreg, uint16_t sel)
{
	struct cpu_segment *s = &c->seg[sreg];
	uint32_t d[2];
	unsigned dpl, rpl = sel & 3, type;

	if (!(c->cr0 & CR0_PE) || (c->rflags & F_VM)) {
		tcg_seg_load_real(c, sreg, sel);
		return;
	}
	if (!(sel & ~3)) {
		/* Null: fine for data segments, and for SS in 64-bit code below CPL 3. */
		if (sreg == S_SS && !(tcg_code64(c) && c->cpl < 3 && rpl == c->cpl))
			tcg_raise(c, EXC_GP, 0);
		memset(s, 0, sizeof(*s));
		s->selector = sel;
		s->unusable = 1;
		s->dpl = sreg == S_SS ? c->cpl : 0;
		if (sreg == S_SS)
			tcg_update_mode(c);
		return;
	}
	if (!tcg_read_desc(c, sel, d))
		tcg_raise(c, EXC_GP, sel & ~3);
	dpl = (d[1] >> 13) & 3;
	type = (d[1] >> 8) & 0xf;
	if (!(d[1] & (1u << 12)))
		tcg_raise(c, EXC_GP, sel & ~3);
	if (sreg == S_SS) {
		if (rpl != c->cpl || dpl != c->cpl || (type & 8) || !(type & 2))
			tcg_raise(c, EXC_GP, sel & ~3);
		if (!(d[1] & (1u << 15)))
			tcg_raise(c, EXC_SS, sel & ~3);
	} else {
		/* data, or readable code; privilege unless conforming code */
		if ((type & 8) && !(type & 2))
			tcg_raise(c, EXC_GP, sel & ~3);
		if (!((type & 8) && (type & 4)) && (dpl < c->cpl || dpl < rpl))
			tcg_raise(c, EXC_GP, sel & ~3);
		if (!(d[1] & (1u << 15)))
			tcg_raise(c, EXC_NP, sel & ~3);
	}
	set_accessed(c, sel, d);
	tcg_desc_to_seg(s, sel, d);
	if (sreg == S_SS)
		tcg_update_mode(c);
}

void tcg_load_cs(struct tcg_cpu *c, uint16_t sel, unsigned cpl)
{
	uint32_t d[2];
	unsigned dpl, type;

	if (!(c->cr0 & CR0_PE) || (c->rflags & F_VM)) {
		tcg_seg_load_real(c, S_CS, sel);
		return;
	}
	if (!(sel & ~3) || !tcg_read_desc(c, sel, d))
		tcg_raise(c, EXC_GP, sel & ~3);
	dpl = (d[1] >> 13) & 3;
	type = (d[1] >> 8) & 0xf;
	if (!(d[1] & (1u << 12)) || !(type & 8))
		tcg_raise(c, EXC_GP, sel & ~3);
	if ((type & 4) ? dpl > cpl : (dpl != cpl || (sel & 3) > cpl))
		tcg_raise(c, EXC_GP, sel & ~3);
	if ((c->efer & EFER_LMA) && (d[1] & (1u << 21)) && (d[1] & (1u << 22)))
		tcg_raise(c, EXC_GP, sel & ~3);
	if (!(d[1] & (1u << 15)))
		tcg_raise(c, EXC_NP, sel & ~3);
	set_accessed(c, sel, d);
	tcg_desc_to_seg(&c->seg[S_CS], (sel & ~3) | cpl, d);
	c->cpl = cpl;
	tcg_update_mode(c);
}

void tcg_null_outer_segs(struct tcg_cpu *c)
{
	static const int data[] = { S_ES, S_DS, S_FS, S_GS };

	for (unsigned k = 0; k < 4; k++) {
		struct cpu_segment *g = &c->seg[data[k]];
		bool conforming = (g->type & 8) && (g->type & 4);

		if (!g->unusable && !conforming && g->dpl < c->cpl) {
			g->selector = 0;
			g->unusable = 1;
			g->present = 0;
		}
	}
}

void tcg_write_cr(struct tcg_cpu *c, int cr, uint64_t v)
{
	uint64_t old;

	switch (cr) {
	case 0:
		old = c->cr0;
		if ((v >> 32) || (v & ~CR0_FIXED) != 0)
			tcg_raise(c, EXC_GP, 0);
		if (((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
			tcg_raise(c, EXC_GP, 0);
		if ((v & CR0_PG) && !(old & CR0_PG) && (c->efer & EFER_LME)) {
			if (!(c->cr4 & CR4_PAE) || c->seg[S_CS].l)
				tcg_raise(c, EXC_GP, 0);
			c->efer |= EFER_LMA;
		}
		if (!(v & CR0_PG) && (old & CR0_PG) && (c->efer & EFER_LMA)) {
			if (tcg_code64(c))
				tcg_raise(c, EXC_GP, 0);
			c->efer &= ~EFER_LMA;
		}
		c->cr0 = v | CR0_ET;
		if ((old ^ v) & (CR0_PG | CR0_WP | CR0_PE))
			tcg_tlb_flush(c, true);
		break;
	case 2:
		c->cr2 = v;
		break;
	case 3:
		if ((c->efer & EFER_LMA) && (v >> 40))
			tcg_raise(c, EXC_GP, 0);
		c->cr3 = v;
		tcg_tlb_flush(c, false);
		break;
	case 4:
		if (v & ~CR4_OK)
			tcg_raise(c, EXC_GP, 0);
		if ((c->efer & EFER_LMA) && !(v & CR4_PAE))
			tcg_raise(c, EXC_GP, 0);
		if ((v ^ c->cr4) & (CR4_PGE | CR4_PAE | CR4_PSE))
			tcg_tlb_flush(c, true);
		c->cr4 = v;
		break;
	case 8:
		if (v >> 4)
			tcg_raise(c, EXC_GP, 0);
		if (tcg_irqchip(c)) {
			irqchip_set_cr8(tcg_irqchip(c), c->index, v);
			__atomic_store_n(&c->irq_hint, true, __ATOMIC_RELEASE);
		}
		break;
	}
	tcg_update_mode(c);
}

uint64_t tcg_read_tsc(struct tcg_cpu *c)
{
	struct timespec ts;

	if (tcg_irqchip(c))
		return irqchip_read_tsc(tcg_irqchip(c)) + c->tsc_offset;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 2000000000ull + (uint64_t)ts.tv_nsec * 2 + c->tsc_offset;
}

static bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* 0: ok; -1: #GP */
int tcg_rdmsr(struct tcg_cpu *c, uint32_t msr, uint64_t *v)
{
	struct irqchip *ic = tcg_irqchip(c);

	switch (msr) {
	case 0x10: *v = tcg_read_tsc(c); break;
	case 0x1b: *v = ic ? irqchip_get_apic_base(ic, c->index) : c->apic_base; break;
	/*
	 * Feature control, locked with nothing enabled, as firmware leaves it
	 * on a CPU without VMX/SMX; unlocked, Linux would try to lock it.
	 */
	case 0x3a: *v = 1; break;
	case 0x8b: *v = 0; break;				/* microcode revision */
	case 0xfe: *v = 0x508; break;				/* MTRRcap: 8 var, fixed, WC */
	case 0x174: *v = c->sysenter_cs; break;
	case 0x175: *v = c->sysenter_esp; break;
	case 0x176: *v = c->sysenter_eip; break;
	case 0x1a0: *v = c->misc_enable; break;
	case 0x200 ... 0x20f: *v = c->mtrr_var[msr - 0x200]; break;
	case 0x250: *v = c->mtrr_fixed[0]; break;
	case 0x258: case 0x259: *v = c->mtrr_fixed[1 + msr - 0x258]; break;
	case 0x268 ... 0x26f: *v = c->mtrr_fixed[3 + msr - 0x268]; break;
	case 0x277: *v = c->pat; break;
	case 0x2ff: *v = c->mtrr_def; break;
	case 0xc0000080: *v = c->efer; break;
	case 0xc0000081: *v = c->star; break;
	case 0xc0000082: *v = c->lstar; break;
	case 0xc0000083: *v = c->cstar; break;
	case 0xc0000084: *v = c->sfmask; break;
	case 0xc0000100: *v = c->seg[S_FS].base; break;
	case 0xc0000101: *v = c->seg[S_GS].base; break;
	case 0xc0000102: *v = c->kernel_gs_base; break;
	case 0xc0000103: *v = c->tsc_aux; break;
	default:
		log_once("tcg: rdmsr of unknown MSR %#x", msr);
		return -1;
	}
	return 0;
}

int tcg_wrmsr(struct tcg_cpu *c, uint32_t msr, uint64_t v)
{
	struct irqchip *ic = tcg_irqchip(c);

	switch (msr) {
	case 0x10: c->tsc_offset += v - tcg_read_tsc(c); break;
	case 0x1b:
		if (ic)
			return irqchip_set_apic_base(ic, c->index, v) ? -1 : 0;
		c->apic_base = v;
		break;
	case 0x8b: break;
	case 0x174: c->sysenter_cs = v & 0xffff; break;
	case 0x175: if (!canonical(v)) return -1; c->sysenter_esp = v; break;
	case 0x176: if (!canonical(v)) return -1; c->sysenter_eip = v; break;
	case 0x1a0: c->misc_enable = v; break;
	case 0x200 ... 0x20f: c->mtrr_var[msr - 0x200] = v; break;
	case 0x250: c->mtrr_fixed[0] = v; break;
	case 0x258: case 0x259: c->mtrr_fixed[1 + msr - 0x258] = v; break;
	case 0x268 ... 0x26f: c->mtrr_fixed[3 + msr - 0x268] = v; break;
	case 0x277: c->pat = v; break;
	case 0x2ff: c->mtrr_def = v; break;
	case 0xc0000080: {
		uint64_t ok = EFER_SCE | EFER_LME | EFER_NXE;

		if (v & ~(ok | EFER_LMA))
			return -1;
		if ((c->cr0 & CR0_PG) && ((v ^ c->efer) & EFER_LME))
			return -1;
		c->efer = (v & ok) | (c->efer & EFER_LMA);
		tcg_tlb_flush(c, true);
		break;
	}
	case 0xc0000081: c->star = v; break;
	case 0xc0000082: if (!canonical(v)) return -1; c->lstar = v; break;
	case 0xc0000083: if (!canonical(v)) return -1; c->cstar = v; break;
	case 0xc0000084: c->sfmask = (uint32_t)v; break;
	case 0xc0000100: if (!canonical(v)) return -1; c->seg[S_FS].base = v; break;
	case 0xc0000101: if (!canonical(v)) return -1; c->seg[S_GS].base = v; break;
	case 0xc0000102: if (!canonical(v)) return -1; c->kernel_gs_base = v; break;
	case 0xc0000103: c->tsc_aux = (uint32_t)v; break;
	default:
		log_once("tcg: wrmsr of unknown MSR %#x", msr);
		return -1;
	}
	return 0;
}

/* CPUID feature bits, by what is implemented. */
#define CPUID_1_EDX ((1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | \
		     (1u << 8) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 15) | \
		     (1u << 16) | (1u << 19) | (1u << 23) | (1u << 24) | (1u << 25) | \
		     (1u << 26))	/* FPU PSE TSC MSR PAE CX8 SEP MTRR PGE CMOV PAT \
				 * CLFSH MMX FXSR SSE SSE2 */
#define CPUID_1_EDX_APIC (1u << 9)
#define CPUID_1_EDX_HTT (1u << 28)	/* more than one logical processor a package */
#define CPUID_1_ECX ((1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | \
		     (1u << 23) | (1u << 31))	/* SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT hv */
#define CPUID_X1_EDX ((1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29))
#define CPUID_X1_ECX ((1u << 0) | (1u << 5))

static void brand(uint32_t r[4], unsigned part)
{
	static const char name[48] = "vireo TCG x86-64 processor";

	memcpy(r, name + 16 * part, 16);
}

void tcg_cpuid(struct tcg_cpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	static const struct cpu_topology one = { 1, 1, 1 };
	const struct cpu_topology *topo = c->m && c->m->cfg.topo.sockets ? &c->m->cfg.topo : &one;
	uint32_t apic_id = c->v ? c->v->apic_id : c->index;
	unsigned span = cpu_topology_package_span(topo);

	r[0] = r[1] = r[2] = r[3] = 0;
	switch (leaf) {
	case 0:
		r[0] = 0xb;
		memcpy(&r[1], "Genu", 4);
		memcpy(&r[3], "ineI", 4);
		memcpy(&r[2], "ntel", 4);
		break;
	case 1:
		r[0] = 0x000606f1;	/* family 6 */
		r[1] = (apic_id << 24) | (span << 16) | (8u << 8);
		r[2] = CPUID_1_ECX;
		r[3] = CPUID_1_EDX | (tcg_irqchip(c) ? CPUID_1_EDX_APIC : 0) |
		       (span > 1 ? CPUID_1_EDX_HTT : 0);
		break;
	case 7:
		break;
	case 0xb:
		cpu_topology_leaf(topo, apic_id, sub, r);	/* the -smp topology */
		break;
	case 0x80000000:
		r[0] = 0x80000008;
		break;
	case 0x80000001:
		r[2] = CPUID_X1_ECX;
		r[3] = CPUID_X1_EDX;
		break;
	case 0x80000002: case 0x80000003: case 0x80000004:
		brand(r, leaf - 0x80000002);
		break;
	case 0x80000008:
		r[0] = 0x3028;		/* 48 linear, 40 physical address bits */
		break;
	}
	if (c->m)
		cpu_model_filter(&c->m->cfg.cpu, leaf, sub, r);	/* -cpu max,-F */
}
