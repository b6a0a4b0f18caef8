/*
 * Test harness for the TCG accelerator: a struct machine with guest RAM
 * and buses, one TCG vCPU driven directly through tcg_accel_ops, code
 * assembled at test time with the system's `as`, and page-table and
 * descriptor builders.  Shared by tests/unit/test_tcg*.c.
 */
#ifndef VIREO_TEST_TCG_HARNESS_H
#define VIREO_TEST_TCG_HARNESS_H

#include <glib.h>
#include <glib/gstdio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "accel/tcg/tcg.h"
#include "bus.h"
#include "cpu.h"
#include "machine.h"
#include "memory.h"
#include "vcpu.h"

#define TM_MAX_CPUS 4

struct tvm {
	struct machine m;
	struct vcpu v[TM_MAX_CPUS];
	struct vcpu *vp[TM_MAX_CPUS];
	struct tcg_cpu *c[TM_MAX_CPUS];
	unsigned nr;
	bool irqchip;
	/* The test port device (0xf4..0xf7): what the guest wrote. */
	uint64_t out[64];
	unsigned nr_out;
	uint64_t in_value;
};

#define TEST_PORT 0xf4

static uint64_t tm_port_read(void *opaque, uint64_t off, unsigned size)
{
	struct tvm *t = opaque;

	return t->in_value;
}

/*
 * A write to the test port records the value and kicks the writer, so a
 * test can stop the guest where it wants even when hlt would sleep.
 * Several vCPU threads may write at once while the test thread polls
 * nr_out: each writer reserves its slot atomically.  out[] itself is
 * read only after the vCPU threads are joined.
 */
static void tm_port_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct tvm *t = opaque;
	unsigned n = __atomic_load_n(&t->nr_out, __ATOMIC_RELAXED);

	while (n < 64 && !__atomic_compare_exchange_n(&t->nr_out, &n, n + 1, false,
						      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
	if (n < 64)
		t->out[n] = v;
	if (off == 0 && current_vcpu)
		tcg_accel_ops.vcpu_kick(current_vcpu);
}

static const struct bus_ops tm_port_ops = { .read = tm_port_read, .write = tm_port_write };

/*
 * Whether the machines tm_new builds run host code (-accel tcg,jit=on,
 * the default) or the interpreter; tm_add_both registers a test in both.
 */
static bool tm_jit = true;

struct tm_mode_test {
	void (*fn)(void);
	bool jit;
};

static void tm_run_in_mode(gconstpointer data)
{
	const struct tm_mode_test *m = data;

	tm_jit = m->jit;
	m->fn();
	tm_jit = true;
}

/* Register fn as PREFIX/jit/NAME and PREFIX/interp/NAME. */
static inline void tm_add_both(const char *prefix, const char *name, void (*fn)(void))
{
	for (int jit = 1; jit >= 0; jit--) {
		struct tm_mode_test *m = g_new0(struct tm_mode_test, 1);
		char *path = g_strdup_printf("%s/%s/%s", prefix, jit ? "jit" : "interp", name);

		m->fn = fn;
		m->jit = jit;
		g_test_add_data_func_full(path, m, tm_run_in_mode, g_free);
		g_free(path);
	}
}

static inline struct tvm *tm_new(uint64_t ram, unsigned nr_cpus, bool irqchip)
{
	struct tvm *t = g_new0(struct tvm, 1);
	char err[256] = "";

	t->nr = nr_cpus;
	t->irqchip = irqchip;
	t->m.cfg.smp = nr_cpus;
	t->m.cfg.ram_size = ram;
	t->m.nr_irq_pins = 24;
	pthread_mutex_init(&t->m.lock, NULL);
	bus_init(&t->m.pio, "pio");
	bus_init(&t->m.mmio, "mmio");
	g_assert_cmpint(guest_mem_init(&t->m.mem, ram, NULL, false, err, sizeof(err)), ==, 0);
	if (irqchip) {
		t->m.cfg.accel = tm_jit ? "tcg,jit=on" : "tcg,jit=off";
		g_assert_cmpint(tcg_accel_ops.vm_init(&t->m, err, sizeof(err)), ==, 0);
	} else {
		struct tcg_vm *vm = g_new0(struct tcg_vm, 1);

		vm->m = &t->m;
		vm->jit = tm_jit;
		pthread_mutex_init(&vm->atomic_lock, NULL);
		t->m.accel_state = vm;
	}
	t->m.accel = &tcg_accel_ops;
	g_assert_cmpint(bus_register(&t->m.pio, TEST_PORT, 4, &tm_port_ops, t, "test"), ==, 0);
	for (unsigned i = 0; i < nr_cpus; i++) {
		t->v[i].m = &t->m;
		t->v[i].index = i;
		t->v[i].apic_id = i;
		t->vp[i] = &t->v[i];
		g_assert_cmpint(tcg_accel_ops.vcpu_init(&t->v[i], err, sizeof(err)), ==, 0);
		t->c[i] = t->v[i].accel_state;
	}
	t->m.vcpus = t->vp;
	t->m.nr_vcpus = nr_cpus;
	return t;
}

static inline void tm_free(struct tvm *t)
{
	for (unsigned i = 0; i < t->nr; i++)
		tcg_accel_ops.vcpu_destroy(&t->v[i]);
	if (t->irqchip) {
		tcg_accel_ops.vm_destroy(&t->m);
	} else {
		struct tcg_vm *vm = t->m.accel_state;

		free(vm->dirty);
		g_free(vm);
	}
	guest_mem_destroy(&t->m.mem);
	bus_destroy(&t->m.pio);
	bus_destroy(&t->m.mmio);
	g_free(t);
}

static inline void *tm_ptr(struct tvm *t, uint64_t gpa)
{
	void *p = gpa_to_hva(&t->m.mem, gpa, 1);

	g_assert_nonnull(p);
	return p;
}

static inline uint64_t tm_rd(struct tvm *t, uint64_t gpa, unsigned n)
{
	uint64_t v = 0;

	g_assert_cmpint(guest_read(&t->m.mem, gpa, &v, n), ==, 0);
	return v;
}

static inline void tm_wr(struct tvm *t, uint64_t gpa, uint64_t v, unsigned n)
{
	g_assert_cmpint(guest_write(&t->m.mem, gpa, &v, n), ==, 0);
}

/* Assemble src (GNU as syntax) and return the flat binary. */
static inline uint8_t *tm_asm(const char *src, size_t *len)
{
	char *dir = g_dir_make_tmp("vireo-tcg-XXXXXX", NULL);
	char *s = g_build_filename(dir, "a.S", NULL), *o = g_build_filename(dir, "a.o", NULL);
	char *b = g_build_filename(dir, "a.bin", NULL);
	char *cmd, *out = NULL;
	gsize n = 0;
	int status;

	g_assert_nonnull(dir);
	g_assert_true(g_file_set_contents(s, src, -1, NULL));
	cmd = g_strdup_printf("as --64 -o %s %s && objcopy -O binary -j .text %s %s", o, s, o, b);
	status = system(cmd);
	if (status != 0)
		g_error("as failed on:\n%s", src);
	g_assert_true(g_file_get_contents(b, &out, &n, NULL));
	g_unlink(s);
	g_unlink(o);
	g_unlink(b);
	g_rmdir(dir);
	g_free(cmd);
	g_free(s);
	g_free(o);
	g_free(b);
	g_free(dir);
	*len = n;
	return (uint8_t *)out;
}

/* Assemble src and copy it into guest RAM at gpa. */
static inline size_t tm_load_asm(struct tvm *t, uint64_t gpa, const char *src)
{
	size_t n;
	uint8_t *code = tm_asm(src, &n);

	g_assert_cmpint(guest_write(&t->m.mem, gpa, code, n), ==, 0);
	g_free(code);
	return n;
}

/* Run vCPU i until an exit; returns the exit reason. */
static inline int tm_run(struct tvm *t, unsigned i)
{
	struct accel_exit e;

	current_vcpu = &t->v[i];
	g_assert_cmpint(tcg_accel_ops.vcpu_run(&t->v[i], &e), ==, 0);
	return e.reason;
}

/* Identity-map the first 1 GiB with 2 MiB pages, 4-level, tables at pt. */
static inline uint64_t tm_map_identity64(struct tvm *t, uint64_t pt)
{
	tm_wr(t, pt, (pt + 0x1000) | 3, 8);			/* PML4[0] */
	tm_wr(t, pt + 0x1000, (pt + 0x2000) | 3, 8);		/* PDPT[0] */
	for (uint64_t k = 0; k < 512; k++)
		tm_wr(t, pt + 0x2000 + k * 8, (k << 21) | 0x83, 8);
	return pt;
}

/*
 * A GDT at base: 0x08 code32 DPL0, 0x10 code64 (or code32) DPL0, 0x18 data DPL0,
 * 0x20 code32 DPL3, 0x28 data DPL3, 0x30 code64 DPL3 (the syscall/sysret
 * layout Linux uses), 0x38 a 64-bit TSS at base + 0x100 (16 bytes).
 */
static inline void tm_gdt(struct tvm *t, uint64_t base, bool long_mode)
{
	uint64_t tss = base + 0x100;

	tm_wr(t, base + 0x00, 0, 8);
	tm_wr(t, base + 0x08, 0x00cf9b000000ffffull, 8);
	/* 0x10 is the boot code segment: 64-bit, or 32-bit for flat32 */
	tm_wr(t, base + 0x10, long_mode ? 0x00af9b000000ffffull : 0x00cf9b000000ffffull, 8);
	tm_wr(t, base + 0x18, 0x00cf93000000ffffull, 8);
	tm_wr(t, base + 0x20, 0x00cffb000000ffffull, 8);
	tm_wr(t, base + 0x28, 0x00cff3000000ffffull, 8);
	tm_wr(t, base + 0x30, 0x00affb000000ffffull, 8);
	tm_wr(t, base + 0x38, 0x0000890000000067ull | ((tss & 0xffffff) << 16) |
	      ((tss >> 24) << 56), 8);
	tm_wr(t, base + 0x40, tss >> 32, 8);
}

/* A vCPU in 64-bit mode at rip, paging from tm_map_identity64(0x10000),
 * GDT at 0x20000, stack at 0x80000. */
static inline void tm_long64(struct tvm *t, unsigned i, uint64_t rip)
{
	struct cpu_state s;

	memset(&s, 0, sizeof(s));
	tm_map_identity64(t, 0x10000);
	tm_gdt(t, 0x20000, true);
	cpu_state_long64(&s, 0x10000, 0x20000);
	s.gdt.limit = 0x47;
	s.rip = rip;
	s.gpr[R_RSP] = 0x80000;
	g_assert_cmpint(tcg_accel_ops.vcpu_reset(&t->v[i], &s), ==, 0);
}

static inline void tm_flat32(struct tvm *t, unsigned i, uint64_t eip)
{
	struct cpu_state s;

	memset(&s, 0, sizeof(s));
	tm_gdt(t, 0x20000, false);
	cpu_state_flat32(&s);
	s.gdt.base = 0x20000;
	s.gdt.limit = 0x47;
	s.rip = eip;
	s.gpr[R_RSP] = 0x80000;
	g_assert_cmpint(tcg_accel_ops.vcpu_reset(&t->v[i], &s), ==, 0);
}

static inline void tm_real(struct tvm *t, unsigned i, uint16_t cs, uint16_t ip)
{
	struct cpu_state s;

	cpu_state_reset(&s);
	s.cs.selector = cs;
	s.cs.base = (uint64_t)cs << 4;
	s.rip = ip;
	s.gpr[R_RSP] = 0x7000;
	g_assert_cmpint(tcg_accel_ops.vcpu_reset(&t->v[i], &s), ==, 0);
}

/* vCPU i of t running (tm_run) on a thread of its own, for tests of cross-thread events. */
struct runner {
	struct tvm *t;
	unsigned i;
	int reason;
	pthread_t th;
};

static inline void *runner_thread(void *opaque)
{
	struct runner *r = opaque;

	r->reason = tm_run(r->t, r->i);
	return NULL;
}

static inline void runner_start(struct runner *r, struct tvm *t, unsigned i)
{
	r->t = t;
	r->i = i;
	g_assert_cmpint(pthread_create(&r->th, NULL, runner_thread, r), ==, 0);
}

#endif
