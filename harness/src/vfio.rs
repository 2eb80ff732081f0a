//! PCI device access over VFIO: [`VfioContainer`] (one IOMMU address space
//! per stack, shared by its devices, with every pool mapped IOVA = VA) and
//! [`VfioPciDevice`], which implements `pktkit_native::device::PciDevice`.
//!
//! The logic here is safe code over the [`crate::ops`] seam; the ioctls and
//! mmaps are in [`crate::sys`].
//!
//! Mapping lifetime: with the type1 IOMMU the kernel drops every mapping
//! when the container's last group leaves it, which happens when its last
//! device is closed. The container therefore remembers the pools it was
//! asked to map and maps them again when a device is opened after that.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pktkit_native::device::{DeviceError, DmaMemory, IrqKind, PciAddress, PciDevice};
use pktkit_native::pool::DmaRegion;
use pktkit_native::Pool;
use vfio_bindings::bindings::vfio::{
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
};
use vmm_sys_util::eventfd::EventFd;

use crate::error::HarnessError;
use crate::ops::{ContainerOps, DeviceOps, NoPorts, PortOps};
use crate::pio::{PioMode, PortWindow};
use crate::sys::{AnonMemory, SendPtr, SysContainer, SysPorts};
use crate::sysfs::{require_root, Sysfs, VFIO_PCI};

/// Number of BARs of a type 0 header.
const BARS: usize = 6;
/// Config space offset of BAR0 (PCI Local Bus 3.0, section 6.2.5.1).
const CFG_BAR0: u16 = 0x10;

/// A pool the container was asked to map.
struct PoolMapping {
    /// Keeps the pool's memory alive while it may be mapped.
    pool: Pool,
    regions: Vec<DmaRegion>,
    mapped: bool,
}

/// Locking: `state` guards everything mutable; it is taken on control
/// paths only (open/close, pool and DMA mapping), never per packet.
struct State {
    /// Devices open now; 0 means the kernel holds no mappings for us.
    open_devices: usize,
    pools: Vec<PoolMapping>,
}

/// One VFIO container (an IOMMU address space) shared by a stack's devices.
pub struct VfioContainer {
    ops: Box<dyn ContainerOps>,
    /// Direct port I/O beside VFIO ([`crate::pio`]).
    ports: Arc<dyn PortOps>,
    pio: PioMode,
    sysfs: Sysfs,
    state: Mutex<State>,
}

impl std::fmt::Debug for VfioContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("VfioContainer")
            .field("open_devices", &s.open_devices)
            .field("pools", &s.pools.len())
            .finish()
    }
}

impl VfioContainer {
    /// Opens a container on this machine (`/dev/vfio/vfio`). Needs root.
    pub fn open() -> Result<Arc<VfioContainer>, HarnessError> {
        require_root()?;
        let ops = SysContainer::open()?;
        Ok(Self::with_ports(
            Box::new(ops),
            Arc::new(SysPorts),
            PioMode::from_env(),
            Sysfs::system(),
        ))
    }

    /// A container over another backend and sysfs view, every port access
    /// through VFIO (tests use this).
    pub fn with_backend(ops: Box<dyn ContainerOps>, sysfs: Sysfs) -> Arc<VfioContainer> {
        Self::with_ports(ops, Arc::new(NoPorts), PioMode::Vfio, sysfs)
    }

    /// A container over another backend, direct port I/O and sysfs view.
    pub fn with_ports(
        ops: Box<dyn ContainerOps>,
        ports: Arc<dyn PortOps>,
        pio: PioMode,
        sysfs: Sysfs,
    ) -> Arc<VfioContainer> {
        Arc::new(VfioContainer {
            ops,
            ports,
            pio,
            sysfs,
            state: Mutex::new(State {
                open_devices: 0,
                pools: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain bookkeeping behind;
        // keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Maps every region of `pool` for device DMA at IOVA = VA, now if a
    /// device is open (the IOMMU exists only once a group joined), else
    /// when the first device is opened. Mapping a pool twice is a no-op.
    pub fn map_pool(&self, pool: &Pool) -> Result<(), HarnessError> {
        let regions = pool.dma_regions();
        let mut s = self.lock();
        let known = |m: &PoolMapping| m.pool.index() == pool.index() && same(&m.regions, &regions);
        if s.pools.iter().any(known) {
            return Ok(());
        }
        let mut m = PoolMapping {
            pool: pool.clone(),
            regions,
            mapped: false,
        };
        if s.open_devices > 0 {
            self.map_regions(&mut m)?;
        }
        s.pools.push(m);
        Ok(())
    }

    /// Removes a pool's mappings and forgets it.
    pub fn unmap_pool(&self, pool: &Pool) -> Result<(), HarnessError> {
        let regions = pool.dma_regions();
        let mut s = self.lock();
        let Some(i) = s
            .pools
            .iter()
            .position(|m| m.pool.index() == pool.index() && same(&m.regions, &regions))
        else {
            return Ok(());
        };
        let m = s.pools.remove(i);
        if m.mapped {
            for r in &m.regions {
                self.ops.dma_unmap(r.iova, r.len)?;
            }
        }
        Ok(())
    }

    /// Bytes of pool memory mapped into the IOMMU now.
    pub fn mapped_pool_bytes(&self) -> usize {
        self.lock()
            .pools
            .iter()
            .filter(|m| m.mapped)
            .flat_map(|m| m.regions.iter().map(|r| r.len))
            .sum()
    }

    fn map_regions(&self, m: &mut PoolMapping) -> Result<(), HarnessError> {
        for (i, r) in m.regions.iter().enumerate() {
            // SAFETY: the pool's memory stays mapped while `m.pool` (a
            // handle on it) is held, which is until the mapping is removed
            // or the container dropped; the pool hands buffers out as raw
            // mbuf pointers, and the device's writes into them are what a
            // DMA pool exists for.
            let r_ok = unsafe { self.ops.dma_map(r.iova, r.len, r.va as *mut u8) };
            if let Err(e) = r_ok {
                for done in &m.regions[..i] {
                    let _ = self.ops.dma_unmap(done.iova, done.len);
                }
                return Err(e);
            }
        }
        m.mapped = true;
        Ok(())
    }

    /// Opens a network device bound to vfio-pci, joining its IOMMU group to
    /// this container.
    pub fn open_device(self: &Arc<Self>, bdf: PciAddress) -> Result<VfioPciDevice, HarnessError> {
        let info = self.sysfs.check_for_vfio(bdf)?;
        if info.driver.as_deref() != Some(VFIO_PCI) {
            return Err(HarnessError::NotBoundToVfio {
                bdf,
                driver: info.driver.unwrap_or_else(|| "no driver".into()),
            });
        }
        let ops = self.ops.open_device(&self.sysfs.device_path(bdf))?;
        let (ports, access) = self.direct_ports(bdf, ops.as_ref());
        let open = OpenDevice::new(self.clone());
        {
            let mut s = self.lock();
            for i in 0..s.pools.len() {
                if !s.pools[i].mapped {
                    self.map_regions(&mut s.pools[i])?;
                }
            }
        }
        Ok(VfioPciDevice {
            bdf,
            ops,
            bars: [None; BARS],
            ports,
            port_ops: self.ports.clone(),
            refused: AtomicBool::new(false),
            access,
            irqs: None,
            open,
        })
    }

    /// The I/O-port BARs of `bdf` that direct port I/O reaches: those sysfs
    /// places in the port space with the size VFIO reports for the region,
    /// where it is wanted ([`PioMode`]) and the opening thread is granted
    /// the ports. Also says which way each I/O BAR goes (logged, and kept
    /// for [`PciDevice::access`]).
    fn direct_ports(&self, bdf: PciAddress, ops: &dyn DeviceOps) -> PortAccess {
        let mut out = [None; BARS];
        let mut access = Vec::new();
        for (bar, w) in self.sysfs.io_ports(bdf).into_iter().enumerate() {
            let Some(w) = w else { continue };
            let size = ops
                .region(VFIO_PCI_BAR0_REGION_INDEX + bar as u32)
                .map_or(0, |r| r.size);
            let how = match self.pio {
                PioMode::Vfio => format!("VFIO (ports {w}; PKTKIT_PIO=vfio)"),
                PioMode::Unavailable => format!("VFIO (ports {w}; no direct port I/O here)"),
                PioMode::Direct if size != u64::from(w.len) => {
                    format!("VFIO (sysfs says {} ports, VFIO {size} bytes)", w.len)
                }
                PioMode::Direct if self.ports.granted(w.base, w.len) => {
                    out[bar] = Some(w);
                    format!("direct {w}")
                }
                PioMode::Direct => format!("VFIO (ports {w}; no ioperm permission)"),
            };
            log::info!("{bdf}: port I/O BAR {bar}: {how}");
            access.push((format!("port I/O BAR {bar}"), how));
        }
        (out, access)
    }

    /// Maps fresh DMA memory for devices of this container.
    fn dma_alloc(self: &Arc<Self>, len: usize) -> Result<DmaBuffer, DeviceError> {
        let mem = AnonMemory::new(len)?;
        let iova = mem.as_ptr() as u64;
        // SAFETY: `mem` is a fresh mapping owned by the DmaBuffer built
        // below, which unmaps it from the IOMMU before unmapping it from the
        // process; it is used only through the raw pointer DmaMemory gives.
        unsafe { self.ops.dma_map(iova, mem.len(), mem.as_ptr()) }.map_err(|e| {
            DeviceError::Io {
                op: format!("map {} bytes of DMA memory", mem.len()),
                source: std::io::Error::other(e),
            }
        })?;
        Ok(DmaBuffer {
            mem,
            container: self.clone(),
        })
    }
}

/// Whether two region lists are the same memory.
fn same(a: &[DmaRegion], b: &[DmaRegion]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.va == y.va && x.len == y.len && x.iova == y.iova)
}

/// Counts a device as open in its container for as long as it lives; the
/// last one closing means the kernel dropped the container's mappings.
struct OpenDevice {
    container: Arc<VfioContainer>,
}

impl OpenDevice {
    fn new(container: Arc<VfioContainer>) -> OpenDevice {
        container.lock().open_devices += 1;
        OpenDevice { container }
    }
}

impl Drop for OpenDevice {
    fn drop(&mut self) {
        let mut s = self.container.lock();
        s.open_devices = s.open_devices.saturating_sub(1);
        if s.open_devices == 0 {
            for m in &mut s.pools {
                m.mapped = false;
            }
        }
    }
}

/// DMA memory from [`PciDevice::dma_alloc`]: page-aligned, IOVA = VA,
/// unmapped from the IOMMU and freed on drop.
pub struct DmaBuffer {
    mem: AnonMemory,
    container: Arc<VfioContainer>,
}

impl DmaMemory for DmaBuffer {
    fn as_ptr(&self) -> *mut u8 {
        self.mem.as_ptr()
    }
    fn iova(&self) -> u64 {
        self.mem.as_ptr() as u64
    }
    fn len(&self) -> usize {
        self.mem.len()
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // Fails only if the kernel already dropped the mapping (no device
        // open any more), which is what we want anyway.
        if self.container.lock().open_devices > 0 {
            let _ = self.container.ops.dma_unmap(self.iova(), self.mem.len());
        }
    }
}

#[derive(Clone, Copy)]
struct Bar {
    ptr: SendPtr,
    len: usize,
}

/// The BARs reached by direct port I/O, and how each I/O BAR is reached.
type PortAccess = ([Option<PortWindow>; BARS], Vec<(String, String)>);

/// Interrupts enabled now: the VFIO IRQ index and one eventfd per vector.
struct Irqs {
    index: u32,
    fds: Vec<EventFd>,
}

/// A PCI function opened through VFIO. Its BAR mappings, interrupts and
/// DMA memory are valid while it lives; dropping it disables interrupts,
/// unmaps the BARs and closes the device.
pub struct VfioPciDevice {
    bdf: PciAddress,
    /// Declared before `open` so the device is closed first.
    ops: Box<dyn DeviceOps>,
    bars: [Option<Bar>; BARS],
    /// I/O-port BARs reached by direct port I/O ([`crate::pio`]).
    ports: [Option<PortWindow>; BARS],
    port_ops: Arc<dyn PortOps>,
    /// A thread was refused the ports (it goes through VFIO).
    refused: AtomicBool,
    /// Which way each I/O-port BAR goes, for [`PciDevice::access`].
    access: Vec<(String, String)>,
    irqs: Option<Irqs>,
    open: OpenDevice,
}

impl std::fmt::Debug for VfioPciDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPciDevice")
            .field("bdf", &self.bdf)
            .finish()
    }
}

fn check_width(width: u8) -> Result<usize, DeviceError> {
    match width {
        1 | 2 | 4 => Ok(usize::from(width)),
        w => Err(DeviceError::Range(format!("access width {w} (1, 2 or 4)"))),
    }
}

fn irq_index(kind: IrqKind) -> u32 {
    match kind {
        IrqKind::Intx => VFIO_PCI_INTX_IRQ_INDEX,
        IrqKind::Msi => VFIO_PCI_MSI_IRQ_INDEX,
        IrqKind::Msix => VFIO_PCI_MSIX_IRQ_INDEX,
    }
}

impl VfioPciDevice {
    /// The container the device belongs to.
    pub fn container(&self) -> &Arc<VfioContainer> {
        &self.open.container
    }

    /// Whether BAR `bar` is an I/O-port BAR (bit 0 of its config register).
    pub fn bar_is_io(&self, bar: u8) -> Result<bool, DeviceError> {
        if usize::from(bar) >= BARS {
            return Err(DeviceError::Range(format!("BAR {bar}")));
        }
        let reg = self.config_read(CFG_BAR0 + 4 * u16::from(bar), 4)?;
        Ok(reg & 1 == 1)
    }

    /// Checks `[off, off + width)` lies in a readable/writable region.
    fn region_access(
        &self,
        index: u32,
        off: u64,
        width: usize,
        write: bool,
    ) -> Result<(), DeviceError> {
        let r = self
            .ops
            .region(index)
            .filter(|r| r.size > 0)
            .ok_or_else(|| DeviceError::Range(format!("{}: no region {index}", self.bdf)))?;
        if off.checked_add(width as u64).is_none_or(|end| end > r.size) {
            return Err(DeviceError::Range(format!(
                "{}: region {index} offset {off:#x}+{width} beyond {:#x}",
                self.bdf, r.size
            )));
        }
        let allowed = if write { r.writable() } else { r.readable() };
        if !allowed {
            let what = if write { "writable" } else { "readable" };
            return Err(DeviceError::Unsupported(format!(
                "{}: region {index} is not {what}",
                self.bdf
            )));
        }
        Ok(())
    }

    fn read_value(&self, index: u32, off: u64, width: u8) -> Result<u32, DeviceError> {
        let w = check_width(width)?;
        self.region_access(index, off, w, false)?;
        let mut b = [0u8; 4];
        self.ops.read(index, off, &mut b[..w])?;
        Ok(u32::from_le_bytes(b))
    }

    fn write_value(&self, index: u32, off: u64, width: u8, value: u32) -> Result<(), DeviceError> {
        let w = check_width(width)?;
        self.region_access(index, off, w, true)?;
        self.ops.write(index, off, &value.to_le_bytes()[..w])
    }

    /// The port for this access if it goes direct: a BAR reached by
    /// direct port I/O, an access inside it ([`PortWindow::port`]) and a
    /// thread granted its ports. A refused thread is noted (it goes
    /// through VFIO) and logged once.
    #[inline]
    fn direct_port(&self, bar: u8, off: u64, width: u8) -> Option<u16> {
        let w = self.ports.get(usize::from(bar))?.as_ref()?;
        let port = w.port(off, width)?;
        if self.port_ops.granted(w.base, w.len) {
            return Some(port);
        }
        if !self.refused.swap(true, Ordering::Relaxed) {
            log::warn!(
                "{}: BAR {bar}: a thread was refused ports {w}: its accesses go through VFIO",
                self.bdf
            );
        }
        None
    }

    fn bar_index(bar: u8) -> Result<u32, DeviceError> {
        if usize::from(bar) < BARS {
            Ok(VFIO_PCI_BAR0_REGION_INDEX + u32::from(bar))
        } else {
            Err(DeviceError::Range(format!("BAR {bar}")))
        }
    }
}

impl PciDevice for VfioPciDevice {
    fn address(&self) -> PciAddress {
        self.bdf
    }

    fn config_read(&self, off: u16, width: u8) -> Result<u32, DeviceError> {
        self.read_value(VFIO_PCI_CONFIG_REGION_INDEX, u64::from(off), width)
    }

    fn config_write(&self, off: u16, width: u8, value: u32) -> Result<(), DeviceError> {
        self.write_value(VFIO_PCI_CONFIG_REGION_INDEX, u64::from(off), width, value)
    }

    fn map_bar(&mut self, bar: u8) -> Result<(*mut u8, usize), DeviceError> {
        let index = Self::bar_index(bar)?;
        if let Some(b) = self.bars[usize::from(bar)] {
            return Ok((b.ptr.0.as_ptr(), b.len));
        }
        if self.bar_is_io(bar)? {
            return Err(DeviceError::Unsupported(format!(
                "{}: BAR {bar} is an I/O-port BAR: use io_read/io_write",
                self.bdf
            )));
        }
        let r = self
            .ops
            .region(index)
            .filter(|r| r.size > 0)
            .ok_or_else(|| {
                DeviceError::Range(format!("{}: BAR {bar} is not implemented", self.bdf))
            })?;
        if !r.mappable() {
            return Err(DeviceError::Unsupported(format!(
                "{}: BAR {bar} cannot be mmapped",
                self.bdf
            )));
        }
        let len =
            usize::try_from(r.size).map_err(|_| DeviceError::Range(format!("BAR {bar} size")))?;
        let ptr = self.ops.map(index, len)?;
        self.bars[usize::from(bar)] = Some(Bar {
            ptr: SendPtr(ptr),
            len,
        });
        Ok((ptr.as_ptr(), len))
    }

    fn io_read(&self, bar: u8, off: u64, width: u8) -> Result<u32, DeviceError> {
        if let Some(port) = self.direct_port(bar, off, width) {
            // SAFETY: direct_port gives a port of this device's BAR, the
            // whole access inside the window this thread was granted.
            return Ok(unsafe { self.port_ops.input(port, width) });
        }
        self.read_value(Self::bar_index(bar)?, off, width)
    }

    fn io_write(&self, bar: u8, off: u64, width: u8, value: u32) -> Result<(), DeviceError> {
        if let Some(port) = self.direct_port(bar, off, width) {
            // SAFETY: as in io_read.
            unsafe { self.port_ops.output(port, width, value) };
            return Ok(());
        }
        self.write_value(Self::bar_index(bar)?, off, width, value)
    }

    fn dma_alloc(&mut self, len: usize) -> Result<Box<dyn DmaMemory>, DeviceError> {
        Ok(Box::new(self.open.container.dma_alloc(len)?))
    }

    fn enable_irqs(&mut self, kind: IrqKind, count: u32) -> Result<Vec<RawFd>, DeviceError> {
        let index = irq_index(kind);
        let offered = self.ops.irq_count(index);
        let max = if kind == IrqKind::Intx {
            offered.min(1)
        } else {
            offered
        };
        if count == 0 || count > max {
            return Err(DeviceError::Range(format!(
                "{}: {count} {kind:?} vectors asked, {max} offered",
                self.bdf
            )));
        }
        self.disable_irqs()?;
        let mut fds = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let fd = EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|source| {
                DeviceError::Io {
                    op: "eventfd".into(),
                    source,
                }
            })?;
            fds.push(fd);
        }
        let refs: Vec<&EventFd> = fds.iter().collect();
        self.ops.set_irqs(index, &refs)?;
        let raw = fds.iter().map(AsRawFd::as_raw_fd).collect();
        self.irqs = Some(Irqs { index, fds });
        Ok(raw)
    }

    fn disable_irqs(&mut self) -> Result<(), DeviceError> {
        if let Some(irqs) = self.irqs.take() {
            self.ops.disable_irqs(irqs.index)?;
            // The eventfds close here, after VFIO stopped signalling them.
            drop(irqs.fds);
        }
        Ok(())
    }

    fn unmask_intx(&self) -> Result<(), DeviceError> {
        match &self.irqs {
            Some(i) if i.index == VFIO_PCI_INTX_IRQ_INDEX => self.ops.unmask_intx(),
            _ => Err(DeviceError::Unsupported(format!(
                "{}: INTx is not enabled",
                self.bdf
            ))),
        }
    }

    fn access(&self) -> Vec<(String, String)> {
        let mut v = self.access.clone();
        if self.refused.load(Ordering::Relaxed) {
            v.push((
                "port I/O refused".into(),
                "ioperm refused on a thread: its accesses went through VFIO".into(),
            ));
        }
        v
    }

    fn reset(&mut self) -> Result<(), DeviceError> {
        if !self.ops.can_reset() {
            return Err(DeviceError::Unsupported(format!(
                "{}: the kernel has no reset method for this function",
                self.bdf
            )));
        }
        self.ops.reset()
    }
}

impl Drop for VfioPciDevice {
    fn drop(&mut self) {
        if let Err(e) = self.disable_irqs() {
            log::warn!("{}: disabling interrupts: {e}", self.bdf);
        }
        for b in self.bars.iter_mut().filter_map(Option::take) {
            // SAFETY: the mapping came from `self.ops.map` with this length;
            // the driver's use of it ends with the device (the PciDevice
            // contract ties the BAR pointer's validity to the device).
            unsafe { self.ops.unmap(b.ptr.0, b.len) };
        }
        // `ops` then `open` drop after this: the device closes, then the
        // container learns it is gone.
    }
}

#[cfg(test)]
#[path = "vfio_tests.rs"]
mod tests;
