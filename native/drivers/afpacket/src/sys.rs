//! Every syscall the afpacket driver makes, and the shared ring mapping.
//!
//! The `tpacket` structures come from the `libc` crate (its bindings of
//! `<linux/if_packet.h>`); the layout tests at the bottom pin the offsets
//! this driver relies on against the kernel's documented layout
//! (Documentation/networking/packet_mmap.rst).

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

/// Wraps a fresh descriptor returned by a syscall, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The index of interface `name`, or `None` if there is no such interface.
pub fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated string that lives across the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
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

/// The hardware address of `name`.
pub fn if_hwaddr(sock: RawFd, name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq(name);
    // SAFETY: SIOCGIFHWADDR fills one ifreq on our stack.
    if unsafe { libc::ioctl(sock, libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFHWADDR set the hwaddr member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

/// A non-blocking AF_PACKET raw socket that receives nothing until bound.
pub fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; protocol 0 = no traffic until bind.
    owned(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })
}

/// `setsockopt(fd, SOL_PACKET, opt, &val)`.
pub fn set_packet_opt<T>(fd: RawFd, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: passes a pointer to a live T and its exact size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            opt,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kernel receive statistics since the last call (`PACKET_STATISTICS`
/// resets them): (packets, drops).
pub fn packet_stats(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: plain old data; all-zero is valid.
    let mut st: libc::tpacket_stats_v3 = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: the kernel writes at most len bytes into st.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats_v3).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.tp_packets as u64, st.tp_drops as u64))
}

/// Adds or drops a `PACKET_MR_*` membership on interface `ifindex`.
pub fn membership(
    fd: RawFd,
    ifindex: u32,
    kind: libc::c_int,
    addr: Option<[u8; 6]>,
    add: bool,
) -> io::Result<()> {
    // SAFETY: plain old data; all-zero is valid.
    let mut mr: libc::packet_mreq = unsafe { zeroed() };
    mr.mr_ifindex = ifindex as libc::c_int;
    mr.mr_type = kind as libc::c_ushort;
    if let Some(a) = addr {
        mr.mr_alen = 6;
        mr.mr_address[..6].copy_from_slice(&a);
    }
    let opt = if add {
        libc::PACKET_ADD_MEMBERSHIP
    } else {
        libc::PACKET_DROP_MEMBERSHIP
    };
    set_packet_opt(fd, opt, &mr)
}

/// Binds the socket to all protocols on interface `ifindex`.
pub fn bind_all(fd: RawFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: plain old data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: binds with a sockaddr_ll that lives across the call.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel to transmit every frame marked `TP_STATUS_SEND_REQUEST`
/// in the tx ring, without waiting for completion.
pub fn kick_tx(fd: RawFd) -> io::Result<()> {
    // SAFETY: a zero-length send with no buffer and no address is the
    // documented way to flush a PACKET_TX_RING.
    let r = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The rx and tx rings of a packet socket, mapped into our address space.
///
/// The kernel and we share this memory; who may touch a block (rx) or frame
/// (tx) is decided by its status word, which is read and written only
/// through [`Mapping::status`] with acquire/release ordering.
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; concurrent access to it is
// governed by the ring status protocol (each block or frame has one user-side
// owner: the rx queue or the tx queue).
unsafe impl Send for Mapping {}
// SAFETY: as for Send.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of the rings of packet socket `fd`.
    pub fn new(fd: RawFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of the socket's rings; no existing
        // memory is touched, and the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast::<u8>())
            .map(|base| Mapping { base, len })
            .ok_or_else(|| io::Error::other("mmap returned NULL"))
    }

    /// Whether `len` bytes at `off` lie inside the mapping.
    #[inline]
    pub fn contains(&self, off: usize, len: usize) -> bool {
        off.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// The status word at `off` (4-byte aligned, inside the mapping), or
    /// `None` if out of range.
    #[inline]
    pub fn status(&self, off: usize) -> Option<&AtomicU32> {
        if !self.contains(off, 4) || off & 3 != 0 {
            return None;
        }
        // SAFETY: in range and aligned (the mapping is page aligned); the
        // kernel accesses this word concurrently, which is why it is atomic.
        Some(unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU32>() })
    }

    /// Copies the `T` at `off` out of the mapping.
    ///
    /// # Safety
    /// `T` must be plain old data, and the bytes must belong to a block or
    /// frame the caller owns (its status says so), so the kernel is not
    /// writing them.
    #[inline]
    pub unsafe fn read<T: Copy>(&self, off: usize) -> Option<T> {
        if !self.contains(off, size_of::<T>()) {
            return None;
        }
        // SAFETY: in range; the caller guarantees ownership and that T is POD.
        Some(unsafe { self.base.as_ptr().add(off).cast::<T>().read_unaligned() })
    }

    /// The bytes at `off..off + len`.
    ///
    /// # Safety
    /// As for [`Mapping::read`]: the caller owns the block or frame, and
    /// keeps owning it while the slice lives.
    #[inline]
    pub unsafe fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        if !self.contains(off, len) {
            return None;
        }
        // SAFETY: in range; the caller guarantees nobody writes meanwhile.
        Some(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(off), len) })
    }

    /// Writes `src` at `off`.
    ///
    /// # Safety
    /// The caller must own the frame containing the range (its status says
    /// so), so neither the kernel nor another queue touches it.
    #[inline]
    pub unsafe fn write(&self, off: usize, src: &[u8]) -> bool {
        if !self.contains(off, src.len()) {
            return false;
        }
        // SAFETY: in range, and the caller owns the destination.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(off), src.len())
        };
        true
    }

    /// Writes the `T` at `off`.
    ///
    /// # Safety
    /// As for [`Mapping::write`]; `T` must be plain old data.
    #[inline]
    pub unsafe fn write_val<T: Copy>(&self, off: usize, val: T) -> bool {
        if !self.contains(off, size_of::<T>()) {
            return false;
        }
        // SAFETY: in range, and the caller owns the destination.
        unsafe { self.base.as_ptr().add(off).cast::<T>().write_unaligned(val) };
        true
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly what mmap returned; the queues that
        // used the mapping hold it through an Arc, so none is left.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    /// The tpacket layouts as documented by the kernel (if_packet.h).
    #[test]
    fn tpacket_layout_is_pinned() {
        assert_eq!(size_of::<libc::tpacket3_hdr>(), 48);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_next_offset), 0);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_snaplen), 12);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_len), 16);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_status), 20);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_mac), 24);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_net), 26);
        assert_eq!(offset_of!(libc::tpacket3_hdr, hv1), 28);
        assert_eq!(offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci), 4);
        assert_eq!(offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid), 8);
        assert_eq!(offset_of!(libc::tpacket_block_desc, hdr), 8);
        assert_eq!(offset_of!(libc::tpacket_hdr_v1, block_status), 0);
        assert_eq!(offset_of!(libc::tpacket_hdr_v1, num_pkts), 4);
        assert_eq!(offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt), 8);
        assert_eq!(size_of::<libc::tpacket_hdr_v1>(), 40);
        assert_eq!(size_of::<libc::sockaddr_ll>(), 20);
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_pkttype), 10);
        assert_eq!(libc::TPACKET3_HDRLEN, 68);
        assert_eq!(size_of::<libc::tpacket_req3>(), 28);
    }
}
