/*
 * Boot loaders: synthetic bzImage, PVH ELF, multiboot ELF and a.out-kludge
 * kernels written to temp files, loaded into a guest_mem with the machine's
 * real e820 map; the entry state and the parameter blocks are checked, and
 * every malformed image must give an error naming the file, never a crash
 * or a write outside RAM.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "boot.h"
#include "cpu.h"
#include "machine.h"
#include "memory.h"

#define MiB (1ull << 20)

struct tb {
	struct machine m;
	struct cpu_state s;
	char err[512];
	char *kernel, *initrd;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v); put32(p + 4, v >> 32); }
static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static char *tmp_write(const void *data, size_t len)
{
	char *path = g_build_filename(g_get_tmp_dir(), "vireo-boot-XXXXXX", NULL);
	int fd = g_mkstemp(path);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, data, len), ==, (ssize_t)len);
	close(fd);
	return path;
}

static void tm_init(struct tb *t, uint64_t ram)
{
	memset(t, 0, sizeof(*t));
	g_assert_cmpint(guest_mem_init(&t->m.mem, ram, NULL, false, t->err, sizeof(t->err)), ==, 0);
	t->m.nr_vcpus = 1;
	t->m.rsdp_addr = 0xF0000;
}

static void tm_destroy(struct tb *t)
{
	if (t->kernel)
		unlink(t->kernel);
	if (t->initrd)
		unlink(t->initrd);
	g_free(t->kernel);
	g_free(t->initrd);
	guest_mem_destroy(&t->m.mem);
}

static void tm_set_kernel(struct tb *t, const void *img, size_t len)
{
	if (t->kernel)
		unlink(t->kernel);
	g_free(t->kernel);
	t->kernel = tmp_write(img, len);
	t->m.cfg.kernel = t->kernel;
}

static void tm_set_initrd(struct tb *t, const void *data, size_t len)
{
	t->initrd = tmp_write(data, len);
	t->m.cfg.initrd = t->initrd;
}

static int tm_boot(struct tb *t)
{
	t->err[0] = 0;
	return boot_load(&t->m, &t->s, t->err, sizeof(t->err));
}

static uint8_t *gpa(struct tb *t, uint64_t addr, uint64_t len)
{
	uint8_t *p = gpa_to_hva(&t->m.mem, addr, len);

	g_assert_nonnull(p);
	return p;
}

/* Load must fail with a message naming the file and containing what. */
static void expect_fail(struct tb *t, const void *img, size_t len, const char *what)
{
	tm_set_kernel(t, img, len);
	if (tm_boot(t) >= 0)
		g_error("%s: loaded, expected an error containing \"%s\"", t->kernel, what);
	if (!strstr(t->err, t->kernel) || !strstr(t->err, what))
		g_error("error \"%s\" does not name the file or \"%s\"", t->err, what);
	if (g_test_verbose())
		g_test_message("%s", t->err);
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

/* The loaders' GDT holds descriptors matching the segment registers. */
static void assert_boot_gdt(struct tb *t, uint64_t code)
{
	g_assert_cmphex(t->s.gdt.base, ==, BOOT_GDT_ADDR);
	g_assert_cmphex(t->s.gdt.limit, ==, 0x1F);
	g_assert_cmphex(get64(gpa(t, BOOT_GDT_ADDR + 0x10, 8)), ==, code);
	g_assert_cmphex(get64(gpa(t, BOOT_GDT_ADDR + 0x18, 8)), ==, 0x00CF93000000FFFFull);
}

/* ---- bzImage ---- */

#define BZ_SETUP	(5 * 512)	/* setup_sects 4 */
#define BZ_KSIZE	0x2000
#define BZ_SIZE		(BZ_SETUP + BZ_KSIZE)

static uint8_t *bz_make(void)
{
	uint8_t *b = g_malloc0(BZ_SIZE);
	unsigned i;

	b[0x1F1] = 4;
	put32(b + 0x1F4, BZ_KSIZE / 16);
	put16(b + 0x1FE, 0xAA55);
	b[0x200] = 0xEB;
	b[0x201] = 0x268 - 0x202;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, 0x020F);
	b[0x211] = 0x01;			/* LOADED_HIGH */
	put32(b + 0x22C, 0x37FFFFFF);		/* initrd_addr_max */
	put32(b + 0x230, 0x200000);		/* kernel_alignment */
	b[0x234] = 1;				/* relocatable */
	put16(b + 0x236, 0x03);			/* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
	put32(b + 0x238, 2048);			/* cmdline_size */
	put64(b + 0x258, 0x1000000);		/* pref_address */
	put32(b + 0x260, 0x400000);		/* init_size */
	for (i = BZ_SETUP; i < BZ_SIZE; i++)
		b[i] = i * 7 + 1;
	return b;
}

static void test_bzimage(void)
{
	static const char append[] = "console=ttyS0 root=/dev/vda";
	uint8_t *b = bz_make(), *zp, *pt, initrd[0x3000];
	struct e820_entry e820[E820_MAX];
	unsigned n, i;
	uint64_t rd;
	struct tb t;

	for (i = 0; i < sizeof(initrd); i++)
		initrd[i] = i ^ 0x5A;
	tm_init(&t, 64 * MiB);
	tm_set_kernel(&t, b, BZ_SIZE);
	tm_set_initrd(&t, initrd, sizeof(initrd));
	t.m.cfg.append = append;
	g_assert_cmpint(tm_boot(&t), ==, 0);

	/* Relocatable, pref_address + init_size fits: loaded at pref_address. */
	g_assert_cmphex(t.s.rip, ==, 0x1000000 + 0x200);
	g_assert_cmphex(t.s.gpr[R_RSI], ==, BOOT_PARAMS_ADDR);
	g_assert_cmphex(t.s.cr0 & (CR0_PE | CR0_PG), ==, CR0_PE | CR0_PG);
	g_assert_cmphex(t.s.efer & EFER_LMA, ==, EFER_LMA);
	g_assert_cmphex(t.s.cr3, ==, BOOT_PML4_ADDR);
	g_assert_cmpuint(t.s.cs.l, ==, 1);
	g_assert_cmpuint(t.s.cs.selector, ==, 0x10);
	g_assert_cmpuint(t.s.ds.selector, ==, 0x18);
	g_assert_cmphex(t.s.apic_base & 0x100, ==, 0x100);	/* BSP */
	g_assert_cmpmem(gpa(&t, 0x1000000, BZ_KSIZE), BZ_KSIZE, b + BZ_SETUP, BZ_KSIZE);

	zp = gpa(&t, BOOT_PARAMS_ADDR, 0x1000);
	g_assert_cmpmem(zp + 0x202, 4, "HdrS", 4);
	g_assert_cmpuint(zp[0x210], ==, 0xFF);
	g_assert_cmphex(get32(zp + 0x228), ==, BOOT_CMDLINE_ADDR);
	g_assert_cmpstr((char *)gpa(&t, BOOT_CMDLINE_ADDR, sizeof(append)), ==, append);
	g_assert_cmphex(get64(zp + 0x070), ==, 0xF0000);
	n = machine_e820(&t.m, e820, E820_MAX);
	g_assert_cmpuint(n, >=, 3);
	g_assert_cmpuint(zp[0x1E8], ==, n);
	g_assert_cmpmem(zp + 0x2D0, n * 20, e820, n * 20);
	g_assert_cmphex(get64(zp + 0x2D0 + 20 * 2), ==, 0x100000);	/* RAM from 1 MiB */

	rd = get32(zp + 0x218);
	g_assert_cmphex(get32(zp + 0x21C), ==, sizeof(initrd));
	g_assert_cmphex(rd & 0xFFF, ==, 0);
	g_assert_cmphex(rd, >=, 0x1000000 + 0x400000);	/* above the kernel's init_size */
	g_assert_cmphex(rd + sizeof(initrd), <=, 64 * MiB);
	g_assert_cmphex(rd, >, 60 * MiB);			/* placed high */
	g_assert_cmpmem(gpa(&t, rd, sizeof(initrd)), sizeof(initrd), initrd, sizeof(initrd));

	/* Identity map: PML4 -> PDPT -> PDs of 2 MiB pages; the GDT's long code. */
	pt = gpa(&t, BOOT_PML4_ADDR, 6 * 0x1000);
	g_assert_cmphex(get64(pt), ==, (BOOT_PML4_ADDR + 0x1000) | 3);
	g_assert_cmphex(get64(pt + 0x1000 + 3 * 8), ==, (BOOT_PML4_ADDR + 0x5000) | 3);
	g_assert_cmphex(get64(pt + 0x2000 + 8), ==, 0x200000 | 0x83);
	g_assert_cmphex(get64(pt + 0x5000 + 511 * 8), ==, (0xFFE00000ull) | 0x83);
	assert_boot_gdt(&t, 0x00AF9B000000FFFFull);
	tm_destroy(&t);

	/* 16 MiB of RAM: pref_address does not fit, the 2 MiB-aligned slot does. */
	tm_init(&t, 16 * MiB);
	tm_set_kernel(&t, b, BZ_SIZE);
	g_assert_cmpint(tm_boot(&t), ==, 0);
	g_assert_cmphex(t.s.rip, ==, 0x200000 + 0x200);
	zp = gpa(&t, BOOT_PARAMS_ADDR, 0x1000);
	g_assert_cmphex(get32(zp + 0x218) | get32(zp + 0x21C), ==, 0);
	g_assert_cmpuint(*gpa(&t, BOOT_CMDLINE_ADDR, 1), ==, 0);
	tm_destroy(&t);

	/* Not relocatable: loaded at 1 MiB, decompresses at pref_address. */
	b[0x234] = 0;
	tm_init(&t, 64 * MiB);
	tm_set_kernel(&t, b, BZ_SIZE);
	g_assert_cmpint(tm_boot(&t), ==, 0);
	g_assert_cmphex(t.s.rip, ==, BOOT_KERNEL_ADDR + 0x200);
	tm_destroy(&t);
	g_free(b);
}

static void test_bzimage_bad(void)
{
	uint8_t *b = bz_make(), *c = g_malloc(BZ_SIZE);
	char longline[2050];
	struct tb t;

	tm_init(&t, 64 * MiB);
#define MUTATE(stmt, what) do {					\
		memcpy(c, b, BZ_SIZE);				\
		stmt;						\
		expect_fail(&t, c, BZ_SIZE, what);		\
	} while (0)
	MUTATE(put16(c + 0x206, 0x020B), "too old");
	MUTATE(put16(c + 0x236, 0), "XLF_KERNEL_64");
	MUTATE(c[0x211] = 0, "LOADED_HIGH");
	MUTATE(c[0x201] = 0x10, "setup header length");
	MUTATE(c[0x201] = 0x90, "setup header length");
	MUTATE(put32(c + 0x1F4, BZ_KSIZE / 16 + 1), "truncated");
	MUTATE(c[0x1F1] = 0xFF, "truncated");
	MUTATE(put32(c + 0x260, 0x7FFFFFFF), "init_size");
	MUTATE(put32(c + 0x230, 0x300000), "kernel_alignment");
	/* A non-relocatable kernel that would decompress over the GDT. */
	MUTATE((c[0x234] = 0, put64(c + 0x258, 0x1000)), "boot structures");
	MUTATE((c[0x234] = 0, put64(c + 0x258, 0xFFFFFFFFFFFFF000ull)), "wraps");
#undef MUTATE
	expect_fail(&t, b, 0x210, "truncated");

	/* The command line: cmdline_size bytes fit, one more does not. */
	memset(longline, 'x', 2048);
	longline[2048] = 0;
	t.m.cfg.append = longline;
	tm_set_kernel(&t, b, BZ_SIZE);
	g_assert_cmpint(tm_boot(&t), ==, 0);
	longline[2048] = 'y';
	longline[2049] = 0;
	expect_fail(&t, b, BZ_SIZE, "cmdline_size");
	t.m.cfg.append = NULL;

	/* An initrd bigger than RAM (sparse: placement fails before reading). */
	t.initrd = tmp_write("", 0);
	g_assert_cmpint(truncate(t.initrd, 80 * MiB), ==, 0);
	t.m.cfg.initrd = t.initrd;
	tm_set_kernel(&t, b, BZ_SIZE);
	g_assert_cmpint(tm_boot(&t), <, 0);
	g_assert_nonnull(strstr(t.err, t.initrd));
	g_assert_nonnull(strstr(t.err, "does not fit"));
	tm_destroy(&t);
	g_free(b);
	g_free(c);
}

/* ---- ELF images ---- */

#define PVH_SIZE	0x2000
#define PVH_SEG_PADDR	0x100000
#define PVH_ENTRY	0x100080

/* ELF64 x86-64: one PT_LOAD (0x1000 file bytes + bss), a PT_NOTE, sections. */
static uint8_t *pvh_make(bool with_pt_note)
{
	uint8_t *b = g_malloc0(PVH_SIZE), *ph, *sh;
	unsigned i;

	memcpy(b, "\x7f" "ELF\x02\x01\x01", 7);
	put16(b + 16, 2);
	put16(b + 18, 62);
	put32(b + 20, 1);
	put64(b + 24, 0xffffffff81000000ull);
	put64(b + 32, 64);			/* phoff */
	put64(b + 40, 0x300);			/* shoff */
	put16(b + 52, 64);
	put16(b + 54, 56);
	put16(b + 56, with_pt_note ? 2 : 1);
	put16(b + 58, 64);
	put16(b + 60, 2);
	ph = b + 64;
	put32(ph, 1);				/* PT_LOAD */
	put64(ph + 8, 0x1000);
	put64(ph + 16, 0xffffffff81000000ull);
	put64(ph + 24, PVH_SEG_PADDR);
	put64(ph + 32, 0x1000);
	put64(ph + 40, 0x3000);
	put64(ph + 48, 0x1000);
	if (with_pt_note) {
		ph += 56;
		put32(ph, 4);			/* PT_NOTE */
		put64(ph + 8, 0x200);
		put64(ph + 32, 20);
		put64(ph + 48, 4);
	}
	/* An unrelated note first, then Xen's PHYS32_ENTRY. */
	put32(b + 0x1F0, 4);
	put32(b + 0x1F4, 0);
	put32(b + 0x1F8, 1);
	memcpy(b + 0x1FC, "GNU", 4);
	put32(b + 0x200, 4);
	put32(b + 0x204, 4);
	put32(b + 0x208, 18);
	memcpy(b + 0x20C, "Xen", 4);
	put32(b + 0x210, PVH_ENTRY);
	sh = b + 0x300 + 64;			/* section 1: SHT_NOTE */
	put32(sh + 4, 7);
	put64(sh + 24, 0x1F0);
	put64(sh + 32, 0x24);
	put64(sh + 48, 4);
	for (i = 0x1000; i < PVH_SIZE; i++)
		b[i] = i * 3 + 5;
	return b;
}

static void test_pvh(void)
{
	static const char append[] = "console=hvc0";
	uint8_t *b = pvh_make(true), *si, *mod, *mm, initrd[0x1800];
	struct e820_entry e820[E820_MAX];
	unsigned n, i, pass;
	struct tb t;

	for (pass = 0; pass < 2; pass++) {
		/* Pass 1: the note only in a SHT_NOTE section. */
		if (pass)
			put16(b + 56, 1);
		memset(initrd, 0xC3, sizeof(initrd));
		tm_init(&t, 64 * MiB);
		tm_set_kernel(&t, b, PVH_SIZE);
		tm_set_initrd(&t, initrd, sizeof(initrd));
		t.m.cfg.append = append;
		memset(gpa(&t, PVH_SEG_PADDR, 0x3000), 0xEE, 0x3000);	/* bss must be cleared */
		g_assert_cmpint(tm_boot(&t), ==, 0);

		assert_flat32(&t.s);
		g_assert_cmphex(t.s.rip, ==, PVH_ENTRY);
		g_assert_cmphex(t.s.gpr[R_RBX], ==, BOOT_PARAMS_ADDR);
		g_assert_cmpmem(gpa(&t, PVH_SEG_PADDR, 0x1000), 0x1000, b + 0x1000, 0x1000);
		for (i = 0x1000; i < 0x3000; i++)
			g_assert_cmpuint(*gpa(&t, PVH_SEG_PADDR + i, 1), ==, 0);

		si = gpa(&t, BOOT_PARAMS_ADDR, 56);
		g_assert_cmphex(get32(si), ==, 0x336ec578);
		g_assert_cmpuint(get32(si + 4), ==, 1);
		g_assert_cmpuint(get32(si + 12), ==, 1);		/* nr_modules */
		g_assert_cmphex(get64(si + 24), ==, BOOT_CMDLINE_ADDR);
		g_assert_cmpstr((char *)gpa(&t, get64(si + 24), sizeof(append)), ==, append);
		g_assert_cmphex(get64(si + 32), ==, 0xF0000);		/* rsdp */
		mod = gpa(&t, get64(si + 16), 32);
		g_assert_cmphex(get64(mod + 8), ==, sizeof(initrd));
		g_assert_cmphex(get64(mod) & 0xFFF, ==, 0);
		g_assert_cmphex(get64(mod), >=, PVH_SEG_PADDR + 0x3000);
		g_assert_cmpmem(gpa(&t, get64(mod), sizeof(initrd)), sizeof(initrd),
				initrd, sizeof(initrd));
		n = machine_e820(&t.m, e820, E820_MAX);
		g_assert_cmpuint(get32(si + 48), ==, n);
		mm = gpa(&t, get64(si + 40), n * 24);
		for (i = 0; i < n; i++) {
			g_assert_cmphex(get64(mm + 24 * i), ==, e820[i].addr);
			g_assert_cmphex(get64(mm + 24 * i + 8), ==, e820[i].size);
			g_assert_cmpuint(get32(mm + 24 * i + 16), ==, e820[i].type);
		}
		assert_boot_gdt(&t, 0x00CF9B000000FFFFull);
		tm_destroy(&t);
	}
	g_free(b);
}

static void test_pvh_bad(void)
{
	uint8_t *b = pvh_make(true), *c = g_malloc(PVH_SIZE);
	uint8_t *ph = c + 64;
	struct tb t;

	tm_init(&t, 64 * MiB);
#define MUTATE(stmt, what) do {					\
		memcpy(c, b, PVH_SIZE);				\
		stmt;						\
		expect_fail(&t, c, PVH_SIZE, what);		\
	} while (0)
	MUTATE(put64(ph + 24, 0x10000000), "outside guest RAM");
	MUTATE(put64(ph + 24, 0xA0000), "outside guest RAM");	/* VGA hole */
	MUTATE(put64(ph + 24, 0x8000), "boot structures");
	MUTATE(put64(ph + 24, 0xFFFFFFFFFFFFF000ull), "wraps");
	MUTATE(put64(ph + 32, 0x1001), "truncated");
	MUTATE(put64(ph + 8, 0xFFFFFFFFFFFFFFF0ull), "truncated");
	MUTATE(put64(ph + 32, 0x4000), "exceeds memory size");
	MUTATE(put32(c + 0x210, 0x900000), "entry point");
	MUTATE(put32(c + 0x200, 0xFFFFFFF0), "malformed ELF note");
	MUTATE(put32(c + 0x204, 2), "2-byte");
	MUTATE(put16(c + 56, 200), "program header table");
	MUTATE(put64(c + 32, 0x1FF0), "program header table");
	MUTATE(put16(c + 60, 200), "section header table");
	MUTATE(put16(c + 18, 3), "machine");
	MUTATE(c[5] = 2, "little-endian");
	MUTATE((put32(c + 0x208, 1), put32(ph + 56, 0)), "not a bzImage, PVH ELF or multiboot kernel");
#undef MUTATE
	expect_fail(&t, b, 40, "truncated ELF header");

	/* No cmdline_size here: the buffer at BOOT_CMDLINE_ADDR is the limit. */
	t.m.cfg.append = g_strnfill(BOOT_CMDLINE_MAX, 'a');
	expect_fail(&t, b, PVH_SIZE, "longer than the limit");
	g_free((char *)t.m.cfg.append);
	t.m.cfg.append = NULL;
	tm_destroy(&t);
	g_free(b);
	g_free(c);
}

/* An ELF with both a PVH note and a multiboot header boots as PVH. */
static void test_pvh_over_multiboot(void)
{
	uint8_t *b = pvh_make(true);
	struct tb t;

	put32(b + 0x1800, 0x1BADB002);
	put32(b + 0x1804, 0);
	put32(b + 0x1808, -0x1BADB002u);
	tm_init(&t, 16 * MiB);
	tm_set_kernel(&t, b, PVH_SIZE);
	g_assert_cmpint(tm_boot(&t), ==, 0);
	g_assert_cmphex(t.s.rip, ==, PVH_ENTRY);
	g_assert_cmphex(t.s.gpr[R_RAX], !=, 0x2BADB002);
	g_assert_cmphex(get32(gpa(&t, BOOT_PARAMS_ADDR, 4)), ==, 0x336ec578);
	tm_destroy(&t);
	g_free(b);
}

/* ---- multiboot ---- */

#define MB_SIZE		0x1800
#define MB_HDR		0x1000

static void mb_header(uint8_t *p, uint32_t flags)
{
	put32(p, 0x1BADB002);
	put32(p + 4, flags);
	put32(p + 8, -(0x1BADB002u + flags));
}

/* ELF32 i386 linked at 0xC0200000, loaded at 0x200000. */
static uint8_t *mb_elf_make(void)
{
	uint8_t *b = g_malloc0(MB_SIZE), *ph = b + 52;
	unsigned i;

	memcpy(b, "\x7f" "ELF\x01\x01\x01", 7);
	put16(b + 16, 2);
	put16(b + 18, 3);
	put32(b + 20, 1);
	put32(b + 24, 0xC0200020);
	put32(b + 28, 52);
	put16(b + 40, 52);
	put16(b + 42, 32);
	put16(b + 44, 1);
	put32(ph, 1);
	put32(ph + 4, 0x1000);
	put32(ph + 8, 0xC0200000);
	put32(ph + 12, 0x200000);
	put32(ph + 16, 0x800);
	put32(ph + 20, 0x1800);
	put32(ph + 28, 0x1000);
	for (i = MB_HDR + 12; i < MB_SIZE; i++)
		b[i] = i;
	mb_header(b + MB_HDR, 0x3);
	return b;
}

static void check_mb_info(struct tb *t, const char *append, uint64_t image_end,
			  const uint8_t *initrd, size_t initrd_len)
{
	struct e820_entry e820[E820_MAX];
	uint8_t *info = gpa(t, BOOT_PARAMS_ADDR, 72), *mod, *mm;
	unsigned n, i;

	assert_flat32(&t->s);
	assert_boot_gdt(t, 0x00CF9B000000FFFFull);
	g_assert_cmphex(t->s.gpr[R_RAX], ==, 0x2BADB002);
	g_assert_cmphex(t->s.gpr[R_RBX], ==, BOOT_PARAMS_ADDR);
	g_assert_cmphex(get32(info) & 0x24D, ==, 0x24D);	/* mem cmdline mods mmap name */
	g_assert_cmpuint(get32(info + 4), ==, 639);
	g_assert_cmpuint(get32(info + 8), ==, (64 * MiB - MiB) >> 10);
	g_assert_cmphex(get32(info + 16), ==, BOOT_CMDLINE_ADDR);
	g_assert_cmpstr((char *)gpa(t, BOOT_CMDLINE_ADDR, strlen(append) + 1), ==, append);
	g_assert_cmpstr((char *)gpa(t, get32(info + 64), 6), ==, "vireo");
	n = machine_e820(&t->m, e820, E820_MAX);
	g_assert_cmpuint(get32(info + 44), ==, n * 24);
	mm = gpa(t, get32(info + 48), n * 24);
	for (i = 0; i < n; i++) {
		g_assert_cmpuint(get32(mm + 24 * i), ==, 20);
		g_assert_cmphex(get64(mm + 24 * i + 4), ==, e820[i].addr);
		g_assert_cmphex(get64(mm + 24 * i + 12), ==, e820[i].size);
		g_assert_cmpuint(get32(mm + 24 * i + 20), ==, e820[i].type);
	}
	g_assert_cmpuint(get32(info + 20), ==, 1);
	mod = gpa(t, get32(info + 24), 16);
	g_assert_cmphex(get32(mod) & 0xFFF, ==, 0);
	g_assert_cmphex(get32(mod), >=, image_end);
	g_assert_cmphex(get32(mod), <, image_end + 0x1000);	/* right after the image */
	g_assert_cmphex(get32(mod + 4), ==, get32(mod) + initrd_len);
	g_assert_cmphex(get32(mod + 8), ==, BOOT_CMDLINE_ADDR);
	g_assert_cmpmem(gpa(t, get32(mod), initrd_len), initrd_len, initrd, initrd_len);
}

static void test_multiboot_elf(void)
{
	uint8_t *b = mb_elf_make(), initrd[100];
	struct tb t;
	unsigned i;

	memset(initrd, 0x77, sizeof(initrd));
	tm_init(&t, 64 * MiB);
	tm_set_kernel(&t, b, MB_SIZE);
	tm_set_initrd(&t, initrd, sizeof(initrd));
	t.m.cfg.append = "mb args";
	memset(gpa(&t, 0x200000, 0x1800), 0xEE, 0x1800);
	g_assert_cmpint(tm_boot(&t), ==, 0);
	g_assert_cmphex(t.s.rip, ==, 0x200020);		/* e_entry translated */
	g_assert_cmpmem(gpa(&t, 0x200000, 0x800), 0x800, b + 0x1000, 0x800);
	for (i = 0x800; i < 0x1800; i++)
		g_assert_cmpuint(*gpa(&t, 0x200000 + i, 1), ==, 0);
	check_mb_info(&t, "mb args", 0x201800, initrd, sizeof(initrd));
	tm_destroy(&t);
	g_free(b);
}

/* Raw image, header at 0x40: loaded at 1 MiB, bss to 1 MiB + 0x3000. */
#define KL_SIZE		0x1000

static uint8_t *mb_kludge_make(void)
{
	uint8_t *b = g_malloc0(KL_SIZE), *h = b + 0x40;
	unsigned i;

	for (i = 0; i < KL_SIZE; i++)
		b[i] = i + 9;
	mb_header(h, 0x10003);
	put32(h + 12, 0x100040);	/* header_addr */
	put32(h + 16, 0x100000);	/* load_addr */
	put32(h + 20, 0);		/* load_end_addr: whole file */
	put32(h + 24, 0x103000);	/* bss_end_addr */
	put32(h + 28, 0x100080);	/* entry_addr */
	return b;
}

static void test_multiboot_kludge(void)
{
	uint8_t *b = mb_kludge_make(), initrd[5000];
	struct tb t;
	unsigned i;

	memset(initrd, 0x42, sizeof(initrd));
	tm_init(&t, 64 * MiB);
	tm_set_kernel(&t, b, KL_SIZE);
	tm_set_initrd(&t, initrd, sizeof(initrd));
	t.m.cfg.append = "";
	memset(gpa(&t, 0x100000, 0x3000), 0xEE, 0x3000);
	g_assert_cmpint(tm_boot(&t), ==, 0);
	g_assert_cmphex(t.s.rip, ==, 0x100080);
	g_assert_cmpmem(gpa(&t, 0x100000, KL_SIZE), KL_SIZE, b, KL_SIZE);
	for (i = KL_SIZE; i < 0x3000; i++)
		g_assert_cmpuint(*gpa(&t, 0x100000 + i, 1), ==, 0);
	check_mb_info(&t, "", 0x103000, initrd, sizeof(initrd));
	tm_destroy(&t);

	/* load_end_addr: only the first 0x800 bytes of the file are the image. */
	put32(b + 0x40 + 20, 0x100800);
	tm_init(&t, 64 * MiB);
	tm_set_kernel(&t, b, KL_SIZE);
	memset(gpa(&t, 0x100000, 0x3000), 0xEE, 0x3000);
	g_assert_cmpint(tm_boot(&t), ==, 0);
	g_assert_cmpuint(*gpa(&t, 0x100800, 1), ==, 0);
	g_assert_cmpuint(*gpa(&t, 0x1007FF, 1), ==, b[0x7FF]);
	tm_destroy(&t);
	g_free(b);
}

static void test_multiboot_bad(void)
{
	uint8_t *b = mb_kludge_make(), *e = mb_elf_make();
	uint8_t *c = g_malloc(MB_SIZE), *h = c + 0x40;
	struct tb t;

	tm_init(&t, 64 * MiB);
#define MUTATE(stmt, what) do {					\
		memcpy(c, b, KL_SIZE);				\
		stmt;						\
		expect_fail(&t, c, KL_SIZE, what);		\
	} while (0)
	MUTATE(put32(h + 8, 0), "bad checksum");
	MUTATE(mb_header(h, 0x10023), "requires features");
	MUTATE(put32(h + 20, 0x101800), "truncated");
	MUTATE(put32(h + 20, 0xFFFFF), "below load_addr");
	MUTATE(put32(h + 16, 0x100080), "above header_addr");
	MUTATE(put32(h + 16, 0x0FFF00), "before the start of the file");
	MUTATE((put32(h + 12, 0xA0040), put32(h + 16, 0xA0000), put32(h + 24, 0),
		put32(h + 28, 0xA0080)), "outside guest RAM");
	MUTATE((put32(h + 12, 0x7040), put32(h + 16, 0x7000), put32(h + 24, 0),
		put32(h + 28, 0x7080)), "boot structures");
	MUTATE(put32(h + 24, 0x100010), "bss_end_addr");
	MUTATE(put32(h + 24, 0xFFFFFFFF), "outside guest RAM");
	MUTATE(put32(h + 28, 0x200000), "entry_addr");
	MUTATE(mb_header(h, 0x3), "neither ELF nor");
#undef MUTATE
	/* Header fields past the end of a file cut inside the header. */
	expect_fail(&t, b, 0x40 + 20, "truncated");

	memcpy(c, e, MB_SIZE);
	put32(c + 24, 0xC0300000);
	expect_fail(&t, c, MB_SIZE, "entry point");
	memcpy(c, e, MB_SIZE);
	put32(c + 52 + 12, 0xFFFFF000);
	expect_fail(&t, c, MB_SIZE, "outside guest RAM");
	/* A 64-bit ELF without a PVH note but with a multiboot header. */
	g_free(c);
	c = pvh_make(false);
	put16(c + 60, 0);
	mb_header(c + 0x1000, 3);
	expect_fail(&t, c, PVH_SIZE, "64-bit ELF");
	tm_destroy(&t);
	g_free(b);
	g_free(e);
	g_free(c);
}

/* ---- any file ---- */

static void test_not_a_kernel(void)
{
	uint8_t junk[4096];
	struct tb t;
	char *dir;
	unsigned i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = i * 13;
	tm_init(&t, 16 * MiB);
	expect_fail(&t, junk, sizeof(junk), "not a bzImage, PVH ELF or multiboot kernel");
	expect_fail(&t, junk, 0, "empty");
	tm_set_kernel(&t, junk, 1);
	unlink(t.kernel);
	g_assert_cmpint(tm_boot(&t), <, 0);
	g_assert_nonnull(strstr(t.err, "cannot open"));
	dir = g_dir_make_tmp("vireo-boot-XXXXXX", NULL);
	t.m.cfg.kernel = dir;
	g_assert_cmpint(tm_boot(&t), <, 0);
	g_assert_nonnull(strstr(t.err, "regular file"));
	rmdir(dir);
	g_free(dir);
	/* The initrd must exist too. */
	tm_set_kernel(&t, junk, sizeof(junk));
	t.m.cfg.initrd = "/nonexistent/initrd.img";
	g_assert_cmpint(tm_boot(&t), <, 0);
	g_assert_nonnull(strstr(t.err, "/nonexistent/initrd.img"));
	tm_destroy(&t);
}

/*
 * Every prefix of each image, and images with bytes flipped at random,
 * must load or fail cleanly (run under ASan, a read past the file's end or
 * a write outside RAM shows up here).
 */
static void test_fuzz(void)
{
	struct { uint8_t *img; size_t len; } imgs[] = {
		{ bz_make(), BZ_SIZE }, { pvh_make(true), PVH_SIZE },
		{ mb_elf_make(), MB_SIZE }, { mb_kludge_make(), KL_SIZE },
	};
	GRand *r = g_rand_new_with_seed(1234);
	uint8_t *c = g_malloc(0x4000);
	unsigned i, k, n;
	size_t len;
	struct tb t;

	tm_init(&t, 8 * MiB);
	for (i = 0; i < G_N_ELEMENTS(imgs); i++) {
		for (len = 1; len < imgs[i].len; len += 61) {
			tm_set_kernel(&t, imgs[i].img, len);
			if (tm_boot(&t) < 0)
				g_assert_cmpstr(t.err, !=, "");
		}
		for (k = 0; k < 300; k++) {
			memcpy(c, imgs[i].img, imgs[i].len);
			for (n = 0; n < 4; n++) {
				/* Bias towards the headers, where the fields are. */
				size_t at = g_rand_int_range(r, 0, n & 1 ? imgs[i].len : 0x300);

				c[at] = g_rand_int(r);
			}
			tm_set_kernel(&t, c, imgs[i].len);
			if (tm_boot(&t) < 0)
				g_assert_cmpstr(t.err, !=, "");
		}
		g_free(imgs[i].img);
	}
	g_rand_free(r);
	g_free(c);
	tm_destroy(&t);
}

/* ---- a real kernel, when the host or the build has one ---- */

static void test_real_linux(void)
{
	char *path = NULL;
	struct tb t;
	glob_t g;

	if (!access("build/guests/linux/vmlinuz", R_OK)) {
		path = g_strdup("build/guests/linux/vmlinuz");
	} else if (!glob("/boot/vmlinuz*", 0, NULL, &g)) {
		if (!access(g.gl_pathv[0], R_OK))
			path = g_strdup(g.gl_pathv[0]);
		globfree(&g);
	}
	if (!path) {
		g_test_skip("no readable Linux kernel in /boot/vmlinuz* or build/guests/linux/vmlinuz");
		return;
	}
	tm_init(&t, 512 * MiB);
	t.m.cfg.kernel = path;
	t.m.cfg.append = "console=ttyS0 panic=-1";
	if (tm_boot(&t))
		g_error("%s", t.err);
	g_assert_cmpuint(t.s.cs.l, ==, 1);
	g_assert_cmphex(t.s.efer & EFER_LMA, ==, EFER_LMA);
	g_assert_cmphex(t.s.gpr[R_RSI], ==, BOOT_PARAMS_ADDR);
	/*
	 * The decompressor's 64-bit entry (load address + 0x200), or, for the
	 * gzip/LZ4/zstd payloads vireo unpacks (Debian's is LZ4), startup_64
	 * of vmlinux at CONFIG_PHYSICAL_START, 2 MiB aligned (boot_vmlinux.c).
	 */
	g_assert_cmphex(t.s.rip, >=, BOOT_KERNEL_ADDR);
	g_assert_true((t.s.rip & 0xFFF) == 0x200 || (t.s.rip & 0x1FFFFF) == 0);
	g_assert_cmpmem(gpa(&t, BOOT_PARAMS_ADDR + 0x202, 4), 4, "HdrS", 4);
	/* The 64-bit entry holds code, not the zeroes of unloaded RAM. */
	g_assert_cmphex(get64(gpa(&t, t.s.rip, 8)), !=, 0);
	tm_destroy(&t);
	g_free(path);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/boot/bzimage", test_bzimage);
	g_test_add_func("/boot/bzimage_bad", test_bzimage_bad);
	g_test_add_func("/boot/pvh", test_pvh);
	g_test_add_func("/boot/pvh_bad", test_pvh_bad);
	g_test_add_func("/boot/pvh_over_multiboot", test_pvh_over_multiboot);
	g_test_add_func("/boot/multiboot_elf", test_multiboot_elf);
	g_test_add_func("/boot/multiboot_kludge", test_multiboot_kludge);
	g_test_add_func("/boot/multiboot_bad", test_multiboot_bad);
	g_test_add_func("/boot/not_a_kernel", test_not_a_kernel);
	g_test_add_func("/boot/fuzz", test_fuzz);
	g_test_add_func("/boot/real_linux", test_real_linux);
	return g_test_run();
}
