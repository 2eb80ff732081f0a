//! The MII layer's choice of PHY driver and what each driver makes of its
//! PHY's registers. The ids and negotiated values are those QEMU's PHYs
//! show (the i8255x's i82555 in hw/net/eepro100.c, the RTL8139's internal
//! PHY in hw/net/rtl8139.c); the cases QEMU cannot produce (a partner that
//! does not negotiate) follow the chips' documented registers. The devices
//! themselves are proven in the lab (`cargo xtask lab --suite`).

use std::cell::RefCell;
use std::ffi::{c_int, CStr, CString};
use std::ptr;

use pktkit_bsd::sys;

/// The PHY at address 1 of the bus under test: its 32 registers, and the
/// MAC's media status register rtk hands through at 0x58.
struct Bus {
    regs: [u16; 32],
    mediastat: u16,
}

thread_local! {
    static BUS: RefCell<Bus> = const { RefCell::new(Bus { regs: [0; 32], mediastat: 0 }) };
}

const PHY: c_int = 1;

unsafe extern "C" fn readreg(_dev: sys::device_t, phy: c_int, reg: c_int, val: *mut u16) -> c_int {
    if phy != PHY {
        return libc::ENXIO;
    }
    let v = BUS.with(|b| {
        let b = b.borrow();
        match reg {
            0..=31 => b.regs[reg as usize],
            0x58 => b.mediastat,
            _ => 0,
        }
    });
    // SAFETY: the MII layer passes a place for the value.
    unsafe { *val = v };
    0
}

unsafe extern "C" fn writereg(_dev: sys::device_t, phy: c_int, reg: c_int, val: u16) -> c_int {
    if phy != PHY || !(0..32).contains(&reg) {
        return libc::ENXIO;
    }
    // BMCR_RESET completes at once.
    let val = if reg == 0 { val & !0x8000 } else { val };
    BUS.with(|b| b.borrow_mut().regs[reg as usize] = val);
    0
}

unsafe extern "C" fn media_change(_ifp: *mut sys::ifnet) -> c_int {
    0
}

unsafe extern "C" fn media_status(_ifp: *mut sys::ifnet, _req: *mut sys::ifmediareq) {}

/// Attaches the MII of a MAC named `mac` to a bus with `regs` and
/// `mediastat`; returns the PHY driver's device name and the resolved
/// media word and status.
fn attach(mac: &str, regs: &[(usize, u16)], mediastat: u16) -> (String, c_int, c_int) {
    BUS.with(|b| {
        let mut b = b.borrow_mut();
        b.regs = [0; 32];
        for &(r, v) in regs {
            b.regs[r] = v;
        }
        b.mediastat = mediastat;
    });
    let name = CString::new(mac).unwrap();
    let mut parent = sys::device::default();
    for (d, s) in parent.dv_xname.iter_mut().zip(format!("{mac}0").bytes()) {
        *d = s as _;
    }
    parent.dv_cfdata.cf_name = name.as_ptr();
    let mut mii = Box::new(sys::mii_data::default());
    mii.mii_readreg = Some(readreg);
    mii.mii_writereg = Some(writereg);
    // SAFETY: a live, zeroed mii_data with its callbacks; the parent device
    // outlives the MII (detached below).
    unsafe {
        sys::ifmedia_init(
            &mut mii.mii_media,
            0,
            Some(media_change),
            Some(media_status),
        );
        sys::mii_attach(&mut parent, &mut *mii, -1, -1, -1, 0);
        let phy = mii.mii_phys.lh_first;
        assert!(!phy.is_null(), "{mac}: no PHY attached");
        let dev = (*phy).mii_dev;
        assert_eq!(
            (*dev).dv_parent,
            ptr::addr_of_mut!(parent),
            "the PHY is the MAC's child"
        );
        let phy_name = CStr::from_ptr((*dev).dv_xname.as_ptr())
            .to_string_lossy()
            .into_owned();
        sys::mii_pollstat(&mut *mii);
        let media = (mii.mii_media_active, mii.mii_media_status);
        sys::mii_detach(&mut *mii, -1, -1);
        assert!(mii.mii_phys.lh_first.is_null(), "detached");
        sys::ifmedia_fini(&mut mii.mii_media);
        (phy_name, media.0, media.1)
    }
}

const ETHER_100_TX: c_int = (sys::IFM_ETHER | sys::IFM_100_TX) as c_int;
const FDX: c_int = sys::IFM_FDX as c_int;
const HDX: c_int = sys::IFM_HDX as c_int;
const UP: c_int = (sys::IFM_AVALID | sys::IFM_ACTIVE) as c_int;

#[test]
fn the_i82555_gets_inphy_which_reads_its_resolved_media() {
    // QEMU's i82559 PHY (ids 0x02a8/0x0154): negotiated with a partner
    // that offers everything (ANLPAR 0x05e1, BMSR with ACOMP, as QEMU's
    // reads show it after the first): the standard registers decide.
    let negotiated = [
        (0, 0x3000),
        (1, 0x782d),
        (2, 0x02a8),
        (3, 0x0154),
        (4, 0x05e1),
        (5, 0x05e1),
    ];
    let (name, active, status) = attach("fxp", &negotiated, 0);
    assert!(name.starts_with("inphy"), "{name}");
    assert_eq!((active, status), (ETHER_100_TX | FDX, UP), "{active:#x}");
    // Completed by parallel detection (ACOMP, nothing in ANLPAR): the
    // i82555's SCR says 100 Mbit/s full duplex.
    let detected = [
        (0, 0x3000),
        (1, 0x782d),
        (2, 0x02a8),
        (3, 0x0154),
        (4, 0x05e1),
        (16, 0x0003),
    ];
    let (_, active, status) = attach("fxp", &detected, 0);
    assert_eq!((active, status), (ETHER_100_TX | FDX, UP), "{active:#x}");
    // Still negotiating (no ACOMP): no media yet, whatever SCR holds.
    let mut negotiating = detected;
    negotiating[1] = (1, 0x780d);
    let (_, active, _) = attach("fxp", &negotiating, 0);
    assert_eq!(
        active,
        (sys::IFM_ETHER | sys::IFM_NONE) as c_int,
        "{active:#x}"
    );
    // The generic driver cannot tell: the same PHY under another id.
    let mut other = detected;
    other[2] = (2, 0x0141);
    let (name, active, _) = attach("fxp", &other, 0);
    assert!(name.starts_with("ukphy"), "{name}");
    assert_eq!(
        active,
        (sys::IFM_ETHER | sys::IFM_NONE) as c_int,
        "{active:#x}"
    );
}

#[test]
fn a_detached_phy_gives_its_unit_back() {
    let regs = [(0, 0x1000), (1, 0x782d), (4, 0x05e1), (5, 0x05e1)];
    // Other tests attach at the same time, so a few units may be in use at
    // once; a unit never given back would climb past them.
    for _ in 0..50 {
        let name = attach("rtk", &regs, 0).0;
        let unit: u32 = name.trim_start_matches("rlphy").parse().expect(&name);
        assert!(unit < 8, "{name}: units are not given back");
    }
}

#[test]
fn the_rtl8139_phy_gets_rlphy_under_rtk_only() {
    // QEMU's RTL8139: no id, negotiation complete, both ends all modes.
    let regs = [(0, 0x1000), (1, 0x782d), (4, 0x05e1), (5, 0x05e1)];
    let (name, active, status) = attach("rtk", &regs, 0);
    assert!(name.starts_with("rlphy"), "{name}");
    assert_eq!((active, status), (ETHER_100_TX | FDX, UP));
    // A partner that does not negotiate: the MAC's media status says.
    let quiet = [(0, 0x1000), (1, 0x782d), (4, 0x05e1)];
    let (_, active, _) = attach("rtk", &quiet, 0x00);
    assert_eq!(active, ETHER_100_TX | HDX, "{active:#x}");
    let (_, active, _) = attach("rtk", &quiet, 0x08);
    assert_eq!(
        active,
        (sys::IFM_ETHER | sys::IFM_10_T) as c_int | HDX,
        "{active:#x}"
    );
    // An id-less PHY under another MAC is nobody's in particular.
    let (name, _, _) = attach("pcn", &regs, 0);
    assert!(name.starts_with("ukphy"), "{name}");
}
