//! Every syscall the tap driver makes: the TUN/TAP character device, the
//! interface ioctls (flags, MTU) and the rtnetlink link-change socket. The
//! rest of the crate is safe code over these wrappers.

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Wraps a fresh descriptor returned by a syscall, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` naming `name` (truncated to IFNAMSIZ - 1 bytes).
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    req
}

/// Opens `/dev/net/tun` non-blocking and attaches it to the TAP interface
/// `name` (created if missing; a `%d` in it lets the kernel pick the unit).
/// Returns the descriptor and the interface's real name.
pub fn open_tap(name: &str) -> io::Result<(OwnedFd, String)> {
    // SAFETY: a NUL-terminated literal path; the result is checked.
    let fd = owned(unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which lives on our stack.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel NUL-terminates ifr_name (IFNAMSIZ includes the NUL).
    let real = unsafe { CStr::from_ptr(req.ifr_name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Ok((fd, real))
}

/// A datagram socket for interface ioctls.
pub fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the result is checked.
    owned(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })
}

/// The interface flags (`IFF_*`) of `name`.
pub fn if_flags(sock: RawFd, name: &str) -> io::Result<u32> {
    let mut req = ifreq(name);
    // SAFETY: SIOCGIFFLAGS fills one ifreq on our stack.
    if unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS set the flags member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_flags } as u16 as u32)
}

/// Sets the MTU of `name`.
pub fn set_if_mtu(sock: RawFd, name: &str, mtu: u32) -> io::Result<()> {
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
    // SAFETY: SIOCSIFMTU reads one ifreq on our stack.
    if unsafe { libc::ioctl(sock, libc::SIOCSIFMTU, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking rtnetlink socket subscribed to link changes (RTMGRP_LINK).
pub fn link_monitor() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the result is checked.
    let fd = owned(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    })?;
    // SAFETY: sockaddr_nl is plain old data; all-zero is valid.
    let mut addr: libc::sockaddr_nl = unsafe { zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = libc::RTMGRP_LINK as u32;
    // SAFETY: binds with a sockaddr_nl that lives across the call.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Reads and discards every pending message of a non-blocking socket;
/// returns how many reads returned data (an overrun, ENOBUFS, counts too: the
/// caller re-reads the state anyway).
pub fn drain(fd: RawFd) -> usize {
    let mut buf = [0u8; 8192];
    let mut n = 0;
    loop {
        // SAFETY: reads into a stack buffer of the size given.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if r > 0 {
            n += 1;
            continue;
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOBUFS) {
            n += 1;
            continue;
        }
        return n;
    }
}

/// `readv` on a non-blocking descriptor.
///
/// # Safety
/// Every iovec must describe writable memory the caller owns for the call.
pub unsafe fn readv(fd: RawFd, iov: &[libc::iovec]) -> io::Result<usize> {
    // SAFETY: forwarded contract; the count matches the slice.
    let r = unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// `writev` on a non-blocking descriptor.
///
/// # Safety
/// Every iovec must describe readable memory valid for the call.
pub unsafe fn writev(fd: RawFd, iov: &[libc::iovec]) -> io::Result<usize> {
    // SAFETY: forwarded contract; the count matches the slice.
    let r = unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// Whether `fd` is readable right now.
pub fn readable(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on our stack; timeout 0 never blocks.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    r == 1 && pfd.revents & libc::POLLIN != 0
}

/// Random bytes from the kernel.
pub fn random_bytes(out: &mut [u8]) -> io::Result<()> {
    // SAFETY: writes at most out.len() bytes into out.
    let r = unsafe { libc::getrandom(out.as_mut_ptr().cast(), out.len(), 0) };
    if r != out.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
