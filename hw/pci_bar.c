/*
 * PCI BARs: where the VMM places them at registration (as firmware would),
 * the sizing protocol through wmask, and keeping the bus mappings in step
 * with what the guest programs.  A BAR that would land on RAM, on another
 * device or past the end of its space is left unmapped (logged once).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "machine.h"
#include "memory.h"
#include "pci.h"
#include "pci_internal.h"

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
	uint16_t cmd = pci_cfg_get(&d->config[PCI_COMMAND], 2);
	uint32_t lo = pci_cfg_get(&d->config[PCI_BASE_ADDRESS_0 + 4 * i], 4);
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
		uint32_t hi = pci_cfg_get(&d->config[PCI_BASE_ADDRESS_0 + 4 * (i + 1)], 4);

		addr = (uint64_t)hi << 32 | (lo & ~0xFu);
		/* Either half holding its size mask means sizing is under way. */
		if (!(cmd & PCI_COMMAND_MEMORY) || !addr || hi == 0xFFFFFFFF ||
		    addr == (mask & ~0xFull) ||
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
unsigned pci_map_bars(struct pci_device *d)
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
				 (unsigned long long)(want ? want : pci_cfg_get(&d->config[PCI_BASE_ADDRESS_0 + 4 * i], 4)),
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
void pci_remap_all(struct pci_host *h)
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
		pci_cfg_put(&d->wmask[reg], 4, (uint32_t)mask & ~3u);
		break;
	case PCI_BAR_MEM32:
		flags = prefetch ? 0x8 : 0;
		pci_cfg_put(&d->wmask[reg], 4, (uint32_t)mask & ~0xFu);
		break;
	default:
		flags = 0x4 | (prefetch ? 0x8 : 0);
		pci_cfg_put(&d->wmask[reg], 4, (uint32_t)mask & ~0xFu);
		pci_cfg_put(&d->wmask[reg + 4], 4, mask >> 32);
		break;
	}
	pci_cfg_put(&d->config[reg], 4, flags);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int pci_check_bars(struct pci_device *d, char *err, size_t errlen)
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
int pci_assign_bars(struct pci_host *h, struct pci_device *d, char *err, size_t errlen)
{
	uint64_t mmio = h->mmio_next, io = h->io_next;
	uint16_t cmd = pci_cfg_get(&d->config[PCI_COMMAND], 2);

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
		pci_cfg_put(&d->config[reg], 4, pci_cfg_get(&d->config[reg], 4) | (uint32_t)addr);
		if (b->type == PCI_BAR_MEM64)
			pci_cfg_put(&d->config[reg + 4], 4, addr >> 32);
	}
	/* Bus mastering too: a guest without firmware may not know to set it. */
	pci_cfg_put(&d->config[PCI_COMMAND], 2, cmd | PCI_COMMAND_MASTER);
	h->mmio_next = mmio;
	h->io_next = io;
	return 0;
full:
	snprintf(err, errlen, "pci %s: out of PCI %s space for its BARs", d->name,
		 d->bar[0].type == PCI_BAR_IO ? "I/O" : "memory");
	return -ENOSPC;
}
