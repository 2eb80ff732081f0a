//! A counting global allocator, for checking that the packet path never
//! touches the heap.
//!
//! [`CountingAlloc`] wraps [`System`] and counts every allocation (and the bytes
//! asked for) in relaxed atomics: one `fetch_add` per call, nothing else. The
//! `pktkit` binary installs it (`#[global_allocator]` must sit on a static of
//! the binary's own, hence a `const fn new` rather than a shared static):
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: pktkit::alloc_count::CountingAlloc = pktkit::alloc_count::CountingAlloc::new();
//! ```
//!
//! Benchmarks read
//! [`allocations`] before and after a steady-state run and report the
//! difference per packet. Without the allocator installed the counters stay 0.
//!
//! Reallocations count as one allocation of the new size: a `Vec` growing on
//! the packet path is exactly what the check is meant to catch.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations made since the process started, by any [`CountingAlloc`].
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes asked for by those allocations.
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Frees since the process started.
static FREES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Allocations made by this thread through a CountingAlloc, so that
    /// [`installed`] can tell "installed" from "called directly elsewhere".
    /// Const-initialised and without a destructor: touching it never
    /// allocates, so it is safe to use inside the allocator.
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// A [`GlobalAlloc`] that forwards to [`System`] and counts.
///
/// The counters are process-wide statics rather than fields, so
/// [`allocations`] needs no reference to the installed instance.
#[derive(Debug, Default)]
pub struct CountingAlloc {
    _private: (),
}

impl CountingAlloc {
    /// A counting allocator; install it with `#[global_allocator]`.
    pub const fn new() -> Self {
        CountingAlloc { _private: () }
    }
}

#[inline]
fn count(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    // Fails only while the thread is being torn down; the global counts stand.
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to System with the caller's arguments
// unchanged, so System's guarantees carry over; the counting touches only
// atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded contract (layout has non-zero size).
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded contract (ptr came from this allocator, i.e. System).
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Heap allocations (including reallocations) made so far by the process;
/// 0 if no [`CountingAlloc`] is installed.
#[inline]
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes asked for by those allocations.
#[inline]
pub fn allocated_bytes() -> u64 {
    BYTES.load(Ordering::Relaxed)
}

/// Heap frees made so far.
#[inline]
pub fn frees() -> u64 {
    FREES.load(Ordering::Relaxed)
}

/// Whether a [`CountingAlloc`] is installed as the global allocator: a heap
/// allocation made here is seen by this thread's count. (Calls made directly
/// on a `CountingAlloc` by other threads, as in tests, do not fool it.)
pub fn installed() -> bool {
    let before = THREAD_ALLOCS.try_with(Cell::get).unwrap_or(0);
    drop(std::hint::black_box(Box::new(0u8)));
    THREAD_ALLOCS.try_with(Cell::get).unwrap_or(0) > before
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the allocator directly (the test binary does not install it).
    #[test]
    fn counts_calls_and_bytes() {
        let counting = CountingAlloc::new();
        let before = (allocations(), allocated_bytes(), frees());
        let layout = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: a non-zero layout; the block is freed with the same layout
        // by the same allocator, and realloc gets the layout it was made with.
        unsafe {
            let p = counting.alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(0xa5, 100);
            let q = counting.realloc(p, layout, 300);
            assert!(!q.is_null());
            assert_eq!(*q.add(99), 0xa5);
            counting.dealloc(q, Layout::from_size_align(300, 8).unwrap());
        }
        // Other tests run in parallel threads but no CountingAlloc is
        // installed in the test binary, so the deltas are exactly ours.
        assert_eq!(allocations() - before.0, 2);
        assert_eq!(allocated_bytes() - before.1, 400);
        assert_eq!(frees() - before.2, 1);
        // Not the global allocator of the test binary.
        assert!(!installed());
    }
}
