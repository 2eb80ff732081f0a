//! What the shim says about a device that does no DMA (devn-null, like the
//! NE2000): fault injection does not apply, and no receive ring limit.

mod common;

use common::{attach, pool};
use pktkit_native::{DriverError, Fault};
use pktkit_shim::drivers;

#[test]
fn a_device_without_dma_says_dma_faults_do_not_apply() {
    let pool = pool("nodma", 256);
    let (mut d, _owner) = attach(&pool, drivers::DEVN_NULL, &[]).expect("attach");
    let q = d.start().expect("start");
    match d.inject_fault(Fault::RxBufferIova(0x1000)) {
        Err(DriverError::Unsupported(why)) => {
            assert!(why.contains("no bus-master DMA"), "{why}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // devn-null reports no receive ring (di_rx_frames 0): no TCP limit.
    assert_eq!(d.rx_ring_frames(), None);
    d.stop(q);
}
