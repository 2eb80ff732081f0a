//! One legacy device behind the driver contract: [`LegacyDriver`] (the
//! control side) and its single rx/tx queue pair.
//!
//! Serialization: everything of a device (the driver's `dev`, the
//! [`StackCtx`]) sits in one [`Serial<Core>`] shared by the driver object
//! and its queues. The runtime's driver lock already serializes a
//! [`Concurrency::Serialized`] driver, so the shim takes no lock of its
//! own: `Serial` only checks, with one atomic exchange per entry (per burst),
//! that no other thread is inside, and makes an overlapping caller wait.
//! The queues' `counters()` do not enter: the runtime calls them holding
//! only that queue's lock (kit's `Interface::counters`, from the control
//! thread) while a worker may be inside a burst of the other queue, so every
//! entry publishes the queue counters into relaxed atomics as it leaves
//! ([`Shared`]) and `counters()` reads those.
//!
//! Transmit: a driver of ABI 1.3 with `lf_transmit_desc` gets up to
//! [`TX_BURST`] single-buffer frames per call as flat descriptors
//! (ctx/desc.rs); a driver of ABI 1.1 with `lf_transmit_burst` gets up to
//! [`TX_BURST`] packets per call; otherwise `lf_transmit` is called per
//! packet. The packet paths share the slot preparation and the settling of
//! what the driver took; chains reach a 1.3 driver through them too.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError, Fault,
    LinkState, PacketBatch, QueueCounters, Queues, RxQueue, Service, TxQueue,
};

use crate::ctx::{desc, CallGuard, Callout, PrepStop, ShimCounters, StackCtx, SERVICES};
use crate::loader::LegacyLibrary;
use crate::serial::{Serial, SerialGuard};
use crate::sys;

/// Interface prefix of every shimmed device (io-pkt's convention).
pub const PREFIX: &str = "en";
/// Legacy packets (slots) per device: bounds what a driver can hold.
const SLOTS: usize = 1024;
/// How often the transmit watchdog looks.
const WATCHDOG: Duration = Duration::from_secs(1);
/// Watchdog looks without a completion, with transmits lent, before a timeout.
const WATCHDOG_STRIKES: u32 = 3;
/// Most packets one `lf_transmit_burst` call gets.
pub const TX_BURST: usize = 64;

struct Core {
    ctx: Box<StackCtx>,
    dev: *mut sys::pktkit_lg_dev,
    funcs: sys::pktkit_lg_funcs,
    shutdown: unsafe extern "C" fn(*mut sys::pktkit_lg_dev),
    started: bool,
    /// The packets and slots of the transmit burst being lent (made once:
    /// zeroing them per burst showed in profiles).
    tx_pkts: Box<[*mut sys::pktkit_lg_packet; TX_BURST]>,
    tx_slots: Box<[u32; TX_BURST]>,
    /// The descriptors of the 1.3 transmit burst being lent.
    tx_descs: Box<[sys::pktkit_lg_desc; TX_BURST]>,
    stopped_once: bool,
    last_tx_done: u64,
    strikes: u32,
    /// Control or start calls that failed.
    driver_errors: u64,
    // Last: keeps the code of `funcs` mapped.
    lib: Arc<LegacyLibrary>,
}

// SAFETY: `dev` and `funcs` belong to the loaded driver, which the shim calls
// from one thread at a time (Core is only reached through its Serial); the
// driver keeps no thread affinity (ABI v1: it owns no threads).
unsafe impl Send for Core {}

impl Core {
    fn call<R>(&self, f: impl FnOnce() -> R) -> R {
        call_into(&self.ctx, f)
    }

    fn control_raw(&self, cmd: u32, arg: *mut libc::c_void) -> i32 {
        let Some(ctl) = self.funcs.lf_control else {
            return sys::PKTKIT_LG_ENOTSUP;
        };
        let dev = self.dev;
        // SAFETY: a v1 control call with the argument its command documents
        // (the callers pass the right type).
        self.call(|| unsafe { ctl(dev, cmd, arg) })
    }

    /// Calls the interrupt handlers and timer callbacks that are due (from
    /// `service`, and from `rx_burst` of interrupt-driven drivers, so
    /// receive makes progress whoever polls), then frees completed
    /// transmits.
    fn run_callouts(&self) {
        let mut due = [Callout::None; 16];
        loop {
            let n = self.ctx.with(|st| st.ready_events(&mut due));
            for c in &due[..n] {
                match *c {
                    Callout::Intr(h, arg) => {
                        // SAFETY: a handler and argument the driver
                        // registered with ls_intr_attach, called serialized.
                        self.call(|| unsafe { h(arg) });
                    }
                    Callout::Timer(f, arg) => {
                        // SAFETY: a callback and argument the driver
                        // registered with ls_timer_create.
                        self.call(|| unsafe { f(arg) });
                    }
                    Callout::None => {}
                }
            }
            if n < due.len() {
                break;
            }
        }
        self.ctx.with(|st| st.flush_frees());
    }

    /// Lends packets from the front of `batch` to the driver, a burst at a
    /// time (`lf_transmit_burst`) or one at a time (`lf_transmit`), until
    /// the batch is empty or the driver has no room. Returns how many it
    /// took (sent, failed, or unsendable and freed).
    fn transmit(&mut self, batch: &mut PacketBatch) -> usize {
        let per_call = if self.funcs.lf_transmit_burst.is_some() {
            TX_BURST
        } else {
            1
        };
        let Core {
            ctx,
            dev,
            funcs,
            tx_pkts: pkts,
            tx_slots: slots,
            tx_descs,
            ..
        } = self;
        let lender = Lender {
            ctx,
            dev: *dev,
            funcs,
        };
        let mut taken = 0;
        while !batch.is_empty() {
            // 1.3: descriptors, up to the first frame they cannot carry,
            // which then goes as a packet (one, below).
            let mut per_call = per_call;
            if let Some(send) = funcs.lf_transmit_desc {
                let (sent, full) = lender.send_desc(send, batch, tx_descs);
                taken += sent;
                if full || batch.is_empty() {
                    break;
                }
                per_call = 1;
            }
            let raw = batch.as_raw();
            let (k, stop) = ctx
                .with(|st| st.tx_prepare_burst(raw, &mut pkts[..per_call], &mut slots[..per_call]));
            if k > 0 {
                let sent = lender.send(&pkts[..k], &slots[..k]);
                batch.take_front_raw(sent);
                taken += sent;
                if sent < k {
                    ctx.with(|st| st.counters.tx_busy += 1);
                    break;
                }
            }
            match stop {
                PrepStop::No => {}
                PrepStop::Unsendable => {
                    // Taken, counted and freed.
                    if let Some(&m) = batch.take_front_raw(1).first() {
                        // SAFETY: the batch gave up m; nobody references it.
                        drop(unsafe { pktkit_native::Mbuf::from_raw(m) });
                        ctx.with(|st| st.counters.tx_errors += 1);
                        taken += 1;
                    }
                }
                PrepStop::NoSlot => {
                    ctx.with(|st| st.counters.tx_busy += 1);
                    break;
                }
            }
        }
        taken
    }

    /// The result of a control or reset call named `what`: 0 is done,
    /// `PKTKIT_LG_ENOTSUP` unsupported, another errno an error (counted in
    /// `driver_errors`).
    fn settle_call(&mut self, what: &str, rc: i32) -> Result<(), DriverError> {
        match rc {
            0 => Ok(()),
            sys::PKTKIT_LG_ENOTSUP => Err(DriverError::Unsupported(what.to_owned())),
            rc => {
                self.driver_errors += 1;
                Err(lg_error(what, rc))
            }
        }
    }

    fn stats(&self) -> Option<sys::pktkit_lg_stats> {
        let mut s = sys::pktkit_lg_stats::default();
        (self.control_raw(sys::PKTKIT_LG_CTL_GET_STATS, (&raw mut s).cast()) == 0).then_some(s)
    }

    fn stop_driver(&mut self) {
        if !self.started {
            return;
        }
        if let Some(stop) = self.funcs.lf_stop {
            let dev = self.dev;
            // SAFETY: v1 stop on a started device.
            self.call(|| unsafe { stop(dev) });
        }
        self.started = false;
        self.stopped_once = true;
        let kept = self.ctx.with(|st| st.reclaim_all());
        if kept > 0 {
            log::warn!(
                "{}: driver {} still held {kept} packets after stop; reclaimed",
                self.ctx.with(|st| st.name().to_owned()),
                self.lib.name()
            );
        }
    }
}

/// What lending a transmit burst needs of a [`Core`], borrowed apart from
/// its burst arrays.
struct Lender<'a> {
    ctx: &'a StackCtx,
    dev: *mut sys::pktkit_lg_dev,
    funcs: &'a sys::pktkit_lg_funcs,
}

impl Lender<'_> {
    /// Lends the frames at the front of `batch` to `lf_transmit_desc`, a
    /// burst at a time, until the batch is empty, the driver has no room,
    /// or the front frame is not one descriptor (a chain, another pool's
    /// buffer). Returns how many the driver took (taken off the batch) and
    /// whether it had no room.
    fn send_desc(
        &self,
        send: unsafe extern "C" fn(
            *mut sys::pktkit_lg_dev,
            *const sys::pktkit_lg_desc,
            u32,
        ) -> libc::c_int,
        batch: &mut PacketBatch,
        descs: &mut [sys::pktkit_lg_desc; TX_BURST],
    ) -> (usize, bool) {
        let dev = self.dev;
        let mut taken = 0;
        while !batch.is_empty() {
            let raw = batch.as_raw();
            let k = self.ctx.with(|st| st.tx_desc_prepare(raw, &mut descs[..]));
            if k == 0 {
                return (taken, false);
            }
            // SAFETY: a 1.3 burst of descriptors of buffers the batch still
            // holds (lent until completed); the array outlives the call.
            let rc = call_into(self.ctx, || unsafe { send(dev, descs.as_ptr(), k as u32) });
            let sent = self
                .ctx
                .with(|st| st.tx_desc_settle(&batch.as_raw()[..k], rc));
            batch.take_front_raw(sent);
            taken += sent;
            if sent < k {
                self.ctx.with(|st| st.counters.tx_busy += 1);
                return (taken, true);
            }
        }
        (taken, false)
    }

    /// Lends the prepared packets `pkts` (in `slots`) and returns how many
    /// the driver took, a prefix; the rest are released.
    fn send(&self, pkts: &[*mut sys::pktkit_lg_packet], slots: &[u32]) -> usize {
        let dev = self.dev;
        if let Some(burst) = self.funcs.lf_transmit_burst {
            // SAFETY: a 1.1 burst of packets whose fragments describe mbufs
            // the slots hold; the array outlives the call.
            let rc = call_into(self.ctx, || unsafe {
                burst(dev, pkts.as_ptr(), pkts.len() as u32)
            });
            return self.ctx.with(|st| st.tx_settle_burst(slots, rc));
        }
        let Some(transmit) = self.funcs.lf_transmit else {
            return 0;
        };
        for (j, &pkt) in pkts.iter().enumerate() {
            // SAFETY: v1 transmit of a packet whose fragments describe an
            // mbuf the slot holds.
            let rc = call_into(self.ctx, || unsafe { transmit(dev, pkt) });
            if !self.ctx.with(|st| st.tx_settle_one(slots[j], rc)) {
                self.ctx.with(|st| st.tx_release(&slots[j + 1..]));
                return j;
            }
        }
        pkts.len()
    }
}

/// Calls `f` (a call into the driver) marked as inside `ctx`'s driver.
fn call_into<R>(ctx: &StackCtx, f: impl FnOnce() -> R) -> R {
    let _g = CallGuard::enter(ctx);
    f()
}

impl Drop for Core {
    fn drop(&mut self) {
        self.stop_driver();
        let dev = self.dev;
        let shutdown = self.shutdown;
        // SAFETY: v1 shutdown after stop, once.
        self.call(|| unsafe { shutdown(dev) });
        self.ctx.with(|st| {
            st.reclaim_all();
            st.release_devices();
        });
    }
}

/// The driver's function table, read only as far as ABI `minor` defines it
/// (1.0's table ends before `lf_transmit_burst`, 1.1's before `lf_reset`,
/// 1.2's before `lf_transmit_desc`).
///
/// # Safety
/// `funcs` must point at a function table of at least that size.
unsafe fn read_funcs(funcs: *const sys::pktkit_lg_funcs, minor: u32) -> sys::pktkit_lg_funcs {
    let len = match minor {
        0 => std::mem::offset_of!(sys::pktkit_lg_funcs, lf_transmit_burst),
        1 => std::mem::offset_of!(sys::pktkit_lg_funcs, lf_reset),
        2 => std::mem::offset_of!(sys::pktkit_lg_funcs, lf_transmit_desc),
        _ => std::mem::size_of::<sys::pktkit_lg_funcs>(),
    };
    let mut out = sys::pktkit_lg_funcs::default();
    // SAFETY: the driver's table has `len` bytes (per the contract); `out`
    // is a local of at least that size; a prefix of a repr(C) struct of
    // nullable function pointers is a valid value for those members.
    unsafe { std::ptr::copy_nonoverlapping(funcs.cast::<u8>(), (&raw mut out).cast::<u8>(), len) };
    out
}

fn lg_error(what: &str, rc: i32) -> DriverError {
    let errno = -rc;
    if errno > 0 {
        DriverError::Io {
            op: what.to_owned(),
            source: std::io::Error::from_raw_os_error(errno),
        }
    } else {
        DriverError::Device(format!("{what}: returned {rc}"))
    }
}

/// A device's [`Core`] in its [`Serial`], and the queue counters each entry
/// publishes on its way out, for readers that must not enter.
struct Shared {
    serial: Serial<Core>,
    published: Published,
}

/// The queue counters as of the last entry's end. Written only by the
/// thread inside the Serial, read by anyone: relaxed, since a reader wants
/// recent values, not an order with the packets (each field only grows
/// between resets of the device's counters).
#[derive(Default)]
struct Published {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_errors: AtomicU64,
    rx_drops: AtomicU64,
    interrupts: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_errors: AtomicU64,
    tx_busy: AtomicU64,
}

impl Published {
    /// Stores the queue counters out of `c` (one entry's end: per burst).
    fn store(&self, c: &ShimCounters) {
        let put = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        put(&self.rx_packets, c.rx_zero_copy + c.rx_copies);
        put(&self.rx_bytes, c.rx_bytes);
        put(&self.rx_errors, c.bad_packets);
        put(&self.rx_drops, c.rx_ring_drops + c.pkt_alloc_failures);
        put(&self.interrupts, c.interrupts);
        put(&self.tx_packets, c.tx_done);
        put(&self.tx_bytes, c.tx_bytes);
        put(&self.tx_errors, c.tx_errors);
        put(&self.tx_busy, c.tx_busy);
    }

    fn rx(&self) -> QueueCounters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        QueueCounters {
            packets: get(&self.rx_packets),
            bytes: get(&self.rx_bytes),
            errors: get(&self.rx_errors),
            drops: get(&self.rx_drops),
            interrupts: get(&self.interrupts),
            ..QueueCounters::default()
        }
    }

    fn tx(&self) -> QueueCounters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        QueueCounters {
            packets: get(&self.tx_packets),
            bytes: get(&self.tx_bytes),
            errors: get(&self.tx_errors),
            ring_full: get(&self.tx_busy),
            ..QueueCounters::default()
        }
    }
}

impl Shared {
    fn new(core: Core) -> Shared {
        Shared {
            serial: Serial::new(core),
            published: Published::default(),
        }
    }

    /// Enters the device; the guard publishes the queue counters as it
    /// leaves.
    #[inline]
    fn enter(&self) -> CoreGuard<'_> {
        CoreGuard {
            core: self.serial.enter(),
            published: &self.published,
        }
    }

    /// Entries that found the device busy ([`Serial::overlaps`]).
    fn overlaps(&self) -> u64 {
        self.serial.overlaps()
    }
}

/// Inside a device's [`Serial`]; publishes its queue counters on drop, still
/// inside (the Serial is left after, when the inner guard drops).
struct CoreGuard<'a> {
    core: SerialGuard<'a, Core>,
    published: &'a Published,
}

impl std::ops::Deref for CoreGuard<'_> {
    type Target = Core;
    #[inline]
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl std::ops::DerefMut for CoreGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

impl Drop for CoreGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let published = self.published;
        self.core.ctx.with(|st| published.store(&st.counters));
    }
}

/// A legacy device attached through the shim.
pub struct LegacyDriver {
    core: Arc<Shared>,
    lib: Arc<LegacyLibrary>,
    ifname: String,
    mac: [u8; 6],
    caps: Capabilities,
    polled: bool,
    service_fd: RawFd,
    /// Frames the device buffers on receive (`di_rx_frames`), 0 unknown.
    rx_frames: u32,
}

impl LegacyDriver {
    /// Attaches one device of `lib` (calls its `le_init`).
    pub fn attach(lib: Arc<LegacyLibrary>, args: &AttachArgs) -> Result<LegacyDriver, DriverError> {
        let ifname = args
            .ifnames
            .first()
            .cloned()
            .unwrap_or_else(|| format!("{PREFIX}?"));
        let ctx = StackCtx::new(
            &ifname,
            args.pool.clone(),
            args.owner(0),
            SLOTS,
            &args.options,
            args.pci.clone(),
        )
        .map_err(|source| DriverError::Io {
            op: "legacy shim: epoll/eventfd".into(),
            source,
        })?;
        let entry = lib.entry();
        let (Some(init), Some(shutdown)) = (entry.le_init, entry.le_shutdown) else {
            return Err(DriverError::Device("legacy entry without init".into()));
        };
        let mut dev: *mut sys::pktkit_lg_dev = std::ptr::null_mut();
        let mut funcs: *const sys::pktkit_lg_funcs = std::ptr::null();
        let mut info = sys::pktkit_lg_devinfo::default();
        let rc = {
            let _g = CallGuard::enter(&ctx);
            // SAFETY: v1 init with the services table, our stack pointer and
            // out pointers to locals.
            unsafe { init(&SERVICES, ctx.as_stack(), &mut dev, &mut funcs, &mut info) }
        };
        if rc != 0 {
            ctx.with(|st| {
                st.reclaim_all();
                st.release_devices();
            });
            return Err(lg_error(&format!("{}: le_init", lib.name()), rc));
        }
        if dev.is_null() || funcs.is_null() {
            // Nothing we can safely call shutdown on: leak what init took.
            return Err(DriverError::Device(format!(
                "{}: le_init returned no device or functions",
                lib.name()
            )));
        }
        // SAFETY: the function table of the loaded driver, as long as its
        // minor says; copied so no pointer into the library is kept beyond
        // the code pointers.
        let funcs = unsafe { read_funcs(funcs, lib.abi().1) };
        let polled = funcs.lf_poll.is_some();
        let core = Core {
            ctx,
            dev,
            funcs,
            shutdown,
            started: false,
            tx_pkts: Box::new([std::ptr::null_mut(); TX_BURST]),
            tx_slots: Box::new([0; TX_BURST]),
            tx_descs: Box::new([desc::EMPTY; TX_BURST]),
            stopped_once: false,
            last_tx_done: 0,
            strikes: 0,
            driver_errors: 0,
            lib: lib.clone(),
        };
        let service_fd = core.ctx.with(|st| st.service_fd());
        if funcs.lf_transmit.is_none() || funcs.lf_start.is_none() {
            drop(core);
            return Err(DriverError::Device(format!(
                "{}: function table without start or transmit",
                lib.name()
            )));
        }
        let mut mac = [0u8; 6];
        if core.control_raw(sys::PKTKIT_LG_CTL_GET_MAC, mac.as_mut_ptr().cast()) != 0 {
            log::warn!("{ifname}: {} gives no MAC address", lib.name());
        }
        let max_mtu = if info.di_max_mtu >= 68 {
            info.di_max_mtu.min(crate::ctx::MAX_FRAME as u32 - 18)
        } else {
            1500
        };
        let caps = Capabilities {
            rx_queues: 1,
            tx_queues: 1,
            min_mtu: 68,
            max_mtu,
            multicast_slots: info.di_mcast_slots,
            promisc: info.di_promisc != 0,
            ..Capabilities::default()
        };
        Ok(LegacyDriver {
            core: Arc::new(Shared::new(core)),
            lib,
            ifname,
            mac,
            caps,
            polled,
            service_fd,
            rx_frames: info.di_rx_frames,
        })
    }

    /// The shim's counters for this device.
    pub fn shim_counters(&self) -> ShimCounters {
        self.core.enter().ctx.with(|st| st.counters)
    }
}

impl Driver for LegacyDriver {
    fn name(&self) -> &str {
        PREFIX
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    fn concurrency(&self) -> Concurrency {
        Concurrency::Serialized
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn start(&mut self) -> Result<Queues, DriverError> {
        let mut core = self.core.enter();
        if core.started {
            return Err(DriverError::Device(format!(
                "{}: already started",
                self.ifname
            )));
        }
        let (start, dev) = (core.funcs.lf_start, core.dev);
        let Some(start) = start else {
            return Err(DriverError::Device("no lf_start".into()));
        };
        // SAFETY: v1 start on a stopped device.
        let rc = core.call(|| unsafe { start(dev) });
        if rc != 0 {
            core.driver_errors += 1;
            // The driver may have taken packets before failing.
            core.ctx.with(|st| st.reclaim_all());
            return Err(lg_error(&format!("{}: lf_start", self.lib.name()), rc));
        }
        core.started = true;
        core.strikes = 0;
        core.last_tx_done = core.ctx.with(|st| st.counters.tx_done);
        drop(core);
        Ok(Queues {
            rx: vec![Box::new(LegacyRx {
                core: self.core.clone(),
                polled: self.polled,
                wake_fd: self.core.enter().ctx.with(|st| st.rx_wait_fd()),
            })],
            tx: vec![Box::new(LegacyTx {
                core: self.core.clone(),
            })],
        })
    }

    fn stop(&mut self, queues: Queues) {
        drop(queues);
        self.core.enter().stop_driver();
    }

    fn link(&mut self) -> LinkState {
        let core = self.core.enter();
        let mut l = sys::pktkit_lg_link::default();
        if core.control_raw(sys::PKTKIT_LG_CTL_GET_LINK, (&raw mut l).cast()) != 0 {
            // A driver that cannot say is reported down.
            return LinkState::DOWN;
        }
        LinkState {
            up: l.ll_up != 0,
            speed_mbps: l.ll_speed_mbps,
            full_duplex: l.ll_full_duplex != 0,
        }
    }

    fn control(&mut self, req: &Control) -> Result<(), DriverError> {
        let mut core = self.core.enter();
        let rc = match req {
            Control::SetMtu(mtu) => {
                if !(self.caps.min_mtu..=self.caps.max_mtu).contains(mtu) {
                    return Err(DriverError::Unsupported(format!(
                        "MTU {mtu} outside {}..={}",
                        self.caps.min_mtu, self.caps.max_mtu
                    )));
                }
                let mut v = *mtu;
                core.control_raw(sys::PKTKIT_LG_CTL_SET_MTU, (&raw mut v).cast())
            }
            Control::SetMac(mac) => {
                let mut m = *mac;
                let rc = core.control_raw(sys::PKTKIT_LG_CTL_SET_MAC, m.as_mut_ptr().cast());
                if rc == 0 {
                    self.mac = *mac;
                }
                rc
            }
            Control::SetPromisc(on) => {
                let mut v = u32::from(*on);
                core.control_raw(sys::PKTKIT_LG_CTL_SET_PROMISC, (&raw mut v).cast())
            }
            Control::SetAllMulti(on) => {
                let mut v = u32::from(*on);
                core.control_raw(sys::PKTKIT_LG_CTL_SET_ALLMULTI, (&raw mut v).cast())
            }
            Control::SetMulticast(list) => {
                let mut m = sys::pktkit_lg_mcast {
                    lm_count: list.len() as u32,
                    lm_reserved: 0,
                    lm_addrs: list.as_ptr(),
                };
                core.control_raw(sys::PKTKIT_LG_CTL_SET_MULTICAST, (&raw mut m).cast())
            }
        };
        core.settle_call(&format!("{}: {req:?}", self.lib.name()), rc)
    }

    fn counters(&self) -> DeviceCounters {
        let core = self.core.enter();
        let c = core.ctx.with(|st| st.counters);
        let stats = core.stats().unwrap_or_default();
        let packets = c.rx_zero_copy + c.rx_copies;
        let extra = vec![
            ("rx_zero_copy".to_owned(), c.rx_zero_copy),
            ("rx_copies".to_owned(), c.rx_copies),
            (
                "rx_copies_per_million".to_owned(),
                c.rx_copies.saturating_mul(1_000_000) / packets.max(1),
            ),
            ("tx_zero_copy".to_owned(), c.tx_zero_copy),
            ("tx_copies".to_owned(), c.tx_copies),
            ("tx_done".to_owned(), c.tx_done),
            ("tx_busy".to_owned(), c.tx_busy),
            ("tx_timeouts".to_owned(), c.tx_timeouts),
            ("rx_ring_drops".to_owned(), c.rx_ring_drops),
            ("pkt_alloc_failures".to_owned(), c.pkt_alloc_failures),
            ("reclaimed".to_owned(), c.reclaimed),
            ("bad_packets".to_owned(), c.bad_packets),
            ("bad_calls".to_owned(), c.bad_calls),
            ("io_errors".to_owned(), c.io_errors),
            ("driver_errors".to_owned(), core.driver_errors),
            ("rx_upcalls".to_owned(), c.rx_upcalls),
            ("rx_burst_upcalls".to_owned(), c.rx_burst_upcalls),
            ("tx_calls".to_owned(), c.tx_calls),
            ("tx_burst_calls".to_owned(), c.tx_burst_calls),
            ("rx_desc_upcalls".to_owned(), c.rx_desc_upcalls),
            ("tx_desc_calls".to_owned(), c.tx_desc_calls),
            ("overlapping_entries".to_owned(), self.core.overlaps()),
            ("drv_ipackets".to_owned(), stats.st_ipackets),
            ("drv_opackets".to_owned(), stats.st_opackets),
            ("drv_ierrors".to_owned(), stats.st_ierrors),
            ("drv_oerrors".to_owned(), stats.st_oerrors),
        ];
        DeviceCounters {
            collisions: stats.st_collisions,
            rx_no_buffer: c.pkt_alloc_failures + stats.st_rx_nobuf,
            extra,
        }
    }

    fn service_fd(&self) -> Option<RawFd> {
        Some(self.service_fd)
    }

    fn service_interval(&self) -> Option<Duration> {
        Some(WATCHDOG)
    }

    fn service(&mut self) -> Service {
        let mut core = self.core.enter();
        core.run_callouts();
        // The transmit watchdog: lent transmits and no completion for
        // WATCHDOG_STRIKES looks in a row is a stalled driver.
        let (lent, done) = core.ctx.with(|st| (st.tx_lent, st.counters.tx_done));
        let mut needs_reset = false;
        if core.started && lent > 0 && done == core.last_tx_done {
            core.strikes += 1;
            if core.strikes >= WATCHDOG_STRIKES {
                core.strikes = 0;
                core.ctx.with(|st| st.counters.tx_timeouts += 1);
                log::warn!(
                    "{}: {} completed no transmit in {}s with {lent} lent: asking for a reset",
                    self.ifname,
                    self.lib.name(),
                    WATCHDOG.as_secs() * WATCHDOG_STRIKES as u64
                );
                needs_reset = true;
            }
        } else {
            core.strikes = 0;
        }
        core.last_tx_done = done;
        let link_changed = core.ctx.with(|st| std::mem::take(&mut st.link_changed));
        Service {
            link_changed,
            needs_reset,
        }
    }

    /// `lf_reset` (ABI 1.2) on the stopped device: the driver resets the
    /// chip and reprograms it, keeping its settings; `start` follows.
    fn reset(&mut self) -> Result<(), DriverError> {
        let mut core = self.core.enter();
        let Some(reset) = core.funcs.lf_reset else {
            let (major, minor) = self.lib.abi();
            return Err(DriverError::Unsupported(format!(
                "{}: no lf_reset (driver built for legacy ABI {major}.{minor}; reset is 1.2)",
                self.lib.name()
            )));
        };
        if core.started {
            return Err(DriverError::Device(format!(
                "{}: reset while started (stop first)",
                self.ifname
            )));
        }
        let dev = core.dev;
        // SAFETY: a 1.2 reset on a stopped device (nothing lent: stop
        // reclaimed it), read from a table of a driver of minor >= 2.
        let rc = core.call(|| unsafe { reset(dev) });
        // A driver may have freed or taken packets while resetting.
        core.ctx.with(|st| st.reclaim_all());
        core.settle_call(&format!("{}: lf_reset", self.lib.name()), rc)
    }

    fn inject_fault(&mut self, fault: Fault) -> Result<(), DriverError> {
        // The legacy ABI has no fault-injection call; say why it could not
        // apply anyway when the device does no DMA at all (the NE2000).
        let dma = self.core.enter().ctx.with(|st| st.has_dma());
        Err(DriverError::Unsupported(if dma {
            format!(
                "{}: the legacy ABI has no fault injection ({fault:?})",
                self.lib.name()
            )
        } else {
            format!(
                "{}: no bus-master DMA to fault: the driver allocated no DMA memory \
                 and moves every frame by programmed I/O ({fault:?})",
                self.lib.name()
            )
        }))
    }

    fn rx_ring_frames(&self) -> Option<u32> {
        // `di_rx_frames`: the device's own receive buffering, 0 unknown.
        (self.rx_frames > 0).then_some(self.rx_frames)
    }

    fn describe(&self) -> Vec<(String, String)> {
        let core = self.core.enter();
        let (major, minor) = self.lib.abi();
        let c = core.ctx.with(|st| st.counters);
        let rx = c.rx_zero_copy + c.rx_copies;
        let mut v = vec![
            ("legacy driver".into(), self.lib.name().to_owned()),
            ("library".into(), self.lib.path().display().to_string()),
            ("abi".into(), format!("{major}.{minor}")),
            (
                "transmit".into(),
                if core.funcs.lf_transmit_desc.is_some() {
                    format!("lf_transmit_desc (up to {TX_BURST})")
                } else if core.funcs.lf_transmit_burst.is_some() {
                    format!("lf_transmit_burst (up to {TX_BURST})")
                } else {
                    "lf_transmit per packet".into()
                },
            ),
            (
                "rx copies per packet".into(),
                format!("{:.3}", c.rx_copies as f64 / rx.max(1) as f64),
            ),
            (
                "tx copies per packet".into(),
                format!(
                    "{:.3}",
                    c.tx_copies as f64 / (c.tx_zero_copy + c.tx_copies).max(1) as f64
                ),
            ),
            ("slots".into(), SLOTS.to_string()),
        ];
        if self.rx_frames > 0 {
            // The device's own receive buffering, e.g. the NE2000's ring:
            // what a sender may have in flight towards it.
            v.push(("ring entries".into(), self.rx_frames.to_string()));
        }
        v.extend(core.ctx.with(|st| st.pci_facts()));
        v
    }
}

/// The receive queue: drives `lf_poll` (polled drivers) and drains what
/// the driver's up-calls queued.
struct LegacyRx {
    core: Arc<Shared>,
    polled: bool,
    wake_fd: RawFd,
}

impl RxQueue for LegacyRx {
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let before = batch.len();
        let core = self.core.enter();
        if !core.started {
            return 0;
        }
        if !self.polled {
            // Interrupt-driven: the driver receives in its handler.
            core.run_callouts();
        }
        core.ctx.with(|st| st.drain_rx(batch));
        if self.polled && batch.room() > 0 {
            if let Some(poll) = core.funcs.lf_poll {
                let budget = batch.room() as u32;
                let dev = core.dev;
                let target: *mut PacketBatch = batch;
                core.ctx.with(|st| st.set_rx_target(target));
                // SAFETY: v1 poll on a started device; up-calls go into
                // `batch` through rx_target, which is cleared right after.
                core.call(|| unsafe { poll(dev, budget) });
                core.ctx.with(|st| {
                    st.set_rx_target(std::ptr::null_mut());
                    st.drain_rx(batch);
                    st.flush_frees();
                });
            }
        }
        batch.len() - before
    }

    fn counters(&self) -> QueueCounters {
        // Not entering: see the module doc (as of the last entry's end).
        self.core.published.rx()
    }

    fn wait_fd(&self) -> Option<RawFd> {
        // A polled driver has nothing to wait on (like the native null).
        (!self.polled).then_some(self.wake_fd)
    }

    fn arm(&mut self) -> bool {
        self.core.enter().ctx.with(|st| st.arm_rx())
    }

    fn disarm(&mut self) {
        self.core.enter().ctx.with(|st| st.disarm_rx());
    }
}

/// The transmit queue: lends each packet to `lf_transmit` without copying.
struct LegacyTx {
    core: Arc<Shared>,
}

impl TxQueue for LegacyTx {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let mut core = self.core.enter();
        if !core.started {
            return 0;
        }
        let taken = core.transmit(batch);
        core.ctx.with(|st| st.flush_frees());
        taken
    }

    fn counters(&self) -> QueueCounters {
        // Not entering: see the module doc (as of the last entry's end).
        self.core.published.tx()
    }

    fn reclaim(&mut self) {
        self.core.enter().ctx.with(|st| st.flush_frees());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn fake_reset(_: *mut sys::pktkit_lg_dev) -> i32 {
        0
    }

    unsafe extern "C" fn fake_desc(
        _: *mut sys::pktkit_lg_dev,
        _: *const sys::pktkit_lg_desc,
        _: u32,
    ) -> i32 {
        0
    }

    unsafe extern "C" fn fake_burst(
        _: *mut sys::pktkit_lg_dev,
        _: *const *mut sys::pktkit_lg_packet,
        _: u32,
    ) -> i32 {
        0
    }

    /// A driver's table is read only as far as its minor defines it: what
    /// lies beyond (another object's bytes, in a real 1.0 or 1.1 driver)
    /// is never taken for a function.
    #[test]
    fn the_function_table_is_read_as_far_as_the_minor() {
        let full = sys::pktkit_lg_funcs {
            lf_transmit_burst: Some(fake_burst),
            lf_reset: Some(fake_reset),
            lf_transmit_desc: Some(fake_desc),
            ..Default::default()
        };
        // SAFETY: `full` is a whole table, longer than any prefix read.
        let (v0, v1, v2, v3) = unsafe {
            (
                read_funcs(&full, 0),
                read_funcs(&full, 1),
                read_funcs(&full, 2),
                read_funcs(&full, 3),
            )
        };
        assert!(v0.lf_transmit_burst.is_none() && v0.lf_reset.is_none());
        assert!(v1.lf_transmit_burst.is_some() && v1.lf_reset.is_none());
        assert!(v2.lf_transmit_burst.is_some() && v2.lf_reset.is_some());
        assert!(v2.lf_transmit_desc.is_none());
        assert!(v3.lf_reset.is_some() && v3.lf_transmit_desc.is_some());
    }
}
