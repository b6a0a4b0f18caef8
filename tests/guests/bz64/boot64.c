/*
 * Boot information of the Linux 64-bit boot protocol: the zero page
 * (struct boot_params) holds the command line pointer in its setup header
 * and the e820 table.
 */
#include "rt/rt.h"

#define BP_ACPI_RSDP_ADDR	0x070	/* u64, protocol 2.14+ */
#define BP_EXT_CMD_LINE_PTR	0x0c8	/* u32, high half of the pointer */
#define BP_E820_ENTRIES		0x1e8	/* u8 */
#define BP_CMD_LINE_PTR		0x228	/* u32, in the setup header */
#define BP_E820_TABLE		0x2d0	/* 128 entries of 20 bytes */
#define BP_E820_MAX		128

struct boot_e820 {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

static struct bootinfo bootinfo;

void rt_start64(const uint8_t *bp);

void rt_start64(const uint8_t *bp)
{
	struct bootinfo *bi = &bootinfo;
	const struct boot_e820 *e = (const void *)(bp + BP_E820_TABLE);
	uint64_t cmd;
	unsigned i, n;

	serial_init();
	bi->proto = "linux";
	cmd = *(const uint32_t *)(bp + BP_CMD_LINE_PTR) |
	      (uint64_t)*(const uint32_t *)(bp + BP_EXT_CMD_LINE_PTR) << 32;
	bi->cmdline = cmd ? (const char *)(uintptr_t)cmd : "";
	memcpy(&bi->rsdp, bp + BP_ACPI_RSDP_ADDR, 8);
	n = bp[BP_E820_ENTRIES];
	if (n > BP_E820_MAX)
		fail("zero page: %u e820 entries, at most %u fit", n, BP_E820_MAX);
	if (n > MMAP_MAX)
		fail("zero page: %u e820 entries, this guest keeps %u", n, MMAP_MAX);
	for (i = 0; i < n; i++) {
		bi->mmap[i].base = e[i].addr;
		bi->mmap[i].size = e[i].size;
		bi->mmap[i].type = e[i].type;
	}
	bi->nr_mmap = n;
	guest_main(bi);
	guest_exit(EXIT_PASS);
}
