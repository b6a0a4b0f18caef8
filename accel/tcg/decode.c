/*
 * x86 instruction decoder: legacy prefixes, REX, the one-byte, 0f, 0f38
 * and 0f3a opcode maps, ModRM/SIB with 16-, 32- and 64-bit addressing
 * (RIP-relative included), displacements and immediates.  It knows only
 * the shape of each opcode (ModRM present? which immediate?), taken from
 * the opcode map of the SDM vol. 2, appendix A.
 */
#include <string.h>

#include "accel/tcg/decode.h"

enum { I_NONE, I_B, I_W, I_Z, I_V, I_P, I_O, I_WB, I_F6, I_F7 };
#define M 0x01
#define IMM(k) ((k) << 4)

static const uint8_t map0[256] = {
	[0x00 ... 0x03] = M, [0x04] = IMM(I_B), [0x05] = IMM(I_Z),
	[0x08 ... 0x0b] = M, [0x0c] = IMM(I_B), [0x0d] = IMM(I_Z),
	[0x10 ... 0x13] = M, [0x14] = IMM(I_B), [0x15] = IMM(I_Z),
	[0x18 ... 0x1b] = M, [0x1c] = IMM(I_B), [0x1d] = IMM(I_Z),
	[0x20 ... 0x23] = M, [0x24] = IMM(I_B), [0x25] = IMM(I_Z),
	[0x28 ... 0x2b] = M, [0x2c] = IMM(I_B), [0x2d] = IMM(I_Z),
	[0x30 ... 0x33] = M, [0x34] = IMM(I_B), [0x35] = IMM(I_Z),
	[0x38 ... 0x3b] = M, [0x3c] = IMM(I_B), [0x3d] = IMM(I_Z),
	[0x62] = M, [0x63] = M, [0x68] = IMM(I_Z), [0x69] = M | IMM(I_Z),
	[0x6a] = IMM(I_B), [0x6b] = M | IMM(I_B),
	[0x70 ... 0x7f] = IMM(I_B),
	[0x80] = M | IMM(I_B), [0x81] = M | IMM(I_Z), [0x82] = M | IMM(I_B),
	[0x83] = M | IMM(I_B), [0x84 ... 0x8f] = M,
	[0x9a] = IMM(I_P),
	[0xa0 ... 0xa3] = IMM(I_O), [0xa8] = IMM(I_B), [0xa9] = IMM(I_Z),
	[0xb0 ... 0xb7] = IMM(I_B), [0xb8 ... 0xbf] = IMM(I_V),
	[0xc0] = M | IMM(I_B), [0xc1] = M | IMM(I_B), [0xc2] = IMM(I_W),
	[0xc4] = M, [0xc5] = M, [0xc6] = M | IMM(I_B), [0xc7] = M | IMM(I_Z),
	[0xc8] = IMM(I_WB), [0xca] = IMM(I_W), [0xcd] = IMM(I_B),
	[0xd0 ... 0xd3] = M, [0xd4] = IMM(I_B), [0xd5] = IMM(I_B),
	[0xd8 ... 0xdf] = M,
	[0xe0 ... 0xe7] = IMM(I_B), [0xe8] = IMM(I_Z), [0xe9] = IMM(I_Z),
	[0xea] = IMM(I_P), [0xeb] = IMM(I_B),
	[0xf6] = M | IMM(I_F6), [0xf7] = M | IMM(I_F7), [0xfe] = M, [0xff] = M,
};

static const uint8_t map1[256] = {
	[0x00 ... 0x03] = M, [0x0d] = M,
	[0x10 ... 0x1f] = M, [0x20 ... 0x23] = M, [0x28 ... 0x2f] = M,
	[0x40 ... 0x6f] = M, [0x70 ... 0x73] = M | IMM(I_B), [0x74 ... 0x76] = M,
	[0x78 ... 0x7f] = M,		/* 0x77 emms has no ModRM */
	[0x80 ... 0x8f] = IMM(I_Z), [0x90 ... 0x9f] = M,
	[0xa3] = M, [0xa4] = M | IMM(I_B), [0xa5] = M,
	[0xab] = M, [0xac] = M | IMM(I_B), [0xad ... 0xaf] = M,
	[0xb0 ... 0xb7] = M, [0xb8] = M, [0xb9] = M, [0xba] = M | IMM(I_B),
	[0xbb ... 0xbf] = M, [0xc0 ... 0xc1] = M, [0xc2] = M | IMM(I_B), [0xc3] = M,
	[0xc4 ... 0xc6] = M | IMM(I_B), [0xc7] = M,
	[0xd0 ... 0xff] = M,
};

struct reader {
	const uint8_t *buf;
	unsigned pos, avail;
	bool short_;
};

static uint64_t rd(struct reader *r, unsigned n)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < n; k++) {
		if (r->pos >= r->avail || r->pos >= 15) {
			r->short_ = true;
			return 0;
		}
		v |= (uint64_t)r->buf[r->pos++] << (8 * k);
	}
	return v;
}

static void decode_modrm16(struct insn *i, struct reader *r)
{
	static const int8_t base[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };
	static const int8_t index[8] = { 6, 7, 6, 7, -1, -1, -1, -1 };

	i->base = base[i->rm & 7];
	i->index = index[i->rm & 7];
	i->scale = 0;
	i->defseg = (i->base == 5) ? S_SS : S_DS;
	if (i->mod == 0 && (i->rm & 7) == 6) {
		i->base = -1;
		i->defseg = S_DS;
		i->disp = (int16_t)rd(r, 2);
	} else if (i->mod == 1) {
		i->disp = (int8_t)rd(r, 1);
	} else if (i->mod == 2) {
		i->disp = (int16_t)rd(r, 2);
	}
}

static void decode_modrm32(struct insn *i, struct reader *r)
{
	unsigned rm = i->modrm & 7;
	unsigned rex_b = (i->rex & 1) << 3, rex_x = (i->rex & 2) << 2;

	i->index = -1;
	i->scale = 0;
	if (rm == 4) {
		unsigned sib = rd(r, 1), b = sib & 7, x = ((sib >> 3) & 7) | rex_x;

		i->scale = sib >> 6;
		if (x != 4)
			i->index = x;
		if (b == 5 && i->mod == 0) {
			i->base = -1;
			i->disp = (int32_t)rd(r, 4);
		} else {
			i->base = b | rex_b;
		}
		i->defseg = (b == 4 || (b == 5 && i->mod != 0)) ? S_SS : S_DS;
	} else if (rm == 5 && i->mod == 0) {
		i->base = -1;
		i->disp = (int32_t)rd(r, 4);
		i->riprel = i->mode == 3;
		i->defseg = S_DS;
	} else {
		i->base = rm | rex_b;
		i->defseg = rm == 5 ? S_SS : S_DS;
	}
	if (i->mod == 1)
		i->disp = (int8_t)rd(r, 1);
	else if (i->mod == 2)
		i->disp = (int32_t)rd(r, 4);
}

static void read_imm(struct insn *i, struct reader *r, unsigned kind)
{
	unsigned zsz = i->osz == 1 ? 2 : 4;

	/* Near branches in 64-bit mode ignore 66h (as Intel does): rel32. */
	if (i->mode == 3 && (i->op == 0xe8 || i->op == 0xe9 || (i->op >= 0x180 && i->op <= 0x18f)))
		zsz = 4;

	switch (kind) {
	case I_B:
		i->imm = rd(r, 1);
		break;
	case I_W:
		i->imm = rd(r, 2);
		break;
	case I_Z:
		i->imm = rd(r, zsz);
		break;
	case I_V:
		i->imm = rd(r, 1u << i->osz);
		break;
	case I_P:
		i->imm = rd(r, zsz);
		i->imm2 = rd(r, 2);
		break;
	case I_O:
		i->mem = true;
		i->base = i->index = -1;
		i->defseg = S_DS;
		i->disp = (int64_t)rd(r, 1u << i->asz);
		break;
	case I_WB:
		i->imm = rd(r, 2);
		i->imm2 = rd(r, 1);
		break;
	case I_F6:
		if ((i->reg & 7) < 2)
			i->imm = rd(r, 1);
		break;
	case I_F7:
		if ((i->reg & 7) < 2)
			i->imm = rd(r, zsz);
		break;
	}
}

int tcg_decode(struct insn *i, const uint8_t *buf, unsigned avail, unsigned mode)
{
	struct reader r = { .buf = buf, .avail = avail };
	bool p67 = false;
	unsigned b, info;

	memset(i, 0, sizeof(*i));
	i->mode = mode;
	i->seg = S_NONE;
	i->base = i->index = -1;
	for (;;) {
		b = rd(&r, 1);
		if (r.short_)
			goto out;
		switch (b) {
		case 0xf0: i->lock = true; i->rex = 0; continue;
		case 0xf2: case 0xf3: i->rep = b; i->rex = 0; continue;
		case 0x26: i->seg = S_ES; i->rex = 0; continue;
		case 0x2e: i->seg = S_CS; i->rex = 0; continue;
		case 0x36: i->seg = S_SS; i->rex = 0; continue;
		case 0x3e: i->seg = S_DS; i->rex = 0; continue;
		case 0x64: i->seg = S_FS; i->rex = 0; continue;
		case 0x65: i->seg = S_GS; i->rex = 0; continue;
		case 0x66: i->p66 = true; i->rex = 0; continue;
		case 0x67: p67 = true; i->rex = 0; continue;
		}
		if (mode == 3 && (b & 0xf0) == 0x40) {
			/* REX counts only right before the opcode. */
			i->rex = b;
			continue;
		}
		break;
	}
	if (mode == 3) {
		i->osz = (i->rex & 8) ? 3 : i->p66 ? 1 : 2;
		i->asz = p67 ? 2 : 3;
	} else {
		i->osz = (mode == 2) ^ i->p66 ? 2 : 1;
		i->asz = (mode == 2) ^ p67 ? 2 : 1;
	}
	if (b == 0x0f) {
		b = rd(&r, 1);
		if (b == 0x38) {
			i->op = 0x200 | rd(&r, 1);
			info = M;
		} else if (b == 0x3a) {
			i->op = 0x300 | rd(&r, 1);
			info = M | IMM(I_B);
		} else {
			i->op = 0x100 | b;
			info = map1[b];
		}
	} else {
		i->op = b;
		info = map0[b];
	}
	if (info & M) {
		i->has_modrm = true;
		i->modrm = rd(&r, 1);
		i->mod = i->modrm >> 6;
		i->reg = ((i->modrm >> 3) & 7) | ((i->rex & 4) << 1);
		i->rm = (i->modrm & 7) | ((i->rex & 1) << 3);
		/* mov to/from control and debug registers ignore mod. */
		if (i->op >= 0x120 && i->op <= 0x123)
			i->mod = 3;
		if (i->mod != 3) {
			i->mem = true;
			if (i->asz == 1)
				decode_modrm16(i, &r);
			else
				decode_modrm32(i, &r);
		}
	}
	read_imm(i, &r, info >> 4);
out:
	if (r.short_)
		return r.pos >= 15 ? -2 : -1;
	i->len = r.pos;
	return r.pos;
}
