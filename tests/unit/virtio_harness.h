/*
 * Test side of virtio: the test plays the guest driver.  Guest memory
 * without a machine, split virtqueues laid out and filled the way a driver
 * does it, and (virtio_harness.c) a whole machine with the PCI host, a fake
 * accelerator that records MSIs, and a virtio-pci driver.
 */
#ifndef VIREO_TESTS_VIRTIO_HARNESS_H
#define VIREO_TESTS_VIRTIO_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "memory.h"
#include "virtio.h"

/* Guest RAM: lo bytes at 0 and hi bytes at 4G, in one host allocation. */
void vh_mem_init(struct guest_mem *gm, uint64_t lo, uint64_t hi);
void vh_mem_destroy(struct guest_mem *gm);
/* Host pointer to guest RAM the test owns; aborts if out of RAM. */
void *vh_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* A split ring as the driver sees it. */
struct vh_ring {
	const struct guest_mem *mem;
	uint16_t size;
	uint64_t desc, avail, used;	/* gpa of each area */
	uint16_t avail_idx;		/* next avail->idx to publish */
	uint16_t used_seen;		/* used entries consumed */
	uint16_t next_desc;		/* descriptors are handed out round robin */
};

struct vh_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Lay out a ring of size entries at base (page aligned, 3 pages per 256 entries). */
void vh_ring_init(struct vh_ring *r, const struct guest_mem *mem, uint64_t base, uint16_t size);
/* Point the device's virtqueue at this ring (what the transport does). */
void vh_ring_attach(struct vh_ring *r, struct virtq *vq);
void vh_desc_set(struct vh_ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next);
/* Make head available and bump avail->idx. */
void vh_avail_publish(struct vh_ring *r, uint16_t head);
/*
 * Add a chain of n buffers and publish it.  With table != 0 the buffers go
 * into an indirect table at that gpa, behind one ring descriptor.
 * Returns the head.
 */
uint16_t vh_ring_add(struct vh_ring *r, const struct vh_buf *b, unsigned n, uint64_t table);
/* Take the next used entry; false if there is none. */
bool vh_used_get(struct vh_ring *r, uint32_t *id, uint32_t *len);
void vh_set_used_event(struct vh_ring *r, uint16_t v);
uint16_t vh_get_avail_event(struct vh_ring *r);
uint16_t vh_used_flags(struct vh_ring *r);
void vh_set_avail_flags(struct vh_ring *r, uint16_t f);

/* ---- a machine with a PCI host and a fake accelerator ---- */

#include <pthread.h>

#include "accel/accel.h"
#include "machine.h"

#define VH_RAM		(64ull << 20)
#define VH_MSI_DATA	0x100		/* vector v is programmed as data 0x100 + v */
#define VH_MAX_FDS	130

struct vh_machine {
	struct machine m;
	struct accel_ops ops;
	pthread_mutex_t lock;
	unsigned msi[2048];		/* deliveries per vector */
	int gsi_level[32];
	unsigned gsi_raised[32];
	struct { uint64_t addr; int fd; } ioev[VH_MAX_FDS];
	struct { int fd; uint64_t addr; uint32_t data; } irqfd[VH_MAX_FDS];
	unsigned nr_ioev, nr_irqfd;
};

/*
 * with_fds: the fake accelerator offers ioeventfd and irqfd hooks, which
 * the harness then plays the kernel for.  Returns 0 or skips the test.
 */
int vh_machine_init(struct vh_machine *h, unsigned smp, bool with_fds);
void vh_machine_destroy(struct vh_machine *h);
/* Deliveries of vector v so far (MSIs, plus irqfd signals). */
unsigned vh_msi_count(struct vh_machine *h, unsigned v);
unsigned vh_gsi_raised(struct vh_machine *h, unsigned gsi);

/* A virtio-pci function, as the driver sees it. */
struct vh_dev {
	struct vh_machine *h;
	uint8_t devfn;
	uint64_t common, isr, devcfg, notify;
	uint32_t notify_mult;
	uint64_t msix_table;
	uint8_t msix_cap;
	unsigned nr_queues;		/* num_queues */
	struct vh_ring ring[64];
	uint64_t features;		/* offered */
};

uint32_t vh_pci_read(struct vh_machine *h, uint8_t devfn, unsigned off, unsigned size);
void vh_pci_write(struct vh_machine *h, uint8_t devfn, unsigned off, unsigned size, uint32_t v);
/* Find the nth function with virtio device type id; reads its capabilities. */
bool vh_dev_find(struct vh_machine *h, uint16_t id, unsigned nth, struct vh_dev *d);
uint64_t vh_common_read(struct vh_dev *d, unsigned off, unsigned size);
void vh_common_write(struct vh_dev *d, unsigned off, unsigned size, uint64_t v);
uint8_t vh_status(struct vh_dev *d);
uint64_t vh_cfg_read(struct vh_dev *d, unsigned off, unsigned size);
/* MSI-X on, vector v -> data VH_MSI_DATA + v, all unmasked. */
void vh_msix_enable(struct vh_dev *d);
void vh_msix_mask(struct vh_dev *d, unsigned v, bool masked);
/*
 * The driver's init sequence (3.1.1): reset, ACK, DRIVER, features
 * (want & offered), FEATURES_OK, nq queues of qsize entries with vector
 * q + 1 (config: 0), DRIVER_OK.  Returns the final status.
 */
uint8_t vh_dev_setup(struct vh_dev *d, uint64_t want, unsigned nq, uint16_t qsize);
/* The same with the rings at ring_base (16 KiB per queue), for a second device. */
uint8_t vh_dev_setup_at(struct vh_dev *d, uint64_t want, unsigned nq, uint16_t qsize,
			uint64_t ring_base);
/* Write the notify register of queue q, as the guest would. */
void vh_kick(struct vh_dev *d, unsigned q);
/* Wait (up to 10 s) for the next used entry of queue q. */
bool vh_wait_used(struct vh_dev *d, unsigned q, uint32_t *id, uint32_t *len);
/* Wait (up to 10 s) until the device status has bits. */
bool vh_wait_status(struct vh_dev *d, uint8_t bits);

/*
 * Threads of this process that run (not in exit) and whose name
 * (pthread_setname_np, as the devices name their I/O threads) is exactly
 * name.
 */
unsigned vh_thread_count(const char *name);
/* The same threads' ids (at most max of them stored); returns the count. */
unsigned vh_thread_ids(const char *name, long *ids, unsigned max);

struct vmstate_out;
/*
 * Hand the device of a over to machine hb as a migration does: a's side
 * quiesces and saves its virtio-pci section; hb gets a copy of a's guest
 * RAM and its device loads the section; b becomes
 * the driver's view of it on hb.  hold: quiesce hb's device around the
 * RAM copy and the load (one a test started itself; a real destination's
 * never ran).
 * edit, when given, may change the saved bytes first (a hostile stream).
 * Returns the load's result, err says why.
 */
int vh_migrate_dev(struct vh_dev *a, struct vh_machine *hb, struct vh_dev *b, bool hold,
		   void (*edit)(struct vmstate_out *o), char *err, size_t errlen);
/*
 * vh_migrate_dev with hold, calling between(opaque) after the load and
 * before the resume: what a destination looks like while the rest of the
 * stream still loads.
 */
int vh_migrate_dev_held(struct vh_dev *a, struct vh_machine *hb, struct vh_dev *b,
			void (*between)(void *), void *opaque, char *err, size_t errlen);

#endif
