/*
 * Migration transports: tcp:HOST:PORT, unix:PATH, exec:CMD, fd:N and
 * file:PATH[,offset=N].  The source gets a connected fd to write; the
 * destination a listening socket (tcp, unix) or an fd to read.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migration/migration_int.h"

static int split_hostport(const char *hp, char *host, size_t hlen, const char **port)
{
	const char *colon = strrchr(hp, ':');
	size_t n;

	if (!colon)
		return -EINVAL;
	n = colon - hp;
	/* [v6]:port */
	if (n >= 2 && hp[0] == '[' && hp[n - 1] == ']') {
		hp++;
		n -= 2;
	}
	if (n >= hlen)
		return -EINVAL;
	memcpy(host, hp, n);
	host[n] = 0;
	*port = colon + 1;
	return 0;
}

static int tcp_socket(const char *hp, bool listen_, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = listen_ ? AI_PASSIVE : 0 }, *res, *ai;
	char host[256];
	const char *port;
	int fd = -1, ret, one = 1, saved = 0;

	if (split_hostport(hp, host, sizeof(host), &port)) {
		snprintf(err, errlen, "tcp:%s: expected tcp:HOST:PORT", hp);
		return -EINVAL;
	}
	ret = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (ret) {
		snprintf(err, errlen, "tcp:%s: %s", hp, gai_strerror(ret));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (listen_) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 256))
				break;
		} else if (!connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			break;
		}
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "tcp:%s: cannot %s: %s", hp, listen_ ? "listen" : "connect",
			 strerror(saved));
		return -saved;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int unix_socket(const char *path, bool listen_, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, saved;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix:%s: path too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (listen_) {
		unlink(path);
		if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(fd, 256))
			return fd;
	} else if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		return fd;
	}
	saved = errno;
	close(fd);
	snprintf(err, errlen, "unix:%s: cannot %s: %s", path, listen_ ? "listen" : "connect",
		 strerror(saved));
	return -saved;
}

/* sh -c cmd with its stdin (source) or stdout (destination) on a pipe. */
static int exec_pipe(const char *cmd, bool to_cmd, char *err, size_t errlen)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC)) {
		snprintf(err, errlen, "exec:%s: %s", cmd, strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "exec:%s: cannot fork: %s", cmd, strerror(errno));
		close(p[0]);
		close(p[1]);
		return -EAGAIN;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec. */
		dup2(to_cmd ? p[0] : p[1], to_cmd ? 0 : 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(to_cmd ? p[0] : p[1]);
	return to_cmd ? p[1] : p[0];
}

static int fd_uri(const char *s, char *err, size_t errlen)
{
	char *end;
	long fd = strtol(s, &end, 10);

	if (*s == 0 || *end || fd < 0 || fcntl(fd, F_GETFD) < 0) {
		snprintf(err, errlen, "fd:%s: not an open file descriptor number", s);
		return -EBADF;
	}
	return fd;
}

/* file:PATH[,offset=N] */
static int file_uri(const char *spec, bool write_, char *err, size_t errlen)
{
	char *path = g_strdup(spec), *comma = strrchr(path, ',');
	uint64_t offset = 0;
	int fd;

	if (comma && !strncmp(comma, ",offset=", 8)) {
		char *end;

		offset = strtoull(comma + 8, &end, 0);
		if (*end || comma[8] == 0) {
			snprintf(err, errlen, "file:%s: offset= wants a number", spec);
			g_free(path);
			return -EINVAL;
		}
		*comma = 0;
	}
	fd = open(path, write_ ? O_WRONLY | O_CREAT | O_CLOEXEC | (offset ? 0 : O_TRUNC) :
		  O_RDONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "file:%s: %s", path, strerror(errno));
		g_free(path);
		return -errno;
	}
	if (write_ && offset && ftruncate(fd, offset)) {
		snprintf(err, errlen, "file:%s: %s", path, strerror(errno));
		close(fd);
		g_free(path);
		return -errno;
	}
	if (offset && lseek(fd, offset, SEEK_SET) < 0) {
		snprintf(err, errlen, "file:%s: cannot seek to %llu", path,
			 (unsigned long long)offset);
		close(fd);
		g_free(path);
		return -EINVAL;
	}
	g_free(path);
	return fd;
}

static int open_uri(const char *uri, bool source, bool *listener, char *err, size_t errlen)
{
	*listener = false;
	if (!strncmp(uri, "tcp:", 4)) {
		*listener = !source;
		return tcp_socket(uri + 4, !source, err, errlen);
	}
	if (!strncmp(uri, "unix:", 5)) {
		*listener = !source;
		return unix_socket(uri + 5, !source, err, errlen);
	}
	if (!strncmp(uri, "exec:", 5))
		return exec_pipe(uri + 5, source, err, errlen);
	if (!strncmp(uri, "fd:", 3))
		return fd_uri(uri + 3, err, errlen);
	if (!strncmp(uri, "file:", 5))
		return file_uri(uri + 5, source, err, errlen);
	snprintf(err, errlen, "'%s': unknown migration URI (tcp:, unix:, exec:, fd:, file:)", uri);
	return -EINVAL;
}

int mig_connect(const char *uri, char *err, size_t errlen)
{
	bool l;

	return open_uri(uri, true, &l, err, errlen);
}

int mig_listen(const char *uri, bool *is_listener, char *err, size_t errlen)
{
	return open_uri(uri, false, is_listener, err, errlen);
}
