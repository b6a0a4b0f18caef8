/*
 * The guest side of the virtio-scsi tests (test_virtio_scsi.c,
 * test_virtio_scsi_media.c): a machine with one controller, images and
 * drives in a temporary folder, and the driver's requests, task
 * management, asynchronous notification and event queue.
 */
#ifndef VIREO_TEST_VSCSI_UTIL_H
#define VIREO_TEST_VSCSI_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "scsi.h"
#include "virtio.h"
#include "virtio/virtio-pci.h"
#include "virtio_harness.h"
#include "vmstate.h"

#define QSIZE		128
#define REQ(q, h)	(0x300000ull + (q) * 0x10000ull + (h) * 0x100ull)
#define RESP(q, h)	(REQ(q, h) + 0x80)
#define TABLE(q, h)	(0x400000ull + (q) * 0x10000ull + (h) * 0x100ull)
#define DATA(q)		(0x800000ull + (q) * 0x400000ull)
#define EVT(i)		(0x500000ull + (i) * 0x20ull)
#define DISK		(8ull << 20)

static const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_SCSI_F_HOTPLUG |
	1ull << VIRTIO_F_INDIRECT_DESC;

struct st {
	struct vh_machine h;
	struct vh_dev d;
	char *dir;
	unsigned nq;		/* request queues */
	unsigned cdb_size;
	struct virtio_scsi_cmd_resp resp;	/* of the last command */
	uint8_t sense[96];
};

static inline void *gp(struct st *t, uint64_t gpa, uint64_t len)
{
	return vh_ptr(&t->h.m.mem, gpa, len);
}

static inline char *st_image(struct st *t, const char *name, const char *fmt, uint64_t size)
{
	char *img = g_build_filename(t->dir, name, NULL);

	if (!strcmp(fmt, "qcow2")) {
		char sz[32];
		char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", img, sz, NULL };
		int status = -1;

		snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
		if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
				  &status, NULL) || status) {
			g_free(img);
			return NULL;
		}
	} else {
		FILE *f = fopen(img, "w");

		g_assert_nonnull(f);
		g_assert_cmpint(ftruncate(fileno(f), size), ==, 0);
		fclose(f);
	}
	return img;
}

static inline void st_drive(struct st *t, const char *id, const char *img, const char *fmt,
			    const char *extra)
{
	char err[256];
	char *o = g_strdup_printf("file=%s,format=%s,if=none,id=%s%s%s", img, fmt, id,
				  extra ? "," : "", extra ? extra : "");

	if (drive_add(&t->h.m, o, err, sizeof(err))) {
		g_test_message("%s", err);
		g_assert_not_reached();
	}
	g_free(o);
}

static inline void st_device(struct st *t, const char *fmt, ...)
{
	char err[256];
	va_list ap;
	char *o;

	va_start(ap, fmt);
	o = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (machine_add_device(&t->h.m, o, err, sizeof(err))) {
		g_test_message("%s: %s", o, err);
		g_assert_not_reached();
	}
	g_free(o);
}

static inline void st_init(struct st *t, unsigned nq, bool fds)
{
	memset(t, 0, sizeof(*t));
	t->dir = g_dir_make_tmp("vireo-vscsi-XXXXXX", NULL);
	g_assert_nonnull(t->dir);
	t->nq = nq;
	t->cdb_size = 32;
	vh_machine_init(&t->h, 2, fds);
	st_device(t, "virtio-scsi-pci,id=scsi0,num_queues=%u", nq);
}

static inline void st_find(struct st *t)
{
	g_assert_true(vh_dev_find(&t->h, VIRTIO_ID_SCSI, 0, &t->d));
	vh_msix_enable(&t->d);
}

static inline void st_up(struct st *t)
{
	g_assert_cmphex(vh_dev_setup(&t->d, features, 2 + t->nq, QSIZE), ==,
			VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static inline void st_rmdir(struct st *t)
{
	{
		GDir *d = g_dir_open(t->dir, 0, NULL);
		const char *n;

		while ((n = g_dir_read_name(d))) {
			char *p = g_build_filename(t->dir, n, NULL);

			g_unlink(p);
			g_free(p);
		}
		g_dir_close(d);
	}
	g_rmdir(t->dir);
	g_free(t->dir);
}

static inline void st_fini(struct st *t)
{
	vh_machine_destroy(&t->h);
	st_rmdir(t);
}

/* Publish a command on request queue rq (0-based); returns the head. */
static inline uint16_t st_submit(struct st *t, unsigned rq, unsigned target, unsigned lun,
				 uint64_t tag, const uint8_t *cdb, unsigned cdb_len, uint64_t out,
				 uint32_t out_len, uint64_t in, uint32_t in_len, bool indirect)
{
	unsigned q = VIRTIO_SCSI_VQ_REQ + rq;
	struct vh_ring *r = &t->d.ring[q];
	uint16_t head = r->next_desc;
	struct virtio_scsi_cmd_req *h = gp(t, REQ(q, head), sizeof(*h) + t->cdb_size);
	struct vh_buf b[4];
	unsigned n = 0;

	memset(h, 0, sizeof(*h) + t->cdb_size);
	h->lun[0] = 1;
	h->lun[1] = target;
	h->lun[2] = lun < 256 ? 0 : 0x40 | lun >> 8;
	h->lun[3] = lun;
	h->id = tag;
	memcpy(h + 1, cdb, MIN(cdb_len, t->cdb_size));
	memset(gp(t, RESP(q, head), 0x80), 0xee, 0x80);
	b[n++] = (struct vh_buf){ REQ(q, head), sizeof(*h) + t->cdb_size, false };
	if (out_len)
		b[n++] = (struct vh_buf){ out, out_len, false };
	b[n++] = (struct vh_buf){ RESP(q, head), sizeof(struct virtio_scsi_cmd_resp) + 96, true };
	if (in_len)
		b[n++] = (struct vh_buf){ in, in_len, true };
	return vh_ring_add(r, b, n, indirect ? TABLE(q, head) : 0);
}

static inline uint8_t st_result(struct st *t, unsigned rq, uint16_t head)
{
	unsigned q = VIRTIO_SCSI_VQ_REQ + rq;

	memcpy(&t->resp, gp(t, RESP(q, head), sizeof(t->resp)), sizeof(t->resp));
	memcpy(t->sense, gp(t, RESP(q, head) + sizeof(t->resp), 96), 96);
	return t->resp.response;
}

/* One command, waited for; returns the virtio response (status in t->resp). */
static inline uint8_t st_cmd_q(struct st *t, unsigned rq, unsigned target, unsigned lun,
			       const uint8_t *cdb, unsigned len, uint64_t out, uint32_t out_len,
			       uint64_t in, uint32_t in_len, uint32_t *used)
{
	uint16_t head = st_submit(t, rq, target, lun, 1, cdb, len, out, out_len, in, in_len,
				  false);
	uint32_t id, ulen;

	vh_kick(&t->d, VIRTIO_SCSI_VQ_REQ + rq);
	g_assert_true(vh_wait_used(&t->d, VIRTIO_SCSI_VQ_REQ + rq, &id, &ulen));
	g_assert_cmpuint(id, ==, head);
	if (used)
		*used = ulen;
	return st_result(t, rq, head);
}

#define CDB(...)	((const uint8_t[]){ __VA_ARGS__ })
#define B4(v)		(uint8_t)((v) >> 24), (uint8_t)((v) >> 16), (uint8_t)((v) >> 8), (uint8_t)(v)
#define B2(v)		(uint8_t)((v) >> 8), (uint8_t)(v)
#define CMD(t, tg, l, out, ol, in, il, ...)						\
	st_cmd_q((t), 0, (tg), (l), CDB(__VA_ARGS__), sizeof(CDB(__VA_ARGS__)), (out), (ol),	\
		 (in), (il), NULL)

static inline unsigned st_sense(struct st *t)
{
	if (t->resp.status != SCSI_STATUS_CHECK_CONDITION)
		return 0;
	return (t->sense[2] & 0xf) << 16 | t->sense[12] << 8 | t->sense[13];
}

#define SENSE(k, a, q)	((k) << 16 | (a) << 8 | (q))

/* Clear the power-on unit attention of a LUN. */
static inline void st_clear_ua(struct st *t, unsigned target, unsigned lun)
{
	g_assert_cmpuint(CMD(t, target, lun, 0, 0, DATA(0), 18, SCSI_REQUEST_SENSE, 0, 0, 0, 18,
			     0), ==, VIRTIO_SCSI_S_OK);
}

/* ---- control queue ---- */

static inline uint8_t st_tmf(struct st *t, uint32_t subtype, unsigned target, unsigned lun,
			     uint64_t tag)
{
	struct vh_ring *r = &t->d.ring[VIRTIO_SCSI_VQ_CTRL];
	uint16_t head = r->next_desc;
	struct virtio_scsi_ctrl_tmf_req *q = gp(t, REQ(0, head), sizeof(*q));
	uint8_t *resp = gp(t, RESP(0, head), 1);
	struct vh_buf b[2] = { { REQ(0, head), sizeof(*q), false }, { RESP(0, head), 1, true } };
	uint32_t id, len;

	memset(q, 0, sizeof(*q));
	q->type = VIRTIO_SCSI_T_TMF;
	q->subtype = subtype;
	q->lun[0] = 1;
	q->lun[1] = target;
	q->lun[2] = 0x40 | lun >> 8;
	q->lun[3] = lun;
	q->id = tag;
	*resp = 0xee;
	vh_ring_add(r, b, 2, 0);
	vh_kick(&t->d, VIRTIO_SCSI_VQ_CTRL);
	g_assert_true(vh_wait_used(&t->d, VIRTIO_SCSI_VQ_CTRL, &id, &len));
	g_assert_cmpuint(id, ==, head);
	g_assert_cmpuint(len, ==, 1);
	return *resp;
}

static inline uint8_t st_an(struct st *t, bool subscribe, unsigned target, unsigned lun,
			    uint32_t ev, uint32_t *actual)
{
	struct vh_ring *r = &t->d.ring[VIRTIO_SCSI_VQ_CTRL];
	uint16_t head = r->next_desc;
	struct virtio_scsi_ctrl_an_req *q = gp(t, REQ(0, head), sizeof(*q));
	struct virtio_scsi_ctrl_an_resp *resp = gp(t, RESP(0, head), sizeof(*resp));
	struct vh_buf b[2] = { { REQ(0, head), sizeof(*q), false },
			       { RESP(0, head), sizeof(*resp), true } };
	uint32_t id, len;

	memset(q, 0, sizeof(*q));
	q->type = subscribe ? VIRTIO_SCSI_T_AN_SUBSCRIBE : VIRTIO_SCSI_T_AN_QUERY;
	q->lun[0] = 1;
	q->lun[1] = target;
	q->lun[2] = 0x40 | lun >> 8;
	q->lun[3] = lun;
	q->event_requested = ev;
	vh_ring_add(r, b, 2, 0);
	vh_kick(&t->d, VIRTIO_SCSI_VQ_CTRL);
	g_assert_true(vh_wait_used(&t->d, VIRTIO_SCSI_VQ_CTRL, &id, &len));
	g_assert_cmpuint(len, ==, sizeof(*resp));
	*actual = resp->event_actual;
	return resp->response;
}

/* Give the device n event buffers. */
static inline void st_event_bufs(struct st *t, unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++) {
		struct vh_buf b = { EVT(i), sizeof(struct virtio_scsi_event), true };

		memset(gp(t, EVT(i), 0x20), 0, 0x20);
		vh_ring_add(&t->d.ring[VIRTIO_SCSI_VQ_EVENT], &b, 1, 0);
	}
	vh_kick(&t->d, VIRTIO_SCSI_VQ_EVENT);
}

static inline struct virtio_scsi_event st_event(struct st *t)
{
	struct virtio_scsi_event ev;
	uint32_t id, len;
	struct virtq_desc *d;

	g_assert_true(vh_wait_used(&t->d, VIRTIO_SCSI_VQ_EVENT, &id, &len));
	g_assert_cmpuint(len, ==, sizeof(ev));
	d = gp(t, t->d.ring[VIRTIO_SCSI_VQ_EVENT].desc + 16ull * id, 16);
	memcpy(&ev, gp(t, d->addr, sizeof(ev)), sizeof(ev));
	return ev;
}

#endif
