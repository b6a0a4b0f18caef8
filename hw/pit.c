/*
 * 8254 programmable interval timer at 0x40-0x43 and the PC's system
 * control port B at 0x61 (channel 2 gate in bit 0, channel 2 output in
 * bit 5, the refresh toggle in bit 4).  Modes 0-5 with LSB/MSB/both access,
 * the counter latch and read-back commands and status bytes.  BCD counting
 * is not implemented: a BCD channel counts in binary (logged once).
 *
 * The counters are not ticked: a running channel remembers the count it
 * started from and when, and its value and output are computed from
 * CLOCK_MONOTONIC at 1.193182 MHz whenever they are read.  Channel 0's
 * output edges on IRQ 0 are delivered by the irqchip's timer thread.
 *
 * Everything here runs under c->lock.
 */
#include "irqchip_priv.h"
#include "log.h"
#include "machine.h"

#define REFRESH_PERIOD_NS 15085		/* port 0x61 bit 4 toggles */

static uint64_t pit_ns_to_ticks(uint64_t ns)
{
	return (unsigned __int128)ns * PIT_HZ / NSEC_PER_SEC;
}

static uint64_t pit_ticks_to_ns(uint64_t ticks)
{
	return ((unsigned __int128)ticks * NSEC_PER_SEC + PIT_HZ - 1) / PIT_HZ;
}

/* Value of the counting element (16 bits, as read) and the output at now. */
static void pit_get(const struct pit_channel *ch, uint64_t now, uint32_t *count, bool *out)
{
	uint64_t t, n = ch->start_count, r = ch->reload, p, high;

	if (!ch->running) {
		*count = ch->frozen_count & 0xffff;
		*out = ch->frozen_out;
		return;
	}
	t = pit_ns_to_ticks(now - ch->start_ns);
	switch (ch->mode) {
	case 0:			/* interrupt on terminal count */
	case 1:			/* hardware retriggerable one-shot */
		*out = ch->tc_done || t >= n;
		*count = (n - t) & 0xffff;
		break;
	case 4:			/* software triggered strobe */
	case 5:			/* hardware triggered strobe */
		*out = ch->tc_done || t != n;
		*count = (n - t) & 0xffff;
		break;
	case 2:			/* rate generator: low for the last tick */
		*count = r - t % r;
		*out = *count != 1;
		*count &= 0xffff;
		break;
	default:		/* 3, square wave: counts by two, each half */
		p = t % r;
		high = (r + 1) / 2;
		*out = p < high;
		*count = (*out ? r - 2 * p : r - 2 * (p - high)) & 0xffff;
		break;
	}
}

static void pit_set_irq0(struct irqchip *c, bool level)
{
	if (c->pit.irq0_level == level)
		return;
	c->pit.irq0_level = level;
	__irqchip_set_irq(c, 0, level);
}

/* When channel 0's output next rises, 0 if it will not. */
static uint64_t pit_next_edge(const struct pit_channel *ch, uint64_t now)
{
	uint64_t period;

	if (!ch->running)
		return 0;
	switch (ch->mode) {
	case 2:
	case 3:
		period = pit_ticks_to_ns(ch->reload);
		return ch->start_ns + period * ((now - ch->start_ns) / period + 1);
	default:
		if (ch->tc_done)
			return 0;
		return ch->start_ns + pit_ticks_to_ns(ch->start_count);
	}
}

/* Channel 0 was reprogrammed: its output level and next edge change. */
static void pit_ch0_update(struct irqchip *c, uint64_t now)
{
	struct pit_channel *ch = &c->pit.ch[0];
	uint32_t count;
	bool out;

	pit_get(ch, now, &count, &out);
	pit_set_irq0(c, out);
	ch->next_irq_ns = pit_next_edge(ch, now);
	irqchip_timer_changed(c);
}

void pit_timer_expire(struct irqchip *c, uint64_t now)
{
	struct pit_channel *ch = &c->pit.ch[0];
	uint64_t step;

	if (!ch->next_irq_ns || ch->next_irq_ns > now)
		return;
	switch (ch->mode) {
	case 0:
	case 1:
		pit_set_irq0(c, true);
		ch->next_irq_ns = 0;
		break;
	case 4:
	case 5:
		pit_set_irq0(c, false);
		pit_set_irq0(c, true);
		ch->next_irq_ns = 0;
		break;
	default:
		/* Output drops for a moment each period: one rising edge. */
		pit_set_irq0(c, false);
		pit_set_irq0(c, true);
		step = pit_ticks_to_ns(ch->reload);
		if (step < IRQCHIP_MIN_PERIOD_NS)
			step = IRQCHIP_MIN_PERIOD_NS;
		ch->next_irq_ns += step;
		/* Fell behind: lost ticks are not replayed. */
		if (ch->next_irq_ns <= now)
			ch->next_irq_ns = now + step;
		break;
	}
}

static void pit_start(struct pit_channel *ch, uint32_t count, uint64_t now)
{
	ch->start_count = count;
	ch->start_ns = now;
	ch->running = true;
}

static void pit_set_gate(struct irqchip *c, unsigned i, bool gate, uint64_t now)
{
	struct pit_channel *ch = &c->pit.ch[i];
	uint32_t count;
	bool out;

	if (gate == ch->gate)
		return;
	ch->gate = gate;
	if (!ch->loaded)
		return;
	if (!gate) {
		if (!ch->running)
			return;
		/* Counting stops; modes 2 and 3 force the output high. */
		pit_get(ch, now, &count, &out);
		if ((ch->mode == 0 || ch->mode == 1) && out)
			ch->tc_done = true;
		if (ch->mode == 4 || ch->mode == 5)
			ch->tc_done = ch->tc_done ||
				      pit_ns_to_ticks(now - ch->start_ns) >= ch->start_count;
		ch->frozen_count = count;
		ch->frozen_out = (ch->mode == 2 || ch->mode == 3) ? true : out;
		ch->running = false;
	} else {
		switch (ch->mode) {
		case 0:
		case 4:		/* resume where it stopped */
			pit_start(ch, ch->frozen_count ? ch->frozen_count : 0x10000, now);
			break;
		case 1:
		case 5:		/* the rising gate triggers a new count */
			ch->tc_done = false;
			pit_start(ch, ch->reload, now);
			break;
		default:	/* the rising gate reloads */
			pit_start(ch, ch->reload, now);
			break;
		}
	}
	if (i == 0)
		pit_ch0_update(c, now);
}

static void pit_load(struct irqchip *c, unsigned i, uint32_t v, uint64_t now)
{
	struct pit_channel *ch = &c->pit.ch[i];

	ch->reload = v ? v : 0x10000;
	ch->loaded = true;
	ch->null_count = false;
	ch->tc_done = false;
	if (ch->mode == 1 || ch->mode == 5 || !ch->gate) {
		/* Waits for a gate edge (1, 5) or for the gate to open. */
		ch->running = false;
		ch->frozen_count = ch->reload & 0xffff;
		ch->frozen_out = ch->mode != 0;
	} else {
		pit_start(ch, ch->reload, now);
	}
	if (i == 0)
		pit_ch0_update(c, now);
}

static void pit_latch_count(struct pit_channel *ch, uint64_t now)
{
	uint32_t count;
	bool out;

	if (ch->count_latched)
		return;
	pit_get(ch, now, &count, &out);
	ch->latched_count = count;
	ch->count_latched = true;
}

static void pit_latch_status(struct pit_channel *ch, uint64_t now)
{
	uint32_t count;
	bool out;

	if (ch->status_latched)
		return;
	pit_get(ch, now, &count, &out);
	ch->latched_status = out << 7 | ch->null_count << 6 | ch->rw << 4 |
			     ch->mode << 1 | ch->bcd;
	ch->status_latched = true;
}

static void pit_write_control(struct irqchip *c, uint8_t v, uint64_t now)
{
	unsigned sel = v >> 6, rw = (v >> 4) & 3, mode = (v >> 1) & 7;
	struct pit_channel *ch;
	uint32_t count;
	bool out;

	if (sel == 3) {			/* read-back */
		for (unsigned i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			if (!(v & 0x20))
				pit_latch_count(&c->pit.ch[i], now);
			if (!(v & 0x10))
				pit_latch_status(&c->pit.ch[i], now);
		}
		return;
	}
	ch = &c->pit.ch[sel];
	if (rw == 0) {			/* counter latch */
		pit_latch_count(ch, now);
		return;
	}
	if (v & 1)
		log_once("irqchip: PIT BCD counting is not supported; counting in binary");
	/* A control word stops the channel until a count is written. */
	pit_get(ch, now, &count, &out);
	ch->frozen_count = count;
	ch->rw = rw;
	ch->mode = mode > 5 ? mode - 4 : mode;
	ch->bcd = v & 1;
	ch->loaded = ch->running = false;
	ch->tc_done = false;
	ch->null_count = true;
	ch->frozen_out = ch->mode != 0;
	ch->write_hi_next = ch->read_hi_next = false;
	ch->count_latched = ch->status_latched = false;
	if (sel == 0)
		pit_ch0_update(c, now);
}

static uint8_t pit_read_counter(struct pit_channel *ch, uint64_t now)
{
	uint32_t v;
	bool out;
	uint8_t b;

	if (ch->status_latched) {
		ch->status_latched = false;
		return ch->latched_status;
	}
	if (ch->count_latched)
		v = ch->latched_count;
	else
		pit_get(ch, now, &v, &out);
	switch (ch->rw) {
	case 1:
		b = v;
		ch->count_latched = false;
		break;
	case 2:
		b = v >> 8;
		ch->count_latched = false;
		break;
	default:
		if (!ch->read_hi_next) {
			b = v;
		} else {
			b = v >> 8;
			ch->count_latched = false;
		}
		ch->read_hi_next = !ch->read_hi_next;
		break;
	}
	return b;
}

static void pit_write_counter(struct irqchip *c, unsigned i, uint8_t v, uint64_t now)
{
	struct pit_channel *ch = &c->pit.ch[i];

	switch (ch->rw) {
	case 1:
		pit_load(c, i, v, now);
		break;
	case 2:
		pit_load(c, i, (uint32_t)v << 8, now);
		break;
	default:
		if (!ch->write_hi_next) {
			ch->write_lsb = v;
		} else {
			pit_load(c, i, ch->write_lsb | (uint32_t)v << 8, now);
		}
		ch->write_hi_next = !ch->write_hi_next;
		break;
	}
}

static uint64_t pit_io_read(void *opaque, uint64_t off, unsigned size)
{
	struct irqchip *c = opaque;
	uint64_t v = 0xff;

	if (size != 1) {
		log_once("irqchip: PIT read of %u bytes", size);
		return ~0ull;
	}
	irqchip_lock(c);
	if (off < 3)
		v = pit_read_counter(&c->pit.ch[off], irqchip_now_ns());
	irqchip_unlock(c);
	return v;		/* the control port reads as nothing */
}

static void pit_io_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct irqchip *c = opaque;

	if (size != 1) {
		log_once("irqchip: PIT write of %u bytes dropped", size);
		return;
	}
	irqchip_lock(c);
	if (off == 3)
		pit_write_control(c, v, irqchip_now_ns());
	else
		pit_write_counter(c, off, v, irqchip_now_ns());
	irqchip_unlock(c);
}

static uint64_t port61_read(void *opaque, uint64_t off, unsigned size)
{
	struct irqchip *c = opaque;
	uint64_t now = irqchip_now_ns();
	uint32_t count;
	bool out;
	uint8_t v;

	irqchip_lock(c);
	pit_get(&c->pit.ch[2], now, &count, &out);
	v = (c->pit.port61 & 0x0f) | ((now / REFRESH_PERIOD_NS) & 1) << 4 | out << 5;
	irqchip_unlock(c);
	return v;
}

static void port61_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct irqchip *c = opaque;

	irqchip_lock(c);
	/* Bit 1 would drive the speaker: there is none. */
	c->pit.port61 = v & 0x0f;
	pit_set_gate(c, 2, v & 1, irqchip_now_ns());
	irqchip_unlock(c);
}

void pit_reset(struct irqchip *c)
{
	for (unsigned i = 0; i < 3; i++) {
		struct pit_channel *ch = &c->pit.ch[i];

		*ch = (struct pit_channel){
			.mode = 3, .rw = 3, .frozen_out = true,
			/* Channels 0 and 1 are always gated on; 2 via port 0x61. */
			.gate = i != 2,
		};
	}
	c->pit.port61 = 0;
	pit_set_irq0(c, true);
}

static const struct bus_ops pit_ops = { .read = pit_io_read, .write = pit_io_write };
static const struct bus_ops port61_ops = { .read = port61_read, .write = port61_write };

int pit_register(struct irqchip *c)
{
	int r = irqchip_bus_register(c, &c->m->pio, 0x40, 4, &pit_ops, "pit");

	if (!r)
		r = irqchip_bus_register(c, &c->m->pio, 0x61, 1, &port61_ops, "port61");
	return r;
}
