/*
 * TCG state for migration: the sections "tcg-cpu" (one per vCPU) and
 * "tcg-vm" (the user-space irqchip, see irqchip_save).
 *
 * A vCPU is saved between two blocks (vcpu_run returned), so no exception
 * or interrupt is half delivered: what is pending lives in the LAPIC/PIC
 * (the VM section) and, for INIT/SIPI not yet taken, here.  RFLAGS travels
 * materialized; the lazy condition-code encoding is this build's business
 * and never enters the stream.  x87/MMX/SSE travel as a 64-bit fxsave
 * image with all sixteen XMM registers, the TSC as the value the guest
 * reads, rebased on the destination's clock.
 *
 * The loader reads every field into a scratch CPU, checks it the way the
 * instructions that write it do (so it takes every state a guest can
 * reach, and no other), and only then installs it: a stream with a bad
 * value is refused with a message naming the field, and the vCPU stays
 * as it was.  RIP is not checked: a branch target is checked when it is
 * fetched, on the destination as on the source.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "accel/tcg/sse.h"
#include "accel/tcg/tcg.h"
#include "irqchip.h"
#include "machine.h"
#include "vcpu.h"
#include "vmstate.h"

#define SEG_REC		23	/* base 8, limit 4, selector 2, 9 attribute bytes */
#define DT_REC		10	/* base 8, limit 2 */
#define RFLAGS_RSVD	(~0x3f7fd7ull)	/* bits 3, 5, 15, 22-63 */
#define APIC_BASE_OK	(0x000ffffffffff000ull | (1ull << 11) | (1ull << 8))

enum { CHK_ANY, CHK_CANON, CHK_U16, CHK_U32, CHK_APIC_BASE };

/*
 * The MSRs TCG keeps, each a u64 field of struct tcg_cpu, with the check
 * wrmsr makes (PAT and MTRRs take any value there, so here too).
 */
static const struct {
	const char *name;
	size_t off;
	unsigned chk;
} msr_fields[] = {
	{ "msr.star", offsetof(struct tcg_cpu, star), CHK_ANY },
	{ "msr.lstar", offsetof(struct tcg_cpu, lstar), CHK_CANON },
	{ "msr.cstar", offsetof(struct tcg_cpu, cstar), CHK_CANON },
	{ "msr.sfmask", offsetof(struct tcg_cpu, sfmask), CHK_U32 },
	{ "msr.kernel-gs-base", offsetof(struct tcg_cpu, kernel_gs_base), CHK_CANON },
	{ "msr.sysenter-cs", offsetof(struct tcg_cpu, sysenter_cs), CHK_U16 },
	{ "msr.sysenter-esp", offsetof(struct tcg_cpu, sysenter_esp), CHK_CANON },
	{ "msr.sysenter-eip", offsetof(struct tcg_cpu, sysenter_eip), CHK_CANON },
	{ "msr.tsc-aux", offsetof(struct tcg_cpu, tsc_aux), CHK_U32 },
	{ "msr.pat", offsetof(struct tcg_cpu, pat), CHK_ANY },
	{ "msr.misc-enable", offsetof(struct tcg_cpu, misc_enable), CHK_ANY },
	{ "msr.apic-base", offsetof(struct tcg_cpu, apic_base), CHK_APIC_BASE },
	{ "msr.mtrr-def-type", offsetof(struct tcg_cpu, mtrr_def), CHK_ANY },
};

static const char *const seg_names[6] = {
	"seg.es", "seg.cs", "seg.ss", "seg.ds", "seg.fs", "seg.gs",
};

static uint64_t *field_u64(struct tcg_cpu *c, size_t off)
{
	return (uint64_t *)((char *)c + off);
}

static bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

static void put_seg(struct vmstate_out *o, const char *name, const struct cpu_segment *s)
{
	uint8_t b[SEG_REC];

	memcpy(b, &s->base, 8);
	memcpy(b + 8, &s->limit, 4);
	memcpy(b + 12, &s->selector, 2);
	b[14] = s->type;
	b[15] = s->present;
	b[16] = s->dpl;
	b[17] = s->db;
	b[18] = s->s;
	b[19] = s->l;
	b[20] = s->g;
	b[21] = s->avl;
	b[22] = s->unusable;
	vmstate_put(o, name, b, sizeof(b));
}

static int get_seg(struct vmstate_in *in, const char *name, struct cpu_segment *s)
{
	uint8_t b[SEG_REC];
	int ret = vmstate_get(in, name, b, sizeof(b));

	if (ret)
		return ret;
	memcpy(&s->base, b, 8);
	memcpy(&s->limit, b + 8, 4);
	memcpy(&s->selector, b + 12, 2);
	s->type = b[14];
	s->present = b[15];
	s->dpl = b[16];
	s->db = b[17];
	s->s = b[18];
	s->l = b[19];
	s->g = b[20];
	s->avl = b[21];
	s->unusable = b[22];
	if (s->type > 15 || s->dpl > 3)
		return vmstate_fail(in, "%s: type %u / DPL %u out of range", name, s->type, s->dpl);
	for (unsigned k = 15; k < SEG_REC; k++)
		if (k != 16 && b[k] > 1)
			return vmstate_fail(in, "%s: attribute byte %u is %u, not a flag", name,
					    k - 14, b[k]);
	return 0;
}

static void put_dt(struct vmstate_out *o, const char *name, const struct cpu_dtable *d)
{
	uint8_t b[DT_REC];

	memcpy(b, &d->base, 8);
	memcpy(b + 8, &d->limit, 2);
	vmstate_put(o, name, b, sizeof(b));
}

static int get_dt(struct vmstate_in *in, const char *name, struct cpu_dtable *d)
{
	uint8_t b[DT_REC];
	int ret = vmstate_get(in, name, b, sizeof(b));

	if (ret)
		return ret;
	memcpy(&d->base, b, 8);
	memcpy(&d->limit, b + 8, 2);
	if (!canonical(d->base))
		return vmstate_fail(in, "%s: base %#llx is not canonical", name,
				    (unsigned long long)d->base);
	return 0;
}

int tcg_state_vcpu_save(struct vcpu *v, struct vmstate_out *o)
{
	struct tcg_cpu *c = v->accel_state;
	uint8_t fx[512];
	bool init;
	int sipi;

	vmstate_put(o, "gpr", c->gpr, sizeof(c->gpr));
	vmstate_put_u64(o, "rip", c->rip);
	vmstate_put_u64(o, "rflags", tcg_get_flags(c));
	vmstate_put_u8(o, "cpl", c->cpl);
	for (unsigned i = 0; i < 6; i++)
		put_seg(o, seg_names[i], &c->seg[i]);
	put_seg(o, "ldtr", &c->ldt);
	put_seg(o, "tr", &c->tr);
	put_dt(o, "gdtr", &c->gdt);
	put_dt(o, "idtr", &c->idt);
	vmstate_put_u64(o, "cr0", c->cr0);
	vmstate_put_u64(o, "cr2", c->cr2);
	vmstate_put_u64(o, "cr3", c->cr3);
	vmstate_put_u64(o, "cr4", c->cr4);
	vmstate_put_u64(o, "efer", c->efer);
	vmstate_put(o, "dr", c->dr, sizeof(c->dr));
	for (unsigned i = 0; i < sizeof(msr_fields) / sizeof(msr_fields[0]); i++)
		vmstate_put_u64(o, msr_fields[i].name, *field_u64(c, msr_fields[i].off));
	vmstate_put(o, "msr.mtrr-fixed", c->mtrr_fixed, sizeof(c->mtrr_fixed));
	vmstate_put(o, "msr.mtrr-var", c->mtrr_var, sizeof(c->mtrr_var));
	vmstate_put_u64(o, "tsc", tcg_read_tsc(c));
	tcg_fx_image(c, fx, 16, true);
	vmstate_put(o, "fxsave", fx, sizeof(fx));
	pthread_mutex_lock(&c->lock);
	init = c->init_req;
	sipi = c->sipi_vector;
	pthread_mutex_unlock(&c->lock);
	vmstate_put_bool(o, "halted", c->halted);
	vmstate_put_bool(o, "interrupt-shadow", c->shadow);
	vmstate_put_bool(o, "nmi-blocked", c->nmi_blocked);
	vmstate_put_bool(o, "wait-sipi", c->wait_sipi);
	vmstate_put_bool(o, "init-pending", init);
	vmstate_put_u16(o, "sipi-pending", sipi < 0 ? 0xffff : (uint16_t)sipi);
	return o->error;
}

static int check_msr(struct vmstate_in *in, const char *name, unsigned chk, uint64_t v)
{
	bool ok = true;

	switch (chk) {
	case CHK_CANON: ok = canonical(v); break;
	case CHK_U16: ok = v <= 0xffff; break;
	case CHK_U32: ok = v <= 0xffffffffull; break;
	case CHK_APIC_BASE: ok = !(v & ~APIC_BASE_OK); break;
	}
	if (!ok)
		return vmstate_fail(in, "%s: value %#llx is not valid", name,
				    (unsigned long long)v);
	return 0;
}

/* Control registers, EFER and the mode they make, as mov to CRn checks them. */
static int check_mode(struct vmstate_in *in, const struct tcg_cpu *t)
{
	const uint64_t efer_ok = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	bool lma = t->efer & EFER_LMA;

	if ((t->cr0 >> 32) || (t->cr0 & ~CR0_FIXED) ||
	    ((t->cr0 & CR0_PG) && !(t->cr0 & CR0_PE)) || ((t->cr0 & CR0_NW) && !(t->cr0 & CR0_CD)))
		return vmstate_fail(in, "cr0: value %#llx is not valid", (unsigned long long)t->cr0);
	if (t->cr4 & ~CR4_OK)
		return vmstate_fail(in, "cr4: value %#llx has bits this CPU does not have",
				    (unsigned long long)t->cr4);
	if (t->efer & ~efer_ok)
		return vmstate_fail(in, "efer: value %#llx has bits this CPU does not have",
				    (unsigned long long)t->efer);
	if (lma != ((t->efer & EFER_LME) && (t->cr0 & CR0_PG)) || (lma && !(t->cr4 & CR4_PAE)))
		return vmstate_fail(in, "efer.LMA does not match EFER.LME, CR0.PG and CR4.PAE");
	if (t->cr3 >> 40)
		return vmstate_fail(in, "cr3: value %#llx is beyond the physical address width",
				    (unsigned long long)t->cr3);
	if ((t->dr[6] | t->dr[7]) >> 32)
		return vmstate_fail(in, "dr6/dr7: bits above 31 are set");
	if (t->rflags & RFLAGS_RSVD || !(t->rflags & RFLAGS_RESERVED1))
		return vmstate_fail(in, "rflags: value %#llx has reserved bits wrong",
				    (unsigned long long)t->rflags);
	if (t->cpl > 3 || (!(t->cr0 & CR0_PE) && t->cpl) || ((t->rflags & F_VM) && t->cpl != 3))
		return vmstate_fail(in, "cpl: %u does not fit the mode", t->cpl);
	for (unsigned i = 0; i < 6; i++)
		if (!canonical(t->seg[i].base))
			return vmstate_fail(in, "%s: base is not canonical", seg_names[i]);
	return 0;
}

/* Everything of the stream into t, checked; c is not touched. */
static int load_into(struct tcg_cpu *t, struct vmstate_in *in, bool *init, int *sipi)
{
	uint8_t fx[512], cpl;
	uint16_t sv;
	int ret;

	if ((ret = vmstate_get(in, "gpr", t->gpr, sizeof(t->gpr))) ||
	    (ret = vmstate_get_u64(in, "rip", &t->rip)) ||
	    (ret = vmstate_get_u64(in, "rflags", &t->rflags)) ||
	    (ret = vmstate_get_u8(in, "cpl", &cpl)))
		return ret;
	t->cpl = cpl;
	for (unsigned i = 0; i < 6; i++)
		if ((ret = get_seg(in, seg_names[i], &t->seg[i])))
			return ret;
	if ((ret = get_seg(in, "ldtr", &t->ldt)) || (ret = get_seg(in, "tr", &t->tr)) ||
	    (ret = get_dt(in, "gdtr", &t->gdt)) || (ret = get_dt(in, "idtr", &t->idt)) ||
	    (ret = vmstate_get_u64(in, "cr0", &t->cr0)) ||
	    (ret = vmstate_get_u64(in, "cr2", &t->cr2)) ||
	    (ret = vmstate_get_u64(in, "cr3", &t->cr3)) ||
	    (ret = vmstate_get_u64(in, "cr4", &t->cr4)) ||
	    (ret = vmstate_get_u64(in, "efer", &t->efer)) ||
	    (ret = vmstate_get(in, "dr", t->dr, sizeof(t->dr))))
		return ret;
	for (unsigned i = 0; i < sizeof(msr_fields) / sizeof(msr_fields[0]); i++) {
		uint64_t *p = field_u64(t, msr_fields[i].off);

		if ((ret = vmstate_get_u64(in, msr_fields[i].name, p)) ||
		    (ret = check_msr(in, msr_fields[i].name, msr_fields[i].chk, *p)))
			return ret;
	}
	if ((ret = vmstate_get(in, "msr.mtrr-fixed", t->mtrr_fixed, sizeof(t->mtrr_fixed))) ||
	    (ret = vmstate_get(in, "msr.mtrr-var", t->mtrr_var, sizeof(t->mtrr_var))) ||
	    /* t->tsc_offset holds the TSC value itself until install. */
	    (ret = vmstate_get_u64(in, "tsc", &t->tsc_offset)) ||
	    (ret = vmstate_get(in, "fxsave", fx, sizeof(fx))) ||
	    (ret = vmstate_get_bool(in, "halted", &t->halted)) ||
	    (ret = vmstate_get_bool(in, "interrupt-shadow", &t->shadow)) ||
	    (ret = vmstate_get_bool(in, "nmi-blocked", &t->nmi_blocked)) ||
	    (ret = vmstate_get_bool(in, "wait-sipi", &t->wait_sipi)) ||
	    (ret = vmstate_get_bool(in, "init-pending", init)) ||
	    (ret = vmstate_get_u16(in, "sipi-pending", &sv)))
		return ret;
	if (sv != 0xffff && sv > 0xff)
		return vmstate_fail(in, "sipi-pending: vector %#x is not 8 bits", sv);
	*sipi = sv == 0xffff ? -1 : sv;
	if ((ret = check_mode(in, t)))
		return ret;
	if (tcg_fx_restore(t, fx, 16, true)) {
		uint32_t mxcsr;

		memcpy(&mxcsr, fx + 24, 4);
		return vmstate_fail(in, "fxsave: MXCSR %#x has reserved bits", mxcsr);
	}
	return 0;
}

/* Install the checked state of t into the live vCPU c. */
static void install(struct tcg_cpu *c, const struct tcg_cpu *t)
{
	memcpy(c->gpr, t->gpr, sizeof(c->gpr));
	c->rip = t->rip;
	c->rflags = t->rflags;
	/* RFLAGS as read; the lazy flags start from its arithmetic bits. */
	tcg_set_flags(c, t->rflags, ~0ull);
	c->cpl = t->cpl;
	memcpy(c->seg, t->seg, sizeof(c->seg));
	c->ldt = t->ldt;
	c->tr = t->tr;
	c->gdt = t->gdt;
	c->idt = t->idt;
	c->cr0 = t->cr0 | CR0_ET;
	c->cr2 = t->cr2;
	c->cr3 = t->cr3;
	c->cr4 = t->cr4;
	c->efer = t->efer;
	memcpy(c->dr, t->dr, sizeof(c->dr));
	for (unsigned i = 0; i < sizeof(msr_fields) / sizeof(msr_fields[0]); i++)
		*field_u64(c, msr_fields[i].off) = *field_u64((struct tcg_cpu *)t, msr_fields[i].off);
	memcpy(c->mtrr_fixed, t->mtrr_fixed, sizeof(c->mtrr_fixed));
	memcpy(c->mtrr_var, t->mtrr_var, sizeof(c->mtrr_var));
	c->fcw = t->fcw;
	c->fsw = t->fsw;
	c->ftw_full = t->ftw_full;
	c->fop = t->fop;
	c->fip = t->fip;
	c->fdp = t->fdp;
	c->ftop = t->ftop;
	memcpy(c->st, t->st, sizeof(c->st));
	memcpy(c->xmm, t->xmm, sizeof(c->xmm));
	c->mxcsr = t->mxcsr;
	/* The TSC continues from the value the guest last read on the source. */
	c->tsc_offset = 0;
	c->tsc_offset = t->tsc_offset - tcg_read_tsc(c);
	c->halted = t->halted;
	c->shadow = t->shadow;
	c->nmi_blocked = t->nmi_blocked;
	c->wait_sipi = t->wait_sipi;
	c->delivering = -1;
	c->shutdown = false;
	c->brk = false;
	c->end_tb = false;
	c->exit_req = false;
	/* Translations and mappings belong to the state this replaces. */
	tcg_update_mode(c);
	tcg_tlb_flush(c, true);
	tcg_tb_flush(c);
}

int tcg_state_vcpu_load(struct vcpu *v, struct vmstate_in *in)
{
	struct tcg_cpu *c = v->accel_state;
	struct tcg_cpu *t = calloc(1, sizeof(*t));
	bool init = false;
	int sipi = -1, ret;

	if (!t)
		return -ENOMEM;
	ret = load_into(t, in, &init, &sipi);
	if (!ret) {
		install(c, t);
		pthread_mutex_lock(&c->lock);
		c->init_req = init;
		c->sipi_vector = sipi;
		c->irq_hint = true;
		pthread_mutex_unlock(&c->lock);
	}
	free(t);
	return ret;
}

int tcg_state_vm_save(struct machine *m, struct vmstate_out *o)
{
	struct tcg_vm *vm = m->accel_state;

	if (!vm->irqchip)
		return -ENOTSUP;
	return irqchip_save(vm->irqchip, o);
}

int tcg_state_vm_load(struct machine *m, struct vmstate_in *in)
{
	struct tcg_vm *vm = m->accel_state;

	if (!vm->irqchip)
		return vmstate_fail(in, "this machine has no user-space irqchip");
	return irqchip_load(vm->irqchip, in);
}
