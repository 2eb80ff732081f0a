/*
 * sys/pcq.h -- pcq(9), the producer/consumer queue (compat-bsd).
 *
 * A bounded queue of pointers that any number of threads may put to at
 * once and one thread at a time gets from, without a lock: what an
 * IFEF_MPSAFE driver's if_transmit puts packets on for its transmit path
 * to take off.  pcq_put fails (returns false) when the queue is full; the
 * caller then drops (and counts) the item, as in NetBSD.
 */
#ifndef _SYS_PCQ_H_
#define _SYS_PCQ_H_

#include <sys/types.h>
#include <sys/kmem.h>

typedef struct pcq pcq_t;

pcq_t	*pcq_create(size_t, km_flag_t);
void	pcq_destroy(pcq_t *);
bool	pcq_put(pcq_t *, void *);
void	*pcq_get(pcq_t *);
void	*pcq_peek(pcq_t *);
size_t	pcq_maxitems(pcq_t *);

#endif /* _SYS_PCQ_H_ */
