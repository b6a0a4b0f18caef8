/*
 * -cpu: the CPU model a guest sees and the CPUID feature bits the user
 * turned on or off, as QEMU spells them ("host,migratable=on,-avx2").
 *
 * vireo offers two models.  "host" is what KVM supports on this host
 * (KVM only, as in QEMU); "max" is the most the accelerator offers: the
 * same as host under KVM, and what the translator implements under TCG.
 * A feature turned off is cleared from every CPUID answer; a feature
 * turned on is a requirement: the VM does not start when the accelerator
 * cannot offer it (QEMU's "enforce"), since neither KVM nor the
 * translator can run an instruction set it does not have.
 */
#ifndef VIREO_CPU_MODEL_H
#define VIREO_CPU_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPU_MODEL_MAX_FEATURES 64

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

struct cpu_feature {
	const char *name;		/* QEMU's spelling: "sse4.2", "avx2" */
	uint32_t leaf, sub;
	enum cpuid_reg reg;
	uint8_t bit;
};

struct cpu_model {
	bool host;			/* -cpu host: KVM only */
	/*
	 * migratable=off: the invariant TSC bit is kept.  By default (QEMU's
	 * migratable=on) it is hidden: a TSC rate is not kept across hosts.
	 */
	bool keep_invtsc;
	bool hide_kvm;			/* kvm=off: no KVM leaves at 0x40000000 */
	unsigned nr;
	struct {
		const struct cpu_feature *f;
		bool on;
	} req[CPU_MODEL_MAX_FEATURES];
};

/*
 * -smp sockets=S,cores=C,threads=T.  APIC IDs are the vCPU indexes, so the
 * topology's fields of an APIC ID (thread, core, package) must line up
 * with them: threads, and with several sockets cores too, are powers of
 * two (the -smp parser checks).  machine_init fills a zeroed one in as
 * one socket of smp cores, one thread each.
 */
struct cpu_topology {
	unsigned sockets, cores, threads;
};

/* APIC ID bits of the thread level and of the core level. */
unsigned cpu_topology_thread_bits(const struct cpu_topology *t);
unsigned cpu_topology_core_bits(const struct cpu_topology *t);
/* Logical processors a package's APIC IDs span (CPUID.1:EBX[23:16]). */
unsigned cpu_topology_package_span(const struct cpu_topology *t);
/* CPUID leaf 0xB (or 0x1F) subleaf sub of the vCPU with that APIC ID. */
void cpu_topology_leaf(const struct cpu_topology *t, uint32_t apic_id, uint32_t sub,
		       uint32_t r[4]);

/*
 * A zeroed struct cpu_model is the model without -cpu: max, migratable,
 * the KVM leaves shown, no feature changed.
 */
/* Parse a -cpu argument; errors name the model or feature. */
int cpu_model_parse(const char *arg, struct cpu_model *cm, char *err, size_t errlen);
/* -cpu help: the models and feature names, on stdout. */
void cpu_model_print_help(void);

/* Apply the features turned off (and migratable) to one CPUID answer. */
void cpu_model_filter(const struct cpu_model *cm, uint32_t leaf, uint32_t sub, uint32_t r[4]);
/* True when the leaf is hidden altogether (kvm=off: the KVM leaves). */
bool cpu_model_hides_leaf(const struct cpu_model *cm, uint32_t leaf);

/*
 * Check, with the accelerator's filtered CPUID (cpuid() fills r), that
 * every feature turned on is there; -ENOTSUP with an error naming the
 * missing ones and the accelerator otherwise.
 */
typedef void cpu_model_cpuid_fn(void *opaque, uint32_t leaf, uint32_t sub, uint32_t r[4]);
int cpu_model_check(const struct cpu_model *cm, const char *accel, cpu_model_cpuid_fn *cpuid,
		    void *opaque, char *err, size_t errlen);

#endif
