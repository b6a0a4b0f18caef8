/*
 * raw: the guest sees the host file (or block device) byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
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
