/*
 * Parsers of the QEMU options that set a struct machine_config, for
 * main.c's command line (hw/cmdline.c).  Each returns 0, or -EINVAL with
 * err naming the option and the bad key or value.
 */
#ifndef VIREO_CMDLINE_H
#define VIREO_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cpu_topology;
struct machine_config;

/* -smp [cpus=]N[,sockets=S,cores=C,threads=T,maxcpus=M] */
int cmdline_smp(const char *arg, unsigned *cpus, struct cpu_topology *topo, char *err,
		size_t errlen);
/* -m [size=]SIZE */
int cmdline_mem(const char *arg, uint64_t *size, char *err, size_t errlen);
/* -machine [type=]q35[,accel=A][,...]: *accel gets a copy of accel= (g_free it). */
int cmdline_machine(const char *arg, struct machine_config *cfg, char **accel, char *err,
		    size_t errlen);
/* -rtc base=utc|localtime|DATE[,clock=host][,driftfix=none] */
int cmdline_rtc(const char *arg, int64_t *offset_ns, char *err, size_t errlen);
/* -overcommit mem-lock=on|off[,cpu-pm=off] */
int cmdline_overcommit(const char *arg, bool *mem_lock, char *err, size_t errlen);
/* -msg timestamp=on|off (sets log_timestamps) */
int cmdline_msg(const char *arg, char *err, size_t errlen);
/* -boot ...: checked, no effect (there is no firmware) */
int cmdline_boot(const char *arg, char *err, size_t errlen);

#endif
