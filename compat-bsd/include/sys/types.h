/*
 * sys/types.h -- the kernel's basic types (compat-bsd).
 *
 * compat-bsd's headers are self-contained: they use only the compiler's
 * freestanding headers, never the host C library's, so that NetBSD names
 * (malloc, printf, ...) can mean the kernel's functions.
 */
#ifndef _SYS_TYPES_H_
#define _SYS_TYPES_H_

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdarg.h>
#include <sys/cdefs.h>

typedef unsigned char	u_char;
typedef unsigned short	u_short;
typedef unsigned int	u_int;
typedef unsigned long	u_long;
typedef uint8_t		u_int8_t;
typedef uint16_t	u_int16_t;
typedef uint32_t	u_int32_t;
typedef uint64_t	u_int64_t;
typedef uint64_t	u_quad_t;
typedef int64_t		quad_t;
typedef long		ssize_t;
typedef int64_t		off_t;
typedef uint64_t	paddr_t;
typedef uintptr_t	vaddr_t;
typedef uintptr_t	vsize_t;
typedef uint64_t	psize_t;
typedef char		*caddr_t;
typedef int		pri_t;
typedef int32_t		pid_t;
typedef unsigned int	devmajor_t;
typedef int		devact_t;
typedef struct kmutex	kmutex_t;
typedef struct ifnet	ifnet_t;

#include <sys/endian.h>

#endif /* _SYS_TYPES_H_ */
