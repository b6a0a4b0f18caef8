/*
 * TCG stage 2: host code for translation blocks (jit_x86.c).
 *
 * A block's micro-ops become one host function, int f(struct tcg_cpu *),
 * that returns the exit it left by (tcg_interp's numbering: 0, 1, 2 may
 * be chained, -1 may not).  Host code lives in a per-vCPU buffer that is
 * emptied together with the block arena (tcg_tb_flush), so a block's
 * host code lives exactly as long as the block.
 */
#ifndef VIREO_TCG_JIT_H
#define VIREO_TCG_JIT_H

#include <stdbool.h>
#include <stddef.h>

#include "accel/tcg/tcg.h"

struct tcg_jit;

/* A code buffer, or NULL (errno set) if the host cannot run host code. */
struct tcg_jit *tcg_jit_create(void);
void tcg_jit_destroy(struct tcg_jit *j);
/* Forget all host code: the blocks it belongs to are gone. */
void tcg_jit_reset(struct tcg_jit *j);
/* Whether host code for a block of nr_uops micro-ops fits. */
bool tcg_jit_room(const struct tcg_jit *j, unsigned nr_uops);
/*
 * Host code for tb (which must stay where it is), or NULL if it does not
 * fit; *chain is where a direct jump from another block's code enters it.
 */
void *tcg_jit_gen(struct tcg_jit *j, const struct tb *tb, void **chain);
/* Run tb's host code and the blocks chained after it (tcg_interp's contract). */
void tcg_jit_run(struct tcg_cpu *c, struct tb *tb);

#endif
