/*
 * virtio-pci modern transport: capabilities, common configuration with
 * feature negotiation, status and reset, ISR, device configuration window,
 * notifications (ioeventfd or MMIO) and interrupts (irqfd, MSI-X or INTx).
 * Layout in virtio-pci.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "accel/accel.h"
#include "le.h"
#include "log.h"
#include "machine.h"
#include "virtio-pci.h"

static void vp_signal(int fd)
{
	uint64_t one = 1;

	/* EAGAIN only when the counter is saturated: the reader wakes anyway. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_once("virtio-pci: eventfd write failed: %s", strerror(errno));
}

/* ---- interrupts ---- */

static bool vp_msix_enabled(struct virtio_pci *vp)
{
	return __atomic_load_n(&vp->pci.msix.enabled, __ATOMIC_ACQUIRE);
}

static void vp_notify(struct virtio_dev *vd, int queue)
{
	struct virtio_pci *vp = vd->transport;
	uint16_t vector;

	if (!vp_msix_enabled(vp)) {
		pthread_mutex_lock(&vp->irq_lock);
		vp->isr |= queue < 0 ? VIRTIO_PCI_ISR_CONFIG : VIRTIO_PCI_ISR_QUEUE;
		pci_set_irq(&vp->pci, 1);
		pthread_mutex_unlock(&vp->irq_lock);
		return;
	}
	if (queue < 0) {
		__atomic_or_fetch(&vp->isr, VIRTIO_PCI_ISR_CONFIG, __ATOMIC_RELAXED);
		vector = __atomic_load_n(&vp->config_vector, __ATOMIC_RELAXED);
	} else {
		vector = __atomic_load_n(&vp->queue_vector[queue], __ATOMIC_RELAXED);
	}
	if (vector >= vp->nr_vec)
		return;
	if (__atomic_load_n(&vp->vec[vector].live, __ATOMIC_ACQUIRE))
		vp_signal(vp->vec[vector].fd);
	else
		pci_msix_notify(&vp->pci, vector);
}

static int vp_notify_fd(struct virtio_dev *vd, int queue)
{
	struct virtio_pci *vp = vd->transport;
	uint16_t vector;

	if (queue < 0 || !vp_msix_enabled(vp))
		return -1;
	vector = __atomic_load_n(&vp->queue_vector[queue], __ATOMIC_RELAXED);
	if (vector >= vp->nr_vec || !__atomic_load_n(&vp->vec[vector].live, __ATOMIC_ACQUIRE))
		return -1;
	return vp->vec[vector].fd;
}

/*
 * A vector's entry, or the function's mask or enable, changed (pci device
 * lock held; called for each vector on a function-wide change): point the
 * vector's irqfd at its current message, and stop using the irqfd of a
 * masked vector so that pci_msix_notify records it as pending instead.
 */
static void vp_vector_changed(struct pci_device *d, unsigned i)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	const struct accel_ops *a = vp->m->accel;
	struct virtio_pci_vec *v = &vp->vec[i];
	const uint8_t *e = d->msix.table + 16 * i;
	uint64_t addr;
	uint32_t data;

	if (!a || !a->add_irqfd_msi || !a->update_irqfd_msi || i >= vp->nr_vec)
		return;
	if (!d->msix.enabled || d->msix.masked || (e[12] & 1)) {
		__atomic_store_n(&v->live, false, __ATOMIC_RELEASE);
		return;
	}
	addr = (uint64_t)e[0] | (uint64_t)e[1] << 8 | (uint64_t)e[2] << 16 |
	       (uint64_t)e[3] << 24 | (uint64_t)e[4] << 32 | (uint64_t)e[5] << 40 |
	       (uint64_t)e[6] << 48 | (uint64_t)e[7] << 56;
	data = e[8] | e[9] << 8 | e[10] << 16 | (uint32_t)e[11] << 24;
	if (v->fd < 0) {
		v->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->fd < 0)
			return;
		v->handle = a->add_irqfd_msi(vp->m, v->fd, addr, data);
		if (v->handle < 0) {
			close(v->fd);
			v->fd = -1;
			return;
		}
	} else if ((v->addr != addr || v->data != data) &&
		   a->update_irqfd_msi(vp->m, v->handle, addr, data) < 0) {
		__atomic_store_n(&v->live, false, __ATOMIC_RELEASE);
		return;
	}
	v->addr = addr;
	v->data = data;
	__atomic_store_n(&v->live, true, __ATOMIC_RELEASE);
}

static uint8_t vp_isr_read(struct virtio_pci *vp)
{
	uint8_t v;

	pthread_mutex_lock(&vp->irq_lock);
	v = __atomic_exchange_n(&vp->isr, 0, __ATOMIC_RELAXED);
	pci_set_irq(&vp->pci, 0);
	pthread_mutex_unlock(&vp->irq_lock);
	return v;
}

/* ---- notifications ---- */

static uint64_t vp_notify_base(struct virtio_pci *vp)
{
	uint64_t bar = vp->pci.bar[VIRTIO_PCI_BAR].addr;

	return bar ? bar + VIRTIO_PCI_NOTIFY_OFF : 0;
}

static void vp_ioeventfd_del(struct virtio_pci *vp)
{
	const struct accel_ops *a = vp->m->accel;

	if (!vp->ioeventfd_base)
		return;
	for (unsigned i = 0; i < vp->vd->nr_vqs; i++)
		if (vp->vd->vqs[i].enabled)
			a->del_ioeventfd(vp->m, vp->ioeventfd_base + i * VIRTIO_PCI_NOTIFY_MULT,
					 2, false, vp->vd->vqs[i].kick_fd);
	vp->ioeventfd_base = 0;
}

/* Route 16-bit writes to each enabled queue's notify address to its fd. */
static void vp_ioeventfd_add(struct virtio_pci *vp)
{
	const struct accel_ops *a = vp->m->accel;
	uint64_t base = vp_notify_base(vp);

	if (!a || !a->add_ioeventfd || !a->del_ioeventfd || !base)
		return;
	for (unsigned i = 0; i < vp->vd->nr_vqs; i++) {
		struct virtq *vq = &vp->vd->vqs[i];

		if (!vq->enabled)
			continue;
		if (a->add_ioeventfd(vp->m, base + i * VIRTIO_PCI_NOTIFY_MULT, 2, false,
				     vq->kick_fd) < 0) {
			/* The MMIO handler still signals the same fd. */
			while (i--)
				if (vp->vd->vqs[i].enabled)
					a->del_ioeventfd(vp->m, base + i * VIRTIO_PCI_NOTIFY_MULT,
							 2, false, vp->vd->vqs[i].kick_fd);
			return;
		}
	}
	vp->ioeventfd_base = base;
}

/* The guest may move BAR 4: the ioeventfds follow it. */
static void vp_config_written(struct pci_device *d, unsigned off, unsigned size)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;

	pthread_mutex_lock(&vp->ioeventfd_lock);
	if (vp->ioeventfd_on && vp->ioeventfd_base != vp_notify_base(vp)) {
		vp_ioeventfd_del(vp);
		vp_ioeventfd_add(vp);
	}
	pthread_mutex_unlock(&vp->ioeventfd_lock);
}

static void vp_ioeventfd_start(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->ioeventfd_lock);
	vp->ioeventfd_on = true;
	vp_ioeventfd_add(vp);
	pthread_mutex_unlock(&vp->ioeventfd_lock);
}

static void vp_ioeventfd_stop(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->ioeventfd_lock);
	vp->ioeventfd_on = false;
	vp_ioeventfd_del(vp);
	pthread_mutex_unlock(&vp->ioeventfd_lock);
}

/* ---- status and reset ---- */

static void vp_reset_locked(struct virtio_pci *vp)
{
	struct virtio_dev *vd = vp->vd;

	if (vp->started) {
		vp_ioeventfd_stop(vp);
		vd->ops->stop(vd);
		vp->started = false;
	}
	for (unsigned i = 0; i < vd->nr_vqs; i++) {
		uint64_t drain;

		virtq_reset(&vd->vqs[i]);
		__atomic_store_n(&vp->queue_vector[i], VIRTIO_PCI_NO_VECTOR, __ATOMIC_RELAXED);
		/* A kick from before the reset must not wake the next session. */
		if (read(vd->vqs[i].kick_fd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
			log_once("virtio-pci: eventfd read failed: %s", strerror(errno));
	}
	__atomic_store_n(&vp->config_vector, VIRTIO_PCI_NO_VECTOR, __ATOMIC_RELAXED);
	vp->dfselect = vp->gfselect = 0;
	vp->driver_features = 0;
	vp->queue_sel = 0;
	vd->guest_features = 0;
	__atomic_store_n(&vd->status, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vp->irq_lock);
	vp->isr = 0;
	pci_set_irq(&vp->pci, 0);
	pthread_mutex_unlock(&vp->irq_lock);
}

void virtio_pci_reset(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->lock);
	vp_reset_locked(vp);
	pthread_mutex_unlock(&vp->lock);
}

static void vp_pci_reset(struct pci_device *d)
{
	virtio_pci_reset((struct virtio_pci *)d);
}

static void vp_status_write(struct virtio_pci *vp, uint8_t val)
{
	struct virtio_dev *vd = vp->vd;
	uint8_t old = virtio_dev_status(vd);

	if (!val) {
		vp_reset_locked(vp);
		return;
	}
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t f = vp->driver_features;

		/* 3.1.1: refuse a subset we did not offer, or a legacy driver. */
		if ((f & ~vd->host_features) || !(f & (1ull << VIRTIO_F_VERSION_1)))
			val &= ~VIRTIO_STATUS_FEATURES_OK;
		else
			vd->guest_features = f;
	}
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(val & VIRTIO_STATUS_FEATURES_OK)) {
			log_once("%s: DRIVER_OK without FEATURES_OK", vd->name);
			val &= ~VIRTIO_STATUS_DRIVER_OK;
		}
	}
	/* Keep NEEDS_RESET, which only a reset clears; an I/O thread may set
	 * it concurrently. */
	do {
		old = virtio_dev_status(vd);
	} while (!__atomic_compare_exchange_n(&vd->status, &old,
					      val | (old & VIRTIO_STATUS_NEEDS_RESET), false,
					      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !vp->started) {
		vp->started = true;
		vp_ioeventfd_start(vp);
		if (vd->ops->start(vd) < 0)
			virtio_dev_set_needs_reset(vd);
	}
}

/* ---- common configuration ---- */

static struct virtq *vp_selected(struct virtio_pci *vp)
{
	return vp->queue_sel < vp->vd->nr_vqs ? &vp->vd->vqs[vp->queue_sel] : NULL;
}

static uint64_t vp_common_read(struct virtio_pci *vp, unsigned off)
{
	struct virtio_dev *vd = vp->vd;
	struct virtq *vq = vp_selected(vp);

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		return vp->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return vp->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * vp->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT:
		return vp->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX:
		return vp->config_vector;
	case VIRTIO_PCI_COMMON_NUMQ:
		return vd->nr_vqs;
	case VIRTIO_PCI_COMMON_STATUS:
		return virtio_dev_status(vd);
	case VIRTIO_PCI_COMMON_CFGGEN:
		return vd->config_generation;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		return vp->queue_sel;
	}
	if (!vq)
		return 0;	/* 4.1.4.3.2: queue_size reads 0 for a missing queue */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		return vq->size;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		return vp->queue_vector[vp->queue_sel];
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		return vq->enabled;
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return vp->queue_sel;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
		return (uint32_t)vq->desc_gpa;
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		return vq->desc_gpa >> 32;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
		return (uint32_t)vq->avail_gpa;
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		return vq->avail_gpa >> 32;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		return (uint32_t)vq->used_gpa;
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return vq->used_gpa >> 32;
	}
	return 0;
}

static void vp_set_half(uint64_t *field, bool high, uint32_t v)
{
	if (high)
		*field = (*field & 0xffffffffull) | (uint64_t)v << 32;
	else
		*field = (*field & ~0xffffffffull) | v;
}

static uint16_t vp_checked_vector(struct virtio_pci *vp, uint16_t v)
{
	/* 4.1.5.1.2: an unusable vector reads back as NO_VECTOR. */
	return v < vp->nr_vec ? v : VIRTIO_PCI_NO_VECTOR;
}

static void vp_common_write(struct virtio_pci *vp, unsigned off, uint32_t val)
{
	struct virtio_dev *vd = vp->vd;
	struct virtq *vq = vp_selected(vp);
	bool configurable = vq && !vq->enabled && !vp->started;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vp->dfselect = val;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vp->gfselect = val;
		return;
	case VIRTIO_PCI_COMMON_GF:
		if (vp->gfselect < 2 && !(virtio_dev_status(vd) & VIRTIO_STATUS_FEATURES_OK)) {
			uint64_t f = vp->driver_features;

			vp_set_half(&f, vp->gfselect, val);
			vp->driver_features = f;
		}
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		__atomic_store_n(&vp->config_vector, vp_checked_vector(vp, val), __ATOMIC_RELAXED);
		return;
	case VIRTIO_PCI_COMMON_STATUS:
		vp_status_write(vp, val);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vp->queue_sel = val;
		return;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (vq)
			__atomic_store_n(&vp->queue_vector[vp->queue_sel],
					 vp_checked_vector(vp, val), __ATOMIC_RELAXED);
		return;
	}
	if (!configurable) {
		if (vq)
			log_once("%s: queue %u configured while enabled or running: ignored",
				 vd->name, vp->queue_sel);
		return;
	}
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		vq->size = val;
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (val == 1)
			virtq_enable(vq);
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		vp_set_half(&vq->desc_gpa, off == VIRTIO_PCI_COMMON_Q_DESCHI, val);
		break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		vp_set_half(&vq->avail_gpa, off == VIRTIO_PCI_COMMON_Q_AVAILHI, val);
		break;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		vp_set_half(&vq->used_gpa, off == VIRTIO_PCI_COMMON_Q_USEDHI, val);
		break;
	}
}

/* Natural width of the field at off (4 for each half of the 64-bit ones). */
static unsigned vp_common_width(unsigned off)
{
	if (off < VIRTIO_PCI_COMMON_MSIX || off >= VIRTIO_PCI_COMMON_Q_DESCLO)
		return 4;
	if (off == VIRTIO_PCI_COMMON_STATUS || off == VIRTIO_PCI_COMMON_CFGGEN)
		return 1;
	return 2;
}

/* ---- BAR 4 ---- */

static uint64_t vp_bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *vd = vp->vd;
	uint64_t v = 0;

	if (off < VIRTIO_PCI_COMMON_LEN) {
		/* 64-bit fields as one access: two halves. */
		if (size == 8 && off >= VIRTIO_PCI_COMMON_Q_DESCLO && !(off & 7)) {
			pthread_mutex_lock(&vp->lock);
			v = vp_common_read(vp, off) | vp_common_read(vp, off + 4) << 32;
			pthread_mutex_unlock(&vp->lock);
			return v;
		}
		if (size != vp_common_width(off) || (off & (size - 1)))
			return 0;
		pthread_mutex_lock(&vp->lock);
		v = vp_common_read(vp, off);
		pthread_mutex_unlock(&vp->lock);
		return v;
	}
	if (off == VIRTIO_PCI_ISR_OFF)
		return vp_isr_read(vp);
	if (off >= VIRTIO_PCI_DEVCFG_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		off -= VIRTIO_PCI_DEVCFG_OFF;
		for (unsigned i = 0; i < size; i++)
			if (off + i < vd->config_len)
				v |= (uint64_t)vd->config[off + i] << (8 * i);
		return v;
	}
	return 0;
}

static void vp_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *vd = vp->vd;

	if (off < VIRTIO_PCI_COMMON_LEN) {
		pthread_mutex_lock(&vp->lock);
		if (size == 8 && off >= VIRTIO_PCI_COMMON_Q_DESCLO && !(off & 7)) {
			vp_common_write(vp, off, val);
			vp_common_write(vp, off + 4, val >> 32);
		} else if (size == vp_common_width(off) && !(off & (size - 1))) {
			vp_common_write(vp, off, val);
		} else {
			log_once("%s: %u-byte access to common config at 0x%" PRIx64 " ignored",
				 vd->name, size, off);
		}
		pthread_mutex_unlock(&vp->lock);
		return;
	}
	if (off >= VIRTIO_PCI_DEVCFG_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		off -= VIRTIO_PCI_DEVCFG_OFF;
		if (vd->ops->config_write && off + size <= vd->config_len)
			vd->ops->config_write(vd, off, size, val);
		return;
	}
	if (off >= VIRTIO_PCI_NOTIFY_OFF) {
		uint64_t q = (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;

		if (q < vd->nr_vqs)
			vp_signal(vd->vqs[q].kick_fd);
	}
}

static const struct bus_ops vp_bar_ops = {
	.read = vp_bar_read,
	.write = vp_bar_write,
};

static uint64_t vp_msix_bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_pci *vp = opaque;

	return pci_msix_read(&vp->pci, off, size);
}

static void vp_msix_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct virtio_pci *vp = opaque;

	pci_msix_write(&vp->pci, off, size, val);
}

static const struct bus_ops vp_msix_bar_ops = {
	.read = vp_msix_bar_read,
	.write = vp_msix_bar_write,
};

/* ---- setup ---- */

static void vp_add_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
		       unsigned extra)
{
	struct pci_device *d = &vp->pci;
	unsigned cap_len = 16 + extra;
	unsigned at = pci_add_capability(d, PCI_CAP_ID_VNDR, cap_len);
	uint8_t *c = d->config + at;

	c[2] = cap_len;
	c[3] = type;
	c[4] = VIRTIO_PCI_BAR;
	c[5] = 0;
	put_le32(c + 8, off);
	put_le32(c + 12, len);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		put_le32(c + 16, VIRTIO_PCI_NOTIFY_MULT);
}

/* ---- migration ---- */

/* One queue's transport and ring state. */
struct vp_vq_state {
	uint64_t desc, avail, used;
	uint16_t size, last_avail, used_idx, signalled_used;
	uint8_t enabled, signalled_valid, broken, pad;
} __attribute__((packed));

/*
 * Finish the requests in flight: their results land in guest RAM before it
 * is sent.  What the device keeps for the guest (requests waiting for
 * cont, target state) stays, for the device's save and for a resume.
 */
static void vp_quiesce_locked(struct virtio_pci *vp)
{
	const struct virtio_dev_ops *ops = vp->vd->ops;

	(ops->quiesce ? ops->quiesce : ops->stop)(vp->vd);
}

static int vp_quiesce(void *opaque)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->lock);
	/* Held even if not started: a load until the resume must not start it. */
	vp->held = true;
	if (vp->started)
		vp_quiesce_locked(vp);
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

static void vp_unquiesce(void *opaque)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->lock);
	vp->held = false;
	if (vp->started && vp->vd->ops->start(vp->vd) < 0)
		virtio_dev_set_needs_reset(vp->vd);
	pthread_mutex_unlock(&vp->lock);
}

static int vp_save(void *opaque, struct vmstate_out *o)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *vd = vp->vd;
	int ret;

	pci_device_save(&vp->pci, o);
	pthread_mutex_lock(&vp->lock);
	vmstate_put_u32(o, "dfselect", vp->dfselect);
	vmstate_put_u32(o, "gfselect", vp->gfselect);
	vmstate_put_u64(o, "driver-features", vp->driver_features);
	vmstate_put_u16(o, "queue-sel", vp->queue_sel);
	vmstate_put_u16(o, "config-vector", vp->config_vector);
	vmstate_put(o, "queue-vectors", vp->queue_vector, vd->nr_vqs * sizeof(uint16_t));
	vmstate_put_u8(o, "isr", __atomic_load_n(&vp->isr, __ATOMIC_RELAXED));
	vmstate_put_bool(o, "started", vp->started);
	vmstate_put_u8(o, "status", virtio_dev_status(vd));
	vmstate_put_u64(o, "guest-features", vd->guest_features);
	vmstate_put_u8(o, "config-generation", vd->config_generation);
	vmstate_put(o, "device-config", vd->config, vd->config_len);
	for (unsigned i = 0; i < vd->nr_vqs; i++) {
		struct virtq *vq = &vd->vqs[i];
		struct vp_vq_state q = {
			.desc = vq->desc_gpa, .avail = vq->avail_gpa, .used = vq->used_gpa,
			.size = vq->size, .last_avail = vq->last_avail, .used_idx = vq->used_idx,
			.signalled_used = vq->signalled_used, .enabled = vq->enabled,
			.signalled_valid = vq->signalled_valid, .broken = vq->broken,
		};

		vmstate_put(o, "queue", &q, sizeof(q));
	}
	ret = vd->ops->save ? vd->ops->save(vd, o) : 0;
	pthread_mutex_unlock(&vp->lock);
	return ret;
}

/*
 * After a load, the device serves again if the stream says it was started:
 * now, or on the resume when the transport is held (nothing of a held
 * device may run before the rest of the stream is in).  The threads are
 * stopped here, by the hold or by the load itself.
 */
static void vp_load_restart(struct virtio_pci *vp, bool started)
{
	struct virtio_dev *vd = vp->vd;

	if (!started) {
		if (vp->started) {
			/* The source's driver had not set it up: as after a reset. */
			vp_ioeventfd_stop(vp);
			vd->ops->stop(vd);
			vp->started = false;
		}
		return;
	}
	if (!vp->started) {
		vp->started = true;
		vp_ioeventfd_start(vp);
	}
	if (!vp->held && vd->ops->start(vd) < 0)
		virtio_dev_set_needs_reset(vd);
}

static int vp_load_locked(struct virtio_pci *vp, struct vmstate_in *in)
{
	struct virtio_dev *vd = vp->vd;
	const void *qv, *cfg;
	uint32_t qv_len, cfg_len;
	uint8_t isr, status, gen;
	uint16_t cv;
	uint64_t gf;
	bool started;
	int ret;

	if ((ret = vmstate_get_u32(in, "dfselect", &vp->dfselect)) ||
	    (ret = vmstate_get_u32(in, "gfselect", &vp->gfselect)) ||
	    (ret = vmstate_get_u64(in, "driver-features", &vp->driver_features)) ||
	    (ret = vmstate_get_u16(in, "queue-sel", &vp->queue_sel)) ||
	    (ret = vmstate_get_u16(in, "config-vector", &cv)) ||
	    (ret = vmstate_get_var(in, "queue-vectors", &qv, &qv_len)) ||
	    (ret = vmstate_get_u8(in, "isr", &isr)) ||
	    (ret = vmstate_get_bool(in, "started", &started)) ||
	    (ret = vmstate_get_u8(in, "status", &status)) ||
	    (ret = vmstate_get_u64(in, "guest-features", &gf)) ||
	    (ret = vmstate_get_u8(in, "config-generation", &gen)) ||
	    (ret = vmstate_get_var(in, "device-config", &cfg, &cfg_len)))
		return ret;
	if (qv_len != vd->nr_vqs * sizeof(uint16_t) || cfg_len != vd->config_len)
		return vmstate_fail(in, "%u queues and %u config bytes, this device has %u and %u",
				    qv_len / 2, cfg_len, vd->nr_vqs, vd->config_len);
	if (gf & ~vd->host_features)
		return vmstate_fail(in, "features 0x%llx exceed what this device offers (0x%llx)",
				    (unsigned long long)gf,
				    (unsigned long long)vd->host_features);
	/* What vp_status_write lets a driver reach, and what the device sets. */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(gf & (1ull << VIRTIO_F_VERSION_1)))
		return vmstate_fail(in, "status FEATURES_OK with features 0x%llx, without VERSION_1",
				    (unsigned long long)gf);
	if ((status & VIRTIO_STATUS_DRIVER_OK) &&
	    (!(status & VIRTIO_STATUS_FEATURES_OK) || !started))
		return vmstate_fail(in, "status 0x%02x: DRIVER_OK without FEATURES_OK or with the "
				    "device not started", status);
	if (isr & ~(VIRTIO_PCI_ISR_QUEUE | VIRTIO_PCI_ISR_CONFIG))
		return vmstate_fail(in, "isr 0x%02x has bits the device never sets", isr);
	/* A vector this function lacks reads back as NO_VECTOR (vp_checked_vector). */
	for (unsigned i = 0; i <= vd->nr_vqs; i++) {
		uint16_t v = cv;

		if (i < vd->nr_vqs)
			memcpy(&v, (const uint8_t *)qv + 2 * i, 2);
		if (v >= vp->nr_vec && v != VIRTIO_PCI_NO_VECTOR)
			return vmstate_fail(in, "%s vector %u of %u vectors", i < vd->nr_vqs ?
					    "a queue's" : "the config", v, vp->nr_vec);
	}
	/*
	 * The rings are rewritten below: a started device that nobody held
	 * still has I/O threads walking them.  Stop those first (requests in
	 * flight complete); they start again below as the stream says.
	 */
	if (vp->started && !vp->held)
		vp_quiesce_locked(vp);
	__atomic_store_n(&vp->config_vector, cv, __ATOMIC_RELAXED);
	memcpy(vp->queue_vector, qv, qv_len);
	memcpy(vd->config, cfg, cfg_len);
	vd->guest_features = gf;
	vd->config_generation = gen;
	__atomic_store_n(&vd->status, status, __ATOMIC_SEQ_CST);
	vp->isr = isr;
	for (unsigned i = 0; i < vd->nr_vqs; i++) {
		struct virtq *vq = &vd->vqs[i];
		struct vp_vq_state q;

		if ((ret = vmstate_get(in, "queue", &q, sizeof(q))))
			goto fail;
		virtq_reset(vq);
		vq->size = q.size;
		vq->desc_gpa = q.desc;
		vq->avail_gpa = q.avail;
		vq->used_gpa = q.used;
		if (q.enabled && virtq_enable(vq)) {
			ret = vmstate_fail(in, "queue %u: the source's rings are not valid here", i);
			goto fail;
		}
		vq->last_avail = q.last_avail;
		vq->used_idx = q.used_idx;
		vq->signalled_used = q.signalled_used;
		vq->signalled_valid = q.signalled_valid;
		vq->broken = q.broken;
	}
	/* Version 1 streams carry no device state: nothing was waiting. */
	if (in->version >= 2 && vd->ops->load && (ret = vd->ops->load(vd, in)))
		goto fail;
	vp_load_restart(vp, started);
	return 0;
fail:
	/*
	 * Half of the state is loaded: a device that served stays stopped
	 * and asks its driver for a reset rather than run on mixed rings.
	 */
	if (vp->started)
		virtio_dev_set_needs_reset(vd);
	return ret;
}

static int vp_load(void *opaque, struct vmstate_in *in)
{
	struct virtio_pci *vp = opaque;
	int ret = pci_device_load(&vp->pci, in);

	if (ret)
		return ret;
	pthread_mutex_lock(&vp->lock);
	ret = vp_load_locked(vp, in);
	pthread_mutex_unlock(&vp->lock);
	return ret;
}

int virtio_pci_init(struct virtio_pci *vp, struct machine *m, struct virtio_dev *vd,
		    uint32_t class_code, int slot, char *err, size_t errlen)
{
	struct pci_device *d = &vp->pci;
	int ret;

	if (vd->nr_vqs > VIRTIO_PCI_MAX_QUEUES || vd->config_len > 0x1000) {
		snprintf(err, errlen, "%s: %u queues, at most %u", vd->name, vd->nr_vqs,
			 VIRTIO_PCI_MAX_QUEUES);
		return -EINVAL;
	}
	vp->m = m;
	vp->vd = vd;
	vd->transport = vp;
	vd->notify = vp_notify;
	vd->notify_fd = vp_notify_fd;
	pthread_mutex_init(&vp->lock, NULL);
	pthread_mutex_init(&vp->irq_lock, NULL);
	pthread_mutex_init(&vp->ioeventfd_lock, NULL);
	vp->config_vector = VIRTIO_PCI_NO_VECTOR;
	vp->queue_vector = g_new(uint16_t, vd->nr_vqs);
	vp->nr_vec = vd->nr_vqs + 1;
	vp->vec = g_new0(struct virtio_pci_vec, vp->nr_vec);
	for (unsigned i = 0; i < vp->nr_vec; i++)
		vp->vec[i].fd = -1;
	for (unsigned i = 0; i < vd->nr_vqs; i++) {
		vp->queue_vector[i] = VIRTIO_PCI_NO_VECTOR;
		vd->vqs[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vd->vqs[i].kick_fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: eventfd: %s", vd->name, strerror(errno));
			goto fail;
		}
	}

	pci_device_init(d, vd->name, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + vd->device_id,
			class_code, 1);
	put_le16(d->config + PCI_SUBSYSTEM_VENDOR_ID, VIRTIO_PCI_VENDOR);
	put_le16(d->config + PCI_SUBSYSTEM_ID, VIRTIO_PCI_SUBSYS_ID);
	d->config[PCI_INTERRUPT_PIN] = 1;
	pci_set_bar(d, VIRTIO_PCI_BAR, PCI_BAR_MEM64, VIRTIO_PCI_BAR_SIZE, true, &vp_bar_ops, vp);
	pci_set_bar(d, VIRTIO_PCI_MSIX_BAR, PCI_BAR_MEM32, VIRTIO_PCI_MSIX_BAR_SIZE, false,
		    &vp_msix_bar_ops, vp);
	ret = pci_msix_init(d, vp->nr_vec, VIRTIO_PCI_MSIX_BAR, 0, VIRTIO_PCI_MSIX_PBA);
	if (ret < 0) {
		snprintf(err, errlen, "%s: MSI-X: %s", vd->name, strerror(-ret));
		goto fail;
	}
	d->msix.vector_changed = vp_vector_changed;
	d->config_written = vp_config_written;
	d->reset = vp_pci_reset;
	vp_add_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 0);
	vp_add_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, 0);
	vp_add_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVCFG_OFF,
		   vd->config_len ? vd->config_len : 1, 0);
	vp_add_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
		   vd->nr_vqs * VIRTIO_PCI_NOTIFY_MULT, 4);
	ret = pci_device_register(m, d, slot, err, errlen);
	if (ret < 0)
		goto fail;
	vp->vms = (struct vmstate_section){ .name = "virtio-pci", .instance = d->devfn,
					    .version = 4, .min_version = 1, .save = vp_save,
					    .load = vp_load, .quiesce = vp_quiesce,
					    .resume = vp_unquiesce, .opaque = vp };
	ret = vmstate_register(m, &vp->vms);
	if (ret < 0) {
		snprintf(err, errlen, "%s: slot %u is registered for migration twice", vd->name,
			 d->devfn >> 3);
		pci_device_unregister(d);
		goto fail;
	}
	return 0;
fail:
	for (unsigned i = 0; i < vd->nr_vqs; i++)
		if (vd->vqs[i].kick_fd >= 0) {
			close(vd->vqs[i].kick_fd);
			vd->vqs[i].kick_fd = -1;
		}
	g_free(vp->queue_vector);
	g_free(vp->vec);
	pthread_mutex_destroy(&vp->lock);
	pthread_mutex_destroy(&vp->irq_lock);
	pthread_mutex_destroy(&vp->ioeventfd_lock);
	return ret;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	const struct accel_ops *a = vp->m->accel;
	struct virtio_dev *vd = vp->vd;

	vmstate_unregister(vp->m, &vp->vms);
	virtio_pci_reset(vp);
	pci_device_unregister(&vp->pci);
	for (unsigned i = 0; i < vp->nr_vec; i++) {
		if (vp->vec[i].fd < 0)
			continue;
		if (a && a->del_irqfd_msi)
			a->del_irqfd_msi(vp->m, vp->vec[i].handle, vp->vec[i].fd);
		close(vp->vec[i].fd);
	}
	for (unsigned i = 0; i < vd->nr_vqs; i++) {
		close(vd->vqs[i].kick_fd);
		vd->vqs[i].kick_fd = -1;
	}
	g_free(vp->queue_vector);
	g_free(vp->vec);
	pthread_mutex_destroy(&vp->lock);
	pthread_mutex_destroy(&vp->irq_lock);
	pthread_mutex_destroy(&vp->ioeventfd_lock);
}
