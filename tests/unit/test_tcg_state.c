/*
 * TCG migration state (accel/tcg/tcg_state.c, hw/irqchip_state.c): a vCPU
 * stopped in 64-bit mode with lazily computed flags, x87 and SSE values,
 * an MSR and a running LAPIC timer is saved on one machine and loaded on
 * another (its RAM copied over, as the RAM stream would): it goes on with
 * the same flags, registers and timer; saving it again gives the same
 * fields.  Every field a hostile stream could set out of range is refused
 * with a message naming it, and the vCPU and irqchip stay as they were.
 */
#include "test_tcg_harness.h"
#include "vmstate.h"

#define OUT	0x6000

static const char *guest_code =
	".code64\n"
	"mov %cr4, %rax\n"
	"or $0x600, %rax\n"			/* OSFXSR, OSXMMEXCPT */
	"mov %rax, %cr4\n"
	"movabs $0x1122334455667788, %rax\n"
	"mov %rax, %r15\n"
	"movq %rax, %xmm3\n"
	"fldpi\n"
	"fld1\n"
	"mov $0xc0000102, %ecx\n"		/* KERNEL_GS_BASE */
	"mov $0xdead0000, %eax\n"
	"xor %edx, %edx\n"
	"wrmsr\n"
	"mov $0xfee00000, %ebx\n"		/* the LAPIC page */
	"orl $0x100, 0xf0(%rbx)\n"		/* software-enable the LAPIC */
	"movl $0xb, 0x3e0(%rbx)\n"		/* divide by 1 */
	"movl $0x10040, 0x320(%rbx)\n"		/* one-shot, masked, vector 0x40 */
	"movl $0x7fffffff, 0x380(%rbx)\n"	/* about 2 s at 1 GHz */
	"mov $1, %r8\n"
	"cmp $2, %r8\n"				/* CF SF AF PF, kept lazily */
	"out %al, $0xf4\n"			/* stop here: save */
	"setb %cl\n"
	"sets %dl\n"
	"pushfq\n"
	"pop %r9\n"
	"mov %r9, 0x6000\n"
	"movzbl %cl, %ecx\n"
	"mov %rcx, 0x6008\n"
	"movzbl %dl, %edx\n"
	"mov %rdx, 0x6010\n"
	"fstpl 0x6018\n"			/* 1.0 */
	"fstpl 0x6020\n"			/* pi */
	"movq %xmm3, 0x6028\n"
	"mov %r15, 0x6030\n"
	"mov $0xc0000102, %ecx\n"
	"rdmsr\n"
	"mov %eax, 0x6038\n"
	"mov 0x390(%rbx), %eax\n"		/* LAPIC current count */
	"mov %eax, 0x6040\n"
	"out %al, $0xf4\n";

struct saved {
	struct vmstate_out vm, cpu;
};

static void save(struct tvm *t, struct saved *s)
{
	vmstate_out_init(&s->vm);
	vmstate_out_init(&s->cpu);
	g_assert_cmpint(tcg_accel_ops.vm_save(&t->m, &s->vm), ==, 0);
	g_assert_cmpint(tcg_accel_ops.vcpu_save(&t->v[0], &s->cpu), ==, 0);
}

static void saved_free(struct saved *s)
{
	vmstate_out_free(&s->vm);
	vmstate_out_free(&s->cpu);
}

static int load_one(struct tvm *t, const char *section, const uint8_t *buf, size_t len,
		    char *err, size_t errlen)
{
	struct vmstate_in in = { .buf = buf, .len = len, .section = section,
				 .version = TCG_STATE_VERSION, .err = err, .errlen = errlen };
	int ret;

	err[0] = 0;
	if (!strcmp(section, "tcg-vm"))
		ret = tcg_accel_ops.vm_load(&t->m, &in);
	else
		ret = tcg_accel_ops.vcpu_load(&t->v[0], &in);
	return ret ? ret : vmstate_in_finish(&in);
}

/* The value of the first field called name; *len its size. */
static uint8_t *field(uint8_t *buf, size_t len, const char *name, uint32_t *flen)
{
	size_t pos = 0;

	while (pos < len) {
		uint8_t nl = buf[pos];
		uint32_t sz;

		memcpy(&sz, buf + pos + 1 + nl, 4);
		if (nl == strlen(name) && !memcmp(buf + pos + 1, name, nl)) {
			*flen = sz;
			return buf + pos + 1 + nl + 4;
		}
		pos += 1 + nl + 4 + sz;
	}
	g_assert_not_reached();
	return NULL;
}

/* Two saves agree on every field but those that move with time. */
static void assert_same_fields(const struct vmstate_out *a, const struct vmstate_out *b)
{
	size_t pa = 0, pb = 0;

	while (pa < a->len && pb < b->len) {
		uint8_t na = a->buf[pa], nb = b->buf[pb];
		uint32_t sa, sb;
		char name[256];

		memcpy(&sa, a->buf + pa + 1 + na, 4);
		memcpy(&sb, b->buf + pb + 1 + nb, 4);
		g_assert_cmpmem(a->buf + pa + 1, na, b->buf + pb + 1, nb);
		memcpy(name, a->buf + pa + 1, na);
		name[na] = 0;
		if (strcmp(name, "tsc") && strcmp(name, "clock-ns")) {
			if (sa != sb || memcmp(a->buf + pa + 5 + na, b->buf + pb + 5 + nb, sa))
				g_error("field %s differs after a save/load round trip", name);
		}
		pa += 1 + na + 4 + sa;
		pb += 1 + nb + 4 + sb;
	}
	g_assert_cmpuint(pa, ==, a->len);
	g_assert_cmpuint(pb, ==, b->len);
}

static struct tvm *stopped_source(void)
{
	struct tvm *a = tm_new(16 << 20, 1, true);

	tm_load_asm(a, 0x1000, guest_code);
	tm_long64(a, 0, 0x1000);
	/* The 4th GiB, where the LAPIC is, as one 1 GiB page. */
	tm_wr(a, 0x11000 + 3 * 8, 0xc0000000ull | 0x83, 8);
	g_assert_cmpint(tm_run(a, 0), ==, ACCEL_EXIT_KICK);
	g_assert_cmpuint(a->nr_out, ==, 1);
	return a;
}

/* A destination whose vCPU waits for SIPI: nothing of it may survive the load. */
static struct tvm *destination(struct tvm *a)
{
	struct tvm *b = tm_new(16 << 20, 1, true);

	g_assert_cmpint(tcg_accel_ops.vcpu_reset(&b->v[0], NULL), ==, 0);
	memcpy(tm_ptr(b, 0), tm_ptr(a, 0), 16 << 20);
	return b;
}

static void load_all(struct tvm *b, struct saved *s)
{
	char err[512];

	g_assert_cmpint(load_one(b, "tcg-vm", s->vm.buf, s->vm.len, err, sizeof(err)), ==, 0);
	g_assert_cmpint(load_one(b, "tcg-cpu", s->cpu.buf, s->cpu.len, err, sizeof(err)), ==, 0);
}

static void test_roundtrip(void)
{
	struct tvm *a = stopped_source(), *b;
	struct saved sa, sb;
	uint64_t flags = tcg_get_flags(a->c[0]), tsc_a, pi;
	double one;

	g_assert_cmpuint(a->c[0]->cc_op, !=, CC_EFLAGS);	/* the flags are lazy */
	tsc_a = tcg_read_tsc(a->c[0]);	/* before the save: the stream holds a later value */
	save(a, &sa);
	b = destination(a);
	load_all(b, &sa);
	g_assert_false(b->c[0]->wait_sipi);
	g_assert_cmpuint(tcg_get_flags(b->c[0]), ==, flags);
	g_assert_cmpuint(tcg_read_tsc(b->c[0]), >=, tsc_a);
	save(b, &sb);
	assert_same_fields(&sa.vm, &sb.vm);
	assert_same_fields(&sa.cpu, &sb.cpu);

	/* It runs on where it stopped, from the loaded state. */
	g_assert_cmpint(tm_run(b, 0), ==, ACCEL_EXIT_KICK);
	g_assert_cmpuint(b->nr_out, ==, 1);
	g_assert_cmpuint(tm_rd(b, OUT, 8) & F_ARITH, ==, flags & F_ARITH);
	g_assert_cmpuint(tm_rd(b, OUT + 8, 8), ==, 1);		/* setb: CF */
	g_assert_cmpuint(tm_rd(b, OUT + 16, 8), ==, 1);		/* sets: SF */
	one = 0;
	memcpy(&one, tm_ptr(b, OUT + 0x18), 8);
	g_assert_cmpfloat(one, ==, 1.0);
	pi = tm_rd(b, OUT + 0x20, 8);
	g_assert_cmpuint(pi, ==, 0x400921fb54442d18ull);
	g_assert_cmpuint(tm_rd(b, OUT + 0x28, 8), ==, 0x1122334455667788ull);
	g_assert_cmpuint(tm_rd(b, OUT + 0x30, 8), ==, 0x1122334455667788ull);
	g_assert_cmpuint(tm_rd(b, OUT + 0x38, 4), ==, 0xdead0000);
	/* The LAPIC timer kept counting down from where it was, not reset. */
	g_assert_cmpuint(tm_rd(b, OUT + 0x40, 4), >, 0);
	g_assert_cmpuint(tm_rd(b, OUT + 0x40, 4), <, 0x7fffffff);
	saved_free(&sa);
	saved_free(&sb);
	tm_free(a);
	tm_free(b);
}

struct bad_case {
	const char *section, *field;
	unsigned off, bytes;
	uint64_t value;			/* written at off, little-endian */
	const char *message;		/* must be in the error */
};

static const struct bad_case bad_cases[] = {
	{ "tcg-cpu", "cr4", 0, 8, 1u << 20, "cr4" },		/* SMEP, not offered */
	{ "tcg-cpu", "cr0", 0, 8, 0x80000000, "cr0" },		/* PG without PE */
	{ "tcg-cpu", "efer", 0, 8, 0x100, "LMA" },		/* long mode without LMA */
	{ "tcg-cpu", "rflags", 0, 8, 0x0a, "rflags" },		/* reserved bit 3 */
	{ "tcg-cpu", "cpl", 0, 1, 9, "cpl" },
	{ "tcg-cpu", "seg.cs", 16, 1, 7, "seg.cs" },		/* DPL 7 */
	{ "tcg-cpu", "seg.ss", 14, 1, 0x1f, "seg.ss" },		/* type beyond 4 bits */
	{ "tcg-cpu", "seg.ds", 15, 1, 2, "not a flag" },	/* present = 2 */
	{ "tcg-cpu", "cr3", 0, 8, 1ull << 45, "cr3" },
	{ "tcg-cpu", "gdtr", 0, 8, 0x0000900000000000ull, "gdtr" },
	{ "tcg-cpu", "msr.lstar", 0, 8, 0x0000800000000000ull, "msr.lstar" },
	{ "tcg-cpu", "msr.apic-base", 0, 8, 1u << 9, "msr.apic-base" },
	{ "tcg-cpu", "fxsave", 24, 4, 0x10000, "MXCSR" },
	{ "tcg-cpu", "sipi-pending", 0, 2, 0x1234, "sipi" },
	{ "tcg-cpu", "dr", 7 * 8 + 4, 4, 1, "dr6/dr7" },
	{ "tcg-vm", "nr-cpus", 0, 4, 5, "LAPICs" },
	{ "tcg-vm", "lapic.irr", 0, 4, 1u << 3, "IRR" },
	{ "tcg-vm", "lapic.isr", 0, 4, 1u << 15, "ISR" },
	{ "tcg-vm", "lapic.lvt", 4, 4, 1u << 20, "LVT" },
	{ "tcg-vm", "lapic.apic-base", 0, 8, 0xfee00000, "BSP" },
	{ "tcg-vm", "lapic.tpr", 0, 4, 0x100, "TPR" },
	{ "tcg-vm", "lapic.divide-conf", 0, 4, 0x4, "divide" },
	{ "tcg-vm", "lapic.timer-period", 0, 8, ~0ull, "period" },
	{ "tcg-vm", "ioapic.nr-pins", 0, 4, 64, "pins" },
	{ "tcg-vm", "ioapic.rte", 0, 8, 1u << 20, "IOAPIC pin 0" },
	{ "tcg-vm", "ioapic.id", 0, 4, 0x10, "IOAPIC register select" },
	{ "tcg-vm", "lowest-rr", 0, 4, 1, "round robin" },
	{ "tcg-vm", "ioapic.line", 0, 8, 1ull << 40, "levels" },
	{ "tcg-vm", "pic.base", 0, 1, 0x21, "8259" },
	{ "tcg-vm", "pic.elcr", 0, 1, 0x01, "ELCR" },
	{ "tcg-vm", "pit.mode", 0, 1, 7, "PIT" },
	{ "tcg-vm", "pit.reload", 0, 4, 70000, "PIT" },
	{ "tcg-vm", "pit.port61", 0, 1, 0xf0, "0x61" },
};

static void test_hostile_fields(void)
{
	struct tvm *a = stopped_source(), *b;
	struct saved sa, before, after;

	save(a, &sa);
	b = destination(a);
	load_all(b, &sa);
	save(b, &before);
	for (unsigned i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		const struct bad_case *bc = &bad_cases[i];
		const struct vmstate_out *src = strcmp(bc->section, "tcg-vm") ? &sa.cpu : &sa.vm;
		uint8_t *copy = g_memdup2(src->buf, src->len), *p;
		char err[512];
		uint32_t flen;
		int ret;

		p = field(copy, src->len, bc->field, &flen);
		g_assert_cmpuint(bc->off + bc->bytes, <=, flen);
		memcpy(p + bc->off, &bc->value, bc->bytes);
		ret = load_one(b, bc->section, copy, src->len, err, sizeof(err));
		if (ret != -EINVAL || !strstr(err, bc->message))
			g_error("%s %s: load returned %d, message '%s' (wanted '%s')", bc->section,
				bc->field, ret, err, bc->message);
		g_free(copy);
	}
	/* Nothing of the refused streams reached the machine. */
	save(b, &after);
	assert_same_fields(&before.vm, &after.vm);
	assert_same_fields(&before.cpu, &after.cpu);
	saved_free(&sa);
	saved_free(&before);
	saved_free(&after);
	tm_free(a);
	tm_free(b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tcg/state/roundtrip", test_roundtrip);
	g_test_add_func("/tcg/state/hostile-fields", test_hostile_fields);
	return g_test_run();
}
