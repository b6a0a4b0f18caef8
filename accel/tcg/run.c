/*
 * The vCPU execution loop: take interrupts, sleep in hlt and in
 * wait-for-SIPI, find or translate the next block and run it, until
 * something the machine must see (a kick, a triple fault, an error).
 *
 * Exceptions raised anywhere below (soft-MMU, helpers, delivery itself)
 * longjmp back to the setjmp here with the guest state already pointing
 * at the handler, so the loop simply continues.
 */
#include <stdio.h>
#include <string.h>

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

/* Deliver an NMI or a maskable interrupt if one is pending and allowed. */
static void check_interrupts(struct tcg_cpu *c)
{
	struct irqchip *ic = tcg_irqchip(c);
	int vec;

	if (!ic || !__atomic_load_n(&c->irq_hint, __ATOMIC_ACQUIRE) || c->shadow)
		return;
	c->insn_eip = c->rip;
	/* NMIs are blocked from delivery until the next iret. */
	if (!c->nmi_blocked && irqchip_take_nmi(ic, c->index)) {
		c->nmi_blocked = true;
		tcg_do_interrupt(c, EXC_NMI, false, 0, INT_HW, c->rip);
		return;
	}
	if (!(c->rflags & F_IF))
		return;		/* the hint stays for when IF is set again */
	__atomic_store_n(&c->irq_hint, false, __ATOMIC_RELEASE);
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
	/* An EOI, TPR or ICR write may have made an interrupt deliverable:
	 * look at once rather than at the end of the block. */
	if (__atomic_load_n(&c->irq_hint, __ATOMIC_ACQUIRE))
		c->brk = true;
}

int tcg_run_loop(struct tcg_cpu *c, struct accel_exit *ex)
{
	struct tb *tb;
	bool tf;

	memset(ex, 0, sizeof(*ex));
	setjmp(c->jmp);
	for (;;) {
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
			if (!tcg_irqchip(c)) {
				ex->reason = ACCEL_EXIT_HALT;
				return 0;
			}
			/* A masked interrupt does not end hlt; an NMI does. */
			if (c->irq_hint && !(c->rflags & F_IF)) {
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
		tf = c->rflags & F_TF;
		c->shadow = false;
		c->cur_phys = tb->phys;
		c->cur_end = tb->phys + tb->size;
		c->brk = false;
		tcg_interp(c, tb);
		c->cur_end = 0;
		if (tf) {
			/* Single-step trap after the instruction (DR6.BS). */
			c->dr[6] |= 1u << 14;
			c->insn_eip = c->rip;
			tcg_do_interrupt(c, EXC_DB, false, 0, INT_EXC, c->rip);
		}
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
