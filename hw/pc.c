/*
 * The PC board: guest RAM around the PCI hole, the accelerator, vCPUs, the
 * legacy devices every PC has, the PCI host and ACPI; booting without
 * firmware; and the main thread's handling of machine requests (reboot,
 * power-off, exit).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "accel/accel.h"
#include "acpi.h"
#include "block.h"
#include "board.h"
#include "boot.h"
#include "log.h"
#include "machine.h"
#include "pci.h"
#include "smbios.h"
#include "vcpu.h"

/* ---- the memory map ---- */

unsigned machine_e820(const struct machine *m, struct e820_entry *e, unsigned max)
{
	const struct guest_mem *gm = &m->mem;
	unsigned n = 0;

#define ADD(a, s, t) do { if (n < max) e[n++] = (struct e820_entry){ (a), (s), (t) }; } while (0)
	/* Conventional memory up to the EBDA; the BIOS area holds the ACPI tables. */
	ADD(0, 0x9FC00, E820_RAM);
	ADD(0x9FC00, 0x100000 - 0x9FC00, E820_RESERVED);
	ADD(0x100000, gm->r[0].size - 0x100000, E820_RAM);
	/* ECAM must be reserved or Linux ignores MCFG. */
	ADD(MEM_PCI_ECAM_BASE, MEM_PCI_ECAM_SIZE, E820_RESERVED);
	for (unsigned i = 1; i < gm->nr; i++)
		ADD(gm->r[i].gpa, gm->r[i].size, E820_RAM);
#undef ADD
	return n;
}

void machine_powerdown(struct machine *m)
{
	for (struct machine_listener *l = m->listeners; l; l = l->next)
		if (l->powerdown)
			l->powerdown(l->opaque);
	acpi_power_button(m);
}

/* Load the kernel and put every vCPU in its power-on state. */
static int machine_load(struct machine *m, char *err, size_t errlen)
{
	struct cpu_state bsp;
	int ret;

	ret = acpi_build(m, err, errlen);
	if (!ret)
		ret = smbios_build(m, err, errlen);
	if (ret)
		return ret;
	ret = boot_load(m, &bsp, err, errlen);
	if (ret)
		return ret;
	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		ret = m->accel->vcpu_reset(m->vcpus[i], i ? NULL : &bsp);
		if (ret) {
			snprintf(err, errlen, "vCPU %u: cannot set its boot state: %s", i,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/*
 * System reset: devices to power-on state, kernel loaded afresh, vCPUs
 * reset.  A VM that was running runs again; a paused or shut-down one is
 * left paused.  Main thread.
 */
int machine_system_reset(struct machine *m, bool guest)
{
	bool run = m->runstate == RUNSTATE_RUNNING;
	char err[256];
	int ret;

	for (unsigned i = 0; i < m->nr_vcpus; i++)
		vcpu_pause(m->vcpus[i]);
	for (struct device *d = m->devices; d; d = d->next)
		if (d->reset)
			d->reset(d);
	ret = machine_load(m, err, sizeof(err));
	if (ret) {
		log_error("reset: %s", err);
		return ret;
	}
	for (struct machine_listener *l = m->listeners; l; l = l->next)
		if (l->reset)
			l->reset(l->opaque, guest);
	if (run) {
		for (unsigned i = 0; i < m->nr_vcpus; i++)
			vcpu_resume(m->vcpus[i]);
	} else if (m->runstate == RUNSTATE_SHUTDOWN) {
		machine_set_runstate(m, RUNSTATE_PAUSED, NULL);
	}
	return 0;
}

void machine_quit(struct machine *m, int status, const char *reason)
{
	m->exit_status = status;
	machine_set_runstate(m, RUNSTATE_SHUTDOWN, reason);
	g_main_loop_quit(m->loop);
}

/*
 * -d cpu_exit: the registers of every vCPU as the guest left the VM.  Each
 * vCPU is paused first: the one that ended the VM has parked after its
 * last instruction, the others stop where they are (typically in hlt).
 */
static void pc_log_cpu_exit(struct machine *m)
{
	if (!(m->cfg.log_mask & LOG_CPU_EXIT))
		return;
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		vcpu_pause(m->vcpus[i]);
	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		struct cpu_state s;
		char *text;
		int ret = m->accel->vcpu_get_state(m->vcpus[i], &s);

		if (ret) {
			log_warn("-d cpu_exit: vCPU %u: cannot read the registers: %s", i,
				 strerror(-ret));
			continue;
		}
		text = cpu_state_format(&s, i, "\n");
		log_text(text);
		g_free(text);
	}
}

static gboolean pc_handle_request(gpointer opaque)
{
	struct machine *m = opaque;
	enum machine_request req;
	int status;

	pthread_mutex_lock(&m->lock);
	req = m->request;
	status = m->exit_status;
	/* Atomic: vCPU threads poll it unlocked (machine_request_pending). */
	__atomic_store_n(&m->request, MACHINE_REQ_NONE, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&m->lock);

	switch (req) {
	case MACHINE_REQ_NONE:
		break;
	case MACHINE_REQ_RESET:
		if (m->cfg.no_reboot) {
			pc_log_cpu_exit(m);
			machine_quit(m, 0, "guest-reset");
		} else if (machine_system_reset(m, true))
			machine_quit(m, 1, "guest-reset");
		break;
	case MACHINE_REQ_POWEROFF:
		pc_log_cpu_exit(m);
		if (!m->cfg.no_shutdown) {
			machine_quit(m, 0, "guest-shutdown");
			break;
		}
		/* -no-shutdown: stay, paused, for the management stack to decide. */
		for (unsigned i = 0; i < m->nr_vcpus; i++)
			vcpu_pause(m->vcpus[i]);
		machine_set_runstate(m, RUNSTATE_SHUTDOWN, "guest-shutdown");
		break;
	case MACHINE_REQ_EXIT:
		pc_log_cpu_exit(m);
		machine_quit(m, status, "guest-shutdown");
		break;
	case MACHINE_REQ_ERROR:
		log_error("%s", m->error);
		machine_quit(m, 1, "host-error");
		break;
	}
	return G_SOURCE_REMOVE;
}

/* ---- construction ---- */

int machine_init(struct machine *m, const struct machine_config *cfg, char *err, size_t errlen)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	pthread_mutex_init(&m->lock, NULL);
	m->ctx = g_main_context_new();
	m->loop = g_main_loop_new(m->ctx, FALSE);
	m->on_request = pc_handle_request;
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	m->nr_irq_pins = 24;

	if (cfg->smp < 1 || cfg->smp > MACHINE_MAX_VCPUS) {
		snprintf(err, errlen, "-smp %u: this machine supports 1 to %u vCPUs", cfg->smp,
			 MACHINE_MAX_VCPUS);
		return -EINVAL;
	}
	if (!m->cfg.topo.sockets)
		m->cfg.topo = (struct cpu_topology){ .sockets = 1, .cores = cfg->smp, .threads = 1 };
	if (m->cfg.topo.sockets * m->cfg.topo.cores * m->cfg.topo.threads != cfg->smp) {
		snprintf(err, errlen, "-smp %u: sockets=%u, cores=%u, threads=%u do not make %u "
			 "vCPUs", cfg->smp, m->cfg.topo.sockets, m->cfg.topo.cores,
			 m->cfg.topo.threads, cfg->smp);
		return -EINVAL;
	}
	ret = guest_mem_init(&m->mem, cfg->ram_size, cfg->mem_path, cfg->mem_prealloc, err, errlen);
	if (ret)
		return ret;
	/*
	 * -machine dump-guest-core=off keeps guest RAM out of a core dump of
	 * vireo (the guest's secrets, and gigabytes); mem-merge=off takes it
	 * out of KSM, which guest_mem_init offers anonymous RAM to.
	 */
	if (cfg->no_dump_guest_core && madvise(m->mem.base, m->mem.map_size, MADV_DONTDUMP))
		log_warn("-machine dump-guest-core=off: madvise: %s", strerror(errno));
	if (cfg->no_mem_merge && !cfg->mem_path)
		madvise(m->mem.base, m->mem.map_size, MADV_UNMERGEABLE);	/* no KSM: moot */
	m->accel = accel_select(cfg->accel, err, errlen);
	if (!m->accel)
		return -ENODEV;
	ret = m->accel->vm_init(m, err, errlen);
	if (ret)
		return ret;
	for (unsigned i = 0; i < m->mem.nr; i++) {
		ret = m->accel->set_memory(m, &m->mem.r[i]);
		if (ret) {
			snprintf(err, errlen, "%s: cannot map guest RAM region %u: %s",
				 m->accel->name, i, strerror(-ret));
			return ret;
		}
	}

	m->vcpus = calloc(cfg->smp, sizeof(*m->vcpus));
	for (unsigned i = 0; i < cfg->smp; i++) {
		m->vcpus[i] = vcpu_create(m, i, err, errlen);
		if (!m->vcpus[i])
			return -EINVAL;
		m->nr_vcpus++;
	}

	if ((ret = acpi_init(m, err, errlen)) || (ret = pci_host_init(m, err, errlen)) ||
	    (ret = rtc_create(m, err, errlen)) || (ret = i8042_create(m, err, errlen)))
		return ret;
	for (unsigned i = 0; i < 4; i++) {
		if (cfg->serial[i] && (ret = uart_create(m, i, cfg->serial[i], err, errlen)))
			return ret;
	}
	return 0;
}

int machine_boot(struct machine *m, char *err, size_t errlen)
{
	int ret = machine_load(m, err, errlen);

	if (ret)
		return ret;
	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		ret = vcpu_start(m->vcpus[i], m->cfg.start_paused);
		if (ret) {
			snprintf(err, errlen, "vCPU %u: cannot start its thread: %s", i, strerror(-ret));
			return ret;
		}
	}
	machine_set_runstate(m, m->cfg.start_paused ? RUNSTATE_PRELAUNCH : RUNSTATE_RUNNING, NULL);
	return 0;
}

int machine_run(struct machine *m)
{
	g_main_context_push_thread_default(m->ctx);
	g_main_loop_run(m->loop);
	g_main_context_pop_thread_default(m->ctx);
	return m->exit_status;
}

void machine_destroy(struct machine *m)
{
	struct device *d, *next;

	/* vCPUs first: after this no guest access reaches a device. */
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		vcpu_stop(m->vcpus[i]);
	for (d = m->devices; d; d = next) {
		next = d->next;
		if (d->destroy)
			d->destroy(d);
	}
	m->devices = NULL;
	/* Closing a drive flushes it: nothing the guest wrote is lost on exit. */
	drive_close_all(m);
	if (m->pci)
		pci_host_destroy(m);
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		vcpu_destroy(m->vcpus[i]);
	free(m->vcpus);
	m->vcpus = NULL;
	m->nr_vcpus = 0;
	if (m->accel)
		m->accel->vm_destroy(m);
	guest_mem_destroy(&m->mem);
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	if (m->loop)
		g_main_loop_unref(m->loop);
	if (m->ctx)
		g_main_context_unref(m->ctx);
	pthread_mutex_destroy(&m->lock);
}
