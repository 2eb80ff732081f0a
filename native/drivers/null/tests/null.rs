//! The null device: bursts of fresh frames in, everything swallowed out.

use std::collections::BTreeMap;

use pktkit_drv_null::FACTORY;
use pktkit_native::pool::HugePages;
use pktkit_native::{AttachArgs, Control, DriverError, PacketBatch, Pool, PoolConfig, BATCH_MAX};

fn pool(name: &str, buffers: usize) -> Pool {
    Pool::new(&PoolConfig {
        name: name.into(),
        buffers,
        hugepages: HugePages::Never,
    })
    .expect("pool")
}

fn attach(
    pool: &Pool,
    opts: &[(&str, &str)],
) -> Result<Box<dyn pktkit_native::Driver>, DriverError> {
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    FACTORY.check_options(&options)?;
    let owner = pool.register_owner("null0").expect("owner");
    let mut devs = (FACTORY.create)(&AttachArgs {
        options,
        pool: pool.clone(),
        owners: vec![owner],
        ifnames: vec!["null0".into()],
        pci: None,
    })?;
    assert_eq!(devs.len(), FACTORY.devices);
    Ok(devs.remove(0))
}

#[test]
fn rx_fills_the_batch_and_tx_frees_it_all() {
    let pool = pool("null-rt", 4096);
    let mut dev = attach(&pool, &[("size", "60")]).expect("attach");
    assert!(dev.link().up);
    let mut q = dev.start().expect("start");
    assert_eq!((q.rx.len(), q.tx.len()), (1, 1));

    let mut batch = PacketBatch::new();
    assert_eq!(q.rx[0].rx_burst(&mut batch), BATCH_MAX);
    assert_eq!(batch.len(), BATCH_MAX);
    assert!(batch.iter().all(|m| m.pkt_len() == 60 && m.len() == 60));
    assert_eq!(pool.available(), 4096 - BATCH_MAX);

    // A half-full batch only gets its room.
    batch.free_front(100);
    assert_eq!(q.rx[0].rx_burst(&mut batch), 100);
    assert_eq!(batch.len(), BATCH_MAX);

    assert_eq!(q.tx[0].tx_burst(&mut batch), BATCH_MAX);
    assert!(batch.is_empty());
    assert_eq!(pool.available(), 4096);

    let rx = q.rx[0].counters();
    assert_eq!(rx.packets, (BATCH_MAX + 100) as u64);
    assert_eq!(rx.bytes, 60 * (BATCH_MAX + 100) as u64);
    assert_eq!(rx.drops, 0);
    let tx = q.tx[0].counters();
    assert_eq!(tx.packets, BATCH_MAX as u64);
    assert_eq!(tx.bytes, 60 * BATCH_MAX as u64);
    dev.stop(q);
    assert_eq!(pool.available(), 4096);
}

#[test]
fn short_pool_counts_drops() {
    let pool = pool("null-short", 100);
    let mut dev = attach(&pool, &[]).expect("attach");
    let mut q = dev.start().expect("start");
    let mut batch = PacketBatch::new();
    assert_eq!(q.rx[0].rx_burst(&mut batch), 100);
    assert!(batch.iter().all(|m| m.pkt_len() == 64));
    let c = q.rx[0].counters();
    assert_eq!(c.packets, 100);
    assert_eq!(c.drops, (BATCH_MAX - 100) as u64);
    assert_eq!(c.ring_full, 1);
    assert_eq!(q.tx[0].tx_burst(&mut batch), 100);
    dev.stop(q);
    assert_eq!(pool.available(), 100);
}

#[test]
fn options_and_control() {
    let pool = pool("null-opt", 64);
    let mut dev = attach(&pool, &[("queues", "4"), ("mac", "02:00:00:aa:bb:cc")]).expect("attach");
    assert_eq!(dev.mac(), [2, 0, 0, 0xaa, 0xbb, 0xcc]);
    assert_eq!(dev.capabilities().rx_queues, 4);
    let q = dev.start().expect("start");
    assert_eq!((q.rx.len(), q.tx.len()), (4, 4));
    assert!(dev.start().is_err(), "second start refused");
    dev.stop(q);

    dev.control(&Control::SetMtu(9000)).expect("jumbo mtu");
    assert!(dev.control(&Control::SetMtu(20)).is_err());
    dev.control(&Control::SetMac([2, 1, 2, 3, 4, 5]))
        .expect("mac");
    assert_eq!(dev.mac(), [2, 1, 2, 3, 4, 5]);
    dev.control(&Control::SetPromisc(true)).expect("promisc");
    dev.control(&Control::SetMulticast(vec![[1, 0, 0x5e, 0, 0, 1]]))
        .expect("multicast");

    assert!(matches!(
        attach(&pool, &[("size", "9")]),
        Err(DriverError::BadOption { .. })
    ));
    assert!(matches!(
        attach(&pool, &[("size", "x")]),
        Err(DriverError::BadOption { .. })
    ));
    assert!(matches!(
        attach(&pool, &[("mac", "02:00")]),
        Err(DriverError::BadOption { .. })
    ));
    assert!(matches!(
        attach(&pool, &[("bogus", "1")]),
        Err(DriverError::UnknownOption { .. })
    ));
    // Distinct default MACs.
    let a = attach(&pool, &[]).expect("a").mac();
    let b = attach(&pool, &[]).expect("b").mac();
    assert_ne!(a, b);
    assert_eq!(a[0] & 0x03, 0x02, "locally administered unicast");
}

/// Not a benchmark, but catches a pathologically slow path: a million
/// packets through rx and tx must take well under a second even unoptimised.
#[test]
fn a_million_packets_round_trip() {
    let pool = pool("null-many", 2048);
    let mut dev = attach(&pool, &[]).expect("attach");
    let mut q = dev.start().expect("start");
    let mut batch = PacketBatch::new();
    let t = std::time::Instant::now();
    let mut n = 0;
    while n < 1_000_000 {
        n += q.rx[0].rx_burst(&mut batch);
        q.tx[0].tx_burst(&mut batch);
    }
    eprintln!("1M packets null->null: {:?}", t.elapsed());
    assert_eq!(q.tx[0].counters().packets, n as u64);
    dev.stop(q);
    assert_eq!(pool.available(), 2048);
}
