/*
 * Opening one image of a chain: the host file (with an O_DIRECT twin for
 * cache=none/directsync), the format (given or probed) and, recursively,
 * its backing file, read-only, with a depth limit and loop detection.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk-int.h"
#include "log.h"

static const struct fmt_ops *const formats[] = { &fmt_qcow2, &fmt_raw };

static const struct fmt_ops *fmt_find(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(formats[i]->name, name))
			return formats[i];
	return NULL;
}

static const struct fmt_ops *fmt_probe(int fd)
{
	uint8_t buf[512];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	for (size_t i = 0; n > 0 && i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i]->probe && formats[i]->probe(buf, n))
			return formats[i];
	return &fmt_raw;
}

/* A relative backing name is relative to the directory of its image. */
static char *backing_path(const char *image, const char *name)
{
	char *dup, *dir, *out;

	if (name[0] == '/')
		return strdup(name);
	dup = strdup(image);
	if (!dup)
		return NULL;
	dir = dirname(dup);
	if (asprintf(&out, "%s/%s", dir, name) < 0)
		out = NULL;
	free(dup);
	return out;
}

/*
 * Image locking, compatible with QEMU's (file-posix): one byte per
 * permission at 100 + bit for what we use, and at 200 + bit for what we do
 * not let others use, all as shared OFD locks; a conflict is someone
 * holding the opposite byte.  So qemu-img refuses to write (or check) an
 * image vireo has open for writing, and vireo refuses one that QEMU has.
 */
#define LOCK_PERM_BASE		100
#define LOCK_SHARED_BASE	200
enum { PERM_READ = 1, PERM_WRITE = 2, PERM_WRITE_UNCHANGED = 4, PERM_RESIZE = 8 };
static const char *const perm_names[] = { "consistent read", "write", "write unchanged",
					  "resize" };

static int lock_byte(int fd, int cmd, short type, off_t off, short *held)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = off, .l_len = 1 };

	if (fcntl(fd, cmd, &fl) < 0)
		return -errno;
	if (held)
		*held = fl.l_type;
	return 0;
}

static int image_lock(struct bimg *bs, char *err, size_t errlen)
{
	unsigned perm = bs->readonly ? PERM_READ :
			PERM_READ | PERM_WRITE | PERM_WRITE_UNCHANGED | PERM_RESIZE;
	unsigned shared = PERM_READ | PERM_WRITE_UNCHANGED;
	int ret = 0;

	if (bs->locking == BLK_LOCK_OFF)
		return 0;
	for (int i = 0; i < 4 && !ret; i++) {
		if (perm & (1u << i))
			ret = lock_byte(bs->fd, F_OFD_SETLK, F_RDLCK, LOCK_PERM_BASE + i, NULL);
		if (!ret && !(shared & (1u << i)))
			ret = lock_byte(bs->fd, F_OFD_SETLK, F_RDLCK, LOCK_SHARED_BASE + i, NULL);
	}
	if ((ret == -EINVAL || ret == -ENOTSUP || ret == -ENOLCK) && bs->locking == BLK_LOCK_ON) {
		snprintf(err, errlen, "could not lock '%s': the file system has no OFD locks "
			 "(file.locking=on)", bs->filename);
		return ret;
	}
	if (ret == -EINVAL || ret == -ENOTSUP || ret == -ENOLCK) {
		/* QEMU's locking=auto: no OFD locks on this file system, no locking */
		log_warn("'%s': file system without OFD locks, image not locked", bs->filename);
		return 0;
	}
	for (int i = 0; i < 4 && !ret; i++) {
		short held = F_UNLCK;

		if (perm & (1u << i)) {
			ret = lock_byte(bs->fd, F_OFD_GETLK, F_WRLCK, LOCK_SHARED_BASE + i, &held);
			if (!ret && held != F_UNLCK) {
				snprintf(err, errlen, "could not open '%s': failed to get \"%s\" lock: "
					 "is another process using the image?", bs->filename,
					 perm_names[i]);
				return -EBUSY;
			}
		}
		if (!ret && !(shared & (1u << i))) {
			ret = lock_byte(bs->fd, F_OFD_GETLK, F_WRLCK, LOCK_PERM_BASE + i, &held);
			if (!ret && held != F_UNLCK) {
				snprintf(err, errlen, "could not open '%s': failed to get shared \"%s\" "
					 "lock: is another process using the image?", bs->filename,
					 perm_names[i]);
				return -EBUSY;
			}
		}
	}
	if (ret < 0)
		snprintf(err, errlen, "could not lock '%s': %s", bs->filename, strerror(-ret));
	return ret;
}

/* Let go of every byte image_lock may have taken (all on bs->fd). */
static int image_unlock(struct bimg *bs)
{
	int ret = 0;

	if (bs->locking == BLK_LOCK_OFF)
		return 0;
	for (int i = 0; i < 4 && !ret; i++) {
		ret = lock_byte(bs->fd, F_OFD_SETLK, F_UNLCK, LOCK_PERM_BASE + i, NULL);
		if (!ret)
			ret = lock_byte(bs->fd, F_OFD_SETLK, F_UNLCK, LOCK_SHARED_BASE + i, NULL);
	}
	/* No OFD locks on this file system: nothing was taken. */
	if (ret == -EINVAL || ret == -ENOTSUP || ret == -ENOLCK)
		ret = 0;
	return ret;
}

/*
 * Only a regular file or a block device holds an image (QEMU's file and
 * host_device drivers): a directory, FIFO, socket or character device
 * named by a user or by a backing file name is refused, not read.
 */
static int check_file_type(int fd, const char *file, char *err, size_t errlen)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "could not open '%s': %s", file, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "could not open '%s': not a regular file or block device "
			 "(%s)", file, S_ISDIR(st.st_mode) ? "a directory" :
			 S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" :
			 "a character device");
		return -EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		snprintf(err, errlen, "could not open '%s': %s", file, strerror(errno));
		return -errno;
	}
	return 0;
}

static void bimg_free(struct bimg *bs)
{
	if (bs->dfd >= 0)
		close(bs->dfd);
	if (bs->fd >= 0)
		close(bs->fd);
	free(bs->filename);
	free(bs->backing_name);
	free(bs->backing_fmt);
	free(bs);
}

static int open_backing(struct bimg *bs, char **chain, char *err, size_t errlen)
{
	char *path = backing_path(bs->filename, bs->backing_name);
	char *sub[BLK_MAX_BACKING_DEPTH + 1];

	if (!path)
		return -ENOMEM;
	for (int i = 0; i <= bs->depth; i++)
		sub[i] = chain[i];
	/* Never written, so both processes of a migration may hold it. */
	bs->backing = bimg_open(path, bs->backing_fmt, &(struct bimg_opts){
					.cache = bs->cache, .readonly = true,
					.locking = bs->locking }, bs->depth + 1, sub, err, errlen);
	free(path);
	return bs->backing ? 0 : -EINVAL;
}

/*
 * Open the format without writing anything (as read-only) to learn the
 * size and the backing file, then drop its state: an inactive image is
 * one whose metadata another process may still change.
 */
static int fmt_peek(struct bimg *bs, char *err, size_t errlen)
{
	bool ro = bs->readonly;
	int ret;

	bs->readonly = true;
	ret = bs->fmt->open(bs, err, errlen);
	if (ret >= 0)
		bs->fmt->close(bs);
	bs->readonly = ro;
	return ret;
}

struct bimg *bimg_open(const char *file, const char *format, const struct bimg_opts *o,
		       int depth, char **chain, char *err, size_t errlen)
{
	enum blk_cache cache = o->cache;
	bool readonly = o->readonly, inactive = o->inactive;
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	char *top_chain[BLK_MAX_BACKING_DEPTH + 1];
	char real[PATH_MAX];
	struct bimg *bs;
	int ret;

	if (depth > BLK_MAX_BACKING_DEPTH) {
		snprintf(err, errlen, "'%s': backing chain deeper than %d images",
			 file, BLK_MAX_BACKING_DEPTH);
		return NULL;
	}
	if (!realpath(file, real)) {
		snprintf(err, errlen, "could not open '%s': %s", file, strerror(errno));
		return NULL;
	}
	if (!chain)
		chain = top_chain;
	for (int i = 0; i < depth; i++) {
		if (!strcmp(chain[i], real)) {
			snprintf(err, errlen, "'%s': backing file loop (the chain comes back to '%s')",
				 file, real);
			return NULL;
		}
	}
	bs = calloc(1, sizeof(*bs));
	if (!bs) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	bs->fd = bs->dfd = -1;
	bs->filename = strdup(file);
	bs->readonly = readonly;
	bs->discard_unmap = o->discard_unmap;
	bs->cache = cache;
	bs->locking = o->locking;
	bs->depth = depth;
	bs->inactive = inactive;
	if (cache == BLK_CACHE_WRITETHROUGH || cache == BLK_CACHE_DIRECTSYNC)
		flags |= O_DSYNC;
	/* Non-blocking first: a FIFO named by an image must not hang the open. */
	bs->fd = open(file, flags | O_NONBLOCK);
	if (bs->fd < 0) {
		snprintf(err, errlen, "could not open '%s': %s", file, strerror(errno));
		goto fail;
	}
	if (check_file_type(bs->fd, file, err, errlen) < 0)
		goto fail;
	if (!inactive && image_lock(bs, err, errlen) < 0)
		goto fail;
	if (cache == BLK_CACHE_NONE || cache == BLK_CACHE_DIRECTSYNC) {
		bs->dfd = open(file, flags | O_DIRECT);
		if (bs->dfd < 0) {
			snprintf(err, errlen, "could not open '%s' with O_DIRECT (cache=%s): %s",
				 file, cache == BLK_CACHE_NONE ? "none" : "directsync",
				 strerror(errno));
			goto fail;
		}
	}
	if (format) {
		bs->fmt = fmt_find(format);
		if (!bs->fmt) {
			snprintf(err, errlen, "'%s': unknown format '%s'", file, format);
			goto fail;
		}
	} else {
		bs->fmt = fmt_probe(bs->fd);
		bs->probed = true;
		if (bs->fmt == &fmt_raw && depth == 0)
			log_warn("'%s': image format was not specified, probed as raw; writes "
				 "that would make block 0 look like another format are refused "
				 "(specify format=raw)", file);
	}
	ret = inactive ? fmt_peek(bs, err, errlen) : bs->fmt->open(bs, err, errlen);
	if (ret < 0)
		goto fail;
	if (bs->backing_name) {
		chain[depth] = real;
		if (open_backing(bs, chain, err, errlen) < 0) {
			if (!inactive)
				bs->fmt->close(bs);
			goto fail;
		}
	}
	return bs;
fail:
	bimg_free(bs);
	return NULL;
}

int bimg_close(struct bimg *bs)
{
	int ret;

	if (!bs)
		return 0;
	if (bs->inactive)
		ret = 0;
	else
		ret = bs->fmt->close(bs);
	if (!bs->inactive && !bs->readonly && bs->cache != BLK_CACHE_UNSAFE &&
	    fdatasync(bs->fd) < 0 && !ret)
		ret = -errno;
	if (bs->backing)
		bimg_close(bs->backing);
	bimg_free(bs);
	return ret;
}

int bimg_inactivate(struct bimg *bs)
{
	int ret = 0, ret2;

	if (bs->inactive)
		return 0;
	/* Metadata and data on disk first: on failure the image stays active. */
	if (!bs->readonly) {
		ret = bs->fmt->flush_meta(bs);
		if (ret >= 0)
			ret = bimg_sync(bs);
		if (ret < 0)
			return ret;
	}
	/* The format forgets every table it read; its state is gone either way. */
	ret = bs->fmt->close(bs);
	__atomic_store_n(&bs->inactive, true, __ATOMIC_RELEASE);
	ret2 = image_unlock(bs);
	if (ret2 < 0)
		log_error("'%s': releasing the image locks: %s", bs->filename, strerror(-ret2));
	return ret < 0 ? ret : ret2;
}

static bool same_name(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int bimg_activate(struct bimg *bs, char *err, size_t errlen)
{
	char *backing_name = bs->backing_name, *backing_fmt = bs->backing_fmt;
	int ret;

	if (!bs->inactive)
		return 0;
	ret = image_lock(bs, err, errlen);
	if (ret < 0)
		return ret;
	/* Everything from the file as it is now: nothing read before counts. */
	bs->backing_name = bs->backing_fmt = NULL;
	ret = bs->fmt->open(bs, err, errlen);
	if (ret >= 0 && (!same_name(backing_name, bs->backing_name) ||
			 !same_name(backing_fmt, bs->backing_fmt))) {
		snprintf(err, errlen, "'%s': the backing file changed while another process "
			 "had the image", bs->filename);
		bs->fmt->close(bs);
		ret = -EINVAL;
	}
	if (ret < 0) {
		free(bs->backing_name);
		free(bs->backing_fmt);
		bs->backing_name = backing_name;
		bs->backing_fmt = backing_fmt;
		image_unlock(bs);
		return ret;
	}
	free(backing_name);
	free(backing_fmt);
	__atomic_store_n(&bs->inactive, false, __ATOMIC_RELEASE);
	return 0;
}

int bimg_sync(struct bimg *bs)
{
	if (bs->cache == BLK_CACHE_UNSAFE)
		return 0;
	return fdatasync(bs->fd) < 0 ? -errno : 0;
}

int blk_pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, off + done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += r;
	}
	return 0;
}

int bimg_pread(struct bimg *bs, uint64_t off, void *buf, uint64_t len)
{
	while (len) {
		struct bmap m = { 0 };
		int ret;

		if (!bs || off >= bs->size) {
			memset(buf, 0, len);
			return 0;
		}
		ret = bs->fmt->map_read(bs, off, BLK_MIN(len, bs->size - off), &m);
		if (ret < 0)
			return ret;
		switch (m.kind) {
		case BMAP_DATA:
			ret = blk_pread_full(bs->fd, buf, m.len, m.host);
			break;
		case BMAP_BACKING:
			ret = bimg_pread(bs->backing, off, buf, m.len);
			break;
		case BMAP_COMPRESSED:
			ret = bs->fmt->read_compressed(bs, &m, off, buf, m.len);
			break;
		default:
			memset(buf, 0, m.len);
			break;
		}
		if (m.counted)
			bs->fmt->io_done(bs, m.epoch);
		if (ret < 0)
			return ret;
		off += m.len;
		buf = (char *)buf + m.len;
		len -= m.len;
	}
	return 0;
}
