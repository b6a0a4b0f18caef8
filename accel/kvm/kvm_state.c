/*
 * KVM state for migration: everything KVM keeps of a vCPU (registers,
 * segment and control registers, XSAVE and XCRs, every MSR KVM lists,
 * LAPIC, pending events, MP state, debug registers; the TSC travels as
 * MSR_IA32_TSC) and of the VM (PIC x2, IOAPIC, PIT, kvmclock), as vmstate
 * fields.  The raw KVM structures are the field contents: both ends run
 * the same uAPI, and the size check of vmstate_get refuses a mismatch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm/kvm_int.h"
#include "machine.h"
#include "vcpu.h"
#include "vmstate.h"

#define MSR_IA32_TSC		0x10

static struct kvm_vm *vm_of(struct machine *m)
{
	return m->accel_state;
}

static int vcpu_fd(struct vcpu *v)
{
	return ((struct kvm_vcpu *)v->accel_state)->fd;
}

/* Size of struct kvm_xsave this host needs (larger with AMX). */
static size_t xsave_size(struct kvm_vm *k)
{
	int n = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/*
 * The MSRs to move: KVM_GET_MSR_INDEX_LIST, less those this vCPU cannot
 * read (KVM_GET_MSRS stops at the first one it fails on).
 */
static struct kvm_msrs *get_msrs(struct vcpu *v)
{
	struct kvm_vm *k = vm_of(v->m);
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list = NULL;
	struct kvm_msrs *msrs = NULL, *tmp = NULL;
	size_t esz = sizeof(struct kvm_msr_entry);
	unsigned n, out = 0;
	int got;

	if (ioctl(k->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) && errno != E2BIG)
		return NULL;
	n = probe.nmsrs;
	list = calloc(1, sizeof(*list) + n * sizeof(list->indices[0]));
	msrs = calloc(1, sizeof(*msrs) + n * esz);
	tmp = calloc(1, sizeof(*tmp) + n * esz);
	if (!list || !msrs || !tmp)
		goto fail;
	list->nmsrs = n;
	if (ioctl(k->sys_fd, KVM_GET_MSR_INDEX_LIST, list))
		goto fail;
	for (unsigned i = 0; i < n; i++)
		msrs->entries[i].index = list->indices[i];
	msrs->nmsrs = n;
	while (out < msrs->nmsrs) {
		tmp->nmsrs = msrs->nmsrs - out;
		memcpy(tmp->entries, &msrs->entries[out], tmp->nmsrs * esz);
		got = ioctl(vcpu_fd(v), KVM_GET_MSRS, tmp);
		if (got < 0)
			goto fail;
		memcpy(&msrs->entries[out], tmp->entries, got * esz);
		out += got;
		if (out < msrs->nmsrs) {
			/* Drop the one KVM could not read and go on after it. */
			memmove(&msrs->entries[out], &msrs->entries[out + 1],
				(msrs->nmsrs - out - 1) * esz);
			msrs->nmsrs--;
		}
	}
	free(list);
	free(tmp);
	return msrs;
fail:
	free(list);
	free(tmp);
	free(msrs);
	return NULL;
}

int kvm_state_vcpu_save(struct vcpu *v, struct vmstate_out *o)
{
	struct kvm_vm *k = vm_of(v->m);
	int fd = vcpu_fd(v);
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dbg;
	size_t xs = xsave_size(k);
	struct kvm_xsave *xsave = calloc(1, xs);
	struct kvm_msrs *msrs;
	int ret = 0;

	if (!xsave)
		return -ENOMEM;
	ret = kvm_vcpu_complete_io(v);
	if (ret) {
		free(xsave);
		return ret;
	}
	if (ioctl(fd, KVM_GET_REGS, &regs) || ioctl(fd, KVM_GET_SREGS, &sregs) ||
	    ioctl(fd, xs > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) ||
	    ioctl(fd, KVM_GET_XCRS, &xcrs) || ioctl(fd, KVM_GET_LAPIC, &lapic) ||
	    ioctl(fd, KVM_GET_VCPU_EVENTS, &events) || ioctl(fd, KVM_GET_MP_STATE, &mp) ||
	    ioctl(fd, KVM_GET_DEBUGREGS, &dbg)) {
		ret = -errno;
		goto out;
	}
	msrs = get_msrs(v);
	if (!msrs) {
		ret = -EIO;
		goto out;
	}
	vmstate_put(o, "regs", &regs, sizeof(regs));
	vmstate_put(o, "sregs", &sregs, sizeof(sregs));
	vmstate_put(o, "xsave", xsave, xs);
	vmstate_put(o, "xcrs", &xcrs, sizeof(xcrs));
	vmstate_put(o, "msrs", msrs->entries, msrs->nmsrs * sizeof(msrs->entries[0]));
	vmstate_put(o, "lapic", &lapic, sizeof(lapic));
	vmstate_put(o, "events", &events, sizeof(events));
	vmstate_put(o, "mp-state", &mp, sizeof(mp));
	vmstate_put(o, "debugregs", &dbg, sizeof(dbg));
	free(msrs);
out:
	free(xsave);
	return ret;
}

static int set_msrs(struct vcpu *v, struct vmstate_in *in, const void *p, uint32_t len)
{
	const struct kvm_msr_entry *e = p;
	unsigned n = len / sizeof(*e);
	struct kvm_msrs *msrs;
	int got;

	if (len % sizeof(*e))
		return vmstate_fail(in, "field 'msrs' is %u bytes, not a list of MSRs", len);
	msrs = calloc(1, sizeof(*msrs) + n * sizeof(*e));
	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = n;
	memcpy(msrs->entries, e, len);
	got = ioctl(vcpu_fd(v), KVM_SET_MSRS, msrs);
	free(msrs);
	if (got < 0)
		return vmstate_fail(in, "KVM_SET_MSRS: %s", strerror(errno));
	if ((unsigned)got < n)
		return vmstate_fail(in, "this host's KVM refuses MSR 0x%x = 0x%llx",
				    e[got].index, (unsigned long long)e[got].data);
	return 0;
}

int kvm_state_vcpu_load(struct vcpu *v, struct vmstate_in *in)
{
	struct kvm_vm *k = vm_of(v->m);
	int fd = vcpu_fd(v);
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dbg;
	const void *xsave, *msrs;
	uint32_t xlen, mlen;
	int ret;

	if ((ret = vmstate_get(in, "regs", &regs, sizeof(regs))) ||
	    (ret = vmstate_get(in, "sregs", &sregs, sizeof(sregs))) ||
	    (ret = vmstate_get_var(in, "xsave", &xsave, &xlen)) ||
	    (ret = vmstate_get(in, "xcrs", &xcrs, sizeof(xcrs))) ||
	    (ret = vmstate_get_var(in, "msrs", &msrs, &mlen)) ||
	    (ret = vmstate_get(in, "lapic", &lapic, sizeof(lapic))) ||
	    (ret = vmstate_get(in, "events", &events, sizeof(events))) ||
	    (ret = vmstate_get(in, "mp-state", &mp, sizeof(mp))) ||
	    (ret = vmstate_get(in, "debugregs", &dbg, sizeof(dbg))))
		return ret;
	if (xlen != xsave_size(k))
		return vmstate_fail(in, "XSAVE area of %u bytes, this host's is %zu", xlen,
				    xsave_size(k));
	/* The order QEMU uses: sregs (APIC base) before the LAPIC, events last. */
	if (ioctl(fd, KVM_SET_REGS, &regs))
		return vmstate_fail(in, "KVM_SET_REGS: %s", strerror(errno));
	{
		struct kvm_xsave *x = malloc(xlen);

		if (!x)
			return -ENOMEM;
		memcpy(x, xsave, xlen);
		ret = ioctl(fd, KVM_SET_XSAVE, x) ? -errno : 0;
		free(x);
		if (ret)
			return vmstate_fail(in, "KVM_SET_XSAVE: %s", strerror(-ret));
	}
	if (ioctl(fd, KVM_SET_XCRS, &xcrs))
		return vmstate_fail(in, "KVM_SET_XCRS: %s", strerror(errno));
	if (ioctl(fd, KVM_SET_SREGS, &sregs))
		return vmstate_fail(in, "KVM_SET_SREGS: %s", strerror(errno));
	ret = set_msrs(v, in, msrs, mlen);
	if (ret)
		return ret;
	if (ioctl(fd, KVM_SET_MP_STATE, &mp))
		return vmstate_fail(in, "KVM_SET_MP_STATE: %s", strerror(errno));
	if (ioctl(fd, KVM_SET_LAPIC, &lapic))
		return vmstate_fail(in, "KVM_SET_LAPIC: %s", strerror(errno));
	events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
		       (events.flags & KVM_VCPUEVENT_VALID_SHADOW);
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &events))
		return vmstate_fail(in, "KVM_SET_VCPU_EVENTS: %s", strerror(errno));
	if (ioctl(fd, KVM_SET_DEBUGREGS, &dbg))
		return vmstate_fail(in, "KVM_SET_DEBUGREGS: %s", strerror(errno));
	return 0;
}

int kvm_state_vm_save(struct machine *m, struct vmstate_out *o)
{
	struct kvm_vm *k = vm_of(m);
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };

	for (unsigned i = 0; i < 3; i++) {
		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = i;
		if (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &chip[i]))
			return -errno;
	}
	if (ioctl(k->vm_fd, KVM_GET_PIT2, &pit) || ioctl(k->vm_fd, KVM_GET_CLOCK, &clock))
		return -errno;
	vmstate_put(o, "pic-master", &chip[KVM_IRQCHIP_PIC_MASTER], sizeof(chip[0]));
	vmstate_put(o, "pic-slave", &chip[KVM_IRQCHIP_PIC_SLAVE], sizeof(chip[0]));
	vmstate_put(o, "ioapic", &chip[KVM_IRQCHIP_IOAPIC], sizeof(chip[0]));
	vmstate_put(o, "pit", &pit, sizeof(pit));
	vmstate_put_u64(o, "kvmclock", clock.clock);
	return 0;
}

int kvm_state_vm_load(struct machine *m, struct vmstate_in *in)
{
	struct kvm_vm *k = vm_of(m);
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };
	static const char *const names[3] = { "pic-master", "pic-slave", "ioapic" };
	uint64_t ns;
	int ret;

	for (unsigned i = 0; i < 3; i++) {
		if ((ret = vmstate_get(in, names[i], &chip[i], sizeof(chip[i]))))
			return ret;
		if (chip[i].chip_id != i)
			return vmstate_fail(in, "irqchip '%s' has chip id %u", names[i],
					    chip[i].chip_id);
	}
	if ((ret = vmstate_get(in, "pit", &pit, sizeof(pit))) ||
	    (ret = vmstate_get_u64(in, "kvmclock", &ns)))
		return ret;
	clock.clock = ns;
	for (unsigned i = 0; i < 3; i++)
		if (ioctl(k->vm_fd, KVM_SET_IRQCHIP, &chip[i]))
			return vmstate_fail(in, "KVM_SET_IRQCHIP %s: %s", names[i],
					    strerror(errno));
	if (ioctl(k->vm_fd, KVM_SET_PIT2, &pit))
		return vmstate_fail(in, "KVM_SET_PIT2: %s", strerror(errno));
	if (ioctl(k->vm_fd, KVM_SET_CLOCK, &clock))
		return vmstate_fail(in, "KVM_SET_CLOCK: %s", strerror(errno));
	return 0;
}
