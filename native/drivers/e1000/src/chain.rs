//! The mbuf operations the data path needs beyond `Mbuf`'s safe API:
//! building a chain from the buffers of a multi-descriptor frame (jumbo
//! receive) and listing the DMA addresses of a chain's segments (transmit).

use std::ptr::NonNull;

use pktkit_native::sys::{mbuf, M_PKTHDR};
use pktkit_native::Mbuf;

/// A received frame whose last descriptor has not been seen yet.
///
/// Invariant: `tail` is the last buffer of `head`'s chain, owned by `head`.
pub struct Partial {
    head: Mbuf,
    tail: NonNull<mbuf>,
}

// SAFETY: `tail` points into the chain `head` owns exclusively; moving the
// pair to another thread moves that ownership with it.
unsafe impl Send for Partial {}

impl Partial {
    /// Starts a frame with its first buffer (its length already set).
    pub fn new(head: Mbuf) -> Partial {
        // SAFETY: as_ptr is the live, non-null head buffer.
        let tail = unsafe { NonNull::new_unchecked(head.as_ptr()) };
        Partial { head, tail }
    }

    /// Appends the next buffer of the frame, holding `len` bytes (at most
    /// its data room; the caller got `len` from the device, which never
    /// writes beyond the buffer size it was given). Returns false (and drops
    /// `seg`) if `len` does not fit.
    pub fn push(&mut self, mut seg: Mbuf, len: usize) -> bool {
        if !seg.set_len(len) {
            return false;
        }
        let raw = seg.into_raw();
        // SAFETY: raw is a buffer we now own; tail is the last buffer of
        // head's chain (invariant), so linking raw after it hands raw to head.
        unsafe {
            (*raw).m_hdr.mh_flags &= !M_PKTHDR;
            (*self.tail.as_ptr()).m_hdr.mh_next = raw;
            let h = self.head.as_ptr();
            (*h).M_pkthdr.len += len as i32;
            self.tail = NonNull::new_unchecked(raw);
        }
        true
    }

    /// The whole frame.
    pub fn finish(self) -> Mbuf {
        self.head
    }
}

/// Writes `(iova, len)` of each non-empty buffer of `m` into `out`; returns
/// how many, or `None` if the chain has more non-empty buffers than `out`
/// holds or a buffer longer than 65535 bytes.
pub fn segments(m: &Mbuf, out: &mut [(u64, u16)]) -> Option<usize> {
    let mut n = 0;
    let mut cur = m.as_ptr();
    while !cur.is_null() {
        // SAFETY: cur is a buffer of the chain `m` owns, borrowed for this
        // call; m_data..m_data+m_len lies inside its storage, and m_paddr is
        // the IOVA of the storage's start (ext_buf).
        let (next, iova, len) = unsafe {
            let h = &(*cur).m_hdr;
            let off = h.mh_data as u64 - (*cur).M_ext.ext_buf as u64;
            (h.mh_next, h.mh_paddr + off, h.mh_len)
        };
        if len > 0 {
            let len = u16::try_from(len).ok()?;
            *out.get_mut(n)? = (iova, len);
            n += 1;
        }
        cur = next;
    }
    Some(n)
}

/// The page size transmit buffers are split at ([`split_at_pages`]).
pub const PAGE: u64 = 4096;

/// Splits each `(iova, len)` of `segs` where it crosses a 4 KiB page
/// boundary, writing the pieces into `out`; returns how many, or `None` if
/// `out` is too short.
///
/// Why: QEMU's 82574 model (7.2) maps each transmit buffer through the
/// IOMMU in one piece and silently drops the frame when the buffer runs
/// into a page that is not adjacent in guest memory (its TX counters GPTC
/// and TPT skip it too). The 8254x and 82574 take a packet in any number of
/// data descriptors (SDM 3.3.3), so buffers that never cross a page cost
/// one more descriptor at most per buffer of 4 KiB or less, and nothing on
/// real hardware.
pub fn split_at_pages(segs: &[(u64, u16)], out: &mut [(u64, u16)]) -> Option<usize> {
    let mut n = 0;
    for &(iova, len) in segs {
        let (mut at, end) = (iova, iova + u64::from(len));
        while at < end {
            let piece = end.min((at / PAGE + 1) * PAGE) - at;
            // piece <= len, which fits in u16.
            *out.get_mut(n)? = (at, piece as u16);
            n += 1;
            at += piece;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pktkit_native::pool::{HugePages, OwnerId, Pool, PoolConfig};

    fn pool(name: &str) -> Pool {
        Pool::new(&PoolConfig {
            name: name.into(),
            buffers: 32,
            hugepages: HugePages::Never,
        })
        .unwrap()
    }

    #[test]
    fn partial_builds_a_chain() {
        let p = pool("e1000-chain");
        let mut first = p.alloc(OwnerId::POOL).unwrap();
        assert!(first.set_len(2048));
        first.data_mut().fill(1);
        let mut frame = Partial::new(first);
        for (fill, len) in [(2u8, 2048usize), (3, 100)] {
            let mut seg = p.alloc(OwnerId::POOL).unwrap();
            assert!(seg.set_len(len));
            seg.data_mut().fill(fill);
            assert!(frame.push(seg, len));
        }
        assert!(!frame.push(p.alloc(OwnerId::POOL).unwrap(), 5000));
        let m = frame.finish();
        assert_eq!(m.pkt_len(), 4196);
        assert_eq!(m.segments(), 3);
        let v = m.to_vec();
        assert!(v[..2048].iter().all(|&b| b == 1));
        assert!(v[2048..4096].iter().all(|&b| b == 2));
        assert!(v[4096..].iter().all(|&b| b == 3));

        let mut segs = [(0u64, 0u16); 4];
        assert_eq!(segments(&m, &mut segs), Some(3));
        assert_eq!(segs[0], (m.iova(), 2048));
        assert_eq!(segs[2].1, 100);
        assert_eq!(segments(&m, &mut segs[..2]), None);
        drop(m);
        assert_eq!(p.available(), 32);
    }

    #[test]
    fn buffers_are_split_at_page_boundaries() {
        let mut out = [(0u64, 0u16); 6];
        // Inside one page: unchanged.
        assert_eq!(split_at_pages(&[(0x1000, 1514)], &mut out), Some(1));
        assert_eq!(out[0], (0x1000, 1514));
        // Ending exactly at a boundary: unchanged.
        assert_eq!(split_at_pages(&[(0x1a00, 0x600)], &mut out), Some(1));
        assert_eq!(out[0], (0x1a00, 0x600));
        // Crossing one boundary, then a second buffer crossing another.
        let segs = [(0x1f00, 1514), (0x5800, 2048 + 0x100)];
        assert_eq!(split_at_pages(&segs, &mut out), Some(4));
        assert_eq!(
            out[..4],
            [
                (0x1f00, 0x100),
                (0x2000, 1514 - 0x100),
                (0x5800, 0x800),
                (0x6000, 0x100)
            ]
        );
        let total: u32 = out[..4].iter().map(|&(_, l)| u32::from(l)).sum();
        assert_eq!(total, 1514 + 2048 + 0x100);
        // A buffer longer than a page crosses twice.
        assert_eq!(split_at_pages(&[(0x3ff0, 0x1020)], &mut out), Some(3));
        assert_eq!(out[..3], [(0x3ff0, 0x10), (0x4000, 0x1000), (0x5000, 0x10)]);
        // Too many pieces for `out`.
        assert_eq!(split_at_pages(&segs, &mut out[..3]), None);
        assert_eq!(split_at_pages(&[], &mut out), Some(0));
    }
}
