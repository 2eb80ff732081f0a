//! What a PCI driver needs from the machine, as traits: config space, BARs,
//! DMA-capable memory with IOVAs, interrupts as file descriptors, and function
//! reset. `pktkit-harness` implements them over VFIO; register-level unit
//! tests may implement them with small doubles, while real device behaviour is
//! proven in the lab against QEMU's devices.

use std::os::fd::RawFd;

/// A PCI function address, `domain:bus:device.function`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    /// PCI domain (segment).
    pub domain: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub device: u8,
    /// Function number (0..8).
    pub function: u8,
}

impl std::str::FromStr for PciAddress {
    type Err = String;

    /// Parses `DDDD:BB:DD.F` or `BB:DD.F` (domain 0).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a PCI address (DDDD:BB:DD.F)");
        let parts: Vec<&str> = s.split(':').collect();
        let (dom, bus, rest) = match parts.as_slice() {
            [d, b, r] => (u16::from_str_radix(d, 16).map_err(|_| bad())?, *b, *r),
            [b, r] => (0, *b, *r),
            _ => return Err(bad()),
        };
        let (dev, func) = rest.split_once('.').ok_or_else(bad)?;
        let a = PciAddress {
            domain: dom,
            bus: u8::from_str_radix(bus, 16).map_err(|_| bad())?,
            device: u8::from_str_radix(dev, 16).map_err(|_| bad())?,
            function: u8::from_str_radix(func, 16).map_err(|_| bad())?,
        };
        if a.device >= 32 || a.function >= 8 {
            return Err(bad());
        }
        Ok(a)
    }
}

impl std::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// Which interrupt mechanism to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqKind {
    /// Legacy pin interrupt; needs [`PciDevice::unmask_intx`] after each.
    Intx,
    /// Message signalled interrupts.
    Msi,
    /// MSI-X, one vector per queue.
    Msix,
}

/// Device-access error, keeping the OS error.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// An OS call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The BAR, offset or vector asked for does not exist.
    #[error("out of range: {0}")]
    Range(String),
    /// The device does not support the request.
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// A block of DMA-capable memory, mapped for the device.
pub trait DmaMemory: Send {
    /// Virtual address of the start.
    fn as_ptr(&self) -> *mut u8;
    /// IOVA the device uses for the start.
    fn iova(&self) -> u64;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the block is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Access to one PCI function.
pub trait PciDevice: Send {
    /// Its address.
    fn address(&self) -> PciAddress;
    /// Reads `N` bytes (1, 2 or 4) of config space at `off`.
    fn config_read(&self, off: u16, width: u8) -> Result<u32, DeviceError>;
    /// Writes config space.
    fn config_write(&self, off: u16, width: u8, value: u32) -> Result<(), DeviceError>;
    /// Maps memory BAR `bar` and returns its address and length.
    fn map_bar(&mut self, bar: u8) -> Result<(*mut u8, usize), DeviceError>;
    /// Reads an I/O-port BAR register.
    fn io_read(&self, bar: u8, off: u64, width: u8) -> Result<u32, DeviceError>;
    /// Writes an I/O-port BAR register.
    fn io_write(&self, bar: u8, off: u64, width: u8, value: u32) -> Result<(), DeviceError>;
    /// Allocates DMA memory of `len` bytes, mapped for the device.
    fn dma_alloc(&mut self, len: usize) -> Result<Box<dyn DmaMemory>, DeviceError>;
    /// Enables `count` interrupt vectors of `kind`; returns one fd per vector.
    fn enable_irqs(&mut self, kind: IrqKind, count: u32) -> Result<Vec<RawFd>, DeviceError>;
    /// Disables the interrupts enabled by `enable_irqs`.
    fn disable_irqs(&mut self) -> Result<(), DeviceError>;
    /// Unmasks INTx after one was taken.
    fn unmask_intx(&self) -> Result<(), DeviceError>;
    /// Resets the function.
    fn reset(&mut self) -> Result<(), DeviceError>;
    /// How the function's registers are reached, as facts for a driver's
    /// `describe()` (e.g. `("port I/O BAR 0", "direct 0xc000-0xc01f")`);
    /// none by default.
    fn access(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Opens PCI functions for drivers; implemented by the stack over VFIO.
pub trait PciOpener: Send + Sync {
    /// Opens `addr` for exclusive use by one driver, with the stack's pools
    /// mapped for DMA (IOVA = VA).
    fn open(&self, addr: PciAddress) -> Result<Box<dyn PciDevice>, DeviceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_address_round_trip() {
        let a: PciAddress = "0000:00:03.0".parse().unwrap();
        assert_eq!(a.to_string(), "0000:00:03.0");
        let b: PciAddress = "01:1f.7".parse().unwrap();
        assert_eq!((b.bus, b.device, b.function), (1, 0x1f, 7));
        assert!("00:20.0".parse::<PciAddress>().is_err());
        assert!("zz".parse::<PciAddress>().is_err());
    }
}
