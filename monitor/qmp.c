/*
 * QMP server: listening sockets, clients, JSON framing, command dispatch
 * and events.  Everything runs on the machine's main loop.
 *
 * A client's bytes are split into JSON texts by a small scanner that
 * tracks nesting and strings, so several commands in one read, or one
 * command over many reads, both work.  Hostile input gets an error reply
 * (bad JSON, wrong types) or a closed connection (a text over
 * QMP_MAX_MESSAGE, nesting past QMP_MAX_DEPTH, an output backlog past
 * QMP_MAX_BACKLOG); the VM never notices.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <glib-unix.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "migration.h"
#include "monitor.h"
#include "monitor/qmp_int.h"
#include "options.h"

#define QMP_MAX_MESSAGE (1 << 20)
#define QMP_MAX_DEPTH 64
#define QMP_MAX_BACKLOG (16 << 20)
/* Descriptors a client may pass ahead of the getfd commands that name them. */
#define QMP_MAX_PASSED_FDS 16

struct qmp_client {
	struct monitor *mon;
	int fd;
	GSource *in_src, *out_src;
	GString *in, *out;
	unsigned depth;
	bool in_string, escape, junk, negotiated;
	/* Received with SCM_RIGHTS and not yet named by getfd, oldest first. */
	int passed[QMP_MAX_PASSED_FDS];
	unsigned nr_passed;
	struct qmp_client *next;
};

struct qmp_listener {
	int fd;
	char *unlink_path;
	GSource *src;
	struct qmp_listener *next;
};

struct monitor {
	struct machine *m;
	struct qmp_listener *listeners;
	struct qmp_client *clients;
	struct machine_listener ml;
	GHashTable *named_fds;		/* getfd name -> descriptor */
};

void qmp_set_error(struct qmp_error *e, const char *cls, const char *fmt, ...)
{
	va_list ap;

	e->cls = cls;
	va_start(ap, fmt);
	vsnprintf(e->desc, sizeof(e->desc), fmt, ap);
	va_end(ap);
}

/* A watch on fd, served on ctx. */
static GSource *fd_watch(int fd, GIOCondition cond, GUnixFDSourceFunc fn, void *data,
			 GMainContext *ctx)
{
	GSource *src = g_unix_fd_source_new(fd, cond);

	g_source_set_callback(src, G_SOURCE_FUNC(fn), data, NULL);
	g_source_attach(src, ctx);
	return src;
}

JsonNode *qmp_new_object(JsonObject **out)
{
	JsonNode *n = json_node_new(JSON_NODE_OBJECT);
	JsonObject *o = json_object_new();

	json_node_take_object(n, o);
	if (out)
		*out = o;
	return n;
}

/* ---- output ---- */

static void client_close(struct qmp_client *c);

static gboolean client_writable(gint fd, GIOCondition cond, gpointer opaque);

static void client_flush(struct qmp_client *c)
{
	while (c->out->len) {
		ssize_t n = write(c->fd, c->out->str, c->out->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->out_src)
				c->out_src = fd_watch(c->fd, G_IO_OUT, client_writable, c,
						      c->mon->m->ctx);
			return;
		}
		if (n <= 0) {
			/* The peer is gone: drop what it will never read. */
			g_string_truncate(c->out, 0);
			return;
		}
		g_string_erase(c->out, 0, n);
	}
	if (c->out_src) {
		g_source_destroy(c->out_src);
		g_source_unref(c->out_src);
		c->out_src = NULL;
	}
}

static gboolean client_writable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct qmp_client *c = opaque;

	client_flush(c);
	return G_SOURCE_CONTINUE;
}

static void client_send(struct qmp_client *c, JsonNode *node)
{
	char *text = json_to_string(node, FALSE);

	if (c->out->len > QMP_MAX_BACKLOG) {
		/* A client that never reads its events does not get to eat our memory. */
		g_free(text);
		return;
	}
	g_string_append(c->out, text);
	g_string_append(c->out, "\r\n");
	g_free(text);
	client_flush(c);
}

static void client_send_error(struct qmp_client *c, JsonNode *id, const char *cls,
			      const char *desc)
{
	JsonObject *o, *e;
	JsonNode *reply = qmp_new_object(&o);

	e = json_object_new();
	json_object_set_string_member(e, "class", cls);
	json_object_set_string_member(e, "desc", desc);
	json_object_set_object_member(o, "error", e);
	if (id)
		json_object_set_member(o, "id", json_node_copy(id));
	client_send(c, reply);
	json_node_unref(reply);
}

static void client_send_greeting(struct qmp_client *c)
{
	JsonObject *o, *qmp, *ver, *qemu;
	JsonNode *g = qmp_new_object(&o);

	qmp = json_object_new();
	ver = json_object_new();
	qemu = json_object_new();
	/* The QEMU release whose QMP this follows, so clients pick the right dialect. */
	json_object_set_int_member(qemu, "major", 7);
	json_object_set_int_member(qemu, "minor", 2);
	json_object_set_int_member(qemu, "micro", 0);
	json_object_set_object_member(ver, "qemu", qemu);
	json_object_set_string_member(ver, "package", "vireo");
	json_object_set_object_member(qmp, "version", ver);
	json_object_set_array_member(qmp, "capabilities", json_array_new());
	json_object_set_object_member(o, "QMP", qmp);
	client_send(c, g);
	json_node_unref(g);
}

void monitor_emit_event(struct machine *m, const char *name, JsonNode *data)
{
	struct monitor *mon = m->monitor;
	JsonObject *o, *ts;
	JsonNode *ev;
	gint64 now = g_get_real_time();

	if (!mon) {
		if (data)
			json_node_unref(data);
		return;
	}
	ev = qmp_new_object(&o);
	json_object_set_string_member(o, "event", name);
	if (data)
		json_object_set_member(o, "data", data);
	ts = json_object_new();
	json_object_set_int_member(ts, "seconds", now / G_USEC_PER_SEC);
	json_object_set_int_member(ts, "microseconds", now % G_USEC_PER_SEC);
	json_object_set_object_member(o, "timestamp", ts);
	for (struct qmp_client *c = mon->clients; c; c = c->next)
		if (c->negotiated)
			client_send(c, ev);
	json_node_unref(ev);
}

/* ---- dispatch ---- */

static const char *arg_type_name(enum qmp_arg_type t)
{
	static const char *const names[] = { "string", "int", "boolean", "any" };

	return names[t];
}

static bool arg_type_ok(JsonNode *n, enum qmp_arg_type t)
{
	if (t == QMP_ANY)
		return true;
	if (JSON_NODE_TYPE(n) != JSON_NODE_VALUE)
		return false;
	switch (t) {
	case QMP_STR:
		return json_node_get_value_type(n) == G_TYPE_STRING;
	case QMP_INT:
		return json_node_get_value_type(n) == G_TYPE_INT64;
	case QMP_BOOL:
		return json_node_get_value_type(n) == G_TYPE_BOOLEAN;
	default:
		return false;
	}
}

static const struct qmp_command *find_command(const char *name)
{
	size_t n;
	const struct qmp_command *cmds = qmp_commands(&n);

	for (size_t i = 0; i < n; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* Check arguments against the command's declaration. */
static bool check_args(const struct qmp_command *cmd, JsonObject *args, struct qmp_error *err)
{
	GList *members = json_object_get_members(args);
	bool ok = true;

	for (GList *l = members; l && ok; l = l->next) {
		const struct qmp_arg *a = NULL;

		for (int i = 0; i < QMP_MAX_ARGS && cmd->args[i].name; i++)
			if (!strcmp(cmd->args[i].name, l->data))
				a = &cmd->args[i];
		if (!a && !cmd->free_form) {
			qmp_set_error(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected",
				      (const char *)l->data);
			ok = false;
		} else if (a && !arg_type_ok(json_object_get_member(args, a->name), a->type)) {
			qmp_set_error(err, QMP_ERR_GENERIC,
				      "Invalid parameter type for '%s', expected: %s", a->name,
				      arg_type_name(a->type));
			ok = false;
		}
	}
	g_list_free(members);
	for (int i = 0; ok && i < QMP_MAX_ARGS && cmd->args[i].name; i++) {
		if (!cmd->args[i].optional && !json_object_has_member(args, cmd->args[i].name)) {
			qmp_set_error(err, QMP_ERR_GENERIC, "Parameter '%s' is missing",
				      cmd->args[i].name);
			ok = false;
		}
	}
	return ok;
}

static void client_dispatch(struct qmp_client *c, const char *text, size_t len)
{
	JsonParser *p = json_parser_new();
	GError *gerr = NULL;
	JsonNode *root, *id = NULL, *ret;
	JsonObject *req, *args, *empty = NULL;
	const struct qmp_command *cmd;
	struct qmp_error err = { 0 };
	const char *name;
	GList *members;

	if (!json_parser_load_from_data(p, text, len, &gerr)) {
		client_send_error(c, NULL, QMP_ERR_GENERIC, "JSON parse error");
		g_error_free(gerr);
		goto out;
	}
	root = json_parser_get_root(p);
	if (!root || JSON_NODE_TYPE(root) != JSON_NODE_OBJECT) {
		client_send_error(c, NULL, QMP_ERR_GENERIC, "QMP input must be a JSON object");
		goto out;
	}
	req = json_node_get_object(root);
	id = json_object_get_member(req, "id");
	members = json_object_get_members(req);
	for (GList *l = members; l; l = l->next) {
		if (strcmp(l->data, "execute") && strcmp(l->data, "arguments") &&
		    strcmp(l->data, "id")) {
			snprintf(err.desc, sizeof(err.desc), "QMP input member '%s' is unexpected",
				 (const char *)l->data);
			err.cls = QMP_ERR_GENERIC;
		}
	}
	g_list_free(members);
	if (err.cls) {
		client_send_error(c, id, err.cls, err.desc);
		goto out;
	}
	if (!json_object_has_member(req, "execute") ||
	    !arg_type_ok(json_object_get_member(req, "execute"), QMP_STR)) {
		client_send_error(c, id, QMP_ERR_GENERIC,
				  "QMP input member 'execute' must be a string");
		goto out;
	}
	name = json_object_get_string_member(req, "execute");
	if (json_object_has_member(req, "arguments")) {
		JsonNode *a = json_object_get_member(req, "arguments");

		if (JSON_NODE_TYPE(a) != JSON_NODE_OBJECT) {
			client_send_error(c, id, QMP_ERR_GENERIC,
					  "QMP input member 'arguments' must be an object");
			goto out;
		}
		args = json_node_get_object(a);
	} else {
		args = empty = json_object_new();
	}

	cmd = find_command(name);
	if (!c->negotiated && (!cmd || strcmp(name, "qmp_capabilities"))) {
		client_send_error(c, id, QMP_ERR_NOT_FOUND,
				  "Expecting capabilities negotiation with 'qmp_capabilities'");
		goto out;
	}
	if (!cmd) {
		char desc[256];

		snprintf(desc, sizeof(desc), "The command %.200s has not been found", name);
		client_send_error(c, id, QMP_ERR_NOT_FOUND, desc);
		goto out;
	}
	if (!strcmp(name, "qmp_capabilities") && c->negotiated) {
		client_send_error(c, id, QMP_ERR_NOT_FOUND,
				  "Capabilities negotiation is already complete, command ignored");
		goto out;
	}
	if (!check_args(cmd, args, &err)) {
		client_send_error(c, id, err.cls, err.desc);
		goto out;
	}
	/* The destination would never learn of the change (docs/migration.md). */
	if (cmd->changes_devices) {
		char why[200];

		if (migration_locks_devices(c->mon->m, why, sizeof(why))) {
			snprintf(err.desc, sizeof(err.desc), "%s not allowed while migrating: %s",
				 name, why);
			client_send_error(c, id, QMP_ERR_GENERIC, err.desc);
			goto out;
		}
	}
	ret = cmd->fn(c->mon->m, c, args, &err);
	if (!ret) {
		client_send_error(c, id, err.cls ? err.cls : QMP_ERR_GENERIC, err.desc);
	} else {
		JsonObject *o;
		JsonNode *reply = qmp_new_object(&o);

		json_object_set_member(o, "return", ret);
		if (id)
			json_object_set_member(o, "id", json_node_copy(id));
		client_send(c, reply);
		json_node_unref(reply);
		if (!strcmp(name, "qmp_capabilities"))
			c->negotiated = true;
		if (cmd->after)
			cmd->after(c->mon->m);
	}
out:
	if (empty)
		json_object_unref(empty);
	g_object_unref(p);
}

/*
 * Feed bytes to the scanner; dispatch each complete JSON text.  Returns
 * false when the client must be dropped.
 */
static bool client_scan(struct qmp_client *c, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (c->junk) {
			/* Garbage outside any object: skip to the end of the line. */
			if (ch == '\n') {
				c->junk = false;
				client_send_error(c, NULL, QMP_ERR_GENERIC, "JSON parse error");
			}
			continue;
		}
		if (c->depth == 0 && c->in->len == 0) {
			if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
				continue;
			if (ch != '{' && ch != '[') {
				c->junk = true;
				continue;
			}
		}
		if (c->in->len >= QMP_MAX_MESSAGE) {
			client_send_error(c, NULL, QMP_ERR_GENERIC, "JSON message too long");
			return false;
		}
		g_string_append_c(c->in, ch);
		if (c->in_string) {
			if (c->escape)
				c->escape = false;
			else if (ch == '\\')
				c->escape = true;
			else if (ch == '"')
				c->in_string = false;
			continue;
		}
		if (ch == '"') {
			c->in_string = true;
		} else if (ch == '{' || ch == '[') {
			if (++c->depth > QMP_MAX_DEPTH) {
				client_send_error(c, NULL, QMP_ERR_GENERIC, "JSON nesting too deep");
				return false;
			}
		} else if (ch == '}' || ch == ']') {
			if (--c->depth == 0) {
				client_dispatch(c, c->in->str, c->in->len);
				g_string_truncate(c->in, 0);
			}
		}
	}
	return true;
}

static void client_drop_passed(struct qmp_client *c)
{
	while (c->nr_passed)
		close(c->passed[--c->nr_passed]);
}

/* Keep the descriptors of an SCM_RIGHTS message for getfd; close the rest. */
static void client_keep_passed(struct qmp_client *c, struct msghdr *msg)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;
		int *fds;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		fds = (int *)CMSG_DATA(cm);
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			if (c->nr_passed < QMP_MAX_PASSED_FDS)
				c->passed[c->nr_passed++] = fds[i];
			else
				close(fds[i]);
		}
	}
}

int qmp_client_take_passed_fd(struct qmp_client *c)
{
	int fd;

	if (!c->nr_passed)
		return -1;
	fd = c->passed[0];
	memmove(c->passed, c->passed + 1, --c->nr_passed * sizeof(int));
	return fd;
}

static gboolean client_readable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct qmp_client *c = opaque;
	char buf[65536];
	union {
		char space[CMSG_SPACE(sizeof(int) * QMP_MAX_PASSED_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.space, .msg_controllen = sizeof(ctl.space),
	};
	ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return G_SOURCE_CONTINUE;
	if (n > 0)
		client_keep_passed(c, &msg);
	if (n <= 0 || !client_scan(c, buf, n)) {
		client_close(c);
		return G_SOURCE_REMOVE;
	}
	/*
	 * A descriptor belongs to the command it came with: once every
	 * complete command of this read ran, one that none claimed is closed.
	 */
	if (!c->in->len)
		client_drop_passed(c);
	return G_SOURCE_CONTINUE;
}

static void client_close(struct qmp_client *c)
{
	struct monitor *mon = c->mon;

	for (struct qmp_client **p = &mon->clients; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	if (c->in_src) {
		g_source_destroy(c->in_src);
		g_source_unref(c->in_src);
	}
	if (c->out_src) {
		g_source_destroy(c->out_src);
		g_source_unref(c->out_src);
	}
	client_drop_passed(c);
	close(c->fd);
	g_string_free(c->in, TRUE);
	g_string_free(c->out, TRUE);
	g_free(c);
}

static gboolean listener_accept(gint fd, GIOCondition cond, gpointer opaque)
{
	struct monitor *mon = opaque;
	struct qmp_client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return G_SOURCE_CONTINUE;
	c = g_new0(struct qmp_client, 1);
	c->mon = mon;
	c->fd = cfd;
	c->in = g_string_new(NULL);
	c->out = g_string_new(NULL);
	c->next = mon->clients;
	mon->clients = c;
	c->in_src = fd_watch(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR, client_readable, c, mon->m->ctx);
	client_send_greeting(c);
	return G_SOURCE_CONTINUE;
}

/* ---- machine events ---- */

static void on_runstate(void *opaque, enum machine_runstate s, const char *reason)
{
	struct machine *m = opaque;
	JsonObject *o;
	JsonNode *d;

	switch (s) {
	case RUNSTATE_RUNNING:
		monitor_emit_event(m, "RESUME", NULL);
		break;
	case RUNSTATE_PAUSED:
		monitor_emit_event(m, "STOP", NULL);
		break;
	case RUNSTATE_SHUTDOWN:
		d = qmp_new_object(&o);
		json_object_set_boolean_member(o, "guest", reason && !strncmp(reason, "guest", 5));
		json_object_set_string_member(o, "reason", reason ? reason : "host-error");
		monitor_emit_event(m, "SHUTDOWN", d);
		if (m->cfg.no_shutdown && reason && !strcmp(reason, "guest-shutdown") &&
		    m->loop && g_main_loop_is_running(m->loop))
			monitor_emit_event(m, "STOP", NULL);
		break;
	case RUNSTATE_PRELAUNCH:
		break;
	}
}

static void on_reset(void *opaque, bool guest)
{
	JsonObject *o;
	JsonNode *d = qmp_new_object(&o);

	json_object_set_boolean_member(o, "guest", guest);
	json_object_set_string_member(o, "reason", guest ? "guest-reset" : "host-qmp-system-reset");
	monitor_emit_event(opaque, "RESET", d);
}

static void on_powerdown(void *opaque)
{
	monitor_emit_event(opaque, "POWERDOWN", NULL);
}

/*
 * As QEMU, for every action taken.  vireo has no separate block nodes: a
 * drive's node is named by its id.
 */
static void on_io_error(void *opaque, const struct machine_io_error *e)
{
	static const char *const actions[] = { "report", "ignore", "stop" };
	JsonObject *o;
	JsonNode *d = qmp_new_object(&o);

	json_object_set_string_member(o, "device", e->device);
	json_object_set_string_member(o, "node-name", e->device);
	json_object_set_string_member(o, "operation", e->write ? "write" : "read");
	json_object_set_string_member(o, "action", actions[e->action]);
	json_object_set_boolean_member(o, "nospace", e->error == ENOSPC);
	json_object_set_string_member(o, "reason", strerror(e->error));
	monitor_emit_event(opaque, "BLOCK_IO_ERROR", d);
}

/* As QEMU: the unit's drive ("" for none), its id, and where the tray is now. */
static void on_tray_moved(void *opaque, const struct machine_tray_event *e)
{
	JsonObject *o;
	JsonNode *d = qmp_new_object(&o);

	json_object_set_string_member(o, "device", e->device);
	json_object_set_string_member(o, "id", e->id);
	json_object_set_boolean_member(o, "tray-open", e->tray_open);
	monitor_emit_event(opaque, "DEVICE_TRAY_MOVED", d);
}

/* ---- listeners ---- */

static int listen_unix(const char *path, char **unlink_path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "-qmp unix:%s: path too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		snprintf(err, errlen, "-qmp unix:%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	*unlink_path = g_strdup(path);
	return fd;
}

/*
 * fd:N, a socket the parent process made and left listening (libvirt's
 * -chardev socket,fd=N): taken as it is, after checking that it is one.
 */
static int listen_inherited(const char *num, char *err, size_t errlen)
{
	int fd, listening = 0, type = 0;
	socklen_t len = sizeof(int);
	char *end;
	long v = strtol(num, &end, 10);

	if (end == num || *end || v < 3 || v > INT_MAX) {
		snprintf(err, errlen, "fd=%s: expected the number of an inherited descriptor", num);
		return -EINVAL;
	}
	fd = v;
	if (fcntl(fd, F_GETFD) < 0) {
		snprintf(err, errlen, "fd=%d: not an open descriptor", fd);
		return -EBADF;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || !listening ||
	    type != SOCK_STREAM) {
		snprintf(err, errlen, "fd=%d: not a listening stream socket", fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "fd=%d: %s", fd, strerror(errno));
		return -errno;
	}
	return fd;
}

static int listen_tcp(const char *hostport, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	char *host = g_strdup(hostport), *port = strrchr(host, ':');
	int fd = -1, one = 1, ret;

	if (!port) {
		snprintf(err, errlen, "-qmp tcp:%s: expected tcp:HOST:PORT", hostport);
		g_free(host);
		return -EINVAL;
	}
	*port++ = 0;
	ret = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (ret) {
		snprintf(err, errlen, "-qmp tcp:%s: %s", hostport, gai_strerror(ret));
		g_free(host);
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64)) {
		snprintf(err, errlen, "-qmp tcp:%s: %s", hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -errno;
	}
	freeaddrinfo(res);
	g_free(host);
	return fd;
}

static struct monitor *monitor_get(struct machine *m)
{
	struct monitor *mon = m->monitor;

	if (mon)
		return mon;
	mon = g_new0(struct monitor, 1);
	mon->m = m;
	mon->named_fds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	mon->ml.runstate_changed = on_runstate;
	mon->ml.reset = on_reset;
	mon->ml.powerdown = on_powerdown;
	mon->ml.io_error = on_io_error;
	mon->ml.tray_moved = on_tray_moved;
	mon->ml.opaque = m;
	machine_add_listener(m, &mon->ml);
	m->monitor = mon;
	return mon;
}

int monitor_add_qmp(struct machine *m, const char *spec, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-qmp", spec, "addr", err, errlen);
	const char *addr;
	struct qmp_listener *l;
	bool server, wait;
	char *unlink_path = NULL;
	int fd = -EINVAL;

	if (!o)
		return -EINVAL;
	addr = opts_get(o, "addr");
	if (opts_get_bool(o, "server", false, &server, err, errlen) ||
	    opts_get_bool(o, "wait", true, &wait, err, errlen) ||
	    opts_check_all_used(o, err, errlen))
		goto out;
	if (!server || wait) {
		snprintf(err, errlen, "-qmp %s: vireo serves QMP as a listening socket only: "
			 "add server=on,wait=off", spec);
		goto out;
	}
	if (addr && !strncmp(addr, "unix:", 5))
		fd = listen_unix(addr + 5, &unlink_path, err, errlen);
	else if (addr && !strncmp(addr, "tcp:", 4))
		fd = listen_tcp(addr + 4, err, errlen);
	else if (addr && !strncmp(addr, "fd:", 3))
		fd = listen_inherited(addr + 3, err, errlen);
	else
		snprintf(err, errlen, "-qmp %s: expected unix:PATH, tcp:HOST:PORT or fd:N", spec);
	if (fd < 0)
		goto out;
	l = g_new0(struct qmp_listener, 1);
	l->fd = fd;
	l->unlink_path = unlink_path;
	l->src = fd_watch(fd, G_IO_IN, listener_accept, monitor_get(m), m->ctx);
	l->next = m->monitor->listeners;
	m->monitor->listeners = l;
	fd = 0;
out:
	opts_free(o);
	return fd < 0 ? fd : 0;
}

/* ---- descriptors named by getfd ---- */

static void close_named_fd(gpointer name, gpointer fd, gpointer unused)
{
	close(GPOINTER_TO_INT(fd));
}

void qmp_fd_add(struct machine *m, const char *name, int fd)
{
	struct monitor *mon = monitor_get(m);
	gpointer old;

	/* As QEMU: a name given again replaces (and closes) the old descriptor. */
	if (g_hash_table_lookup_extended(mon->named_fds, name, NULL, &old))
		close(GPOINTER_TO_INT(old));
	g_hash_table_insert(mon->named_fds, g_strdup(name), GINT_TO_POINTER(fd));
}

int qmp_fd_take(struct machine *m, const char *name)
{
	struct monitor *mon = monitor_get(m);
	gpointer fd;

	if (!g_hash_table_lookup_extended(mon->named_fds, name, NULL, &fd))
		return -1;
	g_hash_table_remove(mon->named_fds, name);
	return GPOINTER_TO_INT(fd);
}

void monitor_destroy(struct machine *m)
{
	struct monitor *mon = m->monitor;

	if (!mon)
		return;
	/* Last words (the SHUTDOWN event, quit's reply) reach clients that read them. */
	for (struct qmp_client *c = mon->clients; c; c = c->next) {
		int flags = fcntl(c->fd, F_GETFL);
		struct timeval tv = { .tv_sec = 1 };

		fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK);
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		client_flush(c);
	}
	while (mon->clients)
		client_close(mon->clients);
	while (mon->listeners) {
		struct qmp_listener *l = mon->listeners;

		mon->listeners = l->next;
		g_source_destroy(l->src);
		g_source_unref(l->src);
		close(l->fd);
		if (l->unlink_path)
			unlink(l->unlink_path);
		g_free(l->unlink_path);
		g_free(l);
	}
	machine_remove_listener(m, &mon->ml);
	g_hash_table_foreach(mon->named_fds, close_named_fd, NULL);
	g_hash_table_destroy(mon->named_fds);
	g_free(mon);
	m->monitor = NULL;
}
