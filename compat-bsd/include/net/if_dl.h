/*
 * net/if_dl.h -- link-level socket address (compat-bsd).
 */
#ifndef _NET_IF_DL_H_
#define _NET_IF_DL_H_

#include <sys/types.h>

struct sockaddr_dl {
	uint8_t		sdl_len;
	uint8_t		sdl_family;	/* AF_LINK */
	uint16_t	sdl_index;
	uint8_t		sdl_type;
	uint8_t		sdl_nlen;	/* name length (0 here) */
	uint8_t		sdl_alen;	/* address length */
	uint8_t		sdl_slen;
	char		sdl_data[24];	/* name, then address */
};

#define CLLADDR(s)	((const uint8_t *)((s)->sdl_data + (s)->sdl_nlen))
#define LLADDR(s)	((uint8_t *)((s)->sdl_data + (s)->sdl_nlen))

#endif /* _NET_IF_DL_H_ */
