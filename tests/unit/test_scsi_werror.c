/*
 * werror=/rerror= on virtio-scsi (scsi-hd), played from the guest side
 * with the virtio harness: the test is the driver.  The image's descriptor
 * is swapped (dup2) for a read-only one so that writes fail with EBADF
 * (or a write-only one, for reads); swapping it back repairs the disk.
 * report answers CHECK CONDITION, ignore answers GOOD; stop parks the
 * command, pauses the VM (BLOCK_IO_ERROR), sets io-status, lets nothing
 * later overtake it and retries it first on resume, WRITE SAME (pattern
 * and zeroes) included.  A device reset, an abort or an unplug while
 * parked ends it without touching the disk; a migration
 * carries it (ring heads in the device state) and the destination retries
 * it; a hostile head is refused and an older stream still loads.
 */
#include "scsi.h"
#include "werror_util.h"

#define RQ		VIRTIO_SCSI_VQ_REQ
#define REQ(h)		(0x300000ull + (h) * 0x100ull)
#define RESP(h)		(REQ(h) + 0x80)
#define TMF_REQ		0x3f0000ull
#define TMF_RESP	0x3f0100ull
#define DATA(h)		(0x400000ull + (h) * 4096ull)
#define LBA		8		/* 512-byte blocks; each command moves 8 */

static uint8_t sw_cmd(struct we *t, const uint8_t *cdb, bool write);

static void sw_init(struct we *t, const char *drive_opts)
{
	static const uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	struct virtio_scsi_medium_info *media;
	char err[256];
	size_t n;

	we_init(t, "vireo-scsi-werror-XXXXXX", "none", drive_opts);
	g_assert_cmpint(machine_add_device(&t->h.m, "virtio-scsi-pci,id=scsi0,num_queues=1",
					   err, sizeof(err)), ==, 0);
	g_assert_cmpint(machine_add_device(&t->h.m, "scsi-hd,drive=d0,id=hd0,scsi-id=0,lun=0",
					   err, sizeof(err)), ==, 0);
	/* A disk, not removable (and the reference links the -device types in). */
	media = virtio_scsi_media(&t->h.m, &n);
	g_assert_cmpuint(n, ==, 0);
	virtio_scsi_media_free(media, n);
	/* Three queues: control, event and one request queue. */
	we_attach(t, VIRTIO_ID_SCSI, 3);
	/* The power-on unit attention, out of the way. */
	sw_cmd(t, tur, false);
}

/* READ (10) or WRITE (10) of 8 blocks at lba. */
static const uint8_t *rw10(uint8_t *cdb, bool write, uint32_t lba)
{
	memset(cdb, 0, 10);
	cdb[0] = write ? SCSI_WRITE_10 : SCSI_READ_10;
	cdb[2] = lba >> 24;
	cdb[3] = lba >> 16;
	cdb[4] = lba >> 8;
	cdb[5] = lba;
	cdb[8] = 8;
	return cdb;
}

/*
 * Publish a command (tag = head) with data_len bytes of data at DATA(head)
 * (data-out if write) and kick.
 */
static uint16_t sw_submit_data(struct we *t, const uint8_t *cdb, unsigned len, bool write,
			       uint32_t data_len)
{
	struct vh_ring *r = &t->d.ring[RQ];
	uint16_t head = r->next_desc;
	struct virtio_scsi_cmd_req *h = gp(t, REQ(head), sizeof(*h) + 32);
	struct vh_buf b[3];
	unsigned n = 0;
	bool data = data_len;

	memset(h, 0, sizeof(*h) + 32);
	h->lun[0] = 1;
	h->id = head;
	memcpy(h + 1, cdb, len);
	memset(gp(t, RESP(head), 0x80), 0xee, 0x80);
	b[n++] = (struct vh_buf){ REQ(head), sizeof(*h) + 32, false };
	if (data && write)
		b[n++] = (struct vh_buf){ DATA(head), data_len, false };
	b[n++] = (struct vh_buf){ RESP(head), sizeof(struct virtio_scsi_cmd_resp) + 96, true };
	if (data && !write)
		b[n++] = (struct vh_buf){ DATA(head), data_len, true };
	g_assert_cmpuint(vh_ring_add(r, b, n, 0), ==, head);
	vh_kick(&t->d, RQ);
	return head;
}

/* READ (10) and WRITE (10) move 4 KiB; other commands here move none. */
static uint16_t sw_submit(struct we *t, const uint8_t *cdb, unsigned len, bool write)
{
	bool rw = cdb[0] == SCSI_READ_10 || cdb[0] == SCSI_WRITE_10;

	return sw_submit_data(t, cdb, len, write, rw ? 4096 : 0);
}

static struct virtio_scsi_cmd_resp *sw_resp(struct we *t, uint16_t head)
{
	return gp(t, RESP(head), sizeof(struct virtio_scsi_cmd_resp));
}

/* The next used entry is head's; returns its SCSI status. */
static uint8_t sw_expect(struct we *t, uint16_t head, uint8_t response)
{
	uint32_t id, len;

	g_assert_true(vh_wait_used(&t->d, RQ, &id, &len));
	g_assert_cmpuint(id, ==, head);
	g_assert_cmpuint(sw_resp(t, head)->response, ==, response);
	return sw_resp(t, head)->status;
}

static uint8_t sw_cmd(struct we *t, const uint8_t *cdb, bool write)
{
	return sw_expect(t, sw_submit(t, cdb, cdb[0] < 0x20 ? 6 : 10, write), VIRTIO_SCSI_S_OK);
}

static void read_disk(struct we *t, uint64_t off, void *buf, size_t len)
{
	int fd = open(t->img, O_RDONLY | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pread(fd, buf, len, off), ==, (ssize_t)len);
	close(fd);
}

/* werror=report: CHECK CONDITION, as before; ignore: GOOD, the VM runs on. */
static void test_report_and_ignore(void)
{
	uint8_t cdb[10];
	uint16_t rd;
	struct we t;

	sw_init(&t, "werror=report");
	we_break(&t, true);
	g_assert_cmpuint(sw_cmd(&t, rw10(cdb, true, LBA), true), ==, SCSI_STATUS_CHECK_CONDITION);
	we_wait_errors(&t, 1);
	g_assert_true(t.last.write);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_REPORT);
	g_assert_cmpint(t.last.error, ==, EBADF);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_RUNNING);
	we_repair(&t);
	we_finish(&t);

	sw_init(&t, "werror=ignore,rerror=ignore");
	we_break(&t, true);
	g_assert_cmpuint(sw_cmd(&t, rw10(cdb, true, LBA), true), ==, SCSI_STATUS_GOOD);
	we_wait_errors(&t, 1);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_IGNORE);
	we_repair(&t);
	we_break(&t, false);
	rd = sw_submit(&t, rw10(cdb, false, LBA), 10, false);
	g_assert_cmpuint(sw_expect(&t, rd, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	/* As if the whole transfer was made. */
	g_assert_cmpuint(sw_resp(&t, rd)->resid, ==, 0);
	we_wait_errors(&t, 2);
	g_assert_false(t.last.write);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_IGNORE);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_RUNNING);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_OK);
	we_repair(&t);
	we_finish(&t);
}

/* Park a failing WRITE (10) of want at LBA; the VM pauses.  Returns its head. */
static uint16_t sw_park_write(struct we *t, const uint8_t *want)
{
	uint8_t cdb[10];
	uint16_t head = t->d.ring[RQ].next_desc;

	memcpy(gp(t, DATA(head), 4096), want, 4096);
	we_break(t, true);
	g_assert_cmpuint(sw_submit(t, rw10(cdb, true, LBA), 10, true), ==, head);
	we_wait_errors(t, t->nr_errors + 1);
	g_assert_true(t->last.write);
	g_assert_cmpint(t->last.action, ==, MACHINE_IO_STOP);
	g_assert_cmpint(t->last.error, ==, EBADF);
	g_assert_cmpint(t->h.m.runstate, ==, RUNSTATE_PAUSED);
	g_assert_cmpint(we_io_status(t), ==, BLK_IOSTATUS_FAILED);
	g_assert_cmpuint(sw_resp(t, head)->response, ==, 0xee);	/* not answered */
	return head;
}

/*
 * werror=stop: the failed write is held and the VM pauses; a read of the
 * same blocks the guest submits meanwhile is not served before it; on
 * resume the write is retried first and the read sees its data.
 */
static void test_stop_retry_order(void)
{
	uint8_t want[4096], zero[4096] = { 0 }, got[4096], cdb[10];
	uint16_t wr, rd;
	struct we t;

	sw_init(&t, "werror=stop");
	we_fill(want, sizeof(want), 5);
	wr = sw_park_write(&t, want);
	rd = sw_submit(&t, rw10(cdb, false, LBA), 10, false);
	memset(gp(&t, DATA(rd), 4096), 0xaa, 4096);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, zero, sizeof(got)) == 0);

	we_repair(&t);
	machine_resume(&t.h.m);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_OK);
	g_assert_cmpuint(sw_expect(&t, wr, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	g_assert_cmpuint(sw_expect(&t, rd, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	g_assert_true(memcmp(gp(&t, DATA(rd), 4096), want, 4096) == 0);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, want, sizeof(got)) == 0);
	g_assert_cmpuint(t.nr_errors, ==, 1);
	we_finish(&t);
}

/* A retry that fails again parks again and pauses again; rerror=stop too. */
static void test_stop_twice(void)
{
	uint8_t want[4096], cdb[10];
	uint16_t wr, rd;
	struct we t;

	sw_init(&t, "werror=stop,rerror=stop");
	we_fill(want, sizeof(want), 6);
	wr = sw_park_write(&t, want);
	machine_resume(&t.h.m);
	we_wait_errors(&t, 2);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_FAILED);
	we_repair(&t);
	machine_resume(&t.h.m);
	g_assert_cmpuint(sw_expect(&t, wr, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);

	we_break(&t, false);
	rd = sw_submit(&t, rw10(cdb, false, LBA), 10, false);
	we_wait_errors(&t, 3);
	g_assert_false(t.last.write);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	we_repair(&t);
	machine_resume(&t.h.m);
	g_assert_cmpuint(sw_expect(&t, rd, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	g_assert_true(memcmp(gp(&t, DATA(rd), 4096), want, 4096) == 0);
	we_finish(&t);
}

/*
 * A device reset while a command is parked returns at once, answers
 * nothing into the old rings and writes nothing; the device serves again
 * after the driver sets it up, and a resume retries nothing.
 */
static void test_reset_while_parked(void)
{
	uint8_t want[4096], zero[4096] = { 0 }, got[4096], cdb[10];
	struct vh_ring *r;
	uint16_t used;
	struct we t;

	sw_init(&t, "werror=stop");
	we_fill(want, sizeof(want), 7);
	sw_park_write(&t, want);
	r = &t.d.ring[RQ];
	used = *(uint16_t *)gp(&t, r->used + 2, 2);
	vh_common_write(&t.d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	g_assert_cmpuint(vh_status(&t.d), ==, 0);
	g_assert_cmpuint(*(uint16_t *)gp(&t, r->used + 2, 2), ==, used);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_OK);
	we_repair(&t);
	machine_resume(&t.h.m);
	we_setup(&t, 3);
	sw_cmd(&t, (const uint8_t[6]){ SCSI_TEST_UNIT_READY }, false);	/* the reset's UA */
	g_assert_cmpuint(sw_cmd(&t, rw10(cdb, false, LBA), false), ==, SCSI_STATUS_GOOD);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, zero, sizeof(got)) == 0);
	g_assert_cmpuint(t.nr_errors, ==, 1);
	we_finish(&t);
}

/*
 * The unit is unplugged while its command is parked: the unplug does not
 * wait for cont, the drive has nothing waiting any more, and the retry on
 * resume finds no target (BAD_TARGET) and writes nothing.
 */
static void test_unplug_while_parked(void)
{
	uint8_t want[4096], zero[4096] = { 0 }, got[4096];
	char err[256];
	uint16_t wr;
	struct we t;

	sw_init(&t, "werror=stop");
	we_fill(want, sizeof(want), 10);
	wr = sw_park_write(&t, want);
	we_repair(&t);
	g_assert_cmpint(virtio_scsi_device_del(&t.h.m, "hd0", err, sizeof(err)), ==, 0);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_OK);
	g_assert_cmpuint(sw_resp(&t, wr)->response, ==, 0xee);
	machine_resume(&t.h.m);
	sw_expect(&t, wr, VIRTIO_SCSI_S_BAD_TARGET);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, zero, sizeof(got)) == 0);
	g_assert_cmpuint(t.nr_errors, ==, 1);
	we_finish(&t);
}

/* ABORT TASK of a parked command: ABORTED, the TMF completes, nothing is written. */
static void test_abort_parked(void)
{
	struct virtio_scsi_ctrl_tmf_req *q;
	uint8_t want[4096], zero[4096] = { 0 }, got[4096];
	struct vh_buf b[2] = { { TMF_REQ, sizeof(*q), false }, { TMF_RESP, 1, true } };
	uint32_t id, len;
	uint16_t wr;
	struct we t;

	sw_init(&t, "werror=stop");
	we_fill(want, sizeof(want), 8);
	wr = sw_park_write(&t, want);
	q = gp(&t, TMF_REQ, sizeof(*q));
	memset(q, 0, sizeof(*q));
	q->type = VIRTIO_SCSI_T_TMF;
	q->subtype = VIRTIO_SCSI_T_TMF_ABORT_TASK;
	q->lun[0] = 1;
	q->lun[2] = 0x40;
	q->id = wr;
	*(uint8_t *)gp(&t, TMF_RESP, 1) = 0xee;
	vh_ring_add(&t.d.ring[VIRTIO_SCSI_VQ_CTRL], b, 2, 0);
	vh_kick(&t.d, VIRTIO_SCSI_VQ_CTRL);
	sw_expect(&t, wr, VIRTIO_SCSI_S_ABORTED);
	g_assert_true(vh_wait_used(&t.d, VIRTIO_SCSI_VQ_CTRL, &id, &len));
	g_assert_cmpuint(*(uint8_t *)gp(&t, TMF_RESP, 1), ==, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	we_repair(&t);
	machine_resume(&t.h.m);
	/* The queue serves again, and the aborted write never reached the disk. */
	g_assert_cmpuint(sw_cmd(&t, (const uint8_t[6]){ SCSI_TEST_UNIT_READY }, false), ==,
			 SCSI_STATUS_GOOD);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, zero, sizeof(got)) == 0);
	we_finish(&t);
}

/*
 * WRITE SAME under werror=stop: a pattern (chunked writes) and zeroes with
 * UNMAP (write-zeroes) whose host I/O fails park and pause the VM like a
 * WRITE, and are run again whole on resume.  (UNMAP itself cannot fail
 * this way: a discard the host refuses is advisory and succeeds.)
 */
static void test_stop_write_same(void)
{
	uint8_t want[4096], zero[4096] = { 0 }, got[4096];
	const uint8_t ws[10] = { SCSI_WRITE_SAME_10, 0, 0, 0, 0, LBA, 0, 0, 8, 0 };
	const uint8_t wsz[16] = { SCSI_WRITE_SAME_16, 0x08, 0, 0, 0, 0, 0, 0, 0, LBA,
				  0, 0, 0, 8, 0, 0 };
	uint16_t head;
	struct we t;

	sw_init(&t, "werror=stop,discard=unmap");
	memset(want, 0x5a, sizeof(want));
	head = t.d.ring[RQ].next_desc;
	memset(gp(&t, DATA(head), 512), 0x5a, 512);
	we_break(&t, true);
	g_assert_cmpuint(sw_submit_data(&t, ws, sizeof(ws), true, 512), ==, head);
	we_wait_errors(&t, 1);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	g_assert_true(t.last.write);
	g_assert_cmpint(t.h.m.runstate, ==, RUNSTATE_PAUSED);
	we_repair(&t);
	machine_resume(&t.h.m);
	g_assert_cmpuint(sw_expect(&t, head, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, want, sizeof(got)) == 0);

	/* Zeroes over the same 8 blocks, unmapping allowed. */
	head = t.d.ring[RQ].next_desc;
	memset(gp(&t, DATA(head), 512), 0, 512);
	we_break(&t, true);
	g_assert_cmpuint(sw_submit_data(&t, wsz, sizeof(wsz), true, 512), ==, head);
	we_wait_errors(&t, 2);
	g_assert_cmpint(t.last.action, ==, MACHINE_IO_STOP);
	g_assert_cmpint(we_io_status(&t), ==, BLK_IOSTATUS_FAILED);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, want, sizeof(got)) == 0);
	we_repair(&t);
	machine_resume(&t.h.m);
	g_assert_cmpuint(sw_expect(&t, head, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	read_disk(&t, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, zero, sizeof(got)) == 0);
	g_assert_cmpuint(t.nr_errors, ==, 2);
	we_finish(&t);
}

/* A version 3 stream: no io-status, no parked requests (fields of 1, 6 chars). */
static void as_v3(struct vmstate_out *o)
{
	static const struct { const char *f; size_t n; } drop[] = {
		{ "\x09io-status", 10 }, { "\x06parked", 7 },
	};

	for (unsigned i = 0; i < G_N_ELEMENTS(drop); i++) {
		uint8_t *f;

		while ((f = memmem(o->buf, o->len, drop[i].f, drop[i].n))) {
			uint32_t len;
			size_t all;

			memcpy(&len, f + drop[i].n, 4);
			all = drop[i].n + 4 + len;
			memmove(f, f + all, o->len - (f - o->buf) - all);
			o->len -= all;
		}
	}
}

/*
 * werror=stop and a migration: the write parked on a completes on b once
 * b runs, with the data on b's disk, and before the read queued behind it.
 */
static void test_stop_migrates(void)
{
	uint8_t want[4096], got[4096], cdb[10];
	struct vmstate_section *sec;
	char err[512] = "";
	struct we a, b, c;
	uint16_t wr, rd;

	sw_init(&a, "werror=stop");
	we_fill(want, sizeof(want), 9);
	wr = sw_park_write(&a, want);
	rd = sw_submit(&a, rw10(cdb, false, LBA), 10, false);

	sw_init(&b, "werror=stop");
	we_copy_disk(&a, &b);
	we_migrate(&a, &b);
	g_assert_cmpuint(sw_resp(&b, wr)->response, ==, 0xee);
	g_assert_cmpint(we_io_status(&b), ==, BLK_IOSTATUS_FAILED);
	machine_resume(&b.h.m);
	g_assert_cmpuint(sw_expect(&b, wr, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	g_assert_cmpuint(sw_expect(&b, rd, VIRTIO_SCSI_S_OK), ==, SCSI_STATUS_GOOD);
	g_assert_true(memcmp(gp(&b, DATA(rd), 4096), want, 4096) == 0);
	read_disk(&b, LBA * 512, got, sizeof(got));
	g_assert_true(memcmp(got, want, sizeof(got)) == 0);
	g_assert_cmpuint(b.nr_errors, ==, 0);

	we_migrate_hostile(&a, sw_init, "werror=stop");

	/* A version 3 stream (a source from before) loads, with nothing parked. */
	sw_init(&c, "werror=stop");
	sec = vmstate_find(&b.h.m, "virtio-pci", b.d.devfn);
	g_assert_nonnull(sec);
	g_assert_cmpuint(sec->version, ==, 4);
	sec->version = 3;
	if (vh_migrate_dev(&b.d, &c.h, &c.d, true, as_v3, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	sec->version = 4;
	g_assert_cmpuint(sw_cmd(&c, rw10(cdb, false, LBA), false), ==, SCSI_STATUS_GOOD);
	we_finish(&c);
	we_finish(&b);
	we_repair(&a);
	we_finish(&a);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/scsi-werror/report-ignore", test_report_and_ignore);
	g_test_add_func("/scsi-werror/stop-retry-order", test_stop_retry_order);
	g_test_add_func("/scsi-werror/stop-twice", test_stop_twice);
	g_test_add_func("/scsi-werror/stop-write-same", test_stop_write_same);
	g_test_add_func("/scsi-werror/reset-while-parked", test_reset_while_parked);
	g_test_add_func("/scsi-werror/abort-parked", test_abort_parked);
	g_test_add_func("/scsi-werror/unplug-while-parked", test_unplug_while_parked);
	g_test_add_func("/scsi-werror/stop-migrates", test_stop_migrates);
	return g_test_run();
}
