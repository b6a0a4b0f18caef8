/*
 * The -device types of virtio-scsi: the controller (virtio-scsi-pci) and
 * its units (scsi-hd, scsi-cd, and scsi-block passing CDBs to a host
 * device with SG_IO), plus the host-side operations the monitor uses on
 * the units: removal, eject and medium change.
 *
 * Units are addressed as in QEMU: bus=ID.0 names the controller, scsi-id
 * the target (0-255, the first free one when absent) and lun the LUN
 * (0-16383); channel must be 0.  Adding a unit while the driver runs is a
 * hot-plug, reported on the event queue when VIRTIO_SCSI_F_HOTPLUG was
 * negotiated, with REPORTED LUNS DATA HAS CHANGED on the target's other
 * LUNs.
 *
 * Removing a unit or changing a disc needs the queue threads out of the
 * way (each caches a blk_queue per medium): they are stopped, which waits
 * for their requests, and started again afterwards.
 */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "log.h"
#include "options.h"
#include "virtio_scsi_int.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

#define VSCSI_QUEUE_SIZE	256
#define VSCSI_MAX_SECTORS	0xffff
#define VSCSI_CMD_PER_LUN	128
#define PCI_CLASS_STORAGE_SCSI	0x010000

static const char vscsi_type[] = "virtio-scsi-pci";

/* ---- the controller ---- */

static void vscsi_dev_release(struct vscsi_dev *d)
{
	struct drive *policy = d->drive;

	/* Its parked commands will meet no unit: nothing waits on the drive. */
	if (policy)
		__atomic_store_n(&policy->io_status, BLK_IOSTATUS_OK, __ATOMIC_RELEASE);
	if (d->drive && d->drive->quiesced_opaque == d) {
		d->drive->quiesced = NULL;
		d->drive->quiesced_opaque = NULL;
		d->drive->quiesce_key = NULL;
	}
	if (d->drive)
		d->drive->claimed = false;
	if (d->own_blk)
		blk_close(d->own_blk);
	g_free(d->id);
	g_free(d);
}

static void vscsi_free(struct virtio_scsi *s)
{
	struct vscsi_dev *d, *next;

	for (d = s->devs; d; d = next) {
		next = d->next;
		vscsi_dev_release(d);
	}
	scsi_bus_destroy(&s->bus);
	vscsi_queues_free(s);
	g_free(s->dev.id);
	g_free(s);
}

static void vscsi_destroy(struct device *dev)
{
	struct virtio_scsi *s = container_of(dev, struct virtio_scsi, dev);

	virtio_pci_destroy(&s->vp);
	vscsi_free(s);
}

static void vscsi_reset(struct device *dev)
{
	struct virtio_scsi *s = container_of(dev, struct virtio_scsi, dev);

	virtio_pci_reset(&s->vp);
}

static void vscsi_fill_config(struct virtio_scsi *s)
{
	struct virtio_scsi_config *c = &s->cfg;

	memset(c, 0, sizeof(*c));
	c->num_queues = s->nr_req_queues;
	c->seg_max = s->queue_size - 2;
	c->max_sectors = VSCSI_MAX_SECTORS;
	c->cmd_per_lun = VSCSI_CMD_PER_LUN;
	c->event_info_size = sizeof(struct virtio_scsi_event);
	c->sense_size = VIRTIO_SCSI_SENSE_DEFAULT;
	c->cdb_size = VIRTIO_SCSI_CDB_DEFAULT;
	c->max_channel = 0;
	c->max_target = SCSI_MAX_TARGET - 1;
	c->max_lun = SCSI_MAX_LUN - 1;
	s->vd.config = (uint8_t *)c;
	s->vd.config_len = sizeof(*c);
	s->vd.host_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC |
			      1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_SCSI_F_HOTPLUG |
			      1ull << VIRTIO_SCSI_F_CHANGE;
}

static int vscsi_create(struct machine *m, struct opts *o, char *err, size_t errlen)
{
	uint64_t nq, qsize, smp = m->cfg.smp ? m->cfg.smp : 1;
	const char *id;
	struct virtio_scsi *s;
	int slot, ret;

	opts_get(o, "driver");
	id = opts_get(o, "id");
	if ((ret = opts_get_uint(o, "num_queues", MIN(smp, VIRTIO_PCI_MAX_QUEUES - 2u), &nq,
				 err, errlen)) < 0 ||
	    (ret = opts_get_uint(o, "virtqueue_size", VSCSI_QUEUE_SIZE, &qsize, err, errlen)) < 0 ||
	    (ret = pci_parse_location(o, vscsi_type, &slot, err, errlen)) < 0 ||
	    (ret = opts_check_all_used(o, err, errlen)) < 0)
		return ret;
	if (!nq || nq > VIRTIO_PCI_MAX_QUEUES - 2) {
		snprintf(err, errlen, "%s: num_queues=%" PRIu64 ": must be 1 to %u", vscsi_type, nq,
			 VIRTIO_PCI_MAX_QUEUES - 2);
		return -EINVAL;
	}
	if (qsize < 4 || qsize > VIRTQ_MAX_SIZE || (qsize & (qsize - 1))) {
		snprintf(err, errlen, "%s: virtqueue_size=%" PRIu64
			 ": must be a power of two from 4 to %u", vscsi_type, qsize, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	if (id && machine_find_device(m, id)) {
		snprintf(err, errlen, "%s: id=%s: already in use", vscsi_type, id);
		return -EEXIST;
	}
	s = g_new0(struct virtio_scsi, 1);
	s->m = m;
	s->nr_req_queues = nq;
	s->queue_size = qsize;
	scsi_bus_init(&s->bus);
	s->dev.type = vscsi_type;
	s->dev.id = g_strdup(id);
	s->dev.reset = vscsi_reset;
	s->dev.destroy = vscsi_destroy;
	s->vd.name = vscsi_type;
	s->vd.device_id = VIRTIO_ID_SCSI;
	s->vd.mem = &m->mem;
	s->vd.ops = &vscsi_ops;
	ret = vscsi_queues_init(s, err, errlen);
	if (ret < 0)
		goto fail;
	vscsi_fill_config(s);
	ret = virtio_pci_init(&s->vp, m, &s->vd, PCI_CLASS_STORAGE_SCSI, slot, err, errlen);
	if (ret < 0)
		goto fail;
	machine_add_device_obj(m, &s->dev);
	return 0;
fail:
	vscsi_free(s);
	return ret;
}

DEVICE_TYPE(virtio_scsi_pci,
	.name = "virtio-scsi-pci",
	.help = "virtio SCSI controller: [id=ID][,num_queues=N][,virtqueue_size=N][,addr=SLOT]",
	.create = vscsi_create,
)

/* ---- units ---- */

/* The controller bus=ID.0 names, or the first one. */
static struct virtio_scsi *vscsi_find_bus(struct machine *m, const char *bus, const char *type,
					  char *err, size_t errlen)
{
	struct device *d = NULL;

	if (bus) {
		size_t n = strlen(bus);
		char *id;

		if (n < 3 || strcmp(bus + n - 2, ".0")) {
			snprintf(err, errlen, "%s: bus=%s: expected CONTROLLER.0", type, bus);
			return NULL;
		}
		id = g_strndup(bus, n - 2);
		d = machine_find_device(m, id);
		g_free(id);
		if (!d || d->type != vscsi_type) {
			snprintf(err, errlen, "%s: bus=%s: no virtio-scsi-pci with that id", type,
				 bus);
			return NULL;
		}
	} else {
		for (d = m->devices; d && d->type != vscsi_type; d = d->next)
			;
		if (!d) {
			snprintf(err, errlen, "%s: no virtio-scsi-pci controller to attach to", type);
			return NULL;
		}
	}
	return container_of(d, struct virtio_scsi, dev);
}

/* Each unit of the machine, on every controller. */
static struct vscsi_dev *vscsi_find_unit(struct machine *m, const char *id,
					 struct virtio_scsi **out)
{
	for (struct device *d = m->devices; d; d = d->next) {
		struct virtio_scsi *s;

		if (d->type != vscsi_type)
			continue;
		s = container_of(d, struct virtio_scsi, dev);
		for (struct vscsi_dev *u = s->devs; u; u = u->next) {
			if (u->id && !strcmp(u->id, id)) {
				*out = s;
				return u;
			}
		}
	}
	return NULL;
}

struct vscsi_unit_params {
	const char *type, *id, *drive, *bus, *serial, *vendor, *product, *ver, *wwn, *device_id;
	uint64_t channel, target, lun, lbs, pbs, rotation_rate, bootindex;
	bool target_set, write_cache, write_cache_set;
};

static int vscsi_unit_opts(struct opts *o, struct vscsi_unit_params *p, char *err,
			   size_t errlen)
{
	int ret;

	opts_get(o, "driver");
	p->id = opts_get(o, "id");
	p->drive = opts_get(o, "drive");
	p->bus = opts_get(o, "bus");
	p->serial = opts_get(o, "serial");
	p->vendor = opts_get(o, "vendor");
	p->product = opts_get(o, "product");
	p->ver = opts_get(o, "ver");
	p->wwn = opts_get(o, "wwn");
	p->device_id = opts_get(o, "device_id");
	p->target_set = opts_get(o, "scsi-id") != NULL;
	p->write_cache_set = opts_get(o, "write-cache") != NULL;
	if ((ret = opts_get_uint(o, "channel", 0, &p->channel, err, errlen)) < 0 ||
	    (ret = opts_get_uint(o, "scsi-id", 0, &p->target, err, errlen)) < 0 ||
	    (ret = opts_get_uint(o, "lun", 0, &p->lun, err, errlen)) < 0 ||
	    (ret = opts_get_size(o, "logical_block_size", 0, &p->lbs, err, errlen)) < 0 ||
	    (ret = opts_get_size(o, "physical_block_size", 0, &p->pbs, err, errlen)) < 0 ||
	    (ret = opts_get_bool(o, "write-cache", true, &p->write_cache, err, errlen)) < 0 ||
	    (ret = opts_get_uint(o, "rotation_rate", 1, &p->rotation_rate, err, errlen)) < 0 ||
	    /* Accepted for libvirt's command lines: there is no firmware to boot from it. */
	    (ret = opts_get_uint(o, "bootindex", 0, &p->bootindex, err, errlen)) < 0)
		return ret;
	if ((ret = opts_check_all_used(o, err, errlen)) < 0)
		return ret;
	if (p->channel) {
		snprintf(err, errlen, "%s: channel=%" PRIu64 ": virtio-scsi has channel 0 only",
			 p->type, p->channel);
		return -EINVAL;
	}
	/* SBC-3: 0 not reported, 1 non-rotating, 0x401-0xfffe rpm. */
	if (p->rotation_rate > 0xfffe || (p->rotation_rate > 1 && p->rotation_rate < 0x401)) {
		snprintf(err, errlen, "%s: rotation_rate=%" PRIu64 ": 0, 1 or 1025-65534 rpm",
			 p->type, p->rotation_rate);
		return -EINVAL;
	}
	if (p->target >= SCSI_MAX_TARGET || p->lun >= SCSI_MAX_LUN) {
		snprintf(err, errlen, "%s: scsi-id=%" PRIu64 ",lun=%" PRIu64
			 ": scsi-id is 0-%u, lun 0-%u", p->type, p->target, p->lun,
			 SCSI_MAX_TARGET - 1, SCSI_MAX_LUN - 1);
		return -ERANGE;
	}
	return 0;
}

struct vscsi_target_scan {
	unsigned target, except;
};

static void vscsi_luns_changed(struct scsi_lun *l, unsigned target, unsigned lun, void *opaque)
{
	const struct vscsi_target_scan *t = opaque;

	if (target == t->target && lun != t->except)
		scsi_lun_set_ua(l, SCSI_UA_REPORTED_LUNS);
}

static bool vscsi_hotplug_on(struct virtio_scsi *s)
{
	return s->running && virtio_has_feature(&s->vd, VIRTIO_SCSI_F_HOTPLUG);
}

/*
 * The LUN's tray moved (from an I/O thread, or the main thread's medium
 * change; under the LUN's lock, so only queued here).  u outlives the
 * call: unplug stops the threads before it frees u, and u->drive, u->id
 * and the drive's id do not change meanwhile.
 */
static void vscsi_tray_moved(void *opaque, bool open)
{
	struct vscsi_dev *u = opaque;
	struct machine_tray_event e = {
		.device = u->drive ? u->drive->id : "",
		.id = u->id ? u->id : "",
		.tray_open = open,
	};

	machine_report_tray_moved(u->s->m, &e);
}

static int vscsi_drive_quiesced(struct drive *d, int (*fn)(struct drive *d, void *arg),
				void *arg);

static int vscsi_unit_create(struct machine *m, struct opts *o, enum scsi_lun_type type,
			     const char *tname, bool passthrough, char *err, size_t errlen)
{
	struct vscsi_unit_params p = { .type = tname };
	struct scsi_lun_config cfg = { .type = type };
	struct virtio_scsi *s, *other;
	struct drive *drv = NULL;
	struct vscsi_dev *u;
	struct vscsi_target_scan scan;
	int ret;

	if ((ret = vscsi_unit_opts(o, &p, err, errlen)) < 0)
		return ret;
	s = vscsi_find_bus(m, p.bus, tname, err, errlen);
	if (!s)
		return -ENODEV;
	if (p.id && vscsi_find_unit(m, p.id, &other)) {
		snprintf(err, errlen, "%s: id=%s: already in use", tname, p.id);
		return -EEXIST;
	}
	if (p.drive) {
		drv = drive_find(m, p.drive);
		if (!drv) {
			snprintf(err, errlen, "%s: drive=%s: no such drive", tname, p.drive);
			return -ENOENT;
		}
		if (drv->claimed) {
			snprintf(err, errlen, "%s: drive '%s' is already in use", tname, p.drive);
			return -EBUSY;
		}
		/* Ejected from a unit since unplugged: an empty tray, or nothing. */
		if (!drv->blk && type != SCSI_LUN_CDROM) {
			snprintf(err, errlen, "%s: drive '%s' has no medium", tname, p.drive);
			return -ENODEV;
		}
	} else if (type != SCSI_LUN_CDROM) {
		snprintf(err, errlen, "%s: drive property not set", tname);
		return -EINVAL;
	}
	if (!p.target_set) {
		/* QEMU's rule: the first target with that LUN free. */
		while (p.target < SCSI_MAX_TARGET && scsi_bus_find(&s->bus, p.target, p.lun))
			p.target++;
		if (p.target == SCSI_MAX_TARGET) {
			snprintf(err, errlen, "%s: no free scsi-id for lun %" PRIu64, tname, p.lun);
			return -ENOSPC;
		}
	}
	if (scsi_bus_find(&s->bus, p.target, p.lun)) {
		snprintf(err, errlen, "%s: scsi-id=%" PRIu64 ",lun=%" PRIu64 " is already in use",
			 tname, p.target, p.lun);
		return -EEXIST;
	}
	if (p.wwn) {
		char *end;

		cfg.wwn = strtoull(p.wwn, &end, 0);
		if (end == p.wwn || *end || !cfg.wwn) {
			snprintf(err, errlen, "%s: wwn=%s: expected a 64-bit number", tname, p.wwn);
			return -EINVAL;
		}
	}
	cfg.blk = drv ? drv->blk : NULL;
	cfg.block_size = p.lbs;
	cfg.physical_block_size = p.pbs;
	cfg.readonly = drv && (drv->cfg.readonly || (drv->blk && blk_is_readonly(drv->blk)));
	cfg.discard = drv && drv->cfg.discard_unmap;
	/* The drive's cache mode sets WCE unless write-cache= says otherwise. */
	cfg.write_cache = p.write_cache_set ? p.write_cache :
			  !drv || (drv->cfg.cache != BLK_CACHE_WRITETHROUGH &&
				   drv->cfg.cache != BLK_CACHE_DIRECTSYNC);
	cfg.serial = p.serial;
	/* The name of VPD 0x83 without a serial: device_id, as libvirt sets it. */
	cfg.name = p.device_id ? p.device_id : p.id ? p.id : p.drive;
	cfg.rotation_rate = p.rotation_rate;
	cfg.vendor = p.vendor;
	cfg.product = p.product;
	cfg.revision = p.ver;
	u = g_new0(struct vscsi_dev, 1);
	cfg.tray_moved = vscsi_tray_moved;
	cfg.tray_opaque = u;
	if (passthrough) {
		/* scsi-block: the drive names a host SCSI node that answers SG_IO. */
		const struct scsi_pt_ops *ops;
		void *opaque;
		char why[256];

		ret = scsi_pt_sg_open(drv->cfg.file, cfg.readonly, &ops, &opaque, why,
				      sizeof(why));
		if (ret < 0) {
			snprintf(err, errlen, "%s: drive=%s: %s", tname, drv->id, why);
			g_free(u);
			return ret;
		}
		u->sl = scsi_lun_new_passthrough(ops, opaque);
	} else {
		u->sl = scsi_lun_new(&cfg, err, errlen);
	}
	if (!u->sl) {
		g_free(u);
		return -EINVAL;
	}
	u->id = g_strdup(p.id);
	u->type = tname;
	u->target = p.target;
	u->lun = p.lun;
	u->s = s;
	u->drive = drv;
	ret = scsi_bus_attach(&s->bus, u->target, u->lun, u->sl);
	if (ret < 0) {
		scsi_lun_free(u->sl);
		g_free(u->id);
		g_free(u);
		snprintf(err, errlen, "%s: cannot attach: %s", tname, strerror(-ret));
		return ret;
	}
	if (drv)
		drv->claimed = true;
	/*
	 * A disk's image may change under it (block_resize, a snapshot); a
	 * CD's or a host device's may not.
	 */
	if (drv && type == SCSI_LUN_DISK && !passthrough) {
		drv->quiesced = vscsi_drive_quiesced;
		drv->quiesced_opaque = u;
		drv->quiesce_key = s;
	}
	pthread_mutex_lock(&s->lock);
	u->next = s->devs;
	s->devs = u;
	scan = (struct vscsi_target_scan){ u->target, u->lun };
	if (s->running) {
		scsi_bus_foreach(&s->bus, vscsi_luns_changed, &scan);
		if (vscsi_hotplug_on(s))
			vscsi_event_locked(s, VIRTIO_SCSI_T_TRANSPORT_RESET, u->target, u->lun,
					   VIRTIO_SCSI_EVT_RESET_RESCAN);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int vscsi_hd_create(struct machine *m, struct opts *o, char *err, size_t errlen)
{
	return vscsi_unit_create(m, o, SCSI_LUN_DISK, "scsi-hd", false, err, errlen);
}

static int vscsi_cd_create(struct machine *m, struct opts *o, char *err, size_t errlen)
{
	return vscsi_unit_create(m, o, SCSI_LUN_CDROM, "scsi-cd", false, err, errlen);
}

static int vscsi_block_create(struct machine *m, struct opts *o, char *err, size_t errlen)
{
	return vscsi_unit_create(m, o, SCSI_LUN_DISK, "scsi-block", true, err, errlen);
}

#define VSCSI_UNIT_HELP "drive=ID[,bus=CONTROLLER.0][,channel=0][,scsi-id=T][,lun=L]" \
	"[,serial=S][,wwn=N][,device_id=S][,vendor=S][,product=S][,ver=S]" \
	"[,write-cache=on|off][,rotation_rate=N][,bootindex=N]"

DEVICE_TYPE(scsi_hd,
	.name = "scsi-hd",
	.help = "SCSI disk on virtio-scsi: " VSCSI_UNIT_HELP
		"[,logical_block_size=N][,physical_block_size=N]",
	.create = vscsi_hd_create,
	.hotpluggable = true,
)

DEVICE_TYPE(scsi_cd,
	.name = "scsi-cd",
	.help = "SCSI CD/DVD-ROM on virtio-scsi (drive optional: empty tray): " VSCSI_UNIT_HELP,
	.create = vscsi_cd_create,
	.hotpluggable = true,
)

DEVICE_TYPE(scsi_block,
	.name = "scsi-block",
	.help = "host SCSI device passthrough (needs SG_IO): " VSCSI_UNIT_HELP,
	.create = vscsi_block_create,
)

/* ---- host-side operations ---- */

/*
 * Run fn with the queue threads stopped (their requests done).  Held by a
 * migration's quiesce, they stay stopped: the guest's RAM and disks may
 * be on their way, and the resume starts them.
 */
static int vscsi_quiesced(struct virtio_scsi *s, int (*fn)(struct virtio_scsi *s, void *arg),
			  void *arg)
{
	bool started;
	int ret;

	pthread_mutex_lock(&s->vp.lock);
	started = s->vp.started && !__atomic_load_n(&s->quiesced, __ATOMIC_RELAXED);
	if (started)
		vscsi_threads_stop(s);
	ret = fn(s, arg);
	if (started && vscsi_threads_start(s) < 0)
		virtio_dev_set_needs_reset(&s->vd);
	pthread_mutex_unlock(&s->vp.lock);
	return ret;
}

static int vscsi_do_del(struct virtio_scsi *s, void *arg)
{
	struct vscsi_dev *u = arg, **pp;
	struct vscsi_target_scan scan = { u->target, u->lun };
	struct scsi_lun *sl = scsi_bus_detach(&s->bus, u->target, u->lun);

	scsi_lun_free(sl);
	pthread_mutex_lock(&s->lock);
	for (pp = &s->devs; *pp != u; pp = &(*pp)->next)
		;
	*pp = u->next;
	if (s->running) {
		scsi_bus_foreach(&s->bus, vscsi_luns_changed, &scan);
		if (vscsi_hotplug_on(s))
			vscsi_event_locked(s, VIRTIO_SCSI_T_TRANSPORT_RESET, u->target, u->lun,
					   VIRTIO_SCSI_EVT_RESET_REMOVED);
	}
	pthread_mutex_unlock(&s->lock);
	vscsi_dev_release(u);
	return 0;
}

int virtio_scsi_device_del(struct machine *m, const char *id, char *err, size_t errlen)
{
	struct virtio_scsi *s;
	struct vscsi_dev *u = vscsi_find_unit(m, id, &s);

	if (!u) {
		snprintf(err, errlen, "device_del: no SCSI device with id '%s'", id);
		return -ENOENT;
	}
	return vscsi_quiesced(s, vscsi_do_del, u);
}

static void vscsi_stats_add(struct blk_stats *sum, const struct blk_stats *s)
{
	for (int op = 0; op < BLK_OP_NR; op++) {
		sum->ops[op] += s->ops[op];
		sum->bytes[op] += s->bytes[op];
		sum->total_ns[op] += s->total_ns[op];
		sum->failed[op] += s->failed[op];
	}
}

struct vscsi_medium {
	struct vscsi_dev *u;
	struct blk *blk;
	bool force;
};

static int vscsi_do_medium(struct virtio_scsi *s, void *arg)
{
	struct vscsi_medium *c = arg;
	struct vscsi_dev *u = c->u;
	struct blk *old = NULL;
	int ret;

	ret = scsi_lun_change_medium(u->sl, c->blk, c->force, &old);
	if (ret < 0)
		return ret;
	/*
	 * The old disc is closed, its image lock with it, as QEMU closes a
	 * removed medium: another process may open the ISO now.  No thread
	 * serves (vscsi_quiesced), their queues on it are gone, and whoever
	 * reads a drive's blk (query-block, migration) runs on this thread.
	 * The unit keeps its drive, empty now.
	 */
	if (old) {
		struct blk_stats st;

		blk_get_stats(old, &st);
		vscsi_stats_add(&u->stats_past, &st);
		if (blk_close(old) < 0)
			log_error("virtio-scsi: %s: the removed disc did not flush", u->id ? u->id : "");
		if (old == u->own_blk)
			u->own_blk = NULL;
		else if (u->drive && old == u->drive->blk)
			u->drive->blk = NULL;
	}
	if (c->blk)
		u->own_blk = c->blk;
	pthread_mutex_lock(&s->lock);
	if (u->an_subscribed & VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE)
		vscsi_event_locked(s, VIRTIO_SCSI_T_ASYNC_NOTIFY, u->target, u->lun,
				   VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static struct vscsi_dev *vscsi_find_cd(struct machine *m, const char *id, struct virtio_scsi **s,
				       char *err, size_t errlen)
{
	struct vscsi_dev *u = vscsi_find_unit(m, id, s);

	if (!u) {
		snprintf(err, errlen, "no SCSI device with id '%s'", id);
		return NULL;
	}
	if (scsi_lun_type(u->sl) != SCSI_LUN_CDROM) {
		snprintf(err, errlen, "device '%s' (%s) has no removable medium", id, u->type);
		return NULL;
	}
	return u;
}

int virtio_scsi_eject(struct machine *m, const char *id, bool force, char *err, size_t errlen)
{
	struct vscsi_medium c = { .force = force };
	struct virtio_scsi *s;
	int ret;

	c.u = vscsi_find_cd(m, id, &s, err, errlen);
	if (!c.u)
		return -ENODEV;
	ret = vscsi_quiesced(s, vscsi_do_medium, &c);
	if (ret == -EBUSY)
		snprintf(err, errlen, "device '%s' is locked and force was not specified; "
			 "the guest was asked to eject it", id);
	return ret;
}

int virtio_scsi_change_medium(struct machine *m, const char *id, const struct blk_config *cfg,
			      char *err, size_t errlen)
{
	struct vscsi_medium c = { .force = false };
	struct blk_config disc = *cfg;
	struct virtio_scsi *s;
	int ret;

	c.u = vscsi_find_cd(m, id, &s, err, errlen);
	if (!c.u)
		return -ENODEV;
	/* The drive's I/O limits hold for every disc put in (not its group). */
	if (c.u->drive)
		disc.throttle = c.u->drive->cfg.throttle;
	c.blk = blk_open(&disc, err, errlen);
	if (!c.blk)
		return -EIO;
	ret = vscsi_quiesced(s, vscsi_do_medium, &c);
	if (ret < 0) {
		blk_close(c.blk);
		snprintf(err, errlen, "device '%s' is locked; eject it first", id);
	}
	return ret;
}

/* A parameter change event's reason: CAPACITY DATA HAS CHANGED, ASC | ASCQ << 8. */
#define VSCSI_CAPACITY_CHANGED	(0x2a | 0x09 << 8)

struct vscsi_change {
	struct vscsi_dev *u;
	int (*fn)(struct drive *d, void *arg);
	void *arg;
};

/*
 * With the queue threads stopped: change the image (block_resize, a
 * snapshot); a new size makes the LUN report the new READ CAPACITY and
 * CAPACITY DATA HAS CHANGED, and a driver that negotiated
 * VIRTIO_SCSI_F_CHANGE gets a parameter change event with that sense
 * (reason: ASC | ASCQ << 8), on which Linux rescans the unit.
 */
static int vscsi_do_change(struct virtio_scsi *s, void *arg)
{
	struct vscsi_change *c = arg;
	struct vscsi_dev *u = c->u;
	uint64_t old = blk_size(u->drive->blk);
	int ret = c->fn(u->drive, c->arg);

	if (ret < 0 || blk_size(u->drive->blk) == old)
		return ret;
	scsi_lun_capacity_changed(u->sl);
	pthread_mutex_lock(&s->lock);
	if (s->running && virtio_has_feature(&s->vd, VIRTIO_SCSI_F_CHANGE))
		vscsi_event_locked(s, VIRTIO_SCSI_T_PARAM_CHANGE, u->target, u->lun,
				   VSCSI_CAPACITY_CHANGED);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int vscsi_drive_quiesced(struct drive *d, int (*fn)(struct drive *d, void *arg),
				void *arg)
{
	struct vscsi_change c = { d->quiesced_opaque, fn, arg };

	return vscsi_quiesced(c.u->s, vscsi_do_change, &c);
}

/* ---- what query-block shows ---- */

/* Under the controller's vp.lock (no medium change, no unplug) and lock. */
static void vscsi_medium_info(struct vscsi_dev *u, struct virtio_scsi_medium_info *mi)
{
	struct scsi_medium_state st;
	struct blk_stats now;
	struct blk_info bi;

	mi->qdev = g_strdup(u->id);
	if (u->drive)
		mi->drive = g_strdup(u->drive->id);
	mi->stats = u->stats_past;
	scsi_lun_get_medium(u->sl, &st);
	mi->locked = st.locked;
	mi->tray_open = st.tray_open;
	mi->inserted = st.blk != NULL;
	if (!st.blk)
		return;
	blk_get_info(st.blk, &bi);
	mi->file = g_strdup(bi.file);
	mi->format = g_strdup(bi.format);
	mi->readonly = bi.readonly;
	mi->size = bi.size;
	blk_get_stats(st.blk, &now);
	vscsi_stats_add(&mi->stats, &now);
}

struct virtio_scsi_medium_info *virtio_scsi_media(struct machine *m, size_t *n)
{
	GArray *a = g_array_new(FALSE, TRUE, sizeof(struct virtio_scsi_medium_info));

	for (struct device *d = m->devices; d; d = d->next) {
		struct virtio_scsi *s;

		if (d->type != vscsi_type)
			continue;
		s = container_of(d, struct virtio_scsi, dev);
		/*
		 * Medium changes and unplugs run under vp.lock (vscsi_quiesced):
		 * holding it keeps each disc open while blk_get_info reads it.
		 * The guest's tray and lock commands take the LUN's lock.
		 */
		pthread_mutex_lock(&s->vp.lock);
		pthread_mutex_lock(&s->lock);
		for (struct vscsi_dev *u = s->devs; u; u = u->next) {
			struct virtio_scsi_medium_info mi = { 0 };

			if (scsi_lun_type(u->sl) != SCSI_LUN_CDROM)
				continue;
			vscsi_medium_info(u, &mi);
			g_array_append_val(a, mi);
		}
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_unlock(&s->vp.lock);
	}
	*n = a->len;
	return (struct virtio_scsi_medium_info *)g_array_free(a, FALSE);
}

void virtio_scsi_media_free(struct virtio_scsi_medium_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		g_free(v[i].qdev);
		g_free(v[i].drive);
		g_free(v[i].file);
		g_free(v[i].format);
	}
	g_free(v);
}
