/*
 * vireo: command line (a QEMU subset, same spelling and meaning) and the
 * process lifecycle.  Exit status: 0 on guest power-off, (v << 1) | 1 for
 * isa-debug-exit, 1 on any VMM error, with a message naming the cause.
 */
#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "log.h"
#include "machine.h"

#define VIREO_VERSION "0.1.0"

static void usage(void)
{
	printf("usage: vireo [options]\n"
	       "  -accel kvm|tcg|xen[:...]   accelerators to try, in order (default kvm:tcg)\n"
	       "  -enable-kvm                same as -accel kvm\n"
	       "  -m SIZE                    guest RAM (default 128M; suffixes K M G T)\n"
	       "  -smp N[,cpus=N,sockets=S,cores=C,threads=T]  vCPUs (default 1)\n"
	       "  -kernel FILE               bzImage, PVH ELF or multiboot kernel\n"
	       "  -initrd FILE               initial ramdisk\n"
	       "  -append STRING             kernel command line\n"
	       "  -mem-path DIR              back RAM with a file in DIR (hugetlbfs)\n"
	       "  -mem-prealloc              allocate all RAM at start\n"
	       "  -serial stdio|file:PATH|unix:PATH,server=on,wait=off|none  (repeatable: COM1..COM4)\n"
	       "  -nographic                 no display; serial on stdio (the default)\n"
	       "  -display none              accepted for compatibility\n"
	       "  -nodefaults                no default serial port\n"
	       "  -device TYPE[,opts]        add a device (-device help lists them)\n"
	       "  -drive file=PATH[,opts]    add a disk (see docs/cmdline.md)\n"
	       "  -no-reboot                 exit instead of rebooting\n"
	       "  -name NAME                 VM name\n"
	       "  -version, -help\n"
	       "See docs/cmdline.md for every option.\n");
}

static int parse_smp(const char *arg, unsigned *out, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-smp", arg, "cpus", err, errlen);
	uint64_t cpus, sockets, cores, threads, maxcpus;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	if (opts_get_uint(o, "cpus", 0, &cpus, err, errlen) ||
	    opts_get_uint(o, "sockets", 1, &sockets, err, errlen) ||
	    opts_get_uint(o, "cores", 1, &cores, err, errlen) ||
	    opts_get_uint(o, "threads", 1, &threads, err, errlen) ||
	    opts_get_uint(o, "maxcpus", 0, &maxcpus, err, errlen) ||
	    opts_check_all_used(o, err, errlen))
		goto out;
	if (!cpus)
		cpus = sockets * cores * threads;
	if (cpus < 1 || cpus > MACHINE_MAX_VCPUS || (maxcpus && maxcpus < cpus)) {
		snprintf(err, errlen, "-smp %s: vireo supports 1 to %u vCPUs", arg,
			 MACHINE_MAX_VCPUS);
		goto out;
	}
	*out = cpus;
	ret = 0;
out:
	opts_free(o);
	return ret;
}

static int parse_mem(const char *arg, uint64_t *out, char *err, size_t errlen)
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

static gboolean on_signal(gpointer opaque)
{
	/* SIGINT/SIGTERM: stop the guest and exit 0; disks are flushed on the way out. */
	machine_quit(opaque, 0, "host-signal");
	return G_SOURCE_CONTINUE;
}

static void watch_signals(struct machine *m)
{
	static const int sigs[] = { SIGINT, SIGTERM };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		GSource *s = g_unix_signal_source_new(sigs[i]);

		g_source_set_callback(s, on_signal, m, NULL);
		g_source_attach(s, m->ctx);
		g_source_unref(s);
	}
}

struct cmdline {
	struct machine_config cfg;
	GPtrArray *devices, *drives;
	unsigned nr_serial;
	bool nodefaults;
};

/* Returns 0 to go on, 1 to exit 0 (help/version), -1 on error (message in err). */
static int parse_args(int argc, char **argv, struct cmdline *c, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *arg = i + 1 < argc ? argv[i + 1] : NULL;

		if (opt[0] == '-' && opt[1] == '-')
			opt++;
#define TAKES_ARG() do {						\
		if (!arg) {						\
			snprintf(err, errlen, "option %s needs an argument", argv[i]); \
			return -1;					\
		}							\
		i++;							\
	} while (0)
		if (!strcmp(opt, "-help") || !strcmp(opt, "-h")) {
			usage();
			return 1;
		} else if (!strcmp(opt, "-version")) {
			printf("vireo version %s\n", VIREO_VERSION);
			return 1;
		} else if (!strcmp(opt, "-accel")) {
			TAKES_ARG();
			c->cfg.accel = arg;
		} else if (!strcmp(opt, "-enable-kvm")) {
			c->cfg.accel = "kvm";
		} else if (!strcmp(opt, "-m")) {
			TAKES_ARG();
			if (parse_mem(arg, &c->cfg.ram_size, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-smp")) {
			TAKES_ARG();
			if (parse_smp(arg, &c->cfg.smp, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-kernel")) {
			TAKES_ARG();
			c->cfg.kernel = arg;
		} else if (!strcmp(opt, "-initrd")) {
			TAKES_ARG();
			c->cfg.initrd = arg;
		} else if (!strcmp(opt, "-append")) {
			TAKES_ARG();
			c->cfg.append = arg;
		} else if (!strcmp(opt, "-mem-path")) {
			TAKES_ARG();
			c->cfg.mem_path = arg;
		} else if (!strcmp(opt, "-mem-prealloc")) {
			c->cfg.mem_prealloc = true;
		} else if (!strcmp(opt, "-serial")) {
			TAKES_ARG();
			if (c->nr_serial == 4) {
				snprintf(err, errlen, "-serial %s: at most 4 serial ports", arg);
				return -1;
			}
			c->cfg.serial[c->nr_serial++] = strcmp(arg, "none") ? arg : NULL;
		} else if (!strcmp(opt, "-nographic")) {
			/* Serial on stdio is already the default. */
		} else if (!strcmp(opt, "-display")) {
			TAKES_ARG();
			if (strcmp(arg, "none")) {
				snprintf(err, errlen, "-display %s: vireo has no display; use -display none",
					 arg);
				return -1;
			}
		} else if (!strcmp(opt, "-nodefaults")) {
			c->nodefaults = true;
		} else if (!strcmp(opt, "-device")) {
			TAKES_ARG();
			if (!strcmp(arg, "help")) {
				printf("Devices:\n");
				device_types_print();
				return 1;
			}
			g_ptr_array_add(c->devices, (gpointer)arg);
		} else if (!strcmp(opt, "-drive")) {
			TAKES_ARG();
			g_ptr_array_add(c->drives, (gpointer)arg);
		} else if (!strcmp(opt, "-no-reboot")) {
			c->cfg.no_reboot = true;
		} else if (!strcmp(opt, "-name")) {
			TAKES_ARG();
			c->cfg.name = arg;
		} else {
			snprintf(err, errlen, "unknown option '%s' (vireo -help lists them)", argv[i]);
			return -1;
		}
#undef TAKES_ARG
	}
	if (!c->cfg.kernel) {
		snprintf(err, errlen, "no -kernel given: vireo boots a kernel directly, without firmware");
		return -1;
	}
	if (!c->nr_serial && !c->nodefaults)
		c->cfg.serial[0] = "stdio";
	return 0;
}

int main(int argc, char **argv)
{
	struct cmdline c = {
		.cfg = { .ram_size = 128 << 20, .smp = 1, .accel = "kvm:tcg" },
	};
	struct machine m;
	char err[512] = "";
	int status = 1, ret;

	c.devices = g_ptr_array_new();
	c.drives = g_ptr_array_new();
	ret = parse_args(argc, argv, &c, err, sizeof(err));
	if (ret) {
		if (ret < 0)
			log_error("%s", err);
		status = ret < 0 ? 1 : 0;
		goto out_args;
	}

	if (machine_init(&m, &c.cfg, err, sizeof(err)))
		goto fail;
	for (unsigned i = 0; i < c.devices->len; i++)
		if (machine_add_device(&m, c.devices->pdata[i], err, sizeof(err)))
			goto fail;
	if (machine_boot(&m, err, sizeof(err)))
		goto fail;

	watch_signals(&m);
	status = machine_run(&m);
	machine_destroy(&m);
	goto out_args;
fail:
	log_error("%s", err);
	machine_destroy(&m);
	status = 1;
out_args:
	g_ptr_array_free(c.devices, TRUE);
	g_ptr_array_free(c.drives, TRUE);
	return status;
}
