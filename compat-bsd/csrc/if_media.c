/*
 * if_media.c -- ifmedia(4): the list of media a driver offers, the one
 * chosen, and SIOCSIFMEDIA/SIOCGIFMEDIA.
 *
 * Locking: with ifmedia_init_with_lock the driver's callbacks run with
 * ifm_lock held, as in current NetBSD; the older ifmedia_init gets a lock
 * of its own (ifm_legacy), so the callbacks are always called locked.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kmem.h>
#include <sys/sockio.h>
#include <net/if.h>
#include <net/if_media.h>

void
ifmedia_init_with_lock(struct ifmedia *ifm, int dontcare_mask,
    ifm_change_cb_t change, ifm_stat_cb_t status, kmutex_t *lock)
{
	TAILQ_INIT(&ifm->ifm_list);
	ifm->ifm_cur = NULL;
	ifm->ifm_media = 0;
	ifm->ifm_mask = (u_int)dontcare_mask;
	ifm->ifm_change = change;
	ifm->ifm_status = status;
	ifm->ifm_legacy = lock == NULL;
	if (lock == NULL) {
		mutex_init(&ifm->ifm_legacy_lock, MUTEX_DEFAULT, IPL_NET);
		lock = &ifm->ifm_legacy_lock;
	}
	ifm->ifm_lock = lock;
}

void
ifmedia_init(struct ifmedia *ifm, int dontcare_mask, ifm_change_cb_t change,
    ifm_stat_cb_t status)
{
	ifmedia_init_with_lock(ifm, dontcare_mask, change, status, NULL);
}

void
ifmedia_fini(struct ifmedia *ifm)
{
	ifmedia_removeall(ifm);
	if (ifm->ifm_legacy)
		mutex_destroy(&ifm->ifm_legacy_lock);
}

void
ifmedia_add(struct ifmedia *ifm, int mword, int data, void *aux)
{
	struct ifmedia_entry *entry;

	entry = kmem_zalloc(sizeof(*entry), KM_NOSLEEP);
	if (entry == NULL) {
		printf("ifmedia_add: out of memory\n");
		return;
	}
	entry->ifm_media = (u_int)mword;
	entry->ifm_data = (u_int)data;
	entry->ifm_aux = aux;
	TAILQ_INSERT_TAIL(&ifm->ifm_list, entry, ifm_list);
}

struct ifmedia_entry *
ifmedia_match(struct ifmedia *ifm, u_int target, u_int mask)
{
	struct ifmedia_entry *entry;

	mask = ~mask;
	TAILQ_FOREACH(entry, &ifm->ifm_list, ifm_list) {
		if ((entry->ifm_media & mask) == (target & mask))
			return entry;
	}
	return NULL;
}

void
ifmedia_set(struct ifmedia *ifm, int target)
{
	struct ifmedia_entry *match;

	match = ifmedia_match(ifm, (u_int)target, ifm->ifm_mask);
	if (match == NULL) {
		/* NetBSD falls back to "none" the same way. */
		printf("ifmedia_set: no match for 0x%x/0x%x\n", target,
		    ~ifm->ifm_mask);
		target = (target & IFM_NMASK) | IFM_NONE;
		match = ifmedia_match(ifm, (u_int)target, ifm->ifm_mask);
		if (match == NULL) {
			ifmedia_add(ifm, target, 0, NULL);
			match = ifmedia_match(ifm, (u_int)target,
			    ifm->ifm_mask);
		}
	}
	ifm->ifm_cur = match;
	ifm->ifm_media = (u_int)target;
}

int
ifmedia_change(struct ifmedia *ifm, struct ifnet *ifp)
{
	if (ifm->ifm_change == NULL)
		return 0;
	return (*ifm->ifm_change)(ifp);
}

int
ifmedia_ioctl(struct ifnet *ifp, struct ifreq *ifr, struct ifmedia *ifm,
    u_long cmd)
{
	struct ifmediareq *ifmr = (struct ifmediareq *)ifr;
	struct ifmedia_entry *match, *oldentry;
	u_int oldmedia, newmedia;
	int error = 0;

	if (ifp == NULL || ifr == NULL || ifm == NULL)
		return EINVAL;
	mutex_enter(ifm->ifm_lock);
	switch (cmd) {
	case SIOCSIFMEDIA:
		newmedia = (u_int)ifr->ifr_media;
		match = ifmedia_match(ifm, newmedia, ifm->ifm_mask);
		if (match == NULL) {
			error = EINVAL;
			break;
		}
		if (match == ifm->ifm_cur && ifm->ifm_media == newmedia &&
		    (newmedia & IFM_TMASK) != IFM_AUTO)
			break;
		oldentry = ifm->ifm_cur;
		oldmedia = ifm->ifm_media;
		ifm->ifm_cur = match;
		ifm->ifm_media = newmedia;
		error = ifmedia_change(ifm, ifp);
		if (error != 0) {
			ifm->ifm_cur = oldentry;
			ifm->ifm_media = oldmedia;
		}
		break;
	case SIOCGIFMEDIA:
		ifmr->ifm_active = ifmr->ifm_current = ifm->ifm_cur != NULL ?
		    (int)ifm->ifm_cur->ifm_media : IFM_NONE;
		ifmr->ifm_mask = (int)ifm->ifm_mask;
		ifmr->ifm_status = 0;
		if (ifm->ifm_status != NULL)
			(*ifm->ifm_status)(ifp, ifmr);
		ifmr->ifm_count = 0;
		break;
	default:
		error = ENOTTY;
		break;
	}
	mutex_exit(ifm->ifm_lock);
	return error;
}

void
ifmedia_delete_instance(struct ifmedia *ifm, u_int inst)
{
	struct ifmedia_entry *ife, *next;

	for (ife = TAILQ_FIRST(&ifm->ifm_list); ife != NULL; ife = next) {
		next = TAILQ_NEXT(ife, ifm_list);
		if (inst == IFM_INST_ANY ||
		    inst == (u_int)IFM_INST(ife->ifm_media)) {
			if (ifm->ifm_cur == ife)
				ifm->ifm_cur = NULL;
			TAILQ_REMOVE(&ifm->ifm_list, ife, ifm_list);
			kmem_free(ife, sizeof(*ife));
		}
	}
}

void
ifmedia_removeall(struct ifmedia *ifm)
{
	ifmedia_delete_instance(ifm, IFM_INST_ANY);
}

/* Bits per second of an Ethernet media word (0 when unknown). */
uint64_t
ifmedia_baudrate(int mword)
{
	static const struct {
		int		subtype;
		uint64_t	bps;
	} rates[] = {
		{ IFM_10_T, 10000000ULL },
		{ IFM_10_2, 10000000ULL },
		{ IFM_10_5, 10000000ULL },
		{ IFM_10_STP, 10000000ULL },
		{ IFM_10_FL, 10000000ULL },
		{ IFM_100_TX, 100000000ULL },
		{ IFM_100_FX, 100000000ULL },
		{ IFM_100_T4, 100000000ULL },
		{ IFM_100_VG, 100000000ULL },
		{ IFM_100_T2, 100000000ULL },
		{ IFM_1000_SX, 1000000000ULL },
		{ IFM_1000_LX, 1000000000ULL },
		{ IFM_1000_CX, 1000000000ULL },
		{ IFM_1000_T, 1000000000ULL },
		{ IFM_HPNA_1, 1000000ULL },
	};
	size_t i;

	if (IFM_TYPE(mword) != IFM_ETHER)
		return 0;
	for (i = 0; i < __arraycount(rates); i++)
		if (rates[i].subtype == IFM_SUBTYPE(mword))
			return rates[i].bps;
	return 0;
}

int
ifmedia_link_duplex(int mword)
{
	return (mword & IFM_FDX) != 0;
}
