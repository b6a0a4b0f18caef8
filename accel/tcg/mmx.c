/*
 * MMX: the 64-bit integer SIMD instructions on mm0-7, which alias the
 * mantissas of the x87 registers (an MMX instruction sets TOP to 0 and
 * marks every register valid; emms marks them empty).  The operations
 * are the SSE cores of sse.c run on the low 8 bytes of a scratch
 * register pair.  #UD under CR0.EM, #NM under CR0.TS, #MF for a pending
 * x87 exception, as the SDM orders them; CR4.OSFXSR is not needed.
 */
#include <string.h>

#include "accel/tcg/sse.h"

uint64_t tcg_mm_get(const struct tcg_cpu *c, unsigned r)
{
	uint64_t v;

	memcpy(&v, &c->st[r & 7], 8);
	return v;
}

void tcg_mm_put(struct tcg_cpu *c, unsigned r, uint64_t v)
{
	uint8_t raw[sizeof(long double)];

	memset(raw, 0, sizeof(raw));
	memcpy(raw, &v, 8);
	raw[8] = raw[9] = 0xff;		/* exponent and sign all ones */
	memcpy(&c->st[r & 7], raw, sizeof(raw));
}

/* The checks every MMX instruction makes first. */
void tcg_mmx_check(struct tcg_cpu *c)
{
	if (c->cr0 & CR0_EM)
		tcg_raise(c, EXC_UD, 0);
	if (c->cr0 & CR0_TS)
		tcg_raise(c, EXC_NM, 0);
	if (c->fsw & 0x80)
		tcg_raise(c, EXC_MF, 0);
}

/* ... and the x87 state change it makes once it cannot fault. */
void tcg_mmx_enter(struct tcg_cpu *c)
{
	tcg_mmx_check(c);
	c->ftop = 0;
	c->fsw &= ~0x3800;
	c->ftw_full = 0;
}

/* The source: mm register u->b or 8 bytes at T[a] in segment u->x. */
static void src(struct tcg_cpu *c, const struct uop *u, struct xmm *s)
{
	tcg_mmx_check(c);
	s->q[1] = 0;
	if (u->b == SSE_MEM)
		s->q[0] = tcg_load(c, u->x, c->t[u->a], 8);
	else
		s->q[0] = tcg_mm_get(c, u->b);
}

void tcg_mmx_int(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm d, s;

	src(c, u, &s);
	tcg_mmx_enter(c);
	d.q[0] = tcg_mm_get(c, u->d);
	d.q[1] = 0;
	tcg_sse_int_core(u, &d, &s);
	tcg_mm_put(c, u->d, d.q[0]);
}

void tcg_mmx_special(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm d, s;

	src(c, u, &s);
	tcg_mmx_enter(c);
	d.q[0] = tcg_mm_get(c, u->d);
	d.q[1] = 0;
	tcg_sse_special_core(u, &d, &s);
	tcg_mm_put(c, u->d, d.q[0]);
}

/* Unpacks and packs work on 64-bit halves: place the operands so that
 * the 128-bit core leaves the MMX result in the low quadword. */
void tcg_mmx_shuf(struct tcg_cpu *c, const struct uop *u)
{
	unsigned op = u->size & 15;
	struct uop v = *u;
	struct xmm d, s;
	uint64_t a;

	src(c, u, &s);
	tcg_mmx_enter(c);
	a = tcg_mm_get(c, u->d);
	d.q[0] = a;
	d.q[1] = 0;
	if (op == SU_PUNPCKH) {
		/* the high halves, moved down, unpacked as low ones */
		d.q[0] = a >> 32;
		s.q[0] >>= 32;
		v.size = (u->size & ~15) | SU_PUNPCKL;
	} else if (op == SU_PACKSSWB || op == SU_PACKUSWB || op == SU_PACKSSDW) {
		d.q[1] = s.q[0];
		s = d;
	}
	tcg_sse_shuf_core(&v, &d, &s);
	tcg_mm_put(c, u->d, d.q[0]);
}

void tcg_mmx_shift(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm d, s;
	uint64_t n;

	tcg_mmx_check(c);
	if (u->x == SSE_IMM) {
		n = u->aux >> 8;
	} else {
		src(c, u, &s);
		n = s.q[0];
	}
	tcg_mmx_enter(c);
	d.q[0] = tcg_mm_get(c, u->d);
	d.q[1] = 0;
	tcg_sse_shift_core(u, &d, n);
	tcg_mm_put(c, u->d, d.q[0]);
}

/* movq: size 0 load mm <- mm/m64, 1 store mm/m64 <- mm, 2 movq2dq
 * (xmm d <- mm b), 3 movdq2q (mm d <- xmm b), 4 movntq. */
void tcg_mmx_mov(struct tcg_cpu *c, const struct uop *u)
{
	struct xmm s;

	switch (u->size) {
	case 0:
		src(c, u, &s);
		tcg_mmx_enter(c);
		tcg_mm_put(c, u->d, s.q[0]);
		return;
	case 1: case 4:
		tcg_mmx_enter(c);
		if (u->b == SSE_MEM)
			tcg_store(c, u->x, c->t[u->a], 8, tcg_mm_get(c, u->d));
		else
			tcg_mm_put(c, u->b, tcg_mm_get(c, u->d));
		return;
	case 2:
		tcg_sse_check(c);
		tcg_mmx_enter(c);
		c->xmm[u->d].q[0] = tcg_mm_get(c, u->b);
		c->xmm[u->d].q[1] = 0;
		return;
	default:
		tcg_sse_check(c);
		tcg_mmx_enter(c);
		tcg_mm_put(c, u->d, c->xmm[u->b].q[0]);
		return;
	}
}

/* movd/movq between mm and a general register or memory: x = 1 for
 * mm -> T[a]; size 2 or 3. */
void tcg_mmx_movd(struct tcg_cpu *c, const struct uop *u)
{
	tcg_mmx_enter(c);
	if (u->x)
		c->t[u->a] = u->size == 3 ? tcg_mm_get(c, u->d) : (uint32_t)tcg_mm_get(c, u->d);
	else
		tcg_mm_put(c, u->d, u->size == 3 ? c->t[u->a] : (uint32_t)c->t[u->a]);
}

void tcg_mmx_movmsk(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t v;
	unsigned m = 0;

	tcg_mmx_enter(c);
	v = tcg_mm_get(c, u->b);
	for (unsigned k = 0; k < 8; k++)
		m |= ((v >> (8 * k + 7)) & 1) << k;
	c->t[u->a] = m;
}

void tcg_mmx_emms(struct tcg_cpu *c, const struct uop *u)
{
	if (c->cr0 & CR0_EM)
		tcg_raise(c, EXC_UD, 0);
	if (c->cr0 & CR0_TS)
		tcg_raise(c, EXC_NM, 0);
	if (c->fsw & 0x80)
		tcg_raise(c, EXC_MF, 0);
	c->ftw_full = 0xffff;
}

void tcg_mmx_pextrw(struct tcg_cpu *c, const struct uop *u)
{
	tcg_mmx_enter(c);
	c->t[u->a] = (tcg_mm_get(c, u->b) >> (16 * ((u->aux >> 8) & 3))) & 0xffff;
}

void tcg_mmx_pinsrw(struct tcg_cpu *c, const struct uop *u)
{
	unsigned sh = 16 * ((u->aux >> 8) & 3);
	uint64_t v;

	tcg_mmx_enter(c);
	v = tcg_mm_get(c, u->d);
	v = (v & ~(0xffffull << sh)) | ((c->t[u->a] & 0xffff) << sh);
	tcg_mm_put(c, u->d, v);
}

void tcg_mmx_maskmov(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t v, m;

	tcg_mmx_check(c);
	v = tcg_mm_get(c, u->d);
	m = tcg_mm_get(c, u->b);
	for (unsigned k = 0; k < 8; k++)
		if ((m >> (8 * k + 7)) & 1)
			tcg_store(c, u->x, tcg_sized(c->t[u->a] + k, u->size), 1, v >> (8 * k));
	tcg_mmx_enter(c);
}
