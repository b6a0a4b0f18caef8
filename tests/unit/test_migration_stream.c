/*
 * The migration stream format and its strict loader: a good stream loads
 * RAM and sections back; every kind of bad stream is refused with a
 * message that says what is wrong.
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accel/accel.h"
#include "machine.h"
#include "migration/migration_int.h"
#include "vmstate.h"

struct dev {
	uint32_t a;
	uint64_t b;
	uint8_t blob[10];
	bool extra_field;		/* save one field more than load reads */
	bool short_b;			/* save b as 4 bytes */
};

static int dev_save(void *opaque, struct vmstate_out *o)
{
	struct dev *d = opaque;

	vmstate_put_u32(o, "a", d->a);
	if (d->short_b)
		vmstate_put_u32(o, "b", (uint32_t)d->b);
	else
		vmstate_put_u64(o, "b", d->b);
	vmstate_put(o, "blob", d->blob, sizeof(d->blob));
	if (d->extra_field)
		vmstate_put_u8(o, "surprise", 1);
	return 0;
}

static int dev_load(void *opaque, struct vmstate_in *in)
{
	struct dev *d = opaque;
	int ret;

	if ((ret = vmstate_get_u32(in, "a", &d->a)) || (ret = vmstate_get_u64(in, "b", &d->b)))
		return ret;
	return vmstate_get(in, "blob", d->blob, sizeof(d->blob));
}

struct fixture {
	struct machine m;
	struct dev d0, d1;
	struct vmstate_section s0, s1;
};

static void fixture_init(struct fixture *f)
{
	char err[256];

	memset(f, 0, sizeof(*f));
	g_assert_cmpint(guest_mem_init(&f->m.mem, 4 << 20, NULL, false, err, sizeof(err)), ==, 0);
	f->s0 = (struct vmstate_section){ .name = "dev", .instance = 0, .version = 2,
					  .min_version = 1, .save = dev_save, .load = dev_load,
					  .opaque = &f->d0 };
	f->s1 = f->s0;
	f->s1.instance = 1;
	f->s1.opaque = &f->d1;
	g_assert_cmpint(vmstate_register(&f->m, &f->s0), ==, 0);
	g_assert_cmpint(vmstate_register(&f->m, &f->s1), ==, 0);
	g_assert_cmpint(vmstate_register(&f->m, &f->s1), ==, -EEXIST);
}

static void fixture_fini(struct fixture *f)
{
	guest_mem_destroy(&f->m.mem);
}

/*
 * Save f's RAM and sections to fd; stopped: the pages go by reference, as
 * in the final pass with the VM stopped.  Returns the pages sent.
 */
static uint64_t save_fd(struct fixture *f, int fd, bool end, bool stopped)
{
	struct mig_stream s;
	struct mig_ram r;
	uint64_t sent;

	g_assert_cmpint(mig_stream_init(&s, fd), ==, 0);
	mig_save_header(&s);
	/* No accelerator: ram_save_setup must not need one. */
	f->m.accel = &(struct accel_ops){ .name = "none" };
	g_assert_cmpint(ram_save_setup(&f->m, &r, &s), ==, 0);
	r.stopped = stopped;
	g_assert_cmpint(ram_save_dirty(&f->m, &r, &s), ==, 0);
	g_assert_cmpint(mig_save_sections(&f->m, &s), ==, 0);
	if (end)
		mig_save_end(&s);
	g_assert_cmpint(mig_flush(&s), ==, 0);
	sent = r.sent_pages;
	ram_save_cleanup(&f->m, &r);
	mig_stream_free(&s);
	return sent;
}

/* Save f's RAM and sections into a memory file; returns its fd at offset 0. */
static int save_to_file(struct fixture *f, bool end)
{
	int fd = memfd_create("mig", 0);

	g_assert_cmpint(fd, >=, 0);
	/* the two pages the test wrote */
	g_assert_cmpuint(save_fd(f, fd, end, false), ==, 2);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int load_from_fd(struct fixture *f, int fd, char *msg, size_t len)
{
	struct mig_stream s;
	int ret;

	g_assert_cmpint(mig_stream_init(&s, fd), ==, 0);
	ret = mig_load(&f->m, &s);
	snprintf(msg, len, "%s", s.msg);
	mig_stream_free(&s);
	return ret;
}

static void fill(struct fixture *f)
{
	f->d0 = (struct dev){ .a = 7, .b = 0x1122334455667788ull, .blob = "abcdefghi" };
	f->d1 = (struct dev){ .a = 9, .b = 3, .blob = "xyz" };
	memset(f->m.mem.base + 0x1000, 0x5a, 4096);
	memset(f->m.mem.base + 0x3ff000, 0xa5, 4096);
}

static void wipe(struct fixture *f)
{
	memset(&f->d0, 0, sizeof(f->d0));
	memset(&f->d1, 0, sizeof(f->d1));
	memset(f->m.mem.base, 0x33, 4 << 20);
}

static void test_roundtrip(void)
{
	struct fixture f;
	char msg[256];
	int fd;

	fixture_init(&f);
	fill(&f);
	fd = save_to_file(&f, true);
	wipe(&f);
	g_assert_cmpint(load_from_fd(&f, fd, msg, sizeof(msg)), ==, 0);
	g_assert_cmpuint(f.d0.a, ==, 7);
	g_assert_cmpuint(f.d0.b, ==, 0x1122334455667788ull);
	g_assert_cmpstr((char *)f.d0.blob, ==, "abcdefghi");
	g_assert_cmpuint(f.d1.a, ==, 9);
	g_assert_cmpuint(f.m.mem.base[0x1000], ==, 0x5a);
	g_assert_cmpuint(f.m.mem.base[0x3fffff], ==, 0xa5);
	/* Zero pages came as a flag and cleared what the destination had. */
	g_assert_cmpuint(f.m.mem.base[0], ==, 0);
	g_assert_cmpuint(f.m.mem.base[0x200000], ==, 0);
	close(fd);
	fixture_fini(&f);
}

/* Save, apply edit to the bytes, load; the load must fail with want in the message. */
static void expect_refusal(void (*edit)(struct fixture *, uint8_t *, size_t *),
			   void (*prep)(struct fixture *), const char *want)
{
	struct fixture f;
	char msg[256];
	size_t len;
	uint8_t *buf;
	int fd;

	fixture_init(&f);
	fill(&f);
	if (prep)
		prep(&f);
	fd = save_to_file(&f, true);
	len = lseek(fd, 0, SEEK_END);
	buf = malloc(len + 64);
	g_assert_cmpint(pread(fd, buf, len, 0), ==, (ssize_t)len);
	/* Reset the section list to the normal one for the load. */
	f.d0.extra_field = f.d0.short_b = false;
	edit(&f, buf, &len);
	g_assert_cmpint(ftruncate(fd, 0), ==, 0);
	g_assert_cmpint(pwrite(fd, buf, len, 0), ==, (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	g_assert_cmpint(load_from_fd(&f, fd, msg, sizeof(msg)), <, 0);
	if (!strstr(msg, want))
		g_error("message '%s' lacks '%s'", msg, want);
	free(buf);
	close(fd);
	fixture_fini(&f);
}

static void edit_magic(struct fixture *f, uint8_t *b, size_t *len)
{
	b[0] = 'X';
}

static void edit_version(struct fixture *f, uint8_t *b, size_t *len)
{
	b[8] = 99;
}

static void edit_crc(struct fixture *f, uint8_t *b, size_t *len)
{
	/* A bit flip inside the first RAM page's data. */
	size_t off = 12 + 1 + 4 + 16 * f->m.mem.nr + 1 + 8;

	for (;; off += 9) {
		uint64_t addr;

		memcpy(&addr, b + off - 8, 8);
		if (!(addr & MIG_PAGE_ZERO))
			break;
	}
	b[off + 100] ^= 0x10;
}

static void edit_trailing_crc(struct fixture *f, uint8_t *b, size_t *len)
{
	b[*len - 1] ^= 1;
}

static void edit_unknown_tag(struct fixture *f, uint8_t *b, size_t *len)
{
	b[12] = 0x77;
}

static void edit_nothing(struct fixture *f, uint8_t *b, size_t *len)
{
}

static void test_bad_magic(void)
{
	expect_refusal(edit_magic, NULL, "bad magic");
}

static void test_bad_version(void)
{
	expect_refusal(edit_version, NULL, "stream version 99");
}

static void test_checksum(void)
{
	expect_refusal(edit_crc, NULL, "checksum does not match");
	expect_refusal(edit_trailing_crc, NULL, "checksum does not match");
}

static void test_unknown_record(void)
{
	expect_refusal(edit_unknown_tag, NULL, "unknown record 0x77");
}

/* The destination has no "dev" instance 1. */
static void drop_s1(struct fixture *f, uint8_t *b, size_t *len)
{
	vmstate_unregister(&f->m, &f->s1);
}

static void test_unknown_section(void)
{
	expect_refusal(drop_s1, NULL, "unknown section 'dev' instance 1");
}

/* The destination has a section the stream lacks. */
static struct vmstate_section extra_sec;

static void add_extra(struct fixture *f, uint8_t *b, size_t *len)
{
	extra_sec = (struct vmstate_section){ .name = "extra", .version = 1, .min_version = 1,
					      .save = dev_save, .load = dev_load,
					      .opaque = &f->d0 };
	vmstate_register(&f->m, &extra_sec);
}

static void test_missing_section(void)
{
	expect_refusal(add_extra, NULL, "no section 'extra' instance 0");
}

static void newer_dest(struct fixture *f, uint8_t *b, size_t *len)
{
	f->s1.min_version = 3;
	f->s1.version = 3;
}

static void test_wrong_section_version(void)
{
	expect_refusal(newer_dest, NULL, "has version 2, this vireo loads versions 3 to 3");
}

static void prep_extra_field(struct fixture *f)
{
	f->d0.extra_field = true;
}

static void prep_short_field(struct fixture *f)
{
	f->d0.short_b = true;
}

static void test_field_mismatch(void)
{
	expect_refusal(edit_nothing, prep_extra_field, "unknown field 'surprise'");
	expect_refusal(edit_nothing, prep_short_field, "field 'b' has 4 bytes, expected 8");
}

static void different_ram(struct fixture *f, uint8_t *b, size_t *len)
{
	/* The layout record says 4 MiB; claim 8. */
	uint64_t size = 8 << 20;

	memcpy(b + 12 + 1 + 4 + 8, &size, 8);
}

static void test_ram_layout(void)
{
	expect_refusal(different_ram, NULL, "give both the same -m");
}

/* Every prefix of a good stream, down to one cut inside the final
 * checksum, is refused as truncated. */
static void test_truncation(void)
{
	struct fixture f;
	char msg[256];
	size_t len, cut;
	int fd, tfd;
	uint8_t *buf;

	fixture_init(&f);
	fill(&f);
	fd = save_to_file(&f, true);
	len = lseek(fd, 0, SEEK_END);
	buf = malloc(len);
	g_assert_cmpint(pread(fd, buf, len, 0), ==, (ssize_t)len);
	for (cut = 0; cut < len; cut += (cut < 64 || len - cut < 600) ? 1 : 509) {
		tfd = memfd_create("cut", 0);
		g_assert_cmpint(pwrite(tfd, buf, cut, 0), ==, (ssize_t)cut);
		lseek(tfd, 0, SEEK_SET);
		g_assert_cmpint(load_from_fd(&f, tfd, msg, sizeof(msg)), <, 0);
		if (!strstr(msg, "truncated"))
			g_error("cut at %zu of %zu: '%s'", cut, len, msg);
		close(tfd);
	}
	/* A stream without the end record is truncated too. */
	close(fd);
	fd = save_to_file(&f, false);
	g_assert_cmpint(load_from_fd(&f, fd, msg, sizeof(msg)), <, 0);
	g_assert_nonnull(strstr(msg, "truncated"));
	free(buf);
	close(fd);
	fixture_fini(&f);
}

/* Every 3rd page of the 4 MiB fixture non-zero and different: 343 pages with fill's. */
static void fill_many(struct fixture *f)
{
	fill(f);
	for (unsigned pg = 0; pg < 1024; pg += 3)
		for (unsigned i = 0; i < 4096; i += 8)
			memcpy(f->m.mem.base + pg * 4096ull + i, &(uint64_t){ pg * 7919ull + i + 1 }, 8);
}

static uint8_t *read_all(int fd, size_t *len)
{
	uint8_t *b;

	*len = lseek(fd, 0, SEEK_END);
	b = malloc(*len);
	g_assert_cmpint(pread(fd, b, *len, 0), ==, (ssize_t)*len);
	return b;
}

struct drain {
	int fd;
	uint8_t *buf;
	size_t len, cap;
};

/* Read a socket to its end in small bites, so the writer waits on a full socket. */
static void *drain_thread(void *opaque)
{
	struct drain *d = opaque;
	ssize_t n;

	do {
		if (d->len + 1000 > d->cap) {
			d->cap = d->cap * 2 + 4096;
			d->buf = realloc(d->buf, d->cap);
		}
		n = read(d->fd, d->buf + d->len, 1000);
		if (n > 0)
			d->len += n;
	} while (n > 0);
	return NULL;
}

/*
 * Pages put by reference (VM stopped) give the very bytes, checksum
 * included, that copied pages give: over a file and over a socket that
 * takes a little at a time, with more pages than one writev holds.
 */
static void test_by_reference(void)
{
	struct fixture f;
	struct drain d = { 0 };
	pthread_t t;
	char msg[256];
	size_t clen, rlen;
	uint8_t *copied, *byref;
	int fd, sv[2], small = 4096;

	fixture_init(&f);
	fill_many(&f);
	fd = memfd_create("copied", 0);
	g_assert_cmpuint(save_fd(&f, fd, true, false), ==, 343);
	copied = read_all(fd, &clen);
	close(fd);
	fd = memfd_create("byref", 0);
	g_assert_cmpuint(save_fd(&f, fd, true, true), ==, 343);
	byref = read_all(fd, &rlen);
	g_assert_cmpuint(rlen, ==, clen);
	g_assert_true(!memcmp(copied, byref, clen));

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
	g_assert_cmpint(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), ==, 0);
	d.fd = sv[1];
	g_assert_cmpint(pthread_create(&t, NULL, drain_thread, &d), ==, 0);
	g_assert_cmpuint(save_fd(&f, sv[0], true, true), ==, 343);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	g_assert_cmpuint(d.len, ==, clen);
	g_assert_true(!memcmp(copied, d.buf, clen));

	/* And it loads. */
	wipe(&f);
	lseek(fd, 0, SEEK_SET);
	g_assert_cmpint(load_from_fd(&f, fd, msg, sizeof(msg)), ==, 0);
	g_assert_cmpuint(f.m.mem.base[3 * 4096ull * 100 + 8], ==, (300 * 7919ull + 9) & 0xff);
	g_assert_cmpuint(f.m.mem.base[0x1000], ==, 0x5a);
	g_assert_cmpuint(f.m.mem.base[0x2000], ==, 0);
	free(d.buf);
	free(copied);
	free(byref);
	close(fd);
	fixture_fini(&f);
}

/* A flipped bit in the last page sent by reference is caught too. */
static void test_by_reference_checksum(void)
{
	struct fixture f;
	char msg[256];
	size_t len;
	uint8_t *b;
	int fd;

	fixture_init(&f);
	fill_many(&f);
	fd = memfd_create("byref", 0);
	save_fd(&f, fd, true, true);
	b = read_all(fd, &len);
	/* 1023 % 3 == 0: the last page of RAM went whole, before the sections. */
	for (size_t off = 1; off + 8 <= len; off++) {
		uint64_t addr;

		memcpy(&addr, b + off, 8);
		if (b[off - 1] == MIG_TAG_RAM_PAGE && addr == 1023 * 4096ull) {
			b[off + 8 + 4000] ^= 0x40;
			break;
		}
	}
	g_assert_cmpint(pwrite(fd, b, len, 0), ==, (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	g_assert_cmpint(load_from_fd(&f, fd, msg, sizeof(msg)), <, 0);
	g_assert_nonnull(strstr(msg, "checksum does not match"));
	free(b);
	close(fd);
	fixture_fini(&f);
}

static void test_field_api(void)
{
	struct vmstate_out o;
	struct vmstate_in in;
	char err[256];
	uint32_t v;
	bool bv;

	vmstate_out_init(&o);
	vmstate_put_u32(&o, "x", 5);
	vmstate_put_u8(&o, "flag", 2);
	in = (struct vmstate_in){ .buf = o.buf, .len = o.len, .section = "t",
				  .err = err, .errlen = sizeof(err) };
	g_assert_cmpint(vmstate_get_u32(&in, "y", &v), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "expected field 'y', found 'x'"));
	g_assert_cmpint(vmstate_get_u32(&in, "x", &v), ==, 0);
	g_assert_cmpuint(v, ==, 5);
	g_assert_cmpint(vmstate_get_bool(&in, "flag", &bv), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "is a bool but holds 2"));
	in.pos = in.len;
	g_assert_cmpint(vmstate_get_u32(&in, "z", &v), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "field 'z' is missing"));
	/* A section cut inside a field. */
	in = (struct vmstate_in){ .buf = o.buf, .len = 7, .section = "t",
				  .err = err, .errlen = sizeof(err) };
	g_assert_cmpint(vmstate_get_u32(&in, "x", &v), ==, -EINVAL);
	g_assert_nonnull(strstr(err, "truncated section"));
	vmstate_out_free(&o);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/migration/stream/roundtrip", test_roundtrip);
	g_test_add_func("/migration/stream/bad-magic", test_bad_magic);
	g_test_add_func("/migration/stream/bad-version", test_bad_version);
	g_test_add_func("/migration/stream/checksum", test_checksum);
	g_test_add_func("/migration/stream/by-reference", test_by_reference);
	g_test_add_func("/migration/stream/by-reference-checksum", test_by_reference_checksum);
	g_test_add_func("/migration/stream/unknown-record", test_unknown_record);
	g_test_add_func("/migration/stream/unknown-section", test_unknown_section);
	g_test_add_func("/migration/stream/missing-section", test_missing_section);
	g_test_add_func("/migration/stream/section-version", test_wrong_section_version);
	g_test_add_func("/migration/stream/field-mismatch", test_field_mismatch);
	g_test_add_func("/migration/stream/ram-layout", test_ram_layout);
	g_test_add_func("/migration/stream/truncation", test_truncation);
	g_test_add_func("/migration/stream/fields", test_field_api);
	return g_test_run();
}
