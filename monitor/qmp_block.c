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
 * One blockdev-snapshot-sync's arguments (the command's, or a transaction
 * action's data, whose members the dispatcher has not checked): the
 * drive, and the file in *file.  vireo creates the file (mode
 * absolute-paths, QEMU's default), never over an existing one.
 */
static struct drive *snapshot_args(struct machine *m, JsonObject *a, const char **file,
				   char *err, size_t errlen)
{
	static const char *const names[] = { "device", "node-name", "snapshot-file",
					      "snapshot-node-name", "format", "mode" };
	g_autoptr(GList) members = json_object_get_members(a);
	const char *format, *mode;

	for (GList *l = members; l; l = l->next) {
		JsonNode *v = json_object_get_member(a, l->data);
		size_t k = 0;

		while (k < G_N_ELEMENTS(names) && strcmp(names[k], l->data))
			k++;
		if (k == G_N_ELEMENTS(names)) {
			snprintf(err, errlen, "Parameter '%s' is unexpected", (char *)l->data);
			return NULL;
		}
		if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING) {
			snprintf(err, errlen, "Invalid parameter type for '%s', expected: string",
				 (char *)l->data);
			return NULL;
		}
	}
	*file = opt_string(a, "snapshot-file");
	format = opt_string(a, "format");
	mode = opt_string(a, "mode");
	if (!*file || !**file) {
		snprintf(err, errlen, "Parameter 'snapshot-file' is missing");
		return NULL;
	}
	if (format && strcmp(format, "qcow2")) {
		snprintf(err, errlen, "format: only qcow2 overlays are supported, not '%s'", format);
		return NULL;
	}
	if (mode && strcmp(mode, "absolute-paths")) {
		snprintf(err, errlen, "mode: only absolute-paths (vireo creates the image) is "
			 "supported, not '%s'", mode);
		return NULL;
	}
	if (json_object_has_member(a, "snapshot-node-name")) {
		snprintf(err, errlen, "snapshot-node-name: a drive's only node is named by the "
			 "drive's id");
		return NULL;
	}
	return qmp_changed_drive(m, "blockdev-snapshot-sync", opt_string(a, "device"),
				 opt_string(a, "node-name"), err, errlen);
}

/*
 * blockdev-snapshot-sync: the guest's writes go to a new qcow2 image from
 * now on, over the image they went to, which is then only read (a backup
 * can copy it while the VM runs).
 */
JsonNode *qmp_blockdev_snapshot_sync(struct machine *m, struct qmp_client *c, JsonObject *args,
				     struct qmp_error *err)
{
	const char *file;
	struct drive *d;
	char msg[512];

	d = snapshot_args(m, args, &file, msg, sizeof(msg));
	if (!d || drive_snapshot(&d, &file, 1, msg, sizeof(msg)) < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

/* At most this many actions in one transaction. */
#define QMP_TRANSACTION_MAX 256

/*
 * transaction: blockdev-snapshot-sync actions over several drives, all or
 * none, the devices quiesced together (libvirt's disk-only snapshot of a
 * VM).  Other action types are refused.
 */
JsonNode *qmp_transaction(struct machine *m, struct qmp_client *c, JsonObject *args,
			  struct qmp_error *err)
{
	JsonNode *an = json_object_get_member(args, "actions");
	JsonArray *actions = JSON_NODE_HOLDS_ARRAY(an) ? json_node_get_array(an) : NULL;
	g_autofree struct drive **d = NULL;
	g_autofree const char **file = NULL;
	unsigned n;
	char msg[512];

	if (!actions) {
		qmp_set_error(err, QMP_ERR_GENERIC, "Invalid parameter type for 'actions', "
			      "expected: array");
		return NULL;
	}
	if (json_object_has_member(args, "properties")) {
		JsonNode *p = json_object_get_member(args, "properties");
		JsonObject *po = JSON_NODE_HOLDS_OBJECT(p) ? json_node_get_object(p) : NULL;
		const char *mode = po ? opt_string(po, "completion-mode") : NULL;

		if (!po || json_object_get_size(po) > (mode ? 1u : 0u) ||
		    (mode && strcmp(mode, "individual"))) {
			qmp_set_error(err, QMP_ERR_GENERIC, "properties: only completion-mode "
				      "'individual' is supported");
			return NULL;
		}
	}
	n = json_array_get_length(actions);
	if (n > QMP_TRANSACTION_MAX) {
		qmp_set_error(err, QMP_ERR_GENERIC, "at most %d actions in a transaction",
			      QMP_TRANSACTION_MAX);
		return NULL;
	}
	d = g_new0(struct drive *, n + 1);
	file = g_new0(const char *, n + 1);
	for (unsigned i = 0; i < n; i++) {
		JsonNode *a = json_array_get_element(actions, i);
		JsonObject *ao = JSON_NODE_HOLDS_OBJECT(a) ? json_node_get_object(a) : NULL;
		const char *type = ao ? opt_string(ao, "type") : NULL;
		JsonNode *data = ao ? json_object_get_member(ao, "data") : NULL;

		if (!type || !data || !JSON_NODE_HOLDS_OBJECT(data)) {
			qmp_set_error(err, QMP_ERR_GENERIC, "action %u: needs 'type' and an "
				      "object 'data'", i);
			return NULL;
		}
		if (strcmp(type, "blockdev-snapshot-sync")) {
			qmp_set_error(err, QMP_ERR_GENERIC, "action %u: type '%s' is not "
				      "supported in a transaction (only blockdev-snapshot-sync)",
				      i, type);
			return NULL;
		}
		d[i] = snapshot_args(m, json_node_get_object(data), &file[i], msg, sizeof(msg));
		if (!d[i]) {
			qmp_set_error(err, QMP_ERR_GENERIC, "action %u: %s", i, msg);
			return NULL;
		}
	}
	if (n && drive_snapshot(d, file, n, msg, sizeof(msg)) < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

int qmp_block_throttle_drive(struct machine *m, const char *device,
			     const struct blk_throttle_limits *l, const char *group, char *err,
			     size_t errlen)
{
	struct drive *d = drive_find(m, device);
	const char *have;

	if (!d) {
		snprintf(err, errlen, "Device '%s' not found", device);
		return -ENODEV;
	}
	if (!d->blk) {
		snprintf(err, errlen, "Device '%s' has no medium", device);
		return -ENOMEDIUM;
	}
	/* The limits are the group's; a drive stays in the group -drive gave it. */
	have = blk_throttle_group(d->blk);
	if (group && g_strcmp0(group, have)) {
		snprintf(err, errlen, "group: drive '%s' is in %s%s%s; moving a drive between "
			 "throttle groups is not supported", device,
			 have ? "throttle group '" : "no throttle group", have ? have : "",
			 have ? "'" : "");
		return -EINVAL;
	}
	if (blk_set_throttle(d->blk, l, err, errlen) < 0)
		return -EINVAL;
	/* Every drive of the group has the new limits. */
	for (struct drive *o = m->drives; o; o = o->next)
		if (o->blk && have && !g_strcmp0(blk_throttle_group(o->blk), have))
			o->cfg.throttle = *l;
	d->cfg.throttle = *l;
	return 0;
}

int qmp_block_snapshot_drive(struct machine *m, const char *device, const char *file,
			     char *err, size_t errlen)
{
	struct drive *d = qmp_changed_drive(m, "snapshot_blkdev", device, NULL, err, errlen);

	if (!d)
		return -ENODEV;
	return drive_snapshot(&d, &file, 1, err, errlen);
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
	const char *device;
	char key[48], msg[512];
	int ret;

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
	ret = qmp_block_throttle_drive(m, device, &l, opt_string(args, "group"), msg, sizeof(msg));
	if (ret < 0) {
		qmp_set_error(err, ret == -ENODEV ? QMP_ERR_DEVICE_NOT_FOUND : QMP_ERR_GENERIC, "%s",
			      msg);
		return NULL;
	}
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
