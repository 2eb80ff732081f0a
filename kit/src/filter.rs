//! Capture filter expressions (tcpdump's language, the common part) and the
//! frame header parser that both the taps and the stateless filter use.
//!
//! - [`Filter`] is a parsed expression: primitives `host A`, `src host A`,
//!   `dst host A`, `net A/P`, `port N`, `src port N`, `dst port N`,
//!   `ether host M`, `ether src M`, `ether dst M`, `ether proto N`, and the
//!   protocol names `ip`, `ip6`, `arp`, `tcp`, `udp`, `icmp`, `icmp6`,
//!   `vlan`; combined with `and`/`&&`, `or`/`||`, `not`/`!` and
//!   parentheses, `and` binding tighter than `or` and implied between two
//!   primitives written side by side (`udp port 7`). A parse error says
//!   where: [`FilterError::pos`] is the byte offset of the offending word.
//! - [`FrameInfo::parse`] reads the Ethernet, VLAN, IPv4/IPv6 and TCP/UDP
//!   headers with bounds checks; it never panics on any input and never
//!   allocates.

use std::fmt;
use std::net::IpAddr;

/// A parse error in a filter expression, with where it happened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("filter: at column {}: {msg}", pos + 1)]
pub struct FilterError {
    /// Byte offset in the expression of the word that is wrong (the
    /// expression's length when it ended too early).
    pub pos: usize,
    /// What is wrong.
    pub msg: String,
}

impl FilterError {
    /// The expression with a caret under the error, for terminals.
    pub fn pointer(&self, expr: &str) -> String {
        let col = expr
            .char_indices()
            .take_while(|(i, _)| *i < self.pos)
            .count();
        format!("  {expr}\n  {}^", " ".repeat(col))
    }
}

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

/// Ethertype of IPv4.
pub const ETHERTYPE_IP: u16 = 0x0800;
/// Ethertype of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The IP layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol (IPv4) or first next header (IPv6).
    pub proto: u8,
    /// Offset of the transport header in the frame; `None` for a
    /// non-first IPv4 fragment (which carries no transport header).
    pub l4: Option<usize>,
    /// Length of the IP packet as its header says.
    pub len: usize,
}

/// The headers of a frame that filters look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Ethernet source.
    pub eth_src: [u8; 6],
    /// Ethernet destination.
    pub eth_dst: [u8; 6],
    /// Ethertype after any VLAN tag.
    pub ethertype: u16,
    /// Whether an 802.1Q/802.1ad tag was there.
    pub vlan: bool,
    /// Offset of the network header.
    pub l3: usize,
    /// The IP layer, for IPv4 and IPv6 frames with a whole header.
    pub ip: Option<IpInfo>,
    /// TCP/UDP source and destination ports, when the header is there.
    pub ports: Option<(u16, u16)>,
}

fn be16(f: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]))
}

impl FrameInfo {
    /// Parses the headers of an Ethernet frame; `None` when it is shorter
    /// than an Ethernet header. Truncated upper headers leave `ip` or
    /// `ports` empty.
    pub fn parse(f: &[u8]) -> Option<FrameInfo> {
        let mut x = FrameInfo {
            eth_src: [0; 6],
            eth_dst: [0; 6],
            ethertype: 0,
            vlan: false,
            l3: 14,
            ip: None,
            ports: None,
        };
        x.eth_dst.copy_from_slice(f.get(0..6)?);
        x.eth_src.copy_from_slice(f.get(6..12)?);
        let mut et = be16(f, 12)?;
        if et == 0x8100 || et == 0x88a8 {
            x.vlan = true;
            x.l3 += 4;
            et = be16(f, 16)?;
        }
        x.ethertype = et;
        let l3 = x.l3;
        x.ip = match et {
            ETHERTYPE_IP => f.get(l3..l3 + 20).and_then(|h| {
                let ihl = usize::from(h[0] & 0x0f) * 4;
                if h[0] >> 4 != 4 || ihl < 20 {
                    return None;
                }
                let src: [u8; 4] = h[12..16].try_into().ok()?;
                let dst: [u8; 4] = h[16..20].try_into().ok()?;
                // Only the first fragment carries the transport header.
                let frag_off = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
                Some(IpInfo {
                    src: IpAddr::from(src),
                    dst: IpAddr::from(dst),
                    proto: h[9],
                    l4: (frag_off == 0).then_some(l3 + ihl),
                    len: usize::from(u16::from_be_bytes([h[2], h[3]])),
                })
            }),
            ETHERTYPE_IPV6 => f.get(l3..l3 + 40).and_then(|h| {
                if h[0] >> 4 != 6 {
                    return None;
                }
                let src: [u8; 16] = h[8..24].try_into().ok()?;
                let dst: [u8; 16] = h[24..40].try_into().ok()?;
                let (proto, l4) = ipv6_upper(f, h[6], l3 + 40);
                Some(IpInfo {
                    src: IpAddr::from(src),
                    dst: IpAddr::from(dst),
                    proto,
                    l4,
                    len: 40 + usize::from(u16::from_be_bytes([h[4], h[5]])),
                })
            }),
            _ => None,
        };
        if let Some(IpInfo {
            proto: 6 | 17,
            l4: Some(l4),
            ..
        }) = x.ip
        {
            if let (Some(s), Some(d)) = (be16(f, l4), be16(f, l4 + 2)) {
                x.ports = Some((s, d));
            }
        }
        Some(x)
    }
}

/// Most IPv6 extension headers followed before giving up.
const MAX_EXT_HEADERS: usize = 8;

/// Follows IPv6 extension headers (hop-by-hop, routing, fragment,
/// destination options) from `next` at `off` to the upper-layer protocol;
/// returns it and its offset (`None` in a non-first fragment, or when the
/// chain is truncated or too long, where the last header seen is returned).
fn ipv6_upper(f: &[u8], mut next: u8, mut off: usize) -> (u8, Option<usize>) {
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            // RFC 8200 4.3, 4.4, 4.6: length in 8-octet units, not counting
            // the first 8.
            0 | 43 | 60 => {
                let (Some(&n), Some(&len)) = (f.get(off), f.get(off + 1)) else {
                    return (next, None);
                };
                next = n;
                off += 8 + usize::from(len) * 8;
            }
            // RFC 8200 4.5: fixed 8 bytes; offset in the upper 13 bits.
            44 => {
                let (Some(&n), Some(fo)) = (f.get(off), be16(f, off + 2)) else {
                    return (next, None);
                };
                if fo >> 3 != 0 {
                    return (n, None);
                }
                next = n;
                off += 8;
            }
            _ => return (next, Some(off)),
        }
    }
    (next, None)
}

/// Whether `a` is inside `net/plen` (false across address families).
pub fn in_net(a: IpAddr, net: IpAddr, plen: u8) -> bool {
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
        let toks = tokenize(expr);
        if toks.is_empty() {
            return Ok(Filter::All);
        }
        let mut p = Parser {
            toks,
            pos: 0,
            end: expr.len(),
        };
        let f = p.or()?;
        if let Some(t) = p.toks.get(p.pos) {
            return Err(FilterError {
                pos: t.at,
                msg: format!("unexpected '{}'", t.text),
            });
        }
        Ok(f)
    }

    /// Whether a frame matches.
    pub fn matches(&self, frame: &[u8]) -> bool {
        match FrameInfo::parse(frame) {
            Some(x) => self.eval(&x),
            None => matches!(self, Filter::All),
        }
    }

    /// Whether parsed headers match.
    pub fn eval(&self, x: &FrameInfo) -> bool {
        match self {
            Filter::All => true,
            Filter::And(a, b) => a.eval(x) && b.eval(x),
            Filter::Or(a, b) => a.eval(x) || b.eval(x),
            Filter::Not(a) => !a.eval(x),
            Filter::Host(s, h) => x.ip.is_some_and(|i| side(*s, i.src, i.dst, |a| a == h)),
            Filter::Net(s, n, p) => {
                x.ip.is_some_and(|i| side(*s, i.src, i.dst, |a| in_net(*a, *n, *p)))
            }
            Filter::Port(s, port) => x
                .ports
                .is_some_and(|(src, dst)| side(*s, src, dst, |p| p == port)),
            Filter::EtherHost(s, m) => side(*s, x.eth_src, x.eth_dst, |a| a == m),
            Filter::EtherProto(t) => x.ethertype == *t,
            Filter::IpProto(p) => x.ip.is_some_and(|i| i.proto == *p),
            Filter::Vlan => x.vlan,
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &Side| match s {
            Side::Any => "",
            Side::Src => "src ",
            Side::Dst => "dst ",
        };
        match self {
            Filter::All => f.write_str("(all)"),
            Filter::And(a, b) => write!(f, "({a} and {b})"),
            Filter::Or(a, b) => write!(f, "({a} or {b})"),
            Filter::Not(a) => write!(f, "not {a}"),
            Filter::Host(s, h) => write!(f, "{}host {h}", side(s)),
            Filter::Net(s, n, p) => write!(f, "{}net {n}/{p}", side(s)),
            Filter::Port(s, p) => write!(f, "{}port {p}", side(s)),
            Filter::EtherHost(s, m) => {
                let which = match s {
                    Side::Any => "host",
                    Side::Src => "src",
                    Side::Dst => "dst",
                };
                write!(f, "ether {which} {}", crate::iface::fmt_mac(m))
            }
            Filter::EtherProto(t) => write!(f, "ether proto 0x{t:04x}"),
            Filter::IpProto(1) => f.write_str("icmp"),
            Filter::IpProto(6) => f.write_str("tcp"),
            Filter::IpProto(17) => f.write_str("udp"),
            Filter::IpProto(58) => f.write_str("icmp6"),
            Filter::IpProto(p) => write!(f, "ip proto {p}"),
            Filter::Vlan => f.write_str("vlan"),
        }
    }
}

/// A word of the expression and where it starts.
#[derive(Clone, Copy, Debug)]
struct Tok<'a> {
    text: &'a str,
    at: usize,
}

/// Splits at white space; `(`, `)`, `!`, `&&` and `||` are words of their
/// own wherever they stand.
fn tokenize(expr: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = b.get(i..i + 2);
        let len = if two == Some(b"&&") || two == Some(b"||") {
            2
        } else if matches!(c, b'(' | b')' | b'!') {
            1
        } else {
            let mut j = i;
            while j < b.len() {
                let d = b[j];
                let op = d == b'&' && b.get(j + 1) == Some(&b'&')
                    || d == b'|' && b.get(j + 1) == Some(&b'|');
                if d.is_ascii_whitespace() || matches!(d, b'(' | b')' | b'!') || op {
                    break;
                }
                j += 1;
            }
            j - i
        };
        // Word boundaries are ASCII bytes, so the slice is on char
        // boundaries (a multi-byte char is never split).
        if let Some(text) = expr.get(i..i + len) {
            out.push(Tok { text, at: i });
        }
        i += len.max(1);
    }
    out
}

struct Parser<'a> {
    toks: Vec<Tok<'a>>,
    pos: usize,
    end: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).map(|t| t.text)
    }

    fn next(&mut self, want: &str) -> Result<Tok<'a>, FilterError> {
        let t = self
            .toks
            .get(self.pos)
            .copied()
            .ok_or_else(|| FilterError {
                pos: self.end,
                msg: format!("expression ends too early: {want} expected"),
            })?;
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
        let t = self.next("a primitive")?;
        match t.text {
            "not" | "!" => Ok(Filter::Not(Box::new(self.unary()?))),
            "(" => {
                let f = self.or()?;
                let close = self.next("')'")?;
                if close.text == ")" {
                    Ok(f)
                } else {
                    Err(err(close, format!("expected ')', got '{}'", close.text)))
                }
            }
            _ => self.primitive(t),
        }
    }

    fn primitive(&mut self, first: Tok<'a>) -> Result<Filter, FilterError> {
        let (s, kw) = match first.text {
            "src" => (Side::Src, self.next("host, net or port")?),
            "dst" => (Side::Dst, self.next("host, net or port")?),
            _ => (Side::Any, first),
        };
        match kw.text {
            "host" => {
                let a = self.next("an IP address")?;
                let ip = a
                    .text
                    .parse()
                    .map_err(|_| err(a, format!("'{}' is not an IP address", a.text)))?;
                Ok(Filter::Host(s, ip))
            }
            "net" => {
                let a = self.next("ADDR/PLEN")?;
                let (ip, p) = crate::cli::parse_cidr(a.text).map_err(|m| err(a, m))?;
                Ok(Filter::Net(s, ip, p))
            }
            "port" => {
                let a = self.next("a port number")?;
                let p = a
                    .text
                    .parse()
                    .map_err(|_| err(a, format!("'{}' is not a port (0-65535)", a.text)))?;
                Ok(Filter::Port(s, p))
            }
            "ether" if s == Side::Any => {
                let q = self.next("host, src, dst or proto")?;
                match q.text {
                    "host" => self.ether_host(Side::Any),
                    "src" => self.ether_host(Side::Src),
                    "dst" => self.ether_host(Side::Dst),
                    "proto" => {
                        let a = self.next("an ethertype")?;
                        let v = match a.text {
                            "ip" => ETHERTYPE_IP,
                            "ip6" => ETHERTYPE_IPV6,
                            "arp" => ETHERTYPE_ARP,
                            _ => parse_num(a)?,
                        };
                        Ok(Filter::EtherProto(v))
                    }
                    t => Err(err(
                        q,
                        format!("unknown ether qualifier '{t}' (host, src, dst, proto)"),
                    )),
                }
            }
            "ip" if s == Side::Any => Ok(Filter::EtherProto(ETHERTYPE_IP)),
            "ip6" if s == Side::Any => Ok(Filter::EtherProto(ETHERTYPE_IPV6)),
            "arp" if s == Side::Any => Ok(Filter::EtherProto(ETHERTYPE_ARP)),
            "vlan" if s == Side::Any => Ok(Filter::Vlan),
            "tcp" if s == Side::Any => Ok(Filter::IpProto(6)),
            "udp" if s == Side::Any => Ok(Filter::IpProto(17)),
            "icmp" if s == Side::Any => Ok(Filter::IpProto(1)),
            "icmp6" if s == Side::Any => Ok(Filter::IpProto(58)),
            t if s != Side::Any => Err(err(
                kw,
                format!("'{t}' after src/dst: expected host, net or port"),
            )),
            ")" => Err(err(kw, "unbalanced ')'".to_owned())),
            "and" | "or" | "&&" | "||" => Err(err(
                kw,
                format!("'{}' needs a primitive before it", kw.text),
            )),
            t => Err(err(kw, format!("unknown primitive '{t}'"))),
        }
    }

    fn ether_host(&mut self, s: Side) -> Result<Filter, FilterError> {
        let a = self.next("a MAC address")?;
        let m = pktkit_native::options::parse_mac(a.text)
            .ok_or_else(|| err(a, format!("'{}' is not a MAC address", a.text)))?;
        Ok(Filter::EtherHost(s, m))
    }
}

fn err(t: Tok<'_>, msg: String) -> FilterError {
    FilterError { pos: t.at, msg }
}

fn parse_num(a: Tok<'_>) -> Result<u16, FilterError> {
    let r = match a.text.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16),
        None => a.text.parse(),
    };
    r.map_err(|_| err(a, format!("'{}' is not a number", a.text)))
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
    fn expressions_match_like_tcpdump() {
        let f = udp4([192, 0, 2, 1], [192, 0, 2, 2], 5000, 7);
        let m = |e: &str| Filter::parse(e).unwrap().matches(&f);
        assert!(m(""));
        assert!(m("udp") && !m("tcp") && !m("icmp") && !m("icmp6"));
        assert!(m("host 192.0.2.1") && m("src host 192.0.2.1") && !m("dst host 192.0.2.1"));
        assert!(m("port 7") && m("dst port 7") && !m("src port 7"));
        assert!(m("udp and port 7") && m("udp port 7") && !m("udp and not port 7"));
        assert!(m("tcp or (udp and dst port 7)") && m("tcp||(udp&&dst port 7)"));
        assert!(!m("(tcp or udp) and !udp"));
        assert!(m("net 192.0.2.0/24") && m("src net 192.0.2.0/30") && !m("net 198.51.100.0/24"));
        assert!(m("ether proto 0x0800") && m("ether proto ip") && m("ip") && !m("ip6"));
        assert!(!m("arp"));
        assert!(m("ether src 02:00:00:00:00:01") && !m("ether dst 02:00:00:00:00:01"));
        assert!(m("ether host 02:00:00:00:00:02"));
        assert!(!m("vlan"));
        // `and` binds tighter than `or`.
        assert!(m("tcp and port 1 or udp"));
        assert!(!m("tcp and (port 1 or udp)"));
        // Truncated frames never panic.
        let e = Filter::parse("udp port 7").unwrap();
        for n in 0..f.len() {
            let _ = e.matches(&f[..n]);
        }
    }

    #[test]
    fn bad_expressions_say_where() {
        let at = |e: &str| Filter::parse(e).unwrap_err();
        assert_eq!(at("host").pos, 4);
        assert!(at("host").msg.contains("ends too early"));
        assert_eq!(at("port x").pos, 5);
        assert_eq!(at("(udp").pos, 4);
        assert_eq!(at("udp)").pos, 3);
        assert_eq!(at("udp and bogus").pos, 8);
        assert!(at("udp and bogus")
            .msg
            .contains("unknown primitive 'bogus'"));
        assert_eq!(at("ether proto zz").pos, 12);
        assert_eq!(at("icmp and host 1.2.3").pos, 14);
        assert_eq!(at("src tcp").pos, 4);
        assert_eq!(at("and udp").pos, 0);
        assert_eq!(at("udp or").pos, 6);
        assert_eq!(at("net 10.0.0.0/33").pos, 4);
        assert_eq!(at("ether bogus 1").pos, 6);
        let e = at("icmp and hots 1.2.3.4");
        assert_eq!(
            e.to_string(),
            "filter: at column 10: unknown primitive 'hots'"
        );
        assert_eq!(
            e.pointer("icmp and hots 1.2.3.4"),
            "  icmp and hots 1.2.3.4\n           ^"
        );
    }

    #[test]
    fn frame_parser_reads_ipv6_vlan_and_fragments() {
        let mut v6 = vec![0u8; 14 + 40 + 8];
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        v6[14] = 0x60;
        v6[20] = 6;
        v6[14 + 8 + 15] = 1;
        v6[14 + 24 + 15] = 2;
        v6[54..56].copy_from_slice(&443u16.to_be_bytes());
        let x = FrameInfo::parse(&v6).unwrap();
        assert_eq!(x.ip.unwrap().proto, 6);
        assert_eq!(x.ports, Some((443, 0)));
        let m = |e: &str| Filter::parse(e).unwrap().matches(&v6);
        assert!(m(
            "ip6 and tcp and src port 443 and host ::1 and dst host ::2"
        ));
        assert!(m("net ::/64") && !m("net 192.0.2.0/24"));

        // A hop-by-hop header before ICMPv6 (as MLD reports carry).
        let mut hbh = v6.clone();
        hbh[20] = 0;
        hbh.splice(54..54, [58, 0, 5, 2, 0, 0, 1, 0]);
        hbh[54 + 8] = 143;
        let x = FrameInfo::parse(&hbh).unwrap();
        assert_eq!(x.ip.unwrap().proto, 58);
        assert_eq!(x.ip.unwrap().l4, Some(62));
        assert!(Filter::parse("icmp6").unwrap().matches(&hbh));
        // A chain cut inside an extension header has no transport header.
        for n in 54..56 {
            assert_eq!(FrameInfo::parse(&hbh[..n]).unwrap().ip.unwrap().l4, None);
        }

        let mut tagged = udp4([192, 0, 2, 1], [192, 0, 2, 2], 1, 2);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        let x = FrameInfo::parse(&tagged).unwrap();
        assert!(x.vlan && x.ethertype == ETHERTYPE_IP && x.ports == Some((1, 2)));

        // A later fragment has no ports.
        let mut frag = udp4([192, 0, 2, 1], [192, 0, 2, 2], 1, 2);
        frag[20] = 0x00;
        frag[21] = 0x10;
        let x = FrameInfo::parse(&frag).unwrap();
        assert_eq!((x.ip.unwrap().l4, x.ports), (None, None));
    }
}
