/*
 * The migration byte stream (see stream.h): buffering, CRC-32, rate limit
 * and truncation detection.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "migration/stream.h"

int64_t mig_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ll + ts.tv_nsec / 1000;
}

int mig_stream_init(struct mig_stream *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->accept_fd = -1;
	s->crc = crc32(0, NULL, 0);
	s->buf = malloc(MIG_BUF_SIZE);
	return s->buf ? 0 : -ENOMEM;
}

void mig_stream_free(struct mig_stream *s)
{
	free(s->buf);
	s->buf = NULL;
}

int mig_stream_fail(struct mig_stream *s, int error, const char *fmt, ...)
{
	va_list ap;

	if (s->error)
		return s->error;
	s->error = error;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	return error;
}

/* Sleep as long as max_bw asks for the bytes of this 100 ms window. */
static void rate_limit(struct mig_stream *s, size_t n)
{
	int64_t now, due;

	if (!s->max_bw)
		return;
	now = mig_now_us();
	if (!s->win_start_us || now - s->win_start_us > 100000) {
		s->win_start_us = now;
		s->win_bytes = 0;
	}
	s->win_bytes += n;
	due = s->win_start_us + (int64_t)(s->win_bytes * 1000000 / s->max_bw);
	while (now < due && !(s->cancel && __atomic_load_n(s->cancel, __ATOMIC_RELAXED))) {
		int64_t d = due - now > 20000 ? 20000 : due - now;

		usleep(d);
		now = mig_now_us();
	}
}

int mig_flush(struct mig_stream *s)
{
	size_t done = 0;

	if (s->error)
		return s->error;
	if (s->cancel && __atomic_load_n(s->cancel, __ATOMIC_RELAXED))
		return mig_stream_fail(s, -ECANCELED, "migration cancelled");
	rate_limit(s, s->len);
	while (done < s->len) {
		ssize_t n = write(s->fd, s->buf + done, s->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return mig_stream_fail(s, n < 0 ? -errno : -EPIPE,
					       "cannot send the migration stream: %s",
					       n < 0 ? strerror(errno) : "connection closed");
		done += n;
	}
	s->len = 0;
	return 0;
}

void mig_put(struct mig_stream *s, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (s->error)
		return;
	s->bytes += len;
	while (len) {
		size_t n = MIG_BUF_SIZE - s->len;

		if (n > len)
			n = len;
		/*
		 * The checksum covers the copy, not the source: guest RAM may
		 * change under a running guest between a checksum of it and
		 * the copy, and the stream would then not match its checksum.
		 */
		memcpy(s->buf + s->len, b, n);
		s->crc = crc32(s->crc, s->buf + s->len, n);
		s->len += n;
		b += n;
		len -= n;
		if (s->len == MIG_BUF_SIZE && mig_flush(s))
			return;
	}
}

void mig_put_u8(struct mig_stream *s, uint8_t v)
{
	mig_put(s, &v, 1);
}

void mig_put_u32(struct mig_stream *s, uint32_t v)
{
	v = htole32(v);
	mig_put(s, &v, 4);
}

void mig_put_u64(struct mig_stream *s, uint64_t v)
{
	v = htole64(v);
	mig_put(s, &v, 8);
}

static int refill(struct mig_stream *s)
{
	ssize_t n;

	do {
		n = read(s->fd, s->buf, MIG_BUF_SIZE);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return mig_stream_fail(s, -errno, "cannot read the migration stream: %s",
				       strerror(errno));
	if (n == 0)
		return mig_stream_fail(s, -EPIPE,
				       "the migration stream is truncated after %llu bytes "
				       "(the source stopped sending)",
				       (unsigned long long)s->bytes);
	s->pos = 0;
	s->len = n;
	return 0;
}

int mig_get(struct mig_stream *s, void *p, size_t len)
{
	uint8_t *b = p;
	size_t want = len;

	while (!s->error && len) {
		size_t n = s->len - s->pos;

		if (!n) {
			if (refill(s))
				break;
			continue;
		}
		if (n > len)
			n = len;
		memcpy(b, s->buf + s->pos, n);
		s->pos += n;
		b += n;
		len -= n;
	}
	if (s->error)
		return s->error;
	s->crc = crc32(s->crc, p, want);
	s->bytes += want;
	return 0;
}

int mig_get_u8(struct mig_stream *s, uint8_t *v)
{
	return mig_get(s, v, 1);
}

int mig_get_u32(struct mig_stream *s, uint32_t *v)
{
	int ret = mig_get(s, v, 4);

	*v = le32toh(*v);
	return ret;
}

int mig_get_u64(struct mig_stream *s, uint64_t *v)
{
	int ret = mig_get(s, v, 8);

	*v = le64toh(*v);
	return ret;
}
