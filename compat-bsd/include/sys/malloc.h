/*
 * sys/malloc.h -- the kernel's three-argument malloc(9) (compat-bsd).
 * These names are macros so the host C library's malloc/free stay usable
 * by everything else in the process.
 */
#ifndef _SYS_MALLOC_H_
#define _SYS_MALLOC_H_

#include <sys/types.h>

#define M_NOWAIT_MALLOC	0x0001
#define M_ZERO		0x0100
#define M_CANFAIL	0x0004
/* Malloc types are accepted and ignored. */
#define M_DEVBUF	0
#define M_TEMP		0
#define MALLOC_DEFINE(t, s, l)
#define MALLOC_DECLARE(t)

void	*pktkit_kern_malloc(unsigned long, int);
void	pktkit_kern_free(void *);
#define malloc(size, type, flags)	pktkit_kern_malloc((size), (flags))
#define free(addr, type)		pktkit_kern_free(addr)

#endif /* _SYS_MALLOC_H_ */
