/*
 * I/O APIC (version 0x20, with the EOI register) at MEM_IOAPIC_BASE: an
 * index register (IOREGSEL, offset 0x00), a data window (IOWIN, 0x10) and
 * the directed-EOI register (0x40).  m->nr_irq_pins inputs, 24 by default.
 *
 * Input levels are logical ("asserted"), as devices report them: the
 * polarity bit is kept for the guest to read back but does not invert the
 * line, the same convention KVM's IOAPIC uses.
 *
 * Everything here runs under c->lock.
 */
#include "irqchip_priv.h"
#include "log.h"
#include "machine.h"
#include "memory.h"

#define IOAPIC_VERSION		0x20
#define RTE_DELIVERY_STATUS	(1ull << 12)
/* Bits of the low dword the guest may write (not delivery status, remote IRR). */
#define RTE_LO_WRITABLE		(0xffffffffull & ~(RTE_DELIVERY_STATUS | RTE_REMOTE_IRR))

void ioapic_reset(struct ioapic *s)
{
	s->regsel = 0;
	s->id = 0;
	for (unsigned i = 0; i < s->nr_pins; i++)
		s->rte[i] = RTE_MASKED;
}

static void ioapic_service(struct irqchip *c, unsigned pin)
{
	struct ioapic *s = &c->ioapic;
	uint64_t r = s->rte[pin];
	int n;

	if (r & RTE_MASKED)
		return;
	if ((r & RTE_LEVEL) && (r & RTE_REMOTE_IRR))
		return;		/* the last one is still in service */
	n = lapic_deliver(c, RTE_DEST(r), r & RTE_LOGICAL, RTE_DM(r), RTE_VECTOR(r),
			  r & RTE_LEVEL, 0, 0);
	/* Remote IRR waits for an EOI only if some LAPIC took the interrupt. */
	if ((r & RTE_LEVEL) && n > 0)
		s->rte[pin] |= RTE_REMOTE_IRR;
}

void ioapic_set_irq(struct irqchip *c, unsigned pin, int level)
{
	struct ioapic *s = &c->ioapic;
	uint64_t bit;
	bool was;

	if (pin >= s->nr_pins)
		return;
	bit = 1ull << pin;
	was = s->line & bit;
	if (level)
		s->line |= bit;
	else
		s->line &= ~bit;
	if (!level)
		return;
	/* Level: asserted keeps requesting; edge: only a rising edge counts. */
	if ((s->rte[pin] & RTE_LEVEL) || !was)
		ioapic_service(c, pin);
}

void ioapic_eoi(struct irqchip *c, uint8_t vector)
{
	struct ioapic *s = &c->ioapic;

	for (unsigned pin = 0; pin < s->nr_pins; pin++) {
		uint64_t r = s->rte[pin];

		if (RTE_VECTOR(r) != vector || !(r & RTE_LEVEL) || !(r & RTE_REMOTE_IRR))
			continue;
		s->rte[pin] &= ~RTE_REMOTE_IRR;
		/* Still asserted: the device wants service again. */
		if (s->line & (1ull << pin))
			ioapic_service(c, pin);
	}
}

static uint32_t ioapic_read_reg(struct ioapic *s)
{
	unsigned reg = s->regsel & 0xff, pin;

	switch (reg) {
	case 0x00:
		return s->id << 24;
	case 0x01:
		return (s->nr_pins - 1) << 16 | IOAPIC_VERSION;
	case 0x02:
		return s->id << 24;	/* arbitration ID */
	}
	pin = (reg - 0x10) / 2;
	if (reg < 0x10 || pin >= s->nr_pins)
		return 0;
	return reg & 1 ? s->rte[pin] >> 32 : (uint32_t)s->rte[pin];
}

static void ioapic_write_reg(struct irqchip *c, uint32_t v)
{
	struct ioapic *s = &c->ioapic;
	unsigned reg = s->regsel & 0xff, pin;
	uint64_t old, r;

	if (reg == 0x00) {
		s->id = (v >> 24) & 0xf;
		return;
	}
	pin = (reg - 0x10) / 2;
	if (reg < 0x10 || pin >= s->nr_pins)
		return;		/* read-only or absent */
	old = s->rte[pin];
	if (reg & 1)
		r = (old & 0xffffffffull) | ((uint64_t)v << 32);
	else
		r = (old & ~RTE_LO_WRITABLE) | (v & RTE_LO_WRITABLE);
	/* Remote IRR only has a meaning for level-triggered pins. */
	if (!(r & RTE_LEVEL))
		r &= ~RTE_REMOTE_IRR;
	s->rte[pin] = r;
	/* Unmasking a still-asserted level pin delivers it now. */
	if ((r & RTE_LEVEL) && (s->line & (1ull << pin)))
		ioapic_service(c, pin);
}

static uint64_t ioapic_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct irqchip *c = opaque;
	uint64_t v = 0;

	if (size != 4) {
		log_once("irqchip: IOAPIC read of %u bytes at %#llx", size,
			 (unsigned long long)offset);
		return 0;
	}
	irqchip_lock(c);
	if (offset == 0x00)
		v = c->ioapic.regsel;
	else if (offset == 0x10)
		v = ioapic_read_reg(&c->ioapic);
	irqchip_unlock(c);
	return v;
}

static void ioapic_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct irqchip *c = opaque;

	if (size != 4) {
		log_once("irqchip: IOAPIC write of %u bytes at %#llx dropped", size,
			 (unsigned long long)offset);
		return;
	}
	irqchip_lock(c);
	if (offset == 0x00)
		c->ioapic.regsel = value & 0xff;
	else if (offset == 0x10)
		ioapic_write_reg(c, value);
	else if (offset == 0x40)
		ioapic_eoi(c, value & 0xff);
	irqchip_unlock(c);
}

static const struct bus_ops ioapic_mmio_ops = {
	.read = ioapic_mmio_read,
	.write = ioapic_mmio_write,
};

int ioapic_register(struct irqchip *c)
{
	return irqchip_bus_register(c, &c->m->mmio, MEM_IOAPIC_BASE, 0x1000,
				    &ioapic_mmio_ops, "ioapic");
}
