/*
 * The QMP commands vireo serves, their argument declarations (checked by
 * the dispatcher before a handler runs) and the introspection schema
 * generated from those declarations.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "accel/accel.h"
#include "block.h"
#include "board.h"
#include "machine.h"
#include "migration.h"
#include "monitor.h"
#include "monitor/qmp_int.h"
#include "scsi.h"
#include "vcpu.h"

const char *qmp_runstate_name(enum machine_runstate s)
{
	switch (s) {
	case RUNSTATE_PRELAUNCH: return "prelaunch";
	case RUNSTATE_RUNNING: return "running";
	case RUNSTATE_PAUSED: return "paused";
	case RUNSTATE_SHUTDOWN: return "shutdown";
	}
	return "internal-error";
}

static JsonNode *empty_return(void)
{
	return qmp_new_object(NULL);
}

static JsonNode *cmd_qmp_capabilities(struct machine *m, struct qmp_client *c, JsonObject *args,
				      struct qmp_error *err)
{
	return empty_return();
}

static JsonNode *cmd_query_version(struct machine *m, struct qmp_client *c, JsonObject *args,
				   struct qmp_error *err)
{
	JsonObject *o, *q = json_object_new();
	JsonNode *n = qmp_new_object(&o);

	json_object_set_int_member(q, "major", 7);
	json_object_set_int_member(q, "minor", 2);
	json_object_set_int_member(q, "micro", 0);
	json_object_set_object_member(o, "qemu", q);
	json_object_set_string_member(o, "package", "vireo");
	return n;
}

/*
 * query-status's status, with QEMU's finer names for a VM that is not
 * running: "inmigrate" while an incoming migration is awaited or loads,
 * "io-error" when werror/rerror=stop paused it, "finish-migrate" while a
 * migration holds it stopped for the switch-over and "postmigrate" once it
 * handed the guest over.  libvirt tells paused reasons apart by these.
 */
const char *qmp_status_name(struct machine *m)
{
	struct mig_info mi;

	if (m->runstate != RUNSTATE_PRELAUNCH && m->runstate != RUNSTATE_PAUSED)
		return qmp_runstate_name(m->runstate);
	if (m->incoming)		/* cleared once the stream is in */
		return "inmigrate";
	migration_get_info(m, &mi);
	if (m->pause_reason && !strcmp(m->pause_reason, "io-error"))
		return "io-error";
	if (m->pause_reason && !strcmp(m->pause_reason, "finish-migrate")) {
		if (mi.status == MIG_COMPLETED)
			return "postmigrate";
		if (mi.status != MIG_FAILED && mi.status != MIG_CANCELLED)
			return "finish-migrate";
	}
	if (m->runstate == RUNSTATE_PRELAUNCH)
		/* An incoming migration loaded it and -S holds it: QEMU says paused. */
		return mi.status == MIG_COMPLETED ? "paused" : "prelaunch";
	return "paused";
}

static JsonNode *cmd_query_status(struct machine *m, struct qmp_client *c, JsonObject *args,
				  struct qmp_error *err)
{
	JsonObject *o;
	JsonNode *n = qmp_new_object(&o);

	json_object_set_boolean_member(o, "running", m->runstate == RUNSTATE_RUNNING);
	json_object_set_boolean_member(o, "singlestep", FALSE);
	json_object_set_string_member(o, "status", qmp_status_name(m));
	return n;
}

static JsonNode *cmd_query_name(struct machine *m, struct qmp_client *c, JsonObject *args,
				struct qmp_error *err)
{
	JsonObject *o;
	JsonNode *n = qmp_new_object(&o);

	if (m->cfg.name)
		json_object_set_string_member(o, "name", m->cfg.name);
	return n;
}

static void chardev_entry(void *opaque, const char *label, const char *filename)
{
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, "label", label);
	json_object_set_string_member(o, "filename", filename);
	json_object_set_boolean_member(o, "frontend-open", true);
	json_array_add_object_element(opaque, o);
}

/* The serial ports' backends: where -serial pty put the console, for one. */
static JsonNode *cmd_query_chardev(struct machine *m, struct qmp_client *c, JsonObject *args,
				   struct qmp_error *err)
{
	JsonArray *a = json_array_new();
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);

	uart_for_each_chardev(m, chardev_entry, a);
	json_node_take_array(n, a);
	return n;
}

static JsonNode *cmd_query_uuid(struct machine *m, struct qmp_client *c, JsonObject *args,
				struct qmp_error *err)
{
	JsonObject *o;
	JsonNode *n = qmp_new_object(&o);

	json_object_set_string_member(o, "UUID", m->cfg.uuid ? m->cfg.uuid :
				      "00000000-0000-0000-0000-000000000000");
	return n;
}

static JsonNode *cmd_query_kvm(struct machine *m, struct qmp_client *c, JsonObject *args,
			       struct qmp_error *err)
{
	JsonObject *o;
	JsonNode *n = qmp_new_object(&o);
	char why[256];

	json_object_set_boolean_member(o, "enabled", m->accel == &kvm_accel_ops);
	json_object_set_boolean_member(o, "present", kvm_accel_ops.probe(why, sizeof(why)) == 0);
	return n;
}

/* The one board, as QEMU describes its machine types. */
static JsonNode *cmd_query_machines(struct machine *m, struct qmp_client *c, JsonObject *args,
				    struct qmp_error *err)
{
	JsonArray *a = json_array_new();
	JsonObject *o = json_object_new();
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);

	json_object_set_string_member(o, "name", "q35");
	json_object_set_boolean_member(o, "is-default", true);
	json_object_set_int_member(o, "cpu-max", MACHINE_MAX_VCPUS);
	json_object_set_boolean_member(o, "hotpluggable-cpus", false);
	json_object_set_boolean_member(o, "numa-mem-supported", false);
	json_object_set_boolean_member(o, "deprecated", false);
	json_object_set_string_member(o, "default-cpu-type", "max-x86_64-cpu");
	json_object_set_boolean_member(o, "acpi", true);
	json_array_add_object_element(a, o);
	json_node_take_array(n, a);
	return n;
}

/* -cpu's models: "host" only where KVM runs the guest, as in QEMU. */
static JsonNode *cmd_query_cpu_definitions(struct machine *m, struct qmp_client *c,
					   JsonObject *args, struct qmp_error *err)
{
	static const char *const names[] = { "max", "host" };
	JsonArray *a = json_array_new();
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);

	for (unsigned i = 0; i < (m->accel == &kvm_accel_ops ? 2u : 1u); i++) {
		JsonObject *o = json_object_new();
		char *type = g_strdup_printf("%s-x86_64-cpu", names[i]);

		json_object_set_string_member(o, "name", names[i]);
		json_object_set_string_member(o, "typename", type);
		json_object_set_boolean_member(o, "static", false);
		json_object_set_boolean_member(o, "migration-safe", false);
		json_object_set_boolean_member(o, "deprecated", false);
		json_object_set_array_member(o, "unavailable-features", json_array_new());
		json_array_add_object_element(a, o);
		g_free(type);
	}
	json_node_take_array(n, a);
	return n;
}

static JsonNode *cmd_query_commands(struct machine *m, struct qmp_client *c, JsonObject *args,
				    struct qmp_error *err)
{
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);
	JsonArray *a = json_array_new();
	size_t nr;
	const struct qmp_command *cmds = qmp_commands(&nr);

	for (size_t i = 0; i < nr; i++) {
		JsonObject *o = json_object_new();

		json_object_set_string_member(o, "name", cmds[i].name);
		json_array_add_object_element(a, o);
	}
	json_node_take_array(n, a);
	return n;
}

static JsonNode *cmd_query_cpus_fast(struct machine *m, struct qmp_client *c, JsonObject *args,
				     struct qmp_error *err)
{
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);
	JsonArray *a = json_array_new();

	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		JsonObject *o = json_object_new(), *props = json_object_new();
		char path[64];

		snprintf(path, sizeof(path), "/machine/unattached/device[%u]", i);
		json_object_set_int_member(o, "cpu-index", i);
		json_object_set_string_member(o, "qom-path", path);
		json_object_set_int_member(o, "thread-id", m->vcpus[i]->tid);
		json_object_set_string_member(o, "target", "x86_64");
		json_object_set_int_member(props, "socket-id", 0);
		json_object_set_int_member(props, "core-id", i);
		json_object_set_int_member(props, "thread-id", 0);
		json_object_set_object_member(o, "props", props);
		json_array_add_object_element(a, o);
	}
	json_node_take_array(n, a);
	return n;
}

static JsonNode *cmd_stop(struct machine *m, struct qmp_client *c, JsonObject *args,
			  struct qmp_error *err)
{
	machine_pause(m, "qmp");
	return empty_return();
}

static JsonNode *cmd_cont(struct machine *m, struct qmp_client *c, JsonObject *args,
			  struct qmp_error *err)
{
	char msg[320];

	if (m->runstate == RUNSTATE_SHUTDOWN) {
		qmp_set_error(err, QMP_ERR_GENERIC,
			      "Resetting the Virtual Machine is required");
		return NULL;
	}
	if (migration_prepare_cont(m, msg, sizeof(msg)) < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	machine_resume(m);
	return empty_return();
}

static JsonNode *cmd_system_reset(struct machine *m, struct qmp_client *c, JsonObject *args,
				  struct qmp_error *err)
{
	if (machine_system_reset(m, false)) {
		qmp_set_error(err, QMP_ERR_GENERIC, "system reset failed (see the VMM's log)");
		return NULL;
	}
	return empty_return();
}

static JsonNode *cmd_system_powerdown(struct machine *m, struct qmp_client *c, JsonObject *args,
				      struct qmp_error *err)
{
	machine_powerdown(m);
	return empty_return();
}

static JsonNode *cmd_quit(struct machine *m, struct qmp_client *c, JsonObject *args,
			  struct qmp_error *err)
{
	return empty_return();
}

static void quit_after_reply(struct machine *m)
{
	machine_quit(m, 0, "host-qmp-quit");
}

static const char *io_status_name(const struct drive *d)
{
	switch (__atomic_load_n(&d->io_status, __ATOMIC_ACQUIRE)) {
	case BLK_IOSTATUS_FAILED: return "failed";
	case BLK_IOSTATUS_NOSPACE: return "nospace";
	}
	return "ok";
}

/* The I/O limits as QEMU lists them: the rates always, bursts while limited. */
static void block_info_throttle(JsonObject *img, struct blk *b)
{
	struct blk_throttle_limits l;
	char key[48];

	blk_get_throttle(b, &l);
	for (int i = 0; i < BLK_THR_NR; i++) {
		const char *name = blk_throttle_name(i, false);

		json_object_set_int_member(img, name, l.avg[i]);
		if (!blk_throttle_enabled(&l))
			continue;
		snprintf(key, sizeof(key), "%s_max", name);
		json_object_set_int_member(img, key, l.max[i]);
		snprintf(key, sizeof(key), "%s_max_length", name);
		json_object_set_int_member(img, key, l.max_len[i] ? l.max_len[i] : 1);
	}
	if (blk_throttle_enabled(&l))
		json_object_set_int_member(img, "iops_size", l.iops_size);
	if (blk_throttle_group(b))
		json_object_set_string_member(img, "group", blk_throttle_group(b));
}

/*
 * A drive as its image is: the format the open found (probed when -drive
 * had no format=).  A drive whose image a CD unit ejected and that the
 * unit then let go has none: no "inserted", as QEMU shows an empty drive.
 */
static JsonObject *block_info(struct drive *d)
{
	JsonObject *o = json_object_new(), *img;
	struct blk_info bi;

	json_object_set_string_member(o, "device", d->id);
	json_object_set_boolean_member(o, "locked", FALSE);
	json_object_set_boolean_member(o, "removable", FALSE);
	if (drive_can_stop(d))
		json_object_set_string_member(o, "io-status", io_status_name(d));
	if (!d->blk)
		return o;
	blk_get_info(d->blk, &bi);
	img = json_object_new();
	json_object_set_string_member(img, "file", d->cfg.file);
	json_object_set_string_member(img, "drv", bi.format);
	json_object_set_boolean_member(img, "ro", bi.readonly);
	json_object_set_int_member(img, "image-size", bi.size);
	/* The chain below, as QEMU lists it: what a snapshot put under the top. */
	if (bi.backing_file)
		json_object_set_string_member(img, "backing_file", bi.backing_file);
	json_object_set_int_member(img, "backing_file_depth", bi.backing_depth);
	block_info_throttle(img, d->blk);
	json_object_set_object_member(o, "inserted", img);
	return o;
}

const struct virtio_scsi_medium_info *qmp_medium_of(const struct virtio_scsi_medium_info *media,
						    size_t n, const struct drive *d)
{
	for (size_t i = 0; i < n; i++)
		if (media[i].drive && !strcmp(media[i].drive, d->id))
			return &media[i];
	return NULL;
}

/*
 * A CD unit as QEMU shows a removable device: named by its -drive (""
 * for a unit created without one) and its qdev id, the guest's lock, the
 * tray, and "inserted" only while a disc is in, describing that disc,
 * which a medium change may have put there in place of the drive's image.
 */
static JsonObject *block_info_removable(struct drive *d, const struct virtio_scsi_medium_info *mi)
{
	JsonObject *o = json_object_new(), *img;

	json_object_set_string_member(o, "device", d ? d->id : "");
	if (mi->qdev)
		json_object_set_string_member(o, "qdev", mi->qdev);
	json_object_set_boolean_member(o, "locked", mi->locked);
	json_object_set_boolean_member(o, "removable", TRUE);
	json_object_set_boolean_member(o, "tray_open", mi->tray_open);
	if (d && drive_can_stop(d))
		json_object_set_string_member(o, "io-status", io_status_name(d));
	if (!mi->inserted)
		return o;
	img = json_object_new();
	json_object_set_string_member(img, "file", mi->file);
	json_object_set_string_member(img, "drv", mi->format);
	json_object_set_boolean_member(img, "ro", mi->readonly);
	json_object_set_int_member(img, "image-size", mi->size);
	json_object_set_object_member(o, "inserted", img);
	return o;
}

/*
 * A JSON array with fn's entry for every drive, in -drive order, with a CD
 * unit's drive as the unit sees it (mi); then for the CD units without a
 * drive that a client can name (by id=), d NULL, as QEMU lists a
 * scsi-cd's anonymous backend.
 */
static JsonNode *per_block(struct machine *m,
			   JsonObject *(*fn)(struct drive *d,
					     const struct virtio_scsi_medium_info *mi))
{
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);
	JsonArray *a = json_array_new();
	size_t nr;
	struct virtio_scsi_medium_info *media = virtio_scsi_media(m, &nr);

	for (struct drive *d = m->drives; d; d = d->next)
		json_array_add_object_element(a, fn(d, qmp_medium_of(media, nr, d)));
	for (size_t i = 0; i < nr; i++)
		if (!media[i].drive && media[i].qdev)
			json_array_add_object_element(a, fn(NULL, &media[i]));
	virtio_scsi_media_free(media, nr);
	json_node_take_array(n, a);
	return n;
}

static JsonObject *block_entry(struct drive *d, const struct virtio_scsi_medium_info *mi)
{
	return mi ? block_info_removable(d, mi) : block_info(d);
}

static JsonNode *cmd_query_block(struct machine *m, struct qmp_client *c, JsonObject *args,
				 struct qmp_error *err)
{
	return per_block(m, block_entry);
}

/* QEMU's BlockDeviceStats names for each counter of struct blk_stats. */
static const struct {
	const char *bytes, *ops, *ns, *failed;
} stat_names[BLK_OP_NR] = {
	[BLK_OP_READ] = { "rd_bytes", "rd_operations", "rd_total_time_ns", "failed_rd_operations" },
	[BLK_OP_WRITE] = { "wr_bytes", "wr_operations", "wr_total_time_ns", "failed_wr_operations" },
	[BLK_OP_FLUSH] = { NULL, "flush_operations", "flush_total_time_ns",
			   "failed_flush_operations" },
	[BLK_OP_DISCARD] = { "unmap_bytes", "unmap_operations", "unmap_total_time_ns",
			     "failed_unmap_operations" },
};

/* One BlockStats entry: device (and qdev, if any) with the counters in st. */
static JsonObject *block_stats_entry(const char *device, const char *qdev,
				     const struct blk_stats *st)
{
	JsonObject *o = json_object_new(), *s = json_object_new();

	json_object_set_string_member(o, "device", device);
	if (qdev)
		json_object_set_string_member(o, "qdev", qdev);
	for (int op = 0; op < BLK_OP_NR; op++) {
		if (stat_names[op].bytes)
			json_object_set_int_member(s, stat_names[op].bytes, st->bytes[op]);
		json_object_set_int_member(s, stat_names[op].ops, st->ops[op]);
		json_object_set_int_member(s, stat_names[op].ns, st->total_ns[op]);
		json_object_set_int_member(s, stat_names[op].failed, st->failed[op]);
	}
	json_object_set_object_member(o, "stats", s);
	return o;
}

/*
 * Listed as query-block lists them.  A CD unit's counters are those of
 * every disc it had, as QEMU's belong to the unit's BlockBackend, which
 * outlives medium changes; other drives count their image's requests.
 */
static JsonObject *blockstats_entry(struct drive *d, const struct virtio_scsi_medium_info *mi)
{
	struct blk_stats st = { 0 };

	if (mi)
		return block_stats_entry(d ? d->id : "", mi->qdev, &mi->stats);
	if (d->blk)
		blk_get_stats(d->blk, &st);
	return block_stats_entry(d->id, NULL, &st);
}

static JsonNode *cmd_query_blockstats(struct machine *m, struct qmp_client *c, JsonObject *args,
				      struct qmp_error *err)
{
	return per_block(m, blockstats_entry);
}

static JsonNode *cmd_hmp(struct machine *m, struct qmp_client *c, JsonObject *args,
			 struct qmp_error *err)
{
	int cpu = json_object_has_member(args, "cpu-index") ?
		  (int)json_object_get_int_member(args, "cpu-index") : -1;
	char *out = hmp_run(m, json_object_get_string_member(args, "command-line"), cpu);
	JsonNode *n = json_node_new(JSON_NODE_VALUE);

	json_node_set_string(n, out);
	g_free(out);
	return n;
}

/*
 * getfd names the descriptor the client sent with this command
 * (SCM_RIGHTS on a unix socket), for a later "fd:NAME" migration URI.
 */
static JsonNode *cmd_getfd(struct machine *m, struct qmp_client *c, JsonObject *args,
			   struct qmp_error *err)
{
	const char *name = json_object_get_string_member(args, "fdname");
	int fd;

	/* A leading digit would read as an inherited descriptor number in fd:N. */
	if (!name[0] || g_ascii_isdigit(name[0]) || strlen(name) > 255) {
		qmp_set_error(err, QMP_ERR_GENERIC, "Parameter 'fdname' expects a name of "
			      "1 to 255 characters not starting with a digit");
		return NULL;
	}
	fd = qmp_client_take_passed_fd(c);
	if (fd < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "No file descriptor supplied via SCM_RIGHTS");
		return NULL;
	}
	qmp_fd_add(m, name, fd);
	return empty_return();
}

static JsonNode *cmd_closefd(struct machine *m, struct qmp_client *c, JsonObject *args,
			     struct qmp_error *err)
{
	const char *name = json_object_get_string_member(args, "fdname");
	int fd = qmp_fd_take(m, name);

	if (fd < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "File descriptor named '%s' not found", name);
		return NULL;
	}
	close(fd);
	return empty_return();
}

static JsonNode *cmd_query_qmp_schema(struct machine *m, struct qmp_client *c, JsonObject *args,
				      struct qmp_error *err);

static const struct qmp_command commands[] = {
	{ "qmp_capabilities", cmd_qmp_capabilities, { { "enable", QMP_ANY, true } } },
	{ "query-version", cmd_query_version },
	{ "query-status", cmd_query_status },
	{ "query-name", cmd_query_name },
	{ "query-uuid", cmd_query_uuid },
	{ "query-chardev", cmd_query_chardev },
	{ "query-kvm", cmd_query_kvm },
	{ "query-machines", cmd_query_machines },
	{ "query-cpu-definitions", cmd_query_cpu_definitions },
	{ "query-commands", cmd_query_commands },
	{ "query-qmp-schema", cmd_query_qmp_schema },
	{ "query-cpus-fast", cmd_query_cpus_fast },
	{ "stop", cmd_stop },
	{ "cont", cmd_cont },
	{ "system_reset", cmd_system_reset },
	{ "system_powerdown", cmd_system_powerdown },
	{ "quit", cmd_quit, .after = quit_after_reply },
	{ "query-block", cmd_query_block },
	{ "query-blockstats", cmd_query_blockstats,
	  { { "query-nodes", QMP_BOOL, true } } },
	{ "human-monitor-command", cmd_hmp,
	  { { "command-line", QMP_STR }, { "cpu-index", QMP_INT, true } } },
	{ "getfd", cmd_getfd, { { "fdname", QMP_STR } } },
	{ "closefd", cmd_closefd, { { "fdname", QMP_STR } } },
	{ "migrate", qmp_cmd_migrate,
	  { { "uri", QMP_STR }, { "blk", QMP_BOOL, true }, { "inc", QMP_BOOL, true },
	    { "detach", QMP_BOOL, true }, { "resume", QMP_BOOL, true } } },
	{ "migrate_cancel", qmp_cmd_migrate_cancel },
	{ "migrate-continue", qmp_cmd_migrate_continue, { { "state", QMP_STR } } },
	{ "migrate-incoming", qmp_cmd_migrate_incoming, { { "uri", QMP_STR } } },
	{ "query-migrate", qmp_cmd_query_migrate },
	{ "migrate-set-capabilities", qmp_cmd_migrate_set_capabilities,
	  { { "capabilities", QMP_ANY } } },
	{ "query-migrate-capabilities", qmp_cmd_query_migrate_capabilities },
	{ "migrate-set-parameters", qmp_cmd_migrate_set_parameters,
	  { { "downtime-limit", QMP_INT, true }, { "max-bandwidth", QMP_INT, true },
	    { "multifd-channels", QMP_INT, true }, { "direct-io", QMP_BOOL, true },
	    { "cpu-throttle-initial", QMP_INT, true },
	    { "cpu-throttle-increment", QMP_INT, true } } },
	{ "query-migrate-parameters", qmp_cmd_query_migrate_parameters },
	{ "device_add", qmp_device_add, { { "driver", QMP_STR }, { "id", QMP_STR, true } },
	  .free_form = true, .changes_devices = true },
	{ "device_del", qmp_device_del, { { "id", QMP_STR } }, .changes_devices = true },
	{ "eject", qmp_eject,
	  { { "id", QMP_STR, true }, { "device", QMP_STR, true }, { "force", QMP_BOOL, true } },
	  .changes_devices = true },
	{ "blockdev-change-medium", qmp_change_medium,
	  { { "id", QMP_STR, true }, { "device", QMP_STR, true }, { "filename", QMP_STR },
	    { "format", QMP_STR, true }, { "read-only-mode", QMP_STR, true },
	    { "force", QMP_BOOL, true } }, .changes_devices = true },
	{ "block_resize", qmp_block_resize,
	  { { "device", QMP_STR, true }, { "node-name", QMP_STR, true }, { "size", QMP_INT } } },
	{ "blockdev-snapshot-sync", qmp_blockdev_snapshot_sync,
	  { { "device", QMP_STR, true }, { "node-name", QMP_STR, true },
	    { "snapshot-file", QMP_STR }, { "snapshot-node-name", QMP_STR, true },
	    { "format", QMP_STR, true }, { "mode", QMP_STR, true } } },
	{ "transaction", qmp_transaction,
	  { { "actions", QMP_ANY }, { "properties", QMP_ANY, true } } },
	{ "block_set_io_throttle", qmp_block_set_io_throttle,
	  { { "device", QMP_STR, true }, { "id", QMP_STR, true },
	    { "bps", QMP_INT }, { "bps_rd", QMP_INT }, { "bps_wr", QMP_INT },
	    { "iops", QMP_INT }, { "iops_rd", QMP_INT }, { "iops_wr", QMP_INT },
	    { "bps_max", QMP_INT, true }, { "bps_rd_max", QMP_INT, true },
	    { "bps_wr_max", QMP_INT, true }, { "iops_max", QMP_INT, true },
	    { "iops_rd_max", QMP_INT, true }, { "iops_wr_max", QMP_INT, true },
	    { "bps_max_length", QMP_INT, true }, { "bps_rd_max_length", QMP_INT, true },
	    { "bps_wr_max_length", QMP_INT, true }, { "iops_max_length", QMP_INT, true },
	    { "iops_rd_max_length", QMP_INT, true }, { "iops_wr_max_length", QMP_INT, true },
	    { "iops_size", QMP_INT, true }, { "group", QMP_STR, true } } },
};

static const char *const events[] = {
	"STOP", "RESUME", "SHUTDOWN", "RESET", "POWERDOWN", "BLOCK_IO_ERROR", "MIGRATION",
	"DEVICE_TRAY_MOVED", NULL,
};

const struct qmp_command *qmp_commands(size_t *n)
{
	*n = sizeof(commands) / sizeof(commands[0]);
	return commands;
}

const char *const *qmp_event_names(void)
{
	return events;
}

/*
 * The introspection schema in QEMU's SchemaInfo form: each command with an
 * object type for its arguments (named by number, as QEMU does) and "any"
 * as its return type; events; the builtin types used.
 */
static JsonObject *schema_entry(JsonArray *a, const char *name, const char *meta)
{
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, "name", name);
	json_object_set_string_member(o, "meta-type", meta);
	json_array_add_object_element(a, o);
	return o;
}

static JsonNode *cmd_query_qmp_schema(struct machine *m, struct qmp_client *c, JsonObject *args,
				      struct qmp_error *err)
{
	static const char *const builtins[][2] = {
		{ "str", "string" }, { "int", "int" }, { "bool", "boolean" }, { "any", "value" },
	};
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);
	JsonArray *a = json_array_new();
	unsigned type_no = 0;
	char tname[16];
	size_t nr;
	const struct qmp_command *cmds = qmp_commands(&nr);

	for (size_t i = 0; i < nr; i++) {
		JsonObject *cmd = schema_entry(a, cmds[i].name, "command"), *ty;
		JsonArray *members = json_array_new();

		snprintf(tname, sizeof(tname), "%u", type_no++);
		json_object_set_string_member(cmd, "arg-type", tname);
		json_object_set_string_member(cmd, "ret-type", "any");
		ty = schema_entry(a, tname, "object");
		for (int j = 0; j < QMP_MAX_ARGS && cmds[i].args[j].name; j++) {
			static const char *const tn[] = { "str", "int", "bool", "any" };
			JsonObject *mem = json_object_new();

			json_object_set_string_member(mem, "name", cmds[i].args[j].name);
			json_object_set_string_member(mem, "type", tn[cmds[i].args[j].type]);
			if (cmds[i].args[j].optional)
				json_object_set_null_member(mem, "default");
			json_array_add_object_element(members, mem);
		}
		json_object_set_array_member(ty, "members", members);
	}
	snprintf(tname, sizeof(tname), "%u", type_no++);
	schema_entry(a, tname, "object");
	json_object_set_array_member(json_array_get_object_element(a, json_array_get_length(a) - 1),
				     "members", json_array_new());
	for (int i = 0; events[i]; i++) {
		JsonObject *ev = schema_entry(a, events[i], "event");

		json_object_set_string_member(ev, "arg-type", tname);
	}
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		JsonObject *b = schema_entry(a, builtins[i][0], "builtin");

		json_object_set_string_member(b, "json-type", builtins[i][1]);
	}
	json_node_take_array(n, a);
	return n;
}
