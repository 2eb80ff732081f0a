/*
 * sys/sockio.h -- interface ioctls (compat-bsd).  Encoded as NetBSD does;
 * the numbers only need to agree between driver and adapter.
 */
#ifndef _SYS_SOCKIO_H_
#define _SYS_SOCKIO_H_

#include <sys/ioctl.h>

struct ifreq;
struct ifmediareq;

#define SIOCSIFFLAGS	_IOW('i', 16, struct ifreq)
#define SIOCGIFFLAGS	_IOWR('i', 17, struct ifreq)
#define SIOCADDMULTI	_IOW('i', 49, struct ifreq)
#define SIOCDELMULTI	_IOW('i', 50, struct ifreq)
#define SIOCSIFMEDIA	_IOWR('i', 53, struct ifreq)
#define SIOCGIFMEDIA	_IOWR('i', 54, struct ifmediareq)
#define SIOCSIFMTU	_IOW('i', 127, struct ifreq)
#define SIOCGIFMTU	_IOWR('i', 126, struct ifreq)
#define SIOCSIFCAP	_IOW('i', 117, struct ifreq)
#define SIOCINITIFADDR	_IOWR('i', 132, struct ifreq)
#define SIOCSIFADDR	_IOW('i', 12, struct ifreq)

#endif /* _SYS_SOCKIO_H_ */
