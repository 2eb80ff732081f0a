//! `pktkit tcpdump`: a capture on a running stack's interface, streamed to
//! the client over the control connection.
//!
//! # On the stack
//!
//! `{"cmd":"tcpdump","if":"IF"[,"filter":"EXPR"][,"count":N][,"snaplen":N][,"queue":N]}`
//! compiles the filter (an error names the column), puts a [`Tap`] on the
//! interface and becomes a job of the control thread. The tap's queue
//! (`queue` frames, default [`DEFAULT_QUEUE`]) is the client's bounded
//! queue: the packet path copies matching frames into it and never waits;
//! when it is full, frames are dropped and counted. Each step the job moves
//! from the tap as many frames as fit in the client's output buffer, one
//! line each: `{"pkt":{"sec","usec","len","dir","data"}}` (`data` in hex,
//! at most `snaplen` bytes; `len` the length on the wire). A client that
//! reads slowly therefore loses frames (counted), and the stack never
//! stalls. The job ends after `count` frames, when the client half-closes
//! its connection (or sends anything), or when the interface goes away;
//! its reply says `captured` (sent to the client), `received` (matched the
//! filter) and `dropped` (matched, but the client fell behind). The first
//! line is `{"start":{"if","filter","snaplen"}}`.
//!
//! # On the client
//!
//! [`tcpdump`] writes what arrives to a classic pcap file (`-w`) or prints
//! one line per packet; Ctrl-C half-closes the connection, so the stack
//! sends what it has and its summary, and the file is complete.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::client::{Conn, CtlOpts};
use super::server::{arg, opt_arg, Ctx};
use super::traffic::Outcome;
use crate::bpf::{Captured, Direction, Filter, PcapWriter, Tap};
use crate::filter::FrameInfo;
use crate::iface::{fmt_mac, Interface};
use crate::stack::Stack;

/// Frames the tap holds for a client by default.
pub const DEFAULT_QUEUE: u64 = 4096;
/// Bytes kept of each frame by default (and at most).
pub const MAX_SNAPLEN: u64 = 65535;
/// Bytes a frame's line takes besides its hex data.
const LINE_OVERHEAD: usize = 128;
/// How often the job checks that the interface is still attached.
const IFACE_CHECK: Duration = Duration::from_millis(500);

/// A capture in progress for one client.
pub(super) struct CaptureJob {
    stack: Arc<Stack>,
    iface: Arc<Interface>,
    tap: Arc<Tap>,
    expr: String,
    snaplen: usize,
    count: Option<u64>,
    sent: u64,
    started: bool,
    next_check: Instant,
    /// Bytes the client's output buffer can still take (set by the server
    /// before each step).
    pub(super) room: usize,
    /// The client asked to stop (set by the server).
    pub(super) stop: bool,
}

fn num(req: &Map<String, Value>, key: &str, default: u64, max: u64) -> Result<u64, String> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => Err(format!("'{key}' must be a whole number up to {max}")),
        },
    }
}

impl CaptureJob {
    /// Starts a capture as a request asks.
    pub(super) fn start(ctx: &Ctx, req: &Map<String, Value>) -> Result<CaptureJob, String> {
        let ifname = arg(req, "if")?;
        let expr = opt_arg(req, "filter")?.unwrap_or("").to_owned();
        let filter = Filter::parse(&expr).map_err(|e| e.to_string())?;
        let count = num(req, "count", 0, u64::MAX)?;
        let snaplen = num(req, "snaplen", MAX_SNAPLEN, MAX_SNAPLEN)?.max(64) as usize;
        let queue = num(req, "queue", DEFAULT_QUEUE, 1 << 20)?.max(1) as usize;
        let iface = ctx.stack.interface(ifname).map_err(|e| e.to_string())?;
        let tap = Arc::new(Tap::new(filter, None, snaplen, queue));
        iface.add_tap(tap.clone());
        Ok(CaptureJob {
            stack: ctx.stack.clone(),
            iface,
            tap,
            expr,
            snaplen,
            count: (count > 0).then_some(count),
            sent: 0,
            started: false,
            next_check: Instant::now() + IFACE_CHECK,
            room: 0,
            stop: false,
        })
    }

    /// Moves what fits to the client; the reply once the capture is over.
    pub(super) fn step(&mut self, now: Instant, lines: &mut Vec<Value>) -> Option<Outcome> {
        let mut room = self.room;
        if !self.started {
            self.started = true;
            let l = json!({"start": {
                "if": self.iface.name, "filter": self.expr, "snaplen": self.snaplen,
            }});
            room = room.saturating_sub(LINE_OVERHEAD);
            lines.push(l);
        }
        let left = self.count.map_or(u64::MAX, |c| c.saturating_sub(self.sent));
        let mut taken = 0u64;
        let frames = self.tap.drain_within(room, |c| {
            taken += 1;
            if taken > left {
                usize::MAX / 2
            } else {
                2 * c.data.len() + LINE_OVERHEAD
            }
        });
        for c in &frames {
            lines.push(frame_line(c));
        }
        self.sent += frames.len() as u64;
        let mut gone = false;
        if now >= self.next_check {
            self.next_check = now + IFACE_CHECK;
            gone = !self
                .stack
                .interface(&self.iface.name)
                .is_ok_and(|i| Arc::ptr_eq(&i, &self.iface));
        }
        let done = self.count.is_some_and(|c| self.sent >= c);
        if !(done || gone || self.stop) {
            return None;
        }
        self.iface.remove_tap(&self.tap);
        let (received, dropped) = self.tap.stats();
        // Frames still queued were never sent: lost like the others.
        let unsent = self.tap.pending() as u64;
        let mut m = Map::new();
        m.insert("if".into(), json!(self.iface.name));
        m.insert("captured".into(), json!(self.sent));
        m.insert("received".into(), json!(received + dropped));
        m.insert("dropped".into(), json!(dropped + unsent));
        m.insert("detached".into(), json!(gone));
        Some(Ok(m))
    }
}

impl Drop for CaptureJob {
    fn drop(&mut self) {
        self.iface.remove_tap(&self.tap);
    }
}

fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn frame_line(c: &Captured) -> Value {
    let t = c.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    json!({"pkt": {
        "sec": t.as_secs(), "usec": t.subsec_micros(), "len": c.orig_len,
        "dir": match c.dir { Direction::In => "in", Direction::Out => "out" },
        "data": hex(&c.data),
    }})
}

/// A frame line back into a capture record.
fn parse_frame_line(p: &Value) -> Option<Captured> {
    let data = unhex(p.get("data")?.as_str()?)?;
    let time = UNIX_EPOCH
        + Duration::from_secs(p.get("sec")?.as_u64()?)
        + Duration::from_micros(p.get("usec")?.as_u64()?);
    Some(Captured {
        time,
        dir: if p.get("dir")?.as_str()? == "out" {
            Direction::Out
        } else {
            Direction::In
        },
        orig_len: usize::try_from(p.get("len")?.as_u64()?).ok()?,
        data,
    })
}

/// `HH:MM:SS.uuuuuu` of a time, in UTC.
fn clock(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_micros()
    )
}

fn be16(f: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]))
}

fn tcp_flags(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, '.'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

/// One line about a frame, tcpdump style: `IP src.port > dst.port: ...`.
pub fn summary(f: &[u8], wire_len: usize) -> String {
    let Some(x) = FrameInfo::parse(f) else {
        return format!("truncated frame, length {wire_len}");
    };
    let vlan = if x.vlan { "vlan, " } else { "" };
    let Some(ip) = x.ip else {
        if x.ethertype == crate::filter::ETHERTYPE_ARP {
            let a = x.l3;
            let ip4 = |o: usize| {
                f.get(a + o..a + o + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or_else(|| "?".to_owned(), |b| Ipv4Addr::from(b).to_string())
            };
            let op = be16(f, a + 6).unwrap_or(0);
            return match op {
                1 => format!(
                    "{vlan}ARP, Request who-has {} tell {}, length {wire_len}",
                    ip4(24),
                    ip4(14)
                ),
                2 => format!(
                    "{vlan}ARP, Reply {} is-at {}, length {wire_len}",
                    ip4(14),
                    fmt_mac(&x.eth_src)
                ),
                n => format!("{vlan}ARP, op {n}, length {wire_len}"),
            };
        }
        return format!(
            "{vlan}{} > {}, ethertype 0x{:04x}, length {wire_len}",
            fmt_mac(&x.eth_src),
            fmt_mac(&x.eth_dst),
            x.ethertype
        );
    };
    let v = if ip.src.is_ipv4() { "IP" } else { "IP6" };
    let (src, dst) = (ip.src, ip.dst);
    let l4 = ip.l4.unwrap_or(usize::MAX);
    let byte = |o: usize| l4.checked_add(o).and_then(|i| f.get(i)).copied();
    let rest = match (ip.proto, x.ports) {
        (6, Some((sp, dp))) => {
            return format!(
                "{vlan}{v} {src}.{sp} > {dst}.{dp}: Flags [{}], length {wire_len}",
                byte(13).map_or_else(|| "?".into(), tcp_flags)
            )
        }
        (17, Some((sp, dp))) => {
            return format!("{vlan}{v} {src}.{sp} > {dst}.{dp}: UDP, length {wire_len}")
        }
        (1, _) => match byte(0) {
            Some(0) => "ICMP echo reply".to_owned(),
            Some(8) => "ICMP echo request".to_owned(),
            Some(3) => "ICMP unreachable".to_owned(),
            Some(11) => "ICMP time exceeded".to_owned(),
            Some(t) => format!("ICMP type {t}"),
            None => "ICMP".to_owned(),
        },
        (58, _) => match byte(0) {
            Some(128) => "ICMP6, echo request".to_owned(),
            Some(129) => "ICMP6, echo reply".to_owned(),
            Some(143) => "ICMP6, multicast listener report v2".to_owned(),
            Some(133) => "ICMP6, router solicitation".to_owned(),
            Some(134) => "ICMP6, router advertisement".to_owned(),
            Some(135) => "ICMP6, neighbor solicitation".to_owned(),
            Some(136) => "ICMP6, neighbor advertisement".to_owned(),
            Some(t) => format!("ICMP6, type {t}"),
            None => "ICMP6".to_owned(),
        },
        (6, None) => "TCP (fragment)".to_owned(),
        (17, None) => "UDP (fragment)".to_owned(),
        (p, _) => format!("ip-proto-{p}"),
    };
    format!("{vlan}{v} {src} > {dst}: {rest}, length {wire_len}")
}

/// Set by SIGINT/SIGTERM while a capture runs.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn catch_signals() {
    let h = on_signal as extern "C" fn(libc::c_int);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `h` is a valid extern "C" fn for the process's
        // lifetime.
        unsafe {
            libc::signal(sig, h as libc::sighandler_t);
        }
    }
}

/// What `pktkit tcpdump` was asked.
#[derive(Clone, Debug)]
pub struct TcpdumpArgs {
    /// Interface.
    pub ifname: String,
    /// Pcap file to write (`-` for standard output); lines when `None`.
    pub write: Option<String>,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Bytes kept of each packet.
    pub snaplen: u64,
    /// Frames the stack queues for this client before dropping.
    pub queue: u64,
    /// The filter expression's words.
    pub expr: Vec<String>,
}

/// Reads lines from the control connection, with a timeout per read so
/// that signals are noticed.
struct LineReader {
    stream: UnixStream,
    buf: Vec<u8>,
    eof: bool,
}

impl LineReader {
    /// The next line, `Ok(None)` on timeout or end of stream (see `eof`).
    fn next(&mut self) -> io::Result<Option<Value>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if self.eof {
                return Ok(None);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

enum Sink {
    Pcap(PcapWriter<io::BufWriter<Box<dyn Write>>>),
    Text,
    Json,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("pktkit: tcpdump: {e}");
    ExitCode::FAILURE
}

/// Runs `pktkit tcpdump`.
pub fn tcpdump(opts: &CtlOpts, a: &TcpdumpArgs) -> ExitCode {
    let expr = a.expr.join(" ");
    if let Err(e) = Filter::parse(&expr) {
        eprintln!("pktkit: tcpdump: {e}\n{}", e.pointer(&expr));
        return ExitCode::from(2);
    }
    let snaplen = a.snaplen.clamp(64, MAX_SNAPLEN);
    let mut sink = match a.write.as_deref() {
        Some(path) => {
            let out: Box<dyn Write> = if path == "-" {
                Box::new(io::stdout())
            } else {
                match std::fs::File::create(path) {
                    Ok(f) => Box::new(f),
                    Err(e) => return fail(format!("{path}: {e}")),
                }
            };
            match PcapWriter::new(io::BufWriter::new(out), snaplen as u32) {
                Ok(w) => Sink::Pcap(w),
                Err(e) => return fail(format!("{path}: {e}")),
            }
        }
        None if opts.json => Sink::Json,
        None => Sink::Text,
    };
    let conn = match Conn::open(&opts.instance) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut stream = conn.into_stream();
    let req = json!({
        "cmd": "tcpdump", "if": a.ifname, "filter": expr, "count": a.count.unwrap_or(0),
        "snaplen": snaplen, "queue": a.queue,
    });
    if let Err(e) = writeln!(stream, "{req}") {
        return fail(e);
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(write_half) = stream.try_clone() else {
        return fail("cannot use the control socket");
    };
    let mut rd = LineReader {
        stream,
        buf: Vec::new(),
        eof: false,
    };
    catch_signals();
    let progress = a.write.as_deref().is_some_and(|p| p != "-") && io::stderr().is_terminal();
    let mut got = 0u64;
    let mut last_progress = Instant::now();
    let mut stop_sent: Option<Instant> = None;
    let outcome: Result<Map<String, Value>, String> = loop {
        if STOP.load(Ordering::Relaxed) && stop_sent.is_none() {
            // The stack ends the capture when its reading side closes,
            // then sends what it has and the summary.
            let _ = write_half.shutdown(std::net::Shutdown::Write);
            stop_sent = Some(Instant::now());
        }
        if stop_sent.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break Err("the stack did not answer the stop; the file holds what came".into());
        }
        let v = match rd.next() {
            Ok(Some(v)) => v,
            Ok(None) if rd.eof => break Err("the stack closed the connection".into()),
            Ok(None) => {
                if let Sink::Pcap(w) = &mut sink {
                    let _ = w.flush();
                }
                continue;
            }
            Err(e) => break Err(e.to_string()),
        };
        if let Some(p) = v.get("pkt") {
            let Some(c) = parse_frame_line(p) else {
                break Err(format!("bad packet line: {v}"));
            };
            got += 1;
            match &mut sink {
                Sink::Pcap(w) => {
                    if let Err(e) = w.write(&c) {
                        break Err(format!("writing the capture: {e}"));
                    }
                }
                Sink::Text => println!(
                    "{} {} {}",
                    clock(c.time),
                    if c.dir == Direction::In { "In " } else { "Out" },
                    summary(&c.data, c.orig_len)
                ),
                Sink::Json => {
                    let t = c.time.duration_since(UNIX_EPOCH).unwrap_or_default();
                    println!(
                        "{}",
                        json!({
                            "time": t.as_secs_f64(), "dir": p.get("dir"), "len": c.orig_len,
                            "caplen": c.data.len(), "summary": summary(&c.data, c.orig_len),
                        })
                    );
                }
            }
            if progress && last_progress.elapsed() > Duration::from_millis(250) {
                last_progress = Instant::now();
                eprint!("\rGot {got}");
            }
        } else if let Some(st) = v.get("start") {
            eprintln!(
                "pktkit tcpdump: listening on {}, link-type EN10MB (Ethernet), snapshot length {} bytes",
                st.get("if").and_then(Value::as_str).unwrap_or("?"),
                st.get("snaplen").and_then(Value::as_u64).unwrap_or(0)
            );
        } else if let Value::Object(m) = v {
            if m.get("ok") == Some(&Value::Bool(true)) {
                break Ok(m);
            }
            break Err(m
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("error without a reason")
                .to_owned());
        }
    };
    if progress {
        eprint!("\r");
    }
    let finished = match sink {
        Sink::Pcap(w) => w.finish().and_then(|mut b| b.flush()),
        _ => io::stdout().flush(),
    };
    let m = match outcome {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{got} packets captured");
            return fail(e);
        }
    };
    if let Err(e) = finished {
        return fail(format!("writing the capture: {e}"));
    }
    let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
    // With `-w -` standard output is the capture itself.
    if opts.json && a.write.as_deref().is_some_and(|w| w != "-") {
        println!("{}", Value::Object(m.clone()));
    }
    eprintln!("{} packets captured", n("captured"));
    eprintln!("{} packets received by filter", n("received"));
    eprintln!("{} packets dropped by kernel", n("dropped"));
    if m.get("detached") == Some(&Value::Bool(true)) {
        eprintln!("pktkit: tcpdump: {} was detached", a.ifname);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_summaries_read_like_tcpdump() {
        let c = Captured {
            time: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000),
            dir: Direction::Out,
            orig_len: 1500,
            data: (0..=255u8).collect(),
        };
        let back = parse_frame_line(&frame_line(&c)["pkt"]).unwrap();
        assert_eq!(
            (back.time, back.dir, back.orig_len, back.data),
            (c.time, c.dir, c.orig_len, c.data)
        );
        assert_eq!(clock(c.time), "22:13:20.123456");
        assert!(unhex("abc").is_none() && unhex("zz").is_none());

        let mut icmp = vec![0u8; 14 + 20 + 8];
        icmp[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        icmp[14] = 0x45;
        icmp[23] = 1;
        icmp[26..30].copy_from_slice(&[192, 0, 2, 1]);
        icmp[30..34].copy_from_slice(&[192, 0, 2, 2]);
        icmp[34] = 8;
        assert_eq!(
            summary(&icmp, 42),
            "IP 192.0.2.1 > 192.0.2.2: ICMP echo request, length 42"
        );
        let mut tcp = icmp.clone();
        tcp[23] = 6;
        tcp.resize(14 + 20 + 20, 0);
        tcp[34..36].copy_from_slice(&40000u16.to_be_bytes());
        tcp[36..38].copy_from_slice(&7u16.to_be_bytes());
        tcp[14 + 20 + 13] = 0x12;
        assert_eq!(
            summary(&tcp, 54),
            "IP 192.0.2.1.40000 > 192.0.2.2.7: Flags [S.], length 54"
        );
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        arp[20..22].copy_from_slice(&1u16.to_be_bytes());
        arp[28..32].copy_from_slice(&[192, 0, 2, 1]);
        arp[38..42].copy_from_slice(&[192, 0, 2, 2]);
        assert_eq!(
            summary(&arp, 42),
            "ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 42"
        );
        assert_eq!(summary(&[0; 5], 5), "truncated frame, length 5");
    }
}
