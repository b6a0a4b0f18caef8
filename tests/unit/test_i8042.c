/* i8042 controller: the probe Linux makes, and the reset line (0xFE, 0xD1, port 0x92). */
#include <glib.h>
#include <string.h>

#include "board.h"
#include "bus.h"
#include "machine.h"
#include "machine_fixture.h"

static struct machine *machine_new(void)
{
	struct machine *m = fixture_machine_new(NULL);
	char err[256] = "";

	g_assert_cmpint(i8042_create(m, err, sizeof(err)), ==, 0);
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

/* Command with one result byte, as i8042_command() does it. */
static uint8_t command(struct machine *m, uint8_t cmd)
{
	out(m, 0x64, cmd);
	g_assert_true(in(m, 0x64) & 0x01);
	return in(m, 0x60);
}

static void test_probe(void)
{
	struct machine *m = machine_new();
	uint8_t ctr;

	/* Flush: nothing in the output buffer. */
	g_assert_false(in(m, 0x64) & 0x01);
	g_assert_cmphex(command(m, 0xaa), ==, 0x55);	/* self test */
	g_assert_true(in(m, 0x64) & 0x04);		/* system flag */
	g_assert_false(in(m, 0x64) & 0x01);		/* read emptied it */
	g_assert_cmphex(command(m, 0xab), ==, 0x00);	/* keyboard interface */
	/* Command byte: read twice the same, write, read back. */
	ctr = command(m, 0x20);
	g_assert_cmphex(command(m, 0x20), ==, ctr);
	out(m, 0x64, 0x60);
	out(m, 0x60, 0x74);
	g_assert_cmphex(command(m, 0x20), ==, 0x74);
	/* Port enables land in the command byte. */
	out(m, 0x64, 0xa8);
	g_assert_cmphex(command(m, 0x20) & 0x20, ==, 0x00);
	out(m, 0x64, 0xa7);
	g_assert_cmphex(command(m, 0x20) & 0x20, ==, 0x20);
	out(m, 0x64, 0xae);
	g_assert_cmphex(command(m, 0x20) & 0x10, ==, 0x00);
	out(m, 0x64, 0xad);
	g_assert_cmphex(command(m, 0x20) & 0x10, ==, 0x10);
	/* AUX loopback: the byte comes back flagged as AUX data. */
	out(m, 0x64, 0xd3);
	out(m, 0x60, 0x5a);
	g_assert_cmphex(in(m, 0x64) & 0x21, ==, 0x21);
	g_assert_cmphex(in(m, 0x60), ==, 0x5a);
	g_assert_cmphex(in(m, 0x64) & 0x21, ==, 0x00);
	g_assert_cmpint(m->request, ==, MACHINE_REQ_NONE);
	fixture_machine_free(m);
}

static void test_reset_fe(void)
{
	struct machine *m = machine_new();

	out(m, 0x64, 0xff);		/* pulses nothing: bit 0 stays high */
	g_assert_cmpint(m->request, ==, MACHINE_REQ_NONE);
	out(m, 0x64, 0xfe);
	g_assert_cmpint(m->request, ==, MACHINE_REQ_RESET);
	fixture_machine_free(m);
}

static void test_reset_output_port(void)
{
	struct machine *m = machine_new();

	g_assert_cmphex(command(m, 0xd0) & 0x03, ==, 0x03);
	out(m, 0x64, 0xd1);
	out(m, 0x60, 0x03);		/* A20 on, reset high: nothing */
	g_assert_cmpint(m->request, ==, MACHINE_REQ_NONE);
	out(m, 0x64, 0xd1);
	out(m, 0x60, 0x02);
	g_assert_cmpint(m->request, ==, MACHINE_REQ_RESET);
	fixture_machine_free(m);
}

static void test_port92(void)
{
	struct machine *m = machine_new();

	g_assert_cmphex(in(m, 0x92), ==, 0x02);
	out(m, 0x92, 0x02);		/* A20 only */
	g_assert_cmpint(m->request, ==, MACHINE_REQ_NONE);
	out(m, 0x92, 0x03);
	g_assert_cmpint(m->request, ==, MACHINE_REQ_RESET);
	fixture_machine_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/i8042/probe", test_probe);
	g_test_add_func("/i8042/reset-fe", test_reset_fe);
	g_test_add_func("/i8042/reset-output-port", test_reset_output_port);
	g_test_add_func("/i8042/port92", test_port92);
	return g_test_run();
}
