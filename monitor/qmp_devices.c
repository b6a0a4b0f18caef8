/*
 * QMP commands on devices of a running VM: device_add / device_del for the
 * types that can be hot-plugged (SCSI units on virtio-scsi), and eject /
 * blockdev-change-medium for removable media.
 */
#include <stdio.h>
#include <string.h>

#include "block.h"
#include "machine.h"
#include "monitor/qmp_int.h"
#include "scsi.h"

JsonNode *qmp_device_add(struct machine *m, struct qmp_client *c, JsonObject *args,
				struct qmp_error *err)
{
	const char *driver = json_object_get_string_member(args, "driver");
	const struct device_type *t = device_type_find(driver);
	char msg[512] = "";
	char *opts;
	int ret;

	if (!t) {
		qmp_set_error(err, QMP_ERR_GENERIC, "'%s' is not a valid device model name", driver);
		return NULL;
	}
	if (!t->hotpluggable) {
		qmp_set_error(err, QMP_ERR_GENERIC, "Device '%s' cannot be hot-plugged", driver);
		return NULL;
	}
	opts = opts_from_json_object(args, "driver", msg, sizeof(msg));
	if (!opts) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	ret = machine_add_device(m, opts, msg, sizeof(msg));
	g_free(opts);
	if (ret) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

JsonNode *qmp_device_del(struct machine *m, struct qmp_client *c, JsonObject *args,
				struct qmp_error *err)
{
	const char *id = json_object_get_string_member(args, "id");
	char msg[512] = "";

	if (virtio_scsi_device_del(m, id, msg, sizeof(msg))) {
		qmp_set_error(err, QMP_ERR_DEVICE_NOT_FOUND, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

/* eject and blockdev-change-medium name the unit by "id" (or, older, "device"). */
static const char *unit_id(JsonObject *args, struct qmp_error *err)
{
	if (json_object_has_member(args, "id"))
		return json_object_get_string_member(args, "id");
	if (json_object_has_member(args, "device"))
		return json_object_get_string_member(args, "device");
	qmp_set_error(err, QMP_ERR_GENERIC, "Parameter 'id' is missing");
	return NULL;
}

JsonNode *qmp_eject(struct machine *m, struct qmp_client *c, JsonObject *args,
			   struct qmp_error *err)
{
	const char *id = unit_id(args, err);
	bool force = json_object_has_member(args, "force") &&
		     json_object_get_boolean_member(args, "force");
	char msg[512] = "";

	if (!id)
		return NULL;
	if (virtio_scsi_eject(m, id, force, msg, sizeof(msg))) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

JsonNode *qmp_change_medium(struct machine *m, struct qmp_client *c, JsonObject *args,
				   struct qmp_error *err)
{
	const char *id = unit_id(args, err);
	const char *mode = json_object_has_member(args, "read-only-mode") ?
			   json_object_get_string_member(args, "read-only-mode") : "retain";
	struct blk_config cfg = {
		.file = json_object_get_string_member(args, "filename"),
		.format = json_object_has_member(args, "format") ?
			  json_object_get_string_member(args, "format") : NULL,
		.aio = BLK_AIO_IO_URING,
		.readonly = true,
	};
	char msg[512] = "";

	if (!id)
		return NULL;
	/*
	 * Only a scsi-cd takes a medium, and the guest cannot write to a CD.
	 * Opened for writing, the disc would hold the image's write lock for
	 * nothing: qemu-img and other VMs could not use it, and a migration
	 * destination could not take it over at the switch-over.
	 */
	if (!strcmp(mode, "read-write")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "read-only-mode read-write: device '%s' is "
			      "a CD-ROM, its medium can only be opened read-only", id ? id : "");
		return NULL;
	} else if (strcmp(mode, "read-only") && strcmp(mode, "retain")) {
		qmp_set_error(err, QMP_ERR_GENERIC,
			      "Parameter 'read-only-mode' does not accept value '%s'", mode);
		return NULL;
	}
	if (cfg.format && strcmp(cfg.format, "raw") && strcmp(cfg.format, "qcow2")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "Unknown driver '%s'", cfg.format);
		return NULL;
	}
	/* force: open a locked tray first, as eject with force would. */
	if (json_object_has_member(args, "force") && json_object_get_boolean_member(args, "force") &&
	    virtio_scsi_eject(m, id, true, msg, sizeof(msg))) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	if (virtio_scsi_change_medium(m, id, &cfg, msg, sizeof(msg))) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}
