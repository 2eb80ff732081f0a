//! Register offsets and bit fields, with their datasheet references.
//!
//! "SDM" is the PCI/PCI-X Family of Gigabit Ethernet Controllers Software
//! Developer's Manual (8254x, rev. 4.0), whose register summary is table
//! 13-2 and whose register descriptions are section 13.4. "82574" is the
//! Intel 82574 GbE Controller Family datasheet (rev. 3.x), section 10.

/// A register: its byte offset in BAR0 (memory-mapped, 32 bits wide).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg(pub u32);

impl Reg {
    /// Device Control (SDM 13.4.1).
    pub const CTRL: Reg = Reg(0x0000);
    /// Device Status (SDM 13.4.2).
    pub const STATUS: Reg = Reg(0x0008);
    /// EEPROM/Flash Control (SDM 13.4.3).
    pub const EECD: Reg = Reg(0x0010);
    /// EEPROM Read (SDM 13.4.4; 82574 10.2.2.6 has another layout).
    pub const EERD: Reg = Reg(0x0014);
    /// Extended Device Control (SDM 13.4.6).
    pub const CTRL_EXT: Reg = Reg(0x0018);
    /// Flow Control Address Low (SDM 13.4.9).
    pub const FCAL: Reg = Reg(0x0028);
    /// Flow Control Address High (SDM 13.4.10).
    pub const FCAH: Reg = Reg(0x002C);
    /// Flow Control Type (SDM 13.4.11).
    pub const FCT: Reg = Reg(0x0030);
    /// VLAN Ether Type (SDM 13.4.12).
    pub const VET: Reg = Reg(0x0038);
    /// Interrupt Cause Read (SDM 13.4.17).
    pub const ICR: Reg = Reg(0x00C0);
    /// Interrupt Throttling (SDM 13.4.18).
    pub const ITR: Reg = Reg(0x00C4);
    /// Interrupt Mask Set/Read (SDM 13.4.20).
    pub const IMS: Reg = Reg(0x00D0);
    /// Interrupt Mask Clear (SDM 13.4.21).
    pub const IMC: Reg = Reg(0x00D8);
    /// Interrupt Vector Allocation, 82574 only (82574 10.2.4.9).
    pub const IVAR: Reg = Reg(0x00E4);
    /// Receive Control (SDM 13.4.22).
    pub const RCTL: Reg = Reg(0x0100);
    /// Flow Control Transmit Timer Value (SDM 13.4.23).
    pub const FCTTV: Reg = Reg(0x0170);
    /// Transmit Control (SDM 13.4.33).
    pub const TCTL: Reg = Reg(0x0400);
    /// Transmit Inter Packet Gap (SDM 13.4.34).
    pub const TIPG: Reg = Reg(0x0410);
    /// Receive Descriptor Base Address Low (SDM 13.4.27).
    pub const RDBAL: Reg = Reg(0x2800);
    /// Receive Descriptor Base Address High (SDM 13.4.28).
    pub const RDBAH: Reg = Reg(0x2804);
    /// Receive Descriptor Length (SDM 13.4.29).
    pub const RDLEN: Reg = Reg(0x2808);
    /// Receive Descriptor Head (SDM 13.4.30).
    pub const RDH: Reg = Reg(0x2810);
    /// Receive Descriptor Tail (SDM 13.4.31).
    pub const RDT: Reg = Reg(0x2818);
    /// Receive Delay Timer (SDM 13.4.32).
    pub const RDTR: Reg = Reg(0x2820);
    /// Receive Interrupt Absolute Delay Timer (SDM 13.4.33a, 82540 and later).
    pub const RADV: Reg = Reg(0x282C);
    /// Transmit Descriptor Base Address Low (SDM 13.4.38).
    pub const TDBAL: Reg = Reg(0x3800);
    /// Transmit Descriptor Base Address High (SDM 13.4.39).
    pub const TDBAH: Reg = Reg(0x3804);
    /// Transmit Descriptor Length (SDM 13.4.40).
    pub const TDLEN: Reg = Reg(0x3808);
    /// Transmit Descriptor Head (SDM 13.4.41).
    pub const TDH: Reg = Reg(0x3810);
    /// Transmit Descriptor Tail (SDM 13.4.42).
    pub const TDT: Reg = Reg(0x3818);
    /// Transmit Interrupt Delay Value (SDM 13.4.43).
    pub const TIDV: Reg = Reg(0x3820);

    /// Multicast Table Array entry `n` of 128 (SDM 13.4.51).
    pub const fn mta(n: u32) -> Reg {
        Reg(0x5200 + 4 * n)
    }

    /// Receive Address Low of entry `n` of 16 (SDM 13.4.52).
    pub const fn ral(n: u32) -> Reg {
        Reg(0x5400 + 8 * n)
    }

    /// Receive Address High of entry `n` of 16 (SDM 13.4.53).
    pub const fn rah(n: u32) -> Reg {
        Reg(0x5404 + 8 * n)
    }

    /// Extended Interrupt Throttle of MSI-X vector `n` of 5, 82574 only
    /// (82574 10.2.4.13).
    pub const fn eitr(n: u32) -> Reg {
        Reg(0x00E8 + 4 * n)
    }
}

/// Entries of the Multicast Table Array.
pub const MTA_ENTRIES: u32 = 128;
/// Receive Address entries (0 is the station address).
pub const RAR_ENTRIES: u32 = 16;

/// CTRL bits (SDM 13.4.1, table 13-3).
pub mod ctrl {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Link reset.
    pub const LRST: u32 = 1 << 3;
    /// Auto-speed detection enable.
    pub const ASDE: u32 = 1 << 5;
    /// Set link up.
    pub const SLU: u32 = 1 << 6;
    /// Invert loss-of-signal.
    pub const ILOS: u32 = 1 << 7;
    /// Force speed.
    pub const FRCSPD: u32 = 1 << 11;
    /// Force duplex.
    pub const FRCDPLX: u32 = 1 << 12;
    /// Device (global) reset; self-clearing.
    pub const RST: u32 = 1 << 26;
    /// Receive flow control enable.
    pub const RFCE: u32 = 1 << 27;
    /// Transmit flow control enable.
    pub const TFCE: u32 = 1 << 28;
    /// VLAN mode enable.
    pub const VME: u32 = 1 << 30;
    /// PHY reset.
    pub const PHY_RST: u32 = 1 << 31;
}

/// STATUS bits (SDM 13.4.2, table 13-5).
pub mod status {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Link up.
    pub const LU: u32 = 1 << 1;
    /// Speed: bits 7:6 (00 10 Mb/s, 01 100 Mb/s, 1x 1000 Mb/s).
    pub const SPEED_SHIFT: u32 = 6;
    /// Mask of the speed field after shifting.
    pub const SPEED_MASK: u32 = 0b11;
}

/// EECD bits (SDM 13.4.3; 82574 10.2.2.4).
pub mod eecd {
    /// EEPROM auto-read done (82574; the 8254x completes it within reset).
    pub const AUTO_RD: u32 = 1 << 9;
}

/// EERD layouts: the 8254x (SDM 13.4.4) and the 82574 (82574 10.2.2.6).
pub mod eerd {
    /// Start a read.
    pub const START: u32 = 1 << 0;
    /// 8254x: read done.
    pub const DONE_8254X: u32 = 1 << 4;
    /// 8254x: word address at bits 15:8.
    pub const ADDR_SHIFT_8254X: u32 = 8;
    /// 82574: read done.
    pub const DONE_82574: u32 = 1 << 1;
    /// 82574: word address at bits 15:2.
    pub const ADDR_SHIFT_82574: u32 = 2;
    /// Data at bits 31:16 in both.
    pub const DATA_SHIFT: u32 = 16;
}

/// CTRL_EXT bits (SDM 13.4.6; 82574 10.2.2.5).
pub mod ctrl_ext {
    /// 82574: enable MSI-X auto-masking by EIAC/IAM.
    pub const EIAME: u32 = 1 << 24;
    /// 82574: interrupt acknowledge auto-mask enable.
    pub const IAME: u32 = 1 << 27;
    /// 82574: MSI-X pending bit array support (must be set in MSI-X mode).
    pub const PBA_SUPPORT: u32 = 1 << 31;
}

/// Interrupt cause bits, shared by ICR, ICS, IMS and IMC (SDM 13.4.17,
/// table 13-70; 82574 10.2.4.1 adds the per-queue MSI-X causes).
pub mod int {
    /// Transmit descriptor written back.
    pub const TXDW: u32 = 1 << 0;
    /// Link status change.
    pub const LSC: u32 = 1 << 2;
    /// Receive descriptor minimum threshold reached.
    pub const RXDMT0: u32 = 1 << 4;
    /// Receiver overrun.
    pub const RXO: u32 = 1 << 6;
    /// Receiver timer interrupt (a frame was stored).
    pub const RXT0: u32 = 1 << 7;
    /// 82574, MSI-X mode: receive queue 0.
    pub const RXQ0: u32 = 1 << 20;
    /// 82574, MSI-X mode: transmit queue 0.
    pub const TXQ0: u32 = 1 << 22;
    /// 82574, MSI-X mode: other causes (link status change...).
    pub const OTHER: u32 = 1 << 24;
    /// Every cause.
    pub const ALL: u32 = 0xFFFF_FFFF;
}

/// IVAR fields, 82574 only (82574 10.2.4.9): 4 bits per cause, a 3-bit
/// MSI-X vector number and a valid bit.
pub mod ivar {
    /// Valid bit of one 4-bit entry.
    pub const VALID: u32 = 1 << 3;
    /// Shift of the receive queue 0 entry.
    pub const RXQ0_SHIFT: u32 = 0;
    /// Shift of the transmit queue 0 entry.
    pub const TXQ0_SHIFT: u32 = 8;
    /// Shift of the other-causes entry.
    pub const OTHER_SHIFT: u32 = 16;
}

/// RCTL bits (SDM 13.4.22, table 13-67).
pub mod rctl {
    /// Receiver enable.
    pub const EN: u32 = 1 << 1;
    /// Store bad packets.
    pub const SBP: u32 = 1 << 2;
    /// Unicast promiscuous.
    pub const UPE: u32 = 1 << 3;
    /// Multicast promiscuous.
    pub const MPE: u32 = 1 << 4;
    /// Long packet enable (frames up to 16384 bytes).
    pub const LPE: u32 = 1 << 5;
    /// Receive descriptor minimum threshold: 1/2 of RDLEN (bits 9:8 = 00).
    pub const RDMTS_HALF: u32 = 0 << 8;
    /// Broadcast accept mode.
    pub const BAM: u32 = 1 << 15;
    /// Buffer size 2048 bytes (BSIZE bits 17:16 = 00, BSEX = 0).
    pub const BSIZE_2048: u32 = 0 << 16;
    /// Strip the Ethernet CRC from received frames.
    pub const SECRC: u32 = 1 << 26;
}

/// TCTL bits (SDM 13.4.33, table 13-76).
pub mod tctl {
    /// Transmit enable.
    pub const EN: u32 = 1 << 1;
    /// Pad short packets.
    pub const PSP: u32 = 1 << 3;
    /// Collision threshold, bits 11:4.
    pub const CT_SHIFT: u32 = 4;
    /// Collision threshold recommended value (16 retries).
    pub const CT_DEFAULT: u32 = 0x0F;
    /// Collision distance, bits 21:12.
    pub const COLD_SHIFT: u32 = 12;
    /// Collision distance for full duplex (64 byte times).
    pub const COLD_FULL_DUPLEX: u32 = 0x40;
    /// Re-transmit on late collision.
    pub const RTLC: u32 = 1 << 24;
}

/// TIPG fields (SDM 13.4.34, table 13-77), copper values.
pub mod tipg {
    /// IPG transmit time, bits 9:0 (10 for IEEE 802.3 on 8254x copper).
    pub const IPGT: u32 = 10;
    /// IPG receive time 1, bits 19:10 (2/3 of IPGR2).
    pub const IPGR1: u32 = 8;
    /// IPG receive time 2, bits 29:20.
    pub const IPGR2: u32 = 6;
    /// The register value.
    pub const VALUE: u32 = IPGT | (IPGR1 << 10) | (IPGR2 << 20);
}

/// RAH bits (SDM 13.4.53).
pub mod rah {
    /// Address valid.
    pub const AV: u32 = 1 << 31;
}

/// PCI configuration space (PCI Local Bus 3.0, section 6.2).
pub mod pci {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u16 = 0x04;
    /// Command: memory space enable.
    pub const CMD_MEMORY: u32 = 1 << 1;
    /// Command: bus master enable (the device may DMA).
    pub const CMD_BUS_MASTER: u32 = 1 << 2;
    /// Command: INTx emulation disable.
    pub const CMD_INTX_DISABLE: u32 = 1 << 10;
    /// Intel's vendor ID.
    pub const VENDOR_INTEL: u16 = 0x8086;
}

/// Statistics registers (SDM 13.4.58 onward; all clear on read), named as
/// in the SDM, reported in `DeviceCounters::extra`. 64-bit counters are a
/// low/high pair read low first.
pub const STATS: &[(&str, Reg)] = &[
    ("crcerrs", Reg(0x4000)),
    ("algnerrc", Reg(0x4004)),
    ("symerrs", Reg(0x4008)),
    ("rxerrc", Reg(0x400C)),
    ("mpc", Reg(0x4010)),
    ("scc", Reg(0x4014)),
    ("ecol", Reg(0x4018)),
    ("mcc", Reg(0x401C)),
    ("latecol", Reg(0x4020)),
    ("colc", Reg(0x4028)),
    ("dc", Reg(0x4030)),
    ("sec", Reg(0x4038)),
    ("rlec", Reg(0x4040)),
    ("xonrxc", Reg(0x4048)),
    ("xontxc", Reg(0x404C)),
    ("xoffrxc", Reg(0x4050)),
    ("xofftxc", Reg(0x4054)),
    ("gprc", Reg(0x4074)),
    ("bprc", Reg(0x4078)),
    ("mprc", Reg(0x407C)),
    ("gptc", Reg(0x4080)),
    ("rnbc", Reg(0x40A0)),
    ("ruc", Reg(0x40A4)),
    ("rfc", Reg(0x40A8)),
    ("roc", Reg(0x40AC)),
    ("rjc", Reg(0x40B0)),
    ("tpr", Reg(0x40D0)),
    ("tpt", Reg(0x40D4)),
    ("mptc", Reg(0x40F0)),
    ("bptc", Reg(0x40F4)),
];

/// 64-bit statistics (low register; the high one follows at +4).
pub const STATS64: &[(&str, Reg)] = &[
    ("gorc", Reg(0x4088)),
    ("gotc", Reg(0x4090)),
    ("tor", Reg(0x40C0)),
    ("tot", Reg(0x40C8)),
];

/// Index of "colc" in [`STATS`] (it also feeds `DeviceCounters::collisions`).
pub const STAT_COLC: usize = 9;

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets against SDM table 13-2 and the 82574 register summary.
    #[test]
    fn offsets_match_the_datasheets() {
        assert_eq!(Reg::CTRL.0, 0x0);
        assert_eq!(Reg::STATUS.0, 0x8);
        assert_eq!(Reg::ICR.0, 0xC0);
        assert_eq!(Reg::IMS.0, 0xD0);
        assert_eq!(Reg::IMC.0, 0xD8);
        assert_eq!(Reg::IVAR.0, 0xE4);
        assert_eq!(Reg::RCTL.0, 0x100);
        assert_eq!(Reg::TCTL.0, 0x400);
        assert_eq!(Reg::RDT.0, 0x2818);
        assert_eq!(Reg::TDT.0, 0x3818);
        assert_eq!(Reg::mta(127).0, 0x53FC);
        assert_eq!(Reg::ral(0).0, 0x5400);
        assert_eq!(Reg::rah(15).0, 0x547C);
        assert_eq!(Reg::eitr(4).0, 0xF8);
        assert_eq!(STATS[STAT_COLC].0, "colc");
    }

    #[test]
    fn composite_values() {
        assert_eq!(tipg::VALUE, 0x0060_200A);
        assert_eq!(int::RXT0 | int::RXQ0, 0x0010_0080);
        assert_eq!(rctl::SECRC, 0x0400_0000);
        assert_eq!(ctrl::RST, 0x0400_0000);
        // Every register is dword aligned and inside the 128 KiB BAR.
        for (_, r) in STATS.iter().chain(STATS64) {
            assert_eq!(r.0 % 4, 0);
            assert!(r.0 < 0x2_0000);
        }
    }
}
