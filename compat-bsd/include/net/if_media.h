/*
 * net/if_media.h -- ifmedia(4) (compat-bsd), with the current
 * ifmedia_init_with_lock/ifmedia_fini and the older ifmedia_init.
 *
 * A media word: type (IFM_ETHER), subtype (IFM_100_TX, ...), options
 * (IFM_FDX, ...), instance (which PHY), as in NetBSD.
 */
#ifndef _NET_IF_MEDIA_H_
#define _NET_IF_MEDIA_H_

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/mutex.h>

struct ifnet;
struct ifreq;

#define IFM_NMASK	0x000000e0
#define IFM_TMASK	0x0000001f
#define IFM_IMASK	0x0ff00000
#define IFM_ISHIFT	20
#define IFM_OMASK	0x0000ff00
#define IFM_GMASK	0x00ff0000
#define IFM_MMASK	0x00070000

#define IFM_ETHER	0x00000020
#define IFM_AUTO	0
#define IFM_MANUAL	1
#define IFM_NONE	2
#define IFM_10_T	3
#define IFM_10_2	4
#define IFM_10_5	5
#define IFM_100_TX	6
#define IFM_100_FX	7
#define IFM_100_T4	8
#define IFM_100_VG	9
#define IFM_100_T2	10
#define IFM_1000_SX	11
#define IFM_10_STP	12
#define IFM_10_FL	13
#define IFM_1000_LX	14
#define IFM_1000_CX	15
#define IFM_1000_T	16
#define IFM_HPNA_1	17

#define IFM_FDX		0x00000100	/* full duplex */
#define IFM_HDX		0x00000200	/* half duplex */
#define IFM_FLOW	0x00000400	/* flow control */
#define IFM_FLAG0	0x00001000
#define IFM_FLAG1	0x00002000
#define IFM_FLAG2	0x00004000
#define IFM_LOOP	0x00008000
#define IFM_ETH_MASTER	0x00010000
#define IFM_ETH_RXPAUSE	0x00020000
#define IFM_ETH_TXPAUSE	0x00040000
#define IFM_ETH_FMASK	(IFM_FLOW | IFM_ETH_RXPAUSE | IFM_ETH_TXPAUSE)

#define IFM_AVALID	0x00000001	/* status is valid */
#define IFM_ACTIVE	0x00000002	/* link is up */

#define IFM_INST_ANY	((u_int)-1)

#define IFM_TYPE(x)	((x) & IFM_NMASK)
#define IFM_SUBTYPE(x)	((x) & IFM_TMASK)
#define IFM_INST(x)	(((x) & IFM_IMASK) >> IFM_ISHIFT)
#define IFM_OPTIONS(x)	((x) & (IFM_OMASK | IFM_GMASK))
#define IFM_MAKEWORD(type, subtype, options, instance)			\
	((type) | (subtype) | (options) | ((instance) << IFM_ISHIFT))

struct ifmedia_entry {
	TAILQ_ENTRY(ifmedia_entry) ifm_list;
	u_int	ifm_media;
	u_int	ifm_data;
	void	*ifm_aux;
};

typedef int (*ifm_change_cb_t)(struct ifnet *);
struct ifmediareq;
typedef void (*ifm_stat_cb_t)(struct ifnet *, struct ifmediareq *);

struct ifmedia {
	kmutex_t	*ifm_lock;
	u_int		ifm_mask;
	u_int		ifm_media;	/* current user-set media word */
	struct ifmedia_entry *ifm_cur;
	TAILQ_HEAD(, ifmedia_entry) ifm_list;
	ifm_change_cb_t	ifm_change;
	ifm_stat_cb_t	ifm_status;
	bool		ifm_legacy;
	kmutex_t	ifm_legacy_lock;
};

struct ifmediareq {
	char	ifm_name[16];
	int	ifm_current;
	int	ifm_mask;
	int	ifm_status;
	int	ifm_active;
	int	ifm_count;
	int	*ifm_ulist;
};

void	ifmedia_init(struct ifmedia *, int, ifm_change_cb_t, ifm_stat_cb_t);
void	ifmedia_init_with_lock(struct ifmedia *, int, ifm_change_cb_t,
	    ifm_stat_cb_t, kmutex_t *);
void	ifmedia_fini(struct ifmedia *);
void	ifmedia_add(struct ifmedia *, int, int, void *);
void	ifmedia_set(struct ifmedia *, int);
int	ifmedia_ioctl(struct ifnet *, struct ifreq *, struct ifmedia *, u_long);
int	ifmedia_change(struct ifmedia *, struct ifnet *);
void	ifmedia_delete_instance(struct ifmedia *, u_int);
void	ifmedia_removeall(struct ifmedia *);
struct ifmedia_entry *ifmedia_match(struct ifmedia *, u_int, u_int);
uint64_t ifmedia_baudrate(int);
int	ifmedia_link_duplex(int);
#define ifmedia_lock(ifm)	mutex_enter((ifm)->ifm_lock)
#define ifmedia_unlock(ifm)	mutex_exit((ifm)->ifm_lock)
#define ifmedia_locked(ifm)	mutex_owned((ifm)->ifm_lock)

#endif /* _NET_IF_MEDIA_H_ */
