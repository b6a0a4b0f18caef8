/*
 * One dispatch for port I/O and MMIO, shared by every accelerator.  A device
 * registers a range with callbacks; the vCPU loop (or an accelerator that
 * emulates accesses itself, like TCG) calls bus_read/bus_write.  Ranges may
 * not overlap: registration refuses it.  Accesses to nothing read as all
 * ones and writes are dropped, as on real hardware.
 *
 * Callbacks run on the vCPU thread that made the access, concurrently with
 * other vCPUs, and without the bus lock held (so a callback may move
 * ranges): devices lock their own state.
 */
#ifndef VIREO_BUS_H
#define VIREO_BUS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct bus_ops {
	/* offset is relative to the registered base; size is 1, 2, 4 or 8 */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct bus_range {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;	/* for "info mtree" and overlap messages */
};

struct bus {
	const char *name;	/* "pio" or "mmio" */
	pthread_rwlock_t lock;
	struct bus_range *r;	/* sorted by base */
	size_t n, cap;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
/* -EEXIST (with a log line naming both ranges) if it overlaps; -EINVAL if empty. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name);
/* Remove the range registered at base by opaque; -ENOENT if none. */
int bus_unregister(struct bus *b, uint64_t base, void *opaque);

uint64_t bus_read(struct bus *b, uint64_t addr, unsigned size);
void bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t value);

/* Call fn for each range in address order (under the read lock). */
void bus_for_each(struct bus *b, void (*fn)(const struct bus_range *r, void *arg), void *arg);

#endif
