/*
 * vCPU threads.  Each vCPU runs on its own host thread, named "CPU n/KVM"
 * (suffix from the accelerator), with an explicit state machine that other
 * threads drive:
 *
 *   CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *        \                 \                        /
 *         +-------------- stop --> STOPPED <-------+
 *
 * vcpu_pause() returns only once the thread is outside the guest, so the
 * caller may then read or write its state.
 */
#ifndef VIREO_VCPU_H
#define VIREO_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpu.h"

struct machine;

enum vcpu_state { VCPU_CREATED, VCPU_RUNNING, VCPU_PAUSED, VCPU_STOPPED };

struct vcpu {
	struct machine *m;
	unsigned index;
	uint32_t apic_id;
	void *accel_state;		/* the accelerator's per-vCPU data */

	pthread_t thread;
	pid_t tid;			/* host thread id, set before vcpu_start returns */
	bool thread_started;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vcpu_state state;		/* what the thread is doing */
	enum vcpu_state target;		/* what it was asked to do */
	unsigned target_gen;		/* bumped on every request, so none is missed */

	uint64_t exits;			/* exits handled, for statistics */
	/*
	 * This vCPU's guest access posted a machine request (power-off,
	 * reset, exit) since it last entered the guest: it must not run on,
	 * even once the main thread has taken the request.  vCPU thread only.
	 */
	bool posted_request;
};

/* The vCPU whose thread is running (NULL on other threads): lets a device
 * with per-CPU registers, like a LAPIC, tell which vCPU accessed it. */
extern __thread struct vcpu *current_vcpu;

struct vcpu *vcpu_create(struct machine *m, unsigned index, char *err, size_t errlen);
void vcpu_destroy(struct vcpu *v);
/*
 * Start the host thread; it runs the guest at once unless paused is set.
 * On return the thread exists under its name and tid is its host id.
 */
int vcpu_start(struct vcpu *v, bool paused);
void vcpu_pause(struct vcpu *v);
void vcpu_resume(struct vcpu *v);
/* Stop and join the thread. */
void vcpu_stop(struct vcpu *v);
enum vcpu_state vcpu_get_state(struct vcpu *v);

#endif
