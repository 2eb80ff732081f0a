/*
 * dev/mii/miidevs.h -- PHY ids the PHY drivers match (compat-bsd).
 *
 * OUIs are as MII_OUI() computes them from PHYIDR1/PHYIDR2.
 */
#ifndef _DEV_MII_MIIDEVS_H_
#define _DEV_MII_MIIDEVS_H_

#define MII_OUI_INTEL			0x00aa00
#define MII_MODEL_INTEL_I82555		0x0015
#define MII_STR_INTEL_I82555		"i82555 10/100 media interface"

#endif /* _DEV_MII_MIIDEVS_H_ */
