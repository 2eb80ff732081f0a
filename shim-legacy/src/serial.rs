//! [`Serial`]: one device's state, entered by one thread at a time, without
//! a lock of its own.
//!
//! A legacy device is [`Concurrency::Serialized`](pktkit_native::Concurrency):
//! the runtime already holds the driver's `DriverLock` (kit/src/runtime.rs)
//! around every call into it (queues, service, control), so entries never
//! overlap there and a mutex in the shim would only be taken a second time.
//! The queues and the driver object are still safe Rust values that any
//! thread may hold, so the shim cannot take serialization on trust: an entry
//! claims the device with one atomic exchange and leaves it with a release
//! store (per burst, not per packet; no syscall, no poisoning). An entry
//! that finds the device busy, which only a caller that does not serialize
//! can cause (a test driving the queues from two threads), is counted
//! ([`Serial::overlaps`]) and waits until the device is free, so the driver
//! still never runs twice at once.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Spins before an overlapping entry starts yielding the CPU.
const SPINS: u32 = 64;

/// A value entered by one thread at a time (see the module doc).
pub struct Serial<T> {
    busy: AtomicBool,
    overlaps: AtomicU64,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a SerialGuard, and at most one
// guard exists at a time (the `busy` flag, taken with Acquire and released
// with Release, orders one holder's accesses before the next one's), so
// sharing a Serial between threads moves T between them, which T: Send allows.
unsafe impl<T: Send> Sync for Serial<T> {}

impl<T> Serial<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Serial<T> {
        Serial {
            busy: AtomicBool::new(false),
            overlaps: AtomicU64::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Enters: the guard gives the value and leaves on drop.
    #[inline]
    pub fn enter(&self) -> SerialGuard<'_, T> {
        // Acquire pairs with the Release in SerialGuard::drop: everything the
        // previous holder did is visible to this one.
        if self.busy.swap(true, Ordering::Acquire) {
            self.wait();
        }
        SerialGuard {
            serial: self,
            _value: PhantomData,
        }
    }

    /// The slow path: another thread is inside; count it and wait.
    #[cold]
    fn wait(&self) {
        self.overlaps.fetch_add(1, Ordering::Relaxed);
        let mut spins = 0u32;
        loop {
            while self.busy.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if !self.busy.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }

    /// Entries that found another thread inside (callers that did not
    /// serialize); 0 under the runtime.
    pub fn overlaps(&self) -> u64 {
        self.overlaps.load(Ordering::Relaxed)
    }
}

/// Proof of being inside a [`Serial`]; leaves it on drop.
///
/// The guard gives `&T` and `&mut T`, so it is `Sync` only when `T` is
/// (as std's `MutexGuard`): a guard shared between threads would give each
/// a `&T` at once. It cannot be shared when `T` is not `Sync`:
///
/// ```compile_fail,E0277
/// use std::cell::Cell;
/// use pktkit_shim::serial::Serial;
///
/// let s = Serial::new(Cell::new(0u32));
/// let g = s.enter();
/// std::thread::scope(|sc| {
///     // Two threads with &Cell at once: refused, the guard is !Sync.
///     sc.spawn(|| g.set(1));
///     g.set(2);
/// });
/// ```
///
/// The same with a `Sync` value compiles:
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use pktkit_shim::serial::Serial;
///
/// let s = Serial::new(AtomicU32::new(0));
/// let g = s.enter();
/// std::thread::scope(|sc| {
///     sc.spawn(|| g.fetch_add(1, Ordering::Relaxed));
///     g.fetch_add(1, Ordering::Relaxed);
/// });
/// assert_eq!(g.load(Ordering::Relaxed), 2);
/// ```
pub struct SerialGuard<'a, T> {
    serial: &'a Serial<T>,
    // The guard stands for `&'a mut T`: Sync only if T is Sync, never
    // covariant in T. Without it the guard (a `&Serial<T>`) would be Sync
    // whenever T: Send.
    _value: PhantomData<&'a mut T>,
}

impl<T> Deref for SerialGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see Serial's Sync), so no
        // mutable reference to the value exists elsewhere.
        unsafe { &*self.serial.value.get() }
    }
}

impl<T> DerefMut for SerialGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref, and &mut self makes this the only reference.
        unsafe { &mut *self.serial.value.get() }
    }
}

impl<T> Drop for SerialGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.serial.busy.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Four threads adding through a non-atomic read-modify-write: no
    /// increment is lost, so no two were ever inside at once.
    #[test]
    fn entries_never_overlap() {
        let s = Arc::new(Serial::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mut g = s.enter();
                        let v = *g;
                        std::hint::black_box(&v);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(*s.enter(), 80_000);
    }

    #[test]
    fn one_thread_never_counts_an_overlap() {
        let s = Serial::new(1u8);
        for _ in 0..100 {
            *s.enter() += 1;
        }
        assert_eq!(*s.enter(), 101);
        assert_eq!(s.overlaps(), 0);
    }
}
