/*
 * pktkit/legacy_abi.h -- the legacy driver ABI, version 1.3.
 *
 * A legacy driver is a C shared object loaded by pktkit's shim
 * (shim-legacy/, crate pktkit-shim) by path:
 *
 *	pktkit run -d legacy:/lib/pktkit/devn-ne2000.so,pci=0000:00:04.0
 *
 * The object exports one symbol, PKTKIT_LG_ENTRY_SYMBOL, a const
 * struct pktkit_lg_entry.  Nothing else of the object is looked up.  The
 * shim checks the file (ELF shared object for this machine), the symbol and
 * le_abi_major before it calls anything; then it calls le_init once per
 * device with the table of stack services (struct pktkit_lg_services) and
 * receives the driver's functions (struct pktkit_lg_funcs).
 *
 * Threading: the shim serializes every call into the driver (init,
 * shutdown, every function of pktkit_lg_funcs, interrupt handlers, timer
 * callbacks).  A driver needs no lock of its own and must not create
 * threads.  Services may be called only from inside such a call.
 *
 * Versioning: a change that breaks a v1 driver (layout, meaning, removal)
 * needs a new major; a new minor may only append members at the end of
 * struct pktkit_lg_services (ls_size says how far the shim's table goes:
 * test with PKTKIT_LG_SVC_HAS) and at the end of struct pktkit_lg_funcs
 * (the shim reads a driver's table only as far as its le_abi_minor says).
 * Every released minor has a frozen snapshot of this file
 * (legacy_abi_v1.h for 1.0, legacy_abi_v1_1.h for 1.1, legacy_abi_v1_2.h
 * for 1.2, legacy_abi_v1_3.h for 1.3): a test builds a driver against
 * each and loads it into the current shim.
 *
 * 1.1 added bursts (optional on both sides, a 1.0 driver is unchanged):
 * lf_transmit_burst, and the services ls_pkt_alloc_burst,
 * ls_pkt_free_burst, ls_rx_burst and ls_tx_done_burst.
 *
 * 1.2 added lf_reset (optional; without it, or from a 1.0 or 1.1 driver,
 * the stack's reset answers "not supported").
 *
 * 1.3 added flat descriptors (optional on both sides): a frame in one
 * stack buffer as one struct pktkit_lg_desc, no packet/buffer/fragment
 * lists: lf_transmit_desc, and the services ls_rx_desc_alloc,
 * ls_rx_desc, ls_rx_desc_free and ls_tx_desc_done.
 *
 * docs/legacy-abi.md documents every call.
 */
#ifndef PKTKIT_LEGACY_ABI_H
#define PKTKIT_LEGACY_ABI_H

#include <stddef.h>
#include <stdint.h>

#define PKTKIT_LG_ABI_MAJOR	1
#define PKTKIT_LG_ABI_MINOR	3

/* The one symbol a driver exports: const struct pktkit_lg_entry. */
#define PKTKIT_LG_ENTRY_SYMBOL	"pktkit_legacy_entry"
/* Marks it exported even when built with -fvisibility=hidden:
 *	PKTKIT_LG_EXPORT const struct pktkit_lg_entry pktkit_legacy_entry = ...; */
#define PKTKIT_LG_EXPORT	__attribute__((visibility("default")))

/* Return codes: 0 or a positive count on success, a negative errno. */
#define PKTKIT_LG_OK		0
#define PKTKIT_LG_EIO		(-5)	/* the device failed */
#define PKTKIT_LG_ENOMEM	(-12)	/* out of packets or memory */
#define PKTKIT_LG_EBUSY		(-16)	/* transmit: no room now, not taken */
#define PKTKIT_LG_ENODEV	(-19)	/* no such device */
#define PKTKIT_LG_EINVAL	(-22)	/* bad argument */
#define PKTKIT_LG_ENOTSUP	(-95)	/* not supported */

/* Log levels for ls_log. */
#define PKTKIT_LG_LOG_ERR	0
#define PKTKIT_LG_LOG_WARN	1
#define PKTKIT_LG_LOG_INFO	2
#define PKTKIT_LG_LOG_DEBUG	3

/*
 * Packets.
 *
 * A packet is a frame of lp_len bytes held in a list of buffers, each a
 * list of fragments.  Fragments carry their virtual address and the bus
 * address a device uses for DMA.  A packet belongs to whoever allocated it
 * (the stack, through ls_pkt_alloc, or the shim, for transmit) and is lent:
 *
 *  - receive: the driver takes a packet from ls_pkt_alloc, fills it, sets
 *    lf_len and lp_len, and gives it to ls_rx (or back to ls_pkt_free);
 *  - transmit: lf_transmit lends a packet to the driver, which sends it and
 *    calls lp_done(pkt, status) exactly once, from any call into it
 *    (transmit itself, an interrupt, a timer, stop).  After lp_done the
 *    packet and its memory are gone.
 */
/* Fragments a bare packet (ls_pkt_alloc size 0) has room for. */
#define PKTKIT_LG_BARE_FRAGS	16

#define PKTKIT_LG_PKT_BCAST	0x0001	/* rx: link-level broadcast */
#define PKTKIT_LG_PKT_MCAST	0x0002	/* rx: link-level multicast */

struct pktkit_lg_frag {
	void		*lf_ptr;	/* first byte */
	uint64_t	lf_busaddr;	/* bus (DMA) address of lf_ptr */
	uint32_t	lf_len;		/* valid bytes (rx: room, then length) */
	uint32_t	lf_reserved;
};

struct pktkit_lg_buf {
	struct pktkit_lg_buf	*lb_next;	/* next buffer, NULL at the end */
	struct pktkit_lg_frag	*lb_frags;	/* lb_nfrags fragments */
	uint32_t		lb_nfrags;
	uint32_t		lb_reserved;
};

struct pktkit_lg_packet;
/* Completes a transmit: status 0 sent, negative errno failed. */
typedef void pktkit_lg_done_fn(struct pktkit_lg_packet *pkt, int status);

struct pktkit_lg_packet {
	uint32_t		lp_len;		/* frame bytes, without CRC */
	uint32_t		lp_flags;	/* PKTKIT_LG_PKT_* */
	struct pktkit_lg_buf	*lp_bufs;	/* first buffer */
	pktkit_lg_done_fn	*lp_done;	/* tx completion, set by the owner */
	void			*lp_driver;	/* the driver's, while it holds it */
	struct pktkit_lg_packet	*lp_next;	/* the driver's, for its queues */
	uint64_t		lp_owner[2];	/* the owner's; never touch */
};

/*
 * ABI 1.3: a frame in one stack buffer, described flat.  Arrays of these
 * belong to whoever passes them; the callee reads (or fills) them during
 * the call only.  ld_cookie names the stack's buffer: the driver keeps it
 * and hands it back unchanged (it means nothing to the driver, and a
 * value the stack did not lend to this device is refused).
 *
 *  - receive: ls_rx_desc_alloc fills descriptors with empty buffers
 *    (ld_ptr/ld_busaddr: where the frame goes, ld_len: the room); the
 *    driver writes the frame at ld_ptr, sets ld_len (and ld_flags) and
 *    hands the descriptor up with ls_rx_desc.  The stack reads ld_cookie,
 *    ld_len and ld_flags only: the frame is where the stack said.
 *  - transmit: lf_transmit_desc lends frames as descriptors (ld_ptr,
 *    ld_busaddr, ld_len, ld_cookie); the driver keeps the cookie and
 *    completes with ls_tx_desc_done, which reads ld_cookie only.
 */
struct pktkit_lg_desc {
	void		*ld_ptr;	/* first byte */
	uint64_t	ld_busaddr;	/* bus (DMA) address of ld_ptr */
	uint32_t	ld_len;		/* rx: room, then length; tx: length */
	uint32_t	ld_flags;	/* PKTKIT_LG_PKT_* (rx) */
	uint64_t	ld_cookie;	/* the stack's; hand back unchanged */
};

/*
 * Statistics, link and control.
 */
struct pktkit_lg_stats {
	uint64_t	st_ipackets;	/* frames received */
	uint64_t	st_ibytes;
	uint64_t	st_ierrors;	/* bad frames received */
	uint64_t	st_opackets;	/* frames sent */
	uint64_t	st_obytes;
	uint64_t	st_oerrors;	/* frames that could not be sent */
	uint64_t	st_collisions;
	uint64_t	st_rx_nobuf;	/* frames lost for lack of packets */
};

struct pktkit_lg_link {
	uint32_t	ll_up;		/* carrier */
	uint32_t	ll_speed_mbps;	/* 0 when unknown */
	uint32_t	ll_full_duplex;
	uint32_t	ll_reserved;
};

struct pktkit_lg_mcast {
	uint32_t	lm_count;		/* addresses in lm_addrs */
	uint32_t	lm_reserved;
	const uint8_t	(*lm_addrs)[6];
};

/* lf_control commands and their argument. */
#define PKTKIT_LG_CTL_GET_STATS		1	/* struct pktkit_lg_stats * (out) */
#define PKTKIT_LG_CTL_GET_LINK		2	/* struct pktkit_lg_link * (out) */
#define PKTKIT_LG_CTL_GET_MAC		3	/* uint8_t[6] (out) */
#define PKTKIT_LG_CTL_SET_MAC		4	/* const uint8_t[6] */
#define PKTKIT_LG_CTL_SET_PROMISC	5	/* const uint32_t *, 0 or 1 */
#define PKTKIT_LG_CTL_SET_ALLMULTI	6	/* const uint32_t *, 0 or 1 */
#define PKTKIT_LG_CTL_SET_MULTICAST	7	/* const struct pktkit_lg_mcast * */
#define PKTKIT_LG_CTL_SET_MTU		8	/* const uint32_t * */

/* What le_init reports about a device. */
struct pktkit_lg_devinfo {
	uint32_t	di_max_mtu;		/* largest MTU (1500: no jumbo) */
	uint32_t	di_mcast_slots;		/* groups the multicast filter takes
						 * before the stack asks for
						 * all-multicast (0: no filter) */
	uint32_t	di_promisc;		/* can be made promiscuous */
	uint32_t	di_rx_frames;		/* full-size frames the device
						 * buffers on receive (0: unknown) */
};

/*
 * Device access.
 */
struct pktkit_lg_pci_info {
	uint16_t	pi_vendor;
	uint16_t	pi_device;
	uint16_t	pi_subvendor;
	uint16_t	pi_subdevice;
	uint8_t		pi_revision;
	uint8_t		pi_irq_pin;	/* 1..4 = INTA..INTD, 0 none */
	uint16_t	pi_reserved;
};

/* A driver's interrupt handler: returns 1 if the device interrupted. */
typedef int pktkit_lg_intr_fn(void *arg);
/* A timer callback. */
typedef void pktkit_lg_timer_fn(void *arg);

/* The stack as the driver sees it: opaque, passed back to every service. */
struct pktkit_lg_stack;

/*
 * The table of stack services.  Every member is always set by the shim.
 * Members marked (hot) are cheap enough for the packet path.
 */
struct pktkit_lg_services {
	uint32_t	ls_size;	/* sizeof(struct pktkit_lg_services) */
	uint32_t	ls_abi_minor;	/* minor the shim implements */

	/* Packets (hot).  size 0: a bare packet with no buffer, whose
	 * fragments the driver points at its own memory (copied on ls_rx);
	 * size 1..ls_pkt_room: one buffer with one fragment of that room. */
	struct pktkit_lg_packet *(*ls_pkt_alloc)(struct pktkit_lg_stack *,
		    uint32_t size);
	void	(*ls_pkt_free)(struct pktkit_lg_stack *,
		    struct pktkit_lg_packet *);
	uint32_t ls_pkt_room;		/* largest size ls_pkt_alloc takes */
	uint32_t ls_reserved0;
	/* Receive up-call (hot): the packet is the stack's from here on. */
	void	(*ls_rx)(struct pktkit_lg_stack *, struct pktkit_lg_packet *);
	/* The link state changed; the stack asks for it with GET_LINK. */
	void	(*ls_link_changed)(struct pktkit_lg_stack *);

	/* Options given with -d (key=value), NULL when absent. */
	const char *(*ls_option)(struct pktkit_lg_stack *, const char *key);
	void	(*ls_log)(struct pktkit_lg_stack *, int level, const char *msg);

	/* PCI: attach the function at "DDDD:BB:DD.F"; returns a handle >= 0
	 * for the calls below, or a negative errno. */
	int	(*ls_pci_attach)(struct pktkit_lg_stack *, const char *bdf,
		    struct pktkit_lg_pci_info *info);
	int	(*ls_pci_cfg_read)(struct pktkit_lg_stack *, int pci,
		    uint32_t off, uint32_t width, uint32_t *val);
	int	(*ls_pci_cfg_write)(struct pktkit_lg_stack *, int pci,
		    uint32_t off, uint32_t width, uint32_t val);
	int	(*ls_mmio_map)(struct pktkit_lg_stack *, int pci, uint32_t bar,
		    volatile void **va, uint64_t *len);
	/* Port I/O on an I/O BAR; width 1, 2 or 4.  A failed access reads
	 * all ones and is counted (io_errors). */
	uint32_t (*ls_io_in)(struct pktkit_lg_stack *, int pci, uint32_t bar,
		    uint32_t off, uint32_t width);
	void	(*ls_io_out)(struct pktkit_lg_stack *, int pci, uint32_t bar,
		    uint32_t off, uint32_t width, uint32_t val);
	/* rep ins/outs: count items of width bytes to/from one port. */
	void	(*ls_io_in_rep)(struct pktkit_lg_stack *, int pci, uint32_t bar,
		    uint32_t off, uint32_t width, void *buf, size_t count);
	void	(*ls_io_out_rep)(struct pktkit_lg_stack *, int pci,
		    uint32_t bar, uint32_t off, uint32_t width,
		    const void *buf, size_t count);
	/* DMA-able memory, zeroed, with its bus address. */
	int	(*ls_dma_alloc)(struct pktkit_lg_stack *, int pci, size_t len,
		    void **va, uint64_t *busaddr);
	void	(*ls_dma_free)(struct pktkit_lg_stack *, void *va);
	/* Interrupts: route the function's interrupt (INTx) to handler.
	 * After handling, the driver calls ls_intr_unmask. */
	int	(*ls_intr_attach)(struct pktkit_lg_stack *, int pci,
		    pktkit_lg_intr_fn *handler, void *arg);
	int	(*ls_intr_unmask)(struct pktkit_lg_stack *, int pci);

	/* Timers: create returns an id >= 0; arm with ms 0 disarms. */
	int	(*ls_timer_create)(struct pktkit_lg_stack *,
		    pktkit_lg_timer_fn *fn, void *arg);
	int	(*ls_timer_arm)(struct pktkit_lg_stack *, int timer,
		    uint32_t ms, uint32_t periodic);
	void	(*ls_timer_destroy)(struct pktkit_lg_stack *, int timer);
	/* Busy-waits (device reset sequences); at most 100 ms. */
	void	(*ls_delay_us)(struct pktkit_lg_stack *, uint32_t us);

	/* ABI 1.1: bursts (hot).  Present when PKTKIT_LG_SVC_HAS says so;
	 * a driver falls back to the per-packet calls above otherwise. */
	/* Up to n packets as ls_pkt_alloc(size) each, into pkts[0..]; returns
	 * how many (at most 256 a call; fewer when packets run short, 0 for a
	 * bad size). */
	uint32_t (*ls_pkt_alloc_burst)(struct pktkit_lg_stack *, uint32_t size,
		    struct pktkit_lg_packet **pkts, uint32_t n);
	/* ls_pkt_free of each of pkts[0..n). */
	void	(*ls_pkt_free_burst)(struct pktkit_lg_stack *,
		    struct pktkit_lg_packet *const *pkts, uint32_t n);
	/* ls_rx of each of pkts[0..n), in order. */
	void	(*ls_rx_burst)(struct pktkit_lg_stack *,
		    struct pktkit_lg_packet *const *pkts, uint32_t n);
	/* Completes n transmits (lp_done of each), all with status. */
	void	(*ls_tx_done_burst)(struct pktkit_lg_stack *,
		    struct pktkit_lg_packet *const *pkts, uint32_t n, int status);

	/* ABI 1.3: flat descriptors (hot).  Present when PKTKIT_LG_SVC_HAS
	 * says so. */
	/* Up to n empty receive buffers of size bytes of room (1..ls_pkt_room)
	 * into d[0..]; returns how many (at most 256 a call; fewer when
	 * buffers run short, 0 for a bad size). */
	uint32_t (*ls_rx_desc_alloc)(struct pktkit_lg_stack *, uint32_t size,
		    struct pktkit_lg_desc *d, uint32_t n);
	/* Receive up-call of d[0..n), in order: each frame is the stack's
	 * from here on (ld_cookie, ld_len, ld_flags are read). */
	void	(*ls_rx_desc)(struct pktkit_lg_stack *,
		    const struct pktkit_lg_desc *d, uint32_t n);
	/* Gives unused receive buffers back (ld_cookie is read). */
	void	(*ls_rx_desc_free)(struct pktkit_lg_stack *,
		    const struct pktkit_lg_desc *d, uint32_t n);
	/* Completes n transmits lent by lf_transmit_desc, all with status
	 * (ld_cookie is read). */
	void	(*ls_tx_desc_done)(struct pktkit_lg_stack *,
		    const struct pktkit_lg_desc *d, uint32_t n, int status);
};

/* Whether the shim's table svc has member m (set): ABI 1.1 on. */
#define PKTKIT_LG_SVC_HAS(svc, m)					\
	((svc)->ls_size >= offsetof(struct pktkit_lg_services, m) +	\
	    sizeof((svc)->m) && (svc)->m != NULL)

/* The driver's per-device state: opaque to the stack. */
struct pktkit_lg_dev;

/* The driver's functions for one device. */
struct pktkit_lg_funcs {
	/* Brings the device up (receiver and transmitter on). */
	int	(*lf_start)(struct pktkit_lg_dev *);
	/* Quiesces it: every packet lent by lf_transmit is completed with
	 * lp_done before stop returns; every rx packet is freed. */
	void	(*lf_stop)(struct pktkit_lg_dev *);
	/* Sends one packet: 0 taken (lp_done follows), PKTKIT_LG_EBUSY not
	 * taken (no room; the stack retries), other < 0 not taken, failed. */
	int	(*lf_transmit)(struct pktkit_lg_dev *,
		    struct pktkit_lg_packet *);
	/* PKTKIT_LG_CTL_*; PKTKIT_LG_ENOTSUP for what it does not do. */
	int	(*lf_control)(struct pktkit_lg_dev *, uint32_t cmd, void *arg);
	/* Receives up to budget frames through ls_rx, returns how many;
	 * NULL for interrupt-driven drivers (they receive in the handler). */
	int	(*lf_poll)(struct pktkit_lg_dev *, uint32_t budget);

	/* ABI 1.1 (read only from a driver whose le_abi_minor >= 1; NULL:
	 * not provided, the shim calls lf_transmit per packet).
	 * Sends pkts[0..n) in order: returns how many it took, a prefix
	 * (0..n); each taken packet is completed exactly once later (lp_done
	 * or ls_tx_done_burst; a frame that fails is taken and completed with
	 * a negative status).  Fewer than n: no room for the rest, which stay
	 * with the stack (PKTKIT_LG_EBUSY means 0).  Other < 0: the device
	 * failed, nothing taken: the stack counts and frees all n. */
	int	(*lf_transmit_burst)(struct pktkit_lg_dev *,
		    struct pktkit_lg_packet *const *pkts, uint32_t n);

	/* ABI 1.2 (read only from a driver whose le_abi_minor >= 2; NULL:
	 * not provided, the stack's reset is "not supported").
	 * Resets the device and reprograms it as le_init left it, keeping
	 * the settings made since (address, promiscuous, multicast, MTU).
	 * Called only while stopped (after lf_stop, nothing lent); lf_start
	 * follows.  0 done; PKTKIT_LG_ENOTSUP not supported; other < 0 the
	 * reset failed (the stack reports the errno; lf_start may still be
	 * tried). */
	int	(*lf_reset)(struct pktkit_lg_dev *);

	/* ABI 1.3 (read only from a driver whose le_abi_minor >= 3; NULL:
	 * not provided).  Sends the frames d[0..n), each in one buffer, with
	 * lf_transmit_burst's contract (a taken prefix, EBUSY 0, other < 0
	 * failed); completion is ls_tx_desc_done with the cookies.  The array
	 * is the stack's and valid during the call only: keep the cookies.
	 * Frames in several buffers still come through lf_transmit_burst or
	 * lf_transmit. */
	int	(*lf_transmit_desc)(struct pktkit_lg_dev *,
		    const struct pktkit_lg_desc *d, uint32_t n);
};

/* A -d option the driver accepts. */
struct pktkit_lg_option {
	const char	*lo_key;	/* NULL ends the list */
	const char	*lo_help;
	uint32_t	lo_required;
	uint32_t	lo_reserved;
};

/* The entry symbol's type. */
struct pktkit_lg_entry {
	uint32_t	le_abi_major;	/* PKTKIT_LG_ABI_MAJOR built against */
	uint32_t	le_abi_minor;
	const char	*le_name;	/* driver name, e.g. "ne2000" */
	const char	*le_prefix;	/* hint; the shim names devices en0.. */
	const char	*le_description;
	const struct pktkit_lg_option *le_options;
	/* Attaches one device: fills *devp, *funcsp and *info. */
	int	(*le_init)(const struct pktkit_lg_services *svc,
		    struct pktkit_lg_stack *stack,
		    struct pktkit_lg_dev **devp,
		    const struct pktkit_lg_funcs **funcsp,
		    struct pktkit_lg_devinfo *info);
	/* Detaches it (after lf_stop); frees everything init took. */
	void	(*le_shutdown)(struct pktkit_lg_dev *);
};

#endif /* PKTKIT_LEGACY_ABI_H */
