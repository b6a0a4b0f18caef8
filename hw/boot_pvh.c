/*
 * PVH: an ELF kernel with a Xen PHYS32_ENTRY note (the Xen PVH boot ABI,
 * docs/misc/pvh.pandoc in Xen; Linux's CONFIG_PVH).  Segments are loaded at
 * their physical addresses and the CPU enters flat 32-bit protected mode,
 * paging off, at the note's entry with ebx pointing at an hvm_start_info.
 */
#include <inttypes.h>
#include <string.h>

#include <glib.h>

#include "boot.h"
#include "hw/boot_priv.h"

#define HVM_START_MAGIC		0x336ec578
#define HVM_START_VERSION	1

/* The layout of struct hvm_start_info and its tables (xen/arch-x86/hvm/start_info.h). */
struct pvh_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries, reserved;
} __attribute__((packed));

struct pvh_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
} __attribute__((packed));

struct pvh_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
} __attribute__((packed));

/* Where the pieces go inside the BOOT_PARAMS_ADDR block. */
#define PVH_MODLIST_OFF		0x40
#define PVH_MEMMAP_OFF		0x80

G_STATIC_ASSERT(sizeof(struct pvh_start_info) == 56);
G_STATIC_ASSERT(PVH_MODLIST_OFF >= sizeof(struct pvh_start_info));
G_STATIC_ASSERT(PVH_MEMMAP_OFF >= PVH_MODLIST_OFF + sizeof(struct pvh_modlist_entry));
G_STATIC_ASSERT(PVH_MEMMAP_OFF + E820_MAX * sizeof(struct pvh_memmap_entry) <= BOOT_PARAMS_SIZE);

int boot_pvh_load(struct boot_ctx *c, const struct boot_elf *e, uint64_t entry,
		  struct cpu_state *bsp)
{
	uint8_t *blk = g_malloc0(BOOT_PARAMS_SIZE);
	struct pvh_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = HVM_START_VERSION,
		.cmdline_paddr = BOOT_CMDLINE_ADDR,
		.rsdp_paddr = c->m->rsdp_addr,
		.memmap_paddr = BOOT_PARAMS_ADDR + PVH_MEMMAP_OFF,
		.memmap_entries = c->nr_e820,
	};
	uint64_t entry_paddr, lo, hi, initrd_gpa;
	unsigned i;
	int ret;

	ret = boot_elf_load(c, e, entry, true, &entry_paddr, &lo, &hi);
	if (ret)
		goto out;
	ret = boot_cmdline_write(c, BOOT_CMDLINE_MAX - 1, "limit");
	if (ret)
		goto out;
	if (c->initrd_path) {
		struct pvh_modlist_entry mod = { .size = c->initrd_size };

		ret = boot_initrd_place(c, hi, MIN(c->lowmem_end, MEM_4G), true, &initrd_gpa);
		if (ret)
			goto out;
		ret = boot_initrd_load(c, initrd_gpa);
		if (ret)
			goto out;
		mod.paddr = initrd_gpa;
		memcpy(blk + PVH_MODLIST_OFF, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = BOOT_PARAMS_ADDR + PVH_MODLIST_OFF;
	}
	for (i = 0; i < c->nr_e820; i++) {
		struct pvh_memmap_entry me = {
			.addr = c->e820[i].addr,
			.size = c->e820[i].size,
			.type = c->e820[i].type,	/* same numbering as e820 */
		};

		memcpy(blk + PVH_MEMMAP_OFF + i * sizeof(me), &me, sizeof(me));
	}
	memcpy(blk, &si, sizeof(si));
	ret = boot_write(c, BOOT_PARAMS_ADDR, blk, BOOT_PARAMS_SIZE);
	if (ret)
		goto out;
	ret = boot_gdt_write(c, false);
	if (ret)
		goto out;

	cpu_state_flat32(bsp);
	bsp->gdt.base = BOOT_GDT_ADDR;
	bsp->gdt.limit = BOOT_GDT_SIZE - 1;
	bsp->rip = entry_paddr;
	bsp->gpr[R_RBX] = BOOT_PARAMS_ADDR;
out:
	g_free(blk);
	return ret;
}
