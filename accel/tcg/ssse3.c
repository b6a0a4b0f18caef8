/*
 * SSSE3: pshufb, phaddw/d/sw, phsubw/d/sw, pmaddubsw, pmulhrsw,
 * psignb/w/d, pabsb/w/d and palignr, in their MMX (no prefix) and xmm
 * (66h) forms.  One core works on n = 8 or 16 bytes.
 */
#include <string.h>

#include "accel/tcg/sse.h"

static int64_t get(const uint8_t *b, unsigned w, unsigned k)
{
	uint64_t v = 0;

	memcpy(&v, b + k * w, w);
	return tcg_sext(v, __builtin_ctz(w));
}

static void set(uint8_t *b, unsigned w, unsigned k, uint64_t v)
{
	memcpy(b + k * w, &v, w);
}

static int64_t sat16(int64_t v)
{
	return v < -32768 ? -32768 : v > 32767 ? 32767 : v;
}

static void core(unsigned kind, unsigned imm, const uint8_t *a, const uint8_t *b, uint8_t *r,
		 unsigned n)
{
	unsigned w;

	switch (kind) {
	case S3X_PSHUFB:
		for (unsigned k = 0; k < n; k++)
			r[k] = (b[k] & 0x80) ? 0 : a[b[k] & (n - 1)];
		return;
	case S3X_PHADDW: case S3X_PHADDD: case S3X_PHADDSW:
	case S3X_PHSUBW: case S3X_PHSUBD: case S3X_PHSUBSW: {
		bool sub = kind >= S3X_PHSUBW, satw = kind == S3X_PHADDSW || kind == S3X_PHSUBSW;
		unsigned half;

		w = (kind == S3X_PHADDD || kind == S3X_PHSUBD) ? 4 : 2;
		half = n / w / 2;
		for (unsigned k = 0; k < 2 * half; k++) {
			const uint8_t *s = k < half ? a : b;
			unsigned j = 2 * (k % half);
			int64_t v = sub ? get(s, w, j) - get(s, w, j + 1) : get(s, w, j) + get(s, w, j + 1);

			set(r, w, k, satw ? (uint64_t)sat16(v) : (uint64_t)v);
		}
		return;
	}
	case S3X_PMADDUBSW:
		for (unsigned k = 0; k < n / 2; k++) {
			int64_t v = (int64_t)a[2 * k] * (int8_t)b[2 * k] +
				    (int64_t)a[2 * k + 1] * (int8_t)b[2 * k + 1];

			set(r, 2, k, sat16(v));
		}
		return;
	case S3X_PMULHRSW:
		for (unsigned k = 0; k < n / 2; k++)
			set(r, 2, k, (uint64_t)((((get(a, 2, k) * get(b, 2, k)) >> 14) + 1) >> 1));
		return;
	case S3X_PSIGNB: case S3X_PSIGNW: case S3X_PSIGND:
		w = 1u << (kind - S3X_PSIGNB);
		for (unsigned k = 0; k < n / w; k++) {
			int64_t s = get(b, w, k), v = get(a, w, k);

			set(r, w, k, s < 0 ? (uint64_t)-v : s == 0 ? 0 : (uint64_t)v);
		}
		return;
	case S3X_PABSB: case S3X_PABSW: case S3X_PABSD:
		w = 1u << (kind - S3X_PABSB);
		for (unsigned k = 0; k < n / w; k++) {
			int64_t v = get(b, w, k);

			set(r, w, k, (uint64_t)(v < 0 ? -v : v));
		}
		return;
	case S3X_PALIGNR: {
		uint8_t t[32];

		memcpy(t, b, n);
		memcpy(t + n, a, n);
		for (unsigned k = 0; k < n; k++)
			r[k] = imm + k < 2 * n ? t[imm + k] : 0;
		return;
	}
	}
}

/* size: S3X_* kind; aux bit 1: MMX form; aux bits 8-15: palignr count. */
void tcg_ssse3(struct tcg_cpu *c, const struct uop *u)
{
	bool mmx = u->aux & AUX_MMX;
	unsigned n = mmx ? 8 : 16;
	uint8_t a[16], b[16], r[16];
	struct xmm s;

	if (mmx) {
		uint64_t v;

		tcg_mmx_check(c);
		v = u->b == SSE_MEM ? tcg_load(c, u->x, c->t[u->a], 8) : tcg_mm_get(c, u->b & 7);
		memcpy(b, &v, 8);
		tcg_mmx_enter(c);
		v = tcg_mm_get(c, u->d & 7);
		memcpy(a, &v, 8);
	} else {
		tcg_sse_check(c);
		tcg_sse_src(c, u, &s, 16, true);
		memcpy(b, s.q, 16);
		memcpy(a, c->xmm[u->d].q, 16);
	}
	core(u->size, u->aux >> 8, a, b, r, n);
	if (mmx) {
		uint64_t v;

		memcpy(&v, r, 8);
		tcg_mm_put(c, u->d & 7, v);
	} else {
		memcpy(c->xmm[u->d].q, r, 16);
	}
}
