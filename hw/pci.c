/*
 * PCI host bridge for bus 0: configuration mechanism #1 (0xCF8/0xCFC) and
 * ECAM, BAR assignment and mapping, INTx wiring.
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
#define PCI_BAR_END		(PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS)
#define PCI_CAP_START		0x40

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

struct pci_slot {
	struct pci_device *d;
	uint8_t *reset_config;		/* config space as registered */
	bool line;			/* the device holds its GSI high */
};

struct pci_host {
	struct machine *m;
	struct pci_device bridge;	/* 00:00.0 */
	struct device dev;		/* hears system reset */
	uint32_t config_address;	/* CF8, accessed atomically */

	pthread_mutex_t lock;		/* slot[].d, slot[].reset_config, cursors */
	pthread_mutex_t map_lock;
	pthread_mutex_t irq_lock;
	unsigned line_count[PCI_INTX_NR_GSI];
	struct pci_slot slot[PCI_MAX_SLOTS];
	uint64_t mmio_next;
	uint32_t io_next;
};

static uint32_t cfg_get(const uint8_t *p, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static void cfg_put(uint8_t *p, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = v >> (8 * i);
}

static uint64_t all_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static bool overlaps(unsigned a, unsigned alen, unsigned b, unsigned blen)
{
	return a < b + blen && b < a + alen;
}

/* ---- BAR placement ---------------------------------------------------- */

struct range_probe {
	uint64_t base, len;
	bool busy;
};

static void range_probe_fn(const struct bus_range *r, void *arg)
{
	struct range_probe *p = arg;

	if (p->base < r->base + r->len && r->base < p->base + p->len)
		p->busy = true;
}

/*
 * Whether [base, base+len) is free on bus b and, for memory, not RAM.
 * Checked before bus_register so that a guest that keeps placing a BAR
 * on top of another device cannot make bus_register log every time.
 */
static bool pci_range_free(struct machine *m, struct bus *b, uint64_t base, uint64_t len)
{
	struct range_probe p = { .base = base, .len = len };

	if (b == &m->mmio) {
		for (unsigned i = 0; i < m->mem.nr; i++) {
			const struct ram_region *r = &m->mem.r[i];

			if (base < r->gpa + r->size && r->gpa < base + len)
				return false;
		}
	}
	bus_for_each(b, range_probe_fn, &p);
	return !p.busy;
}

/*
 * Where BAR i should be mapped according to config space, 0 for nowhere.
 * *bad is set when the guest programmed an address that cannot be decoded
 * (as opposed to decoding being off, or the sizing pattern being in the
 * register).  d->lock held.
 */
static uint64_t pci_bar_target(struct pci_device *d, unsigned i, bool *bad)
{
	const struct pci_bar *b = &d->bar[i];
	uint16_t cmd = cfg_get(&d->config[PCI_COMMAND], 2);
	uint32_t lo = cfg_get(&d->config[PCI_BASE_ADDRESS_0 + 4 * i], 4);
	uint64_t mask = ~(b->size - 1);
	uint64_t addr;

	*bad = false;
	switch (b->type) {
	case PCI_BAR_IO:
		addr = lo & ~3u;
		if (!(cmd & PCI_COMMAND_IO) || !addr || addr == (uint32_t)(mask & ~3ull))
			return 0;
		if (addr + b->size > PCI_IO_LIMIT)
			goto bad;
		return addr;
	case PCI_BAR_MEM32:
		addr = lo & ~0xFu;
		if (!(cmd & PCI_COMMAND_MEMORY) || !addr || addr == (uint32_t)(mask & ~0xFull))
			return 0;
		break;
	case PCI_BAR_MEM64: {
		uint32_t hi = cfg_get(&d->config[PCI_BASE_ADDRESS_0 + 4 * (i + 1)], 4);

		addr = (uint64_t)hi << 32 | (lo & ~0xFu);
		if (!(cmd & PCI_COMMAND_MEMORY) || !addr || hi == 0xFFFFFFFF ||
		    (b->size < MEM_4G && (lo & ~0xFu) == (uint32_t)mask))
			return 0;
		if (addr + b->size < addr)
			goto bad;
		break;
	}
	default:
		return 0;
	}
	return addr;
bad:
	*bad = true;
	return 0;
}

/*
 * Make the bus mappings of d's BARs follow its config space.  h->map_lock
 * held, d->lock not held.  Returns how many declared BARs are not mapped
 * although their decoding is on.
 */
static unsigned pci_map_bars(struct pci_device *d)
{
	struct machine *m = d->m;
	unsigned unmapped = 0;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bar[i];
		struct bus *bus = b->type == PCI_BAR_IO ? &m->pio : &m->mmio;
		uint64_t want, cur, now = 0;
		bool bad;

		if (b->type == PCI_BAR_NONE)
			continue;
		pthread_mutex_lock(&d->lock);
		want = pci_bar_target(d, i, &bad);
		cur = b->addr;
		pthread_mutex_unlock(&d->lock);
		if (want == cur && !bad)
			continue;
		if (cur)
			bus_unregister(bus, cur, b->opaque);
		if (want && pci_range_free(m, bus, want, b->size) &&
		    bus_register(bus, want, b->size, b->ops, b->opaque, d->name) == 0)
			now = want;
		else if (want || bad) {
			log_once("pci 00:%02x.%u %s: BAR%u at 0x%llx (size 0x%llx) overlaps RAM, another "
				 "device or the end of the address space: not mapped",
				 d->devfn >> 3, d->devfn & 7, d->name, i,
				 (unsigned long long)(want ? want : cfg_get(&d->config[PCI_BASE_ADDRESS_0 + 4 * i], 4)),
				 (unsigned long long)b->size);
			unmapped++;
		}
		pthread_mutex_lock(&d->lock);
		b->addr = now;
		pthread_mutex_unlock(&d->lock);
	}
	return unmapped;
}

/*
 * After one BAR moved, every BAR that could not be mapped gets another
 * chance: the one in its way may have left.  h->map_lock held.
 */
static void pci_remap_all(struct pci_host *h)
{
	struct pci_device *devs[PCI_MAX_SLOTS];

	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < PCI_MAX_SLOTS; i++)
		devs[i] = h->slot[i].d;
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < PCI_MAX_SLOTS; i++)
		if (devs[i])
			pci_map_bars(devs[i]);
}

/* ---- config space ----------------------------------------------------- */

static uint32_t pci_config_read(struct pci_device *d, unsigned off, unsigned size)
{
	uint32_t v;

	pthread_mutex_lock(&d->lock);
	v = cfg_get(&d->config[off], size);
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
	if (remap)
		pci_remap_all(h);
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
	uint16_t cmd = cfg_get(&d->config[PCI_COMMAND], 2);
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
	status = cfg_get(&d->config[PCI_STATUS], 2);
	status = level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT;
	cfg_put(&d->config[PCI_STATUS], 2, status);
	pci_intx_update(d);
	pthread_mutex_unlock(&d->lock);
}

/* ---- devices ---------------------------------------------------------- */

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision)
{
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
	pthread_mutex_init(&d->lock, NULL);

	cfg_put(&d->config[PCI_VENDOR_ID], 2, vendor);
	cfg_put(&d->config[PCI_DEVICE_ID], 2, device);
	d->config[PCI_REVISION_ID] = revision;
	cfg_put(&d->config[PCI_CLASS_PROG], 3, class_code);
	d->config[PCI_HEADER_TYPE] = 0;
	d->config[PCI_INTERRUPT_PIN] = 1;	/* INTA; set 0 before registering for none */

	cfg_put(&d->wmask[PCI_COMMAND], 2, PCI_COMMAND_WMASK);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xFF;
	d->wmask[PCI_LATENCY_TIMER] = 0xFF;
	d->wmask[PCI_INTERRUPT_LINE] = 0xFF;	/* firmware scratch */
}

void pci_set_bar(struct pci_device *d, unsigned idx, enum pci_bar_type type, uint64_t size,
		 bool prefetch, const struct bus_ops *ops, void *opaque)
{
	unsigned reg = PCI_BASE_ADDRESS_0 + 4 * idx;
	uint64_t mask = ~(size - 1);
	uint32_t flags;

	if (idx >= PCI_NUM_BARS || (type == PCI_BAR_MEM64 && idx + 1 >= PCI_NUM_BARS) ||
	    type == PCI_BAR_NONE) {
		log_error("pci %s: BAR%u of type %d cannot be declared", d->name, idx, type);
		return;
	}
	d->bar[idx] = (struct pci_bar){ .type = type, .size = size, .prefetch = prefetch,
					.ops = ops, .opaque = opaque };
	switch (type) {
	case PCI_BAR_IO:
		flags = 0x1;
		cfg_put(&d->wmask[reg], 4, (uint32_t)mask & ~3u);
		break;
	case PCI_BAR_MEM32:
		flags = prefetch ? 0x8 : 0;
		cfg_put(&d->wmask[reg], 4, (uint32_t)mask & ~0xFu);
		break;
	default:
		flags = 0x4 | (prefetch ? 0x8 : 0);
		cfg_put(&d->wmask[reg], 4, (uint32_t)mask & ~0xFu);
		cfg_put(&d->wmask[reg + 4], 4, mask >> 32);
		break;
	}
	cfg_put(&d->config[reg], 4, flags);
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

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int pci_check_bars(struct pci_device *d, char *err, size_t errlen)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &d->bar[i];
		uint64_t min = b->type == PCI_BAR_IO ? 4 : 16;
		uint64_t max = b->type == PCI_BAR_IO ? 256 : MEM_PCI_MMIO32_SIZE;

		if (b->type == PCI_BAR_NONE)
			continue;
		if (b->size < min || b->size > max || (b->size & (b->size - 1)) || !b->ops) {
			snprintf(err, errlen, "pci %s: BAR%u: size 0x%llx is not a power of two "
				 "in [0x%llx, 0x%llx] or it has no handler", d->name, i,
				 (unsigned long long)b->size, (unsigned long long)min,
				 (unsigned long long)max);
			return -EINVAL;
		}
		if (b->type == PCI_BAR_MEM64 && d->bar[i + 1].type != PCI_BAR_NONE) {
			snprintf(err, errlen, "pci %s: BAR%u overlaps the upper half of 64-bit BAR%u",
				 d->name, i + 1, i);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Place every BAR as firmware would: I/O from 0xC000, memory from the
 * bottom of the 32-bit window, each naturally aligned.  h->lock held.
 */
static int pci_assign_bars(struct pci_host *h, struct pci_device *d, char *err, size_t errlen)
{
	uint64_t mmio = h->mmio_next, io = h->io_next;
	uint16_t cmd = cfg_get(&d->config[PCI_COMMAND], 2);

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &d->bar[i];
		unsigned reg = PCI_BASE_ADDRESS_0 + 4 * i;
		uint64_t addr;

		if (b->type == PCI_BAR_NONE)
			continue;
		if (b->type == PCI_BAR_IO) {
			addr = align_up(io, b->size);
			if (addr + b->size > PCI_IO_LIMIT)
				goto full;
			io = addr + b->size;
			cmd |= PCI_COMMAND_IO;
		} else {
			addr = align_up(mmio, b->size);
			if (addr + b->size > MEM_PCI_MMIO32_BASE + MEM_PCI_MMIO32_SIZE)
				goto full;
			mmio = addr + b->size;
			cmd |= PCI_COMMAND_MEMORY;
		}
		cfg_put(&d->config[reg], 4, cfg_get(&d->config[reg], 4) | (uint32_t)addr);
		if (b->type == PCI_BAR_MEM64)
			cfg_put(&d->config[reg + 4], 4, addr >> 32);
	}
	/* Bus mastering too: a guest without firmware may not know to set it. */
	cfg_put(&d->config[PCI_COMMAND], 2, cmd | PCI_COMMAND_MASTER);
	h->mmio_next = mmio;
	h->io_next = io;
	return 0;
full:
	snprintf(err, errlen, "pci %s: out of PCI %s space for its BARs", d->name,
		 d->bar[0].type == PCI_BAR_IO ? "I/O" : "memory");
	return -ENOSPC;
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

/* Only with the vCPUs stopped: accesses in flight may still hold d. */
void pci_device_unregister(struct pci_device *d)
{
	struct pci_host *h = d->m ? d->m->pci : NULL;
	struct pci_slot *s;

	if (!h)
		return;
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

	ret = bus_register(&m->pio, PCI_CONFIG_ADDRESS, 4, &pci_cf8_ops, h, "pci-config-address");
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
	return 0;

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
	for (unsigned i = 0; i < PCI_MAX_SLOTS; i++)
		if (h->slot[i].d)
			pci_device_unregister(h->slot[i].d);
	bus_unregister(&m->mmio, MEM_PCI_ECAM_BASE, h);
	bus_unregister(&m->pio, PCI_CONFIG_DATA, h);
	bus_unregister(&m->pio, PCI_CONFIG_ADDRESS, h);
	m->pci = NULL;
	g_free(h);
}
