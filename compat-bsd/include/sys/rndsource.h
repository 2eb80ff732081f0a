/*
 * sys/rndsource.h -- entropy sources (compat-bsd): accepted and ignored;
 * the host kernel gathers entropy.
 */
#ifndef _SYS_RNDSOURCE_H_
#define _SYS_RNDSOURCE_H_

#include <sys/types.h>

#define RND_TYPE_NET		4
#define RND_FLAG_DEFAULT	0
#define RND_FLAG_COLLECT_TIME	0x1
#define RND_FLAG_COLLECT_VALUE	0x2

typedef struct krndsource {
	char	name[16];
	uint32_t type;
	uint32_t flags;
} krndsource_t;

static inline void
rnd_attach_source(krndsource_t *rs, const char *name, uint32_t type,
    uint32_t flags)
{
	(void)name;
	rs->type = type;
	rs->flags = flags;
}

static inline void rnd_detach_source(krndsource_t *rs) { (void)rs; }
static inline void rnd_add_uint32(krndsource_t *rs, uint32_t v)
{
	(void)rs;
	(void)v;
}

#endif /* _SYS_RNDSOURCE_H_ */
