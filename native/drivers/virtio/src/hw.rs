//! The device as the driver and its queues share it: the PCI function, the
//! transport's register windows in its BARs, and whether the device is live
//! (may do DMA). Queues hold an `Arc<Hw>`, so the BAR mappings outlive every
//! register access, and a queue dropped while the device is live resets the
//! device before its buffers are freed (no DMA into freed memory).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use pktkit_native::device::{DeviceError, PciAddress, PciDevice};
use pktkit_native::DriverError;

use crate::pci::{self, Layout, Region};
use crate::transport::{common, Transport};
use crate::virtq::QueueView;
use pktkit_native::mmio::Mmio;

/// PCI command register and its bits (PCI Local Bus 3.0 §6.2.2).
const PCI_COMMAND: u16 = 0x04;
const PCI_COMMAND_MEMORY: u32 = 1 << 1;
const PCI_COMMAND_MASTER: u32 = 1 << 2;

/// Device-wide counters the queues add to.
#[derive(Debug, Default)]
pub struct HwStats {
    /// Receive refills the pool could not fully meet.
    pub rx_no_buffer: AtomicU64,
    /// Transmitted packets copied into one buffer (chained, or no headroom
    /// for the virtio-net header).
    pub tx_linearized: AtomicU64,
    /// Used-ring entries naming a descriptor the driver had not given.
    pub bad_used: AtomicU64,
    /// Receive descriptors pointed at a fault-injection IOVA.
    pub rx_redirected: AtomicU64,
    /// Received buffers dropped because their descriptor no longer named
    /// them (fault injection): they hold no frame of ours.
    pub rx_faulted: AtomicU64,
}

/// The PCI function and the transport over its BARs.
pub struct Hw {
    /// Register windows; they point into BARs mapped by `dev`.
    pub t: Transport,
    /// The function. Locked only on control paths.
    dev: Mutex<Box<dyn PciDevice>>,
    /// Its address.
    pub bdf: PciAddress,
    /// PCI device ID.
    pub device_id: u16,
    /// The capabilities found.
    pub layout: Layout,
    /// Set from DRIVER_OK until the next reset.
    live: AtomicBool,
    /// Counters.
    pub stats: HwStats,
    /// The receive queues' rings, for fault injection from the control
    /// side. A queue registers at creation and unregisters in its drop,
    /// before its memory goes: the lock keeps a view from being used while
    /// its queue is dropped.
    rx_views: Mutex<Vec<(u16, QueueView)>>,
}

impl std::fmt::Debug for Hw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hw").field("bdf", &self.bdf).finish()
    }
}

fn dev_err(op: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Device(format!("{op}: {e}"))
}

/// Maps a region's BAR and returns the window, checking it lies inside.
fn window(
    dev: &mut dyn PciDevice,
    r: Region,
    min_len: usize,
    what: &str,
) -> Result<Mmio, DriverError> {
    let (base, bar_len) = dev
        .map_bar(r.bar)
        .map_err(|e| dev_err(&format!("mapping BAR{} ({what})", r.bar), e))?;
    let (off, len) = (r.offset as usize, r.length as usize);
    // virtio 1.1 §4.1.4.1: the structure must fit its BAR; we also need the
    // fields we use and 4-byte alignment for 32-bit registers.
    if off.checked_add(len).is_none_or(|end| end > bar_len) || len < min_len || off % 4 != 0 {
        return Err(DriverError::Device(format!(
            "virtio {what} structure {off:#x}+{len:#x} does not fit BAR{} ({bar_len:#x} bytes)",
            r.bar
        )));
    }
    let p = NonNull::new(base.wrapping_add(off))
        .ok_or_else(|| DriverError::Device(format!("BAR{} mapped at null", r.bar)))?;
    // SAFETY: p..p+len lies inside the BAR mapping (checked above), which
    // stays mapped while the device (kept in the same Hw, dropped after the
    // windows are no longer used) lives; the BAR is page-aligned and off is
    // 4-aligned.
    Ok(unsafe { Mmio::new(p, len) })
}

impl Hw {
    /// Checks the function is a modern virtio-net device, finds its virtio
    /// structures and maps them.
    pub fn open(mut dev: Box<dyn PciDevice>) -> Result<Hw, DriverError> {
        let bdf = dev.address();
        let id = dev
            .config_read(0, 4)
            .map_err(|e| dev_err("reading the PCI ID", e))?;
        let (vendor, device_id) = (id as u16, (id >> 16) as u16);
        if vendor != pci::VIRTIO_VENDOR
            || (device_id != pci::VIRTIO_NET_MODERN_ID
                && device_id != pci::VIRTIO_NET_TRANSITIONAL_ID)
        {
            return Err(DriverError::NoDevice(format!(
                "{bdf} is {vendor:04x}:{device_id:04x}, not a virtio-net device (1af4:1041)"
            )));
        }
        let read = |off: u16, w: u8| dev.config_read(off, w);
        let layout = pci::find_layout(&read)
            .map_err(|e| dev_err("reading capabilities", e))?
            .map_err(|e| DriverError::Unsupported(format!("{bdf}: {e}")))?;
        let d = dev.as_mut();
        let t = Transport {
            common: window(d, layout.common, common::LEN, "common configuration")?,
            notify: window(d, layout.notify, 2, "notification")?,
            notify_mult: layout.notify_mult,
            isr: match layout.isr {
                Some(r) => Some(window(d, r, 1, "ISR")?),
                None => None,
            },
            device: window(d, layout.device, 6, "device configuration")?,
        };
        Ok(Hw {
            t,
            dev: Mutex::new(dev),
            bdf,
            device_id,
            layout,
            live: AtomicBool::new(false),
            stats: HwStats::default(),
            rx_views: Mutex::new(Vec::new()),
        })
    }

    /// The PCI function, for control-path work (DMA allocation, interrupts).
    pub fn dev(&self) -> MutexGuard<'_, Box<dyn PciDevice>> {
        self.dev.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enables memory decoding and bus mastering, without which the device
    /// can neither be programmed nor do DMA.
    pub fn enable_bus_master(&self) -> Result<(), DriverError> {
        let dev = self.dev();
        let cmd = dev
            .config_read(PCI_COMMAND, 2)
            .map_err(|e| dev_err("reading the PCI command register", e))?;
        let want = cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
        if want != cmd {
            dev.config_write(PCI_COMMAND, 2, want)
                .map_err(|e| dev_err("enabling bus mastering", e))?;
        }
        Ok(())
    }

    /// Resets the PCI function (FLR or whatever reset the kernel has for
    /// it) when it offers one; returns whether it did. Call with the device
    /// reset and its interrupts disabled. The kernel saves and restores the
    /// config space around the reset; memory decoding and bus mastering are
    /// re-enabled here in case they did not survive it.
    pub fn function_reset(&self) -> Result<bool, DriverError> {
        match self.dev().reset() {
            Ok(()) => {}
            Err(DeviceError::Unsupported(why)) => {
                log::debug!("{}: no function reset ({why})", self.bdf);
                return Ok(false);
            }
            Err(e) => return Err(dev_err("function reset", e)),
        }
        self.enable_bus_master()?;
        Ok(true)
    }

    /// Registers receive queue `index`'s rings for [`Hw::redirect_rx`].
    pub fn register_rx(&self, index: u16, view: QueueView) {
        let mut v = self.rx_views.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|(i, _)| *i != index);
        v.push((index, view));
    }

    /// Forgets receive queue `index`'s rings (before they are freed).
    pub fn unregister_rx(&self, index: u16) {
        let mut v = self.rx_views.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|(i, _)| *i != index);
    }

    /// Points every receive buffer the device has not used yet at `iova`
    /// (fault injection); returns how many descriptors were changed.
    pub fn redirect_rx(&self, iova: u64) -> usize {
        let v = self.rx_views.lock().unwrap_or_else(|e| e.into_inner());
        let n = v
            .iter()
            // SAFETY: a view is registered only while its queue (and so its
            // ring memory) lives: VioRxQueue unregisters it under this lock
            // in its drop, before the memory is freed.
            .map(|(_, view)| unsafe { view.redirect_unused(iova) })
            .sum();
        self.stats
            .rx_redirected
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Marks the device live (it may use its queues from now on).
    pub fn set_live(&self) {
        self.live.store(true, Ordering::Release);
    }

    /// Whether the device is live.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Resets the device if it is live, so it stops all DMA and interrupts;
    /// every holder of buffers calls this before freeing them.
    pub fn quiesce(&self) {
        if self.live.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.t.reset() {
                log::warn!("{}: {e}", self.bdf);
            }
        }
    }
}

impl Drop for Hw {
    fn drop(&mut self) {
        self.quiesce();
        if let Err(e) = self.dev().disable_irqs() {
            log::warn!("{}: disabling interrupts: {e}", self.bdf);
        }
    }
}
