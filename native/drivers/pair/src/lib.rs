//! The pair driver: two interfaces joined back to back in memory.
//!
//! One attach creates two devices (the stack names them `pair0` and
//! `pair1`). What side A's transmit queue `q` takes goes, without copying,
//! into a bounded single-producer single-consumer [`ring`] that side B's
//! receive queue `q` reads, and the other way round. Each receive queue has an
//! eventfd as its wait fd, so a worker sleeping on an idle side wakes when the
//! peer sends (see [`ring::Ring::arm`]).
//!
//! A ring is *open* while the receive queue that reads it exists. Transmit
//! towards a side that is not started drops the packets (counted in `drops`),
//! as a cable into a switched-off port would; a receive queue that goes away
//! frees whatever is still in its ring, so `stop` and drop leave no buffer
//! behind.
//!
//! Received packets are accounted to the receiving device's owner
//! ([`pktkit_native::Mbuf::set_owner`]), like a buffer any other driver would
//! have allocated for its receive ring.
//!
//! Options: `queues` (default 1), `mac` (side 0's address; side 1 gets it with
//! the lowest bit of the last byte flipped; default: distinct locally
//! administered addresses).

pub mod ring;
mod sys;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, Driver, DriverError, DriverFactory, DriverKind,
    LinkState, OptionSpec, OwnerId, PacketBatch, QueueCounters, Queues, RxQueue, TxQueue,
};

pub use ring::{Ring, RING_SIZE};

/// Link speed reported.
const SPEED_MBPS: u32 = 10_000;
/// Most queue pairs per side.
const MAX_QUEUES: u16 = 64;
/// MTU range accepted by [`Control::SetMtu`] (jumbo frames travel as chains).
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 9000;

/// Exact multicast groups the receive filter holds.
const MULTICAST_SLOTS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Interface name prefix; the stack adds the unit.
pub const PREFIX: &str = "pair";

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DriverFactory {
    name: "pair",
    prefix: PREFIX,
    kind: DriverKind::Native,
    description: "two interfaces joined back to back in memory",
    devices: 2,
    options: &[
        OptionSpec {
            key: "queues",
            help: "rx/tx queue pairs per side (1..=64, default 1)",
            required: false,
        },
        OptionSpec {
            key: "mac",
            help: "side 0's address xx:xx:xx:xx:xx:xx; side 1 flips the last bit (default: locally administered)",
            required: false,
        },
    ],
    create: &create,
};

/// Attach counter, so that every pair gets distinct default MACs.
static NEXT_UNIT: AtomicU32 = AtomicU32::new(0);

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let queues: u16 = args.opt_parse("queues", 1)?;
    if !(1..=MAX_QUEUES).contains(&queues) {
        return Err(DriverError::BadOption {
            key: "queues".into(),
            value: queues.to_string(),
            why: format!("must be within 1..={MAX_QUEUES}"),
        });
    }
    let mac = match args.opt("mac") {
        Some(s) => parse_mac(s).ok_or_else(|| DriverError::BadOption {
            key: "mac".into(),
            value: s.into(),
            why: "not xx:xx:xx:xx:xx:xx".into(),
        })?,
        None => {
            let unit = NEXT_UNIT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
            [0x02, 0x70, unit[1], unit[2], unit[3], 0]
        }
    };
    let mut peer_mac = mac;
    peer_mac[5] ^= 1;
    let (a, b) = PairDriver::new_pair(queues, [mac, peer_mac], [args.owner(0), args.owner(1)])?;
    Ok(vec![Box::new(a), Box::new(b)])
}

pub use pktkit_native::options::parse_mac;

/// The control side of one end of a pair.
pub struct PairDriver {
    side: u8,
    mac: [u8; 6],
    owner: OwnerId,
    /// Rings this side's transmit queues fill (read by the peer).
    tx_rings: Vec<Arc<Ring>>,
    /// Rings this side's receive queues read (filled by the peer).
    rx_rings: Vec<Arc<Ring>>,
    mtu: u32,
    /// The receive filter, shared with this side's receive queues.
    filter: Arc<Mutex<Filter>>,
    started: bool,
}

/// The receive address filter of one side, as a NIC's: our unicast address,
/// broadcast, the multicast groups programmed (up to `multicast_slots`), or
/// everything multicast (all-multi) or everything (promiscuous).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    mac: [u8; 6],
    promisc: bool,
    allmulti: bool,
    multicast: Vec<[u8; 6]>,
}

impl Filter {
    /// Whether a frame with this destination passes.
    pub fn accepts(&self, dst: &[u8]) -> bool {
        if self.promisc || dst == [0xff; 6] {
            return true;
        }
        match dst.first() {
            Some(b) if b & 1 != 0 => self.allmulti || self.multicast.iter().any(|g| g == dst),
            Some(_) => dst == self.mac,
            None => false,
        }
    }
}

impl PairDriver {
    /// Two joined ends with `queues` queue pairs each; `macs` and `owners`
    /// are side 0's and side 1's.
    pub fn new_pair(
        queues: u16,
        macs: [[u8; 6]; 2],
        owners: [OwnerId; 2],
    ) -> Result<(PairDriver, PairDriver), DriverError> {
        let make = || -> Result<Vec<Arc<Ring>>, DriverError> {
            (0..queues)
                .map(|_| Ring::new().map(Arc::new))
                .collect::<Result<_, _>>()
                .map_err(|source| DriverError::Io {
                    op: "pair: eventfd".into(),
                    source,
                })
        };
        let a_to_b = make()?;
        let b_to_a = make()?;
        let side = |side: u8, tx: &Vec<Arc<Ring>>, rx: &Vec<Arc<Ring>>| PairDriver {
            side,
            mac: macs[side as usize],
            owner: owners[side as usize],
            tx_rings: tx.clone(),
            rx_rings: rx.clone(),
            mtu: 1500,
            filter: Arc::new(Mutex::new(Filter {
                mac: macs[side as usize],
                ..Filter::default()
            })),
            started: false,
        };
        Ok((side(0, &a_to_b, &b_to_a), side(1, &b_to_a, &a_to_b)))
    }

    /// Which end this is (0 or 1).
    pub fn side(&self) -> u8 {
        self.side
    }

    /// The MTU last set.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Whether promiscuous mode was asked for.
    pub fn promisc(&self) -> bool {
        lock(&self.filter).promisc
    }

    /// Whether all-multicast was asked for.
    pub fn allmulti(&self) -> bool {
        lock(&self.filter).allmulti
    }

    /// The multicast filter last programmed.
    pub fn multicast(&self) -> Vec<[u8; 6]> {
        lock(&self.filter).multicast.clone()
    }
}

impl Driver for PairDriver {
    fn name(&self) -> &str {
        PREFIX
    }

    fn capabilities(&self) -> Capabilities {
        let queues = self.rx_rings.len() as u16;
        Capabilities {
            rx_queues: queues,
            tx_queues: queues,
            min_mtu: MIN_MTU,
            max_mtu: MAX_MTU,
            multicast_slots: MULTICAST_SLOTS as u32,
            ..Capabilities::default()
        }
    }

    fn concurrency(&self) -> Concurrency {
        Concurrency::MpSafe
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn start(&mut self) -> Result<Queues, DriverError> {
        if self.started {
            return Err(DriverError::Device("pair: already started".into()));
        }
        let rx = self
            .rx_rings
            .iter()
            .map(|r| {
                Box::new(PairRxQueue::new(r.clone(), self.owner, self.filter.clone()))
                    as Box<dyn RxQueue>
            })
            .collect();
        let tx = self
            .tx_rings
            .iter()
            .map(|r| Box::new(PairTxQueue::new(r.clone())) as Box<dyn TxQueue>)
            .collect();
        self.started = true;
        Ok(Queues { rx, tx })
    }

    fn stop(&mut self, queues: Queues) {
        // Dropping a receive queue closes its ring and frees what is in it.
        drop(queues);
        self.started = false;
    }

    fn link(&mut self) -> LinkState {
        LinkState::up(SPEED_MBPS)
    }

    fn control(&mut self, req: &Control) -> Result<(), DriverError> {
        match req {
            Control::SetMtu(mtu) => {
                if !(MIN_MTU..=MAX_MTU).contains(mtu) {
                    return Err(DriverError::Unsupported(format!(
                        "MTU {mtu} outside {MIN_MTU}..={MAX_MTU}"
                    )));
                }
                self.mtu = *mtu;
            }
            Control::SetMac(mac) => {
                self.mac = *mac;
                lock(&self.filter).mac = *mac;
            }
            Control::SetPromisc(on) => lock(&self.filter).promisc = *on,
            Control::SetAllMulti(on) => lock(&self.filter).allmulti = *on,
            Control::SetMulticast(list) => {
                if list.len() > MULTICAST_SLOTS {
                    return Err(DriverError::Unsupported(format!(
                        "{} multicast groups, the filter holds {MULTICAST_SLOTS}",
                        list.len()
                    )));
                }
                lock(&self.filter).multicast.clone_from(list)
            }
        }
        Ok(())
    }

    fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("side".into(), self.side.to_string()),
            ("ring entries".into(), RING_SIZE.to_string()),
            ("queues".into(), self.rx_rings.len().to_string()),
        ]
    }
}

/// A receive queue: the consumer of one ring.
pub struct PairRxQueue {
    ring: Arc<Ring>,
    owner: OwnerId,
    filter: Arc<Mutex<Filter>>,
    counters: QueueCounters,
}

impl PairRxQueue {
    fn new(ring: Arc<Ring>, owner: OwnerId, filter: Arc<Mutex<Filter>>) -> PairRxQueue {
        ring.open();
        PairRxQueue {
            ring,
            owner,
            filter,
            counters: QueueCounters::default(),
        }
    }
}

impl RxQueue for PairRxQueue {
    #[inline]
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let owner = self.owner;
        let start = batch.len();
        let n = self.ring.dequeue(batch, |m| m.set_owner(owner));
        if n == 0 {
            return 0;
        }
        // The address filter, as a NIC applies it: one lock per burst.
        let filter = lock(&self.filter);
        let c = &mut self.counters;
        let filtered = batch.retain_from(start, |m| {
            let d = m.data();
            if !filter.accepts(d.get(..6).unwrap_or(&[])) {
                return false;
            }
            c.bytes += m.pkt_len() as u64;
            if d.first().is_some_and(|b| b & 1 != 0) {
                c.multicast += 1;
            }
            true
        });
        c.drops += filtered as u64;
        c.packets += (n - filtered) as u64;
        n - filtered
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.ring.wait_fd())
    }

    fn arm(&mut self) -> bool {
        self.ring.arm()
    }

    fn disarm(&mut self) {
        if self.ring.disarm() {
            self.counters.interrupts += 1;
        }
    }
}

impl Drop for PairRxQueue {
    fn drop(&mut self) {
        self.ring.close();
    }
}

/// A transmit queue: the producer of one ring.
pub struct PairTxQueue {
    ring: Arc<Ring>,
    counters: QueueCounters,
}

impl PairTxQueue {
    fn new(ring: Arc<Ring>) -> PairTxQueue {
        PairTxQueue {
            ring,
            counters: QueueCounters::default(),
        }
    }
}

impl TxQueue for PairTxQueue {
    #[inline]
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let offered = batch.len();
        let mut bytes = 0;
        match self.ring.enqueue(batch, |m| bytes += m.pkt_len() as u64) {
            Some(n) => {
                self.counters.packets += n as u64;
                self.counters.bytes += bytes;
                if n < offered {
                    self.counters.ring_full += 1;
                }
                n
            }
            None => {
                // Nobody reads this ring: the peer is down; the frames are lost.
                batch.free_all();
                self.counters.drops += offered as u64;
                offered
            }
        }
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}
