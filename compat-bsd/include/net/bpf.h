/*
 * net/bpf.h -- bpf(4) taps (compat-bsd).
 *
 * The stack's own taps see every packet at the interface (receive from the
 * receive queue, transmit as the adapter hands packets to if_snd), so a
 * driver's bpf_mtap calls are no-ops here; they stay in ported code
 * unchanged.
 */
#ifndef _NET_BPF_H_
#define _NET_BPF_H_

#include <sys/types.h>

struct ifnet;
struct mbuf;

#define DLT_NULL	0
#define DLT_EN10MB	1
#define BPF_D_IN	0
#define BPF_D_OUT	1
#define BPF_D_INOUT	2

static inline void
bpf_mtap(struct ifnet *ifp, struct mbuf *m, u_int dir)
{
	(void)ifp; (void)m; (void)dir;
}
static inline void bpf_attach(struct ifnet *ifp, u_int dlt, u_int hdrlen)
{
	(void)ifp; (void)dlt; (void)hdrlen;
}
static inline void bpf_detach(struct ifnet *ifp) { (void)ifp; }
#define bpf_mtap_softint(ifp, m)	bpf_mtap((ifp), (m), BPF_D_IN)

#endif /* _NET_BPF_H_ */
