/*
 * netinet/udp.h -- the UDP header (RFC 768) (compat-bsd).
 */
#ifndef _NETINET_UDP_H_
#define _NETINET_UDP_H_

#include <sys/types.h>

struct udphdr {
	uint16_t	uh_sport;
	uint16_t	uh_dport;
	uint16_t	uh_ulen;	/* length of header and data */
	uint16_t	uh_sum;
} __packed;

#endif /* _NETINET_UDP_H_ */
