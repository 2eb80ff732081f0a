/*
 * pktkit/mbuf.h -- the one packet buffer of pktkit.
 *
 * This header is the single declaration of the mbuf layout.  Rust sees it
 * through bindgen (native/build.rs); compat-bsd's <sys/mbuf.h> includes it so
 * ported NetBSD drivers reach the same memory through the usual field macros
 * (m_next, m_data, m_len, m_pkthdr.len, m_ext.ext_buf, ...).  A layout test in
 * native/src/mbuf.rs pins every offset below; change them only together.
 *
 * Every mbuf lives in a pool of DMA-capable memory (native/src/pool.rs) and
 * always carries its own external storage: ext_buf points at the data room
 * that follows the header in the same pool element, and mh_paddr is the IOVA
 * of ext_buf, so a driver can program a descriptor without a lookup.
 * Frames larger than one data room are chains linked by m_next.
 */
#ifndef PKTKIT_MBUF_H
#define PKTKIT_MBUF_H

#include <stddef.h>
#include <stdint.h>

/* Size of the mbuf header; the data room follows it in the pool element. */
#define PKTKIT_MBUF_HDR_SIZE	128
/* Bytes kept free in front of received data for prepending headers. */
#define PKTKIT_MBUF_HEADROOM	128
/* Bytes of frame data one buffer holds after the headroom. */
#define PKTKIT_MBUF_DATAROOM	2048
/* Whole external storage of one buffer: headroom plus data room. */
#define PKTKIT_MBUF_EXTSIZE	(PKTKIT_MBUF_HEADROOM + PKTKIT_MBUF_DATAROOM)

/* m_flags */
#define M_EXT		0x00000001	/* has external storage (always set) */
#define M_PKTHDR	0x00000002	/* first buffer of a packet */
#define M_EOR		0x00000004	/* end of record */
#define M_PROTO1	0x00000008	/* protocol-private */
#define M_BCAST		0x00000100	/* received as link-level broadcast */
#define M_MCAST		0x00000200	/* received as link-level multicast */

/* m_type */
#define MT_FREE		0	/* on a pool free list */
#define MT_DATA		1	/* dynamic data */
#define MT_HEADER	2	/* packet header */

/* m_pkthdr.csum_flags: offloads asked for (tx) or done (rx). */
#define M_CSUM_TCPv4		0x00000001	/* TCP over IPv4 */
#define M_CSUM_UDPv4		0x00000002	/* UDP over IPv4 */
#define M_CSUM_TCP_UDP_BAD	0x00000004	/* rx: TCP/UDP checksum bad */
#define M_CSUM_DATA		0x00000008	/* rx: csum_data holds a partial sum */
#define M_CSUM_TCPv6		0x00000010	/* TCP over IPv6 */
#define M_CSUM_UDPv6		0x00000020	/* UDP over IPv6 */
#define M_CSUM_IPv4		0x00000040	/* IPv4 header */
#define M_CSUM_IPv4_BAD		0x00000080	/* rx: IPv4 header checksum bad */
#define M_CSUM_TSOv4		0x00000100	/* TCP segmentation over IPv4 */
#define M_CSUM_TSOv6		0x00000200	/* TCP segmentation over IPv6 */
#define M_CSUM_NO_PSEUDOHDR	0x10000000	/* rx: sum excludes the pseudo header */

/* Packet header: valid in the first buffer of a packet (M_PKTHDR). */
struct pkthdr {
	union {
		void		*ctx;	/* driver context (M_SETCTX/M_GETCTX) */
		uint32_t	index;	/* receiving interface index */
	} _rcvif;
	int32_t		len;		/* total length of the packet */
	uint32_t	csum_flags;	/* M_CSUM_* */
	uint32_t	csum_data;	/* checksum data, per csum_flags */
	uint16_t	segsz;		/* TSO segment size */
	uint16_t	ether_vtag;	/* VLAN tag, when M_VLANTAG is used */
	uint32_t	rss_hash;	/* receive hash, 0 when unknown */
	uint32_t	pkthdr_pad;
};

/* External storage: the buffer's data room. */
struct m_ext_storage {
	char		*ext_buf;	/* start of the storage */
	size_t		ext_size;	/* size of the storage */
};

/* Common header of every buffer. */
struct m_hdr {
	struct mbuf	*mh_next;	/* next buffer of this packet */
	struct mbuf	*mh_nextpkt;	/* next packet in a queue */
	char		*mh_data;	/* start of valid data */
	uint64_t	mh_paddr;	/* IOVA of ext_buf */
	int32_t		mh_len;		/* valid bytes in this buffer */
	uint32_t	mh_flags;	/* M_* */
	uint16_t	mh_type;	/* MT_* */
	uint16_t	mh_owner;	/* pool owner holding it */
	uint16_t	mh_pool;	/* index of the pool it came from */
	uint16_t	mh_pad;
};

struct mbuf {
	struct m_hdr		m_hdr;
	struct pkthdr		M_pkthdr;
	struct m_ext_storage	M_ext;
	/* Reserved for the stack; keeps the header at PKTKIT_MBUF_HDR_SIZE. */
	uint8_t			m_reserved[PKTKIT_MBUF_HDR_SIZE - 48 - 32 - 16];
};

/* NetBSD's field names. */
#define m_next		m_hdr.mh_next
#define m_nextpkt	m_hdr.mh_nextpkt
#define m_data		m_hdr.mh_data
#define m_paddr		m_hdr.mh_paddr
#define m_len		m_hdr.mh_len
#define m_flags		m_hdr.mh_flags
#define m_type		m_hdr.mh_type
#define m_owner		m_hdr.mh_owner
#define m_pkthdr	M_pkthdr
#define m_ext		M_ext

/* Pointer to the data of m, cast to type t. */
#define mtod(m, t)	((t)((m)->m_data))
/* IOVA of the first valid byte of m. */
#define mtodma(m)	((m)->m_paddr + (uint64_t)((m)->m_data - (m)->m_ext.ext_buf))
/* Context pointer kept in the packet header. */
#define M_SETCTX(m, c)	((void)((m)->m_pkthdr._rcvif.ctx = (void *)(c)))
#define M_GETCTX(m, t)	((t)((m)->m_pkthdr._rcvif.ctx))
/* Bytes free after the data of m. */
#define M_TRAILINGSPACE(m) \
	((int)((m)->m_ext.ext_buf + (m)->m_ext.ext_size - ((m)->m_data + (m)->m_len)))
/* Bytes free in front of the data of m. */
#define M_LEADINGSPACE(m)	((int)((m)->m_data - (m)->m_ext.ext_buf))

#endif /* PKTKIT_MBUF_H */
