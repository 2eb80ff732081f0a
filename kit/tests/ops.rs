//! `pktkit tcpdump` and `pktkit fw` against a running `pktkit run` whose
//! TAP interface faces a Linux peer in a namespace made by the test: a
//! capture read back by Debian's tcpdump matches what the peer sent (and
//! leaves out what the filter excludes); filter rules block and let through
//! what they say, and count it.

use pktkit_testnet as common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{is_root, unique, NetNs};
use serde_json::Value;

const STACK_IP: &str = "192.0.2.2";
const PEER_IP: &str = "192.0.2.1";

#[path = "support/stackd.rs"]
mod stackd;

use stackd::{Stackd, BIN};

/// A stack in `ns` with TAP `linux_if` as tap0 (192.0.2.2/24, serving
/// echo), the Linux side addressed and up, once it answers ping.
fn start_stack(ns: &NetNs, linux_if: &str) -> Stackd {
    let st = Stackd::start_in(
        "ops",
        ns,
        &[
            "-d",
            &format!("tap,ifname={linux_if}"),
            "--ip",
            &format!("tap0={STACK_IP}/24"),
            "--serve",
            "echo",
        ],
    );
    ns.exec(&[
        "ip",
        "addr",
        "add",
        &format!("{PEER_IP}/24"),
        "dev",
        linux_if,
    ]);
    ns.exec(&["ip", "link", "set", linux_if, "up"]);
    let t0 = Instant::now();
    while !ping(ns, 1) {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "stack never answered ping"
        );
    }
    st
}

/// What only these tests ask of a running stack.
impl Stackd {
    fn fw_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok("fw", &a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("fw {args:?}: {e}: {out}"))
    }

    /// A capture as a child process, once it is listening.
    fn tcpdump(&self, args: &[&str]) -> Capture {
        self.tcpdump_to(args, Stdio::piped())
    }

    /// Likewise, with its standard output going to `out`.
    fn tcpdump_to(&self, args: &[&str], out: Stdio) -> Capture {
        let mut child = Command::new(BIN)
            .args(["tcpdump", "--instance", &self.instance])
            .args(args)
            .stdout(out)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pktkit tcpdump");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all += &line;
                all.push('\n');
            }
            all
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("tcpdump said nothing");
        assert!(first.contains("listening on tap0"), "{first}");
        Capture {
            child,
            reader: Some(reader),
        }
    }
}

/// A running `pktkit tcpdump`.
struct Capture {
    child: Child,
    reader: Option<std::thread::JoinHandle<String>>,
}

impl Capture {
    /// Waits for it to end (after `interrupt` if given); returns
    /// (success, stdout, stderr).
    fn finish(mut self, interrupt: bool) -> (bool, String, String) {
        if interrupt {
            // SAFETY: kill on our own child's pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        }
        let t0 = Instant::now();
        let status = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if t0.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                panic!("pktkit tcpdump did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let err = self
            .reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        (status.success(), out, err)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Linux pings the stack `n` times; whether every echo came back.
fn ping(ns: &NetNs, n: u32) -> bool {
    ns.try_exec(&[
        "ping",
        "-c",
        &n.to_string(),
        "-i",
        "0.2",
        "-W",
        "1",
        STACK_IP,
    ])
    .status
    .success()
}

/// Linux sends `data` to the stack's echo service and reads it back.
fn tcp_echo(ns: &NetNs, data: &[u8]) -> std::io::Result<Vec<u8>> {
    ns.run(|| {
        let addr = format!("{STACK_IP}:7").parse().expect("addr");
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(data)?;
        let mut back = vec![0u8; data.len()];
        s.read_exact(&mut back)?;
        Ok(back)
    })
}

fn tcpdump_read(path: &str) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-r", path, "-n"])
        .output()
        .expect("Debian's tcpdump (apt-get install tcpdump)");
    assert!(
        out.status.success(),
        "tcpdump -r {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn tcpdump_capture_reads_back_in_debians_tcpdump() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = NetNs::new("pt");
    let linux_if = unique("pt");
    let st = start_stack(&ns, &linux_if);
    let dir = std::env::temp_dir().join(unique("pktkit-cap"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let file = dir.join("icmp.pcap").display().to_string();

    // ICMP from the peer and TCP at the same time: only ICMP is kept.
    let cap = st.tcpdump(&["-i", "tap0", "-w", &file, "icmp", "and", "host", PEER_IP]);
    let tcp = std::thread::scope(|s| {
        let t = s.spawn(|| {
            (0..3)
                .map(|i| tcp_echo(&ns, format!("not captured {i}").as_bytes()))
                .collect::<Vec<_>>()
        });
        assert!(ping(&ns, 5), "ping failed while capturing");
        t.join().expect("tcp thread")
    });
    for r in tcp {
        assert!(r.is_ok(), "tcp echo failed while capturing: {r:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let (ok, _, err) = cap.finish(true);
    assert!(ok, "tcpdump failed: {err}");
    assert!(err.contains("10 packets captured"), "{err}");
    assert!(err.contains("0 packets dropped by kernel"), "{err}");
    let lines = tcpdump_read(&file);
    assert_eq!(lines.len(), 10, "{lines:#?}");
    assert_eq!(
        count(
            &lines,
            &format!("{PEER_IP} > {STACK_IP}: ICMP echo request")
        ),
        5,
        "{lines:#?}"
    );
    assert_eq!(
        count(&lines, &format!("{STACK_IP} > {PEER_IP}: ICMP echo reply")),
        5,
        "{lines:#?}"
    );
    assert_eq!(
        count(&lines, "Flags ["),
        0,
        "TCP was filtered out: {lines:#?}"
    );

    // -c ends the capture by itself; the text form prints one line each.
    let cap = st.tcpdump(&["-i", "tap0", "-c", "4", "-n", "tcp", "port", "7"]);
    let echoed = tcp_echo(&ns, b"four segments or more").expect("tcp echo");
    assert_eq!(echoed, b"four segments or more");
    let (ok, out, err) = cap.finish(false);
    assert!(ok, "tcpdump -c failed: {err}");
    let text: Vec<&str> = out.lines().collect();
    assert_eq!(text.len(), 4, "{out}");
    assert!(text[0].contains(&format!("In  IP {PEER_IP}.")), "{out}");
    assert!(
        text[0].contains(&format!("> {STACK_IP}.7: Flags [S]")),
        "{out}"
    );
    assert!(err.contains("4 packets captured"), "{err}");

    // `-w -` writes the pcap to standard output.
    let piped = dir.join("stdout.pcap").display().to_string();
    let f = std::fs::File::create(&piped).expect("create");
    let cap = st.tcpdump_to(
        &["-i", "tap0", "-c", "2", "-w", "-", "icmp"],
        Stdio::from(f),
    );
    assert!(ping(&ns, 1));
    let (ok, _, err) = cap.finish(false);
    assert!(ok, "tcpdump -w - failed: {err}");
    let lines = tcpdump_read(&piped);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(count(&lines, "ICMP echo re"), 2, "{lines:#?}");

    // Bad expressions: the client points at the column, the stack's
    // answer says it too.
    let out = st.cli("tcpdump", &["-i", "tap0", "icmp", "and", "hots", "1.2.3.4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("at column 10: unknown primitive 'hots'"),
        "{err}"
    );
    assert!(err.contains("           ^"), "{err}");
    let reply = pktkit::ctl::client::Conn::open(&st.instance)
        .and_then(|mut c| {
            c.request(&serde_json::json!({
                "cmd": "tcpdump", "if": "tap0", "filter": "port 99999",
            }))
        })
        .expect_err("a bad filter is refused");
    assert!(reply.to_string().contains("at column 6"), "{reply}");
    let out = st.cli("tcpdump", &["-i", "nosuch0", "-c", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch0"));
    // The stack is fine after all that.
    assert!(ping(&ns, 1));
}

fn rule_packets(v: &Value, num: u64) -> u64 {
    v["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["num"].as_u64() == Some(num)))
        .and_then(|r| r["packets"].as_u64())
        .unwrap_or_else(|| panic!("no rule {num} in {v}"))
}

#[test]
fn fw_rules_block_count_and_restore() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = NetNs::new("pf");
    let linux_if = unique("pf");
    let st = start_stack(&ns, &linux_if);

    // Deny ICMP in: ping fails and is counted, TCP still works.
    st.ok("fw", &["add", "10", "deny", "in", "proto", "icmp"]);
    assert!(!ping(&ns, 3), "ping got through a deny rule");
    assert_eq!(tcp_echo(&ns, b"still here").expect("tcp"), b"still here");
    let v = st.fw_json(&["stats"]);
    assert!(rule_packets(&v, 10) >= 3, "{v}");
    assert_eq!(v["active"], Value::Bool(true));
    let hooks = v["hooks"].as_array().expect("hooks");
    assert_eq!(hooks.len(), 1, "{v}");
    assert!(hooks[0]["drops"].as_u64() >= Some(3), "{v}");
    let text = st.ok("fw", &["list"]);
    assert!(text.contains("10 deny in proto icmp"), "{text}");

    // Deleting the rule restores ping.
    st.ok("fw", &["delete", "10"]);
    assert!(ping(&ns, 2), "ping still blocked after delete");

    // Default deny in, accept TCP to port 7: echo works, ping does not.
    st.ok("fw", &["policy", "in", "deny"]);
    st.ok(
        "fw",
        &[
            "add", "20", "accept", "in", "proto", "tcp", "to", "any", "port", "7",
        ],
    );
    assert_eq!(tcp_echo(&ns, b"port 7 open").expect("tcp"), b"port 7 open");
    assert!(!ping(&ns, 2), "ping got through a default deny");
    let v = st.fw_json(&["stats"]);
    assert!(rule_packets(&v, 20) >= 3, "{v}");
    assert!(v["policy"]["in"]["packets"].as_u64() >= Some(2), "{v}");
    assert_eq!(v["policy"]["in"]["action"], "deny");
    // Another port is closed by the policy (nothing answers, not even RST).
    st.ok(
        "fw",
        &[
            "add", "5", "deny", "in", "proto", "tcp", "to", "any", "port", "7",
        ],
    );
    assert!(tcp_echo(&ns, b"x").is_err(), "rule 5 precedes rule 20");
    st.ok("fw", &["delete", "5"]);

    // Parse errors say which word.
    let out = st.cli("fw", &["add", "1", "deny", "frm", "any"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("word 4 'frm'"), "{err}");
    let out = st.cli("fw", &["add", "20", "deny"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rule 20 exists"));

    // Flush and accept: everything back, hook gone.
    st.ok("fw", &["flush"]);
    st.ok("fw", &["policy", "in", "accept"]);
    assert!(ping(&ns, 2));
    let v = st.fw_json(&["list"]);
    assert_eq!(v["active"], Value::Bool(false), "{v}");
    assert!(v["hooks"].as_array().is_some_and(Vec::is_empty), "{v}");
}
