/*
 * sys/cpu.h -- CPU helpers (compat-bsd).
 */
#ifndef _SYS_CPU_H_
#define _SYS_CPU_H_

#include <sys/types.h>

struct cpu_info;
#define curcpu()		((struct cpu_info *)0)
#define cpu_index(ci)		0
#define kpreempt_disable()	((void)0)
#define kpreempt_enable()	((void)0)

#endif /* _SYS_CPU_H_ */
