//! The conformance suite over the software `pair` driver: every check that
//! applies passes, the reports are well formed, and drivers that lose or
//! reorder frames fail the checks that should catch them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pktkit_drv_pair::PairDriver;
use pktkit_harness::conformance::{self, Devices, Outcome, Report, SuiteConfig};
use pktkit_native::{
    Capabilities, Concurrency, Control, Driver, DriverError, LinkState, OwnerId, PacketBatch, Pool,
    PoolConfig, QueueCounters, Queues, TxQueue,
};

const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x00];

fn pool(name: &str) -> (Pool, [OwnerId; 2]) {
    let pool = Pool::new(&PoolConfig::new(name, 8192)).unwrap();
    let owners = [
        pool.register_owner("pair0").unwrap(),
        pool.register_owner("pair1").unwrap(),
    ];
    (pool, owners)
}

fn quick(cfg: SuiteConfig) -> SuiteConfig {
    SuiteConfig {
        fps_time: Duration::from_millis(300),
        idle: Duration::from_millis(500),
        reattach_rounds: 10,
        peer_in_same_attach: true,
        dut_label: "pair0".into(),
        peer_label: "pair1".into(),
        ..cfg
    }
}

/// Runs the suite over a pair whose DUT side is wrapped by `wrap`.
fn run_pair(
    name: &str,
    cfg: SuiteConfig,
    wrap: fn(PairDriver) -> Box<dyn Driver>,
) -> (Report, Pool) {
    let (pool, owners) = pool(name);
    let mut attach = || -> Result<Devices, DriverError> {
        let (a, b) = PairDriver::new_pair(1, [MAC, flip(MAC)], owners)?;
        Ok(Devices {
            dut: wrap(a),
            peer: Some(Box::new(b)),
        })
    };
    let report = conformance::run(&quick(cfg), &pool, owners, &mut attach);
    println!("{}", report.table());
    (report, pool)
}

fn flip(mut m: [u8; 6]) -> [u8; 6] {
    m[5] ^= 1;
    m
}

#[test]
fn pair_passes_every_applicable_check() {
    let cfg = SuiteConfig {
        expected_mac: Some(MAC),
        ..SuiteConfig::default()
    };
    let (r, pool) = run_pair("conf-pass", cfg, |d| Box::new(d));
    for name in [
        "attach_detach",
        "mac",
        "link_up",
        "frames",
        "ring_wrap",
        "multicast",
        "promisc",
        "counters",
        "interrupt_idle",
        "fps",
        "reattach",
        "detach_at_end",
    ] {
        let c = r.check(name).unwrap_or_else(|| panic!("no check {name}"));
        assert_eq!(c.outcome, Outcome::Pass, "{name}: {}", c.evidence);
    }
    // What pair cannot do is skipped, with the reason.
    for name in ["link_change", "reset", "dma_fault"] {
        let c = r.check(name).unwrap();
        assert_eq!(c.outcome, Outcome::Skip, "{name}: {}", c.evidence);
        assert!(!c.evidence.is_empty());
    }
    assert_eq!(r.checks.len(), conformance::CHECKS.len());
    assert!(r.passed());
    // Numbers, not words: ring wrap moved 4 x 1024 frames each way.
    let wrap = &r.check("ring_wrap").unwrap().evidence;
    assert!(wrap.contains("4096 frames each way"), "{wrap}");
    assert!(r.check("frames").unwrap().evidence.contains("jumbo"));
    assert_eq!(pool.available(), pool.capacity());

    // The reports: JSON reads back, JUnit is well-formed XML.
    let back = Report::from_json(&r.to_json()).unwrap();
    assert_eq!(back.checks, r.checks_rounded());
    let x = r.to_junit();
    check_xml(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    assert_eq!(x.matches("<testcase ").count(), conformance::CHECKS.len());
    assert_eq!(x.matches("<skipped ").count(), 3);
    assert_eq!(x.matches("<failure ").count(), 0);
}

#[test]
fn wrong_mac_fails_the_mac_check() {
    let cfg = SuiteConfig {
        expected_mac: Some([0x52, 0x54, 0, 0x12, 0x34, 0x01]),
        reattach_rounds: 1,
        ..SuiteConfig::default()
    };
    let (r, _pool) = run_pair("conf-mac", cfg, |d| Box::new(d));
    let c = r.check("mac").unwrap();
    assert_eq!(c.outcome, Outcome::Fail);
    assert!(
        c.evidence.contains("expected 52:54:00:12:34:01"),
        "{}",
        c.evidence
    );
    assert!(!r.passed());
    let x = r.to_junit();
    check_xml(&x).unwrap();
    // The re-attached DUT is held to the expected MAC too.
    assert_eq!(r.check("reattach").unwrap().outcome, Outcome::Fail);
    assert_eq!(x.matches("<failure ").count(), r.count(Outcome::Fail));
    assert_eq!(r.count(Outcome::Fail), 2);
}

#[test]
fn a_driver_that_drops_every_100th_frame_fails() {
    let cfg = SuiteConfig {
        reattach_rounds: 1,
        ..SuiteConfig::default()
    };
    let (r, _pool) = run_pair("conf-drop", cfg, |d| {
        Box::new(Faulty::new(d, Misdeed::Drop))
    });
    for name in ["frames", "ring_wrap", "counters"] {
        let c = r.check(name).unwrap();
        assert_eq!(c.outcome, Outcome::Fail, "{name}: {}", c.evidence);
    }
    let wrap = &r.check("ring_wrap").unwrap().evidence;
    // About 1 in 100 of the DUT's frames went missing (the counter also
    // runs over probes), and the loss is what the evidence reports.
    assert!(
        !wrap.contains("DUT->peer: sent 4096 received 4096"),
        "{wrap}"
    );
    assert!(
        wrap.contains("lost 40 ") || wrap.contains("lost 41 "),
        "{wrap}"
    );
    assert!(!r.passed());
}

#[test]
fn a_driver_that_reorders_fails() {
    let cfg = SuiteConfig {
        reattach_rounds: 1,
        ..SuiteConfig::default()
    };
    let (r, _pool) = run_pair("conf-reorder", cfg, |d| {
        Box::new(Faulty::new(d, Misdeed::Reorder))
    });
    for name in ["frames", "ring_wrap"] {
        let c = r.check(name).unwrap();
        assert_eq!(c.outcome, Outcome::Fail, "{name}: {}", c.evidence);
        // The DUT's direction is where the frames were reordered.
        let out = c.evidence.split("DUT->peer:").nth(1).unwrap_or_default();
        let out = out.split(';').next().unwrap_or_default();
        assert!(!out.contains("reordered 0 "), "{out}");
    }
}

#[test]
fn a_failed_first_attach_is_one_failure() {
    let (pool, owners) = pool("conf-noattach");
    let mut attach =
        || -> Result<Devices, DriverError> { Err(DriverError::NoDevice("0000:00:1d.7".into())) };
    let r = conformance::run(&SuiteConfig::default(), &pool, owners, &mut attach);
    assert_eq!(r.count(Outcome::Fail), 1);
    assert!(r.check("attach_detach").unwrap().evidence.contains("1d.7"));
    assert_eq!(r.count(Outcome::Skip), conformance::CHECKS.len() - 1);
}

// ---------------------------------------------------------------------------
// A deliberately broken driver: pair with a transmit queue that misbehaves.

#[derive(Clone, Copy)]
enum Misdeed {
    /// Takes every 100th frame and frees it without sending (or counting) it.
    Drop,
    /// Holds every 50th frame back and sends it after the next one.
    Reorder,
}

struct Faulty {
    inner: PairDriver,
    misdeed: Misdeed,
}

impl Faulty {
    fn new(inner: PairDriver, misdeed: Misdeed) -> Faulty {
        Faulty { inner, misdeed }
    }
}

impl Driver for Faulty {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn concurrency(&self) -> Concurrency {
        self.inner.concurrency()
    }
    fn mac(&self) -> [u8; 6] {
        self.inner.mac()
    }
    fn start(&mut self) -> Result<Queues, DriverError> {
        let mut q = self.inner.start()?;
        let misdeed = self.misdeed;
        q.tx =
            q.tx.into_iter()
                .map(|inner| {
                    Box::new(FaultyTx {
                        inner,
                        misdeed,
                        seen: AtomicU64::new(0),
                        held: PacketBatch::with_limit(1),
                    }) as Box<dyn TxQueue>
                })
                .collect();
        Ok(q)
    }
    fn stop(&mut self, queues: Queues) {
        self.inner.stop(queues)
    }
    fn link(&mut self) -> LinkState {
        self.inner.link()
    }
    fn control(&mut self, req: &Control) -> Result<(), DriverError> {
        self.inner.control(req)
    }
    fn describe(&self) -> Vec<(String, String)> {
        self.inner.describe()
    }
}

struct FaultyTx {
    inner: Box<dyn TxQueue>,
    misdeed: Misdeed,
    seen: AtomicU64,
    held: PacketBatch,
}

impl TxQueue for FaultyTx {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        // One frame at a time, so the misdeed hits exact positions.
        let mut took = 0;
        while let Some(m) = batch.pop_front() {
            let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
            let mut one = PacketBatch::with_limit(1);
            match self.misdeed {
                Misdeed::Drop if n.is_multiple_of(100) => {
                    drop(m);
                    took += 1;
                    continue;
                }
                Misdeed::Reorder if n.is_multiple_of(50) && self.held.is_empty() => {
                    let _ = self.held.push(m);
                    took += 1;
                    continue;
                }
                _ => {
                    let _ = one.push(m);
                }
            }
            self.inner.tx_burst(&mut one);
            if !self.held.is_empty() {
                self.inner.tx_burst(&mut self.held);
            }
            took += 1;
        }
        took
    }
    fn counters(&self) -> QueueCounters {
        self.inner.counters()
    }
    fn reclaim(&mut self) {
        // A held frame goes out late rather than never.
        if !self.held.is_empty() {
            self.inner.tx_burst(&mut self.held);
        }
    }
}

// ---------------------------------------------------------------------------
// A minimal XML well-formedness check: one root, tags balanced and nested,
// attributes quoted, only the five entities and numeric references.

fn check_xml(x: &str) -> Result<(), String> {
    let body = x
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .ok_or("no XML declaration")?;
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt])?;
        let gt = rest[lt..].find('>').ok_or("unterminated tag")? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .ok_or(format!("</{name}> without an open tag"))?;
            if open != name {
                return Err(format!("<{open}> closed by </{name}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("bad tag name '{name}'"));
        }
        check_attrs(attrs)?;
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name.to_owned());
        }
    }
    check_text(rest)?;
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

fn check_attrs(mut a: &str) -> Result<(), String> {
    loop {
        a = a.trim_start();
        if a.is_empty() {
            return Ok(());
        }
        let eq = a
            .find("=\"")
            .ok_or(format!("attribute not name=\"...\": {a}"))?;
        let name = &a[..eq];
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("bad attribute name '{name}'"));
        }
        let v = &a[eq + 2..];
        let end = v.find('"').ok_or("unterminated attribute")?;
        check_text(&v[..end])?;
        if v[..end].contains('<') {
            return Err("'<' in an attribute".into());
        }
        a = &v[end + 1..];
    }
}

fn check_text(t: &str) -> Result<(), String> {
    if t.contains('>') && t.contains('<') {
        return Err(format!("markup in text: {t}"));
    }
    let mut rest = t;
    while let Some(amp) = rest.find('&') {
        let semi = rest[amp..].find(';').ok_or("'&' without ';'")? + amp;
        let ent = &rest[amp + 1..semi];
        let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
            || ent
                .strip_prefix('#')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(format!("bad entity &{ent};"));
        }
        rest = &rest[semi + 1..];
    }
    if t.chars()
        .any(|c| (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("control character in text".into());
    }
    Ok(())
}

#[test]
fn the_xml_checker_rejects_bad_xml() {
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    assert!(check_xml(&format!("{decl}<a><b/></a>\n")).is_ok());
    assert!(check_xml(&format!("{decl}<a><b></a></b>")).is_err());
    assert!(check_xml(&format!("{decl}<a x=\"1 & 2\"/>")).is_err());
    assert!(check_xml(&format!("{decl}<a>x</a><b/>")).is_err());
    assert!(check_xml(&format!("{decl}<a>&bogus;</a>")).is_err());
}

trait Rounded {
    fn checks_rounded(&self) -> Vec<conformance::Check>;
}

impl Rounded for Report {
    /// The checks as they read back from JSON (durations are f64 seconds).
    fn checks_rounded(&self) -> Vec<conformance::Check> {
        self.checks
            .iter()
            .map(|c| conformance::Check {
                duration: Duration::from_secs_f64(c.duration.as_secs_f64()),
                ..c.clone()
            })
            .collect()
    }
}
