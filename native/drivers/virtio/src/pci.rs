//! Finding the virtio structures in PCI configuration space (virtio 1.1
//! §4.1.4): each is described by a vendor-specific capability naming a BAR,
//! an offset and a length. Also finds the MSI-X table size (PCI Local Bus
//! 3.0 §6.8.2), which bounds how many interrupt vectors the driver can use.
//!
//! Pure logic over a config-space reader, so it is tested on any machine.

use pktkit_native::device::DeviceError;

/// PCI vendor ID of virtio devices (virtio 1.1 §4.1.2).
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// Device ID of a modern (non-transitional) virtio network device:
/// 0x1040 + device type 1 (virtio 1.1 §4.1.2, §5.1.1).
pub const VIRTIO_NET_MODERN_ID: u16 = 0x1041;
/// Device ID of a transitional virtio network device (virtio 1.1 §4.1.2.1);
/// it also has the modern capabilities when not legacy-only.
pub const VIRTIO_NET_TRANSITIONAL_ID: u16 = 0x1000;

/// Config space: status register (PCI Local Bus 3.0 §6.2.3).
const PCI_STATUS: u16 = 0x06;
/// Status bit: the function has a capability list.
const PCI_STATUS_CAP_LIST: u32 = 1 << 4;
/// Config space: pointer to the first capability (§6.7).
const PCI_CAP_PTR: u16 = 0x34;
/// Capability ID of MSI-X (§6.8.2).
const PCI_CAP_ID_MSIX: u8 = 0x11;
/// Capability ID of vendor-specific capabilities, which virtio uses (§6.7).
const PCI_CAP_ID_VNDR: u8 = 0x09;
/// A capability list longer than this is corrupt (48 = (256 - 64) / 4).
const MAX_CAPS: usize = 48;

/// `cfg_type` values of `struct virtio_pci_cap` (virtio 1.1 §4.1.4).
pub mod cfg_type {
    /// Common configuration (§4.1.4.3).
    pub const COMMON: u8 = 1;
    /// Notifications (§4.1.4.4).
    pub const NOTIFY: u8 = 2;
    /// ISR status (§4.1.4.5).
    pub const ISR: u8 = 3;
    /// Device-specific configuration (§4.1.4.6).
    pub const DEVICE: u8 = 4;
    /// PCI configuration access (§4.1.4.7); not used by this driver.
    pub const PCI: u8 = 5;
}

/// Offsets inside `struct virtio_pci_cap` (virtio 1.1 §4.1.4).
mod cap_off {
    pub const CFG_TYPE: u16 = 3;
    pub const BAR: u16 = 4;
    pub const OFFSET: u16 = 8;
    pub const LENGTH: u16 = 12;
    /// `struct virtio_pci_notify_cap::notify_off_multiplier` (§4.1.4.4).
    pub const NOTIFY_MULT: u16 = 16;
}

/// Where one virtio structure lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// BAR index (0..=5).
    pub bar: u8,
    /// Offset inside the BAR.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// The virtio structures of a device, and its MSI-X table size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Common configuration.
    pub common: Region,
    /// Notification area.
    pub notify: Region,
    /// `notify_off_multiplier` of the notification capability.
    pub notify_mult: u32,
    /// ISR status, if present.
    pub isr: Option<Region>,
    /// Device-specific configuration.
    pub device: Region,
    /// Entries of the MSI-X table, 0 without MSI-X.
    pub msix_vectors: u16,
}

/// Why the capabilities do not describe a usable modern virtio device.
#[derive(Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// No capability list at all.
    NoCapabilities,
    /// A required structure is missing (a legacy-only device has none).
    Missing(&'static str),
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::NoCapabilities => f.write_str("no PCI capability list"),
            LayoutError::Missing(what) => write!(
                f,
                "no virtio {what} capability (a legacy-only device? use disable-legacy=on)"
            ),
        }
    }
}

/// Reads config space: `(offset, width) -> value`.
pub trait ConfigRead {
    /// Reads 1, 2 or 4 bytes at `off`.
    fn read(&self, off: u16, width: u8) -> Result<u32, DeviceError>;
}

impl<F: Fn(u16, u8) -> Result<u32, DeviceError>> ConfigRead for F {
    fn read(&self, off: u16, width: u8) -> Result<u32, DeviceError> {
        self(off, width)
    }
}

/// Walks the capability list and collects the virtio structures.
///
/// Follows virtio 1.1 §4.1.4.1: capabilities with a reserved BAR (above 5)
/// are ignored, and of several capabilities of one type the first is used.
pub fn find_layout(cfg: &impl ConfigRead) -> Result<Result<Layout, LayoutError>, DeviceError> {
    if cfg.read(PCI_STATUS, 2)? & PCI_STATUS_CAP_LIST == 0 {
        return Ok(Err(LayoutError::NoCapabilities));
    }
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut notify_mult = 0;
    let mut msix_vectors = 0;
    let mut ptr = (cfg.read(PCI_CAP_PTR, 1)? & 0xfc) as u16;
    for _ in 0..MAX_CAPS {
        if ptr < 0x40 {
            break; // 0 ends the list; anything else below 0x40 is corrupt
        }
        let id = cfg.read(ptr, 1)? as u8;
        let next = (cfg.read(ptr + 1, 1)? & 0xfc) as u16;
        if id == PCI_CAP_ID_MSIX {
            // Message Control bits 10:0 hold the table size minus one.
            msix_vectors = (cfg.read(ptr + 2, 2)? & 0x7ff) as u16 + 1;
        } else if id == PCI_CAP_ID_VNDR {
            let kind = cfg.read(ptr + cap_off::CFG_TYPE, 1)? as u8;
            let bar = cfg.read(ptr + cap_off::BAR, 1)? as u8;
            if bar <= 5 {
                let region = Region {
                    bar,
                    offset: cfg.read(ptr + cap_off::OFFSET, 4)?,
                    length: cfg.read(ptr + cap_off::LENGTH, 4)?,
                };
                let slot = match kind {
                    cfg_type::COMMON => Some(&mut common),
                    cfg_type::NOTIFY => Some(&mut notify),
                    cfg_type::ISR => Some(&mut isr),
                    cfg_type::DEVICE => Some(&mut device),
                    _ => None,
                };
                if let Some(slot) = slot.filter(|s| s.is_none()) {
                    *slot = Some(region);
                    if kind == cfg_type::NOTIFY {
                        notify_mult = cfg.read(ptr + cap_off::NOTIFY_MULT, 4)?;
                    }
                }
            }
        }
        ptr = next;
    }
    let layout = (|| {
        Ok(Layout {
            common: common.ok_or(LayoutError::Missing("common configuration"))?,
            notify: notify.ok_or(LayoutError::Missing("notification"))?,
            notify_mult,
            isr,
            device: device.ok_or(LayoutError::Missing("device configuration"))?,
            msix_vectors,
        })
    })();
    Ok(layout)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A config space double: 256 bytes.
    pub struct FakeConfig(pub RefCell<[u8; 256]>);

    impl ConfigRead for FakeConfig {
        fn read(&self, off: u16, width: u8) -> Result<u32, DeviceError> {
            let b = self.0.borrow();
            let o = off as usize;
            if o + width as usize > 256 {
                return Err(DeviceError::Range(format!("{off}")));
            }
            let mut v = [0u8; 4];
            v[..width as usize].copy_from_slice(&b[o..o + width as usize]);
            Ok(u32::from_le_bytes(v))
        }
    }

    /// Builds a config space shaped like QEMU's modern virtio-net-pci:
    /// MSI-X (4 vectors) at 0x98, then vendor capabilities for common (BAR4
    /// 0x0+0x1000), ISR (0x1000+0x1000), device (0x2000+0x1000), notify
    /// (0x3000+0x1000, multiplier 4) and a PCI-cfg capability at 0x40.
    pub fn qemu_like() -> FakeConfig {
        let mut c = [0u8; 256];
        c[0..2].copy_from_slice(&VIRTIO_VENDOR.to_le_bytes());
        c[2..4].copy_from_slice(&VIRTIO_NET_MODERN_ID.to_le_bytes());
        c[6] = 0x10; // capability list
        c[0x34] = 0x98;
        let caps: [(u8, u8, u8, u8, u32, u32); 6] = [
            // (at, next, id/type, bar, offset, length); id 0x11 row is MSI-X.
            (0x98, 0x84, 0x11, 0, 0, 0),
            (0x84, 0x74, cfg_type::COMMON, 4, 0, 0x1000),
            (0x74, 0x64, cfg_type::ISR, 4, 0x1000, 0x1000),
            (0x64, 0x50, cfg_type::DEVICE, 4, 0x2000, 0x1000),
            (0x50, 0x40, cfg_type::NOTIFY, 4, 0x3000, 0x1000),
            (0x40, 0x00, cfg_type::PCI, 0, 0, 4),
        ];
        for (at, next, kind, bar, off, len) in caps {
            let a = at as usize;
            c[a + 1] = next;
            if kind == 0x11 && at == 0x98 {
                c[a] = PCI_CAP_ID_MSIX;
                c[a + 2..a + 4].copy_from_slice(&3u16.to_le_bytes()); // 4 vectors
                continue;
            }
            c[a] = PCI_CAP_ID_VNDR;
            c[a + 2] = if kind == cfg_type::NOTIFY { 20 } else { 16 };
            c[a + 3] = kind;
            c[a + 4] = bar;
            c[a + 8..a + 12].copy_from_slice(&off.to_le_bytes());
            c[a + 12..a + 16].copy_from_slice(&len.to_le_bytes());
            if kind == cfg_type::NOTIFY {
                c[a + 16..a + 20].copy_from_slice(&4u32.to_le_bytes());
            }
        }
        FakeConfig(RefCell::new(c))
    }

    #[test]
    fn finds_qemu_layout() {
        let l = find_layout(&qemu_like()).unwrap().unwrap();
        assert_eq!(
            l.common,
            Region {
                bar: 4,
                offset: 0,
                length: 0x1000
            }
        );
        assert_eq!(l.isr.unwrap().offset, 0x1000);
        assert_eq!(l.device.offset, 0x2000);
        assert_eq!(l.notify.offset, 0x3000);
        assert_eq!(l.notify_mult, 4);
        assert_eq!(l.msix_vectors, 4);
    }

    #[test]
    fn first_capability_of_a_type_wins_and_reserved_bars_are_ignored() {
        let c = qemu_like();
        {
            let mut b = c.0.borrow_mut();
            // Turn the PCI-cfg capability at 0x40 into a second common
            // capability: the first (at 0x84) must still be used.
            b[0x43] = cfg_type::COMMON;
            b[0x44] = 2;
            // Give the first one a reserved BAR: now the second is the first usable.
            b[0x88] = 6;
        }
        let l = find_layout(&c).unwrap().unwrap();
        assert_eq!(l.common.bar, 2);
    }

    #[test]
    fn legacy_only_and_capless_devices_are_refused() {
        let c = qemu_like();
        c.0.borrow_mut()[0x87] = 0x7f; // common cap -> unknown type
        assert_eq!(
            find_layout(&c).unwrap(),
            Err(LayoutError::Missing("common configuration"))
        );
        let c = qemu_like();
        c.0.borrow_mut()[6] = 0;
        assert_eq!(find_layout(&c).unwrap(), Err(LayoutError::NoCapabilities));
        // A loop in the list ends after MAX_CAPS steps instead of hanging.
        let c = qemu_like();
        c.0.borrow_mut()[0x41] = 0x98;
        assert!(find_layout(&c).unwrap().is_ok());
    }
}
