/*
 * sys/socket.h -- the socket address the interface ioctls carry (compat-bsd).
 */
#ifndef _SYS_SOCKET_H_
#define _SYS_SOCKET_H_

#include <sys/types.h>

typedef uint8_t		sa_family_t;
typedef uint32_t	socklen_t;

#define AF_UNSPEC	0
#define AF_LOCAL	1
#define AF_INET		2
#define AF_LINK		18
#define AF_INET6	24

struct sockaddr {
	uint8_t		sa_len;
	sa_family_t	sa_family;
	char		sa_data[14];
};

#endif /* _SYS_SOCKET_H_ */
