/*
 * net/if_types.h -- interface types (compat-bsd).
 */
#ifndef _NET_IF_TYPES_H_
#define _NET_IF_TYPES_H_

#define IFT_OTHER	0x01
#define IFT_ETHER	0x06
#define IFT_LOOP	0x18

#endif /* _NET_IF_TYPES_H_ */
