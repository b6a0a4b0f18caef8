/*
 * The two cascaded 8259A PICs of a PC: master at 0x20/0x21, slave at
 * 0xa0/0xa1 on the master's IRQ 2, and the edge/level control registers
 * (ELCR) at 0x4d0/0x4d1.  Implemented from the 8259A data sheet:
 * initialization words ICW1-4, OCW1 (mask), OCW2 (EOI, rotation), OCW3
 * (IRR/ISR read, poll, special mask), auto-EOI, fully nested priority
 * with rotation.  Edge/level is chosen per line through the ELCR (the
 * PIIX behaviour); ICW1's LTIM bit is not honoured.
 *
 * The master's INT output goes to the BSP's LINT0 (see lapic_accepts_pic).
 * Everything here runs under c->lock.
 */
#include "irqchip_priv.h"
#include "log.h"
#include "machine.h"

/* Priority level (0 highest) of the best request in mask, 8 if none. */
static unsigned pic_priority(const struct pic_chip *p, uint8_t mask)
{
	if (!mask)
		return 8;
	for (unsigned prio = 0; prio < 8; prio++)
		if (mask & (1u << ((prio + p->priority_add) & 7)))
			return prio;
	return 8;
}

/* The IRQ this chip would raise INT for, or -1. */
static int pic_get_irq(const struct pic_chip *p, bool master)
{
	unsigned prio = pic_priority(p, p->irr & ~p->imr), cur;
	uint8_t in_service = p->isr;

	if (prio == 8)
		return -1;
	/* Special mask mode: masked in-service levels do not block others. */
	if (p->special_mask)
		in_service &= ~p->imr;
	/* Special fully nested: the slave may interrupt its own service. */
	if (master && p->special_fully_nested)
		in_service &= ~(1u << 2);
	cur = pic_priority(p, in_service);
	if (prio < cur)
		return (prio + p->priority_add) & 7;
	return -1;
}

/* Recompute the cascade line and tell the BSP if INT is up. */
static void pic_update(struct irqchip *c)
{
	struct pic_chip *m = &c->pic[0];

	if (pic_get_irq(&c->pic[1], false) >= 0)
		m->irr |= 1u << 2;
	else
		m->irr &= ~(1u << 2);
	if (pic_get_irq(m, true) >= 0)
		irqchip_pic_output_changed(c);
}

bool pic_output(struct irqchip *c)
{
	return pic_get_irq(&c->pic[0], true) >= 0;
}

void pic_set_irq(struct irqchip *c, unsigned irq, int level)
{
	struct pic_chip *p = &c->pic[irq >> 3];
	uint8_t bit = 1u << (irq & 7);

	if (p->elcr & bit) {
		if (level)
			p->irr |= bit;
		else
			p->irr &= ~bit;
	} else if (level && !(p->last_level & bit)) {
		/* Edge: latched on the rising edge, kept until acknowledged. */
		p->irr |= bit;
	}
	if (level)
		p->last_level |= bit;
	else
		p->last_level &= ~bit;
	pic_update(c);
}

static void pic_ack_irq(struct pic_chip *p, unsigned irq)
{
	uint8_t bit = 1u << irq;

	if (p->auto_eoi) {
		if (p->rotate_on_auto_eoi)
			p->priority_add = (irq + 1) & 7;
	} else {
		p->isr |= bit;
	}
	if (!(p->elcr & bit))
		p->irr &= ~bit;
}

uint8_t pic_intack(struct irqchip *c)
{
	struct pic_chip *m = &c->pic[0], *s = &c->pic[1];
	int irq = pic_get_irq(m, true), irq2;
	uint8_t vector;

	if (irq < 0) {
		/* The request went away before the acknowledge: spurious IRQ 7. */
		vector = m->base + 7;
	} else if (irq == 2 && !m->single) {
		irq2 = pic_get_irq(s, false);
		pic_ack_irq(m, 2);
		if (irq2 < 0) {
			vector = s->base + 7;
		} else {
			pic_ack_irq(s, irq2);
			vector = s->base + irq2;
		}
	} else {
		pic_ack_irq(m, irq);
		vector = m->base + irq;
	}
	pic_update(c);
	return vector;
}

static void pic_chip_reset(struct pic_chip *p)
{
	/* ICW1 resets everything but the input lines and the ELCR. */
	p->irr = p->isr = p->imr = 0;
	p->base = 0;
	p->priority_add = 0;
	p->init_state = 0;
	p->icw4_needed = false;
	p->single = false;
	p->read_isr = false;
	p->poll = false;
	p->special_mask = false;
	p->auto_eoi = p->rotate_on_auto_eoi = false;
	p->special_fully_nested = false;
}

void pic_reset(struct irqchip *c)
{
	for (unsigned i = 0; i < 2; i++) {
		pic_chip_reset(&c->pic[i]);
		c->pic[i].elcr = 0;
	}
	/* IRQ 0, 1, 2 (master) and 8, 13 (slave) are always edge-triggered. */
	c->pic[0].elcr_mask = 0xf8;
	c->pic[1].elcr_mask = 0xde;
	/*
	 * No firmware runs before the guest: start as a PC BIOS leaves the
	 * pair, vectors 0x08 and 0x70, everything masked but the cascade, so
	 * a request before the guest programs them cannot hit an exception
	 * vector.
	 */
	c->pic[0].base = 0x08;
	c->pic[0].imr = 0xfb;
	c->pic[1].base = 0x70;
	c->pic[1].imr = 0xff;
}

static void pic_eoi(struct pic_chip *p, unsigned irq, bool rotate)
{
	p->isr &= ~(1u << irq);
	if (rotate)
		p->priority_add = (irq + 1) & 7;
}

static void pic_write_cmd(struct irqchip *c, struct pic_chip *p, uint8_t v)
{
	unsigned prio;

	if (v & 0x10) {			/* ICW1 */
		pic_chip_reset(p);
		/* Level-triggered inputs still asserted keep requesting. */
		p->irr = p->last_level & p->elcr;
		p->init_state = 1;
		p->icw4_needed = v & 1;
		p->single = v & 2;
		if (v & 8)
			log_once("irqchip: 8259 level-triggered mode (LTIM) is not supported; use the ELCR");
	} else if (v & 0x08) {		/* OCW3 */
		if (v & 4)
			p->poll = true;
		if (v & 2)
			p->read_isr = v & 1;
		if (v & 0x40)
			p->special_mask = v & 0x20;
	} else {			/* OCW2 */
		switch (v >> 5) {
		case 0:			/* clear rotate in auto-EOI mode */
			p->rotate_on_auto_eoi = false;
			break;
		case 4:			/* set rotate in auto-EOI mode */
			p->rotate_on_auto_eoi = true;
			break;
		case 1:			/* non-specific EOI */
		case 5:			/* rotate on non-specific EOI */
			prio = pic_priority(p, p->isr);
			if (prio < 8)
				pic_eoi(p, (prio + p->priority_add) & 7, v >> 5 == 5);
			break;
		case 3:			/* specific EOI */
			pic_eoi(p, v & 7, false);
			break;
		case 7:			/* rotate on specific EOI */
			pic_eoi(p, v & 7, true);
			break;
		case 6:			/* set priority: v & 7 becomes lowest */
			p->priority_add = ((v & 7) + 1) & 7;
			break;
		default:		/* no operation */
			break;
		}
	}
	pic_update(c);
}

static void pic_write_data(struct irqchip *c, struct pic_chip *p, uint8_t v)
{
	switch (p->init_state) {
	case 1:				/* ICW2: vector base */
		p->base = v & 0xf8;
		if (!p->single)
			p->init_state = 2;
		else
			p->init_state = p->icw4_needed ? 3 : 0;
		break;
	case 2:				/* ICW3: cascade wiring, fixed on a PC */
		p->init_state = p->icw4_needed ? 3 : 0;
		break;
	case 3:				/* ICW4 */
		if (!(v & 1))
			log_once("irqchip: 8259 MCS-80/85 mode is not supported");
		p->auto_eoi = v & 2;
		p->special_fully_nested = v & 0x10;
		p->init_state = 0;
		break;
	default:			/* OCW1: mask */
		p->imr = v;
		break;
	}
	pic_update(c);
}

/* Poll command: acknowledge the best request on this chip alone. */
static uint8_t pic_poll(struct irqchip *c, struct pic_chip *p)
{
	int irq = pic_get_irq(p, p == &c->pic[0]);

	p->poll = false;
	if (irq < 0)
		return 0;
	pic_ack_irq(p, irq);
	pic_update(c);
	return 0x80 | irq;
}

static uint8_t pic_read(struct irqchip *c, struct pic_chip *p, unsigned port)
{
	if (p->poll)
		return pic_poll(c, p);
	if (port == 1)
		return p->imr;
	return p->read_isr ? p->isr : p->irr;
}

static uint64_t pic_io_read(struct irqchip *c, struct pic_chip *p, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	irqchip_lock(c);
	for (unsigned i = 0; i < size && off + i < 2; i++)
		v |= (uint64_t)pic_read(c, p, off + i) << (8 * i);
	irqchip_unlock(c);
	return v;
}

static void pic_io_write(struct irqchip *c, struct pic_chip *p, uint64_t off, unsigned size,
			 uint64_t v)
{
	irqchip_lock(c);
	for (unsigned i = 0; i < size && off + i < 2; i++) {
		if (off + i == 0)
			pic_write_cmd(c, p, v >> (8 * i));
		else
			pic_write_data(c, p, v >> (8 * i));
	}
	irqchip_unlock(c);
}

static uint64_t pic_master_read(void *opaque, uint64_t off, unsigned size)
{
	struct irqchip *c = opaque;

	return pic_io_read(c, &c->pic[0], off, size);
}

static void pic_master_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct irqchip *c = opaque;

	pic_io_write(c, &c->pic[0], off, size, v);
}

static uint64_t pic_slave_read(void *opaque, uint64_t off, unsigned size)
{
	struct irqchip *c = opaque;

	return pic_io_read(c, &c->pic[1], off, size);
}

static void pic_slave_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct irqchip *c = opaque;

	pic_io_write(c, &c->pic[1], off, size, v);
}

static uint64_t elcr_read(void *opaque, uint64_t off, unsigned size)
{
	struct irqchip *c = opaque;
	uint64_t v = 0;

	irqchip_lock(c);
	for (unsigned i = 0; i < size && off + i < 2; i++)
		v |= (uint64_t)c->pic[off + i].elcr << (8 * i);
	irqchip_unlock(c);
	return v;
}

static void elcr_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct irqchip *c = opaque;

	irqchip_lock(c);
	for (unsigned i = 0; i < size && off + i < 2; i++) {
		struct pic_chip *p = &c->pic[off + i];

		p->elcr = (v >> (8 * i)) & p->elcr_mask;
	}
	pic_update(c);
	irqchip_unlock(c);
}

static const struct bus_ops pic_master_ops = { .read = pic_master_read, .write = pic_master_write };
static const struct bus_ops pic_slave_ops = { .read = pic_slave_read, .write = pic_slave_write };
static const struct bus_ops elcr_ops = { .read = elcr_read, .write = elcr_write };

int pic_register(struct irqchip *c)
{
	int r;

	r = irqchip_bus_register(c, &c->m->pio, 0x20, 2, &pic_master_ops, "pic-master");
	if (!r)
		r = irqchip_bus_register(c, &c->m->pio, 0xa0, 2, &pic_slave_ops, "pic-slave");
	if (!r)
		r = irqchip_bus_register(c, &c->m->pio, 0x4d0, 2, &elcr_ops, "elcr");
	return r;
}
