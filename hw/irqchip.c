/*
 * The user-space irqchip: glue between the LAPICs, the IOAPIC, the 8259
 * pair and the 8254, the device-side entry points (GSI lines and MSIs),
 * the CPU-side entry points the TCG accelerator calls, and the timer
 * thread that fires LAPIC timers and the PIT.
 *
 * Locking: one mutex per irqchip (stage 1; see irqchip_priv.h).  Calls to
 * the CPU side are collected under it and made after it is dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "irqchip_priv.h"
#include "log.h"
#include "machine.h"

#define IRQCHIP_DEFAULT_PINS 24

uint64_t irqchip_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

uint64_t irqchip_read_tsc(struct irqchip *c)
{
	uint64_t ns = irqchip_now_ns() - c->tsc_base_ns;

	return (unsigned __int128)ns * IRQCHIP_TSC_KHZ / 1000000;
}

uint64_t irqchip_tsc_to_ns(struct irqchip *c, uint64_t tsc)
{
	/*
	 * The TSC base is "negative" after an incoming migration from a host
	 * that was up longer than this one (the guest clock then exceeds
	 * CLOCK_MONOTONIC): add it as a signed offset.
	 */
	__int128 ns = (__int128)((unsigned __int128)tsc * 1000000 / IRQCHIP_TSC_KHZ);

	ns += (int64_t)c->tsc_base_ns;
	if (ns < 1)
		return 1;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

/* ---- locking and deferred CPU-side calls ---- */

void irqchip_lock(struct irqchip *c)
{
	pthread_mutex_lock(&c->lock);
}

static void mask_set(uint64_t *m, unsigned cpu)
{
	m[cpu >> 6] |= 1ull << (cpu & 63);
}

static void mask_clear(uint64_t *m, unsigned cpu)
{
	m[cpu >> 6] &= ~(1ull << (cpu & 63));
}

void irqchip_defer_kick(struct irqchip *c, unsigned cpu)
{
	mask_set(c->kick_mask, cpu);
	c->deferred = true;
}

void irqchip_defer_init(struct irqchip *c, unsigned cpu)
{
	/* A later INIT cancels a startup that has not been reported yet. */
	mask_clear(c->sipi_mask, cpu);
	mask_set(c->init_mask, cpu);
	c->deferred = true;
}

void irqchip_defer_sipi(struct irqchip *c, unsigned cpu, uint8_t vector)
{
	mask_set(c->sipi_mask, cpu);
	c->sipi_vector[cpu] = vector;
	c->deferred = true;
}

/*
 * Drop the lock, then report what happened under it.  Every thread that
 * unlocks takes whatever is pending, so each call is made after the state
 * change it reports; INIT is always reported before SIPI.
 */
void irqchip_unlock(struct irqchip *c)
{
	uint64_t kick[4], init[4], sipi[4];
	uint8_t vec[256];

	if (!c->deferred) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	memcpy(kick, c->kick_mask, sizeof(kick));
	memcpy(init, c->init_mask, sizeof(init));
	memcpy(sipi, c->sipi_mask, sizeof(sipi));
	memset(c->kick_mask, 0, sizeof(c->kick_mask));
	memset(c->init_mask, 0, sizeof(c->init_mask));
	memset(c->sipi_mask, 0, sizeof(c->sipi_mask));
	memcpy(vec, c->sipi_vector, c->nr_cpus);
	c->deferred = false;
	pthread_mutex_unlock(&c->lock);

	for (unsigned w = 0; w < 4; w++) {
		for (uint64_t b = init[w]; b; b &= b - 1)
			if (c->ops->init)
				c->ops->init(c->opaque, w * 64 + __builtin_ctzll(b));
	}
	for (unsigned w = 0; w < 4; w++) {
		for (uint64_t b = sipi[w]; b; b &= b - 1) {
			unsigned cpu = w * 64 + __builtin_ctzll(b);

			if (c->ops->sipi)
				c->ops->sipi(c->opaque, cpu, vec[cpu]);
		}
	}
	for (unsigned w = 0; w < 4; w++) {
		for (uint64_t b = kick[w]; b; b &= b - 1)
			if (c->ops->kick)
				c->ops->kick(c->opaque, w * 64 + __builtin_ctzll(b));
	}
}

void irqchip_timer_changed(struct irqchip *c)
{
	pthread_cond_signal(&c->timer_cond);
}

int irqchip_bus_register(struct irqchip *c, struct bus *b, uint64_t base, uint64_t len,
			 const struct bus_ops *ops, const char *name)
{
	int r;

	if (c->nr_regs == sizeof(c->regs) / sizeof(c->regs[0]))
		return -ENOSPC;
	r = bus_register(b, base, len, ops, c, name);
	if (r < 0)
		return r;
	c->regs[c->nr_regs].bus = b;
	c->regs[c->nr_regs].base = base;
	c->nr_regs++;
	return 0;
}

/* ---- device side ---- */

void irqchip_pic_output_changed(struct irqchip *c)
{
	struct lapic *bsp = &c->lapic[0];

	if (bsp->extint_pending || lapic_accepts_pic(bsp))
		irqchip_defer_kick(c, 0);
}

/*
 * GSI routing of a PC with the MADT's ISA override IRQ 0 -> GSI 2: ISA
 * IRQs 0-15 go to the 8259 pair and to the IOAPIC pin of the same number,
 * except IRQ 0 (the PIT), which reaches IOAPIC pin 2.  Line 2 is the
 * cascade: nothing may drive it.  GSIs from 16 up reach the IOAPIC only.
 */
void __irqchip_set_irq(struct irqchip *c, unsigned gsi, int level)
{
	if (gsi == 2 || gsi >= c->ioapic.nr_pins) {
		log_once("irqchip: interrupt line %u does not exist", gsi);
		return;
	}
	if (gsi < 16)
		pic_set_irq(c, gsi, level);
	ioapic_set_irq(c, gsi == 0 ? 2 : gsi, level);
}

void irqchip_set_irq(struct irqchip *c, unsigned gsi, int level)
{
	irqchip_lock(c);
	__irqchip_set_irq(c, gsi, level);
	irqchip_unlock(c);
}

/*
 * An MSI is a memory write to 0xfeexxxxx: address bits 19:12 carry the
 * destination ID, bit 3 the redirection hint (lowest-priority arbitration
 * among the destinations), bit 2 the destination mode; data bits 7:0 the
 * vector, 10:8 the delivery mode, 15 the trigger mode.
 */
void irqchip_send_msi(struct irqchip *c, uint64_t addr, uint32_t data)
{
	unsigned mode = (data >> 8) & 7;

	if ((addr >> 20) != 0xfee) {
		log_once("irqchip: MSI to %#llx is not an interrupt message, dropped",
			 (unsigned long long)addr);
		return;
	}
	if ((addr & (1u << 3)) && mode == DM_FIXED)
		mode = DM_LOWEST;
	irqchip_lock(c);
	lapic_deliver(c, (addr >> 12) & 0xff, addr & (1u << 2), mode, data & 0xff,
		      data & (1u << 15), 0, 0);
	irqchip_unlock(c);
}

/* ---- CPU side ---- */

static struct lapic *irqchip_cpu(struct irqchip *c, unsigned cpu)
{
	if (cpu >= c->nr_cpus) {
		log_once("irqchip: CPU %u out of range (%u CPUs)", cpu, c->nr_cpus);
		return NULL;
	}
	return &c->lapic[cpu];
}

/* The 8259 has something for this CPU (BSP wiring, or an ExtINT message). */
static bool irqchip_extint(struct irqchip *c, struct lapic *s)
{
	if (!s->extint_pending && !(s->index == 0 && lapic_accepts_pic(s)))
		return false;
	return pic_output(c);
}

bool irqchip_has_interrupt(struct irqchip *c, unsigned cpu)
{
	struct lapic *s = irqchip_cpu(c, cpu);
	bool r;

	if (!s)
		return false;
	irqchip_lock(c);
	r = irqchip_extint(c, s) || lapic_pending_vector(s) >= 0;
	irqchip_unlock(c);
	return r;
}

int irqchip_ack_interrupt(struct irqchip *c, unsigned cpu)
{
	struct lapic *s = irqchip_cpu(c, cpu);
	int v;

	if (!s)
		return -1;
	irqchip_lock(c);
	if (irqchip_extint(c, s)) {
		s->extint_pending = false;
		v = pic_intack(c);
	} else {
		v = lapic_pending_vector(s);
		if (v >= 0)
			lapic_ack(s, v);
	}
	irqchip_unlock(c);
	return v;
}

bool irqchip_take_nmi(struct irqchip *c, unsigned cpu)
{
	struct lapic *s = irqchip_cpu(c, cpu);
	bool r;

	if (!s)
		return false;
	irqchip_lock(c);
	r = s->nmi_pending;
	s->nmi_pending = false;
	irqchip_unlock(c);
	return r;
}

uint64_t irqchip_get_cr8(struct irqchip *c, unsigned cpu)
{
	struct lapic *s = irqchip_cpu(c, cpu);
	uint64_t v;

	if (!s)
		return 0;
	irqchip_lock(c);
	v = s->tpr >> 4;
	irqchip_unlock(c);
	return v;
}

void irqchip_set_cr8(struct irqchip *c, unsigned cpu, uint64_t cr8)
{
	struct lapic *s = irqchip_cpu(c, cpu);

	if (!s)
		return;
	irqchip_lock(c);
	lapic_set_tpr(c, s, (cr8 & 0xf) << 4);
	irqchip_unlock(c);
}

uint64_t irqchip_get_apic_base(struct irqchip *c, unsigned cpu)
{
	struct lapic *s = irqchip_cpu(c, cpu);
	uint64_t v;

	if (!s)
		return 0;
	irqchip_lock(c);
	v = s->apic_base;
	irqchip_unlock(c);
	return v;
}

int irqchip_set_apic_base(struct irqchip *c, unsigned cpu, uint64_t value)
{
	struct lapic *s = irqchip_cpu(c, cpu);
	int r;

	if (!s)
		return -EINVAL;
	irqchip_lock(c);
	r = lapic_set_base(c, s, value);
	irqchip_unlock(c);
	return r;
}

uint64_t irqchip_get_tsc_deadline(struct irqchip *c, unsigned cpu)
{
	struct lapic *s = irqchip_cpu(c, cpu);
	uint64_t v;

	if (!s)
		return 0;
	irqchip_lock(c);
	v = lapic_get_tsc_deadline(s);
	irqchip_unlock(c);
	return v;
}

void irqchip_set_tsc_deadline(struct irqchip *c, unsigned cpu, uint64_t tsc)
{
	struct lapic *s = irqchip_cpu(c, cpu);

	if (!s)
		return;
	irqchip_lock(c);
	lapic_set_tsc_deadline(c, s, tsc);
	irqchip_unlock(c);
}

/* ---- timer thread ---- */

static uint64_t irqchip_next_deadline(struct irqchip *c)
{
	uint64_t next = c->pit.ch[0].next_irq_ns;

	for (unsigned i = 0; i < c->nr_cpus; i++) {
		uint64_t d = c->lapic[i].timer_deadline_ns;

		if (d && (!next || d < next))
			next = d;
	}
	return next;
}

static void *irqchip_timer_main(void *opaque)
{
	struct irqchip *c = opaque;
	struct timespec ts;
	uint64_t now, next;

	irqchip_lock(c);
	while (!c->timer_stop) {
		now = irqchip_now_ns();
		for (unsigned i = 0; i < c->nr_cpus; i++) {
			struct lapic *s = &c->lapic[i];

			if (s->timer_deadline_ns && s->timer_deadline_ns <= now)
				lapic_timer_expire(c, s, now);
		}
		pit_timer_expire(c, now);
		if (c->deferred) {
			/* Report to the CPUs outside the lock, then look again. */
			irqchip_unlock(c);
			irqchip_lock(c);
			continue;
		}
		next = irqchip_next_deadline(c);
		if (!next) {
			pthread_cond_wait(&c->timer_cond, &c->lock);
			continue;
		}
		if (next <= now)
			continue;
		ts.tv_sec = next / NSEC_PER_SEC;
		ts.tv_nsec = next % NSEC_PER_SEC;
		pthread_cond_timedwait(&c->timer_cond, &c->lock, &ts);
	}
	irqchip_unlock(c);
	return NULL;
}

/* ---- lifetime ---- */

static void __irqchip_reset(struct irqchip *c)
{
	for (unsigned i = 0; i < c->nr_cpus; i++)
		lapic_reset(c, &c->lapic[i], i == 0);
	ioapic_reset(&c->ioapic);
	/* The PIT first: the 8259 reset then forgets the edge its idle
	 * output puts on IRQ 0, so no tick is pending at power-on. */
	pit_reset(c);
	pic_reset(c);
	c->lowest_rr = 0;
	irqchip_timer_changed(c);
}

void irqchip_reset(struct irqchip *c)
{
	irqchip_lock(c);
	__irqchip_reset(c);
	/* The machine resets the CPUs itself: report nothing to them. */
	memset(c->kick_mask, 0, sizeof(c->kick_mask));
	memset(c->init_mask, 0, sizeof(c->init_mask));
	memset(c->sipi_mask, 0, sizeof(c->sipi_mask));
	c->deferred = false;
	irqchip_unlock(c);
}

static void irqchip_unregister(struct irqchip *c)
{
	while (c->nr_regs) {
		c->nr_regs--;
		bus_unregister(c->regs[c->nr_regs].bus, c->regs[c->nr_regs].base, c);
	}
}

static void irqchip_free(struct irqchip *c)
{
	pthread_cond_destroy(&c->timer_cond);
	pthread_mutex_destroy(&c->lock);
	free(c->sipi_vector);
	free(c->lapic);
	free(c);
}

struct irqchip *irqchip_create(struct machine *m, unsigned nr_cpus,
			       const struct irqchip_cpu_ops *ops, void *opaque,
			       char *err, size_t errlen)
{
	unsigned pins = m->nr_irq_pins ? m->nr_irq_pins : IRQCHIP_DEFAULT_PINS;
	pthread_condattr_t ca;
	struct irqchip *c;
	int r;

	if (!nr_cpus || nr_cpus > MACHINE_MAX_VCPUS) {
		snprintf(err, errlen, "irqchip: %u CPUs: 1 to %u supported", nr_cpus,
			 MACHINE_MAX_VCPUS);
		return NULL;
	}
	if (pins < 16 || pins > 64) {
		snprintf(err, errlen, "irqchip: %u IOAPIC pins: 16 to 64 supported", pins);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->lapic = calloc(nr_cpus, sizeof(*c->lapic));
	c->sipi_vector = calloc(nr_cpus, 1);
	if (!c->lapic || !c->sipi_vector) {
		free(c->lapic);
		free(c->sipi_vector);
		free(c);
		goto nomem;
	}
	c->m = m;
	c->nr_cpus = nr_cpus;
	c->ops = ops;
	c->opaque = opaque;
	c->ioapic.nr_pins = pins;
	for (unsigned i = 0; i < nr_cpus; i++)
		c->lapic[i].index = i;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	c->tsc_base_ns = irqchip_now_ns();

	irqchip_lock(c);
	__irqchip_reset(c);
	c->deferred = false;
	memset(c->kick_mask, 0, sizeof(c->kick_mask));
	irqchip_unlock(c);

	r = lapic_register(c);
	if (!r)
		r = ioapic_register(c);
	if (!r)
		r = pic_register(c);
	if (!r)
		r = pit_register(c);
	if (r) {
		snprintf(err, errlen, "irqchip: cannot register its I/O ranges: %s",
			 strerror(-r));
		goto fail;
	}
	r = pthread_create(&c->timer_thread, NULL, irqchip_timer_main, c);
	if (r) {
		snprintf(err, errlen, "irqchip: cannot start the timer thread: %s", strerror(r));
		goto fail;
	}
	pthread_setname_np(c->timer_thread, "irqchip timer");
	c->timer_started = true;
	return c;

fail:
	irqchip_unregister(c);
	irqchip_free(c);
	return NULL;
nomem:
	snprintf(err, errlen, "irqchip: out of memory");
	return NULL;
}

void irqchip_destroy(struct irqchip *c)
{
	if (!c)
		return;
	irqchip_unregister(c);
	if (c->timer_started) {
		irqchip_lock(c);
		c->timer_stop = true;
		irqchip_timer_changed(c);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->timer_thread, NULL);
	}
	irqchip_free(c);
}
