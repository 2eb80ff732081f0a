//! Packet taps (BPF's role): capture what an interface receives and sends,
//! with a filter expression, into classic pcap files.
//!
//! - [`Filter`] parses a tcpdump-style expression: primitives `host A`,
//!   `src host A`, `dst host A`, `net A/P`, `port N`, `src port N`,
//!   `dst port N`, `ether host M`, `ether src M`, `ether dst M`,
//!   `ether proto N`, and the protocol names `ip`, `ip6`, `arp`, `tcp`, `udp`,
//!   `icmp`, `icmp6`, `vlan`; combined with `and`/`&&`, `or`/`||`,
//!   `not`/`!` and parentheses. Matching parses the frame with bounds checks
//!   and never panics on any input.
//! - [`Tap`] is one capture: a filter, a direction, and a bounded queue of
//!   copies. An interface with no tap pays one relaxed load per burst; with a
//!   tap, matching frames are copied (up to the snap length) and the copy is
//!   dropped and counted when the reader falls behind, never blocking the
//!   packet path.
//! - [`PcapWriter`] writes the classic pcap format (magic a1b2c3d4, version
//!   2.4, link type 1 = Ethernet) that tcpdump, tshark and Wireshark read.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use pktkit_native::Mbuf;

use crate::runtime::lock;

/// Which way a packet went through the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received.
    In,
    /// Transmitted.
    Out,
}

/// A parse error in a filter expression.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("filter: {0}")]
pub struct FilterError(pub String);

/// A compiled filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Matches everything.
    All,
    /// Both must match.
    And(Box<Filter>, Box<Filter>),
    /// Either must match.
    Or(Box<Filter>, Box<Filter>),
    /// The inner must not match.
    Not(Box<Filter>),
    /// An IP host, by side.
    Host(Side, IpAddr),
    /// An IP network, by side.
    Net(Side, IpAddr, u8),
    /// A TCP or UDP port, by side.
    Port(Side, u16),
    /// An Ethernet address, by side.
    EtherHost(Side, [u8; 6]),
    /// The ethertype (after any VLAN tag).
    EtherProto(u16),
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmp6).
    IpProto(u8),
    /// Frames carrying a VLAN tag.
    Vlan,
}

/// Source, destination, or either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Source or destination.
    Any,
    /// Source only.
    Src,
    /// Destination only.
    Dst,
}

/// The fields of a frame that filters look at.
#[derive(Default)]
struct Fields {
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    ethertype: u16,
    vlan: bool,
    ip: Option<(IpAddr, IpAddr, u8)>,
    ports: Option<(u16, u16)>,
}

fn parse_frame(f: &[u8]) -> Option<Fields> {
    let mut x = Fields::default();
    x.eth_dst.copy_from_slice(f.get(0..6)?);
    x.eth_src.copy_from_slice(f.get(6..12)?);
    let mut off = 12;
    let mut et = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
    if et == 0x8100 || et == 0x88a8 {
        x.vlan = true;
        off += 4;
        et = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
    }
    x.ethertype = et;
    let l3 = off + 2;
    let (proto, l4) = match et {
        0x0800 => {
            let h = f.get(l3..l3 + 20)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let src: [u8; 4] = h[12..16].try_into().ok()?;
            let dst: [u8; 4] = h[16..20].try_into().ok()?;
            x.ip = Some((IpAddr::from(src), IpAddr::from(dst), h[9]));
            // Only the first fragment carries the ports.
            let frag_off = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
            (h[9], (frag_off == 0).then_some(l3 + ihl))
        }
        0x86dd => {
            let h = f.get(l3..l3 + 40)?;
            let src: [u8; 16] = h[8..24].try_into().ok()?;
            let dst: [u8; 16] = h[24..40].try_into().ok()?;
            x.ip = Some((IpAddr::from(src), IpAddr::from(dst), h[6]));
            (h[6], Some(l3 + 40))
        }
        _ => return Some(x),
    };
    if let (6 | 17, Some(l4)) = (proto, l4) {
        if let Some(p) = f.get(l4..l4 + 4) {
            x.ports = Some((
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ));
        }
    }
    Some(x)
}

fn in_net(a: IpAddr, net: IpAddr, plen: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if plen == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(plen.min(32)))
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if plen == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(plen.min(128)))
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

fn side<T: PartialEq>(s: Side, src: T, dst: T, want: impl Fn(&T) -> bool) -> bool {
    match s {
        Side::Any => want(&src) || want(&dst),
        Side::Src => want(&src),
        Side::Dst => want(&dst),
    }
}

impl Filter {
    /// Parses an expression; an empty one matches everything.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        let spaced = expr.replace('(', " ( ").replace(')', " ) ");
        let toks: Vec<&str> = spaced.split_whitespace().collect();
        if toks.is_empty() {
            return Ok(Filter::All);
        }
        let mut p = Parser { toks, pos: 0 };
        let f = p.or()?;
        if p.pos != p.toks.len() {
            return Err(FilterError(format!("unexpected '{}'", p.toks[p.pos])));
        }
        Ok(f)
    }

    /// Whether a frame matches.
    pub fn matches(&self, frame: &[u8]) -> bool {
        match parse_frame(frame) {
            Some(x) => self.eval(&x),
            None => matches!(self, Filter::All),
        }
    }

    fn eval(&self, x: &Fields) -> bool {
        match self {
            Filter::All => true,
            Filter::And(a, b) => a.eval(x) && b.eval(x),
            Filter::Or(a, b) => a.eval(x) || b.eval(x),
            Filter::Not(a) => !a.eval(x),
            Filter::Host(s, h) => {
                x.ip.is_some_and(|(src, dst, _)| side(*s, src, dst, |a| a == h))
            }
            Filter::Net(s, n, p) => {
                x.ip.is_some_and(|(src, dst, _)| side(*s, src, dst, |a| in_net(*a, *n, *p)))
            }
            Filter::Port(s, port) => x
                .ports
                .is_some_and(|(src, dst)| side(*s, src, dst, |p| p == port)),
            Filter::EtherHost(s, m) => side(*s, x.eth_src, x.eth_dst, |a| a == m),
            Filter::EtherProto(t) => x.ethertype == *t,
            Filter::IpProto(p) => x.ip.is_some_and(|(_, _, q)| q == *p),
            Filter::Vlan => x.vlan,
        }
    }
}

struct Parser<'a> {
    toks: Vec<&'a str>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<&'a str, FilterError> {
        let t = self
            .peek()
            .ok_or_else(|| FilterError("expression ends too early".into()))?;
        self.pos += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut l = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.pos += 1;
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut l = self.unary()?;
        loop {
            match self.peek() {
                Some("and" | "&&") => {
                    self.pos += 1;
                    l = Filter::And(Box::new(l), Box::new(self.unary()?));
                }
                // tcpdump lets `and` be implied between primitives.
                Some(t) if t != "or" && t != "||" && t != ")" => {
                    l = Filter::And(Box::new(l), Box::new(self.unary()?));
                }
                _ => return Ok(l),
            }
        }
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        match self.next()? {
            "not" | "!" => Ok(Filter::Not(Box::new(self.unary()?))),
            "(" => {
                let f = self.or()?;
                match self.next()? {
                    ")" => Ok(f),
                    t => Err(FilterError(format!("expected ')', got '{t}'"))),
                }
            }
            t => self.primitive(t),
        }
    }

    fn primitive(&mut self, first: &'a str) -> Result<Filter, FilterError> {
        let (s, kw) = match first {
            "src" => (Side::Src, self.next()?),
            "dst" => (Side::Dst, self.next()?),
            k => (Side::Any, k),
        };
        match kw {
            "host" => {
                let a = self.next()?;
                let ip = a
                    .parse()
                    .map_err(|_| FilterError(format!("'{a}' is not an IP address")))?;
                Ok(Filter::Host(s, ip))
            }
            "net" => {
                let a = self.next()?;
                let (ip, p) = crate::cli::parse_cidr(a).map_err(FilterError)?;
                Ok(Filter::Net(s, ip, p))
            }
            "port" => {
                let a = self.next()?;
                let p = a
                    .parse()
                    .map_err(|_| FilterError(format!("'{a}' is not a port")))?;
                Ok(Filter::Port(s, p))
            }
            "ether" => match self.next()? {
                "host" => self.ether_host(Side::Any),
                "src" => self.ether_host(Side::Src),
                "dst" => self.ether_host(Side::Dst),
                "proto" => {
                    let a = self.next()?;
                    let v = match a {
                        "ip" => 0x0800,
                        "ip6" => 0x86dd,
                        "arp" => 0x0806,
                        _ => parse_num(a)?,
                    };
                    Ok(Filter::EtherProto(v))
                }
                t => Err(FilterError(format!("unknown ether qualifier '{t}'"))),
            },
            "ip" if s == Side::Any => Ok(Filter::EtherProto(0x0800)),
            "ip6" if s == Side::Any => Ok(Filter::EtherProto(0x86dd)),
            "arp" if s == Side::Any => Ok(Filter::EtherProto(0x0806)),
            "vlan" if s == Side::Any => Ok(Filter::Vlan),
            "tcp" if s == Side::Any => Ok(Filter::IpProto(6)),
            "udp" if s == Side::Any => Ok(Filter::IpProto(17)),
            "icmp" if s == Side::Any => Ok(Filter::IpProto(1)),
            "icmp6" if s == Side::Any => Ok(Filter::IpProto(58)),
            t => Err(FilterError(format!("unknown primitive '{t}'"))),
        }
    }

    fn ether_host(&mut self, s: Side) -> Result<Filter, FilterError> {
        let a = self.next()?;
        let m = pktkit_native::options::parse_mac(a)
            .ok_or_else(|| FilterError(format!("'{a}' is not a MAC address")))?;
        Ok(Filter::EtherHost(s, m))
    }
}

fn parse_num(a: &str) -> Result<u16, FilterError> {
    let r = match a.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16),
        None => a.parse(),
    };
    r.map_err(|_| FilterError(format!("'{a}' is not a number")))
}

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Captured {
    /// When it was seen.
    pub time: SystemTime,
    /// Which way it went.
    pub dir: Direction,
    /// Its length on the wire.
    pub orig_len: usize,
    /// Its first `snaplen` bytes.
    pub data: Vec<u8>,
}

/// One capture on one interface.
pub struct Tap {
    filter: Filter,
    dir: Option<Direction>,
    snaplen: usize,
    limit: usize,
    queue: Mutex<VecDeque<Captured>>,
    captured: AtomicU64,
    dropped: AtomicU64,
}

impl Tap {
    /// A capture of frames matching `filter` (both directions unless `dir`),
    /// keeping `snaplen` bytes of each and at most `limit` frames unread.
    pub fn new(filter: Filter, dir: Option<Direction>, snaplen: usize, limit: usize) -> Tap {
        Tap {
            filter,
            dir,
            snaplen: snaplen.max(14),
            limit: limit.max(1),
            queue: Mutex::new(VecDeque::new()),
            captured: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Offers a packet to the tap (called from the packet path).
    pub fn offer(&self, dir: Direction, m: &Mbuf) {
        if self.dir.is_some_and(|d| d != dir) {
            return;
        }
        let head = m.data();
        // The filter needs the headers; they are in the first buffer for
        // every frame the stack builds, and a chain is flattened otherwise.
        let matched = if head.len() >= 64 || !m.is_chained() {
            self.filter.matches(head)
        } else {
            self.filter.matches(&m.to_vec())
        };
        if !matched {
            return;
        }
        let mut q = lock(&self.queue);
        if q.len() >= self.limit {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut data = vec![0u8; m.pkt_len().min(self.snaplen)];
        let n = m.copy_out(&mut data);
        data.truncate(n);
        q.push_back(Captured {
            time: SystemTime::now(),
            dir,
            orig_len: m.pkt_len(),
            data,
        });
        self.captured.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes up to `max` captured frames, oldest first.
    pub fn drain(&self, max: usize) -> Vec<Captured> {
        let mut q = lock(&self.queue);
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// Frames captured and frames dropped because the reader fell behind.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.captured.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

/// Writes classic pcap files (microsecond timestamps, Ethernet).
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Writes one record.
    pub fn write(&mut self, c: &Captured) -> io::Result<()> {
        let t = c.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(t.as_secs() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&t.subsec_micros().to_le_bytes());
        h[8..12].copy_from_slice(&(c.data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(c.orig_len as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&c.data)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn filters_match_like_tcpdump() {
        let f = udp4([192, 0, 2, 1], [192, 0, 2, 2], 5000, 7);
        let m = |e: &str| Filter::parse(e).unwrap().matches(&f);
        assert!(m(""));
        assert!(m("udp"));
        assert!(!m("tcp"));
        assert!(m("host 192.0.2.1") && m("src host 192.0.2.1") && !m("dst host 192.0.2.1"));
        assert!(m("port 7") && m("dst port 7") && !m("src port 7"));
        assert!(m("udp and port 7") && m("udp port 7") && !m("udp and not port 7"));
        assert!(m("tcp or (udp and dst port 7)"));
        assert!(m("net 192.0.2.0/24") && !m("net 198.51.100.0/24"));
        assert!(m("ether proto 0x0800") && m("ip") && !m("ip6") && !m("arp"));
        assert!(m("ether src 02:00:00:00:00:01") && !m("ether dst 02:00:00:00:00:01"));
        assert!(!m("vlan"));
        for bad in [
            "host",
            "port x",
            "(udp",
            "udp)",
            "bogus",
            "ether proto zz",
            "host 1.2.3",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad} should not parse");
        }
        // Truncated and garbage frames never panic.
        for n in 0..f.len() {
            let _ = Filter::parse("udp port 7").unwrap().matches(&f[..n]);
        }
    }

    #[test]
    fn pcap_layout() {
        let mut w = PcapWriter::new(Vec::new(), 65535).unwrap();
        let c = Captured {
            time: UNIX_EPOCH,
            dir: Direction::In,
            orig_len: 100,
            data: vec![1, 2, 3],
        };
        w.write(&c).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 100);
    }
}
