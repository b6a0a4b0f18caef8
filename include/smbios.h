/*
 * SMBIOS: the tables that tell a guest what machine it runs on (vendor,
 * product, serial number, UUID, chassis, OEM strings), which firmware
 * writes on a real PC and vireo writes itself, in the BIOS area where an
 * OS without EFI scans for them.  Linux shows them in /sys/class/dmi/id;
 * cloud-init and systemd read the serial number, the UUID and the OEM
 * strings (type 11) to find their configuration.
 */
#ifndef VIREO_SMBIOS_H
#define VIREO_SMBIOS_H

#include <stddef.h>

struct machine;
struct smbios_config;

/*
 * One -smbios type=N,key=value,... option, merged into *cfg (allocated
 * on first use).  Types 0, 1, 2, 3 and 11 with QEMU's keys; errors name
 * the key.
 */
int smbios_parse(struct smbios_config **cfg, const char *arg, char *err, size_t errlen);
void smbios_config_free(struct smbios_config *cfg);

/* Write the entry points and the table to guest RAM (at boot and every reset). */
int smbios_build(struct machine *m, char *err, size_t errlen);

#endif
