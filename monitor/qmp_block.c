/*
 * block_resize (QMP, and HMP through human-monitor-command): grow a
 * drive's image while the VM runs and tell the guest, as cloud hosts do
 * with virsh blockresize.  vireo never shrinks (docs/qmp.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "machine.h"
#include "migration.h"
#include "monitor/qmp_int.h"

int qmp_block_resize_drive(struct machine *m, const char *device, const char *node,
			   int64_t size, char *err, size_t errlen)
{
	struct drive *d = NULL;
	char why[200];

	if (device && node) {
		snprintf(err, errlen, "Only one of device and node-name may be given");
		return -EINVAL;
	}
	/* A drive's only node is named by its id (query-blockstats' node-name). */
	if (device || node)
		d = drive_find(m, device ? device : node);
	if (!d) {
		snprintf(err, errlen, "Cannot find device='%s' nor node-name='%s'",
			 device ? device : "", node ? node : "");
		return -ENODEV;
	}
	if (size < 0) {
		snprintf(err, errlen, "Parameter 'size' expects a >0 size");
		return -EINVAL;
	}
	/* The destination would not learn of it, and may own the image already. */
	if (migration_locks_devices(m, why, sizeof(why))) {
		snprintf(err, errlen, "block_resize not allowed while migrating: %s", why);
		return -EBUSY;
	}
	return drive_resize(d, size, err, errlen);
}

JsonNode *qmp_block_resize(struct machine *m, struct qmp_client *c, JsonObject *args,
			   struct qmp_error *err)
{
	const char *device = json_object_has_member(args, "device") ?
			     json_object_get_string_member(args, "device") : NULL;
	const char *node = json_object_has_member(args, "node-name") ?
			   json_object_get_string_member(args, "node-name") : NULL;
	char msg[512];

	if (qmp_block_resize_drive(m, device, node, json_object_get_int_member(args, "size"),
				   msg, sizeof(msg)) < 0) {
		qmp_set_error(err, QMP_ERR_GENERIC, "%s", msg);
		return NULL;
	}
	return qmp_new_object(NULL);
}

/* HMP's size argument: bytes, or a number with a k/M/G/T suffix (powers of 1024). */
int hmp_parse_size(const char *s, int64_t *out)
{
	char *end;
	double v;
	int shift = 0;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case 'b': case 'B': end++; break;
	}
	if (*end || v * (double)(1ull << shift) >= 9.2e18)
		return -EINVAL;
	*out = (int64_t)(v * (double)(1ull << shift));
	return 0;
}
