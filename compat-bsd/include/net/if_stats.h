/*
 * net/if_stats.h -- interface statistics (compat-bsd), current NetBSD form.
 *
 * if_statinc and friends update the ifnet's counters; the adapter reads
 * them into the interface's counters.  For a driver without IFEF_MPSAFE
 * the runtime serializes every writer, so a plain relaxed add suffices;
 * an MP-safe driver gets atomic adds.
 */
#ifndef _NET_IF_STATS_H_
#define _NET_IF_STATS_H_

#include <sys/types.h>

typedef enum if_stat_t {
	if_ipackets = 0,
	if_ierrors = 1,
	if_opackets = 2,
	if_oerrors = 3,
	if_collisions = 4,
	if_ibytes = 5,
	if_obytes = 6,
	if_imcasts = 7,
	if_omcasts = 8,
	if_iqdrops = 9,
	if_noproto = 10,
	IF_NSTATS = 11
} if_stat_t;

struct ifnet;
static inline void if_statadd(struct ifnet *, if_stat_t, uint64_t);

static inline void
if_statinc(struct ifnet *ifp, if_stat_t s)
{
	if_statadd(ifp, s, 1);
}

static inline void
if_statdec(struct ifnet *ifp, if_stat_t s)
{
	if_statadd(ifp, s, (uint64_t)-1);
}

typedef struct ifnet *net_stat_ref_t;
#define IF_STAT_GETREF(ifp)		(ifp)
#define IF_STAT_PUTREF(ifp)		((void)(ifp))
#define if_statinc_ref(ifp, r, s)	if_statinc((r), (s))
#define if_statadd_ref(ifp, r, s, v)	if_statadd((r), (s), (v))

#endif /* _NET_IF_STATS_H_ */
