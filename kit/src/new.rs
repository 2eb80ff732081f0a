//! `pktkit new native NAME`: a new native driver crate from
//! templates/native-driver.
//!
//! Inside a pktkit checkout the crate goes to `native/drivers/NAME` and is
//! registered (workspace member and dependency, kit dependency, one line in
//! the registry), so `pktkit drivers` lists it after a rebuild. With `--dir`
//! it is a standalone crate depending on this checkout's `native/` by path.

use std::fs;
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../../templates/native-driver/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../templates/native-driver/src/lib.rs.in");
const ATTACH_RS: &str = include_str!("../../templates/native-driver/tests/attach.rs.in");

/// What to make.
#[derive(Clone, Debug)]
pub struct NewNative {
    /// Driver name (`-d NAME`), also the crate suffix.
    pub name: String,
    /// Interface prefix (default: the name).
    pub prefix: Option<String>,
    /// PCI vendor id the driver attaches to.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Standalone output directory; `None`: inside the checkout, registered.
    pub dir: Option<PathBuf>,
}

/// Why no crate was made.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The name is not usable.
    #[error("'{0}' is not a driver name (lowercase letters, digits, '-', starting with a letter, at most 16)")]
    BadName(String),
    /// The prefix is not usable.
    #[error("'{0}' is not an interface prefix (1 to 8 lowercase letters)")]
    BadPrefix(String),
    /// Not inside a pktkit checkout and no `--dir`.
    #[error("not inside a pktkit checkout (no Cargo.toml with native/include/pktkit/mbuf.h above {0}); give --dir")]
    NoCheckout(PathBuf),
    /// The target exists.
    #[error("{0} exists already")]
    Exists(PathBuf),
    /// A file the registration edits does not look as expected.
    #[error("cannot register in {file}: {why}")]
    Register {
        /// The file.
        file: PathBuf,
        /// What was missing.
        why: String,
    },
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NewError + '_ {
    move |source| NewError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The pktkit checkout at or above `from`.
pub fn find_checkout(from: &Path) -> Option<PathBuf> {
    from.ancestors()
        .find(|d| {
            d.join("Cargo.toml").is_file() && d.join("native/include/pktkit/mbuf.h").is_file()
        })
        .map(Path::to_path_buf)
}

fn valid_name(n: &str) -> bool {
    n.len() <= 16
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn render(t: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(t.to_owned(), |s, (k, v)| s.replace(k, v))
}

/// Makes the crate; returns its directory.
pub fn new_native(req: &NewNative, cwd: &Path) -> Result<PathBuf, NewError> {
    if !valid_name(&req.name) {
        return Err(NewError::BadName(req.name.clone()));
    }
    let prefix = interface_prefix(&req.name, req.prefix.as_deref())?;
    let (dir, checkout, native_dep, workspace) = match &req.dir {
        Some(d) => {
            let native = Path::new(env!("CARGO_MANIFEST_DIR")).join("../native");
            let native = native.canonicalize().unwrap_or(native);
            let dep = format!("pktkit-native = {{ path = \"{}\" }}", native.display());
            (
                d.clone(),
                None,
                dep,
                "\n# A workspace of its own.\n[workspace]\n".to_owned(),
            )
        }
        None => {
            let root = find_checkout(cwd).ok_or_else(|| NewError::NoCheckout(cwd.to_owned()))?;
            let dir = root.join("native/drivers").join(&req.name);
            let dep = "pktkit-native.workspace = true".to_owned();
            (
                dir,
                Some(root),
                dep,
                "\n[lints]\nworkspace = true\n".to_owned(),
            )
        }
    };
    if dir.exists() {
        return Err(NewError::Exists(dir));
    }
    let vars = [
        ("@NAME@", req.name.clone()),
        ("@IDENT@", req.name.replace('-', "_")),
        ("@PREFIX@", prefix),
        ("@VENDOR@", format!("{:#06x}", req.vendor)),
        ("@DEVICE@", format!("{:#06x}", req.device)),
        ("@NATIVE_DEP@", native_dep),
        ("@WORKSPACE@", workspace),
    ];
    // Registration edits are computed before anything is written, so a
    // checkout that does not look as expected is left untouched.
    let edits = match &checkout {
        Some(root) => registration_edits(root, &req.name)?,
        None => Vec::new(),
    };
    write_crate(
        dir,
        &[
            ("Cargo.toml", CARGO_TOML),
            ("src/lib.rs", LIB_RS),
            ("tests/attach.rs", ATTACH_RS),
        ],
        &vars,
        edits,
    )
}

/// The interface prefix: `given`, else the name without dashes; lower-case
/// letters, 1 to 8 of them.
fn interface_prefix(name: &str, given: Option<&str>) -> Result<String, NewError> {
    let prefix = given.map_or_else(|| name.replace('-', ""), str::to_owned);
    if prefix.is_empty() || prefix.len() > 8 || !prefix.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(NewError::BadPrefix(prefix));
    }
    Ok(prefix)
}

/// Writes each template of `files` rendered with `vars` under `dir`, then
/// the registration `edits`; returns `dir`.
fn write_crate(
    dir: PathBuf,
    files: &[(&str, &str)],
    vars: &[(&str, String)],
    edits: Vec<(PathBuf, String)>,
) -> Result<PathBuf, NewError> {
    for (rel, t) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(&p, render(t, vars)).map_err(io(&p))?;
    }
    for (path, text) in edits {
        fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(dir)
}

/// The new contents of the files that register a driver crate.
fn registration_edits(root: &Path, name: &str) -> Result<Vec<(PathBuf, String)>, NewError> {
    register_crate(
        root,
        &format!("pktkit-drv-{name}"),
        &format!("native/drivers/{name}"),
    )
}

/// The new contents of the files that register crate `krate` at `rel`:
/// workspace member and dependency, kit dependency, registry line.
fn register_crate(root: &Path, krate: &str, rel: &str) -> Result<Vec<(PathBuf, String)>, NewError> {
    let ident = krate.replace('-', "_");
    let read = |rel: &str| {
        let p = root.join(rel);
        fs::read_to_string(&p)
            .map(|s| (p.clone(), s))
            .map_err(io(&p))
    };
    let insert = |(path, text): (PathBuf, String), anchor: &str, line: String, before: bool| {
        let at = text.find(anchor).ok_or_else(|| NewError::Register {
            file: path.clone(),
            why: format!("no line '{}'", anchor.trim()),
        })?;
        let at = if before { at } else { at + anchor.len() };
        let mut t = text;
        t.insert_str(at, &line);
        Ok::<_, NewError>((path, t))
    };
    let root_toml = read("Cargo.toml")?;
    let root_toml = insert(
        root_toml,
        "    \"kit\",\n",
        format!("    \"{rel}\",\n"),
        true,
    )?;
    let root_toml = insert(
        root_toml,
        "[workspace.dependencies]\n",
        format!("{krate} = {{ path = \"{rel}\" }}\n"),
        false,
    )?;
    let kit_toml = insert(
        read("kit/Cargo.toml")?,
        "[dependencies]\n",
        format!("{krate}.workspace = true\n"),
        false,
    )?;
    let registry = insert(
        read("kit/src/registry.rs")?,
        "    &crate::probe::FACTORY,\n",
        format!("    &{ident}::FACTORY,\n"),
        true,
    )?;
    Ok(vec![root_toml, kit_toml, registry])
}

const LEGACY_C: &str = include_str!("../../templates/legacy-driver/driver.c.in");
const LEGACY_MAKEFILE: &str = include_str!("../../templates/legacy-driver/Makefile.in");

/// What `pktkit new legacy NAME` makes.
#[derive(Clone, Debug)]
pub struct NewLegacy {
    /// Driver name; the files are `devn-NAME.c` and its Makefile.
    pub name: String,
    /// PCI vendor id the driver attaches to with `pci=`.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Output directory (default: `./devn-NAME`).
    pub dir: Option<PathBuf>,
}

/// `pktkit new legacy NAME`: a legacy-ABI C driver from
/// templates/legacy-driver (a working loopback skeleton) and a Makefile
/// that builds `devn-NAME.so` against this checkout's
/// shim-legacy/include. Returns the directory.
pub fn new_legacy(req: &NewLegacy, cwd: &Path) -> Result<PathBuf, NewError> {
    if !valid_name(&req.name) {
        return Err(NewError::BadName(req.name.clone()));
    }
    let dir = req
        .dir
        .clone()
        .unwrap_or_else(|| cwd.join(format!("devn-{}", req.name)));
    let c_file = dir.join(format!("devn-{}.c", req.name));
    if c_file.exists() {
        return Err(NewError::Exists(c_file));
    }
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shim-legacy/include");
    let include = include.canonicalize().unwrap_or(include);
    let ident = req.name.replace('-', "_");
    let vars = [
        ("@NAME@", req.name.clone()),
        ("@IDENT@", ident.clone()),
        ("@UPPER@", ident.to_ascii_uppercase()),
        ("@VENDOR@", format!("{:#06x}", req.vendor)),
        ("@DEVICE@", format!("{:#06x}", req.device)),
        ("@INCLUDE@", include.display().to_string()),
    ];
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    fs::write(&c_file, render(LEGACY_C, &vars)).map_err(io(&c_file))?;
    let mk = dir.join("Makefile");
    fs::write(&mk, render(LEGACY_MAKEFILE, &vars)).map_err(io(&mk))?;
    Ok(dir)
}

const PORTED_CARGO_TOML: &str = include_str!("../../templates/ported-driver/Cargo.toml.in");
const PORTED_BUILD_RS: &str = include_str!("../../templates/ported-driver/build.rs.in");
const PORTED_C: &str = include_str!("../../templates/ported-driver/driver.c.in");
const PORTED_REG_H: &str = include_str!("../../templates/ported-driver/reg.h.in");
const PORTED_LIB_RS: &str = include_str!("../../templates/ported-driver/src/lib.rs.in");
const PORTED_ATTACH_RS: &str = include_str!("../../templates/ported-driver/tests/attach.rs.in");

/// What `pktkit new ported NAME` makes.
#[derive(Clone, Debug)]
pub struct NewPorted {
    /// Driver name (`-d NAME`); the crate is `pktkit-ported-NAME`.
    pub name: String,
    /// Interface prefix (default: the name).
    pub prefix: Option<String>,
    /// PCI vendor id it matches.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Standalone output directory; `None`: `ported/NAME` in the checkout,
    /// registered.
    pub dir: Option<PathBuf>,
}

/// `pktkit new ported NAME`: a NetBSD-style driver crate from
/// templates/ported-driver (if_NAME.c, NAMEreg.h, build.rs, src/lib.rs,
/// tests/attach.rs). Inside a checkout it goes to `ported/NAME` and is
/// registered like `new native`; with `--dir` it is a standalone crate
/// depending on this checkout's native/ and compat-bsd/ by path.
pub fn new_ported(req: &NewPorted, cwd: &Path) -> Result<PathBuf, NewError> {
    if !valid_name(&req.name) {
        return Err(NewError::BadName(req.name.clone()));
    }
    let ident = req.name.replace('-', "_");
    let prefix = interface_prefix(&req.name, req.prefix.as_deref())?;
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let here = here.canonicalize().unwrap_or(here);
    let (dir, checkout, deps, workspace) = match &req.dir {
        Some(d) => (
            d.clone(),
            None,
            format!(
                "pktkit-native = {{ path = \"{}\" }}\npktkit-bsd = {{ path = \"{}\" }}",
                here.join("native").display(),
                here.join("compat-bsd").display()
            ),
            "\n# A workspace of its own.\n[workspace]\n".to_owned(),
        ),
        None => {
            let root = find_checkout(cwd).ok_or_else(|| NewError::NoCheckout(cwd.to_owned()))?;
            (
                root.join("ported").join(&req.name),
                Some(root),
                "pktkit-native.workspace = true\npktkit-bsd.workspace = true".to_owned(),
                "\n[lints]\nworkspace = true\n".to_owned(),
            )
        }
    };
    if dir.exists() {
        return Err(NewError::Exists(dir));
    }
    let vars = [
        ("@NAME@", req.name.clone()),
        ("@IDENT@", ident.clone()),
        ("@UPPER@", ident.to_ascii_uppercase()),
        ("@PREFIX@", prefix),
        ("@VENDOR@", format!("{:#06x}", req.vendor)),
        ("@DEVICE@", format!("{:#06x}", req.device)),
        ("@DEPS@", deps),
        ("@WORKSPACE@", workspace),
    ];
    let edits = match &checkout {
        Some(root) => register_crate(
            root,
            &format!("pktkit-ported-{}", req.name),
            &format!("ported/{}", req.name),
        )?,
        None => Vec::new(),
    };
    let c_file = format!("if_{ident}.c");
    let reg_h = format!("{ident}reg.h");
    write_crate(
        dir,
        &[
            ("Cargo.toml", PORTED_CARGO_TOML),
            ("build.rs", PORTED_BUILD_RS),
            (c_file.as_str(), PORTED_C),
            (reg_h.as_str(), PORTED_REG_H),
            ("src/lib.rs", PORTED_LIB_RS),
            ("tests/attach.rs", PORTED_ATTACH_RS),
        ],
        &vars,
        edits,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory holding the files registration edits, copied from
    /// this checkout.
    fn checkout_copy(tag: &str) -> PathBuf {
        let tmp = std::env::temp_dir().join(format!("pktkit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let real = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned();
        for rel in [
            "Cargo.toml",
            "kit/Cargo.toml",
            "kit/src/registry.rs",
            "native/include/pktkit/mbuf.h",
        ] {
            let to = tmp.join(rel);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(real.join(rel), &to).unwrap();
        }
        tmp
    }

    #[test]
    fn registers_in_a_checkout_copy() {
        let tmp = checkout_copy("new");
        let req = NewNative {
            name: "my-nic".into(),
            prefix: None,
            vendor: 0x8086,
            device: 0x100e,
            dir: None,
        };
        let dir = new_native(&req, &tmp.join("kit")).unwrap();
        assert_eq!(dir, tmp.join("native/drivers/my-nic"));
        let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub const PREFIX: &str = \"mynic\";"));
        assert!(lib.contains("(0x8086, 0x100e)"));
        assert!(!lib.contains('@'), "unrendered placeholder");
        let reg = fs::read_to_string(tmp.join("kit/src/registry.rs")).unwrap();
        assert!(reg.contains("&pktkit_drv_my_nic::FACTORY,"));
        let root = fs::read_to_string(tmp.join("Cargo.toml")).unwrap();
        assert!(
            root.contains("\"native/drivers/my-nic\",") && root.contains("pktkit-drv-my-nic = {")
        );
        assert!(matches!(new_native(&req, &tmp), Err(NewError::Exists(_))));
        let bad = NewNative {
            name: "9x".into(),
            ..req.clone()
        };
        assert!(matches!(new_native(&bad, &tmp), Err(NewError::BadName(_))));
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn ported_registers_in_a_checkout_copy() {
        let tmp = checkout_copy("newpt");
        let req = NewPorted {
            name: "my-nic".into(),
            prefix: None,
            vendor: 0x10ec,
            device: 0x8139,
            dir: None,
        };
        let dir = new_ported(&req, &tmp.join("kit")).unwrap();
        assert_eq!(dir, tmp.join("ported/my-nic"));
        let c = fs::read_to_string(dir.join("if_my_nic.c")).unwrap();
        assert!(c.contains("#define MY_NIC_VENDOR\t\t0x10ec"));
        assert!(c.contains("CFATTACH_DECL_NEW(my_nic,"));
        let reg = fs::read_to_string(tmp.join("kit/src/registry.rs")).unwrap();
        assert!(reg.contains("&pktkit_ported_my_nic::FACTORY,"));
        let root = fs::read_to_string(tmp.join("Cargo.toml")).unwrap();
        assert!(root.contains("\"ported/my-nic\",") && root.contains("pktkit-ported-my-nic = {"));
        let kit = fs::read_to_string(tmp.join("kit/Cargo.toml")).unwrap();
        assert!(kit.contains("pktkit-ported-my-nic.workspace = true"));
        assert!(matches!(new_ported(&req, &tmp), Err(NewError::Exists(_))));
        let _ = fs::remove_dir_all(&tmp);
    }

    /// The legacy template builds with its Makefile, loads into the shim
    /// and loops a frame back.
    #[test]
    fn legacy_template_builds_loads_and_loops_back() {
        use pktkit_native::{AttachArgs, Mbuf, OwnerId, PacketBatch, Pool, PoolConfig};
        let tmp = std::env::temp_dir().join(format!("pktkit-newlg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let req = NewLegacy {
            name: "loop-x".into(),
            vendor: 0x10ec,
            device: 0x8029,
            dir: None,
        };
        let dir = new_legacy(&req, &tmp).unwrap();
        assert_eq!(dir, tmp.join("devn-loop-x"));
        let c = fs::read_to_string(dir.join("devn-loop-x.c")).unwrap();
        assert!(c.contains("#define LOOP_X_VENDOR\t0x10ec"));
        assert!(!c.contains("@NAME@") && !c.contains("@IDENT@"));
        assert!(matches!(new_legacy(&req, &tmp), Err(NewError::Exists(_))));
        let st = std::process::Command::new("make")
            .arg("-s")
            .current_dir(&dir)
            .status()
            .expect("make");
        assert!(st.success());
        let so = dir.join("devn-loop-x.so");
        let f = pktkit_shim::factory(&format!("legacy:{}", so.display()))
            .unwrap_or_else(|e| panic!("{e}"));
        let pool = Pool::new(&PoolConfig::new("newlg", 128)).unwrap();
        let owner = pool.register_owner("en0").unwrap();
        let mut devs = (f.create)(&AttachArgs {
            options: Default::default(),
            pool: pool.clone(),
            owners: vec![owner],
            ifnames: vec!["en0".into()],
            pci: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let d = &mut devs[0];
        let mut q = d.start().unwrap();
        let mut b = PacketBatch::new();
        let frame: Vec<u8> = (0..100u8).collect();
        // One frame sent comes back, the same.
        let loop_one = |q: &mut pktkit_native::Queues, b: &mut PacketBatch| {
            b.push(Mbuf::from_slice(&pool, OwnerId::POOL, &frame).unwrap())
                .unwrap();
            assert_eq!(q.tx[0].tx_burst(b), 1);
            assert_eq!(q.rx[0].rx_burst(b), 1);
            assert_eq!(b.front().map(Mbuf::to_vec), Some(frame.clone()));
            b.free_all();
        };
        loop_one(&mut q, &mut b);
        // ABI 1.1: a burst beyond the loopback queue (64 frames) is taken
        // up to what fits, in lf_transmit_burst calls; the rest stays.
        for _ in 0..70 {
            b.push(Mbuf::from_slice(&pool, OwnerId::POOL, &frame).unwrap())
                .unwrap();
        }
        assert_eq!(q.tx[0].tx_burst(&mut b), 64);
        assert_eq!(b.len(), 6);
        b.free_all();
        let extra = |key: &str| d.counters().extra.into_iter().find(|(k, _)| k == key);
        assert_eq!(extra("tx_burst_calls").map(|(_, v)| v), Some(3));
        assert_eq!(extra("tx_calls").map(|(_, v)| v), Some(0));
        assert_eq!(q.rx[0].rx_burst(&mut b), 64);
        assert!(b.iter().all(|m| m.to_vec() == frame));
        b.free_all();
        d.stop(q);
        // ABI 1.2: the template has lf_reset; the device loops back after.
        d.reset().unwrap_or_else(|e| panic!("{e}"));
        let mut q = d.start().unwrap();
        loop_one(&mut q, &mut b);
        d.stop(q);
        drop(devs);
        assert_eq!(pool.held_by(owner), 0);
        let _ = fs::remove_dir_all(&tmp);
    }
}
