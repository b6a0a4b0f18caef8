/*
 * The translation cache of one vCPU: blocks in an arena, found through a
 * hash on the guest-physical address of their first byte.
 *
 * Invalidation: every block keeps a copy of the guest bytes it was
 * translated from, and a lookup compares them with guest memory before
 * the block runs.  A block whose bytes changed, whoever changed them (this
 * vCPU, another one, a device's DMA), is translated again.  Writes into
 * the block that is running are caught by the soft-MMU (tcg_mark_written
 * sets c->smc), and the block stops before its next instruction.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "accel/tcg/tcg.h"
#include "log.h"
#include "machine.h"

#define TB_HASH_SIZE	8192
#define TB_ARENA_SIZE	(32u << 20)

static size_t scratch_size(void)
{
	return sizeof(struct tb) + TB_MAX_UOPS * sizeof(struct uop) + 4096 + 32;
}

int tcg_tb_init(struct tcg_cpu *c)
{
	struct tb *s;

	c->tb_hash = calloc(TB_HASH_SIZE, sizeof(*c->tb_hash));
	c->tb_arena = malloc(TB_ARENA_SIZE);
	s = malloc(scratch_size());
	if (!c->tb_hash || !c->tb_arena || !s) {
		free(c->tb_hash);
		free(c->tb_arena);
		free(s);
		return -ENOMEM;
	}
	s->uops = (struct uop *)(s + 1);
	s->code = (uint8_t *)(s->uops + TB_MAX_UOPS);
	c->scratch = s;
	c->tb_arena_size = TB_ARENA_SIZE;
	c->tb_arena_used = 0;
	return 0;
}

void tcg_tb_destroy(struct tcg_cpu *c)
{
	free(c->tb_hash);
	free(c->tb_arena);
	free(c->scratch);
	c->tb_hash = NULL;
	c->tb_arena = NULL;
	c->scratch = NULL;
}

void tcg_tb_flush(struct tcg_cpu *c)
{
	memset(c->tb_hash, 0, TB_HASH_SIZE * sizeof(*c->tb_hash));
	c->tb_arena_used = 0;
}

static unsigned tb_hash(uint64_t phys, uint64_t eip)
{
	uint64_t h = phys * 0x9e3779b97f4a7c15ull ^ eip;

	return (h >> 40) % TB_HASH_SIZE;
}

/* Copy the scratch block into the arena and link it. */
static struct tb *tb_commit(struct tcg_cpu *c, unsigned h)
{
	struct tb *s = c->scratch, *tb;
	size_t need = sizeof(*tb) + s->nr_uops * sizeof(struct uop) + s->size;

	need = (need + 15) & ~(size_t)15;
	if (c->tb_arena_used + need > c->tb_arena_size) {
		tcg_tb_flush(c);
		h = tb_hash(s->phys, s->eip);
	}
	tb = (struct tb *)(c->tb_arena + c->tb_arena_used);
	c->tb_arena_used += need;
	*tb = *s;
	tb->uops = (struct uop *)(tb + 1);
	tb->code = (uint8_t *)(tb->uops + s->nr_uops);
	memcpy(tb->uops, s->uops, s->nr_uops * sizeof(struct uop));
	memcpy(tb->code, s->code, s->size);
	tb->next = c->tb_hash[h];
	c->tb_hash[h] = tb;
	return tb;
}

/*
 * The block for c->rip, translated if needed.  Faults on the fetch are
 * raised (the caller has set insn_eip to rip).
 */
struct tb *tcg_tb_find(struct tcg_cpu *c)
{
	uint64_t lin, phys;
	uint32_t err;
	const uint8_t *hva;
	struct tb **pp, *tb;
	unsigned h;

	lin = tcg_lin(c, S_CS, c->rip, 1, ACC_X);
	if (tcg_translate(c, lin, ACC_X, c->cpl == 3, &phys, &err))
		tcg_raise_pf(c, lin, err);
	hva = gpa_to_hva(&c->m->mem, phys, 1);
	if (!hva) {
		/* Code outside RAM (a ROM behind the MMIO bus): fetch the
		 * bytes of one instruction and run it uncached. */
		uint8_t *b = c->mmio_code;
		unsigned n = 0x1000 - (lin & 0xfff);

		if (n > 15)
			n = 15;
		for (unsigned k = 0; k < n; k++)
			b[k] = bus_read(&c->m->mmio, phys + k, 1);
		tcg_translate_tb(c, phys, lin, b, true);
		return c->scratch;
	}
	h = tb_hash(phys, c->rip);
	for (pp = &c->tb_hash[h]; (tb = *pp); pp = &tb->next) {
		if (tb->phys != phys || tb->eip != c->rip || tb->flags != c->tb_flags ||
		    tb->cs_base != c->seg[S_CS].base)
			continue;
		if (!memcmp(tb->code, hva, tb->size))
			return tb;
		/* The guest rewrote this code: drop the block. */
		*pp = tb->next;
		break;
	}
	tcg_translate_tb(c, phys, lin, hva, false);
	if (!c->scratch->cacheable)
		return c->scratch;
	return tb_commit(c, h);
}
