//! Ported NetBSD drivers (compat-bsd) in a real stack: bsdnull forwards
//! frames through the runtime, and its instrumented mode (`check=1`) proves
//! the execution model: without IFEF_MPSAFE its receive handler, if_start,
//! callout, softint and ioctl never overlap; with IFEF_MPSAFE they do.

use std::collections::BTreeMap;
use std::time::Duration;

use pktkit::runtime::Fallback;
use pktkit::stack::{Stack, StackConfig};
use pktkit_native::options::DriverSpec;
use pktkit_native::Concurrency;

fn bsdnull(opts: &[(&str, &str)]) -> DriverSpec {
    DriverSpec {
        name: "bsdnull".into(),
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn counter(stack: &Stack, ifname: &str, key: &str) -> u64 {
    let want = format!("{ifname} {key}");
    stack
        .interface(ifname)
        .unwrap()
        .counters()
        .device
        .extra
        .iter()
        .find(|(k, _)| *k == want)
        .map_or(0, |(_, v)| *v)
}

/// Two instrumented bsdnull interfaces forwarding to each other on four
/// workers, with the control path busy too.
fn run(mpsafe: bool) -> (Stack, [String; 2]) {
    let cfg = StackConfig {
        workers: 4,
        fallback: Fallback::PerDriver,
        pool_buffers: 4096,
        ..StackConfig::default()
    };
    let stack = Stack::new(&cfg).unwrap();
    let m = if mpsafe { "1" } else { "0" };
    let spec = bsdnull(&[("check", "1"), ("tick", "1"), ("mpsafe", m)]);
    let a = stack.attach(&spec).unwrap().remove(0).name.clone();
    let b = stack.attach(&spec).unwrap().remove(0).name.clone();
    let class = if mpsafe {
        Concurrency::MpSafe
    } else {
        Concurrency::Serialized
    };
    for n in [&a, &b] {
        assert_eq!(stack.interface(n).unwrap().concurrency(), class);
        stack.up(n).unwrap();
    }
    stack.forward(&a, &b).unwrap();
    stack.forward(&b, &a).unwrap();
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(25));
        for n in [&a, &b] {
            stack.interface(n).unwrap().set_promisc(i % 2 == 0).unwrap();
        }
    }
    (stack, [a, b])
}

#[test]
fn serialized_bsd_driver_entry_points_never_overlap() {
    let (stack, names) = run(false);
    for n in &names {
        for key in ["rxpoll", "start"] {
            let c = counter(&stack, n, key);
            assert!(c > 100, "{n}: {key} ran only {c} times");
        }
        for key in ["tick", "softint", "ioctl"] {
            let c = counter(&stack, n, key);
            assert!(c > 5, "{n}: {key} ran only {c} times");
        }
        assert_eq!(
            counter(&stack, n, "overlaps"),
            0,
            "{n}: two entry points of a serialized driver overlapped"
        );
    }
    let pool = stack.pool().clone();
    stack.shutdown();
    assert_eq!(pool.available(), pool.capacity(), "buffers leaked");
}

#[test]
fn mpsafe_bsd_driver_entry_points_run_in_parallel() {
    let (stack, names) = run(true);
    let overlaps: u64 = names.iter().map(|n| counter(&stack, n, "overlaps")).sum();
    assert!(
        overlaps > 0,
        "an IFEF_MPSAFE driver's entry points never ran at the same time"
    );
    let pool = stack.pool().clone();
    stack.shutdown();
    assert_eq!(pool.available(), pool.capacity(), "buffers leaked");
}

#[test]
fn bsdnull_forwards_frames_through_the_stack() {
    let cfg = StackConfig {
        workers: 2,
        pool_buffers: 4096,
        ..StackConfig::default()
    };
    let stack = Stack::new(&cfg).unwrap();
    let a = stack
        .attach(&bsdnull(&[("size", "60")]))
        .unwrap()
        .remove(0)
        .name
        .clone();
    let b = stack.attach(&bsdnull(&[])).unwrap().remove(0).name.clone();
    assert!(a.starts_with("bnull") && b.starts_with("bnull") && a != b);
    stack.up(&a).unwrap();
    stack.up(&b).unwrap();
    stack.forward(&a, &b).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let ca = stack.interface(&a).unwrap().counters();
    let cb = stack.interface(&b).unwrap().counters();
    let (rx, rx_bytes, tx) = (ca.rx.packets, ca.rx.bytes, cb.tx.packets);
    assert!(rx > 1000, "{a} received only {rx}");
    assert_eq!(rx_bytes, rx * 60, "every frame is 60 bytes");
    assert!(tx > 1000, "{b} sent only {tx}");
    assert!(stack.interface(&a).unwrap().state().link.up);
    let pool = stack.pool().clone();
    stack.shutdown();
    assert_eq!(pool.available(), pool.capacity(), "buffers leaked");
}

/// The ported PCI drivers register and check their options on any machine
/// (the devices themselves are proven in the lab, `cargo xtask lab --suite`):
/// each with its name as prefix, kind Ported, the PCI id of the QEMU model
/// it drives, `pci=` required, unknown keys refused, and an attach to a
/// function that is not there failing cleanly.
#[test]
fn ported_pci_drivers_register_and_check_options() {
    use pktkit_bsd::{Bus, PortedDriver};
    use pktkit_native::{AttachArgs, DriverFactory, DriverKind, Pool, PoolConfig};

    let drivers: [(&str, &PortedDriver, &DriverFactory, (u16, u16)); 3] = [
        (
            "fxp",
            &pktkit_fxp::DRIVER,
            &pktkit_fxp::FACTORY,
            (0x8086, 0x1209),
        ),
        (
            "pcn",
            &pktkit_pcn::DRIVER,
            &pktkit_pcn::FACTORY,
            (0x1022, 0x2000),
        ),
        (
            "rtk",
            &pktkit_rtk::DRIVER,
            &pktkit_rtk::FACTORY,
            (0x10ec, 0x8139),
        ),
    ];
    for (name, driver, factory, id) in drivers {
        assert_eq!(factory.name, name);
        let args = |opts: &[(&str, &str)]| {
            let pool = Pool::new(&PoolConfig::new(&format!("{name}-test"), 64)).expect("pool");
            AttachArgs {
                options: opts
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                owners: vec![pool.register_owner(&format!("{name}0")).expect("owner")],
                pool,
                ifnames: vec![format!("{name}0")],
                pci: None,
            }
        };
        assert_eq!(factory.prefix, name);
        assert!(matches!(factory.kind, DriverKind::Ported), "{name}");
        match driver.bus {
            Bus::Pci { ids } => assert!(ids.contains(&id), "{name}: {ids:?}"),
            _ => panic!("{name}: not a PCI driver"),
        }
        assert!(
            factory.check_options(&args(&[]).options).is_err(),
            "{name}: pci is required"
        );
        assert!(factory
            .check_options(&args(&[("pci", "0000:00:02.0"), ("x", "1")]).options)
            .is_err());
        // No such PCI function (or no VFIO here): attach fails cleanly.
        assert!(
            (factory.create)(&args(&[("pci", "0000:ff:1f.7")])).is_err(),
            "{name}"
        );
    }
}
