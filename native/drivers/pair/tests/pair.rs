//! Two ends back to back: delivery, order, full rings, wake-ups, cleanup.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pktkit_drv_pair::{FACTORY, RING_SIZE};
use pktkit_native::pool::HugePages;
use pktkit_native::{
    AttachArgs, Control, Driver, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig, Queues, BATCH_MAX,
};

fn pool(name: &str, buffers: usize) -> Pool {
    Pool::new(&PoolConfig {
        name: name.into(),
        buffers,
        hugepages: HugePages::Never,
    })
    .expect("pool")
}

struct Pair {
    a: Box<dyn Driver>,
    b: Box<dyn Driver>,
    owners: [OwnerId; 2],
}

fn attach(pool: &Pool, opts: &[(&str, &str)]) -> Pair {
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    FACTORY.check_options(&options).expect("options");
    let owners = [
        pool.register_owner("pair0").expect("owner"),
        pool.register_owner("pair1").expect("owner"),
    ];
    let mut devs = (FACTORY.create)(&AttachArgs {
        options,
        pool: pool.clone(),
        owners: owners.to_vec(),
        ifnames: vec!["pair0".into(), "pair1".into()],
        pci: None,
    })
    .expect("attach");
    assert_eq!(devs.len(), 2);
    let b = devs.pop().expect("b");
    let a = devs.pop().expect("a");
    Pair { a, b, owners }
}

/// A frame numbered `seq`: broadcast destination, our ethertype, seq in payload.
fn frame(pool: &Pool, seq: u32, len: usize) -> Mbuf {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u32 ^ seq) as u8;
    }
    Mbuf::from_slice(pool, OwnerId::POOL, &f).expect("buffer")
}

fn check(m: &Mbuf, seq: u32, len: usize) {
    let f = m.to_vec();
    assert_eq!(f.len(), len);
    assert_eq!(&f[14..18], &seq.to_be_bytes(), "in order");
    assert!(f[18..]
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i as u32 ^ seq) as u8));
}

#[test]
fn frames_cross_intact_and_in_order_both_ways() {
    let pool = pool("pair-x", 4096);
    let mut p = attach(&pool, &[]);
    assert_ne!(p.a.mac(), p.b.mac());
    let mut qa = p.a.start().expect("start a");
    let mut qb = p.b.start().expect("start b");

    for dir in 0..2u32 {
        let (from, to) = if dir == 0 {
            (&mut qa, &mut qb)
        } else {
            (&mut qb, &mut qa)
        };
        let mut out = PacketBatch::new();
        for i in 0..100 {
            let len = if i == 50 { 9014 } else { 60 + i as usize };
            assert!(out.push(frame(&pool, dir << 16 | i, len)).is_ok());
        }
        assert_eq!(from.tx[0].tx_burst(&mut out), 100);
        assert!(out.is_empty());
        let mut got = PacketBatch::new();
        assert_eq!(to.rx[0].rx_burst(&mut got), 100);
        for (i, m) in got.iter().enumerate() {
            let len = if i == 50 { 9014 } else { 60 + i };
            check(m, dir << 16 | i as u32, len);
        }
        assert_eq!(to.rx[0].rx_burst(&mut got), 0, "ring drained");
        let rx = to.rx[0].counters();
        assert_eq!(rx.packets, 100);
        assert_eq!(rx.multicast, 100);
        assert_eq!(rx.bytes, from.tx[0].counters().bytes);
        // Received buffers are the receiver's (5 for the jumbo frame's chain).
        assert_eq!(pool.held_by(p.owners[(1 - dir) as usize]), 104);
    }
    p.a.stop(qa);
    p.b.stop(qb);
    assert_eq!(pool.available(), 4096);
}

#[test]
fn full_ring_takes_fewer_and_leaves_the_rest() {
    let pool = pool("pair-full", 4096);
    let mut p = attach(&pool, &[]);
    let mut qa = p.a.start().expect("start a");
    let mut qb = p.b.start().expect("start b");
    let mut seq = 0;
    let mut sent = 0;
    let mut out = PacketBatch::new();
    for _ in 0..5 {
        while out.room() > 0 {
            assert!(out.push(frame(&pool, seq, 64)).is_ok());
            seq += 1;
        }
        sent += qa.tx[0].tx_burst(&mut out);
    }
    assert_eq!(sent, RING_SIZE);
    assert_eq!(out.len(), BATCH_MAX, "the last burst took nothing");
    assert!(qa.tx[0].counters().ring_full >= 1);
    // The packets left are the next ones, untouched.
    check(out.front().expect("front"), RING_SIZE as u32, 64);

    // Reading makes room again; order is kept across the full period.
    let mut got = PacketBatch::new();
    assert_eq!(qb.rx[0].rx_burst(&mut got), BATCH_MAX);
    for (i, m) in got.iter().enumerate() {
        check(m, i as u32, 64);
    }
    got.free_all();
    assert_eq!(qa.tx[0].tx_burst(&mut out), BATCH_MAX);
    let mut next = BATCH_MAX as u32;
    loop {
        let n = qb.rx[0].rx_burst(&mut got);
        if n == 0 {
            break;
        }
        for m in got.iter() {
            check(m, next, 64);
            next += 1;
        }
        got.free_all();
    }
    assert_eq!(next as usize, RING_SIZE + BATCH_MAX);
    p.a.stop(qa);
    p.b.stop(qb);
    assert_eq!(pool.available(), 4096);
}

fn poll_readable(fd: i32, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    r == 1 && pfd.revents & libc::POLLIN != 0
}

#[test]
fn armed_receiver_wakes_when_the_peer_sends() {
    let pool = pool("pair-wake", 1024);
    let mut p = attach(&pool, &[]);
    let mut qa = p.a.start().expect("start a");
    let mut qb = p.b.start().expect("start b");
    let fd = qb.rx[0].wait_fd().expect("wait fd");

    // Idle: arming succeeds and the fd stays quiet.
    assert!(qb.rx[0].arm());
    assert!(!poll_readable(fd, 20));
    qb.rx[0].disarm();

    // Packets waiting: arm refuses.
    let mut out = PacketBatch::new();
    assert!(out.push(frame(&pool, 7, 64)).is_ok());
    assert_eq!(qa.tx[0].tx_burst(&mut out), 1);
    assert!(!qb.rx[0].arm());
    let mut got = PacketBatch::new();
    assert_eq!(qb.rx[0].rx_burst(&mut got), 1);
    got.free_all();

    // A thread sleeping in poll() wakes when the peer sends.
    let mut rxq = qb.rx.pop().expect("rx");
    assert!(rxq.arm());
    let sleeper = std::thread::spawn(move || {
        let t = Instant::now();
        let woke = poll_readable(fd, 5000);
        rxq.disarm();
        let mut got = PacketBatch::new();
        let n = rxq.rx_burst(&mut got);
        (woke, t.elapsed(), n, rxq)
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(out.push(frame(&pool, 8, 64)).is_ok());
    assert_eq!(qa.tx[0].tx_burst(&mut out), 1);
    let (woke, slept, n, rxq) = sleeper.join().expect("sleeper");
    assert!(woke, "poll woke");
    assert!(slept < Duration::from_secs(4));
    assert_eq!(n, 1);
    assert_eq!(rxq.counters().interrupts, 1);
    // Disarm consumed the event.
    assert!(!poll_readable(fd, 0));
    qb.rx.push(rxq);

    p.a.stop(qa);
    p.b.stop(qb);
    assert_eq!(pool.available(), 1024);
}

#[test]
fn stop_and_drop_free_what_is_left_in_rings() {
    let pool = pool("pair-left", 2048);
    let mut p = attach(&pool, &[("queues", "2")]);
    let mut qa = p.a.start().expect("start a");
    let qb = p.b.start().expect("start b");
    let mut out = PacketBatch::new();
    for q in 0..2 {
        for i in 0..200 {
            assert!(out
                .push(frame(&pool, i, 64 + 3000 * (i as usize % 2)))
                .is_ok());
        }
        assert_eq!(qa.tx[q].tx_burst(&mut out), 200);
    }
    assert!(pool.available() < 2048 - 400);
    // b stops with 400 packets unread in its rings.
    p.b.stop(qb);
    assert_eq!(pool.available(), 2048);

    // Sending towards a stopped side drops (counted) and keeps nothing.
    for i in 0..10 {
        assert!(out.push(frame(&pool, i, 64)).is_ok());
    }
    assert_eq!(qa.tx[0].tx_burst(&mut out), 10);
    assert_eq!(qa.tx[0].counters().drops, 10);
    assert_eq!(pool.available(), 2048);

    // Restart b, fill, then drop everything without stop.
    let qb = p.b.start().expect("restart b");
    for i in 0..50 {
        assert!(out.push(frame(&pool, i, 64)).is_ok());
    }
    assert_eq!(qa.tx[1].tx_burst(&mut out), 50);
    drop(qb);
    drop(qa);
    drop(p);
    assert_eq!(pool.available(), 2048);
}

#[test]
fn concurrent_producer_and_consumer_keep_order() {
    let pool = pool("pair-mt", 8192);
    let mut p = attach(&pool, &[]);
    let mut qa = p.a.start().expect("start a");
    let mut qb = p.b.start().expect("start b");
    let mut tx = qa.tx.pop().expect("tx");
    let total: u32 = 200_000;
    let pool2 = pool.clone();
    let producer = std::thread::spawn(move || {
        let mut out = PacketBatch::new();
        let mut seq = 0;
        while seq < total || !out.is_empty() {
            while seq < total && out.room() > 0 {
                let Some(mut m) = pool2.alloc(OwnerId::POOL) else {
                    break;
                };
                if let Some(d) = m.append(64) {
                    d[..6].copy_from_slice(&[0xff; 6]);
                    d[14..18].copy_from_slice(&seq.to_be_bytes());
                }
                let _ = out.push(m);
                seq += 1;
            }
            if tx.tx_burst(&mut out) == 0 {
                std::thread::yield_now();
            }
        }
        tx
    });
    let mut next: u32 = 0;
    let mut got = PacketBatch::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while next < total && Instant::now() < deadline {
        if qb.rx[0].rx_burst(&mut got) == 0 {
            std::thread::yield_now();
        }
        for m in got.iter() {
            assert_eq!(&m.data()[14..18], &next.to_be_bytes());
            next += 1;
        }
        got.free_all();
    }
    assert_eq!(next, total);
    qa.tx.push(producer.join().expect("producer"));
    p.a.stop(qa);
    p.b.stop(qb);
    assert_eq!(pool.available(), 8192);
}

/// The receive side filters like a NIC: own unicast and broadcast pass,
/// other unicast and unjoined multicast are dropped (and counted), joined
/// groups, all-multi and promiscuous mode open the filter.
#[test]
fn receive_filter_follows_control() {
    let pool = pool("pair-filter", 1024);
    let mut p = attach(&pool, &[]);
    let mut qa = p.a.start().expect("start a");
    let mut qb = p.b.start().expect("start b");
    let b_mac = p.b.mac();
    let group = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    let send_recv = |qa: &mut Queues, qb: &mut Queues, dst: [u8; 6]| -> usize {
        let mut out = PacketBatch::new();
        let mut f = frame(&pool, 1, 64);
        f.data_mut()[..6].copy_from_slice(&dst);
        let _ = out.push(f);
        assert_eq!(qa.tx[0].tx_burst(&mut out), 1);
        let mut got = PacketBatch::new();
        let n = qb.rx[0].rx_burst(&mut got);
        got.free_all();
        n
    };
    assert_eq!(send_recv(&mut qa, &mut qb, b_mac), 1, "own unicast");
    assert_eq!(send_recv(&mut qa, &mut qb, [0xff; 6]), 1, "broadcast");
    assert_eq!(
        send_recv(&mut qa, &mut qb, [2, 9, 9, 9, 9, 9]),
        0,
        "other unicast"
    );
    assert_eq!(send_recv(&mut qa, &mut qb, group), 0, "unjoined group");
    p.b.control(&Control::SetMulticast(vec![group])).unwrap();
    assert_eq!(send_recv(&mut qa, &mut qb, group), 1, "joined group");
    p.b.control(&Control::SetMulticast(vec![])).unwrap();
    assert_eq!(send_recv(&mut qa, &mut qb, group), 0, "left group");
    p.b.control(&Control::SetAllMulti(true)).unwrap();
    assert_eq!(send_recv(&mut qa, &mut qb, group), 1, "all-multi");
    p.b.control(&Control::SetPromisc(true)).unwrap();
    assert_eq!(
        send_recv(&mut qa, &mut qb, [2, 9, 9, 9, 9, 9]),
        1,
        "promiscuous"
    );
    assert_eq!(qb.rx[0].counters().drops, 3);
    p.a.stop(qa);
    p.b.stop(qb);
    drop(p);
    assert_eq!(pool.available(), 1024);
}
