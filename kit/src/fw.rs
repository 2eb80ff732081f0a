//! The built-in stateless packet filter, in the manner of RISC OS's InetFW
//! (and ipfw): numbered rules, checked in ascending order, the first that
//! matches decides; a packet no rule matches gets its direction's default
//! policy. It runs as one [`crate::pfil`] hook, installed only while there
//! is something to do (a rule, or a policy other than accept).
//!
//! A rule, as `pktkit fw add` and [`Rule::parse`] read it:
//!
//! ```text
//! N accept|deny [in|out] [on IF] [proto any|tcp|udp|icmp|icmp6|NUMBER]
//!     [from any|ADDR[/PLEN] [port P[-Q]]] [to any|ADDR[/PLEN] [port P[-Q]]]
//! ```
//!
//! Without `in`/`out` a rule applies both ways; without `on` on every
//! interface. A port condition matches only TCP and UDP packets that carry
//! the port (not later fragments). The filter looks at IPv4 and IPv6
//! packets only: ARP and other ethertypes always pass, so a default-deny
//! policy does not cut the stack off its neighbours (IPv6 neighbour
//! discovery is ICMPv6, though: allow `proto icmp6` when denying IPv6 by
//! default). Every rule counts the packets and bytes it matched, and each
//! policy those it decided.
//!
//! Changes build a new rule table and swap it into the hook
//! ([`crate::pfil::Pfil::replace`]): the packet path never waits for them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pktkit_native::Mbuf;

use crate::filter::{in_net, FrameInfo};
use crate::pfil::{Direction, Hook, HookId, HookSpec, IfInfo, Pfil, Verdict};
use crate::runtime::lock;

/// What a rule or policy does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Let it through.
    Accept,
    /// Drop it.
    Deny,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Accept => "accept",
            Action::Deny => "deny",
        })
    }
}

impl Action {
    /// Parses `accept` (or `allow`, `pass`) and `deny` (or `drop`, `block`).
    pub fn parse(w: &str) -> Option<Action> {
        match w {
            "accept" | "allow" | "pass" => Some(Action::Accept),
            "deny" | "drop" | "block" => Some(Action::Deny),
            _ => None,
        }
    }
}

/// An address condition: a prefix (a host is a full-length prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// The network address.
    pub addr: IpAddr,
    /// Its length in bits.
    pub len: u8,
}

/// One end of a packet: address and ports, each optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Address or network; any when `None`.
    pub prefix: Option<Prefix>,
    /// Port range, inclusive; any when `None`.
    pub ports: Option<(u16, u16)>,
}

/// A filter rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its number (the order rules are checked in).
    pub num: u32,
    /// What it does.
    pub action: Action,
    /// Input or output only; both when `None`.
    pub dir: Option<Direction>,
    /// Only this interface; all when `None`.
    pub ifname: Option<String>,
    /// IP protocol number; any when `None`.
    pub proto: Option<u8>,
    /// Source conditions.
    pub from: Endpoint,
    /// Destination conditions.
    pub to: Endpoint,
}

/// Why a filter command failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FwError {
    /// A rule or command did not parse; `word` counts from 1.
    #[error("fw: word {word} '{text}': {msg}")]
    Parse {
        /// Which word (1-based) is wrong; one past the end when missing.
        word: usize,
        /// The word itself (empty when missing).
        text: String,
        /// What was expected.
        msg: String,
    },
    /// A rule of that number exists already.
    #[error("fw: rule {0} exists (delete it first)")]
    Exists(u32),
    /// No rule of that number.
    #[error("fw: no rule {0}")]
    NoRule(u32),
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmp6".into(),
        n => n.to_string(),
    }
}

fn parse_proto(w: &str) -> Option<Option<u8>> {
    Some(match w {
        "any" | "all" | "ip" => None,
        "icmp" => Some(1),
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp6" | "ipv6-icmp" => Some(58),
        n => Some(n.parse().ok()?),
    })
}

fn parse_prefix(w: &str) -> Result<Option<Prefix>, String> {
    if w == "any" {
        return Ok(None);
    }
    if w.contains('/') {
        let (addr, len) = crate::cli::parse_cidr(w)?;
        return Ok(Some(Prefix { addr, len }));
    }
    let addr: IpAddr = w
        .parse()
        .map_err(|_| format!("'{w}' is not an address (ADDR, ADDR/PLEN or any)"))?;
    let len = if addr.is_ipv4() { 32 } else { 128 };
    Ok(Some(Prefix { addr, len }))
}

fn parse_ports(w: &str) -> Result<(u16, u16), String> {
    let bad = || format!("'{w}' is not a port or range (P or P-Q, 0-65535)");
    let (lo, hi) = match w.split_once('-') {
        Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
        None => {
            let p = w.parse().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!("port range {lo}-{hi} is empty"));
    }
    Ok((lo, hi))
}

/// Reads words one by one, for error messages that say which one is wrong.
struct Words<'a> {
    w: &'a [&'a str],
    i: usize,
}

impl<'a> Words<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.w.get(self.i).copied()
    }

    fn next(&mut self, want: &str) -> Result<&'a str, FwError> {
        let w = self.peek().ok_or_else(|| FwError::Parse {
            word: self.i + 1,
            text: String::new(),
            msg: format!("missing {want}"),
        })?;
        self.i += 1;
        Ok(w)
    }

    /// An error about the word just read.
    fn err(&self, msg: impl Into<String>) -> FwError {
        FwError::Parse {
            word: self.i,
            text: self
                .w
                .get(self.i.wrapping_sub(1))
                .copied()
                .unwrap_or("")
                .into(),
            msg: msg.into(),
        }
    }

    fn endpoint(&mut self) -> Result<Endpoint, FwError> {
        let a = self.next("an address (ADDR, ADDR/PLEN or any)")?;
        let prefix = parse_prefix(a).map_err(|m| self.err(m))?;
        let mut ports = None;
        if self.peek() == Some("port") {
            self.i += 1;
            let p = self.next("a port or range")?;
            ports = Some(parse_ports(p).map_err(|m| self.err(m))?);
        }
        Ok(Endpoint { prefix, ports })
    }
}

impl Rule {
    /// Parses `N ACTION [in|out] [on IF] [proto P] [from ...] [to ...]`.
    pub fn parse(words: &[&str]) -> Result<Rule, FwError> {
        let mut w = Words { w: words, i: 0 };
        let n = w.next("a rule number")?;
        let num = n
            .parse()
            .map_err(|_| w.err("not a rule number (1-4294967295)"))?;
        if num == 0 {
            return Err(w.err("rule numbers start at 1"));
        }
        let a = w.next("accept or deny")?;
        let action = Action::parse(a).ok_or_else(|| w.err("expected accept or deny"))?;
        let mut r = Rule {
            num,
            action,
            dir: None,
            ifname: None,
            proto: None,
            from: Endpoint::default(),
            to: Endpoint::default(),
        };
        // Each clause at most once, in this order.
        let order = ["in/out", "on", "proto", "from", "to"];
        let mut stage = 0;
        while let Some(k) = w.peek() {
            w.i += 1;
            let at = match k {
                "in" | "out" => 0,
                "on" => 1,
                "proto" => 2,
                "from" => 3,
                "to" => 4,
                _ => {
                    return Err(w.err(format!(
                        "expected {}",
                        order[stage..].join(", ").replace("in/out", "in, out")
                    )))
                }
            };
            if at < stage {
                return Err(w.err(format!(
                    "'{k}' must come before {} (and only once)",
                    order[stage - 1]
                )));
            }
            stage = at + 1;
            match k {
                "in" => r.dir = Some(Direction::In),
                "out" => r.dir = Some(Direction::Out),
                "on" => r.ifname = Some(w.next("an interface name")?.to_owned()),
                "proto" => {
                    let p = w.next("a protocol")?;
                    r.proto = parse_proto(p).ok_or_else(|| {
                        w.err("expected any, tcp, udp, icmp, icmp6 or a protocol number")
                    })?;
                }
                "from" => r.from = w.endpoint()?,
                _ => r.to = w.endpoint()?,
            }
        }
        let has_ports = r.from.ports.is_some() || r.to.ports.is_some();
        if has_ports && !matches!(r.proto, None | Some(6) | Some(17)) {
            return Err(FwError::Parse {
                word: words.len(),
                text: words.last().copied().unwrap_or("").into(),
                msg: "ports need proto tcp, udp or any".into(),
            });
        }
        for p in [r.from.prefix, r.to.prefix].into_iter().flatten() {
            let v6 = p.addr.is_ipv6();
            if matches!((r.proto, v6), (Some(1), true) | (Some(58), false)) {
                return Err(FwError::Parse {
                    word: words.len(),
                    text: words.last().copied().unwrap_or("").into(),
                    msg: format!(
                        "proto {} never carries {} addresses",
                        proto_name(r.proto.unwrap_or(0)),
                        if v6 { "IPv6" } else { "IPv4" }
                    ),
                });
            }
        }
        Ok(r)
    }

    /// Whether the rule matches a packet with headers `x` going `dir`
    /// through `ifp`.
    pub fn matches(&self, dir: Direction, ifp: &IfInfo, x: &FrameInfo) -> bool {
        let Some(ip) = x.ip else {
            return false;
        };
        if self.dir.is_some_and(|d| d != dir)
            || self.ifname.as_deref().is_some_and(|n| n != ifp.name)
            || self.proto.is_some_and(|p| p != ip.proto)
        {
            return false;
        }
        let end = |e: &Endpoint, addr: IpAddr, port: Option<u16>| {
            e.prefix.is_none_or(|p| in_net(addr, p.addr, p.len))
                && e.ports
                    .is_none_or(|(lo, hi)| port.is_some_and(|p| (lo..=hi).contains(&p)))
        };
        end(&self.from, ip.src, x.ports.map(|p| p.0)) && end(&self.to, ip.dst, x.ports.map(|p| p.1))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.num, self.action)?;
        match self.dir {
            Some(Direction::In) => f.write_str(" in")?,
            Some(Direction::Out) => f.write_str(" out")?,
            None => {}
        }
        if let Some(i) = &self.ifname {
            write!(f, " on {i}")?;
        }
        if let Some(p) = self.proto {
            write!(f, " proto {}", proto_name(p))?;
        }
        for (word, e) in [("from", &self.from), ("to", &self.to)] {
            if *e == Endpoint::default() {
                continue;
            }
            match e.prefix {
                Some(p) if p.len == if p.addr.is_ipv4() { 32 } else { 128 } => {
                    write!(f, " {word} {}", p.addr)?
                }
                Some(p) => write!(f, " {word} {}/{}", p.addr, p.len)?,
                None => write!(f, " {word} any")?,
            }
            match e.ports {
                Some((lo, hi)) if lo == hi => write!(f, " port {lo}")?,
                Some((lo, hi)) => write!(f, " port {lo}-{hi}")?,
                None => {}
            }
        }
        Ok(())
    }
}

/// Packets and bytes.
#[derive(Debug, Default)]
struct Count {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl Count {
    fn add(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (
            self.packets.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A rule with its counters (shared by every table built while it lives).
#[derive(Clone)]
struct Counted {
    rule: Rule,
    count: Arc<Count>,
}

/// One direction's default.
#[derive(Clone)]
struct Policy {
    action: Action,
    count: Arc<Count>,
}

/// The table the hook runs: a snapshot, replaced whole on every change.
struct Table {
    rules: Vec<Counted>,
    /// Input, output.
    policy: [Policy; 2],
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::In => 0,
        Direction::Out => 1,
    }
}

impl Hook for Table {
    fn check(&self, dir: Direction, ifp: &IfInfo, m: &mut Mbuf) -> Verdict {
        // Headers are in the first buffer for every frame the stack builds
        // and every driver delivers; a chain whose first buffer is too
        // short to hold them is judged on what is there (FrameInfo never
        // reads past it).
        let Some(x) = FrameInfo::parse(m.data()) else {
            return Verdict::Pass;
        };
        if x.ip.is_none() {
            return Verdict::Pass;
        }
        let len = m.pkt_len();
        let action = match self.rules.iter().find(|r| r.rule.matches(dir, ifp, &x)) {
            Some(r) => {
                r.count.add(len);
                r.rule.action
            }
            None => {
                let p = &self.policy[dir_index(dir)];
                p.count.add(len);
                p.action
            }
        };
        match action {
            Action::Accept => Verdict::Pass,
            Action::Deny => Verdict::Drop,
        }
    }
}

/// A rule and its counters, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleStats {
    /// The rule.
    pub rule: Rule,
    /// Packets it matched.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
}

/// The whole filter, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// Rules in the order they are checked.
    pub rules: Vec<RuleStats>,
    /// Input policy, with the packets and bytes it decided.
    pub policy_in: (Action, u64, u64),
    /// Output policy, likewise.
    pub policy_out: (Action, u64, u64),
    /// Whether the hook is installed (something to do).
    pub active: bool,
}

struct State {
    rules: BTreeMap<u32, Counted>,
    policy: [Policy; 2],
    hook: Option<HookId>,
}

/// The stateless filter of one stack.
///
/// Locking: `state` serializes changes (and is never taken on the packet
/// path, which runs a published [`Table`]).
pub struct Firewall {
    pfil: Arc<Pfil>,
    state: Mutex<State>,
}

impl Firewall {
    /// No rules, both policies accept; the hook is not installed.
    pub fn new(pfil: Arc<Pfil>) -> Firewall {
        let accept = || Policy {
            action: Action::Accept,
            count: Arc::default(),
        };
        Firewall {
            pfil,
            state: Mutex::new(State {
                rules: BTreeMap::new(),
                policy: [accept(), accept()],
                hook: None,
            }),
        }
    }

    /// Publishes the state's table: installs, replaces or removes the hook.
    fn publish(&self, st: &mut State) {
        let idle = st.rules.is_empty() && st.policy.iter().all(|p| p.action == Action::Accept);
        if idle {
            if let Some(id) = st.hook.take() {
                self.pfil.remove(id);
            }
            return;
        }
        let table = Arc::new(Table {
            rules: st.rules.values().cloned().collect(),
            policy: st.policy.clone(),
        });
        match st.hook {
            Some(id) if self.pfil.replace(id, table.clone()) => {}
            _ => st.hook = Some(self.pfil.add_arc(HookSpec::new("fw"), table)),
        }
    }

    /// Adds a rule; its number must be free.
    pub fn add(&self, rule: Rule) -> Result<(), FwError> {
        let mut st = lock(&self.state);
        if st.rules.contains_key(&rule.num) {
            return Err(FwError::Exists(rule.num));
        }
        st.rules.insert(
            rule.num,
            Counted {
                rule,
                count: Arc::default(),
            },
        );
        self.publish(&mut st);
        Ok(())
    }

    /// Deletes rule `num`.
    pub fn delete(&self, num: u32) -> Result<(), FwError> {
        let mut st = lock(&self.state);
        st.rules.remove(&num).ok_or(FwError::NoRule(num))?;
        self.publish(&mut st);
        Ok(())
    }

    /// Deletes every rule (the policies stay).
    pub fn flush(&self) {
        let mut st = lock(&self.state);
        st.rules.clear();
        self.publish(&mut st);
    }

    /// Sets the default for packets going `dir` that no rule matches.
    pub fn set_policy(&self, dir: Direction, action: Action) {
        let mut st = lock(&self.state);
        st.policy[dir_index(dir)].action = action;
        self.publish(&mut st);
    }

    /// Zeroes every counter.
    pub fn zero(&self) {
        let mut st = lock(&self.state);
        for r in st.rules.values_mut() {
            r.count = Arc::default();
        }
        for p in st.policy.iter_mut() {
            p.count = Arc::default();
        }
        self.publish(&mut st);
    }

    /// The rules, policies and counters.
    pub fn list(&self) -> Listing {
        let st = lock(&self.state);
        let pol = |p: &Policy| {
            let (n, b) = p.count.get();
            (p.action, n, b)
        };
        Listing {
            rules: st
                .rules
                .values()
                .map(|c| {
                    let (packets, bytes) = c.count.get();
                    RuleStats {
                        rule: c.rule.clone(),
                        packets,
                        bytes,
                    }
                })
                .collect(),
            policy_in: pol(&st.policy[0]),
            policy_out: pol(&st.policy[1]),
            active: st.hook.is_some(),
        }
    }

    /// Runs one `pktkit fw` command (its words after `fw`): `list`,
    /// `stats`, `add RULE`, `delete N`, `policy in|out accept|deny`,
    /// `flush`, `zero`. Returns the listing after it.
    pub fn command(&self, words: &[&str]) -> Result<Listing, FwError> {
        let missing = |msg: &str| FwError::Parse {
            word: 2,
            text: String::new(),
            msg: msg.into(),
        };
        let bad = |word: usize, text: &str, msg: &str| FwError::Parse {
            word,
            text: text.into(),
            msg: msg.into(),
        };
        let extra = |n: usize| match words.get(n) {
            Some(w) => Err(bad(n + 1, w, "unexpected word")),
            None => Ok(()),
        };
        match words.first().copied().unwrap_or("list") {
            "list" | "show" | "stats" => extra(1)?,
            "add" => self.add(Rule::parse(&words[1..]).map_err(|e| shift(e, 1))?)?,
            "delete" | "del" => {
                let n = words
                    .get(1)
                    .ok_or_else(|| missing("missing a rule number"))?;
                let num = n.parse().map_err(|_| bad(2, n, "not a rule number"))?;
                extra(2)?;
                self.delete(num)?;
            }
            "policy" => {
                let d = words.get(1).ok_or_else(|| missing("missing in or out"))?;
                let dir = match *d {
                    "in" => Direction::In,
                    "out" => Direction::Out,
                    _ => return Err(bad(2, d, "expected in or out")),
                };
                let a = words
                    .get(2)
                    .ok_or_else(|| bad(3, "", "missing accept or deny"))?;
                let action =
                    Action::parse(a).ok_or_else(|| bad(3, a, "expected accept or deny"))?;
                extra(3)?;
                self.set_policy(dir, action);
            }
            "flush" => {
                extra(1)?;
                self.flush();
            }
            "zero" => {
                extra(1)?;
                self.zero();
            }
            other => {
                return Err(bad(
                    1,
                    other,
                    "expected list, stats, add, delete, policy, flush or zero",
                ))
            }
        }
        Ok(self.list())
    }
}

/// Renumbers a parse error's word by `by` (the rule's words follow `add`).
fn shift(e: FwError, by: usize) -> FwError {
    match e {
        FwError::Parse { word, text, msg } => FwError::Parse {
            word: word + by,
            text,
            msg,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pktkit_native::pool::{HugePages, OwnerId, Pool, PoolConfig};

    fn rule(s: &str) -> Result<Rule, FwError> {
        let w: Vec<&str> = s.split_whitespace().collect();
        Rule::parse(&w)
    }

    fn frame(proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn rules_parse_and_print_back() {
        for s in [
            "10 deny",
            "20 accept in proto icmp",
            "30 deny out on tap0 proto tcp from 192.0.2.0/24 port 1000-2000 to 198.51.100.7 port 7",
            "40 accept in to any port 7",
            "50 deny proto icmp6 from 2001:db8::/32",
            "60 accept proto 47",
        ] {
            assert_eq!(rule(s).unwrap().to_string(), s);
        }
        assert_eq!(
            rule("5 allow from 192.0.2.1/32").unwrap().to_string(),
            "5 accept from 192.0.2.1"
        );
        let e = |s: &str| rule(s).unwrap_err();
        assert!(matches!(e(""), FwError::Parse { word: 1, .. }));
        assert!(matches!(e("x deny"), FwError::Parse { word: 1, .. }));
        assert!(matches!(e("0 deny"), FwError::Parse { word: 1, .. }));
        assert!(matches!(e("1 maybe"), FwError::Parse { word: 2, .. }));
        assert!(matches!(
            e("1 deny frm any"),
            FwError::Parse { word: 3, .. }
        ));
        assert!(matches!(
            e("1 deny proto bogus"),
            FwError::Parse { word: 4, .. }
        ));
        assert!(matches!(
            e("1 deny from 1.2.3"),
            FwError::Parse { word: 4, .. }
        ));
        assert!(matches!(
            e("1 deny to any port 9-3"),
            FwError::Parse { word: 6, .. }
        ));
        assert!(matches!(
            e("1 deny to any port"),
            FwError::Parse { word: 6, .. }
        ));
        assert!(matches!(
            e("1 deny from any in"),
            FwError::Parse { word: 5, .. }
        ));
        assert!(matches!(
            e("1 deny proto icmp to any port 3"),
            FwError::Parse { .. }
        ));
        assert!(matches!(
            e("1 deny proto icmp from ::1"),
            FwError::Parse { .. }
        ));
        assert_eq!(
            e("1 deny frm any").to_string(),
            "fw: word 3 'frm': expected in, out, on, proto, from, to"
        );
    }

    #[test]
    fn first_match_wins_then_policy() {
        let p = Pool::new(&PoolConfig {
            name: "fw-match".into(),
            buffers: 16,
            hugepages: HugePages::Never,
        })
        .unwrap();
        let pfil = Arc::new(Pfil::new());
        let fw = Firewall::new(pfil.clone());
        assert!(pfil.hooks().is_empty(), "no hook while idle");
        let cmd = |s: &str| {
            let w: Vec<&str> = s.split_whitespace().collect();
            fw.command(&w)
        };
        cmd("add 20 accept in proto tcp to any port 7").unwrap();
        cmd("add 10 deny in proto icmp").unwrap();
        cmd("policy in deny").unwrap();
        assert_eq!(cmd("add 10 deny").unwrap_err(), FwError::Exists(10));
        assert_eq!(pfil.hooks().len(), 1);
        let tap0 = IfInfo {
            index: 1,
            name: "tap0".into(),
        };
        let mut cache = pfil.cache();
        let mut verdict = |dir, f: Vec<u8>| {
            cache.refresh();
            let mut m = Mbuf::from_slice(&p, OwnerId::POOL, &f).unwrap();
            cache.run(dir, &tap0, &mut m)
        };
        let (a, b) = ([192, 0, 2, 1], [192, 0, 2, 2]);
        assert_eq!(verdict(Direction::In, frame(1, a, b, 0, 0)), Verdict::Drop);
        assert_eq!(
            verdict(Direction::In, frame(6, a, b, 999, 7)),
            Verdict::Pass
        );
        assert_eq!(
            verdict(Direction::In, frame(6, a, b, 7, 999)),
            Verdict::Drop
        );
        assert_eq!(verdict(Direction::In, frame(17, a, b, 9, 7)), Verdict::Drop);
        assert_eq!(verdict(Direction::Out, frame(1, a, b, 0, 0)), Verdict::Pass);
        // ARP passes whatever the policy.
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(verdict(Direction::In, arp), Verdict::Pass);
        let l = fw.list();
        let counts: Vec<(u32, u64)> = l.rules.iter().map(|r| (r.rule.num, r.packets)).collect();
        assert_eq!(counts, [(10, 1), (20, 1)]);
        assert_eq!(l.policy_in, (Action::Deny, 2, 2 * 42));
        assert_eq!(l.policy_out, (Action::Accept, 1, 42));
        // Delete restores; counters survive other changes.
        cmd("delete 10").unwrap();
        cmd("policy in accept").unwrap();
        assert_eq!(verdict(Direction::In, frame(1, a, b, 0, 0)), Verdict::Pass);
        assert_eq!(fw.list().rules[0].packets, 1);
        assert_eq!(cmd("delete 10").unwrap_err(), FwError::NoRule(10));
        cmd("zero").unwrap();
        assert_eq!(fw.list().rules[0].packets, 0);
        cmd("flush").unwrap();
        assert!(pfil.hooks().is_empty(), "idle again: hook removed");
        assert!(!fw.list().active);
        for bad in [
            "bogus",
            "policy sideways deny",
            "policy in maybe",
            "delete x",
            "list x",
        ] {
            assert!(cmd(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            cmd("add 1 deny frm x").unwrap_err(),
            FwError::Parse { word: 4, .. }
        ));
    }
}
