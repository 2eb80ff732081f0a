//! Two virtio-net NICs on one QEMU hub, both driven by this driver through
//! the VFIO harness, exchanging frames: the lab's end-to-end proof.
//!
//! Checks, each printed as `virtio_loop: check NAME ok|FAIL ...`: attach and
//! MAC (QEMU's `mac=`), link up, frames of 60..1514 bytes both ways with the
//! content and order verified over at least 4x the ring size (ring wrap),
//! multicast filter (an unjoined group dropped, received after joining),
//! promiscuous mode, counters, interrupt wake-up (arm, sleep in poll() on the
//! wait fd until a frame arrives; no wake-up when idle), a frames-per-second
//! figure, function reset (stop + reset + start: traffic and the multicast
//! filter survive it), DMA fault injection (receive buffers pointed at an
//! unmapped IOVA: a DMAR fault in the kernel log, no frame handed up, the
//! driver's counters say what it saw; traffic after a restart), then
//! detach/re-attach with the pool back to full.
//!
//! Usage (root, in the lab): `virtio_loop [BDF_A BDF_B]` (default
//! 0000:00:02.0 0000:00:03.0):
//! `cargo xtask lab --nics virtio,virtio --example virtio_loop --cmd virtio_loop`

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pktkit_harness::conformance::{is_dma_fault, KernelLog};
use pktkit_harness::{bind, VfioContainer};
use pktkit_native::device::{DeviceError, PciAddress, PciDevice, PciOpener};
use pktkit_native::{
    AttachArgs, Control, Driver, Fault, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig, Queues,
};

/// Ethertype of the test frames (IEEE local experimental).
const ETHERTYPE: u16 = 0x88b5;
/// Frames each way in the content test (> 4x a 256-entry ring).
const FRAMES: u32 = 2048;
/// Frames in the throughput run.
const BENCH_FRAMES: u32 = 50_000;
/// Detach/re-attach rounds.
const REATTACH: usize = 5;
/// Pool size.
const POOL_BUFFERS: usize = 4096;

struct Opener(Arc<VfioContainer>);

impl PciOpener for Opener {
    fn open(&self, addr: PciAddress) -> Result<Box<dyn PciDevice>, DeviceError> {
        self.0
            .open_device(addr)
            .map(|d| Box::new(d) as Box<dyn PciDevice>)
            .map_err(|e| DeviceError::Unsupported(e.to_string()))
    }
}

/// One attached, started NIC.
struct Nic {
    name: &'static str,
    drv: Box<dyn Driver>,
    q: Option<Queues>,
    owner: OwnerId,
}

impl Nic {
    fn queues(&mut self) -> &mut Queues {
        self.q.as_mut().expect("started")
    }

    fn stop(&mut self) {
        if let Some(q) = self.q.take() {
            self.drv.stop(q);
        }
    }
}

struct Lab {
    pool: Pool,
    opener: Arc<Opener>,
    failures: u32,
}

impl Lab {
    fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) {
        if !ok {
            self.failures += 1;
        }
        println!(
            "virtio_loop: check {name} {} {}",
            if ok { "ok" } else { "FAIL" },
            detail.as_ref()
        );
    }

    fn attach(&self, name: &'static str, bdf: PciAddress) -> Result<Nic, String> {
        let owner = self.pool.register_owner(name).map_err(|e| e.to_string())?;
        let args = AttachArgs {
            options: BTreeMap::from([("pci".to_owned(), bdf.to_string())]),
            pool: self.pool.clone(),
            owners: vec![owner],
            ifnames: vec![name.to_owned()],
            pci: Some(self.opener.clone()),
        };
        let drv = (pktkit_drv_virtio::FACTORY.create)(&args)
            .map_err(|e| format!("attach {bdf}: {e}"))?
            .pop()
            .ok_or("no device")?;
        Ok(Nic {
            name,
            drv,
            q: None,
            owner,
        })
    }

    fn start(&self, nic: &mut Nic) -> Result<(), String> {
        let q = nic
            .drv
            .start()
            .map_err(|e| format!("{}: start: {e}", nic.name))?;
        nic.q = Some(q);
        Ok(())
    }

    fn detach(&self, mut nic: Nic) -> i64 {
        nic.stop();
        drop(nic.drv);
        let held = self.pool.held_by(nic.owner);
        self.pool.unregister_owner(nic.owner);
        held
    }
}

fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(7).wrapping_add(i) as u8;
    }
    f
}

/// The size of frame `seq` in the content test: 60..=1514, varied.
fn size_of_seq(seq: u32) -> usize {
    60 + (seq as usize * 97) % (1514 - 60 + 1)
}

fn send(pool: &Pool, nic: &mut Nic, frames: &[Vec<u8>]) -> usize {
    let mut batch = PacketBatch::new();
    for f in frames {
        if let Some(m) = Mbuf::from_slice(pool, OwnerId::POOL, f) {
            let _ = batch.push(m);
        }
    }
    let mut sent = 0;
    let t0 = Instant::now();
    while !batch.is_empty() && t0.elapsed() < Duration::from_secs(2) {
        sent += nic.queues().tx[0].tx_burst(&mut batch);
    }
    sent
}

/// Receives until `want` frames or `timeout`; returns their bytes.
fn recv(nic: &mut Nic, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut batch = PacketBatch::new();
    let t0 = Instant::now();
    while out.len() < want && t0.elapsed() < timeout {
        let q = nic.queues();
        q.tx[0].reclaim();
        if q.rx[0].rx_burst(&mut batch) == 0 {
            std::thread::yield_now();
        }
        while let Some(m) = batch.pop_front() {
            out.push(m.to_vec());
        }
    }
    out
}

/// Content test: `n` frames each way, windowed, verified in order.
fn exchange(lab: &mut Lab, a: &mut Nic, b: &mut Nic, n: u32, label: &str) -> (u64, u64) {
    let (ma, mb) = (a.drv.mac(), b.drv.mac());
    let mut next_tx = [0u32; 2];
    let mut next_rx = [0u32; 2];
    let mut bad = 0u32;
    let mut batch = PacketBatch::new();
    let t0 = Instant::now();
    const WINDOW: u32 = 32;
    while (next_rx[0] < n || next_rx[1] < n) && t0.elapsed() < Duration::from_secs(20) {
        for dir in 0..2 {
            let (src, dst, srcmac, dstmac) = if dir == 0 {
                (&mut *a, &mut *b, ma, mb)
            } else {
                (&mut *b, &mut *a, mb, ma)
            };
            while next_tx[dir] < n && next_tx[dir] - next_rx[dir] < WINDOW {
                let s = next_tx[dir];
                let f = frame(dstmac, srcmac, s, size_of_seq(s));
                if send(&lab.pool, src, std::slice::from_ref(&f)) != 1 {
                    break;
                }
                next_tx[dir] += 1;
            }
            let q = dst.queues();
            q.tx[0].reclaim();
            q.rx[0].rx_burst(&mut batch);
            while let Some(m) = batch.pop_front() {
                let got = m.to_vec();
                let want = frame(dstmac, srcmac, next_rx[dir], size_of_seq(next_rx[dir]));
                if got != want {
                    bad += 1;
                    if bad <= 3 {
                        let seq = got
                            .get(14..18)
                            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
                        println!(
                            "virtio_loop:   {label} dir {dir}: frame {} mismatch (len {} want {}, seq {seq:?})",
                            next_rx[dir],
                            got.len(),
                            want.len()
                        );
                    }
                }
                next_rx[dir] += 1;
            }
        }
    }
    lab.check(
        label,
        next_rx == [n, n] && bad == 0,
        format!(
            "A->B {}/{n}, B->A {}/{n}, mismatched {bad}, sizes 60..1514, {:.2} s",
            next_rx[0],
            next_rx[1],
            t0.elapsed().as_secs_f64()
        ),
    );
    (u64::from(next_rx[0]), u64::from(next_rx[1]))
}

/// Sends `probe` then a unicast marker to `b`; returns whether the probe
/// arrived (the marker proves the path was flushed).
fn probe_filter(lab: &mut Lab, a: &mut Nic, b: &mut Nic, dst: [u8; 6], tag: u32) -> Option<bool> {
    let (ma, mb) = (a.drv.mac(), b.drv.mac());
    let probe = frame(dst, ma, tag, 100);
    let marker = frame(mb, ma, tag + 1, 100);
    if send(&lab.pool, a, &[probe.clone(), marker.clone()]) != 2 {
        return None;
    }
    let got = recv(b, 2, Duration::from_millis(1500));
    if !got.contains(&marker) {
        return None;
    }
    Some(got.contains(&probe))
}

fn poll_readable(fd: i32, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack, count 1.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    n == 1 && p.revents & libc::POLLIN != 0
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn run(bdfs: [PciAddress; 2]) -> Result<u32, String> {
    for b in bdfs {
        bind(b).map_err(|e| format!("bind {b}: {e}"))?;
    }
    let pool = Pool::new(&PoolConfig::new("vio-loop", POOL_BUFFERS)).map_err(|e| e.to_string())?;
    let container = VfioContainer::open().map_err(|e| e.to_string())?;
    container.map_pool(&pool).map_err(|e| e.to_string())?;
    let mut lab = Lab {
        pool: pool.clone(),
        opener: Arc::new(Opener(container)),
        failures: 0,
    };

    // Attach, MAC.
    let mut a = lab.attach("vio0", bdfs[0])?;
    let mut b = lab.attach("vio1", bdfs[1])?;
    for (nic, bdf) in [(&a, bdfs[0]), (&b, bdfs[1])] {
        // The lab gives NIC i (slot 2+i) the MAC 52:54:00:12:34:<i+1>.
        let want = [0x52, 0x54, 0x00, 0x12, 0x34, bdf.device - 1];
        let got = nic.drv.mac();
        lab.check(
            "mac",
            got == want,
            format!(
                "{} {bdf} {} (want {})",
                nic.name,
                fmt_mac(got),
                fmt_mac(want)
            ),
        );
        for (k, v) in nic.drv.describe() {
            println!("virtio_loop:   {} {k}: {v}", nic.name);
        }
        let c = nic.drv.capabilities();
        println!(
            "virtio_loop:   {} caps: queues {}, mtu {}..{}, offloads {:?}, multicast slots {}, promisc {}",
            nic.name, c.rx_queues, c.min_mtu, c.max_mtu, c.offloads.names(), c.multicast_slots, c.promisc
        );
    }
    lab.start(&mut a)?;
    lab.start(&mut b)?;

    // Link.
    let t0 = Instant::now();
    let mut links = (a.drv.link(), b.drv.link());
    while !(links.0.up && links.1.up) && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
        links = (a.drv.link(), b.drv.link());
    }
    lab.check(
        "link",
        links.0.up && links.1.up,
        format!("vio0 {:?}, vio1 {:?}", links.0, links.1),
    );

    // Content, both ways, ring wrap.
    let (ab, ba) = exchange(&mut lab, &mut a, &mut b, FRAMES, "frames");

    // Counters: what B received from A and A from B, what each sent.
    let (rb, ta) = (b.queues().rx[0].counters(), a.queues().tx[0].counters());
    let (ra, tb) = (a.queues().rx[0].counters(), b.queues().tx[0].counters());
    lab.check(
        "counters",
        rb.packets == ab && ra.packets == ba && ta.packets == ab && tb.packets == ba,
        format!(
            "vio1 rx {} (got {ab}), vio0 rx {} (got {ba}), vio0 tx {}, vio1 tx {}, errors {}/{}",
            rb.packets,
            ra.packets,
            ta.packets,
            tb.packets,
            rb.errors + ra.errors,
            ta.errors + tb.errors
        ),
    );

    // Multicast filter.
    let group = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    let before = probe_filter(&mut lab, &mut a, &mut b, group, 1_000_000);
    let joined = b.drv.control(&Control::SetMulticast(vec![group]));
    let after = probe_filter(&mut lab, &mut a, &mut b, group, 1_000_010);
    let other = probe_filter(
        &mut lab,
        &mut a,
        &mut b,
        [0x01, 0, 0x5e, 0, 0, 0x42],
        1_000_020,
    );
    lab.check(
        "multicast",
        before == Some(false) && joined.is_ok() && after == Some(true) && other == Some(false),
        format!("unjoined {before:?}, join {joined:?}, joined {after:?}, other group {other:?}"),
    );
    let _ = b.drv.control(&Control::SetMulticast(Vec::new()));

    // Promiscuous.
    let stranger = [0x02, 0, 0, 0, 0, 0x99];
    let before = probe_filter(&mut lab, &mut a, &mut b, stranger, 1_000_100);
    let on = b.drv.control(&Control::SetPromisc(true));
    let during = probe_filter(&mut lab, &mut a, &mut b, stranger, 1_000_110);
    let off = b.drv.control(&Control::SetPromisc(false));
    let after = probe_filter(&mut lab, &mut a, &mut b, stranger, 1_000_120);
    lab.check(
        "promisc",
        before == Some(false)
            && on.is_ok()
            && during == Some(true)
            && off.is_ok()
            && after == Some(false),
        format!("off {before:?}, on {during:?}, off again {after:?}"),
    );

    // Interrupt wake-up.
    let fd = b.queues().rx[0].wait_fd();
    match fd {
        None => lab.check("interrupt", false, "no wait fd (no MSI-X)"),
        Some(fd) => {
            let _ = recv(&mut b, usize::MAX, Duration::from_millis(100));
            let armed = b.queues().rx[0].arm();
            let idle = poll_readable(fd, 300);
            let ints0 = b.queues().rx[0].counters().interrupts;
            let f = frame(b.drv.mac(), a.drv.mac(), 7, 60);
            let t = Instant::now();
            send(&lab.pool, &mut a, std::slice::from_ref(&f));
            let woke = poll_readable(fd, 3000);
            let latency = t.elapsed();
            b.queues().rx[0].disarm();
            let ints = b.queues().rx[0].counters().interrupts - ints0;
            let got = recv(&mut b, 1, Duration::from_secs(1));
            lab.check(
                "interrupt",
                armed && !idle && woke && ints == 1 && got == vec![f],
                format!(
                    "armed {armed}, idle wake {idle}, woke {woke} after {latency:?}, interrupts {ints}"
                ),
            );
        }
    }

    // Throughput: A -> B, 60-byte frames, as fast as the rings go.
    let fps = bench(&lab.pool, &mut a, &mut b, 60);
    let fps_big = bench(&lab.pool, &mut a, &mut b, 1514);
    println!(
        "virtio_loop: throughput vio0->vio1: {:.0} frames/s (60 B), {:.0} frames/s (1514 B, {:.1} Mbit/s)",
        fps.0,
        fps_big.0,
        fps_big.0 * 1514.0 * 8.0 / 1e6
    );
    lab.check(
        "throughput",
        fps.1 > 0 && fps_big.1 > 0,
        format!("delivered {} and {} frames", fps.1, fps_big.1),
    );
    for nic in [&a, &b] {
        let c = nic.drv.counters();
        println!(
            "virtio_loop:   {} device counters: rx_no_buffer {} {:?}",
            nic.name, c.rx_no_buffer, c.extra
        );
    }

    reset(&mut lab, &mut a, &mut b)?;
    dma_fault(&mut lab, &mut a, &mut b)?;

    // Detach and re-attach, pool back to full each time.
    let mut ok = true;
    let mut detail = String::new();
    for round in 0..REATTACH {
        let held = lab.detach(a) + lab.detach(b);
        let avail = lab.pool.available();
        if held != 0 || avail != POOL_BUFFERS {
            ok = false;
        }
        detail = format!("round {round}: held {held}, pool {avail}/{POOL_BUFFERS}");
        a = lab.attach("vio0", bdfs[0])?;
        b = lab.attach("vio1", bdfs[1])?;
        lab.start(&mut a)?;
        lab.start(&mut b)?;
        let (x, y) = exchange(&mut lab, &mut a, &mut b, 16, "reattach-traffic");
        ok &= x == 16 && y == 16;
    }
    let held = lab.detach(a) + lab.detach(b);
    ok &= held == 0 && lab.pool.available() == POOL_BUFFERS;
    lab.check(
        "reattach",
        ok,
        format!(
            "{REATTACH} rounds; last {detail}; final held {held}, pool {}/{POOL_BUFFERS}",
            lab.pool.available()
        ),
    );
    Ok(lab.failures)
}

/// A device counter by name (0 when absent).
fn extra(nic: &Nic, key: &str) -> u64 {
    nic.drv
        .counters()
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map_or(0, |(_, v)| *v)
}

/// Stop + reset + start of B: traffic flows again and the multicast
/// filter set before the reset still holds.
fn reset(lab: &mut Lab, a: &mut Nic, b: &mut Nic) -> Result<(), String> {
    let group = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x77];
    let joined = b.drv.control(&Control::SetMulticast(vec![group]));
    b.stop();
    let r = b.drv.reset();
    lab.start(b)?;
    let (x, y) = exchange(lab, a, b, 64, "reset-traffic");
    let kept = probe_filter(lab, a, b, group, 2_000_000);
    let other = probe_filter(lab, a, b, [0x01, 0, 0x5e, 0, 0, 0x78], 2_000_010);
    let (resets, flr) = (extra(b, "resets"), extra(b, "function_resets"));
    lab.check(
        "reset",
        joined.is_ok() && r.is_ok() && x == 64 && y == 64 && kept == Some(true) && other == Some(false) && resets == 1,
        format!("reset {r:?}; traffic {x}/{y} of 64; joined group {kept:?}, other {other:?}; resets {resets} (function-level {flr})"),
    );
    let _ = b.drv.control(&Control::SetMulticast(Vec::new()));
    Ok(())
}

/// B's receive buffers pointed at an unmapped IOVA: frames for B fault in
/// the IOMMU, none is handed up, and a restart brings B back.
fn dma_fault(lab: &mut Lab, a: &mut Nic, b: &mut Nic) -> Result<(), String> {
    let mut log = KernelLog::open_at_end(std::path::Path::new("/dev/kmsg"))
        .map_err(|e| format!("/dev/kmsg: {e}"))?;
    let injected = b.drv.inject_fault(Fault::RxBufferIova(0xdead_0000_0000));
    let frames: Vec<Vec<u8>> = (0..16)
        .map(|i| frame(b.drv.mac(), a.drv.mac(), 3_000_000 + i, 100))
        .collect();
    let sent = send(&lab.pool, a, &frames);
    let got = recv(b, frames.len(), Duration::from_millis(800));
    let t0 = Instant::now();
    let mut fault_line = None;
    while fault_line.is_none() && t0.elapsed() < Duration::from_secs(3) {
        fault_line = log.new_lines().into_iter().find(|l| is_dma_fault(l));
        std::thread::sleep(Duration::from_millis(20));
    }
    let svc = b.drv.service();
    let rxc = b.queues().rx[0].counters();
    let counters = format!(
        "rx_redirected {}, rx_faulted {}, needs_reset {}, rx errors {}",
        extra(b, "rx_redirected"),
        extra(b, "rx_faulted"),
        extra(b, "needs_reset"),
        rxc.errors
    );
    b.stop();
    lab.start(b)?;
    let (x, y) = exchange(lab, a, b, 64, "dma-fault-restart-traffic");
    let seen = extra(b, "rx_faulted") > 0 || svc.needs_reset;
    lab.check(
        "dma_fault",
        injected.is_ok() && got.is_empty() && fault_line.is_some() && seen && x == 64 && y == 64,
        format!(
            "inject {injected:?}; sent {sent}, handed up {}; service {svc:?}; {counters}; kernel log {:?}; after restart {x}/{y} of 64",
            got.len(),
            fault_line.as_deref().map(str::trim)
        ),
    );
    Ok(())
}

/// Sends `BENCH_FRAMES` frames of `len` bytes A -> B; returns (frames/s
/// delivered, frames delivered).
fn bench(pool: &Pool, a: &mut Nic, b: &mut Nic, len: usize) -> (f64, u64) {
    let f = frame(b.drv.mac(), a.drv.mac(), 0, len);
    let mut tx = PacketBatch::new();
    let mut rx = PacketBatch::new();
    let (mut sent, mut got) = (0u32, 0u64);
    let t0 = Instant::now();
    let mut last_rx = Instant::now();
    while got < u64::from(BENCH_FRAMES) && last_rx.elapsed() < Duration::from_millis(500) {
        while sent < BENCH_FRAMES && tx.room() > 0 && tx.len() < 64 {
            match Mbuf::from_slice(pool, OwnerId::POOL, &f) {
                Some(m) => {
                    let _ = tx.push(m);
                    sent += 1;
                }
                None => break,
            }
        }
        a.queues().tx[0].tx_burst(&mut tx);
        let n = b.queues().rx[0].rx_burst(&mut rx);
        if n > 0 {
            got += n as u64;
            last_rx = Instant::now();
            rx.free_all();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(tx);
    a.queues().tx[0].reclaim();
    (got as f64 / secs, got)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bdfs: Vec<PciAddress> = if args.is_empty() {
        vec![
            "0000:00:02.0".parse().unwrap_or_else(|_| unreachable!()),
            "0000:00:03.0".parse().unwrap_or_else(|_| unreachable!()),
        ]
    } else {
        match args.iter().map(|s| s.parse()).collect() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("virtio_loop: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let [x, y] = bdfs[..] else {
        eprintln!("virtio_loop: give two BDFs");
        return ExitCode::FAILURE;
    };
    match run([x, y]) {
        Ok(0) => {
            println!("virtio_loop: all checks passed");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("virtio_loop: {n} checks failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("virtio_loop: error: {e}");
            ExitCode::FAILURE
        }
    }
}
