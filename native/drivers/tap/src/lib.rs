//! The tap driver: a Linux TAP interface as a pktkit device.
//!
//! The stack's side of the wire is the TAP file descriptor; the Linux side
//! is the interface named by the `ifname` option (created if missing, and
//! removed when the driver goes away, since it is not made persistent).
//! Frames are read straight into mbuf data rooms and written straight from
//! them: one `readv`/`writev` per frame, chains for jumbo frames, no copy in
//! user space.
//!
//! The link follows the Linux side: it is up while that interface is
//! administratively up and running (`IFF_UP | IFF_RUNNING`). An rtnetlink
//! socket subscribed to link changes is the service fd, so `ip link set X
//! down` reaches [`Driver::service`] at once.
//!
//! Options: `ifname` (default `pktkit%d`, the kernel picks the unit), `mac`
//! (the stack side's address; default random, locally administered).

mod sys;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use pktkit_native::mbuf::{free_raw_bulk, DATAROOM};
use pktkit_native::sys::{mbuf, M_PKTHDR};
use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError,
    DriverFactory, DriverKind, LinkState, OptionSpec, OwnerId, PacketBatch, Pool, QueueCounters,
    Queues, RxQueue, Service, TxQueue,
};

/// Speed reported while the link is up (a TAP has none; this is nominal).
const SPEED_MBPS: u32 = 10_000;
/// MTU range accepted by [`Control::SetMtu`].
const MIN_MTU: u32 = 68;
/// Largest MTU: jumbo frames.
pub const MAX_MTU: u32 = 9000;
/// Largest frame read: the largest MTU, an Ethernet header and a VLAN tag.
const FRAME_MAX: usize = MAX_MTU as usize + 14 + 4;
/// Buffers one receive offers the kernel, enough for [`FRAME_MAX`].
const RX_SEGS: usize = FRAME_MAX.div_ceil(DATAROOM);
/// Receive buffers a queue keeps at hand, refilled from the pool in bulk.
const STASH: usize = 64;
/// Most buffers of one packet `tx_burst` writes; longer chains are errors.
const TX_SEGS: usize = 16;

/// Interface name prefix; the stack adds the unit.
pub const PREFIX: &str = "tap";

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DriverFactory {
    name: "tap",
    prefix: PREFIX,
    kind: DriverKind::Native,
    description: "Linux TAP interface",
    devices: 1,
    options: &[
        OptionSpec {
            key: "ifname",
            help: "Linux-side interface to create or attach to (default pktkit%d)",
            required: false,
        },
        OptionSpec {
            key: "mac",
            help:
                "the stack side's address xx:xx:xx:xx:xx:xx (default random, locally administered)",
            required: false,
        },
    ],
    create: &create,
};

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let ifname = args.opt("ifname").unwrap_or("pktkit%d");
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains(['/', ' ']) {
        return Err(DriverError::BadOption {
            key: "ifname".into(),
            value: ifname.into(),
            why: format!("not an interface name (1..{} bytes)", libc::IFNAMSIZ),
        });
    }
    let mac = match args.opt("mac") {
        Some(s) => parse_mac(s).ok_or_else(|| DriverError::BadOption {
            key: "mac".into(),
            value: s.into(),
            why: "not xx:xx:xx:xx:xx:xx".into(),
        })?,
        None => random_mac().map_err(|source| DriverError::Io {
            op: "tap: getrandom".into(),
            source,
        })?,
    };
    let dev = TapDriver::open(ifname, mac, args.pool.clone(), args.owner(0))?;
    Ok(vec![Box::new(dev)])
}

pub use pktkit_native::options::parse_mac;

fn random_mac() -> io::Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    sys::random_bytes(&mut mac)?;
    // Locally administered, unicast.
    mac[0] = (mac[0] | 0x02) & !0x01;
    Ok(mac)
}

fn io_err(op: &str, source: io::Error) -> DriverError {
    DriverError::Io {
        op: op.to_owned(),
        source,
    }
}

/// The control side of a TAP device.
pub struct TapDriver {
    fd: Arc<OwnedFd>,
    ifname: String,
    mac: [u8; 6],
    pool: Pool,
    owner: OwnerId,
    ioctl_sock: OwnedFd,
    monitor: OwnedFd,
    link: LinkState,
    mtu: u32,
    promisc: bool,
    allmulti: bool,
    multicast: Vec<[u8; 6]>,
    link_events: u64,
    started: bool,
}

impl TapDriver {
    /// Creates (or attaches to) the TAP interface `ifname`.
    pub fn open(
        ifname: &str,
        mac: [u8; 6],
        pool: Pool,
        owner: OwnerId,
    ) -> Result<TapDriver, DriverError> {
        let (fd, ifname) = sys::open_tap(ifname).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) => {
                DriverError::NoDevice(format!("/dev/net/tun: {e} (is the tun module loaded?)"))
            }
            _ => io_err(&format!("tap: TUNSETIFF {ifname}"), e),
        })?;
        let ioctl_sock = sys::ioctl_socket().map_err(|e| io_err("tap: socket", e))?;
        let monitor = sys::link_monitor().map_err(|e| io_err("tap: rtnetlink socket", e))?;
        let mut dev = TapDriver {
            fd: Arc::new(fd),
            ifname,
            mac,
            pool,
            owner,
            ioctl_sock,
            monitor,
            link: LinkState::DOWN,
            mtu: 1500,
            promisc: false,
            allmulti: false,
            multicast: Vec::new(),
            link_events: 0,
            started: false,
        };
        dev.link = dev.read_link();
        Ok(dev)
    }

    /// The Linux-side interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The MTU last set.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    fn read_link(&self) -> LinkState {
        match sys::if_flags(self.ioctl_sock.as_raw_fd(), &self.ifname) {
            Ok(f) if f & libc::IFF_UP as u32 != 0 && f & libc::IFF_RUNNING as u32 != 0 => {
                LinkState::up(SPEED_MBPS)
            }
            Ok(_) => LinkState::DOWN,
            Err(e) => {
                log::warn!("tap {}: SIOCGIFFLAGS: {e}", self.ifname);
                LinkState::DOWN
            }
        }
    }
}

impl Driver for TapDriver {
    fn name(&self) -> &str {
        PREFIX
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            min_mtu: MIN_MTU,
            max_mtu: MAX_MTU,
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
            return Err(DriverError::Device("tap: already started".into()));
        }
        self.started = true;
        Ok(Queues {
            rx: vec![Box::new(TapRxQueue::new(
                self.fd.clone(),
                self.pool.clone(),
                self.owner,
            ))],
            tx: vec![Box::new(TapTxQueue::new(self.fd.clone()))],
        })
    }

    fn stop(&mut self, queues: Queues) {
        // The receive queue frees its stash of buffers when dropped.
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
                if !(MIN_MTU..=MAX_MTU).contains(mtu) {
                    return Err(DriverError::Unsupported(format!(
                        "MTU {mtu} outside {MIN_MTU}..={MAX_MTU}"
                    )));
                }
                sys::set_if_mtu(self.ioctl_sock.as_raw_fd(), &self.ifname, *mtu)
                    .map_err(|e| io_err(&format!("tap: SIOCSIFMTU {}", self.ifname), e))?;
                self.mtu = *mtu;
            }
            Control::SetMac(mac) => self.mac = *mac,
            // The Linux side hands the TAP every frame; filtering is the stack's.
            Control::SetPromisc(on) => self.promisc = *on,
            Control::SetAllMulti(on) => self.allmulti = *on,
            Control::SetMulticast(list) => self.multicast.clone_from(list),
        }
        Ok(())
    }

    fn counters(&self) -> DeviceCounters {
        DeviceCounters {
            extra: vec![("link events".into(), self.link_events)],
            ..DeviceCounters::default()
        }
    }

    fn service_fd(&self) -> Option<RawFd> {
        Some(self.monitor.as_raw_fd())
    }

    fn service(&mut self) -> Service {
        self.link_events += sys::drain(self.monitor.as_raw_fd()) as u64;
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
            ("promisc".into(), self.promisc.to_string()),
            ("allmulti".into(), self.allmulti.to_string()),
        ]
    }
}

/// The receive queue: reads frames from the TAP into mbufs.
pub struct TapRxQueue {
    fd: Arc<OwnedFd>,
    pool: Pool,
    owner: OwnerId,
    /// Fresh buffers owned by the queue; `stash[..stash_len]` are valid.
    stash: [*mut mbuf; STASH],
    stash_len: usize,
    counters: QueueCounters,
}

// SAFETY: the stash pointers are buffers the queue owns exclusively (like a
// Vec<Mbuf>); pool buffers may be used and freed from any thread.
unsafe impl Send for TapRxQueue {}

impl TapRxQueue {
    fn new(fd: Arc<OwnedFd>, pool: Pool, owner: OwnerId) -> TapRxQueue {
        TapRxQueue {
            fd,
            pool,
            owner,
            stash: [std::ptr::null_mut(); STASH],
            stash_len: 0,
            counters: QueueCounters::default(),
        }
    }

    /// Makes sure [`RX_SEGS`] buffers are at hand; false if the pool is dry.
    fn refill(&mut self) -> bool {
        if self.stash_len < RX_SEGS {
            let got = self
                .pool
                .alloc_raw_bulk(self.owner, &mut self.stash[self.stash_len..]);
            self.stash_len += got;
        }
        self.stash_len >= RX_SEGS
    }
}

impl RxQueue for TapRxQueue {
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let mut n = 0;
        while batch.room() > 0 {
            if !self.refill() {
                self.counters.ring_full += 1;
                break;
            }
            // The frame goes into the last RX_SEGS buffers of the stash.
            let base = self.stash_len - RX_SEGS;
            let bufs = &self.stash[base..self.stash_len];
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; RX_SEGS];
            for (v, &m) in iov.iter_mut().zip(bufs) {
                // SAFETY: m is a fresh buffer the queue owns; its m_data
                // points DATAROOM writable bytes into its storage.
                v.iov_base = unsafe { (*m).m_hdr.mh_data }.cast();
                v.iov_len = DATAROOM;
            }
            // SAFETY: the iovecs describe the data rooms of buffers we own.
            let len = match unsafe { sys::readv(self.fd.as_raw_fd(), &iov) } {
                Ok(0) => break,
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.counters.errors += 1;
                    break;
                }
            };
            let used = len.div_ceil(DATAROOM).clamp(1, RX_SEGS);
            // SAFETY: bufs[..used] are fresh single buffers the queue owns,
            // and readv filled `len` bytes of their data rooms in order.
            let head = unsafe { chain(&bufs[..used], len) };
            // The unused buffers slide down over the ones taken.
            self.stash.copy_within(base + used..self.stash_len, base);
            self.stash_len -= used;
            // SAFETY: head is the packet just built, owned by us alone.
            let m = unsafe { pktkit_native::Mbuf::from_raw(head) };
            if m.data().first().is_some_and(|b| b & 1 != 0) {
                self.counters.multicast += 1;
            }
            // Cannot fail: room was checked at the top of the loop.
            let _ = batch.push(m);
            self.counters.bytes += len as u64;
            n += 1;
        }
        self.counters.packets += n as u64;
        n
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn arm(&mut self) -> bool {
        // The TAP fd is level-triggered: nothing to enable, only to check.
        !sys::readable(self.fd.as_raw_fd())
    }

    fn disarm(&mut self) {
        self.counters.interrupts += 1;
    }
}

impl Drop for TapRxQueue {
    fn drop(&mut self) {
        // SAFETY: the stash holds fresh packets the queue owns; they are
        // forgotten right after.
        unsafe { free_raw_bulk(&self.stash[..self.stash_len]) };
        self.stash_len = 0;
    }
}

/// Links `bufs` into one packet of `len` bytes filled in order, and returns
/// its head.
///
/// # Safety
/// Every pointer must be a fresh (single, empty) buffer the caller owns, with
/// `len` bytes already written across their data rooms, `DATAROOM` each, and
/// `len <= bufs.len() * DATAROOM`.
unsafe fn chain(bufs: &[*mut mbuf], len: usize) -> *mut mbuf {
    let mut rest = len;
    for (i, &m) in bufs.iter().enumerate() {
        let seg = rest.min(DATAROOM);
        rest -= seg;
        // SAFETY: per the contract, m is ours; the next buffer (if any) is
        // too, and becomes part of this chain.
        unsafe {
            let h = &mut (*m).m_hdr;
            h.mh_len = seg as i32;
            h.mh_next = bufs.get(i + 1).copied().unwrap_or(std::ptr::null_mut());
            if i > 0 {
                h.mh_flags &= !M_PKTHDR;
            }
        }
    }
    let head = bufs[0];
    // SAFETY: head is ours and carries the packet header.
    unsafe { (*head).M_pkthdr.len = len as i32 };
    head
}

/// The transmit queue: writes frames to the TAP.
pub struct TapTxQueue {
    fd: Arc<OwnedFd>,
    counters: QueueCounters,
}

impl TapTxQueue {
    fn new(fd: Arc<OwnedFd>) -> TapTxQueue {
        TapTxQueue {
            fd,
            counters: QueueCounters::default(),
        }
    }
}

impl TxQueue for TapTxQueue {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let mut taken = 0;
        for m in batch.iter() {
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; TX_SEGS];
            let mut k = 0;
            let mut too_long = false;
            for seg in m.segs() {
                if k == TX_SEGS {
                    too_long = true;
                    break;
                }
                iov[k] = libc::iovec {
                    iov_base: seg.as_ptr().cast_mut().cast(),
                    iov_len: seg.len(),
                };
                k += 1;
            }
            if too_long {
                self.counters.errors += 1;
                taken += 1;
                continue;
            }
            // SAFETY: the iovecs describe the segments of a packet the batch
            // holds for the duration of the call; writev only reads them.
            match unsafe { sys::writev(self.fd.as_raw_fd(), &iov[..k]) } {
                Ok(n) => {
                    self.counters.packets += 1;
                    self.counters.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.counters.ring_full += 1;
                    break;
                }
                // EIO while the Linux side is down, EINVAL for a bad frame:
                // the frame is lost, not retried.
                Err(_) => self.counters.errors += 1,
            }
            taken += 1;
        }
        batch.free_front(taken);
        taken
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}
