//! The protocol layer end to end: two interfaces of one `NetStack` joined
//! back to back by the pair driver (ARP, ping over IPv4 and IPv6 link-local,
//! TCP and UDP echo and discard, a second address, several connections at
//! once), and a fuzz run of 100,000 random and mutated frames through the
//! receive path.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use pktkit::proto::{
    link_local, required_groups, Datagram, IpAddress, IpCidr, NetStack, Port, ProtoError, Service,
    SocketHandle, TcpState,
};
use pktkit_native::pool::HugePages;
use pktkit_native::{
    AttachArgs, Control, Driver, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig, Queues, RxQueue,
    TxQueue,
};

#[global_allocator]
static GLOBAL: pktkit::alloc_count::CountingAlloc = pktkit::alloc_count::CountingAlloc::new();

const SIDE1: u32 = 1;
const SIDE2: u32 = 2;

fn pool(name: &str, buffers: usize) -> Pool {
    Pool::new(&PoolConfig {
        name: name.into(),
        buffers,
        hugepages: HugePages::Never,
    })
    .expect("pool")
}

fn v4(s: &str) -> IpAddress {
    s.parse().expect("address")
}

fn cidr(s: &str) -> IpCidr {
    s.parse().expect("cidr")
}

/// Frames of each ethertype and ARP operation a port has received.
#[derive(Default, Debug)]
struct Seen {
    arp_requests: u32,
    arp_replies: u32,
    ipv4: u32,
    ipv6: u32,
}

impl Seen {
    fn note(&mut self, frame: &[u8]) {
        match frame.get(12..14) {
            Some([0x08, 0x06]) => match frame.get(20..22) {
                Some([0, 1]) => self.arp_requests += 1,
                Some([0, 2]) => self.arp_replies += 1,
                _ => {}
            },
            Some([0x08, 0x00]) => self.ipv4 += 1,
            Some([0x86, 0xdd]) => self.ipv6 += 1,
            _ => {}
        }
    }
}

/// One side of the pair driver as a `Port`: its first rx and tx queue.
struct PairPort {
    rx: Box<dyn RxQueue>,
    tx: Box<dyn TxQueue>,
    pool: Pool,
    owner: OwnerId,
    mac: [u8; 6],
    seen: Seen,
}

impl Port for PairPort {
    fn recv(&mut self, batch: &mut PacketBatch) -> usize {
        let before = batch.len();
        let n = self.rx.rx_burst(batch);
        for m in batch.iter().skip(before) {
            self.seen.note(m.data());
        }
        n
    }
    fn send(&mut self, batch: &mut PacketBatch) -> usize {
        self.tx.tx_burst(batch)
    }
    fn pool(&self) -> &Pool {
        &self.pool
    }
    fn owner(&self) -> OwnerId {
        self.owner
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn mtu(&self) -> usize {
        1500
    }
}

/// A `NetStack` with interfaces 1 and 2 on the two ends of a pair.
struct Bench {
    stack: NetStack,
    ports: [PairPort; 2],
    drivers: [Box<dyn Driver>; 2],
    _pool: Pool,
}

impl Bench {
    fn new(name: &str) -> Bench {
        let pool = pool(name, 8192);
        let owners = [
            pool.register_owner("pair0").expect("owner"),
            pool.register_owner("pair1").expect("owner"),
        ];
        let factory = &pktkit_drv_pair::FACTORY;
        let options = BTreeMap::new();
        factory.check_options(&options).expect("options");
        let mut devs = (factory.create)(&AttachArgs {
            options,
            pool: pool.clone(),
            owners: owners.to_vec(),
            ifnames: vec!["pair0".into(), "pair1".into()],
            pci: None,
        })
        .expect("attach pair");
        let mut d2 = devs.pop().expect("pair1");
        let mut d1 = devs.pop().expect("pair0");
        let port = |d: &mut Box<dyn Driver>, owner| {
            let mut q = d.start().expect("start");
            PairPort {
                rx: q.rx.remove(0),
                tx: q.tx.remove(0),
                pool: pool.clone(),
                owner,
                mac: d.mac(),
                seen: Seen::default(),
            }
        };
        let p1 = port(&mut d1, owners[0]);
        let p2 = port(&mut d2, owners[1]);
        let mut stack = NetStack::new();
        stack.add_interface(SIDE1, p1.mac, 1500).expect("if1");
        stack.add_interface(SIDE2, p2.mac, 1500).expect("if2");
        stack
            .add_address(SIDE1, cidr("192.0.2.1/24"))
            .expect("addr1");
        stack
            .add_address(SIDE2, cidr("192.0.2.2/24"))
            .expect("addr2");
        stack.serve(Service::Echo).expect("echo");
        stack.serve(Service::Discard).expect("discard");
        // The pair filters like a NIC: program the groups NDP needs.
        for (d, side) in [(&mut d1, SIDE1), (&mut d2, SIDE2)] {
            let groups = required_groups(&stack.addresses(side).expect("addresses"));
            d.control(&Control::SetMulticast(groups))
                .expect("multicast");
        }
        Bench {
            stack,
            ports: [p1, p2],
            drivers: [d1, d2],
            _pool: pool,
        }
    }

    /// Polls both sides once.
    fn step(&mut self) {
        let now = Instant::now();
        let [p1, p2] = &mut self.ports;
        self.stack.poll(SIDE1, p1, now);
        self.stack.poll(SIDE2, p2, now);
    }

    /// Polls until `done` holds; false after `limit`.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut NetStack) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.step();
            if done(&mut self.stack) {
                return true;
            }
        }
        false
    }

    /// Sends one echo request and waits for its reply.
    fn ping(&mut self, from: u32, h: SocketHandle, dst: IpAddress, seq: u16) -> bool {
        let payload: Vec<u8> = (0..56u8).collect();
        self.stack
            .ping_send(from, h, dst, seq, &payload)
            .expect("ping send");
        let mut got = None;
        self.run_until(Duration::from_secs(5), |s| {
            got = s.ping_recv(from, h).expect("ping recv");
            got.is_some()
        });
        match got {
            Some(r) => {
                assert_eq!(r.from, dst);
                assert_eq!(r.seq, seq);
                assert_eq!(r.len, payload.len());
                true
            }
            None => false,
        }
    }

    /// Streams `data` through a TCP connection from side 1 to `dst` and
    /// returns what came back, after an orderly close from both ends.
    fn tcp_roundtrip(&mut self, dst: (IpAddress, u16), data: &[u8], limit: Duration) -> Vec<u8> {
        let h = self.stack.tcp_connect(SIDE1, dst).expect("connect");
        let mut sent = 0;
        let mut back = Vec::with_capacity(data.len());
        let mut buf = vec![0u8; 64 * 1024];
        let mut closed = false;
        let end = Instant::now() + limit;
        loop {
            assert!(
                Instant::now() < end,
                "tcp transfer timed out: sent {sent}, got {}",
                back.len()
            );
            self.step();
            let state = self.stack.tcp_state(SIDE1, h).expect("state");
            if state == TcpState::Established || state == TcpState::CloseWait {
                if sent < data.len() {
                    sent += self.stack.tcp_send(SIDE1, h, &data[sent..]).expect("send");
                } else if !closed {
                    self.stack.tcp_close(SIDE1, h).expect("close");
                    closed = true;
                }
            }
            match self.stack.tcp_recv(SIDE1, h, &mut buf) {
                Ok(n) => back.extend_from_slice(&buf[..n]),
                Err(ProtoError::TcpRecv(_)) => {}
                Err(e) => panic!("recv: {e}"),
            }
            if matches!(state, TcpState::Closed | TcpState::TimeWait) {
                break;
            }
            assert_ne!(state, TcpState::Closed, "connection failed");
        }
        self.stack.close_socket(SIDE1, h).expect("close socket");
        back
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        // Give the queues back so the driver frees its buffers.
        let ports = self.ports_vec();
        for (d, p) in self.drivers.iter_mut().zip(ports) {
            d.stop(Queues {
                rx: vec![p.0],
                tx: vec![p.1],
            });
        }
    }
}

impl Bench {
    /// Moves the queues out of the ports (for `stop`), leaving closed ones.
    fn ports_vec(&mut self) -> Vec<(Box<dyn RxQueue>, Box<dyn TxQueue>)> {
        self.ports
            .iter_mut()
            .map(|p| {
                (
                    std::mem::replace(&mut p.rx, Box::new(Unplugged)),
                    std::mem::replace(&mut p.tx, Box::new(Unplugged)),
                )
            })
            .collect()
    }
}

/// A queue with nothing behind it, left in a port once its real queue went
/// back to the driver.
struct Unplugged;

impl RxQueue for Unplugged {
    fn rx_burst(&mut self, _batch: &mut PacketBatch) -> usize {
        0
    }
    fn counters(&self) -> pktkit_native::QueueCounters {
        Default::default()
    }
}

impl TxQueue for Unplugged {
    fn tx_burst(&mut self, _batch: &mut PacketBatch) -> usize {
        0
    }
    fn counters(&self) -> pktkit_native::QueueCounters {
        Default::default()
    }
}

/// A stream whose bytes depend on their offset, so that any reordering,
/// loss or duplication shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

#[test]
fn arp_resolves_and_ping_is_answered() {
    let mut b = Bench::new("pp-ping");
    let h = b.stack.ping_open(SIDE1, 0x1234).expect("ping socket");
    assert!(b.ping(SIDE1, h, v4("192.0.2.2"), 1), "no echo reply");
    // Side 1 had to ask who has 192.0.2.2, and side 2 answered.
    assert!(b.ports[1].seen.arp_requests >= 1, "{:?}", b.ports[1].seen);
    assert!(b.ports[0].seen.arp_replies >= 1, "{:?}", b.ports[0].seen);
    // Once resolved, the next ping needs no ARP.
    let requests = b.ports[1].seen.arp_requests;
    assert!(b.ping(SIDE1, h, v4("192.0.2.2"), 2));
    assert_eq!(b.ports[1].seen.arp_requests, requests);
    let c1 = b.stack.counters(SIDE1);
    let c2 = b.stack.counters(SIDE2);
    assert!(c1.tx_frames >= 3 && c1.rx_frames >= 3, "{c1:?}");
    assert!(c2.tx_frames >= 3 && c2.rx_frames >= 3, "{c2:?}");
    assert_eq!(c1.rx_malformed + c2.rx_malformed, 0);
    // No reply from an address nobody has.
    assert!(b
        .stack
        .ping_send(SIDE1, h, v4("224.0.0.1"), 3, b"x")
        .is_err());
}

#[test]
fn ipv6_link_local_ping() {
    let mut b = Bench::new("pp-ping6");
    let mac2 = b.ports[1].mac;
    let ll2 = link_local(mac2);
    assert!(b
        .stack
        .addresses(SIDE2)
        .expect("addrs")
        .contains(&IpCidr::Ipv6(ll2)));
    let h = b.stack.ping_open(SIDE1, 0x6666).expect("ping socket");
    assert!(
        b.ping(SIDE1, h, IpAddress::Ipv6(ll2.address()), 7),
        "no ICMPv6 echo reply"
    );
    assert!(
        b.ports[1].seen.ipv6 >= 2,
        "neighbor solicitation and echo request"
    );
}

#[test]
fn tcp_echo_returns_a_mebibyte_byte_exact() {
    let mut b = Bench::new("pp-tcp");
    let data = pattern(1 << 20, 1);
    let t = Instant::now();
    let back = b.tcp_roundtrip((v4("192.0.2.2"), 7), &data, Duration::from_secs(60));
    eprintln!("1 MiB echoed in {:?}", t.elapsed());
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed stream differs");
    // The server side closed too, and the spare listener is back alone.
    assert!(b.run_until(Duration::from_secs(5), |s| s
        .service_sockets(SIDE2, Service::Echo)
        <= 2));
}

#[test]
fn tcp_echo_16_mib_byte_exact() {
    let mut b = Bench::new("pp-tcp16");
    let data = pattern(16 << 20, 7);
    let t = Instant::now();
    let back = b.tcp_roundtrip((v4("192.0.2.2"), 7), &data, Duration::from_secs(300));
    eprintln!("16 MiB echoed in {:?}", t.elapsed());
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed stream differs");
}

/// The allocation counter is process-wide, so this check runs alone in a
/// child process of this test binary.
#[test]
fn steady_state_packet_path_does_not_allocate() {
    const CHILD: &str = "PKTKIT_PROTO_ALLOC_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "steady_state_packet_path_does_not_allocate",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .expect("spawn child");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(text.contains("allocations: 0"), "{text}");
        return;
    }
    // The counter counts (the allocator is installed).
    let c0 = pktkit::alloc_count::allocations();
    std::hint::black_box(vec![0u8; 100]);
    assert!(pktkit::alloc_count::allocations() > c0);
    let mut b = Bench::new("pp-alloc");
    let data = pattern(1 << 20, 11);
    let mut back = vec![0u8; data.len()];
    let mut buf = vec![0u8; 65536];
    let ping = b.stack.ping_open(SIDE1, 5).expect("ping");
    let udp = b.stack.udp_bind(SIDE1, 40002).expect("udp");
    let h = b
        .stack
        .tcp_connect(SIDE1, (v4("192.0.2.2"), 7))
        .expect("connect");
    assert!(b.run_until(Duration::from_secs(5), |s| s
        .tcp_state(SIDE1, h)
        .expect("state")
        == TcpState::Established));
    // Two rounds: the first warms up (ARP, listener replenished, caches),
    // the second is measured.
    let mut measured = 0;
    for round in 0..2 {
        let before = pktkit::alloc_count::allocations();
        let (mut sent, mut got) = (0, 0);
        let mut seq = 0u16;
        let end = Instant::now() + Duration::from_secs(60);
        while got < data.len() {
            assert!(Instant::now() < end, "timed out");
            b.step();
            sent += b.stack.tcp_send(SIDE1, h, &data[sent..]).expect("send");
            if let Ok(n) = b.stack.tcp_recv(SIDE1, h, &mut buf) {
                back[got..got + n].copy_from_slice(&buf[..n]);
                got += n;
            }
            if got > (usize::from(seq) + 1) * 100_000 {
                seq += 1;
                let _ = b
                    .stack
                    .ping_send(SIDE1, ping, v4("192.0.2.2"), seq, &data[..64]);
                let _ = b
                    .stack
                    .udp_send(SIDE1, udp, (v4("192.0.2.2"), 7), &data[..512]);
            }
            let _ = b.stack.ping_recv(SIDE1, ping);
            let _ = b.stack.udp_recv(SIDE1, udp, &mut buf);
        }
        assert!(back == data, "round {round} differs");
        if round == 1 {
            measured = pktkit::alloc_count::allocations() - before;
        }
    }
    println!("allocations: {measured}");
}

#[test]
fn tcp_echo_serves_concurrent_connections() {
    let mut b = Bench::new("pp-conc");
    const N: usize = 5;
    let streams: Vec<Vec<u8>> = (0..N).map(|i| pattern(200_000, i as u32 + 10)).collect();
    let hs: Vec<SocketHandle> = (0..N)
        .map(|_| {
            b.stack
                .tcp_connect(SIDE1, (v4("192.0.2.2"), 7))
                .expect("connect")
        })
        .collect();
    let mut sent = [0usize; N];
    let mut back: Vec<Vec<u8>> = vec![Vec::new(); N];
    let mut buf = vec![0u8; 65536];
    let mut peak = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while back.iter().zip(&streams).any(|(b, s)| b.len() < s.len()) {
        assert!(
            Instant::now() < end,
            "timed out: sent {sent:?} back {:?} states {:?} c1 {:?} c2 {:?}",
            back.iter().map(Vec::len).collect::<Vec<_>>(),
            hs.iter()
                .map(|h| b.stack.tcp_state(SIDE1, *h))
                .collect::<Vec<_>>(),
            b.stack.counters(SIDE1),
            b.stack.counters(SIDE2)
        );
        b.step();
        peak = peak.max(b.stack.service_sockets(SIDE2, Service::Echo));
        for i in 0..N {
            if b.stack.tcp_state(SIDE1, hs[i]).expect("state") == TcpState::Established {
                sent[i] += b
                    .stack
                    .tcp_send(SIDE1, hs[i], &streams[i][sent[i]..])
                    .expect("send");
            }
            if let Ok(n) = b.stack.tcp_recv(SIDE1, hs[i], &mut buf) {
                back[i].extend_from_slice(&buf[..n]);
            }
        }
    }
    for i in 0..N {
        assert!(back[i] == streams[i], "stream {i} differs");
    }
    // All N connections were open at once, plus the spare listener.
    assert!(peak > N, "peak {peak}");
}

#[test]
fn tcp_discard_takes_everything_and_returns_nothing() {
    let mut b = Bench::new("pp-disc");
    let data = pattern(300_000, 3);
    let back = b.tcp_roundtrip((v4("192.0.2.2"), 9), &data, Duration::from_secs(60));
    assert!(back.is_empty());
}

#[test]
fn udp_echo_and_discard() {
    let mut b = Bench::new("pp-udp");
    let h = b.stack.udp_bind(SIDE1, 40000).expect("bind");
    let mut buf = [0u8; 2048];
    for (i, len) in [1usize, 100, 1472].into_iter().enumerate() {
        let msg = pattern(len, i as u32);
        b.stack
            .udp_send(SIDE1, h, (v4("192.0.2.2"), 7), &msg)
            .expect("send");
        let mut got = None;
        b.run_until(Duration::from_secs(5), |s| {
            got = s.udp_recv(SIDE1, h, &mut buf).expect("recv");
            got.is_some()
        });
        let d = got.expect("no udp echo");
        assert_eq!(d.from, (v4("192.0.2.2"), 7));
        assert_eq!(&buf[..d.len], &msg[..]);
    }
    // Discard answers nothing.
    b.stack
        .udp_send(SIDE1, h, (v4("192.0.2.2"), 9), b"gone")
        .expect("send");
    assert!(!b.run_until(Duration::from_millis(300), |s| s
        .udp_recv(SIDE1, h, &mut buf)
        .expect("recv")
        .is_some()));
}

#[test]
fn second_address_answers_too() {
    let mut b = Bench::new("pp-alias");
    b.stack
        .add_address(SIDE2, cidr("192.0.2.3/24"))
        .expect("alias");
    let addrs = b.stack.addresses(SIDE2).expect("addrs");
    assert!(addrs.contains(&cidr("192.0.2.2/24")) && addrs.contains(&cidr("192.0.2.3/24")));
    let p = b.stack.ping_open(SIDE1, 0x4242).expect("ping socket");
    assert!(b.ping(SIDE1, p, v4("192.0.2.3"), 1));
    // UDP echo answers from the alias it was sent to.
    let h = b.stack.udp_bind(SIDE1, 40001).expect("bind");
    b.stack
        .udp_send(SIDE1, h, (v4("192.0.2.3"), 7), b"alias")
        .expect("send");
    let mut buf = [0u8; 64];
    let mut got = None;
    b.run_until(Duration::from_secs(5), |s| {
        got = s.udp_recv(SIDE1, h, &mut buf).expect("recv");
        got.is_some()
    });
    assert_eq!(
        got,
        Some(Datagram {
            len: 5,
            from: (v4("192.0.2.3"), 7)
        })
    );
    // And TCP.
    let data = pattern(50_000, 9);
    let back = b.tcp_roundtrip((v4("192.0.2.3"), 7), &data, Duration::from_secs(30));
    assert!(back == data);
    // Removed, it stops answering.
    b.stack
        .remove_address(SIDE2, cidr("192.0.2.3/24"))
        .expect("remove");
    assert!(!b.ping(SIDE1, p, v4("192.0.2.3"), 2));
}

#[test]
fn routes_follow_their_gateway_and_table_limits_hold() {
    let mut s = NetStack::new();
    s.add_interface(SIDE1, [2, 0, 0, 0, 0, 1], 1500)
        .expect("if");
    // Gateway not on any subnet yet: kept, not installed.
    s.add_route(cidr("0.0.0.0/0"), v4("192.0.2.254"))
        .expect("route");
    assert_eq!(s.routes()[0].ifindexes, [None; 4]);
    s.add_address(SIDE1, cidr("192.0.2.1/24")).expect("addr");
    assert_eq!(s.routes()[0].ifindexes[0], Some(SIDE1));
    s.add_route(cidr("198.51.100.0/24"), v4("192.0.2.253"))
        .expect("route 2");
    // smoltcp holds two routes per interface.
    assert!(matches!(
        s.add_route(cidr("203.0.113.0/24"), v4("192.0.2.252")),
        Err(ProtoError::RouteTableFull(SIDE1))
    ));
    assert_eq!(s.routes().len(), 2);
    assert!(matches!(
        s.add_route(cidr("10.0.0.0/8"), v4("255.255.255.255")),
        Err(ProtoError::BadRoute { .. })
    ));
    s.remove_route(cidr("198.51.100.0/24"), v4("192.0.2.253"))
        .expect("remove");
    assert_eq!(s.routes().len(), 1);
    assert!(s.remove_address(SIDE1, cidr("192.0.2.9/24")).is_err());
    assert!(matches!(
        s.add_interface(SIDE1, [2, 0, 0, 0, 0, 2], 1500),
        Err(ProtoError::InterfaceExists(SIDE1))
    ));
    assert!(matches!(
        s.add_interface(9, [1, 0, 0, 0, 0, 2], 1500),
        Err(ProtoError::BadMac(_))
    ));
    // Eight addresses at most, the link-local one included.
    for i in 2..8 {
        s.add_address(SIDE1, cidr(&format!("198.51.100.{i}/24")))
            .expect("addr");
    }
    assert!(matches!(
        s.add_address(SIDE1, cidr("198.51.100.99/24")),
        Err(ProtoError::TooManyAddresses(SIDE1))
    ));
}

// ---------------------------------------------------------------------------
// Fuzzing the receive path.

/// xorshift64*: a seeded PRNG, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// An in-memory port: frames to receive are queued by the test; frames sent
/// are kept (up to a bound) for inspection, like a capture.
struct MemPort {
    pool: Pool,
    mac: [u8; 6],
    inbox: VecDeque<Mbuf>,
    sent: Vec<Vec<u8>>,
    keep_sent: usize,
    sent_count: usize,
}

impl MemPort {
    fn new(pool: &Pool, mac: [u8; 6]) -> MemPort {
        MemPort {
            pool: pool.clone(),
            mac,
            inbox: VecDeque::new(),
            sent: Vec::new(),
            keep_sent: usize::MAX,
            sent_count: 0,
        }
    }
}

impl Port for MemPort {
    fn recv(&mut self, batch: &mut PacketBatch) -> usize {
        let mut n = 0;
        while batch.room() > 0 {
            let Some(m) = self.inbox.pop_front() else {
                break;
            };
            if batch.push(m).is_err() {
                break;
            }
            n += 1;
        }
        n
    }
    fn send(&mut self, batch: &mut PacketBatch) -> usize {
        let mut n = 0;
        while let Some(m) = batch.pop_front() {
            if self.sent.len() < self.keep_sent {
                self.sent.push(m.to_vec());
            }
            self.sent_count += 1;
            n += 1;
        }
        n
    }
    fn pool(&self) -> &Pool {
        &self.pool
    }
    fn owner(&self) -> OwnerId {
        OwnerId::POOL
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn mtu(&self) -> usize {
        1500
    }
}

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// Real frames of both directions of a short session (ARP, ping over IPv4
/// and IPv6, TCP and UDP echo) between two stacks joined by memory ports:
/// the seeds the mutations start from.
fn capture_corpus(pool: &Pool) -> Vec<Vec<u8>> {
    let mut a = NetStack::new();
    let mut bst = NetStack::new();
    a.add_interface(1, MAC_A, 1500).expect("a");
    bst.add_interface(1, MAC_B, 1500).expect("b");
    a.add_address(1, cidr("192.0.2.1/24")).expect("a addr");
    bst.add_address(1, cidr("192.0.2.2/24")).expect("b addr");
    bst.serve(Service::Echo).expect("echo");
    let mut pa = MemPort::new(pool, MAC_A);
    let mut pb = MemPort::new(pool, MAC_B);
    let mut corpus = Vec::new();
    let mut pump = |a: &mut NetStack, bst: &mut NetStack, pa: &mut MemPort, pb: &mut MemPort| {
        let now = Instant::now();
        a.poll(1, pa, now);
        for f in pa.sent.drain(..) {
            corpus.push(f.clone());
            pb.inbox
                .push_back(Mbuf::from_slice(pool, OwnerId::POOL, &f).expect("buf"));
        }
        bst.poll(1, pb, now);
        for f in pb.sent.drain(..) {
            corpus.push(f.clone());
            pa.inbox
                .push_back(Mbuf::from_slice(pool, OwnerId::POOL, &f).expect("buf"));
        }
    };
    let ping = a.ping_open(1, 9).expect("ping");
    a.ping_send(1, ping, v4("192.0.2.2"), 1, b"0123456789")
        .expect("ping send");
    let ll_b = IpAddress::Ipv6(link_local(MAC_B).address());
    a.ping_send(1, ping, ll_b, 2, b"abcdef")
        .expect("ping6 send");
    let u = a.udp_bind(1, 5000).expect("udp");
    a.udp_send(1, u, (v4("192.0.2.2"), 7), b"datagram")
        .expect("udp send");
    a.udp_send(1, u, (ll_b, 7), b"datagram6")
        .expect("udp6 send");
    let t = a.tcp_connect(1, (v4("192.0.2.2"), 7)).expect("tcp");
    let t6 = a.tcp_connect(1, (ll_b, 7)).expect("tcp6");
    for i in 0..200 {
        pump(&mut a, &mut bst, &mut pa, &mut pb);
        for h in [t, t6] {
            if a.tcp_state(1, h).expect("state") == TcpState::Established && i < 100 {
                let _ = a.tcp_send(1, h, &pattern(3000, i));
            }
            let mut buf = [0u8; 8192];
            let _ = a.tcp_recv(1, h, &mut buf);
        }
        if i == 150 {
            a.tcp_close(1, t).expect("close");
        }
    }
    corpus
}

/// Recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksum of a
/// frame where its lengths allow, so mutations reach the parsers behind the
/// checksum checks.
fn fix_checksums(f: &mut [u8]) {
    fn sum(data: &[u8], mut acc: u32) -> u32 {
        for c in data.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        acc
    }
    fn fold(mut acc: u32) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }
    if f.len() < 14 {
        return;
    }
    let (eth, ip) = f.split_at_mut(14);
    match [eth[12], eth[13]] {
        [0x08, 0x00] if ip.len() >= 20 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if ihl < 20 || total < ihl || total > ip.len() {
                return;
            }
            ip[10] = 0;
            ip[11] = 0;
            let c = fold(sum(&ip[..ihl], 0));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let proto = ip[9];
            let mut pseudo = sum(&ip[12..20], u32::from(proto));
            pseudo += (total - ihl) as u32;
            let l4 = &mut ip[ihl..total];
            let off = match proto {
                6 => 16,
                17 => 6,
                1 => {
                    pseudo = 0;
                    2
                }
                _ => return,
            };
            if l4.len() < off + 2 {
                return;
            }
            l4[off] = 0;
            l4[off + 1] = 0;
            let c = fold(sum(l4, pseudo));
            l4[off..off + 2].copy_from_slice(&c.to_be_bytes());
        }
        [0x86, 0xdd] if ip.len() >= 40 => {
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if 40 + plen > ip.len() {
                return;
            }
            let next = ip[6];
            let pseudo = sum(&ip[8..40], u32::from(next) + plen as u32);
            let off = match next {
                6 => 16,
                17 => 6,
                58 => 2,
                _ => return,
            };
            let l4 = &mut ip[40..40 + plen];
            if l4.len() < off + 2 {
                return;
            }
            l4[off] = 0;
            l4[off + 1] = 0;
            let c = fold(sum(l4, pseudo));
            l4[off..off + 2].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}

/// One fuzz frame: random bytes, or a captured frame mutated.
fn fuzz_frame(rng: &mut Rng, corpus: &[Vec<u8>], target: [u8; 6]) -> Vec<u8> {
    if rng.chance(10) {
        let len = rng.below(1600);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut f = corpus[rng.below(corpus.len())].clone();
    if rng.chance(80) && f.len() >= 6 {
        f[..6].copy_from_slice(&target);
    }
    // Header boundaries: Ethernet, IPv4, IPv6, and their transport headers.
    const CUTS: [usize; 10] = [0, 6, 13, 14, 20, 33, 34, 42, 53, 54];
    match rng.below(6) {
        // Flip a few bytes, mostly in the headers.
        0 | 1 => {
            for _ in 0..1 + rng.below(4) {
                let span = if rng.chance(80) {
                    80.min(f.len())
                } else {
                    f.len()
                };
                if span > 0 {
                    let i = rng.below(span);
                    f[i] ^= 1 << rng.below(8);
                    if rng.chance(30) {
                        f[i] = rng.next() as u8;
                    }
                }
            }
        }
        // Truncate, often right at or near a header boundary.
        2 => {
            let cut = if rng.chance(50) {
                CUTS[rng.below(CUTS.len())] + rng.below(3)
            } else {
                rng.below(f.len() + 1)
            };
            f.truncate(cut);
        }
        // Lie about a length field: IPv4 total length / IHL, IPv6 payload
        // length, UDP length, TCP data offset.
        3 => {
            let fields = [16usize, 14, 18, 38, 46, 54, 26];
            let i = fields[rng.below(fields.len())];
            if i + 1 < f.len() {
                if i == 14 || i == 46 {
                    f[i] = (f[i] & 0xf0) | (rng.next() as u8 & 0x0f);
                } else {
                    let v = rng.next() as u16;
                    f[i..i + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
        // Append garbage; now and then far beyond the MTU (a chain).
        4 => {
            let extra = if rng.chance(10) {
                2000 + rng.below(8000)
            } else {
                rng.below(200)
            };
            for _ in 0..extra {
                f.push(rng.next() as u8);
            }
        }
        // Random TCP flags / options area, IP options, ports.
        _ => {
            for _ in 0..1 + rng.below(8) {
                if f.len() > 34 {
                    let i = 34 + rng.below(f.len().min(120) - 34);
                    f[i] = rng.next() as u8;
                }
            }
        }
    }
    if rng.chance(60) {
        fix_checksums(&mut f);
    }
    f
}

#[test]
fn fuzzed_frames_never_panic_and_are_counted() {
    let pool = pool("pp-fuzz", 4096);
    let corpus = capture_corpus(&pool);
    assert!(corpus.len() > 20, "corpus of {} frames", corpus.len());
    let mut s = NetStack::new();
    s.add_interface(1, MAC_B, 1500).expect("if");
    s.add_address(1, cidr("192.0.2.2/24")).expect("addr");
    s.add_address(1, cidr("198.51.100.2/24")).expect("addr 2");
    s.add_route(cidr("0.0.0.0/0"), v4("192.0.2.254"))
        .expect("route");
    s.serve(Service::Echo).expect("echo");
    s.serve(Service::Discard).expect("discard");
    s.enable_dhcp(1).expect("dhcp");
    let mut port = MemPort::new(&pool, MAC_B);
    port.keep_sent = 0;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    const FRAMES: usize = 100_000;
    let mut built = 0;
    let mut no_buffer = 0;
    while built < FRAMES {
        for _ in 0..64.min(FRAMES - built) {
            let f = fuzz_frame(&mut rng, &corpus, MAC_B);
            built += 1;
            // Chained (over one data room) frames come from from_slice too.
            // Frames over one data room arrive as chains, like jumbo frames.
            match Mbuf::from_slice(&pool, OwnerId::POOL, &f) {
                Some(m) => port.inbox.push_back(m),
                None => no_buffer += 1,
            }
        }
        s.poll(1, &mut port, Instant::now());
    }
    // Drain what is left and let timers run once.
    for _ in 0..4 {
        s.poll(1, &mut port, Instant::now());
    }
    assert!(port.inbox.is_empty());
    assert_eq!(no_buffer, 0, "pool ran dry building frames");
    let c = s.counters(1);
    eprintln!("fuzz counters: {c:?}, replies sent: {}", port.sent_count);
    let refused =
        c.rx_runt + c.rx_malformed + c.rx_not_for_us + c.rx_unknown_ethertype + c.rx_oversize;
    assert_eq!(
        c.rx_frames + refused,
        FRAMES as u64,
        "every frame accounted for"
    );
    assert!(c.rx_runt > 0 && c.rx_malformed > 0 && c.rx_not_for_us > 0);
    assert!(c.rx_unknown_ethertype > 0 && c.rx_oversize > 0);
    assert!(c.rx_frames > 10_000, "mutations reached smoltcp: {c:?}");
    assert!(port.sent_count > 0, "the stack answered some of them");
    // Every buffer is back: none leaked on any path.
    drop(port);
    drop(s);
    pool.flush_thread_cache();
    assert_eq!(pool.available(), pool.capacity());
}

/// Moves frames between two stacks on memory ports until `done`.
fn pump_until(
    pool: &Pool,
    a: &mut NetStack,
    b: &mut NetStack,
    pa: &mut MemPort,
    pb: &mut MemPort,
    limit: Duration,
    mut done: impl FnMut(&mut NetStack) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        let now = Instant::now();
        a.poll(1, pa, now);
        for f in pa.sent.drain(..) {
            pb.inbox
                .push_back(Mbuf::from_slice(pool, OwnerId::POOL, &f).expect("buf"));
        }
        b.poll(1, pb, now);
        for f in pb.sent.drain(..) {
            pa.inbox
                .push_back(Mbuf::from_slice(pool, OwnerId::POOL, &f).expect("buf"));
        }
        if done(a) {
            return true;
        }
    }
    false
}

#[test]
fn jumbo_frames_travel_as_chains() {
    // MTU 9000: TCP segments over one data room are built in the transmit
    // scratch buffer and chained, and received chains are copied out.
    let pool = pool("pp-jumbo", 4096);
    let mut a = NetStack::new();
    let mut b = NetStack::new();
    a.add_interface(1, MAC_A, 9000).expect("a");
    b.add_interface(1, MAC_B, 9000).expect("b");
    a.add_address(1, cidr("192.0.2.1/24")).expect("a addr");
    b.add_address(1, cidr("192.0.2.2/24")).expect("b addr");
    b.serve(Service::Echo).expect("echo");
    let mut pa = MemPort::new(&pool, MAC_A);
    let mut pb = MemPort::new(&pool, MAC_B);
    let h = a.tcp_connect(1, (v4("192.0.2.2"), 7)).expect("connect");
    let data = pattern(400_000, 5);
    let (mut sent, mut back) = (0, Vec::new());
    let mut largest = 0;
    let mut buf = vec![0u8; 65536];
    let ok = pump_until(
        &pool,
        &mut a,
        &mut b,
        &mut pa,
        &mut pb,
        Duration::from_secs(30),
        |a| {
            if a.tcp_state(1, h).expect("state") == TcpState::Established && sent < data.len() {
                sent += a.tcp_send(1, h, &data[sent..]).expect("send");
            }
            if let Ok(n) = a.tcp_recv(1, h, &mut buf) {
                back.extend_from_slice(&buf[..n]);
            }
            back.len() == data.len()
        },
    );
    assert!(ok, "sent {sent}, got {}", back.len());
    assert!(back == data);
    let cb = b.counters(1);
    largest = largest.max(cb.rx_bytes / cb.rx_frames.max(1));
    assert!(
        largest > 2048,
        "average frame {largest} bytes: no chains moved"
    );
    assert_eq!(cb.rx_oversize + cb.rx_malformed, 0);
}

#[test]
fn ipv6_datagram_over_the_mtu_is_dropped_and_counted() {
    // smoltcp does not fragment IPv6 and does not check its MTU either: the
    // adapter must give it room to build the frame, then drop it.
    let pool = pool("pp-big6", 1024);
    let mut a = NetStack::new();
    let mut b = NetStack::new();
    a.add_interface(1, MAC_A, 1500).expect("a");
    b.add_interface(1, MAC_B, 1500).expect("b");
    b.serve(Service::Echo).expect("echo");
    let mut pa = MemPort::new(&pool, MAC_A);
    let mut pb = MemPort::new(&pool, MAC_B);
    let ll_b = IpAddress::Ipv6(link_local(MAC_B).address());
    let u = a.udp_bind(1, 5001).expect("udp");
    let mut buf = [0u8; 8192];
    // A small datagram first resolves the neighbour and is echoed.
    a.udp_send(1, u, (ll_b, 7), b"small").expect("send");
    assert!(pump_until(
        &pool,
        &mut a,
        &mut b,
        &mut pa,
        &mut pb,
        Duration::from_secs(5),
        |a| { a.udp_recv(1, u, &mut buf).expect("recv").is_some() }
    ));
    a.udp_send(1, u, (ll_b, 7), &[7u8; 4000]).expect("send big");
    pump_until(
        &pool,
        &mut a,
        &mut b,
        &mut pa,
        &mut pb,
        Duration::from_millis(200),
        |_| false,
    );
    assert_eq!(a.counters(1).tx_oversize, 1);
    assert_eq!(
        b.counters(1).rx_bytes,
        a.counters(1).tx_bytes,
        "nothing else lost"
    );
}

#[test]
fn stack_still_works_after_fuzzing() {
    // The same stack that took garbage answers a clean ping afterwards.
    let pool = pool("pp-fuzz2", 2048);
    let corpus = capture_corpus(&pool);
    let mut a = NetStack::new();
    let mut bst = NetStack::new();
    a.add_interface(1, MAC_A, 1500).expect("a");
    bst.add_interface(1, MAC_B, 1500).expect("b");
    a.add_address(1, cidr("192.0.2.1/24")).expect("a addr");
    bst.add_address(1, cidr("192.0.2.2/24")).expect("b addr");
    bst.serve(Service::Echo).expect("echo");
    let mut pa = MemPort::new(&pool, MAC_A);
    let mut pb = MemPort::new(&pool, MAC_B);
    pb.keep_sent = 0;
    let mut rng = Rng(42);
    for _ in 0..100 {
        for _ in 0..100 {
            let f = fuzz_frame(&mut rng, &corpus, MAC_B);
            if let Some(m) = Mbuf::from_slice(&pool, OwnerId::POOL, &f) {
                pb.inbox.push_back(m);
            }
        }
        bst.poll(1, &mut pb, Instant::now());
    }
    pb.keep_sent = usize::MAX;
    pb.sent.clear();
    let h = a.ping_open(1, 77).expect("ping");
    a.ping_send(1, h, v4("192.0.2.2"), 5, b"after")
        .expect("send");
    let end = Instant::now() + Duration::from_secs(5);
    let mut reply = None;
    while reply.is_none() && Instant::now() < end {
        let now = Instant::now();
        a.poll(1, &mut pa, now);
        for f in pa.sent.drain(..) {
            pb.inbox
                .push_back(Mbuf::from_slice(&pool, OwnerId::POOL, &f).expect("buf"));
        }
        bst.poll(1, &mut pb, now);
        for f in pb.sent.drain(..) {
            pa.inbox
                .push_back(Mbuf::from_slice(&pool, OwnerId::POOL, &f).expect("buf"));
        }
        reply = a.ping_recv(1, h).expect("recv");
    }
    let r = reply.expect("no reply after fuzzing");
    assert_eq!((r.from, r.seq, r.len), (v4("192.0.2.2"), 5, 5));
}

// ---------------------------------------------------------------------------
// DHCP: a minimal server written against smoltcp's wire types.

mod dhcp_server {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
        IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
    };

    pub const SERVER: Ipv4Address = Ipv4Address::new(192, 0, 2, 254);
    pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

    /// Counts of what the server saw.
    #[derive(Default, Debug)]
    pub struct Server {
        pub discovers: u32,
        pub requests: u32,
        /// Address handed out.
        pub lease: Option<Ipv4Address>,
        pub next_host: u8,
    }

    impl Server {
        /// Answers a client frame if it is a DHCP DISCOVER or REQUEST.
        pub fn answer(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
            let eth = EthernetFrame::new_checked(frame).ok()?;
            if eth.ethertype() != EthernetProtocol::Ipv4 {
                return None;
            }
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Udp {
                return None;
            }
            let udp = UdpPacket::new_checked(ip.payload()).ok()?;
            if udp.dst_port() != 67 {
                return None;
            }
            let pkt = DhcpPacket::new_checked(udp.payload()).ok()?;
            let req = DhcpRepr::parse(&pkt).ok()?;
            let kind = match req.message_type {
                DhcpMessageType::Discover => {
                    self.discovers += 1;
                    self.next_host += 1;
                    self.lease = Some(Ipv4Address::new(192, 0, 2, 100 + self.next_host));
                    DhcpMessageType::Offer
                }
                DhcpMessageType::Request => {
                    self.requests += 1;
                    DhcpMessageType::Ack
                }
                _ => return None,
            };
            let reply = DhcpRepr {
                message_type: kind,
                transaction_id: req.transaction_id,
                secs: 0,
                client_hardware_address: req.client_hardware_address,
                client_ip: Ipv4Address::UNSPECIFIED,
                your_ip: self.lease?,
                server_ip: SERVER,
                router: Some(SERVER),
                subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
                relay_agent_ip: Ipv4Address::UNSPECIFIED,
                broadcast: false,
                requested_ip: None,
                client_identifier: None,
                server_identifier: Some(SERVER),
                parameter_request_list: None,
                dns_servers: None,
                max_size: None,
                lease_duration: Some(3600),
                renew_duration: None,
                rebind_duration: None,
                additional_options: &[],
            };
            let dst = Ipv4Address::BROADCAST;
            let udp_repr = UdpRepr {
                src_port: 67,
                dst_port: 68,
            };
            let ip_repr = Ipv4Repr {
                src_addr: SERVER,
                dst_addr: dst,
                next_header: IpProtocol::Udp,
                payload_len: 8 + reply.buffer_len(),
                hop_limit: 64,
            };
            let mut out = vec![0u8; 14 + 20 + ip_repr.payload_len];
            let mut eth = EthernetFrame::new_unchecked(&mut out[..]);
            eth.set_dst_addr(EthernetAddress::BROADCAST);
            eth.set_src_addr(EthernetAddress(SERVER_MAC));
            eth.set_ethertype(EthernetProtocol::Ipv4);
            let caps = ChecksumCapabilities::default();
            ip_repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[14..34]), &caps);
            udp_repr.emit(
                &mut UdpPacket::new_unchecked(&mut out[34..]),
                &IpAddress::Ipv4(SERVER),
                &IpAddress::Ipv4(dst),
                reply.buffer_len(),
                |buf| {
                    let _ = reply.emit(&mut DhcpPacket::new_unchecked(buf));
                },
                &caps,
            );
            Some(out)
        }
    }
}

#[test]
fn dhcp_lease_is_applied_and_renegotiated_after_link_flap() {
    let pool = pool("pp-dhcp", 1024);
    let mut s = NetStack::new();
    s.add_interface(1, MAC_A, 1500).expect("if");
    s.enable_dhcp(1).expect("dhcp");
    let mut port = MemPort::new(&pool, MAC_A);
    let mut server = dhcp_server::Server::default();
    let run = |s: &mut NetStack, port: &mut MemPort, server: &mut dhcp_server::Server, want: u8| {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            s.poll(1, port, Instant::now());
            for f in port.sent.drain(..) {
                if let Some(reply) = server.answer(&f) {
                    port.inbox
                        .push_back(Mbuf::from_slice(&pool, OwnerId::POOL, &reply).expect("buf"));
                }
            }
            if s.dhcp_lease(1)
                .is_some_and(|l| l.address.address().octets()[3] == want)
            {
                return;
            }
        }
        panic!("no lease .{want}: {server:?}");
    };
    run(&mut s, &mut port, &mut server, 101);
    let lease = s.dhcp_lease(1).expect("lease");
    assert_eq!(lease.address, "192.0.2.101/24".parse().expect("cidr"));
    assert_eq!(lease.router, Some(dhcp_server::SERVER));
    assert!(s
        .addresses(1)
        .expect("addrs")
        .contains(&cidr("192.0.2.101/24")));
    let routes = s.routes();
    assert!(routes.iter().any(|r| r.dhcp
        && r.gw == IpAddress::Ipv4(dhcp_server::SERVER)
        && r.dest == cidr("0.0.0.0/0")));
    assert_eq!((server.discovers, server.requests), (1, 1));

    // Link down and up: the lease is dropped and negotiated again (this
    // server hands out a new address for every DISCOVER).
    s.link_changed(1, false);
    assert!(!s.link_up(1));
    s.link_changed(1, true);
    assert!(s.dhcp_lease(1).is_none());
    assert!(!s
        .addresses(1)
        .expect("addrs")
        .contains(&cidr("192.0.2.101/24")));
    run(&mut s, &mut port, &mut server, 102);
    assert_eq!(server.discovers, 2);
    assert!(s
        .addresses(1)
        .expect("addrs")
        .contains(&cidr("192.0.2.102/24")));
    assert_eq!(s.routes().iter().filter(|r| r.dhcp).count(), 1);
}
