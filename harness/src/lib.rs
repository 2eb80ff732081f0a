//! pktkit's hardware harness: PCI device access for native drivers over
//! VFIO, and handing devices to vfio-pci and back.
//!
//! - [`sysfs`]: devices as sysfs shows them; [`bind`] and [`unbind`] with
//!   clear errors (not root, no IOMMU, group not viable, no such device,
//!   not a network controller, vfio modules missing);
//! - [`vfio`]: [`VfioContainer`] (one IOMMU address space per stack, pools
//!   mapped IOVA = VA) and [`VfioPciDevice`], which implements
//!   [`pktkit_native::device::PciDevice`];
//! - [`ops`]: the seam under every VFIO call, so the logic is tested on any
//!   machine; [`sys`]: its real side over vfio-ioctls and the syscalls it
//!   does not wrap. `unsafe` code lives in `sys`; `ops` declares the unsafe
//!   seam methods (DMA mapping, BAR unmapping, port input and output) and
//!   `vfio` calls them.
//!
//! - [`pio`]: direct port I/O for I/O-port BARs (x86-64), one instruction
//!   instead of a VFIO region call per access, where the kernel allows it;
//!
//! - [`conformance`]: the conformance suite, which drives a device under
//!   test and a peer through the driver contract and reports named checks
//!   (JSON, JUnit XML); `pktkit harness test` runs it. Its two syscalls
//!   (poll, getrusage) live in its `os` module.
//!
//! Real behaviour is proven in the lab (`cargo xtask lab`), against QEMU's
//! emulated NICs behind an emulated IOMMU.

#![deny(unsafe_code)]

pub mod conformance;
pub mod error;
#[allow(unsafe_code)] // declares the unsafe seam methods
pub mod ops;
pub mod pio;
#[allow(unsafe_code)]
pub mod sys;
pub mod sysfs;
#[allow(unsafe_code)]
pub mod vfio;

#[cfg(test)]
mod testutil;

pub use error::HarnessError;
pub use sysfs::{bind, unbind, BindOutcome, PciInfo, Sysfs};
pub use vfio::{DmaBuffer, VfioContainer, VfioPciDevice};
