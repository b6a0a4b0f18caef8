/*
 * Machine events reach the listeners (the monitor's QMP events) on the
 * main loop in the order they were reported, from any thread: an I/O
 * error reported on the main thread after a tray move that a device
 * thread queued is heard second, as it happened.
 */
#include <glib.h>
#include <pthread.h>
#include <string.h>

#include "machine.h"

struct event_log {
	struct machine_listener ml;
	GString *order;
};

static void on_io_error(void *opaque, const struct machine_io_error *e)
{
	struct event_log *log = opaque;

	g_string_append_printf(log->order, "error %s %s;", e->device, e->write ? "write" : "read");
}

static void on_tray(void *opaque, const struct machine_tray_event *e)
{
	struct event_log *log = opaque;

	g_string_append_printf(log->order, "tray %s %s;", e->device, e->tray_open ? "open" : "closed");
}

static void *report_tray(void *opaque)
{
	struct machine_tray_event e = { .device = "cd0", .id = "", .tray_open = true };

	machine_report_tray_moved(opaque, &e);
	return NULL;
}

static void test_event_order(void)
{
	struct machine m;
	struct event_log log = {
		.ml = { .io_error = on_io_error, .tray_moved = on_tray },
		.order = g_string_new(""),
	};
	struct machine_io_error err = {
		.device = "disk0", .write = true, .action = MACHINE_IO_REPORT, .error = 5,
	};
	pthread_t th;

	memset(&m, 0, sizeof(m));
	log.ml.opaque = &log;
	m.ctx = g_main_context_new();
	g_main_context_push_thread_default(m.ctx);
	machine_add_listener(&m, &log.ml);
	/* A device thread's tray move, then the main thread's I/O error. */
	g_assert_cmpint(pthread_create(&th, NULL, report_tray, &m), ==, 0);
	pthread_join(th, NULL);
	machine_report_io_error(&m, &err);
	/* Nothing is heard before the main loop runs. */
	g_assert_cmpstr(log.order->str, ==, "");
	while (g_main_context_iteration(m.ctx, FALSE))
		;
	g_assert_cmpstr(log.order->str, ==, "tray cd0 open;error disk0 write;");
	machine_remove_listener(&m, &log.ml);
	g_main_context_pop_thread_default(m.ctx);
	g_main_context_unref(m.ctx);
	g_string_free(log.order, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/machine/event-order", test_event_order);
	return g_test_run();
}
