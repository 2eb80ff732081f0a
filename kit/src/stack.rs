//! The stack: one pool, one runtime, the attached interfaces, and the tasks
//! that move their packets.
//!
//! Attaching a driver (`-d SPEC`) finds its factory in the registry, checks
//! the options, names the devices (prefix + unit), registers a pool owner per
//! interface and wraps each device in an [`Interface`] whose [`DriverLock`]
//! enforces its concurrency class. Bringing an interface up starts the driver
//! and places tasks on the runtime: a service task for its slow path and, for
//! the protocol layer, the interface's queue 0 joins the protocol task
//! (see [`crate::proto`]). Forwarding tasks (`Stack::forward`) move packets
//! from one interface's queues to another's, one task per queue pair spread
//! over the workers.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pktkit_native::options::DriverSpec;
use pktkit_native::pool::HugePages;
use pktkit_native::{AttachArgs, DriverError, PacketBatch, Pool, PoolConfig, PoolError, BATCH_MAX};

use crate::bpf::Direction;
use crate::fw::Firewall;
use crate::iface::{IfEvent, Interface, SharedRx, SharedTx};
use crate::pfil::{HookCache, IfInfo, Pfil, Verdict};
use crate::proto::{IpAddress, IpCidr, NetStack, Port, ProtoError, Service};
use crate::registry;
use crate::runtime::{
    lock, DriverLock, Fallback, LockPolicy, Progress, Runtime, RuntimeError, Task, TaskId,
};

/// How to build a stack.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// Worker threads.
    pub workers: usize,
    /// Serialized-driver rule.
    pub fallback: Fallback,
    /// Buffers in the stack's pool.
    pub pool_buffers: usize,
    /// Huge page policy of the pool.
    pub hugepages: HugePages,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            workers: 2,
            fallback: Fallback::PerDriver,
            pool_buffers: 16384,
            hugepages: HugePages::Auto,
        }
    }
}

/// Why a stack operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// No driver of that name.
    #[error("unknown driver '{name}' (available: {available})")]
    UnknownDriver {
        /// Name asked for.
        name: String,
        /// The drivers there are.
        available: String,
    },
    /// The driver refused its options or could not attach.
    #[error("driver {driver}: {source}")]
    Driver {
        /// Driver name.
        driver: String,
        /// What it said.
        source: DriverError,
    },
    /// No interface of that name.
    #[error("no interface '{0}'")]
    NoInterface(String),
    /// An interface operation failed.
    #[error(transparent)]
    Interface(#[from] crate::iface::IfError),
    /// The pool could not be made or an owner registered.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The protocol layer refused.
    #[error("{0}")]
    Proto(#[from] ProtoError),
    /// The interface still holds buffers after detach (a driver leak).
    #[error("{ifname}: {held} buffers still held after detach")]
    Leak {
        /// Interface name.
        ifname: String,
        /// Buffers not returned.
        held: i64,
    },
}

struct IfEntry {
    iface: Arc<Interface>,
    tasks: Vec<TaskId>,
}

struct Inner {
    ifaces: Vec<IfEntry>,
    units: HashMap<String, u32>,
    next_index: u32,
}

/// The protocol layer and the interfaces it runs on; shared by the protocol
/// task (which polls it) and the control path (which configures it).
pub struct ProtoShared {
    /// The smoltcp-based stack.
    pub net: NetStack,
    ports: Vec<(u32, IfPort)>,
}

/// A running stack.
pub struct Stack {
    rt: Runtime,
    pool: Pool,
    policy: Arc<LockPolicy>,
    inner: Mutex<Inner>,
    /// Subscribers to every interface's events; shared with the service
    /// tasks so subscribers that come later hear them too.
    events: Arc<Mutex<Vec<std::sync::mpsc::Sender<IfEvent>>>>,
    proto: Arc<Mutex<ProtoShared>>,
    proto_task: Mutex<Option<TaskId>>,
    /// Multicast groups programmed for the protocol layer, per interface index.
    proto_groups: Mutex<HashMap<u32, Vec<[u8; 6]>>>,
    pci: Arc<crate::pci::VfioOpener>,
    /// Packet filter hooks of every interface.
    pfil: Arc<Pfil>,
    /// The built-in stateless filter (a client of `pfil`).
    fw: Firewall,
}

impl Stack {
    /// Makes the pool and starts the runtime; no interface yet.
    pub fn new(cfg: &StackConfig) -> Result<Stack, StackError> {
        let pool = Pool::new(&PoolConfig {
            name: "stack".into(),
            buffers: cfg.pool_buffers,
            hugepages: cfg.hugepages,
        })?;
        let pfil = Arc::new(Pfil::new());
        Ok(Stack {
            fw: Firewall::new(pfil.clone()),
            pfil,
            rt: Runtime::new(cfg.workers)?,
            pool: pool.clone(),
            policy: LockPolicy::new(cfg.fallback),
            inner: Mutex::new(Inner {
                ifaces: Vec::new(),
                units: HashMap::new(),
                next_index: 1,
            }),
            events: Arc::new(Mutex::new(Vec::new())),
            proto: Arc::new(Mutex::new(ProtoShared {
                net: NetStack::new(),
                ports: Vec::new(),
            })),
            proto_task: Mutex::new(None),
            proto_groups: Mutex::new(HashMap::new()),
            pci: Arc::new(crate::pci::VfioOpener::new(pool.clone())),
        })
    }

    /// The packet filter hooks ([`crate::pfil`]): add and remove them at
    /// any time.
    pub fn pfil(&self) -> &Arc<Pfil> {
        &self.pfil
    }

    /// The built-in stateless filter ([`crate::fw`]).
    pub fn firewall(&self) -> &Firewall {
        &self.fw
    }

    /// Runs `f` on the protocol layer (e.g. to open a client socket). The
    /// protocol task is paused meanwhile; keep it short.
    pub fn with_proto<R>(&self, f: impl FnOnce(&mut NetStack) -> R) -> R {
        f(&mut lock(&self.proto).net)
    }

    /// Has the protocol task polled soon. A caller that queued data or a
    /// request through [`Stack::with_proto`] calls this: the task may be
    /// asleep until a frame arrives or its last timer, and would otherwise
    /// send only then. The task lives on worker 0 (`respawn_proto`), where
    /// deferred work runs, so an empty deferred call wakes that worker.
    pub fn wake_proto(&self) {
        self.rt.defer(Box::new(|| {}));
    }

    /// Runs the protocol layer on an interface (its queue 0). It must be up.
    pub fn attach_proto(&self, ifname: &str) -> Result<(), StackError> {
        let iface = self.interface(ifname)?;
        let invalid = |why: &str| {
            StackError::Interface(crate::iface::IfError::Invalid {
                ifname: ifname.to_owned(),
                why: why.to_owned(),
            })
        };
        let q = iface.queues().ok_or_else(|| invalid("interface is down"))?;
        let (Some(rx), Some(tx)) = (q.rx.first(), q.tx.first()) else {
            return Err(invalid("driver has no queues"));
        };
        let port = IfPort {
            info: IfInfo {
                index: iface.index,
                name: iface.name.clone(),
            },
            hooks: self.pfil.cache(),
            iface: iface.clone(),
            rx: rx.clone(),
            tx: tx.clone(),
            pool: self.pool.clone(),
            armed: false,
        };
        {
            let mut p = lock(&self.proto);
            p.net.add_port(iface.index, &port)?;
            let up = iface.state().link.up;
            p.net.link_changed(iface.index, up);
            p.ports.push((iface.index, port));
        }
        self.sync_groups(&iface)?;
        self.respawn_proto();
        Ok(())
    }

    /// Programs the multicast groups the protocol layer needs on `iface`
    /// (IPv6 all-nodes and solicited-node groups, IPv4 all-hosts) into its
    /// filter, and drops the ones no address needs any more.
    fn sync_groups(&self, iface: &Interface) -> Result<(), StackError> {
        let addrs = lock(&self.proto).net.addresses(iface.index)?;
        let want = crate::proto::required_groups(&addrs);
        let mut had = lock(&self.proto_groups);
        let old = had.remove(&iface.index).unwrap_or_default();
        for g in old.iter().filter(|g| !want.contains(g)) {
            iface.leave_multicast(*g)?;
        }
        for g in want.iter().filter(|g| !old.contains(g)) {
            iface.join_multicast(*g)?;
        }
        had.insert(iface.index, want);
        Ok(())
    }

    /// Places (again) the protocol task, so it watches the current ports.
    fn respawn_proto(&self) {
        let mut slot = lock(&self.proto_task);
        if let Some(id) = slot.take() {
            drop(self.rt.remove(id));
        }
        let fds = lock(&self.proto)
            .ports
            .iter()
            .filter_map(|(_, p)| lock(&p.rx).wait_fd())
            .collect();
        let task = ProtoTask {
            shared: self.proto.clone(),
            fds,
        };
        *slot = Some(self.rt.spawn_on(0, Box::new(task)));
    }

    fn detach_proto(&self, index: u32) {
        lock(&self.proto_groups).remove(&index);
        let removed = {
            let mut p = lock(&self.proto);
            let before = p.ports.len();
            p.ports.retain(|(i, _)| *i != index);
            let removed = p.ports.len() != before;
            if removed {
                let _ = p.net.remove_interface(index);
            }
            removed
        };
        if removed {
            self.respawn_proto();
        }
    }

    /// Adds an address to an interface (several per interface allowed).
    pub fn add_address(
        &self,
        ifname: &str,
        addr: std::net::IpAddr,
        plen: u8,
    ) -> Result<(), StackError> {
        let iface = self.interface(ifname)?;
        let cidr = IpCidr::new(IpAddress::from(addr), plen);
        lock(&self.proto).net.add_address(iface.index, cidr)?;
        iface.add_addr(addr, plen);
        self.sync_groups(&iface)
    }

    /// Changes an interface's MTU: the driver, the interface and the
    /// protocol layer (new packets are sized for it at once).
    pub fn set_mtu(&self, ifname: &str, mtu: u32) -> Result<(), StackError> {
        let iface = self.interface(ifname)?;
        iface.set_mtu(mtu)?;
        let mut p = lock(&self.proto);
        if p.net.interfaces().contains(&iface.index) {
            p.net.set_mtu(iface.index, mtu as usize)?;
        }
        Ok(())
    }

    /// Removes an address from an interface.
    pub fn remove_address(&self, ifname: &str, addr: std::net::IpAddr) -> Result<(), StackError> {
        let iface = self.interface(ifname)?;
        let plen = iface
            .state()
            .addrs
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, p)| *p);
        let Some(plen) = plen else {
            return Err(StackError::Interface(crate::iface::IfError::Invalid {
                ifname: ifname.to_owned(),
                why: format!("{addr} is not an address of {ifname}"),
            }));
        };
        let cidr = IpCidr::new(IpAddress::from(addr), plen);
        lock(&self.proto).net.remove_address(iface.index, cidr)?;
        iface.remove_addr(addr);
        self.sync_groups(&iface)
    }

    /// Adds a route `dest/plen` via `gw`.
    pub fn add_route(
        &self,
        dest: std::net::IpAddr,
        plen: u8,
        gw: std::net::IpAddr,
    ) -> Result<(), StackError> {
        let dest = IpCidr::new(IpAddress::from(dest), plen);
        lock(&self.proto).net.add_route(dest, IpAddress::from(gw))?;
        Ok(())
    }

    /// Runs a DHCPv4 client on an interface.
    pub fn enable_dhcp(&self, ifname: &str) -> Result<(), StackError> {
        let iface = self.interface(ifname)?;
        lock(&self.proto).net.enable_dhcp(iface.index)?;
        Ok(())
    }

    /// Runs a built-in service on every protocol interface.
    pub fn serve(&self, svc: Service) -> Result<(), StackError> {
        lock(&self.proto).net.serve(svc)?;
        Ok(())
    }

    /// The stack's buffer pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The lock policy (fallback mode).
    pub fn policy(&self) -> &Arc<LockPolicy> {
        &self.policy
    }

    /// Checks a driver spec without attaching anything.
    pub fn check(spec: &DriverSpec) -> Result<(), StackError> {
        if let Some(source) = registry::load_error(&spec.name) {
            return Err(StackError::Driver {
                driver: spec.name.clone(),
                source,
            });
        }
        let f = registry::find(&spec.name).ok_or_else(|| StackError::UnknownDriver {
            name: spec.name.clone(),
            available: registry::names(),
        })?;
        f.check_options(&spec.options)
            .map_err(|source| StackError::Driver {
                driver: spec.name.clone(),
                source,
            })
    }

    /// Attaches a driver; returns its interfaces (down).
    pub fn attach(&self, spec: &DriverSpec) -> Result<Vec<Arc<Interface>>, StackError> {
        Self::check(spec)?;
        let f = registry::find(&spec.name).ok_or_else(|| StackError::UnknownDriver {
            name: spec.name.clone(),
            available: registry::names(),
        })?;
        let mut inner = lock(&self.inner);
        let first_unit = *inner.units.get(f.prefix).unwrap_or(&0);
        let ifnames: Vec<String> = (0..f.devices)
            .map(|i| format!("{}{}", f.prefix, first_unit + i as u32))
            .collect();
        let mut owners = Vec::new();
        for n in &ifnames {
            match self.pool.register_owner(n) {
                Ok(o) => owners.push(o),
                Err(e) => {
                    owners.into_iter().for_each(|o| {
                        self.pool.unregister_owner(o);
                    });
                    return Err(e.into());
                }
            }
        }
        let args = AttachArgs {
            options: spec.options.clone(),
            pool: self.pool.clone(),
            owners: owners.clone(),
            ifnames: ifnames.clone(),
            pci: Some(self.pci.clone()),
        };
        let drivers = match (f.create)(&args) {
            Ok(d) => d,
            Err(source) => {
                for o in owners {
                    self.pool.unregister_owner(o);
                }
                return Err(StackError::Driver {
                    driver: spec.name.clone(),
                    source,
                });
            }
        };
        inner
            .units
            .insert(f.prefix.to_owned(), first_unit + drivers.len() as u32);
        let mut out = Vec::new();
        for (i, d) in drivers.into_iter().enumerate() {
            let lockc = DriverLock::attach(d.concurrency(), &self.policy);
            let name = ifnames
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("{}{}", f.prefix, first_unit + i as u32));
            let index = inner.next_index;
            inner.next_index += 1;
            let iface = Arc::new(Interface::new(
                index,
                name,
                f.name,
                f.kind,
                d,
                args.owner(i),
                lockc,
            ));
            inner.ifaces.push(IfEntry {
                iface: iface.clone(),
                tasks: Vec::new(),
            });
            out.push(iface);
        }
        drop(inner);
        for i in &out {
            self.publish(IfEvent::Attached(i.name.clone()));
        }
        Ok(out)
    }

    /// Starts an interface's driver and its service task.
    pub fn up(&self, ifname: &str) -> Result<(), StackError> {
        let iface = self.interface(ifname)?;
        if iface.queues().is_some() {
            return Ok(());
        }
        // Subscribe before starting, so the first link event is not missed.
        let events = iface.subscribe();
        iface.up()?;
        let (fd, interval) = iface.with_driver(|d| (d.service_fd(), d.service_interval()));
        let fwd = EventFanout(self.events.clone());
        let task = ServiceTask {
            proto: self.proto.clone(),
            name: format!("{}-service", iface.name),
            iface: iface.clone(),
            fd,
            interval: interval.unwrap_or(Duration::from_secs(1)),
            next: Instant::now(),
            events,
            forward: fwd,
            fd_ready: false,
        };
        let id = self.rt.spawn_on(0, Box::new(task));
        self.with_entry(ifname, |e| e.tasks.push(id));
        Ok(())
    }

    /// Every interface, in attach order.
    pub fn interfaces(&self) -> Vec<Arc<Interface>> {
        lock(&self.inner)
            .ifaces
            .iter()
            .map(|e| e.iface.clone())
            .collect()
    }

    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Result<Arc<Interface>, StackError> {
        lock(&self.inner)
            .ifaces
            .iter()
            .find(|e| e.iface.name == name)
            .map(|e| e.iface.clone())
            .ok_or_else(|| StackError::NoInterface(name.to_owned()))
    }

    fn with_entry(&self, name: &str, f: impl FnOnce(&mut IfEntry)) {
        if let Some(e) = lock(&self.inner)
            .ifaces
            .iter_mut()
            .find(|e| e.iface.name == name)
        {
            f(e);
        }
    }

    /// Forwards everything received on `from` out of `to`, one task per queue
    /// pair (queue i of `from` to queue i mod n of `to`), spread over the
    /// workers. Both must be up.
    pub fn forward(&self, from: &str, to: &str) -> Result<(), StackError> {
        let a = self.interface(from)?;
        let b = self.interface(to)?;
        let (qa, qb) = match (a.queues(), b.queues()) {
            (Some(qa), Some(qb)) => (qa, qb),
            _ => {
                return Err(StackError::Interface(crate::iface::IfError::Invalid {
                    ifname: format!("{from}/{to}"),
                    why: "both interfaces must be up to forward".into(),
                }))
            }
        };
        if qb.tx.is_empty() {
            return Ok(());
        }
        for (i, rx) in qa.rx.iter().enumerate() {
            let tx = &qb.tx[i % qb.tx.len()];
            let task = ForwardTask {
                hooks: self.pfil.cache(),
                from_info: IfInfo {
                    index: a.index,
                    name: a.name.clone(),
                },
                to_info: IfInfo {
                    index: b.index,
                    name: b.name.clone(),
                },
                name: format!("fwd {from}q{i}->{to}"),
                from: a.clone(),
                to: b.clone(),
                rx: rx.clone(),
                tx: tx.clone(),
                batch: Box::new(PacketBatch::new()),
                armed: false,
            };
            let id = self.rt.spawn_on(i, Box::new(task));
            self.with_entry(from, |e| e.tasks.push(id));
            if from != to {
                self.with_entry(to, |e| e.tasks.push(id));
            }
        }
        Ok(())
    }

    /// Stops an interface: removes every task using it (on either side),
    /// stops the driver and returns its buffers.
    pub fn down(&self, ifname: &str) -> Result<(), StackError> {
        let iface = self.interface(ifname)?;
        self.detach_proto(iface.index);
        let ids: Vec<TaskId> = {
            let mut inner = lock(&self.inner);
            let ids = inner
                .ifaces
                .iter_mut()
                .find(|e| e.iface.name == ifname)
                .map(|e| std::mem::take(&mut e.tasks))
                .unwrap_or_default();
            for e in inner.ifaces.iter_mut() {
                e.tasks.retain(|t| !ids.contains(t));
            }
            ids
        };
        for id in ids {
            drop(self.rt.remove(id));
        }
        if !iface.down() {
            return Err(StackError::Interface(crate::iface::IfError::Invalid {
                ifname: ifname.to_owned(),
                why: "queues still in use".into(),
            }));
        }
        Ok(())
    }

    /// Detaches an interface: down, then the driver is dropped; checks that
    /// every buffer it held came back.
    pub fn detach(&self, ifname: &str) -> Result<(), StackError> {
        self.down(ifname)?;
        let entry = {
            let mut inner = lock(&self.inner);
            let pos = inner
                .ifaces
                .iter()
                .position(|e| e.iface.name == ifname)
                .ok_or_else(|| StackError::NoInterface(ifname.to_owned()))?;
            inner.ifaces.remove(pos)
        };
        let iface = entry.iface;
        iface.lock.detach();
        let owner = iface.owner;
        // The driver is dropped with the last reference to the interface.
        drop(iface);
        self.pool.flush_thread_cache();
        self.publish(IfEvent::Detached(ifname.to_owned()));
        let held = self.pool.unregister_owner(owner);
        if held != 0 {
            return Err(StackError::Leak {
                ifname: ifname.to_owned(),
                held,
            });
        }
        Ok(())
    }

    /// Subscribes to events of every interface (attach, detach, link).
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<IfEvent> {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.events).push(tx);
        rx
    }

    fn publish(&self, ev: IfEvent) {
        lock(&self.events).retain(|s| s.send(ev.clone()).is_ok());
    }

    /// Detaches everything and stops the runtime.
    pub fn shutdown(self) {
        if let Some(id) = lock(&self.proto_task).take() {
            drop(self.rt.remove(id));
        }
        for i in self.interfaces() {
            if let Err(e) = self.detach(&i.name) {
                log::warn!("{e}");
            }
        }
        self.rt.shutdown();
    }
}

/// The stack's subscribers, for tasks to publish to.
struct EventFanout(Arc<Mutex<Vec<std::sync::mpsc::Sender<IfEvent>>>>);

impl EventFanout {
    fn send(&mut self, ev: &IfEvent) {
        lock(&self.0).retain(|s| s.send(ev.clone()).is_ok());
    }
}

/// Polls whether a descriptor is readable, without blocking.
pub fn fd_readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLIN != 0
}

/// Runs an interface's slow path: the driver's service fd and interval.
struct ServiceTask {
    proto: Arc<Mutex<ProtoShared>>,
    name: String,
    iface: Arc<Interface>,
    fd: Option<RawFd>,
    interval: Duration,
    next: Instant,
    events: std::sync::mpsc::Receiver<IfEvent>,
    forward: EventFanout,
    fd_ready: bool,
}

impl Task for ServiceTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, now: Instant) -> Progress {
        let due = now >= self.next;
        let ready = self.fd_ready || (due && self.fd.is_some_and(fd_readable));
        let mut busy = false;
        if due || ready {
            self.fd_ready = false;
            self.iface.service();
            self.next = now + self.interval.min(Duration::from_millis(100));
            busy = ready;
        }
        while let Ok(ev) = self.events.try_recv() {
            if let IfEvent::Link { ifname, state } = &ev {
                // DHCP and neighbour state follow the link.
                lock(&self.proto)
                    .net
                    .link_changed(self.iface.index, state.up);
                log::info!(
                    "{ifname}: link {} {} Mb/s",
                    if state.up { "up" } else { "down" },
                    state.speed_mbps
                );
            }
            self.forward.send(&ev);
        }
        Progress {
            busy,
            deadline: Some(self.next),
        }
    }

    fn wait_fds(&self) -> Vec<RawFd> {
        self.fd.into_iter().collect()
    }

    fn after_wake(&mut self) {
        self.fd_ready = self.fd.is_some_and(fd_readable);
    }
}

/// Moves packets from one receive queue to one transmit queue.
struct ForwardTask {
    /// Packet filter hooks: input on `from`, output on `to`.
    hooks: HookCache,
    from_info: IfInfo,
    to_info: IfInfo,
    name: String,
    from: Arc<Interface>,
    to: Arc<Interface>,
    rx: SharedRx,
    tx: SharedTx,
    batch: Box<PacketBatch>,
    armed: bool,
}

impl Task for ForwardTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, _now: Instant) -> Progress {
        let n = {
            let _entry = self.from.lock.enter();
            lock(&self.rx).rx_burst(&mut self.batch)
        };
        if !self.batch.is_empty() {
            self.from.tap_batch(Direction::In, &self.batch, 0);
            let h = &mut self.hooks;
            h.filter_batch(Direction::In, &self.from_info, &mut self.batch, 0);
            h.filter_batch(Direction::Out, &self.to_info, &mut self.batch, 0);
            self.to.tap_batch(Direction::Out, &self.batch, 0);
            {
                let _entry = self.to.lock.enter();
                lock(&self.tx).tx_burst(&mut self.batch);
            }
            // What the ring did not take is dropped, like testpmd's io mode.
            let left = self.batch.len();
            if left > 0 {
                self.to.count_stack_drops(left as u64);
                self.batch.free_all();
            }
        }
        Progress {
            busy: n > 0,
            deadline: None,
        }
    }

    fn wait_fds(&self) -> Vec<RawFd> {
        lock(&self.rx).wait_fd().into_iter().collect()
    }

    fn prepare_sleep(&mut self) -> bool {
        let _entry = self.from.lock.enter();
        let mut rx = lock(&self.rx);
        if rx.wait_fd().is_none() {
            return false;
        }
        self.armed = rx.arm();
        self.armed
    }

    fn after_wake(&mut self) {
        if self.armed {
            let _entry = self.from.lock.enter();
            lock(&self.rx).disarm();
            self.armed = false;
        }
        let _entry = self.to.lock.enter();
        lock(&self.tx).reclaim();
    }
}

/// Size of a forwarding burst.
pub const FORWARD_BURST: usize = BATCH_MAX;

/// An interface's queue 0 as the protocol layer's [`Port`], entering the
/// driver as its concurrency class demands.
pub struct IfPort {
    /// The interface as packet filter hooks see it.
    info: IfInfo,
    hooks: HookCache,
    iface: Arc<Interface>,
    rx: SharedRx,
    tx: SharedTx,
    pool: Pool,
    armed: bool,
}

impl Port for IfPort {
    fn recv(&mut self, batch: &mut PacketBatch) -> usize {
        let from = batch.len();
        let n = {
            let _entry = self.iface.lock.enter();
            lock(&self.rx).rx_burst(batch)
        };
        // Taps first (tcpdump shows what arrived), then the input hooks.
        self.iface.tap_batch(Direction::In, batch, from);
        self.hooks
            .filter_batch(Direction::In, &self.info, batch, from);
        n
    }

    fn output_filter(&mut self, frame: &mut pktkit_native::Mbuf) -> bool {
        self.hooks.refresh();
        self.hooks.is_empty() || self.hooks.run(Direction::Out, &self.info, frame) == Verdict::Pass
    }

    fn send(&mut self, batch: &mut PacketBatch) -> usize {
        // Captured before the driver takes them (a frame the ring refuses and
        // the stack retries is captured again).
        self.iface.tap_batch(Direction::Out, batch, 0);
        let _entry = self.iface.lock.enter();
        lock(&self.tx).tx_burst(batch)
    }

    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn owner(&self) -> pktkit_native::OwnerId {
        self.iface.owner
    }

    fn mac(&self) -> [u8; 6] {
        self.iface.state().mac
    }

    fn mtu(&self) -> usize {
        self.iface.state().mtu as usize
    }

    fn rx_ring_frames(&self) -> Option<u32> {
        self.iface.rx_ring_frames()
    }
}

/// The protocol layer's task: polls every protocol interface, sleeps on
/// their receive wake-ups and smoltcp's next timer.
struct ProtoTask {
    shared: Arc<Mutex<ProtoShared>>,
    fds: Vec<RawFd>,
}

impl Task for ProtoTask {
    fn name(&self) -> &str {
        "proto"
    }

    fn poll(&mut self, now: Instant) -> Progress {
        let mut sh = lock(&self.shared);
        let ProtoShared { net, ports } = &mut *sh;
        let mut busy = false;
        let mut deadline: Option<Instant> = None;
        for (index, port) in ports.iter_mut() {
            if let Some(d) = net.poll(*index, port, now) {
                busy |= d.is_zero();
                let at = now + d;
                deadline = Some(deadline.map_or(at, |x| x.min(at)));
            }
        }
        Progress { busy, deadline }
    }

    fn wait_fds(&self) -> Vec<RawFd> {
        self.fds.clone()
    }

    fn prepare_sleep(&mut self) -> bool {
        let mut sh = lock(&self.shared);
        let mut ok = true;
        for (_, port) in sh.ports.iter_mut() {
            let _entry = port.iface.lock.enter();
            let mut rx = lock(&port.rx);
            if rx.wait_fd().is_none() {
                ok = false;
                continue;
            }
            port.armed = true;
            ok &= rx.arm();
        }
        ok
    }

    fn after_wake(&mut self) {
        let mut sh = lock(&self.shared);
        for (_, port) in sh.ports.iter_mut() {
            if port.armed {
                let _entry = port.iface.lock.enter();
                lock(&port.rx).disarm();
                port.armed = false;
            }
        }
    }
}
