/*
 * dev/mii/mii.h -- IEEE 802.3 clause 22 MII management registers
 * (compat-bsd), from IEEE 802.3 section 22.2.4.
 */
#ifndef _DEV_MII_MII_H_
#define _DEV_MII_MII_H_

#define MII_NPHY	32	/* PHY addresses */

#define MII_BMCR	0x00	/* basic mode control (22.2.4.1) */
#define BMCR_RESET	0x8000
#define BMCR_LOOP	0x4000
#define BMCR_SPEED0	0x2000
#define BMCR_AUTOEN	0x1000
#define BMCR_PDOWN	0x0800
#define BMCR_ISO	0x0400
#define BMCR_STARTNEG	0x0200
#define BMCR_FDX	0x0100
#define BMCR_CTEST	0x0080
#define BMCR_SPEED1	0x0040
#define BMCR_S10	0x0000
#define BMCR_S100	BMCR_SPEED0
#define BMCR_S1000	BMCR_SPEED1

#define MII_BMSR	0x01	/* basic mode status (22.2.4.2) */
#define BMSR_100T4	0x8000
#define BMSR_100TXFDX	0x4000
#define BMSR_100TXHDX	0x2000
#define BMSR_10TFDX	0x1000
#define BMSR_10THDX	0x0800
#define BMSR_100T2FDX	0x0400
#define BMSR_100T2HDX	0x0200
#define BMSR_EXTSTAT	0x0100
#define BMSR_MFPS	0x0040
#define BMSR_ACOMP	0x0020
#define BMSR_RFAULT	0x0010
#define BMSR_ANEG	0x0008
#define BMSR_LINK	0x0004
#define BMSR_JABBER	0x0002
#define BMSR_EXTCAP	0x0001
#define BMSR_MEDIAMASK	(BMSR_100T4 | BMSR_100TXFDX | BMSR_100TXHDX | \
			 BMSR_10TFDX | BMSR_10THDX | BMSR_100T2FDX | \
			 BMSR_100T2HDX)
/* BMSR media bits moved to their ANAR positions. */
#define BMSR_MEDIA_TO_ANAR(x)	(((x) & BMSR_MEDIAMASK) >> 6)

#define MII_PHYIDR1	0x02
#define MII_PHYIDR2	0x03
#define IDR2_OUILSB	0xfc00
#define IDR2_MODEL	0x03f0
#define IDR2_REV	0x000f
#define MII_OUI(id1, id2)	(((id1) << 6) | ((id2) >> 10))
#define MII_MODEL(id2)		(((id2) & IDR2_MODEL) >> 4)
#define MII_REV(id2)		((id2) & IDR2_REV)

#define MII_ANAR	0x04	/* autonegotiation advertisement (28.2.4.1.3) */
#define ANAR_NP		0x8000
#define ANAR_ACK	0x4000
#define ANAR_RF		0x2000
#define ANAR_PAUSE_ASYM	0x0800
#define ANAR_PAUSE_SYM	0x0400
#define ANAR_FC		ANAR_PAUSE_SYM
#define ANAR_T4		0x0200
#define ANAR_TX_FD	0x0100
#define ANAR_TX		0x0080
#define ANAR_10_FD	0x0040
#define ANAR_10		0x0020
#define ANAR_CSMA	0x0001
#define ANAR_X_FD	0x0020
#define ANAR_X_HD	0x0040
#define ANAR_X_PAUSE_SYM	0x0080
#define ANAR_X_PAUSE_ASYM	0x0100

#define MII_ANLPAR	0x05	/* link partner ability */
#define ANLPAR_NP	ANAR_NP
#define ANLPAR_ACK	ANAR_ACK
#define ANLPAR_RF	ANAR_RF
#define ANLPAR_PAUSE_MASK	0x0c00
#define ANLPAR_PAUSE_NONE	0x0000
#define ANLPAR_PAUSE_SYM	0x0400
#define ANLPAR_PAUSE_ASYM	0x0800
#define ANLPAR_PAUSE_TOWARDS	0x0c00
#define ANLPAR_T4	ANAR_T4
#define ANLPAR_TX_FD	ANAR_TX_FD
#define ANLPAR_TX	ANAR_TX
#define ANLPAR_10_FD	ANAR_10_FD
#define ANLPAR_10	ANAR_10
#define ANLPAR_CSMA	ANAR_CSMA
#define ANLPAR_X_PAUSE_TOWARDS	0x0180

#define MII_ANER	0x06	/* autonegotiation expansion */
#define ANER_LPAN	0x0001
#define MII_100T2CR	0x09	/* 1000BASE-T control */
#define GTCR_MAN_MS	0x1000
#define GTCR_ADV_MS	0x0800
#define GTCR_ADV_1000TFDX 0x0200
#define GTCR_ADV_1000THDX 0x0100
#define MII_100T2SR	0x0a
#define MII_EXTSR	0x0f	/* extended status */
#define EXTSR_1000XFDX	0x8000
#define EXTSR_1000XHDX	0x4000
#define EXTSR_1000TFDX	0x2000
#define EXTSR_1000THDX	0x1000
#define EXTSR_MEDIAMASK	(EXTSR_1000XFDX | EXTSR_1000XHDX | \
			 EXTSR_1000TFDX | EXTSR_1000THDX)

#endif /* _DEV_MII_MII_H_ */
