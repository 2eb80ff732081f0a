//! bsdnull through compat-bsd's adapter, without a stack: the driver
//! contract to the letter (bursts, full/empty, control, counters, no leaks).

use std::collections::BTreeMap;

use pktkit_native::pool::HugePages;
use pktkit_native::{AttachArgs, Control, Driver, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig};

fn pool(name: &str, buffers: usize) -> Pool {
    Pool::new(&PoolConfig {
        name: name.into(),
        buffers,
        hugepages: HugePages::Never,
    })
    .expect("pool")
}

fn attach(pool: &Pool, opts: &[(&str, &str)]) -> (Box<dyn Driver>, OwnerId) {
    let owner = pool.register_owner("bnull0").expect("owner");
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pktkit_bsdnull::FACTORY
        .check_options(&options)
        .expect("options");
    let args = AttachArgs {
        options,
        pool: pool.clone(),
        owners: vec![owner],
        ifnames: vec!["bnull0".into()],
        pci: None,
    };
    let mut v = (pktkit_bsdnull::FACTORY.create)(&args).expect("attach");
    (v.remove(0), owner)
}

#[test]
fn receives_sized_frames_and_swallows_transmits() {
    let p = pool("bsdnull-burst", 1024);
    let (mut drv, owner) = attach(&p, &[("size", "128")]);
    assert_eq!(drv.name(), "bnull");
    assert_eq!(drv.mac(), [0x02, 0x62, 0x73, 0x64, 0x00, 0x00]);
    assert_eq!(drv.concurrency(), pktkit_native::Concurrency::Serialized);
    let mut q = drv.start().expect("start");
    assert!(drv.link().up);

    let mut batch = PacketBatch::with_limit(32);
    let n = q.rx[0].rx_burst(&mut batch);
    assert_eq!(n, 32, "a full burst when the batch has room");
    assert!(batch.iter().all(|m| m.pkt_len() == 128));
    assert_eq!(q.rx[0].rx_burst(&mut batch), 0, "no room, nothing received");
    assert_eq!(p.held_by(owner), 32);

    let sent = q.tx[0].tx_burst(&mut batch);
    assert_eq!(sent, 32);
    assert!(batch.is_empty());
    assert_eq!(p.held_by(owner), 0, "if_start freed what it sent");
    let rx = q.rx[0].counters();
    let tx = q.tx[0].counters();
    assert_eq!((rx.packets, rx.bytes), (32, 32 * 128));
    assert_eq!((tx.packets, tx.bytes), (32, 32 * 128));
    drv.stop(q);
    assert_eq!(p.held_by(owner), 0);
}

#[test]
fn transmit_drains_if_snd_every_burst_and_promisc_keeps_it_running() {
    let p = pool("bsdnull-full", 2048);
    let (mut drv, owner) = attach(&p, &[]);
    let mut q = drv.start().expect("start");
    // SIOCSIFFLAGS while up and running re-initialises through ether_ioctl.
    drv.control(&Control::SetPromisc(true)).expect("promisc");
    let mut total = 0;
    for _ in 0..8 {
        let mut b = PacketBatch::new();
        for _ in 0..100 {
            b.push(Mbuf::from_slice(&p, owner, &[0u8; 60]).expect("buf"))
                .expect("room");
        }
        total += q.tx[0].tx_burst(&mut b);
        b.free_all();
    }
    assert_eq!(total, 800, "running interface drains if_snd every burst");
    drv.stop(q);
    assert_eq!(p.held_by(owner), 0);
}

#[test]
fn if_transmit_with_a_pcq_takes_every_packet() {
    let p = pool("bsdnull-xmit", 2048);
    let (mut drv, owner) = attach(&p, &[("mpsafe", "1"), ("transmit", "1"), ("check", "1")]);
    assert_eq!(drv.concurrency(), pktkit_native::Concurrency::MpSafe);
    let mut q = drv.start().expect("start");
    let mut total = 0;
    for round in 0..8 {
        let mut b = PacketBatch::new();
        for _ in 0..100 {
            b.push(Mbuf::from_slice(&p, owner, &[round as u8; 60]).expect("buf"))
                .expect("room");
        }
        total += q.tx[0].tx_burst(&mut b);
        assert!(b.is_empty(), "if_transmit consumes every packet");
    }
    assert_eq!(total, 800);
    assert_eq!(p.held_by(owner), 0, "sent and freed through the pcq");
    let tx = q.tx[0].counters();
    assert_eq!((tx.packets, tx.bytes, tx.drops), (800, 800 * 60, 0));
    let extra = drv.counters().extra;
    let count = |key: &str| {
        extra
            .iter()
            .find(|(k, _)| k == &format!("bnull0 {key}"))
            .map(|(_, v)| *v)
    };
    // Every packet entered the driver through if_transmit (counted as a
    // start in check mode); if_start never ran.
    assert_eq!(count("start"), Some(800));
    assert_eq!(count("tx queue full"), Some(0));
    drv.stop(q);
    assert_eq!(p.held_by(owner), 0);
}

#[test]
fn multicast_list_goes_through_ether_ioctl() {
    let p = pool("bsdnull-mc", 256);
    let (mut drv, _owner) = attach(&p, &[]);
    let q = drv.start().expect("start");
    let a = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    let b = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
    drv.control(&Control::SetMulticast(vec![a, b]))
        .expect("add");
    drv.control(&Control::SetMulticast(vec![b])).expect("del");
    drv.control(&Control::SetAllMulti(true)).expect("allmulti");
    drv.control(&Control::SetAllMulti(false))
        .expect("allmulti off");
    // A unicast address is refused by ether_addmulti (EINVAL).
    assert!(drv
        .control(&Control::SetMulticast(vec![b, [0x02, 0, 0, 0, 0, 1]]))
        .is_err());
    drv.control(&Control::SetMtu(1400)).expect("mtu");
    assert!(drv.control(&Control::SetMtu(9000)).is_err(), "no jumbo");
    let ioctls = drv
        .counters()
        .extra
        .iter()
        .find(|(k, _)| k == "bnull0 ioctl")
        .map(|(_, v)| *v);
    assert_eq!(ioctls, Some(0), "check mode is off: entry counters stay 0");
    drv.stop(q);
}

/// Whether `fd` becomes readable within `ms` milliseconds.
fn readable(fd: i32, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one live pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
}

#[test]
fn callouts_run_from_service_and_leak_nothing() {
    let p = pool("bsdnull-tick", 256);
    let (mut drv, owner) = attach(&p, &[("check", "1"), ("tick", "1")]);
    let q = drv.start().expect("start");
    let fd = drv.service_fd().expect("service fd");
    let t0 = std::time::Instant::now();
    let ticks = |d: &dyn Driver| {
        d.counters()
            .extra
            .iter()
            .find(|(k, _)| k == "bnull0 tick")
            .map_or(0, |(_, v)| *v)
    };
    while ticks(drv.as_ref()) < 5 && t0.elapsed().as_secs() < 5 {
        readable(fd, 100);
        drv.service();
    }
    assert!(
        ticks(drv.as_ref()) >= 5,
        "the 10 ms callout fired through the timerfd"
    );
    drv.stop(q);
    drop(drv);
    assert_eq!(p.held_by(owner), 0);
}

#[test]
fn fault_injection_needs_a_started_device_with_dma_maps() {
    use pktkit_native::{DriverError, Fault};
    let p = pool("bsdnull-fault", 256);
    let (mut drv, _owner) = attach(&p, &[]);
    let fault = Fault::RxBufferIova(0xdead_0000_0000);
    assert!(
        matches!(drv.inject_fault(fault), Err(DriverError::Device(_))),
        "refused while stopped"
    );
    let mut q = drv.start().expect("start");
    // A pseudo-device has no DMA map the device writes into: the suite's
    // dma_fault skips it, and the driver keeps running.
    match drv.inject_fault(fault) {
        Err(DriverError::Unsupported(why)) => assert!(why.contains("DMA map"), "{why}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let mut batch = PacketBatch::with_limit(8);
    assert_eq!(q.rx[0].rx_burst(&mut batch), 8);
    drv.stop(q);
}

#[test]
fn device_lookup_finds_the_attached_unit_and_forgets_it_at_detach() {
    use pktkit_bsd::kern::device_lookup_private;
    use pktkit_bsd::sys::cfdriver;

    let p = pool("bsdnull-lookup", 64);
    let owner = p.register_owner("bnull7").expect("owner");
    let args = AttachArgs {
        options: BTreeMap::new(),
        pool: p.clone(),
        owners: vec![owner],
        ifnames: vec!["bnull7".into()],
        pci: None,
    };
    let drv = (pktkit_bsdnull::FACTORY.create)(&args).expect("attach");
    let cd = cfdriver {
        cd_name: c"bsdnull".as_ptr(),
        ..cfdriver::default()
    };
    let lookup = |unit| {
        // SAFETY: a cfdriver with a C-string name.
        unsafe { device_lookup_private(&cd, unit) }
    };
    assert!(!lookup(7).is_null(), "bnull7 is attached");
    assert!(lookup(8).is_null(), "no unit 8");
    drop(drv);
    assert!(lookup(7).is_null(), "forgotten at detach");
}

/// The driver's sysctl leaves, by name: (value, writable).
fn tunables(drv: &mut Box<dyn Driver>) -> BTreeMap<String, (String, bool)> {
    drv.tunables()
        .into_iter()
        .map(|t| (t.name, (t.value, t.writable)))
        .collect()
}

fn tx_some(q: &mut pktkit_native::Queues, p: &Pool, owner: OwnerId, n: usize) {
    let mut b = PacketBatch::new();
    for _ in 0..n {
        b.push(Mbuf::from_slice(p, owner, &[0u8; 60]).expect("buf"))
            .expect("room");
    }
    assert_eq!(q.tx[0].tx_burst(&mut b), n);
}

#[test]
fn sysctl_leaves_are_listed_read_and_set_under_the_device_node() {
    let p = pool("bsdnull-sysctl", 256);
    let (mut drv, _owner) = attach(&p, &[("size", "100")]);
    let t = tunables(&mut drv);
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        ["size", "tx_defer", "tx_works"],
        "{t:?}"
    );
    assert_eq!(t["size"], ("100".into(), true), "read through the handler");
    assert_eq!(t["tx_defer"], ("0".into(), true));
    assert_eq!(t["tx_works"], ("0".into(), false));
    let described = drv.tunables();
    assert!(described
        .iter()
        .any(|t| t.name == "tx_defer" && t.description.contains("workqueue")));

    drv.set_tunable("size", "128")
        .expect("size through the handler");
    let mut q = drv.start().expect("start");
    let mut batch = PacketBatch::with_limit(4);
    assert_eq!(q.rx[0].rx_burst(&mut batch), 4);
    assert!(
        batch.iter().all(|m| m.pkt_len() == 128),
        "the handler's write reached the driver"
    );
    batch.free_all();

    // Refusals change nothing and say why.
    let refused = |drv: &mut Box<dyn Driver>, name: &str, value: &str, why: &str| {
        let e = drv.set_tunable(name, value).expect_err(value).to_string();
        assert!(e.contains(why), "{name}={value}: {e}");
    };
    refused(&mut drv, "size", "5", "EINVAL");
    refused(&mut drv, "size", "big", "expected a 32-bit integer");
    refused(&mut drv, "tx_defer", "2", "expected 0 or 1");
    refused(&mut drv, "tx_works", "7", "read-only");
    refused(&mut drv, "no_such", "1", "no sysctl node 'no_such'");
    let t = tunables(&mut drv);
    assert_eq!(t["size"].0, "128");
    assert_eq!(t["tx_defer"].0, "0");
    assert_eq!(t["tx_works"].0, "0");
    drv.stop(q);
    drop(drv);
    assert_eq!(
        pktkit_bsd::sysctl::left_at_detach(),
        0,
        "bsdnull's detach tore down every node it made"
    );
}

#[test]
fn tx_defer_frees_sent_packets_from_the_workqueue_in_service() {
    for mpsafe in ["0", "1"] {
        let p = pool(&format!("bsdnull-wq{mpsafe}"), 512);
        let (mut drv, owner) = attach(&p, &[("mpsafe", mpsafe), ("check", "1")]);
        let mut q = drv.start().expect("start");
        drv.set_tunable("tx_defer", "1").expect("tx_defer");
        assert_eq!(tunables(&mut drv)["tx_defer"].0, "1");

        tx_some(&mut q, &p, owner, 10);
        assert_eq!(p.held_by(owner), 10, "sent packets wait for the work");
        tx_some(&mut q, &p, owner, 5);
        assert_eq!(p.held_by(owner), 15, "one work for both bursts");
        let fd = drv.service_fd().expect("service fd");
        assert!(
            readable(fd, 1000),
            "enqueueing the work made the service fd readable"
        );
        drv.service();
        assert_eq!(p.held_by(owner), 0, "the work freed them");
        let t = tunables(&mut drv);
        assert_eq!(t["tx_works"].0, "1", "mpsafe={mpsafe}: {t:?}");
        let extra = drv.counters().extra;
        let count = |key: &str| extra.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        assert_eq!(count("workqueue bnull0 works"), Some(1));
        assert_eq!(count("workqueue bnull0 double enqueues"), Some(0));
        assert_eq!(count("bnull0 txwork"), Some(1), "the work is checked");
        assert_eq!(count("bnull0 overlaps"), Some(0));

        // Pending at stop: workqueue_wait in the driver's stop runs it.
        tx_some(&mut q, &p, owner, 7);
        assert_eq!(p.held_by(owner), 7);
        drv.stop(q);
        assert_eq!(p.held_by(owner), 0, "stop waited for the work");
        assert_eq!(tunables(&mut drv)["tx_works"].0, "2");

        drv.set_tunable("tx_defer", "0").expect("off");
        let mut q = drv.start().expect("restart");
        tx_some(&mut q, &p, owner, 3);
        assert_eq!(p.held_by(owner), 0, "freed at once again");
        drv.stop(q);
    }
}
