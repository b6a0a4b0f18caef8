/*
 * x87: the register stack with tags, loads and stores of every format
 * (single, double, extended, 16/32/64-bit integers, packed BCD),
 * arithmetic in all operand forms, compares (fcom, fucom, fcomi, ficom,
 * ftst, fxam), fcmov, constants, fxch, ffree, fincstp/fdecstp, fchs,
 * fabs, fsqrt, frndint, fscale, fxtract, fprem, fprem1, transcendentals,
 * fldenv/fnstenv/fnsave/frstor, and pending-exception #MF.
 *
 * Values are the host's 80-bit long double (x86 hosts): each operation
 * runs on the host FPU under the guest's precision and rounding control
 * with every exception masked, and the host status word then supplies
 * IE, DE, ZE, OE, UE, PE and C1 exactly.  Stack overflow and underflow
 * are the translator's own.  An unmasked exception sets ES and B and is
 * taken as #MF by the next waiting x87 instruction (CR0.NE is assumed:
 * the legacy IRQ 13 path is not implemented).  Transcendental functions
 * use the host's libm and may differ from hardware in the last bit.
 */
#include <math.h>
#include <string.h>

#include "accel/tcg/x87.h"


uint16_t x87_host_sw(void)
{
	uint16_t sw;

	asm volatile("fnstsw %0" : "=am"(sw));
	return sw;
}

static void host_cw(uint16_t cw)
{
	asm volatile("fnclex; fldcw %0" : : "m"(cw));
}

static long double indefinite(void)
{
	return -NAN;
}


static unsigned phys(const struct tcg_cpu *c, int i)
{
	return (c->ftop + i) & 7;
}

bool x87_is_empty(const struct tcg_cpu *c, int i)
{
	return ((c->ftw_full >> (2 * phys(c, i))) & 3) == 3;
}

void x87_set_tag(struct tcg_cpu *c, int i, unsigned tag)
{
	unsigned p = phys(c, i);

	c->ftw_full = (c->ftw_full & ~(3u << (2 * p))) | (tag << (2 * p));
}

static void op_begin(struct x87 *x, struct tcg_cpu *c)
{
	x->c = c;
	x->flags = 0;
	x->ud = false;
	x->keep_c1 = false;
	host_cw((c->fcw & 0x0f00) | 0x7f);
}

/* Fold host flags in; an unmasked exception becomes pending. */
static void op_end(struct x87 *x)
{
	struct tcg_cpu *c = x->c;
	uint16_t f = x->flags | (x87_host_sw() & 0x3f);

	host_cw(0x37f);
	if (!x->keep_c1 || (f & SW_SF))
		c->fsw &= ~SW_C1;
	c->fsw |= f;
	if (f & ~c->fcw & 0x3f)
		c->fsw |= SW_ES | SW_B;
}

/* Before the operation: true if a pre-computation exception is unmasked
 * (the destination then stays as it was). */
bool x87_pre_fault(const struct x87 *x)
{
	return (x->flags | (x87_host_sw() & (SW_IE | SW_DE | SW_ZE))) & ~x->c->fcw & (SW_IE | SW_DE | SW_ZE);
}

long double *x87_reg(struct tcg_cpu *c, int i)
{
	return &c->st[phys(c, i)];
}

/* Read ST(i); an empty register is a stack underflow (indefinite). */
long double x87_get(struct x87 *x, int i)
{
	if (x87_is_empty(x->c, i)) {
		x->flags |= SW_IE | SW_SF;
		return indefinite();
	}
	return *x87_reg(x->c, i);
}

void x87_put(struct x87 *x, int i, long double v)
{
	*x87_reg(x->c, i) = v;
	x87_set_tag(x->c, i, 0);
}

void x87_push(struct x87 *x, long double v)
{
	struct tcg_cpu *c = x->c;

	if (!x87_is_empty(c, -1)) {
		x->flags |= SW_IE | SW_SF | SW_C1;
		if (!(c->fcw & SW_IE))
			return;
		v = indefinite();
	}
	c->ftop = (c->ftop - 1) & 7;
	x87_put(x, 0, v);
}

void x87_pop(struct tcg_cpu *c)
{
	x87_set_tag(c, 0, 3);
	c->ftop = (c->ftop + 1) & 7;
}

/* The arithmetic of the reg field op: 0 add, 1 mul, 4 sub, 5 subr, 6 div,
 * 7 divr (a is the first operand, b the second). */
long double x87_arith(struct x87 *x, int op, long double a, long double b)
{
	long double r;
	uint16_t sw;

	switch (op) {
	case 0: HOST_OP2("fadd %%st(1), %%st", a, b, r, sw); break;
	case 1: HOST_OP2("fmul %%st(1), %%st", a, b, r, sw); break;
	case 4: HOST_OP2("fsub %%st(1), %%st", a, b, r, sw); break;
	case 5: HOST_OP2("fsubr %%st(1), %%st", a, b, r, sw); break;
	case 6: HOST_OP2("fdiv %%st(1), %%st", a, b, r, sw); break;
	default: HOST_OP2("fdivr %%st(1), %%st", a, b, r, sw); break;
	}
	x->flags |= sw & (0x3f | SW_C1);
	return r;
}

bool x87_snan(long double v)
{
	uint8_t raw[16];
	uint64_t m;
	uint16_t e;

	memcpy(raw, &v, sizeof(v));
	memcpy(&m, raw, 8);
	memcpy(&e, raw + 8, 2);
	return (e & 0x7fff) == 0x7fff && !(m & (1ull << 62)) && (m << 1);
}

bool x87_denormal(long double v)
{
	return fpclassify(v) == FP_SUBNORMAL;
}

/* Compare a with b: C3/C2/C0 (or ZF/PF/CF for fcomi); quiet = fucom. */
unsigned x87_compare(struct x87 *x, long double a, long double b, bool quiet)
{
	if (isnan(a) || isnan(b)) {
		if (!quiet || x87_snan(a) || x87_snan(b))
			x->flags |= SW_IE;
		return SW_C3 | SW_C2 | SW_C0;
	}
	if (x87_denormal(a) || x87_denormal(b))
		x->flags |= SW_DE;
	return a < b ? SW_C0 : a == b ? SW_C3 : 0;
}

unsigned x87_full_tags(const struct tcg_cpu *c)
{
	unsigned tw = 0;

	for (unsigned p = 0; p < 8; p++) {
		unsigned t = (c->ftw_full >> (2 * p)) & 3;

		if (t != 3) {
			long double v = c->st[p];

			t = v == 0 ? 1 : (isnan(v) || isinf(v) || x87_denormal(v)) ? 2 : 0;
		}
		tw |= t << (2 * p);
	}
	return tw;
}

uint16_t x87_status(const struct tcg_cpu *c)
{
	return (c->fsw & ~0x3800) | ((c->ftop & 7) << 11);
}

static void reg_form(struct x87 *x, unsigned op, unsigned modrm)
{
	struct tcg_cpu *c = x->c;
	unsigned r = (modrm >> 3) & 7, i = modrm & 7, cc;
	long double a, b, v;

	switch (op) {
	case 0:			/* D8: st0 = st0 op st(i) */
		a = x87_get(x, 0);
		b = x87_get(x, i);
		if (r == 2 || r == 3) {
			cc = x87_compare(x, a, b, false);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			if (r == 3)
				x87_pop(c);
			return;
		}
		v = x87_arith(x, r, a, b);
		if (!x87_pre_fault(x))
			x87_put(x, 0, v);
		return;
	case 4: case 6:		/* DC / DE: st(i) = st(i) op st0, DE pops */
		if (op == 6 && modrm == 0xd9) {	/* fcompp */
			cc = x87_compare(x, x87_get(x, 0), x87_get(x, 1), false);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			x87_pop(c);
			x87_pop(c);
			return;
		}
		if (r == 2 || r == 3)
			break;
		a = x87_get(x, i);
		b = x87_get(x, 0);
		v = x87_arith(x, r >= 4 ? r ^ 1 : r, a, b);
		if (!x87_pre_fault(x))
			x87_put(x, i, v);
		if (op == 6)
			x87_pop(c);
		return;
	case 2: case 3:		/* fcmov, fucompp, fucomi, fcomi */
		if (op == 2 && modrm == 0xe9) {
			cc = x87_compare(x, x87_get(x, 0), x87_get(x, 1), true);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			x87_pop(c);
			x87_pop(c);
			return;
		}
		if (r < 4) {
			static const uint8_t cond[4] = { CC_B, CC_E, CC_BE, CC_P };
			bool t = tcg_cond(c, cond[r]);

			if (op == 3)
				t = !t;
			v = x87_get(x, i);
			if (t && !x87_pre_fault(x))
				x87_put(x, 0, v);
			return;
		}
		if (op == 3 && (r == 5 || r == 6)) {
			x->keep_c1 = true;
			cc = x87_compare(x, x87_get(x, 0), x87_get(x, i), r == 5);
			tcg_set_flags(c, (cc & SW_C3 ? F_ZF : 0) | (cc & SW_C2 ? F_PF : 0) |
				      (cc & SW_C0 ? F_CF : 0), F_ARITH);
			return;
		}
		break;
	case 5:			/* DD: ffree, fst/fstp st(i), fucom/fucomp */
		switch (r) {
		case 0: x87_set_tag(c, i, 3); return;
		case 2: case 3:
			v = x87_get(x, 0);
			if (!x87_pre_fault(x))
				x87_put(x, i, v);
			if (r == 3)
				x87_pop(c);
			return;
		case 4: case 5:
			cc = x87_compare(x, x87_get(x, 0), x87_get(x, i), true);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			if (r == 5)
				x87_pop(c);
			return;
		}
		break;
	case 7:			/* DF: fucomip, fcomip */
		if (r == 5 || r == 6) {
			x->keep_c1 = true;
			cc = x87_compare(x, x87_get(x, 0), x87_get(x, i), r == 5);
			tcg_set_flags(c, (cc & SW_C3 ? F_ZF : 0) | (cc & SW_C2 ? F_PF : 0) |
				      (cc & SW_C0 ? F_CF : 0), F_ARITH);
			x87_pop(c);
			return;
		}
		break;
	}
	x->ud = true;
}

/* fprem (ieee = false) and fprem1: the host's partial remainder, with
 * C0/C3/C1 = the low quotient bits and C2 = reduction incomplete. */
static void prem(struct x87 *x, bool ieee)
{
	struct tcg_cpu *c = x->c;
	long double a = x87_get(x, 0), b = x87_get(x, 1), r;
	uint16_t sw;

	if (ieee)
		HOST_OP2("fprem1", a, b, r, sw);
	else
		HOST_OP2("fprem", a, b, r, sw);
	x->flags |= sw & (0x3f | SW_C1);
	c->fsw = (c->fsw & ~SW_CC) | (sw & (SW_C0 | SW_C2 | SW_C3));
	if (!x87_pre_fault(x))
		x87_put(x, 0, r);
}

/* The constants, as the host rounds them under the guest's RC. */
static long double constant(unsigned k)
{
	long double v;

	switch (k) {
	case 0: asm volatile("fld1" : "=t"(v)); break;
	case 1: asm volatile("fldl2t" : "=t"(v)); break;
	case 2: asm volatile("fldl2e" : "=t"(v)); break;
	case 3: asm volatile("fldpi" : "=t"(v)); break;
	case 4: asm volatile("fldlg2" : "=t"(v)); break;
	case 5: asm volatile("fldln2" : "=t"(v)); break;
	default: asm volatile("fldz" : "=t"(v)); break;
	}
	return v;
}

static void d9_reg(struct x87 *x, unsigned modrm)
{
	struct tcg_cpu *c = x->c;
	unsigned i = modrm & 7;
	long double a, b, v;

	if (modrm < 0xc8) {			/* fld st(i) */
		v = x87_get(x, i);
		x87_push(x, v);
		return;
	}
	if (modrm < 0xd0) {			/* fxch */
		a = x87_get(x, 0);
		b = x87_get(x, i);
		x87_put(x, 0, b);
		x87_put(x, i, a);
		return;
	}
	switch (modrm) {
	case 0xd0: return;			/* fnop */
	case 0xe0: x87_put(x, 0, -x87_get(x, 0)); return;
	case 0xe1: x87_put(x, 0, fabsl(x87_get(x, 0))); return;
	case 0xe4:
		c->fsw = (c->fsw & ~SW_CC) | x87_compare(x, x87_get(x, 0), 0.0L, false);
		return;
	case 0xe5: {				/* fxam */
		unsigned cc;

		a = *x87_reg(c, 0);
		if (x87_is_empty(c, 0))
			cc = SW_C3 | SW_C0;
		else if (isnan(a))
			cc = SW_C0;
		else if (isinf(a))
			cc = SW_C2 | SW_C0;
		else if (a == 0)
			cc = SW_C3;
		else if (x87_denormal(a))
			cc = SW_C3 | SW_C2;
		else
			cc = SW_C2;
		if (signbit(a))
			x->flags |= SW_C1;
		c->fsw = (c->fsw & ~SW_CC) | cc;
		asm volatile("fnclex");		/* fxam raises nothing */
		return;
	}
	case 0xe8: case 0xe9: case 0xea: case 0xeb: case 0xec: case 0xed: case 0xee:
		x87_push(x, constant(modrm - 0xe8));
		return;
	case 0xf0: {				/* f2xm1 */
		volatile long double t = x87_get(x, 0);

		x87_put(x, 0, expm1l(t * 0.693147180559945309417232121458176568L));
		return;
	}
	case 0xf1: case 0xf9: {			/* fyl2x, fyl2xp1 */
		volatile long double t;

		a = x87_get(x, 0);
		b = x87_get(x, 1);
		t = modrm == 0xf1 ? b * log2l(a) :
				     b * (log1pl(a) / 0.693147180559945309417232121458176568L);
		if (!x87_pre_fault(x)) {
			x87_put(x, 1, t);
			x87_pop(c);
		}
		return;
	}
	case 0xf2:				/* fptan */
		a = x87_get(x, 0);
		if (fabsl(a) >= 0x1p63L) {
			c->fsw |= SW_C2;
			return;
		}
		c->fsw &= ~SW_C2;
		x87_put(x, 0, tanl(a));
		x87_push(x, 1.0L);
		return;
	case 0xf3: {				/* fpatan */
		volatile long double t;

		a = x87_get(x, 0);
		b = x87_get(x, 1);
		t = atan2l(b, a);
		x87_put(x, 1, t);
		x87_pop(c);
		return;
	}
	case 0xf4: {				/* fxtract: exact, by the host */
		uint16_t sw;

		a = x87_get(x, 0);
		asm volatile("fxtract\n\tfnstsw %2" : "=t"(v), "=u"(b), "=m"(sw) : "0"(a));
		x->flags |= sw & (0x3f | SW_C1);
		if (x87_pre_fault(x))
			return;
		x87_put(x, 0, b);
		x87_push(x, v);
		return;
	}
	case 0xf5: prem(x, true); return;
	case 0xf6: c->ftop = (c->ftop - 1) & 7; return;
	case 0xf7: c->ftop = (c->ftop + 1) & 7; return;
	case 0xf8: prem(x, false); return;
	case 0xfa: {
		uint16_t sw;

		a = x87_get(x, 0);
		HOST_OP1("fsqrt", a, v, sw);
		x->flags |= sw & (0x3f | SW_C1);
		if (!x87_pre_fault(x))
			x87_put(x, 0, v);
		return;
	}
	case 0xfb:				/* fsincos */
		a = x87_get(x, 0);
		if (fabsl(a) >= 0x1p63L) {
			c->fsw |= SW_C2;
			return;
		}
		c->fsw &= ~SW_C2;
		x87_put(x, 0, sinl(a));
		x87_push(x, cosl(a));
		return;
	case 0xfc: case 0xfd: {			/* frndint, fscale */
		uint16_t sw;

		a = x87_get(x, 0);
		if (modrm == 0xfc) {
			HOST_OP1("frndint", a, v, sw);
		} else {
			b = x87_get(x, 1);
			HOST_OP2("fscale", a, b, v, sw);
		}
		x->flags |= sw & (0x3f | SW_C1);
		if (!x87_pre_fault(x))
			x87_put(x, 0, v);
		return;
	}
	case 0xfe: case 0xff:			/* fsin, fcos */
		a = x87_get(x, 0);
		if (fabsl(a) >= 0x1p63L) {
			c->fsw |= SW_C2;
			return;
		}
		c->fsw &= ~SW_C2;
		x87_put(x, 0, modrm == 0xfe ? sinl(a) : cosl(a));
		return;
	}
	x->ud = true;
}

/* One x87 instruction: d = opcode & 7, aux >> 8 = ModRM, T[a] offset and
 * x segment of a memory operand, b = operand size (log2 bytes). */
void tcg_x87(struct tcg_cpu *c, const struct uop *u)
{
	unsigned op = u->d, modrm = u->aux >> 8, r = (modrm >> 3) & 7;
	bool mem = modrm < 0xc0;
	bool nowait = mem && (op == 1 || op == 5) && (r == 6);
	struct x87 x;

	if (c->cr0 & (CR0_EM | CR0_TS))
		tcg_raise(c, EXC_NM, 0);
	if (!nowait && (c->fsw & SW_ES))
		tcg_raise(c, EXC_MF, 0);
	if (!nowait) {
		c->fip = c->insn_eip;
		c->fop = ((op << 8) | modrm) & 0x7ff;
		if (mem)
			c->fdp = c->t[u->a];
	}
	op_begin(&x, c);
	if (mem)
		x87_mem_form(&x, u, op, r);
	else if (op == 1)
		d9_reg(&x, modrm);
	else
		reg_form(&x, op, modrm);
	op_end(&x);
	if (x.ud)
		tcg_raise(c, EXC_UD, 0);
}
