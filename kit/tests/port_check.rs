//! `pktkit port check`: the ported drivers have nothing missing; a
//! deliberately incomplete driver has each of its gaps named, in the right
//! subsystem; bad input exits 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `pktkit port check` from / (the headers are embedded in the binary,
/// so the working directory must not matter).
fn port_check(dir: &Path, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pktkit"));
    cmd.current_dir("/").args(["port", "check"]).arg(dir);
    if json {
        cmd.arg("--json");
    }
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("run pktkit: {e}"),
    }
}

fn have_compiler() -> bool {
    ["clang", "cc", "gcc"]
        .iter()
        .any(|c| Command::new(c).arg("--version").output().is_ok())
}

#[test]
fn ported_drivers_have_nothing_missing() {
    if !have_compiler() {
        println!("skipped: no C compiler");
        return;
    }
    for driver in ["rtk", "bsdnull"] {
        let out = port_check(&repo().join("ported").join(driver), false);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{driver}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("nothing missing"), "{text}");
    }
}

#[test]
fn an_incomplete_driver_has_each_gap_named_in_its_group() {
    if !have_compiler() {
        println!("skipped: no C compiler");
        return;
    }
    let out = port_check(&repo().join("kit/tests/fixtures/port-incomplete"), true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)),
    };
    let has = |group: &str, kind: &str, name: &str| {
        v["groups"][group]["missing"]
            .as_array()
            .is_some_and(|a| a.iter().any(|g| g["kind"] == kind && g["name"] == name))
    };
    assert!(has("pci", "header", "dev/pci/if_foo_missing.h"), "{v}");
    assert!(has("locks", "type", "krwlock_t"), "{v}");
    assert!(has("ifnet", "macro", "IFCAP_FOO_OFFLOAD"), "{v}");
    assert!(has("pci", "function", "pci_intr_distribute"), "{v}");
    // Link gap from the file that compiles; its own helper is no gap.
    assert!(has("callout", "symbol", "callout_foo_pending_count"), "{v}");
    assert!(!v.to_string().contains("foo_subr_helper"), "{v}");
    assert_eq!(v["compiled"], serde_json::json!(["foo_subr.c"]), "{v}");
    let total: u64 = v["groups"]
        .as_object()
        .map(|g| g.values().filter_map(|x| x["count"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(v["missing"].as_u64(), Some(total), "{v}");
    assert_eq!(
        total, 5,
        "exactly the five gaps written into the fixture: {v}"
    );
}

#[test]
fn bad_input_exits_2() {
    let out = port_check(Path::new("/nonexistent-pktkit-port-check"), false);
    assert_eq!(out.status.code(), Some(2));
    let empty = std::env::temp_dir().join(format!("pktkit-port-empty-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&empty);
    let out = port_check(&empty, false);
    let _ = std::fs::remove_dir_all(&empty);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no .c files"));
}
