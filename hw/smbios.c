/*
 * SMBIOS tables (DMTF DSP0134 3.0, with a 2.8 entry point too for older
 * guests), written at 0xF0000 where an OS without EFI scans for them:
 *
 *   0xF0000  SMBIOS 3.0 entry point "_SM3_" (64-bit table address)
 *   0xF0020  SMBIOS 2.8 entry point "_SM_" / "_DMI_" (32-bit address)
 *   0xF0100  the structure table
 *
 * Structures: BIOS (type 0), system (1) with the VM's UUID, baseboard
 * (2), chassis (3), OEM strings (11, when given), system boot (32) and
 * the end (127).  Each is a formatted area followed by its strings, each
 * NUL-terminated, the set ended by one more NUL; a string field holds the
 * string's number (1 for the first), 0 for none.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "le.h"
#include "machine.h"
#include "options.h"
#include "smbios.h"
#include "version.h"

#define SMBIOS_BASE		0xF0000
#define SMBIOS_EP3		SMBIOS_BASE
#define SMBIOS_EP2		(SMBIOS_BASE + 0x20)
#define SMBIOS_TABLE		(SMBIOS_BASE + 0x100)
#define SMBIOS_TABLE_MAX	(0x10000 - 0x100)

/* The keys -smbios takes, by type, in the order of struct smbios_config. */
static const struct {
	unsigned type;
	const char *key;
	const char *def;		/* what the guest sees without the option */
} keys[] = {
	{ 0, "vendor", "vireo" }, { 0, "version", VIREO_VERSION }, { 0, "date", "11/22/2026" },
	{ 1, "manufacturer", "vireo" }, { 1, "product", "vireo virtual machine (q35)" },
	{ 1, "version", "q35" }, { 1, "serial", NULL }, { 1, "uuid", NULL },
	{ 1, "sku", NULL }, { 1, "family", NULL },
	{ 2, "manufacturer", "vireo" }, { 2, "product", "vireo virtual machine (q35)" },
	{ 2, "version", "q35" }, { 2, "serial", NULL }, { 2, "asset", NULL },
	{ 2, "location", NULL },
	{ 3, "manufacturer", "vireo" }, { 3, "version", "q35" }, { 3, "serial", NULL },
	{ 3, "asset", NULL }, { 3, "sku", NULL },
};
#define NR_KEYS G_N_ELEMENTS(keys)

struct smbios_config {
	char *val[NR_KEYS];
	GPtrArray *oem;			/* type 11 strings */
};

static int key_index(unsigned type, const char *key)
{
	for (unsigned i = 0; i < NR_KEYS; i++)
		if (keys[i].type == type && !strcmp(keys[i].key, key))
			return i;
	return -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into SMBIOS 2.6+ byte order. */
static bool uuid_bytes(const char *u, uint8_t out[16])
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	/* time_low, time_mid and time_hi_and_version are little-endian. */
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t b[16];
	unsigned n = 0;

	if (strlen(u) != strlen(shape))
		return false;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == '-') {
			if (u[i] != '-')
				return false;
			continue;
		}
		if (!g_ascii_isxdigit(u[i]) || !g_ascii_isxdigit(u[i + 1]))
			return false;
		b[n++] = g_ascii_xdigit_value(u[i]) << 4 | g_ascii_xdigit_value(u[i + 1]);
		i++;
	}
	for (unsigned i = 0; i < 16; i++)
		out[i] = b[order[i]];
	return true;
}

int smbios_parse(struct smbios_config **cfg, const char *arg, char *err, size_t errlen)
{
	struct opts *o = opts_parse("-smbios", arg, NULL, err, errlen);
	struct smbios_config *c;
	uint64_t type;
	int ret = -EINVAL;

	if (!o)
		return -EINVAL;
	if (opts_get(o, "file")) {
		snprintf(err, errlen, "-smbios %s: tables from a file are not supported; give "
			 "the fields (type=1,serial=...)", arg);
		goto out;
	}
	if (!opts_get(o, "type")) {
		snprintf(err, errlen, "-smbios %s: type= is required", arg);
		goto out;
	}
	if (opts_get_uint(o, "type", 0, &type, err, errlen))
		goto out;
	if (type > 3 && type != 11) {
		snprintf(err, errlen, "-smbios %s: type %llu is not supported (0, 1, 2, 3, 11)", arg,
			 (unsigned long long)type);
		goto out;
	}
	if (!*cfg) {
		*cfg = g_new0(struct smbios_config, 1);
		(*cfg)->oem = g_ptr_array_new_with_free_func(g_free);
	}
	c = *cfg;
	for (size_t i = 0; i < o->n; i++) {
		const char *key = o->v[i].key, *val = o->v[i].value;
		int k;

		if (!strcmp(key, "type"))
			continue;
		if (type == 11 && !strcmp(key, "value")) {
			g_ptr_array_add(c->oem, g_strdup(val));
			continue;
		}
		k = key_index(type, key);
		if (k < 0) {
			snprintf(err, errlen, "-smbios %s: type %llu has no field '%s'", arg,
				 (unsigned long long)type, key);
			goto out;
		}
		if (!strcmp(key, "uuid") && !uuid_bytes(val, (uint8_t[16]){ 0 })) {
			snprintf(err, errlen, "-smbios %s: uuid=%s is not a UUID", arg, val);
			goto out;
		}
		g_free(c->val[k]);
		c->val[k] = g_strdup(val);
	}
	ret = 0;
out:
	opts_free(o);
	return ret;
}

void smbios_config_free(struct smbios_config *cfg)
{
	if (!cfg)
		return;
	for (unsigned i = 0; i < NR_KEYS; i++)
		g_free(cfg->val[i]);
	g_ptr_array_free(cfg->oem, TRUE);
	g_free(cfg);
}

/* ---- building ---- */

struct table {
	GByteArray *buf;
	GString *strings;		/* of the structure being built */
	unsigned nstrings, count, max_struct, start;
};

static const char *field(const struct machine *m, unsigned type, const char *key)
{
	const struct smbios_config *c = m->cfg.smbios;
	int k = key_index(type, key);

	return c && c->val[k] ? c->val[k] : keys[k].def;
}

/* The number of s in this structure's string set; 0 for none. */
static uint8_t str(struct table *t, const char *s)
{
	if (!s || !*s || t->nstrings == 255)
		return 0;
	g_string_append_len(t->strings, s, strlen(s) + 1);
	return ++t->nstrings;
}

/*
 * Start a structure: header, then len - 4 bytes of formatted area to fill
 * through the pointer returned, valid until end(); str() adds its strings.
 */
static uint8_t *begin(struct table *t, uint8_t type, uint8_t len, uint16_t handle)
{
	uint8_t hdr[4] = { type, len, handle & 0xff, handle >> 8 };

	t->start = t->buf->len;
	g_byte_array_append(t->buf, hdr, 4);
	g_byte_array_set_size(t->buf, t->start + len);
	memset(t->buf->data + t->start + 4, 0, len - 4);
	g_string_truncate(t->strings, 0);
	t->nstrings = 0;
	return t->buf->data + t->start;
}

/* The strings after the formatted area; begin's pointer is stale after this. */
static void end(struct table *t)
{
	static const uint8_t nul[2] = { 0, 0 };

	if (t->strings->len)
		g_byte_array_append(t->buf, (const uint8_t *)t->strings->str, t->strings->len);
	else
		g_byte_array_append(t->buf, nul, 1);
	g_byte_array_append(t->buf, nul, 1);
	t->max_struct = MAX(t->max_struct, t->buf->len - t->start);
	t->count++;
}

/* The strings of the keys (NULL-terminated) of a type into s[], in order. */
static void fields(struct table *t, const struct machine *m, unsigned type,
		   const char *const *names, uint8_t *s)
{
	for (unsigned i = 0; names[i]; i++)
		s[i] = str(t, field(m, type, names[i]));
}

static void build_structures(struct machine *m, struct table *t)
{
	const struct smbios_config *c = m->cfg.smbios;
	const char *uuid = field(m, 1, "uuid") ? field(m, 1, "uuid") : m->cfg.uuid;
	uint8_t *p, s[8];

	/* Type 0, BIOS: characteristics "not supported", a virtual machine. */
	p = begin(t, 0, 0x18, 0x0000);
	fields(t, m, 0, (const char *const[]){ "vendor", "version", "date", NULL }, s);
	p[4] = s[0];
	p[5] = s[1];
	put_le16(p + 6, 0xE800);		/* starting segment */
	p[8] = s[2];
	p[9] = 0;			/* ROM size: 64 KiB */
	p[0x0A] = 0x08;			/* characteristics not supported */
	p[0x13] = 0x10;			/* extension byte 2: virtual machine */
	p[0x16] = p[0x17] = 0xFF;	/* no embedded controller firmware */
	end(t);

	/* Type 1, system: the UUID of -uuid (or type=1,uuid=), zero without. */
	p = begin(t, 1, 0x1B, 0x0100);
	fields(t, m, 1, (const char *const[]){ "manufacturer", "product", "version", "serial",
						"sku", "family", NULL }, s);
	memcpy(p + 4, s, 4);
	if (uuid)
		uuid_bytes(uuid, p + 8);
	p[0x18] = 0x06;			/* woken by the power switch */
	p[0x19] = s[4];
	p[0x1A] = s[5];
	end(t);

	/* Type 2, baseboard, in the chassis below. */
	p = begin(t, 2, 0x0F, 0x0200);
	fields(t, m, 2, (const char *const[]){ "manufacturer", "product", "version", "serial",
						"asset", "location", NULL }, s);
	memcpy(p + 4, s, 5);
	p[9] = 0x01;			/* a hosting board */
	p[0x0A] = s[5];
	put_le16(p + 0x0B, 0x0300);
	p[0x0D] = 0x0A;			/* motherboard */
	end(t);

	/* Type 3, chassis: "other", states safe. */
	p = begin(t, 3, 0x16, 0x0300);
	fields(t, m, 3, (const char *const[]){ "manufacturer", "version", "serial", "asset",
						"sku", NULL }, s);
	p[4] = s[0];
	p[5] = 0x01;
	p[6] = s[1];
	p[7] = s[2];
	p[8] = s[3];
	p[9] = p[0x0A] = p[0x0B] = 0x03;	/* boot-up, power supply, thermal: safe */
	p[0x0C] = 0x02;			/* security: unknown */
	p[0x15] = s[4];
	end(t);

	/* Type 11, OEM strings, in the order given (at most 255). */
	if (c && c->oem->len) {
		unsigned n = 0;

		p = begin(t, 11, 5, 0x0B00);
		for (unsigned i = 0; i < c->oem->len; i++)
			n += str(t, c->oem->pdata[i]) != 0;
		p[4] = n;
		end(t);
	}

	/* Type 32, system boot: no errors.  Type 127 ends the table. */
	begin(t, 32, 0x0B, 0x2000);
	end(t);
	begin(t, 127, 4, 0x7F00);
	end(t);
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return -sum;
}

int smbios_build(struct machine *m, char *err, size_t errlen)
{
	struct table t = { .buf = g_byte_array_new(), .strings = g_string_new(NULL) };
	uint8_t ep3[0x18] = "_SM3_", ep2[0x1F] = "_SM_";
	int ret;

	build_structures(m, &t);
	if (t.buf->len > SMBIOS_TABLE_MAX) {
		snprintf(err, errlen, "-smbios: the tables take %u bytes, more than the %u the "
			 "BIOS area has", t.buf->len, SMBIOS_TABLE_MAX);
		ret = -ENOSPC;
		goto out;
	}
	ep3[6] = sizeof(ep3);
	ep3[7] = 3;			/* SMBIOS 3.0 */
	ep3[0x0A] = 1;			/* entry point revision */
	put_le32(ep3 + 0x0C, t.buf->len);
	put_le32(ep3 + 0x10, SMBIOS_TABLE);	/* the high half of the address is 0 */
	ep3[5] = checksum(ep3, sizeof(ep3));

	ep2[5] = sizeof(ep2);
	ep2[6] = 2;			/* SMBIOS 2.8 */
	ep2[7] = 8;
	put_le16(ep2 + 8, t.max_struct);
	memcpy(ep2 + 0x10, "_DMI_", 5);
	put_le16(ep2 + 0x16, t.buf->len);
	put_le32(ep2 + 0x18, SMBIOS_TABLE);
	put_le16(ep2 + 0x1C, t.count);
	ep2[0x1E] = 0x28;
	ep2[0x15] = checksum(ep2 + 0x10, 0x0F);
	ep2[4] = checksum(ep2, sizeof(ep2));

	ret = guest_write(&m->mem, SMBIOS_EP3, ep3, sizeof(ep3));
	if (!ret)
		ret = guest_write(&m->mem, SMBIOS_EP2, ep2, sizeof(ep2));
	if (!ret)
		ret = guest_write(&m->mem, SMBIOS_TABLE, t.buf->data, t.buf->len);
	if (ret)
		snprintf(err, errlen, "smbios: guest RAM does not cover 0x%x-0x%x for the tables",
			 SMBIOS_BASE, SMBIOS_TABLE + t.buf->len - 1);
out:
	g_byte_array_free(t.buf, TRUE);
	g_string_free(t.strings, TRUE);
	return ret;
}
