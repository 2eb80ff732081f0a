//! The client side: `pktkit mount|umount|ifconfig|nicinfo|sysctl|netstat|
//! monitor|instances|ping|tcpcheck|fw` (and `tcpdump`, in [`super::capture`]), each a request to a running stack's control socket
//! and a listing in the style operators know (NetBSD's ifconfig and
//! sysctl), or with `--json` the reply as one JSON object.
//!
//! Exit codes: 0 done; 1 the stack refused (its error is printed) or could
//! not be reached; 2 bad arguments.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::CtlError;

/// Options every control command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct CtlOpts {
    /// The stack instance to talk to (as given to `pktkit run --instance`).
    #[arg(long, default_value = "default")]
    pub instance: String,
    /// Print the stack's reply as one JSON object (events: one per line).
    #[arg(long)]
    pub json: bool,
}

/// The control commands (flattened into `pktkit`'s subcommands).
#[derive(clap::Subcommand, Clone, Debug)]
pub enum CtlCmd {
    /// Attach a driver to a running stack, bring it up and run the protocols on it.
    Mount {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// The driver: NAME[,key=value...].
        #[arg(short = 'd', long = "driver")]
        spec: String,
    },
    /// Detach an interface from a running stack (its buffers must all come back).
    Umount {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Interface name.
        ifname: String,
    },
    /// List interfaces, or change one: up|down, mtu N, ADDR/PLEN [alias], -alias ADDR, promisc|-promisc.
    Ifconfig {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Interface name (all interfaces when absent).
        ifname: Option<String>,
        /// Changes, applied in order.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Driver, device, queues, offloads, link and counters of one interface.
    Nicinfo {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Interface name.
        ifname: String,
    },
    /// Read (NAME, or a subtree) or set (NAME=VALUE) tunables; everything when none given.
    Sysctl {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// NAME or NAME=VALUE (several allowed).
        names: Vec<String>,
    },
    /// Sockets of the protocol layer; -r routes; -i per-interface counters.
    Netstat {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Show the routes.
        #[arg(short = 'r')]
        routes: bool,
        /// Show per-interface counters.
        #[arg(short = 'i')]
        interfaces: bool,
    },
    /// Print the stack's events as they happen (link, attach/detach, pool exhaustion).
    Monitor {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send ICMP echo requests from a running stack and print the replies (exit 1 if none came back).
    Ping {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Requests to send.
        #[arg(short = 'c', long = "count", default_value_t = 3)]
        count: u16,
        /// Interface to send from (default: the one whose subnet or route reaches ADDR).
        #[arg(short = 'I', long = "interface")]
        ifname: Option<String>,
        /// Seconds between requests.
        #[arg(short = 'i', long = "interval", default_value_t = 1.0)]
        interval: f64,
        /// Seconds to wait for replies after the last request.
        #[arg(short = 'W', long = "wait", default_value_t = 2.0)]
        wait: f64,
        /// Payload bytes per request.
        #[arg(short = 's', long = "size", default_value_t = 56)]
        size: u16,
        /// Address to ping (IPv4 or IPv6).
        addr: String,
    },
    /// Send N bytes of a fixed pseudo-random pattern to an echo service from a running stack and check every byte comes back (exit 1 on a difference, reset or timeout).
    Tcpcheck {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Interface to connect from (default: the one whose subnet or route reaches ADDR).
        #[arg(short = 'I', long = "interface")]
        ifname: Option<String>,
        /// Bytes to send (and get back).
        #[arg(long, default_value_t = 1 << 20)]
        bytes: u64,
        /// Fail when nothing moved for this many seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// The echo service: ADDR:PORT ([ADDR]:PORT for IPv6), e.g. 10.9.0.2:7.
        dst: String,
    },
    /// Capture packets on an interface of a running stack, to a pcap file (-w) or as one line per packet.
    Tcpdump {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// Interface to capture on.
        #[arg(short = 'i', long = "interface")]
        ifname: String,
        /// Write a classic pcap file (tcpdump, tshark, Wireshark read it); `-` for standard output.
        #[arg(short = 'w')]
        write: Option<String>,
        /// Stop after this many packets.
        #[arg(short = 'c')]
        count: Option<u64>,
        /// Do not resolve names (pktkit never does; accepted for habit's sake).
        #[arg(short = 'n')]
        numeric: bool,
        /// Bytes kept of each packet (64-65535).
        #[arg(short = 's', default_value_t = 65535)]
        snaplen: u64,
        /// Packets the stack queues for this capture before it drops (and counts) them.
        #[arg(long, default_value_t = super::capture::DEFAULT_QUEUE)]
        queue: u64,
        /// Filter expression, e.g. `icmp and host 192.0.2.1`, `tcp port 7`, `not arp`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        expr: Vec<String>,
    },
    /// The stateless filter: list | stats | add N accept|deny [in|out] [on IF] [proto P] [from A[/N] [port P[-Q]]] [to A[/N] [port P[-Q]]] | delete N | policy in|out accept|deny | flush | zero.
    Fw {
        /// Instance and output format.
        #[command(flatten)]
        opts: CtlOpts,
        /// The command and its words (list when none).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List the stack instances running on this machine.
    Instances {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// A connection to a stack's control socket.
pub struct Conn {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    path: PathBuf,
}

impl Conn {
    /// Connects to instance `name`.
    pub fn open(name: &str) -> Result<Conn, CtlError> {
        let path = super::socket_path(name)?;
        Self::open_at(&path)
    }

    /// Connects to the socket at `path`.
    pub fn open_at(path: &std::path::Path) -> Result<Conn, CtlError> {
        let io_err = |what, source| CtlError::Io {
            what,
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(|e| io_err("cannot connect to", e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| io_err("set timeout on", e))?;
        let reader = BufReader::new(
            stream
                .try_clone()
                .map_err(|e| io_err("cannot use socket", e))?,
        );
        Ok(Conn {
            stream,
            reader,
            path: path.to_owned(),
        })
    }

    /// The connection's socket, for commands that stream (`tcpdump`).
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }

    /// Reads one line (a reply or an event); None at end of stream.
    pub fn read_value(&mut self) -> Result<Option<Value>, CtlError> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(|e| CtlError::Io {
            what: "reading from",
            path: self.path.clone(),
            source: e,
        })?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| CtlError::BadReply(format!("{e}: {line:?}")))
    }

    /// Sends a request and returns the reply's fields; an error reply
    /// becomes [`CtlError::Refused`].
    pub fn request(&mut self, req: &Value) -> Result<Map<String, Value>, CtlError> {
        let sent = writeln!(self.stream, "{req}");
        // A refused connection may be closed before the request is written;
        // the server's reason is still there to read.
        let reply = match self.read_value() {
            Ok(Some(v)) => v,
            Ok(None) => {
                return Err(match sent {
                    Err(e) => CtlError::Io {
                        what: "writing to",
                        path: self.path.clone(),
                        source: e,
                    },
                    Ok(()) => CtlError::BadReply("connection closed without a reply".into()),
                })
            }
            Err(e) => return Err(e),
        };
        let Value::Object(m) = reply else {
            return Err(CtlError::BadReply(reply.to_string()));
        };
        if m.get("ok") == Some(&Value::Bool(true)) {
            Ok(m)
        } else {
            let why = m
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("error without a reason");
            Err(CtlError::Refused(why.to_owned()))
        }
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("pktkit: {e}");
    ExitCode::FAILURE
}

/// Sends one request to `instance` and prints the reply with `show` (or
/// as JSON).
fn one(opts: &CtlOpts, req: Value, show: impl FnOnce(&Map<String, Value>) -> String) -> ExitCode {
    let r = Conn::open(&opts.instance).and_then(|mut c| c.request(&req));
    match r {
        Ok(m) => {
            if opts.json {
                println!("{}", Value::Object(m));
            } else {
                print!("{}", show(&m));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn words(v: &Value, k: &str) -> String {
    arr(v, k)
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// One interface, NetBSD ifconfig style.
fn show_iface(i: &Value) -> String {
    let name = s(i, "name");
    let mut o = format!(
        "{name}: flags={:#x}<{}> mtu {}\n",
        u(i, "flags"),
        words(i, "flag_names"),
        u(i, "mtu")
    );
    o += &format!(
        "\tdriver {} ({}, {})\n",
        s(i, "driver"),
        s(i, "kind"),
        s(i, "concurrency")
    );
    let caps = words(i, "capabilities");
    if !caps.is_empty() {
        o += &format!("\tcapabilities={caps}\n\tenabled={}\n", words(i, "enabled"));
    }
    o += &format!("\taddress: {}\n", s(i, "mac"));
    o += &format!("\tmedia: {}\n\tstatus: {}\n", s(i, "media"), s(i, "status"));
    for a in arr(i, "addresses") {
        let fam = s(a, "family");
        let addr = s(a, "addr");
        let scope = if addr.starts_with("fe80:") {
            format!("%{name}")
        } else {
            String::new()
        };
        o += &format!("\t{fam} {addr}{scope}/{}", u(a, "prefixlen"));
        if let Some(alias) = a.get("alias").and_then(Value::as_str) {
            o += &format!(" alias ({alias})");
        }
        o.push('\n');
    }
    if i.get("proto") == Some(&Value::Bool(false)) {
        o += "\t(not in the protocol layer)\n";
    }
    o
}

fn show_ifconfig(m: &Map<String, Value>) -> String {
    m.get("interfaces")
        .and_then(Value::as_array)
        .map_or(String::new(), |l| l.iter().map(show_iface).collect())
}

fn counters_line(label: &str, q: &Value) -> String {
    format!(
        "  {label:<8} packets {:>12}  bytes {:>14}  errors {:>6}  drops {:>6}  multicast {:>8}  ring-full {:>8}  interrupts {:>8}\n",
        u(q, "packets"),
        u(q, "bytes"),
        u(q, "errors"),
        u(q, "drops"),
        u(q, "multicast"),
        u(q, "ring_full"),
        u(q, "interrupts")
    )
}

fn show_nicinfo(m: &Map<String, Value>) -> String {
    let Some(n) = m.get("nic") else {
        return String::new();
    };
    let mut o = format!(
        "{}: {} driver {} ({})\n",
        s(n, "name"),
        s(n, "kind"),
        s(n, "driver"),
        s(n, "concurrency")
    );
    for kv in arr(n, "describe") {
        if let [k, v] = kv.as_array().map_or(&[][..], Vec::as_slice) {
            o += &format!(
                "  {:<18} {}\n",
                k.as_str().unwrap_or(""),
                v.as_str().unwrap_or("")
            );
        }
    }
    let q = &n["queues"];
    let mtu = &n["mtu"];
    let link = &n["link"];
    o += &format!("  {:<18} {}\n", "station address", s(n, "mac"));
    o += &format!("  {:<18} rx {} tx {}\n", "queues", u(q, "rx"), u(q, "tx"));
    o += &format!(
        "  {:<18} {} (range {}..{})\n",
        "mtu",
        u(mtu, "current"),
        u(mtu, "min"),
        u(mtu, "max")
    );
    let off = words(n, "offloads");
    o += &format!(
        "  {:<18} {}\n",
        "offloads",
        if off.is_empty() { "none" } else { &off }
    );
    o += &format!(
        "  {:<18} {} slots, promiscuous {}\n",
        "multicast filter",
        u(n, "multicast_slots"),
        if n["promisc_capable"] == Value::Bool(true) {
            "capable"
        } else {
            "not capable"
        }
    );
    o += &format!(
        "  {:<18} {}\n",
        "link",
        if link["up"] == Value::Bool(true) {
            format!(
                "up, {} Mb/s, {} duplex",
                u(link, "speed_mbps"),
                if link["full_duplex"] == Value::Bool(true) {
                    "full"
                } else {
                    "half"
                }
            )
        } else {
            "down".into()
        }
    );
    let c = &n["counters"];
    o += "counters:\n";
    o += &counters_line("rx", &c["rx"]);
    o += &counters_line("tx", &c["tx"]);
    for (i, q) in arr(c, "rx_queues").iter().enumerate() {
        o += &counters_line(&format!("rxq{i}"), q);
    }
    for (i, q) in arr(c, "tx_queues").iter().enumerate() {
        o += &counters_line(&format!("txq{i}"), q);
    }
    let d = &c["device"];
    o += &format!(
        "  device   collisions {}  rx-no-buffer {}  stack-drops {}\n",
        u(d, "collisions"),
        u(d, "rx_no_buffer"),
        u(c, "stack_drops")
    );
    if let Some(extra) = d.get("extra").and_then(Value::as_object) {
        for (k, v) in extra {
            o += &format!("  {k:<18} {v}\n");
        }
    }
    let p = &n["pool"];
    o += &format!(
        "  pool     buffers held {}  pool exhaustion events {}\n",
        p.get("held").and_then(Value::as_i64).unwrap_or(0),
        u(p, "pool_exhausted")
    );
    if let Some(pr) = n.get("proto").and_then(Value::as_object) {
        o += "protocol layer:\n";
        for (k, v) in pr {
            o += &format!("  {k:<22} {v}\n");
        }
    }
    o
}

fn show_sysctl(m: &Map<String, Value>) -> String {
    m.get("values")
        .and_then(Value::as_array)
        .map_or(String::new(), |l| {
            l.iter()
                .map(|n| format!("{} = {}\n", s(n, "name"), s(n, "value")))
                .collect()
        })
}

fn show_netstat(m: &Map<String, Value>, routes: bool, interfaces: bool) -> String {
    let v = Value::Object(m.clone());
    let mut o = String::new();
    if !routes && !interfaces {
        o += &format!(
            "{:<6} {:<6} {:>7} {:>7} {:<28} {:<28} {:<12} {}\n",
            "Iface",
            "Proto",
            "Recv-Q",
            "Send-Q",
            "Local Address",
            "Foreign Address",
            "State",
            "Owner"
        );
        for x in arr(&v, "sockets") {
            o += &format!(
                "{:<6} {:<6} {:>7} {:>7} {:<28} {:<28} {:<12} {}\n",
                s(x, "if"),
                s(x, "proto"),
                u(x, "recv_q"),
                u(x, "send_q"),
                s(x, "local"),
                s(x, "remote"),
                s(x, "state"),
                s(x, "owner")
            );
        }
    }
    if routes {
        o += &format!(
            "{:<24} {:<24} {:<6} {}\n",
            "Destination", "Gateway", "Flags", "Interfaces"
        );
        for r in arr(&v, "routes") {
            let flags = if r["dhcp"] == Value::Bool(true) {
                "UGD"
            } else {
                "UGS"
            };
            let on = words(r, "interfaces");
            o += &format!(
                "{:<24} {:<24} {:<6} {}\n",
                s(r, "dest"),
                s(r, "gateway"),
                flags,
                if on.is_empty() { "(unreachable)" } else { &on }
            );
        }
    }
    if interfaces {
        o += &format!(
            "{:<8} {:>6} {:>12} {:>8} {:>8} {:>12} {:>8} {:>8}\n",
            "Name", "Mtu", "Ipkts", "Ierrs", "Idrops", "Opkts", "Oerrs", "Odrops"
        );
        for i in arr(&v, "interfaces") {
            o += &format!(
                "{:<8} {:>6} {:>12} {:>8} {:>8} {:>12} {:>8} {:>8}\n",
                s(i, "if"),
                u(i, "mtu"),
                u(i, "rx_packets"),
                u(i, "rx_errors"),
                u(i, "rx_drops"),
                u(i, "tx_packets"),
                u(i, "tx_errors"),
                u(i, "tx_drops")
            );
        }
    }
    o
}

/// An event as one line of text.
pub fn event_line(ev: &Value) -> String {
    let name = s(ev, "if");
    match s(ev, "event") {
        "link" if ev["up"] == Value::Bool(true) => {
            format!("link {name} up {} Mb/s", u(ev, "speed_mbps"))
        }
        "link" => format!("link {name} down"),
        "attach" => format!("attach {name}"),
        "detach" => format!("detach {name}"),
        "pool-exhausted" => format!(
            "pool-exhausted {}: +{} (total {}), {} of {} buffers free",
            s(ev, "pool"),
            u(ev, "new"),
            u(ev, "exhausted"),
            u(ev, "available"),
            u(ev, "capacity")
        ),
        other => format!("{other} {ev}"),
    }
}

fn monitor(opts: &CtlOpts, count: Option<u64>) -> ExitCode {
    let mut conn = match Conn::open(&opts.instance) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // Without a read timeout: events may be rare.
    let _ = conn.stream.set_read_timeout(None);
    if let Err(e) = conn.request(&json!({"cmd": "monitor"})) {
        return fail(e);
    }
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        match conn.read_value() {
            Ok(Some(ev)) => {
                if opts.json {
                    println!("{ev}");
                } else {
                    println!("{}", event_line(&ev));
                }
                let _ = std::io::stdout().flush();
                seen += 1;
            }
            Ok(None) => return fail("the stack closed the connection"),
            Err(e) => return fail(e),
        }
    }
    ExitCode::SUCCESS
}

/// Sends a request that runs as a job on the stack and reads lines until
/// its reply (the one with `ok`), handing every other line to `line`. No
/// line for `patience` is an error.
fn job_request(
    instance: &str,
    req: &Value,
    patience: Duration,
    mut line: impl FnMut(&Value),
) -> Result<Map<String, Value>, CtlError> {
    let mut conn = Conn::open(instance)?;
    let _ = conn.stream.set_read_timeout(Some(patience));
    let sent = writeln!(conn.stream, "{req}");
    loop {
        match conn.read_value()? {
            None => {
                return Err(match sent {
                    Err(e) => CtlError::Io {
                        what: "writing to",
                        path: conn.path.clone(),
                        source: e,
                    },
                    Ok(()) => CtlError::BadReply("connection closed without a reply".into()),
                })
            }
            Some(Value::Object(m)) if m.contains_key("ok") => {
                if m.get("ok") == Some(&Value::Bool(true)) {
                    return Ok(m);
                }
                let why = m
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("error without a reason");
                return Err(CtlError::Refused(why.to_owned()));
            }
            Some(v) => line(&v),
        }
    }
}

fn secs_to_ms(s: f64) -> u64 {
    (s.max(0.0) * 1000.0).round() as u64
}

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

#[allow(clippy::too_many_arguments)]
fn ping(
    opts: &CtlOpts,
    ifname: Option<String>,
    count: u16,
    interval: f64,
    wait: f64,
    size: u16,
    addr: String,
) -> ExitCode {
    let req = json!({
        "cmd": "ping", "dst": addr, "if": ifname, "count": count,
        "interval_ms": secs_to_ms(interval).max(1), "wait_ms": secs_to_ms(wait).max(1),
        "size": size,
    });
    let patience =
        Duration::from_secs_f64(interval.max(0.0) * f64::from(count) + wait.max(0.0) + 30.0);
    let show = !opts.json;
    let r = job_request(&opts.instance, &req, patience, |v| {
        if !show {
            return;
        }
        if let Some(st) = v.get("start") {
            println!(
                "PING {} from {}: {} data bytes",
                s(st, "target"),
                s(st, "if"),
                u(st, "size")
            );
        } else if let Some(r) = v.get("reply") {
            println!(
                "{} bytes from {}: icmp_seq={} time={:.3} ms",
                u(r, "bytes"),
                s(r, "from"),
                u(r, "seq"),
                f(r, "rtt_ms")
            );
        }
        let _ = std::io::stdout().flush();
    });
    let m = match r {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let v = Value::Object(m);
    if opts.json {
        println!("{v}");
    } else {
        let (tx, rx) = (u(&v, "transmitted"), u(&v, "received"));
        let loss = if tx == 0 {
            0.0
        } else {
            100.0 * (tx - rx.min(tx)) as f64 / tx as f64
        };
        println!("--- {} ping statistics ---", s(&v, "target"));
        println!("{tx} packets transmitted, {rx} packets received, {loss:.1}% packet loss");
        if let Some(rtt) = v.get("rtt_ms").filter(|r| !r.is_null()) {
            println!(
                "round-trip min/avg/max = {:.3}/{:.3}/{:.3} ms",
                f(rtt, "min"),
                f(rtt, "avg"),
                f(rtt, "max")
            );
        }
    }
    if u(&v, "received") > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn tcpcheck(
    opts: &CtlOpts,
    ifname: Option<String>,
    bytes: u64,
    timeout: f64,
    dst: String,
) -> ExitCode {
    let req = json!({
        "cmd": "tcpcheck", "dst": dst, "if": ifname, "bytes": bytes,
        "timeout_ms": secs_to_ms(timeout),
    });
    // The stack sends a progress line every second.
    let patience = Duration::from_secs_f64(timeout.max(0.0) + 30.0);
    let show = !opts.json;
    let r = job_request(&opts.instance, &req, patience, |v| {
        if let (true, Some(st)) = (show, v.get("start")) {
            println!(
                "TCPCHECK {} from {}: {} bytes",
                s(st, "target"),
                s(st, "if"),
                u(st, "bytes")
            );
            let _ = std::io::stdout().flush();
        }
    });
    match r {
        Ok(m) if opts.json => {
            println!("{}", Value::Object(m));
            ExitCode::SUCCESS
        }
        Ok(m) => {
            let v = Value::Object(m);
            println!(
                "{} bytes echoed and verified in {:.3} s: {:.2} Mbit/s (connect {:.3} ms)",
                u(&v, "bytes"),
                f(&v, "seconds"),
                f(&v, "mbit_s"),
                f(&v, "connect_ms")
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn instances(json_out: bool) -> ExitCode {
    let mut rows = Vec::new();
    for (name, path) in super::find_instances() {
        let info = Conn::open_at(&path).and_then(|mut c| c.request(&json!({"cmd": "info"})));
        rows.push(match info {
            Ok(m) => json!({
                "instance": name, "socket": path.display().to_string(), "running": true,
                "pid": m.get("pid"), "interfaces": m.get("interfaces"),
            }),
            Err(e) => json!({
                "instance": name, "socket": path.display().to_string(), "running": false,
                "error": e.to_string(),
            }),
        });
    }
    if json_out {
        println!("{}", Value::Array(rows));
    } else {
        for r in &rows {
            if r["running"] == Value::Bool(true) {
                println!(
                    "{:<16} pid {:<8} {:<32} {}",
                    s(r, "instance"),
                    u(r, "pid"),
                    s(r, "socket"),
                    words(r, "interfaces")
                );
            } else {
                println!("{:<16} not answering ({})", s(r, "instance"), s(r, "error"));
            }
        }
    }
    ExitCode::SUCCESS
}

/// Runs one control command.
pub fn run(cmd: CtlCmd) -> ExitCode {
    match cmd {
        CtlCmd::Mount { opts, spec } => one(&opts, json!({"cmd": "mount", "spec": spec}), |m| {
            format!(
                "mounted {}\n",
                words(&Value::Object(m.clone()), "interfaces")
            )
        }),
        CtlCmd::Umount { opts, ifname } => {
            one(&opts, json!({"cmd": "umount", "if": ifname}), |m| {
                let v = Value::Object(m.clone());
                format!(
                    "unmounted {}; pool {} of {} buffers free\n",
                    s(&v, "detached"),
                    u(&v, "pool_available"),
                    u(&v, "pool_capacity")
                )
            })
        }
        CtlCmd::Ifconfig { opts, ifname, args } => one(
            &opts,
            json!({"cmd": "ifconfig", "if": ifname, "args": args}),
            show_ifconfig,
        ),
        CtlCmd::Nicinfo { opts, ifname } => {
            one(&opts, json!({"cmd": "nicinfo", "if": ifname}), show_nicinfo)
        }
        CtlCmd::Sysctl { opts, names } => {
            if names.is_empty() {
                return one(&opts, json!({"cmd": "sysctl"}), show_sysctl);
            }
            let mut conn = match Conn::open(&opts.instance) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let mut code = ExitCode::SUCCESS;
            for n in names {
                let req = match n.split_once('=') {
                    Some((k, v)) => json!({"cmd": "sysctl", "name": k, "value": v}),
                    None => json!({"cmd": "sysctl", "name": n}),
                };
                match conn.request(&req) {
                    Ok(m) if opts.json => println!("{}", Value::Object(m)),
                    Ok(m) => print!("{}", show_sysctl(&m)),
                    Err(e) => code = fail(e),
                }
            }
            code
        }
        CtlCmd::Netstat {
            opts,
            routes,
            interfaces,
        } => one(&opts, json!({"cmd": "netstat"}), |m| {
            show_netstat(m, routes, interfaces)
        }),
        CtlCmd::Monitor { opts, count } => monitor(&opts, count),
        CtlCmd::Tcpdump {
            opts,
            ifname,
            write,
            count,
            numeric: _,
            snaplen,
            queue,
            expr,
        } => super::capture::tcpdump(
            &opts,
            &super::capture::TcpdumpArgs {
                ifname,
                write,
                count,
                snaplen,
                queue,
                expr,
            },
        ),
        CtlCmd::Fw { opts, args } => {
            let stats = args.first().is_some_and(|a| a == "stats");
            one(&opts, json!({"cmd": "fw", "args": args}), |m| {
                super::fw::show(m, stats)
            })
        }
        CtlCmd::Instances { json } => instances(json),
        CtlCmd::Ping {
            opts,
            count,
            ifname,
            interval,
            wait,
            size,
            addr,
        } => ping(&opts, ifname, count, interval, wait, size, addr),
        CtlCmd::Tcpcheck {
            opts,
            ifname,
            bytes,
            timeout,
            dst,
        } => tcpcheck(&opts, ifname, bytes, timeout, dst),
    }
}
