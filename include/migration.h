/*
 * Migration: live migration to another vireo (tcp:, unix:, exec:, fd:) and
 * saving to / restoring from a file (file:PATH[,offset=N], optionally in
 * the mapped-ram layout).  See docs/migration.md.
 *
 * The source runs a migration thread: RAM pre-copy with the accelerator's
 * dirty log until the rest fits in downtime-limit, then the VM stops and
 * the last pages, the vCPUs and every device section follow.  The
 * destination loads the stream on a thread of its own and resumes the VM
 * only after the stream's checksum matched and (sockets) it acknowledged.
 *
 * All functions are for the main thread.
 */
#ifndef VIREO_MIGRATION_H
#define VIREO_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;

enum mig_status {
	MIG_NONE, MIG_SETUP, MIG_ACTIVE, MIG_PRE_SWITCHOVER, MIG_DEVICE, MIG_COMPLETED,
	MIG_FAILED, MIG_CANCELLING, MIG_CANCELLED,
};
const char *migration_status_name(enum mig_status s);

enum mig_cap { MIG_CAP_MULTIFD, MIG_CAP_MAPPED_RAM, MIG_CAP_AUTO_CONVERGE, MIG_CAP_EVENTS,
	       MIG_CAP_PAUSE_BEFORE_SWITCHOVER, MIG_CAP_NR };
const char *migration_cap_name(enum mig_cap c);

struct mig_params {
	uint64_t downtime_limit;	/* ms */
	uint64_t max_bandwidth;		/* bytes per second; 0: no limit */
	uint64_t multifd_channels;
	bool direct_io;
	uint64_t cpu_throttle_initial;	/* auto-converge: first percentage (1-99) */
	uint64_t cpu_throttle_increment;	/* auto-converge: added per step (1-99) */
};

/* What query-migrate reports. */
struct mig_info {
	enum mig_status status;
	uint64_t transferred, remaining, total;	/* RAM bytes */
	uint64_t duplicate, normal;		/* zero pages, pages sent whole */
	uint64_t dirty_sync_count, dirty_pages_rate;
	uint64_t multifd_bytes;
	int64_t total_time, setup_time, downtime, expected_downtime;	/* ms */
	uint64_t mbps_x1000;			/* bandwidth in Mbit/s * 1000 */
	uint64_t cpu_throttle;			/* percent, auto-converge */
	char error[256];
};

/*
 * Start migrating to uri.  -EBUSY if one is running.  An "fd:N"
 * descriptor belongs to the migration once this succeeds; on failure it
 * is left open for the caller (as for migration_incoming).
 */
int migration_start(struct machine *m, const char *uri, char *err, size_t errlen);
/* Stop a running outgoing migration; the VM keeps (or resumes) running. */
void migration_cancel(struct machine *m);
/* Leave pre-switchover (pause-before-switchover). */
int migration_continue(struct machine *m, char *err, size_t errlen);
/*
 * Accept an incoming migration from uri ("defer": wait for
 * migration_incoming with a real URI).  The VM must be booted paused.
 * autostart: resume the guest once the state is in.  "fd:N": see
 * migration_start for who owns the descriptor.
 */
int migration_incoming(struct machine *m, const char *uri, bool autostart, char *err,
		       size_t errlen);
/* True while -incoming defer waits for migrate-incoming. */
bool migration_incoming_deferred(struct machine *m);
/*
 * Shared storage: take every drive of the machine back (blk_activate) after
 * an outgoing migration handed them over, or on the destination before the
 * guest runs.  Main thread (or the incoming loader, VM not running yet).
 * Fails, naming the drive, if another process holds an image; the drives
 * this call activated until then are inactivated again.
 */
int migration_activate_drives(struct machine *m, char *err, size_t errlen);
/*
 * Before cont on a machine that migrated out (completed, failed or
 * cancelled after the switch-over): take the drives back and restart the
 * devices the switch-over stopped.  Fails, naming the drive, if another
 * process (the destination) holds an image; the guest must then stay
 * paused.  -EBUSY while a migration is switching over.  A no-op on a
 * machine that never migrated out.
 */
int migration_prepare_cont(struct machine *m, char *err, size_t errlen);

/*
 * True (why says so, e.g. "a migration is active") while the device set and
 * the media must not change because a migration carries or carried them:
 * an outgoing migration in setup/active/pre-switchover/device/cancelling,
 * the source of a completed one until cont, and a destination from the
 * moment it waits on its URI until the stream is in (-incoming defer
 * before migrate-incoming does not count: that is when the destination
 * is set up).  False again after a failed or cancelled migration.
 */
bool migration_locks_devices(struct machine *m, char *why, size_t len);

void migration_get_info(struct machine *m, struct mig_info *out);
bool migration_get_cap(struct machine *m, enum mig_cap c);
int migration_set_cap(struct machine *m, enum mig_cap c, bool on, char *err, size_t errlen);
void migration_get_params(struct machine *m, struct mig_params *out);
int migration_set_params(struct machine *m, const struct mig_params *p, char *err,
			 size_t errlen);

/* Wait for the migration thread and free everything (machine teardown). */
void migration_destroy(struct machine *m);

#endif
