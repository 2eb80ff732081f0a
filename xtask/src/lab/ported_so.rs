//! Ported NetBSD drivers as loadable shared objects in the guest.
//!
//! The lab builds each driver of [`LOADABLE`] a second time, from the same
//! C file, as a separate object (`-DPKTKIT_SHARED_OBJECT` turns on its
//! `PKTKIT_PORTED_DRIVER` entry), puts it in the guest's `/lib/pktkit/`,
//! and the suite repeats the built-in driver's run with the object as the
//! device under test (`-d /lib/pktkit/rtk.so,pci=BDF`), reported as
//! `<model>-so`. The object resolves compat-bsd's KPI against the symbols
//! the guest's pktkit exports, which is why that pktkit is dynamically
//! linked (see [`super::libs`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::suite::Run;
use crate::render;

/// A ported driver the lab also builds as a shared object.
#[derive(Debug)]
pub struct Loadable {
    /// The driver's name (its `CFATTACH_DECL_NEW` name).
    pub name: &'static str,
    /// Its C sources, relative to the workspace root.
    pub sources: &'static [&'static str],
    /// The object's path in the guest: `/lib/pktkit/<name>.so`.
    pub guest: &'static str,
    /// The NIC model whose suite run is repeated with the object.
    pub model: &'static str,
}

/// The objects the lab builds: rtk, whose built-in twin runs on every
/// default NIC set, so the object's run costs one more DUT (~15 s).
pub const LOADABLE: &[Loadable] = &[Loadable {
    name: "rtk",
    sources: &["ported/rtk/if_rtk.c"],
    guest: "/lib/pktkit/rtk.so",
    model: "rtl8139",
}];

/// The compiler command for one object: the workspace's compat-bsd and
/// native headers, as the driver crates' build scripts use them.
fn cc_command(root: &Path, l: &Loadable, out: &Path) -> Command {
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let mut c = Command::new(cc);
    c.args([
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        "-Wno-unused-parameter",
        "-D_KERNEL",
        "-DPKTKIT_SHARED_OBJECT",
    ])
    .arg("-I")
    .arg(root.join("compat-bsd/include"))
    .arg("-I")
    .arg(root.join("native/include"));
    for s in l.sources {
        c.arg(root.join(s));
    }
    c.arg("-o").arg(out);
    c
}

/// Builds every object of [`LOADABLE`] from the workspace at `root` into
/// `<dir>/build/ported-so/` and copies it to its guest path under the
/// staging tree `stage`; returns the built files (for [`super::libs`]).
pub fn build_and_stage(dir: &Path, root: &Path, stage: &Path) -> Result<Vec<PathBuf>, String> {
    let out_dir = dir.join("build/ported-so");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let mut built = Vec::new();
    for l in LOADABLE {
        let out = out_dir.join(format!("{}.so", l.name));
        let mut cmd = cc_command(root, l, &out);
        eprintln!("lab: {}", render(&cmd));
        let st = cmd.status().map_err(|e| format!("{}: {e}", render(&cmd)))?;
        if !st.success() {
            return Err(format!("{} failed ({st})", render(&cmd)));
        }
        let to = stage.join(l.guest.trim_start_matches('/'));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(&out, &to).map_err(|e| format!("{}: {e}", out.display()))?;
        built.push(out);
    }
    Ok(built)
}

/// One more run for each object whose model has a run in `runs`: the same
/// NIC, peer, MAC and link handling, with the object as the driver.
pub fn runs(runs: &[Run]) -> Vec<Run> {
    let mut more = Vec::new();
    for l in LOADABLE {
        let Some(r) = runs.iter().find(|r| r.label == l.model) else {
            continue;
        };
        let Some(bus) = r.dut.strip_prefix(l.name) else {
            continue;
        };
        more.push(Run {
            label: format!("{}-so", l.model),
            driver: l.guest,
            dut: format!("{}{bus}", l.guest),
            peer: r.peer.clone(),
            mac: r.mac.clone(),
            link: r.link,
        });
    }
    more
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_live_in_lib_pktkit_under_their_name() {
        for l in LOADABLE {
            assert_eq!(l.guest, format!("/lib/pktkit/{}.so", l.name));
            for s in l.sources {
                assert!(crate::root().join(s).is_file(), "{s}");
            }
        }
    }

    #[test]
    fn the_rtk_run_is_repeated_with_the_object() {
        let nics = super::super::parse_nics("e1000,rtl8139").unwrap();
        let (runs, _) = super::super::suite::plan(&nics);
        let so = runs
            .iter()
            .find(|r| r.label == "rtl8139-so")
            .expect("rtl8139-so run");
        let builtin = runs.iter().find(|r| r.label == "rtl8139").unwrap();
        assert_eq!(so.dut, "/lib/pktkit/rtk.so,pci=0000:00:03.0");
        assert_eq!(so.driver, "/lib/pktkit/rtk.so");
        assert_eq!(so.peer, builtin.peer);
        assert_eq!(so.mac, builtin.mac);
        assert!(so.link);
        let s = super::super::suite::script(&runs, "");
        assert!(s.contains("if [ -f /lib/pktkit/rtk.so ]; then"), "{s}");
        assert!(
            s.contains("pktkit harness test -d /lib/pktkit/rtk.so,pci=0000:00:03.0 --peer e1000,pci=0000:00:02.0"),
            "{s}"
        );

        // No rtl8139 in the set: no object run.
        let nics = super::super::parse_nics("e1000,e1000").unwrap();
        let (runs, _) = super::super::suite::plan(&nics);
        assert!(runs.iter().all(|r| !r.label.ends_with("-so")));
    }

    #[test]
    fn the_compiler_gets_the_entry_define_and_both_include_dirs() {
        let c = cc_command(Path::new("/ws"), &LOADABLE[0], Path::new("/o/rtk.so"));
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for want in [
            "-shared",
            "-fPIC",
            "-DPKTKIT_SHARED_OBJECT",
            "/ws/compat-bsd/include",
            "/ws/native/include",
            "/ws/ported/rtk/if_rtk.c",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        assert_eq!(args[args.len() - 2..], ["-o", "/o/rtk.so"]);
    }
}
