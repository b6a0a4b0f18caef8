/*
 * The machine: owns guest memory, the buses, the vCPUs and the devices of
 * one VM.  No device keeps global state, so a test can build several
 * machines in one process.
 *
 * Threads: the main thread runs a GLib main loop (m->ctx) that serves the
 * character devices, the monitor and the machine's own requests; each vCPU
 * has its own thread (vcpu/); I/O threads belong to the devices.
 */
#ifndef VIREO_MACHINE_H
#define VIREO_MACHINE_H

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "cpu.h"
#include "cpu_model.h"
#include "memory.h"
#include "options.h"

struct accel_ops;
struct vcpu;
struct pci_host;
struct drive;
struct acpi;
struct monitor;
struct machine;
struct vmstate_section;
struct migration;
struct smbios_config;

#define MACHINE_MAX_VCPUS 255	/* xAPIC IDs, no interrupt remapping */

struct machine_config {
	uint64_t ram_size;
	unsigned smp;
	struct cpu_topology topo;	/* -smp sockets,cores,threads */
	const char *accel;		/* "kvm:tcg" */
	const char *kernel, *initrd, *append;
	const char *mem_path;
	bool mem_prealloc;
	bool no_reboot;
	bool no_shutdown;
	bool start_paused;		/* -S */
	const char *name;
	const char *uuid;		/* -uuid, or NULL */
	const char *serial[4];		/* -serial per COM port; NULL: none */
	unsigned log_mask;		/* -d: LOG_* items of log.h */
	struct cpu_model cpu;		/* -cpu; zero: max, migratable */
	bool no_dump_guest_core;	/* -machine dump-guest-core=off */
	bool no_mem_merge;		/* -machine mem-merge=off */
	int64_t rtc_offset_ns;		/* -rtc base=: guest wall clock - host UTC */
	struct smbios_config *smbios;	/* -smbios, see smbios.h; NULL: defaults */
};

/* A device that wants to hear of reset and teardown embeds one of these. */
struct device {
	const char *type;		/* "isa-debug-exit" */
	char *id;			/* id= or NULL */
	void (*reset)(struct device *d);
	void (*destroy)(struct device *d);
	struct device *next;
};

/*
 * A -device driver.  Types register themselves with DEVICE_TYPE() in their
 * own file; the machine finds them by name.
 */
struct device_type {
	const char *name;
	const char *help;
	int (*create)(struct machine *m, struct opts *o, char *err, size_t errlen);
	bool hotpluggable;		/* QMP device_add may create it while the VM runs */
	struct device_type *next;
};
void device_type_register(struct device_type *t);
#define DEVICE_TYPE(sym, ...)						\
	static struct device_type sym = { __VA_ARGS__ };		\
	static void __attribute__((constructor)) sym##_register(void)	\
	{ device_type_register(&sym); }
const struct device_type *device_type_find(const char *name);
void device_types_print(void);

enum machine_request {
	MACHINE_REQ_NONE,
	MACHINE_REQ_POWEROFF,		/* guest powered off: exit 0 */
	MACHINE_REQ_RESET,		/* reboot, or exit with -no-reboot */
	MACHINE_REQ_EXIT,		/* exit with m->exit_status */
	MACHINE_REQ_ERROR,		/* VMM error: exit 1 */
};

enum machine_runstate { RUNSTATE_PRELAUNCH, RUNSTATE_RUNNING, RUNSTATE_PAUSED,
			RUNSTATE_SHUTDOWN };

/* One e820 entry, as the Linux boot protocol lays it out. */
struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX 16

/* What a device did with a request that failed (QMP's BLOCK_IO_ERROR). */
enum machine_io_action { MACHINE_IO_REPORT, MACHINE_IO_IGNORE, MACHINE_IO_STOP };
struct machine_io_error {
	const char *device;		/* the drive's id */
	bool write;			/* else a read */
	enum machine_io_action action;	/* the action taken */
	int error;			/* positive errno */
};

/* A removable unit's tray opened or closed (QMP's DEVICE_TRAY_MOVED). */
struct machine_tray_event {
	const char *device;		/* the unit's -drive id, or "" */
	const char *id;			/* the unit's id=, or "" */
	bool tray_open;
};

/*
 * Observers of machine events (the monitor turns them into QMP events).
 * All run on the main thread; a device that listens (for instance to
 * retry, on RUNNING, the requests it held while the VM was stopped)
 * removes itself before it is freed.
 */
struct machine_listener {
	void (*runstate_changed)(void *opaque, enum machine_runstate s, const char *reason);
	void (*reset)(void *opaque, bool guest);
	void (*powerdown)(void *opaque);
	/* Told before the VM pauses for an error with MACHINE_IO_STOP. */
	void (*io_error)(void *opaque, const struct machine_io_error *e);
	void (*tray_moved)(void *opaque, const struct machine_tray_event *e);
	void *opaque;
	struct machine_listener *next;
};

struct machine {
	struct machine_config cfg;
	const struct accel_ops *accel;
	void *accel_state;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct vcpu **vcpus;
	unsigned nr_vcpus;
	struct pci_host *pci;
	struct acpi *acpi;
	struct monitor *monitor;	/* QMP, see monitor.h */
	struct device *devices;
	struct drive *drives;		/* -drive, see block.h */
	struct machine_listener *listeners;
	struct vmstate_section *vmstate;	/* migrated state, see vmstate.h */
	struct migration *migration;	/* migration state, see migration.h */
	/*
	 * -incoming: the migration source still owns the disks, so drives
	 * open inactive (block.h) until the incoming migration activates them.
	 */
	bool incoming;
	uint64_t rsdp_addr;		/* ACPI RSDP, for the boot loaders */
	uint32_t nr_irq_pins;		/* GSIs wired to the IOAPIC */

	GMainContext *ctx;
	GMainLoop *loop;
	/* Serves a posted request on ctx (the board's); NULL: only recorded. */
	GSourceFunc on_request;

	pthread_mutex_t lock;		/* guards the fields below */
	enum machine_request request;	/* also read unlocked: stored atomically */
	enum machine_runstate runstate;
	/*
	 * Why a machine that is not running stopped (a string constant:
	 * "qmp", "io-error", "finish-migrate"), for query-status; NULL when
	 * it runs, or was never started (-S).
	 */
	const char *pause_reason;
	int exit_status;
	char error[256];
};

/* Build a machine from its config: memory, accelerator, vCPUs, board. */
int machine_init(struct machine *m, const struct machine_config *cfg, char *err, size_t errlen);
/* Create one -device. */
int machine_add_device(struct machine *m, const char *optstr, char *err, size_t errlen);
/* Load the kernel, set the BSP and start the vCPUs (unless -S). */
int machine_boot(struct machine *m, char *err, size_t errlen);
/* Run the main loop until a request ends the VM; returns the exit status. */
int machine_run(struct machine *m);
void machine_destroy(struct machine *m);

void machine_add_device_obj(struct machine *m, struct device *d);
struct device *machine_find_device(struct machine *m, const char *id);
void machine_add_listener(struct machine *m, struct machine_listener *l);
/* Main thread; a listener that was never added is ignored. */
void machine_remove_listener(struct machine *m, struct machine_listener *l);

/* Thread-safe; called from vCPU and device threads. */
void machine_request_poweroff(struct machine *m);
void machine_request_reset(struct machine *m);
void machine_request_exit(struct machine *m, int status);
void machine_request_error(struct machine *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A device's request failed (thread-safe; e is copied).  The main thread
 * tells the listeners (the monitor emits BLOCK_IO_ERROR) and then, for
 * MACHINE_IO_STOP, pauses a running VM with reason "io-error" (a STOP
 * event).  Unlike the requests above this does not end the VM, and vCPUs
 * keep running until the main thread pauses them.  Like tray moves below,
 * the listeners hear of it on the main loop, later, in report order.
 */
void machine_report_io_error(struct machine *m, const struct machine_io_error *e);
/*
 * A tray moved (thread-safe; e is copied).  The listeners hear of it on
 * the main loop, later, in the order of the reports from every thread
 * (so a QMP command's event follows its reply).  A device reports under
 * the lock that orders its tray's moves.
 */
void machine_report_tray_moved(struct machine *m, const struct machine_tray_event *e);

/*
 * A power-off, reset, exit or error is waiting for the main thread.  A
 * vCPU that just made the access behind it (isa-debug-exit, a reset line)
 * runs no further guest code, as on hardware where that write is the last
 * thing the CPU does: accelerators that dispatch I/O themselves check this.
 * On the vCPU thread whose access posted the request this stays true even
 * after the main thread has taken it, until that vCPU next enters the guest.
 */
bool machine_request_pending(struct machine *m);

/* Pause/resume every vCPU (QMP stop/cont, migration); main thread only. */
void machine_pause(struct machine *m, const char *reason);
void machine_resume(struct machine *m);
/* Ask the guest to power off (ACPI power button). */
void machine_powerdown(struct machine *m);
/* Reset the whole machine now (guest: the guest asked).  Main thread. */
int machine_system_reset(struct machine *m, bool guest);
/*
 * End machine_run with this exit status; reason as in QMP's SHUTDOWN event
 * ("guest-shutdown", "host-qmp-quit", "host-signal"...).  Main thread.
 */
void machine_quit(struct machine *m, int status, const char *reason);

/* The runstate moved: tell the listeners.  Main thread. */
void machine_set_runstate(struct machine *m, enum machine_runstate s, const char *reason);

/* Interrupts: a GSI line level, or an MSI message. */
void machine_set_irq(struct machine *m, unsigned gsi, int level);
void machine_send_msi(struct machine *m, uint64_t addr, uint32_t data);

/* The guest's memory map, for the boot loaders.  Returns the entry count. */
unsigned machine_e820(const struct machine *m, struct e820_entry *e, unsigned max);

#endif
