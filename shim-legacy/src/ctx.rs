//! The stack as one legacy device sees it (`struct pktkit_lg_stack`): the
//! packet slots that carry legacy packets, the translation between legacy
//! packets and mbufs, and the `extern "C"` services the driver calls.
//!
//! # Packets without the heap
//!
//! Every legacy packet the driver ever sees is a [`Slot`] of a table made at
//! attach: the packet, one buffer and [`FRAGS`] fragments, plus the mbuf the
//! slot lends. A free list of slot indices (capacity reserved at attach)
//! hands them out; nothing on the packet path allocates.
//!
//! - rx, zero copy: `ls_pkt_alloc(size)` takes an mbuf (from a small stash
//!   refilled from the pool in bulk) and describes its data room as the
//!   one fragment. If the packet comes back to `ls_rx` still that one
//!   fragment at the mbuf's data, the mbuf is the received packet: only
//!   its length is set.
//! - rx, copy: any other shape (bare packets over driver memory, several
//!   fragments, a moved fragment) is gathered into a fresh mbuf (a chain
//!   for jumbo frames) and counted in `rx_copies`.
//! - tx: an mbuf chain becomes one buffer with a fragment per mbuf (zero
//!   copy, up to [`FRAGS`] mbufs); `lp_done` gives the chain back to the
//!   pool (in bulk, at the end of the burst).
//!
//! ABI 1.1's burst services (`ls_pkt_alloc_burst`, `ls_pkt_free_burst`,
//! `ls_rx_burst`, `ls_tx_done_burst`) apply the same rules to many packets
//! in one call: one check of the caller, one bulk pool allocation, the
//! counters added once. A slot is laid out so that the packet path touches
//! its first two cache lines only (packet, mbuf, state, buffer, first
//! fragment), and what never changes in it is written once (see
//! [`Slot`]'s `lend`): the packet path is bound by memory stores.
//!
//! ABI 1.3's flat descriptors ([`desc`]) skip the slots: a frame in one
//! pool buffer is one descriptor whose cookie is the buffer's index, and
//! the device keeps one byte of state per pool buffer.
//!
//! # Which calls are trusted
//!
//! The shim records the device it is calling into in a thread-local
//! ([`CallGuard`]) for the length of every call into the driver. A service
//! call naming another device, or arriving outside a call, is counted
//! (`bad_calls`) and ignored; a packet pointer that is not a slot of this
//! device in the right state is counted (`bad_packets`) and ignored. The
//! driver's own memory (fragment pointers) cannot be checked: the driver is
//! in-process C, trusted with its own pointers.
//!
//! # Aliasing
//!
//! The device state lives in an `UnsafeCell` inside [`StackCtx`]. Rust code
//! takes `&mut State` only for short stretches that never call into the
//! driver, so the service calls the driver makes (which take their own
//! short `&mut State`) never overlap another. Every call is serialized by
//! the device's `Serial` (see device.rs and serial.rs), so no two threads
//! are ever inside.

use std::cell::{Cell, UnsafeCell};
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::Arc;

use pktkit_native::device::{DmaMemory, IrqKind, PciDevice, PciOpener};
use pktkit_native::mbuf::{free_raw_bulk, DATAROOM};
use pktkit_native::sys::{mbuf, M_BCAST, M_MCAST};
use pktkit_native::{Mbuf, OwnerId, PacketBatch, Pool};

use crate::sys;

pub mod desc;

/// Fragments of one slot (tx chains and bare rx packets).
pub const FRAGS: usize = sys::PKTKIT_LG_BARE_FRAGS as usize;
/// Largest frame the shim accepts from a driver (jumbo, as an mbuf chain).
pub const MAX_FRAME: usize = 9216;
/// Received packets queued between a driver's up-calls and `rx_burst`.
pub const RX_RING: usize = 1024;
/// Mbufs kept at hand for `ls_pkt_alloc`, refilled in bulk.
const STASH: usize = 64;
/// Most packets one burst service call handles (more are refused or left).
pub const BURST: usize = 256;
/// Completed transmits whose mbufs are freed together.
const PENDING: usize = 64;
/// Most PCI functions, DMA blocks and timers one device may hold.
const MAX_PCI: usize = 4;
const MAX_TIMERS: usize = 32;
/// epoll tags: interrupt sources and timers.
const TAG_INTR: u64 = 1 << 32;
const TAG_TIMER: u64 = 2 << 32;

/// Why [`State::tx_prepare_burst`] stopped before the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrepStop {
    /// It did not: the burst is full or the packets are all prepared.
    No,
    /// The next packet is a chain longer than a slot's fragment list.
    Unsendable,
    /// No slot is free.
    NoSlot,
}

/// What a slot is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotState {
    /// On the free list.
    Free,
    /// Lent to the driver by `ls_pkt_alloc` (receive).
    Rx,
    /// Lent to the driver by `lf_transmit`.
    Tx,
}

/// One legacy packet and its storage. `pkt` is first, so a packet pointer
/// is a slot pointer. 512 bytes, cache-line aligned: the packet and the
/// mbuf fill the first line, the state, the buffer and the first fragment
/// the second; the other fragments (chains, bare packets) follow.
#[repr(C, align(64))]
pub struct Slot {
    pkt: sys::pktkit_lg_packet,
    /// The mbuf (chain) lent with the packet, or null.
    mbuf: *mut mbuf,
    state: SlotState,
    buf: sys::pktkit_lg_buf,
    frags: [sys::pktkit_lg_frag; FRAGS],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            pkt: sys::pktkit_lg_packet::default(),
            mbuf: ptr::null_mut(),
            state: SlotState::Free,
            buf: sys::pktkit_lg_buf::default(),
            frags: [sys::pktkit_lg_frag::default(); FRAGS],
        }
    }

    /// Makes slot `i`'s packet a fresh one of `len` bytes in the slot's own
    /// buffer with `nfrags` of its fragments (already written).
    ///
    /// The packet path is bound by stores, so what never changes (the packet
    /// pointing at the slot's buffer, the buffer at its fragments, the
    /// owner's words, `lp_done`) is written once and only checked here; a
    /// driver that rewrote any of it (bare packets may point elsewhere) gets
    /// it rewritten.
    #[inline(always)]
    fn lend(&mut self, i: usize, nfrags: u32, len: u32) {
        let own_buf: *mut sys::pktkit_lg_buf = &mut self.buf;
        // Compared as addresses: the shim's one completion function.
        let own_done: unsafe extern "C" fn(*mut sys::pktkit_lg_packet, libc::c_int) = tx_done;
        if self.pkt.lp_bufs != own_buf
            || self.buf.lb_frags != self.frags.as_mut_ptr()
            || !self.buf.lb_next.is_null()
            || self.pkt.lp_owner != [i as u64, 0]
            || self.pkt.lp_done.map(|f| f as usize) != Some(own_done as usize)
        {
            self.restore(i);
        }
        self.buf.lb_nfrags = nfrags;
        self.pkt.lp_len = len;
        self.pkt.lp_flags = 0;
        self.pkt.lp_driver = ptr::null_mut();
        self.pkt.lp_next = ptr::null_mut();
    }

    /// Writes the parts of slot `i` that [`Slot::lend`] keeps.
    #[cold]
    fn restore(&mut self, i: usize) {
        self.buf = sys::pktkit_lg_buf {
            lb_next: ptr::null_mut(),
            lb_frags: self.frags.as_mut_ptr(),
            lb_nfrags: 0,
            lb_reserved: 0,
        };
        self.pkt.lp_bufs = &mut self.buf;
        // Every packet carries the completion; on a receive packet it is
        // refused (the slot is not lent for transmit).
        self.pkt.lp_done = Some(tx_done);
        self.pkt.lp_owner = [i as u64, 0];
    }
}

/// The shim's counters for one device (nicinfo shows them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShimCounters {
    /// Frames received without copying.
    pub rx_zero_copy: u64,
    /// Frames received by copying from the driver's fragments.
    pub rx_copies: u64,
    /// Bytes received (all paths).
    pub rx_bytes: u64,
    /// Frames dropped because `rx_burst` had not drained the queue.
    pub rx_ring_drops: u64,
    /// `ls_pkt_alloc` calls that found no slot or no buffer.
    pub pkt_alloc_failures: u64,
    /// Frames lent to the driver for transmit, without copying.
    pub tx_zero_copy: u64,
    /// Frames copied for transmit (never, today: every chain fits).
    pub tx_copies: u64,
    /// Bytes lent for transmit.
    pub tx_bytes: u64,
    /// Transmits completed with status 0.
    pub tx_done: u64,
    /// Transmits refused with an error, completed with an error, or unsendable.
    pub tx_errors: u64,
    /// Transmits refused for lack of room (EBUSY) or of a free slot.
    pub tx_busy: u64,
    /// Times the transmit watchdog found completions stalled.
    pub tx_timeouts: u64,
    /// Packets the driver still held at stop, taken back by the shim.
    pub reclaimed: u64,
    /// Packet pointers that were not ours, or in the wrong state.
    pub bad_packets: u64,
    /// Service calls from outside a call into the driver, or for another device.
    pub bad_calls: u64,
    /// Port I/O or config accesses that failed.
    pub io_errors: u64,
    /// Interrupts delivered to the driver's handler.
    pub interrupts: u64,
    /// Per-packet receive up-calls (`ls_rx`).
    pub rx_upcalls: u64,
    /// Burst receive up-calls (`ls_rx_burst`, ABI 1.1).
    pub rx_burst_upcalls: u64,
    /// Per-packet transmit calls into the driver (`lf_transmit`).
    pub tx_calls: u64,
    /// Burst transmit calls into the driver (`lf_transmit_burst`, ABI 1.1).
    pub tx_burst_calls: u64,
    /// Descriptor receive up-calls (`ls_rx_desc`, ABI 1.3).
    pub rx_desc_upcalls: u64,
    /// Descriptor transmit calls into the driver (`lf_transmit_desc`, ABI 1.3).
    pub tx_desc_calls: u64,
}

struct Intr {
    fd: RawFd,
    handler: unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
}

struct Timer {
    fd: OwnedFd,
    callback: unsafe extern "C" fn(*mut libc::c_void),
    arg: *mut libc::c_void,
}

/// The device's mutable state; see the module doc for who touches it when.
pub struct State {
    name: String,
    pool: Pool,
    owner: OwnerId,
    slots: Box<[Slot]>,
    free: Vec<u32>,
    /// Pool buffers lent through ABI 1.3 descriptors.
    desc: desc::Lent,
    stash: [*mut mbuf; STASH],
    stash_len: usize,
    /// Where `ls_pkt_alloc_burst` allocates before lending.
    burst: [*mut mbuf; BURST],
    ring: Box<[*mut mbuf]>,
    ring_head: usize,
    ring_len: usize,
    /// While `rx_burst` polls: the batch up-calls go straight into.
    rx_target: *mut PacketBatch,
    pending: [*mut mbuf; PENDING],
    pending_len: usize,
    rx_wake: OwnedFd,
    /// What an interrupt-driven receive queue sleeps on: the service epoll
    /// fd (interrupts, timers) and `rx_wake`.
    rx_epoll: OwnedFd,
    rx_armed: bool,
    /// Transmit slots lent (from `tx_prepare` to their release).
    pub(crate) tx_lent: u32,
    pub(crate) link_changed: bool,
    /// What the shim counted.
    pub counters: ShimCounters,
    options: BTreeMap<String, CString>,
    pci_opener: Option<Arc<dyn PciOpener>>,
    pcis: Vec<Box<dyn PciDevice>>,
    dmas: Vec<Box<dyn DmaMemory>>,
    intrs: Vec<Intr>,
    timers: Vec<Option<Timer>>,
    epoll: OwnedFd,
    scratch: Vec<u8>,
    /// PCI addresses attached, for describe().
    pub(crate) pci_names: Vec<String>,
}

/// `struct pktkit_lg_stack`: what the driver's `stack` pointer points at.
pub struct StackCtx {
    st: UnsafeCell<State>,
}

// SAFETY: the raw pointers in State are slots and mbufs this device owns and
// driver-given handler arguments; the whole StackCtx is only ever used under
// the device's `Serial`, one thread at a time.
unsafe impl Send for StackCtx {}

thread_local! {
    /// The device whose driver this thread is calling into, or null.
    static CURRENT: Cell<*const StackCtx> = const { Cell::new(ptr::null()) };
}

/// Marks the calling thread as inside a call into `ctx`'s driver.
pub struct CallGuard {
    prev: *const StackCtx,
}

impl CallGuard {
    /// Enters `ctx`; the guard leaves it.
    pub fn enter(ctx: &StackCtx) -> CallGuard {
        let prev = CURRENT.with(|c| c.replace(ctx));
        CallGuard { prev }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads an eventfd or timerfd counter (0 if nothing was pending).
fn read_counter(fd: RawFd) -> u64 {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a local u64.
    let n = unsafe { libc::read(fd, ptr::addr_of_mut!(v).cast(), 8) };
    if n == 8 {
        v
    } else {
        0
    }
}

fn write_counter(fd: RawFd) {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a local u64.
    unsafe { libc::write(fd, ptr::addr_of!(one).cast(), 8) };
}

fn epoll_add(epoll: RawFd, fd: RawFd, tag: u64) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: tag,
    };
    // SAFETY: ev is a valid epoll_event for the call's duration.
    if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl StackCtx {
    /// A device's stack side: slots, queues and fds, made at attach.
    pub fn new(
        name: &str,
        pool: Pool,
        owner: OwnerId,
        slots: usize,
        options: &BTreeMap<String, String>,
        pci_opener: Option<Arc<dyn PciOpener>>,
    ) -> std::io::Result<Box<StackCtx>> {
        let span = pool.span();
        let mut table: Box<[Slot]> = (0..slots).map(|_| Slot::new()).collect();
        // In place: the packets point into their own slots.
        for (i, s) in table.iter_mut().enumerate() {
            s.restore(i);
        }
        let options = options
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), CString::new(v.as_str()).ok()?)))
            .collect();
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: ep is a fresh descriptor we own.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        // SAFETY: as above.
        let rep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if rep < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: rep is a fresh descriptor we own.
        let rx_epoll = unsafe { OwnedFd::from_raw_fd(rep) };
        let rx_wake = eventfd()?;
        epoll_add(rx_epoll.as_raw_fd(), epoll.as_raw_fd(), 0)?;
        epoll_add(rx_epoll.as_raw_fd(), rx_wake.as_raw_fd(), 1)?;
        Ok(Box::new(StackCtx {
            st: UnsafeCell::new(State {
                name: name.to_owned(),
                pool,
                owner,
                desc: desc::Lent::new(span),
                slots: table,
                free: (0..slots as u32).rev().collect(),
                stash: [ptr::null_mut(); STASH],
                stash_len: 0,
                burst: [ptr::null_mut(); BURST],
                ring: vec![ptr::null_mut(); RX_RING].into_boxed_slice(),
                ring_head: 0,
                ring_len: 0,
                rx_target: ptr::null_mut(),
                pending: [ptr::null_mut(); PENDING],
                pending_len: 0,
                rx_wake,
                rx_epoll,
                rx_armed: false,
                tx_lent: 0,
                link_changed: false,
                counters: ShimCounters::default(),
                options,
                pci_opener,
                pcis: Vec::new(),
                dmas: Vec::new(),
                intrs: Vec::new(),
                timers: Vec::new(),
                epoll,
                scratch: vec![0; MAX_FRAME],
                pci_names: Vec::new(),
            }),
        }))
    }

    /// The pointer the driver knows us by.
    pub fn as_stack(&self) -> *mut sys::pktkit_lg_stack {
        (self as *const StackCtx).cast_mut().cast()
    }

    /// Runs `f` on the state.
    ///
    /// Callers must not call into the driver inside `f` (see the module doc).
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // SAFETY: no other reference into the state is alive: Rust code takes
        // one only inside `with`, which never calls into the driver, and the
        // device's `Serial` keeps other threads out.
        f(unsafe { &mut *self.st.get() })
    }
}

/// The state of the device the driver named, if it is the one being called.
///
/// # Safety
/// Must be called from a service trampoline (no other `&mut State` alive);
/// the returned reference must be dropped before returning to the driver.
/// What a burst transmit call that returned `rc` for `k` lent frames
/// took: `None` for a failing call (negative, not EBUSY), which takes them
/// all, to be freed; else a prefix, as many as it said, or as far as it
/// completed frames (`completed(j)`) if that is further, and whether the
/// driver misbehaved (completed beyond what it said, or said more than
/// `k`). The rule of every burst transmit entry (1.1 packets, 1.3
/// descriptors).
fn settled(rc: i32, k: usize, completed: impl Fn(usize) -> bool) -> Option<(usize, bool)> {
    if rc < 0 && rc != sys::PKTKIT_LG_EBUSY {
        return None;
    }
    let said = usize::try_from(rc).unwrap_or(0);
    if said == k {
        // The usual case: all taken; nothing beyond to look at.
        return Some((k, false));
    }
    let completed_to = (0..k).rev().find(|&j| completed(j)).map_or(0, |j| j + 1);
    Some((
        said.min(k).max(completed_to),
        said > k || completed_to > said,
    ))
}

/// The mbuf flags for a received frame's `PKTKIT_LG_PKT_*` flags.
#[inline(always)]
fn m_flags(lg: u32) -> u32 {
    let mut m = 0;
    if lg & sys::PKTKIT_LG_PKT_BCAST != 0 {
        m |= M_BCAST;
    }
    if lg & sys::PKTKIT_LG_PKT_MCAST != 0 {
        m |= M_MCAST;
    }
    m
}

/// Gives a fresh single buffer the received frame's length and flags.
///
/// # Safety
/// `m` must be a live, unchained pool buffer the caller owns, with room
/// for `len` bytes from its data on.
#[inline(always)]
unsafe fn set_received(m: *mut mbuf, len: u32, lg_flags: u32) {
    // SAFETY: per the contract.
    unsafe {
        (*m).m_hdr.mh_len = len as i32;
        (*m).M_pkthdr.len = len as i32;
        (*m).m_hdr.mh_flags |= m_flags(lg_flags);
    }
}

unsafe fn current<'a>(stack: *mut sys::pktkit_lg_stack) -> Option<&'a mut State> {
    let cur = CURRENT.with(Cell::get);
    if cur.is_null() {
        return None;
    }
    // SAFETY: cur is the live StackCtx whose driver is being called (set by
    // CallGuard, which borrows it for the call), and per the contract no
    // other reference into its state is alive.
    let st = unsafe { &mut *(*cur).st.get() };
    if !stack.is_null() && stack.cast_const().cast::<StackCtx>() != cur {
        st.counters.bad_calls += 1;
        return None;
    }
    Some(st)
}

impl State {
    /// Whether the driver allocated DMA memory (`ls_dma_alloc`): a device
    /// without any moves every byte by programmed I/O, no bus-master DMA.
    pub(crate) fn has_dma(&self) -> bool {
        !self.dmas.is_empty()
    }

    /// The index of the slot `pkt` is, if it is one of ours.
    fn slot_of(&self, pkt: *const sys::pktkit_lg_packet) -> Option<usize> {
        let base = self.slots.as_ptr() as usize;
        let off = (pkt as usize).checked_sub(base)?;
        let size = std::mem::size_of::<Slot>();
        (off % size == 0 && off / size < self.slots.len()).then_some(off / size)
    }

    fn take_slot(&mut self) -> Option<usize> {
        self.free.pop().map(|i| i as usize)
    }

    /// Returns a slot to the free list (its mbuf already dealt with; a
    /// free slot's `mbuf` is never read).
    #[inline(always)]
    fn release(&mut self, i: usize) {
        let s = &mut self.slots[i];
        if s.state == SlotState::Tx {
            self.tx_lent -= 1;
        }
        s.state = SlotState::Free;
        // Capacity is the table size: this never reallocates.
        self.free.push(i as u32);
    }

    fn stash_get(&mut self) -> Option<*mut mbuf> {
        if self.stash_len == 0 {
            self.stash_len = self
                .pool
                .alloc_raw_bulk(self.owner, &mut self.stash[..STASH / 2]);
        }
        if self.stash_len == 0 {
            return None;
        }
        self.stash_len -= 1;
        Some(self.stash[self.stash_len])
    }

    /// Gives a packet back to the pool, batched.
    fn free_later(&mut self, m: *mut mbuf) {
        if m.is_null() {
            return;
        }
        if self.pending_len == PENDING {
            self.flush_frees();
        }
        self.pending[self.pending_len] = m;
        self.pending_len += 1;
    }

    /// Frees every batched packet.
    pub fn flush_frees(&mut self) {
        if self.pending_len == 0 {
            return;
        }
        // SAFETY: pending holds packets this device owns and no longer uses.
        unsafe { free_raw_bulk(&self.pending[..self.pending_len]) };
        self.pending_len = 0;
    }

    /// A packet for the driver: `size` 0 bare, else one fragment of an mbuf.
    fn pkt_alloc(&mut self, size: u32) -> *mut sys::pktkit_lg_packet {
        if size as usize > DATAROOM {
            self.counters.pkt_alloc_failures += 1;
            return ptr::null_mut();
        }
        let Some(i) = self.take_slot() else {
            self.counters.pkt_alloc_failures += 1;
            return ptr::null_mut();
        };
        let m = if size == 0 {
            ptr::null_mut()
        } else if let Some(m) = self.stash_get() {
            m
        } else {
            self.release(i);
            self.counters.pkt_alloc_failures += 1;
            return ptr::null_mut();
        };
        self.lend_rx(i, m, size)
    }

    /// `ls_pkt_alloc_burst`: up to `out.len()` packets as [`State::pkt_alloc`]
    /// makes them, the mbufs taken from the pool in one bulk call. Returns
    /// how many were written to `out`; a short burst counts one failure.
    fn pkt_alloc_burst(&mut self, size: u32, out: &mut [*mut sys::pktkit_lg_packet]) -> usize {
        let want = out.len().min(BURST);
        if size as usize > DATAROOM {
            self.counters.pkt_alloc_failures += 1;
            return 0;
        }
        let n = want.min(self.free.len());
        let got = if size == 0 {
            self.burst[..n].fill(ptr::null_mut());
            n
        } else {
            self.pool.alloc_raw_bulk(self.owner, &mut self.burst[..n])
        };
        for (k, slot) in out[..got].iter_mut().enumerate() {
            let m = self.burst[k];
            // `got` <= free slots: take_slot cannot fail here.
            let Some(i) = self.take_slot() else { break };
            *slot = self.lend_rx(i, m, size);
        }
        if got < out.len() {
            self.counters.pkt_alloc_failures += 1;
        }
        got
    }

    /// Lends slot `i` for receive: bare (`m` null), or with `m`'s data room
    /// as its one fragment of `size` bytes. Returns the packet.
    #[inline(always)]
    fn lend_rx(&mut self, i: usize, m: *mut mbuf, size: u32) -> *mut sys::pktkit_lg_packet {
        let s = &mut self.slots[i];
        let nfrags = if m.is_null() {
            0
        } else {
            // SAFETY: m is a fresh pool buffer this device owns.
            let (data, iova) = unsafe {
                let h = &(*m).m_hdr;
                (
                    h.mh_data,
                    h.mh_paddr + (h.mh_data as u64 - (*m).M_ext.ext_buf as u64),
                )
            };
            s.frags[0] = sys::pktkit_lg_frag {
                lf_ptr: data.cast(),
                lf_busaddr: iova,
                lf_len: size,
                lf_reserved: 0,
            };
            1
        };
        s.lend(i, nfrags, 0);
        s.mbuf = m;
        s.state = SlotState::Rx;
        &mut s.pkt
    }

    fn pkt_free(&mut self, pkt: *mut sys::pktkit_lg_packet) {
        match self.slot_of(pkt) {
            Some(i) if self.slots[i].state == SlotState::Rx => {
                let m = self.slots[i].mbuf;
                if !m.is_null() && self.stash_len < STASH {
                    // Back into the stash with its data reset; it is fresh.
                    self.stash[self.stash_len] = m;
                    self.stash_len += 1;
                } else {
                    self.free_later(m);
                }
                self.release(i);
            }
            _ => self.counters.bad_packets += 1,
        }
    }

    /// `ls_pkt_free_burst`.
    fn pkt_free_burst(&mut self, pkts: &[*mut sys::pktkit_lg_packet]) {
        for &p in pkts {
            self.pkt_free(p);
        }
    }

    /// `ls_rx_burst`: [`State::rx`] of each, in order, the zero-copy ones
    /// counted once for the burst.
    fn rx_burst(&mut self, pkts: &[*mut sys::pktkit_lg_packet]) {
        self.counters.rx_burst_upcalls += 1;
        self.rx_packets(pkts);
    }

    /// Received packets to the stack: zero copy where the packet allows,
    /// else [`State::rx_slow`].
    #[inline(always)]
    fn rx_packets(&mut self, pkts: &[*mut sys::pktkit_lg_packet]) {
        let (mut frames, mut bytes) = (0u64, 0u64);
        for &p in pkts {
            match self.rx_zero_copy(p) {
                Some((m, len)) => {
                    frames += 1;
                    bytes += len as u64;
                    self.deliver_raw(m);
                }
                None => self.rx_slow(p),
            }
        }
        self.counters.rx_zero_copy += frames;
        self.counters.rx_bytes += bytes;
    }

    /// `ls_tx_done_burst`: [`State::tx_complete`] of each, counted once.
    fn tx_complete_burst(&mut self, pkts: &[*mut sys::pktkit_lg_packet], status: i32) {
        let mut done = 0;
        for &p in pkts {
            done += u64::from(self.tx_complete_one(p));
        }
        self.count_completed(done, status);
    }

    /// Counts `n` transmits the driver completed with `status`: errors if
    /// it is negative, else done.
    fn count_completed(&mut self, n: u64, status: i32) {
        if status < 0 {
            self.counters.tx_errors += n;
        } else {
            self.counters.tx_done += n;
        }
    }

    /// The receive up-call (`ls_rx`): turns the packet into an mbuf and
    /// queues it.
    fn rx(&mut self, pkt: *mut sys::pktkit_lg_packet) {
        self.rx_packets(&[pkt]);
    }

    /// The fast path of receive: a packet of ours lent for receive that
    /// came back still as the one fragment at its mbuf's data (the only
    /// shape the driver may leave for zero copy). Its mbuf gets the length
    /// and flags, the slot is released, and the mbuf (the caller's now)
    /// and the length are returned; any other packet is left alone.
    #[inline(always)]
    fn rx_zero_copy(&mut self, pkt: *mut sys::pktkit_lg_packet) -> Option<(*mut mbuf, usize)> {
        let i = self.slot_of(pkt)?;
        let s = &mut self.slots[i];
        let m = s.mbuf;
        let len = s.pkt.lp_len as usize;
        let shape = s.state == SlotState::Rx
            && !m.is_null()
            && s.pkt.lp_bufs == ptr::addr_of_mut!(s.buf)
            && s.buf.lb_next.is_null()
            && s.buf.lb_nfrags == 1
            && s.buf.lb_frags == s.frags.as_mut_ptr()
            && s.frags[0].lf_len as usize == len
            && len > 0
            // A fresh pool buffer has DATAROOM bytes from its data on.
            && len <= DATAROOM
            // SAFETY: m is the live buffer this slot lent.
            && s.frags[0].lf_ptr == unsafe { (*m).m_hdr.mh_data }.cast();
        if !shape {
            return None;
        }
        // SAFETY: the slot owns m, a fresh unchained buffer with DATAROOM
        // bytes of room (checked above); ownership moves to the caller.
        unsafe { set_received(m, len as u32, s.pkt.lp_flags) };
        self.release(i);
        Some((m, len))
    }

    /// Receive of any packet [`State::rx_zero_copy`] did not take: copied,
    /// or refused and counted.
    #[cold]
    fn rx_slow(&mut self, pkt: *mut sys::pktkit_lg_packet) {
        let Some(i) = self.slot_of(pkt) else {
            self.counters.bad_packets += 1;
            return;
        };
        if self.slots[i].state != SlotState::Rx {
            self.counters.bad_packets += 1;
            return;
        }
        let m = match self.translate_rx(i) {
            Some(m) => m,
            None => {
                let m = self.slots[i].mbuf;
                self.free_later(m);
                self.release(i);
                return;
            }
        };
        self.release(i);
        self.deliver(m);
    }

    /// The mbuf for slot `i`'s received packet, which is not in the
    /// zero-copy shape: a copy; `None` for a malformed packet (counted).
    fn translate_rx(&mut self, i: usize) -> Option<Mbuf> {
        let s = &self.slots[i];
        let len = s.pkt.lp_len as usize;
        let flags = s.pkt.lp_flags;
        if len == 0 || len > MAX_FRAME {
            self.counters.bad_packets += 1;
            return None;
        }
        let m = self.gather(i, len)?;
        let old = self.slots[i].mbuf;
        self.slots[i].mbuf = ptr::null_mut();
        self.free_later(old);
        let mut m = m;
        m.set_flags(m_flags(flags));
        self.counters.rx_copies += 1;
        self.counters.rx_bytes += len as u64;
        Some(m)
    }

    /// Copies the fragments of slot `i`'s packet (which must add up to
    /// `len`) into a new mbuf.
    fn gather(&mut self, i: usize, len: usize) -> Option<Mbuf> {
        let mut total = 0usize;
        let mut b = self.slots[i].pkt.lp_bufs;
        let mut bufs = 0;
        // First pass: check the shape and sum the lengths (bounded walk).
        while !b.is_null() && bufs < 64 {
            // SAFETY: the driver built this list of buffers; a v1 driver
            // points lp_bufs/lb_next at valid buffers or NULL.
            let buf = unsafe { &*b };
            if buf.lb_nfrags as usize > 64 || (buf.lb_nfrags > 0 && buf.lb_frags.is_null()) {
                self.counters.bad_packets += 1;
                return None;
            }
            for f in 0..buf.lb_nfrags as usize {
                // SAFETY: lb_frags holds lb_nfrags fragments.
                let fr = unsafe { &*buf.lb_frags.add(f) };
                if fr.lf_ptr.is_null() && fr.lf_len != 0 {
                    self.counters.bad_packets += 1;
                    return None;
                }
                total += fr.lf_len as usize;
            }
            b = buf.lb_next;
            bufs += 1;
        }
        if total != len || !b.is_null() {
            self.counters.bad_packets += 1;
            return None;
        }
        let single = len <= DATAROOM;
        let mut out = if single {
            let Some(raw) = self.stash_get() else {
                self.counters.pkt_alloc_failures += 1;
                return None;
            };
            // SAFETY: a fresh buffer from the pool, now ours.
            Some(unsafe { Mbuf::from_raw(raw) })
        } else {
            None
        };
        let mut done = 0usize;
        let mut b = self.slots[i].pkt.lp_bufs;
        {
            let dst: &mut [u8] = match out.as_mut() {
                Some(m) => m.append(len)?,
                None => &mut self.scratch[..len],
            };
            while !b.is_null() {
                // SAFETY: checked in the first pass.
                let buf = unsafe { &*b };
                for f in 0..buf.lb_nfrags as usize {
                    // SAFETY: checked in the first pass.
                    let fr = unsafe { &*buf.lb_frags.add(f) };
                    let n = fr.lf_len as usize;
                    if n > 0 {
                        // SAFETY: the driver says lf_ptr holds lf_len bytes;
                        // the destination has len - done >= n bytes (the
                        // lengths were summed above). ptr::copy tolerates a
                        // fragment inside the destination.
                        unsafe { ptr::copy(fr.lf_ptr.cast::<u8>(), dst[done..].as_mut_ptr(), n) };
                        done += n;
                    }
                }
                b = buf.lb_next;
            }
        }
        match out {
            Some(m) => Some(m),
            None => {
                let m = Mbuf::from_slice(&self.pool, self.owner, &self.scratch[..len]);
                if m.is_none() {
                    self.counters.pkt_alloc_failures += 1;
                }
                m
            }
        }
    }

    /// Hands a received mbuf to the burst in progress or the queue.
    fn deliver(&mut self, m: Mbuf) {
        self.deliver_raw(m.into_raw());
    }

    /// [`State::deliver`] of a raw packet the caller owns.
    #[inline(always)]
    fn deliver_raw(&mut self, m: *mut mbuf) {
        if !self.rx_target.is_null() && self.ring_len == 0 {
            // SAFETY: rx_target is set only for the length of an lf_poll
            // call, by rx_burst, which holds the batch borrowed mutably.
            let batch = unsafe { &mut *self.rx_target };
            if batch.room() > 0 {
                // SAFETY: room checked; ownership of m moves to the batch.
                unsafe { batch.push_raw(m) };
                return;
            }
        }
        if self.ring_len == RX_RING {
            self.counters.rx_ring_drops += 1;
            // SAFETY: we own m and nobody else references it.
            drop(unsafe { Mbuf::from_raw(m) });
            return;
        }
        let at = (self.ring_head + self.ring_len) % RX_RING;
        self.ring[at] = m;
        self.ring_len += 1;
        if self.rx_armed {
            self.rx_armed = false;
            write_counter(self.rx_wake.as_raw_fd());
        }
    }

    /// Moves queued packets into `batch`; returns how many.
    pub fn drain_rx(&mut self, batch: &mut PacketBatch) -> usize {
        let mut n = 0;
        while self.ring_len > 0 && batch.room() > 0 {
            let m = self.ring[self.ring_head];
            self.ring_head = (self.ring_head + 1) % RX_RING;
            self.ring_len -= 1;
            // SAFETY: the room was checked; the ring owned m.
            unsafe { batch.push_raw(m) };
            n += 1;
        }
        n
    }

    /// Packets waiting in the receive queue.
    pub fn rx_queued(&self) -> usize {
        self.ring_len
    }

    /// Points up-calls at `batch` (or nothing) while the driver polls.
    pub fn set_rx_target(&mut self, batch: *mut PacketBatch) {
        self.rx_target = batch;
    }

    /// What an interrupt-driven receive queue waits on: readable when an
    /// interrupt or timer is pending or frames were queued while armed.
    pub fn rx_wait_fd(&self) -> RawFd {
        self.rx_epoll.as_raw_fd()
    }

    /// Arms the receive wake-up; false if packets are already waiting.
    pub fn arm_rx(&mut self) -> bool {
        if self.ring_len > 0 {
            return false;
        }
        self.rx_armed = true;
        true
    }

    /// Disarms it and consumes the event.
    pub fn disarm_rx(&mut self) {
        self.rx_armed = false;
        read_counter(self.rx_wake.as_raw_fd());
    }

    /// Prepares a slot for transmitting `m`. Returns the slot and the
    /// frame's length, or `None` when no slot is free. Chains longer than
    /// [`FRAGS`] are unsendable: `Err(())`, and the caller drops the packet.
    /// The caller counts the transmit as lent.
    #[inline(always)]
    fn tx_prepare(&mut self, m: *mut mbuf) -> Option<Result<(usize, u64), ()>> {
        let i = self.take_slot()?;
        let s = &mut self.slots[i];
        let mut cur = m;
        let mut n = 0usize;
        let mut total = 0u64;
        while !cur.is_null() {
            if n == FRAGS {
                self.release(i);
                return Some(Err(()));
            }
            // SAFETY: cur is a buffer of the chain the caller owns.
            let h = unsafe { &(*cur).m_hdr };
            // SAFETY: as above; ext_buf is the storage start of the buffer.
            let ext = unsafe { (*cur).M_ext.ext_buf };
            s.frags[n] = sys::pktkit_lg_frag {
                lf_ptr: h.mh_data.cast(),
                lf_busaddr: h.mh_paddr + (h.mh_data as u64 - ext as u64),
                lf_len: h.mh_len.max(0) as u32,
                lf_reserved: 0,
            };
            total += h.mh_len.max(0) as u64;
            n += 1;
            cur = h.mh_next;
        }
        s.lend(i, n as u32, total as u32);
        s.mbuf = m;
        s.state = SlotState::Tx;
        Some(Ok((i, total)))
    }

    /// Prepares transmits for the packets of `raw`, front first, as many as
    /// `pkts` holds: their legacy packets go to `pkts`, their slots to
    /// `slots`. Returns how many, and why it stopped early.
    pub fn tx_prepare_burst(
        &mut self,
        raw: &[*mut mbuf],
        pkts: &mut [*mut sys::pktkit_lg_packet],
        slots: &mut [u32],
    ) -> (usize, PrepStop) {
        let n = raw.len().min(pkts.len()).min(slots.len());
        let mut bytes = 0;
        let mut stop = (n, PrepStop::No);
        for k in 0..n {
            match self.tx_prepare(raw[k]) {
                Some(Ok((i, len))) => {
                    pkts[k] = &mut self.slots[i].pkt;
                    slots[k] = i as u32;
                    bytes += len;
                }
                Some(Err(())) => {
                    stop = (k, PrepStop::Unsendable);
                    break;
                }
                None => {
                    stop = (k, PrepStop::NoSlot);
                    break;
                }
            }
        }
        // Counted as lent now; tx_untake and tx_failed take it back.
        self.tx_lent += stop.0 as u32;
        self.counters.tx_zero_copy += stop.0 as u64;
        self.counters.tx_bytes += bytes;
        stop
    }

    /// Whether the transmit lent in slot `i` was completed. Inside one call
    /// into the driver a completed slot cannot be lent for transmit again
    /// (only the shim prepares transmits, between calls), so a slot no
    /// longer in the `Tx` state was completed.
    fn tx_completed(&self, i: u32) -> bool {
        self.slots[i as usize].state != SlotState::Tx
    }

    /// Releases prepared transmits that were never offered to the driver.
    pub fn tx_release(&mut self, slots: &[u32]) {
        for &i in slots {
            self.tx_untake(i as usize);
        }
    }

    /// Slot `i`'s transmit was not taken: the packet stays the caller's.
    fn tx_untake(&mut self, i: usize) {
        self.tx_unlend(i);
        self.release(i);
    }

    /// Slot `i`'s transmit failed before it was taken: frees the packet.
    fn tx_failed(&mut self, i: usize) {
        self.tx_unlend(i);
        let m = self.slots[i].mbuf;
        self.free_later(m);
        self.release(i);
        self.counters.tx_errors += 1;
    }

    /// Takes back what `tx_prepare` counted for slot `i`.
    fn tx_unlend(&mut self, i: usize) {
        // The driver may have rewritten lp_len of a packet it did not take.
        let len = self.slots[i].pkt.lp_len as u64;
        self.counters.tx_zero_copy = self.counters.tx_zero_copy.saturating_sub(1);
        self.counters.tx_bytes = self.counters.tx_bytes.saturating_sub(len);
    }

    /// After `lf_transmit` returned `rc` for slot `i`: whether the driver
    /// took the packet. Not taken: the slot is released and the packet
    /// stays the caller's.
    pub fn tx_settle_one(&mut self, i: u32, rc: i32) -> bool {
        self.counters.tx_calls += 1;
        let i = i as usize;
        if self.tx_completed(i as u32) || rc == 0 {
            // lp_done may already have run (and freed the packet).
            true
        } else if rc == sys::PKTKIT_LG_EBUSY {
            self.tx_untake(i);
            false
        } else {
            self.tx_failed(i);
            true
        }
    }

    /// After `lf_transmit_burst` returned `rc` for the packets of `slots`:
    /// how many of them the driver took, a prefix of them. The others are
    /// released and stay the caller's. A driver that completed a packet
    /// beyond the count it returned took that far (counted in
    /// `bad_packets`); a failing burst (negative, not EBUSY) is freed whole
    /// and counted in `tx_errors`.
    pub fn tx_settle_burst(&mut self, slots: &[u32], rc: i32) -> usize {
        self.counters.tx_burst_calls += 1;
        let Some((taken, bad)) = settled(rc, slots.len(), |j| self.tx_completed(slots[j])) else {
            for &i in slots {
                if !self.tx_completed(i) {
                    self.tx_failed(i as usize);
                }
            }
            return slots.len();
        };
        self.counters.bad_packets += u64::from(bad);
        self.tx_release(&slots[taken..]);
        taken
    }

    /// Completion of a lent transmit (the `lp_done` of every tx packet).
    fn tx_complete(&mut self, pkt: *mut sys::pktkit_lg_packet, status: i32) {
        if !self.tx_complete_one(pkt) {
            return;
        }
        self.count_completed(1, status);
    }

    /// Completes `pkt` if it is a transmit of ours (its packet goes back to
    /// the pool, batched); false (counted) if it is not.
    #[inline(always)]
    fn tx_complete_one(&mut self, pkt: *mut sys::pktkit_lg_packet) -> bool {
        let Some(i) = self.slot_of(pkt) else {
            self.counters.bad_packets += 1;
            return false;
        };
        if self.slots[i].state != SlotState::Tx {
            self.counters.bad_packets += 1;
            return false;
        }
        let m = self.slots[i].mbuf;
        self.free_later(m);
        self.release(i);
        true
    }

    /// After the driver's stop: takes back every packet it still holds,
    /// empties the receive queue and the stash. Returns how many packets
    /// the driver had kept.
    pub fn reclaim_all(&mut self) -> u64 {
        let mut kept = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].state != SlotState::Free {
                let m = self.slots[i].mbuf;
                self.free_later(m);
                self.release(i);
                kept += 1;
            }
        }
        kept += self.reclaim_desc();
        self.counters.reclaimed += kept;
        while self.ring_len > 0 {
            let m = self.ring[self.ring_head];
            self.ring_head = (self.ring_head + 1) % RX_RING;
            self.ring_len -= 1;
            self.free_later(m);
        }
        while self.stash_len > 0 {
            self.stash_len -= 1;
            let m = self.stash[self.stash_len];
            self.free_later(m);
        }
        self.flush_frees();
        kept
    }

    /// The epoll fd combining interrupts and timers.
    pub fn service_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Collects what is ready on the service fd: interrupt handlers and
    /// timer callbacks to call, in `out` (fixed size; more wait for the
    /// next call). Returns how many.
    pub fn ready_events(&mut self, out: &mut [Callout; 16]) -> usize {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: evs has room for 16 events; timeout 0 never blocks.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 16, 0) };
        let mut k = 0;
        for ev in evs.iter().take(n.max(0) as usize) {
            let tag = ev.u64;
            let idx = (tag & 0xffff_ffff) as usize;
            if tag & TAG_INTR != 0 {
                if let Some(it) = self.intrs.get(idx) {
                    read_counter(it.fd);
                    self.counters.interrupts += 1;
                    out[k] = Callout::Intr(it.handler, it.arg);
                    k += 1;
                }
            } else if tag & TAG_TIMER != 0 {
                if let Some(Some(t)) = self.timers.get(idx) {
                    if read_counter(t.fd.as_raw_fd()) > 0 {
                        out[k] = Callout::Timer(t.callback, t.arg);
                        k += 1;
                    }
                }
            }
        }
        k
    }

    /// The PCI functions the driver attached, each with how its registers
    /// are reached (facts for `describe()`).
    pub(crate) fn pci_facts(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for (i, name) in self.pci_names.iter().enumerate() {
            v.push(("pci".into(), name.clone()));
            if let Some(d) = self.pcis.get(i) {
                v.extend(d.access());
            }
        }
        v
    }

    /// Stops interrupts and timers and releases device access (detach).
    pub fn release_devices(&mut self) {
        for t in self.timers.iter_mut() {
            *t = None;
        }
        self.intrs.clear();
        for p in self.pcis.iter_mut() {
            let _ = p.disable_irqs();
        }
        self.dmas.clear();
        self.pcis.clear();
    }

    /// The device name, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A driver callback that is due.
#[derive(Clone, Copy)]
pub enum Callout {
    /// Nothing.
    None,
    /// An interrupt handler and its argument.
    Intr(
        unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int,
        *mut libc::c_void,
    ),
    /// A timer callback and its argument.
    Timer(unsafe extern "C" fn(*mut libc::c_void), *mut libc::c_void),
}

// ---------------------------------------------------------------------------
// The services table and its trampolines. Each one checks that it is called
// from inside a call into this device's driver, and never unwinds into C.
// ---------------------------------------------------------------------------

/// The services every device gets.
pub static SERVICES: sys::pktkit_lg_services = sys::pktkit_lg_services {
    ls_size: std::mem::size_of::<sys::pktkit_lg_services>() as u32,
    ls_abi_minor: sys::PKTKIT_LG_ABI_MINOR,
    ls_pkt_alloc: Some(svc_pkt_alloc),
    ls_pkt_free: Some(svc_pkt_free),
    ls_pkt_room: DATAROOM as u32,
    ls_reserved0: 0,
    ls_rx: Some(svc_rx),
    ls_link_changed: Some(svc_link_changed),
    ls_option: Some(svc_option),
    ls_log: Some(svc_log),
    ls_pci_attach: Some(svc_pci_attach),
    ls_pci_cfg_read: Some(svc_pci_cfg_read),
    ls_pci_cfg_write: Some(svc_pci_cfg_write),
    ls_mmio_map: Some(svc_mmio_map),
    ls_io_in: Some(svc_io_in),
    ls_io_out: Some(svc_io_out),
    ls_io_in_rep: Some(svc_io_in_rep),
    ls_io_out_rep: Some(svc_io_out_rep),
    ls_dma_alloc: Some(svc_dma_alloc),
    ls_dma_free: Some(svc_dma_free),
    ls_intr_attach: Some(svc_intr_attach),
    ls_intr_unmask: Some(svc_intr_unmask),
    ls_timer_create: Some(svc_timer_create),
    ls_timer_arm: Some(svc_timer_arm),
    ls_timer_destroy: Some(svc_timer_destroy),
    ls_delay_us: Some(svc_delay_us),
    ls_pkt_alloc_burst: Some(svc_pkt_alloc_burst),
    ls_pkt_free_burst: Some(svc_pkt_free_burst),
    ls_rx_burst: Some(svc_rx_burst),
    ls_tx_done_burst: Some(svc_tx_done_burst),
    ls_rx_desc_alloc: Some(desc::svc_rx_desc_alloc),
    ls_rx_desc: Some(desc::svc_rx_desc),
    ls_rx_desc_free: Some(desc::svc_rx_desc_free),
    ls_tx_desc_done: Some(desc::svc_tx_desc_done),
};

type Stack = *mut sys::pktkit_lg_stack;
const EINVAL: i32 = sys::PKTKIT_LG_EINVAL;

unsafe extern "C" fn svc_pkt_alloc(stack: Stack, size: u32) -> *mut sys::pktkit_lg_packet {
    // SAFETY: called by the driver; see current().
    match unsafe { current(stack) } {
        Some(st) => st.pkt_alloc(size),
        None => ptr::null_mut(),
    }
}

unsafe extern "C" fn svc_pkt_free(stack: Stack, pkt: *mut sys::pktkit_lg_packet) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        st.pkt_free(pkt);
    }
}

unsafe extern "C" fn svc_rx(stack: Stack, pkt: *mut sys::pktkit_lg_packet) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        st.counters.rx_upcalls += 1;
        st.rx(pkt);
    }
}

/// The driver's array of `n` items it hands the stack (empty for NULL):
/// packet pointers, descriptors.
///
/// # Safety
/// `p` must be NULL or point at `n` items that stay put for the length of
/// the service call.
unsafe fn driver_array<'a, T>(p: *const T, n: u32) -> &'a [T] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: per the contract above.
    unsafe { std::slice::from_raw_parts(p, n as usize) }
}

/// The driver's array of room for `n` items the stack fills, at most a
/// burst (`None` for NULL).
///
/// # Safety
/// `p` must be NULL or point at room for `n` items that stays put for the
/// length of the service call.
unsafe fn driver_room<'a, T>(p: *mut T, n: u32) -> Option<&'a mut [T]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    Some(unsafe { std::slice::from_raw_parts_mut(p, (n as usize).min(BURST)) })
}

unsafe extern "C" fn svc_pkt_alloc_burst(
    stack: Stack,
    size: u32,
    pkts: *mut *mut sys::pktkit_lg_packet,
    n: u32,
) -> u32 {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return 0;
    };
    // SAFETY: the driver's array has room for n packet pointers.
    let Some(out) = (unsafe { driver_room(pkts, n) }) else {
        return 0;
    };
    st.pkt_alloc_burst(size, out) as u32
}

unsafe extern "C" fn svc_pkt_free_burst(
    stack: Stack,
    pkts: *const *mut sys::pktkit_lg_packet,
    n: u32,
) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        // SAFETY: the driver's array of n packets.
        st.pkt_free_burst(unsafe { driver_array(pkts, n) });
    }
}

unsafe extern "C" fn svc_rx_burst(stack: Stack, pkts: *const *mut sys::pktkit_lg_packet, n: u32) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        // SAFETY: the driver's array of n packets.
        st.rx_burst(unsafe { driver_array(pkts, n) });
    }
}

unsafe extern "C" fn svc_tx_done_burst(
    stack: Stack,
    pkts: *const *mut sys::pktkit_lg_packet,
    n: u32,
    status: libc::c_int,
) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        // SAFETY: the driver's array of n packets.
        st.tx_complete_burst(unsafe { driver_array(pkts, n) }, status);
    }
}

/// `lp_done` of every transmit packet.
unsafe extern "C" fn tx_done(pkt: *mut sys::pktkit_lg_packet, status: libc::c_int) {
    // SAFETY: called by the driver; the packet names no stack, so the
    // current device is used and the packet checked against its slots.
    if let Some(st) = unsafe { current(ptr::null_mut()) } {
        st.tx_complete(pkt, status);
    }
}

unsafe extern "C" fn svc_link_changed(stack: Stack) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        st.link_changed = true;
    }
}

unsafe extern "C" fn svc_option(stack: Stack, key: *const libc::c_char) -> *const libc::c_char {
    if key.is_null() {
        return ptr::null();
    }
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return ptr::null();
    };
    // SAFETY: key is a NUL-terminated string of the driver's.
    let Ok(key) = unsafe { CStr::from_ptr(key) }.to_str() else {
        return ptr::null();
    };
    // The CStrings live as long as the device: the map is never changed.
    st.options.get(key).map_or(ptr::null(), |v| v.as_ptr())
}

unsafe extern "C" fn svc_log(stack: Stack, level: libc::c_int, msg: *const libc::c_char) {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return;
    };
    if msg.is_null() {
        return;
    }
    // SAFETY: msg is a NUL-terminated string of the driver's.
    let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    let lvl = match level as u32 {
        sys::PKTKIT_LG_LOG_ERR => log::Level::Error,
        sys::PKTKIT_LG_LOG_WARN => log::Level::Warn,
        sys::PKTKIT_LG_LOG_INFO => log::Level::Info,
        _ => log::Level::Debug,
    };
    log::log!(lvl, "{}: {}", st.name, text);
}

unsafe extern "C" fn svc_pci_attach(
    stack: Stack,
    bdf: *const libc::c_char,
    info: *mut sys::pktkit_lg_pci_info,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    if bdf.is_null() || st.pcis.len() == MAX_PCI {
        return EINVAL;
    }
    // SAFETY: bdf is a NUL-terminated string of the driver's.
    let Ok(text) = unsafe { CStr::from_ptr(bdf) }.to_str() else {
        return EINVAL;
    };
    let Ok(addr) = text.parse::<pktkit_native::device::PciAddress>() else {
        return EINVAL;
    };
    let Some(opener) = st.pci_opener.clone() else {
        log::error!("{}: no PCI device access in this stack", st.name);
        return sys::PKTKIT_LG_ENODEV;
    };
    let dev = match opener.open(addr) {
        Ok(d) => d,
        Err(e) => {
            log::error!("{}: cannot open PCI {addr}: {e}", st.name);
            return sys::PKTKIT_LG_ENODEV;
        }
    };
    let rd = |off: u16, w: u8| dev.config_read(off, w).unwrap_or(0);
    // Enable I/O and memory decoding and bus mastering (PCI command
    // register, offset 4), as a BSD bus layer does before attach.
    let cmd = rd(4, 2);
    if dev.config_write(4, 2, cmd | 0x7).is_err() {
        st.counters.io_errors += 1;
    }
    if !info.is_null() {
        let i = sys::pktkit_lg_pci_info {
            pi_vendor: rd(0, 2) as u16,
            pi_device: rd(2, 2) as u16,
            pi_subvendor: rd(0x2c, 2) as u16,
            pi_subdevice: rd(0x2e, 2) as u16,
            pi_revision: rd(8, 1) as u8,
            pi_irq_pin: rd(0x3d, 1) as u8,
            pi_reserved: 0,
        };
        // SAFETY: info points at the driver's pktkit_lg_pci_info.
        unsafe { info.write(i) };
    }
    st.pci_names.push(addr.to_string());
    st.pcis.push(dev);
    (st.pcis.len() - 1) as libc::c_int
}

fn pci_of(st: &mut State, pci: libc::c_int) -> Option<&mut Box<dyn PciDevice>> {
    usize::try_from(pci).ok().and_then(|i| st.pcis.get_mut(i))
}

unsafe extern "C" fn svc_pci_cfg_read(
    stack: Stack,
    pci: libc::c_int,
    off: u32,
    width: u32,
    val: *mut u32,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    let r = match pci_of(st, pci) {
        Some(d) => d.config_read(off as u16, width as u8),
        None => return EINVAL,
    };
    match r {
        Ok(v) if !val.is_null() => {
            // SAFETY: val points at the driver's u32.
            unsafe { val.write(v) };
            0
        }
        Ok(_) => EINVAL,
        Err(_) => {
            st.counters.io_errors += 1;
            sys::PKTKIT_LG_EIO
        }
    }
}

unsafe extern "C" fn svc_pci_cfg_write(
    stack: Stack,
    pci: libc::c_int,
    off: u32,
    width: u32,
    val: u32,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    let r = match pci_of(st, pci) {
        Some(d) => d.config_write(off as u16, width as u8, val),
        None => return EINVAL,
    };
    if r.is_err() {
        st.counters.io_errors += 1;
        return sys::PKTKIT_LG_EIO;
    }
    0
}

unsafe extern "C" fn svc_mmio_map(
    stack: Stack,
    pci: libc::c_int,
    bar: u32,
    va: *mut *mut libc::c_void,
    len: *mut u64,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    let Some(d) = pci_of(st, pci) else {
        return EINVAL;
    };
    match d.map_bar(bar as u8) {
        Ok((p, n)) => {
            // SAFETY: va and len point at the driver's out variables (NULL
            // is tolerated).
            unsafe {
                if !va.is_null() {
                    va.write(p.cast());
                }
                if !len.is_null() {
                    len.write(n as u64);
                }
            }
            0
        }
        Err(e) => {
            log::error!("{}: map BAR {bar}: {e}", st.name);
            sys::PKTKIT_LG_EIO
        }
    }
}

fn width_ok(width: u32) -> bool {
    matches!(width, 1 | 2 | 4)
}

fn all_ones(width: u32) -> u32 {
    match width {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

unsafe extern "C" fn svc_io_in(
    stack: Stack,
    pci: libc::c_int,
    bar: u32,
    off: u32,
    width: u32,
) -> u32 {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return all_ones(width);
    };
    let r = match pci_of(st, pci) {
        Some(d) if width_ok(width) => d.io_read(bar as u8, off as u64, width as u8).ok(),
        _ => None,
    };
    r.unwrap_or_else(|| {
        st.counters.io_errors += 1;
        all_ones(width)
    })
}

unsafe extern "C" fn svc_io_out(
    stack: Stack,
    pci: libc::c_int,
    bar: u32,
    off: u32,
    width: u32,
    val: u32,
) {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return;
    };
    let ok = match pci_of(st, pci) {
        Some(d) if width_ok(width) => d.io_write(bar as u8, off as u64, width as u8, val).is_ok(),
        _ => false,
    };
    if !ok {
        st.counters.io_errors += 1;
    }
}

/// The repeated port I/O services: `each(device, k)` does access `k` of
/// `count` and says whether it worked; a bad width, a NULL buffer or an
/// unknown device counts one I/O error, each failed access one more.
fn io_rep(
    st: &mut State,
    pci: libc::c_int,
    width: u32,
    buf_ok: bool,
    count: usize,
    mut each: impl FnMut(&mut dyn PciDevice, usize) -> bool,
) {
    let failed = match pci_of(st, pci) {
        Some(d) if buf_ok && width_ok(width) => {
            (0..count).filter(|&k| !each(d.as_mut(), k)).count() as u64
        }
        _ => 1,
    };
    st.counters.io_errors += failed;
}

unsafe extern "C" fn svc_io_in_rep(
    stack: Stack,
    pci: libc::c_int,
    bar: u32,
    off: u32,
    width: u32,
    buf: *mut libc::c_void,
    count: usize,
) {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return;
    };
    let p = buf.cast::<u8>();
    io_rep(st, pci, width, !buf.is_null(), count, |d, k| {
        let (v, ok) = match d.io_read(bar as u8, off as u64, width as u8) {
            Ok(v) => (v, true),
            Err(_) => (all_ones(width), false),
        };
        // SAFETY: the driver's buffer holds count items of width bytes
        // (not NULL: io_rep checked); unaligned writes since the buffer
        // need not be aligned.
        unsafe {
            let at = p.add(k * width as usize);
            match width {
                1 => at.write(v as u8),
                2 => at.cast::<u16>().write_unaligned(v as u16),
                _ => at.cast::<u32>().write_unaligned(v),
            }
        }
        ok
    });
}

unsafe extern "C" fn svc_io_out_rep(
    stack: Stack,
    pci: libc::c_int,
    bar: u32,
    off: u32,
    width: u32,
    buf: *const libc::c_void,
    count: usize,
) {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return;
    };
    let p = buf.cast::<u8>();
    io_rep(st, pci, width, !buf.is_null(), count, |d, k| {
        // SAFETY: the driver's buffer holds count items of width bytes
        // (not NULL: io_rep checked).
        let v = unsafe {
            let at = p.add(k * width as usize);
            match width {
                1 => at.read() as u32,
                2 => at.cast::<u16>().read_unaligned() as u32,
                _ => at.cast::<u32>().read_unaligned(),
            }
        };
        d.io_write(bar as u8, off as u64, width as u8, v).is_ok()
    });
}

unsafe extern "C" fn svc_dma_alloc(
    stack: Stack,
    pci: libc::c_int,
    len: usize,
    va: *mut *mut libc::c_void,
    busaddr: *mut u64,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    if va.is_null() || busaddr.is_null() || len == 0 {
        return EINVAL;
    }
    let r = match pci_of(st, pci) {
        Some(d) => d.dma_alloc(len),
        None => return EINVAL,
    };
    match r {
        Ok(mem) => {
            // SAFETY: mem maps mem.len() >= len writable bytes; va/busaddr
            // are the driver's out variables.
            unsafe {
                ptr::write_bytes(mem.as_ptr(), 0, mem.len());
                va.write(mem.as_ptr().cast());
                busaddr.write(mem.iova());
            }
            st.dmas.push(mem);
            0
        }
        Err(e) => {
            log::error!("{}: DMA allocation of {len} bytes: {e}", st.name);
            sys::PKTKIT_LG_ENOMEM
        }
    }
}

unsafe extern "C" fn svc_dma_free(stack: Stack, va: *mut libc::c_void) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        st.dmas.retain(|m| m.as_ptr().cast() != va);
    }
}

unsafe extern "C" fn svc_intr_attach(
    stack: Stack,
    pci: libc::c_int,
    handler: Option<unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int>,
    arg: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    let Some(handler) = handler else {
        return EINVAL;
    };
    let pci_index = match usize::try_from(pci) {
        Ok(i) if i < st.pcis.len() => i,
        _ => return EINVAL,
    };
    let fds = match st.pcis[pci_index].enable_irqs(IrqKind::Intx, 1) {
        Ok(f) => f,
        Err(e) => {
            log::error!("{}: enable INTx: {e}", st.name);
            return sys::PKTKIT_LG_EIO;
        }
    };
    let Some(&fd) = fds.first() else {
        return sys::PKTKIT_LG_EIO;
    };
    let idx = st.intrs.len();
    if let Err(e) = epoll_add(st.epoll.as_raw_fd(), fd, TAG_INTR | idx as u64) {
        log::error!("{}: watch the interrupt fd: {e}", st.name);
        return sys::PKTKIT_LG_EIO;
    }
    st.intrs.push(Intr { fd, handler, arg });
    0
}

unsafe extern "C" fn svc_intr_unmask(stack: Stack, pci: libc::c_int) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    let ok = match pci_of(st, pci) {
        Some(d) => d.unmask_intx().is_ok(),
        None => return EINVAL,
    };
    if ok {
        0
    } else {
        st.counters.io_errors += 1;
        sys::PKTKIT_LG_EIO
    }
}

unsafe extern "C" fn svc_timer_create(
    stack: Stack,
    callback: Option<unsafe extern "C" fn(*mut libc::c_void)>,
    arg: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    let Some(callback) = callback else {
        return EINVAL;
    };
    let slot = match st.timers.iter().position(Option::is_none) {
        Some(i) => i,
        None if st.timers.len() < MAX_TIMERS => {
            st.timers.push(None);
            st.timers.len() - 1
        }
        None => return sys::PKTKIT_LG_ENOMEM,
    };
    // SAFETY: timerfd_create takes no pointers; the result is checked.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return sys::PKTKIT_LG_ENOMEM;
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if epoll_add(
        st.epoll.as_raw_fd(),
        fd.as_raw_fd(),
        TAG_TIMER | slot as u64,
    )
    .is_err()
    {
        return sys::PKTKIT_LG_EIO;
    }
    st.timers[slot] = Some(Timer { fd, callback, arg });
    slot as libc::c_int
}

unsafe extern "C" fn svc_timer_arm(
    stack: Stack,
    timer: libc::c_int,
    ms: u32,
    periodic: u32,
) -> libc::c_int {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return EINVAL;
    };
    let Some(Some(t)) = usize::try_from(timer).ok().and_then(|i| st.timers.get(i)) else {
        return EINVAL;
    };
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let spec = libc::itimerspec {
        it_interval: if periodic != 0 { ts } else { zero },
        it_value: ts,
    };
    // SAFETY: spec is a valid itimerspec; the old value is not asked for.
    if unsafe { libc::timerfd_settime(t.fd.as_raw_fd(), 0, &spec, ptr::null_mut()) } < 0 {
        return sys::PKTKIT_LG_EIO;
    }
    0
}

unsafe extern "C" fn svc_timer_destroy(stack: Stack, timer: libc::c_int) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        if let Some(t) = usize::try_from(timer)
            .ok()
            .and_then(|i| st.timers.get_mut(i))
        {
            // Closing the fd removes it from the epoll set.
            *t = None;
        }
    }
}

unsafe extern "C" fn svc_delay_us(stack: Stack, us: u32) {
    // SAFETY: called by the driver; see current().
    if unsafe { current(stack) }.is_some() {
        std::thread::sleep(std::time::Duration::from_micros(us.min(100_000) as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Pins the 1.0 layout as drivers compiled against it see it.
    #[test]
    fn abi_v1_layout_is_pinned() {
        assert_eq!(size_of::<sys::pktkit_lg_frag>(), 24);
        assert_eq!(size_of::<sys::pktkit_lg_buf>(), 24);
        assert_eq!(size_of::<sys::pktkit_lg_packet>(), 56);
        assert_eq!(offset_of!(sys::pktkit_lg_packet, lp_bufs), 8);
        assert_eq!(offset_of!(sys::pktkit_lg_packet, lp_done), 16);
        assert_eq!(offset_of!(sys::pktkit_lg_packet, lp_owner), 40);
        assert_eq!(offset_of!(sys::pktkit_lg_entry, le_init), 40);
        assert_eq!(offset_of!(sys::pktkit_lg_entry, le_shutdown), 48);
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_pkt_alloc), 8);
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_delay_us), 184);
        assert_eq!(offset_of!(sys::pktkit_lg_funcs, lf_poll), 32);
        // 1.0's services table and function table end here (1.1 appends).
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_pkt_alloc_burst), 192);
        assert_eq!(offset_of!(sys::pktkit_lg_funcs, lf_transmit_burst), 40);
    }

    /// Pins what 1.1 appended: after every 1.0 member, so a 1.0 driver's
    /// view is unchanged.
    #[test]
    fn abi_v1_1_appends_only() {
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_pkt_alloc_burst), 192);
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_tx_done_burst), 216);
        assert_eq!(offset_of!(sys::pktkit_lg_funcs, lf_transmit_burst), 40);
        // 1.1's tables end here: 1.2 appends lf_reset, 1.3 the descriptors.
        assert_eq!(offset_of!(sys::pktkit_lg_funcs, lf_reset), 48);
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_rx_desc_alloc), 224);
        assert!(SERVICES.ls_abi_minor >= 1);
    }

    /// Pins what 1.3 appended (after 1.2's `lf_reset`; 1.2 added no
    /// services), and its descriptor: the final layout.
    #[test]
    fn abi_v1_3_appends_only() {
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_rx_desc_alloc), 224);
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_rx_desc), 232);
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_rx_desc_free), 240);
        assert_eq!(offset_of!(sys::pktkit_lg_services, ls_tx_desc_done), 248);
        assert_eq!(size_of::<sys::pktkit_lg_services>(), 256);
        assert_eq!(offset_of!(sys::pktkit_lg_funcs, lf_reset), 48);
        assert_eq!(offset_of!(sys::pktkit_lg_funcs, lf_transmit_desc), 56);
        assert_eq!(size_of::<sys::pktkit_lg_funcs>(), 64);
        assert_eq!(size_of::<sys::pktkit_lg_desc>(), 32);
        assert_eq!(offset_of!(sys::pktkit_lg_desc, ld_ptr), 0);
        assert_eq!(offset_of!(sys::pktkit_lg_desc, ld_busaddr), 8);
        assert_eq!(offset_of!(sys::pktkit_lg_desc, ld_len), 16);
        assert_eq!(offset_of!(sys::pktkit_lg_desc, ld_flags), 20);
        assert_eq!(offset_of!(sys::pktkit_lg_desc, ld_cookie), 24);
        assert_eq!(SERVICES.ls_size, 256);
        assert_eq!(SERVICES.ls_abi_minor, 3);
        assert_eq!(sys::PKTKIT_LG_ABI_MINOR, 3);
    }

    /// The packet path touches a slot's first two cache lines only.
    #[test]
    fn slot_layout_is_pinned() {
        assert_eq!(offset_of!(Slot, pkt), 0);
        assert_eq!(offset_of!(Slot, mbuf), 56);
        assert_eq!(offset_of!(Slot, state), 64);
        assert_eq!(offset_of!(Slot, buf), 72);
        assert_eq!(offset_of!(Slot, frags), 96);
        assert_eq!(size_of::<Slot>(), 512);
    }
}
