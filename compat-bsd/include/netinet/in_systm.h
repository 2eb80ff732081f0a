/*
 * netinet/in_systm.h -- network-order integer types of the IP headers
 * (compat-bsd).
 */
#ifndef _NETINET_IN_SYSTM_H_
#define _NETINET_IN_SYSTM_H_

#include <sys/types.h>

typedef uint16_t	n_short;	/* short as received from the net */
typedef uint32_t	n_long;		/* long as received from the net */
typedef uint32_t	n_time;		/* ms since 00:00 UTC, byte reversed */

#endif /* _NETINET_IN_SYSTM_H_ */
