//! `pktkit port check DIR`: how far a NetBSD driver directory is from
//! compiling and linking against compat-bsd.
//!
//! Each `.c` file is compiled with the C compiler found at run time against
//! compat-bsd's headers (embedded in the binary, [`crate::kpi::HEADERS`],
//! written to a temporary directory) and nothing else: `-nostdinc` plus the
//! compiler's own freestanding headers, so a header compat-bsd lacks is
//! reported instead of being found in the host's /usr/include.
//!
//! 1. `-fsyntax-only`, repeated while a header is missing: each missing
//!    header is recorded and replaced by an empty stub, so one run finds all
//!    of them and then the types, macros and functions they would have
//!    declared.
//! 2. The compiler's errors are read (with `LC_ALL=C`, so names are in
//!    ASCII quotes) into gaps: header, type, macro, function, identifier,
//!    struct member, or an error the reader does not know (kept verbatim).
//! 3. A file without errors is compiled to an object; its undefined
//!    symbols that no other object of the driver defines and the KPI does
//!    not export ([`crate::kpi::KPI_SYMBOLS`]) are link gaps.
//!
//! Every gap is filed under the subsystem its name belongs to (mbuf,
//! bus_space, bus_dma, pci, ifnet, ether, ifmedia/mii, callout, locks,
//! kmem/malloc, autoconf, other).

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{elf, kpi};

/// The subsystem a gap belongs to, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// mbufs: `m_*`, `M*`, `mtod`, sys/mbuf.h.
    Mbuf,
    /// `bus_space_*`.
    BusSpace,
    /// `bus_dma*`.
    BusDma,
    /// PCI: `pci_*`, `PCI_*`, dev/pci/.
    Pci,
    /// The interface layer: `if_*`, `IFQ_*`, `ifnet`, net/if*.h.
    Ifnet,
    /// Ethernet: `ether_*`, `ETHER*`, `ethercom`.
    Ether,
    /// Media and PHYs: `ifmedia_*`, `IFM_*`, `mii_*`, `MII_*`, dev/mii/.
    Media,
    /// `callout_*`.
    Callout,
    /// Locks and priority levels: `mutex_*`, `rw_*`, `spl*`, `IPL_*`.
    Locks,
    /// Memory: `kmem_*`, `malloc`, `free`.
    Kmem,
    /// Autoconfiguration: `config_*`, `device_*`, `cfattach`, `aprint_*`.
    Autoconf,
    /// Anything else.
    Other,
}

impl Group {
    /// Every group, in report order.
    pub const ALL: [Group; 12] = [
        Group::Mbuf,
        Group::BusSpace,
        Group::BusDma,
        Group::Pci,
        Group::Ifnet,
        Group::Ether,
        Group::Media,
        Group::Callout,
        Group::Locks,
        Group::Kmem,
        Group::Autoconf,
        Group::Other,
    ];

    /// The group's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Group::Mbuf => "mbuf",
            Group::BusSpace => "bus_space",
            Group::BusDma => "bus_dma",
            Group::Pci => "pci",
            Group::Ifnet => "ifnet",
            Group::Ether => "ether",
            Group::Media => "ifmedia/mii",
            Group::Callout => "callout",
            Group::Locks => "locks",
            Group::Kmem => "kmem/malloc",
            Group::Autoconf => "autoconf",
            Group::Other => "other",
        }
    }

    /// The group of a header path or a C name.
    pub fn of(name: &str) -> Group {
        let n = name
            .trim_start_matches("struct ")
            .trim_start_matches("union ")
            .trim_start_matches("enum ")
            .trim_start_matches('_');
        let l = n.to_ascii_lowercase();
        let has = |p: &[&str]| p.iter().any(|p| l.starts_with(p));
        if has(&[
            "dev/mii/",
            "net/if_media",
            "ifmedia",
            "ifm_",
            "mii",
            "bmcr",
            "bmsr",
            "anar",
            "anlpar",
            "phy",
        ]) {
            Group::Media
        } else if has(&["bus_dma", "bus_dmamap", "bus_dmamem"]) {
            Group::BusDma
        } else if has(&["bus_space", "sys/bus.h", "bus_addr", "bus_size"]) {
            Group::BusSpace
        } else if has(&["dev/pci/", "pci"]) {
            Group::Pci
        } else if has(&[
            "sys/mbuf", "mbuf", "m_", "mget", "mclget", "mtod", "mclbytes", "mhlen", "mlen",
        ]) {
            Group::Mbuf
        } else if has(&[
            "net/if_ether",
            "ether",
            "arp",
            "netinet/",
            "ethercom",
            "vlan",
        ]) {
            Group::Ether
        } else if has(&[
            "net/",
            "if_",
            "ifcap",
            "ifq",
            "ifnet",
            "iff_",
            "ifef_",
            "ifaddr",
            "ifreq",
            "link_state",
            "bpf",
            "ifp",
        ]) {
            Group::Ifnet
        } else if has(&["sys/callout", "callout"]) {
            Group::Callout
        } else if has(&[
            "sys/mutex",
            "sys/rwlock",
            "sys/lock",
            "mutex",
            "kmutex",
            "rw_",
            "krwlock",
            "spl",
            "ipl_",
            "simple_lock",
            "atomic_",
            "membar_",
            "sys/atomic",
        ]) {
            Group::Locks
        } else if has(&[
            "sys/kmem",
            "sys/malloc",
            "kmem_",
            "malloc",
            "free",
            "km_",
            "pool_",
        ]) {
            Group::Kmem
        } else if has(&[
            "sys/device",
            "config_",
            "device_",
            "cfattach",
            "cfdata",
            "cfdriver",
            "dvf_",
            "pmf_",
            "aprint",
            "autoconf",
        ]) {
            Group::Autoconf
        } else {
            Group::Other
        }
    }
}

/// What kind of thing is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GapKind {
    /// An `#include` compat-bsd does not have.
    Header,
    /// A type name or an incomplete struct.
    Type,
    /// An undefined macro (an all-caps name used as a value or a call).
    Macro,
    /// A function without declaration.
    Function,
    /// An undeclared identifier (variable, enumerator) not in macro case.
    Identifier,
    /// A struct member compat-bsd's struct lacks (`struct foo.bar`).
    Member,
    /// A symbol the driver's objects need that the KPI does not export.
    Symbol,
    /// A compiler error the reader does not classify (kept verbatim).
    Error,
}

impl GapKind {
    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            GapKind::Header => "header",
            GapKind::Type => "type",
            GapKind::Macro => "macro",
            GapKind::Function => "function",
            GapKind::Identifier => "identifier",
            GapKind::Member => "member",
            GapKind::Symbol => "symbol",
            GapKind::Error => "error",
        }
    }
}

/// One missing thing, with the first place it was needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// What kind of thing.
    pub kind: GapKind,
    /// Its name (or the message, for [`GapKind::Error`]).
    pub name: String,
    /// Its subsystem.
    pub group: Group,
    /// Where first needed: `file:line`, or the object for a link gap.
    pub place: String,
}

/// The result of a check.
#[derive(Debug, Clone)]
pub struct Report {
    /// The driver directory.
    pub dir: PathBuf,
    /// The compiler used.
    pub compiler: String,
    /// The `.c` files checked (names).
    pub files: Vec<String>,
    /// The files that compiled to objects.
    pub compiled: Vec<String>,
    /// Every gap, ordered by group, kind and name, each once.
    pub gaps: Vec<Gap>,
}

impl Report {
    /// Gaps in `group`.
    pub fn in_group(&self, group: Group) -> impl Iterator<Item = &Gap> {
        self.gaps.iter().filter(move |g| g.group == group)
    }

    /// Whether nothing is missing.
    pub fn complete(&self) -> bool {
        self.gaps.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "port check {}: {} file(s), {} compiled to objects, with {}",
            self.dir.display(),
            self.files.len(),
            self.compiled.len(),
            self.compiler
        )?;
        if self.gaps.is_empty() {
            return writeln!(
                f,
                "nothing missing: every header, type, macro and symbol is there"
            );
        }
        writeln!(f, "{} missing:", self.gaps.len())?;
        for group in Group::ALL {
            let gaps: Vec<&Gap> = self.in_group(group).collect();
            if gaps.is_empty() {
                continue;
            }
            writeln!(f, "  {} ({})", group.name(), gaps.len())?;
            for g in gaps {
                writeln!(f, "    {:<10} {:<40} {}", g.kind.name(), g.name, g.place)?;
            }
        }
        Ok(())
    }
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The directory cannot be read.
    #[error("{path}: {source}")]
    NoDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No `.c` file in it.
    #[error("{0}: no .c files")]
    NoSources(PathBuf),
    /// No C compiler (set CC, or install cc, clang or gcc).
    #[error("no C compiler found (set CC, or install clang or gcc)")]
    NoCompiler,
    /// Writing the headers or objects failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Symbols a compiler may refer to on its own (stack protector, dynamic TLS
/// access in position-independent code, gcc's GOT base): libc, ld.so and
/// the linker provide them.
const COMPILER_RUNTIME: &[&str] = &[
    "__stack_chk_fail",
    "__stack_chk_guard",
    "__tls_get_addr",
    "_GLOBAL_OFFSET_TABLE_",
];

/// Most missing headers one file may add before the check gives up on it.
const MAX_HEADER_ROUNDS: usize = 64;

struct Compiler {
    path: String,
    /// clang (else gcc-like).
    clang: bool,
    /// The compiler's own headers (stdint.h, stdarg.h, ...).
    builtin_include: Option<String>,
}

impl Compiler {
    /// `$CC`, then clang (its messages name incomplete types), cc, gcc.
    fn find() -> Option<Compiler> {
        let mut candidates = Vec::new();
        if let Ok(cc) = std::env::var("CC") {
            if !cc.is_empty() {
                candidates.push(cc);
            }
        }
        candidates.extend(["clang", "cc", "gcc"].map(String::from));
        for path in candidates {
            let Ok(out) = Command::new(&path).arg("--version").output() else {
                continue;
            };
            if !out.status.success() {
                continue;
            }
            let clang = String::from_utf8_lossy(&out.stdout).contains("clang");
            let builtin_include = if clang {
                Command::new(&path)
                    .arg("-print-resource-dir")
                    .output()
                    .ok()
                    .map(|o| format!("{}/include", String::from_utf8_lossy(&o.stdout).trim()))
            } else {
                Command::new(&path)
                    .arg("-print-file-name=include")
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            };
            return Some(Compiler {
                path,
                clang,
                builtin_include,
            });
        }
        None
    }

    fn command(&self, dir: &Path, include: &Path, stubs: &Path) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.env("LC_ALL", "C")
            .args(["-std=gnu11", "-nostdinc", "-ffreestanding", "-D_KERNEL"])
            .args([
                "-fno-diagnostics-color",
                "-Werror=implicit-function-declaration",
            ])
            .arg("-Werror=implicit-int")
            .arg("-I")
            .arg(dir)
            .arg("-I")
            .arg(include);
        if let Some(b) = &self.builtin_include {
            cmd.arg("-isystem").arg(b);
        }
        if self.clang {
            // Every error, not the first 20.
            cmd.arg("-ferror-limit=0");
        }
        cmd.arg("-idirafter").arg(stubs);
        cmd
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, CheckError> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pktkit-port-check-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|source| CheckError::Io {
            op: format!("create {}", path.display()),
            source,
        })?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), CheckError> {
    let io = |source| CheckError::Io {
        op: format!("write {}", path.display()),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, data).map_err(io)
}

/// Writes compat-bsd's headers under `dir`.
pub fn write_headers(dir: &Path) -> Result<(), CheckError> {
    for (rel, data) in kpi::HEADERS {
        write_file(&dir.join(rel), data)?;
    }
    Ok(())
}

/// Checks every `.c` file in `dir` (see the module docs).
pub fn check(dir: &Path) -> Result<Report, CheckError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CheckError::NoDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "c"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CheckError::NoSources(dir.to_path_buf()));
    }
    let cc = Compiler::find().ok_or(CheckError::NoCompiler)?;
    let tmp = TempDir::new()?;
    let include = tmp.0.join("include");
    let stubs = tmp.0.join("stubs");
    let objects = tmp.0.join("obj");
    write_headers(&include)?;
    std::fs::create_dir_all(&stubs)
        .and_then(|()| std::fs::create_dir_all(&objects))
        .map_err(|source| CheckError::Io {
            op: format!("create {}", tmp.0.display()),
            source,
        })?;

    let mut gaps = Gaps::default();
    let mut compiled = Vec::new();
    for file in &files {
        let name = file_name(file);
        let mut clean = false;
        for _ in 0..MAX_HEADER_ROUNDS {
            let out = cc
                .command(dir, &include, &stubs)
                .arg("-fsyntax-only")
                .arg(file)
                .output()
                .map_err(|source| CheckError::Io {
                    op: format!("run {}", cc.path),
                    source,
                })?;
            let text = String::from_utf8_lossy(&out.stderr);
            let missing_headers = parse_diagnostics(&text, &mut gaps);
            if missing_headers.is_empty() {
                clean = out.status.success();
                break;
            }
            for h in missing_headers {
                write_file(
                    &stubs.join(&h),
                    b"/* missing: stub written by port check */\n",
                )?;
            }
        }
        if !clean {
            continue;
        }
        let obj = objects.join(format!("{name}.o"));
        let out = cc
            .command(dir, &include, &stubs)
            .args(["-c", "-fPIC", "-o"])
            .arg(&obj)
            .arg(file)
            .output()
            .map_err(|source| CheckError::Io {
                op: format!("run {}", cc.path),
                source,
            })?;
        if out.status.success() {
            compiled.push(name);
        } else {
            parse_diagnostics(&String::from_utf8_lossy(&out.stderr), &mut gaps);
        }
    }
    link_gaps(&objects, &compiled, &mut gaps);

    let mut gaps = gaps.0;
    gaps.sort_by(|a, b| (a.group, a.kind, &a.name).cmp(&(b.group, b.kind, &b.name)));
    Ok(Report {
        dir: dir.to_path_buf(),
        compiler: cc.path,
        files: files.iter().map(|f| file_name(f)).collect(),
        compiled,
        gaps,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Gaps seen so far, each (kind, name) once.
#[derive(Default)]
struct Gaps(Vec<Gap>);

impl Gaps {
    fn add(&mut self, kind: GapKind, name: &str, place: &str) {
        if self.0.iter().any(|g| g.kind == kind && g.name == name) {
            return;
        }
        self.0.push(Gap {
            kind,
            name: name.to_string(),
            group: Group::of(name),
            place: place.to_string(),
        });
    }
}

/// Links the objects against the KPI: undefined symbols no object defines
/// and the KPI does not export.
fn link_gaps(objects: &Path, compiled: &[String], gaps: &mut Gaps) {
    let mut defined = BTreeSet::new();
    let mut needed: Vec<(String, String)> = Vec::new();
    for name in compiled {
        let Ok(bytes) = std::fs::read(objects.join(format!("{name}.o"))) else {
            continue;
        };
        let Ok(syms) = elf::symbols(&bytes, false) else {
            continue;
        };
        for s in syms {
            if s.defined {
                defined.insert(s.name);
            } else if !s.weak {
                needed.push((s.name, name.clone()));
            }
        }
    }
    for (sym, obj) in needed {
        if !defined.contains(&sym)
            && !kpi::defines(&sym)
            && !COMPILER_RUNTIME.contains(&sym.as_str())
        {
            gaps.add(GapKind::Symbol, &sym, &format!("{obj}.o"));
        }
    }
}

/// A macro gap when `name` is written like one, else `other`.
fn named(name: &str, other: GapKind) -> GapKind {
    if macro_case(name) {
        GapKind::Macro
    } else {
        other
    }
}

/// Whether a name is written like a macro (all capitals).
fn macro_case(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The first `'...'`-quoted text in `s`.
fn quoted(s: &str) -> Option<&str> {
    let start = s.find('\'')? + 1;
    let len = s[start..].find('\'')?;
    Some(&s[start..start + len])
}

/// Reads a compiler's error output into `gaps`; returns the headers that
/// were not found (the compiler stopped at them).
fn parse_diagnostics(text: &str, gaps: &mut Gaps) -> Vec<String> {
    let mut headers = Vec::new();
    for line in text.lines() {
        let (place, msg) = if let Some(i) = line.find(": fatal error: ") {
            (&line[..i], &line[i + 15..])
        } else if let Some(i) = line.find(": error: ") {
            (&line[..i], &line[i + 9..])
        } else {
            continue;
        };
        // file:line:col -> file:line (the file's name only).
        let place: String = {
            let mut parts = place.rsplitn(3, ':');
            let _col = parts.next();
            let line_no = parts.next().unwrap_or("");
            let file = parts.next().unwrap_or("");
            let file = Path::new(file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{file}:{line_no}")
        };
        if let Some(h) = msg.strip_suffix(": No such file or directory") {
            headers.push(h.to_string());
            gaps.add(GapKind::Header, h, &place);
        } else if msg.ends_with("file not found") {
            if let Some(h) = quoted(msg) {
                headers.push(h.to_string());
                gaps.add(GapKind::Header, h, &place);
            }
        } else if msg.starts_with("unknown type name") {
            if let Some(t) = quoted(msg) {
                gaps.add(GapKind::Type, t, &place);
            }
        } else if msg.contains("implicit declaration of function")
            || msg.starts_with("call to undeclared function")
        {
            if let Some(f) = quoted(msg) {
                gaps.add(named(f, GapKind::Function), f, &place);
            }
        } else if msg.starts_with("use of undeclared identifier") || msg.contains("' undeclared") {
            if let Some(id) = quoted(msg) {
                gaps.add(named(id, GapKind::Identifier), id, &place);
            }
        } else if msg.contains("incomplete type '")
            || msg.contains("incomplete definition of type")
            || msg.contains("invalid use of undefined type")
        {
            // clang: "variable has incomplete type 'struct foo'";
            // gcc: "invalid use of undefined type 'struct foo'".
            if let Some(t) = msg.rsplit('\'').nth(1) {
                gaps.add(GapKind::Type, t, &place);
            }
        } else if let Some(rest) = msg.strip_prefix("no member named '") {
            // clang: "no member named 'b' in 'struct foo'".
            let member = rest.split('\'').next().unwrap_or("");
            let ty = rest.rsplit('\'').nth(1).unwrap_or("");
            gaps.add(GapKind::Member, &format!("{ty}.{member}"), &place);
        } else if msg.contains("has no member named") {
            // gcc: "'struct foo' has no member named 'b'".
            let mut q = msg.split('\'');
            let ty = q.nth(1).unwrap_or("");
            let member = q.nth(1).unwrap_or("");
            gaps.add(GapKind::Member, &format!("{ty}.{member}"), &place);
        } else {
            let mut m = String::new();
            let _ = write!(m, "{msg}");
            gaps.add(GapKind::Error, &m, &place);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_into_their_subsystems() {
        assert_eq!(Group::of("m_freem"), Group::Mbuf);
        assert_eq!(Group::of("MCLGET"), Group::Mbuf);
        assert_eq!(Group::of("bus_space_read_4"), Group::BusSpace);
        assert_eq!(Group::of("bus_dmamap_load_mbuf"), Group::BusDma);
        assert_eq!(Group::of("pci_intr_establish_xname"), Group::Pci);
        assert_eq!(Group::of("dev/pci/if_foo_missing.h"), Group::Pci);
        assert_eq!(Group::of("if_statinc"), Group::Ifnet);
        assert_eq!(Group::of("ether_ifattach"), Group::Ether);
        assert_eq!(Group::of("mii_attach"), Group::Media);
        assert_eq!(Group::of("IFM_ETHER"), Group::Media);
        assert_eq!(Group::of("callout_reset"), Group::Callout);
        assert_eq!(Group::of("rw_enter"), Group::Locks);
        assert_eq!(Group::of("kmem_zalloc"), Group::Kmem);
        assert_eq!(Group::of("config_found"), Group::Autoconf);
        assert_eq!(Group::of("sysctl_createv"), Group::Other);
    }

    #[test]
    fn reads_gcc_and_clang_errors() {
        let mut g = Gaps::default();
        let h = parse_diagnostics(
            "a/if_x.c:3:10: fatal error: dev/pci/x.h: No such file or directory\n\
             if_x.c:9:2: error: unknown type name 'krwlock_t'\n\
             if_x.c:10:2: error: call to undeclared function 'workqueue_create'; ISO C99\n\
             if_x.c:11:2: error: implicit declaration of function 'FOO_INIT' [-Werror]\n\
             if_x.c:12:9: error: use of undeclared identifier 'IFCAP_TSOv4'\n\
             if_x.c:13:9: error: 'BAR_MASK' undeclared (first use in this function)\n\
             if_x.c:14:9: error: variable has incomplete type 'struct workqueue'\n\
             if_x.c:15:9: error: no member named 'if_timer' in 'struct ifnet'\n\
             if_x.c:16:9: error: expected ';' after expression\n\
             if_x.c:16:9: note: whatever\n",
            &mut g,
        );
        assert_eq!(h, vec!["dev/pci/x.h".to_string()]);
        let got: Vec<(GapKind, &str)> = g.0.iter().map(|x| (x.kind, x.name.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (GapKind::Header, "dev/pci/x.h"),
                (GapKind::Type, "krwlock_t"),
                (GapKind::Function, "workqueue_create"),
                (GapKind::Macro, "FOO_INIT"),
                (GapKind::Identifier, "IFCAP_TSOv4"),
                (GapKind::Macro, "BAR_MASK"),
                (GapKind::Type, "struct workqueue"),
                (GapKind::Member, "struct ifnet.if_timer"),
                (GapKind::Error, "expected ';' after expression"),
            ]
        );
        assert_eq!(g.0[0].place, "if_x.c:3");
    }
}
