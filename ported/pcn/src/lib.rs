//! pcn: the AMD Am79C970A PCnet-PCI II driver (if_pcn.c, pcnreg.h),
//! written in NetBSD style and attached through compat-bsd to a PCI
//! function given with `pci=BDF` (QEMU's pcnet in the lab).

use pktkit_bsd::adapter::PCI_OPTIONS;
use pktkit_bsd::{Bus, CfAttach, PortedDriver};
use pktkit_native::{AttachArgs, Driver, DriverError, DriverFactory};

extern "C" {
    /// The driver's `CFATTACH_DECL_NEW(pcn, ...)`.
    static pcn_ca: pktkit_bsd::sys::cfattach;
}

/// The driver as compat-bsd attaches it.
pub static DRIVER: PortedDriver = PortedDriver {
    name: "pcn",
    prefix: "pcn",
    description: "AMD Am79C970A PCnet-PCI II (NetBSD-style C driver through compat-bsd)",
    // Only the address of the C static is taken (no read): safe.
    cfattach: CfAttach(&raw const pcn_ca),
    bus: Bus::Pci {
        ids: &[(0x1022, 0x2000)],
    },
    options: PCI_OPTIONS,
    // A 64-bit logical address filter: any number of groups, imperfectly.
    multicast_slots: 64,
};

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    DRIVER.create(args)
}

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DRIVER.factory(&create);
