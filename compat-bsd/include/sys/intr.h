/*
 * sys/intr.h -- interrupt priority levels and soft interrupts (compat-bsd).
 *
 * splnet()/splx() cost nothing here: the runtime already runs every entry
 * point of a driver without IFEF_MPSAFE under that driver's lock (interrupt
 * handler, callouts, softints, if_start, if_ioctl), so the section they
 * bracket is already exclusive.  An MP-safe driver locks with kmutexes, as
 * in NetBSD.
 */
#ifndef _SYS_INTR_H_
#define _SYS_INTR_H_

#include <sys/types.h>

#define IPL_NONE	0
#define IPL_SOFTCLOCK	1
#define IPL_SOFTBIO	2
#define IPL_SOFTNET	3
#define IPL_SOFTSERIAL	4
#define IPL_VM		5
#define IPL_NET		IPL_VM
#define IPL_SCHED	6
#define IPL_HIGH	7

static inline int splnet(void) { return IPL_NET; }
static inline int splvm(void) { return IPL_VM; }
static inline int splhigh(void) { return IPL_HIGH; }
static inline int splsoftnet(void) { return IPL_SOFTNET; }
static inline int splsched(void) { return IPL_SCHED; }
static inline void splx(int s) { (void)s; }

#define SOFTINT_CLOCK	0x0000
#define SOFTINT_BIO	0x0001
#define SOFTINT_NET	0x0003
#define SOFTINT_SERIAL	0x0004
#define SOFTINT_MPSAFE	0x0100

/*
 * Soft interrupts run from the service pass of the driver's interface,
 * under the driver's lock unless SOFTINT_MPSAFE.
 */
void	*softint_establish(u_int, void (*)(void *), void *);
void	softint_schedule(void *);
void	softint_disestablish(void *);

#endif /* _SYS_INTR_H_ */
