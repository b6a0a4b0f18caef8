/*
 * Private state of the user-space irqchip (hw/irqchip.c, lapic.c, ioapic.c,
 * pic.c, pit.c).  Nothing outside these files includes it.
 *
 * Locking (stage 1): one mutex per irqchip, c->lock, guards every field of
 * every sub-device.  Functions named with a leading "__" or taking a struct
 * lapic/ioapic/pic/pit expect it held.  Callbacks into the CPU side
 * (ops->kick/init/sipi) are never made under the lock: code under the lock
 * only records them (irqchip_defer_*), and irqchip_unlock() makes the calls
 * after dropping the mutex, so a vCPU thread calling irqchip_ack_interrupt
 * from inside its kick handler, or a kick handler that takes the vCPU's own
 * lock, cannot deadlock against us.
 */
#ifndef VIREO_HW_IRQCHIP_PRIV_H
#define VIREO_HW_IRQCHIP_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irqchip.h"

#define NSEC_PER_SEC 1000000000ull

/* Periodic timers faster than this are slowed down (the count register
 * still runs at the programmed rate): a guest must not make the timer
 * thread spin (200 us, the floor KVM uses too). */
#define IRQCHIP_MIN_PERIOD_NS 200000ull

#define PIT_HZ 1193182ull

/* LVT indices in register order (0x320 + 0x10 * i). */
enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_NR };

/* Delivery modes (ICR, LVT, IOAPIC RTE, MSI data bits 10:8). */
enum {
	DM_FIXED = 0, DM_LOWEST = 1, DM_SMI = 2, DM_NMI = 4, DM_INIT = 5,
	DM_SIPI = 6, DM_EXTINT = 7,
};

#define LVT_MASKED	(1u << 16)
#define LVT_LEVEL	(1u << 15)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)
enum { TIMER_ONESHOT = 0, TIMER_PERIODIC = 1, TIMER_TSC_DEADLINE = 2 };

#define APIC_BASE_BSP		(1ull << 8)
#define APIC_BASE_X2APIC	(1ull << 10)
#define APIC_BASE_ENABLE	(1ull << 11)

struct lapic {
	unsigned index;
	uint8_t id;			/* xAPIC ID = cpu index at reset */
	uint64_t apic_base;		/* IA32_APIC_BASE */
	uint32_t tpr, ldr, dfr, svr;
	uint32_t isr[8], tmr[8], irr[8];
	uint32_t esr, esr_pending;
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[LVT_NR];
	uint32_t divide_conf;
	uint32_t initial_count;

	/* One-shot/periodic: counting started at timer_start_ns, one period
	 * (initial_count * divisor ns) long.  timer_deadline_ns is when the
	 * timer thread fires next; 0 when disarmed. */
	uint64_t timer_start_ns, timer_period_ns, timer_deadline_ns;
	uint64_t tsc_deadline;		/* IA32_TSC_DEADLINE, TSC units */

	bool nmi_pending;
	bool extint_pending;		/* ExtINT message from the IOAPIC */
	bool wait_sipi;			/* after INIT, until the first SIPI */
};

struct ioapic {
	uint32_t regsel;
	uint32_t id;
	unsigned nr_pins;
	uint64_t rte[64];
	uint64_t line;			/* input levels, bit per pin */
};

#define RTE_VECTOR(r)	((uint8_t)(r))
#define RTE_DM(r)	(((r) >> 8) & 7)
#define RTE_LOGICAL	(1ull << 11)
#define RTE_POLARITY	(1ull << 13)
#define RTE_REMOTE_IRR	(1ull << 14)
#define RTE_LEVEL	(1ull << 15)
#define RTE_MASKED	(1ull << 16)
#define RTE_DEST(r)	((uint8_t)((r) >> 56))

struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t last_level;		/* input lines, for edge detection */
	uint8_t elcr, elcr_mask;	/* level-triggered inputs */
	uint8_t base;			/* ICW2 vector base */
	uint8_t priority_add;		/* rotation: IRQ of highest priority */
	uint8_t init_state;		/* 0: ready; 1..3: expecting ICW2..4 */
	bool icw4_needed;
	bool single;			/* ICW1 SNGL: no cascade */
	bool read_isr;			/* OCW3 RR/RIS */
	bool poll;
	bool special_mask;
	bool auto_eoi, rotate_on_auto_eoi;
	bool special_fully_nested;
};

struct pit_channel {
	uint8_t mode;			/* 0-5 (6 and 7 are folded into 2 and 3) */
	uint8_t rw;			/* 1 LSB, 2 MSB, 3 LSB then MSB */
	bool bcd;
	bool gate;
	uint32_t reload;		/* programmed count, 1..65536 */
	/* The counter held start_count at start_ns and counts down from it;
	 * "running" false means the gate stopped it (or no count loaded) and
	 * frozen_count holds its value. */
	bool running, loaded;
	bool tc_done;			/* modes 0/1/4/5: terminal count passed */
	uint32_t start_count, frozen_count;
	uint64_t start_ns;
	bool frozen_out;		/* output while stopped */
	/* Access mode 3 (LSB then MSB): the LSB written first waits here. */
	uint8_t write_lsb;
	bool write_hi_next;
	/* Reads: latched count (and status) and the LSB/MSB flip-flop. */
	bool count_latched, status_latched;
	uint16_t latched_count;
	uint8_t latched_status;
	bool read_hi_next;
	bool null_count;
	uint64_t next_irq_ns;		/* channel 0: next output edge, 0 if none */
};

struct pit {
	struct pit_channel ch[3];
	uint8_t port61;			/* bits 0-3 as written */
	bool irq0_level;
};

struct irqchip {
	struct machine *m;
	unsigned nr_cpus;
	const struct irqchip_cpu_ops *ops;
	void *opaque;

	pthread_mutex_t lock;
	struct lapic *lapic;
	struct ioapic ioapic;
	struct pic_chip pic[2];
	struct pit pit;
	unsigned lowest_rr;		/* round robin for lowest priority */

	/* CPU-side calls recorded under the lock, made by irqchip_unlock(). */
	bool deferred;
	uint64_t kick_mask[4];
	uint64_t init_mask[4];
	uint64_t sipi_mask[4];
	uint8_t *sipi_vector;

	uint64_t tsc_base_ns;

	pthread_t timer_thread;
	bool timer_started, timer_stop;
	pthread_cond_t timer_cond;

	/* Ranges this irqchip registered, for teardown. */
	struct {
		struct bus *bus;
		uint64_t base;
	} regs[8];
	unsigned nr_regs;
};

/* irqchip.c */
uint64_t irqchip_now_ns(void);
void irqchip_lock(struct irqchip *c);
void irqchip_unlock(struct irqchip *c);
void irqchip_defer_kick(struct irqchip *c, unsigned cpu);
void irqchip_defer_init(struct irqchip *c, unsigned cpu);
void irqchip_defer_sipi(struct irqchip *c, unsigned cpu, uint8_t vector);
void irqchip_timer_changed(struct irqchip *c);
int irqchip_bus_register(struct irqchip *c, struct bus *b, uint64_t base, uint64_t len,
			 const struct bus_ops *ops, const char *name);
/* Route an ISA/GSI line under the lock (the PIT uses it for IRQ 0). */
void __irqchip_set_irq(struct irqchip *c, unsigned gsi, int level);
/* The PIC's output changed: the BSP may have an ExtINT to take. */
void irqchip_pic_output_changed(struct irqchip *c);
uint64_t irqchip_tsc_to_ns(struct irqchip *c, uint64_t tsc);

/* lapic.c */
void lapic_reset(struct irqchip *c, struct lapic *s, bool bsp);
int lapic_register(struct irqchip *c);
/* Deliver an interrupt message to every matching LAPIC.  shorthand as in
 * ICR bits 19:18; src is the sender for self shorthands.  Returns how many
 * LAPICs accepted it. */
int lapic_deliver(struct irqchip *c, uint8_t dest, bool logical, unsigned mode,
		   uint8_t vector, bool level, unsigned shorthand, unsigned src);
/* Vector to take next, or -1 (does not change state). */
int lapic_pending_vector(struct lapic *s);
/* Move vector from IRR to ISR. */
void lapic_ack(struct lapic *s, int vector);
bool lapic_accepts_pic(struct lapic *s);
void lapic_set_tpr(struct irqchip *c, struct lapic *s, uint32_t tpr);
void lapic_set_tsc_deadline(struct irqchip *c, struct lapic *s, uint64_t tsc);
/* Fire an expired timer at now and re-arm it if periodic. */
void lapic_timer_expire(struct irqchip *c, struct lapic *s, uint64_t now);
void lapic_lint0_changed(struct irqchip *c);
int lapic_set_base(struct irqchip *c, struct lapic *s, uint64_t value);
uint64_t lapic_get_tsc_deadline(struct lapic *s);

/* ioapic.c */
void ioapic_reset(struct ioapic *s);
int ioapic_register(struct irqchip *c);
void ioapic_set_irq(struct irqchip *c, unsigned pin, int level);
void ioapic_eoi(struct irqchip *c, uint8_t vector);

/* pic.c */
void pic_reset(struct irqchip *c);
int pic_register(struct irqchip *c);
void pic_set_irq(struct irqchip *c, unsigned irq, int level);
bool pic_output(struct irqchip *c);
/* Interrupt acknowledge cycle: returns the vector. */
uint8_t pic_intack(struct irqchip *c);

/* pit.c */
void pit_reset(struct irqchip *c);
int pit_register(struct irqchip *c);
void pit_timer_expire(struct irqchip *c, uint64_t now);

#endif
