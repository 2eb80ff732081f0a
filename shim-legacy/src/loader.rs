//! Loading a legacy driver: the checks made before anything of the object is
//! called, then `dlopen` through libloading and the entry symbol.
//!
//! Order (each failure is a [`LoadError`], and nothing is left loaded):
//! 1. the file exists and can be read;
//! 2. its ELF header says shared object (`ET_DYN`) for this machine
//!    (class, byte order, `e_machine`), read from its first 64 bytes;
//! 3. `dlopen` (which runs the object's ELF constructors: the one thing a
//!    loader cannot avoid; legacy drivers have none);
//! 4. the entry symbol `pktkit_legacy_entry` exists;
//! 5. its ABI major is one this shim speaks, and its name, init and
//!    shutdown are set.

use std::ffi::CStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use pktkit_native::DriverError;

use crate::elf::{self, ElfError};
use crate::sys;

/// The ABI major versions this shim speaks.
pub const SUPPORTED_MAJORS: &[u32] = &[sys::PKTKIT_LG_ABI_MAJOR];
/// The entry symbol, NUL-terminated.
const ENTRY_SYMBOL: &[u8] = b"pktkit_legacy_entry\0";
/// Most options a driver may declare.
const MAX_OPTIONS: usize = 64;

/// Why a legacy driver could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be opened or read (missing, permissions).
    #[error("legacy driver {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not an ELF shared object for this machine.
    #[error("legacy driver {path}: {source}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        source: ElfError,
    },
    /// The dynamic loader refused it (missing libraries, bad relocations).
    #[error("legacy driver {path}: dlopen failed: {source}")]
    Dlopen {
        /// The file.
        path: PathBuf,
        /// The loader's error.
        source: libloading::Error,
    },
    /// It does not export the entry symbol: not a pktkit legacy driver.
    #[error("legacy driver {path}: no entry symbol pktkit_legacy_entry (not a pktkit legacy driver): {source}")]
    NoEntry {
        /// The file.
        path: PathBuf,
        /// The loader's error.
        source: libloading::Error,
    },
    /// It speaks an ABI major this shim does not.
    #[error("legacy driver {path}: built for legacy ABI {major}.{minor}; this shim supports major {supported:?} (rebuild it against shim-legacy/include/pktkit/legacy_abi.h)")]
    AbiMajor {
        /// The file.
        path: PathBuf,
        /// Major it was built for.
        major: u32,
        /// Minor it was built for.
        minor: u32,
        /// Majors supported.
        supported: &'static [u32],
    },
    /// The entry is malformed (no name, init or shutdown).
    #[error("legacy driver {path}: malformed entry: {why}")]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// What is missing.
        why: &'static str,
    },
}

impl From<LoadError> for DriverError {
    fn from(e: LoadError) -> DriverError {
        match e {
            LoadError::Open { path, source } => DriverError::Io {
                op: format!("legacy driver {}", path.display()),
                source,
            },
            other => DriverError::Unsupported(other.to_string()),
        }
    }
}

/// One declared option of a legacy driver.
#[derive(Clone, Debug)]
pub struct LegacyOption {
    /// Key.
    pub key: String,
    /// Help text.
    pub help: String,
    /// Whether it must be given.
    pub required: bool,
}

/// A loaded and checked legacy driver object. It stays loaded as long as
/// this value lives (the stack keeps every library it loaded for good).
pub struct LegacyLibrary {
    path: PathBuf,
    entry: NonNull<sys::pktkit_lg_entry>,
    name: String,
    prefix: String,
    description: String,
    abi: (u32, u32),
    options: Vec<LegacyOption>,
    // Last: the entry points into it.
    _lib: libloading::Library,
}

// SAFETY: `entry` points at a const struct in the loaded object, which is
// read-only and stays mapped as long as `_lib` lives; the rest is owned data.
unsafe impl Send for LegacyLibrary {}
// SAFETY: as for Send: nothing here is mutated after load.
unsafe impl Sync for LegacyLibrary {}

impl std::fmt::Debug for LegacyLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyLibrary")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("abi", &self.abi)
            .finish()
    }
}

/// Checks the file without loading it: exists, readable, ELF shared object
/// for this machine.
pub fn check_file(path: &Path) -> Result<(), LoadError> {
    let open = |source| LoadError::Open {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(open)?;
    if !f.metadata().map_err(open)?.is_file() {
        return Err(open(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(open(e)),
        }
    }
    elf::check_header(&head[..got], elf::ET_DYN).map_err(|source| LoadError::Elf {
        path: path.to_owned(),
        source,
    })
}

/// Reads a C string from the driver's entry; `None` for NULL or non-UTF-8.
///
/// # Safety
/// `p` must be NULL or point at a NUL-terminated string that lives as long
/// as the library.
unsafe fn c_string(p: *const libc::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: forwarded contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .ok()
        .map(str::to_owned)
}

impl LegacyLibrary {
    /// Checks and loads the driver at `path`.
    pub fn load(path: &Path) -> Result<LegacyLibrary, LoadError> {
        check_file(path)?;
        // SAFETY: loading runs the object's constructors; the file has been
        // checked to be a shared object for this machine, and loading legacy
        // drivers from a path the operator gave is this crate's purpose.
        let lib =
            unsafe { libloading::Library::new(path) }.map_err(|source| LoadError::Dlopen {
                path: path.to_owned(),
                source,
            })?;
        // SAFETY: the symbol is a data object; asking for `*const T` gives its
        // address without reading it.
        let sym =
            unsafe { lib.get::<*const sys::pktkit_lg_entry>(ENTRY_SYMBOL) }.map_err(|source| {
                LoadError::NoEntry {
                    path: path.to_owned(),
                    source,
                }
            })?;
        let bad = |why| LoadError::BadEntry {
            path: path.to_owned(),
            why,
        };
        let entry = NonNull::new((*sym).cast_mut()).ok_or_else(|| bad("entry symbol is NULL"))?;
        // SAFETY: the symbol names a `const struct pktkit_lg_entry` in the
        // loaded object; its first two members (the ABI version) have had
        // the same layout in every major, so they are safe to read before
        // the rest is trusted.
        let (major, minor) = unsafe {
            let e = entry.as_ptr();
            ((*e).le_abi_major, (*e).le_abi_minor)
        };
        if !SUPPORTED_MAJORS.contains(&major) {
            return Err(LoadError::AbiMajor {
                path: path.to_owned(),
                major,
                minor,
                supported: SUPPORTED_MAJORS,
            });
        }
        // SAFETY: a v1 entry, valid for as long as `lib` is loaded.
        let e = unsafe { entry.as_ref() };
        if e.le_init.is_none() || e.le_shutdown.is_none() {
            return Err(bad("le_init or le_shutdown is NULL"));
        }
        // SAFETY: the strings are NULL or NUL-terminated constants of the
        // object (ABI v1).
        let name =
            unsafe { c_string(e.le_name) }.ok_or_else(|| bad("le_name is NULL or not UTF-8"))?;
        // SAFETY: as above.
        let prefix = unsafe { c_string(e.le_prefix) }.unwrap_or_else(|| "en".into());
        // SAFETY: as above.
        let description = unsafe { c_string(e.le_description) }.unwrap_or_default();
        let mut options = Vec::new();
        let mut o = e.le_options;
        while !o.is_null() && options.len() < MAX_OPTIONS {
            // SAFETY: le_options is an array ended by an entry with a NULL
            // key (ABI v1); we stop at that entry or at MAX_OPTIONS.
            let opt = unsafe { &*o };
            // SAFETY: as for le_name.
            let Some(key) = (unsafe { c_string(opt.lo_key) }) else {
                break;
            };
            options.push(LegacyOption {
                key,
                // SAFETY: as for le_name.
                help: unsafe { c_string(opt.lo_help) }.unwrap_or_default(),
                required: opt.lo_required != 0,
            });
            // SAFETY: the terminating entry has not been reached yet.
            o = unsafe { o.add(1) };
        }
        Ok(LegacyLibrary {
            path: path.to_owned(),
            entry,
            name,
            prefix,
            description,
            abi: (major, minor),
            options,
            _lib: lib,
        })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The driver's name (`le_name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver's interface prefix hint (`le_prefix`; the shim uses "en").
    pub fn prefix_hint(&self) -> &str {
        &self.prefix
    }

    /// The driver's one-line description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The ABI version it was built for.
    pub fn abi(&self) -> (u32, u32) {
        self.abi
    }

    /// The options it declares.
    pub fn options(&self) -> &[LegacyOption] {
        &self.options
    }

    /// The checked entry.
    pub(crate) fn entry(&self) -> &sys::pktkit_lg_entry {
        // SAFETY: checked at load; valid while self (and so the library) lives.
        unsafe { self.entry.as_ref() }
    }
}
