/*
 * mii.c -- the MII layer: finding PHYs, attaching a PHY driver to each,
 * and passing the MAC's requests to them.
 *
 * As in NetBSD, each PHY found is offered to the PHY drivers (their
 * cfattach match functions, with a struct mii_attach_args) and the one
 * that answers highest attaches it as a child device of the MAC; the
 * generic ukphy takes any PHY no other driver claims.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kmem.h>
#include <net/if.h>
#include <net/if_ether.h>
#include <net/if_media.h>
#include <dev/mii/mii.h>
#include <dev/mii/miivar.h>

extern const struct cfattach ukphy_ca, inphy_ca, rlphy_ca;

/* The PHY drivers mii_attach offers PHYs to (NULL-terminated). */
const struct cfattach * const mii_phy_drivers[] = {
	&inphy_ca,
	&rlphy_ca,
	&ukphy_ca,
	NULL,
};

/*
 * Units in use per PHY driver, a bit each, for the children's names
 * (inphy0, ukphy1, ...): the lowest free unit is taken at attach and given
 * back at detach, as autoconf does.
 */
static uint64_t mii_phy_units[__arraycount(mii_phy_drivers)];

static int
mii_phy_unit_alloc(int which)
{
	uint64_t cur, want;
	int unit;

	cur = __atomic_load_n(&mii_phy_units[which], __ATOMIC_RELAXED);
	do {
		if (cur == ~(uint64_t)0)
			return -1;
		unit = __builtin_ctzll(~cur);
		want = cur | ((uint64_t)1 << unit);
	} while (!__atomic_compare_exchange_n(&mii_phy_units[which], &cur,
	    want, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return unit;
}

static void
mii_phy_unit_free(const struct cfattach *ca, int unit)
{
	int i;

	for (i = 0; mii_phy_drivers[i] != NULL; i++)
		if (mii_phy_drivers[i] == ca && unit >= 0 && unit < 64)
			__atomic_fetch_and(&mii_phy_units[i],
			    ~((uint64_t)1 << unit), __ATOMIC_RELAXED);
}

static void
mii_attach_one(device_t parent, struct mii_data *mii, int phy, int offset,
    int capmask, int flags)
{
	struct mii_attach_args ma;
	const struct cfattach *ca = NULL;
	struct cfdata cf;
	struct mii_softc *sc;
	device_t child;
	uint16_t id1 = 0, id2 = 0;
	int i, best = 0, pri, which = 0, unit;

	(void)(*mii->mii_readreg)(parent, phy, MII_PHYIDR1, &id1);
	(void)(*mii->mii_readreg)(parent, phy, MII_PHYIDR2, &id2);
	memset(&ma, 0, sizeof(ma));
	ma.mii_data = mii;
	ma.mii_phyno = phy;
	ma.mii_id1 = id1;
	ma.mii_id2 = id2;
	ma.mii_capmask = capmask;
	ma.mii_flags = flags & MIIF_INHERIT_MASK;

	memset(&cf, 0, sizeof(cf));
	for (i = 0; mii_phy_drivers[i] != NULL; i++) {
		cf.cf_name = mii_phy_drivers[i]->ca_name;
		pri = (*mii_phy_drivers[i]->ca_match)(parent, &cf, &ma);
		if (pri > best) {
			best = pri;
			ca = mii_phy_drivers[i];
			which = i;
		}
	}
	if (ca == NULL)
		return;
	if ((unit = mii_phy_unit_alloc(which)) < 0) {
		aprint_error_dev(parent, "no unit left for PHY %d\n", phy);
		return;
	}

	child = kmem_zalloc(sizeof(*child), KM_NOSLEEP);
	sc = kmem_zalloc(ca->ca_devsize, KM_NOSLEEP);
	if (child == NULL || sc == NULL) {
		aprint_error_dev(parent, "no memory for PHY %d\n", phy);
		if (child != NULL)
			kmem_free(child, sizeof(*child));
		if (sc != NULL)
			kmem_free(sc, ca->ca_devsize);
		mii_phy_unit_free(ca, unit);
		return;
	}
	snprintf(child->dv_xname, sizeof(child->dv_xname), "%s%d",
	    ca->ca_name, unit);
	child->dv_unit = unit;
	child->dv_flags = DVF_ACTIVE;
	child->dv_private = sc;
	child->dv_parent = parent;
	child->dv_cfattach = ca;
	child->dv_cfdata.cf_name = ca->ca_name;
	child->dv_cfdata.cf_atname = ca->ca_name;
	child->dv_cfdata.cf_unit = unit;
	child->dv_pktkit = parent->dv_pktkit;

	aprint_normal_dev(child, "at %s phy %d\n", device_xname(parent), phy);
	(*ca->ca_attach)(parent, child, &ma);
	if (sc->mii_funcs == NULL) {
		/* The driver gave up on it. */
		kmem_free(sc, ca->ca_devsize);
		kmem_free(child, sizeof(*child));
		mii_phy_unit_free(ca, unit);
		return;
	}
	sc->mii_offset = offset;
	sc->mii_mpd_oui = MII_OUI(id1, id2);
	sc->mii_mpd_model = MII_MODEL(id2);
	sc->mii_mpd_rev = MII_REV(id2);
	LIST_INSERT_HEAD(&mii->mii_phys, sc, mii_list);
	mii->mii_instance++;
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
			mii_attach_one(parent, mii, phy, offset, capmask,
			    flags);
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
	device_t dev;

	for (sc = LIST_FIRST(&mii->mii_phys); sc != NULL; sc = next) {
		next = LIST_NEXT(sc, mii_list);
		if (phyloc != MII_PHY_ANY && phyloc != sc->mii_phy)
			continue;
		if (offloc != MII_OFFSET_ANY && offloc != sc->mii_offset)
			continue;
		LIST_REMOVE(sc, mii_list);
		ifmedia_delete_instance(&mii->mii_media, sc->mii_inst);
		dev = sc->mii_dev;
		(void)config_detach(dev, DETACH_FORCE);
		mii_phy_unit_free(dev->dv_cfattach, dev->dv_unit);
		kmem_free(sc, dev->dv_cfattach->ca_devsize);
		kmem_free(dev, sizeof(*dev));
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
