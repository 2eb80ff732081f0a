//! devn-ne2000's multicast hash filter, checked on the host against the
//! CRC's definition (the chip itself is proven in the lab, docs/lab.md).
//!
//! The DP8390 indexes its 64-bit filter (MAR0-7) by the six most
//! significant bits of the Ethernet CRC register after the destination
//! address, not complemented. The reference below derives that from the
//! standard (reflected) CRC-32 of IEEE 802.3 alone: the reflected
//! register is the bit reversal of the chip's MSB-first register, and the
//! standard CRC is that register complemented.

use pktkit_shim::drivers;

type HashFn = unsafe extern "C" fn(*const [u8; 6]) -> u32;
type FilterFn = unsafe extern "C" fn(*const [u8; 6], u32, *mut [u8; 8]);

/// The standard CRC-32 (IEEE 802.3, reflected, preset and final
/// complement), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The DP8390 hash of `addr` from the standard CRC: undo the final
/// complement, turn the reflected register into the MSB-first one, keep
/// its top six bits.
fn reference_hash(addr: &[u8; 6]) -> u32 {
    (!crc32(addr)).reverse_bits() >> 26
}

struct Hooks {
    hash: HashFn,
    filter: FilterFn,
    _lib: libloading::Library,
}

fn hooks() -> Hooks {
    // SAFETY: the test build of devn-ne2000 has no ELF constructors; the
    // symbols are the C functions with the types declared above.
    unsafe {
        let lib = libloading::Library::new(drivers::DEVN_NE2000_HOOKS).expect("hooks build");
        let hash = *lib.get::<HashFn>(b"ne_test_mcast_hash\0").expect("hash");
        let filter = *lib
            .get::<FilterFn>(b"ne_test_mcast_filter\0")
            .expect("filter");
        Hooks {
            hash,
            filter,
            _lib: lib,
        }
    }
}

impl Hooks {
    fn hash(&self, addr: [u8; 6]) -> u32 {
        // SAFETY: reads the 6 bytes of `addr`.
        unsafe { (self.hash)(&addr) }
    }

    fn filter(&self, groups: &[[u8; 6]]) -> [u8; 8] {
        let mut mar = [0xa5u8; 8];
        // SAFETY: `groups.len()` addresses, and 8 bytes of output.
        unsafe { (self.filter)(groups.as_ptr(), groups.len() as u32, &mut mar) };
        mar
    }
}

#[test]
fn the_reference_crc_is_the_standard_one() {
    // The CRC-32 check value of the catalogue ("123456789").
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
}

#[test]
fn hash_of_known_groups() {
    let h = hooks();
    // Values from the standard CRC-32 of each address (e.g. zlib's
    // crc32(01:00:5e:7f:12:34) = 0x57a1a19c: complemented 0xa85e5e63,
    // reversed 0xc67a7a15, top six bits 110001 = 49).
    let known = [
        ([0x01, 0x00, 0x5e, 0x7f, 0x12, 0x34], 49), // the suite's group
        ([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01], 31), // IPv4 all-hosts
        ([0x33, 0x33, 0x00, 0x00, 0x00, 0x01], 62), // IPv6 all-nodes
        ([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb], 15), // mDNS
        ([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00], 25), // 802.1D STP
        ([0xff; 6], 63),
    ];
    for (addr, want) in known {
        assert_eq!(reference_hash(&addr), want, "reference for {addr:02x?}");
        assert_eq!(h.hash(addr), want, "driver for {addr:02x?}");
    }
}

/// A published table for the same hash (six most significant bits of the
/// CRC over the destination address; the top three pick the register):
/// SMSC's LAN91C96 datasheet, "HASH VALUE" examples.
#[test]
fn hash_matches_a_published_table() {
    let h = hooks();
    for (addr, want) in [
        ([0xed, 0, 0, 0, 0, 0], 0),  // MT-0 bit 0
        ([0x0d, 0, 0, 0, 0, 0], 16), // MT-2 bit 0
        ([0x01, 0, 0, 0, 0, 0], 39), // MT-4 bit 7
        ([0x2f, 0, 0, 0, 0, 0], 63), // MT-7 bit 7
    ] {
        assert_eq!(reference_hash(&addr), want, "reference for {addr:02x?}");
        assert_eq!(h.hash(addr), want, "driver for {addr:02x?}");
    }
}

#[test]
fn hash_agrees_with_the_crc_over_many_addresses() {
    let h = hooks();
    let mut seen = [false; 64];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..4096 {
        // xorshift: deterministic, spread over every byte.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        let addr = [b[0] | 1, b[1], b[2], b[3], b[4], b[5]];
        let got = h.hash(addr);
        assert_eq!(got, reference_hash(&addr), "{addr:02x?}");
        seen[got as usize] = true;
    }
    assert!(seen.iter().all(|&s| s), "every bucket reached");
}

#[test]
fn filter_sets_one_bit_per_group_and_nothing_else() {
    let h = hooks();
    assert_eq!(h.filter(&[]), [0; 8], "no group: every multicast filtered");
    let group = [0x01, 0x00, 0x5e, 0x7f, 0x12, 0x34];
    // Bit 49: MAR6 (49 / 8), bit 1 (49 % 8).
    assert_eq!(h.filter(&[group]), [0, 0, 0, 0, 0, 0, 0x02, 0]);
    let groups = [
        group,
        [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
        [0x33, 0x33, 0x00, 0x00, 0x00, 0x01],
    ];
    let mut want = [0u8; 8];
    for g in &groups {
        let b = reference_hash(g);
        want[(b / 8) as usize] |= 1 << (b % 8);
    }
    assert_eq!(h.filter(&groups), want);
    assert_eq!(want.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
}
