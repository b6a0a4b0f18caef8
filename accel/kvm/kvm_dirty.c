/*
 * Dirty page tracking for migration.  Where the host offers it
 * (KVM_CAP_DIRTY_LOG_RING_ACQ_REL, or KVM_CAP_DIRTY_LOG_RING), each vCPU
 * gets a ring of the pages it dirtied: a sync reads only the entries
 * pushed since the last one, instead of fetching and scanning a bitmap of
 * every page of every slot, and its cost follows the dirty rate, not the
 * RAM size.  As in QEMU it is opt-in, "-accel kvm,dirty-ring-size=N"
 * (entries per vCPU): on the nested KVM of the host it was written on, the
 * ring lost dirtied pages in some migrations, QEMU 7.2's as well as this
 * one, where the bitmap lost none (see docs/migration.md).  Without it, or
 * where the host does not offer it, the slot's bitmap of KVM_GET_DIRTY_LOG
 * is used.  The choice is made once, when the VM is created: KVM takes the
 * ring only before the first vCPU.
 *
 * Entries are harvested into a bitmap per RAM region kept here, by the
 * migration thread at each sync and by a vCPU thread whose ring filled up
 * (KVM_EXIT_DIRTY_RING_FULL), under dirty_lock; harvested entries are
 * handed back with KVM_RESET_DIRTY_RINGS, which write-protects those
 * pages again, so a later write is logged again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/kvm/kvm_int.h"
#include "log.h"
#include "machine.h"
#include "vcpu.h"

#define LONG_BITS (8 * sizeof(unsigned long))

/* The value of dirty-ring-size in kvm's options of -accel; 0 if not given. */
static int kvm_dirty_ring_option(const char *accel, uint64_t *entries, char *err, size_t errlen)
{
	char buf[256], *save, *tok;

	*entries = 0;
	snprintf(buf, sizeof(buf), "%s", accel ? accel : "");
	for (tok = strtok_r(buf, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		char *opt, *osave;

		if (strncmp(tok, "kvm,", 4))
			continue;
		for (opt = strtok_r(tok + 4, ",", &osave); opt; opt = strtok_r(NULL, ",", &osave)) {
			char *end;

			if (strncmp(opt, "dirty-ring-size=", 16)) {
				snprintf(err, errlen, "-accel kvm: unknown option '%s' (known: "
					 "dirty-ring-size)", opt);
				return -EINVAL;
			}
			errno = 0;
			*entries = strtoull(opt + 16, &end, 0);
			if (errno || *end || end == opt + 16 || (*entries &&
			    (*entries < 1024 || *entries > 65536 || (*entries & (*entries - 1))))) {
				snprintf(err, errlen, "-accel kvm: dirty-ring-size=%s: a power of two "
					 "from 1024 to 65536, or 0", opt + 16);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int kvm_dirty_ring_enable(struct machine *m, struct kvm_vm *k, char *err, size_t errlen)
{
	static const unsigned caps[] = { KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_CAP_DIRTY_LOG_RING };
	uint64_t entries;
	int ret = kvm_dirty_ring_option(m->cfg.accel, &entries, err, errlen);

	if (ret || !entries)
		return ret;
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int max = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, caps[i]);
		struct kvm_enable_cap c = {
			.cap = caps[i], .args = { entries * sizeof(struct kvm_dirty_gfn) },
		};

		if (max < (int)c.args[0])
			continue;
		if (ioctl(k->vm_fd, KVM_ENABLE_CAP, &c)) {
			log_warn("kvm: cannot enable the dirty ring (%s); using the dirty log",
				 strerror(errno));
			return 0;
		}
		k->ring_entries = entries;
		return 0;
	}
	log_warn("kvm: this host offers no dirty ring of %llu entries; using the dirty log",
		 (unsigned long long)entries);
	return 0;
}

int kvm_dirty_ring_map(struct kvm_vm *k, struct kvm_vcpu *c)
{
	void *p;

	if (!k->ring_entries)
		return 0;
	p = mmap(NULL, k->ring_entries * sizeof(struct kvm_dirty_gfn), PROT_READ | PROT_WRITE,
		 MAP_SHARED, c->fd, KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
	if (p == MAP_FAILED)
		return -errno;
	c->ring = p;
	c->ring_fetch = 0;
	return 0;
}

void kvm_dirty_ring_unmap(struct kvm_vm *k, struct kvm_vcpu *c)
{
	if (c->ring)
		munmap(c->ring, k->ring_entries * sizeof(struct kvm_dirty_gfn));
	c->ring = NULL;
}

/* The page KVM reports as slot/offset, into the region's bitmap. */
static void kvm_dirty_mark(struct machine *m, struct kvm_vm *k, uint32_t slot, uint64_t off)
{
	for (unsigned i = 0; i < m->mem.nr; i++) {
		const struct ram_region *r = &m->mem.r[i];

		if (r->slot != (slot & 0xffff) || (slot >> 16))
			continue;
		if (off >= r->size / 4096 || !k->ring_bm[i])
			break;
		k->ring_bm[i][off / LONG_BITS] |= 1ul << (off % LONG_BITS);
		return;
	}
	log_once("kvm: dirty ring entry for slot %u page %llu outside guest RAM", slot,
		 (unsigned long long)off);
}

/* Under dirty_lock: every entry c's ring holds; returns how many. */
static unsigned kvm_dirty_harvest(struct machine *m, struct kvm_vm *k, struct kvm_vcpu *c)
{
	unsigned n = 0;

	if (!c || !c->ring)
		return 0;
	for (;;) {
		struct kvm_dirty_gfn *e = &c->ring[c->ring_fetch & (k->ring_entries - 1)];

		/* Acquire: slot and offset were written before the flag. */
		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		kvm_dirty_mark(m, k, e->slot, e->offset);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		c->ring_fetch++;
		n++;
	}
	return n;
}

static int kvm_dirty_reset(struct kvm_vm *k, unsigned harvested)
{
	if (harvested && ioctl(k->vm_fd, KVM_RESET_DIRTY_RINGS) < 0)
		return -errno;
	return 0;
}

int kvm_dirty_ring_full(struct vcpu *v)
{
	struct kvm_vm *k = v->m->accel_state;
	int ret;

	pthread_mutex_lock(&k->dirty_lock);
	ret = kvm_dirty_reset(k, kvm_dirty_harvest(v->m, k, v->accel_state));
	pthread_mutex_unlock(&k->dirty_lock);
	return ret;
}

int kvm_dirty_ring_start(struct machine *m, struct kvm_vm *k)
{
	int ret = 0;

	pthread_mutex_lock(&k->dirty_lock);
	for (unsigned i = 0; i < m->mem.nr && !ret; i++) {
		free(k->ring_bm[i]);
		k->ring_bm[i] = calloc((m->mem.r[i].size / 4096 + LONG_BITS - 1) / LONG_BITS,
				       sizeof(unsigned long));
		if (!k->ring_bm[i])
			ret = -ENOMEM;
	}
	pthread_mutex_unlock(&k->dirty_lock);
	return ret;
}

/* Logging is off: what the rings still hold is of no use any more. */
void kvm_dirty_ring_stop(struct machine *m, struct kvm_vm *k)
{
	unsigned n = 0;

	pthread_mutex_lock(&k->dirty_lock);
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		n += kvm_dirty_harvest(m, k, m->vcpus[i]->accel_state);
	kvm_dirty_reset(k, n);
	for (unsigned i = 0; i < GUEST_MAX_RAM_REGIONS; i++) {
		free(k->ring_bm[i]);
		k->ring_bm[i] = NULL;
	}
	pthread_mutex_unlock(&k->dirty_lock);
}

int kvm_dirty_ring_sync(struct machine *m, struct kvm_vm *k, const struct ram_region *r,
			unsigned long *bitmap)
{
	size_t words = (r->size / 4096 + LONG_BITS - 1) / LONG_BITS;
	unsigned n = 0, idx = r - m->mem.r;
	int ret;

	if (idx >= m->mem.nr)
		return -EINVAL;
	pthread_mutex_lock(&k->dirty_lock);
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		n += kvm_dirty_harvest(m, k, m->vcpus[i]->accel_state);
	ret = kvm_dirty_reset(k, n);
	if (!ret && !k->ring_bm[idx])
		ret = -EINVAL;
	if (!ret) {
		for (size_t w = 0; w < words; w++)
			bitmap[w] |= k->ring_bm[idx][w];
		memset(k->ring_bm[idx], 0, words * sizeof(unsigned long));
	}
	pthread_mutex_unlock(&k->dirty_lock);
	return ret;
}
