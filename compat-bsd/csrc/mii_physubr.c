/*
 * mii_physubr.c -- what every PHY driver shares: media list from the
 * capabilities, autonegotiation, manual media, status changes.
 * Register meanings: IEEE 802.3 22.2.4 and 28.2.4.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <net/if.h>
#include <net/if_ether.h>
#include <net/if_media.h>
#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>

void	if_link_state_change(struct ifnet *, int);

/* Each media the BMSR can offer, with its BMCR and ANAR bits. */
static const struct {
	int	bmsr;
	int	subtype;
	int	options;
	int	bmcr;
	int	anar;
} mii_media_table[] = {
	{ BMSR_10THDX, IFM_10_T, 0, BMCR_S10, ANAR_10 },
	{ BMSR_10TFDX, IFM_10_T, IFM_FDX, BMCR_S10 | BMCR_FDX, ANAR_10_FD },
	{ BMSR_100TXHDX, IFM_100_TX, 0, BMCR_S100, ANAR_TX },
	{ BMSR_100TXFDX, IFM_100_TX, IFM_FDX, BMCR_S100 | BMCR_FDX,
	    ANAR_TX_FD },
	{ BMSR_100T4, IFM_100_T4, 0, BMCR_S100, ANAR_T4 },
};

void
mii_phy_reset(struct mii_softc *sc)
{
	uint16_t bmcr = 0;
	int i;

	(void)PHY_WRITE(sc, MII_BMCR, BMCR_RESET | BMCR_AUTOEN);
	/* 22.2.4.1.1: reset completes within 0.5 s. */
	for (i = 0; i < 500; i++) {
		if (PHY_READ(sc, MII_BMCR, &bmcr) != 0 ||
		    (bmcr & BMCR_RESET) == 0)
			break;
		delay(1000);
	}
}

void
mii_phy_add_media(struct mii_softc *sc)
{
	struct mii_data *mii = sc->mii_pdata;
	size_t i;

	if ((sc->mii_capabilities & BMSR_MEDIAMASK) == 0)
		return;
	ifmedia_add(&mii->mii_media,
	    IFM_MAKEWORD(IFM_ETHER, IFM_NONE, 0, sc->mii_inst), MII_BMCR, NULL);
	for (i = 0; i < __arraycount(mii_media_table); i++) {
		if (sc->mii_capabilities & mii_media_table[i].bmsr)
			ifmedia_add(&mii->mii_media,
			    IFM_MAKEWORD(IFM_ETHER, mii_media_table[i].subtype,
			    mii_media_table[i].options, sc->mii_inst),
			    (int)i, NULL);
	}
	if (sc->mii_capabilities & BMSR_ANEG)
		ifmedia_add(&mii->mii_media,
		    IFM_MAKEWORD(IFM_ETHER, IFM_AUTO, 0, sc->mii_inst),
		    -1, NULL);
}

/* 28.2.4.1.3: advertise what the PHY can do, then restart negotiation. */
int
mii_phy_auto(struct mii_softc *sc)
{
	int anar;

	anar = BMSR_MEDIA_TO_ANAR(sc->mii_capabilities) | ANAR_CSMA;
	if (sc->mii_flags & MIIF_DOPAUSE)
		anar |= ANAR_PAUSE_SYM | ANAR_PAUSE_ASYM;
	(void)PHY_WRITE(sc, MII_ANAR, (uint16_t)anar);
	(void)PHY_WRITE(sc, MII_BMCR, BMCR_AUTOEN | BMCR_STARTNEG);
	sc->mii_flags |= MIIF_DOINGAUTO;
	sc->mii_ticks = 0;
	return 0;
}

/* Programs the user's media choice: autonegotiation or a fixed media. */
void
mii_phy_setmedia(struct mii_softc *sc)
{
	struct mii_data *mii = sc->mii_pdata;
	struct ifmedia_entry *ife = mii->mii_media.ifm_cur;
	int bmcr;

	if (ife == NULL)
		return;
	if (IFM_SUBTYPE(ife->ifm_media) == IFM_AUTO) {
		(void)mii_phy_auto(sc);
		return;
	}
	if ((int)ife->ifm_data < 0 ||
	    ife->ifm_data >= __arraycount(mii_media_table)) {
		/* IFM_NONE: isolate the PHY. */
		(void)PHY_WRITE(sc, MII_BMCR, BMCR_ISO | BMCR_PDOWN);
		return;
	}
	bmcr = mii_media_table[ife->ifm_data].bmcr;
	if (ife->ifm_media & IFM_LOOP)
		bmcr |= BMCR_LOOP;
	(void)PHY_WRITE(sc, MII_ANAR, (uint16_t)ANAR_CSMA);
	(void)PHY_WRITE(sc, MII_BMCR, (uint16_t)bmcr);
	sc->mii_flags &= ~MIIF_DOINGAUTO;
}

/*
 * Once a second: while autonegotiating without link for mii_anegticks
 * seconds, restart negotiation (the partner may have come late).
 * Returns EJUSTRETURN when the status must not be updated this tick.
 */
int
mii_phy_tick(struct mii_softc *sc)
{
	struct mii_data *mii = sc->mii_pdata;
	struct ifmedia_entry *ife = mii->mii_media.ifm_cur;
	uint16_t bmsr = 0;

	if (ife == NULL || IFM_SUBTYPE(ife->ifm_media) != IFM_AUTO)
		return 0;
	/* 22.2.4.2.13: link status latches low; read twice for now. */
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	if (bmsr & BMSR_LINK) {
		sc->mii_ticks = 0;
		return 0;
	}
	if (++sc->mii_ticks <= sc->mii_anegticks)
		return 0;
	sc->mii_ticks = 0;
	(void)mii_phy_auto(sc);
	return 0;
}

void
mii_phy_status(struct mii_softc *sc)
{
	PHY_STATUS(sc);
}

void
mii_phy_down(struct mii_softc *sc)
{
	sc->mii_flags &= ~MIIF_DOINGAUTO;
}

/*
 * After a service call: publish the PHY's media in the mii_data, and when
 * the resolved media or the link changed, tell the MAC (mii_statchg) and
 * the interface (link state, baud rate).
 */
void
mii_phy_update(struct mii_softc *sc, int cmd)
{
	struct mii_data *mii = sc->mii_pdata;
	struct ifnet *ifp = mii->mii_ifp;
	int old_active = sc->mii_media_active;
	int old_status = sc->mii_media_status;
	int link;

	sc->mii_media_active = mii->mii_media_active;
	sc->mii_media_status = mii->mii_media_status;
	if (cmd != MII_MEDIACHG && old_active == sc->mii_media_active &&
	    old_status == sc->mii_media_status)
		return;
	if (mii->mii_statchg != NULL && ifp != NULL)
		(*mii->mii_statchg)(ifp);
	if (ifp == NULL || (mii->mii_media_status & IFM_AVALID) == 0)
		return;
	link = (mii->mii_media_status & IFM_ACTIVE) ? LINK_STATE_UP :
	    LINK_STATE_DOWN;
	if (link == LINK_STATE_UP)
		ifp->if_baudrate = ifmedia_baudrate(mii->mii_media_active);
	if_link_state_change(ifp, link);
}

/*
 * The part of a PHY driver's attach every driver shares: take the PHY
 * described by ma, read its capabilities (limited to the MAC's capmask
 * bits of the BMSR media), reset it and list its media.  A PHY driver's
 * attach sets its own quirks in between if it has any.
 */
void
mii_phy_attach_std(device_t self, struct mii_attach_args *ma,
    const struct mii_phy_funcs *funcs)
{
	struct mii_softc *sc = device_private(self);
	struct mii_data *mii = ma->mii_data;
	uint16_t bmsr = 0, extsr = 0;

	sc->mii_dev = self;
	sc->mii_inst = mii->mii_instance;
	sc->mii_phy = ma->mii_phyno;
	sc->mii_funcs = funcs;
	sc->mii_pdata = mii;
	sc->mii_flags = ma->mii_flags;
	sc->mii_anegticks = MII_ANEGTICKS;

	PHY_RESET(sc);
	if (PHY_READ(sc, MII_BMSR, &bmsr) != 0)
		bmsr = 0;
	sc->mii_capabilities = bmsr;
	if (bmsr & BMSR_EXTSTAT) {
		(void)PHY_READ(sc, MII_EXTSR, &extsr);
		sc->mii_extcapabilities = extsr;
		if (extsr & EXTSR_MEDIAMASK)
			sc->mii_anegticks = MII_ANEGTICKS_GIGE;
	}
	mii_phy_add_media(sc);
}

/* A PHY driver's detach: the MII layer frees the softc itself. */
int
mii_phy_detach(device_t self, int flags)
{
	(void)self; (void)flags;
	return 0;
}

/*
 * The service routine of a PHY whose only quirk, if any, is how it reports
 * status (pf_status): media changes, the autonegotiation tick, going down,
 * then the status and the change report.
 */
int
mii_phy_service_std(struct mii_softc *sc, struct mii_data *mii, int cmd)
{
	struct ifnet *ifp = mii->mii_ifp;

	switch (cmd) {
	case MII_POLLSTAT:
		break;
	case MII_MEDIACHG:
		if (ifp != NULL && (ifp->if_flags & IFF_UP) == 0)
			break;
		mii_phy_setmedia(sc);
		break;
	case MII_TICK:
		if (mii_phy_tick(sc) == EJUSTRETURN)
			return 0;
		break;
	case MII_DOWN:
		mii_phy_down(sc);
		return 0;
	}
	PHY_STATUS(sc);
	mii_phy_update(sc, cmd);
	return 0;
}
