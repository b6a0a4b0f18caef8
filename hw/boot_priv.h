/*
 * Shared by the boot loaders (hw/boot*.c): the kernel file held in memory,
 * the guest's memory map, and the checked ways to place and write images
 * into guest RAM.  Private to hw/boot*.c.
 */
#ifndef VIREO_HW_BOOT_PRIV_H
#define VIREO_HW_BOOT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot.h"
#include "machine.h"

/*
 * Everything below this address belongs to the loaders (IVT, BDA, GDT,
 * parameter block, page tables, command line): no kernel byte goes there.
 */
#define BOOT_LOW_END		(BOOT_CMDLINE_ADDR + BOOT_CMDLINE_MAX)
#define BOOT_PARAMS_SIZE	0x2000	/* up to BOOT_PML4_ADDR */
#define BOOT_GDT_SIZE		(4 * 8)
#define BOOT_PAGE		0x1000ull

struct boot_ctx {
	struct machine *m;
	const struct guest_mem *mem;
	const char *path;		/* -kernel, named in every message */
	const uint8_t *buf;		/* the whole kernel file */
	size_t size;
	const char *cmdline;		/* -append, "" if none */
	size_t cmdline_len;
	struct e820_entry e820[E820_MAX];
	unsigned nr_e820;
	uint64_t lowmem_end;

	const char *initrd_path;	/* -initrd or NULL */
	int initrd_fd;
	uint64_t initrd_size;

	char *err;
	size_t errlen;
};

/* Fill err with "<kernel>: <message>"; returns -EINVAL. */
int boot_fail(struct boot_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same for the initrd file. */
int boot_fail_initrd(struct boot_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* [gpa, gpa+len) is usable RAM in the e820 map, backed by guest memory. */
bool boot_is_ram(const struct boot_ctx *c, uint64_t gpa, uint64_t len);
/*
 * Validate a destination for a piece of the kernel ("segment 2", "kernel"):
 * RAM, and clear of the loaders' low memory.  Fails with a message.
 */
int boot_check_dest(struct boot_ctx *c, uint64_t gpa, uint64_t len, const char *what);

/* Copy file bytes [off, off+filesz) to gpa and zero up to memsz. */
int boot_copy(struct boot_ctx *c, uint64_t gpa, uint64_t off, uint64_t filesz,
	      uint64_t memsz, const char *what);
/* Write loader-made data (structures in low memory). */
int boot_write(struct boot_ctx *c, uint64_t gpa, const void *data, size_t len);

/* Bounded little-endian reads from the kernel file; false past its end. */
bool boot_rd8(const struct boot_ctx *c, uint64_t off, uint8_t *v);
bool boot_rd16(const struct boot_ctx *c, uint64_t off, uint16_t *v);
bool boot_rd32(const struct boot_ctx *c, uint64_t off, uint32_t *v);
bool boot_rd64(const struct boot_ctx *c, uint64_t off, uint64_t *v);
/* The file holds [off, off+len). */
bool boot_in_file(const struct boot_ctx *c, uint64_t off, uint64_t len);

/*
 * Find a page-aligned home for the initrd in RAM inside [floor, top): the
 * highest one if high, else the lowest.  Fails with a message.
 */
int boot_initrd_place(struct boot_ctx *c, uint64_t floor, uint64_t top, bool high,
		      uint64_t *gpa);
/* Read the initrd into guest RAM at gpa (placed by boot_initrd_place). */
int boot_initrd_load(struct boot_ctx *c, uint64_t gpa);

/*
 * Write the command line at BOOT_CMDLINE_ADDR, refusing one longer than
 * max_len bytes (the terminating NUL not counted).
 */
int boot_cmdline_write(struct boot_ctx *c, size_t max_len, const char *limit_name);
/* The boot GDT: null, null, code 0x10 (64-bit if long_mode), data 0x18. */
int boot_gdt_write(struct boot_ctx *c, bool long_mode);

/* The formats: each returns 0 or fails with a message. */
bool boot_linux_probe(const struct boot_ctx *c);
int boot_linux_load(struct boot_ctx *c, struct cpu_state *bsp);

/*
 * A bzImage whose payload vireo can unpack (gzip, LZ4, zstd): load the
 * vmlinux ELF inside and give its physical entry (startup_64) and extent.
 * *loaded is false, with 0 returned, when the payload is left to the
 * guest's decompressor.
 */
int boot_vmlinux_load(struct boot_ctx *c, uint64_t koff, uint64_t *entry, uint64_t *lo,
		      uint64_t *hi, bool *loaded);

/* ELF images, 32- or 64-bit, normalized. */
struct boot_elf {
	bool is64;
	uint16_t machine;
	uint64_t entry;
	uint64_t phoff, shoff;
	uint16_t phentsize, phnum, shentsize, shnum;
};

struct boot_phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/* 1: an ELF image parsed into *e; 0: not ELF; <0: a broken ELF (message). */
int boot_elf_parse(struct boot_ctx *c, struct boot_elf *e);
/* Program header i (boot_elf_parse() checked the table lies in the file). */
void boot_elf_phdr(const struct boot_ctx *c, const struct boot_elf *e, unsigned i,
		   struct boot_phdr *ph);
/* 1 and *entry if the image has a Xen PVH entry note, 0 if not, <0 on error. */
int boot_elf_pvh_entry(struct boot_ctx *c, const struct boot_elf *e, uint64_t *entry);
/*
 * Load every PT_LOAD segment at its physical address; [*lo, *hi) bounds them.
 * The entry (a physical address, or a virtual one translated through the
 * segment holding it) must lie in a loaded segment below 4 GiB.
 */
int boot_elf_load(struct boot_ctx *c, const struct boot_elf *e, uint64_t entry,
		  bool entry_is_phys, uint64_t *entry_paddr, uint64_t *lo, uint64_t *hi);

int boot_pvh_load(struct boot_ctx *c, const struct boot_elf *e, uint64_t entry,
		  struct cpu_state *bsp);

/* Offset of a valid multiboot v1 header in the first 8 KiB, or -1. */
long boot_multiboot_find(const struct boot_ctx *c);
/* If there is none: the offset of a magic with a bad checksum, or -1. */
long boot_multiboot_bad_checksum(const struct boot_ctx *c);
int boot_multiboot_load(struct boot_ctx *c, long hdr_off, struct cpu_state *bsp);

#endif
