/*	$pktkit: if_bsdnull.c $	*/

/*
 * bsdnull -- a NetBSD-style null pseudo-driver, the ported-driver twin of
 * pktkit's native null driver (and of DPDK's net_null).
 *
 * Transmit: if_start takes every packet off if_snd with IFQ_DEQUEUE and
 * frees it.  Receive: the poll handler (if_poll_establish) allocates frames
 * with MGETHDR/MCLGET, sets their length (the payload is left as the pool
 * has it, as the native driver does) and passes them to
 * if_percpuq_enqueue.  A one-second callout keeps the link up and counts
 * ticks.
 *
 * Options (-d bsdnull,key=value): size (frame length, 14..2048, default
 * 64); mpsafe=1 (set IFEF_MPSAFE and lock with a kmutex); check=1
 * (instrument every entry point, the workqueue's work included: count
 * entries and overlaps, for the execution-model tests); tick=N (callout period in ticks, default hz);
 * transmit=1 (take packets through if_transmit and a pcq, as MP-safe
 * multiqueue drivers do, instead of if_start and if_snd).
 *
 * sysctl(9) nodes, under hw.<xname> (net.if.<ifname>.drv.* in pktkit):
 * tx_defer (read-write bool) hands sent packets to a workqueue(9) work
 * that frees them from the service pass instead of freeing them at once;
 * tx_works (read-only, a handler) counts the works run; size (read-write,
 * a handler that refuses values outside 14..2048) is the received frame
 * length.
 *
 * Locking notes:
 *	sc_lock (mpsafe=1 only) guards sc_running and the receive statistics
 *	    the poll handler and if_start share; without IFEF_MPSAFE the
 *	    runtime serializes every entry point and sc_lock is not used.
 *	sc_lock (mpsafe=1) also guards the sent-packet list sc_txdone that
 *	    sc_txwork empties; serialized, the runtime's lock does.
 *	sc_txlock (transmit=1) makes one transmitter at a time the
 *	    consumer of sc_txq; any number may put to it.
 *	sc_inside and the ev_* counters of the check mode are updated with
 *	    atomics so that overlaps are seen even without serialization.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$pktkit: if_bsdnull.c $");

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/device.h>
#include <sys/callout.h>
#include <sys/mutex.h>
#include <sys/intr.h>
#include <sys/evcnt.h>
#include <sys/atomic.h>
#include <sys/mbuf.h>
#include <sys/pcq.h>
#include <sys/sysctl.h>
#include <sys/workqueue.h>
#include <sys/socket.h>
#include <sys/sockio.h>

#include <net/if.h>
#include <net/if_ether.h>
#include <net/bpf.h>

#define BSDNULL_MINSIZE		ETHER_HDR_LEN
#define BSDNULL_DEFSIZE		64
#define BSDNULL_SPIN_US		20	/* check mode: time inside each entry */

struct bsdnull_softc {
	struct ethercom	sc_ethercom;	/* must be first */
	device_t	sc_dev;
	kmutex_t	*sc_lock;	/* mpsafe=1 only */
	kmutex_t	*sc_txlock;	/* transmit=1 only */
	pcq_t		*sc_txq;	/* transmit=1 only */
	callout_t	sc_tick;
	void		*sc_softint;
	struct workqueue *sc_wq;	/* transmit completion (tx_defer) */
	struct work	sc_txwork;
	struct mbuf	*sc_txdone;	/* sent, for sc_txwork to free */
	struct mbuf	**sc_txdone_tail;
	bool		sc_txdefer;	/* sysctl tx_defer */
	uint64_t	sc_txworks;	/* sysctl tx_works */
	struct sysctllog *sc_sysctllog;
	int		sc_size;	/* received frame length */
	int		sc_ticks;	/* callout period */
	bool		sc_mpsafe;
	bool		sc_check;
	bool		sc_running;
	uint8_t		sc_enaddr[ETHER_ADDR_LEN];

	/* check mode */
	volatile u_int	sc_inside;
	struct evcnt	sc_ev_overlap;	/* an entry found another inside */
	struct evcnt	sc_ev_rxpoll;
	struct evcnt	sc_ev_start;
	struct evcnt	sc_ev_tick;
	struct evcnt	sc_ev_softint;
	struct evcnt	sc_ev_ioctl;
	struct evcnt	sc_ev_txwork;
	struct evcnt	sc_ev_nobuf;	/* MGETHDR failed */
	struct evcnt	sc_ev_txqfull;	/* if_transmit found sc_txq full */
};

static int	bsdnull_match(device_t, cfdata_t, void *);
static void	bsdnull_attach(device_t, device_t, void *);
static int	bsdnull_detach(device_t, int);

static int	bsdnull_init(struct ifnet *);
static void	bsdnull_stop(struct ifnet *, int);
static void	bsdnull_start(struct ifnet *);
static int	bsdnull_transmit(struct ifnet *, struct mbuf *);
static int	bsdnull_ioctl(struct ifnet *, u_long, void *);
static int	bsdnull_rxpoll(void *, int);
static void	bsdnull_tick(void *);
static void	bsdnull_softint(void *);
static void	bsdnull_txdone(struct bsdnull_softc *, struct mbuf *);
static void	bsdnull_txflush(struct bsdnull_softc *);
static void	bsdnull_txwork(struct work *, void *);
static void	bsdnull_sysctl_attach(struct bsdnull_softc *);
static int	bsdnull_sysctl_txworks(SYSCTLFN_PROTO);
static int	bsdnull_sysctl_size(SYSCTLFN_PROTO);

CFATTACH_DECL_NEW(bsdnull, sizeof(struct bsdnull_softc),
    bsdnull_match, bsdnull_attach, bsdnull_detach, NULL);

/* Check mode: enter and leave an instrumented entry point. */
static void
bsdnull_enter(struct bsdnull_softc *sc, struct evcnt *ev)
{
	if (!sc->sc_check)
		return;
	__atomic_add_fetch(&ev->ev_count, 1, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&sc->sc_inside, 1, __ATOMIC_SEQ_CST) != 1)
		__atomic_add_fetch(&sc->sc_ev_overlap.ev_count, 1,
		    __ATOMIC_RELAXED);
	DELAY(BSDNULL_SPIN_US);
}

static void
bsdnull_leave(struct bsdnull_softc *sc)
{
	if (sc->sc_check)
		__atomic_sub_fetch(&sc->sc_inside, 1, __ATOMIC_SEQ_CST);
}

static void
bsdnull_lock(struct bsdnull_softc *sc)
{
	if (sc->sc_lock != NULL)
		mutex_enter(sc->sc_lock);
}

static void
bsdnull_unlock(struct bsdnull_softc *sc)
{
	if (sc->sc_lock != NULL)
		mutex_exit(sc->sc_lock);
}

static int
bsdnull_match(device_t parent, cfdata_t cf, void *aux)
{
	/* A pseudo-device: there is nothing to probe. */
	return 1;
}

static void
bsdnull_attach(device_t parent, device_t self, void *aux)
{
	struct bsdnull_softc *sc = device_private(self);
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	long size;
	int error;

	sc->sc_dev = self;
	size = pktkit_device_getprop_int(self, "size", BSDNULL_DEFSIZE);
	if (size < BSDNULL_MINSIZE || size > MCLBYTES) {
		aprint_error_dev(self, "size %ld outside %d..%d\n", size,
		    BSDNULL_MINSIZE, MCLBYTES);
		return;
	}
	sc->sc_size = (int)size;
	sc->sc_mpsafe = pktkit_device_getprop_int(self, "mpsafe", 0) != 0;
	sc->sc_check = pktkit_device_getprop_int(self, "check", 0) != 0;
	sc->sc_ticks = (int)pktkit_device_getprop_int(self, "tick", hz);
	if (sc->sc_ticks < 1)
		sc->sc_ticks = 1;
	sc->sc_txdone_tail = &sc->sc_txdone;
	error = workqueue_create(&sc->sc_wq, device_xname(self),
	    bsdnull_txwork, sc, PRI_SOFTNET, IPL_NET,
	    WQ_PERCPU | (sc->sc_mpsafe ? WQ_MPSAFE : 0));
	if (error) {
		aprint_error_dev(self, "unable to create workqueue: %d\n",
		    error);
		return;
	}

	/* A locally administered address with the unit in it. */
	sc->sc_enaddr[0] = 0x02;
	sc->sc_enaddr[1] = 0x62;
	sc->sc_enaddr[2] = 0x73;
	sc->sc_enaddr[3] = 0x64;
	sc->sc_enaddr[4] = 0x00;
	sc->sc_enaddr[5] = (uint8_t)device_unit(self);

	if (sc->sc_mpsafe)
		sc->sc_lock = mutex_obj_alloc(MUTEX_DEFAULT, IPL_NET);
	if (pktkit_device_getprop_int(self, "transmit", 0) != 0) {
		sc->sc_txq = pcq_create(IFQ_MAXLEN, KM_SLEEP);
		sc->sc_txlock = mutex_obj_alloc(MUTEX_DEFAULT, IPL_NET);
	}
	callout_init(&sc->sc_tick, sc->sc_mpsafe ? CALLOUT_MPSAFE : 0);
	sc->sc_softint = softint_establish(SOFTINT_NET |
	    (sc->sc_mpsafe ? SOFTINT_MPSAFE : 0), bsdnull_softint, sc);

	evcnt_attach_dynamic(&sc->sc_ev_overlap, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "overlaps");
	evcnt_attach_dynamic(&sc->sc_ev_rxpoll, EVCNT_TYPE_INTR, NULL,
	    device_xname(self), "rxpoll");
	evcnt_attach_dynamic(&sc->sc_ev_start, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "start");
	evcnt_attach_dynamic(&sc->sc_ev_tick, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "tick");
	evcnt_attach_dynamic(&sc->sc_ev_softint, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "softint");
	evcnt_attach_dynamic(&sc->sc_ev_ioctl, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "ioctl");
	evcnt_attach_dynamic(&sc->sc_ev_txwork, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "txwork");
	evcnt_attach_dynamic(&sc->sc_ev_nobuf, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "rx no buffer");
	evcnt_attach_dynamic(&sc->sc_ev_txqfull, EVCNT_TYPE_MISC, NULL,
	    device_xname(self), "tx queue full");

	strlcpy(ifp->if_xname, device_xname(self), IFNAMSIZ);
	ifp->if_softc = sc;
	ifp->if_flags = IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST;
	if (sc->sc_mpsafe)
		ifp->if_extflags = IFEF_MPSAFE;
	ifp->if_ioctl = bsdnull_ioctl;
	ifp->if_start = bsdnull_start;
	if (sc->sc_txq != NULL)
		ifp->if_transmit = bsdnull_transmit;
	ifp->if_init = bsdnull_init;
	ifp->if_stop = bsdnull_stop;
	IFQ_SET_MAXLEN(&ifp->if_snd, IFQ_MAXLEN);
	IFQ_SET_READY(&ifp->if_snd);

	if_attach(ifp);
	if_deferred_start_init(ifp, NULL);
	ether_ifattach(ifp, sc->sc_enaddr);
	if_poll_establish(ifp, bsdnull_rxpoll, sc);
	bsdnull_sysctl_attach(sc);

	aprint_normal_dev(self, "null pseudo-device, address %s, "
	    "%d-byte frames%s%s%s\n", ether_sprintf(sc->sc_enaddr),
	    sc->sc_size, sc->sc_mpsafe ? ", MP-safe" : "",
	    sc->sc_txq != NULL ? ", if_transmit" : "",
	    sc->sc_check ? ", checking entry points" : "");
}

static int
bsdnull_detach(device_t self, int flags)
{
	struct bsdnull_softc *sc = device_private(self);
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;

	bsdnull_stop(ifp, 1);
	sysctl_teardown(&sc->sc_sysctllog);
	workqueue_destroy(sc->sc_wq);
	callout_halt(&sc->sc_tick, NULL);
	callout_destroy(&sc->sc_tick);
	if (sc->sc_softint != NULL)
		softint_disestablish(sc->sc_softint);
	ether_ifdetach(ifp);
	if_detach(ifp);
	evcnt_detach(&sc->sc_ev_overlap);
	evcnt_detach(&sc->sc_ev_rxpoll);
	evcnt_detach(&sc->sc_ev_start);
	evcnt_detach(&sc->sc_ev_tick);
	evcnt_detach(&sc->sc_ev_softint);
	evcnt_detach(&sc->sc_ev_ioctl);
	evcnt_detach(&sc->sc_ev_txwork);
	evcnt_detach(&sc->sc_ev_nobuf);
	evcnt_detach(&sc->sc_ev_txqfull);
	if (sc->sc_txq != NULL) {
		pcq_destroy(sc->sc_txq);
		mutex_obj_free(sc->sc_txlock);
	}
	if (sc->sc_lock != NULL)
		mutex_obj_free(sc->sc_lock);
	return 0;
}

static int
bsdnull_init(struct ifnet *ifp)
{
	struct bsdnull_softc *sc = ifp->if_softc;

	bsdnull_lock(sc);
	sc->sc_running = true;
	bsdnull_unlock(sc);
	ifp->if_flags |= IFF_RUNNING;
	ifp->if_flags &= ~IFF_OACTIVE;
	ifp->if_baudrate = 10000000000ULL;
	if_link_state_change(ifp, LINK_STATE_UP);
	callout_reset(&sc->sc_tick, sc->sc_ticks, bsdnull_tick, sc);
	return 0;
}

static void
bsdnull_stop(struct ifnet *ifp, int disable)
{
	struct bsdnull_softc *sc = ifp->if_softc;

	callout_stop(&sc->sc_tick);
	bsdnull_lock(sc);
	sc->sc_running = false;
	bsdnull_unlock(sc);
	ifp->if_flags &= ~(IFF_RUNNING | IFF_OACTIVE);
	IFQ_PURGE(&ifp->if_snd);
	if (sc->sc_txq != NULL) {
		struct mbuf *m;

		mutex_enter(sc->sc_txlock);
		while ((m = pcq_get(sc->sc_txq)) != NULL)
			m_freem(m);
		mutex_exit(sc->sc_txlock);
	}
	/* Packets handed to sc_txwork are freed before stop returns. */
	workqueue_wait(sc->sc_wq, &sc->sc_txwork);
	bsdnull_txflush(sc);
}

/*
 * A sent packet: freed at once, or with tx_defer set put on sc_txdone for
 * sc_txwork, which is enqueued when the list goes from empty to not empty
 * (the work takes the whole list, so it is never enqueued twice).
 */
static void
bsdnull_txdone(struct bsdnull_softc *sc, struct mbuf *m)
{
	if (!atomic_load_relaxed(&sc->sc_txdefer)) {
		m_freem(m);
		return;
	}
	m->m_nextpkt = NULL;
	bsdnull_lock(sc);
	if (sc->sc_txdone == NULL)
		workqueue_enqueue(sc->sc_wq, &sc->sc_txwork, NULL);
	*sc->sc_txdone_tail = m;
	sc->sc_txdone_tail = &m->m_nextpkt;
	bsdnull_unlock(sc);
}

/* Frees every packet on sc_txdone. */
static void
bsdnull_txflush(struct bsdnull_softc *sc)
{
	struct mbuf *m, *next;

	bsdnull_lock(sc);
	m = sc->sc_txdone;
	sc->sc_txdone = NULL;
	sc->sc_txdone_tail = &sc->sc_txdone;
	bsdnull_unlock(sc);
	for (; m != NULL; m = next) {
		next = m->m_nextpkt;
		m->m_nextpkt = NULL;
		m_freem(m);
	}
}

/* The workqueue's work: transmit completion, from the service pass. */
static void
bsdnull_txwork(struct work *wk, void *arg)
{
	struct bsdnull_softc *sc = arg;

	bsdnull_enter(sc, &sc->sc_ev_txwork);
	bsdnull_txflush(sc);
	atomic_inc_64(&sc->sc_txworks);
	bsdnull_leave(sc);
}

/* Transmit: everything queued is "sent" at once and freed. */
static void
bsdnull_start(struct ifnet *ifp)
{
	struct bsdnull_softc *sc = ifp->if_softc;
	struct mbuf *m;
	uint64_t pkts = 0, bytes = 0;

	bsdnull_enter(sc, &sc->sc_ev_start);
	if ((ifp->if_flags & (IFF_RUNNING | IFF_OACTIVE)) != IFF_RUNNING)
		goto out;
	for (;;) {
		IFQ_DEQUEUE(&ifp->if_snd, m);
		if (m == NULL)
			break;
		bpf_mtap(ifp, m, BPF_D_OUT);
		pkts++;
		bytes += (uint64_t)m->m_pkthdr.len;
		bsdnull_txdone(sc, m);
	}
	if_statadd(ifp, if_opackets, pkts);
	if_statadd(ifp, if_obytes, bytes);
out:
	bsdnull_leave(sc);
}

/*
 * if_transmit: any number of threads put packets on sc_txq; whoever holds
 * sc_txlock takes them off and "sends" them.  Each caller drains after
 * its put, so no packet is left behind once every caller has returned.
 * The packet is always consumed: on a full queue it is freed and counted.
 */
static int
bsdnull_transmit(struct ifnet *ifp, struct mbuf *m)
{
	struct bsdnull_softc *sc = ifp->if_softc;
	uint64_t pkts = 0, bytes = 0;

	bsdnull_enter(sc, &sc->sc_ev_start);
	if (__predict_false(!pcq_put(sc->sc_txq, m))) {
		atomic_inc_64(&sc->sc_ev_txqfull.ev_count);
		if_statinc(ifp, if_oerrors);
		m_freem(m);
		bsdnull_leave(sc);
		return ENOBUFS;
	}
	mutex_enter(sc->sc_txlock);
	while ((m = pcq_get(sc->sc_txq)) != NULL) {
		bpf_mtap(ifp, m, BPF_D_OUT);
		pkts++;
		bytes += (uint64_t)m->m_pkthdr.len;
		bsdnull_txdone(sc, m);
	}
	mutex_exit(sc->sc_txlock);
	if_statadd(ifp, if_opackets, pkts);
	if_statadd(ifp, if_obytes, bytes);
	bsdnull_leave(sc);
	return 0;
}

/* Receive: up to budget fresh frames. */
static int
bsdnull_rxpoll(void *arg, int budget)
{
	struct bsdnull_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;
	struct if_percpuq *ipq = ifp->if_percpuq;
	struct mbuf *m;
	const int size = atomic_load_relaxed(&sc->sc_size);
	int n;

	bsdnull_enter(sc, &sc->sc_ev_rxpoll);
	if (!sc->sc_running) {
		bsdnull_leave(sc);
		return 0;
	}
	for (n = 0; n < budget; n++) {
		MGETHDR(m, M_DONTWAIT, MT_DATA);
		if (__predict_false(m == NULL)) {
			sc->sc_ev_nobuf.ev_count++;
			if_statinc(ifp, if_iqdrops);
			break;
		}
		MCLGET(m, M_DONTWAIT);
		m->m_len = m->m_pkthdr.len = size;
		m_set_rcvif(m, ifp);
		if_percpuq_enqueue(ipq, m);
	}
	if_statadd(ifp, if_ipackets, (uint64_t)n);
	if (sc->sc_check && sc->sc_softint != NULL)
		softint_schedule(sc->sc_softint);
	bsdnull_leave(sc);
	return n;
}

static void
bsdnull_tick(void *arg)
{
	struct bsdnull_softc *sc = arg;
	struct ifnet *ifp = &sc->sc_ethercom.ec_if;

	bsdnull_enter(sc, &sc->sc_ev_tick);
	if (sc->sc_running) {
		if_link_state_change(ifp, LINK_STATE_UP);
		callout_schedule(&sc->sc_tick, sc->sc_ticks);
	}
	bsdnull_leave(sc);
}

static void
bsdnull_softint(void *arg)
{
	struct bsdnull_softc *sc = arg;

	bsdnull_enter(sc, &sc->sc_ev_softint);
	bsdnull_leave(sc);
}

static int
bsdnull_ioctl(struct ifnet *ifp, u_long cmd, void *data)
{
	struct bsdnull_softc *sc = ifp->if_softc;
	int s, error;

	bsdnull_enter(sc, &sc->sc_ev_ioctl);
	s = splnet();
	error = ether_ioctl(ifp, cmd, data);
	if (error == ENETRESET) {
		/* No filter to program: every frame is "received". */
		error = 0;
	}
	splx(s);
	bsdnull_leave(sc);
	return error;
}

/*
 * hw.<xname> and its leaves.  A failure leaves no node behind: whatever
 * was made goes with the log.
 */
static void
bsdnull_sysctl_attach(struct bsdnull_softc *sc)
{
	struct sysctllog **log = &sc->sc_sysctllog;
	const struct sysctlnode *rnode, *cnode;
	int error;

	error = sysctl_createv(log, 0, NULL, &rnode, 0, CTLTYPE_NODE,
	    device_xname(sc->sc_dev), SYSCTL_DESCR("bsdnull controls"),
	    NULL, 0, NULL, 0, CTL_HW, CTL_CREATE, CTL_EOL);
	if (error)
		goto bad;
	error = sysctl_createv(log, 0, &rnode, &cnode, CTLFLAG_READWRITE,
	    CTLTYPE_BOOL, "tx_defer",
	    SYSCTL_DESCR("Free sent packets from a workqueue, not at once"),
	    NULL, 0, &sc->sc_txdefer, 0, CTL_CREATE, CTL_EOL);
	if (error)
		goto bad;
	error = sysctl_createv(log, 0, &rnode, &cnode, CTLFLAG_READONLY,
	    CTLTYPE_QUAD, "tx_works",
	    SYSCTL_DESCR("Transmit completion works run"),
	    bsdnull_sysctl_txworks, 0, (void *)sc, 0, CTL_CREATE, CTL_EOL);
	if (error)
		goto bad;
	error = sysctl_createv(log, 0, &rnode, &cnode, CTLFLAG_READWRITE,
	    CTLTYPE_INT, "size",
	    SYSCTL_DESCR("Length of received frames in bytes (14..2048)"),
	    bsdnull_sysctl_size, 0, (void *)sc, 0, CTL_CREATE, CTL_EOL);
	if (error)
		goto bad;
	return;
bad:
	aprint_error_dev(sc->sc_dev, "unable to create sysctl nodes: %d\n",
	    error);
	sysctl_teardown(log);
}

static int
bsdnull_sysctl_txworks(SYSCTLFN_ARGS)
{
	struct sysctlnode node = *rnode;
	struct bsdnull_softc *sc = node.sysctl_data;
	uint64_t works = atomic_load_relaxed(&sc->sc_txworks);

	node.sysctl_data = &works;
	return sysctl_lookup(SYSCTLFN_CALL(&node));
}

static int
bsdnull_sysctl_size(SYSCTLFN_ARGS)
{
	struct sysctlnode node = *rnode;
	struct bsdnull_softc *sc = node.sysctl_data;
	int size = atomic_load_relaxed(&sc->sc_size);
	int error;

	node.sysctl_data = &size;
	error = sysctl_lookup(SYSCTLFN_CALL(&node));
	if (error || newp == NULL)
		return error;
	if (size < BSDNULL_MINSIZE || size > MCLBYTES)
		return EINVAL;
	atomic_store_relaxed(&sc->sc_size, size);
	return 0;
}
