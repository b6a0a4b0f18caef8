/*
 * The legacy PC devices that every machine has, created by machine_init.
 * (-device types register themselves with DEVICE_TYPE instead.)
 */
#ifndef VIREO_BOARD_H
#define VIREO_BOARD_H

#include <stddef.h>

struct machine;
struct opts;

/* 16550A UART number index (COM1..COM4) on a -serial backend spec ("none": not created). */
int uart_create(struct machine *m, unsigned index, const char *spec, char *err, size_t errlen);
/*
 * The serial ports that exist, for QMP query-chardev: fn(label, backend as
 * chardev_describe names it) for each, label "serial0".."serial3".
 */
void uart_for_each_chardev(struct machine *m,
			   void (*fn)(void *opaque, const char *label, const char *filename),
			   void *opaque);
/* MC146818 RTC and CMOS (time, memory size, RTC interrupt on IRQ 8). */
int rtc_create(struct machine *m, char *err, size_t errlen);
/* i8042 keyboard controller: its reset line reboots the machine. */
int i8042_create(struct machine *m, char *err, size_t errlen);
/*
 * -device isa-debug-exit (registered with DEVICE_TYPE; exported so that a
 * unit test linking the archive pulls in the file and its registration).
 */
int debug_exit_create(struct machine *m, struct opts *o, char *err, size_t errlen);

#endif
