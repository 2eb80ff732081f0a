/*
 * pktkit/ported.h -- the entry symbol of a ported driver built as a shared
 * object (compat-bsd).
 *
 * A ported driver built into pktkit is described by its crate's Rust
 * `PortedDriver`; one built separately (`cc -shared -fPIC ... -o foo.so`,
 * loaded with `pktkit run -d /path/foo.so,pci=BDF`) describes itself with
 * PKTKIT_PORTED_DRIVER in one of its files, after its CFATTACH_DECL*_NEW:
 *
 *	static const struct pktkit_ported_id rtk_ids[] = {
 *		{ PCI_VENDOR_REALTEK, PCI_PRODUCT_REALTEK_RT8139 },
 *		{ 0, 0 }
 *	};
 *	PKTKIT_PORTED_DRIVER(rtk, "rtk", "Realtek RTL8139", PKTKIT_BUS_PCI,
 *	    rtk_ids, NULL, 64);
 *
 * The object resolves the KPI against the symbols the pktkit binary
 * exports; pktkit refuses an object needing a symbol it lacks, listing them.
 */
#ifndef _PKTKIT_PORTED_H_
#define _PKTKIT_PORTED_H_

#include <sys/types.h>
#include <sys/device.h>

/* Layout version of struct pktkit_ported_driver. */
#define PKTKIT_PORTED_ABI	1

/* Buses (struct pktkit_ported_driver.pd_bus). */
#define PKTKIT_BUS_PCI		1	/* attached to a PCI function: pci=BDF */
#define PKTKIT_BUS_PSEUDO	2	/* no hardware */

/* A PCI id the driver matches; a table ends with { 0, 0 }. */
struct pktkit_ported_id {
	uint16_t	pi_vendor;
	uint16_t	pi_product;
};

/*
 * An option (-d foo.so,key=value) the driver reads with
 * pktkit_device_getprop_int; a table ends with { NULL, NULL, 0 }. PCI
 * drivers get pci= without listing it.
 */
struct pktkit_ported_option {
	const char	*po_key;
	const char	*po_help;
	int		po_required;
};

struct pktkit_ported_driver {
	uint32_t	pd_abi;			/* PKTKIT_PORTED_ABI */
	uint32_t	pd_bus;			/* PKTKIT_BUS_* */
	const char	*pd_name;		/* driver name */
	const char	*pd_prefix;		/* interface prefix */
	const char	*pd_description;	/* one line for pktkit drivers */
	const struct cfattach *pd_cfattach;
	const struct pktkit_ported_id *pd_ids;	/* PCI: the ids; may be NULL */
	const struct pktkit_ported_option *pd_options; /* may be NULL */
	uint32_t	pd_multicast_slots;	/* filter entries before allmulti */
};

#define PKTKIT_PORTED_DRIVER(name, prefix, descr, bus, ids, opts, mslots) \
const struct pktkit_ported_driver pktkit_ported_driver = {		\
	.pd_abi = PKTKIT_PORTED_ABI,					\
	.pd_bus = (bus),						\
	.pd_name = __STRING(name),					\
	.pd_prefix = (prefix),						\
	.pd_description = (descr),					\
	.pd_cfattach = &__CONCAT(name, _ca),				\
	.pd_ids = (ids),						\
	.pd_options = (opts),						\
	.pd_multicast_slots = (mslots),					\
}

#endif /* !_PKTKIT_PORTED_H_ */
