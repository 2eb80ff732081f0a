//! The one system call the data path makes itself: reading an interrupt
//! eventfd (the harness created it non-blocking).

use std::os::fd::RawFd;

/// Reads and resets an eventfd's counter; 0 when nothing was signalled
/// (or the read failed: the caller only wants to know whether it fired).
pub fn drain_eventfd(fd: RawFd) -> u64 {
    let mut count = 0u64;
    // SAFETY: reads 8 bytes into a local u64; an invalid fd only makes the
    // call fail.
    let n = unsafe { libc::read(fd, (&raw mut count).cast(), std::mem::size_of::<u64>()) };
    if n == std::mem::size_of::<u64>() as isize {
        count
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_once() {
        // SAFETY: plain eventfd creation.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
        assert!(fd >= 0);
        let one = 3u64;
        // SAFETY: writes 8 bytes from a local to our own eventfd.
        let w = unsafe { libc::write(fd, (&raw const one).cast(), 8) };
        assert_eq!(w, 8);
        assert_eq!(drain_eventfd(fd), 3);
        assert_eq!(drain_eventfd(fd), 0);
        // SAFETY: closing the fd we created.
        unsafe { libc::close(fd) };
        assert_eq!(drain_eventfd(-1), 0);
    }
}
