/*
 * Character backends for -serial: stdio, file:PATH, unix:PATH,server=on,
 * wait=off, pty, null/none.  See chardev.h.
 *
 * Threads: chardev_write runs on vCPU threads (from a UART register write),
 * everything else on the main loop (c->ctx).  Output goes to a non-blocking
 * fd; what the peer cannot take right away waits in a bounded buffer that
 * the main loop flushes when the fd becomes writable, and bytes beyond that
 * bound are dropped, so a stalled terminal or socket never stalls a vCPU.
 *
 * c->lock guards the output side (out_fd, outbuf, out_src) and the
 * frontend; it is never held while calling the frontend, because the
 * frontend (a UART) calls chardev_write with its own lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <glib-unix.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "chardev.h"
#include "log.h"
#include "options.h"

#define CHR_OUTBUF_MAX	(64 * 1024)	/* bytes kept for a slow peer */
#define CHR_ESCAPE	0x01		/* Ctrl-A, as QEMU's mux */

enum chardev_kind { CHR_NULL, CHR_STDIO, CHR_FILE, CHR_UNIX, CHR_TCP, CHR_PTY };

struct chardev {
	enum chardev_kind kind;
	char *spec;
	GMainContext *ctx;

	pthread_mutex_t lock;		/* guards the fields up to in_fd */
	struct chardev_frontend fe;
	bool has_fe;
	int out_fd;			/* -1: no peer, output is dropped */
	bool out_is_sock;		/* use send(MSG_NOSIGNAL) */
	GByteArray *outbuf;		/* bytes the peer has not taken yet */
	GSource *out_src;		/* flushes outbuf when out_fd is writable */

	/* Main loop only. */
	int in_fd;			/* -1: no input */
	GSource *in_src;
	int listen_fd;
	GSource *listen_src;
	char *path;			/* unix socket to unlink at close; tcp, pty: the name */
	bool escape;			/* stdio: Ctrl-A seen */
	int pty_fd;			/* pty: the master side, -1 otherwise */
	GSource *pty_timer;		/* pty: looks for a client while there is none */
};

/*
 * The terminal is the process's, not the VM's: at most one stdio backend
 * exists at a time and the saved mode is restored at close or at exit,
 * whichever comes first.
 */
static bool stdio_in_use;
static bool stdio_tty_raw;
static struct termios stdio_saved_tio;

static void stdio_restore_tty(void)
{
	if (stdio_tty_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved_tio);
		stdio_tty_raw = false;
	}
}

static void stdio_make_raw(void)
{
	static bool atexit_done;
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &stdio_saved_tio))
		return;
	t = stdio_saved_tio;
	/* Every key goes to the guest (Ctrl-C too); Ctrl-A x leaves. */
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_oflag |= OPOST;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t))
		return;
	stdio_tty_raw = true;
	if (!atexit_done) {
		atexit(stdio_restore_tty);
		atexit_done = true;
	}
}

/* One non-blocking write attempt; the lock is held. */
static ssize_t out_raw_write(struct chardev *c, const void *buf, size_t len)
{
	ssize_t n;

	do {
		if (c->out_is_sock)
			n = send(c->out_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			n = write(c->out_fd, buf, len);
	} while (n < 0 && errno == EINTR);
	return n;
}

/* Write as much of outbuf as the peer takes; the lock is held. */
static void out_flush_locked(struct chardev *c)
{
	while (c->outbuf->len) {
		ssize_t n = out_raw_write(c, c->outbuf->data, c->outbuf->len);

		if (n > 0) {
			g_byte_array_remove_range(c->outbuf, 0, n);
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		/* The peer is gone or broken: what it did not take is lost. */
		g_byte_array_set_size(c->outbuf, 0);
	}
}

static void out_stop_watch_locked(struct chardev *c)
{
	if (c->out_src) {
		g_source_destroy(c->out_src);
		g_source_unref(c->out_src);
		c->out_src = NULL;
	}
}

static gboolean out_writable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct chardev *c = opaque;
	gboolean again;

	pthread_mutex_lock(&c->lock);
	if (cond & (G_IO_ERR | G_IO_HUP | G_IO_NVAL))
		g_byte_array_set_size(c->outbuf, 0);
	else
		out_flush_locked(c);
	again = c->outbuf->len > 0;
	if (!again) {
		g_source_unref(c->out_src);
		c->out_src = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return again ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

void chardev_write(struct chardev *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t room;

	pthread_mutex_lock(&c->lock);
	if (c->out_fd < 0)
		goto out;
	if (!c->outbuf->len) {
		ssize_t n = out_raw_write(c, p, len);

		if (n < 0 && errno != EAGAIN)
			goto out;	/* peer gone: drop */
		if (n > 0) {
			p += n;
			len -= n;
		}
	}
	if (!len)
		goto out;
	room = CHR_OUTBUF_MAX - c->outbuf->len;
	if (len > room) {
		log_once("-serial %s: output dropped, the peer does not keep up", c->spec);
		len = room;
	}
	g_byte_array_append(c->outbuf, p, len);
	if (!c->out_src && c->outbuf->len) {
		c->out_src = g_unix_fd_source_new(c->out_fd, G_IO_OUT);
		g_source_set_callback(c->out_src, G_SOURCE_FUNC(out_writable), c, NULL);
		g_source_attach(c->out_src, c->ctx);
	}
out:
	pthread_mutex_unlock(&c->lock);
}

static void deliver(struct chardev *c, const uint8_t *buf, size_t len)
{
	struct chardev_frontend fe;
	bool has;

	if (!len)
		return;
	pthread_mutex_lock(&c->lock);
	fe = c->fe;
	has = c->has_fe;
	pthread_mutex_unlock(&c->lock);
	if (has && fe.receive)
		fe.receive(fe.opaque, buf, len);
}

static void user_quit(struct chardev *c)
{
	struct chardev_frontend fe;
	bool has;

	pthread_mutex_lock(&c->lock);
	fe = c->fe;
	has = c->has_fe;
	pthread_mutex_unlock(&c->lock);
	if (has && fe.quit)
		fe.quit(fe.opaque);
}

/* stdio input: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A h helps. */
static void stdio_input(struct chardev *c, const uint8_t *buf, size_t len)
{
	uint8_t out[256];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t b = buf[i];

		if (c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				deliver(c, out, n);
				user_quit(c);
				return;
			}
			if (b == 'h' || b == 'H' || b == '?') {
				fprintf(stderr, "\r\nC-a h    print this help\r\n"
					"C-a x    exit the VM\r\n"
					"C-a C-a  send C-a to the guest\r\n");
				continue;
			}
			if (b != CHR_ESCAPE)
				continue;
		} else if (b == CHR_ESCAPE) {
			c->escape = true;
			continue;
		}
		out[n++] = b;
	}
	deliver(c, out, n);
}

static void sock_client_gone(struct chardev *c);
static void pty_client_gone(struct chardev *c);

static gboolean in_readable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct chardev *c = opaque;
	uint8_t buf[256];
	ssize_t n;

	n = read(fd, buf, c->kind == CHR_STDIO ? 32 : sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		/* EOF or error: no more input, the VM goes on. */
		if (c->kind == CHR_UNIX || c->kind == CHR_TCP) {
			sock_client_gone(c);
		} else if (c->kind == CHR_PTY) {
			pty_client_gone(c);
		} else {
			g_source_unref(c->in_src);
			c->in_src = NULL;
		}
		return G_SOURCE_REMOVE;
	}
	if (c->kind == CHR_STDIO)
		stdio_input(c, buf, n);
	else
		deliver(c, buf, n);
	return G_SOURCE_CONTINUE;
}

static void in_watch(struct chardev *c, int fd)
{
	c->in_fd = fd;
	c->in_src = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
	g_source_set_callback(c->in_src, G_SOURCE_FUNC(in_readable), c, NULL);
	g_source_attach(c->in_src, c->ctx);
}

static gboolean sock_accept(gint fd, GIOCondition cond, gpointer opaque);

static void sock_listen_watch(struct chardev *c)
{
	c->listen_src = g_unix_fd_source_new(c->listen_fd, G_IO_IN);
	g_source_set_callback(c->listen_src, G_SOURCE_FUNC(sock_accept), c, NULL);
	g_source_attach(c->listen_src, c->ctx);
}

/* One client at a time: stop listening until it leaves. */
static gboolean sock_accept(gint fd, GIOCondition cond, gpointer opaque)
{
	struct chardev *c = opaque;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return G_SOURCE_CONTINUE;
	pthread_mutex_lock(&c->lock);
	c->out_fd = cfd;
	c->out_is_sock = true;
	pthread_mutex_unlock(&c->lock);
	in_watch(c, cfd);
	g_source_unref(c->listen_src);
	c->listen_src = NULL;
	return G_SOURCE_REMOVE;
}

/*
 * A socket or pty client left: what it did not take is dropped, output
 * goes nowhere and input stops until the next.  From the client's input
 * callback, which then returns REMOVE.
 */
static void peer_gone(struct chardev *c)
{
	pthread_mutex_lock(&c->lock);
	out_stop_watch_locked(c);
	g_byte_array_set_size(c->outbuf, 0);
	c->out_fd = -1;
	pthread_mutex_unlock(&c->lock);
	g_source_unref(c->in_src);
	c->in_src = NULL;
}

static void sock_client_gone(struct chardev *c)
{
	peer_gone(c);
	close(c->in_fd);
	c->in_fd = -1;
	sock_listen_watch(c);
}

/* A listening TCP socket on "[HOST]:PORT" (all addresses without HOST). */
static int listen_tcp(const char *hostport, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	char *host = g_strdup(hostport), *port = strrchr(host, ':');
	struct addrinfo *res = NULL;
	int fd = -1, one = 1, ret;

	if (!port || !port[1]) {
		snprintf(err, errlen, "expected HOST:PORT");
		g_free(host);
		return -EINVAL;
	}
	*port++ = 0;
	ret = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (ret) {
		snprintf(err, errlen, "%s", gai_strerror(ret));
		g_free(host);
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1)) {
		ret = -errno;
		snprintf(err, errlen, "cannot listen: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = ret;
	}
	freeaddrinfo(res);
	g_free(host);
	return fd;
}

/* A listening unix socket at path; c->path is set to remove it at close. */
static int listen_unix(struct chardev *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path longer than %zu bytes", sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	/* A stale socket of an earlier run; never remove anything else. */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1)) {
		int e = errno;

		snprintf(err, errlen, "cannot listen on '%s': %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	c->path = g_strdup(path);
	return fd;
}

/*
 * unix:PATH or tcp:[HOST]:PORT, server=on,wait=off: vireo listens and
 * serves one client at a time.
 */
static int open_socket(struct chardev *c, const char *arg, char *err, size_t errlen)
{
	struct opts *o;
	const char *addr;
	bool server, wait, nowait;
	int fd, ret = -EINVAL;
	char oerr[200];

	o = opts_parse("-serial", arg, "addr", oerr, sizeof(oerr));
	if (!o) {
		snprintf(err, errlen, "-serial %s: %s", c->spec, oerr);
		return -EINVAL;
	}
	addr = opts_get(o, "addr");
	/*
	 * "server" and "nowait" alone are QEMU's older spellings.  As in QEMU,
	 * a server waits for its first client unless told not to.
	 */
	if (opts_get_bool(o, "nowait", false, &nowait, oerr, sizeof(oerr)) ||
	    opts_get_bool(o, "server", false, &server, oerr, sizeof(oerr)) ||
	    opts_get_bool(o, "wait", !nowait, &wait, oerr, sizeof(oerr)) ||
	    opts_check_all_used(o, oerr, sizeof(oerr))) {
		snprintf(err, errlen, "-serial %s: %s", c->spec, oerr);
		goto out;
	}
	if (!addr || !*addr) {
		snprintf(err, errlen, "-serial %s: no socket %s", c->spec,
			 c->kind == CHR_UNIX ? "path" : "address");
		goto out;
	}
	if (!server) {
		snprintf(err, errlen, "-serial %s: only server=on is supported", c->spec);
		goto out;
	}
	if (wait) {
		snprintf(err, errlen, "-serial %s: only wait=off is supported", c->spec);
		goto out;
	}
	fd = c->kind == CHR_UNIX ? listen_unix(c, addr, oerr, sizeof(oerr)) :
				   listen_tcp(addr, oerr, sizeof(oerr));
	if (fd < 0) {
		snprintf(err, errlen, "-serial %s: %s", c->spec, oerr);
		ret = fd;
		goto out;
	}
	if (c->kind == CHR_TCP)
		c->path = g_strdup(addr);	/* for chardev_describe */
	c->listen_fd = fd;
	sock_listen_watch(c);
	ret = 0;
out:
	opts_free(o);
	return ret;
}

/*
 * pty: the guest's port on a pseudo-terminal, as QEMU's -serial pty, for
 * screen, minicom or virsh console on the name it logs.  While no one has
 * the other side open the master reads EIO and polls POLLHUP: output is
 * dropped then, as for a unix socket without a client, and a timer looks
 * for a client every 200 ms.
 */
static gboolean pty_look(gpointer opaque)
{
	struct chardev *c = opaque;
	struct pollfd p = { .fd = c->pty_fd, .events = POLLIN };

	if (poll(&p, 1, 0) < 0 || (p.revents & POLLHUP))
		return G_SOURCE_CONTINUE;
	pthread_mutex_lock(&c->lock);
	c->out_fd = c->pty_fd;
	pthread_mutex_unlock(&c->lock);
	in_watch(c, c->pty_fd);
	g_source_unref(c->pty_timer);
	c->pty_timer = NULL;
	return G_SOURCE_REMOVE;
}

static void pty_wait_client(struct chardev *c)
{
	c->pty_timer = g_timeout_source_new(200);
	g_source_set_callback(c->pty_timer, pty_look, c, NULL);
	g_source_attach(c->pty_timer, c->ctx);
}

static void pty_client_gone(struct chardev *c)
{
	peer_gone(c);
	c->in_fd = -1;		/* the master stays open for the next client */
	pty_wait_client(c);
}

static int open_pty(struct chardev *c, char *err, size_t errlen)
{
	char name[64];
	struct termios t;
	int slave;

	c->pty_fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (c->pty_fd < 0 || grantpt(c->pty_fd) || unlockpt(c->pty_fd) ||
	    ptsname_r(c->pty_fd, name, sizeof(name))) {
		snprintf(err, errlen, "-serial pty: cannot make a pseudo-terminal: %s",
			 strerror(errno));
		return -errno;
	}
	/* Raw, so the guest's bytes pass as they are (no echo, no CR/LF games). */
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0 || tcgetattr(slave, &t)) {
		snprintf(err, errlen, "-serial pty: %s: %s", name, strerror(errno));
		if (slave >= 0)
			close(slave);
		return -EIO;
	}
	cfmakeraw(&t);
	tcsetattr(slave, TCSANOW, &t);
	close(slave);
	c->path = g_strdup(name);
	log_info("-serial pty: char device redirected to %s", name);
	pty_wait_client(c);
	return 0;
}

const char *chardev_pty_name(const struct chardev *c)
{
	return c->kind == CHR_PTY ? c->path : NULL;
}

char *chardev_describe(const struct chardev *c)
{
	switch (c->kind) {
	case CHR_STDIO:
		return g_strdup("stdio");
	case CHR_FILE:
		return g_strdup(c->spec);
	case CHR_UNIX:
		return g_strdup_printf("unix:%s,server=on", c->path);
	case CHR_TCP:
		return g_strdup_printf("tcp:%s,server=on", c->path);
	case CHR_PTY:
		return g_strdup_printf("pty:%s", c->path);
	default:
		return g_strdup("null");
	}
}

static int open_stdio(struct chardev *c, char *err, size_t errlen)
{
	struct stat st = { 0 };
	int fd = -1;

	if (__atomic_exchange_n(&stdio_in_use, true, __ATOMIC_ACQ_REL)) {
		snprintf(err, errlen, "-serial %s: stdio is already used by another backend",
			 c->spec);
		return -EBUSY;
	}
	/*
	 * O_NONBLOCK belongs to the open file description, which stdout shares
	 * with stderr and with the shell: open our own description of the same
	 * terminal or pipe.  A regular file never blocks for long, a socket
	 * takes MSG_DONTWAIT per call.
	 */
	if (fstat(STDOUT_FILENO, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode))
		fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			snprintf(err, errlen, "-serial %s: stdout: %s", c->spec, strerror(errno));
			__atomic_store_n(&stdio_in_use, false, __ATOMIC_RELEASE);
			return -errno;
		}
		c->out_is_sock = S_ISSOCK(st.st_mode);
	}
	c->out_fd = fd;
	stdio_make_raw();
	in_watch(c, STDIN_FILENO);
	return 0;
}

static int open_file(struct chardev *c, const char *path, char *err, size_t errlen)
{
	int fd;

	if (!*path) {
		snprintf(err, errlen, "-serial %s: no file name", c->spec);
		return -EINVAL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "-serial %s: cannot open '%s': %s", c->spec, path,
			 strerror(e));
		return -e;
	}
	/* A FIFO or a terminal named by path must not stall a vCPU either. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->out_fd = fd;
	return 0;
}

struct chardev *chardev_open(const char *spec, GMainContext *ctx, char *err, size_t errlen)
{
	struct chardev *c = g_new0(struct chardev, 1);
	int ret;

	c->spec = g_strdup(spec);
	c->ctx = g_main_context_ref(ctx);
	pthread_mutex_init(&c->lock, NULL);
	c->outbuf = g_byte_array_new();
	c->out_fd = c->in_fd = c->listen_fd = c->pty_fd = -1;

	if (!strcmp(spec, "null") || !strcmp(spec, "none")) {
		c->kind = CHR_NULL;
		ret = 0;
	} else if (!strcmp(spec, "stdio")) {
		c->kind = CHR_STDIO;
		ret = open_stdio(c, err, errlen);
	} else if (!strncmp(spec, "file:", 5)) {
		c->kind = CHR_FILE;
		ret = open_file(c, spec + 5, err, errlen);
	} else if (!strncmp(spec, "unix:", 5) || !strncmp(spec, "tcp:", 4)) {
		c->kind = spec[0] == 'u' ? CHR_UNIX : CHR_TCP;
		ret = open_socket(c, spec + (spec[0] == 'u' ? 5 : 4), err, errlen);
	} else if (!strcmp(spec, "pty")) {
		c->kind = CHR_PTY;
		ret = open_pty(c, err, errlen);
	} else {
		snprintf(err, errlen, "-serial %s: unknown backend (expected stdio, "
			 "file:PATH, unix:PATH,server=on,wait=off, tcp:[HOST]:PORT,server=on,wait=off, pty, "
			 "null or none)", spec);
		ret = -EINVAL;
	}
	if (ret) {
		c->kind = CHR_NULL;	/* nothing of stdio was taken */
		chardev_close(c);
		return NULL;
	}
	return c;
}

void chardev_set_frontend(struct chardev *c, const struct chardev_frontend *fe)
{
	pthread_mutex_lock(&c->lock);
	c->has_fe = fe != NULL;
	if (fe)
		c->fe = *fe;
	pthread_mutex_unlock(&c->lock);
}

void chardev_close(struct chardev *c)
{
	if (!c)
		return;
	if (c->pty_timer) {
		g_source_destroy(c->pty_timer);
		g_source_unref(c->pty_timer);
	}
	pthread_mutex_lock(&c->lock);
	out_stop_watch_locked(c);
	/* Give a terminal or a file what is still buffered, without waiting. */
	if (c->out_fd >= 0)
		out_flush_locked(c);
	if (c->out_fd >= 0 && c->out_fd != c->in_fd && c->out_fd != c->pty_fd)
		close(c->out_fd);
	c->out_fd = -1;
	pthread_mutex_unlock(&c->lock);
	if (c->in_src) {
		g_source_destroy(c->in_src);
		g_source_unref(c->in_src);
	}
	if (c->in_fd > STDERR_FILENO && c->in_fd != c->pty_fd)
		close(c->in_fd);
	if (c->pty_fd >= 0)
		close(c->pty_fd);
	if (c->listen_src) {
		g_source_destroy(c->listen_src);
		g_source_unref(c->listen_src);
	}
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->path && c->kind == CHR_UNIX)
		unlink(c->path);
	if (c->kind == CHR_STDIO) {
		stdio_restore_tty();
		__atomic_store_n(&stdio_in_use, false, __ATOMIC_RELEASE);
	}
	g_byte_array_unref(c->outbuf);
	g_main_context_unref(c->ctx);
	pthread_mutex_destroy(&c->lock);
	g_free(c->path);
	g_free(c->spec);
	g_free(c);
}
