//! Packet filter hooks in a running stack (drop, modify, added and removed
//! while traffic flows), the hooks and the stateless filter without heap
//! allocation per packet, and a capture client that does not read: it
//! loses frames (counted) and the stack does not stall.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pktkit::bpf::{Direction, Filter, Tap};
use pktkit::fw::Rule;
use pktkit::pfil::{HookSpec, IfInfo, Pfil, Verdict};
use pktkit::proto::IpAddress;
use pktkit::stack::{Stack, StackConfig};
use pktkit_native::options::DriverSpec;
use pktkit_native::pool::{HugePages, OwnerId, Pool, PoolConfig};
use pktkit_native::{Mbuf, PacketBatch};

#[global_allocator]
static GLOBAL: pktkit::alloc_count::CountingAlloc = pktkit::alloc_count::CountingAlloc::new();

/// pair0 (192.0.2.1) and pair1 (192.0.2.2), both in the protocol layer.
fn pair_stack() -> Stack {
    let st = Stack::new(&StackConfig {
        pool_buffers: 4096,
        ..StackConfig::default()
    })
    .expect("stack");
    st.attach(&DriverSpec::parse("pair").expect("spec"))
        .expect("attach");
    for (n, a) in [("pair0", "192.0.2.1"), ("pair1", "192.0.2.2")] {
        st.up(n).expect("up");
        st.attach_proto(n).expect("proto");
        st.add_address(n, a.parse().expect("addr"), 24)
            .expect("address");
    }
    st
}

/// pair0 pings pair1 `n` times (one at a time, `wait` each); how many
/// replies came back.
fn pings(st: &Stack, ident: u16, n: u16, size: usize, wait: Duration) -> usize {
    let idx = st.interface("pair0").expect("pair0").index;
    let h = st.with_proto(|p| p.ping_open(idx, ident)).expect("ping");
    let dst: IpAddress = "192.0.2.2".parse().expect("dst");
    let payload = vec![0x5a; size];
    let mut got = 0;
    for seq in 1..=n {
        st.with_proto(|p| p.ping_send(idx, h, dst, seq, &payload))
            .expect("send");
        st.wake_proto();
        let t0 = Instant::now();
        while t0.elapsed() < wait {
            if st
                .with_proto(|p| p.ping_recv(idx, h))
                .ok()
                .flatten()
                .is_some()
            {
                got += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

fn icmp(m: &Mbuf) -> bool {
    let d = m.data();
    d.get(12..14) == Some(&[0x08, 0x00][..]) && d.get(23) == Some(&1)
}

#[test]
fn hooks_drop_and_modify_while_traffic_flows() {
    let st = pair_stack();
    let w = Duration::from_millis(500);
    assert_eq!(pings(&st, 1, 3, 32, w), 3);

    // Input hook on pair1 only: echo requests never reach its protocols.
    let seen = Arc::new(AtomicU64::new(0));
    let s2 = seen.clone();
    let drop_icmp = st.pfil().add(
        HookSpec::new("drop-icmp").on("pair1").input(),
        move |dir: Direction, ifp: &IfInfo, m: &mut Mbuf| {
            assert_eq!((dir, ifp.name.as_str()), (Direction::In, "pair1"));
            if icmp(m) {
                s2.fetch_add(1, Ordering::Relaxed);
                Verdict::Drop
            } else {
                Verdict::Pass
            }
        },
    );
    assert_eq!(pings(&st, 2, 3, 32, Duration::from_millis(200)), 0);
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    let h = st.pfil().hooks();
    assert_eq!((h.len(), h[0].drops), (1, 3));

    // Removed while the stack runs: replies come back.
    assert!(st.pfil().remove(drop_icmp));
    assert_eq!(pings(&st, 3, 3, 32, w), 3);

    // Output hook on pair1 rewrites the TTL of what it sends (and fixes
    // the header checksum); a tap on pair0 sees the change.
    st.pfil().add(
        HookSpec::new("ttl").on("pair1").output(),
        |_: Direction, _: &IfInfo, m: &mut Mbuf| {
            let d = m.data_mut();
            if d.len() >= 34 && d[12..14] == [0x08, 0x00] {
                d[22] = 7;
                d[24] = 0;
                d[25] = 0;
                let mut sum = 0u32;
                for i in (14..34).step_by(2) {
                    sum += u32::from(u16::from_be_bytes([d[i], d[i + 1]]));
                }
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                d[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            }
            Verdict::Pass
        },
    );
    let tap = Arc::new(Tap::new(
        Filter::parse("icmp and src host 192.0.2.2").expect("filter"),
        Some(Direction::In),
        128,
        100,
    ));
    let p0 = st.interface("pair0").expect("pair0");
    p0.add_tap(tap.clone());
    assert_eq!(pings(&st, 4, 2, 32, w), 2, "modified replies still valid");
    p0.remove_tap(&tap);
    let frames = tap.drain(100);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|c| c.data[22] == 7), "TTL rewritten");

    // The stateless filter is a hook like any other.
    let w2: Vec<&str> = "add 10 deny out on pair0 proto icmp".split(' ').collect();
    st.firewall().command(&w2).expect("fw add");
    assert_eq!(pings(&st, 5, 2, 32, Duration::from_millis(200)), 0);
    st.firewall().command(&["flush"]).expect("fw flush");
    assert_eq!(pings(&st, 6, 2, 32, w), 2);
    st.shutdown();
}

/// The allocation counter is process-wide: this check runs alone in a
/// child process of this test binary.
#[test]
fn hooks_and_filter_do_not_allocate_per_packet() {
    const CHILD: &str = "PKTKIT_PFIL_ALLOC_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "hooks_and_filter_do_not_allocate_per_packet",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .expect("spawn child");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(text.contains("allocations per round: 0"), "{text}");
        return;
    }
    let c0 = pktkit::alloc_count::allocations();
    std::hint::black_box(vec![0u8; 100]);
    assert!(
        pktkit::alloc_count::allocations() > c0,
        "allocator installed"
    );

    let pool = Pool::new(&PoolConfig {
        name: "pfil-alloc".into(),
        buffers: 1024,
        hugepages: HugePages::Never,
    })
    .expect("pool");
    let pfil = Arc::new(Pfil::new());
    let fw = pktkit::fw::Firewall::new(pfil.clone());
    for r in [
        "10 deny in proto icmp from 198.51.100.0/24",
        "20 accept in proto tcp to any port 7",
        "30 deny in proto udp to 192.0.2.0/24 port 1000-2000",
    ] {
        let w: Vec<&str> = r.split(' ').collect();
        fw.add(Rule::parse(&w).expect("rule")).expect("add");
    }
    fw.set_policy(Direction::In, pktkit::fw::Action::Deny);
    pfil.add(
        HookSpec::new("mark").priority(-1),
        |_: Direction, _: &IfInfo, m: &mut Mbuf| {
            if let Some(b) = m.data_mut().get_mut(15) {
                *b = 0x10;
            }
            Verdict::Pass
        },
    );
    let ifp = IfInfo {
        index: 1,
        name: "x0".into(),
    };
    // TCP to port 7 (accepted), UDP to port 1500 (denied), ICMP from
    // 198.51.100.1 (denied), ARP (passes).
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for (proto, src, dport) in [
        (6u8, [192, 0, 2, 9], 7u16),
        (17, [192, 0, 2, 9], 1500),
        (1, [198, 51, 100, 1], 0),
    ] {
        let mut f = vec![0u8; 64];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&[192, 0, 2, 1]);
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        frames.push(f);
    }
    let mut arp = vec![0u8; 60];
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    frames.push(arp);

    let mut cache = pfil.cache();
    let mut batch = PacketBatch::new();
    let mut per_round = Vec::new();
    for _round in 0..3 {
        let before = pktkit::alloc_count::allocations();
        let mut passed = 0;
        for _ in 0..200 {
            for f in frames.iter().cycle().take(64) {
                if let Some(m) = Mbuf::from_slice(&pool, OwnerId::POOL, f) {
                    let _ = batch.push(m);
                }
            }
            let dropped = cache.filter_batch(Direction::In, &ifp, &mut batch, 0);
            assert_eq!(dropped, 32);
            passed += batch.len();
            batch.free_all();
        }
        assert_eq!(passed, 200 * 32);
        per_round.push(pktkit::alloc_count::allocations() - before);
    }
    let l = fw.list();
    assert_eq!(l.rules[0].packets, 3 * 200 * 16);
    println!("allocations per round: {}", per_round[per_round.len() - 1]);
}

#[test]
fn a_capture_client_that_does_not_read_loses_frames_not_the_stack() {
    let st = Arc::new(pair_stack());
    let dir = std::env::temp_dir().join(format!("pktkit-pfil-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("slow.sock");
    let listener = pktkit::ctl::Listener::bind_at("slow", &path).expect("bind");
    let server = listener.serve(st.clone()).expect("serve");

    use std::io::{BufRead, BufReader, Write};
    let conn = pktkit::ctl::client::Conn::open_at(&path).expect("connect");
    let mut s = conn.into_stream();
    writeln!(
        s,
        r#"{{"cmd":"tcpdump","if":"pair1","filter":"icmp","queue":16}}"#
    )
    .expect("request");
    // Not reading: 600 large echoes each way cannot all fit in the
    // control thread's buffer, the socket and the 16-frame tap queue.
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    let replies = pings(&st, 9, 600, 1400, Duration::from_millis(500));
    assert_eq!(replies, 600, "the stack kept answering");
    assert!(t0.elapsed() < Duration::from_secs(60));

    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut frames = 0u64;
    let mut summary = None;
    for line in BufReader::new(&s).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        if v.get("pkt").is_some() {
            frames += 1;
        } else if v.get("ok").is_some() {
            summary = Some(v);
            break;
        }
    }
    let v = summary.expect("a summary");
    assert_eq!(v["ok"], true, "{v}");
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    assert_eq!(n("captured"), frames, "{v}");
    assert_eq!(n("received"), 1200, "{v}");
    assert!(n("dropped") > 0, "a slow client loses frames: {v}");
    assert_eq!(n("captured") + n("dropped"), 1200, "{v}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    if let Ok(st) = Arc::try_unwrap(st) {
        st.shutdown();
    }
}
