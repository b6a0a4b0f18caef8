/*
 * PCI host bridge for bus 0: configuration mechanism #1 (0xCF8/0xCFC) and
 * ECAM, config space with its write masks, device registration, INTx
 * wiring, system reset.  BARs are placed and mapped in pci_bar.c.
 *
 * Locks, in the order they nest:
 *   h->map_lock   serialises BAR (re)mapping, i.e. bus_register/unregister
 *   d->lock       the device's config space, BARs and MSI-X state
 *   h->irq_lock   the shared INTx lines
 * h->lock guards the slot table alone and is never held with another lock.
 * Bus registration is done with map_lock held but never d->lock, so a BAR
 * callback that takes d->lock (MSI-X) cannot deadlock against a remap.
 * The guest's CF8 address register is one word per machine, read and written
 * atomically: two vCPUs racing on it see each other's value, as on hardware.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "log.h"
#include "machine.h"
#include "memory.h"
#include "options.h"
#include "pci.h"
#include "pci_internal.h"

#define PCI_HOST_VENDOR		0x8086
#define PCI_HOST_DEVICE		0x29C0	/* a Q35-era memory controller hub */
#define PCI_CLASS_HOST_BRIDGE	0x060000

#define PCI_CACHE_LINE_SIZE	0x0c
#define PCI_LATENCY_TIMER	0x0d
#define PCI_COMMAND_WMASK	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
				 0x0040 /* parity */ | 0x0100 /* SERR */ | \
				 PCI_COMMAND_INTX_DISABLE)
#define PCI_CAP_START		0x40

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static uint64_t all_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static bool overlaps(unsigned a, unsigned alen, unsigned b, unsigned blen)
{
	return a < b + blen && b < a + alen;
}

/* ---- config space ----------------------------------------------------- */

static uint32_t pci_config_read(struct pci_device *d, unsigned off, unsigned size)
{
	uint32_t v;

	pthread_mutex_lock(&d->lock);
	v = pci_cfg_get(&d->config[off], size);
	pthread_mutex_unlock(&d->lock);
	return v;
}

static void pci_config_write(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
	struct pci_host *h = d->m->pci;
	bool remap = overlaps(off, size, PCI_COMMAND, 2) ||
		     overlaps(off, size, PCI_BASE_ADDRESS_0, PCI_BAR_END - PCI_BASE_ADDRESS_0);

	pthread_mutex_lock(&h->map_lock);
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < size; i++) {
		uint8_t w = d->wmask[off + i];

		d->config[off + i] = (d->config[off + i] & ~w) | ((val >> (8 * i)) & w);
	}
	if (d->msix.table && overlaps(off, size, d->msix.cap, PCI_MSIX_CAP_LEN))
		pci_msix_config_write(d);
	/* INTX_DISABLE or the MSI-X enable bit may have changed. */
	pci_intx_update(d);
	pthread_mutex_unlock(&d->lock);
	if (remap) {
		pci_map_bars(d);
		pci_remap_all(h);
	}
	pthread_mutex_unlock(&h->map_lock);
	if (d->config_written)
		d->config_written(d, off, size);
}

static struct pci_device *pci_find(struct pci_host *h, unsigned bus, unsigned devfn)
{
	struct pci_device *d;

	/* Only bus 0 exists, and every device is single-function. */
	if (bus != 0 || (devfn & 7))
		return NULL;
	pthread_mutex_lock(&h->lock);
	d = h->slot[devfn >> 3].d;
	pthread_mutex_unlock(&h->lock);
	return d;
}

static uint64_t pci_cfg_access(struct pci_host *h, unsigned bus, unsigned devfn, unsigned reg,
			       unsigned size, bool write, uint64_t val)
{
	struct pci_device *d = pci_find(h, bus, devfn);

	if (!d)
		return all_ones(size);
	if (write) {
		pci_config_write(d, reg, size, val);
		return 0;
	}
	return pci_config_read(d, reg, size);
}

/* 0xCF8: the address register, dword accesses only. */
static uint64_t pci_cf8_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;

	if (off != 0 || size != 4)
		return all_ones(size);
	return __atomic_load_n(&h->config_address, __ATOMIC_ACQUIRE);
}

static void pci_cf8_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_host *h = opaque;

	if (off == 0 && size == 4)
		__atomic_store_n(&h->config_address, (uint32_t)val, __ATOMIC_RELEASE);
}

static const struct bus_ops pci_cf8_ops = { .read = pci_cf8_read, .write = pci_cf8_write };

/* 0xCFC-0xCFF: the data window onto the dword CF8 selects. */
static uint64_t pci_cfc_access(struct pci_host *h, uint64_t off, unsigned size, bool write,
			       uint64_t val)
{
	uint32_t a = __atomic_load_n(&h->config_address, __ATOMIC_ACQUIRE);

	if (!(a & 0x80000000u) || off + size > 4)
		return all_ones(size);
	return pci_cfg_access(h, (a >> 16) & 0xFF, (a >> 8) & 0xFF, (a & 0xFC) + off, size,
			      write, val);
}

static uint64_t pci_cfc_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_cfc_access(opaque, off, size, false, 0);
}

static void pci_cfc_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_cfc_access(opaque, off, size, true, val);
}

static const struct bus_ops pci_cfc_ops = { .read = pci_cfc_read, .write = pci_cfc_write };

/* ECAM: bus << 20 | devfn << 12 | register. */
static uint64_t pci_ecam_access(struct pci_host *h, uint64_t off, unsigned size, bool write,
				uint64_t val)
{
	unsigned reg = off & 0xFFF;

	if (size == 8) {
		/* Two dword accesses, low first, as a chipset splits them. */
		uint64_t lo = pci_ecam_access(h, off, 4, write, val);
		uint64_t hi = pci_ecam_access(h, off + 4, 4, write, val >> 32);

		return lo | hi << 32;
	}
	if (size > 4 || (reg & (size - 1))) {
		log_once("pci: unaligned ECAM access at 0x%llx size %u ignored",
			 (unsigned long long)off, size);
		return all_ones(size);
	}
	return pci_cfg_access(h, off >> 20, (off >> 12) & 0xFF, reg, size, write, val);
}

static uint64_t pci_ecam_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_ecam_access(opaque, off, size, false, 0);
}

static void pci_ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_ecam_access(opaque, off, size, true, val);
}

static const struct bus_ops pci_ecam_ops = { .read = pci_ecam_read, .write = pci_ecam_write };

/* ---- INTx ------------------------------------------------------------- */

/*
 * Several devices share each of the four lines: the line is the OR of
 * their outputs, so it is raised by the first device and lowered by the
 * last one.
 */
void pci_intx_update(struct pci_device *d)
{
	struct pci_host *h = d->m ? d->m->pci : NULL;
	uint16_t cmd = pci_cfg_get(&d->config[PCI_COMMAND], 2);
	struct pci_slot *s;
	bool want;

	if (!h || !d->gsi)
		return;
	want = d->intx_level && !(cmd & PCI_COMMAND_INTX_DISABLE) && !d->msix.enabled;
	s = &h->slot[d->devfn >> 3];
	pthread_mutex_lock(&h->irq_lock);
	if (s->line != want) {
		unsigned *count = &h->line_count[d->gsi - PCI_INTX_GSI_BASE];

		s->line = want;
		if (want && (*count)++ == 0)
			machine_set_irq(d->m, d->gsi, 1);
		else if (!want && --(*count) == 0)
			machine_set_irq(d->m, d->gsi, 0);
	}
	pthread_mutex_unlock(&h->irq_lock);
}

void pci_set_irq(struct pci_device *d, int level)
{
	uint16_t status;

	pthread_mutex_lock(&d->lock);
	d->intx_level = level != 0;
	/* Interrupt Status follows the device, whatever INTX_DISABLE says. */
	status = pci_cfg_get(&d->config[PCI_STATUS], 2);
	status = level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT;
	pci_cfg_put(&d->config[PCI_STATUS], 2, status);
	pci_intx_update(d);
	pthread_mutex_unlock(&d->lock);
}

/* ---- devices ---------------------------------------------------------- */

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision)
{
	pthread_mutexattr_t attr;

	/* Callbacks the caller may have set already are left alone. */
	d->name = name;
	d->m = NULL;
	d->devfn = 0;
	memset(d->config, 0, sizeof(d->config));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->bar, 0, sizeof(d->bar));
	memset(&d->msix, 0, sizeof(d->msix));
	d->next_cap = PCI_CAP_START;
	d->gsi = 0;
	d->intx_level = false;
	/*
	 * Recursive: vector_changed runs with the lock held and may well ask
	 * pci_msix_message for the vector's new message.
	 */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&d->lock, &attr);
	pthread_mutexattr_destroy(&attr);

	pci_cfg_put(&d->config[PCI_VENDOR_ID], 2, vendor);
	pci_cfg_put(&d->config[PCI_DEVICE_ID], 2, device);
	d->config[PCI_REVISION_ID] = revision;
	pci_cfg_put(&d->config[PCI_CLASS_PROG], 3, class_code);
	d->config[PCI_HEADER_TYPE] = 0;
	d->config[PCI_INTERRUPT_PIN] = 1;	/* INTA; set 0 before registering for none */

	pci_cfg_put(&d->wmask[PCI_COMMAND], 2, PCI_COMMAND_WMASK);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xFF;
	d->wmask[PCI_LATENCY_TIMER] = 0xFF;
	d->wmask[PCI_INTERRUPT_LINE] = 0xFF;	/* firmware scratch */
}

unsigned pci_add_capability(struct pci_device *d, uint8_t id, unsigned len)
{
	unsigned off = (d->next_cap + 3) & ~3u;
	unsigned p, n = 0;

	if (len < 2 || off < PCI_CAP_START || off + len > 256) {
		log_error("pci %s: no room for a capability of %u bytes", d->name, len);
		return 0;
	}
	d->config[off] = id;
	d->config[off + 1] = 0;
	/* Append, so the list reads in the order the device added them. */
	p = d->config[PCI_CAPABILITY_LIST];
	if (!p) {
		d->config[PCI_CAPABILITY_LIST] = off;
	} else {
		while (d->config[p + 1] && n++ < 64)
			p = d->config[p + 1];
		d->config[p + 1] = off;
	}
	d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->next_cap = off + len;
	return off;
}

int pci_parse_location(struct opts *o, const char *type, int *slot, char *err, size_t errlen)
{
	const char *bus = opts_get(o, "bus"), *addr = opts_get(o, "addr");
	unsigned long s, fn = 0;
	char *end;

	*slot = -1;
	if (bus && strcmp(bus, "pcie.0") && strcmp(bus, "pci.0")) {
		snprintf(err, errlen, "%s: bus=%s: the only bus is the root bus, pcie.0", type, bus);
		return -EINVAL;
	}
	if (!addr)
		return 0;
	s = strtoul(addr, &end, 16);
	if (end != addr && *end == '.') {
		const char *f = end + 1;

		fn = strtoul(f, &end, 16);
		if (end == f)
			end = (char *)addr;	/* "5." */
	}
	if (end == addr || *end || !g_ascii_isxdigit(addr[0]) || s >= PCI_MAX_SLOTS) {
		snprintf(err, errlen, "%s: addr=%s: expected SLOT[.FUNCTION] in hex, slot 0 to "
			 "0x%x", type, addr, PCI_MAX_SLOTS - 1);
		return -EINVAL;
	}
	if (fn) {
		snprintf(err, errlen, "%s: addr=%s: only function 0 (devices are single-function)",
			 type, addr);
		return -EINVAL;
	}
	*slot = s;
	return 0;
}

int pci_device_register(struct machine *m, struct pci_device *d, int slot, char *err,
			size_t errlen)
{
	struct pci_host *h = m->pci;
	unsigned pin = d->config[PCI_INTERRUPT_PIN];
	int ret;

	if (!h) {
		snprintf(err, errlen, "pci %s: the machine has no PCI host", d->name);
		return -ENODEV;
	}
	if (slot >= PCI_MAX_SLOTS || pin > 4) {
		snprintf(err, errlen, "pci %s: slot %d or interrupt pin %u out of range",
			 d->name, slot, pin);
		return -EINVAL;
	}
	ret = pci_check_bars(d, err, errlen);
	if (ret)
		return ret;

	pthread_mutex_lock(&h->lock);
	if (slot < 0) {
		/* Slot 0 is the host bridge's. */
		for (slot = 1; slot < PCI_MAX_SLOTS && h->slot[slot].d; slot++)
			;
		if (slot == PCI_MAX_SLOTS) {
			snprintf(err, errlen, "pci %s: every PCI slot is taken", d->name);
			ret = -ENOSPC;
			goto unlock;
		}
	} else if (h->slot[slot].d) {
		snprintf(err, errlen, "pci %s: slot %d is taken by %s", d->name, slot,
			 h->slot[slot].d->name);
		ret = -EBUSY;
		goto unlock;
	}
	ret = pci_assign_bars(h, d, err, errlen);
	if (ret)
		goto unlock;
	d->m = m;
	d->devfn = slot << 3;
	if (pin) {
		d->gsi = pci_intx_gsi(slot, pin - 1);
		d->config[PCI_INTERRUPT_LINE] = d->gsi;
	} else {
		d->gsi = 0;
		d->config[PCI_INTERRUPT_LINE] = 0xFF;	/* not connected */
	}
	h->slot[slot] = (struct pci_slot){ .d = d, .reset_config = g_memdup2(d->config, PCI_CONFIG_SIZE) };
	pthread_mutex_unlock(&h->lock);

	pthread_mutex_lock(&h->map_lock);
	ret = pci_map_bars(d);
	pthread_mutex_unlock(&h->map_lock);
	if (ret) {
		snprintf(err, errlen, "pci %s: a BAR overlaps another device", d->name);
		pci_device_unregister(d);
		return -EBUSY;
	}
	return 0;
unlock:
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/*
 * Only with the vCPUs stopped: accesses in flight may still hold d.  A
 * device's teardown calls this (it also frees the MSI-X table) before the
 * machine destroys the host.
 */
void pci_device_unregister(struct pci_device *d)
{
	struct pci_host *h = d->m ? d->m->pci : NULL;
	struct pci_slot *s;

	if (!h) {
		pci_msix_free(d);
		d->m = NULL;
		return;
	}
	s = &h->slot[d->devfn >> 3];
	pthread_mutex_lock(&h->map_lock);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bar[i];

		if (!b->addr)
			continue;
		bus_unregister(b->type == PCI_BAR_IO ? &d->m->pio : &d->m->mmio, b->addr, b->opaque);
		pthread_mutex_lock(&d->lock);
		b->addr = 0;
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_lock(&d->lock);
	d->intx_level = false;
	pci_intx_update(d);
	pci_msix_free(d);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(&h->map_lock);

	pthread_mutex_lock(&h->lock);
	g_free(s->reset_config);
	*s = (struct pci_slot){ 0 };
	pthread_mutex_unlock(&h->lock);
	d->m = NULL;
}

/* System reset: config space as registered, BARs back where they were. */
static void pci_device_reset(struct pci_host *h, struct pci_device *d)
{
	const uint8_t *cfg = h->slot[d->devfn >> 3].reset_config;

	pthread_mutex_lock(&h->map_lock);
	pthread_mutex_lock(&d->lock);
	memcpy(d->config, cfg, PCI_CONFIG_SIZE);
	d->intx_level = false;
	if (d->msix.table)
		pci_msix_reset(d);
	pci_intx_update(d);
	pthread_mutex_unlock(&d->lock);
	pci_map_bars(d);
	pthread_mutex_unlock(&h->map_lock);
	if (d->reset)
		d->reset(d);
}

static void pci_host_reset(struct device *dev)
{
	struct pci_host *h = container_of(dev, struct pci_host, dev);

	__atomic_store_n(&h->config_address, 0, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < PCI_MAX_SLOTS; i++) {
		struct pci_device *d;

		pthread_mutex_lock(&h->lock);
		d = h->slot[i].d;
		pthread_mutex_unlock(&h->lock);
		if (d)
			pci_device_reset(h, d);
	}
}

static int pci_host_save(void *opaque, struct vmstate_out *o)
{
	struct pci_host *h = opaque;

	vmstate_put_u32(o, "config-address", __atomic_load_n(&h->config_address,
							     __ATOMIC_ACQUIRE));
	pci_device_save(&h->bridge, o);
	return 0;
}

static int pci_host_load(void *opaque, struct vmstate_in *in)
{
	struct pci_host *h = opaque;
	uint32_t ca;
	int ret = vmstate_get_u32(in, "config-address", &ca);

	if (ret)
		return ret;
	__atomic_store_n(&h->config_address, ca, __ATOMIC_RELEASE);
	return pci_device_load(&h->bridge, in);
}

int pci_host_init(struct machine *m, char *err, size_t errlen)
{
	struct pci_host *h;
	int ret;

	if (m->pci) {
		snprintf(err, errlen, "pci: the machine has a PCI host already");
		return -EEXIST;
	}
	if (m->nr_irq_pins < PCI_INTX_GSI_BASE + PCI_INTX_NR_GSI) {
		snprintf(err, errlen, "pci: INTx needs GSIs %u-%u, the machine has %u",
			 PCI_INTX_GSI_BASE, PCI_INTX_GSI_BASE + PCI_INTX_NR_GSI - 1,
			 m->nr_irq_pins);
		return -EINVAL;
	}
	h = g_new0(struct pci_host, 1);
	h->m = m;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->map_lock, NULL);
	pthread_mutex_init(&h->irq_lock, NULL);
	h->mmio_next = MEM_PCI_MMIO32_BASE;
	h->io_next = PCI_IO_ALLOC_BASE;

	/*
	 * One port wide: the bus hands a dword access at 0xCF8 to the range
	 * that starts there, while 0xCF9 stays free for the reset register.
	 */
	ret = bus_register(&m->pio, PCI_CONFIG_ADDRESS, 1, &pci_cf8_ops, h, "pci-config-address");
	if (ret)
		goto fail;
	ret = bus_register(&m->pio, PCI_CONFIG_DATA, 4, &pci_cfc_ops, h, "pci-config-data");
	if (ret)
		goto fail_cf8;
	ret = bus_register(&m->mmio, MEM_PCI_ECAM_BASE, MEM_PCI_ECAM_SIZE, &pci_ecam_ops, h,
			   "pci-ecam");
	if (ret)
		goto fail_cfc;

	m->pci = h;
	pci_device_init(&h->bridge, "pci-host-bridge", PCI_HOST_VENDOR, PCI_HOST_DEVICE,
			PCI_CLASS_HOST_BRIDGE, 0);
	h->bridge.config[PCI_INTERRUPT_PIN] = 0;
	ret = pci_device_register(m, &h->bridge, 0, err, errlen);
	if (ret)
		goto fail_ecam;

	h->dev.type = "pci-host";
	h->dev.reset = pci_host_reset;
	machine_add_device_obj(m, &h->dev);
	h->vms = (struct vmstate_section){ .name = "pci-host", .version = 1, .min_version = 1,
					   .save = pci_host_save, .load = pci_host_load,
					   .opaque = h };
	return vmstate_register(m, &h->vms);

fail_ecam:
	m->pci = NULL;
	bus_unregister(&m->mmio, MEM_PCI_ECAM_BASE, h);
	goto free;
fail_cfc:
	bus_unregister(&m->pio, PCI_CONFIG_DATA, h);
fail_cf8:
	bus_unregister(&m->pio, PCI_CONFIG_ADDRESS, h);
fail:
	snprintf(err, errlen, "pci: cannot register the configuration ports and ECAM: %s",
		 strerror(-ret));
free:
	g_free(h);
	return ret;
}

void pci_host_destroy(struct machine *m)
{
	struct pci_host *h = m->pci;

	if (!h)
		return;
	/*
	 * Devices still registered may be gone already (machine_destroy runs
	 * their teardown first): only the host's own bridge is touched.
	 */
	vmstate_unregister(m, &h->vms);
	pci_device_unregister(&h->bridge);
	for (unsigned i = 0; i < PCI_MAX_SLOTS; i++)
		g_free(h->slot[i].reset_config);
	bus_unregister(&m->mmio, MEM_PCI_ECAM_BASE, h);
	bus_unregister(&m->pio, PCI_CONFIG_DATA, h);
	bus_unregister(&m->pio, PCI_CONFIG_ADDRESS, h);
	m->pci = NULL;
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->map_lock);
	pthread_mutex_destroy(&h->irq_lock);
	g_free(h);
}
