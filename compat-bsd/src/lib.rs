//! compat-bsd: NetBSD's network driver KPI for pktkit, and the adapter that
//! makes a ported NetBSD driver meet pktkit's driver contract.
//!
//! # Layout
//!
//! - `include/`: C headers with NetBSD's names and paths (`<sys/mbuf.h>`,
//!   `<net/if_ether.h>`, `<dev/pci/pcivar.h>`, `<dev/mii/miivar.h>`, ...).
//!   `<sys/mbuf.h>` includes pktkit's own `pktkit/mbuf.h`: a ported driver
//!   handles the stack's buffers directly.
//! - `csrc/`: the KPI pieces that read best in C (messages, `ether_ioctl` and
//!   the multicast list, ifmedia, the MII layer with the generic PHY).
//! - this crate: the rest of the KPI as `extern "C"` functions over
//!   pktkit-native's pools and device traits ([`kern`], [`mbuf`], [`ifnet`],
//!   [`pci`], [`workqueue`], [`sysctl`]), and the adapter ([`adapter`]) that turns an attached C driver
//!   into a [`pktkit_native::Driver`], with fault injection through bus_dma
//!   ([`fault`]).
//!
//! # Execution model
//!
//! A driver without `IFEF_MPSAFE` reports [`pktkit_native::Concurrency::Serialized`]:
//! the runtime runs every entry point (transmit, receive, service, control)
//! under that driver's lock, and the adapter calls the driver's interrupt
//! handler, callouts, softints, `if_start` and `if_ioctl` only from inside
//! those entry points, so none of them ever overlap -- the guarantee NetBSD's
//! `splnet()` gave, which is why `splnet`/`splx` cost nothing here. A driver
//! that sets `IFEF_MPSAFE` reports `MpSafe` and locks with kmutexes, which
//! are real locks ([`kern`]).
//!
//! `unsafe` is confined to the FFI modules; every block says why it holds.

pub mod adapter;
pub mod ctx;
pub mod fault;
pub mod ifnet;
pub mod kern;
pub mod kpi;
pub mod loadable;
pub mod mbuf;
pub mod pci;
pub mod pcq;
pub mod portcheck;
pub mod sys;
pub mod sysctl;
pub mod workqueue;

/// The ELF reader `port check` and the `.so` loader use (pktkit-elf).
pub use pktkit_elf as elf;

pub use adapter::{Bus, CfAttach, PortedDriver};
