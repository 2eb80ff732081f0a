//! The controller: identification, the datasheet's initialisation sequence,
//! the receive filter, link state and statistics. Shared (through an `Arc`)
//! by the driver's control side and its two queues.
//!
//! Locking: `filter` guards the receive-filter state and every
//! read-modify-write of RCTL (control requests and queue teardown may race);
//! `stats` guards the accumulated statistics (the registers clear on read);
//! `dev` guards the `PciDevice` (only INTx unmask and teardown use it after
//! attach). Other registers are written by one side only: the rx queue owns
//! RDT, IMS/IMC and ICR; the tx queue owns TDT.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pktkit_native::device::{DeviceError, DmaMemory, IrqKind, PciAddress, PciDevice};
use pktkit_native::{DriverError, LinkState};

use crate::desc::RingView;
use crate::mmio::Mmio;
use crate::regs::{self, ctrl, ctrl_ext, eecd, eerd, int, ivar, rah, rctl, status, tctl, Reg};

/// The controllers this driver knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 82540EM (QEMU `e1000`), 8086:100e.
    I82540Em,
    /// 82545EM copper (QEMU `e1000-82545em`), 8086:100f.
    I82545Em,
    /// 82574L (QEMU `e1000e`), 8086:10d3.
    I82574L,
}

impl Variant {
    /// The variant of Intel device `device_id`.
    pub fn from_device_id(device_id: u16) -> Option<Variant> {
        match device_id {
            0x100E => Some(Variant::I82540Em),
            0x100F => Some(Variant::I82545Em),
            0x10D3 => Some(Variant::I82574L),
            _ => None,
        }
    }

    /// The PCI device ID.
    pub fn device_id(self) -> u16 {
        match self {
            Variant::I82540Em => 0x100E,
            Variant::I82545Em => 0x100F,
            Variant::I82574L => 0x10D3,
        }
    }

    /// The part name.
    pub fn model(self) -> &'static str {
        match self {
            Variant::I82540Em => "82540EM",
            Variant::I82545Em => "82545EM",
            Variant::I82574L => "82574L",
        }
    }

    /// Whether this is the 82574 (e1000e) family, with MSI-X and IVAR.
    pub fn is_82574(self) -> bool {
        self == Variant::I82574L
    }
}

/// The interrupt the device signals, as set up at attach.
#[derive(Clone, Copy, Debug)]
pub struct Irq {
    /// The mechanism.
    pub kind: IrqKind,
    /// Its eventfd (owned by the `PciDevice`, valid while it lives).
    pub fd: RawFd,
}

/// Receive interrupt causes unmasked while the rx queue sleeps: RXT0 in
/// INTx/MSI mode, RXQ0 in the 82574's MSI-X mode (82574 7.4.4.1).
pub const RX_INTERRUPTS: u32 = int::RXT0 | int::RXQ0;

/// What the receive filter is set to.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Unicast and multicast promiscuous.
    pub promisc: bool,
    /// Every multicast frame.
    pub allmulti: bool,
    /// More groups were asked than RAR entries exist: multicast promiscuous.
    pub overflow: bool,
    /// Long packet enable (MTU above 1500).
    pub jumbo: bool,
    /// Receiver enabled.
    pub enabled: bool,
    /// The multicast groups in RAR[1..].
    pub groups: Vec<[u8; 6]>,
    /// The RCTL value last written.
    pub rctl: u32,
}

impl Filter {
    /// The RCTL value for this state (SDM 14.4: EN, BAM, SECRC, BSIZE 2048).
    pub fn rctl(&self) -> u32 {
        let mut v = rctl::BAM | rctl::SECRC | rctl::BSIZE_2048 | rctl::RDMTS_HALF;
        if self.enabled {
            v |= rctl::EN;
        }
        if self.jumbo {
            v |= rctl::LPE;
        }
        if self.promisc {
            v |= rctl::UPE | rctl::MPE;
        }
        if self.allmulti || self.overflow {
            v |= rctl::MPE;
        }
        v
    }
}

/// Multicast groups the Receive Address registers hold (RAR[1..16]).
pub const MULTICAST_SLOTS: usize = (regs::RAR_ENTRIES - 1) as usize;

/// The device, shared by the control side and the queues.
pub struct Shared {
    /// BAR0 registers. Valid while `dev` lives (declared first; `Mmio` has
    /// no destructor, and `dev` is dropped after the teardown in `Drop`).
    pub regs: Mmio,
    /// Which controller.
    pub variant: Variant,
    /// Its PCI address.
    pub address: PciAddress,
    /// The interrupt in use.
    pub irq: Irq,
    /// Receive filter and RCTL.
    pub filter: Mutex<Filter>,
    /// Largest frame (without CRC) the tx queue accepts: MTU + 18.
    pub max_frame: AtomicUsize,
    /// Receive buffer allocations that failed.
    pub rx_no_buffer: AtomicU64,
    stats: Mutex<Vec<u64>>,
    /// The live receive ring, registered by the rx queue from its creation
    /// to its drop (fault injection writes through it, under this lock).
    rx_ring: Mutex<Option<RingView>>,
    dev: Mutex<Box<dyn PciDevice>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent across a panic; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn dev_err(what: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Device(format!("e1000: {what}: {e}"))
}

impl Shared {
    /// Takes over an opened PCI function: checks it is a known controller,
    /// enables memory and bus mastering, maps BAR0 and sets up one
    /// interrupt vector (MSI-X on the 82574L, else MSI if offered, else
    /// INTx).
    pub fn open(mut dev: Box<dyn PciDevice>) -> Result<Shared, DriverError> {
        let address = dev.address();
        let cfg = |off| {
            dev.config_read(off, 2)
                .map_err(|e| dev_err("config read", e))
        };
        let vendor = cfg(regs::pci::VENDOR_ID)? as u16;
        let device = cfg(regs::pci::DEVICE_ID)? as u16;
        let variant = (vendor == regs::pci::VENDOR_INTEL)
            .then(|| Variant::from_device_id(device))
            .flatten()
            .ok_or_else(|| {
                DriverError::Unsupported(format!(
                    "{address} is {vendor:04x}:{device:04x}, not an 82540EM (8086:100e), \
                     82545EM (8086:100f) or 82574L (8086:10d3)"
                ))
            })?;

        // PCI 3.0 6.2.2: the device must decode its memory BAR and may
        // master the bus (DMA); INTx stays enabled for the fallback.
        let cmd = cfg(regs::pci::COMMAND)?;
        let cmd = (cmd | regs::pci::CMD_MEMORY | regs::pci::CMD_BUS_MASTER)
            & !regs::pci::CMD_INTX_DISABLE;
        dev.config_write(regs::pci::COMMAND, 2, cmd)
            .map_err(|e| dev_err("enable bus mastering", e))?;

        let (base, len) = dev.map_bar(0).map_err(|e| dev_err("map BAR0", e))?;
        let base = std::ptr::NonNull::new(base)
            .ok_or_else(|| DriverError::Device("e1000: BAR0 mapped at null".into()))?;
        if len < 0x1_0000 {
            return Err(DriverError::Device(format!(
                "e1000: BAR0 is {len:#x} bytes, expected 128 KiB"
            )));
        }
        // SAFETY: base..base+len is BAR0 as mapped by `dev`, which Shared
        // owns and drops only after the last register access (see Drop).
        let regs = unsafe { Mmio::new(base, len) };

        let mut tries = Vec::new();
        if variant.is_82574() {
            tries.push(IrqKind::Msix);
        }
        tries.extend([IrqKind::Msi, IrqKind::Intx]);
        let mut irq = None;
        let mut why = Vec::new();
        for kind in tries {
            match dev.enable_irqs(kind, 1) {
                Ok(fds) if !fds.is_empty() => {
                    irq = Some(Irq { kind, fd: fds[0] });
                    break;
                }
                Ok(_) => why.push(format!("{kind:?}: no vector")),
                Err(e) => why.push(format!("{kind:?}: {e}")),
            }
        }
        let irq = irq.ok_or_else(|| {
            DriverError::Device(format!("e1000: no interrupt ({})", why.join("; ")))
        })?;

        let shared = Shared {
            regs,
            variant,
            address,
            irq,
            filter: Mutex::new(Filter::default()),
            max_frame: AtomicUsize::new(1500 + 18),
            rx_no_buffer: AtomicU64::new(0),
            stats: Mutex::new(vec![0; regs::STATS.len() + regs::STATS64.len()]),
            rx_ring: Mutex::new(None),
            dev: Mutex::new(dev),
        };
        if irq.kind == IrqKind::Intx {
            shared.unmask_intx();
        }
        Ok(shared)
    }

    /// Allocates DMA memory (descriptor rings) for the device.
    pub fn dma_alloc(&self, len: usize) -> Result<Box<dyn DmaMemory>, DeviceError> {
        lock(&self.dev).dma_alloc(len)
    }

    /// Masks every interrupt cause and clears pending ones.
    pub fn mask_interrupts(&self) {
        self.regs.write(Reg::IMC, int::ALL);
        self.clear_causes();
    }

    /// Clears pending interrupt causes: ICR is read-to-clear on the 8254x
    /// (SDM 13.4.17) and write-1-to-clear on the 82574 (82574 10.2.4.1).
    pub fn clear_causes(&self) {
        let _ = self.regs.read(Reg::ICR);
        self.regs.write(Reg::ICR, int::ALL);
    }

    /// Re-enables the INTx line after an interrupt was taken (VFIO masks it
    /// when it fires). A no-op for MSI and MSI-X.
    pub fn unmask_intx(&self) {
        if self.irq.kind == IrqKind::Intx {
            if let Err(e) = lock(&self.dev).unmask_intx() {
                log::warn!("e1000 {}: unmask INTx: {e}", self.address);
            }
        }
    }

    /// Global reset and general configuration (SDM 14.3, 14.5 for the
    /// 82574: 82574 4.6.1-4.6.3): interrupts masked, CTRL.RST, wait, mask
    /// again, set link up with auto-speed, no flow control, MTA cleared.
    pub fn reset(&self) -> Result<(), DriverError> {
        // SDM 14.3: disable interrupts before the reset...
        self.mask_interrupts();
        self.regs.write(Reg::RCTL, 0);
        self.regs.write(Reg::TCTL, 0);
        self.regs.set_bits(Reg::CTRL, ctrl::RST);
        // SDM 13.4.1: RST self-clears; wait at least 1 us before touching
        // the device again (82574 4.6.1: up to 1 ms for the NVM to load).
        std::thread::sleep(Duration::from_micros(10));
        let deadline = Instant::now() + Duration::from_millis(50);
        while self.regs.read(Reg::CTRL) & ctrl::RST != 0 {
            if Instant::now() > deadline {
                return Err(DriverError::Device(format!(
                    "e1000 {}: CTRL.RST did not clear within 50 ms",
                    self.address
                )));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        if self.variant.is_82574() {
            // 82574 4.6.1: wait for the NVM auto-read to finish.
            let deadline = Instant::now() + Duration::from_millis(20);
            while self.regs.read(Reg::EECD) & eecd::AUTO_RD == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        // ...and again after it (SDM 14.3).
        self.mask_interrupts();

        // SDM 14.3 general configuration: link up, auto speed and duplex
        // (the PHY resolves them), no PHY reset, ILOS clear, VLAN off.
        let c = self.regs.read(Reg::CTRL);
        let c = (c | ctrl::SLU | ctrl::ASDE)
            & !(ctrl::LRST
                | ctrl::PHY_RST
                | ctrl::ILOS
                | ctrl::FRCSPD
                | ctrl::FRCDPLX
                | ctrl::VME
                | ctrl::RFCE
                | ctrl::TFCE);
        self.regs.write(Reg::CTRL, c);
        // SDM 14.3: without flow control, FCAL/FCAH/FCT/FCTTV are zero.
        for r in [Reg::FCAL, Reg::FCAH, Reg::FCT, Reg::FCTTV] {
            self.regs.write(r, 0);
        }
        // SDM 14.4: the multicast table array starts out empty (exact
        // filtering through RAR[1..] only).
        for n in 0..regs::MTA_ENTRIES {
            self.regs.write(Reg::mta(n), 0);
        }
        // No interrupt moderation: RXT0 fires as soon as a frame is stored.
        self.regs.write(Reg::ITR, 0);
        self.regs.write(Reg::RDTR, 0);
        self.regs.write(Reg::RADV, 0);
        self.regs.write(Reg::TIDV, 0);

        if self.irq.kind == IrqKind::Msix {
            // 82574 7.4.4 / 10.2.4.9: route rx queue 0, tx queue 0 and the
            // other causes to vector 0, and enable the MSI-X PBA.
            let entry = ivar::VALID; // vector 0
            self.regs.write(
                Reg::IVAR,
                (entry << ivar::RXQ0_SHIFT)
                    | (entry << ivar::TXQ0_SHIFT)
                    | (entry << ivar::OTHER_SHIFT),
            );
            let ext = self.regs.read(Reg::CTRL_EXT);
            self.regs.write(
                Reg::CTRL_EXT,
                (ext | ctrl_ext::PBA_SUPPORT) & !(ctrl_ext::EIAME | ctrl_ext::IAME),
            );
            for v in 0..5 {
                self.regs.write(Reg::eitr(v), 0);
            }
        }
        Ok(())
    }

    /// Function-level reset through the PCI layer (`PciDevice::reset`:
    /// FLR on the 82574, 82574 5.2.x / PCIe 6.6.2), with DMA and interrupts
    /// stopped first. `Ok(false)` when the function has no reset method
    /// (the 8254x are conventional PCI without FLR): the caller relies on
    /// CTRL.RST alone then. The device needs [`Shared::reset`] after either.
    pub fn function_reset(&self) -> Result<bool, DriverError> {
        self.mask_interrupts();
        self.regs.write(Reg::RCTL, 0);
        self.regs.write(Reg::TCTL, 0);
        let mut dev = lock(&self.dev);
        if self.irq.kind == IrqKind::Msix {
            // An FLR resets the MSI-X state like a teardown does.
            self.quiesce_throttle();
        }
        match dev.reset() {
            Ok(()) => {}
            Err(DeviceError::Unsupported(why)) => {
                log::debug!("e1000 {}: no function reset ({why})", self.address);
                return Ok(false);
            }
            Err(e) => return Err(dev_err("function reset", e)),
        }
        // The kernel restores the config space around the reset; make sure
        // memory decoding and bus mastering survived it (PCI 3.0 6.2.2).
        let cmd = dev
            .config_read(regs::pci::COMMAND, 2)
            .map_err(|e| dev_err("config read", e))?;
        let want = (cmd | regs::pci::CMD_MEMORY | regs::pci::CMD_BUS_MASTER)
            & !regs::pci::CMD_INTX_DISABLE;
        if want != cmd {
            dev.config_write(regs::pci::COMMAND, 2, want)
                .map_err(|e| dev_err("enable bus mastering", e))?;
        }
        drop(dev);
        self.unmask_intx();
        Ok(true)
    }

    /// Zeroes the interrupt throttles and lets a throttle timer already
    /// armed expire: QEMU 7.2's 82574 model may abort when MSI-X is torn
    /// down (or reset) while that timer runs (measured: ~200 ms).
    fn quiesce_throttle(&self) {
        self.regs.write(Reg::ITR, 0);
        for v in 0..5 {
            self.regs.write(Reg::eitr(v), 0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Registers the receive ring the device now uses (`None` when its
    /// queue drops, before the ring's memory is freed).
    pub fn register_rx_ring(&self, view: Option<RingView>) {
        *lock(&self.rx_ring) = view;
    }

    /// Points the buffer address of every receive descriptor the device
    /// owns (RDH up to RDT, SDM 3.2.6) at `iova`, for
    /// [`pktkit_native::Fault::RxBufferIova`]. The rx queue keeps its
    /// buffers and drops what completes on such a descriptor. Returns how
    /// many descriptors were changed (0 without a started rx queue).
    pub fn poison_rx(&self, iova: u64) -> usize {
        let ring = lock(&self.rx_ring);
        let Some(view) = *ring else { return 0 };
        let (head, tail) = (self.regs.read(Reg::RDH), self.regs.read(Reg::RDT));
        let (first, count) = device_owned(head, tail, view.len());
        for k in 0..count {
            // SAFETY: a view is registered only while its ring lives (from
            // E1000Rx::new until its drop clears it, under this lock).
            unsafe { view.set_addr((first + k) % view.len(), iova) };
        }
        // The new addresses must be in memory before the device fetches
        // those descriptors for the next frame.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        count
    }

    /// Reads the station address from RAL0/RAH0 (loaded from the EEPROM at
    /// reset, SDM 13.4.52), falling back to the EEPROM words 0-2 through
    /// EERD (SDM 5.6.1, 13.4.4). `None` if neither holds a valid address.
    pub fn read_mac(&self) -> Option<[u8; 6]> {
        let (ral, rah) = (self.regs.read(Reg::ral(0)), self.regs.read(Reg::rah(0)));
        if rah & rah::AV != 0 {
            let mut mac = [0u8; 6];
            mac[..4].copy_from_slice(&ral.to_le_bytes());
            mac[4..].copy_from_slice(&rah.to_le_bytes()[..2]);
            if valid_unicast(&mac) {
                return Some(mac);
            }
        }
        let mut mac = [0u8; 6];
        for w in 0..3u32 {
            let word = self.eeprom_read(w)?;
            mac[2 * w as usize..2 * w as usize + 2].copy_from_slice(&word.to_le_bytes());
        }
        valid_unicast(&mac).then_some(mac)
    }

    fn eeprom_read(&self, word: u32) -> Option<u16> {
        let (shift, done) = if self.variant.is_82574() {
            (eerd::ADDR_SHIFT_82574, eerd::DONE_82574)
        } else {
            (eerd::ADDR_SHIFT_8254X, eerd::DONE_8254X)
        };
        self.regs.write(Reg::EERD, eerd::START | (word << shift));
        let deadline = Instant::now() + Duration::from_millis(10);
        loop {
            let v = self.regs.read(Reg::EERD);
            if v & done != 0 {
                return Some((v >> eerd::DATA_SHIFT) as u16);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }

    /// Writes Receive Address entry `n` (SDM 13.4.52-53): AV off first so
    /// the device never matches a half-written address.
    pub fn write_rar(&self, n: u32, mac: Option<[u8; 6]>) {
        self.regs.write(Reg::rah(n), 0);
        match mac {
            Some(m) => {
                self.regs
                    .write(Reg::ral(n), u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
                self.regs.write(
                    Reg::rah(n),
                    u32::from(u16::from_le_bytes([m[4], m[5]])) | rah::AV,
                );
            }
            None => self.regs.write(Reg::ral(n), 0),
        }
    }

    /// Programs RAR[1..16] with the filter's groups (exact multicast
    /// filter); more groups than slots switch on multicast promiscuous.
    pub fn program_multicast(&self, f: &mut Filter) {
        for slot in 0..MULTICAST_SLOTS {
            self.write_rar(slot as u32 + 1, f.groups.get(slot).copied());
        }
        f.overflow = f.groups.len() > MULTICAST_SLOTS;
    }

    /// Writes RCTL if the filter state changed it. (QEMU's e1000 stops
    /// receiving for about a second after every RCTL write, so writes that
    /// change nothing are skipped.)
    pub fn apply_rctl(&self, f: &mut Filter) {
        let v = f.rctl();
        if v != f.rctl || self.regs.read(Reg::RCTL) != v {
            self.regs.write(Reg::RCTL, v);
            f.rctl = v;
        }
    }

    /// Locks the receive filter.
    pub fn filter(&self) -> MutexGuard<'_, Filter> {
        lock(&self.filter)
    }

    /// Turns the receiver off (RCTL.EN).
    pub fn disable_rx(&self) {
        let mut f = self.filter();
        f.enabled = false;
        self.apply_rctl(&mut f);
    }

    /// Turns the transmitter off (TCTL.EN).
    pub fn disable_tx(&self) {
        self.regs.clear_bits(Reg::TCTL, tctl::EN);
    }

    /// Enables the transmitter (SDM 14.5: EN, PSP, CT 0x0F, COLD 0x40 for
    /// full duplex; TIPG with the copper values).
    pub fn enable_tx(&self) {
        self.regs.write(Reg::TIPG, regs::tipg::VALUE);
        self.regs.write(
            Reg::TCTL,
            tctl::EN
                | tctl::PSP
                | (tctl::CT_DEFAULT << tctl::CT_SHIFT)
                | (tctl::COLD_FULL_DUPLEX << tctl::COLD_SHIFT)
                | tctl::RTLC,
        );
    }

    /// The link as STATUS reports it (SDM 13.4.2).
    pub fn link(&self) -> LinkState {
        let s = self.regs.read(Reg::STATUS);
        if s == u32::MAX || s & status::LU == 0 {
            return LinkState::DOWN;
        }
        LinkState {
            up: true,
            speed_mbps: match (s >> status::SPEED_SHIFT) & status::SPEED_MASK {
                0 => 10,
                1 => 100,
                _ => 1000,
            },
            full_duplex: s & status::FD != 0,
        }
    }

    /// Adds the statistics registers (clear on read) into the running
    /// totals and returns them, named.
    pub fn stats(&self) -> Vec<(String, u64)> {
        let mut totals = lock(&self.stats);
        for (i, (_, r)) in regs::STATS.iter().enumerate() {
            totals[i] += u64::from(self.regs.read(*r));
        }
        let base = regs::STATS.len();
        for (i, (_, r)) in regs::STATS64.iter().enumerate() {
            // SDM 13.4.58: read the low half first; reading the high half
            // clears the pair.
            let lo = u64::from(self.regs.read(*r));
            let hi = u64::from(self.regs.read(Reg(r.0 + 4)));
            totals[base + i] += (hi << 32) | lo;
        }
        regs::STATS
            .iter()
            .chain(regs::STATS64)
            .zip(totals.iter())
            .map(|((n, _), v)| ((*n).to_owned(), *v))
            .collect()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Quiesce: no interrupt, no DMA, then a global reset.
        self.mask_interrupts();
        self.regs.write(Reg::RCTL, 0);
        self.regs.write(Reg::TCTL, 0);
        let mut dev = lock(&self.dev);
        if self.irq.kind == IrqKind::Msix {
            self.quiesce_throttle();
        }
        if let Err(e) = dev.disable_irqs() {
            log::warn!("e1000 {}: disable interrupts: {e}", self.address);
        }
        self.regs.set_bits(Reg::CTRL, ctrl::RST);
        std::thread::sleep(Duration::from_micros(10));
        // The BAR mapping goes when `dev` drops after this.
    }
}

/// The receive descriptors the device owns on a ring of `len`: from the
/// head (RDH) up to, not including, the tail (RDT) (SDM 3.2.6). Returns the
/// first index and the count; register values out of range count as 0.
pub fn device_owned(head: u32, tail: u32, len: usize) -> (usize, usize) {
    let (head, tail) = (head as usize, tail as usize);
    if len == 0 || head >= len || tail >= len {
        return (0, 0);
    }
    (head, (tail + len - head) % len)
}

/// Whether `mac` is a usable station address (not multicast, not zero).
pub fn valid_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac.iter().any(|&b| b != 0)
}

/// Ring sizes accepted for `rxd`/`txd`: multiples of 8 (RDLEN/TDLEN are
/// multiples of 128 bytes, SDM 13.4.29) from 8 to 4096.
pub fn check_ring_size(n: usize) -> Result<usize, String> {
    if (8..=4096).contains(&n) && n & 7 == 0 {
        Ok(n)
    } else {
        Err("a multiple of 8 from 8 to 4096".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rctl_follows_the_filter() {
        let mut f = Filter {
            enabled: true,
            ..Filter::default()
        };
        assert_eq!(f.rctl(), rctl::EN | rctl::BAM | rctl::SECRC);
        f.allmulti = true;
        assert_eq!(f.rctl() & (rctl::MPE | rctl::UPE), rctl::MPE);
        f.allmulti = false;
        f.overflow = true;
        assert_eq!(f.rctl() & (rctl::MPE | rctl::UPE), rctl::MPE);
        f.overflow = false;
        f.promisc = true;
        f.jumbo = true;
        assert_eq!(
            f.rctl() & (rctl::MPE | rctl::UPE | rctl::LPE),
            rctl::MPE | rctl::UPE | rctl::LPE
        );
        f.enabled = false;
        assert_eq!(f.rctl() & rctl::EN, 0);
    }

    #[test]
    fn the_device_owns_head_up_to_tail() {
        assert_eq!(device_owned(0, 255, 256), (0, 255));
        assert_eq!(device_owned(10, 10, 256), (10, 0));
        assert_eq!(device_owned(250, 4, 256), (250, 10));
        assert_eq!(device_owned(300, 4, 256), (0, 0));
        assert_eq!(device_owned(0, 0, 0), (0, 0));
    }

    #[test]
    fn variants_and_ring_sizes() {
        for id in [0x100E, 0x100F, 0x10D3] {
            assert_eq!(Variant::from_device_id(id).unwrap().device_id(), id);
        }
        assert_eq!(Variant::from_device_id(0x10D3), Some(Variant::I82574L));
        assert!(Variant::from_device_id(0x1000).is_none());
        assert!(check_ring_size(256).is_ok());
        assert!(check_ring_size(8).is_ok());
        assert!(check_ring_size(12).is_err());
        assert!(check_ring_size(0).is_err());
        assert!(check_ring_size(8192).is_err());
        assert!(valid_unicast(&[0x52, 0x54, 0, 0x12, 0x34, 1]));
        assert!(!valid_unicast(&[1, 0, 0x5e, 0, 0, 1]));
        assert!(!valid_unicast(&[0; 6]));
    }
}
