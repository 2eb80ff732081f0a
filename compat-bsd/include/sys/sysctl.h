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
 * keeps its value (initially the u_quad_t argument) in the node, as does
 * one made with CTLFLAG_IMMEDIATE.  As in NetBSD: *cnode is cleared
 * first; the names end at CTL_EOL or with CTL_CREATE; making a node that
 * exists -- same parent, same name, same handler, and the same number or
 * CTL_CREATE -- returns 0 and the existing node in *cnode ("mkdir -p"; it
 * stays with the log that made it), any other clash of name or number is
 * EEXIST.  Bad arguments create nothing, are logged, and return NetBSD's
 * errno: ENAMETOOLONG for a name of SYSCTL_NAMELEN characters or more or
 * no CTL_EOL/CTL_CREATE within CTL_MAXNAME names; EINVAL for a non-NULL
 * rnode pointing to NULL, a non-zero cflags, an unknown type, a name that
 * starts with a digit or has characters other than [A-Za-z0-9_-];
 * ENOTDIR or ENOENT for a parent that is a leaf or not there.  Beyond
 * NetBSD, a writable string and a variable of the wrong size are EINVAL.
 * Nodes a driver's detach leaves (no sysctl_teardown) are removed with
 * the device and logged as a bug.
 */
#ifndef _SYS_SYSCTL_H_
#define _SYS_SYSCTL_H_

#include <sys/types.h>

#define CTL_MAXNAME	12	/* names read by sysctl_createv, at most (NetBSD's) */
#define SYSCTL_NAMELEN	32

/* Special names. */
#define CTL_EOL		(-1)
#define CTL_QUERY	(-2)
#define CTL_CREATE	(-3)
#define CTL_CREATESYM	(-4)	/* refused (EINVAL), as in sysctl_createv */
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

/*
 * Flags, NetBSD's values.  A node is writable when any CTLFLAG_READWRITE
 * bit is set (as sysctl_lookup tests it); the others are accepted and
 * change nothing here (no credentials, nothing permanent, values shown in
 * decimal), except CTLFLAG_IMMEDIATE: the value is the u_quad_t argument,
 * kept in the node.  NetBSD's other flags are not defined.
 */
#define CTLFLAG_READONLY	0x00000000
#define CTLFLAG_READWRITE	0x00000070
#define CTLFLAG_ANYWRITE	0x00000080
#define CTLFLAG_PRIVATE		0x00000100
#define CTLFLAG_PERMANENT	0x00000200
#define CTLFLAG_IMMEDIATE	0x00000800
#define CTLFLAG_HEX		0x00001000

#define SYSCTL_TYPEMASK		0x0000000f
#define SYSCTL_TYPE(x)		((x) & SYSCTL_TYPEMASK)
#define SYSCTL_FLAGMASK		0x00fffff0
#define SYSCTL_FLAGS(x)		((x) & SYSCTL_FLAGMASK)
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
