/*
 * Exceptions and interrupts: the real-mode IVT, 32-bit protected-mode
 * and 64-bit IDT gates, privilege changes with the TSS stack switch, the
 * 64-bit interrupt stack table, the double-fault rules and triple fault,
 * and iret.  Task gates, task switches and virtual-8086 mode are not
 * implemented: they raise #GP (and are logged once).
 */
#include "accel/tcg/tcg.h"
#include "log.h"

static bool has_error_code(int vec)
{
	return vec == EXC_DF || (vec >= EXC_TS && vec <= EXC_PF) || vec == EXC_AC;
}

static bool contributory(int vec)
{
	return vec == EXC_DE || (vec >= EXC_TS && vec <= EXC_GP);
}

/*
 * The EFLAGS image a protected-mode gate pushes.  For a fault-class
 * exception the CPU sets RF in it, so that an IRET back to the faulting
 * instruction does not hit that instruction's breakpoint again; traps
 * (#DB, #BP, #OF), aborts (#DF, #MC) and interrupts push RF as it is.
 */
static uint64_t gate_flags(struct tcg_cpu *c, int vec, int kind)
{
	uint64_t flags = tcg_get_flags(c);

	if (kind == INT_EXC && vec < 32 && vec != EXC_DB && vec != EXC_NMI && vec != EXC_BP &&
	    vec != EXC_OF && vec != EXC_DF && vec != EXC_MC)
		flags |= F_RF;
	return flags;
}

void tcg_exit_tb(struct tcg_cpu *c)
{
	if (c->locked_global) {
		c->locked_global = false;
		pthread_mutex_unlock(&c->vm->atomic_lock);
	}
	c->locked_hva = NULL;
	longjmp(c->jmp, 1);
}

void tcg_raise(struct tcg_cpu *c, int vec, uint32_t err)
{
	int first = c->delivering;

	c->rip = c->insn_eip;
	if (c->locked_global) {
		c->locked_global = false;
		pthread_mutex_unlock(&c->vm->atomic_lock);
	}
	if (first >= 0) {
		if (first == EXC_DF) {
			c->shutdown = true;
			c->delivering = -1;
			tcg_exit_tb(c);
		}
		if ((contributory(first) && contributory(vec)) ||
		    (first == EXC_PF && (contributory(vec) || vec == EXC_PF))) {
			vec = EXC_DF;
			err = 0;
		}
	}
	tcg_do_interrupt(c, vec, has_error_code(vec), err, INT_EXC, c->rip);
	tcg_exit_tb(c);
}

void tcg_raise_pf(struct tcg_cpu *c, uint64_t addr, uint32_t err)
{
	c->cr2 = addr;
	tcg_raise(c, EXC_PF, err);
}

static void real_mode_int(struct tcg_cpu *c, int vec, uint64_t ret_ip)
{
	uint64_t sp = c->gpr[R_RSP], ss = c->seg[S_SS].base;
	uint16_t ip, cs;

	if ((unsigned)vec * 4 + 3 > c->idt.limit)
		tcg_raise(c, EXC_GP, vec * 8 + 2);
	ip = tcg_ld_sys(c, c->idt.base + vec * 4, 2);
	cs = tcg_ld_sys(c, c->idt.base + vec * 4 + 2, 2);
	tcg_st_sys(c, ss + ((sp - 2) & 0xffff), 2, tcg_get_flags(c));
	tcg_st_sys(c, ss + ((sp - 4) & 0xffff), 2, c->seg[S_CS].selector);
	tcg_st_sys(c, ss + ((sp - 6) & 0xffff), 2, ret_ip);
	c->gpr[R_RSP] = (sp & ~0xffffull) | ((sp - 6) & 0xffff);
	tcg_set_flags(c, 0, F_IF | F_TF | F_AC | F_RF);
	tcg_seg_load_real(c, S_CS, cs);
	c->rip = ip;
}

/* Load a code segment for an interrupt gate's target. */
static void gate_target(struct tcg_cpu *c, uint16_t sel, int vec, uint32_t d[2])
{
	unsigned dpl;

	if (!(sel & ~3) || !tcg_read_desc(c, sel, d))
		tcg_raise(c, EXC_GP, sel & ~3);
	dpl = (d[1] >> 13) & 3;
	/* must be a code segment with DPL <= CPL */
	if (!(d[1] & (1u << 12)) || !(d[1] & (1u << 11)) || dpl > c->cpl)
		tcg_raise(c, EXC_GP, sel & ~3);
	if (!(d[1] & (1u << 15)))
		tcg_raise(c, EXC_NP, sel & ~3);
	(void)vec;
}

static void push64(struct tcg_cpu *c, uint64_t *sp, uint64_t v)
{
	*sp -= 8;
	tcg_st_sys(c, *sp, 8, v);
}

static void long_mode_int(struct tcg_cpu *c, int vec, bool has_err, uint32_t err,
			  int kind, uint64_t ret_ip)
{
	uint64_t lo, hi, off, sp, flags = gate_flags(c, vec, kind);
	uint32_t d[2];
	unsigned type, dpl, ist, newcpl;
	uint16_t sel, old_ss = c->seg[S_SS].selector;

	if ((unsigned)vec * 16 + 15 > c->idt.limit)
		tcg_raise(c, EXC_GP, vec * 8 + 2);
	lo = tcg_ld_sys(c, c->idt.base + vec * 16, 8);
	hi = tcg_ld_sys(c, c->idt.base + vec * 16 + 8, 8);
	type = (lo >> 40) & 0xf;
	dpl = (lo >> 45) & 3;
	if (type != 0xe && type != 0xf)
		tcg_raise(c, EXC_GP, vec * 8 + 2);
	if (kind == INT_SOFT && dpl < c->cpl)
		tcg_raise(c, EXC_GP, vec * 8 + 2);
	if (!(lo & (1ull << 47)))
		tcg_raise(c, EXC_NP, vec * 8 + 2);
	sel = (lo >> 16) & 0xffff;
	off = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
	ist = (lo >> 32) & 7;
	gate_target(c, sel, vec, d);
	if (!(d[1] & (1u << 21)) || (d[1] & (1u << 22)))
		tcg_raise(c, EXC_GP, sel & ~3);
	newcpl = (d[1] & (1u << 10)) ? c->cpl : (d[1] >> 13) & 3;
	if (ist)
		sp = tcg_ld_sys(c, c->tr.base + 0x24 + (ist - 1) * 8, 8);
	else if (newcpl < c->cpl)
		sp = tcg_ld_sys(c, c->tr.base + 4 + newcpl * 8, 8);
	else
		sp = c->gpr[R_RSP];
	sp &= ~0xfull;
	{
		uint64_t nsp = sp;

		push64(c, &nsp, old_ss);
		push64(c, &nsp, c->gpr[R_RSP]);
		push64(c, &nsp, flags);
		push64(c, &nsp, c->seg[S_CS].selector);
		push64(c, &nsp, ret_ip);
		if (has_err)
			push64(c, &nsp, err);
		sp = nsp;
	}
	if (newcpl < c->cpl) {
		/* The new SS is a null selector with RPL = new CPL. */
		c->seg[S_SS].selector = newcpl;
		c->seg[S_SS].unusable = 1;
		c->seg[S_SS].dpl = newcpl;
	}
	tcg_desc_to_seg(&c->seg[S_CS], (sel & ~3) | newcpl, d);
	c->cpl = newcpl;
	c->gpr[R_RSP] = sp;
	c->rip = off;
	tcg_set_flags(c, 0, F_TF | F_NT | F_RF | F_VM | (type == 0xe ? F_IF : 0));
	tcg_update_mode(c);
}

static void prot_mode_int(struct tcg_cpu *c, int vec, bool has_err, uint32_t err,
			  int kind, uint64_t ret_ip)
{
	uint64_t lo, flags = gate_flags(c, vec, kind), sp, ssbase, off;
	uint32_t d[2], sd[2];
	unsigned type, dpl, newcpl, bytes, ssz;
	uint16_t sel, nss = 0;
	bool switch_stack;
	struct cpu_segment newss = c->seg[S_SS];

	if ((unsigned)vec * 8 + 7 > c->idt.limit)
		tcg_raise(c, EXC_GP, vec * 8 + 2);
	lo = tcg_ld_sys(c, c->idt.base + vec * 8, 8);
	type = (lo >> 40) & 0x1f;
	dpl = (lo >> 45) & 3;
	if (type != 0xe && type != 0xf && type != 0x6 && type != 0x7) {
		if (type == 0x5)
			log_once("tcg: task gates are not implemented (vector %d)", vec);
		tcg_raise(c, EXC_GP, vec * 8 + 2);
	}
	if (kind == INT_SOFT && dpl < c->cpl)
		tcg_raise(c, EXC_GP, vec * 8 + 2);
	if (!(lo & (1ull << 47)))
		tcg_raise(c, EXC_NP, vec * 8 + 2);
	sel = (lo >> 16) & 0xffff;
	off = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull);
	bytes = (type & 8) ? 4 : 2;
	if (bytes == 2)
		off &= 0xffff;
	gate_target(c, sel, vec, d);
	newcpl = (d[1] & (1u << 10)) ? c->cpl : (d[1] >> 13) & 3;
	switch_stack = newcpl < c->cpl;
	if (switch_stack) {
		uint64_t esp;

		if ((c->tr.type & 7) != 3 && (c->tr.type & 7) != 1)
			tcg_raise(c, EXC_TS, c->tr.selector & ~3);
		esp = tcg_ld_sys(c, c->tr.base + 4 + newcpl * 8, 4);
		nss = tcg_ld_sys(c, c->tr.base + 8 + newcpl * 8, 2);
		if (!(nss & ~3) || (nss & 3) != newcpl || !tcg_read_desc(c, nss, sd))
			tcg_raise(c, EXC_TS, nss & ~3);
		if (((sd[1] >> 13) & 3) != newcpl || (sd[1] & (1u << 11)) || !(sd[1] & (1u << 9)))
			tcg_raise(c, EXC_TS, nss & ~3);
		if (!(sd[1] & (1u << 15)))
			tcg_raise(c, EXC_SS, nss & ~3);
		tcg_desc_to_seg(&newss, nss, sd);
		sp = esp;
	} else {
		sp = c->gpr[R_RSP];
	}
	ssz = newss.db ? 2 : 1;
	ssbase = newss.base;
#define PUSH(v) do {							\
		sp = tcg_sized(sp - bytes, ssz);			\
		tcg_st_sys(c, (ssbase + sp) & 0xffffffffull, bytes, (v));	\
	} while (0)
	if (switch_stack) {
		PUSH(c->seg[S_SS].selector);
		PUSH(c->gpr[R_RSP]);
	}
	PUSH(flags);
	PUSH(c->seg[S_CS].selector);
	PUSH(ret_ip);
	if (has_err)
		PUSH(err);
#undef PUSH
	if (switch_stack)
		c->seg[S_SS] = newss;
	if (ssz == 2)
		c->gpr[R_RSP] = (uint32_t)sp;
	else
		c->gpr[R_RSP] = (c->gpr[R_RSP] & ~0xffffull) | (sp & 0xffff);
	tcg_desc_to_seg(&c->seg[S_CS], (sel & ~3) | newcpl, d);
	c->cpl = newcpl;
	c->rip = off;
	tcg_set_flags(c, 0, F_TF | F_NT | F_RF | F_VM | ((type & 1) ? 0 : F_IF));
	tcg_update_mode(c);
}

/*
 * Deliver vector vec.  kind: INT_HW (external interrupt or NMI), INT_EXC
 * (exception: ret_ip is the faulting or next instruction as the vector
 * requires), INT_SOFT (int n, int3, into: gate DPL is checked).
 */
void tcg_do_interrupt(struct tcg_cpu *c, int vec, bool has_err, uint32_t err,
		      int kind, uint64_t ret_ip)
{
	int saved = c->delivering;

	c->delivering = kind == INT_EXC ? vec : (saved >= 0 ? saved : -1);
	if (kind == INT_EXC && vec == EXC_DF)
		c->delivering = EXC_DF;
	c->halted = false;
	c->shadow = false;
	if (!(c->cr0 & CR0_PE))
		real_mode_int(c, vec, ret_ip);
	else if (c->efer & EFER_LMA)
		long_mode_int(c, vec, has_err && c->cr0 & CR0_PE, err, kind, ret_ip);
	else if (c->rflags & F_VM) {
		log_once("tcg: virtual-8086 mode is not implemented");
		c->shutdown = true;
		__atomic_store_n(&c->chain_stop, 1, __ATOMIC_RELAXED);
	} else
		prot_mode_int(c, vec, has_err, err, kind, ret_ip);
	c->delivering = -1;
}

/* iret: real mode, protected mode (same or outer level) and long mode. */
void tcg_iret(struct tcg_cpu *c, unsigned osz)
{
	unsigned bytes = 1u << osz, oldcpl = c->cpl, iopl = (c->rflags & F_IOPL) >> 12;
	bool lma = c->efer & EFER_LMA, code64 = lma && c->seg[S_CS].l;
	unsigned ssz = code64 ? 3 : c->seg[S_SS].db ? 2 : 1;
	uint64_t sp = c->gpr[R_RSP], ip, cs, fl, nsp = 0, nss = 0, mask;
	bool outer;

	/* iret ends NMI blocking; a pending NMI is looked at again. */
	if (c->nmi_blocked) {
		c->nmi_blocked = false;
		__atomic_store_n(&c->irq_hint, true, __ATOMIC_RELEASE);
	}
#define POP(dst) do {							\
		(dst) = tcg_load(c, S_SS, tcg_sized(sp, ssz), bytes);	\
		sp = tcg_sized(sp + bytes, ssz);			\
	} while (0)
	if (!(c->cr0 & CR0_PE)) {
		POP(ip);
		POP(cs);
		POP(fl);
		c->gpr[R_RSP] = ssz == 2 ? (uint32_t)sp : (c->gpr[R_RSP] & ~0xffffull) | (sp & 0xffff);
		mask = F_ARITH | F_TF | F_IF | F_DF | F_IOPL | F_NT;
		if (bytes == 4)
			mask |= F_AC | F_ID | F_RF;
		tcg_set_flags(c, fl, mask);
		tcg_seg_load_real(c, S_CS, cs);
		c->rip = tcg_sized(ip, osz);
		return;
	}
	if ((c->rflags & F_NT) && !lma) {
		log_once("tcg: iret to a nested task is not implemented");
		tcg_raise(c, EXC_GP, 0);
	}
	POP(ip);
	POP(cs);
	POP(fl);
	cs &= 0xffff;
	if ((fl & F_VM) && oldcpl == 0 && bytes == 4 && !lma) {
		log_once("tcg: iret to virtual-8086 mode is not implemented");
		tcg_raise(c, EXC_GP, 0);
	}
	if ((cs & 3) < oldcpl)
		tcg_raise(c, EXC_GP, cs & ~3);
	outer = (cs & 3) > oldcpl;
	if (outer || code64) {
		POP(nsp);
		POP(nss);
		nss &= 0xffff;
	}
#undef POP
	tcg_load_cs(c, cs, cs & 3);
	if (outer || code64) {
		if (!(nss & ~3) && lma && c->seg[S_CS].l && (cs & 3) != 3) {
			/* Long mode allows a null SS below level 3. */
			c->seg[S_SS].selector = nss;
			c->seg[S_SS].unusable = 1;
			c->seg[S_SS].dpl = cs & 3;
		} else {
			tcg_load_seg(c, S_SS, nss);
		}
		sp = nsp;
		ssz = c->seg[S_CS].l ? 3 : c->seg[S_SS].db ? 2 : 1;
	}
	if (ssz == 3)
		c->gpr[R_RSP] = sp;
	else if (ssz == 2)
		c->gpr[R_RSP] = (uint32_t)sp;
	else
		c->gpr[R_RSP] = (c->gpr[R_RSP] & ~0xffffull) | (sp & 0xffff);
	mask = F_ARITH | F_TF | F_DF | F_NT | F_RF | F_AC | F_ID;
	if (oldcpl <= iopl)
		mask |= F_IF;
	if (oldcpl == 0)
		mask |= F_IOPL | F_VIF | F_VIP;
	if (bytes == 2)
		mask &= 0xffff;
	tcg_set_flags(c, fl, mask);
	if (outer)
		tcg_null_outer_segs(c);
	c->rip = tcg_sized(ip, c->seg[S_CS].l && lma ? 3 : osz);
	tcg_update_mode(c);
}
