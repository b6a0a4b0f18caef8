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

#endif
