//! mbuf(9) over pktkit's pools: the functions behind `<sys/mbuf.h>`.
//!
//! Allocation takes from the pool of the device whose code is running
//! ([`crate::ctx::current`]) and never waits; freeing returns each buffer to
//! the pool it came from. Out-of-range offsets never panic: they copy or
//! trim what exists and log, as the panic contract of the stack requires
//! (NetBSD would panic).

use std::ffi::{c_int, c_void};
use std::ptr;

use pktkit_native::mbuf::{DATAROOM, HEADROOM};
use pktkit_native::sys::{mbuf, MT_DATA, M_PKTHDR};
use pktkit_native::Mbuf;

use crate::ctx;

/// Allocates one buffer for the current device, with `M_PKTHDR` set.
#[inline]
fn alloc() -> *mut mbuf {
    ctx::alloc_hdr()
}

/// `m_gethdr(9)`: a packet header buffer with its storage.
#[no_mangle]
pub extern "C" fn m_gethdr(_how: c_int, ty: c_int) -> *mut mbuf {
    let m = alloc();
    if !m.is_null() {
        // SAFETY: m is a fresh buffer we own.
        unsafe { (*m).m_hdr.mh_type = ty as u16 };
    }
    m
}

/// `m_get(9)`: a buffer without packet header.
#[no_mangle]
pub extern "C" fn m_get(_how: c_int, ty: c_int) -> *mut mbuf {
    let m = alloc();
    if !m.is_null() {
        // SAFETY: m is a fresh buffer we own.
        unsafe {
            (*m).m_hdr.mh_type = ty as u16;
            (*m).m_hdr.mh_flags &= !M_PKTHDR;
        }
    }
    m
}

/// `MCLGET`: every pktkit buffer already has its cluster (M_EXT is set).
#[no_mangle]
pub extern "C" fn m_clget(_m: *mut mbuf, _how: c_int) {}

/// `m_freem(9)`: frees a whole chain (NULL is allowed).
///
/// # Safety
/// `m` must be null or a chain the caller owns.
#[no_mangle]
pub unsafe extern "C" fn m_freem(m: *mut mbuf) {
    if !m.is_null() {
        // SAFETY: forwarded contract.
        unsafe { ctx::free_pkt(m) };
    }
}

/// `m_free(9)`: frees one buffer, returns the next of its chain.
///
/// # Safety
/// `m` must be a buffer the caller owns.
#[no_mangle]
pub unsafe extern "C" fn m_free(m: *mut mbuf) -> *mut mbuf {
    if m.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: forwarded contract; unlinked first so only m is freed.
    unsafe {
        let next = (*m).m_hdr.mh_next;
        (*m).m_hdr.mh_next = ptr::null_mut();
        drop(Mbuf::from_raw(m));
        next
    }
}

/// `m_length(9)`: bytes in the chain.
///
/// # Safety
/// `m` must be a live chain.
#[no_mangle]
pub unsafe extern "C" fn m_length(m: *const mbuf) -> c_int {
    let mut n = 0;
    let mut p = m;
    while !p.is_null() {
        // SAFETY: forwarded contract.
        unsafe {
            n += (*p).m_hdr.mh_len;
            p = (*p).m_hdr.mh_next;
        }
    }
    n
}

/// `m_copydata(9)`: copies `len` bytes from offset `off` of the chain.
/// Bytes beyond the chain are zero-filled and logged.
///
/// # Safety
/// `m` must be a live chain and `cp` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn m_copydata(m: *const mbuf, off: c_int, len: c_int, cp: *mut c_void) {
    if off < 0 || len < 0 {
        log::error!(target: "bsd", "m_copydata: negative offset {off} or length {len}");
        return;
    }
    let (mut off, mut len) = (off as usize, len as usize);
    let mut out = cp.cast::<u8>();
    let mut p = m;
    // SAFETY: forwarded contract; every copy stays within m_data..+m_len of
    // a buffer and within len bytes of cp.
    unsafe {
        while !p.is_null() && len > 0 {
            let blen = (*p).m_hdr.mh_len as usize;
            if off >= blen {
                off -= blen;
            } else {
                let n = (blen - off).min(len);
                ptr::copy_nonoverlapping((*p).m_hdr.mh_data.cast::<u8>().add(off), out, n);
                out = out.add(n);
                len -= n;
                off = 0;
            }
            p = (*p).m_hdr.mh_next;
        }
        if len > 0 {
            log::error!(target: "bsd", "m_copydata: {len} bytes past the end of the chain");
            ptr::write_bytes(out, 0, len);
        }
    }
}

/// `m_copyback(9)`: writes `len` bytes at offset `off`, within the chain's
/// length plus the last buffer's tail room (it does not allocate).
///
/// # Safety
/// `m` must be a chain the caller owns; `cp` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn m_copyback(m: *mut mbuf, off: c_int, len: c_int, cp: *const c_void) {
    // SAFETY: forwarded contract.
    if unsafe { m_copyback_cow(m, off, len, cp) } != 0 {
        log::error!(target: "bsd", "m_copyback: {len} bytes at {off} do not fit");
    }
}

/// `m_copyback_cow`: as `m_copyback`, returning an errno instead of logging.
///
/// # Safety
/// As for `m_copyback`.
#[no_mangle]
pub unsafe extern "C" fn m_copyback_cow(
    m: *mut mbuf,
    off: c_int,
    len: c_int,
    cp: *const c_void,
) -> c_int {
    if m.is_null() || off < 0 || len < 0 {
        return libc::EINVAL;
    }
    let (mut off, mut len) = (off as usize, len as usize);
    let mut src = cp.cast::<u8>();
    let mut p = m;
    // SAFETY: forwarded contract; writes stay within each buffer's storage.
    unsafe {
        loop {
            let blen = (*p).m_hdr.mh_len as usize;
            let last = (*p).m_hdr.mh_next.is_null();
            let room = if last {
                let end = (*p).M_ext.ext_buf as usize + (*p).M_ext.ext_size;
                end - (*p).m_hdr.mh_data as usize
            } else {
                blen
            };
            if off < room {
                let n = (room - off).min(len);
                ptr::copy_nonoverlapping(src, (*p).m_hdr.mh_data.cast::<u8>().add(off), n);
                if off + n > blen {
                    let grow = (off + n - blen) as i32;
                    (*p).m_hdr.mh_len += grow;
                    if (*m).m_hdr.mh_flags & M_PKTHDR != 0 {
                        (*m).M_pkthdr.len += grow;
                    }
                }
                src = src.add(n);
                len -= n;
                off = 0;
            } else {
                off -= blen;
            }
            if len == 0 {
                return 0;
            }
            if last {
                return libc::ENOBUFS;
            }
            p = (*p).m_hdr.mh_next;
        }
    }
}

/// `m_adj(9)`: trims `req` bytes from the front (positive) or the back
/// (negative) of the packet.
///
/// # Safety
/// `m` must be a chain the caller owns.
#[no_mangle]
pub unsafe extern "C" fn m_adj(m: *mut mbuf, req: c_int) {
    if m.is_null() {
        return;
    }
    // SAFETY: forwarded contract; lengths only shrink and m_data moves
    // forward within the valid data.
    unsafe {
        let total = m_length(m);
        if req >= 0 {
            let mut left = req.min(total);
            let trimmed = left;
            let mut p = m;
            while !p.is_null() && left > 0 {
                let n = (*p).m_hdr.mh_len.min(left);
                (*p).m_hdr.mh_len -= n;
                (*p).m_hdr.mh_data = (*p).m_hdr.mh_data.add(n as usize);
                left -= n;
                p = (*p).m_hdr.mh_next;
            }
            if (*m).m_hdr.mh_flags & M_PKTHDR != 0 {
                (*m).M_pkthdr.len -= trimmed;
            }
        } else {
            let cut = (-(req as i64)).min(total as i64) as i32;
            let mut keep = total - cut;
            let mut p = m;
            while !p.is_null() {
                let l = (*p).m_hdr.mh_len;
                if keep >= l {
                    keep -= l;
                } else {
                    (*p).m_hdr.mh_len = keep;
                    keep = 0;
                }
                p = (*p).m_hdr.mh_next;
            }
            if (*m).m_hdr.mh_flags & M_PKTHDR != 0 {
                (*m).M_pkthdr.len = total - cut;
            }
        }
    }
}

/// `m_defrag(9)`: the packet in one buffer (a copy, the old chain freed);
/// NULL (and `m` untouched) if it does not fit one buffer or the pool is
/// empty.
///
/// # Safety
/// `m` must be a packet the caller owns.
#[no_mangle]
pub unsafe extern "C" fn m_defrag(m: *mut mbuf, how: c_int) -> *mut mbuf {
    // SAFETY: forwarded contract.
    unsafe {
        if m.is_null() || (*m).m_hdr.mh_next.is_null() {
            return m;
        }
        let len = m_length(m);
        if len as usize > DATAROOM + HEADROOM {
            return ptr::null_mut();
        }
        let n = m_gethdr(how, MT_DATA as c_int);
        if n.is_null() {
            return ptr::null_mut();
        }
        if len as usize > DATAROOM {
            (*n).m_hdr.mh_data = (*n).M_ext.ext_buf;
        }
        m_copydata(m, 0, len, (*n).m_hdr.mh_data.cast());
        (*n).m_hdr.mh_len = len;
        (*n).M_pkthdr = (*m).M_pkthdr;
        (*n).M_pkthdr.len = len;
        (*n).m_hdr.mh_flags |= (*m).m_hdr.mh_flags & !(pktkit_native::sys::M_EXT);
        m_freem(m);
        n
    }
}

/// `m_pullup(9)`: makes the first `len` bytes contiguous in the first
/// buffer; on failure frees the chain and returns NULL, as NetBSD does.
///
/// # Safety
/// `m` must be a chain the caller owns.
#[no_mangle]
pub unsafe extern "C" fn m_pullup(m: *mut mbuf, len: c_int) -> *mut mbuf {
    // SAFETY: forwarded contract; moves stay within the first buffer's
    // storage (checked against its tail room) and the following buffers'
    // valid data.
    unsafe {
        if m.is_null() {
            return m;
        }
        if (*m).m_hdr.mh_len >= len {
            return m;
        }
        let end = (*m).M_ext.ext_buf as usize + (*m).M_ext.ext_size;
        let room = end - (*m).m_hdr.mh_data as usize;
        if len < 0 || len as usize > room || m_length(m) < len {
            m_freem(m);
            return ptr::null_mut();
        }
        while (*m).m_hdr.mh_len < len {
            let n = (*m).m_hdr.mh_next;
            let want = (len - (*m).m_hdr.mh_len).min((*n).m_hdr.mh_len);
            ptr::copy_nonoverlapping(
                (*n).m_hdr.mh_data.cast::<u8>(),
                (*m).m_hdr
                    .mh_data
                    .cast::<u8>()
                    .add((*m).m_hdr.mh_len as usize),
                want as usize,
            );
            (*m).m_hdr.mh_len += want;
            (*n).m_hdr.mh_len -= want;
            (*n).m_hdr.mh_data = (*n).m_hdr.mh_data.add(want as usize);
            if (*n).m_hdr.mh_len == 0 {
                (*m).m_hdr.mh_next = m_free(n);
            }
        }
        m
    }
}

/// `m_prepend(9)`: `len` more bytes in front, in a new first buffer when
/// the first has no room; on failure frees the chain and returns NULL.
///
/// # Safety
/// `m` must be a packet the caller owns.
#[no_mangle]
pub unsafe extern "C" fn m_prepend(m: *mut mbuf, len: c_int, how: c_int) -> *mut mbuf {
    // SAFETY: forwarded contract.
    unsafe {
        if m.is_null() {
            return m;
        }
        let lead = (*m).m_hdr.mh_data as usize - (*m).M_ext.ext_buf as usize;
        if len >= 0 && lead >= len as usize {
            (*m).m_hdr.mh_data = (*m).m_hdr.mh_data.sub(len as usize);
            (*m).m_hdr.mh_len += len;
            if (*m).m_hdr.mh_flags & M_PKTHDR != 0 {
                (*m).M_pkthdr.len += len;
            }
            return m;
        }
        let ext = (*m).M_ext.ext_size;
        let n = m_gethdr(how, (*m).m_hdr.mh_type as c_int);
        if n.is_null() || len < 0 || len as usize > ext {
            m_freem(n);
            m_freem(m);
            return ptr::null_mut();
        }
        (*n).M_pkthdr = (*m).M_pkthdr;
        (*n).M_pkthdr.len += len;
        (*m).m_hdr.mh_flags &= !M_PKTHDR;
        (*n).m_hdr.mh_next = m;
        (*n).m_hdr.mh_data = (*n).M_ext.ext_buf.add(ext - len as usize);
        (*n).m_hdr.mh_len = len;
        n
    }
}
