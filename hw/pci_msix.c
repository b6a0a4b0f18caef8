/*
 * MSI-X: the capability in config space, the vector table and the pending
 * bit array in a memory BAR, and delivery of a vector as an MSI message.
 *
 * Everything runs under d->lock, delivery included: machine_send_msi never
 * calls back into a PCI device, and delivering under the lock keeps a
 * notify from racing with the guest masking the vector.
 */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "log.h"
#include "machine.h"
#include "pci.h"
#include "pci_internal.h"

static unsigned pba_bytes(unsigned nr)
{
	return (nr + 63) / 64 * 8;
}

static uint32_t entry_get(const struct pci_msix *x, unsigned v, unsigned field)
{
	const uint8_t *p = x->table + v * PCI_MSIX_ENTRY_SIZE + field;

	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool vector_masked(const struct pci_msix *x, unsigned v)
{
	return x->masked || (entry_get(x, v, PCI_MSIX_ENTRY_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static bool pending(const struct pci_msix *x, unsigned v)
{
	return x->pba[v / 64] & (1ull << (v % 64));
}

static void set_pending(struct pci_msix *x, unsigned v, bool on)
{
	if (on)
		x->pba[v / 64] |= 1ull << (v % 64);
	else
		x->pba[v / 64] &= ~(1ull << (v % 64));
}

static void deliver(struct pci_device *d, unsigned v)
{
	const struct pci_msix *x = &d->msix;
	uint64_t addr = entry_get(x, v, 0) | (uint64_t)entry_get(x, v, 4) << 32;

	if (d->m)
		machine_send_msi(d->m, addr, entry_get(x, v, 8));
}

/* A vector just became deliverable: send what it held back. */
static void flush_pending(struct pci_device *d, unsigned v)
{
	if (d->msix.enabled && !vector_masked(&d->msix, v) && pending(&d->msix, v)) {
		set_pending(&d->msix, v, false);
		deliver(d, v);
	}
}

int pci_msix_init(struct pci_device *d, unsigned nr, uint8_t bar, uint32_t table_off,
		  uint32_t pba_off)
{
	struct pci_msix *x = &d->msix;
	const struct pci_bar *b = bar < PCI_NUM_BARS ? &d->bar[bar] : NULL;
	uint64_t tlen = (uint64_t)nr * PCI_MSIX_ENTRY_SIZE, plen = pba_bytes(nr);
	unsigned cap;

	if (x->table || !nr || nr > PCI_MSIX_MAX_VECTORS || !b ||
	    (b->type != PCI_BAR_MEM32 && b->type != PCI_BAR_MEM64) ||
	    (table_off & 7) || (pba_off & 7) ||
	    table_off + tlen > b->size || pba_off + plen > b->size ||
	    (table_off < pba_off + plen && pba_off < table_off + tlen)) {
		log_error("pci %s: MSI-X with %u vectors at BAR%u 0x%x/0x%x does not fit",
			  d->name, nr, bar, table_off, pba_off);
		return -EINVAL;
	}
	cap = pci_add_capability(d, PCI_CAP_ID_MSIX, PCI_MSIX_CAP_LEN);
	if (!cap)
		return -ENOSPC;

	d->config[cap + PCI_MSIX_FLAGS] = (nr - 1) & 0xFF;
	d->config[cap + PCI_MSIX_FLAGS + 1] = (nr - 1) >> 8;
	/* Only enable and function mask are the guest's to write. */
	d->wmask[cap + PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	for (unsigned i = 0; i < 4; i++) {
		d->config[cap + PCI_MSIX_TABLE + i] = (table_off | bar) >> (8 * i);
		d->config[cap + PCI_MSIX_PBA + i] = (pba_off | bar) >> (8 * i);
	}

	x->nr = nr;
	x->bar = bar;
	x->table_off = table_off;
	x->pba_off = pba_off;
	x->cap = cap;
	x->table = g_malloc0(tlen);
	x->pba = g_malloc0(plen);
	x->enabled = x->masked = false;
	for (unsigned v = 0; v < nr; v++)
		x->table[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	return 0;
}

void pci_msix_set_control(struct pci_msix *x, bool enabled, bool masked)
{
	__atomic_store_n(&x->enabled, enabled, __ATOMIC_RELEASE);
	x->masked = masked;
}

void pci_msix_free(struct pci_device *d)
{
	g_free(d->msix.table);
	g_free(d->msix.pba);
	d->msix.table = NULL;
	d->msix.pba = NULL;
	d->msix.nr = 0;
	pci_msix_set_control(&d->msix, false, false);
}

void pci_msix_reset(struct pci_device *d)
{
	struct pci_msix *x = &d->msix;
	bool was_enabled = x->enabled;

	memset(x->table, 0, x->nr * PCI_MSIX_ENTRY_SIZE);
	memset(x->pba, 0, pba_bytes(x->nr));
	for (unsigned v = 0; v < x->nr; v++)
		x->table[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	pci_msix_set_control(x, false, false);
	if (was_enabled && x->vector_changed)
		for (unsigned v = 0; v < x->nr; v++)
			x->vector_changed(d, v);
}

void pci_msix_config_write(struct pci_device *d)
{
	struct pci_msix *x = &d->msix;
	uint16_t ctrl = d->config[x->cap + PCI_MSIX_FLAGS] |
			d->config[x->cap + PCI_MSIX_FLAGS + 1] << 8;
	bool enabled = ctrl & PCI_MSIX_FLAGS_ENABLE, masked = ctrl & PCI_MSIX_FLAGS_MASKALL;

	if (enabled == x->enabled && masked == x->masked)
		return;
	pci_msix_set_control(x, enabled, masked);
	for (unsigned v = 0; v < x->nr; v++) {
		if (x->vector_changed)
			x->vector_changed(d, v);
		flush_pending(d, v);
	}
}

/* Where [off, off+size) falls: the table, the PBA, or neither (NULL). */
static uint8_t *msix_locate(struct pci_msix *x, uint64_t off, unsigned size, bool *is_table)
{
	uint64_t tlen = (uint64_t)x->nr * PCI_MSIX_ENTRY_SIZE;

	if (!x->table || size == 0 || size > 8)
		return NULL;
	if (off >= x->table_off && off + size <= x->table_off + tlen) {
		*is_table = true;
		return x->table + (off - x->table_off);
	}
	if (off >= x->pba_off && off + size <= x->pba_off + pba_bytes(x->nr)) {
		*is_table = false;
		return (uint8_t *)x->pba + (off - x->pba_off);
	}
	return NULL;
}

uint64_t pci_msix_read(struct pci_device *d, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	bool is_table;
	uint8_t *p;

	pthread_mutex_lock(&d->lock);
	p = msix_locate(&d->msix, off, size, &is_table);
	if (!p) {
		v = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	} else if (is_table) {
		for (unsigned i = 0; i < size; i++)
			v |= (uint64_t)p[i] << (8 * i);
	} else {
		/* The PBA as little-endian bytes, whatever the host's order. */
		uint64_t pos = off - d->msix.pba_off;

		for (unsigned i = 0; i < size; i++, pos++)
			v |= ((d->msix.pba[pos / 8] >> (8 * (pos % 8))) & 0xFF) << (8 * i);
	}
	pthread_mutex_unlock(&d->lock);
	return v;
}

void pci_msix_write(struct pci_device *d, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_msix *x = &d->msix;
	unsigned first, last;
	bool is_table;
	uint8_t *p;

	pthread_mutex_lock(&d->lock);
	p = msix_locate(x, off, size, &is_table);
	if (!p || !is_table) {
		/* The PBA is read-only; outside both, nothing is there. */
		pthread_mutex_unlock(&d->lock);
		return;
	}
	off -= x->table_off;
	first = off / PCI_MSIX_ENTRY_SIZE;
	last = (off + size - 1) / PCI_MSIX_ENTRY_SIZE;
	for (unsigned i = 0; i < size; i++) {
		unsigned field = (off + i) % PCI_MSIX_ENTRY_SIZE;
		uint8_t b = val >> (8 * i);

		/* Of the vector control word only the mask bit is writable. */
		if (field >= PCI_MSIX_ENTRY_CTRL)
			b = field == PCI_MSIX_ENTRY_CTRL ? b & PCI_MSIX_ENTRY_CTRL_MASKBIT : 0;
		p[i] = b;
	}
	for (unsigned v = first; v <= last; v++) {
		if (x->vector_changed)
			x->vector_changed(d, v);
		flush_pending(d, v);
	}
	pthread_mutex_unlock(&d->lock);
}

void pci_msix_notify(struct pci_device *d, unsigned vector)
{
	struct pci_msix *x = &d->msix;

	pthread_mutex_lock(&d->lock);
	if (vector >= x->nr) {
		log_once("pci %s: MSI-X vector %u out of %u", d->name, vector, x->nr);
	} else if (x->enabled) {
		if (vector_masked(x, vector))
			set_pending(x, vector, true);
		else
			deliver(d, vector);
	}
	pthread_mutex_unlock(&d->lock);
}

bool pci_msix_message(struct pci_device *d, unsigned vector, uint64_t *addr, uint32_t *data)
{
	struct pci_msix *x = &d->msix;
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = vector < x->nr && x->enabled && !vector_masked(x, vector);
	if (ok) {
		*addr = entry_get(x, vector, 0) | (uint64_t)entry_get(x, vector, 4) << 32;
		*data = entry_get(x, vector, 8);
	}
	pthread_mutex_unlock(&d->lock);
	return ok;
}
