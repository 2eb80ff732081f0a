//! Interfaces: what the stack knows of an attached driver.
//!
//! An [`Interface`] is named by driver type and unit (null0, pair1, tap0),
//! carries flags, MTU, MAC, capabilities, link state, counters, a multicast
//! list pushed into the driver's hardware filter, and several addresses. It
//! owns the driver's control side and, while up, its queues.
//!
//! Locking: `ctl` (the driver's control side) is taken for every control
//! call, then the driver's [`DriverLock`] inside it; `state` guards the
//! interface's own fields and is never held across a driver call; each queue
//! has its own mutex, held for one burst. Order: ctl, then DriverLock, then
//! a queue mutex; `state` alone.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use pktkit_native::{
    Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError, DriverKind, LinkState,
    OwnerId, QueueCounters, RxQueue, TxQueue,
};

use crate::runtime::{lock, DriverLock};

/// Interface flags (NetBSD's IFF_* meanings).
pub mod flags {
    /// Administratively up.
    pub const UP: u32 = 0x1;
    /// Broadcast capable.
    pub const BROADCAST: u32 = 0x2;
    /// The driver is started (queues running).
    pub const RUNNING: u32 = 0x40;
    /// Receives all frames.
    pub const PROMISC: u32 = 0x100;
    /// Receives all multicast frames.
    pub const ALLMULTI: u32 = 0x200;
    /// Multicast capable.
    pub const MULTICAST: u32 = 0x8000;

    /// The names of the flags set, NetBSD style.
    pub fn names(f: u32) -> Vec<&'static str> {
        [
            (UP, "UP"),
            (BROADCAST, "BROADCAST"),
            (RUNNING, "RUNNING"),
            (PROMISC, "PROMISC"),
            (ALLMULTI, "ALLMULTI"),
            (MULTICAST, "MULTICAST"),
        ]
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect()
    }
}

/// Something that happened to an interface, told to subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfEvent {
    /// The link went up or down (or changed speed).
    Link {
        /// Interface name.
        ifname: String,
        /// The new state.
        state: LinkState,
    },
    /// The interface was attached to the stack.
    Attached(String),
    /// The interface was detached.
    Detached(String),
}

/// Why an interface operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IfError {
    /// The driver refused or failed.
    #[error("{ifname}: {source}")]
    Driver {
        /// Interface name.
        ifname: String,
        /// What the driver said.
        source: DriverError,
    },
    /// The request is outside the interface's capabilities.
    #[error("{ifname}: {why}")]
    Invalid {
        /// Interface name.
        ifname: String,
        /// What is wrong.
        why: String,
    },
}

/// The interface's own state.
#[derive(Clone, Debug)]
pub struct IfState {
    /// `flags::*` bits.
    pub flags: u32,
    /// MTU in bytes.
    pub mtu: u32,
    /// Station address.
    pub mac: [u8; 6],
    /// Last link state read from the driver.
    pub link: LinkState,
    /// Addresses with prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    /// Multicast groups joined (link-layer addresses).
    pub multicast: Vec<[u8; 6]>,
}

/// A queue shared between the worker that polls it and the control path
/// (which reads its counters).
pub type SharedRx = Arc<Mutex<Box<dyn RxQueue>>>;
/// A transmit queue, shared likewise.
pub type SharedTx = Arc<Mutex<Box<dyn TxQueue>>>;

/// The queues of a running interface.
#[derive(Clone)]
pub struct QueueSet {
    /// Receive queues.
    pub rx: Vec<SharedRx>,
    /// Transmit queues.
    pub tx: Vec<SharedTx>,
}

/// Counters of an interface, summed over its queues.
#[derive(Clone, Debug, Default)]
pub struct IfCounters {
    /// Receive side.
    pub rx: QueueCounters,
    /// Transmit side.
    pub tx: QueueCounters,
    /// Per receive queue.
    pub rx_queues: Vec<QueueCounters>,
    /// Per transmit queue.
    pub tx_queues: Vec<QueueCounters>,
    /// Device-wide counters.
    pub device: DeviceCounters,
    /// Packets the stack dropped on this interface (e.g. tx ring full).
    pub stack_drops: u64,
}

/// An attached driver as the stack sees it.
pub struct Interface {
    /// Stack-wide index (never reused within a stack).
    pub index: u32,
    /// Name: driver prefix and unit.
    pub name: String,
    /// The driver's name as given to `-d`.
    pub driver: String,
    /// Driver kind.
    pub kind: DriverKind,
    /// What the device can do.
    pub caps: Capabilities,
    /// Buffer accounting owner.
    pub owner: OwnerId,
    /// Concurrency enforcement for every call into the driver.
    pub lock: DriverLock,
    ctl: Mutex<Box<dyn Driver>>,
    state: Mutex<IfState>,
    queues: Mutex<Option<QueueSet>>,
    subscribers: Mutex<Vec<mpsc::Sender<IfEvent>>>,
    stack_drops: AtomicU64,
    /// Captures on this interface; `tapping` mirrors "non-empty" so the
    /// packet path pays one relaxed load when nobody captures.
    taps: Mutex<Vec<Arc<crate::bpf::Tap>>>,
    tapping: AtomicBool,
}

impl Interface {
    /// Wraps an attached (not yet started) driver.
    pub fn new(
        index: u32,
        name: String,
        driver_name: &str,
        kind: DriverKind,
        driver: Box<dyn Driver>,
        owner: OwnerId,
        lock: DriverLock,
    ) -> Interface {
        let caps = driver.capabilities();
        let mac = driver.mac();
        let mtu = caps.max_mtu.min(1500);
        Interface {
            index,
            name,
            driver: driver_name.to_owned(),
            kind,
            caps,
            owner,
            lock,
            ctl: Mutex::new(driver),
            state: Mutex::new(IfState {
                flags: flags::BROADCAST | flags::MULTICAST,
                mtu,
                mac,
                link: LinkState::DOWN,
                addrs: Vec::new(),
                multicast: Vec::new(),
            }),
            queues: Mutex::new(None),
            subscribers: Mutex::new(Vec::new()),
            stack_drops: AtomicU64::new(0),
            taps: Mutex::new(Vec::new()),
            tapping: AtomicBool::new(false),
        }
    }

    /// The driver's concurrency class.
    pub fn concurrency(&self) -> Concurrency {
        self.lock.class()
    }

    /// A copy of the interface state.
    pub fn state(&self) -> IfState {
        lock(&self.state).clone()
    }

    /// Runs `f` on the driver's control side, with the concurrency class enforced.
    pub fn with_driver<R>(&self, f: impl FnOnce(&mut dyn Driver) -> R) -> R {
        let mut ctl = lock(&self.ctl);
        let _entry = self.lock.enter();
        f(ctl.as_mut())
    }

    fn driver_err(&self, source: DriverError) -> IfError {
        IfError::Driver {
            ifname: self.name.clone(),
            source,
        }
    }

    /// Starts the driver and marks the interface up and running; returns the queues.
    pub fn up(&self) -> Result<QueueSet, IfError> {
        if let Some(q) = lock(&self.queues).clone() {
            return Ok(q);
        }
        let queues = self
            .with_driver(|d| d.start())
            .map_err(|e| self.driver_err(e))?;
        let set = QueueSet {
            rx: queues
                .rx
                .into_iter()
                .map(|q| Arc::new(Mutex::new(q)))
                .collect(),
            tx: queues
                .tx
                .into_iter()
                .map(|q| Arc::new(Mutex::new(q)))
                .collect(),
        };
        *lock(&self.queues) = Some(set.clone());
        lock(&self.state).flags |= flags::UP | flags::RUNNING;
        self.refresh_link();
        Ok(set)
    }

    /// Stops the driver. Every task using the queues must have released them
    /// first; returns false (and stays up) if a queue is still shared.
    pub fn down(&self) -> bool {
        let Some(set) = lock(&self.queues).take() else {
            return true;
        };
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        let mut stuck = false;
        for q in set.rx {
            match Arc::try_unwrap(q) {
                Ok(m) => rx.push(m.into_inner().unwrap_or_else(|e| e.into_inner())),
                Err(_) => stuck = true,
            }
        }
        for q in set.tx {
            match Arc::try_unwrap(q) {
                Ok(m) => tx.push(m.into_inner().unwrap_or_else(|e| e.into_inner())),
                Err(_) => stuck = true,
            }
        }
        if stuck {
            log::error!(
                "{}: queues still in use at down; driver not stopped",
                self.name
            );
            return false;
        }
        self.with_driver(|d| d.stop(pktkit_native::Queues { rx, tx }));
        lock(&self.state).flags &= !(flags::UP | flags::RUNNING);
        true
    }

    /// The running queues, if up.
    pub fn queues(&self) -> Option<QueueSet> {
        lock(&self.queues).clone()
    }

    /// Reads the link state from the driver; tells subscribers if it changed.
    pub fn refresh_link(&self) -> LinkState {
        let now = self.with_driver(|d| d.link());
        let changed = {
            let mut st = lock(&self.state);
            let changed = st.link != now;
            st.link = now;
            changed
        };
        if changed {
            self.publish(IfEvent::Link {
                ifname: self.name.clone(),
                state: now,
            });
        }
        now
    }

    /// Runs the driver's slow path; handles link changes and reset requests.
    pub fn service(&self) {
        let s = self.with_driver(|d| d.service());
        if s.link_changed {
            self.refresh_link();
        }
        if s.needs_reset {
            log::warn!("{}: driver asked for a reset", self.name);
        }
    }

    /// Subscribes to this interface's events.
    pub fn subscribe(&self) -> mpsc::Receiver<IfEvent> {
        let (tx, rx) = mpsc::channel();
        lock(&self.subscribers).push(tx);
        rx
    }

    /// Tells every subscriber (dropping the ones gone).
    pub fn publish(&self, ev: IfEvent) {
        lock(&self.subscribers).retain(|s| s.send(ev.clone()).is_ok());
    }

    fn control(&self, req: Control) -> Result<(), IfError> {
        self.with_driver(|d| d.control(&req))
            .map_err(|e| self.driver_err(e))
    }

    /// Changes the MTU within the capabilities.
    pub fn set_mtu(&self, mtu: u32) -> Result<(), IfError> {
        if mtu < self.caps.min_mtu || mtu > self.caps.max_mtu {
            return Err(IfError::Invalid {
                ifname: self.name.clone(),
                why: format!(
                    "MTU {mtu} outside {}..={}",
                    self.caps.min_mtu, self.caps.max_mtu
                ),
            });
        }
        self.control(Control::SetMtu(mtu))?;
        lock(&self.state).mtu = mtu;
        Ok(())
    }

    /// Changes the station address.
    pub fn set_mac(&self, mac: [u8; 6]) -> Result<(), IfError> {
        if mac[0] & 1 != 0 {
            return Err(IfError::Invalid {
                ifname: self.name.clone(),
                why: "a multicast address cannot be a station address".into(),
            });
        }
        self.control(Control::SetMac(mac))?;
        lock(&self.state).mac = mac;
        Ok(())
    }

    /// Turns promiscuous mode on or off.
    pub fn set_promisc(&self, on: bool) -> Result<(), IfError> {
        if on && !self.caps.promisc {
            return Err(IfError::Invalid {
                ifname: self.name.clone(),
                why: "the device cannot be promiscuous".into(),
            });
        }
        self.control(Control::SetPromisc(on))?;
        let mut st = lock(&self.state);
        if on {
            st.flags |= flags::PROMISC;
        } else {
            st.flags &= !flags::PROMISC;
        }
        Ok(())
    }

    /// Joins a link-layer multicast group and reprograms the filter.
    pub fn join_multicast(&self, group: [u8; 6]) -> Result<(), IfError> {
        if group[0] & 1 == 0 {
            return Err(IfError::Invalid {
                ifname: self.name.clone(),
                why: "not a multicast address".into(),
            });
        }
        let list = {
            let mut st = lock(&self.state);
            if st.multicast.contains(&group) {
                return Ok(());
            }
            st.multicast.push(group);
            st.multicast.clone()
        };
        self.program_multicast(list)
    }

    /// Leaves a multicast group and reprograms the filter.
    pub fn leave_multicast(&self, group: [u8; 6]) -> Result<(), IfError> {
        let list = {
            let mut st = lock(&self.state);
            st.multicast.retain(|g| *g != group);
            st.multicast.clone()
        };
        self.program_multicast(list)
    }

    /// Pushes the list into the driver's filter, falling back to
    /// all-multicast when it has more groups than filter slots.
    fn program_multicast(&self, list: Vec<[u8; 6]>) -> Result<(), IfError> {
        let all = list.len() > self.caps.multicast_slots as usize;
        if all {
            self.control(Control::SetAllMulti(true))?;
        } else {
            self.control(Control::SetAllMulti(false))?;
            self.control(Control::SetMulticast(list))?;
        }
        let mut st = lock(&self.state);
        if all {
            st.flags |= flags::ALLMULTI;
        } else {
            st.flags &= !flags::ALLMULTI;
        }
        Ok(())
    }

    /// Records an address (the protocol layer is told by the stack).
    pub fn add_addr(&self, addr: IpAddr, prefix: u8) {
        let mut st = lock(&self.state);
        if !st.addrs.contains(&(addr, prefix)) {
            st.addrs.push((addr, prefix));
        }
    }

    /// Forgets an address; returns whether it was there.
    pub fn remove_addr(&self, addr: IpAddr) -> bool {
        let mut st = lock(&self.state);
        let before = st.addrs.len();
        st.addrs.retain(|(a, _)| *a != addr);
        st.addrs.len() != before
    }

    /// Starts a capture on this interface.
    pub fn add_tap(&self, tap: Arc<crate::bpf::Tap>) {
        let mut t = lock(&self.taps);
        t.push(tap);
        self.tapping.store(true, Ordering::Release);
    }

    /// Stops a capture.
    pub fn remove_tap(&self, tap: &Arc<crate::bpf::Tap>) {
        let mut t = lock(&self.taps);
        t.retain(|x| !Arc::ptr_eq(x, tap));
        self.tapping.store(!t.is_empty(), Ordering::Release);
    }

    /// Offers the packets of `batch` from position `from` on to every
    /// capture (the packet path calls this on every burst).
    #[inline]
    pub fn tap_batch(
        &self,
        dir: crate::bpf::Direction,
        batch: &pktkit_native::PacketBatch,
        from: usize,
    ) {
        if !self.tapping.load(Ordering::Relaxed) {
            return;
        }
        let taps = lock(&self.taps);
        for m in batch.iter().skip(from) {
            for t in taps.iter() {
                t.offer(dir, m);
            }
        }
    }

    /// Counts packets the stack dropped on this interface.
    pub fn count_stack_drops(&self, n: u64) {
        self.stack_drops.fetch_add(n, Ordering::Relaxed);
    }

    /// Counters summed over queues.
    pub fn counters(&self) -> IfCounters {
        let mut c = IfCounters {
            device: self.with_driver(|d| d.counters()),
            stack_drops: self.stack_drops.load(Ordering::Relaxed),
            ..IfCounters::default()
        };
        if let Some(set) = self.queues() {
            for q in &set.rx {
                let qc = lock(q).counters();
                c.rx.add(&qc);
                c.rx_queues.push(qc);
            }
            for q in &set.tx {
                let qc = lock(q).counters();
                c.tx.add(&qc);
                c.tx_queues.push(qc);
            }
        }
        c
    }

    /// Key facts from the driver (for nicinfo).
    pub fn describe(&self) -> Vec<(String, String)> {
        self.with_driver(|d| d.describe())
    }

    /// The driver's small receive ring, if it has one
    /// ([`pktkit_native::driver::Driver::rx_ring_frames`]).
    pub fn rx_ring_frames(&self) -> Option<u32> {
        self.with_driver(|d| d.rx_ring_frames())
    }
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
