/*
 * One test for each value the migration fuzzer (test_migration_fuzz.c)
 * found that crashed, hung or corrupted memory, or that a loader took
 * though no guest could have made it: the value, well framed, with the
 * stream's checksum matching, must now be refused with a message naming
 * the section and the field (or, for the values a guest can make, load
 * into a machine the guest can use).  Those marked ASan fail without
 * their fix only under make BUILD=build-asan SANITIZE=1.
 */
#include "migfuzz.h"

/* The first section called name that has a field called field. */
static struct mf_rec *section_with(GPtrArray *recs, const char *name, const char *field)
{
	for (unsigned i = 0; i < recs->len; i++) {
		struct mf_rec *r = recs->pdata[i];

		if (r->tag == MIG_TAG_SECTION && !strcmp(r->name, name) && mf_field(r, field, 0))
			return r;
	}
	g_error("no section '%s' with a field '%s'", name, field);
	return NULL;
}

/*
 * The source's stream with the width-byte integer at off of the nth field
 * called field, in the first section called name that has a field called
 * marker, set to v: refused with want in the message (want NULL: loads,
 * and the guest may use the machine).
 */
static void hostile_in(const char *name, const char *marker, const char *field, unsigned nth,
		       size_t off, unsigned width, uint64_t v, const char *want)
{
	struct fuzz f;
	GByteArray *a;
	char msg[512];
	int ret;

	fuzz_init(&f);
	a = mf_field(section_with(f.recs, name, marker), field, nth);
	g_assert_nonnull(a);
	mf_set(a, off, width, v);
	ret = fuzz_load(&f, f.recs, !want, true, msg, sizeof(msg));
	if (want && (!ret || !strstr(msg, want)))
		g_error("%s.%s = 0x%llx: '%s' lacks '%s'", name, field, (unsigned long long)v,
			ret ? msg : "loaded", want);
	if (!want && ret)
		g_error("%s.%s = 0x%llx refused: %s", name, field, (unsigned long long)v, msg);
	fuzz_fini(&f);
}

/* hostile_in the first section called name that has such a field. */
static void hostile(const char *name, const char *field, unsigned nth, size_t off,
		    unsigned width, uint64_t v, const char *want)
{
	hostile_in(name, field, field, nth, off, width, v, want);
}

/*
 * virtio-blk's last list of parked heads, empty, as the section's last
 * field: its copy read a byte past the payload (ASan).
 */
static void test_blk_parked_last(void)
{
	struct fuzz f;
	struct mf_rec *r;
	char msg[512];

	fuzz_init(&f);
	r = section_with(f.recs, "virtio-pci", "io-status");
	for (unsigned i = 0; i < r->fields->len; i++)
		if (!strcmp(((struct mf_field *)r->fields->pdata[i])->name, "io-status"))
			g_ptr_array_remove_index(r->fields, i);
	g_assert_cmpint(fuzz_load(&f, f.recs, false, true, msg, sizeof(msg)), <, 0);
	g_assert_nonnull(strstr(msg, "field 'io-status' is missing"));
	fuzz_fini(&f);
}

/* The 16 bits at gpa of the RAM a stream carries. */
static uint16_t stream_ram_u16(GPtrArray *recs, uint64_t gpa)
{
	for (unsigned i = 0; i < recs->len; i++) {
		struct mf_rec *r = recs->pdata[i];
		uint64_t addr;
		uint16_t v = 0;

		if (r->tag != MIG_TAG_RAM_PAGE)
			continue;
		memcpy(&addr, r->raw->data, 8);
		if ((addr & ~MIG_PAGE_FLAGS) != (gpa & ~MIG_PAGE_FLAGS))
			continue;
		if (!(addr & MIG_PAGE_ZERO))
			memcpy(&v, r->raw->data + 8 + (gpa & MIG_PAGE_FLAGS), 2);
		return v;
	}
	g_error("no RAM page 0x%llx in the stream", (unsigned long long)gpa);
	return 0;
}

/*
 * Parked heads a stream names are read again from the ring when the guest
 * runs: the source's unnotified read on queue 1 (head 0), named parked,
 * completes on the destination once; a head that is no chain breaks the
 * queue and nothing completes.
 */
static void test_blk_parked_replay(void)
{
	static const uint16_t heads[] = { 0, 5 };

	for (unsigned i = 0; i < G_N_ELEMENTS(heads); i++) {
		struct fuzz f;
		struct mf_vm dst;
		struct mf_rec *r;
		uint16_t *used;
		uint8_t *b, *status;
		size_t len;
		char msg[512];
		uint16_t before;
		unsigned waited = 0;

		fuzz_init(&f);
		r = section_with(f.recs, "virtio-pci", "parked");
		g_byte_array_set_size(mf_field(r, "parked", 1), 2);
		memcpy(mf_field(r, "parked", 1)->data, &heads[i], 2);
		/* The driver published one request on queue 1: the device took it. */
		mf_set(mf_field(r, "queue", 1), 26, 2, 1);
		b = mf_serialize(f.recs, &len);
		mf_vm_init(&dst, f.dir, "dst", false);
		/* The used ring of queue 1 (vh_ring_init's layout for 64 entries). */
		used = vh_ptr(&dst.h.m.mem, MF_BLK_RINGS + 0x4000 + 0x1000 + 2, 2);
		status = vh_ptr(&dst.h.m.mem, MF_REQ + 16, 1);
		before = stream_ram_u16(f.recs, MF_BLK_RINGS + 0x4000 + 0x1000 + 2);
		if (mf_load(&dst, b, len, true, msg, sizeof(msg)))
			g_error("parked head %u refused: %s", heads[i], msg);
		while (heads[i] == 0 && __atomic_load_n(used, __ATOMIC_ACQUIRE) == before &&
		       waited++ < 10000)
			g_usleep(1000);
		g_assert_cmpuint(*used, ==, (uint16_t)(before + (heads[i] == 0)));
		if (heads[i] == 0)
			g_assert_cmpuint(*status, ==, VIRTIO_BLK_S_OK);
		mf_vm_destroy(&dst);
		g_free(b);
		fuzz_fini(&f);
	}
}

/*
 * The RTC's guest clock offset overflowed host time + offset (UBSan); its
 * index and status registers with bits the RTC never keeps.
 */
static void test_rtc_offset(void)
{
	hostile("mc146818rtc", "offset-ns", 0, 0, 8, INT64_MAX,
		"offset-ns 9223372036854775807 is more than 2^62 ns");
	hostile("mc146818rtc", "offset-ns", 0, 0, 8, (uint64_t)INT64_MIN, "offset-ns");
	hostile("mc146818rtc", "index", 0, 0, 1, 0x80, "index 0x80");
	hostile("mc146818rtc", "cmos", 0, 0x0c, 1, 0x01, "C 0x01 has bits");
	/* A century away either way is a clock a guest may set. */
	hostile("mc146818rtc", "offset-ns", 0, 0, 8, 100ull * 365 * 86400 * 1000000000, NULL);
	hostile("mc146818rtc", "offset-ns", 0, 0, 8, -100ll * 365 * 86400 * 1000000000, NULL);
}

/*
 * A PIT channel running without a count loaded (reload 0): reading its
 * count divided by zero (SIGFPE).  Channel 1 never got a count.
 */
static void test_pit_running_unloaded(void)
{
	hostile("tcg-vm", "pit.running", 1, 0, 1, 1, "PIT channel 1: running without a count");
}

/*
 * What the guest cannot write in PCI config space came from the stream
 * unchecked: a capability list pointer, a 64-bit BAR turned 32-bit, the
 * MSI-X table size.  Now only writable bits may differ.
 */
static void test_pci_read_only(void)
{
	hostile("virtio-pci", "pci-config", 0, PCI_CAPABILITY_LIST, 1, 0xfc,
		"PCI config byte 0x34 is 0xfc");
	hostile("virtio-pci", "pci-config", 0, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR, 1, 0,
		"PCI config byte 0x20 is 0x00");
	hostile("pci-host", "pci-config", 0, PCI_VENDOR_ID, 2, 0x1234, "PCI identity differs");
	/* The command register is the guest's: memory decoding off loads. */
	hostile("virtio-pci", "pci-config", 0, PCI_COMMAND, 2, PCI_COMMAND_MASTER, NULL);
}

/*
 * virtio-scsi: sizes a driver cannot set (it may set up to 4096), and
 * media notifications subscribed on a disk, which has none.
 */
static void test_scsi_config(void)
{
	/* The units go newest first: the CD-ROM (LUN 1), then the disk. */
	hostile("virtio-pci", "an-subscribed", 1, 0, 4, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE,
		"unit scsi-id=0 lun=0: notification classes 0x10 beyond the 0x0");
	hostile("virtio-pci", "an-subscribed", 0, 0, 4, VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE, NULL);
	hostile_in("virtio-pci", "units", "device-config", 0,
		   offsetof(struct virtio_scsi_config, sense_size), 4, 4097,
		   "sense_size 4097 or cdb_size 32 above 4096");
	hostile_in("virtio-pci", "units", "device-config", 0,
		   offsetof(struct virtio_scsi_config, cdb_size), 4, 4096, NULL);
}

/*
 * virtio-pci transport state no driver can reach: a vector the function
 * lacks (it reads back as NO_VECTOR), DRIVER_OK without FEATURES_OK or
 * with the device stopped, ISR bits the device never sets.
 */
static void test_virtio_pci_state(void)
{
	hostile("virtio-pci", "config-vector", 0, 0, 2, 0x7ff, "the config vector 2047 of 3");
	hostile("virtio-pci", "config-vector", 0, 0, 2, VIRTIO_PCI_NO_VECTOR, NULL);
	hostile("virtio-pci", "queue-vectors", 0, 2, 2, 3, "a queue's vector 3 of 3");
	hostile("virtio-pci", "status", 0, 0, 1, VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DRIVER,
		"DRIVER_OK without FEATURES_OK");
	hostile("virtio-pci", "started", 0, 0, 1, 0, "with the device not started");
	hostile("virtio-pci", "isr", 0, 0, 1, 0x80, "isr 0x80");
}

/*
 * The UART: 16 bytes in its receive FIFO with the FIFO off (room for one),
 * which rx_push_locked then counted past; register bits no write sets.
 */
static void test_uart_state(void)
{
	struct fuzz f;
	struct mf_rec *r;
	char msg[512];

	fuzz_init(&f);
	r = mf_section(f.recs, "serial", 0);
	g_byte_array_set_size(mf_field(r, "rx-fifo", 0), 16);
	mf_field(r, "lsr", 0)->data[0] |= 0x01;		/* data ready */
	g_assert_cmpint(fuzz_load(&f, f.recs, false, true, msg, sizeof(msg)), <, 0);
	g_assert_nonnull(strstr(msg, "FIFO of 16 bytes (room for 1)"));
	fuzz_fini(&f);
	hostile("serial", "ier", 0, 0, 1, 0x1f, "ier 0x1f");
	hostile("serial", "lsr", 0, 0, 1, 0x61, "lsr 0x61");
	hostile("serial", "scr", 0, 0, 1, 0xa5, NULL);
}

/* ACPI PM registers with bits they lack: taken masked before, now refused. */
static void test_acpi_bits(void)
{
	hostile("acpi", "pm1-cnt", 0, 0, 2, 0xffff, "pm1-cnt 0xffff");
	hostile("acpi", "pm1-sts", 0, 0, 2, 0x0100, NULL);	/* the power button */
}

/* i8042 waiting for the data byte of a command that takes none. */
static void test_i8042_pending(void)
{
	hostile("i8042", "pending", 0, 0, 1, 0xaa, "pending command 0xaa takes no data byte");
	hostile("i8042", "pending", 0, 0, 1, 0xd1, NULL);
}

/*
 * The irqchip's timer thread runs until the VM goes, after the vCPUs: a
 * timer that fired while machine_destroy freed them kicked a freed vCPU
 * (ASan, found when a loaded LAPIC timer fired at teardown).  Here the
 * interrupt comes from the test, for vCPU 0 between the frees.
 */
static void test_kick_freed_vcpu(void)
{
	char *dir = g_dir_make_tmp("vireo-migfuzz-XXXXXX", NULL);
	struct mf_vm vm;
	struct machine *m = &vm.h.m;

	mf_vm_init(&vm, dir, "kick", false);
	vcpu_destroy(m->vcpus[0]);
	/* An NMI and an INIT for APIC 0: delivered even with the LAPIC off. */
	machine_send_msi(m, MEM_LAPIC_BASE, 0x400);
	machine_send_msi(m, MEM_LAPIC_BASE, 0x500);
	for (unsigned i = 1; i < m->nr_vcpus; i++)
		vcpu_destroy(m->vcpus[i]);
	free(m->vcpus);
	m->vcpus = NULL;
	m->nr_vcpus = 0;
	mf_vm_destroy(&vm);
	mf_dir_remove(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/migration/hostile/blk-parked-last", test_blk_parked_last);
	g_test_add_func("/migration/hostile/blk-parked-replay", test_blk_parked_replay);
	g_test_add_func("/migration/hostile/rtc-offset", test_rtc_offset);
	g_test_add_func("/migration/hostile/pit-running-unloaded", test_pit_running_unloaded);
	g_test_add_func("/migration/hostile/kick-freed-vcpu", test_kick_freed_vcpu);
	g_test_add_func("/migration/hostile/pci-read-only", test_pci_read_only);
	g_test_add_func("/migration/hostile/i8042-pending", test_i8042_pending);
	g_test_add_func("/migration/hostile/scsi-config", test_scsi_config);
	g_test_add_func("/migration/hostile/virtio-pci-state", test_virtio_pci_state);
	g_test_add_func("/migration/hostile/uart-state", test_uart_state);
	g_test_add_func("/migration/hostile/acpi-bits", test_acpi_bits);
	return g_test_run();
}
