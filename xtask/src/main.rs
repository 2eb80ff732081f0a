//! Project automation: `cargo xtask <command>`.
//!
//! - `test`: format check, clippy with warnings as errors, and every test of
//!   the workspace (the real-peer tests need root for namespaces and TAP);
//! - `demo`: the main job: builds pktkit, starts it on a TAP and an
//!   AF_PACKET interface wired to Linux peers in network namespaces this
//!   command makes, and shows Linux pinging it and moving data through its
//!   TCP echo service;
//! - `bench`: the side-by-side comparison with DPDK (`bench/compare-dpdk.sh`).

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: {}", render(cmd));
    let st = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("{}: {e}", render(cmd)))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({st})", render(cmd)))
    }
}

fn render(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The lab runs `cargo xtask test` ends with: the conformance suite on
/// every NIC model with a driver, the cross-driver TCP tests (native
/// wm0 with vio0, with the ported rtk0, with the legacy en0), the suite
/// again for the port-I/O drivers with port I/O through VFIO, the
/// template's first test.
const LAB_RUNS: &[&[&str]] = &[
    &["--suite"],
    &["--cross"],
    &["--cross", "--nics", "e1000,rtl8139"],
    &["--cross", "--nics", "e1000,ne2k_pci"],
    // The drivers that use I/O-port BARs once more with every port
    // access through VFIO (the fallback when direct port I/O is refused).
    &[
        "--suite",
        "--nics",
        "e1000,e1000,ne2k_pci,pcnet",
        "--env",
        "PKTKIT_PIO=vfio",
    ],
    &["--template"],
];

fn test(args: &[String]) -> Result<(), String> {
    let mut lab_too = true;
    for a in args {
        match a.as_str() {
            "--no-lab" => lab_too = false,
            other => return Err(format!("test: unknown option '{other}' (known: --no-lab)")),
        }
    }
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Real-peer tests make namespaces, veth pairs and TAP devices: they
    // need root, and they run one test binary at a time so the machine's
    // two cores are not oversubscribed by timing-sensitive peers.
    run(cargo().args(["test", "--workspace", "--", "--test-threads", "2"]))?;
    if lab_too {
        // The drivers against QEMU's devices behind an IOMMU (docs/lab.md).
        for args in LAB_RUNS {
            eprintln!("xtask: cargo xtask lab {}", args.join(" "));
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            lab::run(&args)?;
        }
    }
    Ok(())
}

fn demo() -> Result<(), String> {
    run(cargo().args(["build", "--release", "-p", "pktkit"]))?;
    run(Command::new("bash")
        .arg(root().join("bench/demo.sh"))
        .stdin(Stdio::null()))
}

fn bench(args: &[String]) -> Result<(), String> {
    run(Command::new("bash")
        .arg(root().join("bench/compare-dpdk.sh"))
        .args(args))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("demo") => demo(),
        Some("bench") => bench(&args[1..]),
        Some("lab") => lab::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test [--no-lab]|demo|bench [args]|lab [args]>");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
