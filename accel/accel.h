/*
 * The one interface between the machine and an accelerator (KVM, Xen HVM,
 * TCG).  Devices, migration and the monitor see only this.  An optional hook
 * is NULL: callers test the pointer, never a flag.
 */
#ifndef VIREO_ACCEL_H
#define VIREO_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "memory.h"

struct machine;
struct vcpu;
struct vmstate_out;
struct vmstate_in;

enum accel_exit_reason {
	ACCEL_EXIT_PIO,			/* port I/O, see exit.pio */
	ACCEL_EXIT_MMIO,		/* MMIO outside RAM, see exit.mmio */
	ACCEL_EXIT_HALT,		/* hlt with no interrupt pending (userspace irqchip) */
	ACCEL_EXIT_KICK,		/* interrupted by vcpu_kick: check requests */
	ACCEL_EXIT_SHUTDOWN,		/* triple fault */
	ACCEL_EXIT_RESET,		/* the guest asked for a reset (e.g. PSCI/Xen) */
	ACCEL_EXIT_POWEROFF,		/* the accelerator saw a power-off */
	ACCEL_EXIT_ERROR,		/* internal error: exit.error says why */
};

struct accel_exit {
	enum accel_exit_reason reason;
	union {
		struct {
			uint16_t port;
			uint8_t size;		/* 1, 2 or 4 */
			bool write;
			uint32_t count;		/* > 1 for rep ins/outs */
			uint8_t *data;		/* count * size bytes, owned by the accel */
		} pio;
		struct {
			uint64_t addr;
			uint8_t size;		/* 1..8 */
			bool write;
			uint8_t *data;		/* little-endian value, owned by the accel */
		} mmio;
		struct {
			char msg[256];
		} error;
	};
};

struct accel_ops {
	const char *name;		/* "kvm", "tcg", "xen" */
	const char *thread_suffix;	/* vCPU thread names: "CPU 0/KVM" */

	/* 0 if usable on this host; else -errno and a one-line reason in why. */
	int (*probe)(char *why, size_t len);

	/* --- VM hooks --- */
	int (*vm_init)(struct machine *m, char *err, size_t errlen);
	void (*vm_destroy)(struct machine *m);
	/* Make a RAM region visible to the guest. */
	int (*set_memory)(struct machine *m, const struct ram_region *r);
	/* Drive a GSI line (PIC/IOAPIC input). */
	int (*set_irq)(struct machine *m, unsigned gsi, int level);
	/* Deliver an MSI message. */
	int (*send_msi)(struct machine *m, uint64_t addr, uint32_t data);

	/* Optional: a write of len bytes to addr signals fd instead of exiting. */
	int (*add_ioeventfd)(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd);
	int (*del_ioeventfd)(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd);
	/*
	 * Optional: writing fd raises the MSI (addr, data).  Returns a route
	 * handle >= 0 for update/del.
	 */
	int (*add_irqfd_msi)(struct machine *m, int fd, uint64_t addr, uint32_t data);
	int (*update_irqfd_msi)(struct machine *m, int handle, uint64_t addr, uint32_t data);
	int (*del_irqfd_msi)(struct machine *m, int handle, int fd);

	/* Optional: dirty page tracking of guest RAM, one bit per 4 KiB page. */
	int (*dirty_log_start)(struct machine *m);
	/* OR the pages written since the last sync into bitmap (region r) and clear them. */
	int (*dirty_log_sync)(struct machine *m, const struct ram_region *r, unsigned long *bitmap);
	int (*dirty_log_stop)(struct machine *m);

	/* --- vCPU hooks --- */
	int (*vcpu_init)(struct vcpu *v, char *err, size_t errlen);
	void (*vcpu_destroy)(struct vcpu *v);
	/*
	 * Put the vCPU in its power-on state: the BSP runs from s, an AP
	 * (s == NULL) waits for INIT/SIPI.
	 */
	int (*vcpu_reset)(struct vcpu *v, const struct cpu_state *s);
	/* Run until an exit the machine must handle.  Called on the vCPU thread. */
	int (*vcpu_run)(struct vcpu *v, struct accel_exit *exit);
	/* Make vcpu_run return ACCEL_EXIT_KICK soon.  Any thread. */
	void (*vcpu_kick)(struct vcpu *v);
	int (*vcpu_get_state)(struct vcpu *v, struct cpu_state *s);
	int (*vcpu_set_state)(struct vcpu *v, const struct cpu_state *s);

	/*
	 * Optional, for migration (see vmstate.h): the VM-wide state (in-kernel
	 * irqchips, clock) and the full state of a paused vCPU, as vmstate
	 * fields of the sections "<name>-vm" and "<name>-cpu", whose version is
	 * state_version.  Without them the VM cannot migrate.
	 */
	uint32_t state_version;
	int (*vm_save)(struct machine *m, struct vmstate_out *o);
	int (*vm_load)(struct machine *m, struct vmstate_in *in);
	int (*vcpu_save)(struct vcpu *v, struct vmstate_out *o);
	int (*vcpu_load)(struct vcpu *v, struct vmstate_in *in);
};

extern const struct accel_ops kvm_accel_ops;
extern const struct accel_ops tcg_accel_ops;
extern const struct accel_ops xen_accel_ops;

/*
 * Pick the first usable accelerator of a ':'-separated list ("kvm:tcg").
 * Each one that is not usable logs one line saying why.
 */
const struct accel_ops *accel_select(const char *list, char *err, size_t errlen);

#endif
