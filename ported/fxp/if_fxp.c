/*	$pktkit: if_fxp.c $	*/

/*
 * fxp -- Intel i82557/8/9 ("8255x") Fast Ethernet, as QEMU's i82559er
 * (and i82557b/i82559) models it, written for pktkit's compat-bsd in the
 * style of a NetBSD driver.
 *
 * The chip has two DMA engines, both driven through the System Control
 * Block (SCB, SDM 6.3): the Command Unit (CU) walks a list of command
 * blocks (configure, address setup, multicast setup, transmit) and the
 * Receive Unit (RU) a list of receive frame descriptors (RFDs).  Both
 * lists live in one DMA area (struct fxp_control_data):
 *
 *  - the command block list (CBL) is a ring of FXP_NCB blocks linked in
 *    a circle; the newest block carries the S bit, so the CU suspends
 *    after it, and queueing more moves the S bit forward and resumes the
 *    CU (SDM 6.4.1).  Transmit blocks use simplified mode, the frame
 *    copied right behind the block (the chip's DMA is 32-bit; the stack's
 *    buffers are not below 4 GiB).  Filter changes are queued in the same
 *    ring, so they take effect in order with the frames around them;
 *  - the receive frame area is a ring of FXP_NRFD simplified-mode RFDs
 *    linked in a circle; the last free RFD carries the EL bit, so the RU
 *    stops (RNR) rather than overwrite a frame not yet copied out, and
 *    recycling an RFD moves the EL bit forward (SDM 6.5.1).
 *
 * The PHY is reached through the MDI control register (SDM 6.3.5) and
 * driven by the MII layer's generic PHY.  The MAC address is read from
 * the serial EEPROM, words 0-2 (SDM 5.4).
 *
 * Locking notes:
 *	The driver is IFEF_MPSAFE.  sc_mtx (the "core lock") guards the
 *	whole softc: both rings and their indices, the filter state, the
 *	chip's registers and the tick.  It is also the ifmedia lock, so the
 *	MII layer runs under it.  if_start, the interrupt handler and the
 *	tick take it; if_init and if_stop take it and call the _locked
 *	forms, which the driver also calls while holding it.  ether_ioctl is
 *	called without it (it calls if_init/if_stop and ifmedia_ioctl, which
 *	take their locks).  No other lock is taken while sc_mtx is held
 *	except if_snd's queue lock (IFQ_DEQUEUE) and the receive ring's
 *	(if_percpuq_enqueue), which are leaves.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$pktkit: if_fxp.c $");

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/device.h>
#include <sys/callout.h>
#include <sys/evcnt.h>
#include <sys/mbuf.h>
#include <sys/mutex.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/bus.h>
#include <sys/intr.h>
#include <sys/rndsource.h>

#include <net/if.h>
#include <net/if_ether.h>
#include <net/if_media.h>
#include <net/bpf.h>

#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>

#include <dev/pci/pcireg.h>
#include <dev/pci/pcivar.h>
#include <dev/pci/pcidevs.h>

#include "i8255xreg.h"

#define FXP_NCB		32		/* command blocks in the ring */
#define FXP_NRFD	64		/* receive frame descriptors */
#define FXP_NEXTCB(i)	(((i) + 1) % FXP_NCB)
#define FXP_NEXTRFD(i)	(((i) + 1) % FXP_NRFD)
#define FXP_RXLIMIT	128		/* frames per receive pass */
/*
 * Blocks handed to the CU per resume.  QEMU's model runs at most 16
 * blocks per CU_START/CU_RESUME and then stops without suspending (a guard
 * against endless lists); more than 16 would sit until the next resume.
 */
#define FXP_CUBATCH	16

/* One command block: whichever command it holds. */
union fxp_cb {
	struct fxp_cb_hdr	cb_hdr;
	struct fxp_cb_tx	cb_tx;
	struct fxp_cb_config	cb_config;
	struct fxp_cb_ias	cb_ias;
	struct fxp_cb_mcs	cb_mcs;
};

struct fxp_control_data {
	union fxp_cb	fcd_cbs[FXP_NCB];
	struct fxp_rfd	fcd_rfds[FXP_NRFD];
};

#define FXP_CDOFF(x)	offsetof(struct fxp_control_data, x)
#define FXP_CDCBOFF(i)	FXP_CDOFF(fcd_cbs[(i)])
#define FXP_CDRFDOFF(i)	FXP_CDOFF(fcd_rfds[(i)])
#define FXP_CDCBADDR(sc, i) \
	((uint32_t)((sc)->sc_cddma + FXP_CDCBOFF(i)))
#define FXP_CDRFDADDR(sc, i) \
	((uint32_t)((sc)->sc_cddma + FXP_CDRFDOFF(i)))

/* What a command block in the ring holds, for the reaper. */
#define FXP_CBT_FREE	0
#define FXP_CBT_TX	1
#define FXP_CBT_SETUP	2

struct fxp_softc {
	struct ethercom	sc_ethercom;	/* must be first */
	device_t	sc_dev;
	bus_space_tag_t	sc_st;
	bus_space_handle_t sc_sh;
	bus_dma_tag_t	sc_dmat;
	pci_chipset_tag_t sc_pc;
	void		*sc_ih;
	kmutex_t	*sc_mtx;	/* the core lock, see above */
	struct mii_data	sc_mii;
	callout_t	sc_tick_ch;
	krndsource_t	sc_rnd_source;

	/* The control data: command block ring and receive frame area. */
	bus_dma_segment_t sc_cdseg;
	int		sc_cdnseg;
	bus_dmamap_t	sc_cddmamap;
#define	sc_cddma	sc_cddmamap->dm_segs[0].ds_addr	/* its device address */
	struct fxp_control_data *sc_cd;

	/* Command block ring: prod is filled next, cons reaped next. */
	uint8_t		sc_cbtype[FXP_NCB];
	int		sc_cbprod;
	int		sc_cbcons;
	int		sc_cbcnt;	/* blocks the CU still owns */
	int		sc_cblast;	/* the block with the S bit */
	int		sc_cbqueued;	/* queued since the last resume */
	bool		sc_custarted;	/* CU started since init */
	bool		sc_filter_pending; /* filter change waits for room */
	int		sc_tx_timer;	/* ticks until the watchdog fires */

	/* Receive frame area: cons is checked next, tail has EL. */
	int		sc_rxcons;
	int		sc_rxtail;

	int		sc_eeaddrbits;	/* EEPROM address width */
	bool		sc_stopping;	/* tick must not re-arm */
	int		sc_attached;	/* how far attach got */

	struct evcnt	sc_ev_intr;
	struct evcnt	sc_ev_rxerr;	/* frames the chip marked bad */
	struct evcnt	sc_ev_rxnobuf;	/* no mbuf for a received frame */
	struct evcnt	sc_ev_rnr;	/* RU restarts after running out */
	struct evcnt	sc_ev_txerr;
	struct evcnt	sc_ev_cbfull;	/* filter change waited for room */
	struct evcnt	sc_ev_scbto;	/* SCB command not accepted */
	struct evcnt	sc_ev_watchdog;
};

#define CSR_READ_1(sc, r)	bus_space_read_1((sc)->sc_st, (sc)->sc_sh, (r))
#define CSR_READ_2(sc, r)	bus_space_read_2((sc)->sc_st, (sc)->sc_sh, (r))
#define CSR_READ_4(sc, r)	bus_space_read_4((sc)->sc_st, (sc)->sc_sh, (r))
#define CSR_WRITE_1(sc, r, v)	bus_space_write_1((sc)->sc_st, (sc)->sc_sh, (r), (v))
#define CSR_WRITE_2(sc, r, v)	bus_space_write_2((sc)->sc_st, (sc)->sc_sh, (r), (v))
#define CSR_WRITE_4(sc, r, v)	bus_space_write_4((sc)->sc_st, (sc)->sc_sh, (r), (v))

#define FXP_ATTACH_DMA		1
#define FXP_ATTACH_INTR		2
#define FXP_ATTACH_IFNET	3

static int	fxp_match(device_t, cfdata_t, void *);
static void	fxp_attach(device_t, device_t, void *);
static int	fxp_detach(device_t, int);

static int	fxp_init(struct ifnet *);
static int	fxp_init_locked(struct ifnet *);
static void	fxp_stop(struct ifnet *, int);
static void	fxp_stop_locked(struct ifnet *, int);
static void	fxp_start(struct ifnet *);
static void	fxp_start_locked(struct ifnet *);
static int	fxp_ioctl(struct ifnet *, u_long, void *);
static int	fxp_ifflags_cb(struct ethercom *);
static int	fxp_intr(void *);
static void	fxp_tick(void *);
static void	fxp_rxeof(struct fxp_softc *);
static void	fxp_txeof(struct fxp_softc *);
static void	fxp_filter_locked(struct fxp_softc *);
static void	fxp_reset(struct fxp_softc *);
static int	fxp_scb_wait(struct fxp_softc *);
static int	fxp_scb_command(struct fxp_softc *, uint8_t, uint32_t);
static int	fxp_dma_alloc(struct fxp_softc *);
static void	fxp_dma_free(struct fxp_softc *);
static void	fxp_eeprom_init(struct fxp_softc *);
static uint16_t	fxp_eeprom_read(struct fxp_softc *, int);
static int	fxp_mdi_read(device_t, int, int, uint16_t *);
static int	fxp_mdi_write(device_t, int, int, uint16_t);
static void	fxp_mii_statchg(struct ifnet *);

CFATTACH_DECL_NEW(fxp, sizeof(struct fxp_softc),
    fxp_match, fxp_attach, fxp_detach, NULL);

static const struct fxp_product {
	uint16_t	fp_vendor;
	uint16_t	fp_product;
	const char	*fp_name;
} fxp_products[] = {
	{ PCI_VENDOR_INTEL, PCI_PRODUCT_INTEL_82559ER,
	  "Intel i82559ER Ethernet" },
	{ PCI_VENDOR_INTEL, PCI_PRODUCT_INTEL_82557,
	  "Intel i82557/8/9 Ethernet" },
};

static const struct fxp_product *
fxp_lookup(const struct pci_attach_args *pa)
{
	size_t i;

	for (i = 0; i < __arraycount(fxp_products); i++) {
		if (PCI_VENDOR(pa->pa_id) == fxp_products[i].fp_vendor &&
		    PCI_PRODUCT(pa->pa_id) == fxp_products[i].fp_product)
			return &fxp_products[i];
	}
	return NULL;
}

static int
fxp_match(device_t parent, cfdata_t cf, void *aux)
{
	return fxp_lookup(aux) != NULL;
}

static void
fxp_attach(device_t parent, device_t self, void *aux)
{
	struct fxp_softc *sc = device_private(self);
	struct pci_attach_args *pa = aux;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	struct mii_data *mii = &sc->sc_mii;
	const struct fxp_product *fp = fxp_lookup(pa);
	pci_intr_handle_t ih;
	char intrbuf[PCI_INTRSTR_LEN];
	const char *intrstr;
	uint8_t enaddr[ETHER_ADDR_LEN];
	uint16_t w;
	pcireg_t csr;
	int i;

	sc->sc_dev = self;
	sc->sc_pc = pa->pa_pc;
	sc->sc_dmat = pa->pa_dmat;
	pci_aprint_devinfo_fancy(pa, "Ethernet controller",
	    fp != NULL ? fp->fp_name : NULL, 1);

	/* Bus mastering and the memory decoder on (PCI 3.0, 6.2.2). */
	csr = pci_conf_read(pa->pa_pc, pa->pa_tag, PCI_COMMAND_STATUS_REG);
	csr |= PCI_COMMAND_MASTER_ENABLE | PCI_COMMAND_MEM_ENABLE;
	pci_conf_write(pa->pa_pc, pa->pa_tag, PCI_COMMAND_STATUS_REG, csr);

	/* The CSRs: BAR0 is memory, BAR1 the same registers in I/O space. */
	if (pci_mapreg_map(pa, PCI_BAR(0), PCI_MAPREG_TYPE_MEM |
	    PCI_MAPREG_MEM_TYPE_32BIT, 0, &sc->sc_st, &sc->sc_sh, NULL,
	    NULL) != 0) {
		aprint_error_dev(self, "can't map registers\n");
		return;
	}

	sc->sc_mtx = mutex_obj_alloc(MUTEX_DEFAULT, IPL_NET);
	fxp_reset(sc);

	/* Station address: EEPROM words 0-2, low byte first (SDM 5.4). */
	fxp_eeprom_init(sc);
	for (i = 0; i < ETHER_ADDR_LEN / 2; i++) {
		w = fxp_eeprom_read(sc, i);
		enaddr[i * 2] = (uint8_t)(w & 0xff);
		enaddr[i * 2 + 1] = (uint8_t)(w >> 8);
	}

	if (fxp_dma_alloc(sc) != 0)
		goto fail;
	sc->sc_attached = FXP_ATTACH_DMA;

	if (pci_intr_map(pa, &ih) != 0) {
		aprint_error_dev(self, "can't map interrupt\n");
		goto fail;
	}
	intrstr = pci_intr_string(pa->pa_pc, ih, intrbuf, sizeof(intrbuf));
	pci_intr_setattr(pa->pa_pc, &ih, PCI_INTR_MPSAFE, true);
	sc->sc_ih = pci_intr_establish_xname(pa->pa_pc, ih, IPL_NET, fxp_intr,
	    sc, device_xname(self));
	if (sc->sc_ih == NULL) {
		aprint_error_dev(self, "can't establish interrupt at %s\n",
		    intrstr);
		goto fail;
	}
	sc->sc_attached = FXP_ATTACH_INTR;
	aprint_normal_dev(self, "interrupting at %s\n", intrstr);
	aprint_normal_dev(self, "Ethernet address %s\n", ether_sprintf(enaddr));

	callout_init(&sc->sc_tick_ch, CALLOUT_MPSAFE);
	callout_setfunc(&sc->sc_tick_ch, fxp_tick, sc);
	evcnt_attach_dynamic(&sc->sc_ev_intr, EVCNT_TYPE_INTR, NULL,
	    device_xname(self), "intr");
	evcnt_attach_dynamic(&sc->sc_ev_rxerr, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx errors");
	evcnt_attach_dynamic(&sc->sc_ev_rxnobuf, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx no mbuf");
	evcnt_attach_dynamic(&sc->sc_ev_rnr, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx restarts");
	evcnt_attach_dynamic(&sc->sc_ev_txerr, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "tx errors");
	evcnt_attach_dynamic(&sc->sc_ev_cbfull, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "filter deferred");
	evcnt_attach_dynamic(&sc->sc_ev_scbto, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "scb timeouts");
	evcnt_attach_dynamic(&sc->sc_ev_watchdog, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "watchdog");

	strlcpy(ifp->if_xname, device_xname(self), IFNAMSIZ);
	ifp->if_softc = sc;
	ifp->if_flags = IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST;
	ifp->if_extflags = IFEF_MPSAFE;
	ifp->if_ioctl = fxp_ioctl;
	ifp->if_start = fxp_start;
	ifp->if_init = fxp_init;
	ifp->if_stop = fxp_stop;
	IFQ_SET_MAXLEN(&ifp->if_snd, IFQ_MAXLEN);
	IFQ_SET_READY(&ifp->if_snd);
	sc->sc_ethercom.ec_capabilities |= ETHERCAP_VLAN_MTU;

	/* The PHY, through the MII layer, under the core lock. */
	mii->mii_ifp = ifp;
	mii->mii_readreg = fxp_mdi_read;
	mii->mii_writereg = fxp_mdi_write;
	mii->mii_statchg = fxp_mii_statchg;
	sc->sc_ethercom.ec_mii = mii;
	ifmedia_init_with_lock(&mii->mii_media, IFM_IMASK, ether_mediachange,
	    ether_mediastatus, sc->sc_mtx);

	if_attach(ifp);
	if_deferred_start_init(ifp, NULL);
	ether_ifattach(ifp, enaddr);
	ether_set_ifflags_cb(&sc->sc_ethercom, fxp_ifflags_cb);
	sc->sc_attached = FXP_ATTACH_IFNET;

	mutex_enter(sc->sc_mtx);
	mii_attach(self, mii, 0xffffffff, MII_PHY_ANY, MII_OFFSET_ANY, 0);
	if (LIST_FIRST(&mii->mii_phys) == NULL) {
		ifmedia_add(&mii->mii_media, IFM_ETHER | IFM_NONE, 0, NULL);
		ifmedia_set(&mii->mii_media, IFM_ETHER | IFM_NONE);
	} else
		ifmedia_set(&mii->mii_media, IFM_ETHER | IFM_AUTO);
	mutex_exit(sc->sc_mtx);

	rnd_attach_source(&sc->sc_rnd_source, device_xname(self),
	    RND_TYPE_NET, RND_FLAG_DEFAULT);
	if (!pmf_device_register(self, NULL, NULL))
		aprint_error_dev(self, "couldn't establish power handler\n");
	else
		pmf_class_network_register(self, ifp);
	return;

 fail:
	if (sc->sc_attached >= FXP_ATTACH_INTR)
		pci_intr_disestablish(sc->sc_pc, sc->sc_ih);
	if (sc->sc_attached >= FXP_ATTACH_DMA)
		fxp_dma_free(sc);
	mutex_obj_free(sc->sc_mtx);
	sc->sc_mtx = NULL;
	sc->sc_attached = 0;
}

static int
fxp_detach(device_t self, int flags)
{
	struct fxp_softc *sc = device_private(self);
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;

	if (sc->sc_attached < FXP_ATTACH_IFNET)
		return 0;
	fxp_stop(ifp, 1);
	callout_halt(&sc->sc_tick_ch, NULL);
	callout_destroy(&sc->sc_tick_ch);
	mutex_enter(sc->sc_mtx);
	mii_detach(&sc->sc_mii, MII_PHY_ANY, MII_OFFSET_ANY);
	mutex_exit(sc->sc_mtx);
	ifmedia_fini(&sc->sc_mii.mii_media);
	rnd_detach_source(&sc->sc_rnd_source);
	ether_ifdetach(ifp);
	if_detach(ifp);
	evcnt_detach(&sc->sc_ev_intr);
	evcnt_detach(&sc->sc_ev_rxerr);
	evcnt_detach(&sc->sc_ev_rxnobuf);
	evcnt_detach(&sc->sc_ev_rnr);
	evcnt_detach(&sc->sc_ev_txerr);
	evcnt_detach(&sc->sc_ev_cbfull);
	evcnt_detach(&sc->sc_ev_scbto);
	evcnt_detach(&sc->sc_ev_watchdog);
	pci_intr_disestablish(sc->sc_pc, sc->sc_ih);
	fxp_dma_free(sc);
	pmf_device_deregister(self);
	mutex_obj_free(sc->sc_mtx);
	sc->sc_mtx = NULL;
	sc->sc_attached = 0;
	return 0;
}

/* The control data: one DMA area below 4 GiB, one segment. */
static int
fxp_dma_alloc(struct fxp_softc *sc)
{
	const bus_size_t size = sizeof(struct fxp_control_data);
	int error;

	if ((error = bus_dmamem_alloc(sc->sc_dmat, size, PAGE_SIZE, 0,
	    &sc->sc_cdseg, 1, &sc->sc_cdnseg, BUS_DMA_NOWAIT)) != 0)
		goto fail0;
	if ((error = bus_dmamem_map(sc->sc_dmat, &sc->sc_cdseg, sc->sc_cdnseg,
	    size, (void **)&sc->sc_cd, BUS_DMA_NOWAIT | BUS_DMA_COHERENT)) != 0)
		goto fail1;
	if ((error = bus_dmamap_create(sc->sc_dmat, size, 1, size, 0,
	    BUS_DMA_NOWAIT, &sc->sc_cddmamap)) != 0)
		goto fail2;
	if ((error = bus_dmamap_load(sc->sc_dmat, sc->sc_cddmamap, sc->sc_cd,
	    size, NULL, BUS_DMA_NOWAIT)) != 0)
		goto fail3;
	if (sc->sc_cddmamap->dm_nsegs != 1 ||
	    sc->sc_cddmamap->dm_segs[0].ds_addr + size > 0xffffffffULL) {
		/* Links are 32-bit device addresses into one area. */
		error = EFBIG;
		goto fail4;
	}
	memset(sc->sc_cd, 0, size);
	return 0;

 fail4:
	bus_dmamap_unload(sc->sc_dmat, sc->sc_cddmamap);
 fail3:
	bus_dmamap_destroy(sc->sc_dmat, sc->sc_cddmamap);
 fail2:
	bus_dmamem_unmap(sc->sc_dmat, sc->sc_cd, size);
 fail1:
	bus_dmamem_free(sc->sc_dmat, &sc->sc_cdseg, sc->sc_cdnseg);
 fail0:
	sc->sc_cddmamap = NULL;
	aprint_error_dev(sc->sc_dev, "can't allocate control data, "
	    "error = %d\n", error);
	return error;
}

static void
fxp_dma_free(struct fxp_softc *sc)
{
	if (sc->sc_cddmamap == NULL)
		return;
	bus_dmamap_unload(sc->sc_dmat, sc->sc_cddmamap);
	bus_dmamap_destroy(sc->sc_dmat, sc->sc_cddmamap);
	bus_dmamem_unmap(sc->sc_dmat, sc->sc_cd,
	    sizeof(struct fxp_control_data));
	bus_dmamem_free(sc->sc_dmat, &sc->sc_cdseg, sc->sc_cdnseg);
	sc->sc_cddmamap = NULL;
}

/* DMA syncs of one command block or RFD, by direction. */
static inline void
fxp_cdsync(struct fxp_softc *sc, bus_size_t off, bus_size_t len, int ops)
{
	bus_dmamap_sync(sc->sc_dmat, sc->sc_cddmamap, off, len, ops);
}

/*
 * Software reset through the PORT (SDM 6.3.3.1): every register back to
 * its default, both units idle, interrupts masked off again below.
 */
static void
fxp_reset(struct fxp_softc *sc)
{
	CSR_WRITE_4(sc, FXP_CSR_PORT, FXP_PORT_SOFTWARE_RESET);
	DELAY(50);
	CSR_WRITE_1(sc, FXP_CSR_SCB_INTRCNTL, FXP_SCB_INTR_DISABLE);
	CSR_WRITE_1(sc, FXP_CSR_SCB_STATACK, FXP_SCB_STATACK_ALL);
}

/* The chip clears the SCB command byte once it accepted a command. */
static int
fxp_scb_wait(struct fxp_softc *sc)
{
	int i;

	for (i = 0; i < 10000; i++) {
		if (CSR_READ_1(sc, FXP_CSR_SCB_COMMAND) == 0)
			return 0;
		DELAY(2);
	}
	sc->sc_ev_scbto.ev_count++;
	return ETIMEDOUT;
}

static int
fxp_scb_command(struct fxp_softc *sc, uint8_t cmd, uint32_t pointer)
{
	int error;

	if ((error = fxp_scb_wait(sc)) != 0)
		return error;
	CSR_WRITE_4(sc, FXP_CSR_SCB_GENERAL, pointer);
	CSR_WRITE_1(sc, FXP_CSR_SCB_COMMAND, cmd);
	return 0;
}

/*
 * Serial EEPROM (Microwire, SDM 5.3): chip select, the start bit and the
 * read opcode, the address MSB first, then 16 data bits MSB first; the
 * EEPROM drives a dummy 0 on EEDO after the last address bit, which is
 * how the address width is found.
 */
static void
fxp_eeprom_bit(struct fxp_softc *sc, int bit)
{
	uint16_t reg = FXP_EECONTROL_EECS | (bit ? FXP_EECONTROL_EEDI : 0);

	CSR_WRITE_2(sc, FXP_CSR_EECONTROL, reg);
	DELAY(2);
	CSR_WRITE_2(sc, FXP_CSR_EECONTROL, reg | FXP_EECONTROL_EESK);
	DELAY(2);
	CSR_WRITE_2(sc, FXP_CSR_EECONTROL, reg);
	DELAY(2);
}

static uint16_t
fxp_eeprom_data(struct fxp_softc *sc)
{
	uint16_t data = 0;
	int i;

	for (i = 0; i < 16; i++) {
		CSR_WRITE_2(sc, FXP_CSR_EECONTROL,
		    FXP_EECONTROL_EECS | FXP_EECONTROL_EESK);
		DELAY(2);
		data <<= 1;
		if (CSR_READ_2(sc, FXP_CSR_EECONTROL) & FXP_EECONTROL_EEDO)
			data |= 1;
		CSR_WRITE_2(sc, FXP_CSR_EECONTROL, FXP_EECONTROL_EECS);
		DELAY(2);
	}
	CSR_WRITE_2(sc, FXP_CSR_EECONTROL, 0);
	DELAY(2);
	return data;
}

static void
fxp_eeprom_opcode(struct fxp_softc *sc)
{
	int i;

	CSR_WRITE_2(sc, FXP_CSR_EECONTROL, FXP_EECONTROL_EECS);
	DELAY(2);
	for (i = 2; i >= 0; i--)
		fxp_eeprom_bit(sc, (FXP_EEPROM_OPC_READ >> i) & 1);
}

static void
fxp_eeprom_init(struct fxp_softc *sc)
{
	int n;

	fxp_eeprom_opcode(sc);
	for (n = 1; n <= FXP_EEPROM_MAXADDRBITS; n++) {
		fxp_eeprom_bit(sc, 0);
		if ((CSR_READ_2(sc, FXP_CSR_EECONTROL) &
		    FXP_EECONTROL_EEDO) == 0)
			break;
	}
	(void)fxp_eeprom_data(sc);
	/* 64-word parts have 6 address bits; 256-word parts 8. */
	if (n < 6 || n > FXP_EEPROM_MAXADDRBITS)
		n = 6;
	sc->sc_eeaddrbits = n;
}

static uint16_t
fxp_eeprom_read(struct fxp_softc *sc, int word)
{
	int i;

	fxp_eeprom_opcode(sc);
	for (i = sc->sc_eeaddrbits - 1; i >= 0; i--)
		fxp_eeprom_bit(sc, (word >> i) & 1);
	return fxp_eeprom_data(sc);
}

/*
 * The configure block (SDM 6.4.2.3), 82559 defaults with: no discard of
 * short frames (the peer's 60-byte frames are valid), MII mode, no
 * source address insertion, long (VLAN-tagged) frames accepted, and the
 * promiscuous and all-multicast bits from the interface.
 */
static void
fxp_config_fill(struct fxp_softc *sc, struct fxp_cb_config *cfg, bool allmulti)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	static const uint8_t fxp_config_defaults[FXP_CONFIG_LEN] = {
		FXP_CONFIG_LEN,	/* 0: byte count */
		0x08,		/* 1: receive FIFO limit 8, tx 0 */
		0x00,		/* 2: adaptive IFS */
		0x00,		/* 3: no MWI, no read align */
		0x00,		/* 4: rx DMA max byte count */
		0x80,		/* 5: tx DMA max byte count enable */
		0x32,		/* 6: late SCB, CNA on suspend, TNO */
		0x02,		/* 7: 1 underrun retry, keep short frames */
		0x01,		/* 8: MII mode */
		0x00,		/* 9 */
		0x2e,		/* 10: no SA insertion, 7-byte preamble */
		0x00,		/* 11: linear priority */
		0x60,		/* 12: interframe spacing 96 bits */
		0x00,		/* 13 */
		0xf2,		/* 14 */
		0x48,		/* 15: promiscuous, broadcast enable */
		0x00,		/* 16 */
		0x40,		/* 17 */
		0xfa,		/* 18: padding, long receive ok, no CRC */
		0x80,		/* 19: auto full duplex */
		0x3f,		/* 20: single IA */
		0x05,		/* 21: all-multicast off */
	};

	memcpy(cfg->cfg_bytes, fxp_config_defaults, FXP_CONFIG_LEN);
	if (ifp->if_flags & IFF_PROMISC)
		cfg->cfg_bytes[15] |= FXP_CONFIG15_PROMISC;
	if (allmulti)
		cfg->cfg_bytes[21] |= FXP_CONFIG21_MCALL;
}

/*
 * Queues one command block at sc_cbprod: the caller filled its body; this
 * sets its command word (with S, the new end of the list), links it and
 * clears S on the block before it, so a resumed CU runs on into it
 * (SDM 6.4.1.3).  The caller checked there is room.
 */
static void
fxp_cb_enqueue(struct fxp_softc *sc, uint16_t cmd, int type)
{
	union fxp_cb *cb = &sc->sc_cd->fcd_cbs[sc->sc_cbprod];
	union fxp_cb *last = &sc->sc_cd->fcd_cbs[sc->sc_cblast];
	int idx = sc->sc_cbprod;

	KASSERT(mutex_owned(sc->sc_mtx));
	cb->cb_hdr.cb_status = 0;
	cb->cb_hdr.cb_command = htole16(cmd | FXP_CB_COMMAND_S);
	cb->cb_hdr.cb_link = htole32(FXP_CDCBADDR(sc, FXP_NEXTCB(idx)));
	/* The new block, body and all, before the old S bit goes. */
	fxp_cdsync(sc, FXP_CDCBOFF(idx), sizeof(*cb), BUS_DMASYNC_PREWRITE);
	if (sc->sc_cblast != idx)
		last->cb_hdr.cb_command &= htole16(~FXP_CB_COMMAND_S);
	fxp_cdsync(sc, FXP_CDCBOFF(sc->sc_cblast), sizeof(*last),
	    BUS_DMASYNC_PREWRITE);

	sc->sc_cbtype[idx] = (uint8_t)type;
	sc->sc_cblast = idx;
	sc->sc_cbprod = FXP_NEXTCB(idx);
	sc->sc_cbcnt++;
	sc->sc_cbqueued++;
}

/*
 * Hands what was queued to the CU: the first time after init with
 * CU_START at the first block, after that with CU_RESUME (the CU is then
 * suspended after the previous last block, or about to be).
 */
static void
fxp_cu_kick(struct fxp_softc *sc, int first)
{
	int error;

	if (sc->sc_cbqueued == 0)
		return;
	if (!sc->sc_custarted) {
		error = fxp_scb_command(sc, FXP_SCB_COMMAND_CU_START,
		    FXP_CDCBADDR(sc, first));
		if (error == 0)
			sc->sc_custarted = true;
	} else {
		error = fxp_scb_wait(sc);
		if (error == 0)
			CSR_WRITE_1(sc, FXP_CSR_SCB_COMMAND,
			    FXP_SCB_COMMAND_CU_RESUME);
	}
	if (error == 0)
		sc->sc_cbqueued = 0;
}

/*
 * Receive filter: a configure block (promiscuous, all-multicast) and a
 * multicast setup block with the group addresses, queued behind what is
 * in the ring.  A range, or more groups than the block holds, means
 * all-multicast.  Needs two free blocks; without them the change waits
 * for fxp_txeof.
 */
static void
fxp_filter_locked(struct fxp_softc *sc)
{
	struct ethercom *ec = &sc->sc_ethercom;
	struct ifnet *ifp = &ec->ec_if;
	struct ether_multi *enm;
	struct ether_multistep step;
	struct fxp_cb_mcs *mcs;
	struct fxp_cb_config *cfg;
	bool allmulti = false;
	int n = 0, first;

	KASSERT(mutex_owned(sc->sc_mtx));
	/* Cleared first: fxp_txeof below must not come back here. */
	sc->sc_filter_pending = false;
	if (sc->sc_cbcnt > FXP_NCB - 2) {
		fxp_txeof(sc);
		if (sc->sc_cbcnt > FXP_NCB - 2) {
			sc->sc_ev_cbfull.ev_count++;
			sc->sc_filter_pending = true;
			return;
		}
	}
	first = sc->sc_cbprod;

	/* The group addresses first: they decide all-multicast. */
	mcs = &sc->sc_cd->fcd_cbs[FXP_NEXTCB(first)].cb_mcs;
	ETHER_LOCK(ec);
	ETHER_FIRST_MULTI(step, ec, enm);
	while (enm != NULL) {
		if (memcmp(enm->enm_addrlo, enm->enm_addrhi,
		    ETHER_ADDR_LEN) != 0 || n == FXP_NMCAST) {
			allmulti = true;
			break;
		}
		memcpy(mcs->mcs_addr[n++], enm->enm_addrlo, ETHER_ADDR_LEN);
		ETHER_NEXT_MULTI(step, enm);
	}
	ETHER_UNLOCK(ec);
	if (ifp->if_flags & IFF_PROMISC)
		allmulti = true;
	if (allmulti) {
		ifp->if_flags |= IFF_ALLMULTI;
		n = 0;
	} else
		ifp->if_flags &= ~IFF_ALLMULTI;
	mcs->mcs_count = htole16((uint16_t)(n * ETHER_ADDR_LEN));

	cfg = &sc->sc_cd->fcd_cbs[first].cb_config;
	fxp_config_fill(sc, cfg, allmulti);
	fxp_cb_enqueue(sc, FXP_CB_COMMAND_CONFIG, FXP_CBT_SETUP);
	fxp_cb_enqueue(sc, FXP_CB_COMMAND_MCAS, FXP_CBT_SETUP);
	fxp_cu_kick(sc, first);
}

static int
fxp_init(struct ifnet *ifp)
{
	struct fxp_softc *sc = ifp->if_softc;
	int error;

	mutex_enter(sc->sc_mtx);
	error = fxp_init_locked(ifp);
	mutex_exit(sc->sc_mtx);
	return error;
}

/* SDM 6.2: reset, load the bases, set up the CU, then start the RU. */
static int
fxp_init_locked(struct ifnet *ifp)
{
	struct fxp_softc *sc = ifp->if_softc;
	struct fxp_control_data *cd = sc->sc_cd;
	struct fxp_rfd *rfd;
	struct fxp_cb_ias *ias;
	int i, first, error;

	KASSERT(mutex_owned(sc->sc_mtx));
	fxp_stop_locked(ifp, 0);
	fxp_reset(sc);

	/* Both units address the control data with a base of 0. */
	if ((error = fxp_scb_command(sc, FXP_SCB_COMMAND_CU_BASE, 0)) != 0 ||
	    (error = fxp_scb_command(sc, FXP_SCB_COMMAND_RU_BASE, 0)) != 0)
		goto fail;

	/* An empty command ring: the "last" block is the one before 0. */
	memset(cd->fcd_cbs, 0, sizeof(cd->fcd_cbs));
	memset(sc->sc_cbtype, FXP_CBT_FREE, sizeof(sc->sc_cbtype));
	sc->sc_cbprod = sc->sc_cbcons = sc->sc_cbcnt = 0;
	sc->sc_cblast = FXP_NCB - 1;
	sc->sc_cbqueued = 0;
	sc->sc_custarted = false;
	sc->sc_tx_timer = 0;

	/* Configure, then the station address, then the filter. */
	first = sc->sc_cbprod;
	ias = &cd->fcd_cbs[FXP_NEXTCB(first)].cb_ias;
	memcpy(ias->ias_addr, CLLADDR(ifp->if_sadl), ETHER_ADDR_LEN);
	fxp_config_fill(sc, &cd->fcd_cbs[first].cb_config, false);
	fxp_cb_enqueue(sc, FXP_CB_COMMAND_CONFIG, FXP_CBT_SETUP);
	fxp_cb_enqueue(sc, FXP_CB_COMMAND_IAS, FXP_CBT_SETUP);
	fxp_cu_kick(sc, first);
	if (!sc->sc_custarted) {
		error = ETIMEDOUT;
		goto fail;
	}
	fxp_filter_locked(sc);

	/* The receive frame area: a circle, EL on the last RFD. */
	for (i = 0; i < FXP_NRFD; i++) {
		rfd = &cd->fcd_rfds[i];
		rfd->rfd_status = 0;
		rfd->rfd_command = htole16(i == FXP_NRFD - 1 ?
		    FXP_RFD_COMMAND_EL : 0);
		rfd->rfd_link = htole32(FXP_CDRFDADDR(sc, FXP_NEXTRFD(i)));
		rfd->rfd_rbd_addr = htole32(FXP_TBD_ARRAY_NONE);
		rfd->rfd_count = 0;
		rfd->rfd_size = htole16(FXP_RFD_DATA_MAX);
	}
	fxp_cdsync(sc, FXP_CDOFF(fcd_rfds), sizeof(cd->fcd_rfds),
	    BUS_DMASYNC_PREREAD | BUS_DMASYNC_PREWRITE);
	sc->sc_rxcons = 0;
	sc->sc_rxtail = FXP_NRFD - 1;
	if ((error = fxp_scb_command(sc, FXP_SCB_COMMAND_RU_START,
	    FXP_CDRFDADDR(sc, 0))) != 0)
		goto fail;

	/* Acknowledge anything pending, then unmask. */
	CSR_WRITE_1(sc, FXP_CSR_SCB_STATACK, FXP_SCB_STATACK_ALL);
	CSR_WRITE_1(sc, FXP_CSR_SCB_INTRCNTL, FXP_SCB_INTR_ENABLE);

	if ((error = mii_mediachg(&sc->sc_mii)) == ENXIO)
		error = 0;

	ifp->if_flags |= IFF_RUNNING;
	ifp->if_flags &= ~IFF_OACTIVE;
	sc->sc_stopping = false;
	callout_schedule(&sc->sc_tick_ch, hz);
	return error;

 fail:
	aprint_error_dev(sc->sc_dev, "init failed, error = %d\n", error);
	fxp_stop_locked(ifp, 0);
	return error;
}

static void
fxp_stop(struct ifnet *ifp, int disable)
{
	struct fxp_softc *sc = ifp->if_softc;

	mutex_enter(sc->sc_mtx);
	fxp_stop_locked(ifp, disable);
	mutex_exit(sc->sc_mtx);
}

/* Both units stopped by a selective reset (SDM 6.3.3.1), then masked. */
static void
fxp_stop_locked(struct ifnet *ifp, int disable)
{
	struct fxp_softc *sc = ifp->if_softc;

	KASSERT(mutex_owned(sc->sc_mtx));
	sc->sc_stopping = true;
	callout_stop(&sc->sc_tick_ch);
	mii_down(&sc->sc_mii);
	CSR_WRITE_4(sc, FXP_CSR_PORT, FXP_PORT_SELECTIVE_RESET);
	DELAY(20);
	CSR_WRITE_1(sc, FXP_CSR_SCB_INTRCNTL, FXP_SCB_INTR_DISABLE);
	CSR_WRITE_1(sc, FXP_CSR_SCB_STATACK, FXP_SCB_STATACK_ALL);
	sc->sc_cbprod = sc->sc_cbcons = sc->sc_cbcnt = 0;
	sc->sc_cbqueued = 0;
	sc->sc_custarted = false;
	sc->sc_tx_timer = 0;
	ifp->if_flags &= ~(IFF_RUNNING | IFF_OACTIVE);
	ifp->if_timer = 0;
}

/* Copies each completed frame out of its RFD and recycles the RFD. */
static void
fxp_rxeof(struct fxp_softc *sc)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	struct fxp_rfd *rfd, *tail;
	struct mbuf *m;
	uint16_t status;
	int idx, len, limit;

	KASSERT(mutex_owned(sc->sc_mtx));
	for (limit = 0; limit < FXP_RXLIMIT; limit++) {
		idx = sc->sc_rxcons;
		rfd = &sc->sc_cd->fcd_rfds[idx];
		fxp_cdsync(sc, FXP_CDRFDOFF(idx), sizeof(*rfd),
		    BUS_DMASYNC_POSTREAD);
		status = le16toh(rfd->rfd_status);
		if ((status & FXP_RFD_STATUS_C) == 0)
			break;
		len = le16toh(rfd->rfd_count) & FXP_RFD_COUNT_MASK;

		if ((status & FXP_RFD_STATUS_OK) == 0 ||
		    len < ETHER_HDR_LEN || len > FXP_RFD_DATA_MAX) {
			sc->sc_ev_rxerr.ev_count++;
			if_statinc(ifp, if_ierrors);
		} else {
			MGETHDR(m, M_DONTWAIT, MT_DATA);
			if (__predict_false(m == NULL)) {
				sc->sc_ev_rxnobuf.ev_count++;
				if_statinc(ifp, if_iqdrops);
			} else {
				MCLGET(m, M_DONTWAIT);
				memcpy(mtod(m, uint8_t *), rfd->rfd_data,
				    (size_t)len);
				m->m_len = m->m_pkthdr.len = len;
				m_set_rcvif(m, ifp);
				if (ETHER_IS_MULTICAST(rfd->rfd_data))
					if_statinc(ifp, if_imcasts);
				if_statinc(ifp, if_ipackets);
				if_statadd(ifp, if_ibytes, (uint64_t)len);
				if_percpuq_enqueue(ifp->if_percpuq, m);
			}
		}

		/* Recycle: this RFD is the new end of the list. */
		rfd->rfd_status = 0;
		rfd->rfd_count = 0;
		rfd->rfd_command = htole16(FXP_RFD_COMMAND_EL);
		fxp_cdsync(sc, FXP_CDRFDOFF(idx), sizeof(*rfd),
		    BUS_DMASYNC_PREREAD | BUS_DMASYNC_PREWRITE);
		tail = &sc->sc_cd->fcd_rfds[sc->sc_rxtail];
		tail->rfd_command = 0;
		fxp_cdsync(sc, FXP_CDRFDOFF(sc->sc_rxtail), sizeof(*tail),
		    BUS_DMASYNC_PREWRITE);
		sc->sc_rxtail = idx;
		sc->sc_rxcons = FXP_NEXTRFD(idx);
	}

	/*
	 * The RU stopped at an EL (no resources) and everything it filled
	 * is copied out: restart it at the first free RFD.
	 */
	if ((CSR_READ_1(sc, FXP_CSR_SCB_RUSCUS) & FXP_SCB_RUS_MASK) !=
	    FXP_SCB_RUS_READY) {
		rfd = &sc->sc_cd->fcd_rfds[sc->sc_rxcons];
		fxp_cdsync(sc, FXP_CDRFDOFF(sc->sc_rxcons), sizeof(*rfd),
		    BUS_DMASYNC_POSTREAD);
		if ((le16toh(rfd->rfd_status) & FXP_RFD_STATUS_C) == 0) {
			sc->sc_ev_rnr.ev_count++;
			(void)fxp_scb_command(sc, FXP_SCB_COMMAND_RU_START,
			    FXP_CDRFDADDR(sc, sc->sc_rxcons));
		}
	}
}

/* Reaps completed command blocks, oldest first. */
static void
fxp_txeof(struct fxp_softc *sc)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	union fxp_cb *cb;
	uint16_t status;
	int idx;

	KASSERT(mutex_owned(sc->sc_mtx));
	while (sc->sc_cbcnt > 0) {
		idx = sc->sc_cbcons;
		cb = &sc->sc_cd->fcd_cbs[idx];
		fxp_cdsync(sc, FXP_CDCBOFF(idx), sizeof(cb->cb_hdr),
		    BUS_DMASYNC_POSTREAD);
		status = le16toh(cb->cb_hdr.cb_status);
		if ((status & FXP_CB_STATUS_C) == 0)
			break;
		if (sc->sc_cbtype[idx] == FXP_CBT_TX) {
			if (status & FXP_CB_STATUS_OK)
				if_statinc(ifp, if_opackets);
			else {
				if_statinc(ifp, if_oerrors);
				sc->sc_ev_txerr.ev_count++;
			}
		}
		sc->sc_cbtype[idx] = FXP_CBT_FREE;
		sc->sc_cbcons = FXP_NEXTCB(idx);
		sc->sc_cbcnt--;
	}
	if (sc->sc_cbcnt < FXP_NCB)
		ifp->if_flags &= ~IFF_OACTIVE;
	if (sc->sc_cbcnt == 0)
		sc->sc_tx_timer = 0;
	if (sc->sc_filter_pending && (ifp->if_flags & IFF_RUNNING) &&
	    sc->sc_cbcnt <= FXP_NCB - 2)
		fxp_filter_locked(sc);
}

static void
fxp_start(struct ifnet *ifp)
{
	struct fxp_softc *sc = ifp->if_softc;

	mutex_enter(sc->sc_mtx);
	fxp_start_locked(ifp);
	mutex_exit(sc->sc_mtx);
}

/*
 * Copies queued frames into free transmit blocks (simplified mode) and
 * resumes the CU once per ringful.  Completed blocks are reaped first (a
 * read of their status words in memory), so a ring the chip has drained
 * is reused at once; frames stay on if_snd while the ring is full, and the
 * CNA interrupt that follows the chip's progress starts them.
 */
static void
fxp_start_locked(struct ifnet *ifp)
{
	struct fxp_softc *sc = ifp->if_softc;
	struct fxp_cb_tx *tx;
	struct mbuf *m;
	int len, first, rounds;

	KASSERT(mutex_owned(sc->sc_mtx));
	if ((ifp->if_flags & IFF_RUNNING) == 0)
		return;
	for (rounds = 0; rounds < 4; rounds++) {
		if (sc->sc_cbcnt > 0)
			fxp_txeof(sc);
		if (sc->sc_cbcnt == FXP_NCB)
			break;
		first = sc->sc_cbprod;
		while (sc->sc_cbcnt < FXP_NCB) {
			IFQ_DEQUEUE(&ifp->if_snd, m);
			if (m == NULL)
				break;
			len = m->m_pkthdr.len;
			if (len > FXP_TX_DATA_MAX) {
				/* Cannot be sent: count it and go on. */
				if_statinc(ifp, if_oerrors);
				m_freem(m);
				continue;
			}
			tx = &sc->sc_cd->fcd_cbs[sc->sc_cbprod].cb_tx;
			m_copydata(m, 0, len, tx->tx_data);
			if (len < ETHER_MIN_LEN - ETHER_CRC_LEN) {
				memset(tx->tx_data + len, 0,
				    (size_t)(ETHER_MIN_LEN - ETHER_CRC_LEN - len));
				len = ETHER_MIN_LEN - ETHER_CRC_LEN;
			}
			tx->tx_tbd_array_addr = htole32(FXP_TBD_ARRAY_NONE);
			tx->tx_byte_count = htole16((uint16_t)len | FXP_TX_EOF);
			tx->tx_threshold = 0xe0; /* whole frame before sending */
			tx->tx_tbd_number = 0;
			bpf_mtap(ifp, m, BPF_D_OUT);
			if_statadd(ifp, if_obytes, (uint64_t)len);
			if (m->m_flags & M_MCAST)
				if_statinc(ifp, if_omcasts);
			m_freem(m);
			fxp_cb_enqueue(sc, FXP_CB_COMMAND_XMIT, FXP_CBT_TX);
			sc->sc_tx_timer = 5;
			if (sc->sc_cbqueued >= FXP_CUBATCH) {
				fxp_cu_kick(sc, first);
				first = sc->sc_cbprod;
			}
		}
		fxp_cu_kick(sc, first);
		if (sc->sc_cbcnt < FXP_NCB || IFQ_IS_EMPTY(&ifp->if_snd))
			break;
	}
	if (sc->sc_cbcnt == FXP_NCB)
		ifp->if_flags |= IFF_OACTIVE;
	else
		ifp->if_flags &= ~IFF_OACTIVE;
}

static int
fxp_intr(void *arg)
{
	struct fxp_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	uint8_t statack;
	int handled = 0, rounds;

	mutex_enter(sc->sc_mtx);
	if ((ifp->if_flags & IFF_RUNNING) == 0) {
		mutex_exit(sc->sc_mtx);
		return 0;
	}
	for (rounds = 0; rounds < 16; rounds++) {
		statack = CSR_READ_1(sc, FXP_CSR_SCB_STATACK);
		if (statack == 0xff || (statack & FXP_SCB_STATACK_ALL) == 0)
			break;
		handled = 1;
		/* Acknowledge first, so events during the work re-assert. */
		CSR_WRITE_1(sc, FXP_CSR_SCB_STATACK, statack);
		if (statack & (FXP_SCB_STATACK_FR | FXP_SCB_STATACK_RNR))
			fxp_rxeof(sc);
		if (statack & (FXP_SCB_STATACK_CNA | FXP_SCB_STATACK_CXTNO))
			fxp_txeof(sc);
	}
	/* Polled (no interrupt serviced): frames may wait all the same. */
	if (!handled) {
		fxp_cdsync(sc, FXP_CDRFDOFF(sc->sc_rxcons),
		    sizeof(struct fxp_rfd), BUS_DMASYNC_POSTREAD);
		if (le16toh(sc->sc_cd->fcd_rfds[sc->sc_rxcons].rfd_status) &
		    FXP_RFD_STATUS_C) {
			fxp_rxeof(sc);
			handled = 1;
		}
		if (sc->sc_cbcnt > 0)
			fxp_txeof(sc);
	}
	if (handled) {
		sc->sc_ev_intr.ev_count++;
		if (!IFQ_IS_EMPTY(&ifp->if_snd))
			fxp_start_locked(ifp);
	}
	mutex_exit(sc->sc_mtx);
	return handled;
}

/* Once a second: the PHY's state, and the transmit watchdog. */
static void
fxp_tick(void *arg)
{
	struct fxp_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;

	mutex_enter(sc->sc_mtx);
	if (sc->sc_stopping || (ifp->if_flags & IFF_RUNNING) == 0) {
		mutex_exit(sc->sc_mtx);
		return;
	}
	mii_tick(&sc->sc_mii);
	if (sc->sc_cbcnt > 0) {
		fxp_txeof(sc);
		/*
		 * Blocks still pending: a resume the CU took while active
		 * (or one that stopped early) left them; resume again, which
		 * a suspended CU follows and an active one ignores.
		 */
		if (sc->sc_cbcnt > 0 && sc->sc_custarted &&
		    fxp_scb_wait(sc) == 0)
			CSR_WRITE_1(sc, FXP_CSR_SCB_COMMAND,
			    FXP_SCB_COMMAND_CU_RESUME);
		if (sc->sc_cbcnt > 0 && --sc->sc_tx_timer <= 0) {
			aprint_error_dev(sc->sc_dev, "device timeout\n");
			sc->sc_ev_watchdog.ev_count++;
			if_statinc(ifp, if_oerrors);
			(void)fxp_init_locked(ifp);
		}
	}
	if (sc->sc_filter_pending)
		fxp_filter_locked(sc);
	if (!IFQ_IS_EMPTY(&ifp->if_snd))
		fxp_start_locked(ifp);
	if (!sc->sc_stopping)
		callout_schedule(&sc->sc_tick_ch, hz);
	mutex_exit(sc->sc_mtx);
}

/* Only promiscuous and all-multicast changes: reprogram the filter. */
static int
fxp_ifflags_cb(struct ethercom *ec)
{
	struct ifnet *ifp = &ec->ec_if;
	struct fxp_softc *sc = ifp->if_softc;
	int change = ifp->if_flags ^ ec->ec_if_flags;

	if ((change & ~(IFF_PROMISC | IFF_ALLMULTI | IFF_DEBUG)) != 0)
		return ENETRESET;
	mutex_enter(sc->sc_mtx);
	if (ifp->if_flags & IFF_RUNNING)
		fxp_filter_locked(sc);
	mutex_exit(sc->sc_mtx);
	return 0;
}

static int
fxp_ioctl(struct ifnet *ifp, u_long cmd, void *data)
{
	struct fxp_softc *sc = ifp->if_softc;
	int error;

	error = ether_ioctl(ifp, cmd, data);
	if (error == ENETRESET) {
		/* The multicast list changed: reprogram the filter. */
		mutex_enter(sc->sc_mtx);
		if (ifp->if_flags & IFF_RUNNING)
			fxp_filter_locked(sc);
		mutex_exit(sc->sc_mtx);
		error = 0;
	}
	return error;
}

/*
 * MDI control (SDM 6.3.5): one 32-bit write starts the cycle, the chip
 * sets READY when it is done (and the data is in the low 16 bits).
 */
static int
fxp_mdi_cycle(struct fxp_softc *sc, uint32_t cmd, uint32_t *result)
{
	uint32_t v;
	int i;

	CSR_WRITE_4(sc, FXP_CSR_MDICONTROL, cmd);
	for (i = 0; i < 1000; i++) {
		v = CSR_READ_4(sc, FXP_CSR_MDICONTROL);
		if (v & FXP_MDI_READY) {
			*result = v;
			return 0;
		}
		DELAY(10);
	}
	return ETIMEDOUT;
}

static int
fxp_mdi_read(device_t self, int phy, int reg, uint16_t *val)
{
	struct fxp_softc *sc = device_private(self);
	uint32_t v;
	int error;

	error = fxp_mdi_cycle(sc, FXP_MDI_READ |
	    ((uint32_t)phy << FXP_MDI_PHY_SHIFT) |
	    ((uint32_t)reg << FXP_MDI_REG_SHIFT), &v);
	if (error != 0)
		return error;
	*val = (uint16_t)(v & FXP_MDI_DATA_MASK);
	return 0;
}

static int
fxp_mdi_write(device_t self, int phy, int reg, uint16_t val)
{
	struct fxp_softc *sc = device_private(self);
	uint32_t v;

	return fxp_mdi_cycle(sc, FXP_MDI_WRITE |
	    ((uint32_t)phy << FXP_MDI_PHY_SHIFT) |
	    ((uint32_t)reg << FXP_MDI_REG_SHIFT) | val, &v);
}

static void
fxp_mii_statchg(struct ifnet *ifp)
{
	/* The MAC follows the PHY's speed and duplex by itself. */
}
