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
use std::path::PathBuf;

/// compat-bsd's own C sources, in csrc/.
const C_SOURCES: &[&str] = &[
    "kern_subr.c",
    "if_ethersubr.c",
    "if_media.c",
    "mii.c",
    "mii_physubr.c",
    "ukphy.c",
    "mii_bitbang.c",
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

    let bindings = bindgen::Builder::default()
        .header(dir.join("csrc/bindings.h").display().to_string())
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg(format!("-I{}", mbuf_include.display()))
        .clang_arg("-D_KERNEL")
        .allowlist_type(
            "ifnet|ethercom|ifqueue|ether_multi|cfattach|cfdata|device|callout|evcnt|kmutex\
             |pci_attach_args|pktkit_bus_space|pktkit_bus_dma_tag|pktkit_bus_dmamap\
             |bus_dma_segment|sockaddr_dl|mii_data|ifmedia|ifmedia_entry|pktkit_mcache",
        )
        .allowlist_function("pktkit_.*|ether_.*|ifmedia_.*|mii_.*")
        .allowlist_var(
            "IFF_.*|IFEF_.*|LINK_STATE_.*|ETHER_.*|ETHERCAP_.*|ETHERMTU.*|CALLOUT_.*|SOFTINT_.*\
             |IFM_.*|IFQ_.*|PKTKIT_MCACHE_.*|BUS_SPACE_.*|PKTKIT_BUS_.*|EVCNT_TYPE_.*|DVF_.*|DETACH_.*|PCI_FLAGS_.*",
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
