//! ABI 1.3's flat descriptors: a frame in one pool buffer as one
//! `struct pktkit_lg_desc` (pointer, bus address, length, flags, cookie) in
//! an array of the caller's, instead of a slot's packet, buffer and
//! fragment lists.
//!
//! The cookie is the buffer's index in the device's pool. What the device
//! holds is one byte per pool buffer ([`Lent`]): free, lent for receive or
//! lent for transmit. So the per-packet work is the descriptor's stores
//! and one byte, and checking a cookie a driver hands back is one compare
//! (in the pool) and one load (lent to this device, in the right
//! direction): a driver can still not hand back anything that is not the
//! stack's, or complete a transmit twice, or receive into a transmit
//! buffer. Receive reads only the cookie, the length and the flags: the
//! frame is where the shim said, so nothing else can have changed.
//!
//! Frames in several buffers (chains) and buffers of another pool are not
//! described here; the transmit path sends those as 1.0/1.1 packets.

use std::ptr;

use pktkit_native::mbuf::DATAROOM;
use pktkit_native::pool::PoolSpan;
use pktkit_native::sys::mbuf;

use super::{current, driver_array, driver_room, set_received, settled, Stack, State, BURST};
use crate::sys;

/// What a pool buffer is to this device.
const FREE: u8 = 0;
/// Lent to the driver for receive (`ls_rx_desc_alloc`).
const RX: u8 = 1;
/// Lent to the driver for transmit (`lf_transmit_desc`).
const TX: u8 = 2;

/// Which pool buffers this device has lent through descriptors, one byte
/// per buffer of its pool, indexed by the cookie.
pub struct Lent {
    span: PoolSpan,
    state: Box<[u8]>,
}

impl Lent {
    pub(super) fn new(span: PoolSpan) -> Lent {
        Lent {
            span,
            state: vec![FREE; span.buffers()].into_boxed_slice(),
        }
    }

    /// The table borrowed for one pass: its slice and span are then plain
    /// values the compiler keeps in registers, not fields it reloads after
    /// every store into a buffer (which it cannot tell apart from them).
    #[inline(always)]
    fn view(&mut self) -> LentView<'_> {
        LentView {
            span: self.span,
            state: &mut self.state,
        }
    }
}

/// [`Lent`] borrowed for one pass over a burst.
struct LentView<'a> {
    span: PoolSpan,
    state: &'a mut [u8],
}

impl LentView<'_> {
    /// Takes the buffer a cookie names back from `want` to free: the
    /// buffer, or `None` if the cookie is not a buffer lent that way.
    #[inline(always)]
    fn take(&mut self, cookie: u64, want: u8) -> Option<*mut mbuf> {
        let i = usize::try_from(cookie).ok()?;
        let s = self.state.get_mut(i)?;
        if *s != want {
            return None;
        }
        *s = FREE;
        // One state per buffer of the span: i is a buffer's index.
        Some(self.span.buffer_unchecked(i))
    }

    /// Marks buffer `m` of the pool lent as `how`: its index, or `None`
    /// for a buffer of another pool.
    #[inline(always)]
    fn lend(&mut self, m: *mut mbuf, how: u8) -> Option<usize> {
        let i = self.span.index_of(m)?;
        *self.state.get_mut(i)? = how;
        Some(i)
    }
}

/// A descriptor for a single-buffer frame of ours: `m`'s data, with `len`.
///
/// # Safety
/// `m` must be a live pool buffer the caller owns.
#[inline(always)]
unsafe fn describe(m: *mut mbuf, len: u32, cookie: usize) -> sys::pktkit_lg_desc {
    // SAFETY: per the contract; only the first line of the header is read.
    let (data, paddr) = unsafe { ((*m).m_hdr.mh_data, (*m).m_hdr.mh_paddr) };
    // A pool buffer's storage (ext_buf, at IOVA mh_paddr) follows its
    // header: computed, not loaded from the header's second line.
    let ext = m as u64 + std::mem::size_of::<mbuf>() as u64;
    let iova = paddr + (data as u64 - ext);
    sys::pktkit_lg_desc {
        ld_ptr: data.cast(),
        ld_busaddr: iova,
        ld_len: len,
        ld_flags: 0,
        ld_cookie: cookie as u64,
    }
}

/// What a pass of received descriptors counted.
#[derive(Default)]
struct RxTally {
    frames: u64,
    bytes: u64,
    bad: u64,
}

/// One received descriptor: its buffer with the frame's length and flags
/// set, now the caller's, or `None` (counted) for a cookie not lent for
/// receive or a bad length (the buffer then goes back to the pool).
#[inline(always)]
fn rx_take(
    lent: &mut LentView<'_>,
    d: &sys::pktkit_lg_desc,
    tally: &mut RxTally,
) -> Option<*mut mbuf> {
    let Some(m) = lent.take(d.ld_cookie, RX) else {
        tally.bad += 1;
        return None;
    };
    let len = d.ld_len;
    // A fresh pool buffer has DATAROOM bytes from its data on.
    if len == 0 || len as usize > DATAROOM {
        tally.bad += 1;
        // SAFETY: taken back from the driver just now: ours, unreferenced.
        unsafe { refuse(m) };
        return None;
    }
    // SAFETY: m was lent for receive and is taken back: ours, a fresh
    // unchained buffer with DATAROOM bytes of room.
    unsafe { set_received(m, len, d.ld_flags) };
    tally.frames += 1;
    tally.bytes += u64::from(len);
    Some(m)
}

/// A buffer taken back with a bad length: back to the pool (the rare path,
/// kept out of the receive loop's registers).
///
/// # Safety
/// `m` must be a live pool buffer the caller owns and nobody references.
#[cold]
#[inline(never)]
unsafe fn refuse(m: *mut mbuf) {
    // SAFETY: per the contract.
    unsafe { pktkit_native::mbuf::free_raw_bulk(&[m]) };
}

impl State {
    /// `ls_rx_desc_alloc`: up to `out.len()` empty receive buffers of
    /// `size` bytes of room, taken from the pool in one bulk call.
    fn rx_desc_alloc(&mut self, size: u32, out: &mut [sys::pktkit_lg_desc]) -> usize {
        let want = out.len().min(BURST);
        if size == 0 || size as usize > DATAROOM {
            self.counters.pkt_alloc_failures += 1;
            return 0;
        }
        // Described in the pool's own pass over the buffers it hands out.
        let mut lent = self.desc.view();
        let mut k = 0;
        let got = self
            .pool
            .alloc_raw_bulk_each(self.owner, &mut self.burst[..want], |_, m| {
                // The pool's own buffers are always in its span.
                if let Some(i) = lent.lend(m, RX) {
                    // SAFETY: m is a fresh buffer of the pool, ours.
                    out[k] = unsafe { describe(m, size, i) };
                    k += 1;
                }
            });
        // A pool's buffers all lie in its span: each one was lent.
        debug_assert_eq!(k, got);
        if k < out.len() {
            self.counters.pkt_alloc_failures += 1;
        }
        k
    }

    /// `ls_rx_desc`: each frame's buffer gets the length and flags and goes
    /// to the stack: straight into the batch `rx_burst` is filling while
    /// there is room and nothing is queued before it, else through the
    /// queue.
    fn rx_desc(&mut self, ds: &[sys::pktkit_lg_desc]) {
        self.counters.rx_desc_upcalls += 1;
        let mut tally = RxTally::default();
        let mut rest = ds;
        if !self.rx_target.is_null() && self.ring_len == 0 {
            // SAFETY: rx_target is set only for the length of an lf_poll
            // call, by rx_burst, which holds the batch borrowed mutably.
            let batch = unsafe { &mut *self.rx_target };
            let mut lent = self.desc.view();
            let mut n = 0;
            // SAFETY: the closure writes only buffers taken back from the
            // driver (ours, nobody else's) into the leading slots and
            // returns how many; ownership moves into the batch.
            unsafe {
                batch.fill_raw(|slots| {
                    n = ds.len().min(slots.len());
                    let mut k = 0;
                    for d in &ds[..n] {
                        if let Some(m) = rx_take(&mut lent, d, &mut tally) {
                            // k counts the frames taken of the first n
                            // descriptors, and n <= slots.len().
                            *slots.get_unchecked_mut(k) = m;
                            k += 1;
                        }
                    }
                    k
                })
            };
            // A descriptor refused above left its slot unused: the rest
            // go through deliver_raw, which uses the room first.
            rest = &ds[n..];
        }
        for d in rest {
            if let Some(m) = rx_take(&mut self.desc.view(), d, &mut tally) {
                self.deliver_raw(m);
            }
        }
        self.counters.rx_zero_copy += tally.frames;
        self.counters.rx_bytes += tally.bytes;
        self.counters.bad_packets += tally.bad;
    }

    /// `ls_rx_desc_free`: unused receive buffers back to the pool.
    fn rx_desc_free(&mut self, ds: &[sys::pktkit_lg_desc]) {
        for d in ds {
            match self.desc.view().take(d.ld_cookie, RX) {
                Some(m) => self.free_later(m),
                None => self.counters.bad_packets += 1,
            }
        }
    }

    /// `ls_tx_desc_done`: completes transmits lent by `lf_transmit_desc`
    /// (their buffers back to the pool, batched). A cookie not lent for
    /// transmit (foreign, or completed already) is refused and counted.
    fn tx_desc_done(&mut self, ds: &[sys::pktkit_lg_desc], status: i32) {
        // Into the pending frees with the length kept in a register (not
        // through free_later, whose stores to the length the compiler
        // cannot keep apart from the buffers').
        let (mut done, mut bad) = (0u32, 0u64);
        let mut lent = self.desc.view();
        let pending = &mut self.pending;
        let mut k = self.pending_len;
        for d in ds {
            let Some(m) = lent.take(d.ld_cookie, TX) else {
                bad += 1;
                continue;
            };
            if k == pending.len() {
                // SAFETY: pending holds buffers this device no longer uses.
                unsafe { pktkit_native::mbuf::free_raw_bulk(&pending[..k]) };
                k = 0;
            }
            pending[k] = m;
            k += 1;
            done += 1;
        }
        self.pending_len = k;
        self.counters.bad_packets += bad;
        self.tx_lent -= done;
        self.count_completed(u64::from(done), status);
    }

    /// Describes the frames at the front of `raw` for `lf_transmit_desc`,
    /// as many as `out` holds, and marks them lent. Stops at the first
    /// frame a descriptor cannot carry (a chain, a buffer of another pool):
    /// returns how many were described.
    pub fn tx_desc_prepare(&mut self, raw: &[*mut mbuf], out: &mut [sys::pktkit_lg_desc]) -> usize {
        let mut n = 0;
        let mut bytes = 0u64;
        let mut lent = self.desc.view();
        for (d, &m) in out.iter_mut().zip(raw) {
            // SAFETY: m is a buffer of the caller's batch, which it owns.
            let (next, len) = unsafe { ((*m).m_hdr.mh_next, (*m).m_hdr.mh_len.max(0) as u32) };
            if !next.is_null() {
                break;
            }
            let Some(i) = lent.lend(m, TX) else {
                break;
            };
            // SAFETY: as above.
            *d = unsafe { describe(m, len, i) };
            bytes += u64::from(len);
            n += 1;
        }
        self.tx_lent += n as u32;
        self.counters.tx_zero_copy += n as u64;
        self.counters.tx_bytes += bytes;
        n
    }

    /// After `lf_transmit_desc` returned `rc` for the frames `raw` (as
    /// described by [`State::tx_desc_prepare`]): how many the driver took,
    /// a prefix. The rest are no longer lent and stay the caller's. A
    /// failing call (negative, not EBUSY) takes and frees them all, counted
    /// in `tx_errors`; a driver that completed a frame beyond the count it
    /// returned took that far (`bad_packets`): the rule of `settled`, as for
    /// [`State::tx_settle_burst`].
    pub fn tx_desc_settle(&mut self, raw: &[*mut mbuf], rc: i32) -> usize {
        self.counters.tx_desc_calls += 1;
        let lent_tx = |st: &State, m: *mut mbuf| {
            st.desc
                .span
                .index_of(m)
                .is_some_and(|i| st.desc.state[i] == TX)
        };
        let Some((taken, bad)) = settled(rc, raw.len(), |j| !lent_tx(self, raw[j])) else {
            for &m in raw {
                if lent_tx(self, m) {
                    self.tx_desc_untake(m);
                    self.free_later(m);
                    self.counters.tx_errors += 1;
                }
            }
            return raw.len();
        };
        self.counters.bad_packets += u64::from(bad);
        for &m in &raw[taken..] {
            self.tx_desc_untake(m);
        }
        taken
    }

    /// A described transmit not taken: no longer lent, not counted.
    fn tx_desc_untake(&mut self, m: *mut mbuf) {
        if let Some(i) = self.desc.span.index_of(m) {
            self.desc.state[i] = FREE;
        }
        self.tx_lent -= 1;
        // SAFETY: m is the caller's buffer; only its length is read.
        let len = unsafe { (*m).m_hdr.mh_len.max(0) } as u64;
        self.counters.tx_zero_copy = self.counters.tx_zero_copy.saturating_sub(1);
        self.counters.tx_bytes = self.counters.tx_bytes.saturating_sub(len);
    }

    /// At stop: takes back every buffer still lent through descriptors.
    /// Returns how many.
    pub(super) fn reclaim_desc(&mut self) -> u64 {
        let mut kept = 0;
        for i in 0..self.desc.state.len() {
            let s = std::mem::replace(&mut self.desc.state[i], FREE);
            if s == FREE {
                continue;
            }
            if s == TX {
                self.tx_lent -= 1;
            }
            if let Some(m) = self.desc.span.buffer(i) {
                self.free_later(m);
            }
            kept += 1;
        }
        kept
    }
}

pub(super) unsafe extern "C" fn svc_rx_desc_alloc(
    stack: Stack,
    size: u32,
    d: *mut sys::pktkit_lg_desc,
    n: u32,
) -> u32 {
    // SAFETY: called by the driver; see current().
    let Some(st) = (unsafe { current(stack) }) else {
        return 0;
    };
    // SAFETY: the driver's array has room for n descriptors.
    let Some(out) = (unsafe { driver_room(d, n) }) else {
        return 0;
    };
    st.rx_desc_alloc(size, out) as u32
}

pub(super) unsafe extern "C" fn svc_rx_desc(stack: Stack, d: *const sys::pktkit_lg_desc, n: u32) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        // SAFETY: the driver's array of n descriptors.
        st.rx_desc(unsafe { driver_array(d, n) });
    }
}

pub(super) unsafe extern "C" fn svc_rx_desc_free(
    stack: Stack,
    d: *const sys::pktkit_lg_desc,
    n: u32,
) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        // SAFETY: the driver's array of n descriptors.
        st.rx_desc_free(unsafe { driver_array(d, n) });
    }
}

pub(super) unsafe extern "C" fn svc_tx_desc_done(
    stack: Stack,
    d: *const sys::pktkit_lg_desc,
    n: u32,
    status: libc::c_int,
) {
    // SAFETY: called by the driver; see current().
    if let Some(st) = unsafe { current(stack) } {
        // SAFETY: the driver's array of n descriptors.
        st.tx_desc_done(unsafe { driver_array(d, n) }, status);
    }
}

/// An all-zero descriptor, to make arrays of.
pub const EMPTY: sys::pktkit_lg_desc = sys::pktkit_lg_desc {
    ld_ptr: ptr::null_mut(),
    ld_busaddr: 0,
    ld_len: 0,
    ld_flags: 0,
    ld_cookie: 0,
};

#[cfg(test)]
mod tests {
    use super::super::{CallGuard, StackCtx, SERVICES};
    use super::*;
    use pktkit_native::pool::HugePages;
    use pktkit_native::sys::M_BCAST;
    use pktkit_native::{PacketBatch, Pool, PoolConfig};
    use std::collections::BTreeMap;

    fn device(name: &str) -> (Pool, pktkit_native::OwnerId, Box<StackCtx>) {
        device_of(name, 64)
    }

    fn device_of(name: &str, buffers: usize) -> (Pool, pktkit_native::OwnerId, Box<StackCtx>) {
        let pool = Pool::new(&PoolConfig {
            name: name.into(),
            buffers,
            hugepages: HugePages::Never,
        })
        .expect("pool");
        let owner = pool.register_owner("en0").expect("owner");
        let ctx =
            StackCtx::new("en0", pool.clone(), owner, 16, &BTreeMap::new(), None).expect("ctx");
        (pool, owner, ctx)
    }

    fn alloc(ctx: &StackCtx, size: u32, d: &mut [sys::pktkit_lg_desc]) -> usize {
        let _g = CallGuard::enter(ctx);
        let f = SERVICES.ls_rx_desc_alloc.expect("1.3");
        // SAFETY: a service call from inside a (pretend) driver call, with
        // an array of d.len() descriptors.
        unsafe { f(ctx.as_stack(), size, d.as_mut_ptr(), d.len() as u32) as usize }
    }

    fn rx(ctx: &StackCtx, d: &[sys::pktkit_lg_desc]) {
        let _g = CallGuard::enter(ctx);
        // SAFETY: as above.
        unsafe { SERVICES.ls_rx_desc.expect("1.3")(ctx.as_stack(), d.as_ptr(), d.len() as u32) };
    }

    /// `ls_rx_desc` as from inside an `lf_poll` filling `b`.
    fn rx_in_poll(ctx: &StackCtx, b: &mut PacketBatch, d: &[sys::pktkit_lg_desc]) {
        ctx.with(|st| st.set_rx_target(b));
        rx(ctx, d);
        ctx.with(|st| st.set_rx_target(std::ptr::null_mut()));
    }

    fn done(ctx: &StackCtx, d: &[sys::pktkit_lg_desc]) {
        let _g = CallGuard::enter(ctx);
        // SAFETY: as above.
        unsafe {
            SERVICES.ls_tx_desc_done.expect("1.3")(ctx.as_stack(), d.as_ptr(), d.len() as u32, 0)
        };
    }

    fn bad(ctx: &StackCtx) -> u64 {
        ctx.with(|st| st.counters.bad_packets)
    }

    /// Receive buffers come described at their data, and a frame handed up
    /// is that buffer with the driver's length and flags: no copy.
    #[test]
    fn a_received_descriptor_is_its_buffer() {
        let (pool, owner, ctx) = device("desc-rx");
        let mut d = [EMPTY; 4];
        assert_eq!(alloc(&ctx, 2048, &mut d), 4);
        assert_eq!(pool.held_by(owner), 4);
        for x in &d {
            assert_eq!(x.ld_len, 2048);
            assert_eq!(x.ld_busaddr, x.ld_ptr as u64, "IOVA = VA in this pool");
        }
        // SAFETY: the driver writes its frame into the room it was given.
        unsafe { std::ptr::write_bytes(d[1].ld_ptr.cast::<u8>(), 0xab, 60) };
        for x in d.iter_mut() {
            x.ld_len = 60;
        }
        d[1].ld_flags = sys::PKTKIT_LG_PKT_BCAST;
        ctx.with(|st| {
            let mut b = PacketBatch::new();
            st.drain_rx(&mut b);
            assert!(b.is_empty());
        });
        rx(&ctx, &d);
        let mut b = PacketBatch::new();
        ctx.with(|st| st.drain_rx(&mut b));
        assert_eq!(b.len(), 4);
        let m = b.iter().nth(1).expect("frame");
        assert_eq!(m.data(), &[0xab; 60][..]);
        assert_ne!(m.flags() & M_BCAST, 0);
        assert_eq!(ctx.with(|st| st.counters.rx_zero_copy), 4);
        assert_eq!(bad(&ctx), 0);
        b.free_all();
        assert_eq!(pool.held_by(owner), 0);
    }

    /// What a driver cannot do with cookies: hand up one twice, one never
    /// lent, one past the pool, a receive buffer as a completed transmit,
    /// or a bad length. Each is refused and counted; the pool gets every
    /// buffer back exactly once.
    #[test]
    fn forged_and_repeated_cookies_are_refused() {
        let (pool, owner, ctx) = device("desc-bad");
        let mut d = [EMPTY; 3];
        assert_eq!(alloc(&ctx, 128, &mut d), 3);
        // A receive buffer is not a transmit to complete.
        done(&ctx, &d[..1]);
        assert_eq!(bad(&ctx), 1);
        let mut forged = d[0];
        // In the pool, not lent.
        forged.ld_cookie = (0..64)
            .find(|&i| d.iter().all(|x| x.ld_cookie != i))
            .expect("a buffer not lent");
        let mut past = d[0];
        past.ld_cookie = 64;
        let mut huge = d[0];
        huge.ld_cookie = u64::MAX;
        rx(&ctx, &[forged, past, huge]);
        assert_eq!(bad(&ctx), 4);
        // A length beyond the room: refused, its buffer freed.
        d[2].ld_len = 4000;
        rx(&ctx, &d[..1]);
        rx(&ctx, &d[..1]);
        rx(&ctx, &d[2..]);
        assert_eq!(bad(&ctx), 6);
        let mut b = PacketBatch::new();
        ctx.with(|st| {
            st.drain_rx(&mut b);
            st.flush_frees();
        });
        assert_eq!(b.len(), 1, "only the one good frame, once");
        b.free_all();
        // The last one is still lent: reclaimed at stop.
        assert_eq!(ctx.with(|st| st.reclaim_all()), 1);
        assert_eq!(pool.held_by(owner), 0);
        assert_eq!(pool.available(), 64);
    }

    /// Inside a poll, frames go straight into the batch being filled; a
    /// refused descriptor among them leaves its slot unused, and the frames
    /// after it still reach the batch (through the queue's path) while it
    /// has room, the rest wait in the queue: none is lost or reordered.
    #[test]
    fn a_refused_descriptor_inside_a_poll_loses_no_frame() {
        let (pool, owner, ctx) = device("desc-poll");
        let mut d = [EMPTY; 5];
        assert_eq!(alloc(&ctx, 128, &mut d), 5);
        for (j, x) in d.iter_mut().enumerate() {
            x.ld_len = 60 + j as u32;
        }
        let mut forged = d[0];
        forged.ld_cookie = u64::MAX;
        let up = [d[0], forged, d[1], d[2], d[3], d[4]];
        let mut b = PacketBatch::with_limit(4);
        rx_in_poll(&ctx, &mut b, &up);
        assert_eq!(bad(&ctx), 1);
        let lens: Vec<usize> = b.iter().map(|m| m.pkt_len()).collect();
        assert_eq!(lens, [60, 61, 62, 63], "in order, the forged one skipped");
        b.free_all();
        ctx.with(|st| st.drain_rx(&mut b));
        let lens: Vec<usize> = b.iter().map(|m| m.pkt_len()).collect();
        assert_eq!(lens, [64], "the one beyond the room waited in the queue");
        b.free_all();
        ctx.with(|st| st.flush_frees());
        assert_eq!(pool.held_by(owner), 0);
    }

    /// A bad length among the descriptors of a poll: that buffer goes back
    /// to the pool at once, the frames around it reach the batch in order.
    #[test]
    fn a_bad_length_inside_a_poll_frees_its_buffer() {
        let (pool, owner, ctx) = device("desc-badlen");
        let mut d = [EMPTY; 3];
        assert_eq!(alloc(&ctx, 128, &mut d), 3);
        d[0].ld_len = 60;
        d[1].ld_len = DATAROOM as u32 + 1;
        d[2].ld_len = 62;
        let mut b = PacketBatch::new();
        rx_in_poll(&ctx, &mut b, &d);
        assert_eq!(bad(&ctx), 1);
        let lens: Vec<usize> = b.iter().map(|m| m.pkt_len()).collect();
        assert_eq!(lens, [60, 62]);
        assert_eq!(pool.held_by(owner), 2, "the refused one is back");
        b.free_all();
        assert_eq!(pool.held_by(owner), 0);
        assert_eq!(ctx.with(|st| st.reclaim_all()), 0, "nothing still lent");
    }

    /// More completions in one call than the pending frees hold, with some
    /// already pending: every buffer goes back once, the counts agree.
    #[test]
    fn many_completions_in_one_call_free_every_buffer_once() {
        let (pool, owner, ctx) = device_of("desc-many", 256);
        // A few frees pending first (unused receive buffers given back).
        let mut r = [EMPTY; 5];
        assert_eq!(alloc(&ctx, 128, &mut r), 5);
        ctx.with(|st| st.rx_desc_free(&r));
        assert_eq!(ctx.with(|st| st.pending_len), 5);
        // 2 x 64 transmits: the pending frees fill and flush twice in the
        // completion call.
        let mut raw = [std::ptr::null_mut(); 128];
        assert_eq!(pool.alloc_raw_bulk(owner, &mut raw), 128);
        let mut d = [EMPTY; 128];
        for (r, d) in raw.chunks(64).zip(d.chunks_mut(64)) {
            assert_eq!(ctx.with(|st| st.tx_desc_prepare(r, d)), 64);
        }
        // Completed twice over in one call: the second half is refused.
        let twice: Vec<_> = d.iter().chain(d.iter()).copied().collect();
        done(&ctx, &twice);
        for r in raw.chunks(64) {
            assert_eq!(ctx.with(|st| st.tx_desc_settle(r, 64)), 64);
        }
        assert_eq!(bad(&ctx), 128);
        assert_eq!(ctx.with(|st| (st.counters.tx_done, st.tx_lent)), (128, 0));
        assert!(pool.held_by(owner) < 128, "flushed inside the call");
        ctx.with(|st| st.flush_frees());
        assert_eq!(pool.held_by(owner), 0);
        assert_eq!(pool.available(), 256);
    }

    /// Transmits: a prefix is taken, the rest is no longer lent; a
    /// completion of an untaken or completed frame is refused.
    #[test]
    fn transmit_descriptors_settle_to_a_prefix() {
        let (pool, owner, ctx) = device("desc-tx");
        let mut raw = [std::ptr::null_mut(); 4];
        assert_eq!(pool.alloc_raw_bulk(owner, &mut raw), 4);
        let mut d = [EMPTY; 4];
        let n = ctx.with(|st| st.tx_desc_prepare(&raw, &mut d));
        assert_eq!(n, 4);
        assert_eq!(ctx.with(|st| st.tx_lent), 4);
        // The driver completes the first two and says it took two.
        done(&ctx, &d[..2]);
        assert_eq!(ctx.with(|st| st.tx_desc_settle(&raw, 2)), 2);
        assert_eq!(ctx.with(|st| st.tx_lent), 0);
        // Completing them again, or an untaken one, is refused.
        done(&ctx, &d[..3]);
        assert_eq!(bad(&ctx), 3);
        assert_eq!(ctx.with(|st| st.counters.tx_done), 2);
        ctx.with(|st| st.flush_frees());
        // The untaken two are still the caller's.
        // SAFETY: raw[2..] were never taken: ours to free.
        unsafe { pktkit_native::mbuf::free_raw_bulk(&raw[2..]) };
        assert_eq!(pool.held_by(owner), 0);
    }
}
