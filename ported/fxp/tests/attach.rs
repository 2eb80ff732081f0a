//! Registration and option checking on any machine; the device itself is
//! proven in the lab (`cargo xtask lab --suite`, see docs/porting-netbsd.md).

use std::collections::BTreeMap;

use pktkit_bsd::Bus;
use pktkit_fxp::{DRIVER, FACTORY};
use pktkit_native::{AttachArgs, DriverKind, Pool, PoolConfig};

fn args(opts: &[(&str, &str)]) -> AttachArgs {
    let pool = Pool::new(&PoolConfig::new("fxp-test", 64)).expect("pool");
    AttachArgs {
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        owners: vec![pool.register_owner("fxp0").expect("owner")],
        pool,
        ifnames: vec!["fxp0".into()],
        pci: None,
    }
}

#[test]
fn registers_as_a_ported_pci_driver() {
    assert_eq!(FACTORY.name, "fxp");
    assert_eq!(FACTORY.prefix, "fxp");
    assert!(matches!(FACTORY.kind, DriverKind::Ported));
    match DRIVER.bus {
        Bus::Pci { ids } => assert!(ids.contains(&(0x8086, 0x1209)), "{ids:?}"),
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
