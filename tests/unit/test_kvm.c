/*
 * The KVM accelerator and the vCPU thread machinery, with a real vCPU
 * running small real-mode programs: port I/O (including rep outsb) and
 * MMIO reach the buses, pause/resume stops and restarts the guest, the
 * dirty log sees guest writes (through the dirty ring where the host offers
 * it, and through the bitmap), an ioeventfd takes a write without an exit.
 * Skipped where /dev/kvm cannot be opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "accel/accel.h"
#include "accel/kvm/kvm_int.h"
#include "machine.h"
#include "vcpu.h"

#define CODE 0x1000
#define DONE_PORT 0x511

struct rig {
	struct machine m;
	struct vcpu *v;
	/* pthread's, not glib's: TSan sees these (docs/sanitizers.md). */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* on CLOCK_MONOTONIC */
	bool done;
	uint8_t pio_log[64];
	unsigned pio_n;
	uint64_t mmio_addr, mmio_val;
	unsigned mmio_size;
};

static uint64_t port_read(void *opaque, uint64_t off, unsigned size)
{
	return 0x5a;
}

static void port_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct rig *r = opaque;

	pthread_mutex_lock(&r->lock);
	if (off == 1) {
		r->done = true;
		pthread_cond_broadcast(&r->cond);
	} else if (r->pio_n < sizeof(r->pio_log)) {
		r->pio_log[r->pio_n++] = val;
	}
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_ops port_ops = { port_read, port_write };

/* A write here asks the machine for a reset: the vCPU that wrote parks. */
static void park_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct rig *r = opaque;

	machine_request_reset(&r->m);
}

static const struct bus_ops park_ops = { NULL, park_write };

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
	return 0x1234;
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct rig *r = opaque;

	r->mmio_addr = 0xd0000000ull + off;
	r->mmio_val = val;
	r->mmio_size = size;
}

static const struct bus_ops mmio_ops = { mmio_read, mmio_write };

static bool kvm_usable(void)
{
	char why[256];

	if (kvm_accel_ops.probe(why, sizeof(why))) {
		g_test_skip(why);
		return false;
	}
	return true;
}

/*
 * A one-vCPU KVM machine with no board, running code at 0:CODE in real mode;
 * accel: the -accel string (kvm's options), or NULL.
 */
static void rig_init_ring(struct rig *r, const uint8_t *code, size_t len, const char *accel)
{
	char err[256];
	struct cpu_state s;
	pthread_condattr_t ca;

	memset(r, 0, sizeof(*r));
	r->m.cfg.accel = accel;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->m.cfg.smp = 1;
	r->m.cfg.ram_size = 16 << 20;
	r->m.ctx = g_main_context_new();
	bus_init(&r->m.pio, "pio");
	bus_init(&r->m.mmio, "mmio");
	pthread_mutex_init(&r->m.lock, NULL);
	g_assert_cmpint(guest_mem_init(&r->m.mem, 16 << 20, NULL, false, err, sizeof(err)), ==, 0);
	r->m.accel = &kvm_accel_ops;
	g_assert_cmpint(kvm_accel_ops.vm_init(&r->m, err, sizeof(err)), ==, 0);
	g_assert_cmpint(kvm_accel_ops.set_memory(&r->m, &r->m.mem.r[0]), ==, 0);
	r->v = vcpu_create(&r->m, 0, err, sizeof(err));
	g_assert_nonnull(r->v);
	r->m.vcpus = &r->v;
	r->m.nr_vcpus = 1;
	memcpy(r->m.mem.base + CODE, code, len);
	g_assert_cmpint(kvm_accel_ops.vcpu_get_state(r->v, &s), ==, 0);
	s.cs.base = 0;
	s.cs.selector = 0;
	s.rip = CODE;
	g_assert_cmpint(kvm_accel_ops.vcpu_set_state(r->v, &s), ==, 0);
	g_assert_cmpint(bus_register(&r->m.pio, 0x510, 2, &port_ops, r, "test"), ==, 0);
	g_assert_cmpint(bus_register(&r->m.mmio, 0xd0000000ull, 0x1000, &mmio_ops, r, "t"), ==, 0);
}

static void rig_init(struct rig *r, const uint8_t *code, size_t len)
{
	rig_init_ring(r, code, len, NULL);
}

static void rig_wait_done(struct rig *r)
{
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 10;
	pthread_mutex_lock(&r->lock);
	while (!r->done)
		g_assert_cmpint(pthread_cond_timedwait(&r->cond, &r->lock, &end), !=, ETIMEDOUT);
	pthread_mutex_unlock(&r->lock);
}

static bool rig_done(struct rig *r)
{
	bool done;

	pthread_mutex_lock(&r->lock);
	done = r->done;
	pthread_mutex_unlock(&r->lock);
	return done;
}

static void rig_destroy(struct rig *r)
{
	vcpu_destroy(r->v);
	kvm_accel_ops.vm_destroy(&r->m);
	guest_mem_destroy(&r->m.mem);
	bus_destroy(&r->m.pio);
	bus_destroy(&r->m.mmio);
	g_main_context_unref(r->m.ctx);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

/*
 * Code fetched from an address with no RAM and no device behind it is
 * something KVM cannot emulate: the exit names the failure, its RIP and
 * that the code is not in RAM, and points at -accel tcg.
 */
static void test_emulation_failure(void)
{
	static const uint8_t code[] = { 0xea, 0x34, 0x12, 0x00, 0xd0 };	/* ljmp $0xd000,$0x1234 */
	struct accel_exit e;
	struct rig r;
	int i;

	if (!kvm_usable())
		return;
	rig_init(&r, code, sizeof(code));
	/* End the RAM slot below 0xd0000: nothing answers there. */
	r.m.mem.r[0].size = 0;
	g_assert_cmpint(kvm_accel_ops.set_memory(&r.m, &r.m.mem.r[0]), ==, 0);
	r.m.mem.r[0].size = 0xd0000;
	g_assert_cmpint(kvm_accel_ops.set_memory(&r.m, &r.m.mem.r[0]), ==, 0);
	for (i = 0; i < 100; i++) {
		memset(&e, 0, sizeof(e));
		g_assert_cmpint(kvm_accel_ops.vcpu_run(r.v, &e), ==, 0);
		if (e.reason != ACCEL_EXIT_KICK)
			break;
	}
	g_assert_cmpint(e.reason, ==, ACCEL_EXIT_ERROR);
	g_test_message("%s", e.error.msg);
	g_assert_nonnull(strstr(e.error.msg, "KVM emulation failure at RIP 0x1234"));
	g_assert_nonnull(strstr(e.error.msg, "code not in RAM"));
	g_assert_nonnull(strstr(e.error.msg, "-accel tcg"));
	rig_destroy(&r);
}

/* get_state/set_state carry the MSRs and debug registers of cpu_state. */
static void test_state_msrs(void)
{
	static const uint8_t code[] = { 0xeb, 0xfe };	/* jmp $ */
	struct cpu_state s;
	struct rig r;

	if (!kvm_usable())
		return;
	rig_init(&r, code, sizeof(code));
	g_assert_cmpint(kvm_accel_ops.vcpu_get_state(r.v, &s), ==, 0);
	g_assert_cmphex(s.msrs.pat, ==, 0x0007040600070406ull);	/* power-on PAT */
	g_assert_cmphex(s.msrs.dr[7], ==, 0x400);
	s.msrs.lstar = 0xffffffff81a00000ull;
	s.msrs.star = 0x0023001000000000ull;
	s.msrs.sfmask = 0x47700;
	s.msrs.kernel_gs_base = 0xffff888000100000ull;
	s.msrs.sysenter_eip = 0x12345678;
	s.msrs.pat = 0x0007010600070106ull;
	s.msrs.dr[0] = 0x401000;
	s.msrs.dr[7] = 0x401;			/* L0 */
	g_assert_cmpint(kvm_accel_ops.vcpu_set_state(r.v, &s), ==, 0);
	memset(&s, 0, sizeof(s));
	g_assert_cmpint(kvm_accel_ops.vcpu_get_state(r.v, &s), ==, 0);
	g_assert_cmphex(s.msrs.lstar, ==, 0xffffffff81a00000ull);
	g_assert_cmphex(s.msrs.star, ==, 0x0023001000000000ull);
	g_assert_cmphex(s.msrs.sfmask, ==, 0x47700);
	g_assert_cmphex(s.msrs.kernel_gs_base, ==, 0xffff888000100000ull);
	g_assert_cmphex(s.msrs.sysenter_eip, ==, 0x12345678);
	g_assert_cmphex(s.msrs.pat, ==, 0x0007010600070106ull);
	g_assert_cmphex(s.msrs.dr[0], ==, 0x401000);
	g_assert_cmphex(s.msrs.dr[7], ==, 0x401);
	g_assert_cmphex(s.msrs.dr[6] & 0xffff0ff0, ==, 0xffff0ff0);
	rig_destroy(&r);
}

static void test_pio_mmio(void)
{
	/*
	 * mov dx,0x510; mov al,0x42; out dx,al; in al,dx; mov [0x2000],al;
	 * mov si,0x3000; mov cx,4; rep outsb;
	 * mov ax,0xd000; mov es,ax; mov word es:[0x10],0xbeef; mov ax,es:[0x20]; mov [0x2002],ax
	 * mov dx,0x511; out dx,al; jmp $
	 */
	static const uint8_t code[] = {
		0xba, 0x10, 0x05, 0xb0, 0x42, 0xee, 0xec, 0xa2, 0x00, 0x20,
		0xbe, 0x00, 0x30, 0xb9, 0x04, 0x00, 0xf3, 0x6e,
		0xb8, 0x00, 0xd0, 0x8e, 0xc0, 0x26, 0xc7, 0x06, 0x10, 0x00, 0xef, 0xbe,
		0x26, 0xa1, 0x20, 0x00, 0xa3, 0x02, 0x20,
		0xba, 0x11, 0x05, 0xee, 0xeb, 0xfe,
	};
	struct rig r;

	if (!kvm_usable())
		return;
	rig_init(&r, code, sizeof(code));
	memcpy(r.m.mem.base + 0x3000, "vCPU", 4);
	/* Real mode reaches 0xd0000 + 0x10 only; move the MMIO window there. */
	g_assert_cmpint(bus_unregister(&r.m.mmio, 0xd0000000ull, &r), ==, 0);
	g_assert_cmpint(bus_register(&r.m.mmio, 0xd0000, 0x1000, &mmio_ops, &r, "t"), ==, 0);
	/* 0xd0000 is RAM in a 16 MiB guest: shrink the slot (delete, re-add) to end below it. */
	r.m.mem.r[0].size = 0;
	g_assert_cmpint(kvm_accel_ops.set_memory(&r.m, &r.m.mem.r[0]), ==, 0);
	r.m.mem.r[0].size = 0xd0000;
	g_assert_cmpint(kvm_accel_ops.set_memory(&r.m, &r.m.mem.r[0]), ==, 0);

	g_assert_cmpint(vcpu_start(r.v, false), ==, 0);
	rig_wait_done(&r);
	vcpu_pause(r.v);
	g_assert_cmpuint(r.pio_n, ==, 5);
	g_assert_cmpmem(r.pio_log, 5, "\x42vCPU", 5);
	g_assert_cmpuint(r.m.mem.base[0x2000], ==, 0x5a);		/* in al,dx */
	g_assert_cmpuint(r.mmio_addr - 0xd0000000ull, ==, 0x10);	/* offset in range */
	g_assert_cmpuint(r.mmio_val, ==, 0xbeef);
	g_assert_cmpuint(r.mmio_size, ==, 2);
	g_assert_cmpuint(r.m.mem.base[0x2002] | r.m.mem.base[0x2003] << 8, ==, 0x1234);
	rig_destroy(&r);
}

/* Whether host thread tid of this process is called name. */
static bool vcpu_thread_named(pid_t tid, const char *name)
{
	char path[64], *comm = NULL;
	bool same;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	if (!g_file_get_contents(path, &comm, NULL, NULL))
		return false;
	same = strcmp(g_strstrip(comm), name) == 0;
	g_free(comm);
	return same;
}

static void test_pause_resume(void)
{
	/* mov dx,0x511; out dx,al; loop: inc word [0x2000]; jmp loop */
	static const uint8_t code[] = {
		0xba, 0x11, 0x05, 0xee, 0xff, 0x06, 0x00, 0x20, 0xeb, 0xfa,
	};
	volatile uint16_t *counter;
	struct rig r;
	uint16_t a, b;

	if (!kvm_usable())
		return;
	rig_init(&r, code, sizeof(code));
	counter = (volatile uint16_t *)(r.m.mem.base + 0x2000);
	g_assert_cmpint(vcpu_start(r.v, true), ==, 0);
	/* query-cpus-fast may ask at once: the thread is named and known. */
	g_assert_cmpint(r.v->tid, >, 0);
	g_assert_true(vcpu_thread_named(r.v->tid, "CPU 0/KVM"));
	g_usleep(50000);
	g_assert_false(rig_done(&r));			/* started paused */
	g_assert_cmpint(vcpu_get_state(r.v), ==, VCPU_PAUSED);
	vcpu_resume(r.v);
	rig_wait_done(&r);
	g_usleep(20000);
	vcpu_pause(r.v);
	g_assert_cmpint(vcpu_get_state(r.v), ==, VCPU_PAUSED);
	a = *counter;
	g_usleep(50000);
	b = *counter;
	g_assert_cmpuint(a, ==, b);			/* paused means not running */
	vcpu_resume(r.v);
	for (int i = 0; i < 500 && *counter == b; i++)
		g_usleep(1000);
	g_assert_cmpuint(*counter, !=, b);
	vcpu_stop(r.v);
	g_assert_cmpint(vcpu_get_state(r.v), ==, VCPU_STOPPED);
	rig_destroy(&r);
}

static void dirty_log(bool ring)
{
	/* mov byte [0x5000],1; mov byte [0x7fff],2; mov dx,0x511; out dx,al; jmp $ */
	static const uint8_t code[] = {
		0xc6, 0x06, 0x00, 0x50, 0x01, 0xc6, 0x06, 0xff, 0x7f, 0x02,
		0xba, 0x11, 0x05, 0xee, 0xeb, 0xfe,
	};
	unsigned long bitmap[(16 << 20) / 4096 / 64] = { 0 };
	unsigned dirty = 0;
	struct rig r;

	if (!kvm_usable())
		return;
	rig_init_ring(&r, code, sizeof(code), ring ? "kvm,dirty-ring-size=4096" : "kvm");
	if (ring) {
		int sys = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		int max = ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);

		close(sys);
		/* The ring is used when asked for and the host offers one big enough. */
		g_assert_cmpuint(((struct kvm_vm *)r.m.accel_state)->ring_entries, ==,
				 max >= 4096 * 16 ? 4096 : 0);
		if (max < 4096 * 16)
			g_test_message("this host's KVM offers no dirty ring: bitmap only");
	} else {
		g_assert_cmpuint(((struct kvm_vm *)r.m.accel_state)->ring_entries, ==, 0);
	}
	g_assert_cmpint(kvm_accel_ops.dirty_log_start(&r.m), ==, 0);
	g_assert_cmpint(vcpu_start(r.v, false), ==, 0);
	rig_wait_done(&r);
	vcpu_pause(r.v);
	g_assert_cmpint(kvm_accel_ops.dirty_log_sync(&r.m, &r.m.mem.r[0], bitmap), ==, 0);
	g_assert_true(bitmap[0] & (1ul << 5));
	g_assert_true(bitmap[0] & (1ul << 7));
	for (unsigned i = 0; i < sizeof(bitmap) / sizeof(bitmap[0]); i++)
		dirty += __builtin_popcountl(bitmap[i]);
	g_assert_cmpuint(dirty, ==, 2);
	/* A sync clears: nothing new since. */
	memset(bitmap, 0, sizeof(bitmap));
	g_assert_cmpint(kvm_accel_ops.dirty_log_sync(&r.m, &r.m.mem.r[0], bitmap), ==, 0);
	g_assert_cmpuint(bitmap[0], ==, 0);
	g_assert_cmpint(kvm_accel_ops.dirty_log_stop(&r.m), ==, 0);
	rig_destroy(&r);
}

static void test_dirty_log_ring(void)
{
	dirty_log(true);
}

static void test_dirty_log(void)
{
	dirty_log(false);
}

static void test_dirty_ring_option(void)
{
	static const char *const bad[] = {
		"kvm,dirty-ring-size=1000", "kvm,dirty-ring-size=512", "kvm,dirty-ring-size=x",
		"kvm,dirty-ring-size=131072", "kvm,bogus=1",
	};
	char err[256];

	if (!kvm_usable())
		return;
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct machine m;

		memset(&m, 0, sizeof(m));
		m.cfg.smp = 1;
		m.cfg.accel = bad[i];
		err[0] = 0;
		g_assert_cmpint(kvm_accel_ops.vm_init(&m, err, sizeof(err)), ==, -EINVAL);
		g_assert_nonnull(strstr(err, "-accel kvm"));
		kvm_accel_ops.vm_destroy(&m);
	}
}

static void test_ioeventfd_irqfd(void)
{
	/* mov dx,0x510; mov al,7; out dx,al; mov dx,0x511; out dx,al; jmp $ */
	static const uint8_t code[] = {
		0xba, 0x10, 0x05, 0xb0, 0x07, 0xee, 0xba, 0x11, 0x05, 0xee, 0xeb, 0xfe,
	};
	int efd = eventfd(0, EFD_NONBLOCK), ifd = eventfd(0, EFD_NONBLOCK);
	uint64_t count = 0;
	struct rig r;
	int h;

	if (!kvm_usable())
		return;
	rig_init(&r, code, sizeof(code));
	g_assert_cmpint(kvm_accel_ops.add_ioeventfd(&r.m, 0x510, 1, true, efd), ==, 0);
	g_assert_cmpint(vcpu_start(r.v, false), ==, 0);
	rig_wait_done(&r);
	vcpu_pause(r.v);
	g_assert_cmpint(read(efd, &count, 8), ==, 8);
	g_assert_cmpuint(count, ==, 1);
	g_assert_cmpuint(r.pio_n, ==, 0);		/* the write never exited */
	g_assert_cmpint(kvm_accel_ops.del_ioeventfd(&r.m, 0x510, 1, true, efd), ==, 0);

	/* MSI routes: add, retarget, remove; handles are distinct GSIs. */
	h = kvm_accel_ops.add_irqfd_msi(&r.m, ifd, 0xfee00000, 0x30);
	g_assert_cmpint(h, >=, 24);
	g_assert_cmpint(kvm_accel_ops.update_irqfd_msi(&r.m, h, 0xfee00000, 0x31), ==, 0);
	g_assert_cmpint(kvm_accel_ops.update_irqfd_msi(&r.m, h + 100, 0xfee00000, 0x31), ==,
			-ENOENT);
	g_assert_cmpint(kvm_accel_ops.del_irqfd_msi(&r.m, h, ifd), ==, 0);
	g_assert_cmpint(kvm_accel_ops.send_msi(&r.m, 0xfee00000, 0x40), ==, 0);
	close(efd);
	close(ifd);
	rig_destroy(&r);
}

/*
 * A vCPU parked after asking for a reset must come back when the machine
 * pauses and resumes it, even if both happen before its thread wakes up
 * (the reboot path does exactly that).
 */
static void test_parked_resume(void)
{
	/* loop: mov dx,0x512; out dx,al; inc word [0x2000]; jmp loop */
	static const uint8_t code[] = {
		0xba, 0x12, 0x05, 0xee, 0xff, 0x06, 0x00, 0x20, 0xeb, 0xf6,
	};
	volatile uint16_t *counter;
	struct rig r;

	if (!kvm_usable())
		return;
	rig_init(&r, code, sizeof(code));
	g_assert_cmpint(bus_register(&r.m.pio, 0x512, 1, &park_ops, &r, "park"), ==, 0);
	counter = (volatile uint16_t *)(r.m.mem.base + 0x2000);
	g_assert_cmpint(vcpu_start(r.v, false), ==, 0);
	for (unsigned i = 0; i < 300; i++) {
		uint16_t before;
		gint64 end = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;

		/* Wait until it parked on its request, then serve it as pc.c does. */
		while (!(machine_request_pending(&r.m) && vcpu_get_state(r.v) == VCPU_PAUSED))
			g_assert_cmpint(g_get_monotonic_time(), <, end);
		before = *counter;
		__atomic_store_n(&r.m.request, MACHINE_REQ_NONE, __ATOMIC_RELEASE);
		vcpu_pause(r.v);
		vcpu_resume(r.v);
		while (*counter == before)
			g_assert_cmpint(g_get_monotonic_time(), <, end);
	}
	vcpu_stop(r.v);
	rig_destroy(&r);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/kvm/pio-mmio", test_pio_mmio);
	g_test_add_func("/kvm/state-msrs", test_state_msrs);
	g_test_add_func("/kvm/emulation-failure", test_emulation_failure);
	g_test_add_func("/kvm/pause-resume", test_pause_resume);
	g_test_add_func("/kvm/dirty-log", test_dirty_log);
	g_test_add_func("/kvm/dirty-log-ring", test_dirty_log_ring);
	g_test_add_func("/kvm/dirty-ring-option", test_dirty_ring_option);
	g_test_add_func("/kvm/ioeventfd-irqfd", test_ioeventfd_irqfd);
	g_test_add_func("/kvm/parked-resume", test_parked_resume);
	return g_test_run();
}
