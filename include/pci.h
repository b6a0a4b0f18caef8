/*
 * PCI host bridge (bus 0, configuration mechanism #1 at 0xCF8/0xCFC and ECAM
 * at MEM_PCI_ECAM_BASE), BARs, INTx and MSI-X.
 *
 * Without firmware, the VMM assigns BAR addresses itself when a device is
 * registered and enables decoding, as a BIOS would; a guest may move a BAR,
 * and the bus mapping follows its writes.
 */
#ifndef VIREO_PCI_H
#define VIREO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

struct machine;
struct pci_device;
struct vmstate_out;
struct vmstate_in;

#define PCI_CONFIG_SIZE 4096
#define PCI_NUM_BARS 6
#define PCI_MAX_SLOTS 32

/* Config space offsets (the subset the VMM touches). */
#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define  PCI_COMMAND_IO		0x1
#define  PCI_COMMAND_MEMORY	0x2
#define  PCI_COMMAND_MASTER	0x4
#define  PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS		0x06
#define  PCI_STATUS_INTERRUPT	0x08
#define  PCI_STATUS_CAP_LIST	0x10
#define PCI_REVISION_ID		0x08
#define PCI_CLASS_PROG		0x09
#define PCI_CLASS_DEVICE	0x0a
#define PCI_HEADER_TYPE		0x0e
#define PCI_BASE_ADDRESS_0	0x10
#define PCI_SUBSYSTEM_VENDOR_ID	0x2c
#define PCI_SUBSYSTEM_ID	0x2e
#define PCI_CAPABILITY_LIST	0x34
#define PCI_INTERRUPT_LINE	0x3c
#define PCI_INTERRUPT_PIN	0x3d

#define PCI_CAP_ID_VNDR		0x09
#define PCI_CAP_ID_MSIX		0x11

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_type type;
	uint64_t size;			/* power of two */
	bool prefetch;
	uint64_t addr;			/* where it is mapped now (0: nowhere) */
	const struct bus_ops *ops;
	void *opaque;
};

struct pci_msix {
	unsigned nr;			/* table entries */
	uint8_t bar;			/* BAR that holds table and PBA */
	uint32_t table_off, pba_off;
	uint8_t cap;			/* config offset of the capability */
	uint8_t *table;			/* nr * 16 bytes */
	uint64_t *pba;
	bool enabled, masked;		/* function-wide enable and mask */
	/*
	 * Called (with the device lock held; it is recursive, so
	 * pci_msix_message may be called from here) when an entry or the
	 * mask changes.
	 */
	void (*vector_changed)(struct pci_device *d, unsigned vector);
};

struct pci_device {
	const char *name;
	struct machine *m;
	uint8_t devfn;			/* slot << 3 | function */
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];	/* bits the guest may write */
	struct pci_bar bar[PCI_NUM_BARS];
	uint8_t next_cap;		/* where the next capability goes */
	unsigned gsi;			/* INTx line, wired by the host bridge */
	bool intx_level;
	struct pci_msix msix;
	pthread_mutex_t lock;		/* config space, BARs and MSI-X state */

	/* Optional: notified after the guest writes config space (no lock held). */
	void (*config_written)(struct pci_device *d, unsigned off, unsigned size);
	/*
	 * Optional: device reset (system reset, or function level).  The host
	 * calls it at system reset, after restoring config space as registered,
	 * with no lock held.
	 */
	void (*reset)(struct pci_device *d);
};

struct pci_host;

int pci_host_init(struct machine *m, char *err, size_t errlen);
void pci_host_destroy(struct machine *m);

/*
 * Fill in identity and class before calling.  slot < 0 takes the first free
 * slot.  Assigns BAR addresses, the INTx line, and enables decoding.
 */
/*
 * A -device's place: bus= (the root bus, "pcie.0" as QEMU names Q35's, or
 * "pci.0") and addr= ("SLOT[.FUNCTION]", hex as in QEMU: "0x5", "0a.0";
 * function 0 only).  *slot stays -1 (first free) without addr.  Errors
 * name type and the value.
 */
struct opts;
int pci_parse_location(struct opts *o, const char *type, int *slot, char *err, size_t errlen);

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision);
int pci_device_register(struct machine *m, struct pci_device *d, int slot, char *err, size_t errlen);
void pci_device_unregister(struct pci_device *d);

/* Before registration: declare a BAR and who serves it. */
void pci_set_bar(struct pci_device *d, unsigned idx, enum pci_bar_type type, uint64_t size,
		 bool prefetch, const struct bus_ops *ops, void *opaque);
/* Add a capability of len bytes; returns its config offset (body filled by caller). */
unsigned pci_add_capability(struct pci_device *d, uint8_t id, unsigned len);

/* INTx assert/deassert (ignored while INTX_DISABLE is set). */
void pci_set_irq(struct pci_device *d, int level);

/*
 * MSI-X: put a table of nr vectors and its PBA in BAR bar at the given
 * offsets (the device's BAR ops must forward those ranges to
 * pci_msix_read/write, with off relative to the BAR).  After pci_set_bar of
 * that BAR, before registration.  pci_device_unregister frees the table.
 */
int pci_msix_init(struct pci_device *d, unsigned nr, uint8_t bar, uint32_t table_off,
		  uint32_t pba_off);
uint64_t pci_msix_read(struct pci_device *d, uint64_t off, unsigned size);
void pci_msix_write(struct pci_device *d, uint64_t off, unsigned size, uint64_t val);
/* Raise vector (or set its pending bit while masked).  Any thread. */
void pci_msix_notify(struct pci_device *d, unsigned vector);
/* The MSI message of a vector; false if masked or MSI-X is off. */
bool pci_msix_message(struct pci_device *d, unsigned vector, uint64_t *addr, uint32_t *data);

/*
 * Migration (pci_vmstate.c): a registered function's config space, INTx
 * level and MSI-X state as vmstate fields; load remaps the BARs and
 * re-routes the MSI-X vectors.  The device's section calls these first.
 */
void pci_device_save(struct pci_device *d, struct vmstate_out *o);
int pci_device_load(struct pci_device *d, struct vmstate_in *in);

#endif
