/*
 * Private to the PCI host (pci.c), MSI-X (pci_msix.c) and the ACPI tables
 * (acpi*.c): the INTx wiring both the host and the DSDT's _PRT must agree
 * on, and the hooks between config space and MSI-X.
 */
#ifndef VIREO_HW_PCI_INTERNAL_H
#define VIREO_HW_PCI_INTERNAL_H

#include <stdint.h>

#include "pci.h"

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

/*
 * Called by pci.c with d->lock held after the guest wrote config bytes
 * [off, off+size) that overlap the MSI-X capability: picks up the enable
 * and function-mask bits and delivers what became unmasked.
 */
void pci_msix_config_write(struct pci_device *d);
/* Device reset: every vector masked, nothing pending, MSI-X off.  d->lock held. */
void pci_msix_reset(struct pci_device *d);
/* Free the table and PBA. */
void pci_msix_free(struct pci_device *d);

/* pci.c: re-evaluate the INTx line (INTX_DISABLE, MSI-X enable).  d->lock held. */
void pci_intx_update(struct pci_device *d);

#endif
