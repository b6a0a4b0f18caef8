/*
 * -drive: parse the QEMU-style option string, open the image and link the
 * drive into the machine.  Devices (virtio-blk) find drives by id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "log.h"
#include "machine.h"
#include "options.h"

static const char *const media_words[] = { "disk", "cdrom", NULL };
static const char *const if_words[] = { "virtio", "none", NULL };
static const char *const format_words[] = { "raw", "qcow2", NULL };
static const char *const cache_words[] = { "writeback", "none", "writethrough",
					   "directsync", "unsafe", NULL };
static const char *const aio_words[] = { "io_uring", "native", "threads", NULL };
/* "on"/"off" are QEMU's old spellings of unmap/ignore. */
static const char *const discard_words[] = { "ignore", "unmap", "off", "on", NULL };

/* In enum blk_error_policy order; reads cannot take "enospc", as in QEMU. */
static const char *const werror_words[] = { "report", "ignore", "stop", "enospc", NULL };
static const char *const rerror_words[] = { "report", "ignore", "stop", NULL };
/* In enum blk_locking and enum blk_detect_zeroes order. */
static const char *const locking_words[] = { "auto", "on", "off", NULL };
static const char *const dz_words[] = { "off", "on", "unmap", NULL };

static const enum blk_cache cache_values[] = { BLK_CACHE_WRITEBACK, BLK_CACHE_NONE,
					       BLK_CACHE_WRITETHROUGH, BLK_CACHE_DIRECTSYNC,
					       BLK_CACHE_UNSAFE };
static const enum blk_aio aio_values[] = { BLK_AIO_IO_URING, BLK_AIO_NATIVE, BLK_AIO_THREADS };

struct drive *drive_find(struct machine *m, const char *id)
{
	for (struct drive *d = m->drives; d; d = d->next)
		if (!strcmp(d->id, id))
			return d;
	return NULL;
}

struct drive_resize_args {
	uint64_t size;
	char *err;
	size_t errlen;
};

static int drive_do_resize(struct drive *d, void *arg)
{
	struct drive_resize_args *a = arg;

	return blk_resize(d->blk, a->size, a->err, a->errlen);
}

int drive_resize(struct drive *d, uint64_t size, char *err, size_t errlen)
{
	struct drive_resize_args a = { size, err, errlen };

	if (!d->blk) {
		snprintf(err, errlen, "Device '%s' has no medium", d->id);
		return -ENOMEDIUM;
	}
	/* A drive no device uses has no I/O to stop. */
	if (d->quiesced)
		return d->quiesced(d, drive_do_resize, &a);
	return drive_do_resize(d, &a);
}

static void drive_free(struct drive *d)
{
	free(d->id);
	free(d->iface);
	free((char *)d->cfg.file);
	free((char *)d->cfg.format);
	free(d);
}

static char *auto_id(struct machine *m, const char *iface)
{
	char buf[32];

	for (int i = 0;; i++) {
		snprintf(buf, sizeof(buf), "%s%d", iface, i);
		if (!drive_find(m, buf))
			return strdup(buf);
	}
}

/*
 * One limit: its throttling.* key, or QEMU's older spelling of it (the
 * QMP name: bps_rd, iops_max, iops_size), which old scripts still use.
 */
static int drive_limit(struct opts *o, const char *key, const char *legacy, uint64_t *out,
		       char *err, size_t errlen)
{
	if (legacy && opts_get(o, key) && opts_get(o, legacy)) {
		snprintf(err, errlen, "-drive: %s and %s are the same limit; give one", key,
			 legacy);
		return -EINVAL;
	}
	if (legacy && opts_get(o, legacy))
		key = legacy;
	return opts_get_uint(o, key, 0, out, err, errlen);
}

/* throttling.*: the limits, checked. */
static int drive_throttle_opts(struct opts *o, struct blk_throttle_limits *l, char *err,
			       size_t errlen)
{
	char key[64], legacy[64], msg[256];
	int ret;

	for (int i = 0; i < BLK_THR_NR; i++) {
		const char *name = blk_throttle_name(i, true);

		if (drive_limit(o, name, blk_throttle_name(i, false), &l->avg[i], err, errlen) < 0)
			return -EINVAL;
		snprintf(key, sizeof(key), "%s-max", name);
		snprintf(legacy, sizeof(legacy), "%s_max", blk_throttle_name(i, false));
		if (drive_limit(o, key, legacy, &l->max[i], err, errlen) < 0)
			return -EINVAL;
		snprintf(key, sizeof(key), "%s-max-length", name);
		if (drive_limit(o, key, NULL, &l->max_len[i], err, errlen) < 0)
			return -EINVAL;
	}
	if (drive_limit(o, "throttling.iops-size", "iops_size", &l->iops_size, err, errlen) < 0)
		return -EINVAL;
	ret = blk_throttle_check(l, true, msg, sizeof(msg));
	if (ret < 0)
		snprintf(err, errlen, "-drive: %s", msg);
	return ret;
}

/*
 * throttling.group=NAME: the first drive to name a group gives it its
 * limits; the others join it with the same limits or none.
 */
static int drive_throttle_group(struct machine *m, struct drive *d, const char *group,
				char *err, size_t errlen)
{
	struct blk_throttle_limits have;

	if (!*group) {
		snprintf(err, errlen, "-drive: throttling.group is empty");
		return -EINVAL;
	}
	for (struct drive *o = m->drives; o; o = o->next) {
		const char *name = o->blk ? blk_throttle_group(o->blk) : NULL;

		if (!name || strcmp(name, group))
			continue;
		blk_get_throttle(o->blk, &have);
		if (blk_throttle_enabled(&d->cfg.throttle) &&
		    memcmp(&have, &d->cfg.throttle, sizeof(have))) {
			snprintf(err, errlen, "-drive: throttling.group=%s has other limits (set by "
				 "drive '%s'): give the same, or none", group, o->id);
			return -EINVAL;
		}
		blk_share_throttle(d->blk, o->blk);
		d->cfg.throttle = have;
		return 0;
	}
	if (blk_name_throttle_group(d->blk, group) < 0) {
		snprintf(err, errlen, "-drive: out of memory");
		return -ENOMEM;
	}
	return 0;
}

int drive_add(struct machine *m, const char *optstr, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-drive", optstr, "file", err, errlen);
	const char *file, *id, *group;
	struct drive *d = NULL, **tail;
	int iface, fmt = -1, cache, aio, discard, werror, rerror, media, locking, dz, ret = -EINVAL;
	struct blk_throttle_limits limits = { 0 };
	bool ro, snapshot;

	if (!o)
		return -EINVAL;
	file = opts_get(o, "file");
	id = opts_get(o, "id");
	iface = opts_get_enum(o, "if", if_words, 0, err, errlen);
	if (iface < 0)
		goto out;
	if (opts_get(o, "format")) {
		fmt = opts_get_enum(o, "format", format_words, 0, err, errlen);
		if (fmt < 0)
			goto out;
	}
	cache = opts_get_enum(o, "cache", cache_words, 0, err, errlen);
	if (cache < 0)
		goto out;
	aio = opts_get_enum(o, "aio", aio_words, 0, err, errlen);
	if (aio < 0)
		goto out;
	discard = opts_get_enum(o, "discard", discard_words, 0, err, errlen);
	if (discard < 0)
		goto out;
	werror = opts_get_enum(o, "werror", werror_words, BLK_ERR_ENOSPC, err, errlen);
	if (werror < 0)
		goto out;
	rerror = opts_get_enum(o, "rerror", rerror_words, BLK_ERR_REPORT, err, errlen);
	if (rerror < 0)
		goto out;
	media = opts_get_enum(o, "media", media_words, 0, err, errlen);
	if (media < 0)
		goto out;
	locking = opts_get_enum(o, "file.locking", locking_words, BLK_LOCK_AUTO, err, errlen);
	if (locking < 0)
		goto out;
	dz = opts_get_enum(o, "detect-zeroes", dz_words, BLK_DZ_OFF, err, errlen);
	if (dz < 0)
		goto out;
	if (drive_throttle_opts(o, &limits, err, errlen) < 0)
		goto out;
	group = opts_get(o, "throttling.group");
	/* A CD is read-only, as QEMU makes a media=cdrom drive. */
	if (opts_get_bool(o, "readonly", media == 1, &ro, err, errlen) < 0 ||
	    opts_get_bool(o, "snapshot", false, &snapshot, err, errlen) < 0)
		goto out;
	if (opts_check_all_used(o, err, errlen) < 0)
		goto out;
	if (!file || !*file) {
		snprintf(err, errlen, media == 1 ?
			 "-drive: file= is required (for an empty CD tray, give the scsi-cd no drive=)" :
			 "-drive: file= is required");
		goto out;
	}
	/*
	 * The overlay lives in a deleted file on this host: neither a migration
	 * nor the destination of one can have the guest's writes.
	 */
	if (snapshot && m->incoming) {
		snprintf(err, errlen, "-drive %s: snapshot=on cannot take an incoming migration",
			 file);
		goto out;
	}
	if (id && drive_find(m, id)) {
		snprintf(err, errlen, "-drive: duplicate id '%s'", id);
		goto out;
	}
	/* As QEMU: Linux AIO needs O_DIRECT, or it silently blocks. */
	if (aio_values[aio] == BLK_AIO_NATIVE &&
	    cache_values[cache] != BLK_CACHE_NONE && cache_values[cache] != BLK_CACHE_DIRECTSYNC) {
		snprintf(err, errlen, "-drive: aio=native requires cache=none or cache=directsync "
			 "(cache='%s')", cache_words[cache]);
		goto out;
	}

	d = calloc(1, sizeof(*d));
	if (!d) {
		ret = -ENOMEM;
		snprintf(err, errlen, "-drive: out of memory");
		goto out;
	}
	d->iface = strdup(if_words[iface]);
	d->id = id ? strdup(id) : auto_id(m, if_words[iface]);
	d->cfg.file = strdup(file);
	d->cfg.format = fmt >= 0 ? strdup(format_words[fmt]) : NULL;
	d->cfg.cache = cache_values[cache];
	d->cfg.aio = aio_values[aio];
	d->cfg.readonly = ro;
	d->cfg.discard_unmap = discard == 1 || discard == 3;
	d->cfg.locking = locking;
	d->cfg.detect_zeroes = dz;
	d->cfg.throttle = limits;
	d->cfg.inactive = m->incoming;
	d->werror = werror;
	d->rerror = rerror;
	d->io_status = BLK_IOSTATUS_OK;
	d->snapshot = snapshot && !ro;		/* read-only: nothing to keep away */
	d->blk = d->snapshot ? blk_open_snapshot(&d->cfg, err, errlen) :
			       blk_open(&d->cfg, err, errlen);
	if (!d->blk) {
		drive_free(d);
		goto out;
	}
	if (group && drive_throttle_group(m, d, group, err, errlen) < 0) {
		blk_close(d->blk);
		drive_free(d);
		goto out;
	}
	for (tail = &m->drives; *tail; tail = &(*tail)->next)
		;
	*tail = d;
	ret = 0;
out:
	opts_free(o);
	return ret;
}

/*
 * A snapshot over several drives: each device quiesced in turn (once per
 * quiesce_key), nested, so that at the innermost all are; there every
 * image is prepared, and committed only when all were.
 */
struct drive_snapshot_set {
	struct drive *const *d;
	const char *const *file;
	unsigned n, next;
	char *err;
	size_t errlen;
};

static int drive_snapshot_all(struct drive *unused, void *arg)
{
	struct drive_snapshot_set *c = arg;
	struct blk_snapshot **s;
	unsigned i;

	while (c->next < c->n) {
		struct drive *d = c->d[c->next++];
		bool seen = false;

		for (i = 0; i + 1 < c->next; i++)
			seen |= c->d[i]->quiesced && c->d[i]->quiesce_key == d->quiesce_key;
		if (d->quiesced && !seen)
			return d->quiesced(d, drive_snapshot_all, c);
	}
	s = calloc(c->n, sizeof(*s));
	if (!s) {
		snprintf(c->err, c->errlen, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < c->n; i++) {
		s[i] = blk_snapshot_prepare(c->d[i]->blk, c->file[i], c->err, c->errlen);
		if (!s[i])
			break;
	}
	if (i < c->n) {
		while (i--)
			blk_snapshot_abort(s[i]);
		free(s);
		return -EIO;
	}
	for (i = 0; i < c->n; i++)
		blk_snapshot_commit(s[i]);
	free(s);
	return 0;
}

static int drive_snapshot_check(struct drive *const *d, unsigned i, char *err, size_t errlen)
{
	for (unsigned j = 0; j < i; j++) {
		if (d[j] == d[i]) {
			snprintf(err, errlen, "Drive '%s' is named twice", d[i]->id);
			return -EINVAL;
		}
	}
	if (!d[i]->blk) {
		snprintf(err, errlen, "Device '%s' has no medium", d[i]->id);
		return -ENOMEDIUM;
	}
	if (d[i]->snapshot) {
		snprintf(err, errlen, "Drive '%s' has snapshot=on: its writes are in a temporary "
			 "overlay that is gone when vireo exits, no image to build on", d[i]->id);
		return -ENOTSUP;
	}
	if (d[i]->claimed && !d[i]->quiesced) {
		snprintf(err, errlen, "Drive '%s' is used by a device that cannot take a "
			 "snapshot (a CD or a passthrough unit)", d[i]->id);
		return -ENOTSUP;
	}
	return 0;
}

int drive_snapshot(struct drive *const *d, const char *const *file, unsigned n, char *err,
		   size_t errlen)
{
	struct drive_snapshot_set c = { d, file, n, 0, err, errlen };
	char **name = calloc(n, sizeof(*name));
	int ret = name ? 0 : -ENOMEM;

	for (unsigned i = 0; i < n && !ret; i++) {
		ret = drive_snapshot_check(d, i, err, errlen);
		if (!ret && !(name[i] = strdup(file[i])))
			ret = -ENOMEM;
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (!ret)
		ret = drive_snapshot_all(NULL, &c);
	for (unsigned i = 0; i < n && name; i++) {
		if (ret) {
			free(name[i]);
			continue;
		}
		/* A reopen (a migration handover) and query-block use the new image. */
		free((char *)d[i]->cfg.file);
		free((char *)d[i]->cfg.format);
		d[i]->cfg.file = name[i];
		d[i]->cfg.format = strdup("qcow2");
	}
	free(name);
	return ret;
}

enum blk_error_policy drive_error_action(const struct drive *d, bool write, int error)
{
	enum blk_error_policy p = write ? d->werror : d->rerror;

	if (p == BLK_ERR_ENOSPC)
		return error == ENOSPC ? BLK_ERR_STOP : BLK_ERR_REPORT;
	return p;
}

bool drive_can_stop(const struct drive *d)
{
	return d->werror == BLK_ERR_STOP || d->werror == BLK_ERR_ENOSPC ||
	       d->rerror == BLK_ERR_STOP;
}

void drive_close_all(struct machine *m)
{
	while (m->drives) {
		struct drive *d = m->drives;

		m->drives = d->next;
		blk_close(d->blk);
		drive_free(d);
	}
}
