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
#include <sys/mman.h>
#include <time.h>

#include "block.h"
#include "cmdline.h"
#include "daemon.h"
#include "log.h"
#include "machine.h"
#include "migration.h"
#include "monitor.h"
#include "smbios.h"
#include "version.h"
#include "virtio.h"


static void usage(void)
{
	printf("usage: vireo [options]\n"
	       "  -accel kvm|tcg|xen[:...]   accelerators to try, in order (default kvm:tcg);\n"
	       "                             kvm,dirty-ring-size=N: KVM dirty ring for migration\n"
	       "  -enable-kvm                same as -accel kvm\n"
	       "  -machine [q35][,accel=A][,dump-guest-core=on|off][,mem-merge=on|off]  (-machine help)\n"
	       "  -cpu host|max[,+F|-F...][,migratable=on|off][,kvm=on|off]  CPU model (-cpu help)\n"
	       "  -rtc base=utc|localtime|DATE  where the guest's clock starts\n"
	       "  -smbios type=0|1|2|3|11,KEY=VALUE...  SMBIOS fields (serial, uuid, OEM strings)\n"
	       "  -overcommit mem-lock=on|off  lock all memory (guest RAM too) in host RAM\n"
	       "  -msg timestamp=on|off      time-stamp vireo's messages\n"
	       "  -boot ..., -no-user-config, -no-hpet, -net none, -nic none,\n"
	       "  -global kvm-pit.lost_tick_policy=delay\n"
	       "                             accepted as QEMU's, no effect (docs/cmdline.md)\n"
	       "  -m SIZE                    guest RAM (default 128M; suffixes K M G T)\n"
	       "  -smp N[,cpus=N,sockets=S,cores=C,threads=T]  vCPUs (default 1)\n"
	       "  -kernel FILE               bzImage, PVH ELF or multiboot kernel\n"
	       "  -initrd FILE               initial ramdisk\n"
	       "  -append STRING             kernel command line\n"
	       "  -mem-path DIR              back RAM with a file in DIR (hugetlbfs)\n"
	       "  -mem-prealloc              allocate all RAM at start\n"
	       "  -serial stdio|file:PATH|unix:PATH|tcp:HOST:PORT,server=on,wait=off|pty|none  (COM1..4)\n"
	       "  -nographic                 no display; serial on stdio (the default)\n"
	       "  -display none              accepted for compatibility\n"
	       "  -nodefaults                no default serial port\n"
	       "  -device TYPE[,opts]        add a device (-device help lists them)\n"
	       "  -drive file=PATH[,opts]    add a disk (see docs/cmdline.md)\n"
	       "  -no-reboot                 exit instead of rebooting\n"
	       "  -no-shutdown               stay (paused) when the guest powers off\n"
	       "  -S                         start with the vCPUs paused (QMP cont starts them)\n"
	       "  -incoming URI|defer        wait for a migration (tcp:, unix:, exec:, fd:, file:)\n"
	       "  -qmp unix:PATH|tcp:HOST:PORT,server=on,wait=off  serve QMP (repeatable)\n"
	       "  -chardev socket,id=ID,path=PATH|host=H,port=P,server=on,wait=off\n"
	       "  -mon chardev=ID,mode=control  serve QMP on that chardev\n"
	       "  -name NAME[,debug-threads=on]  VM name\n"
	       "  -uuid UUID                 VM UUID\n"
	       "  -pidfile PATH              write the process id to PATH\n"
	       "  -daemonize                 detach once the VM is up\n"
	       "  -d ITEM[,ITEM...]          debug log items (-d help lists them)\n"
	       "  -D FILE                    write the debug log to FILE (default stderr)\n"
	       "  -version, -help\n"
	       "See docs/cmdline.md for every option.\n");
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
	GPtrArray *devices, *drives, *qmp, *chardevs;
	unsigned nr_serial;
	bool nodefaults, daemonize;
	bool accel_set;			/* -accel or -enable-kvm given */
	bool mem_lock;			/* -overcommit mem-lock=on */
	char *machine_accel;		/* -machine accel= */
	const char *pidfile;
	const char *incoming;
};

/*
 * -chardev BACKEND,id=ID,...: remembered as the spec -serial and -qmp take
 * ("unix:PATH,server=on,wait=off", "pty", ...), for -mon chardev=ID,
 * -serial chardev:ID and -device isa-serial,chardev=ID to name.
 */
static int add_chardev(struct cmdline *c, const char *arg, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-chardev", arg, "backend", err, errlen);
	const char *backend, *id, *path, *host, *port, *server, *wait, *fd;
	char *spec = NULL;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	backend = opts_get(o, "backend");
	id = opts_get(o, "id");
	path = opts_get(o, "path");
	host = opts_get(o, "host");
	port = opts_get(o, "port");
	server = opts_get(o, "server");
	wait = opts_get(o, "wait");
	fd = opts_get(o, "fd");
	if (opts_check_all_used(o, err, errlen))
		goto out;
	if (!id) {
		snprintf(err, errlen, "-chardev %s: id= is required", arg);
	} else if (!backend) {
		snprintf(err, errlen, "-chardev %s: no backend", arg);
	} else if (!strcmp(backend, "socket")) {
		if ((path != NULL) + (port != NULL) + (fd != NULL) != 1)
			snprintf(err, errlen, "-chardev %s: give path=, host=,port= or fd=", arg);
		else if (fd)
			/* A socket the parent left listening (libvirt): QMP only. */
			spec = g_strdup_printf("fd:%s,server=%s,wait=%s", fd,
					       server ? server : "off", wait ? wait : "on");
		else if (path)
			spec = g_strdup_printf("unix:%s,server=%s,wait=%s", path,
					       server ? server : "off", wait ? wait : "on");
		else
			spec = g_strdup_printf("tcp:%s:%s,server=%s,wait=%s", host ? host : "",
					       port, server ? server : "off", wait ? wait : "on");
	} else if (!strcmp(backend, "file") && path && !host && !port && !server && !wait && !fd) {
		spec = g_strdup_printf("file:%s", path);
	} else if ((!strcmp(backend, "pty") || !strcmp(backend, "stdio") ||
		    !strcmp(backend, "null")) && !path && !host && !port && !server && !wait &&
		   !fd) {
		spec = g_strdup(backend);
	} else {
		snprintf(err, errlen, "-chardev %s: expected socket (path= or host=,port=), "
			 "file (path=), pty, stdio or null", arg);
	}
	if (spec) {
		g_ptr_array_add(c->chardevs, g_strdup(id));
		g_ptr_array_add(c->chardevs, spec);
		ret = 0;
	}
out:
	opts_free(o);
	return ret;
}

/* The spec of -chardev id=ID, or NULL. */
static const char *chardev_spec(struct cmdline *c, const char *id)
{
	for (unsigned i = 0; id && i < c->chardevs->len; i += 2)
		if (!strcmp(c->chardevs->pdata[i], id))
			return c->chardevs->pdata[i + 1];
	return NULL;
}

/*
 * -device isa-serial,chardev=ID[,index=N][,id=...], libvirt's way to give
 * a port its backend: the port is COM(N+1), or the next one free.
 */
static int add_isa_serial(struct cmdline *c, const char *optstr, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-device", optstr, "driver", err, errlen);
	const char *spec;
	uint64_t index;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	opts_get(o, "driver");
	opts_get(o, "id");
	spec = chardev_spec(c, opts_get(o, "chardev"));
	if (opts_get_uint(o, "index", c->nr_serial, &index, err, errlen) ||
	    opts_check_all_used(o, err, errlen))
		goto out;
	if (!spec) {
		snprintf(err, errlen, "-device %s: chardev= must name a -chardev given before it",
			 optstr);
	} else if (index >= 4 || c->cfg.serial[index]) {
		snprintf(err, errlen, "-device %s: COM%llu is %s", optstr,
			 (unsigned long long)index + 1, index >= 4 ? "not there (index 0 to 3)" :
			 "taken already");
	} else {
		c->cfg.serial[index] = spec;
		c->nr_serial = MAX(c->nr_serial, (unsigned)index + 1);
		ret = 0;
	}
out:
	opts_free(o);
	return ret;
}

static int add_device(struct cmdline *c, const char *arg, char *err, size_t errlen)
{
	/* -device {"driver": ..., ...}: libvirt's spelling since QEMU 6. */
	char *o = arg[0] == '{' ? opts_from_json("-device", arg, "driver", err, errlen) :
				  g_strdup(arg);
	int ret = 0;

	if (!o)
		return -EINVAL;
	/* A serial port is the board's, with its backend named by chardev=. */
	if (!strcmp(o, "isa-serial") || g_str_has_prefix(o, "isa-serial,")) {
		ret = add_isa_serial(c, o, err, errlen);
		g_free(o);
	} else {
		g_ptr_array_add(c->devices, o);
	}
	return ret;
}

static int add_mon(struct cmdline *c, const char *arg, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-mon", arg, "chardev", err, errlen);
	const char *id, *mode;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	id = opts_get(o, "chardev");
	mode = opts_get(o, "mode");
	opts_get(o, "pretty");
	if (opts_check_all_used(o, err, errlen))
		goto out;
	if (mode && strcmp(mode, "control")) {
		snprintf(err, errlen, "-mon %s: only mode=control (QMP) is supported", arg);
		goto out;
	}
	if (!chardev_spec(c, id)) {
		snprintf(err, errlen, "-mon %s: no -chardev with id '%s' (give -chardev first)",
			 arg, id ? id : "");
	} else if (strncmp(chardev_spec(c, id), "unix:", 5) &&
		   strncmp(chardev_spec(c, id), "tcp:", 4) &&
		   strncmp(chardev_spec(c, id), "fd:", 3)) {
		snprintf(err, errlen, "-mon %s: QMP is served on a socket chardev only", arg);
	} else {
		g_ptr_array_add(c->qmp, (gpointer)chardev_spec(c, id));
		ret = 0;
	}
out:
	opts_free(o);
	return ret;
}

static int parse_name(struct cmdline *c, const char *arg, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-name", arg, "guest", err, errlen);
	bool debug_threads;
	int ret;

	if (!o)
		return -EINVAL;
	c->cfg.name = opts_get(o, "guest") ? g_strdup(opts_get(o, "guest")) : NULL;
	/* vCPU threads are always named "CPU n/KVM"; the option is accepted as QEMU's. */
	ret = opts_get_bool(o, "debug-threads", false, &debug_threads, err, errlen);
	if (!ret)
		ret = opts_check_all_used(o, err, errlen);
	opts_free(o);
	return ret;
}

static bool uuid_valid(const char *u)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(u) != strlen(shape))
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == '-' ? u[i] != '-' : !g_ascii_isxdigit(u[i]))
			return false;
	return true;
}

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
			c->accel_set = true;
		} else if (!strcmp(opt, "-enable-kvm")) {
			c->cfg.accel = "kvm";
			c->accel_set = true;
		} else if (!strcmp(opt, "-machine") || !strcmp(opt, "-M")) {
			TAKES_ARG();
			if (!strcmp(arg, "help")) {
				printf("Machine types:\n  q35   the vireo board: PCI Express host, "
				       "no firmware (alias pc-q35-*)\n");
				return 1;
			}
			if (cmdline_machine(arg, &c->cfg, &c->machine_accel, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-smbios")) {
			TAKES_ARG();
			if (smbios_parse(&c->cfg.smbios, arg, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-rtc")) {
			TAKES_ARG();
			if (cmdline_rtc(arg, &c->cfg.rtc_offset_ns, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-overcommit")) {
			TAKES_ARG();
			if (cmdline_overcommit(arg, &c->mem_lock, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-msg")) {
			TAKES_ARG();
			if (cmdline_msg(arg, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-boot")) {
			TAKES_ARG();
			if (cmdline_boot(arg, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-global")) {
			TAKES_ARG();
			/* libvirt's default for KVM guests, and KVM's own PIT behaviour. */
			if (strcmp(arg, "kvm-pit.lost_tick_policy=delay")) {
				snprintf(err, errlen, "-global %s: vireo takes only "
					 "kvm-pit.lost_tick_policy=delay (what its PIT does)", arg);
				return -1;
			}
		} else if (!strcmp(opt, "-net") || !strcmp(opt, "-nic")) {
			TAKES_ARG();
			/* Scripts say "no network" this way; vireo has no network devices. */
			if (strcmp(arg, "none")) {
				snprintf(err, errlen, "%s %s: vireo has no network devices (%s none is "
					 "accepted)", argv[i - 1], arg, argv[i - 1]);
				return -1;
			}
		} else if (!strcmp(opt, "-no-user-config") || !strcmp(opt, "-no-hpet")) {
			/* vireo reads no configuration files, and its board has no HPET. */
		} else if (!strcmp(opt, "-cpu")) {
			TAKES_ARG();
			if (!strcmp(arg, "help")) {
				cpu_model_print_help();
				return 1;
			}
			if (cpu_model_parse(arg, &c->cfg.cpu, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-m")) {
			TAKES_ARG();
			if (cmdline_mem(arg, &c->cfg.ram_size, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-smp")) {
			TAKES_ARG();
			if (cmdline_smp(arg, &c->cfg.smp, &c->cfg.topo, err, errlen))
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
			if (g_str_has_prefix(arg, "chardev:") && !chardev_spec(c, arg + 8)) {
				snprintf(err, errlen, "-serial %s: no -chardev with id '%s' (give "
					 "-chardev first)", arg, arg + 8);
				return -1;
			}
			c->cfg.serial[c->nr_serial++] = g_str_has_prefix(arg, "chardev:") ?
							chardev_spec(c, arg + 8) :
							strcmp(arg, "none") ? arg : NULL;
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
			if (add_device(c, arg, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-drive")) {
			TAKES_ARG();
			g_ptr_array_add(c->drives, (gpointer)arg);
		} else if (!strcmp(opt, "-no-reboot")) {
			c->cfg.no_reboot = true;
		} else if (!strcmp(opt, "-no-shutdown")) {
			c->cfg.no_shutdown = true;
		} else if (!strcmp(opt, "-S")) {
			c->cfg.start_paused = true;
		} else if (!strcmp(opt, "-incoming")) {
			TAKES_ARG();
			c->incoming = arg;
		} else if (!strcmp(opt, "-qmp")) {
			TAKES_ARG();
			g_ptr_array_add(c->qmp, (gpointer)arg);
		} else if (!strcmp(opt, "-chardev")) {
			TAKES_ARG();
			if (add_chardev(c, arg, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-mon")) {
			TAKES_ARG();
			if (add_mon(c, arg, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-name")) {
			TAKES_ARG();
			if (parse_name(c, arg, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-uuid")) {
			TAKES_ARG();
			if (!uuid_valid(arg)) {
				snprintf(err, errlen, "-uuid %s: not a UUID", arg);
				return -1;
			}
			c->cfg.uuid = arg;
		} else if (!strcmp(opt, "-pidfile")) {
			TAKES_ARG();
			c->pidfile = arg;
		} else if (!strcmp(opt, "-daemonize")) {
			c->daemonize = true;
		} else if (!strcmp(opt, "-d")) {
			TAKES_ARG();
			if (!strcmp(arg, "help")) {
				log_items_print();
				return 1;
			}
			if (log_parse_items(arg, &c->cfg.log_mask, err, errlen))
				return -1;
		} else if (!strcmp(opt, "-D")) {
			TAKES_ARG();
			if (log_set_file(arg, err, errlen))
				return -1;
		} else {
			snprintf(err, errlen, "unknown option '%s' (vireo -help lists them)", argv[i]);
			return -1;
		}
#undef TAKES_ARG
	}
	if (c->machine_accel) {
		if (c->accel_set) {
			snprintf(err, errlen, "-machine accel=%s: -accel (or -enable-kvm) and "
				 "-machine accel= cannot both be given", c->machine_accel);
			return -1;
		}
		c->cfg.accel = c->machine_accel;
	}
	if (!c->cfg.kernel) {
		snprintf(err, errlen, "no -kernel given: vireo boots a kernel directly, without firmware");
		return -1;
	}
	if (!c->nr_serial && !c->nodefaults && !c->daemonize)
		c->cfg.serial[0] = "stdio";
	for (unsigned i = 0; c->daemonize && i < 4; i++) {
		if (c->cfg.serial[i] && !strcmp(c->cfg.serial[i], "stdio")) {
			snprintf(err, errlen, "-daemonize: -serial stdio cannot be used with it");
			return -1;
		}
	}
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

	/* A reader gone from a pipe or socket is an error to handle, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	c.devices = g_ptr_array_new_with_free_func(g_free);
	c.drives = g_ptr_array_new();
	c.qmp = g_ptr_array_new();
	c.chardevs = g_ptr_array_new_with_free_func(g_free);
	ret = parse_args(argc, argv, &c, err, sizeof(err));
	if (ret) {
		if (ret < 0)
			log_error("%s", err);
		status = ret < 0 ? 1 : 0;
		goto out_args;
	}
	if (c.daemonize && daemonize_start(err, sizeof(err))) {
		log_error("%s", err);
		goto out_args;
	}
	if (c.pidfile && pidfile_create(c.pidfile, err, sizeof(err))) {
		log_error("%s", err);
		daemonize_done(1);
		goto out_args;
	}
	/*
	 * After the fork of -daemonize (a child inherits no locks), before
	 * guest RAM is mapped: MCL_FUTURE locks it as it is faulted in.
	 */
	if (c.mem_lock && mlockall(MCL_CURRENT | MCL_FUTURE)) {
		log_error("-overcommit mem-lock=on: cannot lock memory: %s (is RLIMIT_MEMLOCK, "
			  "ulimit -l, large enough?)", strerror(errno));
		daemonize_done(1);
		goto out;
	}

	if (machine_init(&m, &c.cfg, err, sizeof(err)))
		goto fail;
	m.incoming = c.incoming != NULL;
	for (unsigned i = 0; i < c.drives->len; i++)
		if (drive_add(&m, c.drives->pdata[i], err, sizeof(err)))
			goto fail;
	for (unsigned i = 0; i < c.devices->len; i++)
		if (machine_add_device(&m, c.devices->pdata[i], err, sizeof(err)))
			goto fail;
	/* -drive if=virtio without a -device of its own gets one now. */
	if (virtio_blk_create_for_drives(&m, err, sizeof(err)))
		goto fail;
	for (unsigned i = 0; i < c.qmp->len; i++)
		if (monitor_add_qmp(&m, c.qmp->pdata[i], err, sizeof(err)))
			goto fail;
	/* An incoming VM waits, paused, for its state; -S keeps it paused after. */
	if (c.incoming)
		m.cfg.start_paused = true;
	if (machine_boot(&m, err, sizeof(err)))
		goto fail;
	if (c.incoming && migration_incoming(&m, c.incoming, !c.cfg.start_paused, err,
					     sizeof(err)))
		goto fail;

	watch_signals(&m);
	daemonize_done(0);
	status = machine_run(&m);
	migration_destroy(&m);
	monitor_destroy(&m);
	machine_destroy(&m);
	goto out;
fail:
	log_error("%s", err);
	daemonize_done(1);
	migration_destroy(&m);
	monitor_destroy(&m);
	machine_destroy(&m);
	status = 1;
out:
	pidfile_remove();
out_args:
	g_ptr_array_free(c.devices, TRUE);
	g_ptr_array_free(c.drives, TRUE);
	g_ptr_array_free(c.qmp, TRUE);
	g_ptr_array_free(c.chardevs, TRUE);
	g_free(c.machine_accel);
	smbios_config_free(c.cfg.smbios);
	return status;
}
