/* Driver-side split rings for the virtio tests: see virtio_harness.h. */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_harness.h"

void vh_mem_init(struct guest_mem *gm, uint64_t lo, uint64_t hi)
{
	memset(gm, 0, sizeof(*gm));
	gm->base = g_malloc0(lo + hi);
	gm->ram_size = lo + hi;
	gm->map_size = lo + hi;
	gm->fd = -1;
	gm->r[0] = (struct ram_region){ .gpa = 0, .size = lo, .hva = gm->base, .slot = 0 };
	gm->nr = 1;
	if (hi) {
		gm->r[1] = (struct ram_region){ .gpa = MEM_4G, .size = hi, .hva = gm->base + lo,
						.slot = 1 };
		gm->nr = 2;
	}
}

void vh_mem_destroy(struct guest_mem *gm)
{
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++)
		free(gm->dev_dirty[i]);
	g_free(gm->base);
	memset(gm, 0, sizeof(*gm));
}

void *vh_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	void *p = gpa_to_hva(gm, gpa, len);

	g_assert_nonnull(p);
	return p;
}

void vh_ring_init(struct vh_ring *r, const struct guest_mem *mem, uint64_t base, uint16_t size)
{
	memset(r, 0, sizeof(*r));
	r->mem = mem;
	r->size = size;
	r->desc = base;
	r->avail = base + VIRTQ_DESC_BYTES(size);
	r->used = (r->avail + VIRTQ_AVAIL_BYTES(size) + 4095) & ~4095ull;
	memset(vh_ptr(mem, base, r->used + VIRTQ_USED_BYTES(size) - base), 0,
	       r->used + VIRTQ_USED_BYTES(size) - base);
}

void vh_ring_attach(struct vh_ring *r, struct virtq *vq)
{
	vq->size = r->size;
	vq->desc_gpa = r->desc;
	vq->avail_gpa = r->avail;
	vq->used_gpa = r->used;
}

void vh_desc_set(struct vh_ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	struct virtq_desc *d = vh_ptr(r->mem, r->desc + 16ull * i, 16);

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

void vh_avail_publish(struct vh_ring *r, uint16_t head)
{
	struct virtq_avail *a = vh_ptr(r->mem, r->avail, VIRTQ_AVAIL_BYTES(r->size));

	a->ring[r->avail_idx % r->size] = head;
	r->avail_idx++;
	__atomic_store_n(&a->idx, r->avail_idx, __ATOMIC_RELEASE);
}

uint16_t vh_ring_add(struct vh_ring *r, const struct vh_buf *b, unsigned n, uint64_t table)
{
	uint16_t head = r->next_desc;

	if (table) {
		struct virtq_desc *t = vh_ptr(r->mem, table, 16ull * n);

		for (unsigned i = 0; i < n; i++) {
			t[i].addr = b[i].gpa;
			t[i].len = b[i].len;
			t[i].flags = (b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				     (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			t[i].next = i + 1 < n ? i + 1 : 0;
		}
		vh_desc_set(r, head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
		r->next_desc = (head + 1) % r->size;
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint16_t cur = r->next_desc, nxt = (cur + 1) % r->size;

			vh_desc_set(r, cur, b[i].gpa, b[i].len,
				    (b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0), i + 1 < n ? nxt : 0);
			r->next_desc = nxt;
		}
	}
	vh_avail_publish(r, head);
	return head;
}

bool vh_used_get(struct vh_ring *r, uint32_t *id, uint32_t *len)
{
	struct virtq_used *u = vh_ptr(r->mem, r->used, VIRTQ_USED_BYTES(r->size));

	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == r->used_seen)
		return false;
	*id = u->ring[r->used_seen % r->size].id;
	*len = u->ring[r->used_seen % r->size].len;
	r->used_seen++;
	return true;
}

void vh_set_used_event(struct vh_ring *r, uint16_t v)
{
	struct virtq_avail *a = vh_ptr(r->mem, r->avail, VIRTQ_AVAIL_BYTES(r->size));

	__atomic_store_n(&a->ring[r->size], v, __ATOMIC_SEQ_CST);
}

uint16_t vh_get_avail_event(struct vh_ring *r)
{
	struct virtq_used *u = vh_ptr(r->mem, r->used, VIRTQ_USED_BYTES(r->size));

	return __atomic_load_n((uint16_t *)&u->ring[r->size], __ATOMIC_SEQ_CST);
}

uint16_t vh_used_flags(struct vh_ring *r)
{
	struct virtq_used *u = vh_ptr(r->mem, r->used, VIRTQ_USED_BYTES(r->size));

	return __atomic_load_n(&u->flags, __ATOMIC_SEQ_CST);
}

void vh_set_avail_flags(struct vh_ring *r, uint16_t f)
{
	struct virtq_avail *a = vh_ptr(r->mem, r->avail, VIRTQ_AVAIL_BYTES(r->size));

	__atomic_store_n(&a->flags, f, __ATOMIC_SEQ_CST);
}
