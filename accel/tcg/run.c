/*
 * The vCPU execution loop and the translation cache.
 *
 * The loop takes interrupts, sleeps in hlt and in wait-for-SIPI, finds or
 * translates the next block and runs it, until something the machine must
 * see (a kick, a triple fault, a device request).  Exceptions raised
 * anywhere below (soft-MMU, helpers, delivery itself) longjmp back to the
 * setjmp here with the guest state already pointing at the handler, so the
 * loop simply continues.
 *
 * The cache is per vCPU: blocks in an arena, found through a hash on the
 * guest-physical address of their first byte.  Every block keeps a copy
 * of the guest bytes it was translated from, and a lookup compares them
 * with guest memory before the block runs: a block whose bytes changed,
 * whoever changed them (this vCPU, another one, a device's DMA), is
 * translated again.  Writes into the block that is running are caught by
 * the soft-MMU (tcg_mark_written sets c->brk), and the block stops before
 * its next instruction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/tcg/jit.h"
#include "accel/tcg/tcg.h"
#include "irqchip.h"
#include "log.h"
#include "machine.h"

static void apply_init_sipi(struct tcg_cpu *c)
{
	struct cpu_state s;
	bool init;
	int sipi;

	pthread_mutex_lock(&c->lock);
	init = c->init_req;
	sipi = c->sipi_vector;
	c->init_req = false;
	c->sipi_vector = -1;
	pthread_mutex_unlock(&c->lock);
	if (init) {
		/* INIT: the reset state, then wait for a startup IPI. */
		cpu_state_reset(&s);
		tcg_cpu_reset_state(c, &s);
		c->wait_sipi = true;
		c->halted = false;
	}
	if (sipi >= 0 && c->wait_sipi) {
		c->seg[S_CS].selector = sipi << 8;
		c->seg[S_CS].base = (uint64_t)sipi << 12;
		c->rip = 0;
		c->wait_sipi = false;
		tcg_update_mode(c);
	}
}

/* Block until something may have changed for a halted or waiting vCPU. */
static void sleep_until_event(struct tcg_cpu *c)
{
	pthread_mutex_lock(&c->lock);
	while (!c->kick && !c->irq_hint && !c->init_req && c->sipi_vector < 0)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Deliver an NMI or a maskable interrupt if one is pending and allowed.
 * A hint that arrives while IF is 0 is consumed once (an NMI is taken at
 * once) and remembered in irq_masked, so that the blocks that run with
 * interrupts off do not ask the irqchip, under its lock, every time.
 */
static void check_interrupts(struct tcg_cpu *c)
{
	struct irqchip *ic = tcg_irqchip(c);
	int vec;

	if (!ic) {
		/* Nothing to ask (a test machine): a hint left from reset
		 * would stop every chain. */
		if (__atomic_load_n(&c->irq_hint, __ATOMIC_RELAXED))
			__atomic_store_n(&c->irq_hint, false, __ATOMIC_RELAXED);
		return;
	}
	if (c->shadow)
		return;
	if (!__atomic_load_n(&c->irq_hint, __ATOMIC_ACQUIRE) &&
	    !(c->irq_masked && (c->rflags & F_IF)))
		return;
	c->insn_eip = c->rip;
	c->chain_from = NULL;
	c->jc_epoch++;
	/* Cleared before asking, so a request that arrives meanwhile sets
	 * it again and is seen at the next block. */
	__atomic_store_n(&c->irq_hint, false, __ATOMIC_SEQ_CST);
	/* NMIs are blocked from delivery until the next iret. */
	if (!c->nmi_blocked && irqchip_take_nmi(ic, c->index)) {
		c->nmi_blocked = true;
		/* A maskable interrupt may be pending as well. */
		c->irq_masked = true;
		tcg_do_interrupt(c, EXC_NMI, false, 0, INT_HW, c->rip);
		return;
	}
	if (!(c->rflags & F_IF)) {
		c->irq_masked = true;	/* look again when IF is set */
		return;
	}
	c->irq_masked = false;
	if (!irqchip_has_interrupt(ic, c->index))
		return;
	vec = irqchip_ack_interrupt(ic, c->index);
	if (vec < 0)
		return;
	/* More may be pending behind this one. */
	__atomic_store_n(&c->irq_hint, true, __ATOMIC_RELEASE);
	tcg_do_interrupt(c, vec, false, 0, INT_HW, c->rip);
}

void tcg_after_io(struct tcg_cpu *c)
{
	if (machine_request_pending(c->m)) {
		c->exit_req = true;
		c->brk = true;
	}
	/* An EOI, TPR or ICR write may have made an interrupt deliverable,
	 * or the device kicked this vCPU: look at once rather than at the
	 * end of the block (which chaining may put far away). */
	if (__atomic_load_n(&c->irq_hint, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&c->kick, __ATOMIC_ACQUIRE))
		c->brk = true;
	/* The access may be the last of its block: no direct jump either. */
	if (c->brk)
		__atomic_store_n(&c->chain_stop, 1, __ATOMIC_RELAXED);
}

/*
 * RF (which an IRET back to a fault restores, see gate_flags) lives until
 * the next instruction completes.  It only suppresses instruction
 * breakpoints, which this translator does not have, so clearing it as that
 * instruction starts - here and on a chained entry - is the same, and
 * keeps it from going stale in later frames.
 */
static void enter_tb(struct tcg_cpu *c, const struct tb *tb)
{
	c->shadow = false;
	c->rflags &= ~(uint64_t)F_RF;
	c->cur_phys = tb->phys;
	c->cur_end = tb->phys + tb->size;
	c->brk = false;
}

static struct tb *tb_chained(struct tcg_cpu *c);
static struct tb *jc_find(struct tcg_cpu *c);

/* Anything the run loop must see before the next block. */
static inline bool event_pending(struct tcg_cpu *c)
{
	return c->exit_req || c->trace || c->shutdown ||
	       __atomic_load_n(&c->kick, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&c->irq_hint, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&c->init_req, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&c->sipi_vector, __ATOMIC_RELAXED) >= 0 ||
	       (c->irq_masked && (c->rflags & F_IF));
}

/*
 * Called by the interpreter when tb left through exit (tcg_interp's
 * codes): the block to run next without returning, or NULL.  A chain
 * stops when anything the loop looks at is pending, and never enters a
 * single-stepped block (the loop raises its trap).
 */
struct tb *tcg_tb_next(struct tcg_cpu *c, struct tb *tb, int exit)
{
	struct tb *next;

	c->chain_from = exit >= 0 && tb->cacheable ? tb : NULL;
	c->chain_exit = exit;
	/* A set chain_stop always ends here, so the run loop clears it. */
	if (!c->chain_from || (tb->flags & TBF_TF) ||
	    __atomic_load_n(&c->chain_stop, __ATOMIC_RELAXED) || event_pending(c))
		return NULL;
	c->insn_eip = c->rip;
	tcg_update_mode(c);
	if (c->tb_flags & TBF_TF)
		return NULL;
	next = tb_chained(c);
	if (!next)
		next = jc_find(c);
	if (next)
		enter_tb(c, next);
	return next;
}

static void run_tb(struct tcg_cpu *c, struct tb *tb)
{
	enter_tb(c, tb);
	if (tb->host)
		tcg_jit_run(c, tb);
	else
		tcg_interp(c, tb);
	c->cur_end = 0;
	if (tb->flags & TBF_TF) {
		c->chain_from = NULL;
		/* Single-step trap after the instruction (DR6.BS). */
		c->dr[6] |= 1u << 14;
		c->insn_eip = c->rip;
		tcg_do_interrupt(c, EXC_DB, false, 0, INT_EXC, c->rip);
	}
}

int tcg_run_loop(struct tcg_cpu *c, struct accel_exit *ex)
{
	struct tb *tb;

	memset(ex, 0, sizeof(*ex));
	c->chain_from = NULL;
	c->jc_epoch++;
	if (setjmp(c->jmp)) {
		/* An exception: rip is a handler. */
		c->chain_from = NULL;
		c->jc_epoch++;
	}
	for (;;) {
		/* Before the flags are read: an event posted meanwhile sets
		 * it again (seq_cst on both sides, see wake_cpu). */
		if (__atomic_load_n(&c->chain_stop, __ATOMIC_RELAXED))
			__atomic_store_n(&c->chain_stop, 0, __ATOMIC_SEQ_CST);
		if (c->shutdown) {
			c->shutdown = false;
			ex->reason = ACCEL_EXIT_SHUTDOWN;
			return 0;
		}
		if (__atomic_load_n(&c->kick, __ATOMIC_ACQUIRE)) {
			pthread_mutex_lock(&c->lock);
			c->kick = false;
			pthread_mutex_unlock(&c->lock);
			ex->reason = ACCEL_EXIT_KICK;
			return 0;
		}
		if (__atomic_load_n(&c->init_req, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&c->sipi_vector, __ATOMIC_ACQUIRE) >= 0)
			apply_init_sipi(c);
		if (c->wait_sipi) {
			/* No interrupts in wait-for-SIPI: only INIT, SIPI or a kick. */
			pthread_mutex_lock(&c->lock);
			c->irq_hint = false;
			while (!c->kick && !c->init_req && c->sipi_vector < 0)
				pthread_cond_wait(&c->cond, &c->lock);
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		check_interrupts(c);
		if (c->halted) {
			c->chain_from = NULL;
			if (!tcg_irqchip(c)) {
				ex->reason = ACCEL_EXIT_HALT;
				return 0;
			}
			/* A masked interrupt does not end hlt; an NMI does. */
			if (__atomic_load_n(&c->irq_hint, __ATOMIC_ACQUIRE) &&
			    !(c->rflags & F_IF)) {
				pthread_mutex_lock(&c->lock);
				c->irq_hint = false;
				pthread_mutex_unlock(&c->lock);
			}
			sleep_until_event(c);
			continue;
		}
		c->insn_eip = c->rip;
		if (c->trace)
			fprintf(stderr, "tcg: cpu %u %04x:%08llx\n", c->index,
				c->seg[S_CS].selector, (unsigned long long)c->rip);
		tcg_update_mode(c);
		tb = tcg_tb_find(c);
		/* An interrupt held back by a shadow, or one more pending
		 * behind the one just delivered: tcg_tb_next must see it. */
		if (event_pending(c))
			__atomic_store_n(&c->chain_stop, 1, __ATOMIC_RELAXED);
		run_tb(c, tb);
		if (c->exit_req) {
			/* The access is done; like a PIO exit after which the
			 * machine has a request, the generic loop parks us. */
			c->exit_req = false;
			ex->reason = ACCEL_EXIT_PIO;
			ex->pio.count = 0;
			return 0;
		}
	}
}

/*
 * A Linux boot fills the arena with about 25,000 blocks before a flush;
 * 8192 buckets made every full lookup walk about three of them (a cache
 * miss each, a third of tcg_tb_find's time).
 */
#define TB_HASH_SIZE	65536
#define TB_JC_SIZE	4096
#define TB_ARENA_SIZE	(32u << 20)

static size_t scratch_size(void)
{
	return sizeof(struct tb) + TB_MAX_UOPS * sizeof(struct uop) + 4096 + 32;
}

int tcg_tb_init(struct tcg_cpu *c)
{
	struct tb *s;

	c->tb_hash = calloc(TB_HASH_SIZE, sizeof(*c->tb_hash));
	c->tb_jc = calloc(TB_JC_SIZE, sizeof(*c->tb_jc));
	c->tb_arena = malloc(TB_ARENA_SIZE);
	s = malloc(scratch_size());
	if (!c->tb_hash || !c->tb_jc || !c->tb_arena || !s) {
		free(c->tb_hash);
		free(c->tb_jc);
		free(c->tb_arena);
		free(s);
		return -ENOMEM;
	}
	s->uops = (struct uop *)(s + 1);
	s->host = NULL;		/* uncached blocks are interpreted */
	s->code = (uint8_t *)(s->uops + TB_MAX_UOPS);
	c->scratch = s;
	c->tb_arena_size = TB_ARENA_SIZE;
	c->tb_arena_used = 0;
	return 0;
}

void tcg_tb_destroy(struct tcg_cpu *c)
{
	free(c->tb_hash);
	free(c->tb_jc);
	free(c->tb_arena);
	free(c->scratch);
	tcg_jit_destroy(c->jit);
	c->jit = NULL;
	c->tb_hash = NULL;
	c->tb_jc = NULL;
	c->tb_arena = NULL;
	c->scratch = NULL;
}

void tcg_tb_flush(struct tcg_cpu *c)
{
	memset(c->tb_hash, 0, TB_HASH_SIZE * sizeof(*c->tb_hash));
	c->tb_arena_used = 0;
	if (c->jit)
		tcg_jit_reset(c->jit);	/* host code dies with its blocks */
	c->chain_from = NULL;
	c->jc_epoch++;		/* the jump cache points into the arena */
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
	if (c->tb_arena_used + need > c->tb_arena_size ||
	    (c->jit && !tcg_jit_room(c->jit, s->nr_uops))) {
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
	tb->invalid = false;
	memset(tb->link, 0, sizeof(tb->link));
	tb->link_gen = 0;
	tb->host = c->jit ? tcg_jit_gen(c->jit, tb, &tb->host_chain) : NULL;
	tb->next = c->tb_hash[h];
	c->tb_hash[h] = tb;
	return tb;
}

/* The block linked to the exit the last block took, if still valid. */
static struct tb *tb_chained(struct tcg_cpu *c)
{
	struct tb *from = c->chain_from, *tb;

	if (!from || c->tlb_gen != c->chain_tlb_gen ||
	    from->link_gen != __atomic_load_n(&c->vm->code_gen, __ATOMIC_ACQUIRE))
		return NULL;
	tb = from->link[c->chain_exit];
	if (!tb || tb->invalid || tb->eip != c->rip || tb->flags != c->tb_flags ||
	    tb->cs_base != c->seg[S_CS].base)
		return NULL;
	/* The fetch's limit check, which a full lookup does in tcg_lin. */
	if (!(tb->flags & TBF_CS64) && tb->eip > c->seg[S_CS].limit)
		return NULL;
	return tb;
}

/*
 * Link the exit the last block took to tb, found by a full lookup at
 * code generation gen.  Only within one guest page, linear and physical:
 * then the mapping that took the first block of a chain to its page
 * takes every block of the chain to its own, and a chain stops at any
 * TLB flush (tlb_gen) and any store into code (code_gen).
 */
static void tb_link(struct tcg_cpu *c, struct tb *tb, uint64_t gen)
{
	struct tb *from = c->chain_from;

	if (!from || !tb->cacheable || (from->phys ^ tb->phys) >> 12 ||
	    ((from->cs_base + from->eip) ^ (tb->cs_base + tb->eip)) >> 12)
		return;
	/*
	 * Generated code follows a link without looking at the mode or CS
	 * (jit_x86.c): every change of either ends its block by an exit
	 * that is never linked, so a chain keeps the mode and CS base of
	 * its first block, which a lookup checked.  Host code jumps only
	 * to host code, and never while tracing.
	 */
	if (tb->flags != from->flags || tb->cs_base != from->cs_base ||
	    (from->host && !tb->host) || c->trace)
		return;
	if (from->link_gen != gen) {
		memset(from->link, 0, sizeof(from->link));
		from->link_gen = gen;
	}
	from->link[c->chain_exit] = tb;
}

/* Note that the page of phys holds translated code (see tcg_vm). */
static void code_page_mark(struct tcg_cpu *c, uint64_t phys)
{
	size_t cp = (phys >> 12) % TCG_CODE_PAGE_BITS, w = 8 * sizeof(unsigned long);
	unsigned long *word = &c->vm->code_pages[cp / w];

	if (!(__atomic_load_n(word, __ATOMIC_RELAXED) & (1ul << (cp % w))))
		__atomic_fetch_or(word, 1ul << (cp % w), __ATOMIC_SEQ_CST);
}

/*
 * The jump cache: the block last found for an RIP, from anywhere (a
 * call or return across pages, which chaining does not cover), without
 * the soft-MMU walk, hash and byte comparison.  An entry holds while no
 * TLB flush (the mapping), no store into code (code_gen), no change of
 * CPL (the page's user/supervisor check) and no interrupt, exception or
 * exit from the loop (jc_epoch: after those, the next lookups compare
 * bytes again, which is what catches DMA into code) happened.
 */
static struct tb_jc *jc_slot(struct tcg_cpu *c)
{
	return &c->tb_jc[(c->rip ^ (c->rip >> 12)) % TB_JC_SIZE];
}

static struct tb *jc_lookup(struct tcg_cpu *c)
{
	struct tb_jc *e = jc_slot(c);
	struct tb *tb;

	if (e->epoch != c->jc_epoch || e->tlb_gen != c->tlb_gen || e->cpl != c->cpl ||
	    e->code_gen != __atomic_load_n(&c->vm->code_gen, __ATOMIC_ACQUIRE))
		return NULL;
	tb = e->tb;
	if (tb->invalid || tb->eip != c->rip || tb->flags != c->tb_flags ||
	    tb->cs_base != c->seg[S_CS].base ||
	    (!(tb->flags & TBF_CS64) && tb->eip > c->seg[S_CS].limit))
		return NULL;
	return tb;
}

/*
 * The jump cache's block for c->rip, linked to the exit just taken.
 * Also called from tcg_tb_next: a call or return to another page goes
 * on without the run loop when nothing is pending (which is all the
 * loop would look at before the same lookup).
 */
static struct tb *jc_find(struct tcg_cpu *c)
{
	struct tb *tb = jc_lookup(c);

	if (tb) {
		c->chain_tlb_gen = c->tlb_gen;
		tb_link(c, tb, jc_slot(c)->code_gen);
	}
	return tb;
}

static void jc_insert(struct tcg_cpu *c, struct tb *tb, uint64_t gen)
{
	struct tb_jc *e = jc_slot(c);

	e->tb = tb;
	e->tlb_gen = c->tlb_gen;
	e->code_gen = gen;
	e->epoch = c->jc_epoch;
	e->cpl = c->cpl;
}

/*
 * The block for c->rip, translated if needed.  Faults on the fetch are
 * raised (the caller has set insn_eip to rip).
 */
struct tb *tcg_tb_find(struct tcg_cpu *c)
{
	uint64_t lin, phys, gen;
	uint32_t err;
	const uint8_t *hva;
	struct tb **pp, *tb;
	unsigned h;

	tb = tb_chained(c);
	if (tb)
		return tb;
	tb = jc_find(c);
	if (tb)
		return tb;
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
	/* The generation first, then the page mark, then the bytes: a
	 * store that the comparison misses advances the generation. */
	gen = __atomic_load_n(&c->vm->code_gen, __ATOMIC_SEQ_CST);
	code_page_mark(c, phys);
	c->chain_tlb_gen = c->tlb_gen;
	h = tb_hash(phys, c->rip);
	for (pp = &c->tb_hash[h]; (tb = *pp); pp = &tb->next) {
		if (tb->phys != phys || tb->eip != c->rip || tb->flags != c->tb_flags ||
		    tb->cs_base != c->seg[S_CS].base)
			continue;
		if (!memcmp(tb->code, hva, tb->size)) {
			tb_link(c, tb, gen);
			jc_insert(c, tb, gen);
			return tb;
		}
		/* The guest rewrote this code: drop the block. */
		tb->invalid = true;
		*pp = tb->next;
		break;
	}
	tcg_translate_tb(c, phys, lin, hva, false);
	if (!c->scratch->cacheable)
		return c->scratch;
	tb = tb_commit(c, h);
	tb_link(c, tb, gen);
	jc_insert(c, tb, gen);
	return tb;
}
