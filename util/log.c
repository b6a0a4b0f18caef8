/*
 * Messages to the user: "vireo: error: ..." on stderr, one line each; and
 * QEMU's debug log (-d ITEM,... and -D FILE), which goes to stderr unless
 * -D names a file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

const char *log_prog = "vireo";
bool log_timestamps;

/* -D: the process's one debug log, as QEMU has one. */
static FILE *log_file;

void vlog(const char *level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	char stamp[80] = "";

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_timestamps) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000);
	}
	/* One write per line, so lines of different threads do not interleave. */
	fprintf(stderr, "%s%s: %s: %s\n", stamp, log_prog, level, line);
}

static const struct {
	const char *name;
	unsigned mask;
	const char *help;
} log_items[] = {
	{ "cpu_exit", LOG_CPU_EXIT,
	  "the registers of every vCPU when the guest ends the VM" },
};

void log_items_print(void)
{
	printf("Log items (comma separated):\n");
	for (size_t i = 0; i < sizeof(log_items) / sizeof(log_items[0]); i++)
		printf("%-10s %s\n", log_items[i].name, log_items[i].help);
}

int log_parse_items(const char *arg, unsigned *mask, char *err, size_t errlen)
{
	const char *p = arg;

	while (*p) {
		size_t len = strcspn(p, ",");
		size_t i;

		for (i = 0; i < sizeof(log_items) / sizeof(log_items[0]); i++)
			if (strlen(log_items[i].name) == len &&
			    !strncmp(p, log_items[i].name, len))
				break;
		if (i == sizeof(log_items) / sizeof(log_items[0])) {
			snprintf(err, errlen, "-d %s: unknown log item '%.*s' (-d help lists them)",
				 arg, (int)len, p);
			return -EINVAL;
		}
		*mask |= log_items[i].mask;
		p += len;
		if (*p)
			p++;
	}
	return 0;
}

int log_set_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		snprintf(err, errlen, "-D %s: %s", path, strerror(errno));
		return -errno;
	}
	/* Line buffered, so a log read while the VM runs is complete per line. */
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_file)
		fclose(log_file);
	log_file = f;
	return 0;
}

void log_text(const char *text)
{
	FILE *f = log_file ? log_file : stderr;

	fputs(text, f);
	fflush(f);
}
