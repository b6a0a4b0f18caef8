/*
 * 16550A UART through the port bus: output to a file backend, input from a
 * unix socket client, IIR priorities and the THRE interrupt, FIFO, DLAB,
 * loopback, and the probe sequence of Linux's 8250 driver.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "accel/accel.h"
#include "board.h"
#include "bus.h"
#include "machine.h"
#include "machine_fixture.h"

#define COM1 0x3f8
#define COM2 0x2f8
#define RBR 0
#define THR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static int irq_level[16];
static int irq_raises[16];

static int fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	g_assert_cmpuint(gsi, <, 16);
	if (level && !irq_level[gsi])
		irq_raises[gsi]++;
	irq_level[gsi] = level;
	return 0;
}

static const struct accel_ops fake_accel = { .name = "fake", .set_irq = fake_set_irq };

static struct machine *machine_new(void)
{
	struct machine *m = fixture_machine_new(&fake_accel);

	memset(irq_level, 0, sizeof(irq_level));
	memset(irq_raises, 0, sizeof(irq_raises));
	return m;
}

static uint8_t in(struct machine *m, uint16_t port)
{
	return bus_read(&m->pio, port, 1);
}

static void out(struct machine *m, uint16_t port, uint8_t v)
{
	bus_write(&m->pio, port, 1, v);
}

static void add_com1(struct machine *m)
{
	char err[256] = "";

	g_assert_cmpint(uart_create(m, 0, "null", err, sizeof(err)), ==, 0);
}

static void test_file_output(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-uart-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "com1.log", NULL);
	g_autofree char *spec = g_strdup_printf("file:%s", path);
	struct machine *m = machine_new();
	char err[256] = "", *data;
	const char *msg = "Linux version\r\n";

	g_assert_cmpint(uart_create(m, 0, spec, err, sizeof(err)), ==, 0);
	for (const char *p = msg; *p; p++) {
		/* A driver polls THRE before each byte. */
		g_assert_true(in(m, COM1 + LSR) & 0x20);
		out(m, COM1 + THR, *p);
	}
	fixture_machine_free(m);
	g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
	g_assert_cmpstr(data, ==, msg);
	g_free(data);
	g_unlink(path);
	g_rmdir(dir);
}

static gboolean guard_expired(gpointer opaque)
{
	*(bool *)opaque = true;
	return G_SOURCE_REMOVE;
}

static void wait_data_ready(struct machine *m, uint16_t base)
{
	bool expired = false;
	GSource *guard = g_timeout_source_new_seconds(10);

	g_source_set_callback(guard, guard_expired, &expired, NULL);
	g_source_attach(guard, m->ctx);
	while (!(in(m, base + LSR) & 0x01) && !expired)
		g_main_context_iteration(m->ctx, TRUE);
	g_source_destroy(guard);
	g_source_unref(guard);
}

static void test_unix_input(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-uart-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "com2.sock", NULL);
	g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct machine *m = machine_new();
	char err[256] = "", c;
	int fd;

	g_assert_cmpint(uart_create(m, 1, spec, err, sizeof(err)), ==, 0);
	out(m, COM2 + IER, 0x01);	/* received data interrupt */
	g_assert_cmphex(in(m, COM2 + IIR), ==, 0x01);
	g_assert_cmpint(irq_level[3], ==, 0);

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(write(fd, "hi", 2), ==, 2);
	wait_data_ready(m, COM2);

	g_assert_true(in(m, COM2 + LSR) & 0x01);
	g_assert_cmphex(in(m, COM2 + IIR), ==, 0x04);	/* data available */
	g_assert_cmpint(irq_level[3], ==, 1);
	g_assert_cmpint(irq_level[4], ==, 0);
	/* Both bytes may not have arrived in one read: take them as they come. */
	g_assert_cmpint(in(m, COM2 + RBR), ==, 'h');
	wait_data_ready(m, COM2);
	g_assert_cmpint(in(m, COM2 + RBR), ==, 'i');
	g_assert_false(in(m, COM2 + LSR) & 0x01);
	g_assert_cmphex(in(m, COM2 + IIR), ==, 0x01);
	g_assert_cmpint(irq_level[3], ==, 0);

	/* And the other way: THR reaches the client. */
	out(m, COM2 + THR, 'k');
	g_assert_cmpint(read(fd, &c, 1), ==, 1);
	g_assert_cmpint(c, ==, 'k');
	close(fd);
	fixture_machine_free(m);
	g_rmdir(dir);
}

/* A burst longer than the FIFO is not lost: it enters as the guest reads. */
static void test_input_burst(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-uart-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "com1.sock", NULL);
	g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct machine *m = machine_new();
	char err[256] = "", sent[100], got[100];
	int fd;

	for (int i = 0; i < 100; i++)
		sent[i] = 'A' + i % 26;
	g_assert_cmpint(uart_create(m, 0, spec, err, sizeof(err)), ==, 0);
	out(m, COM1 + FCR, 0xc7);	/* FIFO on, trigger 14 */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(write(fd, sent, sizeof(sent)), ==, sizeof(sent));
	for (int i = 0; i < 100; i++) {
		wait_data_ready(m, COM1);
		got[i] = in(m, COM1 + RBR);
	}
	g_assert_cmpmem(got, sizeof(got), sent, sizeof(sent));
	g_assert_false(in(m, COM1 + LSR) & 0x02);	/* no overrun */
	close(fd);
	fixture_machine_free(m);
	g_rmdir(dir);
}

static void test_thre_sequence(void)
{
	struct machine *m = machine_new();

	add_com1(m);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x01);
	g_assert_cmphex(in(m, COM1 + LSR), ==, 0x60);

	/* Enabling THRI with THR empty raises it at once. */
	out(m, COM1 + IER, 0x02);
	g_assert_cmpint(irq_level[4], ==, 1);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x02);
	/* That IIR read acknowledged it. */
	g_assert_cmpint(irq_level[4], ==, 0);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x01);

	/* Each transmitted byte raises it again: a new edge per byte. */
	out(m, COM1 + THR, 'a');
	g_assert_cmpint(irq_level[4], ==, 1);
	g_assert_cmpint(irq_raises[4], ==, 2);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x02);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x01);

	/* Linux's startup test: IER 0 then THRI again re-raises it. */
	out(m, COM1 + IER, 0x00);
	out(m, COM1 + IER, 0x02);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x02);
	out(m, COM1 + IER, 0x00);
	g_assert_cmpint(irq_level[4], ==, 0);
	fixture_machine_free(m);
}

static void test_priorities(void)
{
	struct machine *m = machine_new();

	add_com1(m);
	out(m, COM1 + MCR, 0x10);	/* loopback, FIFO off */
	out(m, COM1 + IER, 0x0f);
	/* Entering loopback dropped CTS/DSR/DCD: modem status is pending. */
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x02);	/* THRE beats MSR */
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x00);	/* then modem status */
	in(m, COM1 + MSR);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x01);

	out(m, COM1 + THR, 'x');
	out(m, COM1 + THR, 'y');	/* holding register full: overrun */
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x06);	/* line status first */
	g_assert_cmphex(in(m, COM1 + LSR) & 0x03, ==, 0x03);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x04);	/* then data */
	g_assert_cmpint(in(m, COM1 + RBR), ==, 'x');
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x02);	/* then THRE */
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x01);
	g_assert_cmpint(irq_level[4], ==, 0);
	fixture_machine_free(m);
}

static void test_fifo(void)
{
	struct machine *m = machine_new();

	add_com1(m);
	out(m, COM1 + MCR, 0x10);
	out(m, COM1 + FCR, 0xc1);	/* FIFO on, trigger 14 */
	out(m, COM1 + IER, 0x01);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0xc1);
	for (int i = 0; i < 3; i++)
		out(m, COM1 + THR, '0' + i);
	/* Below the trigger level: character timeout. */
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0xcc);
	for (int i = 3; i < 14; i++)
		out(m, COM1 + THR, '0' + i);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0xc4);
	out(m, COM1 + THR, 'A');
	out(m, COM1 + THR, 'B');
	g_assert_false(in(m, COM1 + LSR) & 0x02);	/* 16 fit */
	out(m, COM1 + THR, 'C');
	g_assert_true(in(m, COM1 + LSR) & 0x02);	/* the 17th overran */
	g_assert_cmpint(in(m, COM1 + RBR), ==, '0');
	g_assert_cmpint(in(m, COM1 + RBR), ==, '1');

	out(m, COM1 + FCR, 0xc3);	/* clear the receive FIFO */
	g_assert_false(in(m, COM1 + LSR) & 0x01);
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0xc1);
	out(m, COM1 + FCR, 0x00);	/* FIFO off */
	g_assert_cmphex(in(m, COM1 + IIR), ==, 0x01);
	fixture_machine_free(m);
}

static void test_dlab(void)
{
	struct machine *m = machine_new();

	add_com1(m);
	out(m, COM1 + IER, 0x05);
	out(m, COM1 + LCR, 0x83);
	out(m, COM1 + 0, 0x01);		/* 115200 baud */
	out(m, COM1 + 1, 0x00);
	g_assert_cmphex(in(m, COM1 + 0), ==, 0x01);
	g_assert_cmphex(in(m, COM1 + 1), ==, 0x00);
	g_assert_cmphex(in(m, COM1 + LCR), ==, 0x83);
	out(m, COM1 + LCR, 0x03);
	g_assert_cmphex(in(m, COM1 + IER), ==, 0x05);	/* untouched by DLM */
	out(m, COM1 + LCR, 0x80);
	out(m, COM1 + 1, 0x02);
	g_assert_cmphex(in(m, COM1 + 1), ==, 0x02);
	g_assert_cmphex(in(m, COM1 + 0), ==, 0x01);
	out(m, COM1 + LCR, 0x03);
	g_assert_cmphex(in(m, COM1 + IER), ==, 0x05);
	fixture_machine_free(m);
}

static void test_loopback_and_probe(void)
{
	struct machine *m = machine_new();

	add_com1(m);
	/* Linux 8250 autoconfig: IER must hold 0 and 0x0f, nothing more. */
	out(m, COM1 + IER, 0x00);
	g_assert_cmphex(in(m, COM1 + IER), ==, 0x00);
	out(m, COM1 + IER, 0xff);
	g_assert_cmphex(in(m, COM1 + IER) & 0xf0, ==, 0x00);
	out(m, COM1 + IER, 0x00);
	/* Loopback: MSR reflects MCR (RTS->CTS, OUT2->DCD). */
	out(m, COM1 + MCR, 0x1a);
	g_assert_cmphex(in(m, COM1 + MSR) & 0xf0, ==, 0x90);
	out(m, COM1 + MCR, 0x15);	/* DTR->DSR, OUT1->RI */
	g_assert_cmphex(in(m, COM1 + MSR) & 0xf0, ==, 0x60);
	out(m, COM1 + THR, 'L');
	g_assert_true(in(m, COM1 + LSR) & 0x01);
	g_assert_cmpint(in(m, COM1 + RBR), ==, 'L');
	out(m, COM1 + MCR, 0x00);
	g_assert_cmphex(in(m, COM1 + MSR) & 0xf0, ==, 0xb0);
	/* FIFO type probe: IIR bits 7:6 = 11 means a working 16550A FIFO. */
	out(m, COM1 + FCR, 0x01);
	g_assert_cmphex(in(m, COM1 + IIR) >> 6, ==, 3);
	g_assert_false(in(m, COM1 + IIR) & 0x20);	/* no 64-byte FIFO (16750) */
	/* Scratch register. */
	out(m, COM1 + SCR, 0xa5);
	g_assert_cmphex(in(m, COM1 + SCR), ==, 0xa5);
	out(m, COM1 + SCR, 0x5a);
	g_assert_cmphex(in(m, COM1 + SCR), ==, 0x5a);
	fixture_machine_free(m);
}

static void test_ports_and_errors(void)
{
	struct machine *m = machine_new();
	char err[256] = "";

	g_assert_cmpint(uart_create(m, 2, "null", err, sizeof(err)), ==, 0);
	g_assert_cmpint(uart_create(m, 3, "null", err, sizeof(err)), ==, 0);
	g_assert_cmpint(uart_create(m, 1, "none", err, sizeof(err)), ==, 0);
	g_assert_cmphex(in(m, 0x3e8 + SCR), ==, 0x00);
	g_assert_cmphex(in(m, 0x2e8 + LSR), ==, 0x60);
	g_assert_cmphex(in(m, COM2 + LSR), ==, 0xff);	/* none: no port */
	out(m, 0x2e8 + IER, 0x02);
	g_assert_cmpint(irq_level[3], ==, 1);

	g_assert_cmpint(uart_create(m, 0, "telnet:foo", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "telnet:foo"));
	g_assert_cmpint(uart_create(m, 0, "file:/nonexistent-vireo/x", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "/nonexistent-vireo/x"));
	g_assert_cmpint(uart_create(m, 4, "null", err, sizeof(err)), <, 0);
	g_assert_cmphex(in(m, COM1 + LSR), ==, 0xff);	/* nothing half-made */
	fixture_machine_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/uart/file-output", test_file_output);
	g_test_add_func("/uart/unix-input", test_unix_input);
	g_test_add_func("/uart/input-burst", test_input_burst);
	g_test_add_func("/uart/thre-sequence", test_thre_sequence);
	g_test_add_func("/uart/priorities", test_priorities);
	g_test_add_func("/uart/fifo", test_fifo);
	g_test_add_func("/uart/dlab", test_dlab);
	g_test_add_func("/uart/loopback-and-probe", test_loopback_and_probe);
	g_test_add_func("/uart/ports-and-errors", test_ports_and_errors);
	return g_test_run();
}
