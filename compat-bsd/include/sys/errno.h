/*
 * sys/errno.h -- error numbers (compat-bsd).
 *
 * The values are the host's (Linux) so the Rust side turns them into
 * std::io::Error unchanged; the names are NetBSD's.
 */
#ifndef _SYS_ERRNO_H_
#define _SYS_ERRNO_H_

#define EPERM		1
#define ENOENT		2
#define EINTR		4
#define EIO		5
#define ENXIO		6
#define E2BIG		7
#define EBADF		9
#define EAGAIN		11
#define EWOULDBLOCK	EAGAIN
#define ENOMEM		12
#define EFAULT		14
#define EBUSY		16
#define EEXIST		17
#define ENODEV		19
#define ENOTDIR		20
#define EFBIG		27
#define EINVAL		22
#define ENOSPC		28
#define ERANGE		34
#define ENAMETOOLONG	36
#define ENOTTY		25
#define ENOSYS		38
#define EMSGSIZE	90
#define EOPNOTSUPP	95
#define EAFNOSUPPORT	97
#define EADDRNOTAVAIL	99
#define ENETDOWN	100
#define ENETRESET	102
#define ENOBUFS		105
#define ETIMEDOUT	110
#define EJUSTRETURN	(-2)	/* done; do not touch the status; NetBSD's value */
#define EPASSTHROUGH	(-4)	/* ioctl not handled here; NetBSD's value */

#endif /* _SYS_ERRNO_H_ */
