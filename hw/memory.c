/*
 * Guest RAM: one host mapping, split into regions around the 32-bit PCI
 * hole (see include/memory.h for the map), and checked guest-physical to
 * host translation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"
#include "memory.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

/* An unlinked file in mem_path (normally a hugetlbfs mount). */
static int open_mem_path(const char *dir, uint64_t size, size_t *page_size,
			 char *err, size_t errlen)
{
	char path[4096];
	struct statfs fs;
	int fd;

	if (statfs(dir, &fs)) {
		snprintf(err, errlen, "-mem-path %s: %s", dir, strerror(errno));
		return -errno;
	}
	*page_size = fs.f_type == HUGETLBFS_MAGIC ? (size_t)fs.f_bsize : 4096;
	if (fs.f_type != HUGETLBFS_MAGIC)
		log_warn("-mem-path %s is not on hugetlbfs; using ordinary pages", dir);
	snprintf(path, sizeof(path), "%s/vireo-ram-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		snprintf(err, errlen, "-mem-path %s: cannot create a file there: %s", dir,
			 strerror(errno));
		return -errno;
	}
	unlink(path);
	size = (size + *page_size - 1) / *page_size * *page_size;
	if (ftruncate(fd, size)) {
		snprintf(err, errlen, "-mem-path %s: cannot size the file to %llu bytes: %s",
			 dir, (unsigned long long)size, strerror(errno));
		close(fd);
		return -errno;
	}
	return fd;
}

int guest_mem_init(struct guest_mem *gm, uint64_t ram_size, const char *mem_path,
		   bool prealloc, char *err, size_t errlen)
{
	size_t page_size = 4096;
	int flags = MAP_SHARED;
	uint64_t low;

	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	if (ram_size < (2 << 20) || ram_size % 4096) {
		snprintf(err, errlen, "-m: %llu bytes of RAM is not a multiple of 4 KiB of at least 2 MiB",
			 (unsigned long long)ram_size);
		return -EINVAL;
	}
	if (mem_path) {
		gm->fd = open_mem_path(mem_path, ram_size, &page_size, err, errlen);
		if (gm->fd < 0)
			return gm->fd;
	} else {
		flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	}
	if (prealloc)
		flags |= MAP_POPULATE;
	gm->map_size = (ram_size + page_size - 1) / page_size * page_size;
	gm->base = mmap(NULL, gm->map_size, PROT_READ | PROT_WRITE, flags, gm->fd, 0);
	if (gm->base == MAP_FAILED) {
		snprintf(err, errlen, "-m %lluM: cannot map guest RAM: %s%s",
			 (unsigned long long)(ram_size >> 20), strerror(errno),
			 mem_path ? " (are there enough huge pages?)" : "");
		gm->base = NULL;
		if (gm->fd >= 0)
			close(gm->fd);
		return -ENOMEM;
	}
	if (!mem_path)
		madvise(gm->base, gm->map_size, MADV_MERGEABLE);
	gm->ram_size = ram_size;

	low = ram_size < MEM_LOWMEM_LIMIT ? ram_size : MEM_LOWMEM_LIMIT;
	gm->r[gm->nr++] = (struct ram_region){ .gpa = 0, .size = low, .hva = gm->base, .slot = 0 };
	if (ram_size > low)
		gm->r[gm->nr++] = (struct ram_region){ .gpa = MEM_4G, .size = ram_size - low,
						       .hva = gm->base + low, .slot = 1 };
	return 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++) {
		free(gm->dev_dirty[i]);
		gm->dev_dirty[i] = NULL;
	}
	if (gm->base)
		munmap(gm->base, gm->map_size);
	if (gm->fd >= 0)
		close(gm->fd);
	gm->base = NULL;
	gm->fd = -1;
	gm->nr = 0;
}

void *gpa_to_hva(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < gm->nr; i++) {
		const struct ram_region *r = &gm->r[i];

		/* Written so that gpa + len cannot overflow. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int guest_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len)
{
	void *p = gpa_to_hva(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int guest_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len)
{
	void *p = gpa_to_hva(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

uint64_t guest_mem_lowmem_end(const struct guest_mem *gm)
{
	return gm->nr ? gm->r[0].size : 0;
}

#define DIRTY_PAGE_SHIFT 12
#define LONG_BITS (8 * sizeof(unsigned long))

/* Whole pages only, as migration's bitmaps count them (regions are page multiples). */
static uint64_t dirty_pages(const struct ram_region *r)
{
	return r->size >> DIRTY_PAGE_SHIFT;
}

static size_t dirty_words(const struct ram_region *r)
{
	return (dirty_pages(r) + LONG_BITS - 1) / LONG_BITS;
}

void guest_mem_mark_dirty(const struct guest_mem *gm, const void *hva, size_t len)
{
	const uint8_t *p = hva;

	if (!len || !__atomic_load_n(&gm->dev_logging, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < gm->nr; i++) {
		const struct ram_region *r = &gm->r[i];
		uint64_t first, last;

		if (p < r->hva || (uint64_t)(p - r->hva) >= r->size || !dirty_pages(r))
			continue;
		first = (uint64_t)(p - r->hva) >> DIRTY_PAGE_SHIFT;
		last = ((uint64_t)(p - r->hva) + len - 1) >> DIRTY_PAGE_SHIFT;
		if (last >= dirty_pages(r))
			last = dirty_pages(r) - 1;
		for (uint64_t pg = first; pg <= last; pg++)
			__atomic_or_fetch(&gm->dev_dirty[i][pg / LONG_BITS],
					  1ul << (pg % LONG_BITS), __ATOMIC_RELAXED);
		return;
	}
}

int guest_mem_dirty_start(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nr; i++) {
		if (gm->dev_dirty[i]) {
			memset(gm->dev_dirty[i], 0, dirty_words(&gm->r[i]) * sizeof(unsigned long));
			continue;
		}
		gm->dev_dirty[i] = calloc(dirty_words(&gm->r[i]), sizeof(unsigned long));
		if (!gm->dev_dirty[i])
			return -ENOMEM;
	}
	/* Release: a device that sees the flag sees the bitmaps. */
	__atomic_store_n(&gm->dev_logging, true, __ATOMIC_RELEASE);
	return 0;
}

void guest_mem_dirty_sync(const struct guest_mem *gm, unsigned i, unsigned long *bitmap)
{
	size_t words;

	if (i >= gm->nr || !gm->dev_dirty[i])
		return;
	words = dirty_words(&gm->r[i]);
	for (size_t w = 0; w < words; w++)
		bitmap[w] |= __atomic_exchange_n(&gm->dev_dirty[i][w], 0, __ATOMIC_RELAXED);
}

void guest_mem_dirty_stop(struct guest_mem *gm)
{
	__atomic_store_n(&gm->dev_logging, false, __ATOMIC_RELEASE);
}
