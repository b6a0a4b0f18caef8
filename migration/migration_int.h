/* Migration internals shared by the files of migration/. */
#ifndef VIREO_MIGRATION_INT_H
#define VIREO_MIGRATION_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "memory.h"
#include "migration.h"
#include "migration/stream.h"
#include "vmstate.h"

struct machine;

/* RAM being sent: one dirty bitmap per region, one bit per page. */
struct mig_ram {
	unsigned long *bitmap[GUEST_MAX_RAM_REGIONS];
	/*
	 * Pages never touched (neither in RAM nor swapped): zero without
	 * reading them, which would fault every one in.  Source: until the
	 * first pass is out; destination: until a page is written.
	 */
	unsigned long *untouched[GUEST_MAX_RAM_REGIONS];
	uint64_t dirty;			/* bits set */
	bool logging;			/* the accelerator's dirty log is on */
	/*
	 * Source: the VM is stopped and its RAM cannot change, so pages go
	 * out from guest RAM without a copy (mig_put_ref).
	 */
	bool stopped;
	uint64_t sent_pages, zero_pages;
};

/* mapped-ram: where each region lives in the file, and the pages it holds. */
struct mapped_ram {
	int fd, dfd;			/* the file; an O_DIRECT descriptor or -1 */
	unsigned channels;		/* parallel writers (multifd-channels) */
	uint64_t bitmap_off[GUEST_MAX_RAM_REGIONS], pages_off[GUEST_MAX_RAM_REGIONS];
	uint64_t resume_off;		/* where the stream goes on */
	unsigned long *present[GUEST_MAX_RAM_REGIONS];
	uint64_t multifd_bytes;
};

/* multifd over sockets: one stream per channel. */
struct mfd_chan {
	struct mig_stream s;
	pthread_t thread;		/* destination: the receiving thread */
	bool running, done;
	uint64_t sent, zero, pass_start;
};

struct multifd {
	struct mfd_chan *ch;
	unsigned n;
	uint64_t bytes;
};

struct migration {
	struct machine *m;
	pthread_mutex_t lock;		/* guards status, info, error */
	pthread_cond_t cond;
	enum mig_status status;
	struct mig_info info;
	bool caps[MIG_CAP_NR];
	struct mig_params params;

	/* outgoing */
	pthread_t thread;
	bool thread_running;
	int fd;
	struct multifd mf;		/* multifd channels of a socket migration */
	bool cancel;
	bool switchover_go;		/* migrate-continue */
	bool stopped;			/* main thread paused the VM for switch-over */
	bool was_running;
	bool devices_quiesced;		/* stop_vm stopped them; nothing restarted them yet */
	int64_t start_us, stop_us;
	unsigned throttle;		/* auto-converge percent */
	pthread_t throttle_thread;
	bool throttle_running, throttle_stop;

	/* incoming */
	int listen_fd;
	unsigned listen_watch;
	bool deferred, autostart;
	pthread_t in_thread;
	bool in_thread_running;
	int in_fd;
	char *in_uri;

	/* vCPU and accelerator sections, registered at the first use */
	struct vmstate_section *cpu_sec;
	struct vmstate_section vm_sec, run_sec;
	bool src_running;		/* incoming: the source's guest was running */
	char *cpu_name, *vm_name;
	bool sections_registered;
};

struct migration *migration_get(struct machine *m);
void migration_set_status(struct migration *mig, enum mig_status s);
/* incoming.c: stop listening, join the loader, close its fd. */
void migration_incoming_stop(struct migration *mig);

/* throttle.c: auto-converge */
void mig_throttle_step(struct migration *mig);
void mig_throttle_stop(struct migration *mig);

/* ram.c */
int ram_save_setup(struct machine *m, struct mig_ram *r, struct mig_stream *s);
/* Send every page marked dirty and clear the marks. */
int ram_save_dirty(struct machine *m, struct mig_ram *r, struct mig_stream *s);
/* Pull the accelerator's dirty log into the bitmaps. */
int ram_sync(struct machine *m, struct mig_ram *r);
void ram_save_cleanup(struct machine *m, struct mig_ram *r);
int ram_load_layout(struct machine *m, struct mig_stream *s, struct mig_ram *r);
int ram_load_page(struct machine *m, struct mig_stream *s, struct mig_ram *r);
void ram_load_cleanup(struct mig_ram *r);
void ram_untouched_done(struct mig_ram *r);
bool ram_page_is_zero(const uint8_t *p);
/* A page's 4096 bytes: copied, or by reference once the VM is stopped. */
void ram_put_page(struct mig_stream *s, const struct mig_ram *r, const uint8_t *p);
/* Bitmap of the never-touched pages of an anonymous region, or NULL. */
unsigned long *ram_untouched(const struct guest_mem *gm, const struct ram_region *reg);
static inline bool ram_test_bit(const unsigned long *b, uint64_t i)
{
	return b && (b[i / (8 * sizeof(long))] >> (i % (8 * sizeof(long)))) & 1;
}

/* mapped_ram.c */
int mapped_ram_save_setup(struct machine *m, struct mapped_ram *mr, struct mig_stream *s,
			  bool direct_io, unsigned channels);
int mapped_ram_save_dirty(struct machine *m, struct mapped_ram *mr, struct mig_ram *r,
			  struct mig_stream *s);
/* VM stopped, last pass written: the bitmaps and the RAM checksums. */
int mapped_ram_save_finish(struct machine *m, struct mapped_ram *mr, struct mig_stream *s);
void mapped_ram_cleanup(struct mapped_ram *mr);
int mapped_ram_load(struct machine *m, struct mig_stream *s, struct mig_ram *r);
int mapped_ram_load_crc(struct machine *m, struct mig_stream *s, struct mig_ram *r);

/* multifd.c */
int multifd_send_setup(struct multifd *mf, const char *uri, unsigned n, const bool *cancel,
		       char *err, size_t errlen);
int multifd_send_dirty(struct machine *m, struct multifd *mf, struct mig_ram *r,
		       struct mig_stream *main_s);
int multifd_send_end(struct multifd *mf, struct mig_stream *main_s);
void multifd_shutdown(struct multifd *mf);
void multifd_cleanup(struct multifd *mf);
int multifd_recv_setup(struct machine *m, struct multifd *mf, struct mig_ram *r,
		       struct mig_stream *main_s, uint32_t n);
int multifd_recv_finish(struct multifd *mf, struct mig_stream *main_s);

/* savevm.c */
void mig_save_header(struct mig_stream *s);
int mig_save_sections(struct machine *m, struct mig_stream *s);
void mig_save_end(struct mig_stream *s);
/* Read the checksum after an END tag and check it; what names the stream. */
int mig_load_sum(struct mig_stream *s, const char *what);
/* Load a whole stream; the message of a failure is in s->msg. */
int mig_load(struct machine *m, struct mig_stream *s);
int mig_quiesce_devices(struct machine *m);
void mig_resume_devices(struct machine *m);
int mig_register_accel_sections(struct machine *m, struct migration *mig);

/* transport.c: a connected fd for uri, or -errno with err. */
int mig_connect(const char *uri, char *err, size_t errlen);
/* A listening socket for tcp:/unix:, or an fd to read for file:/exec:/fd:. */
int mig_listen(const char *uri, bool *is_listener, char *err, size_t errlen);

#endif
