//! Attach errors on a machine without VFIO: options are checked before any
//! device is touched, and each failure says what is wrong.

use std::collections::BTreeMap;

use pktkit_drv_virtio::FACTORY;
use pktkit_native::pool::HugePages;
use pktkit_native::{AttachArgs, DriverError, OwnerId, Pool, PoolConfig};

fn args(opts: &[(&str, &str)]) -> AttachArgs {
    let pool = Pool::new(&PoolConfig {
        name: format!("vio-attach-{}", std::process::id()),
        buffers: 16,
        hugepages: HugePages::Never,
    })
    .unwrap();
    AttachArgs {
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        pool,
        owners: vec![OwnerId::POOL],
        ifnames: vec!["vio0".into()],
        pci: None,
    }
}

fn attach_err(opts: &[(&str, &str)]) -> DriverError {
    match (FACTORY.create)(&args(opts)) {
        Ok(_) => panic!("attach with {opts:?} succeeded without a device"),
        Err(e) => e,
    }
}

#[test]
fn factory_describes_itself() {
    assert_eq!(FACTORY.name, "virtio-net");
    assert_eq!(FACTORY.prefix, "vio");
    let required: Vec<_> = FACTORY.options.iter().filter(|o| o.required).collect();
    assert_eq!(required.len(), 1);
    assert_eq!(required[0].key, "pci");
    // The stack refuses a missing pci= and unknown keys before create.
    assert!(matches!(
        FACTORY.check_options(&BTreeMap::new()),
        Err(DriverError::MissingOption(k)) if k == "pci"
    ));
    let unknown = BTreeMap::from([
        ("pci".into(), "00:02.0".into()),
        ("speed".into(), "1".into()),
    ]);
    assert!(matches!(
        FACTORY.check_options(&unknown),
        Err(DriverError::UnknownOption { .. })
    ));
}

#[test]
fn bad_pci_address_is_a_clear_option_error() {
    let e = attach_err(&[("pci", "zz:02.0")]);
    assert!(
        matches!(&e, DriverError::BadOption { key, .. } if key == "pci"),
        "{e}"
    );
    assert!(e.to_string().contains("not a PCI address"), "{e}");
}

#[test]
fn without_vfio_attach_says_so() {
    let e = attach_err(&[("pci", "0000:00:02.0")]);
    assert!(matches!(e, DriverError::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("VFIO"), "{e}");
}

#[test]
fn queue_options_are_checked_before_the_device() {
    for (k, v, why) in [
        ("queues", "0", "1..=64"),
        ("queues", "65", "1..=64"),
        ("queues", "x", "invalid digit"),
        ("qsize", "384", "power of two"),
        ("qsize", "1", "power of two"),
        ("qsize", "65536", "too large"),
    ] {
        let e = attach_err(&[("pci", "0000:00:02.0"), (k, v)]);
        assert!(
            matches!(&e, DriverError::BadOption { key, .. } if key == k),
            "{k}={v}: {e}"
        );
        assert!(e.to_string().contains(why), "{k}={v}: {e}");
    }
}
