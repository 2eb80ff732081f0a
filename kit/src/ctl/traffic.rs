//! Traffic from a running stack for `pktkit ping` and `pktkit tcpcheck`:
//! ICMP echo, and a TCP transfer to an echo service whose every byte is
//! checked when it comes back.
//!
//! # How the control thread drives them
//!
//! A transfer takes seconds (8 MiB in an emulated guest) and the control
//! thread serves every client, so such a request does not run to the end
//! at once: it becomes a [`Job`] that the server steps every [`STEP`]
//! between polls of its sockets. A step takes the protocol lock once
//! ([`Stack::with_proto`]) for a bounded piece of work (one send of at most
//! [`CHUNK`] bytes, one receive, one echo request and the replies waiting)
//! and then wakes the protocol task ([`Stack::wake_proto`]), which may be
//! asleep until a frame or its next timer, so what was queued leaves now.
//! The test pattern is made and checked outside the lock. Packets move on
//! the workers between steps, and other clients are served meanwhile; the
//! client that asked reads lines (`start`, `reply`, `progress`) until the
//! final reply, and requests it sends meanwhile wait behind the job.
//!
//! A ping's round-trip time is measured at the step that found the reply,
//! so it includes up to one step of the control thread's polling.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::server::{arg, opt_arg, Ctx};
use crate::proto::{IpAddress, IpCidr, PingReply, ProtoError, SocketHandle, TcpState};
use crate::stack::Stack;

/// How often the server steps its jobs.
pub(super) const STEP: Duration = Duration::from_millis(1);
/// Most bytes one step hands to TCP or takes from it (the socket buffers'
/// size, so one step can fill or drain a buffer).
const CHUNK: usize = 256 * 1024;
/// Echo replies one step takes at most.
const REPLIES_PER_STEP: usize = 8;
/// How long an orderly TCP close may take before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Seed of the test pattern unless the request gives one.
const DEFAULT_SEED: u64 = 0x7063_6b74_6b69_7400;

/// Identifier of the next ping socket (each ping gets its own).
static NEXT_IDENT: AtomicU16 = AtomicU16::new(0);

/// The final reply of a job: its fields, or why it failed.
pub(super) type Outcome = Result<Map<String, Value>, String>;

/// A request in progress on one client connection.
pub(super) enum Job {
    /// `ping`.
    Ping(PingJob),
    /// `tcpcheck`.
    Tcp(TcpJob),
    /// `tcpdump`.
    Capture(super::capture::CaptureJob),
}

impl Job {
    /// Starts the job a request asks for (`cmd` is `ping` or `tcpcheck`).
    pub(super) fn start(ctx: &Ctx, req: &Map<String, Value>) -> Result<Job, String> {
        match arg(req, "cmd")? {
            "ping" => PingJob::start(ctx, req).map(Job::Ping),
            "tcpcheck" => TcpJob::start(ctx, req).map(Job::Tcp),
            "tcpdump" => super::capture::CaptureJob::start(ctx, req).map(Job::Capture),
            other => Err(format!("'{other}' is not a traffic command")),
        }
    }

    /// Does one bounded piece of work; lines for the client go to `lines`.
    /// Returns the final reply once the job is over.
    pub(super) fn step(&mut self, now: Instant, lines: &mut Vec<Value>) -> Option<Outcome> {
        match self {
            Job::Ping(p) => p.step(now, lines),
            Job::Tcp(t) => t.step(now, lines),
            Job::Capture(c) => c.step(now, lines),
        }
    }
}

/// An optional unsigned number argument within `range`.
fn num(
    req: &Map<String, Value>,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let v = match req.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("'{key}' must be a whole number"))?,
    };
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "'{key}' {v} is out of range ({}..={})",
            range.start(),
            range.end()
        ))
    }
}

/// The interface that reaches `dst`: `ifname` when given, else the one
/// whose subnet holds `dst`, else the one a route to `dst` is installed on,
/// else the only one in the protocol layer.
fn pick_interface(
    stack: &Stack,
    ifname: Option<&str>,
    dst: IpAddress,
) -> Result<(u32, String), String> {
    let ifaces = stack.interfaces();
    let name_of = |index: u32| {
        ifaces
            .iter()
            .find(|i| i.index == index)
            .map_or_else(|| format!("if{index}"), |i| i.name.clone())
    };
    let (addrs, routes) = stack.with_proto(|n| {
        let addrs: Vec<(u32, Vec<IpCidr>)> = n
            .interfaces()
            .into_iter()
            .map(|i| (i, n.addresses(i).unwrap_or_default()))
            .collect();
        (addrs, n.routes())
    });
    if let Some(name) = ifname {
        let i = stack.interface(name).map_err(|e| e.to_string())?;
        if !addrs.iter().any(|(x, _)| *x == i.index) {
            return Err(format!("{name} is not in the protocol layer (is it up?)"));
        }
        return Ok((i.index, name.to_owned()));
    }
    let on_link: Vec<u32> = addrs
        .iter()
        .filter(|(_, a)| a.iter().any(|c| c.contains_addr(&dst)))
        .map(|(i, _)| *i)
        .collect();
    match on_link.as_slice() {
        [one] => return Ok((*one, name_of(*one))),
        [] => {}
        several => {
            let names: Vec<String> = several.iter().map(|&i| name_of(i)).collect();
            return Err(format!(
                "{dst} is on the link of several interfaces ({}): choose one with -I IF",
                names.join(", ")
            ));
        }
    }
    let routed = routes
        .iter()
        .filter(|r| r.dest.contains_addr(&dst))
        .find_map(|r| r.ifindexes[0]);
    if let Some(i) = routed {
        return Ok((i, name_of(i)));
    }
    match addrs.as_slice() {
        [(one, _)] => Ok((*one, name_of(*one))),
        [] => Err("no interface is in the protocol layer".into()),
        _ => Err(format!("no interface reaches {dst}: choose one with -I IF")),
    }
}

fn parse_addr(s: &str) -> Result<IpAddress, String> {
    s.parse::<std::net::IpAddr>()
        .map(IpAddress::from)
        .map_err(|_| format!("'{s}' is not an IP address"))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `ping`: echo requests every `interval`, replies with their round-trip
/// time, then a summary.
pub(super) struct PingJob {
    stack: Arc<Stack>,
    ifindex: u32,
    ifname: String,
    handle: SocketHandle,
    ident: u16,
    dst: IpAddress,
    count: usize,
    interval: Duration,
    /// How long replies are awaited after the last request.
    wait: Duration,
    payload: Vec<u8>,
    /// When each request (by sequence number) was sent.
    sent_at: Vec<Instant>,
    answered: Vec<bool>,
    next_send: Instant,
    rtts_ms: Vec<f64>,
    started: bool,
}

impl PingJob {
    fn start(ctx: &Ctx, req: &Map<String, Value>) -> Result<PingJob, String> {
        let dst = parse_addr(arg(req, "dst")?)?;
        if !dst.is_unicast() {
            return Err(format!("{dst} is not a unicast address"));
        }
        let count = num(req, "count", 3, 1..=65535)? as usize;
        let interval = Duration::from_millis(num(req, "interval_ms", 1000, 1..=60_000)?);
        let wait = Duration::from_millis(num(req, "wait_ms", 2000, 1..=60_000)?);
        let size = num(req, "size", 56, 0..=8192)? as usize;
        let (ifindex, ifname) = pick_interface(&ctx.stack, opt_arg(req, "if")?, dst)?;
        let ident =
            (std::process::id() as u16).wrapping_add(NEXT_IDENT.fetch_add(1, Ordering::Relaxed));
        let handle = ctx
            .stack
            .with_proto(|n| n.ping_open(ifindex, ident))
            .map_err(|e| e.to_string())?;
        Ok(PingJob {
            stack: ctx.stack.clone(),
            ifindex,
            ifname,
            handle,
            ident,
            dst,
            count,
            interval,
            wait,
            payload: (0..size).map(|i| i as u8).collect(),
            sent_at: Vec::with_capacity(count),
            answered: vec![false; count],
            next_send: Instant::now(),
            rtts_ms: Vec::with_capacity(count),
            started: false,
        })
    }

    fn step(&mut self, now: Instant, lines: &mut Vec<Value>) -> Option<Outcome> {
        if !self.started {
            self.started = true;
            lines.push(json!({"start": {
                "target": self.dst.to_string(), "if": self.ifname, "size": self.payload.len(),
            }}));
        }
        let send_seq = (self.sent_at.len() < self.count && now >= self.next_send)
            .then_some(self.sent_at.len() as u16);
        let (ifindex, handle, dst, payload) = (self.ifindex, self.handle, self.dst, &self.payload);
        let mut got: [Option<PingReply>; REPLIES_PER_STEP] = [None; REPLIES_PER_STEP];
        let sent = self.stack.with_proto(|n| {
            let sent = send_seq.map(|seq| n.ping_send(ifindex, handle, dst, seq, payload));
            for slot in got.iter_mut() {
                match n.ping_recv(ifindex, handle) {
                    Ok(Some(r)) => *slot = Some(r),
                    _ => break,
                }
            }
            sent
        });
        let at = Instant::now();
        if let Some(r) = sent {
            if let Err(e) = r {
                return Some(Err(format!("ping {}: {e}", self.dst)));
            }
            self.sent_at.push(now);
            self.next_send = now + self.interval;
            self.stack.wake_proto();
        }
        for r in got.iter().flatten() {
            let seq = usize::from(r.seq);
            let ours = r.ident == self.ident && r.from == self.dst && seq < self.sent_at.len();
            if !ours || self.answered[seq] {
                continue;
            }
            self.answered[seq] = true;
            let rtt = millis(at.saturating_duration_since(self.sent_at[seq]));
            self.rtts_ms.push(rtt);
            lines.push(json!({"reply": {
                "from": r.from.to_string(), "seq": r.seq, "bytes": r.len + 8, "rtt_ms": rtt,
            }}));
        }
        let all_sent = self.sent_at.len() == self.count;
        let all_back = self.rtts_ms.len() == self.count;
        let waited = self.sent_at.last().is_some_and(|t| now >= *t + self.wait);
        (all_sent && (all_back || waited)).then(|| Ok(self.summary()))
    }

    fn summary(&self) -> Map<String, Value> {
        let rtt = (!self.rtts_ms.is_empty()).then(|| {
            let min = self.rtts_ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = self.rtts_ms.iter().copied().fold(0.0, f64::max);
            let avg = self.rtts_ms.iter().sum::<f64>() / self.rtts_ms.len() as f64;
            json!({"min": min, "avg": avg, "max": max})
        });
        let mut m = Map::new();
        m.insert("target".into(), json!(self.dst.to_string()));
        m.insert("if".into(), json!(self.ifname));
        m.insert("transmitted".into(), json!(self.sent_at.len()));
        m.insert("received".into(), json!(self.rtts_ms.len()));
        m.insert("rtt_ms".into(), rtt.unwrap_or(Value::Null));
        m
    }
}

impl Drop for PingJob {
    fn drop(&mut self) {
        let (i, h) = (self.ifindex, self.handle);
        // The interface may be gone already (unmounted meanwhile).
        let _ = self.stack.with_proto(|n| n.close_socket(i, h));
    }
}

/// Fills `buf` with the test pattern from byte `offset` on: byte `i` is
/// byte `i % 8` of splitmix64 of `seed + i / 8`, so any stretch can be made
/// (or checked) without keeping what was sent.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut word = 0u64;
    for (j, b) in buf.iter_mut().enumerate() {
        let i = offset + j as u64;
        if j == 0 || i.is_multiple_of(8) {
            word = splitmix64(seed.wrapping_add(i / 8));
        }
        *b = (word >> (8 * (i % 8))) as u8;
    }
}

/// One output of the splitmix64 generator (Steele, Lea and Flood, 2014)
/// for state `x`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `tcpcheck`: connects to an echo service, sends `total` bytes of the
/// pattern and checks every byte that comes back.
pub(super) struct TcpJob {
    stack: Arc<Stack>,
    ifindex: u32,
    ifname: String,
    handle: SocketHandle,
    remote: (IpAddress, u16),
    total: u64,
    seed: u64,
    /// Bytes TCP took.
    sent: u64,
    /// Bytes echoed and checked.
    received: u64,
    /// Pattern waiting to be sent: `out[out_off..out_len]`.
    out: Box<[u8]>,
    out_len: usize,
    out_off: usize,
    /// Received bytes, and the pattern they are compared with.
    inb: Box<[u8]>,
    expect: Box<[u8]>,
    /// No progress for this long fails the check.
    timeout: Duration,
    started: Instant,
    established: Option<Instant>,
    last_progress: Instant,
    next_report: Instant,
    /// Set when every byte came back: the reply, sent once the close is done.
    finished: Option<(Instant, Map<String, Value>)>,
    announced: bool,
}

impl TcpJob {
    fn start(ctx: &Ctx, req: &Map<String, Value>) -> Result<TcpJob, String> {
        let dst = arg(req, "dst")?;
        let sa: std::net::SocketAddr = dst
            .parse()
            .map_err(|_| format!("'{dst}' is not ADDR:PORT (IPv6: [ADDR]:PORT)"))?;
        let remote = (IpAddress::from(sa.ip()), sa.port());
        let total = num(req, "bytes", 1 << 20, 1..=1 << 40)?;
        let timeout = Duration::from_millis(num(req, "timeout_ms", 10_000, 100..=3_600_000)?);
        let seed = num(req, "seed", DEFAULT_SEED, 0..=u64::MAX)?;
        let (ifindex, ifname) = pick_interface(&ctx.stack, opt_arg(req, "if")?, remote.0)?;
        let handle = ctx
            .stack
            .with_proto(|n| n.tcp_connect(ifindex, remote))
            .map_err(|e: ProtoError| e.to_string())?;
        ctx.stack.wake_proto();
        let now = Instant::now();
        Ok(TcpJob {
            stack: ctx.stack.clone(),
            ifindex,
            ifname,
            handle,
            remote,
            total,
            seed,
            sent: 0,
            received: 0,
            out: vec![0; CHUNK].into_boxed_slice(),
            out_len: 0,
            out_off: 0,
            inb: vec![0; CHUNK].into_boxed_slice(),
            expect: vec![0; CHUNK].into_boxed_slice(),
            timeout,
            started: now,
            established: None,
            last_progress: now,
            next_report: now + Duration::from_secs(1),
            finished: None,
            announced: false,
        })
    }

    fn remote_string(&self) -> String {
        smoltcp::wire::IpEndpoint::new(self.remote.0, self.remote.1).to_string()
    }

    fn step(&mut self, now: Instant, lines: &mut Vec<Value>) -> Option<Outcome> {
        if !self.announced {
            self.announced = true;
            lines.push(json!({"start": {
                "target": self.remote_string(), "if": self.ifname, "bytes": self.total,
            }}));
        }
        let (ifindex, handle) = (self.ifindex, self.handle);
        if let Some((since, reply)) = &self.finished {
            let state = self.stack.with_proto(|n| n.tcp_state(ifindex, handle));
            let closed = matches!(state, Ok(TcpState::Closed | TcpState::TimeWait) | Err(_));
            return (closed || now >= *since + CLOSE_WAIT).then(|| Ok(reply.clone()));
        }
        if self.out_off == self.out_len && self.sent < self.total {
            let n = (self.total - self.sent).min(CHUNK as u64) as usize;
            fill_pattern(self.seed, self.sent, &mut self.out[..n]);
            self.out_len = n;
            self.out_off = 0;
        }
        let pending = &self.out[self.out_off..self.out_len];
        let inb = &mut self.inb;
        let (state, sent, got) = self.stack.with_proto(|n| {
            let state = n.tcp_state(ifindex, handle);
            let established = matches!(state, Ok(TcpState::Established));
            let sent = if established && !pending.is_empty() {
                n.tcp_send(ifindex, handle, pending)
            } else {
                Ok(0)
            };
            let got = n.tcp_recv(ifindex, handle, inb);
            (state, sent, got)
        });
        let state = match state {
            Ok(s) => s,
            Err(e) => return Some(Err(format!("tcpcheck: {e}"))),
        };
        if state == TcpState::Established && self.established.is_none() {
            self.established = Some(now);
        }
        let sent = match sent {
            Ok(n) => n,
            Err(e) => return Some(Err(format!("tcpcheck: {e}"))),
        };
        let got = match got {
            Ok(n) => n,
            Err(ProtoError::TcpRecv(smoltcp::socket::tcp::RecvError::Finished)) => {
                return Some(Err(format!(
                    "{} closed the connection after {} of {} bytes came back",
                    self.remote_string(),
                    self.received,
                    self.total
                )))
            }
            // Not connected yet, or reset (reported below).
            Err(_) if self.established.is_none() || state == TcpState::Closed => 0,
            Err(e) => return Some(Err(format!("tcpcheck: {e}"))),
        };
        self.out_off += sent;
        self.sent += sent as u64;
        if got > 0 {
            if let Err(e) = self.check(got) {
                return Some(Err(e));
            }
        }
        if sent > 0 || got > 0 {
            self.last_progress = now;
            // Queued data must leave, and a drained buffer opens the window.
            self.stack.wake_proto();
        }
        if self.received == self.total {
            return self.finish(now);
        }
        if state == TcpState::Closed {
            let what = if self.established.is_some() {
                "reset"
            } else {
                "refused"
            };
            return Some(Err(format!(
                "connection to {} {what} after {} of {} bytes came back",
                self.remote_string(),
                self.received,
                self.total
            )));
        }
        if now.saturating_duration_since(self.last_progress) > self.timeout {
            let what = if self.established.is_none() {
                format!(
                    "no connection to {} within {:.1} s",
                    self.remote_string(),
                    self.timeout.as_secs_f64()
                )
            } else {
                format!(
                    "timed out: nothing moved for {:.1} s ({} bytes sent, {} of {} came back)",
                    self.timeout.as_secs_f64(),
                    self.sent,
                    self.received,
                    self.total
                )
            };
            return Some(Err(what));
        }
        if now >= self.next_report {
            self.next_report = now + Duration::from_secs(1);
            lines.push(json!({"progress": {"sent": self.sent, "received": self.received}}));
        }
        None
    }

    /// Checks `got` bytes just received against the pattern.
    fn check(&mut self, got: usize) -> Result<(), String> {
        if self.received + got as u64 > self.sent {
            return Err(format!(
                "{} bytes came back but only {} were sent",
                self.received + got as u64,
                self.sent
            ));
        }
        let expect = &mut self.expect[..got];
        fill_pattern(self.seed, self.received, expect);
        if let Some(i) = (0..got).find(|&i| self.inb[i] != expect[i]) {
            return Err(format!(
                "echo differs at byte {}: sent {:#04x}, got {:#04x}",
                self.received + i as u64,
                expect[i],
                self.inb[i]
            ));
        }
        self.received += got as u64;
        Ok(())
    }

    /// Every byte came back: closes the connection and keeps the reply
    /// until the close is done (see [`CLOSE_WAIT`]).
    fn finish(&mut self, now: Instant) -> Option<Outcome> {
        let from = self.established.unwrap_or(self.started);
        let secs = now.saturating_duration_since(from).as_secs_f64().max(1e-6);
        let mut m = Map::new();
        m.insert("target".into(), json!(self.remote_string()));
        m.insert("if".into(), json!(self.ifname));
        m.insert("bytes".into(), json!(self.total));
        m.insert("seconds".into(), json!(secs));
        m.insert("mbit_s".into(), json!(self.total as f64 * 8.0 / secs / 1e6));
        m.insert(
            "connect_ms".into(),
            json!(millis(from.saturating_duration_since(self.started))),
        );
        let (i, h) = (self.ifindex, self.handle);
        let _ = self.stack.with_proto(|n| n.tcp_close(i, h));
        self.stack.wake_proto();
        self.finished = Some((now, m));
        None
    }
}

impl Drop for TcpJob {
    fn drop(&mut self) {
        let (i, h) = (self.ifindex, self.handle);
        let _ = self.stack.with_proto(|n| n.close_socket(i, h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_stretches_agree_wherever_they_start() {
        let mut whole = vec![0u8; 1000];
        fill_pattern(5, 0, &mut whole);
        for start in [0usize, 1, 7, 8, 9, 333] {
            let mut part = vec![0u8; 100];
            fill_pattern(5, start as u64, &mut part);
            assert_eq!(part[..], whole[start..start + 100], "from {start}");
        }
        let mut other = vec![0u8; 1000];
        fill_pattern(6, 0, &mut other);
        assert_ne!(whole, other);
        // Not a short cycle: many distinct byte values.
        let mut seen = [false; 256];
        whole.iter().for_each(|&b| seen[usize::from(b)] = true);
        assert!(seen.iter().filter(|&&s| s).count() > 200);
    }
}
