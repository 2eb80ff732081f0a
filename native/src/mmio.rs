//! Volatile, bounds-checked access to one window of a mapped memory BAR:
//! how a native driver touches device registers.
//!
//! An [`Mmio`] covers one window `[base, base + len)`: a whole BAR (the
//! e1000's registers) or one structure inside a BAR (each virtio
//! structure, virtio 1.1 §4.1.4), so an access outside it cannot reach
//! anything else. Out-of-window or misaligned reads return all ones (what
//! a PCI read of nothing returns) and such writes are dropped; a driver's
//! register offsets are constants checked against the window at attach, so
//! neither happens in practice.
//!
//! Every access is one naturally aligned load or store of its width, in
//! little-endian order (PCI's); a 64-bit write is two 32-bit halves, low
//! first, as virtio 1.1 §4.1.3.1 asks.

use std::ptr::NonNull;

/// One window of a mapped memory BAR.
#[derive(Debug)]
pub struct Mmio {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: an Mmio is an address range of device registers; volatile accesses
// from any thread are what the device expects, and every access is a single
// aligned load or store.
unsafe impl Send for Mmio {}
// SAFETY: as for Send: shared access is only volatile register accesses.
unsafe impl Sync for Mmio {}

impl Mmio {
    /// A window of `len` bytes at `base`.
    ///
    /// # Safety
    /// `base..base + len` must be mapped device memory (or, in tests,
    /// ordinary memory) that stays mapped for as long as the `Mmio` lives,
    /// and `base` must be 4-byte aligned.
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Mmio {
        Mmio { base, len }
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether an access of `width` bytes at `off` lies inside the window
    /// and is naturally aligned.
    fn fits(&self, off: usize, width: usize) -> bool {
        off & (width - 1) == 0 && off.checked_add(width).is_some_and(|end| end <= self.len)
    }

    /// Reads an 8-bit register.
    #[inline]
    pub fn read8(&self, off: usize) -> u8 {
        if !self.fits(off, 1) {
            return u8::MAX;
        }
        // SAFETY: inside the window (checked), which `new`'s contract keeps mapped.
        unsafe { self.base.as_ptr().add(off).read_volatile() }
    }

    /// Reads a little-endian 16-bit register.
    #[inline]
    pub fn read16(&self, off: usize) -> u16 {
        if !self.fits(off, 2) {
            return u16::MAX;
        }
        // SAFETY: inside the window and aligned (checked; base is 4-aligned).
        u16::from_le(unsafe { self.base.as_ptr().add(off).cast::<u16>().read_volatile() })
    }

    /// Reads a little-endian 32-bit register.
    #[inline]
    pub fn read32(&self, off: usize) -> u32 {
        if !self.fits(off, 4) {
            return u32::MAX;
        }
        // SAFETY: inside the window and aligned (checked; base is 4-aligned).
        u32::from_le(unsafe { self.base.as_ptr().add(off).cast::<u32>().read_volatile() })
    }

    /// Writes an 8-bit register.
    #[inline]
    pub fn write8(&self, off: usize, v: u8) {
        if self.fits(off, 1) {
            // SAFETY: inside the window (checked).
            unsafe { self.base.as_ptr().add(off).write_volatile(v) }
        }
    }

    /// Writes a little-endian 16-bit register.
    #[inline]
    pub fn write16(&self, off: usize, v: u16) {
        if self.fits(off, 2) {
            // SAFETY: inside the window and aligned (checked).
            unsafe {
                self.base
                    .as_ptr()
                    .add(off)
                    .cast::<u16>()
                    .write_volatile(v.to_le())
            }
        }
    }

    /// Writes a little-endian 32-bit register.
    #[inline]
    pub fn write32(&self, off: usize, v: u32) {
        if self.fits(off, 4) {
            // SAFETY: inside the window and aligned (checked).
            unsafe {
                self.base
                    .as_ptr()
                    .add(off)
                    .cast::<u32>()
                    .write_volatile(v.to_le())
            }
        }
    }

    /// Writes a 64-bit field as two 32-bit halves, low first (virtio 1.1
    /// §4.1.3.1 allows the halves to be written independently).
    #[inline]
    pub fn write64(&self, off: usize, v: u64) {
        self.write32(off, v as u32);
        self.write32(off + 4, (v >> 32) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_stay_inside_the_window() {
        let mut mem = [0u32; 4];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` outlives `m` and is 4-aligned.
        let m = unsafe { Mmio::new(base, 12) };
        m.write32(0, 0x1122_3344);
        m.write16(4, 0xaabb);
        m.write8(6, 0xcc);
        assert_eq!(m.read32(0), 0x1122_3344);
        assert_eq!(m.read16(4), 0xaabb);
        assert_eq!(m.read8(6), 0xcc);
        assert_eq!(m.read8(0), 0x44, "little endian");
        m.write64(4, 0x0102_0304_0506_0708);
        assert_eq!(m.read32(4), 0x0506_0708);
        assert_eq!(m.read32(8), 0x0102_0304);
        // Past the end or unaligned: all ones, and writes change nothing.
        assert_eq!(m.read32(12), u32::MAX);
        assert_eq!(m.read16(3), u16::MAX);
        m.write32(12, 7);
        m.write16(1, 7);
        assert_eq!(mem[3], 0);
        assert_eq!(mem[0], 0x1122_3344);
    }
}
