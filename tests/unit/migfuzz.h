/*
 * The migration stream fuzzer's harness, for test_migration_fuzz.c:
 *
 * - a real machine as source or destination: TCG, two vCPUs (one in long
 *   mode, one waiting for SIPI), the board's devices with a serial port,
 *   virtio-blk and virtio-scsi (a disk and a CD-ROM) whose driver set up
 *   their queues, so that every section a stream carries is there with
 *   state worth mutating;
 * - a saved stream taken apart into records, sections and fields, and put
 *   back together with its lengths and its checksum recomputed, so that a
 *   mutated value reaches the section's loader instead of being refused
 *   by the framing;
 * - the load as a destination does it (devices held, stream, resume), then
 *   what a guest does next with that state: read its devices' registers
 *   before writing any index, notify its queues, raise its interrupts,
 *   run (parked requests replay);
 * - struct fuzz: a source, its stream taken apart, and fuzz_load, which
 *   loads records into a fresh destination and, for a stream that loads,
 *   checks that the destination saves a stream that loads again.
 */
#ifndef VIREO_TESTS_MIGFUZZ_H
#define VIREO_TESTS_MIGFUZZ_H

#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/accel.h"
#include "accel/tcg/tcg.h"
#include "irqchip.h"
#include "block.h"
#include "machine.h"
#include "migration/migration_int.h"
#include "pci.h"
#include "scsi.h"
#include "vcpu.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"
#include "vmstate.h"

#define MF_RAM		(8ull << 20)
#define MF_QSIZE	64
#define MF_BLK_RINGS	0x100000ull	/* 16 KiB per queue */
#define MF_SCSI_RINGS	0x140000ull
#define MF_REQ		0x200000ull	/* a request header, data and status */

/* References into the -device types' files, so that they are linked in (Makefile). */
static int (*const mf_link_blk)(struct machine *, char *, size_t) __attribute__((used)) =
	virtio_blk_create_for_drives;
static int (*const mf_link_scsi)(struct machine *, const char *, char *, size_t)
	__attribute__((used)) = virtio_scsi_device_del;

struct mf_vm {
	struct vh_machine h;		/* only its machine and driver: the accelerator is TCG */
	const char *dir;
	char tag[16];
};

static void mf_add(struct mf_vm *vm, bool drive, const char *fmt, ...)
{
	char err[512], *o;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	o = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	ret = drive ? drive_add(&vm->h.m, o, err, sizeof(err)) :
		      machine_add_device(&vm->h.m, o, err, sizeof(err));
	if (ret)
		g_error("%s: %s", o, err);
	g_free(o);
}

/* An image of size bytes for this machine, created once. */
static char *mf_image(struct mf_vm *vm, const char *name, uint64_t size)
{
	char *p = g_strdup_printf("%s/%s-%s.img", vm->dir, vm->tag, name);
	FILE *f;

	if (!g_file_test(p, G_FILE_TEST_EXISTS)) {
		f = fopen(p, "w");
		g_assert_nonnull(f);
		g_assert_cmpint(ftruncate(fileno(f), size), ==, 0);
		fclose(f);
	}
	return p;
}

/* The driver's side of a source: features, MSI-X with real vectors, queues. */
static void mf_driver_up(struct mf_vm *vm, uint16_t id, uint64_t want, unsigned nq,
			 uint64_t rings, struct vh_dev *d)
{
	struct machine *m = &vm->h.m;

	g_assert_true(vh_dev_find(&vm->h, id, 0, d));
	vh_msix_enable(d);
	/* Vector 0x40 + v, fixed delivery to APIC 0: what Linux programs. */
	for (unsigned v = 0; v <= nq; v++)
		bus_write(&m->mmio, d->msix_table + 16 * v + 8, 4, 0x40 + v);
	g_assert_true(vh_dev_setup_at(d, want, nq, MF_QSIZE, rings) &
		      VIRTIO_STATUS_DRIVER_OK);
}

/*
 * A read of 512 bytes published on queue 1 of the virtio-blk and not
 * notified: the saved rings hold a request the destination takes on.
 */
static void mf_pending_read(struct vh_dev *d)
{
	struct vh_buf b[3] = {
		{ MF_REQ, 16, false }, { MF_REQ + 0x1000, 512, true }, { MF_REQ + 16, 1, true },
	};
	struct virtio_blk_req_hdr *h = vh_ptr(d->ring[1].mem, MF_REQ, 16);

	h->type = VIRTIO_BLK_T_IN;
	h->sector = 1;
	vh_ring_add(&d->ring[1], b, 3, 0);
}

static void mf_vm_init(struct mf_vm *vm, const char *dir, const char *tag, bool src)
{
	struct machine_config cfg = { .ram_size = MF_RAM, .smp = 2, .accel = "tcg",
				      .serial = { "null" } };
	struct machine *m = &vm->h.m;
	struct cpu_state s;
	struct vh_dev d;
	char err[512], *img;

	memset(vm, 0, sizeof(*vm));
	vm->dir = dir;
	snprintf(vm->tag, sizeof(vm->tag), "%s", tag);
	pthread_mutex_init(&vm->h.lock, NULL);
	if (machine_init(m, &cfg, err, sizeof(err)))
		g_error("machine_init: %s", err);
	img = mf_image(vm, "blk", 1 << 20);
	mf_add(vm, true, "file=%s,format=raw,if=none,id=blk0", img);
	g_free(img);
	mf_add(vm, false, "virtio-blk-pci,drive=blk0,num-queues=2");
	img = mf_image(vm, "hd", 1 << 20);
	mf_add(vm, true, "file=%s,format=raw,if=none,id=hd", img);
	g_free(img);
	img = mf_image(vm, "cd", 2048 * 64);
	mf_add(vm, true, "file=%s,format=raw,if=none,id=cd,readonly=on", img);
	g_free(img);
	mf_add(vm, false, "virtio-scsi-pci,id=scsi0,num_queues=2,virtqueue_size=%u", MF_QSIZE);
	mf_add(vm, false, "scsi-hd,drive=hd,scsi-id=0,lun=0,id=hd0");
	mf_add(vm, false, "scsi-cd,drive=cd,scsi-id=0,lun=1,id=cd0");
	/* The BSP in long mode, the AP as after power-on (waiting for SIPI). */
	cpu_state_reset(&s);
	cpu_state_long64(&s, 0x10000, 0x9000);
	s.rip = 0x100000;
	g_assert_cmpint(m->accel->vcpu_reset(m->vcpus[0], &s), ==, 0);
	g_assert_cmpint(m->accel->vcpu_reset(m->vcpus[1], NULL), ==, 0);
	g_assert_cmpint(mig_register_accel_sections(m, migration_get(m)), ==, 0);
	if (!src)
		return;
	mf_driver_up(vm, VIRTIO_ID_BLOCK, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_BLK_F_MQ |
		     1ull << VIRTIO_F_EVENT_IDX, 2, MF_BLK_RINGS, &d);
	mf_pending_read(&d);
	mf_driver_up(vm, VIRTIO_ID_SCSI, 1ull << VIRTIO_F_VERSION_1 |
		     1ull << VIRTIO_SCSI_F_HOTPLUG | 1ull << VIRTIO_F_INDIRECT_DESC,
		     4, MF_SCSI_RINGS, &d);
	/* Legacy devices away from their reset state. */
	bus_write(&m->pio, 0x43, 1, 0x34);		/* PIT channel 0, mode 2 */
	bus_write(&m->pio, 0x40, 1, 0x9c);
	bus_write(&m->pio, 0x40, 1, 0x2e);
	bus_write(&m->pio, 0x20, 1, 0x11);		/* 8259 master ICW1-4 */
	bus_write(&m->pio, 0x21, 1, 0x20);
	bus_write(&m->pio, 0x21, 1, 0x04);
	bus_write(&m->pio, 0x21, 1, 0x01);
	bus_write(&m->pio, 0x21, 1, 0xfb);
	bus_write(&m->pio, 0x70, 1, 0x0b);		/* RTC: periodic interrupt on */
	bus_write(&m->pio, 0x71, 1, 0x42);
	bus_write(&m->pio, 0x3fb, 1, 0x83);		/* UART divisor latch */
	bus_write(&m->pio, 0x3f8, 1, 0x01);
	bus_write(&m->pio, 0x3fb, 1, 0x03);
	bus_write(&m->pio, 0x3f9, 1, 0x0f);
	bus_write(&m->mmio, MEM_IOAPIC_BASE, 4, 0x10 + 2 * 4);	/* pin 4 -> vector 0x34 */
	bus_write(&m->mmio, MEM_IOAPIC_BASE + 0x10, 4, 0x34);
	machine_set_irq(m, 4, 1);
}

static void mf_vm_destroy(struct mf_vm *vm)
{
	struct machine *m = &vm->h.m;

	migration_destroy(m);
	machine_destroy(m);
	pthread_mutex_destroy(&vm->h.lock);
}

static uint8_t *mf_read_fd(int fd, size_t *len)
{
	uint8_t *b;

	*len = lseek(fd, 0, SEEK_END);
	b = g_malloc(*len);
	g_assert_cmpint(pread(fd, b, *len, 0), ==, (ssize_t)*len);
	return b;
}

/*
 * The whole stream of vm, as the switch-over sends it (mapped: a file in
 * the mapped-ram layout); NULL if a save failed.
 */
static uint8_t *mf_save_as(struct mf_vm *vm, bool mapped, size_t *len, char *msg, size_t msglen)
{
	struct machine *m = &vm->h.m;
	struct mig_stream s;
	struct mapped_ram mr = { .dfd = -1 };
	struct mig_ram r;
	uint8_t *b = NULL;
	int fd = memfd_create("mf-save", 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(mig_quiesce_devices(m), ==, 0);
	g_assert_cmpint(mig_stream_init(&s, fd), ==, 0);
	mig_save_header(&s);
	if (!ram_save_setup(m, &r, &s)) {
		r.stopped = true;
		if (mapped && !mapped_ram_save_setup(m, &mr, &s, false, 1) &&
		    !mapped_ram_save_dirty(m, &mr, &r, &s))
			mapped_ram_save_finish(m, &mr, &s);
		else if (!mapped)
			ram_save_dirty(m, &r, &s);
		if (!s.error && !mig_save_sections(m, &s)) {
			mig_save_end(&s);
			mig_flush(&s);
		}
		mapped_ram_cleanup(&mr);
		ram_save_cleanup(m, &r);
	}
	if (!s.error)
		b = mf_read_fd(fd, len);
	else
		snprintf(msg, msglen, "%s", s.msg);
	mig_stream_free(&s);
	close(fd);
	mig_resume_devices(m);
	return b;
}

static uint8_t *mf_save(struct mf_vm *vm, size_t *len, char *msg, size_t msglen)
{
	return mf_save_as(vm, false, len, msg, msglen);
}

/* ---- the guest's next steps on a machine that loaded a stream ---- */

static void mf_read_ports(struct machine *m)
{
	/* The index registers first read as loaded, then walked. */
	static const uint16_t ports[] = {
		0x71, 0xcfc, 0xcfd, 0xcfe, 0xcff, 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1,
		0x40, 0x41, 0x42, 0x43, 0x61, 0x60, 0x64, 0x92,
		0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff,
		0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x608, 0xcf9,
	};

	for (unsigned i = 0; i < G_N_ELEMENTS(ports); i++)
		bus_read(&m->pio, ports[i], 1);
	bus_read(&m->pio, 0xcfc, 4);
	for (unsigned i = 0; i < 0x80; i++) {
		bus_write(&m->pio, 0x70, 1, i);
		bus_read(&m->pio, 0x71, 1);
	}
	for (unsigned i = 0; i < 0x40; i++) {
		bus_write(&m->mmio, MEM_IOAPIC_BASE, 4, i);
		bus_read(&m->mmio, MEM_IOAPIC_BASE + 0x10, 4);
	}
	/* The 8259s' IRR and ISR, the PIT's latched counts and status. */
	bus_write(&m->pio, 0x20, 1, 0x0a);
	bus_read(&m->pio, 0x20, 1);
	bus_write(&m->pio, 0xa0, 1, 0x0b);
	bus_read(&m->pio, 0xa0, 1);
	bus_write(&m->pio, 0x43, 1, 0xce);
	for (unsigned i = 0; i < 6; i++)
		bus_read(&m->pio, 0x40 + i % 3, 1);
	bus_read(&m->pio, 0x60, 1);
	bus_write(&m->pio, 0x64, 1, 0x20);
	bus_read(&m->pio, 0x60, 1);
}

/* A virtio-pci function as its BARs say; reads before writes, then notifies. */
static void mf_virtio_poke(struct machine *m, uint8_t devfn)
{
	uint64_t ecam = MEM_PCI_ECAM_BASE + ((uint64_t)devfn << 12), bar;
	uint32_t lo;

	for (unsigned off = 0; off < 0x100; off += 4)
		bus_read(&m->mmio, ecam + off, 4);
	lo = bus_read(&m->mmio, ecam + PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR, 4);
	bar = (lo & ~0xfull) |
	      (uint64_t)bus_read(&m->mmio, ecam + PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR + 4, 4)
	      << 32;
	for (unsigned off = 0; off < 0x40; off++)
		bus_read(&m->mmio, bar + VIRTIO_PCI_COMMON_OFF + off, 1);
	for (unsigned off = 0; off < 0x40; off += 4)
		bus_read(&m->mmio, bar + VIRTIO_PCI_DEVCFG_OFF + off, 4);
	for (unsigned q = 0; q < 8; q++) {
		bus_write(&m->mmio, bar + VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		for (unsigned off = VIRTIO_PCI_COMMON_Q_SELECT; off < 0x38; off += 2)
			bus_read(&m->mmio, bar + off, 2);
		bus_write(&m->mmio, bar + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT, 2, q);
	}
	for (unsigned sel = 0; sel < 3; sel++) {
		bus_write(&m->mmio, bar + VIRTIO_PCI_COMMON_DFSELECT, 4, sel);
		bus_read(&m->mmio, bar + VIRTIO_PCI_COMMON_DF, 4);
	}
	bus_read(&m->mmio, bar + VIRTIO_PCI_ISR_OFF, 1);
}

/*
 * Each vCPU's LAPIC page, read as that vCPU, and what its CPU side asks
 * of the irqchip: the pending interrupt, NMI, CR8, the TSC deadline.
 */
static void mf_lapic_poke(struct machine *m)
{
	struct irqchip *c = tcg_irqchip(m->vcpus[0]->accel_state);

	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		current_vcpu = m->vcpus[i];
		for (unsigned off = 0; off < 0x400; off += 0x10)
			bus_read(&m->mmio, MEM_LAPIC_BASE + off, 4);
		current_vcpu = NULL;
		irqchip_get_cr8(c, i);
		irqchip_get_apic_base(c, i);
		irqchip_get_tsc_deadline(c, i);
		if (irqchip_has_interrupt(c, i))
			irqchip_ack_interrupt(c, i);
		irqchip_take_nmi(c, i);
	}
}

static void mf_exercise(struct machine *m)
{
	struct cpu_state s;

	mf_read_ports(m);
	for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		uint64_t id = bus_read(&m->mmio, MEM_PCI_ECAM_BASE + ((uint64_t)slot << 15), 2);

		if (id == VIRTIO_PCI_VENDOR)
			mf_virtio_poke(m, slot << 3);
	}
	for (unsigned gsi = 0; gsi < 24; gsi += gsi == 1 ? 2 : 1) {
		machine_set_irq(m, gsi, 1);
		machine_set_irq(m, gsi, 0);
	}
	machine_send_msi(m, MEM_LAPIC_BASE, 0x41);
	machine_send_msi(m, MEM_LAPIC_BASE | 0xff000, 0x4041);
	mf_lapic_poke(m);
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		g_assert_cmpint(m->accel->vcpu_get_state(m->vcpus[i], &s), ==, 0);
	/* The guest runs (cont): virtio-blk submits the requests it carried over. */
	machine_set_runstate(m, RUNSTATE_RUNNING, NULL);
}

/*
 * Load buf into vm as a destination does: devices held, the stream, and on
 * success the devices resumed and the guest's next steps.  hold false:
 * nothing holds the devices, which then start as their section loads (a
 * load into a device that may serve).  Returns the load's result; msg
 * says why it failed.
 */
static int mf_load(struct mf_vm *vm, const uint8_t *buf, size_t len, bool hold, char *msg,
		   size_t msglen)
{
	struct machine *m = &vm->h.m;
	struct mig_stream s;
	int fd = memfd_create("mf-load", 0), ret;

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, buf, len, 0), ==, (ssize_t)len);
	if (hold)
		g_assert_cmpint(mig_quiesce_devices(m), ==, 0);
	g_assert_cmpint(mig_stream_init(&s, fd), ==, 0);
	ret = mig_load(m, &s);
	snprintf(msg, msglen, "%s", s.msg);
	mig_stream_free(&s);
	close(fd);
	if (!ret) {
		if (hold)
			mig_resume_devices(m);
		mf_exercise(m);
	}
	return ret;
}

/* ---- a stream taken apart ---- */

struct mf_field {
	char name[256];
	GByteArray *data;
};

struct mf_rec {
	uint8_t tag;
	GByteArray *raw;		/* any other record, after its tag */
	char name[256];			/* MIG_TAG_SECTION */
	uint32_t instance, version;
	GPtrArray *fields;		/* struct mf_field */
};

static void mf_field_free(gpointer p)
{
	struct mf_field *f = p;

	g_byte_array_unref(f->data);
	g_free(f);
}

static void mf_rec_free(gpointer p)
{
	struct mf_rec *r = p;

	if (r->raw)
		g_byte_array_unref(r->raw);
	if (r->fields)
		g_ptr_array_unref(r->fields);
	g_free(r);
}

static GByteArray *mf_bytes(const void *p, size_t len)
{
	GByteArray *a = g_byte_array_sized_new(len);

	return g_byte_array_append(a, p, len);
}

/* Section payload into fields; false if it is not a list of fields. */
static bool mf_parse_fields(struct mf_rec *r, const uint8_t *p, size_t len)
{
	size_t pos = 0;

	r->fields = g_ptr_array_new_with_free_func(mf_field_free);
	while (pos < len) {
		struct mf_field *f = g_new0(struct mf_field, 1);
		uint8_t nl = p[pos++];
		uint32_t sz;

		g_ptr_array_add(r->fields, f);
		if (pos + nl + 4 > len)
			return false;
		memcpy(f->name, p + pos, nl);
		pos += nl;
		memcpy(&sz, p + pos, 4);
		pos += 4;
		if (sz > len - pos)
			return false;
		f->data = mf_bytes(p + pos, sz);
		pos += sz;
	}
	return true;
}

/* The records of a stream this vireo wrote (END excluded), or NULL. */
static GPtrArray *mf_parse(const uint8_t *b, size_t len)
{
	GPtrArray *recs = g_ptr_array_new_with_free_func(mf_rec_free);
	size_t pos = 12;

	if (len < 12 + 9 || memcmp(b, MIG_MAGIC, 8))
		goto bad;
	while (pos < len) {
		struct mf_rec *r = g_new0(struct mf_rec, 1);
		size_t start;
		uint32_t n;
		uint64_t addr;

		g_ptr_array_add(recs, r);
		r->tag = b[pos++];
		start = pos;
		switch (r->tag) {
		case MIG_TAG_RAM_LAYOUT:
			memcpy(&n, b + pos, 4);
			pos += 4 + 16ull * n;
			break;
		case MIG_TAG_RAM_PAGE:
			memcpy(&addr, b + pos, 8);
			pos += 8 + (addr & MIG_PAGE_ZERO ? 0 : MIG_PAGE_SIZE);
			break;
		case MIG_TAG_SECTION: {
			uint8_t nl = b[pos++];

			memcpy(r->name, b + pos, nl);
			pos += nl;
			memcpy(&r->instance, b + pos, 4);
			memcpy(&r->version, b + pos + 4, 4);
			memcpy(&n, b + pos + 8, 4);
			pos += 12;
			if (pos + n > len || !mf_parse_fields(r, b + pos, n))
				goto bad;
			pos += n;
			continue;
		}
		case MIG_TAG_END:
			g_ptr_array_remove_index(recs, recs->len - 1);
			if (pos + 8 != len)
				goto bad;
			return recs;
		default:
			goto bad;
		}
		if (pos > len)
			goto bad;
		r->raw = mf_bytes(b + start, pos - start);
	}
bad:
	g_ptr_array_unref(recs);
	return NULL;
}

static inline GPtrArray *mf_copy(GPtrArray *recs)
{
	GPtrArray *c = g_ptr_array_new_full(recs->len, mf_rec_free);

	for (unsigned i = 0; i < recs->len; i++) {
		struct mf_rec *r = recs->pdata[i], *n = g_memdup2(r, sizeof(*r));

		if (r->raw)
			n->raw = mf_bytes(r->raw->data, r->raw->len);
		if (r->fields) {
			n->fields = g_ptr_array_new_full(r->fields->len, mf_field_free);
			for (unsigned j = 0; j < r->fields->len; j++) {
				struct mf_field *f = r->fields->pdata[j];
				struct mf_field *nf = g_new0(struct mf_field, 1);

				memcpy(nf->name, f->name, sizeof(f->name));
				nf->data = mf_bytes(f->data->data, f->data->len);
				g_ptr_array_add(n->fields, nf);
			}
		}
		g_ptr_array_add(c, n);
	}
	return c;
}

static void mf_put(GByteArray *o, const void *p, size_t len)
{
	g_byte_array_append(o, p, len);
}

/* The records as a stream: header, records, END and a checksum that matches. */
static uint8_t *mf_serialize(GPtrArray *recs, size_t *len)
{
	GByteArray *o = g_byte_array_new();
	struct XXH3_state_s *h;
	uint32_t v = MIG_STREAM_VERSION;
	uint8_t tag = MIG_TAG_END;
	uint64_t sum;

	mf_put(o, MIG_MAGIC, 8);
	mf_put(o, &v, 4);
	for (unsigned i = 0; i < recs->len; i++) {
		struct mf_rec *r = recs->pdata[i];

		mf_put(o, &r->tag, 1);
		if (r->raw) {
			mf_put(o, r->raw->data, r->raw->len);
		} else {
			uint8_t nl = strlen(r->name);
			uint32_t plen = 0;
			size_t at;

			mf_put(o, &nl, 1);
			mf_put(o, r->name, nl);
			mf_put(o, &r->instance, 4);
			mf_put(o, &r->version, 4);
			at = o->len;
			mf_put(o, &plen, 4);
			for (unsigned j = 0; j < r->fields->len; j++) {
				struct mf_field *f = r->fields->pdata[j];
				uint8_t fl = strlen(f->name);

				mf_put(o, &fl, 1);
				mf_put(o, f->name, fl);
				mf_put(o, &f->data->len, 4);
				mf_put(o, f->data->data, f->data->len);
			}
			plen = o->len - at - 4;
			memcpy(o->data + at, &plen, 4);
		}
	}
	mf_put(o, &tag, 1);
	h = mig_hash_new();
	mig_hash_add(h, o->data, o->len);
	sum = mig_hash_value(h);
	mig_hash_free(h);
	mf_put(o, &sum, 8);
	*len = o->len;
	return g_byte_array_free(o, FALSE);
}

/* Section name/instance (instance < 0: the first of that name), or NULL. */
static inline struct mf_rec *mf_section(GPtrArray *recs, const char *name, int64_t instance)
{
	for (unsigned i = 0; i < recs->len; i++) {
		struct mf_rec *r = recs->pdata[i];

		if (r->tag == MIG_TAG_SECTION && !strcmp(r->name, name) &&
		    (instance < 0 || r->instance == instance))
			return r;
	}
	return NULL;
}

/* The nth field called name of section r, or NULL. */
static inline GByteArray *mf_field(struct mf_rec *r, const char *name, unsigned nth)
{
	for (unsigned j = 0; r && j < r->fields->len; j++) {
		struct mf_field *f = r->fields->pdata[j];

		if (!strcmp(f->name, name) && !nth--)
			return f->data;
	}
	return NULL;
}

/* Set the width-byte integer at off of a field (little-endian). */
static inline void mf_set(GByteArray *a, size_t off, unsigned width, uint64_t v)
{
	g_assert_cmpuint(off + width, <=, a->len);
	memcpy(a->data + off, &v, width);
}

/* ---- a source, its stream, and loads into fresh destinations ---- */

struct fuzz {
	char *dir;
	struct mf_vm src;
	uint8_t *stream;
	size_t len;
	GPtrArray *recs;
};

static void fuzz_init(struct fuzz *f)
{
	char msg[512] = "";

	f->dir = g_dir_make_tmp("vireo-migfuzz-XXXXXX", NULL);
	g_assert_nonnull(f->dir);
	mf_vm_init(&f->src, f->dir, "src", true);
	f->stream = mf_save(&f->src, &f->len, msg, sizeof(msg));
	if (!f->stream)
		g_error("the source does not save: %s", msg);
	f->recs = mf_parse(f->stream, f->len);
	g_assert_nonnull(f->recs);
}

/* Remove the images directory dir (g_dir_make_tmp) and free its name. */
static void mf_dir_remove(char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *n;

	while (d && (n = g_dir_read_name(d))) {
		char *p = g_build_filename(dir, n, NULL);

		g_unlink(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(dir);
	g_free(dir);
}

static void fuzz_fini(struct fuzz *f)
{
	g_ptr_array_unref(f->recs);
	g_free(f->stream);
	mf_vm_destroy(&f->src);
	mf_dir_remove(f->dir);
}

/*
 * Load recs into a fresh destination.  A stream that loads must give a
 * machine that saves a stream that loads again.  Returns the first load's
 * result; msg its message.
 */
static int fuzz_load(struct fuzz *f, GPtrArray *recs, bool roundtrip, bool hold, char *msg,
		     size_t msglen)
{
	struct mf_vm dst, again;
	uint8_t *b, *b2;
	size_t len, len2;
	char msg2[512] = "";
	int ret;

	b = mf_serialize(recs, &len);
	mf_vm_init(&dst, f->dir, "dst", false);
	msg[0] = 0;
	ret = mf_load(&dst, b, len, hold, msg, msglen);
	if (ret) {
		if (!msg[0])
			g_error("a refused stream without a message (%d)", ret);
	} else if (roundtrip) {
		b2 = mf_save(&dst, &len2, msg2, sizeof(msg2));
		if (!b2)
			g_error("a loaded stream does not save again: %s", msg2);
		mf_vm_init(&again, f->dir, "again", false);
		if (mf_load(&again, b2, len2, true, msg2, sizeof(msg2)))
			g_error("a loaded stream saved again does not load: %s", msg2);
		mf_vm_destroy(&again);
		g_free(b2);
	}
	mf_vm_destroy(&dst);
	g_free(b);
	return ret;
}

#endif
