/*
 * if_ethersubr.c -- the Ethernet pieces of the interface layer for ported
 * drivers: attach, the multicast list and ether_ioctl, plus the helpers
 * through which the adapter turns the stack's control requests into the
 * driver's own ioctls.
 *
 * Locking: the multicast list is changed under ec_lock (ETHER_LOCK), as
 * drivers walk it under the same lock in current NetBSD; everything else
 * runs under the driver's lock (serialized drivers) or its IFNET lock
 * equivalent, which for an MP-safe driver is the adapter's control lock.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kmem.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <net/if.h>
#include <net/if_ether.h>
#include <net/if_media.h>

#include "pktkit_glue.h"

static const uint8_t ether_allmulti_lo[ETHER_ADDR_LEN] =
    { 0x01, 0x00, 0x00, 0x00, 0x00, 0x00 };
static const uint8_t ether_allmulti_hi[ETHER_ADDR_LEN] =
    { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void
ether_ifattach(struct ifnet *ifp, const uint8_t *lla)
{
	struct ethercom *ec = (struct ethercom *)ifp;
	struct sockaddr_dl *sdl = &ifp->if_sadl_store;

	ifp->if_type = IFT_ETHER;
	ifp->if_addrlen = ETHER_ADDR_LEN;
	ifp->if_hdrlen = ETHER_HDR_LEN;
	ifp->if_dlt = 1;	/* DLT_EN10MB */
	if (ifp->if_mtu == 0)
		ifp->if_mtu = ETHERMTU;
	if (ifp->if_baudrate == 0)
		ifp->if_baudrate = 10000000;	/* until the media says */

	memset(sdl, 0, sizeof(*sdl));
	sdl->sdl_len = sizeof(*sdl);
	sdl->sdl_family = AF_LINK;
	sdl->sdl_type = IFT_ETHER;
	sdl->sdl_alen = ETHER_ADDR_LEN;
	memcpy(LLADDR(sdl), lla, ETHER_ADDR_LEN);
	ifp->if_sadl = sdl;
	ifp->if_dl_store.ifa_addr = (struct sockaddr *)sdl;
	ifp->if_dl_store.ifa_ifp = ifp;
	ifp->if_dl = &ifp->if_dl_store;

	LIST_INIT(&ec->ec_multiaddrs);
	ec->ec_multicnt = 0;
	if (ec->ec_lock == NULL)
		ec->ec_lock = mutex_obj_alloc(MUTEX_DEFAULT, IPL_NET);
	pktkit_ether_attached(ifp);
}

void
ether_ifdetach(struct ifnet *ifp)
{
	struct ethercom *ec = (struct ethercom *)ifp;
	struct ether_multi *enm;

	if (ec->ec_lock == NULL)
		return;
	ETHER_LOCK(ec);
	while ((enm = LIST_FIRST(&ec->ec_multiaddrs)) != NULL) {
		LIST_REMOVE(enm, enm_list);
		kmem_free(enm, sizeof(*enm));
	}
	ec->ec_multicnt = 0;
	ETHER_UNLOCK(ec);
	mutex_obj_free(ec->ec_lock);
	ec->ec_lock = NULL;
}

void
ether_set_ifflags_cb(struct ethercom *ec, ether_cb_t cb)
{
	ec->ec_ifflags_cb = cb;
}

/*
 * The range a multicast request names.  AF_UNSPEC carries the address in
 * sa_data; pktkit's adapter also sends a range (lo then hi in sa_data,
 * sa_len 14) for "all multicast".  AF_LINK carries a sockaddr_dl.
 */
static int
ether_multiaddr(const struct sockaddr *sa, uint8_t lo[ETHER_ADDR_LEN],
    uint8_t hi[ETHER_ADDR_LEN])
{
	const struct sockaddr_dl *sdl;

	switch (sa->sa_family) {
	case AF_UNSPEC:
		memcpy(lo, sa->sa_data, ETHER_ADDR_LEN);
		if (sa->sa_len >= 2 + 2 * ETHER_ADDR_LEN)
			memcpy(hi, sa->sa_data + ETHER_ADDR_LEN,
			    ETHER_ADDR_LEN);
		else
			memcpy(hi, lo, ETHER_ADDR_LEN);
		break;
	case AF_LINK:
		sdl = (const struct sockaddr_dl *)sa;
		if (sdl->sdl_alen != ETHER_ADDR_LEN)
			return EINVAL;
		memcpy(lo, CLLADDR(sdl), ETHER_ADDR_LEN);
		memcpy(hi, lo, ETHER_ADDR_LEN);
		break;
	default:
		return EAFNOSUPPORT;
	}
	if (!ETHER_IS_MULTICAST(lo))
		return EINVAL;
	return 0;
}

static struct ether_multi *
ether_lookup_multi(struct ethercom *ec, const uint8_t *lo, const uint8_t *hi)
{
	struct ether_multi *enm;

	LIST_FOREACH(enm, &ec->ec_multiaddrs, enm_list) {
		if (memcmp(enm->enm_addrlo, lo, ETHER_ADDR_LEN) == 0 &&
		    memcmp(enm->enm_addrhi, hi, ETHER_ADDR_LEN) == 0)
			return enm;
	}
	return NULL;
}

/* Returns ENETRESET when the list changed and the filter must follow. */
int
ether_addmulti(const struct sockaddr *sa, struct ethercom *ec)
{
	struct ether_multi *enm;
	uint8_t lo[ETHER_ADDR_LEN], hi[ETHER_ADDR_LEN];
	int error;

	if ((error = ether_multiaddr(sa, lo, hi)) != 0)
		return error;
	ETHER_LOCK(ec);
	if ((enm = ether_lookup_multi(ec, lo, hi)) != NULL) {
		enm->enm_refcount++;
		ETHER_UNLOCK(ec);
		return 0;
	}
	enm = kmem_zalloc(sizeof(*enm), KM_NOSLEEP);
	if (enm == NULL) {
		ETHER_UNLOCK(ec);
		return ENOMEM;
	}
	memcpy(enm->enm_addrlo, lo, ETHER_ADDR_LEN);
	memcpy(enm->enm_addrhi, hi, ETHER_ADDR_LEN);
	enm->enm_refcount = 1;
	LIST_INSERT_HEAD(&ec->ec_multiaddrs, enm, enm_list);
	ec->ec_multicnt++;
	ETHER_UNLOCK(ec);
	return ENETRESET;
}

int
ether_delmulti(const struct sockaddr *sa, struct ethercom *ec)
{
	struct ether_multi *enm;
	uint8_t lo[ETHER_ADDR_LEN], hi[ETHER_ADDR_LEN];
	int error;

	if ((error = ether_multiaddr(sa, lo, hi)) != 0)
		return error;
	ETHER_LOCK(ec);
	if ((enm = ether_lookup_multi(ec, lo, hi)) == NULL) {
		ETHER_UNLOCK(ec);
		return ENXIO;
	}
	if (--enm->enm_refcount > 0) {
		ETHER_UNLOCK(ec);
		return 0;
	}
	LIST_REMOVE(enm, enm_list);
	ec->ec_multicnt--;
	ETHER_UNLOCK(ec);
	kmem_free(enm, sizeof(*enm));
	return ENETRESET;
}

int
ifioctl_common(struct ifnet *ifp, u_long cmd, void *data)
{
	struct ifreq *ifr = data;

	switch (cmd) {
	case SIOCSIFFLAGS:
		ifp->if_flags = (ifp->if_flags & IFF_CANTCHANGE) |
		    (ifr->ifr_flags & ~IFF_CANTCHANGE);
		return 0;
	case SIOCGIFFLAGS:
		ifr->ifr_flags = (short)ifp->if_flags;
		return 0;
	case SIOCSIFMTU:
		ifp->if_mtu = (uint64_t)ifr->ifr_mtu;
		return (ifp->if_flags & IFF_RUNNING) ? ENETRESET : 0;
	case SIOCGIFMTU:
		ifr->ifr_mtu = (int)ifp->if_mtu;
		return 0;
	default:
		return ENOTTY;
	}
}

/*
 * SIOCSIFFLAGS brings the interface up (if_init) or down (if_stop); while
 * it stays up and running, a flag change (promiscuous, all-multicast) goes
 * to the driver's ec_ifflags_cb, or re-initialises the interface when the
 * driver has none or the callback answers ENETRESET.
 */
static int
ether_ioctl_flags(struct ifnet *ifp, struct ifreq *ifr)
{
	struct ethercom *ec = (struct ethercom *)ifp;
	int error;

	if ((error = ifioctl_common(ifp, SIOCSIFFLAGS, ifr)) != 0)
		return error;
	switch (ifp->if_flags & (IFF_UP | IFF_RUNNING)) {
	case IFF_RUNNING:
		if (ifp->if_stop != NULL)
			(*ifp->if_stop)(ifp, 1);
		error = 0;
		break;
	case IFF_UP:
		error = ifp->if_init != NULL ? (*ifp->if_init)(ifp) : 0;
		break;
	case IFF_UP | IFF_RUNNING:
		if (ec->ec_if_flags == (short)ifp->if_flags)
			error = 0;
		else if (ec->ec_ifflags_cb != NULL &&
		    (error = (*ec->ec_ifflags_cb)(ec)) != ENETRESET)
			break;
		else
			error = ifp->if_init != NULL ? (*ifp->if_init)(ifp) : 0;
		break;
	default:
		error = 0;
		break;
	}
	if (error == 0)
		ec->ec_if_flags = (short)ifp->if_flags;
	return error;
}

int
ether_ioctl(struct ifnet *ifp, u_long cmd, void *data)
{
	struct ethercom *ec = (struct ethercom *)ifp;
	struct ifreq *ifr = data;
	int error;

	switch (cmd) {
	case SIOCSIFFLAGS:
		return ether_ioctl_flags(ifp, ifr);
	case SIOCSIFMTU:
		if (ifr->ifr_mtu < ETHERMIN ||
		    ifr->ifr_mtu > ((ec->ec_capenable & ETHERCAP_JUMBO_MTU) ?
		    ETHERMTU_JUMBO : ETHERMTU))
			return EINVAL;
		error = ifioctl_common(ifp, cmd, data);
		return error == ENETRESET ? 0 : error;
	case SIOCADDMULTI:
		return ether_addmulti(ifreq_getaddr(cmd, ifr), ec);
	case SIOCDELMULTI:
		return ether_delmulti(ifreq_getaddr(cmd, ifr), ec);
	case SIOCSIFMEDIA:
	case SIOCGIFMEDIA:
		if (ec->ec_ifmedia == NULL)
			return ENOTTY;
		return ifmedia_ioctl(ifp, ifr, ec->ec_ifmedia, cmd);
	default:
		return ifioctl_common(ifp, cmd, data);
	}
}

/* Calls the driver's ioctl as the kernel's ifioctl would. */
static int
if_ioctl_call(struct ifnet *ifp, u_long cmd, void *data)
{
	if (ifp->if_ioctl == NULL)
		return EOPNOTSUPP;
	return (*ifp->if_ioctl)(ifp, cmd, data);
}

int
pktkit_if_set_flags(struct ifnet *ifp, int set, int clear)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	strlcpy(ifr.ifr_name, ifp->if_xname, sizeof(ifr.ifr_name));
	ifr.ifr_flags = (short)((ifp->if_flags | set) & ~clear);
	return if_ioctl_call(ifp, SIOCSIFFLAGS, &ifr);
}

int
pktkit_if_multi(struct ifnet *ifp, const uint8_t *lo, const uint8_t *hi,
    bool add)
{
	struct ifreq ifr;
	int error;

	memset(&ifr, 0, sizeof(ifr));
	strlcpy(ifr.ifr_name, ifp->if_xname, sizeof(ifr.ifr_name));
	ifr.ifr_addr.sa_family = AF_UNSPEC;
	ifr.ifr_addr.sa_len = 2 + ETHER_ADDR_LEN;
	memcpy(ifr.ifr_addr.sa_data, lo, ETHER_ADDR_LEN);
	if (hi != NULL) {
		ifr.ifr_addr.sa_len = 2 + 2 * ETHER_ADDR_LEN;
		memcpy(ifr.ifr_addr.sa_data + ETHER_ADDR_LEN, hi,
		    ETHER_ADDR_LEN);
	}
	error = if_ioctl_call(ifp, add ? SIOCADDMULTI : SIOCDELMULTI, &ifr);
	/* ENETRESET: the list changed; the driver reprograms when running. */
	return error == ENETRESET ? 0 : error;
}

int
pktkit_ether_allmulti(struct ethercom *ec, bool on)
{
	return pktkit_if_multi(&ec->ec_if, ether_allmulti_lo,
	    ether_allmulti_hi, on);
}

int
pktkit_if_set_mtu(struct ifnet *ifp, int mtu)
{
	struct ifreq ifr;
	int error;

	memset(&ifr, 0, sizeof(ifr));
	strlcpy(ifr.ifr_name, ifp->if_xname, sizeof(ifr.ifr_name));
	ifr.ifr_mtu = mtu;
	error = if_ioctl_call(ifp, SIOCSIFMTU, &ifr);
	return error == ENETRESET ? 0 : error;
}

int
pktkit_if_media_status(struct ifnet *ifp, int *status, int *active)
{
	struct ifmediareq ifmr;
	int error;

	memset(&ifmr, 0, sizeof(ifmr));
	strlcpy(ifmr.ifm_name, ifp->if_xname, sizeof(ifmr.ifm_name));
	error = if_ioctl_call(ifp, SIOCGIFMEDIA, &ifmr);
	if (error != 0)
		return error;
	*status = ifmr.ifm_status;
	*active = ifmr.ifm_active;
	return 0;
}
