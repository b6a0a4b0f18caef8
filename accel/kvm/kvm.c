/*
 * KVM accelerator, VM side: the VM, its memory slots, the in-kernel
 * irqchip (LAPIC, IOAPIC, PIC, PIT), interrupt lines and MSIs, irqfd and
 * ioeventfd, and the dirty log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "accel/kvm/kvm_int.h"
#include "log.h"
#include "machine.h"

/* Below the 4 GiB boundary, out of the way of the PCI and LAPIC windows. */
#define KVM_IDENTITY_MAP_ADDR	0xFEFFC000ull
#define KVM_TSS_ADDR		0xFEFFD000ull

static int kvm_probe(char *why, size_t len)
{
	int fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
	int version;

	if (fd < 0) {
		snprintf(why, len, "kvm: cannot open %s: %s", KVM_DEVICE, strerror(errno));
		return -errno;
	}
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (version != KVM_API_VERSION) {
		snprintf(why, len, "kvm: %s speaks API version %d, vireo needs %d", KVM_DEVICE,
			 version, KVM_API_VERSION);
		return -ENOTSUP;
	}
	return 0;
}

static struct kvm_vm *kvm(struct machine *m)
{
	return m->accel_state;
}

static int kvm_commit_routes(struct kvm_vm *k)
{
	return ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, k->routes) ? -errno : 0;
}

static void kvm_add_irqchip_route(struct kvm_vm *k, unsigned gsi, unsigned chip, unsigned pin)
{
	struct kvm_irq_routing_entry *e = &k->routes->entries[k->routes->nr++];

	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

/*
 * The PC wiring: ISA IRQs 0-15 to the PICs, GSIs 0-23 to the IOAPIC, with
 * ISA IRQ 0 on IOAPIC pin 2 as the MADT's interrupt source override says.
 */
static int kvm_setup_routes(struct kvm_vm *k)
{
	k->routes = calloc(1, sizeof(*k->routes) +
			   KVM_MAX_ROUTES * sizeof(struct kvm_irq_routing_entry));
	if (!k->routes)
		return -ENOMEM;
	for (unsigned i = 0; i < 16; i++) {
		if (i != 2)
			kvm_add_irqchip_route(k, i, i < 8 ? KVM_IRQCHIP_PIC_MASTER :
					      KVM_IRQCHIP_PIC_SLAVE, i % 8);
	}
	for (unsigned i = 0; i < 24; i++) {
		if (i != 2)
			kvm_add_irqchip_route(k, i, KVM_IRQCHIP_IOAPIC, i ? i : 2);
	}
	return kvm_commit_routes(k);
}

static int kvm_vm_init(struct machine *m, char *err, size_t errlen)
{
	struct kvm_vm *k = calloc(1, sizeof(*k));
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	static const struct { int cap; const char *name; } needed[] = {
		{ KVM_CAP_IRQCHIP, "in-kernel irqchip" },
		{ KVM_CAP_USER_MEMORY, "user memory" },
		{ KVM_CAP_IOEVENTFD, "ioeventfd" },
		{ KVM_CAP_IRQFD, "irqfd" },
		{ KVM_CAP_SIGNAL_MSI, "MSI injection" },
		{ KVM_CAP_IRQ_ROUTING, "GSI routing" },
		{ KVM_CAP_IMMEDIATE_EXIT, "immediate exit" },
		{ KVM_CAP_PIT2, "in-kernel PIT" },
		{ KVM_CAP_EXT_CPUID, "CPUID" },
	};
	int nent = 256, ret;

	m->accel_state = k;
	k->vm_fd = -1;
	pthread_mutex_init(&k->route_lock, NULL);
	pthread_mutex_init(&k->dirty_lock, NULL);
	k->sys_fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
	if (k->sys_fd < 0) {
		snprintf(err, errlen, "kvm: cannot open %s: %s", KVM_DEVICE, strerror(errno));
		return -errno;
	}
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0) {
			snprintf(err, errlen, "kvm: this host's KVM lacks %s", needed[i].name);
			return -ENOTSUP;
		}
	}
	k->max_vcpus = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (k->max_vcpus <= 0)
		k->max_vcpus = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (m->cfg.smp > (unsigned)k->max_vcpus) {
		snprintf(err, errlen, "-smp %u: this host's KVM supports at most %d vCPUs",
			 m->cfg.smp, k->max_vcpus);
		return -EINVAL;
	}
	k->run_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	for (;;) {
		k->cpuid = calloc(1, sizeof(*k->cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
		k->cpuid->nent = nent;
		if (!ioctl(k->sys_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid))
			break;
		free(k->cpuid);
		k->cpuid = NULL;
		if (errno != E2BIG || nent > 4096) {
			snprintf(err, errlen, "kvm: KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			return -errno;
		}
		nent *= 2;
	}

	k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		snprintf(err, errlen, "kvm: cannot create a VM: %s", strerror(errno));
		return -errno;
	}
	/* Before the first vCPU, or KVM refuses it. */
	ret = kvm_dirty_ring_enable(m, k, err, errlen);
	if (ret)
		return ret;
	if (ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ KVM_IDENTITY_MAP_ADDR }) ||
	    ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) ||
	    ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) ||
	    ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit)) {
		snprintf(err, errlen, "kvm: cannot set up the in-kernel irqchip: %s",
			 strerror(errno));
		return -errno;
	}
	ret = kvm_setup_routes(k);
	if (ret) {
		snprintf(err, errlen, "kvm: cannot set GSI routes: %s", strerror(-ret));
		return ret;
	}
	/* Remember the power-on state of PIC, IOAPIC and PIT for resets. */
	for (unsigned i = 0; i < 3; i++) {
		k->chip0[i].chip_id = i;
		if (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &k->chip0[i]))
			return -errno;
	}
	if (ioctl(k->vm_fd, KVM_GET_PIT2, &k->pit0))
		return -errno;
	return 0;
}

int kvm_vm_reset_irqchip(struct machine *m)
{
	struct kvm_vm *k = kvm(m);

	for (unsigned i = 0; i < 3; i++)
		if (ioctl(k->vm_fd, KVM_SET_IRQCHIP, &k->chip0[i]))
			return -errno;
	return ioctl(k->vm_fd, KVM_SET_PIT2, &k->pit0) ? -errno : 0;
}

static void kvm_vm_destroy(struct machine *m)
{
	struct kvm_vm *k = kvm(m);

	if (!k)
		return;
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	free(k->cpuid);
	free(k->routes);
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++)
		free(k->ring_bm[i]);
	pthread_mutex_destroy(&k->dirty_lock);
	pthread_mutex_destroy(&k->route_lock);
	free(k);
	m->accel_state = NULL;
}

static int kvm_set_slot(struct kvm_vm *k, const struct ram_region *r)
{
	struct kvm_userspace_memory_region slot = {
		.slot = r->slot,
		.flags = k->dirty_logging ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = r->gpa,
		.memory_size = r->size,
		.userspace_addr = (uintptr_t)r->hva,
	};

	return ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) ? -errno : 0;
}

static int kvm_set_memory(struct machine *m, const struct ram_region *r)
{
	return kvm_set_slot(kvm(m), r);
}

static int kvm_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	return ioctl(kvm(m)->vm_fd, KVM_IRQ_LINE, &irq) ? -errno : 0;
}

static int kvm_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = addr >> 32,
		.data = data,
	};

	return ioctl(kvm(m)->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

static int kvm_ioeventfd(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd,
			 bool assign)
{
	struct kvm_ioeventfd ioe = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(kvm(m)->vm_fd, KVM_IOEVENTFD, &ioe) ? -errno : 0;
}

static int kvm_add_ioeventfd(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd)
{
	return kvm_ioeventfd(m, addr, len, pio, fd, true);
}

static int kvm_del_ioeventfd(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd)
{
	return kvm_ioeventfd(m, addr, len, pio, fd, false);
}

static struct kvm_irq_routing_entry *kvm_find_route(struct kvm_vm *k, unsigned gsi)
{
	for (unsigned i = 0; i < k->routes->nr; i++)
		if (k->routes->entries[i].gsi == gsi)
			return &k->routes->entries[i];
	return NULL;
}

static int kvm_add_irqfd_msi(struct machine *m, int fd, uint64_t addr, uint32_t data)
{
	struct kvm_vm *k = kvm(m);
	struct kvm_irq_routing_entry *e;
	struct kvm_irqfd irqfd = { .fd = fd };
	unsigned gsi;
	int ret;

	pthread_mutex_lock(&k->route_lock);
	for (gsi = KVM_FIRST_MSI_GSI; gsi < KVM_MAX_ROUTES && k->msi_gsi_used[gsi]; gsi++)
		;
	if (gsi == KVM_MAX_ROUTES || k->routes->nr == KVM_MAX_ROUTES) {
		ret = -ENOSPC;
		goto out;
	}
	e = &k->routes->entries[k->routes->nr++];
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = addr >> 32;
	e->u.msi.data = data;
	ret = kvm_commit_routes(k);
	if (!ret) {
		irqfd.gsi = gsi;
		ret = ioctl(k->vm_fd, KVM_IRQFD, &irqfd) ? -errno : 0;
	}
	if (ret) {
		k->routes->nr--;
		kvm_commit_routes(k);
		goto out;
	}
	k->msi_gsi_used[gsi] = true;
	ret = gsi;
out:
	pthread_mutex_unlock(&k->route_lock);
	return ret;
}

static int kvm_update_irqfd_msi(struct machine *m, int handle, uint64_t addr, uint32_t data)
{
	struct kvm_vm *k = kvm(m);
	struct kvm_irq_routing_entry *e;
	int ret = -ENOENT;

	pthread_mutex_lock(&k->route_lock);
	e = kvm_find_route(k, handle);
	if (e && e->type == KVM_IRQ_ROUTING_MSI) {
		e->u.msi.address_lo = (uint32_t)addr;
		e->u.msi.address_hi = addr >> 32;
		e->u.msi.data = data;
		ret = kvm_commit_routes(k);
	}
	pthread_mutex_unlock(&k->route_lock);
	return ret;
}

static int kvm_del_irqfd_msi(struct machine *m, int handle, int fd)
{
	struct kvm_vm *k = kvm(m);
	struct kvm_irqfd irqfd = { .fd = fd, .gsi = handle, .flags = KVM_IRQFD_FLAG_DEASSIGN };
	struct kvm_irq_routing_entry *e;
	int ret;

	pthread_mutex_lock(&k->route_lock);
	ret = ioctl(k->vm_fd, KVM_IRQFD, &irqfd) ? -errno : 0;
	e = kvm_find_route(k, handle);
	if (e && handle >= KVM_FIRST_MSI_GSI && handle < KVM_MAX_ROUTES) {
		*e = k->routes->entries[--k->routes->nr];
		k->msi_gsi_used[handle] = false;
		kvm_commit_routes(k);
	}
	pthread_mutex_unlock(&k->route_lock);
	return ret;
}

static int kvm_dirty_log_set(struct machine *m, bool on)
{
	struct kvm_vm *k = kvm(m);
	int ret;

	k->dirty_logging = on;
	for (unsigned i = 0; i < m->mem.nr; i++) {
		ret = kvm_set_slot(k, &m->mem.r[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int kvm_dirty_log_start(struct machine *m)
{
	int ret = kvm(m)->ring_entries ? kvm_dirty_ring_start(m, kvm(m)) : 0;

	if (kvm(m)->ring_entries)
		log_info("kvm: dirty pages tracked with the dirty ring (%u entries per vCPU)",
			 kvm(m)->ring_entries);
	else
		log_info("kvm: dirty pages tracked with the dirty log bitmap");
	return ret ? ret : kvm_dirty_log_set(m, true);
}

static int kvm_dirty_log_stop(struct machine *m)
{
	int ret = kvm_dirty_log_set(m, false);

	if (kvm(m)->ring_entries)
		kvm_dirty_ring_stop(m, kvm(m));
	return ret;
}

static int kvm_dirty_log_sync(struct machine *m, const struct ram_region *r, unsigned long *bitmap)
{
	size_t words = (r->size / 4096 + 63) / 64;
	unsigned long *tmp;
	struct kvm_dirty_log log = { .slot = r->slot };
	int ret = 0;

	if (kvm(m)->ring_entries)
		return kvm_dirty_ring_sync(m, kvm(m), r, bitmap);
	tmp = calloc(words, sizeof(*tmp));
	log.dirty_bitmap = tmp;
	if (!tmp)
		return -ENOMEM;
	if (ioctl(kvm(m)->vm_fd, KVM_GET_DIRTY_LOG, &log))
		ret = -errno;
	else
		for (size_t i = 0; i < words; i++)
			bitmap[i] |= tmp[i];
	free(tmp);
	return ret;
}

const struct accel_ops kvm_accel_ops = {
	.name = "kvm",
	.thread_suffix = "KVM",
	.probe = kvm_probe,
	.vm_init = kvm_vm_init,
	.vm_destroy = kvm_vm_destroy,
	.set_memory = kvm_set_memory,
	.set_irq = kvm_set_irq,
	.send_msi = kvm_send_msi,
	.add_ioeventfd = kvm_add_ioeventfd,
	.del_ioeventfd = kvm_del_ioeventfd,
	.add_irqfd_msi = kvm_add_irqfd_msi,
	.update_irqfd_msi = kvm_update_irqfd_msi,
	.del_irqfd_msi = kvm_del_irqfd_msi,
	.dirty_log_start = kvm_dirty_log_start,
	.dirty_log_sync = kvm_dirty_log_sync,
	.dirty_log_stop = kvm_dirty_log_stop,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vcpu_reset = kvm_vcpu_reset,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.vcpu_get_state = kvm_vcpu_get_state,
	.vcpu_set_state = kvm_vcpu_set_state,
	.state_version = 1,
	.vm_save = kvm_state_vm_save,
	.vm_load = kvm_state_vm_load,
	.vcpu_save = kvm_state_vcpu_save,
	.vcpu_load = kvm_state_vcpu_load,
};
