/*
 * A small AML encoder for the DSDT: names, scopes, devices, packages,
 * integers, strings and resource templates.  Each builder appends to a
 * GByteArray; the ones with a body take a finished child array and free it,
 * because a PkgLength can only be written once the body's size is known.
 */
#ifndef VIREO_HW_ACPI_AML_H
#define VIREO_HW_ACPI_AML_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

GByteArray *aml_new(void);

/* Data objects. */
void aml_integer(GByteArray *out, uint64_t v);
void aml_string(GByteArray *out, const char *s);
/* EisaId("PNP0A03"): the compressed 32-bit form. */
void aml_eisaid(GByteArray *out, const char *id);
/* Buffer (len) { bytes } */
void aml_buffer(GByteArray *out, const uint8_t *bytes, unsigned len);
/* Package (n) { body } */
void aml_package(GByteArray *out, unsigned n, GByteArray *body);

/* Name (name, <object appended next by the caller>) */
void aml_name(GByteArray *out, const char *name);
/* Scope (name) { body } and Device (name) { body } */
void aml_scope(GByteArray *out, const char *name, GByteArray *body);
void aml_device(GByteArray *out, const char *name, GByteArray *body);

/*
 * Resource descriptors, appended to a raw byte array that aml_resources()
 * then closes with an end tag and wraps as a Buffer.
 */
void aml_res_io(GByteArray *r, uint16_t base, uint8_t len);
void aml_res_word_bus(GByteArray *r, uint16_t min, uint16_t max);
void aml_res_word_io(GByteArray *r, uint16_t min, uint16_t max);
void aml_res_dword_mem(GByteArray *r, uint32_t min, uint32_t max, bool cacheable);
void aml_res_mem32_fixed(GByteArray *r, uint32_t base, uint32_t len);
void aml_resources(GByteArray *out, GByteArray *r);

#endif
