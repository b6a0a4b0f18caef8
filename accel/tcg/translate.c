/*
 * The translator's core: the block loop (fetch, decode, dispatch to an
 * instruction group), the micro-op emitter and the operand helpers that
 * every group shares (ModRM operands, effective addresses, the stack).
 *
 * Ordering rule for every instruction: compute, then store to memory,
 * then write registers.  A fault in a load or store thus leaves the
 * registers as they were before the instruction, which is what x86
 * requires for restartable faults.
 */
#include <string.h>

#include "accel/tcg/decode.h"
#include "log.h"
#include "machine.h"

struct uop *tcg_emit(struct tctx *t, unsigned op, unsigned size, unsigned d,
		     unsigned a, unsigned b, unsigned x, uint64_t imm)
{
	struct uop *u;

	/* The block loop stops well before this; keep it safe regardless. */
	if (t->n >= t->max)
		t->n = t->max - 1;
	u = &t->u[t->n++];
	u->op = op;
	u->size = size;
	u->d = d;
	u->a = a;
	u->b = b;
	u->x = x;
	u->aux = 0;
	u->imm = imm;
	return u;
}

unsigned tcg_tmp(struct tctx *t)
{
	/* No instruction needs more; wrap rather than overflow. */
	if (t->ntemp >= TCG_NR_TEMPS)
		t->ntemp = 0;
	return t->ntemp++;
}

unsigned gen_imm(struct tctx *t, uint64_t v)
{
	unsigned r = tcg_tmp(t);

	tcg_emit(t, U_MOVI, 3, r, 0, 0, 0, v);
	return r;
}

uint64_t next_eip(struct tctx *t)
{
	uint64_t e = t->i->eip + t->i->len;

	return t->i->mode == 3 ? e : t->i->mode == 2 ? (uint32_t)e : (uint16_t)e;
}

unsigned stack_size(struct tctx *t)
{
	if (t->flags & TBF_CS64)
		return 3;
	return (t->flags & TBF_SS32) ? 2 : 1;
}

/* Byte registers 4-7 are AH..BH unless a REX prefix is present. */
static unsigned reg_code(struct tctx *t, unsigned reg, unsigned size)
{
	if (size == 0 && !t->i->rex && reg >= 4 && reg < 8)
		return 0x10 | (reg - 4);
	return reg;
}

unsigned gen_ld_reg(struct tctx *t, unsigned reg, unsigned size)
{
	unsigned r = tcg_tmp(t);

	tcg_emit(t, U_LDR, size, r, reg_code(t, reg, size), 0, 0, 0);
	return r;
}

void gen_st_reg(struct tctx *t, unsigned reg, unsigned size, unsigned val)
{
	tcg_emit(t, U_STR, size, reg_code(t, reg, size), val, 0, 0, 0);
}

unsigned gen_seg(struct tctx *t)
{
	return t->i->seg != S_NONE ? t->i->seg : t->i->defseg;
}

/* The offset of the memory operand, computed once per instruction. */
unsigned gen_ea(struct tctx *t)
{
	struct insn *i = t->i;
	unsigned r;

	if (t->ea >= 0)
		return t->ea;
	r = tcg_tmp(t);
	if (i->riprel) {
		tcg_emit(t, U_MOVI, 3, r, 0, 0, 0, next_eip(t) + i->disp);
	} else {
		tcg_emit(t, U_MOVI, 3, r, 0, 0, 0, i->disp);
		if (i->base >= 0) {
			unsigned b = tcg_tmp(t);

			tcg_emit(t, U_LDR, 3, b, i->base, 0, 0, 0);
			tcg_emit(t, U_ADD, 3, r, r, b, 0, 0);
		}
		if (i->index >= 0) {
			unsigned x = tcg_tmp(t);

			tcg_emit(t, U_LDR, 3, x, i->index, 0, 0, 0);
			if (i->scale)
				tcg_emit(t, U_SHLI, 3, x, x, 0, 0, i->scale);
			tcg_emit(t, U_ADD, 3, r, r, x, 0, 0);
		}
	}
	tcg_emit(t, U_ZEXT, i->asz, r, r, 0, 0, 0);
	t->ea = r;
	return r;
}

unsigned gen_ld_rm(struct tctx *t, unsigned size)
{
	unsigned r;

	if (!t->i->mem)
		return gen_ld_reg(t, t->i->rm, size);
	r = tcg_tmp(t);
	tcg_emit(t, U_LD, size, r, gen_ea(t), 0, gen_seg(t), 0);
	return r;
}

void gen_st_rm(struct tctx *t, unsigned size, unsigned val)
{
	if (!t->i->mem) {
		gen_st_reg(t, t->i->rm, size, val);
		return;
	}
	tcg_emit(t, U_ST, size, 0, gen_ea(t), val, gen_seg(t), 0);
}

void gen_push(struct tctx *t, unsigned size, unsigned val)
{
	unsigned ss = stack_size(t), sp = tcg_tmp(t);

	tcg_emit(t, U_LDR, 3, sp, R_RSP, 0, 0, 0);
	tcg_emit(t, U_ADDI, ss, sp, sp, 0, 0, -(1ull << size));
	tcg_emit(t, U_ST, size, 0, sp, val, S_SS, 0);
	tcg_emit(t, U_STR, ss, R_RSP, sp, 0, 0, 0);
}

/* Pops into a temp and updates rSP; callers storing the value to memory
 * do so through gen_pop_mem, which stores before touching rSP. */
unsigned gen_pop(struct tctx *t, unsigned size)
{
	unsigned ss = stack_size(t), sp = tcg_tmp(t), v = tcg_tmp(t);

	tcg_emit(t, U_LDR, 3, sp, R_RSP, 0, 0, 0);
	tcg_emit(t, U_LD, size, v, sp, 0, S_SS, 0);
	tcg_emit(t, U_ADDI, ss, sp, sp, 0, 0, 1ull << size);
	tcg_emit(t, U_STR, ss, R_RSP, sp, 0, 0, 0);
	return v;
}

void gen_exc(struct tctx *t, int vec, uint32_t err)
{
	tcg_emit(t, U_EXC, 0, 0, 0, 0, vec, err);
	t->end = true;
}

/* aux bit 0: the block ends after the helper; bits 8-15 are free for an
 * immediate operand of the helper. */
struct uop *gen_helper(struct tctx *t, tcg_helper fn, unsigned size, unsigned d,
		       unsigned a, unsigned b, unsigned x, bool ends)
{
	struct uop *u = tcg_emit(t, U_HELPER, size, d, a, b, x, (uintptr_t)fn);

	u->aux = ends;
	if (ends)
		t->end = true;
	return u;
}

/* A lock prefix is valid only on the read-modify-write instructions
 * (SDM vol. 2, LOCK), and only with a memory destination. */
static bool lock_allowed(const struct insn *i)
{
	unsigned op = i->op, r = i->reg & 7;

	if (!i->mem)
		return false;
	if (op < 0x40 && (op & 7) < 2 && (op >> 3) != ALU_CMP)
		return true;
	switch (op) {
	case 0x80: case 0x81: case 0x82: case 0x83:
		return r != ALU_CMP;
	case 0x86: case 0x87: case 0x1ab: case 0x1b3: case 0x1bb:
	case 0x1b0: case 0x1b1: case 0x1c0: case 0x1c1:
		return true;
	case 0xf6: case 0xf7:
		return r == 2 || r == 3;
	case 0xfe: case 0xff:
		return r < 2;
	case 0x1ba:
		return r > 4;
	case 0x1c7:
		return r == 1;
	}
	return false;
}

static bool translate_insn(struct tctx *t)
{
	if (t->i->lock && !lock_allowed(t->i)) {
		gen_exc(t, EXC_UD, 0);
		return true;
	}
	return tcg_tr_alu(t) || tcg_tr_ctl(t) || tcg_tr_str(t) || tcg_tr_misc(t) ||
	       tcg_tr_sys(t) || tcg_tr_legacy(t) || tcg_tr_sse(t);
}

static unsigned code_mode(uint32_t flags)
{
	return (flags & TBF_CS64) ? 3 : (flags & TBF_CS32) ? 2 : 1;
}

void tcg_translate_tb(struct tcg_cpu *c, uint64_t phys, uint64_t lin, const uint8_t *hva,
		      bool mmio)
{
	struct tb *tb = c->scratch;
	uint64_t page_end = (lin | 0xfff) + 1, eip = c->rip, cur = lin;
	struct insn insn;
	struct tctx t = { .c = c, .i = &insn, .u = tb->uops, .max = TB_MAX_UOPS,
			  .flags = c->tb_flags };
	unsigned mode = code_mode(c->tb_flags);

	tb->phys = phys;
	tb->cs_base = c->seg[S_CS].base;
	tb->eip = eip;
	tb->flags = c->tb_flags;
	tb->nr_insns = 0;
	tb->cacheable = !mmio;
	if (mmio && page_end - lin > 15)
		page_end = lin + 15;
	for (;;) {
		uint8_t buf[16];
		unsigned avail = page_end - cur, start = t.n;
		int len;

		if (avail > 15)
			avail = 15;
		memcpy(buf, hva + (cur - lin), avail);
		if (avail < 15) {
			/* The instruction may continue on the next page. */
			uint64_t p2;
			uint32_t err;
			uint8_t *h2 = NULL;
			int rc = tcg_translate(c, page_end, ACC_X, c->cpl == 3, &p2, &err);

			if (rc == 0)
				h2 = gpa_to_hva(&c->m->mem, p2, 15 - avail);
			len = tcg_decode(&insn, buf, avail, mode);
			if (len == -1) {
				if (tb->nr_insns)
					break;
				if (rc)
					tcg_raise_pf(c, page_end, err);
				if (!h2) {
					log_once("tcg: executing outside RAM at %#lx", (unsigned long)page_end);
					tcg_raise(c, EXC_GP, 0);
				}
				memcpy(buf + avail, h2, 15 - avail);
				avail = 15;
				tb->cacheable = false;
			}
		}
		len = tcg_decode(&insn, buf, avail, mode);
		if (len < 0) {
			if (tb->nr_insns)
				break;
			tcg_raise(c, EXC_GP, 0);
		}
		insn.eip = eip;
		t.ntemp = 0;
		t.ea = -1;
		tcg_emit(&t, U_INSN, 0, 0, len, 0, 0, eip);
		if (!translate_insn(&t)) {
			t.n = start;
			tcg_emit(&t, U_INSN, 0, 0, len, 0, 0, eip);
			gen_exc(&t, EXC_UD, 0);
		}
		memcpy(tb->code + (cur - lin), buf, len);
		tb->nr_insns++;
		cur += len;
		eip = next_eip(&t);
		if (t.end || cur >= page_end || tb->nr_insns >= TB_MAX_INSNS ||
		    t.n + 64 > t.max || !tb->cacheable || (c->tb_flags & TBF_TF))
			break;
	}
	if (!t.end)
		tcg_emit(&t, U_JMPI, 0, 0, 0, 0, 0, eip);
	tb->size = cur - lin;
	tcg_opt_flags(tb->uops, t.n);
	t.n = tcg_opt_imm(tb->uops, t.n);
	tb->nr_uops = tcg_opt_insns(tb->uops, t.n);
}
