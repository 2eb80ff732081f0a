//! The suite's side of the wire: a [`Port`] (a driver with its started
//! queues), test frames that say who sent them, in which phase, with which
//! sequence number and length, and carry a pattern derived from those, and
//! [`transfer`], which moves a numbered sequence of frames from one port to
//! another, paced so the receiver keeps up, and verifies what arrives.
//!
//! One thread drives both ports, as one runtime worker would; nothing here
//! blocks except the short sleeps between polls when a wire is idle.

use std::time::{Duration, Instant};

use pktkit_native::{Driver, DriverError, Mbuf, OwnerId, PacketBatch, Pool, QueueCounters, Queues};

/// EtherType of test frames (IEEE 802 local experimental 1).
pub const ETHERTYPE: u16 = 0x88b5;
/// Marks a test frame, right after the EtherType.
const MAGIC: &[u8; 4] = b"PKCT";
/// Ethernet header + magic + phase + seq + len + kind.
pub const HEADER_LEN: usize = 14 + 4 + 4 + 4 + 2 + 1;
/// Smallest frame the suite sends (Ethernet minimum without CRC).
pub const MIN_FRAME: usize = 60;
/// Largest frame the suite can receive and verify.
pub const MAX_FRAME: usize = 16 * 1024;

/// What a test frame is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Part of a numbered sequence being verified.
    Data = 1,
    /// Sent until one arrives, to learn that the wire carries frames again.
    Probe = 2,
}

/// A driver and, while started, its queues.
pub struct Port {
    /// `dut` or `peer`, for evidence.
    pub role: &'static str,
    /// The driver.
    pub drv: Box<dyn Driver>,
    /// The pool owner its buffers are accounted to.
    pub owner: OwnerId,
    /// Its queues while started.
    pub queues: Option<Queues>,
    /// Scratch space for received frames (allocated once).
    scratch: Vec<u8>,
}

impl Port {
    /// A port over an attached, stopped driver.
    pub fn new(role: &'static str, drv: Box<dyn Driver>, owner: OwnerId) -> Port {
        Port {
            role,
            drv,
            owner,
            queues: None,
            scratch: vec![0; MAX_FRAME],
        }
    }

    /// The driver's station address.
    pub fn mac(&self) -> [u8; 6] {
        self.drv.mac()
    }

    /// Starts the driver (a no-op when started).
    pub fn start(&mut self) -> Result<(), DriverError> {
        if self.queues.is_none() {
            self.queues = Some(self.drv.start()?);
        }
        Ok(())
    }

    /// Stops the driver (a no-op when stopped).
    pub fn stop(&mut self) {
        if let Some(q) = self.queues.take() {
            self.drv.stop(q);
        }
    }

    /// Sums of the receive and transmit queue counters.
    pub fn counters(&self) -> (QueueCounters, QueueCounters) {
        let mut rx = QueueCounters::default();
        let mut tx = QueueCounters::default();
        if let Some(q) = &self.queues {
            q.rx.iter().for_each(|r| rx.add(&r.counters()));
            q.tx.iter().for_each(|t| tx.add(&t.counters()));
        }
        (rx, tx)
    }

    /// Transmits from the front of `batch` on queue 0; returns how many
    /// the driver took.
    pub fn send(&mut self, batch: &mut PacketBatch) -> usize {
        match self.queues.as_mut().and_then(|q| q.tx.first_mut()) {
            Some(tx) => tx.tx_burst(batch),
            None => 0,
        }
    }

    /// Lets the transmit queues free completed buffers.
    pub fn reclaim(&mut self) {
        if let Some(q) = self.queues.as_mut() {
            q.tx.iter_mut().for_each(|t| t.reclaim());
        }
    }

    /// Receives from every queue into `batch`; returns how many arrived.
    pub fn recv(&mut self, batch: &mut PacketBatch) -> usize {
        let Some(q) = self.queues.as_mut() else {
            return 0;
        };
        q.rx.iter_mut().map(|r| r.rx_burst(batch)).sum()
    }

    /// Receives and classifies every frame waiting, freeing them; test
    /// frames of `phase` are passed to `seen` with their header.
    fn poll(&mut self, phase: u32, mut seen: impl FnMut(Seen)) -> usize {
        let mut batch = PacketBatch::with_limit(64);
        let mut n = 0;
        loop {
            if self.recv(&mut batch) == 0 {
                break;
            }
            while let Some(m) = batch.pop_front() {
                n += 1;
                seen(classify(&m, phase, &mut self.scratch));
            }
        }
        n
    }

    /// Receives and frees everything for `d`; returns how many frames.
    pub fn drain(&mut self, d: Duration) -> usize {
        let end = Instant::now() + d;
        let mut n = 0;
        loop {
            n += self.poll(0, |_| {});
            if Instant::now() >= end {
                return n;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// What a received frame was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A data frame of this phase: its sequence number, and whether its
    /// length and content are what the sender wrote.
    Data {
        /// Sequence number.
        seq: u32,
        /// Length and content verified.
        intact: bool,
        /// Frame length.
        len: usize,
    },
    /// A probe of this phase.
    Probe,
    /// Anything else (another phase, another protocol).
    Other,
}

fn classify(m: &Mbuf, phase: u32, scratch: &mut [u8]) -> Seen {
    let len = m.pkt_len();
    let n = m.copy_out(scratch);
    let f = &scratch[..n];
    if n < HEADER_LEN || f[12..14] != ETHERTYPE.to_be_bytes() || &f[14..18] != MAGIC {
        return Seen::Other;
    }
    let word = |o: usize| u32::from_be_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    if word(18) != phase {
        return Seen::Other;
    }
    let seq = word(22);
    let said = u16::from_be_bytes([f[26], f[27]]) as usize;
    match f[28] {
        k if k == Kind::Probe as u8 => Seen::Probe,
        k if k == Kind::Data as u8 => Seen::Data {
            seq,
            len,
            intact: said == len && n == len && pattern_ok(&f[HEADER_LEN..], seq),
        },
        _ => Seen::Other,
    }
}

fn pattern_byte(seq: u32, i: usize) -> u8 {
    (seq as usize)
        .wrapping_mul(31)
        .wrapping_add(i.wrapping_mul(7)) as u8
        ^ 0x5a
}

fn pattern_ok(payload: &[u8], seq: u32) -> bool {
    payload
        .iter()
        .enumerate()
        .all(|(i, b)| *b == pattern_byte(seq, i))
}

/// Writes a test frame of `len` bytes (at least [`HEADER_LEN`]) into `f`.
pub fn write_frame(f: &mut [u8], dst: [u8; 6], src: [u8; 6], phase: u32, seq: u32, kind: Kind) {
    let len = f.len();
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(MAGIC);
    f[18..22].copy_from_slice(&phase.to_be_bytes());
    f[22..26].copy_from_slice(&seq.to_be_bytes());
    f[26..28].copy_from_slice(&(len as u16).to_be_bytes());
    f[28] = kind as u8;
    for (i, b) in f[HEADER_LEN..].iter_mut().enumerate() {
        *b = pattern_byte(seq, i);
    }
}

/// Who a stream of test frames goes to, from whom, in which phase.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    /// Destination address.
    pub dst: [u8; 6],
    /// Source address.
    pub src: [u8; 6],
    /// Phase number: frames of other phases are not counted.
    pub phase: u32,
}

/// Builds test frame `seq` of `len` bytes in a pool buffer (chained above
/// one data room), using `scratch` to lay it out.
pub fn build(
    pool: &Pool,
    owner: OwnerId,
    scratch: &mut [u8],
    s: Stream,
    kind: Kind,
    seq: u32,
    len: usize,
) -> Option<Mbuf> {
    let len = len.clamp(HEADER_LEN, scratch.len());
    let f = &mut scratch[..len];
    write_frame(f, s.dst, s.src, s.phase, seq, kind);
    Mbuf::from_slice(pool, owner, f)
}

/// What a numbered transfer found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Frames the sender's driver took.
    pub sent: u64,
    /// Distinct data frames received intact.
    pub received: u64,
    /// Bytes of those.
    pub bytes: u64,
    /// Frames whose length or content differed.
    pub corrupt: u64,
    /// Frames that arrived after a later one.
    pub reordered: u64,
    /// Frames that arrived twice.
    pub duplicated: u64,
    /// Frames that never arrived.
    pub lost: u64,
    /// Other frames the receiver saw meanwhile.
    pub other: u64,
    /// Times the sender's ring was full (it took fewer than offered).
    pub tx_full: u64,
    /// Frames that could not be built (pool exhausted).
    pub no_buffer: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Transfer {
    /// Whether every frame arrived once, intact and in order.
    pub fn clean(&self, count: u64) -> bool {
        self.sent == count
            && self.received == count
            && self.corrupt == 0
            && self.reordered == 0
            && self.duplicated == 0
            && self.lost == 0
    }

    /// One line of numbers for evidence.
    pub fn summary(&self) -> String {
        format!(
            "sent {} received {} lost {} reordered {} duplicated {} corrupt {} (tx ring full {}x, {:.2} s)",
            self.sent,
            self.received,
            self.lost,
            self.reordered,
            self.duplicated,
            self.corrupt,
            self.tx_full,
            self.elapsed.as_secs_f64()
        )
    }
}

/// How [`transfer`] paces and gives up.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Most frames in flight (sent, not yet received): keep it below the
    /// receiver's ring so it never runs out of buffers.
    pub window: usize,
    /// Most frames per transmit burst.
    pub burst: usize,
    /// Give up when nothing arrives for this long.
    pub idle: Duration,
}

/// Sends frames `0..count` from `from` to `to`, frame `i` being `len(i)`
/// bytes long and addressed to `dst`, and checks what arrives.
pub fn transfer(
    pool: &Pool,
    (from, to): (&mut Port, &mut Port),
    dst: [u8; 6],
    phase: u32,
    count: u32,
    len: &dyn Fn(u32) -> usize,
    pace: Pace,
) -> Transfer {
    let t0 = Instant::now();
    let mut t = Transfer::default();
    let stream = Stream {
        dst,
        src: from.mac(),
        phase,
    };
    let mut batch = PacketBatch::with_limit(pace.burst.clamp(1, pktkit_native::BATCH_MAX));
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut next_seq = 0u32; // next to build
    let mut expect = 0u32; // next expected in order
    let mut got = vec![false; count as usize];
    let mut last_progress = Instant::now();
    loop {
        // Build up to the window and the burst, then offer the batch; what
        // the driver does not take stays queued for the next round.
        let in_flight = t.sent.saturating_sub(t.received + t.lost) as usize;
        while next_seq < count && batch.room() > 0 && in_flight + batch.len() < pace.window {
            match build(
                pool,
                from.owner,
                &mut scratch,
                stream,
                Kind::Data,
                next_seq,
                len(next_seq),
            ) {
                Some(m) => {
                    let _ = batch.push(m);
                    next_seq += 1;
                }
                None => {
                    t.no_buffer += 1;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let offered = batch.len();
            let took = from.send(&mut batch);
            t.sent += took as u64;
            if took < offered {
                t.tx_full += 1;
                from.reclaim();
            }
        }
        let arrived = to.poll(phase, |s| match s {
            Seen::Data { seq, intact, len } => {
                if seq >= count {
                    t.other += 1;
                } else if got[seq as usize] {
                    t.duplicated += 1;
                } else if !intact {
                    t.corrupt += 1;
                    got[seq as usize] = true;
                } else {
                    got[seq as usize] = true;
                    t.received += 1;
                    t.bytes += len as u64;
                    if seq < expect {
                        t.reordered += 1;
                    } else {
                        expect = seq + 1;
                    }
                }
            }
            Seen::Probe | Seen::Other => t.other += 1,
        });
        if arrived > 0 {
            last_progress = Instant::now();
        }
        let all_sent = next_seq == count && batch.is_empty();
        if all_sent && t.received + t.corrupt >= u64::from(count) {
            break;
        }
        if last_progress.elapsed() > pace.idle {
            break;
        }
        if arrived == 0 {
            from.reclaim();
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    // Frames never built or never taken count as lost too.
    t.lost = u64::from(count) - got.iter().filter(|g| **g).count() as u64;
    t.elapsed = t0.elapsed();
    t
}

/// Sends a probe every 20 ms from `from` to `dst` until `to` receives one
/// (the wire carries frames again, e.g. after QEMU's e1000 ignores rx for
/// about a second after an RCTL write), then drains `to`. Returns how long
/// it took, or `None` after `timeout`.
pub fn settle(
    pool: &Pool,
    (from, to): (&mut Port, &mut Port),
    dst: [u8; 6],
    phase: u32,
    timeout: Duration,
) -> Option<Duration> {
    let t0 = Instant::now();
    let stream = Stream {
        dst,
        src: from.mac(),
        phase,
    };
    let mut scratch = [0u8; 64];
    let mut seq = 0;
    while t0.elapsed() < timeout {
        if let Some(m) = build(
            pool,
            from.owner,
            &mut scratch,
            stream,
            Kind::Probe,
            seq,
            MIN_FRAME,
        ) {
            let mut b = PacketBatch::with_limit(1);
            let _ = b.push(m);
            from.send(&mut b);
            seq += 1;
        }
        let until = Instant::now() + Duration::from_millis(20);
        let mut seen = false;
        while Instant::now() < until && !seen {
            to.poll(phase, |s| seen |= s == Seen::Probe);
            from.reclaim();
            std::thread::sleep(Duration::from_micros(200));
        }
        if seen {
            let took = t0.elapsed();
            to.drain(Duration::from_millis(30));
            return Some(took);
        }
    }
    None
}

/// Sends `count` frames of `len` bytes to `dst` and counts how many test
/// frames of `phase` arrive at `to` within `wait` after the last was sent.
pub fn count_arrivals(
    pool: &Pool,
    ports: (&mut Port, &mut Port),
    dst: [u8; 6],
    phase: u32,
    count: u32,
    wait: Duration,
) -> u64 {
    let pace = Pace {
        window: count as usize + 1,
        burst: 32,
        idle: wait,
    };
    let t = transfer(pool, ports, dst, phase, count, &|_| 100, pace);
    t.received + t.corrupt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_verify_and_detect_damage() {
        let mut f = vec![0u8; 200];
        write_frame(&mut f, [1; 6], [2; 6], 7, 42, Kind::Data);
        assert!(pattern_ok(&f[HEADER_LEN..], 42));
        assert!(!pattern_ok(&f[HEADER_LEN..], 43));
        f[150] ^= 1;
        assert!(!pattern_ok(&f[HEADER_LEN..], 42));
        assert_eq!(u16::from_be_bytes([f[26], f[27]]), 200);
    }
}
