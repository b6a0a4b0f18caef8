/*
 * x86 instruction decoder and the translator's shared context.  The
 * decoder only splits bytes into fields (prefixes, REX, opcode, ModRM,
 * SIB, displacement, immediates); meaning is given by the translate_*.c
 * files, one per instruction group.
 */
#ifndef VIREO_TCG_DECODE_H
#define VIREO_TCG_DECODE_H

#include "accel/tcg/tcg.h"

struct insn {
	uint64_t eip;		/* offset in CS of the first byte */
	uint8_t len;
	uint8_t mode;		/* code size, log2 bytes: 1, 2 or 3 */
	uint8_t osz, asz;	/* operand and address size, log2 bytes */
	uint8_t rex;		/* the REX byte, or 0 */
	uint8_t rep;		/* 0, 0xf2 or 0xf3 (last one wins) */
	bool lock;
	bool p66;		/* operand-size prefix seen (SSE uses it) */
	uint8_t seg;		/* segment override, or S_NONE */
	uint16_t op;		/* map << 8 | opcode: map 0 one-byte, 1 0f, 2 0f38, 3 0f3a */
	bool has_modrm;
	uint8_t modrm, mod, reg, rm;	/* reg and rm include REX.R / REX.B */
	bool mem;		/* ModRM names memory (mod != 3) or moffs */
	int8_t base, index;	/* -1: none */
	uint8_t scale;
	bool riprel;
	uint8_t defseg;		/* DS or SS, from the base register */
	int64_t disp;
	uint64_t imm, imm2;
};

/* Decode one instruction from buf[0..avail); -1 if it needs more bytes
 * than avail, -2 if longer than 15 bytes, else its length. */
int tcg_decode(struct insn *i, const uint8_t *buf, unsigned avail, unsigned mode);

struct tctx {
	struct tcg_cpu *c;
	struct insn *i;
	struct uop *u;
	unsigned n, max;
	unsigned ntemp;
	int ea;			/* temp holding the memory operand's offset */
	bool end;		/* the block ends after this instruction */
	uint32_t flags;		/* TBF_* */
};

struct uop *tcg_emit(struct tctx *t, unsigned op, unsigned size, unsigned d,
		     unsigned a, unsigned b, unsigned x, uint64_t imm);
unsigned tcg_tmp(struct tctx *t);
/* Operand helpers: the r/m operand, the reg operand, register by number. */
unsigned gen_ld_rm(struct tctx *t, unsigned size);
void gen_st_rm(struct tctx *t, unsigned size, unsigned val);
unsigned gen_ld_reg(struct tctx *t, unsigned reg, unsigned size);
void gen_st_reg(struct tctx *t, unsigned reg, unsigned size, unsigned val);
unsigned gen_ea(struct tctx *t);
unsigned gen_seg(struct tctx *t);
unsigned gen_imm(struct tctx *t, uint64_t v);
void gen_push(struct tctx *t, unsigned size, unsigned val);
unsigned gen_pop(struct tctx *t, unsigned size);
void gen_exc(struct tctx *t, int vec, uint32_t err);
struct uop *gen_helper(struct tctx *t, tcg_helper fn, unsigned size, unsigned d,
		       unsigned a, unsigned b, unsigned x, bool ends);
unsigned stack_size(struct tctx *t);
uint64_t next_eip(struct tctx *t);

/* opt.c: mark flag work that no later micro-op of the block reads. */
void tcg_opt_flags(struct uop *u, unsigned n);
/* opt.c: fold constants into their consumer; returns the new count. */
unsigned tcg_opt_imm(struct uop *u, unsigned n);
/* opt.c: drop instruction markers nothing reads; returns the new count. */
unsigned tcg_opt_insns(struct uop *u, unsigned n);

/* Instruction groups: each returns false if it does not know the opcode. */
bool tcg_tr_alu(struct tctx *t);
bool tcg_tr_ctl(struct tctx *t);
bool tcg_tr_str(struct tctx *t);
bool tcg_tr_sys(struct tctx *t);
bool tcg_tr_misc(struct tctx *t);
bool tcg_tr_legacy(struct tctx *t);
bool tcg_tr_sse(struct tctx *t);

#endif
