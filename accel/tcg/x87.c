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

#include "accel/tcg/sse.h"

#define SW_IE 0x0001
#define SW_DE 0x0002
#define SW_ZE 0x0004
#define SW_SF 0x0040
#define SW_ES 0x0080
#define SW_C0 0x0100
#define SW_C1 0x0200
#define SW_C2 0x0400
#define SW_C3 0x4000
#define SW_B 0x8000
#define SW_CC (SW_C0 | SW_C1 | SW_C2 | SW_C3)

static uint16_t host_sw(void)
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

struct x87 {
	struct tcg_cpu *c;
	uint16_t flags;		/* exception bits and C1 of this instruction */
	bool ud;		/* not an x87 instruction this CPU has */
	bool keep_c1;		/* fcomi: C1 changes only on stack underflow */
};

static unsigned phys(const struct tcg_cpu *c, int i)
{
	return (c->ftop + i) & 7;
}

static bool is_empty(const struct tcg_cpu *c, int i)
{
	return ((c->ftw_full >> (2 * phys(c, i))) & 3) == 3;
}

static void set_tag(struct tcg_cpu *c, int i, unsigned tag)
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
	uint16_t f = x->flags | (host_sw() & 0x3f);

	host_cw(0x37f);
	if (!x->keep_c1 || (f & SW_SF))
		c->fsw &= ~SW_C1;
	c->fsw |= f;
	if (f & ~c->fcw & 0x3f)
		c->fsw |= SW_ES | SW_B;
}

/* Before the operation: true if a pre-computation exception is unmasked
 * (the destination then stays as it was). */
static bool pre_fault(const struct x87 *x)
{
	return (x->flags | (host_sw() & (SW_IE | SW_DE | SW_ZE))) & ~x->c->fcw & (SW_IE | SW_DE | SW_ZE);
}

static long double *reg(struct tcg_cpu *c, int i)
{
	return &c->st[phys(c, i)];
}

/* Read ST(i); an empty register is a stack underflow (indefinite). */
static long double get(struct x87 *x, int i)
{
	if (is_empty(x->c, i)) {
		x->flags |= SW_IE | SW_SF;
		return indefinite();
	}
	return *reg(x->c, i);
}

static void put(struct x87 *x, int i, long double v)
{
	*reg(x->c, i) = v;
	set_tag(x->c, i, 0);
}

static void push(struct x87 *x, long double v)
{
	struct tcg_cpu *c = x->c;

	if (!is_empty(c, -1)) {
		x->flags |= SW_IE | SW_SF | SW_C1;
		if (!(c->fcw & SW_IE))
			return;
		v = indefinite();
	}
	c->ftop = (c->ftop - 1) & 7;
	put(x, 0, v);
}

static void pop(struct tcg_cpu *c)
{
	set_tag(c, 0, 3);
	c->ftop = (c->ftop + 1) & 7;
}

/* Loads from memory in the format of the opcode. */
enum { FM_F32, FM_F64, FM_F80, FM_I16, FM_I32, FM_I64, FM_BCD };

static long double load_mem(struct x87 *x, const struct uop *u, int fmt)
{
	struct tcg_cpu *c = x->c;
	uint64_t off = c->t[u->a];
	volatile long double v = 0;

	switch (fmt) {
	case FM_F32: {
		uint32_t b = tcg_load(c, u->x, off, 4);
		volatile float f;

		memcpy((void *)&f, &b, 4);
		v = f;
		break;
	}
	case FM_F64: {
		uint64_t b = tcg_load(c, u->x, off, 8);
		volatile double d;

		memcpy((void *)&d, &b, 8);
		v = d;
		break;
	}
	case FM_F80: {
		uint64_t m = tcg_load(c, u->x, off, 8);
		uint16_t e = tcg_load(c, u->x, off + 8, 2);
		uint8_t raw[16] = { 0 };
		long double t;

		memcpy(raw, &m, 8);
		memcpy(raw + 8, &e, 2);
		memcpy(&t, raw, sizeof(t));
		v = t;
		break;
	}
	case FM_I16: v = (int16_t)tcg_load(c, u->x, off, 2); break;
	case FM_I32: v = (int32_t)tcg_load(c, u->x, off, 4); break;
	case FM_I64: v = (int64_t)tcg_load(c, u->x, off, 8); break;
	case FM_BCD: {
		uint64_t lo = tcg_load(c, u->x, off, 8);
		uint16_t hi = tcg_load(c, u->x, off + 8, 2);
		long double n = 0;

		for (int k = 8; k >= 0; k--) {
			unsigned byte = k == 8 ? hi & 0xff : (lo >> (8 * k)) & 0xff;

			n = n * 100 + (byte >> 4) * 10 + (byte & 15);
		}
		v = (hi & 0x8000) ? -n : n;
		break;
	}
	}
	return v;
}

/* fist/fistp: the host rounds under the guest's RC and reports IE
 * (out of range: the integer indefinite), PE and C1. */
static void store_int(struct x87 *x, const struct uop *u, long double v, unsigned bytes)
{
	struct tcg_cpu *c = x->c;
	uint64_t out = 0;
	uint16_t sw;

	if (bytes == 2) {
		uint16_t i;

		asm volatile("fists %0\n\tfnstsw %1" : "=m"(i), "=m"(sw) : "t"(v));
		out = i;
	} else if (bytes == 4) {
		uint32_t i;

		asm volatile("fistl %0\n\tfnstsw %1" : "=m"(i), "=m"(sw) : "t"(v));
		out = i;
	} else {
		asm volatile("fld %%st(0)\n\tfistpll %0\n\tfnstsw %1"
			     : "=m"(out), "=m"(sw) : "t"(v));
	}
	x->flags |= sw & (0x3f | SW_C1);
	if (pre_fault(x))
		return;
	tcg_store(c, u->x, c->t[u->a], bytes, out);
}

static bool store_mem(struct x87 *x, const struct uop *u, long double v, int fmt)
{
	struct tcg_cpu *c = x->c;
	uint64_t off = c->t[u->a];

	switch (fmt) {
	case FM_F32: {
		uint32_t b;
		uint16_t sw;

		asm volatile("fsts %0\n\tfnstsw %1" : "=m"(b), "=m"(sw) : "t"(v));
		x->flags |= sw & (0x3f | SW_C1);
		if (pre_fault(x))
			return false;
		tcg_store(c, u->x, off, 4, b);
		break;
	}
	case FM_F64: {
		uint64_t b;
		uint16_t sw;

		asm volatile("fstl %0\n\tfnstsw %1" : "=m"(b), "=m"(sw) : "t"(v));
		x->flags |= sw & (0x3f | SW_C1);
		if (pre_fault(x))
			return false;
		tcg_store(c, u->x, off, 8, b);
		break;
	}
	case FM_F80: {
		uint8_t raw[16];
		uint64_t m;
		uint16_t e;

		memcpy(raw, &v, sizeof(v));
		memcpy(&m, raw, 8);
		memcpy(&e, raw + 8, 2);
		(void)tcg_lin(c, u->x, off, 10, ACC_W);
		tcg_store(c, u->x, off, 8, m);
		tcg_store(c, u->x, off + 8, 2, e);
		break;
	}
	case FM_I16: store_int(x, u, v, 2); break;
	case FM_I32: store_int(x, u, v, 4); break;
	case FM_I64: store_int(x, u, v, 8); break;
	case FM_BCD: {
		uint8_t bcd[10];
		uint64_t lo;
		uint16_t hi, sw;

		asm volatile("fld %%st(0)\n\tfbstp %0\n\tfnstsw %1"
			     : "=m"(bcd), "=m"(sw) : "t"(v));
		x->flags |= sw & (0x3f | SW_C1);
		if (pre_fault(x))
			return false;
		memcpy(&lo, bcd, 8);
		memcpy(&hi, bcd + 8, 2);
		(void)tcg_lin(c, u->x, off, 10, ACC_W);
		tcg_store(c, u->x, off, 8, lo);
		tcg_store(c, u->x, off + 8, 2, hi);
		break;
	}
	}
	return true;
}

/*
 * The operations whose C1 (rounded up) matters run as host instructions,
 * with the status word read right after them: a later host store would
 * overwrite C1.
 */
#define HOST_OP2(insn, a, b, r, sw) \
	asm volatile(insn "\n\tfnstsw %1" : "=t"(r), "=m"(sw) : "0"(a), "u"(b))
#define HOST_OP1(insn, a, r, sw) \
	asm volatile(insn "\n\tfnstsw %1" : "=t"(r), "=m"(sw) : "0"(a))

/* The arithmetic of the reg field op: 0 add, 1 mul, 4 sub, 5 subr, 6 div,
 * 7 divr (a is the first operand, b the second). */
static long double arith(struct x87 *x, int op, long double a, long double b)
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

static bool snan80(long double v)
{
	uint8_t raw[16];
	uint64_t m;
	uint16_t e;

	memcpy(raw, &v, sizeof(v));
	memcpy(&m, raw, 8);
	memcpy(&e, raw + 8, 2);
	return (e & 0x7fff) == 0x7fff && !(m & (1ull << 62)) && (m << 1);
}

static bool denormal80(long double v)
{
	return fpclassify(v) == FP_SUBNORMAL;
}

/* Compare a with b: C3/C2/C0 (or ZF/PF/CF for fcomi); quiet = fucom. */
static unsigned compare(struct x87 *x, long double a, long double b, bool quiet)
{
	if (isnan(a) || isnan(b)) {
		if (!quiet || snan80(a) || snan80(b))
			x->flags |= SW_IE;
		return SW_C3 | SW_C2 | SW_C0;
	}
	if (denormal80(a) || denormal80(b))
		x->flags |= SW_DE;
	return a < b ? SW_C0 : a == b ? SW_C3 : 0;
}

static unsigned full_tags(const struct tcg_cpu *c)
{
	unsigned tw = 0;

	for (unsigned p = 0; p < 8; p++) {
		unsigned t = (c->ftw_full >> (2 * p)) & 3;

		if (t != 3) {
			long double v = c->st[p];

			t = v == 0 ? 1 : (isnan(v) || isinf(v) || denormal80(v)) ? 2 : 0;
		}
		tw |= t << (2 * p);
	}
	return tw;
}

static uint16_t status(const struct tcg_cpu *c)
{
	return (c->fsw & ~0x3800) | ((c->ftop & 7) << 11);
}

/* fnstenv/fldenv in the protected-mode layouts: 28 bytes (32-bit operand
 * size) or 14 bytes (16-bit). Returns the size. */
static unsigned env_io(struct tcg_cpu *c, const struct uop *u, bool store)
{
	bool wide = u->b != 1;
	unsigned w = wide ? 4 : 2;
	uint64_t off = c->t[u->a];
	uint64_t v[7] = { c->fcw | (wide ? 0xffff0000u : 0), status(c) | (wide ? 0xffff0000u : 0),
			  full_tags(c) | (wide ? 0xffff0000u : 0), (uint32_t)c->fip,
			  wide ? (uint64_t)(c->fop & 0x7ff) << 16 : 0, (uint32_t)c->fdp, 0 };

	if (store) {
		(void)tcg_lin(c, u->x, off, 7 * w, ACC_W);
		for (unsigned k = 0; k < 7; k++)
			tcg_store(c, u->x, off + k * w, w, v[k]);
		return 7 * w;
	}
	for (unsigned k = 0; k < 7; k++)
		v[k] = tcg_load(c, u->x, off + k * w, w);
	c->fcw = v[0] | 0x40;
	c->fsw = v[1];
	c->ftop = (v[1] >> 11) & 7;
	c->ftw_full = 0;
	for (unsigned p = 0; p < 8; p++)
		if (((v[2] >> (2 * p)) & 3) == 3)
			c->ftw_full |= 3u << (2 * p);
	c->fip = v[3];
	c->fop = wide ? (v[4] >> 16) & 0x7ff : 0;
	c->fdp = v[5];
	return 7 * w;
}

static void reg_form(struct x87 *x, unsigned op, unsigned modrm)
{
	struct tcg_cpu *c = x->c;
	unsigned r = (modrm >> 3) & 7, i = modrm & 7, cc;
	long double a, b, v;

	switch (op) {
	case 0:			/* D8: st0 = st0 op st(i) */
		a = get(x, 0);
		b = get(x, i);
		if (r == 2 || r == 3) {
			cc = compare(x, a, b, false);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			if (r == 3)
				pop(c);
			return;
		}
		v = arith(x, r, a, b);
		if (!pre_fault(x))
			put(x, 0, v);
		return;
	case 4: case 6:		/* DC / DE: st(i) = st(i) op st0, DE pops */
		if (op == 6 && modrm == 0xd9) {	/* fcompp */
			cc = compare(x, get(x, 0), get(x, 1), false);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			pop(c);
			pop(c);
			return;
		}
		if (r == 2 || r == 3)
			break;
		a = get(x, i);
		b = get(x, 0);
		v = arith(x, r >= 4 ? r ^ 1 : r, a, b);
		if (!pre_fault(x))
			put(x, i, v);
		if (op == 6)
			pop(c);
		return;
	case 2: case 3:		/* fcmov, fucompp, fucomi, fcomi */
		if (op == 2 && modrm == 0xe9) {
			cc = compare(x, get(x, 0), get(x, 1), true);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			pop(c);
			pop(c);
			return;
		}
		if (r < 4) {
			static const uint8_t cond[4] = { CC_B, CC_E, CC_BE, CC_P };
			bool t = tcg_cond(c, cond[r]);

			if (op == 3)
				t = !t;
			v = get(x, i);
			if (t && !pre_fault(x))
				put(x, 0, v);
			return;
		}
		if (op == 3 && (r == 5 || r == 6)) {
			x->keep_c1 = true;
			cc = compare(x, get(x, 0), get(x, i), r == 5);
			tcg_set_flags(c, (cc & SW_C3 ? F_ZF : 0) | (cc & SW_C2 ? F_PF : 0) |
				      (cc & SW_C0 ? F_CF : 0), F_ARITH);
			return;
		}
		break;
	case 5:			/* DD: ffree, fst/fstp st(i), fucom/fucomp */
		switch (r) {
		case 0: set_tag(c, i, 3); return;
		case 2: case 3:
			v = get(x, 0);
			if (!pre_fault(x))
				put(x, i, v);
			if (r == 3)
				pop(c);
			return;
		case 4: case 5:
			cc = compare(x, get(x, 0), get(x, i), true);
			c->fsw = (c->fsw & ~SW_CC) | cc;
			if (r == 5)
				pop(c);
			return;
		}
		break;
	case 7:			/* DF: fucomip, fcomip */
		if (r == 5 || r == 6) {
			x->keep_c1 = true;
			cc = compare(x, get(x, 0), get(x, i), r == 5);
			tcg_set_flags(c, (cc & SW_C3 ? F_ZF : 0) | (cc & SW_C2 ? F_PF : 0) |
				      (cc & SW_C0 ? F_CF : 0), F_ARITH);
			pop(c);
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
	long double a = get(x, 0), b = get(x, 1), r;
	uint16_t sw;

	if (ieee)
		HOST_OP2("fprem1", a, b, r, sw);
	else
		HOST_OP2("fprem", a, b, r, sw);
	x->flags |= sw & (0x3f | SW_C1);
	c->fsw = (c->fsw & ~SW_CC) | (sw & (SW_C0 | SW_C2 | SW_C3));
	if (!pre_fault(x))
		put(x, 0, r);
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
		v = get(x, i);
		push(x, v);
		return;
	}
	if (modrm < 0xd0) {			/* fxch */
		a = get(x, 0);
		b = get(x, i);
		put(x, 0, b);
		put(x, i, a);
		return;
	}
	switch (modrm) {
	case 0xd0: return;			/* fnop */
	case 0xe0: put(x, 0, -get(x, 0)); return;
	case 0xe1: put(x, 0, fabsl(get(x, 0))); return;
	case 0xe4:
		c->fsw = (c->fsw & ~SW_CC) | compare(x, get(x, 0), 0.0L, false);
		return;
	case 0xe5: {				/* fxam */
		unsigned cc;

		a = *reg(c, 0);
		if (is_empty(c, 0))
			cc = SW_C3 | SW_C0;
		else if (isnan(a))
			cc = SW_C0;
		else if (isinf(a))
			cc = SW_C2 | SW_C0;
		else if (a == 0)
			cc = SW_C3;
		else if (denormal80(a))
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
		push(x, constant(modrm - 0xe8));
		return;
	case 0xf0: {				/* f2xm1 */
		volatile long double t = get(x, 0);

		put(x, 0, expm1l(t * 0.693147180559945309417232121458176568L));
		return;
	}
	case 0xf1: case 0xf9: {			/* fyl2x, fyl2xp1 */
		volatile long double t;

		a = get(x, 0);
		b = get(x, 1);
		t = modrm == 0xf1 ? b * log2l(a) :
				     b * (log1pl(a) / 0.693147180559945309417232121458176568L);
		if (!pre_fault(x)) {
			put(x, 1, t);
			pop(c);
		}
		return;
	}
	case 0xf2:				/* fptan */
		a = get(x, 0);
		if (fabsl(a) >= 0x1p63L) {
			c->fsw |= SW_C2;
			return;
		}
		c->fsw &= ~SW_C2;
		put(x, 0, tanl(a));
		push(x, 1.0L);
		return;
	case 0xf3: {				/* fpatan */
		volatile long double t;

		a = get(x, 0);
		b = get(x, 1);
		t = atan2l(b, a);
		put(x, 1, t);
		pop(c);
		return;
	}
	case 0xf4: {				/* fxtract: exact, by the host */
		uint16_t sw;

		a = get(x, 0);
		asm volatile("fxtract\n\tfnstsw %2" : "=t"(v), "=u"(b), "=m"(sw) : "0"(a));
		x->flags |= sw & (0x3f | SW_C1);
		if (pre_fault(x))
			return;
		put(x, 0, b);
		push(x, v);
		return;
	}
	case 0xf5: prem(x, true); return;
	case 0xf6: c->ftop = (c->ftop - 1) & 7; return;
	case 0xf7: c->ftop = (c->ftop + 1) & 7; return;
	case 0xf8: prem(x, false); return;
	case 0xfa: {
		uint16_t sw;

		a = get(x, 0);
		HOST_OP1("fsqrt", a, v, sw);
		x->flags |= sw & (0x3f | SW_C1);
		if (!pre_fault(x))
			put(x, 0, v);
		return;
	}
	case 0xfb:				/* fsincos */
		a = get(x, 0);
		if (fabsl(a) >= 0x1p63L) {
			c->fsw |= SW_C2;
			return;
		}
		c->fsw &= ~SW_C2;
		put(x, 0, sinl(a));
		push(x, cosl(a));
		return;
	case 0xfc: case 0xfd: {			/* frndint, fscale */
		uint16_t sw;

		a = get(x, 0);
		if (modrm == 0xfc) {
			HOST_OP1("frndint", a, v, sw);
		} else {
			b = get(x, 1);
			HOST_OP2("fscale", a, b, v, sw);
		}
		x->flags |= sw & (0x3f | SW_C1);
		if (!pre_fault(x))
			put(x, 0, v);
		return;
	}
	case 0xfe: case 0xff:			/* fsin, fcos */
		a = get(x, 0);
		if (fabsl(a) >= 0x1p63L) {
			c->fsw |= SW_C2;
			return;
		}
		c->fsw &= ~SW_C2;
		put(x, 0, modrm == 0xfe ? sinl(a) : cosl(a));
		return;
	}
	x->ud = true;
}

static void mem_form(struct x87 *x, const struct uop *u, unsigned op, unsigned r)
{
	static const int arith_fmt[8] = { FM_F32, -1, FM_I32, -1, FM_F64, -1, FM_I16, -1 };
	struct tcg_cpu *c = x->c;
	long double v;

	if (!(op & 1)) {			/* D8, DA, DC, DE: st0 op= m */
		long double m = load_mem(x, u, arith_fmt[op]), a;
		uint16_t ls = host_sw();

		/* A denormal memory operand is reported by the operation,
		 * which reports none next to a NaN. */
		asm volatile("fnclex");
		a = get(x, 0);
		x->flags |= ls & SW_IE;
		if ((ls & SW_DE) && !isnan(a) && !isnan(m))
			x->flags |= SW_DE;

		if (r == 2 || r == 3) {
			c->fsw = (c->fsw & ~SW_CC) | compare(x, a, m, false);
			if (r == 3)
				pop(c);
			return;
		}
		v = arith(x, r, a, m);
		if (!pre_fault(x))
			put(x, 0, v);
		return;
	}
	switch (op << 3 | r) {
	case 1 << 3 | 0: push(x, load_mem(x, u, FM_F32)); return;
	case 5 << 3 | 0: push(x, load_mem(x, u, FM_F64)); return;
	case 3 << 3 | 5: push(x, load_mem(x, u, FM_F80)); return;
	case 3 << 3 | 0: push(x, load_mem(x, u, FM_I32)); return;
	case 7 << 3 | 0: push(x, load_mem(x, u, FM_I16)); return;
	case 7 << 3 | 5: push(x, load_mem(x, u, FM_I64)); return;
	case 7 << 3 | 4: push(x, load_mem(x, u, FM_BCD)); return;
	case 1 << 3 | 2: case 1 << 3 | 3:
		if (store_mem(x, u, get(x, 0), FM_F32) && r == 3)
			pop(c);
		return;
	case 5 << 3 | 2: case 5 << 3 | 3:
		if (store_mem(x, u, get(x, 0), FM_F64) && r == 3)
			pop(c);
		return;
	case 3 << 3 | 7:
		store_mem(x, u, get(x, 0), FM_F80);
		pop(c);
		return;
	case 3 << 3 | 2: case 3 << 3 | 3:
		store_mem(x, u, get(x, 0), FM_I32);
		if (r == 3)
			pop(c);
		return;
	case 7 << 3 | 2: case 7 << 3 | 3:
		store_mem(x, u, get(x, 0), FM_I16);
		if (r == 3)
			pop(c);
		return;
	case 7 << 3 | 7:
		store_mem(x, u, get(x, 0), FM_I64);
		pop(c);
		return;
	case 7 << 3 | 6:
		store_mem(x, u, get(x, 0), FM_BCD);
		pop(c);
		return;
	case 1 << 3 | 4:
		env_io(c, u, false);
		return;
	case 1 << 3 | 6:
		env_io(c, u, true);
		c->fcw |= 0x3f;		/* fnstenv masks every exception */
		return;
	case 5 << 3 | 4: case 5 << 3 | 6: {	/* frstor, fnsave */
		unsigned n = env_io(c, u, r == 6);
		uint64_t off = c->t[u->a] + n;

		for (unsigned k = 0; k < 8; k++) {
			struct uop mu = *u;

			c->t[u->a] = off + 10 * k;
			mu.a = u->a;
			if (r == 6) {
				store_mem(x, &mu, *reg(c, k), FM_F80);
			} else {
				*reg(c, k) = load_mem(x, &mu, FM_F80);
			}
		}
		c->t[u->a] = off - n;
		if (r == 6)
			tcg_fpu_init(c);
		return;
	}
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
		mem_form(&x, u, op, r);
	else if (op == 1)
		d9_reg(&x, modrm);
	else
		reg_form(&x, op, modrm);
	op_end(&x);
	if (x.ud)
		tcg_raise(c, EXC_UD, 0);
}
