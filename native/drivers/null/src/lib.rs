//! The null driver: a device that receives an endless stream of frames and
//! swallows everything it is given, like DPDK's `net_null`.
//!
//! It is the speed benchmark path of the stack: `rx_burst` takes buffers from
//! the pool in bulk and hands them out with their length set to the `size`
//! option (the payload is left as the pool has it, never written), and
//! `tx_burst` counts and frees the whole batch in bulk. Counters are plain
//! fields of the queue objects: each queue is driven by one thread at a time,
//! so nothing on the packet path needs an atomic of its own.
//!
//! Options: `size` (frame length, default 64), `queues` (default 1), `mac`.

use std::sync::atomic::{AtomicU32, Ordering};

use pktkit_native::mbuf::DATAROOM;
use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, Driver, DriverError, DriverFactory, DriverKind,
    LinkState, Mbuf, OptionSpec, OwnerId, PacketBatch, Pool, QueueCounters, Queues, RxQueue,
    TxQueue,
};

/// Link speed reported: the device is as fast as the CPU lets it be.
const SPEED_MBPS: u32 = 10_000;
/// Smallest frame the `size` option accepts (an Ethernet header).
const MIN_SIZE: usize = 14;
/// Most queues one null device offers.
const MAX_QUEUES: u16 = 64;
/// MTU range accepted by [`Control::SetMtu`].
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 9000;

/// Interface name prefix; the stack adds the unit.
pub const PREFIX: &str = "null";

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DriverFactory {
    name: "null",
    prefix: PREFIX,
    kind: DriverKind::Native,
    description: "endless receive source and transmit sink (benchmark device)",
    devices: 1,
    options: &[
        OptionSpec {
            key: "size",
            help: "length of received frames in bytes (14..=2048, default 64)",
            required: false,
        },
        OptionSpec {
            key: "queues",
            help: "number of rx/tx queue pairs (1..=64, default 1)",
            required: false,
        },
        OptionSpec {
            key: "mac",
            help: "station address xx:xx:xx:xx:xx:xx (default: a locally administered one)",
            required: false,
        },
    ],
    create: &create,
};

/// Attach counter, so that every null device gets a distinct default MAC.
static NEXT_UNIT: AtomicU32 = AtomicU32::new(0);

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let size: usize = args.opt_parse("size", 64)?;
    if !(MIN_SIZE..=DATAROOM).contains(&size) {
        return Err(bad_option(
            "size",
            &size.to_string(),
            &format!("must be within {MIN_SIZE}..={DATAROOM}"),
        ));
    }
    let queues: u16 = args.opt_parse("queues", 1)?;
    if !(1..=MAX_QUEUES).contains(&queues) {
        return Err(bad_option(
            "queues",
            &queues.to_string(),
            &format!("must be within 1..={MAX_QUEUES}"),
        ));
    }
    let mac = match args.opt("mac") {
        Some(s) => parse_mac(s).ok_or_else(|| bad_option("mac", s, "not xx:xx:xx:xx:xx:xx"))?,
        None => {
            let unit = NEXT_UNIT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
            [0x02, 0x6e, unit[0], unit[1], unit[2], unit[3]]
        }
    };
    Ok(vec![Box::new(NullDriver::new(
        args.pool.clone(),
        args.owner(0),
        NullConfig { size, queues, mac },
    ))])
}

fn bad_option(key: &str, value: &str, why: &str) -> DriverError {
    DriverError::BadOption {
        key: key.to_owned(),
        value: value.to_owned(),
        why: why.to_owned(),
    }
}

pub use pktkit_native::options::parse_mac;

/// What a null device is made of.
#[derive(Clone, Copy, Debug)]
pub struct NullConfig {
    /// Length of every received frame.
    pub size: usize,
    /// Number of rx/tx queue pairs.
    pub queues: u16,
    /// Station address.
    pub mac: [u8; 6],
}

/// The control side of a null device.
pub struct NullDriver {
    pool: Pool,
    owner: OwnerId,
    cfg: NullConfig,
    mtu: u32,
    promisc: bool,
    allmulti: bool,
    multicast: Vec<[u8; 6]>,
    started: bool,
}

impl NullDriver {
    /// A null device taking receive buffers from `pool` for `owner`.
    pub fn new(pool: Pool, owner: OwnerId, cfg: NullConfig) -> NullDriver {
        NullDriver {
            pool,
            owner,
            cfg,
            mtu: 1500,
            promisc: false,
            allmulti: false,
            multicast: Vec::new(),
            started: false,
        }
    }

    /// The MTU last set.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Whether promiscuous mode was asked for.
    pub fn promisc(&self) -> bool {
        self.promisc
    }

    /// Whether all-multicast was asked for.
    pub fn allmulti(&self) -> bool {
        self.allmulti
    }

    /// The multicast filter last programmed.
    pub fn multicast(&self) -> &[[u8; 6]] {
        &self.multicast
    }
}

impl Driver for NullDriver {
    fn name(&self) -> &str {
        PREFIX
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            rx_queues: self.cfg.queues,
            tx_queues: self.cfg.queues,
            min_mtu: MIN_MTU,
            max_mtu: MAX_MTU,
            multicast_slots: 64,
            ..Capabilities::default()
        }
    }

    fn concurrency(&self) -> Concurrency {
        Concurrency::MpSafe
    }

    fn mac(&self) -> [u8; 6] {
        self.cfg.mac
    }

    fn start(&mut self) -> Result<Queues, DriverError> {
        if self.started {
            return Err(DriverError::Device("null: already started".into()));
        }
        let rx = (0..self.cfg.queues)
            .map(|_| {
                Box::new(NullRxQueue::new(
                    self.pool.clone(),
                    self.owner,
                    self.cfg.size,
                )) as Box<dyn RxQueue>
            })
            .collect();
        let tx = (0..self.cfg.queues)
            .map(|_| Box::new(NullTxQueue::default()) as Box<dyn TxQueue>)
            .collect();
        self.started = true;
        Ok(Queues { rx, tx })
    }

    fn stop(&mut self, queues: Queues) {
        // The queues hold no buffers between bursts; dropping them is all.
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
            Control::SetMac(mac) => self.cfg.mac = *mac,
            Control::SetPromisc(on) => self.promisc = *on,
            Control::SetAllMulti(on) => self.allmulti = *on,
            Control::SetMulticast(list) => self.multicast.clone_from(list),
        }
        Ok(())
    }

    fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("frame size".into(), self.cfg.size.to_string()),
            ("queues".into(), self.cfg.queues.to_string()),
        ]
    }
}

/// A null receive queue: every burst is a batch of fresh buffers.
pub struct NullRxQueue {
    pool: Pool,
    owner: OwnerId,
    size: usize,
    counters: QueueCounters,
}

impl NullRxQueue {
    /// A queue handing out `size`-byte frames from `pool` for `owner`.
    pub fn new(pool: Pool, owner: OwnerId, size: usize) -> NullRxQueue {
        NullRxQueue {
            pool,
            owner,
            size: size.clamp(MIN_SIZE, DATAROOM),
            counters: QueueCounters::default(),
        }
    }
}

impl RxQueue for NullRxQueue {
    #[inline]
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let want = batch.room();
        if want == 0 {
            return 0;
        }
        // One pool round trip for the whole burst, straight into the batch;
        // each buffer then only gets its length (the payload stays as the
        // pool has it, as with net_null).
        let start = batch.len();
        let (pool, owner) = (&self.pool, self.owner);
        // SAFETY: alloc_raw_bulk writes `got` initialised buffers that nobody
        // else references into the leading slots and returns `got`.
        let got = unsafe { batch.fill_raw(|slots| pool.alloc_raw_bulk(owner, slots)) };
        for m in batch.iter_mut_from(start) {
            m.set_len(self.size);
        }
        self.account(want, got)
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}

impl NullRxQueue {
    #[inline]
    fn account(&mut self, want: usize, got: usize) -> usize {
        if got < want {
            self.counters.ring_full += 1;
            self.counters.drops += (want - got) as u64;
        }
        self.counters.packets += got as u64;
        self.counters.bytes += (got * self.size) as u64;
        got
    }
}

/// A null transmit queue: counts and frees everything.
#[derive(Default)]
pub struct NullTxQueue {
    counters: QueueCounters,
}

impl TxQueue for NullTxQueue {
    #[inline]
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let n = batch.len();
        let bytes: usize = batch.iter().map(Mbuf::pkt_len).sum();
        batch.free_all();
        self.counters.packets += n as u64;
        self.counters.bytes += bytes as u64;
        n
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}
