/*
 * The machine's generic parts: the -device registry, interrupts, and the
 * requests (power-off, reset, exit, error) that vCPU and device threads
 * make.  Requests are recorded under m->lock and handled on the main
 * thread (machine_handle_request in pc.c), which owns the main loop, so
 * that tearing down or rebooting never races with a device callback.
 *
 * The PC board itself -- what a machine is made of and how it boots -- is
 * in pc.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "log.h"
#include "machine.h"
#include "tsan.h"
#include "vcpu.h"

/* ---- -device types ---- */

static struct device_type *device_types;

void device_type_register(struct device_type *t)
{
	t->next = device_types;
	device_types = t;
}

const struct device_type *device_type_find(const char *name)
{
	for (struct device_type *t = device_types; t; t = t->next)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

void device_types_print(void)
{
	for (struct device_type *t = device_types; t; t = t->next)
		printf("  %-24s %s\n", t->name, t->help ? t->help : "");
}

int machine_add_device(struct machine *m, const char *optstr, char *err, size_t errlen)
{
	const struct device_type *t;
	struct opts *o = opts_parse("-device", optstr, "driver", err, errlen);
	const char *driver;
	int ret;

	if (!o)
		return -EINVAL;
	driver = opts_get(o, "driver");
	t = driver ? device_type_find(driver) : NULL;
	if (!t) {
		snprintf(err, errlen, "-device: unknown device type '%s' (-device help lists them)",
			 driver ? driver : "");
		opts_free(o);
		return -ENOENT;
	}
	ret = t->create(m, o, err, errlen);
	if (!ret)
		ret = opts_check_all_used(o, err, errlen);
	opts_free(o);
	return ret;
}

void machine_add_device_obj(struct machine *m, struct device *d)
{
	d->next = m->devices;
	m->devices = d;
}

struct device *machine_find_device(struct machine *m, const char *id)
{
	for (struct device *d = m->devices; d; d = d->next)
		if (d->id && !strcmp(d->id, id))
			return d;
	return NULL;
}

void machine_add_listener(struct machine *m, struct machine_listener *l)
{
	l->next = m->listeners;
	m->listeners = l;
}

void machine_remove_listener(struct machine *m, struct machine_listener *l)
{
	for (struct machine_listener **p = &m->listeners; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			l->next = NULL;
			return;
		}
	}
}

/* ---- interrupts ---- */

void machine_set_irq(struct machine *m, unsigned gsi, int level)
{
	m->accel->set_irq(m, gsi, level);
}

void machine_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	m->accel->send_msi(m, addr, data);
}

/* ---- requests from any thread ---- */

static void machine_post(struct machine *m, enum machine_request req, int status)
{
	bool first;

	pthread_mutex_lock(&m->lock);
	/* An error always wins; otherwise the first request is the one served. */
	first = m->request == MACHINE_REQ_NONE || req == MACHINE_REQ_ERROR;
	if (first) {
		/* Atomic: vCPU threads poll it unlocked (machine_request_pending). */
		__atomic_store_n(&m->request, req, __ATOMIC_RELEASE);
		m->exit_status = status;
	}
	pthread_mutex_unlock(&m->lock);
	if (current_vcpu && current_vcpu->m == m)
		current_vcpu->posted_request = true;
	if (first && m->on_request) {
		tsan_ignore_begin();	/* glib's source for it: see tsan.h */
		g_main_context_invoke(m->ctx, m->on_request, m);
		tsan_ignore_end();
	}
}

bool machine_request_pending(struct machine *m)
{
	/*
	 * The main thread may already have taken (and cleared) the request
	 * this vCPU's access made; that vCPU must stop all the same.
	 */
	if (current_vcpu && current_vcpu->m == m && current_vcpu->posted_request)
		return true;
	return __atomic_load_n(&m->request, __ATOMIC_ACQUIRE) != MACHINE_REQ_NONE;
}

void machine_request_poweroff(struct machine *m)
{
	machine_post(m, MACHINE_REQ_POWEROFF, 0);
}

void machine_request_reset(struct machine *m)
{
	machine_post(m, MACHINE_REQ_RESET, 0);
}

void machine_request_exit(struct machine *m, int status)
{
	machine_post(m, MACHINE_REQ_EXIT, status);
}

void machine_request_error(struct machine *m, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	va_start(ap, fmt);
	vsnprintf(m->error, sizeof(m->error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&m->lock);
	machine_post(m, MACHINE_REQ_ERROR, 1);
}

/*
 * Run fn(p) on the main loop, later, also when called on the main thread:
 * sources of one priority run in the order they were attached, so the
 * listeners hear the events in the order they were reported, whichever
 * thread reported them (and a QMP command's event follows its reply).  A
 * source still queued when ctx goes is freed unrun, with free_p.
 */
static void machine_defer(struct machine *m, GSourceFunc fn, void *p, GDestroyNotify free_p)
{
	GSource *src;

	/* fn and free_p start with tsan_acquire(p): see tsan.h. */
	tsan_release(p);
	tsan_ignore_begin();
	src = g_idle_source_new();
	g_source_set_priority(src, G_PRIORITY_DEFAULT);
	g_source_set_callback(src, fn, p, free_p);
	g_source_attach(src, m->ctx);
	g_source_unref(src);
	tsan_ignore_end();
}

/* A device's I/O error on its way to the main thread. */
struct io_error_post {
	struct machine *m;
	struct machine_io_error e;
	char *device;
};

static gboolean machine_io_error_main(gpointer opaque)
{
	struct io_error_post *p = opaque;

	tsan_acquire(p);
	for (struct machine_listener *l = p->m->listeners; l; l = l->next)
		if (l->io_error)
			l->io_error(l->opaque, &p->e);
	if (p->e.action == MACHINE_IO_STOP)
		machine_pause(p->m, "io-error");
	return G_SOURCE_REMOVE;
}

static void io_error_post_free(gpointer opaque)
{
	struct io_error_post *p = opaque;

	tsan_acquire(p);
	g_free(p->device);
	g_free(p);
}

void machine_report_io_error(struct machine *m, const struct machine_io_error *e)
{
	struct io_error_post *p = g_new0(struct io_error_post, 1);

	p->m = m;
	p->e = *e;
	p->device = g_strdup(e->device);
	p->e.device = p->device;
	machine_defer(m, machine_io_error_main, p, io_error_post_free);
}

/* A tray movement on its way to the main thread. */
struct tray_post {
	struct machine *m;
	struct machine_tray_event e;
	char *device, *id;
};

static gboolean machine_tray_main(gpointer opaque)
{
	struct tray_post *p = opaque;

	tsan_acquire(p);
	for (struct machine_listener *l = p->m->listeners; l; l = l->next)
		if (l->tray_moved)
			l->tray_moved(l->opaque, &p->e);
	return G_SOURCE_REMOVE;
}

static void tray_post_free(gpointer opaque)
{
	struct tray_post *p = opaque;

	tsan_acquire(p);
	g_free(p->device);
	g_free(p->id);
	g_free(p);
}

void machine_report_tray_moved(struct machine *m, const struct machine_tray_event *e)
{
	struct tray_post *p = g_new0(struct tray_post, 1);

	p->m = m;
	p->e.tray_open = e->tray_open;
	p->device = g_strdup(e->device);
	p->id = g_strdup(e->id);
	p->e.device = p->device;
	p->e.id = p->id;
	machine_defer(m, machine_tray_main, p, tray_post_free);
}

void machine_set_runstate(struct machine *m, enum machine_runstate s, const char *reason)
{
	m->runstate = s;
	m->pause_reason = s == RUNSTATE_PAUSED ? reason : NULL;
	for (struct machine_listener *l = m->listeners; l; l = l->next)
		if (l->runstate_changed)
			l->runstate_changed(l->opaque, s, reason);
}

void machine_pause(struct machine *m, const char *reason)
{
	if (m->runstate != RUNSTATE_RUNNING)
		return;
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		vcpu_pause(m->vcpus[i]);
	machine_set_runstate(m, RUNSTATE_PAUSED, reason);
}

void machine_resume(struct machine *m)
{
	if (m->runstate != RUNSTATE_PAUSED && m->runstate != RUNSTATE_PRELAUNCH)
		return;
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		vcpu_resume(m->vcpus[i]);
	machine_set_runstate(m, RUNSTATE_RUNNING, NULL);
}

