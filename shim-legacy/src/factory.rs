//! `legacy:/path/driver.so` names, resolved to driver factories.
//!
//! The stack finds drivers as `&'static DriverFactory` whose `create` is a
//! plain function pointer. A legacy driver is only known at run time, so
//! each library loaded gets one of [`MAX_LIBRARIES`] slots: a slot holds
//! the library, and `create_slot::<N>` is the create function of slot N.
//! The factory and its option list are leaked (one per library, for the
//! life of the process), and the library stays loaded: interfaces of it
//! may exist until the process ends. Resolving the same path again gives
//! the same factory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use pktkit_native::{AttachArgs, Driver, DriverError, DriverFactory, DriverKind, OptionSpec};

use pktkit_native::driver::CreateFn;

use crate::device::{LegacyDriver, PREFIX};
use crate::loader::LegacyLibrary;

/// The prefix of a legacy driver name: `legacy:/path/to/driver.so`.
pub const LEGACY_SCHEME: &str = "legacy:";
/// Most distinct legacy libraries one process loads.
pub const MAX_LIBRARIES: usize = 16;

static SLOTS: [OnceLock<Arc<LegacyLibrary>>; MAX_LIBRARIES] =
    [const { OnceLock::new() }; MAX_LIBRARIES];

struct Loaded {
    path: PathBuf,
    factory: &'static DriverFactory,
}

static LOADED: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

const CREATE: [CreateFn; MAX_LIBRARIES] = [
    create_slot::<0>,
    create_slot::<1>,
    create_slot::<2>,
    create_slot::<3>,
    create_slot::<4>,
    create_slot::<5>,
    create_slot::<6>,
    create_slot::<7>,
    create_slot::<8>,
    create_slot::<9>,
    create_slot::<10>,
    create_slot::<11>,
    create_slot::<12>,
    create_slot::<13>,
    create_slot::<14>,
    create_slot::<15>,
];

fn create_slot<const N: usize>(args: &AttachArgs) -> Result<Vec<Box<dyn Driver>>, DriverError> {
    let lib = SLOTS[N]
        .get()
        .ok_or_else(|| DriverError::Device("legacy shim: empty library slot".into()))?;
    let d = LegacyDriver::attach(lib.clone(), args)?;
    Ok(vec![Box::new(d)])
}

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
    let slot = loaded.len();
    if slot == MAX_LIBRARIES {
        return Err(DriverError::Unsupported(format!(
            "at most {MAX_LIBRARIES} legacy driver libraries per process"
        )));
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
    let factory: &'static DriverFactory = Box::leak(Box::new(DriverFactory {
        name: leak(name),
        prefix: PREFIX,
        kind: DriverKind::Legacy,
        description,
        devices: 1,
        options: Box::leak(options.into_boxed_slice()),
        create: CREATE[slot],
    }));
    if SLOTS[slot].set(lib).is_err() {
        return Err(DriverError::Device(
            "legacy shim: library slot taken".into(),
        ));
    }
    loaded.push(Loaded {
        path: canonical,
        factory,
    });
    Ok(factory)
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}
