/*
 * sys/systm.h -- kernel services every driver uses (compat-bsd).
 *
 * Messages go to the stack's log (the Rust log crate), not to stdout.
 * memcpy and friends are the compiler's builtins (or libc's, at the same
 * names).
 */
#ifndef _SYS_SYSTM_H_
#define _SYS_SYSTM_H_

#include <sys/types.h>
#include <sys/errno.h>
#include <sys/syslog.h>
#include <sys/kernel.h>

/* Console and log messages. */
void	pktkit_printf(const char *, ...) __printflike(1, 2);
#define printf(...)	pktkit_printf(__VA_ARGS__)
/* log(9) is a macro so it never meets libm's log(3). */
void	pktkit_log(int, const char *, ...) __printflike(2, 3);
#define log(...)	pktkit_log(__VA_ARGS__)
void	panic(const char *, ...) __printflike(1, 2) __dead;
int	snprintf(char *, size_t, const char *, ...) __printflike(3, 4);
int	vsnprintf(char *, size_t, const char *, va_list);

/* Assertions: checked only with DIAGNOSTIC, as in NetBSD. */
#ifdef DIAGNOSTIC
#define KASSERT(e)	((e) ? (void)0 : \
	panic("kernel assertion \"%s\" failed: file \"%s\", line %d", \
	    #e, __FILE__, __LINE__))
#define KASSERTMSG(e, ...) KASSERT(e)
#else
#define KASSERT(e)	((void)0)
#define KASSERTMSG(e, ...) ((void)0)
#endif
#define KDASSERT(e)	((void)0)

/* libkern */
void	*memcpy(void *, const void *, size_t);
void	*memmove(void *, const void *, size_t);
void	*memset(void *, int, size_t);
int	memcmp(const void *, const void *, size_t);
size_t	strlen(const char *);
int	strcmp(const char *, const char *);
int	strncmp(const char *, const char *, size_t);
char	*strcpy(char *, const char *);
size_t	strlcpy(char *, const char *, size_t);
#define ffs(x)		__builtin_ffs(x)
#define bcopy(s, d, n)	memmove((d), (s), (n))
#define bzero(p, n)	memset((p), 0, (n))
#define bcmp(a, b, n)	memcmp((a), (b), (n))

static inline u_int uimin(u_int a, u_int b) { return a < b ? a : b; }
static inline u_int uimax(u_int a, u_int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline u_long ulmin(u_long a, u_long b) { return a < b ? a : b; }
static inline u_long ulmax(u_long a, u_long b) { return a > b ? a : b; }

/* CPUs the stack may run drivers on (its runtime's workers' CPUs). */
extern int	ncpu;

/* Busy-wait delay in microseconds (DELAY is the machine-dependent name). */
void	delay(unsigned int);
#define DELAY(us)	delay(us)

/*
 * tsleep/wakeup: a driver under the runtime never has anyone to wait for,
 * so tsleep sleeps for its timeout (at least one tick) and wakeup does
 * nothing.
 */
int	tsleep(const volatile void *, int, const char *, int);
void	wakeup(const volatile void *);
int	kpause(const char *, bool, int, kmutex_t *);

/* Entropy from the host. */
uint32_t	cprng_fast32(void);

#include <sys/intr.h>

#endif /* _SYS_SYSTM_H_ */
