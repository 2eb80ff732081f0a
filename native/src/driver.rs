//! The driver contract: everything a driver of any kind (native Rust, ported
//! NetBSD C through compat-bsd, legacy binary through shim-legacy) provides to
//! the stack, and everything the stack promises in return. The stack knows
//! drivers only through these traits.
//!
//! # Shape
//!
//! A [`DriverFactory`] describes a driver (name, kind, options) and creates
//! one or more attached [`Driver`]s from [`AttachArgs`]. A `Driver` is the
//! device's control side. [`Driver::start`] hands out its data path as
//! [`Queues`]: one [`RxQueue`] and one [`TxQueue`] object per hardware queue,
//! each `Send`, so the runtime can give each queue to the worker thread that
//! polls it. [`Driver::stop`] takes them back.
//!
//! # Who calls what, from where
//!
//! - The runtime owns every thread; a driver never spawns one. It calls
//!   `rx_burst`/`tx_burst` from its workers, `service` when the driver's
//!   service fd is readable or its service interval elapses, and `control`,
//!   `link`, `counters`, `tunables`, `set_tunable` from the control path.
//! - [`Concurrency::MpSafe`]: different queues may be called at the same time
//!   from different threads, and concurrently with the control side. Each
//!   single queue object is called by one thread at a time.
//! - [`Concurrency::Serialized`]: no two entry points of the driver ever run
//!   at the same time (the runtime holds the driver's own lock around every
//!   call: queues, service, control). Other drivers are unaffected, unless the
//!   stack runs with the global fallback, where one lock covers all drivers.
//!
//! # Bursts: full, empty, error
//!
//! - [`RxQueue::rx_burst`] appends at most `batch.room()` received packets to
//!   the batch and returns how many. 0 means nothing is waiting: it is not an
//!   error. Frames the driver had to drop (bad CRC, no buffer) are counted in
//!   [`QueueCounters`], never returned.
//! - [`TxQueue::tx_burst`] takes packets from the front of the batch, in
//!   order, and returns how many it took. A packet taken is the driver's:
//!   it will be sent or counted as an error and freed, never handed back.
//!   When the ring is full it takes fewer (possibly 0) and leaves the rest in
//!   the batch, untouched, for the caller to retry or drop; it never takes a
//!   packet it cannot place. A packet it can never send (too long, malformed)
//!   is taken, counted in `errors` and freed, so it cannot wedge the queue.
//! - Neither call blocks, sleeps or allocates from the heap.
//!
//! # Interrupts and sleeping
//!
//! A queue that can wake a sleeping worker returns a file descriptor from
//! `wait_fd` (an eventfd from VFIO MSI-X, a TAP fd, a socket). When the
//! worker has found its queues idle it calls [`RxQueue::arm`]: the driver
//! enables its interrupt and returns `false` if packets arrived meanwhile (the
//! worker then keeps polling). The worker sleeps in epoll on the fd, and calls
//! [`RxQueue::disarm`] after waking. A queue without a wait fd is polled.
//!
//! # Buffers
//!
//! Drivers allocate receive buffers from [`AttachArgs::pool`] under
//! [`AttachArgs::owner`], and must have freed all of them when `stop` returns
//! and when the driver is dropped: the stack checks the owner's count after
//! detach and reports any leak.
//!
//! # Reset and fault injection (for the conformance suite)
//!
//! Two defaulted methods exist for `pktkit-harness`'s conformance suite and
//! answer [`DriverError::Unsupported`] unless a driver implements them:
//!
//! - [`Driver::reset`] is *stop + reset + start*: the caller stops the
//!   driver first (so no queue handed out before survives it), `reset`
//!   resets the function (`PciDevice::reset`, or the device's own reset
//!   where the function has no FLR) and re-initialises the device as attach
//!   did, and the caller then `start`s it again. Queues handed out before
//!   the reset are invalid after it: the stop before it took them back.
//! - [`Driver::inject_fault`] makes the device misbehave on purpose (e.g.
//!   DMA to an IOVA the IOMMU does not map) while started, with none of its
//!   queues or `service` running at the same time. The next
//!   `stop` + `start` must bring the device back to normal operation.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::batch::PacketBatch;
use crate::pool::{OwnerId, Pool};

/// What kind of driver this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// A native Rust driver (native/drivers).
    Native,
    /// A NetBSD driver ported through compat-bsd.
    Ported,
    /// A legacy-ABI binary loaded through shim-legacy.
    Legacy,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::Native => "native",
            DriverKind::Ported => "ported",
            DriverKind::Legacy => "legacy",
        })
    }
}

/// The concurrency class the runtime enforces for a driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Concurrency {
    /// Queues may run in parallel; the driver locks what it shares.
    MpSafe,
    /// Every entry point runs under the driver's own lock.
    Serialized,
}

/// Offloads a device can do; a set of bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Offloads(pub u32);

impl Offloads {
    /// No offload.
    pub const NONE: Offloads = Offloads(0);
    /// Verifies IPv4 header checksums on receive.
    pub const RX_IPV4_CSUM: Offloads = Offloads(1 << 0);
    /// Verifies TCP/UDP checksums on receive.
    pub const RX_L4_CSUM: Offloads = Offloads(1 << 1);
    /// Computes IPv4 header checksums on transmit.
    pub const TX_IPV4_CSUM: Offloads = Offloads(1 << 2);
    /// Computes TCP/UDP checksums on transmit.
    pub const TX_L4_CSUM: Offloads = Offloads(1 << 3);
    /// TCP segmentation offload, IPv4.
    pub const TSO4: Offloads = Offloads(1 << 4);
    /// TCP segmentation offload, IPv6.
    pub const TSO6: Offloads = Offloads(1 << 5);
    /// VLAN tag insertion and stripping.
    pub const VLAN: Offloads = Offloads(1 << 6);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Offloads) -> bool {
        self.0 & other.0 == other.0
    }

    /// Names of the bits set, for display.
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [&str; 7] = [
            "rxcsum4", "rxcsum", "txcsum4", "txcsum", "tso4", "tso6", "vlan",
        ];
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

impl std::ops::BitOr for Offloads {
    type Output = Offloads;
    fn bitor(self, o: Offloads) -> Offloads {
        Offloads(self.0 | o.0)
    }
}

/// What a device can do. Fixed for the life of an attached driver.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// Receive queues offered by `start`.
    pub rx_queues: u16,
    /// Transmit queues offered by `start`.
    pub tx_queues: u16,
    /// Smallest MTU accepted by [`Control::SetMtu`].
    pub min_mtu: u32,
    /// Largest MTU accepted (above 1500: jumbo frames, as mbuf chains).
    pub max_mtu: u32,
    /// Offloads the device does.
    pub offloads: Offloads,
    /// Multicast addresses the hardware filter holds (exact entries, or
    /// groups a hash filter takes while it still filters most others, e.g.
    /// the DP8390's 64-bit hash); beyond that the stack asks for
    /// all-multicast. 0: no filter (always all-multi).
    pub multicast_slots: u32,
    /// Whether the device can be made promiscuous.
    pub promisc: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            rx_queues: 1,
            tx_queues: 1,
            min_mtu: 68,
            max_mtu: 1500,
            offloads: Offloads::NONE,
            multicast_slots: 0,
            promisc: true,
        }
    }
}

/// Link state, as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LinkState {
    /// Carrier present.
    pub up: bool,
    /// Speed in Mbit/s, 0 when unknown.
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

impl LinkState {
    /// Link up at the given speed, full duplex.
    pub const fn up(speed_mbps: u32) -> LinkState {
        LinkState {
            up: true,
            speed_mbps,
            full_duplex: true,
        }
    }

    /// Link down.
    pub const DOWN: LinkState = LinkState {
        up: false,
        speed_mbps: 0,
        full_duplex: false,
    };
}

/// Per-queue counters, kept by the queue object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Packets received or sent.
    pub packets: u64,
    /// Bytes received or sent (frame bytes without CRC).
    pub bytes: u64,
    /// Frames in error (bad frames received; packets that could not be sent).
    pub errors: u64,
    /// Frames dropped for lack of buffers or room.
    pub drops: u64,
    /// Multicast frames.
    pub multicast: u64,
    /// Times the ring was found full (tx) or empty of buffers (rx).
    pub ring_full: u64,
    /// Interrupts (wake-ups) taken.
    pub interrupts: u64,
}

impl QueueCounters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &QueueCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.drops += o.drops;
        self.multicast += o.multicast;
        self.ring_full += o.ring_full;
        self.interrupts += o.interrupts;
    }
}

/// Device-wide counters beyond the per-queue ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Collisions (half duplex media).
    pub collisions: u64,
    /// Receive buffer allocations that failed (pool exhaustion seen by the driver).
    pub rx_no_buffer: u64,
    /// Device-specific figures, by name, for nicinfo.
    pub extra: Vec<(String, u64)>,
}

/// A control request. Drivers apply it to hardware or refuse it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Change the MTU (within the capabilities' range).
    SetMtu(u32),
    /// Change the station address.
    SetMac([u8; 6]),
    /// Receive every frame (true) or only those addressed to us.
    SetPromisc(bool),
    /// Receive every multicast frame.
    SetAllMulti(bool),
    /// Program the multicast filter with exactly these group addresses (the
    /// stack has already fallen back to `SetAllMulti` if they exceed the slots).
    SetMulticast(Vec<[u8; 6]>),
}

/// What a [`Driver::service`] call found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// The link state may have changed; the stack reads [`Driver::link`].
    pub link_changed: bool,
    /// The driver needs a reset (e.g. the device stopped responding); the
    /// stack stops and restarts it.
    pub needs_reset: bool,
}

/// One of a driver's own tunables or figures ([`Driver::tunables`]): a
/// ported driver's sysctl(9) leaf, shown by the stack as
/// `net.if.IF.drv.NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunable {
    /// Dotted name relative to the interface (`rx_delay_us`, `queue.0.len`).
    pub name: String,
    /// The current value as text (a number, 0/1 for a bool, a string), or
    /// why it could not be read.
    pub value: String,
    /// Whether [`Driver::set_tunable`] may change it.
    pub writable: bool,
    /// What it means (may be empty).
    pub description: String,
}

/// Why an attach, start or control request failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// An option the driver does not know.
    #[error("unknown option '{key}' (known: {known})")]
    UnknownOption {
        /// The option given.
        key: String,
        /// The options the driver knows, comma-separated.
        known: String,
    },
    /// A known option with a value the driver cannot use.
    #[error("bad value '{value}' for option '{key}': {why}")]
    BadOption {
        /// The option.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A required option was not given.
    #[error("missing option '{0}'")]
    MissingOption(String),
    /// The device named does not exist or cannot be opened.
    #[error("no such device: {0}")]
    NoDevice(String),
    /// An OS call failed.
    #[error("{op}: {source}")]
    Io {
        /// What the driver was doing.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The request is valid but this device does not do it.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The driver or device misbehaved.
    #[error("device error: {0}")]
    Device(String),
}

impl DriverError {
    /// Wraps the last OS error with what was being done.
    pub fn last_os(op: impl Into<String>) -> DriverError {
        DriverError::Io {
            op: op.into(),
            source: std::io::Error::last_os_error(),
        }
    }
}

/// A fault a test asks a driver to provoke ([`Driver::inject_fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Point the receive descriptors the device owns at this IOVA, which the
    /// IOMMU does not map, so the device's next receive DMA faults (the
    /// guest kernel logs a DMAR fault). The driver keeps its own buffers and
    /// restores the ring on the next `stop` + `start`.
    RxBufferIova(u64),
}

/// The data path of a started driver.
pub struct Queues {
    /// One per receive queue, index = queue number.
    pub rx: Vec<Box<dyn RxQueue>>,
    /// One per transmit queue.
    pub tx: Vec<Box<dyn TxQueue>>,
}

/// The control side of an attached device.
pub trait Driver: Send {
    /// The interface name prefix (e.g. "wm", "null"); the stack adds the unit.
    fn name(&self) -> &str;
    /// What the device can do.
    fn capabilities(&self) -> Capabilities;
    /// The concurrency class the runtime must enforce.
    fn concurrency(&self) -> Concurrency;
    /// The station address.
    fn mac(&self) -> [u8; 6];
    /// Brings the device up and hands out its queues.
    fn start(&mut self) -> Result<Queues, DriverError>;
    /// Takes the queues back and quiesces the device; every buffer the driver
    /// holds is freed when this returns.
    fn stop(&mut self, queues: Queues);
    /// The current link state (may read hardware). Reading it must not
    /// consume a change: [`Driver::service`] reports `link_changed` against
    /// the state it last reported, whoever called `link` in between.
    fn link(&mut self) -> LinkState;
    /// Applies a control request.
    fn control(&mut self, req: &Control) -> Result<(), DriverError>;
    /// Device-wide counters.
    fn counters(&self) -> DeviceCounters {
        DeviceCounters::default()
    }
    /// A descriptor the runtime watches; when readable it calls `service`.
    fn service_fd(&self) -> Option<RawFd> {
        None
    }
    /// How often the runtime calls `service` regardless (e.g. an MII tick).
    fn service_interval(&self) -> Option<Duration> {
        None
    }
    /// Handles link interrupts, timers and other slow-path work.
    fn service(&mut self) -> Service {
        Service::default()
    }
    /// Key facts for nicinfo (PCI address and ids, ring sizes, ...).
    fn describe(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Full-size frames the device itself can hold on receive before it
    /// must drop or hold back more, when that is small: a card with a few
    /// KiB of on-chip ring (the NE2000's 16-32 KiB, 9-20 frames). The
    /// protocol layer keeps TCP receive windows on the interface within it,
    /// so a fast peer cannot have more in flight than the card can take.
    /// `None` (the default): hundreds of descriptors, no limit needed.
    fn rx_ring_frames(&self) -> Option<u32> {
        None
    }
    /// The driver's own tunables and figures, in a stable order (see
    /// [`Tunable`]). Called from the control path like `control` (under
    /// the driver's lock for a serialized driver), so reading may run
    /// driver code. Default: none.
    fn tunables(&mut self) -> Vec<Tunable> {
        Vec::new()
    }
    /// Sets the writable tunable `name` (as [`Driver::tunables`] lists
    /// it) from text. An unknown name is [`DriverError::Unsupported`]; a
    /// read-only one or a value the driver cannot take (not a number, a
    /// bool other than 0 or 1, refused by the driver) is
    /// [`DriverError::BadOption`], and changes nothing. Default: every
    /// name is unknown.
    fn set_tunable(&mut self, name: &str, value: &str) -> Result<(), DriverError> {
        let _ = value;
        Err(DriverError::Unsupported(format!(
            "{}: no tunable '{name}'",
            self.name()
        )))
    }
    /// Function-level reset and re-init, called only while stopped (see
    /// "Reset and fault injection" above): queues handed out before are
    /// invalid after it, and `start` works again once it returns `Ok`.
    fn reset(&mut self) -> Result<(), DriverError> {
        Err(DriverError::Unsupported(format!(
            "{}: function reset and re-init",
            self.name()
        )))
    }
    /// Provokes `fault` for a test, while started; the next `stop` + `start`
    /// restores normal operation. The caller (a test harness) runs no queue
    /// burst and no `service` of this driver at the same time, so an
    /// implementation may reprogram the device as if it were alone with it.
    fn inject_fault(&mut self, fault: Fault) -> Result<(), DriverError> {
        Err(DriverError::Unsupported(format!(
            "{}: fault injection ({fault:?})",
            self.name()
        )))
    }
}

/// One receive queue.
pub trait RxQueue: Send {
    /// Appends up to `batch.room()` received packets; returns how many.
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize;
    /// The queue's counters.
    fn counters(&self) -> QueueCounters;
    /// A descriptor that becomes readable when packets may be waiting.
    fn wait_fd(&self) -> Option<RawFd> {
        None
    }
    /// Enables the wake-up; returns false if packets are already waiting.
    fn arm(&mut self) -> bool {
        true
    }
    /// Disables the wake-up after waking (and consumes the event).
    fn disarm(&mut self) {}
}

/// One transmit queue.
pub trait TxQueue: Send {
    /// Takes packets from the front of `batch`; returns how many it took.
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize;
    /// The queue's counters.
    fn counters(&self) -> QueueCounters;
    /// Frees buffers of completed transmissions; called when idle.
    fn reclaim(&mut self) {}
}

/// One option a driver accepts (`-d name,key=value`).
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// Key.
    pub key: &'static str,
    /// What it means and its default.
    pub help: &'static str,
    /// Whether it must be given.
    pub required: bool,
}

/// What a driver gets at attach.
pub struct AttachArgs {
    /// Options given by the user, already checked against the factory's list.
    pub options: BTreeMap<String, String>,
    /// The pool to take receive buffers from.
    pub pool: Pool,
    /// The owner to account buffers to (one per interface).
    pub owners: Vec<OwnerId>,
    /// The interface names the stack will give the devices created, in order.
    pub ifnames: Vec<String>,
    /// Opens PCI functions for drivers of PCI devices (`pci=BDF`): the stack
    /// gives one backed by its VFIO container, with its pools already mapped
    /// for DMA. `None` where the stack has no device access.
    pub pci: Option<std::sync::Arc<dyn crate::device::PciOpener>>,
}

impl AttachArgs {
    /// An option's value.
    pub fn opt(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// A required option's value.
    pub fn require(&self, key: &str) -> Result<&str, DriverError> {
        self.opt(key)
            .ok_or_else(|| DriverError::MissingOption(key.to_owned()))
    }

    /// An option parsed as a number, with a default.
    pub fn opt_parse<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, DriverError>
    where
        T::Err: fmt::Display,
    {
        match self.opt(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| DriverError::BadOption {
                key: key.to_owned(),
                value: v.to_owned(),
                why: e.to_string(),
            }),
        }
    }

    /// Opens the PCI function named by the `pci` option.
    pub fn open_pci(&self) -> Result<Box<dyn crate::device::PciDevice>, DriverError> {
        let bdf = self.require("pci")?;
        let addr: crate::device::PciAddress =
            bdf.parse().map_err(|why| DriverError::BadOption {
                key: "pci".into(),
                value: bdf.to_owned(),
                why,
            })?;
        let opener = self.pci.as_ref().ok_or_else(|| {
            DriverError::Unsupported("this stack has no PCI device access (VFIO)".into())
        })?;
        opener
            .open(addr)
            .map_err(|e| DriverError::NoDevice(format!("{addr}: {e}")))
    }

    /// The owner for device number `i` of this attach.
    pub fn owner(&self, i: usize) -> OwnerId {
        self.owners.get(i).copied().unwrap_or(OwnerId::POOL)
    }
}

/// Creates the devices of one attach from checked arguments: `&create`
/// (a plain function) for a driver built in, a leaked closure for one
/// found at run time (a loaded `.so`), which carries what it needs (the
/// library) itself.
pub type CreateFn =
    &'static (dyn Fn(&AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> + Send + Sync);

/// How the stack finds and creates a driver.
pub struct DriverFactory {
    /// Driver name as given to `-d` (e.g. "null", "tap").
    pub name: &'static str,
    /// Interface name prefix (usually the driver name).
    pub prefix: &'static str,
    /// Kind.
    pub kind: DriverKind,
    /// One line describing it.
    pub description: &'static str,
    /// How many devices (interfaces) one attach creates.
    pub devices: usize,
    /// Options it accepts.
    pub options: &'static [OptionSpec],
    /// Creates the devices; called once options are checked.
    pub create: CreateFn,
}

impl DriverFactory {
    /// Checks user options against the declared ones.
    pub fn check_options(&self, opts: &BTreeMap<String, String>) -> Result<(), DriverError> {
        for key in opts.keys() {
            if !self.options.iter().any(|o| o.key == key) {
                return Err(DriverError::UnknownOption {
                    key: key.clone(),
                    known: self
                        .options
                        .iter()
                        .map(|o| o.key)
                        .collect::<Vec<_>>()
                        .join(","),
                });
            }
        }
        for o in self.options.iter().filter(|o| o.required) {
            if !opts.contains_key(o.key) {
                return Err(DriverError::MissingOption(o.key.to_owned()));
            }
        }
        Ok(())
    }
}
