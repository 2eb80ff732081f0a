/*
 * ukphy.c -- the generic PHY driver: any IEEE 802.3 clause 22 PHY, driven
 * from its standard registers alone (BMCR, BMSR, ANAR, ANLPAR).
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <net/if.h>
#include <net/if_media.h>
#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>

static int	ukphy_match(device_t, cfdata_t, void *);
static void	ukphy_attach(device_t, device_t, void *);

CFATTACH_DECL_NEW(ukphy, sizeof(struct mii_softc),
    ukphy_match, ukphy_attach, mii_phy_detach, NULL);

const struct mii_phy_funcs ukphy_funcs = {
	.pf_service = mii_phy_service_std,
	.pf_status = ukphy_status,
	.pf_reset = mii_phy_reset,
};

/* Any PHY, at the lowest priority: a driver that knows it wins. */
static int
ukphy_match(device_t parent, cfdata_t cf, void *aux)
{
	(void)parent; (void)cf; (void)aux;
	return 1;
}

static void
ukphy_attach(device_t parent, device_t self, void *aux)
{
	struct mii_attach_args *ma = aux;

	(void)parent;
	aprint_normal_dev(self, "generic PHY, OUI 0x%06x model 0x%04x "
	    "rev %d\n", MII_OUI(ma->mii_id1, ma->mii_id2),
	    MII_MODEL(ma->mii_id2), MII_REV(ma->mii_id2));
	mii_phy_attach_std(self, ma, &ukphy_funcs);
}

/*
 * 28.2.4.1.3 and annex 28B.3: with autonegotiation complete, the media is
 * the best one both ends advertise (ANAR & ANLPAR), in priority order
 * 100BASE-TX full, 100BASE-T4, 100BASE-TX, 10BASE-T full, 10BASE-T.
 */
void
ukphy_status(struct mii_softc *sc)
{
	struct mii_data *mii = sc->mii_pdata;
	uint16_t bmsr = 0, bmcr = 0, anar = 0, anlpar = 0;
	int common;

	mii->mii_media_status = IFM_AVALID;
	mii->mii_media_active = IFM_ETHER;
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	if (bmsr & BMSR_LINK)
		mii->mii_media_status |= IFM_ACTIVE;
	(void)PHY_READ(sc, MII_BMCR, &bmcr);
	if (bmcr & BMCR_ISO) {
		mii->mii_media_active |= IFM_NONE;
		mii->mii_media_status = 0;
		return;
	}
	if (bmcr & BMCR_LOOP)
		mii->mii_media_active |= IFM_LOOP;

	if (bmcr & BMCR_AUTOEN) {
		if ((bmsr & BMSR_ACOMP) == 0) {
			mii->mii_media_active |= IFM_NONE;
			return;
		}
		(void)PHY_READ(sc, MII_ANAR, &anar);
		(void)PHY_READ(sc, MII_ANLPAR, &anlpar);
		common = anar & anlpar;
		if (common & ANLPAR_TX_FD)
			mii->mii_media_active |= IFM_100_TX | IFM_FDX;
		else if (common & ANLPAR_T4)
			mii->mii_media_active |= IFM_100_T4 | IFM_HDX;
		else if (common & ANLPAR_TX)
			mii->mii_media_active |= IFM_100_TX | IFM_HDX;
		else if (common & ANLPAR_10_FD)
			mii->mii_media_active |= IFM_10_T | IFM_FDX;
		else if (common & ANLPAR_10)
			mii->mii_media_active |= IFM_10_T | IFM_HDX;
		else
			mii->mii_media_active |= IFM_NONE;
		return;
	}
	/* Fixed media: what BMCR selects. */
	if (bmcr & BMCR_S100)
		mii->mii_media_active |= IFM_100_TX;
	else
		mii->mii_media_active |= IFM_10_T;
	mii->mii_media_active |= (bmcr & BMCR_FDX) ? IFM_FDX : IFM_HDX;
}
