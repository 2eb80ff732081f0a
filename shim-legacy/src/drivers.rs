//! Where the build put the legacy drivers it compiled (build.rs), as
//! absolute paths. They are separate shared objects, never linked into
//! pktkit; `<target>/<profile>/legacy/` holds copies for the lab.

/// `devn-null.so`: the null device (net_null semantics) for benchmarks.
pub const DEVN_NULL: &str = env!("PKTKIT_SO_DEVN_NULL");
/// `devn-ne2000.so`: NE2000-compatible PCI (RTL8029, QEMU ne2k_pci).
pub const DEVN_NE2000: &str = env!("PKTKIT_SO_DEVN_NE2000");
/// `devn-null.so` built against the frozen v1 header snapshot.
pub const DEVN_NULL_V1: &str = env!("PKTKIT_SO_DEVN_NULL_V1");
/// `devn-null.so` built against the frozen v1.1 snapshot (burst entries).
pub const DEVN_NULL_V1_1: &str = env!("PKTKIT_SO_DEVN_NULL_V1_1");
/// `devn-null.so` built against the frozen v1.2 snapshot (`lf_reset`).
pub const DEVN_NULL_V1_2: &str = env!("PKTKIT_SO_DEVN_NULL_V1_2");
/// `devn-null.so` built against the frozen v1.3 snapshot (descriptors).
pub const DEVN_NULL_V1_3: &str = env!("PKTKIT_SO_DEVN_NULL_V1_3");
/// `devn-ne2000.so` with its test hooks exported (`ne_test_*`).
pub const DEVN_NE2000_HOOKS: &str = env!("PKTKIT_SO_DEVN_NE2000_HOOKS");
/// `devn-bad.so`: the deliberately faulty test driver (`fault=` option).
pub const DEVN_BAD: &str = env!("PKTKIT_SO_DEVN_BAD");
/// `devn-abi2.so`: claims ABI major 2 (must be refused).
pub const DEVN_ABI2: &str = env!("PKTKIT_SO_DEVN_ABI2");
/// `devn-noentry.so`: a shared object without the entry symbol.
pub const DEVN_NOENTRY: &str = env!("PKTKIT_SO_DEVN_NOENTRY");
/// The directory with copies of every legacy driver built.
pub const DIR: &str = env!("PKTKIT_SO_DIR");
