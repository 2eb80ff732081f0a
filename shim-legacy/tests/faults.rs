//! Fault containment: a legacy driver that fails, stalls or never completes
//! a transmit is reported, its buffers are reclaimed, and other devices run on.

mod common;

use common::{attach, extra, pool};
use pktkit_native::{Control, Driver, DriverError, Mbuf, OwnerId, PacketBatch, Pool, Queues};
use pktkit_shim::drivers;

fn frames(pool: &Pool, owner: OwnerId, n: usize) -> PacketBatch {
    let mut b = PacketBatch::new();
    for i in 0..n {
        let m = Mbuf::from_slice(pool, owner, &[i as u8; 60]).expect("frame");
        b.push(m).expect("room");
    }
    b
}

/// devn-bad started with `fault`, and 10 frames of its owner to send.
fn sending(pool: &Pool, fault: &str) -> (Box<dyn Driver>, Queues, PacketBatch, OwnerId) {
    let (mut d, owner) = attach(pool, drivers::DEVN_BAD, &[("fault", fault)]).expect("attach");
    let q = d.start().expect("start");
    let b = frames(pool, owner, 10);
    (d, q, b, owner)
}

/// A healthy device next to the faulty one keeps forwarding.
fn healthy_runs(pool: &Pool) {
    let (mut d, owner) = attach(pool, drivers::DEVN_NULL, &[]).expect("good attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(32);
    assert_eq!(q.rx[0].rx_burst(&mut b), 32);
    assert_eq!(q.tx[0].tx_burst(&mut b), 32);
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

#[test]
fn init_and_start_failures_are_errors_with_the_errno() {
    let pool = pool("bad-init", 256);
    let e = attach(&pool, drivers::DEVN_BAD, &[("fault", "init")])
        .err()
        .expect("fails");
    match e {
        DriverError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(libc::EIO)),
        other => panic!("wrong error {other}"),
    }
    let (mut d, owner) = attach(&pool, drivers::DEVN_BAD, &[("fault", "start")]).expect("attach");
    assert!(d.start().is_err());
    assert_eq!(extra(&*d, "driver_errors"), 1);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
    healthy_runs(&pool);
}

#[test]
fn transmit_errors_are_counted_and_freed() {
    let pool = pool("bad-txerr", 256);
    let (mut d, owner) = attach(&pool, drivers::DEVN_BAD, &[("fault", "txerr")]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = frames(&pool, owner, 10);
    assert_eq!(
        q.tx[0].tx_burst(&mut b),
        10,
        "failed packets are taken, not retried"
    );
    assert_eq!(q.tx[0].counters().errors, 10);
    assert_eq!(pool.held_by(owner), 0);
    d.stop(q);
    healthy_runs(&pool);
}

/// ABI 1.1's lf_transmit_burst misbehaving: a failing burst is freed and
/// counted, a burst completed beyond what the driver said it took counts
/// as taken (nothing reaches the pool twice), a partial burst leaves the
/// rest with the caller.
#[test]
fn burst_transmit_faults_are_settled_safely() {
    let pool = pool("bad-burst", 256);
    let (mut d, mut q, mut b, owner) = sending(&pool, "bursterr");
    assert_eq!(q.tx[0].tx_burst(&mut b), 10, "a failed burst is taken");
    assert_eq!(q.tx[0].counters().errors, 10);
    assert_eq!(extra(&*d, "tx_zero_copy"), 0);
    assert_eq!(pool.held_by(owner), 0);
    d.stop(q);
    drop(d);

    let (mut d, mut q, mut b, owner) = sending(&pool, "burstover");
    assert_eq!(q.tx[0].tx_burst(&mut b), 10, "completed means taken");
    assert!(b.is_empty());
    assert_eq!(extra(&*d, "tx_done"), 10);
    assert_eq!(extra(&*d, "bad_packets"), 1);
    assert_eq!(pool.held_by(owner), 0);
    d.stop(q);
    drop(d);

    let (mut d, mut q, mut b, owner) = sending(&pool, "burstpart");
    assert_eq!(q.tx[0].tx_burst(&mut b), 5);
    assert_eq!(b.len(), 5, "the rest stays with the caller");
    assert_eq!(extra(&*d, "tx_done"), 5);
    assert_eq!(extra(&*d, "tx_zero_copy"), 5);
    assert_eq!(q.tx[0].counters().ring_full, 1);
    assert_eq!(extra(&*d, "bad_packets"), 0);
    b.free_all();
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
    healthy_runs(&pool);
}

#[test]
fn a_stalled_transmitter_leaves_packets_with_the_caller() {
    let pool = pool("bad-busy", 256);
    let (mut d, owner) = attach(&pool, drivers::DEVN_BAD, &[("fault", "txbusy")]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = frames(&pool, owner, 5);
    assert_eq!(q.tx[0].tx_burst(&mut b), 0);
    assert_eq!(b.len(), 5, "untouched, for the caller to retry or drop");
    assert!(q.tx[0].counters().ring_full >= 1);
    b.free_all();
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

#[test]
fn transmits_never_completed_are_reported_and_reclaimed_at_stop() {
    let pool = pool("bad-hold", 2048);
    let (mut d, owner) = attach(&pool, drivers::DEVN_BAD, &[("fault", "txhold")]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = frames(&pool, owner, 100);
    assert_eq!(q.tx[0].tx_burst(&mut b), 100);
    assert_eq!(pool.held_by(owner), 100, "lent to the driver");
    // The watchdog: a few service rounds with no completion ask for a reset.
    let mut reset = false;
    for _ in 0..4 {
        reset |= d.service().needs_reset;
    }
    assert!(reset, "a stalled transmitter is reported");
    assert_eq!(extra(&*d, "tx_timeouts"), 1);
    // The slot table bounds what the driver can hold: once full, tx takes none.
    let mut more = frames(&pool, owner, 200);
    let mut taken = 0;
    for _ in 0..10 {
        taken += q.tx[0].tx_burst(&mut more);
    }
    assert_eq!(taken, 200);
    more.free_all();
    d.stop(q);
    assert_eq!(extra(&*d, "reclaimed"), 300);
    assert_eq!(pool.held_by(owner), 0, "reclaimed on stop");
    // It can be started again after the reset.
    let q = d.start().expect("restart");
    d.stop(q);
    drop(d);
    healthy_runs(&pool);
}

#[test]
fn packets_a_driver_keeps_on_receive_are_reclaimed() {
    let pool = pool("bad-rxleak", 2048);
    let (mut d, owner) = attach(&pool, drivers::DEVN_BAD, &[("fault", "rxleak")]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(64);
    for _ in 0..4 {
        assert_eq!(q.rx[0].rx_burst(&mut b), 0);
    }
    assert!(pool.held_by(owner) >= 256);
    d.stop(q);
    assert_eq!(pool.held_by(owner), 0);
    assert_eq!(extra(&*d, "reclaimed"), 256);
    drop(d);
}

#[test]
fn foreign_and_double_frees_and_completions_are_ignored_and_counted() {
    let pool = pool("bad-rxbad", 512);
    let (mut d, owner) = attach(&pool, drivers::DEVN_BAD, &[("fault", "rxbad")]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(8);
    assert_eq!(q.rx[0].rx_burst(&mut b), 0);
    // 8 foreign packets handed up + 8 second frees.
    assert_eq!(extra(&*d, "bad_packets"), 16);
    let mut t = frames(&pool, owner, 4);
    assert_eq!(q.tx[0].tx_burst(&mut t), 4);
    // Each transmit was completed twice more (once again, once a stranger).
    assert_eq!(extra(&*d, "bad_packets"), 24);
    assert_eq!(extra(&*d, "tx_done"), 4);
    assert_eq!(
        pool.stats().double_frees,
        0,
        "no double free reached the pool"
    );
    d.stop(q);
    assert_eq!(pool.held_by(owner), 0);
    drop(d);
    healthy_runs(&pool);
}

#[test]
fn control_and_link_failures_are_reported() {
    let pool = pool("bad-ctl", 64);
    let (mut d, _o) = attach(&pool, drivers::DEVN_BAD, &[("fault", "ctlerr")]).expect("attach");
    assert!(!d.link().up, "a driver that cannot say is down");
    let e = d.control(&Control::SetPromisc(true)).unwrap_err();
    assert!(matches!(e, DriverError::Io { .. }), "{e}");
    assert_eq!(extra(&*d, "driver_errors"), 1);
}

#[test]
fn a_service_call_outside_a_driver_call_is_refused() {
    // The services check that the calling device is being called into; a
    // call from nowhere (no current device) is ignored.
    let svc = &pktkit_shim::ctx::SERVICES;
    let alloc = svc.ls_pkt_alloc.expect("set");
    // SAFETY: the shim's own service with a null stack, outside any call:
    // it must refuse without touching anything.
    let p = unsafe { alloc(std::ptr::null_mut(), 64) };
    assert!(p.is_null());
    let d: Option<Box<dyn Driver>> = None;
    drop(d);
}

/// A driver that overwrites a lent packet's `lp_done` and `lp_owner` gets
/// both rewritten the next time the slot is lent: every transmit it makes
/// through `lp_done` reaches the shim, on every slot.
#[test]
fn lp_done_and_lp_owner_overwritten_by_a_driver_are_restored() {
    let pool = pool("bad-clobber", 4096);
    let (mut d, owner) =
        attach(&pool, drivers::DEVN_BAD, &[("fault", "txclobber")]).expect("attach");
    let mut q = d.start().expect("start");
    // Three times the slot table (1024): every slot is lent again after the
    // driver scribbled on it, whatever order the free list keeps.
    let rounds = 3 * 1024 / 64;
    for _ in 0..rounds {
        let mut b = frames(&pool, owner, 64);
        assert_eq!(q.tx[0].tx_burst(&mut b), 64);
        assert!(b.is_empty());
    }
    let n = (rounds * 64) as u64;
    // Each completion went through the restored lp_done ...
    assert_eq!(extra(&*d, "tx_done"), n);
    assert_eq!(q.tx[0].counters().packets, n);
    // ... the driver never saw its own scribbles on a lent packet ...
    assert_eq!(extra(&*d, "drv_oerrors"), 0);
    assert_eq!(extra(&*d, "bad_packets"), 0);
    // ... and nothing was left lent for stop to reclaim.
    d.stop(q);
    assert_eq!(extra(&*d, "reclaimed"), 0);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
    healthy_runs(&pool);
}
