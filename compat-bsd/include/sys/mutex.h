/*
 * sys/mutex.h -- kmutex(9) (compat-bsd).
 *
 * A kmutex is a real lock (a futex-based mutex in the Rust side), so an
 * IFEF_MPSAFE driver protects itself exactly as in NetBSD.  Spin and
 * adaptive mutexes are the same lock here.
 */
#ifndef _SYS_MUTEX_H_
#define _SYS_MUTEX_H_

#include <sys/types.h>

typedef enum kmutex_type_t {
	MUTEX_DEFAULT = 0,
	MUTEX_SPIN = 1,
	MUTEX_ADAPTIVE = 2,
	MUTEX_DRIVER = 3
} kmutex_type_t;

struct kmutex {
	uint32_t	mtx_state;	/* 0 free, 1 held, 2 held and waited for */
	int32_t		mtx_owner;	/* thread id of the holder, 0 if free */
	int32_t		mtx_ipl;
	uint32_t	mtx_magic;
};

void	mutex_init(kmutex_t *, kmutex_type_t, int);
void	mutex_destroy(kmutex_t *);
void	mutex_enter(kmutex_t *);
void	mutex_exit(kmutex_t *);
int	mutex_tryenter(kmutex_t *);
int	mutex_owned(const kmutex_t *);
#define mutex_spin_enter(m)	mutex_enter(m)
#define mutex_spin_exit(m)	mutex_exit(m)
kmutex_t *mutex_obj_alloc(kmutex_type_t, int);
void	mutex_obj_hold(kmutex_t *);
bool	mutex_obj_free(kmutex_t *);

#endif /* _SYS_MUTEX_H_ */
