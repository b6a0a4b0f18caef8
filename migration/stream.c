/*
 * The migration byte stream (see stream.h): buffering, checksum, rate
 * limit and truncation detection.
 *
 * The checksum is taken lazily, over whole stretches of the buffer: the
 * writer sums what it put when it flushes, the reader what it consumed
 * when it refills, so the many 1- and 8-byte fields cost no call each.
 * s->summed marks how far the buffer is in the sum.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The implementation from the header, inlined: see stream.h for why. */
#define XXH_INLINE_ALL
#include <xxhash.h>

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
	s->buf = malloc(MIG_BUF_SIZE);
	s->sum = mig_hash_new();
	if (!s->buf || !s->sum) {
		mig_stream_free(s);
		return -ENOMEM;
	}
	return 0;
}

void mig_stream_free(struct mig_stream *s)
{
	free(s->buf);
	s->buf = NULL;
	XXH3_freeState(s->sum);
	s->sum = NULL;
}

/* Add buf up to end (writer: s->len, reader: s->pos) to the checksum. */
static void sum_buf(struct mig_stream *s, size_t end)
{
	if (end > s->summed)
		XXH3_64bits_update(s->sum, s->buf + s->summed, end - s->summed);
	s->summed = end;
}

struct XXH3_state_s *mig_hash_new(void)
{
	XXH3_state_t *h = XXH3_createState();

	if (h && XXH3_64bits_reset(h) != XXH_OK) {
		XXH3_freeState(h);
		h = NULL;
	}
	return h;
}

void mig_hash_add(struct XXH3_state_s *h, const void *p, size_t len)
{
	XXH3_64bits_update(h, p, len);
}

uint64_t mig_hash_value(struct XXH3_state_s *h)
{
	return XXH3_64bits_digest(h);
}

void mig_hash_free(struct XXH3_state_s *h)
{
	XXH3_freeState(h);
}

uint64_t mig_sum(struct mig_stream *s)
{
	/* A reader consumed the buffer up to pos, a writer filled it up to len. */
	sum_buf(s, s->reading ? s->pos : s->len);
	return XXH3_64bits_digest(s->sum);
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

void mig_rate_limit(struct mig_stream *s, size_t n)
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

/* The buffer since the last piece queued by reference becomes a piece too. */
static void close_segment(struct mig_stream *s)
{
	if (s->len > s->seg)
		s->iov[s->niov++] = (struct iovec){ s->buf + s->seg, s->len - s->seg };
	s->seg = s->len;
}

/* Write iov[0..n) whole (n <= MIG_IOV_MAX); writev may take any part of it. */
static int write_all(struct mig_stream *s, struct iovec *iov, unsigned n)
{
	while (n) {
		ssize_t w = writev(s->fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return mig_stream_fail(s, w < 0 ? -errno : -EPIPE,
					       "cannot send the migration stream: %s",
					       w < 0 ? strerror(errno) : "connection closed");
		while (n && (size_t)w >= iov->iov_len) {
			w -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
	return 0;
}

int mig_flush(struct mig_stream *s)
{
	int ret;

	if (s->error)
		return s->error;
	if (s->cancel && __atomic_load_n(s->cancel, __ATOMIC_RELAXED))
		return mig_stream_fail(s, -ECANCELED, "migration cancelled");
	sum_buf(s, s->len);
	mig_rate_limit(s, s->len + s->ref_bytes);
	if (s->niov) {
		close_segment(s);
		ret = write_all(s, s->iov, s->niov);
	} else {
		struct iovec one = { s->buf, s->len };

		ret = s->len ? write_all(s, &one, 1) : 0;
	}
	if (ret)
		return ret;
	s->len = s->seg = s->summed = 0;
	s->niov = 0;
	s->ref_bytes = 0;
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
		 * The checksum covers the copy (at the flush), not the source:
		 * guest RAM may change under a running guest between a
		 * checksum of it and the copy, and the stream would then not
		 * match its checksum.
		 */
		memcpy(s->buf + s->len, b, n);
		s->len += n;
		b += n;
		len -= n;
		if (s->len == MIG_BUF_SIZE && mig_flush(s))
			return;
	}
}

void mig_put_ref(struct mig_stream *s, const void *p, size_t len)
{
	if (s->error || !len)
		return;
	/* In stream order: what is buffered before p, then p itself. */
	sum_buf(s, s->len);
	XXH3_64bits_update(s->sum, p, len);
	close_segment(s);
	s->iov[s->niov++] = (struct iovec){ (void *)p, len };
	s->ref_bytes += len;
	s->bytes += len;
	/* Room for one more buffer piece and one more reference. */
	if (s->niov > MIG_IOV_MAX - 3)
		mig_flush(s);
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

	sum_buf(s, s->pos);
	s->pos = s->len = s->summed = 0;
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

	s->reading = true;
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
	s->bytes += want;
	return 0;
}

void mig_drop_readahead(struct mig_stream *s)
{
	sum_buf(s, s->pos);
	s->pos = s->len = s->summed = 0;
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
