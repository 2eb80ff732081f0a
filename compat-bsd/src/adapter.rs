//! The adapter: an attached NetBSD C driver as a [`pktkit_native::Driver`].
//!
//! | contract | KPI |
//! |---|---|
//! | `create` | `ca_match` then `ca_attach` with a `pci_attach_args` (PCI) or no arguments (pseudo-device) |
//! | `start` / `stop` | `SIOCSIFFLAGS` with `IFF_UP` set / cleared (`if_init` / `if_stop` through `ether_ioctl`) |
//! | `tx_burst` | packets appended to `if_snd` (only as many as `ifq_maxlen` leaves room for), then `if_start` |
//! | `rx_burst` | packets the driver gave `if_percpuq_enqueue`; when none wait, a pseudo-device's poll handler |
//! | `service_fd` / `service` | one epoll set of the interrupt eventfds, the callout timerfd and the softint eventfd (which workqueue(9) signals too); `service` runs the interrupt handlers, due callouts, softints, queued works and deferred starts |
//! | `tunables` / `set_tunable` | the leaves of the device's sysctl(9) tree ([`crate::sysctl`]), read and set through their handler or variable under the driver's lock |
//! | `control` | `SIOCSIFMTU`, `SIOCSIFFLAGS` (`IFF_PROMISC`), `SIOCADDMULTI`/`SIOCDELMULTI` (diffed against the last list), a multicast range for all-multicast |
//! | `link` | `if_link_state_change` and `if_baudrate`, duplex from `SIOCGIFMEDIA` |
//! | `inject_fault` | `if_stop`, the maps the device writes into pointed at the fault IOVA ([`crate::fault`]), `if_init`; `stop` restores them |
//!
//! Concurrency: without `IFEF_MPSAFE` the driver reports
//! [`Concurrency::Serialized`], and every call above happens inside the
//! runtime's driver lock. With it, the driver reports `MpSafe` and its
//! kmutexes protect it; callouts, softints and interrupt handlers it did not
//! mark MP-safe then run under a per-device giant lock.

use std::ffi::{c_int, c_void, CString};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pktkit_native::device::{IrqKind, PciAddress};
use pktkit_native::driver::CreateFn;
use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError,
    DriverFactory, DriverKind, Fault, LinkState, OptionSpec, PacketBatch, QueueCounters, Queues,
    RxQueue, Service, Tunable, TxQueue,
};

use crate::ctx::{self, lock, DevCtx, Entered};
use crate::sys;

/// A C driver's `struct cfattach` (the `name_ca` that `CFATTACH_DECL_NEW`
/// defines), as a static the Rust side can hold.
#[derive(Clone, Copy)]
pub struct CfAttach(pub *const sys::cfattach);

// SAFETY: a cfattach is a constant table of function pointers and a name,
// never written after the C program is loaded.
unsafe impl Sync for CfAttach {}
// SAFETY: as for Sync.
unsafe impl Send for CfAttach {}

/// Which bus a ported driver attaches to.
#[derive(Clone, Copy, Debug)]
pub enum Bus {
    /// A PCI function named by the `pci=BDF` option; `ids` lists the
    /// `(vendor, device)` pairs to try the driver's match function on
    /// (empty: let match decide alone).
    Pci {
        /// Candidate ids.
        ids: &'static [(u16, u16)],
    },
    /// A pseudo-device: attached with no arguments.
    Pseudo,
}

/// A ported NetBSD driver, as a ported driver crate describes it.
pub struct PortedDriver {
    /// Driver name for `-d` (e.g. "rtk").
    pub name: &'static str,
    /// Interface name prefix (e.g. "rtk"); the stack adds the unit.
    pub prefix: &'static str,
    /// One line for `pktkit drivers`.
    pub description: &'static str,
    /// The driver's cfattach.
    pub cfattach: CfAttach,
    /// Its bus.
    pub bus: Bus,
    /// Options it accepts (passed to `pktkit_device_getprop_int`).
    pub options: &'static [OptionSpec],
    /// Multicast addresses the hardware filter takes before all-multicast
    /// (hash filters: as many as make sense).
    pub multicast_slots: u32,
}

/// Options every PCI ported driver accepts.
pub const PCI_OPTIONS: &[OptionSpec] = &[OptionSpec {
    key: "pci",
    help: "PCI function to drive, DDDD:BB:DD.F (required)",
    required: true,
}];

impl PortedDriver {
    /// The factory the stack registers; `create` is a plain function of the
    /// ported crate that calls [`PortedDriver::create`] on its static.
    pub const fn factory(&'static self, create: CreateFn) -> DriverFactory {
        DriverFactory {
            name: self.name,
            prefix: self.prefix,
            kind: DriverKind::Ported,
            description: self.description,
            devices: 1,
            options: self.options,
            create,
        }
    }

    /// Attaches one device: match and attach of the C driver.
    pub fn create(&'static self, args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
        Ok(vec![Box::new(self.attach(args)?)])
    }

    fn attach(&'static self, args: &AttachArgs) -> Result<BsdDriver, DriverError> {
        // SAFETY: cfattach points to the driver's static table.
        let ca = unsafe { self.cfattach.0.as_ref() }
            .ok_or_else(|| DriverError::Device(format!("{}: no cfattach", self.name)))?;
        let (Some(matchf), Some(attachf)) = (ca.ca_match, ca.ca_attach) else {
            return Err(DriverError::Device(format!(
                "{}: cfattach lacks match or attach",
                self.name
            )));
        };
        let ctx = Arc::new(
            DevCtx::new(args.pool.clone(), args.owner(0), args.options.clone()).map_err(|e| {
                DriverError::Io {
                    op: "device context".into(),
                    source: e,
                }
            })?,
        );
        ctx.bind_tags();
        let ctxp = Arc::as_ptr(&ctx) as *mut c_void;
        let ifname = args
            .ifnames
            .first()
            .cloned()
            .unwrap_or_else(|| format!("{}0", self.prefix));
        let mut mem = CMem::new(self.name, &ifname, ca, ctxp)?;

        // SAFETY: pa is plain data; every pointer set below lives in ctx or mem.
        let pa = unsafe { &mut *mem.pa };
        pa.pa_iot = ctx.iot.get();
        pa.pa_memt = ctx.memt.get();
        pa.pa_dmat = ctx.dmat.get();
        pa.pa_dmat64 = ctx.dmat.get();
        pa.pa_pc = ctxp.cast();
        pa.pa_tag = ctxp;
        pa.pa_intrtag = ctxp;
        pa.pa_flags = (sys::PCI_FLAGS_IO_OKAY
            | sys::PCI_FLAGS_MEM_OKAY
            | sys::PCI_FLAGS_MSI_OKAY
            | sys::PCI_FLAGS_MSIX_OKAY) as c_int;
        let mut addr = None;
        if let Bus::Pci { ids } = self.bus {
            let dev = args.open_pci()?;
            let cfg = |off: u16| {
                dev.config_read(off, 4)
                    .map_err(|e| DriverError::Device(format!("config read {off:#x}: {e}")))
            };
            let id = cfg(0)?;
            let (vendor, device) = ((id & 0xffff) as u16, (id >> 16) as u16);
            if !ids.is_empty() && !ids.contains(&(vendor, device)) {
                return Err(DriverError::NoDevice(format!(
                    "{}: {vendor:04x}:{device:04x} is not a device {} drives",
                    dev.address(),
                    self.name
                )));
            }
            pa.pa_id = id;
            pa.pa_class = cfg(0x08)?;
            pa.pa_subsys = cfg(0x2c)?;
            let intr = cfg(0x3c)?;
            pa.pa_intrline = intr & 0xff;
            pa.pa_intrpin = (intr >> 8) & 0xff;
            pa.pa_rawintrpin = pa.pa_intrpin;
            let a = dev.address();
            pa.pa_bus = a.bus.into();
            pa.pa_device = a.device.into();
            pa.pa_function = a.function.into();
            addr = Some(a);
            *lock(&ctx.pci) = Some(dev);
        }

        let entered = Entered::new(&ctx);
        let cf = ptr::addr_of_mut!(mem.dev_mut().dv_cfdata);
        // SAFETY: the driver's match and attach with a device, its cfdata and
        // attach arguments that live in mem for the life of the driver.
        let matched = unsafe { matchf(ptr::null_mut(), cf, mem.pa.cast()) };
        if matched == 0 {
            return Err(DriverError::NoDevice(format!(
                "{}: match refused the device",
                self.name
            )));
        }
        // SAFETY: as above.
        unsafe { attachf(ptr::null_mut(), mem.dev, mem.pa.cast()) };
        drop(entered);
        let ifp = ctx.ifp.get();
        if ifp.is_null() {
            crate::pci::release_irqs(&ctx);
            return Err(DriverError::Device(format!(
                "{}: attach failed (no interface attached; see the log)",
                self.name
            )));
        }
        mem.attached = true;
        // SAFETY: ifp is the driver's attached ifnet.
        let mpsafe = unsafe { (*ifp).if_extflags } & sys::IFEF_MPSAFE as c_int != 0;
        ctx.mpsafe.set(mpsafe);
        ctx.rx.set_locked(mpsafe);
        ctx.poll.set(lock(&ctx.polls).first().copied());
        let mem = Arc::new(mem);
        Ok(BsdDriver {
            spec: self,
            ctx,
            mem,
            ifp,
            addr,
            multicast: Vec::new(),
            allmulti: false,
        })
    }
}

/// The C-side allocations of one device: its `struct device`, softc and
/// attach arguments. Freed when the driver and every queue are gone.
struct CMem {
    dev: *mut sys::device,
    pa: *mut sys::pci_attach_args,
    _name: CString,
    attached: bool,
}

// SAFETY: plain heap allocations, accessed under the driver's concurrency
// rules like the rest of the C state.
unsafe impl Send for CMem {}
// SAFETY: as for Send.
unsafe impl Sync for CMem {}

impl CMem {
    fn new(
        name: &str,
        ifname: &str,
        ca: &sys::cfattach,
        ctx: *mut c_void,
    ) -> Result<CMem, DriverError> {
        let cname =
            CString::new(name).map_err(|_| DriverError::Device("driver name has a NUL".into()))?;
        let mut dev: Box<sys::device> = Box::default();
        let n = ifname.len().min(dev.dv_xname.len() - 1);
        for (d, s) in dev.dv_xname.iter_mut().zip(&ifname.as_bytes()[..n]) {
            *d = *s as _;
        }
        let digits = ifname.trim_start_matches(|c: char| !c.is_ascii_digit());
        dev.dv_unit = digits.parse().unwrap_or(0);
        dev.dv_flags = sys::DVF_ACTIVE as c_int;
        // SAFETY: zeroed storage of the size the driver declared.
        dev.dv_private = unsafe { libc::calloc(1, ca.ca_devsize.max(1)) };
        if dev.dv_private.is_null() {
            return Err(DriverError::Device("no memory for the softc".into()));
        }
        dev.dv_cfattach = ca;
        dev.dv_cfdata.cf_name = cname.as_ptr();
        dev.dv_cfdata.cf_atname = cname.as_ptr();
        dev.dv_cfdata.cf_unit = dev.dv_unit;
        dev.dv_pktkit = ctx;
        let unit = dev.dv_unit;
        let dev = Box::into_raw(dev);
        crate::kern::register_device(name, unit, dev);
        Ok(CMem {
            dev,
            pa: Box::into_raw(Box::default()),
            _name: cname,
            attached: false,
        })
    }

    fn dev_mut(&mut self) -> &mut sys::device {
        // SAFETY: dev is our own allocation.
        unsafe { &mut *self.dev }
    }
}

impl Drop for CMem {
    fn drop(&mut self) {
        crate::kern::unregister_device(self.dev);
        // SAFETY: our own allocations, freed once; the driver has detached
        // (BsdDriver::drop) or never attached.
        unsafe {
            libc::free((*self.dev).dv_private);
            drop(Box::from_raw(self.dev));
            drop(Box::from_raw(self.pa));
        }
    }
}

/// An attached ported driver.
pub struct BsdDriver {
    spec: &'static PortedDriver,
    ctx: Arc<DevCtx>,
    mem: Arc<CMem>,
    ifp: *mut sys::ifnet,
    addr: Option<PciAddress>,
    multicast: Vec<[u8; 6]>,
    allmulti: bool,
}

// SAFETY: ifp points into the softc held by mem; the runtime serializes
// access (or the driver locks itself, when MP-safe).
unsafe impl Send for BsdDriver {}

fn errno(op: &str, e: c_int) -> Result<(), DriverError> {
    if e == 0 {
        return Ok(());
    }
    Err(DriverError::Io {
        op: op.to_owned(),
        source: std::io::Error::from_raw_os_error(e),
    })
}

impl BsdDriver {
    /// Undoes a fault injection's redirection (see [`crate::fault`]).
    fn restore_maps(&self) {
        // SAFETY: maps leave the list when destroyed; the driver is stopped.
        let n = unsafe { lock(&self.ctx.maps).restore() };
        if n > 0 {
            log::info!(
                target: "bsd",
                "{}: {n} DMA segment(s) back at their real addresses",
                self.spec.name
            );
        }
    }

    /// Whether `[iova, iova + len)` overlaps memory mapped for the device:
    /// its own DMA memory or the pool's.
    fn iova_mapped(&self, iova: u64, len: u64) -> bool {
        let end = iova.saturating_add(len);
        let overlaps = |base: u64, n: u64| iova < base.saturating_add(n) && base < end;
        lock(&self.ctx.dma)
            .iter()
            .any(|d| overlaps(d.iova(), d.len() as u64))
            || self
                .ctx
                .pool
                .dma_regions()
                .iter()
                .any(|r| overlaps(r.iova, r.len as u64))
    }

    /// The device's name (`bnull0`), as `device_xname` gives it.
    fn xname(&self) -> String {
        // SAFETY: dev is our own allocation; dv_xname is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*self.mem.dev).dv_xname.as_ptr()) };
        name.to_string_lossy().into_owned()
    }

    fn ifnet(&self) -> &sys::ifnet {
        // SAFETY: the attached ifnet lives as long as mem.
        unsafe { &*self.ifp }
    }

    fn stat(&self, s: u32) -> u64 {
        read_stat(self.ifp, s)
    }
}

/// Runs the device's interrupt handlers: those whose eventfd is in
/// `ready`, or every one when `ready` is `None` (polling: the receive and
/// reclaim paths run the handler as NetBSD's polling mode would, so a
/// driver's rings move even where nobody services its interrupts). An
/// eventfd that had fired is consumed, and INTx unmasked after the handler
/// acknowledged the device. The caller holds an [`Entered`] for `ctx`.
fn run_interrupts(ctx: &DevCtx, ready: Option<&[RawFd]>) -> usize {
    let handlers: Vec<_> = lock(&ctx.irqs)
        .iter()
        .filter(|i| ready.is_none_or(|r| r.contains(&i.fd)))
        .map(|i| (i.fd, i.kind, i.func, i.arg, i.mpsafe))
        .collect();
    let mut ran = 0;
    for (fd, kind, func, arg, mpsafe) in handlers {
        let fired = ctx::drain(fd);
        if let Some(f) = func {
            let _giant = ctx.giant_for(mpsafe);
            // SAFETY: the driver's handler with its argument, inside the
            // driver's entry (the caller holds Entered).
            unsafe { f(arg) };
            ran += 1;
        }
        if fired && kind == IrqKind::Intx {
            if let Some(d) = lock(&ctx.pci).as_ref() {
                if let Err(e) = d.unmask_intx() {
                    log::warn!(target: "bsd", "unmask INTx: {e}");
                }
            }
        }
    }
    ran
}

/// Reads one of an ifnet's `if_stats` (racy by design, like netstat's).
fn read_stat(ifp: *const sys::ifnet, s: u32) -> u64 {
    // SAFETY: ifp is a live attached ifnet; s < IF_NSTATS; a volatile read
    // of an aligned u64 cannot tear on x86-64.
    unsafe { ptr::read_volatile(ptr::addr_of!((*ifp).if_stats[s as usize])) }
}

const IF_IERRORS: u32 = 1;
const IF_OERRORS: u32 = 3;
const IF_COLLISIONS: u32 = 4;
const IF_IMCASTS: u32 = 7;
const IF_IQDROPS: u32 = 9;

impl Driver for BsdDriver {
    // The contract's name is the interface prefix (rtk, bnull).
    #[allow(clippy::misnamed_getters)]
    fn name(&self) -> &str {
        self.spec.prefix
    }

    fn capabilities(&self) -> Capabilities {
        let jumbo = self.ctx.ether.get() && {
            // SAFETY: an Ethernet ifnet is the first member of its ethercom.
            let ec = unsafe { &*self.ifp.cast::<sys::ethercom>() };
            ec.ec_capabilities & sys::ETHERCAP_JUMBO_MTU as c_int != 0
        };
        Capabilities {
            rx_queues: 1,
            tx_queues: 1,
            min_mtu: 68,
            max_mtu: if jumbo { 9000 } else { 1500 },
            multicast_slots: self.spec.multicast_slots,
            ..Capabilities::default()
        }
    }

    fn concurrency(&self) -> Concurrency {
        if self.ctx.mpsafe.get() {
            Concurrency::MpSafe
        } else {
            Concurrency::Serialized
        }
    }

    fn mac(&self) -> [u8; 6] {
        let mut mac = [0; 6];
        let i = self.ifnet();
        if !i.if_sadl.is_null() {
            // SAFETY: if_sadl points at the ifnet's own sockaddr_dl.
            let sdl = unsafe { &*i.if_sadl };
            let off = sdl.sdl_nlen as usize;
            for (k, b) in mac.iter_mut().enumerate() {
                *b = sdl.sdl_data[off + k] as u8;
            }
        }
        mac
    }

    fn start(&mut self) -> Result<Queues, DriverError> {
        {
            let _e = Entered::new(&self.ctx);
            // SAFETY: the driver's attached ifnet, inside its entry.
            let e = unsafe { sys::pktkit_if_set_flags(self.ifp, sys::IFF_UP as c_int, 0) };
            errno(&format!("{}: SIOCSIFFLAGS up", self.spec.name), e)?;
        }
        if self.ifnet().if_flags & sys::IFF_RUNNING as c_int == 0 {
            return Err(DriverError::Device(format!(
                "{}: init did not set IFF_RUNNING",
                self.spec.name
            )));
        }
        let rx = BsdRx {
            ctx: self.ctx.clone(),
            _mem: self.mem.clone(),
            ifp: self.ifp,
            counters: QueueCounters::default(),
        };
        let tx = BsdTx {
            ctx: self.ctx.clone(),
            _mem: self.mem.clone(),
            ifp: self.ifp,
            counters: QueueCounters::default(),
        };
        Ok(Queues {
            rx: vec![Box::new(rx)],
            tx: vec![Box::new(tx)],
        })
    }

    fn stop(&mut self, queues: Queues) {
        drop(queues);
        let _e = Entered::new(&self.ctx);
        // SAFETY: the driver's attached ifnet, inside its entry.
        let e = unsafe { sys::pktkit_if_set_flags(self.ifp, 0, sys::IFF_UP as c_int) };
        if e != 0 {
            log::warn!(target: "bsd", "{}: SIOCSIFFLAGS down: errno {e}", self.spec.name);
        }
        // The chip is stopped: a fault injection's maps get their real
        // addresses back, and the next start programs them.
        self.restore_maps();
        // SAFETY: as above; the queues are gone, so nobody else touches if_snd.
        unsafe { crate::ifnet::purge_snd(self.ifp) };
        self.ctx.rx.purge();
    }

    fn link(&mut self) -> LinkState {
        let i = self.ifnet();
        let state = i.if_link_state;
        if state == sys::LINK_STATE_DOWN as c_int {
            return LinkState::DOWN;
        }
        let (mut st, mut active) = (0, 0);
        let _e = Entered::new(&self.ctx);
        // SAFETY: the driver's ifnet, inside its entry.
        let have_media = unsafe { sys::pktkit_if_media_status(self.ifp, &mut st, &mut active) }
            == 0
            && st & sys::IFM_AVALID as c_int != 0;
        LinkState {
            up: true,
            speed_mbps: (self.ifnet().if_baudrate / 1_000_000) as u32,
            full_duplex: !have_media || active & sys::IFM_FDX as c_int != 0,
        }
    }

    fn control(&mut self, req: &Control) -> Result<(), DriverError> {
        let name = self.spec.name;
        let _e = Entered::new(&self.ctx);
        match req {
            Control::SetMtu(mtu) => {
                // SAFETY: the driver's ifnet, inside its entry.
                let e = unsafe { sys::pktkit_if_set_mtu(self.ifp, *mtu as c_int) };
                errno(&format!("{name}: SIOCSIFMTU {mtu}"), e)
            }
            Control::SetMac(mac) => {
                // SAFETY: if_sadl points at the ifnet's own sockaddr_dl.
                unsafe {
                    let sdl = &mut *(*self.ifp).if_sadl;
                    let off = sdl.sdl_nlen as usize;
                    for (k, b) in mac.iter().enumerate() {
                        sdl.sdl_data[off + k] = *b as _;
                    }
                }
                if self.ifnet().if_flags & sys::IFF_RUNNING as c_int != 0 {
                    // SAFETY: as above; re-init programs the new address.
                    let e = unsafe { crate::ifnet::if_init(self.ifp) };
                    errno(&format!("{name}: re-init for the new address"), e)?;
                }
                Ok(())
            }
            Control::SetPromisc(on) => {
                let (set, clear) = if *on {
                    (sys::IFF_PROMISC, 0)
                } else {
                    (0, sys::IFF_PROMISC)
                };
                // SAFETY: as above.
                let e = unsafe { sys::pktkit_if_set_flags(self.ifp, set as c_int, clear as c_int) };
                errno(&format!("{name}: SIOCSIFFLAGS promisc"), e)
            }
            Control::SetAllMulti(on) => {
                if *on == self.allmulti || !self.ctx.ether.get() {
                    return Ok(());
                }
                // SAFETY: an Ethernet ifnet is the first member of its ethercom.
                let e = unsafe { sys::pktkit_ether_allmulti(self.ifp.cast(), *on) };
                errno(&format!("{name}: all-multicast"), e)?;
                self.allmulti = *on;
                Ok(())
            }
            Control::SetMulticast(list) => {
                let old = std::mem::take(&mut self.multicast);
                let mut result = Ok(());
                for a in old.iter().filter(|a| !list.contains(a)) {
                    // SAFETY: the driver's ifnet, inside its entry.
                    let e =
                        unsafe { sys::pktkit_if_multi(self.ifp, a.as_ptr(), ptr::null(), false) };
                    if e != 0 && result.is_ok() {
                        result = errno(&format!("{name}: SIOCDELMULTI"), e);
                    }
                }
                for a in list.iter().filter(|a| !old.contains(a)) {
                    // SAFETY: as above.
                    let e =
                        unsafe { sys::pktkit_if_multi(self.ifp, a.as_ptr(), ptr::null(), true) };
                    if e != 0 && result.is_ok() {
                        result = errno(&format!("{name}: SIOCADDMULTI"), e);
                    }
                }
                self.multicast.clone_from(list);
                result
            }
        }
    }

    fn counters(&self) -> DeviceCounters {
        let mut extra = crate::kern::evcnts(&self.ctx);
        extra.extend(crate::workqueue::counters(&self.ctx));
        extra.push((
            "rx queue full drops".into(),
            self.ctx.rx.drops.load(Ordering::Relaxed),
        ));
        DeviceCounters {
            collisions: self.stat(IF_COLLISIONS),
            rx_no_buffer: self.stat(IF_IQDROPS),
            extra,
        }
    }

    fn service_fd(&self) -> Option<RawFd> {
        Some(self.ctx.epoll.as_raw_fd())
    }

    /// One tick while the driver has callouts: a busy worker may look at
    /// the service fd only when the interval is due, and callouts are
    /// counted in ticks.
    fn service_interval(&self) -> Option<Duration> {
        (!lock(&self.ctx.callouts).is_empty()).then(|| Duration::from_nanos(crate::kern::TICK_NS))
    }

    fn service(&mut self) -> Service {
        let _e = Entered::new(&self.ctx);
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: polls our epoll set into a live array, without waiting.
        let n = unsafe { libc::epoll_wait(self.ctx.epoll.as_raw_fd(), evs.as_mut_ptr(), 16, 0) };
        let ready: Vec<RawFd> = evs[..n.max(0) as usize]
            .iter()
            .map(|e| e.u64 as RawFd)
            .collect();
        run_interrupts(&self.ctx, Some(&ready));
        crate::kern::run_callouts(&self.ctx);
        ctx::drain(self.ctx.softint_fd.as_raw_fd());
        crate::kern::run_softints(&self.ctx);
        crate::workqueue::run_works(&self.ctx);
        if self.ctx.deferred_start.swap(false, Ordering::AcqRel) {
            if let Some(f) = self.ifnet().if_start {
                // SAFETY: the driver's if_start on its ifnet, inside its entry.
                unsafe { f(self.ifp) };
            }
        }
        self.ctx.kick_rx();
        Service {
            link_changed: self.ctx.link_changed.swap(false, Ordering::AcqRel),
            needs_reset: false,
        }
    }

    /// Function reset for the conformance suite: the function is reset
    /// (FLR or what VFIO offers) and its command register put back; where
    /// the function has no reset, the device's own reset is the driver's
    /// `if_init` (NetBSD drivers reset the chip there). Either way the next
    /// `start` re-programs the chip from scratch.
    fn reset(&mut self) -> Result<(), DriverError> {
        let mut pci = lock(&self.ctx.pci);
        let Some(d) = pci.as_mut() else {
            return Err(DriverError::Unsupported(format!(
                "{}: a pseudo-device has no function to reset",
                self.spec.name
            )));
        };
        let cmd = d
            .config_read(0x04, 2)
            .map_err(|e| DriverError::Device(format!("read command register: {e}")))?;
        match d.reset() {
            Ok(()) => d
                .config_write(0x04, 2, cmd)
                .map_err(|e| DriverError::Device(format!("restore command register: {e}"))),
            // No FLR (QEMU's rtl8139 has none): the device's own reset is
            // the driver's, which NetBSD drivers do first thing in if_init
            // (rtk_init sets CR.RST), and the next start runs it.
            Err(pktkit_native::device::DeviceError::Unsupported(why)) => {
                log::info!(
                    target: "bsd",
                    "{}: no function reset ({why}); the driver's init resets the chip",
                    self.spec.name
                );
                Ok(())
            }
            Err(e) => Err(DriverError::Device(format!("function reset: {e}"))),
        }
    }

    /// [`Fault::RxBufferIova`], while started: the driver is stopped
    /// (`if_stop`), every DMA map the device writes into is pointed at the
    /// address (see [`crate::fault`]: maps loaded with `BUS_DMA_READ` or
    /// synced `BUS_DMASYNC_PREREAD`), and the driver's `if_init` programs
    /// the chip from them, so its next receive DMA goes there. An address
    /// beyond 32 bits is folded to [`crate::fault::FOLDED_FAULT_IOVA`] (the
    /// ported drivers' DMA engines are 32-bit). The next `stop` restores
    /// the maps and `start` re-initialises the chip from the real ones.
    fn inject_fault(&mut self, fault: Fault) -> Result<(), DriverError> {
        let name = self.spec.name;
        let Fault::RxBufferIova(iova) = fault else {
            return Err(DriverError::Unsupported(format!(
                "{name}: fault injection ({fault:?})"
            )));
        };
        if self.ifnet().if_flags & sys::IFF_RUNNING as c_int == 0 {
            return Err(DriverError::Device(format!(
                "{name}: fault injection needs a started device"
            )));
        }
        // SAFETY: maps leave the list when destroyed; nothing else runs in
        // the driver meanwhile (the contract of inject_fault), so no map is
        // being loaded.
        let len = unsafe { lock(&self.ctx.maps).device_written_len() };
        if len == 0 {
            return Err(DriverError::Unsupported(format!(
                "{name}: no loaded DMA map the device writes into"
            )));
        }
        let bad = crate::fault::fault_address(iova, len);
        if self.iova_mapped(bad, len) {
            return Err(DriverError::Device(format!(
                "{name}: {bad:#x}+{len:#x} is mapped for the device; no fault there"
            )));
        }
        let _e = Entered::new(&self.ctx);
        // SAFETY: the driver's ifnet, inside its entry, with none of its
        // queues or service running (inject_fault's contract); stopped, the
        // chip does no DMA and the driver does not read its maps until init.
        let n = unsafe {
            crate::ifnet::if_stop(self.ifp, 0);
            lock(&self.ctx.maps).redirect(bad)
        };
        log::warn!(
            target: "bsd",
            "{name}: {n} DMA map(s) the device writes into point at {bad:#x}{} (fault injection)",
            if bad == iova {
                String::new()
            } else {
                format!(" ({iova:#x} folded below 4 GiB)")
            }
        );
        // SAFETY: as above: init programs the chip from the maps.
        let e = unsafe { crate::ifnet::if_init(self.ifp) };
        if e != 0 {
            // The chip faulted during init (a control area the device reads
            // is among the maps); the next stop + start recovers it.
            log::warn!(target: "bsd", "{name}: init after the redirection: errno {e}");
        }
        Ok(())
    }

    /// The leaves of the driver's sysctl tree, named below its device node
    /// (`hw.<xname>.size` is `size`); values read through the handler or
    /// the bound variable.
    fn tunables(&mut self) -> Vec<Tunable> {
        let _e = Entered::new(&self.ctx);
        let _giant = self.ctx.giant_for(false);
        crate::sysctl::leaves(&self.ctx, &self.xname())
            .into_iter()
            .map(|l| Tunable {
                value: crate::sysctl::read(&self.ctx, &l).unwrap_or_else(|e| format!("<{e}>")),
                name: l.path,
                writable: l.writable,
                description: l.description,
            })
            .collect()
    }

    fn set_tunable(&mut self, name: &str, value: &str) -> Result<(), DriverError> {
        let Some(leaf) = crate::sysctl::leaf(&self.ctx, &self.xname(), name) else {
            return Err(DriverError::Unsupported(format!(
                "{}: no sysctl node '{name}'",
                self.spec.name
            )));
        };
        let bad = |why: String| DriverError::BadOption {
            key: name.to_owned(),
            value: value.to_owned(),
            why,
        };
        let _e = Entered::new(&self.ctx);
        let _giant = self.ctx.giant_for(false);
        crate::sysctl::write(&self.ctx, &leaf, value).map_err(bad)
    }

    fn describe(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("kind".into(), "ported NetBSD driver".into()),
            ("driver".into(), self.spec.name.into()),
            ("mpsafe".into(), self.ctx.mpsafe.get().to_string()),
        ];
        if let Some(a) = self.addr {
            v.push(("pci".into(), a.to_string()));
        }
        if let Some(d) = lock(&self.ctx.pci).as_ref() {
            v.extend(d.access());
        }
        if let Some(k) = *lock(&self.ctx.irq_kind) {
            v.push((
                "interrupts".into(),
                format!("{k:?} x{}", lock(&self.ctx.irq_fds).len()),
            ));
        }
        v
    }
}

impl Drop for BsdDriver {
    fn drop(&mut self) {
        if !self.mem.attached {
            return;
        }
        let _e = Entered::new(&self.ctx);
        self.restore_maps();
        let dev = self.mem.dev;
        // SAFETY: dev/ifp are the driver's, still attached; detach runs once.
        unsafe {
            let ca = (*dev).dv_cfattach;
            match ca.as_ref().and_then(|c| c.ca_detach) {
                Some(detach) => {
                    let e = detach(dev, sys::DETACH_FORCE as c_int);
                    if e != 0 {
                        log::warn!(target: "bsd", "{}: detach: errno {e}", self.spec.name);
                    }
                }
                None => {
                    crate::ifnet::if_stop(self.ifp, 1);
                    if self.ctx.ether.get() {
                        sys::ether_ifdetach(self.ifp);
                    }
                    crate::ifnet::if_detach(self.ifp);
                }
            }
            crate::ifnet::purge_snd(self.ifp);
        }
        self.ctx.rx.purge();
        crate::pci::release_irqs(&self.ctx);
        lock(&self.ctx.callouts).clear();
        lock(&self.ctx.softints).clear();
        crate::workqueue::forget_all(&self.ctx);
        crate::sysctl::forget_all(&self.ctx, &self.xname());
        lock(&self.ctx.dma).clear();
        *lock(&self.ctx.pci) = None;
    }
}

/// The receive queue of a ported driver.
pub struct BsdRx {
    ctx: Arc<DevCtx>,
    _mem: Arc<CMem>,
    ifp: *mut sys::ifnet,
    counters: QueueCounters,
}

// SAFETY: see BsdDriver.
unsafe impl Send for BsdRx {}

impl RxQueue for BsdRx {
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let room = batch.room();
        if room == 0 {
            return 0;
        }
        let ring = &self.ctx.rx;
        let mut bytes = 0u64;
        // SAFETY: pop_into writes packets the ring owned exclusively.
        let mut n = unsafe {
            batch.fill_raw(|slots| {
                let n = ring.pop_into(&mut slots[..room]);
                for &m in &slots[..n] {
                    // m is a live packet just taken from the ring.
                    bytes += (*m).M_pkthdr.len as u64;
                }
                n
            })
        };
        if n == 0 && self.ctx.poll.get().is_none() && !lock(&self.ctx.irqs).is_empty() {
            let _e = Entered::new(&self.ctx);
            run_interrupts(&self.ctx, None);
            // SAFETY: as above.
            n = unsafe {
                batch.fill_raw(|slots| {
                    let n = ring.pop_into(&mut slots[..room]);
                    for &m in &slots[..n] {
                        // m is a live packet just taken from the ring.
                        bytes += (*m).M_pkthdr.len as u64;
                    }
                    n
                })
            };
        }
        if n == 0 {
            if let Some(p) = self.ctx.poll.get() {
                let _e = Entered::new(&self.ctx);
                let run = |room: usize| {
                    // SAFETY: the driver's poll handler with its argument.
                    unsafe { (p.func)(p.arg, room as c_int) };
                };
                // Packets the handler enqueues go straight into the batch.
                // SAFETY: poll_into stores only packets the driver gave
                // away with if_percpuq_enqueue, and returns their count.
                n = unsafe { batch.fill_raw(|slots| ctx::poll_into(ring, slots, &mut bytes, run)) };
            }
        }
        self.counters.packets += n as u64;
        self.counters.bytes += bytes;
        n
    }

    fn counters(&self) -> QueueCounters {
        let mut c = self.counters;
        c.errors += read_stat(self.ifp, IF_IERRORS);
        c.multicast += read_stat(self.ifp, IF_IMCASTS);
        c.drops += read_stat(self.ifp, IF_IQDROPS) + self.ctx.rx.drops.load(Ordering::Relaxed);
        c
    }

    fn wait_fd(&self) -> Option<RawFd> {
        // A pseudo-device with a poll handler is polled; a device with
        // interrupts wakes the worker through its interrupt eventfds (or
        // rx_fd, when a service pass left packets in the ring).
        if self.ctx.poll.get().is_some() {
            None
        } else {
            Some(self.ctx.rx_epoll.as_raw_fd())
        }
    }

    fn arm(&mut self) -> bool {
        self.ctx.rx_armed.store(true, Ordering::Release);
        self.ctx.rx.is_empty()
    }

    fn disarm(&mut self) {
        self.ctx.rx_armed.store(false, Ordering::Release);
        ctx::drain(self.ctx.rx_fd.as_raw_fd());
    }
}

/// The transmit queue of a ported driver.
pub struct BsdTx {
    ctx: Arc<DevCtx>,
    _mem: Arc<CMem>,
    ifp: *mut sys::ifnet,
    counters: QueueCounters,
}

// SAFETY: see BsdDriver.
unsafe impl Send for BsdTx {}

impl BsdTx {
    fn ifp_snd(&self) -> *mut sys::ifqueue {
        // SAFETY: only the address of the attached ifnet's queue is taken.
        unsafe { ptr::addr_of_mut!((*self.ifp).if_snd) }
    }

    fn start(&self) {
        // SAFETY: the attached ifnet.
        if let Some(f) = unsafe { (*self.ifp).if_start } {
            let _e = Entered::new(&self.ctx);
            // SAFETY: the driver's if_start on its ifnet, inside its entry.
            unsafe { f(self.ifp) };
        }
    }

    /// The burst through the driver's `if_transmit`, a packet at a time:
    /// it takes every packet (a refusal means it freed the packet, which
    /// is counted as a drop), as NetBSD's stack hands packets to it.
    fn transmit(
        &mut self,
        xmit: unsafe extern "C" fn(*mut sys::ifnet, *mut sys::mbuf) -> c_int,
        batch: &mut PacketBatch,
    ) -> usize {
        let want = batch.len();
        let _e = Entered::new(&self.ctx);
        let mut refused = 0u64;
        for &m in batch.take_front_raw(want) {
            // SAFETY: m is a packet the stack gives up; if_transmit owns it
            // from here, inside the driver's entry.
            unsafe {
                let len = (*m).M_pkthdr.len as u64;
                if xmit(self.ifp, m) == 0 {
                    self.counters.bytes += len;
                } else {
                    refused += 1;
                }
            }
        }
        self.counters.packets += want as u64 - refused;
        self.counters.drops += refused;
        want
    }
}

impl TxQueue for BsdTx {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let want = batch.len();
        if want == 0 {
            return 0;
        }
        // SAFETY: the attached ifnet; if_transmit is set once at attach.
        if let Some(xmit) = unsafe { (*self.ifp).if_transmit } {
            return self.transmit(xmit, batch);
        }
        let q = self.ifp_snd();
        // SAFETY: if_snd belongs to the attached ifnet; its lock (MP-safe
        // drivers) or the runtime's driver lock makes us its only user.
        let taken = unsafe {
            let l = (*q).ifq_lock;
            if !l.is_null() {
                crate::kern::mutex_enter(l);
            }
            let room = ((*q).ifq_maxlen - (*q).ifq_len).max(0) as usize;
            let n = room.min(want);
            if n > 0 {
                // Link the burst first, then splice it onto the queue once.
                let pkts = batch.take_front_raw(n);
                let mut bytes = 0u64;
                for (i, &m) in pkts.iter().enumerate() {
                    bytes += (*m).M_pkthdr.len as u64;
                    (*m).m_hdr.mh_nextpkt = pkts.get(i + 1).copied().unwrap_or(ptr::null_mut());
                }
                if (*q).ifq_tail.is_null() {
                    (*q).ifq_head = pkts[0];
                } else {
                    (*(*q).ifq_tail).m_hdr.mh_nextpkt = pkts[0];
                }
                (*q).ifq_tail = pkts[n - 1];
                (*q).ifq_len += n as c_int;
                self.counters.bytes += bytes;
            }
            if !l.is_null() {
                crate::kern::mutex_exit(l);
            }
            n
        };
        self.counters.packets += taken as u64;
        if taken < want {
            self.counters.ring_full += 1;
        }
        if taken > 0 || read_len(self.ifp) > 0 {
            self.start();
        }
        taken
    }

    fn counters(&self) -> QueueCounters {
        let mut c = self.counters;
        c.errors += read_stat(self.ifp, IF_OERRORS);
        // SAFETY: a racy read of a counter of the attached ifnet.
        c.drops += unsafe { ptr::read_volatile(ptr::addr_of!((*self.ifp).if_snd.ifq_drops)) };
        c
    }

    fn reclaim(&mut self) {
        // Transmit completions are the interrupt handler's work: poll it.
        if !lock(&self.ctx.irqs).is_empty() {
            let _e = Entered::new(&self.ctx);
            run_interrupts(&self.ctx, None);
        }
        if read_len(self.ifp) > 0 {
            self.start();
        }
    }
}

fn read_len(ifp: *const sys::ifnet) -> c_int {
    // SAFETY: a racy read of the attached ifnet's queue length.
    unsafe { ptr::read_volatile(ptr::addr_of!((*ifp).if_snd.ifq_len)) }
}
