//! `cargo xtask lab`: boots a QEMU guest whose emulated NICs sit behind an
//! emulated IOMMU, binds them to vfio-pci, runs a command in the guest and
//! reports.
//!
//! The steps, each cached where it can be:
//! 1. install QEMU, busybox and cpio with apt-get when they are missing;
//! 2. fetch the Debian cloud kernel that `linux-image-cloud-amd64` currently
//!    depends on (`apt-get download`, `dpkg -x`) into `<target>/lab/cache/`;
//! 3. build pktkit (and any `--example` of pktkit-harness), linked
//!    dynamically so that pktkit exports compat-bsd's KPI to ported `.so`
//!    drivers, and rtk as such a `.so` ([`ported_so`]);
//! 4. pack an initramfs: busybox, the vfio modules, the binaries, the
//!    shared libraries they need ([`libs`]) and an
//!    `/init` that binds every network controller to vfio-pci, prints an
//!    inventory, runs the command and powers off;
//! 5. boot QEMU (TCG: KVM does not work on these machines) with
//!    `intel-iommu` and the NIC set on one hub, read the serial console,
//!    and write `console.log` and `inventory.json` to `<target>/lab/`.
//!
//! The guest talks to us only through marker lines on the serial console
//! (see [`Report::parse`]). Facts this relies on are in
//! `shared/design/lab.md`; how to use it is in `docs/lab.md`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{cargo, render, root};

mod cross;
mod libs;
mod linux;
mod ported_so;
mod suite;
mod template;

/// The NIC set when `--nics` is not given: what the drivers and the
/// conformance suite need (two e1000 to talk to each other, an e1000e, an
/// 82545EM, two virtio-net, and one NIC for each ported NetBSD driver:
/// rtl8139 (rtk), i82559er (fxp), pcnet (pcn), checked against an e1000).
const DEFAULT_NICS: &str =
    "e1000,e1000,e1000e,e1000-82545em,virtio,virtio,rtl8139,i82559er,pcnet,ne2k_pci";

/// The guest command when `--cmd` is not given: a smoke check.
const DEFAULT_CMD: &str = "pktkit drivers && ls -l /dev/vfio";

/// Debian packages the lab needs on the host.
const HOST_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static", "cpio"];

/// The vfio modules, in load order (no modules.dep ships with the kernel
/// package, so they are loaded by path, dependencies first). Some may be
/// built in, and vfio_virqfd is folded into vfio in newer kernels.
const VFIO_MODULES: &[&str] = &[
    "irqbypass",
    "vfio",
    "vfio_virqfd",
    "vfio-pci-core",
    "vfio-pci",
    "vfio_iommu_type1",
];

/// Marker lines the guest prints on the console.
const MARK_INV_BEGIN: &str = "@@LAB inventory begin";
const MARK_INV_END: &str = "@@LAB inventory end";
const MARK_NIC: &str = "@@LAB nic ";
const MARK_CMD_BEGIN: &str = "@@LAB command begin";
const MARK_CMD_EXIT: &str = "@@LAB command exit ";
const MARK_NOTE: &str = "@@LAB note ";
/// A guest's request to change a NIC's link: `@@LAB link BDF up|down`. The
/// host does it with `set_link` on QEMU's monitor, as pulling and plugging
/// the cable would.
const MARK_LINK: &str = "@@LAB link ";
/// The `--link-cmd` the suite runs in the guest (`{pci}` and `{state}` are
/// filled in by `pktkit harness test`).
pub const LINK_CMD: &str = "echo @@LAB link {pci} {state} > /dev/console";

/// One emulated NIC model the lab can put in the guest.
#[derive(Debug)]
struct Model {
    /// Name on our command line.
    name: &'static str,
    /// QEMU `-device` driver and any fixed properties.
    qemu: &'static str,
    /// PCI vendor:device it shows, to check the inventory against.
    id: &'static str,
}

const MODELS: &[Model] = &[
    Model {
        name: "e1000",
        qemu: "e1000",
        id: "8086:100e",
    },
    Model {
        name: "e1000e",
        qemu: "e1000e",
        id: "8086:10d3",
    },
    Model {
        name: "e1000-82545em",
        qemu: "e1000-82545em",
        id: "8086:100f",
    },
    // iommu_platform=on: without it QEMU's virtio devices bypass the
    // (emulated) IOMMU and take VFIO's IOVAs for guest-physical addresses,
    // so no DMA reaches the driver's rings (measured: a control command
    // never completes). With it the device offers VIRTIO_F_ACCESS_PLATFORM.
    Model {
        name: "virtio",
        qemu: "virtio-net-pci,disable-legacy=on,iommu_platform=on",
        id: "1af4:1041",
    },
    // The same with VIRTIO_NET_F_MQ offered (one MSI-X vector per queue plus
    // config and control). A hub port has one queue, so the device offers
    // one queue pair: this exercises MQ negotiation and VQ_PAIRS_SET.
    Model {
        name: "virtio-mq",
        qemu: "virtio-net-pci,disable-legacy=on,iommu_platform=on,mq=on,vectors=8",
        id: "1af4:1041",
    },
    Model {
        name: "rtl8139",
        qemu: "rtl8139",
        id: "10ec:8139",
    },
    Model {
        name: "pcnet",
        qemu: "pcnet",
        id: "1022:2000",
    },
    Model {
        name: "i82559er",
        qemu: "i82559er",
        id: "8086:1209",
    },
    Model {
        name: "ne2k_pci",
        qemu: "ne2k_pci",
        id: "10ec:8029",
    },
    Model {
        name: "vmxnet3",
        qemu: "vmxnet3",
        id: "15ad:07b0",
    },
    Model {
        name: "tulip",
        qemu: "tulip",
        id: "1011:0019",
    },
];

/// First PCI slot given to a NIC; slots are fixed so each BDF names a
/// model (q35 with -nodefaults keeps 00.0 and 1f.x for itself).
const FIRST_SLOT: usize = 2;
/// Last usable slot (0x1f is the ICH9 LPC/SATA/SMBus).
const LAST_SLOT: usize = 0x1e;

struct Options {
    nics: Vec<&'static Model>,
    cmd: String,
    keep: bool,
    verbose: bool,
    bins: Vec<PathBuf>,
    examples: Vec<String>,
    timeout: Duration,
    memory: String,
    /// `--suite`: run the conformance suite (the command is generated).
    suite: bool,
    /// `--cross`: two stack instances, e1000 and virtio-net, talk.
    cross: bool,
    /// `--template`: the native driver template's first lab test.
    template: bool,
    /// The workspace the guest's pktkit is built from (default: ours).
    workspace: Option<PathBuf>,
    timeout_given: bool,
    nics_given: bool,
    /// `--env NAME=VALUE`: exported in the guest before the command.
    env: Vec<(String, String)>,
}

const USAGE: &str = "usage: cargo xtask lab [--nics LIST] [--cmd 'CMD'] [--bin PATH]... \
[--example NAME]... [--timeout SECS] [--mem SIZE] [--env NAME=VALUE]... [--suite | --cross | --template] [--keep] [--verbose]
  --nics LIST     NIC models, comma separated (default e1000,e1000,e1000e,e1000-82545em,virtio,virtio,
                  rtl8139,i82559er,pcnet,ne2k_pci);
                  known: e1000 e1000e e1000-82545em virtio virtio-mq rtl8139 pcnet i82559er ne2k_pci
                  vmxnet3 tulip
  --cmd CMD       shell command to run in the guest (default: pktkit drivers && ls -l /dev/vfio)
  --bin PATH      copy an extra binary into the guest's /bin, with the shared libraries
                  it needs (repeatable)
  --example NAME  build the example NAME (of the harness or a driver crate) and copy it
                  in (repeatable)
  --timeout SECS  kill QEMU after this long (default 180; none with --keep)
  --mem SIZE      guest memory (default 1G)
  --env N=V       export N=V in the guest before the command (repeatable), e.g.
                  PKTKIT_PIO=vfio to keep port I/O on VFIO
  --suite         run the conformance suite for every driver on its NICs (pair first);
                  reports go to <target>/lab/conformance-*.{json,xml} (timeout 900)
  --cross         two stacks in the guest, one on an e1000 (wm0) and one on a virtio-net
                  (vio0), ping each other and move 8 MiB over TCP, content checked
                  (NICs default to e1000,virtio; timeout 600); with ne2k_pci instead of
                  virtio, b is the legacy ne2000 (en0) through the shim
  --template      `pktkit new native labnic` in a copy of the workspace, built into the
                  guest's pktkit: it must attach to an e1000 and pass attach_detach and
                  mac (NICs default to e1000,e1000)
  --keep          after the command, keep the guest up with a shell on the console
  --verbose       echo the guest console while it runs";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        nics: parse_nics(DEFAULT_NICS)?,
        cmd: DEFAULT_CMD.to_owned(),
        keep: false,
        verbose: false,
        bins: Vec::new(),
        examples: Vec::new(),
        timeout: Duration::from_secs(180),
        memory: "1G".to_owned(),
        suite: false,
        cross: false,
        template: false,
        workspace: None,
        timeout_given: false,
        nics_given: false,
        env: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--nics" => {
                o.nics = parse_nics(&value("--nics")?)?;
                o.nics_given = true;
            }
            "--cmd" => o.cmd = value("--cmd")?,
            "--bin" => o.bins.push(PathBuf::from(value("--bin")?)),
            "--example" => o.examples.push(value("--example")?),
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout: '{v}' is not seconds"))?;
                o.timeout = Duration::from_secs(secs);
                o.timeout_given = true;
            }
            "--mem" => o.memory = value("--mem")?,
            "--env" => o.env.push(parse_env(&value("--env")?)?),
            "--keep" => o.keep = true,
            "--suite" => o.suite = true,
            "--cross" => o.cross = true,
            "--template" => o.template = true,
            "--verbose" | "-v" => o.verbose = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    Ok(o)
}

/// `NAME=VALUE` for the guest's environment: a shell variable name and a
/// value of plain characters (it is written into the guest's /init).
fn parse_env(s: &str) -> Result<(String, String), String> {
    let bad = || {
        format!(
            "--env: '{s}' is not NAME=VALUE (NAME [A-Z_][A-Z0-9_]*, VALUE [A-Za-z0-9_.,:/=+-]*)"
        )
    };
    let (name, value) = s.split_once('=').ok_or_else(bad)?;
    let name_ok = name
        .chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c == '_' || c.is_ascii_uppercase() || c.is_ascii_digit());
    let value_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.,:/=+-".contains(c));
    if !name_ok || !value_ok {
        return Err(bad());
    }
    // The guest's shell needs these as they are.
    if matches!(name, "PATH" | "IFS" | "ENV" | "HOME") || name.starts_with("PS") {
        return Err(format!("--env: {name} is the guest shell's own"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn parse_nics(list: &str) -> Result<Vec<&'static Model>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m = MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
            format!("unknown NIC model '{name}' (known: {})", known.join(", "))
        })?;
        out.push(m);
    }
    if out.is_empty() {
        return Err("--nics: no NIC given".into());
    }
    if out.len() > LAST_SLOT - FIRST_SLOT + 1 {
        return Err(format!(
            "--nics: at most {} NICs",
            LAST_SLOT - FIRST_SLOT + 1
        ));
    }
    Ok(out)
}

/// The BDF the guest sees for the `i`th NIC.
fn nic_bdf(i: usize) -> String {
    format!("0000:00:{:02x}.0", FIRST_SLOT + i)
}

/// Where the lab keeps its files: `<target>/lab`.
fn lab_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"));
    target.join("lab")
}

/// Entry point of `cargo xtask lab`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut opts = parse_args(args)?;
    let (runs, suite_notes) = suite::plan(&opts.nics);
    if opts.suite {
        opts.cmd = suite::script(&runs, &linux::script(&runs));
        if !opts.timeout_given {
            opts.timeout = Duration::from_secs(900);
        }
    }
    if [opts.suite, opts.cross, opts.template]
        .iter()
        .filter(|&&b| b)
        .count()
        > 1
    {
        return Err("--suite, --cross and --template each make the guest command: give one".into());
    }
    if opts.template {
        if !opts.nics_given {
            opts.nics = parse_nics("e1000,e1000")?;
        }
        opts.cmd = template::script();
    }
    if opts.cross {
        if !opts.nics_given {
            opts.nics = parse_nics("e1000,virtio")?;
        }
        let (wm, b_spec, b_if) = cross::plan(&opts.nics)?;
        opts.cmd = cross::script(&wm, &b_spec, b_if);
        if !opts.timeout_given {
            opts.timeout = Duration::from_secs(600);
        }
    }
    if opts.keep && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // The guest shell would wait on the console for ever.
        return Err("--keep needs a terminal on standard input".into());
    }
    let dir = lab_dir();
    fs::create_dir_all(dir.join("cache")).map_err(|e| format!("{}: {e}", dir.display()))?;

    // Results of an earlier run must not pass for this one's.
    for stale in ["console.log", "inventory.json"] {
        let _ = fs::remove_file(dir.join(stale));
    }
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("conformance-") {
            let _ = fs::remove_file(e.path());
        }
    }
    let t = Instant::now();
    ensure_host_packages()?;
    let kernel = fetch_kernel(&dir.join("cache"))?;
    let mut bins = build_guest_binaries(&dir, &opts)?;
    if opts.template {
        // The guest's pktkit runs here too: it makes the driver in a copy,
        // and the copy's pktkit goes into the guest.
        let pktkit = bins.first().cloned().ok_or("no pktkit binary")?;
        opts.workspace = Some(template::prepare(&dir, &pktkit)?);
        bins = build_guest_binaries(&dir, &opts)?;
    }
    let initrd = make_initramfs(&dir, &kernel, &bins, &opts)?;
    eprintln!("lab: prepared in {:.1} s", t.elapsed().as_secs_f64());

    let outcome = boot(&dir, &kernel.vmlinuz, &initrd, &opts)?;
    let report = Report::parse(&outcome.console);
    fs::write(dir.join("console.log"), &outcome.console)
        .map_err(|e| format!("console.log: {e}"))?;
    fs::write(
        dir.join("inventory.json"),
        report.inventory_json(&opts.nics),
    )
    .map_err(|e| format!("inventory.json: {e}"))?;
    print!("{}", report.table(&opts.nics));
    for n in &report.notes {
        println!("guest: {n}");
    }
    if let Some(t) = outcome.report_time {
        println!("boot-to-report: {:.1} s", t.as_secs_f64());
    }
    println!("console log: {}", dir.join("console.log").display());
    let suite = if opts.suite {
        let vfio_pio = opts
            .env
            .iter()
            .any(|(n, v)| n == "PKTKIT_PIO" && v == "vfio");
        let r = suite::report(&dir, &outcome.console, &runs, &suite_notes, vfio_pio);
        linux::report(&dir, &outcome.console, &runs);
        r
    } else if opts.cross {
        cross::report(&outcome.console)
    } else {
        // Files the command left in /tmp/lab-out, for any --cmd.
        for (name, data) in suite::files(&outcome.console) {
            if !name.contains('/') && !name.starts_with('.') {
                let _ = fs::write(dir.join(&name), data);
            }
        }
        Ok(())
    };
    match (report.verdict(&opts.nics, outcome.timed_out), suite) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(a), Ok(())) | (Ok(()), Err(a)) => Err(a),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    }
}

// ---------------------------------------------------------------------------
// Host packages and the guest kernel.

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn apt_get() -> Command {
    let mut c = Command::new("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Installs the missing host packages (with one `apt-get update` first).
fn ensure_host_packages() -> Result<(), String> {
    let missing: Vec<&str> = HOST_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("lab: installing {}", missing.join(" "));
    run_quiet(apt_get().args(["update", "-qq"]))?;
    run_quiet(
        apt_get()
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )
}

/// Runs a command, showing its output only when it fails.
fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    eprintln!("lab: {}", render(cmd));
    let out = cmd.output().map_err(|e| format!("{}: {e}", render(cmd)))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}):\n{}{}",
            render(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// An unpacked guest kernel.
struct Kernel {
    vmlinuz: PathBuf,
    /// `lib/modules/<version>` inside the unpacked package.
    modules: PathBuf,
}

/// The kernel meta-package: Debian's generic flavour, which has the vfio
/// modules and the Linux drivers of every NIC model the lab emulates (the
/// cloud flavour has no e1000, e1000e, 8139too, pcnet32, e100 or ne2k-pci),
/// so the suite can compare ours with them.
const KERNEL_META: &str = "linux-image-amd64";

/// The versioned kernel package [`KERNEL_META`] depends on now.
fn resolve_kernel_package() -> Option<String> {
    let out = Command::new("apt-cache")
        .args(["depends", KERNEL_META])
        .output()
        .ok()?;
    parse_kernel_depends(&String::from_utf8_lossy(&out.stdout))
}

/// Picks `linux-image-X-amd64` (the generic flavour) out of `apt-cache
/// depends` output.
fn parse_kernel_depends(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| generic_kernel(p))
        .map(str::to_owned)
}

/// `linux-image-<version>-amd64`, not another flavour (cloud, rt).
fn generic_kernel(pkg: &str) -> bool {
    pkg.strip_prefix("linux-image-")
        .and_then(|v| v.strip_suffix("-amd64"))
        .is_some_and(|v| {
            v.starts_with(|c: char| c.is_ascii_digit())
                && !v.contains("cloud")
                && !v.contains("-rt")
        })
}

fn fetch_kernel(cache: &Path) -> Result<Kernel, String> {
    let pkg = match resolve_kernel_package() {
        Some(p) => Some(p),
        None => {
            // Package lists missing or stale: refresh once.
            run_quiet(apt_get().args(["update", "-qq"]))?;
            resolve_kernel_package()
        }
    };
    let unpacked = match pkg {
        Some(pkg) => {
            let dir = cache.join(&pkg);
            if !dir.join("boot").is_dir() {
                download_kernel(cache, &pkg, &dir)?;
            }
            dir
        }
        None => newest_cached_kernel(cache)
            .ok_or("cannot resolve the package linux-image-amd64 depends on, and none is cached")?,
    };
    let vmlinuz = fs::read_dir(unpacked.join("boot"))
        .map_err(|e| format!("{}: {e}", unpacked.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or_else(|| format!("no vmlinuz in {}", unpacked.display()))?;
    let version = vmlinuz
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_start_matches("vmlinuz-")
                .to_owned()
        })
        .unwrap_or_default();
    let modules = unpacked.join("lib/modules").join(&version);
    eprintln!("lab: guest kernel {version}");
    Ok(Kernel { vmlinuz, modules })
}

fn download_kernel(cache: &Path, pkg: &str, dir: &Path) -> Result<(), String> {
    let t = Instant::now();
    // Drop older downloads of this package name.
    for e in fs::read_dir(cache).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{pkg}_")) && name.ends_with(".deb") {
            let _ = fs::remove_file(e.path());
        }
    }
    run_quiet(apt_get().args(["download", "-qq", pkg]).current_dir(cache))?;
    let deb = fs::read_dir(cache)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb")
            })
        })
        .ok_or_else(|| format!("apt-get download {pkg} left no .deb in {}", cache.display()))?;
    let tmp = cache.join(format!("{pkg}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    run_quiet(Command::new("dpkg").arg("-x").arg(&deb).arg(&tmp))?;
    fs::rename(&tmp, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = fs::remove_file(&deb);
    eprintln!("lab: fetched {pkg} in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn newest_cached_kernel(cache: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("boot").is_dir())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| generic_kernel(&n.to_string_lossy()))
        })
        .collect();
    dirs.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    dirs.pop()
}

// ---------------------------------------------------------------------------
// Guest binaries.

const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds pktkit and the requested harness examples for the guest; returns
/// the binaries to copy into its /bin. They are linked dynamically (the
/// normal glibc target): pktkit must export compat-bsd's KPI to the ported
/// `.so` drivers it loads, which a static (crt-static) executable cannot.
/// [`libs::stage`] puts the libraries they need in the guest.
fn build_guest_binaries(dir: &Path, opts: &Options) -> Result<Vec<PathBuf>, String> {
    let build = dir.join("build");
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        GUEST_TARGET,
        "-p",
        "pktkit",
    ]);
    for ex in &opts.examples {
        // An example of the harness or of a driver crate (e.g. virtio_loop).
        let pkg = example_package(&root(), ex).unwrap_or_else(|| "pktkit-harness".into());
        cmd.args(["-p", &pkg, "--example", ex]);
    }
    if !opts.examples.is_empty() {
        // With target filters cargo builds only the targets named: name
        // pktkit's binary too, or the guest would get a stale one.
        cmd.args(["--bin", "pktkit"]);
    }
    // The target dir is our own, so a build for the guest never invalidates
    // the normal tree; no RUSTFLAGS from outside, so it is the same build
    // whoever runs the lab.
    cmd.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &build)
        .current_dir(opts.workspace.clone().unwrap_or_else(root));
    eprintln!("lab: {}", render(&cmd));
    let st = cmd.status().map_err(|e| format!("{}: {e}", render(&cmd)))?;
    if !st.success() {
        return Err(format!("{} failed ({st})", render(&cmd)));
    }
    let out = build.join(GUEST_TARGET).join("release");
    let mut bins = vec![out.join("pktkit")];
    bins.extend(opts.examples.iter().map(|ex| out.join("examples").join(ex)));
    bins.extend(opts.bins.iter().cloned());
    Ok(bins)
}

// ---------------------------------------------------------------------------
// The initramfs.

/// Finds a module's file under `lib/modules/<v>/kernel`, treating `-` and
/// `_` alike as the kernel does.
pub(super) fn find_module(modules: &Path, name: &str) -> Option<PathBuf> {
    let want = name.replace('-', "_");
    let mut stack = vec![modules.join("kernel")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let file = e.file_name().to_string_lossy().into_owned();
            let stem = file
                .strip_suffix(".ko")
                .or_else(|| file.strip_suffix(".ko.xz"))
                .or_else(|| file.strip_suffix(".ko.zst"));
            if stem.is_some_and(|s| s.replace('-', "_") == want) {
                return Some(p);
            }
        }
    }
    None
}

/// Whether `modules.builtin` lists the module (compiled into the kernel).
pub(super) fn module_builtin(modules: &Path, name: &str) -> bool {
    let want = name.replace('-', "_");
    fs::read_to_string(modules.join("modules.builtin"))
        .map(|s| {
            s.lines().any(|l| {
                let f = l.rsplit('/').next().unwrap_or(l);
                f.trim_end_matches(".ko").replace('-', "_") == want
            })
        })
        .unwrap_or(false)
}

/// Copies a module into the initramfs staging tree, uncompressed (busybox
/// insmod takes plain .ko files).
pub(super) fn stage_module(src: &Path, dst: &Path) -> Result<(), String> {
    let name = src.to_string_lossy();
    if name.ends_with(".ko") {
        fs::copy(src, dst)
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", src.display()))
    } else {
        let tool = if name.ends_with(".xz") { "xz" } else { "zstd" };
        let out = Command::new(tool)
            .args(["-dc"])
            .arg(src)
            .output()
            .map_err(|e| format!("{tool} -dc {}: {e}", src.display()))?;
        if !out.status.success() {
            return Err(format!("{tool} -dc {} failed", src.display()));
        }
        fs::write(dst, out.stdout).map_err(|e| format!("{}: {e}", dst.display()))
    }
}

/// Copies the legacy-ABI drivers the guest build made (shim-legacy's
/// build.rs puts them in `<build>/<target>/release/legacy/`) to the guest's
/// `/lib/pktkit/`, where pktkit dlopens them
/// (`-d legacy:/lib/pktkit/devn-ne2000.so,pci=...`); returns the files
/// copied (their libraries are staged with the programs').
fn stage_legacy_drivers(dir: &Path, stage: &Path) -> Result<Vec<PathBuf>, String> {
    let src = dir.join("build").join(GUEST_TARGET).join("release/legacy");
    let Ok(entries) = fs::read_dir(&src) else {
        return Ok(Vec::new());
    };
    let dst = stage.join("lib/pktkit");
    fs::create_dir_all(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    let mut copied = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "so") {
            if let Some(name) = p.file_name() {
                fs::copy(&p, dst.join(name)).map_err(|e| format!("{}: {e}", p.display()))?;
                copied.push(p);
            }
        }
    }
    copied.sort();
    Ok(copied)
}

fn make_initramfs(
    dir: &Path,
    kernel: &Kernel,
    bins: &[PathBuf],
    opts: &Options,
) -> Result<PathBuf, String> {
    let stage = dir.join("initramfs");
    let _ = fs::remove_dir_all(&stage);
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib/modules", "lab"] {
        fs::create_dir_all(stage.join(d)).map_err(|e| format!("{}: {e}", stage.display()))?;
    }
    let mkerr = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());

    // busybox and one symlink per applet.
    let busybox = Path::new("/bin/busybox");
    fs::copy(busybox, stage.join("bin/busybox")).map_err(|e| mkerr(busybox, e))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| format!("busybox --list: {e}"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = stage.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            std::os::unix::fs::symlink("busybox", &link).map_err(|e| mkerr(&link, e))?;
        }
    }

    // The vfio modules, in load order; note those built in or absent.
    let mut load = Vec::new();
    let mut notes = Vec::new();
    for m in VFIO_MODULES {
        match find_module(&kernel.modules, m) {
            Some(src) => {
                let dst = stage.join("lib/modules").join(format!("{m}.ko"));
                stage_module(&src, &dst)?;
                load.push(*m);
            }
            None if module_builtin(&kernel.modules, m) => notes.push(format!("{m} built in")),
            None => notes.push(format!("{m} absent from this kernel")),
        }
    }

    // The Linux drivers of the NIC models (the suite's comparison; any
    // command may load them: /lib/modules/<model>.load lists the order).
    let mut models: Vec<&str> = opts.nics.iter().map(|m| m.name).collect();
    models.sort_unstable();
    models.dedup();
    notes.extend(linux::stage(&kernel.modules, &stage, &models)?);

    for b in bins {
        let name = b
            .file_name()
            .ok_or_else(|| format!("{}: no file name", b.display()))?;
        fs::copy(b, stage.join("bin").join(name)).map_err(|e| mkerr(b, e))?;
    }

    // Driver objects (legacy and ported) and the shared libraries that
    // everything loaded in the guest needs.
    let mut elves = bins.to_vec();
    elves.extend(stage_legacy_drivers(dir, &stage)?);
    let ws = opts.workspace.clone().unwrap_or_else(root);
    elves.extend(ported_so::build_and_stage(dir, &ws, &stage)?);
    let libraries: Vec<String> = libs::stage(&elves, &stage)?
        .iter()
        .map(|l| l.guest.display().to_string())
        .collect();
    eprintln!("lab: shared libraries staged: {}", libraries.join(" "));

    let cmd_path = stage.join("lab/cmd.sh");
    fs::write(&cmd_path, format!("{}\n", opts.cmd)).map_err(|e| mkerr(&cmd_path, e))?;
    let init = stage.join("init");
    fs::write(&init, init_script(&load, &notes, &opts.env, opts.keep))
        .map_err(|e| mkerr(&init, e))?;
    set_mode(&init, 0o755)?;

    // cpio newc, gzip.
    let out = dir.join("initrd.cpio.gz");
    let script = format!(
        "find . -print0 | sort -z | cpio --null -o -H newc --quiet | gzip -1 > '{}'",
        out.display()
    );
    run_quiet(Command::new("sh").args(["-c", &script]).current_dir(&stage))?;
    if !opts.keep {
        let _ = fs::remove_dir_all(&stage);
    }
    Ok(out)
}

fn set_mode(p: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// The guest's /init. Everything it reports is a marker line (see
/// [`Report::parse`]); anything else on the console is kernel or command
/// output.
fn init_script(modules: &[&str], notes: &[String], env: &[(String, String)], keep: bool) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Generated by cargo xtask lab.\n\
         export PATH=/bin HOME=/tmp\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mount -t tmpfs tmpfs /tmp\n",
    );
    for n in notes {
        let _ = writeln!(s, "echo '{MARK_NOTE}{n}'");
    }
    for m in modules {
        let _ = writeln!(
            s,
            "insmod /lib/modules/{m}.ko || echo '{MARK_NOTE}insmod {m} failed'"
        );
    }
    let _ = write!(
        s,
        r#"
# Hand every network controller (class 0x02xxxx) to vfio-pci.
for d in /sys/bus/pci/devices/*; do
  case "$(cat $d/class)" in 0x02*) ;; *) continue ;; esac
  bdf=${{d##*/}}
  echo vfio-pci > $d/driver_override
  [ -e $d/driver ] && echo $bdf > $d/driver/unbind
  echo $bdf > /sys/bus/pci/drivers_probe
done
echo '{MARK_INV_BEGIN}'
for d in /sys/bus/pci/devices/*; do
  case "$(cat $d/class)" in 0x02*) ;; *) continue ;; esac
  group=none; [ -e $d/iommu_group ] && group=$(basename $(readlink $d/iommu_group))
  driver=none; [ -e $d/driver ] && driver=$(basename $(readlink $d/driver))
  echo "{MARK_NIC}${{d##*/}} $(cat $d/vendor):$(cat $d/device) $group $driver"
done
echo '{MARK_INV_END}'
echo '{MARK_CMD_BEGIN}'
mkdir -p {out}
cd /tmp
{exports}sh /lab/cmd.sh
echo "{MARK_CMD_EXIT}$?"
{send}"#,
        out = suite::GUEST_OUT,
        send = suite::send_files_script(),
        // parse_env admitted only plain characters: no quoting needed.
        exports = env
            .iter()
            .map(|(n, v)| format!("export {n}={v}\necho '{MARK_NOTE}env {n}={v}'\n"))
            .collect::<String>(),
    );
    if keep {
        s.push_str(
            "echo 'lab: --keep: a shell on the console; poweroff -f to end'\nsetsid cttyhack sh\n",
        );
    }
    s.push_str("poweroff -f\n");
    s
}

// ---------------------------------------------------------------------------
// QEMU.

/// The workspace package whose directory holds `examples/NAME.rs`: the
/// harness, the kit or a native driver crate.
fn example_package(root: &Path, name: &str) -> Option<String> {
    let mut dirs = vec![root.join("harness"), root.join("kit")];
    if let Ok(rd) = fs::read_dir(root.join("native/drivers")) {
        let mut drivers: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        drivers.sort();
        dirs.extend(drivers);
    }
    let dir = dirs
        .into_iter()
        .find(|d| d.join("examples").join(format!("{name}.rs")).is_file())?;
    let toml = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    toml.lines().map(str::trim).find_map(|l| {
        let v = l.strip_prefix("name")?.trim_start().strip_prefix('=')?;
        Some(v.trim().trim_matches('"').to_owned())
    })
}

struct Outcome {
    console: String,
    /// From QEMU start to the command's exit marker.
    report_time: Option<Duration>,
    timed_out: bool,
}

fn qemu_command(kernel: &Path, initrd: &Path, opts: &Options) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-accel", "tcg", "-machine", "q35,kernel-irqchip=split"])
        // aw-bits=48: pools are mapped IOVA = VA, and user addresses need
        // 47 bits; QEMU's default of 39 makes VFIO_IOMMU_MAP_DMA fail (EINVAL).
        .args([
            "-device",
            "intel-iommu,intremap=on,caching-mode=on,aw-bits=48",
        ])
        .args(["-cpu", "max", "-m", &opts.memory, "-smp", "2"])
        .args(["-nodefaults", "-display", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet rdinit=/init"]);
    for (i, m) in opts.nics.iter().enumerate() {
        c.arg("-netdev").arg(format!("hubport,id=n{i},hubid=0"));
        c.arg("-device").arg(format!(
            "{},netdev=n{i},mac=52:54:00:12:34:{:02x},romfile=,addr=0x{:02x}",
            m.qemu,
            i + 1,
            FIRST_SLOT + i
        ));
    }
    c
}

/// QEMU's human monitor on a Unix socket, for `set_link`.
struct Monitor {
    path: PathBuf,
    conn: Option<std::os::unix::net::UnixStream>,
}

impl Monitor {
    /// Carries out `@@LAB link BDF up|down` (the rest after the marker).
    fn link(&mut self, request: &str, nics: usize) -> Result<String, String> {
        let mut words = request.split_whitespace();
        let (Some(bdf), Some(state)) = (words.next(), words.next()) else {
            return Err(format!("bad link request '{request}'"));
        };
        let on = match state {
            "up" => "on",
            "down" => "off",
            _ => return Err(format!("bad link state '{state}'")),
        };
        let i = (0..nics)
            .find(|&i| nic_bdf(i) == bdf)
            .ok_or_else(|| format!("no lab NIC at {bdf}"))?;
        if self.conn.is_none() {
            let c = std::os::unix::net::UnixStream::connect(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            c.set_read_timeout(Some(Duration::from_millis(200)))
                .map_err(|e| e.to_string())?;
            self.conn = Some(c);
        }
        let c = self.conn.as_mut().ok_or("monitor")?;
        // The hub port's peer is the NIC: QEMU changes both and tells the
        // NIC model, which raises its link interrupt.
        let line = format!("set_link n{i} {on}\n");
        std::io::Write::write_all(c, line.as_bytes()).map_err(|e| format!("monitor: {e}"))?;
        // Drain the banner and echo so the socket never fills.
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
        Ok(format!("set_link n{i} {on}"))
    }
}

fn boot(dir: &Path, kernel: &Path, initrd: &Path, opts: &Options) -> Result<Outcome, String> {
    let mut cmd = qemu_command(kernel, initrd, opts);
    let monitor_path = dir.join("monitor.sock");
    let _ = fs::remove_file(&monitor_path);
    cmd.arg("-monitor").arg(format!(
        "unix:{},server=on,wait=off",
        monitor_path.display()
    ));
    let mut monitor = Monitor {
        path: monitor_path,
        conn: None,
    };
    fs::write(dir.join("qemu-cmdline.txt"), render(&cmd) + "\n").map_err(|e| e.to_string())?;
    eprintln!("lab: booting {} NICs: {}", opts.nics.len(), render(&cmd));
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if opts.keep {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("qemu-system-x86_64: {e}"))?;

    // Console lines arrive on a channel so the timeout can be enforced
    // while nothing is printed.
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    let stdout = child.stdout.take().ok_or("qemu stdout")?;
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).replace('\r', "");
                    if tx.send((line, Instant::now())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut stderr = child.stderr.take().ok_or("qemu stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let mut console = String::new();
    let mut report_time = None;
    let mut timed_out = false;
    let echo = opts.verbose || opts.keep;
    loop {
        let left = if opts.keep {
            Duration::from_secs(3600)
        } else {
            match opts.timeout.checked_sub(start.elapsed()) {
                Some(d) => d,
                None => {
                    timed_out = true;
                    break;
                }
            }
        };
        match rx.recv_timeout(left) {
            Ok((line, at)) => {
                if echo {
                    print!("{line}");
                }
                if line.starts_with(MARK_CMD_EXIT) {
                    report_time = Some(at - start);
                }
                if let Some(req) = line.trim_end().strip_prefix(MARK_LINK) {
                    match monitor.link(req, opts.nics.len()) {
                        Ok(done) => eprintln!("lab: {done} ({req})"),
                        Err(e) => eprintln!("lab: link request failed: {e}"),
                    }
                }
                console.push_str(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if timed_out {
        eprintln!(
            "lab: no report after {} s: killing QEMU",
            opts.timeout.as_secs()
        );
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| format!("waiting for qemu: {e}"))?;
    let _ = reader.join();
    let qemu_err = err_reader.join().unwrap_or_default();
    // The hub is deliberately not connected to the host network.
    let qemu_err: String = qemu_err
        .lines()
        .filter(|l| !l.contains("is not connected to host network") && !l.contains("hub"))
        .map(|l| format!("{l}\n"))
        .collect();
    if !qemu_err.is_empty() {
        eprint!("qemu: {qemu_err}");
        console.push_str("\n[qemu stderr]\n");
        console.push_str(&qemu_err);
    }
    eprintln!(
        "lab: QEMU ended ({status}) after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(Outcome {
        console,
        report_time,
        timed_out,
    })
}

// ---------------------------------------------------------------------------
// The guest's report.

/// One NIC as the guest saw it.
#[derive(Debug, PartialEq)]
struct Nic {
    bdf: String,
    id: String,
    group: String,
    driver: String,
}

/// What the guest reported on its console.
#[derive(Debug, Default, PartialEq)]
struct Report {
    /// `None` until the inventory's end marker was seen.
    nics: Option<Vec<Nic>>,
    exit: Option<i32>,
    notes: Vec<String>,
}

impl Report {
    /// Reads the marker lines: `@@LAB nic BDF VENDOR:DEVICE GROUP DRIVER`
    /// between the inventory markers, `@@LAB command exit N`, `@@LAB note`.
    /// Vendor and device come from sysfs as `0x8086`, written `8086` here.
    fn parse(console: &str) -> Report {
        let mut r = Report::default();
        let mut inv: Option<Vec<Nic>> = None;
        for line in console.lines().map(str::trim_end) {
            if line == MARK_INV_BEGIN {
                inv = Some(Vec::new());
            } else if line == MARK_INV_END {
                r.nics = inv.take();
            } else if let Some(rest) = line.strip_prefix(MARK_NIC) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if let (Some(list), [bdf, id, group, driver]) = (inv.as_mut(), f.as_slice()) {
                    list.push(Nic {
                        bdf: (*bdf).to_owned(),
                        id: id.replace("0x", ""),
                        group: (*group).to_owned(),
                        driver: (*driver).to_owned(),
                    });
                }
            } else if let Some(rest) = line.strip_prefix(MARK_CMD_EXIT) {
                r.exit = rest.trim().parse().ok();
            } else if let Some(rest) = line.strip_prefix(MARK_NOTE) {
                r.notes.push(rest.to_owned());
            }
        }
        r
    }

    /// The model we asked for at a BDF.
    fn model_at<'a>(models: &[&'a Model], bdf: &str) -> Option<&'a Model> {
        (0..models.len())
            .find(|&i| nic_bdf(i) == bdf)
            .map(|i| models[i])
    }

    fn table(&self, models: &[&Model]) -> String {
        let mut s = format!(
            "{:<14} {:<9} {:<10} {:<6} {}\n",
            "BDF", "model", "id", "group", "driver"
        );
        for n in self.nics.iter().flatten() {
            let model = Self::model_at(models, &n.bdf).map_or("?", |m| m.name);
            let _ = writeln!(
                s,
                "{:<14} {:<9} {:<10} {:<6} {}",
                n.bdf, model, n.id, n.group, n.driver
            );
        }
        match self.exit {
            Some(c) => {
                let _ = writeln!(s, "guest command exit status: {c}");
            }
            None => s.push_str("guest command: no exit status reported\n"),
        }
        s
    }

    fn inventory_json(&self, models: &[&Model]) -> String {
        let mut s = String::from("{\n  \"nics\": [");
        for (i, n) in self.nics.iter().flatten().enumerate() {
            let model = Self::model_at(models, &n.bdf).map_or("", |m| m.name);
            let _ = write!(
                s,
                "{}\n    {{\"bdf\": \"{}\", \"model\": \"{}\", \"id\": \"{}\", \"iommu_group\": \"{}\", \"driver\": \"{}\"}}",
                if i == 0 { "" } else { "," },
                json_escape(&n.bdf),
                model,
                json_escape(&n.id),
                json_escape(&n.group),
                json_escape(&n.driver)
            );
        }
        let exit = self.exit.map_or("null".to_owned(), |c| c.to_string());
        let _ = write!(s, "\n  ],\n  \"command_exit\": {exit}\n}}\n");
        s
    }

    /// Ok when the guest reported, every NIC we asked for is there with
    /// the right id and bound to vfio-pci, and the command exited 0.
    fn verdict(&self, models: &[&Model], timed_out: bool) -> Result<(), String> {
        let mut problems = Vec::new();
        if timed_out {
            problems.push("timed out".to_owned());
        }
        let Some(nics) = &self.nics else {
            problems.push("the guest did not report its inventory".to_owned());
            return Err(problems.join("; "));
        };
        let seen: BTreeSet<&str> = nics.iter().map(|n| n.bdf.as_str()).collect();
        for (i, m) in models.iter().enumerate() {
            let bdf = nic_bdf(i);
            if !seen.contains(bdf.as_str()) {
                problems.push(format!("{} ({bdf}) missing from the guest", m.name));
            }
        }
        for n in nics {
            if let Some(m) = Self::model_at(models, &n.bdf) {
                if n.id != m.id {
                    problems.push(format!(
                        "{}: expected {} ({}), found {}",
                        n.bdf, m.id, m.name, n.id
                    ));
                }
            }
            if n.driver != "vfio-pci" {
                problems.push(format!("{} bound to {}, not vfio-pci", n.bdf, n.driver));
            }
        }
        match self.exit {
            Some(0) => {}
            Some(c) => problems.push(format!("the guest command exited {c}")),
            None => problems.push("the guest command reported no exit status".to_owned()),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
[    0.000000] Linux version 6.1.0\r
@@LAB note vfio_virqfd absent from this kernel\r
@@LAB inventory begin\r
@@LAB nic 0000:00:02.0 0x8086:0x100e 3 vfio-pci\r
@@LAB nic 0000:00:03.0 0x8086:0x10d3 4 vfio-pci\r
@@LAB inventory end\r
@@LAB command begin\r
hello\r
@@LAB command exit 0\r
";

    fn models(list: &str) -> Vec<&'static Model> {
        parse_nics(list).unwrap()
    }

    #[test]
    fn report_parses_markers() {
        let r = Report::parse(&CONSOLE.replace('\r', ""));
        let nics = r.nics.as_ref().unwrap();
        assert_eq!(nics.len(), 2);
        assert_eq!(
            nics[1],
            Nic {
                bdf: "0000:00:03.0".into(),
                id: "8086:10d3".into(),
                group: "4".into(),
                driver: "vfio-pci".into()
            }
        );
        assert_eq!(r.exit, Some(0));
        assert_eq!(
            r.notes,
            vec!["vfio_virqfd absent from this kernel".to_owned()]
        );
        assert!(r.verdict(&models("e1000,e1000e"), false).is_ok());
        let j = r.inventory_json(&models("e1000,e1000e"));
        assert!(j.contains("\"model\": \"e1000e\""), "{j}");
        assert!(j.contains("\"command_exit\": 0"), "{j}");
    }

    #[test]
    fn verdict_names_each_problem() {
        let console = CONSOLE
            .replace("4 vfio-pci", "4 e1000e")
            .replace("exit 0", "exit 3");
        let r = Report::parse(&console);
        let e = r
            .verdict(&models("e1000,e1000e,virtio"), false)
            .unwrap_err();
        assert!(e.contains("0000:00:03.0 bound to e1000e"), "{e}");
        assert!(e.contains("virtio (0000:00:04.0) missing"), "{e}");
        assert!(e.contains("exited 3"), "{e}");
        // Wrong model at a slot.
        let e = Report::parse(CONSOLE)
            .verdict(&models("e1000e,e1000e"), false)
            .unwrap_err();
        assert!(e.contains("expected 8086:10d3"), "{e}");
    }

    #[test]
    fn no_inventory_is_a_failure() {
        let r = Report::parse("[ 0.1] Kernel panic\n");
        assert_eq!(r.nics, None);
        let e = r.verdict(&models("e1000"), true).unwrap_err();
        assert!(
            e.contains("timed out") && e.contains("did not report"),
            "{e}"
        );
        // An inventory that never ended does not count.
        let r = Report::parse(
            "@@LAB inventory begin\n@@LAB nic 0000:00:02.0 0x8086:0x100e 3 vfio-pci\n",
        );
        assert_eq!(r.nics, None);
    }

    #[test]
    fn link_requests_go_to_the_monitor() {
        let dir = std::env::temp_dir().join(format!("lab-mon-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut m = Monitor {
            path: path.clone(),
            conn: None,
        };
        assert!(m
            .link("0000:00:02.0 sideways", 2)
            .unwrap_err()
            .contains("state"));
        assert!(m
            .link("0000:00:07.0 down", 2)
            .unwrap_err()
            .contains("no lab NIC"));
        assert!(m
            .link("0000:00:02.0", 2)
            .unwrap_err()
            .contains("bad link request"));
        assert_eq!(m.link("0000:00:03.0 down", 2).unwrap(), "set_link n1 off");
        assert_eq!(m.link("0000:00:03.0 up", 2).unwrap(), "set_link n1 on");
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = String::new();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        while !got.ends_with("on\n") {
            let n = conn.read(&mut buf).unwrap();
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(got, "set_link n1 off\nset_link n1 on\n");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn nic_lists() {
        assert_eq!(models(DEFAULT_NICS).len(), 10);
        assert!(parse_nics("e1000,igb")
            .unwrap_err()
            .contains("unknown NIC model 'igb'"));
        assert!(parse_nics("").is_err());
        assert!(parse_nics(&vec!["e1000"; 30].join(",")).is_err());
        assert_eq!(nic_bdf(0), "0000:00:02.0");
        assert_eq!(nic_bdf(14), "0000:00:10.0");
    }

    #[test]
    fn examples_are_found_in_their_crates() {
        let root = crate::root();
        assert_eq!(
            example_package(&root, "vfio_probe").as_deref(),
            Some("pktkit-harness")
        );
        assert_eq!(
            example_package(&root, "virtio_loop").as_deref(),
            Some("pktkit-drv-virtio")
        );
        assert_eq!(example_package(&root, "no_such_example"), None);
    }

    #[test]
    fn kernel_package_from_apt_cache() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            parse_kernel_depends(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(parse_kernel_depends("linux-image-amd64\n"), None);
        assert_eq!(
            parse_kernel_depends("x\n  Depends: linux-image-6.1.0-56-cloud-amd64\n"),
            None
        );
    }

    #[test]
    fn init_script_runs_the_command_and_powers_off() {
        let env = [("PKTKIT_PIO".to_owned(), "vfio".to_owned())];
        let s = init_script(&["vfio", "vfio-pci"], &["x built in".into()], &env, false);
        assert!(s.find("export PKTKIT_PIO=vfio\n").unwrap() < s.find("sh /lab/cmd.sh").unwrap());
        assert!(s.contains("insmod /lib/modules/vfio.ko"));
        assert!(s.find("vfio.ko").unwrap() < s.find("vfio-pci.ko").unwrap());
        assert!(s.contains("@@LAB note x built in"));
        assert!(s.contains("sh /lab/cmd.sh\necho \"@@LAB command exit $?\""));
        assert!(s.trim_end().ends_with("poweroff -f"));
        assert!(init_script(&[], &[], &[], true).contains("setsid cttyhack sh"));
    }

    #[test]
    fn env_is_plain_name_and_value() {
        assert_eq!(
            parse_env("PKTKIT_PIO=vfio").unwrap(),
            ("PKTKIT_PIO".to_owned(), "vfio".to_owned())
        );
        assert_eq!(parse_env("A_1=x=y,z").unwrap().1, "x=y,z");
        for bad in [
            "novalue",
            "lower=1",
            "1A=x",
            "=x",
            "A=it's",
            "A=$(reboot)",
            "A=a b",
            "PATH=/x",
            "IFS=/",
            "PS1=x",
        ] {
            assert!(parse_env(bad).is_err(), "{bad}");
        }
    }
}
