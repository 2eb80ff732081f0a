//! Interfaces: the multicast list is pushed into the driver's filter (with
//! the all-multicast fallback beyond its slots), MTU limits, several
//! addresses, names by driver type and unit, and leak checks at detach.

use pktkit::iface::flags;
use pktkit::stack::{Stack, StackConfig};
use pktkit_native::options::DriverSpec;
use pktkit_native::{Mbuf, OwnerId, PacketBatch};

fn frame_to(stack: &Stack, dst: [u8; 6]) -> Mbuf {
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    Mbuf::from_slice(stack.pool(), OwnerId::POOL, &f).unwrap()
}

/// Sends one frame from pair0 and returns how many pair1 received.
fn cross(stack: &Stack, dst: [u8; 6]) -> usize {
    let q0 = stack.interface("pair0").unwrap().queues().unwrap();
    let q1 = stack.interface("pair1").unwrap().queues().unwrap();
    let mut out = PacketBatch::new();
    out.push(frame_to(stack, dst)).unwrap();
    assert_eq!(q0.tx[0].lock().unwrap().tx_burst(&mut out), 1);
    let mut got = PacketBatch::new();
    let n = q1.rx[0].lock().unwrap().rx_burst(&mut got);
    n
}

fn group(i: u8) -> [u8; 6] {
    [0x01, 0x00, 0x5e, 0x00, 0x01, i]
}

#[test]
fn multicast_list_programs_the_filter() {
    let stack = Stack::new(&StackConfig {
        pool_buffers: 1024,
        ..StackConfig::default()
    })
    .unwrap();
    let ifs = stack.attach(&DriverSpec::parse("pair").unwrap()).unwrap();
    assert_eq!(ifs[0].name, "pair0");
    assert_eq!(ifs[1].name, "pair1");
    stack.up("pair0").unwrap();
    stack.up("pair1").unwrap();
    let p1 = stack.interface("pair1").unwrap();
    let slots = p1.caps.multicast_slots as u8;
    assert!(slots > 0);

    assert_eq!(
        cross(&stack, group(0)),
        0,
        "unjoined group must be filtered"
    );
    p1.join_multicast(group(0)).unwrap();
    assert_eq!(cross(&stack, group(0)), 1, "joined group must pass");
    assert_eq!(cross(&stack, group(1)), 0);

    // More groups than filter slots: the interface falls back to all-multi.
    for i in 1..=slots {
        p1.join_multicast(group(i)).unwrap();
    }
    assert!(p1.state().flags & flags::ALLMULTI != 0);
    assert_eq!(cross(&stack, group(200)), 1, "all-multi passes any group");
    p1.leave_multicast(group(slots)).unwrap();
    assert!(p1.state().flags & flags::ALLMULTI == 0);
    assert_eq!(cross(&stack, group(200)), 0);
    assert_eq!(cross(&stack, group(3)), 1);
    assert!(
        p1.join_multicast([2, 0, 0, 0, 0, 1]).is_err(),
        "unicast is not a group"
    );

    // Promiscuous mode through the interface.
    assert_eq!(cross(&stack, [2, 7, 7, 7, 7, 7]), 0);
    p1.set_promisc(true).unwrap();
    assert_eq!(cross(&stack, [2, 7, 7, 7, 7, 7]), 1);
    assert!(p1.state().flags & flags::PROMISC != 0);

    let pool = stack.pool().clone();
    stack.shutdown();
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn mtu_addresses_units_and_detach() {
    let stack = Stack::new(&StackConfig {
        pool_buffers: 2048,
        ..StackConfig::default()
    })
    .unwrap();
    let a = stack.attach(&DriverSpec::parse("null").unwrap()).unwrap();
    let b = stack
        .attach(&DriverSpec::parse("null,size=128").unwrap())
        .unwrap();
    assert_eq!((a[0].name.as_str(), b[0].name.as_str()), ("null0", "null1"));
    let n0 = stack.interface("null0").unwrap();
    assert!(n0.set_mtu(20).is_err());
    assert!(n0.set_mtu(n0.caps.max_mtu + 1).is_err());
    n0.set_mtu(9000).unwrap();
    assert_eq!(n0.state().mtu, 9000);
    assert!(
        n0.set_mac([1, 0, 0, 0, 0, 1]).is_err(),
        "multicast station address"
    );

    stack.up("null0").unwrap();
    stack.attach_proto("null0").unwrap();
    stack
        .add_address("null0", "192.0.2.1".parse().unwrap(), 24)
        .unwrap();
    stack
        .add_address("null0", "192.0.2.9".parse().unwrap(), 24)
        .unwrap();
    stack
        .add_address("null0", "2001:db8::1".parse().unwrap(), 64)
        .unwrap();
    assert_eq!(n0.state().addrs.len(), 3);
    stack
        .remove_address("null0", "192.0.2.9".parse().unwrap())
        .unwrap();
    assert_eq!(n0.state().addrs.len(), 2);
    assert!(stack
        .remove_address("null0", "192.0.2.77".parse().unwrap())
        .is_err());

    // The protocol layer drinks from null0 (garbage frames, all counted and
    // dropped); then detach returns every buffer.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(n0.counters().rx.packets > 0);
    drop(n0);
    stack.detach("null0").unwrap();
    assert!(stack.interface("null0").is_err());
    // Units are not reused within a stack.
    let c = stack.attach(&DriverSpec::parse("null").unwrap()).unwrap();
    assert_eq!(c[0].name, "null2");
    let pool = stack.pool().clone();
    drop((a, b, c));
    stack.shutdown();
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn link_up_at_start_is_published() {
    let stack = Stack::new(&StackConfig {
        pool_buffers: 512,
        ..StackConfig::default()
    })
    .unwrap();
    let events = stack.subscribe();
    stack.attach(&DriverSpec::parse("null").unwrap()).unwrap();
    stack.up("null0").unwrap();
    let t0 = std::time::Instant::now();
    let mut seen = false;
    while !seen && t0.elapsed() < std::time::Duration::from_secs(5) {
        if let Ok(pktkit::iface::IfEvent::Link { ifname, state }) =
            events.recv_timeout(std::time::Duration::from_millis(100))
        {
            seen = ifname == "null0" && state.up;
        }
    }
    assert!(seen, "no link-up event for null0");
    stack.shutdown();
}
