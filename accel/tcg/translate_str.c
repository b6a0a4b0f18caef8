/*
 * String instructions (movs, cmps, stos, lods, scas, ins, outs) with rep
 * prefixes, and port I/O.
 *
 * Port I/O goes straight to the machine's pio bus (bus_read/bus_write)
 * from the vCPU thread instead of returning ACCEL_EXIT_PIO: string port
 * I/O then needs no buffering across exits, and the bus is the same one
 * the generic vCPU loop would call.
 *
 * A rep string instruction runs at most rep_budget iterations per
 * execution, then restarts itself, so interrupts and kicks are taken in
 * the middle of a long copy.  rCX, rSI and rDI are written back every
 * iteration: a fault leaves them pointing at the element that faulted.
 */
#include "accel/tcg/decode.h"
#include "machine.h"

#define REP_BUDGET 4096

enum { S_MOVS, S_CMPS, S_STOS, S_LODS, S_SCAS, S_INS, S_OUTS };

static uint64_t amask(unsigned asz)
{
	return asz == 3 ? ~0ull : asz == 2 ? 0xffffffffull : 0xffff;
}

static void set_areg(struct tcg_cpu *c, unsigned r, unsigned asz, uint64_t v)
{
	if (asz == 3)
		c->gpr[r] = v;
	else if (asz == 2)
		c->gpr[r] = (uint32_t)v;
	else
		c->gpr[r] = (c->gpr[r] & ~0xffffull) | (v & 0xffff);
}

static void set_acc(struct tcg_cpu *c, unsigned size, uint64_t v)
{
	if (size == 0)
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffull) | (v & 0xff);
	else if (size == 1)
		c->gpr[R_RAX] = (c->gpr[R_RAX] & ~0xffffull) | (v & 0xffff);
	else if (size == 2)
		c->gpr[R_RAX] = (uint32_t)v;
	else
		c->gpr[R_RAX] = v;
}

/* I/O permission: CPL <= IOPL, or the TSS bitmap allows every port. */
static void io_check(struct tcg_cpu *c, uint16_t port, unsigned bytes)
{
	unsigned iopl = (c->rflags & F_IOPL) >> 12;
	uint64_t base;
	uint16_t off, bits;

	if (!(c->cr0 & CR0_PE) || (c->cpl <= iopl && !(c->rflags & F_VM)))
		return;
	if (c->tr.unusable || (c->tr.type & 0xd) != 9 || c->tr.limit < 103)
		tcg_raise(c, EXC_GP, 0);
	base = c->tr.base;
	off = tcg_ld_sys(c, base + 102, 2);
	if ((uint32_t)off + port / 8 + 1 > c->tr.limit)
		tcg_raise(c, EXC_GP, 0);
	bits = tcg_ld_sys(c, base + off + port / 8, 2);
	if ((bits >> (port & 7)) & ((1u << bytes) - 1))
		tcg_raise(c, EXC_GP, 0);
}

static uint64_t pio_in(struct tcg_cpu *c, uint16_t port, unsigned bytes)
{
	uint64_t v;

	io_check(c, port, bytes);
	v = bus_read(&c->m->pio, port, bytes);
	tcg_after_io(c);
	return v;
}

static void pio_out(struct tcg_cpu *c, uint16_t port, unsigned bytes, uint64_t v)
{
	io_check(c, port, bytes);
	bus_write(&c->m->pio, port, bytes, v);
	tcg_after_io(c);
}

/* u: size = operand size, b = address size, x = source segment,
 * d = string op, aux bit 1.. = rep (0 none, 1 repne, 2 rep/repe). */
static void helper_string(struct tcg_cpu *c, const struct uop *u)
{
	unsigned size = u->size, bytes = 1u << size, asz = u->b, op = u->d;
	unsigned rep = c->t[u->a];
	uint64_t m = amask(asz), n = 0;
	int64_t delta = (c->rflags & F_DF) ? -(int64_t)bytes : bytes;
	uint64_t cr, si, di, v, w;

	for (;;) {
		cr = c->gpr[R_RCX] & m;
		if (rep && cr == 0)
			break;
		if (n++ >= REP_BUDGET || c->exit_req) {
			/* Yield: run this instruction again later. */
			c->rip = c->insn_eip;
			c->end_tb = true;
			return;
		}
		si = c->gpr[R_RSI] & m;
		di = c->gpr[R_RDI] & m;
		switch (op) {
		case S_MOVS:
			v = tcg_load(c, u->x, si, bytes);
			tcg_store(c, S_ES, di, bytes, v);
			set_areg(c, R_RSI, asz, si + delta);
			set_areg(c, R_RDI, asz, di + delta);
			break;
		case S_CMPS:
			v = tcg_load(c, u->x, si, bytes);
			w = tcg_load(c, S_ES, di, bytes);
			c->cc_op = CC_SUB;
			c->cc_size = size;
			c->cc_a = v;
			c->cc_b = w;
			c->cc_res = tcg_sized(v - w, size);
			set_areg(c, R_RSI, asz, si + delta);
			set_areg(c, R_RDI, asz, di + delta);
			break;
		case S_STOS:
			tcg_store(c, S_ES, di, bytes, c->gpr[R_RAX]);
			set_areg(c, R_RDI, asz, di + delta);
			break;
		case S_LODS:
			set_acc(c, size, tcg_load(c, u->x, si, bytes));
			set_areg(c, R_RSI, asz, si + delta);
			break;
		case S_SCAS:
			v = tcg_sized(c->gpr[R_RAX], size);
			w = tcg_load(c, S_ES, di, bytes);
			c->cc_op = CC_SUB;
			c->cc_size = size;
			c->cc_a = v;
			c->cc_b = w;
			c->cc_res = tcg_sized(v - w, size);
			set_areg(c, R_RDI, asz, di + delta);
			break;
		case S_INS:
			/* Check the destination before the device sees a read. */
			(void)tcg_lin(c, S_ES, di, bytes, ACC_W);
			v = pio_in(c, c->gpr[R_RDX], bytes);
			tcg_store(c, S_ES, di, bytes, v);
			set_areg(c, R_RDI, asz, di + delta);
			break;
		case S_OUTS:
			v = tcg_load(c, u->x, si, bytes);
			pio_out(c, c->gpr[R_RDX], bytes, v);
			set_areg(c, R_RSI, asz, si + delta);
			break;
		}
		if (!rep)
			break;
		set_areg(c, R_RCX, asz, cr - 1);
		if (op == S_CMPS || op == S_SCAS) {
			bool zf = c->cc_res == 0;

			if ((rep == 1 && zf) || (rep == 2 && !zf))
				break;
		}
	}
}

/* in/out: x = 0 in, 1 out; T[a] = port; size = operand size. */
static void helper_io(struct tcg_cpu *c, const struct uop *u)
{
	unsigned bytes = 1u << u->size;
	uint16_t port = c->t[u->a];

	if (u->x)
		pio_out(c, port, bytes, tcg_sized(c->gpr[R_RAX], u->size));
	else
		set_acc(c, u->size, pio_in(c, port, bytes));
}

bool tcg_tr_str(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned size = (i->op & 1) ? i->osz : 0;
	unsigned op, rep, port;

	/* Port I/O is at most 32 bits wide. */
	if (size == 3 && (i->op < 0xa4 || i->op > 0xaf))
		size = 2;
	switch (i->op) {
	case 0xa4: case 0xa5: op = S_MOVS; break;
	case 0xa6: case 0xa7: op = S_CMPS; break;
	case 0xaa: case 0xab: op = S_STOS; break;
	case 0xac: case 0xad: op = S_LODS; break;
	case 0xae: case 0xaf: op = S_SCAS; break;
	case 0x6c: case 0x6d: op = S_INS; break;
	case 0x6e: case 0x6f: op = S_OUTS; break;
	case 0xe4: case 0xe5: case 0xe6: case 0xe7:
		gen_helper(t, helper_io, size, 0, gen_imm(t, i->imm & 0xff), 0,
			   (i->op >> 1) & 1, false);
		return true;
	case 0xec: case 0xed: case 0xee: case 0xef:
		port = gen_ld_reg(t, R_RDX, 1);
		gen_helper(t, helper_io, size, 0, port, 0, (i->op >> 1) & 1, false);
		return true;
	default:
		return false;
	}
	/* Only cmps and scas tell repne from repe. */
	rep = i->rep == 0xf3 ? 2 : i->rep == 0xf2 ? 1 : 0;
	if (rep == 1 && op != S_CMPS && op != S_SCAS)
		rep = 2;
	gen_helper(t, helper_string, size, op, gen_imm(t, rep), i->asz,
		   i->seg != S_NONE ? i->seg : S_DS, false);
	return true;
}
