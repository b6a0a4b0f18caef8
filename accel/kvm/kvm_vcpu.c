/*
 * KVM accelerator, vCPU side: creation with CPUID and MSRs, reset, the
 * run loop's exits, kicks, and the translation between struct cpu_state
 * and KVM's register structures.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/kvm/kvm_int.h"
#include "log.h"
#include "machine.h"
#include "vcpu.h"

#define KVM_KICK_SIGNAL SIGUSR1

#define MSR_IA32_MISC_ENABLE	0x1a0
#define  MISC_ENABLE_FAST_STRING 0x1
#define MSR_MTRR_DEF_TYPE	0x2ff
#define  MTRR_ENABLE_WB		((1u << 11) | 6)

static struct kvm_vm *vm_of(struct vcpu *v)
{
	return v->m->accel_state;
}

static struct kvm_vcpu *kv(struct vcpu *v)
{
	return v->accel_state;
}

static void kvm_kick_handler(int sig)
{
	/* Only there so that KVM_RUN returns EINTR. */
	(void)sig;
}

/*
 * An extended topology leaf (0xB, or 0x1F where the host has it), made
 * here rather than edited: KVM's supported list may carry only some of
 * their subleaves.
 */
static void kvm_topology_leaf(struct kvm_cpuid_entry2 *e, const struct cpu_topology *t,
			      uint32_t leaf, uint32_t sub, uint32_t apic_id)
{
	uint32_t r[4];

	cpu_topology_leaf(t, apic_id, sub, r);
	*e = (struct kvm_cpuid_entry2){
		.function = leaf,
		.index = sub,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = r[0], .ebx = r[1], .ecx = r[2], .edx = r[3],
	};
}

/* cpu_model_check's view of a CPUID table about to be set. */
static void kvm_cpuid_lookup(void *opaque, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	const struct kvm_cpuid2 *c = opaque;

	r[0] = r[1] = r[2] = r[3] = 0;
	for (unsigned i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == leaf &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == sub)) {
			r[0] = e->eax;
			r[1] = e->ebx;
			r[2] = e->ecx;
			r[3] = e->edx;
			return;
		}
	}
}

/*
 * KVM's supported CPUID with this vCPU's identity and the -smp topology
 * (APIC ID = vCPU index), less what -cpu turned off.  A feature -cpu
 * requires that KVM lacks is an error (-ENOTSUP, message in err).
 */
static int kvm_set_cpuid(struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_vm *k = vm_of(v);
	const struct cpu_model *cm = &v->m->cfg.cpu;
	const struct cpu_topology *t = &v->m->cfg.topo;
	unsigned span = cpu_topology_package_span(t);
	unsigned tb = cpu_topology_thread_bits(t), cb = cpu_topology_core_bits(t);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (k->cpuid->nent + 6) *
				      sizeof(k->cpuid->entries[0]));
	bool has_1f = false;
	int ret;

	for (unsigned i = 0; i < k->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 e = k->cpuid->entries[i];
		uint32_t r[4];

		if (cpu_model_hides_leaf(cm, e.function))
			continue;
		switch (e.function) {
		case 1:
			e.ebx = (e.ebx & 0x0000ffff) | (v->apic_id << 24) | (span << 16);
			e.ecx |= 1u << 31;		/* hypervisor present */
			if (span > 1)
				e.edx |= 1u << 28;	/* HTT: more than one logical CPU */
			else
				e.edx &= ~(1u << 28);
			break;
		case 4:
			/*
			 * Cores per package - 1 in EAX[31:26]; the threads of a
			 * core share L1 and L2, the whole package shares L3.
			 */
			e.eax = (e.eax & 0x03ffffff) | ((((1u << cb) - 1) & 0x3f) << 26);
			e.eax &= ~(0xfffu << 14);
			e.eax |= (((e.eax >> 5) & 7) == 3 ? span - 1 : (1u << tb) - 1) << 14;
			break;
		case 0xb:
			continue;
		case 0x1f:
			has_1f = true;
			continue;
		}
		r[0] = e.eax;
		r[1] = e.ebx;
		r[2] = e.ecx;
		r[3] = e.edx;
		cpu_model_filter(cm, e.function, e.index, r);
		e.eax = r[0];
		e.ebx = r[1];
		e.ecx = r[2];
		e.edx = r[3];
		c->entries[c->nent++] = e;
	}
	for (uint32_t sub = 0; sub < 3; sub++) {
		kvm_topology_leaf(&c->entries[c->nent++], t, 0xb, sub, v->apic_id);
		if (has_1f)
			kvm_topology_leaf(&c->entries[c->nent++], t, 0x1f, sub, v->apic_id);
	}
	ret = cpu_model_check(cm, "KVM on this host", kvm_cpuid_lookup, c, err, errlen);
	if (!ret && ioctl(kv(v)->fd, KVM_SET_CPUID2, c)) {
		ret = -errno;
		snprintf(err, errlen, "kvm: vCPU %u: KVM_SET_CPUID2: %s", v->index,
			 strerror(errno));
	}
	free(c);
	return ret;
}

/* MSRs a firmware would set: fast strings, and write-back as the default memory type. */
static int kvm_set_boot_msrs(struct vcpu *v)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} msrs = {
		.hdr.nmsrs = 2,
		.e = {
			{ .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING },
			{ .index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WB },
		},
	};
	int n = ioctl(kv(v)->fd, KVM_SET_MSRS, &msrs);

	return n < 0 ? -errno : 0;
}

int kvm_vcpu_init(struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_vm *k = vm_of(v);
	struct kvm_vcpu *c = calloc(1, sizeof(*c));
	struct sigaction sa = { .sa_handler = kvm_kick_handler };
	int ret;

	v->accel_state = c;
	c->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->index);
	if (c->fd < 0) {
		snprintf(err, errlen, "kvm: cannot create vCPU %u: %s", v->index, strerror(errno));
		ret = -errno;
		goto fail;
	}
	c->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		snprintf(err, errlen, "kvm: cannot map vCPU %u: %s", v->index, strerror(errno));
		ret = -errno;
		c->run = NULL;
		goto fail;
	}
	ret = kvm_dirty_ring_map(k, c);
	if (ret) {
		snprintf(err, errlen, "kvm: cannot map vCPU %u's dirty ring: %s", v->index,
			 strerror(-ret));
		goto fail;
	}
	ret = kvm_set_cpuid(v, err, errlen);
	if (ret)
		goto fail;
	if (ioctl(c->fd, KVM_GET_LAPIC, &c->lapic0)) {
		snprintf(err, errlen, "kvm: vCPU %u: KVM_GET_LAPIC: %s", v->index, strerror(errno));
		ret = -errno;
		goto fail;
	}
	/* No SA_RESTART: the kick must interrupt KVM_RUN. */
	sigaction(KVM_KICK_SIGNAL, &sa, NULL);
	return 0;
fail:
	kvm_vcpu_destroy(v);
	return ret;
}

void kvm_vcpu_destroy(struct vcpu *v)
{
	struct kvm_vcpu *c = kv(v);

	if (!c)
		return;
	if (c->run)
		munmap(c->run, vm_of(v)->run_size);
	kvm_dirty_ring_unmap(vm_of(v), c);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	v->accel_state = NULL;
}

static void seg_to_kvm(const struct cpu_segment *s, struct kvm_segment *k)
{
	*k = (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
		.present = s->present, .dpl = s->dpl, .db = s->db, .s = s->s, .l = s->l,
		.g = s->g, .avl = s->avl, .unusable = s->unusable,
	};
}

static void seg_from_kvm(const struct kvm_segment *k, struct cpu_segment *s)
{
	*s = (struct cpu_segment){
		.base = k->base, .limit = k->limit, .selector = k->selector, .type = k->type,
		.present = k->present, .dpl = k->dpl, .db = k->db, .s = k->s, .l = k->l,
		.g = k->g, .avl = k->avl, .unusable = k->unusable,
	};
}

/*
 * The MSRs of struct cpu_msrs, in its order.  TSC_AUX comes last: KVM
 * stops a KVM_GET/SET_MSRS at the first MSR it refuses, and TSC_AUX is
 * the one a host without RDTSCP refuses.
 */
static const uint32_t state_msrs[] = {
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,	/* STAR LSTAR CSTAR SFMASK */
	0xc0000102,					/* KERNEL_GS_BASE */
	0x174, 0x175, 0x176,				/* SYSENTER_CS/ESP/EIP */
	0x277,						/* PAT */
	0xc0000103,					/* TSC_AUX */
};
#define NR_STATE_MSRS (sizeof(state_msrs) / sizeof(state_msrs[0]))

struct state_msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[NR_STATE_MSRS];
};

static uint64_t *state_msr_field(struct cpu_msrs *m, unsigned i)
{
	uint64_t *f[NR_STATE_MSRS] = {
		&m->star, &m->lstar, &m->cstar, &m->sfmask, &m->kernel_gs_base,
		&m->sysenter_cs, &m->sysenter_esp, &m->sysenter_eip, &m->pat, &m->tsc_aux,
	};

	return f[i];
}

static int get_state_msrs(struct kvm_vcpu *c, struct cpu_msrs *m)
{
	struct state_msr_buf b = { .hdr.nmsrs = NR_STATE_MSRS };
	struct kvm_debugregs dbg;
	int n;

	for (unsigned i = 0; i < NR_STATE_MSRS; i++)
		b.e[i].index = state_msrs[i];
	n = ioctl(c->fd, KVM_GET_MSRS, &b);
	if (n < 0)
		return -errno;
	if (n < (int)NR_STATE_MSRS - 1)
		return -EIO;
	for (int i = 0; i < n; i++)
		*state_msr_field(m, i) = b.e[i].data;
	if (ioctl(c->fd, KVM_GET_DEBUGREGS, &dbg))
		return -errno;
	memcpy(m->dr, dbg.db, sizeof(dbg.db));
	m->dr[4] = m->dr[6] = dbg.dr6;		/* DR4/DR5 alias DR6/DR7 */
	m->dr[5] = m->dr[7] = dbg.dr7;
	return 0;
}

/* As TCG: a zero PAT is the power-on PAT, DR6/DR7 keep their fixed ones. */
static int set_state_msrs(struct kvm_vcpu *c, const struct cpu_msrs *m)
{
	struct state_msr_buf b = { .hdr.nmsrs = NR_STATE_MSRS };
	struct cpu_msrs v = *m;
	struct kvm_debugregs dbg = {
		.dr6 = m->dr[6] | 0xffff0ff0, .dr7 = m->dr[7] | 0x400,
	};
	int n;

	if (!v.pat)
		v.pat = 0x0007040600070406ull;
	for (unsigned i = 0; i < NR_STATE_MSRS; i++) {
		b.e[i].index = state_msrs[i];
		b.e[i].data = *state_msr_field(&v, i);
	}
	n = ioctl(c->fd, KVM_SET_MSRS, &b);
	if (n < 0)
		return -errno;
	if (n < (int)NR_STATE_MSRS - (v.tsc_aux ? 0 : 1))
		return -EINVAL;
	memcpy(dbg.db, m->dr, sizeof(dbg.db));
	return ioctl(c->fd, KVM_SET_DEBUGREGS, &dbg) ? -errno : 0;
}

int kvm_vcpu_set_state(struct vcpu *v, const struct cpu_state *s)
{
	struct kvm_vcpu *c = kv(v);
	struct kvm_regs regs = {
		.rax = s->gpr[R_RAX], .rbx = s->gpr[R_RBX], .rcx = s->gpr[R_RCX],
		.rdx = s->gpr[R_RDX], .rsi = s->gpr[R_RSI], .rdi = s->gpr[R_RDI],
		.rsp = s->gpr[R_RSP], .rbp = s->gpr[R_RBP], .r8 = s->gpr[R_R8],
		.r9 = s->gpr[R_R9], .r10 = s->gpr[R_R10], .r11 = s->gpr[R_R11],
		.r12 = s->gpr[R_R12], .r13 = s->gpr[R_R13], .r14 = s->gpr[R_R14],
		.r15 = s->gpr[R_R15], .rip = s->rip, .rflags = s->rflags,
	};
	struct kvm_sregs sregs;

	if (ioctl(c->fd, KVM_GET_SREGS, &sregs))
		return -errno;
	seg_to_kvm(&s->cs, &sregs.cs);
	seg_to_kvm(&s->ds, &sregs.ds);
	seg_to_kvm(&s->es, &sregs.es);
	seg_to_kvm(&s->fs, &sregs.fs);
	seg_to_kvm(&s->gs, &sregs.gs);
	seg_to_kvm(&s->ss, &sregs.ss);
	seg_to_kvm(&s->tr, &sregs.tr);
	seg_to_kvm(&s->ldt, &sregs.ldt);
	sregs.gdt.base = s->gdt.base;
	sregs.gdt.limit = s->gdt.limit;
	sregs.idt.base = s->idt.base;
	sregs.idt.limit = s->idt.limit;
	sregs.cr0 = s->cr0;
	sregs.cr2 = s->cr2;
	sregs.cr3 = s->cr3;
	sregs.cr4 = s->cr4;
	sregs.cr8 = s->cr8;
	sregs.efer = s->efer;
	if (s->apic_base)
		sregs.apic_base = s->apic_base;
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs) || ioctl(c->fd, KVM_SET_REGS, &regs))
		return -errno;
	return set_state_msrs(c, &s->msrs);
}

/*
 * KVM finishes a PIO or MMIO exit (an IN's value into RAX, RIP past the
 * instruction) only in the next KVM_RUN.  A vCPU parked right after such an
 * exit -- the isa-debug-exit write that ends the VM, a pause for migration
 * -- would otherwise show the state before the instruction, which then runs
 * a second time on the destination.  KVM_RUN with immediate_exit completes
 * the operation and returns EINTR without entering the guest.  Called only
 * while the vCPU thread is parked; immediate_exit stays set, so its next
 * KVM_RUN returns at once as a kick.
 */
int kvm_vcpu_complete_io(struct vcpu *v)
{
	struct kvm_vcpu *c = kv(v);

	if (!c->io_pending)
		return 0;
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(c->fd, KVM_RUN, 0) == 0)
		return -EIO;		/* not completed: KVM wants another exit */
	if (errno != EINTR)
		return -errno;
	c->io_pending = false;
	return 0;
}

int kvm_vcpu_get_state(struct vcpu *v, struct cpu_state *s)
{
	struct kvm_vcpu *c = kv(v);
	struct kvm_regs r;
	struct kvm_sregs sr;
	int ret = kvm_vcpu_complete_io(v);

	if (ret)
		return ret;
	if (ioctl(c->fd, KVM_GET_REGS, &r) || ioctl(c->fd, KVM_GET_SREGS, &sr))
		return -errno;
	memset(s, 0, sizeof(*s));
	s->gpr[R_RAX] = r.rax; s->gpr[R_RBX] = r.rbx; s->gpr[R_RCX] = r.rcx;
	s->gpr[R_RDX] = r.rdx; s->gpr[R_RSI] = r.rsi; s->gpr[R_RDI] = r.rdi;
	s->gpr[R_RSP] = r.rsp; s->gpr[R_RBP] = r.rbp; s->gpr[R_R8] = r.r8;
	s->gpr[R_R9] = r.r9; s->gpr[R_R10] = r.r10; s->gpr[R_R11] = r.r11;
	s->gpr[R_R12] = r.r12; s->gpr[R_R13] = r.r13; s->gpr[R_R14] = r.r14;
	s->gpr[R_R15] = r.r15;
	s->rip = r.rip;
	s->rflags = r.rflags;
	seg_from_kvm(&sr.cs, &s->cs);
	seg_from_kvm(&sr.ds, &s->ds);
	seg_from_kvm(&sr.es, &s->es);
	seg_from_kvm(&sr.fs, &s->fs);
	seg_from_kvm(&sr.gs, &s->gs);
	seg_from_kvm(&sr.ss, &s->ss);
	seg_from_kvm(&sr.tr, &s->tr);
	seg_from_kvm(&sr.ldt, &s->ldt);
	s->gdt.base = sr.gdt.base;
	s->gdt.limit = sr.gdt.limit;
	s->idt.base = sr.idt.base;
	s->idt.limit = sr.idt.limit;
	s->cr0 = sr.cr0;
	s->cr2 = sr.cr2;
	s->cr3 = sr.cr3;
	s->cr4 = sr.cr4;
	s->cr8 = sr.cr8;
	s->efer = sr.efer;
	s->apic_base = sr.apic_base;
	return get_state_msrs(c, &s->msrs);
}

/*
 * Power-on state.  The BSP gets the boot loader's entry state; an AP gets
 * the architectural reset state and waits in the in-kernel LAPIC for
 * INIT/SIPI from the guest.
 */
int kvm_vcpu_reset(struct vcpu *v, const struct cpu_state *s)
{
	struct kvm_vcpu *c = kv(v);
	struct kvm_mp_state mp = { .mp_state = s ? KVM_MP_STATE_RUNNABLE :
					       KVM_MP_STATE_UNINITIALIZED };
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct cpu_state reset;
	int ret;

	if (v->index == 0 && (ret = kvm_vm_reset_irqchip(v->m)))
		return ret;
	if (ioctl(c->fd, KVM_SET_LAPIC, &c->lapic0) || ioctl(c->fd, KVM_SET_FPU, &fpu))
		return -errno;
	if (!s) {
		cpu_state_reset(&reset);
		s = &reset;
	}
	ret = kvm_vcpu_set_state(v, s);
	if (ret)
		return ret;
	ret = kvm_set_boot_msrs(v);
	if (ret)
		return ret;
	return ioctl(c->fd, KVM_SET_MP_STATE, &mp) ? -errno : 0;
}

void kvm_vcpu_kick(struct vcpu *v)
{
	struct kvm_vcpu *c = kv(v);

	/*
	 * immediate_exit covers a vCPU thread that is about to enter KVM_RUN;
	 * the signal covers one already inside.
	 */
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->thread_started)
		pthread_kill(v->thread, KVM_KICK_SIGNAL);
}

static void __attribute__((format(printf, 2, 3)))
kvm_exit_error(struct accel_exit *e, const char *fmt, ...)
{
	va_list ap;

	e->reason = ACCEL_EXIT_ERROR;
	va_start(ap, fmt);
	vsnprintf(e->error.msg, sizeof(e->error.msg), fmt, ap);
	va_end(ap);
}

/*
 * KVM met an instruction it could not emulate.  Say which: its address and
 * bytes (as far as they are RAM), and that the translator does not depend
 * on the host's KVM -- nested KVMs that emulate much of the guest stop
 * here on instructions such as xrstor.
 */
static void kvm_emulation_failure(struct vcpu *v, struct accel_exit *e)
{
	struct kvm_vcpu *c = kv(v);
	struct kvm_regs r;
	struct kvm_sregs sr;
	struct kvm_translation tr = { 0 };
	uint8_t code[15];
	char hex[3 * sizeof(code) + 1] = "";
	unsigned n = 0;

	if (ioctl(c->fd, KVM_GET_REGS, &r) || ioctl(c->fd, KVM_GET_SREGS, &sr)) {
		kvm_exit_error(e, "KVM emulation failure");
		return;
	}
	tr.linear_address = sr.cs.base + r.rip;
	/* Bytes up to the end of the page, or of the instruction's 15. */
	if (!ioctl(c->fd, KVM_TRANSLATE, &tr) && tr.valid) {
		n = 4096 - (tr.physical_address & 4095);
		if (n > sizeof(code))
			n = sizeof(code);
		if (guest_read(&v->m->mem, tr.physical_address, code, n))
			n = 0;
	}
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 3 * i, 4, " %02x", code[i]);
	kvm_exit_error(e, "KVM emulation failure at RIP %#llx (code%s): the host's KVM cannot run "
		       "this instruction; -accel tcg runs the guest without KVM",
		       (unsigned long long)r.rip, n ? hex : " not in RAM");
}

int kvm_vcpu_run(struct vcpu *v, struct accel_exit *e)
{
	struct kvm_vcpu *c = kv(v);
	struct kvm_run *run = c->run;

	c->io_pending = false;
	if (ioctl(c->fd, KVM_RUN, 0) < 0) {
		if (errno == EINTR || errno == EAGAIN) {
			__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			e->reason = ACCEL_EXIT_KICK;
			return 0;
		}
		return -errno;
	}
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		e->reason = ACCEL_EXIT_PIO;
		e->pio.port = run->io.port;
		e->pio.size = run->io.size;
		e->pio.write = run->io.direction == KVM_EXIT_IO_OUT;
		e->pio.count = run->io.count;
		e->pio.data = (uint8_t *)run + run->io.data_offset;
		/*
		 * A string instruction may need further exits to complete, which
		 * only the vCPU loop can serve: kvm_vcpu_complete_io leaves it.
		 */
		c->io_pending = run->io.count == 1;
		break;
	case KVM_EXIT_MMIO:
		e->reason = ACCEL_EXIT_MMIO;
		e->mmio.addr = run->mmio.phys_addr;
		e->mmio.size = run->mmio.len;
		e->mmio.write = run->mmio.is_write;
		e->mmio.data = run->mmio.data;
		c->io_pending = true;
		break;
	case KVM_EXIT_HLT:
		e->reason = ACCEL_EXIT_HALT;
		break;
	case KVM_EXIT_SHUTDOWN:
		e->reason = ACCEL_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_DIRTY_RING_FULL: {
		/* Harvest and hand the entries back; the vCPU runs on. */
		int ret = kvm_dirty_ring_full(v);

		if (ret < 0)
			kvm_exit_error(e, "cannot reset the dirty ring: %s", strerror(-ret));
		else
			e->reason = ACCEL_EXIT_KICK;
		break;
	}
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		e->reason = ACCEL_EXIT_KICK;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			e->reason = ACCEL_EXIT_RESET;
		else if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			e->reason = ACCEL_EXIT_POWEROFF;
		else
			kvm_exit_error(e, "KVM system event %u", run->system_event.type);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
			kvm_emulation_failure(v, e);
		else
			kvm_exit_error(e, "KVM internal error, suberror %u",
				       run->internal.suberror);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		kvm_exit_error(e, "KVM entry failed, hardware reason 0x%llx",
			       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		kvm_exit_error(e, "unexpected KVM exit reason %u", run->exit_reason);
		break;
	}
	return 0;
}
