//! Direct port I/O for a device's I/O-port BARs (x86-64).
//!
//! VFIO reaches an I/O-port BAR through its region: every access is a
//! `pread`/`pwrite` on the device fd, i.e. a system call, which the kernel
//! turns into one `in`/`out`. For a device moved by programmed I/O (an
//! NE2000 takes one access per 2 or 4 bytes of every frame) the call is
//! most of the cost. With the thread's permission for exactly the BAR's
//! ports (`ioperm(2)`), the same access is one instruction, the device
//! still bound to vfio-pci and its DMA still confined by the IOMMU (port
//! I/O is not DMA).
//!
//! This module holds the plain parts: which ports a BAR is
//! ([`PortWindow`]) and whether direct access is wanted ([`PioMode`]).
//! Asking permission and the instructions themselves are the
//! [`crate::ops::PortOps`] seam ([`crate::sys::SysPorts`] on a machine);
//! [`crate::vfio`] decides, per device and per access, which way to go.
//!
//! Port permissions belong to a thread, not the process: a thread asks the
//! first time it touches a window. A device goes direct when the thread
//! that opens it is granted its ports; a thread refused later goes through
//! VFIO for its own accesses (the device then says so in its
//! [`pktkit_native::device::PciDevice::access`] facts).

/// Whether I/O-port BARs are reached directly (where the kernel allows it)
/// or every access goes through VFIO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PioMode {
    /// Direct where the thread is granted the ports, else VFIO.
    Direct,
    /// Every access through VFIO (`PKTKIT_PIO=vfio`).
    Vfio,
    /// No direct port I/O on this architecture.
    Unavailable,
}

impl PioMode {
    /// From `PKTKIT_PIO` (`direct`, the default, or `vfio`); an unknown
    /// value is logged and taken as the default.
    pub fn from_env() -> PioMode {
        Self::parse(std::env::var("PKTKIT_PIO").ok().as_deref())
    }

    /// From the value of `PKTKIT_PIO`, if set.
    pub fn parse(value: Option<&str>) -> PioMode {
        if !cfg!(target_arch = "x86_64") {
            return PioMode::Unavailable;
        }
        match value {
            None | Some("direct") => PioMode::Direct,
            Some("vfio") => PioMode::Vfio,
            Some(other) => {
                log::warn!("PKTKIT_PIO={other}: not direct or vfio; direct port I/O");
                PioMode::Direct
            }
        }
    }
}

/// One I/O-port BAR's ports, as sysfs places them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortWindow {
    /// First port.
    pub base: u16,
    /// Number of ports (at least 1).
    pub len: u16,
}

impl PortWindow {
    /// A window of `len` ports from `base`, if it is not empty and lies in
    /// the 16-bit port space (at most 0xffff ports: a BAR is far smaller).
    pub fn new(base: u64, len: u64) -> Option<PortWindow> {
        let end = base.checked_add(len)?;
        if len == 0 || len > 0xffff || end > 0x1_0000 {
            return None;
        }
        Some(PortWindow {
            base: base as u16,
            len: len as u16,
        })
    }

    /// The last port.
    pub fn last(&self) -> u16 {
        self.base + (self.len - 1)
    }

    /// The port at `off` for an access of `width` bytes (1, 2 or 4) inside
    /// the window and naturally aligned; `None` for any other access (it
    /// then goes through VFIO, which checks it as before).
    pub fn port(&self, off: u64, width: u8) -> Option<u16> {
        if !matches!(width, 1 | 2 | 4) || !off.is_multiple_of(u64::from(width)) {
            return None;
        }
        let end = off.checked_add(u64::from(width))?;
        (end <= u64::from(self.len)).then(|| self.base + off as u16)
    }
}

impl std::fmt::Display for PortWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}-{:#x}", self.base, self.last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_lie_in_the_port_space() {
        let w = PortWindow::new(0xc000, 0x20).unwrap();
        assert_eq!((w.base, w.len, w.last()), (0xc000, 0x20, 0xc01f));
        assert_eq!(w.to_string(), "0xc000-0xc01f");
        assert_eq!(
            PortWindow::new(0xfff0, 0x10).map(|w| w.last()),
            Some(0xffff)
        );
        assert_eq!(PortWindow::new(0xfff0, 0x11), None);
        assert_eq!(PortWindow::new(0xc000, 0), None);
        assert_eq!(PortWindow::new(0, 0x1_0000), None, "would wrap to empty");
        assert_eq!(PortWindow::new(u64::MAX, 2), None);
    }

    /// Only aligned accesses of 1, 2 or 4 bytes inside the window are
    /// direct; anything else goes through VFIO (which then says why).
    #[test]
    fn accesses_outside_the_window_are_not_direct() {
        let w = PortWindow::new(0xc000, 0x20).unwrap();
        assert_eq!(w.port(0x10, 4), Some(0xc010));
        assert_eq!(w.port(0x1f, 1), Some(0xc01f));
        assert_eq!(w.port(0x1e, 2), Some(0xc01e));
        assert_eq!(w.port(0x1e, 4), None, "crosses the end");
        assert_eq!(w.port(0x20, 1), None);
        assert_eq!(w.port(0x11, 2), None, "unaligned");
        assert_eq!(w.port(0x10, 3), None);
        assert_eq!(w.port(u64::MAX, 1), None);
    }

    #[test]
    fn the_mode_comes_from_pktkit_pio() {
        if cfg!(target_arch = "x86_64") {
            assert_eq!(PioMode::parse(None), PioMode::Direct);
            assert_eq!(PioMode::parse(Some("direct")), PioMode::Direct);
            assert_eq!(PioMode::parse(Some("vfio")), PioMode::Vfio);
            assert_eq!(PioMode::parse(Some("bogus")), PioMode::Direct);
        } else {
            assert_eq!(PioMode::parse(None), PioMode::Unavailable);
        }
    }
}
