/*
 * rlphy.c -- the PHY built into the RealTek 8139 (rtk).
 *
 * The 8139 maps its PHY's BMCR, BMSR, ANAR, ANLPAR and ANER onto MAC
 * registers and has no PHY id registers, so the PHY is recognised by its
 * parent: an rtk with an id of zero.  When autonegotiation completes by
 * parallel detection (a partner that does not negotiate: ACOMP set,
 * ANLPAR empty), the speed comes from the MAC's media status register, which rtk's readreg hands through at
 * RLPHY_MEDIASTAT (a number above the 32 MII registers).
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/device.h>
#include <net/if.h>
#include <net/if_media.h>
#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>

#define RLPHY_MEDIASTAT		0x58	/* the 8139's MSR, through readreg */
#define RLPHY_MEDIASTAT_SPEED10	0x08

static int	rlphymatch(device_t, cfdata_t, void *);
static void	rlphyattach(device_t, device_t, void *);
static void	rlphy_status(struct mii_softc *);

CFATTACH_DECL_NEW(rlphy, sizeof(struct mii_softc),
    rlphymatch, rlphyattach, mii_phy_detach, NULL);

static const struct mii_phy_funcs rlphy_funcs = {
	.pf_service = mii_phy_service_std,
	.pf_status = rlphy_status,
	.pf_reset = mii_phy_reset,
};

static int
rlphymatch(device_t parent, cfdata_t cf, void *aux)
{
	struct mii_attach_args *ma = aux;

	if (ma->mii_id1 != 0 || ma->mii_id2 != 0)
		return 0;
	return device_is_a(parent, "rtk") ? 10 : 0;
}

static void
rlphyattach(device_t parent, device_t self, void *aux)
{
	aprint_normal_dev(self, "RTL8139 internal 10/100 media interface\n");
	mii_phy_attach_std(self, aux, &rlphy_funcs);
}

static void
rlphy_status(struct mii_softc *sc)
{
	struct mii_data *mii = sc->mii_pdata;
	uint16_t bmsr = 0, msr = 0;

	ukphy_status(sc);
	if ((mii->mii_media_status & IFM_ACTIVE) == 0 ||
	    IFM_SUBTYPE(mii->mii_media_active) != IFM_NONE)
		return;
	(void)PHY_READ(sc, MII_BMSR, &bmsr);
	if ((bmsr & BMSR_ACOMP) == 0)
		return;
	/* Complete, nothing in common (parallel detection): ask the MAC. */
	if (PHY_READ(sc, RLPHY_MEDIASTAT, &msr) != 0)
		return;
	mii->mii_media_active = IFM_ETHER | IFM_HDX |
	    ((msr & RLPHY_MEDIASTAT_SPEED10) ? IFM_10_T : IFM_100_TX);
}
