//! rtk: the Realtek RTL8139 driver (if_rtk.c, rtl81x9reg.h), written in
//! NetBSD style and attached through compat-bsd to a PCI function given
//! with `pci=BDF` (QEMU's rtl8139 in the lab).

use pktkit_bsd::adapter::PCI_OPTIONS;
use pktkit_bsd::{Bus, CfAttach, PortedDriver};
use pktkit_native::{AttachArgs, Driver, DriverError, DriverFactory};

extern "C" {
    /// The driver's `CFATTACH_DECL_NEW(rtk, ...)`.
    static rtk_ca: pktkit_bsd::sys::cfattach;
}

/// The driver as compat-bsd attaches it.
pub static DRIVER: PortedDriver = PortedDriver {
    name: "rtk",
    prefix: "rtk",
    description: "Realtek RTL8139 (NetBSD-style C driver through compat-bsd)",
    // Only the address of the C static is taken (no read): safe.
    cfattach: CfAttach(&raw const rtk_ca),
    bus: Bus::Pci {
        ids: &[(0x10ec, 0x8139), (0x10ec, 0x8138)],
    },
    options: PCI_OPTIONS,
    // A 64-bit hash filter: any number of groups, imperfectly.
    multicast_slots: 64,
};

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    DRIVER.create(args)
}

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DRIVER.factory(&create);
