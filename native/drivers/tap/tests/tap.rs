//! A real TAP in a throw-away network namespace: frames both ways, jumbo
//! frames, the ARP of a ping, link changes seen through rtnetlink.

use pktkit_testnet as common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{frame, seq_of, wait_readable, NetNs, RawSocket};
use pktkit_drv_tap::FACTORY;
use pktkit_native::pool::HugePages;
use pktkit_native::{
    AttachArgs, Control, Driver, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig, Queues,
};

fn attach(pool: &Pool, ifname: &str) -> Box<dyn Driver> {
    let options: BTreeMap<String, String> = [
        ("ifname".to_string(), ifname.to_string()),
        ("mac".to_string(), "02:00:5e:00:53:01".to_string()),
    ]
    .into();
    FACTORY.check_options(&options).expect("options");
    let owner = pool.register_owner("tap0").expect("owner");
    let mut devs = (FACTORY.create)(&AttachArgs {
        options,
        pool: pool.clone(),
        owners: vec![owner],
        ifnames: vec!["tap0".into()],
        pci: None,
    })
    .expect("attach tap");
    devs.pop().expect("one device")
}

/// Polls rx until a frame satisfying `want` arrives (others are dropped).
fn rx_until(q: &mut Queues, timeout: Duration, want: impl Fn(&Mbuf) -> bool) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut batch = PacketBatch::new();
    while Instant::now() < deadline {
        if q.rx[0].rx_burst(&mut batch) == 0 {
            let fd = q.rx[0].wait_fd().expect("wait fd");
            if q.rx[0].arm() {
                wait_readable(fd, Duration::from_millis(50));
            }
            q.rx[0].disarm();
            continue;
        }
        while let Some(m) = batch.pop_front() {
            if want(&m) {
                return Some(m.to_vec());
            }
        }
    }
    None
}

/// Waits for the service fd and returns whether a service call saw a change.
fn service_until_change(dev: &mut Box<dyn Driver>) -> bool {
    let fd = dev.service_fd().expect("service fd");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if wait_readable(fd, Duration::from_millis(100)) && dev.service().link_changed {
            return true;
        }
    }
    false
}

/// Whether the interface disappears soon. A process forked by a concurrent
/// test may briefly hold a copy of the TAP fd until it execs (the fd is
/// close-on-exec), which delays the removal a little.
fn gone(ns: &NetNs, ifname: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !ns.ip_ok(&["link", "show", ifname]) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn tap_end_to_end() {
    if !common::is_root() {
        eprintln!("skipped: tap_end_to_end needs root");
        return;
    }
    let ns = NetNs::new("pktap");
    let ifname = format!("pk{}", std::process::id());
    ns.run(|| {
        let pool = Pool::new(&PoolConfig {
            name: "tap".into(),
            buffers: 2048,
            hugepages: HugePages::Never,
        })
        .expect("pool");
        let mut dev = attach(&pool, &ifname);
        let our_mac = dev.mac();
        assert!(!dev.link().up, "Linux side starts down");

        ns.ip(&["addr", "add", "198.51.100.1/24", "dev", &ifname]);
        ns.ip(&["link", "set", &ifname, "up"]);
        assert!(service_until_change(&mut dev), "link change noticed");
        assert!(dev.link().up);

        let mut q = dev.start().expect("start");
        let raw = RawSocket::bind(&ifname);
        let linux_mac = [0x02, 0, 0x5e, 0, 0x53, 0x99];

        // Linux -> stack, a normal and (after raising the MTU) a jumbo frame.
        let f = frame(our_mac, linux_mac, 1, 1000);
        raw.send(&f);
        let got = rx_until(&mut q, Duration::from_secs(5), |m| {
            seq_of(&m.to_vec()) == Some(1)
        });
        assert_eq!(got.as_deref(), Some(&f[..]));

        dev.control(&Control::SetMtu(9000)).expect("mtu 9000");
        let jumbo = frame(our_mac, linux_mac, 2, 9014);
        raw.send(&jumbo);
        let got = rx_until(&mut q, Duration::from_secs(5), |m| {
            seq_of(&m.to_vec()) == Some(2) && m.segments() == 5
        });
        assert_eq!(got.as_deref(), Some(&jumbo[..]), "jumbo frame intact");
        assert!(dev.control(&Control::SetMtu(9001)).is_err());

        // A ping from the Linux side sends an ARP request that we receive.
        let mut ping = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "ping",
                "-c",
                "2",
                "-W",
                "1",
                "198.51.100.2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        let arp = rx_until(&mut q, Duration::from_secs(5), |m| {
            let d = m.data();
            d.len() >= 42
                && d[12..14] == [0x08, 0x06]
                && d[20..22] == [0, 1]
                && d[38..42] == [198, 51, 100, 2]
        });
        let _ = ping.wait();
        assert!(arp.is_some(), "ARP request for 198.51.100.2 arrived");

        // Stack -> Linux, normal and jumbo.
        for (seq, len) in [(10u32, 60usize), (11, 1514), (12, 9014)] {
            let f = frame([0xff; 6], our_mac, seq, len);
            let mut b = PacketBatch::new();
            assert!(b
                .push(Mbuf::from_slice(&pool, OwnerId::POOL, &f).expect("buf"))
                .is_ok());
            assert_eq!(q.tx[0].tx_burst(&mut b), 1);
            let seen = raw.recv_matching(Duration::from_secs(5), |x| seq_of(x) == Some(seq));
            assert_eq!(
                seen.as_deref(),
                Some(&f[..]),
                "frame {seq} seen on the Linux side"
            );
        }
        assert_eq!(q.tx[0].counters().packets, 3);
        assert!(q.rx[0].counters().packets >= 3);

        // Linux side down: noticed through the service fd.
        ns.ip(&["link", "set", &ifname, "down"]);
        assert!(service_until_change(&mut dev), "link down noticed");
        assert!(!dev.link().up);

        dev.stop(q);
        assert_eq!(pool.available(), 2048);
        drop(dev);
        assert!(
            !ns.ip_ok(&["link", "show", &ifname]),
            "TAP removed with the driver"
        );
    });
}

#[test]
fn default_name_is_chosen_by_the_kernel() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = NetNs::new("pktapd");
    ns.run(|| {
        let pool = Pool::new(&PoolConfig {
            name: "tapd".into(),
            buffers: 64,
            hugepages: HugePages::Never,
        })
        .expect("pool");
        let owner = pool.register_owner("tap0").expect("owner");
        let mut devs = (FACTORY.create)(&AttachArgs {
            options: BTreeMap::new(),
            pool: pool.clone(),
            owners: vec![owner],
            ifnames: vec!["tap0".into()],
            pci: None,
        })
        .expect("attach");
        let dev = devs.pop().expect("dev");
        let name = dev
            .describe()
            .into_iter()
            .find(|(k, _)| k == "linux ifname")
            .map(|(_, v)| v)
            .expect("ifname");
        assert!(name.starts_with("pktkit") && !name.contains('%'), "{name}");
        assert!(ns.ip_ok(&["link", "show", &name]));
        let mac = dev.mac();
        assert_eq!(mac[0] & 3, 2, "locally administered unicast");
        drop(dev);
        assert!(gone(&ns, &name), "TAP removed with the driver");
    });
}
