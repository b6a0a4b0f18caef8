/*
 * QEMU-style option strings: "value,key=val,key2=val2".  A leading element
 * without '=' is stored under the implied key given by the caller (for
 * example "file" for -drive, "driver" for -device, "type" for -accel).  ",,"
 * is an escaped comma, as in QEMU.
 */
#ifndef VIREO_OPTIONS_H
#define VIREO_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opt {
	char *key;
	char *value;
	bool used;
};

struct opts {
	char *group;		/* "-drive", "-device"... for messages */
	struct opt *v;
	size_t n;
};

/* Returns NULL and fills err on a malformed string. */
struct opts *opts_parse(const char *group, const char *str, const char *implied_key,
			char *err, size_t errlen);
void opts_free(struct opts *o);

/* Lookups mark the option used; NULL / default when absent. */
const char *opts_get(struct opts *o, const char *key);
/* on|off|yes|no|true|false; -EINVAL with message naming the option on junk. */
int opts_get_bool(struct opts *o, const char *key, bool def, bool *out, char *err, size_t errlen);
/* Integer with optional K/M/G/T suffix (powers of 1024, as QEMU). */
int opts_get_size(struct opts *o, const char *key, uint64_t def, uint64_t *out, char *err, size_t errlen);
int opts_get_uint(struct opts *o, const char *key, uint64_t def, uint64_t *out, char *err, size_t errlen);
/* Pick one of a NULL-terminated list of words; returns its index. */
int opts_get_enum(struct opts *o, const char *key, const char *const *words, int def,
		  char *err, size_t errlen);
/* -EINVAL naming the first option nobody asked for. */
int opts_check_all_used(struct opts *o, char *err, size_t errlen);

/*
 * A JSON object as an option string, as QEMU takes "-device {...}" and
 * QMP's device_add: the member named first leads ("driver"), the others
 * follow as key=value (strings, integers, on|off for booleans; commas
 * doubled).  NULL with err naming the parameter otherwise.
 */
typedef struct _JsonObject JsonObject;
char *opts_from_json_object(JsonObject *obj, const char *first, char *err, size_t errlen);
/* The same from JSON text; err names group ("-device") and the text. */
char *opts_from_json(const char *group, const char *json, const char *first, char *err,
		     size_t errlen);

/* "128M", "2G", "512" (MiB when default_suffix is 'M'). */
int parse_size(const char *s, char default_suffix, uint64_t *out);

#endif
