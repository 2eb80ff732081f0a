//! Builds compat-bsd's C half (the KPI pieces that read most naturally in
//! C: messages, ether_ioctl and the multicast list, ifmedia, the MII layer
//! and its PHY drivers) and generates the Rust view of the KPI structs from
//! the same headers ported drivers compile against, so the two sides can
//! never disagree on a layout.
//!
//! Ported driver crates find the headers through `DEP_PKTKIT_BSD_INCLUDE`
//! (compat-bsd's include/) and `DEP_PKTKIT_BSD_MBUF_INCLUDE` (native's).
//!
//! Regenerate the bindings by hand (for reading) with:
//! `bindgen compat-bsd/csrc/bindings.h -- -Icompat-bsd/include -Inative/include`

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pktkit_elf as elf;

/// compat-bsd's own C sources, in csrc/.
const C_SOURCES: &[&str] = &[
    "kern_subr.c",
    "if_ethersubr.c",
    "if_media.c",
    "mii.c",
    "mii_physubr.c",
    "ukphy.c",
    "inphy.c",
    "rlphy.c",
    "mii_bitbang.c",
    "kern_sysctl.c",
];

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let include = dir.join("include");
    let mbuf_include = PathBuf::from(
        env::var("DEP_PKTKIT_MBUF_INCLUDE").expect("pktkit-native exports its include dir"),
    );
    println!("cargo:include={}", include.display());
    println!("cargo:mbuf_include={}", mbuf_include.display());
    println!("cargo:rerun-if-changed=include");
    println!("cargo:rerun-if-changed=csrc");
    // The KPI symbol list reads the Rust side's #[no_mangle] items too.
    println!("cargo:rerun-if-changed=src");

    let mut build = cc::Build::new();
    build
        .include(&include)
        .include(&mbuf_include)
        .define("_KERNEL", None)
        .flag_if_supported("-fno-strict-aliasing")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true);
    for src in C_SOURCES {
        build.file(dir.join("csrc").join(src));
    }
    build.compile("pktkit_bsd_c");
    write_kpi_table(&dir, &include, &mbuf_include);

    let bindings = bindgen::Builder::default()
        .header(dir.join("csrc/bindings.h").display().to_string())
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg(format!("-I{}", mbuf_include.display()))
        .clang_arg("-D_KERNEL")
        .allowlist_type(
            "ifnet|ethercom|ifqueue|ether_multi|cfattach|cfdata|device|callout|evcnt|kmutex\
             |pci_attach_args|pktkit_bus_space|pktkit_bus_dma_tag|pktkit_bus_dmamap\
             |bus_dma_segment|sockaddr_dl|mii_data|ifmedia|ifmedia_entry|pktkit_mcache\
             |pktkit_ported_driver|pktkit_ported_id|pktkit_ported_option|cfdriver\
             |work|workqueue|sysctlnode|sysctllog",
        )
        .allowlist_function("pktkit_.*|ether_.*|ifmedia_.*|mii_.*")
        .allowlist_var(
            "IFF_.*|IFEF_.*|LINK_STATE_.*|ETHER_.*|ETHERCAP_.*|ETHERMTU.*|CALLOUT_.*|SOFTINT_.*\
             |IFM_.*|IFQ_.*|PKTKIT_MCACHE_.*|BUS_SPACE_.*|PKTKIT_BUS_.*|EVCNT_TYPE_.*|DVF_.*|DETACH_.*|PCI_FLAGS_.*|PKTKIT_PORTED_ABI|BUS_DMA_READ|BUS_DMASYNC_PREREAD\
             |CTL_.*|CTLTYPE_.*|CTLFLAG_.*|SYSCTL_NAMELEN|SYSCTL_FLAGMASK|WQ_.*",
        )
        .blocklist_type("mbuf|m_hdr|pkthdr|m_ext_storage")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate()
        .expect("bindgen could not parse compat-bsd's headers (is libclang installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bsd_sys.rs");
    bindings
        .write_to_file(&out)
        .expect("write compat-bsd bindings");
}

/// libc functions compat-bsd's headers declare under their own names
/// (sys/systm.h): a ported driver may call them.
const LIBC_KPI: &[&str] = &[
    "memcpy",
    "memmove",
    "memset",
    "memcmp",
    "strlen",
    "strcmp",
    "strncmp",
    "strcpy",
    "strlcpy",
    "snprintf",
    "vsnprintf",
];

/// Writes `kpi.rs` (included by `src/kpi.rs`): every header a ported driver
/// can include, embedded, so `pktkit port check` works from any directory,
/// and every symbol the KPI defines (the C archive's global symbols, the
/// Rust side's `#[no_mangle]` items, the libc names above), which
/// `port check` links driver objects against and pktkit exports to loadable
/// drivers. `kpi.txt` holds the same names one per line for kit's build
/// script (exported through `DEP_PKTKIT_BSD_KPI_LIST`).
fn write_kpi_table(dir: &Path, include: &Path, mbuf_include: &Path) {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut headers = Vec::new();
    collect_headers(include, include, &mut headers);
    collect_headers(mbuf_include, mbuf_include, &mut headers);
    headers.sort();

    let mut names: Vec<String> = LIBC_KPI.iter().map(|s| s.to_string()).collect();
    let archive =
        std::fs::read(out.join("libpktkit_bsd_c.a")).expect("read compat-bsd's C archive");
    for member in elf::archive_members(&archive) {
        if elf::check_header(member, elf::ET_REL).is_err() {
            continue;
        }
        let syms = elf::symbols(member, false).expect("symbols of compat-bsd's C objects");
        names.extend(syms.into_iter().filter(|s| s.defined).map(|s| s.name));
    }
    let src = dir.join("src");
    for entry in std::fs::read_dir(&src).expect("read compat-bsd/src") {
        let path = entry.expect("list compat-bsd/src").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a compat-bsd source");
            names.extend(no_mangle_names(&text));
        }
    }
    names.sort();
    names.dedup();

    let mut rs = String::from("/// Headers a ported driver can include: (path, contents).\n");
    rs.push_str("pub static HEADERS: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &headers {
        let _ = writeln!(rs, "    ({rel:?}, include_bytes!({abs:?})),");
    }
    rs.push_str(
        "];\n/// Every symbol the KPI defines, sorted.\npub static KPI_SYMBOLS: &[&str] = &[\n",
    );
    for n in &names {
        let _ = writeln!(rs, "    {n:?},");
    }
    rs.push_str("];\n");
    std::fs::write(out.join("kpi.rs"), rs).expect("write kpi.rs");
    let list = out.join("kpi.txt");
    std::fs::write(&list, names.join("\n") + "\n").expect("write kpi.txt");
    println!("cargo:kpi_list={}", list.display());
}

/// (path relative to `root`, absolute path) of every `.h` under `dir`.
fn collect_headers(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_headers(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "h") {
            let rel = path.strip_prefix(root).expect("under the root");
            out.push((rel.display().to_string(), path.display().to_string()));
        }
    }
}

/// Names of the `#[no_mangle]` functions and statics in Rust source text.
fn no_mangle_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "#[no_mangle]" || line == "#[unsafe(no_mangle)]" {
            pending = true;
            continue;
        }
        if !pending || line.starts_with("#[") || line.starts_with("//") {
            continue;
        }
        pending = false;
        let rest = if let Some(i) = line.find("fn ") {
            &line[i + 3..]
        } else if let Some(i) = line.find("static ") {
            line[i + 7..].trim_start_matches("mut ")
        } else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}
