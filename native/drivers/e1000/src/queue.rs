//! The receive and transmit queues: one legacy descriptor ring each.
//!
//! Receive (SDM 3.2): the driver owns the descriptors from the device's
//! head (RDH) up to the tail (RDT) it last wrote; it keeps `posted`
//! descriptors, starting at `next`, holding empty buffers for the device
//! (at most size - 1, so RDT never catches RDH). A frame longer than one
//! 2048-byte buffer spans several descriptors, the last marked EOP; its
//! buffers become one mbuf chain.
//!
//! Transmit (SDM 3.3): one descriptor per non-empty buffer of a packet (per
//! page-contained piece of it, see [`chain::split_at_pages`]), RS and EOP on
//! the last; the packet is kept at its first descriptor, with the
//! index of its last, until the device writes DD back there.

use std::os::fd::RawFd;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use pktkit_native::device::IrqKind;
use pktkit_native::mbuf::free_raw_bulk;
use pktkit_native::sys::{mbuf, M_BCAST, M_MCAST};
use pktkit_native::{Mbuf, OwnerId, PacketBatch, Pool, QueueCounters, RxQueue, TxQueue};

use crate::chain::{self, Partial};
use crate::desc::{rx_errors, rx_status, tx_cmd, tx_status, Ring, RxDesc, TxDesc};
use crate::hw::{Shared, RX_INTERRUPTS};
use crate::regs::{int, Reg};
use crate::sys::drain_eventfd;

/// Buffers allocated from the pool at once when refilling.
const REFILL_BULK: usize = 64;
/// Most non-empty buffers one transmitted packet may have.
pub const MAX_TX_SEGS: usize = 16;
/// Most descriptors one transmitted packet may use: each buffer may be
/// split in two at a page boundary ([`chain::split_at_pages`]).
pub const MAX_TX_DESCS: usize = 2 * MAX_TX_SEGS;
/// Completed packets freed at once.
const FREE_BULK: usize = 64;

/// Index arithmetic on a ring of `size` descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingIndex {
    size: usize,
}

impl RingIndex {
    /// A ring of `size` (> 0) descriptors.
    pub fn new(size: usize) -> RingIndex {
        RingIndex { size: size.max(1) }
    }

    /// `i + n`, wrapped.
    #[inline]
    pub fn add(self, i: usize, n: usize) -> usize {
        (i + n) % self.size
    }

    /// Descriptors from `from` up to (not including) `to`, going forward.
    #[inline]
    pub fn distance(self, from: usize, to: usize) -> usize {
        (to + self.size - from) % self.size
    }

    /// Most descriptors the driver may hand the device at once: one stays
    /// unused so that tail == head always means "empty" (SDM 3.2.6).
    #[inline]
    pub fn capacity(self) -> usize {
        self.size - 1
    }
}

/// The receive queue.
pub struct E1000Rx {
    shared: Arc<Shared>,
    ring: Ring<RxDesc>,
    idx: RingIndex,
    /// The buffer of each descriptor, while the device may fill it.
    slots: Vec<Option<Mbuf>>,
    /// The next descriptor the device completes.
    next: usize,
    /// Descriptors from `next` on that hold buffers.
    posted: usize,
    /// A frame whose EOP descriptor has not been seen yet.
    partial: Option<Partial>,
    /// Dropping the rest of a bad multi-descriptor frame.
    discarding: bool,
    pool: Pool,
    owner: OwnerId,
    counters: QueueCounters,
}

impl E1000Rx {
    /// Programs the receive ring into the device (SDM 14.4: RDBAL/RDBAH,
    /// RDLEN, RDH = 0, RDT) and fills it with buffers. The receiver is
    /// enabled by the caller.
    pub fn new(shared: Arc<Shared>, ring: Ring<RxDesc>, pool: Pool, owner: OwnerId) -> E1000Rx {
        let size = ring.len();
        let mut q = E1000Rx {
            shared,
            ring,
            idx: RingIndex::new(size),
            slots: (0..size).map(|_| None).collect(),
            next: 0,
            posted: 0,
            partial: None,
            discarding: false,
            pool,
            owner,
            counters: QueueCounters::default(),
        };
        let regs = &q.shared.regs;
        regs.write(Reg::RDBAL, q.ring.iova() as u32);
        regs.write(Reg::RDBAH, (q.ring.iova() >> 32) as u32);
        regs.write(Reg::RDLEN, q.ring.bytes());
        regs.write(Reg::RDH, 0);
        regs.write(Reg::RDT, 0);
        q.shared.register_rx_ring(Some(q.ring.view()));
        q.refill();
        q
    }

    /// Descriptors holding buffers for the device.
    pub fn posted(&self) -> usize {
        self.posted
    }

    /// Puts fresh buffers on every free descriptor and moves RDT.
    fn refill(&mut self) {
        let mut want = self.idx.capacity() - self.posted;
        if want == 0 {
            return;
        }
        let mut raw = [std::ptr::null_mut::<mbuf>(); REFILL_BULK];
        let mut added = 0;
        while want > 0 {
            let ask = want.min(REFILL_BULK);
            let got = self.pool.alloc_raw_bulk(self.owner, &mut raw[..ask]);
            for &p in &raw[..got] {
                // SAFETY: alloc_raw_bulk handed us `got` fresh buffers that
                // nobody else owns.
                let m = unsafe { Mbuf::from_raw(p) };
                let at = self.idx.add(self.next, self.posted);
                self.ring.write(at, RxDesc::new(m.iova()));
                self.slots[at] = Some(m);
                self.posted += 1;
            }
            added += got;
            want -= got;
            if got < ask {
                self.shared
                    .rx_no_buffer
                    .fetch_add((ask - got) as u64, Ordering::Relaxed);
                if self.posted == 0 {
                    self.counters.ring_full += 1;
                }
                break;
            }
        }
        if added > 0 {
            // The descriptors must be in memory before the device sees the
            // new tail (SDM 3.2.6); a full fence orders the ring stores
            // before the MMIO store on any architecture.
            fence(Ordering::SeqCst);
            self.shared
                .regs
                .write(Reg::RDT, self.idx.add(self.next, self.posted) as u32);
        }
    }

    /// Hands a complete frame up: flags and counters.
    fn deliver(&mut self, mut m: Mbuf, batch: &mut PacketBatch) {
        let dst0 = m.data().first().copied().unwrap_or(0);
        if dst0 & 1 != 0 {
            if m.data().get(..6) == Some(&[0xff; 6]) {
                m.set_flags(M_BCAST);
            } else {
                m.set_flags(M_MCAST);
                self.counters.multicast += 1;
            }
        }
        self.counters.packets += 1;
        self.counters.bytes += m.pkt_len() as u64;
        if let Err(m) = batch.push(m) {
            // Cannot happen (room is checked first); count, do not leak.
            self.counters.drops += 1;
            drop(m);
        }
    }

    /// Whether the device has completed the next descriptor.
    fn pending(&self) -> bool {
        self.posted > 0 && self.ring.status(self.next) & rx_status::DD != 0
    }
}

impl RxQueue for E1000Rx {
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let mut got = 0;
        while batch.room() > 0 && self.pending() {
            // Read the rest of the descriptor only after seeing DD: the
            // device writes it back before (or with) the status byte.
            fence(Ordering::Acquire);
            let d = self.ring.read(self.next);
            let slot = self.slots[self.next].take();
            self.next = self.idx.add(self.next, 1);
            self.posted -= 1;
            let Some(mut m) = slot else {
                // A completed descriptor without a buffer: a driver bug.
                self.counters.errors += 1;
                continue;
            };
            let eop = d.status() & rx_status::EOP != 0;
            if self.discarding {
                drop(m);
                self.discarding = !eop;
                continue;
            }
            if d.addr() != m.iova() {
                // The device was pointed elsewhere (Driver::inject_fault):
                // this buffer holds no frame, nor does the rest of it.
                self.counters.errors += 1;
                drop(m);
                drop(self.partial.take());
                self.discarding = !eop;
                continue;
            }
            if eop && d.errors() & rx_errors::FRAME != 0 {
                self.counters.errors += 1;
                drop(m);
                drop(self.partial.take());
                continue;
            }
            let len = usize::from(d.length());
            let frame = match self.partial.take() {
                None => {
                    if !m.set_len(len) {
                        self.counters.errors += 1;
                        self.discarding = !eop;
                        continue;
                    }
                    if eop {
                        Some(m)
                    } else {
                        self.partial = Some(Partial::new(m));
                        None
                    }
                }
                Some(mut p) => {
                    if !p.push(m, len) {
                        self.counters.errors += 1;
                        self.discarding = !eop;
                        continue;
                    }
                    if eop {
                        Some(p.finish())
                    } else {
                        self.partial = Some(p);
                        None
                    }
                }
            };
            if let Some(m) = frame {
                self.deliver(m, batch);
                got += 1;
            }
        }
        self.refill();
        got
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.shared.irq.fd)
    }

    fn arm(&mut self) -> bool {
        // Forget stale wake-ups and causes, then unmask the receive causes.
        drain_eventfd(self.shared.irq.fd);
        self.shared.clear_causes();
        self.shared.unmask_intx();
        self.shared.regs.write(Reg::IMS, RX_INTERRUPTS);
        // A frame stored before IMS was written raised no interrupt: look.
        // Without buffers nothing can arrive either: keep polling (the next
        // burst retries the refill).
        if self.pending() || self.posted == 0 {
            self.shared.regs.write(Reg::IMC, int::ALL);
            return false;
        }
        true
    }

    fn disarm(&mut self) {
        self.shared.regs.write(Reg::IMC, int::ALL);
        // Reading ICR also deasserts INTx before the line is unmasked.
        self.shared.clear_causes();
        if drain_eventfd(self.shared.irq.fd) > 0 {
            self.counters.interrupts += 1;
        }
        if self.shared.irq.kind == IrqKind::Intx {
            self.shared.unmask_intx();
        }
    }
}

impl Drop for E1000Rx {
    fn drop(&mut self) {
        // Stop the device writing into the buffers before they go back to
        // the pool (with the slots, when the fields drop).
        self.shared.disable_rx();
        // The ring's memory goes with the fields too.
        self.shared.register_rx_ring(None);
        self.shared.regs.write(Reg::IMC, RX_INTERRUPTS);
    }
}

/// The transmit queue.
pub struct E1000Tx {
    shared: Arc<Shared>,
    ring: Ring<TxDesc>,
    idx: RingIndex,
    /// The packet whose first descriptor is at this index.
    slots: Vec<Option<Mbuf>>,
    /// For the first descriptor of a packet: the index of its last.
    last: Vec<u16>,
    /// The next descriptor to fill (the tail written to TDT).
    next: usize,
    /// The oldest descriptor not yet reclaimed.
    clean: usize,
    /// Descriptors between `clean` and `next`.
    used: usize,
    counters: QueueCounters,
}

impl E1000Tx {
    /// Programs the transmit ring into the device (SDM 14.5: TDBAL/TDBAH,
    /// TDLEN, TDH = TDT = 0). The transmitter is enabled by the caller.
    pub fn new(shared: Arc<Shared>, ring: Ring<TxDesc>) -> E1000Tx {
        let size = ring.len();
        let regs = &shared.regs;
        regs.write(Reg::TDBAL, ring.iova() as u32);
        regs.write(Reg::TDBAH, (ring.iova() >> 32) as u32);
        regs.write(Reg::TDLEN, ring.bytes());
        regs.write(Reg::TDH, 0);
        regs.write(Reg::TDT, 0);
        E1000Tx {
            shared,
            ring,
            idx: RingIndex::new(size),
            slots: (0..size).map(|_| None).collect(),
            last: vec![0; size],
            next: 0,
            clean: 0,
            used: 0,
            counters: QueueCounters::default(),
        }
    }

    fn free_slots(&self) -> usize {
        self.idx.capacity() - self.used
    }

    /// Frees the packets the device has sent; returns how many.
    fn reclaim_done(&mut self) -> usize {
        let mut done = [std::ptr::null_mut::<mbuf>(); FREE_BULK];
        let mut n = 0;
        let mut total = 0;
        while self.used > 0 {
            let last = usize::from(self.last[self.clean]);
            if self.ring.status(last) & tx_status::DD == 0 {
                break;
            }
            // The descriptor is done; what follows must not be reordered
            // before that observation.
            fence(Ordering::Acquire);
            let segs = self.idx.distance(self.clean, last) + 1;
            if let Some(m) = self.slots[self.clean].take() {
                done[n] = m.into_raw();
                n += 1;
            }
            self.clean = self.idx.add(last, 1);
            self.used = self.used.saturating_sub(segs);
            total += 1;
            if n == FREE_BULK {
                // SAFETY: these packets were taken from the slots, are owned
                // here and the device has finished with them.
                unsafe { free_raw_bulk(&done[..n]) };
                n = 0;
            }
        }
        // SAFETY: as above.
        unsafe { free_raw_bulk(&done[..n]) };
        total
    }

    /// Descriptors in flight (for tests and describe).
    pub fn in_flight(&self) -> usize {
        self.used
    }
}

impl TxQueue for E1000Tx {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        if self.free_slots() < batch.len().min(self.idx.capacity() / 2) + MAX_TX_DESCS {
            self.reclaim_done();
        }
        let max_frame = self.shared.max_frame.load(Ordering::Relaxed);
        let mut taken = 0;
        let mut placed = 0;
        let mut reclaimed = false;
        let mut bufs = [(0u64, 0u16); MAX_TX_SEGS];
        let mut segs = [(0u64, 0u16); MAX_TX_DESCS];
        while let Some(m) = batch.front() {
            let len = m.pkt_len();
            let nsegs = chain::segments(m, &mut bufs)
                .and_then(|n| chain::split_at_pages(&bufs[..n], &mut segs));
            let Some(nsegs) =
                nsegs.filter(|&n| n > 0 && n <= self.idx.capacity() && len <= max_frame)
            else {
                // Never sendable (empty, too long, too many pieces): take
                // it, count it, free it, so it cannot wedge the queue.
                drop(batch.pop_front());
                self.counters.errors += 1;
                taken += 1;
                continue;
            };
            if nsegs > self.free_slots() {
                if !reclaimed {
                    reclaimed = true;
                    self.reclaim_done();
                    continue;
                }
                self.counters.ring_full += 1;
                break;
            }
            let Some(m) = batch.pop_front() else { break };
            let first = self.next;
            for (k, &(iova, seg_len)) in segs[..nsegs].iter().enumerate() {
                let cmd = if k + 1 == nsegs {
                    tx_cmd::IFCS | tx_cmd::EOP | tx_cmd::RS
                } else {
                    tx_cmd::IFCS
                };
                self.ring.write(self.next, TxDesc::new(iova, seg_len, cmd));
                self.next = self.idx.add(self.next, 1);
            }
            self.last[first] = self.idx.add(first, nsegs - 1) as u16;
            self.slots[first] = Some(m);
            self.used += nsegs;
            self.counters.packets += 1;
            self.counters.bytes += len as u64;
            taken += 1;
            placed += 1;
        }
        if placed > 0 {
            // Descriptors before the doorbell (SDM 3.3.1); see E1000Rx::refill.
            fence(Ordering::SeqCst);
            self.shared.regs.write(Reg::TDT, self.next as u32);
        }
        taken
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn reclaim(&mut self) {
        self.reclaim_done();
    }
}

impl Drop for E1000Tx {
    fn drop(&mut self) {
        // The device must stop reading the packets before they are freed
        // (with the slots, when the fields drop).
        self.shared.disable_tx();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_index_wraps() {
        let r = RingIndex::new(8);
        assert_eq!(r.add(6, 3), 1);
        assert_eq!(r.add(7, 1), 0);
        assert_eq!(r.distance(6, 1), 3);
        assert_eq!(r.distance(3, 3), 0);
        assert_eq!(r.distance(0, 7), 7);
        assert_eq!(r.capacity(), 7);
        assert_eq!(RingIndex::new(0).capacity(), 0);
    }
}
