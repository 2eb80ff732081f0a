/*
 * kern_sysctl.c -- sysctl_createv's variable argument list.
 *
 * The names that place the new node end with CTL_EOL; C is the side that
 * can read them.  At most CTL_MAXNAME are read: a list without CTL_EOL
 * within that bound is refused (EINVAL) before anything is made.  The
 * node itself is made, checked and kept by the Rust side (sysctl.rs).
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
	int v;

	va_start(ap, newlen);
	for (n = 0; n < CTL_MAXNAME; n++) {
		v = va_arg(ap, int);
		if (v == CTL_EOL)
			break;
		names[n] = v;
	}
	va_end(ap);
	if (n == CTL_MAXNAME) {
		printf("sysctl_createv %s: no CTL_EOL within %d names\n",
		    namep != NULL ? namep : "(null)", CTL_MAXNAME);
		return EINVAL;
	}
	return pktkit_sysctl_create(log, rnode, cnode, flags, type, namep,
	    descr, func, qv, newp, newlen, names, n);
}
