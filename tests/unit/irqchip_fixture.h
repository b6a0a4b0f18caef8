/*
 * A machine with nothing but buses and a user-space irqchip, fake vCPUs
 * (current_vcpu selects the LAPIC bank on the test thread) and CPU-side
 * callbacks that count what they are told.  Shared by test_irqchip_*.c.
 */
#ifndef VIREO_TEST_IRQCHIP_FIXTURE_H
#define VIREO_TEST_IRQCHIP_FIXTURE_H

#include <glib.h>
#include <string.h>

#include "bus.h"
#include "irqchip.h"
#include "machine.h"
#include "memory.h"
#include "vcpu.h"

#define FIX_CPUS 4

struct fix {
	struct machine m;
	struct irqchip *c;
	struct vcpu v[FIX_CPUS];
	/* Callbacks come from the timer thread too. */
	unsigned kicks[FIX_CPUS], inits[FIX_CPUS], sipis[FIX_CPUS];
	uint8_t sipi_vector[FIX_CPUS];
	/* Kick handler asks the irqchip again, as a vCPU thread would. */
	bool reenter;
};

static void fix_kick(void *opaque, unsigned cpu)
{
	struct fix *f = opaque;

	g_assert_cmpuint(cpu, <, FIX_CPUS);
	__atomic_add_fetch(&f->kicks[cpu], 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&f->reenter, __ATOMIC_SEQ_CST))
		irqchip_has_interrupt(f->c, cpu);
}

static void fix_init(void *opaque, unsigned cpu)
{
	struct fix *f = opaque;

	g_assert_cmpuint(cpu, <, FIX_CPUS);
	__atomic_add_fetch(&f->inits[cpu], 1, __ATOMIC_SEQ_CST);
}

static void fix_sipi(void *opaque, unsigned cpu, uint8_t vector)
{
	struct fix *f = opaque;

	g_assert_cmpuint(cpu, <, FIX_CPUS);
	f->sipi_vector[cpu] = vector;
	__atomic_add_fetch(&f->sipis[cpu], 1, __ATOMIC_SEQ_CST);
}

static const struct irqchip_cpu_ops fix_ops = {
	.kick = fix_kick, .init = fix_init, .sipi = fix_sipi,
};

static inline struct fix *fix_new(unsigned nr_cpus)
{
	struct fix *f = g_new0(struct fix, 1);
	char err[256] = "";

	bus_init(&f->m.pio, "pio");
	bus_init(&f->m.mmio, "mmio");
	f->m.nr_irq_pins = 24;
	for (unsigned i = 0; i < FIX_CPUS; i++) {
		f->v[i].m = &f->m;
		f->v[i].index = i;
		f->v[i].apic_id = i;
	}
	f->c = irqchip_create(&f->m, nr_cpus, &fix_ops, f, err, sizeof(err));
	g_assert_cmpstr(err, ==, "");
	g_assert_nonnull(f->c);
	current_vcpu = &f->v[0];
	return f;
}

static inline void fix_free(struct fix *f)
{
	irqchip_destroy(f->c);
	current_vcpu = NULL;
	bus_destroy(&f->m.pio);
	bus_destroy(&f->m.mmio);
	g_free(f);
}

static inline unsigned fix_kicks(struct fix *f, unsigned cpu)
{
	return __atomic_load_n(&f->kicks[cpu], __ATOMIC_SEQ_CST);
}

/* LAPIC register access as vCPU cpu. */
static inline uint32_t apic_rd(struct fix *f, unsigned cpu, unsigned reg)
{
	current_vcpu = &f->v[cpu];
	return bus_read(&f->m.mmio, MEM_LAPIC_BASE + reg, 4);
}

static inline void apic_wr(struct fix *f, unsigned cpu, unsigned reg, uint32_t v)
{
	current_vcpu = &f->v[cpu];
	bus_write(&f->m.mmio, MEM_LAPIC_BASE + reg, 4, v);
}

/* Software-enable a LAPIC (SVR: spurious vector 0xff, enable). */
static inline void apic_enable(struct fix *f, unsigned cpu)
{
	apic_wr(f, cpu, 0xf0, 0x1ff);
}

static inline bool apic_bit(struct fix *f, unsigned cpu, unsigned base, unsigned vector)
{
	return apic_rd(f, cpu, base + (vector / 32) * 0x10) & (1u << (vector % 32));
}

#define APIC_ISR 0x100
#define APIC_TMR 0x180
#define APIC_IRR 0x200

static inline void apic_eoi(struct fix *f, unsigned cpu)
{
	apic_wr(f, cpu, 0xb0, 0);
}

static inline void ioapic_wr(struct fix *f, unsigned reg, uint32_t v)
{
	bus_write(&f->m.mmio, MEM_IOAPIC_BASE, 4, reg);
	bus_write(&f->m.mmio, MEM_IOAPIC_BASE + 0x10, 4, v);
}

static inline uint32_t ioapic_rd(struct fix *f, unsigned reg)
{
	bus_write(&f->m.mmio, MEM_IOAPIC_BASE, 4, reg);
	return bus_read(&f->m.mmio, MEM_IOAPIC_BASE + 0x10, 4);
}

static inline void ioapic_route(struct fix *f, unsigned pin, uint64_t rte)
{
	ioapic_wr(f, 0x11 + 2 * pin, rte >> 32);
	ioapic_wr(f, 0x10 + 2 * pin, (uint32_t)rte);
}

static inline void outb(struct fix *f, uint16_t port, uint8_t v)
{
	bus_write(&f->m.pio, port, 1, v);
}

static inline uint8_t inb(struct fix *f, uint16_t port)
{
	return bus_read(&f->m.pio, port, 1);
}

/* Poll (the timer thread delivers) until cpu has an interrupt; 10 s at most. */
static inline bool wait_interrupt(struct fix *f, unsigned cpu)
{
	for (unsigned i = 0; i < 10000; i++) {
		if (irqchip_has_interrupt(f->c, cpu))
			return true;
		g_usleep(1000);
	}
	return false;
}

#endif
