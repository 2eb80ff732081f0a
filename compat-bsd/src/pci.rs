//! PCI, bus_space and bus_dma of the KPI (`<dev/pci/pcivar.h>`,
//! `<sys/bus.h>`) over the device-access traits of pktkit-native (VFIO in
//! the stack).
//!
//! The chipset tag and the PCI tag given to the driver are both the device
//! context. Memory BARs are mapped once and accessed inline by the C
//! headers; I/O BARs go through [`pktkit_native::device::PciDevice::io_read`].
//! DMA memory comes from the device (so it is mapped for it); maps loaded
//! with kernel buffers find their IOVA in that memory, or take IOVA = VA for
//! pool memory (the stack maps its pools that way); mbufs carry their IOVA.
//! Every map is recorded in the device context, and a load notes its
//! direction, for fault injection ([`crate::fault`]).

use std::ffi::{c_char, c_int, c_void};
use std::os::fd::AsRawFd;
use std::ptr;

use pktkit_native::device::IrqKind;
use pktkit_native::sys::mbuf;

use crate::ctx::{self, epoll_add, lock, DevCtx, Irq};
use crate::fault::{self, segs};
use crate::sys;

type PciIntrHandle = u64;

const INTR_TYPE_SHIFT: u32 = 32;
const TYPE_INTX: u64 = 0;
const TYPE_MSI: u64 = 1;
const TYPE_MSIX: u64 = 2;

/// # Safety
/// `p` must be a chipset/PCI tag, bus tag context or DMA tag context the
/// adapter handed out.
unsafe fn ctx<'a>(p: *const c_void) -> Option<&'a DevCtx> {
    // SAFETY: forwarded contract.
    unsafe { ctx::from_ptr(p) }
}

/// `pci_conf_read(9)`.
///
/// # Safety
/// `pc` must be the chipset tag of an attach.
#[no_mangle]
pub unsafe extern "C" fn pci_conf_read(pc: *mut c_void, _tag: *mut c_void, reg: c_int) -> u32 {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx(pc) }) else {
        return u32::MAX;
    };
    lock(&c.pci)
        .as_ref()
        .and_then(|d| d.config_read(reg as u16, 4).ok())
        .unwrap_or(u32::MAX)
}

/// `pci_conf_write(9)`.
///
/// # Safety
/// `pc` must be the chipset tag of an attach.
#[no_mangle]
pub unsafe extern "C" fn pci_conf_write(pc: *mut c_void, _tag: *mut c_void, reg: c_int, v: u32) {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx(pc) }) else {
        return;
    };
    if let Some(d) = lock(&c.pci).as_ref() {
        if let Err(e) = d.config_write(reg as u16, 4, v) {
            log::warn!(target: "bsd", "pci_conf_write {reg:#x}: {e}");
        }
    }
}

/// `pci_get_capability(9)`: walks the capability list.
///
/// # Safety
/// `pc` must be the chipset tag of an attach; `offset`/`value` null or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn pci_get_capability(
    pc: *mut c_void,
    tag: *mut c_void,
    capid: c_int,
    offset: *mut c_int,
    value: *mut u32,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        if pci_conf_read(pc, tag, 0x04) & 0x0010_0000 == 0 {
            return 0;
        }
        let mut off = (pci_conf_read(pc, tag, 0x34) & 0xfc) as c_int;
        for _ in 0..48 {
            if off == 0 {
                break;
            }
            let r = pci_conf_read(pc, tag, off);
            if (r & 0xff) as c_int == capid {
                if !offset.is_null() {
                    *offset = off;
                }
                if !value.is_null() {
                    *value = r;
                }
                return 1;
            }
            off = ((r >> 8) & 0xfc) as c_int;
        }
        0
    }
}

/// `pci_mapreg_type(9)`.
///
/// # Safety
/// As for `pci_conf_read`.
#[no_mangle]
pub unsafe extern "C" fn pci_mapreg_type(pc: *mut c_void, tag: *mut c_void, reg: c_int) -> u32 {
    // SAFETY: forwarded contract.
    let v = unsafe { pci_conf_read(pc, tag, reg) };
    if v & 1 != 0 {
        1
    } else {
        v & 0x6
    }
}

fn bar_index(reg: c_int) -> Option<u8> {
    (0x10..0x28)
        .contains(&reg)
        .then_some(((reg - 0x10) / 4) as u8)
}

/// Maps BAR `bar` of `c` (once) and returns (va, len).
fn map_bar(c: &DevCtx, bar: u8) -> Option<(usize, usize)> {
    let mut bars = lock(&c.bars);
    if let Some(m) = bars[bar as usize] {
        return Some(m);
    }
    let mut pci = lock(&c.pci);
    let d = pci.as_mut()?;
    match d.map_bar(bar) {
        Ok((p, len)) => {
            bars[bar as usize] = Some((p as usize, len));
            Some((p as usize, len))
        }
        Err(e) => {
            log::warn!(target: "bsd", "map BAR{bar}: {e}");
            None
        }
    }
}

/// `pci_mapreg_info(9)`: the bus address of a BAR is `(BAR << 48)`, which
/// `bus_space_map` understands.
///
/// # Safety
/// `pc` must be the chipset tag of an attach; out pointers null or writable.
#[no_mangle]
pub unsafe extern "C" fn pci_mapreg_info(
    pc: *mut c_void,
    _tag: *mut c_void,
    reg: c_int,
    ty: u32,
    base: *mut u64,
    size: *mut u64,
    flags: *mut c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx(pc) }) else {
        return libc::ENXIO;
    };
    let Some(bar) = bar_index(reg) else {
        return libc::EINVAL;
    };
    let len = if ty & 1 != 0 {
        0x100
    } else {
        match map_bar(c, bar) {
            Some((_, l)) => l as u64,
            None => return libc::ENXIO,
        }
    };
    // SAFETY: forwarded contract.
    unsafe {
        if !base.is_null() {
            *base = u64::from(bar) << sys::PKTKIT_BUS_IO_BAR_SHIFT;
        }
        if !size.is_null() {
            *size = len;
        }
        if !flags.is_null() {
            *flags = 0;
        }
    }
    0
}

/// `bus_space_map(9)` of a bus address from `pci_mapreg_info`.
///
/// # Safety
/// `t` must be a tag the adapter handed out; `hp` writable.
#[no_mangle]
pub unsafe extern "C" fn bus_space_map(
    t: *mut sys::pktkit_bus_space,
    addr: u64,
    _size: u64,
    _flags: c_int,
    hp: *mut usize,
) -> c_int {
    // SAFETY: forwarded contract.
    let (ty, c) = unsafe { ((*t).bs_type, ctx((*t).bs_ctx)) };
    let Some(c) = c else { return libc::ENXIO };
    let bar = (addr >> sys::PKTKIT_BUS_IO_BAR_SHIFT) as u8;
    let off = (addr & sys::PKTKIT_BUS_IO_OFF_MASK) as usize;
    if bar >= 6 {
        return libc::EINVAL;
    }
    let h = if ty == sys::BUS_SPACE_MEM as c_int {
        match map_bar(c, bar) {
            Some((va, _)) => va + off,
            None => return libc::ENXIO,
        }
    } else {
        addr as usize
    };
    // SAFETY: forwarded contract.
    unsafe { *hp = h };
    0
}

/// `bus_space_unmap(9)`: BARs stay mapped until the device detaches.
#[no_mangle]
pub extern "C" fn bus_space_unmap(_t: *mut sys::pktkit_bus_space, _h: usize, _size: u64) {}

/// `pci_mapreg_map(9)`.
///
/// # Safety
/// `pa` must be the attach arguments the adapter gave; out pointers null
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn pci_mapreg_map(
    pa: *const sys::pci_attach_args,
    reg: c_int,
    ty: u32,
    flags: c_int,
    tagp: *mut *mut sys::pktkit_bus_space,
    hp: *mut usize,
    basep: *mut u64,
    sizep: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        let pa = &*pa;
        let mut base = 0;
        let mut size = 0;
        let e = pci_mapreg_info(
            pa.pa_pc.cast(),
            pa.pa_tag,
            reg,
            ty,
            &mut base,
            &mut size,
            ptr::null_mut(),
        );
        if e != 0 {
            return e;
        }
        let tag = if ty & 1 != 0 { pa.pa_iot } else { pa.pa_memt };
        let mut h = 0;
        let e = bus_space_map(tag, base, size, flags, &mut h);
        if e != 0 {
            return e;
        }
        if !tagp.is_null() {
            *tagp = tag;
        }
        if !hp.is_null() {
            *hp = h;
        }
        if !basep.is_null() {
            *basep = base;
        }
        if !sizep.is_null() {
            *sizep = size;
        }
        0
    }
}

/// Reads an I/O-space register (`bus_space_read_N` on an I/O tag).
///
/// # Safety
/// `t` must be an I/O tag the adapter handed out.
#[no_mangle]
pub unsafe extern "C" fn pktkit_bus_io_read(
    t: *mut sys::pktkit_bus_space,
    h: usize,
    width: c_int,
) -> u32 {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx((*t).bs_ctx) }) else {
        return u32::MAX;
    };
    let bar = (h as u64 >> sys::PKTKIT_BUS_IO_BAR_SHIFT) as u8;
    let off = h as u64 & sys::PKTKIT_BUS_IO_OFF_MASK;
    lock(&c.pci)
        .as_ref()
        .and_then(|d| d.io_read(bar, off, width as u8).ok())
        .unwrap_or(u32::MAX)
}

/// Writes an I/O-space register.
///
/// # Safety
/// `t` must be an I/O tag the adapter handed out.
#[no_mangle]
pub unsafe extern "C" fn pktkit_bus_io_write(
    t: *mut sys::pktkit_bus_space,
    h: usize,
    width: c_int,
    v: u32,
) {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx((*t).bs_ctx) }) else {
        return;
    };
    let bar = (h as u64 >> sys::PKTKIT_BUS_IO_BAR_SHIFT) as u8;
    let off = h as u64 & sys::PKTKIT_BUS_IO_OFF_MASK;
    if let Some(d) = lock(&c.pci).as_ref() {
        if let Err(e) = d.io_write(bar, off, width as u8, v) {
            log::warn!(target: "bsd", "I/O write BAR{bar}+{off:#x}: {e}");
        }
    }
}

/// `pci_activate(9)`: the function is in D0 under VFIO.
#[no_mangle]
pub extern "C" fn pci_activate(
    _pc: *mut c_void,
    _t: *mut c_void,
    _d: *mut c_void,
    _f: *mut c_void,
) -> c_int {
    0
}

/// `pci_activate_null(9)`.
#[no_mangle]
pub extern "C" fn pci_activate_null(
    _pc: *mut c_void,
    _t: *mut c_void,
    _d: *mut c_void,
    _s: u32,
) -> c_int {
    0
}

/// `pci_aprint_devinfo_fancy(9)`.
///
/// # Safety
/// `pa` must be the attach arguments the adapter gave; `known` null or a
/// C string.
#[no_mangle]
pub unsafe extern "C" fn pci_aprint_devinfo_fancy(
    pa: *const sys::pci_attach_args,
    _naive: *const c_char,
    known: *const c_char,
    _verbose: c_int,
) {
    // SAFETY: forwarded contract.
    unsafe {
        let id = (*pa).pa_id;
        let name = if known.is_null() {
            String::from("network controller")
        } else {
            std::ffi::CStr::from_ptr(known)
                .to_string_lossy()
                .into_owned()
        };
        log::info!(target: "bsd", "{name} ({:04x}:{:04x} rev {:#04x})", id & 0xffff, id >> 16, (*pa).pa_class & 0xff);
    }
}

// ---------------------------------------------------------------------------
// Interrupts

fn enable(c: &DevCtx, kind: IrqKind, count: u32) -> c_int {
    let mut fds = lock(&c.irq_fds);
    if !fds.is_empty() {
        return 0;
    }
    let mut pci = lock(&c.pci);
    let Some(d) = pci.as_mut() else {
        return libc::ENXIO;
    };
    match d.enable_irqs(kind, count) {
        Ok(v) => {
            for &fd in &v {
                for ep in [c.epoll.as_raw_fd(), c.rx_epoll.as_raw_fd()] {
                    if let Err(e) = epoll_add(ep, fd) {
                        log::warn!(target: "bsd", "epoll add of irq fd: {e}");
                    }
                }
            }
            *fds = v;
            *lock(&c.irq_kind) = Some(kind);
            0
        }
        Err(e) => {
            log::warn!(target: "bsd", "enable {kind:?} x{count}: {e}");
            libc::ENXIO
        }
    }
}

/// `pci_intr_map(9)`: the INTx line.
///
/// # Safety
/// `pa` as given at attach; `ih` writable.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_map(
    pa: *const sys::pci_attach_args,
    ih: *mut PciIntrHandle,
) -> c_int {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx((*pa).pa_pc.cast()) }) else {
        return libc::ENXIO;
    };
    let e = enable(c, IrqKind::Intx, 1);
    if e == 0 {
        // SAFETY: forwarded contract.
        unsafe { *ih = TYPE_INTX << INTR_TYPE_SHIFT };
    }
    e
}

/// `pci_intr_alloc(9)`: MSI-X, then MSI, then INTx, up to `max_type`;
/// `counts[type]` asks for that many vectors (MSI-X).
///
/// # Safety
/// `pa` as given at attach; `ihps` writable; `counts` null or
/// `PCI_INTR_TYPE_SIZE` ints.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_alloc(
    pa: *const sys::pci_attach_args,
    ihps: *mut *mut PciIntrHandle,
    counts: *mut c_int,
    max_type: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx((*pa).pa_pc.cast()) }) else {
        return libc::ENXIO;
    };
    let want = |t: usize| -> u32 {
        if counts.is_null() {
            1
        } else {
            // SAFETY: counts has PCI_INTR_TYPE_SIZE entries.
            unsafe { (*counts.add(t)).max(0) as u32 }
        }
    };
    let order: [(u64, IrqKind); 3] = [
        (TYPE_MSIX, IrqKind::Msix),
        (TYPE_MSI, IrqKind::Msi),
        (TYPE_INTX, IrqKind::Intx),
    ];
    for (ty, kind) in order {
        if ty as c_int > max_type {
            continue;
        }
        let n = if ty == TYPE_INTX {
            1
        } else {
            want(ty as usize)
        };
        if n == 0 {
            continue;
        }
        // SAFETY: forwarded contract.
        if let Some(got) = unsafe { alloc_vectors(c, ty, kind, n, ihps) } {
            if !counts.is_null() {
                // SAFETY: counts has PCI_INTR_TYPE_SIZE entries.
                unsafe {
                    for t in 0..3 {
                        *counts.add(t) = 0;
                    }
                    *counts.add(ty as usize) = got as c_int;
                }
            }
            return 0;
        }
    }
    libc::ENODEV
}

/// Enables `n` vectors of one kind and hands the driver their handles;
/// how many it got, or `None` if the function has no such vectors.
///
/// # Safety
/// `ihps` writable.
unsafe fn alloc_vectors(
    c: &DevCtx,
    ty: u64,
    kind: IrqKind,
    n: u32,
    ihps: *mut *mut PciIntrHandle,
) -> Option<usize> {
    if enable(c, kind, n) != 0 {
        return None;
    }
    let got = lock(&c.irq_fds).len();
    let v: Vec<PciIntrHandle> = (0..got as u64)
        .map(|i| (ty << INTR_TYPE_SHIFT) | i)
        .collect();
    // SAFETY: forwarded contract; the array is leaked to the driver and
    // given back by pci_intr_release.
    unsafe { *ihps = Box::into_raw(v.into_boxed_slice()).cast() };
    Some(got)
}

/// `pci_msi_alloc_exact(9)` and `pci_msix_alloc_exact(9)`: exactly `count`
/// vectors of that kind, or an error (no fallback to another kind).
///
/// # Safety
/// `pa` as given at attach; `ihps` writable.
unsafe fn alloc_exact(
    pa: *const sys::pci_attach_args,
    ihps: *mut *mut PciIntrHandle,
    count: c_int,
    ty: u64,
    kind: IrqKind,
) -> c_int {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx((*pa).pa_pc.cast()) }) else {
        return libc::ENXIO;
    };
    if count <= 0 {
        return libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    match unsafe { alloc_vectors(c, ty, kind, count as u32, ihps) } {
        Some(got) if got == count as usize => 0,
        Some(got) => {
            // SAFETY: the handles alloc_vectors just gave out.
            unsafe { pci_intr_release((*pa).pa_pc.cast(), *ihps, got as c_int) };
            libc::ENODEV
        }
        None => libc::ENODEV,
    }
}

/// `pci_msi_alloc_exact(9)`.
///
/// # Safety
/// As for `pci_intr_alloc`.
#[no_mangle]
pub unsafe extern "C" fn pci_msi_alloc_exact(
    pa: *const sys::pci_attach_args,
    ihps: *mut *mut PciIntrHandle,
    count: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { alloc_exact(pa, ihps, count, TYPE_MSI, IrqKind::Msi) }
}

/// `pci_msix_alloc_exact(9)`.
///
/// # Safety
/// As for `pci_intr_alloc`.
#[no_mangle]
pub unsafe extern "C" fn pci_msix_alloc_exact(
    pa: *const sys::pci_attach_args,
    ihps: *mut *mut PciIntrHandle,
    count: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { alloc_exact(pa, ihps, count, TYPE_MSIX, IrqKind::Msix) }
}

/// `pci_intx_alloc(9)`.
///
/// # Safety
/// As for `pci_intr_alloc`.
#[no_mangle]
pub unsafe extern "C" fn pci_intx_alloc(
    pa: *const sys::pci_attach_args,
    ihps: *mut *mut PciIntrHandle,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { pci_intr_alloc(pa, ihps, ptr::null_mut(), TYPE_INTX as c_int) }
}

/// `pci_intr_release(9)`: disables the vectors.
///
/// # Safety
/// `ihs` from `pci_intr_alloc` with its count.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_release(pc: *mut c_void, ihs: *mut PciIntrHandle, count: c_int) {
    if !ihs.is_null() && count > 0 {
        // SAFETY: forwarded contract: the boxed slice pci_intr_alloc leaked.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ihs, count as usize)) });
    }
    // SAFETY: forwarded contract.
    if let Some(c) = unsafe { ctx(pc) } {
        release_irqs(c);
    }
}

/// Disables every vector of `c`.
pub fn release_irqs(c: &DevCtx) {
    lock(&c.irqs).clear();
    let fds = std::mem::take(&mut *lock(&c.irq_fds));
    for fd in fds {
        for ep in [c.epoll.as_raw_fd(), c.rx_epoll.as_raw_fd()] {
            // SAFETY: removing a descriptor from our own epoll set.
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, ptr::null_mut()) };
        }
    }
    if let Some(d) = lock(&c.pci).as_mut() {
        let _ = d.disable_irqs();
    }
    *lock(&c.irq_kind) = None;
}

/// `pci_intr_type(9)`.
#[no_mangle]
pub extern "C" fn pci_intr_type(_pc: *mut c_void, ih: PciIntrHandle) -> c_int {
    (ih >> INTR_TYPE_SHIFT) as c_int
}

/// `pci_intr_setattr(9)`: PCI_INTR_MPSAFE marks the handler MP-safe.
///
/// # Safety
/// `ih` must point to a handle.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_setattr(
    _pc: *mut c_void,
    ih: *mut PciIntrHandle,
    attr: c_int,
    data: u64,
) -> c_int {
    const MPSAFE_BIT: u64 = 1 << 40;
    if attr == 1 {
        // SAFETY: forwarded contract.
        unsafe {
            if data != 0 {
                *ih |= MPSAFE_BIT;
            } else {
                *ih &= !MPSAFE_BIT;
            }
        }
        return 0;
    }
    libc::ENODEV
}

/// `pci_intr_string(9)`.
///
/// # Safety
/// `buf` must hold `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_string(
    _pc: *mut c_void,
    ih: PciIntrHandle,
    buf: *mut c_char,
    len: usize,
) -> *const c_char {
    let s = match (ih >> INTR_TYPE_SHIFT) & 0xff {
        TYPE_MSIX => format!("msix vec {}", ih & 0xffff),
        TYPE_MSI => format!("msi vec {}", ih & 0xffff),
        _ => String::from("intx (vfio eventfd)"),
    };
    if len > 0 {
        let n = s.len().min(len - 1);
        // SAFETY: forwarded contract: n + 1 <= len bytes written.
        unsafe {
            ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    buf
}

/// `pci_intr_establish(9)`.
///
/// # Safety
/// `pc` the chipset tag; `func`/`arg` live until disestablished.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_establish(
    pc: *mut c_void,
    ih: PciIntrHandle,
    _ipl: c_int,
    func: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    arg: *mut c_void,
) -> *mut c_void {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx(pc) }) else {
        return ptr::null_mut();
    };
    let vec = (ih & 0xffff) as usize;
    let Some(&fd) = lock(&c.irq_fds).get(vec) else {
        log::warn!(target: "bsd", "pci_intr_establish: vector {vec} not allocated");
        return ptr::null_mut();
    };
    let kind = lock(&c.irq_kind).unwrap_or(IrqKind::Intx);
    let mut irqs = lock(&c.irqs);
    irqs.push(Irq {
        fd,
        kind,
        func,
        arg,
        mpsafe: ih & (1 << 40) != 0,
    });
    // A non-null cookie: the vector number plus one.
    (vec + 1) as *mut c_void
}

/// `pci_intr_establish_xname(9)`.
///
/// # Safety
/// As for `pci_intr_establish`.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_establish_xname(
    pc: *mut c_void,
    ih: PciIntrHandle,
    ipl: c_int,
    func: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    arg: *mut c_void,
    _xname: *const c_char,
) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { pci_intr_establish(pc, ih, ipl, func, arg) }
}

/// `pci_intr_disestablish(9)`.
///
/// # Safety
/// `pc` the chipset tag; `cookie` from `pci_intr_establish`.
#[no_mangle]
pub unsafe extern "C" fn pci_intr_disestablish(pc: *mut c_void, cookie: *mut c_void) {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx(pc) }) else {
        return;
    };
    let vec = (cookie as usize).wrapping_sub(1);
    if let Some(&fd) = lock(&c.irq_fds).get(vec) {
        lock(&c.irqs).retain(|i| i.fd != fd);
    }
}

/// `pci_msi_count(9)`: the vectors the MSI capability offers (its
/// Multiple Message Capable field), 0 without one.
///
/// # Safety
/// `pc` the chipset tag.
#[no_mangle]
pub unsafe extern "C" fn pci_msi_count(pc: *mut c_void, tag: *mut c_void) -> c_int {
    let mut off = 0;
    let mut v = 0;
    // SAFETY: forwarded contract.
    if unsafe { pci_get_capability(pc, tag, 0x05, &mut off, &mut v) } == 0 {
        return 0;
    }
    1 << ((v >> 17) & 0x7)
}

/// `pci_msix_count(9)`: from the MSI-X capability's table size.
///
/// # Safety
/// `pc` the chipset tag.
#[no_mangle]
pub unsafe extern "C" fn pci_msix_count(pc: *mut c_void, tag: *mut c_void) -> c_int {
    let mut off = 0;
    let mut v = 0;
    // SAFETY: forwarded contract.
    if unsafe { pci_get_capability(pc, tag, 0x11, &mut off, &mut v) } == 0 {
        return 0;
    }
    ((v >> 16) & 0x7ff) as c_int + 1
}

// ---------------------------------------------------------------------------
// bus_dma

/// `bus_dmamap_create(9)`.
///
/// # Safety
/// `mapp` writable.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamap_create(
    t: *mut sys::pktkit_bus_dma_tag,
    size: u64,
    nsegs: c_int,
    maxsegsz: u64,
    boundary: u64,
    flags: c_int,
    mapp: *mut *mut sys::pktkit_bus_dmamap,
) -> c_int {
    let nsegs = nsegs.max(1) as usize;
    let bytes = std::mem::size_of::<sys::pktkit_bus_dmamap>()
        + (nsegs - 1) * std::mem::size_of::<sys::bus_dma_segment>();
    // SAFETY: plain zeroed allocation, checked.
    let m = unsafe { libc::calloc(1, bytes) }.cast::<sys::pktkit_bus_dmamap>();
    if m.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: m is fresh zeroed storage for the map and its segments.
    unsafe {
        (*m)._dm_size = size;
        (*m)._dm_segcnt = nsegs as c_int;
        (*m)._dm_maxsegsz = maxsegsz;
        (*m)._dm_boundary = boundary;
        (*m)._dm_flags = flags;
        (*m).dm_maxsegsz = maxsegsz;
        *mapp = m;
    }
    // SAFETY: t is a DMA tag the adapter handed out (or one without a
    // device, which keeps no list).
    if let Some(c) = unsafe { ctx((*t).dt_ctx) } {
        lock(&c.maps).created(m);
    }
    0
}

/// `bus_dmamap_destroy(9)`.
///
/// # Safety
/// `t` the tag and `m` a map from `bus_dmamap_create`.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamap_destroy(
    t: *mut sys::pktkit_bus_dma_tag,
    m: *mut sys::pktkit_bus_dmamap,
) {
    // SAFETY: forwarded contract.
    if let Some(c) = unsafe { ctx((*t).dt_ctx) } {
        lock(&c.maps).destroyed(m);
    }
    // SAFETY: forwarded contract.
    unsafe { libc::free(m.cast()) };
}

/// Appends `[iova, iova+len)` to a map, splitting at `maxsegsz` and
/// merging with a contiguous previous segment.
fn add_seg(
    segs: &mut [sys::bus_dma_segment],
    n: &mut usize,
    maxseg: u64,
    mut iova: u64,
    mut len: u64,
) -> bool {
    let maxseg = if maxseg == 0 { u64::MAX } else { maxseg };
    while len > 0 {
        if *n > 0 {
            let last = &mut segs[*n - 1];
            if last.ds_addr + last.ds_len == iova && last.ds_len < maxseg {
                let take = (maxseg - last.ds_len).min(len);
                last.ds_len += take;
                iova += take;
                len -= take;
                continue;
            }
        }
        if *n == segs.len() {
            return false;
        }
        let take = maxseg.min(len);
        segs[*n] = sys::bus_dma_segment {
            ds_addr: iova,
            ds_len: take,
            _ds_va: ptr::null_mut(),
        };
        *n += 1;
        iova += take;
        len -= take;
    }
    true
}

/// The IOVA of `va`: inside DMA memory of the device, or IOVA = VA (pools).
fn iova_of(c: Option<&DevCtx>, va: usize) -> u64 {
    if let Some(c) = c {
        for d in lock(&c.dma).iter() {
            let base = d.as_ptr() as usize;
            if va >= base && va < base + d.len() {
                return d.iova() + (va - base) as u64;
            }
        }
    }
    va as u64
}

/// `bus_dmamap_load(9)` of a kernel buffer.
///
/// # Safety
/// `t` a DMA tag; `m` a map; `buf` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamap_load(
    t: *mut sys::pktkit_bus_dma_tag,
    m: *mut sys::pktkit_bus_dmamap,
    buf: *mut c_void,
    len: u64,
    _p: *mut c_void,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        let c = ctx((*t).dt_ctx);
        if len > (*m)._dm_size {
            return libc::EINVAL;
        }
        fault::note_load(m, flags);
        let s = segs(m);
        let mut n = 0;
        // Split at page boundaries: DMA memory is contiguous in IOVA space,
        // but a pool buffer's neighbour page need not be.
        let mut va = buf as usize;
        let end = va + len as usize;
        while va < end {
            let page_end = (va & !4095) + 4096;
            let chunk = page_end.min(end) - va;
            if !add_seg(s, &mut n, (*m)._dm_maxsegsz, iova_of(c, va), chunk as u64) {
                (*m).dm_nsegs = 0;
                return libc::EFBIG;
            }
            va += chunk;
        }
        (*m).dm_nsegs = n as c_int;
        (*m).dm_mapsize = len;
        0
    }
}

/// `bus_dmamap_load_mbuf(9)`: one segment per buffer, from its IOVA.
///
/// # Safety
/// `m` a map; `mb` a live chain.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamap_load_mbuf(
    _t: *mut sys::pktkit_bus_dma_tag,
    m: *mut sys::pktkit_bus_dmamap,
    mb: *mut mbuf,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        fault::note_load(m, flags);
        let s = segs(m);
        let mut n = 0;
        let mut total = 0u64;
        let mut p = mb;
        while !p.is_null() {
            let h = &(*p).m_hdr;
            if h.mh_len > 0 {
                let iova = h.mh_paddr + (h.mh_data as u64 - (*p).M_ext.ext_buf as u64);
                if !add_seg(s, &mut n, (*m)._dm_maxsegsz, iova, h.mh_len as u64) {
                    (*m).dm_nsegs = 0;
                    return libc::EFBIG;
                }
                total += h.mh_len as u64;
            }
            p = h.mh_next;
        }
        if total > (*m)._dm_size {
            (*m).dm_nsegs = 0;
            return libc::EFBIG;
        }
        (*m).dm_nsegs = n as c_int;
        (*m).dm_mapsize = total;
        0
    }
}

/// `bus_dmamap_unload(9)`.
///
/// # Safety
/// `m` a map.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamap_unload(
    _t: *mut sys::pktkit_bus_dma_tag,
    m: *mut sys::pktkit_bus_dmamap,
) {
    // SAFETY: forwarded contract.
    unsafe {
        (*m).dm_nsegs = 0;
        (*m).dm_mapsize = 0;
    }
}

/// `bus_dmamem_alloc(9)`: one segment of device-mapped memory.
///
/// # Safety
/// `t` a DMA tag; `segs` holds `nsegs`; `rsegs` writable.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamem_alloc(
    t: *mut sys::pktkit_bus_dma_tag,
    size: u64,
    _align: u64,
    _boundary: u64,
    segs: *mut sys::bus_dma_segment,
    nsegs: c_int,
    rsegs: *mut c_int,
    _flags: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx((*t).dt_ctx) }) else {
        return libc::ENXIO;
    };
    if nsegs < 1 {
        return libc::EINVAL;
    }
    // Device memory comes in whole pages, so any alignment up to 4 KiB holds.
    let len = (size as usize).div_ceil(4096) * 4096;
    let mem = {
        let mut pci = lock(&c.pci);
        let Some(d) = pci.as_mut() else {
            return libc::ENXIO;
        };
        match d.dma_alloc(len) {
            Ok(m) => m,
            Err(e) => {
                log::warn!(target: "bsd", "bus_dmamem_alloc {len}: {e}");
                return libc::ENOMEM;
            }
        }
    };
    // SAFETY: forwarded contract.
    unsafe {
        *segs = sys::bus_dma_segment {
            ds_addr: mem.iova(),
            ds_len: len as u64,
            _ds_va: mem.as_ptr().cast(),
        };
        *rsegs = 1;
    }
    lock(&c.dma).push(mem);
    0
}

/// `bus_dmamem_free(9)`.
///
/// # Safety
/// `segs` from `bus_dmamem_alloc`.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamem_free(
    t: *mut sys::pktkit_bus_dma_tag,
    segs: *mut sys::bus_dma_segment,
    nsegs: c_int,
) {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { ctx((*t).dt_ctx) }) else {
        return;
    };
    for i in 0..nsegs.max(0) as usize {
        // SAFETY: forwarded contract.
        let iova = unsafe { (*segs.add(i)).ds_addr };
        lock(&c.dma).retain(|d| d.iova() != iova);
    }
}

/// `bus_dmamem_map(9)`: the memory is already mapped; returns its address.
///
/// # Safety
/// `segs` from `bus_dmamem_alloc`; `kvap` writable.
#[no_mangle]
pub unsafe extern "C" fn bus_dmamem_map(
    _t: *mut sys::pktkit_bus_dma_tag,
    segs: *mut sys::bus_dma_segment,
    nsegs: c_int,
    _size: usize,
    kvap: *mut *mut c_void,
    _flags: c_int,
) -> c_int {
    if nsegs != 1 {
        return libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe { *kvap = (*segs)._ds_va };
    0
}

/// `bus_dmamem_unmap(9)`: nothing to undo.
#[no_mangle]
pub extern "C" fn bus_dmamem_unmap(
    _t: *mut sys::pktkit_bus_dma_tag,
    _kva: *mut c_void,
    _size: usize,
) {
}
