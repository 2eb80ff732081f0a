//! pktkit's legacy driver shim: loads C drivers built against the legacy
//! ABI (`include/pktkit/legacy_abi.h`, documented in docs/legacy-abi.md)
//! from `.so` files, and puts each device behind the native driver
//! contract as an `en` interface.
//!
//! - [`loader`]: the checks made before anything of a driver runs (file,
//!   ELF header, entry symbol, ABI major) and the loading itself;
//! - [`ctx`]: the services table the driver calls and the translation of
//!   legacy packets to and from mbufs (zero copy where the fragment
//!   layout allows, counted copies otherwise);
//! - [`device`]: [`LegacyDriver`], one device behind the contract,
//!   serialized;
//! - [`serial`]: the entry check that keeps a device's calls serialized
//!   without a lock of its own;
//! - [`factory`]: `legacy:/path.so` names resolved to driver factories;
//! - [`drivers`]: paths of the legacy drivers this build compiled.
//!
//! `unsafe` lives in [`ctx`], [`device`] and [`loader`] (FFI with the C
//! driver), in [`serial`] (the shared cell) and in the generated [`sys`]
//! bindings.

pub mod ctx;
pub mod device;
pub mod drivers;
pub mod factory;
pub mod loader;
pub mod serial;
pub mod sys;

/// The ELF header check the loader makes (pktkit-elf).
pub use pktkit_elf as elf;

pub use device::{LegacyDriver, PREFIX};
pub use factory::{factory, is_legacy_name, LEGACY_SCHEME};
pub use loader::{LegacyLibrary, LoadError};
