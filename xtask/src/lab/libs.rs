//! The shared libraries the guest's programs need, staged into the
//! initramfs.
//!
//! The guest's pktkit is a normal dynamically linked program: it must
//! export compat-bsd's KPI to the ported `.so` drivers it loads, which a
//! static executable cannot. So every ELF file put in the guest (programs,
//! legacy and ported driver objects) is read for its program interpreter
//! (`PT_INTERP`) and the libraries it needs (`DT_NEEDED`), each of those is
//! found as the host's dynamic loader would find it, and the closure is
//! copied into the guest at the same paths.
//!
//! The host search follows ld.so(8) minus the cache: the object's
//! `DT_RUNPATH` (or `DT_RPATH`), the directories of `/etc/ld.so.conf` (with
//! its `include`s), then the loader's system search path (what
//! `ld.so --help` prints). The guest has no `/etc/ld.so.cache`, so its
//! loader looks only in the system search path: a library found elsewhere
//! is copied into the first system directory as well.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The x86-64 loader's system search path when it cannot be asked (glibc
/// on Debian, multiarch).
const DEFAULT_SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

pub use pktkit_elf::Deps;

/// Reads a 64-bit little-endian ELF file's interpreter and dynamic section
/// (pktkit-elf); a static executable gives no interpreter and nothing
/// needed.
pub fn read_deps(data: &[u8]) -> Result<Deps, String> {
    pktkit_elf::dynamic_deps(data).map_err(|e| e.to_string())
}

/// Where the host looks for libraries, after an object's own run path.
#[derive(Debug, PartialEq)]
pub struct SearchPath {
    /// The directories of `/etc/ld.so.conf`, in order.
    pub conf: Vec<PathBuf>,
    /// The loader's system search path: all the guest's loader searches.
    pub system: Vec<PathBuf>,
}

impl SearchPath {
    /// The host's: `/etc/ld.so.conf` and what `interp --help` says.
    pub fn host(interp: &Path) -> SearchPath {
        let system = Command::new(interp)
            .arg("--help")
            .output()
            .ok()
            .map(|o| system_dirs(&String::from_utf8_lossy(&o.stdout)))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| DEFAULT_SYSTEM_DIRS.iter().map(PathBuf::from).collect());
        SearchPath {
            conf: ld_so_conf(Path::new("/etc/ld.so.conf")),
            system,
        }
    }
}

/// The "(system search path)" directories in `ld.so --help`'s output.
fn system_dirs(help: &str) -> Vec<PathBuf> {
    help.lines()
        .filter_map(|l| l.trim().strip_suffix("(system search path)"))
        .map(|d| PathBuf::from(d.trim()))
        .collect()
}

/// The directories an ld.so.conf lists, its `include FILE...` lines (glob
/// `*` in the file name) followed in place; `#` starts a comment. Missing
/// files give nothing; a file already read is not read again.
fn ld_so_conf(file: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    conf_into(file, &mut out, &mut Vec::new());
    out
}

fn conf_into(file: &Path, out: &mut Vec<PathBuf>, read: &mut Vec<PathBuf>) {
    let key = fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    if read.contains(&key) {
        return;
    }
    read.push(key);
    let Ok(text) = fs::read_to_string(file) else {
        return;
    };
    let base = file.parent().unwrap_or(Path::new("/"));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix("include") {
            if !rest.starts_with(char::is_whitespace) {
                continue;
            }
            for pattern in rest.split_whitespace() {
                for f in glob(&base.join(pattern)) {
                    conf_into(&f, out, read);
                }
            }
        } else if line.starts_with('/') {
            let dir = PathBuf::from(line);
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
}

/// The files matching `pattern`, whose last component may hold `*`s;
/// sorted, as glob(3) returns them.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return vec![pattern.to_owned()];
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let parts: Vec<&str> = name.split('*').collect();
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| wildcard_match(&parts, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Whether `s` matches the pattern whose literal pieces, split at `*`,
/// are `parts`.
fn wildcard_match(parts: &[&str], s: &str) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return s.is_empty();
    };
    if parts.len() == 1 {
        return s == *first;
    }
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One file to copy into the guest: from `host` to the guest path `guest`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Staged {
    /// The file on the host (may be a symbolic link: the copy follows it).
    pub host: PathBuf,
    /// Its absolute path in the guest.
    pub guest: PathBuf,
}

/// Every library (and interpreter) the ELF files `roots` need, directly or
/// through each other, found on the host with `search`; sorted by guest
/// path. A needed library found nowhere is an error naming it, who needs
/// it and where it was looked for.
pub fn closure(roots: &[PathBuf], search: &SearchPath) -> Result<Vec<Staged>, String> {
    let mut staged: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut todo: Vec<PathBuf> = roots.to_vec();
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some(file) = todo.pop() {
        if seen.contains(&file) {
            continue;
        }
        seen.push(file.clone());
        let data = fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let deps = read_deps(&data).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(interp) = &deps.interp {
            let p = PathBuf::from(interp);
            if !p.is_file() {
                return Err(format!(
                    "{} wants the program interpreter {interp}, which this host lacks",
                    file.display()
                ));
            }
            staged.insert(p.clone(), p.clone());
            todo.push(p);
        }
        let origin = file.parent().unwrap_or(Path::new("/"));
        let mut dirs: Vec<PathBuf> = deps
            .runpath
            .iter()
            .map(|d| lexical(Path::new(&d.replace("$ORIGIN", &origin.to_string_lossy()))))
            .collect();
        dirs.extend(search.conf.iter().cloned());
        dirs.extend(search.system.iter().cloned());
        for name in &deps.needed {
            let found = dirs
                .iter()
                .map(|d| d.join(name))
                .find(|p| library_fits(p, deps.machine))
                .ok_or_else(|| {
                    let looked: Vec<String> =
                        dirs.iter().map(|d| d.display().to_string()).collect();
                    format!(
                        "{} needs {name}, found in none of {} (runpath, /etc/ld.so.conf, the \
                         loader's system path): install the library, or build {} without it",
                        file.display(),
                        looked.join(":"),
                        file.display()
                    )
                })?;
            staged.insert(found.clone(), found.clone());
            // The guest's loader has no cache: it looks in the system
            // directories only.
            if let Some(first) = search.system.first() {
                let dir = found.parent().unwrap_or(Path::new("/"));
                if !search.system.iter().any(|s| s == dir) {
                    staged.insert(first.join(name), found.clone());
                }
            }
            todo.push(found);
        }
    }
    Ok(staged
        .into_iter()
        .map(|(guest, host)| Staged { host, guest })
        .collect())
}

/// `p` with `.` and `..` components resolved by name (as the loader
/// does for `$ORIGIN/../lib`).
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether `p` is an ELF file for `machine` (skipping, e.g., the i386
/// libraries of /lib32 that share a name with the x86-64 ones).
fn library_fits(p: &Path, machine: u16) -> bool {
    let mut head = [0u8; 64];
    let Ok(mut f) = fs::File::open(p) else {
        return false;
    };
    use std::io::Read as _;
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    pktkit_elf::machine(&head) == Ok(machine)
}

/// Copies the closure of `roots` into the staging tree `stage`; returns
/// what was staged.
pub fn stage(roots: &[PathBuf], stage: &Path) -> Result<Vec<Staged>, String> {
    let mut interps = Vec::new();
    for r in roots {
        let data = fs::read(r).map_err(|e| format!("{}: {e}", r.display()))?;
        let deps = read_deps(&data).map_err(|e| format!("{}: {e}", r.display()))?;
        interps.extend(deps.interp.map(PathBuf::from));
    }
    // One loader answers for all: the interpreter the programs name.
    let interp = interps
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/lib64/ld-linux-x86-64.so.2"));
    let files = closure(roots, &SearchPath::host(&interp))?;
    for f in &files {
        let to = stage.join(f.guest.strip_prefix("/").unwrap_or(&f.guest));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::copy(&f.host, &to).map_err(|e| format!("{}: {e}", f.host.display()))?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal x86-64 ELF: one PT_LOAD over the whole file (vaddr
    /// 0x400000), an optional PT_INTERP, and a PT_DYNAMIC whose DT_NEEDED
    /// and DT_RUNPATH point into a string table.
    fn elf(interp: Option<&str>, needed: &[&str], runpath: Option<&str>) -> Vec<u8> {
        const BASE: u64 = 0x40_0000;
        let phnum: u16 = if interp.is_some() { 3 } else { 2 };
        let ph_end = 64 + 56 * usize::from(phnum);
        let mut strtab = vec![0u8];
        let mut add = |s: &str| {
            let o = strtab.len() as u64;
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
            o
        };
        let interp_off = interp.map(&mut add);
        let mut dynamic: Vec<(u64, u64)> = needed.iter().map(|n| (1, add(n))).collect();
        if let Some(r) = runpath {
            dynamic.push((29, add(r)));
        }
        let str_off = ph_end as u64;
        dynamic.push((5, BASE + str_off));
        dynamic.push((0, 0));
        let dyn_off = str_off + strtab.len() as u64;
        let total = dyn_off + 16 * dynamic.len() as u64;

        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        f[0x10..0x12].copy_from_slice(&2u16.to_le_bytes());
        f[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
        f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        f[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
        let mut ph = |kind: u32, off: u64, size: u64| {
            let mut p = [0u8; 56];
            p[..4].copy_from_slice(&kind.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&(BASE + off).to_le_bytes());
            p[32..40].copy_from_slice(&size.to_le_bytes());
            p[40..48].copy_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&p);
        };
        ph(1, 0, total);
        ph(2, dyn_off, total - dyn_off);
        if let (Some(o), Some(i)) = (interp_off, interp) {
            ph(3, str_off + o, i.len() as u64 + 1);
        }
        f.extend_from_slice(&strtab);
        for (tag, val) in dynamic {
            f.extend_from_slice(&tag.to_le_bytes());
            f.extend_from_slice(&val.to_le_bytes());
        }
        f
    }

    /// A temporary directory, removed on drop.
    struct Tmp(PathBuf);
    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let d = std::env::temp_dir().join(format!("xtask-libs-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Tmp(d)
        }
        fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, data).unwrap();
            p
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_interpreter_needed_and_runpath() {
        let d = read_deps(&elf(
            Some("/lib64/ld-linux-x86-64.so.2"),
            &["libgcc_s.so.1", "libc.so.6"],
            Some("$ORIGIN/../lib:/opt/x"),
        ))
        .unwrap();
        assert_eq!(
            d,
            Deps {
                machine: 62,
                interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
                needed: vec!["libgcc_s.so.1".into(), "libc.so.6".into()],
                runpath: vec!["$ORIGIN/../lib".into(), "/opt/x".into()],
            }
        );
        // No PT_DYNAMIC at all would be a static program; an empty one
        // needs nothing.
        assert_eq!(read_deps(&elf(None, &[], None)).unwrap().needed.len(), 0);
        assert!(read_deps(b"#!/bin/sh\n").is_err());
        let mut cut = elf(None, &["libc.so.6"], None);
        cut.truncate(cut.len() - 20);
        assert!(read_deps(&cut).is_err());
    }

    #[test]
    fn reads_this_test_program() {
        // Cargo builds tests dynamically linked against libc.
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        let d = read_deps(&me).unwrap();
        assert!(d.interp.is_some(), "{d:?}");
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
    }

    #[test]
    fn loader_help_gives_the_system_dirs() {
        let help = "Shared library search path:\n  (libraries located via /etc/ld.so.cache)\n  \
                    /lib/x86_64-linux-gnu (system search path)\n  /usr/lib (system search path)\n\n\
                    Subdirectories of glibc-hwcaps directories, in priority order:\n  x86-64-v3 (supported, searched)\n";
        assert_eq!(
            system_dirs(help),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu"),
                PathBuf::from("/usr/lib")
            ]
        );
    }

    #[test]
    fn ld_so_conf_follows_includes_in_order() {
        let t = Tmp::new("conf");
        t.write(
            "ld.so.conf",
            b"/first # a comment\ninclude conf.d/*.conf\n\n/last\n",
        );
        t.write("conf.d/b.conf", b"/b\n/first\n");
        t.write(
            "conf.d/a.conf",
            b"# only a comment\n/a\ninclude ../ld.so.conf\n",
        );
        t.write("conf.d/a.conf.disabled", b"/never\n");
        let dirs = ld_so_conf(&t.0.join("ld.so.conf"));
        let want: Vec<PathBuf> = ["/first", "/a", "/b", "/last"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dirs, want);
        assert!(wildcard_match(&["", ".conf"], "x.conf"));
        assert!(!wildcard_match(&["", ".conf"], "x.conf.disabled"));
        assert!(wildcard_match(&["lib", "so", ""], "libc.so.6"));
        assert!(!wildcard_match(&["ab", "ba"], "aba"));
    }

    #[test]
    fn closure_finds_every_library_once_and_names_the_missing() {
        let t = Tmp::new("closure");
        let root = t.0.display().to_string();
        let interp = format!("{root}/lib64/ld.so");
        let prog = t.write(
            "bin/prog",
            &elf(Some(&interp), &["liba.so", "libc.so"], None),
        );
        t.write("lib64/ld.so", &elf(None, &[], None));
        t.write("sys/libc.so", &elf(None, &["ld.so"], None));
        t.write("sys/ld.so", &elf(None, &[], None));
        // An i386 libc earlier in the search must be passed over.
        let mut i386 = elf(None, &[], None);
        i386[4] = 1;
        t.write("conf/libc.so", &i386);
        t.write(
            "conf/liba.so",
            &elf(None, &["libb.so"], Some("$ORIGIN/../rp")),
        );
        t.write("rp/libb.so", &elf(None, &["libc.so"], None));
        let search = SearchPath {
            conf: vec![t.0.join("conf")],
            system: vec![t.0.join("sys")],
        };
        let got = closure(std::slice::from_ref(&prog), &search).unwrap();
        let pairs: Vec<(String, String)> = got
            .iter()
            .map(|s| {
                let rel = |p: &Path| p.strip_prefix(&t.0).unwrap().display().to_string();
                (rel(&s.guest), rel(&s.host))
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("conf/liba.so", "conf/liba.so"),
            ("lib64/ld.so", "lib64/ld.so"),
            ("rp/libb.so", "rp/libb.so"),
            ("sys/ld.so", "sys/ld.so"),
            ("sys/liba.so", "conf/liba.so"),
            ("sys/libb.so", "rp/libb.so"),
            ("sys/libc.so", "sys/libc.so"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(pairs, want);

        let needy = t.write("bin/needy", &elf(None, &["libnowhere.so.3"], None));
        let e = closure(&[needy], &search).unwrap_err();
        assert!(e.contains("needs libnowhere.so.3"), "{e}");
        assert!(e.contains("bin/needy"), "{e}");
        assert!(e.contains(&format!("{root}/sys")), "{e}");

        let stray = t.write("bin/stray", &elf(Some("/nonexistent/ld.so"), &[], None));
        let e = closure(&[stray], &search).unwrap_err();
        assert!(e.contains("/nonexistent/ld.so"), "{e}");
    }
}
