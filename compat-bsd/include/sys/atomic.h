/*
 * sys/atomic.h -- atomic_ops(3) (compat-bsd), over the compiler builtins.
 */
#ifndef _SYS_ATOMIC_H_
#define _SYS_ATOMIC_H_

#include <sys/types.h>

#define atomic_inc_uint(p)	((void)__atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST))
#define atomic_dec_uint(p)	((void)__atomic_sub_fetch((p), 1, __ATOMIC_SEQ_CST))
#define atomic_inc_64(p)	((void)__atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST))
#define atomic_add_int(p, v)	((void)__atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST))
#define atomic_swap_uint(p, v)	__atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define atomic_load_relaxed(p)	__atomic_load_n((p), __ATOMIC_RELAXED)
#define atomic_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define atomic_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define atomic_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define membar_sync()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define membar_producer()	__atomic_thread_fence(__ATOMIC_RELEASE)
#define membar_consumer()	__atomic_thread_fence(__ATOMIC_ACQUIRE)

#endif /* _SYS_ATOMIC_H_ */
