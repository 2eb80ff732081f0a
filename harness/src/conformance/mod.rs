//! The conformance suite: drives a device under test (DUT) and a peer on
//! the same wire through the driver contract only, and checks that the DUT
//! behaves as `pktkit_native::driver` says, each check named, with an
//! outcome and the numbers behind it.
//!
//! The caller attaches the drivers (so this crate needs no registry):
//! [`run`] takes a closure that returns a freshly attached DUT, and the
//! peer on the first call. It calls it again for the re-attach check; with
//! [`SuiteConfig::peer_in_same_attach`] (the `pair` driver, whose one
//! attach makes both ends) every call must return both and the suite drops
//! both before calling it.
//!
//! The checks, in order (names as in the report):
//!
//! | check | what passes |
//! |---|---|
//! | `attach_detach` | start gives the queues the capabilities promise; after stop the DUT's owner holds no buffer and the pool is full but for the peer's |
//! | `mac` | the MAC is the one expected (`--mac`), else a valid unicast address that stays the same across a restart |
//! | `link_up` | the DUT reports link up within the settle time |
//! | `link_change` | with a link command ([`SuiteConfig::link_cmd`]: it drops and restores the DUT's carrier, e.g. the lab's `set_link` on QEMU's monitor or a switch port), the DUT reports the carrier going down and coming back, each through [`Driver::service`]'s `link_changed`, and frames pass again; skipped without one |
//! | `frames` | every size 60..=1514 (and jumbo sizes up to the smaller max MTU) arrives intact, both ways |
//! | `ring_wrap` | max(4 x ring, 1024) frames each way, paced to the ring, none lost, reordered or damaged |
//! | `multicast` | frames to an unjoined group are dropped without promisc, received after `SetMulticast` |
//! | `promisc` | frames to another unicast MAC are dropped, received after `SetPromisc(true)`, dropped again after `SetPromisc(false)` |
//! | `counters` | the DUT's queue counters grow by exactly the packets and bytes sent and received |
//! | `interrupt_idle` | armed and asleep on the wait fd for [`SuiteConfig::idle`] the thread uses < 5 % CPU, and one frame from the peer wakes it |
//! | `fps` | DUT to peer for [`SuiteConfig::fps_time`], burst 32: frames per second (passes when frames arrive) |
//! | `reset` | stop + [`Driver::reset`] + start restores traffic (skipped when unsupported) |
//! | `dma_fault` | a DMA to an unmapped IOVA ([`Fault::RxBufferIova`]) shows up as a DMAR fault in the kernel log, and traffic works after a restart (skipped when unsupported) |
//! | `reattach` | [`SuiteConfig::reattach_rounds`] detach/attach rounds, each leaving no buffer behind; traffic after the last |
//! | `detach_at_end` | with both ends detached the pool is full |
//!
//! Test frames carry EtherType 0x88b5, a phase number (frames left over
//! from an earlier check are not counted), a sequence number, their length
//! and a pattern derived from them, so loss, reordering, duplication and
//! damage are all seen (see [`wire`]).

mod kmsg;
#[allow(unsafe_code)] // poll and getrusage
mod os;
mod report;
pub mod wire;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pktkit_native::{
    Capabilities, Concurrency, Control, Driver, DriverError, Fault, LinkState, OwnerId,
    PacketBatch, Pool, Queues,
};

pub use kmsg::{is_dma_fault, KernelLog};
pub use report::{xml_escape, Check, Outcome, Report};
use wire::{count_arrivals, settle, transfer, Pace, Port, Transfer};

/// Every check's name, in the order they run.
pub const CHECKS: &[&str] = &[
    "attach_detach",
    "mac",
    "link_up",
    "link_change",
    "frames",
    "ring_wrap",
    "multicast",
    "promisc",
    "counters",
    "interrupt_idle",
    "fps",
    "reset",
    "dma_fault",
    "reattach",
    "detach_at_end",
];

/// What the caller's attach closure returns.
pub struct Devices {
    /// A freshly attached, stopped DUT.
    pub dut: Box<dyn Driver>,
    /// The peer: required on the first call, and on every call when
    /// [`SuiteConfig::peer_in_same_attach`] is set; ignored otherwise.
    pub peer: Option<Box<dyn Driver>>,
}

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// How the report names the DUT (e.g. `e1000 pci=0000:00:02.0`).
    pub dut_label: String,
    /// How it names the peer.
    pub peer_label: String,
    /// The MAC the DUT must report (e.g. QEMU's `mac=`); `None`: check that
    /// it is a valid unicast address stable across a restart.
    pub expected_mac: Option<[u8; 6]>,
    /// Receive ring entries; `None`: the driver's `rx_ring_frames()`, else
    /// read from `describe()` (`rxd`, `qsize`, `ring entries`), else 256.
    pub ring_size: Option<usize>,
    /// One attach makes both ends (`pair`): re-attach drops and re-makes both.
    pub peer_in_same_attach: bool,
    /// Detach/attach rounds of the `reattach` check.
    pub reattach_rounds: usize,
    /// How long `interrupt_idle` sleeps with no traffic.
    pub idle: Duration,
    /// How long `fps` sends.
    pub fps_time: Duration,
    /// How long to wait for the wire to carry frames (link up, filters
    /// applied; QEMU's e1000 ignores rx for ~1 s after an RCTL write).
    pub settle_timeout: Duration,
    /// The kernel log to watch for DMA faults; `None`: skip `dma_fault`.
    pub kmsg: Option<PathBuf>,
    /// The unmapped IOVA the `dma_fault` check points receive buffers at.
    pub fault_iova: u64,
    /// A shell command (`sh -c`) that takes the DUT's carrier down when
    /// `{state}` in it reads `down` and back when it reads `up`; `None`:
    /// skip `link_change`. It must return once the request is made; the
    /// check then waits up to twice [`Self::settle_timeout`] for the DUT.
    pub link_cmd: Option<String>,
    /// Run only these checks (names from [`CHECKS`]); the others are
    /// reported as skipped. `detach_at_end` always runs: it leaves both
    /// ends detached and checks the pool. `None`: every check.
    pub only: Option<Vec<String>>,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            dut_label: "dut".into(),
            peer_label: "peer".into(),
            expected_mac: None,
            ring_size: None,
            peer_in_same_attach: false,
            reattach_rounds: 10,
            idle: Duration::from_secs(1),
            fps_time: Duration::from_secs(2),
            settle_timeout: Duration::from_secs(5),
            kmsg: Some(PathBuf::from("/dev/kmsg")),
            // Below 2^48 (the lab's IOMMU width), far from any user mapping.
            fault_iova: 0xdead_0000_0000,
            link_cmd: None,
            only: None,
        }
    }
}

/// Runs the link command with `{state}` replaced.
fn run_link_cmd(cmd: &str, state: &str) -> Result<(), String> {
    let line = cmd.replace("{state}", state);
    let out = std::process::Command::new("sh")
        .args(["-c", &line])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("link command '{line}': {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "link command '{line}' failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The attach closure: returns a freshly attached DUT (and peer, see
/// [`Devices`]).
pub type AttachFn<'a> = dyn FnMut() -> Result<Devices, DriverError> + 'a;

/// Runs every check and returns the report. `owners` are the pool owners
/// the attach closure gives the DUT and the peer, in that order.
pub fn run(
    cfg: &SuiteConfig,
    pool: &Pool,
    owners: [OwnerId; 2],
    attach: &mut AttachFn<'_>,
) -> Report {
    let t0 = Instant::now();
    let mut rep = Report {
        dut: cfg.dut_label.clone(),
        peer: cfg.peer_label.clone(),
        ..Report::default()
    };
    let first = attach().and_then(|d| match d.peer {
        Some(p) => Ok((d.dut, p)),
        None => Err(DriverError::NoDevice(
            "the first attach gave no peer".into(),
        )),
    });
    let (dut, peer) = match first {
        Ok(v) => v,
        Err(e) => {
            for name in CHECKS {
                let (outcome, evidence) = if *name == "attach_detach" {
                    (Outcome::Fail, format!("attach: {e}"))
                } else {
                    (Outcome::Skip, "not attached".to_owned())
                };
                rep.checks.push(Check {
                    name: (*name).to_owned(),
                    outcome,
                    evidence,
                    duration: Duration::ZERO,
                });
            }
            rep.duration = t0.elapsed();
            return rep;
        }
    };
    rep.dut_facts = dut.describe();
    let ring = cfg
        .ring_size
        .or_else(|| ring_of(dut.as_ref()))
        .unwrap_or(256)
        .min(ring_of(peer.as_ref()).unwrap_or(usize::MAX));
    let mut s = Suite {
        cfg,
        pool,
        dut: Port::new("dut", dut, owners[0]),
        peer: Port::new("peer", peer, owners[1]),
        ring,
        phase: phase_nonce(),
        attach,
    };
    let checks: [(&str, CheckFn<'_>); 15] = [
        ("attach_detach", Suite::attach_detach),
        ("mac", Suite::mac),
        ("link_up", Suite::link_up),
        ("link_change", Suite::link_change),
        ("frames", Suite::frames),
        ("ring_wrap", Suite::ring_wrap),
        ("multicast", Suite::multicast),
        ("promisc", Suite::promisc),
        ("counters", Suite::counters),
        ("interrupt_idle", Suite::interrupt_idle),
        ("fps", Suite::fps),
        ("reset", Suite::reset),
        ("dma_fault", Suite::dma_fault),
        ("reattach", Suite::reattach),
        ("detach_at_end", Suite::detach_at_end),
    ];
    for (name, f) in checks {
        let c0 = Instant::now();
        let selected = name == "detach_at_end"
            || cfg
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == name));
        let result = if selected {
            f(&mut s)
        } else {
            skip("not selected (--checks)".into())
        };
        let (outcome, evidence) = match result {
            Ok(v) => v,
            Err(why) => (Outcome::Fail, why),
        };
        log::info!("conformance: {name}: {} {evidence}", outcome.as_str());
        rep.checks.push(Check {
            name: name.to_owned(),
            outcome,
            evidence,
            duration: c0.elapsed(),
        });
    }
    rep.duration = t0.elapsed();
    rep
}

/// A check: `Ok` with its outcome and evidence, or `Err(why)` for a failure.
type CheckFn<'a> = fn(&mut Suite<'a>) -> Result<(Outcome, String), String>;

type Verdict = Result<(Outcome, String), String>;

fn pass(evidence: String) -> Verdict {
    Ok((Outcome::Pass, evidence))
}

fn fail(evidence: String) -> Verdict {
    Ok((Outcome::Fail, evidence))
}

fn skip(evidence: String) -> Verdict {
    Ok((Outcome::Skip, evidence))
}

/// The receive ring a driver has: what it says through
/// [`Driver::rx_ring_frames`], else what its `describe()` states.
fn ring_of(d: &dyn Driver) -> Option<usize> {
    ring_from(d.rx_ring_frames(), &d.describe())
}

/// [`ring_of`] from the two answers.
fn ring_from(frames: Option<u32>, facts: &[(String, String)]) -> Option<usize> {
    frames
        .map(|n| n as usize)
        .or_else(|| ring_from_facts(facts))
}

/// The receive ring size a driver's `describe()` states.
fn ring_from_facts(facts: &[(String, String)]) -> Option<usize> {
    ["rxd", "qsize", "ring entries", "ring"]
        .iter()
        .find_map(|k| {
            let v = facts.iter().find(|(fk, _)| fk == k)?;
            let digits: String = v.1.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok().filter(|n| *n > 0)
        })
}

/// A starting phase number that differs between runs, so frames of an
/// earlier run still on the wire are never counted.
fn phase_nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0x7fff_ff00
}

fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Stands in for a driver between its detach and the next attach.
struct Detached;

impl Driver for Detached {
    fn name(&self) -> &str {
        "detached"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn concurrency(&self) -> Concurrency {
        Concurrency::Serialized
    }
    fn mac(&self) -> [u8; 6] {
        [0; 6]
    }
    fn start(&mut self) -> Result<Queues, DriverError> {
        Err(DriverError::NoDevice("detached".into()))
    }
    fn stop(&mut self, _queues: Queues) {}
    fn link(&mut self) -> LinkState {
        LinkState::DOWN
    }
    fn control(&mut self, _req: &Control) -> Result<(), DriverError> {
        Err(DriverError::NoDevice("detached".into()))
    }
}

/// Frames per burst in `fps` and the most per burst elsewhere.
const BURST: usize = 32;
/// Frames of the multicast and promisc checks.
const FILTER_FRAMES: u32 = 16;
/// How long a filter check waits for frames that should not arrive.
const DROP_WAIT: Duration = Duration::from_millis(500);

struct Suite<'a> {
    cfg: &'a SuiteConfig,
    pool: &'a Pool,
    dut: Port,
    peer: Port,
    ring: usize,
    phase: u32,
    attach: &'a mut AttachFn<'a>,
}

impl<'a> Suite<'a> {
    fn next_phase(&mut self) -> u32 {
        self.phase = self.phase.wrapping_add(1);
        self.phase
    }

    fn pace(&self) -> Pace {
        Pace {
            window: (self.ring / 2).max(8),
            burst: BURST,
            idle: Duration::from_secs(2),
        }
    }

    fn start_both(&mut self) -> Result<(), String> {
        self.dut.start().map_err(|e| format!("dut start: {e}"))?;
        self.peer.start().map_err(|e| format!("peer start: {e}"))
    }

    /// Waits until frames get through both ways (unicast).
    fn settle_both(&mut self) -> Result<Duration, String> {
        self.start_both()?;
        let (pm, dm) = (self.peer.mac(), self.dut.mac());
        let t = self.cfg.settle_timeout;
        let p = self.next_phase();
        let a = settle(self.pool, (&mut self.dut, &mut self.peer), pm, p, t)
            .ok_or_else(|| format!("no frame from the DUT reached the peer in {t:?}"))?;
        let p = self.next_phase();
        let b = settle(self.pool, (&mut self.peer, &mut self.dut), dm, p, t)
            .ok_or_else(|| format!("no frame from the peer reached the DUT in {t:?}"))?;
        Ok(a.max(b))
    }

    /// Sends `count` frames each way; both transfers.
    fn both_ways(&mut self, count: u32, len: &dyn Fn(u32) -> usize) -> (Transfer, Transfer) {
        let (pm, dm) = (self.peer.mac(), self.dut.mac());
        let pace = self.pace();
        let p = self.next_phase();
        let out = transfer(
            self.pool,
            (&mut self.dut, &mut self.peer),
            pm,
            p,
            count,
            len,
            pace,
        );
        let p = self.next_phase();
        let back = transfer(
            self.pool,
            (&mut self.peer, &mut self.dut),
            dm,
            p,
            count,
            len,
            pace,
        );
        (out, back)
    }

    /// Buffers not free in the pool and not held by the peer.
    fn unaccounted(&self) -> i64 {
        self.pool.capacity() as i64
            - self.pool.available() as i64
            - self.pool.held_by(self.peer.owner)
    }

    fn attach_detach(&mut self) -> Verdict {
        let caps = self.dut.drv.capabilities();
        self.dut.start().map_err(|e| format!("start: {e}"))?;
        let (rx, tx) = self
            .dut
            .queues
            .as_ref()
            .map_or((0, 0), |q| (q.rx.len(), q.tx.len()));
        self.dut.stop();
        let held = self.pool.held_by(self.dut.owner);
        let lost = self.unaccounted();
        let evidence = format!(
            "start gave {rx} rx + {tx} tx queues (capabilities: {} + {}); after stop the DUT holds {held} buffers, {lost} unaccounted, pool {}/{} free",
            caps.rx_queues,
            caps.tx_queues,
            self.pool.available(),
            self.pool.capacity()
        );
        self.dut.start().map_err(|e| format!("restart: {e}"))?;
        if rx != usize::from(caps.rx_queues) || tx != usize::from(caps.tx_queues) || rx == 0 {
            return fail(evidence);
        }
        if held != 0 || lost != 0 {
            return fail(evidence);
        }
        pass(evidence)
    }

    fn mac(&mut self) -> Verdict {
        let m1 = self.dut.mac();
        if m1[0] & 1 != 0 || m1 == [0; 6] {
            return fail(format!("{} is not a unicast address", fmt_mac(&m1)));
        }
        self.dut.stop();
        self.dut.start().map_err(|e| format!("restart: {e}"))?;
        let m2 = self.dut.mac();
        if m1 != m2 {
            return fail(format!(
                "{} before a restart, {} after",
                fmt_mac(&m1),
                fmt_mac(&m2)
            ));
        }
        match self.cfg.expected_mac {
            Some(want) if want == m1 => pass(format!("{} as expected", fmt_mac(&m1))),
            Some(want) => fail(format!("{}, expected {}", fmt_mac(&m1), fmt_mac(&want))),
            None => pass(format!(
                "{} (no expected MAC given: unicast, stable across a restart)",
                fmt_mac(&m1)
            )),
        }
    }

    fn link_up(&mut self) -> Verdict {
        self.start_both()?;
        let t0 = Instant::now();
        loop {
            let _ = self.dut.drv.service();
            let _ = self.peer.drv.service();
            let (l, pl) = (self.dut.drv.link(), self.peer.drv.link());
            if l.up && pl.up {
                return pass(format!(
                    "up after {} ms, {} Mb/s {} duplex (peer {} Mb/s)",
                    t0.elapsed().as_millis(),
                    l.speed_mbps,
                    if l.full_duplex { "full" } else { "half" },
                    pl.speed_mbps
                ));
            }
            if t0.elapsed() > self.cfg.settle_timeout {
                return fail(format!(
                    "after {:?}: DUT link {}, peer link {}",
                    self.cfg.settle_timeout,
                    if l.up { "up" } else { "down" },
                    if pl.up { "up" } else { "down" }
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn link_change(&mut self) -> Verdict {
        let Some(cmd) = self.cfg.link_cmd.clone() else {
            return skip(
                "no link command (--link-cmd): the driver contract gives the peer no way to \
                 drop the carrier"
                    .into(),
            );
        };
        self.settle_both()?;
        let verdict = self.link_flap(&cmd);
        if !matches!(verdict, Ok((Outcome::Pass, _))) {
            // Whatever went wrong, give the DUT its carrier back, or every
            // later check fails for want of a wire.
            let _ = run_link_cmd(&cmd, "up");
            std::thread::sleep(self.cfg.settle_timeout / 5);
        }
        verdict
    }

    /// `link_change` proper: carrier down, then up, each seen through
    /// `service()`; then frames pass.
    fn link_flap(&mut self, cmd: &str) -> Verdict {
        let mut evidence = Vec::new();
        for up in [false, true] {
            let state = if up { "up" } else { "down" };
            run_link_cmd(cmd, state)?;
            let t0 = Instant::now();
            let mut event = false;
            loop {
                event |= self.dut.drv.service().link_changed;
                let _ = self.peer.drv.service();
                if self.dut.drv.link().up == up {
                    if !event {
                        // The driver may see the change before it reports
                        // it: give service() one more look.
                        std::thread::sleep(Duration::from_millis(50));
                        event |= self.dut.drv.service().link_changed;
                    }
                    if !event {
                        return fail(format!(
                            "link {state} after {} ms, but service() never reported \
                             link_changed",
                            t0.elapsed().as_millis()
                        ));
                    }
                    evidence.push(format!("{state} after {} ms", t0.elapsed().as_millis()));
                    break;
                }
                if t0.elapsed() > 2 * self.cfg.settle_timeout {
                    return fail(format!(
                        "'{cmd}' ({state}): the DUT still reports link {} after {:?}",
                        if up { "down" } else { "up" },
                        2 * self.cfg.settle_timeout
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let took = self.settle_both()?;
        pass(format!(
            "{}, each reported by service(); frames pass again after {} ms",
            evidence.join(", "),
            took.as_millis()
        ))
    }

    fn frames(&mut self) -> Verdict {
        let took = self.settle_both()?;
        let n = 1514 - 60 + 1;
        let (out, back) = self.both_ways(n, &|i| 60 + i as usize);
        let mut evidence = format!(
            "wire up after {} ms; 60..=1514 DUT->peer: {}; peer->DUT: {}",
            took.as_millis(),
            out.summary(),
            back.summary()
        );
        let mut ok = out.clean(n.into()) && back.clean(n.into());
        let max_mtu = self
            .dut
            .drv
            .capabilities()
            .max_mtu
            .min(self.peer.drv.capabilities().max_mtu);
        if max_mtu > 1500 {
            let (j_ok, j_ev) = self.jumbo(max_mtu)?;
            ok &= j_ok;
            evidence.push_str("; ");
            evidence.push_str(&j_ev);
        } else {
            evidence.push_str("; no jumbo (max MTU 1500)");
        }
        if ok {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn jumbo(&mut self, max_mtu: u32) -> Result<(bool, String), String> {
        let mtu = max_mtu.min((wire::MAX_FRAME - 14) as u32);
        for p in [&mut self.dut, &mut self.peer] {
            p.drv
                .control(&Control::SetMtu(mtu))
                .map_err(|e| format!("{} SetMtu({mtu}): {e}", p.role))?;
        }
        let top = mtu as usize + 14;
        let sizes: Vec<usize> = [1515, 2048, 2049, 3000, 4096, 6000, 8192, top]
            .into_iter()
            .filter(|s| *s <= top)
            .collect();
        let r = self.settle_both().map(|_| {
            let k = sizes.len() as u32;
            let (out, back) = self.both_ways(k, &|i| sizes[i as usize]);
            let ok = out.clean(k.into()) && back.clean(k.into());
            (
                ok,
                format!(
                    "jumbo (MTU {mtu}, {} sizes to {top} bytes) DUT->peer: {}; peer->DUT: {}",
                    k,
                    out.summary(),
                    back.summary()
                ),
            )
        });
        for p in [&mut self.dut, &mut self.peer] {
            p.drv
                .control(&Control::SetMtu(1500))
                .map_err(|e| format!("{} SetMtu(1500): {e}", p.role))?;
        }
        r
    }

    fn ring_wrap(&mut self) -> Verdict {
        self.settle_both()?;
        let n = (4 * self.ring).max(1024) as u32;
        let (out, back) = self.both_ways(n, &|i| 60 + (i as usize * 197) % 1455);
        let evidence = format!(
            "ring {} entries, {n} frames each way, at most {} in flight; DUT->peer: {}; peer->DUT: {}",
            self.ring,
            self.pace().window,
            out.summary(),
            back.summary()
        );
        if out.clean(n.into()) && back.clean(n.into()) {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn control_dut(&mut self, req: Control) -> Result<(), String> {
        self.dut
            .drv
            .control(&req)
            .map_err(|e| format!("{req:?}: {e}"))
    }

    /// Frames from the peer to `dst` that reach the DUT, after making sure
    /// the wire carries unicast frames.
    fn arrivals_to(&mut self, dst: [u8; 6]) -> Result<u64, String> {
        self.settle_both()?;
        let p = self.next_phase();
        Ok(count_arrivals(
            self.pool,
            (&mut self.peer, &mut self.dut),
            dst,
            p,
            FILTER_FRAMES,
            DROP_WAIT,
        ))
    }

    /// Waits until frames from the peer to `dst` reach the DUT.
    fn settle_to(&mut self, dst: [u8; 6]) -> Result<Duration, String> {
        let p = self.next_phase();
        let t = self.cfg.settle_timeout;
        settle(self.pool, (&mut self.peer, &mut self.dut), dst, p, t)
            .ok_or_else(|| format!("no frame to {} reached the DUT in {t:?}", fmt_mac(&dst)))
    }

    fn multicast(&mut self) -> Verdict {
        let slots = self.dut.drv.capabilities().multicast_slots;
        if slots == 0 {
            return skip("the DUT has no multicast filter (multicast_slots = 0)".into());
        }
        let group = [0x01, 0x00, 0x5e, 0x7f, 0x12, 0x34];
        self.control_dut(Control::SetPromisc(false))?;
        self.control_dut(Control::SetAllMulti(false))?;
        self.control_dut(Control::SetMulticast(Vec::new()))?;
        let before = self.arrivals_to(group)?;
        self.control_dut(Control::SetMulticast(vec![group]))?;
        let r = self.settle_to(group).map(|took| {
            let p = self.next_phase();
            let after = count_arrivals(
                self.pool,
                (&mut self.peer, &mut self.dut),
                group,
                p,
                FILTER_FRAMES,
                Duration::from_secs(2),
            );
            (took, after)
        });
        self.control_dut(Control::SetMulticast(Vec::new()))?;
        let (took, after) = match r {
            Ok(v) => v,
            Err(e) => return fail(format!("before join {before}/{FILTER_FRAMES} arrived; {e}")),
        };
        let evidence = format!(
            "group {} ({slots} slots): before join {before}/{FILTER_FRAMES} arrived; after join {after}/{FILTER_FRAMES} (filter took effect in {} ms)",
            fmt_mac(&group),
            took.as_millis()
        );
        if before == 0 && after == u64::from(FILTER_FRAMES) {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn promisc(&mut self) -> Verdict {
        if !self.dut.drv.capabilities().promisc {
            return skip("the DUT cannot be made promiscuous (capabilities)".into());
        }
        let other = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x99];
        self.control_dut(Control::SetPromisc(false))?;
        let before = self.arrivals_to(other)?;
        self.control_dut(Control::SetPromisc(true))?;
        let on = self.settle_to(other).map(|took| {
            let p = self.next_phase();
            let n = count_arrivals(
                self.pool,
                (&mut self.peer, &mut self.dut),
                other,
                p,
                FILTER_FRAMES,
                Duration::from_secs(2),
            );
            (took, n)
        });
        self.control_dut(Control::SetPromisc(false))?;
        let (took, during) = match on {
            Ok(v) => v,
            Err(e) => return fail(format!("before {before}/{FILTER_FRAMES} arrived; {e}")),
        };
        let after = self.arrivals_to(other)?;
        let evidence = format!(
            "frames to {}: without promisc {before}/{FILTER_FRAMES} arrived; with promisc {during}/{FILTER_FRAMES} (took effect in {} ms); promisc off again {after}/{FILTER_FRAMES}",
            fmt_mac(&other),
            took.as_millis()
        );
        if before == 0 && during == u64::from(FILTER_FRAMES) && after == 0 {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn counters(&mut self) -> Verdict {
        self.settle_both()?;
        self.dut.reclaim();
        std::thread::sleep(Duration::from_millis(50));
        self.dut.reclaim();
        let (rx0, tx0) = self.dut.counters();
        let n = 100u32;
        let len = |i: u32| 60 + (i as usize * 13) % 1455;
        let want_bytes: u64 = (0..n).map(|i| len(i) as u64).sum();
        let (out, back) = self.both_ways(n, &len);
        // Transmit counters may move at completion: let the queue reclaim.
        let t0 = Instant::now();
        let (mut rx1, mut tx1) = self.dut.counters();
        while tx1.packets - tx0.packets < out.sent && t0.elapsed() < Duration::from_secs(1) {
            self.dut.reclaim();
            std::thread::sleep(Duration::from_millis(10));
            (rx1, tx1) = self.dut.counters();
        }
        let (txp, txb) = (tx1.packets - tx0.packets, tx1.bytes - tx0.bytes);
        let (rxp, rxb) = (rx1.packets - rx0.packets, rx1.bytes - rx0.bytes);
        let evidence = format!(
            "DUT tx +{txp} packets +{txb} bytes (sent {} frames, {want_bytes} bytes); DUT rx +{rxp} packets +{rxb} bytes (received {} frames, {} bytes, {} other); tx errors +{}, rx errors +{}",
            out.sent,
            back.received,
            back.bytes,
            back.other,
            tx1.errors - tx0.errors,
            rx1.errors - rx0.errors
        );
        let rx_ok = rxp >= back.received && rxp <= back.received + back.other && rxb >= back.bytes;
        let rx_exact = back.other > 0 || (rxp == back.received && rxb == back.bytes);
        if out.clean(n.into())
            && back.clean(n.into())
            && txp == u64::from(n)
            && txb == want_bytes
            && rx_ok
            && rx_exact
        {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn interrupt_idle(&mut self) -> Verdict {
        self.settle_both()?;
        let fd = self
            .dut
            .queues
            .as_ref()
            .and_then(|q| q.rx.first())
            .and_then(|r| r.wait_fd());
        let Some(fd) = fd else {
            return skip("rx queue 0 has no wait fd (a polled driver)".into());
        };
        self.dut.drain(Duration::from_millis(50));
        let idle = self.cfg.idle;
        let t0 = Instant::now();
        let cpu0 = os::thread_cpu_time().map_err(|e| format!("getrusage: {e}"))?;
        let mut spurious = 0;
        let mut armed_late = 0;
        while t0.elapsed() < idle {
            if !self.arm_dut() {
                armed_late += 1;
                self.dut.drain(Duration::ZERO);
                continue;
            }
            let left = idle.saturating_sub(t0.elapsed());
            if os::wait_readable(fd, left).map_err(|e| format!("poll: {e}"))? {
                spurious += 1;
                self.disarm_dut();
                self.dut.drain(Duration::ZERO);
            }
        }
        let cpu = os::thread_cpu_time()
            .map_err(|e| format!("getrusage: {e}"))?
            .saturating_sub(cpu0);
        let slept = t0.elapsed();
        // One frame from the peer must wake the sleeper.
        while !self.arm_dut() {
            self.dut.drain(Duration::ZERO);
        }
        let p = self.next_phase();
        let dst = self.dut.mac();
        let stream = wire::Stream {
            dst,
            src: self.peer.mac(),
            phase: p,
        };
        let mut scratch = [0u8; 64];
        let frame = wire::build(
            self.pool,
            self.peer.owner,
            &mut scratch,
            stream,
            wire::Kind::Data,
            0,
            wire::MIN_FRAME,
        )
        .ok_or("pool exhausted")?;
        let mut b = PacketBatch::with_limit(1);
        let _ = b.push(frame);
        let sent_at = Instant::now();
        self.peer.send(&mut b);
        let woke =
            os::wait_readable(fd, Duration::from_secs(2)).map_err(|e| format!("poll: {e}"))?;
        let latency = sent_at.elapsed();
        self.disarm_dut();
        let got = self.dut.drain(Duration::from_millis(100));
        let share = cpu.as_secs_f64() / slept.as_secs_f64();
        let evidence = format!(
            "idle {:.2} s: {:.1} ms CPU ({:.2} %), {spurious} early wake-ups, {armed_late} arms found frames waiting; one frame from the peer {} after {:.1} ms, {got} received",
            slept.as_secs_f64(),
            cpu.as_secs_f64() * 1e3,
            share * 100.0,
            if woke { "woke it" } else { "did NOT wake it" },
            latency.as_secs_f64() * 1e3
        );
        if share < 0.05 && spurious <= 2 && woke && got >= 1 {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn arm_dut(&mut self) -> bool {
        match self.dut.queues.as_mut().and_then(|q| q.rx.first_mut()) {
            Some(r) => r.arm(),
            None => true,
        }
    }

    fn disarm_dut(&mut self) {
        if let Some(r) = self.dut.queues.as_mut().and_then(|q| q.rx.first_mut()) {
            r.disarm();
        }
    }

    fn fps(&mut self) -> Verdict {
        self.settle_both()?;
        let p = self.next_phase();
        let (dst, src) = (self.peer.mac(), self.dut.mac());
        let mut tx = PacketBatch::with_limit(BURST);
        let mut rx = PacketBatch::with_limit(pktkit_native::BATCH_MAX);
        let (mut sent, mut received, mut no_buffer) = (0u64, 0u64, 0u64);
        let t0 = Instant::now();
        while t0.elapsed() < self.cfg.fps_time {
            let have = tx.len();
            let want = tx.room();
            if self.pool.alloc_batch(self.dut.owner, &mut tx, want) < want {
                no_buffer += 1;
            }
            for m in tx.iter_mut_from(have) {
                if let Some(f) = m.append(wire::MIN_FRAME) {
                    wire::write_frame(f, dst, src, p, 0, wire::Kind::Probe);
                }
            }
            sent += self.dut.send(&mut tx) as u64;
            received += self.peer.recv(&mut rx) as u64;
            rx.free_all();
            self.dut.reclaim();
        }
        let elapsed = t0.elapsed();
        tx.free_all();
        received += self.peer.drain(Duration::from_millis(300)) as u64;
        let secs = elapsed.as_secs_f64();
        let evidence = format!(
            "DUT->peer {}-byte frames, burst {BURST}, {secs:.2} s: sent {sent}, received {received}: {:.0} fps received ({:.0} fps sent){}",
            wire::MIN_FRAME,
            received as f64 / secs,
            sent as f64 / secs,
            if no_buffer > 0 {
                format!(", pool short {no_buffer}x")
            } else {
                String::new()
            }
        );
        if received > 0 {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    /// Traffic both ways after a disruption: settle, then 64 frames each way.
    fn traffic_after(&mut self) -> Result<(bool, String), String> {
        let took = self.settle_both()?;
        let (out, back) = self.both_ways(64, &|i| 60 + (i as usize * 97) % 1455);
        Ok((
            out.clean(64) && back.clean(64),
            format!(
                "wire up after {} ms; DUT->peer: {}; peer->DUT: {}",
                took.as_millis(),
                out.summary(),
                back.summary()
            ),
        ))
    }

    fn reset(&mut self) -> Verdict {
        self.dut.stop();
        let r = self.dut.drv.reset();
        self.dut
            .start()
            .map_err(|e| format!("start after reset: {e}"))?;
        match r {
            Err(DriverError::Unsupported(why)) => skip(format!("not supported: {why}")),
            Err(e) => fail(format!("reset: {e}")),
            Ok(()) => {
                let (ok, ev) = self.traffic_after()?;
                let ev = format!("stop + reset + start; {ev}");
                if ok {
                    pass(ev)
                } else {
                    fail(ev)
                }
            }
        }
    }

    fn dma_fault(&mut self) -> Verdict {
        let Some(path) = self.cfg.kmsg.clone() else {
            return skip("no kernel log given".into());
        };
        let iova = self.cfg.fault_iova;
        if self.pool.dma_regions().iter().any(|r| {
            let end = r.iova + r.len as u64;
            (r.iova..end).contains(&iova)
        }) {
            return skip(format!("{iova:#x} is inside the pool's DMA mapping"));
        }
        self.settle_both()?;
        let mut log = match KernelLog::open_at_end(&path) {
            Ok(l) => l,
            Err(e) => return skip(format!("{}: {e}", path.display())),
        };
        match self.dut.drv.inject_fault(Fault::RxBufferIova(iova)) {
            Err(DriverError::Unsupported(why)) => return skip(format!("not supported: {why}")),
            Err(e) => return fail(format!("inject_fault: {e}")),
            Ok(()) => {}
        }
        // Frames for the DUT make the device write to the bad address.
        let dst = self.dut.mac();
        let p = self.next_phase();
        let arrived = count_arrivals(
            self.pool,
            (&mut self.peer, &mut self.dut),
            dst,
            p,
            FILTER_FRAMES,
            Duration::from_millis(300),
        );
        let t0 = Instant::now();
        let mut fault_line = None;
        while fault_line.is_none() && t0.elapsed() < Duration::from_secs(3) {
            fault_line = log.new_lines().into_iter().find(|l| is_dma_fault(l));
            std::thread::sleep(Duration::from_millis(20));
        }
        self.dut.stop();
        self.dut
            .start()
            .map_err(|e| format!("start after the fault: {e}"))?;
        let (ok, ev) = self.traffic_after()?;
        let evidence = format!(
            "rx buffers pointed at {iova:#x}, {arrived}/{FILTER_FRAMES} frames delivered meanwhile; kernel log: {}; after restart: {ev}",
            fault_line
                .as_deref()
                .map_or("no DMAR fault within 3 s".to_owned(), |l| format!("'{}'", l.trim()))
        );
        if fault_line.is_some() && ok {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn reattach(&mut self) -> Verdict {
        let rounds = self.cfg.reattach_rounds;
        // The same device keeps its address; a pair re-made by one attach
        // is a new device, held only to the expected MAC if one was given.
        let mac = match (self.cfg.expected_mac, self.cfg.peer_in_same_attach) {
            (Some(m), _) => Some(m),
            (None, false) => Some(self.dut.mac()),
            (None, true) => None,
        };
        for round in 1..=rounds {
            self.dut.stop();
            self.dut.drv = Box::new(Detached);
            if self.cfg.peer_in_same_attach {
                self.peer.stop();
                self.peer.drv = Box::new(Detached);
            }
            let held = self.pool.held_by(self.dut.owner);
            let lost = self.unaccounted();
            if held != 0 || lost != 0 {
                return fail(format!(
                    "round {round}: after detach the DUT holds {held} buffers, {lost} unaccounted (pool {}/{} free)",
                    self.pool.available(),
                    self.pool.capacity()
                ));
            }
            let d = (self.attach)().map_err(|e| format!("round {round}: attach: {e}"))?;
            self.dut.drv = d.dut;
            if self.cfg.peer_in_same_attach {
                self.peer.drv = d
                    .peer
                    .ok_or_else(|| format!("round {round}: the attach gave no peer"))?;
            }
            if let Some(mac) = mac.filter(|m| *m != self.dut.mac()) {
                return fail(format!(
                    "round {round}: MAC {} after re-attach, expected {}",
                    fmt_mac(&self.dut.mac()),
                    fmt_mac(&mac)
                ));
            }
            self.start_both()
                .map_err(|e| format!("round {round}: {e}"))?;
        }
        let (ok, ev) = self.traffic_after()?;
        let evidence = format!(
            "{rounds} rounds: after each detach the DUT held 0 buffers and the pool was full but for the peer's ({} free of {}); after the last: {ev}",
            self.pool.available(),
            self.pool.capacity()
        );
        if ok {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }

    fn detach_at_end(&mut self) -> Verdict {
        self.dut.stop();
        self.peer.stop();
        self.dut.drv = Box::new(Detached);
        self.peer.drv = Box::new(Detached);
        self.pool.flush_thread_cache();
        let (hd, hp) = (
            self.pool.held_by(self.dut.owner),
            self.pool.held_by(self.peer.owner),
        );
        let evidence = format!(
            "both detached: DUT holds {hd}, peer holds {hp}, pool {}/{} free",
            self.pool.available(),
            self.pool.capacity()
        );
        if hd == 0 && hp == 0 && self.pool.available() == self.pool.capacity() {
            pass(evidence)
        } else {
            fail(evidence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_size_prefers_what_the_driver_says() {
        let facts = vec![("ring entries".to_string(), "64".to_string())];
        assert_eq!(ring_from(Some(20), &facts), Some(20));
        assert_eq!(ring_from(None, &facts), Some(64));
        assert_eq!(ring_of(&Detached), None);
    }

    #[test]
    fn ring_size_from_describe() {
        let f = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(ring_from_facts(&f("rxd", "512")), Some(512));
        assert_eq!(ring_from_facts(&f("qsize", "256 (max 1024)")), Some(256));
        assert_eq!(ring_from_facts(&f("ring entries", "1024")), Some(1024));
        assert_eq!(ring_from_facts(&f("pci", "0000:00:02.0")), None);
    }
}
