/*
 * Firmware-less boot: read the -kernel file, tell its format, and hand it
 * to the loader for that format (boot_linux.c, boot_pvh.c,
 * boot_multiboot.c).  The helpers here are the only way the loaders touch
 * guest RAM or the file, and every one of them is bounded: a hostile kernel
 * image, initrd or command line ends in an error message naming the file,
 * never in a write outside RAM or a read past the end of the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "boot.h"
#include "machine.h"
#include "memory.h"
#include "hw/boot_priv.h"

#define APIC_BASE_BSP		(1ull << 8)

static int boot_vfail(struct boot_ctx *c, const char *file, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(c->err, c->errlen, "%s: %s", file, msg);
	return -EINVAL;
}

int boot_fail(struct boot_ctx *c, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = boot_vfail(c, c->path, fmt, ap);
	va_end(ap);
	return ret;
}

int boot_fail_initrd(struct boot_ctx *c, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = boot_vfail(c, c->initrd_path, fmt, ap);
	va_end(ap);
	return ret;
}

bool boot_in_file(const struct boot_ctx *c, uint64_t off, uint64_t len)
{
	return off <= c->size && len <= c->size - off;
}

bool boot_rd8(const struct boot_ctx *c, uint64_t off, uint8_t *v)
{
	if (!boot_in_file(c, off, 1))
		return false;
	*v = c->buf[off];
	return true;
}

bool boot_rd16(const struct boot_ctx *c, uint64_t off, uint16_t *v)
{
	if (!boot_in_file(c, off, 2))
		return false;
	*v = c->buf[off] | (uint16_t)c->buf[off + 1] << 8;
	return true;
}

bool boot_rd32(const struct boot_ctx *c, uint64_t off, uint32_t *v)
{
	uint16_t lo, hi;

	if (!boot_rd16(c, off, &lo) || !boot_rd16(c, off + 2, &hi))
		return false;
	*v = lo | (uint32_t)hi << 16;
	return true;
}

bool boot_rd64(const struct boot_ctx *c, uint64_t off, uint64_t *v)
{
	uint32_t lo, hi;

	if (!boot_rd32(c, off, &lo) || !boot_rd32(c, off + 4, &hi))
		return false;
	*v = lo | (uint64_t)hi << 32;
	return true;
}

/* Every byte of [gpa, gpa+len) in an E820_RAM entry (entries may abut). */
bool boot_is_ram(const struct boot_ctx *c, uint64_t gpa, uint64_t len)
{
	uint64_t cur = gpa, end = gpa + len;
	unsigned i;

	if (!len || end < gpa)
		return false;
	while (cur < end) {
		for (i = 0; i < c->nr_e820; i++) {
			const struct e820_entry *e = &c->e820[i];

			if (e->type == E820_RAM && cur >= e->addr &&
			    cur - e->addr < e->size)
				break;
		}
		if (i == c->nr_e820)
			return false;
		cur = c->e820[i].addr + c->e820[i].size;
		if (cur < c->e820[i].addr)	/* entry reaching 2^64 */
			break;
	}
	return gpa_to_hva(c->mem, gpa, len) != NULL;
}

int boot_check_dest(struct boot_ctx *c, uint64_t gpa, uint64_t len, const char *what)
{
	if (gpa + len < gpa)
		return boot_fail(c, "%s at 0x%" PRIx64 " (0x%" PRIx64 " bytes) wraps around the address space",
				 what, gpa, len);
	if (gpa < BOOT_LOW_END)
		return boot_fail(c, "%s at 0x%" PRIx64 "-0x%" PRIx64 " overlaps the boot structures below 0x%x",
				 what, gpa, gpa + len, BOOT_LOW_END);
	if (!boot_is_ram(c, gpa, len))
		return boot_fail(c, "%s at 0x%" PRIx64 "-0x%" PRIx64 " is outside guest RAM",
				 what, gpa, gpa + len);
	return 0;
}

int boot_copy(struct boot_ctx *c, uint64_t gpa, uint64_t off, uint64_t filesz,
	      uint64_t memsz, const char *what)
{
	uint8_t *hva;
	int ret;

	if (filesz > memsz)
		return boot_fail(c, "%s: file size 0x%" PRIx64 " exceeds memory size 0x%" PRIx64,
				 what, filesz, memsz);
	if (!boot_in_file(c, off, filesz))
		return boot_fail(c, "truncated: %s (offset 0x%" PRIx64 ", 0x%" PRIx64
				 " bytes) ends past the end of the file (0x%zx bytes)",
				 what, off, filesz, c->size);
	if (!memsz)
		return 0;
	ret = boot_check_dest(c, gpa, memsz, what);
	if (ret)
		return ret;
	hva = gpa_to_hva(c->mem, gpa, memsz);
	memcpy(hva, c->buf + off, filesz);
	memset(hva + filesz, 0, memsz - filesz);
	return 0;
}

int boot_write(struct boot_ctx *c, uint64_t gpa, const void *data, size_t len)
{
	if (guest_write(c->mem, gpa, data, len))
		return boot_fail(c, "guest RAM too small for the boot structures at 0x%" PRIx64, gpa);
	return 0;
}

int boot_initrd_place(struct boot_ctx *c, uint64_t floor, uint64_t top, bool high,
		      uint64_t *gpa)
{
	uint64_t size = c->initrd_size, best = 0;
	bool found = false;
	unsigned i;

	if (floor < BOOT_LOW_END)
		floor = BOOT_LOW_END;
	for (i = 0; i < c->nr_e820; i++) {
		const struct e820_entry *e = &c->e820[i];
		uint64_t lo = MAX(e->addr, floor);
		uint64_t hi = MIN(e->addr + e->size, top);
		uint64_t at;

		if (e->type != E820_RAM || hi <= lo || hi - lo < size)
			continue;
		if (high) {
			at = (hi - size) & ~(BOOT_PAGE - 1);
			if (at < lo)
				continue;
		} else {
			at = (lo + BOOT_PAGE - 1) & ~(BOOT_PAGE - 1);
			if (at < lo || at > hi || hi - at < size)
				continue;
		}
		if (!boot_is_ram(c, at, size))
			continue;
		if (!found || (high ? at > best : at < best))
			best = at;
		found = true;
	}
	if (!found)
		return boot_fail_initrd(c, "initrd of 0x%" PRIx64 " bytes does not fit in guest RAM "
					"between 0x%" PRIx64 " and 0x%" PRIx64,
					size, floor, top);
	*gpa = best;
	return 0;
}

int boot_initrd_load(struct boot_ctx *c, uint64_t gpa)
{
	uint8_t *hva = gpa_to_hva(c->mem, gpa, c->initrd_size);
	uint64_t done = 0;

	if (!hva)
		return boot_fail_initrd(c, "initrd destination 0x%" PRIx64 " is outside guest RAM", gpa);
	while (done < c->initrd_size) {
		size_t chunk = MIN(c->initrd_size - done, (uint64_t)1 << 30);
		ssize_t n = pread(c->initrd_fd, hva + done, chunk, done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return boot_fail_initrd(c, "read: %s", strerror(errno));
		if (n == 0)
			return boot_fail_initrd(c, "file shrank to 0x%" PRIx64 " bytes while loading", done);
		done += n;
	}
	return 0;
}

int boot_cmdline_write(struct boot_ctx *c, size_t max_len, const char *limit_name)
{
	if (max_len > BOOT_CMDLINE_MAX - 1)
		max_len = BOOT_CMDLINE_MAX - 1;
	if (c->cmdline_len > max_len)
		return boot_fail(c, "command line (-append) is %zu bytes, longer than the %s of %zu bytes",
				 c->cmdline_len, limit_name, max_len);
	return boot_write(c, BOOT_CMDLINE_ADDR, c->cmdline, c->cmdline_len + 1);
}

int boot_gdt_write(struct boot_ctx *c, bool long_mode)
{
	/* Flat 4 GiB, present, DPL 0: code execute/read, data read/write. */
	uint64_t gdt[BOOT_GDT_SIZE / 8] = {
		0, 0,
		long_mode ? 0x00AF9B000000FFFFull : 0x00CF9B000000FFFFull,
		0x00CF93000000FFFFull,
	};

	return boot_write(c, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

/* The whole kernel file, read with pread() and bounded by guest RAM. */
static int boot_read_kernel(struct boot_ctx *c, uint8_t **bufp)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, ret = 0;

	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return boot_fail(c, "cannot open kernel: %s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = boot_fail(c, "stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = boot_fail(c, "kernel is not a regular file");
		goto out;
	}
	if (st.st_size == 0) {
		ret = boot_fail(c, "kernel file is empty");
		goto out;
	}
	if ((uint64_t)st.st_size > c->mem->ram_size) {
		ret = boot_fail(c, "kernel file (%lld bytes) is larger than guest RAM",
				(long long)st.st_size);
		goto out;
	}
	buf = g_malloc(st.st_size);
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, st.st_size - done, done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n ? boot_fail(c, "read: %s", strerror(errno))
				: boot_fail(c, "file shrank while reading");
			g_free(buf);
			goto out;
		}
		done += n;
	}
	*bufp = buf;
	c->size = done;
out:
	close(fd);
	return ret;
}

static int boot_open_initrd(struct boot_ctx *c)
{
	struct stat st;

	c->initrd_fd = open(c->initrd_path, O_RDONLY | O_CLOEXEC);
	if (c->initrd_fd < 0)
		return boot_fail_initrd(c, "cannot open initrd: %s", strerror(errno));
	if (fstat(c->initrd_fd, &st) < 0)
		return boot_fail_initrd(c, "stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return boot_fail_initrd(c, "initrd is not a regular file");
	if (st.st_size == 0)
		return boot_fail_initrd(c, "initrd file is empty");
	c->initrd_size = st.st_size;
	return 0;
}

static int boot_dispatch(struct boot_ctx *c, struct cpu_state *bsp)
{
	struct boot_elf elf;
	uint64_t entry;
	long mb;
	int is_elf, ret;

	if (boot_linux_probe(c))
		return boot_linux_load(c, bsp);

	is_elf = boot_elf_parse(c, &elf);
	if (is_elf < 0)
		return is_elf;
	if (is_elf) {
		ret = boot_elf_pvh_entry(c, &elf, &entry);
		if (ret < 0)
			return ret;
		if (ret)
			return boot_pvh_load(c, &elf, entry, bsp);
	}
	mb = boot_multiboot_find(c);
	if (mb >= 0)
		return boot_multiboot_load(c, mb, bsp);
	mb = boot_multiboot_bad_checksum(c);
	if (mb >= 0)
		return boot_fail(c, "multiboot header at offset 0x%lx has a bad checksum", mb);
	return boot_fail(c, "not a bzImage, PVH ELF or multiboot kernel");
}

int boot_load(struct machine *m, struct cpu_state *bsp, char *err, size_t errlen)
{
	struct boot_ctx c = {
		.m = m,
		.mem = &m->mem,
		.path = m->cfg.kernel,
		.cmdline = m->cfg.append ? m->cfg.append : "",
		.initrd_path = m->cfg.initrd,
		.initrd_fd = -1,
		.err = err,
		.errlen = errlen,
	};
	uint8_t *buf = NULL;
	int ret;

	if (!c.path) {
		snprintf(err, errlen, "no kernel to boot (-kernel)");
		return -EINVAL;
	}
	c.cmdline_len = strlen(c.cmdline);
	c.lowmem_end = guest_mem_lowmem_end(&m->mem);
	c.nr_e820 = machine_e820(m, c.e820, E820_MAX);
	if (!c.nr_e820)
		return boot_fail(&c, "the machine has no memory map");

	ret = boot_read_kernel(&c, &buf);
	if (ret)
		return ret;
	c.buf = buf;
	if (c.initrd_path) {
		ret = boot_open_initrd(&c);
		if (ret)
			goto out;
	}

	cpu_state_reset(bsp);
	bsp->apic_base |= APIC_BASE_BSP;
	ret = boot_dispatch(&c, bsp);
out:
	if (c.initrd_fd >= 0)
		close(c.initrd_fd);
	g_free(buf);
	return ret;
}
