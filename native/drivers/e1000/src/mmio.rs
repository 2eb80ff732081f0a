//! Volatile access to the device's memory-mapped registers (BAR0).
//!
//! The only place the driver touches device registers. Accesses are
//! bounds-checked against the mapping; an access outside it (a bug) reads
//! all ones, as a missing PCI device does, and writes nothing.

use std::ptr::NonNull;

use crate::regs::Reg;

/// BAR0 of one controller, mapped into this process.
pub struct Mmio {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain device memory reached only through volatile
// 32-bit loads and stores, which the device serialises; sharing the pointer
// between threads is as safe as sharing the device.
unsafe impl Send for Mmio {}
// SAFETY: as above; no method hands out references into the mapping.
unsafe impl Sync for Mmio {}

impl Mmio {
    /// Wraps a register mapping.
    ///
    /// # Safety
    /// `base..base+len` must be a mapping of the controller's BAR0 that stays
    /// valid for as long as the returned value lives (the owner keeps the
    /// `PciDevice` that mapped it alive at least that long).
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Mmio {
        Mmio { base, len }
    }

    fn ptr(&self, reg: Reg) -> Option<*mut u32> {
        let off = reg.0 as usize;
        if off & 3 != 0 || off + 4 > self.len {
            return None;
        }
        // SAFETY: off + 4 <= len, so the pointer stays inside the mapping.
        Some(unsafe { self.base.as_ptr().add(off) }.cast::<u32>())
    }

    /// Reads a register.
    #[inline]
    pub fn read(&self, reg: Reg) -> u32 {
        match self.ptr(reg) {
            // SAFETY: ptr() checked the register is inside the live mapping
            // and 4-byte aligned (the mapping is page aligned).
            Some(p) => u32::from_le(unsafe { p.read_volatile() }),
            None => u32::MAX,
        }
    }

    /// Writes a register.
    #[inline]
    pub fn write(&self, reg: Reg, value: u32) {
        if let Some(p) = self.ptr(reg) {
            // SAFETY: as in read().
            unsafe { p.write_volatile(value.to_le()) }
        }
    }

    /// Sets bits of a register (read-modify-write; callers serialise).
    pub fn set_bits(&self, reg: Reg, bits: u32) {
        self.write(reg, self.read(reg) | bits);
    }

    /// Clears bits of a register (read-modify-write; callers serialise).
    pub fn clear_bits(&self, reg: Reg, bits: u32) {
        self.write(reg, self.read(reg) & !bits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let mut mem = vec![0u32; 8];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` outlives `m` and is 32 bytes long.
        let m = unsafe { Mmio::new(base, 32) };
        m.write(Reg(4), 0x1234_5678);
        assert_eq!(m.read(Reg(4)), 0x1234_5678);
        m.set_bits(Reg(4), 0x8000_0000);
        m.clear_bits(Reg(4), 0x8);
        assert_eq!(m.read(Reg(4)), 0x9234_5670);
        // Outside or misaligned: all ones, nothing written.
        assert_eq!(m.read(Reg(32)), u32::MAX);
        assert_eq!(m.read(Reg(2)), u32::MAX);
        m.write(Reg(28), 7);
        m.write(Reg(30), 9);
        assert_eq!(m.read(Reg(28)), 7);
        assert_eq!((0..8).filter(|i| m.read(Reg(i * 4)) == 9).count(), 0);
    }
}
