//! fxp: the Intel i82557/8/9 ("8255x") driver (if_fxp.c, i8255xreg.h),
//! written in NetBSD style and attached through compat-bsd to a PCI
//! function given with `pci=BDF` (QEMU's i82559er in the lab). The driver
//! is `IFEF_MPSAFE`: it protects itself with a kmutex, so the stack runs
//! its entry points in parallel.

use pktkit_bsd::adapter::PCI_OPTIONS;
use pktkit_bsd::{Bus, CfAttach, PortedDriver};
use pktkit_native::{AttachArgs, Driver, DriverError, DriverFactory};

extern "C" {
    /// The driver's `CFATTACH_DECL_NEW(fxp, ...)`.
    static fxp_ca: pktkit_bsd::sys::cfattach;
}

/// The driver as compat-bsd attaches it.
pub static DRIVER: PortedDriver = PortedDriver {
    name: "fxp",
    prefix: "fxp",
    description: "Intel i82557/8/9 (NetBSD-style C driver through compat-bsd, MP-safe)",
    // Only the address of the C static is taken (no read): safe.
    cfattach: CfAttach(&raw const fxp_ca),
    bus: Bus::Pci {
        ids: &[(0x8086, 0x1209), (0x8086, 0x1229)],
    },
    options: PCI_OPTIONS,
    // The multicast setup command holds 64 groups (hashed by the chip);
    // more fall back to all-multicast.
    multicast_slots: 64,
};

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    DRIVER.create(args)
}

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DRIVER.factory(&create);
