/*
 * The split virtqueue (virtio 1.2, 2.7): popping descriptor chains into
 * iovecs, pushing used entries, and notification suppression in both
 * directions (flags, or VIRTIO_F_EVENT_IDX).
 *
 * The guest writes the rings concurrently with us, on another CPU.  Every
 * descriptor is copied out once before it is checked, so the guest cannot
 * change it between check and use, and every address range goes through
 * gpa_to_hva() with its length.  Anything malformed breaks the queue: we
 * never advance past a bad chain, set NEEDS_RESET and log once.
 */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "memory.h"
#include "virtio.h"
#include "vmstate.h"

int virtq_init(struct virtq *vq, struct virtio_dev *vd, unsigned index, uint16_t max_size)
{
	if (!max_size || max_size > VIRTQ_MAX_SIZE || (max_size & (max_size - 1)))
		return -EINVAL;
	memset(vq, 0, sizeof(*vq));
	vq->vd = vd;
	vq->index = index;
	vq->max_size = max_size;
	vq->kick_fd = -1;
	vq->scratch = g_new(struct iovec, VIRTQ_MAX_IOV);
	virtq_reset(vq);
	return 0;
}

void virtq_cleanup(struct virtq *vq)
{
	g_free(vq->scratch);
	vq->scratch = NULL;
}

void virtq_reset(struct virtq *vq)
{
	vq->size = vq->max_size;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->enabled = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->event_idx = vq->indirect = false;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->broken = false;
}

static void virtq_break(struct virtq *vq)
{
	vq->broken = true;
	virtio_dev_set_needs_reset(vq->vd);
}

void virtq_fail(struct virtq *vq)
{
	virtq_break(vq);
}

/* Host view of a ring area, or NULL if it is not all RAM or misaligned. */
static void *virtq_map(const struct virtq *vq, uint64_t gpa, uint64_t len, uint64_t align)
{
	if (gpa & (align - 1))
		return NULL;
	if (gpa + len < gpa)
		return NULL;
	return gpa_to_hva(vq->vd->mem, gpa, len);
}

int virtq_enable(struct virtq *vq)
{
	struct virtio_dev *vd = vq->vd;
	uint16_t n = vq->size;

	if (!n || n > vq->max_size || (n & (n - 1))) {
		log_once("%s: queue %u: size %u is not a power of two up to %u",
			 vd->name, vq->index, n, vq->max_size);
		goto bad;
	}
	vq->desc = virtq_map(vq, vq->desc_gpa, VIRTQ_DESC_BYTES(n), 16);
	vq->avail = virtq_map(vq, vq->avail_gpa, VIRTQ_AVAIL_BYTES(n), 2);
	vq->used = virtq_map(vq, vq->used_gpa, VIRTQ_USED_BYTES(n), 4);
	if (!vq->desc || !vq->avail || !vq->used) {
		log_once("%s: queue %u: rings at 0x%" PRIx64 "/0x%" PRIx64 "/0x%" PRIx64
			 " are not aligned guest RAM", vd->name, vq->index,
			 vq->desc_gpa, vq->avail_gpa, vq->used_gpa);
		goto bad;
	}
	vq->event_idx = virtio_has_feature(vd, VIRTIO_F_EVENT_IDX);
	vq->indirect = virtio_has_feature(vd, VIRTIO_F_INDIRECT_DESC);
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->broken = false;
	vq->enabled = true;
	return 0;
bad:
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->enabled = false;
	virtq_break(vq);
	return -EINVAL;
}

static uint16_t *virtq_used_event(struct virtq *vq)
{
	return &vq->avail->ring[vq->size];
}

static uint16_t *virtq_avail_event(struct virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/* One descriptor, copied so the guest cannot change it under our checks. */
static void virtq_read_desc(const struct virtq_desc *table, unsigned i, struct virtq_desc *d)
{
	const volatile struct virtq_desc *s = &table[i];

	d->addr = s->addr;
	d->len = s->len;
	d->flags = s->flags;
	d->next = s->next;
}

/* Walk the chain at head into vq->scratch; fills e's counts. */
static int virtq_walk(struct virtq *vq, uint16_t head, struct virtq_elem *e)
{
	const struct virtq_desc *table = vq->desc;
	unsigned max = vq->size, count = 0, niov = 0, i = head;
	const char *why;
	struct virtq_desc d;

	virtq_read_desc(table, i, &d);
	if (d.flags & VIRTQ_DESC_F_INDIRECT) {
		if (!vq->indirect) {
			why = "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
			goto bad;
		}
		if (d.flags & VIRTQ_DESC_F_NEXT) {
			why = "indirect descriptor with NEXT";
			goto bad;
		}
		if (!d.len || d.len % sizeof(struct virtq_desc) ||
		    d.len / sizeof(struct virtq_desc) > VIRTQ_MAX_INDIRECT) {
			why = "indirect table of bad length";
			goto bad;
		}
		if (d.addr & (sizeof(uint64_t) - 1) || d.addr + d.len < d.addr ||
		    !(table = gpa_to_hva(vq->vd->mem, d.addr, d.len))) {
			why = "indirect table outside guest RAM";
			goto bad;
		}
		max = d.len / sizeof(struct virtq_desc);
		i = 0;
		virtq_read_desc(table, i, &d);
	}

	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		bool write = d.flags & VIRTQ_DESC_F_WRITE;

		if (++count > max) {
			why = "descriptor loop or chain longer than the table";
			goto bad;
		}
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			why = "indirect descriptor inside a chain or indirect table";
			goto bad;
		}
		if (!write && e->in_num) {
			why = "device-readable descriptor after a device-writable one";
			goto bad;
		}
		if (d.len) {
			void *hva;

			if (d.addr + d.len < d.addr ||
			    !(hva = gpa_to_hva(vq->vd->mem, d.addr, d.len))) {
				why = "buffer outside guest RAM";
				goto bad;
			}
			if (niov == VIRTQ_MAX_IOV) {
				why = "too many buffers in one chain";
				goto bad;
			}
			vq->scratch[niov].iov_base = hva;
			vq->scratch[niov].iov_len = d.len;
			niov++;
			if (write) {
				e->in_num++;
				e->in_len += d.len;
			} else {
				e->out_num++;
				e->out_len += d.len;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= max) {
			why = "next index out of range";
			goto bad;
		}
		virtq_read_desc(table, i, &d);
	}
	return 0;
bad:
	log_once("%s: queue %u: malformed chain at head %u: %s (0x%" PRIx64 "+0x%x)",
		 vq->vd->name, vq->index, head, why, d.addr, d.len);
	return -EIO;
}

/* The caller's request of sz bytes with the chain walked into scratch behind it. */
static void *virtq_elem_new(struct virtq *vq, const struct virtq_elem *tmp, uint16_t head,
			    size_t sz)
{
	size_t hdr = (sz + _Alignof(struct iovec) - 1) & ~(_Alignof(struct iovec) - 1);
	char *p = g_malloc0(hdr + (tmp->out_num + tmp->in_num) * sizeof(struct iovec));
	struct virtq_elem *e = (struct virtq_elem *)p;

	*e = *tmp;
	e->head = head;
	e->iov = (struct iovec *)(p + hdr);
	memcpy(e->iov, vq->scratch, (tmp->out_num + tmp->in_num) * sizeof(struct iovec));
	return e;
}

int virtq_pop_head(struct virtq *vq, uint16_t head, size_t sz, void **out)
{
	struct virtq_elem tmp;

	*out = NULL;
	if (vq->broken || !vq->enabled || head >= vq->size || virtq_walk(vq, head, &tmp))
		return -EIO;
	*out = virtq_elem_new(vq, &tmp, head, sz);
	return 0;
}

int virtq_pop(struct virtq *vq, size_t sz, void **out)
{
	struct virtq_elem tmp;
	uint16_t avail_idx, head;

	*out = NULL;
	if (vq->broken || !vq->enabled)
		return vq->broken ? -EIO : 0;
	/* Acquire: the ring entry and descriptors were written before idx. */
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		log_once("%s: queue %u: avail index moved by %u, more than the queue size",
			 vq->vd->name, vq->index,
			 (uint16_t)(avail_idx - vq->last_avail));
		goto bad;
	}
	head = ((volatile uint16_t *)vq->avail->ring)[vq->last_avail & (vq->size - 1)];
	if (head >= vq->size) {
		log_once("%s: queue %u: head index %u out of range",
			 vq->vd->name, vq->index, head);
		goto bad;
	}
	if (virtq_walk(vq, head, &tmp))
		goto bad;
	*out = virtq_elem_new(vq, &tmp, head, sz);
	vq->last_avail++;
	return 1;
bad:
	virtq_break(vq);
	return -EIO;
}

void virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len)
{
	volatile struct virtq_used_elem *u;

	if (!vq->enabled)
		return;
	if (len > e->in_len)
		len = e->in_len;
	u = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	u->id = e->head;
	u->len = len;
	vq->used_idx++;
	/*
	 * Migration resends what the device wrote: every device-writable
	 * buffer (marked whole: a device may write past what it reports), the
	 * entry and the index.  Marked before the index is published, so a
	 * migration that reads the index has the marks.
	 */
	for (unsigned i = e->out_num; i < e->out_num + e->in_num; i++)
		guest_mem_mark_dirty(vq->vd->mem, e->iov[i].iov_base, e->iov[i].iov_len);
	guest_mem_mark_dirty(vq->vd->mem, (const void *)u, sizeof(*u));
	guest_mem_mark_dirty(vq->vd->mem, (const void *)&vq->used->idx, sizeof(vq->used->idx));
	/* Release: the entry (and the data written into the buffers) first. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

/* 2.7.10: is event within (old, new]? */
static bool virtq_need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old, event;
	bool valid;

	if (!vq->enabled)
		return false;
	/* Our used->idx store must be visible before we read the driver's
	 * suppression state, or we could both decide the other will act. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_valid;
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	event = __atomic_load_n(virtq_used_event(vq), __ATOMIC_RELAXED);
	return virtq_need_event(event, vq->used_idx, old);
}

/* The driver-visible notification hint we just wrote, for migration. */
static void virtq_hint_dirty(struct virtq *vq)
{
	if (vq->event_idx)
		guest_mem_mark_dirty(vq->vd->mem, virtq_avail_event(vq), sizeof(uint16_t));
	else
		guest_mem_mark_dirty(vq->vd->mem, (const void *)&vq->used->flags,
				     sizeof(vq->used->flags));
}

void virtq_disable_notify(struct virtq *vq)
{
	if (!vq->enabled)
		return;
	/* With event idx: an avail_event the driver has already passed, so
	 * no publish crosses it (2.7.10) until the next enable moves it. */
	if (vq->event_idx)
		__atomic_store_n(virtq_avail_event(vq), (uint16_t)(vq->last_avail - 1),
				 __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->used->flags, VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
	virtq_hint_dirty(vq);
}

bool virtq_enable_notify(struct virtq *vq)
{
	uint16_t avail_idx;

	if (!vq->enabled || vq->broken)
		return false;
	if (vq->event_idx)
		__atomic_store_n(virtq_avail_event(vq), vq->last_avail, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
	virtq_hint_dirty(vq);
	/* The driver checks avail_event/flags after publishing avail->idx; we
	 * check avail->idx after publishing ours.  One of us sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	return avail_idx != vq->last_avail;
}

size_t virtio_iov_to_buf(const struct iovec *iov, unsigned cnt, size_t off, void *buf,
			 size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = MIN(iov[i].iov_len - off, len - done);
		memcpy((char *)buf + done, (char *)iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtio_iov_from_buf(const struct iovec *iov, unsigned cnt, size_t off,
			   const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = MIN(iov[i].iov_len - off, len - done);
		memcpy((char *)iov[i].iov_base + off, (const char *)buf + done, n);
		done += n;
		off = 0;
	}
	return done;
}

void virtq_save_held(struct vmstate_out *o, const uint16_t *replay, unsigned nr_replay,
		     const GQueue *parked, size_t elem_off)
{
	uint16_t *heads = g_new(uint16_t, nr_replay + g_queue_get_length((GQueue *)parked) + 1);
	unsigned n = nr_replay;

	if (n)
		memcpy(heads, replay, n * sizeof(*heads));
	for (GList *l = parked->head; l; l = l->next)
		heads[n++] = ((const struct virtq_elem *)((const char *)l->data + elem_off))->head;
	vmstate_put(o, "parked", heads, n * sizeof(*heads));
	g_free(heads);
}

int virtq_load_held(struct vmstate_in *in, const struct virtq *vq, const char *qname,
		    uint16_t **heads, unsigned *nr)
{
	g_autofree uint8_t *seen = NULL;
	const void *p;
	uint32_t len;
	unsigned n;
	int ret;

	*heads = NULL;
	*nr = 0;
	if ((ret = vmstate_get_var(in, "parked", &p, &len)))
		return ret;
	n = len / sizeof(uint16_t);
	if (len % sizeof(uint16_t) || n > vq->size || (n && !vq->enabled))
		return vmstate_fail(in, "%s: %u bytes of parked requests for a queue of %u "
				    "entries%s", qname, len, vq->size,
				    vq->enabled ? "" : " that is off");
	if (!n)
		return 0;
	seen = g_malloc0(vq->size);
	for (unsigned k = 0; k < n; k++) {
		uint16_t h;

		memcpy(&h, (const uint8_t *)p + k * sizeof(h), sizeof(h));
		if (h >= vq->size || seen[h]++)
			return vmstate_fail(in, "%s: parked head %u is out of range or twice",
					    qname, h);
	}
	*heads = g_memdup2(p, len);
	*nr = n;
	return 0;
}

uint8_t virtio_dev_status(const struct virtio_dev *vd)
{
	return __atomic_load_n(&vd->status, __ATOMIC_ACQUIRE);
}

void virtio_dev_set_needs_reset(struct virtio_dev *vd)
{
	uint8_t old = __atomic_fetch_or(&vd->status, VIRTIO_STATUS_NEEDS_RESET,
					__ATOMIC_SEQ_CST);

	if (old & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_once("%s: device needs reset after malformed guest input", vd->name);
	/* 2.1.2: a device that sets NEEDS_RESET after DRIVER_OK tells the
	 * driver through a configuration change notification. */
	if ((old & VIRTIO_STATUS_DRIVER_OK) && vd->notify)
		vd->notify(vd, -1);
}
