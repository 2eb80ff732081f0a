/*
 * sys/kmem.h -- kmem(9) (compat-bsd): the host heap, used at attach and on
 * control paths only.
 */
#ifndef _SYS_KMEM_H_
#define _SYS_KMEM_H_

#include <sys/types.h>

typedef unsigned int km_flag_t;
#define KM_SLEEP	0x1
#define KM_NOSLEEP	0x2
#define KM_PUSHPAGE	0x4

void	*kmem_alloc(size_t, km_flag_t);
void	*kmem_zalloc(size_t, km_flag_t);
void	kmem_free(void *, size_t);
#define kmem_intr_alloc(s, f)	kmem_alloc((s), (f))
#define kmem_intr_zalloc(s, f)	kmem_zalloc((s), (f))
#define kmem_intr_free(p, s)	kmem_free((p), (s))

#endif /* _SYS_KMEM_H_ */
