/*
 * ACPI fixed hardware: the PM1 event and control blocks, the PM timer, the
 * reset register and the SCI.  The tables that describe them are built in
 * acpi_build.c from the same constants (acpi_internal.h).
 *
 * Without firmware there is no SMI handler to switch modes, so the machine
 * powers up in ACPI mode (SCI_EN set) and the FADT says so (SMI_CMD 0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "acpi.h"
#include "acpi_internal.h"
#include "log.h"
#include "machine.h"
#include "vmstate.h"

struct acpi {
	struct machine *m;
	struct device dev;		/* hears system reset and teardown */
	pthread_mutex_t lock;		/* the registers below */
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint8_t reset_ctl;
	bool sci;			/* level driven on ACPI_SCI_IRQ */
	struct vmstate_section vms;
};

/*
 * Bits that exist; the rest read as zero and ignore writes.  The global
 * lock and RTC enables hold what the OS writes (ACPICA reads them back to
 * check the event is enabled) though neither event ever fires here.
 */
#define PM1_STS_BITS	ACPI_PM1_PWRBTN
#define PM1_EN_BITS	(ACPI_PM1_PWRBTN | ACPI_PM1_GBL | ACPI_PM1_RTC)
#define PM1_CNT_BITS	(ACPI_PM1_SCI_EN | ACPI_PM1_SLP_TYP_MASK)
#define RESET_CTL_BITS	0x0A	/* hard-reset select and full reset; RST_CPU is a strobe */

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* The SCI is level triggered: high while an enabled status bit is set.  a->lock held. */
static void acpi_update_sci(struct acpi *a)
{
	bool level = (a->pm1_sts & a->pm1_en) && (a->pm1_cnt & ACPI_PM1_SCI_EN);

	if (level != a->sci) {
		a->sci = level;
		machine_set_irq(a->m, ACPI_SCI_IRQ, level);
	}
}

/* 3.579545 MHz since the host booted, wrapping at 32 bits (TMR_VAL_EXT). */
static uint32_t acpi_pm_timer(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Seconds and nanoseconds apart, so the product cannot overflow. */
	return (uint64_t)ts.tv_sec * ACPI_PM_TMR_HZ +
	       (uint64_t)ts.tv_nsec * ACPI_PM_TMR_HZ / 1000000000ull;
}

static uint64_t bytes_of(uint64_t reg, uint64_t off, unsigned size)
{
	return (reg >> (8 * off)) & (size >= 8 ? ~0ull : (1ull << (8 * size)) - 1);
}

/* The PM block as one little-endian 12-byte register file, read. */
static uint64_t acpi_pm_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi *a = opaque;
	uint64_t v;

	if (off + size > ACPI_PM_LEN || size > 4)
		return bytes_of(~0ull, 0, size);
	if (off >= ACPI_PM_TMR - ACPI_PM_BASE)
		return bytes_of(acpi_pm_timer(), off - (ACPI_PM_TMR - ACPI_PM_BASE), size);
	pthread_mutex_lock(&a->lock);
	/* PM1_STS | PM1_EN << 16 | PM1_CNT << 32 (SLP_EN reads as zero). */
	v = a->pm1_sts | (uint64_t)a->pm1_en << 16 | (uint64_t)a->pm1_cnt << 32;
	pthread_mutex_unlock(&a->lock);
	return bytes_of(v, off, size);
}

static void acpi_pm1_cnt_write(struct acpi *a, uint16_t val)
{
	unsigned typ = (val & ACPI_PM1_SLP_TYP_MASK) >> ACPI_PM1_SLP_TYP_SHIFT;

	a->pm1_cnt = val & PM1_CNT_BITS;
	acpi_update_sci(a);
	if (!(val & ACPI_PM1_SLP_EN))
		return;
	if (typ == ACPI_SLP_TYP_S5)
		machine_request_poweroff(a->m);
	else
		log_once("acpi: the guest asked for sleep type %u, which \\_Sx does not offer", typ);
}

static void acpi_pm_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct acpi *a = opaque;
	uint64_t mask, w;

	if (off + size > ACPI_PM_TMR - ACPI_PM_BASE || size > 4)
		return;			/* the timer is read-only */
	/* Place the written bytes in the register file, so any width works. */
	mask = bytes_of(~0ull, 0, size) << (8 * off);
	w = (val << (8 * off)) & mask;
	pthread_mutex_lock(&a->lock);
	a->pm1_sts &= ~(w & PM1_STS_BITS);			/* write one to clear */
	if (mask & 0xFFFF0000ull)
		a->pm1_en = ((a->pm1_en & ~(mask >> 16)) | (w >> 16)) & PM1_EN_BITS;
	if (mask & 0xFFFF00000000ull)
		acpi_pm1_cnt_write(a, (a->pm1_cnt & ~(mask >> 32)) | (w >> 32));
	acpi_update_sci(a);
	pthread_mutex_unlock(&a->lock);
}

static const struct bus_ops acpi_pm_ops = { .read = acpi_pm_read, .write = acpi_pm_write };

static uint64_t acpi_reset_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi *a = opaque;
	uint8_t v;

	pthread_mutex_lock(&a->lock);
	v = a->reset_ctl;
	pthread_mutex_unlock(&a->lock);
	return size == 1 ? v : bytes_of(~0ull, 0, size);
}

static void acpi_reset_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct acpi *a = opaque;

	/* Only byte writes: a dword at 0xCF8 is the PCI address register. */
	if (size != 1)
		return;
	pthread_mutex_lock(&a->lock);
	a->reset_ctl = val & RESET_CTL_BITS;
	pthread_mutex_unlock(&a->lock);
	if (val & ACPI_RESET_RST_CPU)
		machine_request_reset(a->m);
}

static const struct bus_ops acpi_reset_ops = { .read = acpi_reset_read, .write = acpi_reset_write };

static void acpi_reset(struct device *dev)
{
	struct acpi *a = container_of(dev, struct acpi, dev);

	pthread_mutex_lock(&a->lock);
	a->pm1_sts = a->pm1_en = 0;
	a->pm1_cnt = ACPI_PM1_SCI_EN;
	a->reset_ctl = 0;
	acpi_update_sci(a);
	pthread_mutex_unlock(&a->lock);
}

/* Migration: the PM1 registers and the SCI level (the PM timer is the host's). */
static int acpi_save(void *opaque, struct vmstate_out *o)
{
	struct acpi *a = opaque;

	pthread_mutex_lock(&a->lock);
	vmstate_put_u16(o, "pm1-sts", a->pm1_sts);
	vmstate_put_u16(o, "pm1-en", a->pm1_en);
	vmstate_put_u16(o, "pm1-cnt", a->pm1_cnt);
	vmstate_put_u8(o, "reset-ctl", a->reset_ctl);
	vmstate_put_bool(o, "sci", a->sci);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int acpi_load(void *opaque, struct vmstate_in *in)
{
	struct acpi *a = opaque;
	uint16_t sts, en, cnt;
	uint8_t reset;
	bool sci;
	int ret;

	if ((ret = vmstate_get_u16(in, "pm1-sts", &sts)) ||
	    (ret = vmstate_get_u16(in, "pm1-en", &en)) ||
	    (ret = vmstate_get_u16(in, "pm1-cnt", &cnt)) ||
	    (ret = vmstate_get_u8(in, "reset-ctl", &reset)) ||
	    (ret = vmstate_get_bool(in, "sci", &sci)))
		return ret;
	/* Bits the registers do not have are never stored: a stream with them is not ours. */
	if ((sts & ~PM1_STS_BITS) || (en & ~PM1_EN_BITS) || (cnt & ~PM1_CNT_BITS) ||
	    (reset & ~RESET_CTL_BITS))
		return vmstate_fail(in, "pm1-sts 0x%04x, pm1-en 0x%04x, pm1-cnt 0x%04x or reset-ctl "
				    "0x%02x has bits the registers lack", sts, en, cnt, reset);
	pthread_mutex_lock(&a->lock);
	a->pm1_sts = sts;
	a->pm1_en = en;
	a->pm1_cnt = cnt;
	a->reset_ctl = reset;
	a->sci = sci;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static void acpi_destroy(struct device *dev)
{
	struct acpi *a = container_of(dev, struct acpi, dev);
	struct machine *m = a->m;

	vmstate_unregister(m, &a->vms);
	bus_unregister(&m->pio, ACPI_RESET_PORT, a);
	bus_unregister(&m->pio, ACPI_PM_BASE, a);
	pthread_mutex_destroy(&a->lock);
	m->acpi = NULL;
	g_free(a);
}

int acpi_init(struct machine *m, char *err, size_t errlen)
{
	struct acpi *a;
	int ret;

	if (m->nr_irq_pins <= ACPI_SCI_IRQ) {
		snprintf(err, errlen, "acpi: the SCI needs GSI %u, the machine has %u",
			 ACPI_SCI_IRQ, m->nr_irq_pins);
		return -EINVAL;
	}
	a = g_new0(struct acpi, 1);
	a->m = m;
	pthread_mutex_init(&a->lock, NULL);
	a->pm1_cnt = ACPI_PM1_SCI_EN;

	ret = bus_register(&m->pio, ACPI_PM_BASE, ACPI_PM_LEN, &acpi_pm_ops, a, "acpi-pm");
	if (ret)
		goto fail;
	ret = bus_register(&m->pio, ACPI_RESET_PORT, 1, &acpi_reset_ops, a, "acpi-reset");
	if (ret) {
		bus_unregister(&m->pio, ACPI_PM_BASE, a);
		goto fail;
	}
	a->dev.type = "acpi";
	a->dev.reset = acpi_reset;
	a->dev.destroy = acpi_destroy;
	machine_add_device_obj(m, &a->dev);
	m->acpi = a;
	a->vms = (struct vmstate_section){ .name = "acpi", .version = 1, .min_version = 1,
					   .save = acpi_save, .load = acpi_load, .opaque = a };
	return vmstate_register(m, &a->vms);
fail:
	snprintf(err, errlen, "acpi: cannot register the PM ports at 0x%x and 0x%x: %s",
		 ACPI_PM_BASE, ACPI_RESET_PORT, strerror(-ret));
	pthread_mutex_destroy(&a->lock);
	g_free(a);
	return ret;
}

void acpi_power_button(struct machine *m)
{
	struct acpi *a = m->acpi;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->pm1_sts |= ACPI_PM1_PWRBTN;
	acpi_update_sci(a);
	pthread_mutex_unlock(&a->lock);
}
