/*
 * Character backends for serial ports and monitors: -serial stdio,
 * file:PATH, unix:PATH,server=on,wait=off, pty, none; -chardev socket,id=...
 * Input is read on the machine's main loop and handed to the frontend.
 */
#ifndef VIREO_CHARDEV_H
#define VIREO_CHARDEV_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct chardev;

struct chardev_frontend {
	/* Bytes from the outside world. */
	void (*receive)(void *opaque, const uint8_t *buf, size_t len);
	/*
	 * Optional (may be NULL): the user typed the quit escape (Ctrl-A x on
	 * a stdio backend) and wants the VM to end.  Called on the main loop.
	 */
	void (*quit)(void *opaque);
	void *opaque;
};

/* spec is the -serial argument; ctx is the main loop that serves input. */
struct chardev *chardev_open(const char *spec, GMainContext *ctx, char *err, size_t errlen);
void chardev_set_frontend(struct chardev *c, const struct chardev_frontend *fe);
/* Never blocks the caller for long: output to a slow or gone peer is dropped. */
void chardev_write(struct chardev *c, const void *buf, size_t len);
void chardev_close(struct chardev *c);
/* -serial pty: the name of the terminal's other side (/dev/pts/N); else NULL. */
const char *chardev_pty_name(const struct chardev *c);
/*
 * The backend as QMP query-chardev's "filename" names it: "stdio",
 * "file:PATH", "unix:PATH,server=on", "pty:/dev/pts/N", "null".
 */
char *chardev_describe(const struct chardev *c);

#endif
