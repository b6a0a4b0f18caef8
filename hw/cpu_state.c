/*
 * Architectural vCPU states the machine starts a CPU in: the RESET state,
 * and the flat 32-bit and 64-bit states the firmware-less boot protocols
 * enter.  The segment attributes are written the way KVM_SET_SREGS takes
 * them (byte-granular limit, split access-rights fields), and they are also
 * what VMX's guest-state checks accept, so a state built here never makes
 * KVM_RUN fail with an invalid-guest-state entry failure.
 */
#include <glib.h>
#include <string.h>

#include "cpu.h"
#include "memory.h"

#define SEG_TYPE_DATA_RW_A	0x3	/* read/write, accessed */
#define SEG_TYPE_CODE_XR_A	0xB	/* execute/read, accessed */
#define SEG_TYPE_LDT		0x2
#define SEG_TYPE_TSS32_BUSY	0xB	/* VMX wants a busy TSS in TR */

#define APIC_BASE_BSP		(1ull << 8)
#define APIC_BASE_ENABLE	(1ull << 11)

/* The boot GDT's selectors (the Linux boot protocol's __BOOT_CS/__BOOT_DS). */
#define GDT_SEL_CODE		0x10
#define GDT_SEL_DATA		0x18
#define GDT_LIMIT		(4 * 8 - 1)

static void seg_set(struct cpu_segment *seg, uint16_t sel, uint64_t base,
		    uint32_t limit, uint8_t type, uint8_t s)
{
	memset(seg, 0, sizeof(*seg));
	seg->selector = sel;
	seg->base = base;
	seg->limit = limit;
	seg->type = type;
	seg->s = s;
	seg->present = 1;
	/* The granularity bit must agree with the limit's low 12 bits. */
	seg->g = limit > 0xFFFFF;
}

/* LDTR and TR: present, never loaded by the boot protocols' guests. */
static void seg_system(struct cpu_state *s, uint32_t tr_limit)
{
	seg_set(&s->ldt, 0, 0, 0xFFFF, SEG_TYPE_LDT, 0);
	seg_set(&s->tr, 0, 0, tr_limit, SEG_TYPE_TSS32_BUSY, 0);
}

/*
 * SDM vol. 3, table 10-1.  EDX holds the processor signature after RESET;
 * the accelerator reports its own CPUID, so only the family (6) is set.
 * The APIC is enabled at its default base; the BSP flag is the caller's,
 * since only the caller knows which CPU is the bootstrap processor.
 */
void cpu_state_reset(struct cpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->gpr[R_RDX] = 0x600;
	s->rip = 0xFFF0;
	s->rflags = RFLAGS_RESERVED1;
	seg_set(&s->cs, 0xF000, 0xFFFF0000, 0xFFFF, SEG_TYPE_CODE_XR_A, 1);
	seg_set(&s->ds, 0, 0, 0xFFFF, SEG_TYPE_DATA_RW_A, 1);
	s->es = s->ds;
	s->fs = s->ds;
	s->gs = s->ds;
	s->ss = s->ds;
	seg_system(s, 0xFFFF);
	s->gdt.limit = 0xFFFF;
	s->idt.limit = 0xFFFF;
	s->cr0 = CR0_CD | CR0_NW | CR0_ET;
	s->apic_base = MEM_LAPIC_BASE | APIC_BASE_ENABLE;
}

/* CS 0x10 and data 0x18, flat 4 GiB; code is 32-bit or 64-bit. */
static void seg_flat(struct cpu_state *s, int long_mode)
{
	seg_set(&s->cs, GDT_SEL_CODE, 0, 0xFFFFFFFF, SEG_TYPE_CODE_XR_A, 1);
	s->cs.l = long_mode;
	s->cs.db = !long_mode;	/* L=1 requires D=0 */
	seg_set(&s->ds, GDT_SEL_DATA, 0, 0xFFFFFFFF, SEG_TYPE_DATA_RW_A, 1);
	s->ds.db = 1;
	s->es = s->ds;
	s->fs = s->ds;
	s->gs = s->ds;
	s->ss = s->ds;
	/* PVH asks for a 32-bit TSS at base 0 with limit 0x67. */
	seg_system(s, 0x67);
	s->idt.base = 0;
	s->idt.limit = 0;
}

/*
 * Keeps the general registers and the APIC base of *s; everything the
 * protocols specify is overwritten.  Interrupts are off, caches on.
 */
void cpu_state_flat32(struct cpu_state *s)
{
	seg_flat(s, 0);
	s->rflags = RFLAGS_RESERVED1;
	s->cr0 = CR0_PE | CR0_ET;
	s->cr2 = 0;
	s->cr3 = 0;
	s->cr4 = 0;
	s->efer = 0;
}

void cpu_state_long64(struct cpu_state *s, uint64_t cr3, uint64_t gdt_base)
{
	seg_flat(s, 1);
	s->gdt.base = gdt_base;
	s->gdt.limit = GDT_LIMIT;
	s->rflags = RFLAGS_RESERVED1;
	s->cr0 = CR0_PE | CR0_ET | CR0_PG;
	s->cr2 = 0;
	s->cr3 = cr3;
	s->cr4 = CR4_PAE;
	s->efer = EFER_LME | EFER_LMA;
}

/*
 * The descriptor's attribute bits 8-23 of its high dword, as QEMU's
 * "info registers" prints them in the fourth column.
 */
static unsigned seg_flags(const struct cpu_segment *seg)
{
	return (seg->type & 0xF) << 8 | (seg->s & 1) << 12 | (seg->dpl & 3) << 13 |
	       (seg->present & 1) << 15 | (seg->avl & 1) << 20 | (seg->l & 1) << 21 |
	       (seg->db & 1) << 22 | (seg->g & 1) << 23;
}

static void seg_format(GString *out, const char *name, const struct cpu_segment *seg,
		       const char *eol)
{
	g_string_append_printf(out, "%-3s=%04x %016llx %08x %08x%s", name, seg->selector,
			       (unsigned long long)seg->base, seg->limit, seg_flags(seg), eol);
}

char *cpu_state_format(const struct cpu_state *s, unsigned index, const char *eol)
{
	/* QEMU's order, not the encoding's. */
	static const struct { const char *name; int reg; } gprs[] = {
		{ "RAX", R_RAX }, { "RBX", R_RBX }, { "RCX", R_RCX }, { "RDX", R_RDX },
		{ "RSI", R_RSI }, { "RDI", R_RDI }, { "RBP", R_RBP }, { "RSP", R_RSP },
		{ "R8", R_R8 }, { "R9", R_R9 }, { "R10", R_R10 }, { "R11", R_R11 },
		{ "R12", R_R12 }, { "R13", R_R13 }, { "R14", R_R14 }, { "R15", R_R15 },
	};
	static const char flag_names[] = "ODSZAPC";
	static const int flag_bits[] = { 11, 10, 7, 6, 4, 2, 0 };
	GString *out = g_string_new(NULL);
	char flags[8];

	g_string_append_printf(out, "CPU#%u%s", index, eol);
	for (unsigned i = 0; i < G_N_ELEMENTS(gprs); i++)
		g_string_append_printf(out, "%-3s=%016llx%s", gprs[i].name,
				       (unsigned long long)s->gpr[gprs[i].reg],
				       i % 4 == 3 ? eol : " ");
	for (unsigned i = 0; i < 7; i++)
		flags[i] = s->rflags >> flag_bits[i] & 1 ? flag_names[i] : '-';
	flags[7] = 0;
	/* In protected mode the CPL is SS.DPL (CS.DPL differs for conforming code). */
	g_string_append_printf(out, "RIP=%016llx RFL=%08llx [%s] CPL=%u%s",
			       (unsigned long long)s->rip, (unsigned long long)s->rflags, flags,
			       s->cr0 & CR0_PE ? s->ss.dpl & 3 : 0, eol);
	seg_format(out, "ES", &s->es, eol);
	seg_format(out, "CS", &s->cs, eol);
	seg_format(out, "SS", &s->ss, eol);
	seg_format(out, "DS", &s->ds, eol);
	seg_format(out, "FS", &s->fs, eol);
	seg_format(out, "GS", &s->gs, eol);
	seg_format(out, "LDT", &s->ldt, eol);
	seg_format(out, "TR", &s->tr, eol);
	g_string_append_printf(out, "GDT=     %016llx %08x%s", (unsigned long long)s->gdt.base,
			       s->gdt.limit, eol);
	g_string_append_printf(out, "IDT=     %016llx %08x%s", (unsigned long long)s->idt.base,
			       s->idt.limit, eol);
	g_string_append_printf(out, "CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx%s",
			       (unsigned long long)s->cr0, (unsigned long long)s->cr2,
			       (unsigned long long)s->cr3, (unsigned long long)s->cr4, eol);
	g_string_append_printf(out, "EFER=%016llx%s", (unsigned long long)s->efer, eol);
	return g_string_free(out, FALSE);
}
