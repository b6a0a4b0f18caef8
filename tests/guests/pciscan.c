/*
 * Walk PCI bus 0 through the 0xCF8/0xCFC configuration mechanism and print
 * every function present.
 */
#include "rt/rt.h"

void guest_main(struct bootinfo *bi)
{
	unsigned dev, fn, found = 0;

	(void)bi;
	for (dev = 0; dev < 32; dev++) {
		for (fn = 0; fn < 8; fn++) {
			uint32_t id = pci_read32(0, dev, fn, 0x00);
			uint32_t class, hdr;

			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;	/* no device: no other function */
				continue;
			}
			class = pci_read32(0, dev, fn, 0x08) >> 8;
			hdr = (pci_read32(0, dev, fn, 0x0c) >> 16) & 0xff;
			printf("pci 00:%02x.%u vendor=%04x device=%04x class=%06x\n",
			       dev, fn, id & 0xffff, id >> 16, class);
			found++;
			if (fn == 0 && !(hdr & 0x80))
				break;		/* single-function device */
		}
	}
	printf("pciscan: %u functions\n", found);
	guest_exit(EXIT_PASS);
}
