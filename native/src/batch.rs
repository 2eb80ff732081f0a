//! The burst of packets that rx and tx move.
//!
//! A [`PacketBatch`] is a fixed-capacity FIFO of owned packets living on the
//! caller's stack: receive appends at the back, transmit consumes from the
//! front, and whatever a driver did not take stays in the batch for the
//! caller to retry or drop. Nothing here allocates.

use std::fmt;

use crate::mbuf::{free_raw_bulk, Mbuf};
use crate::sys::mbuf;

/// Most packets one batch holds.
pub const BATCH_MAX: usize = 256;

/// A fixed-capacity FIFO of owned packets.
///
/// A batch may be given a limit below [`BATCH_MAX`] ([`PacketBatch::with_limit`]):
/// [`PacketBatch::room`] then counts up to the limit, so a receive asks the
/// driver for at most that many packets (the burst size).
pub struct PacketBatch {
    items: [*mut mbuf; BATCH_MAX],
    head: usize,
    tail: usize,
    limit: usize,
}

// SAFETY: the batch owns its packets exclusively, like a Vec<Mbuf>.
unsafe impl Send for PacketBatch {}

impl Default for PacketBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBatch {
    /// An empty batch.
    pub const fn new() -> Self {
        Self::with_limit(BATCH_MAX)
    }

    /// An empty batch holding at most `limit` packets (clamped to
    /// `1..=BATCH_MAX`).
    pub const fn with_limit(limit: usize) -> Self {
        PacketBatch {
            items: [std::ptr::null_mut(); BATCH_MAX],
            head: 0,
            tail: 0,
            limit: clamp_limit(limit),
        }
    }

    /// Most packets the batch holds.
    #[inline]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit (clamped to `1..=BATCH_MAX`); packets already held
    /// beyond it stay, and [`PacketBatch::room`] is 0 until they are taken.
    #[inline]
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = clamp_limit(limit);
    }

    /// Packets held.
    #[inline]
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    /// Whether no packet is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// How many more packets fit (up to the limit).
    #[inline]
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.len())
    }

    #[inline]
    fn compact(&mut self) {
        if self.head != 0 {
            self.items.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
    }

    /// Appends a packet; gives it back if the batch is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.room() == 0 {
            return Err(m);
        }
        // SAFETY: room checked; ownership moves into the batch.
        unsafe { self.push_raw(m.into_raw()) };
        Ok(())
    }

    /// Lets `fill` write up to [`PacketBatch::room`] raw packets straight
    /// into the batch's free slots (no staging array), e.g.
    /// `Pool::alloc_raw_bulk`; returns how many were added.
    ///
    /// # Safety
    /// `fill` must return how many leading slots it wrote, each with a live
    /// packet that the batch then owns and nobody else references.
    #[inline]
    pub unsafe fn fill_raw(&mut self, fill: impl FnOnce(&mut [*mut mbuf]) -> usize) -> usize {
        let room = self.room();
        if self.tail + room > BATCH_MAX {
            self.compact();
        }
        let start = self.tail;
        let n = fill(&mut self.items[start..start + room]).min(room);
        self.tail += n;
        n
    }

    /// Appends a raw packet.
    ///
    /// # Safety
    /// The batch must have room, and `m` must be a live packet the caller
    /// owns; ownership moves into the batch.
    #[inline]
    pub unsafe fn push_raw(&mut self, m: *mut mbuf) {
        if self.tail == BATCH_MAX {
            self.compact();
        }
        self.items[self.tail] = m;
        self.tail += 1;
    }

    /// Takes the first packet.
    #[inline]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        // SAFETY: the raw packet's ownership moves to the returned Mbuf.
        self.pop_front_raw().map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Takes the first packet as a raw pointer; the caller owns it.
    #[inline]
    pub fn pop_front_raw(&mut self) -> Option<*mut mbuf> {
        if self.is_empty() {
            return None;
        }
        let m = self.items[self.head];
        self.head += 1;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        Some(m)
    }

    /// The first packet, still in the batch.
    pub fn front(&self) -> Option<&Mbuf> {
        if self.is_empty() {
            return None;
        }
        // SAFETY: Mbuf is a transparent NonNull wrapper over the pointer, and
        // the slot holds a live packet the batch owns; the borrow of self
        // keeps it from being freed or moved out.
        Some(unsafe { &*(&self.items[self.head] as *const *mut mbuf).cast::<Mbuf>() })
    }

    /// The raw packets held, front first (still owned by the batch).
    #[inline]
    pub fn as_raw(&self) -> &[*mut mbuf] {
        &self.items[self.head..self.tail]
    }

    /// Removes the first `n` packets and gives their ownership to the caller
    /// as raw pointers (e.g. a driver that placed them on its ring).
    #[inline]
    pub fn take_front_raw(&mut self, n: usize) -> &[*mut mbuf] {
        let n = n.min(self.len());
        let start = self.head;
        self.head += n;
        let taken = &self.items[start..start + n];
        if self.head == self.tail {
            // Keep the taken slice valid: reset indices lazily on next push.
            self.tail = self.head;
        }
        taken
    }

    /// Iterates over the packets, front first.
    pub fn iter(&self) -> impl Iterator<Item = &Mbuf> {
        // SAFETY: as in front().
        self.as_raw()
            .iter()
            .map(|p| unsafe { &*(p as *const *mut mbuf).cast::<Mbuf>() })
    }

    /// Iterates mutably over the packets, front first.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Mbuf> {
        let (h, t) = (self.head, self.tail);
        // SAFETY: Mbuf is a transparent wrapper over the pointer; each slot
        // holds a distinct live packet owned by the batch, and the mutable
        // borrow of self keeps them from being moved or freed meanwhile.
        self.items[h..t]
            .iter_mut()
            .map(|p| unsafe { &mut *(p as *mut *mut mbuf).cast::<Mbuf>() })
    }

    /// Iterates mutably over the packets from position `from` (counted from
    /// the front) to the back, e.g. the ones a receive just appended.
    pub fn iter_mut_from(&mut self, from: usize) -> impl Iterator<Item = &mut Mbuf> {
        self.iter_mut().skip(from)
    }

    /// Keeps, from position `from` (counted from the front) on, only the
    /// packets `keep` accepts, in order; frees the others and returns how
    /// many it freed (a receive filter).
    pub fn retain_from(&mut self, from: usize, mut keep: impl FnMut(&Mbuf) -> bool) -> usize {
        let start = self.head + from.min(self.len());
        let mut w = start;
        for r in start..self.tail {
            let p = self.items[r];
            // SAFETY: Mbuf is a transparent wrapper over the pointer and the
            // slot holds a live packet the batch owns.
            let m = unsafe { &*(&p as *const *mut mbuf).cast::<Mbuf>() };
            if keep(m) {
                self.items[w] = p;
                w += 1;
            } else {
                // SAFETY: the packet leaves the batch here and is freed once.
                drop(unsafe { Mbuf::from_raw(p) });
            }
        }
        let dropped = self.tail - w;
        self.tail = w;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        dropped
    }

    /// Frees every packet held, in bulk.
    #[inline]
    pub fn free_all(&mut self) {
        // SAFETY: the batch owns these packets and forgets them right after.
        unsafe { free_raw_bulk(self.as_raw()) };
        self.head = 0;
        self.tail = 0;
    }

    /// Frees the first `n` packets in bulk (a transmit that consumed them).
    #[inline]
    pub fn free_front(&mut self, n: usize) {
        let taken = self.take_front_raw(n);
        // SAFETY: ownership of `taken` passed to us and is released here.
        unsafe { free_raw_bulk(taken) };
    }
}

const fn clamp_limit(limit: usize) -> usize {
    if limit == 0 {
        1
    } else if limit > BATCH_MAX {
        BATCH_MAX
    } else {
        limit
    }
}

impl Drop for PacketBatch {
    fn drop(&mut self) {
        self.free_all();
    }
}

impl fmt::Debug for PacketBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBatch")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{HugePages, OwnerId, Pool, PoolConfig};

    #[test]
    fn fifo_and_free() {
        let p = Pool::new(&PoolConfig {
            name: "b-fifo".into(),
            buffers: 600,
            hugepages: HugePages::Never,
        })
        .unwrap();
        let mut b = PacketBatch::new();
        assert_eq!(p.alloc_batch(OwnerId::POOL, &mut b, 300), BATCH_MAX);
        assert_eq!(b.len(), BATCH_MAX);
        let m = p.alloc(OwnerId::POOL).unwrap();
        assert!(b.push(m).is_err());
        let first = b.as_raw()[0];
        let got = b.pop_front().unwrap();
        assert_eq!(got.as_ptr(), first);
        drop(got);
        b.free_front(10);
        assert_eq!(b.len(), BATCH_MAX - 11);
        assert_eq!(b.iter().count(), BATCH_MAX - 11);
        drop(b);
        assert_eq!(p.available(), 600);
    }

    #[test]
    fn limit_bounds_room() {
        let p = Pool::new(&PoolConfig {
            name: "b-limit".into(),
            buffers: 64,
            hugepages: HugePages::Never,
        })
        .unwrap();
        let mut b = PacketBatch::with_limit(32);
        assert_eq!(b.room(), 32);
        assert_eq!(p.alloc_batch(OwnerId::POOL, &mut b, 64), 32);
        assert_eq!(b.room(), 0);
        assert!(b.push(p.alloc(OwnerId::POOL).unwrap()).is_err());
        b.set_limit(16);
        assert_eq!((b.len(), b.room()), (32, 0));
        b.free_front(20);
        assert_eq!(b.room(), 4);
        b.set_limit(0);
        assert_eq!(b.limit(), 1);
        b.set_limit(10_000);
        assert_eq!(b.limit(), BATCH_MAX);
        drop(b);
        assert_eq!(p.available(), 64);
    }
}
