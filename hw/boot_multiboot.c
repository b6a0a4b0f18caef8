/*
 * Multiboot v1 (the Multiboot Specification 0.6.96): a header in the first
 * 8 KiB of the file, an ELF32 image or the a.out kludge's address fields,
 * an information structure with the memory map, command line and the
 * initrd as module 0, and entry in flat 32-bit protected mode with
 * eax = 0x2BADB002 and ebx = the information structure.
 */
#include <inttypes.h>
#include <string.h>

#include <glib.h>

#include "boot.h"
#include "log.h"
#include "hw/boot_priv.h"

#define MB_MAGIC		0x1BADB002u
#define MB_BOOT_MAGIC		0x2BADB002u
#define MB_SEARCH		8192
#define MB_HDR_SIZE		12
#define MB_KLUDGE_SIZE		32

#define MB_F_PAGE_ALIGN		(1u << 0)	/* modules page aligned: always */
#define MB_F_MEMINFO		(1u << 1)	/* memory info: always given */
#define MB_F_VIDEO		(1u << 2)	/* video mode table: none */
#define MB_F_REQUIRED		0xFFFFu
#define MB_F_KNOWN		(MB_F_PAGE_ALIGN | MB_F_MEMINFO | MB_F_VIDEO)
#define MB_F_AOUT_KLUDGE	(1u << 16)

#define MBI_MEM			(1u << 0)
#define MBI_CMDLINE		(1u << 2)
#define MBI_MODS		(1u << 3)
#define MBI_MMAP		(1u << 6)
#define MBI_LOADER_NAME		(1u << 9)

/* The information structure, up to the fields this loader fills. */
struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
} __attribute__((packed));

struct mb_module {
	uint32_t mod_start, mod_end, string, reserved;
} __attribute__((packed));

/* The size field counts the bytes after itself. */
struct mb_mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

/* Where the pieces go inside the BOOT_PARAMS_ADDR block. */
#define MBI_NAME_OFF		0x80
#define MBI_MODS_OFF		0x100
#define MBI_MMAP_OFF		0x200
#define MB_LOADER_NAME		"vireo"

G_STATIC_ASSERT(sizeof(struct mb_info) <= MBI_NAME_OFF);
G_STATIC_ASSERT(MBI_MMAP_OFF + E820_MAX * sizeof(struct mb_mmap_entry) <= BOOT_PARAMS_SIZE);

/* Returns the header offset, -1 if none; *bad: offset of a bad checksum. */
static long mb_find(const struct boot_ctx *c, long *bad)
{
	uint32_t magic, flags, sum;
	uint64_t off;

	*bad = -1;
	for (off = 0; off < MB_SEARCH && boot_in_file(c, off, MB_HDR_SIZE); off += 4) {
		boot_rd32(c, off, &magic);
		if (magic != MB_MAGIC)
			continue;
		boot_rd32(c, off + 4, &flags);
		boot_rd32(c, off + 8, &sum);
		if ((uint32_t)(magic + flags + sum) == 0)
			return off;
		if (*bad < 0)
			*bad = off;
	}
	return -1;
}

long boot_multiboot_find(const struct boot_ctx *c)
{
	long bad;

	return mb_find(c, &bad);
}

long boot_multiboot_bad_checksum(const struct boot_ctx *c)
{
	long bad;

	return mb_find(c, &bad) < 0 ? bad : -1;
}

/* The a.out kludge: the header names where the file's bytes go. */
static int mb_load_kludge(struct boot_ctx *c, uint64_t hdr, uint64_t *entry,
			  uint64_t *lo, uint64_t *hi)
{
	uint32_t header_addr, load_addr, load_end, bss_end, entry_addr;
	uint64_t load_off, filesz, memsz;
	int ret;

	if (!boot_in_file(c, hdr, MB_KLUDGE_SIZE))
		return boot_fail(c, "truncated: the multiboot header's address fields end past the end of the file");
	boot_rd32(c, hdr + 12, &header_addr);
	boot_rd32(c, hdr + 16, &load_addr);
	boot_rd32(c, hdr + 20, &load_end);
	boot_rd32(c, hdr + 24, &bss_end);
	boot_rd32(c, hdr + 28, &entry_addr);

	if (load_addr > header_addr)
		return boot_fail(c, "multiboot load_addr 0x%x is above header_addr 0x%x",
				 load_addr, header_addr);
	if (header_addr - load_addr > hdr)
		return boot_fail(c, "multiboot load_addr 0x%x lies before the start of the file "
				 "(header_addr 0x%x, header at offset 0x%" PRIx64 ")",
				 load_addr, header_addr, hdr);
	load_off = hdr - (header_addr - load_addr);
	if (!load_end) {
		filesz = c->size - load_off;
	} else {
		if (load_end < load_addr)
			return boot_fail(c, "multiboot load_end_addr 0x%x is below load_addr 0x%x",
					 load_end, load_addr);
		filesz = load_end - load_addr;
	}
	if (!bss_end) {
		memsz = filesz;
	} else {
		if (bss_end < load_addr || bss_end - load_addr < filesz)
			return boot_fail(c, "multiboot bss_end_addr 0x%x is below the end of the image", bss_end);
		memsz = bss_end - load_addr;
	}
	if (!memsz)
		return boot_fail(c, "multiboot image is empty");
	ret = boot_copy(c, load_addr, load_off, filesz, memsz, "multiboot image");
	if (ret)
		return ret;
	if (entry_addr < load_addr || entry_addr - load_addr >= memsz)
		return boot_fail(c, "multiboot entry_addr 0x%x lies outside the image 0x%x-0x%" PRIx64,
				 entry_addr, load_addr, load_addr + memsz);
	*entry = entry_addr;
	*lo = load_addr;
	*hi = load_addr + memsz;
	return 0;
}

static int mb_load_elf(struct boot_ctx *c, uint64_t *entry, uint64_t *lo, uint64_t *hi)
{
	struct boot_elf e;
	int ret;

	ret = boot_elf_parse(c, &e);
	if (ret < 0)
		return ret;
	if (!ret)
		return boot_fail(c, "multiboot kernel is neither ELF nor has address fields (flag 16)");
	if (e.is64)
		return boot_fail(c, "multiboot kernel is a 64-bit ELF; multiboot v1 loads ELF32 images");
	ret = boot_elf_load(c, &e, e.entry, false, entry, lo, hi);
	if (ret)
		return ret;
	if (*hi > MEM_4G)
		return boot_fail(c, "multiboot image reaches above 4 GiB");
	return 0;
}

/* KiB of RAM from addr on, through abutting e820 RAM entries. */
static uint32_t mb_ram_kib_from(const struct boot_ctx *c, uint64_t addr, uint64_t limit)
{
	uint64_t cur = addr;
	unsigned i;
	bool more = true;

	while (more && cur < limit) {
		more = false;
		for (i = 0; i < c->nr_e820; i++) {
			const struct e820_entry *e = &c->e820[i];

			if (e->type == E820_RAM && cur >= e->addr && cur - e->addr < e->size) {
				cur = MIN(e->addr + e->size, limit);
				more = true;
				break;
			}
		}
	}
	return (cur - addr) >> 10;
}

static void mb_info_build(struct boot_ctx *c, uint8_t *blk, uint64_t initrd_gpa)
{
	struct mb_info info = {
		.flags = MBI_MEM | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER_NAME,
		.mem_lower = mb_ram_kib_from(c, 0, 640 << 10),
		/* Contiguous RAM from 1 MiB, at most to 4 GiB (32-bit field). */
		.mem_upper = mb_ram_kib_from(c, 1 << 20, MEM_4G),
		.cmdline = BOOT_CMDLINE_ADDR,
		.mods_addr = BOOT_PARAMS_ADDR + MBI_MODS_OFF,
		.mmap_addr = BOOT_PARAMS_ADDR + MBI_MMAP_OFF,
		.mmap_length = c->nr_e820 * sizeof(struct mb_mmap_entry),
		.boot_loader_name = BOOT_PARAMS_ADDR + MBI_NAME_OFF,
	};
	unsigned i;

	if (c->initrd_path) {
		struct mb_module mod = {
			.mod_start = initrd_gpa,
			.mod_end = initrd_gpa + c->initrd_size,
			.string = BOOT_CMDLINE_ADDR,
		};

		memcpy(blk + MBI_MODS_OFF, &mod, sizeof(mod));
		info.mods_count = 1;
	}
	for (i = 0; i < c->nr_e820; i++) {
		struct mb_mmap_entry me = {
			.size = sizeof(me) - sizeof(me.size),
			.addr = c->e820[i].addr,
			.len = c->e820[i].size,
			.type = c->e820[i].type,
		};

		memcpy(blk + MBI_MMAP_OFF + i * sizeof(me), &me, sizeof(me));
	}
	memcpy(blk + MBI_NAME_OFF, MB_LOADER_NAME, sizeof(MB_LOADER_NAME));
	memcpy(blk, &info, sizeof(info));
}

int boot_multiboot_load(struct boot_ctx *c, long hdr, struct cpu_state *bsp)
{
	uint64_t entry = 0, lo, hi, initrd_gpa = 0;
	uint32_t flags;
	uint8_t *blk;
	int ret;

	boot_rd32(c, hdr + 4, &flags);
	if (flags & MB_F_REQUIRED & ~MB_F_KNOWN)
		return boot_fail(c, "multiboot header requires features this loader lacks (flags 0x%x)",
				 flags);
	if (flags & MB_F_VIDEO)
		log_warn("%s: multiboot video mode requested; the kernel gets none", c->path);

	if (flags & MB_F_AOUT_KLUDGE)
		ret = mb_load_kludge(c, hdr, &entry, &lo, &hi);
	else
		ret = mb_load_elf(c, &entry, &lo, &hi);
	if (ret)
		return ret;
	ret = boot_cmdline_write(c, BOOT_CMDLINE_MAX - 1, "limit");
	if (ret)
		return ret;
	/* Modules follow the image, as GRUB and QEMU place them. */
	if (c->initrd_path) {
		ret = boot_initrd_place(c, hi, MIN(c->lowmem_end, MEM_4G), false, &initrd_gpa);
		if (ret)
			return ret;
		ret = boot_initrd_load(c, initrd_gpa);
		if (ret)
			return ret;
	}
	blk = g_malloc0(BOOT_PARAMS_SIZE);
	mb_info_build(c, blk, initrd_gpa);
	ret = boot_write(c, BOOT_PARAMS_ADDR, blk, BOOT_PARAMS_SIZE);
	g_free(blk);
	if (ret)
		return ret;
	ret = boot_gdt_write(c, false);
	if (ret)
		return ret;

	cpu_state_flat32(bsp);
	bsp->gdt.base = BOOT_GDT_ADDR;
	bsp->gdt.limit = BOOT_GDT_SIZE - 1;
	bsp->rip = entry;
	bsp->gpr[R_RAX] = MB_BOOT_MAGIC;
	bsp->gpr[R_RBX] = BOOT_PARAMS_ADDR;
	return 0;
}
