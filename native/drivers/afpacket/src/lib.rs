//! The afpacket driver: an existing Linux interface reached through an
//! AF_PACKET socket with PACKET_MMAP rings.
//!
//! Receive uses a TPACKET_V3 block ring (blocks retire after at most
//! `RETIRE_MS` even when not full, so latency stays low at small rates);
//! each frame is copied out of the ring into an mbuf and its block given
//! back once walked. Transmit copies each packet into a frame slot of the
//! tx ring and issues one `sendto` per burst. The kernel's qdisc is bypassed
//! by default (`qdisc_bypass=1`), and our own transmissions are not looped
//! back to receive (`PACKET_IGNORE_OUTGOING`, and a `PACKET_OUTGOING` filter
//! on kernels without it).
//!
//! The link follows the interface's `IFF_UP | IFF_RUNNING`, read every
//! [`LINK_POLL`] by [`Driver::service`]. Promiscuous and all-multicast modes
//! and the multicast filter are socket memberships, dropped with the socket.
//!
//! Options: `ifname` (required), `blocks`, `block_size`, `frame_size`,
//! `qdisc_bypass`.

mod csum;
pub mod ring;
mod sys;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use pktkit_native::mbuf::DATAROOM;
use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError,
    DriverFactory, DriverKind, LinkState, Mbuf, OptionSpec, OwnerId, PacketBatch, Pool,
    QueueCounters, Queues, RxQueue, Service, TxQueue,
};

use ring::{Geometry, RxFrame, RxRing, Shared, TxPut, TxRing, HDR_ALIGNED};

/// How often `service` reads the link state.
pub const LINK_POLL: Duration = Duration::from_millis(200);
/// Longest a partly filled receive block waits before the kernel hands it over.
const RETIRE_MS: u32 = 1;
/// Speed reported while the link is up (not known through AF_PACKET).
const SPEED_MBPS: u32 = 10_000;
const MIN_MTU: u32 = 68;
const PAGE: usize = 4096;

/// Interface name prefix; the stack adds the unit.
pub const PREFIX: &str = "afp";

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DriverFactory {
    name: "afpacket",
    prefix: PREFIX,
    kind: DriverKind::Native,
    description: "existing Linux interface through an AF_PACKET socket (TPACKET_V3 rings)",
    devices: 1,
    options: &[
        OptionSpec {
            key: "ifname",
            help: "the Linux interface to bind to (required)",
            required: true,
        },
        OptionSpec {
            key: "blocks",
            help: "blocks per ring (1..=1024, default 16)",
            required: false,
        },
        OptionSpec {
            key: "block_size",
            help: "bytes per block, a multiple of 4096 (default 262144)",
            required: false,
        },
        OptionSpec {
            key: "frame_size",
            help:
                "bytes per transmit slot, a multiple of 16 (default 2048; 16384 for jumbo frames)",
            required: false,
        },
        OptionSpec {
            key: "qdisc_bypass",
            help: "1: transmit straight to the device, skipping the qdisc (default); 0: through it",
            required: false,
        },
    ],
    create: &create,
};

/// How the rings are cut.
#[derive(Clone, Copy, Debug)]
pub struct RingConfig {
    /// Blocks per ring.
    pub blocks: usize,
    /// Bytes per block.
    pub block_size: usize,
    /// Bytes per frame slot.
    pub frame_size: usize,
    /// Skip the qdisc on transmit.
    pub qdisc_bypass: bool,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            blocks: 16,
            block_size: 256 << 10,
            frame_size: 2048,
            qdisc_bypass: true,
        }
    }
}

fn bad(key: &str, value: impl ToString, why: &str) -> DriverError {
    DriverError::BadOption {
        key: key.into(),
        value: value.to_string(),
        why: why.into(),
    }
}

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let ifname = args.require("ifname")?;
    let d = RingConfig::default();
    let cfg = RingConfig {
        blocks: args.opt_parse("blocks", d.blocks)?,
        block_size: args.opt_parse("block_size", d.block_size)?,
        frame_size: args.opt_parse("frame_size", d.frame_size)?,
        qdisc_bypass: match args.opt("qdisc_bypass") {
            None | Some("1") => true,
            Some("0") => false,
            Some(v) => return Err(bad("qdisc_bypass", v, "must be 0 or 1")),
        },
    };
    if !(1..=1024).contains(&cfg.blocks) {
        return Err(bad("blocks", cfg.blocks, "must be within 1..=1024"));
    }
    if cfg.block_size == 0 || cfg.block_size & (PAGE - 1) != 0 || cfg.block_size > 64 << 20 {
        return Err(bad(
            "block_size",
            cfg.block_size,
            "must be a multiple of 4096, at most 64 MiB",
        ));
    }
    if cfg.frame_size & 15 != 0 || cfg.frame_size < 128 || cfg.frame_size > cfg.block_size {
        return Err(bad(
            "frame_size",
            cfg.frame_size,
            "must be a multiple of 16, at least 128 and at most block_size",
        ));
    }
    let dev = AfPacketDriver::open(ifname, cfg, args.pool.clone(), args.owner(0))?;
    Ok(vec![Box::new(dev)])
}

fn io_err(op: String, source: io::Error) -> DriverError {
    DriverError::Io { op, source }
}

/// The control side of an afpacket device.
pub struct AfPacketDriver {
    shared: Arc<Shared>,
    ifname: String,
    ifindex: u32,
    ioctl_sock: OwnedFd,
    cfg: RingConfig,
    pool: Pool,
    owner: OwnerId,
    mac: [u8; 6],
    link: LinkState,
    mtu: u32,
    promisc: bool,
    allmulti: bool,
    multicast: Vec<[u8; 6]>,
    started: bool,
    /// Kernel receive figures summed over reads (PACKET_STATISTICS resets).
    kernel_stats: Cell<(u64, u64)>,
}

impl AfPacketDriver {
    /// Opens a packet socket on `ifname` and maps its rings.
    pub fn open(
        ifname: &str,
        cfg: RingConfig,
        pool: Pool,
        owner: OwnerId,
    ) -> Result<AfPacketDriver, DriverError> {
        let ifindex = sys::if_index(ifname).ok_or_else(|| {
            DriverError::NoDevice(format!("no network interface named '{ifname}'"))
        })?;
        let ioctl_sock = sys::ioctl_socket().map_err(|e| io_err("afpacket: socket".into(), e))?;
        let mac = sys::if_hwaddr(ioctl_sock.as_raw_fd(), ifname)
            .map_err(|e| io_err(format!("afpacket: SIOCGIFHWADDR {ifname}"), e))?;

        // Socket first, bound only once the rings exist, so that no frame
        // is queued outside them.
        let fd =
            sys::packet_socket().map_err(|e| io_err("afpacket: socket(AF_PACKET)".into(), e))?;
        let raw = fd.as_raw_fd();
        let opt =
            |name: &str, r: io::Result<()>| r.map_err(|e| io_err(format!("afpacket: {name}"), e));
        opt(
            "PACKET_VERSION",
            sys::set_packet_opt(
                raw,
                libc::PACKET_VERSION,
                &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
            ),
        )?;
        if cfg.qdisc_bypass {
            if let Err(e) = sys::set_packet_opt(raw, libc::PACKET_QDISC_BYPASS, &1 as &libc::c_int)
            {
                log::warn!(
                    "afpacket {ifname}: PACKET_QDISC_BYPASS unavailable ({e}); using the qdisc"
                );
            }
        }
        if let Err(e) = sys::set_packet_opt(raw, libc::PACKET_IGNORE_OUTGOING, &1 as &libc::c_int) {
            log::debug!(
                "afpacket {ifname}: PACKET_IGNORE_OUTGOING unavailable ({e}); filtering instead"
            );
        }
        // Skip malformed transmit frames instead of stopping the ring.
        opt(
            "PACKET_LOSS",
            sys::set_packet_opt(raw, libc::PACKET_LOSS, &1 as &libc::c_int),
        )?;

        let frames = (cfg.block_size / cfg.frame_size * cfg.blocks) as u32;
        let rx_req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size as u32,
            tp_block_nr: cfg.blocks as u32,
            tp_frame_size: cfg.frame_size as u32,
            tp_frame_nr: frames,
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        opt(
            "PACKET_RX_RING",
            sys::set_packet_opt(raw, libc::PACKET_RX_RING, &rx_req),
        )?;
        // The tx ring is frame-based: no retire timer, private area or features.
        let tx_req = libc::tpacket_req3 {
            tp_retire_blk_tov: 0,
            ..rx_req
        };
        opt(
            "PACKET_TX_RING",
            sys::set_packet_opt(raw, libc::PACKET_TX_RING, &tx_req),
        )?;

        let rx = Geometry {
            offset: 0,
            block_size: cfg.block_size,
            blocks: cfg.blocks,
            frame_size: cfg.frame_size,
        };
        let tx = Geometry {
            offset: rx.len(),
            ..rx
        };
        // One mapping holds the rx ring followed by the tx ring.
        let map = sys::Mapping::new(raw, rx.len() + tx.len())
            .map_err(|e| io_err("afpacket: mmap rings".into(), e))?;
        sys::bind_all(raw, ifindex).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => DriverError::NoDevice(format!("interface '{ifname}' went away")),
            _ => io_err(format!("afpacket: bind {ifname}"), e),
        })?;
        let shared = Arc::new(Shared {
            map,
            fd,
            rx,
            tx,
            rx_next: AtomicUsize::new(0),
            tx_next: AtomicUsize::new(0),
        });
        let mut dev = AfPacketDriver {
            shared,
            ifname: ifname.to_owned(),
            ifindex,
            ioctl_sock,
            cfg,
            pool,
            owner,
            mac,
            link: LinkState::DOWN,
            mtu: 1500,
            promisc: false,
            allmulti: false,
            multicast: Vec::new(),
            started: false,
            kernel_stats: Cell::new((0, 0)),
        };
        dev.link = dev.read_link();
        Ok(dev)
    }

    /// The Linux interface bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    fn max_mtu(&self) -> u32 {
        ((self.cfg.frame_size - HDR_ALIGNED).saturating_sub(14) as u32).clamp(MIN_MTU, 65_535)
    }

    fn read_link(&self) -> LinkState {
        match sys::if_flags(self.ioctl_sock.as_raw_fd(), &self.ifname) {
            Ok(f) if f & libc::IFF_UP as u32 != 0 && f & libc::IFF_RUNNING as u32 != 0 => {
                LinkState::up(SPEED_MBPS)
            }
            Ok(_) => LinkState::DOWN,
            Err(e) => {
                log::warn!("afpacket {}: SIOCGIFFLAGS: {e}", self.ifname);
                LinkState::DOWN
            }
        }
    }

    fn member(
        &self,
        kind: libc::c_int,
        addr: Option<[u8; 6]>,
        add: bool,
    ) -> Result<(), DriverError> {
        sys::membership(self.shared.fd.as_raw_fd(), self.ifindex, kind, addr, add).map_err(|e| {
            io_err(
                format!(
                    "afpacket {}: PACKET_{}_MEMBERSHIP",
                    self.ifname,
                    if add { "ADD" } else { "DROP" }
                ),
                e,
            )
        })
    }
}

impl Driver for AfPacketDriver {
    fn name(&self) -> &str {
        PREFIX
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            min_mtu: MIN_MTU,
            max_mtu: self.max_mtu(),
            multicast_slots: 64,
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
            return Err(DriverError::Device("afpacket: already started".into()));
        }
        self.started = true;
        Ok(Queues {
            rx: vec![Box::new(AfPacketRxQueue {
                ring: RxRing::new(self.shared.clone()),
                shared: self.shared.clone(),
                pool: self.pool.clone(),
                owner: self.owner,
                scratch: vec![0; self.cfg.block_size + 4].into_boxed_slice(),
                counters: QueueCounters::default(),
            })],
            tx: vec![Box::new(AfPacketTxQueue {
                ring: TxRing::new(self.shared.clone()),
                shared: self.shared.clone(),
                unkicked: false,
                counters: QueueCounters::default(),
            })],
        })
    }

    fn stop(&mut self, queues: Queues) {
        // The queues hold no pool buffers; the rings remember where they were.
        drop(queues);
        self.started = false;
    }

    fn link(&mut self) -> LinkState {
        // The live state; `service` alone tracks what it last reported, so
        // reading the link here never swallows a change it has yet to report.
        self.read_link()
    }

    fn control(&mut self, req: &Control) -> Result<(), DriverError> {
        match req {
            Control::SetMtu(mtu) => {
                let max = self.max_mtu();
                if !(MIN_MTU..=max).contains(mtu) {
                    return Err(DriverError::Unsupported(format!(
                        "MTU {mtu} outside {MIN_MTU}..={max} (raise frame_size for more)"
                    )));
                }
                self.mtu = *mtu;
            }
            Control::SetMac(mac) => self.mac = *mac,
            Control::SetPromisc(on) => {
                if *on != self.promisc {
                    self.member(libc::PACKET_MR_PROMISC, None, *on)?;
                    self.promisc = *on;
                }
            }
            Control::SetAllMulti(on) => {
                if *on != self.allmulti {
                    self.member(libc::PACKET_MR_ALLMULTI, None, *on)?;
                    self.allmulti = *on;
                }
            }
            Control::SetMulticast(list) => {
                for a in std::mem::take(&mut self.multicast) {
                    let _ = self.member(libc::PACKET_MR_MULTICAST, Some(a), false);
                }
                for a in list {
                    self.member(libc::PACKET_MR_MULTICAST, Some(*a), true)?;
                    self.multicast.push(*a);
                }
            }
        }
        Ok(())
    }

    fn counters(&self) -> DeviceCounters {
        let (mut packets, mut drops) = self.kernel_stats.get();
        if let Ok((p, d)) = sys::packet_stats(self.shared.fd.as_raw_fd()) {
            packets += p;
            drops += d;
            self.kernel_stats.set((packets, drops));
        }
        DeviceCounters {
            extra: vec![
                ("kernel rx packets".into(), packets),
                ("kernel rx drops".into(), drops),
            ],
            ..DeviceCounters::default()
        }
    }

    fn service_interval(&self) -> Option<Duration> {
        Some(LINK_POLL)
    }

    fn service(&mut self) -> Service {
        let was = self.link;
        self.link = self.read_link();
        Service {
            link_changed: self.link != was,
            needs_reset: false,
        }
    }

    fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("linux ifname".into(), self.ifname.clone()),
            ("ifindex".into(), self.ifindex.to_string()),
            (
                "rx ring".into(),
                format!(
                    "{} x {} B blocks (TPACKET_V3)",
                    self.cfg.blocks, self.cfg.block_size
                ),
            ),
            (
                "tx ring".into(),
                format!(
                    "{} x {} B frames",
                    self.shared.tx.frames(),
                    self.cfg.frame_size
                ),
            ),
            ("qdisc bypass".into(), self.cfg.qdisc_bypass.to_string()),
        ]
    }
}

/// The receive queue: copies frames out of the V3 ring into mbufs.
pub struct AfPacketRxQueue {
    ring: RxRing,
    shared: Arc<Shared>,
    pool: Pool,
    owner: OwnerId,
    /// Where a jumbo frame gets its VLAN tag back before being chained.
    scratch: Box<[u8]>,
    counters: QueueCounters,
}

/// Copies a ring frame into a new packet, restoring a stripped VLAN tag and
/// completing a checksum a local sender left to offload.
fn to_mbuf(pool: &Pool, owner: OwnerId, f: &RxFrame<'_>, scratch: &mut [u8]) -> Option<Mbuf> {
    let d = f.data;
    if f.csum_not_ready && f.vlan.is_none() {
        if d.len() <= DATAROOM {
            let mut m = pool.alloc(owner)?;
            let out = m.append(d.len())?;
            out.copy_from_slice(d);
            csum::complete_l4_checksum(out);
            return Some(m);
        }
        let out = scratch.get_mut(..d.len())?;
        out.copy_from_slice(d);
        csum::complete_l4_checksum(out);
        return Mbuf::from_slice(pool, owner, out);
    }
    let Some((tpid, tci)) = f.vlan.filter(|_| d.len() >= 12) else {
        return Mbuf::from_slice(pool, owner, d);
    };
    let total = d.len() + 4;
    let tagged = |out: &mut [u8]| {
        out[..12].copy_from_slice(&d[..12]);
        out[12..14].copy_from_slice(&tpid.to_be_bytes());
        out[14..16].copy_from_slice(&tci.to_be_bytes());
        out[16..total].copy_from_slice(&d[12..]);
    };
    if total <= DATAROOM {
        let mut m = pool.alloc(owner)?;
        let out = m.append(total)?;
        tagged(out);
        if f.csum_not_ready {
            csum::complete_l4_checksum(out);
        }
        Some(m)
    } else {
        let out = scratch.get_mut(..total)?;
        tagged(out);
        if f.csum_not_ready {
            csum::complete_l4_checksum(out);
        }
        Mbuf::from_slice(pool, owner, out)
    }
}

impl RxQueue for AfPacketRxQueue {
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let mut n = 0;
        while batch.room() > 0 {
            let Some(f) = self.ring.peek() else {
                break;
            };
            if f.outgoing {
                self.ring.advance();
                continue;
            }
            let Some(m) = to_mbuf(&self.pool, self.owner, &f, &mut self.scratch) else {
                // Pool dry: leave the frame in the ring for the next burst.
                self.counters.ring_full += 1;
                break;
            };
            self.ring.advance();
            self.counters.bytes += m.pkt_len() as u64;
            if m.data().first().is_some_and(|b| b & 1 != 0) {
                self.counters.multicast += 1;
            }
            // Cannot fail: room was checked at the top of the loop.
            let _ = batch.push(m);
            n += 1;
        }
        self.counters.packets += n as u64;
        self.counters.errors = self.ring.bad;
        n
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.shared.fd.as_raw_fd())
    }

    fn arm(&mut self) -> bool {
        // poll() on the socket reports a user-owned block; nothing to enable.
        !self.ring.ready()
    }

    fn disarm(&mut self) {
        self.counters.interrupts += 1;
    }
}

/// The transmit queue: copies packets into the tx ring, one kick per burst.
pub struct AfPacketTxQueue {
    ring: TxRing,
    shared: Arc<Shared>,
    /// Frames were requested but the last kick failed; `reclaim` retries.
    unkicked: bool,
    counters: QueueCounters,
}

impl AfPacketTxQueue {
    fn kick(&mut self) {
        match sys::kick_tx(self.shared.fd.as_raw_fd()) {
            Ok(()) => self.unkicked = false,
            // Requested frames stay in the ring; the next burst or reclaim
            // kicks again.
            Err(_) => self.unkicked = true,
        }
    }
}

impl TxQueue for AfPacketTxQueue {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let mut taken = 0;
        let mut queued = 0;
        for m in batch.iter() {
            match self.ring.put(m) {
                TxPut::Queued => {
                    queued += 1;
                    self.counters.bytes += m.pkt_len() as u64;
                }
                TxPut::TooBig => self.counters.errors += 1,
                TxPut::Full => {
                    self.counters.ring_full += 1;
                    break;
                }
            }
            taken += 1;
        }
        if queued > 0 || self.unkicked {
            self.kick();
        }
        self.counters.packets += queued;
        batch.free_front(taken);
        taken
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn reclaim(&mut self) {
        if self.unkicked {
            self.kick();
        }
    }
}
