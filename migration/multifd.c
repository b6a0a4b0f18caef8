/*
 * multifd over sockets: RAM pages travel on multifd-channels extra
 * connections in parallel, the main connection carries everything else.
 *
 * A page always goes on the same channel (channel = bitmap word index mod
 * n), so a page sent again in a later pass cannot overtake its older copy,
 * and on the destination each channel thread writes its own pages only
 * (and its own words of the bitmaps).  Each channel is a stream of its
 * own: "VIREOMFD", u32 version, u32 channel index, RAM_PAGE records, END
 * with the XXH3-64 of the channel (as the main stream).  The main stream
 * says how many channels follow (MIG_TAG_MULTIFD, u32 n) right after the RAM layout; the source
 * ends every channel before it sends the device sections, and the
 * destination checks every channel's end before it accepts the main one.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine.h"
#include "migration/migration_int.h"

#define MFD_MAGIC	"VIREOMFD"
#define MFD_ACCEPT_TIMEOUT_MS 30000
#define LONG_BITS	(8 * sizeof(unsigned long))

/* ---- source ---- */

int multifd_send_setup(struct multifd *mf, const char *uri, unsigned n, const bool *cancel,
		       char *err, size_t errlen)
{
	memset(mf, 0, sizeof(*mf));
	mf->ch = calloc(n, sizeof(*mf->ch));
	if (!mf->ch)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		int fd = mig_connect(uri, err, errlen);

		if (fd < 0) {
			multifd_cleanup(mf);
			return fd;
		}
		mf->n++;
		if (mig_stream_init(&mf->ch[i].s, fd)) {
			close(fd);
			multifd_cleanup(mf);
			return -ENOMEM;
		}
		mf->ch[i].s.cancel = cancel;
		mig_put(&mf->ch[i].s, MFD_MAGIC, 8);
		mig_put_u32(&mf->ch[i].s, MIG_STREAM_VERSION);
		mig_put_u32(&mf->ch[i].s, i);
	}
	return 0;
}

struct mfd_job {
	struct machine *m;
	struct mig_ram *r;
	struct multifd *mf;
	unsigned c;
};

static void *send_thread(void *opaque)
{
	struct mfd_job *j = opaque;
	struct mig_stream *s = &j->mf->ch[j->c].s;
	struct machine *m = j->m;
	unsigned n = j->mf->n;

	for (unsigned i = 0; i < m->mem.nr && !s->error; i++) {
		const struct ram_region *reg = &m->mem.r[i];
		size_t words = (reg->size / MIG_PAGE_SIZE + LONG_BITS - 1) / LONG_BITS;

		for (size_t w = j->c; w < words && !s->error; w += n) {
			unsigned long bits = __atomic_exchange_n(&j->r->bitmap[i][w], 0,
								 __ATOMIC_RELAXED);

			while (bits) {
				uint64_t idx = w * LONG_BITS + __builtin_ctzl(bits);
				const uint8_t *p = reg->hva + idx * MIG_PAGE_SIZE;

				bits &= bits - 1;
				mig_put_u8(s, MIG_TAG_RAM_PAGE);
				if (ram_test_bit(j->r->untouched[i], idx) || ram_page_is_zero(p)) {
					mig_put_u64(s, (reg->gpa + idx * MIG_PAGE_SIZE) | MIG_PAGE_ZERO);
					j->mf->ch[j->c].zero++;
				} else {
					mig_put_u64(s, reg->gpa + idx * MIG_PAGE_SIZE);
					ram_put_page(s, j->r, p);
					j->mf->ch[j->c].sent++;
				}
			}
		}
	}
	mig_flush(s);
	return NULL;
}

int multifd_send_dirty(struct machine *m, struct multifd *mf, struct mig_ram *r,
		       struct mig_stream *main_s)
{
	struct mfd_job *jobs = calloc(mf->n, sizeof(*jobs));
	pthread_t *t = calloc(mf->n, sizeof(*t));
	bool *running = calloc(mf->n, sizeof(*running));
	int ret = 0;

	if (!jobs || !t || !running) {
		free(jobs);
		free(t);
		free(running);
		return mig_stream_fail(main_s, -ENOMEM, "out of memory");
	}
	for (unsigned c = 0; c < mf->n; c++) {
		uint64_t before = mf->ch[c].s.bytes;

		jobs[c] = (struct mfd_job){ .m = m, .r = r, .mf = mf, .c = c };
		mf->ch[c].s.max_bw = main_s->max_bw / mf->n;
		mf->ch[c].pass_start = before;
		running[c] = !pthread_create(&t[c], NULL, send_thread, &jobs[c]);
		if (!running[c])
			send_thread(&jobs[c]);
	}
	for (unsigned c = 0; c < mf->n; c++) {
		struct mig_stream *s = &mf->ch[c].s;
		uint64_t bytes;

		if (running[c])
			pthread_join(t[c], NULL);
		bytes = s->bytes - mf->ch[c].pass_start;
		main_s->bytes += bytes;
		mf->bytes += bytes;
		r->sent_pages += mf->ch[c].sent;
		r->zero_pages += mf->ch[c].zero;
		mf->ch[c].sent = mf->ch[c].zero = 0;
		if (s->error && !ret)
			ret = mig_stream_fail(main_s, s->error, "multifd channel %u: %s", c,
					      s->msg);
	}
	r->dirty = 0;
	ram_untouched_done(r);
	free(jobs);
	free(t);
	free(running);
	return ret;
}

int multifd_send_end(struct multifd *mf, struct mig_stream *main_s)
{
	for (unsigned c = 0; c < mf->n; c++) {
		struct mig_stream *s = &mf->ch[c].s;

		s->max_bw = 0;
		mig_save_end(s);
		if (mig_flush(s))
			return mig_stream_fail(main_s, s->error, "multifd channel %u: %s", c,
					       s->msg);
	}
	return 0;
}

/* Unblock a send or receive stuck on a channel (cancel, a failed peer). */
void multifd_shutdown(struct multifd *mf)
{
	for (unsigned c = 0; c < mf->n; c++)
		if (mf->ch[c].s.fd >= 0)
			shutdown(mf->ch[c].s.fd, SHUT_RDWR);
}

void multifd_cleanup(struct multifd *mf)
{
	for (unsigned c = 0; mf->ch && c < mf->n; c++) {
		if (mf->ch[c].running) {
			pthread_join(mf->ch[c].thread, NULL);
			mf->ch[c].running = false;
		}
		if (mf->ch[c].s.fd >= 0)
			close(mf->ch[c].s.fd);
		mig_stream_free(&mf->ch[c].s);
	}
	free(mf->ch);
	memset(mf, 0, sizeof(*mf));
}

/* ---- destination ---- */

struct mfd_recv {
	struct machine *m;
	struct mig_ram *r;
	struct mfd_chan *ch;
};

static void *recv_thread(void *opaque)
{
	struct mfd_recv *a = opaque;
	struct mig_stream *s = &a->ch->s;
	uint8_t tag;

	for (;;) {
		if (mig_get_u8(s, &tag))
			break;
		if (tag == MIG_TAG_RAM_PAGE) {
			if (ram_load_page(a->m, s, a->r))
				break;
		} else if (tag == MIG_TAG_END) {
			mig_load_sum(s, "the channel's");
			a->ch->done = !s->error;
			break;
		} else {
			mig_stream_fail(s, -EINVAL, "unknown record 0x%02x", tag);
			break;
		}
	}
	free(a);
	return NULL;
}

int multifd_recv_setup(struct machine *m, struct multifd *mf, struct mig_ram *r,
		       struct mig_stream *main_s, uint32_t n)
{
	if (main_s->accept_fd < 0)
		return mig_stream_fail(main_s, -EINVAL, "multifd channels need a socket "
				       "transport (tcp: or unix:)");
	if (!n || n > 255)
		return mig_stream_fail(main_s, -EINVAL, "%u multifd channels", n);
	mf->ch = calloc(n, sizeof(*mf->ch));
	if (!mf->ch)
		return mig_stream_fail(main_s, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++)
		mf->ch[i].s.fd = -1;
	mf->n = n;
	for (unsigned i = 0; i < n; i++) {
		struct pollfd p = { .fd = main_s->accept_fd, .events = POLLIN };
		char magic[8];
		uint32_t version, idx;
		struct mfd_chan *ch;
		struct mig_stream tmp;
		struct mfd_recv *a;
		int fd;

		if (poll(&p, 1, MFD_ACCEPT_TIMEOUT_MS) != 1 ||
		    (fd = accept4(main_s->accept_fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			return mig_stream_fail(main_s, -ETIMEDOUT, "multifd channel %u of %u did "
					       "not connect", i + 1, n);
		if (mig_stream_init(&tmp, fd)) {
			close(fd);
			return mig_stream_fail(main_s, -ENOMEM, "out of memory");
		}
		if (mig_get(&tmp, magic, 8) || memcmp(magic, MFD_MAGIC, 8) ||
		    mig_get_u32(&tmp, &version) || version != MIG_STREAM_VERSION ||
		    mig_get_u32(&tmp, &idx) || idx >= n || mf->ch[idx].s.fd >= 0) {
			mig_stream_free(&tmp);
			close(fd);
			return mig_stream_fail(main_s, -EINVAL, "a connection that is not multifd "
					       "channel of this migration");
		}
		ch = &mf->ch[idx];
		ch->s = tmp;
		ch->s.cancel = main_s->cancel;
		a = calloc(1, sizeof(*a));
		if (!a)
			return mig_stream_fail(main_s, -ENOMEM, "out of memory");
		*a = (struct mfd_recv){ .m = m, .r = r, .ch = ch };
		ch->running = !pthread_create(&ch->thread, NULL, recv_thread, a);
		if (!ch->running) {
			free(a);
			return mig_stream_fail(main_s, -EAGAIN, "cannot start a multifd thread");
		}
	}
	return 0;
}

/* At the main stream's end: every channel must have ended cleanly. */
int multifd_recv_finish(struct multifd *mf, struct mig_stream *main_s)
{
	for (unsigned c = 0; c < mf->n; c++) {
		struct mfd_chan *ch = &mf->ch[c];

		if (ch->running) {
			pthread_join(ch->thread, NULL);
			ch->running = false;
		}
		if (!ch->done)
			return mig_stream_fail(main_s, ch->s.error ? ch->s.error : -EPIPE,
					       "multifd channel %u: %s", c, ch->s.error ?
					       ch->s.msg : "it did not end");
	}
	return 0;
}
