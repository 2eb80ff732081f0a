/*
 * dev/pci/pcivar.h -- the PCI bus as a driver sees it (compat-bsd).
 *
 * The chipset tag and the device tag both lead to the adapter's device
 * context (one PCI function opened through the stack's VFIO container);
 * config reads and writes go to its config space.  Interrupts are the
 * function's eventfds (INTx, MSI, MSI-X): the adapter watches them and runs
 * the established handler from the interface's service pass.
 */
#ifndef _DEV_PCI_PCIVAR_H_
#define _DEV_PCI_PCIVAR_H_

#include <sys/types.h>
#include <sys/bus.h>
#include <sys/device.h>
#include <dev/pci/pcireg.h>

typedef struct pktkit_pci_chipset *pci_chipset_tag_t;
typedef void		*pcitag_t;
typedef uint64_t	pci_intr_handle_t;
typedef uint16_t	pci_vendor_id_t;
typedef uint16_t	pci_product_id_t;

/* pci_intr_handle_t: type in bits 32..39, vector below. */
typedef enum {
	PCI_INTR_TYPE_INTX = 0,
	PCI_INTR_TYPE_MSI,
	PCI_INTR_TYPE_MSIX,
	PCI_INTR_TYPE_SIZE
} pci_intr_type_t;

#define PCI_FLAGS_IO_OKAY	0x01
#define PCI_FLAGS_MEM_OKAY	0x02
#define PCI_FLAGS_MRL_OKAY	0x04
#define PCI_FLAGS_MRM_OKAY	0x08
#define PCI_FLAGS_MWI_OKAY	0x10
#define PCI_FLAGS_MSI_OKAY	0x20
#define PCI_FLAGS_MSIX_OKAY	0x40

#define PCI_INTRSTR_LEN		64
#define PCI_INTR_MPSAFE		1

struct pci_attach_args {
	bus_space_tag_t	pa_iot;
	bus_space_tag_t	pa_memt;
	bus_dma_tag_t	pa_dmat;
	bus_dma_tag_t	pa_dmat64;
	pci_chipset_tag_t pa_pc;
	int		pa_flags;
	u_int		pa_bus;
	u_int		pa_device;
	u_int		pa_function;
	pcitag_t	pa_tag;
	pcireg_t	pa_id;
	pcireg_t	pa_class;
	pcireg_t	pa_subsys;
	u_int		pa_intrswiz;	/* no bridges here: 0 */
	pcitag_t	pa_intrtag;	/* the function's own tag */
	u_int		pa_intrpin;
	u_int		pa_intrline;
	u_int		pa_rawintrpin;	/* pa_intrpin before swizzling */
};

pcireg_t pci_conf_read(pci_chipset_tag_t, pcitag_t, int);
void	pci_conf_write(pci_chipset_tag_t, pcitag_t, int, pcireg_t);
int	pci_get_capability(pci_chipset_tag_t, pcitag_t, int, int *, pcireg_t *);
pcireg_t pci_mapreg_type(pci_chipset_tag_t, pcitag_t, int);
int	pci_mapreg_info(pci_chipset_tag_t, pcitag_t, int, pcireg_t,
	    bus_addr_t *, bus_size_t *, int *);
int	pci_mapreg_map(const struct pci_attach_args *, int, pcireg_t, int,
	    bus_space_tag_t *, bus_space_handle_t *, bus_addr_t *, bus_size_t *);
int	pci_activate(pci_chipset_tag_t, pcitag_t, device_t,
	    int (*)(pci_chipset_tag_t, pcitag_t, device_t, pcireg_t));
int	pci_activate_null(pci_chipset_tag_t, pcitag_t, device_t, pcireg_t);
void	pci_aprint_devinfo_fancy(const struct pci_attach_args *, const char *,
	    const char *, int);
#define pci_aprint_devinfo(pa, naive) \
	pci_aprint_devinfo_fancy((pa), (naive), NULL, 1)
static inline bool
pci_dma64_available(const struct pci_attach_args *pa)
{
	(void)pa;
	return true;
}

int	pci_intr_map(const struct pci_attach_args *, pci_intr_handle_t *);
const char *pci_intr_string(pci_chipset_tag_t, pci_intr_handle_t, char *,
	    size_t);
void	*pci_intr_establish(pci_chipset_tag_t, pci_intr_handle_t, int,
	    int (*)(void *), void *);
void	*pci_intr_establish_xname(pci_chipset_tag_t, pci_intr_handle_t, int,
	    int (*)(void *), void *, const char *);
void	pci_intr_disestablish(pci_chipset_tag_t, void *);
int	pci_intr_alloc(const struct pci_attach_args *, pci_intr_handle_t **,
	    int *, pci_intr_type_t);
void	pci_intr_release(pci_chipset_tag_t, pci_intr_handle_t *, int);
int	pci_intr_setattr(pci_chipset_tag_t, pci_intr_handle_t *, int, uint64_t);
pci_intr_type_t pci_intr_type(pci_chipset_tag_t, pci_intr_handle_t);
int	pci_intx_alloc(const struct pci_attach_args *, pci_intr_handle_t **);
int	pci_msi_count(pci_chipset_tag_t, pcitag_t);
int	pci_msix_count(pci_chipset_tag_t, pcitag_t);
int	pci_msi_alloc_exact(const struct pci_attach_args *,
	    pci_intr_handle_t **, int);
int	pci_msix_alloc_exact(const struct pci_attach_args *,
	    pci_intr_handle_t **, int);

/*
 * The standard header of config space, saved and put back around a
 * suspend or a function reset.
 */
struct pci_conf_state {
	pcireg_t	reg[16];
};

static inline void
pci_conf_capture(pci_chipset_tag_t pc, pcitag_t tag,
    struct pci_conf_state *pcs)
{
	int i;

	for (i = 0; i < 16; i++)
		pcs->reg[i] = pci_conf_read(pc, tag, i * 4);
}

static inline void
pci_conf_restore(pci_chipset_tag_t pc, pcitag_t tag,
    struct pci_conf_state *pcs)
{
	int i;

	/* The command register last, once the BARs are back. */
	for (i = 15; i >= 0; i--)
		if (i != 1)
			pci_conf_write(pc, tag, i * 4, pcs->reg[i]);
	pci_conf_write(pc, tag, 4, pcs->reg[1]);
}

#endif /* _DEV_PCI_PCIVAR_H_ */
