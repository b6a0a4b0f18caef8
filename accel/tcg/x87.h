/* x87 internals shared by x87.c (the stack and arithmetic) and
 * x87_mem.c (memory operands, environment, save/restore). */
#ifndef VIREO_TCG_X87_H
#define VIREO_TCG_X87_H

#include "accel/tcg/sse.h"

#define SW_IE 0x0001
#define SW_DE 0x0002
#define SW_ZE 0x0004
#define SW_SF 0x0040
#define SW_ES 0x0080
#define SW_C0 0x0100
#define SW_C1 0x0200
#define SW_C2 0x0400
#define SW_C3 0x4000
#define SW_B 0x8000
#define SW_CC (SW_C0 | SW_C1 | SW_C2 | SW_C3)

struct x87 {
	struct tcg_cpu *c;
	uint16_t flags;		/* exception bits and C1 of this instruction */
	bool ud;		/* not an x87 instruction this CPU has */
	bool keep_c1;		/* fcomi: C1 changes only on stack underflow */
};

/*
 * The operations whose C1 (rounded up) matters run as host instructions,
 * with the status word read right after them: a later host store would
 * overwrite C1.
 */
#define HOST_OP2(insn, a, b, r, sw) \
	asm volatile(insn "\n\tfnstsw %1" : "=t"(r), "=m"(sw) : "0"(a), "u"(b))
#define HOST_OP1(insn, a, r, sw) \
	asm volatile(insn "\n\tfnstsw %1" : "=t"(r), "=m"(sw) : "0"(a))

uint16_t x87_host_sw(void);
bool x87_is_empty(const struct tcg_cpu *c, int i);
void x87_set_tag(struct tcg_cpu *c, int i, unsigned tag);
bool x87_pre_fault(const struct x87 *x);
long double *x87_reg(struct tcg_cpu *c, int i);
long double x87_get(struct x87 *x, int i);
void x87_put(struct x87 *x, int i, long double v);
void x87_push(struct x87 *x, long double v);
void x87_pop(struct tcg_cpu *c);
long double x87_arith(struct x87 *x, int op, long double a, long double b);
bool x87_snan(long double v);
bool x87_denormal(long double v);
unsigned x87_compare(struct x87 *x, long double a, long double b, bool quiet);
unsigned x87_full_tags(const struct tcg_cpu *c);
uint16_t x87_status(const struct tcg_cpu *c);
/* D8-DF with a memory operand; reg field r. */
void x87_mem_form(struct x87 *x, const struct uop *u, unsigned op, unsigned r);

#endif
