/*
 * The whole stream: header, device and vCPU sections, end and checksum;
 * and its strict loader, which refuses a wrong magic or version, an
 * unknown, duplicate, missing or wrong-version section, a truncated
 * stream and a checksum mismatch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "machine.h"
#include "migration/migration_int.h"
#include "vcpu.h"

/* A section payload larger than this is a corrupt length, not a device. */
#define MIG_MAX_SECTION (64u << 20)

void mig_save_header(struct mig_stream *s)
{
	mig_put(s, MIG_MAGIC, 8);
	mig_put_u32(s, MIG_STREAM_VERSION);
}

static int save_section(struct vmstate_section *sec, struct mig_stream *s)
{
	struct vmstate_out o;
	size_t nl = strlen(sec->name);
	int ret;

	vmstate_out_init(&o);
	ret = sec->save(sec->opaque, &o);
	if (!ret)
		ret = o.error;
	if (ret) {
		vmstate_out_free(&o);
		return mig_stream_fail(s, ret, "cannot save the state of '%s' instance %u: %s",
				       sec->name, sec->instance, strerror(-ret));
	}
	mig_put_u8(s, MIG_TAG_SECTION);
	mig_put_u8(s, nl);
	mig_put(s, sec->name, nl);
	mig_put_u32(s, sec->instance);
	mig_put_u32(s, sec->version);
	mig_put_u32(s, o.len);
	mig_put(s, o.buf, o.len);
	vmstate_out_free(&o);
	return s->error;
}

int mig_save_sections(struct machine *m, struct mig_stream *s)
{
	for (struct vmstate_section *sec = m->vmstate; sec && !s->error; sec = sec->next)
		save_section(sec, s);
	return s->error;
}

int mig_quiesce_devices(struct machine *m)
{
	int ret;

	for (struct vmstate_section *sec = m->vmstate; sec; sec = sec->next) {
		if (sec->quiesce && (ret = sec->quiesce(sec->opaque)))
			return ret;
	}
	return 0;
}

void mig_resume_devices(struct machine *m)
{
	for (struct vmstate_section *sec = m->vmstate; sec; sec = sec->next)
		if (sec->resume)
			sec->resume(sec->opaque);
}

void mig_save_end(struct mig_stream *s)
{
	mig_put_u8(s, MIG_TAG_END);
	mig_put_u64(s, mig_sum(s));
}

/* After the END tag: the checksum that follows must be that of every byte before it. */
int mig_load_sum(struct mig_stream *s, const char *what)
{
	uint64_t want = mig_sum(s), sum;

	if (mig_get_u64(s, &sum))
		return s->error;
	if (sum != want)
		return mig_stream_fail(s, -EBADMSG, "%s checksum does not match (0x%016llx, "
				       "computed 0x%016llx): it is corrupt", what,
				       (unsigned long long)sum, (unsigned long long)want);
	return 0;
}

/* name is an accelerator's section ("kvm-cpu", "tcg-vm") of another accelerator. */
static bool other_accel_section(struct machine *m, const char *name)
{
	static const char *const accels[] = { "kvm", "tcg", "xen" };
	const char *dash = strrchr(name, '-');
	size_t n;

	if (!dash || (strcmp(dash, "-vm") && strcmp(dash, "-cpu")))
		return false;
	n = (size_t)(dash - name);
	if (strlen(m->accel->name) == n && !strncmp(name, m->accel->name, n))
		return false;
	for (unsigned i = 0; i < sizeof(accels) / sizeof(accels[0]); i++)
		if (strlen(accels[i]) == n && !strncmp(name, accels[i], n))
			return true;
	return false;
}

/* One section record, after its tag. */
static int load_section(struct machine *m, struct mig_stream *s, GHashTable *seen)
{
	char name[256], key[300], err[512] = "";
	uint8_t nl;
	uint32_t instance, version, len;
	struct vmstate_section *sec;
	struct vmstate_in in;
	uint8_t *payload;
	int ret;

	if (mig_get_u8(s, &nl) || mig_get(s, name, nl))
		return s->error;
	name[nl] = 0;
	if (mig_get_u32(s, &instance) || mig_get_u32(s, &version) || mig_get_u32(s, &len))
		return s->error;
	sec = vmstate_find(m, name, instance);
	if (!sec && other_accel_section(m, name))
		return mig_stream_fail(s, -ENOENT, "section '%s' comes from a guest under another "
				       "accelerator, and this VM runs under %s: both ends of a "
				       "migration must use the same -accel", name, m->accel->name);
	if (!sec)
		return mig_stream_fail(s, -ENOENT, "unknown section '%s' instance %u "
				       "(this VM has no such device)", name, instance);
	if (version > sec->version || version < sec->min_version)
		return mig_stream_fail(s, -EINVAL, "section '%s' instance %u has version %u, "
				       "this vireo loads versions %u to %u", name, instance,
				       version, sec->min_version, sec->version);
	snprintf(key, sizeof(key), "%s/%u", name, instance);
	if (g_hash_table_contains(seen, key))
		return mig_stream_fail(s, -EINVAL, "section '%s' instance %u appears twice",
				       name, instance);
	if (len > MIG_MAX_SECTION)
		return mig_stream_fail(s, -EINVAL, "section '%s' instance %u claims %u bytes",
				       name, instance, len);
	payload = malloc(len ? len : 1);
	if (!payload)
		return mig_stream_fail(s, -ENOMEM, "out of memory for section '%s'", name);
	if (mig_get(s, payload, len)) {
		free(payload);
		return s->error;
	}
	in = (struct vmstate_in){ .buf = payload, .len = len, .section = name,
				  .instance = instance, .version = version,
				  .err = err, .errlen = sizeof(err) };
	ret = sec->load(sec->opaque, &in);
	if (!ret)
		ret = vmstate_in_finish(&in);
	free(payload);
	if (ret)
		return mig_stream_fail(s, ret, "%s", err[0] ? err :
				       "cannot load a section (see the log)");
	g_hash_table_add(seen, g_strdup(key));
	return 0;
}

static int load_end(struct machine *m, struct mig_stream *s, GHashTable *seen)
{
	char key[300];

	if (mig_load_sum(s, "the migration stream's"))
		return s->error;
	for (struct vmstate_section *sec = m->vmstate; sec; sec = sec->next) {
		snprintf(key, sizeof(key), "%s/%u", sec->name, sec->instance);
		if (!g_hash_table_contains(seen, key))
			return mig_stream_fail(s, -EINVAL, "the stream has no section '%s' "
					       "instance %u (the source lacks that device)",
					       sec->name, sec->instance);
	}
	return 0;
}

int mig_load(struct machine *m, struct mig_stream *s)
{
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	char magic[8];
	uint32_t version;
	uint8_t tag;
	bool layout = false, mapped = false, crc_seen = false;
	struct mig_ram r = { 0 };
	struct multifd mf = { 0 };
	int ret = 0;

	if (mig_get(s, magic, 8))
		goto out;
	if (memcmp(magic, MIG_MAGIC, 8)) {
		mig_stream_fail(s, -EINVAL, "not a vireo migration stream (bad magic)");
		goto out;
	}
	if (mig_get_u32(s, &version))
		goto out;
	if (version != MIG_STREAM_VERSION) {
		mig_stream_fail(s, -EINVAL, "migration stream version %u, this vireo reads "
				"version %u", version, MIG_STREAM_VERSION);
		goto out;
	}
	for (;;) {
		if (mig_get_u8(s, &tag))
			break;
		if (tag == MIG_TAG_END) {
			if (mapped && !crc_seen)
				mig_stream_fail(s, -EINVAL, "mapped RAM without its checksums");
			else if (!multifd_recv_finish(&mf, s))
				load_end(m, s, seen);
			break;
		}
		switch (tag) {
		case MIG_TAG_RAM_LAYOUT:
			ret = ram_load_layout(m, s, &r);
			layout = true;
			break;
		case MIG_TAG_RAM_PAGE:
			if (!layout)
				ret = mig_stream_fail(s, -EINVAL, "RAM page before the RAM layout");
			else
				ret = ram_load_page(m, s, &r);
			break;
		case MIG_TAG_SECTION:
			ret = load_section(m, s, seen);
			break;
		case MIG_TAG_MAPPED_RAM:
			if (!layout)
				ret = mig_stream_fail(s, -EINVAL, "mapped RAM before the RAM layout");
			else if (mapped)
				/* Its seek could lead back to itself: a load without end. */
				ret = mig_stream_fail(s, -EINVAL, "a second mapped-ram record");
			else
				ret = mapped_ram_load(m, s, &r);
			mapped = true;
			break;
		case MIG_TAG_MULTIFD: {
			uint32_t n;

			if (!layout || mf.n)
				ret = mig_stream_fail(s, -EINVAL, "misplaced multifd record");
			else if (!mig_get_u32(s, &n))
				ret = multifd_recv_setup(m, &mf, &r, s, n);
			else
				ret = s->error;
			break;
		}
		case MIG_TAG_RAM_CRC:
			if (!mapped)
				ret = mig_stream_fail(s, -EINVAL, "RAM checksums without mapped RAM");
			else
				ret = mapped_ram_load_crc(m, s, &r);
			crc_seen = true;
			break;
		default:
			ret = mig_stream_fail(s, -EINVAL, "unknown record 0x%02x at byte %llu "
					      "of the migration stream", tag,
					      (unsigned long long)s->bytes - 1);
			break;
		}
		if (ret)
			break;
	}
out:
	/* A channel still receiving must not outlive the load. */
	if (s->error)
		multifd_shutdown(&mf);
	multifd_cleanup(&mf);
	ram_load_cleanup(&r);
	g_hash_table_destroy(seen);
	return s->error;
}

/* ---- the accelerator's sections: VM-wide state and one per vCPU ---- */

static int vcpu_sec_save(void *opaque, struct vmstate_out *o)
{
	struct vcpu *v = opaque;

	return v->m->accel->vcpu_save(v, o);
}

static int vcpu_sec_load(void *opaque, struct vmstate_in *in)
{
	struct vcpu *v = opaque;

	return v->m->accel->vcpu_load(v, in);
}

static int vm_sec_save(void *opaque, struct vmstate_out *o)
{
	struct machine *m = opaque;

	return m->accel->vm_save(m, o);
}

static int vm_sec_load(void *opaque, struct vmstate_in *in)
{
	struct machine *m = opaque;

	return m->accel->vm_load(m, in);
}

/* Whether the guest ran on the source: a paused guest stays paused. */
static int run_sec_save(void *opaque, struct vmstate_out *o)
{
	struct migration *mig = opaque;

	vmstate_put_bool(o, "running", mig->was_running);
	return 0;
}

static int run_sec_load(void *opaque, struct vmstate_in *in)
{
	struct migration *mig = opaque;

	return vmstate_get_bool(in, "running", &mig->src_running);
}

/*
 * Registered after the devices: the loader sets the in-kernel irqchips
 * and the vCPUs last, so nothing a device load does disturbs them.
 */
int mig_register_accel_sections(struct machine *m, struct migration *mig)
{
	const struct accel_ops *a = m->accel;
	int ret;

	if (mig->sections_registered)
		return 0;
	if (!a->vcpu_save || !a->vcpu_load || !a->vm_save || !a->vm_load)
		return -ENOTSUP;
	mig->vm_name = g_strdup_printf("%s-vm", a->name);
	mig->cpu_name = g_strdup_printf("%s-cpu", a->name);
	mig->vm_sec = (struct vmstate_section){
		.name = mig->vm_name, .version = a->state_version,
		.min_version = a->state_version, .save = vm_sec_save, .load = vm_sec_load,
		.opaque = m,
	};
	ret = vmstate_register(m, &mig->vm_sec);
	if (ret)
		return ret;
	mig->run_sec = (struct vmstate_section){
		.name = "runstate", .version = 1, .min_version = 1, .save = run_sec_save,
		.load = run_sec_load, .opaque = mig,
	};
	ret = vmstate_register(m, &mig->run_sec);
	if (ret)
		return ret;
	mig->cpu_sec = calloc(m->nr_vcpus, sizeof(*mig->cpu_sec));
	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		mig->cpu_sec[i] = (struct vmstate_section){
			.name = mig->cpu_name, .instance = i, .version = a->state_version,
			.min_version = a->state_version, .save = vcpu_sec_save,
			.load = vcpu_sec_load, .opaque = m->vcpus[i],
		};
		ret = vmstate_register(m, &mig->cpu_sec[i]);
		if (ret)
			return ret;
	}
	mig->sections_registered = true;
	return 0;
}
