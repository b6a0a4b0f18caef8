/*
 * mapped-ram: RAM at fixed offsets of a file: URI, after QEMU's
 * docs/devel/migration/mapped-ram.rst.  Each RAM region gets a header
 * (version, page size, bitmap offset, pages offset rounded up to 1 MiB) in
 * the stream, a bitmap of the pages present, and its pages at
 * pages_offset + index * page size; a page dirtied again is rewritten in
 * place, a page that became zero is punched out, so the file never grows
 * past RAM plus metadata.  The stream goes on after the last region's
 * pages.  With multifd, that many threads pwrite a pass in parallel; with
 * direct-io they write through an O_DIRECT descriptor.
 *
 * Record after the RAM layout:
 *   MIG_TAG_MAPPED_RAM  u32 n, n x (u32 version, u64 page size, u64 bitmap
 *                       offset, u64 pages offset), u64 offset the stream
 *                       continues at (all offsets from the start of the file)
 * and before the sections, with the VM stopped:
 *   MIG_TAG_RAM_CRC     n x u64 XXH3-64 of each region's RAM, so that damage
 *                       to the pages or bitmaps (outside the stream's own
 *                       checksum) is refused too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"
#include "migration/migration_int.h"

#define MAPPED_RAM_VERSION	1
#define MAPPED_RAM_ALIGN	(1ull << 20)
#define LONG_BITS		(8 * sizeof(unsigned long))

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t bitmap_bytes(uint64_t pages)
{
	return align_up(pages, LONG_BITS) / 8;
}

static bool page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < MIG_PAGE_SIZE / 8; i++)
		if (q[i])
			return false;
	return true;
}

int mapped_ram_save_setup(struct machine *m, struct mapped_ram *mr, struct mig_stream *s,
			  bool direct_io, unsigned channels)
{
	uint64_t cursor;
	off_t base;
	char path[64];

	memset(mr, 0, sizeof(*mr));
	mr->fd = s->fd;
	mr->dfd = -1;
	mr->channels = channels ? channels : 1;
	/* Everything so far is in the buffer: the file position is where we started. */
	base = lseek(s->fd, 0, SEEK_CUR);
	if (base < 0)
		return mig_stream_fail(s, -ESPIPE, "mapped-ram needs a file: URI (a seekable file)");
	if (direct_io) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", s->fd);
		mr->dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
		if (mr->dfd < 0)
			return mig_stream_fail(s, -errno, "direct-io: cannot open the file with "
					       "O_DIRECT: %s", strerror(errno));
	}
	/* Header, layout and this record, then the regions. */
	cursor = base + s->len + 1 + 4 + m->mem.nr * (4 + 8 + 8 + 8) + 8;
	for (unsigned i = 0; i < m->mem.nr; i++) {
		uint64_t pages = m->mem.r[i].size / MIG_PAGE_SIZE;

		mr->present[i] = calloc(bitmap_bytes(pages), 1);
		if (!mr->present[i])
			return mig_stream_fail(s, -ENOMEM, "out of memory for the page bitmap");
		mr->bitmap_off[i] = align_up(cursor, MIG_PAGE_SIZE);
		mr->pages_off[i] = align_up(mr->bitmap_off[i] + bitmap_bytes(pages),
					    MAPPED_RAM_ALIGN);
		cursor = mr->pages_off[i] + m->mem.r[i].size;
	}
	mr->resume_off = cursor;
	mig_put_u8(s, MIG_TAG_MAPPED_RAM);
	mig_put_u32(s, m->mem.nr);
	for (unsigned i = 0; i < m->mem.nr; i++) {
		mig_put_u32(s, MAPPED_RAM_VERSION);
		mig_put_u64(s, MIG_PAGE_SIZE);
		mig_put_u64(s, mr->bitmap_off[i]);
		mig_put_u64(s, mr->pages_off[i]);
	}
	mig_put_u64(s, mr->resume_off);
	if (mig_flush(s))
		return s->error;
	/* A file written before (a bigger VM) must not leave bytes behind. */
	if (ftruncate(s->fd, mr->resume_off) || lseek(s->fd, mr->resume_off, SEEK_SET) < 0)
		return mig_stream_fail(s, -errno, "cannot size the file: %s", strerror(errno));
	return 0;
}

/* Pages a writer accounts to max-bandwidth at a time. */
#define THROTTLE_PAGES		64

struct writer {
	struct machine *m;
	struct mapped_ram *mr;
	struct mig_ram *r;
	struct mig_stream *s;		/* its rate limit and cancel flag */
	pthread_mutex_t *rate_lock;	/* the channels share one budget */
	unsigned region;
	size_t w0, w1;			/* bitmap words of the region this thread takes */
	uint64_t sent, zero;
	int error;
};

static int write_page(struct mapped_ram *mr, unsigned region, uint64_t idx, const uint8_t *p)
{
	int fd = mr->dfd >= 0 ? mr->dfd : mr->fd;
	off_t off = mr->pages_off[region] + idx * MIG_PAGE_SIZE;
	size_t done = 0;

	while (done < MIG_PAGE_SIZE) {
		ssize_t n = pwrite(fd, p + done, MIG_PAGE_SIZE - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

/* max-bandwidth for what this writer wrote since it last asked; 0 or -ECANCELED. */
static int writer_throttle(struct writer *w, uint64_t *unpaid)
{
	const bool *cancel = w->s->cancel;

	if (w->s->max_bw && *unpaid) {
		pthread_mutex_lock(w->rate_lock);
		mig_rate_limit(w->s, *unpaid * MIG_PAGE_SIZE);
		pthread_mutex_unlock(w->rate_lock);
	}
	*unpaid = 0;
	return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) ? -ECANCELED : 0;
}

static void *writer_thread(void *opaque)
{
	struct writer *w = opaque;
	const struct ram_region *reg = &w->m->mem.r[w->region];
	unsigned long *dirty = w->r->bitmap[w->region];
	unsigned long *present = w->mr->present[w->region];
	uint64_t unpaid = 0;

	for (size_t i = w->w0; i < w->w1 && !w->error; i++) {
		unsigned long bits = __atomic_exchange_n(&dirty[i], 0, __ATOMIC_RELAXED);

		while (bits && !w->error) {
			uint64_t idx = i * LONG_BITS + __builtin_ctzl(bits);
			const uint8_t *p = reg->hva + idx * MIG_PAGE_SIZE;
			unsigned long bit = 1ul << (idx % LONG_BITS);

			bits &= bits - 1;
			if (ram_test_bit(w->r->untouched[w->region], idx) || page_zero(p)) {
				/* Absent reads back as zero: punch a page written before. */
				if (present[i] & bit) {
					if (fallocate(w->mr->fd, FALLOC_FL_PUNCH_HOLE |
						      FALLOC_FL_KEEP_SIZE,
						      w->mr->pages_off[w->region] +
						      idx * MIG_PAGE_SIZE, MIG_PAGE_SIZE))
						w->error = write_page(w->mr, w->region, idx, p);
					else
						present[i] &= ~bit;
				}
				w->zero++;
			} else {
				w->error = write_page(w->mr, w->region, idx, p);
				present[i] |= bit;
				w->sent++;
				if (++unpaid == THROTTLE_PAGES && !w->error)
					w->error = writer_throttle(w, &unpaid);
			}
		}
	}
	if (!w->error)
		w->error = writer_throttle(w, &unpaid);
	return NULL;
}

int mapped_ram_save_dirty(struct machine *m, struct mapped_ram *mr, struct mig_ram *r,
			  struct mig_stream *s)
{
	unsigned n = mr->channels;
	struct writer *w = calloc(n, sizeof(*w));
	pthread_t *t = calloc(n, sizeof(*t));
	bool *running = calloc(n, sizeof(*running));
	pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;
	int error = 0;

	if (!w || !t || !running) {
		free(w);
		free(t);
		free(running);
		return mig_stream_fail(s, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < m->mem.nr && !error; i++) {
		size_t words = bitmap_bytes(m->mem.r[i].size / MIG_PAGE_SIZE) / sizeof(long);

		/* Each channel takes a contiguous share of the region (word-aligned: no bit is shared). */
		for (unsigned c = 0; c < n; c++) {
			w[c] = (struct writer){ .m = m, .mr = mr, .r = r, .s = s,
						.rate_lock = &rate_lock, .region = i,
						.w0 = words * c / n, .w1 = words * (c + 1) / n };
			running[c] = n > 1 && !pthread_create(&t[c], NULL, writer_thread, &w[c]);
			if (!running[c])
				writer_thread(&w[c]);
		}
		for (unsigned c = 0; c < n; c++) {
			if (running[c])
				pthread_join(t[c], NULL);
			r->sent_pages += w[c].sent;
			r->zero_pages += w[c].zero;
			s->bytes += w[c].sent * MIG_PAGE_SIZE;
			mr->multifd_bytes += n > 1 ? w[c].sent * MIG_PAGE_SIZE : 0;
			if (w[c].error && !error)
				error = w[c].error;
		}
	}
	r->dirty = 0;
	ram_untouched_done(r);
	free(w);
	free(t);
	free(running);
	if (error == -ECANCELED)
		return mig_stream_fail(s, error, "migration cancelled");
	if (error)
		return mig_stream_fail(s, error, "cannot write RAM pages to the file: %s",
				       strerror(-error));
	return 0;
}

/*
 * A region's checksum: its page bitmap, then every page present, so that
 * damage to either is caught.  Absent pages are zero by construction.
 */
static int region_crc(const struct ram_region *reg, const unsigned long *present,
		      uint64_t *sum)
{
	uint64_t pages = reg->size / MIG_PAGE_SIZE, run = 0;
	struct XXH3_state_s *st = mig_hash_new();

	if (!st)
		return -ENOMEM;
	mig_hash_add(st, present, bitmap_bytes(pages));
	/* One call per run of present pages: XXH3 is fastest on long inputs. */
	for (uint64_t p = 0; p <= pages; p++) {
		if (p < pages && ram_test_bit(present, p))
			continue;
		if (p > run)
			mig_hash_add(st, reg->hva + run * MIG_PAGE_SIZE,
				     (p - run) * MIG_PAGE_SIZE);
		run = p + 1;
	}
	*sum = mig_hash_value(st);
	mig_hash_free(st);
	return 0;
}

int mapped_ram_save_finish(struct machine *m, struct mapped_ram *mr, struct mig_stream *s)
{
	for (unsigned i = 0; i < m->mem.nr; i++) {
		uint64_t len = bitmap_bytes(m->mem.r[i].size / MIG_PAGE_SIZE);

		if (pwrite(mr->fd, mr->present[i], len, mr->bitmap_off[i]) != (ssize_t)len)
			return mig_stream_fail(s, -EIO, "cannot write the page bitmap: %s",
					       strerror(errno));
	}
	mig_put_u8(s, MIG_TAG_RAM_CRC);
	for (unsigned i = 0; i < m->mem.nr; i++) {
		uint64_t sum;

		if (region_crc(&m->mem.r[i], mr->present[i], &sum))
			return mig_stream_fail(s, -ENOMEM, "out of memory");
		mig_put_u64(s, sum);
	}
	return s->error;
}

void mapped_ram_cleanup(struct mapped_ram *mr)
{
	if (mr->dfd >= 0)
		close(mr->dfd);
	mr->dfd = -1;
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++) {
		free(mr->present[i]);
		mr->present[i] = NULL;
	}
}

/* ---- restore ---- */

static int load_region(struct machine *m, struct mig_stream *s, struct mig_ram *r, unsigned i,
		       uint64_t bm_off, uint64_t pages_off)
{
	const struct ram_region *reg = &m->mem.r[i];
	uint64_t pages = reg->size / MIG_PAGE_SIZE, len = bitmap_bytes(pages);
	unsigned long *bm = malloc(len);
	int ret = 0;

	if (!bm)
		return mig_stream_fail(s, -ENOMEM, "out of memory for the page bitmap");
	/* Kept for the checksum record. */
	free(r->bitmap[i]);
	r->bitmap[i] = bm;
	if (pread(s->fd, bm, len, bm_off) != (ssize_t)len)
		return mig_stream_fail(s, -EPIPE, "the mapped-ram file is truncated (page bitmap "
				       "of RAM region %u)", i);
	for (uint64_t p = 0; p < pages && !ret; p++) {
		uint8_t *hva = reg->hva + p * MIG_PAGE_SIZE;

		if (!ram_test_bit(bm, p)) {
			if (!ram_test_bit(r->untouched[i], p) && !page_zero(hva))
				memset(hva, 0, MIG_PAGE_SIZE);
			continue;
		}
		if (pread(s->fd, hva, MIG_PAGE_SIZE, pages_off + p * MIG_PAGE_SIZE) !=
		    (ssize_t)MIG_PAGE_SIZE)
			ret = mig_stream_fail(s, -EPIPE, "the mapped-ram file is truncated (page "
					      "0x%llx of RAM region %u)",
					      (unsigned long long)p, i);
	}
	return ret;
}

int mapped_ram_load(struct machine *m, struct mig_stream *s, struct mig_ram *r)
{
	uint64_t bm_off[GUEST_MAX_RAM_REGIONS], pages_off[GUEST_MAX_RAM_REGIONS], resume;
	uint32_t nr, version;
	uint64_t page_size;
	off_t size, here;

	if (mig_get_u32(s, &nr))
		return s->error;
	if (nr != m->mem.nr)
		return mig_stream_fail(s, -EINVAL, "mapped-ram: %u RAM regions, this VM has %u",
				       nr, m->mem.nr);
	for (unsigned i = 0; i < nr; i++) {
		if (mig_get_u32(s, &version) || mig_get_u64(s, &page_size) ||
		    mig_get_u64(s, &bm_off[i]) || mig_get_u64(s, &pages_off[i]))
			return s->error;
		if (version != MAPPED_RAM_VERSION || page_size != MIG_PAGE_SIZE ||
		    pages_off[i] % MAPPED_RAM_ALIGN)
			return mig_stream_fail(s, -EINVAL, "mapped-ram header of RAM region %u: "
					       "version %u, page size %llu, pages at 0x%llx: "
					       "not a layout this vireo reads", i, version,
					       (unsigned long long)page_size,
					       (unsigned long long)pages_off[i]);
	}
	if (mig_get_u64(s, &resume))
		return s->error;
	/* The stream goes on after this record, never back to it. */
	here = lseek(s->fd, 0, SEEK_CUR);
	if (here < 0 || resume < (uint64_t)here - (s->len - s->pos))
		return mig_stream_fail(s, -EINVAL, "mapped-ram: the stream goes on at 0x%llx, "
				       "before the record that says so",
				       (unsigned long long)resume);
	size = lseek(s->fd, 0, SEEK_END);
	if (size < 0 || (uint64_t)size < resume)
		return mig_stream_fail(s, -EPIPE, "the mapped-ram file is truncated (%lld bytes, "
				       "its RAM ends at %llu)", (long long)size,
				       (unsigned long long)resume);
	for (unsigned i = 0; i < nr; i++)
		if (load_region(m, s, r, i, bm_off[i], pages_off[i]))
			return s->error;
	/* The stream goes on after the pages: drop what was read ahead. */
	if (lseek(s->fd, resume, SEEK_SET) < 0)
		return mig_stream_fail(s, -errno, "cannot seek in the file: %s", strerror(errno));
	mig_drop_readahead(s);
	return 0;
}

int mapped_ram_load_crc(struct machine *m, struct mig_stream *s, struct mig_ram *r)
{
	for (unsigned i = 0; i < m->mem.nr; i++) {
		uint64_t want, got;

		if (mig_get_u64(s, &want))
			return s->error;
		if (region_crc(&m->mem.r[i], r->bitmap[i], &got))
			return mig_stream_fail(s, -ENOMEM, "out of memory");
		if (got != want)
			return mig_stream_fail(s, -EBADMSG, "RAM region %u does not match its "
					       "checksum (0x%016llx, file says 0x%016llx): the pages "
					       "or bitmap of the file are corrupt", i,
					       (unsigned long long)got, (unsigned long long)want);
	}
	return 0;
}
