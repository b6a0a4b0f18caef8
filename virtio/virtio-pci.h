/*
 * virtio-pci modern transport (virtio 1.2, 4.1), private to virtio/.
 *
 * BAR 4 (64-bit memory, 16 KiB) holds the virtio structures, BAR 1 the
 * MSI-X table and PBA:
 *
 *   BAR4 0x0000  common configuration
 *        0x1000  ISR status
 *        0x2000  device configuration
 *        0x3000  notifications, 4 bytes per queue (notify_off = queue index)
 *   BAR1 0x0000  MSI-X table, 0x800 PBA
 *
 * A queue notification signals the queue's kick eventfd: directly through
 * an accelerator ioeventfd when there is one, else from the MMIO write
 * handler, so a device thread waits on the same fd either way.  Interrupts
 * go through an accelerator irqfd per MSI-X vector when the accelerator has
 * them, else through pci_msix_notify, and through INTx while MSI-X is off.
 */
#ifndef VIREO_VIRTIO_VIRTIO_PCI_H
#define VIREO_VIRTIO_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "vmstate.h"
#include "virtio.h"

#define VIRTIO_PCI_VENDOR	0x1af4
#define VIRTIO_PCI_DEVICE_BASE	0x1040	/* + device type, modern only */
#define VIRTIO_PCI_SUBSYS_ID	0x1100
#define VIRTIO_PCI_NO_VECTOR	0xffff
#define VIRTIO_PCI_MAX_QUEUES	64

#define VIRTIO_PCI_BAR		4
#define VIRTIO_PCI_BAR_SIZE	0x4000
#define VIRTIO_PCI_COMMON_OFF	0x0000
#define VIRTIO_PCI_COMMON_LEN	0x38
#define VIRTIO_PCI_ISR_OFF	0x1000
#define VIRTIO_PCI_DEVCFG_OFF	0x2000
#define VIRTIO_PCI_NOTIFY_OFF	0x3000
#define VIRTIO_PCI_NOTIFY_MULT	4
#define VIRTIO_PCI_MSIX_BAR	1
#define VIRTIO_PCI_MSIX_BAR_SIZE 0x1000
#define VIRTIO_PCI_MSIX_PBA	0x800

/* Capability types (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG	1
#define VIRTIO_PCI_CAP_NOTIFY_CFG	2
#define VIRTIO_PCI_CAP_ISR_CFG		3
#define VIRTIO_PCI_CAP_DEVICE_CFG	4

/* Common configuration layout (4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT	0x00
#define VIRTIO_PCI_COMMON_DF		0x04
#define VIRTIO_PCI_COMMON_GFSELECT	0x08
#define VIRTIO_PCI_COMMON_GF		0x0c
#define VIRTIO_PCI_COMMON_MSIX		0x10
#define VIRTIO_PCI_COMMON_NUMQ		0x12
#define VIRTIO_PCI_COMMON_STATUS	0x14
#define VIRTIO_PCI_COMMON_CFGGEN	0x15
#define VIRTIO_PCI_COMMON_Q_SELECT	0x16
#define VIRTIO_PCI_COMMON_Q_SIZE	0x18
#define VIRTIO_PCI_COMMON_Q_MSIX	0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE	0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF	0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO	0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI	0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO	0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI	0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO	0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI	0x34

#define VIRTIO_PCI_ISR_QUEUE	0x1
#define VIRTIO_PCI_ISR_CONFIG	0x2

/* An MSI-X vector delivered through an accelerator irqfd. */
struct virtio_pci_vec {
	int fd;			/* eventfd, -1 until the vector is first routed */
	int handle;		/* accelerator route */
	uint64_t addr;		/* message the route carries */
	uint32_t data;
	bool live;		/* atomic: unmasked, so the irqfd may fire */
};

struct virtio_pci {
	struct pci_device pci;
	struct machine *m;
	struct virtio_dev *vd;

	pthread_mutex_t lock;	/* the common configuration below */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;	/* as written, until FEATURES_OK */
	uint16_t queue_sel;
	uint16_t config_vector;
	uint16_t *queue_vector;		/* per queue, atomic for readers */
	bool started;			/* DRIVER_OK seen, device serving */
	/*
	 * Quiesced for a migration (vmstate quiesce) until its resume: no
	 * I/O thread runs, and a load does not start one.
	 */
	bool held;

	/* Taken alone, never around a PCI call: config_written runs under the
	 * PCI device lock. */
	pthread_mutex_t ioeventfd_lock;
	bool ioeventfd_on;		/* between DRIVER_OK and reset */
	uint64_t ioeventfd_base;	/* notify area the ioeventfds sit at, or 0 */

	pthread_mutex_t irq_lock;	/* ISR and the INTx level together */
	uint8_t isr;

	struct virtio_pci_vec *vec;
	unsigned nr_vec;
	struct vmstate_section vms;	/* migration, instance = devfn */
};

/*
 * Build the PCI function for vd (its queues already initialised with
 * virtq_init) and register it on the machine's PCI host in slot (< 0: the
 * first free one).
 */
int virtio_pci_init(struct virtio_pci *vp, struct machine *m, struct virtio_dev *vd,
		    uint32_t class_code, int slot, char *err, size_t errlen);
/* Unregister and release; the device must be stopped (virtio_pci_reset). */
void virtio_pci_destroy(struct virtio_pci *vp);
/* Device reset, as a write of 0 to device_status. */
void virtio_pci_reset(struct virtio_pci *vp);

#endif
