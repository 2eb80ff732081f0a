//! pcq(9): the bounded producer/consumer queue of `<sys/pcq.h>`.
//!
//! Many threads put, one thread at a time gets, nobody takes a lock: each
//! slot carries a sequence number that says whose turn it is. A producer
//! claims the tail position with a compare-and-swap when the slot there is
//! free for that position (sequence == position), stores the item and
//! publishes it (sequence = position + 1). The consumer takes the slot at
//! the head once it is published, and frees it for the producer one lap
//! later (sequence = position + capacity). `pcq_put` on a full queue fails
//! at once; `pcq_get` on an empty one returns NULL.
//!
//! Several consumers would be safe too (the head is claimed the same way),
//! but pcq(9) promises one, and `pcq_peek` relies on that.

use std::cell::UnsafeCell;
use std::ffi::{c_uint, c_void};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keeps the producers' and the consumer's positions on separate lines.
#[repr(align(64))]
struct Padded(AtomicUsize);

struct Slot {
    seq: AtomicUsize,
    item: UnsafeCell<*mut c_void>,
}

/// A `pcq_t`.
pub struct Pcq {
    tail: Padded,
    head: Padded,
    slots: Box<[Slot]>,
}

// SAFETY: an item is written by the one producer that claimed its slot and
// read by the consumer only after the sequence published it (release /
// acquire on `seq`); the positions are atomics.
unsafe impl Sync for Pcq {}
// SAFETY: as above; the items are plain pointers the driver owns.
unsafe impl Send for Pcq {}

impl Pcq {
    /// A queue of `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Pcq {
        let capacity = capacity.max(1);
        Pcq {
            tail: Padded(AtomicUsize::new(0)),
            head: Padded(AtomicUsize::new(0)),
            slots: (0..capacity)
                .map(|i| Slot {
                    seq: AtomicUsize::new(i),
                    item: UnsafeCell::new(ptr::null_mut()),
                })
                .collect(),
        }
    }

    /// How many items it holds at the most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Adds `item` at the tail; false when the queue is full.
    pub fn put(&self, item: *mut c_void) -> bool {
        let cap = self.slots.len();
        let mut pos = self.tail.0.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos % cap];
            let seq = slot.seq.load(Ordering::Acquire);
            // Wrapping difference: 0 = free for this lap, < 0 = full.
            let dif = seq.wrapping_sub(pos) as isize;
            if dif == 0 {
                match self.tail.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS gave this thread the slot of
                        // position `pos`; nobody else touches the item until
                        // the sequence below publishes it.
                        unsafe { *slot.item.get() = item };
                        slot.seq.store(pos.wrapping_add(1), Ordering::Release);
                        return true;
                    }
                    Err(now) => pos = now,
                }
            } else if dif < 0 {
                return false;
            } else {
                pos = self.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the item at the head; null when the queue is empty.
    pub fn get(&self) -> *mut c_void {
        let cap = self.slots.len();
        let mut pos = self.head.0.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos % cap];
            let seq = slot.seq.load(Ordering::Acquire);
            let dif = seq.wrapping_sub(pos.wrapping_add(1)) as isize;
            if dif == 0 {
                match self.head.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the sequence published the item (acquire
                        // above) and the CAS made it this thread's.
                        let item = unsafe { *slot.item.get() };
                        slot.seq.store(pos.wrapping_add(cap), Ordering::Release);
                        return item;
                    }
                    Err(now) => pos = now,
                }
            } else if dif < 0 {
                return ptr::null_mut();
            } else {
                pos = self.head.0.load(Ordering::Relaxed);
            }
        }
    }

    /// The item at the head without taking it; null when empty. Only the
    /// consumer may call this (it alone moves the head).
    pub fn peek(&self) -> *mut c_void {
        let pos = self.head.0.load(Ordering::Relaxed);
        let slot = &self.slots[pos % self.slots.len()];
        if slot.seq.load(Ordering::Acquire) == pos.wrapping_add(1) {
            // SAFETY: published (acquire above); the consumer, the only one
            // who could take it, is the caller.
            unsafe { *slot.item.get() }
        } else {
            ptr::null_mut()
        }
    }
}

/// `pcq_create(9)`: a queue of `maxlen` items.
#[no_mangle]
pub extern "C" fn pcq_create(maxlen: usize, _flags: c_uint) -> *mut Pcq {
    Box::into_raw(Box::new(Pcq::new(maxlen)))
}

/// `pcq_destroy(9)`. Items still queued are the caller's to have taken
/// off first, as in NetBSD.
///
/// # Safety
/// `q` must come from [`pcq_create`] and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pcq_destroy(q: *mut Pcq) {
    if !q.is_null() {
        // SAFETY: forwarded contract.
        drop(unsafe { Box::from_raw(q) });
    }
}

/// `pcq_put(9)`: false when full.
///
/// # Safety
/// `q` must be a live queue.
#[no_mangle]
pub unsafe extern "C" fn pcq_put(q: *mut Pcq, item: *mut c_void) -> bool {
    // SAFETY: forwarded contract.
    unsafe { &*q }.put(item)
}

/// `pcq_get(9)`: the head item, or NULL.
///
/// # Safety
/// `q` must be a live queue; one consumer at a time.
#[no_mangle]
pub unsafe extern "C" fn pcq_get(q: *mut Pcq) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { &*q }.get()
}

/// `pcq_peek(9)`: the head item without taking it, or NULL.
///
/// # Safety
/// `q` must be a live queue; called by its consumer.
#[no_mangle]
pub unsafe extern "C" fn pcq_peek(q: *mut Pcq) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { &*q }.peek()
}

/// `pcq_maxitems(9)`.
///
/// # Safety
/// `q` must be a live queue.
#[no_mangle]
pub unsafe extern "C" fn pcq_maxitems(q: *mut Pcq) -> usize {
    // SAFETY: forwarded contract.
    unsafe { &*q }.capacity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn item(n: usize) -> *mut c_void {
        n as *mut c_void
    }

    #[test]
    fn fifo_full_and_empty() {
        let q = Pcq::new(3);
        assert!(q.get().is_null());
        assert!(q.peek().is_null());
        for n in 1..=3 {
            assert!(q.put(item(n)));
        }
        assert!(!q.put(item(4)), "a full queue refuses");
        assert_eq!(q.peek(), item(1));
        assert_eq!(q.get(), item(1));
        assert!(q.put(item(4)), "room again after a get");
        let got: Vec<usize> = (0..3).map(|_| q.get() as usize).collect();
        assert_eq!(got, [2, 3, 4]);
        assert!(q.get().is_null());
    }

    #[test]
    fn many_producers_one_consumer_lose_and_repeat_nothing() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 50_000;
        let q = Arc::new(Pcq::new(64));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        // Items are 1-based so that none is NULL.
                        let v = p * EACH + i + 1;
                        while !q.put(item(v)) {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut seen = vec![false; PRODUCERS * EACH + 1];
        let mut last = [0usize; PRODUCERS];
        let mut got = 0;
        while got < PRODUCERS * EACH {
            let v = q.get() as usize;
            if v == 0 {
                std::thread::yield_now();
                continue;
            }
            assert!(!seen[v], "{v} twice");
            seen[v] = true;
            // Each producer's items come out in the order it put them.
            let p = (v - 1) / EACH;
            assert!(v > last[p], "producer {p}: {v} after {}", last[p]);
            last[p] = v;
            got += 1;
        }
        for t in producers {
            t.join().unwrap();
        }
        assert!(q.get().is_null());
    }
}
