/*
 * ELF images for the PVH and multiboot loaders: the header and program
 * headers of 32- and 64-bit little-endian x86 images, the Xen PVH entry
 * note, and loading PT_LOAD segments at their physical addresses.  Every
 * offset and size comes from the file, so each is checked against its end.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "hw/boot_priv.h"

#define EI_CLASS		4
#define EI_DATA			5
#define EI_VERSION		6
#define ELFCLASS32		1
#define ELFCLASS64		2
#define ELFDATA2LSB		1
#define EM_386			3
#define EM_X86_64		62
#define PT_LOAD			1
#define PT_NOTE			4
#define SHT_NOTE		7
#define PN_XNUM			0xFFFF

#define XEN_ELFNOTE_PHYS32_ENTRY 18

int boot_elf_parse(struct boot_ctx *c, struct boot_elf *e)
{
	uint8_t cls, data, ver;
	uint32_t entry32, phoff32, shoff32;

	if (c->size < 4 || memcmp(c->buf, "\x7f" "ELF", 4))
		return 0;
	if (!boot_rd8(c, EI_CLASS, &cls) || !boot_rd8(c, EI_DATA, &data) ||
	    !boot_rd8(c, EI_VERSION, &ver))
		return boot_fail(c, "truncated ELF header");
	if ((cls != ELFCLASS32 && cls != ELFCLASS64) || data != ELFDATA2LSB || ver != 1)
		return boot_fail(c, "ELF image is not a little-endian 32- or 64-bit ELF version 1");
	memset(e, 0, sizeof(*e));
	e->is64 = cls == ELFCLASS64;
	if (!boot_in_file(c, 0, e->is64 ? 64 : 52))
		return boot_fail(c, "truncated ELF header");
	boot_rd16(c, 18, &e->machine);
	if (e->machine != (e->is64 ? EM_X86_64 : EM_386))
		return boot_fail(c, "ELF machine %u is not %s", e->machine,
				 e->is64 ? "x86-64" : "i386");
	if (e->is64) {
		boot_rd64(c, 24, &e->entry);
		boot_rd64(c, 32, &e->phoff);
		boot_rd64(c, 40, &e->shoff);
		boot_rd16(c, 54, &e->phentsize);
		boot_rd16(c, 56, &e->phnum);
		boot_rd16(c, 58, &e->shentsize);
		boot_rd16(c, 60, &e->shnum);
	} else {
		boot_rd32(c, 24, &entry32);
		boot_rd32(c, 28, &phoff32);
		boot_rd32(c, 32, &shoff32);
		e->entry = entry32;
		e->phoff = phoff32;
		e->shoff = shoff32;
		boot_rd16(c, 42, &e->phentsize);
		boot_rd16(c, 44, &e->phnum);
		boot_rd16(c, 46, &e->shentsize);
		boot_rd16(c, 48, &e->shnum);
	}
	if (e->phnum == PN_XNUM)
		return boot_fail(c, "ELF image with extended program header numbering is not supported");
	if (e->phnum && (e->phentsize < (e->is64 ? 56 : 32) ||
			 !boot_in_file(c, e->phoff, (uint64_t)e->phnum * e->phentsize)))
		return boot_fail(c, "truncated: the ELF program header table ends past the end of the file");
	if (!e->shoff)
		e->shnum = 0;
	if (e->shnum && (e->shentsize < (e->is64 ? 64 : 40) ||
			 !boot_in_file(c, e->shoff, (uint64_t)e->shnum * e->shentsize)))
		return boot_fail(c, "truncated: the ELF section header table ends past the end of the file");
	return 1;
}

void boot_elf_phdr(const struct boot_ctx *c, const struct boot_elf *e, unsigned i,
		   struct boot_phdr *ph)
{
	uint64_t p = e->phoff + (uint64_t)i * e->phentsize;
	uint32_t v[8];
	unsigned k;

	if (e->is64) {
		boot_rd32(c, p, &ph->type);
		boot_rd64(c, p + 8, &ph->offset);
		boot_rd64(c, p + 16, &ph->vaddr);
		boot_rd64(c, p + 24, &ph->paddr);
		boot_rd64(c, p + 32, &ph->filesz);
		boot_rd64(c, p + 40, &ph->memsz);
		boot_rd64(c, p + 48, &ph->align);
		return;
	}
	for (k = 0; k < 8; k++)
		boot_rd32(c, p + 4 * k, &v[k]);
	ph->type = v[0];
	ph->offset = v[1];
	ph->vaddr = v[2];
	ph->paddr = v[3];
	ph->filesz = v[4];
	ph->memsz = v[5];
	ph->align = v[7];
}

/*
 * Walk the notes in file bytes [off, off+len).  Notes are padded to 4
 * bytes, or 8 in a segment or section aligned to 8.
 */
static int elf_scan_notes(struct boot_ctx *c, uint64_t off, uint64_t len, uint64_t align,
			  uint64_t *entry)
{
	uint64_t pos = off, end, a = align == 8 ? 8 : 4;

	if (!boot_in_file(c, off, len))
		return boot_fail(c, "truncated: an ELF note area ends past the end of the file");
	end = off + len;
	while (end - pos >= 12) {
		uint32_t namesz, descsz, type;
		uint64_t name, desc, next;

		boot_rd32(c, pos, &namesz);
		boot_rd32(c, pos + 4, &descsz);
		boot_rd32(c, pos + 8, &type);
		name = pos + 12;
		desc = name + ((namesz + a - 1) & ~(a - 1));
		next = desc + ((descsz + a - 1) & ~(a - 1));
		if (next > end)
			return boot_fail(c, "malformed ELF note at file offset 0x%" PRIx64, pos);
		if (namesz == 4 && !memcmp(c->buf + name, "Xen", 4) &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			uint32_t e32;

			if (descsz == 4 && boot_rd32(c, desc, &e32))
				*entry = e32;
			else if (descsz != 8 || !boot_rd64(c, desc, entry))
				return boot_fail(c, "Xen PVH entry note has a %u-byte value", descsz);
			if (*entry >= MEM_4G)
				return boot_fail(c, "PVH entry point 0x%" PRIx64 " is above 4 GiB", *entry);
			return 1;
		}
		pos = next;
	}
	return 0;
}

int boot_elf_pvh_entry(struct boot_ctx *c, const struct boot_elf *e, uint64_t *entry)
{
	struct boot_phdr ph;
	unsigned i;
	int ret;

	for (i = 0; i < e->phnum; i++) {
		boot_elf_phdr(c, e, i, &ph);
		if (ph.type != PT_NOTE)
			continue;
		ret = elf_scan_notes(c, ph.offset, ph.filesz, ph.align, entry);
		if (ret)
			return ret;
	}
	for (i = 0; i < e->shnum; i++) {
		uint64_t sh = e->shoff + (uint64_t)i * e->shentsize;
		uint64_t off, size, align;
		uint32_t type, v32;

		boot_rd32(c, sh + 4, &type);
		if (type != SHT_NOTE)
			continue;
		if (e->is64) {
			boot_rd64(c, sh + 24, &off);
			boot_rd64(c, sh + 32, &size);
			boot_rd64(c, sh + 48, &align);
		} else {
			boot_rd32(c, sh + 16, &v32);
			off = v32;
			boot_rd32(c, sh + 20, &v32);
			size = v32;
			boot_rd32(c, sh + 32, &v32);
			align = v32;
		}
		ret = elf_scan_notes(c, off, size, align, entry);
		if (ret)
			return ret;
	}
	return 0;
}

int boot_elf_load(struct boot_ctx *c, const struct boot_elf *e, uint64_t entry,
		  bool entry_is_phys, uint64_t *entry_paddr, uint64_t *lo, uint64_t *hi)
{
	struct boot_phdr ph;
	bool found = false, loaded = false;
	char what[32];
	unsigned i;
	int ret;

	*lo = UINT64_MAX;
	*hi = 0;
	for (i = 0; i < e->phnum; i++) {
		boot_elf_phdr(c, e, i, &ph);
		if (ph.type != PT_LOAD || !ph.memsz)
			continue;
		snprintf(what, sizeof(what), "ELF segment %u", i);
		ret = boot_copy(c, ph.paddr, ph.offset, ph.filesz, ph.memsz, what);
		if (ret)
			return ret;
		loaded = true;
		*lo = MIN(*lo, ph.paddr);
		*hi = MAX(*hi, ph.paddr + ph.memsz);
		if (found)
			continue;
		if (entry_is_phys && entry >= ph.paddr && entry - ph.paddr < ph.memsz) {
			*entry_paddr = entry;
			found = true;
		} else if (!entry_is_phys && entry >= ph.vaddr && entry - ph.vaddr < ph.memsz) {
			*entry_paddr = ph.paddr + (entry - ph.vaddr);
			found = true;
		}
	}
	if (!loaded)
		return boot_fail(c, "ELF image has no loadable segment");
	if (!found)
		return boot_fail(c, "entry point 0x%" PRIx64 " lies outside the loaded segments", entry);
	if (*entry_paddr >= MEM_4G)
		return boot_fail(c, "entry point 0x%" PRIx64 " is above 4 GiB", *entry_paddr);
	return 0;
}
