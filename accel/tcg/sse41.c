/*
 * SSE4.1 (the integer and data-movement part) and SSE4.2 (pcmpgtq, crc32,
 * the pcmpestri/pcmpestrm/pcmpistri/pcmpistrm string compares): blends, ptest, sign/zero extensions, pmuldq, packusdw,
 * phminposuw, mpsadbw, extracts and inserts, movntdqa.  The element-wise
 * min/max/compare/multiply forms reuse tcg_sse_int; roundps/pd/ss/sd and
 * dpps/dppd are in sse_fp.c.
 */
#include <string.h>

#include "accel/tcg/sse.h"

static int64_t get(const uint8_t *b, unsigned w, unsigned k, bool sign)
{
	uint64_t v = 0;

	memcpy(&v, b + k * w, w);
	return sign ? (int64_t)tcg_sext(v, __builtin_ctz(w)) : (int64_t)v;
}

static void set(uint8_t *b, unsigned w, unsigned k, uint64_t v)
{
	memcpy(b + k * w, &v, w);
}

/* size: S41_* kind; aux >> 8: imm8. */
void tcg_sse41(struct tcg_cpu *c, const struct uop *u)
{
	unsigned kind = u->size, imm = u->aux >> 8, n;
	struct xmm s, *d = &c->xmm[u->d];
	uint8_t a[16], b[16], r[16], m[16];

	tcg_sse_check(c);
	switch (kind) {
	case S41_PMOVSXBW: case S41_PMOVZXBW: case S41_PMOVSXWD: case S41_PMOVZXWD:
	case S41_PMOVSXDQ: case S41_PMOVZXDQ:
		n = 8;
		break;
	case S41_PMOVSXBD: case S41_PMOVZXBD: case S41_PMOVSXWQ: case S41_PMOVZXWQ:
		n = 4;
		break;
	case S41_PMOVSXBQ: case S41_PMOVZXBQ:
		n = 2;
		break;
	default:
		n = 16;
	}
	tcg_sse_src(c, u, &s, n, n == 16 && kind != S41_MOVNTDQA ? true : kind == S41_MOVNTDQA);
	memcpy(a, d->q, 16);
	memcpy(b, s.q, 16);
	memcpy(m, c->xmm[0].q, 16);
	memset(r, 0, 16);
	switch (kind) {
	case S41_PBLENDVB:
		for (unsigned k = 0; k < 16; k++)
			r[k] = (m[k] & 0x80) ? b[k] : a[k];
		break;
	case S41_BLENDVPS: case S41_BLENDVPD: {
		unsigned w = kind == S41_BLENDVPS ? 4 : 8;

		for (unsigned k = 0; k < 16; k += w)
			memcpy(r + k, (m[k + w - 1] & 0x80) ? b + k : a + k, w);
		break;
	}
	case S41_BLENDPS: case S41_BLENDPD: case S41_PBLENDW: {
		unsigned w = kind == S41_BLENDPS ? 4 : kind == S41_BLENDPD ? 8 : 2;

		for (unsigned k = 0; k < 16 / w; k++)
			memcpy(r + k * w, ((imm >> k) & 1) ? b + k * w : a + k * w, w);
		break;
	}
	case S41_PTEST: {
		uint64_t z = (d->q[0] & s.q[0]) | (d->q[1] & s.q[1]);
		uint64_t cf = (~d->q[0] & s.q[0]) | (~d->q[1] & s.q[1]);

		tcg_set_flags(c, (z ? 0 : F_ZF) | (cf ? 0 : F_CF), F_ARITH);
		return;
	}
	case S41_PMOVSXBW: case S41_PMOVZXBW: case S41_PMOVSXBD: case S41_PMOVZXBD:
	case S41_PMOVSXBQ: case S41_PMOVZXBQ: case S41_PMOVSXWD: case S41_PMOVZXWD:
	case S41_PMOVSXWQ: case S41_PMOVZXWQ: case S41_PMOVSXDQ: case S41_PMOVZXDQ: {
		static const uint8_t from[] = { 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4 };
		static const uint8_t to[] = { 2, 2, 4, 4, 8, 8, 4, 4, 8, 8, 8, 8 };
		unsigned i = kind - S41_PMOVSXBW, fw = from[i], tw = to[i];
		bool sign = !(i & 1);

		for (unsigned k = 0; k < 16 / tw; k++)
			set(r, tw, k, (uint64_t)get(b, fw, k, sign));
		break;
	}
	case S41_PMULDQ:
		for (unsigned k = 0; k < 2; k++)
			set(r, 8, k, (uint64_t)(get(a, 4, 2 * k, true) * get(b, 4, 2 * k, true)));
		break;
	case S41_PACKUSDW:
		for (unsigned k = 0; k < 4; k++) {
			int64_t x = get(a, 4, k, true), y = get(b, 4, k, true);

			set(r, 2, k, x < 0 ? 0 : x > 65535 ? 65535 : x);
			set(r, 2, 4 + k, y < 0 ? 0 : y > 65535 ? 65535 : y);
		}
		break;
	case S41_PHMINPOSUW: {
		unsigned best = 0;

		for (unsigned k = 1; k < 8; k++)
			if (get(b, 2, k, false) < get(b, 2, best, false))
				best = k;
		set(r, 2, 0, get(b, 2, best, false));
		set(r, 2, 1, best);
		break;
	}
	case S41_MPSADBW: {
		unsigned ao = ((imm >> 2) & 1) * 4, bo = (imm & 3) * 4;

		for (unsigned k = 0; k < 8; k++) {
			unsigned sum = 0;

			for (unsigned j = 0; j < 4; j++) {
				int diff = a[ao + k + j] - b[bo + j];

				sum += diff < 0 ? -diff : diff;
			}
			set(r, 2, k, sum);
		}
		break;
	}
	case S41_MOVNTDQA:
		memcpy(r, b, 16);
		break;
	}
	memcpy(d->q, r, 16);
}

/* pextrb/w/d/q and extractps: T[a] = element imm of xmm u->b (size: log2 width). */
void tcg_sse41_extract(struct tcg_cpu *c, const struct uop *u)
{
	unsigned w = 1u << u->size, k = (u->aux >> 8) & (16 / w - 1);
	uint8_t a[16];

	tcg_sse_check(c);
	memcpy(a, c->xmm[u->b].q, 16);
	c->t[u->a] = (uint64_t)get(a, w, k, false);
}

/* pinsrb/d/q: element imm of xmm u->d = T[a]; insertps: x = 1, with the
 * source element in T[a] already selected and imm's zero mask. */
void tcg_sse41_insert(struct tcg_cpu *c, const struct uop *u)
{
	unsigned w = 1u << u->size, imm = u->aux >> 8;
	uint8_t a[16];

	tcg_sse_check(c);
	memcpy(a, c->xmm[u->d].q, 16);
	if (u->x) {
		set(a, 4, (imm >> 4) & 3, c->t[u->a]);
		for (unsigned k = 0; k < 4; k++)
			if ((imm >> k) & 1)
				set(a, 4, k, 0);
	} else {
		set(a, w, imm & (16 / w - 1), c->t[u->a]);
	}
	memcpy(c->xmm[u->d].q, a, 16);
}

/* insertps source: T[a] = element (imm >> 6) of xmm u->b, or the m32 it
 * was loaded from (u->b == SSE_MEM: T[a] already holds it). */
void tcg_sse41_insertps_src(struct tcg_cpu *c, const struct uop *u)
{
	tcg_sse_check(c);
	if (u->b != SSE_MEM)
		c->t[u->a] = (uint32_t)(c->xmm[u->b].q[((u->aux >> 14) & 3) / 2] >>
					(32 * (((u->aux >> 14) & 3) & 1)));
}

/* crc32 (SSE4.2): T[d] = crc32c(T[d], T[a] of 1 << size bytes). */
void tcg_crc32(struct tcg_cpu *c, const struct uop *u)
{
	uint32_t crc = c->t[u->d];
	uint64_t v = c->t[u->a];

	for (unsigned k = 0; k < (1u << u->size) * 8; k++) {
		uint32_t bit = (crc ^ (uint32_t)(v >> k)) & 1;

		crc = (crc >> 1) ^ (bit ? 0x82f63b78u : 0);
	}
	c->t[u->d] = crc;
}

/*
 * pcmpestri/pcmpestrm/pcmpistri/pcmpistrm (SSE4.2).  size bit 0: index
 * (ecx) rather than mask (xmm0); bit 1: explicit lengths in eax/edx;
 * aux >> 8: imm8.  a is xmm u->d, b the source operand.
 */
void tcg_pcmpstr(struct tcg_cpu *c, const struct uop *u)
{
	unsigned imm = u->aux >> 8, words = imm & 1, n = words ? 8 : 16, w = words ? 2 : 1;
	bool sign = imm & 2, index = u->size & 1, expl = u->size & 2;
	unsigned agg = (imm >> 2) & 3, pol = (imm >> 4) & 3;
	uint8_t a[16], b[16];
	int64_t la, lb;
	unsigned res1 = 0, res2;
	struct xmm s;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, 16, false);
	memcpy(a, c->xmm[u->d].q, 16);
	memcpy(b, s.q, 16);
	if (expl) {
		bool wide = u->aux & AUX_MMX;	/* REX.W: 64-bit lengths */

		la = wide ? (int64_t)c->gpr[R_RAX] : (int32_t)c->gpr[R_RAX];
		lb = wide ? (int64_t)c->gpr[R_RDX] : (int32_t)c->gpr[R_RDX];
		la = la < 0 ? (la == INT64_MIN ? n : -la) : la;
		lb = lb < 0 ? (lb == INT64_MIN ? n : -lb) : lb;
		if (la > n)
			la = n;
		if (lb > n)
			lb = n;
	} else {
		for (la = 0; la < n && get(a, w, la, false); la++)
			;
		for (lb = 0; lb < n && get(b, w, lb, false); lb++)
			;
	}
	for (unsigned i = 0; i < n; i++) {
		bool r = false;

		switch (agg) {
		case 0:		/* equal any */
			for (int64_t j = 0; j < la && !r; j++)
				r = i < lb && get(a, w, j, sign) == get(b, w, i, sign);
			break;
		case 1:		/* ranges */
			for (int64_t j = 0; j + 1 < la + (la & 1) && !r; j += 2) {
				int64_t x = get(b, w, i, sign);

				r = i < lb && j + 1 < la && get(a, w, j, sign) <= x &&
				    x <= get(a, w, j + 1, sign);
			}
			break;
		case 2:		/* equal each */
			if (i >= la && i >= lb)
				r = true;
			else if (i >= la || i >= lb)
				r = false;
			else
				r = get(a, w, i, sign) == get(b, w, i, sign);
			break;
		default:	/* equal ordered */
			r = true;
			for (unsigned k = 0; k + i < n && r; k++) {
				if ((int64_t)k >= la)
					break;
				if ((int64_t)(i + k) >= lb)
					r = false;
				else
					r = get(a, w, k, sign) == get(b, w, i + k, sign);
			}
			break;
		}
		res1 |= (unsigned)r << i;
	}
	res2 = res1;
	if (pol == 1)
		res2 = ~res1 & ((1u << n) - 1);
	else if (pol == 3)
		res2 = res1 ^ ((1u << lb) - 1);
	tcg_set_flags(c, (res2 ? F_CF : 0) | (lb < n ? F_ZF : 0) | (la < n ? F_SF : 0) |
		      ((res2 & 1) ? F_OF : 0), F_ARITH);
	if (index) {
		unsigned idx = n;

		if (res2)
			idx = (imm & 0x40) ? 31 - __builtin_clz(res2) : __builtin_ctz(res2);
		c->gpr[R_RCX] = idx;
		return;
	}
	if (imm & 0x40) {
		uint8_t m[16];

		for (unsigned i = 0; i < n; i++)
			set(m, w, i, ((res2 >> i) & 1) ? (words ? 0xffff : 0xff) : 0);
		memcpy(c->xmm[0].q, m, 16);
	} else {
		c->xmm[0].q[0] = res2;
		c->xmm[0].q[1] = 0;
	}
}
