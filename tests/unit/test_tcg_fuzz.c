/*
 * Robustness: random bytes executed as ring-0 code in real, 32-bit and
 * 64-bit mode (fixed seeds) must never crash or hang the VMM.  Whatever
 * the guest does (reload CR3, load garbage descriptor tables, wrmsr,
 * fault in a loop), vcpu_run returns one of its exit reasons; a watchdog
 * thread kicks the vCPU so endless guest loops end the run.
 */
#include "test_tcg_harness.h"

struct watchdog {
	struct tvm *t;
	bool stop;
	pthread_t th;
};

static void *watchdog_thread(void *opaque)
{
	struct watchdog *w = opaque;

	while (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST)) {
		g_usleep(2000);
		tcg_accel_ops.vcpu_kick(&w->t->v[0]);
	}
	return NULL;
}

static bool has_error_code(unsigned v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17;
}

/* Handlers that skip one byte and return, so random code keeps running
 * past its faults: every byte offset gets decoded. */
static void skip_handlers(struct tvm *t, unsigned mode)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t h = 0x2000 + 16 * v;
		uint8_t stub[16];
		unsigned n = 0;

		if (mode == 2) {
			static const uint8_t pop8[] = { 0x48, 0x83, 0xc4, 0x08 };
			static const uint8_t inc[] = { 0x48, 0xff, 0x04, 0x24, 0x48, 0xcf };

			if (has_error_code(v)) {
				memcpy(stub, pop8, 4);
				n = 4;
			}
			memcpy(stub + n, inc, sizeof(inc));
			n += sizeof(inc);
			tm_wr(t, 0x30000 + 16 * v, (h & 0xffff) | (0x10ull << 16) | (0x8eull << 40) |
			      ((h >> 16) << 48), 8);
			tm_wr(t, 0x30000 + 16 * v + 8, 0, 8);
		} else {
			static const uint8_t pop4[] = { 0x83, 0xc4, 0x04 };
			static const uint8_t inc[] = { 0xff, 0x04, 0x24, 0xcf };

			if (has_error_code(v)) {
				memcpy(stub, pop4, 3);
				n = 3;
			}
			memcpy(stub + n, inc, sizeof(inc));
			n += sizeof(inc);
			tm_wr(t, 0x30000 + 8 * v, (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40), 8);
		}
		g_assert_cmpint(guest_write(&t->m.mem, h, stub, n), ==, 0);
	}
}

static void fuzz_mode(unsigned mode, uint32_t seed, unsigned rounds)
{
	struct tvm *t = tm_new(16 << 20, 1, false);
	struct watchdog w = { .t = t };
	GRand *r = g_rand_new_with_seed(seed);
	unsigned exits[ACCEL_EXIT_ERROR + 1] = { 0 };

	g_assert_cmpint(pthread_create(&w.th, NULL, watchdog_thread, &w), ==, 0);
	for (unsigned k = 0; k < rounds; k++) {
		uint8_t code[256];
		int reason;

		for (unsigned b = 0; b < sizeof(code); b++)
			code[b] = g_rand_int(r);
		/* Bias towards prefixes and two-byte opcodes. */
		for (unsigned b = 0; b < sizeof(code); b += g_rand_int_range(r, 3, 9))
			code[b] = (uint8_t[]){ 0x0f, 0x66, 0x67, 0xf3, 0x48, 0xf0, 0x0f, 0x41 }
				[g_rand_int_range(r, 0, 8)];
		g_assert_cmpint(guest_write(&t->m.mem, 0x1000, code, sizeof(code)), ==, 0);
		/* A quarter of the rounds get a random IDT, the rest skipping handlers. */
		if (mode == 0 || k % 4 == 0) {
			for (unsigned b = 0; b < 64; b++)
				tm_wr(t, 0x30000 + 8 * b, ((uint64_t)g_rand_int(r) << 32) |
				      g_rand_int(r), 8);
		} else {
			skip_handlers(t, mode);
		}
		switch (mode) {
		case 0: tm_real(t, 0, 0x100, 0); break;
		case 1: tm_flat32(t, 0, 0x1000); break;
		default: tm_long64(t, 0, 0x1000); break;
		}
		/* SSE enabled too, so random bytes reach the x87/MMX/SSE helpers */
		t->c[0]->cr4 |= CR4_OSFXSR;
		t->c[0]->idt.base = 0x30000;
		t->c[0]->idt.limit = mode == 2 ? 0xfff : mode == 1 ? 0x7ff : 0x1ff;
		for (unsigned runs = 0; runs < 4; runs++) {
			reason = tm_run(t, 0);
			/* Never an internal error: every guest action is handled. */
			if (reason < ACCEL_EXIT_PIO || reason >= ACCEL_EXIT_ERROR)
				g_error("round %u: exit reason %d", k, reason);
			exits[reason]++;
			if (reason != ACCEL_EXIT_KICK)
				break;
		}
		t->c[0]->halted = false;
	}
	__atomic_store_n(&w.stop, true, __ATOMIC_SEQ_CST);
	pthread_join(w.th, NULL);
	g_test_message("mode %u: %u halts, %u shutdowns, %u kicks", mode,
		       exits[ACCEL_EXIT_HALT], exits[ACCEL_EXIT_SHUTDOWN], exits[ACCEL_EXIT_KICK]);
	g_rand_free(r);
	tm_free(t);
}

static void test_fuzz_real(void)
{
	fuzz_mode(0, 1, 300);
}

static void test_fuzz_32(void)
{
	fuzz_mode(1, 2, 300);
}

static void test_fuzz_64(void)
{
	fuzz_mode(2, 3, 300);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tcg/fuzz/real", test_fuzz_real);
	g_test_add_func("/tcg/fuzz/flat32", test_fuzz_32);
	g_test_add_func("/tcg/fuzz/long64", test_fuzz_64);
	return g_test_run();
}
