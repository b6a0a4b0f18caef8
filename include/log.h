/* Messages from the VMM to its user, on stderr. */
#ifndef VIREO_LOG_H
#define VIREO_LOG_H

#include <stdbool.h>
#include <stddef.h>

void vlog(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) vlog("error", __VA_ARGS__)
#define log_warn(...)  vlog("warning", __VA_ARGS__)
#define log_info(...)  vlog("info", __VA_ARGS__)

/*
 * Log at most once per call site: for guest-triggered conditions, where a
 * hostile guest must not be able to flood the host's logs.
 */
#define log_once(...) do {						\
	static bool logged_once__;					\
	if (!__atomic_exchange_n(&logged_once__, true, __ATOMIC_RELAXED))	\
		vlog("warning", __VA_ARGS__);				\
} while (0)

/* Program name used as prefix ("vireo"). */
extern const char *log_prog;
/* -msg timestamp=on: messages start with the UTC time, as QEMU's. */
extern bool log_timestamps;

/*
 * QEMU's debug log: -d ITEM[,ITEM...] selects what is logged (a mask of
 * LOG_* bits, kept by whoever the item concerns, e.g. the machine config),
 * -D FILE where (stderr without it).
 */
#define LOG_CPU_EXIT (1u << 0)	/* vCPU registers when the guest ends the VM */

/* OR the items of a -d argument into *mask; an unknown item is an error. */
int log_parse_items(const char *arg, unsigned *mask, char *err, size_t errlen);
/* -d help: the items, one a line, on stdout. */
void log_items_print(void);
/* -D: log to path (truncated) from now on. */
int log_set_file(const char *path, char *err, size_t errlen);
/* Write text (whole lines) to the debug log. */
void log_text(const char *text);

#endif
