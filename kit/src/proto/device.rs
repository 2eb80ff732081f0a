//! The smoltcp `phy::Device` over a [`Port`], and the receive screen.
//!
//! A [`PortDevice`] lives for one step of [`super::NetStack::poll`]: it
//! borrows the port, the interface's [`DeviceBuffers`] and its counters.
//!
//! Receive: the caller fills `DeviceBuffers::rx` with `Port::recv`; each
//! `Device::receive` pops one mbuf, screens the frame ([`screen`]) and hands
//! it to smoltcp in an [`MbufRx`] token. A frame in one buffer is parsed in
//! place; a chained frame is first copied into the interface's receive
//! scratch buffer (the screen needs contiguous bytes too). The mbuf goes
//! back to its pool when the token is consumed.
//!
//! Transmit: an [`MbufTx`] token allocates an mbuf from the port's pool
//! under the port's owner and lets smoltcp write the frame straight into it;
//! a frame longer than one data room is written into the transmit scratch
//! buffer and copied into a chain. Frames queue in `DeviceBuffers::tx`,
//! which is handed to `Port::send` when it fills and at the end of each
//! step; whatever the port does not take stays queued for the next step.
//! When the batch is full and the port takes nothing, `transmit` answers
//! `None` (smoltcp keeps its data and tries again later) and a reply token
//! made by `receive` drops its frame and counts it: the stack never waits.

use pktkit_native::mbuf::DATAROOM;
use pktkit_native::{Mbuf, PacketBatch};
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, Ipv4Packet, Ipv6Packet,
};

use super::{Port, ProtoCounters};

/// Bytes of an Ethernet header (no VLAN tag, no FCS).
pub(crate) const ETHER_HDR: usize = 14;
/// The longest frame smoltcp can ask to build: an IPv6 packet with the
/// largest payload length. smoltcp checks the MTU for IPv4 (dropping what
/// would need fragmenting) but not for IPv6, so the transmit scratch buffer
/// must hold this much for the frame to be built and dropped safely.
const LONGEST_FRAME: usize = ETHER_HDR + 40 + 65535;

/// The buffers one interface's device adapter works in, allocated once at
/// `add_interface`.
pub(crate) struct DeviceBuffers {
    /// Frames received from the port, not yet given to smoltcp.
    pub(crate) rx: PacketBatch,
    /// Frames built by smoltcp, not yet taken by the port.
    pub(crate) tx: PacketBatch,
    /// Contiguous copy of a chained received frame.
    rx_scratch: Box<[u8]>,
    /// Where frames longer than one data room (and frames that will be
    /// dropped) are written. Holds [`LONGEST_FRAME`] bytes.
    tx_scratch: Vec<u8>,
    /// The longest frame the port takes (MTU + Ethernet header).
    frame_max: usize,
}

impl DeviceBuffers {
    /// Buffers for frames of up to `frame_max` bytes.
    pub(crate) fn new(frame_max: usize) -> DeviceBuffers {
        DeviceBuffers {
            rx: PacketBatch::new(),
            tx: PacketBatch::new(),
            rx_scratch: vec![0; frame_max].into_boxed_slice(),
            tx_scratch: vec![0; LONGEST_FRAME.max(frame_max)],
            frame_max,
        }
    }
}

/// Why the screen refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Runt,
    NotForUs,
    UnknownEthertype,
    Malformed,
}

/// Checks a received frame before smoltcp sees it.
///
/// smoltcp would drop every refused frame too, silently; screening here is
/// what lets the stack count them. Only headers are checked (cheap), with
/// smoltcp's checked parsers, which never panic. The IPv4 header checksum is
/// verified here, so smoltcp is told not to verify it again.
pub(crate) fn screen(frame: &[u8], mac: EthernetAddress) -> Result<(), Refusal> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Refusal::Runt)?;
    let dst = eth.dst_addr();
    if dst != mac && !dst.is_broadcast() && !dst.is_multicast() {
        return Err(Refusal::NotForUs);
    }
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            // Only Ethernet/IPv4 ARP is spoken; the Repr parse checks that.
            ArpPacket::new_checked(eth.payload())
                .and_then(|p| ArpRepr::parse(&p))
                .map_err(|_| Refusal::Malformed)?;
        }
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| Refusal::Malformed)?;
            let src = ip.src_addr();
            // RFC 1122 3.2.1.3: a source must be a host address. 0.0.0.0 is
            // only a source of hosts without an address (DHCP clients),
            // which need no answer from us.
            let bad_src = src.is_unspecified() || src.is_broadcast() || src.is_multicast();
            if ip.version() != 4 || !ip.verify_checksum() || bad_src {
                return Err(Refusal::Malformed);
            }
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).map_err(|_| Refusal::Malformed)?;
            // :: is a legitimate source (duplicate address detection);
            // a multicast source never is (RFC 4291 2.7).
            if ip.version() != 6 || ip.src_addr().is_multicast() {
                return Err(Refusal::Malformed);
            }
        }
        EthernetProtocol::Unknown(_) => return Err(Refusal::UnknownEthertype),
    }
    Ok(())
}

/// Counts a refusal.
fn count_refusal(c: &mut ProtoCounters, why: Refusal) {
    match why {
        Refusal::Runt => c.rx_runt += 1,
        Refusal::NotForUs => c.rx_not_for_us += 1,
        Refusal::UnknownEthertype => c.rx_unknown_ethertype += 1,
        Refusal::Malformed => c.rx_malformed += 1,
    }
}

/// The transmit side of the adapter, shared by `transmit` and the reply
/// tokens of `receive`.
pub(crate) struct TxPath<'a> {
    port: &'a mut dyn Port,
    batch: &'a mut PacketBatch,
    scratch: &'a mut Vec<u8>,
    frame_max: usize,
    counters: &'a mut ProtoCounters,
}

impl TxPath<'_> {
    /// Hands queued frames to the port; what it does not take stays queued.
    pub(crate) fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.port.send(self.batch);
        }
    }

    /// Whether a frame can be queued, flushing to the port if the batch is
    /// full.
    fn has_room(&mut self) -> bool {
        if self.batch.room() == 0 {
            self.flush();
        }
        self.batch.room() > 0
    }

    fn queue(&mut self, mut m: Mbuf) {
        // Output hooks see each frame once, when it is built (a frame the
        // port does not take at once stays queued, already filtered). A
        // dropped frame is counted by the hook that dropped it.
        if !self.port.output_filter(&mut m) {
            return;
        }
        let len = m.pkt_len() as u64;
        match self.batch.push(m) {
            Ok(()) => {
                self.counters.tx_frames += 1;
                self.counters.tx_bytes += len;
            }
            // has_room was checked; a refusal here only frees the frame.
            Err(_) => self.counters.tx_dropped += 1,
        }
    }

    /// Builds one frame of `len` bytes with `f` and queues it.
    fn build<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, f: F) -> R {
        if len > self.frame_max {
            self.counters.tx_oversize += 1;
            return f(self.sink(len));
        }
        if !self.has_room() {
            self.counters.tx_dropped += 1;
            return f(self.sink(len));
        }
        if len <= DATAROOM {
            let Some(mut m) = self.port.pool().alloc(self.port.owner()) else {
                self.counters.tx_no_buffer += 1;
                return f(self.sink(len));
            };
            if let Some(buf) = m.append(len) {
                let r = f(buf);
                self.queue(m);
                return r;
            }
            // A fresh buffer always holds DATAROOM bytes; fall through to
            // the chained path rather than trust that.
        }
        let r = f(self.sink(len));
        match Mbuf::from_slice(self.port.pool(), self.port.owner(), &self.scratch[..len]) {
            Some(m) => self.queue(m),
            None => self.counters.tx_no_buffer += 1,
        }
        r
    }

    /// The first `len` bytes of the transmit scratch buffer: where chained
    /// frames are built and frames that will be dropped are written (smoltcp
    /// must be given a buffer of the length it asked for).
    fn sink(&mut self, len: usize) -> &mut [u8] {
        if len > self.scratch.len() {
            // Cannot happen: smoltcp never builds more than LONGEST_FRAME.
            // Growing beats handing smoltcp a short buffer, which it would
            // index out of bounds.
            self.scratch.resize(len, 0);
        }
        &mut self.scratch[..len]
    }
}

/// smoltcp's view of a port for one poll step.
pub(crate) struct PortDevice<'a> {
    rx: &'a mut PacketBatch,
    rx_scratch: &'a mut [u8],
    tx: TxPath<'a>,
    mac: EthernetAddress,
}

impl<'a> PortDevice<'a> {
    /// The adapter over `port` working in `bufs`, counting into `counters`.
    pub(crate) fn new(
        port: &'a mut dyn Port,
        bufs: &'a mut DeviceBuffers,
        counters: &'a mut ProtoCounters,
        mac: [u8; 6],
    ) -> PortDevice<'a> {
        PortDevice {
            rx: &mut bufs.rx,
            rx_scratch: &mut bufs.rx_scratch,
            tx: TxPath {
                port,
                batch: &mut bufs.tx,
                scratch: &mut bufs.tx_scratch,
                frame_max: bufs.frame_max,
                counters,
            },
            mac: EthernetAddress(mac),
        }
    }

    /// Hands queued frames to the port.
    pub(crate) fn flush(&mut self) {
        self.tx.flush();
    }
}

/// smoltcp's capabilities of an Ethernet port with frames of up to
/// `frame_max` bytes.
pub(crate) fn capabilities(frame_max: usize) -> DeviceCapabilities {
    let mut caps = DeviceCapabilities::default();
    caps.medium = Medium::Ethernet;
    caps.max_transmission_unit = frame_max;
    caps.max_burst_size = None;
    let mut csum = ChecksumCapabilities::default();
    // The screen verified the IPv4 header checksum already.
    csum.ipv4 = Checksum::Tx;
    caps.checksum = csum;
    caps
}

impl<'a> phy::Device for PortDevice<'a> {
    type RxToken<'t>
        = MbufRx<'t>
    where
        Self: 't;
    type TxToken<'t>
        = MbufTx<'t, 'a>
    where
        Self: 't;

    fn receive(&mut self, _now: Instant) -> Option<(MbufRx<'_>, MbufTx<'_, 'a>)> {
        loop {
            let m = self.rx.pop_front()?;
            let len = m.pkt_len();
            let chained = m.is_chained();
            if chained && len > self.rx_scratch.len() {
                self.tx.counters.rx_oversize += 1;
                continue;
            }
            let frame = if chained {
                let n = m.copy_out(&mut self.rx_scratch[..len]);
                &self.rx_scratch[..n]
            } else {
                m.data()
            };
            if let Err(why) = screen(frame, self.mac) {
                count_refusal(self.tx.counters, why);
                continue;
            }
            let frame_len = frame.len();
            self.tx.counters.rx_frames += 1;
            self.tx.counters.rx_bytes += frame_len as u64;
            let rx = MbufRx {
                m,
                scratch: if chained {
                    Some(&self.rx_scratch[..frame_len])
                } else {
                    None
                },
            };
            return Some((rx, MbufTx { path: &mut self.tx }));
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<MbufTx<'_, 'a>> {
        if !self.tx.has_room() {
            self.tx.counters.tx_busy += 1;
            return None;
        }
        Some(MbufTx { path: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(self.rx_scratch.len())
    }
}

/// A received frame: in place in its mbuf, or copied to the scratch buffer
/// when it was chained.
pub(crate) struct MbufRx<'t> {
    m: Mbuf,
    scratch: Option<&'t [u8]>,
}

impl phy::RxToken for MbufRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        match self.scratch {
            Some(bytes) => f(bytes),
            None => f(self.m.data()),
        }
        // self.m drops here: the buffer goes back to its pool.
    }
}

/// The right to queue one frame for transmission.
pub(crate) struct MbufTx<'t, 'a> {
    path: &'t mut TxPath<'a>,
}

impl phy::TxToken for MbufTx<'_, '_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.path.build(len, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

    fn frame(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A 20-byte IPv4 header (UDP, no payload) with a correct checksum.
    fn ipv4_header(src: [u8; 4]) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, src[0], src[1], src[2], src[3], 192, 0, 2,
            1,
        ];
        let mut sum = 0u32;
        for w in h.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        h
    }

    #[test]
    fn screen_sorts_frames() {
        let us = EthernetAddress(US);
        assert_eq!(screen(&[0u8; 13], us), Err(Refusal::Runt));
        let other = [0x02, 9, 9, 9, 9, 9];
        assert_eq!(
            screen(&frame(other, 0x0800, &ipv4_header([192, 0, 2, 2])), us),
            Err(Refusal::NotForUs)
        );
        assert_eq!(
            screen(&frame(US, 0x0800, &ipv4_header([192, 0, 2, 2])), us),
            Ok(())
        );
        // Broadcast and multicast destinations are ours too.
        assert_eq!(
            screen(&frame([0xff; 6], 0x0800, &ipv4_header([192, 0, 2, 2])), us),
            Ok(())
        );
        assert_eq!(
            screen(&frame(US, 0x88cc, &[0; 40]), us),
            Err(Refusal::UnknownEthertype)
        );
        // Truncated, corrupted, and non-unicast sources.
        let good = ipv4_header([192, 0, 2, 2]);
        assert_eq!(
            screen(&frame(US, 0x0800, &good[..19]), us),
            Err(Refusal::Malformed)
        );
        let mut bad = good.clone();
        bad[8] ^= 1;
        assert_eq!(
            screen(&frame(US, 0x0800, &bad), us),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            screen(&frame(US, 0x0800, &ipv4_header([224, 0, 0, 1])), us),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            screen(&frame(US, 0x0800, &ipv4_header([0, 0, 0, 0])), us),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            screen(&frame(US, 0x0806, &[0; 10]), us),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            screen(&frame(US, 0x86dd, &[0x60; 39]), us),
            Err(Refusal::Malformed)
        );
    }
}
