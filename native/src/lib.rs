//! pktkit's native driver API.
//!
//! This crate is the bottom of the workspace and depends on no other pktkit
//! crate. It defines what every driver, of every kind, shares:
//!
//! - [`mbuf`]: the one packet buffer ([`Mbuf`]), whose C layout is declared in
//!   `include/pktkit/mbuf.h` and seen here through bindgen ([`sys`]);
//! - [`pool`]: pools of DMA-capable memory that mbufs live in, with per-thread
//!   caches, bulk get/put, per-owner accounting, exhaustion counting and
//!   scavenging;
//! - [`batch`]: the fixed-capacity [`PacketBatch`] that rx and tx bursts move;
//! - [`driver`]: the driver contract ([`Driver`], [`RxQueue`], [`TxQueue`]) and
//!   the [`DriverFactory`] through which the stack finds drivers;
//! - [`device`]: what a PCI driver needs from the machine (config space, BARs,
//!   DMA memory, interrupts), implemented by `pktkit-harness` over VFIO.
//!
//! `unsafe` lives in [`sys`], [`mbuf`], [`pool`] and [`batch`]; the driver
//! contract above them is safe.

pub mod batch;
pub mod device;
pub mod driver;
pub mod mbuf;
pub mod mmio;
pub mod options;
pub mod pool;
pub mod sys;

pub use batch::{PacketBatch, BATCH_MAX};
pub use driver::{
    AttachArgs, Capabilities, Concurrency, Control, DeviceCounters, Driver, DriverError,
    DriverFactory, DriverKind, Fault, LinkState, Offloads, OptionSpec, QueueCounters, Queues,
    RxQueue, Service, Tunable, TxQueue,
};
pub use mbuf::Mbuf;
pub use pool::{OwnerId, Pool, PoolConfig, PoolError, PoolStats};
