/*
 * The user-space interrupt controllers and timers of a PC: one LAPIC per
 * vCPU, the IOAPIC, the 8259 pair and the 8254 PIT.  KVM has them in the
 * kernel; the TCG accelerator uses these instead.  The irqchip registers
 * its own port and MMIO ranges on the machine's buses (the LAPIC page at
 * MEM_LAPIC_BASE is banked per vCPU through current_vcpu).
 *
 * The CPU side (TCG) tells the irqchip nothing but TPR writes and
 * acknowledgements; the irqchip tells the CPU side, through
 * irqchip_cpu_ops, when an interrupt may have become pending for a vCPU
 * and when an INIT or SIPI arrives.
 */
#ifndef VIREO_IRQCHIP_H
#define VIREO_IRQCHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;
struct irqchip;
struct vmstate_out;
struct vmstate_in;

struct irqchip_cpu_ops {
	/* Something became pending for vCPU cpu: wake it if halted.  Any thread. */
	void (*kick)(void *opaque, unsigned cpu);
	/* INIT IPI: reset the vCPU to wait-for-SIPI. */
	void (*init)(void *opaque, unsigned cpu);
	/* Startup IPI: start at real-mode address vector << 12. */
	void (*sipi)(void *opaque, unsigned cpu, uint8_t vector);
};

struct irqchip *irqchip_create(struct machine *m, unsigned nr_cpus,
			       const struct irqchip_cpu_ops *ops, void *opaque,
			       char *err, size_t errlen);
void irqchip_destroy(struct irqchip *c);
void irqchip_reset(struct irqchip *c);

/*
 * Device side.  level is logical (1 = asserted).  GSIs 0-15 are the ISA
 * IRQs: they reach the 8259 pair and the IOAPIC pin of the same number,
 * except IRQ 0, which reaches IOAPIC pin 2 (the MADT's ISA override);
 * GSI 2 is the cascade and is ignored.  GSIs 16 and up reach the IOAPIC.
 */
void irqchip_set_irq(struct irqchip *c, unsigned gsi, int level);
void irqchip_send_msi(struct irqchip *c, uint64_t addr, uint32_t data);

/* CPU side, called on vCPU cpu's own thread. */
/* A maskable interrupt is ready to be taken once RFLAGS.IF allows it. */
bool irqchip_has_interrupt(struct irqchip *c, unsigned cpu);
/* Take it: returns the vector (moved to in-service), or -1 if none. */
int irqchip_ack_interrupt(struct irqchip *c, unsigned cpu);
/* An NMI is pending; taking it clears it. */
bool irqchip_take_nmi(struct irqchip *c, unsigned cpu);
/* CR8 reads and writes (TPR bits 7:4). */
uint64_t irqchip_get_cr8(struct irqchip *c, unsigned cpu);
void irqchip_set_cr8(struct irqchip *c, unsigned cpu, uint64_t cr8);
/* IA32_APIC_BASE MSR. */
uint64_t irqchip_get_apic_base(struct irqchip *c, unsigned cpu);
int irqchip_set_apic_base(struct irqchip *c, unsigned cpu, uint64_t value);
/* IA32_TSC_DEADLINE MSR (only if CPUID advertises it). */
uint64_t irqchip_get_tsc_deadline(struct irqchip *c, unsigned cpu);
void irqchip_set_tsc_deadline(struct irqchip *c, unsigned cpu, uint64_t tsc);
/* The TSC the irqchip's timers use: nanoseconds of CLOCK_MONOTONIC scaled
 * to IRQCHIP_TSC_KHZ, so the CPU's rdtsc and the LAPIC agree. */
#define IRQCHIP_TSC_KHZ 2000000ull
uint64_t irqchip_read_tsc(struct irqchip *c);
/* The LAPIC timer's input clock before its divider (for CPUID leaves that
 * report it, e.g. 0x15 ECX or 0x40000010 EBX): 1 GHz, as KVM uses. */
#define IRQCHIP_APIC_BUS_KHZ 1000000ull

/*
 * Migration: the state of every LAPIC, the IOAPIC, the 8259 pair, the PIT
 * and their clock, as vmstate fields (the TCG accelerator's "tcg-vm"
 * section).  Timers travel relative to the guest clock, which continues
 * on the destination where it stopped on the source.  Save with the vCPUs
 * paused; load checks every field and changes nothing unless all are
 * valid (-EINVAL with the message in the vmstate_in).
 */
int irqchip_save(struct irqchip *c, struct vmstate_out *o);
int irqchip_load(struct irqchip *c, struct vmstate_in *in);

#endif
