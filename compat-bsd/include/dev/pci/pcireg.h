/*
 * dev/pci/pcireg.h -- PCI configuration space (compat-bsd), from the PCI
 * Local Bus Specification 3.0, chapter 6.
 */
#ifndef _DEV_PCI_PCIREG_H_
#define _DEV_PCI_PCIREG_H_

#include <sys/types.h>

typedef uint32_t pcireg_t;

/* 6.2.1: vendor and device identification. */
#define PCI_ID_REG		0x00
#define PCI_VENDOR(id)		((id) & 0xffff)
#define PCI_PRODUCT(id)		(((id) >> 16) & 0xffff)
#define PCI_ID_CODE(v, p)	(((p) << 16) | (v))

/* 6.2.2: command and status. */
#define PCI_COMMAND_STATUS_REG		0x04
#define PCI_COMMAND_IO_ENABLE		0x00000001
#define PCI_COMMAND_MEM_ENABLE		0x00000002
#define PCI_COMMAND_MASTER_ENABLE	0x00000004
#define PCI_COMMAND_INVALIDATE_ENABLE	0x00000010
#define PCI_COMMAND_PARITY_ENABLE	0x00000040
#define PCI_COMMAND_SERR_ENABLE		0x00000100
#define PCI_COMMAND_INTERRUPT_DISABLE	0x00000400
#define PCI_STATUS_CAPLIST_SUPPORT	0x00100000

/* 6.2.1: class code and revision. */
#define PCI_CLASS_REG		0x08
#define PCI_REVISION(r)		((r) & 0xff)
#define PCI_CLASS(r)		(((r) >> 24) & 0xff)
#define PCI_SUBCLASS(r)		(((r) >> 16) & 0xff)
#define PCI_INTERFACE(r)	(((r) >> 8) & 0xff)
#define PCI_CLASS_NETWORK	0x02
#define PCI_SUBCLASS_NETWORK_ETHERNET 0x00

/* 6.2.4: cache line, latency, header type, BIST. */
#define PCI_BHLC_REG		0x0c
#define PCI_LATTIMER(r)		(((r) >> 8) & 0xff)
#define PCI_CACHELINE(r)	((r) & 0xff)

/* 6.2.5: base address registers. */
#define PCI_MAPREG_START	0x10
#define PCI_MAPREG_END		0x28
#define PCI_MAPREG_NUM(o)	(((o) - PCI_MAPREG_START) / 4)
#define PCI_BAR(n)		(PCI_MAPREG_START + 4 * (n))
#define PCI_MAPREG_TYPE_MASK	0x00000001
#define PCI_MAPREG_TYPE_MEM	0x00000000
#define PCI_MAPREG_TYPE_IO	0x00000001
#define PCI_MAPREG_MEM_TYPE_MASK	0x00000006
#define PCI_MAPREG_MEM_TYPE_32BIT	0x00000000
#define PCI_MAPREG_MEM_TYPE_64BIT	0x00000004
#define PCI_MAPREG_MEM_PREFETCHABLE_MASK 0x00000008
#define PCI_MAPREG_TYPE(mr)	((mr) & PCI_MAPREG_TYPE_MASK)
#define PCI_MAPREG_MEM_TYPE(mr)	((mr) & PCI_MAPREG_MEM_TYPE_MASK)

#define PCI_SUBSYS_ID_REG	0x2c
#define PCI_CAPLISTPTR_REG	0x34
#define PCI_INTERRUPT_REG	0x3c
#define PCI_INTERRUPT_PIN(r)	(((r) >> 8) & 0xff)
#define PCI_INTERRUPT_LINE(r)	((r) & 0xff)

/* Capability ids (6.7 and the MSI/MSI-X ECNs). */
#define PCI_CAP_PWRMGMT		0x01
#define PCI_CAP_MSI		0x05
#define PCI_CAP_PCIEXPRESS	0x10
#define PCI_CAP_MSIX		0x11
#define PCI_PMCSR		0x04
#define PCI_PMCSR_STATE_MASK	0x0003
#define PCI_PMCSR_STATE_D0	0x0000

#endif /* _DEV_PCI_PCIREG_H_ */
