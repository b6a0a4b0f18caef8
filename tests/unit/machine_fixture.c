/* The bare machine of machine_fixture.h. */
#include <glib.h>

#include "bus.h"
#include "machine_fixture.h"

struct machine *fixture_machine_new(const struct accel_ops *accel)
{
	struct machine *m = g_new0(struct machine, 1);

	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	m->ctx = g_main_context_new();
	m->accel = accel;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void fixture_machine_free(struct machine *m)
{
	while (m->devices) {
		struct device *d = m->devices;

		m->devices = d->next;
		if (d->destroy)
			d->destroy(d);
	}
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	g_main_context_unref(m->ctx);
	pthread_mutex_destroy(&m->lock);
	g_free(m);
}
