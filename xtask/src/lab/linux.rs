//! The Linux kernel's own drivers beside ours, in the same guest.
//!
//! After the conformance suite (`--suite`), every NIC model that has a native
//! run and a Linux driver in the guest kernel is measured again with that
//! driver: the DUT's function is handed from vfio-pci to the kernel driver,
//! and `pktkit harness test -d afpacket,ifname=IF --checks link_up,fps` moves
//! the same frames (60 bytes, bursts of 32, two seconds, DUT to the same
//! peer, counted by the peer) through AF_PACKET and the kernel driver. The
//! function goes back to vfio-pci afterwards. The host prints frames per
//! second of both and their ratio, and writes `linux-compare.json`.
//!
//! The kernel package ships no modules.dep, so each driver's modules and
//! their dependencies (read from the `depends=` entry of each module's
//! `.modinfo`) are staged in load order with a `<driver>.load` list.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::suite::{Run, GUEST_OUT};
use super::{find_module, module_builtin, stage_module};

/// The marker a comparison run ends with: `@@LAB linux LABEL IF STATUS`.
const MARK_LINUX: &str = "@@LAB linux ";

/// The Linux modules that drive a NIC model, the PCI driver first when the
/// network driver is another module (virtio: virtio_pci binds, virtio_net
/// makes the interface).
pub fn modules_for(model: &str) -> &'static [&'static str] {
    match model {
        "e1000" | "e1000-82545em" => &["e1000"],
        "e1000e" => &["e1000e"],
        "virtio" | "virtio-mq" => &["virtio_pci", "virtio_net"],
        // QEMU's rtl8139 is revision 0x20, an RTL8139C+: 8139too hands
        // those to 8139cp and does not attach.
        "rtl8139" => &["8139cp"],
        "i82559er" => &["e100"],
        "pcnet" => &["pcnet32"],
        "ne2k_pci" => &["ne2k-pci"],
        _ => &[],
    }
}

/// The `depends=` entry of a module's `.modinfo` (comma-separated names).
fn module_depends(bytes: &[u8]) -> Vec<String> {
    let key = b"depends=";
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let rest = &bytes[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Stages the modules of every model in `models` that the kernel has, with
/// their dependencies, into `stage/lib/modules`, and writes
/// `<model>.load` there (module names in load order). Returns notes for
/// models left out.
pub fn stage(modules: &Path, stage: &Path, models: &[&str]) -> Result<Vec<String>, String> {
    let dir = stage.join("lib/modules");
    let mut notes = Vec::new();
    for model in models {
        let wanted = modules_for(model);
        if wanted.is_empty() {
            continue;
        }
        let mut order: Vec<String> = Vec::new();
        let mut missing = None;
        for m in wanted {
            if let Err(e) = add_with_deps(modules, &dir, m, &mut order, 0) {
                missing = Some(e);
                break;
            }
        }
        match missing {
            Some(e) => notes.push(format!("linux driver for {model}: {e}")),
            None => {
                let list = dir.join(format!("{model}.load"));
                fs::write(&list, order.join("\n") + "\n")
                    .map_err(|e| format!("{}: {e}", list.display()))?;
            }
        }
    }
    Ok(notes)
}

/// Adds `name` after its dependencies to `order`, staging each file once.
fn add_with_deps(
    modules: &Path,
    dir: &Path,
    name: &str,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<(), String> {
    let name = name.replace('-', "_");
    if order.contains(&name) || depth > 16 {
        return Ok(());
    }
    let Some(src) = find_module(modules, &name) else {
        if module_builtin(modules, &name) {
            return Ok(());
        }
        return Err(format!("module {name} not in this kernel"));
    };
    let dst = dir.join(format!("{name}.ko"));
    if !dst.exists() {
        stage_module(&src, &dst)?;
    }
    let bytes = fs::read(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    for dep in module_depends(&bytes) {
        add_with_deps(modules, dir, &dep, order, depth + 1)?;
    }
    order.push(name);
    Ok(())
}

/// The BDF in a `driver,pci=BDF` spec.
fn spec_bdf(spec: &str) -> Option<&str> {
    spec.split(',').find_map(|o| o.strip_prefix("pci="))
}

/// The guest commands that measure each run's model with its Linux driver.
pub fn script(runs: &[Run]) -> String {
    let mut s = String::new();
    for r in runs {
        if modules_for(&r.label).is_empty() {
            continue;
        }
        let Some(bdf) = spec_bdf(&r.dut) else {
            continue;
        };
        let _ = write!(
            s,
            "if [ -f /lib/modules/{label}.load ]; then\n\
             \x20 echo '== linux {label}: the kernel driver on {bdf}, peer {peer}'\n\
             \x20 for m in $(cat /lib/modules/{label}.load); do insmod /lib/modules/$m.ko 2>/dev/null; done\n\
             \x20 d=/sys/bus/pci/devices/{bdf}\n\
             \x20 echo > $d/driver_override; echo {bdf} > $d/driver/unbind; echo {bdf} > /sys/bus/pci/drivers_probe\n\
             \x20 ifn=''; for i in $(seq 1 100); do for n in $d/net/* $d/virtio*/net/*; do [ -e \"$n\" ] && ifn=${{n##*/}}; done; [ -n \"$ifn\" ] && break; sleep 0.1; done\n\
             \x20 if [ -n \"$ifn\" ]; then\n\
             \x20   ip link set \"$ifn\" up\n\
             \x20   pktkit harness test -d afpacket,ifname=$ifn --peer {peer} --checks link_up,fps --json {GUEST_OUT}/linux-{label}.json\n\
             \x20   echo \"{MARK_LINUX}{label} $ifn $?\"\n\
             \x20 else\n\
             \x20   echo \"{MARK_LINUX}{label} none 1\"\n\
             \x20 fi\n\
             \x20 [ -e $d/driver ] && echo {bdf} > $d/driver/unbind\n\
             \x20 echo vfio-pci > $d/driver_override; echo {bdf} > /sys/bus/pci/drivers_probe\n\
             fi\n",
            label = r.label,
            peer = r.peer,
        );
    }
    s
}

/// Frames per second from a report's `fps` check evidence
/// (`...: N fps received (...)`).
fn fps_of(report: &serde_json::Value) -> Option<f64> {
    let c = report["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "fps" && c["result"] == "pass")?;
    let ev = c["evidence"].as_str()?;
    let head = ev.split(" fps received").next()?;
    head.rsplit(' ').next()?.parse().ok()
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// Prints native and Linux frames per second per model and their ratio;
/// writes `linux-compare.json` into `dir`. A missing figure is shown as
/// such: it is a measurement, not a check.
pub fn report(dir: &Path, console: &str, runs: &[Run]) {
    let mut rows = Vec::new();
    for r in runs.iter().filter(|r| !modules_for(&r.label).is_empty()) {
        let status = console.lines().find_map(|l| {
            l.trim_end()
                .strip_prefix(MARK_LINUX)
                .and_then(|rest| rest.strip_prefix(&format!("{} ", r.label)))
                .map(str::to_owned)
        });
        let native = read_json(&dir.join(format!("conformance-{}.json", r.label)))
            .as_ref()
            .and_then(fps_of);
        let linux = read_json(&dir.join(format!("linux-{}.json", r.label)))
            .as_ref()
            .and_then(fps_of);
        rows.push((r, status, native, linux));
    }
    if rows.is_empty() {
        return;
    }
    println!(
        "{:<9} {:<12} {:>12} {:<22} {:>12} {:>7}",
        "model", "pktkit", "fps", "linux (AF_PACKET)", "fps", "ratio"
    );
    let mut json = Vec::new();
    for (r, status, native, linux) in rows {
        let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let ratio = match (native, linux) {
            (Some(n), Some(l)) if l > 0.0 => Some(n / l),
            _ => None,
        };
        let linux_name = match status.as_deref().map(|s| s.split(' ').collect::<Vec<_>>()) {
            Some(v) if v.len() == 2 && v[0] != "none" => {
                format!("{} ({})", modules_for(&r.label).join("+"), v[0])
            }
            Some(_) => "did not attach".to_owned(),
            None => "not run".to_owned(),
        };
        println!(
            "{:<9} {:<12} {:>12} {:<22} {:>12} {:>7}",
            r.label,
            r.driver,
            fmt(native),
            linux_name,
            fmt(linux),
            ratio.map_or("-".to_owned(), |x| format!("{x:.2}x"))
        );
        json.push(serde_json::json!({
            "model": r.label,
            "pktkit_driver": r.driver,
            "pktkit_fps": native,
            "linux_driver": modules_for(&r.label).join("+"),
            "linux_fps": linux,
            "ratio": ratio,
        }));
    }
    let path = dir.join("linux-compare.json");
    let _ = fs::write(
        &path,
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    );
    println!("comparison: {}", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_depends() {
        let blob = b"\0license=GPL\0depends=ptp,pps_core\0retpoline=Y\0";
        assert_eq!(module_depends(blob), ["ptp", "pps_core"]);
        assert!(module_depends(b"\0depends=\0").is_empty());
        assert!(module_depends(b"nothing here").is_empty());
    }

    #[test]
    fn fps_from_evidence() {
        let r = serde_json::json!({"checks": [
            {"name": "fps", "result": "pass",
             "evidence": "DUT->peer 60-byte frames, burst 32, 2.00 s: sent 324288, received 324288: 161967 fps received (161967 fps sent)"}
        ]});
        assert_eq!(fps_of(&r), Some(161967.0));
        let failed =
            serde_json::json!({"checks": [{"name": "fps", "result": "fail", "evidence": "x"}]});
        assert_eq!(fps_of(&failed), None);
    }

    #[test]
    fn script_rebinds_and_returns_the_function() {
        let runs = [Run {
            label: "e1000".into(),
            driver: "e1000",
            dut: "e1000,pci=0000:00:02.0".into(),
            peer: "e1000,pci=0000:00:03.0".into(),
            mac: None,
            link: true,
        }];
        let s = script(&runs);
        assert!(
            s.contains(
                "-d afpacket,ifname=$ifn --peer e1000,pci=0000:00:03.0 --checks link_up,fps"
            ),
            "{s}"
        );
        assert!(s.contains("echo vfio-pci > $d/driver_override"), "{s}");
        assert!(s.contains("/lib/modules/e1000.load"), "{s}");
    }
}
