//! Registration and option checking on any machine; the device itself is
//! proven in the lab (`cargo xtask lab --suite`, see docs/porting-netbsd.md).

use std::collections::BTreeMap;

use pktkit_bsd::Bus;
use pktkit_native::{AttachArgs, DriverKind, Pool, PoolConfig};
use pktkit_pcn::{DRIVER, FACTORY};

fn args(opts: &[(&str, &str)]) -> AttachArgs {
    let pool = Pool::new(&PoolConfig::new("pcn-test", 64)).expect("pool");
    AttachArgs {
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        owners: vec![pool.register_owner("pcn0").expect("owner")],
        pool,
        ifnames: vec!["pcn0".into()],
        pci: None,
    }
}

#[test]
fn registers_as_a_ported_pci_driver() {
    assert_eq!(FACTORY.name, "pcn");
    assert_eq!(FACTORY.prefix, "pcn");
    assert!(matches!(FACTORY.kind, DriverKind::Ported));
    match DRIVER.bus {
        Bus::Pci { ids } => assert!(ids.contains(&(0x1022, 0x2000)), "{ids:?}"),
        _ => panic!("not a PCI driver"),
    }
}

#[test]
fn options_are_checked() {
    assert!(
        FACTORY.check_options(&args(&[]).options).is_err(),
        "pci is required"
    );
    assert!(FACTORY
        .check_options(&args(&[("pci", "0000:00:02.0"), ("x", "1")]).options)
        .is_err());
    // No such PCI function (or no VFIO here): attach fails cleanly.
    assert!((FACTORY.create)(&args(&[("pci", "0000:ff:1f.7")])).is_err());
}
