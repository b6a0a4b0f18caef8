/*
 * i8042 keyboard controller at ports 0x60 (data) and 0x64 (status/command),
 * and the "fast A20 and reset" register at port 0x92.
 *
 * Only the controller is here, not a keyboard or mouse behind it: enough
 * for Linux's i8042 probe (self test, interface tests, command byte, port
 * enables, the output-buffer writes it uses as loopback) and for the reset
 * line, which is how many kernels and boot loaders reboot a PC (command
 * 0xFE, the output port's bit 0, or port 0x92 bit 0).  No keyboard
 * interrupt is raised, so a driver that waits for one (the AUX IRQ test,
 * keyboard ACKs) times out and carries on without the device.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "board.h"
#include "bus.h"
#include "log.h"
#include "machine.h"
#include "vmstate.h"

#define STS_OBF		0x01	/* output buffer full */
#define STS_SYS		0x04	/* system flag: self test passed */
#define STS_CMD		0x08	/* last write was to the command port */
#define STS_UNLOCKED	0x10	/* keyboard not inhibited */
#define STS_AUXOBF	0x20	/* the output byte is from the AUX port */

#define CTR_KBDINT	0x01
#define CTR_AUXINT	0x02
#define CTR_SYS		0x04
#define CTR_KBDDIS	0x10
#define CTR_AUXDIS	0x20
#define CTR_XLATE	0x40
#define CTR_DEFAULT	(CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)

#define OUTPORT_RESET	0x01	/* low: the CPU is held in reset */
#define OUTPORT_A20	0x02

#define P92_RESET	0x01
#define P92_A20		0x02

struct i8042 {
	struct device dev;
	struct machine *m;

	pthread_mutex_t lock;		/* guards everything below */
	uint8_t ctr;			/* the command byte */
	uint8_t status;
	uint8_t out;			/* output buffer */
	uint8_t pending;		/* command waiting for its data byte, or 0 */
	uint8_t outport;
	uint8_t port92;
	struct vmstate_section vms;
};

/* Put a byte in the output buffer, as from the keyboard or the AUX port. */
static void output_locked(struct i8042 *k, uint8_t val, bool aux)
{
	k->out = val;
	k->status |= STS_OBF;
	if (aux)
		k->status |= STS_AUXOBF;
	else
		k->status &= ~STS_AUXOBF;
}

/* Returns true if the command pulled the reset line. */
static bool command_locked(struct i8042 *k, uint8_t cmd)
{
	k->status |= STS_CMD;
	switch (cmd) {
	case 0x20:			/* read the command byte */
		output_locked(k, k->ctr, false);
		break;
	case 0x21 ... 0x3f:		/* read internal RAM: nothing kept there */
		output_locked(k, 0, false);
		break;
	case 0x60 ... 0x7f:		/* write command byte / internal RAM */
	case 0xd1:			/* write output port */
	case 0xd2:			/* write keyboard output buffer */
	case 0xd3:			/* write AUX output buffer */
	case 0xd4:			/* write to the AUX device */
		k->pending = cmd;
		break;
	case 0xa7:
		k->ctr |= CTR_AUXDIS;
		break;
	case 0xa8:
		k->ctr &= ~CTR_AUXDIS;
		break;
	case 0xa9:			/* AUX interface test: lines fine */
	case 0xab:			/* keyboard interface test: lines fine */
		output_locked(k, 0x00, false);
		break;
	case 0xaa:			/* controller self test */
		k->status |= STS_SYS;
		output_locked(k, 0x55, false);
		break;
	case 0xad:
		k->ctr |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ctr &= ~CTR_KBDDIS;
		break;
	case 0xc0:			/* read input port: keyboard not inhibited */
		output_locked(k, 0x80, false);
		break;
	case 0xd0:			/* read output port */
		output_locked(k, k->outport, false);
		break;
	case 0xdd:
		k->outport &= ~OUTPORT_A20;
		break;
	case 0xdf:
		k->outport |= OUTPORT_A20;
		break;
	case 0xf0 ... 0xff:		/* pulse output port bits that are 0 in cmd */
		return !(cmd & OUTPORT_RESET);
	default:
		log_once("i8042: unknown controller command 0x%02x ignored", cmd);
		break;
	}
	return false;
}

static bool data_locked(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->pending;

	k->status &= ~STS_CMD;
	k->pending = 0;
	switch (cmd) {
	case 0x60:
		k->ctr = val;
		k->status = (k->status & ~STS_SYS) | (val & CTR_SYS);
		break;
	case 0xd1:
		/* A20 is always on here; the reset bit low resets the CPU. */
		k->outport = val;
		return !(val & OUTPORT_RESET);
	case 0xd2:
		output_locked(k, val, false);
		break;
	case 0xd3:
		output_locked(k, val, true);
		break;
	default:
		/* 0x61..0x7f, 0xd4, or a byte for the (absent) keyboard. */
		break;
	}
	return false;
}

static uint64_t i8042_read(void *opaque, uint64_t offset, unsigned size)
{
	struct i8042 *k = opaque;
	uint8_t val;

	pthread_mutex_lock(&k->lock);
	if (offset == 0) {
		val = k->out;
		k->status &= ~(STS_OBF | STS_AUXOBF);
	} else {
		val = k->status;
	}
	pthread_mutex_unlock(&k->lock);
	return val;
}

static void i8042_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	bool reset;

	pthread_mutex_lock(&k->lock);
	reset = offset == 0 ? data_locked(k, value) : command_locked(k, value);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		machine_request_reset(k->m);
}

static const struct bus_ops i8042_data_ops = {
	.read = i8042_read,
	.write = i8042_write,
};

/* 0x64 is the same device at offset 1, so one pair of callbacks serves both. */
static uint64_t i8042_cmd_read(void *opaque, uint64_t offset, unsigned size)
{
	return i8042_read(opaque, 1, size);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	i8042_write(opaque, 1, size, value);
}

static const struct bus_ops i8042_cmd_ops = {
	.read = i8042_cmd_read,
	.write = i8042_cmd_write,
};

static uint64_t port92_read(void *opaque, uint64_t offset, unsigned size)
{
	struct i8042 *k = opaque;
	uint8_t val;

	pthread_mutex_lock(&k->lock);
	val = k->port92;
	pthread_mutex_unlock(&k->lock);
	return val;
}

static void port92_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	k->port92 = value & P92_A20;
	pthread_mutex_unlock(&k->lock);
	if (value & P92_RESET)
		machine_request_reset(k->m);
}

static const struct bus_ops port92_ops = {
	.read = port92_read,
	.write = port92_write,
};

static void i8042_reset(struct device *d)
{
	struct i8042 *k = (struct i8042 *)d;

	pthread_mutex_lock(&k->lock);
	k->ctr = CTR_DEFAULT;
	k->status = STS_UNLOCKED | STS_SYS;
	k->out = 0;
	k->pending = 0;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
	k->port92 = P92_A20;
	pthread_mutex_unlock(&k->lock);
}

static void i8042_destroy(struct device *d)
{
	struct i8042 *k = (struct i8042 *)d;

	vmstate_unregister(k->m, &k->vms);

	bus_unregister(&k->m->pio, 0x60, k);
	bus_unregister(&k->m->pio, 0x64, k);
	bus_unregister(&k->m->pio, 0x92, k);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const char *const i8042_fields[] = { "ctr", "status", "out", "pending", "outport",
					    "port92" };

static uint8_t *i8042_field(struct i8042 *k, unsigned i)
{
	uint8_t *f[] = { &k->ctr, &k->status, &k->out, &k->pending, &k->outport, &k->port92 };

	return f[i];
}

static int i8042_save(void *opaque, struct vmstate_out *o)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	for (unsigned i = 0; i < 6; i++)
		vmstate_put_u8(o, i8042_fields[i], *i8042_field(k, i));
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int i8042_load(void *opaque, struct vmstate_in *in)
{
	struct i8042 *k = opaque;
	int ret = 0;

	uint8_t v[6];

	for (unsigned i = 0; i < 6 && !ret; i++)
		ret = vmstate_get_u8(in, i8042_fields[i], &v[i]);
	if (ret)
		return ret;
	/* Only the commands that take a data byte wait for one (command_locked). */
	if (v[3] && !(v[3] >= 0x60 && v[3] <= 0x7f) && !(v[3] >= 0xd1 && v[3] <= 0xd4))
		return vmstate_fail(in, "pending command 0x%02x takes no data byte", v[3]);
	pthread_mutex_lock(&k->lock);
	for (unsigned i = 0; i < 6; i++)
		*i8042_field(k, i) = v[i];
	pthread_mutex_unlock(&k->lock);
	return 0;
}

int i8042_create(struct machine *m, char *err, size_t errlen)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int ret;

	if (!k) {
		snprintf(err, errlen, "i8042: out of memory");
		return -ENOMEM;
	}
	k->m = m;
	pthread_mutex_init(&k->lock, NULL);
	i8042_reset(&k->dev);
	ret = bus_register(&m->pio, 0x60, 1, &i8042_data_ops, k, "i8042");
	if (ret) {
		snprintf(err, errlen, "i8042: port 0x60 is taken");
		goto fail;
	}
	ret = bus_register(&m->pio, 0x64, 1, &i8042_cmd_ops, k, "i8042");
	if (ret) {
		snprintf(err, errlen, "i8042: port 0x64 is taken");
		goto fail_data;
	}
	ret = bus_register(&m->pio, 0x92, 1, &port92_ops, k, "port92");
	if (ret) {
		snprintf(err, errlen, "i8042: port 0x92 is taken");
		goto fail_cmd;
	}
	k->dev.type = "i8042";
	k->dev.reset = i8042_reset;
	k->dev.destroy = i8042_destroy;
	machine_add_device_obj(m, &k->dev);
	k->vms = (struct vmstate_section){ .name = "i8042", .version = 1, .min_version = 1,
					   .save = i8042_save, .load = i8042_load, .opaque = k };
	return vmstate_register(m, &k->vms);
fail_cmd:
	bus_unregister(&m->pio, 0x64, k);
fail_data:
	bus_unregister(&m->pio, 0x60, k);
fail:
	pthread_mutex_destroy(&k->lock);
	free(k);
	return ret;
}
