//! bsdnull: a NetBSD-style null pseudo-driver written in C (if_bsdnull.c)
//! and run through compat-bsd. It mirrors the native null driver so that
//! `pktkit bench fwd` can compare the ported-driver path with the native
//! one, and it doubles as the instrumented driver of the execution-model
//! tests (`check=1`) and the worked example of workqueue(9) and sysctl(9)
//! (`net.if.bnull0.drv.tx_defer`, `tx_works`, `size`).

use pktkit_bsd::{Bus, CfAttach, PortedDriver};
use pktkit_native::{AttachArgs, Driver, DriverError, DriverFactory, OptionSpec};

extern "C" {
    /// The driver's `CFATTACH_DECL_NEW(bsdnull, ...)`.
    static bsdnull_ca: pktkit_bsd::sys::cfattach;
}

/// The driver as compat-bsd attaches it.
pub static DRIVER: PortedDriver = PortedDriver {
    name: "bsdnull",
    prefix: "bnull",
    description: "NetBSD-style null pseudo-driver in C through compat-bsd (benchmark device)",
    // Only the address of the C static is taken (no read): safe.
    cfattach: CfAttach(&raw const bsdnull_ca),
    bus: Bus::Pseudo,
    options: &[
        OptionSpec {
            key: "size",
            help: "length of received frames in bytes (14..=2048, default 64)",
            required: false,
        },
        OptionSpec {
            key: "mpsafe",
            help: "1: set IFEF_MPSAFE and lock with a kmutex (default 0: serialized)",
            required: false,
        },
        OptionSpec {
            key: "check",
            help: "1: count entries into every entry point and overlaps between them",
            required: false,
        },
        OptionSpec {
            key: "transmit",
            help: "1: take packets through if_transmit and a pcq instead of if_start",
            required: false,
        },
        OptionSpec {
            key: "tick",
            help: "callout period in ticks of 10 ms (default 100)",
            required: false,
        },
    ],
    multicast_slots: 64,
};

fn create(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    DRIVER.create(args)
}

/// How the stack finds this driver.
pub static FACTORY: DriverFactory = DRIVER.factory(&create);
