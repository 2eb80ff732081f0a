//! The device context: everything the adapter keeps for one attached C
//! driver, and how KPI calls from C find it.
//!
//! C code calls the KPI without saying which device it serves
//! (`MGETHDR` has no ifnet argument), so the adapter records the context
//! of the device it is about to call into in a thread-local ([`Entered`]) on
//! every entry into C: attach, transmit, receive, interrupt, callout,
//! softint, workqueue work, sysctl handler, ioctl. KPI functions that need the device (the pool for
//! `m_gethdr`, the list for `callout_init`) read it from there; those that
//! get an object (`callout_reset(c)`, `if_percpuq_enqueue(q)`) find the
//! context through a pointer stored in it.
//!
//! Locking: the C driver's own state is guarded by the runtime's driver
//! lock (serialized drivers) or by the driver's kmutexes (`IFEF_MPSAFE`).
//! The context's shared lists are behind mutexes taken on control and
//! service paths only; the receive ring ([`RxRing`]) takes its spin lock
//! only for MP-safe drivers, whose interrupt handler may run on the service
//! thread while a worker drains the ring.

use std::cell::{Cell, UnsafeCell};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pktkit_native::device::{DmaMemory, IrqKind, PciDevice};
use pktkit_native::sys::mbuf;
use pktkit_native::{Mbuf, OwnerId, Pool};

use crate::sys;

/// Packets the receive ring holds between the driver's enqueue and the
/// worker's `rx_burst` (NetBSD's percpuq holds `IFQ_MAXLEN`).
pub const RX_RING: usize = 1024;

/// The context of the device whose C code is running on this thread.
pub fn current() -> Option<&'static DevCtx> {
    let p = with_cache(|c| c.mc_cur).cast_const().cast::<DevCtx>();
    // SAFETY: cur is set only by `Entered`, which borrows a live DevCtx
    // for as long as it is set; the 'static is not observable beyond the
    // C call that asked.
    unsafe { p.as_ref() }
}

/// Marks the calling thread as running `ctx`'s C code until dropped.
///
/// While entered, packet buffers move in bulk: `m_gethdr` takes from a
/// small per-thread stack refilled [`ALLOC_BULK`] at a time from the
/// device's pool, and `m_freem` gathers packets and frees them
/// [`FREE_BULK`] at a time. Leaving the outermost entry gives everything
/// back, so no buffer outlives the entry point that used it (the
/// contract's leak check after `stop` sees exact counts). This keeps the
/// pool's per-owner accounting (an atomic add) off the per-packet path.
pub struct Entered {
    prev: *const DevCtx,
    ctx: *const DevCtx,
}

impl Entered {
    /// Enters `ctx`.
    #[inline]
    pub fn new(ctx: &DevCtx) -> Entered {
        let me = ctx as *const DevCtx;
        let prev = with_cache(|c| std::mem::replace(&mut c.mc_cur, me.cast_mut().cast()))
            .cast_const()
            .cast::<DevCtx>();
        if prev != me {
            flush_cache();
        }
        Entered { prev, ctx: me }
    }
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        if self.prev != self.ctx {
            flush_cache();
        }
        let prev = self.prev;
        with_cache(|c| c.mc_cur = prev.cast_mut().cast());
    }
}

/// Buffers `m_gethdr` takes from the pool at once.
pub const ALLOC_BULK: usize = sys::PKTKIT_MCACHE_ALLOC as usize;
/// Packets `m_freem` gathers before freeing them together.
pub const FREE_BULK: usize = sys::PKTKIT_MCACHE_FREE as usize;

/// Runs `f` on this thread's buffer cache (`struct pktkit_mcache`, a C
/// thread-local so that MGETHDR, m_freem and if_percpuq_enqueue can use
/// it inline). `f` must not call into C.
#[inline]
fn with_cache<R>(f: impl FnOnce(&mut sys::pktkit_mcache) -> R) -> R {
    thread_local! {
        // The C thread-local's address, asked once per thread.
        static MC: Cell<*mut sys::pktkit_mcache> = const { Cell::new(ptr::null_mut()) };
    }
    let mut p = MC.with(Cell::get);
    if p.is_null() {
        // SAFETY: returns the address of the calling thread's C cache.
        p = unsafe { sys::pktkit_mcache_self() };
        MC.with(|c| c.set(p));
    }
    // SAFETY: the cache is the calling thread's own; C code on this thread
    // is not running while `f` runs (f does not call into C), so this is
    // the only reference.
    f(unsafe { &mut *p })
}

/// Gives every cached and gathered buffer back to its pool.
fn flush_cache() {
    with_cache(|c| {
        let nf = (c.mc_nf.max(0) as usize).min(FREE_BULK);
        if nf > 0 {
            // SAFETY: gathered packets were given up by the driver (m_freem).
            unsafe { pktkit_native::mbuf::free_raw_bulk(&c.mc_free[..nf]) };
        }
        c.mc_nf = 0;
        let na = (c.mc_na.max(0) as usize).min(ALLOC_BULK);
        if na > 0 {
            // SAFETY: the cached buffers are fresh and owned by nobody else.
            unsafe { pktkit_native::mbuf::free_raw_bulk(&c.mc_alloc[..na]) };
        }
        c.mc_na = 0;
    });
}

/// A fresh packet-header buffer from the pool of the device being run
/// (the slow path of MGETHDR: refills the cache in bulk); null when no
/// device is entered or its pool is empty.
#[inline]
pub fn alloc_hdr() -> *mut mbuf {
    with_cache(|c| {
        let cur = c.mc_cur.cast::<DevCtx>().cast_const();
        if cur.is_null() {
            return ptr::null_mut();
        }
        if c.mc_na <= 0 {
            // SAFETY: mc_cur is the live context of the current entry.
            let d = unsafe { &*cur };
            c.mc_na = d.pool.alloc_raw_bulk(d.owner, &mut c.mc_alloc) as libc::c_long;
            if c.mc_na == 0 {
                return ptr::null_mut();
            }
        }
        c.mc_na -= 1;
        c.mc_alloc[c.mc_na as usize]
    })
}

/// Frees a packet (with its chain): gathered while a driver is entered,
/// at once otherwise (the slow path of m_freem).
///
/// # Safety
/// `m` must be a packet the caller owns and no longer uses.
#[inline]
pub unsafe fn free_pkt(m: *mut mbuf) {
    with_cache(|c| {
        if c.mc_cur.is_null() {
            // SAFETY: forwarded contract.
            drop(unsafe { Mbuf::from_raw(m) });
            return;
        }
        if c.mc_nf as usize >= FREE_BULK {
            // SAFETY: gathered packets were given up by the driver.
            unsafe { pktkit_native::mbuf::free_raw_bulk(&c.mc_free) };
            c.mc_nf = 0;
        }
        c.mc_free[c.mc_nf as usize] = m;
        c.mc_nf += 1;
    });
}

/// Runs a receive poll of the entered device with packets it enqueues on
/// `q` stored straight into `slots` (the receive burst's free slots);
/// returns how many were stored and adds their bytes to `bytes`. The
/// caller holds an [`Entered`].
pub fn poll_into(
    q: *const RxRing,
    slots: &mut [*mut mbuf],
    bytes: &mut u64,
    poll: impl FnOnce(usize),
) -> usize {
    let room = slots.len();
    with_cache(|c| {
        c.mc_rxq = q.cast_mut().cast();
        c.mc_rxout = slots.as_mut_ptr();
        c.mc_rxroom = room as libc::c_long;
        c.mc_rxn = 0;
        c.mc_rxbytes = 0;
    });
    poll(room);
    with_cache(|c| {
        let n = (c.mc_rxn.max(0) as usize).min(room);
        *bytes += c.mc_rxbytes.max(0) as u64;
        c.mc_rxq = ptr::null_mut();
        c.mc_rxout = ptr::null_mut();
        c.mc_rxroom = 0;
        c.mc_rxn = 0;
        n
    })
}

/// A bounded FIFO of received packets (`if_percpuq_enqueue` to `rx_burst`).
pub struct RxRing {
    /// Taken only when `locked` (MP-safe drivers).
    spin: AtomicBool,
    locked: AtomicBool,
    slots: UnsafeCell<[*mut mbuf; RX_RING]>,
    head: UnsafeCell<usize>,
    tail: UnsafeCell<usize>,
    /// Packets dropped because the ring was full.
    pub drops: AtomicU64,
}

impl RxRing {
    fn new() -> RxRing {
        RxRing {
            spin: AtomicBool::new(false),
            locked: AtomicBool::new(false),
            slots: UnsafeCell::new([ptr::null_mut(); RX_RING]),
            head: UnsafeCell::new(0),
            tail: UnsafeCell::new(0),
            drops: AtomicU64::new(0),
        }
    }

    /// Makes the ring take its lock (for an MP-safe driver).
    pub fn set_locked(&self, on: bool) {
        self.locked.store(on, Ordering::Relaxed);
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut [*mut mbuf; RX_RING], &mut usize, &mut usize) -> R) -> R {
        let locked = self.locked.load(Ordering::Relaxed);
        if locked {
            while self
                .spin
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                std::hint::spin_loop();
            }
        }
        // SAFETY: for an MP-safe driver the spin lock above makes this
        // thread the only one inside; for a serialized driver the runtime's
        // driver lock does (every caller is an entry point of the driver).
        let r = unsafe {
            f(
                &mut *self.slots.get(),
                &mut *self.head.get(),
                &mut *self.tail.get(),
            )
        };
        if locked {
            self.spin.store(false, Ordering::Release);
        }
        r
    }

    /// Appends a packet; gives it back when the ring is full.
    #[inline]
    pub fn push(&self, m: *mut mbuf) -> Result<(), *mut mbuf> {
        self.with(|slots, head, tail| {
            if *tail - *head == RX_RING {
                return Err(m);
            }
            slots[*tail % RX_RING] = m;
            *tail += 1;
            Ok(())
        })
    }

    /// Takes up to `out.len()` packets; returns how many.
    #[inline]
    pub fn pop_into(&self, out: &mut [*mut mbuf]) -> usize {
        self.with(|slots, head, tail| {
            let n = (*tail - *head).min(out.len());
            for o in out.iter_mut().take(n) {
                *o = slots[*head % RX_RING];
                *head += 1;
            }
            n
        })
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.with(|_, head, tail| *head == *tail)
    }

    /// Frees every packet held.
    pub fn purge(&self) {
        let mut buf = [ptr::null_mut(); 64];
        loop {
            let n = self.pop_into(&mut buf);
            if n == 0 {
                break;
            }
            for &m in &buf[..n] {
                // SAFETY: the ring owned these packets exclusively.
                drop(unsafe { Mbuf::from_raw(m) });
            }
        }
    }
}

// SAFETY: the raw packet pointers are owned by the ring; access is
// serialized as described at `RxRing::with`.
unsafe impl Send for RxRing {}
// SAFETY: as for Send.
unsafe impl Sync for RxRing {}

/// An established interrupt handler.
pub struct Irq {
    /// The eventfd the device signals.
    pub fd: RawFd,
    /// Which kind of vector.
    pub kind: IrqKind,
    /// The driver's handler and its argument.
    pub func: Option<unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int>,
    /// The handler's argument.
    pub arg: *mut libc::c_void,
    /// Whether it may run without the driver's big lock (PCI_INTR_MPSAFE).
    pub mpsafe: bool,
}

/// A receive poll handler (`if_poll_establish`).
#[derive(Clone, Copy)]
pub struct Poll {
    /// The handler.
    pub func: unsafe extern "C" fn(*mut libc::c_void, libc::c_int) -> libc::c_int,
    /// Its argument.
    pub arg: *mut libc::c_void,
}

/// A soft interrupt (`softint_establish`).
pub struct SoftInt {
    /// The handler.
    pub func: unsafe extern "C" fn(*mut libc::c_void),
    /// Its argument.
    pub arg: *mut libc::c_void,
    /// SOFTINT_MPSAFE.
    pub mpsafe: bool,
    /// Scheduled and not yet run.
    pub pending: AtomicBool,
    /// The device it belongs to.
    pub ctx: *const DevCtx,
}

/// The adapter's state for one attached device.
pub struct DevCtx {
    /// Pool receive buffers come from.
    pub pool: Pool,
    /// Owner they are accounted to.
    pub owner: OwnerId,
    /// Options given to the driver.
    pub options: BTreeMap<String, String>,
    /// The C device (and softc behind it); set once at attach.
    pub dev: Cell<*mut sys::device>,
    /// The interface the driver attached; set by `if_attach`.
    pub ifp: Cell<*mut sys::ifnet>,
    /// Whether `ether_ifattach` ran (the ifnet is an ethercom).
    pub ether: Cell<bool>,
    /// The PCI function, for PCI drivers.
    pub pci: Mutex<Option<Box<dyn PciDevice>>>,
    /// BAR mappings (address, length) made so far, by BAR index.
    pub bars: Mutex<[Option<(usize, usize)>; 6]>,
    /// DMA memory handed out by `bus_dmamem_alloc`.
    pub dma: Mutex<Vec<Box<dyn DmaMemory>>>,
    /// DMA maps made by `bus_dmamap_create`, and the fault redirections
    /// in force (see [`crate::fault`]).
    pub maps: Mutex<crate::fault::DmaMaps>,
    /// Bus space tags: memory and I/O.
    pub memt: UnsafeCell<sys::pktkit_bus_space>,
    /// The I/O space tag.
    pub iot: UnsafeCell<sys::pktkit_bus_space>,
    /// The DMA tag.
    pub dmat: UnsafeCell<sys::pktkit_bus_dma_tag>,
    /// Interrupt vectors allocated (by `pci_intr_alloc`/`pci_intr_map`).
    pub irq_fds: Mutex<Vec<RawFd>>,
    /// Kind of the vectors allocated.
    pub irq_kind: Mutex<Option<IrqKind>>,
    /// Established handlers.
    pub irqs: Mutex<Vec<Irq>>,
    /// Receive poll handlers.
    pub polls: Mutex<Vec<Poll>>,
    /// Fast copy of `polls` for the receive path (set after attach).
    pub poll: Cell<Option<Poll>>,
    /// Callouts initialised by the driver.
    pub callouts: Mutex<Vec<*mut sys::callout>>,
    /// Soft interrupts established.
    pub softints: Mutex<Vec<Box<SoftInt>>>,
    /// Event counters attached.
    pub evcnts: Mutex<Vec<*mut sys::evcnt>>,
    /// Work queues made by `workqueue_create` (see [`crate::workqueue`]).
    pub workqueues: Mutex<Vec<Arc<crate::workqueue::WorkQueue>>>,
    /// Works dropped, never run, because their queue was destroyed (or
    /// the device detached) while they were queued.
    pub works_dropped: AtomicU64,
    /// The sysctl nodes the driver made (see [`crate::sysctl`]).
    pub sysctl: Mutex<crate::sysctl::Tree>,
    /// Earliest callout deadline the timerfd is armed for (ns, u64::MAX: none).
    pub timer_next: Mutex<u64>,
    /// Taken around non-MP-safe callouts/softints/handlers of an MP-safe
    /// driver (NetBSD's KERNEL_LOCK).
    pub giant: Mutex<()>,
    /// Packets received by the driver, waiting for `rx_burst`.
    pub rx: RxRing,
    /// `if_schedule_deferred_start` was called.
    pub deferred_start: AtomicBool,
    /// `if_link_state_change` changed the state.
    pub link_changed: AtomicBool,
    /// The last link state (LINK_STATE_*).
    pub link_state: AtomicI32,
    /// The driver is IFEF_MPSAFE (read after attach).
    pub mpsafe: Cell<bool>,
    /// epoll set of every source `service` handles.
    pub epoll: OwnedFd,
    /// timerfd for callouts.
    pub timerfd: OwnedFd,
    /// eventfd for softints and deferred starts.
    pub softint_fd: OwnedFd,
    /// eventfd that wakes the receive worker.
    pub rx_fd: OwnedFd,
    /// epoll set the receive worker sleeps on: the interrupt eventfds and
    /// `rx_fd` (not the timers: they are the service pass's business).
    pub rx_epoll: OwnedFd,
    /// The receive worker sleeps on `rx_fd` and must be woken.
    pub rx_armed: AtomicBool,
}

// SAFETY: the Cells and UnsafeCells are written only during attach (one
// thread, before the context is shared) or under the runtime's driver lock;
// the raw pointers lead to C objects whose access is serialized as the
// module documentation describes.
unsafe impl Send for DevCtx {}
// SAFETY: as for Send.
unsafe impl Sync for DevCtx {}

fn cvt(r: libc::c_int, op: &str) -> std::io::Result<OwnedFd> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("{op}: {e}")));
    }
    // SAFETY: r is a descriptor just returned to us and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Adds `fd` to the epoll set `ep`, readable.
pub fn epoll_add(ep: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: plain syscall on descriptors we own, with a live event.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Signals an eventfd (one write of 1).
pub fn signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to a descriptor we own; a full
    // counter (EAGAIN) still leaves it readable, which is all we need.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Empties an eventfd or timerfd; returns whether it had fired.
pub fn drain(fd: RawFd) -> bool {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; the fd is non-blocking.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) == 8 && v > 0 }
}

impl DevCtx {
    /// A context for a device taking buffers from `pool` for `owner`.
    pub fn new(
        pool: Pool,
        owner: OwnerId,
        options: BTreeMap<String, String>,
    ) -> std::io::Result<DevCtx> {
        crate::kern::count_cpus();
        // SAFETY: plain syscalls; results checked by cvt.
        let epoll = cvt(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        // SAFETY: as above.
        let timerfd = cvt(
            unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            },
            "timerfd_create",
        )?;
        // SAFETY: as above.
        let softint_fd = cvt(
            unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) },
            "eventfd",
        )?;
        // SAFETY: as above.
        let rx_fd = cvt(
            unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) },
            "eventfd",
        )?;
        // SAFETY: as above.
        let rx_epoll = cvt(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        epoll_add(rx_epoll.as_raw_fd(), rx_fd.as_raw_fd())?;
        epoll_add(epoll.as_raw_fd(), timerfd.as_raw_fd())?;
        epoll_add(epoll.as_raw_fd(), softint_fd.as_raw_fd())?;
        Ok(DevCtx {
            pool,
            owner,
            options,
            dev: Cell::new(ptr::null_mut()),
            ifp: Cell::new(ptr::null_mut()),
            ether: Cell::new(false),
            pci: Mutex::new(None),
            bars: Mutex::new([None; 6]),
            dma: Mutex::new(Vec::new()),
            maps: Mutex::new(crate::fault::DmaMaps::default()),
            memt: UnsafeCell::new(sys::pktkit_bus_space {
                bs_type: sys::BUS_SPACE_MEM as i32,
                bs_ctx: ptr::null_mut(),
            }),
            iot: UnsafeCell::new(sys::pktkit_bus_space {
                bs_type: sys::BUS_SPACE_IO as i32,
                bs_ctx: ptr::null_mut(),
            }),
            dmat: UnsafeCell::new(sys::pktkit_bus_dma_tag {
                dt_ctx: ptr::null_mut(),
            }),
            irq_fds: Mutex::new(Vec::new()),
            irq_kind: Mutex::new(None),
            irqs: Mutex::new(Vec::new()),
            polls: Mutex::new(Vec::new()),
            poll: Cell::new(None),
            callouts: Mutex::new(Vec::new()),
            softints: Mutex::new(Vec::new()),
            evcnts: Mutex::new(Vec::new()),
            workqueues: Mutex::new(Vec::new()),
            works_dropped: AtomicU64::new(0),
            sysctl: Mutex::new(crate::sysctl::Tree::default()),
            timer_next: Mutex::new(u64::MAX),
            giant: Mutex::new(()),
            rx: RxRing::new(),
            deferred_start: AtomicBool::new(false),
            link_changed: AtomicBool::new(false),
            link_state: AtomicI32::new(sys::LINK_STATE_UNKNOWN as i32),
            mpsafe: Cell::new(false),
            epoll,
            timerfd,
            softint_fd,
            rx_fd,
            rx_epoll,
            rx_armed: AtomicBool::new(false),
        })
    }

    /// Points the bus tags at this context; call once it has its final
    /// address (inside its Arc).
    pub fn bind_tags(&self) {
        let me = self as *const DevCtx as *mut libc::c_void;
        // SAFETY: called once during attach, before any C code holds a tag.
        unsafe {
            (*self.memt.get()).bs_ctx = me;
            (*self.iot.get()).bs_ctx = me;
            (*self.dmat.get()).dt_ctx = me;
        }
    }

    /// Takes the giant lock for a handler that is not MP-safe (`mpsafe`
    /// false) of an MP-safe driver; nothing for a serialized driver (the
    /// runtime's driver lock already covers it), for an MP-safe handler, or
    /// when this thread holds the giant lock already (a work a non-MP-safe
    /// callout waits for runs inline under it).
    pub fn giant_for(&self, mpsafe: bool) -> Option<GiantGuard<'_>> {
        let me = self as *const DevCtx;
        if !self.mpsafe.get() || mpsafe || GIANT_HELD.with(Cell::get) == me {
            return None;
        }
        let guard = lock(&self.giant);
        let prev = GIANT_HELD.with(|g| g.replace(me));
        Some(GiantGuard {
            _guard: guard,
            prev,
        })
    }

    /// Wakes the receive worker if it sleeps and packets wait.
    pub fn kick_rx(&self) {
        if self.rx_armed.load(Ordering::Acquire) && !self.rx.is_empty() {
            signal(self.rx_fd.as_raw_fd());
        }
    }
}

thread_local! {
    /// The device whose giant lock this thread holds (null: none).
    static GIANT_HELD: Cell<*const DevCtx> = const { Cell::new(ptr::null()) };
}

/// The giant lock of a device, held (see [`DevCtx::giant_for`]).
pub struct GiantGuard<'a> {
    _guard: MutexGuard<'a, ()>,
    prev: *const DevCtx,
}

impl Drop for GiantGuard<'_> {
    fn drop(&mut self) {
        let prev = self.prev;
        GIANT_HELD.with(|g| g.set(prev));
    }
}

/// Locks a mutex, continuing past poisoning (the data are plain lists).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Monotonic time in nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Finds the context behind a C object's stored context pointer.
///
/// # Safety
/// `p` must be null or a pointer stored from a live `DevCtx`.
pub unsafe fn from_ptr<'a>(p: *const libc::c_void) -> Option<&'a DevCtx> {
    // SAFETY: forwarded contract.
    unsafe { p.cast::<DevCtx>().as_ref() }
}
