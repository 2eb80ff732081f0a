//! The two system calls the suite makes itself: waiting on a queue's wait
//! fd (`poll`) and reading the calling thread's CPU time (`getrusage`).
//! Everything else goes through the driver contract.

use std::os::fd::RawFd;
use std::time::Duration;

/// Waits up to `timeout` for `fd` to become readable. `Ok(true)`: readable;
/// `Ok(false)`: the time ran out.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> std::io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: `p` is one live pollfd and we pass a count of 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// CPU time (user + system) the calling thread has used. The suite drives
/// the devices from one thread, as a runtime worker would, so this is the
/// worker's CPU time whatever else runs in the process (e.g. other tests).
pub fn thread_cpu_time() -> std::io::Result<Duration> {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live rusage for the call to write.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_times_out_and_cpu_time_grows() {
        let fds = {
            let mut f = [0; 2];
            // SAFETY: `f` has room for the two descriptors pipe writes.
            assert_eq!(unsafe { libc::pipe(f.as_mut_ptr()) }, 0);
            f
        };
        assert!(!wait_readable(fds[0], Duration::from_millis(20)).unwrap());
        // SAFETY: writes one byte from a live buffer to our pipe.
        assert_eq!(unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) }, 1);
        assert!(wait_readable(fds[0], Duration::from_millis(20)).unwrap());
        for fd in fds {
            // SAFETY: closes descriptors this test opened.
            unsafe { libc::close(fd) };
        }
        let t0 = thread_cpu_time().unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_time().unwrap() > t0);
    }
}
