/*
 * Runtime shared by the bare-metal test guests: serial output on COM1, a
 * printf subset, port and MMIO access, the LAPIC, PCI configuration space,
 * the boot information of every supported boot protocol and the exit
 * through isa-debug-exit.  Compiled both for 32-bit protected mode
 * (multiboot v1 and PVH) and for 64-bit long mode (Linux bzImage).
 */
#ifndef GUEST_RT_H
#define GUEST_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * isa-debug-exit at 0xf4: the VMM exits with (value << 1) | 1, so a test
 * sees 33 for a pass and 35 for a failure (a VMM that exits 0 or 1 by
 * itself can never be mistaken for a guest verdict).
 */
#define DEBUG_EXIT_PORT	0xf4
#define EXIT_PASS	0x10
#define EXIT_FAIL	0x11

#define COM1		0x3f8
#define LAPIC_BASE	0xfee00000u

/* LAPIC register offsets (SDM vol. 3, table 10-1). */
#define LAPIC_ID	0x020
#define LAPIC_EOI	0x0b0
#define LAPIC_SVR	0x0f0
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define LAPIC_LVT_TIMER	0x320
#define LAPIC_TIMER_ICR	0x380
#define LAPIC_TIMER_CCR	0x390
#define LAPIC_TIMER_DCR	0x3e0

#define MMAP_MAX	64

struct mmap_entry {
	uint64_t base, size;
	uint32_t type;
};

/* What the boot protocol handed over, in one form for every protocol. */
struct bootinfo {
	const char *proto;		/* "multiboot", "pvh", "linux" */
	const char *cmdline;		/* never NULL */
	unsigned nr_mmap;
	struct mmap_entry mmap[MMAP_MAX];
	uint64_t rsdp;			/* 0: not given, scan the BIOS area */
};

/* Each guest provides this; the runtime calls it once on the BSP. */
void guest_main(struct bootinfo *bi);

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
	asm volatile("pause" ::: "memory");
}

static inline uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

static inline unsigned lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

struct spinlock {
	volatile uint32_t locked;
};

static inline void spin_lock(struct spinlock *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (l->locked)
			cpu_relax();
}

static inline void spin_unlock(struct spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);

/* %s %c %d %u %x %X %p %%, flags '0' and '-', width, 'l' and 'll'. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

/* Leave through isa-debug-exit; halts forever if the device is missing. */
void __attribute__((noreturn)) guest_exit(uint32_t value);
/* Print "FAIL: <message>" and exit with EXIT_FAIL. */
void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...);
void __attribute__((noreturn)) halt_forever(void);

uint32_t pci_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off);

/* Command line words: "word" or "key=value". */
int cmdline_has(const char *cmdline, const char *word);
/* Value of key=N (decimal or 0x hex); def when absent or malformed. */
unsigned long cmdline_uint(const char *cmdline, const char *key, unsigned long def);

/* Find an ACPI table by signature through the RSDP (0: not found). */
uintptr_t acpi_find_table(const struct bootinfo *bi, const char sig[4]);

/* 32-bit builds only: an IDT whose unhandled vectors fail the test. */
void idt_init(void);
void idt_set_handler(unsigned vector, void (*fn)(unsigned vector));

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
size_t strlen(const char *s);
int memcmp(const void *a, const void *b, size_t n);

#endif
