/*
 * x87 and SSE state management: fninit, fnclex, fnstsw, fnstcw, fldcw,
 * fxsave and fxrstor (the 512-byte image of SDM vol. 1, 10.5.1, in its
 * 32-bit and REX.W 64-bit forms).  x87 arithmetic is not implemented yet
 * (docs/tcg.md); the registers are carried so that fxsave/fxrstor and
 * migration keep them.
 */
#include <string.h>

#include "accel/tcg/sse.h"

#define MXCSR_MASK 0xffff

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

/* fxsave / fxrstor m512: T[a] offset, segment u->x, size 3 with REX.W. */
void tcg_fxsave(struct tcg_cpu *c, const struct uop *u)
{
	uint64_t off = c->t[u->a];
	unsigned nxmm = tcg_code64(c) ? 16 : 8;
	uint8_t img[512], ftw = 0;

	fpu_check(c);
	if (off & 15)
		tcg_raise(c, EXC_GP, 0);
	memset(img, 0, sizeof(img));
	for (unsigned k = 0; k < 8; k++)
		if (((c->ftw_full >> (2 * k)) & 3) != 3)
			ftw |= 1u << k;
	memcpy(img + 0, &c->fcw, 2);
	*(uint16_t *)(img + 2) = fsw(c);
	img[4] = ftw;
	memcpy(img + 6, &c->fop, 2);
	if (u->size == 3) {
		memcpy(img + 8, &c->fip, 8);
		memcpy(img + 16, &c->fdp, 8);
	} else {
		memcpy(img + 8, &c->fip, 4);
		memcpy(img + 16, &c->fdp, 4);
	}
	memcpy(img + 24, &c->mxcsr, 4);
	*(uint32_t *)(img + 28) = MXCSR_MASK;
	for (unsigned k = 0; k < 8; k++)
		memcpy(img + 32 + 16 * k, &c->st[k], 10);
	for (unsigned k = 0; k < nxmm; k++)
		memcpy(img + 160 + 16 * k, &c->xmm[k], 16);
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
	unsigned nxmm = tcg_code64(c) ? 16 : 8;
	uint8_t img[512];
	uint32_t mxcsr;

	fpu_check(c);
	if (off & 15)
		tcg_raise(c, EXC_GP, 0);
	for (unsigned k = 0; k < 512; k += 8) {
		uint64_t v = tcg_load(c, u->x, off + k, 8);

		memcpy(img + k, &v, 8);
	}
	memcpy(&mxcsr, img + 24, 4);
	if (mxcsr & ~MXCSR_MASK)
		tcg_raise(c, EXC_GP, 0);
	memcpy(&c->fcw, img + 0, 2);
	memcpy(&c->fsw, img + 2, 2);
	c->ftop = (c->fsw >> 11) & 7;
	c->ftw_full = 0;
	for (unsigned k = 0; k < 8; k++)
		if (!(img[4] & (1u << k)))
			c->ftw_full |= 3u << (2 * k);
	memcpy(&c->fop, img + 6, 2);
	c->fip = c->fdp = 0;
	memcpy(&c->fip, img + 8, u->size == 3 ? 8 : 4);
	memcpy(&c->fdp, img + 16, u->size == 3 ? 8 : 4);
	c->mxcsr = mxcsr;
	for (unsigned k = 0; k < 8; k++) {
		memset(&c->st[k], 0, sizeof(c->st[k]));
		memcpy(&c->st[k], img + 32 + 16 * k, 10);
	}
	for (unsigned k = 0; k < nxmm; k++)
		memcpy(&c->xmm[k], img + 160 + 16 * k, 16);
}
