//! The e1000 driver: Intel 82540EM, 82545EM and 82574L gigabit Ethernet
//! controllers (QEMU's `e1000`, `e1000-82545em` and `e1000e`), through VFIO.
//! Interfaces are named `wm` as NetBSD's wm(4).
//!
//! Written after the 8254x Software Developer's Manual ("SDM") and the 82574
//! datasheet; each step carries its section. One receive and one transmit
//! queue with legacy descriptors (the 82574 accepts them too), 2048-byte
//! receive buffers, jumbo frames up to MTU 9000 as mbuf chains, an exact
//! multicast filter in the Receive Address registers RAR[1..16], and one
//! interrupt vector: MSI-X on the 82574L (IVAR routes rx, tx and other
//! causes to it), else MSI when offered, else INTx. The rx queue's wait fd
//! is that vector's eventfd (hybrid: polled under load, asleep when idle).
//! The link is read from STATUS.LU on a 1 s service tick.
//!
//! Options: `pci=BDF` (required), `mac=` (override the EEPROM address),
//! `rxd=`/`txd=` (ring sizes, multiple of 8, default 256).
//!
//! Module map: [`regs`] (register constants), [`mmio`] (the only register
//! access), [`desc`] (descriptors and rings in DMA memory), [`chain`] (mbuf
//! chains), [`hw`] (the controller: init, filter, link, statistics),
//! [`queue`] (the data path).

pub mod chain;
pub mod desc;
pub mod hw;
pub mod mmio;
pub mod queue;
pub mod regs;
mod sys;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pktkit_native::device::IrqKind;
use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError,
    DriverFactory, DriverKind, Fault, LinkState, Offloads, OptionSpec, OwnerId, Pool, Queues,
    Service,
};

use crate::desc::{Ring, DESC_SIZE};
use crate::hw::{Shared, MULTICAST_SLOTS};
use crate::queue::{E1000Rx, E1000Tx};
use crate::regs::Reg;

/// Interface name prefix, as NetBSD's wm(4).
pub const PREFIX: &str = "wm";
/// Smallest MTU.
pub const MIN_MTU: u32 = 68;
/// Largest MTU (jumbo frames, received as chains of 2048-byte buffers).
pub const MAX_MTU: u32 = 9000;
/// Default descriptors per ring.
pub const DEFAULT_RING: usize = 256;
/// Bytes a frame adds to the MTU: Ethernet header and one VLAN tag.
const FRAME_OVERHEAD: u32 = 18;

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DriverFactory {
    name: "e1000",
    prefix: PREFIX,
    kind: DriverKind::Native,
    description: "Intel 82540EM/82545EM/82574L gigabit Ethernet (e1000, e1000e) over VFIO",
    devices: 1,
    options: &[
        OptionSpec {
            key: "pci",
            help: "PCI address of the controller, bound to vfio-pci (DDDD:BB:DD.F)",
            required: true,
        },
        OptionSpec {
            key: "mac",
            help: "station address xx:xx:xx:xx:xx:xx (default: the EEPROM's)",
            required: false,
        },
        OptionSpec {
            key: "rxd",
            help: "receive descriptors, a multiple of 8 from 8 to 4096 (default 256)",
            required: false,
        },
        OptionSpec {
            key: "txd",
            help: "transmit descriptors, a multiple of 8 from 8 to 4096 (default 256)",
            required: false,
        },
    ],
    create: &create,
};

/// The options of one attach, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Station address override.
    pub mac: Option<[u8; 6]>,
    /// Receive descriptors.
    pub rxd: usize,
    /// Transmit descriptors.
    pub txd: usize,
}

impl Config {
    /// Parses and checks `mac`, `rxd` and `txd` (not `pci`, which
    /// [`AttachArgs::open_pci`] handles).
    pub fn from_args(args: &AttachArgs) -> Result<Config, DriverError> {
        let bad = |key: &str, value: &str, why: String| DriverError::BadOption {
            key: key.into(),
            value: value.into(),
            why,
        };
        let mac = match args.opt("mac") {
            None => None,
            Some(s) => Some(
                pktkit_native::options::parse_mac(s)
                    .filter(hw::valid_unicast)
                    .ok_or_else(|| bad("mac", s, "not a unicast xx:xx:xx:xx:xx:xx".into()))?,
            ),
        };
        let ring = |key: &str| -> Result<usize, DriverError> {
            let n: usize = args.opt_parse(key, DEFAULT_RING)?;
            hw::check_ring_size(n).map_err(|why| bad(key, &n.to_string(), why))
        };
        Ok(Config {
            mac,
            rxd: ring("rxd")?,
            txd: ring("txd")?,
        })
    }
}

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let cfg = Config::from_args(args)?;
    let dev = args.open_pci()?;
    let drv = E1000::attach(dev, cfg, args.pool.clone(), args.owner(0))?;
    Ok(vec![Box::new(drv)])
}

fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The control side of one controller.
pub struct E1000 {
    shared: Arc<Shared>,
    cfg: Config,
    mac: [u8; 6],
    mtu: u32,
    pool: Pool,
    owner: OwnerId,
    link: LinkState,
    link_changes: u64,
    started: bool,
    /// A fault asked for while stopped, provoked by the next start.
    pending_fault: Option<u64>,
    /// Resets done ([`Driver::reset`]) and how many were function-level.
    resets: u64,
    function_resets: u64,
}

impl E1000 {
    /// Takes over an opened controller: identifies it, sets up its
    /// interrupt, resets it (SDM 14.3) and reads its station address.
    pub fn attach(
        dev: Box<dyn pktkit_native::device::PciDevice>,
        cfg: Config,
        pool: Pool,
        owner: OwnerId,
    ) -> Result<E1000, DriverError> {
        let shared = Shared::open(dev)?;
        shared.reset()?;
        let mac = match cfg.mac {
            Some(m) => m,
            None => shared.read_mac().ok_or_else(|| {
                DriverError::Device(format!(
                    "e1000 {}: no valid address in RAL0/RAH0 or the EEPROM; give mac=",
                    shared.address
                ))
            })?,
        };
        shared.write_rar(0, Some(mac));
        let link = shared.link();
        Ok(E1000 {
            shared: Arc::new(shared),
            cfg,
            mac,
            mtu: 1500,
            pool,
            owner,
            link,
            link_changes: 0,
            started: false,
            pending_fault: None,
            resets: 0,
            function_resets: 0,
        })
    }

    /// The interrupt mechanism in use.
    pub fn irq_kind(&self) -> IrqKind {
        self.shared.irq.kind
    }

    fn alloc_ring<D: desc::Descriptor>(&self, n: usize) -> Result<Ring<D>, DriverError> {
        let mem = self
            .shared
            .dma_alloc(n * DESC_SIZE)
            .map_err(|e| DriverError::Device(format!("e1000: descriptor ring: {e}")))?;
        Ring::new(mem, n)
            .ok_or_else(|| DriverError::Device("e1000: DMA memory too short or misaligned".into()))
    }
}

impl Driver for E1000 {
    fn name(&self) -> &str {
        PREFIX
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            rx_queues: 1,
            tx_queues: 1,
            min_mtu: MIN_MTU,
            max_mtu: MAX_MTU,
            offloads: Offloads::NONE,
            multicast_slots: MULTICAST_SLOTS as u32,
            promisc: true,
        }
    }

    fn concurrency(&self) -> Concurrency {
        Concurrency::MpSafe
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// SDM 14.3-14.5: reset and general configuration, station address and
    /// multicast filter, receive ring filled, RCTL, transmit ring, TCTL.
    fn start(&mut self) -> Result<Queues, DriverError> {
        if self.started {
            return Err(DriverError::Device("e1000: already started".into()));
        }
        let s = &self.shared;
        s.reset()?;
        s.write_rar(0, Some(self.mac));
        let rx_ring = self.alloc_ring(self.cfg.rxd)?;
        let tx_ring = self.alloc_ring(self.cfg.txd)?;
        let rx = E1000Rx::new(s.clone(), rx_ring, self.pool.clone(), self.owner);
        if rx.posted() == 0 {
            return Err(DriverError::Device(
                "e1000: the pool has no buffer for the receive ring".into(),
            ));
        }
        let tx = E1000Tx::new(s.clone(), tx_ring);
        {
            let mut f = s.filter();
            s.program_multicast(&mut f);
            f.jumbo = self.mtu > 1500;
            f.enabled = true;
            f.rctl = 0;
            s.apply_rctl(&mut f);
        }
        s.enable_tx();
        if let Some(iova) = self.pending_fault.take() {
            let n = s.poison_rx(iova);
            log::warn!(
                "e1000 {}: {n} rx descriptors point at {iova:#x} (fault injection)",
                s.address
            );
        }
        self.link = s.link();
        self.started = true;
        Ok(Queues {
            rx: vec![Box::new(rx)],
            tx: vec![Box::new(tx)],
        })
    }

    fn stop(&mut self, queues: Queues) {
        self.shared.mask_interrupts();
        self.shared.disable_rx();
        self.shared.disable_tx();
        // The queues free their buffers and rings as they drop.
        drop(queues);
        self.started = false;
    }

    fn link(&mut self) -> LinkState {
        // The live state; `service` alone tracks what it last reported, so
        // reading the link here never swallows a change it has yet to report.
        self.shared.link()
    }

    fn control(&mut self, req: &Control) -> Result<(), DriverError> {
        let s = &self.shared;
        match req {
            Control::SetMtu(mtu) => {
                if !(MIN_MTU..=MAX_MTU).contains(mtu) {
                    return Err(DriverError::Unsupported(format!(
                        "MTU {mtu} (range {MIN_MTU}..={MAX_MTU})"
                    )));
                }
                self.mtu = *mtu;
                s.max_frame
                    .store((mtu + FRAME_OVERHEAD) as usize, Ordering::Relaxed);
                let mut f = s.filter();
                f.jumbo = *mtu > 1500;
                if f.enabled {
                    s.apply_rctl(&mut f);
                }
            }
            Control::SetMac(mac) => {
                if !hw::valid_unicast(mac) {
                    return Err(DriverError::Unsupported(format!(
                        "{} is not a unicast address",
                        fmt_mac(mac)
                    )));
                }
                self.mac = *mac;
                s.write_rar(0, Some(*mac));
            }
            Control::SetPromisc(on) => {
                let mut f = s.filter();
                f.promisc = *on;
                if f.enabled {
                    s.apply_rctl(&mut f);
                }
            }
            Control::SetAllMulti(on) => {
                let mut f = s.filter();
                f.allmulti = *on;
                if f.enabled {
                    s.apply_rctl(&mut f);
                }
            }
            Control::SetMulticast(groups) => {
                let mut f = s.filter();
                f.groups.clone_from(groups);
                s.program_multicast(&mut f);
                if f.enabled {
                    s.apply_rctl(&mut f);
                }
            }
        }
        Ok(())
    }

    fn counters(&self) -> DeviceCounters {
        let extra = self.shared.stats();
        let collisions = extra
            .get(regs::STAT_COLC)
            .map(|(_, v)| *v)
            .unwrap_or_default();
        let mut extra = extra;
        extra.push(("link_changes".into(), self.link_changes));
        extra.push(("resets".into(), self.resets));
        extra.push(("function_resets".into(), self.function_resets));
        DeviceCounters {
            collisions,
            rx_no_buffer: self.shared.rx_no_buffer.load(Ordering::Relaxed),
            extra,
        }
    }

    fn service_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn service(&mut self) -> Service {
        let now = self.shared.link();
        let changed = now != self.link;
        if changed {
            self.link_changes += 1;
            self.link = now;
        }
        // Fold the statistics registers into the totals before the 32-bit
        // ones can wrap.
        let _ = self.shared.stats();
        Service {
            link_changed: changed,
            needs_reset: false,
        }
    }

    /// Function-level reset when the function has one (the 82574L's FLR),
    /// then the datasheet's software reset and re-init as at attach (SDM
    /// 14.3; 82574 4.6): CTRL.RST, general configuration, station address
    /// and multicast filter. Only while stopped.
    fn reset(&mut self) -> Result<(), DriverError> {
        if self.started {
            return Err(DriverError::Device(
                "e1000: reset while started (stop first)".into(),
            ));
        }
        let s = &self.shared;
        // The statistics registers clear at reset: keep what they counted.
        let _ = s.stats();
        let flr = s.function_reset()?;
        s.reset()?;
        s.write_rar(0, Some(self.mac));
        {
            let mut f = s.filter();
            s.program_multicast(&mut f);
            f.enabled = false;
            f.rctl = 0;
        }
        self.link = s.link();
        self.resets += 1;
        self.function_resets += u64::from(flr);
        log::info!(
            "e1000 {}: reset ({})",
            s.address,
            if flr {
                "function-level + CTRL.RST"
            } else {
                "CTRL.RST"
            }
        );
        Ok(())
    }

    /// [`Fault::RxBufferIova`]: while started, the receive descriptors the
    /// device owns get that buffer address at once; while stopped, the next
    /// start does it after filling the ring. The rx queue drops what
    /// completes there; the next stop + start builds a fresh ring.
    fn inject_fault(&mut self, fault: Fault) -> Result<(), DriverError> {
        match fault {
            Fault::RxBufferIova(iova) => {
                if !self.started {
                    self.pending_fault = Some(iova);
                    return Ok(());
                }
                match self.shared.poison_rx(iova) {
                    0 => Err(DriverError::Device(
                        "e1000: no receive descriptor is posted to the device".into(),
                    )),
                    n => {
                        log::warn!(
                            "e1000 {}: {n} rx descriptors point at {iova:#x} (fault injection)",
                            self.shared.address
                        );
                        Ok(())
                    }
                }
            }
            other => Err(DriverError::Unsupported(format!(
                "e1000: fault injection ({other:?})"
            ))),
        }
    }

    fn describe(&self) -> Vec<(String, String)> {
        let s = &self.shared;
        let f = s.filter();
        vec![
            ("pci".into(), s.address.to_string()),
            (
                "id".into(),
                format!("8086:{:04x} ({})", s.variant.device_id(), s.variant.model()),
            ),
            ("mac".into(), fmt_mac(&self.mac)),
            ("rxd".into(), self.cfg.rxd.to_string()),
            ("txd".into(), self.cfg.txd.to_string()),
            ("interrupt".into(), format!("{:?}", s.irq.kind)),
            // Live ring state (SDM 13.4): where the device is (head) and
            // what the driver last handed it (tail), and the causes enabled.
            (
                "rx_ring".into(),
                format!(
                    "head {} tail {}",
                    s.regs.read(Reg::RDH),
                    s.regs.read(Reg::RDT)
                ),
            ),
            (
                "tx_ring".into(),
                format!(
                    "head {} tail {}",
                    s.regs.read(Reg::TDH),
                    s.regs.read(Reg::TDT)
                ),
            ),
            ("ims".into(), format!("{:#x}", s.regs.read(Reg::IMS))),
            ("mtu".into(), self.mtu.to_string()),
            (
                "filter".into(),
                format!(
                    "{} groups{}{}",
                    f.groups.len(),
                    if f.promisc { ", promisc" } else { "" },
                    if f.allmulti || f.overflow {
                        ", allmulti"
                    } else {
                        ""
                    }
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            pktkit_native::options::parse_mac("52:54:00:12:34:01"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 1])
        );
        assert_eq!(
            pktkit_native::options::parse_mac("2-4-6-8-a-c"),
            Some([2, 4, 6, 8, 10, 12])
        );
        assert_eq!(pktkit_native::options::parse_mac("52:54:00:12:34"), None);
        assert_eq!(
            pktkit_native::options::parse_mac("52:54:00:12:34:01:02"),
            None
        );
        assert_eq!(pktkit_native::options::parse_mac("52:54:00:12:34:1g"), None);
        assert_eq!(
            fmt_mac(&[0x52, 0x54, 0, 0x12, 0x34, 1]),
            "52:54:00:12:34:01"
        );
    }
}
