/*
 * -cpu: model names, feature names and the filter both accelerators apply
 * to their CPUID answers (see include/cpu_model.h).  Bit positions are
 * those of the Intel SDM vol. 2A (CPUID) and AMD's APM vol. 3 (E.4).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cpu_model.h"

#define L1	0x1
#define L7	0x7
#define X1	0x80000001
#define X7	0x80000007

static const struct cpu_feature features[] = {
	/* CPUID.1:EDX */
	{ "fpu", L1, 0, CPUID_EDX, 0 }, { "vme", L1, 0, CPUID_EDX, 1 },
	{ "de", L1, 0, CPUID_EDX, 2 }, { "pse", L1, 0, CPUID_EDX, 3 },
	{ "tsc", L1, 0, CPUID_EDX, 4 }, { "msr", L1, 0, CPUID_EDX, 5 },
	{ "pae", L1, 0, CPUID_EDX, 6 }, { "mce", L1, 0, CPUID_EDX, 7 },
	{ "cx8", L1, 0, CPUID_EDX, 8 }, { "apic", L1, 0, CPUID_EDX, 9 },
	{ "sep", L1, 0, CPUID_EDX, 11 }, { "mtrr", L1, 0, CPUID_EDX, 12 },
	{ "pge", L1, 0, CPUID_EDX, 13 }, { "mca", L1, 0, CPUID_EDX, 14 },
	{ "cmov", L1, 0, CPUID_EDX, 15 }, { "pat", L1, 0, CPUID_EDX, 16 },
	{ "pse36", L1, 0, CPUID_EDX, 17 }, { "clflush", L1, 0, CPUID_EDX, 19 },
	{ "mmx", L1, 0, CPUID_EDX, 23 }, { "fxsr", L1, 0, CPUID_EDX, 24 },
	{ "sse", L1, 0, CPUID_EDX, 25 }, { "sse2", L1, 0, CPUID_EDX, 26 },
	{ "ss", L1, 0, CPUID_EDX, 27 }, { "ht", L1, 0, CPUID_EDX, 28 },
	/* CPUID.1:ECX ("pni" is QEMU's name for SSE3) */
	{ "pni", L1, 0, CPUID_ECX, 0 }, { "sse3", L1, 0, CPUID_ECX, 0 },
	{ "pclmulqdq", L1, 0, CPUID_ECX, 1 }, { "monitor", L1, 0, CPUID_ECX, 3 },
	{ "vmx", L1, 0, CPUID_ECX, 5 }, { "ssse3", L1, 0, CPUID_ECX, 9 },
	{ "fma", L1, 0, CPUID_ECX, 12 }, { "cx16", L1, 0, CPUID_ECX, 13 },
	{ "pdcm", L1, 0, CPUID_ECX, 15 }, { "pcid", L1, 0, CPUID_ECX, 17 },
	{ "sse4.1", L1, 0, CPUID_ECX, 19 }, { "sse4.2", L1, 0, CPUID_ECX, 20 },
	{ "x2apic", L1, 0, CPUID_ECX, 21 }, { "movbe", L1, 0, CPUID_ECX, 22 },
	{ "popcnt", L1, 0, CPUID_ECX, 23 }, { "tsc-deadline", L1, 0, CPUID_ECX, 24 },
	{ "aes", L1, 0, CPUID_ECX, 25 }, { "xsave", L1, 0, CPUID_ECX, 26 },
	{ "avx", L1, 0, CPUID_ECX, 28 }, { "f16c", L1, 0, CPUID_ECX, 29 },
	{ "rdrand", L1, 0, CPUID_ECX, 30 }, { "hypervisor", L1, 0, CPUID_ECX, 31 },
	/* CPUID.(7,0):EBX */
	{ "fsgsbase", L7, 0, CPUID_EBX, 0 }, { "tsc-adjust", L7, 0, CPUID_EBX, 1 },
	{ "bmi1", L7, 0, CPUID_EBX, 3 }, { "hle", L7, 0, CPUID_EBX, 4 },
	{ "avx2", L7, 0, CPUID_EBX, 5 }, { "smep", L7, 0, CPUID_EBX, 7 },
	{ "bmi2", L7, 0, CPUID_EBX, 8 }, { "erms", L7, 0, CPUID_EBX, 9 },
	{ "invpcid", L7, 0, CPUID_EBX, 10 }, { "rtm", L7, 0, CPUID_EBX, 11 },
	{ "avx512f", L7, 0, CPUID_EBX, 16 }, { "avx512dq", L7, 0, CPUID_EBX, 17 },
	{ "rdseed", L7, 0, CPUID_EBX, 18 }, { "adx", L7, 0, CPUID_EBX, 19 },
	{ "smap", L7, 0, CPUID_EBX, 20 }, { "avx512ifma", L7, 0, CPUID_EBX, 21 },
	{ "clflushopt", L7, 0, CPUID_EBX, 23 }, { "clwb", L7, 0, CPUID_EBX, 24 },
	{ "avx512cd", L7, 0, CPUID_EBX, 28 }, { "sha-ni", L7, 0, CPUID_EBX, 29 },
	{ "avx512bw", L7, 0, CPUID_EBX, 30 }, { "avx512vl", L7, 0, CPUID_EBX, 31 },
	/* CPUID.(7,0):ECX */
	{ "avx512vbmi", L7, 0, CPUID_ECX, 1 }, { "umip", L7, 0, CPUID_ECX, 2 },
	{ "pku", L7, 0, CPUID_ECX, 3 }, { "waitpkg", L7, 0, CPUID_ECX, 5 },
	{ "avx512vbmi2", L7, 0, CPUID_ECX, 6 }, { "gfni", L7, 0, CPUID_ECX, 8 },
	{ "vaes", L7, 0, CPUID_ECX, 9 }, { "vpclmulqdq", L7, 0, CPUID_ECX, 10 },
	{ "avx512vnni", L7, 0, CPUID_ECX, 11 }, { "avx512bitalg", L7, 0, CPUID_ECX, 12 },
	{ "avx512-vpopcntdq", L7, 0, CPUID_ECX, 14 }, { "la57", L7, 0, CPUID_ECX, 16 },
	{ "rdpid", L7, 0, CPUID_ECX, 22 }, { "movdiri", L7, 0, CPUID_ECX, 27 },
	{ "movdir64b", L7, 0, CPUID_ECX, 28 },
	/* CPUID.(7,0):EDX */
	{ "fsrm", L7, 0, CPUID_EDX, 4 }, { "md-clear", L7, 0, CPUID_EDX, 10 },
	{ "serialize", L7, 0, CPUID_EDX, 14 }, { "tsx-ldtrk", L7, 0, CPUID_EDX, 16 },
	{ "spec-ctrl", L7, 0, CPUID_EDX, 26 }, { "stibp", L7, 0, CPUID_EDX, 27 },
	{ "arch-capabilities", L7, 0, CPUID_EDX, 29 }, { "ssbd", L7, 0, CPUID_EDX, 31 },
	/* CPUID.80000001H:ECX */
	{ "lahf-lm", X1, 0, CPUID_ECX, 0 }, { "svm", X1, 0, CPUID_ECX, 2 },
	{ "abm", X1, 0, CPUID_ECX, 5 }, { "sse4a", X1, 0, CPUID_ECX, 6 },
	{ "misalignsse", X1, 0, CPUID_ECX, 7 }, { "3dnowprefetch", X1, 0, CPUID_ECX, 8 },
	{ "xop", X1, 0, CPUID_ECX, 11 }, { "fma4", X1, 0, CPUID_ECX, 16 },
	{ "tbm", X1, 0, CPUID_ECX, 21 }, { "topoext", X1, 0, CPUID_ECX, 22 },
	/* CPUID.80000001H:EDX */
	{ "syscall", X1, 0, CPUID_EDX, 11 }, { "nx", X1, 0, CPUID_EDX, 20 },
	{ "mmxext", X1, 0, CPUID_EDX, 22 }, { "fxsr-opt", X1, 0, CPUID_EDX, 25 },
	{ "pdpe1gb", X1, 0, CPUID_EDX, 26 }, { "rdtscp", X1, 0, CPUID_EDX, 27 },
	{ "lm", X1, 0, CPUID_EDX, 29 },
	/* CPUID.80000007H:EDX */
	{ "invtsc", X7, 0, CPUID_EDX, 8 },
};

static const struct cpu_feature *feature_find(const char *name)
{
	/* QEMU takes "lahf_lm" for "lahf-lm", and so on. */
	char *canon = g_strdup(name);
	const struct cpu_feature *f = NULL;

	g_strdelimit(canon, "_", '-');
	for (size_t i = 0; i < G_N_ELEMENTS(features) && !f; i++)
		if (!strcmp(features[i].name, canon))
			f = &features[i];
	g_free(canon);
	return f;
}

static int parse_bool(const char *key, const char *v, bool *out, char *err, size_t errlen)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
		*out = true;
	} else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) {
		*out = false;
	} else {
		snprintf(err, errlen, "-cpu: %s=%s: expected on or off", key, v);
		return -EINVAL;
	}
	return 0;
}

/* One "+f", "-f", "f=on|off" or property of the list after the model. */
static int parse_item(struct cpu_model *cm, char *item, char *err, size_t errlen)
{
	char *eq = strchr(item, '=');
	const char *name = item, *value = "on";
	const struct cpu_feature *f;
	bool on;

	if (*item == '+' || *item == '-') {
		name = item + 1;
		value = *item == '+' ? "on" : "off";
	} else if (eq) {
		*eq = 0;
		value = eq + 1;
	}
	if (parse_bool(name, value, &on, err, errlen))
		return -EINVAL;
	if (!strcmp(name, "migratable")) {
		cm->keep_invtsc = !on;
		return 0;
	}
	if (!strcmp(name, "kvm")) {
		cm->hide_kvm = !on;
		return 0;
	}
	/* vireo always refuses a model it cannot give in full, as QEMU's enforce. */
	if (!strcmp(name, "enforce") || !strcmp(name, "check"))
		return 0;
	f = feature_find(name);
	if (!f) {
		snprintf(err, errlen, "-cpu: unknown feature or property '%s' (-cpu help lists them)",
			 name);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cm->nr; i++) {
		if (cm->req[i].f->leaf == f->leaf && cm->req[i].f->reg == f->reg &&
		    cm->req[i].f->bit == f->bit) {
			cm->req[i].on = on;	/* the last word wins, as in QEMU */
			return 0;
		}
	}
	if (cm->nr == CPU_MODEL_MAX_FEATURES) {
		snprintf(err, errlen, "-cpu: more than %d features", CPU_MODEL_MAX_FEATURES);
		return -E2BIG;
	}
	cm->req[cm->nr].f = f;
	cm->req[cm->nr++].on = on;
	return 0;
}

int cpu_model_parse(const char *arg, struct cpu_model *cm, char *err, size_t errlen)
{
	char **items = g_strsplit(arg, ",", -1);
	int ret = 0;

	memset(cm, 0, sizeof(*cm));
	if (!items[0] || (strcmp(items[0], "host") && strcmp(items[0], "max"))) {
		snprintf(err, errlen, "-cpu %s: unknown CPU model '%s'; vireo offers 'host' (KVM) "
			 "and 'max'", arg, items[0] ? items[0] : "");
		ret = -EINVAL;
	} else {
		cm->host = !strcmp(items[0], "host");
	}
	for (unsigned i = 1; !ret && items[i]; i++) {
		if (!*items[i]) {
			snprintf(err, errlen, "-cpu %s: empty item", arg);
			ret = -EINVAL;
		} else {
			ret = parse_item(cm, items[i], err, errlen);
		}
	}
	g_strfreev(items);
	return ret;
}

void cpu_model_print_help(void)
{
	printf("CPU models:\n"
	       "  host    what KVM supports on this host (KVM only)\n"
	       "  max     host under KVM; everything the translator implements under TCG\n"
	       "Properties: migratable=on|off (off keeps the invariant TSC), kvm=on|off\n"
	       "(off hides the KVM leaves), enforce, check.\n"
	       "Features (+F or F=on: required; -F or F=off: hidden from the guest):\n");
	for (size_t i = 0; i < G_N_ELEMENTS(features); i++)
		printf("%s%s", i % 8 ? " " : "  ", features[i].name);
	printf("\n");
}

void cpu_model_filter(const struct cpu_model *cm, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	if (!cm->keep_invtsc && leaf == X7)
		r[CPUID_EDX] &= ~(1u << 8);		/* invtsc */
	for (unsigned i = 0; i < cm->nr; i++) {
		const struct cpu_feature *f = cm->req[i].f;

		if (!cm->req[i].on && f->leaf == leaf && f->sub == sub)
			r[f->reg] &= ~(1u << f->bit);
	}
}

bool cpu_model_hides_leaf(const struct cpu_model *cm, uint32_t leaf)
{
	return cm->hide_kvm && leaf >= 0x40000000 && leaf <= 0x400000ff;
}

int cpu_model_check(const struct cpu_model *cm, const char *accel, cpu_model_cpuid_fn *cpuid,
		    void *opaque, char *err, size_t errlen)
{
	GString *missing = g_string_new(NULL);
	int ret = 0;

	for (unsigned i = 0; i < cm->nr; i++) {
		const struct cpu_feature *f = cm->req[i].f;
		uint32_t r[4];

		if (!cm->req[i].on)
			continue;
		cpuid(opaque, f->leaf, f->sub, r);
		if (!(r[f->reg] & (1u << f->bit)))
			g_string_append_printf(missing, "%s%s", missing->len ? ", " : "", f->name);
	}
	if (missing->len) {
		snprintf(err, errlen, "-cpu: %s cannot offer the guest: %s", accel, missing->str);
		ret = -ENOTSUP;
	}
	g_string_free(missing, TRUE);
	return ret;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

unsigned cpu_topology_thread_bits(const struct cpu_topology *t)
{
	return bits_for(t->threads);
}

unsigned cpu_topology_core_bits(const struct cpu_topology *t)
{
	return bits_for(t->cores);
}

unsigned cpu_topology_package_span(const struct cpu_topology *t)
{
	unsigned span = 1u << (cpu_topology_thread_bits(t) + cpu_topology_core_bits(t));

	return span > 255 ? 255 : span;
}

/*
 * Subleaf 0 is the SMT level, 1 the core level (its shift reaches the
 * package ID), 2 the terminator with only its number in ECX; EDX is the
 * x2APIC ID in every subleaf (Intel SDM vol. 2A, CPUID leaf 0BH).
 */
void cpu_topology_leaf(const struct cpu_topology *t, uint32_t apic_id, uint32_t sub,
		       uint32_t r[4])
{
	unsigned tb = cpu_topology_thread_bits(t);

	r[0] = r[1] = 0;
	r[2] = sub & 0xff;
	r[3] = apic_id;
	if (sub == 0) {
		r[0] = tb;
		r[1] = t->threads;
		r[2] |= 1u << 8;
	} else if (sub == 1) {
		r[0] = tb + cpu_topology_core_bits(t);
		r[1] = t->cores * t->threads;
		r[2] |= 2u << 8;
	}
}
