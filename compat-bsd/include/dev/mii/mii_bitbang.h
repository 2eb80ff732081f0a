/*
 * dev/mii/mii_bitbang.h -- MII management frames clocked out by software
 * through a chip's MDIO/MDC register bits (IEEE 802.3 22.2.4.5).
 */
#ifndef _DEV_MII_MII_BITBANG_H_
#define _DEV_MII_MII_BITBANG_H_

#include <sys/types.h>
#include <sys/device.h>

#define MII_BIT_MDO		0	/* data out (host->PHY) */
#define MII_BIT_MDI		1	/* data in (PHY->host) */
#define MII_BIT_MDC		2	/* clock */
#define MII_BIT_DIR_HOST_PHY	3	/* set direction host->PHY */
#define MII_BIT_DIR_PHY_HOST	4	/* set direction PHY->host */
#define MII_NBITS		5

struct mii_bitbang_ops {
	uint32_t	(*mbo_read)(device_t);
	void		(*mbo_write)(device_t, uint32_t);
	uint32_t	mbo_bits[MII_NBITS];
};
typedef const struct mii_bitbang_ops *mii_bitbang_ops_t;

int	mii_bitbang_readreg(device_t, mii_bitbang_ops_t, int, int, uint16_t *);
int	mii_bitbang_writereg(device_t, mii_bitbang_ops_t, int, int, uint16_t);

#endif /* _DEV_MII_MII_BITBANG_H_ */
