/*
 * mii.c -- the MII layer: finding PHYs and passing the MAC's requests to
 * them.
 *
 * Every PHY found gets the generic PHY driver (ukphy.c).  PHYs are not
 * autoconf children here: a userspace stack has no device tree to show
 * them in, and the generic driver serves every clause 22 PHY QEMU models.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kmem.h>
#include <net/if.h>
#include <net/if_ether.h>
#include <net/if_media.h>
#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>

static void
mii_attach_one(device_t parent, struct mii_data *mii, int phy, int offset,
    int flags)
{
	struct mii_softc *sc;
	uint16_t bmsr, id1 = 0, id2 = 0;

	sc = kmem_zalloc(sizeof(*sc), KM_NOSLEEP);
	if (sc == NULL) {
		aprint_error_dev(parent, "no memory for PHY %d\n", phy);
		return;
	}
	(void)(*mii->mii_readreg)(parent, phy, MII_PHYIDR1, &id1);
	(void)(*mii->mii_readreg)(parent, phy, MII_PHYIDR2, &id2);
	sc->mii_dev = parent;
	sc->mii_pdata = mii;
	sc->mii_phy = phy;
	sc->mii_offset = offset;
	sc->mii_inst = mii->mii_instance++;
	sc->mii_flags = flags & MIIF_INHERIT_MASK;
	sc->mii_mpd_oui = MII_OUI(id1, id2);
	sc->mii_mpd_model = MII_MODEL(id2);
	sc->mii_mpd_rev = MII_REV(id2);
	sc->mii_funcs = &ukphy_funcs;
	sc->mii_anegticks = MII_ANEGTICKS;
	snprintf(sc->mii_name, sizeof(sc->mii_name), "%s phy %d",
	    device_xname(parent), phy);

	PHY_RESET(sc);
	if (PHY_READ(sc, MII_BMSR, &bmsr) != 0)
		bmsr = 0;
	sc->mii_capabilities = bmsr;
	if (bmsr & BMSR_EXTSTAT) {
		uint16_t extsr = 0;

		(void)PHY_READ(sc, MII_EXTSR, &extsr);
		sc->mii_extcapabilities = extsr;
		if (extsr & EXTSR_MEDIAMASK)
			sc->mii_anegticks = MII_ANEGTICKS_GIGE;
	}
	aprint_normal_dev(parent, "PHY %d: OUI 0x%06x model 0x%04x rev %d "
	    "(generic PHY)\n", phy, sc->mii_mpd_oui, sc->mii_mpd_model,
	    sc->mii_mpd_rev);
	mii_phy_add_media(sc);
	LIST_INSERT_HEAD(&mii->mii_phys, sc, mii_list);
	sc->mii_flags |= MIIF_INITDONE;
}

void
mii_attach(device_t parent, struct mii_data *mii, int capmask, int phyloc,
    int offloc, int flags)
{
	struct ethercom *ec;
	uint16_t bmsr;
	int phy, first, last, offset = 0;

	if (phyloc != MII_PHY_ANY && offloc != MII_OFFSET_ANY)
		panic("mii_attach: phyloc and offloc specified");
	if (mii->mii_phys.lh_first == NULL && mii->mii_instance == 0)
		LIST_INIT(&mii->mii_phys);
	mii->mii_dev = parent;
	if (phyloc == MII_PHY_ANY) {
		first = 0;
		last = MII_NPHY - 1;
	} else
		first = last = phyloc;

	for (phy = first; phy <= last; phy++) {
		if ((capmask & (1 << phy)) == 0)
			continue;
		/* 22.2.4.2: an absent PHY reads all ones (or zeroes). */
		bmsr = 0;
		if ((*mii->mii_readreg)(parent, phy, MII_BMSR, &bmsr) != 0 ||
		    bmsr == 0 || bmsr == 0xffff ||
		    (bmsr & (BMSR_MEDIAMASK | BMSR_EXTSTAT)) == 0) {
			offset++;
			continue;
		}
		if (offloc == MII_OFFSET_ANY || offloc == offset)
			mii_attach_one(parent, mii, phy, offset, flags);
		offset++;
	}

	/* The Ethernet layer answers SIOC[GS]IFMEDIA from this media list. */
	if (mii->mii_ifp != NULL && mii->mii_ifp->if_type == IFT_ETHER) {
		ec = (struct ethercom *)mii->mii_ifp;
		ec->ec_mii = mii;
		ec->ec_ifmedia = &mii->mii_media;
	}
}

void
mii_detach(struct mii_data *mii, int phyloc, int offloc)
{
	struct mii_softc *sc, *next;

	for (sc = LIST_FIRST(&mii->mii_phys); sc != NULL; sc = next) {
		next = LIST_NEXT(sc, mii_list);
		if (phyloc != MII_PHY_ANY && phyloc != sc->mii_phy)
			continue;
		if (offloc != MII_OFFSET_ANY && offloc != sc->mii_offset)
			continue;
		LIST_REMOVE(sc, mii_list);
		ifmedia_delete_instance(&mii->mii_media, sc->mii_inst);
		kmem_free(sc, sizeof(*sc));
	}
}

static void
mii_service_all(struct mii_data *mii, int cmd)
{
	struct mii_softc *sc;

	LIST_FOREACH(sc, &mii->mii_phys, mii_list)
		(void)PHY_SERVICE(sc, mii, cmd);
}

int
mii_mediachg(struct mii_data *mii)
{
	struct mii_softc *sc;
	int error;

	mii->mii_media_status = 0;
	mii->mii_media_active = IFM_NONE;
	LIST_FOREACH(sc, &mii->mii_phys, mii_list) {
		if ((error = PHY_SERVICE(sc, mii, MII_MEDIACHG)) != 0)
			return error;
	}
	return 0;
}

int
mii_ifmedia_change(struct mii_data *mii)
{
	return ifmedia_change(&mii->mii_media, mii->mii_ifp);
}

void
mii_tick(struct mii_data *mii)
{
	mii_service_all(mii, MII_TICK);
}

void
mii_pollstat(struct mii_data *mii)
{
	mii->mii_media_status = 0;
	mii->mii_media_active = IFM_NONE;
	mii_service_all(mii, MII_POLLSTAT);
}

void
mii_down(struct mii_data *mii)
{
	mii_service_all(mii, MII_DOWN);
}

/* The ifmedia callbacks of an Ethernet driver with an MII. */
int
ether_mediachange(struct ifnet *ifp)
{
	struct ethercom *ec = (struct ethercom *)ifp;

	if (ec->ec_mii == NULL)
		return EOPNOTSUPP;
	if ((ifp->if_flags & IFF_UP) == 0)
		return 0;
	return mii_mediachg(ec->ec_mii);
}

void
ether_mediastatus(struct ifnet *ifp, struct ifmediareq *ifmr)
{
	struct ethercom *ec = (struct ethercom *)ifp;
	struct mii_data *mii = ec->ec_mii;

	if (mii == NULL) {
		ifmr->ifm_active = IFM_ETHER | IFM_NONE;
		ifmr->ifm_status = 0;
		return;
	}
	mii_pollstat(mii);
	ifmr->ifm_active = mii->mii_media_active;
	ifmr->ifm_status = mii->mii_media_status;
}
