//! `pktkit`: run the stack, list drivers, benchmark.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use pktkit::cli::{self, RunPlan};
use pktkit::runtime::Fallback;

#[global_allocator]
static GLOBAL: pktkit::alloc_count::CountingAlloc = pktkit::alloc_count::CountingAlloc::new();

/// pktkit: a driver development and porting kit for a userspace network stack.
#[derive(Parser)]
#[command(name = "pktkit", version, about)]
struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the stack in the foreground until SIGINT/SIGTERM.
    Run(RunArgs),
    #[command(flatten)]
    Ctl(pktkit::ctl::client::CtlCmd),
    /// Make a new driver crate from a template.
    New {
        #[command(subcommand)]
        which: NewCmd,
    },
    /// List every available driver with its kind, description and options.
    Drivers {
        /// One JSON object per driver, in an array.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
    /// Porting NetBSD drivers.
    Port {
        #[command(subcommand)]
        which: PortCmd,
    },
    /// PCI devices for the VFIO harness.
    Harness {
        #[command(subcommand)]
        which: HarnessCmd,
    },
}

#[derive(Subcommand)]
enum NewCmd {
    /// A native Rust PCI driver (templates/native-driver).
    Native {
        /// Driver name (`-d NAME`); the crate is pktkit-drv-NAME.
        name: String,
        /// Interface prefix (default: the name).
        #[arg(long)]
        prefix: Option<String>,
        /// PCI vendor id it attaches to.
        #[arg(long, default_value = "0x8086", value_parser = parse_hex16)]
        vendor: u16,
        /// PCI device id it attaches to.
        #[arg(long, default_value = "0x100e", value_parser = parse_hex16)]
        device: u16,
        /// Make a standalone crate here instead of native/drivers/NAME.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// A NetBSD-style C driver through compat-bsd (templates/ported-driver):
    /// if_NAME.c, NAMEreg.h, build.rs and the crate pktkit-ported-NAME.
    Ported {
        /// Driver name (`-d NAME`).
        name: String,
        /// Interface prefix (default: the name).
        #[arg(long)]
        prefix: Option<String>,
        /// PCI vendor id it matches.
        #[arg(long, default_value = "0x10ec", value_parser = parse_hex16)]
        vendor: u16,
        /// PCI device id it matches.
        #[arg(long, default_value = "0x8139", value_parser = parse_hex16)]
        device: u16,
        /// Make a standalone crate here instead of ported/NAME.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// A legacy-ABI C driver (templates/legacy-driver): devn-NAME.c and a
    /// Makefile building devn-NAME.so for `-d legacy:PATH`.
    Legacy {
        /// Driver name; the files are devn-NAME.c and its Makefile.
        name: String,
        /// PCI vendor id it attaches to with pci=.
        #[arg(long, default_value = "0x10ec", value_parser = parse_hex16)]
        vendor: u16,
        /// PCI device id it attaches to.
        #[arg(long, default_value = "0x8029", value_parser = parse_hex16)]
        device: u16,
        /// Output directory (default: ./devn-NAME).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum PortCmd {
    /// Compile every .c in a NetBSD driver directory against compat-bsd and
    /// list, by subsystem, each missing header, type, macro and function and
    /// each symbol the KPI does not export. Exit 0: nothing missing; 1:
    /// something is; 2: bad input (no directory, no .c files, no compiler).
    Check {
        /// The driver directory (e.g. a copy of NetBSD's sys/dev/pci/ files).
        dir: std::path::PathBuf,
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn parse_hex16(s: &str) -> Result<u16, String> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    u16::from_str_radix(h, 16).map_err(|_| format!("'{s}' is not a 16-bit hex id"))
}

#[derive(Subcommand)]
enum HarnessCmd {
    /// Hand a PCI function to vfio-pci (loading the vfio modules if needed).
    Bind {
        /// PCI address, DDDD:BB:DD.F.
        bdf: String,
    },
    /// Give a PCI function back to its host driver.
    Unbind {
        /// PCI address, DDDD:BB:DD.F.
        bdf: String,
    },
    /// Run the conformance suite on a device under test and a peer on the
    /// same wire (`-d pair --peer pair`: one pair attach, pair0 is the DUT).
    Test {
        /// The device under test: NAME[,key=value...], e.g. e1000,pci=0000:00:02.0.
        #[arg(short = 'd', long = "driver")]
        dut: String,
        /// Its peer on the same wire: NAME[,key=value...].
        #[arg(long)]
        peer: String,
        /// Write the report as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Write the report as JUnit XML to this file.
        #[arg(long)]
        junit: Option<std::path::PathBuf>,
        /// The MAC the DUT must report (e.g. QEMU's mac=).
        #[arg(long)]
        mac: Option<String>,
        /// A shell command that drops the DUT's carrier when `{state}` in it
        /// reads `down` and restores it for `up` ({pci}: the DUT's pci=);
        /// runs the link_change check.
        #[arg(long)]
        link_cmd: Option<String>,
        /// Run only these checks (comma-separated; the rest are skipped).
        #[arg(long)]
        checks: Option<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Attach a driver: NAME[,key=value...] (repeatable).
    #[arg(short = 'd', long = "driver", required = true)]
    drivers: Vec<String>,
    /// Give an interface an address: IF=ADDR/PLEN (repeatable; several per interface).
    #[arg(long = "ip")]
    ips: Vec<String>,
    /// Run a DHCPv4 client on an interface (repeatable).
    #[arg(long = "dhcp")]
    dhcp: Vec<String>,
    /// Add a route: DEST/PLEN=GW (repeatable; 0.0.0.0/0=GW is the default route).
    #[arg(long = "route")]
    routes: Vec<String>,
    /// Built-in services to run: echo, discard (comma-separated).
    #[arg(long = "serve", value_delimiter = ',')]
    serve: Vec<String>,
    /// Forward everything received on A out of B: A:B (repeatable).
    #[arg(long = "forward")]
    forward: Vec<String>,
    /// Serialized-driver rule: per-driver or global.
    #[arg(long, default_value = "per-driver")]
    fallback: Fallback,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Buffers in the stack's pool.
    #[arg(long, default_value_t = 16384)]
    pool_buffers: usize,
    /// Stop by itself after this many seconds (for scripts).
    #[arg(long)]
    duration: Option<f64>,
    /// Instance name: the control socket is DIR/NAME.sock (see `pktkit instances`).
    #[arg(long, default_value = "default")]
    instance: String,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Forwarding between two ports on one core (testpmd's io mode).
    Fwd {
        /// Two ports as plain driver names: A,B (e.g. null,null).
        #[arg(long, conflicts_with = "port")]
        ports: Option<String>,
        /// One port with options, NAME[,key=value...]; give it twice.
        #[arg(long)]
        port: Vec<String>,
        /// Packets per burst.
        #[arg(long, default_value_t = 32)]
        burst: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Enter the ports under the runtime's driver locks with this
        /// serialized-driver rule: per-driver or global (default: no locks).
        #[arg(long)]
        fallback: Option<Fallback>,
        /// A driver attached beside the ports, not forwarded (repeatable):
        /// e.g. a serialized bsdnull, to measure what --fallback global costs.
        #[arg(long)]
        with: Vec<String>,
    },
    /// Nanoseconds per buffer for alloc+free, single and bulk 32.
    Pool {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.verbose);
    match cli.cmd {
        Cmd::New {
            which:
                NewCmd::Native {
                    name,
                    prefix,
                    vendor,
                    device,
                    dir,
                },
        } => cli::new_native(pktkit::new::NewNative {
            name,
            prefix,
            vendor,
            device,
            dir,
        }),
        Cmd::New {
            which:
                NewCmd::Legacy {
                    name,
                    vendor,
                    device,
                    dir,
                },
        } => cli::new_legacy(pktkit::new::NewLegacy {
            name,
            vendor,
            device,
            dir,
        }),
        Cmd::Port {
            which: PortCmd::Check { dir, json },
        } => cli::port_check(&dir, json),
        Cmd::New {
            which:
                NewCmd::Ported {
                    name,
                    prefix,
                    vendor,
                    device,
                    dir,
                },
        } => cli::new_ported(pktkit::new::NewPorted {
            name,
            prefix,
            vendor,
            device,
            dir,
        }),
        Cmd::Ctl(c) => pktkit::ctl::client::run(c),
        Cmd::Drivers { json } => {
            print!("{}", cli::drivers_listing(json));
            ExitCode::SUCCESS
        }
        Cmd::Run(a) => {
            let plan = RunPlan {
                drivers: a.drivers,
                ips: a.ips,
                dhcp: a.dhcp,
                routes: a.routes,
                serve: a.serve,
                forward: a.forward,
                fallback: a.fallback,
                workers: a.workers,
                pool_buffers: a.pool_buffers,
                duration: a.duration.map(Duration::from_secs_f64),
                instance: a.instance,
            };
            cli::run(plan)
        }
        Cmd::Bench {
            which:
                BenchCmd::Fwd {
                    ports,
                    port,
                    burst,
                    seconds,
                    json,
                    fallback,
                    with,
                },
        } => {
            let specs: Vec<String> = match ports {
                Some(p) => p.split(',').map(str::to_owned).collect(),
                None => port,
            };
            cli::bench_fwd(&specs, burst, seconds, json, fallback, &with)
        }
        Cmd::Bench {
            which: BenchCmd::Pool { json },
        } => cli::bench_pool(json),
        Cmd::Harness {
            which: HarnessCmd::Bind { bdf },
        } => cli::harness_bind(&bdf, true),
        Cmd::Harness {
            which: HarnessCmd::Unbind { bdf },
        } => cli::harness_bind(&bdf, false),
        Cmd::Harness {
            which:
                HarnessCmd::Test {
                    dut,
                    peer,
                    json,
                    junit,
                    mac,
                    link_cmd,
                    checks,
                },
        } => cli::harness_test(&cli::TestPlan {
            dut,
            peer,
            json,
            junit,
            mac,
            link_cmd,
            checks,
        }),
    }
}
