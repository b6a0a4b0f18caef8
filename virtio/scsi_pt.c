/*
 * Passthrough LUNs (scsi-block): CDBs go unchanged to a host SCSI device,
 * and its status, sense data and residual come back unchanged.  The only
 * checks are the transport's: a CDB that fits SCSI_CDB_MAX and data in at
 * most one direction.  The backend for a real device is SG_IO (sg(4)),
 * synchronous, on the submitting thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <scsi/sg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "scsi_int.h"

#define SG_TIMEOUT_MS	(60 * 1000)

struct scsi_lun *scsi_lun_new_passthrough(const struct scsi_pt_ops *ops, void *opaque)
{
	struct scsi_lun *l = g_new0(struct scsi_lun, 1);

	/* Identity, capacity and state all belong to the device itself. */
	l->type = SCSI_LUN_DISK;
	l->name = g_strdup("");
	l->pt = ops;
	l->pt_opaque = opaque;
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

void scsi_pt_submit(struct scsi_req *r)
{
	struct scsi_lun *l = r->lun;
	struct scsi_pt_cmd c = { .cdb = r->cdb, .cdb_len = r->cdb_len };
	int ret;

	if (!r->cdb_len || r->cdb_len > 16 || (r->in_len && r->out_len)) {
		/* Longer CDBs and bidirectional data are not passed on. */
		scsi_req_fail(r, SCSI_SK_ILLEGAL_REQUEST,
			      r->cdb_len ? ASC_INVALID_FIELD_CDB : ASC_INVALID_OPCODE);
		return;
	}
	if (r->out_len) {
		c.dir = SCSI_PT_TO_DEV;
		c.iov = r->out;
		c.iov_cnt = r->out_cnt;
		c.len = r->out_len;
	} else if (r->in_len) {
		c.dir = SCSI_PT_FROM_DEV;
		c.iov = r->in;
		c.iov_cnt = r->in_cnt;
		c.len = r->in_len;
	}
	ret = l->pt->exec(l->pt_opaque, &c);
	if (ret < 0) {
		log_once("scsi-block: command 0x%02x not delivered: %s", r->cdb[0],
			 strerror(-ret));
		scsi_req_fail(r, SCSI_SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	c.resid = MIN(c.resid, c.len);
	r->status = c.status;
	r->sense_len = MIN((unsigned)c.sense_len, (unsigned)SCSI_SENSE_LEN);
	memcpy(r->sense, c.sense, r->sense_len);
	if (c.dir == SCSI_PT_FROM_DEV)
		r->in_xfer = c.len - c.resid;
	else
		r->residual = c.resid;
	scsi_req_finish(r);
}

/* ---- SG_IO ---- */

struct sg_dev {
	int fd;
};

static int sg_exec(void *opaque, struct scsi_pt_cmd *c)
{
	struct sg_dev *d = opaque;
	struct sg_io_hdr h = { 0 };

	h.interface_id = 'S';
	h.dxfer_direction = c->dir == SCSI_PT_TO_DEV ? SG_DXFER_TO_DEV :
			    c->dir == SCSI_PT_FROM_DEV ? SG_DXFER_FROM_DEV : SG_DXFER_NONE;
	h.cmd_len = c->cdb_len;
	h.cmdp = (unsigned char *)c->cdb;
	h.mx_sb_len = sizeof(c->sense);
	h.sbp = c->sense;
	h.timeout = SG_TIMEOUT_MS;
	h.dxfer_len = c->len;
	if (c->iov_cnt > 1) {
		/* struct sg_iovec is laid out as struct iovec. */
		h.iovec_count = c->iov_cnt;
		h.dxferp = (void *)c->iov;
	} else if (c->iov_cnt == 1) {
		h.dxferp = c->iov[0].iov_base;
	}
	if (ioctl(d->fd, SG_IO, &h) < 0)
		return -errno;
	/* A host or driver error with no SCSI status: nothing reached the device. */
	if ((h.host_status || (h.driver_status & 0x0f)) && !h.status && !h.sb_len_wr)
		return -EIO;
	c->status = h.status;
	c->sense_len = h.sb_len_wr;
	c->resid = h.resid > 0 ? (size_t)h.resid : 0;
	return 0;
}

static void sg_close(void *opaque)
{
	struct sg_dev *d = opaque;

	close(d->fd);
	g_free(d);
}

static const struct scsi_pt_ops sg_ops = {
	.exec = sg_exec,
	.close = sg_close,
};

int scsi_pt_sg_open(const char *path, bool readonly, const struct scsi_pt_ops **ops,
		    void **opaque, char *err, size_t errlen)
{
	int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC), ver = 0;
	struct sg_dev *d;
	struct stat st;

	if (fd < 0) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ||
	    ioctl(fd, SG_GET_VERSION_NUM, &ver) < 0 || ver < 30000) {
		snprintf(err, errlen, "'%s' is not a host SCSI device that answers SG_IO, so its "
			 "commands cannot be passed through; use scsi-hd for an image or a "
			 "plain block device", path);
		close(fd);
		return -ENOTSUP;
	}
	d = g_new0(struct sg_dev, 1);
	d->fd = fd;
	*ops = &sg_ops;
	*opaque = d;
	return 0;
}
