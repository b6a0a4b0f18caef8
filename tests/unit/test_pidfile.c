/*
 * -pidfile: one running vireo holds the file; another is refused while it
 * runs; the file goes at exit; a lock taken on a file an exiting holder
 * has just unlinked is not taken for the pidfile.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"

/* In a child: pidfile_create's result, as the exit status (0 or errno). */
static int create_in_child(const char *path)
{
	char err[256];
	pid_t pid = fork();
	int st;

	g_assert_cmpint(pid, >=, 0);
	if (!pid)
		_exit(-pidfile_create(path, err, sizeof(err)));
	g_assert_cmpint(waitpid(pid, &st, 0), ==, pid);
	g_assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_held(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-pid-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "vireo.pid", NULL);
	g_autofree char *text = NULL;
	char err[256];

	g_assert_cmpint(pidfile_create(path, err, sizeof(err)), ==, 0);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_assert_cmpint(atoi(text), ==, getpid());
	g_assert_cmpint(create_in_child(path), ==, EEXIST);
	pidfile_remove();
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	/* Free again: a new process takes it (and its exit leaves the file). */
	g_assert_cmpint(create_in_child(path), ==, 0);
	g_unlink(path);
	g_rmdir(dir);
}

/*
 * flock() as the test wants it: the code under test is linked into this
 * binary, so this definition is the one pidfile_create calls.  When armed,
 * the first call first plays an exiting holder and a new vireo: the
 * holder unlinks the file and lets go of it, the new one creates the path
 * again and locks that.
 */
static struct {
	const char *path;
	int holder_fd, new_fd;
	bool armed;
} race;

int flock(int fd, int op)
{
	if (race.armed) {
		race.armed = false;
		g_assert_cmpint(unlink(race.path), ==, 0);
		close(race.holder_fd);
		race.new_fd = open(race.path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		g_assert_cmpint(race.new_fd, >=, 0);
		g_assert_cmpint(syscall(SYS_flock, race.new_fd, LOCK_EX | LOCK_NB), ==, 0);
	}
	return syscall(SYS_flock, fd, op);
}

/*
 * pidfile_create opens the file a running vireo holds; before it locks,
 * that vireo exits (unlink, then unlock) and another creates and locks
 * the path anew.  The lock pidfile_create then gets is on a file nobody
 * can see: it must not take it for the pidfile, and is refused by the
 * new holder instead.
 */
static void test_holder_exits(void)
{
	g_autofree char *dir = g_dir_make_tmp("vireo-pid-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "vireo.pid", NULL);
	char err[256];

	race.path = path;
	race.holder_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	g_assert_cmpint(race.holder_fd, >=, 0);
	g_assert_cmpint(syscall(SYS_flock, race.holder_fd, LOCK_EX | LOCK_NB), ==, 0);
	race.armed = true;
	g_assert_cmpint(pidfile_create(path, err, sizeof(err)), ==, -EEXIST);
	g_assert_nonnull(strstr(err, "held by another running process"));
	close(race.new_fd);
	g_unlink(path);
	g_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pidfile/held", test_held);
	g_test_add_func("/pidfile/holder-exits", test_holder_exits);
	return g_test_run();
}
