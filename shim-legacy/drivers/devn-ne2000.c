/*
 * devn-ne2000 -- legacy-ABI driver for NE2000-compatible PCI cards
 * (RTL8029, 10ec:8029; QEMU's ne2k_pci), written from the National
 * Semiconductor DP8390D "NIC Network Interface Controller" datasheet
 * (cited as DP8390D s<section>) and the NE2000 ASIC conventions (data
 * port at 0x10, reset port at 0x1f, 16 KiB of buffer memory at 0x4000,
 * station address PROM at remote address 0).
 *
 * Shape: port I/O on BAR 0 through the stack's services; packets move
 * between host and card buffer memory by remote DMA (DP8390D s10.0,
 * "Remote DMA") through the data port.  The card memory holds one
 * transmit buffer (pages 0x40-0x45) and the receive ring (DP8390D s7.0
 * "Buffer ring") from page 0x46 to the end of buffer memory: 0x7f on a
 * 16 KiB NE2000, 0xbf where the card has 32 KiB (QEMU's ne2k_pci),
 * probed at attach.  Received frames are read straight into
 * stack packets (the shim hands them up without copying); frames to send
 * are gathered into a bounce buffer and written in one remote DMA.
 * Interrupts are INTx: the handler runs the ring, completes the transmit,
 * acknowledges ISR and unmasks.  A 1 s timer times out a transmit the
 * card never finished.  A ring overflow (ISR.OVW) is recovered with the
 * datasheet's procedure (ne_overflow).  Multicast goes through the
 * DP8390's 64-bit hash filter (MAR0-7, ne_mcast_hash), programmed from the
 * stack's group list.  ABI 1.2's lf_reset resets the chip through the
 * NE2000 reset port and reprograms it with the settings it had (ne_reset_dev).
 *
 * The receive ring is small (9 full frames on 16 KiB, 20 on 32 KiB), so
 * the driver reports it (di_rx_frames) and the stack keeps TCP windows on
 * the interface within it.  That matters most under QEMU, whose model
 * (hw/net/ne2000.c) differs from the DP8390 when the ring fills: it never
 * raises OVW but stops taking frames (can_receive false) once less than a
 * full frame fits before BNRY; what the peer sends meanwhile waits in
 * QEMU's net queue, is released only when the peer sends again, newest
 * first, and then dropped wholesale (receive returns -1 into a full ring).
 * And it takes CURR == BNRY for an empty ring, so once a frame ends
 * exactly at BNRY the next one is written over unread frames: that is the
 * "bad receive header" the driver recovers from below.
 *
 * Options: pci=BDF (required).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pktkit/legacy_abi.h>

/* DP8390D s4.0 register map, page 0 (read / write names). */
#define NE_CR		0x00	/* command */
#define NE_PSTART	0x01	/* w: receive ring start page */
#define NE_PSTOP	0x02	/* w: receive ring stop page */
#define NE_BNRY		0x03	/* boundary: last page the host read */
#define NE_TPSR		0x04	/* w: transmit page start */
#define NE_TSR		0x04	/* r: transmit status */
#define NE_TBCR0	0x05	/* w: transmit byte count */
#define NE_TBCR1	0x06
#define NE_ISR		0x07	/* interrupt status (write 1 to clear) */
#define NE_RSAR0	0x08	/* w: remote start address */
#define NE_RSAR1	0x09
#define NE_RBCR0	0x0a	/* w: remote byte count */
#define NE_RBCR1	0x0b
#define NE_RCR		0x0c	/* w: receive configuration */
#define NE_TCR		0x0d	/* w: transmit configuration */
#define NE_DCR		0x0e	/* w: data configuration */
#define NE_IMR		0x0f	/* w: interrupt mask */
/* Page 1. */
#define NE_PAR0		0x01	/* physical address, 6 registers */
#define NE_CURR		0x07	/* current (next free) receive page */
#define NE_MAR0		0x08	/* multicast hash, 8 registers */
/* NE2000 ASIC. */
#define NE_DATA		0x10	/* remote DMA data port */
#define NE_RESET	0x1f	/* read to reset */

/* CR bits (DP8390D s4.1). */
#define CR_STP		0x01
#define CR_STA		0x02
#define CR_TXP		0x04
#define CR_RD_READ	0x08
#define CR_RD_WRITE	0x10
#define CR_RD_ABORT	0x20	/* abort/complete remote DMA */
#define CR_PAGE0	0x00
#define CR_PAGE1	0x40
/* ISR/IMR bits (DP8390D s4.1). */
#define ISR_PRX		0x01	/* packet received */
#define ISR_PTX		0x02	/* packet transmitted */
#define ISR_RXE		0x04	/* receive error */
#define ISR_TXE		0x08	/* transmit error */
#define ISR_OVW		0x10	/* ring overwrite warning */
#define ISR_CNT		0x20	/* tally counter overflow */
#define ISR_RDC		0x40	/* remote DMA complete */
#define ISR_RST		0x80	/* reset status */
/* RCR bits. */
#define RCR_AB		0x04	/* accept broadcast */
#define RCR_AM		0x08	/* accept multicast (hashed) */
#define RCR_PRO		0x10	/* promiscuous */
#define RCR_MON		0x20	/* monitor: check, do not buffer */
/* TCR bits. */
#define TCR_LOOP_INT	0x02	/* internal loopback */
/* DCR: word transfers, normal operation (not loopback), FIFO 8 bytes. */
#define DCR_WORD_NORMAL	0x49
/* Receive header status (RSR) bit. */
#define RSR_PRX		0x01

/* Buffer memory plan (pages of 256 bytes). */
#define NE_PAGE		256
#define NE_TX_PAGE	0x40	/* 6 pages: one full frame */
#define NE_RX_START	0x46
#define NE_RX_STOP_16K	0x80	/* 16 KiB of buffer memory (NE2000) */
#define NE_RX_STOP_32K	0xc0	/* 32 KiB (some clones; QEMU's ne2k_pci) */

#define NE_MIN_FRAME	60
#define NE_MAX_FRAME	1514
#define NE_RDC_SPINS	10000
#define NE_TX_TIMEOUT_TICKS 2
/*
 * Groups the stack may program before it asks for all-multicast instead:
 * each group sets one of the 64 hash bits, so 16 groups leave at least
 * three quarters of unrelated groups filtered out by the chip.
 */
#define NE_MCAST_SLOTS	16
/* CRC-32 of IEEE 802.3 (s3.2.9), x^32 + x^26 + ... + 1, MSB-first form. */
#define NE_CRC32_POLY	0x04c11db7u

#define NE_VENDOR	0x10ec
#define NE_DEVICE	0x8029

struct pktkit_lg_dev {
	const struct pktkit_lg_services	*sc_svc;
	struct pktkit_lg_stack		*sc_stack;
	int				sc_pci;
	int				sc_timer;
	uint32_t			sc_running;
	uint32_t			sc_rcr;
	uint32_t			sc_allmulti;	/* MAR all ones */
	uint8_t				sc_mar[8];	/* hash of the group list */
	uint8_t				sc_rx_stop;	/* ring end page */
	uint8_t				sc_mac[6];
	struct pktkit_lg_packet		*sc_tx_pkt;	/* in flight, or NULL */
	uint32_t			sc_tx_ticks;
	struct pktkit_lg_stats		sc_stats;
	uint8_t				sc_bounce[NE_MAX_FRAME + 2];
};

/* Register access through the stack's port I/O on BAR 0. */
static inline uint8_t
ne_in(struct pktkit_lg_dev *sc, uint32_t reg)
{
	return (uint8_t)sc->sc_svc->ls_io_in(sc->sc_stack, sc->sc_pci, 0, reg, 1);
}

static inline void
ne_out(struct pktkit_lg_dev *sc, uint32_t reg, uint8_t v)
{
	sc->sc_svc->ls_io_out(sc->sc_stack, sc->sc_pci, 0, reg, 1, v);
}

static void
ne_log(struct pktkit_lg_dev *sc, int level, const char *msg)
{
	sc->sc_svc->ls_log(sc->sc_stack, level, msg);
}

/*
 * The multicast hash bit of a group address (DP8390D s8.0 "Multicast
 * address filter"): the chip runs the destination address through the
 * CRC generator of the Ethernet FCS (IEEE 802.3 s3.2.9: register preset
 * to all ones, each byte least significant bit first, as it comes off the
 * wire) and latches the six most significant bits of the register, not
 * complemented.  Of those, the top three pick MAR0-7 and the low three
 * the bit in it: the result indexes MAR bit (hash % 8) of MAR(hash / 8).
 */
static unsigned int
ne_mcast_hash(const uint8_t addr[6])
{
	uint32_t crc = 0xffffffffu;
	unsigned int i, bit;

	for (i = 0; i < 6; i++) {
		for (bit = 0; bit < 8; bit++) {
			uint32_t in = (addr[i] >> bit) & 1u;
			uint32_t feedback = (crc >> 31) ^ in;

			crc <<= 1;
			if (feedback)
				crc ^= NE_CRC32_POLY;
		}
	}
	return crc >> 26;
}

/* The hash filter for a group list: one bit per group (shared when two
 * groups collide). */
static void
ne_mcast_filter(const uint8_t (*addrs)[6], uint32_t count, uint8_t mar[8])
{
	uint32_t i;
	unsigned int h;

	memset(mar, 0, 8);
	for (i = 0; i < count; i++) {
		h = ne_mcast_hash(addrs[i]);
		mar[h >> 3] |= (uint8_t)(1u << (h & 7));
	}
}

#ifdef NE_TEST_HOOKS
/* Host tests (tests/ne2000.rs) reach the filter through these; the lab's
 * driver is built without them. */
PKTKIT_LG_EXPORT unsigned int
ne_test_mcast_hash(const uint8_t addr[6])
{
	return ne_mcast_hash(addr);
}

PKTKIT_LG_EXPORT void
ne_test_mcast_filter(const uint8_t (*addrs)[6], uint32_t count,
    uint8_t mar[8])
{
	ne_mcast_filter(addrs, count, mar);
}
#endif

/*
 * Remote DMA set-up (DP8390D s10.0): abort any transfer, clear RDC, load
 * the byte count and the start address, then give the direction.
 */
static void
ne_rdma_setup(struct pktkit_lg_dev *sc, uint32_t addr, uint32_t count,
    uint8_t dir)
{
	/* Keep the controller's run state: a stopped controller must not
	 * start receiving into an unprogrammed ring (e.g. at PROM read). */
	uint8_t run = sc->sc_running ? CR_STA : CR_STP;

	ne_out(sc, NE_CR, CR_PAGE0 | run | CR_RD_ABORT);
	ne_out(sc, NE_ISR, ISR_RDC);
	ne_out(sc, NE_RBCR0, count & 0xff);
	ne_out(sc, NE_RBCR1, (count >> 8) & 0xff);
	ne_out(sc, NE_RSAR0, addr & 0xff);
	ne_out(sc, NE_RSAR1, (addr >> 8) & 0xff);
	ne_out(sc, NE_CR, CR_PAGE0 | run | dir);
}

/* Waits for remote DMA complete and acknowledges it; 0 or EIO. */
static int
ne_rdma_wait(struct pktkit_lg_dev *sc)
{
	int i;

	for (i = 0; i < NE_RDC_SPINS; i++) {
		if (ne_in(sc, NE_ISR) & ISR_RDC) {
			ne_out(sc, NE_ISR, ISR_RDC);
			return 0;
		}
	}
	ne_log(sc, PKTKIT_LG_LOG_WARN, "ne2000: remote DMA did not complete");
	return PKTKIT_LG_EIO;
}

/*
 * Moves `count` bytes (even) through the data port: dwords, then a word
 * tail.  The card counts the remote bytes itself (RBCR).
 */
static void
ne_data_in(struct pktkit_lg_dev *sc, uint8_t *buf, uint32_t count)
{
	const struct pktkit_lg_services *svc = sc->sc_svc;
	uint32_t dwords = count / 4;

	if (dwords > 0)
		svc->ls_io_in_rep(sc->sc_stack, sc->sc_pci, 0, NE_DATA, 4, buf,
		    dwords);
	if (count & 2)
		svc->ls_io_in_rep(sc->sc_stack, sc->sc_pci, 0, NE_DATA, 2,
		    buf + dwords * 4, 1);
}

static void
ne_data_out(struct pktkit_lg_dev *sc, const uint8_t *buf, uint32_t count)
{
	const struct pktkit_lg_services *svc = sc->sc_svc;
	uint32_t dwords = count / 4;

	if (dwords > 0)
		svc->ls_io_out_rep(sc->sc_stack, sc->sc_pci, 0, NE_DATA, 4, buf,
		    dwords);
	if (count & 2)
		svc->ls_io_out_rep(sc->sc_stack, sc->sc_pci, 0, NE_DATA, 2,
		    buf + dwords * 4, 1);
}

/* Reads card memory [addr, addr+count) into buf (count rounded up even). */
static void
ne_read_mem(struct pktkit_lg_dev *sc, uint32_t addr, uint8_t *buf,
    uint32_t count)
{
	count = (count + 1) & ~1u;
	ne_rdma_setup(sc, addr, count, CR_RD_READ);
	ne_data_in(sc, buf, count);
	(void)ne_rdma_wait(sc);
}

/* Writes buf to card memory at addr (count rounded up even). */
static int
ne_write_mem(struct pktkit_lg_dev *sc, uint32_t addr, const uint8_t *buf,
    uint32_t count)
{
	count = (count + 1) & ~1u;
	ne_rdma_setup(sc, addr, count, CR_RD_WRITE);
	ne_data_out(sc, buf, count);
	return ne_rdma_wait(sc);
}

/*
 * Buffer memory size: an NE2000 has 16 KiB at 0x4000, some clones (and
 * QEMU's ne2k_pci) 32 KiB.  Distinct patterns at 0x4000 and 0x8000 both
 * read back only when the upper 16 KiB exists and does not alias.
 */
static uint8_t
ne_probe_ring_stop(struct pktkit_lg_dev *sc)
{
	static const uint8_t lo[4] = { 0x5a, 0xa5, 0x12, 0x34 };
	static const uint8_t hi[4] = { 0xc3, 0x3c, 0x56, 0x78 };
	uint8_t r[4];

	if (ne_write_mem(sc, 0x4000, lo, 4) != 0 ||
	    ne_write_mem(sc, 0x8000, hi, 4) != 0)
		return NE_RX_STOP_16K;
	ne_read_mem(sc, 0x8000, r, 4);
	if (memcmp(r, hi, 4) != 0)
		return NE_RX_STOP_16K;
	ne_read_mem(sc, 0x4000, r, 4);
	if (memcmp(r, lo, 4) != 0)
		return NE_RX_STOP_16K;
	return NE_RX_STOP_32K;
}

/* NE2000 reset: a read of the reset port, then ISR.RST (DP8390D s4.1). */
static int
ne_reset(struct pktkit_lg_dev *sc)
{
	int i;

	(void)ne_in(sc, NE_RESET);
	ne_out(sc, NE_RESET, 0);
	for (i = 0; i < 1000; i++) {
		if (ne_in(sc, NE_ISR) & ISR_RST) {
			ne_out(sc, NE_ISR, 0xff);
			return 0;
		}
		sc->sc_svc->ls_delay_us(sc->sc_stack, 100);
	}
	return PKTKIT_LG_EIO;
}

/* Writes MAR0-7 (the controller on page 1): the hash filter, or all ones
 * for all-multicast. */
static void
ne_write_mar(struct pktkit_lg_dev *sc)
{
	int i;

	for (i = 0; i < 8; i++)
		ne_out(sc, NE_MAR0 + i, sc->sc_allmulti ? 0xff : sc->sc_mar[i]);
}

/*
 * DP8390D s11.0 "Initialization procedure", steps 1-9: everything but
 * the final start, leaving the controller stopped.
 */
static void
ne_init_regs(struct pktkit_lg_dev *sc)
{
	int i;

	ne_out(sc, NE_CR, CR_PAGE0 | CR_STP | CR_RD_ABORT);	/* 1 */
	ne_out(sc, NE_DCR, DCR_WORD_NORMAL);			/* 2 */
	ne_out(sc, NE_RBCR0, 0);				/* 3 */
	ne_out(sc, NE_RBCR1, 0);
	ne_out(sc, NE_RCR, RCR_MON);				/* 4 */
	ne_out(sc, NE_TCR, TCR_LOOP_INT);			/* 5 */
	ne_out(sc, NE_PSTART, NE_RX_START);			/* 6 */
	ne_out(sc, NE_PSTOP, sc->sc_rx_stop);
	ne_out(sc, NE_BNRY, NE_RX_START);
	ne_out(sc, NE_ISR, 0xff);				/* 7 */
	ne_out(sc, NE_IMR, 0);					/* 8 */
	ne_out(sc, NE_CR, CR_PAGE1 | CR_STP | CR_RD_ABORT);	/* 9 */
	for (i = 0; i < 6; i++)
		ne_out(sc, NE_PAR0 + i, sc->sc_mac[i]);
	ne_write_mar(sc);
	ne_out(sc, NE_CURR, NE_RX_START + 1);
	ne_out(sc, NE_CR, CR_PAGE0 | CR_STP | CR_RD_ABORT);
}

/* Loads MAR0-7 (page 1) on the running or stopped controller. */
static void
ne_load_mar(struct pktkit_lg_dev *sc)
{
	uint8_t run = sc->sc_running ? CR_STA : CR_STP;

	ne_out(sc, NE_CR, CR_PAGE1 | run | CR_RD_ABORT);
	ne_write_mar(sc);
	ne_out(sc, NE_CR, CR_PAGE0 | run | CR_RD_ABORT);
}

/* The station address from the PROM at remote address 0: in word mode
 * each PROM byte reads as the low byte of a word. */
static void
ne_read_prom(struct pktkit_lg_dev *sc)
{
	uint8_t prom[32];
	int i;

	ne_out(sc, NE_DCR, DCR_WORD_NORMAL);
	ne_read_mem(sc, 0, prom, sizeof(prom));
	for (i = 0; i < 6; i++)
		sc->sc_mac[i] = prom[2 * i];
}

static void
ne_tx_complete(struct pktkit_lg_dev *sc, int status)
{
	struct pktkit_lg_packet *pkt = sc->sc_tx_pkt;

	if (pkt == NULL)
		return;
	sc->sc_tx_pkt = NULL;
	sc->sc_tx_ticks = 0;
	if (status == 0) {
		sc->sc_stats.st_opackets++;
		sc->sc_stats.st_obytes += pkt->lp_len;
	} else {
		sc->sc_stats.st_oerrors++;
	}
	pkt->lp_done(pkt, status);
}

/* The page after `page` in the receive ring. */
static uint8_t
ne_ring_next(const struct pktkit_lg_dev *sc, uint8_t page)
{
	return page + 1 >= sc->sc_rx_stop ? NE_RX_START : page + 1;
}

/*
 * Runs the receive ring (DP8390D s7.0): frames lie between BNRY+1 and
 * CURR, each behind a 4-byte header {status, next page, count lo, hi}
 * whose count includes the header.
 */
static void
ne_rx(struct pktkit_lg_dev *sc)
{
	const struct pktkit_lg_services *svc = sc->sc_svc;
	struct pktkit_lg_packet *pkt;
	uint8_t hdr[4], curr, page;
	uint32_t len, addr, first, room;
	uint8_t *data;
	int budget;

	for (budget = 0; budget < 128; budget++) {
		ne_out(sc, NE_CR, CR_PAGE1 | CR_STA | CR_RD_ABORT);
		curr = ne_in(sc, NE_CURR);
		ne_out(sc, NE_CR, CR_PAGE0 | CR_STA | CR_RD_ABORT);
		page = ne_ring_next(sc, ne_in(sc, NE_BNRY));
		if (page == curr)
			break;
		ne_read_mem(sc, (uint32_t)page * NE_PAGE, hdr, sizeof(hdr));
		len = ((uint32_t)hdr[2] | (uint32_t)hdr[3] << 8) - 4;
		if (hdr[1] < NE_RX_START || hdr[1] >= sc->sc_rx_stop ||
		    len < 14 || len > NE_MAX_FRAME + 4 ||
		    (hdr[0] & RSR_PRX) == 0) {
			/* A corrupt ring (under QEMU: a frame written over
			 * unread ones, see the top): drop everything up to
			 * CURR. */
			char msg[96];

			sc->sc_stats.st_ierrors++;
			snprintf(msg, sizeof(msg),
			    "ne2000: bad receive header %02x %02x %02x%02x at "
			    "page %02x (CURR %02x), ring reset", hdr[0], hdr[1],
			    hdr[3], hdr[2], page, curr);
			ne_log(sc, PKTKIT_LG_LOG_WARN, msg);
			ne_out(sc, NE_BNRY,
			    curr == NE_RX_START ? sc->sc_rx_stop - 1 : curr - 1);
			break;
		}
		room = (len + 3) & ~3u;
		pkt = svc->ls_pkt_alloc(sc->sc_stack, room);
		if (pkt == NULL) {
			sc->sc_stats.st_rx_nobuf++;
		} else {
			data = pkt->lp_bufs->lb_frags[0].lf_ptr;
			addr = (uint32_t)page * NE_PAGE + 4;
			/* The frame may wrap at PSTOP back to PSTART. */
			first = (uint32_t)sc->sc_rx_stop * NE_PAGE - addr;
			if (len <= first) {
				ne_read_mem(sc, addr, data, len);
			} else {
				ne_read_mem(sc, addr, data, first);
				ne_read_mem(sc, (uint32_t)NE_RX_START * NE_PAGE,
				    data + first, len - first);
			}
			pkt->lp_bufs->lb_frags[0].lf_len = len;
			pkt->lp_len = len;
			if (data[0] & 1)
				pkt->lp_flags = memcmp(data, "\xff\xff\xff\xff\xff\xff", 6) == 0 ?
				    PKTKIT_LG_PKT_BCAST : PKTKIT_LG_PKT_MCAST;
			sc->sc_stats.st_ipackets++;
			sc->sc_stats.st_ibytes += len;
			svc->ls_rx(sc->sc_stack, pkt);
		}
		/* BNRY trails the next frame by one page. */
		ne_out(sc, NE_BNRY,
		    hdr[1] == NE_RX_START ? sc->sc_rx_stop - 1 : hdr[1] - 1);
	}
}

/*
 * Receive buffer ring overflow (ISR.OVW): the DP8390D datasheet's recovery
 * procedure ("Buffer ring overflow" in s7.0, steps numbered as there; also
 * National's AN-874).  The controller stopped storing frames; stop it, let
 * a reception in progress end, drain the ring in loopback so that nothing
 * new arrives, then leave loopback and resend a transmit the stop cut off.
 * QEMU's model never raises OVW (see the top), so the lab cannot reach this.
 */
static void
ne_overflow(struct pktkit_lg_dev *sc)
{
	uint8_t cr;
	int resend = 0;

	sc->sc_stats.st_ierrors++;
	cr = ne_in(sc, NE_CR);					/* 1: TXP */
	ne_out(sc, NE_CR, CR_PAGE0 | CR_STP | CR_RD_ABORT);	/* 2 */
	sc->sc_svc->ls_delay_us(sc->sc_stack, 1600);		/* 3 */
	ne_out(sc, NE_RBCR0, 0);				/* 4 */
	ne_out(sc, NE_RBCR1, 0);
	if (cr & CR_TXP)					/* 5 */
		resend = (ne_in(sc, NE_ISR) & (ISR_PTX | ISR_TXE)) == 0;
	ne_out(sc, NE_TCR, TCR_LOOP_INT);			/* 6 */
	ne_out(sc, NE_CR, CR_PAGE0 | CR_STA | CR_RD_ABORT);	/* 7 */
	ne_rx(sc);						/* 8 */
	ne_out(sc, NE_ISR, ISR_OVW);				/* 9 */
	ne_out(sc, NE_TCR, 0);					/* 10 */
	if (resend)						/* 11 */
		ne_out(sc, NE_CR, CR_PAGE0 | CR_STA | CR_TXP | CR_RD_ABORT);
}

static int
ne_intr(void *arg)
{
	struct pktkit_lg_dev *sc = arg;
	uint8_t isr;
	int i, ours = 0;

	if (!sc->sc_running) {
		/* A late interrupt after stop: quiet it, do not restart. */
		ne_out(sc, NE_ISR, 0xff);
		sc->sc_svc->ls_intr_unmask(sc->sc_stack, sc->sc_pci);
		return 0;
	}
	for (i = 0; i < 16; i++) {
		ne_out(sc, NE_CR, CR_PAGE0 | CR_STA | CR_RD_ABORT);
		isr = ne_in(sc, NE_ISR) & (uint8_t)~(ISR_RDC | ISR_RST);
		if (isr == 0)
			break;
		ours = 1;
		/* OVW is cleared by the recovery, after the ring is drained. */
		ne_out(sc, NE_ISR, isr & (uint8_t)~ISR_OVW);
		if (isr & ISR_RXE)
			sc->sc_stats.st_ierrors++;
		if (isr & ISR_OVW)
			ne_overflow(sc);
		else if (isr & (ISR_PRX | ISR_RXE))
			ne_rx(sc);
		if (isr & ISR_PTX)
			ne_tx_complete(sc, 0);
		else if (isr & ISR_TXE)
			ne_tx_complete(sc, PKTKIT_LG_EIO);
	}
	sc->sc_svc->ls_intr_unmask(sc->sc_stack, sc->sc_pci);
	return ours;
}

/* Once a second: time out a transmit the card never finished. */
static void
ne_tick(void *arg)
{
	struct pktkit_lg_dev *sc = arg;

	if (sc->sc_tx_pkt != NULL && ++sc->sc_tx_ticks >= NE_TX_TIMEOUT_TICKS) {
		ne_log(sc, PKTKIT_LG_LOG_WARN, "ne2000: transmit timeout");
		ne_tx_complete(sc, PKTKIT_LG_EIO);
	}
}

static int
ne_start(struct pktkit_lg_dev *sc)
{
	/* DP8390D s11.0 step 10: start, leave loopback, accept frames. */
	ne_init_regs(sc);
	ne_out(sc, NE_CR, CR_PAGE0 | CR_STA | CR_RD_ABORT);
	ne_out(sc, NE_TCR, 0);
	ne_out(sc, NE_RCR, sc->sc_rcr);
	ne_out(sc, NE_ISR, 0xff);
	ne_out(sc, NE_IMR, ISR_PRX | ISR_PTX | ISR_RXE | ISR_TXE | ISR_OVW);
	sc->sc_running = 1;
	sc->sc_svc->ls_timer_arm(sc->sc_stack, sc->sc_timer, 1000, 1);
	return 0;
}

static void
ne_stop(struct pktkit_lg_dev *sc)
{
	ne_out(sc, NE_IMR, 0);
	ne_out(sc, NE_CR, CR_PAGE0 | CR_STP | CR_RD_ABORT);
	ne_out(sc, NE_ISR, 0xff);
	sc->sc_svc->ls_timer_arm(sc->sc_stack, sc->sc_timer, 0, 0);
	sc->sc_running = 0;
	ne_tx_complete(sc, PKTKIT_LG_EIO);
}

static int
ne_transmit(struct pktkit_lg_dev *sc, struct pktkit_lg_packet *pkt)
{
	const struct pktkit_lg_buf *b;
	uint32_t len = 0, i, count;

	if (!sc->sc_running)
		return PKTKIT_LG_EIO;
	if (sc->sc_tx_pkt != NULL) {
		/* Reap a finished transmit without waiting for its interrupt. */
		uint8_t isr = ne_in(sc, NE_ISR);
		if (isr & (ISR_PTX | ISR_TXE)) {
			ne_out(sc, NE_ISR, isr & (ISR_PTX | ISR_TXE));
			ne_tx_complete(sc, (isr & ISR_PTX) ? 0 : PKTKIT_LG_EIO);
		} else {
			return PKTKIT_LG_EBUSY;
		}
	}
	if (pkt->lp_len > NE_MAX_FRAME)
		return PKTKIT_LG_EINVAL;
	for (b = pkt->lp_bufs; b != NULL; b = b->lb_next)
		for (i = 0; i < b->lb_nfrags; i++) {
			const struct pktkit_lg_frag *f = &b->lb_frags[i];
			if (len + f->lf_len > NE_MAX_FRAME)
				return PKTKIT_LG_EINVAL;
			memcpy(sc->sc_bounce + len, f->lf_ptr, f->lf_len);
			len += f->lf_len;
		}
	if (len < NE_MIN_FRAME) {
		memset(sc->sc_bounce + len, 0, NE_MIN_FRAME - len);
		len = NE_MIN_FRAME;
	}
	count = (len + 1) & ~1u;
	ne_rdma_setup(sc, (uint32_t)NE_TX_PAGE * NE_PAGE, count, CR_RD_WRITE);
	ne_data_out(sc, sc->sc_bounce, count);
	if (ne_rdma_wait(sc) != 0)
		return PKTKIT_LG_EIO;
	/* DP8390D s6.0 "Transmit": TPSR, TBCR, then TXP. */
	ne_out(sc, NE_TPSR, NE_TX_PAGE);
	ne_out(sc, NE_TBCR0, len & 0xff);
	ne_out(sc, NE_TBCR1, (len >> 8) & 0xff);
	sc->sc_tx_pkt = pkt;
	sc->sc_tx_ticks = 0;
	ne_out(sc, NE_CR, CR_PAGE0 | CR_STA | CR_TXP | CR_RD_ABORT);
	return 0;
}

static int
ne_control(struct pktkit_lg_dev *sc, uint32_t cmd, void *arg)
{
	int i;

	switch (cmd) {
	case PKTKIT_LG_CTL_GET_STATS:
		memcpy(arg, &sc->sc_stats, sizeof(sc->sc_stats));
		return 0;
	case PKTKIT_LG_CTL_GET_LINK: {
		/* The NE2000 has no link status: report 10 Mbit/s, up. */
		struct pktkit_lg_link *l = arg;
		l->ll_up = 1;
		l->ll_speed_mbps = 10;
		l->ll_full_duplex = 0;
		return 0;
	}
	case PKTKIT_LG_CTL_GET_MAC:
		memcpy(arg, sc->sc_mac, 6);
		return 0;
	case PKTKIT_LG_CTL_SET_MAC:
		memcpy(sc->sc_mac, arg, 6);
		ne_out(sc, NE_CR, CR_PAGE1 | (sc->sc_running ? CR_STA : CR_STP) |
		    CR_RD_ABORT);
		for (i = 0; i < 6; i++)
			ne_out(sc, NE_PAR0 + i, sc->sc_mac[i]);
		ne_out(sc, NE_CR, CR_PAGE0 | (sc->sc_running ? CR_STA : CR_STP) |
		    CR_RD_ABORT);
		return 0;
	case PKTKIT_LG_CTL_SET_PROMISC:
		if (*(const uint32_t *)arg)
			sc->sc_rcr |= RCR_PRO;
		else
			sc->sc_rcr &= ~RCR_PRO;
		if (sc->sc_running)
			ne_out(sc, NE_RCR, sc->sc_rcr);
		return 0;
	case PKTKIT_LG_CTL_SET_ALLMULTI:
		sc->sc_allmulti = *(const uint32_t *)arg != 0;
		ne_load_mar(sc);
		return 0;
	case PKTKIT_LG_CTL_SET_MULTICAST: {
		const struct pktkit_lg_mcast *m = arg;

		if (m->lm_count > 0 && m->lm_addrs == NULL)
			return PKTKIT_LG_EINVAL;
		/* Any number fits a hash filter; more groups, more
		 * unrelated ones pass (the stack filters those). */
		ne_mcast_filter(m->lm_addrs, m->lm_count, sc->sc_mar);
		ne_load_mar(sc);
		return 0;
	}
	case PKTKIT_LG_CTL_SET_MTU: {
		uint32_t mtu = *(const uint32_t *)arg;
		return (mtu >= 68 && mtu <= 1500) ? 0 : PKTKIT_LG_EINVAL;
	}
	default:
		return PKTKIT_LG_ENOTSUP;
	}
}

/*
 * ABI 1.2 lf_reset, on the stopped device: the NE2000 reset (reset port,
 * ISR.RST), then DP8390D s11.0 steps 1-9 with the address and filters the
 * driver keeps (ne_init_regs); lf_start does step 10.  The PROM and the
 * buffer memory size do not change, so attach's probes are not repeated.
 */
static int
ne_reset_dev(struct pktkit_lg_dev *sc)
{
	if (sc->sc_running)
		return PKTKIT_LG_EBUSY;
	if (ne_reset(sc) != 0) {
		ne_log(sc, PKTKIT_LG_LOG_ERR, "ne2000: reset timed out");
		return PKTKIT_LG_EIO;
	}
	ne_init_regs(sc);
	ne_log(sc, PKTKIT_LG_LOG_INFO, "ne2000: chip reset and reprogrammed");
	return 0;
}

static const struct pktkit_lg_funcs ne_funcs = {
	.lf_start = ne_start,
	.lf_stop = ne_stop,
	.lf_transmit = ne_transmit,
	.lf_control = ne_control,
	.lf_poll = NULL,	/* interrupt driven */
	.lf_reset = ne_reset_dev,
};

static int
ne_init(const struct pktkit_lg_services *svc, struct pktkit_lg_stack *stack,
    struct pktkit_lg_dev **devp, const struct pktkit_lg_funcs **funcsp,
    struct pktkit_lg_devinfo *info)
{
	struct pktkit_lg_pci_info pi;
	struct pktkit_lg_dev *sc;
	const char *bdf;
	char msg[128];
	int rc;

	bdf = svc->ls_option(stack, "pci");
	if (bdf == NULL)
		return PKTKIT_LG_EINVAL;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return PKTKIT_LG_ENOMEM;
	sc->sc_svc = svc;
	sc->sc_stack = stack;
	sc->sc_rcr = RCR_AB | RCR_AM;
	sc->sc_pci = svc->ls_pci_attach(stack, bdf, &pi);
	if (sc->sc_pci < 0) {
		rc = sc->sc_pci;
		goto fail;
	}
	if (pi.pi_vendor != NE_VENDOR || pi.pi_device != NE_DEVICE) {
		snprintf(msg, sizeof(msg), "ne2000: %s is %04x:%04x, not an RTL8029",
		    bdf, pi.pi_vendor, pi.pi_device);
		svc->ls_log(stack, PKTKIT_LG_LOG_ERR, msg);
		rc = PKTKIT_LG_ENODEV;
		goto fail;
	}
	if ((rc = ne_reset(sc)) != 0) {
		svc->ls_log(stack, PKTKIT_LG_LOG_ERR, "ne2000: reset timed out");
		goto fail;
	}
	ne_read_prom(sc);
	sc->sc_rx_stop = ne_probe_ring_stop(sc);
	ne_init_regs(sc);
	sc->sc_timer = svc->ls_timer_create(stack, ne_tick, sc);
	if (sc->sc_timer < 0) {
		rc = sc->sc_timer;
		goto fail;
	}
	if ((rc = svc->ls_intr_attach(stack, sc->sc_pci, ne_intr, sc)) != 0)
		goto fail;
	snprintf(msg, sizeof(msg),
	    "ne2000 at %s: address %02x:%02x:%02x:%02x:%02x:%02x, %u KiB",
	    bdf, sc->sc_mac[0], sc->sc_mac[1], sc->sc_mac[2], sc->sc_mac[3],
	    sc->sc_mac[4], sc->sc_mac[5],
	    sc->sc_rx_stop == NE_RX_STOP_32K ? 32u : 16u);
	svc->ls_log(stack, PKTKIT_LG_LOG_INFO, msg);
	info->di_max_mtu = 1500;
	info->di_mcast_slots = NE_MCAST_SLOTS;
	info->di_promisc = 1;
	/* Full-size frames take 6 pages of the receive ring (DP8390D s7.0). */
	info->di_rx_frames = (sc->sc_rx_stop - NE_RX_START) /
	    ((NE_MAX_FRAME + 4 + NE_PAGE - 1) / NE_PAGE);
	*devp = sc;
	*funcsp = &ne_funcs;
	return 0;
fail:
	free(sc);
	return rc;
}

static void
ne_shutdown(struct pktkit_lg_dev *sc)
{
	if (sc->sc_timer >= 0)
		sc->sc_svc->ls_timer_destroy(sc->sc_stack, sc->sc_timer);
	free(sc);
}

static const struct pktkit_lg_option ne_options[] = {
	{ "pci", "PCI address of the RTL8029 (DDDD:BB:DD.F)", 1, 0 },
	{ NULL, NULL, 0, 0 },
};

PKTKIT_LG_EXPORT const struct pktkit_lg_entry pktkit_legacy_entry = {
	.le_abi_major = PKTKIT_LG_ABI_MAJOR,
	.le_abi_minor = PKTKIT_LG_ABI_MINOR,
	.le_name = "ne2000",
	.le_prefix = "en",
	.le_description = "NE2000-compatible PCI (RTL8029, QEMU ne2k_pci)",
	.le_options = ne_options,
	.le_init = ne_init,
	.le_shutdown = ne_shutdown,
};
