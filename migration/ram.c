/*
 * RAM in the migration stream: the layout check, pages sent whole or as a
 * zero flag, and the dirty bitmaps fed by the accelerator's dirty log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "machine.h"
#include "migration/migration_int.h"

#define LONG_BITS (8 * sizeof(unsigned long))

static uint64_t region_pages(const struct ram_region *r)
{
	return r->size / MIG_PAGE_SIZE;
}

static size_t bitmap_words(const struct ram_region *r)
{
	return (region_pages(r) + LONG_BITS - 1) / LONG_BITS;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < MIG_PAGE_SIZE / 8; i += 4)
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3])
			return false;
	return true;
}

static uint64_t count_bits(struct machine *m, struct mig_ram *r)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < m->mem.nr; i++)
		for (size_t w = 0; w < bitmap_words(&m->mem.r[i]); w++)
			n += __builtin_popcountl(r->bitmap[i][w]);
	return n;
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

	if (!r->logging)
		return 0;
	for (unsigned i = 0; i < m->mem.nr; i++) {
		ret = m->accel->dirty_log_sync(m, &m->mem.r[i], r->bitmap[i]);
		if (ret)
			return ret;
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
				if (page_is_zero(p)) {
					mig_put_u8(s, MIG_TAG_RAM_PAGE);
					mig_put_u64(s, (reg->gpa + off) | MIG_PAGE_ZERO);
					r->zero_pages++;
				} else {
					mig_put_u8(s, MIG_TAG_RAM_PAGE);
					mig_put_u64(s, reg->gpa + off);
					mig_put(s, p, MIG_PAGE_SIZE);
					r->sent_pages++;
				}
				if (r->dirty)
					r->dirty--;
			}
		}
	}
	return s->error;
}

void ram_save_cleanup(struct machine *m, struct mig_ram *r)
{
	if (r->logging && m->accel->dirty_log_stop)
		m->accel->dirty_log_stop(m);
	r->logging = false;
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++) {
		free(r->bitmap[i]);
		r->bitmap[i] = NULL;
	}
}

int ram_load_layout(struct machine *m, struct mig_stream *s)
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
	return 0;
}

int ram_load_page(struct machine *m, struct mig_stream *s)
{
	uint64_t addr, gpa;
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
	if (addr & MIG_PAGE_ZERO) {
		/* Write only when needed: untouched destination pages stay unallocated. */
		if (!page_is_zero(p))
			memset(p, 0, MIG_PAGE_SIZE);
		return 0;
	}
	return mig_get(s, p, MIG_PAGE_SIZE);
}
