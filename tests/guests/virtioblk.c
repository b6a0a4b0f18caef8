/*
 * A minimal virtio-pci (modern) block driver, enough to prove the device
 * with a real vCPU: it finds the device by a PCI scan, walks its
 * capabilities, negotiates VERSION_1 (and EVENT_IDX with "event_idx"),
 * sets up queue 0 with an MSI-X vector aimed at this CPU's LAPIC, writes
 * "sectors=N" sectors (default 64) with a pattern, flushes, reads them back
 * and compares, reads the serial with GET_ID, and exits (or, with "wait",
 * spins so a test can query the device; with "loop", writes, flushes and
 * reads back rounds forever, the round number in the first 4 bytes of
 * sector 0, printing "virtio-blk: round N" every 16th round, so a test
 * can see writes made at any later time reach the image).  Each request
 * waits until both the used ring moved and its MSI-X interrupt was taken,
 * so every completion is proven to arrive as an interrupt.  The wait spins
 * with interrupts enabled rather than halting: on nested KVM hosts whose
 * KVM loses the wake-up of a halted vCPU for an injected MSI (QEMU 7.2
 * hangs the same way on the hlt version), hlt would hang forever.
 * Prints "virtio-blk: ..." lines a test checks.
 *
 * With "scsi" it drives a virtio-scsi-pci controller instead, whose disk
 * at target 0, LUN 0 gets the same writes, flushes and reads as READ (10),
 * WRITE (10) and SYNCHRONIZE CACHE (10) on request queue 0 (queue 2); a
 * command's status is 0 for GOOD, 1 for CHECK CONDITION (as virtio-blk's
 * IOERR) and 0x80 | response when the transport failed it.  The serial
 * and past-the-end checks are virtio-blk's only.
 */
#include "rt/rt.h"

#define VIRTIO_VENDOR		0x1af4
#define VIRTIO_BLK_MODERN	0x1042
#define VIRTIO_SCSI_MODERN	0x1048
#define IRQ_VECTOR		0x41
#define QSIZE			16
#define SECTOR			512

/* virtio-pci capability types and common configuration offsets. */
#define CAP_COMMON	1
#define CAP_NOTIFY	2
#define CAP_DEVICE	4
#define CC_DFSELECT	0x00
#define CC_DF		0x04
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX_CONFIG	0x10
#define CC_NUM_QUEUES	0x12
#define CC_STATUS	0x14
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_MSIX	0x1a
#define CC_Q_ENABLE	0x1c
#define CC_Q_NOTIFY_OFF	0x1e
#define CC_Q_DESC	0x20
#define CC_Q_AVAIL	0x28
#define CC_Q_USED	0x30

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[QSIZE]; uint16_t avail_event; };
struct req_hdr { uint32_t type, reserved; uint64_t sector; };
/* virtio-scsi request (with the default 32-byte CDB) and response (96 bytes of sense). */
struct scsi_hdr { uint8_t lun[8]; uint64_t id; uint8_t attr, prio, crn, cdb[32]; }
	__attribute__((packed));
struct scsi_resp { uint32_t sense_len, resid; uint16_t qual; uint8_t status, response;
		   uint8_t sense[96]; } __attribute__((packed));

static struct desc ring_desc[QSIZE] __attribute__((aligned(16)));
static struct avail ring_avail __attribute__((aligned(4096)));
static struct used ring_used __attribute__((aligned(4096)));
static struct req_hdr hdr;
static uint8_t status_byte;
static struct scsi_hdr shdr;
static struct scsi_resp sresp;
static int scsi;
static uint16_t qidx;			/* the queue used: 0, or 2 for virtio-scsi */
static uint8_t data[64 * SECTOR] __attribute__((aligned(4096)));
static volatile unsigned irqs;
static uintptr_t common, notify, devcfg;
static uint32_t notify_mult;
static uint16_t notify_off, last_used;
static int event_idx;

static void msix_irq(unsigned vector)
{
	(void)vector;
	irqs++;
	lapic_write(LAPIC_EOI, 0);
}

static inline void w8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void w16(uintptr_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void w32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint8_t r8(uintptr_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t r16(uintptr_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t r32(uintptr_t a) { return *(volatile uint32_t *)a; }
static void w64(uintptr_t a, uint64_t v) { w32(a, (uint32_t)v); w32(a + 4, v >> 32); }

static uint64_t bar_addr(unsigned dev, unsigned bar)
{
	uint32_t lo = pci_read32(0, dev, 0, 0x10 + bar * 4);
	uint64_t a = lo & ~0xfu;

	if ((lo & 6) == 4)			/* 64-bit BAR */
		a |= (uint64_t)pci_read32(0, dev, 0, 0x14 + bar * 4) << 32;
	return a;
}

static void pci_write16(unsigned dev, unsigned off, uint16_t v)
{
	uint32_t d = pci_read32(0, dev, 0, off & ~3u);
	unsigned sh = (off & 2) * 8;

	d = (d & ~(0xffffu << sh)) | (uint32_t)v << sh;
	outl(0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
	outl(0xcfc, d);
}

/* Find the device and map its capabilities; returns the MSI-X table address. */
static uintptr_t probe(unsigned *devp)
{
	uintptr_t msix_table = 0;
	unsigned dev, cap;

	for (dev = 0; dev < 32; dev++) {
		uint32_t id = pci_read32(0, dev, 0, 0);

		if ((id & 0xffff) == VIRTIO_VENDOR &&
		    id >> 16 == (scsi ? VIRTIO_SCSI_MODERN : VIRTIO_BLK_MODERN))
			break;
	}
	if (dev == 32)
		fail("no %s device on bus 0", scsi ? "virtio-scsi-pci" : "virtio-blk-pci");
	*devp = dev;
	for (cap = pci_read32(0, dev, 0, 0x34) & 0xfc; cap; ) {
		uint32_t h = pci_read32(0, dev, 0, cap);
		uint8_t id = h & 0xff, type = (h >> 24) & 0xff;

		if (id == 0x09) {
			uint32_t bar = pci_read32(0, dev, 0, cap + 4) & 0xff;
			uintptr_t at = bar_addr(dev, bar) + pci_read32(0, dev, 0, cap + 8);

			if (type == CAP_COMMON)
				common = at;
			else if (type == CAP_NOTIFY) {
				notify = at;
				notify_mult = pci_read32(0, dev, 0, cap + 16);
			} else if (type == CAP_DEVICE)
				devcfg = at;
		} else if (id == 0x11) {
			uint32_t t = pci_read32(0, dev, 0, cap + 4);

			msix_table = bar_addr(dev, t & 7) + (t & ~7u);
			/* Enable MSI-X (message control bit 15). */
			pci_write16(dev, cap + 2, (h >> 16) | 0x8000);
		}
		cap = (h >> 8) & 0xfc;
	}
	if (!common || !notify || !devcfg || !msix_table)
		fail("virtio capabilities missing (common %lx notify %lx device %lx msix %lx)",
		     (unsigned long)common, (unsigned long)notify, (unsigned long)devcfg,
		     (unsigned long)msix_table);
	return msix_table;
}

static void setup(uintptr_t msix_table)
{
	uint32_t f_hi, f_lo;

	w8(common + CC_STATUS, 0);
	while (r8(common + CC_STATUS))
		cpu_relax();
	w8(common + CC_STATUS, S_ACK | S_DRIVER);
	w32(common + CC_DFSELECT, 0);
	f_lo = r32(common + CC_DF);
	w32(common + CC_DFSELECT, 1);
	f_hi = r32(common + CC_DF);
	if (!(f_hi & 1))
		fail("device does not offer VERSION_1");
	w32(common + CC_GFSELECT, 0);
	w32(common + CC_GF, event_idx ? (f_lo & (1u << 29)) : 0);
	w32(common + CC_GFSELECT, 1);
	w32(common + CC_GF, 1);
	w8(common + CC_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(r8(common + CC_STATUS) & S_FEATURES_OK))
		fail("FEATURES_OK refused");

	/* MSI-X entry 0: fixed delivery of IRQ_VECTOR to this CPU. */
	w32(msix_table + 0, 0xfee00000u | lapic_id() << 12);
	w32(msix_table + 4, 0);
	w32(msix_table + 8, IRQ_VECTOR);
	w32(msix_table + 12, 0);		/* unmasked */
	w16(common + CC_MSIX_CONFIG, 0xffff);

	w16(common + CC_Q_SELECT, qidx);
	if (r16(common + CC_Q_SIZE) < QSIZE)
		fail("queue %u too small: %u", qidx, r16(common + CC_Q_SIZE));
	w16(common + CC_Q_SIZE, QSIZE);
	w16(common + CC_Q_MSIX, 0);
	if (r16(common + CC_Q_MSIX) != 0)
		fail("queue vector not taken");
	w64(common + CC_Q_DESC, (uintptr_t)ring_desc);
	w64(common + CC_Q_AVAIL, (uintptr_t)&ring_avail);
	w64(common + CC_Q_USED, (uintptr_t)&ring_used);
	notify_off = r16(common + CC_Q_NOTIFY_OFF);
	w16(common + CC_Q_ENABLE, 1);
	w8(common + CC_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	printf("virtio-blk: %u queues, capacity %u sectors, features %x:%x\n",
	       r16(common + CC_NUM_QUEUES), r32(devcfg), f_hi, f_lo);
}

/* Publish the chain at descriptor 0 and wait for its interrupt. */
static void kick_wait(void)
{
	unsigned before = irqs;

	ring_avail.ring[ring_avail.idx % QSIZE] = 0;
	if (event_idx)
		ring_avail.used_event = ring_avail.idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ring_avail.idx++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	w16(notify + notify_off * notify_mult, qidx);
	asm volatile("sti");
	while (*(volatile uint16_t *)&ring_used.idx == last_used || irqs == before) {
		if (r8(common + CC_STATUS) & S_NEEDS_RESET)
			fail("device set NEEDS_RESET");
		cpu_relax();
	}
	asm volatile("cli");
	last_used++;
}

/* A SCSI command to target 0, LUN 0: header, data-out, response, data-in. */
static uint8_t scsi_cmd(const uint8_t *cdb, unsigned cdb_len, void *buf, uint32_t len,
			int dev_writes)
{
	struct { void *p; uint32_t len; uint16_t write; } part[4];
	unsigned n = 0;

	memset(&shdr, 0, sizeof(shdr));
	shdr.lun[0] = 1;
	memcpy(shdr.cdb, cdb, cdb_len);
	sresp.response = 0xff;
	part[n].p = &shdr, part[n].len = sizeof(shdr), part[n++].write = 0;
	if (len && !dev_writes)
		part[n].p = buf, part[n].len = len, part[n++].write = 0;
	part[n].p = &sresp, part[n].len = sizeof(sresp), part[n++].write = 2;
	if (len && dev_writes)
		part[n].p = buf, part[n].len = len, part[n++].write = 2;
	for (unsigned i = 0; i < n; i++)
		ring_desc[i] = (struct desc){ (uintptr_t)part[i].p, part[i].len,
					      (uint16_t)(part[i].write | (i + 1 < n ? 1 : 0)),
					      (uint16_t)(i + 1 < n ? i + 1 : 0) };
	kick_wait();
	if (sresp.response)
		return 0x80 | sresp.response;
	return sresp.status ? 1 : 0;
}

/* virtio-blk's request types (IN 0, OUT 1, FLUSH 4) as SCSI commands. */
static uint8_t scsi_request(uint32_t type, uint64_t sector, void *buf, uint32_t len,
			    int dev_writes)
{
	uint8_t cdb[10] = { type == 0 ? 0x28 : type == 1 ? 0x2a : 0x35 };
	uint32_t blocks = len / SECTOR;

	if (type != 4) {
		cdb[2] = sector >> 24;
		cdb[3] = sector >> 16;
		cdb[4] = sector >> 8;
		cdb[5] = sector;
		cdb[7] = blocks >> 8;
		cdb[8] = blocks;
	}
	return scsi_cmd(cdb, sizeof(cdb), buf, len, dev_writes);
}

/* One request: header, optional data, status; waits for its interrupt. */
static uint8_t request(uint32_t type, uint64_t sector, void *buf, uint32_t len, int dev_writes)
{
	if (scsi)
		return scsi_request(type, sector, buf, len, dev_writes);
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status_byte = 0xff;
	ring_desc[0] = (struct desc){ (uintptr_t)&hdr, sizeof(hdr), 1, 1 };
	if (len) {
		ring_desc[1] = (struct desc){ (uintptr_t)buf, len, (uint16_t)(1 | (dev_writes ? 2 : 0)), 2 };
	} else {
		ring_desc[0].next = 2;
	}
	ring_desc[2] = (struct desc){ (uintptr_t)&status_byte, 1, 2, 0 };
	kick_wait();
	return status_byte;
}

void guest_main(struct bootinfo *bi)
{
	unsigned sectors = cmdline_uint(bi->cmdline, "sectors", 64), dev, s;
	char serial[21] = { 0 };
	uint8_t st;

	event_idx = cmdline_has(bi->cmdline, "event_idx");
	scsi = cmdline_has(bi->cmdline, "scsi");
	qidx = scsi ? 2 : 0;
	if (sectors > sizeof(data) / SECTOR)
		fail("at most %u sectors", (unsigned)(sizeof(data) / SECTOR));
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	idt_init();
	idt_set_handler(IRQ_VECTOR, msix_irq);
	lapic_write(LAPIC_SVR, 0x1ff);
	setup(probe(&dev));
	if (scsi) {
		static const uint8_t tur[6] = { 0 };

		/* The power-on unit attention comes first (CHECK CONDITION). */
		scsi_cmd(tur, sizeof(tur), 0, 0, 0);
		if ((st = scsi_cmd(tur, sizeof(tur), 0, 0, 0)))
			fail("test unit ready: status %u", st);
	}

	for (s = 0; s < sectors; s++)
		for (unsigned i = 0; i < SECTOR; i++)
			data[s * SECTOR + i] = (uint8_t)(s * 31 + i * 7 + 1);
	st = request(1, 0, data, sectors * SECTOR, 0);
	if (st)
		fail("write: status %u", st);
	st = request(4, 0, 0, 0, 0);
	if (st)
		fail("flush: status %u", st);
	memset(data, 0, sizeof(data));
	st = request(0, 0, data, sectors * SECTOR, 1);
	if (st)
		fail("read: status %u", st);
	for (s = 0; s < sectors; s++)
		for (unsigned i = 0; i < SECTOR; i++)
			if (data[s * SECTOR + i] != (uint8_t)(s * 31 + i * 7 + 1))
				fail("sector %u byte %u: read back 0x%x", s, i, data[s * SECTOR + i]);
	if (!scsi) {
		st = request(8, 0, serial, 20, 1);
		if (st)
			fail("get-id: status %u", st);
		/* A read past the end must fail with IOERR, not crash anything. */
		st = request(0, r32(devcfg), data, SECTOR, 1);
		printf("virtio-blk: past-the-end read status %u\n", st);
	}
	printf("virtio-blk: wrote and read back %u sectors, serial '%s', irqs %u\n",
	       sectors, serial, irqs);
	for (uint32_t round = 1; cmdline_has(bi->cmdline, "loop"); round++) {
		for (s = 0; s < sectors; s++)
			for (unsigned i = 0; i < SECTOR; i++)
				data[s * SECTOR + i] = (uint8_t)(s * 31 + i * 7 + 1);
		memcpy(data, &round, sizeof(round));
		if ((st = request(1, 0, data, sectors * SECTOR, 0)))
			fail("round %u: write: status %u", round, st);
		if ((st = request(4, 0, 0, 0, 0)))
			fail("round %u: flush: status %u", round, st);
		memset(data, 0, sizeof(data));
		if ((st = request(0, 0, data, sectors * SECTOR, 1)))
			fail("round %u: read: status %u", round, st);
		if (memcmp(data, &round, sizeof(round)))
			fail("round %u: read back another round", round);
		if (round % 16 == 0)
			printf("virtio-blk: round %u\n", round);
	}
	/* "wait": stay up so a test can look at the device from outside. */
	while (cmdline_has(bi->cmdline, "wait"))
		cpu_relax();
	guest_exit(EXIT_PASS);
}
