/*
 * ACPI: the tables a firmware-less guest finds (RSDP in the BIOS area,
 * XSDT, FADT, DSDT, MADT, MCFG), and the fixed-hardware PM registers behind
 * them: power button, S5 sleep (power-off), reset register.
 */
#ifndef VIREO_ACPI_H
#define VIREO_ACPI_H

#include <stddef.h>

struct machine;

/* Register the PM I/O ports (at machine_init, before devices). */
int acpi_init(struct machine *m, char *err, size_t errlen);
/* Write the tables to guest RAM and set m->rsdp_addr (at boot, after every device). */
int acpi_build(struct machine *m, char *err, size_t errlen);
/* Press the power button: the guest gets an SCI and should power off. */
void acpi_power_button(struct machine *m);

#endif
