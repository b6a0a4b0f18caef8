/*
 * Accelerator selection: "-accel kvm:tcg" tries each in turn; one that is
 * not usable says why in one line and the next is tried.  Options after a
 * name ("kvm,dirty-ring-size=4096") are the accelerator's to parse.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "accel/accel.h"
#include "log.h"

static const struct accel_ops *const accels[] = {
	&kvm_accel_ops,
	&tcg_accel_ops,
};

/* Accelerators that exist by name but are not built into this vireo. */
static const char *const planned[] = { "xen" };

/*
 * name is bare: its properties ("tcg,jit=off", "kvm,dirty-ring-size=N")
 * are checked by the accelerator once it is chosen, so a mistyped one is
 * an error, never a silent fall-back to the next accelerator.
 */
static const struct accel_ops *accel_find(const char *name, char *why, size_t len)
{
	for (size_t i = 0; i < sizeof(accels) / sizeof(accels[0]); i++)
		if (!strcmp(accels[i]->name, name))
			return accels[i];
	for (size_t i = 0; i < sizeof(planned) / sizeof(planned[0]); i++) {
		if (!strcmp(planned[i], name)) {
			snprintf(why, len, "%s: not available in this build of vireo", name);
			return NULL;
		}
	}
	snprintf(why, len, "%s: unknown accelerator (known: kvm, tcg, xen)", name);
	return NULL;
}

const struct accel_ops *accel_select(const char *list, char *err, size_t errlen)
{
	char buf[256], why[256] = "";
	char *names[8], *save;
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s", list && *list ? list : "kvm:tcg");
	for (char *t = strtok_r(buf, ":", &save); t && n < 8; t = strtok_r(NULL, ":", &save)) {
		t[strcspn(t, ",")] = 0;
		names[n++] = t;
	}
	if (!n) {
		snprintf(err, errlen, "-accel: no accelerator named");
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct accel_ops *ops = accel_find(names[i], why, sizeof(why));

		if (ops && ops->probe(why, sizeof(why)) == 0)
			return ops;
		/* Earlier ones are logged; the last one's reason becomes the error. */
		if (i + 1 < n)
			log_warn("-accel %s; trying %s", why, names[i + 1]);
	}
	snprintf(err, errlen, "-accel %s", why);
	return NULL;
}
