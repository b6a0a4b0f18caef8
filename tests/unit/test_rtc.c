/*
 * MC146818 RTC: host time in BCD and binary, 12-hour mode, setting the
 * clock, the BIOS memory-size bytes, and the periodic/update interrupts.
 */
#include <glib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "accel/accel.h"
#include "board.h"
#include "bus.h"
#include "machine.h"
#include "machine_fixture.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static int irq8_level;

/* Called on the RTC's timer thread too. */
static int fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	g_assert_cmpuint(gsi, ==, 8);
	__atomic_store_n(&irq8_level, level, __ATOMIC_SEQ_CST);
	return 0;
}

static const struct accel_ops fake_accel = { .name = "fake", .set_irq = fake_set_irq };

static struct machine *machine_new(uint64_t ram)
{
	struct machine *m = fixture_machine_new(&fake_accel);
	uint64_t low = MIN(ram, MEM_LOWMEM_LIMIT);
	char err[256] = "";

	m->cfg.ram_size = ram;
	m->cfg.smp = 2;
	/* The layout guest_mem_init makes, without mapping any RAM. */
	m->mem.ram_size = ram;
	m->mem.r[0] = (struct ram_region){ .gpa = 0, .size = low };
	m->mem.nr = 1;
	if (ram > low) {
		m->mem.r[1] = (struct ram_region){ .gpa = MEM_4G, .size = ram - low };
		m->mem.nr = 2;
	}
	irq8_level = 0;
	g_assert_cmpint(rtc_create(m, err, sizeof(err)), ==, 0);
	return m;
}

static uint8_t cmos_read(struct machine *m, uint8_t idx)
{
	bus_write(&m->pio, 0x70, 1, idx | 0x80);	/* with NMI masked, as BIOSes do */
	return bus_read(&m->pio, 0x71, 1);
}

static void cmos_write(struct machine *m, uint8_t idx, uint8_t val)
{
	bus_write(&m->pio, 0x70, 1, idx);
	bus_write(&m->pio, 0x71, 1, val);
}

static unsigned bcd(uint8_t v)
{
	g_assert_cmpuint(v & 0x0f, <=, 9);
	g_assert_cmpuint(v >> 4, <=, 9);
	return (v >> 4) * 10 + (v & 0x0f);
}

struct rtc_time {
	uint8_t r[10], century;
};

/* Read until two consecutive reads agree, so no rollover splits a read. */
static void read_time(struct machine *m, struct rtc_time *t)
{
	struct rtc_time prev;

	for (int tries = 0; tries < 100; tries++) {
		for (int i = 0; i < 10; i++)
			t->r[i] = cmos_read(m, i);
		t->century = cmos_read(m, 0x32);
		if (tries && !memcmp(&prev, t, sizeof(*t)))
			return;
		prev = *t;
	}
	g_assert_not_reached();
}

static time_t decode(const struct rtc_time *t, bool binary, struct tm *tm)
{
	unsigned (*dec)(uint8_t) = binary ? NULL : bcd;
#define D(x) (dec ? dec(x) : (x))
	*tm = (struct tm){
		.tm_sec = D(t->r[0]), .tm_min = D(t->r[2]), .tm_hour = D(t->r[4]),
		.tm_mday = D(t->r[7]), .tm_mon = D(t->r[8]) - 1,
		.tm_year = D(t->century) * 100 + D(t->r[9]) - 1900,
	};
	g_assert_cmpuint(D(t->r[6]), >=, 1);
	g_assert_cmpuint(D(t->r[6]), <=, 7);
#undef D
	return timegm(tm);
}

static void test_host_time(void)
{
	struct machine *m = machine_new(256 * MiB);
	struct rtc_time t;
	struct tm tm, host;
	time_t t0, t1, got;

	/* Default: BCD, 24 hours. */
	g_assert_cmphex(cmos_read(m, 0x0b), ==, 0x02);
	g_assert_cmphex(cmos_read(m, 0x0d), ==, 0x80);
	t0 = time(NULL);
	read_time(m, &t);
	t1 = time(NULL);
	got = decode(&t, false, &tm);
	g_assert_cmpint(got, >=, t0);
	g_assert_cmpint(got, <=, t1);
	gmtime_r(&got, &host);
	g_assert_cmpuint(bcd(t.r[6]), ==, host.tm_wday + 1);

	/* Binary. */
	cmos_write(m, 0x0b, 0x06);
	t0 = time(NULL);
	read_time(m, &t);
	t1 = time(NULL);
	got = decode(&t, true, &tm);
	g_assert_cmpint(got, >=, t0);
	g_assert_cmpint(got, <=, t1);
	g_assert_cmpuint(t.r[9], ==, (tm.tm_year + 1900) % 100);

	/* 12 hours, BCD: 1..12 and bit 7 for PM. */
	for (int tries = 0; tries < 10; tries++) {
		uint8_t h24, h12;

		cmos_write(m, 0x0b, 0x02);
		h24 = bcd(cmos_read(m, 4));
		cmos_write(m, 0x0b, 0x00);
		h12 = cmos_read(m, 4);
		cmos_write(m, 0x0b, 0x02);
		if (bcd(cmos_read(m, 4)) != h24)
			continue;	/* the hour turned meanwhile */
		g_assert_cmpuint(bcd(h12 & 0x7f), ==, h24 % 12 ? h24 % 12 : 12);
		g_assert_cmpuint(!!(h12 & 0x80), ==, h24 >= 12);
		break;
	}
	fixture_machine_free(m);
}

static void test_set_time(void)
{
	struct machine *m = machine_new(256 * MiB);
	struct rtc_time t;
	struct tm tm;
	time_t got, want;

	/* As an OS sets the clock: SET, write BCD fields, clear SET. */
	cmos_write(m, 0x0b, 0x82);
	cmos_write(m, 0, 0x30);
	cmos_write(m, 2, 0x15);
	cmos_write(m, 4, 0x13);
	cmos_write(m, 7, 0x29);
	cmos_write(m, 8, 0x02);
	cmos_write(m, 9, 0x24);
	cmos_write(m, 0x32, 0x20);
	/* Frozen while SET is on. */
	g_assert_cmphex(cmos_read(m, 0), ==, 0x30);
	g_assert_cmphex(cmos_read(m, 0x0a) & 0x80, ==, 0);	/* no update in progress */
	cmos_write(m, 0x0b, 0x02);
	read_time(m, &t);
	got = decode(&t, false, &tm);
	tm = (struct tm){ .tm_sec = 30, .tm_min = 15, .tm_hour = 13, .tm_mday = 29,
			  .tm_mon = 1, .tm_year = 124 };
	want = timegm(&tm);
	g_assert_cmpint(got, >=, want);
	g_assert_cmpint(got, <=, want + 5);
	fixture_machine_free(m);
}

/*
 * Year 9999 (BCD century 99) does not fit in the clock's 64 bits of
 * nanoseconds (UBSan saw the overflow): the clock goes to the furthest
 * date it holds, some 146 years on, and keeps running from there.
 */
static void test_set_far_future(void)
{
	struct machine *m = machine_new(256 * MiB);
	struct rtc_time t;
	struct tm tm;
	time_t got;

	cmos_write(m, 0x0b, 0x82);
	cmos_write(m, 9, 0x99);
	cmos_write(m, 0x32, 0x99);
	cmos_write(m, 0x0b, 0x02);
	read_time(m, &t);
	got = decode(&t, false, &tm);
	g_assert_cmpint(got, >, time(NULL) + 145ll * 365 * 86400);
	g_assert_cmpint(got, <, time(NULL) + 147ll * 365 * 86400);
	fixture_machine_free(m);
}

static uint16_t cmos16(struct machine *m, uint8_t idx)
{
	return cmos_read(m, idx) | cmos_read(m, idx + 1) << 8;
}

static uint32_t cmos24(struct machine *m, uint8_t idx)
{
	return cmos16(m, idx) | cmos_read(m, idx + 2) << 16;
}

static void test_memory_bytes(void)
{
	struct machine *m;

	/* 3.5 GiB: 3 GiB below the PCI hole, 0.5 GiB above 4 GiB. */
	m = machine_new(3 * GiB + GiB / 2);
	g_assert_cmpuint(cmos16(m, 0x15), ==, 640);
	g_assert_cmpuint(cmos16(m, 0x17), ==, 0xffff);
	g_assert_cmpuint(cmos16(m, 0x30), ==, 0xffff);
	g_assert_cmpuint(cmos16(m, 0x34), ==, (3 * GiB - 16 * MiB) >> 16);
	g_assert_cmpuint(cmos16(m, 0x34), ==, 0xbf00);
	g_assert_cmpuint(cmos24(m, 0x5b), ==, (GiB / 2) >> 16);
	g_assert_cmpuint(cmos_read(m, 0x5f), ==, 1);
	fixture_machine_free(m);

	/* 6 GiB: 3 GiB above 4 GiB. */
	m = machine_new(6 * GiB);
	g_assert_cmpuint(cmos16(m, 0x34), ==, 0xbf00);
	g_assert_cmpuint(cmos24(m, 0x5b), ==, (3 * GiB) >> 16);
	g_assert_cmpuint(cmos24(m, 0x5b), ==, 0xc000);
	fixture_machine_free(m);

	/* 32 MiB: nothing capped, nothing above 4 GiB. */
	m = machine_new(32 * MiB);
	g_assert_cmpuint(cmos16(m, 0x17), ==, 31 * 1024);
	g_assert_cmpuint(cmos16(m, 0x30), ==, 31 * 1024);
	g_assert_cmpuint(cmos16(m, 0x34), ==, (16 * MiB) >> 16);
	g_assert_cmpuint(cmos24(m, 0x5b), ==, 0);
	fixture_machine_free(m);
}

static bool wait_irq8(void)
{
	/* Generous bound: the events come at 1024 Hz and 1 Hz. */
	for (int i = 0; i < 500; i++) {
		if (__atomic_load_n(&irq8_level, __ATOMIC_SEQ_CST))
			return true;
		g_usleep(10000);
	}
	return false;
}

static void test_interrupts(void)
{
	struct machine *m = machine_new(256 * MiB);
	uint8_t c;

	cmos_read(m, 0x0c);
	g_assert_cmpint(irq8_level, ==, 0);

	/* Periodic, 1024 Hz (rate 6, the default). */
	cmos_write(m, 0x0b, 0x42);
	g_assert_true(wait_irq8());
	c = cmos_read(m, 0x0c);
	g_assert_cmphex(c & 0xc0, ==, 0xc0);		/* IRQF | PF */
	cmos_write(m, 0x0b, 0x02);
	cmos_read(m, 0x0c);
	g_assert_cmpint(irq8_level, ==, 0);		/* reading C lowered it */

	/* Update-ended, once a second. */
	cmos_write(m, 0x0b, 0x12);
	g_assert_true(wait_irq8());
	c = cmos_read(m, 0x0c);
	g_assert_cmphex(c & 0x90, ==, 0x90);		/* IRQF | UF */
	g_assert_cmpint(irq8_level, ==, 0);

	/* Alarm with every field "don't care": fires at the next update. */
	cmos_write(m, 0x0b, 0x02);
	cmos_write(m, 1, 0xff);
	cmos_write(m, 3, 0xff);
	cmos_write(m, 5, 0xff);
	cmos_read(m, 0x0c);
	cmos_write(m, 0x0b, 0x22);
	g_assert_true(wait_irq8());
	c = cmos_read(m, 0x0c);
	g_assert_cmphex(c & 0xa0, ==, 0xa0);		/* IRQF | AF */

	/* A disabled event sets its flag but no IRQF. */
	cmos_write(m, 0x0b, 0x02);
	cmos_write(m, 0x0a, 0x23);			/* 8192 Hz */
	cmos_read(m, 0x0c);
	g_usleep(20000);
	c = cmos_read(m, 0x0c);
	g_assert_cmphex(c & 0xc0, ==, 0x40);
	g_assert_cmpint(irq8_level, ==, 0);

	/* Reset clears the enables. */
	cmos_write(m, 0x0b, 0x72);
	m->devices->reset(m->devices);
	g_assert_cmphex(cmos_read(m, 0x0b), ==, 0x02);
	fixture_machine_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/rtc/host-time", test_host_time);
	g_test_add_func("/rtc/set-time", test_set_time);
	g_test_add_func("/rtc/set-far-future", test_set_far_future);
	g_test_add_func("/rtc/memory-bytes", test_memory_bytes);
	g_test_add_func("/rtc/interrupts", test_interrupts);
	return g_test_run();
}
