/*
 * Reads the RTC's date and time (waiting out an update in progress, as a
 * BIOS does) and prints "rtc YYYY-MM-DD HH:MM:SS", for a test of -rtc
 * base= to compare with the host's clock.
 */
#include "rt/rt.h"

static uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

/* Register B's DM bit clear: the time registers are BCD. */
static unsigned value(uint8_t reg, int bcd)
{
	uint8_t v = cmos_read(reg);

	return bcd ? (v >> 4) * 10 + (v & 0xf) : v;
}

void guest_main(struct bootinfo *bi)
{
	int bcd = !(cmos_read(0x0b) & 0x04);

	(void)bi;
	while (cmos_read(0x0a) & 0x80)		/* UIP: an update is under way */
		;
	printf("rtc %u%02u-%02u-%02u %02u:%02u:%02u\n", value(0x32, bcd), value(0x09, bcd),
	       value(0x08, bcd), value(0x07, bcd), value(0x04, bcd), value(0x02, bcd),
	       value(0x00, bcd));
	guest_exit(EXIT_PASS);
}
