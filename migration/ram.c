/*
 * RAM in the migration stream: the layout check, pages sent whole or as a
 * zero flag, and the dirty bitmaps fed by the accelerator's dirty log.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "machine.h"
#include "migration/migration_int.h"
#include "tsan.h"

#define LONG_BITS (8 * sizeof(unsigned long))

static uint64_t region_pages(const struct ram_region *r)
{
	return r->size / MIG_PAGE_SIZE;
}

static size_t bitmap_words(const struct ram_region *r)
{
	return (region_pages(r) + LONG_BITS - 1) / LONG_BITS;
}

/* Guest RAM the guest and its devices may be writing meanwhile (pre-copy
 * sends such a page again): see TSAN_GUEST_ACCESS in tsan.h. */
TSAN_GUEST_ACCESS bool ram_page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < MIG_PAGE_SIZE / 8; i += 4)
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3])
			return false;
	return true;
}

void ram_put_page(struct mig_stream *s, const struct mig_ram *r, const uint8_t *p)
{
	if (r->stopped) {
		mig_put_ref(s, p, MIG_PAGE_SIZE);
		return;
	}
	/*
	 * The running guest and its devices may be writing the page as it is
	 * copied (pre-copy sends it again then): a read TSan must not record,
	 * since the report would come long after, when its stack is gone and
	 * no suppression can name it.
	 */
	tsan_ignore_begin();
	mig_put(s, p, MIG_PAGE_SIZE);
	tsan_ignore_end();
}

/* The first pass is out: from now on every page is read. */
void ram_untouched_done(struct mig_ram *r)
{
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++) {
		free(r->untouched[i]);
		r->untouched[i] = NULL;
	}
}

static uint64_t count_bits(struct machine *m, struct mig_ram *r)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < m->mem.nr; i++)
		for (size_t w = 0; w < bitmap_words(&m->mem.r[i]); w++)
			n += __builtin_popcountl(r->bitmap[i][w]);
	return n;
}

unsigned long *ram_untouched(const struct guest_mem *gm, const struct ram_region *reg)
{
	uint64_t pages = region_pages(reg), buf[4096];
	unsigned long *bm;
	int fd;

	/* A file mapping (-mem-path) keeps its contents elsewhere. */
	if (gm->fd >= 0)
		return NULL;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	bm = calloc(bitmap_words(reg), sizeof(unsigned long));
	for (uint64_t p = 0; bm && p < pages; p += 4096) {
		uint64_t n = pages - p < 4096 ? pages - p : 4096;
		off_t off = ((uintptr_t)reg->hva / MIG_PAGE_SIZE + p) * 8;

		if (pread(fd, buf, n * 8, off) != (ssize_t)(n * 8)) {
			free(bm);
			bm = NULL;
			break;
		}
		/* Bit 63: present, bit 62: swapped. */
		for (uint64_t i = 0; i < n; i++)
			if (!(buf[i] >> 62))
				bm[(p + i) / LONG_BITS] |= 1ul << ((p + i) % LONG_BITS);
	}
	close(fd);
	return bm;
}

int ram_save_setup(struct machine *m, struct mig_ram *r, struct mig_stream *s)
{
	int ret;

	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < m->mem.nr; i++) {
		const struct ram_region *reg = &m->mem.r[i];
		uint64_t pages = region_pages(reg);

		r->bitmap[i] = calloc(bitmap_words(reg), sizeof(unsigned long));
		if (!r->bitmap[i])
			return -ENOMEM;
		/* The first pass sends everything. */
		for (uint64_t p = 0; p < pages; p++)
			r->bitmap[i][p / LONG_BITS] |= 1ul << (p % LONG_BITS);
		r->dirty += pages;
	}
	if (m->accel->dirty_log_start) {
		ret = m->accel->dirty_log_start(m);
		if (ret)
			return mig_stream_fail(s, ret, "cannot start dirty page tracking: %s",
					       strerror(-ret));
		r->logging = true;
	}
	/* Devices write guest RAM behind the accelerator's back (DMA). */
	ret = guest_mem_dirty_start(&m->mem);
	if (ret)
		return mig_stream_fail(s, ret, "cannot start device dirty tracking: %s",
				       strerror(-ret));
	/* After the dirty log started: a page written from now on is sent again. */
	for (unsigned i = 0; i < m->mem.nr; i++)
		r->untouched[i] = ram_untouched(&m->mem, &m->mem.r[i]);
	mig_put_u8(s, MIG_TAG_RAM_LAYOUT);
	mig_put_u32(s, m->mem.nr);
	for (unsigned i = 0; i < m->mem.nr; i++) {
		mig_put_u64(s, m->mem.r[i].gpa);
		mig_put_u64(s, m->mem.r[i].size);
	}
	return s->error;
}

int ram_sync(struct machine *m, struct mig_ram *r)
{
	int ret;

	for (unsigned i = 0; i < m->mem.nr; i++) {
		if (r->logging) {
			ret = m->accel->dirty_log_sync(m, &m->mem.r[i], r->bitmap[i]);
			if (ret)
				return ret;
		}
		guest_mem_dirty_sync(&m->mem, i, r->bitmap[i]);
	}
	r->dirty = count_bits(m, r);
	return 0;
}

int ram_save_dirty(struct machine *m, struct mig_ram *r, struct mig_stream *s)
{
	for (unsigned i = 0; i < m->mem.nr && !s->error; i++) {
		const struct ram_region *reg = &m->mem.r[i];
		size_t words = bitmap_words(reg);

		for (size_t w = 0; w < words && !s->error; w++) {
			unsigned long bits = __atomic_exchange_n(&r->bitmap[i][w], 0,
								 __ATOMIC_RELAXED);

			while (bits) {
				unsigned b = __builtin_ctzl(bits);
				uint64_t off = (w * LONG_BITS + b) * MIG_PAGE_SIZE;
				const uint8_t *p = reg->hva + off;

				bits &= bits - 1;
				if (ram_test_bit(r->untouched[i], w * LONG_BITS + b) ||
				    ram_page_is_zero(p)) {
					mig_put_u8(s, MIG_TAG_RAM_PAGE);
					mig_put_u64(s, (reg->gpa + off) | MIG_PAGE_ZERO);
					r->zero_pages++;
				} else {
					mig_put_u8(s, MIG_TAG_RAM_PAGE);
					mig_put_u64(s, reg->gpa + off);
					ram_put_page(s, r, p);
					r->sent_pages++;
				}
				if (r->dirty)
					r->dirty--;
			}
		}
	}
	ram_untouched_done(r);
	return s->error;
}

void ram_save_cleanup(struct machine *m, struct mig_ram *r)
{
	if (r->logging && m->accel->dirty_log_stop)
		m->accel->dirty_log_stop(m);
	guest_mem_dirty_stop(&m->mem);
	r->logging = false;
	ram_untouched_done(r);
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++) {
		free(r->bitmap[i]);
		r->bitmap[i] = NULL;
	}
}

void ram_load_cleanup(struct mig_ram *r)
{
	ram_untouched_done(r);
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++) {
		free(r->bitmap[i]);
		r->bitmap[i] = NULL;
	}
}

int ram_load_layout(struct machine *m, struct mig_stream *s, struct mig_ram *r)
{
	uint32_t nr;
	uint64_t gpa, size;

	if (mig_get_u32(s, &nr))
		return s->error;
	if (nr != m->mem.nr)
		return mig_stream_fail(s, -EINVAL, "the source has %u RAM regions, this VM %u "
				       "(give both the same -m)", nr, m->mem.nr);
	for (unsigned i = 0; i < nr; i++) {
		if (mig_get_u64(s, &gpa) || mig_get_u64(s, &size))
			return s->error;
		if (gpa != m->mem.r[i].gpa || size != m->mem.r[i].size)
			return mig_stream_fail(s, -EINVAL,
					       "RAM region %u is 0x%llx+0x%llx on the source, "
					       "0x%llx+0x%llx here (give both the same -m)", i,
					       (unsigned long long)gpa, (unsigned long long)size,
					       (unsigned long long)m->mem.r[i].gpa,
					       (unsigned long long)m->mem.r[i].size);
	}
	for (unsigned i = 0; i < nr; i++)
		if (!r->untouched[i])
			r->untouched[i] = ram_untouched(&m->mem, &m->mem.r[i]);
	return 0;
}

int ram_load_page(struct machine *m, struct mig_stream *s, struct mig_ram *r)
{
	uint64_t addr, gpa;
	unsigned long *untouched = NULL;
	uint64_t idx = 0;
	uint8_t *p;

	if (mig_get_u64(s, &addr))
		return s->error;
	gpa = addr & ~MIG_PAGE_FLAGS;
	if ((addr & MIG_PAGE_FLAGS) & ~MIG_PAGE_ZERO)
		return mig_stream_fail(s, -EINVAL, "RAM page 0x%llx has unknown flags 0x%llx",
				       (unsigned long long)gpa,
				       (unsigned long long)(addr & MIG_PAGE_FLAGS));
	p = gpa_to_hva(&m->mem, gpa, MIG_PAGE_SIZE);
	if (!p)
		return mig_stream_fail(s, -EINVAL, "RAM page 0x%llx is outside this VM's RAM",
				       (unsigned long long)gpa);
	for (unsigned i = 0; i < m->mem.nr; i++) {
		const struct ram_region *reg = &m->mem.r[i];

		if (gpa >= reg->gpa && gpa - reg->gpa < reg->size) {
			untouched = r->untouched[i];
			idx = (gpa - reg->gpa) / MIG_PAGE_SIZE;
		}
	}
	if (addr & MIG_PAGE_ZERO) {
		/* Write only when needed: untouched destination pages stay unallocated. */
		if (!ram_test_bit(untouched, idx) && !ram_page_is_zero(p))
			memset(p, 0, MIG_PAGE_SIZE);
		return 0;
	}
	if (untouched)
		untouched[idx / LONG_BITS] &= ~(1ul << (idx % LONG_BITS));
	return mig_get(s, p, MIG_PAGE_SIZE);
}
