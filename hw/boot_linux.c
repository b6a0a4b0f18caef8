/*
 * Linux bzImage through the 64-bit boot protocol (Documentation/arch/x86/
 * boot.rst, "64-bit boot protocol"): the protected-mode kernel is loaded
 * as is, the zero page (struct boot_params) is built from the file's setup
 * header, and the CPU enters long mode at the kernel's 64-bit entry with
 * an identity map of the first 4 GiB.  The real-mode setup code is never
 * run, so it is not loaded.  When vireo can unpack the payload itself, it
 * loads the vmlinux inside and enters startup_64 directly (boot_vmlinux.c).
 */
#include <inttypes.h>
#include <string.h>

#include <glib.h>

#include "boot.h"
#include "hw/boot_priv.h"

/* Setup header (offsets in the file and in the zero page alike). */
#define HDR_START		0x1F1
#define HDR_SETUP_SECTS		0x1F1
#define HDR_SYSSIZE		0x1F4
#define HDR_VID_MODE		0x1FA
#define HDR_JUMP		0x200
#define HDR_MAGIC		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_CODE32_START	0x214
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21C
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22C
#define HDR_KERNEL_ALIGNMENT	0x230
#define HDR_RELOCATABLE		0x234
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_HARDWARE_SUBARCH	0x23C
#define HDR_SETUP_DATA		0x250
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define HDR_END_2_12		0x268	/* through handover_offset */
#define HDR_END_MAX		0x290	/* the zero page's next field */

#define HDR_MAGIC_VALUE		0x53726448	/* "HdrS" */
#define LOADFLAGS_LOADED_HIGH	0x01
#define XLF_KERNEL_64		0x01

/* Zero page fields outside the setup header. */
#define ZP_ACPI_RSDP_ADDR	0x070
#define ZP_EXT_RAMDISK_IMAGE	0x0C0
#define ZP_EXT_RAMDISK_SIZE	0x0C4
#define ZP_EXT_CMD_LINE_PTR	0x0C8
#define ZP_E820_ENTRIES		0x1E8
#define ZP_E820_TABLE		0x2D0
#define ZP_E820_MAX		128
#define ZP_SIZE			0x1000

#define PROTO(maj, min)		((maj) << 8 | (min))
#define ENTRY64_OFFSET		0x200
#define MAX_KERNEL_ALIGN	(1ull << 30)
#define PT_PRESENT_RW		0x03ull
#define PT_PS			0x80ull

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v); put32(p + 4, v >> 32); }

bool boot_linux_probe(const struct boot_ctx *c)
{
	uint32_t magic;

	return boot_rd32(c, HDR_MAGIC, &magic) && magic == HDR_MAGIC_VALUE;
}

/* The fields this loader uses, read and checked once. */
struct linux_hdr {
	uint16_t version;
	uint64_t hdr_end;		/* file offset past the setup header */
	uint64_t koff, ksize;		/* protected-mode kernel in the file */
	uint32_t initrd_addr_max, kernel_alignment, cmdline_size, init_size;
	uint8_t relocatable;
	uint64_t pref_address;
};

static int linux_hdr_read(struct boot_ctx *c, struct linux_hdr *h)
{
	uint8_t setup_sects, jump_len, loadflags;
	uint16_t xloadflags;
	uint32_t syssize;

	if (!boot_rd8(c, HDR_JUMP + 1, &jump_len) || !boot_rd16(c, HDR_VERSION, &h->version))
		return boot_fail(c, "truncated: the file ends inside the setup header");
	if (h->version < PROTO(2, 12))
		return boot_fail(c, "Linux boot protocol %u.%02u is too old: the 64-bit entry needs 2.12 or newer",
				 h->version >> 8, h->version & 0xff);
	/* The header ends where the jump at 0x200 lands. */
	h->hdr_end = HDR_JUMP + 2 + jump_len;
	if (h->hdr_end < HDR_END_2_12 || h->hdr_end > HDR_END_MAX)
		return boot_fail(c, "setup header length 0x%" PRIx64 " does not match protocol %u.%02u",
				 h->hdr_end - HDR_START, h->version >> 8, h->version & 0xff);
	if (!boot_in_file(c, 0, h->hdr_end))
		return boot_fail(c, "truncated: the file ends inside the setup header");

	boot_rd8(c, HDR_LOADFLAGS, &loadflags);
	boot_rd16(c, HDR_XLOADFLAGS, &xloadflags);
	if (!(loadflags & LOADFLAGS_LOADED_HIGH))
		return boot_fail(c, "not a bzImage (loadflags LOADED_HIGH clear)");
	if (!(xloadflags & XLF_KERNEL_64))
		return boot_fail(c, "the kernel has no 64-bit entry point (xloadflags XLF_KERNEL_64 clear)");

	boot_rd8(c, HDR_SETUP_SECTS, &setup_sects);
	boot_rd32(c, HDR_SYSSIZE, &syssize);
	boot_rd32(c, HDR_INITRD_ADDR_MAX, &h->initrd_addr_max);
	boot_rd32(c, HDR_KERNEL_ALIGNMENT, &h->kernel_alignment);
	boot_rd8(c, HDR_RELOCATABLE, &h->relocatable);
	boot_rd32(c, HDR_CMDLINE_SIZE, &h->cmdline_size);
	boot_rd64(c, HDR_PREF_ADDRESS, &h->pref_address);
	boot_rd32(c, HDR_INIT_SIZE, &h->init_size);

	h->koff = ((uint64_t)(setup_sects ? setup_sects : 4) + 1) * 512;
	if (h->koff >= c->size)
		return boot_fail(c, "truncated: the setup code (0x%" PRIx64 " bytes) reaches the end of the file",
				 h->koff);
	h->ksize = c->size - h->koff;
	if (h->ksize < (uint64_t)syssize * 16)
		return boot_fail(c, "truncated: the kernel is 0x%" PRIx64 " bytes, its setup header says 0x%" PRIx64,
				 h->ksize, (uint64_t)syssize * 16);
	if (h->relocatable && (!h->kernel_alignment ||
			       (h->kernel_alignment & (h->kernel_alignment - 1)) ||
			       h->kernel_alignment > MAX_KERNEL_ALIGN))
		return boot_fail(c, "kernel_alignment 0x%x is not a power of two up to 1 GiB",
				 h->kernel_alignment);
	return 0;
}

/*
 * Where to put the kernel (*load) and where it will run and decompress
 * (*run, init_size bytes).  A relocatable kernel runs where it is loaded:
 * at pref_address when that fits, which spares it a copy, else at the
 * first aligned address from BOOT_KERNEL_ADDR.  A non-relocatable one is
 * loaded at the traditional 1 MiB and moves itself to pref_address.
 */
static int linux_place(struct boot_ctx *c, const struct linux_hdr *h,
		       uint64_t *load, uint64_t *run, uint64_t *footprint_end)
{
	uint64_t need = MAX((uint64_t)h->init_size, h->ksize);
	uint64_t align = h->kernel_alignment;
	int ret;

	if (h->relocatable) {
		if (h->pref_address >= BOOT_KERNEL_ADDR && !(h->pref_address & (align - 1)) &&
		    boot_is_ram(c, h->pref_address, need))
			*load = h->pref_address;
		else
			*load = (BOOT_KERNEL_ADDR + align - 1) & ~(align - 1);
		*run = *load;
	} else {
		*load = BOOT_KERNEL_ADDR;
		*run = h->pref_address ? h->pref_address : BOOT_KERNEL_ADDR;
	}
	ret = boot_check_dest(c, *load, h->ksize, "kernel");
	if (ret)
		return ret;
	ret = boot_check_dest(c, *run, need, "kernel init_size (memory to decompress in)");
	if (ret)
		return ret;
	*footprint_end = MAX(*load + h->ksize, *run + need);
	return 0;
}

/* Identity map of [0, 4 GiB) with 2 MiB pages: PML4, PDPT, four PDs. */
static int linux_page_tables(struct boot_ctx *c)
{
	uint64_t *pt = g_malloc0(6 * BOOT_PAGE);
	uint64_t pdpt = BOOT_PML4_ADDR + BOOT_PAGE;
	unsigned i;
	int ret;

	pt[0] = pdpt | PT_PRESENT_RW;
	for (i = 0; i < 4; i++)
		pt[512 + i] = (pdpt + (i + 1) * BOOT_PAGE) | PT_PRESENT_RW;
	for (i = 0; i < 4 * 512; i++)
		pt[1024 + i] = ((uint64_t)i << 21) | PT_PRESENT_RW | PT_PS;
	ret = boot_write(c, BOOT_PML4_ADDR, pt, 6 * BOOT_PAGE);
	g_free(pt);
	return ret;
}

static void linux_zero_page(struct boot_ctx *c, const struct linux_hdr *h, uint8_t *zp,
			    uint64_t load, uint64_t initrd_gpa)
{
	unsigned i, n = MIN(c->nr_e820, ZP_E820_MAX);

	memset(zp, 0, ZP_SIZE);
	memcpy(zp + HDR_START, c->buf + HDR_START, h->hdr_end - HDR_START);
	put16(zp + HDR_VID_MODE, 0xFFFF);		/* "normal" */
	zp[HDR_TYPE_OF_LOADER] = 0xFF;			/* undefined loader */
	put32(zp + HDR_CODE32_START, load);
	put32(zp + HDR_RAMDISK_IMAGE, c->initrd_path ? initrd_gpa : 0);
	put32(zp + HDR_RAMDISK_SIZE, c->initrd_path ? c->initrd_size : 0);
	put32(zp + HDR_CMD_LINE_PTR, BOOT_CMDLINE_ADDR);
	put32(zp + HDR_HARDWARE_SUBARCH, 0);		/* plain PC */
	put64(zp + HDR_HARDWARE_SUBARCH + 4, 0);
	put64(zp + HDR_SETUP_DATA, 0);			/* no setup_data chain */
	put32(zp + ZP_EXT_RAMDISK_IMAGE, 0);		/* all below 4 GiB */
	put32(zp + ZP_EXT_RAMDISK_SIZE, 0);
	put32(zp + ZP_EXT_CMD_LINE_PTR, 0);
	/* acpi_rsdp_addr is read by kernels of protocol 2.14 and later. */
	if (h->version >= PROTO(2, 14))
		put64(zp + ZP_ACPI_RSDP_ADDR, c->m->rsdp_addr);
	zp[ZP_E820_ENTRIES] = n;
	for (i = 0; i < n; i++)
		memcpy(zp + ZP_E820_TABLE + i * sizeof(struct e820_entry), &c->e820[i],
		       sizeof(struct e820_entry));
}

int boot_linux_load(struct boot_ctx *c, struct cpu_state *bsp)
{
	struct linux_hdr h;
	uint64_t load, run, end, entry, lo, hi, initrd_gpa = 0;
	bool unpacked;
	uint8_t *zp;
	int ret;

	ret = linux_hdr_read(c, &h);
	if (ret)
		return ret;
	ret = boot_vmlinux_load(c, h.koff, &entry, &lo, &hi, &unpacked);
	if (ret)
		return ret;
	if (unpacked) {
		/* The kernel runs where it was loaded and needs init_size from there. */
		load = run = lo;
		end = MAX(hi, lo + h.init_size);
	} else {
		ret = linux_place(c, &h, &load, &run, &end);
		if (ret)
			return ret;
		entry = load + ENTRY64_OFFSET;
	}
	ret = boot_cmdline_write(c, h.cmdline_size, "kernel's cmdline_size");
	if (ret)
		return ret;
	if (c->initrd_path) {
		uint64_t top = MIN((uint64_t)h.initrd_addr_max + 1, c->lowmem_end);

		ret = boot_initrd_place(c, end, top, true, &initrd_gpa);
		if (ret)
			return ret;
	}

	if (!unpacked) {
		ret = boot_copy(c, load, h.koff, h.ksize, h.ksize, "kernel");
		if (ret)
			return ret;
	}
	if (c->initrd_path) {
		ret = boot_initrd_load(c, initrd_gpa);
		if (ret)
			return ret;
	}
	zp = g_malloc(ZP_SIZE);
	linux_zero_page(c, &h, zp, load, initrd_gpa);
	ret = boot_write(c, BOOT_PARAMS_ADDR, zp, ZP_SIZE);
	g_free(zp);
	if (ret)
		return ret;
	ret = linux_page_tables(c);
	if (ret)
		return ret;
	ret = boot_gdt_write(c, true);
	if (ret)
		return ret;

	cpu_state_long64(bsp, BOOT_PML4_ADDR, BOOT_GDT_ADDR);
	bsp->rip = entry;
	bsp->gpr[R_RSI] = BOOT_PARAMS_ADDR;
	return 0;
}
