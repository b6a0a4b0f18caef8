/*
 * The migration state machine: the outgoing thread (pre-copy, switch-over,
 * acknowledgement), cancellation, the incoming side, capabilities,
 * parameters and the MIGRATION event.
 *
 * Threads: QMP and the command line call in on the main thread.  The
 * outgoing thread asks the main thread to stop the VM at switch-over (and
 * to resume it if the migration fails) through g_main_context_invoke, and
 * waits on mig->cond; status changes reach QMP the same way.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "accel/accel.h"
#include "block.h"
#include "log.h"
#include "machine.h"
#include "migration/migration_int.h"
#include "monitor.h"
#include "tsan.h"
#include "vcpu.h"

/* Extra pre-copy passes, once the rest fits downtime-limit, while each shrinks it. */
#define MIG_SHRINK_PASSES	4
#define MIG_SHRINK_MIN_PAGES	64

/* How long the source waits for the destination to take the last bytes. */
#define MIG_ACK_TIMEOUT_MS 60000

static const char *const status_names[] = {
	[MIG_NONE] = "none", [MIG_SETUP] = "setup", [MIG_ACTIVE] = "active",
	[MIG_PRE_SWITCHOVER] = "pre-switchover", [MIG_DEVICE] = "device",
	[MIG_COMPLETED] = "completed", [MIG_FAILED] = "failed",
	[MIG_CANCELLING] = "cancelling", [MIG_CANCELLED] = "cancelled",
};

static const char *const cap_names[] = {
	[MIG_CAP_MULTIFD] = "multifd", [MIG_CAP_MAPPED_RAM] = "mapped-ram",
	[MIG_CAP_AUTO_CONVERGE] = "auto-converge", [MIG_CAP_EVENTS] = "events",
	[MIG_CAP_PAUSE_BEFORE_SWITCHOVER] = "pause-before-switchover",
};

const char *migration_status_name(enum mig_status s)
{
	return s <= MIG_CANCELLED ? status_names[s] : "unknown";
}

const char *migration_cap_name(enum mig_cap c)
{
	return c < MIG_CAP_NR ? cap_names[c] : NULL;
}

struct migration *migration_get(struct machine *m)
{
	struct migration *mig = m->migration;

	if (mig)
		return mig;
	mig = calloc(1, sizeof(*mig));
	mig->m = m;
	pthread_mutex_init(&mig->lock, NULL);
	pthread_cond_init(&mig->cond, NULL);
	mig->fd = mig->listen_fd = mig->in_fd = -1;
	/* QEMU's defaults. */
	mig->params.downtime_limit = 300;
	mig->params.max_bandwidth = 128ull << 20;
	mig->params.multifd_channels = 2;
	mig->params.cpu_throttle_initial = 20;
	mig->params.cpu_throttle_increment = 10;
	m->migration = mig;
	return mig;
}

static bool status_active(enum mig_status s)
{
	return s == MIG_SETUP || s == MIG_ACTIVE || s == MIG_PRE_SWITCHOVER ||
	       s == MIG_DEVICE || s == MIG_CANCELLING;
}

/* ---- events, on the main thread ---- */

struct mig_event {
	struct machine *m;
	enum mig_status status;
};

static gboolean emit_event(gpointer opaque)
{
	struct mig_event *e = opaque;
	struct migration *mig;
	JsonObject *o;
	JsonNode *n;

	tsan_acquire(e);
	mig = e->m->migration;
	o = json_object_new();
	n = json_node_new(JSON_NODE_OBJECT);
	if (mig && mig->caps[MIG_CAP_EVENTS]) {
		json_object_set_string_member(o, "status", migration_status_name(e->status));
		json_node_take_object(n, o);
		monitor_emit_event(e->m, "MIGRATION", n);
	} else {
		json_object_unref(o);
		json_node_free(n);
	}
	return G_SOURCE_REMOVE;
}

/* Any thread. */
void migration_set_status(struct migration *mig, enum mig_status s)
{
	struct mig_event *e = g_new(struct mig_event, 1);

	pthread_mutex_lock(&mig->lock);
	mig->status = s;
	mig->info.status = s;
	pthread_mutex_unlock(&mig->lock);
	e->m = mig->m;
	e->status = s;
	tsan_release(e);
	tsan_ignore_begin();
	g_main_context_invoke_full(mig->m->ctx, G_PRIORITY_DEFAULT, emit_event, e, g_free);
	tsan_ignore_end();
}

/* ---- outgoing ---- */

static void flush_done(void *opaque, int64_t ret)
{
	*(int64_t *)opaque = ret;
}

/*
 * Shared storage: what the guest wrote reaches the image before the
 * destination may read it.  Main thread, devices quiesced.
 */
static int flush_drives(struct machine *m, char *err, size_t errlen)
{
	for (struct drive *d = m->drives; d; d = d->next) {
		struct blk_queue *q;
		int64_t res = 1;
		int ret;

		if (!d->blk || blk_is_readonly(d->blk))
			continue;
		q = blk_queue_new(d->blk, err, errlen);
		if (!q)
			return -EIO;
		ret = blk_flush(q, flush_done, &res);
		while (!ret && res == 1) {
			struct pollfd p = { .fd = blk_queue_fd(q), .events = POLLIN };

			poll(&p, 1, 1000);
			blk_queue_poll(q);
		}
		blk_queue_free(q);
		if (ret || res < 0) {
			snprintf(err, errlen, "cannot flush drive %s: %s", d->id,
				 strerror(ret ? -ret : (int)-res));
			return ret ? ret : (int)res;
		}
	}
	return 0;
}

/*
 * Hand the images over: metadata written back, caches dropped, locks
 * released, so the destination can open them and nothing cached here
 * outlives the switch-over.  Main thread, after flush_drives.
 */
static int inactivate_drives(struct machine *m, char *err, size_t errlen)
{
	for (struct drive *d = m->drives; d; d = d->next) {
		int ret;

		if (!d->blk)
			continue;
		ret = blk_inactivate(d->blk);
		if (ret < 0) {
			snprintf(err, errlen, "cannot hand drive %s over: %s", d->id,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int migration_activate_drives(struct machine *m, char *err, size_t errlen)
{
	GPtrArray *taken = g_ptr_array_new();
	int ret = 0;

	for (struct drive *d = m->drives; d; d = d->next) {
		char berr[256] = "";

		if (!d->blk || blk_is_active(d->blk))
			continue;
		ret = blk_activate(d->blk, berr, sizeof(berr));
		if (ret < 0) {
			snprintf(err, errlen, "cannot activate drive %s: %s", d->id, berr);
			break;
		}
		g_ptr_array_add(taken, d->blk);
	}
	/*
	 * All or nothing: images taken before the failure are let go again at
	 * once, so the other process can take them (a destination that
	 * refuses the stream, a source that stays paused).
	 */
	for (unsigned i = 0; ret < 0 && i < taken->len; i++)
		blk_inactivate(taken->pdata[i]);
	g_ptr_array_free(taken, TRUE);
	return ret;
}

int migration_prepare_cont(struct machine *m, char *err, size_t errlen)
{
	struct migration *mig = m->migration;
	bool switching;
	int ret;

	/* A destination takes its drives when the stream is in, not on cont. */
	if (!mig || m->incoming)
		return 0;
	pthread_mutex_lock(&mig->lock);
	switching = status_active(mig->status) && mig->stopped;
	pthread_mutex_unlock(&mig->lock);
	if (switching) {
		snprintf(err, errlen, "the migration is switching over; cancel it "
			 "(migrate_cancel) to run the guest here");
		return -EBUSY;
	}
	/*
	 * As QEMU: the images come back (locks taken, metadata re-read) and
	 * only then may the guest run.  With the destination still holding
	 * an image this fails and nothing is taken.
	 */
	ret = migration_activate_drives(m, err, errlen);
	if (ret < 0)
		return ret;
	if (mig->devices_quiesced) {
		mig->devices_quiesced = false;
		mig_resume_devices(m);
	}
	return 0;
}

static gboolean stop_vm(gpointer opaque)
{
	struct migration *mig = opaque;
	struct machine *m = mig->m;
	int ret;

	pthread_mutex_lock(&mig->lock);
	if (mig->cancel) {
		pthread_mutex_unlock(&mig->lock);
		return G_SOURCE_REMOVE;
	}
	pthread_mutex_unlock(&mig->lock);
	mig->was_running = m->runstate == RUNSTATE_RUNNING;
	mig->stop_us = mig_now_us();
	machine_pause(m, "finish-migrate");
	/* Stopped for the switch-over even if it was paused before (query-status). */
	if (m->runstate != RUNSTATE_RUNNING)
		m->pause_reason = "finish-migrate";
	/* A VM paused before (stop, -S) still has vCPUs to hold still. */
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		vcpu_pause(m->vcpus[i]);
	ret = mig_quiesce_devices(m);
	mig->devices_quiesced = true;
	pthread_mutex_lock(&mig->lock);
	if (ret)
		snprintf(mig->info.error, sizeof(mig->info.error),
			 "cannot quiesce the devices: %s", strerror(-ret));
	else if (!flush_drives(m, mig->info.error, sizeof(mig->info.error)))
		inactivate_drives(m, mig->info.error, sizeof(mig->info.error));
	mig->stopped = true;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	return G_SOURCE_REMOVE;
}

static gboolean resume_vm(gpointer opaque)
{
	struct migration *mig = opaque;
	char err[320];

	/*
	 * The disks first: if the destination took them (it got the whole
	 * stream and only the acknowledgement was lost), the guest must not
	 * run here too, so it stays paused.
	 */
	if (migration_activate_drives(mig->m, err, sizeof(err)) < 0) {
		log_error("migration failed and the VM stays paused: %s", err);
		return G_SOURCE_REMOVE;
	}
	mig->devices_quiesced = false;
	mig_resume_devices(mig->m);
	if (mig->was_running)
		machine_resume(mig->m);
	return G_SOURCE_REMOVE;
}

/* Wait until cond_ok() or a cancel; false on cancel. */
static bool wait_main(struct migration *mig, bool *flag)
{
	bool ok;

	pthread_mutex_lock(&mig->lock);
	while (!*flag && !mig->cancel)
		pthread_cond_wait(&mig->cond, &mig->lock);
	ok = *flag && !mig->cancel;
	pthread_mutex_unlock(&mig->lock);
	return ok;
}

static bool fd_is_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
}

/* The destination says 'A' once the whole stream loaded and checked out. */
static int wait_ack(struct migration *mig, struct mig_stream *s)
{
	struct pollfd p = { .fd = mig->fd, .events = POLLIN };
	char c = 0;
	int n;

	if (!fd_is_socket(mig->fd))
		return 0;
	n = poll(&p, 1, MIG_ACK_TIMEOUT_MS);
	if (n == 1)
		n = read(mig->fd, &c, 1);
	if (n == 1 && c == 'A')
		return 0;
	return mig_stream_fail(s, -EPROTO, "the destination did not accept the migration "
			       "(%s)", n == 0 ? "connection closed" :
			       n < 0 ? strerror(errno) : "it refused the stream");
}

static void update_info(struct migration *mig, struct mig_stream *s, struct mig_ram *r)
{
	pthread_mutex_lock(&mig->lock);
	mig->info.transferred = s->bytes;
	mig->info.remaining = r->dirty * MIG_PAGE_SIZE;
	mig->info.total = mig->m->mem.ram_size;
	mig->info.duplicate = r->zero_pages;
	mig->info.normal = r->sent_pages;
	mig->info.total_time = (mig_now_us() - mig->start_us) / 1000;
	pthread_mutex_unlock(&mig->lock);
}

static int send_dirty(struct machine *m, struct mig_stream *s, struct mig_ram *r,
		      struct mapped_ram *mr)
{
	struct multifd *mf = &m->migration->mf;

	if (mr)
		return mapped_ram_save_dirty(m, mr, r, s);
	return mf->n ? multifd_send_dirty(m, mf, r, s) : ram_save_dirty(m, r, s);
}

/* Pre-copy passes until the dirty rest fits in downtime-limit. */
static int precopy(struct migration *mig, struct mig_stream *s, struct mig_ram *r,
		   struct mapped_ram *mr)
{
	struct machine *m = mig->m;
	unsigned not_shrinking = 0, extra = 0;
	int ret;

	for (;;) {
		int64_t t0 = mig_now_us(), dt;
		uint64_t b0 = s->bytes, sent0 = r->sent_pages, dirty_before, bw, limit;
		bool converge;

		ret = send_dirty(m, s, r, mr);
		if (!ret)
			ret = mig_flush(s);
		if (ret)
			return ret;
		dirty_before = r->dirty;
		ret = ram_sync(m, r);
		if (ret)
			return mig_stream_fail(s, ret, "dirty log: %s", strerror(-ret));
		dt = mig_now_us() - t0;
		if (dt < 1)
			dt = 1;
		/* Bytes per ms actually sent this pass. */
		bw = (s->bytes - b0) * 1000 / dt;
		if (!bw)
			bw = 1;
		pthread_mutex_lock(&mig->lock);
		mig->info.dirty_sync_count++;
		mig->info.dirty_pages_rate = (r->dirty - dirty_before) * 1000000 / dt;
		mig->info.expected_downtime = r->dirty * MIG_PAGE_SIZE / bw;
		mig->info.mbps_x1000 = bw * 8 * 1000 / 1000;
		limit = mig->params.downtime_limit;
		s->max_bw = mig->params.max_bandwidth;
		converge = mig->caps[MIG_CAP_AUTO_CONVERGE];
		pthread_mutex_unlock(&mig->lock);
		update_info(mig, s, r);
		if (r->dirty * MIG_PAGE_SIZE / bw <= limit) {
			/*
			 * It fits, but what is left goes with the guest
			 * stopped: while the rest is smaller than what this
			 * pass sent (the guest dirties slower than the stream
			 * sends), one more pass costs total time only and
			 * shortens the stop.  A few at most, and not for a
			 * handful of pages, whose stop-and-copy costs next to
			 * nothing.
			 */
			if (extra >= MIG_SHRINK_PASSES || r->dirty < MIG_SHRINK_MIN_PAGES ||
			    r->dirty >= r->sent_pages - sent0)
				return 0;
			extra++;
			continue;
		}
		/*
		 * As QEMU: a pass during which the guest dirtied more than half
		 * of what went out, twice, calls for more throttling.
		 */
		if (converge && r->dirty * MIG_PAGE_SIZE * 2 > s->bytes - b0 &&
		    ++not_shrinking >= 2) {
			not_shrinking = 0;
			mig_throttle_step(mig);
		}
	}
}

static void *outgoing_thread(void *opaque)
{
	struct migration *mig = opaque;
	struct machine *m = mig->m;
	struct mig_stream s;
	struct mig_ram r = { 0 };
	struct mapped_ram mapped = { .fd = -1, .dfd = -1 }, *mr = NULL;
	enum mig_status end;
	int ret;

	if (mig_stream_init(&s, mig->fd)) {
		migration_set_status(mig, MIG_FAILED);
		return NULL;
	}
	s.cancel = &mig->cancel;
	s.max_bw = mig->params.max_bandwidth;
	mig_save_header(&s);
	ret = ram_save_setup(m, &r, &s);
	if (!ret && mig->caps[MIG_CAP_MAPPED_RAM]) {
		mr = &mapped;
		ret = mapped_ram_save_setup(m, mr, &s, mig->params.direct_io,
					    mig->caps[MIG_CAP_MULTIFD] ?
					    mig->params.multifd_channels : 1);
	}
	if (!ret && mig->mf.n) {
		mig_put_u8(&s, MIG_TAG_MULTIFD);
		mig_put_u32(&s, mig->mf.n);
		ret = mig_flush(&s);
	}
	pthread_mutex_lock(&mig->lock);
	mig->info.setup_time = (mig_now_us() - mig->start_us) / 1000;
	pthread_mutex_unlock(&mig->lock);
	if (ret)
		goto out;
	migration_set_status(mig, MIG_ACTIVE);
	/* Without a dirty log there is one pass, all of it with the VM stopped. */
	if (r.logging) {
		ret = precopy(mig, &s, &r, mr);
		mig_throttle_stop(mig);
		if (ret)
			goto out;
	}

	tsan_ignore_begin();	/* glib's source for it: see tsan.h */
	g_main_context_invoke(m->ctx, stop_vm, mig);
	tsan_ignore_end();
	if (!wait_main(mig, &mig->stopped)) {
		ret = mig_stream_fail(&s, -ECANCELED, "migration cancelled");
		goto out;
	}
	if (mig->info.error[0]) {
		ret = mig_stream_fail(&s, -EIO, "%s", mig->info.error);
		goto out;
	}
	if (mig->caps[MIG_CAP_PAUSE_BEFORE_SWITCHOVER]) {
		migration_set_status(mig, MIG_PRE_SWITCHOVER);
		if (!wait_main(mig, &mig->switchover_go)) {
			ret = mig_stream_fail(&s, -ECANCELED, "migration cancelled");
			goto out;
		}
	}
	migration_set_status(mig, MIG_DEVICE);
	ret = ram_sync(m, &r);
	if (ret) {
		mig_stream_fail(&s, ret, "dirty log: %s", strerror(-ret));
		goto out;
	}
	/* The rest goes as fast as it can, from guest RAM: the guest is down. */
	s.max_bw = 0;
	r.stopped = true;
	if (!send_dirty(m, &s, &r, mr)) {
		if (mr)
			mapped_ram_save_finish(m, mr, &s);
		else if (mig->mf.n)
			multifd_send_end(&mig->mf, &s);
	}
	mig_save_sections(m, &s);
	mig_save_end(&s);
	ret = mig_flush(&s);
	if (!ret)
		ret = wait_ack(mig, &s);
out:
	update_info(mig, &s, &r);
	ram_save_cleanup(m, &r);
	mapped_ram_cleanup(&mapped);
	pthread_mutex_lock(&mig->lock);
	/* Under the lock: query-migrate copies info under it meanwhile. */
	mig->info.multifd_bytes = mapped.multifd_bytes + mig->mf.bytes;
	if (ret) {
		char c;

		end = mig->cancel ? MIG_CANCELLED : MIG_FAILED;
		/* A destination that refused the stream said so before it hung up. */
		if (end == MIG_FAILED && fd_is_socket(mig->fd) &&
		    recv(mig->fd, &c, 1, MSG_DONTWAIT) == 1 && c == 'N')
			snprintf(mig->info.error, sizeof(mig->info.error), "the destination did "
				 "not accept the migration (it refused the stream; see its log)");
		if (end == MIG_FAILED && !mig->info.error[0])
			snprintf(mig->info.error, sizeof(mig->info.error), "%s", s.msg);
	} else {
		end = MIG_COMPLETED;
		mig->info.downtime = (mig_now_us() - mig->stop_us) / 1000;
	}
	mig->info.total_time = (mig_now_us() - mig->start_us) / 1000;
	pthread_mutex_unlock(&mig->lock);
	if (ret) {
		if (end == MIG_FAILED)
			log_error("migration failed: %s", mig->info.error);
		if (mig->stopped) {
			tsan_ignore_begin();	/* glib's source for it: see tsan.h */
			g_main_context_invoke(m->ctx, resume_vm, mig);
			tsan_ignore_end();
		}
	}
	pthread_mutex_lock(&mig->lock);
	close(mig->fd);
	mig->fd = -1;
	multifd_cleanup(&mig->mf);
	pthread_mutex_unlock(&mig->lock);
	mig_stream_free(&s);
	migration_set_status(mig, end);
	return NULL;
}

static void join_outgoing(struct migration *mig)
{
	if (mig->thread_running) {
		pthread_join(mig->thread, NULL);
		mig->thread_running = false;
	}
}

int migration_start(struct machine *m, const char *uri, char *err, size_t errlen)
{
	struct migration *mig = migration_get(m);
	int fd, ret;

	pthread_mutex_lock(&mig->lock);
	ret = status_active(mig->status) || mig->in_thread_running || mig->deferred ||
	      mig->listen_fd >= 0;
	pthread_mutex_unlock(&mig->lock);
	if (ret) {
		snprintf(err, errlen, "There's a migration process in progress");
		return -EBUSY;
	}
	if (m->runstate == RUNSTATE_SHUTDOWN) {
		snprintf(err, errlen, "the guest has shut down: nothing to migrate");
		return -EINVAL;
	}
	if (mig->caps[MIG_CAP_MAPPED_RAM] && strncmp(uri, "file:", 5)) {
		snprintf(err, errlen, "mapped-ram needs a file: URI");
		return -EINVAL;
	}
	if (mig->caps[MIG_CAP_MULTIFD] && !mig->caps[MIG_CAP_MAPPED_RAM] &&
	    strncmp(uri, "tcp:", 4) && strncmp(uri, "unix:", 5)) {
		snprintf(err, errlen, "multifd needs tcp:, unix: or (with mapped-ram) file:");
		return -ENOTSUP;
	}
	for (struct drive *d = m->drives; d; d = d->next) {
		if (d->snapshot) {
			snprintf(err, errlen, "drive %s has snapshot=on: its writes are in a "
				 "temporary file of this host, which a migration cannot take", d->id);
			return -ENOTSUP;
		}
	}
	ret = mig_register_accel_sections(m, mig);
	if (ret) {
		snprintf(err, errlen, "the %s accelerator cannot migrate its state", m->accel->name);
		return ret;
	}
	join_outgoing(mig);
	fd = mig_connect(uri, err, errlen);
	if (fd < 0)
		return fd;
	mig->fd = fd;
	mig->cancel = false;
	if (mig->caps[MIG_CAP_MULTIFD] && !mig->caps[MIG_CAP_MAPPED_RAM]) {
		ret = multifd_send_setup(&mig->mf, uri, mig->params.multifd_channels,
					 &mig->cancel, err, errlen);
		if (ret) {
			close(fd);
			mig->fd = -1;
			return ret;
		}
	}
	mig->stopped = false;
	mig->switchover_go = false;
	mig->was_running = false;
	memset(&mig->info, 0, sizeof(mig->info));
	mig->start_us = mig_now_us();
	migration_set_status(mig, MIG_SETUP);
	ret = pthread_create(&mig->thread, NULL, outgoing_thread, mig);
	if (ret) {
		if (strncmp(uri, "fd:", 3))	/* the caller's to close (migration.h) */
			close(fd);
		mig->fd = -1;
		snprintf(err, errlen, "cannot start the migration thread: %s", strerror(ret));
		migration_set_status(mig, MIG_FAILED);
		return -ret;
	}
	pthread_setname_np(mig->thread, "live_migration");
	mig->thread_running = true;
	return 0;
}

void migration_cancel(struct machine *m)
{
	struct migration *mig = m->migration;

	if (!mig)
		return;
	pthread_mutex_lock(&mig->lock);
	if (status_active(mig->status) && mig->thread_running && !mig->cancel) {
		struct mig_event e = { .m = m, .status = MIG_CANCELLING };

		/*
		 * Under the lock, so that the thread's final status comes after
		 * this one, and its event too (it is queued to this thread).
		 */
		mig->status = mig->info.status = MIG_CANCELLING;
		emit_event(&e);
		/* Atomic: the stream polls it without the lock (mig_flush). */
		__atomic_store_n(&mig->cancel, true, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&mig->cond);
		/* Unblock a send or the wait for the acknowledgement. */
		if (mig->fd >= 0)
			shutdown(mig->fd, SHUT_RDWR);
		multifd_shutdown(&mig->mf);
	}
	pthread_mutex_unlock(&mig->lock);
}

int migration_continue(struct machine *m, char *err, size_t errlen)
{
	struct migration *mig = migration_get(m);

	pthread_mutex_lock(&mig->lock);
	if (mig->status != MIG_PRE_SWITCHOVER) {
		pthread_mutex_unlock(&mig->lock);
		snprintf(err, errlen, "Migration not in expected state: %s",
			 migration_status_name(mig->status));
		return -EINVAL;
	}
	mig->switchover_go = true;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	return 0;
}

/* ---- queries and settings ---- */

bool migration_locks_devices(struct machine *m, char *why, size_t len)
{
	struct migration *mig = m->migration;
	enum mig_status st;

	if (!mig)
		return false;
	pthread_mutex_lock(&mig->lock);
	st = mig->status;
	pthread_mutex_unlock(&mig->lock);
	if (m->incoming && !mig->deferred && (st == MIG_SETUP || st == MIG_ACTIVE)) {
		snprintf(why, len, "an incoming migration is %s",
			 st == MIG_SETUP ? "awaited" : "loading");
		return true;
	}
	if (status_active(st)) {
		snprintf(why, len, "a migration is %s (cancel it with migrate_cancel)",
			 migration_status_name(st));
		return true;
	}
	/* The destination runs the guest with the devices it was sent. */
	if (st == MIG_COMPLETED && mig->devices_quiesced) {
		snprintf(why, len, "the migration completed and the destination has the "
			 "devices (cont takes the guest back here)");
		return true;
	}
	return false;
}

void migration_get_info(struct machine *m, struct mig_info *out)
{
	struct migration *mig = migration_get(m);

	pthread_mutex_lock(&mig->lock);
	*out = mig->info;
	out->status = mig->status;
	if (status_active(mig->status) && mig->start_us)
		out->total_time = (mig_now_us() - mig->start_us) / 1000;
	pthread_mutex_unlock(&mig->lock);
}

bool migration_get_cap(struct machine *m, enum mig_cap c)
{
	return migration_get(m)->caps[c];
}

int migration_set_cap(struct machine *m, enum mig_cap c, bool on, char *err, size_t errlen)
{
	struct migration *mig = migration_get(m);

	if (status_active(mig->status)) {
		snprintf(err, errlen, "There's a migration process in progress");
		return -EBUSY;
	}
	mig->caps[c] = on;
	return 0;
}

void migration_get_params(struct machine *m, struct mig_params *out)
{
	struct migration *mig = migration_get(m);

	pthread_mutex_lock(&mig->lock);
	*out = mig->params;
	pthread_mutex_unlock(&mig->lock);
}

int migration_set_params(struct machine *m, const struct mig_params *p, char *err,
			 size_t errlen)
{
	struct migration *mig = migration_get(m);

	if (p->downtime_limit > 2000000) {
		snprintf(err, errlen, "Parameter 'downtime_limit' expects an integer in the "
			 "range of 0 to 2000000 milliseconds");
		return -EINVAL;
	}
	if (p->multifd_channels < 1 || p->multifd_channels > 255) {
		snprintf(err, errlen, "Parameter 'multifd-channels' expects a value between 1 "
			 "and 255");
		return -EINVAL;
	}
	if (p->cpu_throttle_initial < 1 || p->cpu_throttle_initial > 99) {
		snprintf(err, errlen, "Parameter 'cpu_throttle_initial' expects an integer in "
			 "the range of 1 to 99");
		return -EINVAL;
	}
	if (p->cpu_throttle_increment < 1 || p->cpu_throttle_increment > 99) {
		snprintf(err, errlen, "Parameter 'cpu_throttle_increment' expects an integer in "
			 "the range of 1 to 99");
		return -EINVAL;
	}
	pthread_mutex_lock(&mig->lock);
	mig->params = *p;
	pthread_mutex_unlock(&mig->lock);
	return 0;
}

void migration_destroy(struct machine *m)
{
	struct migration *mig = m->migration;

	if (!mig)
		return;
	pthread_mutex_lock(&mig->lock);
	mig->cancel = true;
	pthread_cond_broadcast(&mig->cond);
	if (mig->fd >= 0)
		shutdown(mig->fd, SHUT_RDWR);
	if (mig->in_fd >= 0)
		shutdown(mig->in_fd, SHUT_RDWR);
	pthread_mutex_unlock(&mig->lock);
	join_outgoing(mig);
	mig_throttle_stop(mig);
	migration_incoming_stop(mig);
	if (mig->sections_registered) {
		vmstate_unregister(m, &mig->vm_sec);
		vmstate_unregister(m, &mig->run_sec);
		for (unsigned i = 0; i < m->nr_vcpus; i++)
			vmstate_unregister(m, &mig->cpu_sec[i]);
	}
	free(mig->cpu_sec);
	g_free(mig->cpu_name);
	g_free(mig->vm_name);
	pthread_cond_destroy(&mig->cond);
	pthread_mutex_destroy(&mig->lock);
	free(mig);
	m->migration = NULL;
}
