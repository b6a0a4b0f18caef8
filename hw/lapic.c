/*
 * Local APIC (xAPIC mode), one per vCPU, behind one MMIO page at
 * MEM_LAPIC_BASE that every vCPU sees as its own (current_vcpu picks the
 * bank).  Registers and semantics follow the SDM vol. 3, chapter 10 ("APIC");
 * the version register reads 0x50014 (integrated APIC, six LVT entries).
 *
 * The timer counts a 1 GHz bus clock (IRQCHIP_APIC_BUS_KHZ) through the
 * divide configuration register; its state is kept as a start time and a
 * period so the current count can be computed at any instant, and the
 * irqchip's timer thread delivers the expirations.
 *
 * Everything here runs under c->lock.
 */
#include <errno.h>
#include <string.h>

#include "irqchip_priv.h"
#include "log.h"
#include "machine.h"
#include "memory.h"
#include "vcpu.h"

#define APIC_VERSION	0x50014u	/* max LVT 5, version 0x14 */

#define ESR_SEND_ILLEGAL_VECTOR	(1u << 5)
#define ESR_RECV_ILLEGAL_VECTOR	(1u << 6)
#define ESR_ILLEGAL_REGISTER	(1u << 7)

#define SVR_ENABLE	(1u << 8)

#define ICR_DELIVERY_STATUS	(1u << 12)
#define ICR_LOGICAL		(1u << 11)
#define ICR_LEVEL_ASSERT	(1u << 14)
#define ICR_TRIGGER_LEVEL	(1u << 15)

_Static_assert(IRQCHIP_APIC_BUS_KHZ == 1000000ull,
	       "the timer code counts one bus tick per nanosecond");

static void vec_set(uint32_t *r, unsigned v)
{
	r[v >> 5] |= 1u << (v & 31);
}

static void vec_clear(uint32_t *r, unsigned v)
{
	r[v >> 5] &= ~(1u << (v & 31));
}

static bool vec_test(const uint32_t *r, unsigned v)
{
	return r[v >> 5] & (1u << (v & 31));
}

static int vec_highest(const uint32_t *r)
{
	for (int i = 7; i >= 0; i--)
		if (r[i])
			return i * 32 + 31 - __builtin_clz(r[i]);
	return -1;
}

static bool lapic_hw_enabled(const struct lapic *s)
{
	return s->apic_base & APIC_BASE_ENABLE;
}

static bool lapic_sw_enabled(const struct lapic *s)
{
	return s->svr & SVR_ENABLE;
}

static uint32_t lapic_ppr(const struct lapic *s)
{
	int isrv = vec_highest(s->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

	if ((s->tpr & 0xf0) >= isr_class)
		return s->tpr & 0xff;
	return isr_class;
}

/* Arbitration priority, for lowest-priority delivery (SDM 10.8.3.1). */
static uint32_t lapic_apr(const struct lapic *s)
{
	int isrv = vec_highest(s->isr), irrv = vec_highest(s->irr);
	uint32_t tpr_class = s->tpr & 0xf0;
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	uint32_t irr_class = irrv < 0 ? 0 : (uint32_t)irrv & 0xf0;
	uint32_t max;

	if (tpr_class >= irr_class && tpr_class > isr_class)
		return s->tpr & 0xff;
	max = tpr_class > isr_class ? tpr_class : isr_class;
	return max > irr_class ? max : irr_class;
}

int lapic_pending_vector(struct lapic *s)
{
	int irrv;

	if (!lapic_hw_enabled(s))
		return -1;
	irrv = vec_highest(s->irr);
	if (irrv < 0 || ((uint32_t)irrv & 0xf0) <= (lapic_ppr(s) & 0xf0))
		return -1;
	return irrv;
}

void lapic_ack(struct lapic *s, int vector)
{
	vec_clear(s->irr, vector);
	vec_set(s->isr, vector);
}

/* The 8259's INTR reaches this CPU: LINT0 in ExtINT mode, or the APIC
 * globally disabled (then the CPU's INTR pin is wired straight through). */
bool lapic_accepts_pic(struct lapic *s)
{
	uint32_t lvt0 = s->lvt[LVT_LINT0];

	if (!lapic_hw_enabled(s))
		return true;
	return !(lvt0 & LVT_MASKED) && ((lvt0 >> 8) & 7) == DM_EXTINT;
}

static void lapic_clear_regs(struct lapic *s)
{
	memset(s->isr, 0, sizeof(s->isr));
	memset(s->tmr, 0, sizeof(s->tmr));
	memset(s->irr, 0, sizeof(s->irr));
	s->tpr = 0;
	s->ldr = 0;
	s->dfr = 0xffffffff;
	s->svr = 0xff;
	s->esr = s->esr_pending = 0;
	s->icr_lo = s->icr_hi = 0;
	for (unsigned i = 0; i < LVT_NR; i++)
		s->lvt[i] = LVT_MASKED;
	s->divide_conf = 0;
	s->initial_count = 0;
	s->timer_start_ns = s->timer_period_ns = s->timer_deadline_ns = 0;
	s->tsc_deadline = 0;
	s->nmi_pending = false;
	s->extint_pending = false;
}

void lapic_reset(struct irqchip *c, struct lapic *s, bool bsp)
{
	lapic_clear_regs(s);
	s->id = s->index;
	s->apic_base = MEM_LAPIC_BASE | APIC_BASE_ENABLE | (bsp ? APIC_BASE_BSP : 0);
	/*
	 * No firmware runs before the guest, so do what a PC BIOS leaves
	 * behind (and what KVM does): the BSP in virtual-wire mode, LINT0
	 * taking the 8259 as ExtINT.  APs wait for a startup IPI.
	 */
	if (bsp)
		s->lvt[LVT_LINT0] = DM_EXTINT << 8;
	s->wait_sipi = !bsp;
}

/* ---- delivery ---- */

static void lapic_error(struct irqchip *c, struct lapic *s, uint32_t bit);

/* Returns whether the APIC took the message. */
static bool lapic_accept(struct irqchip *c, struct lapic *s, unsigned mode,
			 uint8_t vector, bool level)
{
	switch (mode) {
	case DM_FIXED:
	case DM_LOWEST:
		/* A software-disabled APIC discards fixed interrupts. */
		if (!lapic_sw_enabled(s))
			return false;
		if (vector < 16) {
			lapic_error(c, s, ESR_RECV_ILLEGAL_VECTOR);
			return false;
		}
		vec_set(s->irr, vector);
		if (level)
			vec_set(s->tmr, vector);
		else
			vec_clear(s->tmr, vector);
		irqchip_defer_kick(c, s->index);
		break;
	case DM_NMI:
		s->nmi_pending = true;
		irqchip_defer_kick(c, s->index);
		break;
	case DM_INIT:
		/* INIT resets the APIC but keeps its ID and base MSR. */
		lapic_clear_regs(s);
		s->wait_sipi = true;
		irqchip_timer_changed(c);
		irqchip_defer_init(c, s->index);
		break;
	case DM_SIPI:
		/* Only a CPU waiting after INIT starts; Linux sends two. */
		if (!s->wait_sipi)
			return false;
		s->wait_sipi = false;
		irqchip_defer_sipi(c, s->index, vector);
		break;
	case DM_EXTINT:
		s->extint_pending = true;
		irqchip_defer_kick(c, s->index);
		break;
	default:
		log_once("irqchip: delivery mode %u (SMI or reserved) is not supported, dropped",
			 mode);
		return false;
	}
	return true;
}

static void lapic_error(struct irqchip *c, struct lapic *s, uint32_t bit)
{
	uint32_t lvt = s->lvt[LVT_ERROR];

	/* Already pending: also ends the recursion of an illegal error vector. */
	if (s->esr_pending & bit)
		return;
	s->esr_pending |= bit;
	if (!(lvt & LVT_MASKED) && lapic_sw_enabled(s))
		lapic_accept(c, s, DM_FIXED, lvt & 0xff, false);
}

/* An interrupt from the APIC's own sources (timer, error, perf, thermal). */
static void lapic_local_irq(struct irqchip *c, struct lapic *s, unsigned lvt_index)
{
	uint32_t lvt = s->lvt[lvt_index];
	unsigned mode = (lvt >> 8) & 7;

	if ((lvt & LVT_MASKED) || !lapic_sw_enabled(s))
		return;
	/* The timer and error entries have no delivery mode: always fixed. */
	if (lvt_index == LVT_TIMER || lvt_index == LVT_ERROR)
		mode = DM_FIXED;
	lapic_accept(c, s, mode, lvt & 0xff, false);
}

static bool lapic_match_logical(struct lapic *s, uint8_t dest)
{
	uint8_t ldr = s->ldr >> 24;

	if (dest == 0xff)
		return true;
	switch (s->dfr >> 28) {
	case 0xf:		/* flat: one bit per APIC */
		return ldr & dest;
	case 0x0:		/* cluster: 4-bit cluster, 4-bit member mask */
		if ((dest >> 4) != 0xf && (dest >> 4) != (ldr >> 4))
			return false;
		return ldr & dest & 0xf;
	default:
		log_once("irqchip: LAPIC DFR model %#x is reserved", s->dfr >> 28);
		return false;
	}
}

static bool lapic_match(struct lapic *s, uint8_t dest, bool logical)
{
	if (logical)
		return lapic_match_logical(s, dest);
	return dest == 0xff || dest == s->id;
}

int lapic_deliver(struct irqchip *c, uint8_t dest, bool logical, unsigned mode,
		  uint8_t vector, bool level, unsigned shorthand, unsigned src)
{
	struct lapic *best = NULL;
	uint32_t best_apr = 0;
	int n = 0;

	for (unsigned k = 0; k < c->nr_cpus; k++) {
		/* Start at the round-robin point so ties rotate. */
		unsigned i = (c->lowest_rr + k) % c->nr_cpus;
		struct lapic *s = &c->lapic[i];
		bool hit;

		if (!lapic_hw_enabled(s))
			continue;
		switch (shorthand) {
		case 1:
			hit = i == src;
			break;
		case 2:
			hit = true;
			break;
		case 3:
			hit = i != src;
			break;
		default:
			hit = lapic_match(s, dest, logical);
			break;
		}
		if (!hit)
			continue;
		if (mode != DM_LOWEST) {
			n += lapic_accept(c, s, mode, vector, level);
			continue;
		}
		if (!best || lapic_apr(s) < best_apr) {
			best = s;
			best_apr = lapic_apr(s);
		}
	}
	if (best) {
		n += lapic_accept(c, best, DM_FIXED, vector, level);
		c->lowest_rr = best->index + 1;
	}
	return n;
}

static void lapic_send_ipi(struct irqchip *c, struct lapic *s)
{
	uint32_t lo = s->icr_lo;
	unsigned mode = (lo >> 8) & 7;
	uint8_t vector = lo & 0xff;

	/* INIT level de-assert only resynchronised arbitration IDs. */
	if (mode == DM_INIT && !(lo & ICR_LEVEL_ASSERT) && (lo & ICR_TRIGGER_LEVEL))
		return;
	if ((mode == DM_FIXED || mode == DM_LOWEST) && vector < 16) {
		lapic_error(c, s, ESR_SEND_ILLEGAL_VECTOR);
		return;
	}
	lapic_deliver(c, s->icr_hi >> 24, lo & ICR_LOGICAL, mode, vector, false,
		      (lo >> 18) & 3, s->index);
}

static void lapic_eoi(struct irqchip *c, struct lapic *s)
{
	int v = vec_highest(s->isr);

	if (v < 0)
		return;
	vec_clear(s->isr, v);
	/*
	 * Level-triggered: broadcast the EOI so the IOAPIC clears remote IRR.
	 * The TMR bit stays (it changes on acceptance only): Linux reads it
	 * around the EOI to detect a level interrupt delivered as edge.
	 */
	if (vec_test(s->tmr, v))
		ioapic_eoi(c, v);
	if (lapic_pending_vector(s) >= 0)
		irqchip_defer_kick(c, s->index);
}

void lapic_set_tpr(struct irqchip *c, struct lapic *s, uint32_t tpr)
{
	s->tpr = tpr & 0xff;
	if (lapic_pending_vector(s) >= 0)
		irqchip_defer_kick(c, s->index);
}

/* ---- timer ---- */

static uint64_t lapic_divisor(const struct lapic *s)
{
	unsigned sh = (s->divide_conf & 3) | ((s->divide_conf >> 1) & 4);

	return sh == 7 ? 1 : 2u << sh;
}

static unsigned lapic_timer_mode(const struct lapic *s)
{
	return LVT_TIMER_MODE(s->lvt[LVT_TIMER]);
}

static void lapic_timer_start(struct irqchip *c, struct lapic *s, uint64_t now)
{
	if (!s->initial_count || lapic_timer_mode(s) == TIMER_TSC_DEADLINE) {
		s->timer_period_ns = s->timer_deadline_ns = 0;
	} else {
		/* One bus tick is one nanosecond. */
		s->timer_period_ns = (uint64_t)s->initial_count * lapic_divisor(s);
		s->timer_start_ns = now;
		s->timer_deadline_ns = now + s->timer_period_ns;
	}
	irqchip_timer_changed(c);
}

static uint32_t lapic_current_count(const struct lapic *s, uint64_t now)
{
	uint64_t elapsed, remaining, div = lapic_divisor(s);

	if (!s->timer_period_ns || lapic_timer_mode(s) == TIMER_TSC_DEADLINE)
		return 0;
	elapsed = now - s->timer_start_ns;
	if (lapic_timer_mode(s) == TIMER_PERIODIC) {
		remaining = s->timer_period_ns - elapsed % s->timer_period_ns;
	} else {
		if (!s->timer_deadline_ns || elapsed >= s->timer_period_ns)
			return 0;
		remaining = s->timer_period_ns - elapsed;
	}
	return (remaining + div - 1) / div;
}

/* A new divisor applies from now on: keep the current count, rescale the rest. */
static void lapic_set_divide(struct irqchip *c, struct lapic *s, uint32_t value)
{
	uint64_t now = irqchip_now_ns();
	uint32_t count = lapic_current_count(s, now);
	bool armed = s->timer_deadline_ns && lapic_timer_mode(s) != TIMER_TSC_DEADLINE;
	uint64_t remaining;

	s->divide_conf = value & 0xb;
	if (!armed)
		return;
	s->timer_period_ns = (uint64_t)s->initial_count * lapic_divisor(s);
	remaining = (uint64_t)count * lapic_divisor(s);
	s->timer_start_ns = now - (s->timer_period_ns - remaining);
	s->timer_deadline_ns = now + remaining;
	irqchip_timer_changed(c);
}

void lapic_timer_expire(struct irqchip *c, struct lapic *s, uint64_t now)
{
	uint64_t step;

	switch (lapic_timer_mode(s)) {
	case TIMER_PERIODIC:
		step = s->timer_period_ns > IRQCHIP_MIN_PERIOD_NS ?
		       s->timer_period_ns : IRQCHIP_MIN_PERIOD_NS;
		s->timer_deadline_ns += step;
		/* Fell behind (host busy): skip the lost periods, fire once. */
		if (s->timer_deadline_ns <= now)
			s->timer_deadline_ns = now + step;
		break;
	case TIMER_TSC_DEADLINE:
		s->tsc_deadline = 0;
		s->timer_deadline_ns = 0;
		break;
	default:
		s->timer_deadline_ns = 0;
		break;
	}
	lapic_local_irq(c, s, LVT_TIMER);
}

void lapic_set_tsc_deadline(struct irqchip *c, struct lapic *s, uint64_t tsc)
{
	/* Ignored unless the timer is in TSC-deadline mode (SDM 10.5.4.1). */
	if (lapic_timer_mode(s) != TIMER_TSC_DEADLINE)
		return;
	s->tsc_deadline = tsc;
	s->timer_deadline_ns = tsc ? irqchip_tsc_to_ns(c, tsc) : 0;
	irqchip_timer_changed(c);
}

static void lapic_write_lvt_timer(struct irqchip *c, struct lapic *s, uint32_t v)
{
	unsigned old_mode = lapic_timer_mode(s);

	s->lvt[LVT_TIMER] = v & (0x60000 | LVT_MASKED | 0xff);
	if (lapic_timer_mode(s) == old_mode)
		return;
	/* A mode change disarms the timer. */
	s->initial_count = 0;
	s->tsc_deadline = 0;
	s->timer_period_ns = s->timer_deadline_ns = 0;
	irqchip_timer_changed(c);
}

/* ---- registers ---- */

static uint32_t lapic_read_reg(struct irqchip *c, struct lapic *s, unsigned off)
{
	switch (off) {
	case 0x020:
		return (uint32_t)s->id << 24;
	case 0x030:
		return APIC_VERSION;
	case 0x080:
		return s->tpr;
	case 0x090:
		return lapic_apr(s);
	case 0x0a0:
		return lapic_ppr(s);
	case 0x0b0:	/* EOI: write-only, reads 0 */
	case 0x0c0:	/* remote read: not supported by xAPIC */
		return 0;
	case 0x0d0:
		return s->ldr;
	case 0x0e0:
		return s->dfr;
	case 0x0f0:
		return s->svr;
	case 0x100 ... 0x170:
		return s->isr[(off - 0x100) >> 4];
	case 0x180 ... 0x1f0:
		return s->tmr[(off - 0x180) >> 4];
	case 0x200 ... 0x270:
		return s->irr[(off - 0x200) >> 4];
	case 0x280:
		return s->esr;
	case 0x300:
		/* Delivery is instantaneous: never "send pending". */
		return s->icr_lo & ~ICR_DELIVERY_STATUS;
	case 0x310:
		return s->icr_hi;
	case 0x320 ... 0x370:
		return s->lvt[(off - 0x320) >> 4];
	case 0x380:
		return s->initial_count;
	case 0x390:
		return lapic_current_count(s, irqchip_now_ns());
	case 0x3e0:
		return s->divide_conf;
	default:
		lapic_error(c, s, ESR_ILLEGAL_REGISTER);
		return 0;
	}
}

static void lapic_write_reg(struct irqchip *c, struct lapic *s, unsigned off, uint32_t v)
{
	static const uint32_t lvt_mask[LVT_NR] = {
		[LVT_THERMAL] = LVT_MASKED | 0x7ff,
		[LVT_PERF] = LVT_MASKED | 0x7ff,
		/* vector, delivery mode, polarity, trigger mode, mask */
		[LVT_LINT0] = LVT_MASKED | LVT_LEVEL | 0x27ff,
		[LVT_LINT1] = LVT_MASKED | LVT_LEVEL | 0x27ff,
		[LVT_ERROR] = LVT_MASKED | 0xff,
	};
	unsigned i;

	switch (off) {
	case 0x020:
		s->id = v >> 24;
		break;
	case 0x080:
		lapic_set_tpr(c, s, v);
		break;
	case 0x0b0:
		lapic_eoi(c, s);
		break;
	case 0x0d0:
		s->ldr = v & 0xff000000;
		break;
	case 0x0e0:
		s->dfr = v | 0x0fffffff;
		break;
	case 0x0f0:
		/* Vector, enable, focus check; no EOI-broadcast suppression. */
		s->svr = v & 0x3ff;
		if (!lapic_sw_enabled(s))
			for (i = 0; i < LVT_NR; i++)
				s->lvt[i] |= LVT_MASKED;
		break;
	case 0x280:
		s->esr = s->esr_pending;
		s->esr_pending = 0;
		break;
	case 0x300:
		s->icr_lo = v & ~ICR_DELIVERY_STATUS;
		lapic_send_ipi(c, s);
		break;
	case 0x310:
		s->icr_hi = v & 0xff000000;
		break;
	case 0x320:
		if (!lapic_sw_enabled(s))
			v |= LVT_MASKED;
		lapic_write_lvt_timer(c, s, v);
		break;
	case 0x330 ... 0x370:
		i = (off - 0x320) >> 4;
		if (!lapic_sw_enabled(s))
			v |= LVT_MASKED;
		/* Remote IRR (bit 14) is read-only. */
		s->lvt[i] = (s->lvt[i] & ~lvt_mask[i]) | (v & lvt_mask[i]);
		if (i == LVT_LINT0)
			lapic_lint0_changed(c);
		break;
	case 0x380:
		if (lapic_timer_mode(s) == TIMER_TSC_DEADLINE)
			break;
		s->initial_count = v;
		lapic_timer_start(c, s, irqchip_now_ns());
		break;
	case 0x3e0:
		lapic_set_divide(c, s, v);
		break;
	case 0x030:
	case 0x090:
	case 0x0a0:
	case 0x0c0:
	case 0x100 ... 0x270:
	case 0x390:
		break;		/* read-only */
	default:
		lapic_error(c, s, ESR_ILLEGAL_REGISTER);
		break;
	}
}

/* The 8259 may now reach the BSP (LINT0 unmasked, or the APIC disabled). */
void lapic_lint0_changed(struct irqchip *c)
{
	if (lapic_accepts_pic(&c->lapic[0]) && pic_output(c))
		irqchip_defer_kick(c, 0);
}

int lapic_set_base(struct irqchip *c, struct lapic *s, uint64_t value)
{
	/* Base (up to 52 bits), enable and BSP; x2APIC is not offered. */
	const uint64_t valid = 0x000ffffffffff000ull | APIC_BASE_ENABLE | APIC_BASE_BSP;
	bool was_enabled = lapic_hw_enabled(s);

	if (value & ~valid)
		return -EINVAL;
	if ((value & ~0xfffull) != MEM_LAPIC_BASE)
		log_once("irqchip: LAPIC relocation to %#llx is not supported; it stays at %#llx",
			 (unsigned long long)(value & ~0xfffull),
			 (unsigned long long)MEM_LAPIC_BASE);
	/* The BSP flag is fixed by the hardware. */
	s->apic_base = (value & ~APIC_BASE_BSP) | (s->apic_base & APIC_BASE_BSP);
	if (was_enabled && !lapic_hw_enabled(s)) {
		/* Global disable: back to the power-up state, ID kept. */
		lapic_clear_regs(s);
		irqchip_timer_changed(c);
	}
	if (lapic_accepts_pic(s) && s->index == 0 && pic_output(c))
		irqchip_defer_kick(c, 0);
	return 0;
}

uint64_t lapic_get_tsc_deadline(struct lapic *s)
{
	return lapic_timer_mode(s) == TIMER_TSC_DEADLINE ? s->tsc_deadline : 0;
}

/* ---- MMIO ---- */

static struct lapic *lapic_current(struct irqchip *c)
{
	unsigned i = current_vcpu ? current_vcpu->index : 0;

	if (i >= c->nr_cpus) {
		log_once("irqchip: LAPIC access from vCPU %u of %u", i, c->nr_cpus);
		i = 0;
	}
	return &c->lapic[i];
}

static uint64_t lapic_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct irqchip *c = opaque;
	unsigned shift = (offset & 3) * 8;
	uint64_t v;

	/* Registers are 32-bit, 16-byte aligned; narrower reads see a part. */
	if ((offset & 0xf) + size > 4) {
		log_once("irqchip: LAPIC read of %u bytes at %#llx", size,
			 (unsigned long long)offset);
		return 0;
	}
	irqchip_lock(c);
	v = lapic_read_reg(c, lapic_current(c), offset & 0xff0) >> shift;
	irqchip_unlock(c);
	if (size < 4)
		v &= (1ull << (size * 8)) - 1;
	return v;
}

static void lapic_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct irqchip *c = opaque;

	/* The SDM requires 32-bit aligned writes; others are dropped. */
	if ((offset & 0xf) || size != 4) {
		log_once("irqchip: LAPIC write of %u bytes at %#llx dropped", size,
			 (unsigned long long)offset);
		return;
	}
	irqchip_lock(c);
	lapic_write_reg(c, lapic_current(c), offset & 0xff0, value);
	irqchip_unlock(c);
}

static const struct bus_ops lapic_mmio_ops = {
	.read = lapic_mmio_read,
	.write = lapic_mmio_write,
};

int lapic_register(struct irqchip *c)
{
	return irqchip_bus_register(c, &c->m->mmio, MEM_LAPIC_BASE, 0x1000,
				    &lapic_mmio_ops, "lapic");
}
