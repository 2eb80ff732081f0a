/*
 * sys/proc.h -- only the opaque struct proc that bus_dmamap_load takes.
 */
#ifndef _SYS_PROC_H_
#define _SYS_PROC_H_

struct proc;

#endif /* _SYS_PROC_H_ */
