/*
 * pktkit_glue.h -- calls between compat-bsd's C half and its Rust half that
 * are not part of the NetBSD KPI.
 */
#ifndef _PKTKIT_GLUE_H_
#define _PKTKIT_GLUE_H_

#include <sys/types.h>
#include <sys/sysctl.h>

struct ifnet;
struct ethercom;
struct lwp;

/* Rust: one message for the stack's log (level is a LOG_* priority). */
void	pktkit_bsd_log(int level, const char *msg);
/* Rust: the driver called panic(); logs and aborts the process. */
void	pktkit_bsd_panic(const char *msg) __dead;
/* Rust: ether_ifattach has set up an Ethernet interface. */
void	pktkit_ether_attached(struct ifnet *ifp);

/* Rust: sysctl_createv once its names are read (up to CTL_EOL). */
int	pktkit_sysctl_create(struct sysctllog **log,
	    const struct sysctlnode **rnode, const struct sysctlnode **cnode,
	    int flags, int type, const char *name, const char *descr,
	    sysctlfn func, u_quad_t qv, void *data, size_t size, const int *names,
	    u_int namelen);

/* C: the adapter's control requests, as the driver's ioctls. */
int	pktkit_if_set_flags(struct ifnet *ifp, int set, int clear);
int	pktkit_if_multi(struct ifnet *ifp, const uint8_t *lo, const uint8_t *hi,
	    bool add);
int	pktkit_if_set_mtu(struct ifnet *ifp, int mtu);
/* C: the media status (IFM_* words) through SIOCGIFMEDIA, 0 if none. */
int	pktkit_if_media_status(struct ifnet *ifp, int *status, int *active);

#endif /* _PKTKIT_GLUE_H_ */
