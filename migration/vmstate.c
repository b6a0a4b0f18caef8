/*
 * vmstate: the self-describing field encoding of a section's payload and
 * the machine's registry of sections (see vmstate.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"
#include "vmstate.h"

void vmstate_out_init(struct vmstate_out *o)
{
	memset(o, 0, sizeof(*o));
}

void vmstate_out_free(struct vmstate_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

static void out_append(struct vmstate_out *o, const void *p, size_t len)
{
	/* An empty field may come as NULL (a device without an MSI-X table). */
	if (o->error || !len)
		return;
	if (o->len + len > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		uint8_t *nb;

		while (cap < o->len + len)
			cap *= 2;
		nb = realloc(o->buf, cap);
		if (!nb) {
			o->error = -ENOMEM;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
}

void vmstate_put(struct vmstate_out *o, const char *field, const void *p, uint32_t len)
{
	size_t n = strlen(field);
	uint8_t nl = n > 255 ? 255 : n;

	out_append(o, &nl, 1);
	out_append(o, field, nl);
	out_append(o, &len, 4);
	out_append(o, p, len);
}

int vmstate_fail(struct vmstate_in *in, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (in->err)
		snprintf(in->err, in->errlen, "section '%s' instance %u version %u: %s",
			 in->section ? in->section : "?", in->instance, in->version, msg);
	return -EINVAL;
}

/* Decode the field at in->pos without consuming it. */
static int peek_field(struct vmstate_in *in, const char **name, uint8_t *nl,
		      const uint8_t **data, uint32_t *len, size_t *next)
{
	size_t pos = in->pos;

	if (pos + 1 > in->len)
		return -ENOENT;
	*nl = in->buf[pos++];
	if (pos + *nl + 4 > in->len)
		return -EBADMSG;
	*name = (const char *)in->buf + pos;
	pos += *nl;
	memcpy(len, in->buf + pos, 4);
	pos += 4;
	if (*len > in->len - pos)
		return -EBADMSG;
	*data = in->buf + pos;
	*next = pos + *len;
	return 0;
}

int vmstate_get_var(struct vmstate_in *in, const char *field, const void **p, uint32_t *len)
{
	const char *name;
	const uint8_t *data;
	uint8_t nl;
	size_t next;
	int ret = peek_field(in, &name, &nl, &data, len, &next);

	if (ret == -ENOENT)
		return vmstate_fail(in, "field '%s' is missing (the section ends first)", field);
	if (ret)
		return vmstate_fail(in, "malformed field before '%s' (truncated section)", field);
	if (strlen(field) != nl || memcmp(name, field, nl))
		return vmstate_fail(in, "expected field '%s', found '%.*s'", field, nl, name);
	*p = data;
	in->pos = next;
	return 0;
}

int vmstate_get(struct vmstate_in *in, const char *field, void *p, uint32_t len)
{
	const void *data;
	uint32_t got;
	size_t pos = in->pos;
	int ret = vmstate_get_var(in, field, &data, &got);

	if (ret)
		return ret;
	if (got != len) {
		in->pos = pos;
		return vmstate_fail(in, "field '%s' has %u bytes, expected %u", field, got, len);
	}
	memcpy(p, data, len);
	return 0;
}

int vmstate_get_u8(struct vmstate_in *in, const char *field, uint8_t *v)
{
	return vmstate_get(in, field, v, sizeof(*v));
}

int vmstate_get_u16(struct vmstate_in *in, const char *field, uint16_t *v)
{
	return vmstate_get(in, field, v, sizeof(*v));
}

int vmstate_get_u32(struct vmstate_in *in, const char *field, uint32_t *v)
{
	return vmstate_get(in, field, v, sizeof(*v));
}

int vmstate_get_u64(struct vmstate_in *in, const char *field, uint64_t *v)
{
	return vmstate_get(in, field, v, sizeof(*v));
}

int vmstate_get_bool(struct vmstate_in *in, const char *field, bool *v)
{
	uint8_t b = 0;
	int ret = vmstate_get_u8(in, field, &b);

	if (ret)
		return ret;
	if (b > 1)
		return vmstate_fail(in, "field '%s' is a bool but holds %u", field, b);
	*v = b;
	return 0;
}

int vmstate_in_finish(struct vmstate_in *in)
{
	const char *name;
	const uint8_t *data;
	uint8_t nl;
	uint32_t len;
	size_t next;
	int ret = peek_field(in, &name, &nl, &data, &len, &next);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return vmstate_fail(in, "malformed bytes after the last field");
	return vmstate_fail(in, "unknown field '%.*s' (%u bytes)", nl, name, len);
}

/* ---- the registry ---- */

struct vmstate_section *vmstate_find(struct machine *m, const char *name, uint32_t instance)
{
	for (struct vmstate_section *s = m->vmstate; s; s = s->next)
		if (s->instance == instance && !strcmp(s->name, name))
			return s;
	return NULL;
}

int vmstate_register(struct machine *m, struct vmstate_section *s)
{
	struct vmstate_section **pp = &m->vmstate;

	if (vmstate_find(m, s->name, s->instance))
		return -EEXIST;
	/* Keep registration order: the stream carries sections in it. */
	while (*pp)
		pp = &(*pp)->next;
	s->next = NULL;
	*pp = s;
	return 0;
}

void vmstate_unregister(struct machine *m, struct vmstate_section *s)
{
	for (struct vmstate_section **pp = &m->vmstate; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			s->next = NULL;
			return;
		}
	}
}
