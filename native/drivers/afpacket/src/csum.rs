//! Completing checksums a local sender left to offload.
//!
//! A frame sent by the Linux host itself (e.g. a peer on the other end of a
//! veth) is captured before any device computed its TCP/UDP checksum; the
//! kernel flags it TP_STATUS_CSUMNOTREADY and the checksum field holds only
//! the pseudo-header sum. Such a frame would fail every receiver's check, so
//! the driver computes the real checksum into the copy it hands up.
//! Parsing is bounds-checked throughout; a frame it does not understand is
//! left as it is.

const ETH_HDR: usize = 14;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Adds `data` to a ones'-complement running sum (RFC 1071).
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Computes the TCP or UDP checksum of an Ethernet frame in place. Returns
/// whether it did (false: not IPv4/IPv6 + TCP/UDP, or truncated).
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    let Some(et) = frame.get(12..14) else {
        return false;
    };
    let mut l3 = ETH_HDR;
    let mut ethertype = u16::from_be_bytes([et[0], et[1]]);
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        let Some(inner) = frame.get(16..18) else {
            return false;
        };
        ethertype = u16::from_be_bytes([inner[0], inner[1]]);
        l3 += 4;
    }
    let (proto, l4, l4_len, pseudo) = match ethertype {
        0x0800 => {
            let Some(ip) = frame.get(l3..l3 + 20) else {
                return false;
            };
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if ihl < 20 || total < ihl || l3 + total > frame.len() {
                return false;
            }
            let l4_len = total - ihl;
            let mut p = sum(0, &ip[12..20]);
            p += u32::from(ip[9]) + l4_len as u32;
            (ip[9], l3 + ihl, l4_len, p)
        }
        0x86dd => {
            let Some(ip) = frame.get(l3..l3 + 40) else {
                return false;
            };
            let l4_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if l3 + 40 + l4_len > frame.len() {
                return false;
            }
            let mut p = sum(0, &ip[8..40]);
            p += u32::from(ip[6]) + l4_len as u32;
            (ip[6], l3 + 40, l4_len, p)
        }
        _ => return false,
    };
    let field = match proto {
        IPPROTO_TCP if l4_len >= 20 => l4 + 16,
        IPPROTO_UDP if l4_len >= 8 => l4 + 6,
        _ => return false,
    };
    frame[field] = 0;
    frame[field + 1] = 0;
    let mut c = !fold(sum(pseudo, &frame[l4..l4 + l4_len]));
    if proto == IPPROTO_UDP && c == 0 {
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP/IPv4 frame whose checksum a receiver verifies to zero.
    #[test]
    fn completes_udp_over_ipv4_and_verifies() {
        let mut f = vec![0u8; 14 + 20 + 8 + 5];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&33u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
        ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
        let udp = &mut f[34..];
        udp[0..2].copy_from_slice(&1234u16.to_be_bytes());
        udp[2..4].copy_from_slice(&7u16.to_be_bytes());
        udp[4..6].copy_from_slice(&13u16.to_be_bytes());
        udp[8..].copy_from_slice(b"hello");
        assert!(complete_l4_checksum(&mut f));
        // Verify: the sum over pseudo header and segment folds to 0xffff.
        let mut p = sum(0, &f[26..34]) + u32::from(IPPROTO_UDP) + 13;
        p = sum(p, &f[34..]);
        assert_eq!(fold(p), 0xffff);
    }

    #[test]
    fn leaves_other_frames_alone() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        let before = arp.clone();
        assert!(!complete_l4_checksum(&mut arp));
        assert_eq!(arp, before);
        let mut short = vec![0u8; 20];
        short[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert!(!complete_l4_checksum(&mut short));
    }
}
