/*
 * Crash consistency: a child writes, discards and flushes a qcow2 image
 * and reports every operation before it starts and every completed FLUSH;
 * the parent SIGKILLs it mid-run.  Then qemu-img check must find no
 * corruption (leaks are allowed) and every block must hold data at least
 * as new as the last flushed operation on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "test_block_util.h"

#define BLOCK 4096u
#define NBLOCKS 2048u	/* 8 MiB */

enum { REC_WRITE, REC_DISCARD, REC_FLUSHED };

struct rec {
	uint32_t type, blk, nblk, gen;
	uint32_t flushed;	/* parent only: a completed FLUSH covered it */
};

static void stamp(uint8_t *b, uint32_t blk, uint32_t gen)
{
	uint32_t h[4] = { 0x4b4c4256, blk, gen, ~gen };

	tb_fill(b, BLOCK, blk * 7919u + gen);
	memcpy(b, h, sizeof(h));
}

static void send_rec(int fd, uint32_t type, uint32_t blk, uint32_t nblk, uint32_t gen)
{
	struct rec r = { type, blk, nblk, gen, 0 };

	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

/* Each round crashes a different engine and cache mode. */
static const struct { enum blk_aio aio; enum blk_cache cache; } modes[] = {
	{ BLK_AIO_IO_URING, BLK_CACHE_WRITEBACK },
	{ BLK_AIO_THREADS, BLK_CACHE_WRITEBACK },
	{ BLK_AIO_NATIVE, BLK_CACHE_NONE },
};

static void __attribute__((noreturn)) child(const char *img, int fd, uint32_t seed,
					    uint32_t gen, int round)
{
	struct blk_config cfg = { .file = img, .format = "qcow2", .aio = modes[round].aio,
				  .cache = modes[round].cache, .discard_unmap = true };
	uint8_t *buf = malloc(8 * BLOCK);
	struct blk_queue *q;
	char err[256];
	struct blk *b;

	alarm(60);	/* never outlive a parent that died */
	b = blk_open(&cfg, err, sizeof(err));
	if (!b || !(q = blk_queue_new(b, err, sizeof(err))))
		_exit(2);
	for (unsigned n = 0;; n++) {
		uint32_t r = (seed = seed * 1103515245u + 12345u) >> 8;
		uint32_t nblk = 1 + r % 8, blk = (r >> 4) % (NBLOCKS - nblk);

		gen++;
		if (r % 10 == 0) {
			send_rec(fd, REC_DISCARD, blk, nblk, gen);
			if (tb_discard(q, (uint64_t)blk * BLOCK, nblk * BLOCK) < 0)
				_exit(4);
		} else {
			for (uint32_t i = 0; i < nblk; i++)
				stamp(buf + i * BLOCK, blk + i, gen);
			send_rec(fd, REC_WRITE, blk, nblk, gen);
			if (tb_pwrite(q, (uint64_t)blk * BLOCK, buf, nblk * BLOCK) != nblk * BLOCK)
				_exit(5);
		}
		if (n % 8 == 7) {
			/* everything up to gen has completed: the flush covers it */
			if (tb_flush(q) < 0)
				_exit(6);
			send_rec(fd, REC_FLUSHED, 0, 0, gen);
		}
	}
}

static bool all_zero(const uint8_t *b)
{
	for (unsigned i = 0; i < BLOCK; i++)
		if (b[i])
			return false;
	return true;
}

static void verify(const char *raw, struct rec *ops, size_t nops)
{
	uint8_t *img;
	gsize len;
	unsigned checked = 0;

	g_assert_true(g_file_get_contents(raw, (char **)&img, &len, NULL));
	g_assert_cmpuint(len, ==, (gsize)NBLOCKS * BLOCK);
	for (uint32_t blk = 0; blk < NBLOCKS; blk++) {
		const uint8_t *b = img + (size_t)blk * BLOCK;
		uint32_t fg = 0, h[4];
		bool ok = false;

		for (size_t i = 0; i < nops; i++)
			if (ops[i].type != REC_FLUSHED && ops[i].flushed &&
			    blk >= ops[i].blk && blk < ops[i].blk + ops[i].nblk)
				fg = ops[i].gen;
		memcpy(h, b, sizeof(h));
		if (all_zero(b)) {
			ok = fg == 0;
			for (size_t i = 0; i < nops && !ok; i++)
				ok = ops[i].type == REC_DISCARD && ops[i].gen >= fg &&
				     blk >= ops[i].blk && blk < ops[i].blk + ops[i].nblk;
		} else if (h[0] == 0x4b4c4256 && h[1] == blk && h[3] == ~h[2] && h[2] >= fg) {
			uint8_t want[BLOCK];

			stamp(want, blk, h[2]);
			ok = !memcmp(want, b, BLOCK);
			if (fg)
				checked++;
		}
		if (!ok)
			g_error("block %u: content (gen %u) older than its last flushed op (gen %u)",
				blk, h[2], fg);
	}
	g_test_message("%u blocks with flushed data verified", checked);
	g_assert_cmpuint(checked, >, 0);
	g_free(img);
}

/*
 * A killed process's io_uring is torn down after the process is reaped:
 * until then its requests may still run and the file (and its image
 * lock) stays open.  Wait for the lock to go.
 */
static void wait_unlocked(const char *path)
{
	struct flock fl;
	int fd = open(path, O_RDONLY);

	g_assert_cmpint(fd, >=, 0);
	for (int i = 0; i < 1000; i++) {
		/* F_OFD_GETLK wants l_pid 0: refill it every time */
		fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 101,
				     .l_len = 1 };
		g_assert_cmpint(fcntl(fd, F_OFD_GETLK, &fl), ==, 0);
		if (fl.l_type == F_UNLCK)
			break;
		g_usleep(10000);
	}
	g_assert_cmpint(fl.l_type, ==, F_UNLCK);
	close(fd);
}

/*
 * A FLUSH covers the operations its own child completed before it: an
 * operation that a crash may have lost stays unflushed for good.
 */
static void add_rec(struct rec **ops, size_t *nops, size_t *cap, const struct rec *r,
		    size_t round_start, uint32_t *gen)
{
	if (*nops == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		*ops = g_renew(struct rec, *ops, *cap);
	}
	(*ops)[(*nops)++] = *r;
	if (r->type != REC_FLUSHED) {
		*gen = r->gen;
		return;
	}
	for (size_t i = round_start; i < *nops; i++)
		if ((*ops)[i].gen <= r->gen)
			(*ops)[i].flushed = 1;
}

static void test_sigkill(void)
{
	char *dir, *img, *raw, *out = NULL;
	struct rec *ops = NULL;
	size_t nops = 0, cap = 0;
	uint32_t gen = 0;

	if (!tb_have_qemu_img()) {
		g_test_skip("qemu-img not installed");
		return;
	}
	dir = tb_tmpdir();
	img = g_build_filename(dir, "crash.qcow2", NULL);
	raw = g_build_filename(dir, "crash.raw", NULL);
	g_assert_cmpint(tb_sh(NULL, "qemu-img create -q -f qcow2 -o cluster_size=4096 %s %u",
			      img, NBLOCKS * BLOCK), ==, 0);
	/* Three crashes in a row on the same image, at different points. */
	for (int round = 0; round < (int)G_N_ELEMENTS(modes); round++) {
		int fds[2], status, nflush = 0, rc;
		size_t start = nops;
		pid_t pid;

		g_assert_cmpint(pipe(fds), ==, 0);
		pid = fork();
		g_assert_cmpint(pid, >=, 0);
		if (pid == 0) {
			close(fds[0]);
			child(img, fds[1], 1000 + round, gen, round);
		}
		close(fds[1]);
		while (nflush < 20 + 15 * round) {
			struct rec r;

			if (read(fds[0], &r, sizeof(r)) != sizeof(r))
				break;
			add_rec(&ops, &nops, &cap, &r, start, &gen);
			nflush += r.type == REC_FLUSHED;
		}
		kill(pid, SIGKILL);
		/* what the child announced after our last read may have started too */
		for (;;) {
			struct rec r;

			if (read(fds[0], &r, sizeof(r)) != sizeof(r))
				break;
			add_rec(&ops, &nops, &cap, &r, start, &gen);
		}
		close(fds[0]);
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status));
		g_assert_cmpint(nflush, >=, 20 + 15 * round);

		wait_unlocked(img);
		/* 0: clean, 3: leaked clusters only; 2 would be corruption */
		rc = tb_sh(&out, "qemu-img check %s", img);
		g_test_message("round %d: %zu ops: qemu-img check -> %d\n%s", round, nops, rc, out);
		g_assert_true(rc == 0 || rc == 3);
		g_assert_null(strstr(out, "ERROR"));
		g_free(out);
		g_assert_cmpint(tb_sh(NULL, "qemu-img convert -O raw %s %s", img, raw), ==, 0);
		verify(raw, ops, nops);
	}
	g_free(ops);
	g_free(img);
	g_free(raw);
	tb_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/block/crash/sigkill", test_sigkill);
	return g_test_run();
}
