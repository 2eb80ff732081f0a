/*
 * mii_bitbang.c -- clause 22 management frames (IEEE 802.3 22.2.4.5)
 * clocked by software: 32 preamble ones, start 01, opcode (10 read, 01
 * write), 5 bits PHY address, 5 bits register, turnaround, 16 data bits.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <dev/mii/mii.h>
#include <dev/mii/mii_bitbang.h>

#define MDO(ops)	((ops)->mbo_bits[MII_BIT_MDO])
#define MDI(ops)	((ops)->mbo_bits[MII_BIT_MDI])
#define MDC(ops)	((ops)->mbo_bits[MII_BIT_MDC])
#define DIR_OUT(ops)	((ops)->mbo_bits[MII_BIT_DIR_HOST_PHY])
#define DIR_IN(ops)	((ops)->mbo_bits[MII_BIT_DIR_PHY_HOST])

/* 22.3.4: MDC high and low times of at least 160 ns; 1 us is ample. */
static void
mbb_clock(device_t dev, mii_bitbang_ops_t ops, uint32_t v)
{
	(*ops->mbo_write)(dev, v);
	delay(1);
	(*ops->mbo_write)(dev, v | MDC(ops));
	delay(1);
	(*ops->mbo_write)(dev, v);
	delay(1);
}

static void
mbb_send(device_t dev, mii_bitbang_ops_t ops, uint32_t data, int nbits)
{
	int i;

	for (i = nbits - 1; i >= 0; i--)
		mbb_clock(dev, ops, DIR_OUT(ops) |
		    ((data & (1U << i)) ? MDO(ops) : 0));
}

static void
mbb_start(device_t dev, mii_bitbang_ops_t ops, int op, int phy, int reg)
{
	int i;

	for (i = 0; i < 32; i++)
		mbb_clock(dev, ops, DIR_OUT(ops) | MDO(ops));
	mbb_send(dev, ops, 0x1, 2);		/* start */
	mbb_send(dev, ops, (uint32_t)op, 2);
	mbb_send(dev, ops, (uint32_t)phy, 5);
	mbb_send(dev, ops, (uint32_t)reg, 5);
}

int
mii_bitbang_readreg(device_t dev, mii_bitbang_ops_t ops, int phy, int reg,
    uint16_t *val)
{
	uint32_t v = 0;
	int i, err;

	mbb_start(dev, ops, 0x2, phy, reg);
	/* Turnaround: release the line; the PHY drives a 0. */
	(*ops->mbo_write)(dev, DIR_IN(ops));
	delay(1);
	(*ops->mbo_write)(dev, DIR_IN(ops) | MDC(ops));
	delay(1);
	(*ops->mbo_write)(dev, DIR_IN(ops));
	delay(1);
	err = ((*ops->mbo_read)(dev) & MDI(ops)) != 0;
	for (i = 0; i < 16; i++) {
		v <<= 1;
		(*ops->mbo_write)(dev, DIR_IN(ops) | MDC(ops));
		delay(1);
		if ((*ops->mbo_read)(dev) & MDI(ops))
			v |= 1;
		(*ops->mbo_write)(dev, DIR_IN(ops));
		delay(1);
	}
	mbb_clock(dev, ops, DIR_IN(ops));
	if (err)
		return EIO;
	*val = (uint16_t)v;
	return 0;
}

int
mii_bitbang_writereg(device_t dev, mii_bitbang_ops_t ops, int phy, int reg,
    uint16_t val)
{
	mbb_start(dev, ops, 0x1, phy, reg);
	mbb_send(dev, ops, 0x2, 2);		/* turnaround 10 */
	mbb_send(dev, ops, val, 16);
	(*ops->mbo_write)(dev, DIR_OUT(ops));
	return 0;
}
