/*
 * SSE/SSE2 floating point: add, sub, mul, div, min, max, sqrt, rcp,
 * rsqrt (ps/pd/ss/sd), cmp with the eight predicates, comis/ucomis, and
 * the scalar conversions to and from integers and between float and
 * double.
 *
 * Arithmetic is done in C under <fenv.h>: the rounding mode comes from
 * MXCSR.RC, the exception flags the host sets are folded into MXCSR, and
 * DAZ, FTZ and the denormal-operand flag are applied here.  volatile
 * operands keep the compiler from moving the arithmetic across the fenv
 * calls.  An unmasked exception raises #XM (or #UD without
 * CR4.OSXMMEXCPT) and leaves the destination unchanged.
 */
#include <fenv.h>
#include <math.h>
#include <string.h>

#include "accel/tcg/sse.h"

#define MX_IE 0x01
#define MX_DE 0x02
#define MX_ZE 0x04
#define MX_OE 0x08
#define MX_UE 0x10
#define MX_PE 0x20
#define MX_DAZ 0x40
#define MX_FTZ 0x8000

struct fpctx {
	struct tcg_cpu *c;
	unsigned flags;		/* MX_* raised by this instruction */
};

static void fp_begin(struct fpctx *f, struct tcg_cpu *c)
{
	static const int modes[4] = { FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO };

	f->c = c;
	f->flags = 0;
	feclearexcept(FE_ALL_EXCEPT);
	fesetround(modes[(c->mxcsr >> 13) & 3]);
}

/*
 * End of one element: fold the host's flags into f->flags.  An element
 * whose operation is invalid or divides by zero reports no denormal
 * operand (flags_before: f->flags when the element started).
 */
static void fp_lane(struct fpctx *f, unsigned flags_before)
{
	int e = fetestexcept(FE_ALL_EXCEPT);
	unsigned lane = (f->flags & ~flags_before) |
			(e & FE_INVALID ? MX_IE : 0) | (e & FE_DIVBYZERO ? MX_ZE : 0) |
			(e & FE_OVERFLOW ? MX_OE : 0) | (e & FE_UNDERFLOW ? MX_UE : 0) |
			(e & FE_INEXACT ? MX_PE : 0);

	feclearexcept(FE_ALL_EXCEPT);
	if (lane & (MX_IE | MX_ZE))
		lane &= ~MX_DE;
	f->flags = flags_before | lane;
}

/* Raise an unmasked exception, else return (the result may be written). */
static bool fp_end(struct fpctx *f)
{
	struct tcg_cpu *c = f->c;
	unsigned unmasked;

	fp_lane(f, f->flags);
	fesetround(FE_TONEAREST);
	c->mxcsr |= f->flags;
	unmasked = f->flags & ~(c->mxcsr >> 7) & 0x3f;
	if (unmasked) {
		if (!(c->cr4 & CR4_OSXMMEXCPT))
			tcg_raise(c, EXC_UD, 0);
		tcg_raise(c, EXC_XM, 0);
	}
	return true;
}

/* Operand preparation: DAZ and the denormal-operand flag. */
static float in_f(struct fpctx *f, uint32_t bits)
{
	float v;

	if ((bits & 0x7f800000) == 0 && (bits & 0x7fffff)) {
		if (f->c->mxcsr & MX_DAZ)
			bits &= 0x80000000;
		else
			f->flags |= MX_DE;
	}
	memcpy(&v, &bits, 4);
	return v;
}

static double in_d(struct fpctx *f, uint64_t bits)
{
	double v;

	if ((bits & 0x7ff0000000000000ull) == 0 && (bits & 0xfffffffffffffull)) {
		if (f->c->mxcsr & MX_DAZ)
			bits &= 1ull << 63;
		else
			f->flags |= MX_DE;
	}
	memcpy(&v, &bits, 8);
	return v;
}

/* Results: FTZ turns a tiny result into zero (with UE and PE). */
static uint32_t out_f(struct fpctx *f, float v)
{
	uint32_t bits;

	memcpy(&bits, &v, 4);
	if ((f->c->mxcsr & MX_FTZ) && (bits & 0x7f800000) == 0 && (bits & 0x7fffff) &&
	    (f->c->mxcsr & (MX_UE << 7))) {
		bits &= 0x80000000;
		f->flags |= MX_UE | MX_PE;
	}
	return bits;
}

static uint64_t out_d(struct fpctx *f, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, 8);
	if ((f->c->mxcsr & MX_FTZ) && (bits & 0x7ff0000000000000ull) == 0 &&
	    (bits & 0xfffffffffffffull) && (f->c->mxcsr & (MX_UE << 7))) {
		bits &= 1ull << 63;
		f->flags |= MX_UE | MX_PE;
	}
	return bits;
}

static bool isnan_f(uint32_t b)
{
	return (b & 0x7f800000) == 0x7f800000 && (b & 0x7fffff);
}

static bool isnan_d(uint64_t b)
{
	return (b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0xfffffffffffffull);
}

static bool snan_f(uint32_t b)
{
	return (b & 0x7f800000) == 0x7f800000 && (b & 0x7fffff) && !(b & 0x400000);
}

static bool snan_d(uint64_t b)
{
	return (b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull &&
	       (b & 0xfffffffffffffull) && !(b & 0x8000000000000ull);
}

static uint32_t qnan_f(uint32_t b)
{
	return b | 0x400000;
}

static uint64_t qnan_d(uint64_t b)
{
	return b | 0x8000000000000ull;
}

/* The SSE rules for NaN operands of arithmetic: the first NaN operand,
 * quieted; min/max return the second operand.  Returns true if handled. */
static bool nan_f(struct fpctx *f, unsigned op, uint32_t a, uint32_t b, uint32_t *r)
{
	bool na = isnan_f(a), nb = isnan_f(b);

	/* With a NaN operand there is no denormal-operand flag. */
	if (!na && !nb)
		return false;
	f->flags |= (snan_f(a) || snan_f(b) || op == FO_MIN || op == FO_MAX) ? MX_IE : 0;
	if (op == FO_MIN || op == FO_MAX)
		*r = ((b & 0x7f800000) == 0 && (f->c->mxcsr & MX_DAZ)) ? b & 0x80000000 : b;
	else
		*r = na ? qnan_f(a) : qnan_f(b);
	return true;
}

static bool nan_d(struct fpctx *f, unsigned op, uint64_t a, uint64_t b, uint64_t *r)
{
	bool na = isnan_d(a), nb = isnan_d(b);

	if (!na && !nb)
		return false;
	f->flags |= (snan_d(a) || snan_d(b) || op == FO_MIN || op == FO_MAX) ? MX_IE : 0;
	if (op == FO_MIN || op == FO_MAX)
		*r = ((b & 0x7ff0000000000000ull) == 0 && (f->c->mxcsr & MX_DAZ)) ? b & (1ull << 63) : b;
	else
		*r = na ? qnan_d(a) : qnan_d(b);
	return true;
}

static uint32_t arith_f(struct fpctx *f, unsigned op, uint32_t a, uint32_t b)
{
	volatile float x, y, r;
	uint32_t n;

	if (op == FO_SQRT || op == FO_RCP || op == FO_RSQRT) {
		if (isnan_f(b)) {
			f->flags |= snan_f(b) ? MX_IE : 0;
			return qnan_f(b);
		}
		y = in_f(f, b);
		if (op == FO_SQRT)
			r = sqrtf(y);
		else if (op == FO_RCP)
			r = 1.0f / y;
		else
			r = 1.0f / sqrtf(y);
		if (op != FO_SQRT) {
			/* rcp/rsqrt are approximations that raise nothing */
			feclearexcept(FE_ALL_EXCEPT);
			f->flags &= ~MX_DE;
		}
		return out_f(f, r);
	}
	if (nan_f(f, op, a, b, &n))
		return n;
	x = in_f(f, a);
	y = in_f(f, b);
	switch (op) {
	case FO_ADD: r = x + y; break;
	case FO_SUB: r = x - y; break;
	case FO_MUL: r = x * y; break;
	case FO_DIV: r = x / y; break;
	default: {
		/* min, max: one of the operands after DAZ; no rounding, so no FTZ */
		float v = (op == FO_MIN ? x < y : x > y) ? x : y;
		uint32_t bits;

		memcpy(&bits, &v, 4);
		return bits;
	}
	}
	return out_f(f, r);
}

static uint64_t arith_d(struct fpctx *f, unsigned op, uint64_t a, uint64_t b)
{
	volatile double x, y, r;
	uint64_t n;

	if (op == FO_SQRT) {
		if (isnan_d(b)) {
			f->flags |= snan_d(b) ? MX_IE : 0;
			return qnan_d(b);
		}
		y = in_d(f, b);
		r = sqrt(y);
		return out_d(f, r);
	}
	if (nan_d(f, op, a, b, &n))
		return n;
	x = in_d(f, a);
	y = in_d(f, b);
	switch (op) {
	case FO_ADD: r = x + y; break;
	case FO_SUB: r = x - y; break;
	case FO_MUL: r = x * y; break;
	case FO_DIV: r = x / y; break;
	default: {
		double v = (op == FO_MIN ? x < y : x > y) ? x : y;
		uint64_t bits;

		memcpy(&bits, &v, 8);
		return bits;
	}
	}
	return out_d(f, r);
}

/* cmp predicate p (0-7) on two values; sets IE as the SDM says. */
static bool cmp_pred(struct fpctx *f, unsigned p, bool unord, bool snan, bool lt, bool eq)
{
	bool signaling = p == 1 || p == 2 || p == 5 || p == 6;

	if (snan || (unord && signaling))
		f->flags |= MX_IE;
	switch (p & 7) {
	case 0: return !unord && eq;
	case 1: return !unord && lt;
	case 2: return !unord && (lt || eq);
	case 3: return unord;
	case 4: return unord || !eq;
	case 5: return unord || !lt;
	case 6: return unord || !(lt || eq);
	default: return !unord;
	}
}

/* size: FO_* op | form << 4 (FORM_PS, FORM_PD, FORM_SS, FORM_SD). */
void tcg_sse_fp(struct tcg_cpu *c, const struct uop *u)
{
	unsigned op = u->size & 15, form = u->size >> 4;
	bool dbl = form == FORM_PD || form == FORM_SD, scalar = form >= FORM_SS;
	unsigned lanes = scalar ? 1 : dbl ? 2 : 4, w = dbl ? 8 : 4;
	struct xmm s, *d = &c->xmm[u->d], r = *d;
	struct fpctx f;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, scalar ? w : 16, !scalar);
	fp_begin(&f, c);
	for (unsigned k = 0; k < lanes; k++) {
		uint64_t a = 0, b = 0, v;
		unsigned before = f.flags;

		memcpy(&a, (uint8_t *)d->q + k * w, w);
		memcpy(&b, (uint8_t *)s.q + k * w, w);
		if (op == FO_CMP) {
			bool un, sn, lt, eq;

			if (dbl) {
				un = isnan_d(a) || isnan_d(b);
				sn = snan_d(a) || snan_d(b);
				if (!un) {
					double x = in_d(&f, a), y = in_d(&f, b);

					lt = x < y;
					eq = x == y;
				} else {
					lt = eq = false;
				}
			} else {
				un = isnan_f(a) || isnan_f(b);
				sn = snan_f(a) || snan_f(b);
				if (!un) {
					float x = in_f(&f, a), y = in_f(&f, b);

					lt = x < y;
					eq = x == y;
				} else {
					lt = eq = false;
				}
			}
			v = cmp_pred(&f, u->aux >> 8, un, sn, lt, eq) ? ~0ull : 0;
		} else {
			v = dbl ? arith_d(&f, op, a, b) : arith_f(&f, op, a, b);
		}
		memcpy((uint8_t *)r.q + k * w, &v, w);
		fp_lane(&f, before);
	}
	fp_end(&f);
	*d = r;
}

/* comis (aux bit 8) / ucomis; size 2 float, 3 double. */
void tcg_sse_comis(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm s;
	struct fpctx f;
	bool un, sn, lt, eq;
	uint64_t a = c->xmm[u->d].q[0], b;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, u->size == 3 ? 8 : 4, false);
	b = s.q[0];
	fp_begin(&f, c);
	lt = eq = false;
	if (u->size == 3) {
		un = isnan_d(a) || isnan_d(b);
		sn = snan_d(a) || snan_d(b);
		if (!un) {
			double x = in_d(&f, a), y = in_d(&f, b);

			lt = x < y;
			eq = x == y;
		}
	} else {
		un = isnan_f(a) || isnan_f(b);
		sn = snan_f(a) || snan_f(b);
		if (!un) {
			float x = in_f(&f, (uint32_t)a), y = in_f(&f, (uint32_t)b);

			lt = x < y;
			eq = x == y;
		}
	}
	if (sn || (un && (u->aux >> 8 & 1)))
		f.flags |= MX_IE;
	fp_end(&f);
	tcg_set_flags(c, un ? F_ZF | F_PF | F_CF : lt ? F_CF : eq ? F_ZF : 0, F_ARITH);
}

/* Float or double to a 32- or 64-bit integer: the integer indefinite and
 * IE when it does not fit; rounding by MXCSR or truncation. */
static uint64_t to_int(struct fpctx *f, double v, bool wide, bool trunc_)
{
	double r, lim = wide ? 9223372036854775808.0 : 2147483648.0;
	uint64_t indef = wide ? 1ull << 63 : 0x80000000u;

	static const int modes[4] = { FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO };
	unsigned rc = trunc_ ? 3 : (f->c->mxcsr >> 13) & 3;

	/* Conversions to integers report no denormal operand. */
	f->flags &= ~MX_DE;
	if (isnan(v)) {
		f->flags |= MX_IE;
		return indef;
	}
	/* The compiler's inline rint/floor assume round-to-nearest: pick
	 * the function for the mode and run it in that mode. */
	fesetround(FE_TONEAREST);
	r = rc == 0 ? rint(v) : rc == 1 ? floor(v) : rc == 2 ? ceil(v) : trunc(v);
	fesetround(modes[(f->c->mxcsr >> 13) & 3]);
	feclearexcept(FE_INEXACT);
	if (r >= lim || r < -lim) {
		f->flags |= MX_IE;
		return indef;
	}
	if (r != v)
		f->flags |= MX_PE;
	return wide ? (uint64_t)(int64_t)r : (uint32_t)(int32_t)r;
}

/* The conversions between packed integers in an MMX register (or m64)
 * and floats or doubles in an xmm register. */
static void cvt_mmx(struct tcg_cpu *c, const struct uop *u, unsigned kind)
{
	struct xmm s, *d = &c->xmm[u->d & 15], r;
	struct fpctx f;
	uint64_t in, out = 0;

	tcg_sse_check(c);
	tcg_mmx_check(c);
	if (kind == CV_PI2PS || kind == CV_PI2PD) {
		/* integers from mm or memory to xmm */
		in = u->b == SSE_MEM ? tcg_load(c, u->x, c->t[u->a], 8) : tcg_mm_get(c, u->b & 7);
		r = *d;
		fp_begin(&f, c);
		for (int k = 1; k >= 0; k--) {
			int32_t v = in >> (32 * k);

			if (kind == CV_PI2PS) {
				volatile float x = (float)v;
				uint64_t m = 0xffffffffull << (32 * k);

				r.q[0] = (r.q[0] & ~m) | ((uint64_t)out_f(&f, x) << (32 * k));
			} else {
				volatile double x = v;

				r.q[k] = out_d(&f, x);
			}
		}
		fp_end(&f);
		if (u->b != SSE_MEM || kind == CV_PI2PD)
			tcg_mmx_enter(c);
		*d = r;
		return;
	}
	/* floats or doubles to integers in mm */
	tcg_sse_src(c, u, &s, kind == CV_PD2PI || kind == CV_TPD2PI ? 16 : 8,
		    kind == CV_PD2PI || kind == CV_TPD2PI);
	fp_begin(&f, c);
	for (unsigned k = 0; k < 2; k++) {
		double v = (kind == CV_PD2PI || kind == CV_TPD2PI) ? in_d(&f, s.q[k]) :
			   in_f(&f, (uint32_t)(s.q[0] >> (32 * k)));

		out |= to_int(&f, v, false, kind == CV_TPS2PI || kind == CV_TPD2PI) << (32 * k);
	}
	fp_end(&f);
	tcg_mmx_enter(c);
	tcg_mm_put(c, u->d & 7, out);
}

/* size: CV_* kind | 0x20 for a 64-bit integer operand. */
void tcg_sse_cvt(struct tcg_cpu *c, const struct uop *u)
{
	unsigned kind = u->size & 0x1f;
	bool wide = u->size & 0x20;
	struct xmm s, *d = &c->xmm[u->d], r = *d;
	struct fpctx f;

	if (kind >= CV_PI2PS) {
		cvt_mmx(c, u, kind);
		return;
	}
	tcg_sse_check(c);
	switch (kind) {
	case CV_SI2SS: case CV_SI2SD: {
		int64_t v = wide ? (int64_t)c->t[u->a] : (int32_t)c->t[u->a];

		fp_begin(&f, c);
		if (kind == CV_SI2SS) {
			volatile float x = (float)v;

			r.q[0] = (r.q[0] & ~0xffffffffull) | out_f(&f, x);
		} else {
			volatile double x = (double)v;

			r.q[0] = out_d(&f, x);
		}
		fp_end(&f);
		*d = r;
		return;
	}
	case CV_SS2SI: case CV_TSS2SI: case CV_SD2SI: case CV_TSD2SI: {
		bool dbl = kind == CV_SD2SI || kind == CV_TSD2SI;
		uint64_t v;

		tcg_sse_src(c, u, &s, dbl ? 8 : 4, false);
		fp_begin(&f, c);
		v = to_int(&f, dbl ? in_d(&f, s.q[0]) : in_f(&f, (uint32_t)s.q[0]), wide,
			   kind == CV_TSS2SI || kind == CV_TSD2SI);
		fp_end(&f);
		c->t[u->a] = v;
		return;
	}
	}
	tcg_sse_src(c, u, &s, kind == CV_SS2SD ? 4 : kind == CV_SD2SS ? 8 :
		    (kind == CV_PS2PD || kind == CV_DQ2PD) ? 8 : 16,
		    kind != CV_SS2SD && kind != CV_SD2SS && kind != CV_PS2PD && kind != CV_DQ2PD);
	fp_begin(&f, c);
	switch (kind) {
	case CV_SS2SD: {
		volatile double x = in_f(&f, (uint32_t)s.q[0]);

		r.q[0] = out_d(&f, x);
		break;
	}
	case CV_SD2SS: {
		volatile float x = (float)in_d(&f, s.q[0]);

		r.q[0] = (r.q[0] & ~0xffffffffull) | out_f(&f, x);
		break;
	}
	case CV_PS2PD:
		for (int k = 1; k >= 0; k--) {
			volatile double x = in_f(&f, (uint32_t)(s.q[0] >> (32 * k)));

			r.q[k] = out_d(&f, x);
		}
		break;
	case CV_PD2PS: {
		volatile float x0 = (float)in_d(&f, s.q[0]), x1 = (float)in_d(&f, s.q[1]);

		r.q[0] = out_f(&f, x0) | ((uint64_t)out_f(&f, x1) << 32);
		r.q[1] = 0;
		break;
	}
	case CV_DQ2PS:
		for (unsigned k = 0; k < 4; k++) {
			volatile float x = (float)(int32_t)(s.q[k / 2] >> (32 * (k & 1)));
			uint64_t m = 0xffffffffull << (32 * (k & 1));

			r.q[k / 2] = (r.q[k / 2] & ~m) | ((uint64_t)out_f(&f, x) << (32 * (k & 1)));
		}
		break;
	case CV_PS2DQ: case CV_TPS2DQ:
		for (unsigned k = 0; k < 4; k++) {
			uint64_t v = to_int(&f, in_f(&f, (uint32_t)(s.q[k / 2] >> (32 * (k & 1)))),
					    false, kind == CV_TPS2DQ);
			uint64_t m = 0xffffffffull << (32 * (k & 1));

			r.q[k / 2] = (r.q[k / 2] & ~m) | (v << (32 * (k & 1)));
		}
		break;
	case CV_DQ2PD:
		for (int k = 1; k >= 0; k--) {
			volatile double x = (int32_t)(s.q[0] >> (32 * k));

			r.q[k] = out_d(&f, x);
		}
		break;
	case CV_PD2DQ: case CV_TPD2DQ: {
		uint64_t lo = to_int(&f, in_d(&f, s.q[0]), false, kind == CV_TPD2DQ);
		uint64_t hi = to_int(&f, in_d(&f, s.q[1]), false, kind == CV_TPD2DQ);

		r.q[0] = lo | (hi << 32);
		r.q[1] = 0;
		break;
	}
	}
	fp_end(&f);
	*d = r;
}

/* SSE3 horizontal and alternating arithmetic: size = S3_* | double << 4. */
void tcg_sse3_fp(struct tcg_cpu *c, const struct uop *u)
{
	unsigned kind = u->size & 15;
	bool dbl = u->size >> 4;
	unsigned n = dbl ? 2 : 4, w = dbl ? 8 : 4;
	struct xmm s, *d = &c->xmm[u->d], r;
	uint64_t a[4], b[4];
	struct fpctx f;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, 16, true);
	for (unsigned k = 0; k < n; k++) {
		a[k] = b[k] = 0;
		memcpy(&a[k], (uint8_t *)d->q + k * w, w);
		memcpy(&b[k], (uint8_t *)s.q + k * w, w);
	}
	fp_begin(&f, c);
	for (unsigned k = 0; k < n; k++) {
		uint64_t x, y, v;
		unsigned op, before = f.flags;

		if (kind == S3_ADDSUB) {
			x = a[k];
			y = b[k];
			op = (k & 1) ? FO_ADD : FO_SUB;
		} else {
			/* pairs: the low half from the destination, the high from the source */
			const uint64_t *src = k < n / 2 ? a : b;
			unsigned j = 2 * (k % (n / 2));

			x = src[j];
			y = src[j + 1];
			op = kind == S3_HADD ? FO_ADD : FO_SUB;
		}
		v = dbl ? arith_d(&f, op, x, y) : arith_f(&f, op, (uint32_t)x, (uint32_t)y);
		memcpy((uint8_t *)r.q + k * w, &v, w);
		fp_lane(&f, before);
	}
	fp_end(&f);
	*d = r;
}

/* roundps/pd/ss/sd (SSE4.1): size = FORM_*, aux >> 8 = imm8 (bits 1:0
 * mode unless bit 2 selects MXCSR.RC; bit 3 suppresses PE). */
void tcg_sse41_round(struct tcg_cpu *c, const struct uop *u)
{
	unsigned form = u->size, imm = u->aux >> 8;
	bool dbl = form == FORM_PD || form == FORM_SD, scalar = form >= FORM_SS;
	unsigned lanes = scalar ? 1 : dbl ? 2 : 4, w = dbl ? 8 : 4;
	unsigned rc = (imm & 4) ? (c->mxcsr >> 13) & 3 : imm & 3;
	struct xmm s, *d = &c->xmm[u->d], r = *d;
	struct fpctx f;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, scalar ? w : 16, !scalar);
	fp_begin(&f, c);
	fesetround(FE_TONEAREST);	/* the functions below assume it */
	for (unsigned k = 0; k < lanes; k++) {
		uint64_t a = 0, v;

		memcpy(&a, (uint8_t *)s.q + k * w, w);
		if (dbl ? isnan_d(a) : isnan_f(a)) {
			if (dbl ? snan_d(a) : snan_f(a))
				f.flags |= MX_IE;
			v = dbl ? qnan_d(a) : qnan_f(a);
		} else if (dbl) {
			double x = in_d(&f, a), y;

			y = rc == 0 ? rint(x) : rc == 1 ? floor(x) : rc == 2 ? ceil(x) : trunc(x);
			if (y != x && !(imm & 8))
				f.flags |= MX_PE;
			memcpy(&v, &y, 8);
		} else {
			float x = in_f(&f, (uint32_t)a), y;
			uint32_t b;

			y = rc == 0 ? rintf(x) : rc == 1 ? floorf(x) : rc == 2 ? ceilf(x) : truncf(x);
			if (y != x && !(imm & 8))
				f.flags |= MX_PE;
			memcpy(&b, &y, 4);
			v = b;
		}
		f.flags &= ~MX_DE;	/* rounding reports no denormal operand */
		memcpy((uint8_t *)r.q + k * w, &v, w);
	}
	feclearexcept(FE_ALL_EXCEPT);
	fp_end(&f);
	*d = r;
}

/* dpps / dppd (SSE4.1): size 0 float, 1 double; aux >> 8 = imm8. */
void tcg_sse41_dp(struct tcg_cpu *c, const struct uop *u)
{
	unsigned imm = u->aux >> 8;
	struct xmm s, *d = &c->xmm[u->d], r;
	struct fpctx f;
	unsigned before;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, 16, true);
	fp_begin(&f, c);
	if (u->size == 0) {
		uint32_t p[4];

		for (unsigned k = 0; k < 4; k++) {
			before = f.flags;
			p[k] = ((imm >> (4 + k)) & 1) ?
			       arith_f(&f, FO_MUL, (uint32_t)(d->q[k / 2] >> (32 * (k & 1))),
				       (uint32_t)(s.q[k / 2] >> (32 * (k & 1)))) : 0;
			fp_lane(&f, before);
		}
		/* Each destination element sums in its own order (observed on
		 * hardware, visible only in which NaN propagates): its own
		 * pair first, the other element of each pair first. */
		before = f.flags;
		for (unsigned k = 0; k < 4; k++) {
			unsigned h = k / 2, o = 1 - h, e = k & 1;
			uint32_t mine = arith_f(&f, FO_ADD, p[2 * h + 1 - e], p[2 * h + e]);
			uint32_t other = arith_f(&f, FO_ADD, p[2 * o + 1 - e], p[2 * o + e]);
			uint64_t v = ((imm >> k) & 1) ? arith_f(&f, FO_ADD, mine, other) : 0;
			uint64_t m = 0xffffffffull << (32 * (k & 1));

			r.q[k / 2] = (k & 1 ? r.q[k / 2] : 0);
			r.q[k / 2] = (r.q[k / 2] & ~m) | (v << (32 * (k & 1)));
		}
		fp_lane(&f, before);
	} else {
		uint64_t p[2];

		for (unsigned k = 0; k < 2; k++) {
			before = f.flags;
			p[k] = ((imm >> (4 + k)) & 1) ? arith_d(&f, FO_MUL, d->q[k], s.q[k]) : 0;
			fp_lane(&f, before);
		}
		before = f.flags;
		for (unsigned k = 0; k < 2; k++)
			r.q[k] = ((imm >> k) & 1) ? arith_d(&f, FO_ADD, p[1 - k], p[k]) : 0;
		fp_lane(&f, before);
	}
	fp_end(&f);
	*d = r;
}
