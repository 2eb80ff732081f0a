/*
 * dev/mii/inphyreg.h -- registers of the Intel 82555 PHY beyond clause 22
 * (compat-bsd).
 */
#ifndef _DEV_MII_INPHYREG_H_
#define _DEV_MII_INPHYREG_H_

#define MII_INPHY_SCR	0x10	/* status and control */
#define SCR_FDX		0x0001	/* full duplex resolved */
#define SCR_S100	0x0002	/* 100 Mbit/s resolved */
#define SCR_T4		0x0004	/* 100BASE-T4 resolved */

#endif /* _DEV_MII_INPHYREG_H_ */
