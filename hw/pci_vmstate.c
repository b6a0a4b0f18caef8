/*
 * Migration of a PCI function's generic state: config space (so BAR
 * addresses, command bits and the MSI-X control word), the INTx level and
 * the MSI-X table and pending bits.  The device's own state follows in the
 * same section, written by the device.
 */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "pci.h"
#include "pci_internal.h"
#include "vmstate.h"

static unsigned pba_len(const struct pci_msix *x)
{
	return (x->nr + 63) / 64 * 8;
}

void pci_device_save(struct pci_device *d, struct vmstate_out *o)
{
	pthread_mutex_lock(&d->lock);
	vmstate_put(o, "pci-config", d->config, PCI_CONFIG_SIZE);
	vmstate_put_bool(o, "pci-intx", d->intx_level);
	vmstate_put(o, "msix-table", d->msix.table, d->msix.table ? d->msix.nr * 16 : 0);
	vmstate_put(o, "msix-pba", d->msix.pba, d->msix.table ? pba_len(&d->msix) : 0);
	pthread_mutex_unlock(&d->lock);
}

int pci_device_load(struct pci_device *d, struct vmstate_in *in)
{
	struct pci_host *h = d->m->pci;
	struct pci_msix *x = &d->msix;
	uint8_t *config = g_malloc(PCI_CONFIG_SIZE);
	const void *table, *pba;
	uint32_t tlen, plen;
	bool intx;
	int ret;

	if ((ret = vmstate_get(in, "pci-config", config, PCI_CONFIG_SIZE)) ||
	    (ret = vmstate_get_bool(in, "pci-intx", &intx)) ||
	    (ret = vmstate_get_var(in, "msix-table", &table, &tlen)) ||
	    (ret = vmstate_get_var(in, "msix-pba", &pba, &plen)))
		goto out;
	if (tlen != (x->table ? x->nr * 16 : 0) || plen != (x->table ? pba_len(x) : 0)) {
		ret = vmstate_fail(in, "MSI-X table of %u bytes, this device has %u vectors",
				   tlen, x->nr);
		goto out;
	}
	/* The identity must match: the same device in the same slot. */
	if (memcmp(config + PCI_VENDOR_ID, d->config + PCI_VENDOR_ID, 4) ||
	    memcmp(config + PCI_REVISION_ID, d->config + PCI_REVISION_ID, 4) ||
	    memcmp(config + PCI_SUBSYSTEM_VENDOR_ID, d->config + PCI_SUBSYSTEM_VENDOR_ID, 4)) {
		ret = vmstate_fail(in, "PCI identity differs (another device in this slot)");
		goto out;
	}
	pthread_mutex_lock(&h->map_lock);
	pthread_mutex_lock(&d->lock);
	/*
	 * What the guest cannot write (capabilities, BAR sizes and types, the
	 * MSI-X table size and place...) is the destination's device's own:
	 * the stream may differ only where the guest could have written.
	 * The interrupt status follows pci-intx.
	 */
	for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++) {
		uint8_t ro = ~d->wmask[i] & (i == PCI_STATUS ? ~PCI_STATUS_INTERRUPT : 0xff);

		if ((config[i] ^ d->config[i]) & ro) {
			ret = vmstate_fail(in, "PCI config byte 0x%x is 0x%02x, this device has "
					   "0x%02x (bits the guest cannot write)", i, config[i],
					   d->config[i]);
			pthread_mutex_unlock(&d->lock);
			pthread_mutex_unlock(&h->map_lock);
			goto out;
		}
	}
	memcpy(d->config, config, PCI_CONFIG_SIZE);
	d->config[PCI_STATUS] = (config[PCI_STATUS] & ~PCI_STATUS_INTERRUPT) |
				(intx ? PCI_STATUS_INTERRUPT : 0);
	d->intx_level = intx;
	if (x->table) {
		uint16_t ctrl = d->config[x->cap + PCI_MSIX_FLAGS] |
				d->config[x->cap + PCI_MSIX_FLAGS + 1] << 8;

		memcpy(x->table, table, tlen);
		memcpy(x->pba, pba, plen);
		pci_msix_set_control(x, ctrl & PCI_MSIX_FLAGS_ENABLE,
				     ctrl & PCI_MSIX_FLAGS_MASKALL);
		for (unsigned v = 0; v < x->nr && x->vector_changed; v++)
			x->vector_changed(d, v);
	}
	pci_intx_update(d);
	pthread_mutex_unlock(&d->lock);
	if (pci_map_bars(d))
		ret = vmstate_fail(in, "a BAR of the source's layout cannot be mapped here");
	pci_remap_all(h);
	pthread_mutex_unlock(&h->map_lock);
out:
	g_free(config);
	return ret;
}
