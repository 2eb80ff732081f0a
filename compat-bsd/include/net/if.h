/*
 * net/if.h -- struct ifnet and the interface queue (compat-bsd).
 *
 * The adapter (pktkit_bsd) owns the glue around each ifnet: if_attach
 * records it, transmit fills if_snd and calls if_start, received packets
 * go through if_percpuq_enqueue to the interface's receive queue, and
 * control requests arrive as if_ioctl calls (SIOCSIFFLAGS, SIOCADDMULTI,
 * SIOCDELMULTI, SIOCSIFMTU).
 */
#ifndef _NET_IF_H_
#define _NET_IF_H_

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <sys/mutex.h>
#include <sys/mbuf.h>
#include <net/if_dl.h>
#include <net/if_types.h>

#define IFNAMSIZ	16
#define IF_NAMESIZE	IFNAMSIZ

/* if_flags */
#define IFF_UP		0x0001
#define IFF_BROADCAST	0x0002
#define IFF_DEBUG	0x0004
#define IFF_LOOPBACK	0x0008
#define IFF_POINTOPOINT	0x0010
#define IFF_NOTRAILERS	0x0020
#define IFF_RUNNING	0x0040
#define IFF_NOARP	0x0080
#define IFF_PROMISC	0x0100
#define IFF_ALLMULTI	0x0200
#define IFF_OACTIVE	0x0400
#define IFF_SIMPLEX	0x0800
#define IFF_LINK0	0x1000
#define IFF_LINK1	0x2000
#define IFF_LINK2	0x4000
#define IFF_MULTICAST	0x8000
#define IFF_CANTCHANGE	(IFF_BROADCAST | IFF_POINTOPOINT | IFF_RUNNING | \
			 IFF_OACTIVE | IFF_SIMPLEX | IFF_MULTICAST)

/* if_extflags */
#define IFEF_MPSAFE		0x0001	/* entry points need no big lock */
#define IFEF_NO_LINK_STATE_CHANGE 0x0002

/* if_capabilities */
#define IFCAP_CSUM_IPv4_Rx	0x00004
#define IFCAP_CSUM_IPv4_Tx	0x00008
#define IFCAP_CSUM_TCPv4_Rx	0x00010
#define IFCAP_CSUM_TCPv4_Tx	0x00020
#define IFCAP_CSUM_UDPv4_Rx	0x00040
#define IFCAP_CSUM_UDPv4_Tx	0x00080
#define IFCAP_CSUM_TCPv6_Rx	0x00100
#define IFCAP_CSUM_TCPv6_Tx	0x00200
#define IFCAP_CSUM_UDPv6_Rx	0x00400
#define IFCAP_CSUM_UDPv6_Tx	0x00800
#define IFCAP_TSOv4		0x00080000
#define IFCAP_TSOv6		0x00100000

/* if_link_state */
#define LINK_STATE_UNKNOWN	0
#define LINK_STATE_DOWN		1
#define LINK_STATE_UP		2

/* A queue of packets linked by m_nextpkt. */
struct ifqueue {
	struct mbuf	*ifq_head;
	struct mbuf	*ifq_tail;
	int		ifq_len;
	int		ifq_maxlen;
	uint64_t	ifq_drops;
	kmutex_t	*ifq_lock;	/* set for IFEF_MPSAFE interfaces */
};

#define IFQ_MAXLEN	256

struct if_percpuq;
struct ifreq;

/*
 * An interface address.  The protocol addresses are the stack's (pktkit's
 * protocol layer owns them); the ifnet keeps only its link-level one here,
 * as if_dl, for drivers that read the MAC through it.
 */
struct ifaddr {
	struct sockaddr	*ifa_addr;
	struct sockaddr	*ifa_dstaddr;
	struct sockaddr	*ifa_netmask;
	struct ifnet	*ifa_ifp;
};

struct ifnet {
	void		*if_softc;
	char		if_xname[IFNAMSIZ];
	int		if_flags;	/* IFF_* */
	int		if_extflags;	/* IFEF_* */
	short		if_index;
	short		if_timer;	/* watchdog seconds, 0 = off */
	uint8_t		if_type;	/* IFT_* */
	uint8_t		if_addrlen;
	uint8_t		if_hdrlen;
	uint8_t		if_dlt;
	int		if_link_state;	/* LINK_STATE_* */
	uint64_t	if_mtu;
	uint64_t	if_baudrate;	/* bits per second */
	uint64_t	if_capabilities;
	uint64_t	if_capenable;
	int		(*if_ioctl)(struct ifnet *, u_long, void *);
	void		(*if_start)(struct ifnet *);
	int		(*if_transmit)(struct ifnet *, struct mbuf *);
	int		(*if_init)(struct ifnet *);
	void		(*if_stop)(struct ifnet *, int);
	void		(*if_watchdog)(struct ifnet *);
	void		(*if_input)(struct ifnet *, struct mbuf *);
	struct ifqueue	if_snd;		/* transmit queue */
	struct if_percpuq *if_percpuq;	/* receive queue */
	struct sockaddr_dl *if_sadl;	/* link-level address */
	struct sockaddr_dl if_sadl_store;
	struct ifaddr	*if_dl;		/* the same, as an ifaddr */
	struct ifaddr	if_dl_store;
	int		if_csum_flags_rx; /* M_CSUM_* the chip checks */
	int		if_csum_flags_tx; /* M_CSUM_* the chip fills in */
	uint64_t	if_stats[11];	/* IF_NSTATS, by if_stat_t */
	void		*if_pktkit;	/* the adapter's device context */
};

#include <net/if_stats.h>

static inline void
if_statadd(struct ifnet *ifp, if_stat_t s, uint64_t v)
{
	if (ifp->if_extflags & IFEF_MPSAFE)
		__atomic_fetch_add(&ifp->if_stats[s], v, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&ifp->if_stats[s],
		    __atomic_load_n(&ifp->if_stats[s], __ATOMIC_RELAXED) + v,
		    __ATOMIC_RELAXED);
}

static inline bool
if_is_mpsafe(const struct ifnet *ifp)
{
	return (ifp->if_extflags & IFEF_MPSAFE) != 0;
}

struct ifreq {
	char	ifr_name[IFNAMSIZ];
	union {
		struct sockaddr	ifru_addr;
		short		ifru_flags;
		int		ifru_metric;
		int		ifru_mtu;
		int		ifru_media;
		uint64_t	ifru_cap[2];
		void		*ifru_data;
	} ifr_ifru;
};
#define ifr_addr	ifr_ifru.ifru_addr
#define ifr_flags	ifr_ifru.ifru_flags
#define ifr_mtu		ifr_ifru.ifru_mtu
#define ifr_media	ifr_ifru.ifru_media
#define ifr_data	ifr_ifru.ifru_data

static inline const struct sockaddr *
ifreq_getaddr(u_long cmd, const struct ifreq *ifr)
{
	(void)cmd;
	return &ifr->ifr_addr;
}

/* Interface queue macros. */
#define IF_QFULL(q)	((q)->ifq_len >= (q)->ifq_maxlen)
#define IF_DROP(q)	((q)->ifq_drops++)
#define IF_IS_EMPTY(q)	((q)->ifq_len == 0)
#define IF_POLL(q, m)	((m) = (q)->ifq_head)
#define IF_ENQUEUE(q, m) do {						\
	(m)->m_nextpkt = NULL;						\
	if ((q)->ifq_tail == NULL)					\
		(q)->ifq_head = (m);					\
	else								\
		(q)->ifq_tail->m_nextpkt = (m);				\
	(q)->ifq_tail = (m);						\
	(q)->ifq_len++;							\
} while (0)
#define IF_PREPEND(q, m) do {						\
	(m)->m_nextpkt = (q)->ifq_head;					\
	if ((q)->ifq_tail == NULL)					\
		(q)->ifq_tail = (m);					\
	(q)->ifq_head = (m);						\
	(q)->ifq_len++;							\
} while (0)
#define IF_DEQUEUE(q, m) do {						\
	(m) = (q)->ifq_head;						\
	if (m) {							\
		if (((q)->ifq_head = (m)->m_nextpkt) == NULL)		\
			(q)->ifq_tail = NULL;				\
		(m)->m_nextpkt = NULL;					\
		(q)->ifq_len--;						\
	}								\
} while (0)
#define IF_PURGE(q) do {						\
	struct mbuf *__m0;						\
	for (;;) {							\
		IF_DEQUEUE((q), __m0);					\
		if (__m0 == NULL)					\
			break;						\
		m_freem(__m0);						\
	}								\
} while (0)

/* The locked forms: the lock exists only for IFEF_MPSAFE interfaces. */
#define IFQ_LOCK(q)	do { if ((q)->ifq_lock) mutex_enter((q)->ifq_lock); } while (0)
#define IFQ_UNLOCK(q)	do { if ((q)->ifq_lock) mutex_exit((q)->ifq_lock); } while (0)
#define IFQ_SET_MAXLEN(q, l)	((q)->ifq_maxlen = (l))
#define IFQ_SET_READY(q)	((void)(q))
#define IFQ_IS_EMPTY(q)		IF_IS_EMPTY(q)
#define IFQ_INC_LEN(q)		((q)->ifq_len++)
#define IFQ_DEC_LEN(q)		((q)->ifq_len--)
#define IFQ_INC_DROPS(q)	((q)->ifq_drops++)
#define IFQ_ENQUEUE(q, m, err) do {					\
	IFQ_LOCK(q);							\
	if (IF_QFULL(q)) {						\
		m_freem(m);						\
		(q)->ifq_drops++;					\
		(err) = ENOBUFS;					\
	} else {							\
		IF_ENQUEUE((q), (m));					\
		(err) = 0;						\
	}								\
	IFQ_UNLOCK(q);							\
} while (0)
#define IFQ_DEQUEUE(q, m) do {						\
	IFQ_LOCK(q);							\
	IF_DEQUEUE((q), (m));						\
	IFQ_UNLOCK(q);							\
} while (0)
#define IFQ_POLL(q, m) do {						\
	IFQ_LOCK(q);							\
	IF_POLL((q), (m));						\
	IFQ_UNLOCK(q);							\
} while (0)
#define IFQ_PURGE(q) do {						\
	IFQ_LOCK(q);							\
	IF_PURGE(q);							\
	IFQ_UNLOCK(q);							\
} while (0)

/* Attach and detach. */
int	if_attach(struct ifnet *);
int	if_initialize(struct ifnet *);
void	if_register(struct ifnet *);
void	if_detach(struct ifnet *);
void	if_deactivate(struct ifnet *);
void	if_alloc_sadl(struct ifnet *);
int	if_init(struct ifnet *);
void	if_stop(struct ifnet *, int);

/* Receive: hands a packet to the stack (the interface's receive queue). */
struct if_percpuq *if_percpuq_create(struct ifnet *);
void	if_percpuq_destroy(struct if_percpuq *);
void	if_percpuq_enqueue(struct if_percpuq *, struct mbuf *);

static inline void
pktkit_if_percpuq_enqueue(struct if_percpuq *q, struct mbuf *m)
{
	struct pktkit_mcache *mc = &pktkit_mcache;

	if (__predict_true(q == mc->mc_rxq && mc->mc_rxn < mc->mc_rxroom)) {
		mc->mc_rxbytes += m->m_pkthdr.len;
		mc->mc_rxout[mc->mc_rxn++] = m;
		return;
	}
	if_percpuq_enqueue(q, m);
}
#define if_percpuq_enqueue(q, m)	pktkit_if_percpuq_enqueue((q), (m))

/* Transmit kicks and link state. */
void	if_deferred_start_init(struct ifnet *, void (*)(struct ifnet *));
void	if_schedule_deferred_start(struct ifnet *);
void	if_link_state_change(struct ifnet *, int);
int	ifioctl_common(struct ifnet *, u_long, void *);

/*
 * pktkit extension: a receive poll handler for pseudo-devices with no
 * interrupt source.  The adapter calls it from the interface's receive
 * path when the receive queue is empty, with the number of packets it has
 * room for; it returns how many it passed to if_percpuq_enqueue.  Runs
 * under the driver's lock unless the interface is IFEF_MPSAFE.
 */
void	if_poll_establish(struct ifnet *, int (*)(void *, int), void *);

#endif /* _NET_IF_H_ */
