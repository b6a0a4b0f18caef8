/* QMP server internals shared by the protocol (qmp.c) and the commands. */
#ifndef VIREO_QMP_INT_H
#define VIREO_QMP_INT_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

#include "machine.h"

struct qmp_client;

/* Error classes, as QEMU names them. */
#define QMP_ERR_GENERIC		"GenericError"
#define QMP_ERR_NOT_FOUND	"CommandNotFound"
#define QMP_ERR_DEVICE_NOT_FOUND "DeviceNotFound"

struct qmp_error {
	const char *cls;
	char desc[512];
};

enum qmp_arg_type { QMP_STR, QMP_INT, QMP_BOOL, QMP_ANY };

struct qmp_arg {
	const char *name;
	enum qmp_arg_type type;
	bool optional;
};

#define QMP_MAX_ARGS 24

struct qmp_command {
	const char *name;
	/*
	 * Returns the "return" value (a new node), or NULL with err set.
	 * args holds only declared, type-checked members.
	 */
	JsonNode *(*fn)(struct machine *m, struct qmp_client *c, JsonObject *args,
			struct qmp_error *err);
	struct qmp_arg args[QMP_MAX_ARGS];
	/* Members beyond args are accepted and passed on (device_add's properties). */
	bool free_form;
	/*
	 * Adds, removes or changes a device or a medium: refused while a
	 * migration carries the device state (migration_locks_devices).
	 */
	bool changes_devices;
	/* Runs after the reply is sent (quit). */
	void (*after)(struct machine *m);
};

const struct qmp_command *qmp_commands(size_t *n);
const char *const *qmp_event_names(void);

void qmp_set_error(struct qmp_error *e, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Device commands (qmp_devices.c). */
#define QMP_HANDLER(name) JsonNode *name(struct machine *m, struct qmp_client *c, \
					  JsonObject *args, struct qmp_error *err)
QMP_HANDLER(qmp_device_add);
QMP_HANDLER(qmp_device_del);
QMP_HANDLER(qmp_eject);
QMP_HANDLER(qmp_change_medium);

/*
 * block_resize (qmp_block.c): find the drive by device or node-name
 * (exactly one), refuse during a migration, grow it (drive_resize).
 * err holds QEMU's wording where it has one.
 */
QMP_HANDLER(qmp_block_resize);
/*
 * blockdev-snapshot-sync (qmp_block.c): a new qcow2 overlay on top of a
 * drive; transaction: several of them, all or none.
 */
QMP_HANDLER(qmp_blockdev_snapshot_sync);
QMP_HANDLER(qmp_transaction);
/* block_set_io_throttle (qmp_block.c): the drive's I/O limits. */
QMP_HANDLER(qmp_block_set_io_throttle);
/*
 * The drive's (its group's) limits; -ENODEV for no such drive, other
 * errors with err set.  For QMP and HMP's block_set_io_throttle.
 */
struct blk_throttle_limits;
int qmp_block_throttle_drive(struct machine *m, const char *device,
			     const struct blk_throttle_limits *l, const char *group, char *err,
			     size_t errlen);
/* HMP's snapshot_blkdev: one drive's blockdev-snapshot-sync. */
int qmp_block_snapshot_drive(struct machine *m, const char *device, const char *file,
			     char *err, size_t errlen);
int qmp_block_resize_drive(struct machine *m, const char *device, const char *node,
			   int64_t size, char *err, size_t errlen);
/* HMP's size argument: bytes or a k/M/G/T suffix (QEMU's 'o'). */
int hmp_parse_size(const char *s, int64_t *out);

/* human-monitor-command's text commands (hmp.c). */
/* cpu: the vCPU for per-CPU commands (QMP's cpu-index), -1 for the first. */
char *hmp_run(struct machine *m, const char *line, int cpu);

/*
 * Descriptors passed over a unix socket (getfd/closefd, as QEMU):
 * the oldest one a client sent with SCM_RIGHTS and no command claimed
 * yet (-1: none); then kept by name on the machine's monitor until a
 * command takes it (the caller then owns it, -1 if there is no such
 * name).
 */
int qmp_client_take_passed_fd(struct qmp_client *c);
void qmp_fd_add(struct machine *m, const char *name, int fd);
int qmp_fd_take(struct machine *m, const char *name);

/* The migration commands (qmp_migration.c). */
#define QMP_CMD_DECL(fn) JsonNode *fn(struct machine *m, struct qmp_client *c, \
				      JsonObject *args, struct qmp_error *err)
QMP_CMD_DECL(qmp_cmd_migrate);
QMP_CMD_DECL(qmp_cmd_migrate_cancel);
QMP_CMD_DECL(qmp_cmd_migrate_continue);
QMP_CMD_DECL(qmp_cmd_migrate_incoming);
QMP_CMD_DECL(qmp_cmd_query_migrate);
QMP_CMD_DECL(qmp_cmd_migrate_set_capabilities);
QMP_CMD_DECL(qmp_cmd_query_migrate_capabilities);
QMP_CMD_DECL(qmp_cmd_migrate_set_parameters);
QMP_CMD_DECL(qmp_cmd_query_migrate_parameters);
#undef QMP_CMD_DECL

/* Shared by QMP and HMP. */
/*
 * The CD unit that drive d is in, in a virtio_scsi_media list, or NULL:
 * query-block, query-blockstats and HMP info blockstats describe such a
 * drive as the unit is now.
 */
struct drive;
struct virtio_scsi_medium_info;
const struct virtio_scsi_medium_info *qmp_medium_of(const struct virtio_scsi_medium_info *media,
						    size_t n, const struct drive *d);

const char *qmp_runstate_name(enum machine_runstate s);
/* query-status's (and HMP info status's) name for the VM's state. */
const char *qmp_status_name(struct machine *m);
JsonNode *qmp_new_object(JsonObject **out);

#endif
