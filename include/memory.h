/*
 * Guest physical memory: RAM regions backed by host memory, and the checked
 * translation from guest-physical addresses to host pointers that every
 * device must use for DMA.  A guest address is never dereferenced without
 * going through gpa_to_hva()/guest_read()/guest_write().
 */
#ifndef VIREO_MEMORY_H
#define VIREO_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MAX_RAM_REGIONS 4

/* The PC memory map (see docs/memory-map.md). */
#define MEM_LOWMEM_LIMIT	0xC0000000ull	/* RAM below 4G ends here at most */
#define MEM_PCI_MMIO32_BASE	0xC0000000ull	/* 32-bit PCI BAR window */
#define MEM_PCI_MMIO32_SIZE	0x20000000ull
#define MEM_PCI_ECAM_BASE	0xE0000000ull	/* 256 buses x 1 MiB */
#define MEM_PCI_ECAM_SIZE	0x10000000ull
#define MEM_IOAPIC_BASE		0xFEC00000ull
#define MEM_LAPIC_BASE		0xFEE00000ull
#define MEM_4G			0x100000000ull

struct ram_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	unsigned slot;		/* accelerator slot number */
};

struct guest_mem {
	uint8_t *base;		/* one mapping for all RAM */
	uint64_t ram_size;	/* -m */
	size_t map_size;
	int fd;			/* -mem-path file, or -1 */
	struct ram_region r[GUEST_MAX_RAM_REGIONS];
	unsigned nr;
	/*
	 * Pages written by devices (DMA through a host pointer), one bit per
	 * 4 KiB page of each region: the accelerator's dirty log sees only
	 * the vCPUs' writes.  Allocated at the first guest_mem_dirty_start and
	 * kept until guest_mem_destroy, so a device marking a page never races
	 * with a free.
	 */
	unsigned long *dev_dirty[GUEST_MAX_RAM_REGIONS];
	bool dev_logging;
};

/*
 * Map guest RAM (anonymous, or a hugetlbfs file under mem_path) and split
 * it around the 32-bit PCI hole.  On error returns -errno and fills err.
 */
int guest_mem_init(struct guest_mem *gm, uint64_t ram_size, const char *mem_path,
		   bool prealloc, char *err, size_t errlen);
void guest_mem_destroy(struct guest_mem *gm);

/* Host pointer for [gpa, gpa+len) if all of it is RAM in one region, else NULL. */
void *gpa_to_hva(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy to/from guest RAM; -EFAULT if any byte is outside RAM. */
int guest_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len);
int guest_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len);

/*
 * Device dirty log, for migration.  A device that wrote len bytes at hva
 * (a pointer it got from gpa_to_hva) marks them; outside logging this is
 * one load.  Migration starts the log, ORs region i's marks into its own
 * bitmap (and clears them) at each sync, and stops it.
 */
void guest_mem_mark_dirty(const struct guest_mem *gm, const void *hva, size_t len);
int guest_mem_dirty_start(struct guest_mem *gm);
void guest_mem_dirty_sync(const struct guest_mem *gm, unsigned i, unsigned long *bitmap);
void guest_mem_dirty_stop(struct guest_mem *gm);

/* Top of RAM below 4G (end of the first region). */
uint64_t guest_mem_lowmem_end(const struct guest_mem *gm);

#endif
