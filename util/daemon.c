/* -daemonize and -pidfile.  See daemon.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"

/* Process-wide by nature: there is one process, one pidfile, one parent. */
static int report_fd = -1;
static char *pidfile_path;
static int pidfile_fd = -1;

int daemonize_start(char *err, size_t errlen)
{
	int p[2];
	pid_t pid;
	char status;

	if (pipe2(p, O_CLOEXEC)) {
		snprintf(err, errlen, "-daemonize: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "-daemonize: fork: %s", strerror(errno));
		return -errno;
	}
	if (pid > 0) {
		/* Parent: the child's start-up status becomes ours. */
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;	/* the child died before it could say */
		_exit(status);
	}
	close(p[0]);
	report_fd = p[1];
	setsid();
	return 0;
}

void daemonize_done(int status)
{
	char s = status;
	int null;

	if (report_fd < 0)
		return;
	if (status == 0) {
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
	}
	if (write(report_fd, &s, 1) != 1)
		status = 1;
	close(report_fd);
	report_fd = -1;
}

/*
 * Open path and lock it.  The lock is ours only if path still names the
 * file locked: a vireo that exits unlinks its pidfile and then lets go of
 * the lock, so one that opened the old file in between would lock a file
 * nobody can see, and a third could then create and lock a new one.
 */
static int pidfile_lock(const char *path, char *err, size_t errlen)
{
	for (unsigned tries = 0; tries < 100; tries++) {
		struct stat locked, named;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0) {
			snprintf(err, errlen, "-pidfile %s: %s", path, strerror(errno));
			return -errno;
		}
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			snprintf(err, errlen, "-pidfile %s: held by another running process", path);
			close(fd);
			return -EEXIST;
		}
		if (!fstat(fd, &locked) && !stat(path, &named) && locked.st_dev == named.st_dev &&
		    locked.st_ino == named.st_ino)
			return fd;
		close(fd);	/* unlinked or replaced meanwhile: take the new one */
	}
	snprintf(err, errlen, "-pidfile %s: keeps being removed or replaced", path);
	return -EAGAIN;
}

int pidfile_create(const char *path, char *err, size_t errlen)
{
	char buf[32];
	int fd = pidfile_lock(path, err, errlen);

	if (fd < 0)
		return fd;
	snprintf(buf, sizeof(buf), "%d\n", getpid());
	if (ftruncate(fd, 0) || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
		snprintf(err, errlen, "-pidfile %s: %s", path, strerror(errno));
		unlink(path);	/* still locked: the name is ours */
		close(fd);
		return -EIO;
	}
	pidfile_fd = fd;
	pidfile_path = strdup(path);
	return 0;
}

void pidfile_remove(void)
{
	if (!pidfile_path)
		return;
	unlink(pidfile_path);
	close(pidfile_fd);
	free(pidfile_path);
	pidfile_path = NULL;
	pidfile_fd = -1;
}
