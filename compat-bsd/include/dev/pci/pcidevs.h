/*
 * dev/pci/pcidevs.h -- ids of the PCI devices pktkit drives (compat-bsd).
 * Values from the vendors' datasheets and QEMU's device models.
 */
#ifndef _DEV_PCI_PCIDEVS_H_
#define _DEV_PCI_PCIDEVS_H_

#define PCI_VENDOR_AMD			0x1022
#define PCI_VENDOR_REALTEK		0x10ec
#define PCI_VENDOR_INTEL		0x8086
#define PCI_VENDOR_QUMRANET		0x1af4

/* AMD: Am79C970A PCnet-PCI II (QEMU pcnet). */
#define PCI_PRODUCT_AMD_PCNET_PCI	0x2000

/* Realtek */
#define PCI_PRODUCT_REALTEK_RT8029	0x8029	/* NE2000 (QEMU ne2k_pci) */
#define PCI_PRODUCT_REALTEK_RT8139	0x8139	/* 8139 (QEMU rtl8139) */
#define PCI_PRODUCT_REALTEK_RT8138	0x8138

/* Intel */
#define PCI_PRODUCT_INTEL_82557		0x1229	/* 8255x, QEMU i82557b/i82559 */
#define PCI_PRODUCT_INTEL_82559ER	0x1209	/* QEMU i82559er */
#define PCI_PRODUCT_INTEL_82540EM	0x100e	/* QEMU e1000 */
#define PCI_PRODUCT_INTEL_82545EM_COPPER 0x100f	/* QEMU e1000-82545em */
#define PCI_PRODUCT_INTEL_82574L	0x10d3	/* QEMU e1000e */

/* Red Hat / Qumranet virtio. */
#define PCI_PRODUCT_QUMRANET_VIRTIO_1000 0x1000	/* transitional network */
#define PCI_PRODUCT_QUMRANET_VIRTIO_1041 0x1041	/* modern network */

#endif /* _DEV_PCI_PCIDEVS_H_ */
