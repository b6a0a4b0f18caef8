/*
 * virtio-scsi across a migration: what the driver and the guest's SCSI
 * initiator can observe beyond the virtio-pci transport.  The controller's
 * "events missed" flag, and per unit (by target and LUN) its asynchronous
 * notification subscriptions and the target state of scsi_lun_save:
 * pending unit attentions, caching and D_SENSE mode parameters, the
 * medium lock, tray and media event.  Requests in flight finished before
 * the save (the queues drain at quiesce).  Since section version 4: each
 * unit's io-status and the requests parked by werror/rerror=stop, as ring
 * heads per request queue (virtio_scsi_err.c); older streams carry none.
 *
 * Both ends must have the same units, as with QEMU: a unit the stream
 * names that is not here, or one here the stream lacks, refuses the load.
 */
#include <errno.h>
#include <glib.h>
#include <stddef.h>
#include <string.h>

#include "block.h"
#include "virtio/virtio_scsi_int.h"
#include "vmstate.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static uint32_t vscsi_unit_addr(const struct vscsi_dev *d)
{
	return d->target << 16 | d->lun;
}

int vscsi_save(struct virtio_dev *vd, struct vmstate_out *o)
{
	struct virtio_scsi *s = container_of(vd, struct virtio_scsi, vd);
	uint32_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (struct vscsi_dev *d = s->devs; d; d = d->next)
		n++;
	vmstate_put_bool(o, "events-dropped", s->events_dropped);
	vmstate_put_u32(o, "units", n);
	for (struct vscsi_dev *d = s->devs; d; d = d->next) {
		struct drive *drv = d->drive;

		vmstate_put_u32(o, "unit", vscsi_unit_addr(d));
		vmstate_put_u32(o, "an-subscribed", d->an_subscribed);
		scsi_lun_save(d->sl, o);
		/* Why its requests wait, for query-block on the destination. */
		vmstate_put_u8(o, "io-status", drv ? __atomic_load_n(&drv->io_status,
								     __ATOMIC_ACQUIRE) : 0);
	}
	pthread_mutex_unlock(&s->lock);
	vscsi_parked_save(s, o);
	return 0;
}

static struct vscsi_dev *vscsi_find_addr(struct virtio_scsi *s, uint32_t addr, unsigned *index)
{
	unsigned i = 0;

	for (struct vscsi_dev *d = s->devs; d; d = d->next, i++) {
		if (vscsi_unit_addr(d) == addr) {
			*index = i;
			return d;
		}
	}
	return NULL;
}

static int vscsi_load_locked(struct virtio_scsi *s, struct vmstate_in *in)
{
	g_autofree bool *seen = NULL;
	g_autofree uint8_t *status = NULL;
	uint32_t n, here = 0;
	bool dropped;
	int ret;

	uint32_t sense, cdb;

	/* The transport loaded the device config: the sizes a driver could set. */
	memcpy(&sense, s->vd.config + offsetof(struct virtio_scsi_config, sense_size), 4);
	memcpy(&cdb, s->vd.config + offsetof(struct virtio_scsi_config, cdb_size), 4);
	if (sense > VSCSI_CONFIG_SIZE_MAX || cdb > VSCSI_CONFIG_SIZE_MAX)
		return vmstate_fail(in, "device-config: sense_size %u or cdb_size %u above %u",
				    sense, cdb, VSCSI_CONFIG_SIZE_MAX);
	for (struct vscsi_dev *d = s->devs; d; d = d->next)
		here++;
	if ((ret = vmstate_get_bool(in, "events-dropped", &dropped)) ||
	    (ret = vmstate_get_u32(in, "units", &n)))
		return ret;
	if (n != here)
		return vmstate_fail(in, "the source has %u SCSI units on this controller, this "
				    "VM %u", n, here);
	seen = g_new0(bool, here + 1);
	status = g_new0(uint8_t, here + 1);
	for (uint32_t k = 0; k < n; k++) {
		struct vscsi_dev *d;
		uint32_t addr, an;
		unsigned i;

		if ((ret = vmstate_get_u32(in, "unit", &addr)) ||
		    (ret = vmstate_get_u32(in, "an-subscribed", &an)))
			return ret;
		d = vscsi_find_addr(s, addr, &i);
		if (!d || seen[i])
			return vmstate_fail(in, "unit scsi-id=%u lun=%u %s", addr >> 16,
					    addr & 0xffff, d ? "appears twice" : "is not on this "
					    "controller");
		seen[i] = true;
		if (an & ~vscsi_an_supported(d))
			return vmstate_fail(in, "unit scsi-id=%u lun=%u: notification classes 0x%x "
					    "beyond the 0x%x it offers", d->target, d->lun, an,
					    vscsi_an_supported(d));
		ret = scsi_lun_load(d->sl, in);
		if (ret)
			return ret;
		if (in->version >= 4) {
			if ((ret = vmstate_get_u8(in, "io-status", &status[i])))
				return ret;
			if (status[i] > BLK_IOSTATUS_NOSPACE)
				return vmstate_fail(in, "io-status %u is not one of ok, failed, "
						    "nospace", status[i]);
		}
		d->an_subscribed = an;
	}
	s->events_dropped = dropped;
	if (in->version < 4)
		return 0;
	n = 0;
	for (struct vscsi_dev *d = s->devs; d; d = d->next, n++) {
		struct drive *drv = d->drive;

		if (drv)
			__atomic_store_n(&drv->io_status, status[n], __ATOMIC_RELEASE);
	}
	return 0;
}

int vscsi_load(struct virtio_dev *vd, struct vmstate_in *in)
{
	struct virtio_scsi *s = container_of(vd, struct virtio_scsi, vd);
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = vscsi_load_locked(s, in);
	pthread_mutex_unlock(&s->lock);
	if (ret || in->version < 4)
		return ret;
	return vscsi_parked_load(s, in);
}
