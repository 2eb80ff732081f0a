//! The protocol layer: IPv4/IPv6, ARP, NDP, ICMP, UDP, TCP and DHCPv4 from
//! smoltcp, bound to pktkit interfaces, plus inetd-style built-in services.
//!
//! # Shape
//!
//! One [`NetStack`] runs in one thread, like io-pkt's stack thread: the
//! runtime calls [`NetStack::poll`] for an interface whenever that
//! interface's queues may have work or the stack's timer (the returned delay)
//! expires. The stack never blocks and never spawns threads.
//!
//! ```text
//!   runtime ──poll(ifindex, &mut dyn Port, now)──▶ NetStack
//!                                                   │ per interface:
//!                                                   │  smoltcp Interface + its own SocketSet
//!                                                   │  services (echo, discard), DHCPv4 client
//!                                                   ▼
//!            PortDevice (smoltcp phy::Device) ── Port::recv / Port::send ──▶ driver queues
//! ```
//!
//! - [`Port`] is how the stack reaches an interface's data path; the stack
//!   glue implements it over a driver's `RxQueue`/`TxQueue` (taking the
//!   driver's lock as its concurrency class demands).
//! - Every interface has its own smoltcp `Interface` *and its own socket
//!   set*: a connection accepted on an interface lives in that interface's
//!   set, so its replies leave through the interface it came in on, and the
//!   services listen on every interface separately.
//! - The device adapter (`device.rs`) is zero-copy for frames that fit one
//!   mbuf: smoltcp parses received frames straight out of the mbuf, and
//!   writes transmitted frames straight into a fresh mbuf from the port's
//!   pool. Frames spanning an mbuf chain go through a scratch buffer
//!   allocated once per interface. Nothing on this path allocates from the
//!   heap.
//! - Frames are screened before smoltcp sees them (too short, not addressed
//!   to us, unknown ethertype, truncated or inconsistent ARP/IPv4/IPv6
//!   headers, bad IPv4 header checksum, non-unicast source): smoltcp drops
//!   such frames silently, so the screen is where they are counted
//!   ([`ProtoCounters`]). smoltcp then parses everything again with its own
//!   checked `Packet`/`Repr` parsers, which never panic on any input.
//! - Addresses: each interface gets an IPv6 link-local address derived from
//!   its MAC by EUI-64 ([`link_local`]) and any number of configured ones
//!   (smoltcp keeps at most 8 per interface, link-local included).
//! - Routes are kept stack-wide ([`NetStack::add_route`]) and installed into
//!   the interface on whose subnet the gateway lies; they follow address
//!   changes (a route whose gateway is not on any subnet yet waits, e.g. for
//!   a DHCP lease). smoltcp holds at most 2 routes per interface.
//! - ICMP echo replies, ARP and NDP are answered by smoltcp itself.
//! - Services ([`Service`], [`NetStack::serve`]) run inside `poll`, on
//!   every interface. smoltcp has no listen backlog, so the stack feeds
//!   smoltcp frame by frame and gives a service a new listener as soon as
//!   one takes a connection; a burst of SYNs in one batch is not refused.
//! - smoltcp does not fragment IPv6 and does not check the MTU for it: a
//!   frame it builds over the MTU is dropped and counted (`tx_oversize`).
//!
//! # Panic contract
//!
//! No frame, however malformed, makes the stack panic: the screen uses
//! smoltcp's checked parsers only and every failure is counted. Socket
//! handles passed to the client helpers are looked up without panicking
//! (a stale or foreign handle gives [`ProtoError::NoSocket`]).

mod device;
mod services;
mod stack;

use std::fmt;
use std::str::FromStr;

use pktkit_native::{OwnerId, PacketBatch, Pool};

pub use smoltcp::iface::SocketHandle;
pub use smoltcp::socket::tcp::State as TcpState;
pub use smoltcp::wire::{IpAddress, IpCidr, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};
pub use stack::{Datagram, DhcpLease, NetStack, PingReply, RouteInfo, SocketInfo};

/// An interface's data path as the protocol layer sees it.
///
/// The stack glue implements this over a started driver's first rx and tx
/// queue; test code implements it over in-memory queues. Neither call may
/// block.
pub trait Port {
    /// Receives up to `batch.room()` frames (wraps the driver's
    /// `RxQueue::rx_burst` under the driver's lock); returns how many were
    /// appended.
    fn recv(&mut self, batch: &mut PacketBatch) -> usize;
    /// Transmits from the front of `batch`; returns how many were taken
    /// (wraps `TxQueue::tx_burst`). Packets not taken stay in the batch.
    fn send(&mut self, batch: &mut PacketBatch) -> usize;
    /// The pool transmit buffers are allocated from.
    fn pool(&self) -> &Pool;
    /// The accounting owner of transmit buffers.
    fn owner(&self) -> OwnerId;
    /// The interface's station address.
    fn mac(&self) -> [u8; 6];
    /// The interface's IP MTU (1500 for plain Ethernet), without the
    /// 14-byte Ethernet header.
    fn mtu(&self) -> usize;
    /// Runs the output packet filter hooks ([`crate::pfil`]) on a frame
    /// the protocol layer built, before it is queued; false means a hook
    /// dropped it (the caller frees it). Passes everything by default.
    fn output_filter(&mut self, _frame: &mut pktkit_native::Mbuf) -> bool {
        true
    }
    /// Full-size frames the device holds on receive when that is few
    /// (`Driver::rx_ring_frames`); TCP windows on the interface are kept
    /// within it. `None` (the default): no limit.
    fn rx_ring_frames(&self) -> Option<u32> {
        None
    }
}

/// Per-interface counters of the protocol layer.
///
/// `rx_*` drop counters are for frames screened out before smoltcp; frames
/// smoltcp itself ignores after the screen (e.g. TCP segments for a closed
/// port, which it answers with RST) are in `rx_frames`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtoCounters {
    /// Frames handed to smoltcp.
    pub rx_frames: u64,
    /// Bytes of the frames handed to smoltcp.
    pub rx_bytes: u64,
    /// Frames shorter than an Ethernet header (14 bytes).
    pub rx_runt: u64,
    /// Frames larger than the interface's scratch buffer (chained jumbo
    /// frames beyond the MTU).
    pub rx_oversize: u64,
    /// Unicast frames addressed to another station.
    pub rx_not_for_us: u64,
    /// Frames of an ethertype the stack does not speak (not ARP/IPv4/IPv6).
    pub rx_unknown_ethertype: u64,
    /// ARP/IPv4/IPv6 frames with truncated or inconsistent headers, a bad
    /// IPv4 header checksum or a non-unicast source address.
    pub rx_malformed: u64,
    /// Frames queued for transmission (taken by the port now or on a later
    /// poll: queued frames are never dropped).
    pub tx_frames: u64,
    /// Bytes of the frames queued for transmission.
    pub tx_bytes: u64,
    /// Frames smoltcp built longer than the MTU (IPv6, which it does not
    /// fragment), dropped.
    pub tx_oversize: u64,
    /// Frames not sent because the pool had no buffer.
    pub tx_no_buffer: u64,
    /// Reply frames dropped because the port's queue and the transmit batch
    /// were both full.
    pub tx_dropped: u64,
    /// Times smoltcp was told to hold its output because the port's queue
    /// and the transmit batch were full (it retries on a later poll).
    pub tx_busy: u64,
    /// UDP datagrams a service could not answer (its send buffer was full).
    pub service_drops: u64,
}

/// A built-in service, like inetd's internal ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// RFC 862: sends back whatever it receives (TCP and UDP port 7).
    Echo,
    /// RFC 863: throws away whatever it receives (TCP and UDP port 9).
    Discard,
}

impl Service {
    /// Every service, in a fixed order.
    pub const ALL: [Service; 2] = [Service::Echo, Service::Discard];

    /// The well-known port (TCP and UDP).
    pub const fn port(self) -> u16 {
        match self {
            Service::Echo => 7,
            Service::Discard => 9,
        }
    }

    /// The service's name as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Discard => "discard",
        }
    }

    const fn index(self) -> usize {
        match self {
            Service::Echo => 0,
            Service::Discard => 1,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Service {
    type Err = ProtoError;

    fn from_str(s: &str) -> Result<Service, ProtoError> {
        Service::ALL
            .into_iter()
            .find(|svc| svc.name() == s)
            .ok_or_else(|| ProtoError::UnknownService(s.to_owned()))
    }
}

/// Why a protocol-layer request failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// No interface with this index was added to the stack.
    #[error("no interface with index {0} in the protocol stack")]
    NoInterface(u32),
    /// An interface with this index was already added.
    #[error("interface {0} is already in the protocol stack")]
    InterfaceExists(u32),
    /// The MAC address cannot be a station address (multicast or all-zero).
    #[error("{0:02x?} is not a unicast MAC address")]
    BadMac([u8; 6]),
    /// The MTU is outside what the stack accepts (576..=9216).
    #[error("MTU {0} is out of range (576..=9216)")]
    BadMtu(usize),
    /// The interface already holds the most addresses smoltcp allows (8,
    /// the IPv6 link-local one included).
    #[error("interface {0} has no room for another address (at most 8)")]
    TooManyAddresses(u32),
    /// The address cannot be assigned (not unicast).
    #[error("{0} cannot be assigned to an interface (not a unicast address)")]
    BadAddress(IpCidr),
    /// The address is not assigned to the interface.
    #[error("{1} is not an address of interface {0}")]
    NoSuchAddress(u32, IpCidr),
    /// The route's gateway is not a unicast address, or of another family
    /// than its destination.
    #[error("bad route {dest} via {gw}: the gateway must be a unicast address of the same family")]
    BadRoute {
        /// Destination prefix.
        dest: IpCidr,
        /// Gateway.
        gw: IpAddress,
    },
    /// The interface's route table is full (smoltcp holds 2 routes per
    /// interface, a DHCP default route included).
    #[error("route table of interface {0} is full (at most 2 routes per interface)")]
    RouteTableFull(u32),
    /// No such route was added.
    #[error("no route {dest} via {gw}")]
    NoSuchRoute {
        /// Destination prefix.
        dest: IpCidr,
        /// Gateway.
        gw: IpAddress,
    },
    /// The service name is not known (known: echo, discard).
    #[error("unknown service '{0}' (known: echo, discard)")]
    UnknownService(String),
    /// The handle names no socket of this kind on this interface.
    #[error("no such socket on interface {0}")]
    NoSocket(u32),
    /// The destination cannot be reached with this kind of socket (not
    /// unicast, or unspecified).
    #[error("{0} is not a valid destination")]
    BadDestination(IpAddress),
    /// A TCP listen failed (e.g. port 0).
    #[error("tcp listen: {0}")]
    TcpListen(#[from] smoltcp::socket::tcp::ListenError),
    /// A TCP connect failed (no source address for the destination, port 0).
    #[error("tcp connect: {0}")]
    TcpConnect(#[from] smoltcp::socket::tcp::ConnectError),
    /// A TCP send failed (connection not open for sending).
    #[error("tcp send: {0}")]
    TcpSend(#[from] smoltcp::socket::tcp::SendError),
    /// A TCP receive failed (connection reset or closed by the peer).
    #[error("tcp receive: {0}")]
    TcpRecv(#[from] smoltcp::socket::tcp::RecvError),
    /// A UDP bind failed (port 0 or already bound).
    #[error("udp bind: {0}")]
    UdpBind(#[from] smoltcp::socket::udp::BindError),
    /// A UDP send failed (buffer full, or no source address for the destination).
    #[error("udp send: {0}")]
    UdpSend(#[from] smoltcp::socket::udp::SendError),
    /// An ICMP bind failed.
    #[error("icmp bind: {0}")]
    IcmpBind(#[from] smoltcp::socket::icmp::BindError),
    /// An ICMP send failed (buffer full, or no source address).
    #[error("icmp send: {0}")]
    IcmpSend(#[from] smoltcp::socket::icmp::SendError),
}

/// The IPv6 link-local address of a MAC, by modified EUI-64 (RFC 4291
/// appendix A): `fe80::` + the MAC with `ff:fe` in the middle and the
/// universal/local bit flipped, prefix length 64.
pub fn link_local(mac: [u8; 6]) -> Ipv6Cidr {
    let iid = [
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ];
    let mut octets = [0u8; 16];
    octets[0] = 0xfe;
    octets[1] = 0x80;
    octets[8..].copy_from_slice(&iid);
    Ipv6Cidr::new(Ipv6Address::from(octets), 64)
}

/// The link-layer multicast groups an interface with these addresses must
/// receive for the protocols to work: IPv4 all-hosts 224.0.0.1 (RFC 1112
/// §6.4) when it has an IPv4 address, and for IPv6 all-nodes ff02::1 and each
/// address's solicited-node group ff02::1:ffxx:xxxx (RFC 4291 §2.7.1), mapped
/// to 33:33 + the low 32 bits (RFC 2464 §7). NDP fails on a NIC whose filter
/// lacks them, so the stack programs them into every protocol interface.
pub fn required_groups(addrs: &[IpCidr]) -> Vec<[u8; 6]> {
    let mut groups: Vec<[u8; 6]> = Vec::new();
    let mut add = |g: [u8; 6]| {
        if !groups.contains(&g) {
            groups.push(g);
        }
    };
    for a in addrs {
        match a {
            IpCidr::Ipv4(_) => add([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
            IpCidr::Ipv6(c) => {
                let o = c.address().octets();
                add([0x33, 0x33, 0x00, 0x00, 0x00, 0x01]);
                add([0x33, 0x33, 0xff, o[13], o[14], o[15]]);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_groups_follow_addresses() {
        let ll = link_local([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        let g = required_groups(&[IpCidr::Ipv6(ll), "192.0.2.1/24".parse().unwrap()]);
        assert_eq!(
            g,
            [
                [0x33, 0x33, 0, 0, 0, 1],
                [0x33, 0x33, 0xff, 0x12, 0x34, 0x56],
                [0x01, 0x00, 0x5e, 0, 0, 1]
            ]
        );
        assert!(required_groups(&[]).is_empty());
    }

    #[test]
    fn link_local_is_eui64() {
        // RFC 4291 appendix A's example: 34-56-78-9A-BC-DE -> 3656:78ff:fe9a:bcde.
        let ll = link_local([0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]);
        assert_eq!(ll.prefix_len(), 64);
        assert_eq!(
            ll.address(),
            "fe80::3656:78ff:fe9a:bcde".parse::<Ipv6Address>().unwrap()
        );
        // A locally administered MAC gets its U/L bit cleared.
        let ll = link_local([0x02, 0, 0, 0, 0, 1]);
        assert_eq!(
            ll.address(),
            "fe80::ff:fe00:1".parse::<Ipv6Address>().unwrap()
        );
    }

    #[test]
    fn services_parse_and_name() {
        assert_eq!("echo".parse::<Service>().unwrap(), Service::Echo);
        assert_eq!("discard".parse::<Service>().unwrap().port(), 9);
        assert!(matches!(
            "chargen".parse::<Service>(),
            Err(ProtoError::UnknownService(s)) if s == "chargen"
        ));
        assert_eq!(Service::Echo.to_string(), "echo");
    }
}
