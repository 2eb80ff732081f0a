//! `cargo xtask lab --template`: the native driver template's first lab test.
//!
//! The lab copies the workspace (the files git tracks or would track) into
//! `<target>/lab/template-ws`, runs `pktkit new native labnic --vendor 0x8086
//! --device 0x100e` there (the crate is made under native/drivers/labnic and
//! registered in the copy's workspace, kit/Cargo.toml and registry), builds
//! the copy's pktkit for the guest and boots it with two e1000 NICs. In the
//! guest, `labnic` must be listed by `pktkit drivers`, attach to the first
//! e1000 through VFIO (its vendor:device checked, bus mastering on, BAR0
//! mapped), and pass the suite's `attach_detach` and `mac` checks with the
//! e1000 driver on the second NIC as its peer. The generated driver has no
//! rings yet, so the traffic checks are left to the developer who fills it
//! in.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{nic_bdf, run_quiet};
use crate::root;

/// The driver the test generates.
pub const NAME: &str = "labnic";

/// Copies the workspace's files (tracked, or untracked and not ignored)
/// into `dst`, fresh.
fn copy_workspace(dst: &Path) -> Result<(), String> {
    let _ = fs::remove_dir_all(dst);
    fs::create_dir_all(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    let src = root();
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&src)
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !out.status.success() {
        return Err("git ls-files failed: --template needs a git checkout".into());
    }
    for rel in out.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).map_err(|e| e.to_string())?);
        let from = src.join(rel);
        if !from.is_file() {
            continue; // deleted in the work tree
        }
        let to = dst.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::copy(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    Ok(())
}

/// Makes the copy with the generated driver; returns its root. `pktkit` is
/// a pktkit binary that runs on this host (the lab's guest build).
pub fn prepare(dir: &Path, pktkit: &Path) -> Result<PathBuf, String> {
    let ws = dir.join("template-ws");
    copy_workspace(&ws)?;
    let mut new = Command::new(pktkit);
    new.args([
        "new", "native", NAME, "--vendor", "0x8086", "--device", "0x100e",
    ])
    .current_dir(&ws);
    eprintln!("lab: in {}:", ws.display());
    run_quiet(&mut new)?;
    Ok(ws)
}

/// The guest command.
pub fn script() -> String {
    let (dut, peer) = (nic_bdf(0), nic_bdf(1));
    let mac = super::suite::nic_mac(0);
    format!(
        "pktkit drivers | grep '^{NAME} ' || {{ echo '{NAME} is not registered'; exit 1; }}\n\
         pktkit harness test -d {NAME},pci={dut},mac={mac} --peer e1000,pci={peer} --mac {mac} \
         --checks attach_detach,mac\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_command_names_the_generated_driver() {
        let s = script();
        assert!(s.contains("grep '^labnic '"), "{s}");
        assert!(
            s.contains(
                "-d labnic,pci=0000:00:02.0,mac=52:54:00:12:34:01 --peer e1000,pci=0000:00:03.0"
            ),
            "{s}"
        );
    }
}
