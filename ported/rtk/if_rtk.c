/*	$pktkit: if_rtk.c $	*/

/*
 * rtk -- Realtek RTL8139 Fast Ethernet, as QEMU's rtl8139 models it,
 * written for pktkit's compat-bsd in the style of a NetBSD driver.
 *
 * The chip receives into one ring buffer (32 KiB + 16, with 2 KiB of slack
 * after it: with RCR.WRAP set the chip writes a frame that runs past the
 * end contiguously into the slack instead of wrapping), each frame behind
 * a 4-byte header (status, length with CRC), 32-bit aligned.  Transmit
 * uses four slots, each a 4-byte aligned buffer the frame is copied into;
 * writing the length to TSDn hands slot n to the chip, which processes the
 * slots round-robin.  The PHY is internal, with its MII registers mapped
 * at BMCR 0x62..ANER 0x6a; the MII layer drives it as a generic PHY.
 *
 * Datasheet references: RTL8139(A/B/C/D) "Register Descriptions" and
 * "Packet buffer" sections; the programming guide's init sequence.
 *
 * Locking notes:
 *	The driver is not IFEF_MPSAFE: pktkit runs its interrupt handler,
 *	callout, if_start and ioctl under the driver's lock, so the softc
 *	needs no lock of its own (splnet() marks the sections NetBSD would
 *	protect).
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$pktkit: if_rtk.c $");

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

#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>

#include <dev/pci/pcireg.h>
#include <dev/pci/pcivar.h>
#include <dev/pci/pcidevs.h>

#include "rtl81x9reg.h"

struct rtk_txslot {
	bus_dma_segment_t ts_seg;
	int		ts_nseg;
	bus_dmamap_t	ts_dmamap;
	uint8_t		*ts_buf;
};

struct rtk_softc {
	struct ethercom	sc_ethercom;	/* must be first */
	device_t	sc_dev;
	bus_space_tag_t	sc_bst;
	bus_space_handle_t sc_bsh;
	bus_dma_tag_t	sc_dmat;
	pci_chipset_tag_t sc_pc;
	void		*sc_ih;
	struct mii_data	sc_mii;
	callout_t	sc_tick_ch;
	krndsource_t	sc_rnd_source;

	/* Receive ring buffer. */
	bus_dma_segment_t sc_rx_seg;
	int		sc_rx_nseg;
	bus_dmamap_t	sc_rx_dmamap;
	uint8_t		*sc_rx_buf;
	uint16_t	sc_rx_cur;	/* offset of the next frame header */

	/* Transmit slots: prod is filled next, cons completes next. */
	struct rtk_txslot sc_tx[RTK_TX_LIST_CNT];
	int		sc_tx_prod;
	int		sc_tx_cons;
	int		sc_tx_cnt;
	int		sc_tx_timer;	/* ticks until the watchdog fires */
	int		sc_txthresh;	/* early transmit threshold / 32 */

	int		sc_attached;	/* how far attach got */
	struct evcnt	sc_ev_intr;
	struct evcnt	sc_ev_rxerr;	/* bad frame headers: ring reset */
	struct evcnt	sc_ev_txerr;
	struct evcnt	sc_ev_rxnobuf;	/* no mbuf for a received frame */
	struct evcnt	sc_ev_watchdog;
};

#define CSR_READ_1(sc, r)	bus_space_read_1((sc)->sc_bst, (sc)->sc_bsh, (r))
#define CSR_READ_2(sc, r)	bus_space_read_2((sc)->sc_bst, (sc)->sc_bsh, (r))
#define CSR_READ_4(sc, r)	bus_space_read_4((sc)->sc_bst, (sc)->sc_bsh, (r))
#define CSR_WRITE_1(sc, r, v)	bus_space_write_1((sc)->sc_bst, (sc)->sc_bsh, (r), (v))
#define CSR_WRITE_2(sc, r, v)	bus_space_write_2((sc)->sc_bst, (sc)->sc_bsh, (r), (v))
#define CSR_WRITE_4(sc, r, v)	bus_space_write_4((sc)->sc_bst, (sc)->sc_bsh, (r), (v))

#define RTK_ATTACH_DMA		1
#define RTK_ATTACH_INTR		2
#define RTK_ATTACH_IFNET	3

static int	rtk_match(device_t, cfdata_t, void *);
static void	rtk_attach(device_t, device_t, void *);
static int	rtk_detach(device_t, int);

static int	rtk_init(struct ifnet *);
static void	rtk_stop(struct ifnet *, int);
static void	rtk_start(struct ifnet *);
static int	rtk_ioctl(struct ifnet *, u_long, void *);
static int	rtk_ifflags_cb(struct ethercom *);
static int	rtk_intr(void *);
static void	rtk_tick(void *);
static void	rtk_rxeof(struct rtk_softc *);
static void	rtk_txeof(struct rtk_softc *);
static void	rtk_setmulti(struct rtk_softc *);
static void	rtk_reset(struct rtk_softc *);
static int	rtk_dma_alloc(struct rtk_softc *);
static void	rtk_dma_free(struct rtk_softc *);
static int	rtk_phy_readreg(device_t, int, int, uint16_t *);
static int	rtk_phy_writereg(device_t, int, int, uint16_t);
static void	rtk_phy_statchg(struct ifnet *);

CFATTACH_DECL_NEW(rtk, sizeof(struct rtk_softc),
    rtk_match, rtk_attach, rtk_detach, NULL);

static const struct rtk_product {
	uint16_t	rp_vendor;
	uint16_t	rp_product;
	const char	*rp_name;
} rtk_products[] = {
	{ PCI_VENDOR_REALTEK, PCI_PRODUCT_REALTEK_RT8139,
	  "Realtek 8139 10/100BaseTX" },
	{ PCI_VENDOR_REALTEK, PCI_PRODUCT_REALTEK_RT8138,
	  "Realtek 8138 10/100BaseTX" },
};

static const struct rtk_product *
rtk_lookup(const struct pci_attach_args *pa)
{
	size_t i;

	for (i = 0; i < __arraycount(rtk_products); i++) {
		if (PCI_VENDOR(pa->pa_id) == rtk_products[i].rp_vendor &&
		    PCI_PRODUCT(pa->pa_id) == rtk_products[i].rp_product)
			return &rtk_products[i];
	}
	return NULL;
}

static int
rtk_match(device_t parent, cfdata_t cf, void *aux)
{
	return rtk_lookup(aux) != NULL;
}

static void
rtk_attach(device_t parent, device_t self, void *aux)
{
	struct rtk_softc *sc = device_private(self);
	struct pci_attach_args *pa = aux;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	struct mii_data *mii = &sc->sc_mii;
	const struct rtk_product *rp = rtk_lookup(pa);
	pci_intr_handle_t ih;
	char intrbuf[PCI_INTRSTR_LEN];
	const char *intrstr;
	uint8_t enaddr[ETHER_ADDR_LEN];
	pcireg_t csr;
	int i;

	sc->sc_dev = self;
	sc->sc_pc = pa->pa_pc;
	sc->sc_dmat = pa->pa_dmat;
	pci_aprint_devinfo_fancy(pa, "Ethernet controller",
	    rp != NULL ? rp->rp_name : NULL, 1);

	/* Bus mastering and both decoders on (PCI 3.0, 6.2.2). */
	csr = pci_conf_read(pa->pa_pc, pa->pa_tag, PCI_COMMAND_STATUS_REG);
	csr |= PCI_COMMAND_MASTER_ENABLE | PCI_COMMAND_MEM_ENABLE |
	    PCI_COMMAND_IO_ENABLE;
	pci_conf_write(pa->pa_pc, pa->pa_tag, PCI_COMMAND_STATUS_REG, csr);

	/* Registers: the memory BAR (BAR1) if it maps, else the I/O BAR. */
	if (pci_mapreg_map(pa, PCI_BAR(1), PCI_MAPREG_TYPE_MEM |
	    PCI_MAPREG_MEM_TYPE_32BIT, 0, &sc->sc_bst, &sc->sc_bsh, NULL,
	    NULL) != 0 &&
	    pci_mapreg_map(pa, PCI_BAR(0), PCI_MAPREG_TYPE_IO, 0,
	    &sc->sc_bst, &sc->sc_bsh, NULL, NULL) != 0) {
		aprint_error_dev(self, "can't map registers\n");
		return;
	}

	rtk_reset(sc);
	for (i = 0; i < ETHER_ADDR_LEN; i++)
		enaddr[i] = CSR_READ_1(sc, RTK_IDR0 + i);

	if (rtk_dma_alloc(sc) != 0)
		goto fail;
	sc->sc_attached = RTK_ATTACH_DMA;

	if (pci_intr_map(pa, &ih) != 0) {
		aprint_error_dev(self, "can't map interrupt\n");
		goto fail;
	}
	intrstr = pci_intr_string(pa->pa_pc, ih, intrbuf, sizeof(intrbuf));
	sc->sc_ih = pci_intr_establish_xname(pa->pa_pc, ih, IPL_NET, rtk_intr,
	    sc, device_xname(self));
	if (sc->sc_ih == NULL) {
		aprint_error_dev(self, "can't establish interrupt at %s\n",
		    intrstr);
		goto fail;
	}
	sc->sc_attached = RTK_ATTACH_INTR;
	aprint_normal_dev(self, "interrupting at %s\n", intrstr);
	aprint_normal_dev(self, "Ethernet address %s\n", ether_sprintf(enaddr));

	callout_init(&sc->sc_tick_ch, 0);
	evcnt_attach_dynamic(&sc->sc_ev_intr, EVCNT_TYPE_INTR, NULL,
	    device_xname(self), "intr");
	evcnt_attach_dynamic(&sc->sc_ev_rxerr, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx ring resets");
	evcnt_attach_dynamic(&sc->sc_ev_txerr, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "tx errors");
	evcnt_attach_dynamic(&sc->sc_ev_rxnobuf, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx no mbuf");
	evcnt_attach_dynamic(&sc->sc_ev_watchdog, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "watchdog");

	strlcpy(ifp->if_xname, device_xname(self), IFNAMSIZ);
	ifp->if_softc = sc;
	ifp->if_flags = IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST;
	ifp->if_ioctl = rtk_ioctl;
	ifp->if_start = rtk_start;
	ifp->if_init = rtk_init;
	ifp->if_stop = rtk_stop;
	IFQ_SET_MAXLEN(&ifp->if_snd, IFQ_MAXLEN);
	IFQ_SET_READY(&ifp->if_snd);

	/* The internal PHY, through the MII layer. */
	mii->mii_ifp = ifp;
	mii->mii_readreg = rtk_phy_readreg;
	mii->mii_writereg = rtk_phy_writereg;
	mii->mii_statchg = rtk_phy_statchg;
	sc->sc_ethercom.ec_mii = mii;
	ifmedia_init(&mii->mii_media, IFM_IMASK, ether_mediachange,
	    ether_mediastatus);

	if_attach(ifp);
	if_deferred_start_init(ifp, NULL);
	ether_ifattach(ifp, enaddr);
	ether_set_ifflags_cb(&sc->sc_ethercom, rtk_ifflags_cb);
	sc->sc_attached = RTK_ATTACH_IFNET;

	mii_attach(self, mii, 0xffffffff, MII_PHY_ANY, MII_OFFSET_ANY, 0);
	if (LIST_FIRST(&mii->mii_phys) == NULL) {
		ifmedia_add(&mii->mii_media, IFM_ETHER | IFM_NONE, 0, NULL);
		ifmedia_set(&mii->mii_media, IFM_ETHER | IFM_NONE);
	} else
		ifmedia_set(&mii->mii_media, IFM_ETHER | IFM_AUTO);

	rnd_attach_source(&sc->sc_rnd_source, device_xname(self),
	    RND_TYPE_NET, RND_FLAG_DEFAULT);
	if (!pmf_device_register(self, NULL, NULL))
		aprint_error_dev(self, "couldn't establish power handler\n");
	else
		pmf_class_network_register(self, ifp);
	return;

 fail:
	if (sc->sc_attached >= RTK_ATTACH_INTR)
		pci_intr_disestablish(sc->sc_pc, sc->sc_ih);
	if (sc->sc_attached >= RTK_ATTACH_DMA)
		rtk_dma_free(sc);
	sc->sc_attached = 0;
}

static int
rtk_detach(device_t self, int flags)
{
	struct rtk_softc *sc = device_private(self);
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;

	if (sc->sc_attached < RTK_ATTACH_IFNET)
		return 0;
	rtk_stop(ifp, 1);
	callout_halt(&sc->sc_tick_ch, NULL);
	callout_destroy(&sc->sc_tick_ch);
	mii_detach(&sc->sc_mii, MII_PHY_ANY, MII_OFFSET_ANY);
	ifmedia_fini(&sc->sc_mii.mii_media);
	rnd_detach_source(&sc->sc_rnd_source);
	ether_ifdetach(ifp);
	if_detach(ifp);
	evcnt_detach(&sc->sc_ev_intr);
	evcnt_detach(&sc->sc_ev_rxerr);
	evcnt_detach(&sc->sc_ev_txerr);
	evcnt_detach(&sc->sc_ev_rxnobuf);
	evcnt_detach(&sc->sc_ev_watchdog);
	pci_intr_disestablish(sc->sc_pc, sc->sc_ih);
	rtk_dma_free(sc);
	pmf_device_deregister(self);
	sc->sc_attached = 0;
	return 0;
}

/* One DMA buffer: allocate, map for the CPU, load for the device. */
static int
rtk_dma_buf(struct rtk_softc *sc, bus_size_t size, bus_dma_segment_t *seg,
    int *nseg, bus_dmamap_t *map, uint8_t **kva)
{
	int error;

	if ((error = bus_dmamem_alloc(sc->sc_dmat, size, PAGE_SIZE, 0, seg, 1,
	    nseg, BUS_DMA_NOWAIT)) != 0)
		return error;
	if ((error = bus_dmamem_map(sc->sc_dmat, seg, *nseg, size,
	    (void **)kva, BUS_DMA_NOWAIT | BUS_DMA_COHERENT)) != 0)
		goto free;
	if ((error = bus_dmamap_create(sc->sc_dmat, size, 1, size, 0,
	    BUS_DMA_NOWAIT, map)) != 0)
		goto unmap;
	if ((error = bus_dmamap_load(sc->sc_dmat, *map, *kva, size, NULL,
	    BUS_DMA_NOWAIT)) != 0)
		goto destroy;
	if ((*map)->dm_nsegs != 1) {
		/* The chip takes one physically contiguous buffer. */
		bus_dmamap_unload(sc->sc_dmat, *map);
		error = EFBIG;
		goto destroy;
	}
	memset(*kva, 0, size);
	return 0;

 destroy:
	bus_dmamap_destroy(sc->sc_dmat, *map);
 unmap:
	bus_dmamem_unmap(sc->sc_dmat, *kva, size);
 free:
	bus_dmamem_free(sc->sc_dmat, seg, *nseg);
	*map = NULL;
	return error;
}

static void
rtk_dma_unbuf(struct rtk_softc *sc, bus_size_t size, bus_dma_segment_t *seg,
    int nseg, bus_dmamap_t map, uint8_t *kva)
{
	if (map == NULL)
		return;
	bus_dmamap_unload(sc->sc_dmat, map);
	bus_dmamap_destroy(sc->sc_dmat, map);
	bus_dmamem_unmap(sc->sc_dmat, kva, size);
	bus_dmamem_free(sc->sc_dmat, seg, nseg);
}

static int
rtk_dma_alloc(struct rtk_softc *sc)
{
	int i, error;

	error = rtk_dma_buf(sc, RTK_RXBUF_ALLOC, &sc->sc_rx_seg,
	    &sc->sc_rx_nseg, &sc->sc_rx_dmamap, &sc->sc_rx_buf);
	if (error != 0) {
		aprint_error_dev(sc->sc_dev, "can't allocate rx buffer, "
		    "error = %d\n", error);
		return error;
	}
	for (i = 0; i < RTK_TX_LIST_CNT; i++) {
		struct rtk_txslot *ts = &sc->sc_tx[i];

		error = rtk_dma_buf(sc, RTK_TXBUFLEN, &ts->ts_seg,
		    &ts->ts_nseg, &ts->ts_dmamap, &ts->ts_buf);
		if (error != 0) {
			aprint_error_dev(sc->sc_dev, "can't allocate tx "
			    "buffer %d, error = %d\n", i, error);
			rtk_dma_free(sc);
			return error;
		}
	}
	return 0;
}

static void
rtk_dma_free(struct rtk_softc *sc)
{
	int i;

	for (i = 0; i < RTK_TX_LIST_CNT; i++) {
		struct rtk_txslot *ts = &sc->sc_tx[i];

		rtk_dma_unbuf(sc, RTK_TXBUFLEN, &ts->ts_seg, ts->ts_nseg,
		    ts->ts_dmamap, ts->ts_buf);
		ts->ts_dmamap = NULL;
	}
	rtk_dma_unbuf(sc, RTK_RXBUF_ALLOC, &sc->sc_rx_seg, sc->sc_rx_nseg,
	    sc->sc_rx_dmamap, sc->sc_rx_buf);
	sc->sc_rx_dmamap = NULL;
}

/* CR.RST resets the chip; it clears the bit when done (datasheet 6.1). */
static void
rtk_reset(struct rtk_softc *sc)
{
	int i;

	CSR_WRITE_1(sc, RTK_COMMAND, RTK_CMD_RESET);
	for (i = 0; i < 1000; i++) {
		DELAY(10);
		if ((CSR_READ_1(sc, RTK_COMMAND) & RTK_CMD_RESET) == 0)
			return;
	}
	aprint_error_dev(sc->sc_dev, "reset never completed\n");
}

/* The programming guide's initialisation sequence. */
static int
rtk_init(struct ifnet *ifp)
{
	struct rtk_softc *sc = ifp->if_softc;
	const uint8_t *enaddr = CLLADDR(ifp->if_sadl);
	int i, error;

	rtk_stop(ifp, 0);
	rtk_reset(sc);

	/* Station address: the ID registers need the config unlock. */
	CSR_WRITE_1(sc, RTK_EECMD, RTK_EEMODE_WRITECFG);
	for (i = 0; i < ETHER_ADDR_LEN; i++)
		CSR_WRITE_1(sc, RTK_IDR0 + i, enaddr[i]);
	CSR_WRITE_1(sc, RTK_EECMD, RTK_EEMODE_OFF);

	/* Receive buffer, read pointer at its start. */
	sc->sc_rx_cur = 0;
	bus_dmamap_sync(sc->sc_dmat, sc->sc_rx_dmamap, 0,
	    sc->sc_rx_dmamap->dm_mapsize, BUS_DMASYNC_PREREAD);
	CSR_WRITE_4(sc, RTK_RXADDR,
	    (uint32_t)sc->sc_rx_dmamap->dm_segs[0].ds_addr);
	CSR_WRITE_2(sc, RTK_CURRXADDR, (uint16_t)(0 - 16));

	/* Transmit slots. */
	for (i = 0; i < RTK_TX_LIST_CNT; i++)
		CSR_WRITE_4(sc, RTK_TXADDR(i),
		    (uint32_t)sc->sc_tx[i].ts_dmamap->dm_segs[0].ds_addr);
	sc->sc_tx_prod = sc->sc_tx_cons = sc->sc_tx_cnt = 0;
	sc->sc_txthresh = RTK_TX_THRESH_INIT;

	/* Enable the receiver and transmitter before configuring them. */
	CSR_WRITE_1(sc, RTK_COMMAND, RTK_CMD_TX_ENB | RTK_CMD_RX_ENB);
	CSR_WRITE_4(sc, RTK_RXCFG, RTK_RXCFG_WRAP | RTK_RXCFG_MAXDMA_UNLIM |
	    RTK_RXCFG_BUFSZ_32K | RTK_RXCFG_FIFOTHRESH_NONE |
	    RTK_RXCFG_RX_INDIV | RTK_RXCFG_RX_BROAD);
	CSR_WRITE_4(sc, RTK_TXCFG, RTK_TXCFG_IFG_NORMAL |
	    RTK_TXCFG_MAXDMA_2048);
	rtk_setmulti(sc);
	CSR_WRITE_4(sc, RTK_MISSEDPKT, 0);

	/* Acknowledge anything pending, then unmask. */
	CSR_WRITE_2(sc, RTK_ISR, 0xffff);
	CSR_WRITE_2(sc, RTK_IMR, RTK_INTRS);

	if ((error = mii_mediachg(&sc->sc_mii)) == ENXIO)
		error = 0;

	ifp->if_flags |= IFF_RUNNING;
	ifp->if_flags &= ~IFF_OACTIVE;
	callout_reset(&sc->sc_tick_ch, hz, rtk_tick, sc);
	return error;
}

static void
rtk_stop(struct ifnet *ifp, int disable)
{
	struct rtk_softc *sc = ifp->if_softc;

	callout_stop(&sc->sc_tick_ch);
	mii_down(&sc->sc_mii);
	CSR_WRITE_2(sc, RTK_IMR, 0);
	CSR_WRITE_1(sc, RTK_COMMAND, 0);
	CSR_WRITE_2(sc, RTK_ISR, 0xffff);
	sc->sc_tx_prod = sc->sc_tx_cons = sc->sc_tx_cnt = 0;
	sc->sc_tx_timer = 0;
	ifp->if_flags &= ~(IFF_RUNNING | IFF_OACTIVE);
	ifp->if_timer = 0;
}

/*
 * Receive hash filter (MAR0-7, accessed 32 bits at a time): a group
 * address sets bit (CRC-32 big-endian of the address) >> 26.  A range
 * (all-multicast) or promiscuous mode opens the whole filter.
 */
static void
rtk_setmulti(struct rtk_softc *sc)
{
	struct ethercom *ec = &sc->sc_ethercom;
	struct ifnet *ifp = &ec->ec_if;
	struct ether_multi *enm;
	struct ether_multistep step;
	uint32_t hashes[2] = { 0, 0 };
	uint32_t rxcfg, h;

	rxcfg = CSR_READ_4(sc, RTK_RXCFG);
	rxcfg &= ~(RTK_RXCFG_RX_ALLPHYS | RTK_RXCFG_RX_MULTI);
	rxcfg |= RTK_RXCFG_RX_INDIV | RTK_RXCFG_RX_BROAD | RTK_RXCFG_RX_MULTI;
	ifp->if_flags &= ~IFF_ALLMULTI;

	if (ifp->if_flags & IFF_PROMISC) {
		rxcfg |= RTK_RXCFG_RX_ALLPHYS;
		goto allmulti;
	}
	ETHER_LOCK(ec);
	ETHER_FIRST_MULTI(step, ec, enm);
	while (enm != NULL) {
		if (memcmp(enm->enm_addrlo, enm->enm_addrhi,
		    ETHER_ADDR_LEN) != 0) {
			ETHER_UNLOCK(ec);
			goto allmulti;
		}
		h = ether_crc32_be(enm->enm_addrlo, ETHER_ADDR_LEN) >> 26;
		hashes[h >> 5] |= 1U << (h & 31);
		ETHER_NEXT_MULTI(step, enm);
	}
	ETHER_UNLOCK(ec);
	goto write;

 allmulti:
	ifp->if_flags |= IFF_ALLMULTI;
	hashes[0] = hashes[1] = 0xffffffff;
 write:
	CSR_WRITE_4(sc, RTK_MAR0, hashes[0]);
	CSR_WRITE_4(sc, RTK_MAR0 + 4, hashes[1]);
	CSR_WRITE_4(sc, RTK_RXCFG, rxcfg);
}

/* Copies each frame out of the ring into a fresh mbuf. */
static void
rtk_rxeof(struct rtk_softc *sc)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	struct mbuf *m;
	uint32_t rxstat;
	uint16_t cur;
	int total_len, len, limit;

	bus_dmamap_sync(sc->sc_dmat, sc->sc_rx_dmamap, 0,
	    sc->sc_rx_dmamap->dm_mapsize, BUS_DMASYNC_POSTREAD);

	for (limit = 0; limit < 256; limit++) {
		if (CSR_READ_1(sc, RTK_COMMAND) & RTK_CMD_EMPTY_RXBUF)
			break;
		cur = sc->sc_rx_cur;
		rxstat = le32dec(sc->sc_rx_buf + cur);
		total_len = (int)(rxstat >> RTK_RXSTAT_LENSHIFT);
		/* The chip is still copying this frame in (early receive). */
		if (total_len == 0xfff0)
			break;
		if ((rxstat & RTK_RXSTAT_RXOK) == 0 ||
		    total_len < ETHER_HDR_LEN + ETHER_CRC_LEN ||
		    total_len > ETHER_MAX_LEN + ETHER_VLAN_ENCAP_LEN) {
			/* A bad header leaves the ring unusable: start over. */
			if_statinc(ifp, if_ierrors);
			sc->sc_ev_rxerr.ev_count++;
			rtk_init(ifp);
			return;
		}
		len = total_len - ETHER_CRC_LEN;

		MGETHDR(m, M_DONTWAIT, MT_DATA);
		if (__predict_false(m == NULL)) {
			sc->sc_ev_rxnobuf.ev_count++;
			if_statinc(ifp, if_iqdrops);
		} else {
			MCLGET(m, M_DONTWAIT);
			/* WRAP mode: the frame is contiguous, maybe in the slack. */
			memcpy(mtod(m, uint8_t *), sc->sc_rx_buf + cur + 4,
			    (size_t)len);
			m->m_len = m->m_pkthdr.len = len;
			m_set_rcvif(m, ifp);
			if (rxstat & RTK_RXSTAT_MULTI)
				if_statinc(ifp, if_imcasts);
			if_statinc(ifp, if_ipackets);
			if_statadd(ifp, if_ibytes, (uint64_t)len);
			if_percpuq_enqueue(ifp->if_percpuq, m);
		}

		/* Next header: 32-bit aligned, modulo the ring size. */
		cur = (uint16_t)((cur + total_len + 4 + 3) & ~3);
		cur %= RTK_RXBUFLEN;
		sc->sc_rx_cur = cur;
		CSR_WRITE_2(sc, RTK_CURRXADDR, (uint16_t)(cur - 16));
	}

	bus_dmamap_sync(sc->sc_dmat, sc->sc_rx_dmamap, 0,
	    sc->sc_rx_dmamap->dm_mapsize, BUS_DMASYNC_PREREAD);
}

/* Reaps finished transmit slots, oldest first. */
static void
rtk_txeof(struct rtk_softc *sc)
{
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	uint32_t txstat;

	while (sc->sc_tx_cnt > 0) {
		txstat = CSR_READ_4(sc, RTK_TXSTAT(sc->sc_tx_cons));
		if ((txstat & (RTK_TXSTAT_TX_OK | RTK_TXSTAT_TX_UNDERRUN |
		    RTK_TXSTAT_TXABRT)) == 0)
			break;
		if_statadd(ifp, if_collisions,
		    (txstat & RTK_TXSTAT_COLLCNT) >> 24);
		if (txstat & RTK_TXSTAT_TX_OK)
			if_statinc(ifp, if_opackets);
		else {
			if_statinc(ifp, if_oerrors);
			sc->sc_ev_txerr.ev_count++;
			if (txstat & RTK_TXSTAT_TX_UNDERRUN &&
			    sc->sc_txthresh < 0x3f)
				sc->sc_txthresh++;
			if (txstat & RTK_TXSTAT_TXABRT)
				CSR_WRITE_4(sc, RTK_TXCFG,
				    CSR_READ_4(sc, RTK_TXCFG) |
				    RTK_TXCFG_CLRABRT);
		}
		bus_dmamap_sync(sc->sc_dmat,
		    sc->sc_tx[sc->sc_tx_cons].ts_dmamap, 0, RTK_TXBUFLEN,
		    BUS_DMASYNC_POSTWRITE);
		sc->sc_tx_cons = (sc->sc_tx_cons + 1) % RTK_TX_LIST_CNT;
		sc->sc_tx_cnt--;
	}
	if (sc->sc_tx_cnt < RTK_TX_LIST_CNT)
		ifp->if_flags &= ~IFF_OACTIVE;
	if (sc->sc_tx_cnt == 0)
		sc->sc_tx_timer = 0;
}

/*
 * Copies queued frames into free slots (the 8139 needs each frame in one
 * 32-bit aligned buffer) and hands each to the chip by writing its length
 * to TSDn.  Frames stay on if_snd while every slot is busy.
 */
static void
rtk_start(struct ifnet *ifp)
{
	struct rtk_softc *sc = ifp->if_softc;
	struct rtk_txslot *ts;
	struct mbuf *m;
	int len;

	if ((ifp->if_flags & (IFF_RUNNING | IFF_OACTIVE)) != IFF_RUNNING)
		return;
	while (sc->sc_tx_cnt < RTK_TX_LIST_CNT) {
		IFQ_DEQUEUE(&ifp->if_snd, m);
		if (m == NULL)
			break;
		len = m->m_pkthdr.len;
		if (len > ETHER_MAX_LEN - ETHER_CRC_LEN + ETHER_VLAN_ENCAP_LEN) {
			/* Cannot be sent: count it and go on. */
			if_statinc(ifp, if_oerrors);
			m_freem(m);
			continue;
		}
		ts = &sc->sc_tx[sc->sc_tx_prod];
		m_copydata(m, 0, len, ts->ts_buf);
		if (len < RTK_ETHER_MIN) {
			memset(ts->ts_buf + len, 0, (size_t)(RTK_ETHER_MIN - len));
			len = RTK_ETHER_MIN;
		}
		bpf_mtap(ifp, m, BPF_D_OUT);
		if_statadd(ifp, if_obytes, (uint64_t)len);
		if (m->m_flags & M_MCAST)
			if_statinc(ifp, if_omcasts);
		m_freem(m);

		bus_dmamap_sync(sc->sc_dmat, ts->ts_dmamap, 0, RTK_TXBUFLEN,
		    BUS_DMASYNC_PREWRITE);
		CSR_WRITE_4(sc, RTK_TXSTAT(sc->sc_tx_prod),
		    RTK_TXSTAT_THRESH(sc->sc_txthresh) | (uint32_t)len);
		sc->sc_tx_prod = (sc->sc_tx_prod + 1) % RTK_TX_LIST_CNT;
		sc->sc_tx_cnt++;
		sc->sc_tx_timer = 5;
	}
	if (sc->sc_tx_cnt == RTK_TX_LIST_CNT)
		ifp->if_flags |= IFF_OACTIVE;
}

static int
rtk_intr(void *arg)
{
	struct rtk_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	uint16_t status;
	int handled = 0, rounds;

	if ((ifp->if_flags & IFF_RUNNING) == 0)
		return 0;
	for (rounds = 0; rounds < 16; rounds++) {
		status = CSR_READ_2(sc, RTK_ISR);
		if (status == 0xffff || (status & RTK_INTRS) == 0)
			break;
		handled = 1;
		/* Acknowledge first, so events during the work re-assert. */
		CSR_WRITE_2(sc, RTK_ISR, status);
		if (status & (RTK_ISR_RX_OK | RTK_ISR_RX_ERR |
		    RTK_ISR_RX_OVERRUN | RTK_ISR_FIFO_OFLOW))
			rtk_rxeof(sc);
		if (status & (RTK_ISR_TX_OK | RTK_ISR_TX_ERR))
			rtk_txeof(sc);
		if (status & RTK_ISR_SYSTEM_ERR) {
			rtk_init(ifp);
			break;
		}
	}
	/* Frames left behind by rxeof's bound raise no new RX_OK. */
	if ((CSR_READ_1(sc, RTK_COMMAND) & RTK_CMD_EMPTY_RXBUF) == 0) {
		rtk_rxeof(sc);
		handled = 1;
	}
	if (handled) {
		sc->sc_ev_intr.ev_count++;
		if (!IFQ_IS_EMPTY(&ifp->if_snd))
			rtk_start(ifp);
	}
	return handled;
}

/* Once a second: the PHY's state, and the transmit watchdog. */
static void
rtk_tick(void *arg)
{
	struct rtk_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	int s;

	s = splnet();
	mii_tick(&sc->sc_mii);
	if (sc->sc_tx_cnt > 0) {
		rtk_txeof(sc);
		if (sc->sc_tx_cnt > 0 && --sc->sc_tx_timer <= 0) {
			aprint_error_dev(sc->sc_dev, "transmit timeout\n");
			sc->sc_ev_watchdog.ev_count++;
			if_statinc(ifp, if_oerrors);
			rtk_init(ifp);
		}
	}
	if (!IFQ_IS_EMPTY(&ifp->if_snd))
		rtk_start(ifp);
	splx(s);
	if (ifp->if_flags & IFF_RUNNING)
		callout_schedule(&sc->sc_tick_ch, hz);
}

/* Only promiscuous and all-multicast changes: reprogram the filter. */
static int
rtk_ifflags_cb(struct ethercom *ec)
{
	struct ifnet *ifp = &ec->ec_if;
	struct rtk_softc *sc = ifp->if_softc;
	int change = ifp->if_flags ^ ec->ec_if_flags;

	if ((change & ~(IFF_PROMISC | IFF_ALLMULTI | IFF_DEBUG)) != 0)
		return ENETRESET;
	rtk_setmulti(sc);
	return 0;
}

static int
rtk_ioctl(struct ifnet *ifp, u_long cmd, void *data)
{
	struct rtk_softc *sc = ifp->if_softc;
	int s, error;

	s = splnet();
	error = ether_ioctl(ifp, cmd, data);
	if (error == ENETRESET) {
		/* The multicast list changed: reprogram the filter. */
		if (ifp->if_flags & IFF_RUNNING)
			rtk_setmulti(sc);
		error = 0;
	}
	splx(s);
	return error;
}

/*
 * The internal PHY's registers sit in the MAC's register space (datasheet:
 * BMCR 0x62 .. ANER 0x6a) at PHY address 0.  It has no ID registers: they
 * read as 0, which the MII layer's generic PHY accepts.
 */
static int
rtk_phy_reg(int reg)
{
	switch (reg) {
	case MII_BMCR:
		return RTK_BMCR;
	case MII_BMSR:
		return RTK_BMSR;
	case MII_ANAR:
		return RTK_ANAR;
	case MII_ANLPAR:
		return RTK_LPAR;
	case MII_ANER:
		return RTK_ANER;
	default:
		return -1;
	}
}

static int
rtk_phy_readreg(device_t self, int phy, int reg, uint16_t *val)
{
	struct rtk_softc *sc = device_private(self);
	int r;

	if (phy != 0)
		return ENXIO;
	if (reg == RTK_MEDIASTAT) {
		/* For rlphy: the speed when the partner does not negotiate. */
		*val = CSR_READ_1(sc, RTK_MEDIASTAT);
		return 0;
	}
	if ((r = rtk_phy_reg(reg)) < 0) {
		*val = 0;
		return 0;
	}
	*val = CSR_READ_2(sc, r);
	return 0;
}

static int
rtk_phy_writereg(device_t self, int phy, int reg, uint16_t val)
{
	struct rtk_softc *sc = device_private(self);
	int r;

	if (phy != 0)
		return ENXIO;
	if ((r = rtk_phy_reg(reg)) < 0)
		return 0;
	CSR_WRITE_2(sc, r, val);
	return 0;
}

static void
rtk_phy_statchg(struct ifnet *ifp)
{
	/* The MAC follows the internal PHY's duplex by itself. */
}

#ifdef PKTKIT_SHARED_OBJECT
/*
 * Built as a loadable object (-DPKTKIT_SHARED_OBJECT, cc -shared): the
 * entry pktkit reads (pktkit/ported.h). The lab loads it as
 * -d /lib/pktkit/rtk.so,pci=BDF beside the built-in rtk.
 */
#include <pktkit/ported.h>

static const struct pktkit_ported_id rtk_ids[] = {
	{ PCI_VENDOR_REALTEK, PCI_PRODUCT_REALTEK_RT8139 },
	{ PCI_VENDOR_REALTEK, PCI_PRODUCT_REALTEK_RT8138 },
	{ 0, 0 }
};

PKTKIT_PORTED_DRIVER(rtk, "rtk",
    "Realtek RTL8139 (NetBSD-style C driver, loaded from a shared object)",
    PKTKIT_BUS_PCI, rtk_ids, NULL, 64);
#endif
