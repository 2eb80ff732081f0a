/*
 * sys/evcnt.h -- event counters (compat-bsd).  Drivers bump ev_count
 * directly; the adapter lists attached counters in the interface's
 * device counters (nicinfo).
 */
#ifndef _SYS_EVCNT_H_
#define _SYS_EVCNT_H_

#include <sys/types.h>

#define EVCNT_TYPE_ANY	0
#define EVCNT_TYPE_MISC	1
#define EVCNT_TYPE_INTR	2
#define EVCNT_TYPE_TRAP	3

struct evcnt {
	uint64_t		ev_count;
	const struct evcnt	*ev_parent;
	const char		*ev_group;
	const char		*ev_name;
	int			ev_type;
	struct evcnt		*ev_next;	/* adapter's list */
};

#define EVCNT_INITIALIZER(t, p, g, n)	{ 0, (p), (g), (n), (t), NULL }

void	evcnt_attach_dynamic(struct evcnt *, int, const struct evcnt *,
	    const char *, const char *);
void	evcnt_attach_static(struct evcnt *);
void	evcnt_detach(struct evcnt *);

#endif /* _SYS_EVCNT_H_ */
