/*
 * inphy.c -- the Intel i82555 PHY, found beside i8255x MACs (fxp).
 *
 * The generic driver would do for the standard registers, but the i82555
 * reports the speed and duplex it settled on in its own status and control
 * register (MII_INPHY_SCR), whether autonegotiation or parallel detection
 * got it there: with a link and no autonegotiation complete (a partner
 * that does not negotiate) the standard registers say nothing, SCR does.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/device.h>
#include <net/if.h>
#include <net/if_media.h>
#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>
#include <dev/mii/miidevs.h>
#include <dev/mii/inphyreg.h>

static int	inphymatch(device_t, cfdata_t, void *);
static void	inphyattach(device_t, device_t, void *);
static void	inphy_status(struct mii_softc *);

CFATTACH_DECL_NEW(inphy, sizeof(struct mii_softc),
    inphymatch, inphyattach, mii_phy_detach, NULL);

static const struct mii_phy_funcs inphy_funcs = {
	.pf_service = mii_phy_service_std,
	.pf_status = inphy_status,
	.pf_reset = mii_phy_reset,
};

static const struct mii_phydesc inphys[] = {
	MII_PHY_DESC(INTEL, I82555),
	MII_PHY_END,
};

static int
inphymatch(device_t parent, cfdata_t cf, void *aux)
{
	struct mii_attach_args *ma = aux;

	return mii_phy_match(ma, inphys) != NULL ? 10 : 0;
}

static void
inphyattach(device_t parent, device_t self, void *aux)
{
	struct mii_attach_args *ma = aux;
	const struct mii_phydesc *mpd = mii_phy_match(ma, inphys);

	aprint_normal_dev(self, "%s, rev. %d\n", mpd->mpd_name,
	    MII_REV(ma->mii_id2));
	mii_phy_attach_std(self, ma, &inphy_funcs);
}

static void
inphy_status(struct mii_softc *sc)
{
	struct mii_data *mii = sc->mii_pdata;
	uint16_t bmsr = 0, bmcr = 0, scr = 0;

	/* Loopback, isolation and fixed media read as for any PHY. */
	ukphy_status(sc);
	(void)PHY_READ(sc, MII_BMCR, &bmcr);
	if ((bmcr & (BMCR_AUTOEN | BMCR_ISO)) != BMCR_AUTOEN)
		return;
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	if ((bmsr & BMSR_LINK) == 0)
		return;
	/* Linked: SCR holds what was resolved, negotiated or detected. */
	(void)PHY_READ(sc, MII_INPHY_SCR, &scr);
	mii->mii_media_active = IFM_ETHER | (mii->mii_media_active & IFM_LOOP);
	if (scr & SCR_S100)
		mii->mii_media_active |= (scr & SCR_T4) ? IFM_100_T4 : IFM_100_TX;
	else
		mii->mii_media_active |= IFM_10_T;
	mii->mii_media_active |= (scr & SCR_FDX) ? IFM_FDX : IFM_HDX;
}
