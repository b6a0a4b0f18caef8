/*
 * MC146818 RTC and CMOS RAM at ports 0x70 (index, bit 7 masks NMI) and
 * 0x71 (data).
 *
 * The guest's wall clock is the host's CLOCK_REALTIME plus an offset: the
 * one -rtc base= gives (zero for QEMU's default base=utc, the host's
 * offset from UTC for localtime) until the guest sets the time.
 * The time registers are computed from it on every read, so they never
 * drift; while register B's SET bit is on they hold what the guest wrote,
 * and clearing SET starts the clock from them.
 *
 * The periodic, alarm and update-ended events set their flags in register C
 * whether or not their interrupt is enabled (a guest may poll them); a
 * flag that is enabled in register B sets IRQF and raises IRQ 8 until the
 * guest reads register C.  Events are computed on demand when register C is
 * read, and one timer thread per RTC, sleeping on a condition variable
 * until the next enabled event, delivers them when an interrupt is
 * enabled: periodic rates up to 8192 Hz are beyond a millisecond main-loop
 * timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "board.h"
#include "bus.h"
#include "log.h"
#include "machine.h"
#include "vmstate.h"

#define RTC_SEC		0x00
#define RTC_SEC_ALARM	0x01
#define RTC_MIN		0x02
#define RTC_MIN_ALARM	0x03
#define RTC_HOUR	0x04
#define RTC_HOUR_ALARM	0x05
#define RTC_WDAY	0x06
#define RTC_MDAY	0x07
#define RTC_MONTH	0x08
#define RTC_YEAR	0x09
#define RTC_REG_A	0x0a
#define RTC_REG_B	0x0b
#define RTC_REG_C	0x0c
#define RTC_REG_D	0x0d
#define RTC_CENTURY	0x32

#define REG_A_UIP	0x80
#define REG_A_DV	0x70
#define REG_A_DV_RUN	0x20	/* 32.768 kHz time base, running */
#define REG_A_RS	0x0f

#define REG_B_SET	0x80
#define REG_B_PIE	0x40
#define REG_B_AIE	0x20
#define REG_B_UIE	0x10
#define REG_B_SQWE	0x08
#define REG_B_DM	0x04	/* binary, not BCD */
#define REG_B_24H	0x02
#define REG_B_DSE	0x01

#define REG_C_IRQF	0x80
#define REG_C_PF	0x40
#define REG_C_AF	0x20
#define REG_C_UF	0x10

#define REG_D_VRT	0x80

#define RTC_IRQ		8
#define NS		1000000000ll
#define UIP_HOLD_NS	244141ll	/* 8 cycles of 32.768 kHz before the update */

struct rtc {
	struct device dev;
	struct machine *m;
	pthread_t thread;

	pthread_mutex_t lock;		/* guards everything below */
	pthread_cond_t wake;		/* state changed: recompute the next event */
	bool stop;
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset_ns;		/* guest wall clock - host CLOCK_REALTIME */
	int64_t last_sec;		/* guest second of the last update event */
	int64_t next_periodic;		/* CLOCK_MONOTONIC ns of the next PF */
	bool irq_level;
	struct vmstate_section vms;
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * NS + ts.tv_nsec;
}

/*
 * How far the guest clock may be from the host's: 2^62 ns, some 146
 * years, so that host time plus offset never overflows 64 bits.  A guest
 * that sets a date further off gets the nearest it may have.
 */
#define RTC_MAX_OFFSET_NS (1ll << 62)

static int64_t guest_ns(const struct rtc *s)
{
	return clock_ns(CLOCK_REALTIME) + s->offset_ns;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static bool running(const struct rtc *s)
{
	return (s->cmos[RTC_REG_A] & REG_A_DV) == REG_A_DV_RUN &&
	       !(s->cmos[RTC_REG_B] & REG_B_SET);
}

static int64_t periodic_ns(const struct rtc *s)
{
	unsigned rs = s->cmos[RTC_REG_A] & REG_A_RS;

	if (!rs || (s->cmos[RTC_REG_A] & REG_A_DV) != REG_A_DV_RUN)
		return 0;
	if (rs <= 2)
		rs += 7;	/* 256 and 128 Hz, as rates 8 and 9 */
	return (NS << (rs - 1)) / 32768;
}

static uint8_t to_reg(const struct rtc *s, unsigned v)
{
	if (s->cmos[RTC_REG_B] & REG_B_DM)
		return v;
	return ((v / 10) << 4) | (v % 10);
}

static unsigned from_reg(const struct rtc *s, uint8_t r)
{
	if (s->cmos[RTC_REG_B] & REG_B_DM)
		return r;
	return (r >> 4) * 10 + (r & 0x0f);
}

static uint8_t hour_to_reg(const struct rtc *s, unsigned h)
{
	if (s->cmos[RTC_REG_B] & REG_B_24H)
		return to_reg(s, h);
	return to_reg(s, h % 12 ? h % 12 : 12) | (h >= 12 ? 0x80 : 0);
}

static unsigned hour_from_reg(const struct rtc *s, uint8_t r)
{
	unsigned h;

	if (s->cmos[RTC_REG_B] & REG_B_24H)
		return from_reg(s, r);
	h = from_reg(s, r & 0x7f) % 12;
	return (r & 0x80) ? h + 12 : h;
}

/* Render the running clock into the time registers. */
static void time_to_regs_locked(struct rtc *s)
{
	time_t t;
	struct tm tm;

	if (s->cmos[RTC_REG_B] & REG_B_SET)
		return;		/* frozen: they hold what the guest wrote */
	t = floor_div(guest_ns(s), NS);
	gmtime_r(&t, &tm);
	s->cmos[RTC_SEC] = to_reg(s, tm.tm_sec);
	s->cmos[RTC_MIN] = to_reg(s, tm.tm_min);
	s->cmos[RTC_HOUR] = hour_to_reg(s, tm.tm_hour);
	s->cmos[RTC_WDAY] = to_reg(s, tm.tm_wday + 1);
	s->cmos[RTC_MDAY] = to_reg(s, tm.tm_mday);
	s->cmos[RTC_MONTH] = to_reg(s, tm.tm_mon + 1);
	s->cmos[RTC_YEAR] = to_reg(s, (tm.tm_year + 1900) % 100);
	s->cmos[RTC_CENTURY] = to_reg(s, (tm.tm_year + 1900) / 100);
}

/* The guest set the time: the new second starts now. */
static void regs_to_time_locked(struct rtc *s)
{
	struct tm tm = {
		.tm_sec = from_reg(s, s->cmos[RTC_SEC]) % 60,
		.tm_min = from_reg(s, s->cmos[RTC_MIN]) % 60,
		.tm_hour = hour_from_reg(s, s->cmos[RTC_HOUR]) % 24,
		.tm_mday = from_reg(s, s->cmos[RTC_MDAY]),
		.tm_mon = (int)from_reg(s, s->cmos[RTC_MONTH]) - 1,
		.tm_year = (int)(from_reg(s, s->cmos[RTC_CENTURY]) * 100 +
				 from_reg(s, s->cmos[RTC_YEAR])) - 1900,
	};
	time_t t = timegm(&tm);		/* normalizes junk, never fails badly */
	int64_t now = clock_ns(CLOCK_REALTIME);
	int64_t lo = (now - RTC_MAX_OFFSET_NS) / NS + 1, hi = (now + RTC_MAX_OFFSET_NS) / NS;

	/* Year 9999 does not fit in 64 bits of ns: the nearest date that does. */
	if (t < lo)
		t = lo;
	if (t > hi)
		t = hi;
	s->offset_ns = (int64_t)t * NS - now;
	s->last_sec = t;
}

static bool alarm_matches_locked(const struct rtc *s)
{
	static const uint8_t pairs[3][2] = {
		{ RTC_SEC_ALARM, RTC_SEC }, { RTC_MIN_ALARM, RTC_MIN },
		{ RTC_HOUR_ALARM, RTC_HOUR },
	};

	for (int i = 0; i < 3; i++) {
		uint8_t a = s->cmos[pairs[i][0]];

		if ((a & 0xc0) != 0xc0 && a != s->cmos[pairs[i][1]])
			return false;	/* 0xc0..0xff is "don't care" */
	}
	return true;
}

static void update_irq_locked(struct rtc *s)
{
	bool level;

	if (s->cmos[RTC_REG_C] & s->cmos[RTC_REG_B] & (REG_C_PF | REG_C_AF | REG_C_UF))
		s->cmos[RTC_REG_C] |= REG_C_IRQF;
	level = s->cmos[RTC_REG_C] & REG_C_IRQF;
	if (level != s->irq_level) {
		s->irq_level = level;
		machine_set_irq(s->m, RTC_IRQ, level);
	}
}

/* Set the flags of the events that happened since the last look. */
static void catch_up_locked(struct rtc *s)
{
	int64_t period = periodic_ns(s);

	if (running(s)) {
		int64_t sec = floor_div(guest_ns(s), NS);

		if (sec != s->last_sec) {
			s->last_sec = sec;
			s->cmos[RTC_REG_C] |= REG_C_UF;
			time_to_regs_locked(s);
			if (alarm_matches_locked(s))
				s->cmos[RTC_REG_C] |= REG_C_AF;
		}
	}
	if (period) {
		int64_t now = clock_ns(CLOCK_MONOTONIC);

		if (now >= s->next_periodic) {
			s->cmos[RTC_REG_C] |= REG_C_PF;
			s->next_periodic += ((now - s->next_periodic) / period + 1) * period;
		}
	}
	update_irq_locked(s);
}

/* CLOCK_MONOTONIC ns of the next event with its interrupt enabled, or 0. */
static int64_t next_event_locked(const struct rtc *s)
{
	uint8_t b = s->cmos[RTC_REG_B];
	int64_t next = 0;

	if ((b & REG_B_PIE) && periodic_ns(s))
		next = s->next_periodic;
	if ((b & (REG_B_AIE | REG_B_UIE)) && running(s)) {
		int64_t g = guest_ns(s);
		int64_t rem = NS - (g - floor_div(g, NS) * NS);
		int64_t upd = clock_ns(CLOCK_MONOTONIC) + rem;

		if (!next || upd < next)
			next = upd;
	}
	return next;
}

static void *rtc_thread(void *opaque)
{
	struct rtc *s = opaque;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		int64_t next;

		catch_up_locked(s);
		next = next_event_locked(s);
		if (!next) {
			pthread_cond_wait(&s->wake, &s->lock);
		} else {
			struct timespec ts = { next / NS, next % NS };

			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static uint8_t data_read_locked(struct rtc *s)
{
	uint8_t idx = s->index, val;
	int64_t g;

	switch (idx) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
	case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		time_to_regs_locked(s);
		return s->cmos[idx];
	case RTC_REG_A:
		val = s->cmos[RTC_REG_A] & ~REG_A_UIP;
		/* UIP: the last 244 us before the registers change. */
		g = guest_ns(s);
		if (running(s) && g - floor_div(g, NS) * NS >= NS - UIP_HOLD_NS)
			val |= REG_A_UIP;
		return val;
	case RTC_REG_C:
		catch_up_locked(s);
		val = s->cmos[RTC_REG_C];
		s->cmos[RTC_REG_C] = 0;
		update_irq_locked(s);
		return val;
	case RTC_REG_D:
		return REG_D_VRT;	/* the battery is fine */
	default:
		return s->cmos[idx];
	}
}

static void data_write_locked(struct rtc *s, uint8_t val)
{
	uint8_t idx = s->index, old;

	switch (idx) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
	case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		time_to_regs_locked(s);
		s->cmos[idx] = val;
		/* Without SET, each write moves the running clock at once. */
		if (!(s->cmos[RTC_REG_B] & REG_B_SET))
			regs_to_time_locked(s);
		break;
	case RTC_REG_A:
		old = s->cmos[RTC_REG_A];
		s->cmos[RTC_REG_A] = val & ~REG_A_UIP;
		if ((old ^ val) & (REG_A_DV | REG_A_RS))
			s->next_periodic = clock_ns(CLOCK_MONOTONIC) + periodic_ns(s);
		if ((old & REG_A_DV) != REG_A_DV_RUN && (val & REG_A_DV) == REG_A_DV_RUN)
			s->last_sec = floor_div(guest_ns(s), NS);
		break;
	case RTC_REG_B:
		old = s->cmos[RTC_REG_B];
		if ((val & REG_B_SET) && !(old & REG_B_SET))
			time_to_regs_locked(s);		/* freeze the current time */
		if (val & REG_B_SET)
			val &= ~REG_B_UIE;		/* SET clears UIE */
		s->cmos[RTC_REG_B] = val;
		if (!(val & REG_B_SET) && (old & REG_B_SET))
			regs_to_time_locked(s);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		return;		/* read-only */
	default:
		s->cmos[idx] = val;
		return;
	}
	update_irq_locked(s);
	pthread_cond_signal(&s->wake);
}

static uint64_t rtc_read(void *opaque, uint64_t offset, unsigned size)
{
	struct rtc *s = opaque;
	uint64_t val;

	if (offset == 0)
		return 0xff;	/* the index register is write-only */
	pthread_mutex_lock(&s->lock);
	val = data_read_locked(s);
	pthread_mutex_unlock(&s->lock);
	return val;
}

static void rtc_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct rtc *s = opaque;

	pthread_mutex_lock(&s->lock);
	if (offset == 0)
		s->index = value & 0x7f;	/* bit 7 masks NMI; nothing here sends one */
	else
		data_write_locked(s, value);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_ops rtc_ops = {
	.read = rtc_read,
	.write = rtc_write,
};

static void put16(uint8_t *p, uint64_t v)
{
	if (v > 0xffff)
		v = 0xffff;
	p[0] = v;
	p[1] = v >> 8;
}

/* What a BIOS leaves in CMOS about memory and CPUs (SeaBIOS reads these). */
static void cmos_set_memory(struct rtc *s)
{
	struct machine *m = s->m;
	uint64_t ram = m->mem.ram_size;
	uint64_t low = guest_mem_lowmem_end(&m->mem);
	uint64_t high = ram > low ? ram - low : 0;
	uint64_t ext_kib = ram > (1 << 20) ? (ram >> 10) - 1024 : 0;

	put16(&s->cmos[0x15], 640);			/* base memory, KiB */
	put16(&s->cmos[0x17], ext_kib);			/* memory above 1M, KiB */
	put16(&s->cmos[0x30], ext_kib);
	put16(&s->cmos[0x34], low > (16 << 20) ? (low - (16 << 20)) >> 16 : 0);
	high >>= 16;					/* above 4G, 64 KiB units */
	s->cmos[0x5b] = high;
	s->cmos[0x5c] = high >> 8;
	s->cmos[0x5d] = high >> 16;
	s->cmos[0x5f] = m->cfg.smp ? m->cfg.smp - 1 : 0;	/* CPUs - 1 */
}

static void rtc_reset(struct device *d)
{
	struct rtc *s = (struct rtc *)d;

	pthread_mutex_lock(&s->lock);
	/* The reset pin clears the interrupt enables and flags, not the time. */
	s->cmos[RTC_REG_B] &= ~(REG_B_PIE | REG_B_AIE | REG_B_UIE | REG_B_SQWE);
	s->cmos[RTC_REG_C] = 0;
	update_irq_locked(s);
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Migration.  The guest clock travels as its offset from the host's
 * CLOCK_REALTIME (hosts keep that in sync); the next periodic interrupt is
 * a CLOCK_MONOTONIC time of this host, so the destination starts a fresh
 * period.
 */
static int rtc_save(void *opaque, struct vmstate_out *o)
{
	struct rtc *s = opaque;

	pthread_mutex_lock(&s->lock);
	vmstate_put_u8(o, "index", s->index);
	vmstate_put(o, "cmos", s->cmos, sizeof(s->cmos));
	vmstate_put_u64(o, "offset-ns", s->offset_ns);
	vmstate_put_u64(o, "last-sec", s->last_sec);
	vmstate_put_bool(o, "irq-level", s->irq_level);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int rtc_load(void *opaque, struct vmstate_in *in)
{
	struct rtc *s = opaque;
	uint8_t index, cmos[sizeof(s->cmos)];
	uint64_t off, last;
	bool irq;
	int ret;

	if ((ret = vmstate_get_u8(in, "index", &index)) ||
	    (ret = vmstate_get(in, "cmos", cmos, sizeof(cmos))) ||
	    (ret = vmstate_get_u64(in, "offset-ns", &off)) ||
	    (ret = vmstate_get_u64(in, "last-sec", &last)) ||
	    (ret = vmstate_get_bool(in, "irq-level", &irq)))
		return ret;
	if ((int64_t)off < -RTC_MAX_OFFSET_NS || (int64_t)off > RTC_MAX_OFFSET_NS)
		return vmstate_fail(in, "offset-ns %lld is more than 2^62 ns from the host's clock",
				    (long long)off);
	/* The index register has 7 bits; UIP and register C's low bits are never stored. */
	if (index & 0x80 || cmos[RTC_REG_A] & REG_A_UIP || cmos[RTC_REG_C] & 0x0f)
		return vmstate_fail(in, "index 0x%02x, register A 0x%02x or C 0x%02x has bits "
				    "the RTC never keeps", index, cmos[RTC_REG_A], cmos[RTC_REG_C]);
	pthread_mutex_lock(&s->lock);
	s->index = index;
	memcpy(s->cmos, cmos, sizeof(cmos));
	s->irq_level = irq;
	s->offset_ns = (int64_t)off;
	s->last_sec = (int64_t)last;
	s->next_periodic = clock_ns(CLOCK_MONOTONIC) + periodic_ns(s);
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void rtc_destroy(struct device *d)
{
	struct rtc *s = (struct rtc *)d;

	vmstate_unregister(s->m, &s->vms);
	bus_unregister(&s->m->pio, 0x70, s);
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int rtc_create(struct machine *m, char *err, size_t errlen)
{
	struct rtc *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	int ret;

	if (!s) {
		snprintf(err, errlen, "rtc: out of memory");
		return -ENOMEM;
	}
	s->m = m;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);

	s->cmos[RTC_REG_A] = REG_A_DV_RUN | 0x06;	/* 1024 Hz, as a BIOS sets it */
	s->cmos[RTC_REG_B] = REG_B_24H;
	s->cmos[RTC_REG_D] = REG_D_VRT;
	s->offset_ns = m->cfg.rtc_offset_ns;	/* -rtc base= */
	s->last_sec = floor_div(guest_ns(s), NS);
	s->next_periodic = clock_ns(CLOCK_MONOTONIC) + periodic_ns(s);
	cmos_set_memory(s);

	ret = bus_register(&m->pio, 0x70, 2, &rtc_ops, s, "rtc");
	if (ret) {
		snprintf(err, errlen, "rtc: ports 0x70-0x71 are taken");
		goto fail;
	}
	ret = -pthread_create(&s->thread, NULL, rtc_thread, s);
	if (ret) {
		snprintf(err, errlen, "rtc: cannot start its timer thread: %s", strerror(-ret));
		bus_unregister(&m->pio, 0x70, s);
		goto fail;
	}
	pthread_setname_np(s->thread, "rtc");
	s->dev.type = "mc146818rtc";
	s->dev.reset = rtc_reset;
	s->dev.destroy = rtc_destroy;
	machine_add_device_obj(m, &s->dev);
	s->vms = (struct vmstate_section){ .name = "mc146818rtc", .version = 1,
					   .min_version = 1, .save = rtc_save, .load = rtc_load,
					   .opaque = s };
	return vmstate_register(m, &s->vms);
fail:
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ret;
}
