/*
 * tcg_accel_ops: the TCG accelerator behind the same interface as KVM.
 *
 * - Interrupts come from the user-space irqchip (include/irqchip.h),
 *   created by vm_init; set_irq and send_msi forward to it.
 * - Port I/O and MMIO are dispatched to the machine's buses from the vCPU
 *   thread by the soft-MMU and the I/O instructions: vcpu_run never
 *   returns ACCEL_EXIT_PIO or ACCEL_EXIT_MMIO.
 * - hlt sleeps inside vcpu_run until the irqchip kicks this vCPU (or
 *   vcpu_kick, which makes vcpu_run return ACCEL_EXIT_KICK).  Only a
 *   machine without an irqchip (unit tests) returns ACCEL_EXIT_HALT.
 * - A triple fault returns ACCEL_EXIT_SHUTDOWN.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "accel/tcg/jit.h"
#include "accel/tcg/sse.h"
#include "accel/tcg/tcg.h"
#include "irqchip.h"
#include "log.h"
#include "machine.h"
#include "vcpu.h"

/*
 * What the irqchip asks of vCPU index (any thread, the timer thread too):
 * done under cpus_lock, so the vCPU cannot be freed meanwhile.  c->lock
 * orders the flags with sleep_until_event's wait; the vCPU thread also
 * reads them between blocks without it (tcg_tb_next) and sets or clears
 * irq_hint itself, so each is stored atomically, and only when raised: a
 * read-modify-write here could put back a hint the vCPU just set.
 */
static void wake_cpu(struct tcg_vm *vm, unsigned index, bool irq, bool init, int sipi)
{
	struct tcg_cpu *c;

	pthread_rwlock_rdlock(&vm->cpus_lock);
	c = index < vm->nr_cpus ? vm->cpus[index] : NULL;
	if (c) {
		pthread_mutex_lock(&c->lock);
		if (irq)
			__atomic_store_n(&c->irq_hint, true, __ATOMIC_RELEASE);
		if (init)
			__atomic_store_n(&c->init_req, true, __ATOMIC_RELEASE);
		if (sipi >= 0)
			__atomic_store_n(&c->sipi_vector, sipi, __ATOMIC_RELEASE);
		/* After the flag: generated code jumping from block to block
		 * looks at this word alone (tcg.h). */
		__atomic_store_n(&c->chain_stop, 1, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_rwlock_unlock(&vm->cpus_lock);
}

/* vm->cpus[index] from old to new (a test's vCPU may have no VM). */
static void tcg_cpus_set(struct tcg_vm *vm, unsigned index, struct tcg_cpu *old,
			 struct tcg_cpu *new)
{
	if (!vm)
		return;
	pthread_rwlock_wrlock(&vm->cpus_lock);
	if (index < vm->nr_cpus && vm->cpus[index] == old)
		vm->cpus[index] = new;
	pthread_rwlock_unlock(&vm->cpus_lock);
}

struct irqchip *tcg_irqchip(struct tcg_cpu *c)
{
	return c->vm ? c->vm->irqchip : NULL;
}

static void cb_kick(void *opaque, unsigned cpu)
{
	wake_cpu(opaque, cpu, true, false, -1);
}

static void cb_init(void *opaque, unsigned cpu)
{
	wake_cpu(opaque, cpu, false, true, -1);
}

static void cb_sipi(void *opaque, unsigned cpu, uint8_t vector)
{
	wake_cpu(opaque, cpu, false, false, vector);
}

static const struct irqchip_cpu_ops tcg_irq_ops = {
	.kick = cb_kick, .init = cb_init, .sipi = cb_sipi,
};

static int tcg_probe(char *why, size_t len)
{
	return 0;
}

/*
 * The properties of the tcg entry of the -accel list ("tcg,jit=off").
 * Host code is the default where there is a code generator.
 */
static int tcg_parse_props(struct tcg_vm *vm, const char *list, char *err, size_t errlen)
{
	char buf[256], *save, *t, *p;

#if defined(__x86_64__)
	vm->jit = true;
#endif
	snprintf(buf, sizeof(buf), "%s", list ? list : "");
	for (t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		p = strchr(t, ',');
		if (!p || p - t != 3 || strncmp(t, "tcg", 3))
			continue;
		for (char *s2, *q = strtok_r(p + 1, ",", &s2); q; q = strtok_r(NULL, ",", &s2)) {
			if (!strcmp(q, "jit=on")) {
#if !defined(__x86_64__)
				snprintf(err, errlen, "tcg: jit=on needs an x86-64 host");
				return -EINVAL;
#endif
				vm->jit = true;
			} else if (!strcmp(q, "jit=off")) {
				vm->jit = false;
			} else {
				snprintf(err, errlen, "tcg: unknown property '%s' (known: jit=on|off)", q);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int tcg_vm_init(struct machine *m, char *err, size_t errlen)
{
	struct tcg_vm *vm = calloc(1, sizeof(*vm));
	unsigned n = m->cfg.smp ? m->cfg.smp : 1;

	if (!vm) {
		snprintf(err, errlen, "tcg: out of memory");
		return -ENOMEM;
	}
	vm->m = m;
	if (m->cfg.cpu.host) {
		free(vm);
		snprintf(err, errlen, "tcg: -cpu host needs KVM; -cpu max is the translator's "
			 "full model");
		return -ENOTSUP;
	}
	if (tcg_parse_props(vm, m->cfg.accel, err, errlen)) {
		free(vm);
		return -EINVAL;
	}
	vm->cpus = calloc(n, sizeof(*vm->cpus));
	if (!vm->cpus) {
		free(vm);
		snprintf(err, errlen, "tcg: out of memory");
		return -ENOMEM;
	}
	vm->nr_cpus = n;
	pthread_rwlock_init(&vm->cpus_lock, NULL);
	pthread_mutex_init(&vm->atomic_lock, NULL);
	m->accel_state = vm;
	vm->irqchip = irqchip_create(m, n, &tcg_irq_ops, vm, err, errlen);
	if (!vm->irqchip) {
		pthread_mutex_destroy(&vm->atomic_lock);
		pthread_rwlock_destroy(&vm->cpus_lock);
		free(vm->cpus);
		free(vm);
		m->accel_state = NULL;
		return -EINVAL;
	}
	return 0;
}

static void tcg_vm_destroy(struct machine *m)
{
	struct tcg_vm *vm = m->accel_state;

	if (!vm)
		return;
	if (vm->irqchip)
		irqchip_destroy(vm->irqchip);
	pthread_mutex_destroy(&vm->atomic_lock);
	pthread_rwlock_destroy(&vm->cpus_lock);
	free(vm->cpus);
	free(vm->dirty);
	free(vm);
	m->accel_state = NULL;
}

/* Guest RAM is reached through m->mem directly: nothing to map. */
static int tcg_set_memory(struct machine *m, const struct ram_region *r)
{
	return 0;
}

static int tcg_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct tcg_vm *vm = m->accel_state;

	irqchip_set_irq(vm->irqchip, gsi, level);
	return 0;
}

static int tcg_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	struct tcg_vm *vm = m->accel_state;

	irqchip_send_msi(vm->irqchip, addr, data);
	return 0;
}

#define BITS_PER_LONG (8 * sizeof(unsigned long))

static int tcg_dirty_log_start(struct machine *m)
{
	struct tcg_vm *vm = m->accel_state;
	size_t pages = (m->mem.map_size + 4095) / 4096;

	if (!vm->dirty) {
		vm->dirty = calloc((pages + BITS_PER_LONG - 1) / BITS_PER_LONG,
				   sizeof(unsigned long));
		if (!vm->dirty)
			return -ENOMEM;
	}
	__atomic_store_n(&vm->dirty_on, true, __ATOMIC_SEQ_CST);
	return 0;
}

static int tcg_dirty_log_sync(struct machine *m, const struct ram_region *r,
			      unsigned long *bitmap)
{
	struct tcg_vm *vm = m->accel_state;
	size_t first, pages;

	if (!vm->dirty)
		return -EINVAL;
	if (r->hva < m->mem.base || r->hva + r->size > m->mem.base + m->mem.map_size)
		return -EINVAL;
	first = (size_t)(r->hva - m->mem.base) / 4096;
	pages = r->size / 4096;
	for (size_t k = 0; k < pages; ) {
		size_t src = first + k;

		if (src % BITS_PER_LONG == 0 && k % BITS_PER_LONG == 0 && pages - k >= BITS_PER_LONG) {
			bitmap[k / BITS_PER_LONG] |= __atomic_exchange_n(&vm->dirty[src / BITS_PER_LONG],
									 0, __ATOMIC_SEQ_CST);
			k += BITS_PER_LONG;
			continue;
		}
		if (__atomic_fetch_and(&vm->dirty[src / BITS_PER_LONG],
				       ~(1ul << (src % BITS_PER_LONG)), __ATOMIC_SEQ_CST) &
		    (1ul << (src % BITS_PER_LONG)))
			bitmap[k / BITS_PER_LONG] |= 1ul << (k % BITS_PER_LONG);
		k++;
	}
	return 0;
}

static int tcg_dirty_log_stop(struct machine *m)
{
	struct tcg_vm *vm = m->accel_state;

	/* The bitmap stays until vm_destroy: vCPUs may still be looking at it. */
	__atomic_store_n(&vm->dirty_on, false, __ATOMIC_SEQ_CST);
	return 0;
}

static void tcg_vcpu_destroy(struct vcpu *v);

static void tcg_cpuid_lookup(void *opaque, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	tcg_cpuid(opaque, leaf, sub, r);
}

static int tcg_vcpu_init(struct vcpu *v, char *err, size_t errlen)
{
	struct tcg_cpu *c = calloc(1, sizeof(*c));
	int ret;

	if (!c) {
		snprintf(err, errlen, "tcg: out of memory");
		return -ENOMEM;
	}
	ret = tcg_tb_init(c);
	if (ret) {
		free(c);
		snprintf(err, errlen, "tcg: cannot allocate the translation cache");
		return ret;
	}
	c->m = v->m;
	c->v = v;
	c->vm = v->m->accel_state;
	if (c->vm->jit) {
		c->jit = tcg_jit_create();
		if (!c->jit)
			log_warn("tcg: no buffer for host code (%s); interpreting", strerror(errno));
	}
	c->index = v->index;
	c->delivering = -1;
	c->sipi_vector = -1;
	c->wait_sipi = true;
	c->trace = getenv("VIREO_TCG_TRACE") != NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	tcg_tlb_flush(c, true);
	v->accel_state = c;
	tcg_cpus_set(c->vm, c->index, NULL, c);
	/* Features -cpu requires: what tcg_cpuid offers (every vCPU alike). */
	ret = v->index ? 0 : cpu_model_check(&v->m->cfg.cpu, "the translator (TCG)",
					     tcg_cpuid_lookup, c, err, errlen);
	if (ret)
		tcg_vcpu_destroy(v);
	return ret;
}

static void tcg_vcpu_destroy(struct vcpu *v)
{
	struct tcg_cpu *c = v->accel_state;

	if (!c)
		return;
	tcg_cpus_set(c->vm, c->index, c, NULL);
	tcg_tb_destroy(c);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	v->accel_state = NULL;
}

/* State that struct cpu_state does not carry, at power-on. */
static void reset_extra(struct tcg_cpu *c)
{
	c->star = c->lstar = c->cstar = c->sfmask = c->kernel_gs_base = 0;
	c->sysenter_cs = c->sysenter_esp = c->sysenter_eip = 0;
	c->tsc_aux = 0;
	c->pat = 0x0007040600070406ull;
	c->misc_enable = 1;	/* fast strings */
	c->mtrr_def = 0;
	memset(c->mtrr_fixed, 0, sizeof(c->mtrr_fixed));
	memset(c->mtrr_var, 0, sizeof(c->mtrr_var));
	memset(c->dr, 0, sizeof(c->dr));
	c->dr[6] = 0xffff0ff0;
	c->dr[7] = 0x400;
	c->halted = false;
	c->shadow = false;
	c->brk = false;
	c->delivering = -1;
	c->shutdown = false;
	c->nmi_blocked = false;
	tcg_fpu_init(c);
	memset(c->st, 0, sizeof(c->st));
	memset(c->xmm, 0, sizeof(c->xmm));
	c->mxcsr = 0x1f80;
	tcg_tb_flush(c);
}

static int tcg_vcpu_reset(struct vcpu *v, const struct cpu_state *s)
{
	struct tcg_cpu *c = v->accel_state;
	struct cpu_state init;

	reset_extra(c);
	if (s) {
		tcg_cpu_reset_state(c, s);
		c->wait_sipi = false;
	} else {
		cpu_state_reset(&init);
		tcg_cpu_reset_state(c, &init);
		c->wait_sipi = true;
	}
	pthread_mutex_lock(&c->lock);
	c->init_req = false;
	c->sipi_vector = -1;
	c->irq_hint = true;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void tcg_vcpu_kick(struct vcpu *v)
{
	struct tcg_cpu *c = v->accel_state;

	pthread_mutex_lock(&c->lock);
	/* Atomic: the vCPU thread polls it between blocks without the lock. */
	__atomic_store_n(&c->kick, true, __ATOMIC_RELEASE);
	__atomic_store_n(&c->chain_stop, 1, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static int tcg_vcpu_get_state(struct vcpu *v, struct cpu_state *s)
{
	struct tcg_cpu *c = v->accel_state;

	tcg_cpu_get_state(c, s);
	s->msrs.star = c->star;
	s->msrs.lstar = c->lstar;
	s->msrs.cstar = c->cstar;
	s->msrs.sfmask = c->sfmask;
	s->msrs.kernel_gs_base = c->kernel_gs_base;
	s->msrs.sysenter_cs = c->sysenter_cs;
	s->msrs.sysenter_esp = c->sysenter_esp;
	s->msrs.sysenter_eip = c->sysenter_eip;
	s->msrs.tsc_aux = c->tsc_aux;
	s->msrs.pat = c->pat;
	memcpy(s->msrs.dr, c->dr, sizeof(c->dr));
	if (c->vm && c->vm->irqchip) {
		s->cr8 = irqchip_get_cr8(c->vm->irqchip, c->index);
		s->apic_base = irqchip_get_apic_base(c->vm->irqchip, c->index);
	}
	return 0;
}

static int tcg_vcpu_set_state(struct vcpu *v, const struct cpu_state *s)
{
	struct tcg_cpu *c = v->accel_state;

	tcg_cpu_reset_state(c, s);
	c->star = s->msrs.star;
	c->lstar = s->msrs.lstar;
	c->cstar = s->msrs.cstar;
	c->sfmask = s->msrs.sfmask;
	c->kernel_gs_base = s->msrs.kernel_gs_base;
	c->sysenter_cs = s->msrs.sysenter_cs;
	c->sysenter_esp = s->msrs.sysenter_esp;
	c->sysenter_eip = s->msrs.sysenter_eip;
	c->tsc_aux = s->msrs.tsc_aux;
	c->pat = s->msrs.pat ? s->msrs.pat : 0x0007040600070406ull;
	memcpy(c->dr, s->msrs.dr, sizeof(c->dr));
	c->dr[6] |= 0xffff0ff0;
	c->dr[7] |= 0x400;
	tcg_tb_flush(c);
	if (c->vm && c->vm->irqchip) {
		irqchip_set_cr8(c->vm->irqchip, c->index, s->cr8);
		if (s->apic_base)
			irqchip_set_apic_base(c->vm->irqchip, c->index, s->apic_base);
	}
	c->wait_sipi = false;
	c->halted = false;
	__atomic_store_n(&c->irq_hint, true, __ATOMIC_RELEASE);
	return 0;
}

static int tcg_vcpu_run(struct vcpu *v, struct accel_exit *ex)
{
	return tcg_run_loop(v->accel_state, ex);
}

const struct accel_ops tcg_accel_ops = {
	.name = "tcg",
	.thread_suffix = "TCG",
	.probe = tcg_probe,
	.vm_init = tcg_vm_init,
	.vm_destroy = tcg_vm_destroy,
	.set_memory = tcg_set_memory,
	.set_irq = tcg_set_irq,
	.send_msi = tcg_send_msi,
	.dirty_log_start = tcg_dirty_log_start,
	.dirty_log_sync = tcg_dirty_log_sync,
	.dirty_log_stop = tcg_dirty_log_stop,
	.vcpu_init = tcg_vcpu_init,
	.vcpu_destroy = tcg_vcpu_destroy,
	.vcpu_reset = tcg_vcpu_reset,
	.vcpu_run = tcg_vcpu_run,
	.vcpu_kick = tcg_vcpu_kick,
	.vcpu_get_state = tcg_vcpu_get_state,
	.vcpu_set_state = tcg_vcpu_set_state,
	.state_version = TCG_STATE_VERSION,
	.vm_save = tcg_state_vm_save,
	.vm_load = tcg_state_vm_load,
	.vcpu_save = tcg_state_vcpu_save,
	.vcpu_load = tcg_state_vcpu_load,
};
