//! The safe Rust face of the mbuf.
//!
//! [`Mbuf`] owns one packet: a chain of pool buffers linked by `m_next`, the
//! first carrying the packet header. It is the very memory ported C drivers
//! reach through `<sys/mbuf.h>`'s macros; [`Mbuf::into_raw`] and
//! [`Mbuf::from_raw`] cross that border without copying. Dropping an `Mbuf`
//! returns the whole chain to its pools.
//!
//! Panic contract: no method here panics on any length or offset; out of
//! range requests return `None`/`false` and change nothing.

use std::fmt;
use std::ptr::NonNull;

use crate::pool::{self, OwnerId, Pool};
use crate::sys::{self, mbuf};

/// Bytes of frame data one buffer holds after its headroom.
pub const DATAROOM: usize = sys::PKTKIT_MBUF_DATAROOM as usize;
/// Bytes reserved in front of the data of a fresh buffer.
pub const HEADROOM: usize = sys::PKTKIT_MBUF_HEADROOM as usize;

/// One packet, owned: a chain of pool buffers.
#[repr(transparent)]
pub struct Mbuf(NonNull<mbuf>);

// SAFETY: an Mbuf is the unique owner of its chain; pool buffers may be freed
// from any thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw packet.
    ///
    /// # Safety
    /// `m` must be a live packet-header buffer of a pktkit pool (with its
    /// chain) that nobody else owns or will free.
    #[inline]
    pub unsafe fn from_raw(m: *mut mbuf) -> Mbuf {
        // SAFETY: the caller guarantees m is a live, non-null buffer.
        Mbuf(unsafe { NonNull::new_unchecked(m) })
    }

    /// Gives up ownership; the caller must free the packet (e.g. with
    /// [`Mbuf::from_raw`] and drop, or `m_freem` in C).
    #[inline]
    pub fn into_raw(self) -> *mut mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The raw pointer, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn hdr(&self) -> &mbuf {
        // SAFETY: self owns a live buffer.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn hdr_mut(&mut self) -> &mut mbuf {
        // SAFETY: self owns a live buffer exclusively.
        unsafe { self.0.as_mut() }
    }

    /// Bytes in the first buffer.
    #[inline]
    pub fn len(&self) -> usize {
        self.hdr().m_hdr.mh_len as usize
    }

    /// Whether the packet has no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pkt_len() == 0
    }

    /// Total bytes of the packet (`m_pkthdr.len`).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.hdr().M_pkthdr.len as usize
    }

    /// Whether the packet spans more than one buffer.
    #[inline]
    pub fn is_chained(&self) -> bool {
        !self.hdr().m_hdr.mh_next.is_null()
    }

    /// Number of buffers in the chain.
    pub fn segments(&self) -> usize {
        self.segs().count()
    }

    /// The valid bytes of the first buffer.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let h = &self.hdr().m_hdr;
        // SAFETY: m_data..m_data+m_len lies inside the buffer's storage
        // (every mutator keeps that invariant) and self owns it.
        unsafe { std::slice::from_raw_parts(h.mh_data.cast::<u8>(), h.mh_len as usize) }
    }

    /// The valid bytes of the first buffer, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let h = &self.hdr().m_hdr;
        let (p, n) = (h.mh_data.cast::<u8>(), h.mh_len as usize);
        // SAFETY: as in data(), and self is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(p, n) }
    }

    /// Free bytes after the data of the first buffer.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.hdr();
        let end = m.M_ext.ext_buf as usize + m.M_ext.ext_size;
        end - (m.m_hdr.mh_data as usize + m.m_hdr.mh_len as usize)
    }

    /// Free bytes in front of the data of the first buffer.
    #[inline]
    pub fn headroom(&self) -> usize {
        let m = self.hdr();
        m.m_hdr.mh_data as usize - m.M_ext.ext_buf as usize
    }

    /// Extends the first (single) buffer by `n` bytes at the end and returns
    /// them; `None` if it does not fit or the packet is chained.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if self.is_chained() || n > self.tailroom() {
            return None;
        }
        let m = self.hdr_mut();
        let old = m.m_hdr.mh_len as usize;
        m.m_hdr.mh_len += n as i32;
        m.M_pkthdr.len += n as i32;
        Some(&mut self.data_mut()[old..])
    }

    /// Sets the length of a single-buffer packet (growing leaves the new bytes
    /// as they were). Returns false if it does not fit or the packet is chained.
    #[inline]
    pub fn set_len(&mut self, n: usize) -> bool {
        if self.is_chained() || n > self.len() + self.tailroom() {
            return false;
        }
        let m = self.hdr_mut();
        m.m_hdr.mh_len = n as i32;
        m.M_pkthdr.len = n as i32;
        true
    }

    /// Extends the packet by `n` bytes at the front and returns them.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.headroom() {
            return None;
        }
        let m = self.hdr_mut();
        // SAFETY: n <= headroom keeps m_data inside the storage.
        m.m_hdr.mh_data = unsafe { m.m_hdr.mh_data.sub(n) };
        m.m_hdr.mh_len += n as i32;
        m.M_pkthdr.len += n as i32;
        Some(&mut self.data_mut()[..n])
    }

    /// Removes `n` bytes from the front of the first buffer (`m_adj` with a
    /// positive count, within one buffer).
    #[inline]
    pub fn trim_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let m = self.hdr_mut();
        // SAFETY: n <= m_len keeps m_data inside the valid data.
        m.m_hdr.mh_data = unsafe { m.m_hdr.mh_data.add(n) };
        m.m_hdr.mh_len -= n as i32;
        m.M_pkthdr.len -= n as i32;
        true
    }

    /// The IOVA of the first valid byte (for a DMA descriptor).
    #[inline]
    pub fn iova(&self) -> u64 {
        let m = self.hdr();
        m.m_hdr.mh_paddr + (m.m_hdr.mh_data as u64 - m.M_ext.ext_buf as u64)
    }

    /// Index of the pool the first buffer came from.
    pub fn pool_index(&self) -> u16 {
        self.hdr().m_hdr.mh_pool
    }

    /// Owner the first buffer is accounted to.
    pub fn owner(&self) -> OwnerId {
        OwnerId(self.hdr().m_hdr.mh_owner)
    }

    /// Moves the accounting of every buffer of the chain to `to`.
    pub fn set_owner(&mut self, to: OwnerId) {
        let mut m = self.0.as_ptr();
        while !m.is_null() {
            // SAFETY: m is a buffer of the chain self owns.
            unsafe {
                pool::set_owner(m, to);
                m = (*m).m_hdr.mh_next;
            }
        }
    }

    /// `m_pkthdr.csum_flags` (`M_CSUM_*`).
    #[inline]
    pub fn csum_flags(&self) -> u32 {
        self.hdr().M_pkthdr.csum_flags
    }

    /// Sets `m_pkthdr.csum_flags` and `csum_data`.
    #[inline]
    pub fn set_csum(&mut self, flags: u32, data: u32) {
        let p = &mut self.hdr_mut().M_pkthdr;
        p.csum_flags = flags;
        p.csum_data = data;
    }

    /// The receiving interface index recorded by the stack.
    #[inline]
    pub fn rcvif(&self) -> u32 {
        // SAFETY: reading the index member of a plain-data union is always
        // defined (any bit pattern is a valid u32).
        unsafe { self.hdr().M_pkthdr._rcvif.index }
    }

    /// Records the receiving interface index (`m_set_rcvif`).
    #[inline]
    pub fn set_rcvif(&mut self, index: u32) {
        self.hdr_mut().M_pkthdr._rcvif.index = index;
    }

    /// `m_flags`.
    #[inline]
    pub fn flags(&self) -> u32 {
        self.hdr().m_hdr.mh_flags
    }

    /// Sets the given `M_*` flags.
    #[inline]
    pub fn set_flags(&mut self, flags: u32) {
        self.hdr_mut().m_hdr.mh_flags |= flags;
    }

    /// Iterates over the valid bytes of each buffer of the chain.
    pub fn segs(&self) -> Segments<'_> {
        Segments {
            cur: self.0.as_ptr(),
            _owner: std::marker::PhantomData,
        }
    }

    /// Copies the whole packet into `out`; returns the bytes copied
    /// (`min(pkt_len, out.len())`), like `m_copydata` from offset 0.
    pub fn copy_out(&self, out: &mut [u8]) -> usize {
        let mut done = 0;
        for seg in self.segs() {
            let n = seg.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&seg[..n]);
            done += n;
            if done == out.len() {
                break;
            }
        }
        done
    }

    /// The whole packet as a vector (for tests and control paths, not the
    /// packet path).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.pkt_len()];
        let n = self.copy_out(&mut v);
        v.truncate(n);
        v
    }

    /// Builds a packet holding `bytes`, chaining buffers when it exceeds one
    /// data room (jumbo frames). `None` if the pool runs short (nothing leaks).
    pub fn from_slice(pool: &Pool, owner: OwnerId, bytes: &[u8]) -> Option<Mbuf> {
        let mut head = pool.alloc(owner)?;
        let first = bytes.len().min(DATAROOM);
        head.append(first)?.copy_from_slice(&bytes[..first]);
        let mut rest = &bytes[first..];
        let mut tail = head.0.as_ptr();
        while !rest.is_empty() {
            let seg = pool.alloc(owner)?; // head's Drop frees what is built so far
            let raw = seg.into_raw();
            let n = rest.len().min(DATAROOM);
            // SAFETY: raw is a fresh buffer we own; tail is the last buffer of
            // head's chain; n fits the data room.
            unsafe {
                let s = &mut *raw;
                s.m_hdr.mh_flags &= !sys::M_PKTHDR;
                std::ptr::copy_nonoverlapping(rest.as_ptr(), s.m_hdr.mh_data.cast::<u8>(), n);
                s.m_hdr.mh_len = n as i32;
                (*tail).m_hdr.mh_next = raw;
            }
            tail = raw;
            head.hdr_mut().M_pkthdr.len += n as i32;
            rest = &rest[n..];
        }
        Some(head)
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        let mut m = self.0.as_ptr();
        while !m.is_null() {
            // SAFETY: self owns the chain; read next before the buffer is freed.
            unsafe {
                let next = (*m).m_hdr.mh_next;
                pool::free_one(m);
                m = next;
            }
        }
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("pkt_len", &self.pkt_len())
            .field("segments", &self.segments())
            .field("flags", &format_args!("{:#x}", self.flags()))
            .finish()
    }
}

/// Iterator over the data of each buffer of a chain.
pub struct Segments<'a> {
    cur: *mut mbuf,
    _owner: std::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: cur is a buffer of a chain borrowed for 'a.
        unsafe {
            let h = &(*self.cur).m_hdr;
            self.cur = h.mh_next;
            Some(std::slice::from_raw_parts(
                h.mh_data.cast::<u8>(),
                h.mh_len as usize,
            ))
        }
    }
}

/// Frees a burst of raw packets in bulk.
///
/// # Safety
/// Every pointer must be a packet the caller owns and no longer uses.
pub unsafe fn free_raw_bulk(pkts: &[*mut mbuf]) {
    // SAFETY: forwarded contract.
    unsafe { pool::free_bulk(pkts) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{HugePages, PoolConfig};
    use std::mem::{offset_of, size_of};

    /// Pins the C layout every language sees; change only with mbuf.h.
    #[test]
    fn layout_is_pinned() {
        assert_eq!(size_of::<mbuf>(), 128);
        assert_eq!(offset_of!(mbuf, m_hdr), 0);
        assert_eq!(offset_of!(sys::m_hdr, mh_next), 0);
        assert_eq!(offset_of!(sys::m_hdr, mh_nextpkt), 8);
        assert_eq!(offset_of!(sys::m_hdr, mh_data), 16);
        assert_eq!(offset_of!(sys::m_hdr, mh_paddr), 24);
        assert_eq!(offset_of!(sys::m_hdr, mh_len), 32);
        assert_eq!(offset_of!(sys::m_hdr, mh_flags), 36);
        assert_eq!(offset_of!(sys::m_hdr, mh_type), 40);
        assert_eq!(offset_of!(sys::m_hdr, mh_owner), 42);
        assert_eq!(offset_of!(sys::m_hdr, mh_pool), 44);
        assert_eq!(offset_of!(mbuf, M_pkthdr), 48);
        assert_eq!(offset_of!(sys::pkthdr, len), 8);
        assert_eq!(offset_of!(sys::pkthdr, csum_flags), 12);
        assert_eq!(offset_of!(sys::pkthdr, csum_data), 16);
        assert_eq!(offset_of!(sys::pkthdr, segsz), 20);
        assert_eq!(offset_of!(sys::pkthdr, ether_vtag), 22);
        assert_eq!(offset_of!(mbuf, M_ext), 80);
        assert_eq!(offset_of!(sys::m_ext_storage, ext_size), 8);
        assert_eq!(sys::PKTKIT_MBUF_EXTSIZE, 2176);
    }

    fn pool(name: &str) -> Pool {
        Pool::new(&PoolConfig {
            name: name.into(),
            buffers: 64,
            hugepages: HugePages::Never,
        })
        .unwrap()
    }

    #[test]
    fn append_prepend_trim() {
        let p = pool("m-edit");
        let mut m = p.alloc(OwnerId::POOL).unwrap();
        m.append(4).unwrap().copy_from_slice(b"abcd");
        m.prepend(2).unwrap().copy_from_slice(b"xy");
        assert_eq!(m.data(), b"xyabcd");
        assert_eq!(m.pkt_len(), 6);
        assert!(m.trim_front(3));
        assert_eq!(m.data(), b"bcd");
        assert!(!m.trim_front(4));
        assert!(m.prepend(HEADROOM + 10).is_none());
        assert!(m.append(DATAROOM + HEADROOM).is_none());
        assert_eq!(m.data(), b"bcd");
    }

    #[test]
    fn jumbo_frames_chain() {
        let p = pool("m-jumbo");
        let frame: Vec<u8> = (0..9000u32).map(|i| (i * 7) as u8).collect();
        let m = Mbuf::from_slice(&p, OwnerId::POOL, &frame).unwrap();
        assert_eq!(m.pkt_len(), 9000);
        assert_eq!(m.segments(), 5);
        assert_eq!(m.to_vec(), frame);
        drop(m);
        assert_eq!(p.available(), 64);
    }

    #[test]
    fn from_slice_short_pool_leaks_nothing() {
        let p = pool("m-short");
        let held: Vec<_> = (0..62).map(|_| p.alloc(OwnerId::POOL).unwrap()).collect();
        assert!(Mbuf::from_slice(&p, OwnerId::POOL, &[0u8; 9000]).is_none());
        drop(held);
        assert_eq!(p.available(), 64);
    }
}
