/*
 * sys/queue.h -- list macros with NetBSD's names (compat-bsd).
 * LIST: doubly linked, O(1) removal; SIMPLEQ: singly linked tail queue;
 * TAILQ: doubly linked tail queue.
 */
#ifndef _SYS_QUEUE_H_
#define _SYS_QUEUE_H_

#include <stddef.h>

/* LIST */
#define LIST_HEAD(name, type)	struct name { struct type *lh_first; }
#define LIST_HEAD_INITIALIZER(h) { NULL }
#define LIST_ENTRY(type)	struct { struct type *le_next; struct type **le_prev; }
#define LIST_FIRST(h)		((h)->lh_first)
#define LIST_NEXT(e, f)		((e)->f.le_next)
#define LIST_EMPTY(h)		((h)->lh_first == NULL)
#define LIST_INIT(h)		do { (h)->lh_first = NULL; } while (0)
#define LIST_FOREACH(v, h, f) \
	for ((v) = LIST_FIRST(h); (v) != NULL; (v) = LIST_NEXT(v, f))
#define LIST_FOREACH_SAFE(v, h, f, t) \
	for ((v) = LIST_FIRST(h); (v) != NULL && ((t) = LIST_NEXT(v, f), 1); \
	    (v) = (t))
#define LIST_INSERT_HEAD(h, e, f) do {					\
	if (((e)->f.le_next = (h)->lh_first) != NULL)			\
		(h)->lh_first->f.le_prev = &(e)->f.le_next;		\
	(h)->lh_first = (e);						\
	(e)->f.le_prev = &(h)->lh_first;				\
} while (0)
#define LIST_INSERT_AFTER(l, e, f) do {					\
	if (((e)->f.le_next = (l)->f.le_next) != NULL)			\
		(l)->f.le_next->f.le_prev = &(e)->f.le_next;		\
	(l)->f.le_next = (e);						\
	(e)->f.le_prev = &(l)->f.le_next;				\
} while (0)
#define LIST_REMOVE(e, f) do {						\
	if ((e)->f.le_next != NULL)					\
		(e)->f.le_next->f.le_prev = (e)->f.le_prev;		\
	*(e)->f.le_prev = (e)->f.le_next;				\
} while (0)

/* SIMPLEQ */
#define SIMPLEQ_HEAD(name, type) \
	struct name { struct type *sqh_first; struct type **sqh_last; }
#define SIMPLEQ_HEAD_INITIALIZER(h) { NULL, &(h).sqh_first }
#define SIMPLEQ_ENTRY(type)	struct { struct type *sqe_next; }
#define SIMPLEQ_FIRST(h)	((h)->sqh_first)
#define SIMPLEQ_NEXT(e, f)	((e)->f.sqe_next)
#define SIMPLEQ_EMPTY(h)	((h)->sqh_first == NULL)
#define SIMPLEQ_INIT(h) do {						\
	(h)->sqh_first = NULL;						\
	(h)->sqh_last = &(h)->sqh_first;				\
} while (0)
#define SIMPLEQ_INSERT_HEAD(h, e, f) do {				\
	if (((e)->f.sqe_next = (h)->sqh_first) == NULL)			\
		(h)->sqh_last = &(e)->f.sqe_next;			\
	(h)->sqh_first = (e);						\
} while (0)
#define SIMPLEQ_INSERT_TAIL(h, e, f) do {				\
	(e)->f.sqe_next = NULL;						\
	*(h)->sqh_last = (e);						\
	(h)->sqh_last = &(e)->f.sqe_next;				\
} while (0)
#define SIMPLEQ_REMOVE_HEAD(h, f) do {					\
	if (((h)->sqh_first = (h)->sqh_first->f.sqe_next) == NULL)	\
		(h)->sqh_last = &(h)->sqh_first;			\
} while (0)
#define SIMPLEQ_FOREACH(v, h, f) \
	for ((v) = (h)->sqh_first; (v) != NULL; (v) = (v)->f.sqe_next)

/* TAILQ */
#define TAILQ_HEAD(name, type) \
	struct name { struct type *tqh_first; struct type **tqh_last; }
#define TAILQ_HEAD_INITIALIZER(h) { NULL, &(h).tqh_first }
#define TAILQ_ENTRY(type) \
	struct { struct type *tqe_next; struct type **tqe_prev; }
#define TAILQ_FIRST(h)		((h)->tqh_first)
#define TAILQ_NEXT(e, f)	((e)->f.tqe_next)
#define TAILQ_EMPTY(h)		((h)->tqh_first == NULL)
#define TAILQ_INIT(h) do {						\
	(h)->tqh_first = NULL;						\
	(h)->tqh_last = &(h)->tqh_first;				\
} while (0)
#define TAILQ_INSERT_TAIL(h, e, f) do {					\
	(e)->f.tqe_next = NULL;						\
	(e)->f.tqe_prev = (h)->tqh_last;				\
	*(h)->tqh_last = (e);						\
	(h)->tqh_last = &(e)->f.tqe_next;				\
} while (0)
#define TAILQ_REMOVE(h, e, f) do {					\
	if ((e)->f.tqe_next != NULL)					\
		(e)->f.tqe_next->f.tqe_prev = (e)->f.tqe_prev;		\
	else								\
		(h)->tqh_last = (e)->f.tqe_prev;			\
	*(e)->f.tqe_prev = (e)->f.tqe_next;				\
} while (0)
#define TAILQ_FOREACH(v, h, f) \
	for ((v) = (h)->tqh_first; (v) != NULL; (v) = (v)->f.tqe_next)

#endif /* _SYS_QUEUE_H_ */
