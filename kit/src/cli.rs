//! What the `pktkit` subcommands do; `main.rs` only parses arguments.
//!
//! Every user input is checked before anything starts: an unknown driver, a
//! bad option, a malformed address, or a device that cannot be attached
//! prints a clear error and exits with code 2.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pktkit_native::options::DriverSpec;

use crate::iface::{fmt_mac, IfEvent};
use crate::registry;
use crate::runtime::Fallback;
use crate::stack::{Stack, StackConfig};

/// Exit code for bad input (as clap uses).
pub const EXIT_USAGE: u8 = 2;

/// Everything `pktkit run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// `-d` arguments.
    pub drivers: Vec<String>,
    /// `--ip IF=ADDR/PLEN`.
    pub ips: Vec<String>,
    /// `--dhcp IF`.
    pub dhcp: Vec<String>,
    /// `--route DEST/PLEN=GW`.
    pub routes: Vec<String>,
    /// `--serve` names.
    pub serve: Vec<String>,
    /// `--forward A:B`.
    pub forward: Vec<String>,
    /// `--fallback`.
    pub fallback: Fallback,
    /// `--workers`.
    pub workers: usize,
    /// `--pool-buffers`.
    pub pool_buffers: usize,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--instance`: names the control socket.
    pub instance: String,
}

/// An address with prefix length, `ADDR/PLEN`.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}' is not ADDR/PLEN"))?;
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("'{a}' is not an IP address"))?;
    let plen: u8 = p
        .parse()
        .map_err(|_| format!("'{p}' is not a prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if plen > max {
        return Err(format!("prefix length {plen} is longer than {max}"));
    }
    Ok((addr, plen))
}

/// `IF=ADDR/PLEN`.
pub fn parse_ip_arg(s: &str) -> Result<(String, IpAddr, u8), String> {
    let (ifname, cidr) = s
        .split_once('=')
        .ok_or_else(|| format!("--ip '{s}' is not IF=ADDR/PLEN"))?;
    let (a, p) = parse_cidr(cidr)?;
    Ok((ifname.to_owned(), a, p))
}

/// `DEST/PLEN=GW`.
pub fn parse_route_arg(s: &str) -> Result<((IpAddr, u8), IpAddr), String> {
    let (dest, gw) = s
        .split_once('=')
        .ok_or_else(|| format!("--route '{s}' is not DEST/PLEN=GW"))?;
    let d = parse_cidr(dest)?;
    let g: IpAddr = gw
        .parse()
        .map_err(|_| format!("'{gw}' is not a gateway address"))?;
    if d.0.is_ipv4() != g.is_ipv4() {
        return Err(format!("--route '{s}' mixes IPv4 and IPv6"));
    }
    Ok((d, g))
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("pktkit: {msg}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs the stack until SIGINT/SIGTERM (or `duration`).
pub fn run(plan: RunPlan) -> ExitCode {
    // 1. Check everything that can be checked without touching the system.
    let mut specs = Vec::new();
    for d in &plan.drivers {
        let spec = match DriverSpec::parse(d) {
            Ok(s) => s,
            Err(e) => return usage_error(format!("-d {d}: {e}")),
        };
        if let Err(e) = Stack::check(&spec) {
            return usage_error(e);
        }
        specs.push(spec);
    }
    let mut ips = Vec::new();
    for s in &plan.ips {
        match parse_ip_arg(s) {
            Ok(v) => ips.push(v),
            Err(e) => return usage_error(e),
        }
    }
    let mut routes = Vec::new();
    for s in &plan.routes {
        match parse_route_arg(s) {
            Ok(v) => routes.push(v),
            Err(e) => return usage_error(e),
        }
    }
    let mut services = Vec::new();
    for s in &plan.serve {
        match s.parse::<crate::proto::Service>() {
            Ok(v) => services.push(v),
            Err(e) => return usage_error(e),
        }
    }
    let mut forwards = Vec::new();
    for s in &plan.forward {
        match s.split_once(':') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => {
                forwards.push((a.to_owned(), b.to_owned()))
            }
            _ => return usage_error(format!("--forward '{s}' is not A:B")),
        }
    }

    // 2. Signals are taken synchronously by this thread; block them before
    // the runtime's threads exist so they inherit the mask.
    let sigs = block_signals();

    // 3. Attach; any failure here undoes what was attached and exits 2.
    let cfg = StackConfig {
        workers: plan.workers,
        fallback: plan.fallback,
        pool_buffers: plan.pool_buffers,
        ..StackConfig::default()
    };
    let stack = match Stack::new(&cfg) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let events = stack.subscribe();
    for spec in &specs {
        if let Err(e) = stack.attach(spec) {
            stack.shutdown();
            return usage_error(e);
        }
    }
    let names: Vec<String> = stack.interfaces().iter().map(|i| i.name.clone()).collect();
    let known = |n: &str| names.iter().any(|x| x == n);
    for n in ips
        .iter()
        .map(|i| &i.0)
        .chain(plan.dhcp.iter())
        .chain(forwards.iter().flat_map(|f| [&f.0, &f.1]))
    {
        if !known(n) {
            stack.shutdown();
            return usage_error(format!("no interface '{n}' (have: {})", names.join(", ")));
        }
    }

    // The instance's control socket is claimed once every input has been
    // checked (so input errors are reported as such even while another
    // stack of this instance runs) and before anything starts.
    let listener = match crate::ctl::Listener::bind(&plan.instance) {
        Ok(l) => l,
        Err(e) => {
            stack.shutdown();
            return usage_error(e);
        }
    };

    // 4. Start.
    let started = (|| -> Result<(), crate::stack::StackError> {
        for n in &names {
            stack.up(n)?;
        }
        let forwarded: Vec<&String> = forwards.iter().map(|f| &f.0).collect();
        for n in names.iter().filter(|n| !forwarded.contains(n)) {
            stack.attach_proto(n)?;
        }
        for (ifname, addr, plen) in &ips {
            stack.add_address(ifname, *addr, *plen)?;
        }
        for ifname in &plan.dhcp {
            stack.enable_dhcp(ifname)?;
        }
        for ((dest, plen), gw) in &routes {
            stack.add_route(*dest, *plen, *gw)?;
        }
        for s in &services {
            stack.serve(*s)?;
        }
        for (a, b) in &forwards {
            stack.forward(a, b)?;
        }
        Ok(())
    })();
    if let Err(e) = started {
        stack.shutdown();
        return usage_error(e);
    }
    for i in stack.interfaces() {
        let st = i.state();
        let addrs: Vec<String> = st.addrs.iter().map(|(a, p)| format!("{a}/{p}")).collect();
        log::info!(
            "{}: {} driver {} ({}), mac {}, mtu {}, link {}{}",
            i.name,
            i.kind,
            i.driver,
            match i.concurrency() {
                pktkit_native::Concurrency::MpSafe => "mp-safe",
                pktkit_native::Concurrency::Serialized => "serialized",
            },
            fmt_mac(&st.mac),
            st.mtu,
            if st.link.up { "up" } else { "down" },
            if addrs.is_empty() {
                String::new()
            } else {
                format!(", inet {}", addrs.join(" "))
            }
        );
    }
    eprintln!("pktkit: running with {} (Ctrl-C to stop)", names.join(", "));
    // The control thread shares the stack until it is stopped (step 6).
    let stack = std::sync::Arc::new(stack);
    let server = match listener.serve(stack.clone()) {
        Ok(s) => s,
        Err(e) => {
            crate::ctl::shutdown_stack(stack);
            return usage_error(e);
        }
    };
    eprintln!(
        "pktkit: instance {} control socket {}",
        plan.instance,
        server.path().display()
    );

    // 5. Wait for a signal, logging events.
    let t0 = Instant::now();
    loop {
        while let Ok(ev) = events.try_recv() {
            match ev {
                IfEvent::Link { ifname, state } => eprintln!(
                    "pktkit: {ifname}: link {}{}",
                    if state.up { "up" } else { "down" },
                    if state.up && state.speed_mbps > 0 {
                        format!(" {} Mb/s", state.speed_mbps)
                    } else {
                        String::new()
                    }
                ),
                IfEvent::Attached(n) => eprintln!("pktkit: {n}: attached"),
                IfEvent::Detached(n) => eprintln!("pktkit: {n}: detached"),
            }
        }
        if let Some(sig) = wait_signal(&sigs, Duration::from_millis(200)) {
            eprintln!("pktkit: signal {sig}, stopping");
            break;
        }
        if plan.duration.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
    }

    // 6. Counters, then stop.
    print!("{}", counters_table(&stack));
    let _ = std::io::stdout().flush();
    drop(server);
    crate::ctl::shutdown_stack(stack);
    ExitCode::SUCCESS
}

/// The per-interface counters table printed when `run` ends.
pub fn counters_table(stack: &Stack) -> String {
    let mut s = format!(
        "{:<10} {:>12} {:>14} {:>8} {:>8} {:>12} {:>14} {:>8} {:>8}\n",
        "iface",
        "rx-packets",
        "rx-bytes",
        "rx-err",
        "rx-drop",
        "tx-packets",
        "tx-bytes",
        "tx-err",
        "tx-drop"
    );
    for i in stack.interfaces() {
        let c = i.counters();
        s.push_str(&format!(
            "{:<10} {:>12} {:>14} {:>8} {:>8} {:>12} {:>14} {:>8} {:>8}\n",
            i.name,
            c.rx.packets,
            c.rx.bytes,
            c.rx.errors,
            c.rx.drops,
            c.tx.packets,
            c.tx.bytes,
            c.tx.errors,
            c.tx.drops + c.stack_drops
        ));
    }
    s
}

/// The `pktkit drivers` listing.
pub fn drivers_listing(json: bool) -> String {
    let all = registry::builtin();
    if json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "prefix": f.prefix,
                    "kind": f.kind.to_string(),
                    "description": f.description,
                    "devices": f.devices,
                    "options": f.options.iter().map(|o| serde_json::json!({
                        "key": o.key, "help": o.help, "required": o.required
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return format!("{}\n", serde_json::Value::Array(v));
    }
    let mut s = String::new();
    for f in all {
        s.push_str(&format!("{:<10} {:<7} {}\n", f.name, f.kind, f.description));
        for o in f.options {
            s.push_str(&format!(
                "    {:<14} {}{}\n",
                o.key,
                o.help,
                if o.required { " (required)" } else { "" }
            ));
        }
    }
    s
}

/// Installs a small stderr logger; `-v` raises the level.
pub fn init_logging(verbose: u8) {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.level() <= log::max_level()
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                eprintln!(
                    "pktkit: {}: {}",
                    r.level().as_str().to_lowercase(),
                    r.args()
                );
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let level = match (verbose, std::env::var("PKTKIT_LOG").ok().as_deref()) {
        (_, Some("debug")) | (2.., _) => log::LevelFilter::Debug,
        (_, Some("info")) | (1, _) => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// The signals `run` stops on.
pub struct SignalSet(libc::sigset_t);

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and threads it spawns later).
pub fn block_signals() -> SignalSet {
    // SAFETY: sigset_t is plain data; the libc calls initialise and use it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        SignalSet(set)
    }
}

/// Waits up to `timeout` for one of the signals; returns its number.
pub fn wait_signal(set: &SignalSet, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set is initialised; info may be null; ts is live.
    let sig = unsafe { libc::sigtimedwait(&set.0, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// `pktkit bench fwd`.
///
/// With `fallback`, every port is entered under a driver lock of that
/// policy, and the drivers of `with` are attached beside the ports (not
/// started, not forwarded) and registered on the same policy: a serialized
/// one there makes `global` take the global lock around every burst.
pub fn bench_fwd(
    ports: &[String],
    burst: usize,
    seconds: f64,
    json: bool,
    fallback: Option<Fallback>,
    with: &[String],
) -> ExitCode {
    if ports.len() != 2 {
        return usage_error(format!(
            "bench fwd needs exactly two ports, got {}",
            ports.len()
        ));
    }
    if burst == 0 || burst > pktkit_native::BATCH_MAX {
        return usage_error(format!("--burst must be 1..={}", pktkit_native::BATCH_MAX));
    }
    if !(seconds > 0.0 && seconds.is_finite()) {
        return usage_error("--seconds must be positive");
    }
    let pool = match pktkit_native::Pool::new(&pktkit_native::PoolConfig::new("bench", 8192)) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    let opener: std::sync::Arc<dyn pktkit_native::device::PciOpener> =
        std::sync::Arc::new(crate::pci::VfioOpener::new(pool.clone()));
    let mut drivers = Vec::new();
    let mut labels = Vec::new();
    let mut units: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for p in ports.iter().chain(with) {
        let spec = match DriverSpec::parse(p) {
            Ok(s) => s,
            Err(e) => return usage_error(format!("port {p}: {e}")),
        };
        if let Err(e) = Stack::check(&spec) {
            return usage_error(e);
        }
        let Some(f) = registry::find(&spec.name) else {
            return usage_error(format!("unknown driver '{}'", spec.name));
        };
        let unit = units.entry(f.prefix).or_insert(0);
        let ifnames: Vec<String> = (0..f.devices)
            .map(|i| format!("{}{}", f.prefix, *unit + i as u32))
            .collect();
        *unit += f.devices as u32;
        let owners = ifnames
            .iter()
            .map(|n| pool.register_owner(n))
            .collect::<Result<Vec<_>, _>>();
        let owners = match owners {
            Ok(o) => o,
            Err(e) => return usage_error(e),
        };
        let args = pktkit_native::AttachArgs {
            options: spec.options.clone(),
            pool: pool.clone(),
            owners,
            ifnames: ifnames.clone(),
            pci: Some(opener.clone()),
        };
        match (f.create)(&args) {
            Ok(d) => {
                // A driver of several devices (pair) gives its first one here.
                labels.push(ifnames[0].clone());
                drivers.extend(d.into_iter().take(1));
            }
            Err(e) => return usage_error(format!("driver {}: {e}", spec.name)),
        }
    }
    let extras = drivers.split_off(2);
    labels.truncate(2);
    let mut cfg = crate::bench::FwdConfig::new(burst, seconds);
    cfg.labels = labels;
    let policy = fallback.map(crate::runtime::LockPolicy::new);
    let extra_locks: Vec<crate::runtime::DriverLock> = match &policy {
        Some(p) => extras
            .iter()
            .map(|d| crate::runtime::DriverLock::attach(d.concurrency(), p))
            .collect(),
        None => Vec::new(),
    };
    cfg.policy = policy;
    let result = crate::bench::fwd(drivers, &cfg);
    for l in &extra_locks {
        l.detach();
    }
    drop(extras);
    match result {
        Ok(r) => {
            if json {
                println!("{}", r.to_json());
            } else {
                println!("{r}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// `pktkit bench pool`.
pub fn bench_pool(json: bool) -> ExitCode {
    match crate::bench::pool(&crate::bench::PoolBenchConfig::default()) {
        Ok(r) => {
            if json {
                println!("{}", r.to_json());
            } else {
                println!("{r}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// `pktkit new native NAME`.
pub fn new_native(req: crate::new::NewNative) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_default();
    match crate::new::new_native(&req, &cwd) {
        Ok(dir) => {
            println!("created {} (driver '{}')", dir.display(), req.name);
            if req.dir.is_none() {
                println!("registered: rebuild pktkit and `pktkit drivers` lists it");
            }
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// `pktkit new ported NAME`.
pub fn new_ported(req: crate::new::NewPorted) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_default();
    match crate::new::new_ported(&req, &cwd) {
        Ok(dir) => {
            println!(
                "created {} (NetBSD-style driver '{}'); `pktkit port check {}` \
                 lists what the KPI lacks",
                dir.display(),
                req.name,
                dir.display()
            );
            if req.dir.is_none() {
                println!("registered: rebuild pktkit and `pktkit drivers` lists it");
            }
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// `pktkit new legacy NAME`.
pub fn new_legacy(req: crate::new::NewLegacy) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_default();
    match crate::new::new_legacy(&req, &cwd) {
        Ok(dir) => {
            println!(
                "created {}/devn-{}.c and its Makefile: `make -C {}` builds devn-{}.so \
                 for -d legacy:PATH",
                dir.display(),
                req.name,
                dir.display(),
                req.name
            );
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// `pktkit harness bind|unbind BDF`: hands a PCI function to vfio-pci (or
/// back to its driver).
pub fn harness_bind(bdf: &str, bind: bool) -> ExitCode {
    let addr: pktkit_native::device::PciAddress = match bdf.parse() {
        Ok(a) => a,
        Err(e) => return usage_error(e),
    };
    let r = if bind {
        pktkit_harness::bind(addr).map(|o| format!("{addr}: {o:?}"))
    } else {
        pktkit_harness::unbind(addr).map(|d| {
            format!(
                "{addr}: unbound{}",
                d.map(|d| format!(", back to {d}")).unwrap_or_default()
            )
        })
    };
    match r {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// What `pktkit harness test` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct TestPlan {
    /// `-d`: the device under test, `NAME[,key=value...]`.
    pub dut: String,
    /// `--peer`: its peer on the same wire.
    pub peer: String,
    /// `--json FILE`.
    pub json: Option<std::path::PathBuf>,
    /// `--junit FILE`.
    pub junit: Option<std::path::PathBuf>,
    /// `--mac`: the MAC the DUT must report.
    pub mac: Option<String>,
    /// `--link-cmd`: drops (`{state}` = down) and restores (up) the DUT's
    /// carrier; `{pci}` is replaced by the DUT's `pci=` option.
    pub link_cmd: Option<String>,
    /// `--checks`: run only these checks (comma-separated names).
    pub checks: Option<String>,
}

/// Buffers in the conformance suite's pool.
const TEST_POOL_BUFFERS: usize = 8192;

/// `pktkit harness test`: runs the conformance suite
/// (`pktkit_harness::conformance`) on a DUT and a peer, prints the table,
/// writes the reports; exit 1 when a check failed, 2 on bad input.
///
/// Both are created through the registry. When DUT and peer are the same
/// spec of a driver whose one attach makes two devices (`-d pair --peer
/// pair`), one attach makes both: the first device is the DUT (pair0), the
/// second its peer (pair1), and the re-attach check re-makes both.
/// Otherwise each attach is its own, and re-attach re-makes only the DUT.
pub fn harness_test(plan: &TestPlan) -> ExitCode {
    use pktkit_harness::conformance::{self, Devices, SuiteConfig};
    use pktkit_native::{AttachArgs, DriverError};

    let mut specs = Vec::new();
    for (what, s) in [("-d", &plan.dut), ("--peer", &plan.peer)] {
        let spec = match DriverSpec::parse(s) {
            Ok(v) => v,
            Err(e) => return usage_error(format!("{what} {s}: {e}")),
        };
        if let Err(e) = Stack::check(&spec) {
            return usage_error(e);
        }
        let Some(f) = registry::find(&spec.name) else {
            return usage_error(format!("unknown driver '{}'", spec.name));
        };
        specs.push((spec, f));
    }
    let expected_mac = match plan
        .mac
        .as_deref()
        .map(|m| (m, pktkit_native::options::parse_mac(m)))
    {
        None => None,
        Some((_, Some(m))) => Some(m),
        Some((m, None)) => return usage_error(format!("--mac '{m}' is not xx:xx:xx:xx:xx:xx")),
    };
    let only = match plan.checks.as_deref().map(|c| {
        c.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    }) {
        None => None,
        Some(names) => {
            if let Some(bad) = names
                .iter()
                .find(|n| !conformance::CHECKS.contains(&n.as_str()))
            {
                return usage_error(format!(
                    "--checks: no check '{bad}' (known: {})",
                    conformance::CHECKS.join(",")
                ));
            }
            Some(names)
        }
    };
    let (dut_spec, dut_f) = specs[0].clone();
    let (peer_spec, peer_f) = specs[1].clone();
    let one_attach = dut_spec == peer_spec && dut_f.devices >= 2;

    let pool = match pktkit_native::Pool::new(&pktkit_native::PoolConfig::new(
        "conformance",
        TEST_POOL_BUFFERS,
    )) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    let uses_pci = |s: &DriverSpec| s.options.contains_key("pci");
    let opener: Option<std::sync::Arc<dyn pktkit_native::device::PciOpener>> =
        (uses_pci(&dut_spec) || uses_pci(&peer_spec))
            .then(|| std::sync::Arc::new(crate::pci::VfioOpener::new(pool.clone())) as _);
    let name = |f: &pktkit_native::DriverFactory, unit: usize| format!("{}{unit}", f.prefix);
    let dut_if = name(dut_f, 0);
    let peer_if = if one_attach {
        name(peer_f, 1)
    } else if peer_f.prefix == dut_f.prefix {
        name(peer_f, dut_f.devices)
    } else {
        name(peer_f, 0)
    };
    let owners = match (pool.register_owner(&dut_if), pool.register_owner(&peer_if)) {
        (Ok(a), Ok(b)) => [a, b],
        (Err(e), _) | (_, Err(e)) => return usage_error(e),
    };
    let create = |spec: &DriverSpec,
                  f: &pktkit_native::DriverFactory,
                  owners: Vec<pktkit_native::OwnerId>,
                  ifnames: Vec<String>|
     -> Result<Vec<Box<dyn pktkit_native::Driver>>, DriverError> {
        let devs = (f.create)(&AttachArgs {
            options: spec.options.clone(),
            pool: pool.clone(),
            owners,
            ifnames,
            pci: opener.clone(),
        })?;
        if devs.is_empty() {
            return Err(DriverError::NoDevice(format!(
                "{}: attach made no device",
                f.name
            )));
        }
        Ok(devs)
    };
    let mut first = true;
    let mut attach = || -> Result<Devices, DriverError> {
        if one_attach {
            let mut d = create(
                &dut_spec,
                dut_f,
                owners.to_vec(),
                vec![dut_if.clone(), peer_if.clone()],
            )?
            .into_iter();
            let (Some(dut), peer) = (d.next(), d.next()) else {
                return Err(DriverError::NoDevice("attach made no device".into()));
            };
            return Ok(Devices { dut, peer });
        }
        // A driver of several devices gives its first one here.
        let dut = create(&dut_spec, dut_f, vec![owners[0]], vec![dut_if.clone()])?
            .into_iter()
            .next();
        let peer = if first {
            first = false;
            create(&peer_spec, peer_f, vec![owners[1]], vec![peer_if.clone()])?
                .into_iter()
                .next()
        } else {
            None
        };
        let dut = dut.ok_or_else(|| DriverError::NoDevice("attach made no device".into()))?;
        Ok(Devices { dut, peer })
    };
    let cfg = SuiteConfig {
        dut_label: format!("{dut_if} ({})", plan.dut),
        peer_label: format!("{peer_if} ({})", plan.peer),
        expected_mac,
        peer_in_same_attach: one_attach,
        // A command that names the DUT's PCI function is only for a DUT
        // that has one (the lab passes it for every run, pair included).
        link_cmd: plan.link_cmd.as_ref().and_then(|c| {
            match (c.contains("{pci}"), dut_spec.options.get("pci")) {
                (true, Some(bdf)) => Some(c.replace("{pci}", bdf)),
                (true, None) => None,
                (false, _) => Some(c.clone()),
            }
        }),
        only,
        ..SuiteConfig::default()
    };
    let report = conformance::run(&cfg, &pool, owners, &mut attach);
    print!("{}", report.table());
    let _ = std::io::stdout().flush();
    let mut write_failed = false;
    for (path, text) in [
        (&plan.json, report.to_json()),
        (&plan.junit, report.to_junit()),
    ] {
        if let Some(p) = path {
            if let Err(e) = std::fs::write(p, text) {
                eprintln!("pktkit: {}: {e}", p.display());
                write_failed = true;
            }
        }
    }
    if write_failed {
        return ExitCode::from(EXIT_USAGE);
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `pktkit port check DIR [--json]`: 0 nothing missing, 1 something is,
/// 2 bad input.
pub fn port_check(dir: &std::path::Path, json: bool) -> ExitCode {
    use pktkit_bsd::portcheck::{self, Group};
    let report = match portcheck::check(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pktkit port check: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        let groups: serde_json::Map<String, serde_json::Value> = Group::ALL
            .iter()
            .filter_map(|&g| {
                let gaps: Vec<serde_json::Value> = report
                    .in_group(g)
                    .map(|gap| {
                        serde_json::json!({
                            "kind": gap.kind.name(),
                            "name": gap.name,
                            "at": gap.place,
                        })
                    })
                    .collect();
                (!gaps.is_empty()).then(|| {
                    (
                        g.name().to_string(),
                        serde_json::json!({ "count": gaps.len(), "missing": gaps }),
                    )
                })
            })
            .collect();
        let v = serde_json::json!({
            "dir": report.dir.display().to_string(),
            "compiler": report.compiler,
            "files": report.files,
            "compiled": report.compiled,
            "missing": report.gaps.len(),
            "groups": groups,
        });
        println!("{v}");
    } else {
        print!("{report}");
    }
    if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_parsers() {
        assert_eq!(
            parse_ip_arg("tap0=192.0.2.1/24").unwrap(),
            ("tap0".into(), "192.0.2.1".parse().unwrap(), 24)
        );
        assert!(parse_ip_arg("tap0=192.0.2.1").is_err());
        assert!(parse_ip_arg("tap0=192.0.2.1/33").is_err());
        assert!(parse_ip_arg("192.0.2.1/24").is_err());
        assert_eq!(parse_cidr("fe80::1/64").unwrap().1, 64);
        let ((d, p), g) = parse_route_arg("0.0.0.0/0=192.0.2.254").unwrap();
        assert_eq!(
            (d.to_string(), p, g.to_string()),
            ("0.0.0.0".into(), 0, "192.0.2.254".into())
        );
        assert!(parse_route_arg("0.0.0.0/0=fe80::1").is_err());
    }
}
