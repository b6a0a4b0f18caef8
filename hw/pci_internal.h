/*
 * Private to the PCI host (pci.c), MSI-X (pci_msix.c) and the ACPI tables
 * (acpi*.c): the INTx wiring both the host and the DSDT's _PRT must agree
 * on, and the hooks between config space and MSI-X.
 */
#ifndef VIREO_HW_PCI_INTERNAL_H
#define VIREO_HW_PCI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "machine.h"
#include "pci.h"
#include "vmstate.h"

/*
 * INTx: the pins of every slot are swizzled onto four IOAPIC inputs, so
 * that INTA of neighbouring slots lands on different lines.  pin is 0..3
 * for INTA..INTD.
 */
#define PCI_INTX_GSI_BASE	16
#define PCI_INTX_NR_GSI		4
static inline unsigned pci_intx_gsi(unsigned slot, unsigned pin)
{
	return PCI_INTX_GSI_BASE + ((slot + pin) & 3);
}

/* The port window BARs are placed in, and the whole window the guest may use. */
#define PCI_IO_ALLOC_BASE	0xC000
#define PCI_IO_LIMIT		0x10000

/* Legacy configuration mechanism #1. */
#define PCI_CONFIG_ADDRESS	0xCF8
#define PCI_CONFIG_DATA		0xCFC

/* The MSI-X capability: 12 bytes. */
#define PCI_MSIX_CAP_LEN	12
#define PCI_MSIX_FLAGS		2	/* message control, from the capability */
#define  PCI_MSIX_FLAGS_QSIZE	0x07FF
#define  PCI_MSIX_FLAGS_MASKALL	0x4000
#define  PCI_MSIX_FLAGS_ENABLE	0x8000
#define PCI_MSIX_TABLE		4	/* offset | BIR */
#define PCI_MSIX_PBA		8
#define PCI_MSIX_ENTRY_SIZE	16
#define PCI_MSIX_ENTRY_CTRL	12
#define  PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1
#define PCI_MSIX_MAX_VECTORS	2048

#define PCI_BAR_END		(PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS)

/* One slot of bus 0. */
struct pci_slot {
	struct pci_device *d;
	uint8_t *reset_config;		/* config space as registered */
	bool line;			/* the device holds its GSI high */
};

/*
 * The host bridge.  Locks, in the order they nest: map_lock (BAR
 * remapping, i.e. bus_register/unregister), then d->lock, then irq_lock.
 * lock guards the slot table and the cursors alone.
 */
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
	struct vmstate_section vms;	/* CF8 and the bridge's config space */
};

/* Little-endian fields of config space. */
static inline uint32_t pci_cfg_get(const uint8_t *p, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static inline void pci_cfg_put(uint8_t *p, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = v >> (8 * i);
}

/* pci_bar.c: BAR placement at registration, and mapping that follows config space. */
int pci_check_bars(struct pci_device *d, char *err, size_t errlen);
/* Place every BAR as firmware would; h->lock held. */
int pci_assign_bars(struct pci_host *h, struct pci_device *d, char *err, size_t errlen);
/*
 * Make the bus mappings of d's BARs follow its config space; h->map_lock
 * held, d->lock not.  Returns how many BARs that decode could not be mapped.
 */
unsigned pci_map_bars(struct pci_device *d);
/* After a BAR moved: every BAR that could not be mapped tries again.  h->map_lock held. */
void pci_remap_all(struct pci_host *h);

/*
 * Called by pci.c with d->lock held after the guest wrote config bytes
 * [off, off+size) that overlap the MSI-X capability: picks up the enable
 * and function-mask bits and delivers what became unmasked.
 */
void pci_msix_config_write(struct pci_device *d);
/*
 * Set the function-wide enable and mask; d->lock held.  enabled is also
 * read without the lock (virtio-pci's notify path picks MSI-X or INTx by
 * it from its I/O threads), so it is stored atomically.
 */
void pci_msix_set_control(struct pci_msix *x, bool enabled, bool masked);
/* Device reset: every vector masked, nothing pending, MSI-X off.  d->lock held. */
void pci_msix_reset(struct pci_device *d);
/* Free the table and PBA. */
void pci_msix_free(struct pci_device *d);

/* pci.c: re-evaluate the INTx line (INTX_DISABLE, MSI-X enable).  d->lock held. */
void pci_intx_update(struct pci_device *d);

#endif
