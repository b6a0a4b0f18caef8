/*
 * auto-converge's schedule (20%, then +10% per step, at most 99%) and the
 * throttle thread's life: it runs once a step asks for it and is joined
 * by stop, which also clears the percentage.
 */
#include <glib.h>
#include <string.h>

#include "machine.h"
#include "migration/migration_int.h"

static void test_schedule(void)
{
	struct machine m;
	struct migration *mig;
	static const unsigned want[] = { 20, 30, 40, 50, 60, 70, 80, 90, 99, 99 };

	memset(&m, 0, sizeof(m));
	m.ctx = g_main_context_new();
	mig = migration_get(&m);
	g_assert_false(mig->throttle_running);
	for (unsigned i = 0; i < G_N_ELEMENTS(want); i++) {
		mig_throttle_step(mig);
		g_assert_cmpuint(mig->throttle, ==, want[i]);
		g_assert_cmpuint(mig->info.cpu_throttle, ==, want[i]);
		g_assert_true(mig->throttle_running);
	}
	mig_throttle_stop(mig);
	g_assert_false(mig->throttle_running);
	g_assert_cmpuint(mig->throttle, ==, 0);
	/* A later migration starts from 20% again. */
	mig_throttle_step(mig);
	g_assert_cmpuint(mig->throttle, ==, 20);
	mig_throttle_stop(mig);
	migration_destroy(&m);
	g_assert_null(m.migration);
	g_main_context_unref(m.ctx);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/migration/throttle/schedule", test_schedule);
	return g_test_run();
}
