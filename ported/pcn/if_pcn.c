/*	$pktkit: if_pcn.c $	*/

/*
 * pcn -- AMD Am79C970A PCnet-PCI II, as QEMU's pcnet models it, written
 * for pktkit's compat-bsd in the style of a NetBSD driver.
 *
 * The chip is run in software style 2 (BCR20): 32-bit initialisation
 * block and 16-byte descriptors.  Registers are reached indirectly: the
 * register address port (RAP) selects a CSR or BCR, read or written
 * through RDP or BDP (word I/O, the mode after reset).  One DMA area
 * holds the init block, both descriptor rings and a buffer per
 * descriptor: the chip's DMA addresses are 32-bit and the stack's
 * buffers are not below 4 GiB, so frames are copied both ways.
 *
 * The receive filter (promiscuous mode, the 64-bit logical address
 * filter for multicast) lives in the init block, which the chip reads
 * only at INIT: a filter change re-initialises the chip.  The
 * Am79C970A has no MII; the link state is what the chip shows on LED0
 * (BCR4 with LNKSE), polled once a tick.
 *
 * Locking notes:
 *	The driver is not IFEF_MPSAFE: pktkit runs its interrupt handler,
 *	callout, if_start and ioctl under the driver's lock, so the softc
 *	needs no lock of its own.  Every CSR/BCR access writes RAP first,
 *	so no access depends on a RAP value left by another.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$pktkit: if_pcn.c $");

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/device.h>
#include <sys/callout.h>
#include <sys/evcnt.h>
#include <sys/mbuf.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/bus.h>
#include <sys/intr.h>
#include <sys/rndsource.h>

#include <net/if.h>
#include <net/if_ether.h>
#include <net/if_media.h>
#include <net/bpf.h>

#include <dev/pci/pcireg.h>
#include <dev/pci/pcivar.h>
#include <dev/pci/pcidevs.h>

#include "pcnreg.h"

#define PCN_NRXDESC_LOG2	6
#define PCN_NTXDESC_LOG2	5
#define PCN_NRXDESC	(1 << PCN_NRXDESC_LOG2)
#define PCN_NTXDESC	(1 << PCN_NTXDESC_LOG2)
#define PCN_NEXTRX(i)	(((i) + 1) & (PCN_NRXDESC - 1))
#define PCN_NEXTTX(i)	(((i) + 1) & (PCN_NTXDESC - 1))
#define PCN_BUFSZ	1536		/* one frame per descriptor */
#define PCN_RXLIMIT	128

struct pcn_control_data {
	struct pcn_rxdesc	pcd_rxdescs[PCN_NRXDESC];	/* 16-aligned */
	struct pcn_txdesc	pcd_txdescs[PCN_NTXDESC];
	struct pcn_initblock	pcd_initblock;
	uint8_t			pcd_pad[4];
	uint8_t			pcd_rxbufs[PCN_NRXDESC][PCN_BUFSZ];
	uint8_t			pcd_txbufs[PCN_NTXDESC][PCN_BUFSZ];
};

#define PCN_CDOFF(x)		offsetof(struct pcn_control_data, x)
#define PCN_CDADDR(sc, x)	((uint32_t)((sc)->sc_cddma + PCN_CDOFF(x)))

struct pcn_softc {
	struct ethercom	sc_ethercom;	/* must be first */
	device_t	sc_dev;
	bus_space_tag_t	sc_st;
	bus_space_handle_t sc_sh;
	bus_dma_tag_t	sc_dmat;
	pci_chipset_tag_t sc_pc;
	void		*sc_ih;
	struct ifmedia	sc_media;
	callout_t	sc_tick_ch;
	krndsource_t	sc_rnd_source;

	bus_dma_segment_t sc_cdseg;
	int		sc_cdnseg;
	bus_dmamap_t	sc_cddmamap;
#define	sc_cddma	sc_cddmamap->dm_segs[0].ds_addr	/* its device address */
	struct pcn_control_data *sc_cd;

	int		sc_txprod;	/* filled next */
	int		sc_txcons;	/* reaped next */
	int		sc_txcnt;	/* owned by the chip */
	int		sc_tx_timer;	/* ticks until the watchdog fires */
	int		sc_rxcons;	/* checked next */
	int		sc_link;	/* LINK_STATE_* last reported */
	int		sc_attached;

	struct evcnt	sc_ev_intr;
	struct evcnt	sc_ev_rxerr;
	struct evcnt	sc_ev_rxnobuf;
	struct evcnt	sc_ev_miss;	/* frames missed: no descriptor */
	struct evcnt	sc_ev_txerr;
	struct evcnt	sc_ev_initto;	/* INIT never signalled IDON */
	struct evcnt	sc_ev_watchdog;
};

#define CSR_READ_1(sc, r)	bus_space_read_1((sc)->sc_st, (sc)->sc_sh, (r))
#define CSR_READ_2(sc, r)	bus_space_read_2((sc)->sc_st, (sc)->sc_sh, (r))
#define CSR_WRITE_2(sc, r, v)	bus_space_write_2((sc)->sc_st, (sc)->sc_sh, (r), (v))

#define PCN_ATTACH_DMA		1
#define PCN_ATTACH_INTR		2
#define PCN_ATTACH_IFNET	3

static int	pcn_match(device_t, cfdata_t, void *);
static void	pcn_attach(device_t, device_t, void *);
static int	pcn_detach(device_t, int);

static int	pcn_init(struct ifnet *);
static void	pcn_stop(struct ifnet *, int);
static void	pcn_start(struct ifnet *);
static int	pcn_ioctl(struct ifnet *, u_long, void *);
static int	pcn_intr(void *);
static void	pcn_tick(void *);
static void	pcn_rxeof(struct pcn_softc *);
static void	pcn_txeof(struct pcn_softc *);
static void	pcn_reset(struct pcn_softc *);
static void	pcn_link(struct pcn_softc *);
static int	pcn_dma_alloc(struct pcn_softc *);
static void	pcn_dma_free(struct pcn_softc *);
static int	pcn_mediachange(struct ifnet *);
static void	pcn_mediastatus(struct ifnet *, struct ifmediareq *);

CFATTACH_DECL_NEW(pcn, sizeof(struct pcn_softc),
    pcn_match, pcn_attach, pcn_detach, NULL);

/* CSRs and BCRs: the index into RAP, then the data port (datasheet 3). */
static uint16_t
pcn_csr_read(struct pcn_softc *sc, int reg)
{
	CSR_WRITE_2(sc, PCN_RAP, (uint16_t)reg);
	return CSR_READ_2(sc, PCN_RDP);
}

static void
pcn_csr_write(struct pcn_softc *sc, int reg, uint16_t val)
{
	CSR_WRITE_2(sc, PCN_RAP, (uint16_t)reg);
	CSR_WRITE_2(sc, PCN_RDP, val);
}

static uint16_t
pcn_bcr_read(struct pcn_softc *sc, int reg)
{
	CSR_WRITE_2(sc, PCN_RAP, (uint16_t)reg);
	return CSR_READ_2(sc, PCN_BDP);
}

static void
pcn_bcr_write(struct pcn_softc *sc, int reg, uint16_t val)
{
	CSR_WRITE_2(sc, PCN_RAP, (uint16_t)reg);
	CSR_WRITE_2(sc, PCN_BDP, val);
}

static int
pcn_match(device_t parent, cfdata_t cf, void *aux)
{
	struct pci_attach_args *pa = aux;

	return PCI_VENDOR(pa->pa_id) == PCI_VENDOR_AMD &&
	    PCI_PRODUCT(pa->pa_id) == PCI_PRODUCT_AMD_PCNET_PCI;
}

static void
pcn_attach(device_t parent, device_t self, void *aux)
{
	struct pcn_softc *sc = device_private(self);
	struct pci_attach_args *pa = aux;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	pci_intr_handle_t ih;
	char intrbuf[PCI_INTRSTR_LEN];
	const char *intrstr;
	uint8_t enaddr[ETHER_ADDR_LEN];
	uint32_t chipid;
	pcireg_t csr;
	int i;

	sc->sc_dev = self;
	sc->sc_pc = pa->pa_pc;
	sc->sc_dmat = pa->pa_dmat;
	pci_aprint_devinfo_fancy(pa, "Ethernet controller",
	    "AMD Am79C970A PCnet-PCI II", 1);

	/* Bus mastering and both decoders on (PCI 3.0, 6.2.2). */
	csr = pci_conf_read(pa->pa_pc, pa->pa_tag, PCI_COMMAND_STATUS_REG);
	csr |= PCI_COMMAND_MASTER_ENABLE | PCI_COMMAND_MEM_ENABLE |
	    PCI_COMMAND_IO_ENABLE;
	pci_conf_write(pa->pa_pc, pa->pa_tag, PCI_COMMAND_STATUS_REG, csr);

	/* The memory BAR (BAR1) if it maps, else the I/O BAR (BAR0). */
	if (pci_mapreg_map(pa, PCI_BAR(1), PCI_MAPREG_TYPE_MEM |
	    PCI_MAPREG_MEM_TYPE_32BIT, 0, &sc->sc_st, &sc->sc_sh, NULL,
	    NULL) != 0 &&
	    pci_mapreg_map(pa, PCI_BAR(0), PCI_MAPREG_TYPE_IO, 0,
	    &sc->sc_st, &sc->sc_sh, NULL, NULL) != 0) {
		aprint_error_dev(self, "can't map registers\n");
		return;
	}

	pcn_reset(sc);
	chipid = pcn_csr_read(sc, LE_CSR88) |
	    ((uint32_t)pcn_csr_read(sc, LE_CSR89) << 16);
	aprint_normal_dev(self, "chip id 0x%08x\n", chipid);
	/* The station address PROM (datasheet: "Address PROM Space"). */
	for (i = 0; i < ETHER_ADDR_LEN; i++)
		enaddr[i] = CSR_READ_1(sc, PCN_APROM + i);

	if (pcn_dma_alloc(sc) != 0)
		return;
	sc->sc_attached = PCN_ATTACH_DMA;

	if (pci_intr_map(pa, &ih) != 0) {
		aprint_error_dev(self, "can't map interrupt\n");
		goto fail;
	}
	intrstr = pci_intr_string(pa->pa_pc, ih, intrbuf, sizeof(intrbuf));
	sc->sc_ih = pci_intr_establish_xname(pa->pa_pc, ih, IPL_NET, pcn_intr,
	    sc, device_xname(self));
	if (sc->sc_ih == NULL) {
		aprint_error_dev(self, "can't establish interrupt at %s\n",
		    intrstr);
		goto fail;
	}
	sc->sc_attached = PCN_ATTACH_INTR;
	aprint_normal_dev(self, "interrupting at %s\n", intrstr);
	aprint_normal_dev(self, "Ethernet address %s\n", ether_sprintf(enaddr));

	callout_init(&sc->sc_tick_ch, 0);
	evcnt_attach_dynamic(&sc->sc_ev_intr, EVCNT_TYPE_INTR, NULL,
	    device_xname(self), "intr");
	evcnt_attach_dynamic(&sc->sc_ev_rxerr, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx errors");
	evcnt_attach_dynamic(&sc->sc_ev_rxnobuf, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx no mbuf");
	evcnt_attach_dynamic(&sc->sc_ev_miss, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx missed");
	evcnt_attach_dynamic(&sc->sc_ev_txerr, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "tx errors");
	evcnt_attach_dynamic(&sc->sc_ev_initto, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "init timeouts");
	evcnt_attach_dynamic(&sc->sc_ev_watchdog, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "watchdog");

	strlcpy(ifp->if_xname, device_xname(self), IFNAMSIZ);
	ifp->if_softc = sc;
	ifp->if_flags = IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST;
	ifp->if_ioctl = pcn_ioctl;
	ifp->if_start = pcn_start;
	ifp->if_init = pcn_init;
	ifp->if_stop = pcn_stop;
	ifp->if_baudrate = 10ULL * 1000 * 1000;
	IFQ_SET_MAXLEN(&ifp->if_snd, IFQ_MAXLEN);
	IFQ_SET_READY(&ifp->if_snd);

	/* No MII: one medium, 10BASE-T, its link on LED0. */
	sc->sc_ethercom.ec_ifmedia = &sc->sc_media;
	ifmedia_init(&sc->sc_media, 0, pcn_mediachange, pcn_mediastatus);
	ifmedia_add(&sc->sc_media, IFM_ETHER | IFM_10_T, 0, NULL);
	ifmedia_set(&sc->sc_media, IFM_ETHER | IFM_10_T);

	if_attach(ifp);
	if_deferred_start_init(ifp, NULL);
	ether_ifattach(ifp, enaddr);
	sc->sc_attached = PCN_ATTACH_IFNET;

	rnd_attach_source(&sc->sc_rnd_source, device_xname(self),
	    RND_TYPE_NET, RND_FLAG_DEFAULT);
	if (!pmf_device_register(self, NULL, NULL))
		aprint_error_dev(self, "couldn't establish power handler\n");
	else
		pmf_class_network_register(self, ifp);
	return;

 fail:
	if (sc->sc_attached >= PCN_ATTACH_INTR)
		pci_intr_disestablish(sc->sc_pc, sc->sc_ih);
	if (sc->sc_attached >= PCN_ATTACH_DMA)
		pcn_dma_free(sc);
	sc->sc_attached = 0;
}

static int
pcn_detach(device_t self, int flags)
{
	struct pcn_softc *sc = device_private(self);
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;

	if (sc->sc_attached < PCN_ATTACH_IFNET)
		return 0;
	pcn_stop(ifp, 1);
	callout_halt(&sc->sc_tick_ch, NULL);
	callout_destroy(&sc->sc_tick_ch);
	ifmedia_fini(&sc->sc_media);
	rnd_detach_source(&sc->sc_rnd_source);
	ether_ifdetach(ifp);
	if_detach(ifp);
	evcnt_detach(&sc->sc_ev_intr);
	evcnt_detach(&sc->sc_ev_rxerr);
	evcnt_detach(&sc->sc_ev_rxnobuf);
	evcnt_detach(&sc->sc_ev_miss);
	evcnt_detach(&sc->sc_ev_txerr);
	evcnt_detach(&sc->sc_ev_initto);
	evcnt_detach(&sc->sc_ev_watchdog);
	pci_intr_disestablish(sc->sc_pc, sc->sc_ih);
	pcn_dma_free(sc);
	pmf_device_deregister(self);
	sc->sc_attached = 0;
	return 0;
}

static int
pcn_dma_alloc(struct pcn_softc *sc)
{
	const bus_size_t size = sizeof(struct pcn_control_data);
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
		/* The chip takes 32-bit addresses into one area. */
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
pcn_dma_free(struct pcn_softc *sc)
{
	if (sc->sc_cddmamap == NULL)
		return;
	bus_dmamap_unload(sc->sc_dmat, sc->sc_cddmamap);
	bus_dmamap_destroy(sc->sc_dmat, sc->sc_cddmamap);
	bus_dmamem_unmap(sc->sc_dmat, sc->sc_cd,
	    sizeof(struct pcn_control_data));
	bus_dmamem_free(sc->sc_dmat, &sc->sc_cdseg, sc->sc_cdnseg);
	sc->sc_cddmamap = NULL;
}

static inline void
pcn_cdsync(struct pcn_softc *sc, bus_size_t off, bus_size_t len, int ops)
{
	bus_dmamap_sync(sc->sc_dmat, sc->sc_cddmamap, off, len, ops);
}

/* A read of the RESET port resets the chip: stopped, word I/O, style 0. */
static void
pcn_reset(struct pcn_softc *sc)
{
	(void)CSR_READ_2(sc, PCN_RESET);
	DELAY(10);
}

/*
 * The logical address filter: a group address sets bit (CRC-32
 * little-endian of the address) >> 26 of the 64-bit filter.  A range,
 * or promiscuous mode, opens it all.
 */
static void
pcn_setladrf(struct pcn_softc *sc, struct pcn_initblock *ib)
{
	struct ethercom *ec = &sc->sc_ethercom;
	struct ifnet *ifp = &ec->ec_if;
	struct ether_multi *enm;
	struct ether_multistep step;
	uint32_t crc;

	memset(ib->init_ladrf, 0, sizeof(ib->init_ladrf));
	ifp->if_flags &= ~IFF_ALLMULTI;
	if (ifp->if_flags & IFF_PROMISC)
		goto allmulti;
	ETHER_LOCK(ec);
	ETHER_FIRST_MULTI(step, ec, enm);
	while (enm != NULL) {
		if (memcmp(enm->enm_addrlo, enm->enm_addrhi,
		    ETHER_ADDR_LEN) != 0) {
			ETHER_UNLOCK(ec);
			goto allmulti;
		}
		crc = ether_crc32_le(enm->enm_addrlo, ETHER_ADDR_LEN) >> 26;
		ib->init_ladrf[crc >> 4] |= htole16((uint16_t)(1U << (crc & 0xf)));
		ETHER_NEXT_MULTI(step, enm);
	}
	ETHER_UNLOCK(ec);
	return;

 allmulti:
	ifp->if_flags |= IFF_ALLMULTI;
	memset(ib->init_ladrf, 0xff, sizeof(ib->init_ladrf));
}

/* The datasheet's initialisation: style, init block, INIT, IDON, STRT. */
static int
pcn_init(struct ifnet *ifp)
{
	struct pcn_softc *sc = ifp->if_softc;
	struct pcn_control_data *cd = sc->sc_cd;
	struct pcn_initblock *ib = &cd->pcd_initblock;
	uint32_t iaddr;
	int i;

	pcn_stop(ifp, 0);
	pcn_reset(sc);

	/* 32-bit structures (SWSTYLE 2), set while the chip is stopped. */
	pcn_bcr_write(sc, LE_BCR20, LE_B20_SSTYLE_PCNETPCI2);

	for (i = 0; i < PCN_NRXDESC; i++) {
		struct pcn_rxdesc *rd = &cd->pcd_rxdescs[i];

		rd->rmd0 = htole32(PCN_CDADDR(sc, pcd_rxbufs[i]));
		rd->rmd2 = 0;
		rd->rmd3 = 0;
		rd->rmd1 = htole32(LE_R1_OWN | LE_R1_ONES | LE_BCNT(PCN_BUFSZ));
	}
	for (i = 0; i < PCN_NTXDESC; i++) {
		struct pcn_txdesc *td = &cd->pcd_txdescs[i];

		td->tmd0 = htole32(PCN_CDADDR(sc, pcd_txbufs[i]));
		td->tmd1 = 0;
		td->tmd2 = 0;
		td->tmd3 = 0;
	}
	sc->sc_rxcons = 0;
	sc->sc_txprod = sc->sc_txcons = sc->sc_txcnt = 0;
	sc->sc_tx_timer = 0;

	memset(ib, 0, sizeof(*ib));
	ib->init_mode = htole16((ifp->if_flags & IFF_PROMISC) ?
	    LE_C15_PROM : 0);
	ib->init_rlen = PCN_NRXDESC_LOG2 << 4;
	ib->init_tlen = PCN_NTXDESC_LOG2 << 4;
	memcpy(ib->init_padr, CLLADDR(ifp->if_sadl), ETHER_ADDR_LEN);
	pcn_setladrf(sc, ib);
	ib->init_rdra = htole32(PCN_CDADDR(sc, pcd_rxdescs));
	ib->init_tdra = htole32(PCN_CDADDR(sc, pcd_txdescs));
	pcn_cdsync(sc, 0, PCN_CDOFF(pcd_rxbufs),
	    BUS_DMASYNC_PREREAD | BUS_DMASYNC_PREWRITE);

	iaddr = PCN_CDADDR(sc, pcd_initblock);
	pcn_csr_write(sc, LE_CSR1, (uint16_t)(iaddr & 0xffff));
	pcn_csr_write(sc, LE_CSR2, (uint16_t)(iaddr >> 16));
	/* IDON is polled for, not taken as an interrupt. */
	pcn_csr_write(sc, LE_CSR3, LE_C3_IDONM);
	pcn_csr_write(sc, LE_CSR0, LE_C0_INIT);
	for (i = 0; i < 10000; i++) {
		if (pcn_csr_read(sc, LE_CSR0) & LE_C0_IDON)
			break;
		DELAY(10);
	}
	if (i == 10000) {
		sc->sc_ev_initto.ev_count++;
		aprint_error_dev(sc->sc_dev, "initialization timed out\n");
		pcn_stop(ifp, 0);
		return ETIMEDOUT;
	}
	pcn_csr_write(sc, LE_CSR0, LE_C0_IDON | LE_C0_STRT | LE_C0_INEA);

	ifp->if_flags |= IFF_RUNNING;
	ifp->if_flags &= ~IFF_OACTIVE;
	pcn_link(sc);
	callout_reset(&sc->sc_tick_ch, hz / 4, pcn_tick, sc);
	return 0;
}

static void
pcn_stop(struct ifnet *ifp, int disable)
{
	struct pcn_softc *sc = ifp->if_softc;

	callout_stop(&sc->sc_tick_ch);
	/* STOP halts both DMA engines and clears the interrupt bits. */
	pcn_csr_write(sc, LE_CSR0, LE_C0_STOP);
	sc->sc_txprod = sc->sc_txcons = sc->sc_txcnt = 0;
	sc->sc_tx_timer = 0;
	ifp->if_flags &= ~(IFF_RUNNING | IFF_OACTIVE);
	ifp->if_timer = 0;
}

/* Copies each received frame out and gives the descriptor back. */
static void
pcn_rxeof(struct pcn_softc *sc)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	struct pcn_rxdesc *rd;
	struct mbuf *m;
	uint32_t rmd1;
	int idx, len, limit;

	for (limit = 0; limit < PCN_RXLIMIT; limit++) {
		idx = sc->sc_rxcons;
		rd = &sc->sc_cd->pcd_rxdescs[idx];
		pcn_cdsync(sc, PCN_CDOFF(pcd_rxdescs[idx]), sizeof(*rd),
		    BUS_DMASYNC_POSTREAD);
		rmd1 = le32toh(rd->rmd1);
		if (rmd1 & LE_R1_OWN)
			break;
		/* MCNT counts the FCS the chip stores after the frame. */
		len = (int)(le32toh(rd->rmd2) & LE_R2_MCNT_MASK) -
		    ETHER_CRC_LEN;
		if ((rmd1 & (LE_R1_ERR | LE_R1_STP | LE_R1_ENP)) !=
		    (LE_R1_STP | LE_R1_ENP) ||
		    len < ETHER_HDR_LEN || len > PCN_BUFSZ) {
			sc->sc_ev_rxerr.ev_count++;
			if_statinc(ifp, if_ierrors);
		} else {
			MGETHDR(m, M_DONTWAIT, MT_DATA);
			if (__predict_false(m == NULL)) {
				sc->sc_ev_rxnobuf.ev_count++;
				if_statinc(ifp, if_iqdrops);
			} else {
				MCLGET(m, M_DONTWAIT);
				memcpy(mtod(m, uint8_t *),
				    sc->sc_cd->pcd_rxbufs[idx], (size_t)len);
				m->m_len = m->m_pkthdr.len = len;
				m_set_rcvif(m, ifp);
				if (ETHER_IS_MULTICAST(sc->sc_cd->pcd_rxbufs[idx]))
					if_statinc(ifp, if_imcasts);
				if_statinc(ifp, if_ipackets);
				if_statadd(ifp, if_ibytes, (uint64_t)len);
				if_percpuq_enqueue(ifp->if_percpuq, m);
			}
		}
		/* Back to the chip: the buffer first, OWN last. */
		rd->rmd2 = 0;
		pcn_cdsync(sc, PCN_CDOFF(pcd_rxdescs[idx]), sizeof(*rd),
		    BUS_DMASYNC_PREWRITE);
		rd->rmd1 = htole32(LE_R1_OWN | LE_R1_ONES |
		    LE_BCNT(PCN_BUFSZ));
		pcn_cdsync(sc, PCN_CDOFF(pcd_rxdescs[idx]), sizeof(*rd),
		    BUS_DMASYNC_PREREAD | BUS_DMASYNC_PREWRITE);
		sc->sc_rxcons = PCN_NEXTRX(idx);
	}
}

/* Reaps transmitted descriptors, oldest first. */
static void
pcn_txeof(struct pcn_softc *sc)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	struct pcn_txdesc *td;
	uint32_t tmd1;
	int idx;

	while (sc->sc_txcnt > 0) {
		idx = sc->sc_txcons;
		td = &sc->sc_cd->pcd_txdescs[idx];
		pcn_cdsync(sc, PCN_CDOFF(pcd_txdescs[idx]), sizeof(*td),
		    BUS_DMASYNC_POSTREAD);
		tmd1 = le32toh(td->tmd1);
		if (tmd1 & LE_T1_OWN)
			break;
		if (tmd1 & LE_T1_ERR) {
			if_statinc(ifp, if_oerrors);
			sc->sc_ev_txerr.ev_count++;
		} else
			if_statinc(ifp, if_opackets);
		if_statadd(ifp, if_collisions,
		    le32toh(td->tmd2) & LE_T2_TRC_MASK);
		sc->sc_txcons = PCN_NEXTTX(idx);
		sc->sc_txcnt--;
	}
	if (sc->sc_txcnt < PCN_NTXDESC)
		ifp->if_flags &= ~IFF_OACTIVE;
	if (sc->sc_txcnt == 0)
		sc->sc_tx_timer = 0;
}

/*
 * Copies queued frames into free descriptors' buffers, gives each to the
 * chip (OWN written last) and demands a transmit poll once for the lot.
 */
static void
pcn_start(struct ifnet *ifp)
{
	struct pcn_softc *sc = ifp->if_softc;
	struct pcn_txdesc *td;
	struct mbuf *m;
	int len, idx, queued = 0;

	if ((ifp->if_flags & IFF_RUNNING) == 0)
		return;
	if (sc->sc_txcnt > 0)
		pcn_txeof(sc);
	while (sc->sc_txcnt < PCN_NTXDESC) {
		IFQ_DEQUEUE(&ifp->if_snd, m);
		if (m == NULL)
			break;
		len = m->m_pkthdr.len;
		if (len > PCN_BUFSZ) {
			if_statinc(ifp, if_oerrors);
			m_freem(m);
			continue;
		}
		idx = sc->sc_txprod;
		td = &sc->sc_cd->pcd_txdescs[idx];
		m_copydata(m, 0, len, sc->sc_cd->pcd_txbufs[idx]);
		if (len < ETHER_MIN_LEN - ETHER_CRC_LEN) {
			memset(sc->sc_cd->pcd_txbufs[idx] + len, 0,
			    (size_t)(ETHER_MIN_LEN - ETHER_CRC_LEN - len));
			len = ETHER_MIN_LEN - ETHER_CRC_LEN;
		}
		bpf_mtap(ifp, m, BPF_D_OUT);
		if_statadd(ifp, if_obytes, (uint64_t)len);
		if (m->m_flags & M_MCAST)
			if_statinc(ifp, if_omcasts);
		m_freem(m);

		td->tmd2 = 0;
		pcn_cdsync(sc, PCN_CDOFF(pcd_txbufs[idx]), PCN_BUFSZ,
		    BUS_DMASYNC_PREWRITE);
		td->tmd1 = htole32(LE_T1_OWN | LE_T1_STP | LE_T1_ENP |
		    LE_T1_ONES | LE_BCNT(len));
		pcn_cdsync(sc, PCN_CDOFF(pcd_txdescs[idx]), sizeof(*td),
		    BUS_DMASYNC_PREWRITE);
		sc->sc_txprod = PCN_NEXTTX(idx);
		sc->sc_txcnt++;
		sc->sc_tx_timer = 5 * 4;
		queued++;
	}
	if (queued > 0)
		pcn_csr_write(sc, LE_CSR0, LE_C0_INEA | LE_C0_TDMD);
	if (sc->sc_txcnt == PCN_NTXDESC)
		ifp->if_flags |= IFF_OACTIVE;
}

static int
pcn_intr(void *arg)
{
	struct pcn_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	uint16_t csr0;
	int handled = 0, rounds;

	if ((ifp->if_flags & IFF_RUNNING) == 0)
		return 0;
	for (rounds = 0; rounds < 16; rounds++) {
		csr0 = pcn_csr_read(sc, LE_CSR0);
		if ((csr0 & LE_C0_INTR) == 0)
			break;
		handled = 1;
		/* Acknowledge first, so events during the work re-assert. */
		pcn_csr_write(sc, LE_CSR0, (csr0 & LE_C0_ACKMASK) | LE_C0_INEA);
		if (csr0 & LE_C0_MISS) {
			sc->sc_ev_miss.ev_count++;
			if_statinc(ifp, if_iqdrops);
		}
		if (csr0 & (LE_C0_RINT | LE_C0_MISS))
			pcn_rxeof(sc);
		if (csr0 & LE_C0_TINT)
			pcn_txeof(sc);
		if (csr0 & (LE_C0_MERR | LE_C0_BABL)) {
			if_statinc(ifp, if_oerrors);
			(void)pcn_init(ifp);
			return 1;
		}
	}
	/* Polled (no interrupt serviced): frames may wait all the same. */
	if (!handled) {
		pcn_cdsync(sc, PCN_CDOFF(pcd_rxdescs[sc->sc_rxcons]),
		    sizeof(struct pcn_rxdesc), BUS_DMASYNC_POSTREAD);
		if ((le32toh(sc->sc_cd->pcd_rxdescs[sc->sc_rxcons].rmd1) &
		    LE_R1_OWN) == 0) {
			pcn_rxeof(sc);
			handled = 1;
		}
		if (sc->sc_txcnt > 0)
			pcn_txeof(sc);
	}
	if (handled)
		sc->sc_ev_intr.ev_count++;
	if (!IFQ_IS_EMPTY(&ifp->if_snd))
		pcn_start(ifp);
	return handled;
}

/* The link as LED0 shows it (LNKSE is set after reset). */
static void
pcn_link(struct pcn_softc *sc)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	int link;

	link = (pcn_bcr_read(sc, LE_BCR4) & LE_B4_LEDOUT) ?
	    LINK_STATE_UP : LINK_STATE_DOWN;
	if (link != sc->sc_link) {
		sc->sc_link = link;
		if_link_state_change(ifp, link);
	}
}

/* Four times a second: the link, and the transmit watchdog. */
static void
pcn_tick(void *arg)
{
	struct pcn_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	int s;

	s = splnet();
	pcn_link(sc);
	if (sc->sc_txcnt > 0) {
		pcn_txeof(sc);
		if (sc->sc_txcnt > 0 && --sc->sc_tx_timer <= 0) {
			aprint_error_dev(sc->sc_dev, "transmit timeout\n");
			sc->sc_ev_watchdog.ev_count++;
			if_statinc(ifp, if_oerrors);
			(void)pcn_init(ifp);
		}
	}
	if (!IFQ_IS_EMPTY(&ifp->if_snd))
		pcn_start(ifp);
	splx(s);
	if (ifp->if_flags & IFF_RUNNING)
		callout_schedule(&sc->sc_tick_ch, hz / 4);
}

static int
pcn_ioctl(struct ifnet *ifp, u_long cmd, void *data)
{
	int s, error;

	s = splnet();
	error = ether_ioctl(ifp, cmd, data);
	if (error == ENETRESET) {
		/* The filter is in the init block: initialise again. */
		error = 0;
		if (ifp->if_flags & IFF_RUNNING)
			error = pcn_init(ifp);
	}
	splx(s);
	return error;
}

static int
pcn_mediachange(struct ifnet *ifp)
{
	/* One medium: nothing to change. */
	return 0;
}

static void
pcn_mediastatus(struct ifnet *ifp, struct ifmediareq *ifmr)
{
	struct pcn_softc *sc = ifp->if_softc;

	ifmr->ifm_status = IFM_AVALID;
	ifmr->ifm_active = IFM_ETHER | IFM_10_T | IFM_HDX;
	if ((ifp->if_flags & IFF_RUNNING) == 0)
		return;
	if (pcn_bcr_read(sc, LE_BCR4) & LE_B4_LEDOUT)
		ifmr->ifm_status |= IFM_ACTIVE;
}
