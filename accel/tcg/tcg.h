/*
 * TCG: vireo's x86-64 translator.  Private header of accel/tcg/.
 *
 * Guest code is decoded once (decode.c) into translation blocks of
 * micro-operations (struct uop), cached by guest-physical address
 * (run.c) and executed by an interpreter (interp.c).  A micro-op names
 * temporaries, guest registers and immediates only; anything that needs
 * the CPU's mode at run time (segment checks, paging, privilege) happens
 * inside the memory and helper micro-ops, so a code generator can turn
 * every micro-op into host code or a call.
 *
 * Exceptions unwind with longjmp to the vCPU loop (tcg_raise), after the
 * guest state has been made consistent: an instruction commits its memory
 * writes before its register writes, and U_INSN records where it began.
 */
#ifndef VIREO_TCG_H
#define VIREO_TCG_H

#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"
#include "cpu.h"

struct machine;
struct vcpu;
struct irqchip;

/* Segment registers in x86 encoding order. */
enum { S_ES, S_CS, S_SS, S_DS, S_FS, S_GS, S_NONE = 7 };

/* Exception vectors. */
enum { EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5,
       EXC_UD = 6, EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11,
       EXC_SS = 12, EXC_GP = 13, EXC_PF = 14, EXC_MF = 16, EXC_AC = 17,
       EXC_MC = 18, EXC_XM = 19 };

/* RFLAGS bits. */
#define F_CF	0x0001u
#define F_PF	0x0004u
#define F_AF	0x0010u
#define F_ZF	0x0040u
#define F_SF	0x0080u
#define F_TF	0x0100u
#define F_IF	0x0200u
#define F_DF	0x0400u
#define F_OF	0x0800u
#define F_IOPL	0x3000u
#define F_NT	0x4000u
#define F_RF	0x10000u
#define F_VM	0x20000u
#define F_AC	0x40000u
#define F_VIF	0x80000u
#define F_VIP	0x100000u
#define F_ID	0x200000u
#define F_ARITH	(F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

/* Control register bits this CPU has (mov to CR0/CR4, migration). */
#define CR0_FIXED (CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | \
		   CR0_AM | CR0_NW | CR0_CD | CR0_PG)
#define CR4_TSD (1ull << 2)
/* The CR4 bits of the features CPUID advertises. */
#define CR4_OK (CR4_TSD | CR4_PSE | CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT)

/* Lazy condition codes: how cc_res/cc_a/cc_b encode the arithmetic flags. */
enum cc_op {
	CC_EFLAGS,	/* cc_res holds the flag bits themselves */
	CC_ADD, CC_ADC, CC_SUB, CC_SBB, CC_LOGIC, CC_INC, CC_DEC,
};

/* Condition codes as in Jcc/SETcc/CMOVcc (low nibble of the opcode). */
enum { CC_O, CC_NO, CC_B, CC_AE, CC_E, CC_NE, CC_BE, CC_A,
       CC_S, CC_NS, CC_P, CC_NP, CC_L, CC_GE, CC_LE, CC_G };

/*
 * Micro-operations.  T[] are 64-bit temporaries; sizes are log2 bytes
 * (0: 8 bits .. 3: 64 bits); results of sized ops are zero-extended.
 */
enum uop_code {
	U_INSN,		/* a guest instruction starts: imm = eip, a = length */
	U_MOVI,		/* T[d] = imm */
	U_MOV,		/* T[d] = T[a] */
	U_LDR,		/* T[d] = gpr a (a & 0x10: high byte reg), zero-extended */
	U_STR,		/* gpr d = T[a] with x86 write semantics for size */
	U_ADD, U_SUB, U_AND, U_OR, U_XOR,	/* T[d] = T[a] op T[b], sized */
	U_ADDI,		/* T[d] = T[a] + imm, sized */
	U_SHLI,		/* T[d] = T[a] << imm, sized */
	U_SARI,		/* T[d] = (int64_t)T[a] >> imm */
	U_SEXT,		/* T[d] = T[a] sign-extended from size to 64 bits */
	U_ZEXT,		/* T[d] = T[a] truncated to size */
	U_LD,		/* T[d] = load(segment x, offset T[a]), size */
	U_ST,		/* store(segment x, offset T[a]) = T[b], size */
	U_LDL,		/* locked load: like U_LD, and arm U_STC */
	U_STC,		/* store T[b] if memory still holds T[d], else restart */
	U_ALU,		/* T[d] = T[a] op(x) T[b] (ALU_*), sets flags */
	U_INCDEC,	/* T[d] = T[a] +/- 1 (x: 0 inc, 1 dec), sets flags */
	U_NEG,		/* T[d] = -T[a], sets flags as 0 - T[a] */
	U_NOT,		/* T[d] = ~T[a], sized */
	U_SHIFT,	/* T[d] = T[a] shifted(x: SH_*) by T[b], sets flags */
	U_SHD,		/* shld/shrd: T[d] = T[a]:T[b] by count imm-temp, x = 0 left */
	U_MUL,		/* rDX:rAX = rAX * T[a] (x: 0 unsigned, 1 signed) */
	U_DIV,		/* rAX, rDX = rDX:rAX / T[a] (x: 0 unsigned, 1 signed) */
	U_IMUL2,	/* T[d] = T[a] * T[b] signed, sets CF/OF */
	U_BT,		/* bit test T[a] bit T[b]: CF; x: 0 bt 1 bts 2 btr 3 btc -> T[d] */
	U_BSF, U_BSR, U_POPCNT, U_TZCNT, U_LZCNT,	/* T[d] = f(T[a]), flags */
	U_BSWAP,	/* T[d] = bswap(T[a]) */
	U_GETCC,	/* T[d] = condition x holds */
	U_GETCF,	/* T[d] = CF */
	U_SETCF,	/* CF = x: 0 clear, 1 set, 2 complement */
	U_GETF,		/* T[d] = RFLAGS */
	U_SELECT,	/* T[d] = T[x] ? T[a] : T[b] */
	U_JMP,		/* rip = T[a], end of block */
	U_JMPI,		/* rip = imm, end of block */
	U_JCC,		/* if condition x: rip = imm, end of block */
	U_JNZ,		/* if T[a] (sized) != 0: rip = imm, end of block */
	U_JZ,		/* if T[a] (sized) == 0: rip = imm, end of block */
	U_HELPER,	/* call (tcg_helper)imm; ends the block if aux & 1 or it says so */
	U_EXC,		/* raise exception x with error code imm */
	U_NR
};

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };
enum { SH_ROL, SH_ROR, SH_RCL, SH_RCR, SH_SHL, SH_SHR, SH_SAL, SH_SAR };

struct uop {
	uint8_t op;
	uint8_t size;
	uint8_t d, a, b, x;
	uint16_t aux;
	uint64_t imm;
};

/*
 * Marks in aux of flag-writing micro-ops (opt.c; helpers use bit 0 and
 * bits 8-15, U_SHD the whole field).
 */
#define UF_NOFLAGS	0x02	/* no later micro-op reads the flags it writes */
#define UF_KEEP_DEAD	0x04	/* the flags it leaves unchanged are dead */
#define UF_CNT_NZ	0x08	/* U_SHIFT: the count is a nonzero constant */
#define UF_BIMM		0x10	/* U_ALU, U_IMUL2, U_SHIFT: operand b is imm */

/* The second operand of a micro-op that may carry it as UF_BIMM. */
#define UOP_B(c, u)	(((u)->aux & UF_BIMM) ? (u)->imm : (c)->t[(u)->b])

#define TCG_NR_TEMPS 16

/* Flags of the code a block was translated for. */
#define TBF_CS32	0x01	/* default operand/address size 32 */
#define TBF_CS64	0x02	/* 64-bit code segment in long mode */
#define TBF_SS32	0x04	/* 32-bit stack */
#define TBF_PE		0x08	/* protected mode */
#define TBF_VM		0x10	/* virtual-8086 mode */
#define TBF_TF		0x20	/* single-step: one instruction per block */

#define TB_MAX_INSNS	64
#define TB_MAX_UOPS	1024

struct tb {
	uint64_t phys;		/* guest-physical address of the first byte */
	uint64_t cs_base, eip;
	uint32_t flags;
	uint16_t nr_uops, nr_insns;
	uint16_t size;		/* bytes of guest code */
	bool cacheable;		/* false if an instruction crosses a page */
	bool invalid;		/* dropped from the cache: never chain to it */
	struct tb *next;	/* hash chain */
	/*
	 * Links to the blocks that followed each exit last time, when they
	 * lie in the same guest page (run.c: tb_link).
	 */
	struct tb *link[3];	/* 2: an indirect jump */
	uint64_t link_gen;	/* tcg_vm.code_gen the links are valid at */
	uint8_t *code;		/* copy of the guest bytes, checked on lookup */
	struct uop *uops;
	void *host;		/* host code (jit.h), or NULL: interpret */
	void *host_chain;	/* where a direct jump from another block enters it */
};

/*
 * Jump cache entry (run.c): the block last found for an RIP, valid while
 * nothing that could change what that RIP means has happened.
 */
struct tb_jc {
	struct tb *tb;
	uint64_t tlb_gen, code_gen, epoch;
	unsigned cpl;
};

/* A TLB entry maps one 4 KiB linear page. */
struct tlb_entry {
	uint64_t vpn;		/* linear page number, or ~0 if empty */
	uint64_t ppn;		/* physical page address */
	uint8_t *hva;		/* host page if RAM, else NULL (MMIO) */
	uint32_t span;		/* page numbers covered - 1 (large pages) */
	uint8_t perm;		/* TLB_* */
};
#define TLB_W		0x01	/* writable (and dirty already set) */
#define TLB_U		0x02	/* user accessible */
#define TLB_X		0x04	/* executable */
#define TLB_G		0x08	/* global */
#define TLB_D		0x10	/* the leaf's dirty bit is set */
#define TLB_SIZE	256

/* Access kinds for the soft-MMU. */
enum { ACC_R = 0, ACC_W = 1, ACC_X = 2 };

struct xmm { uint64_t q[2]; };

/* The whole guest CPU, as TCG keeps it. */
struct tcg_cpu {
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags;	/* non-arithmetic bits; arithmetic ones are lazy */
	uint32_t cc_op, cc_size;
	uint64_t cc_res, cc_a, cc_b, cc_cin;
	uint64_t t[TCG_NR_TEMPS];

	struct cpu_segment seg[6], ldt, tr;
	struct cpu_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, efer;
	uint64_t dr[8];
	unsigned cpl;
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t tsc_aux, pat, misc_enable, tsc_offset, apic_base;
	uint64_t mtrr_def, mtrr_fixed[11], mtrr_var[16];

	/* x87 / SSE */
	uint16_t fcw, fsw, ftw_full;	/* ftw_full: 2 bits per reg */
	uint16_t fop;
	uint64_t fip, fdp;
	unsigned ftop;
	long double st[8];
	struct xmm xmm[16];
	uint32_t mxcsr;

	/* Execution bookkeeping */
	uint64_t insn_eip;		/* eip of the instruction running */
	uint64_t insn_next;		/* eip after it */
	uint32_t tb_flags;
	bool end_tb;			/* a helper changed rip or mode */
	bool brk;			/* leave the block at the next instruction */
	bool exit_req;			/* a device access posted a machine request */
	uint64_t cur_phys, cur_end;	/* guest bytes of the running block */
	bool shadow;			/* interrupt shadow (sti, mov ss) */
	bool irq_masked;		/* irq_hint seen while IF was 0 */
	struct tb *chain_from;		/* block that just ran, if it may chain */
	int chain_exit;			/* its exit taken (tcg_interp's result) */
	/*
	 * Nonzero: generated code may not jump from block to block by
	 * itself (jit_x86.c) and returns to tcg_tb_next.  Set by everything
	 * that ends a chain and does not end the block it happens in: a
	 * kick, interrupt, INIT or SIPI from another thread (after their
	 * own flag), a device access that posted a request or made an
	 * interrupt pending, a TLB flush, and by the run loop when it
	 * starts a block with an event still pending; cleared only at the
	 * top of the run loop, which looks at all of them.
	 */
	uint32_t chain_stop;
	struct tb *jit_last;		/* block whose host code returned */
	uint64_t tlb_gen;		/* counts TLB flushes */
	uint64_t chain_tlb_gen;		/* tlb_gen when the chain began */
	bool halted;
	bool nmi_blocked;		/* in an NMI handler, until iret */
	bool trace;			/* VIREO_TCG_TRACE: log each block */
	bool wait_sipi;
	int delivering;			/* vector being delivered, or -1 */
	bool shutdown;			/* triple fault */
	unsigned rep_budget;		/* iterations before a rep op yields */
	uint8_t *locked_hva;		/* armed by U_LDL for U_STC */
	bool locked_global;		/* U_LDL took the machine's atomic lock */
	jmp_buf jmp;

	struct tlb_entry tlb[TLB_SIZE];

	/* Translation cache, private to this vCPU. */
	struct tb **tb_hash;
	struct tb_jc *tb_jc;		/* by RIP, see run.c */
	uint64_t jc_epoch;		/* advanced by events that void it */
	uint8_t *tb_arena;
	size_t tb_arena_used, tb_arena_size;
	struct tb *scratch;		/* block being translated */
	struct tcg_jit *jit;		/* host code buffer, NULL: interpreter only */
	uint8_t mmio_code[16];		/* code bytes fetched from the MMIO bus */

	/* Links to the machine */
	struct machine *m;
	struct vcpu *v;
	struct tcg_vm *vm;
	unsigned index;
	uint64_t tsc_base;		/* host ns at tsc 0 without irqchip */

	/* Wakeups, guarded by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kick;			/* vcpu_kick: return ACCEL_EXIT_KICK */
	bool irq_hint;			/* irqchip says: look for an interrupt */
	bool init_req;			/* INIT IPI arrived */
	int sipi_vector;		/* SIPI arrived: vector, or -1 */
};

#define TCG_CODE_PAGE_BITS	(1u << 20)

/* Machine-wide TCG state (m->accel_state). */
struct tcg_vm {
	struct machine *m;
	struct irqchip *irqchip;
	/* Dirty log: one bit per page of RAM, set by soft-MMU stores. */
	unsigned long *dirty;
	bool dirty_on;
	/* Serialises locked accesses that cannot use a host atomic. */
	pthread_mutex_t atomic_lock;
	bool jit;			/* -accel tcg,jit=on: generate host code */
	/*
	 * Guest pages that hold translated code, hashed by page number (a
	 * collision only costs a broken chain), and a generation that a
	 * soft-MMU store to such a page advances: chained blocks run only
	 * while it is unchanged (run.c).
	 */
	unsigned long code_pages[TCG_CODE_PAGE_BITS / (8 * sizeof(unsigned long))];
	uint64_t code_gen;
	/*
	 * The vCPUs by index, for the irqchip's callbacks: its timer thread
	 * runs until vm_destroy, after the vCPUs are gone, so it must not
	 * reach them through struct machine.  Writers: vcpu create/destroy.
	 */
	pthread_rwlock_t cpus_lock;
	struct tcg_cpu **cpus;
	unsigned nr_cpus;
};

typedef void (*tcg_helper)(struct tcg_cpu *c, const struct uop *u);

/* cpu.c */
void tcg_cpu_reset_state(struct tcg_cpu *c, const struct cpu_state *s);
void tcg_cpu_get_state(struct tcg_cpu *c, struct cpu_state *s);
bool tcg_long_mode(const struct tcg_cpu *c);
bool tcg_code64(const struct tcg_cpu *c);
void tcg_seg_load_real(struct tcg_cpu *c, int sreg, uint16_t sel);
uint64_t tcg_read_tsc(struct tcg_cpu *c);

/* cpu.c: lazy flags */
uint64_t tcg_get_flags(struct tcg_cpu *c);
/* CF alone, without a call for the common lazy states (inc/dec, adc). */
static inline bool tcg_cf(struct tcg_cpu *c);
void tcg_set_flags(struct tcg_cpu *c, uint64_t f, uint64_t mask);
bool tcg_cond(struct tcg_cpu *c, unsigned cc);

/* excp.c */
void __attribute__((noreturn)) tcg_raise(struct tcg_cpu *c, int vec, uint32_t err);
void __attribute__((noreturn)) tcg_raise_pf(struct tcg_cpu *c, uint64_t addr, uint32_t err);
void __attribute__((noreturn)) tcg_exit_tb(struct tcg_cpu *c);
void tcg_do_interrupt(struct tcg_cpu *c, int vec, bool has_err, uint32_t err,
		      int kind, uint64_t next_eip);
enum { INT_HW, INT_EXC, INT_SOFT };
void tcg_iret(struct tcg_cpu *c, unsigned osize);

/* mmu.c */
void tcg_tlb_flush(struct tcg_cpu *c, bool global);
void tcg_tlb_flush_page(struct tcg_cpu *c, uint64_t lin);
uint64_t tcg_lin(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes, int acc);
uint64_t tcg_load_lin(struct tcg_cpu *c, uint64_t lin, unsigned bytes, int acc, bool user);
void tcg_store_lin(struct tcg_cpu *c, uint64_t lin, unsigned bytes, uint64_t v, bool user);
uint64_t tcg_load(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes);
void tcg_store(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes, uint64_t v);
uint64_t tcg_ld_sys(struct tcg_cpu *c, uint64_t lin, unsigned bytes);
void tcg_st_sys(struct tcg_cpu *c, uint64_t lin, unsigned bytes, uint64_t v);
int tcg_translate(struct tcg_cpu *c, uint64_t lin, int acc, bool user,
		  uint64_t *phys, uint32_t *pferr);
uint8_t *tcg_lock_hva(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes);
void tcg_mark_written(struct tcg_cpu *c, uint64_t phys, unsigned bytes);
/* Dirty-log the RAM page of host address hva (after a store through it). */
void tcg_dirty_hva(struct tcg_cpu *c, const void *hva);

/* decode.c, translate*.c */
/*
 * Translate the block at c->rip into c->scratch; hva is its first byte.
 * mmio: the code is not RAM and hva holds just 15 bytes read from the bus:
 * translate one instruction and do not cache it.
 */
void tcg_translate_tb(struct tcg_cpu *c, uint64_t phys, uint64_t lin, const uint8_t *hva,
		      bool mmio);

/*
 * interp.c: run tb, and the blocks chained to it, until one leaves in a
 * way that may not be chained or tcg_tb_next says stop.  Exits are
 * numbered 0: the final direct jump, 1: a taken conditional branch,
 * 2: an indirect jump, -1: anything else (a helper, an interruption).
 */
void tcg_interp(struct tcg_cpu *c, struct tb *tb);

/* run.c: the translation cache */
int tcg_tb_init(struct tcg_cpu *c);
void tcg_tb_destroy(struct tcg_cpu *c);
struct tb *tcg_tb_find(struct tcg_cpu *c);
struct tb *tcg_tb_next(struct tcg_cpu *c, struct tb *tb, int exit);
void tcg_tb_flush(struct tcg_cpu *c);

/* sys.c */
void tcg_load_seg(struct tcg_cpu *c, int sreg, uint16_t sel);
/* Load CS for a far transfer that runs the target at level cpl. */
void tcg_load_cs(struct tcg_cpu *c, uint16_t sel, unsigned cpl);
/* After a return to an outer level: null data segments it may not use. */
void tcg_null_outer_segs(struct tcg_cpu *c);
void tcg_write_cr(struct tcg_cpu *c, int cr, uint64_t v);
int tcg_rdmsr(struct tcg_cpu *c, uint32_t msr, uint64_t *v);
int tcg_wrmsr(struct tcg_cpu *c, uint32_t msr, uint64_t v);
void tcg_cpuid(struct tcg_cpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4]);
bool tcg_read_desc(struct tcg_cpu *c, uint16_t sel, uint32_t d[2]);
void tcg_desc_to_seg(struct cpu_segment *s, uint16_t sel, const uint32_t d[2]);

/* run.c: the vCPU loop behind vcpu_run. */
int tcg_run_loop(struct tcg_cpu *c, struct accel_exit *ex);

/* After a bus access: stop at the next instruction if the machine has a
 * request pending (the guest wrote isa-debug-exit, a reset port, ...). */
void tcg_after_io(struct tcg_cpu *c);

/* tcg_state.c: the migration hooks (sections "tcg-cpu" and "tcg-vm"). */
#define TCG_STATE_VERSION 1
int tcg_state_vcpu_save(struct vcpu *v, struct vmstate_out *o);
int tcg_state_vcpu_load(struct vcpu *v, struct vmstate_in *in);
int tcg_state_vm_save(struct machine *m, struct vmstate_out *o);
int tcg_state_vm_load(struct machine *m, struct vmstate_in *in);

/* tcg_accel.c: the irqchip, or NULL in a machine without one. */
struct irqchip *tcg_irqchip(struct tcg_cpu *c);

static inline unsigned tcg_bits(unsigned size) { return 8u << size; }

static inline bool tcg_cf(struct tcg_cpu *c)
{
	switch (c->cc_op) {
	case CC_EFLAGS: return c->cc_res & F_CF;
	case CC_LOGIC: return false;
	case CC_SUB: return c->cc_a < c->cc_b;
	}
	return tcg_cond(c, CC_B);
}

/* Recompute the block flags after anything that changes CS, SS, CR0 or
 * EFER; inline because the run loop does it before every block. */
static inline void tcg_update_mode(struct tcg_cpu *c)
{
	uint32_t f = 0;

	if (c->cr0 & CR0_PE)
		f |= TBF_PE;
	if (c->rflags & F_VM)
		f |= TBF_VM;
	if (c->rflags & F_TF)
		f |= TBF_TF;
	if ((c->efer & EFER_LMA) && c->seg[S_CS].l)
		f |= TBF_CS64;
	else if (c->seg[S_CS].db)
		f |= TBF_CS32;
	if (c->seg[S_SS].db)
		f |= TBF_SS32;
	c->tb_flags = f;
}

/* v truncated to 8 << size bits; inline because nearly every micro-op
 * uses it. */
static inline uint64_t tcg_sized(uint64_t v, unsigned size)
{
	return size >= 3 ? v : v & ((1ull << tcg_bits(size)) - 1);
}

static inline uint64_t tcg_sext(uint64_t v, unsigned size)
{
	unsigned sh = 64 - tcg_bits(size);

	return (uint64_t)((int64_t)(v << sh) >> sh);
}

#endif
