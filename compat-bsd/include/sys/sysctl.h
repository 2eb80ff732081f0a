/*
 * sys/sysctl.h -- sysctl(9), the part drivers use (compat-bsd).
 *
 * A driver makes its nodes at attach with sysctl_createv, usually a node
 * named after the device under CTL_HW and leaves below it, each bound to
 * a softc variable or served by a handler function that calls
 * sysctl_lookup; sysctl_teardown at detach removes exactly the nodes made
 * through that log.  The nodes live in the adapter's device context, not
 * in a global tree: the stack shows the leaves below the device node as
 * net.if.IFNAME.drv.PATH (`pktkit sysctl`), and sets the writable ones
 * under the driver's lock (serialized drivers: the runtime's lock; MP-safe
 * drivers: the device's giant lock).  A handler is called as NetBSD calls a
 * leaf's: name past the end of the full MIB, namelen 0, oname the MIB, a
 * valid oldlenp (0 when only setting), l NULL.  sysctl_lookup refuses
 * names below a leaf (EINVAL), copies at most *oldlenp bytes out and sets
 * *oldlenp to the value's size, and takes newlen 0 as no new value.
 *
 * Types: CTLTYPE_NODE, CTLTYPE_INT, CTLTYPE_BOOL, CTLTYPE_QUAD, and
 * CTLTYPE_STRING read-only.  A leaf with neither a variable nor a handler
 * keeps its value (initially the u_quad_t argument) in the node.  Bad
 * arguments (an unknown type, a name that is not [A-Za-z_][A-Za-z0-9_]*
 * of at most SYSCTL_NAMELEN-1 characters, a parent that is not a node, no
 * CTL_EOL within CTL_MAXNAME names) create nothing, are logged, and
 * return an errno as in NetBSD.
 */
#ifndef _SYS_SYSCTL_H_
#define _SYS_SYSCTL_H_

#include <sys/types.h>

#define CTL_MAXNAME	12	/* names before CTL_EOL, at most */
#define SYSCTL_NAMELEN	32

/* Special names. */
#define CTL_EOL		(-1)
#define CTL_QUERY	(-2)
#define CTL_CREATE	(-3)
#define CTL_DESTROY	(-5)

/* Top-level nodes. */
#define CTL_KERN	1
#define CTL_NET		4
#define CTL_HW		6

/* Types, in the low bits of sysctl_flags. */
#define CTLTYPE_NODE	1
#define CTLTYPE_INT	2
#define CTLTYPE_STRING	3
#define CTLTYPE_QUAD	4
#define CTLTYPE_STRUCT	5
#define CTLTYPE_BOOL	6
#define CTLTYPE_MASK	0x0000000f

/* Flags. */
#define CTLFLAG_READONLY	0x00000000
#define CTLFLAG_READWRITE	0x00000070
#define CTLFLAG_PERMANENT	0x00000100	/* accepted; nothing is permanent here */
#define CTLFLAG_WRITE_MASK	0x00000020

#define SYSCTL_TYPE(x)		((x) & CTLTYPE_MASK)
#define SYSCTL_FLAGS(x)		((x) & ~CTLTYPE_MASK)
#define SYSCTL_DESCR(s)		s

struct lwp;
struct sysctlnode;
struct sysctllog;	/* opaque: the nodes one sequence of calls made */

/* A handler's parameters and how it passes them on to sysctl_lookup. */
#define SYSCTLFN_PROTO	const int *, u_int, void *, size_t *,		\
	const void *, size_t, const int *, struct lwp *,		\
	const struct sysctlnode *
#define SYSCTLFN_ARGS	const int *name, u_int namelen, void *oldp,	\
	size_t *oldlenp, const void *newp, size_t newlen,		\
	const int *oname, struct lwp *l, const struct sysctlnode *rnode
#define SYSCTLFN_CALL(node)	name, namelen, oldp, oldlenp, newp,	\
	newlen, oname, l, node

typedef int (*sysctlfn)(SYSCTLFN_PROTO);

struct sysctlnode {
	uint32_t	sysctl_flags;	/* CTLFLAG_* | CTLTYPE_* */
	int32_t		sysctl_num;
	char		sysctl_name[SYSCTL_NAMELEN];
	const char	*sysctl_desc;
	size_t		sysctl_size;	/* of what sysctl_data points to */
	void		*sysctl_data;	/* the bound variable */
	sysctlfn	sysctl_func;	/* the handler, or NULL */
	struct sysctlnode *sysctl_parent;
	int64_t		sysctl_qdata;	/* a leaf's own value (no variable) */
};

int	sysctl_createv(struct sysctllog **, int, const struct sysctlnode **,
	    const struct sysctlnode **, int, int, const char *, const char *,
	    sysctlfn, u_quad_t, void *, size_t, ...);
void	sysctl_teardown(struct sysctllog **);
int	sysctl_lookup(SYSCTLFN_PROTO);

#endif /* _SYS_SYSCTL_H_ */
