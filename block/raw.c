/*
 * raw: the guest sees the host file (or block device) byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk-int.h"
#include "log.h"

static int raw_open(struct bimg *bs, char *err, size_t errlen)
{
	off_t end = lseek(bs->fd, 0, SEEK_END);

	if (end < 0) {
		snprintf(err, errlen, "'%s': cannot find its size: %s", bs->filename,
			 strerror(errno));
		return -errno;
	}
	bs->size = end;
	return 0;
}

static int raw_close(struct bimg *bs)
{
	return 0;
}

static int raw_map(struct bimg *bs, uint64_t off, uint64_t len, struct bmap *m)
{
	m->kind = BMAP_DATA;
	m->host = off;
	m->len = len;
	return 0;
}

/*
 * A probed raw image must not turn into a qcow2 one: the guest could then
 * name any host file as its backing file at the next start (as QEMU, the
 * write fails with EPERM).
 */
static int raw_map_write(struct bimg *bs, uint64_t off, uint64_t len,
			 const struct iovec *iov, int iovcnt, size_t iov_off, struct bmap *m)
{
	if (bs->probed && off < 8 && iov) {
		uint8_t head[8] = { 0 };
		size_t n = BLK_MIN(len, 8 - off);

		if (pread(bs->fd, head, sizeof(head), 0) < 0)
			return -errno;
		iov_copy_from(iov, iovcnt, iov_off, head + off, n);
		if (fmt_qcow2.probe(head, sizeof(head))) {
			log_once("'%s': refused a guest write that would make this probed "
				 "raw image look like qcow2", bs->filename);
			return -EPERM;
		}
	}
	return raw_map(bs, off, len, m);
}

static int raw_write_zeroes(struct bimg *bs, uint64_t off, uint64_t len, bool may_unmap,
			    struct bmap *m)
{
	return raw_map(bs, off, len, m);
}

static int raw_flush_meta(struct bimg *bs)
{
	return 0;
}

/*
 * A file grows with ftruncate (sparse: the new range reads as zeroes).  A
 * block device cannot be grown from here: its size is what its owner made
 * it, so only a size it already has is accepted (the device was grown
 * first, as with QEMU's host_device).  A raw image has no backing file,
 * so the size is always published.
 */
static int raw_resize(struct bimg *bs, uint64_t size, bool publish, char *err, size_t errlen)
{
	struct stat st;
	off_t end;

	if (fstat(bs->fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat the file: %s", strerror(errno));
		return -errno;
	}
	if (S_ISBLK(st.st_mode)) {
		end = lseek(bs->fd, 0, SEEK_END);
		if (end < 0) {
			snprintf(err, errlen, "cannot find the device's size: %s", strerror(errno));
			return -errno;
		}
		if ((uint64_t)end != size) {
			snprintf(err, errlen, "a block device cannot be resized here; it has %lld "
				 "bytes (grow the device first, then resize to its size)",
				 (long long)end);
			return -ENOTSUP;
		}
		return 0;
	}
	/* Grown by someone else already: nothing past size is cut off. */
	if ((uint64_t)st.st_size < size && ftruncate(bs->fd, size) < 0) {
		snprintf(err, errlen, "cannot grow the file: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

const struct fmt_ops fmt_raw = {
	.name = "raw",
	.open = raw_open,
	.close = raw_close,
	.map_read = raw_map,
	.map_write = raw_map_write,
	.discard = raw_map,
	.write_zeroes = raw_write_zeroes,
	.flush_meta = raw_flush_meta,
	.resize = raw_resize,
};
