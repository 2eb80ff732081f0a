//! Ported drivers built as shared objects, loaded at run time with
//! `-d /path/to/driver.so,pci=BDF` (as io-pkt loads `devnp-*.so`).
//!
//! The object resolves the KPI against the symbols the pktkit binary exports
//! (kit's build script exports every name of [`crate::kpi::KPI_SYMBOLS`])
//! and describes itself with `PKTKIT_PORTED_DRIVER(...)` from
//! `<pktkit/ported.h>`: the data symbol `pktkit_ported_driver`.
//!
//! Before anything of the object runs (`dlopen` runs its constructors):
//!
//! 1. the file must be an ELF shared object for this machine;
//! 2. it must define `pktkit_ported_driver`;
//! 3. every symbol it needs (undefined, not weak, in `.dynsym`) must
//!    resolve in this process (`dlsym(RTLD_DEFAULT)`: pktkit's exports and
//!    the libraries it already has, libc for `memcpy`). Otherwise it is
//!    refused with the list of missing names, and nothing is loaded: the
//!    stack keeps running.
//!
//! Then `dlopen(RTLD_NOW | RTLD_LOCAL)`, and the entry's ABI version is
//! checked. The factory's create function is a closure holding the
//! object's driver description; the factory, its options and the object
//! stay for the life of the process, since interfaces of it may exist until
//! then.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pktkit_native::driver::CreateFn;
use pktkit_native::{DriverError, DriverFactory, OptionSpec};

use crate::adapter::{Bus, CfAttach, PortedDriver, PCI_OPTIONS};
use crate::{elf, sys};

/// The entry symbol `PKTKIT_PORTED_DRIVER` defines.
pub const ENTRY_SYMBOL: &str = "pktkit_ported_driver";

/// Why a ported `.so` was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("ported driver {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not an ELF shared object for this machine.
    #[error("ported driver {path}: {source}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: elf::ElfError,
    },
    /// No `pktkit_ported_driver` symbol: not built with PKTKIT_PORTED_DRIVER.
    #[error("ported driver {path}: no entry symbol {ENTRY_SYMBOL} (add PKTKIT_PORTED_DRIVER(...) from <pktkit/ported.h>)")]
    NoEntry {
        /// The file.
        path: PathBuf,
    },
    /// It needs symbols this pktkit does not export.
    #[error("ported driver {path}: needs {} symbol(s) pktkit does not export: {}", missing.len(), missing.join(", "))]
    MissingSymbols {
        /// The file.
        path: PathBuf,
        /// The names, sorted.
        missing: Vec<String>,
    },
    /// The dynamic loader refused it.
    #[error("ported driver {path}: dlopen failed: {message}")]
    Dlopen {
        /// The file.
        path: PathBuf,
        /// `dlerror()`.
        message: String,
    },
    /// The entry is of another layout version, or malformed.
    #[error("ported driver {path}: bad entry: {why}")]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

impl From<LoadError> for DriverError {
    fn from(e: LoadError) -> DriverError {
        match e {
            LoadError::Open { path, source } => DriverError::Io {
                op: format!("ported driver {}", path.display()),
                source,
            },
            other => DriverError::Unsupported(other.to_string()),
        }
    }
}

/// Whether `name` (a `-d` driver name) names a ported shared object: a
/// path ending in `.so` without a `legacy:` scheme.
pub fn is_ported_object_name(name: &str) -> bool {
    !name.starts_with("legacy:") && name.ends_with(".so")
}

/// The symbols an object needs that do not resolve in this process,
/// sorted; the checks 1-3 of the module docs, without loading it.
pub fn check_file(path: &Path) -> Result<(), LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let elf_err = |source| LoadError::Elf {
        path: path.to_path_buf(),
        source,
    };
    elf::check_header(&bytes, elf::ET_DYN).map_err(elf_err)?;
    let syms = elf::symbols(&bytes, true).map_err(elf_err)?;
    if !syms.iter().any(|s| s.defined && s.name == ENTRY_SYMBOL) {
        return Err(LoadError::NoEntry {
            path: path.to_path_buf(),
        });
    }
    let mut missing: Vec<String> = syms
        .into_iter()
        .filter(|s| !s.defined && !s.weak && !resolves(&s.name))
        .map(|s| s.name)
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LoadError::MissingSymbols {
            path: path.to_path_buf(),
            missing,
        })
    }
}

/// Whether `name` resolves in this process as the dynamic loader would
/// resolve it for a new object.
fn resolves(name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    // SAFETY: dlsym with RTLD_DEFAULT only looks the name up; `c` is a
    // valid C string for the call.
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) }.is_null()
}

struct Loaded {
    path: PathBuf,
    factory: &'static DriverFactory,
}

static LOADED: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The factory for a ported object (`/path/driver.so`): checked and loaded
/// the first time; the same path again gives the same factory.
pub fn factory(name: &str) -> Result<&'static DriverFactory, LoadError> {
    let path = Path::new(name);
    let canonical = std::fs::canonicalize(path).map_err(|source| LoadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = loaded.iter().find(|l| l.path == canonical) {
        return Ok(l.factory);
    }
    check_file(&canonical)?;
    let driver: &'static PortedDriver = Box::leak(Box::new(open(&canonical)?));
    let create: CreateFn = Box::leak(Box::new(move |args: &_| driver.create(args)));
    let factory: &'static DriverFactory = Box::leak(Box::new(DriverFactory {
        name: leak(name.to_string()),
        ..driver.factory(create)
    }));
    loaded.push(Loaded {
        path: canonical,
        factory,
    });
    Ok(factory)
}

/// `dlopen`s a checked object and reads its entry into a [`PortedDriver`].
fn open(path: &Path) -> Result<PortedDriver, LoadError> {
    let bad = |why: &str| LoadError::BadEntry {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let cpath =
        CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| bad("NUL in path"))?;
    // SAFETY: loading runs the object's constructors. The file is an ELF
    // shared object for this machine whose every needed symbol resolves;
    // loading a driver means trusting its code, as io-pkt does.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(LoadError::Dlopen {
            path: path.to_path_buf(),
            message: dlerror(),
        });
    }
    // The handle is never closed: the driver's code and data live as long
    // as the process.
    let sym = CString::new(ENTRY_SYMBOL).map_err(|_| bad("entry name"))?;
    // SAFETY: `handle` is a live handle and `sym` a valid C string.
    let entry = unsafe { libc::dlsym(handle, sym.as_ptr()) } as *const sys::pktkit_ported_driver;
    // SAFETY: the symbol is the const struct PKTKIT_PORTED_DRIVER defines,
    // in an object that stays loaded; only the first member (the ABI
    // version) is read before it is checked.
    let abi = unsafe { entry.cast::<u32>().as_ref() }.copied();
    if abi != Some(sys::PKTKIT_PORTED_ABI) {
        return Err(bad(&format!(
            "layout version {abi:?}, this pktkit reads {}",
            sys::PKTKIT_PORTED_ABI
        )));
    }
    // SAFETY: as above, and the version says the layout is ours.
    let e = unsafe { &*entry };
    let text = |p: *const libc::c_char, what: &str| -> Result<&'static str, LoadError> {
        if p.is_null() {
            return Err(bad(&format!("no {what}")));
        }
        // SAFETY: a non-null string of the entry: NUL-terminated static
        // data of the loaded object.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        Ok(leak(s))
    };
    let name = text(e.pd_name, "name")?;
    let prefix = text(e.pd_prefix, "prefix")?;
    let description = leak(format!(
        "{} ({})",
        text(e.pd_description, "description")?,
        path.display()
    ));
    let mut options: Vec<OptionSpec> = Vec::new();
    let bus = match e.pd_bus {
        sys::PKTKIT_BUS_PCI => {
            options.extend_from_slice(PCI_OPTIONS);
            let mut ids = Vec::new();
            let mut p = e.pd_ids;
            // SAFETY: the id table ends with {0, 0} (ported.h); `p` walks it
            // up to that entry, a bounded number of steps.
            while let Some(id) = unsafe { p.as_ref() } {
                if id.pi_vendor == 0 && id.pi_product == 0 || ids.len() == 256 {
                    break;
                }
                ids.push((id.pi_vendor, id.pi_product));
                // SAFETY: not past the terminator, which is in the table.
                p = unsafe { p.add(1) };
            }
            Bus::Pci {
                ids: Box::leak(ids.into_boxed_slice()),
            }
        }
        sys::PKTKIT_BUS_PSEUDO => Bus::Pseudo,
        other => return Err(bad(&format!("unknown bus {other}"))),
    };
    let mut p = e.pd_options;
    // SAFETY: the option table ends with {NULL, NULL, 0} (ported.h).
    while let Some(o) = unsafe { p.as_ref() } {
        if o.po_key.is_null() || options.len() == 64 {
            break;
        }
        options.push(OptionSpec {
            key: text(o.po_key, "option key")?,
            help: if o.po_help.is_null() {
                ""
            } else {
                text(o.po_help, "option help")?
            },
            required: o.po_required != 0,
        });
        // SAFETY: not past the terminator, which is in the table.
        p = unsafe { p.add(1) };
    }
    Ok(PortedDriver {
        name,
        prefix,
        description,
        cfattach: CfAttach(e.pd_cfattach.cast()),
        bus,
        options: Box::leak(options.into_boxed_slice()),
        multicast_slots: e.pd_multicast_slots,
    })
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message valid until
    // the next dl call on this thread; it is copied at once.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        return "unknown error".into();
    }
    // SAFETY: non-null, NUL-terminated (above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_path_ending_in_so_without_scheme() {
        assert!(is_ported_object_name("/lib/pktkit/rtk.so"));
        assert!(is_ported_object_name("./bsdnull.so"));
        assert!(!is_ported_object_name("legacy:/lib/devn-ne2000.so"));
        assert!(!is_ported_object_name("rtk"));
    }

    #[test]
    fn refuses_what_is_not_a_shared_object() {
        let dir = std::env::temp_dir().join(format!("pktkit-loadable-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let f = dir.join("text.so");
        let _ = std::fs::write(&f, "not ELF\n");
        let r = check_file(&f);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            matches!(
                r,
                Err(LoadError::Elf {
                    source: elf::ElfError::NotElf,
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(matches!(
            check_file(Path::new("/nonexistent/x.so")),
            Err(LoadError::Open { .. })
        ));
    }
}
