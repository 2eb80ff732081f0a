//! The stack against a real peer: the Linux kernel, in network namespaces
//! these tests make (and remove), over a TAP device and over a veth pair
//! through AF_PACKET. Needs root.

use pktkit_testnet as common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{is_root, unique, NetNs};
use pktkit::iface::IfEvent;
use pktkit::proto::Service;
use pktkit::stack::{Stack, StackConfig};
use pktkit_native::options::DriverSpec;

const MIB: usize = 1 << 20;

fn stack() -> Arc<Stack> {
    let cfg = StackConfig {
        workers: 2,
        pool_buffers: 8192,
        ..StackConfig::default()
    };
    Arc::new(Stack::new(&cfg).expect("stack"))
}

/// Attaches a driver from inside the namespace (TAP devices, netlink and
/// AF_PACKET sockets belong to the namespace of the thread that makes them).
fn attach_in(ns: &NetNs, stack: &Arc<Stack>, spec: &str) -> String {
    let st = stack.clone();
    let spec = DriverSpec::parse(spec).expect("spec");
    ns.run(move || st.attach(&spec).expect("attach")[0].name.clone())
}

fn serve(stack: &Stack, ifname: &str, addrs: &[&str]) {
    stack.up(ifname).expect("up");
    stack.attach_proto(ifname).expect("proto");
    for a in addrs {
        let (ip, plen) = pktkit::cli::parse_cidr(a).expect("cidr");
        stack.add_address(ifname, ip, plen).expect("address");
    }
    stack.serve(Service::Echo).expect("echo");
    stack.serve(Service::Discard).expect("discard");
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Sends `len` bytes to the echo service at `addr` and checks they come
/// back identical (writer and reader on separate threads).
fn tcp_echo(ns: &NetNs, addr: &'static str, len: usize) {
    ns.run(move || {
        let data = pattern(len, 7);
        let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(10))
            .expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let out = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&out).expect("write");
            w.shutdown(std::net::Shutdown::Write).expect("shutdown");
        });
        let mut back = Vec::with_capacity(len);
        s.read_to_end(&mut back).expect("read echo");
        writer.join().unwrap();
        assert_eq!(back.len(), data.len(), "echoed length");
        assert!(back == data, "echoed bytes differ");
    });
}

fn udp_echo(ns: &NetNs, addr: &'static str) {
    ns.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        for i in 0..5u8 {
            let msg = pattern(100 + i as usize * 200, i as u32);
            s.send_to(&msg, addr).unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) = s.recv_from(&mut buf).expect("udp echo reply");
            assert_eq!(&buf[..n], &msg[..]);
            assert_eq!(from.to_string(), addr);
        }
    });
}

fn ping(ns: &NetNs, addr: &str) {
    ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", addr]);
}

fn wait_link_event(ev: &std::sync::mpsc::Receiver<IfEvent>, ifname: &str, up: bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if let Ok(IfEvent::Link { ifname: n, state }) = ev.recv_timeout(Duration::from_millis(100))
        {
            if n == ifname && state.up == up {
                return;
            }
        }
    }
    panic!(
        "no link {} event for {ifname}",
        if up { "up" } else { "down" }
    );
}

#[test]
fn tap_with_linux_peer() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = NetNs::new("pkt");
    let st = stack();
    let events = st.subscribe();
    let linux_if = unique("pkt");
    let ifname = attach_in(&ns, &st, &format!("tap,ifname={linux_if}"));
    serve(&st, &ifname, &["192.0.2.2/24", "192.0.2.3/24"]);
    ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", &linux_if]);
    ns.exec(&["ip", "link", "set", &linux_if, "up"]);
    wait_link_event(&events, &ifname, true);

    ping(&ns, "192.0.2.2");
    ping(&ns, "192.0.2.3"); // the second address answers too
    tcp_echo(&ns, "192.0.2.2:7", 16 * MIB);
    tcp_echo(&ns, "192.0.2.3:7", MIB);
    udp_echo(&ns, "192.0.2.2:7");

    // Taking the Linux side down is a link event on our interface, told to
    // subscribers old and new.
    let late = st.subscribe();
    ns.exec(&["ip", "link", "set", &linux_if, "down"]);
    wait_link_event(&events, &ifname, false);
    wait_link_event(&late, &ifname, false);
    assert!(!st.interface(&ifname).unwrap().state().link.up);
    ns.exec(&["ip", "link", "set", &linux_if, "up"]);
    wait_link_event(&events, &ifname, true);
    ping(&ns, "192.0.2.2");

    let c = st.interface(&ifname).unwrap().counters();
    assert!(
        c.rx.packets > 10_000 && c.tx.packets > 10_000,
        "counters: {c:?}"
    );
    let pool = st.pool().clone();
    Arc::try_unwrap(st)
        .ok()
        .expect("stack still shared")
        .shutdown();
    assert_eq!(pool.available(), pool.capacity(), "buffers leaked");
}

#[test]
fn afpacket_with_linux_peer_over_veth() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = NetNs::new("pkv");
    let (ours, peer) = (unique("pa"), unique("pb"));
    ns.exec(&[
        "ip", "link", "add", &ours, "type", "veth", "peer", "name", &peer,
    ]);
    ns.exec(&["ip", "link", "set", &ours, "up"]);
    ns.exec(&["ip", "addr", "add", "198.51.100.1/24", "dev", &peer]);
    ns.exec(&["ip", "link", "set", &peer, "up"]);
    // A local sender's TSO/GSO frames are not wire frames; segment them.
    ns.exec(&["ethtool", "-K", &peer, "tso", "off", "gso", "off"]);
    let st = stack();
    let ifname = attach_in(&ns, &st, &format!("afpacket,ifname={ours}"));
    assert!(ifname.starts_with("afp"));
    serve(&st, &ifname, &["198.51.100.2/24", "198.51.100.3/24"]);

    ping(&ns, "198.51.100.2");
    ping(&ns, "198.51.100.3");
    tcp_echo(&ns, "198.51.100.2:7", 16 * MIB);
    udp_echo(&ns, "198.51.100.2:7");

    let pool = st.pool().clone();
    Arc::try_unwrap(st)
        .ok()
        .expect("stack still shared")
        .shutdown();
    assert_eq!(pool.available(), pool.capacity(), "buffers leaked");
}

#[test]
fn pair_interfaces_exchange_tcp_through_the_stack() {
    let st = stack();
    let names: Vec<String> = st
        .attach(&DriverSpec::parse("pair").unwrap())
        .unwrap()
        .iter()
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(names, ["pair0", "pair1"]);
    serve(&st, "pair0", &["192.0.2.1/24"]);
    serve(&st, "pair1", &["192.0.2.2/24"]);
    let idx0 = st.interface("pair0").unwrap().index;
    let h = st
        .with_proto(|n| n.tcp_connect(idx0, ("192.0.2.2".parse().unwrap(), 7)))
        .expect("connect");
    let data = pattern(4 * MIB, 3);
    let (mut sent, mut back) = (0, Vec::new());
    let mut buf = vec![0u8; 65536];
    let t0 = Instant::now();
    while back.len() < data.len() && t0.elapsed() < Duration::from_secs(60) {
        st.with_proto(|n| {
            if sent < data.len() {
                sent += n.tcp_send(idx0, h, &data[sent..]).unwrap_or(0);
            }
            if let Ok(k) = n.tcp_recv(idx0, h, &mut buf) {
                back.extend_from_slice(&buf[..k]);
            }
        });
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(
        back == data,
        "echoed {} of {} bytes, or they differ",
        back.len(),
        data.len()
    );
    // IPv6 link-local ping through the pair's NIC-like filter: works only
    // because the stack programmed the all-nodes and solicited-node groups.
    let p1 = st.interface("pair1").unwrap();
    let ll = pktkit::proto::link_local(p1.state().mac);
    let o = ll.address().octets();
    let solicited = [0x33, 0x33, 0xff, o[13], o[14], o[15]];
    assert!(
        p1.state().multicast.contains(&solicited),
        "{:x?}",
        p1.state().multicast
    );
    let h = st.with_proto(|n| n.ping_open(idx0, 0x77)).unwrap();
    let t0 = Instant::now();
    let mut replied = false;
    while !replied && t0.elapsed() < Duration::from_secs(5) {
        let target = pktkit::proto::IpAddress::Ipv6(ll.address());
        let _ = st.with_proto(|n| n.ping_send(idx0, h, target, 1, b"v6"));
        std::thread::sleep(Duration::from_millis(50));
        replied = st
            .with_proto(|n| n.ping_recv(idx0, h))
            .ok()
            .flatten()
            .is_some();
    }
    assert!(replied, "no ICMPv6 echo reply through the filtered pair");
    let pool = st.pool().clone();
    Arc::try_unwrap(st)
        .ok()
        .expect("stack still shared")
        .shutdown();
    assert_eq!(pool.available(), pool.capacity(), "buffers leaked");
}

/// Kills a child process on drop.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_lease(st: &Stack, idx: u32) -> pktkit::proto::DhcpLease {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Some(l) = st.with_proto(|n| n.dhcp_lease(idx)) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no DHCP lease within 30 s");
}

/// `--dhcp` against a real DHCP server (dnsmasq) on the Linux side of a TAP;
/// the lease is used (Linux pings it), and when the link comes back the
/// client negotiates anew.
#[test]
fn dhcp_lease_from_dnsmasq_over_tap() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = NetNs::new("pkd");
    let st = stack();
    let events = st.subscribe();
    let linux_if = unique("pkd");
    let ifname = attach_in(&ns, &st, &format!("tap,ifname={linux_if}"));
    st.up(&ifname).unwrap();
    st.attach_proto(&ifname).unwrap();
    st.enable_dhcp(&ifname).unwrap();
    let idx = st.interface(&ifname).unwrap().index;
    ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", &linux_if]);
    ns.exec(&["ip", "link", "set", &linux_if, "up"]);
    let log = std::env::temp_dir().join(format!("pktkit-dnsmasq-{}.log", std::process::id()));
    let leases = std::env::temp_dir().join(format!("pktkit-dnsmasq-{}.leases", std::process::id()));
    let server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "dnsmasq",
            "--no-daemon",
            "--port=0",
            "--no-resolv",
            "--no-hosts",
        ])
        .arg(format!("--interface={linux_if}"))
        .args([
            "--bind-interfaces",
            "--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,1h",
        ])
        .args([
            "--dhcp-option=3,192.0.2.1",
            "--log-dhcp",
            "--log-facility=-",
            "--pid-file=",
        ])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("dnsmasq (.ci/run installs dnsmasq-base)");
    let _server = ChildGuard(server);

    let lease = wait_lease(&st, idx);
    let addr = lease.address.address().to_string();
    let last: u8 = addr.rsplit('.').next().unwrap().parse().unwrap();
    assert!(
        addr.starts_with("192.0.2.") && (100..=150).contains(&last),
        "lease {addr}"
    );
    assert_eq!(
        lease.router.map(|r| r.to_string()).as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(lease.address.prefix_len(), 24);
    ns.exec(&["ip", "neigh", "flush", "dev", &linux_if]);
    ping(&ns, &addr);

    // Link down and up again: the client drops the lease and asks anew.
    ns.exec(&["ip", "link", "set", &linux_if, "down"]);
    wait_link_event(&events, &ifname, false);
    ns.exec(&["ip", "link", "set", &linux_if, "up"]);
    wait_link_event(&events, &ifname, true);
    let again = wait_lease(&st, idx);
    ns.exec(&["ip", "neigh", "flush", "dev", &linux_if]);
    ping(&ns, &again.address.address().to_string());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&leases);
    assert!(
        text.matches("DHCPACK").count() >= 2,
        "no second negotiation:\n{text}"
    );
    Arc::try_unwrap(st)
        .ok()
        .expect("stack still shared")
        .shutdown();
}
