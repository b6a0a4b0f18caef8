/* Option strings, bus dispatch and guest memory: the pieces every device uses. */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "bus.h"
#include "memory.h"
#include "options.h"

static void test_opts_basic(void)
{
	char err[256] = "";
	struct opts *o = opts_parse("-drive", "disk.img,format=raw,readonly,id=a,,b", "file",
				    err, sizeof(err));
	bool ro;

	g_assert_nonnull(o);
	g_assert_cmpstr(opts_get(o, "file"), ==, "disk.img");
	g_assert_cmpstr(opts_get(o, "format"), ==, "raw");
	g_assert_cmpstr(opts_get(o, "id"), ==, "a,b");	/* ",," escapes a comma */
	g_assert_cmpint(opts_get_bool(o, "readonly", false, &ro, err, sizeof(err)), ==, 0);
	g_assert_true(ro);
	g_assert_cmpint(opts_check_all_used(o, err, sizeof(err)), ==, 0);
	opts_free(o);
}

static void test_opts_errors(void)
{
	char err[256] = "";
	struct opts *o;
	uint64_t v;
	bool b;
	static const char *const words[] = { "none", "writeback", NULL };

	g_assert_null(opts_parse("-drive", "a=1,a=2", NULL, err, sizeof(err)));
	g_assert_nonnull(strstr(err, "'a' given twice"));
	g_assert_null(opts_parse("-drive", "=1", NULL, err, sizeof(err)));

	o = opts_parse("-device", "x,iobase=0xzz,flag=maybe,cache=foo,bogus=1", "driver",
		       err, sizeof(err));
	g_assert_nonnull(o);
	g_assert_cmpint(opts_get_uint(o, "iobase", 0, &v, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "iobase='0xzz'"));
	g_assert_cmpint(opts_get_bool(o, "flag", false, &b, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "flag='maybe'"));
	g_assert_cmpint(opts_get_enum(o, "cache", words, 0, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "none, writeback"));
	opts_get(o, "driver");
	g_assert_cmpint(opts_check_all_used(o, err, sizeof(err)), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "unknown option 'bogus'"));
	opts_free(o);
}

static void test_parse_size(void)
{
	uint64_t v;

	g_assert_cmpint(parse_size("128", 'M', &v), ==, 0);
	g_assert_cmpuint(v, ==, 128ull << 20);
	g_assert_cmpint(parse_size("4G", 'M', &v), ==, 0);
	g_assert_cmpuint(v, ==, 4ull << 30);
	g_assert_cmpint(parse_size("512k", 0, &v), ==, 0);
	g_assert_cmpuint(v, ==, 512ull << 10);
	g_assert_cmpint(parse_size("1MiB", 0, &v), ==, 0);
	g_assert_cmpuint(v, ==, 1ull << 20);
	g_assert_cmpint(parse_size("abc", 'M', &v), ==, -EINVAL);
	g_assert_cmpint(parse_size("-1", 'M', &v), ==, -EINVAL);
	g_assert_cmpint(parse_size("12X", 'M', &v), ==, -EINVAL);
	g_assert_cmpint(parse_size("99999999999T", 'M', &v), ==, -ERANGE);
}

struct reg {
	uint64_t last_off, last_val;
	unsigned last_size, writes;
};

static uint64_t reg_read(void *opaque, uint64_t off, unsigned size)
{
	return 0x1000 + off;
}

static void reg_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct reg *r = opaque;

	r->last_off = off;
	r->last_val = val;
	r->last_size = size;
	r->writes++;
}

static const struct bus_ops reg_ops = { reg_read, reg_write };

static void test_bus_dispatch(void)
{
	struct bus b;
	struct reg a = { 0 }, c = { 0 };

	bus_init(&b, "pio");
	g_assert_cmpint(bus_register(&b, 0x3f8, 8, &reg_ops, &a, "a"), ==, 0);
	g_assert_cmpint(bus_register(&b, 0x100, 0x10, &reg_ops, &c, "c"), ==, 0);
	/* Overlaps at either end and containment are refused. */
	g_assert_cmpint(bus_register(&b, 0x3ff, 1, &reg_ops, &c, "x"), ==, -EEXIST);
	g_assert_cmpint(bus_register(&b, 0x3f0, 9, &reg_ops, &c, "x"), ==, -EEXIST);
	g_assert_cmpint(bus_register(&b, 0x0, 0x1000, &reg_ops, &c, "x"), ==, -EEXIST);
	g_assert_cmpint(bus_register(&b, 0x10, 0, &reg_ops, &c, "x"), ==, -EINVAL);
	g_assert_cmpint(bus_register(&b, ~0ull, 2, &reg_ops, &c, "x"), ==, -EINVAL);
	/* Adjacent is fine. */
	g_assert_cmpint(bus_register(&b, 0x400, 1, &reg_ops, &c, "d"), ==, 0);

	g_assert_cmpuint(bus_read(&b, 0x3fd, 1), ==, 0x1005);
	bus_write(&b, 0x3f9, 2, 0xbeef);
	g_assert_cmpuint(a.last_off, ==, 1);
	g_assert_cmpuint(a.last_val, ==, 0xbeef);
	g_assert_cmpuint(a.last_size, ==, 2);
	/* Nothing there: all ones, writes dropped. */
	g_assert_cmpuint(bus_read(&b, 0x3f7, 1), ==, 0xff);
	g_assert_cmpuint(bus_read(&b, 0x500, 4), ==, 0xffffffff);
	g_assert_cmpuint(bus_read(&b, 0x500, 8), ==, ~0ull);
	bus_write(&b, 0x3f7, 1, 1);
	g_assert_cmpuint(a.writes + c.writes, ==, 1);

	g_assert_cmpint(bus_unregister(&b, 0x3f8, &c), ==, -ENOENT);	/* wrong owner */
	g_assert_cmpint(bus_unregister(&b, 0x3f8, &a), ==, 0);
	g_assert_cmpuint(bus_read(&b, 0x3f8, 1), ==, 0xff);
	g_assert_cmpint(bus_register(&b, 0x3f8, 8, &reg_ops, &c, "a2"), ==, 0);
	g_assert_cmpuint(bus_read(&b, 0x3f8, 1), ==, 0x1000);
	bus_destroy(&b);
}

/* Many ranges in random order: every lookup finds its own. */
static void test_bus_many(void)
{
	struct bus b;
	struct reg r[64];
	GRand *rnd = g_rand_new_with_seed(7);
	unsigned order[64];

	bus_init(&b, "mmio");
	for (unsigned i = 0; i < 64; i++)
		order[i] = i;
	for (unsigned i = 63; i > 0; i--) {
		unsigned j = g_rand_int_range(rnd, 0, i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned i = 0; i < 64; i++)
		g_assert_cmpint(bus_register(&b, 0xd0000000ull + order[i] * 0x1000, 0x800,
					     &reg_ops, &r[order[i]], "r"), ==, 0);
	for (unsigned i = 0; i < 64; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		bus_write(&b, 0xd0000000ull + i * 0x1000 + 0x7ff, 1, i);
		g_assert_cmpuint(r[i].writes, ==, 1);
		g_assert_cmpuint(r[i].last_val, ==, i);
		g_assert_cmpuint(bus_read(&b, 0xd0000000ull + i * 0x1000 + 0x800, 1), ==, 0xff);
	}
	g_rand_free(rnd);
	bus_destroy(&b);
}

static void test_guest_mem(void)
{
	struct guest_mem gm;
	char err[256];
	uint8_t buf[16] = { 1, 2, 3 };

	/* 4 GiB of RAM: 3 GiB below the PCI hole, 1 GiB from 4 GiB up. */
	g_assert_cmpint(guest_mem_init(&gm, 4ull << 30, NULL, false, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(gm.nr, ==, 2);
	g_assert_cmpuint(guest_mem_lowmem_end(&gm), ==, MEM_LOWMEM_LIMIT);
	g_assert_cmpuint(gm.r[1].gpa, ==, MEM_4G);
	g_assert_cmpuint(gm.r[1].size, ==, (4ull << 30) - MEM_LOWMEM_LIMIT);

	g_assert_nonnull(gpa_to_hva(&gm, 0, 16));
	g_assert_nonnull(gpa_to_hva(&gm, MEM_LOWMEM_LIMIT - 16, 16));
	g_assert_null(gpa_to_hva(&gm, MEM_LOWMEM_LIMIT - 16, 17));	/* runs into the hole */
	g_assert_null(gpa_to_hva(&gm, MEM_PCI_ECAM_BASE, 1));
	g_assert_null(gpa_to_hva(&gm, MEM_4G + (1ull << 30), 1));	/* past the end */
	g_assert_null(gpa_to_hva(&gm, ~0ull, 2));			/* wraps */
	g_assert_null(gpa_to_hva(&gm, 16, ~0ull));
	g_assert_nonnull(gpa_to_hva(&gm, MEM_4G + (1ull << 30) - 1, 1));

	g_assert_cmpint(guest_write(&gm, MEM_4G + 4096, buf, sizeof(buf)), ==, 0);
	memset(buf, 0, sizeof(buf));
	g_assert_cmpint(guest_read(&gm, MEM_4G + 4096, buf, sizeof(buf)), ==, 0);
	g_assert_cmpuint(buf[2], ==, 3);
	g_assert_cmpint(guest_read(&gm, MEM_LOWMEM_LIMIT - 8, buf, 16), ==, -EFAULT);
	guest_mem_destroy(&gm);

	/* Small RAM: one region. */
	g_assert_cmpint(guest_mem_init(&gm, 128 << 20, NULL, false, err, sizeof(err)), ==, 0);
	g_assert_cmpuint(gm.nr, ==, 1);
	g_assert_null(gpa_to_hva(&gm, 128 << 20, 1));
	guest_mem_destroy(&gm);

	g_assert_cmpint(guest_mem_init(&gm, 4097, NULL, false, err, sizeof(err)), ==, -EINVAL);
	g_assert_cmpint(guest_mem_init(&gm, 64 << 20, "/nonexistent-dir", false, err, sizeof(err)),
			<, 0);
	g_assert_nonnull(strstr(err, "/nonexistent-dir"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/core/opts/basic", test_opts_basic);
	g_test_add_func("/core/opts/errors", test_opts_errors);
	g_test_add_func("/core/opts/size", test_parse_size);
	g_test_add_func("/core/bus/dispatch", test_bus_dispatch);
	g_test_add_func("/core/bus/many", test_bus_many);
	g_test_add_func("/core/memory/map", test_guest_mem);
	return g_test_run();
}
