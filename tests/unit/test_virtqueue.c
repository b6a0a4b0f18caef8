/*
 * The split virtqueue core, driven directly: the test writes rings and
 * descriptors as a guest driver would and checks what virtq_pop hands the
 * device, what virtq_push gives back, notification suppression, and that
 * every malformed chain breaks the queue with NEEDS_RESET and no access
 * outside guest RAM (run under ASan: guest RAM is one heap block).
 */
#include <glib.h>
#include <string.h>

#include "virtio.h"
#include "virtio_harness.h"

#define LO	(1ull << 20)		/* RAM at [0, 1M) */
#define HI	(64ull << 10)		/* and [4G, 4G+64K) */
#define RING	0x10000ull
#define DATA	0x40000ull
#define TABLE	0x80000ull

struct fixture {
	struct guest_mem mem;
	struct virtio_dev vd;
	struct virtq vq;
	struct vh_ring r;
	unsigned config_irqs;
};

static void fx_notify(struct virtio_dev *vd, int queue)
{
	struct fixture *f = vd->transport;

	if (queue < 0)
		f->config_irqs++;
}

static void fx_setup(struct fixture *f, uint16_t size, uint64_t features)
{
	memset(f, 0, sizeof(*f));
	vh_mem_init(&f->mem, LO, HI);
	f->vd.name = "test-virtio";
	f->vd.mem = &f->mem;
	f->vd.guest_features = features | (1ull << VIRTIO_F_VERSION_1);
	f->vd.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	f->vd.notify = fx_notify;
	f->vd.transport = f;
	f->vd.vqs = &f->vq;
	f->vd.nr_vqs = 1;
	g_assert_cmpint(virtq_init(&f->vq, &f->vd, 0, 256), ==, 0);
	vh_ring_init(&f->r, &f->mem, RING, size);
	vh_ring_attach(&f->r, &f->vq);
}

static void fx_enable(struct fixture *f)
{
	g_assert_cmpint(virtq_enable(&f->vq), ==, 0);
}

static void fx_teardown(struct fixture *f)
{
	virtq_cleanup(&f->vq);
	vh_mem_destroy(&f->mem);
}

static bool fx_needs_reset(struct fixture *f)
{
	return virtio_dev_status(&f->vd) & VIRTIO_STATUS_NEEDS_RESET;
}

/* The queue must refuse the chain just published and stay refused. */
static void expect_broken(struct fixture *f)
{
	void *e = NULL;

	g_assert_cmpint(virtq_pop(&f->vq, sizeof(struct virtq_elem), &e), ==, -EIO);
	g_assert_null(e);
	g_assert_true(fx_needs_reset(f));
	g_assert_cmpuint(f->config_irqs, ==, 1);
	g_assert_cmpint(virtq_pop(&f->vq, sizeof(struct virtq_elem), &e), ==, -EIO);
	g_assert_cmpuint(f->config_irqs, ==, 1);
	/* Nothing was completed for the bad chain. */
	uint32_t id, len;
	g_assert_false(vh_used_get(&f->r, &id, &len));
}

static struct virtq_elem *pop_one(struct fixture *f)
{
	void *e = NULL;

	g_assert_cmpint(virtq_pop(&f->vq, sizeof(struct virtq_elem), &e), ==, 1);
	g_assert_nonnull(e);
	return e;
}

static void test_basic_chain(void)
{
	struct fixture f;
	struct vh_buf b[3] = {
		{ DATA, 16, false }, { DATA + 0x1000, 512, true }, { DATA + 0x2000, 1, true },
	};
	struct virtq_elem *e;
	uint32_t id, len;
	uint16_t head;
	void *none;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	g_assert_cmpint(virtq_pop(&f.vq, sizeof(*e), &none), ==, 0);
	memset(vh_ptr(&f.mem, DATA, 16), 0xab, 16);
	head = vh_ring_add(&f.r, b, 3, 0);
	e = pop_one(&f);
	g_assert_cmpuint(e->head, ==, head);
	g_assert_cmpuint(e->out_num, ==, 1);
	g_assert_cmpuint(e->in_num, ==, 2);
	g_assert_cmpuint(e->out_len, ==, 16);
	g_assert_cmpuint(e->in_len, ==, 513);
	g_assert_true(e->iov[0].iov_base == vh_ptr(&f.mem, DATA, 16));
	g_assert_true(e->iov[1].iov_base == vh_ptr(&f.mem, DATA + 0x1000, 512));
	g_assert_cmpuint(e->iov[1].iov_len, ==, 512);
	g_assert_true(e->iov[2].iov_base == vh_ptr(&f.mem, DATA + 0x2000, 1));
	g_assert_cmpint(virtq_pop(&f.vq, sizeof(*e), &none), ==, 0);

	/* The used length is clamped to what the chain can hold. */
	virtq_push(&f.vq, e, 100000);
	g_assert_true(virtq_should_notify(&f.vq));
	g_assert_true(vh_used_get(&f.r, &id, &len));
	g_assert_cmpuint(id, ==, head);
	g_assert_cmpuint(len, ==, 513);
	g_free(e);
	g_assert_false(fx_needs_reset(&f));
	fx_teardown(&f);
}

/* A buffer in the RAM above 4G, and a request spanning many ring entries. */
static void test_high_ram_and_wrap(void)
{
	struct fixture f;
	uint32_t id, len;

	fx_setup(&f, 4, 0);
	fx_enable(&f);
	/* Go round the 4-entry ring several times: indices wrap. */
	for (unsigned i = 0; i < 11; i++) {
		struct vh_buf b[2] = { { MEM_4G + 0x100, 8, false }, { MEM_4G + HI - 8, 8, true } };
		struct virtq_elem *e;
		uint16_t head = vh_ring_add(&f.r, b, 2, 0);

		e = pop_one(&f);
		g_assert_cmpuint(e->head, ==, head);
		g_assert_true(e->iov[1].iov_base == vh_ptr(&f.mem, MEM_4G + HI - 8, 8));
		virtq_push(&f.vq, e, 8);
		g_free(e);
		g_assert_true(vh_used_get(&f.r, &id, &len));
		g_assert_cmpuint(id, ==, head);
	}
	fx_teardown(&f);
}

static void test_indirect(void)
{
	struct fixture f;
	struct vh_buf b[4] = {
		{ DATA, 16, false }, { DATA + 0x100, 100, false },
		{ DATA + 0x1000, 4096, true }, { DATA + 0x3000, 1, true },
	};
	struct virtq_elem *e;

	fx_setup(&f, 8, 1ull << VIRTIO_F_INDIRECT_DESC);
	fx_enable(&f);
	vh_ring_add(&f.r, b, 4, TABLE);
	e = pop_one(&f);
	g_assert_cmpuint(e->out_num, ==, 2);
	g_assert_cmpuint(e->in_num, ==, 2);
	g_assert_cmpuint(e->out_len, ==, 116);
	g_assert_cmpuint(e->in_len, ==, 4097);
	g_assert_true(e->iov[2].iov_base == vh_ptr(&f.mem, DATA + 0x1000, 4096));
	g_free(e);
	g_assert_false(fx_needs_reset(&f));
	fx_teardown(&f);
}

/* Zero-length descriptors are legal and produce no iovec. */
static void test_zero_length_buffer(void)
{
	struct fixture f;
	struct vh_buf b[3] = { { DATA, 16, false }, { 0xdead0000000ull, 0, false }, { DATA, 1, true } };
	struct virtq_elem *e;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_ring_add(&f.r, b, 3, 0);
	e = pop_one(&f);
	g_assert_cmpuint(e->out_num + e->in_num, ==, 2);
	g_free(e);
	fx_teardown(&f);
}

static void test_event_idx(void)
{
	struct fixture f;
	struct vh_buf b = { DATA, 1, true };
	struct virtq_elem *e;

	fx_setup(&f, 8, 1ull << VIRTIO_F_EVENT_IDX);
	fx_enable(&f);
	vh_set_used_event(&f.r, 0);

	/* First completion: used_event 0 is crossed. */
	vh_ring_add(&f.r, &b, 1, 0);
	e = pop_one(&f);
	virtq_push(&f.vq, e, 1);
	g_free(e);
	g_assert_true(virtq_should_notify(&f.vq));

	/* The driver has not moved used_event: suppressed. */
	vh_ring_add(&f.r, &b, 1, 0);
	e = pop_one(&f);
	virtq_push(&f.vq, e, 1);
	g_free(e);
	g_assert_false(virtq_should_notify(&f.vq));

	/* Driver asks to be told after the next one (used_event = 2). */
	vh_set_used_event(&f.r, 2);
	vh_ring_add(&f.r, &b, 1, 0);
	e = pop_one(&f);
	virtq_push(&f.vq, e, 1);
	g_free(e);
	g_assert_true(virtq_should_notify(&f.vq));

	/* Driver wants nothing until entry 10: several completions stay quiet. */
	vh_set_used_event(&f.r, 9);
	for (unsigned i = 0; i < 5; i++) {
		vh_ring_add(&f.r, &b, 1, 0);
		e = pop_one(&f);
		virtq_push(&f.vq, e, 1);
		g_free(e);
		g_assert_false(virtq_should_notify(&f.vq));
	}

	/* Kick suppression: while disabled, avail_event is one the driver
	 * has passed, so no publish crosses it; enabled, it follows what we
	 * consumed. */
	virtq_disable_notify(&f.vq);
	g_assert_cmpuint(vh_get_avail_event(&f.r), ==, 7);
	g_assert_false(virtq_enable_notify(&f.vq));
	g_assert_cmpuint(vh_get_avail_event(&f.r), ==, 8);
	vh_ring_add(&f.r, &b, 1, 0);
	g_assert_true(virtq_enable_notify(&f.vq));
	/* Flags are not used with event idx. */
	g_assert_cmpuint(vh_used_flags(&f.r), ==, 0);
	fx_teardown(&f);
}

static void test_flags_suppression(void)
{
	struct fixture f;
	struct vh_buf b = { DATA, 1, true };
	struct virtq_elem *e;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_ring_add(&f.r, &b, 1, 0);
	e = pop_one(&f);
	virtq_push(&f.vq, e, 1);
	g_free(e);
	g_assert_true(virtq_should_notify(&f.vq));
	vh_set_avail_flags(&f.r, VIRTQ_AVAIL_F_NO_INTERRUPT);
	g_assert_false(virtq_should_notify(&f.vq));

	virtq_disable_notify(&f.vq);
	g_assert_cmpuint(vh_used_flags(&f.r), ==, VIRTQ_USED_F_NO_NOTIFY);
	g_assert_false(virtq_enable_notify(&f.vq));
	g_assert_cmpuint(vh_used_flags(&f.r), ==, 0);
	virtq_disable_notify(&f.vq);
	vh_ring_add(&f.r, &b, 1, 0);
	g_assert_true(virtq_enable_notify(&f.vq));
	fx_teardown(&f);
}

static void test_iov_copy(void)
{
	char a[3], b[5], out[8];
	struct iovec iov[2] = { { a, 3 }, { b, 5 } };

	g_assert_cmpuint(virtio_iov_from_buf(iov, 2, 2, "abcdefgh", 8), ==, 6);
	g_assert_cmpint(a[2], ==, 'a');
	g_assert_cmpint(b[0], ==, 'b');
	g_assert_cmpint(b[4], ==, 'f');
	g_assert_cmpuint(virtio_iov_to_buf(iov, 2, 1, out, 8), ==, 7);
	g_assert_cmpint(memcmp(out + 1, "abcdef", 6), ==, 0);
	g_assert_cmpuint(virtio_iov_to_buf(iov, 2, 8, out, 8), ==, 0);
}

/* ---- malformed input: every case must break the queue, nothing else ---- */

static void test_bad_loop(void)
{
	struct fixture f;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_desc_set(&f.r, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc_set(&f.r, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	vh_desc_set(&f.r, 2, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void test_bad_self_loop(void)
{
	struct fixture f;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_desc_set(&f.r, 3, DATA, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	vh_avail_publish(&f.r, 3);
	expect_broken(&f);
	fx_teardown(&f);
}

/* Every descriptor of the table in one chain, then on past its end. */
static void test_bad_overlong(void)
{
	struct fixture f;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	for (unsigned i = 0; i < 8; i++)
		vh_desc_set(&f.r, i, DATA, 16, VIRTQ_DESC_F_NEXT, i + 1);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

/* The same inside an indirect table: next beyond the table. */
static void test_bad_overlong_indirect(void)
{
	struct fixture f;
	struct virtq_desc *t;

	fx_setup(&f, 8, 1ull << VIRTIO_F_INDIRECT_DESC);
	fx_enable(&f);
	t = vh_ptr(&f.mem, TABLE, 4 * 16);
	for (unsigned i = 0; i < 4; i++)
		t[i] = (struct virtq_desc){ DATA, 16, VIRTQ_DESC_F_NEXT, i + 1 };
	vh_desc_set(&f.r, 0, TABLE, 4 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void test_bad_loop_indirect(void)
{
	struct fixture f;
	struct virtq_desc *t;

	fx_setup(&f, 8, 1ull << VIRTIO_F_INDIRECT_DESC);
	fx_enable(&f);
	t = vh_ptr(&f.mem, TABLE, 2 * 16);
	t[0] = (struct virtq_desc){ DATA, 16, VIRTQ_DESC_F_NEXT, 1 };
	t[1] = (struct virtq_desc){ DATA, 16, VIRTQ_DESC_F_NEXT, 0 };
	vh_desc_set(&f.r, 0, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void bad_buffer(uint64_t addr, uint32_t len)
{
	struct fixture f;
	struct vh_buf b[2] = { { DATA, 16, false }, { addr, len, true } };

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_ring_add(&f.r, b, 2, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void test_bad_outside_ram(void)
{
	bad_buffer(LO, 1);			/* just past the low RAM */
	bad_buffer(LO - 8, 16);			/* straddles its end */
	bad_buffer(MEM_4G - 4096, 8192);	/* hole to high RAM: not one region */
	bad_buffer(MEM_4G + HI, 1);		/* past the high RAM */
	bad_buffer(MEM_PCI_MMIO32_BASE, 4);	/* MMIO, not RAM */
}

static void test_bad_wrap(void)
{
	bad_buffer(~0ull - 0xfff, 0x2000);	/* addr + len wraps to low RAM */
	bad_buffer(~0ull, 2);
}

/* The device sees a readable descriptor after writable ones. */
static void test_bad_direction_order(void)
{
	struct fixture f;
	struct vh_buf b[3] = { { DATA, 16, false }, { DATA + 0x100, 1, true }, { DATA, 16, false } };

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_ring_add(&f.r, b, 3, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void test_bad_indirect_in_indirect(void)
{
	struct fixture f;
	struct virtq_desc *t;

	fx_setup(&f, 8, 1ull << VIRTIO_F_INDIRECT_DESC);
	fx_enable(&f);
	t = vh_ptr(&f.mem, TABLE, 2 * 16);
	t[0] = (struct virtq_desc){ DATA, 16, VIRTQ_DESC_F_NEXT, 1 };
	t[1] = (struct virtq_desc){ TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0 };
	vh_desc_set(&f.r, 0, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void bad_indirect_head(uint64_t features, uint64_t addr, uint32_t len, uint16_t flags)
{
	struct fixture f;
	struct virtq_desc *t;

	fx_setup(&f, 8, features);
	fx_enable(&f);
	t = vh_ptr(&f.mem, TABLE, 16);
	t[0] = (struct virtq_desc){ DATA, 1, VIRTQ_DESC_F_WRITE, 0 };
	vh_desc_set(&f.r, 0, addr, len, VIRTQ_DESC_F_INDIRECT | flags, 1);
	vh_desc_set(&f.r, 1, DATA, 1, VIRTQ_DESC_F_WRITE, 0);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void test_bad_indirect_table(void)
{
	uint64_t ind = 1ull << VIRTIO_F_INDIRECT_DESC;

	bad_indirect_head(ind, TABLE, 0, 0);			/* zero-length table */
	bad_indirect_head(ind, TABLE, 24, 0);			/* not whole descriptors */
	bad_indirect_head(ind, LO - 16, 32, 0);			/* table leaves RAM */
	bad_indirect_head(ind, ~0ull - 15, 32, 0);		/* table wraps */
	bad_indirect_head(ind, TABLE, 16, VIRTQ_DESC_F_NEXT);	/* INDIRECT with NEXT */
	bad_indirect_head(0, TABLE, 16, 0);			/* not negotiated */
}

/* Indirect descriptor not at the head of a chain. */
static void test_bad_indirect_mid_chain(void)
{
	struct fixture f;

	fx_setup(&f, 8, 1ull << VIRTIO_F_INDIRECT_DESC);
	fx_enable(&f);
	vh_desc_set(&f.r, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc_set(&f.r, 1, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void test_bad_head_and_index(void)
{
	struct fixture f;
	struct virtq_avail *a;

	/* Head index beyond the queue. */
	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_avail_publish(&f.r, 8);
	expect_broken(&f);
	fx_teardown(&f);

	/* avail->idx claims more entries than the ring holds. */
	fx_setup(&f, 8, 0);
	fx_enable(&f);
	a = vh_ptr(&f.mem, f.r.avail, VIRTQ_AVAIL_BYTES(8));
	a->idx = 9;
	expect_broken(&f);
	fx_teardown(&f);

	/* next index beyond the queue. */
	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_desc_set(&f.r, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 200);
	vh_avail_publish(&f.r, 0);
	expect_broken(&f);
	fx_teardown(&f);
}

static void bad_enable(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	struct fixture f;

	fx_setup(&f, 8, 0);
	f.vq.size = size;
	if (desc != ~0ull)
		f.vq.desc_gpa = desc;
	if (avail != ~0ull)
		f.vq.avail_gpa = avail;
	if (used != ~0ull)
		f.vq.used_gpa = used;
	g_assert_cmpint(virtq_enable(&f.vq), ==, -EINVAL);
	g_assert_false(f.vq.enabled);
	g_assert_true(fx_needs_reset(&f));
	fx_teardown(&f);
}

static void test_bad_queue_setup(void)
{
	bad_enable(6, ~0ull, ~0ull, ~0ull);		/* not a power of two */
	bad_enable(0, ~0ull, ~0ull, ~0ull);		/* empty */
	bad_enable(512, ~0ull, ~0ull, ~0ull);		/* over max_size */
	bad_enable(8, LO - 64, ~0ull, ~0ull);		/* descriptors leave RAM */
	bad_enable(8, RING + 8, ~0ull, ~0ull);		/* misaligned table */
	bad_enable(8, ~0ull, LO - 4, ~0ull);		/* avail ring leaves RAM */
	bad_enable(8, ~0ull, ~0ull, RING + 0x2002);	/* misaligned used ring */
	bad_enable(8, ~0ull, ~0ull, ~0ull - 63);	/* used ring wraps */
}

/* A reset brings a broken queue back. */
static void test_reset_recovers(void)
{
	struct fixture f;
	struct vh_buf b = { DATA, 1, true };
	struct virtq_elem *e;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	vh_avail_publish(&f.r, 8);
	expect_broken(&f);
	virtq_reset(&f.vq);
	f.vd.status = 0;
	vh_ring_init(&f.r, &f.mem, RING, 8);
	vh_ring_attach(&f.r, &f.vq);
	fx_enable(&f);
	vh_ring_add(&f.r, &b, 1, 0);
	e = pop_one(&f);
	g_free(e);
	g_assert_false(fx_needs_reset(&f));
	fx_teardown(&f);
}


/* An address near something interesting: RAM edges, 0, the top, anywhere. */
static uint64_t fuzz_addr(GRand *g)
{
	static const uint64_t edges[] = { 0, LO, MEM_4G, MEM_4G + HI, ~0ull, RING, TABLE,
					  MEM_PCI_MMIO32_BASE };
	uint64_t base = edges[g_rand_int_range(g, 0, G_N_ELEMENTS(edges))];

	switch (g_rand_int_range(g, 0, 4)) {
	case 0:
		return base - g_rand_int_range(g, 0, 64);
	case 1:
		return base + g_rand_int_range(g, 0, 64);
	case 2:
		return (uint64_t)g_rand_int(g) << 32 | g_rand_int(g);
	}
	return DATA + g_rand_int_range(g, 0, 0x10000);
}

static uint32_t fuzz_len(GRand *g)
{
	switch (g_rand_int_range(g, 0, 4)) {
	case 0:
		return g_rand_int(g);
	case 1:
		return 16 * g_rand_int_range(g, 0, 40);
	}
	return g_rand_int_range(g, 0, 0x2000);
}

/*
 * Random descriptor tables, indirect tables and avail entries.  Whatever
 * the guest writes, a pop either gives buffers that lie inside guest RAM or
 * breaks the queue; under ASan any stray host access would abort.
 */
static void test_fuzz(void)
{
	GRand *g = g_rand_new_with_seed(0x5eed);
	unsigned broken = 0, popped = 0;

	for (unsigned iter = 0; iter < 3000; iter++) {
		struct fixture f;
		struct virtq_desc *t = NULL;
		uint64_t feat = 0;
		void *p;
		int ret;

		if (g_rand_boolean(g))
			feat |= 1ull << VIRTIO_F_INDIRECT_DESC;
		if (g_rand_boolean(g))
			feat |= 1ull << VIRTIO_F_EVENT_IDX;
		fx_setup(&f, 8, feat);
		fx_enable(&f);
		t = vh_ptr(&f.mem, TABLE, 16 * 16);
		for (unsigned i = 0; i < 8; i++)
			vh_desc_set(&f.r, i, fuzz_addr(g), fuzz_len(g), g_rand_int_range(g, 0, 8),
				    g_rand_int_range(g, 0, 12));
		for (unsigned i = 0; i < 16; i++)
			t[i] = (struct virtq_desc){ fuzz_addr(g), fuzz_len(g),
						    g_rand_int_range(g, 0, 8),
						    g_rand_int_range(g, 0, 20) };
		/* Point some heads at an indirect table that is really there. */
		if (g_rand_boolean(g))
			vh_desc_set(&f.r, 0, TABLE, 16 * g_rand_int_range(g, 1, 17),
				    VIRTQ_DESC_F_INDIRECT, 0);
		for (unsigned i = 0; i < 4; i++)
			vh_avail_publish(&f.r, g_rand_int_range(g, 0, 10));
		while ((ret = virtq_pop(&f.vq, sizeof(struct virtq_elem), &p)) == 1) {
			struct virtq_elem *e = p;

			for (unsigned i = 0; i < e->out_num + e->in_num; i++) {
				/* Every byte of every buffer is guest RAM: touch them all. */
				uint8_t *b = e->iov[i].iov_base;
				size_t off = b - f.mem.base;

				g_assert_cmpuint(off + e->iov[i].iov_len, <=, LO + HI);
				memset(b, 0x5a, e->iov[i].iov_len);
			}
			virtq_push(&f.vq, e, g_rand_int(g));
			virtq_should_notify(&f.vq);
			g_free(e);
			popped++;
		}
		if (ret < 0) {
			g_assert_true(fx_needs_reset(&f));
			broken++;
		}
		fx_teardown(&f);
	}
	/* Both outcomes happened, many times. */
	g_assert_cmpuint(broken, >, 100);
	g_assert_cmpuint(popped, >, 100);
	g_rand_free(g);
}

static bool page_bit(const unsigned long *bm, uint64_t page)
{
	return bm[page / (8 * sizeof(long))] >> (page % (8 * sizeof(long))) & 1;
}

/*
 * Migration resends the pages a device wrote: with the device dirty log on,
 * a push marks every device-writable buffer and the used ring, not the
 * buffers the device only read; a sync hands the marks over once.
 */
static void test_dirty_log(void)
{
	struct fixture f;
	struct vh_buf b[3] = {
		{ DATA, 16, false }, { DATA + 0x1000, 0x1800, true }, { MEM_4G + 0x3000, 8, true },
	};
	unsigned long lo[LO / 4096 / (8 * sizeof(long))] = { 0 };
	unsigned long hi[1] = { 0 };
	struct virtq_elem *e;

	fx_setup(&f, 8, 0);
	fx_enable(&f);
	g_assert_cmpint(guest_mem_dirty_start(&f.mem), ==, 0);
	vh_ring_add(&f.r, b, 3, 0);
	e = pop_one(&f);
	virtq_push(&f.vq, e, 0x1808);
	g_free(e);
	guest_mem_dirty_sync(&f.mem, 0, lo);
	guest_mem_dirty_sync(&f.mem, 1, hi);
	g_assert_false(page_bit(lo, DATA / 4096));		/* read only */
	g_assert_true(page_bit(lo, DATA / 4096 + 1));		/* written, spans */
	g_assert_true(page_bit(lo, DATA / 4096 + 2));		/* two pages */
	g_assert_false(page_bit(lo, DATA / 4096 + 3));
	g_assert_true(page_bit(lo, f.r.used / 4096));		/* the used ring */
	g_assert_true(page_bit(hi, 3));				/* above 4G */

	/* Handed over once; after stop a push marks nothing. */
	memset(lo, 0, sizeof(lo));
	guest_mem_dirty_sync(&f.mem, 0, lo);
	g_assert_false(page_bit(lo, DATA / 4096 + 1));
	guest_mem_dirty_stop(&f.mem);
	vh_ring_add(&f.r, b, 3, 0);
	e = pop_one(&f);
	virtq_push(&f.vq, e, 8);
	g_free(e);
	guest_mem_dirty_sync(&f.mem, 0, lo);
	g_assert_false(page_bit(lo, DATA / 4096 + 1));
	g_assert_false(page_bit(lo, f.r.used / 4096));
	fx_teardown(&f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtqueue/basic", test_basic_chain);
	g_test_add_func("/virtqueue/high-ram-and-wrap", test_high_ram_and_wrap);
	g_test_add_func("/virtqueue/indirect", test_indirect);
	g_test_add_func("/virtqueue/zero-length-buffer", test_zero_length_buffer);
	g_test_add_func("/virtqueue/event-idx", test_event_idx);
	g_test_add_func("/virtqueue/flags-suppression", test_flags_suppression);
	g_test_add_func("/virtqueue/iov-copy", test_iov_copy);
	g_test_add_func("/virtqueue/dirty-log", test_dirty_log);
	g_test_add_func("/virtqueue/bad/loop", test_bad_loop);
	g_test_add_func("/virtqueue/bad/self-loop", test_bad_self_loop);
	g_test_add_func("/virtqueue/bad/overlong", test_bad_overlong);
	g_test_add_func("/virtqueue/bad/overlong-indirect", test_bad_overlong_indirect);
	g_test_add_func("/virtqueue/bad/loop-indirect", test_bad_loop_indirect);
	g_test_add_func("/virtqueue/bad/outside-ram", test_bad_outside_ram);
	g_test_add_func("/virtqueue/bad/wrap", test_bad_wrap);
	g_test_add_func("/virtqueue/bad/direction-order", test_bad_direction_order);
	g_test_add_func("/virtqueue/bad/indirect-in-indirect", test_bad_indirect_in_indirect);
	g_test_add_func("/virtqueue/bad/indirect-table", test_bad_indirect_table);
	g_test_add_func("/virtqueue/bad/indirect-mid-chain", test_bad_indirect_mid_chain);
	g_test_add_func("/virtqueue/bad/head-and-index", test_bad_head_and_index);
	g_test_add_func("/virtqueue/bad/queue-setup", test_bad_queue_setup);
	g_test_add_func("/virtqueue/reset-recovers", test_reset_recovers);
	g_test_add_func("/virtqueue/fuzz", test_fuzz);
	return g_test_run();
}
