/*
 * sys/workqueue.h -- workqueue(9) (compat-bsd).
 *
 * Work items run in thread context, in the order they were enqueued, from
 * the service pass of the driver's interface -- the same pass, signalled
 * through the same eventfd, that runs softints.  compat-bsd never makes a
 * thread: the runtime calls the service.  A work runs under the driver's
 * lock unless the queue was made with WQ_MPSAFE (the rule softints and
 * callouts follow).  WQ_PERCPU is accepted; the device has one queue.
 *
 * A work is on its queue at most once: enqueueing one that is still
 * queued is a driver bug; it is counted ("workqueue NAME double
 * enqueues" in nicinfo) and ignored.  workqueue_wait returns once the
 * work is neither queued nor running; from outside the service pass (the
 * driver's stop or detach) it runs the queue up to that work inline, or
 * waits for the thread running it; a work run there may destroy its own
 * queue.  The driver's lock for a queue is taken before one of its works
 * is claimed, so a non-MP-safe path holding the giant lock may wait for a
 * work while the service pass wants to run it.  workqueue_destroy wants an
 * empty queue; pending works are dropped with an error in the log and
 * counted ("workqueue dropped works" in nicinfo).  A
 * destroyed queue passed from a driver entry is logged and ignored.
 */
#ifndef _SYS_WORKQUEUE_H_
#define _SYS_WORKQUEUE_H_

#include <sys/types.h>

struct cpu_info;

/* A work item, embedded in the driver's softc; the queue links it. */
struct work {
	void	*wk_dummy;
};

/* Opaque: the adapter's queue. */
struct workqueue;

#define PRI_NONE	(-1)
#define PRI_SOFTNET	224

#define WQ_MPSAFE	0x01
#define WQ_PERCPU	0x02
#define WQ_FPU		0x04

int	workqueue_create(struct workqueue **, const char *,
	    void (*)(struct work *, void *), void *, pri_t, int, int);
void	workqueue_destroy(struct workqueue *);
void	workqueue_enqueue(struct workqueue *, struct work *, struct cpu_info *);
void	workqueue_wait(struct workqueue *, struct work *);

#endif /* _SYS_WORKQUEUE_H_ */
