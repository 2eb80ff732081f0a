//! afpacket on one end of a veth pair in a throw-away namespace, with raw
//! sockets on the other end: frames both ways, jumbo frames, ring wrap and
//! block retirement over 10,000 frames, promiscuous mode, link changes.

use pktkit_testnet as common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{frame, seq_of, NetNs, RawSocket};
use pktkit_drv_afpacket::FACTORY;
use pktkit_native::pool::HugePages;
use pktkit_native::{
    AttachArgs, Control, Driver, DriverError, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig, Queues,
};

fn pool(name: &str, buffers: usize) -> Pool {
    Pool::new(&PoolConfig {
        name: name.into(),
        buffers,
        hugepages: HugePages::Never,
    })
    .expect("pool")
}

fn attach(pool: &Pool, opts: &[(&str, &str)]) -> Result<Box<dyn Driver>, DriverError> {
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    FACTORY.check_options(&options)?;
    let owner = pool.register_owner("afp0").expect("owner");
    let mut devs = (FACTORY.create)(&AttachArgs {
        options,
        pool: pool.clone(),
        owners: vec![owner],
        ifnames: vec!["afp0".into()],
        pci: None,
    })?;
    Ok(devs.pop().expect("one device"))
}

/// Receives until `want` frames with our ethertype arrived or `timeout`;
/// returns them (other traffic is dropped).
fn rx_frames(q: &mut Queues, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut batch = PacketBatch::new();
    while out.len() < want && Instant::now() < deadline {
        if q.rx[0].rx_burst(&mut batch) == 0 {
            if q.rx[0].arm() {
                let fd = q.rx[0].wait_fd().expect("wait fd");
                common::wait_readable(fd, Duration::from_millis(20));
            }
            q.rx[0].disarm();
            continue;
        }
        while let Some(m) = batch.pop_front() {
            let v = m.to_vec();
            if seq_of(&v).is_some() {
                out.push(v);
            }
        }
    }
    out
}

fn wait_link(dev: &mut Box<dyn Driver>, up: bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if dev.service().link_changed && dev.link().up == up {
            return true;
        }
        if dev.link().up == up {
            return true;
        }
        std::thread::sleep(dev.service_interval().unwrap_or(Duration::from_millis(50)));
    }
    false
}

struct Veth {
    ns: NetNs,
    ours: String,
    peer: String,
}

fn veth(tag: &str) -> Veth {
    let ns = NetNs::new(tag);
    let pid = std::process::id();
    let ours = format!("pa{pid}");
    let peer = format!("pb{pid}");
    ns.ip(&["link", "add", &ours, "type", "veth", "peer", "name", &peer]);
    ns.ip(&["link", "set", &ours, "mtu", "9000", "up"]);
    ns.ip(&["link", "set", &peer, "mtu", "9000", "up"]);
    Veth { ns, ours, peer }
}

#[test]
fn missing_interface_is_no_device() {
    let pool = pool("afp-nodev", 16);
    let r = attach(&pool, &[("ifname", "pkt-no-such-if")]);
    assert!(matches!(r, Err(DriverError::NoDevice(_))), "{:?}", r.err());
    assert!(matches!(
        attach(&pool, &[]),
        Err(DriverError::MissingOption(k)) if k == "ifname"
    ));
    assert!(matches!(
        attach(&pool, &[("ifname", "lo"), ("block_size", "1000")]),
        Err(DriverError::BadOption { .. })
    ));
    assert!(matches!(
        attach(&pool, &[("ifname", "lo"), ("qdisc_bypass", "2")]),
        Err(DriverError::BadOption { .. })
    ));
}

#[test]
fn veth_end_to_end() {
    if !common::is_root() {
        eprintln!("skipped: veth_end_to_end needs root");
        return;
    }
    let v = veth("pkafp");
    v.ns.run(|| {
        let pool = pool("afp", 4096);
        let mut dev = attach(&pool, &[("ifname", &v.ours)]).expect("attach");
        assert!(wait_link(&mut dev, true), "link up");
        let our_mac = dev.mac();
        assert_ne!(our_mac, [0; 6], "the interface's MAC");
        let mut q = dev.start().expect("start");
        let raw = RawSocket::bind(&v.peer);
        raw.set_rcvbuf(32 << 20);
        let peer_mac = [0x02, 0, 0x5e, 0, 0x53, 0x42];

        // Peer -> us: normal and jumbo frames, content intact.
        let small = frame(our_mac, peer_mac, 1, 60);
        let mid = frame(our_mac, peer_mac, 2, 1514);
        let jumbo = frame(our_mac, peer_mac, 3, 9014);
        for f in [&small, &mid, &jumbo] {
            raw.send(f);
        }
        let got = rx_frames(&mut q, 3, Duration::from_secs(5));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], small);
        assert_eq!(got[1], mid);
        assert_eq!(got[2], jumbo, "jumbo frame arrives intact (chained)");

        // Us -> peer; and our own frames do not come back to our rx.
        let mut b = PacketBatch::new();
        for seq in 10..20u32 {
            let f = frame([0xff; 6], our_mac, seq, 64 + seq as usize * 50);
            assert!(b
                .push(Mbuf::from_slice(&pool, OwnerId::POOL, &f).expect("buf"))
                .is_ok());
        }
        assert_eq!(q.tx[0].tx_burst(&mut b), 10);
        for seq in 10..20u32 {
            let want = frame([0xff; 6], our_mac, seq, 64 + seq as usize * 50);
            let seen = raw.recv_matching(Duration::from_secs(5), |x| seq_of(x) == Some(seq));
            assert_eq!(seen.as_deref(), Some(&want[..]), "frame {seq} at the peer");
        }
        assert!(
            rx_frames(&mut q, 1, Duration::from_millis(300)).is_empty(),
            "no loopback of our tx"
        );
        // Too big for a transmit slot: taken, counted, freed.
        let big = frame([0xff; 6], our_mac, 99, 4000);
        assert!(b
            .push(Mbuf::from_slice(&pool, OwnerId::POOL, &big).expect("buf"))
            .is_ok());
        assert_eq!(q.tx[0].tx_burst(&mut b), 1);
        assert_eq!(q.tx[0].counters().errors, 1);

        // 10,000 frames from the peer, paced modestly, all arrive.
        const N: u32 = 10_000;
        let peer = v.peer.clone();
        let sender = std::thread::spawn({
            let ns_path = format!("/var/run/netns/{}", v.ns.name);
            move || {
                enter(&ns_path);
                let raw = RawSocket::bind(&peer);
                for seq in 0..N {
                    let f = frame(our_mac, peer_mac, 1000 + seq, 60 + (seq as usize % 200));
                    while !raw.try_send(&f) {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    if seq % 100 == 99 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        });
        let got = rx_frames(&mut q, N as usize, Duration::from_secs(60));
        sender.join().expect("sender");
        assert_eq!(got.len(), N as usize, "all frames arrived");
        for (i, f) in got.iter().enumerate() {
            assert_eq!(seq_of(f), Some(1000 + i as u32), "in order");
            assert_eq!(f.len(), 60 + i % 200);
        }

        // 5,000 frames from us: the tx ring wraps; Full is retried.
        const M: u32 = 5_000;
        let reader = std::thread::spawn({
            let ns_path = format!("/var/run/netns/{}", v.ns.name);
            let peer = v.peer.clone();
            move || {
                enter(&ns_path);
                let raw = RawSocket::bind(&peer);
                raw.set_rcvbuf(64 << 20);
                let mut next = 50_000;
                let deadline = Instant::now() + Duration::from_secs(30);
                while next < 50_000 + M && Instant::now() < deadline {
                    if raw
                        .recv_matching(Duration::from_millis(100), |x| seq_of(x) == Some(next))
                        .is_some()
                    {
                        next += 1;
                    }
                }
                next - 50_000
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut seq = 50_000;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seq < 50_000 + M && Instant::now() < deadline {
            while b.room() > 0 && seq + (b.len() as u32) < 50_000 + M {
                let f = frame([0xff; 6], our_mac, seq + b.len() as u32, 100);
                assert!(b
                    .push(Mbuf::from_slice(&pool, OwnerId::POOL, &f).expect("buf"))
                    .is_ok());
            }
            let n = q.tx[0].tx_burst(&mut b);
            seq += n as u32;
            if n == 0 {
                q.tx[0].reclaim();
                std::thread::sleep(Duration::from_micros(100));
            } else if seq % 1000 < 256 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        b.free_all();
        assert_eq!(
            reader.join().expect("reader"),
            M,
            "all our frames seen, in order"
        );

        // Promiscuous mode is a socket membership, counted by the interface.
        assert!(link_details(&v).contains("promiscuity 0"));
        dev.control(&Control::SetPromisc(true)).expect("promisc on");
        assert!(link_details(&v).contains("promiscuity 1"));
        dev.control(&Control::SetPromisc(true))
            .expect("promisc twice");
        assert!(link_details(&v).contains("promiscuity 1"));
        dev.control(&Control::SetPromisc(false))
            .expect("promisc off");
        assert!(link_details(&v).contains("promiscuity 0"));
        dev.control(&Control::SetMulticast(vec![[0x01, 0, 0x5e, 0, 0, 0xfb]]))
            .expect("mcast");
        dev.control(&Control::SetAllMulti(true)).expect("allmulti");

        let c = dev.counters();
        let kdrops = c
            .extra
            .iter()
            .find(|(k, _)| k == "kernel rx drops")
            .map(|x| x.1);
        assert_eq!(kdrops, Some(0), "the kernel dropped nothing");

        // Peer down: our carrier goes, service() notices.
        v.ns.ip(&["link", "set", &v.peer, "down"]);
        assert!(wait_link(&mut dev, false), "link down noticed");
        assert!(!dev.link().up);

        dev.stop(q);
        assert_eq!(pool.available(), 4096);
        // A second start picks the rings up again.
        let q = dev.start().expect("restart");
        dev.stop(q);
        drop(dev);
        assert_eq!(pool.available(), 4096);
    });
}

fn link_details(v: &Veth) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", &v.ns.name, "-d", "link", "show", &v.ours])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn enter(path: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).expect("open netns");
    // SAFETY: setns on a namespace fd affects only this thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns");
}
