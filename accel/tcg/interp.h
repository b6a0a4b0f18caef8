/* Micro-ops whose semantics are large enough to live in their own file. */
#ifndef VIREO_TCG_INTERP_H
#define VIREO_TCG_INTERP_H

#include "accel/tcg/tcg.h"

void tcg_exec_shift(struct tcg_cpu *c, const struct uop *u);
void tcg_exec_shd(struct tcg_cpu *c, const struct uop *u);
void tcg_exec_mul(struct tcg_cpu *c, const struct uop *u);
void tcg_exec_div(struct tcg_cpu *c, const struct uop *u);
void tcg_exec_imul2(struct tcg_cpu *c, const struct uop *u);
void tcg_exec_bt(struct tcg_cpu *c, const struct uop *u);
void tcg_exec_bitscan(struct tcg_cpu *c, const struct uop *u);

/*
 * For the code generator: one micro-op that is not control flow, with
 * the interpreter's semantics (true: the block stops, rip is set), and
 * the condition test of U_JCC.
 */
bool tcg_uop_exec(struct tcg_cpu *c, const struct uop *u);
bool tcg_uop_cond(struct tcg_cpu *c, unsigned cc);

#endif
