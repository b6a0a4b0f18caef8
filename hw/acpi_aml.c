/* AML encoding (ACPI 6.x, section 20: ACPI Machine Language Specification). */
#include <string.h>

#include "acpi_aml.h"

#define AML_ZERO_OP		0x00
#define AML_ONE_OP		0x01
#define AML_NAME_OP		0x08
#define AML_BYTE_PREFIX		0x0A
#define AML_WORD_PREFIX		0x0B
#define AML_DWORD_PREFIX	0x0C
#define AML_STRING_PREFIX	0x0D
#define AML_QWORD_PREFIX	0x0E
#define AML_SCOPE_OP		0x10
#define AML_BUFFER_OP		0x11
#define AML_PACKAGE_OP		0x12
#define AML_EXT_OP		0x5B
#define AML_DEVICE_OP		0x82	/* after AML_EXT_OP */
#define AML_ROOT_CHAR		'\\'
#define AML_DUAL_NAME_PREFIX	0x2E
#define AML_MULTI_NAME_PREFIX	0x2F

GByteArray *aml_new(void)
{
	return g_byte_array_new();
}

static void put8(GByteArray *out, uint8_t v)
{
	g_byte_array_append(out, &v, 1);
}

static void put_le(GByteArray *out, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		put8(out, v >> (8 * i));
}

void aml_integer(GByteArray *out, uint64_t v)
{
	if (v == 0) {
		put8(out, AML_ZERO_OP);
	} else if (v == 1) {
		put8(out, AML_ONE_OP);
	} else if (v <= 0xFF) {
		put8(out, AML_BYTE_PREFIX);
		put8(out, v);
	} else if (v <= 0xFFFF) {
		put8(out, AML_WORD_PREFIX);
		put_le(out, v, 2);
	} else if (v <= 0xFFFFFFFF) {
		put8(out, AML_DWORD_PREFIX);
		put_le(out, v, 4);
	} else {
		put8(out, AML_QWORD_PREFIX);
		put_le(out, v, 8);
	}
}

void aml_string(GByteArray *out, const char *s)
{
	put8(out, AML_STRING_PREFIX);
	g_byte_array_append(out, (const uint8_t *)s, strlen(s) + 1);
}

void aml_eisaid(GByteArray *out, const char *id)
{
	/* Three letters of five bits each, then four hex digits, stored big-endian. */
	uint32_t v = (uint32_t)(id[0] - 0x40) << 26 | (uint32_t)(id[1] - 0x40) << 21 |
		     (uint32_t)(id[2] - 0x40) << 16 | (uint32_t)g_ascii_strtoull(id + 3, NULL, 16);

	put8(out, AML_DWORD_PREFIX);
	put_le(out, GUINT32_SWAP_LE_BE(v), 4);
}

/*
 * A NameString: "\\_SB.PCI0", "PCI0", "_S5".  Segments shorter than four
 * characters are padded with '_', as ASL does.
 */
static void aml_namestring(GByteArray *out, const char *path)
{
	gchar **segs;
	unsigned n;

	if (*path == AML_ROOT_CHAR) {
		put8(out, AML_ROOT_CHAR);
		path++;
	}
	segs = g_strsplit(path, ".", -1);
	n = g_strv_length(segs);
	if (n == 2) {
		put8(out, AML_DUAL_NAME_PREFIX);
	} else if (n > 2) {
		put8(out, AML_MULTI_NAME_PREFIX);
		put8(out, n);
	}
	for (unsigned i = 0; i < n; i++) {
		char seg[4] = { '_', '_', '_', '_' };

		memcpy(seg, segs[i], MIN(strlen(segs[i]), 4));
		g_byte_array_append(out, (const uint8_t *)seg, 4);
	}
	g_strfreev(segs);
}

/*
 * PkgLength counts itself: one byte up to 63, else a lead byte whose top
 * two bits say how many bytes follow and whose low nibble holds bits 3:0.
 */
static void aml_pkglength(GByteArray *out, unsigned body)
{
	unsigned n, total;

	if (body + 1 <= 0x3F) {
		put8(out, body + 1);
		return;
	}
	for (n = 2; n <= 4; n++) {
		total = body + n;
		if (total < 1u << (4 + 8 * (n - 1)))
			break;
	}
	put8(out, (n - 1) << 6 | (total & 0xF));
	for (unsigned i = 1; i < n; i++)
		put8(out, total >> (4 + 8 * (i - 1)));
}

/* op bytes, PkgLength, then head and body; frees both. */
static void aml_wrap(GByteArray *out, const uint8_t *op, unsigned oplen, GByteArray *head,
		     GByteArray *body)
{
	g_byte_array_append(out, op, oplen);
	aml_pkglength(out, head->len + (body ? body->len : 0));
	g_byte_array_append(out, head->data, head->len);
	if (body)
		g_byte_array_append(out, body->data, body->len);
	g_byte_array_free(head, TRUE);
	if (body)
		g_byte_array_free(body, TRUE);
}

void aml_buffer(GByteArray *out, const uint8_t *bytes, unsigned len)
{
	static const uint8_t op[] = { AML_BUFFER_OP };
	GByteArray *head = aml_new();

	aml_integer(head, len);
	g_byte_array_append(head, bytes, len);
	aml_wrap(out, op, sizeof(op), head, NULL);
}

void aml_package(GByteArray *out, unsigned n, GByteArray *body)
{
	static const uint8_t op[] = { AML_PACKAGE_OP };
	GByteArray *head = aml_new();

	put8(head, n);
	aml_wrap(out, op, sizeof(op), head, body);
}

void aml_name(GByteArray *out, const char *name)
{
	put8(out, AML_NAME_OP);
	aml_namestring(out, name);
}

void aml_scope(GByteArray *out, const char *name, GByteArray *body)
{
	static const uint8_t op[] = { AML_SCOPE_OP };
	GByteArray *head = aml_new();

	aml_namestring(head, name);
	aml_wrap(out, op, sizeof(op), head, body);
}

void aml_device(GByteArray *out, const char *name, GByteArray *body)
{
	static const uint8_t op[] = { AML_EXT_OP, AML_DEVICE_OP };
	GByteArray *head = aml_new();

	aml_namestring(head, name);
	aml_wrap(out, op, sizeof(op), head, body);
}

/* ---- resource descriptors (ACPI 6.x, section 6.4) ---------------------- */

#define RES_IO			0x47	/* small: I/O port, 7 bytes */
#define RES_END_TAG		0x79	/* small: end tag, 1 byte */
#define RES_MEM32_FIXED		0x86	/* large */
#define RES_DWORD_ADDR		0x87
#define RES_WORD_ADDR		0x88
#define ADDR_TYPE_MEM		0
#define ADDR_TYPE_IO		1
#define ADDR_TYPE_BUS		2
/* Producer, positive decode, min and max fixed. */
#define ADDR_FLAGS_WINDOW	0x0C

void aml_res_io(GByteArray *r, uint16_t base, uint8_t len)
{
	put8(r, RES_IO);
	put8(r, 1);		/* 16-bit decode */
	put_le(r, base, 2);	/* min */
	put_le(r, base, 2);	/* max */
	put8(r, 1);		/* alignment */
	put8(r, len);
}

static void res_word_addr(GByteArray *r, uint8_t type, uint8_t tflags, uint16_t min,
			  uint16_t max)
{
	put8(r, RES_WORD_ADDR);
	put_le(r, 13, 2);
	put8(r, type);
	put8(r, ADDR_FLAGS_WINDOW);
	put8(r, tflags);
	put_le(r, 0, 2);		/* granularity */
	put_le(r, min, 2);
	put_le(r, max, 2);
	put_le(r, 0, 2);		/* translation */
	put_le(r, max - min + 1, 2);
}

void aml_res_word_bus(GByteArray *r, uint16_t min, uint16_t max)
{
	res_word_addr(r, ADDR_TYPE_BUS, 0, min, max);
}

void aml_res_word_io(GByteArray *r, uint16_t min, uint16_t max)
{
	res_word_addr(r, ADDR_TYPE_IO, 3 /* ISA and non-ISA ranges */, min, max);
}

void aml_res_dword_mem(GByteArray *r, uint32_t min, uint32_t max, bool cacheable)
{
	put8(r, RES_DWORD_ADDR);
	put_le(r, 23, 2);
	put8(r, ADDR_TYPE_MEM);
	put8(r, ADDR_FLAGS_WINDOW);
	put8(r, 0x01 | (cacheable ? 0x02 : 0));	/* read-write */
	put_le(r, 0, 4);		/* granularity */
	put_le(r, min, 4);
	put_le(r, max, 4);
	put_le(r, 0, 4);		/* translation */
	put_le(r, (uint64_t)max - min + 1, 4);
}

void aml_res_mem32_fixed(GByteArray *r, uint32_t base, uint32_t len)
{
	put8(r, RES_MEM32_FIXED);
	put_le(r, 9, 2);
	put8(r, 1);			/* read-write */
	put_le(r, base, 4);
	put_le(r, len, 4);
}

void aml_resources(GByteArray *out, GByteArray *r)
{
	put8(r, RES_END_TAG);
	put8(r, 0);			/* checksum 0: none */
	aml_buffer(out, r->data, r->len);
	g_byte_array_free(r, TRUE);
}
