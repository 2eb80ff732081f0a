//! Legacy receive and transmit descriptors and the DMA rings holding them.
//!
//! The rings live in `PciDevice::dma_alloc` memory that the device reads
//! and writes behind our back, so every access to a descriptor is a
//! volatile load or store of a copy; nothing hands out references into the
//! ring. All fields are little-endian in memory (SDM 3.2.3, 3.3.3).

use pktkit_native::device::DmaMemory;

/// Legacy receive descriptor (SDM 3.2.3, table 3-1). 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxDesc {
    addr: u64,
    length: u16,
    csum: u16,
    status: u8,
    errors: u8,
    special: u16,
}

/// Receive descriptor status bits (SDM 3.2.3.1, table 3-2).
pub mod rx_status {
    /// Descriptor done: the device wrote this descriptor back.
    pub const DD: u8 = 1 << 0;
    /// End of packet: the last descriptor of a frame.
    pub const EOP: u8 = 1 << 1;
}

/// Receive descriptor error bits (SDM 3.2.3.2, table 3-3).
pub mod rx_errors {
    /// CRC or alignment error.
    pub const CE: u8 = 1 << 0;
    /// Symbol error.
    pub const SE: u8 = 1 << 1;
    /// Sequence error.
    pub const SEQ: u8 = 1 << 2;
    /// Carrier extension error.
    pub const CXE: u8 = 1 << 4;
    /// RX data error.
    pub const RXE: u8 = 1 << 7;
    /// Errors that make the frame unusable (checksum errors do not).
    pub const FRAME: u8 = CE | SE | SEQ | CXE | RXE;
}

impl RxDesc {
    /// A descriptor offering the buffer at `iova` to the device.
    pub fn new(iova: u64) -> RxDesc {
        RxDesc {
            addr: iova.to_le(),
            ..RxDesc::default()
        }
    }

    /// The buffer address.
    pub fn addr(&self) -> u64 {
        u64::from_le(self.addr)
    }

    /// Bytes the device stored in this descriptor's buffer.
    pub fn length(&self) -> u16 {
        u16::from_le(self.length)
    }

    /// Status bits ([`rx_status`]).
    pub fn status(&self) -> u8 {
        self.status
    }

    /// Error bits ([`rx_errors`]), valid with EOP.
    pub fn errors(&self) -> u8 {
        self.errors
    }
}

/// Legacy transmit descriptor (SDM 3.3.3, table 3-8). 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxDesc {
    addr: u64,
    length: u16,
    cso: u8,
    cmd: u8,
    status: u8,
    css: u8,
    special: u16,
}

/// Transmit descriptor command bits (SDM 3.3.3.1, table 3-10).
pub mod tx_cmd {
    /// End of packet.
    pub const EOP: u8 = 1 << 0;
    /// Insert the Ethernet CRC.
    pub const IFCS: u8 = 1 << 1;
    /// Report status: write DD back when done.
    pub const RS: u8 = 1 << 3;
}

/// Transmit descriptor status bits (SDM 3.3.3.2, table 3-11).
pub mod tx_status {
    /// Descriptor done.
    pub const DD: u8 = 1 << 0;
}

impl TxDesc {
    /// A descriptor sending `len` bytes at `iova` with command bits `cmd`.
    pub fn new(iova: u64, len: u16, cmd: u8) -> TxDesc {
        TxDesc {
            addr: iova.to_le(),
            length: len.to_le(),
            cmd,
            ..TxDesc::default()
        }
    }

    /// The buffer address.
    pub fn addr(&self) -> u64 {
        u64::from_le(self.addr)
    }

    /// Bytes to send.
    pub fn length(&self) -> u16 {
        u16::from_le(self.length)
    }

    /// Command bits ([`tx_cmd`]).
    pub fn cmd(&self) -> u8 {
        self.cmd
    }
}

/// Byte offset of the status byte in both descriptor kinds.
const STATUS_OFFSET: usize = 12;
/// Size of one descriptor of either kind.
pub const DESC_SIZE: usize = 16;

/// Marker for the two descriptor types a ring may hold.
pub trait Descriptor: Copy + Default {}
impl Descriptor for RxDesc {}
impl Descriptor for TxDesc {}

/// A descriptor ring in DMA memory.
pub struct Ring<D: Descriptor> {
    mem: Box<dyn DmaMemory>,
    len: usize,
    _desc: std::marker::PhantomData<D>,
}

impl<D: Descriptor> Ring<D> {
    /// Wraps `mem` as `len` descriptors, all zeroed. `None` if `mem` is too
    /// short or not 128-byte aligned (SDM 3.2.6: RDLEN/TDLEN are multiples
    /// of 128 bytes and the base is 16-byte aligned; DMA memory is page
    /// aligned).
    pub fn new(mem: Box<dyn DmaMemory>, len: usize) -> Option<Ring<D>> {
        let bytes = len.checked_mul(DESC_SIZE)?;
        if len == 0 || mem.len() < bytes || mem.as_ptr() as usize & 127 != 0 {
            return None;
        }
        let r = Ring {
            mem,
            len,
            _desc: std::marker::PhantomData,
        };
        for i in 0..len {
            r.write(i, D::default());
        }
        Some(r)
    }

    /// Number of descriptors.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring has no descriptors (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The IOVA of descriptor 0, for RDBAL/RDBAH or TDBAL/TDBAH.
    pub fn iova(&self) -> u64 {
        self.mem.iova()
    }

    /// Bytes of the ring, for RDLEN/TDLEN.
    pub fn bytes(&self) -> u32 {
        (self.len * DESC_SIZE) as u32
    }

    fn slot(&self, i: usize) -> Option<*mut D> {
        // SAFETY: i < len and the memory holds len descriptors (checked in
        // new), so the offset stays inside the allocation.
        (i < self.len).then(|| unsafe { self.mem.as_ptr().cast::<D>().add(i) })
    }

    /// A copy of descriptor `i` (a default one if `i` is out of range).
    #[inline]
    pub fn read(&self, i: usize) -> D {
        match self.slot(i) {
            // SAFETY: the slot is inside the live DMA block and aligned (the
            // block is page aligned, descriptors are 16 bytes); the device
            // may write it concurrently, hence the volatile copy.
            Some(p) => unsafe { p.read_volatile() },
            None => D::default(),
        }
    }

    /// Writes descriptor `i` (ignored if out of range).
    #[inline]
    pub fn write(&self, i: usize, d: D) {
        if let Some(p) = self.slot(i) {
            // SAFETY: as in read(); the driver writes only descriptors it
            // owns (not yet handed to the device by the tail register).
            unsafe { p.write_volatile(d) }
        }
    }

    /// Where this ring is, for code that does not own it (fault injection
    /// from the control side, see [`RingView`]).
    pub fn view(&self) -> RingView {
        RingView {
            base: self.mem.as_ptr() as usize,
            len: self.len,
        }
    }

    /// The status byte of descriptor `i` alone (0 if out of range): what is
    /// polled for DD before the rest of the descriptor is read.
    #[inline]
    pub fn status(&self, i: usize) -> u8 {
        match self.slot(i) {
            // SAFETY: as in read(); the status byte lies inside the slot.
            Some(p) => unsafe { p.cast::<u8>().add(STATUS_OFFSET).read_volatile() },
            None => 0,
        }
    }
}

/// The location of a live ring, held by the control side while the queue
/// owning the ring runs (see `Shared::poison_rx`). It is plain numbers:
/// writing through it is sound only while the ring it came from lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingView {
    base: usize,
    len: usize,
}

impl RingView {
    /// Number of descriptors.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring has no descriptors (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replaces the buffer address (bytes 0-7 of both descriptor kinds,
    /// SDM tables 3-1 and 3-8) of descriptor `i`, leaving the fields the
    /// device writes back alone. Ignored if `i` is out of range.
    ///
    /// # Safety
    ///
    /// The [`Ring`] this view came from must still be alive (its DMA
    /// memory not freed).
    pub unsafe fn set_addr(&self, i: usize, iova: u64) {
        if i < self.len {
            let p = (self.base + i * DESC_SIZE) as *mut u64;
            // SAFETY: the caller guarantees the ring's memory is alive; i <
            // len keeps the 8 bytes inside descriptor i, which is 16-byte
            // aligned. Volatile: the device reads the ring concurrently.
            unsafe { p.write_volatile(iova.to_le()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Pins the layouts of SDM tables 3-1 and 3-8.
    #[test]
    fn layouts() {
        assert_eq!(size_of::<RxDesc>(), DESC_SIZE);
        assert_eq!(offset_of!(RxDesc, addr), 0);
        assert_eq!(offset_of!(RxDesc, length), 8);
        assert_eq!(offset_of!(RxDesc, csum), 10);
        assert_eq!(offset_of!(RxDesc, status), STATUS_OFFSET);
        assert_eq!(offset_of!(RxDesc, errors), 13);
        assert_eq!(offset_of!(RxDesc, special), 14);
        assert_eq!(size_of::<TxDesc>(), DESC_SIZE);
        assert_eq!(offset_of!(TxDesc, addr), 0);
        assert_eq!(offset_of!(TxDesc, length), 8);
        assert_eq!(offset_of!(TxDesc, cso), 10);
        assert_eq!(offset_of!(TxDesc, cmd), 11);
        assert_eq!(offset_of!(TxDesc, status), STATUS_OFFSET);
        assert_eq!(offset_of!(TxDesc, css), 13);
        assert_eq!(offset_of!(TxDesc, special), 14);
    }

    /// Page-aligned heap memory standing in for DMA memory.
    pub(crate) struct TestMem(*mut u8, usize);
    // SAFETY: the test owns the block exclusively.
    unsafe impl Send for TestMem {}
    impl TestMem {
        pub(crate) fn new(len: usize) -> TestMem {
            let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
            // SAFETY: non-zero size.
            TestMem(unsafe { std::alloc::alloc_zeroed(layout) }, len)
        }
    }
    impl Drop for TestMem {
        fn drop(&mut self) {
            let layout = std::alloc::Layout::from_size_align(self.1, 4096).unwrap();
            // SAFETY: allocated in new() with this layout.
            unsafe { std::alloc::dealloc(self.0, layout) }
        }
    }
    impl DmaMemory for TestMem {
        fn as_ptr(&self) -> *mut u8 {
            self.0
        }
        fn iova(&self) -> u64 {
            self.0 as u64
        }
        fn len(&self) -> usize {
            self.1
        }
    }

    #[test]
    fn ring_reads_what_the_device_writes() {
        let ring: Ring<RxDesc> = Ring::new(Box::new(TestMem::new(4096)), 8).unwrap();
        assert_eq!(ring.bytes(), 128);
        ring.write(3, RxDesc::new(0x1234_5678_9abc));
        assert_eq!(ring.read(3).addr(), 0x1234_5678_9abc);
        assert_eq!(ring.status(3), 0);
        // The device writes back length, status and errors.
        let raw = ring.iova() as *mut u8;
        // SAFETY: descriptor 3 lies inside the 4 KiB test block.
        unsafe {
            raw.add(3 * 16 + 8).cast::<u16>().write(60u16.to_le());
            raw.add(3 * 16 + 12).write(rx_status::DD | rx_status::EOP);
        }
        assert_eq!(ring.status(3), rx_status::DD | rx_status::EOP);
        assert_eq!(ring.read(3).length(), 60);
        // Out of range: harmless.
        assert_eq!(ring.status(8), 0);
        ring.write(8, RxDesc::new(1));
        assert!(Ring::<TxDesc>::new(Box::new(TestMem::new(64)), 8).is_none());
    }

    #[test]
    fn a_view_rewrites_only_the_buffer_address() {
        let ring: Ring<RxDesc> = Ring::new(Box::new(TestMem::new(4096)), 8).unwrap();
        ring.write(5, RxDesc::new(0x1000));
        let raw = ring.iova() as *mut u8;
        // SAFETY: descriptor 5 lies inside the 4 KiB test block.
        unsafe { raw.add(5 * 16 + 12).write(rx_status::DD) };
        let view = ring.view();
        assert_eq!(view.len(), 8);
        // SAFETY: `ring` is alive.
        unsafe {
            view.set_addr(5, 0xdead_0000);
            view.set_addr(8, 0xdead_0000);
        }
        assert_eq!(ring.read(5).addr(), 0xdead_0000);
        assert_eq!(ring.status(5), rx_status::DD);
        assert_eq!(ring.read(4).addr(), 0);
        assert_eq!(ring.read(6).addr(), 0);
    }

    #[test]
    fn tx_descriptor_fields() {
        let d = TxDesc::new(0xdead_beef, 1514, tx_cmd::EOP | tx_cmd::IFCS | tx_cmd::RS);
        assert_eq!((d.addr(), d.length(), d.cmd()), (0xdead_beef, 1514, 0x0b));
    }
}
