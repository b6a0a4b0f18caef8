/*
 * vCPU threads and their run/pause/stop state machine (see vcpu.h).
 *
 * The loop below runs the guest through the accelerator and hands port
 * and MMIO exits to the buses; it holds no device logic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "accel/accel.h"
#include "log.h"
#include "machine.h"
#include "vcpu.h"

__thread struct vcpu *current_vcpu;

struct vcpu *vcpu_create(struct machine *m, unsigned index, char *err, size_t errlen)
{
	struct vcpu *v = calloc(1, sizeof(*v));

	v->m = m;
	v->index = index;
	v->apic_id = index;
	v->state = v->target = VCPU_CREATED;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	if (m->accel->vcpu_init(v, err, errlen)) {
		pthread_cond_destroy(&v->cond);
		pthread_mutex_destroy(&v->lock);
		free(v);
		return NULL;
	}
	return v;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	vcpu_stop(v);
	v->m->accel->vcpu_destroy(v);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static void vcpu_pio(struct machine *m, struct accel_exit *e)
{
	unsigned size = e->pio.size;
	uint8_t *p = e->pio.data;

	for (uint32_t i = 0; i < e->pio.count; i++, p += size) {
		uint64_t v = 0;

		if (e->pio.write) {
			memcpy(&v, p, size);
			bus_write(&m->pio, e->pio.port, size, v);
		} else {
			v = bus_read(&m->pio, e->pio.port, size);
			memcpy(p, &v, size);
		}
	}
}

static void vcpu_mmio(struct machine *m, struct accel_exit *e)
{
	uint64_t v = 0;
	unsigned size = e->mmio.size;

	if (e->mmio.write) {
		memcpy(&v, e->mmio.data, size);
		bus_write(&m->mmio, e->mmio.addr, size, v);
	} else {
		v = bus_read(&m->mmio, e->mmio.addr, size);
		memcpy(e->mmio.data, &v, size);
	}
}

/* Handle one exit; false when the vCPU must wait for the machine (halt with no way out). */
static bool vcpu_handle_exit(struct vcpu *v, struct accel_exit *e)
{
	struct machine *m = v->m;

	switch (e->reason) {
	case ACCEL_EXIT_PIO:
		vcpu_pio(m, e);
		return !machine_request_pending(m);
	case ACCEL_EXIT_MMIO:
		vcpu_mmio(m, e);
		return !machine_request_pending(m);
	case ACCEL_EXIT_KICK:
		return true;
	case ACCEL_EXIT_HALT:
		/* Only a pause, stop or reset gets this vCPU out. */
		return false;
	case ACCEL_EXIT_SHUTDOWN:
		log_info("vCPU %u: triple fault, resetting the machine", v->index);
		machine_request_reset(m);
		return false;
	case ACCEL_EXIT_RESET:
		machine_request_reset(m);
		return false;
	case ACCEL_EXIT_POWEROFF:
		machine_request_poweroff(m);
		return false;
	case ACCEL_EXIT_ERROR:
		machine_request_error(m, "vCPU %u: %s", v->index, e->error.msg);
		return false;
	}
	return true;
}

static void *vcpu_thread(void *opaque)
{
	struct vcpu *v = opaque;
	struct machine *m = v->m;
	char name[16];

	current_vcpu = v;
	snprintf(name, sizeof(name), "CPU %u/%s", v->index, m->accel->thread_suffix);
	pthread_setname_np(pthread_self(), name);

	pthread_mutex_lock(&v->lock);
	/* vcpu_start waits for this: see there. */
	v->tid = syscall(SYS_gettid);
	pthread_cond_broadcast(&v->cond);
	for (;;) {
		struct accel_exit e;
		int ret;

		if (v->target == VCPU_STOPPED)
			break;
		if (v->target == VCPU_PAUSED) {
			v->state = VCPU_PAUSED;
			pthread_cond_broadcast(&v->cond);
			pthread_cond_wait(&v->cond, &v->lock);
			continue;
		}
		v->state = VCPU_RUNNING;
		pthread_mutex_unlock(&v->lock);

		v->posted_request = false;
		ret = m->accel->vcpu_run(v, &e);
		if (ret) {
			machine_request_error(m, "vCPU %u: %s run failed: %s", v->index,
					      m->accel->name, strerror(-ret));
			e.reason = ACCEL_EXIT_HALT;
		} else {
			v->exits++;
		}
		if (ret || !vcpu_handle_exit(v, &e)) {
			/*
			 * Park until the machine asks anything of us.  The
			 * generation, not the target, says so: a pause and a
			 * resume may both happen before this thread wakes.
			 */
			unsigned gen;

			pthread_mutex_lock(&v->lock);
			gen = v->target_gen;
			while (v->target == VCPU_RUNNING && v->target_gen == gen) {
				v->state = VCPU_PAUSED;
				pthread_cond_broadcast(&v->cond);
				pthread_cond_wait(&v->cond, &v->lock);
			}
			continue;
		}
		pthread_mutex_lock(&v->lock);
	}
	v->state = VCPU_STOPPED;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

int vcpu_start(struct vcpu *v, bool paused)
{
	int ret;

	v->target = paused ? VCPU_PAUSED : VCPU_RUNNING;
	ret = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (ret)
		return -ret;
	v->thread_started = true;
	/*
	 * Return once the thread has said who it is (and is named): the main
	 * loop reads tid unlocked for query-cpus-fast, which libvirt sends
	 * right after start to pin the vCPU threads.
	 */
	pthread_mutex_lock(&v->lock);
	while (!v->tid)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* Set the target and wait until the thread is no longer in the guest. */
static void vcpu_set_target(struct vcpu *v, enum vcpu_state target)
{
	pthread_mutex_lock(&v->lock);
	if (v->state == VCPU_STOPPED || !v->thread_started) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	v->target = target;
	v->target_gen++;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	v->m->accel->vcpu_kick(v);

	pthread_mutex_lock(&v->lock);
	while (v->state == VCPU_RUNNING || v->state == VCPU_CREATED)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
}

void vcpu_pause(struct vcpu *v)
{
	vcpu_set_target(v, VCPU_PAUSED);
}

void vcpu_resume(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	if (v->state != VCPU_STOPPED) {
		v->target = VCPU_RUNNING;
		v->target_gen++;
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
}

void vcpu_stop(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	vcpu_set_target(v, VCPU_STOPPED);
	pthread_join(v->thread, NULL);
	v->thread_started = false;
	v->tid = 0;
}

enum vcpu_state vcpu_get_state(struct vcpu *v)
{
	enum vcpu_state s;

	pthread_mutex_lock(&v->lock);
	s = v->state;
	pthread_mutex_unlock(&v->lock);
	return s;
}
