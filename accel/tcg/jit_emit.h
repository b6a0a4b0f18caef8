/*
 * The x86-64 instruction emitter of the code generator (jit_x86.c, and
 * jit_mem.c for guest memory accesses).  Private to accel/tcg/; the code
 * it emits runs on x86-64 hosts only.
 *
 * Generated code keeps struct tcg_cpu in rbx (see jit_x86.c); these
 * helpers encode the few instruction forms it needs.
 */
#ifndef VIREO_TCG_JIT_EMIT_H
#define VIREO_TCG_JIT_EMIT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "accel/tcg/tcg.h"

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8 };

struct emit {
	uint8_t *p;
};

#define OFF_T(i)	(int32_t)(offsetof(struct tcg_cpu, t) + 8 * (i))
#define OFF_GPR(i)	(int32_t)(offsetof(struct tcg_cpu, gpr) + 8 * (i))
#define OFF(f)		(int32_t)offsetof(struct tcg_cpu, f)

static inline void e8(struct emit *e, uint8_t b)
{
	*e->p++ = b;
}

static inline void e32(struct emit *e, uint32_t v)
{
	memcpy(e->p, &v, 4);
	e->p += 4;
}

static inline void e64(struct emit *e, uint64_t v)
{
	memcpy(e->p, &v, 8);
	e->p += 8;
}

/* ModRM for [base + disp32] with register field reg (base not rsp). */
static inline void mem_at(struct emit *e, unsigned reg, unsigned base, int32_t off)
{
	e8(e, 0x80 | (reg & 7) << 3 | base);
	e32(e, (uint32_t)off);
}

/* ModRM for [rbx + disp32]: a field of struct tcg_cpu. */
static inline void mem_rbx(struct emit *e, unsigned reg, int32_t off)
{
	mem_at(e, reg, RBX, off);
}

/* mov reg, [rbx + off] (64 bits) */
static inline void ld(struct emit *e, unsigned reg, int32_t off)
{
	e8(e, 0x48 | (reg >= 8 ? 4 : 0));
	e8(e, 0x8b);
	mem_rbx(e, reg, off);
}

/* mov [rbx + off], reg (64 bits) */
static inline void st(struct emit *e, int32_t off, unsigned reg)
{
	e8(e, 0x48 | (reg >= 8 ? 4 : 0));
	e8(e, 0x89);
	mem_rbx(e, reg, off);
}

/* mov reg, imm (reg < 8), in the shortest form. */
static inline void movi(struct emit *e, unsigned reg, uint64_t imm)
{
	if (imm <= 0xffffffffull) {
		e8(e, 0xb8 + reg);
		e32(e, (uint32_t)imm);
	} else if ((int64_t)imm == (int32_t)imm) {
		e8(e, 0x48);
		e8(e, 0xc7);
		e8(e, 0xc0 + reg);
		e32(e, (uint32_t)imm);
	} else {
		e8(e, 0x48);
		e8(e, 0xb8 + reg);
		e64(e, imm);
	}
}

/* mov dword [rbx + off], imm32 */
static inline void st32i(struct emit *e, int32_t off, uint32_t imm)
{
	e8(e, 0xc7);
	mem_rbx(e, 0, off);
	e32(e, imm);
}

/* mov qword [rbx + off], imm (via rax when it does not sign-extend). */
static inline void st64i(struct emit *e, int32_t off, uint64_t imm)
{
	if ((int64_t)imm == (int32_t)imm) {
		e8(e, 0x48);
		e8(e, 0xc7);
		mem_rbx(e, 0, off);
		e32(e, (uint32_t)imm);
		return;
	}
	movi(e, RAX, imm);
	st(e, off, RAX);
}

/* reg (rax..rbx) truncated to 8 << size bits: tcg_sized. */
static inline void zext(struct emit *e, unsigned reg, unsigned size)
{
	switch (size) {
	case 0: e8(e, 0x0f); e8(e, 0xb6); e8(e, 0xc0 | reg << 3 | reg); break;
	case 1: e8(e, 0x0f); e8(e, 0xb7); e8(e, 0xc0 | reg << 3 | reg); break;
	case 2: e8(e, 0x89); e8(e, 0xc0 | reg << 3 | reg); break;
	}
}

/* 64-bit op dst, src for the "op r/m64, r64" opcodes. */
enum { OP_ADD = 0x01, OP_OR = 0x09, OP_AND = 0x21, OP_SUB = 0x29, OP_XOR = 0x31,
       OP_CMP = 0x39, OP_MOV = 0x89, OP_TEST = 0x85 };

static inline void alu_rr(struct emit *e, uint8_t op, unsigned dst, unsigned src)
{
	e8(e, 0x48);
	e8(e, op);
	e8(e, 0xc0 | src << 3 | dst);
}

static inline void call(struct emit *e, const void *fn)
{
	movi(e, RAX, (uintptr_t)fn);
	e8(e, 0xff);
	e8(e, 0xd0);
}

/* return code from the generated function */
static inline void ret(struct emit *e, int code)
{
	e8(e, 0xb8);
	e32(e, (uint32_t)code);
	e8(e, 0x5b);		/* pop rbx */
	e8(e, 0xc3);
}

/* A short forward branch (jcc rel8, opcode op) to be patched by land. */
static inline uint8_t *skip(struct emit *e, uint8_t op)
{
	e8(e, op);
	e8(e, 0);
	return e->p - 1;
}

static inline void land(struct emit *e, uint8_t *at)
{
	*at = (uint8_t)(e->p - (at + 1));
}

enum { JAE = 0x73, JZ = 0x74, JNZ = 0x75 };

/* Condition codes of jcc (the low nibble of its opcode). */
enum { X_B = 0x2, X_NC = 0x3, X_E = 0x4, X_NE = 0x5, X_A = 0x7 };

/*
 * A forward branch with a 32-bit displacement, to be patched by land32:
 * jcc rel32 with condition cc, or jmp rel32 if cc < 0.
 */
static inline uint8_t *skip32(struct emit *e, int cc)
{
	if (cc < 0) {
		e8(e, 0xe9);
	} else {
		e8(e, 0x0f);
		e8(e, 0x80 | cc);
	}
	e32(e, 0);
	return e->p - 4;
}

static inline void land32(struct emit *e, uint8_t *at)
{
	int32_t d = (int32_t)(e->p - (at + 4));

	memcpy(at, &d, 4);
}

/* jit_mem.c: code for U_LD and U_ST. */
/*
 * jit_mem.c: code for U_LD or U_ST; cs64: the block is 64-bit code,
 * where a TLB hit is done inline.
 */
void tcg_jit_gen_mem(struct emit *e, const struct uop *u, bool cs64);

#endif
