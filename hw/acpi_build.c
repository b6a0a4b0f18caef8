/*
 * The ACPI tables, written into the BIOS area where a firmware would leave
 * them: RSDP (ACPI 2.0+), RSDT and XSDT, FADT (revision 6), FACS, DSDT in
 * AML, MADT and MCFG.  They describe what acpi.c and pci.c implement, from
 * the same constants.
 *
 * Everything goes to 0xE0000-0xEFFFF, reserved in the e820 map; the
 * 0xF0000 segment is left to the boot loaders' own tables.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "acpi.h"
#include "acpi_aml.h"
#include "acpi_internal.h"
#include "machine.h"
#include "memory.h"
#include "pci_internal.h"

#define ACPI_AREA_BASE		0xE0000
#define ACPI_AREA_SIZE		0x10000

#define ACPI_OEM_ID		"VIREO "
#define ACPI_OEM_TABLE_ID	"VIREO-PC"
#define ACPI_CREATOR_ID		"VIRE"
#define ACPI_HEADER_LEN		36

/* FADT flags (ACPI 6.x, table 5.10) and boot architecture flags. */
#define FADT_WBINVD		(1u << 0)
#define FADT_PROC_C1		(1u << 2)
#define FADT_SLP_BUTTON		(1u << 5)	/* no sleep button */
#define FADT_TMR_VAL_EXT	(1u << 8)
#define FADT_RESET_REG_SUP	(1u << 10)
#define BOOT_LEGACY_DEVICES	(1u << 0)
#define BOOT_8042		(1u << 1)
#define BOOT_VGA_NOT_PRESENT	(1u << 2)

#define GAS_SYSTEM_IO		1

/* MADT structures */
#define MADT_LOCAL_APIC		0
#define MADT_IO_APIC		1
#define MADT_INT_OVERRIDE	2
#define MADT_LOCAL_APIC_NMI	4
#define MADT_PCAT_COMPAT	1
#define MPS_INTI_HIGH_LEVEL	0x000D	/* active high, level triggered */

/* ---- byte helpers ------------------------------------------------------ */

static void put_le(GByteArray *t, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t b = v >> (8 * i);

		g_byte_array_append(t, &b, 1);
	}
}

static void put_str(GByteArray *t, const char *s, unsigned n)
{
	g_byte_array_append(t, (const uint8_t *)s, n);
}

static void put_zero(GByteArray *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		put_le(t, 0, 1);
}

static void patch_le(GByteArray *t, unsigned at, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		t->data[at + i] = v >> (8 * i);
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return -sum;
}

/* A Generic Address Structure for a port register. */
static void put_gas_io(GByteArray *t, unsigned bits, unsigned access, uint64_t port)
{
	put_le(t, GAS_SYSTEM_IO, 1);
	put_le(t, bits, 1);
	put_le(t, 0, 1);		/* bit offset */
	put_le(t, access, 1);		/* 1 byte, 2 word, 3 dword */
	put_le(t, port, 8);
}

static GByteArray *table_new(const char *sig, uint8_t rev)
{
	GByteArray *t = g_byte_array_new();

	put_str(t, sig, 4);
	put_le(t, 0, 4);		/* length, set by table_finish */
	put_le(t, rev, 1);
	put_le(t, 0, 1);		/* checksum */
	put_str(t, ACPI_OEM_ID, 6);
	put_str(t, ACPI_OEM_TABLE_ID, 8);
	put_le(t, 1, 4);		/* OEM revision */
	put_str(t, ACPI_CREATOR_ID, 4);
	put_le(t, 1, 4);		/* creator revision */
	return t;
}

/* ---- placement in the BIOS area --------------------------------------- */

struct acpi_area {
	uint8_t buf[ACPI_AREA_SIZE];
	unsigned used;
};

/* Copy a finished table in at the given alignment; returns its guest address. */
static uint64_t area_put(struct acpi_area *a, GByteArray *t, unsigned align, bool is_table)
{
	unsigned at = (a->used + align - 1) & ~(align - 1);
	uint64_t gpa = 0;

	if (is_table) {
		patch_le(t, 4, t->len, 4);
		t->data[9] = checksum(t->data, t->len);
	}
	if (at + t->len <= ACPI_AREA_SIZE) {
		memcpy(a->buf + at, t->data, t->len);
		a->used = at + t->len;
		gpa = ACPI_AREA_BASE + at;
	}
	g_byte_array_free(t, TRUE);
	return gpa;
}

/* ---- DSDT -------------------------------------------------------------- */

static void dsdt_pci_root(GByteArray *sb)
{
	GByteArray *dev = aml_new(), *res = aml_new(), *prt = aml_new();

	aml_name(dev, "_HID");
	aml_eisaid(dev, "PNP0A08");
	aml_name(dev, "_CID");
	aml_eisaid(dev, "PNP0A03");
	aml_name(dev, "_ADR");
	aml_integer(dev, 0);
	aml_name(dev, "_SEG");
	aml_integer(dev, 0);
	aml_name(dev, "_UID");
	aml_integer(dev, 0);
	aml_name(dev, "_BBN");
	aml_integer(dev, 0);

	/* Bus 0 alone; the config ports; every port but them; the 32-bit BAR window. */
	aml_res_word_bus(res, 0, 0);
	aml_res_io(res, PCI_CONFIG_ADDRESS, 8);
	aml_res_word_io(res, 0x0000, PCI_CONFIG_ADDRESS - 1);
	aml_res_word_io(res, PCI_CONFIG_ADDRESS + 8, PCI_IO_LIMIT - 1);
	aml_res_dword_mem(res, MEM_PCI_MMIO32_BASE, MEM_PCI_MMIO32_BASE + MEM_PCI_MMIO32_SIZE - 1,
			  false);
	aml_name(dev, "_CRS");
	aml_resources(dev, res);

	/* Each slot's INTA-D as pci.c wires them: straight to IOAPIC inputs. */
	for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			GByteArray *e = aml_new();

			aml_integer(e, (uint64_t)slot << 16 | 0xFFFF);
			aml_integer(e, pin);
			aml_integer(e, 0);		/* source: a GSI, not a link device */
			aml_integer(e, pci_intx_gsi(slot, pin));
			aml_package(prt, 4, e);
		}
	}
	aml_name(dev, "_PRT");
	aml_package(dev, PCI_MAX_SLOTS * 4, prt);

	aml_device(sb, "PCI0", dev);
}

/* Motherboard resources: what no device's _CRS claims but must stay unused. */
static void dsdt_motherboard(GByteArray *sb)
{
	GByteArray *dev = aml_new(), *res = aml_new();

	aml_name(dev, "_HID");
	aml_eisaid(dev, "PNP0C02");
	aml_name(dev, "_UID");
	aml_integer(dev, 1);
	/* Linux uses MCFG only if the ECAM window is reserved here. */
	aml_res_mem32_fixed(res, MEM_PCI_ECAM_BASE, MEM_PCI_ECAM_SIZE);
	aml_name(dev, "_CRS");
	aml_resources(dev, res);
	aml_device(sb, "MRES", dev);
}

/* Processor devices, their _UID matching the MADT's processor UIDs. */
static void dsdt_cpus(GByteArray *sb, unsigned nr)
{
	for (unsigned i = 0; i < nr; i++) {
		GByteArray *dev = aml_new();
		char name[5];

		snprintf(name, sizeof(name), "C%03X", i & 0xFFF);	/* i < MACHINE_MAX_VCPUS */
		aml_name(dev, "_HID");
		aml_string(dev, "ACPI0007");
		aml_name(dev, "_UID");
		aml_integer(dev, i);
		aml_device(sb, name, dev);
	}
}

static GByteArray *build_dsdt(struct machine *m)
{
	GByteArray *t = table_new("DSDT", 2), *s5 = aml_new(), *sb = aml_new();

	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved. */
	aml_integer(s5, ACPI_SLP_TYP_S5);
	aml_integer(s5, ACPI_SLP_TYP_S5);
	aml_integer(s5, 0);
	aml_integer(s5, 0);
	aml_name(t, "\\_S5");
	aml_package(t, 4, s5);

	dsdt_pci_root(sb);
	dsdt_motherboard(sb);
	dsdt_cpus(sb, m->nr_vcpus);
	aml_scope(t, "\\_SB", sb);
	return t;
}

/* ---- fixed tables ------------------------------------------------------ */

static GByteArray *build_facs(void)
{
	GByteArray *t = g_byte_array_new();

	put_str(t, "FACS", 4);
	put_le(t, 64, 4);
	put_le(t, 0, 4);		/* hardware signature */
	put_le(t, 0, 4);		/* firmware waking vector: no S3 */
	put_le(t, 0, 4);		/* global lock */
	put_le(t, 0, 4);		/* flags */
	put_le(t, 0, 8);		/* X waking vector */
	put_le(t, 2, 1);		/* version */
	put_zero(t, 3);
	put_le(t, 0, 4);		/* OSPM flags */
	put_zero(t, 24);
	return t;
}

static GByteArray *build_fadt(uint64_t facs, uint64_t dsdt)
{
	GByteArray *t = table_new("FACP", 6);

	put_le(t, facs, 4);			/* FIRMWARE_CTRL */
	put_le(t, dsdt, 4);			/* DSDT */
	put_le(t, 0, 1);			/* reserved */
	put_le(t, 0, 1);			/* preferred PM profile: unspecified */
	put_le(t, ACPI_SCI_IRQ, 2);		/* SCI_INT */
	put_le(t, 0, 4);			/* SMI_CMD: always in ACPI mode */
	put_le(t, 0, 1);			/* ACPI_ENABLE */
	put_le(t, 0, 1);			/* ACPI_DISABLE */
	put_le(t, 0, 1);			/* S4BIOS_REQ */
	put_le(t, 0, 1);			/* PSTATE_CNT */
	put_le(t, ACPI_PM1_EVT, 4);		/* PM1a_EVT_BLK */
	put_le(t, 0, 4);			/* PM1b_EVT_BLK */
	put_le(t, ACPI_PM1_CNT, 4);		/* PM1a_CNT_BLK */
	put_le(t, 0, 4);			/* PM1b_CNT_BLK */
	put_le(t, 0, 4);			/* PM2_CNT_BLK */
	put_le(t, ACPI_PM_TMR, 4);		/* PM_TMR_BLK */
	put_le(t, 0, 4);			/* GPE0_BLK */
	put_le(t, 0, 4);			/* GPE1_BLK */
	put_le(t, ACPI_PM1_EVT_LEN, 1);
	put_le(t, ACPI_PM1_CNT_LEN, 1);
	put_le(t, 0, 1);			/* PM2_CNT_LEN */
	put_le(t, ACPI_PM_TMR_LEN, 1);
	put_le(t, 0, 1);			/* GPE0_BLK_LEN */
	put_le(t, 0, 1);			/* GPE1_BLK_LEN */
	put_le(t, 0, 1);			/* GPE1_BASE */
	put_le(t, 0, 1);			/* CST_CNT */
	put_le(t, 101, 2);			/* P_LVL2_LAT: no C2 */
	put_le(t, 1001, 2);			/* P_LVL3_LAT: no C3 */
	put_le(t, 0, 2);			/* FLUSH_SIZE */
	put_le(t, 0, 2);			/* FLUSH_STRIDE */
	put_le(t, 0, 1);			/* DUTY_OFFSET */
	put_le(t, 0, 1);			/* DUTY_WIDTH */
	put_le(t, 0, 1);			/* DAY_ALRM */
	put_le(t, 0, 1);			/* MON_ALRM */
	put_le(t, 0, 1);			/* CENTURY */
	put_le(t, BOOT_LEGACY_DEVICES | BOOT_8042 | BOOT_VGA_NOT_PRESENT, 2);
	put_le(t, 0, 1);			/* reserved */
	/* Power button as a fixed feature: PWR_BUTTON (bit 4) stays clear. */
	put_le(t, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_TMR_VAL_EXT |
		  FADT_RESET_REG_SUP, 4);
	put_gas_io(t, 8, 1, ACPI_RESET_PORT);	/* RESET_REG */
	put_le(t, ACPI_RESET_VALUE, 1);
	put_le(t, 0, 2);			/* ARM_BOOT_ARCH */
	put_le(t, 0, 1);			/* FADT minor version */
	put_le(t, 0, 8);			/* X_FIRMWARE_CTRL: FIRMWARE_CTRL is used */
	put_le(t, dsdt, 8);			/* X_DSDT */
	put_gas_io(t, 8 * ACPI_PM1_EVT_LEN, 2, ACPI_PM1_EVT);
	put_zero(t, 12);			/* X_PM1b_EVT_BLK */
	put_gas_io(t, 8 * ACPI_PM1_CNT_LEN, 2, ACPI_PM1_CNT);
	put_zero(t, 12);			/* X_PM1b_CNT_BLK */
	put_zero(t, 12);			/* X_PM2_CNT_BLK */
	put_gas_io(t, 8 * ACPI_PM_TMR_LEN, 3, ACPI_PM_TMR);
	put_zero(t, 12);			/* X_GPE0_BLK */
	put_zero(t, 12);			/* X_GPE1_BLK */
	put_zero(t, 12);			/* SLEEP_CONTROL_REG */
	put_zero(t, 12);			/* SLEEP_STATUS_REG */
	put_le(t, 0, 8);			/* hypervisor vendor identity */
	return t;
}

static void madt_override(GByteArray *t, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	put_le(t, MADT_INT_OVERRIDE, 1);
	put_le(t, 10, 1);
	put_le(t, 0, 1);			/* bus: ISA */
	put_le(t, irq, 1);
	put_le(t, gsi, 4);
	put_le(t, flags, 2);
}

static GByteArray *build_madt(struct machine *m)
{
	GByteArray *t = table_new("APIC", 5);

	put_le(t, MEM_LAPIC_BASE, 4);
	put_le(t, MADT_PCAT_COMPAT, 4);		/* there are 8259s too */
	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		put_le(t, MADT_LOCAL_APIC, 1);
		put_le(t, 8, 1);
		put_le(t, i, 1);		/* processor UID */
		put_le(t, i, 1);		/* APIC ID */
		put_le(t, 1, 4);		/* enabled */
	}
	put_le(t, MADT_IO_APIC, 1);
	put_le(t, 12, 1);
	put_le(t, 0, 1);			/* IOAPIC ID */
	put_le(t, 0, 1);
	put_le(t, MEM_IOAPIC_BASE, 4);
	put_le(t, 0, 4);			/* GSI base */
	/* The PIT's IRQ 0 is wired to IOAPIC pin 2; the SCI is level, active high. */
	madt_override(t, 0, 2, 0);
	madt_override(t, ACPI_SCI_IRQ, ACPI_SCI_IRQ, MPS_INTI_HIGH_LEVEL);
	/* LINT1 of every local APIC is the NMI input. */
	put_le(t, MADT_LOCAL_APIC_NMI, 1);
	put_le(t, 6, 1);
	put_le(t, 0xFF, 1);			/* all processors */
	put_le(t, 0, 2);			/* flags: conforms to the bus */
	put_le(t, 1, 1);			/* LINT1 */
	return t;
}

static GByteArray *build_mcfg(void)
{
	GByteArray *t = table_new("MCFG", 1);

	put_zero(t, 8);
	put_le(t, MEM_PCI_ECAM_BASE, 8);
	put_le(t, 0, 2);			/* segment */
	put_le(t, 0, 1);			/* first bus */
	put_le(t, MEM_PCI_ECAM_SIZE / (1 << 20) - 1, 1);	/* last bus ECAM decodes */
	put_zero(t, 4);
	return t;
}

static GByteArray *build_rsdt(const uint64_t *tables, unsigned n, bool x)
{
	GByteArray *t = table_new(x ? "XSDT" : "RSDT", 1);

	for (unsigned i = 0; i < n; i++)
		put_le(t, tables[i], x ? 8 : 4);
	return t;
}

static GByteArray *build_rsdp(uint64_t rsdt, uint64_t xsdt)
{
	GByteArray *t = g_byte_array_new();

	put_str(t, "RSD PTR ", 8);
	put_le(t, 0, 1);			/* checksum of the first 20 bytes */
	put_str(t, ACPI_OEM_ID, 6);
	put_le(t, 2, 1);			/* revision: ACPI 2.0+ */
	put_le(t, rsdt, 4);
	put_le(t, 36, 4);			/* length */
	put_le(t, xsdt, 8);
	put_le(t, 0, 1);			/* extended checksum */
	put_zero(t, 3);
	t->data[8] = checksum(t->data, 20);
	t->data[32] = checksum(t->data, 36);
	return t;
}

int acpi_build(struct machine *m, char *err, size_t errlen)
{
	struct acpi_area *a = g_new0(struct acpi_area, 1);
	uint64_t rsdp, facs, dsdt, tables[3], rsdt, xsdt;
	int ret;

	/* The RSDP first, at the bottom of the area where a scan finds it soonest. */
	a->used = 64;
	facs = area_put(a, build_facs(), 64, false);
	dsdt = area_put(a, build_dsdt(m), 16, true);
	tables[0] = area_put(a, build_fadt(facs, dsdt), 16, true);
	tables[1] = area_put(a, build_madt(m), 16, true);
	tables[2] = area_put(a, build_mcfg(), 16, true);
	rsdt = area_put(a, build_rsdt(tables, 3, false), 16, true);
	xsdt = area_put(a, build_rsdt(tables, 3, true), 16, true);
	if (!facs || !dsdt || !tables[0] || !tables[1] || !tables[2] || !rsdt || !xsdt) {
		snprintf(err, errlen, "acpi: the tables do not fit in 0x%x bytes", ACPI_AREA_SIZE);
		ret = -ENOSPC;
		goto out;
	}
	a->used = 0;
	rsdp = area_put(a, build_rsdp(rsdt, xsdt), 16, false);
	ret = guest_write(&m->mem, ACPI_AREA_BASE, a->buf, ACPI_AREA_SIZE);
	if (ret) {
		snprintf(err, errlen, "acpi: guest RAM does not cover 0x%x-0x%x for the tables",
			 ACPI_AREA_BASE, ACPI_AREA_BASE + ACPI_AREA_SIZE - 1);
		goto out;
	}
	m->rsdp_addr = rsdp;
out:
	g_free(a);
	return ret;
}
