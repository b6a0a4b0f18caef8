/*
 * The soft-MMU: segmentation, then paging (none, 32-bit with 4 MiB
 * pages, PAE, 4-level) through a direct-mapped TLB per vCPU, then guest
 * RAM (m->mem) or, for anything that is not RAM, the MMIO bus.
 *
 * Page walks set accessed bits on every level used and the dirty bit on
 * writes, with host atomics so that another vCPU's walk or the guest's
 * own updates are not lost.  A TLB entry caches the combined permissions
 * of the walk; a write through an entry whose dirty bit is still clear
 * takes the slow path so that the walk sets it.
 */
#include <string.h>

#include "accel/tcg/tcg.h"
#include "log.h"
#include "machine.h"
#include "tsan.h"

#define PTE_P	(1ull << 0)
#define PTE_W	(1ull << 1)
#define PTE_U	(1ull << 2)
#define PTE_A	(1ull << 5)
#define PTE_D	(1ull << 6)
#define PTE_PS	(1ull << 7)
#define PTE_G	(1ull << 8)
#define PTE_NX	(1ull << 63)
#define PHYS_BITS 40
#define ADDR_MASK (((1ull << PHYS_BITS) - 1) & ~0xfffull)

#define PF_P	1
#define PF_W	2
#define PF_U	4
#define PF_RSVD	8
#define PF_I	16

void tcg_tlb_flush(struct tcg_cpu *c, bool global)
{
	c->tlb_gen++;		/* a mapping may change: stop chaining */
	__atomic_store_n(&c->chain_stop, 1, __ATOMIC_RELAXED);
	for (unsigned k = 0; k < TLB_SIZE; k++)
		if (global || !(c->tlb[k].perm & TLB_G))
			c->tlb[k].vpn = ~0ull;
}

/* invlpg: every entry of the page that holds lin, which for a 2 MiB,
 * 4 MiB or 1 GiB page may be many. */
void tcg_tlb_flush_page(struct tcg_cpu *c, uint64_t lin)
{
	uint64_t vpn = lin >> 12;

	c->tlb_gen++;
	__atomic_store_n(&c->chain_stop, 1, __ATOMIC_RELAXED);
	for (unsigned k = 0; k < TLB_SIZE; k++) {
		struct tlb_entry *e = &c->tlb[k];

		if (e->vpn != ~0ull && !((e->vpn ^ vpn) & ~(uint64_t)e->span))
			e->vpn = ~0ull;
	}
}

/* Read a page-table entry; NULL if the table is not in RAM. */
static uint64_t *pte_ptr(struct tcg_cpu *c, uint64_t addr, unsigned bytes)
{
	return gpa_to_hva(&c->m->mem, addr, bytes);
}

static void set_bits(void *p, unsigned bytes, uint64_t bits)
{
	if (bytes == 8)
		__atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_SEQ_CST);
}

static uint64_t rd_pte(void *p, unsigned bytes)
{
	return bytes == 8 ? __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST) :
			    __atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST);
}

/*
 * Walk the page tables for lin.  On success returns 0 with the physical
 * address and fills *perm (TLB_* bits, and *page_mask the page size - 1).
 * On a fault returns -1 with the #PF error code in *pferr.
 */
static int walk(struct tcg_cpu *c, uint64_t lin, int acc, bool user, uint64_t *phys,
		uint8_t *perm, uint64_t *page_mask, uint32_t *pferr)
{
	bool pae = c->cr4 & CR4_PAE, lma = c->efer & EFER_LMA, nxe = c->efer & EFER_NXE;
	unsigned bytes = pae ? 8 : 4, levels, shift, k;
	uint64_t table, e = 0, w = PTE_W, us = PTE_U, nx = 0;
	uint64_t rsvd = pae ? ~((1ull << PHYS_BITS) - 1) & ~PTE_NX : 0;
	uint32_t err = (acc == ACC_W ? PF_W : 0) | (user ? PF_U : 0) |
		       (acc == ACC_X && nxe && pae ? PF_I : 0);
	void *ptrs[4];
	unsigned nptr = 0;

	if (pae && !nxe)
		rsvd |= PTE_NX;
	if (lma) {
		levels = 4;
		shift = 39;
		table = c->cr3 & ADDR_MASK;
	} else if (pae) {
		uint64_t *p = pte_ptr(c, (c->cr3 & 0xffffffe0) + ((lin >> 30) & 3) * 8, 8);

		/* PDPTEs: read at walk time rather than cached at cr3 load. */
		if (!p)
			goto not_present;
		e = rd_pte(p, 8);
		if (!(e & PTE_P))
			goto not_present;
		if (e & (rsvd | 0x1e6))
			goto reserved;
		levels = 2;
		shift = 21;
		table = e & ADDR_MASK;
	} else {
		levels = 2;
		shift = 22;
		table = c->cr3 & 0xfffff000;
	}
	for (k = 0; k < levels; k++, shift -= pae ? 9 : 10) {
		unsigned idx = (lin >> shift) & (pae ? 511 : 1023);
		void *p = pte_ptr(c, table + idx * bytes, bytes);
		bool last = k == levels - 1;

		if (!p) {
			log_once("tcg: page table at %#llx is not RAM",
				 (unsigned long long)(table + idx * bytes));
			goto not_present;
		}
		e = rd_pte(p, bytes);
		if (!(e & PTE_P))
			goto not_present;
		if (e & rsvd)
			goto reserved;
		if (lma && k == 0 && (e & PTE_PS))
			goto reserved;
		w &= e;
		us &= e;
		nx |= e & PTE_NX;
		ptrs[nptr++] = p;
		if (!last && (e & PTE_PS) && (pae ? shift <= 30 : (c->cr4 & CR4_PSE))) {
			uint64_t size = 1ull << shift;
			uint64_t frame = pae ? e & ADDR_MASK & ~(size - 1) : e & 0xffc00000;

			/* Bits between the PAT bit and the frame are reserved. */
			if (pae && (e & (size - 1) & ~0x1fffull))
				goto reserved;
			*phys = frame | (lin & (size - 1));
			*page_mask = size - 1;
			goto leaf;
		}
		if (last) {
			*phys = (pae ? e & ADDR_MASK : e & 0xfffff000) | (lin & 0xfff);
			*page_mask = 0xfff;
			goto leaf;
		}
		table = pae ? e & ADDR_MASK : e & 0xfffff000;
	}
not_present:
	*pferr = err;
	return -1;
reserved:
	*pferr = err | PF_P | PF_RSVD;
	return -1;
leaf:
	if (user && !us)
		goto prot;
	if (acc == ACC_W && !w && (user || (c->cr0 & CR0_WP)))
		goto prot;
	if (acc == ACC_X && nx && nxe)
		goto prot;
	/* Accessed and dirty bits are guest RAM writes: dirty-log them. */
	for (k = 0; k < nptr; k++) {
		if (!(rd_pte(ptrs[k], bytes) & PTE_A)) {
			set_bits(ptrs[k], bytes, PTE_A);
			tcg_dirty_hva(c, ptrs[k]);
		}
	}
	if (acc == ACC_W && !(e & PTE_D)) {
		set_bits(ptrs[nptr - 1], bytes, PTE_D);
		tcg_dirty_hva(c, ptrs[nptr - 1]);
		e |= PTE_D;
	}
	*perm = (w ? TLB_W : 0) | (us ? TLB_U : 0) | ((nx && nxe) ? 0 : TLB_X) |
		((e & PTE_G) && (c->cr4 & CR4_PGE) ? TLB_G : 0) | ((e & PTE_D) ? TLB_D : 0);
	return 0;
prot:
	*pferr = err | PF_P;
	return -1;
}

static bool perm_ok(const struct tcg_cpu *c, uint8_t perm, int acc, bool user)
{
	if (user && !(perm & TLB_U))
		return false;
	if (acc == ACC_W) {
		if (!(perm & TLB_D))
			return false;
		if (!(perm & TLB_W) && (user || (c->cr0 & CR0_WP)))
			return false;
	}
	return acc != ACC_X || (perm & TLB_X);
}

/* Translate through the TLB, filling it on a miss.  Returns the entry or
 * NULL with *pferr set. */
static struct tlb_entry *tlb_get(struct tcg_cpu *c, uint64_t lin, int acc, bool user,
				 uint32_t *pferr)
{
	uint64_t vpn = lin >> 12, phys, mask;
	struct tlb_entry *e = &c->tlb[vpn % TLB_SIZE];
	uint8_t perm;

	if (e->vpn == vpn && perm_ok(c, e->perm, acc, user))
		return e;
	mask = 0xfff;
	if (!(c->cr0 & CR0_PG)) {
		phys = lin & 0xffffffffull;
		perm = TLB_W | TLB_U | TLB_X | TLB_D;
	} else if (walk(c, lin, acc, user, &phys, &perm, &mask, pferr)) {
		return NULL;
	}
	e->vpn = vpn;
	e->span = mask >> 12;
	e->ppn = phys & ~0xfffull;
	e->perm = perm;
	e->hva = gpa_to_hva(&c->m->mem, e->ppn, 4096);
	return e;
}

int tcg_translate(struct tcg_cpu *c, uint64_t lin, int acc, bool user, uint64_t *phys,
		  uint32_t *pferr)
{
	struct tlb_entry *e = tlb_get(c, lin, acc, user, pferr);

	if (!e)
		return -1;
	*phys = e->ppn | (lin & 0xfff);
	return 0;
}

static struct tlb_entry *tlb_fault(struct tcg_cpu *c, uint64_t lin, int acc, bool user)
{
	uint32_t err;
	struct tlb_entry *e = tlb_get(c, lin, acc, user, &err);

	if (!e)
		tcg_raise_pf(c, lin, err);
	return e;
}

/*
 * Set the dirty-log bit of the RAM page at hva.  Called after the store:
 * a sync that clears the bit between a mark and the store would let the
 * migration send the page without the store and never send it again.
 */
void tcg_dirty_hva(struct tcg_cpu *c, const void *hva)
{
	struct tcg_vm *vm = c->vm;
	const uint8_t *h = hva;
	size_t pg, bits = 8 * sizeof(unsigned long);

	if (!vm || !__atomic_load_n(&vm->dirty_on, __ATOMIC_SEQ_CST))
		return;
	if (h < c->m->mem.base || h >= c->m->mem.base + c->m->mem.map_size)
		return;
	pg = (size_t)(h - c->m->mem.base) >> 12;
	if (!(__atomic_load_n(&vm->dirty[pg / bits], __ATOMIC_RELAXED) & (1ul << (pg % bits))))
		__atomic_fetch_or(&vm->dirty[pg / bits], 1ul << (pg % bits), __ATOMIC_SEQ_CST);
}

void tcg_mark_written(struct tcg_cpu *c, uint64_t phys, unsigned bytes)
{
	struct tcg_vm *vm = c->vm;
	size_t cp = (phys >> 12) % TCG_CODE_PAGE_BITS, w = 8 * sizeof(unsigned long);
	uint8_t *h;

	if (phys < c->cur_end && phys + bytes > c->cur_phys)
		c->brk = true;		/* self-modifying code */
	if (!vm)
		return;
	if (__atomic_load_n(&vm->code_pages[cp / w], __ATOMIC_RELAXED) & (1ul << (cp % w))) {
		/* Code of some vCPU changed: no chained block may run
		 * without a lookup, which compares its bytes again. */
		__atomic_fetch_and(&vm->code_pages[cp / w], ~(1ul << (cp % w)), __ATOMIC_RELAXED);
		__atomic_fetch_add(&vm->code_gen, 1, __ATOMIC_SEQ_CST);
	}
	if (!__atomic_load_n(&vm->dirty_on, __ATOMIC_RELAXED))
		return;
	h = gpa_to_hva(&c->m->mem, phys, 1);
	if (h)
		tcg_dirty_hva(c, h);
}

/*
 * RAM accesses by size: a memcpy of a constant size is one host move, a
 * variable one is a library call (5% of a Linux boot with host code).
 */
static TSAN_GUEST_ACCESS uint64_t ld_ram(const uint8_t *p, unsigned bytes)
{
	uint8_t b;
	uint16_t w;
	uint32_t l;
	uint64_t q = 0;

	switch (bytes) {
	case 1: memcpy(&b, p, 1); return b;
	case 2: memcpy(&w, p, 2); return w;
	case 4: memcpy(&l, p, 4); return l;
	case 8: memcpy(&q, p, 8); return q;
	}
	memcpy(&q, p, bytes);
	return q;
}

static TSAN_GUEST_ACCESS void st_ram(uint8_t *p, unsigned bytes, uint64_t v)
{
	uint8_t b = v;
	uint16_t w = v;
	uint32_t l = v;

	switch (bytes) {
	case 1: memcpy(p, &b, 1); break;
	case 2: memcpy(p, &w, 2); break;
	case 4: memcpy(p, &l, 4); break;
	case 8: memcpy(p, &v, 8); break;
	default: memcpy(p, &v, bytes); break;
	}
}

static uint64_t ld_phys_page(struct tcg_cpu *c, struct tlb_entry *e, uint64_t lin,
			     unsigned bytes)
{
	uint64_t v;

	if (e->hva)
		return ld_ram(e->hva + (lin & 0xfff), bytes);
	v = bus_read(&c->m->mmio, e->ppn | (lin & 0xfff), bytes);
	tcg_after_io(c);
	return v;
}

static void st_phys_page(struct tcg_cpu *c, struct tlb_entry *e, uint64_t lin,
			 unsigned bytes, uint64_t v)
{
	if (e->hva) {
		st_ram(e->hva + (lin & 0xfff), bytes, v);
		tcg_mark_written(c, e->ppn | (lin & 0xfff), bytes);
		return;
	}
	bus_write(&c->m->mmio, e->ppn | (lin & 0xfff), bytes, v);
	tcg_after_io(c);
}

uint64_t tcg_load_lin(struct tcg_cpu *c, uint64_t lin, unsigned bytes, int acc, bool user)
{
	struct tlb_entry *e;
	uint64_t v = 0;

	if (((lin & 0xfff) + bytes) <= 0x1000) {
		e = tlb_fault(c, lin, acc, user);
		return ld_phys_page(c, e, lin, bytes);
	}
	/* Crossing a page: byte by byte, each through its own page. */
	for (unsigned k = 0; k < bytes; k++) {
		e = tlb_fault(c, lin + k, acc, user);
		v |= ld_phys_page(c, e, lin + k, 1) << (8 * k);
	}
	return v;
}

void tcg_store_lin(struct tcg_cpu *c, uint64_t lin, unsigned bytes, uint64_t v, bool user)
{
	struct tlb_entry *e;

	if (((lin & 0xfff) + bytes) <= 0x1000) {
		e = tlb_fault(c, lin, ACC_W, user);
		st_phys_page(c, e, lin, bytes, v);
		return;
	}
	/* Both pages must be writable before either is written. */
	tlb_fault(c, lin, ACC_W, user);
	tlb_fault(c, lin + bytes - 1, ACC_W, user);
	for (unsigned k = 0; k < bytes; k++) {
		e = tlb_fault(c, lin + k, ACC_W, user);
		st_phys_page(c, e, lin + k, 1, v >> (8 * k));
	}
}

static bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* Segment checks and the linear address for [off, off + bytes). */
uint64_t tcg_lin(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes, int acc)
{
	struct cpu_segment *s = &c->seg[sreg];
	int vec = sreg == S_SS ? EXC_SS : EXC_GP;
	uint64_t last = off + bytes - 1, lin;

	if ((c->efer & EFER_LMA) && c->seg[S_CS].l) {
		lin = off + (sreg >= S_FS ? s->base : 0);
		if (!canonical(lin) || !canonical(lin + bytes - 1))
			tcg_raise(c, vec, 0);
		return lin;
	}
	if ((c->cr0 & CR0_PE) && !(c->rflags & F_VM)) {
		if (s->unusable || !s->present)
			tcg_raise(c, vec, 0);
		if (acc == ACC_W && ((s->type & 8) || !(s->type & 2)))
			tcg_raise(c, vec, 0);
		if (acc == ACC_R && (s->type & 8) && !(s->type & 2))
			tcg_raise(c, vec, 0);
	}
	if (!(s->type & 8) && (s->type & 4) && (c->cr0 & CR0_PE)) {
		/* expand-down data segment */
		uint64_t top = s->db ? 0xffffffffull : 0xffff;

		if (off <= s->limit || last > top)
			tcg_raise(c, vec, 0);
	} else if (last > s->limit) {
		tcg_raise(c, vec, 0);
	}
	lin = (s->base + off) & 0xffffffffull;
	return lin;
}

uint64_t tcg_load(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes)
{
	uint64_t lin = tcg_lin(c, sreg, off, bytes, ACC_R);

	return tcg_load_lin(c, lin, bytes, ACC_R, c->cpl == 3);
}

void tcg_store(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes, uint64_t v)
{
	uint64_t lin = tcg_lin(c, sreg, off, bytes, ACC_W);

	tcg_store_lin(c, lin, bytes, v, c->cpl == 3);
}

/* Implicit supervisor accesses: descriptor tables, TSS, IDT. */
uint64_t tcg_ld_sys(struct tcg_cpu *c, uint64_t lin, unsigned bytes)
{
	return tcg_load_lin(c, lin, bytes, ACC_R, false);
}

void tcg_st_sys(struct tcg_cpu *c, uint64_t lin, unsigned bytes, uint64_t v)
{
	tcg_store_lin(c, lin, bytes, v, false);
}

/* Host pointer for a locked access, or NULL when the operand is not in
 * RAM or crosses a page (the caller then serialises on a lock). */
uint8_t *tcg_lock_hva(struct tcg_cpu *c, int sreg, uint64_t off, unsigned bytes)
{
	uint64_t lin = tcg_lin(c, sreg, off, bytes, ACC_W);
	struct tlb_entry *e;

	if ((lin & 0xfff) + bytes > 0x1000) {
		tlb_fault(c, lin, ACC_W, c->cpl == 3);
		tlb_fault(c, lin + bytes - 1, ACC_W, c->cpl == 3);
		return NULL;
	}
	e = tlb_fault(c, lin, ACC_W, c->cpl == 3);
	if (!e->hva)
		return NULL;
	tcg_mark_written(c, e->ppn | (lin & 0xfff), bytes);
	return e->hva + (lin & 0xfff);
}
