/* isa-debug-exit: status (v << 1) | 1 as QEMU, and option checking. */
#include <glib.h>
#include <string.h>

#include "board.h"
#include "bus.h"
#include "machine.h"
#include "machine_fixture.h"
#include "options.h"

static int create(struct machine *m, const char *str, char *err, size_t errlen)
{
	const struct device_type *t = device_type_find("isa-debug-exit");
	struct opts *o;
	int ret;

	g_assert_nonnull(t);
	/* The registered type is this file's, and referencing it links it in. */
	g_assert_true(t->create == debug_exit_create);
	o = opts_parse("-device", str, "driver", err, errlen);
	g_assert_nonnull(o);
	ret = t->create(m, o, err, errlen);
	opts_free(o);
	return ret;
}

static void check_exit(const char *str, uint16_t port, unsigned size, uint32_t v, int status)
{
	struct machine *m = fixture_machine_new(NULL);
	char err[256] = "";

	g_assert_cmpint(create(m, str, err, sizeof(err)), ==, 0);
	g_assert_cmpint(m->request, ==, MACHINE_REQ_NONE);
	bus_write(&m->pio, port, size, v);
	g_assert_cmpint(m->request, ==, MACHINE_REQ_EXIT);
	g_assert_cmpint(m->exit_status, ==, status);
	fixture_machine_free(m);
}

static void test_status(void)
{
	check_exit("isa-debug-exit,iobase=0xf4,iosize=4", 0xf4, 4, 0x10, 0x21);
	check_exit("isa-debug-exit,iobase=0xf4,iosize=4", 0xf4, 1, 0, 1);
	check_exit("isa-debug-exit,iobase=0xf4,iosize=4", 0xf6, 1, 0x31, 0x63);
	/* QEMU's defaults: 0x501, two ports. */
	check_exit("isa-debug-exit", 0x501, 1, 2, 5);
	check_exit("isa-debug-exit,id=dbg", 0x502, 1, 1, 3);
}

static void test_range(void)
{
	struct machine *m = fixture_machine_new(NULL);
	char err[256] = "";

	g_assert_cmpint(create(m, "isa-debug-exit,iobase=0xf4,iosize=1", err, sizeof(err)), ==, 0);
	bus_write(&m->pio, 0xf5, 1, 1);		/* outside the device */
	g_assert_cmpint(m->request, ==, MACHINE_REQ_NONE);
	g_assert_cmphex(bus_read(&m->pio, 0xf4, 1), ==, 0);
	/* Two devices on one port: refused, naming the ports. */
	g_assert_cmpint(create(m, "isa-debug-exit,iobase=0xf4,iosize=1", err, sizeof(err)), <, 0);
	g_assert_nonnull(strstr(err, "0xf4"));
	fixture_machine_free(m);
}

static void expect_error(const char *str, const char *needle)
{
	struct machine *m = fixture_machine_new(NULL);
	char err[256] = "";

	g_assert_cmpint(create(m, str, err, sizeof(err)), <, 0);
	if (!strstr(err, needle))
		g_error("'%s': message '%s' does not name '%s'", str, err, needle);
	g_assert_null(m->devices);
	fixture_machine_free(m);
}

static void test_bad_options(void)
{
	expect_error("isa-debug-exit,iosize=3", "iosize=3");
	expect_error("isa-debug-exit,iosize=8", "iosize=8");
	expect_error("isa-debug-exit,iosize=0", "iosize=0");
	expect_error("isa-debug-exit,iosize=two", "iosize='two'");
	expect_error("isa-debug-exit,iobase=-1", "iobase='-1'");
	expect_error("isa-debug-exit,iobase=0xffff,iosize=2", "iobase=0xffff");
	expect_error("isa-debug-exit,iobase=0x10000000000", "iobase=0x10000000000");
	expect_error("isa-debug-exit,iobase=0xf4,size=4", "size");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/debug-exit/status", test_status);
	g_test_add_func("/debug-exit/range", test_range);
	g_test_add_func("/debug-exit/bad-options", test_bad_options);
	return g_test_run();
}
