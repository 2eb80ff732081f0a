//! Every driver the stack can attach by name.

use pktkit_native::DriverFactory;

/// The built-in drivers, in the order `pktkit drivers` lists them.
pub fn builtin() -> [&'static DriverFactory; 1] {
    [&crate::probe::FACTORY]
}

/// The driver called `name`.
pub fn find(name: &str) -> Option<&'static DriverFactory> {
    builtin().into_iter().find(|f| f.name == name)
}

/// The names of every driver, for error messages.
pub fn names() -> String {
    builtin()
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}
