/*
 * auto-converge: when pre-copy passes stop shrinking, hold the vCPUs still
 * for a growing share of each 10 ms slice, so the guest dirties memory
 * more slowly than the link drains it.  QEMU's schedule: start at
 * cpu-throttle-initial (20%), add cpu-throttle-increment (10%) per step,
 * at most 99%.
 *
 * The throttle thread pauses and resumes only a guest that is running: a
 * QMP stop wins, and the migration thread ends throttling before it stops
 * the VM for the switch-over.
 */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "machine.h"
#include "migration/migration_int.h"
#include "vcpu.h"

#define SLICE_US 10000

static bool guest_running(struct machine *m)
{
	return __atomic_load_n(&m->runstate, __ATOMIC_ACQUIRE) == RUNSTATE_RUNNING;
}

static void *throttle_thread(void *opaque)
{
	struct migration *mig = opaque;
	struct machine *m = mig->m;

	pthread_mutex_lock(&mig->lock);
	while (!mig->throttle_stop) {
		unsigned pct = mig->throttle;
		struct timespec ts;
		int64_t sleep_us = (int64_t)SLICE_US * pct / (100 - pct);
		bool paused = false;

		pthread_mutex_unlock(&mig->lock);
		if (pct && guest_running(m)) {
			for (unsigned i = 0; i < m->nr_vcpus; i++)
				vcpu_pause(m->vcpus[i]);
			paused = true;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += sleep_us * 1000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_mutex_lock(&mig->lock);
		while (!mig->throttle_stop &&
		       pthread_cond_timedwait(&mig->cond, &mig->lock, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&mig->lock);
		if (paused && guest_running(m))
			for (unsigned i = 0; i < m->nr_vcpus; i++)
				vcpu_resume(m->vcpus[i]);
		/* The guest's share of the slice. */
		usleep(SLICE_US);
		pthread_mutex_lock(&mig->lock);
	}
	pthread_mutex_unlock(&mig->lock);
	return NULL;
}

/* One more pass that did not shrink enough: throttle harder. */
void mig_throttle_step(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	mig->throttle = mig->throttle ? mig->throttle + mig->params.cpu_throttle_increment :
					mig->params.cpu_throttle_initial;
	if (mig->throttle > 99)
		mig->throttle = 99;
	mig->info.cpu_throttle = mig->throttle;
	if (!mig->throttle_running) {
		mig->throttle_stop = false;
		mig->throttle_running = !pthread_create(&mig->throttle_thread, NULL,
							throttle_thread, mig);
		if (mig->throttle_running)
			pthread_setname_np(mig->throttle_thread, "mig/throttle");
	}
	pthread_mutex_unlock(&mig->lock);
}

void mig_throttle_stop(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	mig->throttle_stop = true;
	mig->throttle = 0;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	if (mig->throttle_running) {
		pthread_join(mig->throttle_thread, NULL);
		mig->throttle_running = false;
	}
}
