//! `pktkit new native` makes a crate that builds and whose first tests pass.

use std::process::Command;

#[test]
fn new_native_driver_builds_and_passes_its_tests() {
    let base = std::env::temp_dir().join(format!("pktkit-newdrv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("acme");
    let out = Command::new(env!("CARGO_BIN_EXE_pktkit"))
        .args(["new", "native", "acme", "--prefix", "ac", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second time is refused, nothing overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_pktkit"))
        .args(["new", "native", "acme", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));

    // Build and test the generated crate; its artifacts live beside ours so
    // later runs reuse them.
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/new-template");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = Command::new(cargo)
        .args(["test", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&base);
    assert!(
        test.status.success(),
        "generated crate failed:\n{}\n{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}
