/*
 * System instructions: control and debug registers, descriptor tables,
 * lldt/ltr, lar/lsl/verr/verw, invlpg, MSRs, cpuid, rdtsc/rdtscp,
 * syscall/sysret, sysenter/sysexit, swapgs, hlt, cli/sti, clts, lmsw,
 * cache and fence instructions, cmpxchg8b/16b.
 */
#include <string.h>

#include "accel/tcg/decode.h"
#include "irqchip.h"

static void need_cpl0(struct tcg_cpu *c)
{
	if (c->cpl)
		tcg_raise(c, EXC_GP, 0);
}

static void set_flag(struct tcg_cpu *c, uint64_t bit, bool on)
{
	tcg_set_flags(c, on ? bit : 0, bit);
}

static void helper_cli_sti(struct tcg_cpu *c, const struct uop *u)
{
	unsigned iopl = (c->rflags & F_IOPL) >> 12;

	if ((c->cr0 & CR0_PE) && c->cpl > iopl)
		tcg_raise(c, EXC_GP, 0);
	if (u->x && !(c->rflags & F_IF))
		c->shadow = true;	/* sti: interrupts after the next instruction */
	set_flag(c, F_IF, u->x);
}

static void helper_hlt(struct tcg_cpu *c, const struct uop *u)
{
	need_cpl0(c);
	c->halted = true;
}

/* mov to/from CRn and DRn: x = register, b = 1 for the write. */
static void helper_mov_cr(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t v = 0;

	need_cpl0(c);
	if (u->b) {
		tcg_write_cr(c, u->x, c->t[u->a]);
		return;
	}
	switch (u->x) {
	case 0: v = c->cr0; break;
	case 2: v = c->cr2; break;
	case 3: v = c->cr3; break;
	case 4: v = c->cr4; break;
	case 8: v = tcg_irqchip(c) ? irqchip_get_cr8(tcg_irqchip(c), c->index) : 0; break;
	}
	c->t[u->d] = v;
}

static void helper_mov_dr(struct tcg_cpu *c, const struct uop *u)
{
	unsigned r = u->x;

	need_cpl0(c);
	if (r == 4 || r == 5)
		r += 2;		/* aliases of DR6/DR7 without CR4.DE */
	if (u->b) {
		uint64_t v = c->t[u->a];

		if ((r == 6 || r == 7) && (v >> 32))
			tcg_raise(c, EXC_GP, 0);
		c->dr[r] = r == 6 ? (v | 0xffff0ff0) : r == 7 ? (v | 0x400) : v;
	} else {
		c->t[u->d] = r == 6 ? (c->dr[6] | 0xffff0ff0) : r == 7 ? (c->dr[7] | 0x400) :
			     c->dr[r];
	}
}

/* sgdt/sidt/lgdt/lidt: x = segment, T[a] = offset, b = 0 gdt 1 idt,
 * d = 1 for the load; size = operand size. */
static void helper_dt(struct tcg_cpu *c, const struct uop *u)
{
	struct cpu_dtable *t = u->b ? &c->idt : &c->gdt;
	unsigned bbytes = tcg_code64(c) ? 8 : 4;
	uint64_t off = c->t[u->a];

	if (u->d) {
		uint64_t limit, base;

		need_cpl0(c);
		limit = tcg_load(c, u->x, off, 2);
		base = tcg_load(c, u->x, off + 2, bbytes);
		if (u->size == 1 && bbytes == 4)
			base &= 0xffffff;
		if (bbytes == 8 && (uint64_t)((int64_t)(base << 16) >> 16) != base)
			tcg_raise(c, EXC_GP, 0);
		t->limit = limit;
		t->base = base;
		return;
	}
	tcg_store(c, u->x, off + 2, bbytes, bbytes == 4 ? (uint32_t)t->base : t->base);
	tcg_store(c, u->x, off, 2, t->limit);
}

/* lldt / ltr: x = 0 ldt, 1 tr; T[a] = selector. */
static void helper_lldt_ltr(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t sel = c->t[u->a];
	struct cpu_segment *s = u->x ? &c->tr : &c->ldt;
	uint32_t d[2];
	unsigned type;

	need_cpl0(c);
	if (!(sel & ~3) && !u->x) {
		memset(s, 0, sizeof(*s));
		s->unusable = 1;
		return;
	}
	if (!(sel & ~3) || (sel & 4) || !tcg_read_desc(c, sel, d))
		tcg_raise(c, EXC_GP, sel & ~3);
	type = (d[1] >> 8) & 0x1f;
	if (u->x ? (type != 0x09 && type != 0x01) : type != 0x02)
		tcg_raise(c, EXC_GP, sel & ~3);
	if (!(d[1] & (1u << 15)))
		tcg_raise(c, EXC_NP, sel & ~3);
	tcg_desc_to_seg(s, sel, d);
	if (c->efer & EFER_LMA) {
		uint64_t hi = tcg_ld_sys(c, c->gdt.base + (sel & ~7u) + 8, 4);

		s->base |= hi << 32;
	}
	if (u->x) {
		/* Mark the TSS busy in the GDT. */
		d[1] |= 2u << 8;
		tcg_st_sys(c, c->gdt.base + (sel & ~7u) + 4, 4, d[1]);
		s->type |= 2;
	}
}

/* lar/lsl/verr/verw: x = 0 lar, 1 lsl, 2 verr, 3 verw; T[a] = selector,
 * result in T[d] (unchanged if ZF is clear). */
static void helper_lar(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t sel = c->t[u->a];
	uint32_t d[2];
	unsigned type, dpl;
	bool ok, code, conforming;

	if (!(sel & ~3) || !tcg_read_desc(c, sel, d)) {
		set_flag(c, F_ZF, false);
		return;
	}
	type = (d[1] >> 8) & 0xf;
	dpl = (d[1] >> 13) & 3;
	code = (d[1] & (1u << 12)) && (type & 8);
	conforming = code && (type & 4);
	ok = conforming || (dpl >= c->cpl && dpl >= (sel & 3u));
	if (!(d[1] & (1u << 12))) {
		/* system: LDT, TSS (and call gates for lar) */
		static const bool lar_ok[16] = { [1] = 1, [2] = 1, [3] = 1, [9] = 1, [11] = 1 };

		ok = ok && u->x < 2 && lar_ok[type];
	} else if (u->x == 2) {
		ok = (ok || conforming) && (!code || (type & 2));
	} else if (u->x == 3) {
		ok = ok && !code && (type & 2);
	}
	set_flag(c, F_ZF, ok);
	if (!ok || u->x >= 2)
		return;
	if (u->x == 0) {
		c->t[u->d] = d[1] & 0x00f0ff00;
	} else {
		uint32_t limit = (d[0] & 0xffff) | (d[1] & 0xf0000);

		c->t[u->d] = (d[1] & (1u << 23)) ? (limit << 12) | 0xfff : limit;
	}
}

static void helper_lmsw(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t v = c->t[u->a] & 0xf;

	need_cpl0(c);
	/* lmsw can set PE but never clear it */
	tcg_write_cr(c, 0, (c->cr0 & ~0xeull) | v | (c->cr0 & CR0_PE));
}

static void helper_clts(struct tcg_cpu *c, const struct uop *u)
{
	need_cpl0(c);
	c->cr0 &= ~CR0_TS;
}

/* invlpg: T[a] = offset in segment x; no limit or canonical checks. */
static void helper_invlpg(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t base = c->seg[u->x].base;

	need_cpl0(c);
	if (tcg_code64(c) && u->x < S_FS)
		base = 0;
	tcg_tlb_flush_page(c, base + c->t[u->a]);
}

static void helper_smsw(struct tcg_cpu *c, const struct uop *u)
{
	c->t[u->d] = c->cr0 & 0xffffffff;
}

static void helper_priv_nop(struct tcg_cpu *c, const struct uop *u)
{
	need_cpl0(c);
}

static void helper_msr(struct tcg_cpu *c, const struct uop *u)
{
	uint32_t msr = c->gpr[R_RCX];
	uint64_t v;

	need_cpl0(c);
	if (u->x) {
		v = (c->gpr[R_RDX] << 32) | (uint32_t)c->gpr[R_RAX];
		if (tcg_wrmsr(c, msr, v))
			tcg_raise(c, EXC_GP, 0);
		tcg_update_mode(c);
		return;
	}
	if (tcg_rdmsr(c, msr, &v))
		tcg_raise(c, EXC_GP, 0);
	c->gpr[R_RAX] = (uint32_t)v;
	c->gpr[R_RDX] = v >> 32;
}

static void helper_rdtsc(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t tsc;

	if ((c->cr4 & (1ull << 2)) && c->cpl)
		tcg_raise(c, EXC_GP, 0);
	tsc = tcg_read_tsc(c);
	c->gpr[R_RAX] = (uint32_t)tsc;
	c->gpr[R_RDX] = tsc >> 32;
	if (u->x)
		c->gpr[R_RCX] = (uint32_t)c->tsc_aux;
}

static void helper_cpuid(struct tcg_cpu *c, const struct uop *u)
{
	uint32_t r[4];

	tcg_cpuid(c, c->gpr[R_RAX], c->gpr[R_RCX], r);
	c->gpr[R_RAX] = r[0];
	c->gpr[R_RBX] = r[1];
	c->gpr[R_RCX] = r[2];
	c->gpr[R_RDX] = r[3];
}

static void helper_swapgs(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t t = c->seg[S_GS].base;

	need_cpl0(c);
	c->seg[S_GS].base = c->kernel_gs_base;
	c->kernel_gs_base = t;
}

static void flat(struct cpu_segment *s, uint16_t sel, bool code, bool l, unsigned dpl)
{
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->s = 1;
	s->dpl = dpl;
	s->present = 1;
	s->l = l;
	s->db = !l;
	s->g = 1;
	s->avl = 0;
	s->unusable = 0;
}

static void helper_syscall(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t sel = (c->star >> 32) & 0xfffc;

	if (!(c->efer & EFER_SCE) || !tcg_code64(c))
		tcg_raise(c, EXC_UD, 0);
	c->gpr[R_RCX] = c->insn_next;
	c->gpr[R_R11] = tcg_get_flags(c) & ~(uint64_t)F_RF;
	tcg_set_flags(c, 0, c->sfmask | F_RF);
	flat(&c->seg[S_CS], sel, true, true, 0);
	flat(&c->seg[S_SS], sel + 8, false, false, 0);
	c->cpl = 0;
	c->rip = c->lstar;
	c->end_tb = true;
	tcg_update_mode(c);
}

static void helper_sysret(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t sel = (c->star >> 48) & 0xffff;
	bool to64 = u->size == 3;

	if (!(c->efer & EFER_SCE))
		tcg_raise(c, EXC_UD, 0);
	if (!tcg_code64(c) || c->cpl)
		tcg_raise(c, EXC_GP, 0);
	if (to64 && (uint64_t)((int64_t)(c->gpr[R_RCX] << 16) >> 16) != c->gpr[R_RCX])
		tcg_raise(c, EXC_GP, 0);
	flat(&c->seg[S_CS], (to64 ? sel + 16 : sel) | 3, true, to64, 3);
	flat(&c->seg[S_SS], (sel + 8) | 3, false, false, 3);
	c->cpl = 3;
	tcg_set_flags(c, (c->gpr[R_R11] & ~(uint64_t)(F_RF | F_VM)) | RFLAGS_RESERVED1, ~0ull);
	c->rip = to64 ? c->gpr[R_RCX] : (uint32_t)c->gpr[R_RCX];
	c->end_tb = true;
	tcg_update_mode(c);
}

static void helper_sysenter(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t sel = c->sysenter_cs & 0xfffc;
	bool lma = c->efer & EFER_LMA;

	if (!(c->cr0 & CR0_PE) || !sel)
		tcg_raise(c, EXC_GP, 0);
	tcg_set_flags(c, 0, F_IF | F_VM | F_RF);
	flat(&c->seg[S_CS], sel, true, lma, 0);
	flat(&c->seg[S_SS], sel + 8, false, false, 0);
	c->cpl = 0;
	c->rip = lma ? c->sysenter_eip : (uint32_t)c->sysenter_eip;
	c->gpr[R_RSP] = lma ? c->sysenter_esp : (uint32_t)c->sysenter_esp;
	c->end_tb = true;
	tcg_update_mode(c);
}

static void helper_sysexit(struct tcg_cpu *c, const struct uop *u)
{
	uint16_t sel = c->sysenter_cs & 0xfffc;
	bool to64 = u->size == 3;

	if (!(c->cr0 & CR0_PE) || !sel || c->cpl)
		tcg_raise(c, EXC_GP, 0);
	flat(&c->seg[S_CS], (sel + (to64 ? 32 : 16)) | 3, true, to64, 3);
	flat(&c->seg[S_SS], (sel + (to64 ? 40 : 24)) | 3, false, false, 3);
	c->cpl = 3;
	c->rip = to64 ? c->gpr[R_RDX] : (uint32_t)c->gpr[R_RDX];
	c->gpr[R_RSP] = to64 ? c->gpr[R_RCX] : (uint32_t)c->gpr[R_RCX];
	c->end_tb = true;
	tcg_update_mode(c);
}

static bool cas16(uint8_t *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
#if defined(__x86_64__)
	bool ok;

	asm volatile("lock cmpxchg16b %1"
		     : "=@ccz"(ok), "+m"(*(unsigned __int128 *)p), "+a"(*lo), "+d"(*hi)
		     : "b"(nlo), "c"(nhi) : "memory");
	return ok;
#else
#error "cmpxchg16b needs a host 128-bit compare-and-swap"
#endif
}

/* cmpxchg8b / cmpxchg16b m: x = segment, T[a] = offset, size 2 or 3. */
static void helper_cmpxchg8b(struct tcg_cpu *c, const struct uop *u)
{
	unsigned half = u->size == 3 ? 8 : 4, bytes = 2 * half;
	uint64_t m = half == 8 ? ~0ull : 0xffffffffull;
	uint64_t elo = c->gpr[R_RAX] & m, ehi = c->gpr[R_RDX] & m;
	uint64_t nlo = c->gpr[R_RBX] & m, nhi = c->gpr[R_RCX] & m;
	uint64_t off = c->t[u->a], olo, ohi;
	uint8_t *p;
	bool ok;

	if (bytes == 16 && (off & 15))
		tcg_raise(c, EXC_GP, 0);
	p = tcg_lock_hva(c, u->x, off, bytes);
	if (p && bytes == 8) {
		uint64_t e = elo | (ehi << 32);

		ok = __atomic_compare_exchange_n((uint64_t *)p, &e, nlo | (nhi << 32), false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		olo = (uint32_t)e;
		ohi = e >> 32;
	} else if (p) {
		olo = elo;
		ohi = ehi;
		ok = cas16(p, &olo, &ohi, nlo, nhi);
	}
	if (p) {
		/* After the store: a dirty-log sync in between cannot lose it. */
		tcg_dirty_hva(c, p);
	} else {
		pthread_mutex_lock(&c->vm->atomic_lock);
		c->locked_global = true;
		olo = tcg_load(c, u->x, off, half);
		ohi = tcg_load(c, u->x, off + half, half);
		ok = olo == elo && ohi == ehi;
		tcg_store(c, u->x, off, half, ok ? nlo : olo);
		tcg_store(c, u->x, off + half, half, ok ? nhi : ohi);
		c->locked_global = false;
		pthread_mutex_unlock(&c->vm->atomic_lock);
	}
	set_flag(c, F_ZF, ok);
	if (!ok) {
		c->gpr[R_RAX] = olo;
		c->gpr[R_RDX] = ohi;
	}
}

static bool tr_grp7(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned r = i->reg & 7, v;

	if (!i->mem) {
		switch (i->modrm) {
		case 0xf8:		/* swapgs */
			if (i->mode != 3)
				return false;
			gen_helper(t, helper_swapgs, 0, 0, 0, 0, 0, false);
			return true;
		case 0xf9:		/* rdtscp */
			gen_helper(t, helper_rdtsc, 0, 0, 0, 0, 1, false);
			return true;
		}
		if (r == 4) {		/* smsw r */
			v = tcg_tmp(t);
			gen_helper(t, helper_smsw, 0, v, 0, 0, 0, false);
			gen_st_reg(t, i->rm, i->osz, v);
			return true;
		}
		if (r == 6) {
			gen_helper(t, helper_lmsw, 0, 0, gen_ld_rm(t, 1), 0, 0, true);
			return true;
		}
		return false;
	}
	switch (r) {
	case 0: case 1: case 2: case 3:
		gen_helper(t, helper_dt, i->osz, r >= 2, gen_ea(t), r & 1, gen_seg(t), false);
		return true;
	case 4:			/* smsw m16 */
		v = tcg_tmp(t);
		gen_helper(t, helper_smsw, 0, v, 0, 0, 0, false);
		gen_st_rm(t, 1, v);
		return true;
	case 6:
		gen_helper(t, helper_lmsw, 0, 0, gen_ld_rm(t, 1), 0, 0, true);
		return true;
	case 7:
		gen_helper(t, helper_invlpg, 0, 0, gen_ea(t), 0, gen_seg(t), true);
		return true;
	}
	return false;
}

/* Other vCPUs run on other host threads: order stores before loads. */
static void helper_mfence(struct tcg_cpu *c, const struct uop *u)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void helper_sldt_str(struct tcg_cpu *c, const struct uop *u)
{
	c->t[u->d] = u->x ? c->tr.selector : c->ldt.selector;
}

static bool tr_grp6(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned r = i->reg & 7, v;

	if (!(t->flags & TBF_PE) || (t->flags & TBF_VM))
		return false;
	switch (r) {
	case 0: case 1:
		v = tcg_tmp(t);
		gen_helper(t, helper_sldt_str, 0, v, 0, 0, r, false);
		if (i->mem)
			gen_st_rm(t, 1, v);
		else
			gen_st_reg(t, i->rm, i->osz, v);
		return true;
	case 2: case 3:
		gen_helper(t, helper_lldt_ltr, 0, 0, gen_ld_rm(t, 1), 0, r == 3, false);
		return true;
	case 4: case 5:
		gen_helper(t, helper_lar, 0, 0, gen_ld_rm(t, 1), 0, r - 2, false);
		return true;
	}
	return false;
}

static bool tr_crdr(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned n = i->reg, size = i->mode == 3 ? 3 : 2, v;
	bool cr = i->op == 0x120 || i->op == 0x122, write = i->op & 2;

	/* lock mov cr0 is AMD's alias for cr8; not offered. */
	if (cr ? (n != 0 && n != 2 && n != 3 && n != 4 && n != 8) : n > 7)
		return false;
	if (write) {
		v = gen_ld_reg(t, i->rm, size);
		gen_helper(t, cr ? helper_mov_cr : helper_mov_dr, 0, 0, v, 1, n, cr);
	} else {
		v = tcg_tmp(t);
		gen_helper(t, cr ? helper_mov_cr : helper_mov_dr, 0, v, 0, 0, n, false);
		gen_st_reg(t, i->rm, size, v);
	}
	return true;
}

bool tcg_tr_sys(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned v;

	switch (i->op) {
	case 0x100:
		return tr_grp6(t);
	case 0x101:
		return tr_grp7(t);
	case 0x102: case 0x103:
		if (!(t->flags & TBF_PE) || (t->flags & TBF_VM))
			return false;
		v = gen_ld_reg(t, i->reg, i->osz);
		gen_helper(t, helper_lar, 0, v, gen_ld_rm(t, 1), 0, i->op & 1, false);
		gen_st_reg(t, i->reg, i->osz, v);
		return true;
	case 0x120 ... 0x123:
		return tr_crdr(t);
	case 0x105:
		gen_helper(t, helper_syscall, 0, 0, 0, 0, 0, true);
		return true;
	case 0x107:
		gen_helper(t, helper_sysret, i->osz, 0, 0, 0, 0, true);
		return true;
	case 0x134:
		gen_helper(t, helper_sysenter, 0, 0, 0, 0, 0, true);
		return true;
	case 0x135:
		gen_helper(t, helper_sysexit, i->osz, 0, 0, 0, 0, true);
		return true;
	case 0x106:
		gen_helper(t, helper_clts, 0, 0, 0, 0, 0, false);
		return true;
	case 0x108: case 0x109:
		gen_helper(t, helper_priv_nop, 0, 0, 0, 0, 0, false);
		return true;
	case 0x130: case 0x132:
		gen_helper(t, helper_msr, 0, 0, 0, 0, i->op == 0x130, true);
		return true;
	case 0x131:
		gen_helper(t, helper_rdtsc, 0, 0, 0, 0, 0, false);
		return true;
	case 0x1a2:
		gen_helper(t, helper_cpuid, 0, 0, 0, 0, 0, false);
		return true;
	case 0xf4:
		gen_helper(t, helper_hlt, 0, 0, 0, 0, 0, true);
		return true;
	case 0xfa: case 0xfb:
		gen_helper(t, helper_cli_sti, 0, 0, 0, 0, i->op & 1, i->op == 0xfb);
		return true;
	case 0x1ae:		/* fences and clflush; the fxsave group is not here */
		if (!i->mem && (i->reg & 7) == 6) {
			gen_helper(t, helper_mfence, 0, 0, 0, 0, 0, false);
			return true;
		}
		if (!i->mem && (i->reg & 7) >= 5)
			return true;
		if (i->mem && (i->reg & 7) == 7 && !i->p66)
			return true;
		return false;
	case 0x1c7:
		if ((i->reg & 7) != 1 || !i->mem || (i->osz == 3 && i->mode != 3))
			return false;
		gen_helper(t, helper_cmpxchg8b, i->osz == 3 ? 3 : 2, 0, gen_ea(t), 0,
			   gen_seg(t), false);
		return true;
	}
	return false;
}
