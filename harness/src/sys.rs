//! The real backend of the [`crate::ops`] seam: vfio-ioctls for the
//! container, group and device ioctls, and the few syscalls it does not
//! wrap (pread/pwrite on regions, so errors keep their errno; mmap of BARs
//! and of anonymous DMA memory), and direct port I/O ([`SysPorts`]:
//! `ioperm`, `in`/`out`).
//!
//! All of the harness's `unsafe` is in this module.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use pktkit_native::device::DeviceError;
use vfio_bindings::bindings::vfio::VFIO_PCI_INTX_IRQ_INDEX;
use vfio_ioctls::{VfioContainer, VfioDevice, VfioOps};
use vmm_sys_util::eventfd::EventFd;

use crate::error::HarnessError;
use crate::ops::{ContainerOps, DeviceOps, PortOps, RegionInfo};

fn os_err(op: String) -> DeviceError {
    DeviceError::Io {
        op,
        source: io::Error::last_os_error(),
    }
}

/// vfio-ioctls' interrupt calls give no errno; keep its error as the source.
fn vfio_err(op: String, e: vfio_ioctls::VfioError) -> DeviceError {
    DeviceError::Io {
        op,
        source: io::Error::other(e),
    }
}

/// A container at `/dev/vfio/vfio`.
pub struct SysContainer {
    container: Arc<VfioContainer>,
}

impl SysContainer {
    /// Opens `/dev/vfio/vfio` and checks it offers the type1v2 IOMMU.
    pub fn open() -> Result<SysContainer, HarnessError> {
        let container = VfioContainer::new(None).map_err(|source| HarnessError::Vfio {
            op: "open VFIO container /dev/vfio/vfio (is vfio loaded?)".into(),
            source,
        })?;
        Ok(SysContainer {
            container: Arc::new(container),
        })
    }
}

impl ContainerOps for SysContainer {
    fn open_device(&self, path: &Path) -> Result<Box<dyn DeviceOps>, HarnessError> {
        let ops: Arc<dyn VfioOps> = self.container.clone();
        let dev = VfioDevice::new(path, ops, false).map_err(|source| HarnessError::Vfio {
            op: format!("open VFIO device {}", path.display()),
            source,
        })?;
        // vfio-ioctls does not say whether the device can reset; sysfs
        // offers `reset` exactly when the kernel has a reset method for it.
        let can_reset = path.join("reset").exists();
        Ok(Box::new(SysDevice { dev, can_reset }))
    }

    unsafe fn dma_map(&self, iova: u64, len: usize, va: *mut u8) -> Result<(), HarnessError> {
        // SAFETY: the caller upholds vfio_dma_map's contract, which is ours.
        unsafe { self.container.vfio_dma_map(iova, len, va) }.map_err(|source| {
            // IOVA = VA needs as many address bits as user space uses (47);
            // an IOMMU with a 39-bit address width refuses with EINVAL.
            let hint = if (iova + len as u64) >> 39 != 0 {
                " (if EINVAL: the IOMMU's address width may be below 48 bits, \
                 which IOVA = VA needs; QEMU: -device intel-iommu,aw-bits=48)"
            } else {
                ""
            };
            HarnessError::Vfio {
                op: format!("VFIO_IOMMU_MAP_DMA iova {iova:#x} len {len:#x}{hint}"),
                source,
            }
        })
    }

    fn dma_unmap(&self, iova: u64, len: usize) -> Result<(), HarnessError> {
        self.container
            .vfio_dma_unmap(iova, len)
            .map_err(|source| HarnessError::Vfio {
                op: format!("VFIO_IOMMU_UNMAP_DMA iova {iova:#x} len {len:#x}"),
                source,
            })
    }
}

struct SysDevice {
    dev: VfioDevice,
    can_reset: bool,
}

impl SysDevice {
    /// File offset of `off` in region `index`.
    fn file_offset(&self, index: u32, off: u64) -> Result<libc::off_t, DeviceError> {
        let base = self.dev.get_region_offset(index);
        base.checked_add(off)
            .and_then(|o| libc::off_t::try_from(o).ok())
            .ok_or_else(|| DeviceError::Range(format!("region {index} offset {off:#x}")))
    }
}

impl DeviceOps for SysDevice {
    fn region(&self, index: u32) -> Option<RegionInfo> {
        let flags = self.dev.get_region_flags(index);
        if flags == 0 {
            return None;
        }
        Some(RegionInfo {
            size: self.dev.get_region_size(index),
            flags,
        })
    }

    fn irq_count(&self, index: u32) -> u32 {
        self.dev.get_irq_info(index).map_or(0, |i| i.count)
    }

    fn can_reset(&self) -> bool {
        self.can_reset
    }

    fn read(&self, index: u32, off: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let pos = self.file_offset(index, off)?;
        // SAFETY: buf is valid for writes of buf.len() bytes; the fd is the
        // open device, which `self.dev` keeps open.
        let n = unsafe {
            libc::pread(
                self.dev.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                pos,
            )
        };
        match usize::try_from(n) {
            Ok(n) if n == buf.len() => Ok(()),
            Ok(n) => Err(DeviceError::Range(format!(
                "region {index} read at {off:#x}: {n} of {} bytes",
                buf.len()
            ))),
            Err(_) => Err(os_err(format!("read region {index} at {off:#x}"))),
        }
    }

    fn write(&self, index: u32, off: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let pos = self.file_offset(index, off)?;
        // SAFETY: buf is valid for reads of buf.len() bytes; the fd is open.
        let n = unsafe { libc::pwrite(self.dev.as_raw_fd(), buf.as_ptr().cast(), buf.len(), pos) };
        match usize::try_from(n) {
            Ok(n) if n == buf.len() => Ok(()),
            Ok(n) => Err(DeviceError::Range(format!(
                "region {index} write at {off:#x}: {n} of {} bytes",
                buf.len()
            ))),
            Err(_) => Err(os_err(format!("write region {index} at {off:#x}"))),
        }
    }

    fn map(&self, index: u32, len: usize) -> Result<NonNull<u8>, DeviceError> {
        let pos = self.file_offset(index, 0)?;
        // SAFETY: a new shared mapping chosen by the kernel (no fixed
        // address), so no existing memory is affected; the fd is open.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.dev.as_raw_fd(),
                pos,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err(format!("mmap region {index} ({len:#x} bytes)")));
        }
        NonNull::new(p.cast()).ok_or_else(|| DeviceError::Range("mmap returned null".into()))
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len: usize) {
        // SAFETY: per this fn's contract the range is one mapping of ours
        // that nothing uses any more.
        unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
    }

    fn set_irqs(&self, index: u32, fds: &[&EventFd]) -> Result<(), DeviceError> {
        self.dev.enable_irq(index, fds.to_vec()).map_err(|e| {
            vfio_err(
                format!("VFIO_DEVICE_SET_IRQS index {index}, {} eventfds", fds.len()),
                e,
            )
        })
    }

    fn disable_irqs(&self, index: u32) -> Result<(), DeviceError> {
        self.dev
            .disable_irq(index)
            .map_err(|e| vfio_err(format!("VFIO_DEVICE_SET_IRQS disable index {index}"), e))
    }

    fn unmask_intx(&self) -> Result<(), DeviceError> {
        self.dev
            .unmask_irq(VFIO_PCI_INTX_IRQ_INDEX)
            .map_err(|e| vfio_err("VFIO_DEVICE_SET_IRQS unmask INTx".into(), e))
    }

    fn reset(&self) -> Result<(), DeviceError> {
        // vfio-ioctls issues VFIO_DEVICE_RESET when the device flags allow
        // it, and does not return the ioctl's result.
        self.dev.reset();
        Ok(())
    }
}

/// Page-aligned anonymous memory for DMA (descriptor rings and the like),
/// unmapped on drop. VFIO pins it when it is DMA-mapped.
pub struct AnonMemory {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; the raw pointer is
// only handed out, never dereferenced here.
unsafe impl Send for AnonMemory {}
// SAFETY: as above; no interior state is touched through &self.
unsafe impl Sync for AnonMemory {}

impl AnonMemory {
    /// The page size.
    pub fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p).unwrap_or(4096)
    }

    /// Maps `len` bytes (rounded up to whole pages), zeroed and populated.
    pub fn new(len: usize) -> Result<AnonMemory, DeviceError> {
        let page = Self::page_size();
        let len = len
            .max(1)
            .checked_next_multiple_of(page)
            .ok_or_else(|| DeviceError::Range(format!("DMA allocation of {len} bytes")))?;
        // Below 2 GiB first (MAP_32BIT): IOVA = VA, and devices with 32-bit
        // DMA addresses (RTL8139 TSAD/RBSTART, PCnet, 8255x) must reach
        // their rings. Anywhere when that window is full.
        let map = |extra: libc::c_int| {
            // SAFETY: a new private anonymous mapping at a kernel-chosen address.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra,
                    -1,
                    0,
                )
            }
        };
        let mut p = map(libc::MAP_32BIT);
        if p == libc::MAP_FAILED {
            p = map(0);
        }
        if p == libc::MAP_FAILED {
            return Err(os_err(format!("mmap {len} bytes of DMA memory")));
        }
        let ptr = NonNull::new(p.cast())
            .ok_or_else(|| DeviceError::Range("mmap returned null".into()))?;
        Ok(AnonMemory { ptr, len })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: at least one page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for AnonMemory {
    fn drop(&mut self) {
        // SAFETY: our own mapping, of this length; nothing uses it after
        // the owner dropped it.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A pointer that is sent between threads with the device that owns what it
/// points at (a BAR mapping).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendPtr(pub(crate) NonNull<u8>);

// SAFETY: a BAR mapping is MMIO owned by one device value; the pointer is
// only handed to the driver, which accesses it with volatile operations.
unsafe impl Send for SendPtr {}

thread_local! {
    /// Port windows this thread asked permission for (`ioperm` is per
    /// thread), and the kernel's answers.
    static GRANTED: RefCell<Vec<(u16, u16, bool)>> = const { RefCell::new(Vec::new()) };
    /// The window this thread last found granted: a run of accesses to one
    /// device (an NE2000 frame) asks with one compare, not a list search.
    static LAST: Cell<(u16, u16)> = const { Cell::new((0, 0)) };
}

/// Direct port I/O on this machine: `ioperm(2)` for exactly a window's
/// ports, once per thread, then `in`/`out` (x86-64; elsewhere every thread
/// is refused).
pub struct SysPorts;

impl PortOps for SysPorts {
    fn granted(&self, base: u16, len: u16) -> bool {
        // len is never 0 for a window, so (0, 0) never matches.
        if LAST.try_with(Cell::get) == Ok((base, len)) {
            return true;
        }
        let asked = GRANTED.try_with(|g| {
            let mut g = g.borrow_mut();
            if let Some(e) = g.iter().find(|e| (e.0, e.1) == (base, len)) {
                return e.2;
            }
            let ok = ioperm(base, len);
            if !ok {
                log::debug!(
                    "ports {base:#x}+{len:#x}: ioperm refused on this thread: {}",
                    io::Error::last_os_error()
                );
            }
            g.push((base, len, ok));
            ok
        });
        // Err: the thread is ending: no new permissions, VFIO instead.
        let ok = asked.unwrap_or(false);
        if ok {
            let _ = LAST.try_with(|l| l.set((base, len)));
        }
        ok
    }

    unsafe fn input(&self, port: u16, width: u8) -> u32 {
        // SAFETY: forwarded contract.
        unsafe { arch::input(port, width) }
    }

    unsafe fn output(&self, port: u16, width: u8, value: u32) {
        // SAFETY: forwarded contract.
        unsafe { arch::output(port, width, value) }
    }
}

/// Asks for the calling thread's permission to `len` ports from `base`.
fn ioperm(base: u16, len: u16) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: ioperm changes only this thread's port permission bitmap.
        unsafe { libc::ioperm(libc::c_ulong::from(base), libc::c_ulong::from(len), 1) == 0 }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (base, len);
        false
    }
}

/// The instructions. Not `nomem`: a port write is often a doorbell for
/// DMA memory written just before (and a read a status the caller then
/// reads memory by), so each stays a compiler barrier, as the `pwrite`
/// system call it replaces was.
#[cfg(target_arch = "x86_64")]
mod arch {
    use std::arch::asm;

    /// `in` of `width` bytes (1, 2, else 4) from `port`.
    ///
    /// # Safety
    /// The thread has permission for the port, and reading it has no
    /// effect the caller did not mean.
    #[inline]
    pub unsafe fn input(port: u16, width: u8) -> u32 {
        // SAFETY: per the contract.
        unsafe {
            match width {
                1 => {
                    let v: u8;
                    asm!("in al, dx", out("al") v, in("dx") port, options(nostack, preserves_flags));
                    u32::from(v)
                }
                2 => {
                    let v: u16;
                    asm!("in ax, dx", out("ax") v, in("dx") port, options(nostack, preserves_flags));
                    u32::from(v)
                }
                _ => {
                    let v: u32;
                    asm!("in eax, dx", out("eax") v, in("dx") port, options(nostack, preserves_flags));
                    v
                }
            }
        }
    }

    /// `out` of `width` bytes (1, 2, else 4) of `value` to `port`.
    ///
    /// # Safety
    /// As [`input`].
    #[inline]
    pub unsafe fn output(port: u16, width: u8, value: u32) {
        // SAFETY: per the contract.
        unsafe {
            match width {
                1 => {
                    asm!("out dx, al", in("dx") port, in("al") value as u8, options(nostack, preserves_flags))
                }
                2 => {
                    asm!("out dx, ax", in("dx") port, in("ax") value as u16, options(nostack, preserves_flags))
                }
                _ => {
                    asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack, preserves_flags))
                }
            }
        }
    }
}

/// Never reached: no thread is granted ports off x86-64.
#[cfg(not(target_arch = "x86_64"))]
mod arch {
    pub unsafe fn input(_: u16, _: u8) -> u32 {
        u32::MAX
    }

    pub unsafe fn output(_: u16, _: u8, _: u32) {}
}
