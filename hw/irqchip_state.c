/*
 * Migration of the user-space irqchip: every LAPIC, the IOAPIC, the 8259
 * pair, the 8254 and the clock they share, as vmstate fields.
 *
 * Timers run on the host's CLOCK_MONOTONIC, which means nothing on another
 * host.  So the stream carries the guest clock (nanoseconds since the
 * irqchip's TSC base) and every timer instant relative to the TSC base;
 * the loader moves the TSC base so that the guest clock continues where
 * it stopped and rebases the instants on it.  A LAPIC timer thus keeps
 * its remaining count, a TSC deadline its distance, the PIT its phase.
 *
 * The loader reads and checks everything into a copy first and installs
 * it under the lock only when all of it is valid: a bad stream leaves the
 * irqchip as it was.  It accepts every value the device models can hold
 * (a guest may have written a reserved timer mode) and refuses the rest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "irqchip_priv.h"
#include "vmstate.h"

/* Instants travel relative to the TSC base; 0 stays "not armed". */
static uint64_t to_rel(const struct irqchip *c, uint64_t ns)
{
	return ns ? ns - c->tsc_base_ns : 0;
}

static uint64_t from_rel(const struct irqchip *c, bool armed, uint64_t rel)
{
	uint64_t ns;

	if (!armed)
		return 0;
	ns = c->tsc_base_ns + rel;
	return ns ? ns : 1;
}

static void put_lapic(const struct irqchip *c, const struct lapic *s, struct vmstate_out *o)
{
	vmstate_put_u8(o, "lapic.id", s->id);
	vmstate_put_u64(o, "lapic.apic-base", s->apic_base);
	vmstate_put_u32(o, "lapic.tpr", s->tpr);
	vmstate_put_u32(o, "lapic.ldr", s->ldr);
	vmstate_put_u32(o, "lapic.dfr", s->dfr);
	vmstate_put_u32(o, "lapic.svr", s->svr);
	vmstate_put(o, "lapic.isr", s->isr, sizeof(s->isr));
	vmstate_put(o, "lapic.tmr", s->tmr, sizeof(s->tmr));
	vmstate_put(o, "lapic.irr", s->irr, sizeof(s->irr));
	vmstate_put_u32(o, "lapic.esr", s->esr);
	vmstate_put_u32(o, "lapic.esr-pending", s->esr_pending);
	vmstate_put_u32(o, "lapic.icr-lo", s->icr_lo);
	vmstate_put_u32(o, "lapic.icr-hi", s->icr_hi);
	vmstate_put(o, "lapic.lvt", s->lvt, sizeof(s->lvt));
	vmstate_put_u32(o, "lapic.divide-conf", s->divide_conf);
	vmstate_put_u32(o, "lapic.initial-count", s->initial_count);
	vmstate_put_u64(o, "lapic.timer-start", to_rel(c, s->timer_start_ns));
	vmstate_put_u64(o, "lapic.timer-period", s->timer_period_ns);
	vmstate_put_bool(o, "lapic.timer-armed", s->timer_deadline_ns != 0);
	vmstate_put_u64(o, "lapic.timer-deadline", to_rel(c, s->timer_deadline_ns));
	vmstate_put_u64(o, "lapic.tsc-deadline", s->tsc_deadline);
	vmstate_put_bool(o, "lapic.nmi-pending", s->nmi_pending);
	vmstate_put_bool(o, "lapic.extint-pending", s->extint_pending);
	vmstate_put_bool(o, "lapic.wait-sipi", s->wait_sipi);
}

/* Vectors 0-15 cannot be requested or in service. */
static int check_vec_bits(struct vmstate_in *in, const char *what, unsigned cpu,
			  const uint32_t v[8])
{
	if (v[0] & 0xffff)
		return vmstate_fail(in, "LAPIC %u: %s has vectors below 16 set (%#x)", cpu, what,
				    v[0] & 0xffff);
	return 0;
}

static int get_lapic(struct irqchip *c, struct lapic *s, unsigned cpu, struct vmstate_in *in)
{
	const uint64_t base_ok = 0x000ffffffffff000ull | APIC_BASE_ENABLE | APIC_BASE_BSP;
	uint64_t start, deadline;
	bool armed;
	int ret;

	if ((ret = vmstate_get_u8(in, "lapic.id", &s->id)) ||
	    (ret = vmstate_get_u64(in, "lapic.apic-base", &s->apic_base)) ||
	    (ret = vmstate_get_u32(in, "lapic.tpr", &s->tpr)) ||
	    (ret = vmstate_get_u32(in, "lapic.ldr", &s->ldr)) ||
	    (ret = vmstate_get_u32(in, "lapic.dfr", &s->dfr)) ||
	    (ret = vmstate_get_u32(in, "lapic.svr", &s->svr)) ||
	    (ret = vmstate_get(in, "lapic.isr", s->isr, sizeof(s->isr))) ||
	    (ret = vmstate_get(in, "lapic.tmr", s->tmr, sizeof(s->tmr))) ||
	    (ret = vmstate_get(in, "lapic.irr", s->irr, sizeof(s->irr))) ||
	    (ret = vmstate_get_u32(in, "lapic.esr", &s->esr)) ||
	    (ret = vmstate_get_u32(in, "lapic.esr-pending", &s->esr_pending)) ||
	    (ret = vmstate_get_u32(in, "lapic.icr-lo", &s->icr_lo)) ||
	    (ret = vmstate_get_u32(in, "lapic.icr-hi", &s->icr_hi)) ||
	    (ret = vmstate_get(in, "lapic.lvt", s->lvt, sizeof(s->lvt))) ||
	    (ret = vmstate_get_u32(in, "lapic.divide-conf", &s->divide_conf)) ||
	    (ret = vmstate_get_u32(in, "lapic.initial-count", &s->initial_count)) ||
	    (ret = vmstate_get_u64(in, "lapic.timer-start", &start)) ||
	    (ret = vmstate_get_u64(in, "lapic.timer-period", &s->timer_period_ns)) ||
	    (ret = vmstate_get_bool(in, "lapic.timer-armed", &armed)) ||
	    (ret = vmstate_get_u64(in, "lapic.timer-deadline", &deadline)) ||
	    (ret = vmstate_get_u64(in, "lapic.tsc-deadline", &s->tsc_deadline)) ||
	    (ret = vmstate_get_bool(in, "lapic.nmi-pending", &s->nmi_pending)) ||
	    (ret = vmstate_get_bool(in, "lapic.extint-pending", &s->extint_pending)) ||
	    (ret = vmstate_get_bool(in, "lapic.wait-sipi", &s->wait_sipi)))
		return ret;
	if (s->apic_base & ~base_ok)
		return vmstate_fail(in, "LAPIC %u: IA32_APIC_BASE %#llx has reserved bits", cpu,
				    (unsigned long long)s->apic_base);
	if (!!(s->apic_base & APIC_BASE_BSP) != (cpu == 0))
		return vmstate_fail(in, "LAPIC %u: the BSP flag of IA32_APIC_BASE is %s", cpu,
				    cpu ? "set on an AP" : "clear on the BSP");
	if (s->tpr > 0xff)
		return vmstate_fail(in, "LAPIC %u: TPR %#x is not 8 bits", cpu, s->tpr);
	if (s->ldr & 0x00ffffff)
		return vmstate_fail(in, "LAPIC %u: LDR %#x has reserved bits", cpu, s->ldr);
	if ((s->dfr & 0x0fffffff) != 0x0fffffff)
		return vmstate_fail(in, "LAPIC %u: DFR %#x has reserved bits clear", cpu, s->dfr);
	if (s->svr & ~0x13ffu)
		return vmstate_fail(in, "LAPIC %u: SVR %#x has reserved bits", cpu, s->svr);
	if ((ret = check_vec_bits(in, "IRR", cpu, s->irr)) ||
	    (ret = check_vec_bits(in, "ISR", cpu, s->isr)) ||
	    (ret = check_vec_bits(in, "TMR", cpu, s->tmr)))
		return ret;
	if ((s->esr | s->esr_pending) & ~0xffu)
		return vmstate_fail(in, "LAPIC %u: ESR %#x/%#x has reserved bits", cpu, s->esr,
				    s->esr_pending);
	for (unsigned i = 0; i < LVT_NR; i++)
		if (s->lvt[i] & ~0x7f7ffu)
			return vmstate_fail(in, "LAPIC %u: LVT %u = %#x has reserved bits", cpu, i,
					    s->lvt[i]);
	if (s->divide_conf & ~0xbu)
		return vmstate_fail(in, "LAPIC %u: divide configuration %#x has reserved bits",
				    cpu, s->divide_conf);
	/* Initial count times the largest divisor. */
	if (s->timer_period_ns > 0xffffffffull * 128)
		return vmstate_fail(in, "LAPIC %u: timer period %llu ns is out of range", cpu,
				    (unsigned long long)s->timer_period_ns);
	s->index = cpu;
	s->timer_start_ns = from_rel(c, true, start);
	s->timer_deadline_ns = from_rel(c, armed, deadline);
	return 0;
}

static void put_pic(const struct pic_chip *p, struct vmstate_out *o)
{
	vmstate_put_u8(o, "pic.irr", p->irr);
	vmstate_put_u8(o, "pic.isr", p->isr);
	vmstate_put_u8(o, "pic.imr", p->imr);
	vmstate_put_u8(o, "pic.last-level", p->last_level);
	vmstate_put_u8(o, "pic.elcr", p->elcr);
	vmstate_put_u8(o, "pic.base", p->base);
	vmstate_put_u8(o, "pic.priority-add", p->priority_add);
	vmstate_put_u8(o, "pic.init-state", p->init_state);
	vmstate_put_bool(o, "pic.icw4-needed", p->icw4_needed);
	vmstate_put_bool(o, "pic.single", p->single);
	vmstate_put_bool(o, "pic.read-isr", p->read_isr);
	vmstate_put_bool(o, "pic.poll", p->poll);
	vmstate_put_bool(o, "pic.special-mask", p->special_mask);
	vmstate_put_bool(o, "pic.auto-eoi", p->auto_eoi);
	vmstate_put_bool(o, "pic.rotate-on-auto-eoi", p->rotate_on_auto_eoi);
	vmstate_put_bool(o, "pic.special-fully-nested", p->special_fully_nested);
}

/* p arrives holding the destination's chip: elcr_mask is the board's. */
static int get_pic(struct pic_chip *p, unsigned i, struct vmstate_in *in)
{
	int ret;

	if ((ret = vmstate_get_u8(in, "pic.irr", &p->irr)) ||
	    (ret = vmstate_get_u8(in, "pic.isr", &p->isr)) ||
	    (ret = vmstate_get_u8(in, "pic.imr", &p->imr)) ||
	    (ret = vmstate_get_u8(in, "pic.last-level", &p->last_level)) ||
	    (ret = vmstate_get_u8(in, "pic.elcr", &p->elcr)) ||
	    (ret = vmstate_get_u8(in, "pic.base", &p->base)) ||
	    (ret = vmstate_get_u8(in, "pic.priority-add", &p->priority_add)) ||
	    (ret = vmstate_get_u8(in, "pic.init-state", &p->init_state)) ||
	    (ret = vmstate_get_bool(in, "pic.icw4-needed", &p->icw4_needed)) ||
	    (ret = vmstate_get_bool(in, "pic.single", &p->single)) ||
	    (ret = vmstate_get_bool(in, "pic.read-isr", &p->read_isr)) ||
	    (ret = vmstate_get_bool(in, "pic.poll", &p->poll)) ||
	    (ret = vmstate_get_bool(in, "pic.special-mask", &p->special_mask)) ||
	    (ret = vmstate_get_bool(in, "pic.auto-eoi", &p->auto_eoi)) ||
	    (ret = vmstate_get_bool(in, "pic.rotate-on-auto-eoi", &p->rotate_on_auto_eoi)) ||
	    (ret = vmstate_get_bool(in, "pic.special-fully-nested", &p->special_fully_nested)))
		return ret;
	if (p->elcr & ~p->elcr_mask)
		return vmstate_fail(in, "8259 %u: ELCR %#x makes edge-only inputs level", i,
				    p->elcr);
	if (p->base & 7)
		return vmstate_fail(in, "8259 %u: vector base %#x is not a multiple of 8", i,
				    p->base);
	if (p->priority_add > 7 || p->init_state > 3)
		return vmstate_fail(in, "8259 %u: priority %u / init state %u out of range", i,
				    p->priority_add, p->init_state);
	return 0;
}

static void put_pit_channel(const struct irqchip *c, const struct pit_channel *ch,
			    struct vmstate_out *o)
{
	vmstate_put_u8(o, "pit.mode", ch->mode);
	vmstate_put_u8(o, "pit.rw", ch->rw);
	vmstate_put_bool(o, "pit.bcd", ch->bcd);
	vmstate_put_bool(o, "pit.gate", ch->gate);
	vmstate_put_u32(o, "pit.reload", ch->reload);
	vmstate_put_bool(o, "pit.running", ch->running);
	vmstate_put_bool(o, "pit.loaded", ch->loaded);
	vmstate_put_bool(o, "pit.tc-done", ch->tc_done);
	vmstate_put_u32(o, "pit.start-count", ch->start_count);
	vmstate_put_u32(o, "pit.frozen-count", ch->frozen_count);
	vmstate_put_u64(o, "pit.start", ch->start_ns - c->tsc_base_ns);
	vmstate_put_bool(o, "pit.frozen-out", ch->frozen_out);
	vmstate_put_u8(o, "pit.write-lsb", ch->write_lsb);
	vmstate_put_bool(o, "pit.write-hi-next", ch->write_hi_next);
	vmstate_put_bool(o, "pit.count-latched", ch->count_latched);
	vmstate_put_bool(o, "pit.status-latched", ch->status_latched);
	vmstate_put_u16(o, "pit.latched-count", ch->latched_count);
	vmstate_put_u8(o, "pit.latched-status", ch->latched_status);
	vmstate_put_bool(o, "pit.read-hi-next", ch->read_hi_next);
	vmstate_put_bool(o, "pit.null-count", ch->null_count);
	vmstate_put_bool(o, "pit.irq-armed", ch->next_irq_ns != 0);
	vmstate_put_u64(o, "pit.next-irq", to_rel(c, ch->next_irq_ns));
}

static int get_pit_channel(struct irqchip *c, struct pit_channel *ch, unsigned i,
			   struct vmstate_in *in)
{
	uint64_t start, next;
	bool armed;
	int ret;

	if ((ret = vmstate_get_u8(in, "pit.mode", &ch->mode)) ||
	    (ret = vmstate_get_u8(in, "pit.rw", &ch->rw)) ||
	    (ret = vmstate_get_bool(in, "pit.bcd", &ch->bcd)) ||
	    (ret = vmstate_get_bool(in, "pit.gate", &ch->gate)) ||
	    (ret = vmstate_get_u32(in, "pit.reload", &ch->reload)) ||
	    (ret = vmstate_get_bool(in, "pit.running", &ch->running)) ||
	    (ret = vmstate_get_bool(in, "pit.loaded", &ch->loaded)) ||
	    (ret = vmstate_get_bool(in, "pit.tc-done", &ch->tc_done)) ||
	    (ret = vmstate_get_u32(in, "pit.start-count", &ch->start_count)) ||
	    (ret = vmstate_get_u32(in, "pit.frozen-count", &ch->frozen_count)) ||
	    (ret = vmstate_get_u64(in, "pit.start", &start)) ||
	    (ret = vmstate_get_bool(in, "pit.frozen-out", &ch->frozen_out)) ||
	    (ret = vmstate_get_u8(in, "pit.write-lsb", &ch->write_lsb)) ||
	    (ret = vmstate_get_bool(in, "pit.write-hi-next", &ch->write_hi_next)) ||
	    (ret = vmstate_get_bool(in, "pit.count-latched", &ch->count_latched)) ||
	    (ret = vmstate_get_bool(in, "pit.status-latched", &ch->status_latched)) ||
	    (ret = vmstate_get_u16(in, "pit.latched-count", &ch->latched_count)) ||
	    (ret = vmstate_get_u8(in, "pit.latched-status", &ch->latched_status)) ||
	    (ret = vmstate_get_bool(in, "pit.read-hi-next", &ch->read_hi_next)) ||
	    (ret = vmstate_get_bool(in, "pit.null-count", &ch->null_count)) ||
	    (ret = vmstate_get_bool(in, "pit.irq-armed", &armed)) ||
	    (ret = vmstate_get_u64(in, "pit.next-irq", &next)))
		return ret;
	if (ch->mode > 5 || ch->rw < 1 || ch->rw > 3)
		return vmstate_fail(in, "PIT channel %u: mode %u / access %u out of range", i,
				    ch->mode, ch->rw);
	if (ch->reload > 65536 || ch->start_count > 65536 || ch->frozen_count > 65536)
		return vmstate_fail(in, "PIT channel %u: count above 65536", i);
	if (ch->loaded && !ch->reload)
		return vmstate_fail(in, "PIT channel %u: loaded with a zero reload value", i);
	/* A count starts only once loaded; the rate modes divide by the reload. */
	if (ch->running && !ch->loaded)
		return vmstate_fail(in, "PIT channel %u: running without a count loaded", i);
	if (i != 0 && armed)
		return vmstate_fail(in, "PIT channel %u: only channel 0 raises IRQ 0", i);
	ch->start_ns = c->tsc_base_ns + start;
	ch->next_irq_ns = from_rel(c, armed, next);
	return 0;
}

int irqchip_save(struct irqchip *c, struct vmstate_out *o)
{
	irqchip_lock(c);
	vmstate_put_u64(o, "clock-ns", irqchip_now_ns() - c->tsc_base_ns);
	vmstate_put_u32(o, "nr-cpus", c->nr_cpus);
	for (unsigned i = 0; i < c->nr_cpus; i++)
		put_lapic(c, &c->lapic[i], o);
	vmstate_put_u32(o, "ioapic.nr-pins", c->ioapic.nr_pins);
	vmstate_put_u32(o, "ioapic.regsel", c->ioapic.regsel);
	vmstate_put_u32(o, "ioapic.id", c->ioapic.id);
	vmstate_put(o, "ioapic.rte", c->ioapic.rte, c->ioapic.nr_pins * sizeof(uint64_t));
	vmstate_put_u64(o, "ioapic.line", c->ioapic.line);
	for (unsigned i = 0; i < 2; i++)
		put_pic(&c->pic[i], o);
	for (unsigned i = 0; i < 3; i++)
		put_pit_channel(c, &c->pit.ch[i], o);
	vmstate_put_u8(o, "pit.port61", c->pit.port61);
	vmstate_put_bool(o, "pit.irq0-level", c->pit.irq0_level);
	/* The next LAPIC to try, kept as "last one + 1": save it in range. */
	vmstate_put_u32(o, "lowest-rr", c->lowest_rr % c->nr_cpus);
	irqchip_unlock(c);
	return o->error;
}

static int get_ioapic(struct ioapic *s, struct vmstate_in *in)
{
	/* What a guest can store: the whole high dword, bits 0-16 of the low. */
	const uint64_t rte_ok = 0xffffffff0001ffffull;
	uint32_t pins;
	int ret;

	if ((ret = vmstate_get_u32(in, "ioapic.nr-pins", &pins)))
		return ret;
	if (pins != s->nr_pins)
		return vmstate_fail(in, "the IOAPIC has %u pins here, the stream %u", s->nr_pins,
				    pins);
	if ((ret = vmstate_get_u32(in, "ioapic.regsel", &s->regsel)) ||
	    (ret = vmstate_get_u32(in, "ioapic.id", &s->id)) ||
	    (ret = vmstate_get(in, "ioapic.rte", s->rte, pins * sizeof(uint64_t))) ||
	    (ret = vmstate_get_u64(in, "ioapic.line", &s->line)))
		return ret;
	if (s->regsel > 0xff || s->id > 0xf)
		return vmstate_fail(in, "IOAPIC register select %#x / ID %#x out of range",
				    s->regsel, s->id);
	for (unsigned i = 0; i < pins; i++) {
		if (s->rte[i] & ~rte_ok)
			return vmstate_fail(in, "IOAPIC pin %u: entry %#llx has reserved bits", i,
					    (unsigned long long)s->rte[i]);
	}
	if (pins < 64 && (s->line >> pins))
		return vmstate_fail(in, "IOAPIC input levels %#llx name pins beyond %u",
				    (unsigned long long)s->line, pins);
	return 0;
}

int irqchip_load(struct irqchip *c, struct vmstate_in *in)
{
	struct irqchip *t;
	uint64_t clock;
	uint32_t ncpu;
	int ret;

	if ((ret = vmstate_get_u64(in, "clock-ns", &clock)) ||
	    (ret = vmstate_get_u32(in, "nr-cpus", &ncpu)))
		return ret;
	if (ncpu != c->nr_cpus)
		return vmstate_fail(in, "the stream has %u LAPICs, this machine %u CPUs", ncpu,
				    c->nr_cpus);
	/* A scratch irqchip: the checked state, installed all at once. */
	t = calloc(1, sizeof(*t));
	if (t)
		t->lapic = calloc(ncpu, sizeof(*t->lapic));
	if (!t || !t->lapic) {
		free(t);
		return -ENOMEM;
	}
	irqchip_lock(c);
	t->ioapic.nr_pins = c->ioapic.nr_pins;
	memcpy(t->pic, c->pic, sizeof(t->pic));
	irqchip_unlock(c);
	/* The guest clock continues where the source stopped it. */
	t->tsc_base_ns = irqchip_now_ns() - clock;
	for (unsigned i = 0; i < ncpu && !ret; i++)
		ret = get_lapic(t, &t->lapic[i], i, in);
	if (!ret)
		ret = get_ioapic(&t->ioapic, in);
	for (unsigned i = 0; i < 2 && !ret; i++)
		ret = get_pic(&t->pic[i], i, in);
	for (unsigned i = 0; i < 3 && !ret; i++)
		ret = get_pit_channel(t, &t->pit.ch[i], i, in);
	if (!ret && !(ret = vmstate_get_u8(in, "pit.port61", &t->pit.port61)) &&
	    !(ret = vmstate_get_bool(in, "pit.irq0-level", &t->pit.irq0_level)) &&
	    !(ret = vmstate_get_u32(in, "lowest-rr", &t->lowest_rr))) {
		if (t->pit.port61 & ~0xfu)
			ret = vmstate_fail(in, "port 0x61 value %#x has bits above 3",
					   t->pit.port61);
		else if (t->lowest_rr >= ncpu)
			ret = vmstate_fail(in, "lowest-priority round robin %u beyond %u CPUs",
					   t->lowest_rr, ncpu);
	}
	if (ret)
		goto out;
	irqchip_lock(c);
	c->tsc_base_ns = t->tsc_base_ns;
	memcpy(c->lapic, t->lapic, ncpu * sizeof(*c->lapic));
	c->ioapic = t->ioapic;
	memcpy(c->pic, t->pic, sizeof(c->pic));
	c->pit = t->pit;
	c->lowest_rr = t->lowest_rr;
	/* Every vCPU looks for interrupts again; the timer thread re-arms. */
	for (unsigned i = 0; i < ncpu; i++)
		irqchip_defer_kick(c, i);
	irqchip_timer_changed(c);
	irqchip_unlock(c);
out:
	free(t->lapic);
	free(t);
	return ret;
}
