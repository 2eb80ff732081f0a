//! Proves the e1000 driver on two NICs that share a wire (the lab's QEMU
//! hub): the device under test (DUT) and a peer, both driven by this driver
//! through the driver contract, opened through the VFIO harness.
//!
//! Checks, in order: MAC = the lab's `52:54:00:12:34:<slot-1>`, link up;
//! frames of 60..1514 bytes DUT -> peer and back, in order and content
//! verified, 8x the ring size each way (ring wrap); multicast filter (an
//! unjoined group is dropped, a joined one received, all-multi); promisc;
//! jumbo frames (MTU 9000, mbuf chains); interrupt wake-up (arm, sleep in
//! poll(2) on the wait fd, a frame wakes it); counters against what was
//! sent and received; frames per second each way; detach/re-attach 3 times
//! with the pool back to full.
//!
//! Usage (as root, NICs bound to vfio-pci): `e1000_loop DUT_BDF PEER_BDF`.
//! In the lab: build it statically and pass it with `--bin` (see
//! docs/native-drivers.md, section e1000).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pktkit_drv_e1000::FACTORY;
use pktkit_harness::VfioContainer;
use pktkit_native::device::{DeviceError, PciAddress, PciDevice, PciOpener};
use pktkit_native::pool::HugePages;
use pktkit_native::{
    AttachArgs, Control, Driver, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig, RxQueue, TxQueue,
};

/// Local experimental EtherType (IEEE 802 1), so stray frames are told apart.
const ETHERTYPE: u16 = 0x88B5;
/// How long QEMU's e1000 ignores the wire after an RCTL write, plus margin.
const RCTL_SETTLE: Duration = Duration::from_millis(1200);
/// The ring size used (the driver's default).
const RING: usize = 256;

struct Opener(Arc<VfioContainer>);

impl PciOpener for Opener {
    fn open(&self, addr: PciAddress) -> Result<Box<dyn PciDevice>, DeviceError> {
        match self.0.open_device(addr) {
            Ok(d) => Ok(Box::new(d)),
            Err(e) => Err(DeviceError::Unsupported(e.to_string())),
        }
    }
}

struct Nic {
    name: String,
    mac: [u8; 6],
    drv: Box<dyn Driver>,
    rx: Box<dyn RxQueue>,
    tx: Box<dyn TxQueue>,
    owner: OwnerId,
}

impl Nic {
    fn attach(
        name: &str,
        bdf: PciAddress,
        pool: &Pool,
        owner: OwnerId,
        opener: &Arc<dyn PciOpener>,
    ) -> Result<Nic, String> {
        let mut options = BTreeMap::new();
        options.insert("pci".to_owned(), bdf.to_string());
        let args = AttachArgs {
            options,
            pool: pool.clone(),
            owners: vec![owner],
            ifnames: vec![name.to_owned()],
            pci: Some(opener.clone()),
        };
        FACTORY
            .check_options(&args.options)
            .map_err(|e| e.to_string())?;
        let mut drv = (FACTORY.create)(&args)
            .map_err(|e| format!("{name}: attach {bdf}: {e}"))?
            .pop()
            .ok_or("no device")?;
        let mut q = drv.start().map_err(|e| format!("{name}: start: {e}"))?;
        let (rx, tx) = match (q.rx.pop(), q.tx.pop()) {
            (Some(rx), Some(tx)) => (rx, tx),
            _ => return Err(format!("{name}: start gave no queues")),
        };
        Ok(Nic {
            name: name.to_owned(),
            mac: drv.mac(),
            drv,
            rx,
            tx,
            owner,
        })
    }

    fn detach(self) {
        let Nic {
            mut drv, rx, tx, ..
        } = self;
        drv.stop(pktkit_native::Queues {
            rx: vec![rx],
            tx: vec![tx],
        });
        drop(drv);
    }

    fn extra(&self, key: &str) -> u64 {
        self.drv
            .counters()
            .extra
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, v)| *v)
    }
}

fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A test frame: dst, src, EtherType, sequence number, then a pattern.
fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    for i in f.len()..len {
        f.push((seq as usize).wrapping_mul(31).wrapping_add(i) as u8);
    }
    f
}

/// The sequence number of one of our frames, `None` for anything else.
fn seq_of(m: &Mbuf) -> Option<u32> {
    let d = m.data();
    if d.len() < 18 || d[12..14] != ETHERTYPE.to_be_bytes() {
        return None;
    }
    Some(u32::from_be_bytes([d[14], d[15], d[16], d[17]]))
}

/// Sends `sizes.len()` frames from `a` to `dst`, `window` at most in flight,
/// and checks that `b` receives each in order with its content.
/// Returns (frames received, other frames seen, seconds).
fn transfer(
    pool: &Pool,
    a: &mut Nic,
    b: &mut Nic,
    dst: [u8; 6],
    sizes: &[usize],
    window: usize,
) -> Result<(usize, usize, f64), String> {
    let start = Instant::now();
    let before = (stats(a), stats(b));
    let mut last_progress = Instant::now();
    let (mut sent, mut got, mut other) = (0usize, 0usize, 0usize);
    let mut out = PacketBatch::new();
    let mut inb = PacketBatch::new();
    while got < sizes.len() {
        while sent < sizes.len() && sent - got < window && out.room() > 0 {
            let f = frame(dst, a.mac, sent as u32, sizes[sent]);
            let m = Mbuf::from_slice(pool, a.owner, &f).ok_or("pool exhausted")?;
            if out.push(m).is_err() {
                break;
            }
            sent += 1;
        }
        if !out.is_empty() {
            a.tx.tx_burst(&mut out);
        }
        b.rx.rx_burst(&mut inb);
        while let Some(m) = inb.pop_front() {
            let Some(seq) = seq_of(&m) else {
                other += 1;
                continue;
            };
            if seq as usize != got {
                // Let the wire drain, then show what each side counted
                // during this transfer.
                std::thread::sleep(Duration::from_millis(100));
                a.tx.reclaim();
                return Err(format!(
                    "{} -> {}: expected frame {got}, got {seq} (lost or reordered); {}; \
                     during this transfer: {} [{}], {} [{}]",
                    a.name,
                    b.name,
                    diagnose(a, b),
                    a.name,
                    delta(&before.0, &stats(a)),
                    b.name,
                    delta(&before.1, &stats(b))
                ));
            }
            let want = frame(dst, a.mac, seq, sizes[got]);
            let have = m.to_vec();
            if have != want {
                let at = have.iter().zip(&want).position(|(x, y)| x != y);
                return Err(format!(
                    "{} -> {}: frame {seq} differs: {} bytes vs {} sent, first difference at {at:?}",
                    a.name,
                    b.name,
                    have.len(),
                    want.len()
                ));
            }
            got += 1;
            last_progress = Instant::now();
        }
        a.tx.reclaim();
        if last_progress.elapsed() > Duration::from_secs(3) {
            return Err(format!(
                "{} -> {}: stalled at {got}/{} received ({sent} sent); {}",
                a.name,
                b.name,
                sizes.len(),
                diagnose(a, b)
            ));
        }
    }
    // Anything the tx ring still holds belongs to frames already received.
    a.tx.reclaim();
    Ok((got, other, start.elapsed().as_secs_f64()))
}

/// The device statistics of `n`, by name.
fn stats(n: &Nic) -> Vec<(String, u64)> {
    n.drv.counters().extra
}

/// The statistics that changed from `before` to `after`.
fn delta(before: &[(String, u64)], after: &[(String, u64)]) -> String {
    after
        .iter()
        .filter_map(|(k, v)| {
            let was = before.iter().find(|(b, _)| b == k).map_or(0, |(_, w)| *w);
            (*v != was).then(|| format!("{k}+{}", v - was))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The counters that tell where a frame was lost.
fn diagnose(a: &Nic, b: &Nic) -> String {
    let show = |n: &Nic| {
        n.drv
            .counters()
            .extra
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{} tx {:?} [{}]; {} rx {:?} [{}]",
        a.name,
        a.tx.counters(),
        show(a),
        b.name,
        b.rx.counters(),
        show(b)
    )
}

/// Frames of ours `b` receives within `wait`, addressed anywhere.
fn receive_for(b: &mut Nic, wait: Duration) -> usize {
    let end = Instant::now() + wait;
    let mut n = 0;
    let mut inb = PacketBatch::new();
    while Instant::now() < end {
        b.rx.rx_burst(&mut inb);
        while let Some(m) = inb.pop_front() {
            if seq_of(&m).is_some() {
                n += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    n
}

/// Sends `n` minimal frames from `a` to `dst`.
fn send_to(pool: &Pool, a: &mut Nic, dst: [u8; 6], n: usize) -> Result<(), String> {
    let mut out = PacketBatch::new();
    for i in 0..n {
        let f = frame(dst, a.mac, 0x8000_0000 + i as u32, 60);
        let m = Mbuf::from_slice(pool, a.owner, &f).ok_or("pool exhausted")?;
        let _ = out.push(m);
    }
    let end = Instant::now() + Duration::from_secs(1);
    while !out.is_empty() && Instant::now() < end {
        a.tx.tx_burst(&mut out);
        a.tx.reclaim();
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: transmit ring stayed full", a.name))
    }
}

fn check(ok: bool, what: String) -> Result<(), String> {
    println!("e1000_loop: {} {what}", if ok { "PASS" } else { "FAIL" });
    if ok {
        Ok(())
    } else {
        Err(what)
    }
}

fn wait_link(n: &mut Nic) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if n.drv.link().up {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn poll_fd(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

fn sizes_60_1514(n: usize) -> Vec<usize> {
    (0..n).map(|i| 60 + (i * 97) % (1514 - 60 + 1)).collect()
}

fn run(dut_bdf: PciAddress, peer_bdf: PciAddress) -> Result<(), String> {
    let pool = Pool::new(&PoolConfig {
        name: "e1000-loop".into(),
        buffers: 4096,
        hugepages: HugePages::Auto,
    })
    .map_err(|e| e.to_string())?;
    let container = VfioContainer::open().map_err(|e| e.to_string())?;
    container.map_pool(&pool).map_err(|e| e.to_string())?;
    let opener: Arc<dyn PciOpener> = Arc::new(Opener(container));
    let own_a = pool.register_owner("wm0").map_err(|e| e.to_string())?;
    let own_b = pool.register_owner("wm1").map_err(|e| e.to_string())?;
    let capacity = pool.capacity();

    let mut a = Nic::attach("wm0", dut_bdf, &pool, own_a, &opener)?;
    let mut b = Nic::attach("wm1", peer_bdf, &pool, own_b, &opener)?;
    for (n, bdf) in [(&a, dut_bdf), (&b, peer_bdf)] {
        let want = [0x52, 0x54, 0x00, 0x12, 0x34, bdf.device - 1];
        check(
            n.mac == want,
            format!(
                "{} ({bdf}) MAC {} = lab's {}",
                n.name,
                fmt_mac(&n.mac),
                fmt_mac(&want)
            ),
        )?;
        println!(
            "e1000_loop: {} {}",
            n.name,
            n.drv
                .describe()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let (la, lb) = (wait_link(&mut a), wait_link(&mut b));
    check(
        la && lb,
        format!("link up ({:?} / {:?})", a.drv.link(), b.drv.link()),
    )?;
    std::thread::sleep(RCTL_SETTLE);

    // Frames of 60..1514 bytes both ways, 8x the ring (wrap), in order.
    let count = 8 * RING;
    let sizes = sizes_60_1514(count);
    let (bm, am) = (b.mac, a.mac);
    let (n1, o1, _) = transfer(&pool, &mut a, &mut b, bm, &sizes, 64)?;
    check(
        n1 == count,
        format!(
            "wm0 -> wm1: {n1} frames of 60..1514 bytes in order, content verified ({o1} other)"
        ),
    )?;
    let (n2, o2, _) = transfer(&pool, &mut b, &mut a, am, &sizes, 64)?;
    check(
        n2 == count,
        format!(
            "wm1 -> wm0: {n2} frames of 60..1514 bytes in order, content verified ({o2} other)"
        ),
    )?;
    let mut dut_sent = n1;
    let mut dut_received = n2;

    // Multicast filter on the DUT.
    let group_a = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03];
    let group_b = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x04];
    send_to(&pool, &mut b, group_a, 4)?;
    let r = receive_for(&mut a, Duration::from_millis(300));
    check(
        r == 0,
        format!("multicast: unjoined group dropped ({r} received)"),
    )?;
    a.drv
        .control(&Control::SetMulticast(vec![group_a]))
        .map_err(|e| e.to_string())?;
    send_to(&pool, &mut b, group_a, 4)?;
    send_to(&pool, &mut b, group_b, 4)?;
    let r = receive_for(&mut a, Duration::from_millis(300));
    check(
        r == 4,
        format!("multicast: joined group received, other group dropped ({r} of 4)"),
    )?;
    dut_received += r;
    a.drv
        .control(&Control::SetAllMulti(true))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(RCTL_SETTLE);
    send_to(&pool, &mut b, group_b, 4)?;
    let r = receive_for(&mut a, Duration::from_millis(300));
    check(
        r == 4,
        format!("all-multicast: unjoined group received ({r} of 4)"),
    )?;
    dut_received += r;
    a.drv
        .control(&Control::SetAllMulti(false))
        .map_err(|e| e.to_string())?;
    a.drv
        .control(&Control::SetMulticast(Vec::new()))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(RCTL_SETTLE);

    // Promiscuous mode.
    let stranger = [0x52, 0x54, 0x00, 0x99, 0x99, 0x99];
    send_to(&pool, &mut b, stranger, 4)?;
    let r = receive_for(&mut a, Duration::from_millis(300));
    check(
        r == 0,
        format!("promisc off: frame for another station dropped ({r} received)"),
    )?;
    a.drv
        .control(&Control::SetPromisc(true))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(RCTL_SETTLE);
    send_to(&pool, &mut b, stranger, 4)?;
    let r = receive_for(&mut a, Duration::from_millis(300));
    check(
        r == 4,
        format!("promisc on: frame for another station received ({r} of 4)"),
    )?;
    dut_received += r;
    a.drv
        .control(&Control::SetPromisc(false))
        .map_err(|e| e.to_string())?;

    // Jumbo frames: MTU 9000 on both, frames up to 9014 bytes, chains.
    for n in [&mut a, &mut b] {
        n.drv
            .control(&Control::SetMtu(9000))
            .map_err(|e| format!("{}: MTU 9000: {e}", n.name))?;
    }
    std::thread::sleep(RCTL_SETTLE);
    let jumbo: Vec<usize> = (0..64)
        .map(|i| 1515 + (i * 523) % (9014 - 1515 + 1))
        .chain([9014])
        .collect();
    let (j1, _, _) = transfer(&pool, &mut a, &mut b, bm, &jumbo, 16)?;
    let (j2, _, _) = transfer(&pool, &mut b, &mut a, am, &jumbo, 16)?;
    check(
        j1 == jumbo.len() && j2 == jumbo.len(),
        format!("jumbo: {j1} + {j2} frames of 1515..9014 bytes both ways, content verified"),
    )?;
    dut_sent += j1;
    dut_received += j2;
    for n in [&mut a, &mut b] {
        n.drv
            .control(&Control::SetMtu(1500))
            .map_err(|e| e.to_string())?;
    }
    std::thread::sleep(RCTL_SETTLE);

    // Interrupt wake-up: arm, sleep on the wait fd, a frame wakes it.
    let fd = a.rx.wait_fd().ok_or("no wait fd")?;
    let irqs_before = a.rx.counters().interrupts;
    let armed = a.rx.arm();
    let quiet = !poll_fd(fd, 300);
    check(
        armed && quiet,
        format!("interrupt: armed ({armed}), no wake-up while idle ({quiet})"),
    )?;
    let t0 = Instant::now();
    send_to(&pool, &mut b, am, 1)?;
    let woke = poll_fd(fd, 3000);
    let latency = t0.elapsed();
    a.rx.disarm();
    let r = receive_for(&mut a, Duration::from_millis(50));
    dut_received += r;
    let irqs = a.rx.counters().interrupts - irqs_before;
    check(
        woke && r == 1 && irqs == 1,
        format!(
            "interrupt: woke from poll() in {:.1} ms, {r} frame, {irqs} interrupt counted",
            latency.as_secs_f64() * 1e3
        ),
    )?;

    // Frames per second (60-byte frames), each way.
    let blast = vec![60usize; 20_000];
    let (f1, _, t1) = transfer(&pool, &mut a, &mut b, bm, &blast, 2 * RING / 3)?;
    let (f2, _, t2) = transfer(&pool, &mut b, &mut a, am, &blast, 2 * RING / 3)?;
    dut_sent += f1;
    dut_received += f2;
    println!(
        "e1000_loop: FPS wm0 -> wm1: {:.0} frames/s ({f1} in {t1:.2} s); wm1 -> wm0: {:.0} frames/s ({f2} in {t2:.2} s)",
        f1 as f64 / t1,
        f2 as f64 / t2
    );

    // Counters: queue counters and the device's statistics registers.
    let (rxc, txc) = (a.rx.counters(), a.tx.counters());
    let (gprc, gptc) = (a.extra("gprc"), a.extra("gptc"));
    check(
        txc.packets == dut_sent as u64
            && rxc.packets == dut_received as u64
            && gptc == dut_sent as u64
            && gprc == dut_received as u64
            && rxc.errors == 0
            && txc.errors == 0,
        format!(
            "counters: sent {dut_sent} (queue {} GPTC {gptc}), received {dut_received} (queue {} GPRC {gprc}), errors {}/{}, mc {}",
            txc.packets, rxc.packets, rxc.errors, txc.errors, rxc.multicast
        ),
    )?;
    let c = a.drv.counters();
    println!(
        "e1000_loop: wm0 counters: {}",
        c.extra
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    // Detach and re-attach; the pool must come back full every time.
    a.detach();
    b.detach();
    for round in 1..=3 {
        let (ha, hb) = (pool.held_by(own_a), pool.held_by(own_b));
        check(
            ha == 0 && hb == 0 && pool.available() == capacity,
            format!(
                "detach {round}: buffers held {ha}/{hb}, pool {}/{capacity}",
                pool.available()
            ),
        )?;
        let mut a = Nic::attach("wm0", dut_bdf, &pool, own_a, &opener)?;
        let mut b = Nic::attach("wm1", peer_bdf, &pool, own_b, &opener)?;
        std::thread::sleep(RCTL_SETTLE);
        let s = sizes_60_1514(2 * RING);
        let (am, bm) = (a.mac, b.mac);
        let (x, _, _) = transfer(&pool, &mut a, &mut b, bm, &s, 64)?;
        let (y, _, _) = transfer(&pool, &mut b, &mut a, am, &s, 64)?;
        check(
            x == s.len() && y == s.len(),
            format!("re-attach {round}: {x} + {y} frames exchanged"),
        )?;
        a.detach();
        b.detach();
    }
    let (ha, hb) = (pool.held_by(own_a), pool.held_by(own_b));
    check(
        ha == 0 && hb == 0 && pool.available() == capacity,
        format!(
            "final detach: buffers held {ha}/{hb}, pool {}/{capacity}",
            pool.available()
        ),
    )?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed: Result<Vec<PciAddress>, String> = args.iter().map(|a| a.parse()).collect();
    let (dut, peer) = match parsed.as_deref() {
        Ok([d, p]) => (*d, *p),
        Ok(_) => {
            eprintln!("usage: e1000_loop DUT_BDF PEER_BDF");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("e1000_loop: {e}");
            return ExitCode::from(2);
        }
    };
    match run(dut, peer) {
        Ok(()) => {
            println!("e1000_loop: {dut} <-> {peer}: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e1000_loop: {dut} <-> {peer}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
