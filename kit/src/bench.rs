//! Benchmarks: forwarding between ports, and pool alloc/free.
//!
//! [`fwd`] forwards between two ports on the calling thread exactly as
//! dpdk-testpmd's `io` forwarding mode does with one forwarding core: a
//! stream per direction, each iteration receives one burst on a port and
//! transmits it on the other, and what transmit does not take is freed and
//! counted as dropped. `bench/compare-dpdk.sh` runs both side by side.
//!
//! The rate reported ([`FwdReport::mpps`]) is the packets *received* per
//! second on all ports together, which is the sum of the `Rx-pps` figures
//! testpmd prints per port (`--stats-period`): with no drops it is also the
//! number of packets forwarded per second by the core. Received, forwarded
//! and dropped counts are all reported, so a run with drops is visible.
//!
//! [`pool`] times the buffer pool alone: one buffer allocated and freed at a
//! time, and bursts allocated and freed in bulk.
//!
//! Both measure a steady state: a warm-up runs first (caches, pool thread
//! cache, page faults) and is left out of every figure, including the heap
//! allocation count taken with [`crate::alloc_count`].
//!
//! Reports print as one human-readable line (`Display`) or one JSON object
//! on one line (`to_json`).

use std::fmt;
use std::time::{Duration, Instant};

use pktkit_native::pool::{HugePages, PoolError};
use pktkit_native::sys::mbuf;
use pktkit_native::{
    Driver, DriverError, OwnerId, PacketBatch, Pool, PoolConfig, Queues, RxQueue, TxQueue,
    BATCH_MAX,
};

use crate::alloc_count;
use crate::runtime::{DriverLock, LockPolicy};
use std::sync::Arc;

/// Loop iterations between two looks at the clock: reading it costs far more
/// than a burst of the null driver, and 4096 iterations are a few ms at most.
const CLOCK_EVERY: u32 = 4096;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Forwarding needs one port (which forwards to itself) or two.
    #[error("fwd needs 1 or 2 ports, got {0}")]
    PortCount(usize),
    /// Burst outside `1..=BATCH_MAX`.
    #[error("burst {0} is out of range (1..={BATCH_MAX})")]
    Burst(usize),
    /// Zero, negative or non-finite duration.
    #[error("duration {0} s is not a positive number of seconds")]
    Duration(f64),
    /// A port's driver would not start.
    #[error("starting port {port}: {source}")]
    Start {
        /// The port's label.
        port: String,
        /// What the driver said.
        source: DriverError,
    },
    /// A started port offered no receive or no transmit queue.
    #[error("port {0} has no receive or no transmit queue")]
    NoQueue(String),
    /// The pool for the pool benchmark could not be made.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// How to run [`fwd`].
#[derive(Clone, Debug)]
pub struct FwdConfig {
    /// Packets asked for per receive call (testpmd's `--burst`).
    pub burst: usize,
    /// Length of the measured part of the run, in seconds.
    pub seconds: f64,
    /// Run before measuring, left out of every figure.
    pub warmup: Duration,
    /// Names for the ports in the report, in order; when shorter than the
    /// port list, the driver's name and the port number are used.
    pub labels: Vec<String>,
    /// `Some`: enter every port under a [`DriverLock`] of this policy, as
    /// the runtime does (`--fallback`); drivers attached beside the ports
    /// (registered on the same policy) then change what the locks cost.
    /// `None`: no locks (the bench's default, one thread).
    pub policy: Option<Arc<LockPolicy>>,
}

impl FwdConfig {
    /// `burst` packets per receive, `seconds` measured after a warm-up of a
    /// fifth of that (at most 1 s).
    pub fn new(burst: usize, seconds: f64) -> Self {
        let warmup = if seconds.is_finite() && seconds > 0.0 {
            Duration::from_secs_f64((seconds / 5.0).min(1.0))
        } else {
            Duration::ZERO
        };
        FwdConfig {
            burst,
            seconds,
            warmup,
            labels: Vec::new(),
            policy: None,
        }
    }
}

/// What [`fwd`] measured (the warm-up excluded).
#[derive(Clone, Debug, PartialEq)]
pub struct FwdReport {
    /// Millions of packets received per second, all ports summed (= the sum
    /// of testpmd's per-port `Rx-pps`).
    pub mpps: f64,
    /// Millions of packets transmitted (taken by tx) per second.
    pub fwd_mpps: f64,
    /// Burst size asked for.
    pub burst: usize,
    /// Most packets one receive returned (at most `burst` when the batch
    /// limit is honoured).
    pub max_rx_burst: usize,
    /// Measured wall-clock time, in seconds.
    pub seconds: f64,
    /// Port labels, in order.
    pub ports: Vec<String>,
    /// Packets received on all ports.
    pub rx_packets: u64,
    /// Packets taken by transmit on all ports.
    pub tx_packets: u64,
    /// Packets transmit did not take, freed (testpmd's `TX-dropped`).
    pub drops: u64,
    /// Heap allocations per received packet over the measured part, or
    /// `None` when [`alloc_count::CountingAlloc`] is not the global allocator.
    pub heap_allocs_per_pkt: Option<f64>,
    /// Frames copied (the ports' `rx_copies` and `tx_copies` counters, e.g.
    /// the legacy shim's) per received packet over the measured part, or
    /// `None` when no port counts copies.
    pub copies_per_pkt: Option<f64>,
}

impl FwdReport {
    /// The report as one JSON object on one line.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "mpps": self.mpps,
            "fwd_mpps": self.fwd_mpps,
            "burst": self.burst,
            "max_rx_burst": self.max_rx_burst,
            "seconds": self.seconds,
            "ports": self.ports,
            "rx_packets": self.rx_packets,
            "tx_packets": self.tx_packets,
            "drops": self.drops,
            "heap_allocs_per_pkt": self.heap_allocs_per_pkt,
            "copies_per_pkt": self.copies_per_pkt,
        })
        .to_string()
    }
}

impl fmt::Display for FwdReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fwd {}: {:.2} Mpps rx ({:.2} Mpps tx), burst {} (largest rx {}), {:.2} s, {} rx, {} tx, {} dropped, heap allocs/pkt {}{}",
            self.ports.join(" <-> "),
            self.mpps,
            self.fwd_mpps,
            self.burst,
            self.max_rx_burst,
            self.seconds,
            self.rx_packets,
            self.tx_packets,
            self.drops,
            match self.heap_allocs_per_pkt {
                Some(a) => format!("{a:.6}"),
                None => String::from("n/a (counting allocator not installed)"),
            },
            match self.copies_per_pkt {
                Some(c) => format!(", copies/pkt {c:.6}"),
                None => String::new(),
            }
        )
    }
}

/// Running totals of the forwarding loop.
#[derive(Clone, Copy, Debug, Default)]
struct FwdCounts {
    rx: u64,
    tx: u64,
    drops: u64,
    max_burst: usize,
}

/// Forwards between `ports` on this thread, as testpmd's io mode, for
/// `cfg.warmup` plus `cfg.seconds`, and reports the measured part.
///
/// With two ports, queue 0 of each is forwarded to queue 0 of the other; one
/// port forwards to itself. Every driver is started first and stopped (its
/// queues handed back) before this returns, also on error, so every buffer
/// goes back to the pool. The drivers are dropped at the end.
pub fn fwd(mut ports: Vec<Box<dyn Driver>>, cfg: &FwdConfig) -> Result<FwdReport, BenchError> {
    if ports.is_empty() || ports.len() > 2 {
        return Err(BenchError::PortCount(ports.len()));
    }
    if cfg.burst == 0 || cfg.burst > BATCH_MAX {
        return Err(BenchError::Burst(cfg.burst));
    }
    if !(cfg.seconds.is_finite() && cfg.seconds > 0.0) {
        return Err(BenchError::Duration(cfg.seconds));
    }
    let labels: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, d)| {
            cfg.labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("{}{i}", d.name()))
        })
        .collect();

    let mut started = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter_mut().enumerate() {
        match port.start() {
            Ok(q) if !q.rx.is_empty() && !q.tx.is_empty() => started.push(q),
            Ok(q) => {
                port.stop(q);
                stop_all(&mut ports, started);
                return Err(BenchError::NoQueue(labels[i].clone()));
            }
            Err(source) => {
                stop_all(&mut ports, started);
                return Err(BenchError::Start {
                    port: labels[i].clone(),
                    source,
                });
            }
        }
    }

    let measured = {
        // One stream per port: its queue 0 receives, the peer's queue 0
        // transmits (peer = the other port, or itself when alone).
        let mut rxs = Vec::with_capacity(started.len());
        let mut txs = Vec::with_capacity(started.len());
        for q in started.iter_mut() {
            rxs.push(&mut q.rx[0]);
            txs.push(&mut q.tx[0]);
        }
        txs.reverse();
        let mut streams: Vec<_> = rxs.into_iter().zip(txs).collect();
        let mut batch = burst_batch(cfg.burst);
        let mut counts = FwdCounts::default();

        // Stream i receives on port i and transmits on its peer.
        let locks: Option<Vec<(DriverLock, DriverLock)>> = cfg.policy.as_ref().map(|policy| {
            let own: Vec<DriverLock> = ports
                .iter()
                .map(|d| DriverLock::attach(d.concurrency(), policy))
                .collect();
            (0..own.len())
                .map(|i| (own[i].clone(), own[own.len() - 1 - i].clone()))
                .collect()
        });
        let mut run =
            |streams: &mut [Stream<'_>], counts: &mut FwdCounts, end: Instant| match &locks {
                Some(l) => run_until_locked(streams, l, &mut batch, counts, end),
                None => run_until(streams, &mut batch, counts, end),
            };

        let start = Instant::now();
        let warm_end = start + cfg.warmup;
        run(&mut streams, &mut counts, warm_end);
        let before = counts;
        let copies_before = copies(&ports);
        let allocs_before = alloc_count::allocations();
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(cfg.seconds);
        run(&mut streams, &mut counts, end);
        let elapsed = t0.elapsed().as_secs_f64();
        let allocs = alloc_count::allocations() - allocs_before;
        let copied = copies(&ports)
            .zip(copies_before)
            .map(|(after, before)| after.saturating_sub(before));
        (
            FwdCounts {
                rx: counts.rx - before.rx,
                tx: counts.tx - before.tx,
                drops: counts.drops - before.drops,
                max_burst: counts.max_burst,
            },
            elapsed,
            allocs,
            copied,
        )
    };
    stop_all(&mut ports, started);
    drop(ports);

    let (counts, elapsed, allocs, copied) = measured;
    let heap_allocs_per_pkt = alloc_count::installed().then(|| {
        if counts.rx == 0 {
            allocs as f64
        } else {
            allocs as f64 / counts.rx as f64
        }
    });
    Ok(FwdReport {
        mpps: counts.rx as f64 / elapsed / 1e6,
        fwd_mpps: counts.tx as f64 / elapsed / 1e6,
        burst: cfg.burst,
        max_rx_burst: counts.max_burst,
        seconds: elapsed,
        ports: labels,
        rx_packets: counts.rx,
        tx_packets: counts.tx,
        drops: counts.drops,
        heap_allocs_per_pkt,
        copies_per_pkt: copied.map(|c| c as f64 / counts.rx.max(1) as f64),
    })
}

/// Frames the ports copied so far (their `rx_copies` and `tx_copies`
/// counters), or `None` when none of them counts copies.
fn copies(ports: &[Box<dyn Driver>]) -> Option<u64> {
    let mut found = None;
    for port in ports {
        for (key, value) in port.counters().extra {
            if key == "rx_copies" || key == "tx_copies" {
                *found.get_or_insert(0) += value;
            }
        }
    }
    found
}

/// One forwarding direction: a port's receive queue and its peer's transmit queue.
type Stream<'a> = (&'a mut Box<dyn RxQueue>, &'a mut Box<dyn TxQueue>);

/// The forwarding loop (testpmd's `pkt_burst_io_forward` over each stream),
/// looking at the clock every [`CLOCK_EVERY`] iterations.
#[inline(never)]
fn run_until(
    streams: &mut [Stream<'_>],
    batch: &mut PacketBatch,
    counts: &mut FwdCounts,
    end: Instant,
) {
    loop {
        for _ in 0..CLOCK_EVERY {
            for (rx, tx) in streams.iter_mut() {
                let got = rx.rx_burst(batch);
                if got == 0 {
                    continue;
                }
                counts.max_burst = counts.max_burst.max(got);
                counts.rx += got as u64;
                counts.tx += tx.tx_burst(batch) as u64;
                if !batch.is_empty() {
                    counts.drops += batch.len() as u64;
                    batch.free_all();
                }
            }
        }
        if Instant::now() >= end {
            return;
        }
    }
}

/// [`run_until`] with each call into a driver made under its lock
/// (`locks[i]`: stream i's receiving and transmitting port), as the
/// runtime's workers enter drivers.
#[inline(never)]
fn run_until_locked(
    streams: &mut [Stream<'_>],
    locks: &[(DriverLock, DriverLock)],
    batch: &mut PacketBatch,
    counts: &mut FwdCounts,
    end: Instant,
) {
    loop {
        for _ in 0..CLOCK_EVERY {
            for ((rx, tx), (rx_lock, tx_lock)) in streams.iter_mut().zip(locks) {
                let got = {
                    let _g = rx_lock.enter();
                    rx.rx_burst(batch)
                };
                if got == 0 {
                    continue;
                }
                counts.max_burst = counts.max_burst.max(got);
                counts.rx += got as u64;
                counts.tx += {
                    let _g = tx_lock.enter();
                    tx.tx_burst(batch)
                } as u64;
                if !batch.is_empty() {
                    counts.drops += batch.len() as u64;
                    batch.free_all();
                }
            }
        }
        if Instant::now() >= end {
            return;
        }
    }
}

/// An empty batch whose room is the burst size, so that a receive asks the
/// driver for `burst` packets as testpmd's `--burst` does.
fn burst_batch(burst: usize) -> PacketBatch {
    PacketBatch::with_limit(burst)
}

/// Hands every started port its queues back.
fn stop_all(ports: &mut [Box<dyn Driver>], started: Vec<Queues>) {
    for (port, queues) in ports.iter_mut().zip(started) {
        port.stop(queues);
    }
}

/// How to run [`pool`].
#[derive(Clone, Debug)]
pub struct PoolBenchConfig {
    /// Buffers in the pool benchmarked.
    pub buffers: usize,
    /// Buffers per bulk alloc/free.
    pub bulk: usize,
    /// Measured time per mode, in seconds.
    pub seconds: f64,
    /// Huge page policy of the pool.
    pub hugepages: HugePages,
}

impl Default for PoolBenchConfig {
    fn default() -> Self {
        PoolBenchConfig {
            buffers: 8192,
            bulk: 32,
            seconds: 1.0,
            hugepages: HugePages::Auto,
        }
    }
}

/// What [`pool`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolReport {
    /// Nanoseconds per buffer, allocating and freeing one at a time.
    pub single_ns: f64,
    /// Nanoseconds per buffer, allocating and freeing `bulk` at a time.
    pub bulk_ns: f64,
    /// Buffers per bulk operation.
    pub bulk: usize,
    /// Measured time per mode, in seconds.
    pub seconds: f64,
    /// Whether the pool sat on 2 MiB pages.
    pub hugepages: bool,
    /// Heap allocations per buffer over both measured parts, `None` when the
    /// counting allocator is not installed.
    pub heap_allocs_per_buf: Option<f64>,
}

impl PoolReport {
    /// The report as one JSON object on one line.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "single_ns": self.single_ns,
            "bulk_ns": self.bulk_ns,
            "bulk": self.bulk,
            "seconds": self.seconds,
            "hugepages": self.hugepages,
            "heap_allocs_per_buf": self.heap_allocs_per_buf,
        })
        .to_string()
    }
}

impl fmt::Display for PoolReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool: alloc+free {:.2} ns/buffer single, {:.2} ns/buffer in bulks of {}, {} pages, {:.2} s each",
            self.single_ns,
            self.bulk_ns,
            self.bulk,
            if self.hugepages { "2 MiB" } else { "4 KiB" },
            self.seconds,
        )
    }
}

/// Times alloc+free of pool buffers on this thread, one at a time and in
/// bulks of `cfg.bulk`, each for `cfg.seconds` after a warm-up.
pub fn pool(cfg: &PoolBenchConfig) -> Result<PoolReport, BenchError> {
    if cfg.bulk == 0 || cfg.bulk > BATCH_MAX {
        return Err(BenchError::Burst(cfg.bulk));
    }
    if !(cfg.seconds.is_finite() && cfg.seconds > 0.0) {
        return Err(BenchError::Duration(cfg.seconds));
    }
    let pool = Pool::new(&PoolConfig {
        name: String::from("bench"),
        buffers: cfg.buffers.max(cfg.bulk),
        hugepages: cfg.hugepages,
    })?;
    let owner = pool.register_owner("bench").unwrap_or(OwnerId::POOL);
    let dur = Duration::from_secs_f64(cfg.seconds);
    let warm = Duration::from_secs_f64((cfg.seconds / 5.0).min(0.5));

    let single = |pool: &Pool, d: Duration| {
        time_rounds(d, || {
            // Dropping the Mbuf frees it (pool::free_one).
            drop(std::hint::black_box(pool.alloc(owner)));
            1
        })
    };
    let bulk = |pool: &Pool, d: Duration| {
        let mut raw = [std::ptr::null_mut::<mbuf>(); BATCH_MAX];
        time_rounds(d, || {
            let got = pool.alloc_raw_bulk(owner, &mut raw[..cfg.bulk]);
            std::hint::black_box(&raw);
            // SAFETY: the first `got` entries were just allocated for us
            // and are not used after this.
            unsafe { pktkit_native::mbuf::free_raw_bulk(&raw[..got]) };
            got as u64
        })
    };

    single(&pool, warm);
    let allocs_before = alloc_count::allocations();
    let (single_bufs, single_t) = single(&pool, dur);
    bulk(&pool, warm);
    let allocs_mid = alloc_count::allocations();
    let (bulk_bufs, bulk_t) = bulk(&pool, dur);
    let allocs = (allocs_mid - allocs_before) + (alloc_count::allocations() - allocs_mid);

    let hugepages = pool.stats().hugepages;
    let bufs = single_bufs + bulk_bufs;
    Ok(PoolReport {
        single_ns: per_buffer_ns(single_t, single_bufs),
        bulk_ns: per_buffer_ns(bulk_t, bulk_bufs),
        bulk: cfg.bulk,
        seconds: cfg.seconds,
        hugepages,
        heap_allocs_per_buf: alloc_count::installed().then(|| allocs as f64 / bufs.max(1) as f64),
    })
}

/// Calls `round` (which returns how many buffers it moved) until `d` has
/// passed, looking at the clock every [`CLOCK_EVERY`] rounds; returns the
/// buffers moved and the time taken.
fn time_rounds(d: Duration, mut round: impl FnMut() -> u64) -> (u64, Duration) {
    let t0 = Instant::now();
    let mut bufs = 0;
    loop {
        for _ in 0..CLOCK_EVERY {
            bufs += round();
        }
        let t = t0.elapsed();
        if t >= d {
            return (bufs, t);
        }
    }
}

fn per_buffer_ns(t: Duration, bufs: u64) -> f64 {
    if bufs == 0 {
        return f64::INFINITY;
    }
    t.as_secs_f64() * 1e9 / bufs as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use pktkit_native::{AttachArgs, Control};

    fn null_ports(pool: &Pool, n: usize) -> Vec<Box<dyn Driver>> {
        (0..n)
            .flat_map(|i| {
                let owner = pool.register_owner(&format!("null{i}")).unwrap();
                let args = AttachArgs {
                    options: BTreeMap::new(),
                    pool: pool.clone(),
                    owners: vec![owner],
                    ifnames: vec![format!("null{i}")],
                    pci: None,
                };
                (pktkit_drv_null::FACTORY.create)(&args).unwrap()
            })
            .collect()
    }

    fn test_pool(name: &str) -> Pool {
        Pool::new(&PoolConfig {
            name: name.into(),
            buffers: 4096,
            hugepages: HugePages::Never,
        })
        .unwrap()
    }

    #[test]
    fn fwd_null_to_null_forwards_without_drops_or_leaks() {
        let pool = test_pool("bench-fwd");
        let ports = null_ports(&pool, 2);
        let mut cfg = FwdConfig::new(32, 0.2);
        cfg.labels = vec![String::from("a"), String::from("b")];
        let r = fwd(ports, &cfg).unwrap();
        assert!(r.rx_packets > 0, "{r}");
        assert_eq!(r.tx_packets, r.rx_packets, "{r}");
        assert_eq!(r.drops, 0, "{r}");
        assert!(r.mpps > 0.0 && r.seconds >= 0.2, "{r}");
        assert_eq!(r.ports, ["a", "b"]);
        assert_eq!(r.burst, 32);
        assert!(r.max_rx_burst > 0 && r.max_rx_burst <= 32, "{r}");
        // The test binary has no counting allocator.
        assert_eq!(r.heap_allocs_per_pkt, None);
        assert_eq!(pool.available(), pool.capacity());
        let json = r.to_json();
        assert!(!json.contains('\n'), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!((v["mpps"].as_f64().unwrap() - r.mpps).abs() < 1e-9 * r.mpps);
        assert_eq!(v["burst"], 32);
        assert!(v["seconds"].as_f64().unwrap() >= 0.2);
        assert_eq!(v["ports"], serde_json::json!(["a", "b"]));
        assert_eq!(v["drops"], 0);
        assert!(v["heap_allocs_per_pkt"].is_null());
    }

    /// One device of `factory` named `name` on `pool` with `opts`.
    fn port(
        factory: &pktkit_native::DriverFactory,
        pool: &Pool,
        name: &str,
        opts: &[(&str, &str)],
    ) -> Box<dyn Driver> {
        let args = AttachArgs {
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pool: pool.clone(),
            owners: vec![pool.register_owner(name).unwrap()],
            ifnames: vec![name.to_owned()],
            pci: None,
        };
        (factory.create)(&args).unwrap().remove(0)
    }

    /// A probe port (kit/src/probe.rs) on `pool` with `opts`.
    fn probe_port(pool: &Pool, name: &str, opts: &[(&str, &str)]) -> Box<dyn Driver> {
        port(&crate::probe::FACTORY, pool, name, opts)
    }

    fn extra_of(d: &dyn Driver, key: &str) -> u64 {
        d.counters()
            .extra
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| panic!("no {key}"), |(_, v)| *v)
    }

    /// Under `--fallback global` with a serialized driver registered, every
    /// burst of the (MP-safe) ports takes the global lock: no burst runs
    /// while the serialized driver is inside. Asserted by what ran at the
    /// same time (probes of one group count entries that overlap), not by
    /// throughput, which a loaded machine makes meaningless.
    #[test]
    fn fwd_under_the_global_lock_waits_for_it() {
        use crate::runtime::Fallback;
        use pktkit_native::Concurrency;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

        let pool = test_pool("bench-fwd-global");
        let group = "bench-fwd-global";
        let policy = LockPolicy::new(Fallback::Global);
        let serialized = DriverLock::attach(Concurrency::Serialized, &policy);
        assert!(policy.global_active());
        // The serialized driver: a probe that stays inside each entry a while.
        let mut held = probe_port(
            &pool,
            "probe-ser",
            &[("group", group), ("spin", "5000"), ("queues", "1")],
        );
        let ports: Vec<Box<dyn Driver>> = (0..2)
            .map(|i| {
                probe_port(
                    &pool,
                    &format!("probe-mp{i}"),
                    &[
                        ("mpsafe", "1"),
                        ("group", group),
                        ("spin", "10"),
                        ("queues", "1"),
                    ],
                )
            })
            .collect();
        let stop = AtomicBool::new(false);
        let entries = AtomicU64::new(0);
        let r = std::thread::scope(|s| {
            s.spawn(|| loop {
                {
                    let _g = serialized.enter();
                    held.control(&Control::SetPromisc(false)).unwrap();
                }
                entries.fetch_add(1, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Leaves the ports room to run between its entries.
                std::thread::sleep(Duration::from_micros(100));
            });
            let mut cfg = FwdConfig::new(32, 0.3);
            cfg.policy = Some(policy.clone());
            let r = fwd(ports, &cfg);
            stop.store(true, Ordering::Relaxed);
            r
        })
        .unwrap();
        serialized.detach();
        assert!(r.rx_packets > 0 && r.drops == 0, "{r}");
        assert!(entries.load(Ordering::Relaxed) > 0);
        // Never a port's burst and the serialized driver inside at once.
        assert_eq!(extra_of(&*held, "group_overlaps"), 0);
        drop(held);
        assert_eq!(pool.available(), pool.capacity());
    }

    /// Under `per-driver` the same ports do not wait for the serialized
    /// driver: they forward while it is held for the whole run (which under
    /// `global` would stop them until it is left).
    #[test]
    fn fwd_per_driver_does_not_wait_for_a_serialized_driver() {
        use crate::runtime::Fallback;
        use pktkit_native::Concurrency;
        use std::sync::mpsc;

        let pool = test_pool("bench-fwd-per-driver");
        let policy = LockPolicy::new(Fallback::PerDriver);
        let serialized = DriverLock::attach(Concurrency::Serialized, &policy);
        assert!(!policy.global_active());
        let (inside_tx, inside_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let r = std::thread::scope(|s| {
            let serialized = &serialized;
            s.spawn(move || {
                let _g = serialized.enter();
                inside_tx.send(()).unwrap();
                // Held until the forwarding below has returned.
                let _ = done_rx.recv();
            });
            inside_rx.recv().unwrap();
            let mut cfg = FwdConfig::new(32, 0.3);
            cfg.policy = Some(policy.clone());
            let r = fwd(null_ports(&pool, 2), &cfg);
            done_tx.send(()).unwrap();
            r
        })
        .unwrap();
        serialized.detach();
        assert!(r.rx_packets > 0 && r.drops == 0, "{r}");
        assert_eq!(pool.available(), pool.capacity());
    }

    /// Legacy devn-null ports through the shim: the copies they count are
    /// reported per packet, 0 on the zero-copy path, 1 when the driver
    /// hands up frames in its own memory (rxmode=copy).
    #[test]
    fn fwd_reports_the_copies_legacy_ports_count() {
        let legacy = |pool: &Pool, opts: &[(&str, &str)]| -> Vec<Box<dyn Driver>> {
            let f = pktkit_shim::factory(&format!("legacy:{}", pktkit_shim::drivers::DEVN_NULL))
                .unwrap();
            (0..2)
                .map(|i| port(f, pool, &format!("en{i}"), opts))
                .collect()
        };
        let pool = test_pool("bench-legacy-zc");
        let r = fwd(legacy(&pool, &[]), &FwdConfig::new(32, 0.1)).unwrap();
        assert!(r.rx_packets > 0 && r.drops == 0, "{r}");
        assert_eq!(r.copies_per_pkt, Some(0.0), "{r}");
        assert!(r.to_string().contains("copies/pkt 0.000000"), "{r}");
        let pool = test_pool("bench-legacy-copy");
        let r = fwd(
            legacy(&pool, &[("rxmode", "copy")]),
            &FwdConfig::new(32, 0.1),
        )
        .unwrap();
        assert_eq!(r.copies_per_pkt, Some(1.0), "{r}");
        assert_eq!(pool.available(), pool.capacity());
        // Native ports count no copies: nothing is reported.
        let pool = test_pool("bench-null-copies");
        let r = fwd(null_ports(&pool, 2), &FwdConfig::new(32, 0.05)).unwrap();
        assert_eq!(r.copies_per_pkt, None);
    }

    #[test]
    fn fwd_one_port_forwards_to_itself() {
        let pool = test_pool("bench-fwd1");
        let r = fwd(null_ports(&pool, 1), &FwdConfig::new(8, 0.05)).unwrap();
        assert!(r.rx_packets > 0 && r.drops == 0, "{r}");
        assert_eq!(r.ports, ["null0"]);
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn fwd_rejects_bad_config_and_stops_nothing_it_did_not_start() {
        let pool = test_pool("bench-bad");
        assert!(matches!(
            fwd(null_ports(&pool, 3), &FwdConfig::new(32, 0.1)),
            Err(BenchError::PortCount(3))
        ));
        assert!(matches!(
            fwd(null_ports(&pool, 2), &FwdConfig::new(0, 0.1)),
            Err(BenchError::Burst(0))
        ));
        assert!(matches!(
            fwd(null_ports(&pool, 2), &FwdConfig::new(32, f64::NAN)),
            Err(BenchError::Duration(_))
        ));
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn pool_bench_reports_positive_figures() {
        let r = pool(&PoolBenchConfig {
            buffers: 1024,
            bulk: 32,
            seconds: 0.05,
            hugepages: HugePages::Never,
        })
        .unwrap();
        assert!(r.single_ns > 0.0 && r.single_ns.is_finite(), "{r}");
        assert!(r.bulk_ns > 0.0 && r.bulk_ns.is_finite(), "{r}");
        assert!(!r.hugepages);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["bulk"], 32);
        assert_eq!(v["hugepages"], false);
        assert!(v["single_ns"].as_f64().unwrap() > 0.0);
    }
}
