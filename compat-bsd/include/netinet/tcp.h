/*
 * netinet/tcp.h -- the TCP header (RFC 9293) (compat-bsd).
 */
#ifndef _NETINET_TCP_H_
#define _NETINET_TCP_H_

#include <sys/types.h>

typedef uint32_t	tcp_seq;

struct tcphdr {
	uint16_t	th_sport;
	uint16_t	th_dport;
	tcp_seq		th_seq;
	tcp_seq		th_ack;
#if BYTE_ORDER == LITTLE_ENDIAN
	uint8_t		th_x2:4,	/* unused */
			th_off:4;	/* data offset, in 32-bit words */
#else
	uint8_t		th_off:4,
			th_x2:4;
#endif
	uint8_t		th_flags;
#define TH_FIN		0x01
#define TH_SYN		0x02
#define TH_RST		0x04
#define TH_PUSH		0x08
#define TH_ACK		0x10
#define TH_URG		0x20
#define TH_ECE		0x40
#define TH_CWR		0x80
	uint16_t	th_win;
	uint16_t	th_sum;
	uint16_t	th_urp;
} __packed;

#endif /* _NETINET_TCP_H_ */
