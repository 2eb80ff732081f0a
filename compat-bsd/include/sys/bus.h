/*
 * sys/bus.h -- bus_space(9) and bus_dma(9) (compat-bsd).
 *
 * bus_space: a tag says which space (memory or I/O ports) of which device;
 * for memory space the handle is the virtual address of the mapped BAR
 * (plus the offset mapped), so reads and writes are volatile accesses
 * inlined here; for I/O space the handle is (BAR << 48 | offset) and the
 * access goes through the device (VFIO region) in the Rust side.
 *
 * bus_dma: DMA memory comes from the device (bus_dmamem_alloc: memory mapped
 * for the device, segment addresses are IOVAs); maps are loaded with the
 * IOVAs of kernel buffers (bus_dmamap_load) or of mbuf chains
 * (bus_dmamap_load_mbuf, from each buffer's m_paddr, no lookup).
 * bus_dmamap_sync is the fence the direction needs: pktkit memory is
 * cache-coherent, so syncs only order the CPU's accesses against the
 * device's (see the comments at bus_dmamap_sync below).
 */
#ifndef _SYS_BUS_H_
#define _SYS_BUS_H_

#include <sys/types.h>

struct mbuf;
struct proc;

typedef uint64_t	bus_addr_t;
typedef uint64_t	bus_size_t;
typedef uintptr_t	bus_space_handle_t;

#define BUS_SPACE_MEM	0
#define BUS_SPACE_IO	1

struct pktkit_bus_space {
	int	bs_type;	/* BUS_SPACE_MEM or BUS_SPACE_IO */
	void	*bs_ctx;	/* the adapter's device context */
};
typedef struct pktkit_bus_space	*bus_space_tag_t;

#define BUS_SPACE_MAP_LINEAR		0x01
#define BUS_SPACE_MAP_PREFETCHABLE	0x02
#define BUS_SPACE_MAP_CACHEABLE		0x04
#define BUS_SPACE_BARRIER_READ		0x01
#define BUS_SPACE_BARRIER_WRITE		0x02

/* I/O handles: BAR index in the top bits, offset within the BAR below. */
#define PKTKIT_BUS_IO_BAR_SHIFT		48
#define PKTKIT_BUS_IO_OFF_MASK		((1ULL << PKTKIT_BUS_IO_BAR_SHIFT) - 1)

uint32_t pktkit_bus_io_read(bus_space_tag_t, bus_space_handle_t, int);
void	pktkit_bus_io_write(bus_space_tag_t, bus_space_handle_t, int, uint32_t);

int	bus_space_map(bus_space_tag_t, bus_addr_t, bus_size_t, int,
	    bus_space_handle_t *);
void	bus_space_unmap(bus_space_tag_t, bus_space_handle_t, bus_size_t);

static inline int
bus_space_subregion(bus_space_tag_t t, bus_space_handle_t h, bus_size_t off,
    bus_size_t sz, bus_space_handle_t *nh)
{
	(void)t;
	(void)sz;
	*nh = h + off;
	return 0;
}

/* Orders accesses to device registers: a full fence covers both ways. */
static inline void
bus_space_barrier(bus_space_tag_t t, bus_space_handle_t h, bus_size_t o,
    bus_size_t l, int f)
{
	(void)t; (void)h; (void)o; (void)l; (void)f;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#define __PKTKIT_BUS_RW(n, type)					\
static inline type							\
bus_space_read_##n(bus_space_tag_t t, bus_space_handle_t h, bus_size_t o) \
{									\
	if (__predict_true(t->bs_type == BUS_SPACE_MEM))		\
		return *(volatile type *)(h + o);			\
	return (type)pktkit_bus_io_read(t, h + o, (n));			\
}									\
static inline void							\
bus_space_write_##n(bus_space_tag_t t, bus_space_handle_t h, bus_size_t o, \
    type v)								\
{									\
	if (__predict_true(t->bs_type == BUS_SPACE_MEM))		\
		*(volatile type *)(h + o) = v;				\
	else								\
		pktkit_bus_io_write(t, h + o, (n), v);			\
}									\
static inline void							\
bus_space_read_multi_##n(bus_space_tag_t t, bus_space_handle_t h,	\
    bus_size_t o, type *p, bus_size_t c)				\
{									\
	while (c-- > 0)							\
		*p++ = bus_space_read_##n(t, h, o);			\
}									\
static inline void							\
bus_space_write_multi_##n(bus_space_tag_t t, bus_space_handle_t h,	\
    bus_size_t o, const type *p, bus_size_t c)				\
{									\
	while (c-- > 0)							\
		bus_space_write_##n(t, h, o, *p++);			\
}									\
static inline void							\
bus_space_read_region_##n(bus_space_tag_t t, bus_space_handle_t h,	\
    bus_size_t o, type *p, bus_size_t c)				\
{									\
	for (; c > 0; c--, o += (n))					\
		*p++ = bus_space_read_##n(t, h, o);			\
}									\
static inline void							\
bus_space_write_region_##n(bus_space_tag_t t, bus_space_handle_t h,	\
    bus_size_t o, const type *p, bus_size_t c)				\
{									\
	for (; c > 0; c--, o += (n))					\
		bus_space_write_##n(t, h, o, *p++);			\
}									\
static inline void							\
bus_space_set_region_##n(bus_space_tag_t t, bus_space_handle_t h,	\
    bus_size_t o, type v, bus_size_t c)					\
{									\
	for (; c > 0; c--, o += (n))					\
		bus_space_write_##n(t, h, o, v);			\
}

__PKTKIT_BUS_RW(1, uint8_t)
__PKTKIT_BUS_RW(2, uint16_t)
__PKTKIT_BUS_RW(4, uint32_t)
#undef __PKTKIT_BUS_RW

/*
 * Stream methods: no byte swapping, which on a little-endian host is what
 * the plain methods do already.
 */
#define __BUS_SPACE_HAS_STREAM_METHODS	1
#define bus_space_read_stream_2		bus_space_read_2
#define bus_space_read_stream_4		bus_space_read_4
#define bus_space_write_stream_2	bus_space_write_2
#define bus_space_write_stream_4	bus_space_write_4
#define bus_space_read_multi_stream_2	bus_space_read_multi_2
#define bus_space_read_multi_stream_4	bus_space_read_multi_4
#define bus_space_write_multi_stream_2	bus_space_write_multi_2
#define bus_space_write_multi_stream_4	bus_space_write_multi_4
#define bus_space_read_region_stream_2	bus_space_read_region_2
#define bus_space_read_region_stream_4	bus_space_read_region_4
#define bus_space_write_region_stream_2	bus_space_write_region_2
#define bus_space_write_region_stream_4	bus_space_write_region_4

/* Whether p is aligned well enough to access a t through it. */
#define BUS_SPACE_ALIGNED_POINTER(p, t) \
	((((uintptr_t)(p)) & (sizeof(t) - 1)) == 0)

/* bus_dma */
typedef struct bus_dma_segment {
	bus_addr_t	ds_addr;	/* IOVA */
	bus_size_t	ds_len;
	void		*_ds_va;	/* where the CPU sees it */
} bus_dma_segment_t;

struct pktkit_bus_dma_tag {
	void	*dt_ctx;		/* the adapter's device context */
};
typedef struct pktkit_bus_dma_tag	*bus_dma_tag_t;

struct pktkit_bus_dmamap {
	bus_size_t	_dm_size;	/* largest transfer */
	int		_dm_segcnt;	/* room in dm_segs */
	bus_size_t	_dm_maxsegsz;
	bus_size_t	_dm_boundary;
	int		_dm_flags;	/* create flags, PKTKIT_BUS_DMAMAP_* */
	bus_size_t	dm_maxsegsz;
	bus_size_t	dm_mapsize;	/* bytes loaded */
	int		dm_nsegs;	/* segments loaded */
	bus_dma_segment_t dm_segs[1];	/* _dm_segcnt of them */
};
typedef struct pktkit_bus_dmamap	*bus_dmamap_t;

/*
 * _dm_flags bit: the device writes into the loaded memory (the map was
 * loaded with BUS_DMA_READ, or synced with BUS_DMASYNC_PREREAD since its
 * load). The adapter's fault injection redirects exactly these maps.
 */
#define PKTKIT_BUS_DMAMAP_DEVWRITE	0x40000000

#define BUS_DMA_WAITOK		0x000
#define BUS_DMA_NOWAIT		0x001
#define BUS_DMA_ALLOCNOW	0x002
#define BUS_DMA_COHERENT	0x004
#define BUS_DMA_STREAMING	0x008
#define BUS_DMA_BUS1		0x010
#define BUS_DMA_READ		0x100
#define BUS_DMA_WRITE		0x200
#define BUS_DMA_NOCACHE		0x400
#define BUS_DMA_PREFETCHABLE	0x800

#define BUS_DMASYNC_PREREAD	0x01
#define BUS_DMASYNC_POSTREAD	0x02
#define BUS_DMASYNC_PREWRITE	0x04
#define BUS_DMASYNC_POSTWRITE	0x08

int	bus_dmamap_create(bus_dma_tag_t, bus_size_t, int, bus_size_t,
	    bus_size_t, int, bus_dmamap_t *);
void	bus_dmamap_destroy(bus_dma_tag_t, bus_dmamap_t);
int	bus_dmamap_load(bus_dma_tag_t, bus_dmamap_t, void *, bus_size_t,
	    struct proc *, int);
int	bus_dmamap_load_mbuf(bus_dma_tag_t, bus_dmamap_t, struct mbuf *, int);
void	bus_dmamap_unload(bus_dma_tag_t, bus_dmamap_t);

/*
 * The memory is cache-coherent (x86, and IOMMU-mapped pool memory), so a
 * sync is only an ordering point:
 * - PREWRITE/PREREAD: the CPU's writes to the buffer and its descriptor
 *   must be visible before the register write that hands it to the device:
 *   a release (store-store and load-store) fence;
 * - POSTREAD/POSTWRITE: reads of what the device wrote must not move before
 *   the status read that said it was done: an acquire fence.
 * A sequentially consistent fence covers both when both are asked.
 * PREREAD also marks the map as one the device writes into
 * (PKTKIT_BUS_DMAMAP_DEVWRITE), for the adapter's fault injection.
 */
static inline void
bus_dmamap_sync(bus_dma_tag_t t, bus_dmamap_t m, bus_addr_t o, bus_size_t l,
    int ops)
{
	(void)t; (void)o; (void)l;
	/* Remember that the device writes here (one store, the first time). */
	if ((ops & BUS_DMASYNC_PREREAD) &&
	    (__atomic_load_n(&m->_dm_flags, __ATOMIC_RELAXED) &
	    PKTKIT_BUS_DMAMAP_DEVWRITE) == 0)
		__atomic_fetch_or(&m->_dm_flags, PKTKIT_BUS_DMAMAP_DEVWRITE,
		    __ATOMIC_RELAXED);
	if ((ops & (BUS_DMASYNC_PREREAD | BUS_DMASYNC_PREWRITE)) &&
	    (ops & (BUS_DMASYNC_POSTREAD | BUS_DMASYNC_POSTWRITE)))
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	else if (ops & (BUS_DMASYNC_PREREAD | BUS_DMASYNC_PREWRITE))
		__atomic_thread_fence(__ATOMIC_RELEASE);
	else
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

int	bus_dmamem_alloc(bus_dma_tag_t, bus_size_t, bus_size_t, bus_size_t,
	    bus_dma_segment_t *, int, int *, int);
void	bus_dmamem_free(bus_dma_tag_t, bus_dma_segment_t *, int);
int	bus_dmamem_map(bus_dma_tag_t, bus_dma_segment_t *, int, size_t,
	    void **, int);
void	bus_dmamem_unmap(bus_dma_tag_t, void *, size_t);

#endif /* _SYS_BUS_H_ */
