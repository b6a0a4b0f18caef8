/*
 * QEMU-style "key=value,key=value" option strings.  See options.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "options.h"

/* Copy one element up to an unescaped ',' (",," is a literal comma). */
static const char *take_element(const char *p, char **out)
{
	size_t cap = strlen(p) + 1, n = 0;
	char *s = malloc(cap);

	while (*p) {
		if (*p == ',') {
			if (p[1] != ',')
				break;
			p++;
		}
		s[n++] = *p++;
	}
	s[n] = 0;
	*out = s;
	return *p == ',' ? p + 1 : p;
}

struct opts *opts_parse(const char *group, const char *str, const char *implied_key,
			char *err, size_t errlen)
{
	struct opts *o = calloc(1, sizeof(*o));
	const char *p = str;
	bool first = true;

	o->group = strdup(group);
	while (*p) {
		char *elem, *eq;

		p = take_element(p, &elem);
		eq = strchr(elem, '=');
		if (!eq && !(first && implied_key)) {
			/* "readonly" alone means readonly=on, as in QEMU */
			elem = realloc(elem, strlen(elem) + 4);
			eq = elem + strlen(elem);
			strcpy(eq, "=on");
		}
		o->v = realloc(o->v, (o->n + 1) * sizeof(*o->v));
		if (!eq) {
			o->v[o->n].key = strdup(implied_key);
			o->v[o->n].value = elem;
		} else {
			*eq = 0;
			if (!*elem) {
				snprintf(err, errlen, "%s: empty option name in '%s'", group, str);
				free(elem);
				opts_free(o);
				return NULL;
			}
			o->v[o->n].key = strdup(elem);
			o->v[o->n].value = strdup(eq + 1);
			free(elem);
		}
		o->v[o->n].used = false;
		for (size_t i = 0; i < o->n; i++) {
			if (!strcmp(o->v[i].key, o->v[o->n].key)) {
				snprintf(err, errlen, "%s: option '%s' given twice", group,
					 o->v[i].key);
				o->n++;
				opts_free(o);
				return NULL;
			}
		}
		o->n++;
		first = false;
	}
	return o;
}

void opts_free(struct opts *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].key);
		free(o->v[i].value);
	}
	free(o->v);
	free(o->group);
	free(o);
}

const char *opts_get(struct opts *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++) {
		if (!strcmp(o->v[i].key, key)) {
			o->v[i].used = true;
			return o->v[i].value;
		}
	}
	return NULL;
}

int opts_get_bool(struct opts *o, const char *key, bool def, bool *out, char *err, size_t errlen)
{
	const char *v = opts_get(o, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
		*out = false;
		return 0;
	}
	snprintf(err, errlen, "%s: %s='%s' is not on or off", o->group, key, v);
	return -EINVAL;
}

int parse_size(const char *s, char default_suffix, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift;
	char suffix;

	if (!*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -EINVAL;
	suffix = *end ? *end : default_suffix;
	/* The unit letter may be followed by "B" or "iB" (2G, 2GB, 2GiB). */
	if (*end && end[1] && strcmp(end + 1, "B") && strcmp(end + 1, "iB"))
		return -EINVAL;
	switch (toupper((unsigned char)suffix)) {
	case 0: case 'B': shift = 0; break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int opts_get_size(struct opts *o, const char *key, uint64_t def, uint64_t *out, char *err, size_t errlen)
{
	const char *v = opts_get(o, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (parse_size(v, 0, out)) {
		snprintf(err, errlen, "%s: %s='%s' is not a size", o->group, key, v);
		return -EINVAL;
	}
	return 0;
}

int opts_get_uint(struct opts *o, const char *key, uint64_t def, uint64_t *out, char *err, size_t errlen)
{
	const char *v = opts_get(o, key);
	char *end;

	if (!v) {
		*out = def;
		return 0;
	}
	errno = 0;
	*out = strtoull(v, &end, 0);
	if (errno || !*v || *end || *v == '-') {
		snprintf(err, errlen, "%s: %s='%s' is not a number", o->group, key, v);
		return -EINVAL;
	}
	return 0;
}

int opts_get_enum(struct opts *o, const char *key, const char *const *words, int def,
		  char *err, size_t errlen)
{
	const char *v = opts_get(o, key);
	char list[256] = "";

	if (!v)
		return def;
	for (int i = 0; words[i]; i++) {
		if (!strcmp(v, words[i]))
			return i;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i ? ", " : "", words[i]);
	}
	snprintf(err, errlen, "%s: %s='%s' is not one of: %s", o->group, key, v, list);
	return -EINVAL;
}

int opts_check_all_used(struct opts *o, char *err, size_t errlen)
{
	for (size_t i = 0; i < o->n; i++) {
		if (!o->v[i].used) {
			snprintf(err, errlen, "%s: unknown option '%s'", o->group, o->v[i].key);
			return -EINVAL;
		}
	}
	return 0;
}

/* A JSON value as option text: strings as they are, numbers, on|off. */
static char *json_value_text(JsonNode *v)
{
	GType t;

	if (JSON_NODE_TYPE(v) != JSON_NODE_VALUE)
		return NULL;
	t = json_node_get_value_type(v);
	if (t == G_TYPE_STRING)
		return g_strdup(json_node_get_string(v));
	if (t == G_TYPE_INT64)
		return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(v));
	if (t == G_TYPE_BOOLEAN)
		return g_strdup(json_node_get_boolean(v) ? "on" : "off");
	return NULL;
}

char *opts_from_json_object(JsonObject *obj, const char *first, char *err, size_t errlen)
{
	GString *s = g_string_new(NULL);
	GList *members = json_object_get_members(obj);
	char *text = NULL;
	bool ok = true;

	if (!json_object_has_member(obj, first) ||
	    !(text = json_value_text(json_object_get_member(obj, first)))) {
		snprintf(err, errlen, "Parameter '%s' is missing", first);
		ok = false;
	} else {
		g_string_append(s, text);
		g_free(text);
	}
	for (GList *l = members; ok && l; l = l->next) {
		const char *key = l->data;

		if (!strcmp(key, first))
			continue;
		text = json_value_text(json_object_get_member(obj, key));
		if (!text) {
			snprintf(err, errlen, "Parameter '%s' expects a string, number or boolean",
				 key);
			ok = false;
			break;
		}
		g_string_append_printf(s, ",%s=", key);
		for (const char *p = text; *p; p++) {
			if (*p == ',')
				g_string_append_c(s, ',');	/* ",," is a literal comma */
			g_string_append_c(s, *p);
		}
		g_free(text);
	}
	g_list_free(members);
	if (!ok) {
		g_string_free(s, TRUE);
		return NULL;
	}
	return g_string_free(s, FALSE);
}

char *opts_from_json(const char *group, const char *json, const char *first, char *err,
		     size_t errlen)
{
	JsonParser *p = json_parser_new();
	GError *gerr = NULL;
	JsonNode *root;
	char *out = NULL, msg[256] = "";

	if (!json_parser_load_from_data(p, json, -1, &gerr)) {
		snprintf(err, errlen, "%s %s: not valid JSON: %s", group, json, gerr->message);
		g_error_free(gerr);
	} else if (!(root = json_parser_get_root(p)) || !JSON_NODE_HOLDS_OBJECT(root)) {
		snprintf(err, errlen, "%s %s: a JSON argument must be an object", group, json);
	} else {
		out = opts_from_json_object(json_node_get_object(root), first, msg, sizeof(msg));
		if (!out)
			snprintf(err, errlen, "%s %s: %s", group, json, msg);
	}
	g_object_unref(p);
	return out;
}
