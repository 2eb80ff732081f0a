//! The runtime enforces each driver's concurrency class, proven with the
//! `probe` driver under multi-threaded load: every queue of every probe is
//! polled by its own task, spread over four workers.

use std::collections::BTreeMap;
use std::time::Duration;

use pktkit::runtime::Fallback;
use pktkit::stack::{Stack, StackConfig};
use pktkit_native::options::DriverSpec;

fn counter(stack: &Stack, ifname: &str, key: &str) -> u64 {
    let c = stack.interface(ifname).unwrap().counters();
    c.device
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or(0)
}

fn probe(mpsafe: bool, group: &str) -> DriverSpec {
    let mut options = BTreeMap::new();
    options.insert(
        "mpsafe".to_owned(),
        if mpsafe { "1" } else { "0" }.to_owned(),
    );
    options.insert("queues".to_owned(), "4".to_owned());
    options.insert("group".to_owned(), group.to_owned());
    DriverSpec {
        name: "probe".into(),
        options,
    }
}

/// Runs a serialized and an MP-safe probe, each forwarding to itself on four
/// queues, for a while; returns (stack, names).
fn load(fallback: Fallback, group: &str) -> (Stack, String, String) {
    let cfg = StackConfig {
        workers: 4,
        fallback,
        pool_buffers: 4096,
        ..StackConfig::default()
    };
    let stack = Stack::new(&cfg).unwrap();
    let ser = stack
        .attach(&probe(false, group))
        .unwrap()
        .remove(0)
        .name
        .clone();
    let mp = stack
        .attach(&probe(true, group))
        .unwrap()
        .remove(0)
        .name
        .clone();
    for n in [&ser, &mp] {
        stack.up(n).unwrap();
        stack.forward(n, n).unwrap();
    }
    // Let the workers hammer the probes (and the control path too).
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(25));
        for n in [&ser, &mp] {
            stack.interface(n).unwrap().set_promisc(true).unwrap();
        }
    }
    (stack, ser, mp)
}

#[test]
fn per_driver_serializes_only_serialized_drivers() {
    let (stack, ser, mp) = load(Fallback::PerDriver, "per-driver");
    let entries = counter(&stack, &ser, "entries");
    assert!(
        entries > 1000,
        "the serialized probe was barely entered ({entries})"
    );
    assert_eq!(
        counter(&stack, &ser, "overlaps"),
        0,
        "a serialized driver was entered concurrently"
    );
    assert!(
        counter(&stack, &mp, "overlaps") > 0,
        "an MP-safe driver's queues never ran in parallel"
    );
    assert!(
        counter(&stack, &ser, "group_overlaps") > 0,
        "drivers did not run in parallel with each other"
    );
    let pool = stack.pool().clone();
    stack.shutdown();
    assert_eq!(pool.available(), pool.capacity(), "buffers leaked");
}

#[test]
fn global_fallback_serializes_every_driver() {
    let (stack, ser, mp) = load(Fallback::Global, "global");
    assert!(counter(&stack, &mp, "entries") > 1000);
    assert_eq!(counter(&stack, &ser, "overlaps"), 0);
    assert_eq!(
        counter(&stack, &mp, "overlaps"),
        0,
        "MP-safe driver ran unlocked under --fallback global"
    );
    assert_eq!(
        counter(&stack, &ser, "group_overlaps"),
        0,
        "two drivers ran at once under --fallback global"
    );
    stack.shutdown();
}

#[test]
fn global_fallback_without_serialized_drivers_stays_parallel() {
    let cfg = StackConfig {
        workers: 4,
        fallback: Fallback::Global,
        pool_buffers: 4096,
        ..StackConfig::default()
    };
    let stack = Stack::new(&cfg).unwrap();
    let mp = stack
        .attach(&probe(true, "global-mp-only"))
        .unwrap()
        .remove(0)
        .name
        .clone();
    stack.up(&mp).unwrap();
    stack.forward(&mp, &mp).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(counter(&stack, &mp, "overlaps") > 0);
    stack.shutdown();
}
