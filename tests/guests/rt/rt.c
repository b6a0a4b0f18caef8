/*
 * Guest runtime: serial console, printf, exit, PCI, command line and ACPI
 * helpers.  Freestanding: no libc, no libgcc (so no 64-bit division in the
 * 32-bit build; numbers are converted 16 bits at a time).
 */
#include "rt.h"

#define UART_THR	0
#define UART_IER	1
#define UART_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_DLL	0
#define UART_DLM	1
#define LSR_THRE	0x20

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x80);	/* DLAB: divisor follows */
	outb(COM1 + UART_DLL, 0x01);	/* 115200 baud */
	outb(COM1 + UART_DLM, 0x00);
	outb(COM1 + UART_LCR, 0x03);	/* 8N1 */
	outb(COM1 + UART_FCR, 0xc7);
	outb(COM1 + UART_MCR, 0x03);
}

void serial_putc(char c)
{
	/* A missing UART reads 0xff: THRE looks set, so this cannot hang. */
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		cpu_relax();
	outb(COM1 + UART_THR, (uint8_t)c);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

/* *n /= base, returns the remainder; base <= 16, 32-bit operations only. */
static unsigned divmod(uint64_t *n, unsigned base)
{
	uint32_t hi = (uint32_t)(*n >> 32), lo = (uint32_t)*n;
	uint32_t qhi = hi / base, r = hi % base, t, q1, q0;

	t = (r << 16) | (lo >> 16);
	q1 = t / base;
	r = t % base;
	t = (r << 16) | (lo & 0xffff);
	q0 = t / base;
	r = t % base;
	*n = ((uint64_t)qhi << 32) | (q1 << 16) | q0;
	return r;
}

static void put_pad(char c, int n, int *count)
{
	while (n-- > 0) {
		serial_putc(c);
		(*count)++;
	}
}

static void put_num(uint64_t v, unsigned base, int upper, int neg, int width,
		    int zero, int left, int *count)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char buf[24];
	int n = 0, len;

	do {
		buf[n++] = digits[divmod(&v, base)];
	} while (v);
	len = n + neg;
	if (neg && zero)
		serial_putc('-');
	if (!left)
		put_pad(zero ? '0' : ' ', width - len, count);
	if (neg && !zero)
		serial_putc('-');
	*count += len;
	while (n)
		serial_putc(buf[--n]);
	if (left)
		put_pad(' ', width - len, count);
}

int vprintf(const char *fmt, va_list ap)
{
	int count = 0;

	for (; *fmt; fmt++) {
		int width = 0, zero = 0, left = 0, lng = 0;
		uint64_t u;
		int64_t s;

		if (*fmt != '%') {
			serial_putc(*fmt);
			count++;
			continue;
		}
		fmt++;
		for (; *fmt == '0' || *fmt == '-'; fmt++) {
			if (*fmt == '0')
				zero = 1;
			else
				left = 1;
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			width = width * 10 + (*fmt - '0');
		for (; *fmt == 'l'; fmt++)
			lng++;
		if (left)
			zero = 0;
		switch (*fmt) {
		case 'd':
			s = lng >= 2 ? va_arg(ap, long long) :
			    lng ? va_arg(ap, long) : va_arg(ap, int);
			u = s < 0 ? -(uint64_t)s : (uint64_t)s;
			put_num(u, 10, 0, s < 0, width, zero, left, &count);
			break;
		case 'u':
		case 'x':
		case 'X':
			u = lng >= 2 ? va_arg(ap, unsigned long long) :
			    lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			put_num(u, *fmt == 'u' ? 10 : 16, *fmt == 'X', 0, width,
				zero, left, &count);
			break;
		case 'p':
			serial_puts("0x");
			count += 2;
			put_num((uintptr_t)va_arg(ap, void *), 16, 0, 0, width,
				zero, left, &count);
			break;
		case 'c':
			serial_putc((char)va_arg(ap, int));
			count++;
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			int len;

			if (!str)
				str = "(null)";
			len = (int)strlen(str);
			if (!left)
				put_pad(' ', width - len, &count);
			serial_puts(str);
			count += len;
			if (left)
				put_pad(' ', width - len, &count);
			break;
		}
		case '%':
			serial_putc('%');
			count++;
			break;
		case '\0':
			return count;
		default:
			/* Unknown conversion: show it rather than guess. */
			serial_putc('%');
			serial_putc(*fmt);
			count += 2;
			break;
		}
	}
	return count;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

void halt_forever(void)
{
	for (;;)
		asm volatile("cli; hlt");
}

void guest_exit(uint32_t value)
{
	uint64_t t0;

	outl(DEBUG_EXIT_PORT, value);
	/*
	 * A VMM may let this vCPU run on while it tears the VM down, so wait
	 * a while (~2 s of TSC at a few GHz) before saying the device is
	 * missing, lest the message end up in a passing test's output.
	 */
	t0 = rdtsc();
	while (rdtsc() - t0 < (1ull << 32))
		cpu_relax();
	serial_puts("rt: isa-debug-exit did not end the VM\n");
	halt_forever();
}

void fail(const char *fmt, ...)
{
	va_list ap;

	serial_puts("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	serial_putc('\n');
	guest_exit(EXIT_FAIL);
}

uint32_t pci_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	outl(0xcf8, 0x80000000u | (bus << 16) | (dev << 11) | (fn << 8) | (off & 0xfc));
	return inl(0xcfc);
}

/* Start of the word "key" (followed by end, space or '='), or NULL. */
static const char *cmdline_find(const char *cmdline, const char *key)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!memcmp(p, key, klen) &&
		    (p[klen] == '\0' || p[klen] == ' ' || p[klen] == '='))
			return p;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

int cmdline_has(const char *cmdline, const char *word)
{
	const char *p = cmdline_find(cmdline, word);

	return p && p[strlen(word)] != '=';
}

unsigned long cmdline_uint(const char *cmdline, const char *key, unsigned long def)
{
	const char *p = cmdline_find(cmdline, key);
	unsigned long v = 0;
	unsigned base = 10;
	int digits = 0;

	if (!p || p[strlen(key)] != '=')
		return def;
	p += strlen(key) + 1;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (; *p && *p != ' '; p++, digits++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return def;
		v = v * base + d;
	}
	return digits ? v : def;
}

static int acpi_checksum_ok(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return sum == 0;
}

static uintptr_t acpi_find_rsdp(const struct bootinfo *bi)
{
	uintptr_t a;

	if (bi->rsdp)
		return (uintptr_t)bi->rsdp;
	for (a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8) &&
		    acpi_checksum_ok((const void *)a, 20))
			return a;
	return 0;
}

uintptr_t acpi_find_table(const struct bootinfo *bi, const char sig[4])
{
	uintptr_t rsdp = acpi_find_rsdp(bi), sdt;
	unsigned entsz, i, n;
	uint64_t xsdt = 0;
	uint32_t len;

	if (!rsdp)
		return 0;
	if (*(const uint8_t *)(rsdp + 15) >= 2)
		memcpy(&xsdt, (const void *)(rsdp + 24), 8);
	if (xsdt && xsdt < 0x100000000ull) {
		sdt = (uintptr_t)xsdt;
		entsz = 8;
	} else {
		sdt = *(const uint32_t *)(rsdp + 16);
		entsz = 4;
	}
	if (!sdt)
		return 0;
	len = *(const uint32_t *)(sdt + 4);
	n = len < 36 ? 0 : (len - 36) / entsz;
	for (i = 0; i < n; i++) {
		uint64_t t = 0;

		memcpy(&t, (const void *)(sdt + 36 + i * entsz), entsz);
		if (t && t < 0x100000000ull && !memcmp((const void *)(uintptr_t)t, sig, 4))
			return (uintptr_t)t;
	}
	return 0;
}
