//! `pktkit ping` and `pktkit tcpcheck` against a running `pktkit run`: one
//! instance with the `pair` driver, traffic from pair0 to pair1's address
//! through the protocol layer, every byte checked; and the failures (no
//! reply, a service that does not echo, a closed port) exit 1 with a reason.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/stackd.rs"]
mod stackd;

use stackd::{Stackd, BIN};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn pair_stack() -> Stackd {
    Stackd::start(
        "traffic",
        &[
            "-d",
            "pair",
            "--ip",
            "pair0=192.0.2.1/24",
            "--ip",
            "pair1=192.0.2.2/24",
            "--serve",
            "echo,discard",
        ],
    )
}

#[test]
fn ping_and_tcpcheck_across_the_pair() {
    let st = pair_stack();
    let o = st.cli(
        "ping",
        &["-c", "3", "-i", "0.2", "-I", "pair0", "192.0.2.2"],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "ping: {out}{err}");
    assert!(out.contains("PING 192.0.2.2 from pair0"), "{out}");
    // The first request may be lost to ARP resolution; later ones are not.
    let replies = out.matches("bytes from 192.0.2.2: icmp_seq=").count();
    assert!(replies >= 2, "{out}");
    assert!(out.contains("round-trip min/avg/max"), "{out}");

    let o = st.cli(
        "tcpcheck",
        &["--json", "-I", "pair0", "192.0.2.2:7", "--bytes", "8388608"],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "tcpcheck: {out}{err}");
    let v: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["bytes"], 8_388_608, "{v}");
    assert_eq!(v["if"], "pair0", "{v}");
    assert!(v["mbit_s"].as_f64().unwrap_or(0.0) > 0.0, "{v}");

    // Whatever the transfer left is gone again: only the services' sockets.
    let ns = st.cli("netstat", &["--json"]);
    let v: Value = serde_json::from_slice(&ns.stdout).expect("netstat json");
    let clients = v["sockets"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|s| s["owner"] == "client").count());
    assert_eq!(clients, 0, "{v}");
}

#[test]
fn failures_exit_1_with_a_reason() {
    let st = pair_stack();
    // Discard keeps the bytes: nothing comes back.
    let o = st.cli(
        "tcpcheck",
        &[
            "-I",
            "pair0",
            "192.0.2.2:9",
            "--bytes",
            "1000",
            "--timeout",
            "1",
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("0 of 1000 came back"), "{err}");
    // Nobody listens on port 22: the connection is refused.
    let o = st.cli(
        "tcpcheck",
        &["-I", "pair0", "192.0.2.2:22", "--bytes", "1000"],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("refused"), "{err}");
    // No host at .9: no reply.
    let o = st.cli(
        "ping",
        &[
            "-c",
            "2",
            "-i",
            "0.1",
            "-W",
            "0.3",
            "-I",
            "pair0",
            "192.0.2.9",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("2 packets transmitted, 0 packets received"),
        "{out}"
    );
    // Both interfaces hold 192.0.2.0/24: the stack will not guess.
    let o = st.cli("ping", &["192.0.2.2"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("choose one with -I IF"), "{err}");
    // The stack still answers other clients.
    assert!(st.cli("ifconfig", &["pair0"]).status.success());
}

#[test]
fn other_clients_are_served_during_a_transfer() {
    let st = pair_stack();
    let inst = st.instance.clone();
    let transfer = std::thread::spawn(move || {
        Command::new(BIN)
            .args([
                "tcpcheck",
                "--instance",
                &inst,
                "-I",
                "pair0",
                "192.0.2.2:7",
            ])
            .args(["--bytes", "33554432"])
            .output()
            .expect("tcpcheck")
    });
    std::thread::sleep(Duration::from_millis(30));
    let t0 = Instant::now();
    let o = st.cli("sysctl", &["kern.pid"]);
    assert!(o.status.success());
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "sysctl waited {:?} behind the transfer",
        t0.elapsed()
    );
    let o = transfer.join().expect("join");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("33554432 bytes echoed and verified"), "{out}");
}
