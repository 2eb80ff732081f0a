//! `pktkit harness test` end to end over the software `pair` driver: the
//! suite passes, the reports are written and read back, and bad input
//! exits 2.

use std::process::Command;

use pktkit_harness::conformance::{Outcome, Report, CHECKS};

fn pktkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pktkit"))
}

#[test]
fn pair_suite_passes_and_writes_reports() {
    let dir = std::env::temp_dir().join(format!("pktkit-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, junit) = (dir.join("r.json"), dir.join("r.xml"));
    let out = pktkit()
        .args(["harness", "test", "-d", "pair", "--peer", "pair", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ring_wrap"), "{stdout}");
    let r = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r.checks.len(), CHECKS.len());
    assert!(r.dut.starts_with("pair0"), "{}", r.dut);
    assert!(r.peer.starts_with("pair1"), "{}", r.peer);
    assert_eq!(r.check("reattach").unwrap().outcome, Outcome::Pass);
    assert_eq!(r.count(Outcome::Fail), 0);
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.starts_with("<?xml"));
    assert_eq!(x.matches("<testcase ").count(), CHECKS.len());
    assert_eq!(x.matches("</testcase>").count(), CHECKS.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2() {
    for args in [
        &["harness", "test", "-d", "nosuch", "--peer", "pair"][..],
        &["harness", "test", "-d", "pair,bogus=1", "--peer", "pair"],
        &[
            "harness", "test", "-d", "pair", "--peer", "pair", "--mac", "zz",
        ],
        &[
            "harness",
            "test",
            "-d",
            "pair",
            "--peer",
            "pair",
            "--checks",
            "fps,nosuch",
        ],
    ] {
        let out = pktkit().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn checks_selects_and_link_cmd_drives_link_change() {
    let dir = std::env::temp_dir().join(format!("pktkit-checks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let log = dir.join("link.log");
    // pair has no pci=: a command naming {pci} is dropped (link_change
    // skipped), one without it runs; pair's carrier does not follow it, so
    // link_change fails, which proves the command ran and was waited on.
    let out = pktkit()
        .args([
            "harness",
            "test",
            "-d",
            "pair",
            "--peer",
            "pair",
            "--checks",
            "fps,link_change",
        ])
        .arg("--link-cmd")
        .arg(format!("echo {{state}} >> {}", log.display()))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let result = |name: &str| {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["result"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(result("fps"), "pass", "{text}");
    assert_eq!(result("link_change"), "fail", "{text}");
    assert_eq!(result("frames"), "skip", "{text}");
    assert_eq!(result("detach_at_end"), "pass", "{text}");
    // Down, never seen by pair; then up again: a failed check gives the
    // carrier back so later checks have a wire.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "down\nup\n");
    let _ = std::fs::remove_dir_all(&dir);
}
