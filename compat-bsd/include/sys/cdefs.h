/*
 * sys/cdefs.h -- compiler helpers NetBSD kernel code expects (compat-bsd).
 */
#ifndef _SYS_CDEFS_H_
#define _SYS_CDEFS_H_

#define __KERNEL_RCSID(n, s)	/* nothing: no RCS ids in pktkit objects */
#define __RCSID(s)
#define __predict_true(e)	__builtin_expect(!!(e), 1)
#define __predict_false(e)	__builtin_expect(!!(e), 0)
#define __arraycount(a)		(sizeof(a) / sizeof((a)[0]))
#define __UNCONST(p)		((void *)(unsigned long)(const void *)(p))
#define __UNVOLATILE(p)		((void *)(unsigned long)(volatile void *)(p))
#define __aligned(x)		__attribute__((__aligned__(x)))
#define __packed		__attribute__((__packed__))
#define __unused		__attribute__((__unused__))
#define __used			__attribute__((__used__))
#define __diagused		__attribute__((__unused__))
#define __debugused		__attribute__((__unused__))
#define __noinline		__attribute__((__noinline__))
#define __dead			__attribute__((__noreturn__))
#define __printflike(f, a)	__attribute__((__format__(__printf__, f, a)))
#define __CONCAT(a, b)		a##b
#define __STRING(x)		#x
#define __BEGIN_DECLS
#define __END_DECLS
#define __CTASSERT(e)		_Static_assert(e, #e)
#define CTASSERT(e)		_Static_assert(e, #e)

/* Bit-field helpers of <sys/cdefs.h>. */
#define __BIT(n)		(((n) >= 64) ? 0 : ((uint64_t)1 << (n)))
#define __BITS(m, n)		((__BIT((m) > (n) ? (m) : (n)) << 1) - \
				 __BIT((m) < (n) ? (m) : (n)))
#define __LOWEST_SET_BIT(m)	((((m) - 1) & (m)) ^ (m))
#define __SHIFTOUT(x, m)	(((x) & (m)) / __LOWEST_SET_BIT(m))
#define __SHIFTIN(x, m)		((x) * __LOWEST_SET_BIT(m))
#define __SHIFTOUT_MASK(m)	__SHIFTOUT((m), (m))

#endif /* _SYS_CDEFS_H_ */
