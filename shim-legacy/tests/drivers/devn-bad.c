/*
 * devn-bad -- a deliberately faulty legacy driver for the shim's fault
 * containment tests.  It is the null device (frames from lf_poll, transmit
 * completes at once) until `fault=` picks one misbehaviour:
 *
 *	init	le_init fails (EIO)
 *	start	lf_start fails (EIO)
 *	txerr	every transmit fails (EIO, not taken)
 *	txbusy	every transmit says "no room" (EBUSY): a stalled transmitter
 *	txhold	transmits are taken and never completed, not even by stop
 *	rxleak	every received packet is allocated and then kept, never
 *		handed up nor freed
 *	rxbad	hands up packets the stack never gave it, frees twice, and
 *		completes a transmit twice
 *	ctlerr	every control call fails (EIO), link reads fail too
 *	reset	ABI 1.2's lf_reset fails (EIO); the device still starts
 *	txclobber each transmit overwrites the packet's lp_done (with a
 *		decoy that completes nothing) and lp_owner[1] before it
 *		completes through the lp_done it was lent with: the shim must
 *		rewrite both when it lends the slot again.  A lend that still
 *		shows the scribbles counts in st_oerrors (GET_STATS)
 *
 * and three of ABI 1.1's lf_transmit_burst (only these set it):
 *
 *	bursterr	every burst fails (EIO): nothing taken
 *	burstover	completes the whole burst and says it took none
 *	burstpart	takes and completes the first half of each burst
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pktkit/legacy_abi.h>

#define BAD_HOLD_MAX	4096

enum bad_fault {
	BAD_NONE, BAD_INIT, BAD_START, BAD_TXERR, BAD_TXBUSY, BAD_TXHOLD,
	BAD_RXLEAK, BAD_RXBAD, BAD_CTLERR, BAD_RESET, BAD_TXCLOBBER, BAD_BURSTERR,
	BAD_BURSTOVER, BAD_BURSTPART,
};

struct pktkit_lg_dev {
	const struct pktkit_lg_services	*sc_svc;
	struct pktkit_lg_stack		*sc_stack;
	enum bad_fault			sc_fault;
	uint32_t			sc_running;
	uint32_t			sc_nheld;
	uint64_t			sc_stale;	/* txclobber: scribbles seen */
	struct pktkit_lg_packet		*sc_held[BAD_HOLD_MAX];
	struct pktkit_lg_packet		sc_fake;	/* never the stack's */
};

static int
bad_start(struct pktkit_lg_dev *sc)
{
	if (sc->sc_fault == BAD_START)
		return PKTKIT_LG_EIO;
	sc->sc_running = 1;
	return 0;
}

/* ABI 1.2: only fault=reset fails it. */
static int
bad_reset(struct pktkit_lg_dev *sc)
{
	return sc->sc_fault == BAD_RESET ? PKTKIT_LG_EIO : 0;
}

static void
bad_stop(struct pktkit_lg_dev *sc)
{
	/* Keeps whatever it holds: the shim has to reclaim it. */
	sc->sc_running = 0;
}

static void
bad_hold(struct pktkit_lg_dev *sc, struct pktkit_lg_packet *pkt)
{
	if (sc->sc_nheld < BAD_HOLD_MAX)
		sc->sc_held[sc->sc_nheld++] = pkt;
}

/* txclobber's lp_done: completes nothing (the packet stays lent). */
static void
bad_decoy_done(struct pktkit_lg_packet *pkt, int status)
{
	(void)pkt;
	(void)status;
}

static int
bad_transmit(struct pktkit_lg_dev *sc, struct pktkit_lg_packet *pkt)
{
	pktkit_lg_done_fn *done;

	switch (sc->sc_fault) {
	case BAD_TXERR:
		return PKTKIT_LG_EIO;
	case BAD_TXBUSY:
		return PKTKIT_LG_EBUSY;
	case BAD_TXHOLD:
		bad_hold(sc, pkt);
		return 0;
	case BAD_RXBAD:
		pkt->lp_done(pkt, 0);
		pkt->lp_done(pkt, 0);	/* a second completion */
		pkt->lp_done(&sc->sc_fake, 0);	/* and one of a stranger */
		return 0;
	case BAD_TXCLOBBER:
		done = pkt->lp_done;	/* as lent: must be the stack's again */
		if (done == bad_decoy_done || pkt->lp_owner[1] != 0)
			sc->sc_stale++;
		pkt->lp_done = bad_decoy_done;
		pkt->lp_owner[1] = 0xbad;
		done(pkt, 0);
		return 0;
	default:
		pkt->lp_done(pkt, 0);
		return 0;
	}
}

static int
bad_poll(struct pktkit_lg_dev *sc, uint32_t budget)
{
	const struct pktkit_lg_services *svc = sc->sc_svc;
	struct pktkit_lg_packet *pkt;
	uint32_t n;

	if (!sc->sc_running)
		return 0;
	for (n = 0; n < budget; n++) {
		pkt = svc->ls_pkt_alloc(sc->sc_stack, 60);
		if (pkt == NULL)
			break;
		pkt->lp_bufs->lb_frags[0].lf_len = 60;
		pkt->lp_len = 60;
		switch (sc->sc_fault) {
		case BAD_RXLEAK:
			bad_hold(sc, pkt);
			break;
		case BAD_RXBAD:
			svc->ls_rx(sc->sc_stack, &sc->sc_fake);
			svc->ls_pkt_free(sc->sc_stack, pkt);
			svc->ls_pkt_free(sc->sc_stack, pkt);
			break;
		default:
			svc->ls_rx(sc->sc_stack, pkt);
			break;
		}
	}
	return (int)n;
}

static int
bad_control(struct pktkit_lg_dev *sc, uint32_t cmd, void *arg)
{
	static const uint8_t mac[6] = { 0x02, 0xba, 0xd0, 0, 0, 1 };

	if (sc->sc_fault == BAD_CTLERR)
		return PKTKIT_LG_EIO;
	switch (cmd) {
	case PKTKIT_LG_CTL_GET_STATS: {
		struct pktkit_lg_stats *st = arg;
		memset(st, 0, sizeof(*st));
		st->st_oerrors = sc->sc_stale;
		return 0;
	}
	case PKTKIT_LG_CTL_GET_LINK: {
		struct pktkit_lg_link *l = arg;
		l->ll_up = 1;
		l->ll_speed_mbps = 100;
		l->ll_full_duplex = 1;
		return 0;
	}
	case PKTKIT_LG_CTL_GET_MAC:
		memcpy(arg, mac, 6);
		return 0;
	default:
		return PKTKIT_LG_ENOTSUP;
	}
}

static const struct pktkit_lg_funcs bad_funcs = {
	.lf_start = bad_start,
	.lf_stop = bad_stop,
	.lf_transmit = bad_transmit,
	.lf_control = bad_control,
	.lf_poll = bad_poll,
	.lf_reset = bad_reset,
};

static int
bad_transmit_burst(struct pktkit_lg_dev *sc,
    struct pktkit_lg_packet *const *pkts, uint32_t n)
{
	switch (sc->sc_fault) {
	case BAD_BURSTERR:
		return PKTKIT_LG_EIO;
	case BAD_BURSTOVER:
		sc->sc_svc->ls_tx_done_burst(sc->sc_stack, pkts, n, 0);
		return 0;
	default:
		sc->sc_svc->ls_tx_done_burst(sc->sc_stack, pkts, n / 2, 0);
		return (int)(n / 2);
	}
}

static const struct pktkit_lg_funcs bad_burst_funcs = {
	.lf_start = bad_start,
	.lf_stop = bad_stop,
	.lf_transmit = bad_transmit,
	.lf_control = bad_control,
	.lf_poll = bad_poll,
	.lf_transmit_burst = bad_transmit_burst,
	.lf_reset = bad_reset,
};

static int
bad_init(const struct pktkit_lg_services *svc, struct pktkit_lg_stack *stack,
    struct pktkit_lg_dev **devp, const struct pktkit_lg_funcs **funcsp,
    struct pktkit_lg_devinfo *info)
{
	static const struct { const char *name; enum bad_fault fault; } faults[] = {
		{ "none", BAD_NONE }, { "init", BAD_INIT }, { "start", BAD_START },
		{ "txerr", BAD_TXERR }, { "txbusy", BAD_TXBUSY },
		{ "txhold", BAD_TXHOLD }, { "rxleak", BAD_RXLEAK },
		{ "rxbad", BAD_RXBAD }, { "ctlerr", BAD_CTLERR },
		{ "reset", BAD_RESET }, { "txclobber", BAD_TXCLOBBER },
		{ "bursterr", BAD_BURSTERR }, { "burstover", BAD_BURSTOVER },
		{ "burstpart", BAD_BURSTPART },
	};
	struct pktkit_lg_dev *sc;
	const char *opt;
	size_t i;

	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return PKTKIT_LG_ENOMEM;
	sc->sc_svc = svc;
	sc->sc_stack = stack;
	opt = svc->ls_option(stack, "fault");
	if (opt != NULL) {
		for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
			if (strcmp(opt, faults[i].name) == 0)
				break;
		if (i == sizeof(faults) / sizeof(faults[0])) {
			free(sc);
			return PKTKIT_LG_EINVAL;
		}
		sc->sc_fault = faults[i].fault;
	}
	if (sc->sc_fault == BAD_INIT) {
		free(sc);
		return PKTKIT_LG_EIO;
	}
	info->di_max_mtu = 1500;
	info->di_mcast_slots = 0;
	info->di_promisc = 1;
	*devp = sc;
	*funcsp = sc->sc_fault >= BAD_BURSTERR ? &bad_burst_funcs : &bad_funcs;
	return 0;
}

static void
bad_shutdown(struct pktkit_lg_dev *sc)
{
	free(sc);
}

static const struct pktkit_lg_option bad_options[] = {
	{ "fault", "none, init, start, txerr, txbusy, txhold, rxleak, rxbad, ctlerr, reset, "
	    "txclobber, "
	    "bursterr, burstover, burstpart", 0, 0 },
	{ NULL, NULL, 0, 0 },
};

PKTKIT_LG_EXPORT const struct pktkit_lg_entry pktkit_legacy_entry = {
	.le_abi_major = PKTKIT_LG_ABI_MAJOR,
	.le_abi_minor = PKTKIT_LG_ABI_MINOR,
	.le_name = "devn-bad",
	.le_prefix = "en",
	.le_description = "deliberately faulty driver for containment tests",
	.le_options = bad_options,
	.le_init = bad_init,
	.le_shutdown = bad_shutdown,
};
