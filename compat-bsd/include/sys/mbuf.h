/*
 * sys/mbuf.h -- mbuf(9) over pktkit's own packet buffer (compat-bsd).
 *
 * The mbuf *is* the stack's (pktkit/mbuf.h): no conversion happens between
 * a ported driver and the stack.  Every buffer always carries its storage
 * (M_EXT is always set; MCLGET only checks), with MCLBYTES of room after
 * the headroom, so the usual "MGETHDR, MCLGET, load MCLBYTES" receive
 * refill works unchanged.  Allocation takes from the pool of the interface
 * the calling driver serves and never sleeps: M_WAITOK behaves as M_NOWAIT
 * (callers check for NULL as NetBSD drivers do).
 */
#ifndef _SYS_MBUF_H_
#define _SYS_MBUF_H_

#include <sys/types.h>
#include <pktkit/mbuf.h>

struct ifnet;

#define MCLBYTES	PKTKIT_MBUF_DATAROOM
#define MCLSHIFT	11
#define MLEN		PKTKIT_MBUF_DATAROOM
#define MHLEN		PKTKIT_MBUF_DATAROOM
#define MINCLSIZE	(MHLEN + 1)

#define M_DONTWAIT	0x0001
#define M_NOWAIT	M_DONTWAIT
#define M_WAITOK	0x0002
#define M_WAIT		M_WAITOK

#define M_LINK0		0x00001000
#define M_VLANTAG	0x00010000	/* ether_vtag is valid */
#define M_COPYFLAGS	(M_PKTHDR | M_EOR | M_BCAST | M_MCAST | M_VLANTAG)
#define M_CSUM_BITS	"\20"

struct mbuf	*m_get(int, int);
struct mbuf	*m_gethdr(int, int);
void		m_clget(struct mbuf *, int);
void		m_freem(struct mbuf *);
struct mbuf	*m_free(struct mbuf *);
void		m_copydata(struct mbuf *, int, int, void *);
int		m_copyback_cow(struct mbuf *, int, int, const void *);
void		m_copyback(struct mbuf *, int, int, const void *);
void		m_adj(struct mbuf *, int);
struct mbuf	*m_defrag(struct mbuf *, int);
struct mbuf	*m_pullup(struct mbuf *, int);
struct mbuf	*m_prepend(struct mbuf *, int, int);
int		m_length(const struct mbuf *);

/*
 * The per-thread buffer cache of the adapter.  While the adapter runs a
 * driver's code (mc_cur set), MGETHDR pops fresh buffers that the adapter
 * took from the device's pool in bulk, m_freem gathers packets to free them
 * in bulk, and if_percpuq_enqueue (from a receive poll) stores straight
 * into the receive burst.  The slow paths (empty, full, outside an entry)
 * are the functions of the same names.  The adapter empties the cache
 * whenever it leaves a driver, so no buffer outlives the entry point.
 */
#define PKTKIT_MCACHE_ALLOC	32
#define PKTKIT_MCACHE_FREE	64

struct if_percpuq;

/*
 * The counts are longs, not ints, on purpose: a store to an int field of an
 * mbuf or ifqueue (m_len, ifq_len) then cannot alias them, so the compiler
 * keeps them in registers across a driver's receive or transmit loop.
 */
struct pktkit_mcache {
	void		*mc_cur;	/* device being run, NULL outside */
	long		mc_na;		/* buffers in mc_alloc */
	long		mc_nf;		/* packets in mc_free */
	struct mbuf	*mc_alloc[PKTKIT_MCACHE_ALLOC];
	struct mbuf	*mc_free[PKTKIT_MCACHE_FREE];
	struct if_percpuq *mc_rxq;	/* queue received into directly */
	struct mbuf	**mc_rxout;	/* the receive burst's free slots */
	long		mc_rxroom;
	long		mc_rxn;
	long		mc_rxbytes;	/* bytes of the packets stored there */
};

extern __thread struct pktkit_mcache pktkit_mcache;
struct pktkit_mcache *pktkit_mcache_self(void);

static inline struct mbuf *
pktkit_m_gethdr(int how, int type)
{
	struct pktkit_mcache *mc = &pktkit_mcache;
	struct mbuf *m;

	if (__predict_true(mc->mc_na > 0)) {
		m = mc->mc_alloc[--mc->mc_na];
		m->m_type = (uint16_t)type;
		return m;
	}
	return m_gethdr(how, type);
}

static inline void
pktkit_m_freem(struct mbuf *m)
{
	struct pktkit_mcache *mc = &pktkit_mcache;

	if (__predict_true(m != NULL && mc->mc_cur != NULL &&
	    mc->mc_nf < PKTKIT_MCACHE_FREE)) {
		mc->mc_free[mc->mc_nf++] = m;
		return;
	}
	m_freem(m);
}

#define MGET(m, how, type)	((m) = m_get((how), (type)))
#define MGETHDR(m, how, type)	((m) = pktkit_m_gethdr((how), (type)))
/* Every buffer already has its cluster: nothing to do. */
#define MCLGET(m, how)		((void)(m), (void)(how))
#define m_freem(m)		pktkit_m_freem(m)
#define MFREE(m, n)		((n) = m_free(m))
/*
 * mbuf owners (MBUFTRACE): the pool keeps its own per-owner accounting
 * (the interface that holds a buffer), so an mowner is only a name.
 */
struct mowner {
	char	mo_name[16];
	char	mo_descr[16];
};
#define MCLAIM(m, mowner)	((void)(m))
#define MOWNER_ATTACH(mo)	((void)(mo))
#define M_PREPEND(m, plen, how) do {					\
	if (M_LEADINGSPACE(m) >= (plen)) {				\
		(m)->m_data -= (plen);					\
		(m)->m_len += (plen);					\
		if ((m)->m_flags & M_PKTHDR)				\
			(m)->m_pkthdr.len += (plen);			\
	} else								\
		(m) = m_prepend((m), (plen), (how));			\
} while (0)
/* Start the data so that len bytes end at the end of the data room. */
#define M_ALIGN(m, len) \
	((m)->m_data = (m)->m_ext.ext_buf + (m)->m_ext.ext_size - \
	    (((len) + sizeof(long) - 1) & ~(sizeof(long) - 1)))
#define MH_ALIGN(m, len)	M_ALIGN(m, len)
#define MCLAIM_NONE

/* Receive interface: the stack records its own index at receive. */
static inline void
m_set_rcvif(struct mbuf *m, const struct ifnet *ifp)
{
	(void)ifp;
	m->m_pkthdr._rcvif.index = 0;
}
#define m_reset_rcvif(m)	((m)->m_pkthdr._rcvif.index = 0)

/* VLAN tags travel in the packet header. */
static inline bool
vlan_has_tag(const struct mbuf *m)
{
	return (m->m_flags & M_VLANTAG) != 0;
}

static inline uint16_t
vlan_get_tag(const struct mbuf *m)
{
	return m->m_pkthdr.ether_vtag;
}

static inline void
vlan_set_tag(struct mbuf *m, uint16_t tag)
{
	m->m_pkthdr.ether_vtag = tag;
	m->m_flags |= M_VLANTAG;
}

#endif /* _SYS_MBUF_H_ */
