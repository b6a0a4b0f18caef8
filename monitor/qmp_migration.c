/*
 * The QMP migration commands, in QEMU's spelling: migrate, migrate_cancel,
 * migrate-continue, migrate-incoming, query-migrate, and the capabilities
 * and parameters with their queries.  The MIGRATION event comes from
 * migration/migration.c.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"
#include "migration.h"
#include "monitor/qmp_int.h"

static JsonNode *ok(void)
{
	return qmp_new_object(NULL);
}

/*
 * migrate and migrate-incoming.  "fd:NAME" (a name given to getfd, as
 * libvirt passes its sockets) becomes "fd:N" here, so the transports
 * only ever see descriptor numbers; a number is an inherited descriptor.
 */
static JsonNode *start_with_named_fd(struct machine *m, const char *uri, bool incoming,
				     struct qmp_error *err)
{
	char msg[256], byfd[32];
	int fd = -1, ret;

	if (!strncmp(uri, "fd:", 3) && uri[3] && !g_ascii_isdigit(uri[3])) {
		fd = qmp_fd_take(m, uri + 3);
		if (fd < 0) {
			qmp_set_error(err, QMP_ERR_GENERIC, "%.200s: no file descriptor named "
				      "'%.200s' (pass one with getfd first)", uri, uri + 3);
			return NULL;
		}
		snprintf(byfd, sizeof(byfd), "fd:%d", fd);
		uri = byfd;
	}
	ret = incoming ? migration_incoming(m, uri, true, msg, sizeof(msg)) :
			 migration_start(m, uri, msg, sizeof(msg));
	if (ret) {
		if (fd >= 0)		/* still ours on failure (migration.h) */
			close(fd);
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return ok();
}

JsonNode *qmp_cmd_migrate(struct machine *m, struct qmp_client *c, JsonObject *args,
			  struct qmp_error *err)
{
	if (json_object_has_member(args, "resume") &&
	    json_object_get_boolean_member(args, "resume")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "postcopy resume is not supported");
		return NULL;
	}
	return start_with_named_fd(m, json_object_get_string_member(args, "uri"), false, err);
}

JsonNode *qmp_cmd_migrate_cancel(struct machine *m, struct qmp_client *c, JsonObject *args,
				 struct qmp_error *err)
{
	migration_cancel(m);
	return ok();
}

JsonNode *qmp_cmd_migrate_continue(struct machine *m, struct qmp_client *c, JsonObject *args,
				   struct qmp_error *err)
{
	char msg[256];

	if (strcmp(json_object_get_string_member(args, "state"), "pre-switchover")) {
		qmp_set_error(err, QMP_ERR_GENERIC, "Migration not in expected state: %s",
			      json_object_get_string_member(args, "state"));
		return NULL;
	}
	if (migration_continue(m, msg, sizeof(msg))) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return ok();
}

JsonNode *qmp_cmd_migrate_incoming(struct machine *m, struct qmp_client *c, JsonObject *args,
				   struct qmp_error *err)
{
	if (!migration_incoming_deferred(m)) {
		qmp_set_error(err, QMP_ERR_GENERIC,
			      "'-incoming' was not specified on the command line");
		return NULL;
	}
	return start_with_named_fd(m, json_object_get_string_member(args, "uri"), true, err);
}

JsonNode *qmp_cmd_query_migrate(struct machine *m, struct qmp_client *c, JsonObject *args,
				struct qmp_error *err)
{
	struct mig_info i;
	JsonObject *o, *ram;
	JsonNode *n = qmp_new_object(&o);

	migration_get_info(m, &i);
	if (i.status == MIG_NONE)
		return n;
	json_object_set_string_member(o, "status", migration_status_name(i.status));
	json_object_set_int_member(o, "total-time", i.total_time);
	json_object_set_int_member(o, "setup-time", i.setup_time);
	if (i.status == MIG_COMPLETED)
		json_object_set_int_member(o, "downtime", i.downtime);
	else
		json_object_set_int_member(o, "expected-downtime", i.expected_downtime);
	ram = json_object_new();
	json_object_set_int_member(ram, "transferred", i.transferred);
	json_object_set_int_member(ram, "remaining", i.remaining);
	json_object_set_int_member(ram, "total", i.total);
	json_object_set_int_member(ram, "duplicate", i.duplicate);
	json_object_set_int_member(ram, "normal", i.normal);
	json_object_set_int_member(ram, "normal-bytes", i.normal * 4096);
	json_object_set_int_member(ram, "dirty-sync-count", i.dirty_sync_count);
	json_object_set_int_member(ram, "dirty-pages-rate", i.dirty_pages_rate);
	json_object_set_double_member(ram, "mbps", i.mbps_x1000 / 1000.0);
	json_object_set_int_member(ram, "page-size", 4096);
	json_object_set_int_member(ram, "multifd-bytes", i.multifd_bytes);
	json_object_set_object_member(o, "ram", ram);
	if (i.cpu_throttle)
		json_object_set_int_member(o, "cpu-throttle-percentage", i.cpu_throttle);
	if (i.status == MIG_FAILED && i.error[0])
		json_object_set_string_member(o, "error-desc", i.error);
	return n;
}

static int cap_by_name(const char *name)
{
	for (int c = 0; c < MIG_CAP_NR; c++)
		if (!strcmp(migration_cap_name(c), name))
			return c;
	return -1;
}

JsonNode *qmp_cmd_migrate_set_capabilities(struct machine *m, struct qmp_client *c,
					   JsonObject *args, struct qmp_error *err)
{
	JsonNode *caps = json_object_get_member(args, "capabilities");
	JsonArray *a;
	bool want[MIG_CAP_NR];
	char msg[256];

	if (!JSON_NODE_HOLDS_ARRAY(caps)) {
		qmp_set_error(err, QMP_ERR_GENERIC,
			      "Invalid parameter type for 'capabilities', expected: array");
		return NULL;
	}
	a = json_node_get_array(caps);
	for (int i = 0; i < MIG_CAP_NR; i++)
		want[i] = migration_get_cap(m, i);
	/* Check every entry before changing anything. */
	for (unsigned i = 0; i < json_array_get_length(a); i++) {
		JsonNode *e = json_array_get_element(a, i);
		JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
		JsonNode *name = o ? json_object_get_member(o, "capability") : NULL;
		JsonNode *state = o ? json_object_get_member(o, "state") : NULL;
		int cap;

		if (!name || !state || json_node_get_value_type(name) != G_TYPE_STRING ||
		    json_node_get_value_type(state) != G_TYPE_BOOLEAN) {
			qmp_set_error(err, QMP_ERR_GENERIC, "capabilities[%u]: expected "
				      "{\"capability\": str, \"state\": bool}", i);
			return NULL;
		}
		cap = cap_by_name(json_node_get_string(name));
		if (cap < 0) {
			qmp_set_error(err, QMP_ERR_GENERIC,
				      "Parameter 'capability' does not accept value '%s'",
				      json_node_get_string(name));
			return NULL;
		}
		want[cap] = json_node_get_boolean(state);
	}
	for (int i = 0; i < MIG_CAP_NR; i++) {
		if (migration_set_cap(m, i, want[i], msg, sizeof(msg))) {
			qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
			return NULL;
		}
	}
	return ok();
}

JsonNode *qmp_cmd_query_migrate_capabilities(struct machine *m, struct qmp_client *c,
					     JsonObject *args, struct qmp_error *err)
{
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);
	JsonArray *a = json_array_new();

	for (int i = 0; i < MIG_CAP_NR; i++) {
		JsonObject *o = json_object_new();

		json_object_set_string_member(o, "capability", migration_cap_name(i));
		json_object_set_boolean_member(o, "state", migration_get_cap(m, i));
		json_array_add_object_element(a, o);
	}
	json_node_take_array(n, a);
	return n;
}

JsonNode *qmp_cmd_migrate_set_parameters(struct machine *m, struct qmp_client *c,
					 JsonObject *args, struct qmp_error *err)
{
	struct mig_params p;
	char msg[256];

	migration_get_params(m, &p);
	if (json_object_has_member(args, "downtime-limit")) {
		gint64 v = json_object_get_int_member(args, "downtime-limit");

		if (v < 0) {
			qmp_set_error(err, QMP_ERR_GENERIC, "Parameter 'downtime_limit' expects "
				      "an integer in the range of 0 to 2000000 milliseconds");
			return NULL;
		}
		p.downtime_limit = v;
	}
	if (json_object_has_member(args, "max-bandwidth")) {
		gint64 v = json_object_get_int_member(args, "max-bandwidth");

		if (v < 0) {
			qmp_set_error(err, QMP_ERR_GENERIC,
				      "Parameter 'max_bandwidth' expects a size");
			return NULL;
		}
		p.max_bandwidth = v;
	}
	if (json_object_has_member(args, "multifd-channels")) {
		gint64 v = json_object_get_int_member(args, "multifd-channels");

		p.multifd_channels = v < 0 ? 0 : v;
	}
	if (json_object_has_member(args, "direct-io"))
		p.direct_io = json_object_get_boolean_member(args, "direct-io");
	if (json_object_has_member(args, "cpu-throttle-initial")) {
		gint64 v = json_object_get_int_member(args, "cpu-throttle-initial");

		p.cpu_throttle_initial = v < 0 ? 0 : v;
	}
	if (json_object_has_member(args, "cpu-throttle-increment")) {
		gint64 v = json_object_get_int_member(args, "cpu-throttle-increment");

		p.cpu_throttle_increment = v < 0 ? 0 : v;
	}
	if (migration_set_params(m, &p, msg, sizeof(msg))) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return ok();
}

JsonNode *qmp_cmd_query_migrate_parameters(struct machine *m, struct qmp_client *c,
					   JsonObject *args, struct qmp_error *err)
{
	struct mig_params p;
	JsonObject *o;
	JsonNode *n = qmp_new_object(&o);

	migration_get_params(m, &p);
	json_object_set_int_member(o, "downtime-limit", p.downtime_limit);
	json_object_set_int_member(o, "max-bandwidth", p.max_bandwidth);
	json_object_set_int_member(o, "multifd-channels", p.multifd_channels);
	json_object_set_boolean_member(o, "direct-io", p.direct_io);
	json_object_set_int_member(o, "cpu-throttle-initial", p.cpu_throttle_initial);
	json_object_set_int_member(o, "cpu-throttle-increment", p.cpu_throttle_increment);
	return n;
}
