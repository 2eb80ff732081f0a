/*
 * netinet/ip.h -- the IPv4 header (RFC 791) (compat-bsd).
 */
#ifndef _NETINET_IP_H_
#define _NETINET_IP_H_

#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/in_systm.h>

#define IPVERSION	4

struct ip {
#if BYTE_ORDER == LITTLE_ENDIAN
	unsigned int	ip_hl:4,	/* header length, in 32-bit words */
			ip_v:4;		/* version */
#else
	unsigned int	ip_v:4,
			ip_hl:4;
#endif
	uint8_t		ip_tos;
	uint16_t	ip_len;		/* total length */
	uint16_t	ip_id;
	uint16_t	ip_off;		/* flags and fragment offset */
#define IP_RF		0x8000		/* reserved fragment flag */
#define IP_DF		0x4000		/* don't fragment */
#define IP_MF		0x2000		/* more fragments */
#define IP_OFFMASK	0x1fff		/* fragment offset, in 8-byte units */
	uint8_t		ip_ttl;
	uint8_t		ip_p;		/* protocol */
	uint16_t	ip_sum;
	struct in_addr	ip_src, ip_dst;
} __packed;

#define IP_MAXPACKET	65535
#define IP_MSS		576

#endif /* _NETINET_IP_H_ */
