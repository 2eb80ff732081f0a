//! `probe`: a test driver that detects concurrent entry.
//!
//! Every entry point (rx/tx bursts of every queue, control, service) marks
//! itself active for a short busy stretch and counts an *overlap* when another
//! entry of the same driver is active at the same moment; probes given the
//! same `group=` also count overlaps across drivers. Under load on several
//! workers this proves what the runtime enforces: a serialized driver never
//! sees an overlap, an MP-safe one does, and with `--fallback global` no two
//! drivers of a group overlap either. Packets: rx allocates 64-byte frames,
//! tx frees them. Its one tunable, `tunables_calls`, counts the calls of
//! `tunables` (that one included), so tests see when the control path
//! asks the driver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pktkit_native::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError,
    DriverFactory, DriverKind, LinkState, OptionSpec, OwnerId, PacketBatch, Pool, QueueCounters,
    Queues, RxQueue, Service, Tunable, TxQueue,
};

/// Overlap detector shared by the entry points it watches.
#[derive(Default)]
pub struct Detector {
    active: AtomicUsize,
    overlaps: AtomicU64,
    entries: AtomicU64,
}

impl Detector {
    fn enter(&self) {
        self.entries.fetch_add(1, Ordering::Relaxed);
        if self.active.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlaps.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn exit(&self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn group(name: &str) -> Arc<Detector> {
    static GROUPS: OnceLock<Mutex<HashMap<String, Arc<Detector>>>> = OnceLock::new();
    let mut g = crate::runtime::lock(GROUPS.get_or_init(Default::default));
    g.entry(name.to_owned()).or_default().clone()
}

struct Shared {
    own: Detector,
    group: Option<Arc<Detector>>,
    spin: u32,
}

impl Shared {
    /// Runs `f` as one entry: marks active, spins, checks overlaps.
    fn entry<R>(&self, f: impl FnOnce() -> R) -> R {
        self.own.enter();
        if let Some(g) = &self.group {
            g.enter();
        }
        for _ in 0..self.spin {
            std::hint::spin_loop();
        }
        let r = f();
        if let Some(g) = &self.group {
            g.exit();
        }
        self.own.exit();
        r
    }
}

struct Probe {
    shared: Arc<Shared>,
    tunables_calls: u64,
    class: Concurrency,
    queues: u16,
    pool: Pool,
    owner: OwnerId,
    mac: [u8; 6],
}

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "mpsafe",
        help: "1: MP-safe, 0: serialized (default 0)",
        required: false,
    },
    OptionSpec {
        key: "queues",
        help: "queue pairs (default 4)",
        required: false,
    },
    OptionSpec {
        key: "group",
        help: "detect overlaps across probes of this group",
        required: false,
    },
    OptionSpec {
        key: "spin",
        help: "busy iterations inside each entry (default 2000)",
        required: false,
    },
];

/// The probe driver's factory.
pub static FACTORY: DriverFactory = DriverFactory {
    name: "probe",
    prefix: "probe",
    kind: DriverKind::Native,
    description: "test driver that detects concurrent entry (concurrency-class checks)",
    devices: 1,
    options: OPTIONS,
    create: &create,
};

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let mpsafe: u8 = args.opt_parse("mpsafe", 0)?;
    let queues: u16 = args.opt_parse("queues", 4)?;
    if queues == 0 || queues > 64 {
        return Err(DriverError::BadOption {
            key: "queues".into(),
            value: queues.to_string(),
            why: "must be 1..=64".into(),
        });
    }
    let spin: u32 = args.opt_parse("spin", 2000)?;
    let owner = args.owner(0);
    Ok(vec![Box::new(Probe {
        shared: Arc::new(Shared {
            own: Detector::default(),
            group: args.opt("group").map(group),
            spin,
        }),
        tunables_calls: 0,
        class: if mpsafe != 0 {
            Concurrency::MpSafe
        } else {
            Concurrency::Serialized
        },
        queues,
        pool: args.pool.clone(),
        owner,
        mac: [0x02, 0x70, 0x72, 0x6f, 0x62, owner.0 as u8],
    })])
}

impl Driver for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            rx_queues: self.queues,
            tx_queues: self.queues,
            ..Capabilities::default()
        }
    }
    fn concurrency(&self) -> Concurrency {
        self.class
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn start(&mut self) -> Result<Queues, DriverError> {
        let rx = (0..self.queues)
            .map(|_| {
                Box::new(ProbeRx {
                    shared: self.shared.clone(),
                    pool: self.pool.clone(),
                    owner: self.owner,
                    c: QueueCounters::default(),
                }) as Box<dyn RxQueue>
            })
            .collect();
        let tx = (0..self.queues)
            .map(|_| {
                Box::new(ProbeTx {
                    shared: self.shared.clone(),
                    c: QueueCounters::default(),
                }) as Box<dyn TxQueue>
            })
            .collect();
        Ok(Queues { rx, tx })
    }
    fn stop(&mut self, queues: Queues) {
        drop(queues);
    }
    fn link(&mut self) -> LinkState {
        LinkState::up(1000)
    }
    fn control(&mut self, _req: &Control) -> Result<(), DriverError> {
        self.shared.entry(|| Ok(()))
    }
    fn service(&mut self) -> Service {
        self.shared.entry(Service::default)
    }
    fn tunables(&mut self) -> Vec<Tunable> {
        self.tunables_calls += 1;
        vec![Tunable {
            name: "tunables_calls".into(),
            value: self.tunables_calls.to_string(),
            writable: false,
            description: "calls of Driver::tunables, this one included".into(),
        }]
    }
    fn counters(&self) -> DeviceCounters {
        let mut extra = vec![
            (
                "entries".to_owned(),
                self.shared.own.entries.load(Ordering::Relaxed),
            ),
            (
                "overlaps".to_owned(),
                self.shared.own.overlaps.load(Ordering::Relaxed),
            ),
        ];
        if let Some(g) = &self.shared.group {
            extra.push((
                "group_overlaps".to_owned(),
                g.overlaps.load(Ordering::Relaxed),
            ));
        }
        DeviceCounters {
            extra,
            ..DeviceCounters::default()
        }
    }
}

struct ProbeRx {
    shared: Arc<Shared>,
    pool: Pool,
    owner: OwnerId,
    c: QueueCounters,
}

impl RxQueue for ProbeRx {
    fn rx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let (pool, owner) = (&self.pool, self.owner);
        let n = self.shared.entry(|| {
            let start = batch.len();
            let n = pool.alloc_batch(owner, batch, 4);
            for m in batch.iter_mut_from(start) {
                m.set_len(64);
            }
            n
        });
        self.c.packets += n as u64;
        self.c.bytes += 64 * n as u64;
        n
    }
    fn counters(&self) -> QueueCounters {
        self.c
    }
}

struct ProbeTx {
    shared: Arc<Shared>,
    c: QueueCounters,
}

impl TxQueue for ProbeTx {
    fn tx_burst(&mut self, batch: &mut PacketBatch) -> usize {
        let n = batch.len();
        self.shared.entry(|| batch.free_front(n));
        self.c.packets += n as u64;
        n
    }
    fn counters(&self) -> QueueCounters {
        self.c
    }
}
