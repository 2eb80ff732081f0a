//! `Driver::reset` of shimmed devices: ABI 1.2's `lf_reset`, called on the
//! stopped device; drivers of 1.0 and 1.1 (no `lf_reset`) answer
//! Unsupported and keep working.

mod common;

use common::{attach, extra, pool};
use pktkit_native::{Driver, DriverError, PacketBatch};
use pktkit_shim::drivers;

/// Receives one burst of 32 and sends it back; returns what came in.
fn one_burst(d: &mut dyn Driver) -> usize {
    let mut q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(32);
    let got = q.rx[0].rx_burst(&mut b);
    assert_eq!(q.tx[0].tx_burst(&mut b), got);
    d.stop(q);
    got
}

#[test]
fn a_1_2_driver_resets_while_stopped_and_keeps_working() {
    let pool = pool("reset-null", 256);
    let (mut d, owner) = attach(&pool, drivers::DEVN_NULL, &[]).expect("attach");
    assert_eq!(one_burst(&mut *d), 32);
    assert_eq!(extra(&*d, "drv_ipackets"), 32);
    // devn-null's counters are its "hardware's": its reset clears them,
    // which shows lf_reset really ran.
    d.reset().expect("reset");
    assert_eq!(extra(&*d, "drv_ipackets"), 0);
    assert_eq!(extra(&*d, "driver_errors"), 0);
    assert_eq!(one_burst(&mut *d), 32);
    assert_eq!(extra(&*d, "drv_ipackets"), 32);
    assert_eq!(extra(&*d, "tx_done"), 64);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}

#[test]
fn reset_while_started_is_refused_without_calling_the_driver() {
    let pool = pool("reset-started", 256);
    let (mut d, _owner) = attach(&pool, drivers::DEVN_NULL, &[]).expect("attach");
    let q = d.start().expect("start");
    let mut b = PacketBatch::with_limit(8);
    let mut q = q;
    assert_eq!(q.rx[0].rx_burst(&mut b), 8);
    match d.reset() {
        Err(DriverError::Device(why)) => assert!(why.contains("while started"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Not called: the counters the reset would clear are still there.
    assert_eq!(extra(&*d, "drv_ipackets"), 8);
    drop(b);
    d.stop(q);
}

#[test]
fn drivers_without_lf_reset_answer_unsupported_and_still_run() {
    for (so, abi) in [
        (drivers::DEVN_NULL_V1, "1.0"),
        (drivers::DEVN_NULL_V1_1, "1.1"),
    ] {
        let pool = pool("reset-old", 256);
        let (mut d, owner) = attach(&pool, so, &[]).expect("attach");
        assert_eq!(one_burst(&mut *d), 32);
        match d.reset() {
            Err(DriverError::Unsupported(why)) => {
                assert!(why.contains(&format!("legacy ABI {abi}")), "{why}")
            }
            other => panic!("{abi}: expected Unsupported, got {other:?}"),
        }
        // Nothing was reset: the driver's counters go on.
        assert_eq!(extra(&*d, "drv_ipackets"), 32);
        assert_eq!(one_burst(&mut *d), 32);
        assert_eq!(extra(&*d, "drv_ipackets"), 64);
        drop(d);
        assert_eq!(pool.held_by(owner), 0);
    }
}

#[test]
fn a_driver_built_against_the_1_2_snapshot_resets() {
    let lib =
        pktkit_shim::LegacyLibrary::load(drivers::DEVN_NULL_V1_2.as_ref()).expect("1.2 driver");
    assert_eq!(lib.abi(), (1, 2));
    let pool = pool("reset-v1_2", 256);
    let (mut d, _owner) = attach(&pool, drivers::DEVN_NULL_V1_2, &[]).expect("attach");
    assert_eq!(one_burst(&mut *d), 32);
    d.reset().expect("reset");
    assert_eq!(extra(&*d, "drv_ipackets"), 0);
    assert_eq!(one_burst(&mut *d), 32);
}

#[test]
fn a_failing_reset_reports_the_errno_and_the_device_still_starts() {
    let pool = pool("reset-bad", 256);
    let (mut d, owner) = attach(&pool, drivers::DEVN_BAD, &[("fault", "reset")]).expect("attach");
    assert_eq!(one_burst(&mut *d), 32);
    match d.reset() {
        Err(DriverError::Io { op, source }) => {
            assert!(op.contains("lf_reset"), "{op}");
            assert_eq!(source.raw_os_error(), Some(libc::EIO));
        }
        other => panic!("expected EIO, got {other:?}"),
    }
    assert_eq!(extra(&*d, "driver_errors"), 1);
    assert_eq!(one_burst(&mut *d), 32);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}
