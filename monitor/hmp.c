/*
 * human-monitor-command: the few text commands management stacks still
 * send through QMP ("info status", "info mtree", "info blockstats",
 * "info registers", "block_resize").
 */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "block.h"
#include "machine.h"
#include "monitor/qmp_int.h"
#include "scsi.h"
#include "vcpu.h"

static void mtree_range(const struct bus_range *r, void *opaque)
{
	g_string_append_printf(opaque, "    %016llx-%016llx (prio 0, i/o): %s\r\n",
			       (unsigned long long)r->base,
			       (unsigned long long)(r->base + r->len - 1), r->name);
}

static void info_mtree(struct machine *m, GString *out)
{
	g_string_append(out, "address-space: memory\r\n");
	g_string_append(out, "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\r\n");
	for (unsigned i = 0; i < m->mem.nr; i++)
		g_string_append_printf(out, "    %016llx-%016llx (prio 0, ram): pc.ram\r\n",
				       (unsigned long long)m->mem.r[i].gpa,
				       (unsigned long long)(m->mem.r[i].gpa + m->mem.r[i].size - 1));
	bus_for_each(&m->mmio, mtree_range, out);
	g_string_append(out, "\r\naddress-space: I/O\r\n");
	g_string_append(out, "  0000000000000000-000000000000ffff (prio 0, i/o): io\r\n");
	bus_for_each(&m->pio, mtree_range, out);
}

/* As query-blockstats: a CD unit's drive counts every disc the unit had. */
static void info_blockstats(struct machine *m, GString *out)
{
	size_t nr;
	struct virtio_scsi_medium_info *media = virtio_scsi_media(m, &nr);

	for (struct drive *d = m->drives; d; d = d->next) {
		const struct virtio_scsi_medium_info *mi = qmp_medium_of(media, nr, d);
		struct blk_stats s = { 0 };

		if (mi)
			s = mi->stats;
		else if (d->blk)
			blk_get_stats(d->blk, &s);
		g_string_append_printf(out, "%s: rd_bytes=%llu wr_bytes=%llu rd_operations=%llu "
				       "wr_operations=%llu flush_operations=%llu "
				       "wr_total_time_ns=%llu rd_total_time_ns=%llu "
				       "flush_total_time_ns=%llu\r\n", d->id,
				       (unsigned long long)s.bytes[BLK_OP_READ],
				       (unsigned long long)s.bytes[BLK_OP_WRITE],
				       (unsigned long long)s.ops[BLK_OP_READ],
				       (unsigned long long)s.ops[BLK_OP_WRITE],
				       (unsigned long long)s.ops[BLK_OP_FLUSH],
				       (unsigned long long)s.total_ns[BLK_OP_WRITE],
				       (unsigned long long)s.total_ns[BLK_OP_READ],
				       (unsigned long long)s.total_ns[BLK_OP_FLUSH]);
	}
	virtio_scsi_media_free(media, nr);
}

/* The vCPU is paused for the read if it runs, so the state is consistent. */
static void info_registers(struct machine *m, unsigned idx, GString *out)
{
	struct vcpu *v = m->vcpus[idx];
	bool was_running = vcpu_get_state(v) == VCPU_RUNNING;
	struct cpu_state s;
	char *text;
	int ret;

	if (was_running)
		vcpu_pause(v);
	ret = m->accel->vcpu_get_state(v, &s);
	if (was_running)
		vcpu_resume(v);
	if (ret) {
		g_string_append_printf(out, "CPU#%u: cannot read the registers\r\n", idx);
		return;
	}
	text = cpu_state_format(&s, idx, "\r\n");
	g_string_append(out, text);
	g_free(text);
}

/* As QEMU: "running", "paused", or "paused (REASON)" for the finer states. */
static void info_status(struct machine *m, GString *out)
{
	const char *st = qmp_status_name(m);

	if (!strcmp(st, "running") || !strcmp(st, "paused"))
		g_string_append_printf(out, "VM status: %s\r\n", st);
	else
		g_string_append_printf(out, "VM status: paused (%s)\r\n", st);
}

/* As QEMU's HMP: nothing on success, "Error: ..." otherwise. */
static void hmp_block_resize(struct machine *m, const char *id, const char *size_arg,
			     GString *out)
{
	char err[512];
	int64_t size;

	if (hmp_parse_size(size_arg, &size) < 0) {
		g_string_append_printf(out, "Error: invalid size '%s'\r\n", size_arg);
		return;
	}
	if (qmp_block_resize_drive(m, id, NULL, size, err, sizeof(err)) < 0)
		g_string_append_printf(out, "Error: %s\r\n", err);
}

/* snapshot_blkdev DEVICE FILE [qcow2]: blockdev-snapshot-sync's HMP form. */
static void hmp_snapshot_blkdev(struct machine *m, char **w, int n, GString *out)
{
	char err[512];

	if (n == 4 && strcmp(w[3], "qcow2"))
		g_string_append_printf(out, "Error: only qcow2 overlays are supported, not '%s'\r\n",
				       w[3]);
	else if (qmp_block_snapshot_drive(m, w[1], w[2], err, sizeof(err)) < 0)
		g_string_append_printf(out, "Error: %s\r\n", err);
}

/* block_set_io_throttle DEVICE BPS BPS_RD BPS_WR IOPS IOPS_RD IOPS_WR, as QEMU's HMP. */
static void hmp_block_set_io_throttle(struct machine *m, char **w, GString *out)
{
	struct blk_throttle_limits l = { 0 };
	uint64_t *rate[] = { &l.avg[BLK_THR_BPS_TOTAL], &l.avg[BLK_THR_BPS_READ],
			     &l.avg[BLK_THR_BPS_WRITE], &l.avg[BLK_THR_IOPS_TOTAL],
			     &l.avg[BLK_THR_IOPS_READ], &l.avg[BLK_THR_IOPS_WRITE] };
	char err[512], *end;

	for (int i = 0; i < 6; i++) {
		errno = 0;
		*rate[i] = strtoull(w[2 + i], &end, 10);
		if (errno || *end || w[2 + i][0] == '-') {
			g_string_append_printf(out, "Error: invalid %s '%s'\r\n",
					       blk_throttle_name(i, false), w[2 + i]);
			return;
		}
	}
	if (qmp_block_throttle_drive(m, w[1], &l, NULL, err, sizeof(err)) < 0)
		g_string_append_printf(out, "Error: %s\r\n", err);
}

char *hmp_run(struct machine *m, const char *line, int cpu)
{
	GString *out = g_string_new(NULL);
	char **w = g_strsplit_set(line, " \t", -1);
	int n = 0;

	/* Drop the empty words that runs of blanks leave. */
	for (int i = 0; w[i]; i++)
		if (*w[i])
			w[n++] = w[i];
		else
			g_free(w[i]);
	w[n] = NULL;

	if (n == 2 && !strcmp(w[0], "info") && !strcmp(w[1], "status"))
		info_status(m, out);
	else if (n == 2 && !strcmp(w[0], "info") && !strcmp(w[1], "mtree"))
		info_mtree(m, out);
	else if (n == 2 && !strcmp(w[0], "info") && !strcmp(w[1], "blockstats"))
		info_blockstats(m, out);
	else if (n == 2 && !strcmp(w[0], "info") && !strcmp(w[1], "registers"))
		info_registers(m, cpu >= 0 && (unsigned)cpu < m->nr_vcpus ? cpu : 0, out);
	else if (n == 3 && !strcmp(w[0], "block_resize"))
		hmp_block_resize(m, w[1], w[2], out);
	else if ((n == 3 || n == 4) && !strcmp(w[0], "snapshot_blkdev"))
		hmp_snapshot_blkdev(m, w, n, out);
	else if (n == 8 && !strcmp(w[0], "block_set_io_throttle"))
		hmp_block_set_io_throttle(m, w, out);
	else if (n >= 1)
		g_string_append_printf(out, "unknown command: '%s'\r\n", line);
	g_strfreev(w);
	return g_string_free(out, FALSE);
}
