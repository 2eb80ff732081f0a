//! A bounded single-producer single-consumer ring of packets, lock-free.
//!
//! One [`PairTxQueue`](crate::PairTxQueue) produces, one
//! [`PairRxQueue`](crate::PairRxQueue) consumes; each queue object is driven
//! by one thread at a time (the driver contract), so there is exactly one
//! producer and one consumer at any moment, possibly on different threads.
//!
//! # Indices and orderings
//!
//! `tail` (written by the producer only) and `head` (written by the consumer
//! only) count packets ever enqueued and dequeued; they wrap as `usize` and
//! `tail - head` is the fill. Slot `i & MASK` holds packet `i`.
//!
//! - The producer writes slots `tail..tail+n` and then publishes them with a
//!   `Release` store of `tail`; the consumer's `Acquire` load of `tail` makes
//!   the slot writes (and the packets' contents) visible before it reads them.
//! - Symmetrically the consumer reads slots `head..head+n` and then frees
//!   them with a `Release` store of `head`; the producer's `Acquire` load of
//!   `head` orders its reuse of those slots after the consumer's reads.
//!
//! The slots are `AtomicPtr`s accessed `Relaxed`: the index handshake above
//! supplies all the ordering, and on x86 and ARM a relaxed pointer access is a
//! plain load or store.
//!
//! # Sleeping (arm/disarm)
//!
//! The consumer sets `sleeping` and then re-checks the ring; the producer
//! publishes `tail` and then checks `sleeping`. Each side does its store, a
//! `SeqCst` fence, then its load (Dekker's pattern), so at least one of them
//! sees the other's store: either the consumer finds the new packets and does
//! not sleep, or the producer sees `sleeping` and signals the eventfd.
//!
//! # Open and closed
//!
//! `open` says a consumer exists. A producer marks itself `busy` for the
//! duration of an enqueue and checks `open` inside it; [`Ring::close`] clears
//! `open`, waits for a busy producer to finish, and then frees everything in
//! the ring. Both sides store then load with `SeqCst` (Dekker again), so
//! either the producer sees the ring closed and places nothing, or `close`
//! sees it busy and waits, draining afterwards what it placed. Nothing is
//! ever left in a closed ring.

use std::hint::spin_loop;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use pktkit_native::sys::mbuf;
use pktkit_native::{Mbuf, PacketBatch};

use crate::sys::EventFd;

/// Packets one ring holds.
pub const RING_SIZE: usize = 1024;
const MASK: usize = RING_SIZE - 1;
const _: () = assert!(RING_SIZE.is_power_of_two());

/// Keeps the producer's and the consumer's index on separate cache lines.
#[repr(align(64))]
struct Padded<T>(T);

/// A bounded SPSC ring of raw packets, with an eventfd to wake the consumer.
pub struct Ring {
    slots: Box<[AtomicPtr<mbuf>]>,
    /// Next index to fill; written by the producer only.
    tail: Padded<AtomicUsize>,
    /// Next index to read; written by the consumer only.
    head: Padded<AtomicUsize>,
    /// A consumer exists.
    open: AtomicBool,
    /// A producer is inside `enqueue`.
    busy: AtomicBool,
    /// The consumer is (about to be) asleep on `wake`.
    sleeping: AtomicBool,
    wake: EventFd,
}

impl Ring {
    /// An empty, closed ring.
    pub fn new() -> std::io::Result<Ring> {
        Ok(Ring {
            slots: (0..RING_SIZE)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            tail: Padded(AtomicUsize::new(0)),
            head: Padded(AtomicUsize::new(0)),
            open: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            wake: EventFd::new()?,
        })
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.tail
            .0
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.0.load(Ordering::Acquire))
    }

    /// Whether no packet is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the ring as read by a consumer.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Producer side: moves packets from the front of `batch` into the ring,
    /// calling `placed` on each before it goes. Returns how many moved (fewer
    /// when the ring fills), or `None`, moving nothing, if the ring is closed.
    #[inline]
    pub fn enqueue(&self, batch: &mut PacketBatch, mut placed: impl FnMut(&Mbuf)) -> Option<usize> {
        // Dekker with close(): announce, then look (see the module doc).
        self.busy.store(true, Ordering::SeqCst);
        if !self.open.load(Ordering::SeqCst) {
            self.busy.store(false, Ordering::Release);
            return None;
        }
        let tail = self.tail.0.load(Ordering::Relaxed);
        // Acquire: the consumer has finished reading the slots it released.
        let head = self.head.0.load(Ordering::Acquire);
        let free = RING_SIZE - tail.wrapping_sub(head);
        let n = free.min(batch.len());
        for (i, m) in batch.iter().take(n).enumerate() {
            placed(m);
            self.slots[tail.wrapping_add(i) & MASK].store(m.as_ptr(), Ordering::Relaxed);
        }
        // The ring owns them now; the batch forgets them.
        let _ = batch.take_front_raw(n);
        // Release: publishes the slot writes above to the consumer.
        self.tail.0.store(tail.wrapping_add(n), Ordering::Release);
        self.busy.store(false, Ordering::Release);
        if n > 0 {
            // Dekker with arm(): tail is stored above, now look at sleeping.
            fence(Ordering::SeqCst);
            if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel)
            {
                self.wake.signal();
            }
        }
        Some(n)
    }

    /// Consumer side: appends up to `batch.room()` packets, calling `each` on
    /// every packet first; returns how many.
    #[inline]
    pub fn dequeue(&self, batch: &mut PacketBatch, mut each: impl FnMut(&mut Mbuf)) -> usize {
        let head = self.head.0.load(Ordering::Relaxed);
        // Acquire: pairs with the producer's Release store of tail.
        let tail = self.tail.0.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(batch.room());
        for i in 0..n {
            let p = self.slots[head.wrapping_add(i) & MASK].load(Ordering::Relaxed);
            // SAFETY: slots head..tail hold packets the producer handed to the
            // ring (published by the Acquire above); each is taken out once,
            // as head moves past it below.
            let mut m = unsafe { Mbuf::from_raw(p) };
            each(&mut m);
            // Cannot fail: n <= batch.room().
            let _ = batch.push(m);
        }
        // Release: our slot reads happen before the producer reuses them.
        self.head.0.store(head.wrapping_add(n), Ordering::Release);
        n
    }

    /// Consumer side: asks to be woken through [`Ring::wait_fd`]; returns
    /// false (not armed) if packets are already waiting.
    pub fn arm(&self) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        // Dekker with enqueue(): sleeping is stored, now look at tail.
        fence(Ordering::SeqCst);
        if self.tail.0.load(Ordering::Relaxed) != self.head.0.load(Ordering::Relaxed) {
            self.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Consumer side: stops asking to be woken and consumes the wake-up;
    /// returns whether there was one.
    pub fn disarm(&self) -> bool {
        self.sleeping.store(false, Ordering::Relaxed);
        self.wake.drain()
    }

    /// The eventfd that becomes readable when an armed consumer should wake.
    pub fn wait_fd(&self) -> RawFd {
        self.wake.raw()
    }

    /// Consumer side, when it goes away: refuses further packets and frees
    /// the ones waiting.
    pub fn close(&self) {
        // Dekker with enqueue(): open is cleared, now look at busy.
        self.open.store(false, Ordering::SeqCst);
        while self.busy.load(Ordering::SeqCst) {
            spin_loop();
        }
        self.free_waiting();
        self.sleeping.store(false, Ordering::Relaxed);
        self.wake.drain();
    }

    fn free_waiting(&self) {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        for i in 0..tail.wrapping_sub(head) {
            let p = self.slots[head.wrapping_add(i) & MASK].load(Ordering::Relaxed);
            // SAFETY: as in dequeue(): a published packet, taken out once.
            drop(unsafe { Mbuf::from_raw(p) });
        }
        self.head.0.store(tail, Ordering::Release);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Nobody else holds the ring any more; free what was never read.
        self.free_waiting();
    }
}
