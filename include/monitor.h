/*
 * QMP, the QEMU Machine Protocol, as libvirt and cloud agents speak it:
 * JSON objects over a socket, a greeting, capability negotiation, commands
 * with "execute"/"arguments"/"id", replies, and asynchronous events.  All
 * of it runs on the machine's main loop.  See docs/qmp.md.
 */
#ifndef VIREO_MONITOR_H
#define VIREO_MONITOR_H

#include <stddef.h>

struct machine;
struct monitor;

/*
 * Start serving QMP on spec: "unix:PATH,server=on,wait=off" or
 * "tcp:HOST:PORT,server=on,wait=off".  May be called several times.
 */
int monitor_add_qmp(struct machine *m, const char *spec, char *err, size_t errlen);
/* Flush pending output to clients and close everything. */
void monitor_destroy(struct machine *m);

/* Emit an event (data may be NULL) to every negotiated client; takes data. */
struct _JsonNode;
void monitor_emit_event(struct machine *m, const char *name, struct _JsonNode *data);

#endif
