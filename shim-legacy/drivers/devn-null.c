/*
 * devn-null -- the legacy-ABI null device: an endless receive source and
 * a transmit sink, with net_null's semantics (native/drivers/null), for
 * measuring what the shim costs.
 *
 * Receive (lf_poll): every call hands up `budget` frames of `size` bytes.
 * By default each frame is a stack packet (ls_pkt_alloc(size)) whose one
 * fragment is left as the stack gave it: the shim turns it into an mbuf
 * without copying.  rxmode=copy instead describes each frame with a bare
 * packet whose `frags` fragments point at the driver's own memory, which
 * the shim must copy (the slow path, for tests).
 * Transmit: counts the frame and completes it at once.
 *
 * Built against ABI 1.1 it moves bursts: lf_transmit_burst completes a
 * whole burst with one ls_tx_done_burst, and lf_poll takes packets with
 * ls_pkt_alloc_burst and hands them up with ls_rx_burst, when the shim's
 * table has them (PKTKIT_LG_SVC_HAS); otherwise, and when built against
 * the 1.0 header (legacy_abi_v1.h), it makes one call per frame.
 * Built against ABI 1.2 it also has lf_reset (its counters start from 0).
 * Built against ABI 1.3 it takes the fastest path it is offered: flat
 * descriptors (ls_rx_desc_alloc and ls_rx_desc on receive,
 * lf_transmit_desc completed with one ls_tx_desc_done); rxmode=copy
 * stays on packets (descriptors carry only the stack's buffers).
 *
 * Options: size (14..2048, default 64), mac, rxmode (zerocopy|copy),
 * frags (1..16, copy mode only, default 1).
 */
#include <stdlib.h>
#include <string.h>

#include <pktkit/legacy_abi.h>

#define NULL_MIN_SIZE	14
#define NULL_MAX_SIZE	2048
#define NULL_MAX_MTU	1500
#define NULL_BURST	64	/* packets per burst service call */

struct pktkit_lg_dev {
	const struct pktkit_lg_services	*sc_svc;
	struct pktkit_lg_stack		*sc_stack;
	uint32_t			sc_size;
	uint32_t			sc_copy;	/* rxmode=copy */
	uint32_t			sc_frags;
	uint32_t			sc_running;
	uint32_t			sc_promisc;
	uint32_t			sc_allmulti;
	uint32_t			sc_mtu;
	uint32_t			sc_burst;	/* 1.1 burst services */
	uint32_t			sc_desc;	/* 1.3 descriptor services */
	uint8_t				sc_mac[6];
	struct pktkit_lg_stats		sc_stats;
	uint8_t				sc_frame[NULL_MAX_SIZE];
};

static int	null_init(const struct pktkit_lg_services *,
		    struct pktkit_lg_stack *, struct pktkit_lg_dev **,
		    const struct pktkit_lg_funcs **, struct pktkit_lg_devinfo *);
static void	null_shutdown(struct pktkit_lg_dev *);
static int	null_start(struct pktkit_lg_dev *);
static void	null_stop(struct pktkit_lg_dev *);
static int	null_transmit(struct pktkit_lg_dev *, struct pktkit_lg_packet *);
static int	null_control(struct pktkit_lg_dev *, uint32_t, void *);
static int	null_poll(struct pktkit_lg_dev *, uint32_t);
#if PKTKIT_LG_ABI_MINOR >= 1
static int	null_transmit_burst(struct pktkit_lg_dev *,
		    struct pktkit_lg_packet *const *, uint32_t);
#endif
#if PKTKIT_LG_ABI_MINOR >= 2
static int	null_reset(struct pktkit_lg_dev *);
#endif
#if PKTKIT_LG_ABI_MINOR >= 3
static int	null_transmit_desc(struct pktkit_lg_dev *,
		    const struct pktkit_lg_desc *, uint32_t);
#endif

static const struct pktkit_lg_funcs null_funcs = {
	.lf_start = null_start,
	.lf_stop = null_stop,
	.lf_transmit = null_transmit,
	.lf_control = null_control,
	.lf_poll = null_poll,
#if PKTKIT_LG_ABI_MINOR >= 1
	.lf_transmit_burst = null_transmit_burst,
#endif
#if PKTKIT_LG_ABI_MINOR >= 2
	.lf_reset = null_reset,
#endif
#if PKTKIT_LG_ABI_MINOR >= 3
	.lf_transmit_desc = null_transmit_desc,
#endif
};

static const struct pktkit_lg_option null_options[] = {
	{ "size", "length of received frames (14..2048, default 64)", 0, 0 },
	{ "mac", "station address xx:xx:xx:xx:xx:xx", 0, 0 },
	{ "rxmode", "zerocopy (default) or copy (frames in driver memory)", 0, 0 },
	{ "frags", "fragments per frame in copy mode (1..16, default 1)", 0, 0 },
	{ NULL, NULL, 0, 0 },
};

PKTKIT_LG_EXPORT const struct pktkit_lg_entry pktkit_legacy_entry = {
	.le_abi_major = PKTKIT_LG_ABI_MAJOR,
	.le_abi_minor = PKTKIT_LG_ABI_MINOR,
	.le_name = "devn-null",
	.le_prefix = "en",
	.le_description = "legacy null device: endless rx source, tx sink",
	.le_options = null_options,
	.le_init = null_init,
	.le_shutdown = null_shutdown,
};

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0')
		return PKTKIT_LG_EINVAL;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v < lo || v > hi)
		return PKTKIT_LG_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int i;
	char *end;

	for (i = 0; i < 6; i++) {
		unsigned long v = strtoul(s, &end, 16);
		if (end == s || v > 0xff || (i < 5 && *end != ':') ||
		    (i == 5 && *end != '\0'))
			return PKTKIT_LG_EINVAL;
		mac[i] = (uint8_t)v;
		s = end + 1;
	}
	return 0;
}

/* The received frame (copy mode): broadcast destination, our source. */
static void
null_make_frame(struct pktkit_lg_dev *sc)
{
	uint32_t i;

	memset(sc->sc_frame, 0xff, 6);
	memcpy(sc->sc_frame + 6, sc->sc_mac, 6);
	for (i = 12; i < NULL_MAX_SIZE; i++)
		sc->sc_frame[i] = (uint8_t)i;
}

static int
null_init(const struct pktkit_lg_services *svc, struct pktkit_lg_stack *stack,
    struct pktkit_lg_dev **devp, const struct pktkit_lg_funcs **funcsp,
    struct pktkit_lg_devinfo *info)
{
	static const uint8_t default_mac[6] = { 0x02, 0x65, 0x6e, 0, 0, 1 };
	struct pktkit_lg_dev *sc;
	const char *opt;

	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return PKTKIT_LG_ENOMEM;
	sc->sc_svc = svc;
	sc->sc_stack = stack;
	sc->sc_size = 64;
	sc->sc_frags = 1;
	sc->sc_mtu = NULL_MAX_MTU;
	memcpy(sc->sc_mac, default_mac, 6);
	if ((opt = svc->ls_option(stack, "size")) != NULL &&
	    parse_u32(opt, NULL_MIN_SIZE, NULL_MAX_SIZE, &sc->sc_size) != 0)
		goto bad;
	if ((opt = svc->ls_option(stack, "frags")) != NULL &&
	    parse_u32(opt, 1, PKTKIT_LG_BARE_FRAGS, &sc->sc_frags) != 0)
		goto bad;
	if ((opt = svc->ls_option(stack, "mac")) != NULL &&
	    parse_mac(opt, sc->sc_mac) != 0)
		goto bad;
	if ((opt = svc->ls_option(stack, "rxmode")) != NULL) {
		if (strcmp(opt, "copy") == 0)
			sc->sc_copy = 1;
		else if (strcmp(opt, "zerocopy") != 0)
			goto bad;
	}
	if (sc->sc_size > svc->ls_pkt_room)
		goto bad;
#if PKTKIT_LG_ABI_MINOR >= 1
	/* A 1.0 shim's table ends before the burst services. */
	sc->sc_burst = PKTKIT_LG_SVC_HAS(svc, ls_pkt_alloc_burst) &&
	    PKTKIT_LG_SVC_HAS(svc, ls_rx_burst) &&
	    PKTKIT_LG_SVC_HAS(svc, ls_tx_done_burst);
#endif
#if PKTKIT_LG_ABI_MINOR >= 3
	/* A 1.2 shim's table ends before the descriptor services. */
	sc->sc_desc = PKTKIT_LG_SVC_HAS(svc, ls_rx_desc_alloc) &&
	    PKTKIT_LG_SVC_HAS(svc, ls_rx_desc) &&
	    PKTKIT_LG_SVC_HAS(svc, ls_tx_desc_done);
#endif
	null_make_frame(sc);

	info->di_max_mtu = NULL_MAX_MTU;
	info->di_mcast_slots = 64;
	info->di_promisc = 1;
	*devp = sc;
	*funcsp = &null_funcs;
	return 0;
bad:
	svc->ls_log(stack, PKTKIT_LG_LOG_ERR, "devn-null: bad option value");
	free(sc);
	return PKTKIT_LG_EINVAL;
}

static void
null_shutdown(struct pktkit_lg_dev *sc)
{
	free(sc);
}

static int
null_start(struct pktkit_lg_dev *sc)
{
	sc->sc_running = 1;
	return 0;
}

static void
null_stop(struct pktkit_lg_dev *sc)
{
	/* Every transmit completes inside null_transmit: nothing is held. */
	sc->sc_running = 0;
}

#if PKTKIT_LG_ABI_MINOR >= 2
/*
 * ABI 1.2: the null "hardware" reset.  Its counters are the device's, so
 * they start again from 0; the settings stay (address, MTU, filters) and
 * the frame it receives is made again from the current address.
 */
static int
null_reset(struct pktkit_lg_dev *sc)
{
	if (sc->sc_running)
		return PKTKIT_LG_EBUSY;	/* the stack resets only when stopped */
	memset(&sc->sc_stats, 0, sizeof(sc->sc_stats));
	null_make_frame(sc);
	return 0;
}
#endif

static int
null_transmit(struct pktkit_lg_dev *sc, struct pktkit_lg_packet *pkt)
{
	sc->sc_stats.st_opackets++;
	sc->sc_stats.st_obytes += pkt->lp_len;
	pkt->lp_done(pkt, 0);
	return 0;
}

#if PKTKIT_LG_ABI_MINOR >= 1
static int
null_transmit_burst(struct pktkit_lg_dev *sc,
    struct pktkit_lg_packet *const *pkts, uint32_t n)
{
	uint32_t i;

	if (!sc->sc_burst) {
		for (i = 0; i < n; i++)
			null_transmit(sc, pkts[i]);
		return (int)n;
	}
	for (i = 0; i < n; i++)
		sc->sc_stats.st_obytes += pkts[i]->lp_len;
	sc->sc_stats.st_opackets += n;
	sc->sc_svc->ls_tx_done_burst(sc->sc_stack, pkts, n, 0);
	return (int)n;
}
#endif

#if PKTKIT_LG_ABI_MINOR >= 3
static int
null_transmit_desc(struct pktkit_lg_dev *sc, const struct pktkit_lg_desc *d,
    uint32_t n)
{
	uint32_t i;

	/* Only a shim with the descriptor services lends descriptors. */
	if (!sc->sc_desc)
		return PKTKIT_LG_EIO;
	for (i = 0; i < n; i++)
		sc->sc_stats.st_obytes += d[i].ld_len;
	sc->sc_stats.st_opackets += n;
	sc->sc_svc->ls_tx_desc_done(sc->sc_stack, d, n, 0);
	return (int)n;
}

/* lf_poll with the 1.3 descriptor services: frames written into the
 * stack's buffers as they come (the payload stays as the pool has it). */
static int
null_poll_desc(struct pktkit_lg_dev *sc, uint32_t budget)
{
	const struct pktkit_lg_services *svc = sc->sc_svc;
	struct pktkit_lg_desc d[NULL_BURST];
	uint32_t done, got, i, n;

	for (done = 0; done < budget; done += got) {
		n = budget - done < NULL_BURST ? budget - done : NULL_BURST;
		got = svc->ls_rx_desc_alloc(sc->sc_stack, sc->sc_size, d, n);
		for (i = 0; i < got; i++)
			d[i].ld_len = sc->sc_size;
		sc->sc_stats.st_ipackets += got;
		sc->sc_stats.st_ibytes += (uint64_t)got * sc->sc_size;
		svc->ls_rx_desc(sc->sc_stack, d, got);
		if (got < n) {
			sc->sc_stats.st_rx_nobuf++;
			return (int)(done + got);
		}
	}
	return (int)done;
}
#endif

/* Describes sc_frame, in sc_frags pieces, with the bare packet pkt. */
static void
null_copy_frame(struct pktkit_lg_dev *sc, struct pktkit_lg_packet *pkt)
{
	struct pktkit_lg_buf *b;
	uint32_t i, off, piece;

	b = pkt->lp_bufs;
	piece = sc->sc_size / sc->sc_frags;
	for (i = 0, off = 0; i < sc->sc_frags; i++) {
		uint32_t len = (i + 1 == sc->sc_frags) ? sc->sc_size - off : piece;
		b->lb_frags[i].lf_ptr = sc->sc_frame + off;
		b->lb_frags[i].lf_busaddr = 0;
		b->lb_frags[i].lf_len = len;
		off += len;
	}
	b->lb_nfrags = sc->sc_frags;
	pkt->lp_len = sc->sc_size;
	pkt->lp_flags = PKTKIT_LG_PKT_BCAST;
}

/* A frame in the stack packet pkt: the payload stays as the pool has it. */
static void
null_zero_copy_frame(struct pktkit_lg_dev *sc, struct pktkit_lg_packet *pkt)
{
	pkt->lp_bufs->lb_frags[0].lf_len = sc->sc_size;
	pkt->lp_len = sc->sc_size;
}

#if PKTKIT_LG_ABI_MINOR >= 1
/* lf_poll with the 1.1 burst services: one allocation and one up-call per
 * NULL_BURST frames. */
static int
null_poll_burst(struct pktkit_lg_dev *sc, uint32_t budget)
{
	const struct pktkit_lg_services *svc = sc->sc_svc;
	struct pktkit_lg_packet *pkts[NULL_BURST];
	uint32_t done, got, i, n;

	for (done = 0; done < budget; done += got) {
		n = budget - done < NULL_BURST ? budget - done : NULL_BURST;
		got = svc->ls_pkt_alloc_burst(sc->sc_stack,
		    sc->sc_copy ? 0 : sc->sc_size, pkts, n);
		for (i = 0; i < got; i++) {
			if (sc->sc_copy)
				null_copy_frame(sc, pkts[i]);
			else
				null_zero_copy_frame(sc, pkts[i]);
		}
		sc->sc_stats.st_ipackets += got;
		sc->sc_stats.st_ibytes += (uint64_t)got * sc->sc_size;
		svc->ls_rx_burst(sc->sc_stack, pkts, got);
		if (got < n) {
			sc->sc_stats.st_rx_nobuf++;
			return (int)(done + got);
		}
	}
	return (int)done;
}
#endif

static int
null_poll(struct pktkit_lg_dev *sc, uint32_t budget)
{
	const struct pktkit_lg_services *svc = sc->sc_svc;
	struct pktkit_lg_packet *pkt;
	uint32_t n;

	if (!sc->sc_running)
		return 0;
#if PKTKIT_LG_ABI_MINOR >= 3
	if (sc->sc_desc && !sc->sc_copy)
		return null_poll_desc(sc, budget);
#endif
#if PKTKIT_LG_ABI_MINOR >= 1
	if (sc->sc_burst)
		return null_poll_burst(sc, budget);
#endif
	for (n = 0; n < budget; n++) {
		pkt = svc->ls_pkt_alloc(sc->sc_stack,
		    sc->sc_copy ? 0 : sc->sc_size);
		if (pkt == NULL) {
			sc->sc_stats.st_rx_nobuf++;
			break;
		}
		if (sc->sc_copy)
			null_copy_frame(sc, pkt);
		else
			null_zero_copy_frame(sc, pkt);
		sc->sc_stats.st_ipackets++;
		sc->sc_stats.st_ibytes += sc->sc_size;
		svc->ls_rx(sc->sc_stack, pkt);
	}
	return (int)n;
}

static int
null_control(struct pktkit_lg_dev *sc, uint32_t cmd, void *arg)
{
	switch (cmd) {
	case PKTKIT_LG_CTL_GET_STATS:
		memcpy(arg, &sc->sc_stats, sizeof(sc->sc_stats));
		return 0;
	case PKTKIT_LG_CTL_GET_LINK: {
		struct pktkit_lg_link *l = arg;
		l->ll_up = 1;
		l->ll_speed_mbps = 10000;
		l->ll_full_duplex = 1;
		return 0;
	}
	case PKTKIT_LG_CTL_GET_MAC:
		memcpy(arg, sc->sc_mac, 6);
		return 0;
	case PKTKIT_LG_CTL_SET_MAC:
		memcpy(sc->sc_mac, arg, 6);
		return 0;
	case PKTKIT_LG_CTL_SET_PROMISC:
		sc->sc_promisc = *(const uint32_t *)arg;
		return 0;
	case PKTKIT_LG_CTL_SET_ALLMULTI:
		sc->sc_allmulti = *(const uint32_t *)arg;
		return 0;
	case PKTKIT_LG_CTL_SET_MULTICAST: {
		const struct pktkit_lg_mcast *m = arg;
		return m->lm_count <= 64 ? 0 : PKTKIT_LG_EINVAL;
	}
	case PKTKIT_LG_CTL_SET_MTU: {
		uint32_t mtu = *(const uint32_t *)arg;
		if (mtu < 68 || mtu > NULL_MAX_MTU)
			return PKTKIT_LG_EINVAL;
		sc->sc_mtu = mtu;
		return 0;
	}
	default:
		return PKTKIT_LG_ENOTSUP;
	}
}
