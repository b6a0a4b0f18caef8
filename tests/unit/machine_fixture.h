/*
 * A bare machine for device unit tests: both buses, a main context and the
 * machine lock, no RAM.  The test names the accelerator ops its device
 * calls (set_irq, send_msi), or NULL when the device raises nothing.
 */
#ifndef VIREO_TEST_MACHINE_FIXTURE_H
#define VIREO_TEST_MACHINE_FIXTURE_H

#include "accel/accel.h"
#include "machine.h"

struct machine *fixture_machine_new(const struct accel_ops *accel);
/* Destroys the devices the test created, then the machine. */
void fixture_machine_free(struct machine *m);

#endif
