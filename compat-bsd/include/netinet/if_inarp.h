/*
 * netinet/if_inarp.h -- ARP as a driver calls it (compat-bsd).
 *
 * ARP is the stack's: pktkit's protocol layer answers and resolves for
 * the addresses it owns, so when a driver's ioctl handler passes on a new
 * address there is nothing left for ARP to do.
 */
#ifndef _NETINET_IF_INARP_H_
#define _NETINET_IF_INARP_H_

#include <net/if.h>

static inline void
arp_ifinit(struct ifnet *ifp, struct ifaddr *ifa)
{
	(void)ifp; (void)ifa;
}

#endif /* _NETINET_IF_INARP_H_ */
