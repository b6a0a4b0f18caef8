/* Process-level lifecycle: -daemonize and -pidfile, as QEMU does them. */
#ifndef VIREO_DAEMON_H
#define VIREO_DAEMON_H

#include <stddef.h>

/*
 * Fork; the parent waits until the child calls daemonize_done() and exits
 * with the status the child reports.  Must run before any thread or VM is
 * created (a KVM VM belongs to the process that made it).
 */
int daemonize_start(char *err, size_t errlen);
/* In the child: tell the parent how start-up went; on success detach stdio. */
void daemonize_done(int status);

/* Create and lock PATH holding our pid; -EEXIST naming it if another process holds it. */
int pidfile_create(const char *path, char *err, size_t errlen);
void pidfile_remove(void);

#endif
