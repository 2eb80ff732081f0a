//! Pools of DMA-capable packet buffers.
//!
//! A pool is one contiguous mapping (2 MiB huge pages when the system has
//! them, 4 KiB pages otherwise) cut into fixed elements: a 128-byte mbuf header
//! followed by its data room (`PKTKIT_MBUF_EXTSIZE` bytes). The mapping is
//! meant to be mapped once into an IOMMU with IOVA = VA, so every buffer's
//! `m_paddr` is set once, at creation, to the address of its data room.
//!
//! Allocation is built for the packet path:
//! - every thread that touches a pool gets a *slot* (up to
//!   [`MAX_THREAD_SLOTS`]); each slot has a private cache per pool, refilled
//!   from and flushed to the pool's shared free list in bulk, so the common
//!   get/put takes no lock and no atomic read-modify-write;
//! - bulk get/put move whole bursts at once;
//! - nothing on these paths allocates from the heap.
//!
//! Accounting: every buffer records the [`OwnerId`] it was allocated for, and
//! the pool keeps how many buffers each owner holds (one atomic add per bulk
//! operation). When the free list runs dry the pool first asks registered
//! scavengers to give speculative buffers back (as RISC OS's MbufManager did),
//! then counts the exhaustion and hands out fewer buffers: it never panics and
//! never blocks.
//!
//! Locking: `free` (the shared free list) is a mutex taken only to move
//! [`CACHE_BULK`] buffers at a time; `owner_names` and `scavengers` are taken
//! only on control paths. A slot's cache is touched only by the thread that
//! holds the slot (see [`thread_slot`]).

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::sys::{self, mbuf};

/// Most pools that may exist at once (the pool index is kept in `mh_pool`).
pub const MAX_POOLS: usize = 64;
/// Most owners one pool tracks; owner 0 is the pool itself ("unowned").
pub const MAX_OWNERS: usize = 256;
/// Most threads with a private cache; further threads use the shared list.
pub const MAX_THREAD_SLOTS: usize = 64;
/// Capacity of one thread's cache of one pool.
pub const CACHE_MAX: usize = 512;
/// Buffers moved between a cache and the shared list at once.
pub const CACHE_BULK: usize = 256;

const HUGE_PAGE: usize = 2 << 20;
const SMALL_PAGE: usize = 4096;

/// Header plus data room: the size of one pool element.
pub const ELEMENT_SIZE: usize =
    sys::PKTKIT_MBUF_HDR_SIZE as usize + sys::PKTKIT_MBUF_EXTSIZE as usize;

/// Every live pool, by index, so a buffer finds its pool from `mh_pool`.
static POOL_TABLE: [AtomicPtr<PoolInner>; MAX_POOLS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_POOLS];

/// Which thread slots are taken (bit i = slot i).
static SLOT_BITS: AtomicU64 = AtomicU64::new(0);

const SLOT_UNSET: usize = usize::MAX;
const SLOT_NONE: usize = usize::MAX - 1;

/// A thread's claim on a cache slot; released when the thread exits, after
/// the slot's cache of every live pool is flushed to that pool's shared list,
/// so no buffer is stranded with a thread.
struct SlotGuard(Cell<usize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let slot = self.0.get();
        if slot < MAX_THREAD_SLOTS {
            for entry in &POOL_TABLE {
                // SAFETY: see pool_by_index; pools are dropped only once no
                // thread uses them, so a listed pool outlives this flush.
                if let Some(pool) = unsafe { entry.load(Ordering::Acquire).as_ref() } {
                    pool.flush_slot(slot);
                }
            }
            SLOT_BITS.fetch_and(!(1u64 << slot), Ordering::AcqRel);
        }
    }
}

thread_local! {
    static SLOT: SlotGuard = const { SlotGuard(Cell::new(SLOT_UNSET)) };
    static IN_SCAVENGE: Cell<bool> = const { Cell::new(false) };
}

/// The calling thread's cache slot, claiming one on first use; `None` when
/// all slots are taken (the thread then uses the shared list directly).
fn thread_slot() -> Option<usize> {
    SLOT.try_with(|s| {
        let cur = s.0.get();
        if cur != SLOT_UNSET {
            return (cur < MAX_THREAD_SLOTS).then_some(cur);
        }
        let mut bits = SLOT_BITS.load(Ordering::Acquire);
        loop {
            if bits == u64::MAX {
                s.0.set(SLOT_NONE);
                return None;
            }
            let slot = (!bits).trailing_zeros() as usize;
            match SLOT_BITS.compare_exchange(
                bits,
                bits | (1 << slot),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    s.0.set(slot);
                    return Some(slot);
                }
                Err(now) => bits = now,
            }
        }
    })
    .ok()
    .flatten()
}

/// Whether a pool may, must or must not use 2 MiB huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HugePages {
    /// Huge pages when the system has free ones, else 4 KiB pages.
    Auto,
    /// Always 4 KiB pages.
    Never,
    /// Huge pages or fail with [`PoolError::NoHugePages`].
    Require,
}

/// How to build a pool.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Name shown in statistics.
    pub name: String,
    /// Number of buffers.
    pub buffers: usize,
    /// Huge page policy.
    pub hugepages: HugePages,
}

impl PoolConfig {
    /// A pool of `buffers` buffers named `name`, huge pages when available.
    pub fn new(name: &str, buffers: usize) -> Self {
        PoolConfig {
            name: name.to_owned(),
            buffers,
            hugepages: HugePages::Auto,
        }
    }
}

/// Why a pool could not be made or an owner registered.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The mapping failed; the OS error says why (often RLIMIT_MEMLOCK or no memory).
    #[error("cannot map {bytes} bytes for pool {name}: {source}")]
    Map {
        /// Pool name.
        name: String,
        /// Bytes asked for.
        bytes: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// [`HugePages::Require`] and the system has no free 2 MiB pages.
    #[error("pool {0}: no free 2 MiB huge pages (set /proc/sys/vm/nr_hugepages)")]
    NoHugePages(String),
    /// Zero buffers, or more than a `u32` can count.
    #[error("pool {name}: {buffers} is not a valid buffer count (1..=4194304)")]
    BadSize {
        /// Pool name.
        name: String,
        /// Count asked for.
        buffers: usize,
    },
    /// All [`MAX_POOLS`] pool slots are in use.
    #[error("too many pools (at most {MAX_POOLS})")]
    TooManyPools,
    /// All [`MAX_OWNERS`] owner slots are in use.
    #[error("pool {0}: too many owners (at most {MAX_OWNERS})")]
    TooManyOwners(String),
}

/// Who holds a buffer, for accounting. Owner 0 ([`OwnerId::POOL`]) is the
/// stack's own use; drivers and interfaces register their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(pub u16);

impl OwnerId {
    /// The default owner: buffers allocated by the stack itself.
    pub const POOL: OwnerId = OwnerId(0);
}

/// A snapshot of a pool's figures.
#[derive(Clone, Debug, Default)]
pub struct PoolStats {
    /// Pool name.
    pub name: String,
    /// Total buffers.
    pub capacity: usize,
    /// Buffers free (shared list and all thread caches).
    pub available: usize,
    /// Whether the memory is on 2 MiB pages.
    pub hugepages: bool,
    /// Bytes mapped.
    pub bytes: usize,
    /// Allocation requests that could not be met in full.
    pub exhausted: u64,
    /// Buffers given back by scavengers.
    pub scavenged: u64,
    /// Frees of a buffer that was already free (a driver bug, ignored).
    pub double_frees: u64,
    /// `(owner name, buffers held)` for every registered owner.
    pub owners: Vec<(String, i64)>,
}

/// A contiguous DMA-capable memory region, for mapping into an IOMMU.
#[derive(Clone, Copy, Debug)]
pub struct DmaRegion {
    /// Virtual address of the start.
    pub va: usize,
    /// IOVA the region is to be mapped at (equal to `va`).
    pub iova: u64,
    /// Length in bytes (a multiple of the page size).
    pub len: usize,
}

/// A pool's buffers as a range of indices: buffer `i` is the element at
/// `base + i * ELEMENT_SIZE`. Copied out of the pool so a packet path
/// converts between buffers and indices without touching the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpan {
    base: usize,
    buffers: usize,
}

impl PoolSpan {
    /// Number of buffers (indices are `0..buffers()`).
    pub fn buffers(&self) -> usize {
        self.buffers
    }

    /// The index of buffer `m` if it is one of this pool's. `m` must be a
    /// buffer (of any pool): an mbuf pointer always starts an element, so
    /// only the range is checked. Never give it an untrusted pointer; name
    /// buffers across a trust boundary by index.
    #[inline(always)]
    pub fn index_of(&self, m: *const mbuf) -> Option<usize> {
        let i = (m as usize).wrapping_sub(self.base) / ELEMENT_SIZE;
        (i < self.buffers).then_some(i)
    }

    /// Buffer `i` of a pool of more than `i` buffers (the caller knows:
    /// e.g. `i` indexed a table of [`PoolSpan::buffers`] entries). Past the
    /// end it is an address outside the pool, never dereference it then.
    #[inline(always)]
    pub fn buffer_unchecked(&self, i: usize) -> *mut mbuf {
        debug_assert!(i < self.buffers);
        (self.base + i * ELEMENT_SIZE) as *mut mbuf
    }

    /// Buffer `i`, or `None` past the end. The pointer is only the
    /// buffer's address: who owns it is the caller's to know.
    #[inline(always)]
    pub fn buffer(&self, i: usize) -> Option<*mut mbuf> {
        (i < self.buffers).then(|| (self.base + i * ELEMENT_SIZE) as *mut mbuf)
    }
}

struct Mapping {
    base: NonNull<u8>,
    len: usize,
    huge: bool,
}

impl Mapping {
    fn new(name: &str, bytes: usize, policy: HugePages) -> Result<Mapping, PoolError> {
        if policy != HugePages::Never {
            let len = bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE;
            // MAP_HUGE_2MB is log2(2 MiB) << MAP_HUGE_SHIFT.
            let flags = libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_POPULATE
                | libc::MAP_HUGETLB
                | (21 << libc::MAP_HUGE_SHIFT);
            // SAFETY: an anonymous mapping with no address hint touches no
            // existing memory; the result is checked before use.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                if let Some(base) = NonNull::new(p.cast::<u8>()) {
                    return Ok(Mapping {
                        base,
                        len,
                        huge: true,
                    });
                }
            }
            if policy == HugePages::Require {
                return Err(PoolError::NoHugePages(name.to_owned()));
            }
        }
        let len = bytes.div_ceil(SMALL_PAGE) * SMALL_PAGE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        // SAFETY: as above.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        match NonNull::new(p.cast::<u8>()) {
            Some(base) if p != libc::MAP_FAILED => Ok(Mapping {
                base,
                len,
                huge: false,
            }),
            _ => Err(PoolError::Map {
                name: name.to_owned(),
                bytes: len,
                source: std::io::Error::last_os_error(),
            }),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly what mmap returned; no buffer of the
        // pool is reachable any more (PoolInner::drop checks).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// One thread's cache of one pool. Only the thread holding the slot touches
/// `objs` and `len`; `count` mirrors `len` for statistics from other threads.
#[repr(align(64))]
struct LocalCache {
    inner: UnsafeCell<CacheInner>,
    count: AtomicUsize,
}

struct CacheInner {
    len: usize,
    objs: [*mut mbuf; CACHE_MAX],
}

#[repr(align(64))]
struct OwnerSlot {
    held: AtomicI64,
}

type Scavenger = Arc<dyn Fn(usize) -> usize + Send + Sync>;

struct PoolInner {
    index: u16,
    name: String,
    mem: Mapping,
    capacity: usize,
    free: Mutex<Vec<*mut mbuf>>,
    free_count: AtomicUsize,
    caches: Box<[LocalCache]>,
    owners: Box<[OwnerSlot]>,
    owner_names: Mutex<Vec<Option<String>>>,
    exhausted: AtomicU64,
    scavenged: AtomicU64,
    double_frees: AtomicU64,
    scavengers: Mutex<Vec<(u64, Scavenger)>>,
    next_scavenger: AtomicU64,
}

// SAFETY: the raw buffer pointers in `free` are guarded by its mutex; each
// cache is touched only by the thread holding its slot (see `thread_slot`);
// everything else is atomics or mutexes.
unsafe impl Send for PoolInner {}
// SAFETY: as for Send.
unsafe impl Sync for PoolInner {}

/// A handle on a pool; clones share the pool.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.name)
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl Pool {
    /// Maps and formats a pool.
    pub fn new(cfg: &PoolConfig) -> Result<Pool, PoolError> {
        if cfg.buffers == 0 || cfg.buffers > 4 << 20 {
            return Err(PoolError::BadSize {
                name: cfg.name.clone(),
                buffers: cfg.buffers,
            });
        }
        let mem = Mapping::new(&cfg.name, cfg.buffers * ELEMENT_SIZE, cfg.hugepages)?;
        let mut free = Vec::with_capacity(cfg.buffers);
        let caches = (0..MAX_THREAD_SLOTS)
            .map(|_| LocalCache {
                inner: UnsafeCell::new(CacheInner {
                    len: 0,
                    objs: [ptr::null_mut(); CACHE_MAX],
                }),
                count: AtomicUsize::new(0),
            })
            .collect();
        let owners = (0..MAX_OWNERS)
            .map(|_| OwnerSlot {
                held: AtomicI64::new(0),
            })
            .collect();
        let mut names = vec![None; MAX_OWNERS];
        names[0] = Some(String::from("stack"));
        let inner = Arc::new(PoolInner {
            index: 0,
            name: cfg.name.clone(),
            mem,
            capacity: cfg.buffers,
            free: Mutex::new(Vec::new()),
            free_count: AtomicUsize::new(cfg.buffers),
            caches,
            owners,
            owner_names: Mutex::new(names),
            exhausted: AtomicU64::new(0),
            scavenged: AtomicU64::new(0),
            double_frees: AtomicU64::new(0),
            scavengers: Mutex::new(Vec::new()),
            next_scavenger: AtomicU64::new(1),
        });
        // Claim a table index; the Arc's address is stable from here on.
        let raw = Arc::as_ptr(&inner).cast_mut();
        let index = POOL_TABLE
            .iter()
            .position(|slot| {
                slot.compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            })
            .ok_or(PoolError::TooManyPools)?;
        // SAFETY: nobody else can reach `inner` yet except through the table
        // entry just published, and no buffer of it exists, so nothing reads
        // `index` concurrently.
        unsafe { ptr::addr_of!((*raw).index).cast_mut().write(index as u16) };
        let base = inner.mem.base.as_ptr();
        for i in 0..cfg.buffers {
            // SAFETY: element i lies inside the mapping (buffers * ELEMENT_SIZE
            // <= len) and is suitably aligned (ELEMENT_SIZE is a multiple of 64).
            let m = unsafe { base.add(i * ELEMENT_SIZE) }.cast::<mbuf>();
            // SAFETY: m points to writable, exclusively owned memory of the mapping.
            unsafe { format_element(m, index as u16) };
            free.push(m);
        }
        *lock(&inner.free) = free;
        Ok(Pool { inner })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The pool's index (the value of `mh_pool` in its buffers).
    pub fn index(&self) -> u16 {
        self.inner.index
    }

    /// Total number of buffers.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Free buffers, in the shared list and in every thread's cache.
    pub fn available(&self) -> usize {
        let cached: usize = self
            .inner
            .caches
            .iter()
            .map(|c| c.count.load(Ordering::Relaxed))
            .sum();
        self.inner.free_count.load(Ordering::Relaxed) + cached
    }

    /// The memory regions to map into an IOMMU (IOVA = VA).
    pub fn dma_regions(&self) -> Vec<DmaRegion> {
        let va = self.inner.mem.base.as_ptr() as usize;
        vec![DmaRegion {
            va,
            iova: va as u64,
            len: self.inner.mem.len,
        }]
    }

    /// Where the pool's buffers lie, to name a buffer by its index (a
    /// driver shim's cookies and per-buffer tables).
    pub fn span(&self) -> PoolSpan {
        PoolSpan {
            base: self.inner.mem.base.as_ptr() as usize,
            buffers: self.inner.capacity,
        }
    }

    /// Registers an owner for accounting, e.g. an interface name.
    pub fn register_owner(&self, name: &str) -> Result<OwnerId, PoolError> {
        let mut names = lock(&self.inner.owner_names);
        let slot = names
            .iter()
            .position(Option::is_none)
            .ok_or_else(|| PoolError::TooManyOwners(self.inner.name.clone()))?;
        names[slot] = Some(name.to_owned());
        self.inner.owners[slot].held.store(0, Ordering::Relaxed);
        Ok(OwnerId(slot as u16))
    }

    /// Forgets an owner. Returns how many buffers it still held (they stay
    /// counted against the slot until freed; 0 means nothing leaked).
    pub fn unregister_owner(&self, owner: OwnerId) -> i64 {
        let held = self.held_by(owner);
        if owner != OwnerId::POOL && held == 0 {
            if let Some(n) = lock(&self.inner.owner_names).get_mut(owner.0 as usize) {
                *n = None;
            }
        }
        held
    }

    /// Buffers currently held by `owner`.
    pub fn held_by(&self, owner: OwnerId) -> i64 {
        self.inner
            .owners
            .get(owner.0 as usize)
            .map_or(0, |o| o.held.load(Ordering::Relaxed))
    }

    /// Registers a scavenger: called with how many buffers are wanted when the
    /// pool runs dry, it frees what it can spare and returns how many it freed.
    /// It must not allocate from this pool. Dropping the handle unregisters it.
    pub fn register_scavenger(
        &self,
        f: impl Fn(usize) -> usize + Send + Sync + 'static,
    ) -> ScavengerHandle {
        let id = self.inner.next_scavenger.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.scavengers).push((id, Arc::new(f)));
        ScavengerHandle {
            pool: self.clone(),
            id,
        }
    }

    /// A snapshot of the pool's figures.
    pub fn stats(&self) -> PoolStats {
        let names = lock(&self.inner.owner_names);
        let owners = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.as_ref()
                    .map(|n| (n.clone(), self.inner.owners[i].held.load(Ordering::Relaxed)))
            })
            .collect();
        PoolStats {
            name: self.inner.name.clone(),
            capacity: self.inner.capacity,
            available: self.available(),
            hugepages: self.inner.mem.huge,
            bytes: self.inner.mem.len,
            exhausted: self.inner.exhausted.load(Ordering::Relaxed),
            scavenged: self.inner.scavenged.load(Ordering::Relaxed),
            double_frees: self.inner.double_frees.load(Ordering::Relaxed),
            owners,
        }
    }

    /// Returns the calling thread's cached buffers of this pool to the shared
    /// list, e.g. before a worker sleeps, so other threads can use them.
    pub fn flush_thread_cache(&self) {
        if let Some(slot) = thread_slot() {
            self.inner.flush_slot(slot);
        }
    }

    /// Allocates one packet buffer for `owner`, empty, with `M_PKTHDR` set.
    pub fn alloc(&self, owner: OwnerId) -> Option<crate::Mbuf> {
        let mut one = [ptr::null_mut(); 1];
        if self.inner.get_raw(owner, &mut one, |_, _| {}) == 1 {
            // SAFETY: get_raw handed out an initialised buffer that nobody else holds.
            Some(unsafe { crate::Mbuf::from_raw(one[0]) })
        } else {
            None
        }
    }

    /// Allocates up to `out.len()` buffers for `owner` into `out`, returning
    /// how many; each is initialised as by [`Pool::alloc`]. The caller owns
    /// them and must free them (e.g. wrap with [`crate::Mbuf::from_raw`]).
    pub fn alloc_raw_bulk(&self, owner: OwnerId, out: &mut [*mut mbuf]) -> usize {
        self.inner.get_raw(owner, out, |_, _| {})
    }

    /// [`Pool::alloc_raw_bulk`] that also calls `each(k, out[k])` for every
    /// buffer handed out, in the pass that formats it: a caller that
    /// describes each buffer (a driver shim's descriptors) need not walk
    /// them again. `each` must not allocate from or free to a pool.
    #[inline]
    pub fn alloc_raw_bulk_each(
        &self,
        owner: OwnerId,
        out: &mut [*mut mbuf],
        each: impl FnMut(usize, *mut mbuf),
    ) -> usize {
        self.inner.get_raw(owner, out, each)
    }

    /// Allocates up to `n` buffers for `owner` and appends them to `batch`;
    /// returns how many were appended (fewer when the pool or the batch is short).
    pub fn alloc_batch(&self, owner: OwnerId, batch: &mut crate::PacketBatch, n: usize) -> usize {
        let n = n.min(batch.room());
        // SAFETY: get_raw writes `got` fresh, exclusively owned buffers into
        // the leading slots and returns `got`.
        unsafe { batch.fill_raw(|slots| self.inner.get_raw(owner, &mut slots[..n], |_, _| {})) }
    }
}

/// Unregisters a scavenger when dropped.
pub struct ScavengerHandle {
    pool: Pool,
    id: u64,
}

impl Drop for ScavengerHandle {
    fn drop(&mut self) {
        lock(&self.pool.inner.scavengers).retain(|(id, _)| *id != self.id);
    }
}

impl PoolInner {
    /// Moves a slot's cache to the shared list. Only the thread holding
    /// `slot` may call this.
    fn flush_slot(&self, slot: usize) {
        let cache = &self.caches[slot];
        // SAFETY: the calling thread holds `slot`, so it alone touches the cache.
        let c = unsafe { &mut *cache.inner.get() };
        self.put_global(&c.objs[..c.len]);
        c.len = 0;
        cache.count.store(0, Ordering::Relaxed);
    }

    fn get_raw(
        &self,
        owner: OwnerId,
        out: &mut [*mut mbuf],
        mut each: impl FnMut(usize, *mut mbuf),
    ) -> usize {
        let want = out.len();
        let mut got = match thread_slot() {
            Some(slot) => self.get_cached(slot, out),
            None => self.get_global(out),
        };
        if got < want {
            got += self.get_slow(&mut out[got..]);
        }
        let owner = if (owner.0 as usize) < MAX_OWNERS {
            owner
        } else {
            OwnerId::POOL
        };
        for (k, &m) in out[..got].iter().enumerate() {
            // SAFETY: m came off a free list, so it is a formatted element of
            // a live pool that nobody else references.
            unsafe { reset(m, owner) };
            each(k, m);
        }
        if got > 0 {
            self.owners[owner.0 as usize]
                .held
                .fetch_add(got as i64, Ordering::Relaxed);
        }
        got
    }

    fn get_cached(&self, slot: usize, out: &mut [*mut mbuf]) -> usize {
        let cache = &self.caches[slot];
        // SAFETY: this thread holds `slot`; nothing else touches this cache,
        // and no other reference to it is live in this call chain.
        let c = unsafe { &mut *cache.inner.get() };
        if c.len < out.len() {
            let room = CACHE_MAX - c.len;
            let take = (CACHE_BULK + out.len() - c.len).min(room);
            let start = c.len;
            c.len += self.get_global(&mut c.objs[start..start + take]);
        }
        let n = out.len().min(c.len);
        out[..n].copy_from_slice(&c.objs[c.len - n..c.len]);
        c.len -= n;
        cache.count.store(c.len, Ordering::Relaxed);
        n
    }

    fn get_global(&self, out: &mut [*mut mbuf]) -> usize {
        let mut free = lock(&self.free);
        let n = out.len().min(free.len());
        let from = free.len() - n;
        out[..n].copy_from_slice(&free[from..]);
        free.truncate(from);
        self.free_count.store(free.len(), Ordering::Relaxed);
        n
    }

    /// The free lists are dry: ask scavengers, retry once, count the shortfall.
    #[cold]
    fn get_slow(&self, out: &mut [*mut mbuf]) -> usize {
        let reentered = IN_SCAVENGE.try_with(|f| f.replace(true)).unwrap_or(true);
        let mut got = 0;
        if !reentered {
            let list: Vec<Scavenger> = lock(&self.scavengers)
                .iter()
                .map(|(_, f)| f.clone())
                .collect();
            let mut freed = 0;
            for f in list {
                if freed >= out.len() {
                    break;
                }
                freed += f(out.len() - freed);
            }
            let _ = IN_SCAVENGE.try_with(|f| f.set(false));
            if freed > 0 {
                self.scavenged.fetch_add(freed as u64, Ordering::Relaxed);
                // Scavengers freed into this thread's cache or the shared list.
                got = match thread_slot() {
                    Some(slot) => self.get_cached(slot, out),
                    None => self.get_global(out),
                };
            }
        }
        if got < out.len() {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    fn put_global(&self, objs: &[*mut mbuf]) {
        let mut free = lock(&self.free);
        free.extend_from_slice(objs);
        self.free_count.store(free.len(), Ordering::Relaxed);
    }

    /// Puts one buffer back. The caller has already checked it is not free.
    fn put_one(&self, m: *mut mbuf) {
        match thread_slot() {
            Some(slot) => {
                let cache = &self.caches[slot];
                // SAFETY: this thread holds `slot` (see get_cached).
                let c = unsafe { &mut *cache.inner.get() };
                if c.len == CACHE_MAX {
                    self.put_global(&c.objs[CACHE_MAX - CACHE_BULK..]);
                    c.len -= CACHE_BULK;
                }
                c.objs[c.len] = m;
                c.len += 1;
                cache.count.store(c.len, Ordering::Relaxed);
            }
            None => self.put_global(&[m]),
        }
    }

    /// Puts buffers back in bulk into the cache of `slot` (the calling
    /// thread's, from [`thread_slot`]) or, without a slot, the shared list.
    /// The caller has already checked and marked them free.
    fn put_bulk(&self, slot: Option<usize>, objs: &[*mut mbuf]) {
        let Some(slot) = slot else {
            self.put_global(objs);
            return;
        };
        let cache = &self.caches[slot];
        // SAFETY: this thread holds `slot` (see get_cached).
        let c = unsafe { &mut *cache.inner.get() };
        if c.len + objs.len() > CACHE_MAX {
            // Keep the cache half full, as put_one does when it overflows.
            let keep = CACHE_MAX - CACHE_BULK;
            if c.len > keep {
                self.put_global(&c.objs[keep..c.len]);
                c.len = keep;
            }
            if c.len + objs.len() > CACHE_MAX {
                self.put_global(objs);
                cache.count.store(c.len, Ordering::Relaxed);
                return;
            }
        }
        c.objs[c.len..c.len + objs.len()].copy_from_slice(objs);
        c.len += objs.len();
        cache.count.store(c.len, Ordering::Relaxed);
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let out = self.capacity - {
            let cached: usize = self
                .caches
                .iter()
                .map(|c| c.count.load(Ordering::Relaxed))
                .sum();
            self.free_count.load(Ordering::Relaxed) + cached
        };
        POOL_TABLE[self.index as usize].store(ptr::null_mut(), Ordering::Release);
        if out != 0 {
            // Buffers are still out there: keep the memory mapped rather than
            // let a late free write into unmapped memory.
            log::error!(
                "pool {} dropped with {out} buffers outstanding; leaking its mapping",
                self.name
            );
            std::mem::forget(std::mem::replace(
                &mut self.mem,
                Mapping {
                    base: NonNull::dangling(),
                    len: 0,
                    huge: false,
                },
            ));
        }
    }
}

/// Writes the fixed fields of a fresh element (never changed afterwards).
///
/// # Safety
/// `m` must point to writable memory of at least [`ELEMENT_SIZE`] bytes that
/// nothing else references.
unsafe fn format_element(m: *mut mbuf, pool: u16) {
    // SAFETY: the caller guarantees m is valid and exclusive.
    unsafe {
        ptr::write_bytes(m.cast::<u8>(), 0, sys::PKTKIT_MBUF_HDR_SIZE as usize);
        let ext = m.cast::<u8>().add(sys::PKTKIT_MBUF_HDR_SIZE as usize);
        (*m).M_ext.ext_buf = ext.cast();
        (*m).M_ext.ext_size = sys::PKTKIT_MBUF_EXTSIZE as usize;
        (*m).m_hdr.mh_paddr = ext as u64;
        (*m).m_hdr.mh_pool = pool;
        (*m).m_hdr.mh_type = sys::MT_FREE as u16;
    }
}

/// Resets a buffer taken off a free list to an empty packet header buffer.
///
/// # Safety
/// `m` must be a formatted element of a live pool that nothing else references.
#[inline]
unsafe fn reset(m: *mut mbuf, owner: OwnerId) {
    // SAFETY: the caller guarantees m is valid and exclusive.
    unsafe {
        let h = &mut (*m).m_hdr;
        h.mh_next = ptr::null_mut();
        h.mh_nextpkt = ptr::null_mut();
        h.mh_data = (*m).M_ext.ext_buf.add(sys::PKTKIT_MBUF_HEADROOM as usize);
        h.mh_len = 0;
        h.mh_flags = sys::M_PKTHDR | sys::M_EXT;
        h.mh_type = sys::MT_DATA as u16;
        h.mh_owner = owner.0;
        let p = &mut (*m).M_pkthdr;
        p._rcvif.ctx = ptr::null_mut();
        p.len = 0;
        p.csum_flags = 0;
        p.csum_data = 0;
        p.segsz = 0;
        p.ether_vtag = 0;
        p.rss_hash = 0;
    }
}

/// Returns one buffer (not its chain) to its pool.
///
/// # Safety
/// `m` must be a buffer of a live pool that the caller owns and no longer uses.
#[inline]
pub(crate) unsafe fn free_one(m: *mut mbuf) {
    // SAFETY: the caller guarantees m is a valid pool buffer it owns.
    let (pool_index, owner, ty) =
        unsafe { ((*m).m_hdr.mh_pool, (*m).m_hdr.mh_owner, (*m).m_hdr.mh_type) };
    let Some(pool) = pool_by_index(pool_index) else {
        log::error!("free of a buffer whose pool {pool_index} is gone");
        return;
    };
    if ty == sys::MT_FREE as u16 {
        pool.double_frees.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: as above; marks it free so a second free is detected.
    unsafe { (*m).m_hdr.mh_type = sys::MT_FREE as u16 };
    if let Some(o) = pool.owners.get(owner as usize) {
        o.held.fetch_sub(1, Ordering::Relaxed);
    }
    pool.put_one(m);
}

/// Returns a burst of packets (each with its chain) to their pools, batching
/// the owner accounting per run of equal owners.
///
/// # Safety
/// Every pointer must be a packet the caller owns and no longer uses.
pub(crate) unsafe fn free_bulk(pkts: &[*mut mbuf]) {
    // Buffers are gathered in a local chunk and put back a chunk at a time:
    // putting them one by one reloads the cache length from memory after
    // every store (the compiler cannot prove the mbuf writes do not alias
    // it), a store-to-load dependency that dominated the forwarding loop.
    const CHUNK: usize = 64;
    let slot = thread_slot();
    let mut chunk = [ptr::null_mut(); CHUNK];
    let mut n = 0;
    let mut run_owner = (u16::MAX, u16::MAX);
    let mut run = 0i64;
    let mut pool: Option<&PoolInner> = None;
    for &head in pkts {
        let mut m = head;
        while !m.is_null() {
            // SAFETY: m is part of a chain the caller owns.
            let (next, pidx, owner, ty) = unsafe {
                let h = &(*m).m_hdr;
                (h.mh_next, h.mh_pool, h.mh_owner, h.mh_type)
            };
            if pool.is_none_or(|p| p.index != pidx) {
                if let Some(p) = pool {
                    p.put_bulk(slot, &chunk[..n]);
                }
                n = 0;
                pool = pool_by_index(pidx);
            }
            let Some(p) = pool else {
                m = next;
                continue;
            };
            if ty == sys::MT_FREE as u16 {
                p.double_frees.fetch_add(1, Ordering::Relaxed);
                m = next;
                continue;
            }
            if (pidx, owner) != run_owner {
                flush_run(run_owner, run);
                run_owner = (pidx, owner);
                run = 0;
            }
            run += 1;
            // SAFETY: as above.
            unsafe { (*m).m_hdr.mh_type = sys::MT_FREE as u16 };
            chunk[n] = m;
            n += 1;
            if n == CHUNK {
                p.put_bulk(slot, &chunk);
                n = 0;
            }
            m = next;
        }
    }
    if let Some(p) = pool {
        p.put_bulk(slot, &chunk[..n]);
    }
    flush_run(run_owner, run);
}

fn flush_run((pidx, owner): (u16, u16), run: i64) {
    if run == 0 {
        return;
    }
    if let Some(o) = pool_by_index(pidx).and_then(|p| p.owners.get(owner as usize)) {
        o.held.fetch_sub(run, Ordering::Relaxed);
    }
}

/// Moves a buffer's accounting from its owner to `to`.
///
/// # Safety
/// `m` must be a live buffer the caller owns.
pub(crate) unsafe fn set_owner(m: *mut mbuf, to: OwnerId) {
    // SAFETY: the caller guarantees m is live and owned.
    let (pidx, from) = unsafe { ((*m).m_hdr.mh_pool, (*m).m_hdr.mh_owner) };
    if from == to.0 || to.0 as usize >= MAX_OWNERS {
        return;
    }
    if let Some(p) = pool_by_index(pidx) {
        p.owners[from as usize].held.fetch_sub(1, Ordering::Relaxed);
        p.owners[to.0 as usize].held.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { (*m).m_hdr.mh_owner = to.0 };
    }
}

/// The pool a buffer belongs to, by its `mh_pool`.
#[inline]
fn pool_by_index<'a>(index: u16) -> Option<&'a PoolInner> {
    let p = POOL_TABLE.get(index as usize)?.load(Ordering::Acquire);
    // SAFETY: a non-null entry points at a live PoolInner: the entry is
    // cleared before the PoolInner is dropped, and a pool is only dropped when
    // no buffer of it is outstanding (or its memory is leaked, see Drop).
    unsafe { p.as_ref() }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a pool lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer and its index name each other; outside the pool is none.
    #[test]
    fn span_names_buffers_by_index() {
        let pool = Pool::new(&PoolConfig {
            name: "span".into(),
            buffers: 8,
            hugepages: HugePages::Never,
        })
        .expect("pool");
        let span = pool.span();
        assert_eq!(span.buffers(), 8);
        let mut raw = [ptr::null_mut(); 8];
        assert_eq!(pool.alloc_raw_bulk(OwnerId::POOL, &mut raw), 8);
        let mut seen = [false; 8];
        for &m in &raw {
            let i = span.index_of(m).expect("ours");
            assert_eq!(span.buffer(i), Some(m));
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s), "eight buffers, eight indices");
        assert_eq!(span.buffer(8), None);
        let other = Pool::new(&PoolConfig {
            name: "span2".into(),
            buffers: 1,
            hugepages: HugePages::Never,
        })
        .expect("pool");
        let m = other.alloc(OwnerId::POOL).expect("buffer");
        assert_eq!(span.index_of(m.as_ptr()), None);
        drop(m);
        // SAFETY: the eight buffers are ours and unused.
        unsafe { free_bulk(&raw) };
        // The same pass that formats the buffers hands each to the caller,
        // formatted, in order.
        let mut calls = Vec::new();
        let got = pool.alloc_raw_bulk_each(OwnerId::POOL, &mut raw[..5], |k, m| {
            // SAFETY: a buffer just formatted for us.
            let len = unsafe { (*m).m_hdr.mh_len };
            calls.push((k, m, len));
        });
        assert_eq!(got, 5);
        assert_eq!(calls.len(), 5);
        for (j, &(k, m, len)) in calls.iter().enumerate() {
            assert_eq!((k, m, len), (j, raw[j], 0));
        }
        // SAFETY: the five buffers are ours and unused.
        unsafe { free_bulk(&raw[..5]) };
        assert_eq!(pool.available(), 8);
    }

    use crate::Mbuf;

    fn small(name: &str, n: usize) -> Pool {
        Pool::new(&PoolConfig {
            name: name.into(),
            buffers: n,
            hugepages: HugePages::Never,
        })
        .unwrap()
    }

    #[test]
    fn alloc_free_returns_everything() {
        let pool = small("t-basic", 1000);
        let owner = pool.register_owner("t0").unwrap();
        let mut held = Vec::new();
        for _ in 0..1000 {
            held.push(pool.alloc(owner).expect("buffer"));
        }
        assert_eq!(pool.held_by(owner), 1000);
        assert!(pool.alloc(owner).is_none());
        assert_eq!(pool.stats().exhausted, 1);
        drop(held);
        assert_eq!(pool.held_by(owner), 0);
        assert_eq!(pool.available(), 1000);
        assert_eq!(pool.unregister_owner(owner), 0);
    }

    #[test]
    fn buffers_know_their_iova_and_pool() {
        let pool = small("t-iova", 8);
        let m = pool.alloc(OwnerId::POOL).unwrap();
        let region = pool.dma_regions()[0];
        let iova = m.iova();
        assert!(iova >= region.iova && iova < region.iova + region.len as u64);
        assert_eq!(m.pool_index(), pool.index());
        assert_eq!(m.headroom(), sys::PKTKIT_MBUF_HEADROOM as usize);
    }

    #[test]
    fn scavenger_gives_back_before_exhaustion() {
        let pool = small("t-scav", 64);
        let owner = pool.register_owner("spec").unwrap();
        let spare: Arc<Mutex<Vec<crate::Mbuf>>> = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..64 {
            spare.lock().unwrap().push(pool.alloc(owner).unwrap());
        }
        let s2 = spare.clone();
        let _h = pool.register_scavenger(move |want| {
            let mut v = s2.lock().unwrap();
            let n = want.min(v.len());
            for _ in 0..n {
                v.pop();
            }
            n
        });
        let got = pool.alloc(OwnerId::POOL);
        assert!(got.is_some(), "scavenger should have freed a buffer");
        assert_eq!(pool.stats().exhausted, 0);
        assert!(pool.stats().scavenged >= 1);
    }

    #[test]
    fn thread_exit_keeps_cached_buffers_in_pool() {
        let pool = small("t-threads", 2048);
        let p2 = pool.clone();
        std::thread::spawn(move || {
            let v: Vec<_> = (0..700).map(|_| p2.alloc(OwnerId::POOL).unwrap()).collect();
            drop(v);
        })
        .join()
        .unwrap();
        assert_eq!(pool.available(), 2048);
        // The slot is reusable and its cache is served to the next thread.
        let v: Vec<_> = (0..2048).map(|_| pool.alloc(OwnerId::POOL)).collect();
        assert!(v.iter().all(Option::is_some));
    }

    /// With 2 MiB pages reserved (as root), a pool lives on them and its
    /// buffers work; without, `Require` is refused and `Auto` falls back.
    #[test]
    fn huge_pages_when_the_system_has_them() {
        const NR: &str = "/proc/sys/vm/nr_hugepages";
        let Ok(before) = std::fs::read_to_string(NR) else {
            eprintln!("skipped: no {NR}");
            return;
        };
        let before: usize = before.trim().parse().unwrap_or(0);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || std::fs::write(NR, (before + 4).to_string()).is_err()
        {
            eprintln!("skipped: cannot reserve huge pages (not root)");
            return;
        }
        let got: usize = std::fs::read_to_string(NR)
            .unwrap()
            .trim()
            .parse()
            .unwrap_or(0);
        let cfg = |h| PoolConfig {
            name: "t-huge".into(),
            buffers: 1500,
            hugepages: h,
        };
        if got >= before + 2 {
            let pool = Pool::new(&cfg(HugePages::Require)).expect("pool on huge pages");
            assert!(pool.stats().hugepages);
            assert_eq!(pool.dma_regions()[0].len % HUGE_PAGE, 0);
            let m = Mbuf::from_slice(&pool, OwnerId::POOL, &[7u8; 3000]).unwrap();
            assert_eq!(m.to_vec(), vec![7u8; 3000]);
            drop(m);
            drop(pool);
        } else {
            eprintln!("kernel gave no huge pages ({got}); checking the fallback only");
        }
        let _ = std::fs::write(NR, before.to_string());
        if before == 0 {
            assert!(matches!(
                Pool::new(&cfg(HugePages::Require)),
                Err(PoolError::NoHugePages(_))
            ));
            assert!(!Pool::new(&cfg(HugePages::Auto)).unwrap().stats().hugepages);
        }
    }

    #[test]
    fn double_free_is_counted_not_corrupting() {
        let pool = small("t-dfree", 4);
        let m = pool.alloc(OwnerId::POOL).unwrap();
        let raw = m.into_raw();
        // SAFETY: raw is a live buffer we own; the second free is the bug under test.
        unsafe {
            free_one(raw);
            free_one(raw);
        }
        assert_eq!(pool.stats().double_frees, 1);
        assert_eq!(pool.available(), 4);
    }
}
