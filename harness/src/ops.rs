//! The seam under every VFIO call: what [`crate::vfio`] needs from a
//! container and a device, as two small traits, and a third for direct
//! port I/O beside VFIO ([`PortOps`]). [`crate::sys`] implements them over
//! vfio-ioctls and the kernel; tests implement them in memory, so
//! the logic above (bounds, BAR kinds, interrupt bookkeeping, when pools are
//! mapped) is tested on any machine, and the real thing in the lab.

use std::path::Path;
use std::ptr::NonNull;

use pktkit_native::device::DeviceError;
use vfio_bindings::bindings::vfio::{
    VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vmm_sys_util::eventfd::EventFd;

use crate::error::HarnessError;

/// A device region as `VFIO_DEVICE_GET_REGION_INFO` describes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionInfo {
    /// Size in bytes (0: the region is not implemented, e.g. an unused BAR).
    pub size: u64,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
}

impl RegionInfo {
    /// Whether the region may be read through the device file.
    pub fn readable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_READ != 0
    }
    /// Whether the region may be written through the device file.
    pub fn writable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_WRITE != 0
    }
    /// Whether the region may be mmapped.
    pub fn mappable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_MMAP != 0
    }
}

/// One open VFIO device: regions, interrupts, reset.
pub trait DeviceOps: Send + Sync {
    /// The region at `index`, if the device has it.
    fn region(&self, index: u32) -> Option<RegionInfo>;
    /// How many interrupts of VFIO IRQ index `index` the device offers.
    fn irq_count(&self, index: u32) -> u32;
    /// Whether the device supports `VFIO_DEVICE_RESET`.
    fn can_reset(&self) -> bool;
    /// Reads `buf.len()` bytes of region `index` at `off`.
    fn read(&self, index: u32, off: u64, buf: &mut [u8]) -> Result<(), DeviceError>;
    /// Writes `buf` to region `index` at `off`.
    fn write(&self, index: u32, off: u64, buf: &[u8]) -> Result<(), DeviceError>;
    /// Maps the whole of region `index` (`len` bytes) shared, read/write.
    fn map(&self, index: u32, len: usize) -> Result<NonNull<u8>, DeviceError>;
    /// Undoes [`DeviceOps::map`].
    ///
    /// # Safety
    /// `ptr` and `len` must come from one `map` call of this device, and no
    /// access through the mapping may follow.
    unsafe fn unmap(&self, ptr: NonNull<u8>, len: usize);
    /// Routes interrupts `0..fds.len()` of IRQ index `index` to `fds`.
    fn set_irqs(&self, index: u32, fds: &[&EventFd]) -> Result<(), DeviceError>;
    /// Disables every interrupt of IRQ index `index`.
    fn disable_irqs(&self, index: u32) -> Result<(), DeviceError>;
    /// Unmasks INTx after the kernel masked it on delivery.
    fn unmask_intx(&self) -> Result<(), DeviceError>;
    /// Resets the function.
    fn reset(&self) -> Result<(), DeviceError>;
}

/// Direct access to I/O ports beside VFIO (x86-64 `ioperm` and
/// `in`/`out`, see [`crate::pio`]).
pub trait PortOps: Send + Sync {
    /// Whether the calling thread may reach the `len` ports from `base`
    /// directly; asks the first time on each thread, then remembers.
    fn granted(&self, base: u16, len: u16) -> bool;
    /// Reads `width` bytes (1, 2 or 4) from `port`.
    ///
    /// # Safety
    /// [`PortOps::granted`] must have said yes, on this thread, for a window
    /// that holds the whole access, of a device this process owns.
    unsafe fn input(&self, port: u16, width: u8) -> u32;
    /// Writes the low `width` bytes (1, 2 or 4) of `value` to `port`.
    ///
    /// # Safety
    /// As [`PortOps::input`].
    unsafe fn output(&self, port: u16, width: u8, value: u32);
}

/// No direct port I/O: every thread is refused, so every access goes
/// through VFIO (the default of [`crate::VfioContainer::with_backend`]).
pub struct NoPorts;

impl PortOps for NoPorts {
    fn granted(&self, _: u16, _: u16) -> bool {
        false
    }
    unsafe fn input(&self, _: u16, _: u8) -> u32 {
        unreachable!("no port is ever granted")
    }
    unsafe fn output(&self, _: u16, _: u8, _: u32) {
        unreachable!("no port is ever granted")
    }
}

/// A VFIO container: one IOMMU address space that devices join.
pub trait ContainerOps: Send + Sync {
    /// Opens the device whose sysfs directory is `path`, attaching its group
    /// to the container (the first group also selects the type1v2 IOMMU).
    fn open_device(&self, path: &Path) -> Result<Box<dyn DeviceOps>, HarnessError>;
    /// Maps `len` bytes at `va` for device DMA at `iova`, read/write.
    ///
    /// # Safety
    /// The memory must stay mapped in this process until
    /// [`ContainerOps::dma_unmap`] of the same range (or until the
    /// container's last group leaves), and while mapped it may change under
    /// the program at any time: it must only be accessed through raw
    /// pointers (volatile or atomic where the device may write), never
    /// through Rust references.
    unsafe fn dma_map(&self, iova: u64, len: usize, va: *mut u8) -> Result<(), HarnessError>;
    /// Removes a mapping made by [`ContainerOps::dma_map`].
    fn dma_unmap(&self, iova: u64, len: usize) -> Result<(), HarnessError>;
}
