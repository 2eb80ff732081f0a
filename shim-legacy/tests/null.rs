//! devn-null through the shim: the translation rules, zero copy where the
//! layout allows, counted copies otherwise, and the v1 snapshot build.

mod common;

use common::{attach, extra, pool};
use pktkit_native::{Concurrency, Control, Mbuf, PacketBatch, BATCH_MAX};
use pktkit_shim::drivers;

#[test]
fn rx_is_zero_copy_and_tx_lends_the_mbufs() {
    let pool = pool("null-zc", 1024);
    let (mut d, owner) = attach(&pool, drivers::DEVN_NULL, &[("size", "60")]).expect("attach");
    assert_eq!(d.name(), "en");
    assert_eq!(d.concurrency(), Concurrency::Serialized);
    assert_eq!(d.mac(), [0x02, 0x65, 0x6e, 0, 0, 1]);
    let mut q = d.start().expect("start");
    assert!(q.rx[0].wait_fd().is_none(), "a polled driver is polled");
    let mut b = PacketBatch::new();
    let n = q.rx[0].rx_burst(&mut b);
    assert_eq!(n, BATCH_MAX);
    for m in b.iter() {
        assert_eq!(m.pkt_len(), 60);
        assert_eq!(m.segments(), 1);
        assert_eq!(m.owner(), owner);
    }
    assert_eq!(extra(&*d, "rx_zero_copy"), BATCH_MAX as u64);
    assert_eq!(extra(&*d, "rx_copies"), 0);
    // Everything received goes back out; the driver completes at once.
    let sent = q.tx[0].tx_burst(&mut b);
    assert_eq!(sent, BATCH_MAX);
    assert!(b.is_empty());
    assert_eq!(extra(&*d, "tx_zero_copy"), BATCH_MAX as u64);
    assert_eq!(extra(&*d, "tx_copies"), 0);
    assert_eq!(extra(&*d, "tx_done"), BATCH_MAX as u64);
    assert_eq!(q.tx[0].counters().packets, BATCH_MAX as u64);
    assert_eq!(q.tx[0].counters().bytes, 60 * BATCH_MAX as u64);
    assert_eq!(q.rx[0].counters().packets, BATCH_MAX as u64);
    // The driver's own statistics agree.
    assert_eq!(extra(&*d, "drv_opackets"), BATCH_MAX as u64);
    let desc = d.describe();
    assert!(desc
        .iter()
        .any(|(k, v)| k == "rx copies per packet" && v == "0.000"));
    d.stop(q);
    assert_eq!(pool.held_by(owner), 0, "every buffer is back after stop");
    drop(d);
    assert_eq!(pool.available(), 1024);
}

#[test]
fn a_chain_is_lent_as_fragments_without_copying() {
    let pool = pool("null-chain", 64);
    let (mut d, owner) = attach(&pool, drivers::DEVN_NULL, &[]).expect("attach");
    let mut q = d.start().expect("start");
    let frame: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let m = Mbuf::from_slice(&pool, owner, &frame).expect("chain");
    assert!(m.segments() >= 3);
    let mut b = PacketBatch::new();
    b.push(m).expect("room");
    assert_eq!(q.tx[0].tx_burst(&mut b), 1);
    assert_eq!(extra(&*d, "tx_zero_copy"), 1);
    assert_eq!(extra(&*d, "tx_copies"), 0);
    assert_eq!(q.tx[0].counters().bytes, 5000);
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

#[test]
fn fragments_in_driver_memory_are_copied_and_counted() {
    let pool = pool("null-copy", 512);
    let (mut d, owner) = attach(
        &pool,
        drivers::DEVN_NULL,
        &[("rxmode", "copy"), ("frags", "3"), ("size", "100")],
    )
    .expect("attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(16);
    assert_eq!(q.rx[0].rx_burst(&mut b), 16);
    let mac = d.mac();
    for m in b.iter() {
        let v = m.to_vec();
        assert_eq!(v.len(), 100);
        // devn-null's frame: broadcast destination, its MAC as source,
        // then byte i = i.
        assert_eq!(&v[..6], &[0xff; 6]);
        assert_eq!(&v[6..12], &mac);
        assert!(v[12..]
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i + 12) as u8));
        assert_ne!(m.flags() & pktkit_native::sys::M_BCAST, 0);
    }
    assert_eq!(extra(&*d, "rx_copies"), 16);
    assert_eq!(extra(&*d, "rx_zero_copy"), 0);
    assert_eq!(extra(&*d, "rx_copies_per_million"), 1_000_000);
    b.free_all();
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

#[test]
fn control_reaches_the_driver_and_is_checked() {
    let pool = pool("null-ctl", 64);
    let (mut d, _owner) =
        attach(&pool, drivers::DEVN_NULL, &[("mac", "02:00:00:00:00:07")]).expect("attach");
    assert_eq!(d.mac(), [2, 0, 0, 0, 0, 7]);
    d.control(&Control::SetMac([2, 0, 0, 0, 0, 9]))
        .expect("mac");
    assert_eq!(d.mac(), [2, 0, 0, 0, 0, 9]);
    d.control(&Control::SetPromisc(true)).expect("promisc");
    d.control(&Control::SetMulticast(vec![[1, 0, 0x5e, 0, 0, 1]]))
        .expect("multicast");
    d.control(&Control::SetMtu(1400)).expect("mtu");
    assert!(d.control(&Control::SetMtu(9000)).is_err());
    assert!(d.link().up);
    assert_eq!(d.link().speed_mbps, 10_000);
}

#[test]
fn bad_option_values_fail_attach_cleanly() {
    let pool = pool("null-badopt", 64);
    let e = attach(&pool, drivers::DEVN_NULL, &[("size", "5")])
        .err()
        .expect("refused");
    assert!(e.to_string().contains("le_init"), "{e}");
    let e = attach(&pool, drivers::DEVN_NULL, &[("nosuch", "1")])
        .err()
        .expect("refused");
    assert!(e.to_string().contains("unknown option"), "{e}");
}

/// The binary-compatibility check: devn-null compiled against the frozen
/// legacy_abi_v1.h loads into the current shim and works.
#[test]
fn driver_built_against_the_v1_snapshot_loads_and_runs() {
    let lib = pktkit_shim::LegacyLibrary::load(drivers::DEVN_NULL_V1.as_ref()).expect("v1 driver");
    assert_eq!(lib.abi(), (1, 0));
    assert_eq!(lib.name(), "devn-null");
    let pool = pool("null-v1", 512);
    let (mut d, owner) = attach(&pool, drivers::DEVN_NULL_V1, &[("size", "128")]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(64);
    assert_eq!(q.rx[0].rx_burst(&mut b), 64);
    assert!(b.iter().all(|m| m.pkt_len() == 128));
    assert_eq!(q.tx[0].tx_burst(&mut b), 64);
    assert_eq!(extra(&*d, "tx_done"), 64);
    assert_eq!(extra(&*d, "rx_copies"), 0);
    // A 1.0 driver knows nothing of bursts: one call per packet.
    assert_eq!(extra(&*d, "tx_calls"), 64);
    assert_eq!(extra(&*d, "tx_burst_calls"), 0);
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

/// Forwards `bursts` bursts of 64 frames through a port of `so`: rx, then
/// tx of what was received; checks every frame and that the pool gets
/// every buffer back. Returns the driver (stopped) for its counters.
fn forward_through(so: &str, name: &str, bursts: usize) -> Box<dyn pktkit_native::Driver> {
    let pool = pool(name, 512);
    let (mut d, owner) = attach(&pool, so, &[("size", "128")]).expect("attach");
    let mut q = d.start().expect("start");
    for _ in 0..bursts {
        let mut b = PacketBatch::with_limit(64);
        assert_eq!(q.rx[0].rx_burst(&mut b), 64);
        assert!(b.iter().all(|m| m.pkt_len() == 128 && m.owner() == owner));
        assert_eq!(q.tx[0].tx_burst(&mut b), 64);
        assert!(b.is_empty());
    }
    let n = (64 * bursts) as u64;
    assert_eq!(extra(&*d, "tx_done"), n);
    assert_eq!(extra(&*d, "tx_zero_copy"), n);
    assert_eq!(extra(&*d, "rx_zero_copy"), n);
    assert_eq!(extra(&*d, "rx_copies") + extra(&*d, "tx_copies"), 0);
    assert_eq!(extra(&*d, "drv_opackets"), n);
    assert_eq!(q.tx[0].counters().bytes, 128 * n);
    d.stop(q);
    assert_eq!(pool.held_by(owner), 0, "every buffer is back after stop");
    d
}

/// A 1.0 driver runs through the per-packet calls, a 1.1 or 1.2 driver
/// through the bursts (only 1.2 resets), a 1.3 driver through the
/// descriptors (and resets), and all forward the same frames.
#[test]
fn drivers_of_1_0_to_1_3_each_forward_on_their_path() {
    let v10 = forward_through(drivers::DEVN_NULL_V1, "fwd-1.0", 4);
    assert_eq!(extra(&*v10, "rx_upcalls"), 256);
    assert_eq!(extra(&*v10, "tx_calls"), 256);
    assert_eq!(extra(&*v10, "rx_burst_upcalls"), 0);
    assert_eq!(extra(&*v10, "tx_burst_calls"), 0);
    assert_eq!(extra(&*v10, "rx_desc_upcalls"), 0);
    assert_eq!(extra(&*v10, "tx_desc_calls"), 0);
    assert!(v10
        .describe()
        .iter()
        .any(|(k, v)| k == "transmit" && v == "lf_transmit per packet"));

    // 1.1 and 1.2 (1.2 changed nothing for bursts; it added lf_reset).
    for (so, minor) in [(drivers::DEVN_NULL_V1_1, 1), (drivers::DEVN_NULL_V1_2, 2)] {
        let lib = pktkit_shim::LegacyLibrary::load(so.as_ref()).expect("1.1/1.2 driver");
        assert_eq!(lib.abi(), (1, minor));
        let mut v = forward_through(so, &format!("fwd-1.{minor}"), 4);
        assert_eq!(extra(&*v, "rx_upcalls"), 0);
        assert_eq!(extra(&*v, "tx_calls"), 0);
        // One up-call and one transmit call per burst of 64.
        assert_eq!(extra(&*v, "rx_burst_upcalls"), 4);
        assert_eq!(extra(&*v, "tx_burst_calls"), 4);
        // The shim never reads a 1.1 or 1.2 driver's table past lf_reset,
        // and the driver's header has no descriptor services to find.
        assert_eq!(extra(&*v, "rx_desc_upcalls"), 0);
        assert_eq!(extra(&*v, "tx_desc_calls"), 0);
        assert_eq!(extra(&*v, "overlapping_entries"), 0);
        // Only 1.2 resets (its counters, the "hardware's", start from 0).
        assert_eq!(v.reset().is_ok(), minor == 2);
        assert_eq!(extra(&*v, "drv_ipackets") == 0, minor == 2);
    }

    for so in [drivers::DEVN_NULL_V1_3, drivers::DEVN_NULL] {
        let lib = pktkit_shim::LegacyLibrary::load(so.as_ref()).expect("1.3 driver");
        assert_eq!(lib.abi(), (1, 3));
        let mut v13 = forward_through(so, "fwd-1.3", 4);
        // The fastest path offered: descriptors both ways, no packets.
        assert_eq!(extra(&*v13, "rx_desc_upcalls"), 4);
        assert_eq!(extra(&*v13, "tx_desc_calls"), 4);
        assert_eq!(
            extra(&*v13, "rx_upcalls") + extra(&*v13, "rx_burst_upcalls"),
            0
        );
        assert_eq!(extra(&*v13, "tx_calls") + extra(&*v13, "tx_burst_calls"), 0);
        assert_eq!(extra(&*v13, "bad_packets"), 0);
        assert_eq!(extra(&*v13, "overlapping_entries"), 0);
        assert!(v13
            .describe()
            .iter()
            .any(|(k, v)| k == "transmit" && v.starts_with("lf_transmit_desc")));
        // 1.3 keeps 1.2's lf_reset: the table is read past it.
        v13.reset().expect("1.3 driver resets");
        assert_eq!(extra(&*v13, "drv_ipackets"), 0);
    }
}

/// On the descriptor path a chain (several buffers) still goes out, as a
/// packet, in order between single-buffer frames sent as descriptors.
#[test]
fn a_chain_among_descriptor_frames_goes_as_a_packet_in_order() {
    let pool = pool("desc-chain", 256);
    let (mut d, owner) = attach(&pool, drivers::DEVN_NULL, &[("size", "100")]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(8);
    assert_eq!(q.rx[0].rx_burst(&mut b), 8);
    let mut out = PacketBatch::with_limit(17);
    for _ in 0..4 {
        out.push(b.pop_front().expect("frame")).expect("room");
    }
    let frame: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    out.push(Mbuf::from_slice(&pool, owner, &frame).expect("chain"))
        .expect("room");
    while let Some(m) = b.pop_front() {
        out.push(m).expect("room");
    }
    assert_eq!(q.tx[0].tx_burst(&mut out), 9);
    assert!(out.is_empty());
    // 4 frames, the chain, 4 frames: two descriptor calls around one packet.
    assert_eq!(extra(&*d, "tx_desc_calls"), 2);
    assert_eq!(extra(&*d, "tx_burst_calls"), 1);
    assert_eq!(extra(&*d, "tx_done"), 9);
    assert_eq!(q.tx[0].counters().bytes, 8 * 100 + 5000);
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

/// The burst path keeps the copy rules: bare packets over driver memory
/// are gathered and counted, per packet, within one burst up-call.
#[test]
fn bursts_of_bare_packets_are_copied_and_counted() {
    let pool = pool("burst-copy", 256);
    let (mut d, owner) = attach(
        &pool,
        drivers::DEVN_NULL,
        &[("rxmode", "copy"), ("frags", "4"), ("size", "200")],
    )
    .expect("attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(32);
    assert_eq!(q.rx[0].rx_burst(&mut b), 32);
    assert!(b.iter().all(|m| m.pkt_len() == 200
        && m.to_vec()[12..]
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i + 12) as u8)));
    assert_eq!(extra(&*d, "rx_copies"), 32);
    assert_eq!(extra(&*d, "rx_burst_upcalls"), 1);
    b.free_all();
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

/// A burst the pool cannot fill completely: the driver gets fewer packets,
/// the shortfall is counted, nothing leaks.
#[test]
fn a_short_pool_gives_short_bursts() {
    let pool = pool("burst-short", 40);
    let (mut d, owner) = attach(&pool, drivers::DEVN_NULL, &[]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(64);
    let got = q.rx[0].rx_burst(&mut b);
    assert!(got > 0 && got <= 40, "{got}");
    assert!(extra(&*d, "pkt_alloc_failures") >= 1);
    assert_eq!(q.tx[0].tx_burst(&mut b), got);
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

#[test]
fn the_v1_snapshot_header_is_unchanged_where_v1_drivers_look() {
    // The snapshot is frozen: its text is what v1 drivers were built with.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/include/pktkit/");
    let v1 = std::fs::read_to_string(format!("{dir}legacy_abi_v1.h")).expect("snapshot");
    assert!(v1.contains("#define PKTKIT_LG_ABI_MAJOR\t1"));
    assert!(v1.contains("#define PKTKIT_LG_ABI_MINOR\t0"));
    let v1_1 = std::fs::read_to_string(format!("{dir}legacy_abi_v1_1.h")).expect("1.1 snapshot");
    assert!(v1_1.contains("#define PKTKIT_LG_ABI_MINOR\t1"));
    let v1_2 = std::fs::read_to_string(format!("{dir}legacy_abi_v1_2.h")).expect("1.2 snapshot");
    assert!(v1_2.contains("#define PKTKIT_LG_ABI_MINOR\t2"));
    assert!(v1_2.contains("(*lf_reset)") && !v1_2.contains("lf_transmit_desc"));
    let v1_3 = std::fs::read_to_string(format!("{dir}legacy_abi_v1_3.h")).expect("1.3 snapshot");
    assert!(v1_3.contains("#define PKTKIT_LG_ABI_MINOR\t3"));
    let cur = std::fs::read_to_string(format!("{dir}legacy_abi.h")).expect("header");
    // What a snapshot declares is still declared, in the same order, by
    // the current header: later minors only append.
    for (snap, name) in [
        (&v1, "v1"),
        (&v1_1, "v1_1"),
        (&v1_2, "v1_2"),
        (&v1_3, "v1_3"),
    ] {
        let decls = |t: &str| -> Vec<String> {
            t.lines()
                .map(str::trim)
                .filter(|l| l.contains("(*l") || l.starts_with("uint32_t\tl"))
                .map(str::to_owned)
                .collect()
        };
        let (old, new) = (decls(snap), decls(&cur));
        assert!(
            new.starts_with(&old) || old.iter().all(|l| new.contains(l)),
            "legacy_abi.h dropped or reordered members of the {name} snapshot"
        );
    }
    assert!(
        cur.contains("#define PKTKIT_LG_ABI_MAJOR\t1"),
        "a new major needs a new shim path"
    );
}

/// The runtime reads a queue's counters holding only that queue's lock
/// (kit's `Interface::counters`, on the control thread) while a worker is
/// inside a burst of the other queue. Those reads must not enter the
/// device: `overlapping_entries` stays 0, and the counters still add up.
#[test]
fn queue_counters_read_during_bursts_do_not_enter_the_device() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;

    // Bursts go on until the reader has read this often while they ran.
    const READS: u64 = 2000;
    let pool = pool("counters-overlap", 512);
    let (mut d, owner) = attach(&pool, drivers::DEVN_NULL, &[]).expect("attach");
    let mut q = d.start().expect("start");
    // As kit keeps them: each queue behind its own lock.
    let rx = Mutex::new(q.rx.pop().expect("rx queue"));
    let tx = Mutex::new(q.tx.pop().expect("tx queue"));
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let bursts = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let mut b = PacketBatch::with_limit(32);
            let mut bursts = 0u64;
            while bursts < 100 || reads.load(Ordering::Relaxed) < READS {
                assert_eq!(rx.lock().expect("rx").rx_burst(&mut b), 32);
                assert_eq!(tx.lock().expect("tx").tx_burst(&mut b), 32);
                bursts += 1;
            }
            done.store(true, Ordering::Release);
            bursts
        });
        let mut last = (0, 0);
        while !done.load(Ordering::Acquire) {
            let r = rx.lock().expect("rx").counters();
            let t = tx.lock().expect("tx").counters();
            // Each only grows.
            assert!(r.packets >= last.0 && t.packets >= last.1);
            last = (r.packets, t.packets);
            reads.fetch_add(1, Ordering::Relaxed);
        }
        worker.join().expect("worker")
    });
    let reads = reads.into_inner();
    assert!(reads >= READS);
    let n = bursts * 32;
    let (r, t) = (
        rx.lock().expect("rx").counters(),
        tx.lock().expect("tx").counters(),
    );
    assert_eq!((r.packets, r.bytes), (n, 64 * n));
    assert_eq!((t.packets, t.bytes), (n, 64 * n));
    assert_eq!(extra(&*d, "overlapping_entries"), 0, "after {reads} reads");
    q.rx.push(rx.into_inner().expect("rx"));
    q.tx.push(tx.into_inner().expect("tx"));
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}
