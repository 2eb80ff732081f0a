//! Fault injection for ported drivers ([`pktkit_native::Fault`]), through
//! bus_dma and without the driver's help.
//!
//! compat-bsd implements bus_dma, so it knows every DMA map a device has
//! created ([`DmaMaps`]). A map the device writes into is one loaded with
//! `BUS_DMA_READ`, or synced with `BUS_DMASYNC_PREREAD` since its load (the
//! bus_dma(9) contract: a driver syncs PREREAD before the device writes
//! memory the CPU will read; `<sys/bus.h>` marks the map with
//! `PKTKIT_BUS_DMAMAP_DEVWRITE`). Ported drivers load their receive rings
//! without a direction flag (rtk's receive buffer, the control areas of fxp
//! and pcn), so the sync is the criterion that catches them; transmit-only
//! maps (rtk's TSAD buffers, synced PREWRITE) are left alone.
//!
//! [`DmaMaps::redirect`] rewrites the segment addresses of those maps to an
//! unmapped IOVA (keeping the real ones), the adapter then re-runs the
//! driver's `if_init`, which programs the chip from its maps as NetBSD
//! drivers do (`RBSTART` from the map in rtk; `sc_cddma`, NetBSD's macro for
//! `dm_segs[0].ds_addr`, in fxp and pcn). [`DmaMaps::restore`] puts the real
//! addresses back on the next stop, for maps not re-loaded since.

use crate::sys;

/// A map whose segments point at the fault address, and where they pointed.
struct Redirect {
    map: *mut sys::pktkit_bus_dmamap,
    bad: u64,
    real: Vec<u64>,
}

/// The DMA maps of one device, and the fault redirections in force.
#[derive(Default)]
pub struct DmaMaps {
    live: Vec<*mut sys::pktkit_bus_dmamap>,
    redirected: Vec<Redirect>,
}

/// Where IOVAs too wide for a 32-bit DMA engine are folded to: pktkit never
/// maps IOVAs from 2 GiB to 4 GiB (device DMA memory is allocated below
/// 2 GiB, IOVA = VA; pools are IOVA = VA in the upper part of the address
/// space), and the adapter checks the device's own regions again.
pub const FOLDED_FAULT_IOVA: u64 = 0x8000_0000;

/// The address a fault of `len` bytes at `iova` is given to the device:
/// `iova` itself when the whole range fits in 32 bits, else
/// [`FOLDED_FAULT_IOVA`]. Every ported PCI driver programs 32-bit DMA
/// addresses (RTL8139 `RBSTART`, 8255x SCB pointers, PCnet's init block),
/// so an address above 4 GiB would be truncated by the driver, not faulted.
pub fn fault_address(iova: u64, len: u64) -> u64 {
    match iova.checked_add(len) {
        Some(end) if end <= 1 << 32 => iova,
        _ => FOLDED_FAULT_IOVA,
    }
}

/// The segments a map has room for.
///
/// # Safety
/// `m` must be a live map from `bus_dmamap_create`.
pub(crate) unsafe fn segs<'a>(m: *mut sys::pktkit_bus_dmamap) -> &'a mut [sys::bus_dma_segment] {
    // SAFETY: the map was allocated with _dm_segcnt segments.
    unsafe {
        std::slice::from_raw_parts_mut(
            std::ptr::addr_of_mut!((*m).dm_segs).cast::<sys::bus_dma_segment>(),
            (*m)._dm_segcnt.max(0) as usize,
        )
    }
}

/// The loaded segments of a map the device writes into (empty otherwise).
///
/// # Safety
/// As for [`segs`].
unsafe fn device_written<'a>(m: *mut sys::pktkit_bus_dmamap) -> &'a mut [sys::bus_dma_segment] {
    // SAFETY: forwarded contract; the flag is set by C with a relaxed
    // atomic, read here while the driver is stopped.
    unsafe {
        let flags = std::ptr::read_volatile(std::ptr::addr_of!((*m)._dm_flags));
        if flags & sys::PKTKIT_BUS_DMAMAP_DEVWRITE as i32 == 0 {
            return &mut [];
        }
        let n = ((*m).dm_nsegs.max(0) as usize).min((*m)._dm_segcnt.max(0) as usize);
        &mut segs(m)[..n]
    }
}

/// Marks a map's direction at load: `BUS_DMA_READ` means the device writes.
///
/// # Safety
/// As for [`segs`]; the caller is the map's loader (no concurrent sync).
pub(crate) unsafe fn note_load(m: *mut sys::pktkit_bus_dmamap, flags: i32) {
    let devwrite = sys::PKTKIT_BUS_DMAMAP_DEVWRITE as i32;
    // SAFETY: forwarded contract.
    unsafe {
        if flags & sys::BUS_DMA_READ as i32 != 0 {
            (*m)._dm_flags |= devwrite;
        } else {
            (*m)._dm_flags &= !devwrite;
        }
    }
}

impl DmaMaps {
    /// Records a map `bus_dmamap_create` made.
    pub fn created(&mut self, m: *mut sys::pktkit_bus_dmamap) {
        self.live.push(m);
    }

    /// Forgets a map `bus_dmamap_destroy` is about to free.
    pub fn destroyed(&mut self, m: *mut sys::pktkit_bus_dmamap) {
        self.live.retain(|&x| x != m);
        self.redirected.retain(|r| r.map != m);
    }

    /// Maps currently known.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no map is known.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Maps redirected and not restored yet.
    pub fn redirected(&self) -> usize {
        self.redirected.len()
    }

    /// The largest loaded size among maps the device writes into (0: none):
    /// the span a redirection makes the device use.
    ///
    /// # Safety
    /// Every recorded map is live (maps leave on destroy).
    pub unsafe fn device_written_len(&self) -> u64 {
        self.live
            .iter()
            // SAFETY: forwarded contract.
            .map(|&m| unsafe { device_written(m) }.iter().map(|s| s.ds_len).sum())
            .max()
            .unwrap_or(0)
    }

    /// Points every map the device writes into at `[bad, bad + mapsize)`,
    /// segment by segment as if loaded there contiguously, and keeps the
    /// real addresses; a previous redirection is restored first. Returns
    /// how many maps were redirected. Call with the driver stopped, then
    /// re-run its init so the chip is programmed from the maps.
    ///
    /// # Safety
    /// Every recorded map is live, and the driver does not run meanwhile.
    pub unsafe fn redirect(&mut self, bad: u64) -> usize {
        // SAFETY: forwarded contract.
        unsafe { self.restore() };
        for &m in &self.live {
            // SAFETY: forwarded contract.
            let segs = unsafe { device_written(m) };
            if segs.is_empty() {
                continue;
            }
            let real = segs.iter().map(|s| s.ds_addr).collect();
            let mut at = bad;
            for s in segs.iter_mut() {
                s.ds_addr = at;
                at += s.ds_len;
            }
            self.redirected.push(Redirect { map: m, bad, real });
        }
        self.redirected.len()
    }

    /// Puts back the real addresses of redirected maps; a segment that no
    /// longer holds its redirected address (the map was re-loaded since)
    /// is left as it is. Returns how many segments were restored.
    ///
    /// # Safety
    /// As for [`DmaMaps::redirect`].
    pub unsafe fn restore(&mut self) -> usize {
        let mut restored = 0;
        for r in self.redirected.drain(..) {
            // SAFETY: forwarded contract; a destroyed map left the list.
            let segs = unsafe { segs(r.map) };
            // SAFETY: as above.
            let n = unsafe { (*r.map).dm_nsegs }.max(0) as usize;
            let mut at = r.bad;
            for (s, real) in segs.iter_mut().take(n).zip(r.real) {
                let len = s.ds_len;
                if s.ds_addr == at {
                    s.ds_addr = real;
                    restored += 1;
                }
                at += len;
            }
        }
        restored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::{bus_dmamap_create, bus_dmamap_destroy, bus_dmamap_load};

    /// A map created through bus_dma with no device behind the tag, loaded
    /// with `len` bytes of `buf` (IOVA = VA): pages become segments.
    fn map(
        tag: &mut sys::pktkit_bus_dma_tag,
        buf: &mut [u8],
        len: usize,
        flags: i32,
    ) -> *mut sys::pktkit_bus_dmamap {
        let mut m = std::ptr::null_mut();
        // SAFETY: a tag without a context, a writable out pointer, and a
        // buffer that outlives the map.
        unsafe {
            assert_eq!(bus_dmamap_create(tag, len as u64, 8, 4096, 0, 0, &mut m), 0);
            assert_eq!(
                bus_dmamap_load(
                    tag,
                    m,
                    buf.as_mut_ptr().cast(),
                    len as u64,
                    std::ptr::null_mut(),
                    flags
                ),
                0
            );
        }
        m
    }

    fn addrs(m: *mut sys::pktkit_bus_dmamap) -> Vec<u64> {
        // SAFETY: a live test map.
        unsafe {
            let n = (*m).dm_nsegs as usize;
            segs(m)[..n].iter().map(|s| s.ds_addr).collect()
        }
    }

    /// What `bus_dmamap_sync(..., BUS_DMASYNC_PREREAD)` does to the flags.
    fn sync_preread(m: *mut sys::pktkit_bus_dmamap) {
        // SAFETY: a live test map.
        unsafe { (*m)._dm_flags |= sys::PKTKIT_BUS_DMAMAP_DEVWRITE as i32 };
    }

    #[test]
    fn only_maps_the_device_writes_are_redirected_and_restored() {
        let mut tag = sys::pktkit_bus_dma_tag::default();
        let mut rxbuf = vec![0u8; 3 * 4096];
        let mut txbuf = vec![0u8; 4096];
        let mut ringbuf = vec![0u8; 4096];
        let rx = map(&mut tag, &mut rxbuf, 3 * 4096, sys::BUS_DMA_READ as i32);
        let tx = map(&mut tag, &mut txbuf, 2048, 0);
        let ring = map(&mut tag, &mut ringbuf, 4096, 0);
        sync_preread(ring);
        let mut maps = DmaMaps::default();
        for m in [rx, tx, ring] {
            maps.created(m);
        }
        let (rx0, tx0, ring0) = (addrs(rx), addrs(tx), addrs(ring));
        assert!(rx0.len() >= 3, "pages split into segments: {rx0:x?}");

        // SAFETY: live maps, no driver running.
        unsafe {
            assert_eq!(maps.device_written_len(), 3 * 4096);
            assert_eq!(maps.redirect(0x8000_0000), 2);
        }
        // Segments follow each other from the bad address, as if loaded there.
        let mut want = vec![];
        let mut at = 0x8000_0000;
        // SAFETY: a live map.
        for s in unsafe { &segs(rx)[..rx0.len()] } {
            want.push(at);
            at += s.ds_len;
        }
        assert_eq!(addrs(rx), want);
        assert_eq!(addrs(ring), vec![0x8000_0000]);
        assert_eq!(addrs(tx), tx0, "a map the device only reads is left alone");

        // A redirection again keeps the first real addresses.
        // SAFETY: as above.
        unsafe { assert_eq!(maps.redirect(0x9000_0000), 2) };
        assert_eq!(addrs(ring), vec![0x9000_0000]);

        // The ring is re-loaded meanwhile: restore leaves its new address.
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                bus_dmamap_load(
                    &mut tag,
                    ring,
                    ringbuf.as_mut_ptr().add(64).cast(),
                    64,
                    std::ptr::null_mut(),
                    0
                ),
                0
            );
        }
        let reloaded = addrs(ring);
        // SAFETY: as above.
        let restored = unsafe { maps.restore() };
        assert_eq!(restored, rx0.len());
        assert_eq!(addrs(rx), rx0);
        assert_eq!(addrs(ring), reloaded);
        assert_ne!(reloaded, ring0);
        assert_eq!(maps.redirected(), 0);
        // SAFETY: as above: nothing left to restore.
        unsafe { assert_eq!(maps.restore(), 0) };

        // A load without BUS_DMA_READ clears the mark; a PREREAD sync sets it.
        // SAFETY: as above.
        unsafe {
            assert_eq!(maps.device_written_len(), 3 * 4096);
            note_load(rx, 0);
            assert_eq!(maps.device_written_len(), 0);
            sync_preread(rx);
            assert_eq!(maps.device_written_len(), 3 * 4096);
        }

        // A destroyed map is forgotten, redirected or not.
        // SAFETY: as above.
        unsafe { maps.redirect(0x8000_0000) };
        for m in [rx, tx, ring] {
            maps.destroyed(m);
            // SAFETY: the map leaves the list before it is freed.
            unsafe { bus_dmamap_destroy(&mut tag, m) };
        }
        assert!(maps.is_empty());
        assert_eq!(maps.redirected(), 0);
    }

    #[test]
    fn wide_iovas_fold_below_4_gib() {
        assert_eq!(fault_address(0xdead_0000, 0x1_0000), 0xdead_0000);
        assert_eq!(fault_address(0xdead_0000_0000, 4096), FOLDED_FAULT_IOVA);
        assert_eq!(fault_address(0xffff_f000, 0x2000), FOLDED_FAULT_IOVA);
        assert_eq!(fault_address(u64::MAX, 1), FOLDED_FAULT_IOVA);
    }
}
