/*
 * Private to acpi.c (the PM registers) and acpi_build.c (the tables that
 * describe them): where the registers are and what they decode, so that
 * the FADT and the DSDT cannot disagree with the hardware.
 */
#ifndef VIREO_HW_ACPI_INTERNAL_H
#define VIREO_HW_ACPI_INTERNAL_H

/* The fixed-hardware PM block in port space. */
#define ACPI_PM_BASE		0x600
#define ACPI_PM1_EVT		(ACPI_PM_BASE + 0)	/* PM1_STS, PM1_EN: 2 + 2 bytes */
#define ACPI_PM1_EVT_LEN	4
#define ACPI_PM1_CNT		(ACPI_PM_BASE + 4)
#define ACPI_PM1_CNT_LEN	2
#define ACPI_PM_TMR		(ACPI_PM_BASE + 8)
#define ACPI_PM_TMR_LEN		4
#define ACPI_PM_LEN		12

#define ACPI_PM_TMR_HZ		3579545ull

/* PM1_STS / PM1_EN */
#define ACPI_PM1_GBL		(1u << 5)
#define ACPI_PM1_PWRBTN		(1u << 8)
#define ACPI_PM1_RTC		(1u << 10)
/* PM1_CNT */
#define ACPI_PM1_SCI_EN		(1u << 0)
#define ACPI_PM1_SLP_TYP_SHIFT	10
#define ACPI_PM1_SLP_TYP_MASK	(7u << ACPI_PM1_SLP_TYP_SHIFT)
#define ACPI_PM1_SLP_EN		(1u << 13)

/* The SLP_TYP that \_S5 names, and the only sleep state there is. */
#define ACPI_SLP_TYP_S5		5

#define ACPI_SCI_IRQ		9

/* Reset control register, as on PIIX/ICH: bit 2 resets, bit 1 asks a hard reset. */
#define ACPI_RESET_PORT		0xCF9
#define ACPI_RESET_VALUE	0x06
#define ACPI_RESET_RST_CPU	0x04

#endif
