/*
 * Boot information of the 32-bit protocols, turned into struct bootinfo:
 * multiboot v1 (magic in eax, info in ebx) and PVH (hvm_start_info in ebx).
 */
#include "rt.h"

#define MB_BOOT_MAGIC		0x2badb002
#define MB_INFO_CMDLINE		(1u << 2)
#define MB_INFO_MMAP		(1u << 6)
#define PVH_START_MAGIC		0x336ec578

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4];
	uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mb_mmap {
	uint32_t size;			/* of the rest of the entry */
	uint64_t base, length;
	uint32_t type;
} __attribute__((packed));

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;		/* version 1 */
	uint32_t memmap_entries, reserved;
} __attribute__((packed));

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
} __attribute__((packed));

static struct bootinfo bootinfo;

static void mmap_add(struct bootinfo *bi, uint64_t base, uint64_t size, uint32_t type)
{
	if (bi->nr_mmap == MMAP_MAX)
		fail("more than %u memory map entries", MMAP_MAX);
	bi->mmap[bi->nr_mmap].base = base;
	bi->mmap[bi->nr_mmap].size = size;
	bi->mmap[bi->nr_mmap].type = type;
	bi->nr_mmap++;
}

static void parse_multiboot(struct bootinfo *bi, uint32_t magic, const struct mb_info *mbi)
{
	bi->proto = "multiboot";
	if (magic != MB_BOOT_MAGIC)
		fail("multiboot magic 0x%x, expected 0x%x", magic, MB_BOOT_MAGIC);
	if (mbi->flags & MB_INFO_CMDLINE)
		bi->cmdline = (const char *)(uintptr_t)mbi->cmdline;
	if (mbi->flags & MB_INFO_MMAP) {
		uint32_t off = 0;

		while (off + sizeof(struct mb_mmap) <= mbi->mmap_length) {
			const struct mb_mmap *e =
				(const void *)(uintptr_t)(mbi->mmap_addr + off);

			mmap_add(bi, e->base, e->length, e->type);
			off += e->size + 4;
		}
	}
}

static void parse_pvh(struct bootinfo *bi, const struct hvm_start_info *si)
{
	bi->proto = "pvh";
	if (si->magic != PVH_START_MAGIC)
		fail("PVH start_info magic 0x%x, expected 0x%x", si->magic, PVH_START_MAGIC);
	if (si->cmdline_paddr)
		bi->cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
	bi->rsdp = si->rsdp_paddr;
	if (si->version >= 1 && si->memmap_paddr) {
		const struct hvm_memmap_entry *e =
			(const void *)(uintptr_t)si->memmap_paddr;
		uint32_t i;

		for (i = 0; i < si->memmap_entries; i++)
			mmap_add(bi, e[i].addr, e[i].size, e[i].type);
	}
}

void rt_start32(uint32_t proto, uint32_t magic, uint32_t info);

void rt_start32(uint32_t proto, uint32_t magic, uint32_t info)
{
	struct bootinfo *bi = &bootinfo;

	serial_init();
	bi->cmdline = "";
	if (proto == 1)
		parse_multiboot(bi, magic, (const void *)(uintptr_t)info);
	else
		parse_pvh(bi, (const void *)(uintptr_t)info);
	guest_main(bi);
	guest_exit(EXIT_PASS);
}
