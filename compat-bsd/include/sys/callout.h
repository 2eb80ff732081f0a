/*
 * sys/callout.h -- callout(9) (compat-bsd).
 *
 * A callout is a timer of the runtime: the adapter keeps the driver's
 * callouts, arms one timerfd for the earliest, and runs the due ones from
 * the interface's service pass -- under the driver's lock unless the
 * callout was initialised with CALLOUT_MPSAFE.  Times are in ticks of hz.
 */
#ifndef _SYS_CALLOUT_H_
#define _SYS_CALLOUT_H_

#include <sys/types.h>

#define CALLOUT_MPSAFE	0x0100

typedef struct callout {
	void	(*c_func)(void *);
	void	*c_arg;
	void	*c_ctx;		/* the adapter's device context */
	uint64_t c_when;	/* monotonic ns when due */
	uint32_t c_flags;	/* CALLOUT_* */
	uint32_t c_state;	/* pending, running, invoking */
	struct callout *c_next;	/* adapter's list of the device's callouts */
} callout_t;

#define CALLOUT_PENDING		0x1
#define CALLOUT_FIRED		0x2
#define CALLOUT_INVOKING	0x4

void	callout_init(callout_t *, u_int);
void	callout_destroy(callout_t *);
void	callout_setfunc(callout_t *, void (*)(void *), void *);
void	callout_reset(callout_t *, int, void (*)(void *), void *);
void	callout_schedule(callout_t *, int);
bool	callout_stop(callout_t *);
bool	callout_halt(callout_t *, void *);
bool	callout_pending(callout_t *);
bool	callout_expired(callout_t *);
bool	callout_active(callout_t *);
bool	callout_invoking(callout_t *);
void	callout_ack(callout_t *);

#endif /* _SYS_CALLOUT_H_ */
