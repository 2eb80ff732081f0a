//! The control plane against running `pktkit run` processes: mount and
//! umount while traffic flows elsewhere, ifconfig changes seen in listings
//! and in behaviour (a Linux peer pings an alias), sysctl round trips, two
//! instances side by side, a client of another uid refused, malformed
//! requests answered with errors while the stack keeps running, and the
//! monitor's events.

use pktkit_testnet as common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_root, unique, NetNs};
use pktkit::ctl::client::Conn;
use serde_json::{json, Value};

#[path = "support/stackd.rs"]
mod stackd;

use stackd::{Stackd, BIN};

/// What only these tests ask of a running stack.
impl Stackd {
    /// Like [`Stackd::cli`], asserting exit code 1 with `needle` in stderr.
    fn refused(&self, sub: &str, args: &[&str], needle: &str) {
        let out = self.cli(sub, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "pktkit {sub} {args:?}: {err}");
        assert!(
            err.contains(needle),
            "pktkit {sub} {args:?}: {err:?} lacks {needle:?}"
        );
    }

    fn sysctl(&self, name: &str) -> String {
        let v = self.json("sysctl", &[name]);
        v["values"][0]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("sysctl {name}: {v}"))
            .to_owned()
    }

    fn sysctl_u64(&self, name: &str) -> u64 {
        let s = self.sysctl(name);
        s.parse().unwrap_or_else(|_| panic!("sysctl {name} = {s}"))
    }

    fn ifaces(&self) -> Vec<Value> {
        self.json("ifconfig", &[])["interfaces"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn iface(&self, name: &str) -> Value {
        self.json("ifconfig", &[name])["interfaces"][0].clone()
    }
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect()
}

fn addrs(iface: &Value) -> Vec<(String, Option<String>)> {
    iface["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["addr"].as_str().unwrap_or("").to_owned(),
                        x["alias"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sysctl_and_ifconfig_round_trips() {
    let st = Stackd::start(
        "ctl",
        &[
            "-d",
            "pair",
            "--ip",
            "pair0=192.0.2.1/24",
            "--serve",
            "echo",
        ],
    );

    // Interface tunables: set, read back, and seen by ifconfig.
    assert_eq!(st.sysctl("net.if.pair0.mtu"), "1500");
    st.ok("sysctl", &["net.if.pair0.mtu=1400"]);
    assert_eq!(st.sysctl_u64("net.if.pair0.mtu"), 1400);
    assert_eq!(st.iface("pair0")["mtu"], 1400);
    st.ok("sysctl", &["net.if.pair0.promisc=1"]);
    assert_eq!(st.sysctl("net.if.pair0.promisc"), "1");
    let flags = st.iface("pair0")["flag_names"].to_string();
    assert!(flags.contains("PROMISC"), "{flags}");
    st.ok("sysctl", &["net.if.pair0.promisc=0"]);
    assert!(!st.iface("pair0")["flag_names"]
        .to_string()
        .contains("PROMISC"));

    // Tunables beyond interfaces.
    st.ok("sysctl", &["kern.log_level=debug"]);
    assert_eq!(st.sysctl("kern.log_level"), "debug");
    st.ok("sysctl", &["kern.log_level=warn"]);
    st.ok("sysctl", &["ctl.pool_check_ms=50"]);
    assert_eq!(st.sysctl_u64("ctl.pool_check_ms"), 50);

    // Read-only figures.
    assert_eq!(st.sysctl("kern.fallback"), "per-driver");
    assert_eq!(st.sysctl_u64("runtime.workers"), 2);
    assert_eq!(st.sysctl_u64("pool.capacity"), 16384);
    assert_eq!(st.sysctl("net.inet.services"), "echo");
    let sub = st.json("sysctl", &["net.if.pair1.rxq"]);
    let n = sub["values"].as_array().map_or(0, Vec::len);
    assert_eq!(n, 4, "rxq.0.{{packets,bytes,errors,drops}}: {sub}");
    let all = st.ok("sysctl", &[]);
    for k in [
        "pool.available = ",
        "pool.owner.pair0 = ",
        "runtime.sleeps = ",
    ] {
        assert!(all.contains(k), "{k} missing from:\n{all}");
    }

    // Errors.
    st.refused("sysctl", &["no.such.node"], "unknown sysctl 'no.such.node'");
    st.refused("sysctl", &["kern.fallback=global"], "read-only");
    st.refused("sysctl", &["pool.capacity=1"], "read-only");
    st.refused("sysctl", &["net.if.pair0.mtu=abc"], "bad value 'abc'");
    st.refused("sysctl", &["net.if.pair0.mtu=99999"], "outside");
    st.refused("sysctl", &["net.if.pair0.promisc=2"], "expected 0 or 1");
    st.refused("sysctl", &["kern.log_level=loud"], "bad value 'loud'");
    st.refused("sysctl", &["ctl.pool_check_ms=1"], "10..=60000");

    // ifconfig: aliases get IF:N names and go away again.
    st.ok("ifconfig", &["pair0", "192.0.2.7/24", "alias"]);
    st.ok("ifconfig", &["pair0", "192.0.2.8/24", "alias"]);
    let a = addrs(&st.iface("pair0"));
    assert!(a.contains(&("192.0.2.1".into(), None)), "{a:?}");
    assert!(
        a.contains(&("192.0.2.7".into(), Some("pair0:1".into()))),
        "{a:?}"
    );
    assert!(
        a.contains(&("192.0.2.8".into(), Some("pair0:2".into()))),
        "{a:?}"
    );
    let text = st.ok("ifconfig", &["pair0"]);
    assert!(text.contains("inet 192.0.2.7/24 alias (pair0:1)"), "{text}");
    assert!(text.starts_with("pair0: flags=0x"), "{text}");
    st.ok("ifconfig", &["pair0", "-alias", "192.0.2.7"]);
    let a = addrs(&st.iface("pair0"));
    assert!(!a.iter().any(|(x, _)| x == "192.0.2.7"), "{a:?}");
    // Without `alias` the address replaces the primary one.
    st.ok("ifconfig", &["pair0", "192.0.2.9/24"]);
    let a = addrs(&st.iface("pair0"));
    assert!(
        !a.iter().any(|(x, _)| x == "192.0.2.1" || x == "192.0.2.8"),
        "{a:?}"
    );
    assert!(a.contains(&("192.0.2.9".into(), None)), "{a:?}");

    // down and up: the interface stops, comes back with its address.
    st.ok("ifconfig", &["pair0", "down"]);
    let i = st.iface("pair0");
    assert!(!i["flag_names"].to_string().contains("UP"), "{i}");
    st.ok("ifconfig", &["pair0", "up"]);
    let i = st.iface("pair0");
    assert!(i["flag_names"].to_string().contains("RUNNING"), "{i}");
    assert!(addrs(&i).contains(&("192.0.2.9".into(), None)), "{i}");
    assert_eq!(st.sysctl("net.if.pair0.up"), "1");

    // Bad ifconfig arguments.
    st.refused("ifconfig", &["pair0", "mtu"], "'mtu' needs a value");
    st.refused(
        "ifconfig",
        &["pair0", "frobnicate"],
        "unknown ifconfig argument",
    );
    st.refused(
        "ifconfig",
        &["pair0", "-alias", "198.51.100.1"],
        "not an address",
    );
    st.refused("ifconfig", &["nosuch0"], "no interface 'nosuch0'");

    // netstat: the echo service's sockets, per-interface counters.
    let ns = st.json("netstat", &[]);
    let socks = ns["sockets"].to_string();
    assert!(
        socks.contains("\"local\":\"*:7\"") && socks.contains("LISTEN"),
        "{socks}"
    );
    assert_eq!(ns["interfaces"].as_array().map_or(0, Vec::len), 2);
    let text = st.ok("netstat", &["-i"]);
    assert!(text.contains("pair1"), "{text}");

    // nicinfo: driver, queues, counters.
    let nic = st.json("nicinfo", &["pair1"])["nic"].clone();
    assert_eq!(nic["driver"], "pair");
    assert_eq!(nic["kind"], "native");
    assert_eq!(nic["queues"]["rx"], 1);
    assert!(nic["counters"]["rx"]["packets"].is_u64(), "{nic}");
    let text = st.ok("nicinfo", &["pair1"]);
    assert!(
        text.contains("counters:") && text.contains("rxq0"),
        "{text}"
    );
}

#[test]
fn two_instances_side_by_side() {
    let a = Stackd::start("ctl", &["-d", "pair"]);
    let b = Stackd::start("ctl", &["-d", "null"]);
    assert_eq!(names(&a.ifaces()), ["pair0", "pair1"]);
    assert_eq!(names(&b.ifaces()), ["null0"]);
    assert_eq!(a.sysctl("kern.instance"), a.instance);
    assert_eq!(b.sysctl("kern.instance"), b.instance);
    // Each has its own pool: a mount in one is not seen in the other.
    a.ok("mount", &["-d", "null"]);
    assert_eq!(names(&a.ifaces()), ["pair0", "pair1", "null0"]);
    assert_eq!(names(&b.ifaces()), ["null0"]);
    assert!(a.ok("sysctl", &["pool"]).contains("pool.owner.pair0 = "));
    b.refused("sysctl", &["pool.owner.pair0"], "unknown sysctl");

    // The same instance twice is refused before anything starts.
    let out = Command::new(BIN)
        .args([
            "run",
            "-d",
            "null",
            "--instance",
            &a.instance,
            "--duration",
            "5",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert_eq!(names(&a.ifaces()), ["pair0", "pair1", "null0"]);

    let out = Command::new(BIN)
        .args(["instances", "--json"])
        .output()
        .expect("instances");
    let list: Value = serde_json::from_slice(&out.stdout).expect("instances json");
    for s in [&a, &b] {
        let row = list
            .as_array()
            .and_then(|l| l.iter().find(|r| r["instance"] == s.instance.as_str()))
            .unwrap_or_else(|| panic!("{} not listed: {list}", s.instance));
        assert_eq!(row["running"], true, "{row}");
        assert_eq!(row["pid"], s.child.id(), "{row}");
    }
}

#[test]
fn malformed_requests_get_errors_and_the_stack_keeps_running() {
    let mut st = Stackd::start("ctl", &["-d", "pair"]);
    let path = pktkit::ctl::socket_path(&st.instance).expect("path");
    let s = UnixStream::connect(&path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut ask = |line: &str| -> Value {
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        let mut back = String::new();
        r.read_line(&mut back).expect("reply");
        serde_json::from_str(&back).unwrap_or_else(|e| panic!("{e}: {back:?}"))
    };
    let cases = [
        ("garbage", "malformed request"),
        ("{\"cmd\":", "malformed request"),
        ("[1,2,3]", "not a JSON object"),
        ("{}", "missing 'cmd'"),
        ("{\"cmd\": 5}", "'cmd' must be a string"),
        ("{\"cmd\": \"reboot\"}", "unknown command 'reboot'"),
        ("{\"cmd\": \"umount\"}", "missing 'if'"),
        (
            "{\"cmd\": \"umount\", \"if\": \"nosuch9\"}",
            "no interface 'nosuch9'",
        ),
        (
            "{\"cmd\": \"mount\", \"spec\": \"nosuch\"}",
            "unknown driver 'nosuch'",
        ),
        (
            "{\"cmd\": \"mount\", \"spec\": \"null,size=big\"}",
            "bad value 'big'",
        ),
        (
            "{\"cmd\": \"sysctl\", \"name\": 7}",
            "'name' must be a string",
        ),
        (
            "{\"cmd\": \"sysctl\", \"name\": \"kern.pid\", \"value\": [1]}",
            "must be a string or a number",
        ),
        (
            "{\"cmd\": \"ifconfig\", \"if\": \"pair0\", \"args\": \"up\"}",
            "array of strings",
        ),
        (
            "{\"cmd\": \"ifconfig\", \"args\": [\"up\"]}",
            "need an interface name",
        ),
        ("{\"cmd\": \"nicinfo\"}", "missing 'if'"),
        ("\u{1b}[31m\u{0}\u{7f}", "malformed request"),
    ];
    for (req, needle) in cases {
        let v = ask(req);
        assert_eq!(v["ok"], false, "{req}: {v}");
        let e = v["error"].as_str().unwrap_or("");
        assert!(e.contains(needle), "{req}: {e:?} lacks {needle:?}");
    }
    // The same connection still works after all that.
    let v = ask("{\"cmd\": \"info\"}");
    assert_eq!(v["ok"], true, "{v}");

    // A line longer than the limit: an error, then the connection closes.
    let mut s = UnixStream::connect(&path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let huge = vec![b'x'; pktkit::ctl::MAX_REQUEST * 4];
    let _ = s.write_all(&huge); // may fail once the server has closed
    let mut back = String::new();
    let _ = s.read_to_string(&mut back);
    let first = back.lines().next().unwrap_or("");
    let v: Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {back:?}"));
    assert_eq!(v["ok"], false);
    assert!(
        v["error"].as_str().unwrap_or("").contains("longer than"),
        "{v}"
    );

    // A client that connects and vanishes mid-request.
    {
        let mut s = UnixStream::connect(&path).expect("connect");
        s.write_all(b"{\"cmd\": \"sysc").unwrap();
    }

    // The stack runs on and counted the bad requests.
    assert!(st.alive());
    assert_eq!(names(&st.ifaces()), ["pair0", "pair1"]);
    assert!(st.sysctl_u64("ctl.bad_requests") >= 17);
}

#[test]
fn monitor_reports_attach_detach_and_pool_exhaustion() {
    // A pool smaller than one receive burst: a null device exhausts it.
    let st = Stackd::start("ctl", &["-d", "pair", "--pool-buffers", "100"]);
    st.ok("sysctl", &["ctl.pool_check_ms=20"]);
    let mut conn = Conn::open(&st.instance).expect("connect");
    conn.request(&json!({"cmd": "monitor"})).expect("subscribe");
    let mut cli = Command::new(BIN)
        .args(["monitor", "--instance", &st.instance])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("monitor");
    // Give the CLI monitor time to subscribe (the library one above is).
    std::thread::sleep(Duration::from_millis(700));

    let out = st.ok("mount", &["-d", "null"]);
    assert!(out.contains("null0"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    st.ok("umount", &["null0"]);

    let mut seen = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        let ev = conn.read_value().expect("event").expect("stream open");
        let kind = ev["event"].as_str().unwrap_or("").to_owned();
        if kind == "pool-exhausted" {
            assert!(ev["new"].as_u64().unwrap_or(0) > 0, "{ev}");
            assert_eq!(ev["capacity"], 100);
        }
        let done = kind == "detach";
        seen.push(kind);
        if done {
            break;
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("attach"), "{seen:?}");
    assert!(seen.iter().any(|k| k == "pool-exhausted"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("detach"), "{seen:?}");
    // The pool is whole again after the detach.
    assert_eq!(st.sysctl_u64("pool.available"), 100);

    // The CLI monitor printed the same, one line per event.
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(cli.id() as i32, libc::SIGTERM) };
    let mut text = String::new();
    if let Some(mut o) = cli.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    let _ = cli.wait();
    assert!(text.lines().any(|l| l == "attach null0"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("pool-exhausted stack: +")),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "detach null0"), "{text}");
}

#[test]
fn mount_and_umount_while_forwarding() {
    let st = Stackd::start(
        "ctl",
        &["-d", "null", "-d", "null", "--forward", "null0:null1"],
    );
    let fwd = || st.sysctl_u64("net.if.null1.txq.0.packets");
    let mut last = fwd();
    for spec in ["null", "pair", "null,size=1514"] {
        let v = st.json("mount", &["-d", spec]);
        let ifs: Vec<String> = v["interfaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert!(!ifs.is_empty(), "{v}");
        for i in &ifs {
            let info = st.iface(i);
            assert!(info["flag_names"].to_string().contains("RUNNING"), "{info}");
            assert_eq!(info["proto"], true, "{info}");
        }
        std::thread::sleep(Duration::from_millis(100));
        for i in &ifs {
            // umount fails (StackError::Leak) if the driver kept a buffer.
            let v = st.json("umount", &[i]);
            assert_eq!(v["detached"], i.as_str());
            let owners = st.ok("sysctl", &["pool"]);
            assert!(!owners.contains(&format!("pool.owner.{i} ")), "{owners}");
        }
        let now = fwd();
        assert!(
            now > last,
            "forwarding stalled across {spec}: {last} -> {now}"
        );
        last = now;
    }
    assert_eq!(st.sysctl_u64("net.if.null1.stack_drops"), 0);
    assert_eq!(names(&st.ifaces()), ["null0", "null1"]);
}

/// Pings `addr` from `ns` until it answers (or 15 s pass).
fn wait_ping(ns: &NetNs, addr: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(15) {
        if ns
            .try_exec(&["ping", "-c", "1", "-W", "1", addr])
            .status
            .success()
        {
            return;
        }
    }
    panic!("{addr} never answered");
}

#[test]
fn tap_alias_and_mounts_under_a_linux_ping_flood() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = NetNs::new("pc");
    let linux_if = unique("pc");
    let st = Stackd::start_in(
        "ctl",
        &ns,
        &[
            "-d",
            &format!("tap,ifname={linux_if}"),
            "--ip",
            "tap0=192.0.2.2/24",
            "--serve",
            "echo",
        ],
    );
    ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", &linux_if]);
    ns.exec(&["ip", "link", "set", &linux_if, "up"]);
    wait_ping(&ns, "192.0.2.2");

    // Mount and umount drivers of each kind at hand while Linux pings
    // tap0 every 2 ms: not one echo may be lost, no buffer leaked.
    let count = "2500";
    let ping = Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "ping", "-q", "-i", "0.002", "-c", count,
        ])
        .args(["-W", "2", "192.0.2.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_millis(300));
    let tap2 = unique("pd");
    // Every kind: native (null, pair, tap), ported (bsdnull, a NetBSD-style
    // C driver through compat-bsd) and legacy (devn-null.so through the shim).
    let legacy = format!("legacy:{}", pktkit_shim::drivers::DEVN_NULL);
    for spec in [
        "null",
        "pair",
        &format!("tap,ifname={tap2}"),
        "bsdnull",
        legacy.as_str(),
    ] {
        let v = st.json("mount", &["-d", spec]);
        let ifs: Vec<String> = v["interfaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert!(!ifs.is_empty(), "{v}");
        std::thread::sleep(Duration::from_millis(100));
        for i in &ifs {
            st.ok("umount", &[i]);
        }
    }
    let mut ping = ping;
    assert!(
        matches!(ping.try_wait(), Ok(None)),
        "the ping flood ended before the mounts did; nothing was proven"
    );
    let out = ping.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{count} packets transmitted, {count} received")),
        "loss on tap0 during mount/umount:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&st.ifaces()), ["tap0"]);

    // An alias answers pings; once removed, it does not. (This comes after
    // the flood: smoltcp flushes its neighbour cache on every address
    // change, so the first reply after one is lost to an ARP exchange.)
    st.ok("ifconfig", &["tap0", "192.0.2.7/24", "alias"]);
    let a = addrs(&st.iface("tap0"));
    assert!(
        a.contains(&("192.0.2.7".into(), Some("tap0:1".into()))),
        "{a:?}"
    );
    ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.7"]);
    st.ok("ifconfig", &["tap0", "-alias", "192.0.2.7"]);
    let gone = ns.try_exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "192.0.2.7"]);
    assert!(!gone.status.success(), "a removed alias still answers");
}

#[test]
fn a_client_of_another_uid_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let st = Stackd::start("ctl", &["-d", "null"]);
    let as_nobody = || {
        Command::new(BIN)
            .args(["ifconfig", "--instance", &st.instance])
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run as nobody")
    };
    // The socket is mode 0600: connect(2) itself is refused.
    let out = as_nobody();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(out.stdout.is_empty());

    // With the mode opened up, the peer-credential check still refuses.
    let path = pktkit::ctl::socket_path(&st.instance).expect("path");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied: uid 65534"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(st.sysctl_u64("ctl.refused"), 1);
    // Root still gets in.
    assert_eq!(names(&st.ifaces()), ["null0"]);
}

#[test]
fn an_mtu_change_reaches_the_protocol_layer_at_once() {
    // pair0 and pair1 in one stack; pair1 pings pair0. The pair driver does
    // not enforce the MTU, so only the protocol layer can keep pair0's
    // 1428-byte reply off the wire once pair0's MTU is 1000 (there is no IP
    // fragmentation): if the change did not reach it, the reply would go.
    let st = Stackd::start(
        "ctl",
        &[
            "-d",
            "pair",
            "--ip",
            "pair0=192.0.2.1/24",
            "--ip",
            "pair1=192.0.2.2/24",
        ],
    );
    let answered = |size: &str| {
        st.cli(
            "ping",
            &[
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "1",
                "-s",
                size,
                "-I",
                "pair1",
                "192.0.2.1",
            ],
        )
        .status
        .success()
    };
    assert!(answered("1400"), "a 1428-byte ping at MTU 1500");
    st.ok("ifconfig", &["pair0", "mtu", "1000"]);
    assert!(!answered("1400"), "a 1428-byte reply went out at MTU 1000");
    assert!(answered("900"), "a small ping at MTU 1000");
    st.ok("ifconfig", &["pair0", "mtu", "1500"]);
    assert!(answered("1400"), "a 1428-byte ping back at MTU 1500");
}

#[test]
fn a_ported_drivers_sysctl_nodes_are_read_and_set_through_ctl() {
    let st = Stackd::start(
        "ctl",
        &[
            "-d",
            "bsdnull",
            "-d",
            "bsdnull",
            "--forward",
            "bnull0:bnull1",
        ],
    );
    // hw.bnull1.* of the C driver, below the interface.
    let sub = st.json("sysctl", &["net.if.bnull1.drv"]);
    let nodes: Vec<(String, String, bool)> = sub["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_owned(),
                n["value"].as_str().unwrap_or_default().to_owned(),
                n["writable"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    let names: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "net.if.bnull1.drv.tx_defer",
            "net.if.bnull1.drv.tx_works",
            "net.if.bnull1.drv.size",
        ],
        "{sub}"
    );
    assert_eq!(nodes[0].1, "0");
    assert!(nodes[0].2 && !nodes[1].2 && nodes[2].2, "{sub}");
    assert!(
        sub["values"][0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("workqueue")),
        "{sub}"
    );
    assert_eq!(st.sysctl("net.if.bnull1.drv.size"), "64");

    // The knob changes what the driver does: sent packets are freed by
    // its workqueue, whose works the handler-backed counter shows.
    assert_eq!(st.sysctl_u64("net.if.bnull1.drv.tx_works"), 0);
    st.ok("sysctl", &["net.if.bnull1.drv.tx_defer=1"]);
    assert_eq!(st.sysctl("net.if.bnull1.drv.tx_defer"), "1");
    let t0 = Instant::now();
    while st.sysctl_u64("net.if.bnull1.drv.tx_works") == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no transmit completion work ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = st.sysctl_u64("net.if.bnull1.txq.0.packets");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        st.sysctl_u64("net.if.bnull1.txq.0.packets") > sent,
        "forwarding goes on with deferred completion"
    );
    let nicinfo = st.ok("nicinfo", &["bnull1"]);
    assert!(nicinfo.contains("workqueue bnull1 works"), "{nicinfo}");

    // A handler-backed knob: set, read back, seen by the receive path.
    st.ok("sysctl", &["net.if.bnull0.drv.size=100"]);
    assert_eq!(st.sysctl_u64("net.if.bnull0.drv.size"), 100);

    // Refusals say why and change nothing.
    st.refused(
        "sysctl",
        &["net.if.bnull1.drv.tx_defer=2"],
        "bad value '2' for net.if.bnull1.drv.tx_defer: expected 0 or 1",
    );
    st.refused(
        "sysctl",
        &["net.if.bnull0.drv.size=5"],
        "the driver refused it: errno 22 (EINVAL",
    );
    st.refused("sysctl", &["net.if.bnull0.drv.size=abc"], "bad value 'abc'");
    st.refused("sysctl", &["net.if.bnull1.drv.tx_works=0"], "read-only");
    st.refused(
        "sysctl",
        &["net.if.bnull1.drv.nothing=1"],
        "unknown sysctl 'net.if.bnull1.drv.nothing'",
    );
    assert_eq!(st.sysctl("net.if.bnull1.drv.tx_defer"), "1");
    assert_eq!(st.sysctl_u64("net.if.bnull0.drv.size"), 100);

    // A device mounted later has its own nodes, with their defaults.
    // (That the driver's detach removes them is checked on compat-bsd's
    // side, in ported/bsdnull/tests/driver.rs: once the interface is
    // gone, its net.if.IF.drv is unknown whatever the driver did.)
    let v = st.json("mount", &["-d", "bsdnull"]);
    let name = v["interfaces"][0].as_str().expect("interface").to_owned();
    assert_eq!(st.sysctl(&format!("net.if.{name}.drv.tx_defer")), "0");
    assert_eq!(st.sysctl("net.if.bnull1.drv.tx_defer"), "1", "bnull1's own");
}

#[test]
fn only_a_request_that_selects_a_drivers_tunables_asks_the_driver() {
    let st = Stackd::start("ctl", &["-d", "probe"]);
    let calls = || st.sysctl_u64("net.if.probe0.drv.tunables_calls");
    let before = calls();
    for name in ["kern.pid", "kern", "net.if.probe0.mtu", "pool.capacity"] {
        st.sysctl(name);
    }
    assert_eq!(calls(), before + 1, "only the drv reads asked the driver");
    st.ok("sysctl", &["net.if.probe0"]);
    st.ok("sysctl", &[]);
    assert_eq!(calls(), before + 4, "a subtree above it and everything do");
}
