//! Direct port I/O for a device's I/O-port BARs (x86-64).
//!
//! VFIO reaches an I/O-port BAR through its region: every access is a
//! `pread`/`pwrite` on the device fd, i.e. a system call, which the kernel
//! turns into one `in`/`out`. For a device moved by programmed I/O (an
//! NE2000 takes one access per 2 or 4 bytes of every frame) the call is
//! most of the cost. With the process's permission for exactly the BAR's
//! ports (`ioperm(2)`), the same access is one instruction, the device
//! still bound to vfio-pci and its DMA still confined by the IOMMU (port
//! I/O is not DMA).
//!
//! Port permissions belong to a thread, not the process: a thread gets them
//! the first time it touches a window ([`PortWindow::read`]); if the kernel
//! refuses (no CAP_SYS_RAWIO, no ioperm support), that thread, and the
//! device, go on through VFIO. `PKTKIT_PIO=vfio` in the environment keeps
//! every device on VFIO.
//!
//! Permissions are not taken back when a device closes (a thread cannot
//! drop another thread's); they cover only ports of devices this process
//! was given.

use std::cell::RefCell;

/// What `PKTKIT_PIO` asks for: direct port I/O (the default where it
/// exists) or every access through VFIO.
pub fn direct_wanted() -> bool {
    cfg!(target_arch = "x86_64") && std::env::var("PKTKIT_PIO").map_or(true, |v| v != "vfio")
}

/// One I/O-port BAR's ports, as sysfs places them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortWindow {
    /// First port.
    pub base: u16,
    /// Number of ports.
    pub len: u16,
}

thread_local! {
    /// Windows this thread asked permission for, and the answer.
    static GRANTED: RefCell<Vec<(PortWindow, bool)>> = const { RefCell::new(Vec::new()) };
}

impl PortWindow {
    /// A window of `len` ports from `base`, if it lies in the 16-bit port
    /// space and is not empty.
    pub fn new(base: u64, len: u64) -> Option<PortWindow> {
        let end = base.checked_add(len)?;
        if len == 0 || end > 0x1_0000 {
            return None;
        }
        Some(PortWindow {
            base: base as u16,
            len: len as u16,
        })
    }

    /// Whether this thread may access the window: asks the kernel the
    /// first time, remembers the answer.
    pub fn granted(&self) -> bool {
        GRANTED.with(|g| {
            let mut g = g.borrow_mut();
            if let Some(&(_, ok)) = g.iter().find(|(w, _)| w == self) {
                return ok;
            }
            let ok = ioperm(*self);
            if !ok {
                log::debug!(
                    "ports {:#x}+{:#x}: no permission on this thread: through VFIO",
                    self.base,
                    self.len
                );
            }
            g.push((*self, ok));
            ok
        })
    }

    /// The port at `off` for an access of `width` bytes (1, 2 or 4) inside
    /// the window, naturally aligned.
    fn port(&self, off: u64, width: u8) -> Option<u16> {
        if !matches!(width, 1 | 2 | 4) || !off.is_multiple_of(u64::from(width)) {
            return None;
        }
        let end = off.checked_add(u64::from(width))?;
        (end <= u64::from(self.len)).then(|| self.base + off as u16)
    }

    /// Reads `width` bytes at `off` directly, or `None` when this access
    /// must go through VFIO (outside the window, unaligned, no permission).
    pub fn read(&self, off: u64, width: u8) -> Option<u32> {
        let port = self.port(off, width)?;
        if !self.granted() {
            return None;
        }
        // SAFETY: the port is inside the window of a BAR of a device this
        // process owns through VFIO, and this thread has permission for it.
        Some(unsafe { arch::input(port, width) })
    }

    /// Writes `width` bytes at `off` directly; `false` when this access
    /// must go through VFIO.
    pub fn write(&self, off: u64, width: u8, value: u32) -> bool {
        let Some(port) = self.port(off, width) else {
            return false;
        };
        if !self.granted() {
            return false;
        }
        // SAFETY: as in read.
        unsafe { arch::output(port, width, value) };
        true
    }
}

/// Asks permission for the window on the calling thread.
fn ioperm(w: PortWindow) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: ioperm changes only this thread's port permission bitmap.
        unsafe { libc::ioperm(libc::c_ulong::from(w.base), libc::c_ulong::from(w.len), 1) == 0 }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = w;
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod arch {
    use std::arch::asm;

    /// `in` of `width` bytes (1, 2, else 4) from `port`.
    ///
    /// # Safety
    /// The thread must have permission for the port, and reading it must
    /// have no effect the caller did not mean.
    #[inline]
    pub unsafe fn input(port: u16, width: u8) -> u32 {
        // SAFETY: per the contract.
        unsafe {
            match width {
                1 => {
                    let v: u8;
                    asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags));
                    u32::from(v)
                }
                2 => {
                    let v: u16;
                    asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack, preserves_flags));
                    u32::from(v)
                }
                _ => {
                    let v: u32;
                    asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags));
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
                    asm!("out dx, al", in("dx") port, in("al") value as u8, options(nomem, nostack, preserves_flags))
                }
                2 => {
                    asm!("out dx, ax", in("dx") port, in("ax") value as u16, options(nomem, nostack, preserves_flags))
                }
                _ => {
                    asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod arch {
    /// Never called: no window is granted off x86-64.
    pub unsafe fn input(_: u16, _: u8) -> u32 {
        u32::MAX
    }

    /// Never called: no window is granted off x86-64.
    pub unsafe fn output(_: u16, _: u8, _: u32) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_lie_in_the_port_space() {
        assert_eq!(
            PortWindow::new(0xc000, 0x20),
            Some(PortWindow {
                base: 0xc000,
                len: 0x20
            })
        );
        assert_eq!(PortWindow::new(0xfff0, 0x10).map(|w| w.len), Some(0x10));
        assert_eq!(PortWindow::new(0xfff0, 0x11), None);
        assert_eq!(PortWindow::new(0xc000, 0), None);
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

    /// The answer is asked once per thread and window, then remembered.
    #[test]
    fn permission_is_per_thread_and_remembered() {
        let w = PortWindow::new(0xfff8, 8).unwrap();
        let first = w.granted();
        assert_eq!(w.granted(), first);
        GRANTED.with(|g| assert_eq!(g.borrow().iter().filter(|(x, _)| *x == w).count(), 1));
        std::thread::spawn(move || {
            GRANTED.with(|g| assert!(g.borrow().is_empty(), "a new thread asks again"));
        })
        .join()
        .unwrap();
    }
}
