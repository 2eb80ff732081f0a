//! The two PACKET_MMAP rings of the socket, as seen from user space.
//!
//! Receive uses TPACKET_V3: the ring is `blocks` blocks of `block_size`
//! bytes; the kernel fills a block with variable-sized frames and hands it
//! over by setting its `block_status` to `TP_STATUS_USER` (when full, or when
//! the retire timer fires); we walk its frames and give it back by storing
//! `TP_STATUS_KERNEL`. Transmit is frame-based even under V3: fixed
//! `frame_size` slots that never cross a block; we fill a slot whose status
//! is `TP_STATUS_AVAILABLE`, set `TP_STATUS_SEND_REQUEST`, and one `sendto`
//! per burst makes the kernel send every requested slot in order.
//!
//! Ordering: a status word is loaded with `Acquire` before the block or frame
//! it guards is read, and stored with `Release` after we are done with it, so
//! our accesses never overlap the kernel's (which brackets its own with
//! `smp_wmb`/`smp_rmb` around the same words).

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pktkit_native::Mbuf;

use crate::sys::Mapping;

/// Offset of `block_status` in a block descriptor.
const BLOCK_STATUS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
/// Offset of `num_pkts` in a block descriptor.
const BLOCK_NUM_PKTS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
/// Offset of `offset_to_first_pkt` in a block descriptor.
const BLOCK_FIRST_PKT: usize = offset_of!(libc::tpacket_block_desc, hdr)
    + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// Offset of `tp_status` in a frame header.
const FRAME_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
/// The frame header rounded up to TPACKET_ALIGNMENT: where the receive
/// `sockaddr_ll` sits, and where transmit data starts
/// (`TPACKET3_HDRLEN - sizeof(struct sockaddr_ll)`).
pub const HDR_ALIGNED: usize = libc::TPACKET3_HDRLEN - size_of::<libc::sockaddr_ll>();

/// The socket and its mapped rings, shared by the driver and its queues.
pub struct Shared {
    /// The rings (dropped, i.e. unmapped, before the socket is closed).
    pub map: Mapping,
    /// The packet socket.
    pub fd: std::os::fd::OwnedFd,
    /// Receive ring geometry.
    pub rx: Geometry,
    /// Transmit ring geometry.
    pub tx: Geometry,
    /// Block the next receive queue starts at (kept across stop/start).
    pub rx_next: AtomicUsize,
    /// Frame the next transmit queue starts at.
    pub tx_next: AtomicUsize,
}

/// Where a ring lies in the mapping and how it is cut.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Offset of the ring in the mapping.
    pub offset: usize,
    /// Bytes per block.
    pub block_size: usize,
    /// Number of blocks.
    pub blocks: usize,
    /// Bytes per frame slot.
    pub frame_size: usize,
}

impl Geometry {
    /// Bytes of the ring.
    pub fn len(&self) -> usize {
        self.block_size * self.blocks
    }

    /// Whether the ring is empty of blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks == 0
    }

    /// Frame slots per block.
    pub fn frames_per_block(&self) -> usize {
        self.block_size / self.frame_size
    }

    /// Frame slots in the ring.
    pub fn frames(&self) -> usize {
        self.frames_per_block() * self.blocks
    }
}

/// One received frame, still in the ring.
pub struct RxFrame<'a> {
    /// The frame bytes as captured (without a VLAN tag the device stripped).
    pub data: &'a [u8],
    /// The VLAN tag the device stripped, as (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
    /// Our own transmission looped back (PACKET_OUTGOING).
    pub outgoing: bool,
    /// The TCP/UDP checksum was left for offload by a local sender
    /// (TP_STATUS_CSUMNOTREADY): it must be completed before use.
    pub csum_not_ready: bool,
}

/// The user side of the receive ring.
pub struct RxRing {
    shared: Arc<Shared>,
    /// Current block.
    cur: usize,
    /// Frames of the current block already consumed.
    idx: u32,
    /// Offset in the block of the next frame.
    off: usize,
    /// `num_pkts` of the current block, read when it was first seen.
    num: u32,
    /// `tp_next_offset` of the frame last peeked.
    next: usize,
    /// Frames with impossible offsets or lengths (the block is given back).
    pub bad: u64,
}

impl RxRing {
    /// Takes over the ring where the last user left it.
    pub fn new(shared: Arc<Shared>) -> RxRing {
        let cur = shared.rx_next.load(Ordering::Relaxed) % shared.rx.blocks.max(1);
        RxRing {
            shared,
            cur,
            idx: 0,
            off: 0,
            num: 0,
            next: 0,
            bad: 0,
        }
    }

    fn block(&self) -> usize {
        self.shared.rx.offset + self.cur * self.shared.rx.block_size
    }

    /// Whether the current block is ours to read.
    pub fn ready(&self) -> bool {
        self.shared
            .map
            .status(self.block() + BLOCK_STATUS)
            .is_some_and(|s| s.load(Ordering::Acquire) & libc::TP_STATUS_USER != 0)
    }

    /// Gives the current block back to the kernel and moves to the next.
    fn release(&mut self) {
        if let Some(s) = self.shared.map.status(self.block() + BLOCK_STATUS) {
            // Release: our reads of the block happen before the kernel refills it.
            s.store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
        self.cur = (self.cur + 1) % self.shared.rx.blocks;
        self.idx = 0;
    }

    /// The next frame, left in the ring until [`RxRing::advance`].
    pub fn peek(&mut self) -> Option<RxFrame<'_>> {
        let (at, len, vlan, outgoing, csum_not_ready) = self.locate()?;
        // SAFETY: locate() checked the range lies in the current block, which
        // is ours and stays so until advance() moves past its last frame; the
        // borrow of self keeps advance() out while the slice lives.
        let data = unsafe { self.shared.map.bytes(at, len) }?;
        Some(RxFrame {
            data,
            vlan,
            outgoing,
            csum_not_ready,
        })
    }

    /// Finds the next frame: its offset in the mapping, length, VLAN tag and
    /// whether it is our own outgoing frame, and whether its checksum is unfinished.
    #[allow(clippy::type_complexity)]
    fn locate(&mut self) -> Option<(usize, usize, Option<(u16, u16)>, bool, bool)> {
        let bs = self.shared.rx.block_size;
        // Each pass either returns or gives a block back; bound the walk.
        for _ in 0..=self.shared.rx.blocks {
            if !self.ready() {
                return None;
            }
            let base = self.block();
            let map = &self.shared.map;
            if self.idx == 0 {
                // SAFETY: the block is ours (status USER, acquired above).
                let (num, first) = unsafe {
                    (
                        map.read::<u32>(base + BLOCK_NUM_PKTS),
                        map.read::<u32>(base + BLOCK_FIRST_PKT),
                    )
                };
                self.num = num.unwrap_or(0);
                self.off = first.unwrap_or(0) as usize;
            }
            if self.idx >= self.num {
                self.release();
                continue;
            }
            let hdr_off = self.off;
            let hdr = (hdr_off + HDR_ALIGNED + size_of::<libc::sockaddr_ll>() <= bs)
                // SAFETY: in the block, which is ours; tpacket3_hdr is POD.
                .then(|| unsafe { map.read::<libc::tpacket3_hdr>(base + hdr_off) })
                .flatten();
            let Some(h) = hdr else {
                self.bad += 1;
                self.release();
                continue;
            };
            let data_off = hdr_off + h.tp_mac as usize;
            let len = h.tp_snaplen as usize;
            if data_off + len > bs {
                self.bad += 1;
                self.release();
                continue;
            }
            // SAFETY: in the block, which is ours; sockaddr_ll is POD.
            let sll = unsafe { map.read::<libc::sockaddr_ll>(base + hdr_off + HDR_ALIGNED) };
            let outgoing = sll.is_some_and(|s| s.sll_pkttype == libc::PACKET_OUTGOING);
            let vlan = (h.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    h.hv1.tp_vlan_tpid
                } else {
                    0x8100
                };
                (tpid, h.hv1.tp_vlan_tci as u16)
            });
            self.next = h.tp_next_offset as usize;
            let csum_not_ready = h.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
            return Some((base + data_off, len, vlan, outgoing, csum_not_ready));
        }
        None
    }

    /// Consumes the frame last peeked; gives the block back after its last.
    pub fn advance(&mut self) {
        self.idx += 1;
        self.off += self.next;
        if self.idx >= self.num || self.next == 0 {
            self.release();
        }
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // A half-read block is given back so the next user starts clean.
        if self.idx > 0 {
            self.release();
        }
        self.shared.rx_next.store(self.cur, Ordering::Relaxed);
    }
}

/// What [`TxRing::put`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxPut {
    /// Copied into a slot and marked for sending.
    Queued,
    /// Every slot is still owned by the kernel.
    Full,
    /// Larger than a slot: it can never be sent.
    TooBig,
}

/// The user side of the transmit ring.
pub struct TxRing {
    shared: Arc<Shared>,
    head: usize,
}

impl TxRing {
    /// Takes over the ring where the last user left it.
    pub fn new(shared: Arc<Shared>) -> TxRing {
        let head = shared.tx_next.load(Ordering::Relaxed) % shared.tx.frames().max(1);
        TxRing { shared, head }
    }

    /// Largest frame a slot holds.
    pub fn max_frame(&self) -> usize {
        self.shared.tx.frame_size - HDR_ALIGNED
    }

    fn slot(&self, i: usize) -> usize {
        let g = &self.shared.tx;
        let fpb = g.frames_per_block();
        g.offset + (i / fpb) * g.block_size + (i % fpb) * g.frame_size
    }

    /// Copies `m` into the next slot and marks it for sending.
    pub fn put(&mut self, m: &Mbuf) -> TxPut {
        let len = m.pkt_len();
        if len > self.max_frame() {
            return TxPut::TooBig;
        }
        let off = self.slot(self.head);
        let map = &self.shared.map;
        let Some(status) = map.status(off + FRAME_STATUS) else {
            return TxPut::Full;
        };
        // Acquire: the kernel is done with the slot before we write it.
        // AVAILABLE (sent) and WRONG_FORMAT (skipped, with PACKET_LOSS) are ours.
        let st = status.load(Ordering::Acquire);
        if st & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0 {
            return TxPut::Full;
        }
        let mut at = off + HDR_ALIGNED;
        for seg in m.segs() {
            // SAFETY: the slot is ours (status checked above); the range is
            // inside it since len <= max_frame.
            unsafe { map.write(at, seg) };
            at += seg.len();
        }
        // SAFETY: header fields of the slot we own; u32 is POD.
        unsafe {
            map.write_val(off + offset_of!(libc::tpacket3_hdr, tp_next_offset), 0u32);
            map.write_val(off + offset_of!(libc::tpacket3_hdr, tp_len), len as u32);
            map.write_val(off + offset_of!(libc::tpacket3_hdr, tp_snaplen), len as u32);
        }
        // Release: the frame bytes are visible before the kernel sees the request.
        status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (self.head + 1) % self.shared.tx.frames();
        TxPut::Queued
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        self.shared.tx_next.store(self.head, Ordering::Relaxed);
    }
}
