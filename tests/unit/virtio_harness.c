/*
 * The virtio device tests' machine and driver: see virtio_harness.h.  The
 * test thread is the vCPU: it reaches the device only through the buses,
 * as a guest would, and the fake accelerator records interrupts.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "accel/accel.h"
#include "block.h"
#include "pci.h"
#include "virtio/virtio-pci.h"
#include "vmstate.h"
#include "virtio_harness.h"

#define VH_RING_BASE	0x100000ull	/* 16 KiB per queue */

static struct vh_machine *vh_of(struct machine *m)
{
	return (struct vh_machine *)m;
}

static int fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct vh_machine *h = vh_of(m);

	pthread_mutex_lock(&h->lock);
	if (gsi < 32) {
		if (level && !h->gsi_level[gsi])
			h->gsi_raised[gsi]++;
		h->gsi_level[gsi] = level;
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int fake_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	struct vh_machine *h = vh_of(m);

	g_assert_cmphex(addr, ==, MEM_LAPIC_BASE);
	pthread_mutex_lock(&h->lock);
	if (data >= VH_MSI_DATA && data - VH_MSI_DATA < G_N_ELEMENTS(h->msi))
		h->msi[data - VH_MSI_DATA]++;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int fake_add_ioeventfd(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd)
{
	struct vh_machine *h = vh_of(m);
	int ret = -ENOSPC;

	g_assert_false(pio);
	g_assert_cmpuint(len, ==, 2);
	pthread_mutex_lock(&h->lock);
	if (h->nr_ioev < VH_MAX_FDS) {
		h->ioev[h->nr_ioev].addr = addr;
		h->ioev[h->nr_ioev].fd = fd;
		h->nr_ioev++;
		ret = 0;
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static int fake_del_ioeventfd(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd)
{
	struct vh_machine *h = vh_of(m);
	int ret = -ENOENT;

	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < h->nr_ioev; i++) {
		if (h->ioev[i].addr == addr && h->ioev[i].fd == fd) {
			h->ioev[i] = h->ioev[--h->nr_ioev];
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static int fake_add_irqfd(struct machine *m, int fd, uint64_t addr, uint32_t data)
{
	struct vh_machine *h = vh_of(m);
	int ret = -ENOSPC;

	pthread_mutex_lock(&h->lock);
	if (h->nr_irqfd < VH_MAX_FDS) {
		ret = h->nr_irqfd++;
		h->irqfd[ret].fd = fd;
		h->irqfd[ret].addr = addr;
		h->irqfd[ret].data = data;
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static int fake_update_irqfd(struct machine *m, int handle, uint64_t addr, uint32_t data)
{
	struct vh_machine *h = vh_of(m);

	pthread_mutex_lock(&h->lock);
	g_assert_cmpint(handle, <, h->nr_irqfd);
	h->irqfd[handle].addr = addr;
	h->irqfd[handle].data = data;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int fake_del_irqfd(struct machine *m, int handle, int fd)
{
	struct vh_machine *h = vh_of(m);

	pthread_mutex_lock(&h->lock);
	g_assert_cmpint(h->irqfd[handle].fd, ==, fd);
	h->irqfd[handle].fd = -1;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int vh_machine_init(struct vh_machine *h, unsigned smp, bool with_fds)
{
	struct machine *m = &h->m;
	char err[256];

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->ops.name = "fake";
	h->ops.set_irq = fake_set_irq;
	h->ops.send_msi = fake_send_msi;
	if (with_fds) {
		h->ops.add_ioeventfd = fake_add_ioeventfd;
		h->ops.del_ioeventfd = fake_del_ioeventfd;
		h->ops.add_irqfd_msi = fake_add_irqfd;
		h->ops.update_irqfd_msi = fake_update_irqfd;
		h->ops.del_irqfd_msi = fake_del_irqfd;
	}
	m->accel = &h->ops;
	m->cfg.smp = smp;
	m->cfg.ram_size = VH_RAM;
	m->nr_irq_pins = 24;
	pthread_mutex_init(&m->lock, NULL);
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	g_assert_cmpint(guest_mem_init(&m->mem, VH_RAM, NULL, false, err, sizeof(err)), ==, 0);
	if (pci_host_init(m, err, sizeof(err))) {
		g_test_message("pci_host_init: %s", err);
		g_assert_not_reached();
	}
	return 0;
}

void vh_machine_destroy(struct vh_machine *h)
{
	struct machine *m = &h->m;
	struct device *d, *next;

	for (d = m->devices; d; d = next) {
		next = d->next;
		if (d->destroy)
			d->destroy(d);
	}
	m->devices = NULL;
	drive_close_all(m);
	pci_host_destroy(m);
	guest_mem_destroy(&m->mem);
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	pthread_mutex_destroy(&m->lock);
	/* The device closed its irqfds and dropped its ioeventfds. */
	g_assert_cmpuint(h->nr_ioev, ==, 0);
	for (unsigned i = 0; i < h->nr_irqfd; i++)
		g_assert_cmpint(h->irqfd[i].fd, ==, -1);
	pthread_mutex_destroy(&h->lock);
}

/* What the kernel does with an irqfd: collect its signals as MSIs. */
static void vh_poll_irqfds(struct vh_machine *h)
{
	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < h->nr_irqfd; i++) {
		uint64_t n;

		if (h->irqfd[i].fd < 0 || read(h->irqfd[i].fd, &n, sizeof(n)) != sizeof(n))
			continue;
		g_assert_cmphex(h->irqfd[i].addr, ==, MEM_LAPIC_BASE);
		if (h->irqfd[i].data - VH_MSI_DATA < G_N_ELEMENTS(h->msi))
			h->msi[h->irqfd[i].data - VH_MSI_DATA] += n;
	}
	pthread_mutex_unlock(&h->lock);
}

unsigned vh_msi_count(struct vh_machine *h, unsigned v)
{
	unsigned n;

	vh_poll_irqfds(h);
	pthread_mutex_lock(&h->lock);
	n = h->msi[v];
	pthread_mutex_unlock(&h->lock);
	return n;
}

unsigned vh_gsi_raised(struct vh_machine *h, unsigned gsi)
{
	unsigned n;

	pthread_mutex_lock(&h->lock);
	n = h->gsi_raised[gsi];
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* ---- PCI config space through ECAM ---- */

uint32_t vh_pci_read(struct vh_machine *h, uint8_t devfn, unsigned off, unsigned size)
{
	return bus_read(&h->m.mmio, MEM_PCI_ECAM_BASE + ((uint64_t)devfn << 12) + off, size);
}

void vh_pci_write(struct vh_machine *h, uint8_t devfn, unsigned off, unsigned size, uint32_t v)
{
	bus_write(&h->m.mmio, MEM_PCI_ECAM_BASE + ((uint64_t)devfn << 12) + off, size, v);
}

static uint64_t vh_bar(struct vh_machine *h, uint8_t devfn, unsigned bar)
{
	uint32_t lo = vh_pci_read(h, devfn, PCI_BASE_ADDRESS_0 + 4 * bar, 4);
	uint64_t a = lo & ~0xfull;

	if ((lo & 6) == 4)
		a |= (uint64_t)vh_pci_read(h, devfn, PCI_BASE_ADDRESS_0 + 4 * bar + 4, 4) << 32;
	return a;
}

bool vh_dev_find(struct vh_machine *h, uint16_t id, unsigned nth, struct vh_dev *d)
{
	for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		uint8_t devfn = slot << 3;
		unsigned cap;

		if (vh_pci_read(h, devfn, PCI_VENDOR_ID, 2) != VIRTIO_PCI_VENDOR ||
		    vh_pci_read(h, devfn, PCI_DEVICE_ID, 2) != VIRTIO_PCI_DEVICE_BASE + (uint32_t)id)
			continue;
		if (nth--)
			continue;
		memset(d, 0, sizeof(*d));
		d->h = h;
		d->devfn = devfn;
		/* Memory decoding and bus mastering, as the guest's PCI core does. */
		vh_pci_write(h, devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
		g_assert_true(vh_pci_read(h, devfn, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
		for (cap = vh_pci_read(h, devfn, PCI_CAPABILITY_LIST, 1); cap;
		     cap = vh_pci_read(h, devfn, cap + 1, 1)) {
			unsigned type, bar;
			uint64_t base;

			if (vh_pci_read(h, devfn, cap, 1) == PCI_CAP_ID_MSIX) {
				uint32_t t = vh_pci_read(h, devfn, cap + 4, 4);

				d->msix_cap = cap;
				d->msix_table = vh_bar(h, devfn, t & 7) + (t & ~7u);
				continue;
			}
			if (vh_pci_read(h, devfn, cap, 1) != PCI_CAP_ID_VNDR)
				continue;
			type = vh_pci_read(h, devfn, cap + 3, 1);
			bar = vh_pci_read(h, devfn, cap + 4, 1);
			base = vh_bar(h, devfn, bar) + vh_pci_read(h, devfn, cap + 8, 4);
			switch (type) {
			case VIRTIO_PCI_CAP_COMMON_CFG:
				d->common = base;
				break;
			case VIRTIO_PCI_CAP_ISR_CFG:
				d->isr = base;
				break;
			case VIRTIO_PCI_CAP_DEVICE_CFG:
				d->devcfg = base;
				break;
			case VIRTIO_PCI_CAP_NOTIFY_CFG:
				d->notify = base;
				d->notify_mult = vh_pci_read(h, devfn, cap + 16, 4);
				break;
			}
		}
		g_assert_true(d->common && d->isr && d->devcfg && d->notify && d->msix_table);
		d->nr_queues = vh_common_read(d, VIRTIO_PCI_COMMON_NUMQ, 2);
		return true;
	}
	return false;
}

uint64_t vh_common_read(struct vh_dev *d, unsigned off, unsigned size)
{
	return bus_read(&d->h->m.mmio, d->common + off, size);
}

void vh_common_write(struct vh_dev *d, unsigned off, unsigned size, uint64_t v)
{
	bus_write(&d->h->m.mmio, d->common + off, size, v);
}

uint8_t vh_status(struct vh_dev *d)
{
	return vh_common_read(d, VIRTIO_PCI_COMMON_STATUS, 1);
}

uint64_t vh_cfg_read(struct vh_dev *d, unsigned off, unsigned size)
{
	return bus_read(&d->h->m.mmio, d->devcfg + off, size);
}

void vh_msix_enable(struct vh_dev *d)
{
	struct machine *m = &d->h->m;
	unsigned nr = (vh_pci_read(d->h, d->devfn, d->msix_cap + 2, 2) & 0x7ff) + 1;

	for (unsigned v = 0; v < nr; v++) {
		uint64_t e = d->msix_table + 16 * v;

		bus_write(&m->mmio, e, 4, MEM_LAPIC_BASE);
		bus_write(&m->mmio, e + 4, 4, 0);
		bus_write(&m->mmio, e + 8, 4, VH_MSI_DATA + v);
		bus_write(&m->mmio, e + 12, 4, 0);
	}
	vh_pci_write(d->h, d->devfn, d->msix_cap + 2, 2, 0x8000);
}

void vh_msix_mask(struct vh_dev *d, unsigned v, bool masked)
{
	bus_write(&d->h->m.mmio, d->msix_table + 16 * v + 12, 4, masked);
}

uint8_t vh_dev_setup(struct vh_dev *d, uint64_t want, unsigned nq, uint16_t qsize)
{
	return vh_dev_setup_at(d, want, nq, qsize, VH_RING_BASE);
}

uint8_t vh_dev_setup_at(struct vh_dev *d, uint64_t want, unsigned nq, uint16_t qsize,
			uint64_t ring_base)
{
	struct guest_mem *mem = &d->h->m.mem;
	uint8_t s;

	vh_common_write(d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	g_assert_cmpuint(vh_status(d), ==, 0);
	vh_common_write(d, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	vh_common_write(d, VIRTIO_PCI_COMMON_STATUS, 1,
			VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	d->features = 0;
	for (unsigned sel = 0; sel < 2; sel++) {
		vh_common_write(d, VIRTIO_PCI_COMMON_DFSELECT, 4, sel);
		d->features |= vh_common_read(d, VIRTIO_PCI_COMMON_DF, 4) << (32 * sel);
	}
	want &= d->features;
	for (unsigned sel = 0; sel < 2; sel++) {
		vh_common_write(d, VIRTIO_PCI_COMMON_GFSELECT, 4, sel);
		vh_common_write(d, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(want >> (32 * sel)));
	}
	s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	vh_common_write(d, VIRTIO_PCI_COMMON_STATUS, 1, s);
	if (!(vh_status(d) & VIRTIO_STATUS_FEATURES_OK))
		return vh_status(d);
	vh_common_write(d, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	for (unsigned q = 0; q < nq; q++) {
		struct vh_ring *r = &d->ring[q];
		uint64_t base = ring_base + q * 0x4000ull;

		vh_common_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		g_assert_cmpuint(vh_common_read(d, VIRTIO_PCI_COMMON_Q_SIZE, 2), >=, qsize);
		g_assert_cmpuint(vh_common_read(d, VIRTIO_PCI_COMMON_Q_NOFF, 2), ==, q);
		vh_ring_init(r, mem, base, qsize);
		vh_common_write(d, VIRTIO_PCI_COMMON_Q_SIZE, 2, qsize);
		vh_common_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)r->desc);
		vh_common_write(d, VIRTIO_PCI_COMMON_Q_DESCHI, 4, r->desc >> 32);
		/* One 64-bit access for the other two, which drivers also do. */
		vh_common_write(d, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, r->avail);
		vh_common_write(d, VIRTIO_PCI_COMMON_Q_USEDLO, 8, r->used);
		vh_common_write(d, VIRTIO_PCI_COMMON_Q_MSIX, 2, q + 1);
		vh_common_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	}
	vh_common_write(d, VIRTIO_PCI_COMMON_STATUS, 1, s | VIRTIO_STATUS_DRIVER_OK);
	return vh_status(d);
}

void vh_kick(struct vh_dev *d, unsigned q)
{
	struct vh_machine *h = d->h;
	uint64_t addr = d->notify + (uint64_t)q * d->notify_mult;
	int fd = -1;

	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < h->nr_ioev; i++)
		if (h->ioev[i].addr == addr)
			fd = h->ioev[i].fd;
	pthread_mutex_unlock(&h->lock);
	if (fd >= 0) {
		/* The kernel signals the ioeventfd; the vCPU never exits. */
		g_assert_cmpint(eventfd_write(fd, 1), ==, 0);
		return;
	}
	bus_write(&h->m.mmio, addr, 2, q);
}

bool vh_wait_used(struct vh_dev *d, unsigned q, uint32_t *id, uint32_t *len)
{
	for (unsigned i = 0; i < 10000; i++) {
		if (vh_used_get(&d->ring[q], id, len))
			return true;
		g_usleep(1000);
	}
	return false;
}

bool vh_wait_status(struct vh_dev *d, uint8_t bits)
{
	for (unsigned i = 0; i < 10000; i++) {
		if ((vh_status(d) & bits) == bits)
			return true;
		g_usleep(1000);
	}
	return false;
}

#define VH_PF_EXITING	0x4	/* the kernel's task flag: in exit */

/*
 * Whether task tid of this process runs and is named name.  A thread
 * already joined may still be listed for a moment, in exit: it does not
 * count.
 */
static bool vh_thread_named(const char *tid, const char *name)
{
	char *path = g_strdup_printf("/proc/self/task/%s/stat", tid), *stat = NULL;
	const char *lp, *rp;
	unsigned long flags;
	bool ret = false;

	/* "tid (comm) state ppid pgrp session tty tpgid flags ...": comm may hold ") ". */
	if (g_file_get_contents(path, &stat, NULL, NULL) && (lp = strchr(stat, '(')) &&
	    (rp = strrchr(stat, ')')) &&
	    sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1)
		ret = (size_t)(rp - lp - 1) == strlen(name) &&
		      !strncmp(lp + 1, name, strlen(name)) && !(flags & VH_PF_EXITING);
	g_free(stat);
	g_free(path);
	return ret;
}

unsigned vh_thread_ids(const char *name, long *ids, unsigned max)
{
	GDir *dir = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;
	unsigned n = 0;

	g_assert_nonnull(dir);
	while ((tid = g_dir_read_name(dir))) {
		if (!vh_thread_named(tid, name))
			continue;
		if (n < max)
			ids[n] = atol(tid);
		n++;
	}
	g_dir_close(dir);
	return n;
}

unsigned vh_thread_count(const char *name)
{
	return vh_thread_ids(name, NULL, 0);
}

/*
 * hb's guest RAM becomes a copy of a's, as the RAM part of a migration
 * stream would make it.  A test that loads into a device still serving
 * (hold false, e.g. test_unheld_into_serving) has the copy race that
 * device's I/O threads by design: tests/tsan.supp names this function.
 */
static void vh_ram_load(struct vh_machine *hb, const struct vh_machine *ha)
{
	memcpy(vh_ptr(&hb->m.mem, 0, VH_RAM), vh_ptr(&ha->m.mem, 0, VH_RAM), VH_RAM);
}

static int vh_migrate(struct vh_dev *a, struct vh_machine *hb, struct vh_dev *b, bool hold,
		      void (*edit)(struct vmstate_out *o), void (*between)(void *),
		      void *opaque, char *err, size_t errlen)
{
	struct vmstate_section *sa = vmstate_find(&a->h->m, "virtio-pci", a->devfn);
	struct vmstate_section *sb = vmstate_find(&hb->m, "virtio-pci", a->devfn);
	struct vmstate_in in = { .section = "virtio-pci", .err = err, .errlen = errlen };
	struct vmstate_out o;
	int ret;

	g_assert_nonnull(sa);
	g_assert_nonnull(sb);
	g_assert_cmpint(sa->quiesce(sa->opaque), ==, 0);
	vmstate_out_init(&o);
	g_assert_cmpint(sa->save(sa->opaque, &o), ==, 0);
	if (edit)
		edit(&o);
	/*
	 * A held destination stops serving before its RAM becomes a's, as a
	 * real one (whose RAM is the loader's alone) never served: an I/O
	 * thread of b's own driver setup that ran late (its first look at
	 * the rings, seen under ASan) popped a's parked requests from the
	 * copy and completed them before the load.
	 */
	if (hold)
		g_assert_cmpint(sb->quiesce(sb->opaque), ==, 0);
	vh_ram_load(hb, a->h);
	in.buf = o.buf;
	in.len = o.len;
	in.version = sa->version;
	ret = sb->load(sb->opaque, &in);
	if (!ret)
		ret = vmstate_in_finish(&in);
	if (between)
		between(opaque);
	if (hold)
		sb->resume(sb->opaque);
	vmstate_out_free(&o);
	*b = *a;
	b->h = hb;
	for (unsigned i = 0; i < G_N_ELEMENTS(b->ring); i++)
		b->ring[i].mem = &hb->m.mem;
	return ret;
}

int vh_migrate_dev(struct vh_dev *a, struct vh_machine *hb, struct vh_dev *b, bool hold,
		   void (*edit)(struct vmstate_out *o), char *err, size_t errlen)
{
	return vh_migrate(a, hb, b, hold, edit, NULL, NULL, err, errlen);
}

int vh_migrate_dev_held(struct vh_dev *a, struct vh_machine *hb, struct vh_dev *b,
			void (*between)(void *), void *opaque, char *err, size_t errlen)
{
	return vh_migrate(a, hb, b, true, NULL, between, opaque, err, errlen);
}
