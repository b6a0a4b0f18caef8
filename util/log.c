/* Messages to the user: "vireo: error: ..." on stderr, one line each. */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

const char *log_prog = "vireo";

void vlog(const char *level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line, so lines of different threads do not interleave. */
	fprintf(stderr, "%s: %s: %s\n", log_prog, level, line);
}
