/*
 * netinet/in.h -- Internet protocol numbers and addresses (compat-bsd).
 *
 * What a driver needs to look into the frames it offloads checksums or
 * segmentation for; the stack itself is pktkit's.
 */
#ifndef _NETINET_IN_H_
#define _NETINET_IN_H_

#include <sys/types.h>

typedef uint32_t	in_addr_t;
typedef uint16_t	in_port_t;

struct in_addr {
	in_addr_t	s_addr;		/* network order */
};

#define IPPROTO_IP	0
#define IPPROTO_ICMP	1
#define IPPROTO_TCP	6
#define IPPROTO_UDP	17
#define IPPROTO_IPV6	41
#define IPPROTO_ICMPV6	58

#define INADDR_ANY		((in_addr_t)0x00000000)
#define INADDR_BROADCAST	((in_addr_t)0xffffffff)

#define IN_MULTICAST(i)	(((uint32_t)(i) & 0xf0000000) == 0xe0000000)

#endif /* _NETINET_IN_H_ */
