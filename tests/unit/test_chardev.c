/* Character backends: file output, unix socket server, pty, stdio escape, bad specs. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <termios.h>
#include <unistd.h>

#include "chardev.h"

struct sink {
	GByteArray *in;
	int quits;
};

static void sink_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct sink *s = opaque;

	g_byte_array_append(s->in, buf, len);
}

static void sink_quit(void *opaque)
{
	struct sink *s = opaque;

	s->quits++;
}

static gboolean guard_expired(gpointer opaque)
{
	*(bool *)opaque = true;
	return G_SOURCE_REMOVE;
}

/* Iterate ctx until *cond holds; a generous guard keeps a bug from hanging. */
static void spin_until(GMainContext *ctx, bool (*cond)(void *), void *arg)
{
	bool expired = false;
	GSource *guard = g_timeout_source_new_seconds(10);

	g_source_set_callback(guard, guard_expired, &expired, NULL);
	g_source_attach(guard, ctx);
	while (!cond(arg) && !expired)
		g_main_context_iteration(ctx, TRUE);
	g_source_destroy(guard);
	g_source_unref(guard);
	g_assert_true(cond(arg));
}

struct want {
	struct sink *s;
	size_t len;
};

static bool sink_has(void *opaque)
{
	struct want *w = opaque;

	return w->s->in->len >= w->len;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	return fd;
}

/*
 * One round with a connected client on fd: its bytes `in` reach the
 * frontend (after what came before), and `out` written to the backend
 * reaches it.
 */
static void client_round(GMainContext *ctx, struct chardev *c, struct want *w, int fd,
			 const char *in, const char *out)
{
	size_t before = w->s->in->len, n = strlen(in), m = strlen(out);
	char buf[16];

	g_assert_cmpint(write(fd, in, n), ==, (ssize_t)n);
	w->len = before + n;
	spin_until(ctx, sink_has, w);
	g_assert_cmpmem(w->s->in->data + before, w->s->in->len - before, in, n);
	chardev_write(c, out, m);
	g_assert_cmpint(recv(fd, buf, sizeof(buf), 0), ==, (ssize_t)m);
	g_assert_cmpmem(buf, m, out, m);
}

static void test_file(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-chr-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "out.txt", NULL);
	g_autofree char *spec = g_strdup_printf("file:%s", path);
	GMainContext *ctx = g_main_context_new();
	char err[256] = "", *data;
	gsize len;
	struct chardev *c;

	/* Truncates what was there. */
	g_assert_true(g_file_set_contents(path, "old contents", -1, NULL));
	c = chardev_open(spec, ctx, err, sizeof(err));
	g_assert_nonnull(c);
	chardev_write(c, "hello ", 6);
	chardev_write(c, "world", 5);
	chardev_close(c);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpstr(data, ==, "hello world");
	g_free(data);
	g_unlink(path);
	g_rmdir(dir);
	g_main_context_unref(ctx);
}

static void test_unix(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-chr-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "sock", NULL);
	g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);
	GMainContext *ctx = g_main_context_new();
	struct sink s = { .in = g_byte_array_new() };
	struct chardev_frontend fe = { .receive = sink_receive, .opaque = &s };
	struct want w = { &s, 3 };
	char err[256] = "";
	struct chardev *c;
	int fd;

	c = chardev_open(spec, ctx, err, sizeof(err));
	g_assert_nonnull(c);
	chardev_set_frontend(c, &fe);

	/* No client: output is dropped, not kept for the next one. */
	chardev_write(c, "lost", 4);

	fd = unix_connect(path);
	client_round(ctx, c, &w, fd, "abc", "out");
	close(fd);

	/* The first client left: a second one is served. */
	fd = unix_connect(path);
	client_round(ctx, c, &w, fd, "de", "2nd");
	close(fd);
	g_assert_cmpmem(s.in->data, s.in->len, "abcde", 5);

	chardev_close(c);
	/* The socket file goes with the backend. */
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_rmdir(dir);
	g_byte_array_unref(s.in);
	g_main_context_unref(ctx);
}

/* -serial tcp:127.0.0.1:PORT,server=on,wait=off: as the unix socket, over TCP. */
static void test_tcp(void)
{
	GMainContext *ctx = g_main_context_new();
	struct sink s = { .in = g_byte_array_new() };
	struct chardev_frontend fe = { .receive = sink_receive, .opaque = &s };
	struct want w = { &s, 3 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char err[256] = "", *spec = NULL;
	struct chardev *c = NULL;
	int fd;

	/* A free port below the ephemeral range; another test may take one first. */
	for (int i = 0; i < 50 && !c; i++) {
		unsigned port = 20000 + g_random_int_range(0, 12000);

		g_free(spec);
		spec = g_strdup_printf("tcp:127.0.0.1:%u,server=on,wait=off", port);
		c = chardev_open(spec, ctx, err, sizeof(err));
		sa.sin_port = htons(port);
	}
	g_assert_nonnull(c);
	chardev_set_frontend(c, &fe);
	chardev_write(c, "lost", 4);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	client_round(ctx, c, &w, fd, "abc", "out");
	close(fd);
	chardev_close(c);
	g_free(spec);
	g_byte_array_unref(s.in);
	g_main_context_unref(ctx);
}

/* Read from fd until want bytes came, iterating ctx meanwhile; 10 s at most. */
static void read_exactly(GMainContext *ctx, int fd, char *buf, size_t want)
{
	size_t got = 0;

	for (int i = 0; i < 1000 && got < want; i++) {
		ssize_t n = read(fd, buf + got, want - got);

		if (n > 0)
			got += n;
		else
			g_usleep(10000);
		while (g_main_context_iteration(ctx, FALSE))
			;
	}
	g_assert_cmpuint(got, ==, want);
}

/*
 * -serial pty: output without a client is dropped; a client that opens
 * the terminal gets the guest's output and sends it input, raw; after it
 * closes, the next client is served.
 */
static void test_pty(void)
{
	GMainContext *ctx = g_main_context_new();
	struct sink s = { .in = g_byte_array_new() };
	struct chardev_frontend fe = { .receive = sink_receive, .opaque = &s };
	struct want w = { &s, 4 };
	char err[256] = "", buf[16];
	struct chardev *c;
	const char *name;

	c = chardev_open("pty", ctx, err, sizeof(err));
	g_assert_nonnull(c);
	chardev_set_frontend(c, &fe);
	name = chardev_pty_name(c);
	g_assert_nonnull(name);
	g_assert_true(g_str_has_prefix(name, "/dev/pts/"));
	chardev_write(c, "lost", 4);

	for (int round = 0; round < 2; round++) {
		int fd = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
		struct termios t;

		g_assert_cmpint(fd, >=, 0);
		/* Raw: no echo of the input, no CR added to the output. */
		g_assert_cmpint(tcgetattr(fd, &t), ==, 0);
		g_assert_false(t.c_lflag & (ECHO | ICANON));
		g_assert_false(t.c_oflag & OPOST);
		g_assert_cmpint(write(fd, "in\r\n", 4), ==, 4);
		spin_until(ctx, sink_has, &w);
		g_assert_cmpmem(s.in->data + round * 4, 4, "in\r\n", 4);
		chardev_write(c, "out\n", 4);
		read_exactly(ctx, fd, buf, 4);
		g_assert_cmpmem(buf, 4, "out\n", 4);
		close(fd);
		/* The backend sees the client go (EIO) and waits for the next. */
		for (int i = 0; i < 50; i++)
			g_main_context_iteration(ctx, FALSE);
		w.len += 4;
	}
	chardev_close(c);
	g_byte_array_unref(s.in);
	g_main_context_unref(ctx);
}

/* A client that never reads must not block the writer. */
static void test_unix_slow_peer(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-chr-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "sock", NULL);
	g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);
	GMainContext *ctx = g_main_context_new();
	struct sink s = { .in = g_byte_array_new() };
	struct chardev_frontend fe = { .receive = sink_receive, .opaque = &s };
	struct want w = { &s, 1 };
	static char block[64 * 1024];
	char err[256] = "";
	struct chardev *c;
	int fd;

	c = chardev_open(spec, ctx, err, sizeof(err));
	g_assert_nonnull(c);
	chardev_set_frontend(c, &fe);
	fd = unix_connect(path);
	g_assert_cmpint(write(fd, "x", 1), ==, 1);
	spin_until(ctx, sink_has, &w);
	/* Far more than socket buffers and the backend's own buffer hold. */
	for (int i = 0; i < 64; i++)
		chardev_write(c, block, sizeof(block));
	close(fd);
	chardev_close(c);
	g_rmdir(dir);
	g_byte_array_unref(s.in);
	g_main_context_unref(ctx);
}

struct stdio_fixture {
	int saved_in, saved_out;
	int in_w, out_r;
};

static void stdio_redirect(struct stdio_fixture *f)
{
	int in[2], out[2];

	g_assert_cmpint(pipe(in), ==, 0);
	g_assert_cmpint(pipe(out), ==, 0);
	f->saved_in = dup(0);
	f->saved_out = dup(1);
	dup2(in[0], 0);
	dup2(out[1], 1);
	close(in[0]);
	close(out[1]);
	f->in_w = in[1];
	f->out_r = out[0];
}

static void stdio_restore(struct stdio_fixture *f)
{
	dup2(f->saved_in, 0);
	dup2(f->saved_out, 1);
	close(f->saved_in);
	close(f->saved_out);
	close(f->in_w);
	close(f->out_r);
}

static bool sink_quit_seen(void *opaque)
{
	return ((struct sink *)opaque)->quits > 0;
}

static void test_stdio_escape(void)
{
	GMainContext *ctx = g_main_context_new();
	struct sink s = { .in = g_byte_array_new() };
	struct chardev_frontend fe = { sink_receive, sink_quit, &s };
	/* a, C-a C-a (one literal C-a), b, C-a x (quit), then c (not read) */
	static const uint8_t typed[] = { 'a', 1, 1, 'b', 1, 'x', 'c' };
	struct stdio_fixture f;
	char err[256] = "", buf[8];
	struct chardev *c, *c2;

	stdio_redirect(&f);
	c = chardev_open("stdio", ctx, err, sizeof(err));
	g_assert_nonnull(c);
	chardev_set_frontend(c, &fe);

	/* Only one backend owns the terminal. */
	c2 = chardev_open("stdio", ctx, err, sizeof(err));
	g_assert_null(c2);
	g_assert_nonnull(strstr(err, "stdio"));

	chardev_write(c, "guest", 5);
	g_assert_cmpint(read(f.out_r, buf, sizeof(buf)), ==, 5);
	g_assert_cmpmem(buf, 5, "guest", 5);

	g_assert_cmpint(write(f.in_w, typed, sizeof(typed)), ==, sizeof(typed));
	spin_until(ctx, sink_quit_seen, &s);
	g_assert_cmpint(s.quits, ==, 1);
	g_assert_cmpmem(s.in->data, s.in->len, "a\001b", 3);
	chardev_close(c);

	/* Closing gave stdio back. */
	c = chardev_open("stdio", ctx, err, sizeof(err));
	g_assert_nonnull(c);
	chardev_close(c);
	stdio_restore(&f);
	g_byte_array_unref(s.in);
	g_main_context_unref(ctx);
}

/* On a terminal, stdio goes raw while open and is restored at close. */
static void test_stdio_tty(void)
{
	GMainContext *ctx = g_main_context_new();
	struct termios before, during, after;
	int master, slave, saved_in, saved_out;
	char err[256] = "";
	struct chardev *c;

	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) || unlockpt(master)) {
		g_test_skip("no pseudo-terminals on this host");
		return;
	}
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	g_assert_cmpint(slave, >=, 0);
	saved_in = dup(0);
	saved_out = dup(1);
	dup2(slave, 0);
	dup2(slave, 1);
	g_assert_cmpint(tcgetattr(0, &before), ==, 0);
	g_assert_true(before.c_lflag & ICANON);

	c = chardev_open("stdio", ctx, err, sizeof(err));
	g_assert_nonnull(c);
	g_assert_cmpint(tcgetattr(0, &during), ==, 0);
	g_assert_false(during.c_lflag & (ICANON | ECHO | ISIG));
	chardev_close(c);
	g_assert_cmpint(tcgetattr(0, &after), ==, 0);
	g_assert_cmphex(after.c_lflag, ==, before.c_lflag);
	g_assert_cmphex(after.c_iflag, ==, before.c_iflag);

	dup2(saved_in, 0);
	dup2(saved_out, 1);
	close(saved_in);
	close(saved_out);
	close(slave);
	close(master);
	g_main_context_unref(ctx);
}

static void expect_error(const char *spec, const char *needle)
{
	GMainContext *ctx = g_main_context_new();
	char err[256] = "";

	g_assert_null(chardev_open(spec, ctx, err, sizeof(err)));
	g_assert_nonnull(strstr(err, spec));
	if (needle)
		g_assert_nonnull(strstr(err, needle));
	g_main_context_unref(ctx);
}

static void test_bad_specs(void)
{
	expect_error("bogus", "unknown backend");
	expect_error("tcp:localhost:4444", "server=on");		/* a client: not supported */
	expect_error("tcp:4444,server=on,wait=off", "expected HOST:PORT");
	expect_error("tcp:no-such-host.invalid:4444,server=on,wait=off", "tcp:");
	expect_error("file:/nonexistent-vireo-dir/out", "No such file");
	expect_error("file:", "no file name");
	expect_error("unix:/tmp/vireo-x.sock,server=on", "wait=off");
	expect_error("unix:/tmp/vireo-x.sock,wait=off", "server=on");
	expect_error("unix:/tmp/vireo-x.sock,server=on,wait=off,color=red", "color");
	expect_error("unix:/tmp/vireo-x.sock,server=maybe,wait=off", "server");
	expect_error("unix:/nonexistent-vireo-dir/s,server=on,wait=off", "cannot listen");
	g_assert_false(g_file_test("/tmp/vireo-x.sock", G_FILE_TEST_EXISTS));
}

static void test_null(void)
{
	GMainContext *ctx = g_main_context_new();
	char err[256] = "";
	struct chardev *c = chardev_open("null", ctx, err, sizeof(err));

	g_assert_nonnull(c);
	chardev_write(c, "nowhere", 7);
	chardev_close(c);
	g_main_context_unref(ctx);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/chardev/file", test_file);
	g_test_add_func("/chardev/unix", test_unix);
	g_test_add_func("/chardev/unix-slow-peer", test_unix_slow_peer);
	g_test_add_func("/chardev/tcp", test_tcp);
	g_test_add_func("/chardev/pty", test_pty);
	g_test_add_func("/chardev/stdio-escape", test_stdio_escape);
	g_test_add_func("/chardev/stdio-tty", test_stdio_tty);
	g_test_add_func("/chardev/bad-specs", test_bad_specs);
	g_test_add_func("/chardev/null", test_null);
	return g_test_run();
}
