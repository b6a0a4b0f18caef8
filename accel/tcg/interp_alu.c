/*
 * Shifts, rotates, double shifts, multiply, divide, bit test and bit
 * scan micro-ops.  Flags follow the SDM's definitions; where the SDM
 * leaves a flag undefined we produce what current Intel cores produce
 * when that is simple (OF of multi-bit shifts as for one bit), and
 * otherwise leave the flag unchanged.
 */
#include "accel/tcg/interp.h"

static uint64_t szf(uint64_t r, unsigned size)
{
	unsigned msb = tcg_bits(size) - 1;
	uint64_t f = 0;

	r = tcg_sized(r, size);
	f |= r == 0 ? F_ZF : 0;
	f |= (r >> msb) & 1 ? F_SF : 0;
	f |= __builtin_parity((unsigned)(r & 0xff)) ? 0 : F_PF;
	return f;
}

/* The flags of a shift, unless the block overwrites them unread (opt.c). */
static void put_flags(struct tcg_cpu *c, const struct uop *u, uint64_t f, uint64_t mask)
{
	if (!(u->aux & UF_NOFLAGS))
		tcg_set_flags(c, f, mask);
}

/* CF and OF of a rotate; the other flags are kept, unless nothing reads
 * them before they are overwritten (UF_KEEP_DEAD). */
static void set_cf_of(struct tcg_cpu *c, const struct uop *u, uint64_t cf, uint64_t of)
{
	uint64_t f = (cf ? F_CF : 0) | (of ? F_OF : 0);

	if (u->aux & UF_NOFLAGS)
		return;
	if (u->aux & UF_KEEP_DEAD) {
		c->cc_op = CC_EFLAGS;
		c->cc_res = f;
		return;
	}
	tcg_set_flags(c, f, F_CF | F_OF);
}

void tcg_exec_shift(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, w = tcg_bits(size), msb = w - 1;
	uint64_t a = tcg_sized(c->t[u->a], size), r = a, f, cf = 0, of;
	unsigned n = UOP_B(c, u) & (size == 3 ? 0x3f : 0x1f), k;

	if (n == 0) {
		c->t[u->d] = a;
		return;
	}

	switch (u->x) {
	case SH_ROL:
		k = n % w;
		r = k ? tcg_sized((a << k) | (a >> (w - k)), size) : a;
		cf = r & 1;
		of = ((r >> msb) & 1) ^ cf;
		set_cf_of(c, u, cf, of);
		break;
	case SH_ROR:
		k = n % w;
		r = k ? tcg_sized((a >> k) | (a << (w - k)), size) : a;
		cf = (r >> msb) & 1;
		of = cf ^ ((r >> (msb - 1)) & 1);
		set_cf_of(c, u, cf, of);
		break;
	case SH_RCL: case SH_RCR: {
		unsigned __int128 v;
		uint64_t cin = tcg_cond(c, CC_B);

		k = size < 2 ? n % (w + 1) : n;
		if (!k) {
			c->t[u->d] = a;
			return;
		}
		/* Rotate the (w + 1)-bit value CF:a. */
		v = ((unsigned __int128)cin << w) | a;
		if (u->x == SH_RCR)
			k = w + 1 - k;
		v = ((v << k) | (v >> (w + 1 - k))) & ((((unsigned __int128)1) << (w + 1)) - 1);
		r = tcg_sized((uint64_t)v, size);
		cf = (uint64_t)(v >> w) & 1;
		if (u->x == SH_RCL)
			of = ((r >> msb) & 1) ^ cf;
		else
			of = ((r >> msb) ^ (r >> (msb - 1))) & 1;
		set_cf_of(c, u, cf, of);
		break;
	}
	case SH_SHL: case SH_SAL:
		r = n < w ? tcg_sized(a << n, size) : 0;
		cf = n <= w ? (a >> (w - n)) & 1 : 0;
		of = ((r >> msb) & 1) ^ cf;
		f = szf(r, size) | (cf ? F_CF : 0) | (of ? F_OF : 0);
		put_flags(c, u, f, F_ARITH);
		break;
	case SH_SHR:
		r = n < w ? a >> n : 0;
		cf = n <= w ? (a >> (n - 1)) & 1 : 0;
		of = n == 1 ? (a >> msb) & 1 : 0;
		f = szf(r, size) | (cf ? F_CF : 0) | (of ? F_OF : 0);
		put_flags(c, u, f, F_ARITH);
		break;
	case SH_SAR: {
		int64_t s = tcg_sext(a, size);

		r = tcg_sized((uint64_t)(s >> (n < 64 ? n : 63)), size);
		cf = (uint64_t)(s >> (n - 1 < 63 ? n - 1 : 63)) & 1;
		f = szf(r, size) | (cf ? F_CF : 0);
		put_flags(c, u, f, F_ARITH);
		break;
	}
	}
	c->t[u->d] = r;
}

/* shld/shrd: T[a] is the destination, T[b] the source of new bits,
 * T[aux] the count; x = 0 for shld. */
void tcg_exec_shd(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, w = tcg_bits(size), msb = w - 1;
	uint64_t a = tcg_sized(c->t[u->a], size), b = tcg_sized(c->t[u->b], size), r, cf, of;
	unsigned n = c->t[u->aux] & (size == 3 ? 0x3f : 0x1f);

	if (n == 0) {
		c->t[u->d] = a;
		return;
	}
	if (n > w) {
		/* 16-bit operands with counts above 16: undefined by the SDM;
		 * shift the 48-bit a:b:a as Intel cores do. */
		unsigned k = n - w;

		r = u->x ? (b >> k) | (a << (w - k)) : (b << k) | (a >> (w - k));
		r = tcg_sized(r, size);
		cf = u->x ? (b >> (k - 1)) & 1 : (b >> (w - k)) & 1;
	} else if (u->x == 0) {
		r = tcg_sized((a << n) | (n == w ? b : b >> (w - n)), size);
		if (n == w)
			r = b;
		cf = (a >> (w - n)) & 1;
	} else {
		r = tcg_sized((n == w ? 0 : a >> n) | (b << (w - n)), size);
		cf = (a >> (n - 1)) & 1;
	}
	of = ((r ^ a) >> msb) & 1;
	tcg_set_flags(c, szf(r, size) | (cf ? F_CF : 0) | (of ? F_OF : 0), F_ARITH);
	c->t[u->d] = r;
}

void tcg_exec_mul(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, w = tcg_bits(size);
	uint64_t a = tcg_sized(c->gpr[R_RAX], size), b = tcg_sized(c->t[u->a], size);
	uint64_t lo, hi;
	bool ovf;

	if (u->x == 0) {
		unsigned __int128 p = (unsigned __int128)a * b;

		lo = tcg_sized((uint64_t)p, size);
		hi = size == 3 ? (uint64_t)(p >> 64) : tcg_sized((uint64_t)(p >> w), size);
		ovf = hi != 0;
	} else {
		__int128 p = (__int128)(int64_t)tcg_sext(a, size) * (__int128)(int64_t)tcg_sext(b, size);

		lo = tcg_sized((uint64_t)p, size);
		hi = size == 3 ? (uint64_t)(p >> 64) : tcg_sized((uint64_t)(p >> w), size);
		ovf = p != (__int128)(int64_t)tcg_sext(lo, size);
	}
	if (size == 0) {
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | lo | (hi << 8);
	} else if (size == 1) {
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | lo;
		c->gpr[R_RDX] = (c->gpr[R_RDX] & ~0xffffull) | hi;
	} else {
		c->gpr[R_RAX] = lo;
		c->gpr[R_RDX] = hi;
	}
	tcg_set_flags(c, szf(lo, size) | (ovf ? F_CF | F_OF : 0), F_ARITH);
}

void tcg_exec_div(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, w = tcg_bits(size);
	uint64_t d = tcg_sized(c->t[u->a], size), lo, hi, q, r;

	if (d == 0)
		tcg_raise(c, EXC_DE, 0);
	if (size == 0) {
		lo = c->gpr[R_RAX] & 0xff;
		hi = (c->gpr[R_RAX] >> 8) & 0xff;
	} else {
		lo = tcg_sized(c->gpr[R_RAX], size);
		hi = tcg_sized(c->gpr[R_RDX], size);
	}
	if (u->x == 0) {
		unsigned __int128 n = ((unsigned __int128)hi << w) | lo, qq;

		qq = n / d;
		if (qq >> w)
			tcg_raise(c, EXC_DE, 0);
		q = (uint64_t)qq;
		r = (uint64_t)(n % d);
	} else {
		unsigned __int128 un = ((unsigned __int128)hi << w) | lo;
		unsigned sh = 128 - 2 * w;
		__int128 n = (__int128)(un << sh) >> sh, qq, sd;

		sd = (int64_t)tcg_sext(d, size);
		/* The one quotient that does not fit even in 128 bits. */
		if (sd == -1 && w == 64 && un == (unsigned __int128)1 << 127)
			tcg_raise(c, EXC_DE, 0);
		qq = n / sd;
		if (qq != (__int128)(int64_t)tcg_sext((uint64_t)qq, size))
			tcg_raise(c, EXC_DE, 0);
		q = tcg_sized((uint64_t)qq, size);
		r = tcg_sized((uint64_t)(n % sd), size);
	}
	if (size == 0) {
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | q | (r << 8);
	} else if (size == 1) {
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | q;
		c->gpr[R_RDX] = (c->gpr[R_RDX] & ~0xffffull) | r;
	} else {
		c->gpr[R_RAX] = q;
		c->gpr[R_RDX] = r;
	}
}

void tcg_exec_imul2(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size;
	__int128 p = (__int128)(int64_t)tcg_sext(c->t[u->a], size) *
		     (__int128)(int64_t)tcg_sext(UOP_B(c, u), size);
	uint64_t lo = tcg_sized((uint64_t)p, size);
	bool ovf = p != (__int128)(int64_t)tcg_sext(lo, size);

	c->t[u->d] = lo;
	if (!(u->aux & UF_NOFLAGS))
		tcg_set_flags(c, szf(lo, size) | (ovf ? F_CF | F_OF : 0), F_ARITH);
}

void tcg_exec_bt(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size;
	uint64_t a = c->t[u->a], bit = 1ull << (c->t[u->b] & (tcg_bits(size) - 1));

	tcg_set_flags(c, (a & bit) ? F_CF : 0, F_CF);
	switch (u->x) {
	case 1: a |= bit; break;
	case 2: a &= ~bit; break;
	case 3: a ^= bit; break;
	}
	c->t[u->d] = tcg_sized(a, size);
}

void tcg_exec_bitscan(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, w = tcg_bits(size);
	uint64_t a = tcg_sized(c->t[u->a], size), r;

	switch (u->op) {
	case U_BSF: case U_BSR:
		if (!a) {
			/* The destination keeps its value. */
			tcg_set_flags(c, F_ZF, F_ZF);
			return;
		}
		r = u->op == U_BSF ? (uint64_t)__builtin_ctzll(a) : 63 - (uint64_t)__builtin_clzll(a);
		tcg_set_flags(c, 0, F_ZF);
		break;
	case U_POPCNT:
		r = __builtin_popcountll(a);
		tcg_set_flags(c, a ? 0 : F_ZF, F_ARITH);
		break;
	case U_TZCNT:
		r = a ? (uint64_t)__builtin_ctzll(a) : w;
		tcg_set_flags(c, (a ? 0 : F_CF) | (r ? 0 : F_ZF), F_CF | F_ZF);
		break;
	default:
		r = a ? (uint64_t)__builtin_clzll(a) - (64 - w) : w;
		tcg_set_flags(c, (a ? 0 : F_CF) | (r ? 0 : F_ZF), F_CF | F_ZF);
		break;
	}
	c->t[u->d] = r;
}
