/*
 * ACPI: every table found from the RSDP with its signature and checksum,
 * the FADT's pointers and registers, the MADT for 4 vCPUs, MCFG; the DSDT
 * through iasl (decompiled and compiled back); the PM registers: S5
 * powers off, the power button raises the SCI, the reset register resets,
 * the PM timer counts.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "accel/accel.h"
#include "acpi.h"
#include "bus.h"
#include "machine.h"
#include "memory.h"
#include "pci.h"

#define PM1_STS 0x600
#define PM1_EN 0x602
#define PM1_CNT 0x604
#define PM_TMR 0x608

struct fx {
	struct machine m;
	int level[32];
	unsigned sci_edges;
};

static struct fx *fx_of(struct machine *m)
{
	return (struct fx *)((char *)m - offsetof(struct fx, m));
}

static int fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct fx *f = fx_of(m);

	if (gsi == 9 && level && !f->level[9])
		f->sci_edges++;
	f->level[gsi] = level;
	return 0;
}

static int fake_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	return 0;
}

static const struct accel_ops fake_accel = {
	.name = "fake", .set_irq = fake_set_irq, .send_msi = fake_send_msi,
};

static struct fx *fx_new(unsigned vcpus)
{
	struct fx *f = g_new0(struct fx, 1);
	char err[256];

	pthread_mutex_init(&f->m.lock, NULL);
	bus_init(&f->m.pio, "pio");
	bus_init(&f->m.mmio, "mmio");
	f->m.nr_irq_pins = 24;
	f->m.nr_vcpus = vcpus;
	f->m.accel = &fake_accel;
	g_assert_cmpint(guest_mem_init(&f->m.mem, 64 << 20, NULL, false, err, sizeof(err)), ==, 0);
	/* The order pc.c uses: ACPI's 0xCF9 before the PCI host's 0xCF8. */
	g_assert_cmpint(acpi_init(&f->m, err, sizeof(err)), ==, 0);
	g_assert_cmpint(pci_host_init(&f->m, err, sizeof(err)), ==, 0);
	g_assert_cmpint(acpi_build(&f->m, err, sizeof(err)), ==, 0);
	return f;
}

static void fx_free(struct fx *f)
{
	struct device *d, *next;

	for (d = f->m.devices; d; d = next) {
		next = d->next;
		if (d->destroy)
			d->destroy(d);
	}
	g_assert_null(f->m.acpi);
	pci_host_destroy(&f->m);
	guest_mem_destroy(&f->m.mem);
	bus_destroy(&f->m.pio);
	bus_destroy(&f->m.mmio);
	g_free(f);
}

static const uint8_t *gp(struct fx *f, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gpa_to_hva(&f->m.mem, gpa, len);

	g_assert_nonnull(p);
	return p;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* A table at gpa with its signature and a correct checksum; returns it. */
static const uint8_t *table(struct fx *f, uint64_t gpa, const char *sig)
{
	const uint8_t *t = gp(f, gpa, 36);
	uint32_t len = le(t + 4, 4);

	g_assert_cmpmem(t, 4, sig, 4);
	g_assert_cmpuint(len, >=, 36);
	/* Below 1 MiB, inside the e820-reserved BIOS area. */
	g_assert_cmphex(gpa, >=, 0xE0000);
	g_assert_cmphex(gpa + len, <=, 0x100000);
	t = gp(f, gpa, len);
	g_assert_cmpuint(sum(t, len), ==, 0);
	return t;
}

/* Find a table by signature through the XSDT. */
static const uint8_t *find(struct fx *f, const char *sig, uint64_t *gpa)
{
	const uint8_t *rsdp = gp(f, f->m.rsdp_addr, 36);
	const uint8_t *xsdt = table(f, le(rsdp + 24, 8), "XSDT");
	unsigned n = (le(xsdt + 4, 4) - 36) / 8;

	for (unsigned i = 0; i < n; i++) {
		uint64_t a = le(xsdt + 36 + 8 * i, 8);

		if (!memcmp(gp(f, a, 4), sig, 4)) {
			if (gpa)
				*gpa = a;
			return table(f, a, sig);
		}
	}
	g_assert_not_reached();
}

static void test_rsdp_xsdt_rsdt(void)
{
	struct fx *f = fx_new(4);
	const uint8_t *rsdp, *xsdt, *rsdt;
	static const char *const sigs[] = { "FACP", "APIC", "MCFG" };

	/* Where a scan of the BIOS area finds it: 16-byte aligned. */
	g_assert_cmphex(f->m.rsdp_addr, >=, 0xE0000);
	g_assert_cmphex(f->m.rsdp_addr & 15, ==, 0);
	rsdp = gp(f, f->m.rsdp_addr, 36);
	g_assert_cmpmem(rsdp, 8, "RSD PTR ", 8);
	g_assert_cmpuint(sum(rsdp, 20), ==, 0);
	g_assert_cmpuint(rsdp[15], ==, 2);
	g_assert_cmpuint(le(rsdp + 20, 4), ==, 36);
	g_assert_cmpuint(sum(rsdp, 36), ==, 0);

	xsdt = table(f, le(rsdp + 24, 8), "XSDT");
	rsdt = table(f, le(rsdp + 16, 4), "RSDT");
	g_assert_cmpuint(le(xsdt + 4, 4), ==, 36 + 8 * 3);
	g_assert_cmpuint(le(rsdt + 4, 4), ==, 36 + 4 * 3);
	for (unsigned i = 0; i < 3; i++) {
		/* Both lists name the same tables, each one sound. */
		g_assert_cmphex(le(xsdt + 36 + 8 * i, 8), ==, le(rsdt + 36 + 4 * i, 4));
		table(f, le(xsdt + 36 + 8 * i, 8), sigs[i]);
	}
	fx_free(f);
}

static void test_fadt(void)
{
	struct fx *f = fx_new(4);
	const uint8_t *fadt = find(f, "FACP", NULL), *facs;
	uint64_t dsdt = le(fadt + 140, 8);
	uint32_t flags = le(fadt + 112, 4);

	g_assert_cmpuint(le(fadt + 4, 4), ==, 276);	/* ACPI 6 layout */
	g_assert_cmpuint(fadt[8], ==, 6);
	/* DSDT: both pointers agree and lead to a sound table. */
	g_assert_cmphex(le(fadt + 40, 4), ==, dsdt);
	table(f, dsdt, "DSDT");
	/* FACS: 64-byte aligned, no checksum. */
	g_assert_cmphex(le(fadt + 36, 4) & 63, ==, 0);
	facs = gp(f, le(fadt + 36, 4), 64);
	g_assert_cmpmem(facs, 4, "FACS", 4);
	g_assert_cmpuint(le(facs + 4, 4), ==, 64);

	g_assert_cmpuint(le(fadt + 46, 2), ==, 9);		/* SCI_INT */
	g_assert_cmpuint(le(fadt + 48, 4), ==, 0);		/* SMI_CMD: no mode switch */
	g_assert_cmphex(le(fadt + 56, 4), ==, PM1_STS);		/* PM1a_EVT_BLK */
	g_assert_cmphex(le(fadt + 64, 4), ==, PM1_CNT);		/* PM1a_CNT_BLK */
	g_assert_cmphex(le(fadt + 76, 4), ==, PM_TMR);		/* PM_TMR_BLK */
	g_assert_cmpuint(fadt[88], ==, 4);
	g_assert_cmpuint(fadt[89], ==, 2);
	g_assert_cmpuint(fadt[91], ==, 4);
	g_assert_cmphex(le(fadt + 160 - 12 + 4, 8), ==, PM1_STS);	/* X_PM1a_EVT_BLK */
	g_assert_cmphex(le(fadt + 172 + 4, 8), ==, PM1_CNT);
	g_assert_cmphex(le(fadt + 208 + 4, 8), ==, PM_TMR);
	/* Not hardware-reduced; power button fixed; 32-bit timer; reset register. */
	g_assert_cmphex(flags & (1u << 20), ==, 0);
	g_assert_cmphex(flags & (1u << 4), ==, 0);
	g_assert_cmphex(flags & (1u << 8), !=, 0);
	g_assert_cmphex(flags & (1u << 10), !=, 0);
	g_assert_cmpuint(fadt[116], ==, 1);			/* RESET_REG in I/O space */
	g_assert_cmpuint(fadt[117], ==, 8);
	g_assert_cmphex(le(fadt + 120, 8), ==, 0xCF9);
	g_assert_cmphex(fadt[128], ==, 0x06);
	fx_free(f);
}

static void test_madt(void)
{
	struct fx *f = fx_new(4);
	uint64_t gpa;
	const uint8_t *madt = find(f, "APIC", &gpa);
	uint32_t len = le(madt + 4, 4);
	unsigned cpus = 0, ioapics = 0, isos = 0;
	bool seen[4] = { false };

	g_assert_cmphex(le(madt + 36, 4), ==, MEM_LAPIC_BASE);
	for (uint32_t off = 44; off < len; off += madt[off + 1]) {
		const uint8_t *e = madt + off;

		g_assert_cmpuint(e[1], >=, 2);
		g_assert_cmpuint(off + e[1], <=, len);
		switch (e[0]) {
		case 0:		/* local APIC: UID and APIC ID are the vCPU index */
			g_assert_cmpuint(e[1], ==, 8);
			g_assert_cmpuint(e[3], <, 4);
			g_assert_cmpuint(e[2], ==, e[3]);
			g_assert_false(seen[e[3]]);
			seen[e[3]] = true;
			g_assert_cmpuint(le(e + 4, 4) & 1, ==, 1);
			cpus++;
			break;
		case 1:
			g_assert_cmphex(le(e + 4, 4), ==, MEM_IOAPIC_BASE);
			g_assert_cmpuint(le(e + 8, 4), ==, 0);
			ioapics++;
			break;
		case 2:
			if (e[3] == 0) {
				g_assert_cmpuint(le(e + 4, 4), ==, 2);
			} else {
				g_assert_cmpuint(e[3], ==, 9);
				g_assert_cmpuint(le(e + 4, 4), ==, 9);
				g_assert_cmphex(le(e + 8, 2), ==, 0x000D);	/* level, high */
			}
			isos++;
			break;
		}
	}
	g_assert_cmpuint(cpus, ==, 4);
	g_assert_cmpuint(ioapics, ==, 1);
	g_assert_cmpuint(isos, ==, 2);
	fx_free(f);
}

static void test_mcfg(void)
{
	struct fx *f = fx_new(1);
	const uint8_t *mcfg = find(f, "MCFG", NULL);

	g_assert_cmpuint(le(mcfg + 4, 4), ==, 36 + 8 + 16);
	g_assert_cmphex(le(mcfg + 44, 8), ==, MEM_PCI_ECAM_BASE);
	g_assert_cmpuint(le(mcfg + 52, 2), ==, 0);
	g_assert_cmpuint(mcfg[54], ==, 0);
	/* As many buses as the ECAM window decodes (the others read all ones). */
	g_assert_cmpuint(mcfg[55], ==, MEM_PCI_ECAM_SIZE / (1 << 20) - 1);
	fx_free(f);
}

/* iasl's output without any whitespace, so its layout does not matter. */
static char *squeeze(const char *s)
{
	GString *o = g_string_new(NULL);

	for (; *s; s++)
		if (!g_ascii_isspace(*s))
			g_string_append_c(o, *s);
	return g_string_free(o, FALSE);
}

static void rm_rf(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d))) {
		char *p = g_build_filename(dir, name, NULL);

		g_remove(p);
		g_free(p);
	}
	g_dir_close(d);
	g_rmdir(dir);
}

static bool run_tool(const char *tool, const char *dir, const char *const *args, char **out)
{
	const char *argv[8] = { tool };
	GError *error = NULL;
	char *o = NULL, *e = NULL;
	int status;
	unsigned n = 1;

	for (; *args && n < 7; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	g_assert_true(g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
				   &o, &e, &status, &error));
	*out = g_strconcat(o, e, NULL);
	g_free(o);
	g_free(e);
	return g_spawn_check_wait_status(status, NULL);
}

static char *dump(struct fx *f, const char *dir, const char *sig, const char *name)
{
	/* The DSDT hangs off the FADT, the rest off the XSDT. */
	const uint8_t *t = strcmp(sig, "DSDT") ? find(f, sig, NULL) :
			   table(f, le(find(f, "FACP", NULL) + 140, 8), "DSDT");
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, (const char *)t, le(t + 4, 4), NULL));
	return path;
}

static void test_dsdt_iasl(void)
{
	struct fx *f;
	char *dir, *out, *dsl, *text, *path, *squeezed;
	char *iasl = g_find_program_in_path("iasl"), *acpiexec = g_find_program_in_path("acpiexec");

	if (!iasl) {
		g_test_skip("iasl not installed (apt-get install acpica-tools)");
		g_free(acpiexec);
		return;
	}
	f = fx_new(4);
	dir = g_dir_make_tmp("vireo-acpi-XXXXXX", NULL);
	g_assert_nonnull(dir);
	path = dump(f, dir, "DSDT", "dsdt.dat");
	g_free(path);

	/* Decompile: no error, and the objects the guest needs are there. */
	g_assert_true(run_tool("iasl", dir, (const char *const[]){ "-d", "dsdt.dat", NULL }, &out));
	g_assert_null(strstr(out, "Error"));
	g_free(out);
	dsl = g_build_filename(dir, "dsdt.dsl", NULL);
	g_assert_true(g_file_get_contents(dsl, &text, NULL, NULL));
	g_assert_nonnull(strstr(text, "Name (\\_S5, Package (0x04)"));
	g_assert_nonnull(strstr(text, "Name (_PRT, Package (0x80)"));
	squeezed = squeeze(text);
	/* \_S5 names the SLP_TYP acpi.c decodes (5). */
	g_assert_nonnull(strstr(squeezed, "_S5,Package(0x04)//_S5_:S5SystemState{0x05,0x05,"));
	/* Every slot's INTA-D on GSI 16 + ((slot + pin) & 3), as INTERRUPT_LINE says. */
	for (unsigned slot = 1; slot < 32; slot++) {
		static const char *const pins[] = { "Zero", "One", "0x02", "0x03" };

		for (unsigned pin = 0; pin < 4; pin++) {
			char *e = g_strdup_printf("Package(0x04){0x%04XFFFF,%s,Zero,0x%02X}", slot,
						  pins[pin], 16 + ((slot + pin) & 3));

			g_assert_nonnull(strstr(squeezed, e));
			g_free(e);
		}
	}
	g_free(squeezed);
	g_assert_nonnull(strstr(text, "EisaId (\"PNP0A08\")"));
	g_assert_nonnull(strstr(text, "EisaId (\"PNP0C02\")"));
	g_assert_nonnull(strstr(text, "Device (C003)"));
	/* The 32-bit window and the bus range of _CRS. */
	g_assert_nonnull(strstr(text, "0xC0000000"));
	g_assert_nonnull(strstr(text, "0xDFFFFFFF"));
	g_assert_nonnull(strstr(text, "WordBusNumber"));
	g_free(text);

	/* And the decompiled source compiles back without errors. */
	g_assert_true(run_tool("iasl", dir, (const char *const[]){ "-p", "recompiled", "dsdt.dsl", NULL },
			       &out));
	g_assert_nonnull(strstr(out, " 0 Errors"));
	g_free(out);

	/*
	 * ACPICA's interpreter loads the namespace from FADT + DSDT, as a
	 * guest kernel would, and evaluates what Linux evaluates.
	 */
	g_free(dump(f, dir, "FACP", "facp.dat"));
	if (acpiexec) {
		g_assert_true(run_tool("acpiexec", dir, (const char *const[]){ "-b",
			"evaluate \\_S5; evaluate \\_SB.PCI0._PRT; evaluate \\_SB.MRES._CRS",
			"facp.dat", "dsdt.dat", NULL }, &out));
		g_assert_null(strstr(out, "ACPI Error"));
		g_assert_nonnull(strstr(out, "[Package] Contains 4 Elements:\n"
					     "    [Integer] = 0000000000000005\n"));
		g_assert_nonnull(strstr(out, "[Package] Contains 128 Elements"));
		/* Memory32Fixed: ECAM base and size. */
		g_assert_nonnull(strstr(out, "86 09 00 01 00 00 00 E0 00 00 00 10"));
		g_free(out);
	}

	/* iasl knows the data tables too: a wrong field or checksum is an error there. */
	for (unsigned i = 0; i < 3; i++) {
		static const char *const sig[] = { "FACP", "APIC", "MCFG" };
		static const char *const file[] = { "facp.dat", "apic.dat", "mcfg.dat" };

		g_free(dump(f, dir, sig[i], file[i]));
		g_assert_true(run_tool("iasl", dir, (const char *const[]){ "-d", file[i], NULL }, &out));
		g_assert_null(strstr(out, "Error"));
		g_assert_null(strstr(out, "Warning"));
		g_free(out);
	}
	rm_rf(dir);
	g_free(iasl);
	g_free(acpiexec);
	g_free(dsl);
	g_free(dir);
	fx_free(f);
}

static void test_s5_poweroff(void)
{
	struct fx *f = fx_new(1);

	/* SCI_EN is on from the start: no firmware to switch modes. */
	g_assert_cmphex(bus_read(&f->m.pio, PM1_CNT, 2) & 1, ==, 1);
	/* A sleep type \_S5 does not name, or SLP_EN clear: nothing happens. */
	bus_write(&f->m.pio, PM1_CNT, 2, 1 | 3 << 10 | 1 << 13);
	bus_write(&f->m.pio, PM1_CNT, 2, 1 | 5 << 10);
	g_assert_cmpint(f->m.request, ==, MACHINE_REQ_NONE);
	g_assert_cmphex(bus_read(&f->m.pio, PM1_CNT, 2), ==, 1 | 5 << 10);
	/* SLP_TYP 5 with SLP_EN, here as a byte write of the high half. */
	bus_write(&f->m.pio, PM1_CNT + 1, 1, (5 << 2 | 1 << 5));
	g_assert_cmpint(f->m.request, ==, MACHINE_REQ_POWEROFF);
	/* SLP_EN reads as zero. */
	g_assert_cmphex(bus_read(&f->m.pio, PM1_CNT, 2) & (1 << 13), ==, 0);
	fx_free(f);
}

static void test_power_button(void)
{
	struct fx *f = fx_new(1);

	/* Not enabled: the status bit is set, the SCI stays low. */
	acpi_power_button(&f->m);
	g_assert_cmphex(bus_read(&f->m.pio, PM1_STS, 2), ==, 1 << 8);
	g_assert_cmpint(f->level[9], ==, 0);
	/* Enabling a pending event raises the (level) SCI. */
	bus_write(&f->m.pio, PM1_EN, 2, 1 << 8);
	g_assert_cmphex(bus_read(&f->m.pio, PM1_EN, 2), ==, 1 << 8);
	g_assert_cmpint(f->level[9], ==, 1);
	/* Writing zero clears nothing; writing one clears and lowers the SCI. */
	bus_write(&f->m.pio, PM1_STS, 2, 0);
	g_assert_cmpint(f->level[9], ==, 1);
	bus_write(&f->m.pio, PM1_STS, 2, 1 << 8);
	g_assert_cmphex(bus_read(&f->m.pio, PM1_STS, 2), ==, 0);
	g_assert_cmpint(f->level[9], ==, 0);
	/* Pressed again with the event enabled: a new SCI; a dword access works too. */
	acpi_power_button(&f->m);
	g_assert_cmpint(f->level[9], ==, 1);
	g_assert_cmpuint(f->sci_edges, ==, 2);
	g_assert_cmphex(bus_read(&f->m.pio, PM1_STS, 4), ==, 1 << 8 | 1 << 24);
	bus_write(&f->m.pio, PM1_STS, 4, 1 << 8 | 1 << 24);
	g_assert_cmpint(f->level[9], ==, 0);
	/*
	 * The global lock and RTC enables keep what is written (ACPICA checks
	 * them back when it enables those fixed events); other bits do not.
	 */
	bus_write(&f->m.pio, PM1_EN, 2, 0xffff);
	g_assert_cmphex(bus_read(&f->m.pio, PM1_EN, 2), ==, 1 << 5 | 1 << 8 | 1 << 10);
	bus_write(&f->m.pio, PM1_EN, 2, 1 << 8);
	/* Reset: everything off, the SCI low. */
	acpi_power_button(&f->m);
	g_assert_cmpint(f->level[9], ==, 1);
	for (struct device *d = f->m.devices; d; d = d->next)
		if (d->reset)
			d->reset(d);
	g_assert_cmpint(f->level[9], ==, 0);
	g_assert_cmphex(bus_read(&f->m.pio, PM1_STS, 4), ==, 0);
	fx_free(f);
}

static void test_reset_register(void)
{
	struct fx *f = fx_new(1);

	/* A dword at 0xCF8 is still the PCI address register. */
	bus_write(&f->m.pio, 0xCF8, 4, 0x80000000);
	g_assert_cmphex(bus_read(&f->m.pio, 0xCF8, 4), ==, 0x80000000);
	g_assert_cmpint(f->m.request, ==, MACHINE_REQ_NONE);
	bus_write(&f->m.pio, 0xCF9, 1, 0x02);		/* select hard reset only */
	g_assert_cmpint(f->m.request, ==, MACHINE_REQ_NONE);
	g_assert_cmphex(bus_read(&f->m.pio, 0xCF9, 1), ==, 0x02);
	bus_write(&f->m.pio, 0xCF9, 1, 0x06);
	g_assert_cmpint(f->m.request, ==, MACHINE_REQ_RESET);
	fx_free(f);
}

static void test_pm_timer(void)
{
	struct fx *f = fx_new(1);
	struct timespec t0, t1;
	uint32_t a, b;
	uint64_t ns, bound;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	a = bus_read(&f->m.pio, PM_TMR, 4);
	g_usleep(2000);
	b = bus_read(&f->m.pio, PM_TMR, 4);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = (t1.tv_sec - t0.tv_sec) * 1000000000ull + t1.tv_nsec - t0.tv_nsec;
	/* It advanced, and by no more than 3.579545 MHz allows over the interval. */
	bound = ns * 3579545ull / 1000000000ull + 2;
	g_assert_cmpuint((uint32_t)(b - a), >, 0);
	g_assert_cmpuint((uint32_t)(b - a), <=, bound);
	/* Writes are ignored, narrower reads see the same counter. */
	bus_write(&f->m.pio, PM_TMR, 4, 0);
	g_assert_cmpuint((uint32_t)(bus_read(&f->m.pio, PM_TMR, 4) - b), <, 0x80000000u);
	g_assert_cmpuint(bus_read(&f->m.pio, PM_TMR + 2, 2), <=, 0xFFFF);
	fx_free(f);
}

static void test_build_errors(void)
{
	struct fx *f = fx_new(1);
	char err[256];

	/* Rebuilt at every reset: the same tables at the same place. */
	uint64_t rsdp = f->m.rsdp_addr;

	g_assert_cmpint(acpi_build(&f->m, err, sizeof(err)), ==, 0);
	g_assert_cmphex(f->m.rsdp_addr, ==, rsdp);
	/* 255 vCPUs still fit. */
	f->m.nr_vcpus = MACHINE_MAX_VCPUS;
	g_assert_cmpint(acpi_build(&f->m, err, sizeof(err)), ==, 0);
	find(f, "APIC", NULL);
	table(f, le(find(f, "FACP", NULL) + 140, 8), "DSDT");
	fx_free(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/acpi/rsdp_xsdt_rsdt", test_rsdp_xsdt_rsdt);
	g_test_add_func("/acpi/fadt", test_fadt);
	g_test_add_func("/acpi/madt", test_madt);
	g_test_add_func("/acpi/mcfg", test_mcfg);
	g_test_add_func("/acpi/dsdt_iasl", test_dsdt_iasl);
	g_test_add_func("/acpi/s5_poweroff", test_s5_poweroff);
	g_test_add_func("/acpi/power_button", test_power_button);
	g_test_add_func("/acpi/reset_register", test_reset_register);
	g_test_add_func("/acpi/pm_timer", test_pm_timer);
	g_test_add_func("/acpi/rebuild", test_build_errors);
	return g_test_run();
}
