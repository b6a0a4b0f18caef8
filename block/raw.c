/*
 * raw: the guest sees the host file (or block device) byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blk-int.h"

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

static int raw_map_write(struct bimg *bs, uint64_t off, uint64_t len,
			 const struct iovec *iov, int iovcnt, size_t iov_off, struct bmap *m)
{
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

const struct fmt_ops fmt_raw = {
	.name = "raw",
	.open = raw_open,
	.close = raw_close,
	.map_read = raw_map,
	.map_write = raw_map_write,
	.discard = raw_map,
	.write_zeroes = raw_write_zeroes,
	.flush_meta = raw_flush_meta,
};
