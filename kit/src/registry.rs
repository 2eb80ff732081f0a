//! Every driver the stack can attach by name.

use pktkit_native::DriverFactory;

/// The built-in drivers, in the order `pktkit drivers` lists them.
static BUILTIN: &[&DriverFactory] = &[
    &pktkit_drv_null::FACTORY,
    &pktkit_drv_pair::FACTORY,
    &pktkit_drv_tap::FACTORY,
    &pktkit_drv_afpacket::FACTORY,
    &pktkit_drv_virtio::FACTORY,
    &pktkit_drv_e1000::FACTORY,
    &crate::probe::FACTORY,
];

/// The built-in drivers, in the order `pktkit drivers` lists them.
pub fn builtin() -> &'static [&'static DriverFactory] {
    BUILTIN
}

/// The driver called `name`.
pub fn find(name: &str) -> Option<&'static DriverFactory> {
    BUILTIN.iter().copied().find(|f| f.name == name)
}

/// The names of every driver, for error messages.
pub fn names() -> String {
    BUILTIN
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}
