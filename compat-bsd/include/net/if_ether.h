/*
 * net/if_ether.h -- Ethernet interfaces (compat-bsd).
 *
 * struct ethercom comes first in a driver's softc, with its ifnet first in
 * it, as in NetBSD.  The multicast list (ec_multiaddrs) is kept by
 * ether_ioctl's SIOCADDMULTI/SIOCDELMULTI handling; drivers walk it with
 * ETHER_FIRST_MULTI/ETHER_NEXT_MULTI to program their filters.  A range
 * entry (enm_addrlo != enm_addrhi) asks for all multicast, as in NetBSD:
 * the adapter adds 01:00:00:00:00:00..ff:ff:ff:ff:ff:ff for the stack's
 * all-multicast request.
 */
#ifndef _NET_IF_ETHER_H_
#define _NET_IF_ETHER_H_

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/mutex.h>
#include <net/if.h>

#define ETHER_ADDR_LEN	6
#define ETHER_TYPE_LEN	2
#define ETHER_CRC_LEN	4
#define ETHER_HDR_LEN	(ETHER_ADDR_LEN * 2 + ETHER_TYPE_LEN)
#define ETHER_MIN_LEN	64
#define ETHER_MAX_LEN	1518
#define ETHERMTU	(ETHER_MAX_LEN - ETHER_HDR_LEN - ETHER_CRC_LEN)
#define ETHERMIN	(ETHER_MIN_LEN - ETHER_HDR_LEN - ETHER_CRC_LEN)
#define ETHER_MAX_LEN_JUMBO 9018
#define ETHERMTU_JUMBO	(ETHER_MAX_LEN_JUMBO - ETHER_HDR_LEN - ETHER_CRC_LEN)
#define ETHER_VLAN_ENCAP_LEN 4
#define ETHER_ALIGN	2
#define ETHER_IS_MULTICAST(a)	((a)[0] & 0x01)

#define ETHERTYPE_IP	0x0800
#define ETHERTYPE_ARP	0x0806
#define ETHERTYPE_VLAN	0x8100
#define ETHERTYPE_IPV6	0x86dd

struct ether_header {
	uint8_t		ether_dhost[ETHER_ADDR_LEN];
	uint8_t		ether_shost[ETHER_ADDR_LEN];
	uint16_t	ether_type;
} __packed;

struct ether_addr {
	uint8_t		ether_addr_octet[ETHER_ADDR_LEN];
} __packed;

/* ec_capabilities */
#define ETHERCAP_VLAN_MTU	0x00000001
#define ETHERCAP_VLAN_HWTAGGING	0x00000002
#define ETHERCAP_JUMBO_MTU	0x00000004
#define ETHERCAP_VLAN_HWFILTER	0x00000008
#define ETHERCAP_EEE		0x00000010
#define ETHERCAP_MASK		0x0000001f

/* ec_flags */
#define ETHER_F_ALLMULTI	0x0001

struct ether_multi {
	uint8_t		enm_addrlo[ETHER_ADDR_LEN];
	uint8_t		enm_addrhi[ETHER_ADDR_LEN];
	u_int		enm_refcount;
	LIST_ENTRY(ether_multi) enm_list;
};

struct ether_multistep {
	struct ether_multi *e_enm;
};

struct mii_data;
struct ifmedia;
struct ethercom;
typedef int (*ether_cb_t)(struct ethercom *);

struct ethercom {
	struct ifnet	ec_if;			/* must be first */
	LIST_HEAD(, ether_multi) ec_multiaddrs;
	int		ec_multicnt;
	int		ec_capabilities;
	int		ec_capenable;
	int		ec_nvlans;
	int		ec_flags;		/* ETHER_F_* */
	struct mii_data	*ec_mii;
	struct ifmedia	*ec_ifmedia;
	ether_cb_t	ec_ifflags_cb;
	kmutex_t	*ec_lock;
	short		ec_if_flags;		/* flags at the last SIOCSIFFLAGS */
	struct mowner	ec_rx_mowner;		/* MCLAIM owners: names only */
	struct mowner	ec_tx_mowner;
};

/* The longest frame an interface sends: MTU, header, VLAN tag, CRC. */
#define ETHER_MAX_FRAME(ifp, etype, hasfcs)				\
	((ifp)->if_mtu + ETHER_HDR_LEN +				\
	 ((hasfcs) ? ETHER_CRC_LEN : 0) +				\
	 (((etype) == ETHERTYPE_VLAN) ? ETHER_VLAN_ENCAP_LEN : 0))

#define ETHER_LOCK(ec)		mutex_enter((ec)->ec_lock)
#define ETHER_UNLOCK(ec)	mutex_exit((ec)->ec_lock)

#define ETHER_NEXT_MULTI(step, enm) do {				\
	if (((enm) = (step).e_enm) != NULL)				\
		(step).e_enm = LIST_NEXT((enm), enm_list);		\
} while (0)
#define ETHER_FIRST_MULTI(step, ec, enm) do {				\
	(step).e_enm = LIST_FIRST(&(ec)->ec_multiaddrs);		\
	ETHER_NEXT_MULTI((step), (enm));				\
} while (0)

void	ether_ifattach(struct ifnet *, const uint8_t *);
void	ether_ifdetach(struct ifnet *);
int	ether_ioctl(struct ifnet *, u_long, void *);
void	ether_set_ifflags_cb(struct ethercom *, ether_cb_t);
int	ether_addmulti(const struct sockaddr *, struct ethercom *);
int	ether_delmulti(const struct sockaddr *, struct ethercom *);
uint32_t ether_crc32_le(const uint8_t *, size_t);
uint32_t ether_crc32_be(const uint8_t *, size_t);
char	*ether_sprintf(const uint8_t *);
struct ifmediareq;
int	ether_mediachange(struct ifnet *);
void	ether_mediastatus(struct ifnet *, struct ifmediareq *);

/* pktkit: the stack's all-multicast request, as a range entry. */
int	pktkit_ether_allmulti(struct ethercom *, bool);

#endif /* _NET_IF_ETHER_H_ */
