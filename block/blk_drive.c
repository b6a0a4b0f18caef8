/*
 * Operations on a whole drive rather than on its requests: opening one
 * with snapshot=on (a temporary overlay takes the writes), growing one
 * (block_resize) and putting a new overlay on top of a running one
 * (blockdev-snapshot-sync).  The data path is in blk.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk-int.h"
#include "block.h"
#include "log.h"

struct blk *blk_open_snapshot(const struct blk_config *cfg, char *err, size_t errlen)
{
	struct blk_config base = *cfg, top = *cfg;
	const char *dir = getenv("TMPDIR");
	char *path = NULL, real[PATH_MAX];
	struct blk_info info;
	struct blk *b;
	int fd, ret;

	/* The image as it is: its size and format, and nothing written to it. */
	base.readonly = true;
	b = blk_open(&base, err, errlen);
	if (!b)
		return NULL;
	blk_get_info(b, &info);
	top.format = "qcow2";
	top.readonly = false;
	if (!realpath(cfg->file, real)) {
		snprintf(err, errlen, "snapshot=on: '%s': %s", cfg->file, strerror(errno));
		blk_close(b);
		return NULL;
	}
	if (asprintf(&path, "%s/vireo-snapshot-XXXXXX", dir && *dir ? dir : "/var/tmp") < 0) {
		snprintf(err, errlen, "snapshot=on: out of memory");
		blk_close(b);
		return NULL;
	}
	fd = mkostemp(path, O_CLOEXEC);
	ret = fd < 0 ? -errno : qcow2_create_overlay(fd, info.size, real, info.format, err, errlen);
	blk_close(b);
	if (fd < 0)
		snprintf(err, errlen, "snapshot=on: cannot make a temporary file in %s: %s",
			 dir && *dir ? dir : "/var/tmp", strerror(-ret));
	else
		close(fd);
	b = NULL;
	if (!ret) {
		top.file = path;
		b = blk_open(&top, err, errlen);
	}
	if (fd >= 0)
		unlink(path);
	free(path);
	return b;
}

static void resize_cb(void *opaque, int64_t ret)
{
	*(int64_t *)opaque = ret;
}

/* Run one request to its end on the caller's thread. */
static int64_t resize_wait(struct blk_queue *q, int ret, int64_t *res)
{
	if (ret < 0)
		return ret;
	while (*res == 1) {
		struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

		poll(&p, 1, 1000);
		blk_queue_poll(q);
	}
	return *res;
}

/*
 * A backing file bigger than the old size would show through the new
 * range: make it read as zeroes (zero clusters, partial clusters copied),
 * as QEMU does, and flush.  bs->size is the new size already; the image's
 * header still records the old one.
 */
static int resize_hide_backing(struct blk *b, uint64_t old, char *err, size_t errlen)
{
	struct bimg *bs = b->top;
	struct blk_queue *q;
	int64_t res = 1, ret;

	q = blk_queue_new(b, err, errlen);
	if (!q)
		return -ENOMEM;
	blk_queue_limit(q, false);	/* vireo's own work, not the guest's I/O */
	ret = resize_wait(q, blk_write_zeroes(q, old, BLK_MIN(bs->size, bs->backing->size) - old,
					      false, resize_cb, &res), &res);
	res = 1;
	if (ret >= 0)
		ret = resize_wait(q, blk_flush(q, resize_cb, &res), &res);
	blk_queue_free(q);
	if (ret < 0)
		snprintf(err, errlen, "Could not zero the grown range of '%s' over its bigger "
			 "backing file: %s", b->file, strerror((int)-ret));
	return ret < 0 ? ret : 0;
}

/*
 * Growing (block_resize).  Refusals carry QEMU's wording where it has
 * one.  The size field is read by the device threads' range checks
 * without a lock: the caller has them quiesced (block.h).
 */
int blk_resize(struct blk *b, uint64_t size, char *err, size_t errlen)
{
	struct bimg *bs = b->top;
	char why[256] = "";
	uint64_t old;
	bool hide;
	int ret;

	if (blk_inactive(b)) {
		snprintf(err, errlen, "Block node is inactive: the image was handed over to a "
			 "migration destination");
		return -EPERM;
	}
	if (bs->readonly) {
		snprintf(err, errlen, "Block node is read-only");
		return -EACCES;
	}
	if (size % 512) {
		snprintf(err, errlen, "The new size must be a multiple of 512");
		return -EINVAL;
	}
	if (size == bs->size)
		return 0;
	if (size < bs->size) {
		snprintf(err, errlen, "Shrinking is not supported: '%s' has %llu bytes, more "
			 "than %llu (shrinking would cut off the guest's data)", b->file,
			 (unsigned long long)bs->size, (unsigned long long)size);
		return -ENOTSUP;
	}
	/*
	 * Over a bigger backing file the header takes the new size only once
	 * the grown range reads as zeroes on disk: a crash in between leaves
	 * the old size, never the backing file's bytes in the new range.
	 */
	old = bs->size;
	hide = bs->backing && bs->backing->size > old;
	ret = bs->fmt->resize(bs, size, !hide, why, sizeof(why));
	if (ret < 0)
		goto fail;
	__atomic_store_n(&bs->size, size, __ATOMIC_RELEASE);
	if (!hide)
		return 0;
	ret = resize_hide_backing(b, old, err, errlen);
	if (ret < 0) {
		__atomic_store_n(&bs->size, old, __ATOMIC_RELEASE);
		return ret;
	}
	ret = bs->fmt->resize(bs, size, true, why, sizeof(why));
	if (!ret)
		return 0;
	__atomic_store_n(&bs->size, old, __ATOMIC_RELEASE);
fail:
	snprintf(err, errlen, "Could not resize '%s': %s", b->file, why);
	return ret;
}

struct blk_snapshot {
	struct blk *b;
	struct bimg *top;	/* the new chain, over the old top (inactive) */
	char *file;
};

/*
 * The old top goes inactive (metadata written back, locks released) so
 * that the new chain can open it again, read-only, by its name in the
 * new image; an abort closes that chain first, whose read locks would
 * keep the old top from being taken back for writing.
 */
struct blk_snapshot *blk_snapshot_prepare(struct blk *b, const char *file, char *err,
					  size_t errlen)
{
	struct bimg *old = b->top;
	struct blk_snapshot *s;
	char real[PATH_MAX], why[256] = "";
	int fd, ret;

	if (blk_inactive(b)) {
		snprintf(err, errlen, "Block node is inactive: the image was handed over to a "
			 "migration destination");
		return NULL;
	}
	if (old->readonly) {
		snprintf(err, errlen, "Block node is read-only");
		return NULL;
	}
	if (!realpath(old->filename, real)) {
		snprintf(err, errlen, "'%s': %s", old->filename, strerror(errno));
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s)
		s->file = strdup(file);
	if (!s || !s->file) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->b = b;
	/* Never over an existing file: it may be someone's image. */
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "Could not create '%s': %s", file, strerror(errno));
		goto free;
	}
	ret = qcow2_create_overlay(fd, old->size, real, old->fmt->name, why, sizeof(why));
	if (!ret && fsync(fd) < 0) {
		ret = -errno;
		snprintf(why, sizeof(why), "%s", strerror(-ret));
	}
	close(fd);
	if (ret < 0) {
		snprintf(err, errlen, "Could not create '%s': %s", file, why);
		goto unlink;
	}
	ret = bimg_inactivate(old);
	if (ret < 0) {
		snprintf(err, errlen, "Could not write back '%s': %s", b->file, strerror(-ret));
		goto reactivate;
	}
	s->top = bimg_open(file, "qcow2", &(struct bimg_opts){
				   .cache = old->cache, .discard_unmap = old->discard_unmap,
				   .locking = old->locking }, 0, NULL, err, errlen);
	if (s->top)
		return s;
reactivate:
	if (old->inactive && bimg_activate(old, why, sizeof(why)) < 0)
		log_error("block: '%s' stays inactive after a failed snapshot: %s", b->file, why);
unlink:
	unlink(file);
free:
	free(s->file);
	free(s);
	return NULL;
}

void blk_snapshot_commit(struct blk_snapshot *s)
{
	struct blk *b = s->b;

	bimg_close(b->top);	/* inactive: only its handles */
	b->top = s->top;
	free(b->file);
	b->file = s->file;
	free(s);
}

void blk_snapshot_abort(struct blk_snapshot *s)
{
	char why[256];

	bimg_close(s->top);
	if (bimg_activate(s->b->top, why, sizeof(why)) < 0)
		log_error("block: '%s' stays inactive after a failed snapshot: %s", s->b->file,
			  why);
	unlink(s->file);
	free(s->file);
	free(s);
}
