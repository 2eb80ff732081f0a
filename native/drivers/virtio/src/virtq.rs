//! Split virtqueues (virtio 1.1 §2.6) in DMA memory.
//!
//! One page-aligned block from `PciDevice::dma_alloc` holds the three parts,
//! each at the alignment §2.6 requires:
//!
//! ```text
//! offset 0                       descriptor table   16 * size    (align 16)
//! 16 * size                      available ring     6 + 2 * size (align 2)
//! align4(16 * size + 6 + 2 size) used ring          6 + 8 * size (align 4)
//! ```
//!
//! The driver owns the descriptor table and the available ring; the device
//! owns the used ring. Ordering (§2.6.13, §2.6.14), and the fence behind each
//! step:
//! - supplying buffers: write descriptors and available-ring entries, then
//!   store `avail.idx` with *release* ordering, so the device never sees the
//!   new index before the entries it covers (§2.6.13.3);
//! - notifying: a *full* fence between that store and the read of
//!   `used.flags` (a store followed by a load), else the driver could read
//!   a stale NO_NOTIFY and skip a notification the device needs (§2.6.13.4);
//! - consuming: load `used.idx` with *acquire* ordering before reading the
//!   used elements and the buffers they describe (§2.6.14);
//! - re-enabling interrupts: clear NO_INTERRUPT, full fence, re-read
//!   `used.idx` (§2.6.14: a buffer used in between raises no interrupt, so
//!   the driver must look again).
//!
//! Ring positions are free-running `u16` counters; the slot is the counter
//! masked by `size - 1` (`size` is a power of two, so this agrees with the
//! modulo of §2.6.6 across the 65536 wrap).
//!
//! `unsafe` here is confined to reading and writing the block through raw
//! pointers derived from its base, always at offsets below its length.

use std::sync::atomic::{fence, AtomicU16, AtomicU64, Ordering};

use pktkit_native::device::{DmaMemory, PciDevice};

use crate::transport::QueueAddrs;

/// The largest split queue size (§2.6: Queue Size is at most 32768).
pub const MAX_SIZE: u16 = 32768;

/// Descriptor flag: the buffer continues in `next` (§2.6.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes the buffer (otherwise reads it).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// `avail.flags`: please do not interrupt when using buffers (§2.6.7).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `used.flags`: no need to notify when adding buffers (§2.6.10).
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// `struct virtq_desc` (§2.6.5). Fields are little-endian in memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

impl Desc {
    /// A descriptor for `len` bytes at IOVA `addr`.
    pub fn new(addr: u64, len: u32, flags: u16, next: u16) -> Desc {
        Desc {
            addr: addr.to_le(),
            len: len.to_le(),
            flags: flags.to_le(),
            next: next.to_le(),
        }
    }

    /// The buffer's IOVA.
    pub fn addr(&self) -> u64 {
        u64::from_le(self.addr)
    }

    /// The buffer's length.
    pub fn len(&self) -> u32 {
        u32::from_le(self.len)
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `VIRTQ_DESC_F_*`.
    pub fn flags(&self) -> u16 {
        u16::from_le(self.flags)
    }

    /// The next descriptor of the chain, if `F_NEXT`.
    pub fn next(&self) -> u16 {
        u16::from_le(self.next)
    }
}

/// `struct virtq_used_elem` (§2.6.8). Little-endian in memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsedElem {
    id: u32,
    len: u32,
}

impl UsedElem {
    /// Head descriptor of the chain the device used.
    pub fn id(&self) -> u32 {
        u32::from_le(self.id)
    }

    /// Bytes the device wrote into the chain.
    pub fn len(&self) -> u32 {
        u32::from_le(self.len)
    }

    /// Whether the device wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Byte offsets of the parts of a split queue of `size` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    /// Available ring.
    pub avail: usize,
    /// Used ring.
    pub used: usize,
    /// Total bytes.
    pub len: usize,
}

impl RingLayout {
    /// The layout for `size` entries (alignments from §2.6).
    pub const fn new(size: u16) -> RingLayout {
        let n = size as usize;
        let avail = 16 * n;
        // flags, idx, ring[n], used_event
        let avail_end = avail + 4 + 2 * n + 2;
        let used = (avail_end + 3) & !3;
        // flags, idx, ring[n] of 8 bytes, avail_event
        let len = used + 4 + 8 * n + 2;
        RingLayout { avail, used, len }
    }
}

/// Whether `size` is a valid split queue size.
pub fn valid_size(size: u16) -> bool {
    size.is_power_of_two() && size <= MAX_SIZE
}

/// A split virtqueue's memory and the driver's two counters.
pub struct SplitQueue {
    mem: Box<dyn DmaMemory>,
    layout: RingLayout,
    size: u16,
    /// Next available-ring position to fill (published by [`Self::publish`]).
    avail_idx: u16,
    /// Next used-ring position to consume.
    last_used: u16,
}

impl std::fmt::Debug for SplitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitQueue")
            .field("size", &self.size)
            .field("avail_idx", &self.avail_idx)
            .field("last_used", &self.last_used)
            .finish()
    }
}

impl SplitQueue {
    /// Allocates and zeroes a queue of `size` entries (a power of two).
    pub fn new(dev: &mut dyn PciDevice, size: u16) -> Result<SplitQueue, String> {
        if !valid_size(size) {
            return Err(format!(
                "queue size {size} is not a power of two <= {MAX_SIZE}"
            ));
        }
        let layout = RingLayout::new(size);
        let mem = dev
            .dma_alloc(layout.len)
            .map_err(|e| format!("allocating a {size}-entry virtqueue: {e}"))?;
        SplitQueue::in_memory(mem, size)
    }

    /// A queue in `mem` (which must be at least [`RingLayout::len`] bytes,
    /// 16-byte aligned), zeroed.
    pub fn in_memory(mem: Box<dyn DmaMemory>, size: u16) -> Result<SplitQueue, String> {
        let layout = RingLayout::new(size);
        if !valid_size(size) || mem.len() < layout.len || mem.as_ptr() as usize & 15 != 0 {
            return Err(format!(
                "virtqueue memory of {} bytes cannot hold {size} entries",
                mem.len()
            ));
        }
        // SAFETY: mem is ours, at least layout.len bytes long (checked), and
        // no device uses it yet.
        unsafe { std::ptr::write_bytes(mem.as_ptr(), 0, layout.len) };
        Ok(SplitQueue {
            mem,
            layout,
            size,
            avail_idx: 0,
            last_used: 0,
        })
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// IOVAs to give the device (§4.1.4.3 `queue_desc/driver/device`).
    pub fn addrs(&self) -> QueueAddrs {
        let base = self.mem.iova();
        QueueAddrs {
            desc: base,
            driver: base + self.layout.avail as u64,
            device: base + self.layout.used as u64,
        }
    }

    #[inline]
    fn mask(&self) -> u16 {
        self.size - 1
    }

    /// A 16-bit ring field shared with the device, as an atomic.
    #[inline]
    fn atomic16(&self, off: usize) -> &AtomicU16 {
        debug_assert!(off + 2 <= self.layout.len && off & 1 == 0);
        // SAFETY: every caller passes a fixed field offset inside the layout
        // (below layout.len, 2-aligned, block 16-aligned); the block lives as
        // long as &self; AtomicU16 has u16's layout, and atomics are how
        // memory shared with another agent (the device) is accessed.
        unsafe { &*self.mem.as_ptr().add(off).cast::<AtomicU16>() }
    }

    /// Writes descriptor `i` (masked into the table). The address is an
    /// atomic store because [`QueueView::redirect_unused`] may rewrite it
    /// from another thread; the rest is volatile (the device reads it).
    #[inline]
    pub fn write_desc(&mut self, i: u16, d: Desc) {
        let off = 16 * usize::from(i & self.mask());
        self.view().atomic64(off).store(d.addr, Ordering::Relaxed);
        // SAFETY: the entry (16 bytes at off, 16-aligned) lies in the table;
        // len, flags and next are written only by this queue's owner.
        unsafe {
            let p = self.mem.as_ptr().add(off);
            p.add(8).cast::<u32>().write_volatile(d.len);
            p.add(12).cast::<u16>().write_volatile(d.flags);
            p.add(14).cast::<u16>().write_volatile(d.next);
        }
    }

    /// Reads descriptor `i` back (masked).
    #[inline]
    pub fn read_desc(&self, i: u16) -> Desc {
        let off = 16 * usize::from(i & self.mask());
        let addr = self.view().atomic64(off).load(Ordering::Relaxed);
        // SAFETY: as in write_desc.
        unsafe {
            let p = self.mem.as_ptr().add(off);
            Desc {
                addr,
                len: p.add(8).cast::<u32>().read_volatile(),
                flags: p.add(12).cast::<u16>().read_volatile(),
                next: p.add(14).cast::<u16>().read_volatile(),
            }
        }
    }

    /// A view of the rings for [`QueueView::redirect_unused`].
    #[inline]
    pub fn view(&self) -> QueueView {
        QueueView {
            base: self.mem.as_ptr(),
            layout: self.layout,
            size: self.size,
        }
    }

    /// Puts head descriptor `head` in the next available-ring slot; the
    /// device sees it after [`Self::publish`] (§2.6.13.2).
    #[inline]
    pub fn push_avail(&mut self, head: u16) {
        let slot = usize::from(self.avail_idx & self.mask());
        // Atomic because QueueView::redirect_unused may read it from
        // another thread; the device reads it only after the release store
        // of publish().
        self.atomic16(self.layout.avail + 4 + 2 * slot)
            .store(head.to_le(), Ordering::Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
    }

    /// Makes every pushed entry visible to the device (§2.6.13.3).
    #[inline]
    pub fn publish(&self) {
        // Release: the descriptors and ring entries written before are
        // visible to the device before the index that covers them.
        self.atomic16(self.layout.avail + 2)
            .store(self.avail_idx.to_le(), Ordering::Release);
    }

    /// Whether the device wants a notification for what was just published
    /// (§2.6.10: it sets NO_NOTIFY in `used.flags` when it does not).
    #[inline]
    pub fn needs_notify(&self) -> bool {
        // Full fence: the avail.idx store above must be globally visible
        // before this load of used.flags, or we could read a NO_NOTIFY the
        // device is about to clear and miss waking it (§2.6.13.4).
        fence(Ordering::SeqCst);
        let flags = u16::from_le(self.atomic16(self.layout.used).load(Ordering::Relaxed));
        flags & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    /// Asks the device not to interrupt (true) or to interrupt (false) when
    /// it uses buffers (§2.6.7, without VIRTIO_F_EVENT_IDX).
    #[inline]
    pub fn suppress_interrupts(&self, suppress: bool) {
        let v = if suppress {
            VIRTQ_AVAIL_F_NO_INTERRUPT
        } else {
            0
        };
        self.atomic16(self.layout.avail)
            .store(v.to_le(), Ordering::Relaxed);
    }

    /// Enables interrupts and reports whether used buffers are already
    /// waiting (then no interrupt may come for them: §2.6.14).
    #[inline]
    pub fn enable_interrupts_and_check(&self) -> bool {
        self.suppress_interrupts(false);
        // Full fence: the flag store must be visible to the device before we
        // read used.idx (store then load), else a buffer used in between
        // would be seen neither by us nor signalled by an interrupt.
        fence(Ordering::SeqCst);
        self.has_used()
    }

    /// The device's used index.
    #[inline]
    fn used_idx(&self) -> u16 {
        // Acquire: the used elements (and buffer contents) the index covers
        // are read after it (§2.6.14).
        u16::from_le(self.atomic16(self.layout.used + 2).load(Ordering::Acquire))
    }

    /// Whether the device has used buffers not consumed yet.
    #[inline]
    pub fn has_used(&self) -> bool {
        self.used_idx() != self.last_used
    }

    /// Takes the next used element, if any.
    #[inline]
    pub fn pop_used(&mut self) -> Option<UsedElem> {
        if self.used_idx() == self.last_used {
            return None;
        }
        let slot = usize::from(self.last_used & self.mask());
        let off = self.layout.used + 4 + 8 * slot;
        // SAFETY: slot < size, so the element lies inside the used ring; the
        // acquire load of used.idx above orders this read after the device's
        // write of the element.
        let e = unsafe {
            self.mem
                .as_ptr()
                .add(off)
                .cast::<UsedElem>()
                .read_volatile()
        };
        self.last_used = self.last_used.wrapping_add(1);
        Some(e)
    }

    /// Entries pushed but not yet used by the device.
    pub fn in_flight(&self) -> u16 {
        self.avail_idx.wrapping_sub(self.last_used)
    }
}

// SAFETY: the queue exclusively owns its DMA block (Box<dyn DmaMemory> is
// Send); the raw pointers are derived from it on each access.
unsafe impl Send for SplitQueue {}

/// Where a queue's rings are, for another thread to redirect its unused
/// buffers (fault injection) while the queue's owner keeps running.
///
/// Everything both may touch is accessed atomically: descriptor addresses,
/// available-ring entries and both ring indexes; lengths and flags are
/// never written through a view.
#[derive(Clone, Copy, Debug)]
pub struct QueueView {
    base: *mut u8,
    layout: RingLayout,
    size: u16,
}

// SAFETY: a view is plain addresses; dereferencing it is `unsafe`
// (redirect_unused), whose caller guarantees the memory is alive.
unsafe impl Send for QueueView {}

impl QueueView {
    fn atomic16(&self, off: usize) -> &AtomicU16 {
        debug_assert!(off + 2 <= self.layout.len && off & 1 == 0);
        // SAFETY: callers pass a field offset inside the layout, 2-aligned
        // in a 16-aligned block that is alive while the view is used (the
        // contract of `view()` callers and of redirect_unused).
        unsafe { &*self.base.add(off).cast::<AtomicU16>() }
    }

    fn atomic64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= self.layout.len && off & 7 == 0);
        // SAFETY: as atomic16: a descriptor's address field, 8-aligned
        // (entries are 16 bytes from a 16-aligned base).
        unsafe { &*self.base.add(off).cast::<AtomicU64>() }
    }

    /// Points the buffers the device has not used yet (available-ring
    /// positions from the device's `used.idx` up to the published
    /// `avail.idx`) at `iova`, keeping lengths and flags; returns how many.
    /// Fault injection only. Racing the queue's owner is harmless: a buffer
    /// the device uses meanwhile may land in its old memory or a new buffer
    /// may get the address, and either way its descriptor no longer names
    /// it, which the owner checks when the buffer comes back.
    ///
    /// # Safety
    ///
    /// The queue this view came from must still own its memory for the
    /// whole call (not dropped, or the memory freed).
    pub unsafe fn redirect_unused(&self, iova: u64) -> usize {
        let mask = self.size - 1;
        let avail = u16::from_le(self.atomic16(self.layout.avail + 2).load(Ordering::Acquire));
        // The device's index: entries below it are used (maybe not yet
        // consumed by the owner) and keep their addresses.
        let used = u16::from_le(self.atomic16(self.layout.used + 2).load(Ordering::Acquire));
        let count = avail.wrapping_sub(used).min(self.size);
        for k in 0..count {
            let slot = usize::from(used.wrapping_add(k) & mask);
            let head = self
                .atomic16(self.layout.avail + 4 + 2 * slot)
                .load(Ordering::Relaxed);
            let off = 16 * usize::from(u16::from_le(head) & mask);
            self.atomic64(off).store(iova.to_le(), Ordering::Relaxed);
        }
        // Full fence: the new addresses should reach memory before the
        // device's next descriptor fetch (best effort: the device fetches
        // on its own schedule, without a handshake).
        fence(Ordering::SeqCst);
        usize::from(count)
    }
}

/// A small block of DMA memory for driver-owned buffers (control commands).
pub struct DmaBuf {
    mem: Box<dyn DmaMemory>,
}

impl DmaBuf {
    /// Allocates `len` bytes.
    pub fn new(dev: &mut dyn PciDevice, len: usize) -> Result<DmaBuf, String> {
        let mem = dev
            .dma_alloc(len)
            .map_err(|e| format!("allocating {len} bytes of DMA memory: {e}"))?;
        Ok(DmaBuf { mem })
    }

    /// Wraps existing memory (tests).
    pub fn from_memory(mem: Box<dyn DmaMemory>) -> DmaBuf {
        DmaBuf { mem }
    }

    /// IOVA of byte `off`.
    pub fn iova(&self, off: usize) -> u64 {
        self.mem.iova() + off as u64
    }

    /// Copies `bytes` in at `off`; false (and nothing written) if it does not fit.
    pub fn write(&mut self, off: usize, bytes: &[u8]) -> bool {
        if off
            .checked_add(bytes.len())
            .is_none_or(|e| e > self.mem.len())
        {
            return false;
        }
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: off + i is inside the block (checked above) and we own
            // it; volatile because the device reads it.
            unsafe { self.mem.as_ptr().add(off + i).write_volatile(*b) };
        }
        true
    }

    /// Reads the byte at `off` (0xff past the end).
    pub fn read(&self, off: usize) -> u8 {
        if off >= self.mem.len() {
            return 0xff;
        }
        // SAFETY: inside the block (checked); volatile because the device writes it.
        unsafe { self.mem.as_ptr().add(off).read_volatile() }
    }
}

// SAFETY: DmaBuf exclusively owns its block.
unsafe impl Send for DmaBuf {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Heap memory standing in for a DMA block; IOVA = address.
    pub struct HeapDma {
        buf: Vec<u128>,
        len: usize,
    }

    impl HeapDma {
        pub fn boxed(len: usize) -> Box<dyn DmaMemory> {
            Box::new(HeapDma {
                buf: vec![0; len.div_ceil(16)],
                len,
            })
        }
    }

    impl DmaMemory for HeapDma {
        fn as_ptr(&self) -> *mut u8 {
            self.buf.as_ptr() as *mut u8
        }
        fn iova(&self) -> u64 {
            self.buf.as_ptr() as u64
        }
        fn len(&self) -> usize {
            self.len
        }
    }

    /// The device side of a split queue, for tests: reads what the driver
    /// published and marks buffers used, through the same memory.
    pub struct FakeDevice {
        pub base: *mut u8,
        pub layout: RingLayout,
        pub size: u16,
        pub last_avail: u16,
        pub used_idx: u16,
    }

    impl FakeDevice {
        pub fn of(q: &SplitQueue) -> FakeDevice {
            FakeDevice {
                base: q.mem.as_ptr(),
                layout: q.layout,
                size: q.size,
                last_avail: 0,
                used_idx: 0,
            }
        }
        fn r16(&self, off: usize) -> u16 {
            // SAFETY: test memory of the queue, inside its layout.
            unsafe { self.base.add(off).cast::<u16>().read_volatile() }
        }
        /// Takes the next available head, if any.
        pub fn take_avail(&mut self) -> Option<(u16, Desc)> {
            if self.r16(self.layout.avail + 2) == self.last_avail {
                return None;
            }
            let slot = usize::from(self.last_avail % self.size);
            let head = self.r16(self.layout.avail + 4 + 2 * slot);
            self.last_avail = self.last_avail.wrapping_add(1);
            // SAFETY: head < size in these tests.
            let d = unsafe { self.base.add(16 * head as usize).cast::<Desc>().read() };
            Some((head, d))
        }
        /// Marks `head` used with `len` bytes written.
        pub fn use_buf(&mut self, head: u16, len: u32) {
            let slot = usize::from(self.used_idx % self.size);
            let off = self.layout.used + 4 + 8 * slot;
            // SAFETY: inside the used ring of the test memory.
            unsafe {
                self.base.add(off).cast::<UsedElem>().write(UsedElem {
                    id: head as u32,
                    len,
                });
                self.used_idx = self.used_idx.wrapping_add(1);
                self.base
                    .add(self.layout.used + 2)
                    .cast::<u16>()
                    .write_volatile(self.used_idx);
            }
        }
        pub fn set_no_notify(&self, on: bool) {
            // SAFETY: used.flags of the test memory.
            unsafe {
                self.base
                    .add(self.layout.used)
                    .cast::<u16>()
                    .write_volatile(on as u16)
            }
        }
        pub fn avail_flags(&self) -> u16 {
            self.r16(self.layout.avail)
        }
    }

    pub fn queue(size: u16) -> SplitQueue {
        SplitQueue::in_memory(HeapDma::boxed(RingLayout::new(size).len), size).unwrap()
    }

    #[test]
    fn layouts_are_pinned() {
        assert_eq!(size_of::<Desc>(), 16);
        assert_eq!(offset_of!(Desc, addr), 0);
        assert_eq!(offset_of!(Desc, len), 8);
        assert_eq!(offset_of!(Desc, flags), 12);
        assert_eq!(offset_of!(Desc, next), 14);
        assert_eq!(size_of::<UsedElem>(), 8);
        assert_eq!(offset_of!(UsedElem, len), 4);
        // §2.6: 256 entries -> desc 4096, avail 6+512 at 4096, used at 4616.
        let l = RingLayout::new(256);
        assert_eq!(l.avail, 4096);
        assert_eq!(l.used, 4616);
        assert_eq!(l.used % 4, 0);
        assert_eq!(l.len, 4616 + 6 + 8 * 256);
        // Odd avail end forces used-ring padding: size 1 -> avail 16..24, used 24.
        assert_eq!(RingLayout::new(1).used, 24);
        assert!(valid_size(256) && valid_size(1) && !valid_size(0) && !valid_size(384));
    }

    #[test]
    fn publish_use_and_wrap_past_65536() {
        let mut q = queue(8);
        let mut dev = FakeDevice::of(&q);
        // Run the free-running counters across the u16 wrap.
        q.avail_idx = 65530;
        q.last_used = 65530;
        q.publish();
        dev.last_avail = 65530;
        dev.used_idx = 65530;
        // SAFETY: used.idx field of the test memory.
        unsafe { dev.base.add(dev.layout.used + 2).cast::<u16>().write(65530) };
        for round in 0..4u32 {
            for i in 0..8u16 {
                q.write_desc(
                    i,
                    Desc::new(0x1000 * u64::from(i), 100 + u32::from(i), 0, 0),
                );
                q.push_avail(i);
            }
            assert_eq!(q.in_flight(), 8);
            assert!(dev.take_avail().is_none(), "not visible before publish");
            q.publish();
            for i in 0..8u16 {
                let (head, d) = dev.take_avail().unwrap();
                assert_eq!(head, i);
                assert_eq!(d.addr(), 0x1000 * u64::from(i));
                dev.use_buf(head, d.len() + round);
            }
            assert!(dev.take_avail().is_none());
            for i in 0..8u16 {
                let e = q.pop_used().unwrap();
                assert_eq!(e.id(), u32::from(i));
                assert_eq!(e.len(), 100 + u32::from(i) + round);
            }
            assert!(q.pop_used().is_none());
            assert_eq!(q.in_flight(), 0);
        }
        assert!(q.avail_idx < 100, "wrapped: {}", q.avail_idx);
    }

    #[test]
    fn notification_and_interrupt_suppression() {
        let q = queue(4);
        let dev = FakeDevice::of(&q);
        assert!(q.needs_notify());
        dev.set_no_notify(true);
        assert!(!q.needs_notify());
        q.suppress_interrupts(true);
        assert_eq!(dev.avail_flags(), VIRTQ_AVAIL_F_NO_INTERRUPT);
        assert!(!q.enable_interrupts_and_check());
        assert_eq!(dev.avail_flags(), 0);
    }

    #[test]
    fn interrupt_enable_sees_buffers_used_meanwhile() {
        let mut q = queue(4);
        let mut dev = FakeDevice::of(&q);
        q.write_desc(0, Desc::new(0x1000, 64, VIRTQ_DESC_F_WRITE, 0));
        q.push_avail(0);
        q.publish();
        let (h, _) = dev.take_avail().unwrap();
        dev.use_buf(h, 60);
        assert!(q.enable_interrupts_and_check());
        assert_eq!(q.pop_used().unwrap().len(), 60);
    }

    #[test]
    fn redirect_touches_only_what_the_device_has_not_used() {
        let mut q = queue(8);
        let mut dev = FakeDevice::of(&q);
        for i in 0..5u16 {
            q.write_desc(
                i,
                Desc::new(0x1000 * u64::from(i + 1), 2048, VIRTQ_DESC_F_WRITE, 0),
            );
            q.push_avail(i);
        }
        q.publish();
        // The device used the first two; we consumed only the first.
        for _ in 0..2 {
            let (h, d) = dev.take_avail().unwrap();
            dev.use_buf(h, d.len());
        }
        assert_eq!(q.pop_used().unwrap().id(), 0);
        // SAFETY: q lives for the call.
        assert_eq!(unsafe { q.view().redirect_unused(0xdead_0000_0000) }, 3);
        // Used buffers keep their addresses (1 is used but not consumed).
        assert_eq!(q.read_desc(0).addr(), 0x1000);
        assert_eq!(q.read_desc(1).addr(), 0x2000);
        for i in 2..5u16 {
            let d = q.read_desc(i);
            assert_eq!(d.addr(), 0xdead_0000_0000);
            assert_eq!((d.len(), d.flags()), (2048, VIRTQ_DESC_F_WRITE));
        }
        // What the device fetches next carries the new address.
        assert_eq!(dev.take_avail().unwrap().1.addr(), 0xdead_0000_0000);
        // Unused descriptors (never pushed) are left alone.
        assert_eq!(q.read_desc(6), Desc::default());
        let empty = queue(4);
        // SAFETY: empty lives for the call.
        assert_eq!(unsafe { empty.view().redirect_unused(1) }, 0);
        // Pushed but not published: not the device's yet, left alone.
        q.write_desc(5, Desc::new(0x6000, 2048, VIRTQ_DESC_F_WRITE, 0));
        q.push_avail(5);
        // SAFETY: q lives for the call.
        assert_eq!(unsafe { q.view().redirect_unused(7) }, 3);
        assert_eq!(q.read_desc(5).addr(), 0x6000);
    }

    #[test]
    fn dma_buf_bounds() {
        let mut b = DmaBuf::from_memory(HeapDma::boxed(64));
        assert!(b.write(60, &[1, 2, 3, 4]));
        assert!(!b.write(61, &[1, 2, 3, 4]));
        assert_eq!(b.read(63), 4);
        assert_eq!(b.read(64), 0xff);
        assert_eq!(b.iova(8), b.iova(0) + 8);
    }
}
