/*
 * Firmware-less boot: load the -kernel (Linux bzImage, PVH ELF or multiboot
 * v1 ELF), -initrd and -append into guest RAM and set the BSP's registers to
 * the entry state its protocol names.
 */
#ifndef VIREO_BOOT_H
#define VIREO_BOOT_H

#include <stddef.h>

#include "cpu.h"

struct machine;

/*
 * Low memory the loaders use (all below the EBDA at 0x9FC00, which the e820
 * map reserves together with the BIOS area where the ACPI tables live).
 */
#define BOOT_GDT_ADDR		0x0500
#define BOOT_PARAMS_ADDR	0x7000	/* Linux zero page / PVH start_info / multiboot info */
#define BOOT_PML4_ADDR		0x9000	/* identity map of the first 4 GiB: PML4, PDPT, 4 PDs */
#define BOOT_CMDLINE_ADDR	0x20000
#define BOOT_CMDLINE_MAX	0x10000
#define BOOT_KERNEL_ADDR	0x100000

/* Detect the kernel's format and load it; fills the BSP entry state. */
int boot_load(struct machine *m, struct cpu_state *bsp, char *err, size_t errlen);

#endif
