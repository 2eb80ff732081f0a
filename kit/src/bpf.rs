//! Packet taps (BPF's role): capture what an interface receives and sends,
//! with a filter expression, into classic pcap files.
//!
//! - [`Filter`] (from [`crate::filter`]) is a tcpdump-style expression;
//!   matching parses the frame with bounds checks and never panics.
//! - [`Tap`] is one capture: a filter, a direction, and a bounded queue of
//!   copies. An interface with no tap pays one relaxed load per burst; with a
//!   tap, matching frames are copied (up to the snap length) and the copy is
//!   dropped and counted when the reader falls behind, never blocking the
//!   packet path.
//! - [`PcapWriter`] writes the classic pcap format (magic a1b2c3d4, version
//!   2.4, link type 1 = Ethernet) that tcpdump, tshark and Wireshark read.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use pktkit_native::Mbuf;

pub use crate::filter::{Filter, FilterError, Side};
use crate::runtime::lock;

/// Which way a packet went through the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received.
    In,
    /// Transmitted.
    Out,
}

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Captured {
    /// When it was seen.
    pub time: SystemTime,
    /// Which way it went.
    pub dir: Direction,
    /// Its length on the wire.
    pub orig_len: usize,
    /// Its first `snaplen` bytes.
    pub data: Vec<u8>,
}

/// One capture on one interface.
pub struct Tap {
    filter: Filter,
    dir: Option<Direction>,
    snaplen: usize,
    limit: usize,
    queue: Mutex<VecDeque<Captured>>,
    captured: AtomicU64,
    dropped: AtomicU64,
}

impl Tap {
    /// A capture of frames matching `filter` (both directions unless `dir`),
    /// keeping `snaplen` bytes of each and at most `limit` frames unread.
    pub fn new(filter: Filter, dir: Option<Direction>, snaplen: usize, limit: usize) -> Tap {
        Tap {
            filter,
            dir,
            snaplen: snaplen.max(14),
            limit: limit.max(1),
            queue: Mutex::new(VecDeque::new()),
            captured: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Offers a packet to the tap (called from the packet path).
    pub fn offer(&self, dir: Direction, m: &Mbuf) {
        if self.dir.is_some_and(|d| d != dir) {
            return;
        }
        let head = m.data();
        // The filter needs the headers; they are in the first buffer for
        // every frame the stack builds, and a chain is flattened otherwise.
        let matched = if head.len() >= 64 || !m.is_chained() {
            self.filter.matches(head)
        } else {
            self.filter.matches(&m.to_vec())
        };
        if !matched {
            return;
        }
        let mut q = lock(&self.queue);
        if q.len() >= self.limit {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut data = vec![0u8; m.pkt_len().min(self.snaplen)];
        let n = m.copy_out(&mut data);
        data.truncate(n);
        q.push_back(Captured {
            time: SystemTime::now(),
            dir,
            orig_len: m.pkt_len(),
            data,
        });
        self.captured.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes up to `max` captured frames, oldest first.
    pub fn drain(&self, max: usize) -> Vec<Captured> {
        let mut q = lock(&self.queue);
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// Takes the oldest captured frames while their `cost` adds up to at
    /// most `budget` (at least none); a reader that must not overrun its
    /// own buffer asks for what fits.
    pub fn drain_within(
        &self,
        budget: usize,
        mut cost: impl FnMut(&Captured) -> usize,
    ) -> Vec<Captured> {
        let mut q = lock(&self.queue);
        let mut used = 0;
        let mut n = 0;
        for c in q.iter() {
            used += cost(c);
            if used > budget {
                break;
            }
            n += 1;
        }
        q.drain(..n).collect()
    }

    /// Frames waiting to be read.
    pub fn pending(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Frames captured and frames dropped because the reader fell behind.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.captured.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

/// Writes classic pcap files (microsecond timestamps, Ethernet).
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Writes one record.
    pub fn write(&mut self, c: &Captured) -> io::Result<()> {
        let t = c.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(t.as_secs() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&t.subsec_micros().to_le_bytes());
        h[8..12].copy_from_slice(&(c.data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(c.orig_len as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&c.data)
    }

    /// Flushes what was written so far (the file is then complete up to
    /// here).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_layout() {
        let mut w = PcapWriter::new(Vec::new(), 65535).unwrap();
        let c = Captured {
            time: UNIX_EPOCH,
            dir: Direction::In,
            orig_len: 100,
            data: vec![1, 2, 3],
        };
        w.write(&c).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 100);
    }
}
