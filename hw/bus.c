/*
 * Port I/O and MMIO dispatch: a sorted array of non-overlapping ranges,
 * looked up by binary search under a read lock.  Registration is rare
 * (startup, a guest moving a PCI BAR); lookups happen on every exit.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	free(b->r);
	b->r = NULL;
	b->n = b->cap = 0;
	pthread_rwlock_destroy(&b->lock);
}

/* Index of the first range whose end is above addr. */
static size_t bus_lower_bound(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (b->r[mid].base + (b->r[mid].len - 1) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	size_t i;
	int ret = 0;

	if (!len || base + (len - 1) < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&b->lock);
	i = bus_lower_bound(b, base);
	if (i < b->n && b->r[i].base <= base + (len - 1)) {
		log_error("%s: %s at 0x%llx+0x%llx overlaps %s at 0x%llx+0x%llx", b->name,
			  name, (unsigned long long)base, (unsigned long long)len, b->r[i].name,
			  (unsigned long long)b->r[i].base, (unsigned long long)b->r[i].len);
		ret = -EEXIST;
		goto out;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->r, cap * sizeof(*r));

		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		b->r = r;
		b->cap = cap;
	}
	memmove(&b->r[i + 1], &b->r[i], (b->n - i) * sizeof(*b->r));
	b->r[i] = (struct bus_range){ base, len, ops, opaque, name };
	b->n++;
out:
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_unregister(struct bus *b, uint64_t base, void *opaque)
{
	size_t i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	i = bus_lower_bound(b, base);
	if (i < b->n && b->r[i].base == base && b->r[i].opaque == opaque) {
		memmove(&b->r[i], &b->r[i + 1], (b->n - i - 1) * sizeof(*b->r));
		b->n--;
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

/*
 * Find the range under the lock, call it outside: a device callback may
 * itself move ranges (a PCI config write through ECAM remaps a BAR on this
 * very bus).  Devices live until the machine is destroyed, after every vCPU
 * has stopped, so the copied ops/opaque stay valid.
 */
static bool bus_lookup(struct bus *b, uint64_t addr, struct bus_range *out)
{
	bool found;
	size_t i;

	pthread_rwlock_rdlock(&b->lock);
	i = bus_lower_bound(b, addr);
	found = i < b->n && b->r[i].base <= addr;
	if (found)
		*out = b->r[i];
	pthread_rwlock_unlock(&b->lock);
	return found;
}

uint64_t bus_read(struct bus *b, uint64_t addr, unsigned size)
{
	struct bus_range r;

	if (bus_lookup(b, addr, &r) && r.ops->read)
		return r.ops->read(r.opaque, addr - r.base, size);
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

void bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t value)
{
	struct bus_range r;

	if (bus_lookup(b, addr, &r) && r.ops->write)
		r.ops->write(r.opaque, addr - r.base, size, value);
}

void bus_for_each(struct bus *b, void (*fn)(const struct bus_range *r, void *arg), void *arg)
{
	pthread_rwlock_rdlock(&b->lock);
	for (size_t i = 0; i < b->n; i++)
		fn(&b->r[i], arg);
	pthread_rwlock_unlock(&b->lock);
}
