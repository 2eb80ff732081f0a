//! `cargo xtask lab --suite`: the conformance suite in the guest.
//!
//! For every NIC model in the set that has a native driver, the guest runs
//! `pktkit harness test` with the first NIC of that model as the device
//! under test and another NIC of the same model (else one the same driver
//! handles) as its peer, with `--mac` set to the MAC the lab gave the DUT.
//! A `pair` run comes first as a software baseline: it proves the suite
//! and the report transport whatever drivers exist. A driver missing from
//! the guest's registry (`pktkit drivers`) is skipped with a line saying so.
//!
//! Reports leave the guest as files: the command writes them to
//! `/tmp/lab-out`, and `/init` prints each file base64-encoded between
//! `@@LAB file begin NAME` and `@@LAB file end` (see [`files`]).

use std::fmt::Write as _;
use std::path::Path;

use super::{nic_bdf, Model};

/// Marker lines around a file the guest sends back.
pub const MARK_FILE_BEGIN: &str = "@@LAB file begin ";
/// End of a file.
pub const MARK_FILE_END: &str = "@@LAB file end";
/// A suite the guest skipped: `@@LAB suite skip LABEL REASON`.
const MARK_SUITE_SKIP: &str = "@@LAB suite skip ";
/// A suite's exit status: `@@LAB suite exit LABEL STATUS`.
const MARK_SUITE_EXIT: &str = "@@LAB suite exit ";
/// Where the guest command leaves files for the host.
pub const GUEST_OUT: &str = "/tmp/lab-out";

/// One suite run: a DUT and its peer.
#[derive(Debug, PartialEq)]
pub struct Run {
    /// Report name: `pair`, or the DUT's model (`e1000`, `e1000e`, `virtio`).
    pub label: String,
    /// The driver that must be in the guest's registry.
    pub driver: &'static str,
    /// `-d` argument.
    pub dut: String,
    /// `--peer` argument.
    pub peer: String,
    /// `--mac`, the DUT's QEMU `mac=`.
    pub mac: Option<String>,
    /// Whether the suite gets `--link-cmd` (the QEMU model follows
    /// `set_link`; see [`no_link_model`]).
    pub link: bool,
}

/// The native driver for a NIC model, if there is one.
fn driver_for(model: &str) -> Option<&'static str> {
    match model {
        "e1000" | "e1000e" | "e1000-82545em" => Some("e1000"),
        "virtio" | "virtio-mq" => Some("virtio-net"),
        "ne2k_pci" => Some(LEGACY_NE2000),
        "rtl8139" => Some("rtk"),
        "i82559er" => Some("fxp"),
        "pcnet" => Some("pcn"),
        _ => None,
    }
}

/// Why QEMU's model of `model` shows no `set_link` change to its driver,
/// or `None` when it does (the suite then gets `--link-cmd`).
///
/// QEMU's eepro100 (i82557b/i82559/i82559er) registers no
/// `link_status_changed` callback and its PHY always reports link up (QEMU
/// 7.2 hw/net/eepro100.c): no driver, Linux's e100 included, can see the
/// carrier drop. QEMU's ne2000 (hw/net/ne2000.c) registers no
/// `link_status_changed` either and has no link state at all (the DP8390
/// has no link status register; the RTL8029's CONFIG registers read as
/// constants). `link_change` is skipped for these rather than failed.
fn no_link_model(model: &str) -> Option<&'static str> {
    match model {
        "i82559er" | "i82559" | "i82557b" => Some(
            "QEMU's eepro100 has no link model (no link_status_changed; its PHY always \
             reports link up): link_change is skipped",
        ),
        "ne2k_pci" => Some(
            "QEMU's ne2000 has no link model (no link_status_changed, and the DP8390 has \
             no link status to read): link_change is skipped",
        ),
        _ => None,
    }
}

/// Ported NetBSD drivers (compat-bsd): checked against a native peer.
const PORTED: &[&str] = &["rtk", "fxp", "pcn"];

/// The legacy-ABI NE2000 driver, as the lab installs it in the guest
/// (shim-legacy; `stage_legacy_drivers` in lab.rs).
const LEGACY_NE2000: &str = "legacy:/lib/pktkit/devn-ne2000.so";

/// The shell test for "this guest has driver `d`": a file for a loadable
/// object (`legacy:/path.so`, `/path.so`), else a line of `pktkit drivers`.
fn has_driver(d: &str) -> String {
    match d.strip_prefix("legacy:") {
        Some(path) => format!("[ -f {path} ]"),
        None if d.starts_with('/') => format!("[ -f {d} ]"),
        None => format!("pktkit drivers | grep -q '^{d} '"),
    }
}

/// The MAC the lab gives NIC `i` (see `qemu_command`).
pub fn nic_mac(i: usize) -> String {
    format!("52:54:00:12:34:{:02x}", i + 1)
}

/// The runs for a NIC set, and a note for every model left out.
pub fn plan(nics: &[&Model]) -> (Vec<Run>, Vec<String>) {
    let mut runs = vec![Run {
        label: "pair".into(),
        driver: "pair",
        dut: "pair".into(),
        peer: "pair".into(),
        mac: None,
        link: true,
    }];
    let mut notes = Vec::new();
    let mut done: Vec<&str> = Vec::new();
    for (i, m) in nics.iter().enumerate() {
        if done.contains(&m.name) {
            continue;
        }
        done.push(m.name);
        let Some(driver) = driver_for(m.name) else {
            notes.push(format!("{}: no native driver for this model", m.name));
            continue;
        };
        let same_model = (0..nics.len()).find(|&j| j != i && nics[j].name == m.name);
        let same_driver =
            || (0..nics.len()).find(|&j| j != i && driver_for(nics[j].name) == Some(driver));
        // A legacy or ported driver is checked against a native peer (an
        // e1000, wm).
        let native_peer = || {
            (driver.starts_with("legacy:") || PORTED.contains(&driver))
                .then(|| (0..nics.len()).find(|&j| driver_for(nics[j].name) == Some("e1000")))
                .flatten()
        };
        let Some(p) = native_peer().or(same_model).or_else(same_driver) else {
            notes.push(format!("{}: no second NIC for a peer", m.name));
            continue;
        };
        runs.push(Run {
            label: m.name.to_owned(),
            driver,
            dut: format!("{driver},pci={}", nic_bdf(i)),
            peer: format!(
                "{},pci={}",
                driver_for(nics[p].name).unwrap_or(driver),
                nic_bdf(p)
            ),
            mac: Some(nic_mac(i)),
            link: no_link_model(m.name).is_none(),
        });
        if let Some(why) = no_link_model(m.name) {
            notes.push(format!("{}: {why}", m.name));
        }
    }
    // Ported drivers loaded from a .so, on the NIC of their built-in twin.
    let loaded = super::ported_so::runs(&runs);
    runs.extend(loaded);
    (runs, notes)
}

/// The guest command: every run whose driver the guest has, then `after`
/// (more commands whose failure does not fail the suite).
pub fn script(runs: &[Run], after: &str) -> String {
    // Kernel messages (DMAR faults are logged at error level) stay in
    // /dev/kmsg, where the suite reads them, and off the console the host
    // parses.
    let mut s = format!("dmesg -n 1\nmkdir -p {GUEST_OUT}\nstatus=0\n");
    for r in runs {
        let mac = r
            .mac
            .as_ref()
            .map(|m| format!(" --mac {m}"))
            .unwrap_or_default();
        let _ = write!(
            s,
            "if {has}; then\n\
             \x20 echo '== conformance {label}: {dut} with peer {peer}'\n\
             \x20 pktkit harness test -d {dut} --peer {peer}{mac}{link_cmd} --json {GUEST_OUT}/conformance-{label}.json --junit {GUEST_OUT}/conformance-{label}.xml\n\
             \x20 rc=$?; echo \"{MARK_SUITE_EXIT}{label} $rc\"; [ $rc = 0 ] || status=1\n\
             else\n\
             \x20 echo '{MARK_SUITE_SKIP}{label} driver {driver} is not in this pktkit'\n\
             fi\n",
            has = has_driver(r.driver),
            driver = r.driver,
            label = r.label,
            link_cmd = if r.link {
                format!(" --link-cmd '{}'", super::LINK_CMD)
            } else {
                String::new()
            },
            dut = r.dut,
            peer = r.peer,
        );
    }
    s.push_str(after);
    s.push_str("exit $status\n");
    s
}

/// The `/init` lines that send every file in [`GUEST_OUT`] back.
pub fn send_files_script() -> String {
    format!(
        "for f in {GUEST_OUT}/*; do\n\
         \x20 [ -f \"$f\" ] || continue\n\
         \x20 echo \"{MARK_FILE_BEGIN}${{f##*/}}\"\n\
         \x20 base64 \"$f\"\n\
         \x20 echo '{MARK_FILE_END}'\n\
         done\n"
    )
}

/// The files the guest sent: `(name, contents)`. Lines that are not base64
/// (kernel messages that slipped in) are skipped; a file without its end
/// marker is dropped.
pub fn files(console: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in console.lines().map(str::trim_end) {
        if let Some(name) = line.strip_prefix(MARK_FILE_BEGIN) {
            cur = Some((name.trim().to_owned(), String::new()));
        } else if line == MARK_FILE_END {
            if let Some((name, b64)) = cur.take() {
                if let Some(data) = base64_decode(&b64) {
                    out.push((name, data));
                }
            }
        } else if let Some((_, b64)) = cur.as_mut() {
            if !line.is_empty() && line.bytes().all(|b| b64_value(b).is_some() || b == b'=') {
                b64.push_str(line);
            }
        }
    }
    out
}

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes standard base64 (RFC 4648, with padding).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for b in s.bytes() {
        acc = (acc << 6) | b64_value(b)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// What the guest said about each run.
#[derive(Debug, Default, PartialEq)]
pub struct Outcomes {
    /// `(label, reason)` of runs skipped.
    pub skipped: Vec<(String, String)>,
    /// `(label, exit status)` of runs that ran.
    pub exits: Vec<(String, i32)>,
}

/// Reads the suite marker lines.
pub fn outcomes(console: &str) -> Outcomes {
    let mut o = Outcomes::default();
    for line in console.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix(MARK_SUITE_SKIP) {
            let (label, why) = rest.split_once(' ').unwrap_or((rest, ""));
            o.skipped.push((label.to_owned(), why.to_owned()));
        } else if let Some(rest) = line.strip_prefix(MARK_SUITE_EXIT) {
            if let Some((label, rc)) = rest.split_once(' ') {
                o.exits
                    .push((label.to_owned(), rc.trim().parse().unwrap_or(-1)));
            }
        }
    }
    o
}

/// Writes the reports the guest sent into `dir`, prints one table of every
/// check per driver, and says whether every run that ran passed and reached
/// its I/O-port BARs the way asked ([`pio_problem`]; `vfio_pio`: the guest
/// had `PKTKIT_PIO=vfio`).
pub fn report(
    dir: &Path,
    console: &str,
    runs: &[Run],
    notes: &[String],
    vfio_pio: bool,
) -> Result<(), String> {
    for (name, data) in files(console) {
        let safe = !name.contains('/') && !name.starts_with('.') && !name.is_empty();
        if safe {
            std::fs::write(dir.join(&name), data).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    let o = outcomes(console);
    let mut problems = Vec::new();
    println!("{:<8} {:<16} {:<6} evidence", "suite", "check", "result");
    for r in runs {
        if let Some((_, why)) = o.skipped.iter().find(|(l, _)| *l == r.label) {
            println!("{:<8} {:<16} {:<6} {why}", r.label, "-", "SKIP");
            continue;
        }
        let path = dir.join(format!("conformance-{}.json", r.label));
        let json = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let Some(json) = json else {
            println!(
                "{:<8} {:<16} {:<6} no report came back",
                r.label, "-", "FAIL"
            );
            problems.push(format!("{}: no report", r.label));
            continue;
        };
        for c in json["checks"].as_array().into_iter().flatten() {
            let result = c["result"].as_str().unwrap_or("?");
            let name = c["name"].as_str().unwrap_or("?");
            // The suite only knows it got no link command; say why.
            let mut ev = match no_link_model(&r.label) {
                Some(why) if name == "link_change" && result == "skip" => why.to_owned(),
                _ => c["evidence"].as_str().unwrap_or("").to_owned(),
            };
            if ev.len() > 150 {
                let cut = (0..=150)
                    .rev()
                    .find(|&i| ev.is_char_boundary(i))
                    .unwrap_or(0);
                ev.truncate(cut);
                ev.push_str("...");
            }
            println!(
                "{:<8} {:<16} {:<6} {ev}",
                r.label,
                name,
                result.to_uppercase()
            );
            if result == "fail" {
                problems.push(format!("{}: {} failed", r.label, c["name"]));
            }
        }
        // How the DUT's registers were reached (direct port I/O or VFIO).
        for (k, v) in json["dut_facts"].as_object().into_iter().flatten() {
            if !k.starts_with("port I/O") {
                continue;
            }
            let v = v.as_str().unwrap_or("?");
            println!("{:<8} {:<16} {:<6} {k}: {v}", r.label, "access", "-");
            if let Some(p) = pio_problem(v, vfio_pio) {
                problems.push(format!("{}: {k}: {p}", r.label));
            }
        }
        if let Some((_, rc)) = o.exits.iter().find(|(l, _)| *l == r.label) {
            if *rc != 0 && json["passed"] == true {
                problems.push(format!("{}: pktkit harness test exited {rc}", r.label));
            }
        }
    }
    for n in notes {
        println!("suite: {n}");
    }
    println!("reports: {}/conformance-*.{{json,xml}}", dir.display());
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// What is wrong with an I/O BAR reached as `how` (a `port I/O` fact):
/// with `PKTKIT_PIO=vfio` nothing may go direct; without it, the guest
/// (root, a kernel with ioperm) must be granted every BAR's ports, so a
/// refusal is a regression, not a fallback.
fn pio_problem(how: &str, vfio_pio: bool) -> Option<&'static str> {
    if vfio_pio && how.starts_with("direct") {
        Some("went direct with PKTKIT_PIO=vfio")
    } else if !vfio_pio && how.contains("ioperm") {
        Some("ioperm refused in the lab's guest (root, a kernel with ioperm)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_io_must_go_the_way_asked() {
        assert_eq!(pio_problem("direct 0xc000-0xc0ff", false), None);
        assert_eq!(
            pio_problem("VFIO (ports 0xc000-0xc0ff; PKTKIT_PIO=vfio)", true),
            None
        );
        assert!(pio_problem("direct 0xc000-0xc0ff", true).is_some());
        assert!(pio_problem("VFIO (ports 0xc000-0xc0ff; no ioperm permission)", false).is_some());
        assert!(pio_problem(
            "ioperm refused on a thread: its accesses went through VFIO",
            false
        )
        .is_some());
    }

    #[test]
    fn plan_pairs_each_model_with_a_peer() {
        let nics = super::super::parse_nics("e1000,e1000,e1000e,virtio,virtio,tulip").unwrap();
        let (runs, notes) = plan(&nics);
        let got: Vec<(&str, &str, &str)> = runs
            .iter()
            .map(|r| (r.label.as_str(), r.dut.as_str(), r.peer.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("pair", "pair", "pair"),
                ("e1000", "e1000,pci=0000:00:02.0", "e1000,pci=0000:00:03.0"),
                ("e1000e", "e1000,pci=0000:00:04.0", "e1000,pci=0000:00:02.0"),
                (
                    "virtio",
                    "virtio-net,pci=0000:00:05.0",
                    "virtio-net,pci=0000:00:06.0"
                ),
            ]
        );
        assert_eq!(runs[2].mac.as_deref(), Some("52:54:00:12:34:03"));
        assert_eq!(
            notes,
            vec!["tulip: no native driver for this model".to_owned()]
        );
        let s = script(&runs, "");
        assert!(s.contains("grep -q '^virtio-net '"), "{s}");
        assert!(s.contains(
            "--mac 52:54:00:12:34:01 --link-cmd 'echo @@LAB link {pci} {state} > /dev/console' --json /tmp/lab-out/conformance-e1000.json"
        ));
    }

    #[test]
    fn plan_checks_the_legacy_ne2000_against_an_e1000() {
        let nics = super::super::parse_nics("ne2k_pci,e1000").unwrap();
        let (runs, notes) = plan(&nics);
        assert!(
            notes.iter().all(|n| !n.starts_with("ne2k_pci: no")),
            "{notes:?}"
        );
        let r = runs
            .iter()
            .find(|r| r.label == "ne2k_pci")
            .expect("ne2k_pci run");
        assert_eq!(r.dut, "legacy:/lib/pktkit/devn-ne2000.so,pci=0000:00:02.0");
        assert_eq!(r.peer, "e1000,pci=0000:00:03.0");
        // No link model in QEMU's ne2000: no link command, and a note why.
        assert!(!r.link);
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("ne2k_pci: QEMU's ne2000 has no link model")),
            "{notes:?}"
        );
        let s = script(&runs, "");
        assert!(
            s.contains("if [ -f /lib/pktkit/devn-ne2000.so ]; then"),
            "{s}"
        );
    }

    #[test]
    fn plan_checks_the_ported_rtk_against_an_e1000() {
        let nics = super::super::parse_nics("e1000,rtl8139").unwrap();
        let (runs, notes) = plan(&nics);
        assert!(notes.iter().all(|n| !n.starts_with("rtl8139")), "{notes:?}");
        let r = runs
            .iter()
            .find(|r| r.label == "rtl8139")
            .expect("rtl8139 run");
        assert_eq!(r.dut, "rtk,pci=0000:00:03.0");
        assert_eq!(r.peer, "e1000,pci=0000:00:02.0");
        assert_eq!(r.mac.as_deref(), Some("52:54:00:12:34:02"));
    }

    #[test]
    fn plan_checks_the_ported_fxp_without_a_link_command() {
        let nics = super::super::parse_nics("e1000,i82559er").unwrap();
        let (runs, notes) = plan(&nics);
        let r = runs
            .iter()
            .find(|r| r.label == "i82559er")
            .expect("i82559er run");
        assert_eq!(r.dut, "fxp,pci=0000:00:03.0");
        assert_eq!(r.peer, "e1000,pci=0000:00:02.0");
        assert!(!r.link);
        assert!(notes
            .iter()
            .any(|n| n.starts_with("i82559er: QEMU's eepro100 has no link model")));
        let s = script(&runs, "");
        let line = s
            .lines()
            .find(|l| l.contains("-d fxp,"))
            .expect("fxp command");
        assert!(!line.contains("--link-cmd"), "{line}");
        assert!(line.contains("--mac 52:54:00:12:34:02 --json"), "{line}");
    }

    #[test]
    fn files_come_back_through_base64() {
        let console = "\
@@LAB file begin conformance-pair.json\n\
eyJhIjogMX0K\n\
[   12.3] DMAR: something\n\
@@LAB file end\n\
@@LAB file begin cut.json\n\
eyJhIjog\n";
        let f = files(console);
        assert_eq!(
            f,
            vec![("conformance-pair.json".into(), b"{\"a\": 1}\n".to_vec())]
        );
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert!(base64_decode("T*==").is_none());
    }

    #[test]
    fn suite_markers() {
        let o = outcomes("@@LAB suite skip virtio driver virtio-net is not in this pktkit\n@@LAB suite exit e1000 1\n");
        assert_eq!(o.skipped[0].0, "virtio");
        assert_eq!(o.exits, vec![("e1000".to_owned(), 1)]);
    }
}
