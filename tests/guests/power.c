/*
 * Power and reset paths a guest can take, chosen on the command line:
 *   off=acpi      enter S5 through the FADT's PM1a control block, with the
 *                 SLP_TYP the DSDT's \_S5 package gives (the VMM exits 0)
 *   reset=kbd     pulse the reset line through the i8042 (command 0xFE)
 *   reset=port92  fast reset through port 0x92 bit 0
 *   reset=cf9     the reset control register at 0xCF9 (FADT RESET_REG)
 * A reset reboots the machine: CMOS byte 0x40 survives it (as on a PC), so
 * the rebooted guest sees its own mark, prints "rebooted" and exits with
 * the pass status.  Under -no-reboot the VMM exits 0 at the reset instead.
 */
#include "rt/rt.h"

#define CMOS_MARK_REG	0x40
#define CMOS_MARK	0x5a

static uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void cmos_write(uint8_t reg, uint8_t v)
{
	outb(0x70, reg);
	outb(0x71, v);
}

static inline void outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

/* SLP_TYPa from the DSDT's Name(_S5, Package() {a, b, ...}). */
static int s5_slp_typ(uintptr_t dsdt)
{
	uint32_t len = *(const uint32_t *)(dsdt + 4);
	const uint8_t *p = (const uint8_t *)dsdt;

	for (uint32_t i = 36; i + 8 < len; i++) {
		const uint8_t *q;

		if (memcmp(p + i, "_S5_", 4))
			continue;
		q = p + i + 4;
		if (*q++ != 0x12)			/* PackageOp */
			continue;
		q += 1 + (*q >> 6);			/* PkgLength */
		q++;					/* NumElements */
		if (*q == 0x0a)				/* BytePrefix */
			return q[1];
		if (*q == 0x00 || *q == 0x01)		/* ZeroOp, OneOp */
			return *q;
	}
	return -1;
}

static void acpi_off(struct bootinfo *bi)
{
	uintptr_t fadt = acpi_find_table(bi, "FACP");
	uint32_t pm1a_cnt, dsdt;
	int typ;

	if (!fadt)
		fail("no FADT");
	pm1a_cnt = *(const uint32_t *)(fadt + 64);
	dsdt = *(const uint32_t *)(fadt + 40);
	typ = dsdt ? s5_slp_typ(dsdt) : -1;
	if (!pm1a_cnt || typ < 0)
		fail("no PM1a control block or no \\_S5 (pm1a_cnt=%x typ=%d)", pm1a_cnt, typ);
	printf("entering S5 (SLP_TYP %d) through port 0x%x\n", typ, pm1a_cnt);
	outw(pm1a_cnt, (uint16_t)(typ << 10 | 1 << 13));
	fail("still running after S5");
}

void guest_main(struct bootinfo *bi)
{
	const char *c = bi->cmdline;

	if (cmos_read(CMOS_MARK_REG) == CMOS_MARK) {
		cmos_write(CMOS_MARK_REG, 0);
		printf("rebooted\n");
		guest_exit(EXIT_PASS);
	}
	if (cmdline_has(c, "off=acpi"))
		acpi_off(bi);
	cmos_write(CMOS_MARK_REG, CMOS_MARK);
	if (cmdline_has(c, "reset=kbd")) {
		printf("reset through the i8042\n");
		outb(0x64, 0xfe);
	} else if (cmdline_has(c, "reset=port92")) {
		printf("reset through port 0x92\n");
		outb(0x92, 1);
	} else if (cmdline_has(c, "reset=cf9")) {
		printf("reset through 0xcf9\n");
		outb(0xcf9, 0x06);
	} else {
		fail("say off=acpi or reset=kbd|port92|cf9");
	}
	fail("still running after the reset");
}
