/*
 * The incoming side: -incoming URI / -incoming defer + migrate-incoming.
 * A listening socket is served on the main loop; the first connection (or
 * the fd of file:, exec:, fd:) is read by a loader thread.  The guest
 * resumes only when the whole stream loaded and its checksum matched;
 * on a bad or cut stream the process exits with the loader's message.
 * The devices are held (quiesced) over the load and start serving with
 * the drives activated, at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "log.h"
#include "machine.h"
#include "migration/migration_int.h"
#include "tsan.h"

struct in_result {
	struct migration *mig;
	int ret;
	char msg[256];
};

static gboolean incoming_done(gpointer opaque)
{
	struct in_result *res = opaque;
	struct migration *mig;
	struct machine *m;

	tsan_acquire(res);
	mig = res->mig;
	m = mig->m;
	if (mig->in_thread_running) {
		pthread_join(mig->in_thread, NULL);
		mig->in_thread_running = false;
	}
	if (mig->listen_fd >= 0) {
		close(mig->listen_fd);
		mig->listen_fd = -1;
	}
	if (res->ret) {
		pthread_mutex_lock(&mig->lock);
		snprintf(mig->info.error, sizeof(mig->info.error), "%s", res->msg);
		pthread_mutex_unlock(&mig->lock);
		migration_set_status(mig, MIG_FAILED);
		log_error("incoming migration failed: %s", res->msg);
		machine_quit(m, 1, "host-error");
		return G_SOURCE_REMOVE;
	}
	pthread_mutex_lock(&mig->lock);
	mig->info.total_time = (mig_now_us() - mig->start_us) / 1000;
	pthread_mutex_unlock(&mig->lock);
	/* The disks are ours now: drives added from here on open active. */
	m->incoming = false;
	/* Devices serve from here on, not from when their section loaded. */
	mig_resume_devices(m);
	migration_set_status(mig, MIG_COMPLETED);
	if (mig->autostart && mig->src_running)
		machine_resume(m);
	return G_SOURCE_REMOVE;
}

static void *incoming_thread(void *opaque)
{
	struct migration *mig = opaque;
	struct in_result *res = g_new0(struct in_result, 1);
	struct mig_stream s;
	int type;
	socklen_t len = sizeof(type);

	res->mig = mig;
	res->ret = mig_stream_init(&s, mig->in_fd);
	if (!res->ret) {
		s.cancel = &mig->cancel;
		s.accept_fd = mig->listen_fd;
		res->ret = mig_load(mig->m, &s);
		snprintf(res->msg, sizeof(res->msg), "%s", s.msg);
		/*
		 * The source flushed and let go of the disks before it sent
		 * the device state: take them now, before saying yes, so a
		 * refusal leaves the guest with the source.  The VM is not
		 * running and the main thread does not touch the drives.
		 */
		if (!res->ret)
			res->ret = migration_activate_drives(mig->m, res->msg, sizeof(res->msg));
		pthread_mutex_lock(&mig->lock);
		mig->info.transferred = s.bytes;
		pthread_mutex_unlock(&mig->lock);
		mig_stream_free(&s);
	}
	/* Tell a source on a socket that the stream is in: it may let go. */
	if (!getsockopt(mig->in_fd, SOL_SOCKET, SO_TYPE, &type, &len) &&
	    write(mig->in_fd, res->ret ? "N" : "A", 1) != 1 && !res->ret) {
		res->ret = -EPIPE;
		snprintf(res->msg, sizeof(res->msg),
			 "the source went away before it heard that the stream loaded");
	}
	tsan_release(res);
	tsan_ignore_begin();
	g_main_context_invoke_full(mig->m->ctx, G_PRIORITY_DEFAULT, incoming_done, res, g_free);
	tsan_ignore_end();
	return NULL;
}

static int start_loader(struct migration *mig, int fd)
{
	int ret;

	mig->in_fd = fd;
	mig->start_us = mig_now_us();
	ret = mig_register_accel_sections(mig->m, mig);
	if (ret)
		return ret;
	/*
	 * Hold the devices: a device whose section says it was serving
	 * starts its I/O threads at the resume in incoming_done, once the
	 * whole stream is in and the drives are ours, not in the middle of
	 * the load, with disks the source may still be flushing.
	 */
	ret = mig_quiesce_devices(mig->m);
	if (ret)
		return ret;
	migration_set_status(mig, MIG_ACTIVE);
	ret = pthread_create(&mig->in_thread, NULL, incoming_thread, mig);
	if (ret)
		return -ret;
	pthread_setname_np(mig->in_thread, "mig/dst/load");
	mig->in_thread_running = true;
	return 0;
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer opaque)
{
	struct migration *mig = opaque;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return G_SOURCE_CONTINUE;
	/*
	 * One source only: stop watching.  The socket stays open for the
	 * loader, which accepts the multifd channels on it.
	 */
	mig->listen_watch = 0;
	if (start_loader(mig, c)) {
		log_error("incoming migration: cannot start the loader");
		close(c);
		mig->in_fd = -1;
		machine_quit(mig->m, 1, "host-error");
	}
	return G_SOURCE_REMOVE;
}

int migration_incoming(struct machine *m, const char *uri, bool autostart, char *err,
		       size_t errlen)
{
	struct migration *mig = migration_get(m);
	bool listener;
	int fd, ret;

	if (!strcmp(uri, "defer")) {
		mig->deferred = true;
		mig->autostart = autostart;
		return 0;
	}
	if (mig->listen_fd >= 0 || mig->in_thread_running || mig->in_fd >= 0 ||
	    mig->status != MIG_NONE) {
		snprintf(err, errlen, "The incoming migration has already been started");
		return -EBUSY;
	}
	if (!mig->deferred)
		mig->autostart = autostart;
	fd = mig_listen(uri, &listener, err, errlen);
	if (fd < 0)
		return fd;
	mig->deferred = false;
	if (listener) {
		GSource *src = g_unix_fd_source_new(fd, G_IO_IN);

		mig->listen_fd = fd;
		g_source_set_callback(src, G_SOURCE_FUNC(on_accept), mig, NULL);
		mig->listen_watch = g_source_attach(src, m->ctx);
		g_source_unref(src);
		migration_set_status(mig, MIG_SETUP);
		return 0;
	}
	ret = start_loader(mig, fd);
	if (ret) {
		snprintf(err, errlen, "cannot start the incoming migration: %s", strerror(-ret));
		if (strncmp(uri, "fd:", 3))	/* the caller's to close (migration.h) */
			close(fd);
		mig->in_fd = -1;
	}
	return ret;
}

bool migration_incoming_deferred(struct machine *m)
{
	return m->migration && m->migration->deferred;
}

void migration_incoming_stop(struct migration *mig)
{
	if (mig->listen_watch) {
		GSource *src = g_main_context_find_source_by_id(mig->m->ctx, mig->listen_watch);

		if (src)
			g_source_destroy(src);
		mig->listen_watch = 0;
	}
	if (mig->listen_fd >= 0) {
		close(mig->listen_fd);
		mig->listen_fd = -1;
	}
	if (mig->in_thread_running) {
		pthread_join(mig->in_thread, NULL);
		mig->in_thread_running = false;
	}
	if (mig->in_fd >= 0) {
		close(mig->in_fd);
		mig->in_fd = -1;
	}
}
