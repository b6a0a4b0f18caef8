/*
 * 16550A UART on the ISA ports of COM1..COM4, fed by a chardev.
 *
 * Transmission is instantaneous: a THR write goes straight to the backend
 * (which never blocks) and the transmitter is empty again at once, so the
 * THR-empty interrupt is re-armed after every byte, as on QEMU.  Received
 * bytes wait in a host-side queue in front of the 16-byte FIFO and enter
 * the FIFO as the guest reads, so a paste into the console is not lost to
 * overruns.
 *
 * The interrupt is the IIR "pending" state on the ISA line (edge-triggered
 * on a PC: the line drops whenever nothing is pending, and each new cause
 * raises it again).  COM1/COM3 and COM2/COM4 share a line, as on a PC; a
 * guest using both ports of a pair sees the last level written.
 *
 * Locking: u->lock, taken by vCPU threads (register access) and the main
 * loop (input).  It is held across chardev_write and machine_set_irq, which
 * never call back into the UART.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "bus.h"
#include "chardev.h"
#include "log.h"
#include "machine.h"
#include "vmstate.h"

/* Register offsets. */
#define UART_RBR	0	/* read, DLAB=0 */
#define UART_THR	0	/* write, DLAB=0 */
#define UART_IER	1	/* DLAB=0 */
#define UART_IIR	2	/* read */
#define UART_FCR	2	/* write */
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define IER_RDI		0x01	/* received data available */
#define IER_THRI	0x02	/* transmitter holding register empty */
#define IER_RLSI	0x04	/* receiver line status */
#define IER_MSI		0x08	/* modem status */

#define IIR_NO_INT	0x01
#define IIR_MSI		0x00
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_RLSI	0x06
#define IIR_TIMEOUT	0x0c
#define IIR_FIFO_ON	0xc0

#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define FCR_CLEAR_TX	0x04
#define FCR_DMA		0x08
#define FCR_TRIGGER	0xc0

#define LCR_DLAB	0x80

#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10

#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_PE		0x04
#define LSR_FE		0x08
#define LSR_BI		0x10
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define LSR_ERRORS	(LSR_OE | LSR_PE | LSR_FE | LSR_BI | 0x80)

#define MSR_DCTS	0x01
#define MSR_DDSR	0x02
#define MSR_TERI	0x04
#define MSR_DDCD	0x08
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80
#define MSR_DELTAS	0x0f

#define UART_FIFO_LEN	16
#define UART_QUEUE_LEN	4096	/* host-side input waiting for FIFO room */

struct uart {
	struct device dev;
	struct machine *m;
	struct chardev *chr;
	unsigned index, irq;
	uint16_t base;
	char name[16];

	pthread_mutex_t lock;		/* guards everything below */
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
	uint16_t divisor;
	bool thr_ipending;		/* THRE interrupt armed, not yet seen in IIR */
	bool irq_level;
	uint8_t rx[UART_FIFO_LEN];
	unsigned rx_head, rx_count;
	uint8_t queue[UART_QUEUE_LEN];
	unsigned q_head, q_count;
	struct vmstate_section vms;
};

static const uint16_t uart_ports[4] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
static const unsigned uart_irqs[4] = { 4, 3, 4, 3 };
static const unsigned rx_trigger[4] = { 1, 4, 8, 14 };

static unsigned rx_capacity(const struct uart *u)
{
	return (u->fcr & FCR_ENABLE) ? UART_FIFO_LEN : 1;
}

static uint8_t iir_locked(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & (LSR_OE | LSR_PE | LSR_FE | LSR_BI)))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count) {
		/*
		 * Below the trigger level a real 16550A reports a character
		 * timeout after four character times; with no line timing
		 * here, it is reported at once.
		 */
		if ((u->fcr & FCR_ENABLE) && u->rx_count < rx_trigger[u->fcr >> 6])
			return IIR_TIMEOUT;
		return IIR_RDI;
	}
	if ((u->ier & IER_THRI) && u->thr_ipending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void update_irq_locked(struct uart *u)
{
	bool level = !(iir_locked(u) & IIR_NO_INT);

	if (level != u->irq_level) {
		u->irq_level = level;
		machine_set_irq(u->m, u->irq, level);
	}
}

static void rx_push_locked(struct uart *u, uint8_t b)
{
	if (u->rx_count == rx_capacity(u)) {
		u->lsr |= LSR_OE;
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_LEN] = b;
	u->rx_count++;
	u->lsr |= LSR_DR;
}

/* Move queued input into the FIFO as far as it has room. */
static void rx_refill_locked(struct uart *u)
{
	while (u->q_count && u->rx_count < rx_capacity(u)) {
		rx_push_locked(u, u->queue[u->q_head]);
		u->q_head = (u->q_head + 1) % UART_QUEUE_LEN;
		u->q_count--;
	}
}

static void rx_clear_locked(struct uart *u)
{
	u->rx_head = u->rx_count = 0;
	u->lsr &= ~LSR_DR;
}

static uint8_t rx_pop_locked(struct uart *u)
{
	uint8_t b;

	if (!u->rx_count)
		return 0;
	b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO_LEN;
	u->rx_count--;
	rx_refill_locked(u);
	if (!u->rx_count)
		u->lsr &= ~LSR_DR;
	return b;
}

/* MSR from the modem lines: looped back from MCR, else a present, ready peer. */
static void update_msr_locked(struct uart *u)
{
	uint8_t old = u->msr, lines;

	if (u->mcr & MCR_LOOP) {
		lines = ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
			((u->mcr & MCR_RTS) ? MSR_CTS : 0) |
			((u->mcr & MCR_OUT1) ? MSR_RI : 0) |
			((u->mcr & MCR_OUT2) ? MSR_DCD : 0);
	} else {
		lines = MSR_DCD | MSR_DSR | MSR_CTS;
	}
	u->msr = lines | (old & MSR_DELTAS);
	if ((old ^ lines) & MSR_CTS)
		u->msr |= MSR_DCTS;
	if ((old ^ lines) & MSR_DSR)
		u->msr |= MSR_DDSR;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		u->msr |= MSR_TERI;
	if ((old ^ lines) & MSR_DCD)
		u->msr |= MSR_DDCD;
}

static void transmit_locked(struct uart *u, uint8_t b)
{
	if (u->mcr & MCR_LOOP)
		rx_push_locked(u, b);
	else
		chardev_write(u->chr, &b, 1);
	/* The byte left at once: THR and the shift register are empty again. */
	u->lsr |= LSR_THRE | LSR_TEMT;
	u->thr_ipending = true;
}

static void write_fcr_locked(struct uart *u, uint8_t val)
{
	/* Changing the FIFO enable resets both FIFOs. */
	if ((val ^ u->fcr) & FCR_ENABLE)
		rx_clear_locked(u);
	/* The other bits are only programmed together with the enable bit. */
	if (!(val & FCR_ENABLE)) {
		u->fcr = 0;
	} else {
		if (val & FCR_CLEAR_RX)
			rx_clear_locked(u);
		u->fcr = val & (FCR_ENABLE | FCR_DMA | FCR_TRIGGER);
	}
	rx_refill_locked(u);
}

static uint8_t reg_read_locked(struct uart *u, unsigned reg)
{
	uint8_t val;

	switch (reg) {
	case UART_RBR:
		if (u->lcr & LCR_DLAB)
			return u->divisor & 0xff;
		return rx_pop_locked(u);
	case UART_IER:
		if (u->lcr & LCR_DLAB)
			return u->divisor >> 8;
		return u->ier;
	case UART_IIR:
		val = iir_locked(u);
		/* Reading IIR is what acknowledges a THR-empty interrupt. */
		if (val == IIR_THRI)
			u->thr_ipending = false;
		return val | ((u->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		val = u->lsr;
		u->lsr &= ~LSR_ERRORS;
		return val;
	case UART_MSR:
		val = u->msr;
		u->msr &= ~MSR_DELTAS;
		return val;
	default:
		return u->scr;
	}
}

static void reg_write_locked(struct uart *u, unsigned reg, uint8_t val)
{
	uint8_t changed;

	switch (reg) {
	case UART_THR:
		if (u->lcr & LCR_DLAB) {
			u->divisor = (u->divisor & 0xff00) | val;
			return;
		}
		u->thr_ipending = false;
		transmit_locked(u, val);
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->divisor = (u->divisor & 0x00ff) | (val << 8);
			return;
		}
		changed = (u->ier ^ val) & IER_THRI;
		u->ier = val & 0x0f;
		/*
		 * Enabling the THRE interrupt while THR is empty raises it even if
		 * an IIR read had acknowledged it before: Linux's 8250 driver tests
		 * for exactly this at startup, and Windows relies on it.
		 */
		if (changed)
			u->thr_ipending = (u->ier & IER_THRI) && (u->lsr & LSR_THRE);
		break;
	case UART_FCR:
		write_fcr_locked(u, val);
		break;
	case UART_LCR:
		u->lcr = val;
		return;
	case UART_MCR:
		u->mcr = val & 0x1f;
		update_msr_locked(u);
		break;
	case UART_LSR:
	case UART_MSR:
		return;		/* factory test registers: writes have no effect */
	default:
		u->scr = val;
		return;
	}
	update_irq_locked(u);
}

/* Wider accesses touch consecutive registers, as the ISA bus splits them. */
static uint64_t uart_read(void *opaque, uint64_t offset, unsigned size)
{
	struct uart *u = opaque;
	uint64_t val = 0;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size; i++) {
		uint64_t b = offset + i < 8 ? reg_read_locked(u, offset + i) : 0xff;

		val |= b << (8 * i);
	}
	update_irq_locked(u);
	pthread_mutex_unlock(&u->lock);
	return val;
}

static void uart_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size && offset + i < 8; i++)
		reg_write_locked(u, offset + i, value >> (8 * i));
	pthread_mutex_unlock(&u->lock);
}

static const struct bus_ops uart_ops = {
	.read = uart_read,
	.write = uart_write,
};

/* Main loop: bytes from the backend. */
static void uart_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	/* In loopback the receiver hears only the transmitter. */
	if (!(u->mcr & MCR_LOOP)) {
		for (size_t i = 0; i < len; i++) {
			if (u->q_count == UART_QUEUE_LEN) {
				log_once("%s: input dropped, the guest does not read it",
					 u->name);
				break;
			}
			u->queue[(u->q_head + u->q_count) % UART_QUEUE_LEN] = buf[i];
			u->q_count++;
		}
		rx_refill_locked(u);
		update_irq_locked(u);
	}
	pthread_mutex_unlock(&u->lock);
}

static void uart_quit(void *opaque)
{
	struct uart *u = opaque;

	log_info("terminated by the user (Ctrl-A x on %s)", u->name);
	machine_request_exit(u->m, 0);
}

static void uart_reset(struct device *d)
{
	struct uart *u = (struct uart *)d;

	pthread_mutex_lock(&u->lock);
	u->ier = u->lcr = u->mcr = u->scr = u->fcr = 0;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = 0;
	update_msr_locked(u);
	u->msr &= ~MSR_DELTAS;
	u->divisor = 12;	/* 9600 baud, as a BIOS leaves it */
	u->thr_ipending = false;
	rx_clear_locked(u);
	u->q_head = u->q_count = 0;
	update_irq_locked(u);
	pthread_mutex_unlock(&u->lock);
}

/* Migration: the registers, the FIFO and the input queue, in order. */
static int uart_save(void *opaque, struct vmstate_out *o)
{
	struct uart *u = opaque;
	uint8_t rx[UART_FIFO_LEN], q[UART_QUEUE_LEN];

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < u->rx_count; i++)
		rx[i] = u->rx[(u->rx_head + i) % UART_FIFO_LEN];
	for (unsigned i = 0; i < u->q_count; i++)
		q[i] = u->queue[(u->q_head + i) % UART_QUEUE_LEN];
	vmstate_put_u8(o, "ier", u->ier);
	vmstate_put_u8(o, "lcr", u->lcr);
	vmstate_put_u8(o, "mcr", u->mcr);
	vmstate_put_u8(o, "lsr", u->lsr);
	vmstate_put_u8(o, "msr", u->msr);
	vmstate_put_u8(o, "scr", u->scr);
	vmstate_put_u8(o, "fcr", u->fcr);
	vmstate_put_u16(o, "divisor", u->divisor);
	vmstate_put_bool(o, "thr-ipending", u->thr_ipending);
	vmstate_put_bool(o, "irq-level", u->irq_level);
	vmstate_put(o, "rx-fifo", rx, u->rx_count);
	vmstate_put(o, "rx-queue", q, u->q_count);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static int uart_load(void *opaque, struct vmstate_in *in)
{
	struct uart *u = opaque;
	const void *rx, *q;
	uint32_t rx_len, q_len;
	int ret;

	pthread_mutex_lock(&u->lock);
	if ((ret = vmstate_get_u8(in, "ier", &u->ier)) ||
	    (ret = vmstate_get_u8(in, "lcr", &u->lcr)) ||
	    (ret = vmstate_get_u8(in, "mcr", &u->mcr)) ||
	    (ret = vmstate_get_u8(in, "lsr", &u->lsr)) ||
	    (ret = vmstate_get_u8(in, "msr", &u->msr)) ||
	    (ret = vmstate_get_u8(in, "scr", &u->scr)) ||
	    (ret = vmstate_get_u8(in, "fcr", &u->fcr)) ||
	    (ret = vmstate_get_u16(in, "divisor", &u->divisor)) ||
	    (ret = vmstate_get_bool(in, "thr-ipending", &u->thr_ipending)) ||
	    (ret = vmstate_get_bool(in, "irq-level", &u->irq_level)) ||
	    (ret = vmstate_get_var(in, "rx-fifo", &rx, &rx_len)) ||
	    (ret = vmstate_get_var(in, "rx-queue", &q, &q_len)))
		goto out;
	/*
	 * What the register writes let a guest set (uart_write masks IER, MCR
	 * and FCR), and a FIFO within its capacity: one byte with the FIFO
	 * off.  A FIFO fuller than that made rx_push_locked count past it.
	 */
	if (rx_len > rx_capacity(u) || q_len > UART_QUEUE_LEN) {
		ret = vmstate_fail(in, "FIFO of %u bytes (room for %u) or queue of %u bytes",
				   rx_len, rx_capacity(u), q_len);
		goto out;
	}
	if ((u->ier & ~0x0f) || (u->mcr & ~0x1f) ||
	    (u->fcr & ~(FCR_ENABLE | FCR_DMA | FCR_TRIGGER)) ||
	    !(u->lsr & LSR_DR) != !rx_len) {
		ret = vmstate_fail(in, "ier 0x%02x, mcr 0x%02x, fcr 0x%02x or lsr 0x%02x has bits "
				   "no register write sets", u->ier, u->mcr, u->fcr, u->lsr);
		goto out;
	}
	memcpy(u->rx, rx, rx_len);
	u->rx_head = 0;
	u->rx_count = rx_len;
	memcpy(u->queue, q, q_len);
	u->q_head = 0;
	u->q_count = q_len;
out:
	pthread_mutex_unlock(&u->lock);
	return ret;
}

static void uart_destroy(struct device *d)
{
	struct uart *u = (struct uart *)d;

	vmstate_unregister(u->m, &u->vms);
	bus_unregister(&u->m->pio, u->base, u);
	chardev_close(u->chr);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

void uart_for_each_chardev(struct machine *m,
			   void (*fn)(void *opaque, const char *label, const char *filename),
			   void *opaque)
{
	/* m->devices is newest first: COM1 comes out last, so walk by index. */
	for (unsigned i = 0; i < 4; i++) {
		for (struct device *d = m->devices; d; d = d->next) {
			struct uart *u = (struct uart *)d;
			char *name;

			if (strcmp(d->type, "isa-serial") || u->index != i)
				continue;
			name = chardev_describe(u->chr);
			fn(opaque, u->name, name);
			g_free(name);
		}
	}
}

int uart_create(struct machine *m, unsigned index, const char *spec, char *err, size_t errlen)
{
	struct chardev_frontend fe = { .receive = uart_receive, .quit = uart_quit };
	struct uart *u;
	int ret;

	if (index >= 4) {
		snprintf(err, errlen, "-serial %s: only 4 serial ports (COM1..COM4)",
			 spec ? spec : "");
		return -EINVAL;
	}
	if (!spec || !strcmp(spec, "none"))
		return 0;
	u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "-serial %s: out of memory", spec);
		return -ENOMEM;
	}
	u->chr = chardev_open(spec, m->ctx, err, errlen);
	if (!u->chr) {
		free(u);
		return -EINVAL;
	}
	u->m = m;
	u->index = index;
	u->base = uart_ports[index];
	u->irq = uart_irqs[index];
	snprintf(u->name, sizeof(u->name), "serial%u", index);
	pthread_mutex_init(&u->lock, NULL);
	uart_reset(&u->dev);

	ret = bus_register(&m->pio, u->base, 8, &uart_ops, u, u->name);
	if (ret) {
		snprintf(err, errlen, "-serial %s: COM%u ports 0x%x-0x%x are taken", spec,
			 index + 1, u->base, u->base + 7);
		chardev_close(u->chr);
		pthread_mutex_destroy(&u->lock);
		free(u);
		return ret;
	}
	fe.opaque = u;
	chardev_set_frontend(u->chr, &fe);
	u->dev.type = "isa-serial";
	u->dev.reset = uart_reset;
	u->dev.destroy = uart_destroy;
	machine_add_device_obj(m, &u->dev);
	u->vms = (struct vmstate_section){ .name = "serial", .instance = index, .version = 1,
					   .min_version = 1, .save = uart_save,
					   .load = uart_load, .opaque = u };
	return vmstate_register(m, &u->vms);
}
