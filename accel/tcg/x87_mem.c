/*
 * x87 memory operands: loads and stores in every format (single, double,
 * extended, 16/32/64-bit integers, packed BCD), the arithmetic and
 * compares of D8/DA/DC/DE with a memory operand, and the environment:
 * fldenv/fnstenv/fnsave/frstor in the protected-mode layouts.
 */
#include <math.h>
#include <string.h>

#include "accel/tcg/x87.h"

enum { FM_F32, FM_F64, FM_F80, FM_I16, FM_I32, FM_I64, FM_BCD };

/* Loads from memory in the format of the opcode. */

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
	if (x87_pre_fault(x))
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
		if (x87_pre_fault(x))
			return false;
		tcg_store(c, u->x, off, 4, b);
		break;
	}
	case FM_F64: {
		uint64_t b;
		uint16_t sw;

		asm volatile("fstl %0\n\tfnstsw %1" : "=m"(b), "=m"(sw) : "t"(v));
		x->flags |= sw & (0x3f | SW_C1);
		if (x87_pre_fault(x))
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
		if (x87_pre_fault(x))
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


/* fnstenv/fldenv in the protected-mode layouts: 28 bytes (32-bit operand
 * size) or 14 bytes (16-bit). Returns the size. */
static unsigned env_io(struct tcg_cpu *c, const struct uop *u, bool store)
{
	bool wide = u->b != 1;
	unsigned w = wide ? 4 : 2;
	uint64_t off = c->t[u->a];
	uint64_t v[7] = { c->fcw | (wide ? 0xffff0000u : 0), x87_status(c) | (wide ? 0xffff0000u : 0),
			  x87_full_tags(c) | (wide ? 0xffff0000u : 0), (uint32_t)c->fip,
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

void x87_mem_form(struct x87 *x, const struct uop *u, unsigned op, unsigned r)
{
	static const int arith_fmt[8] = { FM_F32, -1, FM_I32, -1, FM_F64, -1, FM_I16, -1 };
	struct tcg_cpu *c = x->c;
	long double v;

	if (!(op & 1)) {			/* D8, DA, DC, DE: st0 op= m */
		long double m = load_mem(x, u, arith_fmt[op]), a;
		uint16_t ls = x87_host_sw();

		/* A denormal memory operand is reported by the operation,
		 * which reports none next to a NaN. */
		asm volatile("fnclex");
		a = x87_get(x, 0);
		x->flags |= ls & SW_IE;
		if ((ls & SW_DE) && !isnan(a) && !isnan(m))
			x->flags |= SW_DE;

		if (r == 2 || r == 3) {
			c->fsw = (c->fsw & ~SW_CC) | x87_compare(x, a, m, false);
			if (r == 3)
				x87_pop(c);
			return;
		}
		v = x87_arith(x, r, a, m);
		if (!x87_pre_fault(x))
			x87_put(x, 0, v);
		return;
	}
	switch (op << 3 | r) {
	case 1 << 3 | 0: x87_push(x, load_mem(x, u, FM_F32)); return;
	case 5 << 3 | 0: x87_push(x, load_mem(x, u, FM_F64)); return;
	case 3 << 3 | 5: x87_push(x, load_mem(x, u, FM_F80)); return;
	case 3 << 3 | 0: x87_push(x, load_mem(x, u, FM_I32)); return;
	case 7 << 3 | 0: x87_push(x, load_mem(x, u, FM_I16)); return;
	case 7 << 3 | 5: x87_push(x, load_mem(x, u, FM_I64)); return;
	case 7 << 3 | 4: x87_push(x, load_mem(x, u, FM_BCD)); return;
	case 1 << 3 | 2: case 1 << 3 | 3:
		if (store_mem(x, u, x87_get(x, 0), FM_F32) && r == 3)
			x87_pop(c);
		return;
	case 5 << 3 | 2: case 5 << 3 | 3:
		if (store_mem(x, u, x87_get(x, 0), FM_F64) && r == 3)
			x87_pop(c);
		return;
	case 3 << 3 | 7:
		store_mem(x, u, x87_get(x, 0), FM_F80);
		x87_pop(c);
		return;
	case 3 << 3 | 2: case 3 << 3 | 3:
		store_mem(x, u, x87_get(x, 0), FM_I32);
		if (r == 3)
			x87_pop(c);
		return;
	case 7 << 3 | 2: case 7 << 3 | 3:
		store_mem(x, u, x87_get(x, 0), FM_I16);
		if (r == 3)
			x87_pop(c);
		return;
	case 3 << 3 | 1: case 5 << 3 | 1: case 7 << 3 | 1: {	/* fisttp (SSE3) */
		unsigned bytes = op == 3 ? 4 : op == 5 ? 8 : 2;
		long double v = x87_get(x, 0);
		uint64_t out = 0;
		uint16_t sw;

		if (bytes == 2) {
			uint16_t i;

			asm volatile("fld %%st(0)\n\tfisttps %0\n\tfnstsw %1" : "=m"(i), "=m"(sw) : "t"(v));
			out = i;
		} else if (bytes == 4) {
			uint32_t i;

			asm volatile("fld %%st(0)\n\tfisttpl %0\n\tfnstsw %1" : "=m"(i), "=m"(sw) : "t"(v));
			out = i;
		} else {
			asm volatile("fld %%st(0)\n\tfisttpll %0\n\tfnstsw %1" : "=m"(out), "=m"(sw) : "t"(v));
		}
		x->flags |= sw & (0x3f | SW_C1);
		if (x87_pre_fault(x))
			return;
		tcg_store(c, u->x, c->t[u->a], bytes, out);
		x87_pop(c);
		return;
	}
	case 7 << 3 | 7:
		store_mem(x, u, x87_get(x, 0), FM_I64);
		x87_pop(c);
		return;
	case 7 << 3 | 6:
		store_mem(x, u, x87_get(x, 0), FM_BCD);
		x87_pop(c);
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
				store_mem(x, &mu, *x87_reg(c, k), FM_F80);
			} else {
				*x87_reg(c, k) = load_mem(x, &mu, FM_F80);
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

