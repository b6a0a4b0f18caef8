/*
 * A hostile migration stream, well framed: every field of every section a
 * real machine saves (virtio-pci and its devices, PCI, the irqchips, the
 * RTC, the UART, i8042, ACPI, the TCG vCPUs, RAM records) mutated to
 * boundary and random values, with the section lengths and the stream's
 * checksum made to match again, so that the value reaches the loader.
 * Every load must either fail with a message or leave a machine that the
 * guest can use (its registers read, its queues notified, its interrupts
 * raised) and that saves a stream which loads again.  Nothing may crash;
 * under ASan/UBSan (make BUILD=build-asan SANITIZE=1) nothing may be
 * reported.
 *
 * The suite runs a fixed seed for a bounded number of iterations;
 * MIGFUZZ_ITERS and MIGFUZZ_SEED run a longer campaign:
 *
 *   MIGFUZZ_ITERS=100000 MIGFUZZ_SEED=7 build-asan/tests/unit/test_migration_fuzz \
 *       -p /migration/fuzz/values
 *
 * test_migration_hostile.c replays, one test each, the values the fuzzer
 * found that crashed, hung or corrupted memory before a loader refused
 * them.
 */
#include "migfuzz.h"

/* The source's own stream loads, and round trips. */
static void test_unchanged(void)
{
	struct fuzz f;
	char msg[512];

	fuzz_init(&f);
	if (fuzz_load(&f, f.recs, true, true, msg, sizeof(msg)))
		g_error("the unchanged stream is refused: %s", msg);
	fuzz_fini(&f);
}

/* ---- mutations ---- */

static unsigned env_uint(const char *name, unsigned dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : dflt;
}

static uint64_t interesting(GRand *g, unsigned width, uint64_t cur)
{
	static const uint64_t fixed[] = {
		0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 0x3ff,
		0x400, 0xfff, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
		0xffffffff, 0x100000000ull, MF_RAM - 1, MF_RAM, MF_RAM - 0x1000, 0xc0000000,
		0xfec00000, 0xfee00000, 0xe0000000, 0x7fffffffffffffffull, 0x8000000000000000ull,
		0x0000800000000000ull, 0xffff800000000000ull, ~0ull, ~0ull - 1,
	};
	uint64_t v;

	switch (g_rand_int_range(g, 0, 8)) {
	case 0:
		v = fixed[g_rand_int_range(g, 0, G_N_ELEMENTS(fixed))];
		break;
	case 1:
		v = cur + 1;
		break;
	case 2:
		v = cur - 1;
		break;
	case 3:
		v = cur ^ (1ull << g_rand_int_range(g, 0, width * 8));
		break;
	case 4:
		v = 1ull << g_rand_int_range(g, 0, width * 8);
		v += g_rand_int_range(g, -1, 2);
		break;
	case 5:
		v = (uint64_t)g_rand_int(g) << 32 | g_rand_int(g);
		break;
	case 6:
		v = ~0ull;
		break;
	default:
		v = g_rand_int_range(g, 0, 300);
		break;
	}
	return v;
}

/*
 * Half the time any section alike (runstate as often as tcg-vm), half the
 * time by its number of fields (the LAPICs' as often as the rest).
 */
static struct mf_rec *random_section(GPtrArray *recs, GRand *g)
{
	if (g_rand_boolean(g)) {
		unsigned total = 0, pick;

		for (unsigned i = 0; i < recs->len; i++) {
			struct mf_rec *r = recs->pdata[i];

			total += r->tag == MIG_TAG_SECTION ? r->fields->len : 0;
		}
		pick = g_rand_int_range(g, 0, total);
		for (unsigned i = 0; i < recs->len; i++) {
			struct mf_rec *r = recs->pdata[i];
			unsigned n = r->tag == MIG_TAG_SECTION ? r->fields->len : 0;

			if (pick < n)
				return r;
			pick -= n;
		}
	}
	for (;;) {
		struct mf_rec *r = recs->pdata[g_rand_int_range(g, 0, recs->len)];

		if (r->tag == MIG_TAG_SECTION && r->fields->len)
			return r;
	}
}

/* An integer of a field's value (or of a raw record) set to a boundary value. */
static void mutate_int(GByteArray *a, GRand *g, char *what, size_t wl)
{
	static const unsigned widths[] = { 1, 2, 4, 8 };
	unsigned w = widths[g_rand_int_range(g, 0, 4)];
	size_t off;
	uint64_t cur = 0, v;

	while (w > a->len)
		w /= 2;
	if (!w)
		return;
	off = g_rand_int_range(g, 0, a->len - w + 1);
	/* Mostly aligned, as the fields of a struct are. */
	if (g_rand_int_range(g, 0, 4))
		off -= off % w;
	memcpy(&cur, a->data + off, w);
	v = interesting(g, w, cur);
	mf_set(a, off, w, v);
	snprintf(what, wl, "+%zu/%u = 0x%llx", off, w,
		 (unsigned long long)(w == 8 ? v : v & ((1ull << 8 * w) - 1)));
}

static void mutate_field(GPtrArray *recs, GRand *g, char *what, size_t wl)
{
	struct mf_rec *r = random_section(recs, g);
	unsigned i = g_rand_int_range(g, 0, r->fields->len);
	struct mf_field *f = r->fields->pdata[i];
	char how[128] = "", name[64];
	unsigned k = g_rand_int_range(g, 0, 100);

	snprintf(name, sizeof(name), "%.63s", f->name);

	if (k < 80 && f->data->len) {
		mutate_int(f->data, g, how, sizeof(how));
	} else if (k < 86 && f->data->len) {
		size_t off = g_rand_int_range(g, 0, f->data->len);
		size_t n = g_rand_int_range(g, 1, 64);

		n = MIN(n, f->data->len - off);

		for (size_t j = 0; j < n; j++)
			f->data->data[off + j] = g_rand_int(g);
		snprintf(how, sizeof(how), "+%zu: %zu random bytes", off, n);
	} else if (k < 94) {
		/* Another length: lists (parked heads, FIFOs) and tables take any. */
		static const int deltas[] = { -16, -8, -4, -2, -1, 1, 2, 4, 8, 16, 64, 4096 };
		int d = deltas[g_rand_int_range(g, 0, G_N_ELEMENTS(deltas))];
		size_t old = f->data->len, n = d < 0 && (size_t)-d > old ? 0 : old + d;

		g_byte_array_set_size(f->data, n);
		for (size_t j = old; j < n; j++)
			f->data->data[j] = g_rand_int_range(g, 0, 4) ? 0 : g_rand_int(g);
		snprintf(how, sizeof(how), "%zu bytes instead of %zu", n, old);
	} else if (k < 97) {
		snprintf(how, sizeof(how), "dropped");
		g_ptr_array_remove_index(r->fields, i);
	} else {
		struct mf_field *c = g_new0(struct mf_field, 1);

		memcpy(c->name, f->name, sizeof(c->name));
		c->data = mf_bytes(f->data->data, f->data->len);
		g_ptr_array_insert(r->fields, i, c);
		snprintf(how, sizeof(how), "repeated");
	}
	snprintf(what, wl, "%.64s/%u %s %s", r->name, r->instance, name, how);
}

/* A RAM layout or page record's integers, a section's version. */
static void mutate_frame(GPtrArray *recs, GRand *g, char *what, size_t wl)
{
	/* One kind of record in three, so that the dozen sections get as many as the pages. */
	unsigned kind = g_rand_int_range(g, 0, 3);
	uint8_t tag = kind == 0 ? MIG_TAG_SECTION : kind == 1 ? MIG_TAG_RAM_PAGE : MIG_TAG_RAM_LAYOUT;
	struct mf_rec *r;
	char how[128] = "";

	do
		r = recs->pdata[g_rand_int_range(g, 0, recs->len)];
	while (r->tag != tag);
	if (r->tag == MIG_TAG_SECTION) {
		r->version = g_rand_int_range(g, 0, 5);
		snprintf(what, wl, "%s/%u version %u", r->name, r->instance, r->version);
		return;
	}
	if (r->tag == MIG_TAG_RAM_PAGE) {
		/* The page's address and flags, never its length (that is framing). */
		uint64_t addr;

		memcpy(&addr, r->raw->data, 8);
		addr = (interesting(g, 8, addr) & ~MIG_PAGE_FLAGS) | (addr & MIG_PAGE_ZERO);
		mf_set(r->raw, 0, 8, addr);
		snprintf(what, wl, "RAM page address 0x%llx", (unsigned long long)addr);
		return;
	}
	/* The layout: its count is framing, the regions are values. */
	if (r->raw->len > 4) {
		GByteArray body = { r->raw->data + 4, r->raw->len - 4 };

		mutate_int(&body, g, how, sizeof(how));
	}
	snprintf(what, wl, "RAM layout %s", how);
}

static void mutate(GPtrArray *recs, GRand *g, char *what, size_t wl)
{
	if (g_rand_int_range(g, 0, 100) < 92)
		mutate_field(recs, g, what, wl);
	else
		mutate_frame(recs, g, what, wl);
}

/* ---- mapped-ram: the header's file offsets ---- */

struct mapped {
	uint8_t *b;
	size_t len;
	size_t rec;			/* the MIG_TAG_MAPPED_RAM record */
	unsigned nr;			/* RAM regions */
	size_t rec_end;
};

/* Where the mapped-ram record's integers are: region i's (version, page size, bitmap, pages). */
static size_t mapped_at(const struct mapped *mp, unsigned i, unsigned what)
{
	static const unsigned off[] = { 0, 4, 12, 20 };

	return mp->rec + 1 + 4 + 28 * i + off[what];
}

static size_t mapped_resume_at(const struct mapped *mp)
{
	return mp->rec + 1 + 4 + 28 * mp->nr;
}

/*
 * The stream's checksum covers what the loader reads: up to the end of
 * the mapped-ram record, then from where the record says the stream goes
 * on (after the pages) to the END tag.
 */
static void mapped_resum(struct mapped *mp, uint64_t resume)
{
	struct XXH3_state_s *h = mig_hash_new();
	uint64_t sum;

	mig_hash_add(h, mp->b, mp->rec_end);
	mig_hash_add(h, mp->b + resume, mp->len - 8 - resume);
	sum = mig_hash_value(h);
	mig_hash_free(h);
	memcpy(mp->b + mp->len - 8, &sum, 8);
}

/*
 * A mapped-ram file whose header offsets, region count, versions and
 * page sizes, and page bitmaps are hostile, with the stream's checksum
 * made to match: refused (the RAM checksums catch bitmaps and pages that
 * the stream's own does not cover), never read or written outside the
 * file or guest RAM, never looping.  A fixed list, then random values.
 */
static void test_mapped_ram(void)
{
	static const struct {
		unsigned region, what;	/* what: 0 version .. 3 pages; 4 resume; 5 count */
		uint64_t v;
		const char *want;
	} cases[] = {
		{ 0, 2, 1ull << 62, "truncated (page bitmap" },
		{ 0, 3, 1ull << 63, "truncated (page" },
		{ 0, 3, 0x1000, "not a layout this vireo reads" },
		{ 0, 1, 0, "page size 0" },
		{ 0, 0, 2, "version 2" },
		{ 0, 2, 0, "does not match its checksum" },
		{ 0, 4, ~0ull, "truncated" },
		{ 0, 4, 0, "before the record that says so" },
		/* Back to the layout, then this record again: it loaded forever. */
		{ 0, 4, 12, "before the record that says so" },
		{ 0, 5, 0, "0 RAM regions" },
		{ 0, 5, ~0u, "RAM regions" },
	};
	char *dir = g_dir_make_tmp("vireo-migfuzz-XXXXXX", NULL), msg[512];
	GRand *g = g_rand_new_with_seed(env_uint("MIGFUZZ_SEED", 0x5eed));
	unsigned iters = env_uint("MIGFUZZ_ITERS", 3000) / 20;
	struct mf_vm src, dst;
	struct mapped mp = { 0 };
	uint8_t *orig;
	uint64_t resume;
	uint32_t n;

	mf_vm_init(&src, dir, "src", true);
	orig = mf_save_as(&src, true, &mp.len, msg, sizeof(msg));
	if (!orig)
		g_error("mapped-ram save: %s", msg);
	memcpy(&n, orig + 13, 4);
	mp.rec = 12 + 1 + 4 + 16 * n;
	g_assert_cmpuint(orig[mp.rec], ==, MIG_TAG_MAPPED_RAM);
	memcpy(&mp.nr, orig + mp.rec + 1, 4);
	mp.rec_end = mapped_resume_at(&mp) + 8;
	g_assert_cmpuint(orig[mp.len - 9], ==, MIG_TAG_END);
	mp.b = g_malloc(mp.len);
	for (unsigned it = 0; it < G_N_ELEMENTS(cases) + 1 + iters; it++) {
		unsigned c = it - 1, k = it - 1 - G_N_ELEMENTS(cases);
		size_t at;
		uint64_t v;
		int ret;

		memcpy(mp.b, orig, mp.len);
		memcpy(&resume, orig + mapped_resume_at(&mp), 8);
		if (it == 0) {
			/* Unchanged, with the checksum as computed here: it loads. */
		} else if (c < G_N_ELEMENTS(cases)) {
			at = cases[c].what == 4 ? mapped_resume_at(&mp) :
			     cases[c].what == 5 ? mp.rec + 1 : mapped_at(&mp, cases[c].region,
									cases[c].what);
			v = cases[c].v;
			memcpy(mp.b + at, &v, cases[c].what == 0 || cases[c].what == 5 ? 4 : 8);
		} else if (k % 4 == 3) {
			/* A byte of region 0's bitmap (outside the stream's checksum). */
			uint64_t bm;

			memcpy(&bm, orig + mapped_at(&mp, 0, 2), 8);
			mp.b[bm + g_rand_int_range(g, 0, 256)] ^= 1u << g_rand_int_range(g, 0, 8);
		} else {
			unsigned what = g_rand_int_range(g, 0, 5), w = what == 0 ? 4 : 8;

			at = what == 4 ? mapped_resume_at(&mp) :
			     mapped_at(&mp, g_rand_int_range(g, 0, mp.nr), what);
			memcpy(&v, mp.b + at, w);
			v = interesting(g, w, v);
			memcpy(mp.b + at, &v, w);
		}
		/* The checksum over what the loader will read, if that is inside the file. */
		memcpy(&resume, mp.b + mapped_resume_at(&mp), 8);
		if (resume <= mp.len - 9)
			mapped_resum(&mp, resume);
		mf_vm_init(&dst, dir, "dst", false);
		ret = mf_load(&dst, mp.b, mp.len, true, msg, sizeof(msg));
		mf_vm_destroy(&dst);
		if (it == 0 && ret)
			g_error("the unchanged mapped-ram file is refused: %s", msg);
		if (it && c < G_N_ELEMENTS(cases) && (!ret || !strstr(msg, cases[c].want)))
			g_error("mapped-ram case %u: '%s' lacks '%s'", c, ret ? msg : "loaded",
				cases[c].want);
		if (ret && !msg[0])
			g_error("a refused mapped-ram file without a message");
	}
	g_free(mp.b);
	g_free(orig);
	g_rand_free(g);
	mf_vm_destroy(&src);
	mf_dir_remove(dir);
}

/*
 * The fuzz loop: 1-3 mutations per stream; every 16th iteration that
 * loads also round trips (a second save and load), which doubles its cost;
 * every 8th loads with nothing holding the devices.
 */
static void test_values(void)
{
	unsigned iters = env_uint("MIGFUZZ_ITERS", 3000), seed = env_uint("MIGFUZZ_SEED", 0x5eed);
	unsigned loaded = 0, refused = 0;
	GHashTable *why = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	/* Per section (or RAM record) mutated: iterations that loaded, and that were refused. */
	GHashTable *per = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	GRand *g = g_rand_new_with_seed(seed);
	struct fuzz f;
	bool verbose = getenv("MIGFUZZ_VERBOSE");

	fuzz_init(&f);
	for (unsigned it = 0; it < iters; it++) {
		GPtrArray *recs = mf_copy(f.recs);
		unsigned n = g_rand_int_range(g, 1, 4);
		char what[3][384], msg[512];
		int ret;

		for (unsigned k = 0; k < n; k++)
			mutate(recs, g, what[k], sizeof(what[k]));
		if (verbose) {
			for (unsigned k = 0; k < n; k++)
				fprintf(stderr, "[%u] %s\n", it, what[k]);
		}
		ret = fuzz_load(&f, recs, it % 16 == 0, it % 8 != 5, msg, sizeof(msg));
		if (ret) {
			refused++;
			if (verbose)
				fprintf(stderr, "[%u] refused: %s\n", it, msg);
			g_hash_table_add(why, g_strdup(msg));
		} else {
			loaded++;
		}
		for (unsigned k = 0; k < n; k++) {
			char *key = g_strndup(what[k], strcspn(what[k], "/ "));
			unsigned *c = g_hash_table_lookup(per, key);

			if (!c) {
				c = g_new0(unsigned, 2);
				g_hash_table_insert(per, g_strdup(key), c);
			}
			c[ret ? 1 : 0]++;
			g_free(key);
		}
		g_ptr_array_unref(recs);
	}
	g_test_message("seed 0x%x: %u iterations, %u loaded, %u refused (%u messages)", seed,
		       iters, loaded, refused, g_hash_table_size(why));
	{
		GHashTableIter hi;
		gpointer key, val;

		g_hash_table_iter_init(&hi, per);
		while (g_hash_table_iter_next(&hi, &key, &val))
			g_test_message("  %-12s mutated in %u loads that passed, %u refused",
				       (char *)key, ((unsigned *)val)[0], ((unsigned *)val)[1]);
	}
	g_hash_table_unref(per);
	/* The mutations reach the loaders: both outcomes happen. */
	g_assert_cmpuint(loaded, >, iters / 20);
	g_assert_cmpuint(refused, >, iters / 20);
	g_hash_table_unref(why);
	g_rand_free(g);
	fuzz_fini(&f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/migration/fuzz/unchanged", test_unchanged);
	g_test_add_func("/migration/fuzz/values", test_values);
	g_test_add_func("/migration/fuzz/mapped-ram", test_mapped_ram);
	return g_test_run();
}
