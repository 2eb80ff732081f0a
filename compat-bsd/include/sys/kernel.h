/*
 * sys/kernel.h -- the clock tick (compat-bsd).
 */
#ifndef _SYS_KERNEL_H_
#define _SYS_KERNEL_H_

#include <sys/types.h>

/* Clock ticks per second: callout(9) times are counted in these. */
extern int hz;

/* Ticks since the stack started (as NetBSD's "ticks", read through a call). */
int	pktkit_ticks(void);
#define ticks	pktkit_ticks()

#define mstohz(ms)	((int)(((int64_t)(ms) * hz + 999) / 1000))
#define hztoms(t)	((int)(((int64_t)(t) * 1000) / hz))

#endif /* _SYS_KERNEL_H_ */
