//! The driver's only syscalls: reading and polling the interrupt eventfds
//! that VFIO signals (the descriptors themselves belong to the PCI device).

use std::os::fd::RawFd;

/// Consumes the count of an eventfd (non-blocking); returns it, 0 when none
/// was pending or the read failed.
pub fn eventfd_take(fd: RawFd) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64; the descriptor is a
    // non-blocking eventfd, so an empty one returns EAGAIN at once.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), std::mem::size_of::<u64>()) };
    if n == std::mem::size_of::<u64>() as isize {
        v
    } else {
        0
    }
}
