/*
 * x87 and SSE state, and the SSE/SSE2 instructions other than floating
 * point: data movement, logic, integer SIMD arithmetic and compares,
 * shuffles, unpacks, shifts, mask extraction; ldmxcsr/stmxcsr;
 * fxsave/fxrstor (the 512-byte image of SDM vol. 1, 10.5.1, in its 32-bit
 * and REX.W 64-bit forms); and the x87 control instructions (fninit,
 * fnclex, fnstsw, fnstcw, fldcw).
 *
 * Each instruction is a helper on the 128-bit registers; u->d is the
 * destination register, u->b the source register or SSE_MEM (the offset
 * is then in T[u->a], segment u->x), aux bits 8-15 an immediate.
 */
#include <errno.h>
#include <string.h>

#include "accel/tcg/sse.h"

#define MXCSR_MASK 0xffff


/* #UD / #NM rules shared by every SSE instruction. */
void tcg_sse_check(struct tcg_cpu *c)
{
	if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		tcg_raise(c, EXC_UD, 0);
	if (c->cr0 & CR0_TS)
		tcg_raise(c, EXC_NM, 0);
}

void tcg_sse_src(struct tcg_cpu *c, const struct uop *u, struct xmm *v, unsigned bytes,
		 bool aligned)
{
	uint64_t off = c->t[u->a];

	if (u->b != SSE_MEM) {
		*v = c->xmm[u->b];
		return;
	}
	if (aligned && (off & 15))
		tcg_raise(c, EXC_GP, 0);
	memset(v, 0, sizeof(*v));
	if (bytes >= 8) {
		v->q[0] = tcg_load(c, u->x, off, 8);
		if (bytes == 16)
			v->q[1] = tcg_load(c, u->x, off + 8, 8);
	} else {
		v->q[0] = tcg_load(c, u->x, off, bytes);
	}
}

static void store128(struct tcg_cpu *c, const struct uop *u, const struct xmm *v, unsigned bytes,
		     bool aligned)
{
	uint64_t off = c->t[u->a];

	if (aligned && (off & 15))
		tcg_raise(c, EXC_GP, 0);
	if (bytes == 16) {
		/* check both halves before writing either */
		(void)tcg_lin(c, u->x, off, 16, ACC_W);
		tcg_store(c, u->x, off, 8, v->q[0]);
		tcg_store(c, u->x, off + 8, 8, v->q[1]);
	} else {
		tcg_store(c, u->x, off, bytes, v->q[0]);
	}
}

static unsigned imm8(const struct uop *u)
{
	return u->aux >> 8;
}

/* Moves.  size: SM_* kind. */
void tcg_sse_mov(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm v, *d = &c->xmm[u->d];

	tcg_sse_check(c);
	switch (u->size) {
	case SM_LOAD_U: case SM_LOAD_A:		/* xmm <- xmm/m128 */
		tcg_sse_src(c, u, &v, 16, u->size == SM_LOAD_A);
		*d = v;
		break;
	case SM_STORE_U: case SM_STORE_A:	/* xmm/m128 <- xmm */
		if (u->b == SSE_MEM)
			store128(c, u, d, 16, u->size == SM_STORE_A);
		else
			c->xmm[u->b] = *d;
		break;
	case SM_LOAD_SS: case SM_LOAD_SD:	/* movss/movsd load: memory zero-extends */
		tcg_sse_src(c, u, &v, u->size == SM_LOAD_SS ? 4 : 8, false);
		if (u->b == SSE_MEM) {
			*d = v;
		} else if (u->size == SM_LOAD_SS) {
			d->q[0] = (d->q[0] & ~0xffffffffull) | (v.q[0] & 0xffffffff);
		} else {
			d->q[0] = v.q[0];
		}
		break;
	case SM_STORE_SS: case SM_STORE_SD:
		if (u->b == SSE_MEM) {
			store128(c, u, d, u->size == SM_STORE_SS ? 4 : 8, false);
		} else if (u->size == SM_STORE_SS) {
			struct xmm *s = &c->xmm[u->b];

			s->q[0] = (s->q[0] & ~0xffffffffull) | (d->q[0] & 0xffffffff);
		} else {
			c->xmm[u->b].q[0] = d->q[0];
		}
		break;
	case SM_LOAD_LO:			/* movlps/movlpd m64; movhlps */
		tcg_sse_src(c, u, &v, u->b == SSE_MEM ? 8 : 16, false);
		d->q[0] = u->b == SSE_MEM ? v.q[0] : v.q[1];
		break;
	case SM_LOAD_HI:			/* movhps/movhpd m64; movlhps */
		tcg_sse_src(c, u, &v, 8, false);
		d->q[1] = v.q[0];
		break;
	case SM_STORE_LO: {
		struct xmm lo = { { d->q[0], 0 } };

		store128(c, u, &lo, 8, false);
		break;
	}
	case SM_STORE_HI: {
		struct xmm hi = { { d->q[1], 0 } };

		store128(c, u, &hi, 8, false);
		break;
	}
	case SM_LOAD_Q:				/* movq xmm, xmm/m64: zero the top */
		tcg_sse_src(c, u, &v, 8, false);
		d->q[0] = v.q[0];
		d->q[1] = 0;
		break;
	case SM_STORE_Q:			/* movq xmm/m64, xmm */
		if (u->b == SSE_MEM) {
			store128(c, u, d, 8, false);
		} else {
			c->xmm[u->b].q[0] = d->q[0];
			c->xmm[u->b].q[1] = 0;
		}
		break;
	}
}

/* movd/movq between xmm and a general register or memory: T[a] holds the
 * value (to xmm) or receives it; size 2 or 3; x = 1 for xmm -> gpr/mem. */
void tcg_sse_movd(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm *d = &c->xmm[u->d];

	tcg_sse_check(c);
	if (u->x) {
		c->t[u->a] = u->size == 3 ? d->q[0] : (uint32_t)d->q[0];
	} else {
		d->q[0] = u->size == 3 ? c->t[u->a] : (uint32_t)c->t[u->a];
		d->q[1] = 0;
	}
}

static void lanes(const struct xmm *x, uint8_t *b)
{
	memcpy(b, x->q, 16);
}

static void unlanes(struct xmm *x, const uint8_t *b)
{
	memcpy(x->q, b, 16);
}

static int64_t lane_get(const uint8_t *b, unsigned w, unsigned k, bool sign)
{
	uint64_t v = 0;

	memcpy(&v, b + k * w, w);
	return sign ? (int64_t)tcg_sext(v, __builtin_ctz(w)) : (int64_t)v;
}

static void lane_set(uint8_t *b, unsigned w, unsigned k, uint64_t v)
{
	memcpy(b + k * w, &v, w);
}

static int64_t sat(int64_t v, unsigned w, bool sign)
{
	int64_t lo = sign ? -(1ll << (8 * w - 1)) : 0;
	int64_t hi = sign ? (1ll << (8 * w - 1)) - 1 : (1ll << (8 * w)) - 1;

	return v < lo ? lo : v > hi ? hi : v;
}

/* Element-wise integer operations on 128 bits: size = SI_* op.  The
 * cores work on 16 bytes; MMX (mmx.c) uses them on the low 8. */
void tcg_sse_int_core(const struct uop *u, struct xmm *d, const struct xmm *s)
{
	uint8_t a[16], b[16], r[16];
	unsigned op = u->size, w = tcg_sse_int_width(op);

	lanes(d, a);
	lanes(s, b);
	for (unsigned k = 0; k < 16 / w; k++) {
		int64_t x = lane_get(a, w, k, tcg_sse_int_signed(op));
		int64_t y = lane_get(b, w, k, tcg_sse_int_signed(op));
		uint64_t m = w == 8 ? ~0ull : (1ull << (8 * w)) - 1, v;

		switch (tcg_sse_int_kind(op)) {
		case SK_ADD: v = (uint64_t)x + (uint64_t)y; break;
		case SK_SUB: v = (uint64_t)x - (uint64_t)y; break;
		case SK_ADDS: v = sat(x + y, w, tcg_sse_int_signed(op)); break;
		case SK_SUBS: v = sat(x - y, w, tcg_sse_int_signed(op)); break;
		case SK_CMPEQ: v = x == y ? m : 0; break;
		case SK_CMPGT: v = x > y ? m : 0; break;
		case SK_MIN: v = x < y ? x : y; break;
		case SK_MAX: v = x > y ? x : y; break;
		case SK_AVG: v = (uint64_t)(x + y + 1) >> 1; break;
		case SK_MULLO: v = x * y; break;
		case SK_MULHI: v = (uint64_t)((x * y) >> (8 * w)); break;
		case SK_AND: v = x & y; break;
		case SK_ANDN: v = ~x & y; break;
		case SK_OR: v = x | y; break;
		default: v = x ^ y; break;
		}
		lane_set(r, w, k, v & m);
	}
	unlanes(d, r);
}

void tcg_sse_int(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm s;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, 16, true);
	tcg_sse_int_core(u, &c->xmm[u->d], &s);
}

/* Unpacks, packs, shuffles: size = SU_* op, imm8 in aux. */
void tcg_sse_shuf_core(const struct uop *u, struct xmm *d, const struct xmm *s)
{
	uint8_t a[16], b[16], r[16];
	unsigned op = u->size & 15, n = imm8(u);

	lanes(d, a);
	lanes(s, b);
	memcpy(r, a, 16);
	switch (op) {
	case SU_PUNPCKL: case SU_PUNPCKH: {
		unsigned w = 1u << ((u->size >> 4) & 3), half = (op == SU_PUNPCKH) ? 8 : 0;

		for (unsigned k = 0; k < 8 / w; k++) {
			memcpy(r + 2 * k * w, a + half + k * w, w);
			memcpy(r + (2 * k + 1) * w, b + half + k * w, w);
		}
		break;
	}
	case SU_PSHUFD:
		for (unsigned k = 0; k < 4; k++)
			memcpy(r + 4 * k, b + 4 * ((n >> (2 * k)) & 3), 4);
		break;
	case SU_PSHUFLW:
		memcpy(r, b, 16);
		for (unsigned k = 0; k < 4; k++)
			memcpy(r + 2 * k, b + 2 * ((n >> (2 * k)) & 3), 2);
		break;
	case SU_PSHUFHW:
		memcpy(r, b, 16);
		for (unsigned k = 0; k < 4; k++)
			memcpy(r + 8 + 2 * k, b + 8 + 2 * ((n >> (2 * k)) & 3), 2);
		break;
	case SU_SHUFPS:
		memcpy(r + 0, a + 4 * (n & 3), 4);
		memcpy(r + 4, a + 4 * ((n >> 2) & 3), 4);
		memcpy(r + 8, b + 4 * ((n >> 4) & 3), 4);
		memcpy(r + 12, b + 4 * ((n >> 6) & 3), 4);
		break;
	case SU_SHUFPD:
		memcpy(r + 0, a + 8 * (n & 1), 8);
		memcpy(r + 8, b + 8 * ((n >> 1) & 1), 8);
		break;
	case SU_PACKSSWB: case SU_PACKUSWB:
		for (unsigned k = 0; k < 8; k++) {
			r[k] = sat(lane_get(a, 2, k, true), 1, op == SU_PACKSSWB);
			r[8 + k] = sat(lane_get(b, 2, k, true), 1, op == SU_PACKSSWB);
		}
		break;
	case SU_PACKSSDW:
		for (unsigned k = 0; k < 4; k++) {
			lane_set(r, 2, k, sat(lane_get(a, 4, k, true), 2, true));
			lane_set(r, 2, 4 + k, sat(lane_get(b, 4, k, true), 2, true));
		}
		break;
	}
	unlanes(d, r);
}

void tcg_sse_shuf(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm s;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, 16, true);
	tcg_sse_shuf_core(u, &c->xmm[u->d], &s);
}

/* Shifts by an immediate (aux) or by xmm/m128 (count in the low quadword):
 * size = SS_* op with the element width in op & 3 (log2 bytes). */
void tcg_sse_shift_core(const struct uop *u, struct xmm *d, uint64_t n)
{
	uint8_t a[16], r[16];
	unsigned kind = u->size >> 2, w = 1u << (u->size & 3);

	lanes(d, a);
	if (kind == SS_SLLDQ || kind == SS_SRLDQ) {
		memset(r, 0, 16);
		if (n < 16) {
			if (kind == SS_SLLDQ)
				memcpy(r + n, a, 16 - n);
			else
				memcpy(r, a + n, 16 - n);
		}
		unlanes(d, r);
		return;
	}
	for (unsigned k = 0; k < 16 / w; k++) {
		uint64_t v = lane_get(a, w, k, false), bits = 8 * w;
		int64_t sv = lane_get(a, w, k, true);

		if (kind == SS_SLL)
			v = n >= bits ? 0 : v << n;
		else if (kind == SS_SRL)
			v = n >= bits ? 0 : v >> n;
		else
			v = (uint64_t)(sv >> (n >= bits ? bits - 1 : n));
		lane_set(r, w, k, v);
	}
	unlanes(d, r);
}

void tcg_sse_shift(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm s;
	uint64_t n;

	tcg_sse_check(c);
	if (u->x == SSE_IMM) {
		n = imm8(u);
	} else {
		tcg_sse_src(c, u, &s, 16, true);
		n = s.q[0];
	}
	tcg_sse_shift_core(u, &c->xmm[u->d], n);
}

/* pmovmskb / movmskps / movmskpd: T[a] = mask of sign bits; size = width. */
void tcg_sse_movmsk(struct tcg_cpu *c, const struct uop *u)
{
	uint8_t a[16];
	unsigned w = 1u << u->size;
	uint64_t m = 0;

	tcg_sse_check(c);
	lanes(&c->xmm[u->b], a);
	for (unsigned k = 0; k < 16 / w; k++)
		m |= (uint64_t)((a[k * w + w - 1] >> 7) & 1) << k;
	c->t[u->a] = m;
}

/* ldmxcsr (x = 0) / stmxcsr (x = 1): offset T[a], segment u->b. */
void tcg_sse_mxcsr(struct tcg_cpu *c, const struct uop *u)
{
	uint32_t v;

	tcg_sse_check(c);
	if (u->x) {
		tcg_store(c, u->b, c->t[u->a], 4, c->mxcsr);
		return;
	}
	v = tcg_load(c, u->b, c->t[u->a], 4);
	if (v & ~MXCSR_MASK)
		tcg_raise(c, EXC_GP, 0);
	c->mxcsr = v;
}

static void fpu_check(struct tcg_cpu *c)
{
	if (c->cr0 & (CR0_EM | CR0_TS))
		tcg_raise(c, EXC_NM, 0);
}

void tcg_fpu_init(struct tcg_cpu *c)
{
	c->fcw = 0x37f;
	c->fsw = 0;
	c->ftw_full = 0xffff;
	c->ftop = 0;
	c->fop = 0;
	c->fip = c->fdp = 0;
}

static uint16_t fsw(const struct tcg_cpu *c)
{
	return (c->fsw & ~0x3800) | ((c->ftop & 7) << 11);
}

/* u->x: FC_* op; T[a] offset (segment u->b) or the value for fldcw. */
void tcg_fpu_ctl(struct tcg_cpu *c, const struct uop *u)
{
	fpu_check(c);
	switch (u->x) {
	case FC_INIT:
		tcg_fpu_init(c);
		break;
	case FC_CLEX:
		c->fsw &= 0x7f00;
		break;
	case FC_STSW_AX:
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | fsw(c);
		break;
	case FC_STSW:
		tcg_store(c, u->b, c->t[u->a], 2, fsw(c));
		break;
	case FC_STCW:
		tcg_store(c, u->b, c->t[u->a], 2, c->fcw);
		break;
	case FC_LDCW:
		c->fcw = tcg_load(c, u->b, c->t[u->a], 2) | 0x40;
		break;
	}
}

/*
 * The 512-byte fxsave image (SDM vol. 1, 10.5.1): XMM0..nxmm-1, and FIP
 * and FDP as 64-bit fields if wide.  Migration uses it too.
 */
void tcg_fx_image(const struct tcg_cpu *c, uint8_t img[512], unsigned nxmm, bool wide)
{
	uint8_t ftw = 0;

	memset(img, 0, 512);
	for (unsigned k = 0; k < 8; k++)
		if (((c->ftw_full >> (2 * k)) & 3) != 3)
			ftw |= 1u << k;
	memcpy(img + 0, &c->fcw, 2);
	*(uint16_t *)(img + 2) = fsw(c);
	img[4] = ftw;
	memcpy(img + 6, &c->fop, 2);
	memcpy(img + 8, &c->fip, wide ? 8 : 4);
	memcpy(img + 16, &c->fdp, wide ? 8 : 4);
	memcpy(img + 24, &c->mxcsr, 4);
	*(uint32_t *)(img + 28) = MXCSR_MASK;
	for (unsigned k = 0; k < 8; k++)
		memcpy(img + 32 + 16 * k, &c->st[k], 10);
	for (unsigned k = 0; k < nxmm; k++)
		memcpy(img + 160 + 16 * k, &c->xmm[k], 16);
}

/* Load an fxsave image; -EINVAL, and nothing changed, if MXCSR has reserved bits. */
int tcg_fx_restore(struct tcg_cpu *c, const uint8_t img[512], unsigned nxmm, bool wide)
{
	uint32_t mxcsr;

	memcpy(&mxcsr, img + 24, 4);
	if (mxcsr & ~MXCSR_MASK)
		return -EINVAL;
	memcpy(&c->fcw, img + 0, 2);
	memcpy(&c->fsw, img + 2, 2);
	c->ftop = (c->fsw >> 11) & 7;
	c->ftw_full = 0;
	for (unsigned k = 0; k < 8; k++)
		if (!(img[4] & (1u << k)))
			c->ftw_full |= 3u << (2 * k);
	memcpy(&c->fop, img + 6, 2);
	c->fip = c->fdp = 0;
	memcpy(&c->fip, img + 8, wide ? 8 : 4);
	memcpy(&c->fdp, img + 16, wide ? 8 : 4);
	c->mxcsr = mxcsr;
	for (unsigned k = 0; k < 8; k++) {
		memset(&c->st[k], 0, sizeof(c->st[k]));
		memcpy(&c->st[k], img + 32 + 16 * k, 10);
	}
	for (unsigned k = 0; k < nxmm; k++)
		memcpy(&c->xmm[k], img + 160 + 16 * k, 16);
	return 0;
}

/* fxsave / fxrstor m512: T[a] offset, segment u->x, size 3 with REX.W. */
void tcg_fxsave(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t off = c->t[u->a];
	uint8_t img[512];

	fpu_check(c);
	if (off & 15)
		tcg_raise(c, EXC_GP, 0);
	tcg_fx_image(c, img, tcg_code64(c) ? 16 : 8, u->size == 3);
	/* All of it is checked writable before the first byte is stored. */
	(void)tcg_lin(c, u->x, off, 512, ACC_W);
	for (unsigned k = 0; k < 512; k += 8) {
		uint64_t v;

		memcpy(&v, img + k, 8);
		tcg_store(c, u->x, off + k, 8, v);
	}
}

void tcg_fxrstor(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t off = c->t[u->a];
	uint8_t img[512];

	fpu_check(c);
	if (off & 15)
		tcg_raise(c, EXC_GP, 0);
	for (unsigned k = 0; k < 512; k += 8) {
		uint64_t v = tcg_load(c, u->x, off + k, 8);

		memcpy(img + k, &v, 8);
	}
	if (tcg_fx_restore(c, img, tcg_code64(c) ? 16 : 8, u->size == 3))
		tcg_raise(c, EXC_GP, 0);
}

/* pmaddwd, pmuludq, psadbw: size = SP_* kind. */
void tcg_sse_special_core(const struct uop *u, struct xmm *d, const struct xmm *s)
{
	uint8_t a[16], b[16], r[16];

	lanes(d, a);
	lanes(s, b);
	memset(r, 0, 16);
	switch (u->size) {
	case SP_PMADDWD:
		for (unsigned k = 0; k < 4; k++) {
			int64_t v = lane_get(a, 2, 2 * k, true) * lane_get(b, 2, 2 * k, true) +
				    lane_get(a, 2, 2 * k + 1, true) * lane_get(b, 2, 2 * k + 1, true);

			lane_set(r, 4, k, (uint32_t)v);
		}
		break;
	case SP_PMULUDQ:
		for (unsigned k = 0; k < 2; k++)
			lane_set(r, 8, k, (uint64_t)lane_get(a, 4, 2 * k, false) *
					  (uint64_t)lane_get(b, 4, 2 * k, false));
		break;
	case SP_PSADBW:
		for (unsigned h = 0; h < 2; h++) {
			unsigned sum = 0;

			for (unsigned k = 0; k < 8; k++) {
				int diff = a[8 * h + k] - b[8 * h + k];

				sum += diff < 0 ? -diff : diff;
			}
			lane_set(r, 8, h, sum);
		}
		break;
	}
	unlanes(d, r);
}

void tcg_sse_special(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm s;

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, 16, true);
	tcg_sse_special_core(u, &c->xmm[u->d], &s);
}

/* pextrw r32, xmm, imm8: T[a] = word; the source register in u->b. */
void tcg_sse_pextrw(struct tcg_cpu *c, const struct uop *u)
{
	uint8_t a[16];

	tcg_sse_check(c);
	lanes(&c->xmm[u->b], a);
	c->t[u->a] = lane_get(a, 2, imm8(u) & 7, false);
}

/* pinsrw xmm, r32/m16, imm8: the word is in T[a]. */
void tcg_sse_pinsrw(struct tcg_cpu *c, const struct uop *u)
{
	uint8_t a[16];

	tcg_sse_check(c);
	lanes(&c->xmm[u->d], a);
	lane_set(a, 2, imm8(u) & 7, c->t[u->a] & 0xffff);
	unlanes(&c->xmm[u->d], a);
}

/* maskmovdqu xmm1, xmm2 (u->d, u->b): the bytes of xmm1 whose byte in
 * xmm2 has its top bit set go to seg:rDI (T[a] holds the offset). */
void tcg_sse_maskmov(struct tcg_cpu *c, const struct uop *u)
{
	uint8_t v[16], m[16];

	tcg_sse_check(c);
	lanes(&c->xmm[u->d], v);
	lanes(&c->xmm[u->b], m);
	for (unsigned k = 0; k < 16; k++)
		if (m[k] & 0x80)
			tcg_store(c, u->x, tcg_sized(c->t[u->a] + k, u->size), 1, v[k]);
}

/* movshdup / movsldup / movddup (SSE3): size = SD_* kind. */
void tcg_sse3_dup(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm s, *d = &c->xmm[u->d];

	tcg_sse_check(c);
	tcg_sse_src(c, u, &s, u->size == SD_MOVDDUP ? 8 : 16, u->size != SD_MOVDDUP);
	switch (u->size) {
	case SD_MOVSHDUP:
		d->q[0] = (s.q[0] >> 32) | (s.q[0] & 0xffffffff00000000ull);
		d->q[1] = (s.q[1] >> 32) | (s.q[1] & 0xffffffff00000000ull);
		break;
	case SD_MOVSLDUP:
		d->q[0] = (s.q[0] & 0xffffffff) | (s.q[0] << 32);
		d->q[1] = (s.q[1] & 0xffffffff) | (s.q[1] << 32);
		break;
	default:
		d->q[0] = d->q[1] = s.q[0];
		break;
	}
}
