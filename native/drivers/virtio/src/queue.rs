//! The data path: one receive and one transmit queue per queue pair
//! (virtio 1.1 §5.1.2: receiveq*N* is virtqueue 2(*N*-1), transmitq*N* is
//! 2(*N*-1)+1).
//!
//! Every buffer takes exactly one descriptor: the 12-byte `virtio_net_hdr`
//! sits in the mbuf's headroom right in front of the frame, so header and
//! frame are one contiguous device buffer on both receive and transmit
//! (no copies; §5.1.6.2 and §5.1.6.3 allow any framing of header and data).
//! The mbuf of a descriptor is kept in a table indexed by descriptor id
//! until the device returns it in the used ring.
//!
//! Each queue object is used by one thread at a time (the driver contract);
//! it shares with the rest of the driver only `Hw` (register windows, which
//! are only read here, the notification register, and atomic counters).

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pktkit_native::mbuf::DATAROOM;
use pktkit_native::sys::{self, mbuf};
use pktkit_native::{Mbuf, OwnerId, PacketBatch, Pool, QueueCounters, RxQueue, TxQueue};

use crate::hw::Hw;
use crate::net::{self, NetHdr, NET_HDR_LEN};
use crate::sys::eventfd_take;
use crate::virtq::{Desc, SplitQueue, VIRTQ_DESC_F_WRITE};

/// Receive buffers allocated from the pool at once.
const REFILL_CHUNK: usize = 64;
/// Shortest frame accepted (an Ethernet header).
const MIN_FRAME: usize = 14;
/// Longest frame sent: a 1500-byte MTU, the Ethernet header and a VLAN tag.
pub const MAX_FRAME: usize = 1500 + 14 + 4;

/// A virtqueue whose descriptors each carry one mbuf.
struct BufRing {
    hw: Arc<Hw>,
    vq: SplitQueue,
    /// Virtqueue index, written to the notification register.
    index: u16,
    notify_off: usize,
    /// The mbuf each descriptor carries, by descriptor id.
    bufs: Vec<Option<Mbuf>>,
    /// Descriptor ids not given to the device.
    free: Vec<u16>,
}

impl BufRing {
    fn new(hw: Arc<Hw>, vq: SplitQueue, index: u16, notify_off: usize) -> BufRing {
        let n = vq.size();
        BufRing {
            hw,
            vq,
            index,
            notify_off,
            bufs: (0..n).map(|_| None).collect(),
            free: (0..n).rev().collect(),
        }
    }

    /// Gives `m` to the device as one descriptor of `len` bytes at `addr`
    /// (§2.6.13.1-2); hands it back when no descriptor is free.
    #[inline]
    fn place(&mut self, m: Mbuf, addr: u64, len: u32, flags: u16) -> Result<(), Mbuf> {
        let Some(id) = self.free.pop() else {
            return Err(m);
        };
        self.vq.write_desc(id, Desc::new(addr, len, flags, 0));
        self.bufs[usize::from(id)] = Some(m);
        self.vq.push_avail(id);
        Ok(())
    }

    /// Publishes what was placed and notifies the device unless it said it
    /// does not need it (§2.6.13.3-4, §4.1.5.2).
    #[inline]
    fn kick(&mut self) {
        self.vq.publish();
        if self.hw.is_live() && self.vq.needs_notify() {
            self.hw.t.notify(self.notify_off, self.index);
        }
    }

    /// The next buffer the device is done with, the bytes it wrote and the
    /// address its descriptor held (normally the buffer's own);
    /// `Some(None)` for a used entry naming no buffer of ours (counted).
    #[inline]
    fn take_used(&mut self) -> Option<Option<(Mbuf, u32, u64)>> {
        let e = self.vq.pop_used()?;
        let id = e.id() as usize;
        match self.bufs.get_mut(id).and_then(Option::take) {
            Some(m) => {
                self.free.push(id as u16);
                let addr = self.vq.read_desc(id as u16).addr();
                Some(Some((m, e.len(), addr)))
            }
            None => {
                self.hw.stats.bad_used.fetch_add(1, Ordering::Relaxed);
                Some(None)
            }
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // The device must stop using the buffers before they go back to the
        // pool (with `bufs`, right after this).
        self.hw.quiesce();
    }
}

/// One receive queue.
pub struct VioRxQueue {
    ring: BufRing,
    pool: Pool,
    owner: OwnerId,
    irq: Option<RawFd>,
    counters: QueueCounters,
}

impl VioRxQueue {
    /// A receive queue over a configured virtqueue; fills it with buffers
    /// (the device sees them once kicked).
    pub(crate) fn new(
        hw: Arc<Hw>,
        vq: SplitQueue,
        index: u16,
        notify_off: usize,
        pool: Pool,
        owner: OwnerId,
        irq: Option<RawFd>,
    ) -> VioRxQueue {
        // Disarmed until the worker arms it (§2.6.7).
        vq.suppress_interrupts(true);
        hw.register_rx(index, vq.view());
        let mut q = VioRxQueue {
            ring: BufRing::new(hw, vq, index, notify_off),
            pool,
            owner,
            irq,
            counters: QueueCounters::default(),
        };
        q.fill();
        q
    }

    /// Places fresh buffers in every free descriptor (§5.1.6.3); returns
    /// how many. The header goes in the headroom: the descriptor starts 12
    /// bytes before the mbuf's data and covers its whole data room.
    fn fill(&mut self) -> usize {
        let mut placed = 0;
        let mut raw: [*mut mbuf; REFILL_CHUNK] = [std::ptr::null_mut(); REFILL_CHUNK];
        while !self.ring.free.is_empty() {
            let want = self.ring.free.len().min(REFILL_CHUNK);
            let got = self.pool.alloc_raw_bulk(self.owner, &mut raw[..want]);
            for &p in &raw[..got] {
                // SAFETY: alloc_raw_bulk handed us `got` fresh buffers that
                // nobody else holds; each is wrapped exactly once.
                let m = unsafe { Mbuf::from_raw(p) };
                let addr = m.iova() - NET_HDR_LEN as u64;
                let len = (NET_HDR_LEN + m.tailroom()) as u32;
                if self.ring.place(m, addr, len, VIRTQ_DESC_F_WRITE).is_err() {
                    break; // cannot happen: at most `free.len()` were asked for
                }
                placed += 1;
            }
            if got < want {
                self.hw().stats.rx_no_buffer.fetch_add(1, Ordering::Relaxed);
                self.counters.ring_full += 1;
                break;
            }
        }
        placed
    }

    fn hw(&self) -> &Hw {
        &self.ring.hw
    }

    /// Refills and notifies the device when buffers were added (per burst).
    pub(crate) fn refill(&mut self) {
        if self.fill() > 0 {
            self.ring.kick();
        }
    }

    /// Publishes the buffers placed before DRIVER_OK and notifies the
    /// device (§3.1.1: no notification before DRIVER_OK).
    pub(crate) fn kick_after_driver_ok(&mut self) {
        self.fill();
        self.ring.kick();
    }

    /// Finishes a received buffer: strips the header, applies its checksum
    /// flags (§5.1.6.4). `None` for a frame to drop (counted).
    #[inline]
    fn finish(&mut self, mut m: Mbuf, used_len: u32) -> Option<Mbuf> {
        let total = used_len as usize;
        if !(NET_HDR_LEN + MIN_FRAME..=NET_HDR_LEN + DATAROOM).contains(&total) {
            self.counters.errors += 1;
            return None;
        }
        let frame_len = total - NET_HDR_LEN;
        if !m.set_len(frame_len) {
            self.counters.errors += 1;
            return None;
        }
        let hdr = m.prepend(NET_HDR_LEN).and_then(|h| NetHdr::from_bytes(h));
        m.trim_front(NET_HDR_LEN);
        let hdr = hdr.unwrap_or_default();
        if hdr.flags & (net::HDR_F_NEEDS_CSUM | net::HDR_F_DATA_VALID) != 0 {
            // Only with GUEST_CSUM negotiated (§5.1.6.4.1): NEEDS_CSUM is a
            // packet from a local sender whose checksum was never computed;
            // complete it so the stack sees a valid one.
            if hdr.flags & net::HDR_F_NEEDS_CSUM != 0 {
                let (s, o) = (hdr.csum_start().into(), hdr.csum_offset().into());
                if !net::complete_checksum(m.data_mut(), s, o) {
                    self.counters.errors += 1;
                    return None;
                }
            }
            if let Some(h) = net::parse_headers(m.data()) {
                m.set_csum(net::l4_csum_flag(&h), 0);
            }
        }
        if net::is_multicast(m.data()) {
            self.counters.multicast += 1;
        }
        self.counters.packets += 1;
        self.counters.bytes += frame_len as u64;
        Some(m)
    }
}

impl RxQueue for VioRxQueue {
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let mut n = 0;
        while batch.room() > 0 {
            let Some(used) = self.ring.take_used() else {
                break;
            };
            let Some((m, len, addr)) = used else {
                self.counters.errors += 1;
                continue;
            };
            if addr != m.iova() - NET_HDR_LEN as u64 {
                // The descriptor was pointed elsewhere (fault injection):
                // whatever the device wrote, it was not into this buffer.
                self.counters.errors += 1;
                self.hw().stats.rx_faulted.fetch_add(1, Ordering::Relaxed);
                drop(m);
                continue;
            }
            if let Some(m) = self.finish(m, len) {
                if batch.push(m).is_err() {
                    self.counters.drops += 1; // room was checked: not reached
                } else {
                    n += 1;
                }
            }
        }
        self.refill();
        n
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn wait_fd(&self) -> Option<RawFd> {
        self.irq
    }

    fn arm(&mut self) -> bool {
        let Some(fd) = self.irq else {
            return !self.ring.vq.has_used();
        };
        // A ring without buffers would never interrupt: top it up first.
        self.refill();
        // Drop a stale signal so the sleep waits for a new interrupt.
        eventfd_take(fd);
        if self.ring.vq.enable_interrupts_and_check() {
            self.ring.vq.suppress_interrupts(true);
            return false;
        }
        true
    }

    fn disarm(&mut self) {
        self.ring.vq.suppress_interrupts(true);
        if let Some(fd) = self.irq {
            if eventfd_take(fd) > 0 {
                self.counters.interrupts += 1;
            }
        }
    }
}

impl Drop for VioRxQueue {
    fn drop(&mut self) {
        // Before the ring's memory goes (with the fields, after this).
        self.ring.hw.unregister_rx(self.ring.index);
    }
}

/// One transmit queue.
pub struct VioTxQueue {
    ring: BufRing,
    pool: Pool,
    owner: OwnerId,
    /// VIRTIO_NET_F_CSUM negotiated: the device completes L4 checksums.
    csum_offload: bool,
    counters: QueueCounters,
}

impl VioTxQueue {
    /// A transmit queue over a configured virtqueue.
    pub(crate) fn new(
        hw: Arc<Hw>,
        vq: SplitQueue,
        index: u16,
        notify_off: usize,
        pool: Pool,
        owner: OwnerId,
        csum_offload: bool,
    ) -> VioTxQueue {
        // Completions are reclaimed by polling: no transmit interrupts.
        vq.suppress_interrupts(true);
        VioTxQueue {
            ring: BufRing::new(hw, vq, index, notify_off),
            pool,
            owner,
            csum_offload,
            counters: QueueCounters::default(),
        }
    }

    /// Frees the buffers the device has sent (§2.6.14).
    fn reclaim_used(&mut self) {
        while let Some(used) = self.ring.take_used() {
            if used.is_none() {
                self.counters.errors += 1;
            }
        }
    }

    /// Copies a packet into one fresh buffer (chained, or without headroom
    /// for the header). Rare: the stack builds frames in single buffers.
    fn linearize(&self, m: &Mbuf) -> Option<Mbuf> {
        let mut one = self.pool.alloc(self.owner)?;
        let len = m.pkt_len();
        let dst = one.append(len)?;
        if m.copy_out(dst) != len {
            return None;
        }
        one.set_csum(m.csum_flags(), 0);
        self.ring
            .hw
            .stats
            .tx_linearized
            .fetch_add(1, Ordering::Relaxed);
        Some(one)
    }

    /// Puts the header in front of the frame, doing the checksum work the
    /// packet asks for (§5.1.6.2). `None` for a packet that cannot be sent.
    #[inline]
    fn prepare(&mut self, m: Mbuf) -> Option<Mbuf> {
        let len = m.pkt_len();
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            return None;
        }
        let mut m = if m.is_chained() || m.headroom() < NET_HDR_LEN {
            self.linearize(&m)?
        } else {
            m
        };
        let mut hdr = NetHdr::default();
        let want = m.csum_flags();
        if want & (net::M_CSUM_L4 | sys::M_CSUM_IPv4) != 0 {
            let h = net::parse_headers(m.data())?;
            if want & sys::M_CSUM_IPv4 != 0 && !h.v6 {
                net::ipv4_header_checksum(m.data_mut(), h.l3);
            }
            if want & net::M_CSUM_L4 != 0 {
                let proto = h.proto?;
                if self.csum_offload {
                    hdr = NetHdr::needs_csum(h.l4 as u16, proto.csum_offset());
                } else if !net::complete_checksum(
                    m.data_mut(),
                    h.l4,
                    usize::from(proto.csum_offset()),
                ) {
                    return None;
                }
            }
        }
        m.prepend(NET_HDR_LEN)?.copy_from_slice(&hdr.to_bytes());
        Some(m)
    }
}

impl TxQueue for VioTxQueue {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        self.reclaim_used();
        let mut taken = 0;
        let mut placed = false;
        while !batch.is_empty() {
            if self.ring.free.is_empty() {
                self.counters.ring_full += 1;
                break;
            }
            let Some(m) = batch.pop_front() else {
                break;
            };
            taken += 1;
            let Some(m) = self.prepare(m) else {
                self.counters.errors += 1;
                continue;
            };
            let frame = (m.len() - NET_HDR_LEN) as u64;
            let (addr, len) = (m.iova(), m.len() as u32);
            if net::is_multicast(&m.data()[NET_HDR_LEN..]) {
                self.counters.multicast += 1;
            }
            if self.ring.place(m, addr, len, 0).is_err() {
                self.counters.drops += 1; // free was checked: not reached
                continue;
            }
            placed = true;
            self.counters.packets += 1;
            self.counters.bytes += frame;
        }
        if placed {
            self.ring.kick();
        }
        taken
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn reclaim(&mut self) {
        self.reclaim_used();
    }
}
