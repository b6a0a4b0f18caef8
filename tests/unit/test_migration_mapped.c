/*
 * mapped-ram files: the layout (pages at 1 MiB-aligned offsets, a page at
 * pages_offset + index * 4096, size bounded by RAM plus metadata), a page
 * rewritten in place and a page that became zero punched out, multifd
 * writers, and refusal of damaged pages, bitmaps and truncated files.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/accel.h"
#include "machine.h"
#include "migration/migration_int.h"

#define RAM (4u << 20)

static const struct accel_ops no_accel = { .name = "none" };

struct saved {
	int fd;
	struct mapped_ram mr;		/* offsets only (bitmaps freed) */
};

static void ram_init(struct machine *m)
{
	char err[256];

	memset(m, 0, sizeof(*m));
	m->accel = &no_accel;
	g_assert_cmpint(guest_mem_init(&m->mem, RAM, NULL, false, err, sizeof(err)), ==, 0);
}

/* Save m's RAM in the mapped layout; second: a later pass rewriting pages. */
static struct saved save(struct machine *m, unsigned channels, void (*between)(struct machine *))
{
	struct saved sv = { .fd = memfd_create("mapped", 0) };
	struct mig_stream s;
	struct mig_ram r;

	g_assert_cmpint(sv.fd, >=, 0);
	g_assert_cmpint(mig_stream_init(&s, sv.fd), ==, 0);
	mig_save_header(&s);
	g_assert_cmpint(ram_save_setup(m, &r, &s), ==, 0);
	g_assert_cmpint(mapped_ram_save_setup(m, &sv.mr, &s, false, channels), ==, 0);
	g_assert_cmpint(mapped_ram_save_dirty(m, &sv.mr, &r, &s), ==, 0);
	if (between) {
		between(m);
		/* No dirty log here: mark the whole RAM dirty for a second pass. */
		for (unsigned i = 0; i < m->mem.nr; i++)
			memset(r.bitmap[i], 0xff, m->mem.r[i].size / 4096 / 8);
		g_assert_cmpint(mapped_ram_save_dirty(m, &sv.mr, &r, &s), ==, 0);
	}
	g_assert_cmpint(mapped_ram_save_finish(m, &sv.mr, &s), ==, 0);
	g_assert_cmpint(mig_save_sections(m, &s), ==, 0);
	mig_save_end(&s);
	g_assert_cmpint(mig_flush(&s), ==, 0);
	ram_save_cleanup(m, &r);
	mapped_ram_cleanup(&sv.mr);
	mig_stream_free(&s);
	return sv;
}

static int load(struct machine *m, int fd, char *msg, size_t len)
{
	struct mig_stream s;
	int ret;

	lseek(fd, 0, SEEK_SET);
	g_assert_cmpint(mig_stream_init(&s, fd), ==, 0);
	ret = mig_load(m, &s);
	snprintf(msg, len, "%s", s.msg);
	mig_stream_free(&s);
	return ret;
}

static void fill(struct machine *m)
{
	memset(m->mem.base + 0x5000, 0x11, 4096);
	memset(m->mem.base + 0x3ff000, 0x22, 4096);
	memset(m->mem.base + 0x100000, 0x33, 4096);
}

static void rewrite(struct machine *m)
{
	memset(m->mem.base + 0x5000, 0x44, 4096);	/* changed */
	memset(m->mem.base + 0x100000, 0, 4096);	/* became zero */
}

static void check_loaded(struct machine *dst, uint8_t at5000, uint8_t at100000)
{
	g_assert_cmpuint(dst->mem.base[0x5000], ==, at5000);
	g_assert_cmpuint(dst->mem.base[0x5fff], ==, at5000);
	g_assert_cmpuint(dst->mem.base[0x3ff000], ==, 0x22);
	g_assert_cmpuint(dst->mem.base[0x100000], ==, at100000);
	g_assert_cmpuint(dst->mem.base[0x200000], ==, 0);
}

static void test_layout_and_roundtrip(void)
{
	struct machine src, dst;
	struct saved sv;
	uint8_t page[4096];
	char msg[256];

	ram_init(&src);
	ram_init(&dst);
	fill(&src);
	sv = save(&src, 1, NULL);
	g_assert_cmpuint(src.mem.nr, ==, 1);
	g_assert_cmpuint(sv.mr.pages_off[0] % (1 << 20), ==, 0);
	g_assert_cmpuint(sv.mr.bitmap_off[0], <, sv.mr.pages_off[0]);
	/* The page at index 5 lies at pages_offset + 5 * 4096. */
	g_assert_cmpint(pread(sv.fd, page, 4096, sv.mr.pages_off[0] + 5 * 4096), ==, 4096);
	g_assert_cmpuint(page[0], ==, 0x11);
	g_assert_cmpuint(lseek(sv.fd, 0, SEEK_END), <=, RAM + (2 << 20));
	memset(dst.mem.base, 0x99, RAM);
	g_assert_cmpint(load(&dst, sv.fd, msg, sizeof(msg)), ==, 0);
	check_loaded(&dst, 0x11, 0x33);
	close(sv.fd);
	guest_mem_destroy(&src.mem);
	guest_mem_destroy(&dst.mem);
}

static void test_rewrite_in_place(void)
{
	struct machine src, dst;
	struct saved sv;
	char msg[256];
	off_t size;

	for (unsigned channels = 1; channels <= 4; channels += 3) {
		ram_init(&src);
		ram_init(&dst);
		fill(&src);
		sv = save(&src, channels, rewrite);
		size = lseek(sv.fd, 0, SEEK_END);
		g_assert_cmpuint(size, <=, RAM + (2 << 20));
		g_assert_cmpint(load(&dst, sv.fd, msg, sizeof(msg)), ==, 0);
		check_loaded(&dst, 0x44, 0);
		close(sv.fd);
		guest_mem_destroy(&src.mem);
		guest_mem_destroy(&dst.mem);
	}
}

static void refuse(void (*damage)(struct saved *), const char *want)
{
	struct machine src, dst;
	struct saved sv;
	char msg[256];

	ram_init(&src);
	ram_init(&dst);
	fill(&src);
	sv = save(&src, 1, NULL);
	damage(&sv);
	g_assert_cmpint(load(&dst, sv.fd, msg, sizeof(msg)), <, 0);
	if (!strstr(msg, want))
		g_error("message '%s' lacks '%s'", msg, want);
	close(sv.fd);
	guest_mem_destroy(&src.mem);
	guest_mem_destroy(&dst.mem);
}

static void flip_page_byte(struct saved *sv)
{
	uint8_t b;
	off_t off = sv->mr.pages_off[0] + 0x3ff * 4096 + 77;

	g_assert_cmpint(pread(sv->fd, &b, 1, off), ==, 1);
	b ^= 0x80;
	g_assert_cmpint(pwrite(sv->fd, &b, 1, off), ==, 1);
}

static void clear_bitmap_bit(struct saved *sv)
{
	uint8_t b;
	off_t off = sv->mr.bitmap_off[0];	/* page 5 is bit 5 of byte 0 */

	g_assert_cmpint(pread(sv->fd, &b, 1, off), ==, 1);
	b &= ~0x20;
	g_assert_cmpint(pwrite(sv->fd, &b, 1, off), ==, 1);
}

static void cut_pages(struct saved *sv)
{
	g_assert_cmpint(ftruncate(sv->fd, sv->mr.pages_off[0] + 4096), ==, 0);
}

static void cut_tail(struct saved *sv)
{
	off_t size = lseek(sv->fd, 0, SEEK_END);

	g_assert_cmpint(ftruncate(sv->fd, size - 3), ==, 0);
}

static void test_refusals(void)
{
	refuse(flip_page_byte, "corrupt");
	refuse(clear_bitmap_bit, "corrupt");
	refuse(cut_pages, "truncated");
	refuse(cut_tail, "truncated");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/migration/mapped/layout", test_layout_and_roundtrip);
	g_test_add_func("/migration/mapped/rewrite", test_rewrite_in_place);
	g_test_add_func("/migration/mapped/refusals", test_refusals);
	return g_test_run();
}
