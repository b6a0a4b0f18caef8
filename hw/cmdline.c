/*
 * The QEMU options that set the machine's configuration (struct
 * machine_config): -smp, -m, -machine, -rtc, -overcommit, -msg, -boot.
 * main.c reads the command line and calls these; each checks its whole
 * argument and names the bad key or value in err (see docs/cmdline.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "cmdline.h"
#include "log.h"
#include "machine.h"
#include "options.h"

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/*
 * -smp [cpus=]N,sockets=S,cores=C,threads=T,maxcpus=M.  With none of
 * S, C, T: one socket of N cores.  Otherwise, as QEMU: threads default
 * to 1, cores to what the sockets leave (or 1), sockets to the rest.
 */
int cmdline_smp(const char *arg, unsigned *out, struct cpu_topology *topo, char *err,
		size_t errlen)
{
	struct opts *o = opts_parse("-smp", arg, "cpus", err, errlen);
	uint64_t cpus, s, c, t, maxcpus;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	if (opts_get_uint(o, "cpus", 0, &cpus, err, errlen) ||
	    opts_get_uint(o, "sockets", 0, &s, err, errlen) ||
	    opts_get_uint(o, "cores", 0, &c, err, errlen) ||
	    opts_get_uint(o, "threads", 0, &t, err, errlen) ||
	    opts_get_uint(o, "maxcpus", 0, &maxcpus, err, errlen) ||
	    opts_check_all_used(o, err, errlen))
		goto out;
	/* Given, a level must have something in it (as QEMU); left out, it is computed. */
	if ((opts_get(o, "sockets") && !s) || (opts_get(o, "cores") && !c) ||
	    (opts_get(o, "threads") && !t)) {
		snprintf(err, errlen, "-smp %s: sockets, cores and threads must be at least 1", arg);
		goto out;
	}
	if (!cpus)
		cpus = maxcpus ? maxcpus : (s ? s : 1) * (c ? c : 1) * (t ? t : 1);
	if (!s && !c && !t) {
		s = t = 1;
		c = cpus;
	} else {
		t = t ? t : 1;
		if (s && !c)
			c = cpus / (s * t) ? cpus / (s * t) : 1;
		c = c ? c : 1;
		s = s ? s : (cpus / (c * t) ? cpus / (c * t) : 1);
	}
	if (cpus < 1 || cpus > MACHINE_MAX_VCPUS) {
		snprintf(err, errlen, "-smp %s: vireo supports 1 to %u vCPUs", arg,
			 MACHINE_MAX_VCPUS);
	} else if (maxcpus && maxcpus != cpus) {
		snprintf(err, errlen, "-smp %s: maxcpus must be the vCPU count: vireo does not "
			 "hot-plug vCPUs", arg);
	} else if (s * c * t != cpus) {
		snprintf(err, errlen, "-smp %s: sockets (%llu) x cores (%llu) x threads (%llu) "
			 "is not %llu vCPUs", arg, (unsigned long long)s, (unsigned long long)c,
			 (unsigned long long)t, (unsigned long long)cpus);
	} else if ((!is_pow2(t) && (s > 1 || c > 1)) || (s > 1 && !is_pow2(c))) {
		/* APIC IDs are the vCPU indexes: each level's field must be whole bits. */
		snprintf(err, errlen, "-smp %s: threads, and with more than one socket cores too, "
			 "must be powers of two", arg);
	} else {
		*out = cpus;
		*topo = (struct cpu_topology){ .sockets = s, .cores = c, .threads = t };
		ret = 0;
	}
out:
	opts_free(o);
	return ret;
}

int cmdline_mem(const char *arg, uint64_t *out, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-m", arg, "size", err, errlen);
	const char *size;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	size = opts_get(o, "size");
	if (!size || parse_size(size, 'M', out) || *out == 0) {
		snprintf(err, errlen, "-m %s: not a memory size (examples: 512M, 4G)", arg);
		goto out;
	}
	if (*out < (2 << 20) || *out % 4096) {
		snprintf(err, errlen, "-m %s: guest RAM must be a multiple of 4 KiB of at least 2 MiB",
			 arg);
		goto out;
	}
	ret = opts_check_all_used(o, err, errlen);
out:
	opts_free(o);
	return ret;
}

/*
 * -machine: vireo has one board, a Q35-style PCI Express host (the host
 * bridge answers as the Q35 MCH, ECAM at 0xE0000000) with no firmware,
 * named as QEMU names Q35.  The properties management tools pass are
 * taken when vireo does what they ask, and refused when it cannot.
 */
static bool machine_type_ok(const char *type)
{
	return !strcmp(type, "q35") || g_str_has_prefix(type, "pc-q35-");
}

int cmdline_machine(const char *arg, struct machine_config *cfg, char **accel_out, char *err,
		    size_t errlen)
{
	static const char *const irqchip_words[] = { "on", "split", "off", NULL };
	static const char *const auto_words[] = { "off", "auto", "on", NULL };
	struct opts *o = opts_parse("-machine", arg, "type", err, errlen);
	const char *type, *accel;
	bool dump, merge, usb, graphics;
	int irqchip, vmport, smm, ret = -EINVAL;

	if (!o)
		return -EINVAL;
	type = opts_get(o, "type");
	accel = opts_get(o, "accel");
	if (opts_get_bool(o, "dump-guest-core", true, &dump, err, errlen) ||
	    opts_get_bool(o, "mem-merge", true, &merge, err, errlen) ||
	    opts_get_bool(o, "usb", false, &usb, err, errlen) ||
	    opts_get_bool(o, "graphics", false, &graphics, err, errlen) ||
	    (irqchip = opts_get_enum(o, "kernel-irqchip", irqchip_words, 0, err, errlen)) < 0 ||
	    (vmport = opts_get_enum(o, "vmport", auto_words, 0, err, errlen)) < 0 ||
	    (smm = opts_get_enum(o, "smm", auto_words, 0, err, errlen)) < 0 ||
	    opts_check_all_used(o, err, errlen))
		goto out;
	if (type && !machine_type_ok(type)) {
		snprintf(err, errlen, "-machine %s: unknown machine type '%s'; vireo has one "
			 "board, 'q35' (also 'pc-q35-*'; -machine help)", arg, type);
	} else if (usb || graphics || vmport == 2 || smm == 2) {
		snprintf(err, errlen, "-machine %s: vireo's board has no %s", arg,
			 usb ? "USB controller (usb=off)" : graphics ? "display (graphics=off)" :
			 vmport == 2 ? "VMware port (vmport=off)" : "SMM (smm=off)");
	} else if (irqchip) {
		snprintf(err, errlen, "-machine %s: under KVM the interrupt controllers are "
			 "always in the kernel (kernel-irqchip=on)", arg);
	} else {
		if (accel) {
			g_free(*accel_out);
			*accel_out = g_strdup(accel);
		}
		cfg->no_dump_guest_core = !dump;
		cfg->no_mem_merge = !merge;
		ret = 0;
	}
out:
	opts_free(o);
	return ret;
}

/*
 * -rtc base=utc|localtime|DATE,clock=host,driftfix=none: where the guest's
 * RTC starts.  DATE is "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS", in UTC, and
 * the clock runs on from it.
 */
int cmdline_rtc(const char *arg, int64_t *offset_ns, char *err, size_t errlen)
{
	static const char *const clock_words[] = { "host", NULL };
	static const char *const drift_words[] = { "none", NULL };
	struct opts *o = opts_parse("-rtc", arg, "base", err, errlen);
	const int64_t limit = 100ll * 366 * 86400;	/* seconds: about 100 years */
	const char *base;
	time_t now = time(NULL);
	int64_t offset = 0;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	base = opts_get(o, "base");
	if (opts_get_enum(o, "clock", clock_words, 0, err, errlen) < 0 ||
	    opts_get_enum(o, "driftfix", drift_words, 0, err, errlen) < 0 ||
	    opts_check_all_used(o, err, errlen))
		goto out;
	if (!base || !strcmp(base, "utc")) {
		offset = 0;
	} else if (!strcmp(base, "localtime")) {
		struct tm tm;

		localtime_r(&now, &tm);
		offset = tm.tm_gmtoff;
	} else {
		struct tm tm = { 0 };
		const char *end = strptime(base, "%Y-%m-%dT%H:%M:%S", &tm);

		if (!end || *end) {
			memset(&tm, 0, sizeof(tm));
			end = strptime(base, "%Y-%m-%d", &tm);
		}
		if (!end || *end) {
			snprintf(err, errlen, "-rtc base=%s: expected utc, localtime, YYYY-MM-DD or "
				 "YYYY-MM-DDTHH:MM:SS", base);
			goto out;
		}
		offset = (int64_t)timegm(&tm) - now;
		if (offset < -limit || offset > limit) {
			snprintf(err, errlen, "-rtc base=%s: more than 100 years from now", base);
			goto out;
		}
	}
	*offset_ns = offset * 1000000000ll;
	ret = 0;
out:
	opts_free(o);
	return ret;
}

/* -overcommit mem-lock=on|off,cpu-pm=off */
int cmdline_overcommit(const char *arg, bool *mem_lock, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-overcommit", arg, NULL, err, errlen);
	bool cpu_pm;
	int ret;

	if (!o)
		return -EINVAL;
	ret = opts_get_bool(o, "mem-lock", false, mem_lock, err, errlen);
	if (!ret)
		ret = opts_get_bool(o, "cpu-pm", false, &cpu_pm, err, errlen);
	if (!ret)
		ret = opts_check_all_used(o, err, errlen);
	if (!ret && cpu_pm) {
		snprintf(err, errlen, "-overcommit %s: cpu-pm=on (guest-owned idle states) is "
			 "not supported", arg);
		ret = -EINVAL;
	}
	opts_free(o);
	return ret;
}

/* -msg timestamp=on|off */
int cmdline_msg(const char *arg, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-msg", arg, NULL, err, errlen);
	int ret;

	if (!o)
		return -EINVAL;
	ret = opts_get_bool(o, "timestamp", false, &log_timestamps, err, errlen);
	if (!ret)
		ret = opts_check_all_used(o, err, errlen);
	opts_free(o);
	return ret;
}

/*
 * -boot: firmware's boot order and menu.  vireo has no firmware and
 * always boots -kernel, as QEMU does when given -kernel, so the keys are
 * checked and have no effect.
 */
int cmdline_boot(const char *arg, char *err, size_t errlen)
{
	static const char *const keys[] = { "order", "once", "menu", "splash", "splash-time",
					    "reboot-timeout", "strict" };
	struct opts *o = opts_parse("-boot", arg, "order", err, errlen);
	int ret;

	if (!o)
		return -EINVAL;
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		opts_get(o, keys[i]);
	ret = opts_check_all_used(o, err, errlen);
	opts_free(o);
	return ret;
}
