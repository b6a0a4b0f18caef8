/*
 * Helpers shared by the block layer tests: temporary directories, running
 * qemu-img/qemu-io, and synchronous wrappers over the asynchronous API.
 */
#ifndef VIREO_TEST_BLOCK_UTIL_H
#define VIREO_TEST_BLOCK_UTIL_H

#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"

struct tb_wait {
	bool done;
	int64_t ret;
};

static inline void tb_cb(void *opaque, int64_t ret)
{
	struct tb_wait *w = opaque;

	w->done = true;
	w->ret = ret;
}

static inline int64_t tb_wait(struct blk_queue *q, struct tb_wait *w)
{
	/* The contract: no callback inside the submitting call. */
	g_assert_false(w->done);
	while (!w->done) {
		struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

		poll(&p, 1, 1000);
		blk_queue_poll(q);
	}
	return w->ret;
}

static inline int64_t tb_pread(struct blk_queue *q, uint64_t off, void *buf, size_t len)
{
	struct tb_wait w = { 0 };
	struct iovec iov = { buf, len };
	int ret = blk_preadv(q, off, &iov, 1, tb_cb, &w);

	return ret < 0 ? ret : tb_wait(q, &w);
}

static inline int64_t tb_pwrite(struct blk_queue *q, uint64_t off, const void *buf, size_t len)
{
	struct tb_wait w = { 0 };
	struct iovec iov = { (void *)buf, len };
	int ret = blk_pwritev(q, off, &iov, 1, tb_cb, &w);

	return ret < 0 ? ret : tb_wait(q, &w);
}

static inline int64_t tb_flush(struct blk_queue *q)
{
	struct tb_wait w = { 0 };
	int ret = blk_flush(q, tb_cb, &w);

	return ret < 0 ? ret : tb_wait(q, &w);
}

static inline int64_t tb_discard(struct blk_queue *q, uint64_t off, uint64_t len)
{
	struct tb_wait w = { 0 };
	int ret = blk_discard(q, off, len, tb_cb, &w);

	return ret < 0 ? ret : tb_wait(q, &w);
}

static inline int64_t tb_zeroes(struct blk_queue *q, uint64_t off, uint64_t len, bool unmap)
{
	struct tb_wait w = { 0 };
	int ret = blk_write_zeroes(q, off, len, unmap, tb_cb, &w);

	return ret < 0 ? ret : tb_wait(q, &w);
}

/* Big-endian fields of an image file, for tests that edit one. */
static inline uint64_t tb_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return GUINT64_FROM_BE(v);
}

static inline void tb_put64(uint8_t *p, uint64_t v)
{
	v = GUINT64_TO_BE(v);
	memcpy(p, &v, 8);
}

static inline void tb_put32(uint8_t *p, uint32_t v)
{
	v = GUINT32_TO_BE(v);
	memcpy(p, &v, 4);
}

/* Run a shell command; returns its exit status, output in *out if given. */
static inline int tb_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int tb_sh(char **out, const char *fmt, ...)
{
	char *cmd, *o = NULL, *e = NULL;
	char *argv[] = { "sh", "-c", NULL, NULL };
	int status = -1;
	va_list ap;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	argv[2] = cmd;
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &o, &e, &status, NULL))
		status = -1;
	else if (WIFEXITED(status))
		status = WEXITSTATUS(status);
	if (out)
		*out = g_strconcat(o ? o : "", e ? e : "", NULL);
	else if (status)
		g_test_message("'%s' -> %d: %s%s", cmd, status, o ? o : "", e ? e : "");
	g_free(o);
	g_free(e);
	g_free(cmd);
	return status;
}

static inline bool tb_have_qemu_img(void)
{
	char *img = g_find_program_in_path("qemu-img"), *io = g_find_program_in_path("qemu-io");
	bool ok = img && io;

	g_free(img);
	g_free(io);
	return ok;
}

/* In a test function: skip it (and return) without qemu-img and qemu-io. */
#define TB_SKIP_WITHOUT_QEMU_IMG() do {					\
	if (!tb_have_qemu_img()) {					\
		g_test_skip("qemu-img/qemu-io (qemu-utils) not installed");	\
		return;							\
	}								\
} while (0)

/* len bytes at off read back as the byte pat. */
static inline void tb_expect_fill(struct blk_queue *q, uint64_t off, uint64_t len, int pat)
{
	uint8_t *buf = g_malloc(len), *want = g_malloc(len);

	memset(want, pat, len);
	g_assert_cmpint(tb_pread(q, off, buf, len), ==, (int64_t)len);
	g_assert_cmpmem(buf, len, want, len);
	g_free(buf);
	g_free(want);
}

/* A fresh directory on a disk file system (O_DIRECT works there). */
static inline char *tb_tmpdir(void)
{
	char *d = g_build_filename(g_get_tmp_dir(), "vireo-blk-XXXXXX", NULL);

	g_assert_nonnull(g_mkdtemp(d));
	return d;
}

static inline void tb_rmdir(char *d)
{
	tb_sh(NULL, "rm -rf '%s'", d);
	g_free(d);
}

static inline struct blk *tb_open(const char *file, const char *fmt, enum blk_aio aio,
				  enum blk_cache cache, bool ro)
{
	struct blk_config cfg = { .file = file, .format = fmt, .aio = aio, .cache = cache,
				  .readonly = ro, .discard_unmap = true };
	char err[512] = "";
	struct blk *b = blk_open(&cfg, err, sizeof(err));

	if (!b)
		g_test_message("blk_open(%s): %s", file, err);
	return b;
}

static inline void tb_fill(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = seed >> 16;
	}
}

#endif
