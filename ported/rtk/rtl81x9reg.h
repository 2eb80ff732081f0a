/*	$pktkit: rtl81x9reg.h $	*/

/*
 * Realtek RTL8139 registers, from the RTL8139(A/B/C/D) datasheets
 * ("Register Descriptions", section 6) and the RTL8139 programming guide.
 * Offsets are from the base of either BAR (I/O BAR0 or memory BAR1).
 */

#ifndef _DEV_IC_RTL81X9REG_H_
#define _DEV_IC_RTL81X9REG_H_

#define RTK_IDR0	0x00	/* station address, 6 bytes */
#define RTK_MAR0	0x08	/* multicast hash, 8 bytes */
#define RTK_TXSTAT0	0x10	/* TSD0..3: transmit status, 4 x 32 bits */
#define RTK_TXADDR0	0x20	/* TSAD0..3: transmit start address */
#define RTK_RXADDR	0x30	/* RBSTART: receive buffer start */
#define RTK_COMMAND	0x37	/* CR */
#define RTK_CURRXADDR	0x38	/* CAPR: current address of packet read */
#define RTK_CURRXBUF	0x3a	/* CBR: current buffer address */
#define RTK_IMR		0x3c	/* interrupt mask, 16 bits */
#define RTK_ISR		0x3e	/* interrupt status, 16 bits, write 1 to clear */
#define RTK_TXCFG	0x40	/* TCR */
#define RTK_RXCFG	0x44	/* RCR */
#define RTK_TIMERCNT	0x48
#define RTK_MISSEDPKT	0x4c	/* MPC: 24-bit missed packet counter */
#define RTK_EECMD	0x50	/* 93C46 command register */
#define RTK_CFG0	0x51
#define RTK_CFG1	0x52
#define RTK_MEDIASTAT	0x58	/* MSR */
#define RTK_CFG3	0x59
#define RTK_MULTIINTR	0x5c
#define RTK_TXSTAT_ALL	0x60	/* TSAD: status of all descriptors */
#define RTK_BMCR	0x62	/* internal PHY: MII BMCR */
#define RTK_BMSR	0x64	/* MII BMSR */
#define RTK_ANAR	0x66	/* MII ANAR */
#define RTK_LPAR	0x68	/* MII ANLPAR */
#define RTK_ANER	0x6a	/* MII ANER */

#define RTK_TXSTAT(i)	(RTK_TXSTAT0 + 4 * (i))
#define RTK_TXADDR(i)	(RTK_TXADDR0 + 4 * (i))

/* CR (6.1) */
#define RTK_CMD_EMPTY_RXBUF	0x01	/* BUFE: receive buffer empty */
#define RTK_CMD_TX_ENB		0x04	/* TE */
#define RTK_CMD_RX_ENB		0x08	/* RE */
#define RTK_CMD_RESET		0x10	/* RST, self-clearing */

/* ISR / IMR */
#define RTK_ISR_RX_OK		0x0001
#define RTK_ISR_RX_ERR		0x0002
#define RTK_ISR_TX_OK		0x0004
#define RTK_ISR_TX_ERR		0x0008
#define RTK_ISR_RX_OVERRUN	0x0010	/* receive buffer overflow */
#define RTK_ISR_PKT_UNDERRUN	0x0020	/* or link change */
#define RTK_ISR_FIFO_OFLOW	0x0040
#define RTK_ISR_CABLE_LEN_CHGD	0x2000
#define RTK_ISR_TIMEOUT_EXPIRED	0x4000
#define RTK_ISR_SYSTEM_ERR	0x8000

/*
 * Interrupts taken.  Receive overflow is left masked on purpose: with it
 * unmasked, QEMU's rtl8139 accepts a frame it has no room for, refuses it
 * and has its network layer retry it later, while a smaller frame behind it
 * may fit at once -- frames then arrive out of order.  Masked, the model
 * holds frames back (in order) until the driver frees room.
 */
#define RTK_INTRS	(RTK_ISR_RX_OK | RTK_ISR_RX_ERR | RTK_ISR_TX_OK | \
			 RTK_ISR_TX_ERR | RTK_ISR_PKT_UNDERRUN | \
			 RTK_ISR_SYSTEM_ERR)

/* TSD (6.2) */
#define RTK_TXSTAT_LENMASK	0x00001fff
#define RTK_TXSTAT_OWN		0x00002000	/* DMA to the FIFO done */
#define RTK_TXSTAT_TX_UNDERRUN	0x00004000
#define RTK_TXSTAT_TX_OK	0x00008000
#define RTK_TXSTAT_THRESH(x)	(((x) & 0x3f) << 16)	/* in 32 bytes */
#define RTK_TXSTAT_COLLCNT	0x0f000000
#define RTK_TXSTAT_CARR_HBEAT	0x10000000
#define RTK_TXSTAT_OUTOFWIN	0x20000000
#define RTK_TXSTAT_TXABRT	0x40000000
#define RTK_TXSTAT_CARRLOSS	0x80000000

/* TCR */
#define RTK_TXCFG_CLRABRT	0x00000001
#define RTK_TXCFG_MAXDMA_2048	0x00000700
#define RTK_TXCFG_IFG_NORMAL	0x03000000

/* RCR */
#define RTK_RXCFG_RX_ALLPHYS	0x00000001	/* AAP: promiscuous */
#define RTK_RXCFG_RX_INDIV	0x00000002	/* APM: our address */
#define RTK_RXCFG_RX_MULTI	0x00000004	/* AM: hash-matched multicast */
#define RTK_RXCFG_RX_BROAD	0x00000008	/* AB */
#define RTK_RXCFG_RX_RUNT	0x00000010
#define RTK_RXCFG_RX_ERRPKT	0x00000020
#define RTK_RXCFG_WRAP		0x00000080
#define RTK_RXCFG_MAXDMA_UNLIM	0x00000700
#define RTK_RXCFG_BUFSZ_8K	0x00000000	/* 8 KiB + 16 */
#define RTK_RXCFG_BUFSZ_32K	0x00001000	/* 32 KiB + 16 */
#define RTK_RXCFG_FIFOTHRESH_NONE 0x0000e000

/* 93C46 command register: unlock the configuration registers. */
#define RTK_EEMODE_OFF		0x00
#define RTK_EEMODE_WRITECFG	0xc0

/* MSR */
#define RTK_MEDIASTAT_LINK	0x04	/* inverted: 0 means link up */
#define RTK_MEDIASTAT_SPEED10	0x08

/* The header the chip writes before each frame in the receive buffer. */
#define RTK_RXSTAT_RXOK		0x0001
#define RTK_RXSTAT_ALIGNERR	0x0002
#define RTK_RXSTAT_CRCERR	0x0004
#define RTK_RXSTAT_GIANT	0x0008
#define RTK_RXSTAT_RUNT		0x0010
#define RTK_RXSTAT_BADSYM	0x0020
#define RTK_RXSTAT_BROAD	0x2000
#define RTK_RXSTAT_INDIV	0x4000
#define RTK_RXSTAT_MULTI	0x8000
#define RTK_RXSTAT_LENSHIFT	16

/* Sizes. */
#define RTK_RXBUFLEN		32768	/* ring size for RTK_RXCFG_BUFSZ_32K */
#define RTK_RXBUF_ALLOC		(RTK_RXBUFLEN + 16 + 2048) /* slack for WRAP */
#define RTK_TX_LIST_CNT		4
#define RTK_TXBUFLEN		2048	/* per slot, 4-byte aligned */
#define RTK_ETHER_MIN		60	/* shortest frame sent, without CRC */
#define RTK_TX_THRESH_INIT	(256 / 32)

#endif /* _DEV_IC_RTL81X9REG_H_ */
