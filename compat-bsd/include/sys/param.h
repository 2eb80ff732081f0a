/*
 * sys/param.h -- system parameters (compat-bsd).
 */
#ifndef _SYS_PARAM_H_
#define _SYS_PARAM_H_

#include <sys/types.h>

#define PAGE_SIZE	4096
#define PAGE_MASK	(PAGE_SIZE - 1)
#define NBBY		8
#define MAXCPUS		64
#define MAXPATHLEN	1024

/* tsleep(9) priorities: accepted and ignored. */
#define PZERO		22
#define PSOCK		24
#define PCATCH		0x100

/* x86: unaligned accesses are allowed. */
#define __NO_STRICT_ALIGNMENT	1
#define ALIGNBYTES	(sizeof(long) - 1)
#define ALIGN(p)	(((uintptr_t)(p) + ALIGNBYTES) & ~(uintptr_t)ALIGNBYTES)
#define ALIGNED_POINTER(p, t)	1

#ifndef TRUE
#define TRUE		1
#endif
#ifndef FALSE
#define FALSE		0
#endif

#ifndef MIN
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b)	((a) > (b) ? (a) : (b))
#endif
#define howmany(x, y)	(((x) + ((y) - 1)) / (y))
#define roundup(x, y)	((((x) + ((y) - 1)) / (y)) * (y))
#define rounddown(x, y)	(((x) / (y)) * (y))
#define roundup2(x, m)	(((x) + ((m) - 1)) & ~((__typeof__(x))(m) - 1))
#define rounddown2(x, m) ((x) & ~((__typeof__(x))(m) - 1))
#define powerof2(x)	((((x) - 1) & (x)) == 0)

#include <sys/systm.h>

#endif /* _SYS_PARAM_H_ */
