//! The `pktkit` command line, as a user runs it: clear errors with exit
//! code 2 before anything starts, the driver listing, the benchmarks' JSON,
//! and `run` stopping on a signal with per-interface counters.

use std::process::{Command, Stdio};
use std::time::Duration;

fn pktkit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pktkit"))
        .args(args)
        .output()
        .expect("run pktkit")
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = pktkit(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_error() {
    assert_usage_error(&["run", "-d", "nosuch"], "unknown driver 'nosuch'");
    assert_usage_error(&["run", "-d", "null,bogus=1"], "unknown option 'bogus'");
    assert_usage_error(
        &["run", "-d", "null,size=abc"],
        "bad value 'abc' for option 'size'",
    );
    assert_usage_error(&["run", "-d", "null,size"], "not key=value");
    assert_usage_error(&["run", "-d", "afpacket"], "missing option 'ifname'");
    assert_usage_error(
        &["run", "-d", "null", "--ip", "null0=192.0.2.1"],
        "ADDR/PLEN",
    );
    assert_usage_error(
        &["run", "-d", "null", "--ip", "null7=192.0.2.1/24"],
        "no interface 'null7'",
    );
    assert_usage_error(
        &["run", "-d", "null", "--route", "0.0.0.0/0=fe80::1"],
        "mixes IPv4 and IPv6",
    );
    assert_usage_error(&["run", "-d", "null", "--serve", "chargen"], "chargen");
    assert_usage_error(
        &["run", "-d", "null", "--fallback", "sometimes"],
        "sometimes",
    );
    assert_usage_error(&["bench", "fwd", "--ports", "null"], "exactly two ports");
    assert_usage_error(
        &["bench", "fwd", "--ports", "null,null", "--burst", "0"],
        "--burst",
    );
    if unsafe_is_root() {
        assert_usage_error(
            &["run", "-d", "afpacket,ifname=nosuch0"],
            "no network interface named 'nosuch0'",
        );
    }
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn drivers_lists_every_driver_with_options() {
    let out = pktkit(&["drivers"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for d in ["null", "pair", "tap", "afpacket", "probe"] {
        assert!(
            text.lines().any(|l| l.starts_with(d)),
            "{d} missing from:\n{text}"
        );
    }
    assert!(text.contains("ifname"));
    let json: serde_json::Value =
        serde_json::from_slice(&pktkit(&["drivers", "--json"]).stdout).unwrap();
    let afp = json
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "afpacket")
        .unwrap();
    assert_eq!(afp["kind"], "native");
    assert!(afp["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["key"] == "ifname" && o["required"] == true));
}

#[test]
fn bench_json_has_the_promised_keys() {
    let out = pktkit(&[
        "bench",
        "fwd",
        "--ports",
        "null,null",
        "--burst",
        "32",
        "--seconds",
        "0.3",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["mpps"].as_f64().unwrap() > 0.0);
    assert_eq!(v["burst"], 32);
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(v["ports"].as_array().unwrap().len(), 2);
    // The counting allocator is installed in the binary: no heap per packet.
    assert_eq!(v["heap_allocs_per_pkt"].as_f64(), Some(0.0));
    let out = pktkit(&["bench", "pool", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["single_ns"].as_f64().unwrap() > 0.0 && v["bulk_ns"].as_f64().unwrap() > 0.0);
}

#[test]
fn run_stops_on_sigterm_and_prints_counters() {
    let child = Command::new(env!("CARGO_BIN_EXE_pktkit"))
        .args([
            "run",
            "-d",
            "pair",
            "--ip",
            "pair0=192.0.2.1/24",
            "--ip",
            "pair1=192.0.2.2/24",
            "--serve",
            "echo",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pair0: attached") && stderr.contains("stopping"),
        "{stderr}"
    );
    assert!(
        stdout.contains("rx-packets") && stdout.lines().any(|l| l.starts_with("pair1")),
        "{stdout}"
    );
}
