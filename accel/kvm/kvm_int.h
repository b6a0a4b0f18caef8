/* KVM accelerator: private state shared by kvm.c (VM) and kvm_vcpu.c. */
#ifndef VIREO_KVM_INT_H
#define VIREO_KVM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

#include "accel/accel.h"
#include "memory.h"

#define KVM_DEVICE "/dev/kvm"
/* GSI routes: 0-23 are the irqchip pins; MSI routes for irqfds follow. */
#define KVM_MAX_ROUTES 1024
#define KVM_FIRST_MSI_GSI 24

struct kvm_vm {
	int sys_fd;			/* /dev/kvm */
	int vm_fd;
	int run_size;			/* mmap size of struct kvm_run */
	int max_vcpus;
	struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID */
	bool dirty_logging;
	/* kvm_dirty.c: entries per vCPU ring, 0 without the dirty ring */
	unsigned ring_entries;
	pthread_mutex_t dirty_lock;	/* ring_bm, and harvesting the rings */
	unsigned long *ring_bm[GUEST_MAX_RAM_REGIONS];	/* harvested, not yet synced */

	pthread_mutex_t route_lock;
	struct kvm_irq_routing *routes;	/* header + KVM_MAX_ROUTES entries */
	bool msi_gsi_used[KVM_MAX_ROUTES];

	/* Power-on state of the in-kernel irqchips, restored at reset. */
	struct kvm_irqchip chip0[3];
	struct kvm_pit_state2 pit0;
};

struct kvm_vcpu {
	int fd;
	struct kvm_run *run;
	struct kvm_lapic_state lapic0;	/* power-on LAPIC state, restored at reset */
	bool io_pending;		/* a PIO/MMIO exit KVM completes on the next KVM_RUN */
	struct kvm_dirty_gfn *ring;	/* dirty ring, or NULL */
	uint32_t ring_fetch;		/* next entry to harvest */
};

/* kvm_vcpu.c */
int kvm_vcpu_init(struct vcpu *v, char *err, size_t errlen);
void kvm_vcpu_destroy(struct vcpu *v);
int kvm_vcpu_reset(struct vcpu *v, const struct cpu_state *s);
int kvm_vcpu_run(struct vcpu *v, struct accel_exit *e);
void kvm_vcpu_kick(struct vcpu *v);
int kvm_vcpu_get_state(struct vcpu *v, struct cpu_state *s);
int kvm_vcpu_complete_io(struct vcpu *v);
int kvm_vcpu_set_state(struct vcpu *v, const struct cpu_state *s);

/* kvm_state.c: migration state (see accel.h) */
struct vmstate_out;
struct vmstate_in;
int kvm_state_vm_save(struct machine *m, struct vmstate_out *o);
int kvm_state_vm_load(struct machine *m, struct vmstate_in *in);
int kvm_state_vcpu_save(struct vcpu *v, struct vmstate_out *o);
int kvm_state_vcpu_load(struct vcpu *v, struct vmstate_in *in);

/* kvm.c */
int kvm_vm_reset_irqchip(struct machine *m);

/* kvm_dirty.c: the dirty ring, when the host offers it */
/* -accel kvm,dirty-ring-size=N: -EINVAL and err on a bad option. */
int kvm_dirty_ring_enable(struct machine *m, struct kvm_vm *k, char *err, size_t errlen);
int kvm_dirty_ring_map(struct kvm_vm *k, struct kvm_vcpu *c);
void kvm_dirty_ring_unmap(struct kvm_vm *k, struct kvm_vcpu *c);
/* A vCPU's ring filled up (KVM_EXIT_DIRTY_RING_FULL): harvest it. */
int kvm_dirty_ring_full(struct vcpu *v);
int kvm_dirty_ring_start(struct machine *m, struct kvm_vm *k);
void kvm_dirty_ring_stop(struct machine *m, struct kvm_vm *k);
int kvm_dirty_ring_sync(struct machine *m, struct kvm_vm *k, const struct ram_region *r,
			unsigned long *bitmap);

#endif
