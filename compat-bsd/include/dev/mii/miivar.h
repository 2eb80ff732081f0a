/*
 * dev/mii/miivar.h -- the MII layer (compat-bsd).
 *
 * mii_attach probes the PHY addresses through the driver's readreg, and
 * attaches a PHY driver to each PHY found: the generic ukphy, which drives
 * any clause 22 PHY from BMCR/BMSR/ANAR/ANLPAR.  mii_tick (from the
 * driver's one-second callout), mii_pollstat and mii_mediachg go to every
 * PHY; when the resolved media changes, the layer calls the driver's
 * mii_statchg and reports the link with if_link_state_change.
 *
 * Register access uses current NetBSD's errno-returning callbacks.
 */
#ifndef _DEV_MII_MIIVAR_H_
#define _DEV_MII_MIIVAR_H_

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/device.h>
#include <net/if.h>
#include <net/if_media.h>
#include <dev/mii/mii.h>

struct mii_softc;

typedef int	(*mii_readreg_t)(device_t, int, int, uint16_t *);
typedef int	(*mii_writereg_t)(device_t, int, int, uint16_t);
typedef void	(*mii_statchg_t)(struct ifnet *);

struct mii_data {
	struct ifmedia	mii_media;		/* first, as in NetBSD */
	struct ifnet	*mii_ifp;
	int		mii_flags;
	LIST_HEAD(, mii_softc) mii_phys;
	u_int		mii_instance;
	int		mii_media_status;	/* IFM_AVALID, IFM_ACTIVE */
	int		mii_media_active;	/* resolved media word */
	mii_readreg_t	mii_readreg;
	mii_writereg_t	mii_writereg;
	mii_statchg_t	mii_statchg;
	device_t	mii_dev;		/* the MAC's device */
};

/* What the layer asks of a PHY. */
#define MII_TICK	1	/* once a second */
#define MII_MEDIACHG	2	/* the user changed the media */
#define MII_POLLSTAT	3	/* read the status now */
#define MII_DOWN	4	/* the interface goes down */

struct mii_phy_funcs {
	int	(*pf_service)(struct mii_softc *, struct mii_data *, int);
	void	(*pf_status)(struct mii_softc *);
	void	(*pf_reset)(struct mii_softc *);
};

struct mii_softc {
	device_t	mii_dev;	/* the PHY's own device; its parent is the MAC */
	LIST_ENTRY(mii_softc) mii_list;
	uint32_t	mii_mpd_oui;
	uint32_t	mii_mpd_model;
	uint32_t	mii_mpd_rev;
	int		mii_phy;	/* PHY address */
	int		mii_offset;	/* index among the PHYs found */
	u_int		mii_inst;	/* media instance */
	const struct mii_phy_funcs *mii_funcs;
	struct mii_data	*mii_pdata;
	int		mii_flags;	/* MIIF_* */
	int		mii_capabilities;	/* BMSR */
	int		mii_extcapabilities;	/* EXTSR */
	int		mii_ticks;
	int		mii_anegticks;
	int		mii_media_active;
	int		mii_media_status;
};

/* Media a PHY can report, for the tables of PHY drivers. */
#define MII_MEDIA_NONE		0
#define MII_MEDIA_10_T		1
#define MII_MEDIA_10_T_FDX	2
#define MII_MEDIA_100_T4	3
#define MII_MEDIA_100_TX	4
#define MII_MEDIA_100_TX_FDX	5
#define MII_MEDIA_1000_X	6
#define MII_MEDIA_1000_X_FDX	7
#define MII_MEDIA_1000_T	8
#define MII_MEDIA_1000_T_FDX	9
#define MII_NMEDIA		10

/* A PHY driver's table of the PHYs it drives. */
struct mii_phydesc {
	uint32_t	mpd_oui;
	uint32_t	mpd_model;
	const char	*mpd_name;
};
#define MII_PHY_DESC(a, b) \
	{ MII_OUI_ ## a, MII_MODEL_ ## a ## _ ## b, MII_STR_ ## a ## _ ## b }
#define MII_PHY_END	{ 0, 0, NULL }

/*
 * The description of a PHY by OUI and model, for attach messages: NULL
 * here, as in NetBSD when the miiverbose table is not loaded.
 */
static inline const char *
mii_get_descr(char *buf, size_t len, uint32_t oui, uint32_t model)
{
	(void)buf; (void)len; (void)oui; (void)model;
	return NULL;
}

struct mii_attach_args {
	struct mii_data	*mii_data;
	int		mii_phyno;
	uint32_t	mii_id1;
	uint32_t	mii_id2;
	int		mii_capmask;
	int		mii_flags;
};

#define MIIF_INITDONE	0x00000001
#define MIIF_NOISOLATE	0x00000002
#define MIIF_NOLOOP	0x00000004
#define MIIF_DOINGAUTO	0x00000008
#define MIIF_AUTOTSLEEP	0x00000010
#define MIIF_HAVEFIBER	0x00000020
#define MIIF_HAVE_GTCR	0x00000040
#define MIIF_IS_1000X	0x00000080
#define MIIF_DOPAUSE	0x00000100
#define MIIF_IS_HPNA	0x00000200
#define MIIF_FORCEANEG	0x00000400
#define MIIF_NOMANPAUSE	0x00100000
#define MIIF_INHERIT_MASK (MIIF_NOISOLATE | MIIF_NOLOOP | MIIF_AUTOTSLEEP | \
			   MIIF_DOPAUSE | MIIF_FORCEANEG)

#define MII_ANEGTICKS		5
#define MII_ANEGTICKS_GIGE	17

#define MII_PHY_ANY	-1
#define MII_OFFSET_ANY	-1

#define PHY_READ(p, r, v) \
	(*(p)->mii_pdata->mii_readreg)(device_parent((p)->mii_dev), \
	    (p)->mii_phy, (r), (v))
#define PHY_WRITE(p, r, v) \
	(*(p)->mii_pdata->mii_writereg)(device_parent((p)->mii_dev), \
	    (p)->mii_phy, (r), (v))
#define PHY_SERVICE(p, d, o)	(*(p)->mii_funcs->pf_service)((p), (d), (o))
#define PHY_STATUS(p)		(*(p)->mii_funcs->pf_status)(p)
#define PHY_RESET(p)		(*(p)->mii_funcs->pf_reset)(p)

void	mii_attach(device_t, struct mii_data *, int, int, int, int);
void	mii_detach(struct mii_data *, int, int);
int	mii_mediachg(struct mii_data *);
void	mii_tick(struct mii_data *);
void	mii_pollstat(struct mii_data *);
void	mii_down(struct mii_data *);
int	mii_ifmedia_change(struct mii_data *);

/* PHY driver helpers (mii_physubr.c). */
void	mii_phy_reset(struct mii_softc *);
void	mii_phy_add_media(struct mii_softc *);
void	mii_phy_setmedia(struct mii_softc *);
int	mii_phy_auto(struct mii_softc *);
int	mii_phy_tick(struct mii_softc *);
void	mii_phy_status(struct mii_softc *);
void	mii_phy_update(struct mii_softc *, int);
void	mii_phy_down(struct mii_softc *);
void	ukphy_status(struct mii_softc *);

/* The entry of a PHY driver's table that matches a found PHY, or NULL. */
static inline const struct mii_phydesc *
mii_phy_match(const struct mii_attach_args *ma, const struct mii_phydesc *mpd)
{
	for (; mpd->mpd_name != NULL; mpd++)
		if (MII_OUI(ma->mii_id1, ma->mii_id2) == mpd->mpd_oui &&
		    MII_MODEL(ma->mii_id2) == mpd->mpd_model)
			return mpd;
	return NULL;
}
extern const struct mii_phy_funcs ukphy_funcs;
int	mii_phy_detach(device_t, int);
int	mii_phy_service_std(struct mii_softc *, struct mii_data *, int);
void	mii_phy_attach_std(device_t, struct mii_attach_args *,
	    const struct mii_phy_funcs *);

/*
 * PHY drivers are autoconf children of the MAC, as in NetBSD: mii_attach
 * offers each PHY it finds (a struct mii_attach_args) to the match
 * function of every PHY driver in mii_phy_drivers and attaches the one
 * that answers highest; the generic ukphy answers 1 to any PHY.  A PHY
 * driver is written as in NetBSD (CFATTACH_DECL_NEW with a struct
 * mii_softc first in its softc) and listed in csrc/mii.c.
 */
extern const struct cfattach * const mii_phy_drivers[];

#endif /* _DEV_MII_MIIVAR_H_ */
