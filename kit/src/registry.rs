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
    &pktkit_bsdnull::FACTORY,
    &pktkit_rtk::FACTORY,
    &pktkit_fxp::FACTORY,
    &pktkit_pcn::FACTORY,
    &crate::probe::FACTORY,
];

/// The built-in drivers, in the order `pktkit drivers` lists them.
pub fn builtin() -> &'static [&'static DriverFactory] {
    BUILTIN
}

/// The driver called `name`: a built-in, a legacy-ABI driver named
/// `legacy:/path/driver.so` (loaded and checked on first use by
/// pktkit-shim; the library stays loaded), or a ported NetBSD driver built
/// as a shared object, named by its path `/path/driver.so` (checked and
/// loaded by compat-bsd's `loadable`; it stays loaded).
pub fn find(name: &str) -> Option<&'static DriverFactory> {
    if pktkit_shim::is_legacy_name(name) {
        return pktkit_shim::factory(name).ok();
    }
    if pktkit_bsd::loadable::is_ported_object_name(name) {
        return pktkit_bsd::loadable::factory(name).ok();
    }
    BUILTIN.iter().copied().find(|f| f.name == name)
}

/// Why a loadable driver name (`legacy:/path.so`, `/path/ported.so`) does
/// not resolve (file missing, not a shared object for this machine, no
/// entry symbol, ABI not supported, symbols pktkit does not export, listed);
/// `None` for any other name.
pub fn load_error(name: &str) -> Option<pktkit_native::DriverError> {
    if pktkit_shim::is_legacy_name(name) {
        return pktkit_shim::factory(name).err();
    }
    if pktkit_bsd::loadable::is_ported_object_name(name) {
        return pktkit_bsd::loadable::factory(name).err().map(Into::into);
    }
    None
}

/// The names of every driver, for error messages.
pub fn names() -> String {
    BUILTIN
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}
