//! The virtio network device (virtio 1.1 §5.1): feature bits, the device
//! configuration layout, `struct virtio_net_hdr`, control-queue commands,
//! and the checksum work the header asks for.
//!
//! Checksums follow the virtio and NetBSD conventions, which agree: a
//! packet that asks for a TCP/UDP checksum (`M_CSUM_TCPv4` ... in
//! `csum_flags` on transmit) already carries the pseudo-header sum in its
//! checksum field, and the device (or [`complete_checksum`]) adds the sum
//! from `csum_start` to the end of the packet and stores its complement at
//! `csum_start + csum_offset` (§5.1.6.2).

use pktkit_native::sys;

/// virtio-net feature bits (virtio 1.1 §5.1.3).
pub mod feature {
    /// The device computes partial checksums on transmit.
    pub const CSUM: u32 = 0;
    /// The driver accepts packets with partial checksums (and DATA_VALID).
    pub const GUEST_CSUM: u32 = 1;
    /// Maximum MTU advice in the config; not used.
    pub const MTU: u32 = 3;
    /// The device has a MAC address in its configuration.
    pub const MAC: u32 = 5;
    /// Merge receive buffers; not used (one 2 KiB buffer holds any frame).
    pub const MRG_RXBUF: u32 = 15;
    /// The configuration `status` field is valid (link state).
    pub const STATUS: u32 = 16;
    /// A control virtqueue exists.
    pub const CTRL_VQ: u32 = 17;
    /// Receive filtering (promisc, allmulti, MAC table) through the control queue.
    pub const CTRL_RX: u32 = 18;
    /// Multiqueue, with automatic receive steering (§5.1.6.5.5).
    pub const MQ: u32 = 22;
    /// Setting the MAC address through the control queue.
    pub const CTRL_MAC_ADDR: u32 = 23;
    /// The configuration reports speed and duplex.
    pub const SPEED_DUPLEX: u32 = 63;
}

/// Offsets in `struct virtio_net_config` (virtio 1.1 §5.1.4).
pub mod config {
    /// `u8[6]`, valid with VIRTIO_NET_F_MAC.
    pub const MAC: usize = 0;
    /// le16, valid with VIRTIO_NET_F_STATUS.
    pub const STATUS: usize = 6;
    /// le16, valid with VIRTIO_NET_F_MQ.
    pub const MAX_VIRTQUEUE_PAIRS: usize = 8;
    /// le16, valid with VIRTIO_NET_F_MTU.
    pub const MTU: usize = 10;
    /// le32 Mbit/s, valid with VIRTIO_NET_F_SPEED_DUPLEX (0xffffffff: unknown).
    pub const SPEED: usize = 12;
    /// u8, 1 full, 0 half, 0xff unknown.
    pub const DUPLEX: usize = 16;
    /// `status` bit: link up.
    pub const S_LINK_UP: u16 = 1;
    /// `status` bit: the driver should announce itself (gratuitous ARP).
    pub const S_ANNOUNCE: u16 = 2;
    /// Speed value meaning "unknown".
    pub const SPEED_UNKNOWN: u32 = u32::MAX;
}

/// `struct virtio_net_hdr` as laid out with VIRTIO_F_VERSION_1: 12 bytes,
/// `num_buffers` always present (virtio 1.1 §5.1.6). Little-endian fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    hdr_len: u16,
    gso_size: u16,
    csum_start: u16,
    csum_offset: u16,
    num_buffers: u16,
}

/// Size of [`NetHdr`].
pub const NET_HDR_LEN: usize = 12;

/// Header flag: checksum from `csum_start` still to be completed.
pub const HDR_F_NEEDS_CSUM: u8 = 1;
/// Header flag (receive): the device validated the checksum.
pub const HDR_F_DATA_VALID: u8 = 2;
/// `gso_type`: no segmentation.
pub const HDR_GSO_NONE: u8 = 0;

impl NetHdr {
    /// A header asking the device to complete a checksum.
    pub fn needs_csum(csum_start: u16, csum_offset: u16) -> NetHdr {
        NetHdr {
            flags: HDR_F_NEEDS_CSUM,
            csum_start: csum_start.to_le(),
            csum_offset: csum_offset.to_le(),
            ..NetHdr::default()
        }
    }

    /// `csum_start`.
    pub fn csum_start(&self) -> u16 {
        u16::from_le(self.csum_start)
    }

    /// `csum_offset`.
    pub fn csum_offset(&self) -> u16 {
        u16::from_le(self.csum_offset)
    }

    /// The header's bytes.
    pub fn to_bytes(self) -> [u8; NET_HDR_LEN] {
        let mut b = [0u8; NET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&u16::from_le(self.hdr_len).to_le_bytes());
        b[4..6].copy_from_slice(&u16::from_le(self.gso_size).to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start().to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset().to_le_bytes());
        b[10..12].copy_from_slice(&u16::from_le(self.num_buffers).to_le_bytes());
        b
    }

    /// Parses a header (`None` if shorter than 12 bytes).
    pub fn from_bytes(b: &[u8]) -> Option<NetHdr> {
        let b: &[u8; NET_HDR_LEN] = b.get(..NET_HDR_LEN)?.try_into().ok()?;
        let le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]).to_le();
        Some(NetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
            num_buffers: le(10),
        })
    }
}

/// Control-queue classes and commands (virtio 1.1 §5.1.6.5).
pub mod ctrl {
    /// Class: receive mode.
    pub const CLASS_RX: u8 = 0;
    /// RX command: promiscuous on/off (u8).
    pub const RX_PROMISC: u8 = 0;
    /// RX command: all-multicast on/off (u8).
    pub const RX_ALLMULTI: u8 = 1;
    /// Class: MAC filtering (§5.1.6.5.2).
    pub const CLASS_MAC: u8 = 1;
    /// MAC command: set the unicast and multicast tables.
    pub const MAC_TABLE_SET: u8 = 0;
    /// MAC command: set the station address (VIRTIO_NET_F_CTRL_MAC_ADDR).
    pub const MAC_ADDR_SET: u8 = 1;
    /// Class: multiqueue (§5.1.6.5.5).
    pub const CLASS_MQ: u8 = 4;
    /// MQ command: number of queue pairs to use (le16).
    pub const MQ_VQ_PAIRS_SET: u8 = 0;
    /// Smallest pair count for MQ_VQ_PAIRS_SET.
    pub const MQ_VQ_PAIRS_MIN: u16 = 1;
    /// Largest pair count for MQ_VQ_PAIRS_SET.
    pub const MQ_VQ_PAIRS_MAX: u16 = 0x8000;
    /// Ack: success.
    pub const OK: u8 = 0;
    /// Ack: failure.
    pub const ERR: u8 = 1;
}

/// Exact multicast addresses the filter takes: QEMU's MAC table holds 64
/// entries for unicast and multicast together, and we put no unicast entry
/// in it (the station address is matched on its own).
pub const MULTICAST_SLOTS: usize = 64;

/// Encodes VIRTIO_NET_CTRL_MAC_TABLE_SET's data into `out`: an empty
/// unicast table, then the multicast table (`le32 entries; u8 macs[][6]`,
/// §5.1.6.5.2). Returns the bytes used, `None` if `out` is too small.
pub fn encode_mac_table(multicast: &[[u8; 6]], out: &mut [u8]) -> Option<usize> {
    let need = 4 + 4 + 6 * multicast.len();
    let out = out.get_mut(..need)?;
    out[..4].copy_from_slice(&0u32.to_le_bytes());
    out[4..8].copy_from_slice(&(multicast.len() as u32).to_le_bytes());
    for (i, m) in multicast.iter().enumerate() {
        out[8 + 6 * i..14 + 6 * i].copy_from_slice(m);
    }
    Some(need)
}

/// The L4 protocol a checksum request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// TCP: checksum at offset 16 of its header.
    Tcp,
    /// UDP: checksum at offset 6.
    Udp,
}

impl L4 {
    /// Offset of the checksum field in the L4 header.
    pub fn csum_offset(self) -> u16 {
        match self {
            L4::Tcp => 16,
            L4::Udp => 6,
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Where a frame's IP and L4 headers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the TCP/UDP header.
    pub l4: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// The L4 protocol, if TCP or UDP.
    pub proto: Option<L4>,
}

/// Finds the IP and TCP/UDP headers of an Ethernet frame (one optional
/// 802.1Q tag; IPv6 without extension headers). `None` if the frame is not
/// IP or is too short for the headers it claims.
pub fn parse_headers(f: &[u8]) -> Option<Headers> {
    let be16 = |i: usize| Some(u16::from_be_bytes([*f.get(i)?, *f.get(i + 1)?]));
    let mut l3 = 14;
    let mut etype = be16(12)?;
    if etype == ETHERTYPE_VLAN {
        etype = be16(16)?;
        l3 = 18;
    }
    let (l4, v6, proto) = match etype {
        ETHERTYPE_IPV4 => {
            let vihl = *f.get(l3)?;
            let ihl = usize::from(vihl & 0xf) * 4;
            if vihl >> 4 != 4 || ihl < 20 {
                return None;
            }
            (l3 + ihl, false, *f.get(l3 + 9)?)
        }
        ETHERTYPE_IPV6 => (l3 + 40, true, *f.get(l3 + 6)?),
        _ => return None,
    };
    let proto = match proto {
        IPPROTO_TCP if f.len() >= l4 + 20 => Some(L4::Tcp),
        IPPROTO_UDP if f.len() >= l4 + 8 => Some(L4::Udp),
        _ => None,
    };
    if f.len() < l4 {
        return None;
    }
    Some(Headers { l3, l4, v6, proto })
}

/// The `csum_flags` bit that says "this L4 checksum" for a parsed frame.
pub fn l4_csum_flag(h: &Headers) -> u32 {
    match (h.proto, h.v6) {
        (Some(L4::Tcp), false) => sys::M_CSUM_TCPv4,
        (Some(L4::Udp), false) => sys::M_CSUM_UDPv4,
        (Some(L4::Tcp), true) => sys::M_CSUM_TCPv6,
        (Some(L4::Udp), true) => sys::M_CSUM_UDPv6,
        (None, _) => 0,
    }
}

/// Every L4 checksum request bit.
pub const M_CSUM_L4: u32 =
    sys::M_CSUM_TCPv4 | sys::M_CSUM_UDPv4 | sys::M_CSUM_TCPv6 | sys::M_CSUM_UDPv6;

/// Ones-complement sum of `data` (RFC 1071), folded to 16 bits, not inverted.
pub fn ones_sum(data: &[u8], mut acc: u32) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Completes a partial checksum (§5.1.6.2): sums `frame[start..]` (whose
/// checksum field holds the pseudo-header sum) and stores the complement at
/// `start + offset`. False, with nothing changed, if the offsets do not fit.
pub fn complete_checksum(frame: &mut [u8], start: usize, offset: usize) -> bool {
    let at = start + offset;
    if start >= frame.len() || at + 2 > frame.len() {
        return false;
    }
    let mut sum = !ones_sum(&frame[start..], 0);
    if sum == 0 && offset == 6 {
        // UDP sends a computed 0 as 0xffff: 0 means "no checksum" (RFC 768).
        sum = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Fills in an IPv4 header checksum (virtio has no offload for it).
pub fn ipv4_header_checksum(frame: &mut [u8], l3: usize) -> bool {
    let Some(&vihl) = frame.get(l3) else {
        return false;
    };
    let ihl = usize::from(vihl & 0xf) * 4;
    if ihl < 20 || frame.len() < l3 + ihl {
        return false;
    }
    frame[l3 + 10] = 0;
    frame[l3 + 11] = 0;
    let sum = !ones_sum(&frame[l3..l3 + ihl], 0);
    frame[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Whether a destination address is multicast (or broadcast).
pub fn is_multicast(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn header_layout_is_pinned() {
        assert_eq!(size_of::<NetHdr>(), NET_HDR_LEN);
        assert_eq!(offset_of!(NetHdr, csum_start), 6);
        assert_eq!(offset_of!(NetHdr, csum_offset), 8);
        assert_eq!(offset_of!(NetHdr, num_buffers), 10);
        let h = NetHdr::needs_csum(34, 16);
        let b = h.to_bytes();
        assert_eq!(b, [1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0]);
        assert_eq!(NetHdr::from_bytes(&b), Some(h));
        assert_eq!(NetHdr::from_bytes(&b[..11]), None);
    }

    #[test]
    fn feature_and_config_values() {
        assert_eq!(feature::MQ, 22);
        assert_eq!(feature::CTRL_RX, 18);
        assert_eq!(feature::STATUS, 16);
        assert_eq!(config::STATUS, 6);
        assert_eq!(config::MAX_VIRTQUEUE_PAIRS, 8);
    }

    #[test]
    fn mac_table_encoding() {
        let mut out = [0u8; 64];
        let groups = [[1, 0, 0x5e, 1, 2, 3], [0x33, 0x33, 0, 0, 0, 1]];
        let n = encode_mac_table(&groups, &mut out).unwrap();
        assert_eq!(n, 20);
        assert_eq!(&out[..8], &[0, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&out[8..14], &groups[0]);
        assert_eq!(&out[14..20], &groups[1]);
        assert!(encode_mac_table(&groups, &mut out[..19]).is_none());
    }

    /// An IPv4/UDP frame: 10.0.0.1:1000 -> 10.0.0.2:2000, payload "hello!".
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 6];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&34u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let udp = &mut f[34..42];
        udp[0..2].copy_from_slice(&1000u16.to_be_bytes());
        udp[2..4].copy_from_slice(&2000u16.to_be_bytes());
        udp[4..6].copy_from_slice(&14u16.to_be_bytes());
        f[42..].copy_from_slice(b"hello!");
        f
    }

    /// Pseudo-header sum for the frame above (src, dst, proto 17, length 14).
    fn pseudo(f: &[u8]) -> u16 {
        let mut p = Vec::new();
        p.extend_from_slice(&f[26..34]);
        p.extend_from_slice(&[0, 17, 0, 14]);
        ones_sum(&p, 0)
    }

    #[test]
    fn partial_checksum_completes_to_a_valid_one() {
        let mut f = udp_frame();
        let h = parse_headers(&f).unwrap();
        assert_eq!(
            h,
            Headers {
                l3: 14,
                l4: 34,
                v6: false,
                proto: Some(L4::Udp)
            }
        );
        assert_eq!(l4_csum_flag(&h), sys::M_CSUM_UDPv4);
        let ps = pseudo(&f);
        f[40..42].copy_from_slice(&ps.to_be_bytes());
        assert!(complete_checksum(&mut f, 34, 6));
        // A valid checksum sums (with the pseudo header) to 0xffff.
        let total = ones_sum(&f[34..], u32::from(pseudo(&f)));
        assert_eq!(total, 0xffff);
        assert!(ipv4_header_checksum(&mut f, 14));
        assert_eq!(ones_sum(&f[14..34], 0), 0xffff);
        assert!(!complete_checksum(&mut f, 47, 6));
    }

    #[test]
    fn header_parsing_refuses_what_it_cannot_place() {
        assert!(parse_headers(&[0u8; 10]).is_none());
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(parse_headers(&arp).is_none());
        let mut f = udp_frame();
        f[14] = 0x43; // IHL 12 bytes: invalid
        assert!(parse_headers(&f).is_none());
        // VLAN-tagged IPv6/TCP.
        let mut v = vec![0u8; 18 + 40 + 20];
        v[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        v[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
        v[18 + 6] = 6;
        let h = parse_headers(&v).unwrap();
        assert_eq!((h.l4, h.v6, h.proto), (58, true, Some(L4::Tcp)));
        assert_eq!(l4_csum_flag(&h), sys::M_CSUM_TCPv6);
    }
}
