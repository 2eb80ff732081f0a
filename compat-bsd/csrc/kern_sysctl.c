/*
 * kern_sysctl.c -- sysctl_createv's variable argument list.
 *
 * First the checks NetBSD makes before it reads the names: a non-NULL
 * rnode pointing to NULL and a non-zero cflags are EINVAL, and *cnode is
 * cleared.  The names that place the new node end with CTL_EOL, or with CTL_CREATE,
 * which is the last name read (as in NetBSD, nothing after it is read).
 * C is the side that can read them.  At most CTL_MAXNAME are read: a list
 * with no CTL_EOL or CTL_CREATE among them is refused with ENAMETOOLONG,
 * and CTL_CREATESYM with EINVAL, before anything is made.  The node itself
 * is made, checked and kept by the Rust side (sysctl.rs).
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/errno.h>
#include <sys/sysctl.h>

#include "pktkit_glue.h"

int
sysctl_createv(struct sysctllog **log, int cflags,
    const struct sysctlnode **rnode, const struct sysctlnode **cnode,
    int flags, int type, const char *namep, const char *descr,
    sysctlfn func, u_quad_t qv, void *newp, size_t newlen, ...)
{
	va_list ap;
	int names[CTL_MAXNAME];
	u_int n;
	int error, v;

	/* NetBSD's checks, in NetBSD's order, before the names are read. */
	if (rnode != NULL && *rnode == NULL) {
		printf("sysctl_createv %s: *rnode is NULL\n",
		    namep != NULL ? namep : "(null)");
		return EINVAL;
	}
	if (cnode != NULL)
		*cnode = NULL;
	if (cflags != 0) {
		printf("sysctl_createv %s: cflags %#x (must be 0)\n",
		    namep != NULL ? namep : "(null)", cflags);
		return EINVAL;
	}

	error = ENAMETOOLONG;
	va_start(ap, newlen);
	for (n = 0; n < CTL_MAXNAME; n++) {
		v = va_arg(ap, int);
		if (v == CTL_EOL) {
			error = 0;
			break;
		}
		if (v == CTL_CREATESYM) {
			error = EINVAL;
			break;
		}
		names[n] = v;
		if (v == CTL_CREATE) {
			n++;
			error = 0;
			break;
		}
	}
	va_end(ap);
	if (error != 0) {
		printf("sysctl_createv %s: %s\n",
		    namep != NULL ? namep : "(null)",
		    error == EINVAL ? "CTL_CREATESYM is not supported" :
		    "no CTL_EOL or CTL_CREATE within CTL_MAXNAME names");
		return error;
	}
	return pktkit_sysctl_create(log, rnode, cnode, flags, type, namep,
	    descr, func, qv, newp, newlen, names, n);
}
