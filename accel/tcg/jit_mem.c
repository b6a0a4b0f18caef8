/*
 * Guest loads and stores (U_LD, U_ST) in generated code.
 *
 * The soft-MMU in C (mmu.c) cost about a quarter of a Linux boot with
 * host code: four calls (tcg_load, tcg_lin, tcg_load_lin, tlb_get) per
 * access that nearly always hits the TLB.  In 64-bit code, where the
 * segment checks reduce to the FS/GS base and canonicality, the common
 * case is done inline and anything else calls tcg_load/tcg_store, which
 * remain the one place that knows the rules.  The inline path takes an
 * access only where mmu.c would do the access and nothing else:
 *
 * - the linear address is canonical and the access stays in one page
 *   (a page crossing needs both translations, byte by byte);
 * - the TLB entry of its page is valid: entries are dropped by every
 *   flush (mov to CR3, CR0.PG/WP/PE, CR4.PGE/PAE/PSE, invlpg), so the
 *   inline check sees exactly the mappings tlb_get would use;
 * - the entry grants what perm_ok asks, narrowed: U if CPL is 3, and for
 *   a store W and D set (a supervisor store to a read-only page with
 *   CR0.WP clear, and a first store that must set the dirty bit, take
 *   the walk in C);
 * - the page is RAM (hva set): MMIO goes through the bus and
 *   tcg_after_io.
 *
 * A store done inline still owes what tcg_mark_written does after a RAM
 * store: stop the running block if it wrote into it, advance the code
 * generation if the page holds translated code, and dirty-log the page.
 * The code checks whether any of the three applies, after the store as
 * mmu.c does (a translation racing with the store sees either the new
 * bytes or the page mark), and calls tcg_mark_written if so.
 */
#include "accel/tcg/jit_emit.h"

#if defined(__x86_64__)

#define TLB_FIELD(f)	\
	(int32_t)(offsetof(struct tcg_cpu, tlb) + offsetof(struct tlb_entry, f))
#define VM_FIELD(f)	(int32_t)offsetof(struct tcg_vm, f)

_Static_assert(sizeof(struct tlb_entry) == 32, "the TLB index is scaled by shl 5");
_Static_assert(TLB_U == 2, "the user bit is made by shl 1 of CPL == 3");

/* The soft-MMU in C: tcg_load/tcg_store(c, seg, T[a], bytes[, T[b]]).
 * A load leaves the value in rax. */
static void gen_mmu_call(struct emit *e, const struct uop *u)
{
	alu_rr(e, OP_MOV, RDI, RBX);
	movi(e, RSI, u->x);
	ld(e, RDX, OFF_T(u->a));
	movi(e, RCX, 1u << u->size);
	if (u->op == U_ST) {
		ld(e, R8, OFF_T(u->b));
		call(e, tcg_store);
	} else {
		call(e, tcg_load);
	}
}

/*
 * The inline TLB lookup of a 64-bit access.  On a hit it goes on with
 * rsi = the host address, rax = the offset in the page and rcx = c +
 * the slot * 32, so that [rcx + TLB_FIELD(f)] is the entry's field f;
 * every other case branches to a miss[] label.  Returns their number.
 */
static unsigned gen_tlb_hit(struct emit *e, const struct uop *u, uint8_t **miss)
{
	unsigned n = 0, bytes = 1u << u->size;

	ld(e, RAX, OFF_T(u->a));
	if (u->x == S_FS || u->x == S_GS) {
		e8(e, 0x48);	/* add rax, [segment base] */
		e8(e, 0x03);
		mem_rbx(e, RAX, OFF(seg) + u->x * (int32_t)sizeof(struct cpu_segment) +
			(int32_t)offsetof(struct cpu_segment, base));
	}
	/* Canonical: sign-extending bit 47 gives it back (tcg_lin's #GP). */
	alu_rr(e, OP_MOV, RCX, RAX);
	e8(e, 0x48); e8(e, 0xc1); e8(e, 0xe1); e8(e, 16);	/* shl rcx, 16 */
	e8(e, 0x48); e8(e, 0xc1); e8(e, 0xf9); e8(e, 16);	/* sar rcx, 16 */
	alu_rr(e, OP_CMP, RCX, RAX);
	miss[n++] = skip32(e, X_NE);
	if (bytes > 1) {
		e8(e, 0x89); e8(e, 0xc1);			/* mov ecx, eax */
		e8(e, 0x81); e8(e, 0xe1); e32(e, 0xfff);	/* and ecx, 0xfff */
		e8(e, 0x81); e8(e, 0xf9); e32(e, 0x1000 - bytes);	/* cmp ecx, */
		miss[n++] = skip32(e, X_A);
	}
	/* rdx = page number, rcx = c + its slot * sizeof(struct tlb_entry) */
	alu_rr(e, OP_MOV, RDX, RAX);
	e8(e, 0x48); e8(e, 0xc1); e8(e, 0xea); e8(e, 12);	/* shr rdx, 12 */
	e8(e, 0x89); e8(e, 0xd1);				/* mov ecx, edx */
	e8(e, 0x81); e8(e, 0xe1); e32(e, TLB_SIZE - 1);		/* and ecx, */
	e8(e, 0xc1); e8(e, 0xe1); e8(e, 5);			/* shl ecx, 5 */
	alu_rr(e, OP_ADD, RCX, RBX);
	e8(e, 0x48); e8(e, 0x3b);				/* cmp rdx, [vpn] */
	mem_at(e, RDX, RCX, TLB_FIELD(vpn));
	miss[n++] = skip32(e, X_NE);
	/* edx = the bits needed: U at CPL 3, W and D for a store */
	e8(e, 0x31); e8(e, 0xd2);				/* xor edx, edx */
	e8(e, 0x83); mem_rbx(e, 7, OFF(cpl)); e8(e, 3);		/* cmp dword [cpl], 3 */
	e8(e, 0x0f); e8(e, 0x94); e8(e, 0xc2);			/* sete dl */
	e8(e, 0xc1); e8(e, 0xe2); e8(e, 1);			/* shl edx, 1 */
	if (u->op == U_ST) {
		e8(e, 0x83); e8(e, 0xca); e8(e, TLB_W | TLB_D);	/* or edx, W | D */
	}
	e8(e, 0x0f); e8(e, 0xb6);				/* movzx esi, [perm] */
	mem_at(e, RSI, RCX, TLB_FIELD(perm));
	e8(e, 0x21); e8(e, 0xd6);				/* and esi, edx */
	e8(e, 0x39); e8(e, 0xd6);				/* cmp esi, edx */
	miss[n++] = skip32(e, X_NE);
	e8(e, 0x48); e8(e, 0x8b);				/* mov rsi, [hva] */
	mem_at(e, RSI, RCX, TLB_FIELD(hva));
	alu_rr(e, OP_TEST, RSI, RSI);
	miss[n++] = skip32(e, X_E);				/* MMIO */
	e8(e, 0x25); e32(e, 0xfff);				/* and eax, 0xfff */
	alu_rr(e, OP_ADD, RSI, RAX);
	return n;
}

/*
 * After an inline store of bytes at host rsi: call tcg_mark_written if
 * it has anything to do (see the top of the file).  Returns the label
 * of its end.
 */
static uint8_t *gen_mark_written(struct emit *e, unsigned bytes)
{
	uint8_t *mark[2], *s, *done;

	/* rsi = the guest-physical address, mark_written's argument */
	e8(e, 0x48); e8(e, 0x8b);				/* mov rsi, [ppn] */
	mem_at(e, RSI, RCX, TLB_FIELD(ppn));
	alu_rr(e, OP_OR, RSI, RAX);
	/* into the running block: phys < cur_end && phys + bytes > cur_phys */
	e8(e, 0x48); e8(e, 0x3b);				/* cmp rsi, [cur_end] */
	mem_rbx(e, RSI, OFF(cur_end));
	s = skip(e, JAE);
	e8(e, 0x48); e8(e, 0x8d); e8(e, 0x56); e8(e, bytes);	/* lea rdx, [rsi + bytes] */
	e8(e, 0x48); e8(e, 0x3b);				/* cmp rdx, [cur_phys] */
	mem_rbx(e, RDX, OFF(cur_phys));
	mark[0] = skip32(e, X_A);
	land(e, s);
	ld(e, RCX, OFF(vm));
	e8(e, 0x80); mem_at(e, 7, RCX, VM_FIELD(dirty_on)); e8(e, 0);	/* cmp byte, 0 */
	mark[1] = skip32(e, X_NE);
	/* the page's bit in code_pages */
	alu_rr(e, OP_MOV, RDX, RSI);
	e8(e, 0x48); e8(e, 0xc1); e8(e, 0xea); e8(e, 12);	/* shr rdx, 12 */
	e8(e, 0x81); e8(e, 0xe2); e32(e, TCG_CODE_PAGE_BITS - 1);	/* and edx, */
	e8(e, 0x48); e8(e, 0x0f); e8(e, 0xa3);			/* bt [code_pages], rdx */
	mem_at(e, RDX, RCX, VM_FIELD(code_pages));
	done = skip32(e, X_NC);
	land32(e, mark[0]);
	land32(e, mark[1]);
	alu_rr(e, OP_MOV, RDI, RBX);
	movi(e, RDX, bytes);
	call(e, tcg_mark_written);
	return done;
}

void tcg_jit_gen_mem(struct emit *e, const struct uop *u, bool cs64)
{
	/* host loads and stores of [rsi] by size, 0-terminated */
	static const uint8_t ld_op[4][4] = {
		{ 0x0f, 0xb6, 0x06 },		/* movzx eax, byte [rsi] */
		{ 0x0f, 0xb7, 0x06 },		/* movzx eax, word [rsi] */
		{ 0x8b, 0x06 },			/* mov eax, [rsi] */
		{ 0x48, 0x8b, 0x06 },		/* mov rax, [rsi] */
	};
	static const uint8_t st_op[4][4] = {
		{ 0x88, 0x16 },			/* mov [rsi], dl */
		{ 0x66, 0x89, 0x16 },		/* mov [rsi], dx */
		{ 0x89, 0x16 },			/* mov [rsi], edx */
		{ 0x48, 0x89, 0x16 },		/* mov [rsi], rdx */
	};
	uint8_t *miss[5], *done[2];
	unsigned n, k, nd = 0;

	if (!cs64) {
		gen_mmu_call(e, u);
		if (u->op == U_LD)
			st(e, OFF_T(u->d), RAX);
		return;
	}
	n = gen_tlb_hit(e, u, miss);
	if (u->op == U_LD) {
		for (k = 0; ld_op[u->size][k]; k++)
			e8(e, ld_op[u->size][k]);
	} else {
		ld(e, RDX, OFF_T(u->b));
		for (k = 0; st_op[u->size][k]; k++)
			e8(e, st_op[u->size][k]);
		done[nd++] = gen_mark_written(e, 1u << u->size);
	}
	done[nd++] = skip32(e, -1);
	for (k = 0; k < n; k++)
		land32(e, miss[k]);
	gen_mmu_call(e, u);
	for (k = 0; k < nd; k++)
		land32(e, done[k]);
	if (u->op == U_LD)
		st(e, OFF_T(u->d), RAX);
}

#endif
