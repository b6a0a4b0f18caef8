/* Messages from the VMM to its user, on stderr. */
#ifndef VIREO_LOG_H
#define VIREO_LOG_H

#include <stdbool.h>

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

#endif
