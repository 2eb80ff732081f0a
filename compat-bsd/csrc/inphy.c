/*
 * inphy.c -- the Intel i82555 PHY, found beside i8255x MACs (fxp).
 *
 * When autonegotiation completes with something both ends advertise, the
 * standard registers tell the media, as for any PHY.  When it completes by
 * parallel detection (a partner that does not negotiate: ACOMP set, no
 * common ability in ANAR & ANLPAR) they say nothing, but the i82555 keeps
 * the speed and duplex it settled on in its own status and control
 * register (MII_INPHY_SCR), which is read then.  While negotiation is
 * still running the media is none, as NetBSD reports it.
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
	uint16_t bmcr = 0, bmsr = 0, scr = 0;

	ukphy_status(sc);
	if ((mii->mii_media_status & IFM_ACTIVE) == 0 ||
	    IFM_SUBTYPE(mii->mii_media_active) != IFM_NONE)
		return;
	(void)PHY_READ(sc, MII_BMCR, &bmcr);
	if ((bmcr & (BMCR_AUTOEN | BMCR_ISO)) != BMCR_AUTOEN)
		return;
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	if ((bmsr & BMSR_ACOMP) == 0)
		return;
	/* Complete, nothing in common: parallel detection, see SCR. */
	if (PHY_READ(sc, MII_INPHY_SCR, &scr) != 0)
		return;
	mii->mii_media_active = IFM_ETHER | (mii->mii_media_active & IFM_LOOP);
	if (scr & SCR_S100)
		mii->mii_media_active |= (scr & SCR_T4) ? IFM_100_T4 : IFM_100_TX;
	else
		mii->mii_media_active |= IFM_10_T;
	mii->mii_media_active |= (scr & SCR_FDX) ? IFM_FDX : IFM_HDX;
}
