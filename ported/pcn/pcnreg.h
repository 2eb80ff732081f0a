/*	$pktkit: pcnreg.h $	*/

/*
 * AMD Am79C970A PCnet-PCI II: registers, the 32-bit initialisation block
 * and the 32-bit (SWSTYLE 2) descriptors.
 *
 * References: Am79C970A datasheet (publication 19436): "Register Access"
 * (RAP/RDP/BDP, WIO and DWIO), "Control and Status Registers" (CSR0,
 * CSR3, CSR15), "Bus Configuration Registers" (BCR4 LED0, BCR20 SWSTYLE),
 * "Initialization Block" and "Descriptor Rings" (SSIZE32 = 1).
 */

#ifndef _PKTKIT_PCNREG_H_
#define _PKTKIT_PCNREG_H_

/* I/O resources in word I/O mode (WIO), the mode after reset. */
#define PCN_APROM	0x00	/* 16 bytes: station address in 0-5 */
#define PCN_RDP		0x10	/* register data port (CSRs) */
#define PCN_RAP		0x12	/* register address port */
#define PCN_RESET	0x14	/* a read resets the chip */
#define PCN_BDP		0x16	/* bus configuration data port */

/* CSR0: controller status (write 1 to clear the interrupt bits). */
#define LE_C0_INIT	0x0001
#define LE_C0_STRT	0x0002
#define LE_C0_STOP	0x0004
#define LE_C0_TDMD	0x0008	/* transmit demand */
#define LE_C0_TXON	0x0010
#define LE_C0_RXON	0x0020
#define LE_C0_INEA	0x0040	/* interrupt enable */
#define LE_C0_INTR	0x0080
#define LE_C0_IDON	0x0100	/* initialisation done */
#define LE_C0_TINT	0x0200
#define LE_C0_RINT	0x0400
#define LE_C0_MERR	0x0800
#define LE_C0_MISS	0x1000	/* frame missed: no receive buffer */
#define LE_C0_CERR	0x2000
#define LE_C0_BABL	0x4000
#define LE_C0_ERR	0x8000
#define LE_C0_ACKMASK	(LE_C0_IDON | LE_C0_TINT | LE_C0_RINT | \
			 LE_C0_MERR | LE_C0_MISS | LE_C0_CERR | LE_C0_BABL)

#define LE_CSR0		0
#define LE_CSR1		1	/* init block address, low 16 bits */
#define LE_CSR2		2	/* init block address, high 16 bits */
#define LE_CSR3		3	/* interrupt masks */
#define LE_CSR4		4	/* features */
#define LE_CSR15	15	/* mode */
#define LE_CSR58	58	/* software style (BCR20 alias) */
#define LE_CSR88	88	/* chip id, low */
#define LE_CSR89	89	/* chip id, high */

/* CSR3: a set bit masks the interrupt. */
#define LE_C3_IDONM	0x0100
#define LE_C3_TINTM	0x0200
#define LE_C3_RINTM	0x0400
#define LE_C3_MERRM	0x0800
#define LE_C3_MISSM	0x1000

/* CSR15 (the init block's mode word). */
#define LE_C15_DRX	0x0001	/* receiver off */
#define LE_C15_DTX	0x0002	/* transmitter off */
#define LE_C15_DRCVBC	0x4000	/* no broadcast */
#define LE_C15_PROM	0x8000	/* promiscuous */

/* BCRs. */
#define LE_BCR4		4	/* LED0: LEDOUT follows the link (LNKSE) */
#define LE_BCR20	20	/* software style */
#define LE_B4_LNKSE	0x0040
#define LE_B4_LEDOUT	0x8000
#define LE_B20_SSTYLE_PCNETPCI2	0x0002	/* 32-bit structures */

/* Ring lengths are encoded as log2 in the init block (at most 512). */
struct pcn_initblock {
	uint16_t	init_mode;	/* CSR15 */
	uint8_t		init_rlen;	/* log2(rx ring) << 4 */
	uint8_t		init_tlen;	/* log2(tx ring) << 4 */
	uint8_t		init_padr[6];
	uint16_t	init_reserved;
	uint16_t	init_ladrf[4];	/* logical address filter */
	uint32_t	init_rdra;	/* rx ring */
	uint32_t	init_tdra;	/* tx ring */
} __packed;

/* Receive descriptor, SWSTYLE 2 (16 bytes, 16-byte aligned). */
struct pcn_rxdesc {
	uint32_t	rmd0;		/* buffer address */
	uint32_t	rmd1;		/* OWN, status, BCNT */
	uint32_t	rmd2;		/* message byte count */
	uint32_t	rmd3;
} __packed;
#define LE_R1_OWN	0x80000000U
#define LE_R1_ERR	0x40000000U
#define LE_R1_FRAM	0x20000000U
#define LE_R1_OFLO	0x10000000U
#define LE_R1_CRC	0x08000000U
#define LE_R1_BUFF	0x04000000U
#define LE_R1_STP	0x02000000U
#define LE_R1_ENP	0x01000000U
#define LE_R1_PAM	0x00400000U
#define LE_R1_LAFM	0x00200000U
#define LE_R1_BAM	0x00100000U
#define LE_R1_ONES	0x0000f000U
#define LE_R1_BCNT_MASK	0x00000fffU
#define LE_R2_MCNT_MASK	0x00000fffU

/* Transmit descriptor, SWSTYLE 2. */
struct pcn_txdesc {
	uint32_t	tmd0;		/* buffer address */
	uint32_t	tmd1;		/* OWN, STP, ENP, BCNT */
	uint32_t	tmd2;		/* status after transmission */
	uint32_t	tmd3;
} __packed;
#define LE_T1_OWN	0x80000000U
#define LE_T1_ERR	0x40000000U
#define LE_T1_STP	0x02000000U
#define LE_T1_ENP	0x01000000U
#define LE_T1_ONES	0x0000f000U
#define LE_T1_BCNT_MASK	0x00000fffU
#define LE_T2_TRC_MASK	0x0000000fU	/* retry count */

/* The two's complement byte count the descriptors want. */
#define LE_BCNT(x)	((uint32_t)(-(int)(x)) & 0x0fffU)

#endif /* _PKTKIT_PCNREG_H_ */
