/*
 * The migration stream: a buffered byte stream over a file descriptor
 * (socket, pipe or file) with a running XXH3-64 checksum of every byte, a
 * byte count, an optional rate limit, and the first error remembered with
 * a message.  One thread uses a stream at a time.
 *
 * Why XXH3-64 (Debian's libxxhash-dev): the checksum runs over every byte
 * on both sides, and under load most of those bytes go while the guest is
 * stopped.  On the bench host (Xeon 2.1 GHz, 256 KiB blocks) zlib's CRC-32
 * does 2.3 GB/s, the SSE4.2 crc32 instruction (CRC32C) 7.4 GB/s on one
 * dependency chain (more needs three chains and a CRC combine step, and a
 * fallback without SSE4.2), XXH3 18.8 GB/s with the baseline x86-64
 * instructions (SSE2) when compiled inline from xxhash.h, 8.3 GB/s
 * through Debian's libxxhash.so; so stream.c compiles it inline
 * (XXH_INLINE_ALL), and the rest of vireo calls mig_hash_*.  XXH3 is not
 * cryptographic, nor was CRC-32: the checksum catches corruption and
 * truncation, not an attacker, who could forge any unkeyed checksum; the
 * loader validates every field anyway.
 *
 * The format (all integers little-endian):
 *
 *   header:   "VIREOMIG" u32 MIG_STREAM_VERSION
 *   records:  u8 tag, then
 *     MIG_TAG_RAM_LAYOUT  u32 n, n x (u64 gpa, u64 size)
 *     MIG_TAG_RAM_PAGE    u64 gpa | flags, 4096 bytes unless MIG_PAGE_ZERO
 *     MIG_TAG_SECTION     u8 name length, name, u32 instance, u32 version,
 *                         u32 payload length, payload (vmstate fields)
 *     MIG_TAG_RAM_CRC     n x u64 XXH3-64 of a mapped-ram region (mapped_ram.c)
 *     MIG_TAG_MULTIFD     u32 number of channels (multifd.c)
 *     MIG_TAG_END         u64 XXH3-64 (seed 0) of every byte before it,
 *                         this tag included
 *
 * Version 1 ended with a u32 CRC-32 (zlib) and had u32 CRC-32 region
 * checksums; version 2 is the XXH3-64 stream above.
 */
#ifndef VIREO_MIGRATION_STREAM_H
#define VIREO_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct XXH3_state_s;

#define MIG_MAGIC		"VIREOMIG"
#define MIG_STREAM_VERSION	2

#define MIG_TAG_RAM_LAYOUT	0x01
#define MIG_TAG_RAM_PAGE	0x02
#define MIG_TAG_SECTION		0x03
#define MIG_TAG_MAPPED_RAM	0x04	/* see mapped_ram.c */
#define MIG_TAG_RAM_CRC		0x05
#define MIG_TAG_MULTIFD		0x06	/* see multifd.c */
#define MIG_TAG_END		0xEE

#define MIG_PAGE_SIZE		4096ull
#define MIG_PAGE_ZERO		0x1ull	/* in the low bits of a page's address */
#define MIG_PAGE_FLAGS		(MIG_PAGE_SIZE - 1)

#define MIG_BUF_SIZE		(256 << 10)
/* Pieces of one writev: up to ~128 pages put by reference. */
#define MIG_IOV_MAX		256

struct mig_stream {
	int fd;
	uint8_t *buf;
	size_t pos, len;		/* reader: next byte and end; writer: fill */
	struct XXH3_state_s *sum;	/* XXH3-64 of every byte put or got */
	size_t summed;			/* bytes of buf already in sum */
	bool reading;			/* a reader: pos, not len, ends the sum */
	/* writer: what mig_put_ref queued, in stream order, for the next flush */
	struct iovec iov[MIG_IOV_MAX];
	unsigned niov;
	size_t seg;			/* start of buf not yet in iov */
	size_t ref_bytes;		/* bytes queued by reference */
	uint64_t bytes;			/* bytes put or got so far */
	uint64_t max_bw;		/* bytes per second, 0: no limit */
	int64_t win_start_us;		/* rate limit window */
	uint64_t win_bytes;
	const bool *cancel;		/* stop at the next flush once set */
	int accept_fd;			/* destination: where multifd channels connect, or -1 */
	int error;			/* first error, -errno */
	char msg[256];
};

int mig_stream_init(struct mig_stream *s, int fd);
void mig_stream_free(struct mig_stream *s);
/* Record the first error; returns it. */
int mig_stream_fail(struct mig_stream *s, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void mig_put(struct mig_stream *s, const void *p, size_t len);
void mig_put_u8(struct mig_stream *s, uint8_t v);
void mig_put_u32(struct mig_stream *s, uint32_t v);
void mig_put_u64(struct mig_stream *s, uint64_t v);
/*
 * Put len bytes without copying them: they go out from p at the next
 * flush, so they must stay as they are until then (guest RAM of a
 * stopped VM, not of a running one).
 */
void mig_put_ref(struct mig_stream *s, const void *p, size_t len);
/*
 * Account n bytes about to go out, and sleep as long as max_bw asks for
 * the bytes of this 100 ms window (not at all when max_bw is 0; a cancel
 * ends the sleep).  mig_flush calls it; writers that bypass the stream
 * (mapped-ram's page writers) call it themselves, one at a time.
 */
void mig_rate_limit(struct mig_stream *s, size_t n);
/* Write out what is buffered; returns s->error. */
int mig_flush(struct mig_stream *s);

/* Read exactly len bytes; a short stream is "truncated". Returns s->error. */
int mig_get(struct mig_stream *s, void *p, size_t len);
int mig_get_u8(struct mig_stream *s, uint8_t *v);
int mig_get_u32(struct mig_stream *s, uint32_t *v);
int mig_get_u64(struct mig_stream *s, uint64_t *v);
/* Reader: forget what was read ahead (the caller seeks elsewhere). */
void mig_drop_readahead(struct mig_stream *s);

/* The checksum of every byte put or got so far. */
uint64_t mig_sum(struct mig_stream *s);

/* The same checksum over other data (mapped-ram regions); NULL: no memory. */
struct XXH3_state_s *mig_hash_new(void);
void mig_hash_add(struct XXH3_state_s *h, const void *p, size_t len);
uint64_t mig_hash_value(struct XXH3_state_s *h);
void mig_hash_free(struct XXH3_state_s *h);

int64_t mig_now_us(void);

#endif
