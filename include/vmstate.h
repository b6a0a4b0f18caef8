/*
 * Device and vCPU state in a versioned, self-describing form, for
 * migration.  A device registers a section (name, instance, version) with
 * a save and a load function.  Save writes named fields; load reads them
 * back in the same order, and every mismatch is an error that names the
 * section and the field: a missing field, a field of another size, a
 * field left over that the loader did not ask for.
 *
 * Field encoding (little-endian): u8 name length, name, u32 size, bytes.
 */
#ifndef VIREO_VMSTATE_H
#define VIREO_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;

/* A section's payload being written: a growing byte buffer. */
struct vmstate_out {
	uint8_t *buf;
	size_t len, cap;
	int error;			/* -ENOMEM once an append failed */
};

/* A section's payload being read. */
struct vmstate_in {
	const uint8_t *buf;
	size_t len, pos;
	const char *section;		/* for messages */
	uint32_t instance;
	uint32_t version;		/* the version the stream carries */
	char *err;			/* message buffer of the loader */
	size_t errlen;
};

void vmstate_out_init(struct vmstate_out *o);
void vmstate_out_free(struct vmstate_out *o);

/* Append one field of len bytes. */
void vmstate_put(struct vmstate_out *o, const char *field, const void *p, uint32_t len);
static inline void vmstate_put_u8(struct vmstate_out *o, const char *f, uint8_t v)
{
	vmstate_put(o, f, &v, sizeof(v));
}
static inline void vmstate_put_u16(struct vmstate_out *o, const char *f, uint16_t v)
{
	vmstate_put(o, f, &v, sizeof(v));
}
static inline void vmstate_put_u32(struct vmstate_out *o, const char *f, uint32_t v)
{
	vmstate_put(o, f, &v, sizeof(v));
}
static inline void vmstate_put_u64(struct vmstate_out *o, const char *f, uint64_t v)
{
	vmstate_put(o, f, &v, sizeof(v));
}
static inline void vmstate_put_bool(struct vmstate_out *o, const char *f, bool v)
{
	vmstate_put_u8(o, f, v);
}

/*
 * Read the next field, which must be called field and be exactly len
 * bytes.  Returns 0 or -EINVAL with a message in in->err.
 */
int vmstate_get(struct vmstate_in *in, const char *field, void *p, uint32_t len);
/* Read the next field of any size; *p points into the section (no copy). */
int vmstate_get_var(struct vmstate_in *in, const char *field, const void **p, uint32_t *len);
int vmstate_get_u8(struct vmstate_in *in, const char *field, uint8_t *v);
int vmstate_get_u16(struct vmstate_in *in, const char *field, uint16_t *v);
int vmstate_get_u32(struct vmstate_in *in, const char *field, uint32_t *v);
int vmstate_get_u64(struct vmstate_in *in, const char *field, uint64_t *v);
int vmstate_get_bool(struct vmstate_in *in, const char *field, bool *v);
/* A loader's own check of a value it read: fails with the message. */
int vmstate_fail(struct vmstate_in *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 if every field was read, else -EINVAL naming the first unread one. */
int vmstate_in_finish(struct vmstate_in *in);

/*
 * One registered section.  The owner embeds it (no allocation) and
 * registers it once; load accepts the versions min_version..version.
 */
struct vmstate_section {
	const char *name;		/* "uart", "kvm-cpu" */
	uint32_t instance;		/* COM port, vCPU index, PCI devfn... */
	uint32_t version, min_version;
	int (*save)(void *opaque, struct vmstate_out *o);
	int (*load)(void *opaque, struct vmstate_in *in);
	void *opaque;
	/*
	 * Optional: called before save with the vCPUs paused, to finish
	 * in-flight work; resume undoes it when the migration fails and the
	 * guest runs on here.
	 */
	int (*quiesce)(void *opaque);
	void (*resume)(void *opaque);
	struct vmstate_section *next;
};

/* Add s to the machine's sections; -EEXIST if name/instance is taken. */
int vmstate_register(struct machine *m, struct vmstate_section *s);
void vmstate_unregister(struct machine *m, struct vmstate_section *s);
struct vmstate_section *vmstate_find(struct machine *m, const char *name, uint32_t instance);

#endif
