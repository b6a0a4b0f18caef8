/*
 * Commands on a drive's image while the VM runs: block_resize (QMP, and
 * HMP through human-monitor-command) grows it and tells the guest, as
 * cloud hosts do with virsh blockresize (vireo never shrinks, see
 * docs/qmp.md); blockdev-snapshot-sync puts a new qcow2 overlay on top;
 * block_set_io_throttle sets its I/O limits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "machine.h"
#include "migration.h"
#include "monitor/qmp_int.h"

/*
 * The drive named by device or node-name (exactly one), and not while a
 * migration carries the devices: the destination would not learn of the
 * change, and may own the image already.  cmd names the command.
 */
static struct drive *qmp_changed_drive(struct machine *m, const char *cmd, const char *device,
				       const char *node, char *err, size_t errlen)
{
	struct drive *d = NULL;
	char why[200];

	if (device && node) {
		snprintf(err, errlen, "Only one of device and node-name may be given");
		return NULL;
	}
	/* A drive's only node is named by its id (query-blockstats' node-name). */
	if (device || node)
		d = drive_find(m, device ? device : node);
	if (!d) {
		snprintf(err, errlen, "Cannot find device='%s' nor node-name='%s'",
			 device ? device : "", node ? node : "");
		return NULL;
	}
	if (migration_locks_devices(m, why, sizeof(why))) {
		snprintf(err, errlen, "%s not allowed while migrating: %s", cmd, why);
		return NULL;
	}
	return d;
}

static const char *opt_string(JsonObject *args, const char *name)
{
	return json_object_has_member(args, name) ? json_object_get_string_member(args, name) :
						    NULL;
}

int qmp_block_resize_drive(struct machine *m, const char *device, const char *node,
			   int64_t size, char *err, size_t errlen)
{
	struct drive *d;

	if (size < 0) {
		snprintf(err, errlen, "Parameter 'size' expects a >0 size");
		return -EINVAL;
	}
	d = qmp_changed_drive(m, "block_resize", device, node, err, errlen);
	if (!d)
		return -ENODEV;
	return drive_resize(d, size, err, errlen);
}

JsonNode *qmp_block_resize(struct machine *m, struct qmp_client *c, JsonObject *args,
			   struct qmp_error *err)
{
	char msg[512];

	if (qmp_block_resize_drive(m, opt_string(args, "device"), opt_string(args, "node-name"),
				   json_object_get_int_member(args, "size"), msg, sizeof(msg)) < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

/*
 * blockdev-snapshot-sync: the guest's writes go to a new qcow2 image from
 * now on, over the image they went to, which is then only read (a backup
 * can copy it while the VM runs).  vireo creates the file (mode
 * absolute-paths, QEMU's default), never over an existing one.
 */
JsonNode *qmp_blockdev_snapshot_sync(struct machine *m, struct qmp_client *c, JsonObject *args,
				     struct qmp_error *err)
{
	const char *file = json_object_get_string_member(args, "snapshot-file");
	const char *format = opt_string(args, "format"), *mode = opt_string(args, "mode");
	struct drive *d;
	char msg[512];

	if (format && strcmp(format, "qcow2")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "format: only qcow2 overlays are supported, "
			      "not '%s'", format);
		return NULL;
	}
	if (mode && strcmp(mode, "absolute-paths")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "mode: only absolute-paths (vireo creates "
			      "the image) is supported, not '%s'", mode);
		return NULL;
	}
	if (json_object_has_member(args, "snapshot-node-name")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "snapshot-node-name: a drive's only node is "
			      "named by the drive's id");
		return NULL;
	}
	if (!*file) {
		qmp_set_error(err, QMP_ERR_GENERIC, "snapshot-file is empty");
		return NULL;
	}
	d = qmp_changed_drive(m, "blockdev-snapshot-sync", opt_string(args, "device"),
			      opt_string(args, "node-name"), msg, sizeof(msg));
	if (!d || drive_snapshot(d, file, msg, sizeof(msg)) < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

/*
 * block_set_io_throttle: new I/O limits for a drive (libvirt's <iotune>,
 * virsh blkdeviotune).  The six rates are required, as in QEMU; zero
 * everywhere lifts the limits.
 */
JsonNode *qmp_block_set_io_throttle(struct machine *m, struct qmp_client *c, JsonObject *args,
				    struct qmp_error *err)
{
	struct blk_throttle_limits l = { 0 };
	const char *device, *group;
	struct drive *d;
	char key[48], msg[512];

	if (!json_object_has_member(args, "device")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "Name the drive with 'device' (its -drive "
			      "id); 'id' (a device's id) is not supported");
		return NULL;
	}
	device = json_object_get_string_member(args, "device");
	for (int i = 0; i <= BLK_THR_NR; i++) {
		const char *name = i < BLK_THR_NR ? blk_throttle_name(i, false) : "iops_size";
		const char *field[] = { "", "_max", "_max_length" };

		for (int f = 0; f < (i < BLK_THR_NR ? 3 : 1); f++) {
			uint64_t *out = i == BLK_THR_NR ? &l.iops_size :
					f == 0 ? &l.avg[i] : f == 1 ? &l.max[i] : &l.max_len[i];
			int64_t v;

			snprintf(key, sizeof(key), "%s%s", name, field[f]);
			if (!json_object_has_member(args, key))
				continue;
			v = json_object_get_int_member(args, key);
			if (v < 0) {
				qmp_set_error(err, QMP_ERR_GENERIC, "%s must be between 0 and %llu",
					      key, BLK_THR_VALUE_MAX);
				return NULL;
			}
			*out = v;
		}
	}
	d = drive_find(m, device);
	if (!d) {
		qmp_set_error(err, QMP_ERR_DEVICE_NOT_FOUND, "Device '%s' not found", device);
		return NULL;
	}
	if (!d->blk) {
		qmp_set_error(err, QMP_ERR_GENERIC, "Device '%s' has no medium", device);
		return NULL;
	}
	/* The limits are the group's; a drive stays in the group -drive gave it. */
	group = opt_string(args, "group");
	if (group && g_strcmp0(group, blk_throttle_group(d->blk))) {
		qmp_set_error(err, QMP_ERR_GENERIC, "group: drive '%s' is in %s%s%s; moving a "
			      "drive between throttle groups is not supported", device,
			      blk_throttle_group(d->blk) ? "throttle group '" : "no throttle group",
			      blk_throttle_group(d->blk) ? blk_throttle_group(d->blk) : "",
			      blk_throttle_group(d->blk) ? "'" : "");
		return NULL;
	}
	if (blk_set_throttle(d->blk, &l, msg, sizeof(msg)) < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	/* Every drive of the group has the new limits. */
	for (struct drive *o = m->drives; o; o = o->next)
		if (o->blk && blk_throttle_group(d->blk) &&
		    !g_strcmp0(blk_throttle_group(o->blk), blk_throttle_group(d->blk)))
			o->cfg.throttle = l;
	d->cfg.throttle = l;
	return qmp_new_object(NULL);
}

/* HMP's size argument: bytes, or a number with a k/M/G/T suffix (powers of 1024). */
int hmp_parse_size(const char *s, int64_t *out)
{
	char *end;
	double v;
	int shift = 0;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case 'b': case 'B': end++; break;
	}
	if (*end || v * (double)(1ull << shift) >= 9.2e18)
		return -EINVAL;
	*out = (int64_t)(v * (double)(1ull << shift));
	return 0;
}
