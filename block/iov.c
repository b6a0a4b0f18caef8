/*
 * Scatter/gather helpers: the block layer slices a device's vector into
 * the pieces its format maps to different places.
 */
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

static void iov_walk(const struct iovec *iov, int iovcnt, size_t off, size_t len,
		     void (*fn)(void *base, size_t n, size_t pos, void *opaque), void *opaque)
{
	size_t pos = 0;

	for (int i = 0; i < iovcnt && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l = BLK_MIN(l - off, len);
		fn((char *)iov[i].iov_base + off, l, pos, opaque);
		pos += l;
		len -= l;
		off = 0;
	}
}

static void do_to(void *base, size_t n, size_t pos, void *opaque)
{
	memcpy(base, (const char *)opaque + pos, n);
}

static void do_from(void *base, size_t n, size_t pos, void *opaque)
{
	memcpy((char *)opaque + pos, base, n);
}

static void do_zero(void *base, size_t n, size_t pos, void *opaque)
{
	memset(base, 0, n);
}

void iov_copy_to(const struct iovec *iov, int iovcnt, size_t off, const void *buf, size_t len)
{
	iov_walk(iov, iovcnt, off, len, do_to, (void *)buf);
}

void iov_copy_from(const struct iovec *iov, int iovcnt, size_t off, void *buf, size_t len)
{
	iov_walk(iov, iovcnt, off, len, do_from, buf);
}

void iov_zero(const struct iovec *iov, int iovcnt, size_t off, size_t len)
{
	iov_walk(iov, iovcnt, off, len, do_zero, NULL);
}

int iov_slice(struct iovec *v, const struct iovec *iov, int iovcnt, size_t off, size_t len)
{
	int n = 0;

	for (int i = 0; i < iovcnt && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l = BLK_MIN(l - off, len);
		v[n].iov_base = (char *)iov[i].iov_base + off;
		v[n].iov_len = l;
		n++;
		len -= l;
		off = 0;
	}
	return n;
}
