//! `legacy:/path/driver.so` names, resolved to driver factories.
//!
//! The stack finds drivers as `&'static DriverFactory`. A legacy driver is
//! only known at run time, so its factory's create function is a closure
//! holding the loaded library. The factory, the closure and the option
//! list are leaked (one per library, for the life of the process), and the
//! library stays loaded: interfaces of it may exist until the process ends.
//! Resolving the same path again gives the same factory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pktkit_native::driver::CreateFn;
use pktkit_native::{AttachArgs, Driver, DriverError, DriverFactory, DriverKind, OptionSpec};

use crate::device::{LegacyDriver, PREFIX};
use crate::loader::LegacyLibrary;

/// The prefix of a legacy driver name: `legacy:/path/to/driver.so`.
pub const LEGACY_SCHEME: &str = "legacy:";

struct Loaded {
    path: PathBuf,
    factory: &'static DriverFactory,
}

static LOADED: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

/// Whether `name` names a legacy driver (`legacy:/path`).
pub fn is_legacy_name(name: &str) -> bool {
    name.starts_with(LEGACY_SCHEME)
}

/// The factory for `name` (`legacy:/path.so` or a bare path): loads and
/// checks the library the first time (see [`crate::loader`]); each failed
/// check is an error and nothing stays loaded.
pub fn factory(name: &str) -> Result<&'static DriverFactory, DriverError> {
    let path = Path::new(name.strip_prefix(LEGACY_SCHEME).unwrap_or(name));
    if path.as_os_str().is_empty() {
        return Err(DriverError::MissingOption(
            "path of the legacy driver (legacy:/path/driver.so)".into(),
        ));
    }
    let canonical = std::fs::canonicalize(path).map_err(|source| DriverError::Io {
        op: format!("legacy driver {}", path.display()),
        source,
    })?;
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = loaded.iter().find(|l| l.path == canonical) {
        return Ok(l.factory);
    }
    let lib = Arc::new(LegacyLibrary::load(&canonical)?);
    let options: Vec<OptionSpec> = lib
        .options()
        .iter()
        .map(|o| OptionSpec {
            key: leak(&o.key),
            help: leak(&o.help),
            required: o.required,
        })
        .collect();
    let description = leak(&format!(
        "legacy {} ({}): {}",
        lib.name(),
        canonical.display(),
        lib.description()
    ));
    let create: CreateFn = Box::leak(Box::new(
        move |args: &AttachArgs| -> Result<Vec<Box<dyn Driver>>, DriverError> {
            Ok(vec![Box::new(LegacyDriver::attach(lib.clone(), args)?)])
        },
    ));
    let factory: &'static DriverFactory = Box::leak(Box::new(DriverFactory {
        name: leak(name),
        prefix: PREFIX,
        kind: DriverKind::Legacy,
        description,
        devices: 1,
        options: Box::leak(options.into_boxed_slice()),
        create,
    }));
    loaded.push(Loaded {
        path: canonical,
        factory,
    });
    Ok(factory)
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}
