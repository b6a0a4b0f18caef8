/*
 * Architectural x86-64 vCPU state as the machine sees it, independent of the
 * accelerator: boot loaders fill it for the BSP, accelerators translate it to
 * and from their own form (struct kvm_regs/kvm_sregs, TCG's CPU state).
 */
#ifndef VIREO_CPU_H
#define VIREO_CPU_H

#include <stdint.h>

struct cpu_segment {
	uint64_t base;
	uint32_t limit;		/* byte granular, as KVM takes it */
	uint16_t selector;
	uint8_t type;		/* 4-bit descriptor type */
	uint8_t present, dpl, db, s, l, g, avl;
	uint8_t unusable;
};

struct cpu_dtable {
	uint64_t base;
	uint16_t limit;
};

enum { R_RAX, R_RCX, R_RDX, R_RBX, R_RSP, R_RBP, R_RSI, R_RDI,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15, CPU_NR_GPRS };

struct cpu_state {
	uint64_t gpr[CPU_NR_GPRS];	/* indexed by the x86 register number */
	uint64_t rip, rflags;
	struct cpu_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct cpu_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t apic_base;
	/*
	 * MSRs and debug registers a running guest depends on (syscall and
	 * sysenter entry points, the swapgs base, TSC_AUX, PAT, DR0-7), for
	 * get/set_state across migration.  Boot states leave them zero, and
	 * set_state treats a zero PAT as the power-on PAT.
	 */
	struct cpu_msrs {
		uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
		uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
		uint64_t tsc_aux, pat;
		uint64_t dr[8];
	} msrs;
};

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#define RFLAGS_RESERVED1 (1ull << 1)
#define RFLAGS_IF (1ull << 9)

/* The state of an x86 CPU after RESET / INIT (SDM vol. 3, 10.1.1). */
void cpu_state_reset(struct cpu_state *s);
/*
 * The next two set only the registers of their mode; the rest (MSRs,
 * APIC base, general registers) stays as it was, so start from
 * cpu_state_reset.
 *
 * Flat 32-bit protected mode, paging off: PVH and multiboot entry.
 */
void cpu_state_flat32(struct cpu_state *s);
/*
 * 64-bit long mode with the given page-table root (cr3) and a GDT at
 * gdt_base that holds flat code (0x10) and data (0x18) descriptors.
 */
void cpu_state_long64(struct cpu_state *s, uint64_t cr3, uint64_t gdt_base);

/*
 * The registers of vCPU index as text, in the layout of QEMU's "info
 * registers" (GPRs, RIP and RFLAGS, every segment with its attribute bits,
 * descriptor tables, control registers, EFER), lines ended by eol.  HMP and
 * "-d cpu_exit" both print this.  Free with g_free().
 */
char *cpu_state_format(const struct cpu_state *s, unsigned index, const char *eol);

#endif
