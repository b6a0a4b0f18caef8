/*
 * A new, empty qcow2 version 3 image over a backing file, for -drive
 * snapshot=on.  64 KiB clusters, 16-bit refcounts, laid out as:
 *
 *   cluster 0   header, the backing format extension, the backing name
 *   cluster 1   refcount table (one cluster)
 *   cluster 2   refcount block (16-bit entries: 32768 clusters)
 *   cluster 3-  L1 table, every entry zero: each read falls through to
 *               the backing file until the guest writes there
 *
 * Field offsets are those of the qcow2 specification (QEMU's
 * docs/interop/qcow2.txt), all big-endian.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "blk-int.h"
#include "qcow2.h"

#define CREATE_CLUSTER_BITS	16
#define CREATE_CLUSTER		(1u << CREATE_CLUSTER_BITS)
#define EXT_BACKING_FORMAT	0xe2792acau
#define MAX_BACKING_NAME	1023		/* as QEMU */

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, v >> 32);
	be32(p + 4, v);
}

int qcow2_create_overlay(int fd, uint64_t size, const char *backing, const char *backing_fmt,
			 char *err, size_t errlen)
{
	const uint64_t per_l1 = (uint64_t)CREATE_CLUSTER * (CREATE_CLUSTER / 8);
	uint64_t l1_size = (size + per_l1 - 1) / per_l1;
	uint64_t l1_clusters = (l1_size * 8 + CREATE_CLUSTER - 1) / CREATE_CLUSTER;
	uint64_t nclusters = 3 + (l1_clusters ? l1_clusters : 1);
	size_t name_len = strlen(backing), fmt_len = strlen(backing_fmt);
	size_t ext_len = (fmt_len + 7) & ~7ul, name_off = 104 + 8 + ext_len + 8;
	uint8_t *img;
	ssize_t n;

	if (name_len > MAX_BACKING_NAME || name_off + name_len > CREATE_CLUSTER) {
		snprintf(err, errlen, "the backing file name '%s' is longer than %d bytes",
			 backing, MAX_BACKING_NAME);
		return -ENAMETOOLONG;
	}
	if (nclusters > CREATE_CLUSTER / 2 || size % 512) {
		snprintf(err, errlen, "cannot make an overlay of %llu bytes",
			 (unsigned long long)size);
		return -EINVAL;
	}
	img = g_malloc0(nclusters * CREATE_CLUSTER);
	be32(img + 0, QCOW2_MAGIC);
	be32(img + 4, 3);
	be64(img + 8, name_off);
	be32(img + 16, name_len);
	be32(img + 20, CREATE_CLUSTER_BITS);
	be64(img + 24, size);
	be32(img + 36, l1_size);
	be64(img + 40, 3ull * CREATE_CLUSTER);		/* L1 table */
	be64(img + QCOW2_HDR_REFTABLE, 1ull * CREATE_CLUSTER);
	be32(img + 56, 1);				/* refcount table clusters */
	be32(img + 96, 4);				/* refcount order: 16 bits */
	be32(img + 100, 104);				/* header length */
	be32(img + 104, EXT_BACKING_FORMAT);
	be32(img + 108, fmt_len);
	memcpy(img + 112, backing_fmt, fmt_len);
	/* The end-of-extensions marker (type 0, length 0) is already zero. */
	memcpy(img + name_off, backing, name_len);
	be64(img + CREATE_CLUSTER, 2ull * CREATE_CLUSTER);	/* refcount block */
	for (uint64_t i = 0; i < nclusters; i++) {
		uint8_t *e = img + 2 * CREATE_CLUSTER + 2 * i;

		e[0] = 0;
		e[1] = 1;
	}
	n = pwrite(fd, img, nclusters * CREATE_CLUSTER, 0);
	g_free(img);
	if (n != (ssize_t)(nclusters * CREATE_CLUSTER)) {
		snprintf(err, errlen, "cannot write the overlay: %s",
			 n < 0 ? strerror(errno) : "short write");
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}
