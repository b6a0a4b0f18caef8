/*
 * The migration stream: a buffered byte stream over a file descriptor
 * (socket, pipe or file) with a running CRC-32 of every byte, a byte
 * count, an optional rate limit, and the first error remembered with a
 * message.  One thread uses a stream at a time.
 *
 * The format (all integers little-endian):
 *
 *   header:   "VIREOMIG" u32 MIG_STREAM_VERSION
 *   records:  u8 tag, then
 *     MIG_TAG_RAM_LAYOUT  u32 n, n x (u64 gpa, u64 size)
 *     MIG_TAG_RAM_PAGE    u64 gpa | flags, 4096 bytes unless MIG_PAGE_ZERO
 *     MIG_TAG_SECTION     u8 name length, name, u32 instance, u32 version,
 *                         u32 payload length, payload (vmstate fields)
 *     MIG_TAG_END         u32 CRC-32 of every byte before it
 */
#ifndef VIREO_MIGRATION_STREAM_H
#define VIREO_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_MAGIC		"VIREOMIG"
#define MIG_STREAM_VERSION	1

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

struct mig_stream {
	int fd;
	uint8_t *buf;
	size_t pos, len;		/* reader: next byte and end; writer: fill */
	uint32_t crc;
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
/* Write out what is buffered; returns s->error. */
int mig_flush(struct mig_stream *s);

/* Read exactly len bytes; a short stream is "truncated". Returns s->error. */
int mig_get(struct mig_stream *s, void *p, size_t len);
int mig_get_u8(struct mig_stream *s, uint8_t *v);
int mig_get_u32(struct mig_stream *s, uint32_t *v);
int mig_get_u64(struct mig_stream *s, uint64_t *v);

int64_t mig_now_us(void);

#endif
