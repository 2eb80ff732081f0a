//! The controller's registers (BAR0), by name: pktkit-native's bounds-checked
//! [`pktkit_native::mmio::Mmio`] window with e1000 register offsets.
//!
//! The only place the driver touches device registers. An access outside
//! the mapping (a bug) reads all ones, as a missing PCI device does, and
//! writes nothing.

use std::ptr::NonNull;

use crate::regs::Reg;

/// BAR0 of one controller, mapped into this process.
pub struct Mmio(pktkit_native::mmio::Mmio);

impl Mmio {
    /// Wraps a register mapping.
    ///
    /// # Safety
    /// `base..base+len` must be a mapping of the controller's BAR0 that stays
    /// valid for as long as the returned value lives (the owner keeps the
    /// `PciDevice` that mapped it alive at least that long).
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Mmio {
        // SAFETY: forwarded contract.
        Mmio(unsafe { pktkit_native::mmio::Mmio::new(base, len) })
    }

    /// Reads a register.
    #[inline]
    pub fn read(&self, reg: Reg) -> u32 {
        self.0.read32(reg.0 as usize)
    }

    /// Writes a register.
    #[inline]
    pub fn write(&self, reg: Reg, value: u32) {
        self.0.write32(reg.0 as usize, value)
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
