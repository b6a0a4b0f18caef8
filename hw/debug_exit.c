/*
 * -device isa-debug-exit,iobase=0xf4,iosize=4: a write of value v ends the
 * VMM with status (v << 1) | 1, exactly as QEMU's device, so test guests
 * written for QEMU report their result the same way.  Reads return 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "bus.h"
#include "machine.h"
#include "options.h"

struct debug_exit {
	struct device dev;
	struct machine *m;
	uint16_t base;
};

static uint64_t debug_exit_read(void *opaque, uint64_t offset, unsigned size)
{
	return 0;
}

static void debug_exit_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct debug_exit *d = opaque;

	if (size < 8)
		value &= (1ull << (8 * size)) - 1;
	machine_request_exit(d->m, (int)((value << 1) | 1));
}

static const struct bus_ops debug_exit_ops = {
	.read = debug_exit_read,
	.write = debug_exit_write,
};

static void debug_exit_destroy(struct device *dev)
{
	struct debug_exit *d = (struct debug_exit *)dev;

	bus_unregister(&d->m->pio, d->base, d);
	free(dev->id);
	free(d);
}

int debug_exit_create(struct machine *m, struct opts *o, char *err, size_t errlen)
{
	uint64_t iobase, iosize;
	const char *id;
	struct debug_exit *d;
	int ret;

	opts_get(o, "driver");
	id = opts_get(o, "id");
	/* QEMU's defaults. */
	if (opts_get_uint(o, "iobase", 0x501, &iobase, err, errlen) ||
	    opts_get_uint(o, "iosize", 2, &iosize, err, errlen))
		return -EINVAL;
	if (iosize != 1 && iosize != 2 && iosize != 4) {
		snprintf(err, errlen, "%s: iosize=%s is not 1, 2 or 4", o->group,
			 opts_get(o, "iosize"));
		return -EINVAL;
	}
	if (iobase + iosize > 0x10000) {
		snprintf(err, errlen, "%s: iobase=%s does not leave %u ports below 0x10000",
			 o->group, opts_get(o, "iobase"), (unsigned)iosize);
		return -EINVAL;
	}
	ret = opts_check_all_used(o, err, errlen);
	if (ret)
		return ret;

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "%s: out of memory", o->group);
		return -ENOMEM;
	}
	d->m = m;
	d->base = iobase;
	ret = bus_register(&m->pio, iobase, iosize, &debug_exit_ops, d, "isa-debug-exit");
	if (ret) {
		snprintf(err, errlen, "%s: isa-debug-exit ports 0x%x-0x%x are taken", o->group,
			 (unsigned)iobase, (unsigned)(iobase + iosize - 1));
		free(d);
		return ret;
	}
	d->dev.type = "isa-debug-exit";
	d->dev.id = id ? strdup(id) : NULL;
	d->dev.destroy = debug_exit_destroy;
	machine_add_device_obj(m, &d->dev);
	return 0;
}

DEVICE_TYPE(debug_exit_type,
	    .name = "isa-debug-exit",
	    .help = "exit with status (value << 1) | 1 on a write; iobase=0x501,iosize=2",
	    .create = debug_exit_create)
