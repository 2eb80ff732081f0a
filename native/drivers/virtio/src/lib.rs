//! The native virtio-net driver: modern virtio 1.x devices over the PCI
//! transport (QEMU's `virtio-net-pci,disable-legacy=on`, 1af4:1041),
//! written after the OASIS virtio 1.1 specification; section numbers in
//! comments (`§4.1.4.3`) refer to it.
//!
//! - [`pci`]: the virtio capabilities in config space (§4.1.4);
//! - [`transport`]: the common configuration, status handshake, feature
//!   negotiation, queue and MSI-X setup, notifications (§2.1, §3.1, §4.1);
//! - [`virtq`]: split virtqueues in DMA memory, with the ordering rules (§2.6);
//! - [`net`]: the network device's features, configuration, header and
//!   control commands (§5.1);
//! - `queue`: the receive and transmit queues; `ctrl`: the control queue;
//!   `hw`: the device shared by the driver and its queues; registers are
//!   reached through pktkit-native's [`pktkit_native::mmio::Mmio`] windows.
//!
//! Interrupts are MSI-X, one vector per queue: vector 0 signals
//! configuration changes (the driver's `service_fd`: link state), vector
//! 1 + *i* receive queue *i* (its `wait_fd`), then the transmit queues and
//! the control queue when the table has room (their interrupts stay
//! suppressed: completions are polled). Without MSI-X the queues are polled.
//!
//! For the conformance suite, [`Driver::reset`] resets the device (§2.4,
//! plus the PCI function reset where the kernel has one) and initialises it
//! again up to FEATURES_OK, and [`Driver::inject_fault`] points the receive
//! descriptors the device has not used yet at an unmapped IOVA; the receive
//! queues drop buffers whose descriptor no longer names them, and `service`
//! reports DEVICE_NEEDS_RESET.
//!
//! Options: `pci=BDF` (required), `queues=N` (default 1; capped at what the
//! device offers with VIRTIO_NET_F_MQ), `qsize=N` (power of two, default the
//! device's maximum capped at 256).

pub mod ctrl;
pub mod hw;
pub mod net;
pub mod pci;
mod queue;
mod sys;
pub mod transport;
pub mod virtq;

use std::fmt::Write as _;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use pktkit_native::device::IrqKind;
use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError,
    DriverFactory, DriverKind, Fault, LinkState, Offloads, OptionSpec, OwnerId, Pool, Queues,
    RxQueue, TxQueue,
};

use crate::ctrl::{CtrlQueue, CTRL_BUF_LEN, CTRL_QSIZE};
use crate::hw::Hw;
use crate::net::{config, ctrl as cmd, feature as nf, MULTICAST_SLOTS};
use crate::transport::{bit, feature as vf, status, TransportError, NO_VECTOR};
use crate::virtq::{DmaBuf, SplitQueue};

pub use queue::{VioRxQueue, VioTxQueue, MAX_FRAME};

/// Interface name prefix; the stack adds the unit (vio0).
pub const PREFIX: &str = "vio";
/// Default and largest default ring size.
pub const DEFAULT_QSIZE: u16 = 256;
/// Most queue pairs the driver drives.
pub const MAX_PAIRS: u16 = 64;
/// MTU range: without MRG_RXBUF or GSO a frame fits one 2 KiB buffer.
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 1500;

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DriverFactory {
    name: "virtio-net",
    prefix: PREFIX,
    kind: DriverKind::Native,
    description: "virtio 1.x network device over PCI (VFIO), split virtqueues, MSI-X",
    devices: 1,
    options: &[
        OptionSpec {
            key: "pci",
            help: "PCI address of the device, DDDD:BB:DD.F (bound to vfio-pci)",
            required: true,
        },
        OptionSpec {
            key: "queues",
            help: "rx/tx queue pairs (1..=64, default 1; at most what the device offers)",
            required: false,
        },
        OptionSpec {
            key: "qsize",
            help: "entries per ring, a power of two (default: the device's maximum, at most 256)",
            required: false,
        },
    ],
    create: &create,
};

/// Options after checking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Queue pairs asked for.
    pub queues: u16,
    /// Ring size asked for, if given.
    pub qsize: Option<u16>,
}

impl Options {
    /// Parses `queues` and `qsize` (the `pci` option is read by `open_pci`).
    pub fn parse(args: &AttachArgs) -> Result<Options, DriverError> {
        let bad = |key: &str, value: &str, why: &str| DriverError::BadOption {
            key: key.into(),
            value: value.into(),
            why: why.into(),
        };
        let queues: u16 = args.opt_parse("queues", 1)?;
        if !(1..=MAX_PAIRS).contains(&queues) {
            return Err(bad("queues", &queues.to_string(), "must be 1..=64"));
        }
        let qsize = match args.opt("qsize") {
            None => None,
            Some(v) => {
                let n: u16 = args.opt_parse("qsize", 0)?;
                if !virtq::valid_size(n) || n < 2 {
                    return Err(bad("qsize", v, "must be a power of two, 2..=32768"));
                }
                Some(n)
            }
        };
        Ok(Options { queues, qsize })
    }
}

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let opts = Options::parse(args)?;
    let dev = args.open_pci()?;
    let d = VirtioNet::attach(dev, opts, args.pool.clone(), args.owner(0))?;
    Ok(vec![Box::new(d)])
}

/// Features the driver accepts when offered (§5.1.3, §6).
const WANTED: u64 = bit(vf::VERSION_1)
    | bit(vf::ACCESS_PLATFORM)
    | bit(nf::CSUM)
    | bit(nf::GUEST_CSUM)
    | bit(nf::MAC)
    | bit(nf::STATUS)
    | bit(nf::CTRL_VQ)
    | bit(nf::CTRL_RX)
    | bit(nf::MQ)
    | bit(nf::CTRL_MAC_ADDR)
    | bit(nf::SPEED_DUPLEX);

/// Features that need the control queue (§5.1.3.1).
const NEED_CTRL_VQ: u64 = bit(nf::CTRL_RX) | bit(nf::MQ) | bit(nf::CTRL_MAC_ADDR);

/// The feature subset to accept from what the device offers.
pub fn choose_features(offered: u64) -> Result<u64, DriverError> {
    if offered & bit(vf::VERSION_1) == 0 {
        return Err(DriverError::Unsupported(
            "device does not offer VIRTIO_F_VERSION_1 (legacy-only): use disable-legacy=on".into(),
        ));
    }
    let mut f = offered & WANTED;
    if f & bit(nf::CTRL_VQ) == 0 {
        f &= !NEED_CTRL_VQ;
    }
    Ok(f)
}

/// Which MSI-X vector each queue gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VectorPlan {
    /// Vectors to enable (0: no interrupts, the queues are polled).
    pub vectors: u16,
    /// Whether transmit and control queues get their own vectors.
    pub per_queue: bool,
}

impl VectorPlan {
    /// Plans for a table of `table` entries, `pairs` queue pairs and a
    /// control queue or not: config + every queue when they fit, else
    /// config + the receive queues, else none.
    pub fn new(table: u16, pairs: u16, ctrl: bool) -> VectorPlan {
        let all = 1 + 2 * pairs + u16::from(ctrl);
        if table >= all {
            VectorPlan {
                vectors: all,
                per_queue: true,
            }
        } else if table > pairs {
            VectorPlan {
                vectors: 1 + pairs,
                per_queue: false,
            }
        } else {
            VectorPlan {
                vectors: 0,
                per_queue: false,
            }
        }
    }

    /// The configuration-change vector.
    pub fn config(&self) -> u16 {
        if self.vectors > 0 {
            0
        } else {
            NO_VECTOR
        }
    }

    /// Receive queue `i`'s vector.
    pub fn rx(&self, i: u16) -> u16 {
        if self.vectors > 0 {
            1 + i
        } else {
            NO_VECTOR
        }
    }

    /// Transmit queue `i`'s vector, for `pairs` pairs.
    pub fn tx(&self, i: u16, pairs: u16) -> u16 {
        if self.per_queue {
            1 + pairs + i
        } else {
            NO_VECTOR
        }
    }

    /// The control queue's vector.
    pub fn ctrl(&self, pairs: u16) -> u16 {
        if self.per_queue {
            1 + 2 * pairs
        } else {
            NO_VECTOR
        }
    }
}

/// Receive filter state, kept across restarts and applied at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Filter {
    promisc: bool,
    allmulti: bool,
    multicast: Vec<[u8; 6]>,
}

/// An attached virtio-net device.
pub struct VirtioNet {
    hw: Arc<Hw>,
    opts: Options,
    pool: Pool,
    owner: OwnerId,
    offered: u64,
    features: u64,
    /// Queue pairs the device offers (1 without MQ).
    max_pairs: u16,
    /// Queue pairs used.
    pairs: u16,
    /// Ring size used (the smaller of the option and the device's maximum).
    qsize: u16,
    mac: [u8; 6],
    filter: Filter,
    ctrl: Option<CtrlQueue>,
    /// Interrupt eventfds of the running device, by vector.
    irqs: Vec<RawFd>,
    plan: VectorPlan,
    running: bool,
    link: LinkState,
    ctrl_commands: u64,
    ctrl_errors: u64,
    config_interrupts: u64,
    /// `service` calls that found DEVICE_NEEDS_RESET set.
    needs_reset_seen: u64,
    /// Resets done ([`Driver::reset`]) and how many were function-level.
    resets: u64,
    function_resets: u64,
    /// Fault injections asked for ([`Driver::inject_fault`]).
    faults_injected: u64,
}

fn transport_err(bdf: impl std::fmt::Display, e: TransportError) -> DriverError {
    DriverError::Device(format!("{bdf}: {e}"))
}

impl VirtioNet {
    /// Attaches to an opened PCI function: finds its virtio structures,
    /// negotiates features once to learn what it offers (MAC, queue pairs),
    /// and leaves it reset until `start`.
    pub fn attach(
        dev: Box<dyn pktkit_native::device::PciDevice>,
        opts: Options,
        pool: Pool,
        owner: OwnerId,
    ) -> Result<VirtioNet, DriverError> {
        let hw = Arc::new(Hw::open(dev)?);
        hw.enable_bus_master()?;
        let (offered, features) = negotiate(&hw)?;
        let (mac, max_pairs) = hw.t.read_config(|c| {
            let mut mac = [0u8; 6];
            for (i, b) in mac.iter_mut().enumerate() {
                *b = c.read8(config::MAC + i);
            }
            (mac, c.read16(config::MAX_VIRTQUEUE_PAIRS))
        });
        hw.t.reset().map_err(|e| transport_err(hw.bdf, e))?;
        let mac = if features & bit(nf::MAC) != 0 {
            mac
        } else {
            // §5.1.5: without VIRTIO_NET_F_MAC the driver picks an address.
            let b = hw.bdf;
            [0x02, 0x00, 0x76, b.bus, b.device, b.function]
        };
        let max_pairs = if features & bit(nf::MQ) != 0 {
            max_pairs.clamp(cmd::MQ_VQ_PAIRS_MIN, cmd::MQ_VQ_PAIRS_MAX)
        } else {
            1
        };
        let pairs = opts.queues.min(max_pairs);
        if pairs < opts.queues {
            log::warn!(
                "{}: {} queue pairs asked, the device offers {max_pairs}",
                hw.bdf,
                opts.queues
            );
        }
        let dev_max = hw.t.queue_max_size(0);
        if dev_max == 0 {
            return Err(DriverError::Device(format!(
                "{}: receive queue 0 is missing",
                hw.bdf
            )));
        }
        let want = opts.qsize.unwrap_or(DEFAULT_QSIZE);
        // Largest power of two within both (a device maximum need not be one).
        let qsize = 1u16 << (15 - want.min(dev_max).leading_zeros().min(15));
        Ok(VirtioNet {
            hw,
            opts,
            pool,
            owner,
            offered,
            features,
            max_pairs,
            pairs,
            qsize,
            mac,
            filter: Filter::default(),
            ctrl: None,
            irqs: Vec::new(),
            plan: VectorPlan::new(0, 1, false),
            running: false,
            link: LinkState::DOWN,
            ctrl_commands: 0,
            ctrl_errors: 0,
            config_interrupts: 0,
            needs_reset_seen: 0,
            resets: 0,
            function_resets: 0,
            faults_injected: 0,
        })
    }

    fn has(&self, f: u32) -> bool {
        self.features & bit(f) != 0
    }

    /// The index of the control virtqueue (§5.1.2: 2N, N = max pairs with
    /// MQ, else 1).
    fn ctrl_index(&self) -> u16 {
        2 * self.max_pairs
    }

    /// Reads the link from the device configuration (§5.1.4).
    fn read_link(&self) -> LinkState {
        let (st, speed, duplex) = self.hw.t.read_config(|c| {
            (
                c.read16(config::STATUS),
                c.read32(config::SPEED),
                c.read8(config::DUPLEX),
            )
        });
        let up = !self.has(nf::STATUS) || st & config::S_LINK_UP != 0;
        if !up {
            return LinkState::DOWN;
        }
        let known = self.has(nf::SPEED_DUPLEX) && speed != config::SPEED_UNKNOWN;
        LinkState {
            up: true,
            speed_mbps: if known { speed } else { 0 },
            full_duplex: !self.has(nf::SPEED_DUPLEX) || duplex != 0,
        }
    }

    /// Sends a control command, counting it.
    fn command(&mut self, class: u8, command: u8, data: &[u8]) -> Result<(), DriverError> {
        let Some(ctrl) = self.ctrl.as_mut() else {
            return Err(DriverError::Unsupported(
                "the device has no control queue".into(),
            ));
        };
        self.ctrl_commands += 1;
        ctrl.command(&self.hw.t, class, command, data).map_err(|e| {
            self.ctrl_errors += 1;
            DriverError::Device(format!(
                "{}: control command {class}/{command}: {e}",
                self.hw.bdf
            ))
        })
    }

    /// Programs the receive filter into the running device (§5.1.6.5.1-2).
    fn apply_filter(&mut self) -> Result<(), DriverError> {
        if !self.has(nf::CTRL_RX) {
            return Ok(());
        }
        let f = self.filter.clone();
        self.command(cmd::CLASS_RX, cmd::RX_PROMISC, &[u8::from(f.promisc)])?;
        self.command(cmd::CLASS_RX, cmd::RX_ALLMULTI, &[u8::from(f.allmulti)])?;
        let mut table = [0u8; 8 + 6 * MULTICAST_SLOTS];
        let n = net::encode_mac_table(&f.multicast, &mut table).ok_or_else(|| {
            DriverError::Unsupported(format!(
                "{} multicast groups, the filter holds {MULTICAST_SLOTS}",
                f.multicast.len()
            ))
        })?;
        self.command(cmd::CLASS_MAC, cmd::MAC_TABLE_SET, &table[..n])
    }

    /// Brings the device up (§3.1.1, §4.1.5.1, §5.1.5) and returns its queues.
    fn bring_up(&mut self) -> Result<Queues, DriverError> {
        let hw = self.hw.clone();
        let bdf = hw.bdf;
        hw.enable_bus_master()?;
        negotiate(&hw)?;
        // MSI-X first, then the vectors (§4.1.5.1.2).
        let has_ctrl = self.has(nf::CTRL_VQ);
        let mut plan = VectorPlan::new(hw.layout.msix_vectors, self.pairs, has_ctrl);
        self.irqs.clear();
        if plan.vectors > 0 {
            match hw.dev().enable_irqs(IrqKind::Msix, u32::from(plan.vectors)) {
                Ok(fds) => self.irqs = fds,
                Err(e) => {
                    log::warn!("{bdf}: no MSI-X ({e}); queues will be polled");
                    plan = VectorPlan::new(0, self.pairs, has_ctrl);
                }
            }
        }
        self.plan = plan;
        hw.t.set_config_vector(plan.config())
            .map_err(|e| transport_err(bdf, e))?;

        // Virtqueues (§4.1.5.1.3), receive buffers in place (§5.1.5).
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        for i in 0..self.pairs {
            let (rxq, txq) = (2 * i, 2 * i + 1);
            let (vq, off) = self.make_queue(rxq, self.qsize, plan.rx(i))?;
            let fd = self.irqs.get(usize::from(plan.rx(i))).copied();
            let q = VioRxQueue::new(hw.clone(), vq, rxq, off, self.pool.clone(), self.owner, fd);
            rx.push(q);
            let (vq, off) = self.make_queue(txq, self.qsize, plan.tx(i, self.pairs))?;
            let csum = self.has(nf::CSUM);
            tx.push(VioTxQueue::new(
                hw.clone(),
                vq,
                txq,
                off,
                self.pool.clone(),
                self.owner,
                csum,
            ));
        }
        if has_ctrl {
            let index = self.ctrl_index();
            let size = CTRL_QSIZE.min(hw.t.queue_max_size(index).max(4));
            let (vq, off) = self.make_queue(index, size, plan.ctrl(self.pairs))?;
            let page = DmaBuf::new(hw.dev().as_mut(), CTRL_BUF_LEN).map_err(DriverError::Device)?;
            self.ctrl = Some(CtrlQueue::new(vq, page, index, off));
        }

        // §3.1.1 step 8: DRIVER_OK; the device may use the queues now.
        hw.t.add_status(status::DRIVER_OK);
        hw.set_live();
        if hw.t.status() & status::DEVICE_NEEDS_RESET != 0 {
            return Err(DriverError::Device(format!(
                "{bdf}: device needs reset after DRIVER_OK"
            )));
        }
        for q in rx.iter_mut() {
            q.kick_after_driver_ok();
        }
        // Control-queue setup (§5.1.6.5): QEMU starts promiscuous, so the
        // filter is always programmed; then the station address and the
        // number of queue pairs.
        self.apply_filter()?;
        if self.has(nf::CTRL_MAC_ADDR) {
            let mac = self.mac;
            self.command(cmd::CLASS_MAC, cmd::MAC_ADDR_SET, &mac)?;
        }
        if self.has(nf::MQ) {
            let pairs = self.pairs;
            self.command(cmd::CLASS_MQ, cmd::MQ_VQ_PAIRS_SET, &pairs.to_le_bytes())?;
        }
        self.link = self.read_link();
        Ok(Queues {
            rx: rx
                .into_iter()
                .map(|q| Box::new(q) as Box<dyn RxQueue>)
                .collect(),
            tx: tx
                .into_iter()
                .map(|q| Box::new(q) as Box<dyn TxQueue>)
                .collect(),
        })
    }

    /// Allocates and configures virtqueue `index`.
    fn make_queue(
        &self,
        index: u16,
        size: u16,
        vector: u16,
    ) -> Result<(SplitQueue, usize), DriverError> {
        let max = self.hw.t.queue_max_size(index);
        let size = size.min(max);
        if size == 0 {
            return Err(transport_err(self.hw.bdf, TransportError::NoQueue(index)));
        }
        let vq = SplitQueue::new(self.hw.dev().as_mut(), size).map_err(DriverError::Device)?;
        let off = self
            .hw
            .t
            .setup_queue(index, size, vector, vq.addrs())
            .map_err(|e| transport_err(self.hw.bdf, e))?;
        Ok((vq, off))
    }

    /// Resets the device and releases what `start` took (§3.3: reset, then
    /// free the queues' memory).
    fn tear_down(&mut self) {
        self.hw.quiesce();
        // Also when start failed before DRIVER_OK (not live yet): leave the
        // device reset, its queues disabled.
        if let Err(e) = self.hw.t.reset() {
            log::warn!("{}: {e}", self.hw.bdf);
        }
        self.ctrl = None;
        self.irqs.clear();
        if let Err(e) = self.hw.dev().disable_irqs() {
            log::warn!("{}: disabling interrupts: {e}", self.hw.bdf);
        }
        self.running = false;
        self.link = LinkState::DOWN;
    }
}

/// §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, feature negotiation,
/// FEATURES_OK. Returns (offered, accepted).
fn negotiate(hw: &Hw) -> Result<(u64, u64), DriverError> {
    let t = &hw.t;
    t.reset().map_err(|e| transport_err(hw.bdf, e))?;
    t.add_status(status::ACKNOWLEDGE);
    t.add_status(status::DRIVER);
    let offered = t.device_features();
    let features = match choose_features(offered) {
        Ok(f) => f,
        Err(e) => {
            t.add_status(status::FAILED);
            return Err(e);
        }
    };
    if let Err(e) = t.set_features(features) {
        t.add_status(status::FAILED);
        return Err(transport_err(hw.bdf, e));
    }
    Ok((offered, features))
}

/// Names of the negotiated features, for `describe`.
fn feature_names(f: u64) -> String {
    const NAMES: [(u32, &str); 11] = [
        (nf::CSUM, "CSUM"),
        (nf::GUEST_CSUM, "GUEST_CSUM"),
        (nf::MAC, "MAC"),
        (nf::STATUS, "STATUS"),
        (nf::CTRL_VQ, "CTRL_VQ"),
        (nf::CTRL_RX, "CTRL_RX"),
        (nf::MQ, "MQ"),
        (nf::CTRL_MAC_ADDR, "CTRL_MAC_ADDR"),
        (nf::SPEED_DUPLEX, "SPEED_DUPLEX"),
        (vf::VERSION_1, "VERSION_1"),
        (vf::ACCESS_PLATFORM, "ACCESS_PLATFORM"),
    ];
    let mut s = String::new();
    for (b, n) in NAMES {
        if f & bit(b) != 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(n);
        }
    }
    s
}

impl Driver for VirtioNet {
    fn name(&self) -> &str {
        PREFIX
    }

    fn capabilities(&self) -> Capabilities {
        let mut off = Offloads::NONE;
        if self.has(nf::CSUM) {
            off = off | Offloads::TX_L4_CSUM;
        }
        if self.has(nf::GUEST_CSUM) {
            off = off | Offloads::RX_L4_CSUM;
        }
        let filter = self.has(nf::CTRL_RX);
        Capabilities {
            rx_queues: self.pairs,
            tx_queues: self.pairs,
            min_mtu: MIN_MTU,
            max_mtu: MAX_MTU,
            offloads: off,
            multicast_slots: if filter { MULTICAST_SLOTS as u32 } else { 0 },
            promisc: filter,
        }
    }

    fn concurrency(&self) -> Concurrency {
        Concurrency::MpSafe
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn start(&mut self) -> Result<Queues, DriverError> {
        if self.running {
            return Err(DriverError::Device(format!(
                "{}: already started",
                self.hw.bdf
            )));
        }
        match self.bring_up() {
            Ok(q) => {
                self.running = true;
                Ok(q)
            }
            Err(e) => {
                // Queues built so far were dropped on the way out (each
                // resets the device before freeing its buffers).
                self.hw.t.add_status(status::FAILED);
                self.tear_down();
                Err(e)
            }
        }
    }

    fn stop(&mut self, queues: Queues) {
        // Reset first: the device stops touching the rings and buffers,
        // which the queues free when dropped below.
        self.hw.quiesce();
        drop(queues);
        self.tear_down();
    }

    fn link(&mut self) -> LinkState {
        // The live state; `service` alone tracks what it last reported, so
        // reading the link here never swallows a change it has yet to report.
        if self.running {
            self.read_link()
        } else {
            self.link
        }
    }

    fn control(&mut self, req: &Control) -> Result<(), DriverError> {
        let need_rx =
            || DriverError::Unsupported("receive filtering needs VIRTIO_NET_F_CTRL_RX".into());
        match req {
            Control::SetMtu(m) => {
                if !(MIN_MTU..=MAX_MTU).contains(m) {
                    return Err(DriverError::Unsupported(format!(
                        "MTU {m} (this driver takes {MIN_MTU}..={MAX_MTU})"
                    )));
                }
                Ok(())
            }
            Control::SetMac(mac) => {
                if !self.has(nf::CTRL_MAC_ADDR) {
                    return Err(DriverError::Unsupported(
                        "setting the MAC needs VIRTIO_NET_F_CTRL_MAC_ADDR".into(),
                    ));
                }
                if self.running {
                    self.command(cmd::CLASS_MAC, cmd::MAC_ADDR_SET, mac)?;
                }
                self.mac = *mac;
                Ok(())
            }
            Control::SetPromisc(on) => {
                if !self.has(nf::CTRL_RX) {
                    return Err(need_rx());
                }
                self.filter.promisc = *on;
                if self.running {
                    self.command(cmd::CLASS_RX, cmd::RX_PROMISC, &[u8::from(*on)])?;
                }
                Ok(())
            }
            Control::SetAllMulti(on) => {
                if !self.has(nf::CTRL_RX) {
                    return Err(need_rx());
                }
                self.filter.allmulti = *on;
                if self.running {
                    self.command(cmd::CLASS_RX, cmd::RX_ALLMULTI, &[u8::from(*on)])?;
                }
                Ok(())
            }
            Control::SetMulticast(list) => {
                if !self.has(nf::CTRL_RX) {
                    return Err(need_rx());
                }
                if list.len() > MULTICAST_SLOTS {
                    return Err(DriverError::Unsupported(format!(
                        "{} multicast groups, the filter holds {MULTICAST_SLOTS}",
                        list.len()
                    )));
                }
                self.filter.multicast = list.clone();
                if self.running {
                    let mut table = [0u8; 8 + 6 * MULTICAST_SLOTS];
                    if let Some(n) = net::encode_mac_table(list, &mut table) {
                        self.command(cmd::CLASS_MAC, cmd::MAC_TABLE_SET, &table[..n])?;
                    }
                }
                Ok(())
            }
        }
    }

    fn counters(&self) -> DeviceCounters {
        let s = &self.hw.stats;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        DeviceCounters {
            collisions: 0,
            rx_no_buffer: ld(&s.rx_no_buffer),
            extra: vec![
                ("ctrl_commands".into(), self.ctrl_commands),
                ("ctrl_errors".into(), self.ctrl_errors),
                ("config_interrupts".into(), self.config_interrupts),
                ("tx_linearized".into(), ld(&s.tx_linearized)),
                ("bad_used".into(), ld(&s.bad_used)),
                ("rx_redirected".into(), ld(&s.rx_redirected)),
                ("rx_faulted".into(), ld(&s.rx_faulted)),
                ("needs_reset".into(), self.needs_reset_seen),
                ("faults_injected".into(), self.faults_injected),
                ("resets".into(), self.resets),
                ("function_resets".into(), self.function_resets),
            ],
        }
    }

    fn service_fd(&self) -> Option<RawFd> {
        self.irqs.get(usize::from(self.plan.config())).copied()
    }

    fn service_interval(&self) -> Option<Duration> {
        // Without a configuration interrupt the link is polled.
        if self.service_fd().is_none() {
            Some(Duration::from_secs(1))
        } else {
            None
        }
    }

    fn service(&mut self) -> pktkit_native::Service {
        let mut out = pktkit_native::Service::default();
        if let Some(fd) = self.service_fd() {
            if sys::eventfd_take(fd) > 0 {
                self.config_interrupts += 1;
            }
        }
        if !self.running {
            return out;
        }
        // §4.1.5.4: a configuration change; reading the ISR also clears it.
        let _ = self.hw.t.read_isr();
        // §2.1.2: set when the device hit an error it cannot recover from
        // by itself (QEMU: a descriptor it could not map through the
        // IOMMU); only a reset (stop + start) clears it.
        if self.hw.t.status() & status::DEVICE_NEEDS_RESET != 0 {
            self.needs_reset_seen += 1;
            out.needs_reset = true;
        }
        let now = self.read_link();
        if now != self.link {
            self.link = now;
            out.link_changed = true;
        }
        out
    }

    /// The device reset of §2.4 (write 0 to `device_status`, wait until it
    /// reads 0), then the function-level reset when the function has one,
    /// then the initialisation of §3.1.1 again up to FEATURES_OK, checking
    /// the device accepts the features negotiated at attach. The queues
    /// are set up by the next `start`, which programs the kept MAC and
    /// receive filter through the control queue. Only while stopped.
    fn reset(&mut self) -> Result<(), DriverError> {
        let bdf = self.hw.bdf;
        if self.running {
            return Err(DriverError::Device(format!(
                "{bdf}: reset while started (stop first)"
            )));
        }
        // No DMA or interrupt from here on (stop left it reset already;
        // this covers a device that set NEEDS_RESET since).
        self.hw.quiesce();
        self.hw.t.reset().map_err(|e| transport_err(bdf, e))?;
        let flr = self.hw.function_reset()?;
        self.hw.enable_bus_master()?;
        let (offered, features) = negotiate(&self.hw)?;
        if features != self.features {
            self.hw.t.add_status(status::FAILED);
            return Err(DriverError::Device(format!(
                "{bdf}: after reset the device offers {offered:#x}, \
                 which no longer gives the features {:#x} negotiated at attach",
                self.features
            )));
        }
        self.resets += 1;
        self.function_resets += u64::from(flr);
        log::info!(
            "{bdf}: reset ({})",
            if flr {
                "device status + function-level"
            } else {
                "device status"
            }
        );
        Ok(())
    }

    /// [`Fault::RxBufferIova`], while started: the receive descriptors the
    /// device has not used yet get that address at once. The device's
    /// writes there fault in the IOMMU (the guest kernel logs a DMAR fault).
    /// QEMU 7.2 maps such a buffer through its bounce buffer, so the write
    /// is lost but the buffer still comes back used: the receive queue sees
    /// that its descriptor no longer names it and drops it (`rx_faulted`,
    /// and the queue's `errors`). Where the map itself fails, QEMU marks
    /// the device broken (DEVICE_NEEDS_RESET), which `service` reports as
    /// `needs_reset`. The next stop + start builds fresh rings.
    fn inject_fault(&mut self, fault: Fault) -> Result<(), DriverError> {
        let bdf = self.hw.bdf;
        match fault {
            Fault::RxBufferIova(iova) => {
                if !self.running {
                    return Err(DriverError::Device(format!(
                        "{bdf}: fault injection needs a started device"
                    )));
                }
                self.faults_injected += 1;
                match self.hw.redirect_rx(iova) {
                    0 => Err(DriverError::Device(format!(
                        "{bdf}: no receive buffer is posted to the device"
                    ))),
                    n => {
                        log::warn!(
                            "{bdf}: {n} receive descriptors point at {iova:#x} (fault injection)"
                        );
                        Ok(())
                    }
                }
            }
            other => Err(DriverError::Unsupported(format!(
                "{bdf}: fault injection ({other:?})"
            ))),
        }
    }

    fn describe(&self) -> Vec<(String, String)> {
        let hw = &self.hw;
        let mut irq = String::new();
        if !self.running {
            let _ = write!(
                irq,
                "set at start (MSI-X table: {})",
                hw.layout.msix_vectors
            );
        } else if self.plan.vectors == 0 {
            irq.push_str("polled");
        } else {
            let _ = write!(
                irq,
                "MSI-X x{} ({})",
                self.plan.vectors,
                if self.plan.per_queue {
                    "config, rx, tx, ctrl"
                } else {
                    "config, rx"
                }
            );
        }
        vec![
            ("pci".into(), hw.bdf.to_string()),
            ("id".into(), format!("1af4:{:04x}", hw.device_id)),
            ("features".into(), feature_names(self.features)),
            ("features_offered".into(), format!("{:#x}", self.offered)),
            (
                "queue_pairs".into(),
                format!(
                    "{} ({} asked, device offers {})",
                    self.pairs, self.opts.queues, self.max_pairs
                ),
            ),
            ("qsize".into(), self.qsize.to_string()),
            ("interrupts".into(), irq),
        ]
    }
}

impl Drop for VirtioNet {
    fn drop(&mut self) {
        self.tear_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_need_version_1_and_ctrl_vq() {
        assert!(choose_features(bit(nf::MAC)).is_err());
        let all = u64::MAX;
        let f = choose_features(all).unwrap();
        assert_eq!(f, WANTED);
        // Event idx, indirect descriptors and mergeable buffers are never taken.
        assert_eq!(f & bit(vf::RING_EVENT_IDX), 0);
        assert_eq!(f & bit(nf::MRG_RXBUF), 0);
        let f = choose_features(all & !bit(nf::CTRL_VQ)).unwrap();
        assert_eq!(f & NEED_CTRL_VQ, 0);
        assert_ne!(f & bit(nf::CSUM), 0);
    }

    #[test]
    fn vector_plans() {
        // QEMU's default for one pair: 4 vectors = config, rx, tx, ctrl.
        let p = VectorPlan::new(4, 1, true);
        assert_eq!((p.vectors, p.per_queue), (4, true));
        assert_eq!((p.config(), p.rx(0), p.tx(0, 1), p.ctrl(1)), (0, 1, 2, 3));
        // Room for config + rx only.
        let p = VectorPlan::new(3, 2, true);
        assert_eq!((p.vectors, p.rx(1), p.tx(0, 2)), (3, 2, NO_VECTOR));
        // Not even that: polled.
        let p = VectorPlan::new(1, 1, true);
        assert_eq!((p.vectors, p.config(), p.rx(0)), (0, NO_VECTOR, NO_VECTOR));
        let p = VectorPlan::new(0, 1, false);
        assert_eq!(p.vectors, 0);
    }

    #[test]
    fn feature_names_list_what_is_set() {
        assert_eq!(
            feature_names(bit(nf::MAC) | bit(vf::VERSION_1)),
            "MAC VERSION_1"
        );
    }
}
