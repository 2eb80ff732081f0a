//! [`NetStack`]: the interfaces, addresses, routes, DHCP clients, services
//! and client sockets of the protocol layer, and its poll loop.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use pktkit_native::BATCH_MAX;
use smoltcp::iface::{Config, Interface, PollIngressSingleResult, Route, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities};
use smoltcp::socket::{dhcpv4, icmp, tcp, udp, AnySocket};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr,
    IpAddress, IpCidr, IpListenEndpoint, Ipv4Address, Ipv4Cidr,
};

use super::device::{self, DeviceBuffers, PortDevice, ETHER_HDR};
use super::services::{self, ServiceSockets};
use super::{link_local, Port, ProtoCounters, ProtoError, Service, TcpState};

/// Receive bursts one `poll` handles before it lets the caller run others
/// (4 x 256 frames); more waiting makes `poll` ask to be called again at once.
const RX_ROUNDS: usize = 4;
/// Bytes services copy at once (echo moves stream data through it).
const SERVICE_SCRATCH: usize = 64 * 1024;
/// First local port of outgoing connections (RFC 6335 dynamic range).
const EPHEMERAL_FIRST: u16 = 49152;
/// Smallest and largest IP MTU an interface may have.
const MTU_RANGE: std::ops::RangeInclusive<usize> = 576..=9216;
/// Datagrams an ICMP (ping) socket queues each way, and their bytes.
const ICMP_PACKETS: usize = 16;
const ICMP_BUFFER: usize = 16 * 1024;

/// A lease the DHCP client holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpLease {
    /// The address and prefix leased.
    pub address: Ipv4Cidr,
    /// The default router offered, if any (installed as the default route).
    pub router: Option<Ipv4Address>,
    /// DNS servers offered.
    pub dns_servers: Vec<Ipv4Address>,
}

/// One route, as [`NetStack::routes`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// Destination prefix.
    pub dest: IpCidr,
    /// Gateway.
    pub gw: IpAddress,
    /// Interfaces whose subnet holds the gateway (where the route is
    /// installed); empty while no interface can reach the gateway.
    pub ifindexes: [Option<u32>; 4],
    /// Whether the route came from a DHCP lease.
    pub dhcp: bool,
}

/// A datagram taken by [`NetStack::udp_recv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes copied into the caller's buffer.
    pub len: usize,
    /// Sender address and port.
    pub from: (IpAddress, u16),
}

/// An ICMP echo reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingReply {
    /// Who answered.
    pub from: IpAddress,
    /// Identifier echoed.
    pub ident: u16,
    /// Sequence number echoed.
    pub seq: u16,
    /// Payload bytes echoed.
    pub len: usize,
}

/// One socket of the protocol layer, as [`NetStack::sockets`] lists it
/// (for `pktkit netstat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// Interface whose socket set holds it.
    pub ifindex: u32,
    /// `tcp`, `udp`, `icmp`, `dhcp` or `raw`.
    pub kind: &'static str,
    /// Local address and port (`*` for any address); for a listening TCP
    /// socket its listen endpoint.
    pub local: String,
    /// Remote address and port, `*` when not connected.
    pub remote: String,
    /// TCP state (e.g. `LISTEN`, `ESTABLISHED`); `-` for other kinds.
    pub state: String,
    /// Who holds it: `service`, `dhcp` or `client`.
    pub owner: &'static str,
    /// Bytes waiting to be read by the holder.
    pub recv_queue: usize,
    /// Bytes waiting to be sent.
    pub send_queue: usize,
}

/// A route added with [`NetStack::add_route`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StaticRoute {
    dest: IpCidr,
    gw: IpAddress,
}

/// The DHCP client of an interface.
struct Dhcp {
    handle: SocketHandle,
    lease: Option<DhcpLease>,
}

/// One interface of the stack.
struct IfState {
    iface: Interface,
    /// This interface's sockets: services, DHCP, and client sockets.
    sockets: SocketSet<'static>,
    mac: [u8; 6],
    link_up: bool,
    bufs: DeviceBuffers,
    counters: ProtoCounters,
    dhcp: Option<Dhcp>,
    services: ServiceSockets,
    /// Receive buffer of this interface's TCP sockets
    /// ([`services::tcp_rx_buffer`]): small on a card with a small ring.
    tcp_rx: usize,
    /// Identifier of each ping socket (smoltcp does not report it).
    ping_idents: HashMap<SocketHandle, u16>,
}

/// The protocol stack: smoltcp interfaces keyed by ifindex, each with its
/// own socket set, driven by [`NetStack::poll`] from one thread.
///
/// See the [module documentation](super) for the design.
pub struct NetStack {
    /// Zero of the smoltcp clock.
    epoch: std::time::Instant,
    ifaces: BTreeMap<u32, Box<IfState>>,
    routes: Vec<StaticRoute>,
    services: Vec<Service>,
    /// Where services copy stream data (allocated once).
    scratch: Box<[u8]>,
    next_port: u16,
    seed: u64,
}

impl Default for NetStack {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for NetStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetStack")
            .field("interfaces", &self.ifaces.keys().collect::<Vec<_>>())
            .field("routes", &self.routes)
            .field("services", &self.services)
            .finish()
    }
}

/// A device that is not plugged into anything: it only tells smoltcp its
/// capabilities when an `Interface` is made.
struct Unplugged(DeviceCapabilities);

/// A token that cannot exist.
enum NoToken {}

impl phy::RxToken for NoToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, _f: F) -> R {
        match self {}
    }
}

impl phy::TxToken for NoToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, _len: usize, _f: F) -> R {
        match self {}
    }
}

impl phy::Device for Unplugged {
    type RxToken<'a> = NoToken;
    type TxToken<'a> = NoToken;

    fn receive(&mut self, _now: SmolInstant) -> Option<(NoToken, NoToken)> {
        None
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<NoToken> {
        None
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.0.clone()
    }
}

/// The socket of type `T` behind `handle`, without smoltcp's panic on a
/// stale handle or a socket of another type.
fn socket_mut<'s, T: AnySocket<'static>>(
    set: &'s mut SocketSet<'static>,
    handle: SocketHandle,
) -> Option<&'s mut T> {
    set.iter_mut()
        .find(|(h, _)| *h == handle)
        .and_then(|(_, s)| T::downcast_mut(s))
}

/// Read-only [`socket_mut`].
fn socket_ref<'s, T: AnySocket<'static>>(
    set: &'s SocketSet<'static>,
    handle: SocketHandle,
) -> Option<&'s T> {
    set.iter()
        .find(|(h, _)| *h == handle)
        .and_then(|(_, s)| T::downcast(s))
}

/// Whether `gw` lies on one of `addrs`' subnets.
fn on_link(addrs: &[IpCidr], gw: &IpAddress) -> bool {
    addrs.iter().any(|c| c.contains_addr(gw))
}

const IPV4_DEFAULT: IpCidr = IpCidr::Ipv4(Ipv4Cidr::new(Ipv4Address::UNSPECIFIED, 0));

impl IfState {
    /// Rebuilds the interface's route table from the static routes whose
    /// gateway is on one of its subnets, plus the DHCP router (as the IPv4
    /// default route unless a static one exists). Returns false if they did
    /// not all fit.
    fn install_routes(&mut self, statics: &[StaticRoute]) -> bool {
        let addrs = self.iface.ip_addrs().to_vec();
        let router = self
            .dhcp
            .as_ref()
            .and_then(|d| d.lease.as_ref())
            .and_then(|l| l.router);
        let mut fits = true;
        self.iface.routes_mut().update(|table| {
            table.clear();
            for r in statics.iter().filter(|r| on_link(&addrs, &r.gw)) {
                fits &= table.push(route(r.dest, r.gw)).is_ok();
            }
            if let Some(gw) = router {
                if !table.iter().any(|r| r.cidr == IPV4_DEFAULT) {
                    fits &= table.push(route(IPV4_DEFAULT, gw.into())).is_ok();
                }
            }
        });
        fits
    }

    fn has_address(&self, cidr: &IpCidr) -> bool {
        self.iface.ip_addrs().contains(cidr)
    }

    fn push_address(&mut self, cidr: IpCidr) -> bool {
        let mut ok = true;
        self.iface
            .update_ip_addrs(|addrs| ok = addrs.push(cidr).is_ok());
        ok
    }

    fn drop_address(&mut self, cidr: &IpCidr) -> bool {
        let mut found = false;
        self.iface.update_ip_addrs(|addrs| {
            if let Some(i) = addrs.iter().position(|a| a == cidr) {
                addrs.remove(i);
                found = true;
            }
        });
        found
    }

    /// Applies what the DHCP client reports, if anything changed.
    fn dhcp_step(&mut self, ifindex: u32, statics: &[StaticRoute]) {
        let Some(dhcp) = &self.dhcp else {
            return;
        };
        let Some(socket) = socket_mut::<dhcpv4::Socket>(&mut self.sockets, dhcp.handle) else {
            return;
        };
        let lease = match socket.poll() {
            None => return,
            Some(dhcpv4::Event::Deconfigured) => None,
            Some(dhcpv4::Event::Configured(cfg)) => Some(DhcpLease {
                address: cfg.address,
                router: cfg.router,
                dns_servers: cfg.dns_servers.iter().copied().collect(),
            }),
        };
        match &lease {
            Some(l) => log::info!(
                "if{ifindex}: dhcp lease {} router {} dns {:?}",
                l.address,
                l.router
                    .map_or_else(|| "none".to_owned(), |r| r.to_string()),
                l.dns_servers
            ),
            None => log::info!("if{ifindex}: dhcp lease lost"),
        }
        self.apply_lease(ifindex, lease, statics);
    }

    /// Replaces the DHCP lease (address and router) with `lease`.
    fn apply_lease(&mut self, ifindex: u32, lease: Option<DhcpLease>, statics: &[StaticRoute]) {
        let Some(dhcp) = self.dhcp.as_mut() else {
            return;
        };
        let old = std::mem::replace(&mut dhcp.lease, lease.clone());
        if let Some(old) = old {
            self.drop_address(&IpCidr::Ipv4(old.address));
        }
        if let Some(new) = lease {
            let cidr = IpCidr::Ipv4(new.address);
            if !self.has_address(&cidr) && !self.push_address(cidr) {
                log::error!("if{ifindex}: no room for dhcp address {cidr} (at most 8 addresses)");
            }
        }
        if !self.install_routes(statics) {
            log::error!("if{ifindex}: route table full; some routes are not installed");
        }
    }
}

fn route(dest: IpCidr, gw: IpAddress) -> Route {
    Route {
        cidr: dest,
        via_router: gw,
        preferred_until: None,
        expires_at: None,
    }
}

impl NetStack {
    /// An empty stack: no interfaces, routes or services.
    pub fn new() -> NetStack {
        // TCP initial sequence numbers and ports come from this seed: make it
        // differ between runs (it need not be secret).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ u64::from(std::process::id()).rotate_left(32);
        NetStack {
            epoch: std::time::Instant::now(),
            ifaces: BTreeMap::new(),
            routes: Vec::new(),
            services: Vec::new(),
            scratch: vec![0; SERVICE_SCRATCH].into_boxed_slice(),
            next_port: EPHEMERAL_FIRST + (seed % 4096) as u16,
            seed,
        }
    }

    fn now(&self, now: std::time::Instant) -> SmolInstant {
        let us = now.saturating_duration_since(self.epoch).as_micros();
        SmolInstant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
    }

    fn iface(&self, ifindex: u32) -> Result<&IfState, ProtoError> {
        self.ifaces
            .get(&ifindex)
            .map(|b| &**b)
            .ok_or(ProtoError::NoInterface(ifindex))
    }

    fn iface_mut(&mut self, ifindex: u32) -> Result<&mut IfState, ProtoError> {
        self.ifaces
            .get_mut(&ifindex)
            .map(|b| &mut **b)
            .ok_or(ProtoError::NoInterface(ifindex))
    }

    /// Adds an interface with station address `mac` and IP MTU `mtu` (1500
    /// for plain Ethernet). It gets its IPv6 link-local address at once and
    /// every service served so far.
    pub fn add_interface(
        &mut self,
        ifindex: u32,
        mac: [u8; 6],
        mtu: usize,
    ) -> Result<(), ProtoError> {
        self.add_interface_ring(ifindex, mac, mtu, None)
    }

    /// [`NetStack::add_interface`] for a device that holds only
    /// `ring_frames` full-size frames on receive (`None`: many): its TCP
    /// sockets get receive windows the ring can take
    /// ([`super::Port::rx_ring_frames`]).
    pub fn add_interface_ring(
        &mut self,
        ifindex: u32,
        mac: [u8; 6],
        mtu: usize,
        ring_frames: Option<u32>,
    ) -> Result<(), ProtoError> {
        if self.ifaces.contains_key(&ifindex) {
            return Err(ProtoError::InterfaceExists(ifindex));
        }
        let hw = EthernetAddress(mac);
        if !hw.is_unicast() || mac == [0; 6] {
            return Err(ProtoError::BadMac(mac));
        }
        if !MTU_RANGE.contains(&mtu) {
            return Err(ProtoError::BadMtu(mtu));
        }
        let frame_max = mtu + ETHER_HDR;
        let tcp_rx = services::tcp_rx_buffer(ring_frames, mtu);
        if let Some(frames) = ring_frames {
            log::info!(
                "if{ifindex}: receive ring of {frames} frames: TCP windows up to {tcp_rx} bytes"
            );
        }
        let mut config = Config::new(HardwareAddress::Ethernet(hw));
        config.random_seed = self.seed ^ u64::from(ifindex).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let now = self.now(std::time::Instant::now());
        let iface = Interface::new(config, &mut Unplugged(device::capabilities(frame_max)), now);
        let mut state = Box::new(IfState {
            iface,
            sockets: SocketSet::new(Vec::new()),
            mac,
            link_up: true,
            bufs: DeviceBuffers::new(frame_max),
            counters: ProtoCounters::default(),
            dhcp: None,
            services: ServiceSockets::new(tcp_rx),
            tcp_rx,
            ping_idents: HashMap::new(),
        });
        state.push_address(IpCidr::Ipv6(link_local(mac)));
        for &svc in &self.services {
            state.services.install(&mut state.sockets, svc)?;
        }
        self.ifaces.insert(ifindex, state);
        Ok(())
    }

    /// Changes an interface's MTU. smoltcp fixes a device's capabilities
    /// when its interface is made, so the interface is made anew around the
    /// same sockets, addresses and routes: connections stay open (with the
    /// segment size they agreed), the neighbour cache starts empty, and
    /// frames queued in the old buffers go back to their pool.
    pub fn set_mtu(&mut self, ifindex: u32, mtu: usize) -> Result<(), ProtoError> {
        if !MTU_RANGE.contains(&mtu) {
            return Err(ProtoError::BadMtu(mtu));
        }
        let now = self.now(std::time::Instant::now());
        let seed = self.seed ^ u64::from(ifindex).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let NetStack { ifaces, routes, .. } = self;
        let ifc = ifaces
            .get_mut(&ifindex)
            .ok_or(ProtoError::NoInterface(ifindex))?;
        let frame_max = mtu + ETHER_HDR;
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(ifc.mac)));
        config.random_seed = seed;
        let addrs = ifc.iface.ip_addrs().to_vec();
        ifc.iface = Interface::new(config, &mut Unplugged(device::capabilities(frame_max)), now);
        for cidr in addrs {
            ifc.push_address(cidr);
        }
        ifc.bufs = DeviceBuffers::new(frame_max);
        if !ifc.install_routes(routes) {
            log::warn!("if{ifindex}: route table full after an MTU change");
        }
        Ok(())
    }

    /// [`NetStack::add_interface_ring`] with the port's MAC, MTU and
    /// receive ring.
    pub fn add_port(&mut self, ifindex: u32, port: &dyn Port) -> Result<(), ProtoError> {
        self.add_interface_ring(ifindex, port.mac(), port.mtu(), port.rx_ring_frames())
    }

    /// Removes an interface with all its sockets; frames it still queued
    /// for transmission go back to their pool.
    pub fn remove_interface(&mut self, ifindex: u32) -> Result<(), ProtoError> {
        self.ifaces
            .remove(&ifindex)
            .map(drop)
            .ok_or(ProtoError::NoInterface(ifindex))
    }

    /// The interfaces, by index.
    pub fn interfaces(&self) -> Vec<u32> {
        self.ifaces.keys().copied().collect()
    }

    /// Assigns an address (with its prefix length) to an interface; an
    /// interface holds several. Assigning one it has is a no-op.
    pub fn add_address(&mut self, ifindex: u32, cidr: IpCidr) -> Result<(), ProtoError> {
        let addr = cidr.address();
        if !addr.is_unicast() || matches!(addr, IpAddress::Ipv4(a) if a.is_broadcast()) {
            return Err(ProtoError::BadAddress(cidr));
        }
        let NetStack { ifaces, routes, .. } = self;
        let ifc = ifaces
            .get_mut(&ifindex)
            .ok_or(ProtoError::NoInterface(ifindex))?;
        if ifc.has_address(&cidr) {
            return Ok(());
        }
        if !ifc.push_address(cidr) {
            return Err(ProtoError::TooManyAddresses(ifindex));
        }
        if !ifc.install_routes(routes) {
            log::warn!(
                "if{ifindex}: route table full after adding {cidr}; some routes are not installed"
            );
        }
        Ok(())
    }

    /// Removes an address from an interface.
    pub fn remove_address(&mut self, ifindex: u32, cidr: IpCidr) -> Result<(), ProtoError> {
        let NetStack { ifaces, routes, .. } = self;
        let ifc = ifaces
            .get_mut(&ifindex)
            .ok_or(ProtoError::NoInterface(ifindex))?;
        if !ifc.drop_address(&cidr) {
            return Err(ProtoError::NoSuchAddress(ifindex, cidr));
        }
        ifc.install_routes(routes);
        Ok(())
    }

    /// The addresses of an interface (the link-local one first).
    pub fn addresses(&self, ifindex: u32) -> Result<Vec<IpCidr>, ProtoError> {
        Ok(self.iface(ifindex)?.iface.ip_addrs().to_vec())
    }

    /// Adds a route to `dest` via `gw` (`0.0.0.0/0` for the default route).
    /// It is installed on every interface with `gw` on one of its subnets,
    /// now or once such an address is assigned.
    pub fn add_route(&mut self, dest: IpCidr, gw: IpAddress) -> Result<(), ProtoError> {
        let same_family = matches!(
            (dest, gw),
            (IpCidr::Ipv4(_), IpAddress::Ipv4(_)) | (IpCidr::Ipv6(_), IpAddress::Ipv6(_))
        );
        if !same_family || !gw.is_unicast() {
            return Err(ProtoError::BadRoute { dest, gw });
        }
        let r = StaticRoute { dest, gw };
        if self.routes.contains(&r) {
            return Ok(());
        }
        self.routes.push(r);
        if let Err(full) = self.install_all_routes() {
            self.routes.pop();
            let _ = self.install_all_routes();
            return Err(ProtoError::RouteTableFull(full));
        }
        if !self
            .ifaces
            .values()
            .any(|i| on_link(i.iface.ip_addrs(), &gw))
        {
            log::info!("route {dest} via {gw}: no interface reaches {gw} yet; kept until one does");
        }
        Ok(())
    }

    /// Removes a route added with [`NetStack::add_route`].
    pub fn remove_route(&mut self, dest: IpCidr, gw: IpAddress) -> Result<(), ProtoError> {
        let r = StaticRoute { dest, gw };
        let i = self
            .routes
            .iter()
            .position(|x| *x == r)
            .ok_or(ProtoError::NoSuchRoute { dest, gw })?;
        self.routes.remove(i);
        let _ = self.install_all_routes();
        Ok(())
    }

    /// Reinstalls every interface's routes; `Err(ifindex)` names an
    /// interface whose table overflowed.
    fn install_all_routes(&mut self) -> Result<(), u32> {
        let mut result = Ok(());
        for (&ifindex, ifc) in &mut self.ifaces {
            if !ifc.install_routes(&self.routes) {
                result = Err(ifindex);
            }
        }
        result
    }

    /// Every route: the static ones and those from DHCP leases.
    pub fn routes(&self) -> Vec<RouteInfo> {
        let mut out = Vec::new();
        let holders = |gw: &IpAddress| {
            let mut ifs = [None; 4];
            let reach = self
                .ifaces
                .iter()
                .filter(|(_, i)| on_link(i.iface.ip_addrs(), gw));
            for (slot, (&ifindex, _)) in ifs.iter_mut().zip(reach) {
                *slot = Some(ifindex);
            }
            ifs
        };
        for r in &self.routes {
            out.push(RouteInfo {
                dest: r.dest,
                gw: r.gw,
                ifindexes: holders(&r.gw),
                dhcp: false,
            });
        }
        for (&ifindex, ifc) in &self.ifaces {
            let router = ifc.dhcp.as_ref().and_then(|d| d.lease.as_ref()?.router);
            if let Some(gw) = router {
                out.push(RouteInfo {
                    dest: IPV4_DEFAULT,
                    gw: gw.into(),
                    ifindexes: [Some(ifindex), None, None, None],
                    dhcp: true,
                });
            }
        }
        out
    }

    /// Starts a DHCPv4 client on an interface: the leased address and
    /// router are applied (and logged) as they come and go. Enabling it
    /// twice is a no-op.
    pub fn enable_dhcp(&mut self, ifindex: u32) -> Result<(), ProtoError> {
        let ifc = self.iface_mut(ifindex)?;
        if ifc.dhcp.is_none() {
            let handle = ifc.sockets.add(dhcpv4::Socket::new());
            ifc.dhcp = Some(Dhcp {
                handle,
                lease: None,
            });
        }
        Ok(())
    }

    /// The DHCP lease an interface holds, if any.
    pub fn dhcp_lease(&self, ifindex: u32) -> Option<DhcpLease> {
        self.ifaces.get(&ifindex)?.dhcp.as_ref()?.lease.clone()
    }

    /// Tells the stack an interface's link went down or came up. When it
    /// comes back, a DHCP client drops its lease and negotiates anew (the
    /// link may now be on another network).
    pub fn link_changed(&mut self, ifindex: u32, up: bool) {
        let NetStack { ifaces, routes, .. } = self;
        let Some(ifc) = ifaces.get_mut(&ifindex) else {
            return;
        };
        let was_up = std::mem::replace(&mut ifc.link_up, up);
        log::info!("if{ifindex}: link {}", if up { "up" } else { "down" });
        if !up || was_up {
            return;
        }
        let Some(handle) = ifc.dhcp.as_ref().map(|d| d.handle) else {
            return;
        };
        if let Some(socket) = socket_mut::<dhcpv4::Socket>(&mut ifc.sockets, handle) {
            socket.reset();
            // A reset from Renewing reports Deconfigured; drop that stale event.
            let _ = socket.poll();
        }
        if ifc.dhcp.as_ref().is_some_and(|d| d.lease.is_some()) {
            log::info!("if{ifindex}: dhcp lease dropped; renegotiating");
            ifc.apply_lease(ifindex, None, routes);
        }
    }

    /// Whether the stack believes an interface's link is up.
    pub fn link_up(&self, ifindex: u32) -> bool {
        self.ifaces.get(&ifindex).is_some_and(|i| i.link_up)
    }

    /// Serves a built-in service (TCP and UDP) on every interface, present
    /// and future. Serving it twice is a no-op.
    pub fn serve(&mut self, svc: Service) -> Result<(), ProtoError> {
        if self.services.contains(&svc) {
            return Ok(());
        }
        for ifc in self.ifaces.values_mut() {
            ifc.services.install(&mut ifc.sockets, svc)?;
        }
        self.services.push(svc);
        Ok(())
    }

    /// The built-in services served, in the order they were started.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// TCP sockets (connections and the spare listener) a service holds on
    /// an interface.
    pub fn service_sockets(&self, ifindex: u32, svc: Service) -> usize {
        self.ifaces
            .get(&ifindex)
            .map_or(0, |i| i.services.tcp_sockets(svc))
    }

    /// The protocol counters of an interface (zero for an unknown one).
    pub fn counters(&self, ifindex: u32) -> ProtoCounters {
        self.ifaces
            .get(&ifindex)
            .map_or_else(ProtoCounters::default, |i| i.counters)
    }

    /// Frames built for an interface that its port has not taken yet.
    pub fn tx_pending(&self, ifindex: u32) -> usize {
        self.ifaces.get(&ifindex).map_or(0, |i| i.bufs.tx.len())
    }

    /// Runs the stack for one interface: receives frames from `port` in
    /// bursts (at most 4 of [`BATCH_MAX`](pktkit_native::BATCH_MAX)), feeds them to smoltcp,
    /// runs the services and the DHCP client, and transmits what they
    /// produced through `port`. Never blocks.
    ///
    /// Returns how long the caller may wait before polling again if no frame
    /// arrives: `Some(ZERO)` when work is left (more frames waiting, frames
    /// the port did not take), smoltcp's next timer otherwise, `None` when
    /// no timer is pending (or the interface is unknown).
    pub fn poll(
        &mut self,
        ifindex: u32,
        port: &mut dyn Port,
        now: std::time::Instant,
    ) -> Option<Duration> {
        let ts = self.now(now);
        let NetStack {
            ifaces,
            routes,
            scratch,
            ..
        } = self;
        let ifc = &mut **ifaces.get_mut(&ifindex)?;
        let mut more = false;
        for _ in 0..RX_ROUNDS {
            let got = if ifc.bufs.rx.room() > 0 {
                port.recv(&mut ifc.bufs.rx)
            } else {
                0
            };
            {
                let mut dev =
                    PortDevice::new(&mut *port, &mut ifc.bufs, &mut ifc.counters, ifc.mac);
                // Frame by frame (smoltcp's own poll does the same loop), so the
                // services can put up a new listener as soon as one is taken.
                loop {
                    match ifc
                        .iface
                        .poll_ingress_single(ts, &mut dev, &mut ifc.sockets)
                    {
                        PollIngressSingleResult::None => break,
                        PollIngressSingleResult::PacketProcessed => {}
                        PollIngressSingleResult::SocketStateChanged => {
                            ifc.services.replenish(&mut ifc.sockets);
                        }
                    }
                }
                ifc.iface.poll_egress(ts, &mut dev, &mut ifc.sockets);
            }
            if ifc.dhcp.is_some() {
                ifc.dhcp_step(ifindex, routes);
            }
            let served = ifc.services.run(
                &mut ifc.sockets,
                ifc.iface.ip_addrs(),
                scratch,
                &mut ifc.counters,
            );
            let mut dev = PortDevice::new(&mut *port, &mut ifc.bufs, &mut ifc.counters, ifc.mac);
            if served {
                ifc.iface.poll_egress(ts, &mut dev, &mut ifc.sockets);
            }
            dev.flush();
            more = got == BATCH_MAX;
            if !more {
                break;
            }
        }
        if more || !ifc.bufs.tx.is_empty() {
            return Some(Duration::ZERO);
        }
        ifc.iface.poll_delay(ts, &ifc.sockets).map(Duration::from)
    }

    fn ephemeral_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            p + 1
        };
        p
    }

    /// A client socket of type `T` on an interface (never a service's).
    fn client_mut<T: AnySocket<'static>>(
        &mut self,
        ifindex: u32,
        handle: SocketHandle,
    ) -> Result<(&mut T, &mut Interface), ProtoError> {
        let ifc = self.iface_mut(ifindex)?;
        if ifc.services.owns(handle) || ifc.dhcp.as_ref().is_some_and(|d| d.handle == handle) {
            return Err(ProtoError::NoSocket(ifindex));
        }
        let s = socket_mut::<T>(&mut ifc.sockets, handle).ok_or(ProtoError::NoSocket(ifindex))?;
        Ok((s, &mut ifc.iface))
    }

    /// Opens a TCP connection from an interface to `remote`; drive it with
    /// [`NetStack::poll`] and watch [`NetStack::tcp_state`].
    pub fn tcp_connect(
        &mut self,
        ifindex: u32,
        remote: (IpAddress, u16),
    ) -> Result<SocketHandle, ProtoError> {
        if !remote.0.is_unicast() {
            return Err(ProtoError::BadDestination(remote.0));
        }
        let local = self.ephemeral_port();
        let ifc = self.iface_mut(ifindex)?;
        let mut s = services::tcp_socket(ifc.tcp_rx);
        s.connect(ifc.iface.context(), remote, local)?;
        Ok(ifc.sockets.add(s))
    }

    /// Opens a TCP listener on an interface (one connection per listener).
    pub fn tcp_listen(&mut self, ifindex: u32, port: u16) -> Result<SocketHandle, ProtoError> {
        let ifc = self.iface_mut(ifindex)?;
        let mut s = services::tcp_socket(ifc.tcp_rx);
        s.listen(port)?;
        Ok(ifc.sockets.add(s))
    }

    /// Queues bytes on a TCP connection; returns how many fitted (0 when
    /// the send buffer is full).
    pub fn tcp_send(
        &mut self,
        ifindex: u32,
        handle: SocketHandle,
        data: &[u8],
    ) -> Result<usize, ProtoError> {
        let (s, _) = self.client_mut::<tcp::Socket>(ifindex, handle)?;
        Ok(s.send_slice(data)?)
    }

    /// Takes received bytes from a TCP connection; `Ok(0)` when none are
    /// waiting, [`ProtoError::TcpRecv`] with `Finished` once the peer has
    /// closed and everything was read.
    pub fn tcp_recv(
        &mut self,
        ifindex: u32,
        handle: SocketHandle,
        buf: &mut [u8],
    ) -> Result<usize, ProtoError> {
        let (s, _) = self.client_mut::<tcp::Socket>(ifindex, handle)?;
        Ok(s.recv_slice(buf)?)
    }

    /// The state of a TCP socket.
    pub fn tcp_state(&self, ifindex: u32, handle: SocketHandle) -> Result<TcpState, ProtoError> {
        let ifc = self.iface(ifindex)?;
        socket_ref::<tcp::Socket>(&ifc.sockets, handle)
            .map(tcp::Socket::state)
            .ok_or(ProtoError::NoSocket(ifindex))
    }

    /// Bytes queued on a TCP connection and not yet acknowledged.
    pub fn tcp_send_queue(&self, ifindex: u32, handle: SocketHandle) -> Result<usize, ProtoError> {
        let ifc = self.iface(ifindex)?;
        socket_ref::<tcp::Socket>(&ifc.sockets, handle)
            .map(tcp::Socket::send_queue)
            .ok_or(ProtoError::NoSocket(ifindex))
    }

    /// Closes the sending side of a TCP connection (FIN after queued data).
    pub fn tcp_close(&mut self, ifindex: u32, handle: SocketHandle) -> Result<(), ProtoError> {
        let (s, _) = self.client_mut::<tcp::Socket>(ifindex, handle)?;
        s.close();
        Ok(())
    }

    /// Opens a UDP socket on an interface, bound to `port` on every address.
    pub fn udp_bind(&mut self, ifindex: u32, port: u16) -> Result<SocketHandle, ProtoError> {
        let ifc = self.iface_mut(ifindex)?;
        let mut s = services::udp_socket();
        s.bind(IpListenEndpoint { addr: None, port })?;
        Ok(ifc.sockets.add(s))
    }

    /// Queues a datagram to `remote` (a unicast address, or the limited
    /// broadcast 255.255.255.255).
    pub fn udp_send(
        &mut self,
        ifindex: u32,
        handle: SocketHandle,
        remote: (IpAddress, u16),
        data: &[u8],
    ) -> Result<(), ProtoError> {
        if !remote.0.is_unicast() && !remote.0.is_broadcast() {
            return Err(ProtoError::BadDestination(remote.0));
        }
        let (s, _) = self.client_mut::<udp::Socket>(ifindex, handle)?;
        Ok(s.send_slice(data, remote)?)
    }

    /// Takes a received datagram, copied into `buf` (cut to fit); `None`
    /// when none is waiting.
    pub fn udp_recv(
        &mut self,
        ifindex: u32,
        handle: SocketHandle,
        buf: &mut [u8],
    ) -> Result<Option<Datagram>, ProtoError> {
        let (s, _) = self.client_mut::<udp::Socket>(ifindex, handle)?;
        match s.recv() {
            Ok((data, meta)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok(Some(Datagram {
                    len: n,
                    from: (meta.endpoint.addr, meta.endpoint.port),
                }))
            }
            Err(_) => Ok(None),
        }
    }

    /// Opens an ICMP echo (ping) socket with identifier `ident`.
    pub fn ping_open(&mut self, ifindex: u32, ident: u16) -> Result<SocketHandle, ProtoError> {
        let ifc = self.iface_mut(ifindex)?;
        let buffer = || {
            icmp::PacketBuffer::new(
                vec![icmp::PacketMetadata::EMPTY; ICMP_PACKETS],
                vec![0; ICMP_BUFFER],
            )
        };
        let mut s = icmp::Socket::new(buffer(), buffer());
        s.bind(icmp::Endpoint::Ident(ident))?;
        let handle = ifc.sockets.add(s);
        ifc.ping_idents.insert(handle, ident);
        Ok(handle)
    }

    /// Queues an ICMP (IPv4) or ICMPv6 (IPv6) echo request to `dst`.
    pub fn ping_send(
        &mut self,
        ifindex: u32,
        handle: SocketHandle,
        dst: IpAddress,
        seq: u16,
        payload: &[u8],
    ) -> Result<(), ProtoError> {
        if !dst.is_unicast() {
            return Err(ProtoError::BadDestination(dst));
        }
        let ident = self
            .iface(ifindex)?
            .ping_idents
            .get(&handle)
            .copied()
            .ok_or(ProtoError::NoSocket(ifindex))?;
        let (s, iface) = self.client_mut::<icmp::Socket>(ifindex, handle)?;
        let caps = ChecksumCapabilities::default();
        match dst {
            IpAddress::Ipv4(_) => {
                let repr = Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no: seq,
                    data: payload,
                };
                let buf = s.send(repr.buffer_len(), dst)?;
                repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps);
            }
            IpAddress::Ipv6(d6) => {
                let src = iface.get_source_address_ipv6(&d6);
                let repr = Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no: seq,
                    data: payload,
                };
                let buf = s.send(repr.buffer_len(), dst)?;
                repr.emit(&src, &d6, &mut Icmpv6Packet::new_unchecked(buf), &caps);
            }
        }
        Ok(())
    }

    /// Takes the next echo reply received on a ping socket, skipping other
    /// ICMP messages; `None` when none is waiting.
    pub fn ping_recv(
        &mut self,
        ifindex: u32,
        handle: SocketHandle,
    ) -> Result<Option<PingReply>, ProtoError> {
        let (s, _) = self.client_mut::<icmp::Socket>(ifindex, handle)?;
        let ignore = ChecksumCapabilities::ignored();
        while let Ok((data, from)) = s.recv() {
            let reply = match from {
                IpAddress::Ipv4(_) => Icmpv4Packet::new_checked(data)
                    .and_then(|p| Icmpv4Repr::parse(&p, &ignore))
                    .ok()
                    .and_then(|r| match r {
                        Icmpv4Repr::EchoReply {
                            ident,
                            seq_no,
                            data,
                        } => Some((ident, seq_no, data.len())),
                        _ => None,
                    }),
                IpAddress::Ipv6(a) => Icmpv6Packet::new_checked(data)
                    .and_then(|p| Icmpv6Repr::parse(&a, &a, &p, &ignore))
                    .ok()
                    .and_then(|r| match r {
                        Icmpv6Repr::EchoReply {
                            ident,
                            seq_no,
                            data,
                        } => Some((ident, seq_no, data.len())),
                        _ => None,
                    }),
            };
            if let Some((ident, seq, len)) = reply {
                return Ok(Some(PingReply {
                    from,
                    ident,
                    seq,
                    len,
                }));
            }
        }
        Ok(None)
    }

    /// Every socket of every interface, for listings. Reads only; the
    /// protocol task is paused while it runs (it allocates, so it is for the
    /// control path, never the packet path).
    pub fn sockets(&self) -> Vec<SocketInfo> {
        use smoltcp::socket::Socket;
        let mut out = Vec::new();
        for (&ifindex, ifc) in &self.ifaces {
            let dhcp = ifc.dhcp.as_ref().map(|d| d.handle);
            for (handle, socket) in ifc.sockets.iter() {
                let owner = if ifc.services.owns(handle) {
                    "service"
                } else if dhcp == Some(handle) {
                    "dhcp"
                } else {
                    "client"
                };
                let mut info = SocketInfo {
                    ifindex,
                    kind: "raw",
                    local: "*".into(),
                    remote: "*".into(),
                    state: "-".into(),
                    owner,
                    recv_queue: 0,
                    send_queue: 0,
                };
                match socket {
                    Socket::Tcp(s) => {
                        info.kind = "tcp";
                        info.local = match s.local_endpoint() {
                            Some(e) => e.to_string(),
                            None => listen_string(s.listen_endpoint()),
                        };
                        if let Some(e) = s.remote_endpoint() {
                            info.remote = e.to_string();
                        }
                        info.state = tcp_state_name(s.state()).into();
                        info.recv_queue = s.recv_queue();
                        info.send_queue = s.send_queue();
                    }
                    Socket::Udp(s) => {
                        info.kind = "udp";
                        info.local = listen_string(s.endpoint());
                        info.recv_queue = s.recv_queue();
                        info.send_queue = s.send_queue();
                    }
                    Socket::Icmp(s) => {
                        info.kind = "icmp";
                        if let Some(id) = ifc.ping_idents.get(&handle) {
                            info.local = format!("ident {id}");
                        }
                        info.recv_queue = s.recv_queue();
                        info.send_queue = s.send_queue();
                    }
                    Socket::Dhcpv4(_) => {
                        info.kind = "dhcp";
                        info.local = "*:68".into();
                        info.remote = "*:67".into();
                    }
                    Socket::Raw(_) => {}
                }
                out.push(info);
            }
        }
        out
    }

    /// Removes a client socket at once; a TCP peer is not told (close with
    /// [`NetStack::tcp_close`] and poll until `Closed` or `TimeWait` first
    /// for an orderly close).
    pub fn close_socket(&mut self, ifindex: u32, handle: SocketHandle) -> Result<(), ProtoError> {
        let ifc = self.iface_mut(ifindex)?;
        let is_client = !ifc.services.owns(handle)
            && ifc.dhcp.as_ref().is_none_or(|d| d.handle != handle)
            && ifc.sockets.iter().any(|(h, _)| h == handle);
        if !is_client {
            return Err(ProtoError::NoSocket(ifindex));
        }
        // The handle was just found in the set, so remove cannot panic.
        ifc.sockets.remove(handle);
        ifc.ping_idents.remove(&handle);
        Ok(())
    }
}

/// `ADDR:PORT`, or `*:PORT` for any address.
fn listen_string(e: IpListenEndpoint) -> String {
    match e.addr {
        Some(a) => smoltcp::wire::IpEndpoint::new(a, e.port).to_string(),
        None => format!("*:{}", e.port),
    }
}

/// The netstat spelling of a TCP state.
fn tcp_state_name(s: TcpState) -> &'static str {
    match s {
        TcpState::Closed => "CLOSED",
        TcpState::Listen => "LISTEN",
        TcpState::SynSent => "SYN_SENT",
        TcpState::SynReceived => "SYN_RCVD",
        TcpState::Established => "ESTABLISHED",
        TcpState::FinWait1 => "FIN_WAIT_1",
        TcpState::FinWait2 => "FIN_WAIT_2",
        TcpState::CloseWait => "CLOSE_WAIT",
        TcpState::Closing => "CLOSING",
        TcpState::LastAck => "LAST_ACK",
        TcpState::TimeWait => "TIME_WAIT",
    }
}
