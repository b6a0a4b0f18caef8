/*
 * CPU entry states: the fields of cpu_state_reset/flat32/long64, and the
 * loaders' entry states on KVM: each format's
 * synthetic kernel is loaded by boot_load(), the BSP state is handed to a
 * bare KVM vCPU exactly as struct cpu_state maps onto kvm_sregs, and the
 * kernel's first instructions report through port I/O what they see (the
 * boot magic, the parameter-block pointer, a field read through the data
 * segment or the identity map).  This proves that KVM's entry checks
 * accept the segment attributes and that the mode is the one the protocol
 * names.  The KVM cases are skipped without a usable /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <glib.h>

#include "boot.h"
#include "cpu.h"
#include "machine.h"
#include "memory.h"

#define MiB (1ull << 20)
#define OUT_PORT 0xF0
#define MAX_OUTS 8

struct kvm_env {
	int sys, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
};

static bool kvm_open(struct kvm_env *k, struct guest_mem *gm)
{
	struct kvm_cpuid2 *cpuid;
	unsigned i;

	memset(k, 0, sizeof(*k));
	k->vm = k->vcpu = -1;
	k->sys = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->sys < 0)
		return false;
	k->vm = ioctl(k->sys, KVM_CREATE_VM, 0);
	g_assert_cmpint(k->vm, >=, 0);
	g_assert_cmpint(ioctl(k->vm, KVM_SET_TSS_ADDR, 0xFEFFD000ul), ==, 0);
	for (i = 0; i < gm->nr; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = gm->r[i].gpa,
			.memory_size = gm->r[i].size,
			.userspace_addr = (uintptr_t)gm->r[i].hva,
		};

		g_assert_cmpint(ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &r), ==, 0);
	}
	k->vcpu = ioctl(k->vm, KVM_CREATE_VCPU, 0);
	g_assert_cmpint(k->vcpu, >=, 0);
	/* Long mode needs CPUID.LM in the guest's CPUID. */
	cpuid = g_malloc0(sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));
	cpuid->nent = 256;
	g_assert_cmpint(ioctl(k->sys, KVM_GET_SUPPORTED_CPUID, cpuid), ==, 0);
	g_assert_cmpint(ioctl(k->vcpu, KVM_SET_CPUID2, cpuid), ==, 0);
	g_free(cpuid);
	k->run_size = ioctl(k->sys, KVM_GET_VCPU_MMAP_SIZE, 0);
	k->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu, 0);
	g_assert_true(k->run != MAP_FAILED);
	return true;
}

static void kvm_close(struct kvm_env *k)
{
	if (k->run)
		munmap(k->run, k->run_size);
	if (k->vcpu >= 0)
		close(k->vcpu);
	if (k->vm >= 0)
		close(k->vm);
	if (k->sys >= 0)
		close(k->sys);
}

static void seg_to_kvm(const struct cpu_segment *s, struct kvm_segment *k)
{
	*k = (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
		.present = s->present, .dpl = s->dpl, .db = s->db, .s = s->s, .l = s->l,
		.g = s->g, .avl = s->avl, .unusable = s->unusable,
	};
}

static int kvm_set_state(struct kvm_env *k, const struct cpu_state *s)
{
	struct kvm_sregs sr;
	struct kvm_regs r = { .rip = s->rip, .rflags = s->rflags };

	r.rax = s->gpr[R_RAX]; r.rcx = s->gpr[R_RCX]; r.rdx = s->gpr[R_RDX];
	r.rbx = s->gpr[R_RBX]; r.rsp = s->gpr[R_RSP]; r.rbp = s->gpr[R_RBP];
	r.rsi = s->gpr[R_RSI]; r.rdi = s->gpr[R_RDI];
	if (ioctl(k->vcpu, KVM_GET_SREGS, &sr))
		return -errno;
	seg_to_kvm(&s->cs, &sr.cs);
	seg_to_kvm(&s->ds, &sr.ds);
	seg_to_kvm(&s->es, &sr.es);
	seg_to_kvm(&s->fs, &sr.fs);
	seg_to_kvm(&s->gs, &sr.gs);
	seg_to_kvm(&s->ss, &sr.ss);
	seg_to_kvm(&s->tr, &sr.tr);
	seg_to_kvm(&s->ldt, &sr.ldt);
	sr.gdt.base = s->gdt.base;
	sr.gdt.limit = s->gdt.limit;
	sr.idt.base = s->idt.base;
	sr.idt.limit = s->idt.limit;
	sr.cr0 = s->cr0;
	sr.cr3 = s->cr3;
	sr.cr4 = s->cr4;
	sr.efer = s->efer;
	sr.apic_base = s->apic_base;
	if (ioctl(k->vcpu, KVM_SET_SREGS, &sr) || ioctl(k->vcpu, KVM_SET_REGS, &r))
		return -errno;
	return 0;
}

/* Run to the guest's hlt; collect the 32-bit values it writes to OUT_PORT. */
static unsigned kvm_run_outs(struct kvm_env *k, uint32_t *outs)
{
	unsigned n = 0, steps;

	for (steps = 0; steps < 100; steps++) {
		g_assert_cmpint(ioctl(k->vcpu, KVM_RUN, 0), ==, 0);
		switch (k->run->exit_reason) {
		case KVM_EXIT_HLT:
			return n;
		case KVM_EXIT_IO:
			g_assert_cmpuint(k->run->io.port, ==, OUT_PORT);
			g_assert_cmpuint(k->run->io.size, ==, 4);
			g_assert_cmpuint(n, <, MAX_OUTS);
			memcpy(&outs[n++], (uint8_t *)k->run + k->run->io.data_offset, 4);
			break;
		default:
			g_error("unexpected KVM exit %u (entry failure reason 0x%llx)",
				k->run->exit_reason,
				(unsigned long long)k->run->fail_entry.hardware_entry_failure_reason);
		}
	}
	g_error("guest did not halt");
}

struct tb {
	struct machine m;
	struct cpu_state s;
	struct kvm_env k;
	char err[256], *kernel;
};

static void tb_destroy(struct tb *t)
{
	kvm_close(&t->k);
	unlink(t->kernel);
	g_free(t->kernel);
	guest_mem_destroy(&t->m.mem);
}

/* Load img with boot_load() and hand the BSP state to a KVM vCPU. */
static bool tb_boot(struct tb *t, const void *img, size_t len)
{
	char *path = g_build_filename(g_get_tmp_dir(), "vireo-bootkvm-XXXXXX", NULL);
	int fd = g_mkstemp(path);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, img, len), ==, (ssize_t)len);
	close(fd);
	memset(t, 0, sizeof(*t));
	t->kernel = path;
	g_assert_cmpint(guest_mem_init(&t->m.mem, 64 * MiB, NULL, false, t->err, sizeof(t->err)), ==, 0);
	t->m.nr_vcpus = 1;
	t->m.cfg.kernel = path;
	t->m.cfg.append = "kvm";
	if (boot_load(&t->m, &t->s, t->err, sizeof(t->err)))
		g_error("%s", t->err);
	if (!kvm_open(&t->k, &t->m.mem)) {
		g_test_skip("no usable /dev/kvm");
		tb_destroy(t);
		return false;
	}
	g_assert_cmpint(kvm_set_state(&t->k, &t->s), ==, 0);
	return true;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* 32-bit code: out eax; out ebx; out [ebx]; hlt. */
static const uint8_t code32[] = {
	0x66, 0xBA, OUT_PORT, 0x00,	/* mov dx, OUT_PORT */
	0xEF,				/* out dx, eax */
	0x89, 0xD8,			/* mov eax, ebx */
	0xEF,
	0x8B, 0x03,			/* mov eax, [ebx] */
	0xEF,
	0xF4,				/* hlt */
};

static void test_kvm_multiboot(void)
{
	uint8_t img[0x1000] = { 0 }, *h = img;
	uint32_t outs[MAX_OUTS];
	struct tb t;

	put32(h, 0x1BADB002);
	put32(h + 4, 0x10003);
	put32(h + 8, -(0x1BADB002u + 0x10003));
	put32(h + 12, 0x100000);
	put32(h + 16, 0x100000);
	put32(h + 28, 0x100100);
	memcpy(img + 0x100, code32, sizeof(code32));
	if (!tb_boot(&t, img, sizeof(img)))
		return;
	g_assert_cmpuint(kvm_run_outs(&t.k, outs), ==, 3);
	g_assert_cmphex(outs[0], ==, 0x2BADB002);
	g_assert_cmphex(outs[1], ==, BOOT_PARAMS_ADDR);
	g_assert_cmphex(outs[2] & 0x4D, ==, 0x4D);		/* info.flags */
	tb_destroy(&t);
}

static void test_kvm_pvh(void)
{
	uint8_t img[0x2000] = { 0 }, *ph = img + 52;
	uint32_t outs[MAX_OUTS];
	struct tb t;

	/* ELF32 i386: PT_LOAD of the code at 1 MiB, PT_NOTE with the entry. */
	memcpy(img, "\x7f" "ELF\x01\x01\x01", 7);
	img[16] = 2;
	img[18] = 3;
	img[20] = 1;
	put32(img + 28, 52);
	img[42] = 32;
	img[44] = 2;
	put32(ph, 1);
	put32(ph + 4, 0x1000);
	put32(ph + 12, 0x100000);
	put32(ph + 16, 0x1000);
	put32(ph + 20, 0x1000);
	put32(ph + 32, 4);
	put32(ph + 36, 0x200);
	put32(ph + 48, 20);
	put32(img + 0x200, 4);
	put32(img + 0x204, 4);
	put32(img + 0x208, 18);
	memcpy(img + 0x20C, "Xen", 4);
	put32(img + 0x210, 0x100000);
	memcpy(img + 0x1000, code32, sizeof(code32));
	if (!tb_boot(&t, img, sizeof(img)))
		return;
	g_assert_cmpuint(kvm_run_outs(&t.k, outs), ==, 3);
	g_assert_cmphex(outs[1], ==, BOOT_PARAMS_ADDR);
	g_assert_cmphex(outs[2], ==, 0x336ec578);
	tb_destroy(&t);
}

static void test_kvm_bzimage(void)
{
	/* At the 64-bit entry: out rsi; out [rsi+0x202]; out [top of 4 GiB map]; hlt. */
	static const uint8_t code64[] = {
		0x66, 0xBA, OUT_PORT, 0x00,	/* mov dx, OUT_PORT */
		0x48, 0x89, 0xF0,		/* mov rax, rsi */
		0xEF,				/* out dx, eax */
		0x8B, 0x86, 0x02, 0x02, 0x00, 0x00,	/* mov eax, [rsi+0x202] */
		0xEF,
		0x8B, 0x04, 0x25, 0xFC, 0xFF, 0xFF, 0x03,	/* mov eax, [0x3FFFFFC] */
		0xEF,
		0xF4,
	};
	enum { SETUP = 5 * 512, KSIZE = 0x1000 };
	uint8_t *img = g_malloc0(SETUP + KSIZE);
	uint32_t outs[MAX_OUTS];
	struct tb t;

	img[0x1F1] = 4;
	put32(img + 0x1F4, KSIZE / 16);
	img[0x200] = 0xEB;
	img[0x201] = 0x268 - 0x202;
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = 0x0F;
	img[0x207] = 0x02;
	img[0x211] = 1;
	put32(img + 0x22C, 0x37FFFFFF);
	put32(img + 0x230, 0x200000);
	img[0x234] = 1;
	img[0x236] = 1;
	put32(img + 0x238, 255);
	put32(img + 0x260, 0x100000);
	memcpy(img + SETUP + 0x200, code64, sizeof(code64));
	if (!tb_boot(&t, img, SETUP + KSIZE)) {
		g_free(img);
		return;
	}
	put32(gpa_to_hva(&t.m.mem, 0x3FFFFFC, 4), 0xC0FFEE);
	g_assert_cmpuint(kvm_run_outs(&t.k, outs), ==, 3);
	g_assert_cmphex(outs[0], ==, BOOT_PARAMS_ADDR);
	g_assert_cmphex(outs[1], ==, 0x53726448);		/* "HdrS" */
	g_assert_cmphex(outs[2], ==, 0xC0FFEE);
	tb_destroy(&t);
	g_free(img);
}

static void assert_flat32(const struct cpu_state *s)
{
	g_assert_cmphex(s->cr0 & (CR0_PE | CR0_PG), ==, CR0_PE);
	g_assert_cmphex(s->efer, ==, 0);
	g_assert_cmpuint(s->cs.selector, ==, 0x10);
	g_assert_cmpuint(s->cs.db, ==, 1);
	g_assert_cmpuint(s->cs.l, ==, 0);
	g_assert_cmphex(s->cs.limit, ==, 0xFFFFFFFF);
	g_assert_cmpuint(s->ds.selector, ==, 0x18);
	g_assert_cmpuint(s->ss.selector, ==, 0x18);
	g_assert_cmphex(s->rflags & RFLAGS_IF, ==, 0);
}

/* The fields the SDM and the boot protocols name. */
static void test_cpu_states(void)
{
	struct cpu_state s;

	cpu_state_reset(&s);
	g_assert_cmphex(s.cs.selector, ==, 0xF000);
	g_assert_cmphex(s.cs.base, ==, 0xFFFF0000);
	g_assert_cmphex(s.cs.limit, ==, 0xFFFF);
	g_assert_cmpuint(s.cs.type, ==, 0xB);
	g_assert_cmpuint(s.cs.present && s.cs.s, ==, 1);
	g_assert_cmphex(s.rip, ==, 0xFFF0);
	g_assert_cmphex(s.rflags, ==, 2);
	g_assert_cmphex(s.cr0, ==, 0x60000010);
	g_assert_cmphex(s.cr4 | s.cr3 | s.efer, ==, 0);
	g_assert_cmphex(s.ds.limit, ==, 0xFFFF);
	g_assert_cmpuint(s.ds.type, ==, 3);
	g_assert_cmphex(s.gdt.limit, ==, 0xFFFF);
	g_assert_cmphex(s.idt.limit, ==, 0xFFFF);
	g_assert_cmpuint(s.tr.type, ==, 0xB);
	g_assert_cmpuint(s.tr.s, ==, 0);
	g_assert_cmpuint(s.ldt.type, ==, 2);
	g_assert_cmphex(s.gpr[R_RDX], ==, 0x600);
	g_assert_cmphex(s.apic_base, ==, 0xFEE00800);

	cpu_state_flat32(&s);
	assert_flat32(&s);
	g_assert_cmpuint(s.cs.g, ==, 1);
	g_assert_cmphex(s.tr.limit, ==, 0x67);

	cpu_state_long64(&s, 0x9000, 0x500);
	g_assert_cmphex(s.cr0 & (CR0_PE | CR0_PG), ==, CR0_PE | CR0_PG);
	g_assert_cmphex(s.cr4 & CR4_PAE, ==, CR4_PAE);
	g_assert_cmphex(s.efer & (EFER_LME | EFER_LMA), ==, EFER_LME | EFER_LMA);
	g_assert_cmphex(s.cr3, ==, 0x9000);
	g_assert_cmpuint(s.cs.l, ==, 1);
	g_assert_cmpuint(s.cs.db, ==, 0);
	g_assert_cmphex(s.gdt.base, ==, 0x500);
	g_assert_cmphex(s.gdt.limit, ==, 0x1F);
}

/* The RESET state (every AP's) must be one KVM_SET_SREGS takes. */
static void test_kvm_reset_state(void)
{
	struct guest_mem gm;
	struct cpu_state s;
	struct kvm_env k;
	char err[256];

	g_assert_cmpint(guest_mem_init(&gm, 16 * MiB, NULL, false, err, sizeof(err)), ==, 0);
	if (!kvm_open(&k, &gm)) {
		g_test_skip("no usable /dev/kvm");
		guest_mem_destroy(&gm);
		return;
	}
	cpu_state_reset(&s);
	g_assert_cmpint(kvm_set_state(&k, &s), ==, 0);
	kvm_close(&k);
	guest_mem_destroy(&gm);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/boot_cpu/states", test_cpu_states);
	g_test_add_func("/boot_cpu/kvm_reset_state", test_kvm_reset_state);
	g_test_add_func("/boot_cpu/kvm_multiboot", test_kvm_multiboot);
	g_test_add_func("/boot_cpu/kvm_pvh", test_kvm_pvh);
	g_test_add_func("/boot_cpu/kvm_bzimage", test_kvm_bzimage);
	return g_test_run();
}
