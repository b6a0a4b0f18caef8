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

#endif
