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

/*
 * link_addr(3): reads an address written as hex bytes separated by '.' or
 * ':' ("0.1b.21.a.b.c") into sdl (no interface name).
 */
static inline void
link_addr(const char *addr, struct sockaddr_dl *sdl)
{
	uint8_t *p = (uint8_t *)sdl->sdl_data;
	int n = 0, digits = 0, v = 0;

	sdl->sdl_nlen = 0;
	for (;; addr++) {
		char c = *addr;
		int d = (c >= '0' && c <= '9') ? c - '0' :
		    (c >= 'a' && c <= 'f') ? c - 'a' + 10 :
		    (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;

		if (d >= 0 && digits < 2) {
			v = v * 16 + d;
			digits++;
			continue;
		}
		if (digits > 0 && n < (int)sizeof(sdl->sdl_data))
			p[n++] = (uint8_t)v;
		if (c != '.' && c != ':')
			break;
		v = digits = 0;
	}
	sdl->sdl_alen = (uint8_t)n;
}

#endif /* _NET_IF_DL_H_ */
